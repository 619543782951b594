/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * User interface of the HMM dummy device (lib/test_hmm.c).
 *
 * Each /dev/hmm_dmirrorN node is a pretend device that mirrors the address
 * space of the process that opened it.  Commands let the device read and
 * write that address space, migrate it to and from the device's own memory,
 * take a snapshot of the CPU page table and claim pages for device atomics.
 * It exists only so tools/testing/selftests can exercise the HMM core.
 */
#ifndef LIB_TEST_HMM_UAPI_H_
#define LIB_TEST_HMM_UAPI_H_

#include <linux/types.h>
#include <linux/ioctl.h>

/**
 * struct hmm_dmirror_cmd - argument of every HMM_DMIRROR_* command
 * @addr: (in) page aligned address, in the caller's address space, of the
 *	first page the device works on.
 * @ptr: (in) user buffer: data source for HMM_DMIRROR_WRITE, destination
 *	for the page contents of READ, MIGRATE_TO_DEV and EXCLUSIVE, and for
 *	one HMM_DMIRROR_PROT_* byte per page for SNAPSHOT.
 * @npages: (in) number of pages, starting at @addr.
 * @cpages: (out) number of pages the command completed (copied, migrated
 *	or reported).
 * @faults: (out) number of device page fault passes the command needed.
 */
struct hmm_dmirror_cmd {
	__u64		addr;
	__u64		ptr;
	__u64		npages;
	__u64		cpages;
	__u64		faults;
};

/* All commands take a struct hmm_dmirror_cmd, read and written back. */
#define HMM_DMIRROR_IOC(nr) _IOWR('H', (nr), struct hmm_dmirror_cmd)

/* Device reads @npages pages at @addr into @ptr, faulting them if needed. */
#define HMM_DMIRROR_READ HMM_DMIRROR_IOC(0x00)
/* Device writes @ptr into @npages pages at @addr, faulting for write. */
#define HMM_DMIRROR_WRITE HMM_DMIRROR_IOC(0x01)
/* Move the pages into device memory, then read them back into @ptr. */
#define HMM_DMIRROR_MIGRATE_TO_DEV HMM_DMIRROR_IOC(0x02)
/* Move this device's pages in the range back to system memory. */
#define HMM_DMIRROR_MIGRATE_TO_SYS HMM_DMIRROR_IOC(0x03)
/* Report the CPU page table state of each page (HMM_DMIRROR_PROT_*). */
#define HMM_DMIRROR_SNAPSHOT HMM_DMIRROR_IOC(0x04)
/* Take device exclusive (atomic) access, then read the pages into @ptr. */
#define HMM_DMIRROR_EXCLUSIVE HMM_DMIRROR_IOC(0x05)
/* Fail with EPERM while the device still holds exclusive access. */
#define HMM_DMIRROR_CHECK_EXCLUSIVE HMM_DMIRROR_IOC(0x06)
/* Evict every page of the device's memory back to system memory. */
#define HMM_DMIRROR_RELEASE HMM_DMIRROR_IOC(0x07)

/*
 * Index into hmm_dmirror_counters.events: the reason the CPU page table
 * changed, one per value of enum hmm_update_event (include/linux/hmm.h).
 */
enum {
	HMM_DMIRROR_EVENT_INVALIDATE = 0,
	HMM_DMIRROR_EVENT_UNMAP = 1,
	HMM_DMIRROR_EVENT_CLEAR = 2,
	HMM_DMIRROR_EVENT_PROTECTION = 3,
	HMM_DMIRROR_EVENT_SOFT_DIRTY = 4,
	HMM_DMIRROR_EVENT_RELEASE = 5,
	HMM_DMIRROR_EVENT_MIGRATE = 6,
	HMM_DMIRROR_EVENT_EXCLUSIVE = 7,
	HMM_DMIRROR_EVENTS = 8,
};

/**
 * struct hmm_dmirror_counters - what the sync callback of mirrors saw
 * @syncs: (out) sync_cpu_device_pagetables() calls.
 * @nonblockable: (out) calls made with hmm_update.blockable false.
 * @eagain: (out) calls that returned -EAGAIN.
 * @events: (out) calls per HMM_DMIRROR_EVENT_* index.
 */
struct hmm_dmirror_counters {
	__u64		syncs;
	__u64		nonblockable;
	__u64		eagain;
	__u64		events[HMM_DMIRROR_EVENTS];
};

/**
 * struct hmm_dmirror_stats - argument of HMM_DMIRROR_STATS
 * @device: (out) totals over every file ever opened on the node, counted
 *	since the module was loaded.
 * @mirror: (out) counts of the file the command is issued on.
 */
struct hmm_dmirror_stats {
	struct hmm_dmirror_counters	device;
	struct hmm_dmirror_counters	mirror;
};

/* Read the counters of the node and of this file. */
#define HMM_DMIRROR_STATS _IOR('H', 0x08, struct hmm_dmirror_stats)

/*
 * One byte per page written by HMM_DMIRROR_SNAPSHOT.  ERROR and NONE are
 * whole values; otherwise READ or WRITE is combined with at most one of the
 * location values (ZERO, DEV_*) and one of the size bits (PMD, PUD).
 *
 * HMM_DMIRROR_PROT_ERROR: the device cannot map the address at all.
 * HMM_DMIRROR_PROT_NONE: nothing the device could use is mapped now.
 * HMM_DMIRROR_PROT_READ: mapped read-only.
 * HMM_DMIRROR_PROT_WRITE: mapped read-write.
 * HMM_DMIRROR_PROT_PMD: part of a PMD sized CPU mapping.
 * HMM_DMIRROR_PROT_PUD: part of a PUD sized CPU mapping.
 * HMM_DMIRROR_PROT_ZERO: the shared zero page.
 * HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: private memory of the queried device.
 * HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: private memory of another device.
 * HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL: coherent memory of the queried device.
 * HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE: coherent memory of another device.
 */
enum {
	HMM_DMIRROR_PROT_ERROR = 0xff,
	HMM_DMIRROR_PROT_NONE = 0x00,
	HMM_DMIRROR_PROT_READ = 0x01,
	HMM_DMIRROR_PROT_WRITE = 0x02,
	HMM_DMIRROR_PROT_PMD = 0x04,
	HMM_DMIRROR_PROT_PUD = 0x08,
	HMM_DMIRROR_PROT_ZERO = 0x10,
	HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20,
	HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30,
	HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40,
	HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50,
};

/* Kind of memory a device node owns; 0 is never a valid kind. */
enum {
	HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1,
	HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2,
};

#endif /* LIB_TEST_HMM_UAPI_H_ */
