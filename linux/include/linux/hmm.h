/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Heterogeneous Memory Management (HMM): mirror a process address space
 * into a device page table.
 *
 * A driver registers a &struct hmm_mirror on an mm and is then told, through
 * &hmm_mirror_ops.sync_cpu_device_pagetables, about every CPU page table
 * update it must propagate to the device.  To build device mappings it takes
 * a snapshot of the CPU page table with hmm_vma_get_pfns(), or faults pages
 * in with hmm_vma_fault(), then validates the result with
 * hmm_vma_range_done() under the lock its sync callback takes; only
 * invalidations that overlap the range make it invalid.
 * hmm_vma_fault_lock() is that whole loop, retrying while it makes
 * progress.  Mappings not built from a walk (exclusive access, migrated
 * pages) are validated the same way between hmm_vma_range_begin() and
 * hmm_vma_range_done().
 *
 * Snapshot entries are written in the driver's own encoding, described by
 * &hmm_range.flags, &hmm_range.values and &hmm_range.pfn_shift.  The fixed
 * format used by hmm_range_fault() is one predefined instance of that
 * encoding (HMM_PFN_FIXED_*).
 *
 * See mm/hmm_mirror.c for the invalidation protocol, mm/hmm.c for the walk
 * and Documentation/mm/hmm.rst for an overview.
 */
#ifndef LINUX_HMM_H
#define LINUX_HMM_H

#include <linux/mm.h>
#include <linux/bitops.h>
#include <linux/mmu_notifier.h>

struct hmm;
struct hmm_mirror;

/**
 * enum hmm_pfn_flag_e - indexes into &hmm_range.flags
 * @HMM_PFN_VALID: on output, the entry holds a pfn the CPU can at least
 *	read; on input, the device needs read access (fault the page in).
 * @HMM_PFN_WRITE: on output, the CPU mapping is writable; on input, the
 *	device needs write access (only honoured together with
 *	@HMM_PFN_VALID).
 * @HMM_PFN_DEVICE_PRIVATE: on output, the pfn is a device private page
 *	owned by &hmm_range.dev_private_owner; on input, migrate such pages
 *	back to system memory (only honoured together with @HMM_PFN_VALID).
 * @HMM_PFN_FLAG_MAX: number of entries in &hmm_range.flags.
 *
 * The driver supplies one bit mask per flag in its own page table encoding.
 * For instance a device whose valid bit is bit 3 sets
 * ``flags[HMM_PFN_VALID] = 1ULL << 3``.  flags[HMM_PFN_VALID] must not be
 * zero; the others may be zero if the driver does not care about them.  The
 * flag bits and the &hmm_range.order_mask bits must not overlap each other
 * nor the pfn bits (pfn << &hmm_range.pfn_shift).
 */
enum hmm_pfn_flag_e {
	HMM_PFN_VALID = 0,
	HMM_PFN_WRITE,
	HMM_PFN_DEVICE_PRIVATE,
	HMM_PFN_FLAG_MAX
};

/**
 * enum hmm_pfn_value_e - indexes into &hmm_range.values
 * @HMM_PFN_ERROR: the address cannot be mirrored: no VMA, a VMA that is not
 *	readable or maps I/O memory (VM_IO, VM_PFNMAP), a bad page table.
 * @HMM_PFN_NONE: nothing is mapped, or what is mapped cannot be reported
 *	without a fault (swapped out, under migration, device memory of another
 *	owner, ...); a request to fault may succeed.
 * @HMM_PFN_SPECIAL: a special mapping with no struct page the device may use
 *	(e.g. vmf_insert_pfn() in a VM_MIXEDMAP VMA).
 * @HMM_PFN_VALUE_MAX: number of entries in &hmm_range.values.
 *
 * These are whole entry values, compared for equality and never decoded as a
 * pfn.  The driver may alias ERROR and SPECIAL, but NONE must differ from
 * both, and no value may have flags[HMM_PFN_VALID] set.
 */
enum hmm_pfn_value_e {
	HMM_PFN_ERROR,
	HMM_PFN_NONE,
	HMM_PFN_SPECIAL,
	HMM_PFN_VALUE_MAX
};

/**
 * enum hmm_fixed_pfn_flags - the fixed entry format of hmm_range_fault()
 * @HMM_PFN_FIXED_VALID: output: the pfn is at least readable by the CPU.
 * @HMM_PFN_FIXED_WRITE: output: the CPU mapping is writable.
 * @HMM_PFN_FIXED_ERROR: output: the address cannot be mirrored (the
 *	&HMM_PFN_ERROR and &HMM_PFN_SPECIAL value of this format).
 * @HMM_PFN_FIXED_ORDER_SHIFT: first bit of the 5-bit map order field.
 * @HMM_PFN_FIXED_REQ_FAULT: input: the output must have
 *	@HMM_PFN_FIXED_VALID or hmm_range_fault() fails.
 * @HMM_PFN_FIXED_REQ_WRITE: input: the output must have
 *	@HMM_PFN_FIXED_WRITE; needs @HMM_PFN_FIXED_REQ_FAULT.
 * @HMM_PFN_FIXED_FLAGS: every bit that is not part of the pfn.
 *
 * An output entry of 0 means nothing is mapped but a fault may succeed.  On
 * output the low bits hold the pfn itself (pfn shift 0).  These are the bit
 * values of the pre-existing hmm_range_fault() API under names that do not
 * clash with the &enum hmm_pfn_flag_e indexes.
 */
enum hmm_fixed_pfn_flags {
	HMM_PFN_FIXED_VALID = 1UL << (BITS_PER_LONG - 1),
	HMM_PFN_FIXED_WRITE = 1UL << (BITS_PER_LONG - 2),
	HMM_PFN_FIXED_ERROR = 1UL << (BITS_PER_LONG - 3),
	HMM_PFN_FIXED_ORDER_SHIFT = (BITS_PER_LONG - 8),

	HMM_PFN_FIXED_REQ_FAULT = HMM_PFN_FIXED_VALID,
	HMM_PFN_FIXED_REQ_WRITE = HMM_PFN_FIXED_WRITE,

	HMM_PFN_FIXED_FLAGS = 0xFFUL << HMM_PFN_FIXED_ORDER_SHIFT,
};

/* Width mask of the map order field of the fixed format. */
#define HMM_PFN_FIXED_ORDER_MASK	0x1FUL

/**
 * enum hmm_range_mode - how the walk writes entries, for &hmm_range.mode
 * @HMM_RANGE_SPARSE_HUGE: one entry per huge mapping.  Where the range
 *	covers part of a huge CPU mapping (PMD, PUD or hugetlb page) that is
 *	reported valid, only the entry of the first page of that part is
 *	written: the pfn of that page, its flags and the map order.  The
 *	entries of the following pages of the mapping keep what they held
 *	(their request, for hmm_vma_fault()); the k-th following page has the
 *	written pfn plus k and the same flags.  hmm_pfn_span() tells how many
 *	entries a written entry stands for.  Needs a non-zero
 *	&hmm_range.order_mask.  A device that maps a huge page with one page
 *	table entry then makes one decision per huge mapping, not one per
 *	page.
 * @HMM_RANGE_MODE_ALL: every valid mode bit.
 */
enum hmm_range_mode {
	HMM_RANGE_SPARSE_HUGE	= 1U << 0,
	HMM_RANGE_MODE_ALL	= HMM_RANGE_SPARSE_HUGE,
};

/**
 * struct hmm_range_track - validity state of a range in flight
 * @hmm: per-mm state the range is listed on; NULL when not in flight.
 * @list: entry in the range list of @hmm.
 * @written: entries of addresses below this hold output (the walk
 *	publishes it as it goes).
 * @redo: lowest address an invalidation touched while the walk was going
 *	on, where the walk must read again; ULONG_MAX if none.
 * @spoiled: invalidations that touched entries already written, or any
 *	part of the range once the walk was complete.  Only ever counts up;
 *	the range is valid while it is 0.
 * @owner: &hmm_range.owner of a critical section (hmm_vma_range_begin()),
 *	whose own migrations and exclusive grants do not count; NULL for a
 *	walk, which reads what they change.
 * @walking: the walk has not finished yet.
 * @rewind: the walk may write entries again (their input is not needed).
 *
 * Everything here is private to the core and protected by the lock of
 * @hmm.  The core sets it all up when a range starts; the caller only has
 * to leave it alone while the range is in flight.
 */
struct hmm_range_track {
	struct hmm		*hmm;
	struct list_head	list;
	unsigned long		written;
	unsigned long		redo;
	unsigned int		spoiled;
	void			*owner;
	bool			walking;
	bool			rewind;
};

/**
 * struct hmm_range - one snapshot or fault request over a virtual range
 * @notifier: interval notifier the result is validated against; only used
 *	by hmm_range_fault(), set by its caller.
 * @notifier_seq: mmu_interval_read_begin() value the result of
 *	hmm_range_fault() is valid for, set by its caller.
 * @start: first virtual address (inclusive, page aligned).
 * @end: last virtual address (exclusive, page aligned).
 * @hmm_pfns: one entry per page, fixed format; used only by
 *	hmm_range_fault().
 * @pfns: one entry per page, driver encoding; used by hmm_vma_get_pfns()
 *	and hmm_vma_fault().
 * @flags: driver encoding of each &enum hmm_pfn_flag_e.
 * @values: driver encoding of each &enum hmm_pfn_value_e.
 * @default_flags: request flags (driver encoding) applied to every entry.
 * @pfn_flags_mask: request flags taken from each input entry.  The request
 *	for an entry is ``(entry & pfn_flags_mask) | default_flags``.  With
 *	hmm_vma_fault(), when both are zero each entry is its own request.
 * @order_mask: contiguous bit field where the order of the CPU mapping
 *	(e.g. 9 for a 2MB PMD on x86) is stored in valid entries; 0 means the
 *	order is not reported.
 * @dev_private_owner: device private pages whose pgmap owner matches are
 *	reported instead of being faulted back to system memory.
 * @mirror: mirror the range belongs to (hmm_vma_get_pfns(), hmm_vma_fault(),
 *	hmm_vma_range_begin()).
 * @owner: for hmm_vma_range_begin() only: invalidations of type
 *	HMM_UPDATE_MIGRATE and HMM_UPDATE_EXCLUSIVE started with this owner
 *	do not invalidate the critical section, so a driver migrating pages
 *	or taking exclusive access inside it is not told off by its own
 *	work.  It must keep its own migrations of the range from racing the
 *	section.  Walks ignore it: they read what those change.  NULL: every
 *	invalidation of the range counts.
 * @pfn_shift: left shift of the pfn inside an entry.
 * @mode: &enum hmm_range_mode bits; 0 writes one entry per page.
 * @track: state of a range in flight; private to the core, which sets it
 *	up in hmm_vma_get_pfns(), hmm_vma_fault() and hmm_vma_range_begin().
 *
 * For hmm_range_fault() the flags, values, pfn_shift and order_mask fields
 * are overwritten with the fixed format; the caller does not set them, and
 * @mode must be 0.
 */
struct hmm_range {
	struct mmu_interval_notifier	*notifier;
	unsigned long			notifier_seq;
	unsigned long			start;
	unsigned long			end;
	unsigned long			*hmm_pfns;
	u64				*pfns;
	const u64			*flags;
	const u64			*values;
	u64				default_flags;
	u64				pfn_flags_mask;
	u64				order_mask;
	void				*dev_private_owner;
	struct hmm_mirror		*mirror;
	void				*owner;
	u8				pfn_shift;
	unsigned int			mode;
	struct hmm_range_track		track;
};

/**
 * hmm_pfn_flag_bits() - all bits of an entry that are not part of the pfn
 * @range: range whose encoding is used
 *
 * Return: the union of every &hmm_range.flags mask and &hmm_range.order_mask.
 */
static inline u64 hmm_pfn_flag_bits(const struct hmm_range *range)
{
	return range->flags[HMM_PFN_VALID] | range->flags[HMM_PFN_WRITE] |
	       range->flags[HMM_PFN_DEVICE_PRIVATE] | range->order_mask;
}

/**
 * hmm_pfn_is_value() - test whether an entry is one of the special values
 * @range: range whose encoding is used
 * @pfn: entry in the driver encoding
 *
 * Return: true if @pfn equals any entry of &hmm_range.values.
 */
static inline bool hmm_pfn_is_value(const struct hmm_range *range, u64 pfn)
{
	return pfn == range->values[HMM_PFN_ERROR] ||
	       pfn == range->values[HMM_PFN_NONE] ||
	       pfn == range->values[HMM_PFN_SPECIAL];
}

/**
 * hmm_pfn_to_pfn() - extract the pfn from an entry
 * @range: range whose encoding is used
 * @pfn: entry in the driver encoding
 *
 * The pfn is what remains of @pfn once every flag bit and the order field
 * are cleared, shifted right by &hmm_range.pfn_shift.  Entries equal to one
 * of &hmm_range.values are never decoded.
 *
 * Return: the pfn, or -1UL if @pfn is a special value or lacks
 * flags[HMM_PFN_VALID].
 */
static inline unsigned long hmm_pfn_to_pfn(const struct hmm_range *range,
					   u64 pfn)
{
	if (hmm_pfn_is_value(range, pfn) ||
	    !(pfn & range->flags[HMM_PFN_VALID]))
		return -1UL;
	return (pfn & ~hmm_pfn_flag_bits(range)) >> range->pfn_shift;
}

/**
 * hmm_pfn_to_page() - return the page an entry points to
 * @range: range whose encoding is used
 * @pfn: entry in the driver encoding
 *
 * The page may only be used under the driver lock that serializes against
 * &hmm_mirror_ops.sync_cpu_device_pagetables, after hmm_vma_range_done()
 * returned true.
 *
 * Return: the struct page, or NULL when hmm_pfn_to_pfn() returns -1UL.
 */
static inline struct page *hmm_pfn_to_page(const struct hmm_range *range,
					   u64 pfn)
{
	unsigned long nr = hmm_pfn_to_pfn(range, pfn);

	return nr == -1UL ? NULL : pfn_to_page(nr);
}

/**
 * hmm_pfn_from_pfn() - build a valid entry for a pfn
 * @range: range whose encoding is used
 * @pfn: page frame number
 *
 * Return: @pfn shifted by &hmm_range.pfn_shift with flags[HMM_PFN_VALID] set.
 */
static inline u64 hmm_pfn_from_pfn(const struct hmm_range *range,
				   unsigned long pfn)
{
	return ((u64)pfn << range->pfn_shift) | range->flags[HMM_PFN_VALID];
}

/**
 * hmm_pfn_from_page() - build a valid entry for a page
 * @range: range whose encoding is used
 * @page: page to encode
 *
 * Return: the entry hmm_pfn_from_pfn() builds for page_to_pfn(@page).
 */
static inline u64 hmm_pfn_from_page(const struct hmm_range *range,
				    struct page *page)
{
	return hmm_pfn_from_pfn(range, page_to_pfn(page));
}

/**
 * hmm_pfn_to_map_order() - order of the CPU mapping behind an entry
 * @range: range whose encoding is used
 * @pfn: valid entry in the driver encoding
 *
 * A non-zero order means the page is part of a 1 << order pages mapping
 * (PMD, PUD or hugetlb) that starts at the order-aligned virtual address;
 * the mapping may extend past either end of the range.
 *
 * Return: the order, or 0 if unknown or if &hmm_range.order_mask is 0.
 */
static inline unsigned int hmm_pfn_to_map_order(const struct hmm_range *range,
						u64 pfn)
{
	if (!range->order_mask)
		return 0;
	return (pfn & range->order_mask) >> __ffs64(range->order_mask);
}

/**
 * hmm_pfn_set_map_order() - store a mapping order into an entry
 * @range: range whose encoding is used
 * @pfn: entry in the driver encoding
 * @order: order to store
 *
 * Return: @pfn with its order field replaced by @order, or cleared when
 * @order does not fit in &hmm_range.order_mask (an order of 0 is always
 * correct, only less informative).
 */
static inline u64 hmm_pfn_set_map_order(const struct hmm_range *range,
					u64 pfn, unsigned int order)
{
	u64 mask = range->order_mask;
	unsigned int shift;

	if (!mask)
		return pfn;
	shift = __ffs64(mask);
	pfn &= ~mask;
	if ((u64)order > (mask >> shift))
		return pfn;
	return pfn | ((u64)order << shift);
}

/**
 * hmm_pfn_span() - number of entries a written entry stands for
 * @range: range the entry was written for
 * @addr: virtual address of the entry
 * @pfn: entry in the driver encoding, as written by the walk
 *
 * Without &HMM_RANGE_SPARSE_HUGE every entry stands for its own page.  With
 * it, a valid entry of a huge mapping stands for the pages from @addr to
 * the end of that mapping (it starts at the virtual address aligned to its
 * size), or to the end of @range if that comes first.  A driver walks the
 * array with ``for (i = 0; i < npages; i += hmm_pfn_span(...))``.
 *
 * Return: the number of entries, at least 1, starting with @pfn's own.
 */
static inline unsigned long hmm_pfn_span(const struct hmm_range *range,
					 unsigned long addr, u64 pfn)
{
	unsigned int order;
	unsigned long next;

	if (!(range->mode & HMM_RANGE_SPARSE_HUGE) ||
	    hmm_pfn_is_value(range, pfn) ||
	    !(pfn & range->flags[HMM_PFN_VALID]))
		return 1;
	order = hmm_pfn_to_map_order(range, pfn);
	if (!order || order >= BITS_PER_LONG - PAGE_SHIFT)
		return 1;
	/* First address past the mapping; 0 if it ends the address space. */
	next = (addr | ((PAGE_SIZE << order) - 1)) + 1;
	if (!next || next > range->end)
		next = range->end;
	return (next - addr) >> PAGE_SHIFT;
}

/**
 * hmm_fixed_pfn_to_page() - page of a fixed format entry
 * @hmm_pfn: entry written by hmm_range_fault()
 *
 * The caller must have checked HMM_PFN_FIXED_VALID and must hold its
 * notifier lock after a successful mmu_interval_read_retry() check.
 *
 * Return: the struct page of the pfn stored in @hmm_pfn.
 */
static inline struct page *hmm_fixed_pfn_to_page(unsigned long hmm_pfn)
{
	return pfn_to_page(hmm_pfn & ~HMM_PFN_FIXED_FLAGS);
}

/**
 * hmm_fixed_pfn_to_map_order() - CPU mapping order of a fixed format entry
 * @hmm_pfn: valid entry written by hmm_range_fault()
 *
 * Same meaning as hmm_pfn_to_map_order().
 *
 * Return: the order stored in the HMM_PFN_FIXED_ORDER_SHIFT field.
 */
static inline unsigned int hmm_fixed_pfn_to_map_order(unsigned long hmm_pfn)
{
	return (hmm_pfn >> HMM_PFN_FIXED_ORDER_SHIFT) & HMM_PFN_FIXED_ORDER_MASK;
}

/**
 * enum hmm_update_event - why the CPU page table of a mirror changes
 * @HMM_UPDATE_INVALIDATE: generic invalidation, no more precise reason.
 * @HMM_UPDATE_UNMAP: munmap() or mremap() of the range.
 * @HMM_UPDATE_CLEAR: page table entries cleared (madvise, page replaced...).
 * @HMM_UPDATE_PROTECTION: access permissions changed (mprotect, write
 *	protection of single pages).
 * @HMM_UPDATE_SOFT_DIRTY: soft-dirty tracking, same pages and permissions.
 * @HMM_UPDATE_RELEASE: the address space is being torn down; only passed to
 *	sync_cpu_device_pagetables() of mirrors without a release callback.
 * @HMM_UPDATE_MIGRATE: pages are being migrated; see &hmm_update.owner.
 * @HMM_UPDATE_EXCLUSIVE: device exclusive access is being granted or
 *	revoked; see &hmm_update.owner.
 */
enum hmm_update_event {
	HMM_UPDATE_INVALIDATE,
	HMM_UPDATE_UNMAP,
	HMM_UPDATE_CLEAR,
	HMM_UPDATE_PROTECTION,
	HMM_UPDATE_SOFT_DIRTY,
	HMM_UPDATE_RELEASE,
	HMM_UPDATE_MIGRATE,
	HMM_UPDATE_EXCLUSIVE,
};

struct hmm_fence;

/**
 * struct hmm_fence_ops - how the core waits for a device invalidation
 * @signaled: true once the device has stopped using the invalidated range.
 *	Must not sleep; called in non-blockable updates too.
 * @wait: sleep until @signaled would return true.  Only called from
 *	blockable updates.
 * @put: drop the reference that sync_cpu_device_pagetables() handed over
 *	with the fence.  Must not sleep.
 */
struct hmm_fence_ops {
	bool (*signaled)(struct hmm_fence *fence);
	void (*wait)(struct hmm_fence *fence);
	void (*put)(struct hmm_fence *fence);
};

/**
 * struct hmm_fence - a device invalidation still in flight
 * @ops: how to wait for it and release it; set by the driver.
 * @next: used by the core while it holds the fence; the driver does not
 *	touch it.
 *
 * Embed it in the driver's own fence object (which may wrap a dma_fence)
 * and hand it back through &hmm_update.fence.  The core waits for every
 * fence of an update only after every mirror has started its invalidation,
 * so the devices invalidate in parallel.
 */
struct hmm_fence {
	const struct hmm_fence_ops	*ops;
	struct hmm_fence		*next;
};

/**
 * struct hmm_update - a CPU page table update to mirror
 * @start: first virtual address of the update (inclusive).
 * @end: last virtual address of the update (exclusive).
 * @event: reason for the update.
 * @blockable: false if the callback must not sleep.
 * @owner: for @event HMM_UPDATE_MIGRATE and HMM_UPDATE_EXCLUSIVE, the owner
 *	passed by whoever started the operation (a driver migrating its own
 *	pages may skip its own invalidation); NULL otherwise.
 * @fence: NULL on entry to sync_cpu_device_pagetables().  A mirror that
 *	has a device invalidation of any part of [@start, @end) in flight,
 *	whether this call started it or an earlier one did, sets a fence
 *	here and returns 0; the core waits for it before the CPU page table
 *	changes.  See &hmm_mirror_ops.sync_cpu_device_pagetables.
 */
struct hmm_update {
	unsigned long		start;
	unsigned long		end;
	enum hmm_update_event	event;
	bool			blockable;
	void			*owner;
	struct hmm_fence	*fence;
};

/**
 * struct hmm_mirror_ops - callbacks of a mirror
 * @release: the mm is being torn down (exit_mmap()).  Called at most once,
 *	may sleep.  The device must stop using every page of the mm before
 *	returning.  Optional: without it the teardown is passed to
 *	@sync_cpu_device_pagetables as a blockable HMM_UPDATE_RELEASE.
 * @sync_cpu_device_pagetables: the CPU page table of @update's range is
 *	about to change.  Required.  The device must stop using the range
 *	before the update completes.  The callback takes the driver lock that
 *	also protects hmm_vma_range_done() calls, and either finishes the
 *	device invalidation (TLBs flushed) before it returns 0, or starts it,
 *	stores a &struct hmm_fence in @update->fence and returns 0: the core
 *	first calls every mirror of the mm, then waits on all their fences,
 *	so devices invalidate in parallel.
 *
 *	Fence rule: two invalidations of overlapping ranges may run at the
 *	same time (two MADV_DONTNEED under the mmap_lock held for read,
 *	reclaim racing a zap, the retry of a non-blockable update).  The
 *	second finds nothing left to drop, yet its pages may be freed as soon
 *	as it returns.  So a mirror with a device invalidation of any part of
 *	the range still in flight hands back a fence for it (a new reference
 *	on it, or a fence that signals once it is done) even if it drops
 *	nothing new itself.
 *
 *	Pages the device wrote through a writable mapping in the range must
 *	be marked dirty (set_page_dirty()) here, as the CPU page table may be
 *	about to drop its own dirty bit.  When @update->blockable is false
 *	the callback runs in a non-blocking section: it must not sleep
 *	(trylock only, no GFP_KERNEL) and returns -EAGAIN if it would have
 *	to; a fence it hands back that is not signaled yet also fails the
 *	update with -EAGAIN.  In blockable mode it must return 0.
 * @lock: take the lock @sync_cpu_device_pagetables takes, the one the
 *	device page table is updated under.  Optional; needed only by
 *	hmm_vma_fault_lock(), which returns with it held.
 * @unlock: release what @lock took.
 *
 * No callback may call hmm_mirror_unregister() or take a lock held around
 * hmm_mirror_unregister(), hmm_vma_range_begin() or a walk.  Callbacks of
 * different invalidations may run at the same time, and a callback may
 * wait for work that invalidates the same mm itself (an eviction worker
 * migrating pages back, say): nothing in the core blocks that work.
 */
struct hmm_mirror_ops {
	void (*release)(struct hmm_mirror *mirror);
	int (*sync_cpu_device_pagetables)(struct hmm_mirror *mirror,
					  struct hmm_update *update);
	void (*lock)(struct hmm_mirror *mirror);
	void (*unlock)(struct hmm_mirror *mirror);
};

/**
 * struct hmm_mirror - a device page table mirroring one mm
 * @hmm: per-mm state shared by every mirror of @mm; private to the core.
 * @list: entry in the mirror list of @hmm; private to the core.
 * @ops: driver callbacks.
 * @mm: mm mirrored; NULL while not registered.
 * @released: set once the release of @mm has been forwarded.
 *
 * Zero the structure and set @ops before hmm_mirror_register().  Embed it in
 * the driver's device address space object and use container_of() in the
 * callbacks.  Every range started on the mirror must be done
 * (hmm_vma_range_done()) before hmm_mirror_unregister().
 */
struct hmm_mirror {
	struct hmm			*hmm;
	struct list_head		list;
	const struct hmm_mirror_ops	*ops;
	struct mm_struct		*mm;
	bool				released;
};

#ifdef CONFIG_HMM_MIRROR
int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm);
int hmm_mirror_register_locked(struct hmm_mirror *mirror,
			       struct mm_struct *mm);
void hmm_mirror_unregister(struct hmm_mirror *mirror);

int hmm_vma_get_pfns(struct hmm_range *range);
int hmm_vma_fault(struct hmm_range *range, bool block);
int hmm_vma_range_begin(struct hmm_range *range);
bool hmm_vma_range_done(struct hmm_range *range);
int hmm_vma_range_wait(struct hmm_range *range);
int hmm_vma_fault_lock(struct hmm_range *range, bool fault,
		       unsigned int timeout_ms);

int hmm_range_fault(struct hmm_range *range);
#else /* CONFIG_HMM_MIRROR */
static inline int hmm_mirror_register(struct hmm_mirror *mirror,
				      struct mm_struct *mm)
{
	return -EOPNOTSUPP;
}

static inline int hmm_mirror_register_locked(struct hmm_mirror *mirror,
					     struct mm_struct *mm)
{
	return -EOPNOTSUPP;
}

static inline void hmm_mirror_unregister(struct hmm_mirror *mirror)
{
}

static inline int hmm_vma_get_pfns(struct hmm_range *range)
{
	return -EOPNOTSUPP;
}

static inline int hmm_vma_fault(struct hmm_range *range, bool block)
{
	return -EOPNOTSUPP;
}

static inline int hmm_vma_range_begin(struct hmm_range *range)
{
	return -EOPNOTSUPP;
}

static inline bool hmm_vma_range_done(struct hmm_range *range)
{
	return false;
}

static inline int hmm_vma_range_wait(struct hmm_range *range)
{
	return -EOPNOTSUPP;
}

static inline int hmm_vma_fault_lock(struct hmm_range *range, bool fault,
				     unsigned int timeout_ms)
{
	return -EOPNOTSUPP;
}

static inline int hmm_range_fault(struct hmm_range *range)
{
	return -EOPNOTSUPP;
}
#endif /* CONFIG_HMM_MIRROR */

/*
 * HMM_RANGE_DEFAULT_TIMEOUT - default time (ms) a driver keeps retrying a
 * snapshot or fault that keeps being invalidated before giving up.
 */
#define HMM_RANGE_DEFAULT_TIMEOUT 1000

#endif /* LINUX_HMM_H */
