// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * HMM mirrors: the device page tables that mirror one mm, the validity of
 * the ranges drivers take from it, and the invalidations that keep them
 * coherent with the CPU page table.  The page table walk is in mm/hmm.c.
 *
 * The public API is described in include/linux/hmm.h.
 */

#define pr_fmt(fmt) "hmm: " fmt

#include <linux/debugfs.h>
#include <linux/hmm.h>
#include <linux/jiffies.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/rculist.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "hmm_internal.h"

#include <trace/events/hmm.h>

/*
 * Protocol
 * ========
 *
 * Every mm with mirrors has one struct hmm, found through
 * mmu_notifier_get_locked() and kept by one reference per mirror.  It
 * watches the mm with two notifiers:
 *
 *  - an interval notifier over the whole address space, whose callback
 *    runs first in every invalidation and may fail when it is not allowed
 *    to block: it marks the ranges in flight, records the invalidation and
 *    calls the mirrors (hmm_invalidate());
 *  - a plain mmu_notifier whose start never fails and whose end tells that
 *    the CPU page table change is over (hmm_inval_start(), hmm_inval_end()).
 *
 * The device callbacks are not on the plain notifier because in 6.1 a
 * plain start that fails after the interval notifiers succeeded leaves the
 * interval tree of the mm invalidating for good; the interval notifier
 * unwinds a failure itself.
 *
 * Ranges in flight
 * ----------------
 * A range starts with hmm_vma_get_pfns(), hmm_vma_fault() or
 * hmm_vma_range_begin() and ends with hmm_vma_range_done().  Meanwhile it
 * is listed on its struct hmm, and an invalidation affects it only if it
 * overlaps it: unrelated munmaps, reclaim elsewhere or another device's
 * range fail nothing.  Validity is a count that only goes up
 * (track.spoiled); nothing an invalidation does when it ends makes a range
 * valid again.
 *
 * An invalidation touches a range when its callback runs.  While the range
 * is being walked, a touch at or above the entries already written only
 * lowers track.redo: those entries are read later anyway.  A touch of
 * written entries (or of any entry once the walk is over) spoils the
 * range, unless their input is not needed (a snapshot, or requests from
 * default_flags), in which case the walk goes back and writes them again.
 * A fault the walk takes itself invalidates only entries it has not
 * written yet, so it costs no retry.
 *
 * An invalidation is recorded from its interval callback until the end of
 * its plain notifier.  hmm_track_check() never lets a walk go past a
 * recorded invalidation that overlaps what is left to walk: it waits for it
 * to end, so the walk reads the page table as the invalidation left it.
 * Waits only ever concern overlapping invalidations; a snapshot never waits
 * for another device's fence on another part of the mm.
 *
 *   walker (mmap_lock read)           invalidation of A
 *   hmm_track_begin(): listed
 *                                     hmm_invalidate(): touch, redo = A,
 *                                       record; sync(): drop A, fence
 *   walk, A read: old page P
 *   hmm_track_check(): redo = A below
 *     what was written: go back to A,
 *     wait for the record to go away
 *                                     page table changes, P freed
 *                                     hmm_inval_end(): record gone, wake
 *   walk from A again: new state
 *   driver lock
 *   hmm_vma_range_done(): not spoiled
 *
 * Validation under the driver lock.  The touch happens before the mirrors'
 * sync callbacks, which take the driver lock; hmm_vma_range_done() runs
 * under that lock.  So either it sees the touch, or it runs before the
 * sync callback's critical section, which then tears down whatever the
 * driver programmed.  A range listed after the touch finds the record at
 * its start and waits for the invalidation to end before it reads
 * anything.
 *
 * Non-blockable invalidations (OOM reaper) may fail after our callback
 * succeeded, in another interval notifier; the plain notifier then never
 * hears of them.  Their record is marked provisional until the plain
 * start confirms it.  A provisional record makes an overlapping walk fail
 * with -EBUSY rather than wait, and is dropped once the interval tree of
 * the mm has moved to a new invalidation sequence: by then the failed
 * invalidation is over.
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
 * When update->blockable is false the callbacks run between
 * non_block_start() and non_block_end(): they may only trylock and return
 * -EAGAIN when they would have to sleep; a fence that has not signaled yet
 * fails the update the same way, since nothing may wait.  The core puts
 * the fences it holds, skips the remaining mirrors, forgets the record and
 * returns false; the interval notifier core unwinds the invalidation.  A
 * blockable sync must not fail; a failure is reported once and treated as
 * done, since the mm cannot be stopped anyway.
 *
 * Mirror list
 * -----------
 * The mirror list is read under SRCU (one srcu_struct per mm), so a
 * callback may sleep, and may wait for work that itself invalidates the
 * same mm, without ever blocking a registration or another invalidation.
 * Registration never waits.  hmm_mirror_unregister() waits for the
 * callbacks of its own mm only, and holds no lock meanwhile.
 */

/**
 * enum hmm_inval_state - what is known of a recorded invalidation
 * @HMM_INVAL_FREE: slot unused.
 * @HMM_INVAL_PENDING: blockable, from its interval callback to its end,
 *	which is certain.
 * @HMM_INVAL_PENDING_NB: non-blockable, between its interval callback and
 *	the start of the plain notifier; another notifier may still fail it,
 *	and then no end comes.
 * @HMM_INVAL_ACTIVE: non-blockable, and the plain notifier started it; its
 *	end will come.
 */
enum hmm_inval_state {
	HMM_INVAL_FREE,
	HMM_INVAL_PENDING,
	HMM_INVAL_PENDING_NB,
	HMM_INVAL_ACTIVE,
};

/**
 * struct hmm_inval - an invalidation under way
 * @key: the mmu_notifier_range of the invalidation, the same object from
 *	start to end.
 * @start: first address (inclusive).
 * @end: last address (exclusive).
 * @owner: owner of the invalidation (migrations and exclusive access).
 * @seq: sequence of the interval tree the invalidation belongs to.
 * @event: reason of the invalidation.
 * @state: &enum hmm_inval_state.
 */
struct hmm_inval {
	const struct mmu_notifier_range	*key;
	unsigned long			start;
	unsigned long			end;
	void				*owner;
	unsigned long			seq;
	enum hmm_update_event		event;
	enum hmm_inval_state		state;
};

/**
 * struct hmm - the mirrors of one mm
 * @mn: plain notifier: lifetime (one reference per mirror) and the end of
 *	every invalidation.
 * @notifier: interval notifier over the whole user address space: the
 *	mirrors' callbacks.
 * @notifier_live: @notifier is inserted (by hmm_alloc_notifier()).
 * @released: the mm was torn down; nothing is recorded any more.
 * @orphans: a mirror was unregistered with ranges still in flight, which
 *	the free of this structure waits for.
 * @srcu: protects the readers of @mirrors (the invalidation callbacks).
 * @lock: protects @mirrors (writers), @ranges, the track of every listed
 *	range, @inval, @inval_used, @inval_more, @more_start, @more_end,
 *	@ends, @released and @orphans.  Never held while sleeping; taken
 *	under the driver locks (hmm_vma_range_done()), never around a driver
 *	callback.
 * @mirrors: registered mirrors, in registration order.
 * @ranges: ranges in flight.
 * @wq: walks waiting for an overlapping invalidation to end.
 * @ends: recorded invalidations that ended (or were dropped); a waiter
 *	sleeps until it changes.
 * @inval_used: slots of @inval in use.
 * @inval_more: blockable invalidations under way that found no slot.
 * @more_start: while @inval_more is not 0, the lowest address they cover;
 *	their ends cannot be told apart, so the span only grows until the
 *	last of them ended.
 * @more_end: likewise, the end of the highest (exclusive).
 * @inval: invalidations under way.
 * @free_work: frees the structure; the last mmu_notifier_put() runs in an
 *	SRCU callback, where the teardown cannot sleep.
 */
struct hmm {
	struct mmu_notifier		mn;
	struct mmu_interval_notifier	notifier;
	bool				notifier_live;
	bool				released;
	bool				orphans;
	struct srcu_struct		srcu;
	spinlock_t			lock;	/* see above */
	struct list_head		mirrors;
	struct list_head		ranges;
	wait_queue_head_t		wq;
	unsigned long			ends;
	unsigned int			inval_used;
	unsigned int			inval_more;
	unsigned long			more_start;
	unsigned long			more_end;
	struct hmm_inval		inval[HMM_INVAL_SLOTS];
	struct work_struct		free_work;
};

/* ------------------------------------------------------------------------
 * Statistics, in debugfs as hmm/stats
 */

DEFINE_PER_CPU(struct hmm_stats, hmm_stats);

static const char * const hmm_stat_names[HMM_STAT_NR] = {
	[HMM_STAT_SNAPSHOTS]		= "snapshots",
	[HMM_STAT_FAULTS]		= "faults",
	[HMM_STAT_FAULTS_UNLOCKABLE]	= "faults_unlockable",
	[HMM_STAT_RANGE_FAULTS]		= "range_faults",
	[HMM_STAT_FAULT_RUNS]		= "fault_runs",
	[HMM_STAT_RETRIES]		= "retries",
	[HMM_STAT_REWINDS]		= "rewinds",
	[HMM_STAT_RANGE_WAITS]		= "range_waits",
	[HMM_STAT_EBUSY]		= "ebusy",
	[HMM_STAT_EAGAIN]		= "eagain",
	[HMM_STAT_LOCK_RETRIES]		= "lock_retries",
	[HMM_STAT_LOCK_TIMEOUTS]	= "lock_timeouts",
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

/*
 * Models "running a mirror callback".  hmm_mirror_unregister() and the
 * start of a range wait for callbacks to finish, so calling them from a
 * callback, or while holding a lock that a callback takes, deadlocks; this
 * map lets lockdep say so.
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

/* ------------------------------------------------------------------------
 * Ranges in flight and the invalidations under way
 */

/*
 * Does @inv concern the part of @range from @from on?  Only a critical
 * section (hmm_vma_range_begin()) ignores its owner's own migrations and
 * exclusive grants: a walk reads the page table, which those change.
 */
static bool hmm_inval_hits(const struct hmm_inval *inv,
			   const struct hmm_range *range, unsigned long from)
{
	void *owner = range->track.owner;

	if (inv->start >= range->end || inv->end <= from)
		return false;
	return !(owner && inv->owner == owner &&
		 (inv->event == HMM_UPDATE_MIGRATE ||
		  inv->event == HMM_UPDATE_EXCLUSIVE));
}

/* @inv is about to change the page table: tell the ranges it overlaps. */
static void hmm_ranges_touch(struct hmm *hmm, const struct hmm_inval *inv)
{
	struct hmm_range_track *t;
	struct hmm_range *range;
	unsigned long from;

	lockdep_assert_held(&hmm->lock);
	list_for_each_entry(range, &hmm->ranges, track.list) {
		if (!hmm_inval_hits(inv, range, range->start))
			continue;
		t = &range->track;
		from = max(inv->start, range->start);
		if (t->walking && (t->rewind || from >= t->written))
			t->redo = min(t->redo, from);
		else
			t->spoiled++;
	}
}

static struct hmm_inval *hmm_inval_find(struct hmm *hmm,
					const struct mmu_notifier_range *key)
{
	unsigned int i;

	lockdep_assert_held(&hmm->lock);
	if (!hmm->inval_used)
		return NULL;
	for (i = 0; i < HMM_INVAL_SLOTS; i++)
		if (hmm->inval[i].state != HMM_INVAL_FREE &&
		    hmm->inval[i].key == key)
			return &hmm->inval[i];
	return NULL;
}

/* Record @inv in a free slot; NULL if there is none. */
static struct hmm_inval *hmm_inval_add(struct hmm *hmm,
				       const struct hmm_inval *inv)
{
	unsigned int i;

	lockdep_assert_held(&hmm->lock);
	for (i = 0; i < HMM_INVAL_SLOTS; i++) {
		if (hmm->inval[i].state == HMM_INVAL_FREE) {
			hmm->inval[i] = *inv;
			hmm->inval_used++;
			return &hmm->inval[i];
		}
	}
	return NULL;
}

static void hmm_inval_del(struct hmm *hmm, struct hmm_inval *slot)
{
	lockdep_assert_held(&hmm->lock);
	slot->state = HMM_INVAL_FREE;
	slot->key = NULL;
	hmm->inval_used--;
	hmm->ends++;
}

/* Count a blockable invalidation that found no free slot. */
static void hmm_inval_count_more(struct hmm *hmm, const struct hmm_inval *inv)
{
	lockdep_assert_held(&hmm->lock);
	if (!hmm->inval_more++) {
		hmm->more_start = inv->start;
		hmm->more_end = inv->end;
		return;
	}
	hmm->more_start = min(hmm->more_start, inv->start);
	hmm->more_end = max(hmm->more_end, inv->end);
}

/*
 * Drop the provisional records of failed non-blockable invalidations: a
 * record whose interval tree sequence is not @seq belongs to an earlier
 * sequence, which only ends once every invalidation of it has ended.  A
 * non-blockable invalidation that succeeded was confirmed by its plain
 * start long before that.
 */
static void hmm_inval_expire(struct hmm *hmm, unsigned long seq)
{
	unsigned int i;

	lockdep_assert_held(&hmm->lock);
	if (!hmm->inval_used)
		return;
	for (i = 0; i < HMM_INVAL_SLOTS; i++)
		if (hmm->inval[i].state == HMM_INVAL_PENDING_NB &&
		    hmm->inval[i].seq != seq)
			hmm_inval_del(hmm, &hmm->inval[i]);
}

/*
 * How a walk of @range from @from on stands with the invalidations under
 * way: 0 if none overlaps, 1 if it must wait for one to end, -EBUSY if one
 * may never end (provisional, see the protocol comment).
 */
static int hmm_inval_busy(struct hmm *hmm, const struct hmm_range *range,
			  unsigned long from)
{
	int busy = 0;
	unsigned int i;

	lockdep_assert_held(&hmm->lock);
	/* Owners are not known here: their own migrations count too. */
	if (hmm->inval_more && hmm->more_start < range->end &&
	    hmm->more_end > from)
		busy = 1;
	if (!hmm->inval_used)
		return busy;
	for (i = 0; i < HMM_INVAL_SLOTS; i++) {
		const struct hmm_inval *inv = &hmm->inval[i];

		if (inv->state == HMM_INVAL_FREE ||
		    !hmm_inval_hits(inv, range, from))
			continue;
		if (inv->state == HMM_INVAL_PENDING_NB)
			return -EBUSY;
		busy = 1;
	}
	return busy;
}

/*
 * Wait, with no lock held, until no recorded invalidation concerns
 * [from, range->end) of @range, or an invalidation of @hmm ended, or
 * 10 ms passed (a provisional record may never end by itself).
 */
static int hmm_track_sleep(struct hmm *hmm, struct hmm_range *range,
			   unsigned long from)
{
	unsigned long ends;
	long ret;

	spin_lock(&hmm->lock);
	if (!hmm_inval_busy(hmm, range, from)) {
		spin_unlock(&hmm->lock);
		return 0;
	}
	ends = hmm->ends;
	spin_unlock(&hmm->lock);

	hmm_stat_inc(HMM_STAT_RANGE_WAITS);
	lock_map_acquire(&hmm_mirror_callback_map);
	lock_map_release(&hmm_mirror_callback_map);
	/* Pairs with the increment of ->ends in hmm_inval_del(). */
	ret = wait_event_killable_timeout(hmm->wq,
					  READ_ONCE(hmm->ends) != ends,
					  msecs_to_jiffies(10));
	return ret < 0 ? -EINTR : 0;
}

/**
 * hmm_track_check() - publish the progress of a walk
 * @range: range being walked, or a critical section opening
 * @pos: in: entries below it hold output; out: where the walk goes on
 *
 * If an invalidation touched entries below @pos (read before it changed the
 * page table, perhaps), move @pos back to the first of them, or fail if
 * their input is gone.  If a recorded invalidation overlaps the range from
 * @pos on, the page table there is about to change: fail with -EAGAIN.  A
 * walk holds the mmap_lock and must not wait for it: the invalidation's
 * callbacks may be waiting for work that needs the mmap_lock, behind a
 * writer that waits for the walk.  hmm_vma_fault_lock() waits once the
 * lock is dropped.  When @pos is the end of the range on return, the walk
 * is complete: from then on any touch spoils the range.
 *
 * Context: does not sleep.
 * Return: 0, -EAGAIN (an invalidation of the range is under way; it ends by
 * itself), -EBUSY (spoiled, or an invalidation that may never report its
 * end is under way), -EFAULT (the mm was torn down).
 */
int hmm_track_check(struct hmm_range *range, unsigned long *pos)
{
	struct hmm_range_track *t = &range->track;
	struct hmm *hmm = t->hmm;
	int ret = -EBUSY;
	int busy;

	spin_lock(&hmm->lock);
	if (hmm->released) {
		ret = -EFAULT;
		goto out;
	}
	if (t->spoiled)
		goto out;
	if (t->redo < *pos) {
		if (!t->rewind) {
			t->spoiled++;
			goto out;
		}
		*pos = t->redo;
	}
	t->written = *pos;
	busy = hmm_inval_busy(hmm, range, *pos);
	if (busy) {
		if (busy > 0)
			ret = -EAGAIN;
		goto out;
	}
	/* Later touches are seen by later reads, or spoil. */
	t->redo = ULONG_MAX;
	if (*pos >= range->end)
		t->walking = false;
	ret = 0;
out:
	spin_unlock(&hmm->lock);
	return ret;
}

/**
 * hmm_track_begin() - list a range on its mirror's mm
 * @range: range with &hmm_range.mirror, start and end set
 * @walk: the range is about to be walked; otherwise it is a critical
 *	section of the driver's own (hmm_vma_range_begin())
 * @rewind: the walk may write entries again (their input is not needed)
 *
 * A walk (@walk) fails with -EBUSY if an invalidation of the range is under
 * way; a critical section, which holds no mmap_lock, waits for it to end.
 *
 * Context: a walk does not sleep; a critical section may, and then no lock
 * a mirror callback takes may be held.
 * Return: 0, -EINVAL (the range was in flight already: that is a driver
 * bug, and the range is finished now, as after any error), -EFAULT (the mm
 * was torn down), -EBUSY, -EINTR.
 */
int hmm_track_begin(struct hmm_range *range, bool walk, bool rewind)
{
	struct hmm *hmm = range->mirror->hmm;
	struct hmm_range *other;
	unsigned long pos;
	int ret;

	spin_lock(&hmm->lock);
	if (hmm->released) {
		spin_unlock(&hmm->lock);
		return -EFAULT;
	}
	/*
	 * Listed twice, it would corrupt the list (amdkfd did that once).
	 * Finish the range in flight instead, as any failed walk is: a driver
	 * that trusts "on error the range is finished" and frees it must not
	 * leave it listed, for the next invalidation to find.
	 */
	list_for_each_entry(other, &hmm->ranges, track.list) {
		if (WARN_ON_ONCE(other == range)) {
			spin_unlock(&hmm->lock);
			hmm_track_abort(range);
			return -EINVAL;
		}
	}
	range->track = (struct hmm_range_track) {
		.hmm		= hmm,
		.written	= range->start,
		.redo		= ULONG_MAX,
		.spoiled	= 0,
		.walking	= true,
		/* A critical section has no entries to lose. */
		.rewind		= rewind || !walk,
		.owner		= walk ? NULL : range->owner,
	};
	list_add(&range->track.list, &hmm->ranges);
	spin_unlock(&hmm->lock);

	/*
	 * A critical section "walks" nothing.  It opens once no recorded
	 * invalidation overlaps any of it, checked from its start: one that
	 * began before the section was listed touched nothing, and its page
	 * table change may still be to come.  A second check, at its end,
	 * completes it if nothing touched it in between; from then on every
	 * touch spoils.
	 */
	pos = range->start;
	for (;;) {
		ret = hmm_track_check(range, &pos);
		if (walk || (!ret && !range->track.walking))
			break;
		if (ret == -EAGAIN) {
			ret = hmm_track_sleep(hmm, range, pos);
			pos = range->start;
		} else {
			pos = range->end;
		}
		if (ret)
			break;
	}
	/* A walk under the mmap_lock does not wait: its caller retries. */
	if (ret == -EAGAIN)
		ret = -EBUSY;
	if (ret)
		hmm_track_abort(range);
	return ret;
}

/*
 * The last range a mirror left in flight when it was unregistered (a
 * driver bug) is gone: hmm_free_work() may go on.  Called with hmm->lock
 * held, which hmm_no_ranges() takes too, so that @hmm cannot be freed
 * before the caller let go of it.
 */
static void hmm_orphans_wake(struct hmm *hmm)
{
	lockdep_assert_held(&hmm->lock);
	if (unlikely(hmm->orphans) && list_empty(&hmm->ranges))
		wake_up_all(&hmm->wq);
}

/* Unlist a range whose walk failed; hmm_vma_range_done() then says so. */
void hmm_track_abort(struct hmm_range *range)
{
	struct hmm *hmm = range->track.hmm;

	spin_lock(&hmm->lock);
	list_del(&range->track.list);
	range->track.hmm = NULL;
	hmm_orphans_wake(hmm);
	spin_unlock(&hmm->lock);
}

/**
 * hmm_vma_range_begin() - start a device programming critical section
 * @range: range with &hmm_range.mirror, @start and @end set, and
 *	&hmm_range.owner if the driver's own migrations and exclusive grants
 *	are to be ignored
 *
 * For device mappings that are not built from a walk: pages the driver
 * migrated itself (migrate_vma_*()) or took exclusive access to
 * (make_device_exclusive_range()).  Call this before that work, then take
 * the driver lock and call hmm_vma_range_done(): if it returns false, an
 * invalidation of [start, end) started meanwhile (a MADV_DONTNEED that
 * zapped the pages, say) and nothing may be mapped; drop the pages and
 * start again.  The range may span any number of VMAs, or none.
 *
 * Context: Process context, may sleep (waits for invalidations of the
 * range under way); the mmap_lock is not needed.  Must not hold a lock a
 * mirror callback takes.
 *
 * Return:
 * * 0 - the critical section is open; end it with hmm_vma_range_done().
 * * -EINVAL - unregistered mirror, empty or unaligned range, or a range
 *   already in flight.
 * * -EFAULT - the mm was torn down (its pages are gone).
 * * -EBUSY - an invalidation of the range that the OOM reaper started has
 *   not finished; try again later.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_range_begin(struct hmm_range *range)
{
	might_sleep();
	if (!range->mirror || WARN_ON_ONCE(!range->mirror->mm))
		return -EINVAL;
	if (range->start >= range->end || !PAGE_ALIGNED(range->start) ||
	    !PAGE_ALIGNED(range->end))
		return -EINVAL;
	return hmm_track_begin(range, false, true);
}
EXPORT_SYMBOL_GPL(hmm_vma_range_begin);

/**
 * hmm_vma_range_done() - end a range and tell whether it is still valid
 * @range: range started by a successful hmm_vma_get_pfns(), hmm_vma_fault()
 *	or hmm_vma_range_begin()
 *
 * The range is valid if no invalidation overlapping [start, end) started
 * after it began, even one that already ended, and none was under way when
 * it began.  An invalidation that touched the range while it was walked
 * does not count if the walk went back and read the entries it touched
 * again, after it ended.  Invalidations of other addresses do not count, nor, with
 * &hmm_range.owner set, migrations and exclusive grants of that owner.
 * The range is finished either way.  Calling this on a range that is not
 * in flight (a walk that failed, a second call) returns false.
 *
 * Context: under the driver lock that its sync_cpu_device_pagetables()
 * takes; the device page table must be updated under the same lock.
 * Does not sleep.
 *
 * Return: true if the entries (or, for hmm_vma_range_begin(), the pages
 * the driver worked on) may be used to program the device, false if they
 * must be dropped and the work done again.
 */
bool hmm_vma_range_done(struct hmm_range *range)
{
	struct hmm_range_track *t = &range->track;
	struct hmm *hmm = t->hmm;
	bool valid;

	if (!hmm)
		return false;
	spin_lock(&hmm->lock);
	valid = !t->spoiled && !t->walking;
	list_del(&t->list);
	t->hmm = NULL;
	hmm_orphans_wake(hmm);
	spin_unlock(&hmm->lock);
	return valid;
}
EXPORT_SYMBOL_GPL(hmm_vma_range_done);

/**
 * hmm_vma_range_wait() - let an invalidation of a range finish
 * @range: range whose walk failed with -EBUSY, not in flight
 *
 * A walk never waits under the mmap_lock: it fails with -EBUSY while an
 * invalidation of its range is under way.  A driver retrying a walk by
 * itself calls this between the attempts, with the mmap_lock dropped, so
 * that it sleeps instead of spinning while a device flushes.  It waits for
 * overlapping invalidations only, and for at most 10 ms at a time: an
 * invalidation that never reports its end (a failed non-blockable one)
 * does not keep it.  hmm_vma_fault_lock() does the same by itself.
 *
 * Context: may sleep; no mmap_lock and no lock a mirror callback takes may
 * be held.
 * Return: 0, -EINVAL (no registered mirror, or the range is in flight),
 * -EINTR (fatal signal).
 */
int hmm_vma_range_wait(struct hmm_range *range)
{
	struct hmm_mirror *mirror = range->mirror;

	might_sleep();
	if (!mirror || !mirror->hmm || range->track.hmm)
		return -EINVAL;
	return hmm_track_sleep(mirror->hmm, range, range->start);
}
EXPORT_SYMBOL_GPL(hmm_vma_range_wait);

/* ------------------------------------------------------------------------
 * Invalidation
 */

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

/* Call every mirror, then wait for their fences; 0 or -EAGAIN. */
static int hmm_mirrors_sync(struct hmm *hmm, const struct hmm_update *base,
			    unsigned int *mirrors)
{
	struct hmm_fence *fences = NULL;
	struct hmm_mirror *mirror;
	int idx, ret = 0;

	idx = srcu_read_lock(&hmm->srcu);
	list_for_each_entry_srcu(mirror, &hmm->mirrors, list,
				 srcu_read_lock_held(&hmm->srcu)) {
		(*mirrors)++;
		ret = hmm_mirror_start(mirror, base, &fences);
		if (ret)
			break;
	}
	hmm_stat_add(HMM_STAT_FENCES,
		     hmm_fences_finish(fences, base->blockable));
	srcu_read_unlock(&hmm->srcu, idx);
	return ret;
}

/*
 * exit_mmap() releases the mm: every page is about to go.  Spoil every
 * range and stop recording; the records of invalidations under way stay
 * until their end, if the plain notifier, removed by the release, still
 * sees it (the OOM reaper may be running): nothing consults them any more,
 * hmm_track_check() fails every range with -EFAULT from now on.  Whoever
 * waits for a record is woken by the caller, to find that out.
 */
static void hmm_release_ranges(struct hmm *hmm)
{
	struct hmm_range *range;

	lockdep_assert_held(&hmm->lock);
	hmm->released = true;
	list_for_each_entry(range, &hmm->ranges, track.list)
		range->track.spoiled++;
	hmm->ends++;
}

/*
 * The interval notifier callback, first in every invalidation of the mm:
 * touch the ranges in flight, record the invalidation, then the two phases
 * of the mirrors.
 */
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
	/*
	 * mmu_interval_set_seq() is not called: nothing reads the sequence of
	 * this notifier (no mmu_interval_read_begin() on it); validity is
	 * kept per range.
	 */
	const struct hmm_inval inv = {
		.key = nrange,
		.start = nrange->start,
		.end = nrange->end,
		.owner = nrange->owner,
		.seq = cur_seq,
		.event = base.event,
		.state = base.blockable ? HMM_INVAL_PENDING :
			 HMM_INVAL_PENDING_NB,
	};
	struct hmm_inval *slot = NULL;
	unsigned int mirrors = 0;
	u64 t0 = 0;
	int ret = 0;

	if (trace_hmm_invalidate_enabled())
		t0 = ktime_get_ns();

	/*
	 * Touch and record before any sync callback takes a driver lock:
	 * see "Validation under the driver lock".  Record only what the
	 * plain notifier will see the end of: not before it is registered
	 * (see hmm_alloc_notifier()), not the release of the mm, which
	 * removes it, nor anything after that release, when no range may
	 * be in flight anyway.
	 */
	spin_lock(&hmm->lock);
	if (base.event == HMM_UPDATE_RELEASE)
		hmm_release_ranges(hmm);
	else
		hmm_ranges_touch(hmm, &inv);
	if (!hmm->released && !hlist_unhashed_lockless(&hmm->mn.hlist)) {
		hmm_inval_expire(hmm, cur_seq);
		/*
		 * Two invalidations under way never share their range's
		 * address (on the stack of the task running them): a record
		 * with this key is one that never got its end.
		 */
		slot = hmm_inval_find(hmm, nrange);
		if (slot)
			hmm_inval_del(hmm, slot);
		slot = hmm_inval_add(hmm, &inv);
		if (!slot && base.blockable)
			hmm_inval_count_more(hmm, &inv);
		else if (!slot)
			ret = -EAGAIN;
	}
	spin_unlock(&hmm->lock);

	if (!ret) {
		if (!base.blockable)
			non_block_start();
		ret = hmm_mirrors_sync(hmm, &base, &mirrors);
		if (!base.blockable)
			non_block_end();
	}

	if (base.event == HMM_UPDATE_RELEASE && wq_has_sleeper(&hmm->wq))
		wake_up_all(&hmm->wq);

	/* Failed: the page table does not change and no end will come. */
	if (ret && slot) {
		spin_lock(&hmm->lock);
		hmm_inval_del(hmm, slot);
		spin_unlock(&hmm->lock);
		if (wq_has_sleeper(&hmm->wq))
			wake_up_all(&hmm->wq);
	}

	hmm_stat_inc(HMM_STAT_INV_INVALIDATE + base.event);
	if (!base.blockable)
		hmm_stat_inc(ret ? HMM_STAT_INV_NONBLOCK_EAGAIN :
			     HMM_STAT_INV_NONBLOCK);
	if (t0)
		trace_hmm_invalidate(hmm->mn.mm, &base, mirrors,
				     ktime_get_ns() - t0, ret);
	return !ret;
}

static const struct mmu_interval_notifier_ops hmm_notifier_ops = {
	.invalidate = hmm_invalidate,
};

/*
 * The plain notifier starts every invalidation that the interval notifiers
 * let through: its record is now certain to see its end.  Every such
 * invalidation went through hmm_invalidate() first (see
 * hmm_mirror_register_locked()), which recorded it, or counted it in
 * ->inval_more if no slot was free.  Only a non-blockable record was
 * provisional: a blockable invalidation cannot fail, its record was
 * certain from the start and there is nothing to confirm.
 */
static int hmm_inval_start(struct mmu_notifier *mn,
			   const struct mmu_notifier_range *nrange)
{
	struct hmm *hmm = container_of(mn, struct hmm, mn);
	struct hmm_inval *slot;

	if (mmu_notifier_range_blockable(nrange))
		return 0;
	spin_lock(&hmm->lock);
	slot = hmm_inval_find(hmm, nrange);
	if (slot)
		slot->state = HMM_INVAL_ACTIVE;
	spin_unlock(&hmm->lock);
	return 0;
}

/*
 * The page table change of @nrange is over: its record goes.  After the
 * release of the mm, hmm_invalidate() records and counts nothing, but the
 * plain notifier stays hashed until exit_mmap() gets to it: the OOM reaper
 * or reclaim may end invalidations meanwhile that were never recorded.
 * Nothing is waited for after the release (hmm_track_check() fails every
 * range), so an end found nowhere is not an error then, and ->inval_more
 * is left as it is.
 */
static void hmm_inval_end(struct mmu_notifier *mn,
			  const struct mmu_notifier_range *nrange)
{
	struct hmm *hmm = container_of(mn, struct hmm, mn);
	struct hmm_inval *slot;

	spin_lock(&hmm->lock);
	slot = hmm_inval_find(hmm, nrange);
	if (slot) {
		hmm_inval_del(hmm, slot);
	} else if (!hmm->released && !WARN_ON_ONCE(!hmm->inval_more)) {
		hmm->inval_more--;
		hmm->ends++;
	}
	spin_unlock(&hmm->lock);
	/* Pairs with the wait in hmm_track_check(). */
	if (wq_has_sleeper(&hmm->wq))
		wake_up_all(&hmm->wq);
}

/*
 * Called by mmu_notifier_get_locked() for the first mirror of @mm, with the
 * mmap_lock held for write, before it registers the plain notifier.  The
 * interval notifier goes in first, so that hmm_invalidate() sees every
 * invalidation that reaches the plain notifier.  Registering the plain
 * notifier takes every lock an invalidation holds (mm_take_all_locks()):
 * an invalidation that hmm_invalidate() saw before the plain notifier was
 * hashed ends before the plain notifier can hear of it, which is why
 * hmm_invalidate() does not record those.
 */
static struct mmu_notifier *hmm_alloc_notifier(struct mm_struct *mm)
{
	struct hmm *hmm;
	int ret;

	hmm = kzalloc(sizeof(*hmm), GFP_KERNEL);
	if (!hmm)
		return ERR_PTR(-ENOMEM);
	ret = init_srcu_struct(&hmm->srcu);
	if (ret)
		goto free_hmm;
	spin_lock_init(&hmm->lock);
	INIT_LIST_HEAD(&hmm->mirrors);
	INIT_LIST_HEAD(&hmm->ranges);
	init_waitqueue_head(&hmm->wq);
	ret = mmu_interval_notifier_insert_locked(&hmm->notifier, mm,
						  HMM_MIRROR_START,
						  HMM_MIRROR_LENGTH,
						  &hmm_notifier_ops);
	if (ret)
		goto cleanup_srcu;
	hmm->notifier_live = true;
	return &hmm->mn;

cleanup_srcu:
	cleanup_srcu_struct(&hmm->srcu);
free_hmm:
	kfree(hmm);
	return ERR_PTR(ret);
}

static bool hmm_no_ranges(struct hmm *hmm)
{
	bool empty;

	spin_lock(&hmm->lock);
	empty = list_empty(&hmm->ranges);
	spin_unlock(&hmm->lock);
	return empty;
}

/*
 * The last reference is gone and no callback of the plain notifier runs
 * any more.  The interval notifier may still be called (with no mirror
 * left, it only records and forgets) until it is removed.
 */
static void hmm_free_work(struct work_struct *work)
{
	struct hmm *hmm = container_of(work, struct hmm, free_work);

	/* Ranges a mirror left in flight still point here (a driver bug). */
	wait_event(hmm->wq, hmm_no_ranges(hmm));

	if (hmm->notifier_live)
		mmu_interval_notifier_remove(&hmm->notifier);
	cleanup_srcu_struct(&hmm->srcu);
	kfree(hmm);
}

/* Runs in an SRCU callback (or on a failed registration). */
static void hmm_free_notifier(struct mmu_notifier *mn)
{
	struct hmm *hmm = container_of(mn, struct hmm, mn);

	INIT_WORK(&hmm->free_work, hmm_free_work);
	schedule_work(&hmm->free_work);
}

static const struct mmu_notifier_ops hmm_mn_ops = {
	.invalidate_range_start	= hmm_inval_start,
	.invalidate_range_end	= hmm_inval_end,
	.alloc_notifier		= hmm_alloc_notifier,
	.free_notifier		= hmm_free_notifier,
};

/* ------------------------------------------------------------------------
 * Registration
 */

static int hmm_mirror_check(struct hmm_mirror *mirror, struct mm_struct *mm)
{
	if (WARN_ON_ONCE(!mm || !mirror->ops ||
			 !mirror->ops->sync_cpu_device_pagetables))
		return -EINVAL;
	/* Registered twice: the mirror is live, do not touch it. */
	if (WARN_ON_ONCE(mirror->mm))
		return -EBUSY;
	/* The notifier core cannot attach to an mm that has no users. */
	if (WARN_ON_ONCE(atomic_read(&mm->mm_users) <= 0))
		return -EINVAL;
	return 0;
}

/**
 * hmm_mirror_register_locked() - hmm_mirror_register() under the mmap_lock
 * @mirror: zeroed mirror with &hmm_mirror.ops set
 * @mm: address space to mirror, with a reference on its users
 *
 * Context: Process context, mmap_lock of @mm held for write.  Once an mm
 * has a mirror, registering another never waits for invalidations or
 * callbacks under way; the first takes mm_take_all_locks().
 *
 * Return: as hmm_mirror_register(); -EINTR only if a fatal signal stops
 * the first registration on @mm (mm_take_all_locks()).
 */
int hmm_mirror_register_locked(struct hmm_mirror *mirror,
			       struct mm_struct *mm)
{
	struct mmu_notifier *mn;
	struct hmm *hmm;
	int ret;

	ret = hmm_mirror_check(mirror, mm);
	if (ret)
		return ret;
	mmap_assert_write_locked(mm);

	mn = mmu_notifier_get_locked(&hmm_mn_ops, mm);
	if (IS_ERR(mn))
		return PTR_ERR(mn);
	hmm = container_of(mn, struct hmm, mn);

	/* Set before the mirror is live: callbacks may look at them. */
	mirror->released = false;
	mirror->mm = mm;
	mirror->hmm = hmm;
	spin_lock(&hmm->lock);
	list_add_tail_rcu(&mirror->list, &hmm->mirrors);
	spin_unlock(&hmm->lock);
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
 * fences any of them returned.  Invalidations already under way are not
 * forwarded to the new mirror, which has nothing mapped yet; its ranges
 * wait for them to end.
 *
 * Context: Process context.  Takes the mmap_lock of @mm for write, so the
 * caller must not hold it; see hmm_mirror_register_locked().
 *
 * Return:
 * * 0 - the mirror is registered.
 * * -EINVAL - @mm is NULL or has no users, or the mirror has no sync
 *   callback.
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
 * It waits for the callbacks under way on this mirror's mm only, and holds
 * no lock while it waits.  It may be called before or after the mm exited.
 * Ranges of the mirror still in flight are a driver bug: they are reported,
 * hmm_vma_range_done() returns false for them, and the per-mm state is only
 * freed once they are done.
 * Unregistering a mirror that is not registered is reported once and
 * ignored.
 *
 * Context: Process context, may sleep.  Must not be called from a mirror
 * callback nor with a lock held that a mirror callback takes.
 */
void hmm_mirror_unregister(struct hmm_mirror *mirror)
{
	struct hmm *hmm = mirror->hmm;
	struct hmm_range *range;

	might_sleep();

	if (WARN_ON_ONCE(!mirror->mm))
		return;

	lock_map_acquire(&hmm_mirror_callback_map);
	lock_map_release(&hmm_mirror_callback_map);

	spin_lock(&hmm->lock);
	list_del_rcu(&mirror->list);
	list_for_each_entry(range, &hmm->ranges, track.list) {
		if (WARN_ON_ONCE(range->mirror == mirror)) {
			/* Never valid now; the structure waits for its end. */
			range->track.spoiled++;
			hmm->orphans = true;
		}
	}
	spin_unlock(&hmm->lock);

	/* Waits for the callbacks of this mm under way. */
	synchronize_srcu(&hmm->srcu);

	mirror->hmm = NULL;
	mirror->mm = NULL;
	mmu_notifier_put(&hmm->mn);
}
EXPORT_SYMBOL_GPL(hmm_mirror_unregister);

/* ------------------------------------------------------------------------
 * Bounded, progress-aware retry
 */

/* hmm_vma_fault_lock() gives up after this many timeouts in all. */
#define HMM_FAULT_LOCK_MAX_TIMEOUTS	8

/**
 * hmm_vma_fault_lock() - fault or snapshot a range, validate, lock
 * @range: range as for hmm_vma_fault(), requests in
 *	&hmm_range.default_flags only (&hmm_range.pfn_flags_mask 0): the input
 *	entries are not kept from one attempt to the next
 * @fault: fault as hmm_vma_fault(range, true) does; otherwise snapshot as
 *	hmm_vma_get_pfns() does
 * @timeout_ms: give up after this long without progress;
 *	0 means HMM_RANGE_DEFAULT_TIMEOUT
 *
 * The whole loop a driver otherwise writes around hmm_vma_fault(): take the
 * mmap_lock, walk, drop it, take the driver lock with
 * &hmm_mirror_ops.lock, check hmm_vma_range_done(), and start over when the
 * range was invalidated meanwhile.  It keeps trying as long as attempts make
 * progress (an attempt faulted pages in, or got further into the range than
 * any attempt before) and gives up only after @timeout_ms without any,
 * so a large range under a stream of invalidations is not failed while it
 * still moves, and one that cannot move is failed on time.  Whatever the
 * progress, it gives up after HMM_FAULT_LOCK_MAX_TIMEOUTS times
 * @timeout_ms in all, so that a process that keeps invalidating the range
 * cannot hold a driver's fault worker for ever.  An attempt that found an
 * invalidation of the range under way waits for it, with the mmap_lock
 * dropped, before the next one.
 *
 * On success the driver lock is held and the entries are valid: program the
 * device, then call &hmm_mirror_ops.unlock.  The range is finished.
 *
 * Context: Process context, may sleep.  The caller holds neither the
 * mmap_lock nor the driver lock; the mirror needs &hmm_mirror_ops.lock and
 * &hmm_mirror_ops.unlock.
 *
 * Return:
 * * 0 - the entries are valid and the driver lock is held.
 * * -EINVAL - invalid range, a mirror without lock callbacks, or per-entry
 *   requests.
 * * -EFAULT, -EPERM - as hmm_vma_fault(); the mm has no users left (-EFAULT).
 * * -EBUSY - no progress for @timeout_ms, or HMM_FAULT_LOCK_MAX_TIMEOUTS
 *   times @timeout_ms in all.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_fault_lock(struct hmm_range *range, bool fault,
		       unsigned int timeout_ms)
{
	struct hmm_mirror *mirror = range->mirror;
	unsigned long timeout, deadline, end, reached = 0;
	struct hmm_walk_info info;
	struct mm_struct *mm;
	int ret;

	might_sleep();
	if (!mirror || !mirror->mm || !mirror->ops->lock ||
	    !mirror->ops->unlock || !range->flags)
		return -EINVAL;
	if (fault && (range->pfn_flags_mask ||
		      !(range->default_flags & range->flags[HMM_PFN_VALID])))
		return -EINVAL;

	mm = mirror->mm;
	timeout = msecs_to_jiffies(timeout_ms ?: HMM_RANGE_DEFAULT_TIMEOUT);
	deadline = jiffies + timeout;
	end = jiffies + HMM_FAULT_LOCK_MAX_TIMEOUTS * timeout;
	for (;;) {
		/* The mm is pinned for the walk only, not under the lock. */
		if (!mmget_not_zero(mm))
			return -EFAULT;
		if (mmap_read_lock_killable(mm)) {
			mmput(mm);
			return -EINTR;
		}
		info.faults = 0;
		info.reached = range->start;
		ret = hmm_mirror_walk(range, fault, true, &info);
		mmap_read_unlock(mm);
		mmput(mm);

		if (!ret) {
			mirror->ops->lock(mirror);
			if (hmm_vma_range_done(range))
				return 0;
			mirror->ops->unlock(mirror);
			ret = -EBUSY;
		}
		if (ret != -EBUSY)
			return ret;

		hmm_stat_inc(HMM_STAT_LOCK_RETRIES);
		if (info.faults || info.reached > reached) {
			reached = max(reached, info.reached);
			deadline = jiffies + timeout;
		}
		if (time_after(jiffies, deadline) || time_after(jiffies, end)) {
			hmm_stat_inc(HMM_STAT_LOCK_TIMEOUTS);
			return -EBUSY;
		}
		/* An invalidation of the range under way: let it finish. */
		ret = hmm_track_sleep(mirror->hmm, range, range->start);
		if (ret)
			return ret;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
}
EXPORT_SYMBOL_GPL(hmm_vma_fault_lock);
