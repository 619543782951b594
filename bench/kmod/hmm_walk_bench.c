// SPDX-License-Identifier: GPL-2.0
/*
 * In-kernel microbenchmark of the HMM page table walker.
 *
 * Times one snapshot (no fault) of a range of the caller's address space,
 * over and over, with the walker the kernel offers: hmm_vma_get_pfns() of
 * the hmm_mirror API when the kernel has it (the HMM series), otherwise
 * hmm_range_fault() with default_flags 0 (the pristine base).  The same
 * userspace program prepares the mapping on both kernels, so the numbers
 * compare the walkers themselves, without the test_hmm device around them.
 * On the series it also times hmm_vma_get_pfns() in HMM_RANGE_SPARSE_HUGE
 * mode, one entry per huge mapping.
 *
 * Interface: the debugfs file hmm_walk_bench, ioctl HWB_RUN
 * (hmm_walk_bench_uapi.h).  Registration of the mirror or notifier and the
 * allocation of the pfn array are done before the clock starts.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hmm.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_walk_bench_uapi.h"

/* A snapshot invalidated this many times in a row fails the run. */
#define HWB_MAX_RETRIES	100

/* Largest range one run may walk (512 MiB of 4 KiB pages, and more). */
#define HWB_MAX_PAGES	BIT(20)

static struct dentry *hwb_file;

/* Serializes runs: one benchmark at a time keeps the timings honest. */
static DEFINE_MUTEX(hwb_run_lock);

/**
 * struct hwb_ctx - state of one HWB_RUN
 * @lock: the "driver lock": taken by invalidations and around validation.
 * @notifier: interval notifier for hmm_range_fault().
 * @mirror: mirror for hmm_vma_get_pfns() (HMM series only).
 * @range: the range walked.
 * @mm: the caller's mm.
 */
struct hwb_ctx {
	struct mutex			lock;	/* the driver lock */
	struct mmu_interval_notifier	notifier;
#ifdef HWB_HMM_MIRROR
	struct hmm_mirror		mirror;
#endif
	struct hmm_range		range;
	struct mm_struct		*mm;
};

static bool hwb_lock(struct hwb_ctx *ctx, bool blockable)
{
	if (blockable)
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;
	return true;
}

static bool hwb_invalidate(struct mmu_interval_notifier *mni,
			   const struct mmu_notifier_range *nrange,
			   unsigned long cur_seq)
{
	struct hwb_ctx *ctx = container_of(mni, struct hwb_ctx, notifier);

	if (!hwb_lock(ctx, mmu_notifier_range_blockable(nrange)))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops hwb_notifier_ops = {
	.invalidate = hwb_invalidate,
};

/* ktime_get_ns() if the snapshot is timed (@t), else nothing. */
static u64 hwb_stamp(const u64 *t)
{
	return t ? ktime_get_ns() : 0;
}

static void hwb_put(u64 *t, u64 t0, u64 t1, u64 t2, u64 t3)
{
	if (!t)
		return;
	t[HWB_T_BEGIN] = t1 - t0;
	t[HWB_T_WALK] = t2 - t1;
	t[HWB_T_DONE] = t3 - t2;
}

/*
 * One snapshot with hmm_range_fault(), the walk done @walks times in a row;
 * with @t, fills t[HWB_T_BEGIN, WALK, DONE].
 */
static int hwb_snap_fault(struct hwb_ctx *ctx, unsigned int walks, u64 *t,
			  u64 *retries)
{
	struct hmm_range *range = &ctx->range;
	unsigned int tries = 0, w;
	u64 t0, t1, t2;
	bool valid;
	int ret;

	for (;;) {
		t0 = hwb_stamp(t);
		range->notifier_seq = mmu_interval_read_begin(&ctx->notifier);
		mmap_read_lock(ctx->mm);
		t1 = hwb_stamp(t);
		for (ret = 0, w = 0; !ret && w < walks; w++)
			ret = hmm_range_fault(range);
		t2 = hwb_stamp(t);
		mmap_read_unlock(ctx->mm);
		if (!ret) {
			mutex_lock(&ctx->lock);
			valid = !mmu_interval_read_retry(&ctx->notifier,
							 range->notifier_seq);
			mutex_unlock(&ctx->lock);
			if (valid)
				break;
		} else if (ret != -EBUSY) {
			return ret;
		}
		(*retries)++;
		if (++tries > HWB_MAX_RETRIES)
			return -EBUSY;
	}
	hwb_put(t, t0, t1, t2, hwb_stamp(t));
	return 0;
}

#ifdef HWB_HMM_MIRROR
/* Entry encoding of the benchmark's pretend device. */
#define HWB_PTE_VALID		BIT_ULL(0)
#define HWB_PTE_WRITE		BIT_ULL(1)
#define HWB_PTE_DEVPRIV		BIT_ULL(2)
#define HWB_PTE_ORDER_SHIFT	3
#define HWB_PTE_ORDER		(0x1fULL << HWB_PTE_ORDER_SHIFT)
#define HWB_PTE_ERROR		BIT_ULL(8)
#define HWB_PTE_NONE		0ULL
#define HWB_PTE_PFN_SHIFT	12

static const u64 hwb_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]		 = HWB_PTE_VALID,
	[HMM_PFN_WRITE]		 = HWB_PTE_WRITE,
	[HMM_PFN_DEVICE_PRIVATE] = HWB_PTE_DEVPRIV,
};

static const u64 hwb_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]		= HWB_PTE_ERROR,
	[HMM_PFN_NONE]		= HWB_PTE_NONE,
	[HMM_PFN_SPECIAL]	= HWB_PTE_ERROR,
};

static int hwb_sync(struct hmm_mirror *mirror, bool blockable)
{
	struct hwb_ctx *ctx = container_of(mirror, struct hwb_ctx, mirror);

	/* Nothing is mapped on the device: taking the lock is the work. */
	if (!hwb_lock(ctx, blockable))
		return -EAGAIN;
	mutex_unlock(&ctx->lock);
	return 0;
}

static int hwb_sync_const(struct hmm_mirror *mirror,
			  const struct hmm_update *update)
{
	return hwb_sync(mirror, update->blockable);
}

static int hwb_sync_mutable(struct hmm_mirror *mirror,
			    struct hmm_update *update)
{
	return hwb_sync(mirror, update->blockable);
}

/*
 * Versions of the series differ on whether the update passed to the sync
 * callback is const: build against either.
 */
#define HWB_SYNC_TAKES_CONST						\
	__builtin_types_compatible_p(					\
		typeof(((struct hmm_mirror_ops *)NULL)->sync_cpu_device_pagetables), \
		typeof(hwb_sync_const) *)

static const struct hmm_mirror_ops hwb_mirror_ops = {
	.sync_cpu_device_pagetables =
		__builtin_choose_expr(HWB_SYNC_TAKES_CONST, hwb_sync_const,
				      hwb_sync_mutable),
};

/* As hwb_snap_fault(), with hmm_vma_get_pfns() and the mirror. */
static int hwb_snap_mirror(struct hwb_ctx *ctx, unsigned int walks, u64 *t,
			   u64 *retries)
{
	struct hmm_range *range = &ctx->range;
	unsigned int tries = 0, w;
	u64 t0, t1, t2;
	bool valid;
	int ret;

	for (;;) {
		t0 = hwb_stamp(t);
		mmap_read_lock(ctx->mm);
		t1 = hwb_stamp(t);
		/*
		 * A range is walked once between its beginning and its end:
		 * each repeated walk ends the one before, the last one counts.
		 */
		for (ret = 0, w = 0; !ret && w < walks; w++) {
			if (w)
				hmm_vma_range_done(range);
			ret = hmm_vma_get_pfns(range);
		}
		t2 = hwb_stamp(t);
		mmap_read_unlock(ctx->mm);
		if (!ret) {
			mutex_lock(&ctx->lock);
			valid = hmm_vma_range_done(range);
			mutex_unlock(&ctx->lock);
			if (valid)
				break;
		} else if (ret != -EBUSY) {
			return ret;
		}
		(*retries)++;
		if (++tries > HWB_MAX_RETRIES)
			return -EBUSY;
	}
	hwb_put(t, t0, t1, t2, hwb_stamp(t));
	return 0;
}

/* Entries one entry stands for: more than 1 only in a sparse snapshot. */
static unsigned long hwb_span(struct hwb_ctx *ctx, unsigned long i, u64 pfn)
{
#ifdef HWB_HMM_SPARSE
	return hmm_pfn_span(&ctx->range,
			    ctx->range.start + (i << PAGE_SHIFT), pfn);
#else
	return 1;
#endif
}

static void hwb_count_mirror(struct hwb_ctx *ctx, struct hwb_run *run,
			     const u64 *pfns)
{
	unsigned long i, span;

	for (i = 0; i < run->npages; i += span) {
		span = hwb_span(ctx, i, pfns[i]);
		if (!(pfns[i] & HWB_PTE_VALID) ||
		    hmm_pfn_is_value(&ctx->range, pfns[i]))
			continue;
		run->valid += span;
		if (hmm_pfn_to_map_order(&ctx->range, pfns[i]) ==
		    PMD_SHIFT - PAGE_SHIFT)
			run->huge += span;
	}
}

/* Does @run go through the hmm_mirror (hmm_vma_get_pfns())? */
static bool hwb_uses_mirror(const struct hwb_run *run)
{
	return run->used == HWB_API_NATIVE || run->used == HWB_API_SPARSE;
}
#endif /* HWB_HMM_MIRROR */

/* The fixed hmm_range_fault() format has other names in the series. */
#ifdef HWB_HMM_MIRROR
#define HWB_FIXED_VALID			HMM_PFN_FIXED_VALID
#define hwb_fixed_map_order(pfn)	hmm_fixed_pfn_to_map_order(pfn)
#else
#define HWB_FIXED_VALID			HMM_PFN_VALID
#define hwb_fixed_map_order(pfn)	hmm_pfn_to_map_order(pfn)
#endif

static void hwb_count_fixed(struct hwb_run *run, const unsigned long *pfns)
{
	unsigned long i;

	for (i = 0; i < run->npages; i++) {
		if (!(pfns[i] & HWB_FIXED_VALID))
			continue;
		run->valid++;
		if (hwb_fixed_map_order(pfns[i]) == PMD_SHIFT - PAGE_SHIFT)
			run->huge++;
	}
}

/* Count what the last snapshot saw, to check the mapping is as meant. */
static void hwb_count(struct hwb_ctx *ctx, struct hwb_run *run, void *pfns)
{
#ifdef HWB_HMM_MIRROR
	if (hwb_uses_mirror(run)) {
		hwb_count_mirror(ctx, run, pfns);
		return;
	}
#endif
	hwb_count_fixed(run, pfns);
}

static int hwb_setup(struct hwb_ctx *ctx, struct hwb_run *run, void *pfns)
{
	struct hmm_range *range = &ctx->range;
	unsigned long size = run->npages << PAGE_SHIFT;

	range->start = run->addr;
	range->end = run->addr + size;
#ifdef HWB_HMM_MIRROR
	if (hwb_uses_mirror(run)) {
		ctx->mirror.ops = &hwb_mirror_ops;
		range->mirror = &ctx->mirror;
		range->pfns = pfns;
		range->flags = hwb_flags;
		range->values = hwb_values;
		range->pfn_shift = HWB_PTE_PFN_SHIFT;
		range->order_mask = HWB_PTE_ORDER;
#ifdef HWB_HMM_SPARSE
		if (run->used == HWB_API_SPARSE)
			range->mode = HMM_RANGE_SPARSE_HUGE;
#endif
		return hmm_mirror_register(&ctx->mirror, ctx->mm);
	}
#endif
	range->notifier = &ctx->notifier;
	range->hmm_pfns = pfns;
	range->default_flags = 0;
	range->pfn_flags_mask = 0;
	return mmu_interval_notifier_insert(&ctx->notifier, ctx->mm,
					    range->start, size,
					    &hwb_notifier_ops);
}

static void hwb_teardown(struct hwb_ctx *ctx, struct hwb_run *run)
{
#ifdef HWB_HMM_MIRROR
	if (hwb_uses_mirror(run)) {
		hmm_mirror_unregister(&ctx->mirror);
		return;
	}
#endif
	mmu_interval_notifier_remove(&ctx->notifier);
}

static int hwb_snap(struct hwb_ctx *ctx, struct hwb_run *run,
		    unsigned int walks, u64 *t)
{
#ifdef HWB_HMM_MIRROR
	if (hwb_uses_mirror(run))
		return hwb_snap_mirror(ctx, walks, t, &run->retries);
#endif
	return hwb_snap_fault(ctx, walks, t, &run->retries);
}

/*
 * One timed iteration: @run->reps untimed snapshots between two clock
 * reads, then one snapshot timed step by step whose walk is repeated
 * @run->reps times, then the cost of a clock read.
 */
static int hwb_iter(struct hwb_ctx *ctx, struct hwb_run *run, u64 *t)
{
	unsigned int r;
	u64 t0, t1;
	int ret = 0;

	t0 = ktime_get_ns();
	for (r = 0; !ret && r < run->reps; r++)
		ret = hwb_snap(ctx, run, 1, NULL);
	t1 = ktime_get_ns();
	if (ret)
		return ret;
	t[HWB_T_TOTAL] = t1 - t0;
	ret = hwb_snap(ctx, run, run->reps, t);
	t0 = ktime_get_ns();
	t1 = ktime_get_ns();
	t[HWB_T_CLOCK] = t1 - t0;
	return ret;
}

static int hwb_run(struct hwb_run *run)
{
	u64 __user *uns = u64_to_user_ptr(run->ns);
	u64 t[HWB_T_N];
	struct hwb_ctx *ctx;
	unsigned int i;
	void *pfns;
	int ret;

	if (!run->npages || run->npages > HWB_MAX_PAGES ||
	    !run->iters || run->iters > HWB_MAX_ITERS ||
	    !run->reps || run->reps > HWB_MAX_REPS || run->pad ||
	    !PAGE_ALIGNED(run->addr) ||
	    run->addr + (run->npages << PAGE_SHIFT) < run->addr ||
	    run->api > HWB_API_SPARSE)
		return -EINVAL;

	run->have = 0;
	run->used = HWB_API_RANGE_FAULT;
#ifdef HWB_HMM_MIRROR
	run->have |= HWB_HAVE_MIRROR;
	run->used = run->api;
#endif
#ifdef HWB_HMM_SPARSE
	run->have |= HWB_HAVE_SPARSE;
#endif
	if (run->api == HWB_API_SPARSE && !(run->have & HWB_HAVE_SPARSE))
		return -EOPNOTSUPP;
	run->valid = 0;
	run->huge = 0;
	run->retries = 0;

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

	ret = hwb_setup(ctx, run, pfns);
	if (ret)
		goto out_mmput;

	/* Warm-up: caches, TLB and the notifier's first read_begin(). */
	ret = hwb_iter(ctx, run, t);
	for (i = 0; !ret && i < run->iters; i++) {
		cond_resched();
		ret = hwb_iter(ctx, run, t);
		if (!ret && copy_to_user(uns + i * HWB_T_N, t, sizeof(t)))
			ret = -EFAULT;
	}

	if (!ret)
		hwb_count(ctx, run, pfns);

	hwb_teardown(ctx, run);
out_mmput:
	mmput(ctx->mm);
out_free:
	kvfree(pfns);
	kfree(ctx);
	return ret;
}

static long hwb_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct hwb_run run;
	int ret;

	if (cmd != HWB_RUN)
		return -ENOTTY;
	if (copy_from_user(&run, uarg, sizeof(run)))
		return -EFAULT;

	mutex_lock(&hwb_run_lock);
	ret = hwb_run(&run);
	mutex_unlock(&hwb_run_lock);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &run, sizeof(run)))
		return -EFAULT;
	return 0;
}

static const struct file_operations hwb_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= hwb_ioctl,
	.llseek		= no_llseek,
};

static int __init hwb_init(void)
{
	hwb_file = debugfs_create_file("hmm_walk_bench", 0600, NULL, NULL,
				       &hwb_fops);
	return IS_ERR(hwb_file) ? PTR_ERR(hwb_file) : 0;
}

static void __exit hwb_exit(void)
{
	debugfs_remove(hwb_file);
}

module_init(hwb_init);
module_exit(hwb_exit);
MODULE_DESCRIPTION("Microbenchmark of the HMM page table walker");
MODULE_LICENSE("GPL");
