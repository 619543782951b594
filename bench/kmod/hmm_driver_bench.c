// SPDX-License-Identifier: GPL-2.0
/*
 * A pretend driver that calls HMM the way the in-tree drivers do, to count
 * the retries and the time they cost on one kernel or another.
 *
 * HDB_RANGE_FAULT is amdgpu's userptr path (amdgpu_hmm_range_get_pages())
 * and RDMA ODP's: an interval notifier over the range, one
 * hmm_range_fault() over all of it, -EBUSY retried from
 * mmu_interval_read_begin() for 1 s per 512 MiB, and the result validated
 * with mmu_interval_read_retry() under the driver lock.  HDB_MIRROR_FAULT
 * is the seed API used as its documentation says, HDB_MIRROR_LOCK the
 * series' hmm_vma_fault_lock(), HDB_SNAPSHOTS a stream of snapshots each
 * validated under the driver lock.
 *
 * Interface: the debugfs file hmm_driver_bench, ioctl HDB_RUN
 * (hmm_driver_bench_uapi.h), acting on the caller's mm.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hmm.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_driver_bench_uapi.h"

/* Largest range one run may cover (1 GiB of 4 KiB pages). */
#define HDB_MAX_PAGES	BIT(18)
#define HDB_MAX_COUNT	100000

/* The fixed hmm_range_fault() format has other names in the series. */
#ifdef HWB_HMM_MIRROR
#define HDB_REQ_FAULT	HMM_PFN_FIXED_REQ_FAULT
#define HDB_REQ_WRITE	HMM_PFN_FIXED_REQ_WRITE
#define HDB_VALID	HMM_PFN_FIXED_VALID
#define HDB_WRITE	HMM_PFN_FIXED_WRITE
#else
#define HDB_REQ_FAULT	HMM_PFN_REQ_FAULT
#define HDB_REQ_WRITE	HMM_PFN_REQ_WRITE
#define HDB_VALID	HMM_PFN_VALID
#define HDB_WRITE	HMM_PFN_WRITE
#endif

static struct dentry *hdb_file;
static DEFINE_MUTEX(hdb_run_lock);

/**
 * struct hdb_ctx - state of one HDB_RUN
 * @lock: the driver lock, taken by invalidations and around validation.
 * @notifier: interval notifier over the range (HDB_RANGE_FAULT, and
 *	HDB_SNAPSHOTS on the base).
 * @mirror: mirror of the mm (the series).
 * @range: the range.
 * @mm: the caller's mm.
 */
struct hdb_ctx {
	struct mutex			lock;	/* the driver lock */
	struct mmu_interval_notifier	notifier;
#ifdef HWB_HMM_MIRROR
	struct hmm_mirror		mirror;
#endif
	struct hmm_range		range;
	struct mm_struct		*mm;
};

static bool hdb_invalidate(struct mmu_interval_notifier *mni,
			   const struct mmu_notifier_range *nrange,
			   unsigned long cur_seq)
{
	struct hdb_ctx *ctx = container_of(mni, struct hdb_ctx, notifier);

	if (mmu_notifier_range_blockable(nrange))
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops hdb_notifier_ops = {
	.invalidate = hdb_invalidate,
};

/* amdgpu_hmm_range_get_pages() and its validation, counted. */
static int hdb_range_fault(struct hdb_ctx *ctx, struct hdb_run *run)
{
	struct hmm_range *range = &ctx->range;
	unsigned long timeout;
	bool valid;
	int ret;

	timeout = max_t(u64, run->npages >> 17, 1) * HMM_RANGE_DEFAULT_TIMEOUT;
	timeout = jiffies + msecs_to_jiffies(timeout);
	for (;;) {
		range->notifier_seq = mmu_interval_read_begin(&ctx->notifier);
		mmap_read_lock(ctx->mm);
		ret = hmm_range_fault(range);
		mmap_read_unlock(ctx->mm);
		if (ret == -EBUSY) {
			run->ebusy++;
			if (time_after(jiffies, timeout))
				return ret;
			continue;
		}
		if (ret)
			return ret;
		mutex_lock(&ctx->lock);
		valid = !mmu_interval_read_retry(&ctx->notifier,
						 range->notifier_seq);
		mutex_unlock(&ctx->lock);
		if (valid)
			return 0;
		run->invalid++;
		if (time_after(jiffies, timeout))
			return -EBUSY;
	}
}

static void hdb_count_fixed(struct hdb_run *run, const unsigned long *pfns)
{
	unsigned long i;

	for (i = 0; i < run->npages; i++) {
		if (!(pfns[i] & HDB_VALID))
			continue;
		run->valid++;
		if (pfns[i] & HDB_WRITE)
			run->writable++;
	}
}

#ifdef HWB_HMM_MIRROR
#define HDB_PTE_VALID		BIT_ULL(0)
#define HDB_PTE_WRITE		BIT_ULL(1)
#define HDB_PTE_DEVPRIV		BIT_ULL(2)
#define HDB_PTE_ERROR		BIT_ULL(8)
#define HDB_PTE_NONE		0ULL
#define HDB_PTE_PFN_SHIFT	12

static const u64 hdb_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]		 = HDB_PTE_VALID,
	[HMM_PFN_WRITE]		 = HDB_PTE_WRITE,
	[HMM_PFN_DEVICE_PRIVATE] = HDB_PTE_DEVPRIV,
};

static const u64 hdb_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]		= HDB_PTE_ERROR,
	[HMM_PFN_NONE]		= HDB_PTE_NONE,
	[HMM_PFN_SPECIAL]	= HDB_PTE_ERROR,
};

static int hdb_sync(struct hmm_mirror *mirror, struct hmm_update *update)
{
	struct hdb_ctx *ctx = container_of(mirror, struct hdb_ctx, mirror);

	/* Nothing is mapped on the device: taking the lock is the work. */
	if (update->blockable)
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return -EAGAIN;
	mutex_unlock(&ctx->lock);
	return 0;
}

#ifdef HDB_HMM_LOCK
static void hdb_lock(struct hmm_mirror *mirror)
{
	mutex_lock(&container_of(mirror, struct hdb_ctx, mirror)->lock);
}

static void hdb_unlock(struct hmm_mirror *mirror)
{
	mutex_unlock(&container_of(mirror, struct hdb_ctx, mirror)->lock);
}
#endif

static const struct hmm_mirror_ops hdb_mirror_ops = {
	.sync_cpu_device_pagetables	= hdb_sync,
#ifdef HDB_HMM_LOCK
	.lock				= hdb_lock,
	.unlock				= hdb_unlock,
#endif
};

/* The seed's documented loop around hmm_vma_fault() or get_pfns(). */
static int hdb_mirror_once(struct hdb_ctx *ctx, struct hdb_run *run,
			   bool fault, unsigned long deadline)
{
	struct hmm_range *range = &ctx->range;
	bool valid;
	int ret;

	for (;;) {
		mmap_read_lock(ctx->mm);
		ret = fault ? hmm_vma_fault(range, true) :
			      hmm_vma_get_pfns(range);
		mmap_read_unlock(ctx->mm);
		if (ret == -EBUSY) {
			run->ebusy++;
			if (time_after(jiffies, deadline))
				return ret;
			continue;
		}
		if (ret)
			return ret;
		mutex_lock(&ctx->lock);
		valid = hmm_vma_range_done(range);
		mutex_unlock(&ctx->lock);
		if (valid)
			return 0;
		run->invalid++;
		if (time_after(jiffies, deadline))
			return -EBUSY;
	}
}

static void hdb_count_mirror(struct hdb_ctx *ctx, struct hdb_run *run,
			     const u64 *pfns)
{
	unsigned long i;

	for (i = 0; i < run->npages; i++) {
		if (!(pfns[i] & HDB_PTE_VALID) ||
		    hmm_pfn_is_value(&ctx->range, pfns[i]))
			continue;
		run->valid++;
		if (pfns[i] & HDB_PTE_WRITE)
			run->writable++;
	}
}
#endif /* HWB_HMM_MIRROR */

static bool __maybe_unused hdb_uses_mirror(const struct hdb_run *run)
{
#ifdef HWB_HMM_MIRROR
	return run->mode != HDB_RANGE_FAULT;
#else
	return false;
#endif
}

static int hdb_setup(struct hdb_ctx *ctx, struct hdb_run *run, void *pfns)
{
	struct hmm_range *range = &ctx->range;
	unsigned long size = run->npages << PAGE_SHIFT;

	range->start = run->addr;
	range->end = run->addr + size;
#ifdef HWB_HMM_MIRROR
	if (hdb_uses_mirror(run)) {
		ctx->mirror.ops = &hdb_mirror_ops;
		range->mirror = &ctx->mirror;
		range->pfns = pfns;
		range->flags = hdb_flags;
		range->values = hdb_values;
		range->pfn_shift = HDB_PTE_PFN_SHIFT;
		if (run->mode != HDB_SNAPSHOTS)
			range->default_flags = HDB_PTE_VALID |
				(run->write ? HDB_PTE_WRITE : 0);
		return hmm_mirror_register(&ctx->mirror, ctx->mm);
	}
#endif
	range->notifier = &ctx->notifier;
	range->hmm_pfns = pfns;
	if (run->mode != HDB_SNAPSHOTS)
		range->default_flags = HDB_REQ_FAULT |
				       (run->write ? HDB_REQ_WRITE : 0);
	return mmu_interval_notifier_insert(&ctx->notifier, ctx->mm,
					    range->start, size,
					    &hdb_notifier_ops);
}

static void hdb_teardown(struct hdb_ctx *ctx, struct hdb_run *run)
{
#ifdef HWB_HMM_MIRROR
	if (hdb_uses_mirror(run)) {
		hmm_mirror_unregister(&ctx->mirror);
		return;
	}
#endif
	mmu_interval_notifier_remove(&ctx->notifier);
}

static int hdb_go(struct hdb_ctx *ctx, struct hdb_run *run)
{
	unsigned long deadline;
	unsigned int i;
	int ret = 0;

	switch (run->mode) {
	case HDB_RANGE_FAULT:
		return hdb_range_fault(ctx, run);
#ifdef HWB_HMM_MIRROR
	case HDB_MIRROR_FAULT:
		deadline = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
		return hdb_mirror_once(ctx, run, true, deadline);
#endif
#ifdef HDB_HMM_LOCK
	case HDB_MIRROR_LOCK:
		ret = hmm_vma_fault_lock(&ctx->range, true, 0);
		if (!ret)
			mutex_unlock(&ctx->lock);
		return ret;
#endif
	case HDB_SNAPSHOTS:
		for (i = 0; !ret && i < run->count; i++) {
			deadline = jiffies +
				   msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
#ifdef HWB_HMM_MIRROR
			ret = hdb_mirror_once(ctx, run, false, deadline);
#else
			ret = hdb_range_fault(ctx, run);
#endif
			if (fatal_signal_pending(current))
				ret = -EINTR;
			cond_resched();
		}
		return ret;
	}
	return -EOPNOTSUPP;
}

static int hdb_run(struct hdb_run *run)
{
	struct hdb_ctx *ctx;
	void *pfns;
	u64 t0;
	int ret;

	/* Told even for an invalid run: that is how callers probe. */
	run->have = 0;
#ifdef HWB_HMM_MIRROR
	run->have |= HDB_HAVE_MIRROR;
#endif
#ifdef HDB_HMM_LOCK
	run->have |= HDB_HAVE_LOCK;
#endif
	if (!run->npages || run->npages > HDB_MAX_PAGES ||
	    run->mode >= HDB_MODES || run->write > 1 ||
	    run->count > HDB_MAX_COUNT ||
	    (run->mode == HDB_SNAPSHOTS && !run->count) ||
	    !PAGE_ALIGNED(run->addr) ||
	    run->addr + (run->npages << PAGE_SHIFT) < run->addr)
		return -EINVAL;
	run->ns = 0;
	run->ebusy = 0;
	run->invalid = 0;
	run->valid = 0;
	run->writable = 0;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	pfns = kvcalloc(run->npages, sizeof(u64), GFP_KERNEL);
	if (!ctx || !pfns) {
		ret = -ENOMEM;
		goto out_free;
	}
	mutex_init(&ctx->lock);
	ctx->mm = current->mm;
	if (!ctx->mm || !mmget_not_zero(ctx->mm)) {
		ret = -EINVAL;
		goto out_free;
	}
	ret = hdb_setup(ctx, run, pfns);
	if (ret)
		goto out_mmput;

	t0 = ktime_get_ns();
	ret = hdb_go(ctx, run);
	run->ns = ktime_get_ns() - t0;
	if (!ret) {
#ifdef HWB_HMM_MIRROR
		if (hdb_uses_mirror(run))
			hdb_count_mirror(ctx, run, pfns);
		else
#endif
			hdb_count_fixed(run, pfns);
	}
	hdb_teardown(ctx, run);
out_mmput:
	mmput(ctx->mm);
out_free:
	kvfree(pfns);
	kfree(ctx);
	return ret;
}

static long hdb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct hdb_run run;
	int ret;

	if (cmd != HDB_RUN)
		return -ENOTTY;
	if (copy_from_user(&run, uarg, sizeof(run)))
		return -EFAULT;
	mutex_lock(&hdb_run_lock);
	ret = hdb_run(&run);
	mutex_unlock(&hdb_run_lock);
	/* The counts are worth having even when the run gave up. */
	if (copy_to_user(uarg, &run, sizeof(run)))
		return -EFAULT;
	return ret;
}

static const struct file_operations hdb_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= hdb_ioctl,
	.llseek		= no_llseek,
};

static int __init hdb_init(void)
{
	hdb_file = debugfs_create_file("hmm_driver_bench", 0600, NULL, NULL,
				       &hdb_fops);
	return IS_ERR(hdb_file) ? PTR_ERR(hdb_file) : 0;
}

static void __exit hdb_exit(void)
{
	debugfs_remove(hdb_file);
}

module_init(hdb_init);
module_exit(hdb_exit);
MODULE_DESCRIPTION("HMM called the way drivers call it, retries counted");
MODULE_LICENSE("GPL");
