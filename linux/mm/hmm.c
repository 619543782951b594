// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Heterogeneous Memory Management: mirror a process address space in a
 * device page table and snapshot or fault the CPU page table on behalf of a
 * device, reporting pages in the driver's own page table encoding.
 *
 * The public API is described in include/linux/hmm.h.
 */

#define pr_fmt(fmt) "hmm: " fmt

#include <linux/debugfs.h>
#include <linux/hashtable.h>
#include <linux/hmm.h>
#include <linux/hugetlb.h>
#include <linux/lockdep.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/sched/signal.h>
#include <linux/swap.h>
#include <linux/swapops.h>

#include "internal.h"

#define CREATE_TRACE_POINTS
#include <trace/events/hmm.h>

/*
 * Invalidation protocol
 * =====================
 *
 * The mirrors of an mm share one mmu_interval_notifier (struct hmm) that
 * covers the whole user address space.  Its sequence count is the only
 * validity state of a snapshot; there is no per-range "valid" flag that an
 * invalidation could clear and later set again.
 *
 *   hmm_vma_get_pfns()/hmm_vma_fault()     (mmap_lock held for read)
 *       range->notifier_seq = mmu_interval_read_begin()
 *       walk the CPU page table, write range->pfns[]
 *   driver lock (the one its sync callback takes)
 *       if (!hmm_vma_range_done(range))     seq moved: drop results, retry
 *       program the device page table
 *   driver unlock
 *
 * The invalidate callback stores the new sequence with mmu_interval_set_seq()
 * before it calls sync_cpu_device_pagetables(), and the driver's sync takes
 * its lock after that store.  So a hmm_vma_range_done() that runs under the
 * driver lock either sees the new sequence, or runs entirely before the sync
 * callback's critical section, in which case the sync tears down whatever
 * the driver just programmed.  In both cases the device never keeps a stale
 * mapping.  An invalidation that starts and ends while a snapshot is being
 * taken still leaves the sequence changed:
 *
 *   CPU 0 (driver)                     CPU 1 (mm)
 *   seq = read_begin()   [seq = S]
 *   walk: page P mapped at A
 *                                      invalidate_range_start(A)
 *                                        set_seq(S + 1), sync() -> unmap A
 *                                      page P freed, A remapped
 *                                      invalidate_range_end(A)
 *   lock
 *   range_done(): S != S + 1 -> false, retry instead of mapping freed P
 *   unlock
 *
 * An invalidation already running when the snapshot begins is covered by
 * mmu_interval_read_begin(), which waits for it to end before it returns
 * the sequence.  Because the notifier covers every address, invalidations
 * of unrelated addresses also fail hmm_vma_range_done(): harmless, the
 * driver just retries.
 *
 * Two phases
 * ----------
 * An update first calls the sync callback of every mirror; a callback may
 * start its device invalidation and hand back a struct hmm_fence instead
 * of waiting.  Only then does the core wait on every fence, so N devices
 * cost about the slowest one, not the sum.  The CPU page table changes
 * after the notifier returns, i.e. after every fence signaled.
 *
 * Blockable rules
 * ---------------
 * When update->blockable is false (OOM reaper), the sync callback runs in a
 * non-blocking section: it may only trylock and returns -EAGAIN when it
 * would have to sleep; a fence that has not signaled yet fails the update
 * the same way, since nothing may wait.  The core puts the fences it holds,
 * skips the remaining mirrors and returns false to the mmu notifier core,
 * which unwinds the invalidation itself (interval notifiers have no end
 * callback).  Deciding inside the interval notifier matters: in 6.1 a plain
 * mmu_notifier failing after the interval notifiers succeeded would leave
 * them "invalidating" for good.  The sequence was already advanced, which only costs
 * snapshots a retry.  A blockable sync must not fail; a failure is reported
 * once and treated as done, since the mm cannot be stopped anyway.
 *
 * Faults
 * ------
 * The page table walk never faults.  When an entry needs a fault the walk
 * records the run of addresses and returns HMM_WALK_FAULT; the fault is
 * taken with handle_mm_fault() outside the page table walk, with the VMA
 * looked up again, and the walk resumes from the first entry it has not
 * written.  Entries before that point hold output, entries at or after it
 * still hold the caller's input.  With block == true the mmap_lock is never
 * dropped; with block == false a fault may drop it, which is reported as
 * -EAGAIN.  -EBUSY always means "invalidated, retry with fresh input".
 */

/* Private walk results; they never leave this file. */
enum {
	HMM_WALK_FAULT = 1,		/* fault hw->fault_start..fault_end */
	HMM_WALK_RESTART,		/* waited for migration, walk again */
	HMM_WALK_PTE_MIGRATION,		/* pte level only: wait, then restart */
};

/* What an entry needs before it can be reported as requested. */
enum {
	HMM_NEED_FAULT = BIT(0),
	HMM_NEED_WRITE = BIT(1),
};

/*
 * Consecutive walk restarts that made no forward progress before the walk
 * gives up with -EBUSY and lets the caller retry from scratch.
 */
#define HMM_WALK_MAX_STALLS	16

/* The fixed format of hmm_range_fault(), in the generic encoding. */
static const u64 hmm_fixed_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]		 = HMM_PFN_FIXED_VALID,
	[HMM_PFN_WRITE]		 = HMM_PFN_FIXED_WRITE,
	[HMM_PFN_DEVICE_PRIVATE] = 0,	/* not reported */
};

static const u64 hmm_fixed_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]		= HMM_PFN_FIXED_ERROR,
	[HMM_PFN_NONE]		= 0,
	[HMM_PFN_SPECIAL]	= HMM_PFN_FIXED_ERROR,
};

/**
 * struct hmm_vma_walk - state of one page table walk
 * @range: range being filled
 * @last: first address whose entry has not been written yet
 * @fault_start: first address of the run to fault (HMM_WALK_FAULT)
 * @fault_end: end of the run to fault (exclusive)
 * @fault_need: HMM_NEED_* bits for the run
 * @f_valid: encoding of HMM_PFN_VALID
 * @f_write: encoding of HMM_PFN_WRITE
 * @f_devpriv: encoding of HMM_PFN_DEVICE_PRIVATE
 * @v_error: encoding of HMM_PFN_ERROR
 * @v_none: encoding of HMM_PFN_NONE
 * @v_special: encoding of HMM_PFN_SPECIAL
 * @req_mask: &hmm_range.pfn_flags_mask
 * @req_default: &hmm_range.default_flags
 * @pfn_shift: &hmm_range.pfn_shift
 * @may_fault: some entry may request a fault
 * @sparse: HMM_RANGE_SPARSE_HUGE: one entry per huge mapping
 * @per_entry: every input entry is its own request
 * @fixed: hmm_range_fault(): unsigned long entries and its exact rules
 * @retries: walks started again after an invalidation or a migration wait
 * @faults: runs faulted with handle_mm_fault()
 *
 * The encoding is copied out of the range once so the walk does not chase
 * the driver's tables for every entry.
 */
struct hmm_vma_walk {
	struct hmm_range	*range;
	unsigned long		last;
	unsigned long		fault_start;
	unsigned long		fault_end;
	u64			f_valid;
	u64			f_write;
	u64			f_devpriv;
	u64			v_error;
	u64			v_none;
	u64			v_special;
	u64			req_mask;
	u64			req_default;
	unsigned int		fault_need;
	unsigned int		pfn_shift;
	bool			may_fault;
	bool			sparse;
	bool			per_entry;
	bool			fixed;
	unsigned int		retries;
	unsigned int		faults;
};

/* ------------------------------------------------------------------------
 * Statistics, in debugfs as hmm/stats
 */

/*
 * The walk counters follow the HMM_TRACE_* kinds and the invalidation
 * counters follow enum hmm_update_event, so both are indexed by adding.
 */
enum hmm_stat_item {
	HMM_STAT_SNAPSHOTS,		/* + HMM_TRACE_SNAPSHOT */
	HMM_STAT_FAULTS,		/* + HMM_TRACE_FAULT */
	HMM_STAT_FAULTS_UNLOCKABLE,	/* + HMM_TRACE_FAULT_UNLOCKABLE */
	HMM_STAT_RANGE_FAULTS,		/* + HMM_TRACE_RANGE_FAULT */
	HMM_STAT_FAULT_RUNS,
	HMM_STAT_RETRIES,
	HMM_STAT_EBUSY,
	HMM_STAT_EAGAIN,
	HMM_STAT_INV_INVALIDATE,	/* + enum hmm_update_event */
	HMM_STAT_INV_UNMAP,
	HMM_STAT_INV_CLEAR,
	HMM_STAT_INV_PROTECTION,
	HMM_STAT_INV_SOFT_DIRTY,
	HMM_STAT_INV_RELEASE,
	HMM_STAT_INV_MIGRATE,
	HMM_STAT_INV_EXCLUSIVE,
	HMM_STAT_INV_NONBLOCK,
	HMM_STAT_INV_NONBLOCK_EAGAIN,
	HMM_STAT_FENCES,
	HMM_STAT_FENCE_EAGAIN,
	HMM_STAT_NR
};

static const char * const hmm_stat_names[HMM_STAT_NR] = {
	[HMM_STAT_SNAPSHOTS]		= "snapshots",
	[HMM_STAT_FAULTS]		= "faults",
	[HMM_STAT_FAULTS_UNLOCKABLE]	= "faults_unlockable",
	[HMM_STAT_RANGE_FAULTS]		= "range_faults",
	[HMM_STAT_FAULT_RUNS]		= "fault_runs",
	[HMM_STAT_RETRIES]		= "retries",
	[HMM_STAT_EBUSY]		= "ebusy",
	[HMM_STAT_EAGAIN]		= "eagain",
	[HMM_STAT_INV_INVALIDATE]	= "inv_invalidate",
	[HMM_STAT_INV_UNMAP]		= "inv_unmap",
	[HMM_STAT_INV_CLEAR]		= "inv_clear",
	[HMM_STAT_INV_PROTECTION]	= "inv_protection",
	[HMM_STAT_INV_SOFT_DIRTY]	= "inv_soft_dirty",
	[HMM_STAT_INV_RELEASE]		= "inv_release",
	[HMM_STAT_INV_MIGRATE]		= "inv_migrate",
	[HMM_STAT_INV_EXCLUSIVE]	= "inv_exclusive",
	[HMM_STAT_INV_NONBLOCK]		= "inv_nonblock",
	[HMM_STAT_INV_NONBLOCK_EAGAIN]	= "inv_nonblock_eagain",
	[HMM_STAT_FENCES]		= "fences",
	[HMM_STAT_FENCE_EAGAIN]		= "fence_eagain",
};

static_assert(HMM_STAT_FAULTS ==
	      HMM_STAT_SNAPSHOTS + HMM_TRACE_FAULT);
static_assert(HMM_STAT_FAULTS_UNLOCKABLE ==
	      HMM_STAT_SNAPSHOTS + HMM_TRACE_FAULT_UNLOCKABLE);
static_assert(HMM_STAT_RANGE_FAULTS ==
	      HMM_STAT_SNAPSHOTS + HMM_TRACE_RANGE_FAULT);
static_assert(HMM_STAT_INV_EXCLUSIVE ==
	      HMM_STAT_INV_INVALIDATE + HMM_UPDATE_EXCLUSIVE);

/* Per-CPU so that counting never bounces a cache line between walkers. */
struct hmm_stats {
	unsigned long	count[HMM_STAT_NR];
};

static DEFINE_PER_CPU(struct hmm_stats, hmm_stats);

static inline void hmm_stat_add(enum hmm_stat_item item, unsigned long n)
{
	this_cpu_add(hmm_stats.count[item], n);
}

static inline void hmm_stat_inc(enum hmm_stat_item item)
{
	this_cpu_inc(hmm_stats.count[item]);
}

#ifdef CONFIG_DEBUG_FS
static int hmm_stats_show(struct seq_file *m, void *unused)
{
	unsigned long sum;
	int item, cpu;

	for (item = 0; item < HMM_STAT_NR; item++) {
		sum = 0;
		for_each_possible_cpu(cpu)
			sum += per_cpu(hmm_stats.count[item], cpu);
		seq_printf(m, "%s %lu\n", hmm_stat_names[item], sum);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(hmm_stats);

static int __init hmm_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("hmm", NULL);

	debugfs_create_file("stats", 0444, dir, NULL, &hmm_stats_fops);
	return 0;
}
late_initcall(hmm_debugfs_init);
#endif /* CONFIG_DEBUG_FS */

/* ------------------------------------------------------------------------
 * Mirror registration and invalidation
 */

/**
 * struct hmm - the mirrors of one mm
 * @notifier: interval notifier covering the whole user address space; its
 *	sequence count is the validity state of every snapshot of every
 *	mirror of @mm.
 * @mm: the mm, pinned (mmgrab()) by @notifier.
 * @mirrors_sem: protects @mirrors; held for read while the callbacks run,
 *	so taking it for write waits for them.
 * @mirrors: registered mirrors, in registration order.
 * @node: entry in hmm_table.
 *
 * Created by the first hmm_mirror_register() on an mm, freed by the last
 * hmm_mirror_unregister().  One notifier for every mirror lets an update
 * start the invalidation of every device before it waits for any of them.
 */
struct hmm {
	struct mmu_interval_notifier	notifier;
	struct mm_struct		*mm;
	struct rw_semaphore		mirrors_sem;
	struct list_head		mirrors;
	struct hlist_node		node;
};

/*
 * mm -> struct hmm.  Only registration and unregistration look it up, so
 * one mutex is enough.  Lock order: mmap_lock, hmm_table_lock, mirrors_sem.
 */
static DEFINE_MUTEX(hmm_table_lock);
static DEFINE_HASHTABLE(hmm_table, 6);

/*
 * Models "running a mirror callback".  hmm_mirror_unregister() waits for
 * callbacks to finish, so calling it from a callback, or while holding a
 * lock that a callback takes, deadlocks; this map lets lockdep say so.
 */
#ifdef CONFIG_LOCKDEP
static struct lockdep_map hmm_mirror_callback_map = {
	.name = "hmm_mirror_callback"
};
#endif

/* Start and length of the interval notifier of an mm: every address. */
#define HMM_MIRROR_START	0UL
#define HMM_MIRROR_LENGTH	(ULONG_MAX & PAGE_MASK)

static enum hmm_update_event hmm_update_event(enum mmu_notifier_event event)
{
	switch (event) {
	case MMU_NOTIFY_UNMAP:
		return HMM_UPDATE_UNMAP;
	case MMU_NOTIFY_CLEAR:
		return HMM_UPDATE_CLEAR;
	case MMU_NOTIFY_PROTECTION_VMA:
	case MMU_NOTIFY_PROTECTION_PAGE:
		return HMM_UPDATE_PROTECTION;
	case MMU_NOTIFY_SOFT_DIRTY:
		return HMM_UPDATE_SOFT_DIRTY;
	case MMU_NOTIFY_RELEASE:
		return HMM_UPDATE_RELEASE;
	case MMU_NOTIFY_MIGRATE:
		return HMM_UPDATE_MIGRATE;
	case MMU_NOTIFY_EXCLUSIVE:
		return HMM_UPDATE_EXCLUSIVE;
	}
	return HMM_UPDATE_INVALIDATE;
}

/*
 * Phase one for one mirror: forward the update.  Returns 0 or -EAGAIN;
 * a fence the mirror handed back is pushed on @fences.
 */
static int hmm_mirror_start(struct hmm_mirror *mirror,
			    const struct hmm_update *base,
			    struct hmm_fence **fences)
{
	struct hmm_update update = *base;
	int ret;

	if (update.event == HMM_UPDATE_RELEASE && mirror->ops->release) {
		/* exit_mmap() sends this once; only the mirror may repeat. */
		if (mirror->released)
			return 0;
		mirror->released = true;
		lock_map_acquire(&hmm_mirror_callback_map);
		mirror->ops->release(mirror);
		lock_map_release(&hmm_mirror_callback_map);
		return 0;
	}

	lock_map_acquire(&hmm_mirror_callback_map);
	ret = mirror->ops->sync_cpu_device_pagetables(mirror, &update);
	lock_map_release(&hmm_mirror_callback_map);

	/* A fence comes with success only; drop one given with an error. */
	if (update.fence && WARN_ON_ONCE(ret)) {
		update.fence->ops->put(update.fence);
		update.fence = NULL;
	}
	if (update.fence) {
		if (!update.blockable &&
		    !update.fence->ops->signaled(update.fence)) {
			/* Waiting is not allowed: the whole update fails. */
			update.fence->ops->put(update.fence);
			hmm_stat_inc(HMM_STAT_FENCE_EAGAIN);
			return -EAGAIN;
		}
		update.fence->next = *fences;
		*fences = update.fence;
		return 0;
	}
	if (likely(!ret))
		return 0;

	if (!update.blockable) {
		/* Only -EAGAIN is allowed here, anything else is a bug. */
		WARN_ON_ONCE(ret != -EAGAIN);
		return -EAGAIN;
	}

	/* Nothing can stop a blockable invalidation; treat it as done. */
	WARN_ONCE(1, "blockable sync_cpu_device_pagetables() failed: %d\n",
		  ret);
	return 0;
}

/*
 * Phase two: wait for (only when @wait) and release every fence.  A
 * non-blockable update only holds signaled fences, so nothing sleeps.
 */
static unsigned int hmm_fences_finish(struct hmm_fence *fences, bool wait)
{
	unsigned int count = 0;
	struct hmm_fence *fence;

	while (fences) {
		fence = fences;
		fences = fence->next;
		fence->next = NULL;
		if (wait)
			fence->ops->wait(fence);
		fence->ops->put(fence);
		count++;
	}
	return count;
}

static bool hmm_invalidate(struct mmu_interval_notifier *mni,
			   const struct mmu_notifier_range *nrange,
			   unsigned long cur_seq)
{
	struct hmm *hmm = container_of(mni, struct hmm, notifier);
	const struct hmm_update base = {
		.start = nrange->start,
		.end = nrange->end,
		.event = hmm_update_event(nrange->event),
		.blockable = mmu_notifier_range_blockable(nrange),
		.owner = nrange->owner,
	};
	struct hmm_fence *fences = NULL;
	struct hmm_mirror *mirror;
	unsigned int mirrors = 0, nfences;
	u64 t0 = ktime_get_ns();
	int ret = 0;

	/*
	 * Invalidate every snapshot first: the driver's sync callback takes
	 * the lock hmm_vma_range_done() runs under only after this store.
	 */
	mmu_interval_set_seq(mni, cur_seq);

	if (base.blockable)
		down_read(&hmm->mirrors_sem);
	else if (!down_read_trylock(&hmm->mirrors_sem))
		ret = -EAGAIN;

	if (!ret) {
		/* Phase one: every device starts invalidating. */
		list_for_each_entry(mirror, &hmm->mirrors, list) {
			mirrors++;
			ret = hmm_mirror_start(mirror, &base, &fences);
			if (ret)
				break;
		}
		/* Phase two: wait for all of them at once. */
		nfences = hmm_fences_finish(fences, base.blockable);
		up_read(&hmm->mirrors_sem);
		hmm_stat_add(HMM_STAT_FENCES, nfences);
	}

	hmm_stat_inc(HMM_STAT_INV_INVALIDATE + base.event);
	if (!base.blockable)
		hmm_stat_inc(ret ? HMM_STAT_INV_NONBLOCK_EAGAIN :
			     HMM_STAT_INV_NONBLOCK);
	trace_hmm_invalidate(hmm->mm, &base, mirrors, ktime_get_ns() - t0,
			     ret);
	return !ret;
}

static const struct mmu_interval_notifier_ops hmm_notifier_ops = {
	.invalidate = hmm_invalidate,
};

static int hmm_mirror_check(struct hmm_mirror *mirror, struct mm_struct *mm)
{
	if (WARN_ON_ONCE(!mm || !mirror->ops ||
			 !mirror->ops->sync_cpu_device_pagetables))
		return -EINVAL;
	/* Registered twice: the mirror is live, do not touch it. */
	if (WARN_ON_ONCE(mirror->mm))
		return -EBUSY;
	return 0;
}

static struct hmm *hmm_lookup(struct mm_struct *mm)
{
	struct hmm *hmm;

	lockdep_assert_held(&hmm_table_lock);
	hash_for_each_possible(hmm_table, hmm, node, (unsigned long)mm)
		if (hmm->mm == mm)
			return hmm;
	return NULL;
}

/* The struct hmm of @mm, created if needed.  mmap_lock held for write. */
static struct hmm *hmm_get_locked(struct mm_struct *mm)
{
	struct hmm *hmm;
	int ret;

	lockdep_assert_held(&hmm_table_lock);
	hmm = hmm_lookup(mm);
	if (hmm)
		return hmm;

	hmm = kzalloc(sizeof(*hmm), GFP_KERNEL);
	if (!hmm)
		return ERR_PTR(-ENOMEM);
	hmm->mm = mm;
	init_rwsem(&hmm->mirrors_sem);
	INIT_LIST_HEAD(&hmm->mirrors);
	ret = mmu_interval_notifier_insert_locked(&hmm->notifier, mm,
						  HMM_MIRROR_START,
						  HMM_MIRROR_LENGTH,
						  &hmm_notifier_ops);
	if (ret) {
		kfree(hmm);
		return ERR_PTR(ret);
	}
	hash_add(hmm_table, &hmm->node, (unsigned long)mm);
	return hmm;
}

/**
 * hmm_mirror_register_locked() - hmm_mirror_register() under the mmap_lock
 * @mirror: zeroed mirror with &hmm_mirror.ops set
 * @mm: address space to mirror, with a reference on its users
 *
 * Context: Process context, mmap_lock of @mm held for write.
 *
 * Return: as hmm_mirror_register(), except that -EINTR cannot happen.
 */
int hmm_mirror_register_locked(struct hmm_mirror *mirror,
			       struct mm_struct *mm)
{
	struct hmm *hmm;
	int ret;

	ret = hmm_mirror_check(mirror, mm);
	if (ret)
		return ret;
	mmap_assert_write_locked(mm);

	mutex_lock(&hmm_table_lock);
	hmm = hmm_get_locked(mm);
	if (IS_ERR(hmm)) {
		mutex_unlock(&hmm_table_lock);
		return PTR_ERR(hmm);
	}
	/* Set before the mirror is live: callbacks may look at them. */
	mirror->released = false;
	mirror->mm = mm;
	mirror->hmm = hmm;
	down_write(&hmm->mirrors_sem);
	list_add_tail(&mirror->list, &hmm->mirrors);
	up_write(&hmm->mirrors_sem);
	mutex_unlock(&hmm_table_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(hmm_mirror_register_locked);

/**
 * hmm_mirror_register() - start mirroring an address space
 * @mirror: zeroed mirror with &hmm_mirror.ops set
 * @mm: address space to mirror; the caller holds a reference on its users
 *	(mmget(), or @mm is current->mm)
 *
 * Once this returns, &hmm_mirror_ops.sync_cpu_device_pagetables is called
 * before any change of the CPU page table of @mm, and
 * &hmm_mirror_ops.release when @mm is torn down.  The mirror pins the
 * mm_struct (not its address space) until hmm_mirror_unregister().  Every
 * mirror of an mm is called for each update before the core waits for the
 * fences any of them returned.
 *
 * Context: Process context.  Takes the mmap_lock of @mm for write, so the
 * caller must not hold it; see hmm_mirror_register_locked().
 *
 * Return:
 * * 0 - the mirror is registered.
 * * -EINVAL - @mm is NULL or the mirror has no sync callback.
 * * -EBUSY - the mirror is already registered.
 * * -ENOMEM - out of memory.
 * * -EINTR - a fatal signal arrived while waiting for the mmap_lock.
 */
int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm)
{
	int ret;

	ret = hmm_mirror_check(mirror, mm);
	if (ret)
		return ret;
	if (mmap_write_lock_killable(mm))
		return -EINTR;
	ret = hmm_mirror_register_locked(mirror, mm);
	mmap_write_unlock(mm);
	return ret;
}
EXPORT_SYMBOL_GPL(hmm_mirror_register);

/**
 * hmm_mirror_unregister() - stop mirroring an address space
 * @mirror: mirror registered with hmm_mirror_register()
 *
 * This is a barrier: when it returns, no callback of this mirror is running
 * and none will run again, including a release() racing with exit_mmap().
 * It may be called before or after the mm exited.  Unregistering a mirror
 * that is not registered is reported once and ignored.
 *
 * Context: Process context, may sleep.  Must not be called from a mirror
 * callback nor with a lock held that a mirror callback takes.
 */
void hmm_mirror_unregister(struct hmm_mirror *mirror)
{
	struct hmm *hmm = mirror->hmm;
	bool last;

	might_sleep();

	if (WARN_ON_ONCE(!mirror->mm))
		return;

	lock_map_acquire(&hmm_mirror_callback_map);
	lock_map_release(&hmm_mirror_callback_map);

	mutex_lock(&hmm_table_lock);
	/* Waits for the callbacks in flight, which hold it for read. */
	down_write(&hmm->mirrors_sem);
	list_del(&mirror->list);
	last = list_empty(&hmm->mirrors);
	up_write(&hmm->mirrors_sem);
	if (last)
		hash_del(&hmm->node);
	mutex_unlock(&hmm_table_lock);

	mirror->hmm = NULL;
	mirror->mm = NULL;
	if (!last)
		return;
	/* Unreachable now; waits for a callback in flight, unpins the mm. */
	mmu_interval_notifier_remove(&hmm->notifier);
	kfree(hmm);
}
EXPORT_SYMBOL_GPL(hmm_mirror_unregister);

/* ------------------------------------------------------------------------
 * Entry access in the range's encoding
 */

static inline unsigned long hmm_index(const struct hmm_range *range,
				      unsigned long addr)
{
	return (addr - range->start) >> PAGE_SHIFT;
}

static inline u64 hmm_entry_get(const struct hmm_vma_walk *hw,
				unsigned long i)
{
	if (hw->fixed)
		return hw->range->hmm_pfns[i];
	return hw->range->pfns[i];
}

/*
 * Fixed format entries are unsigned long.  Every bit the fixed encoding
 * uses is below BITS_PER_LONG, so the narrowing store loses nothing on
 * 32-bit.
 */
static inline void hmm_entry_set(struct hmm_vma_walk *hw, unsigned long i,
				 u64 entry)
{
	if (hw->fixed)
		hw->range->hmm_pfns[i] = (unsigned long)entry;
	else
		hw->range->pfns[i] = entry;
}

/*
 * Write @entry, @entry + @step, @entry + 2 * @step... to the entries of
 * [addr, end).  With @step the pfn unit of the encoding this writes
 * consecutive pfns: flag and order bits never overlap the pfn bits, and a
 * valid pfn plus the pages of its mapping does not carry out of them.  The
 * format test sits outside the loops, which huge mappings make long.
 */
static void hmm_fill_step(struct hmm_vma_walk *hw, unsigned long addr,
			  unsigned long end, u64 entry, u64 step)
{
	unsigned long i = hmm_index(hw->range, addr);
	unsigned long n = (end - addr) >> PAGE_SHIFT;
	unsigned long *fixed_out;
	u64 *out;

	if (hw->fixed) {
		fixed_out = hw->range->hmm_pfns + i;
		for (i = 0; i < n; i++, entry += step)
			fixed_out[i] = (unsigned long)entry;
		return;
	}
	out = hw->range->pfns + i;
	for (i = 0; i < n; i++, entry += step)
		out[i] = entry;
}

static void hmm_fill(struct hmm_vma_walk *hw, unsigned long addr,
		     unsigned long end, u64 entry)
{
	hmm_fill_step(hw, addr, end, entry, 0);
}

static void hmm_fill_pfns(struct hmm_vma_walk *hw, unsigned long addr,
			  unsigned long end, unsigned long pfn, u64 cpu)
{
	hmm_fill_step(hw, addr, end, ((u64)pfn << hw->pfn_shift) | cpu,
		      1ULL << hw->pfn_shift);
}

/*
 * [addr, end) lies in one huge mapping whose page at @addr is @pfn, with
 * CPU state @cpu.  In HMM_RANGE_SPARSE_HUGE mode, once the map order made
 * it into @cpu (so hmm_pfn_span() can tell the reach), only the entry of
 * @addr is written.
 */
static void hmm_fill_huge(struct hmm_vma_walk *hw, unsigned long addr,
			  unsigned long end, unsigned long pfn, u64 cpu)
{
	if (hw->sparse && (cpu & hw->range->order_mask))
		end = addr + PAGE_SIZE;
	hmm_fill_pfns(hw, addr, end, pfn, cpu);
}

/* The request of entry @i, in the range's encoding. */
static inline u64 hmm_entry_request(const struct hmm_vma_walk *hw,
				    unsigned long i)
{
	if (!hw->may_fault)
		return 0;
	if (hw->per_entry)
		return hmm_entry_get(hw, i);
	if (!hw->req_mask)
		return hw->req_default;
	return (hmm_entry_get(hw, i) & hw->req_mask) | hw->req_default;
}

/*
 * HMM_NEED_* bits that entry request @req needs when the CPU page table
 * offers @cpu (both in the range's encoding).  A request without the valid
 * flag asks for nothing.
 */
static inline unsigned int hmm_need(const struct hmm_vma_walk *hw, u64 req,
				    u64 cpu)
{
	unsigned int write = (req & hw->f_write) ? HMM_NEED_WRITE : 0;

	if (!(req & hw->f_valid))
		return 0;
	/* Migrate device private memory back to system memory. */
	if ((req & hw->f_devpriv) && (cpu & hw->f_devpriv))
		return HMM_NEED_FAULT | write;
	if (write && !(cpu & hw->f_write))
		return HMM_NEED_FAULT | HMM_NEED_WRITE;
	if (!(cpu & hw->f_valid))
		return HMM_NEED_FAULT;
	return 0;
}

/* Does any entry of [addr, end) request a fault at all? */
static bool hmm_wants_fault(const struct hmm_vma_walk *hw, unsigned long addr,
			    unsigned long end)
{
	unsigned long i = hmm_index(hw->range, addr);

	if (!hw->may_fault)
		return false;
	for (; addr < end; addr += PAGE_SIZE, i++)
		if (hmm_entry_request(hw, i) & hw->f_valid)
			return true;
	return false;
}

static u64 hmm_order_flags(const struct hmm_vma_walk *hw, u64 cpu,
			   unsigned int order)
{
	return hmm_pfn_set_map_order(hw->range, cpu, order);
}

/* ------------------------------------------------------------------------
 * The page table walk
 */

/*
 * Record that the page at @addr needs @need and leave the walk.  The caller
 * may extend hw->fault_end over following pages with the same need.
 */
static int hmm_record_fault(struct mm_walk *walk, unsigned long addr,
			    unsigned int need)
{
	struct hmm_vma_walk *hw = walk->private;
	struct vm_area_struct *vma = walk->vma;

	if (!vma)
		return -EFAULT;
	if ((need & HMM_NEED_WRITE) && !(vma->vm_flags & VM_WRITE))
		return -EPERM;

	hw->fault_start = addr;
	hw->fault_end = addr + PAGE_SIZE;
	hw->fault_need = need;
	return HMM_WALK_FAULT;
}

/*
 * [addr, end) is backed by one CPU state @cpu (a hole, a PMD, a PUD, a
 * hugetlb page).  If some entry needs a fault, record the first run of
 * entries with the same need and return HMM_WALK_FAULT without writing any
 * entry of the chunk; otherwise return 0.  Negative: error.
 */
static int hmm_chunk_fault(struct mm_walk *walk, unsigned long addr,
			   unsigned long end, u64 cpu)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long i = hmm_index(hw->range, addr);
	unsigned long pos;
	unsigned int need = 0;
	int ret;

	if (!hw->may_fault)
		return 0;

	for (pos = addr; pos < end; pos += PAGE_SIZE, i++) {
		need = hmm_need(hw, hmm_entry_request(hw, i), cpu);
		if (need)
			break;
	}
	if (!need)
		return 0;

	ret = hmm_record_fault(walk, pos, need);
	if (ret != HMM_WALK_FAULT)
		return ret;
	hw->last = addr;

	for (pos += PAGE_SIZE, i++; pos < end; pos += PAGE_SIZE, i++) {
		if (hmm_need(hw, hmm_entry_request(hw, i), cpu) != need)
			break;
		hw->fault_end = pos + PAGE_SIZE;
	}
	return HMM_WALK_FAULT;
}

/* [addr, end) cannot be mirrored: error entries, or -EFAULT if requested. */
static int hmm_chunk_error(struct mm_walk *walk, unsigned long addr,
			   unsigned long end)
{
	struct hmm_vma_walk *hw = walk->private;

	if (hmm_wants_fault(hw, addr, end))
		return -EFAULT;
	hmm_fill(hw, addr, end, hw->v_error);
	return 0;
}

/*
 * Holes with a VMA are faultable; addresses without a VMA are errors, as
 * any access would be (SIGSEGV).
 */
static int hmm_vma_walk_hole(unsigned long addr, unsigned long end,
			     __always_unused int depth, struct mm_walk *walk)
{
	struct hmm_vma_walk *hw = walk->private;
	int ret;

	if (!walk->vma)
		return hmm_chunk_error(walk, addr, end);

	ret = hmm_chunk_fault(walk, addr, end, 0);
	if (ret)
		return ret;
	hmm_fill(hw, addr, end, hw->v_none);
	return 0;
}

static int hmm_check_signal(const struct hmm_vma_walk *hw)
{
	/* hmm_range_fault() keeps its historical behaviour: no -EINTR. */
	if (!hw->fixed && fatal_signal_pending(current))
		return -EINTR;
	cond_resched();
	return 0;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/* Called with the PMD lock held; @pmd is a huge (or devmap) leaf. */
static int hmm_vma_handle_pmd(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, pmd_t pmd)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long pfn;
	u64 cpu = 0;
	int ret;

	/* NUMA hinting: not accessible until faulted. */
	if (!pmd_protnone(pmd)) {
		cpu = hw->f_valid | (pmd_write(pmd) ? hw->f_write : 0);
		cpu = hmm_order_flags(hw, cpu, PMD_SHIFT - PAGE_SHIFT);
	}

	ret = hmm_chunk_fault(walk, addr, end, cpu);
	if (ret)
		return ret;
	if (!cpu) {
		hmm_fill(hw, addr, end, hw->v_none);
		return 0;
	}

	pfn = pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
	hmm_fill_huge(hw, addr, end, pfn, cpu);
	return 0;
}
#else
static int hmm_vma_handle_pmd(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, pmd_t pmd)
{
	/* pmd_trans_huge() and pmd_devmap() are constant false here. */
	return -EFAULT;
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

/*
 * The pte at @addr is none and needs @need: fault it together with the
 * following none ptes of this page table that need the same.
 */
static int hmm_fault_none_ptes(struct mm_walk *walk, unsigned long addr,
			       unsigned long end, pte_t *ptep,
			       unsigned int need)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long i = hmm_index(hw->range, addr);
	int ret;

	ret = hmm_record_fault(walk, addr, need);
	if (ret != HMM_WALK_FAULT)
		return ret;
	hw->last = addr;

	for (addr += PAGE_SIZE, i++, ptep++; addr < end;
	     addr += PAGE_SIZE, i++, ptep++) {
		if (!pte_none_mostly(ptep_get(ptep)) ||
		    hmm_need(hw, hmm_entry_request(hw, i), 0) != need)
			break;
		hw->fault_end = addr + PAGE_SIZE;
	}
	return HMM_WALK_FAULT;
}

/* A single pte that needs a fault; entries before @addr are written. */
static int hmm_fault_pte(struct mm_walk *walk, unsigned long addr,
			 unsigned int need)
{
	struct hmm_vma_walk *hw = walk->private;

	hw->last = addr;
	return hmm_record_fault(walk, addr, need);
}

static int hmm_vma_handle_swap(struct mm_walk *walk, unsigned long addr,
			       pte_t pte, u64 req)
{
	struct hmm_vma_walk *hw = walk->private;
	struct hmm_range *range = hw->range;
	unsigned long i = hmm_index(range, addr);
	swp_entry_t entry = pte_to_swp_entry(pte);
	unsigned int need;

	/* Device private memory of the caller is reported, not faulted. */
	if (is_device_private_entry(entry) &&
	    pfn_swap_entry_to_page(entry)->pgmap->owner ==
	    range->dev_private_owner) {
		u64 cpu = hw->f_valid | hw->f_devpriv;

		if (is_writable_device_private_entry(entry))
			cpu |= hw->f_write;
		/*
		 * hmm_range_fault() always reported these pages; other users
		 * get what they requested (write access, migration back).
		 */
		need = hw->fixed ? 0 : hmm_need(hw, req, cpu);
		if (need)
			return hmm_fault_pte(walk, addr, need);
		hmm_entry_set(hw, i, ((u64)swp_offset_pfn(entry) <<
				      hw->pfn_shift) | cpu);
		return 0;
	}

	need = hmm_need(hw, req, 0);
	if (!need) {
		hmm_entry_set(hw, i, hw->v_none);
		return 0;
	}

	if (is_migration_entry(entry)) {
		hw->last = addr;
		return HMM_WALK_PTE_MIGRATION;
	}

	/*
	 * Swapped out pages, device private pages of another owner and
	 * device exclusive entries all come back with a CPU fault.
	 */
	if (!non_swap_entry(entry) || is_device_private_entry(entry) ||
	    is_device_exclusive_entry(entry))
		return hmm_fault_pte(walk, addr, need);

	/* Poisoned pages and other entries cannot be made valid. */
	return -EFAULT;
}

static int hmm_vma_handle_pte(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, pte_t *ptep)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long i = hmm_index(hw->range, addr);
	pte_t pte = ptep_get(ptep);
	u64 req = hmm_entry_request(hw, i);
	unsigned int need;
	u64 cpu = 0;

	if (pte_none_mostly(pte)) {
		need = hmm_need(hw, req, 0);
		if (need)
			return hmm_fault_none_ptes(walk, addr, end, ptep, need);
		hmm_entry_set(hw, i, hw->v_none);
		return 0;
	}

	if (!pte_present(pte))
		return hmm_vma_handle_swap(walk, addr, pte, req);

	/* NUMA hinting ptes are not accessible until faulted. */
	if (!pte_protnone(pte))
		cpu = hw->f_valid | (pte_write(pte) ? hw->f_write : 0);

	need = hmm_need(hw, req, cpu);
	if (need)
		return hmm_fault_pte(walk, addr, need);
	if (!cpu) {
		hmm_entry_set(hw, i, hw->v_none);
		return 0;
	}

	/*
	 * No struct page to hand out (pfn maps inside a VM_MIXEDMAP VMA):
	 * the device cannot use it.  The zero page and devmap (DAX) pages
	 * are normal pages for this purpose.
	 */
	if (!vm_normal_page(walk->vma, addr, pte) && !pte_devmap(pte) &&
	    !is_zero_pfn(pte_pfn(pte))) {
		if (req & hw->f_valid)
			return -EFAULT;
		hmm_entry_set(hw, i, hw->v_special);
		return 0;
	}

	hmm_entry_set(hw, i, ((u64)pte_pfn(pte) << hw->pfn_shift) | cpu);
	return 0;
}

/*
 * Snapshot fast path, for walks that fault nothing: none ptes and present,
 * accessible ptes that are not special (so vm_normal_page() would return
 * their page) are written here in one tight loop, with the encoding held in
 * registers.  Returns the address of the first pte it left to
 * hmm_vma_handle_pte(), or @end.  @fixed is a constant at each call site,
 * so each entry format gets its own loop.
 */
static __always_inline unsigned long
hmm_snapshot_ptes(struct hmm_vma_walk *hw, unsigned long addr,
		  unsigned long end, pte_t *ptep, bool fixed)
{
	unsigned long i = hmm_index(hw->range, addr);
	unsigned long *fixed_out = NULL;
	u64 *out = NULL;
	const unsigned int shift = hw->pfn_shift;
	const u64 valid = hw->f_valid;
	const u64 write = hw->f_write;
	const u64 none = hw->v_none;
	pte_t pte;
	u64 entry;

	/* Only the array of the format in use exists. */
	if (fixed)
		fixed_out = hw->range->hmm_pfns + i;
	else
		out = hw->range->pfns + i;
	for (; addr < end; addr += PAGE_SIZE, ptep++) {
		pte = ptep_get(ptep);
		if (pte_none(pte))
			entry = none;
		else if (pte_present(pte) && !pte_protnone(pte) &&
			 !pte_special(pte))
			entry = ((u64)pte_pfn(pte) << shift) | valid |
				(pte_write(pte) ? write : 0);
		else
			break;
		if (fixed)
			*fixed_out++ = (unsigned long)entry;
		else
			*out++ = entry;
	}
	return addr;
}

/*
 * The loops themselves.  Built for size, the kernel calls the pte helpers
 * (pte_pfn() and what it uses) out of line, two calls per pte: flattening
 * inlines them, for a fifth fewer instructions per pte and no call.
 */
static noinline __flatten unsigned long
hmm_snapshot_ptes_fixed(struct hmm_vma_walk *hw, unsigned long addr,
			unsigned long end, pte_t *ptep)
{
	return hmm_snapshot_ptes(hw, addr, end, ptep, true);
}

static noinline __flatten unsigned long
hmm_snapshot_ptes_enc(struct hmm_vma_walk *hw, unsigned long addr,
		      unsigned long end, pte_t *ptep)
{
	return hmm_snapshot_ptes(hw, addr, end, ptep, false);
}

/* Kept out of the flattened hmm_walk_pmd(): it has its own fast loops. */
static noinline int hmm_vma_walk_ptes(struct mm_walk *walk, pmd_t *pmdp,
				      unsigned long start, unsigned long end)
{
	struct hmm_vma_walk *hw = walk->private;
	/* Without special ptes any pte may hide a pfn map: no fast path. */
	bool fast = !hw->may_fault &&
		    IS_ENABLED(CONFIG_ARCH_HAS_PTE_SPECIAL);
	unsigned long addr, next;
	pte_t *ptep, *first;
	int ret = 0;

	first = pte_offset_map(pmdp, start);
	for (addr = start, ptep = first; addr < end;
	     addr += PAGE_SIZE, ptep++) {
		if (fast) {
			if (hw->fixed)
				next = hmm_snapshot_ptes_fixed(hw, addr, end,
							       ptep);
			else
				next = hmm_snapshot_ptes_enc(hw, addr, end,
							     ptep);
			ptep += (next - addr) >> PAGE_SHIFT;
			addr = next;
			if (addr >= end)
				break;
		}
		ret = hmm_vma_handle_pte(walk, addr, end, ptep);
		if (ret)
			break;
	}
	pte_unmap(first);

	if (ret == HMM_WALK_PTE_MIGRATION) {
		migration_entry_wait(walk->mm, pmdp, addr);
		ret = HMM_WALK_RESTART;
	}
	return ret;
}

/*
 * [start, end) within the PMD at @pmdp, whatever that PMD holds.  Flattened
 * for the same reason as the pte loops: the pmd helpers and this file's
 * small ones would otherwise be called out of line, several times per PMD,
 * which is about all a sparse snapshot of huge pages does.
 */
static noinline __flatten int hmm_walk_pmd(pmd_t *pmdp, unsigned long start,
					   unsigned long end,
					   struct mm_walk *walk)
{
	struct hmm_vma_walk *hw = walk->private;
	spinlock_t *ptl;	/* page table lock of the leaf */
	pmd_t pmd;
	int ret;

again:
	/* A hint only: a huge PMD is read again under its lock below. */
	pmd = pmd_read_atomic(pmdp);
	if (pmd_none(pmd))
		return hmm_vma_walk_hole(start, end, -1, walk);

	if (is_pmd_migration_entry(pmd)) {
		if (!hmm_wants_fault(hw, start, end)) {
			hmm_fill(hw, start, end, hw->v_none);
			return 0;
		}
		hw->last = start;
		pmd_migration_entry_wait(walk->mm, pmdp);
		return HMM_WALK_RESTART;
	}

	if (!pmd_present(pmd))
		return hmm_chunk_error(walk, start, end);

	if (pmd_trans_huge(pmd) || pmd_devmap(pmd)) {
		/* Re-check under the PMD lock: it may be split or zapped. */
		ptl = pmd_lock(walk->mm, pmdp);
		pmd = *pmdp;
		if (!pmd_trans_huge(pmd) && !pmd_devmap(pmd)) {
			spin_unlock(ptl);
			goto again;
		}
		ret = hmm_vma_handle_pmd(walk, start, end, pmd);
		spin_unlock(ptl);
		return ret;
	}

	/* Neither none, huge nor a migration entry: a page table or junk. */
	if (pmd_bad(pmd))
		return hmm_chunk_error(walk, start, end);
	if (pmd_trans_unstable(pmdp))
		goto again;

	return hmm_vma_walk_ptes(walk, pmdp, start, end);
}

static int hmm_vma_walk_pmd(pmd_t *pmdp, unsigned long start,
			    unsigned long end, struct mm_walk *walk)
{
	int ret = hmm_check_signal(walk->private);

	return ret ? ret : hmm_walk_pmd(pmdp, start, end, walk);
}

/*
 * The PMD of @start if [start, end) lies in one PUD of @vma and every level
 * above the PMD is a page table; NULL otherwise (a hugetlb VMA, or an upper
 * level that is none, huge or bad), for the generic walk to handle.  Upper
 * page tables are only freed under the mmap_lock held for write.
 */
static pmd_t *hmm_pmd_table(struct vm_area_struct *vma, unsigned long start,
			    unsigned long end)
{
	pgd_t *pgdp, pgd;
	p4d_t *p4dp, p4d;
	pud_t *pudp, pud;

	if (is_vm_hugetlb_page(vma) || pud_addr_end(start, end) != end)
		return NULL;
	pgdp = pgd_offset(vma->vm_mm, start);
	pgd = READ_ONCE(*pgdp);
	if (pgd_none(pgd) || pgd_bad(pgd))
		return NULL;
	p4dp = p4d_offset(pgdp, start);
	p4d = READ_ONCE(*p4dp);
	if (p4d_none(p4d) || p4d_bad(p4d))
		return NULL;
	pudp = pud_offset(p4dp, start);
	pud = READ_ONCE(*pudp);
	if (pud_none(pud) || pud_leaf(pud) || pud_trans_huge(pud) ||
	    pud_devmap(pud) || pud_bad(pud))
		return NULL;
	return pmd_offset(pudp, start);
}

/*
 * Walk the PMDs from @pmdp over [start, end), all in one page table: what
 * walk_page_range_vma() would do, without its four levels of loops and
 * indirect calls, which cost more than a walk of a few pages.  Between
 * PMDs, not before the first, check for signals and reschedule.
 */
static int hmm_walk_pmds(struct mm_walk *walk, pmd_t *pmdp,
			 unsigned long start, unsigned long end)
{
	unsigned long next;
	int ret;

	for (;;) {
		next = pmd_addr_end(start, end);
		ret = hmm_walk_pmd(pmdp, start, next, walk);
		if (ret || next >= end)
			return ret;
		ret = hmm_check_signal(walk->private);
		if (ret)
			return ret;
		start = next;
		pmdp++;
	}
}

#if defined(CONFIG_ARCH_HAS_PTE_DEVMAP) && \
	defined(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)
static int hmm_vma_walk_pud(pud_t *pudp, unsigned long start,
			    unsigned long end, struct mm_walk *walk)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long pfn;
	spinlock_t *ptl;	/* page table lock of the leaf */
	pud_t pud;
	u64 cpu;
	int ret;

	/* Not a huge PUD: let the walk descend to the PMD level. */
	pud = READ_ONCE(*pudp);
	if (!pud_trans_huge(pud) && !pud_devmap(pud))
		return 0;

	ptl = pud_lock(walk->mm, pudp);
	pud = *pudp;
	if (!pud_trans_huge(pud) && !pud_devmap(pud)) {
		/* Split or zapped meanwhile: look at it again. */
		spin_unlock(ptl);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	cpu = hw->f_valid | (pud_write(pud) ? hw->f_write : 0);
	cpu = hmm_order_flags(hw, cpu, PUD_SHIFT - PAGE_SHIFT);
	ret = hmm_chunk_fault(walk, start, end, cpu);
	if (!ret) {
		pfn = pud_pfn(pud) + ((start & ~PUD_MASK) >> PAGE_SHIFT);
		hmm_fill_huge(hw, start, end, pfn, cpu);
		/* Do not split the PUD to walk it again. */
		walk->action = ACTION_CONTINUE;
	}
	spin_unlock(ptl);
	return ret;
}
#else
#define hmm_vma_walk_pud	NULL
#endif

#ifdef CONFIG_HUGETLB_PAGE
static int hmm_vma_walk_hugetlb(pte_t *ptep, unsigned long hmask,
				unsigned long start, unsigned long end,
				struct mm_walk *walk)
{
	struct hmm_vma_walk *hw = walk->private;
	struct hstate *h = hstate_vma(walk->vma);
	unsigned long pfn;
	spinlock_t *ptl;	/* page table lock of the leaf */
	u64 cpu = 0;
	pte_t pte;
	int ret;

	ret = hmm_check_signal(hw);
	if (ret)
		return ret;

	ptl = huge_pte_lock(h, walk->mm, ptep);
	pte = huge_ptep_get(ptep);
	/* Migration and poison entries are resolved by hugetlb_fault(). */
	if (pte_present(pte) && !pte_protnone(pte)) {
		cpu = hw->f_valid | (huge_pte_write(pte) ? hw->f_write : 0);
		cpu = hmm_order_flags(hw, cpu, huge_page_order(h));
	}

	ret = hmm_chunk_fault(walk, start, end, cpu);
	if (!ret) {
		if (cpu) {
			pfn = pte_pfn(pte) + ((start & ~hmask) >> PAGE_SHIFT);
			hmm_fill_huge(hw, start, end, pfn, cpu);
		} else {
			hmm_fill(hw, start, end, hw->v_none);
		}
	}
	spin_unlock(ptl);
	return ret;
}
#else
#define hmm_vma_walk_hugetlb	NULL
#endif /* CONFIG_HUGETLB_PAGE */

/*
 * VMAs without struct pages (VM_IO, VM_PFNMAP) or without read access
 * cannot be mirrored.  Write-only mappings count as unreadable: a device
 * cannot be given write access without read access.
 */
static bool hmm_vma_mirrorable(const struct vm_area_struct *vma)
{
	return !(vma->vm_flags & (VM_IO | VM_PFNMAP)) &&
	       (vma->vm_flags & VM_READ);
}

/* Inside one mirrorable VMA; hmm_walk_vmas() handles the rest. */
static const struct mm_walk_ops hmm_walk_ops = {
	.pud_entry	= hmm_vma_walk_pud,
	.pmd_entry	= hmm_vma_walk_pmd,
	.pte_hole	= hmm_vma_walk_hole,
	.hugetlb_entry	= hmm_vma_walk_hugetlb,
};

/* [start, end) inside walk->vma. */
static int hmm_walk_vma(struct mm_walk *walk, unsigned long start,
			unsigned long end)
{
	pmd_t *pmdp;

	if (!hmm_vma_mirrorable(walk->vma))
		return hmm_chunk_error(walk, start, end);
	pmdp = hmm_pmd_table(walk->vma, start, end);
	if (pmdp)
		return hmm_walk_pmds(walk, pmdp, start, end);
	return walk_page_range_vma(walk->vma, start, end, &hmm_walk_ops,
				   walk->private);
}

/*
 * Walk [start, end) one VMA at a time.  walk_page_range() looks up the VMA
 * following each one it walks, even when the range ends inside it: for a
 * walk of a few pages that second lookup costs as much as the rest of the
 * walk.  Here the next VMA is looked up only when the range goes on.
 */
static int hmm_walk_vmas(struct hmm_vma_walk *hw, struct mm_struct *mm,
			 unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma = find_vma(mm, start);
	struct mm_walk walk = {
		.ops		= &hmm_walk_ops,
		.mm		= mm,
		.private	= hw,
	};
	unsigned long next;
	int ret;

	for (; start < end; start = next) {
		if (!vma || start < vma->vm_start) {
			/* No VMA up to the next one, or to the end: SIGSEGV. */
			next = vma ? min(end, vma->vm_start) : end;
			ret = hmm_chunk_error(&walk, start, next);
		} else {
			next = min(end, vma->vm_end);
			walk.vma = vma;
			ret = hmm_walk_vma(&walk, start, next);
			if (next < end)
				vma = find_vma(mm, next);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Fault the run recorded by the walk, outside the page table walk, with the
 * mmap_lock still held for read.
 */
static int hmm_fault_run(struct hmm_vma_walk *hw, struct mm_struct *mm,
			 bool block)
{
	unsigned int fault_flags = FAULT_FLAG_REMOTE;
	struct vm_area_struct *vma;
	unsigned long addr;
	vm_fault_t fault;
	int ret;

	if (hw->fault_need & HMM_NEED_WRITE)
		fault_flags |= FAULT_FLAG_WRITE;
	if (!block)
		fault_flags |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE;

	vma = vma_lookup(mm, hw->fault_start);
	if (!vma)
		return -EFAULT;

	for (addr = hw->fault_start; addr < hw->fault_end;
	     addr += PAGE_SIZE) {
		/* A run never crosses a VMA, but the VMA was looked up anew. */
		if (addr >= vma->vm_end)
			break;
		fault = handle_mm_fault(vma, addr, fault_flags, NULL);
		/* The mmap_lock was dropped: only possible with !block. */
		if (fault & (VM_FAULT_RETRY | VM_FAULT_COMPLETED))
			return -EAGAIN;
		if (fault & VM_FAULT_ERROR)
			return -EFAULT;
		ret = hmm_check_signal(hw);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Walk the range until every entry is written.  @own_seq: the walk took
 * range->notifier_seq itself and may take a new one while no entry has
 * been written yet; otherwise an invalidation is the caller's to handle.
 */
static int hmm_walk_range(struct hmm_vma_walk *hw, struct mm_struct *mm,
			  bool own_seq, bool block)
{
	struct hmm_range *range = hw->range;
	unsigned long prev_pos = range->start;
	unsigned int stalls = 0;
	unsigned long pos;
	int ret;

	hw->last = range->start;
	for (;;) {
		if (mmu_interval_check_retry(range->notifier,
					     range->notifier_seq)) {
			/* A snapshot has no input to lose: start over. */
			if (own_seq && !hw->may_fault)
				hw->last = range->start;
			if (!own_seq || hw->last != range->start ||
			    ++stalls > HMM_WALK_MAX_STALLS)
				return -EBUSY;
			range->notifier_seq =
				mmu_interval_read_begin(range->notifier);
			hw->retries++;
			continue;
		}

		ret = hmm_walk_vmas(hw, mm, hw->last, range->end);
		if (ret <= 0)
			return ret;

		/* Give up on a position that keeps needing a restart. */
		pos = ret == HMM_WALK_FAULT ? hw->fault_start : hw->last;
		if (pos > prev_pos) {
			prev_pos = pos;
			stalls = 0;
		} else if (++stalls > HMM_WALK_MAX_STALLS) {
			return -EBUSY;
		}

		if (ret != HMM_WALK_FAULT) {
			if (WARN_ON_ONCE(ret != HMM_WALK_RESTART))
				return -EFAULT;
			hw->retries++;
			continue;
		}
		hw->faults++;
		ret = hmm_fault_run(hw, mm, block);
		if (ret)
			return ret;
	}
}

/* Which entries may ask for a fault, from the range's request fields. */
static void hmm_walk_requests(struct hmm_vma_walk *hw, bool may_fault)
{
	if (!may_fault)
		return;
	/* Zero mask and defaults: each entry is its own request (seed API). */
	if (!hw->fixed && !hw->req_mask && !hw->req_default) {
		hw->per_entry = true;
		hw->may_fault = true;
		return;
	}
	hw->may_fault = (hw->req_mask | hw->req_default) & hw->f_valid;
}

/*
 * Walk @range: hmm_walk_range() on a fresh walk state, with statistics and
 * trace events.  A fixed-format walk (hmm_range_fault()) leaves validity to
 * its caller; the others own their notifier sequence.
 *
 * Every field of the state is named in its initializer, zeros included: the
 * compiler then stores the fields one by one.  With a partial initializer,
 * or none (INIT_STACK_ALL_ZERO), gcc -Os clears the whole structure first
 * with a string store, on every walk.
 */
static int hmm_walk_counted(struct hmm_range *range, struct mm_struct *mm,
			    bool may_fault, bool fixed, bool block,
			    unsigned int kind)
{
	struct hmm_vma_walk hw = {
		.range		= range,
		.last		= range->start,
		.fault_start	= 0,
		.fault_end	= 0,
		.f_valid	= range->flags[HMM_PFN_VALID],
		.f_write	= range->flags[HMM_PFN_WRITE],
		.f_devpriv	= range->flags[HMM_PFN_DEVICE_PRIVATE],
		.v_error	= range->values[HMM_PFN_ERROR],
		.v_none		= range->values[HMM_PFN_NONE],
		.v_special	= range->values[HMM_PFN_SPECIAL],
		.req_mask	= range->pfn_flags_mask,
		.req_default	= range->default_flags,
		.fault_need	= 0,
		.pfn_shift	= range->pfn_shift,
		.may_fault	= false,
		.sparse		= range->mode & HMM_RANGE_SPARSE_HUGE,
		.per_entry	= false,
		.fixed		= fixed,
		.retries	= 0,
		.faults		= 0,
	};
	int ret;

	hmm_walk_requests(&hw, may_fault);
	trace_hmm_walk_start(mm, range->start, range->end, kind);
	ret = hmm_walk_range(&hw, mm, !fixed, block);
	hmm_stat_inc(HMM_STAT_SNAPSHOTS + kind);
	hmm_stat_add(HMM_STAT_RETRIES, hw.retries);
	hmm_stat_add(HMM_STAT_FAULT_RUNS, hw.faults);
	if (ret == -EBUSY)
		hmm_stat_inc(HMM_STAT_EBUSY);
	else if (ret == -EAGAIN)
		hmm_stat_inc(HMM_STAT_EAGAIN);
	trace_hmm_walk_end(mm, range->start, range->end, kind, ret,
			   hw.retries, hw.faults);
	return ret;
}

/* Sanity of a range handed to hmm_vma_get_pfns() or hmm_vma_fault(). */
static int hmm_range_check(const struct hmm_range *range)
{
	u64 field;

	if (!range->mirror || !range->pfns || !range->flags ||
	    !range->values || !range->flags[HMM_PFN_VALID])
		return -EINVAL;
	if (WARN_ON_ONCE(!range->mirror->mm))
		return -EINVAL;
	if (range->mode & ~HMM_RANGE_MODE_ALL)
		return -EINVAL;
	/* Without the order a driver could not tell how far an entry goes. */
	if ((range->mode & HMM_RANGE_SPARSE_HUGE) && !range->order_mask)
		return -EINVAL;
	if (range->pfn_shift >= 64 || range->start >= range->end ||
	    !PAGE_ALIGNED(range->start) || !PAGE_ALIGNED(range->end))
		return -EINVAL;
	/* Values are compared whole: none may look valid, NONE is unique. */
	if ((range->values[HMM_PFN_ERROR] | range->values[HMM_PFN_NONE] |
	     range->values[HMM_PFN_SPECIAL]) & range->flags[HMM_PFN_VALID])
		return -EINVAL;
	if (range->values[HMM_PFN_NONE] == range->values[HMM_PFN_ERROR] ||
	    range->values[HMM_PFN_NONE] == range->values[HMM_PFN_SPECIAL])
		return -EINVAL;
	if (range->order_mask) {
		/* One contiguous field, clear of every flag. */
		field = range->order_mask >> __ffs64(range->order_mask);
		if (field & (field + 1))
			return -EINVAL;
		if (range->order_mask & (range->flags[HMM_PFN_VALID] |
					 range->flags[HMM_PFN_WRITE] |
					 range->flags[HMM_PFN_DEVICE_PRIVATE]))
			return -EINVAL;
	}
	return 0;
}

/* Mark a range finished so that a later hmm_vma_range_done() is caught. */
static void hmm_range_finish(struct hmm_range *range)
{
	range->notifier = NULL;
	range->notifier_seq = 0;
}

static int hmm_mirror_walk(struct hmm_range *range, bool may_fault,
			   bool block)
{
	struct mm_struct *mm;
	int ret;

	ret = hmm_range_check(range);
	if (ret)
		return ret;

	mm = range->mirror->mm;
	mmap_assert_locked(mm);

	range->notifier = &range->mirror->hmm->notifier;
	range->notifier_seq = mmu_interval_read_begin(range->notifier);

	ret = hmm_walk_counted(range, mm, may_fault, false, block,
			       !may_fault ? HMM_TRACE_SNAPSHOT :
			       block ? HMM_TRACE_FAULT : HMM_TRACE_FAULT_UNLOCKABLE);
	if (ret)
		hmm_range_finish(range);
	return ret;
}

/**
 * hmm_vma_get_pfns() - snapshot the CPU page table of a range
 * @range: range with &hmm_range.mirror, @start, @end, @pfns and the
 *	encoding (@flags, @values, @pfn_shift, @order_mask) set
 *
 * Fill @range->pfns with the current CPU page table state in the range's
 * encoding without faulting anything; input entries are ignored.  The range
 * may span several VMAs.  Each entry is a valid pfn (flags[HMM_PFN_VALID],
 * plus HMM_PFN_WRITE, HMM_PFN_DEVICE_PRIVATE and the map order as they
 * apply), values[HMM_PFN_NONE] (nothing usable mapped),
 * values[HMM_PFN_ERROR] (no VMA, unreadable, VM_IO or VM_PFNMAP VMA, bad
 * page table) or values[HMM_PFN_SPECIAL] (no struct page).  With
 * HMM_RANGE_SPARSE_HUGE in @range->mode a valid huge mapping gets a single
 * entry: see hmm_pfn_span().
 *
 * On success the caller must end the snapshot with hmm_vma_range_done(),
 * under the lock its sync_cpu_device_pagetables() takes, before using it.
 * On error the range is already finished.
 *
 * Context: mmap_lock of the mirrored mm held for read; may sleep; must not
 * hold a lock that a mirror callback takes.
 *
 * Return:
 * * 0 - the snapshot is written.
 * * -EINVAL - invalid range, encoding or mode, or unregistered mirror.
 * * -EBUSY - invalidated again and again while walking; retry later.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_get_pfns(struct hmm_range *range)
{
	return hmm_mirror_walk(range, false, true);
}
EXPORT_SYMBOL_GPL(hmm_vma_get_pfns);

/**
 * hmm_vma_fault() - fault in a range and snapshot it
 * @range: as for hmm_vma_get_pfns(), with requests in the input entries or
 *	in @default_flags / @pfn_flags_mask
 * @block: true: never drop the mmap_lock; false: faults may drop it
 *
 * The request of an entry is ``(entry & pfn_flags_mask) | default_flags``,
 * or the entry itself when both are zero.  flags[HMM_PFN_VALID] asks for a
 * valid entry, flags[HMM_PFN_WRITE] (with VALID) for a writable one and
 * flags[HMM_PFN_DEVICE_PRIVATE] (with VALID) for device private memory to be
 * migrated back to system memory.  Entries without a request are reported
 * as hmm_vma_get_pfns() would.  Faults are taken one run at a time and the
 * walk resumes where it stopped; entries not yet written keep their input.
 *
 * On success the caller must end the snapshot with hmm_vma_range_done().
 * On error the range is already finished.  After -EBUSY the input entries
 * may have been overwritten: set them again before retrying.
 *
 * Context: mmap_lock of the mirrored mm held for read; may sleep; must not
 * hold a lock that a mirror callback takes.
 *
 * Return:
 * * 0 - every request is satisfied and the snapshot is written.
 * * -EINVAL - invalid range, encoding or mode, or unregistered mirror.
 * * -EFAULT - a requested page has no VMA, is in an unreadable, VM_IO or
 *   VM_PFNMAP VMA, has no struct page, or the fault failed.
 * * -EPERM - write access requested in a VMA without VM_WRITE.
 * * -EBUSY - invalidated during the walk; set the input again and retry.
 * * -EAGAIN - only with !@block: a fault dropped the mmap_lock; the caller
 *   must not unlock it, and retries after taking it again.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_fault(struct hmm_range *range, bool block)
{
	return hmm_mirror_walk(range, true, block);
}
EXPORT_SYMBOL_GPL(hmm_vma_fault);

/**
 * hmm_vma_range_done() - end a snapshot and tell whether it is still valid
 * @range: range filled by a successful hmm_vma_get_pfns() or hmm_vma_fault()
 *
 * The snapshot is valid if no invalidation of the mirror started after it
 * began, even one that already ended.  Call this exactly once per
 * successful snapshot; a second call is reported and returns false.
 *
 * Context: under the driver lock that its sync_cpu_device_pagetables()
 * takes; the device page table must be updated under the same lock.
 *
 * Return: true if the entries may be used to program the device, false if
 * they must be dropped and the snapshot taken again.
 */
bool hmm_vma_range_done(struct hmm_range *range)
{
	bool valid;

	if (WARN_ON_ONCE(!range->notifier))
		return false;

	valid = !mmu_interval_read_retry(range->notifier, range->notifier_seq);
	hmm_range_finish(range);
	return valid;
}
EXPORT_SYMBOL_GPL(hmm_vma_range_done);

/**
 * hmm_range_fault() - fault in a range, fixed entry format
 * @range: range with @notifier, @notifier_seq, @start, @end, @hmm_pfns,
 *	@default_flags, @pfn_flags_mask and @dev_private_owner set
 *
 * Requests and results use the HMM_PFN_FIXED_* format in @range->hmm_pfns.
 * The request of an entry is ``(entry & pfn_flags_mask) | default_flags``;
 * when both are zero nothing is faulted.  The walk is the one behind
 * hmm_vma_fault(); @range->flags, @values, @pfn_shift and @order_mask are
 * set to the fixed format.  Validity is the caller's business:
 * mmu_interval_read_begin() before, mmu_interval_read_retry() under its
 * notifier lock after.
 *
 * Context: mmap_lock of @range->notifier->mm held for read; the lock is
 * never dropped.
 *
 * Return:
 * * 0 - every request is satisfied.
 * * -EINVAL - @range->mode is not 0.
 * * -EFAULT - a requested page has no VMA, is in an unreadable, VM_IO or
 *   VM_PFNMAP VMA, has no struct page, or the fault failed.
 * * -EPERM - write access requested in a VMA without VM_WRITE.
 * * -EBUSY - the notifier sequence moved: wait and retry with fresh input.
 */
int hmm_range_fault(struct hmm_range *range)
{
	struct mm_struct *mm = range->notifier->mm;

	mmap_assert_locked(mm);

	/* Its callers index hmm_pfns page by page: no sparse output. */
	if (range->mode)
		return -EINVAL;

	range->flags = hmm_fixed_flags;
	range->values = hmm_fixed_values;
	range->pfn_shift = 0;
	range->order_mask = (u64)HMM_PFN_FIXED_ORDER_MASK <<
			    HMM_PFN_FIXED_ORDER_SHIFT;

	return hmm_walk_counted(range, mm, true, true, true,
				HMM_TRACE_RANGE_FAULT);
}
EXPORT_SYMBOL(hmm_range_fault);
