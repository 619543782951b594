/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Interface of bench/kmod/hmm_walk_bench.c, shared with bench/hmm-bench.c.
 */
#ifndef HMM_WALK_BENCH_UAPI_H_
#define HMM_WALK_BENCH_UAPI_H_

#include <linux/types.h>
#include <linux/ioctl.h>

/* Walker entry points HWB_RUN can time. */
enum {
	HWB_API_NATIVE = 0,	/* hmm_vma_get_pfns() if present, else fault */
	HWB_API_RANGE_FAULT = 1,	/* hmm_range_fault(), default_flags 0 */
	HWB_API_SPARSE = 2,	/* hmm_vma_get_pfns(), HMM_RANGE_SPARSE_HUGE */
};

/* What the module was built with (hwb_run.have). */
#define HWB_HAVE_MIRROR		0x1
#define HWB_HAVE_SPARSE		0x2

/* Timings per iteration, in ns, in hwb_run.ns (HWB_T_* u64 each). */
enum {
	HWB_T_TOTAL = 0,	/* @reps whole snapshots (begin to done) */
	HWB_T_BEGIN = 1,	/* mmu_interval_read_begin() + mmap_read_lock */
	HWB_T_WALK = 2,		/* @reps walker calls back to back */
	HWB_T_DONE = 3,		/* unlock + validation under the driver lock */
	HWB_T_CLOCK = 4,	/* two clock reads back to back */
	HWB_T_N = 5,
};

#define HWB_MAX_ITERS	64
#define HWB_MAX_REPS	1024

/**
 * struct hwb_run - argument of HWB_RUN
 * @addr: (in) page aligned start of the range, in the caller's mm.
 * @npages: (in) pages in the range.
 * @iters: (in) timed iterations, after one untimed warm-up.
 * @api: (in) HWB_API_*.
 * @ns: (in) user array of @iters * HWB_T_N u64, filled with timings.
 * @reps: (in) snapshots per timed stretch, 1 to HWB_MAX_REPS: a small
 *	range is walked several times between two clock reads so that the
 *	cost of reading the clock does not land on its per-page figure.
 *	BEGIN and DONE are of one snapshot; TOTAL and WALK cover @reps.
 * @have: (out) HWB_HAVE_* of the module.
 * @used: (out) HWB_API_* value actually run (NATIVE only with the mirror).
 *	HWB_API_SPARSE without HWB_HAVE_SPARSE fails with EOPNOTSUPP.
 * @pad: (in) zero.
 * @valid: (out) valid entries in the last snapshot.
 * @huge: (out) valid entries of PMD order in the last snapshot.
 * @retries: (out) snapshots retried because they were invalidated.
 */
struct hwb_run {
	__u64	addr;
	__u64	npages;
	__u32	iters;
	__u32	api;
	__u64	ns;
	__u32	reps;
	__u32	have;
	__u32	used;
	__u32	pad;
	__u64	valid;
	__u64	huge;
	__u64	retries;
};

#define HWB_RUN	_IOWR('W', 0x01, struct hwb_run)

#endif /* HMM_WALK_BENCH_UAPI_H_ */
