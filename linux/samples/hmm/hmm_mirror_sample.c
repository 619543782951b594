// SPDX-License-Identifier: GPL-2.0
/*
 * Sample HMM mirror: the driver side of Documentation/mm/hmm.rst.
 *
 * An imaginary device with a 16 entry page table mirrors part of the
 * address space of the process that loads this module.  The module
 * registers a mirror on that process's mm, faults in the page holding the
 * start of its stack, prints the device page table entry HMM built for it,
 * and unregisters again.  Nothing stays registered after module_init.
 *
 * The code between the "hmm_sample_*" marker comments is included in the
 * documentation; keep the markers when editing.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bits.h>
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>

/* hmm_sample_pfn_format_start */
/*
 * Page table entry of the device:
 *
 *   bit  0     SDEV_PTE_VALID    the device may read the page
 *   bit  1     SDEV_PTE_WRITE    the device may write the page
 *   bit  2     SDEV_PTE_DEVMEM   the page is in the device's own memory
 *   bits 3-7   SDEV_PTE_ORDER    order of the CPU mapping (9: 2 MiB THP)
 *   bit  8     SDEV_PTE_ERROR    no page and never will be: do not retry
 *   bits 12-63 the pfn
 *
 * HMM writes these entries for us, so they can be copied straight into
 * the device page table.
 */
#define SDEV_PTE_VALID		BIT_ULL(0)
#define SDEV_PTE_WRITE		BIT_ULL(1)
#define SDEV_PTE_DEVMEM		BIT_ULL(2)
#define SDEV_PTE_ORDER		GENMASK_ULL(7, 3)
#define SDEV_PTE_ERROR		BIT_ULL(8)
#define SDEV_PTE_PFN_SHIFT	12

static const u64 sdev_hmm_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]		 = SDEV_PTE_VALID,
	[HMM_PFN_WRITE]		 = SDEV_PTE_WRITE,
	[HMM_PFN_DEVICE_PRIVATE] = SDEV_PTE_DEVMEM,
};

/* ERROR and SPECIAL may share a value, NONE must differ from both. */
static const u64 sdev_hmm_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]		= SDEV_PTE_ERROR,
	[HMM_PFN_NONE]		= 0,
	[HMM_PFN_SPECIAL]	= SDEV_PTE_ERROR,
};

/* hmm_sample_pfn_format_end */

#define SDEV_PT_ENTRIES		16

/* hmm_sample_mirror_start */
/*
 * One device address space: a mirror of one mm.  @lock serializes the
 * device page table between the sync callback and the fault path; the
 * fault path validates its range under it (hmm_vma_fault_lock() takes it
 * through the mirror's lock callback).
 */
struct sdev_as {
	struct hmm_mirror	mirror;
	struct mutex		lock;	/* protects start and pt[] */
	unsigned long		start;	/* address mirrored by pt[0] */
	u64			pt[SDEV_PT_ENTRIES];
};

/* Drop the device mappings of [start, end); caller holds as->lock. */
static void sdev_unmap(struct sdev_as *as, unsigned long start,
		       unsigned long end)
{
	unsigned long addr = as->start;
	unsigned int i;

	lockdep_assert_held(&as->lock);
	for (i = 0; i < SDEV_PT_ENTRIES; i++, addr += PAGE_SIZE)
		if (addr >= start && addr < end)
			as->pt[i] = 0;
	/* A real device would flush its TLB here, before returning. */
}

static int sdev_sync(struct hmm_mirror *mirror,
		     struct hmm_update *update)
{
	struct sdev_as *as = container_of(mirror, struct sdev_as, mirror);

	/*
	 * A migration or exclusive grant this driver started itself (owner
	 * is the pgmap owner it passed) updates pt[] on its own, in a
	 * critical section (hmm_vma_range_begin() before the work,
	 * hmm_vma_range_done() under as->lock after it): skip it.  The
	 * driver never holds as->lock across migrate_vma_setup() or
	 * make_device_exclusive_range(), which invalidate other pages too
	 * and come here for them.  This sample never migrates, so the test
	 * never matches; it shows where it goes.
	 */
	if ((update->event == HMM_UPDATE_MIGRATE ||
	     update->event == HMM_UPDATE_EXCLUSIVE) && update->owner == as)
		return 0;

	/* The OOM reaper cannot wait: trylock, or ask it to come back. */
	if (!update->blockable) {
		if (!mutex_trylock(&as->lock))
			return -EAGAIN;
	} else {
		mutex_lock(&as->lock);
	}
	sdev_unmap(as, update->start, update->end);
	mutex_unlock(&as->lock);
	return 0;
}

/* The lock sdev_sync() takes, for hmm_vma_fault_lock(). */
static void sdev_lock(struct hmm_mirror *mirror)
{
	mutex_lock(&container_of(mirror, struct sdev_as, mirror)->lock);
}

static void sdev_unlock(struct hmm_mirror *mirror)
{
	mutex_unlock(&container_of(mirror, struct sdev_as, mirror)->lock);
}

static const struct hmm_mirror_ops sdev_mirror_ops = {
	.sync_cpu_device_pagetables	= sdev_sync,
	.lock				= sdev_lock,
	.unlock				= sdev_unlock,
};

/* hmm_sample_mirror_end */

/* hmm_sample_fault_start */
/*
 * Make [start, start + npages pages) readable (and writable if @write) by
 * the device and map it.  The range fits in pt[] and starts at as->start.
 * hmm_vma_fault_lock() takes the mmap_lock, faults, and validates under
 * as->lock, trying again while the range is invalidated under it; it gives
 * up with -EBUSY after HMM_RANGE_DEFAULT_TIMEOUT without progress.
 */
static int sdev_fault(struct sdev_as *as, unsigned long start,
		      unsigned int npages, bool write)
{
	u64 pfns[SDEV_PT_ENTRIES];
	struct hmm_range range = {
		.mirror		   = &as->mirror,
		.start		   = start,
		.end		   = start + npages * PAGE_SIZE,
		.pfns		   = pfns,
		.flags		   = sdev_hmm_flags,
		.values		   = sdev_hmm_values,
		.pfn_shift	   = SDEV_PTE_PFN_SHIFT,
		.order_mask	   = SDEV_PTE_ORDER,
		/* Same request for every page: input entries are unused. */
		.default_flags	   = SDEV_PTE_VALID |
				     (write ? SDEV_PTE_WRITE : 0),
		/* Our own device memory is reported, not faulted back. */
		.dev_private_owner = as,
	};
	unsigned int i;
	int ret;

	if (npages > SDEV_PT_ENTRIES)
		return -EINVAL;

	ret = hmm_vma_fault_lock(&range, true, 0);
	if (ret)
		return ret;
	/* as->lock is held and no invalidation of the range got in. */
	for (i = 0; i < npages; i++)
		as->pt[(start - as->start) / PAGE_SIZE + i] = pfns[i];
	mutex_unlock(&as->lock);
	return 0;
}

/* hmm_sample_fault_end */

static int __init hmm_mirror_sample_init(void)
{
	struct mm_struct *mm = current->mm;
	struct sdev_as *as;
	int ret;

	if (!mm)
		return -EINVAL;

	as = kzalloc(sizeof(*as), GFP_KERNEL);
	if (!as)
		return -ENOMEM;
	mutex_init(&as->lock);
	as->mirror.ops = &sdev_mirror_ops;
	as->start = ALIGN_DOWN(mm->start_stack, PAGE_SIZE);

	ret = hmm_mirror_register(&as->mirror, mm);
	if (ret)
		goto out_free;

	ret = sdev_fault(as, as->start, 1, false);
	if (!ret) {
		mutex_lock(&as->lock);
		pr_info("%s: stack page %#lx: device entry %#llx\n",
			current->comm, as->start, as->pt[0]);
		mutex_unlock(&as->lock);
	}

	hmm_mirror_unregister(&as->mirror);
out_free:
	mutex_destroy(&as->lock);
	kfree(as);
	return ret;
}

static void __exit hmm_mirror_sample_exit(void)
{
}

module_init(hmm_mirror_sample_init);
module_exit(hmm_mirror_sample_exit);
MODULE_DESCRIPTION("Sample HMM mirror (Documentation/mm/hmm.rst)");
MODULE_LICENSE("GPL");
