/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the two halves of HMM share: mm/hmm.c walks page tables,
 * mm/hmm_mirror.c keeps the mirrors of an mm, the validity of the ranges in
 * flight and the invalidations.  Not for use outside mm/.
 */
#ifndef MM_HMM_INTERNAL_H
#define MM_HMM_INTERNAL_H

#include <linux/hmm.h>
#include <linux/percpu.h>

/*
 * Counters in debugfs hmm/stats.  The walk counters follow the
 * HMM_TRACE_* kinds and the invalidation counters follow enum
 * hmm_update_event, so both are indexed by adding.
 */
enum hmm_stat_item {
	HMM_STAT_SNAPSHOTS,		/* + HMM_TRACE_SNAPSHOT */
	HMM_STAT_FAULTS,		/* + HMM_TRACE_FAULT */
	HMM_STAT_FAULTS_UNLOCKABLE,	/* + HMM_TRACE_FAULT_UNLOCKABLE */
	HMM_STAT_RANGE_FAULTS,		/* + HMM_TRACE_RANGE_FAULT */
	HMM_STAT_FAULT_RUNS,
	HMM_STAT_RETRIES,
	HMM_STAT_REWINDS,
	HMM_STAT_RANGE_WAITS,
	HMM_STAT_EBUSY,
	HMM_STAT_EAGAIN,
	HMM_STAT_LOCK_RETRIES,
	HMM_STAT_LOCK_TIMEOUTS,
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

/* Per-CPU so that counting never bounces a cache line between walkers. */
struct hmm_stats {
	unsigned long	count[HMM_STAT_NR];
};

DECLARE_PER_CPU(struct hmm_stats, hmm_stats);

static inline void hmm_stat_add(enum hmm_stat_item item, unsigned long n)
{
	this_cpu_add(hmm_stats.count[item], n);
}

static inline void hmm_stat_inc(enum hmm_stat_item item)
{
	this_cpu_inc(hmm_stats.count[item]);
}

/*
 * Invalidations of one mm recorded at once (mm/hmm_mirror.c).  More
 * blockable ones are only counted, with the span they cover together (and
 * make every range that overlaps the span wait); a non-blockable one that
 * finds no slot fails with -EAGAIN, which the OOM reaper retries.
 */
#define HMM_INVAL_SLOTS		16

/*
 * A range in flight (mm/hmm_mirror.c).  hmm_track_begin() lists the range
 * on its mirror's mm and waits for the invalidations of it that are under
 * way; the walk then calls hmm_track_check() each time it is about to
 * fault and once it has written every entry; hmm_track_abort() unlists a
 * range whose walk failed.
 */
int hmm_track_begin(struct hmm_range *range, bool walk, bool rewind);
int hmm_track_check(struct hmm_range *range, unsigned long *pos);
void hmm_track_abort(struct hmm_range *range);

/**
 * struct hmm_walk_info - what one walk of a mirror range did
 * @faults: fault runs taken with handle_mm_fault()
 * @reached: farthest address below which every entry was written at
 *	some point of the walk
 */
struct hmm_walk_info {
	unsigned int	faults;
	unsigned long	reached;
};

/* hmm_vma_get_pfns() (!@fault) or hmm_vma_fault() (mm/hmm.c). */
int hmm_mirror_walk(struct hmm_range *range, bool fault, bool block,
		    struct hmm_walk_info *info);

#endif /* MM_HMM_INTERNAL_H */
