/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Interface of bench/kmod/hmm_driver_bench.c, shared with
 * bench/hmm-drivers.c.
 */
#ifndef HMM_DRIVER_BENCH_UAPI_H_
#define HMM_DRIVER_BENCH_UAPI_H_

#include <linux/types.h>
#include <linux/ioctl.h>

/* How the pretend driver calls HMM (hdb_run.mode). */
enum {
	/*
	 * amdgpu userptr / RDMA ODP: an interval notifier over the range,
	 * one hmm_range_fault() over all of it, -EBUSY retried from
	 * mmu_interval_read_begin() within 1 s per 512 MiB, then
	 * mmu_interval_read_retry() under the driver lock.
	 */
	HDB_RANGE_FAULT = 0,
	/*
	 * The seed API as documented: a mirror, hmm_vma_fault(range, true)
	 * over the range, -EBUSY retried, hmm_vma_range_done() under the
	 * driver lock, within HMM_RANGE_DEFAULT_TIMEOUT.
	 */
	HDB_MIRROR_FAULT = 1,
	/* hmm_vma_fault_lock(), where the kernel has it. */
	HDB_MIRROR_LOCK = 2,
	/*
	 * @count snapshots of the range (no fault), each validated under
	 * the driver lock: hmm_range_fault() with no request and a notifier
	 * over the range on the base, hmm_vma_get_pfns() with a mirror on
	 * the series.
	 */
	HDB_SNAPSHOTS = 3,
	HDB_MODES = 4,
};

/* What the module was built with (hdb_run.have). */
#define HDB_HAVE_MIRROR		0x1
#define HDB_HAVE_LOCK		0x2

/**
 * struct hdb_run - argument of HDB_RUN
 * @addr: (in) page aligned start of the range, in the caller's mm.
 * @npages: (in) pages in the range.
 * @mode: (in) HDB_*.
 * @write: (in) request write access (faulting modes).
 * @count: (in) snapshots to take (HDB_SNAPSHOTS), at least 1.
 * @have: (out) HDB_HAVE_* of the module.
 * @ns: (out) time of the whole run (all attempts and validations).
 * @ebusy: (out) calls that returned -EBUSY.
 * @invalid: (out) validations under the driver lock that failed.
 * @valid: (out) valid entries of the last attempt that succeeded.
 * @writable: (out) of those, writable ones.
 */
struct hdb_run {
	__u64	addr;
	__u64	npages;
	__u32	mode;
	__u32	write;
	__u32	count;
	__u32	have;
	__u64	ns;
	__u64	ebusy;
	__u64	invalid;
	__u64	valid;
	__u64	writable;
};

#define HDB_RUN	_IOWR('W', 0x02, struct hdb_run)

#endif /* HMM_DRIVER_BENCH_UAPI_H_ */
