// SPDX-License-Identifier: GPL-2.0
/*
 * Dummy HMM device for the HMM selftests (tools/testing/selftests/vm).
 *
 * Every /dev/hmm_dmirrorN node plays a GPU.  Opening it mirrors the
 * address space of the caller into a device page table, an xarray indexed
 * by virtual page number, kept coherent through an &struct hmm_mirror.  The
 * ioctls of test_hmm_uapi.h then let the "GPU" read and write that address
 * space, fault it in with hmm_vma_fault(), snapshot it with
 * hmm_vma_get_pfns(), migrate it to and from the device's own ZONE_DEVICE
 * memory and take device exclusive access for atomics.
 *
 * Nodes 0 and 1 own device private memory: struct pages without CPU
 * mappings, each backed by an ordinary system page that stands in for the
 * VRAM cell (page->zone_device_data points at it).  Nodes 2 and 3 exist
 * only when the spm_addr_dev0/1 parameters name special purpose memory;
 * they own device coherent memory used in place.
 *
 * Lock order, outermost first:
 *   mmap_lock > page lock > dmirror_device.mirrors_lock > dmirror.lock
 * dmirror_device.mem_lock is taken with page locks held (allocation during
 * migration) and only trylocks pages itself (eviction).  No lock of this
 * driver is held across copy_{to,from}_user() or hmm_vma_fault().
 *
 * Copyright (C) 2026 The HMM series authors.
 */

#define pr_fmt(fmt) "test_hmm: " fmt

#include <linux/cdev.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/hrtimer.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/swap.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait_bit.h>
#include <linux/xarray.h>

#include "test_hmm_uapi.h"

/* Device nodes: two device private, then two optional device coherent. */
#define DMIRROR_MAX_DEVICES	4
#define DMIRROR_PRIVATE_DEVICES	2

/*
 * Pages handled per step of every command but a snapshot (reads and
 * writes: at most their bounce buffer, below): one hmm_vma_fault() call,
 * one migrate_vma_setup(), one eviction batch.  A page table's worth is
 * what a PMD maps (2 MiB with 4 KiB pages, 512 MiB with 64 KiB pages), so
 * huge mappings are seen whole, while the per-step arrays of 8 byte
 * entries still fit in one page each.  Locks are dropped and
 * cond_resched() runs between steps.
 */
#define DMIRROR_STEP_PAGES	((unsigned long)PTRS_PER_PTE)
#define DMIRROR_STEP_SIZE	(DMIRROR_STEP_PAGES << PAGE_SHIFT)

/*
 * A snapshot faults nothing and, being sparse over huge mappings, writes
 * little: it takes steps of up to 16384 pages (64 MiB, 32 PMDs, with 4 KiB
 * pages) so that its fixed cost per step (locks, validation, copy to user)
 * is paid rarely.  Its buffers are sized to the command, up to one step,
 * and kept by the file.
 */
#define DMIRROR_SNAP_STEP_PAGES	16384UL
#define DMIRROR_SNAP_STEP_SIZE	(DMIRROR_SNAP_STEP_PAGES << PAGE_SHIFT)
/* Snapshots of up to this many pages need no allocation at all. */
#define DMIRROR_SNAP_STACK_PAGES	32UL

/* Device memory is added in chunks of this size, up to a limit per node. */
#define DMIRROR_CHUNK_SIZE	(256UL << 20)
#define DMIRROR_MAX_CHUNKS	16

/* Eviction passes over a chunk before pages still in use are given up. */
#define DMIRROR_EVICT_PASSES	50

/*
 * The device page table encoding handed to the HMM core.  Flags sit in the
 * low bits, the CPU mapping order in bits 3-7, the pfn from bit 12 up, as
 * a device with 4K page table entries might lay them out.  The special
 * values carry no valid bit and never decode as a pfn.
 */
#define DPTE_VALID		BIT_ULL(0)
#define DPTE_WRITE		BIT_ULL(1)
#define DPTE_DEVMEM		BIT_ULL(2)
#define DPTE_ORDER		GENMASK_ULL(7, 3)
#define DPTE_ERROR		BIT_ULL(8)
#define DPTE_NOPAGE		BIT_ULL(9)
#define DPTE_EMPTY		0ULL
#define DPTE_PFN_SHIFT		12
#define DPTE_FLAG_MASK		GENMASK_ULL(DPTE_PFN_SHIFT - 1, 0)
/* Flags a valid mapping of a system page has none of. */
#define DPTE_SYSTEM_MASK	(DPTE_FLAG_MASK & ~(DPTE_WRITE | DPTE_ORDER))

static const u64 dmirror_pte_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]			= DPTE_VALID,
	[HMM_PFN_WRITE]			= DPTE_WRITE,
	[HMM_PFN_DEVICE_PRIVATE]	= DPTE_DEVMEM,
};

static const u64 dmirror_pte_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]			= DPTE_ERROR,
	[HMM_PFN_NONE]			= DPTE_EMPTY,
	[HMM_PFN_SPECIAL]		= DPTE_NOPAGE,
};

/*
 * Device page table entries are struct page pointers tagged with the
 * access the device has.  Tag 2 is reserved by the xarray for internal
 * entries, hence the gap.
 */
enum dmirror_pt_access {
	DMIRROR_PT_READ		= 0,
	DMIRROR_PT_ATOMIC	= 1,
	DMIRROR_PT_WRITE	= 3,
};

/*
 * The device's dirty bit: set on an entry when the device writes through
 * it, turned into set_page_dirty() when the entry is dropped.
 */
#define DMIRROR_PT_DIRTY	XA_MARK_0

static unsigned int inval_latency_us;
module_param(inval_latency_us, uint, 0644);
MODULE_PARM_DESC(inval_latency_us,
		 "Simulated device invalidation latency in microseconds, completed asynchronously through an HMM fence (0: invalidate synchronously)");

/*
 * Simulated time a device takes to copy a migration step into its memory,
 * slept between migrate_vma_setup() and migrate_vma_pages() with the
 * mmap_lock held for read, as a driver waiting for its DMA engine would.
 * Other files of the device may fault in the range meanwhile.  At most a
 * second per step, and a fatal signal ends the sleep and the migration.
 */
static unsigned int copy_latency_us;

static int copy_latency_set(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, USEC_PER_SEC);
}

static const struct kernel_param_ops copy_latency_ops = {
	.set = copy_latency_set,
	.get = param_get_uint,
};
module_param_cb(copy_latency_us, &copy_latency_ops, &copy_latency_us, 0644);
MODULE_PARM_DESC(copy_latency_us,
		 "Simulated time in microseconds a migration step takes to copy pages into device memory (0 to 1000000; 0: none)");

static unsigned long spm_addr_dev0;
module_param(spm_addr_dev0, ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev0,
		 "Physical base of the special purpose memory of coherent device 2; needs spm_addr_dev1 too (at least 256MB each)");

static unsigned long spm_addr_dev1;
module_param(spm_addr_dev1, ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev1,
		 "Physical base of the special purpose memory of coherent device 3; needs spm_addr_dev0 too (at least 256MB each)");

/**
 * struct dmirror_counters - kernel side of &struct hmm_dmirror_counters
 * @syncs: sync callbacks seen.
 * @nonblockable: non-blockable sync callbacks seen.
 * @eagain: sync callbacks that returned -EAGAIN.
 * @events: sync callbacks per HMM_DMIRROR_EVENT_* index.
 *
 * Atomic, as the sync callback may not take a sleeping lock to count.
 */
struct dmirror_counters {
	atomic64_t		syncs;
	atomic64_t		nonblockable;
	atomic64_t		eagain;
	atomic64_t		events[HMM_DMIRROR_EVENTS];
};

/**
 * struct dmirror_device - one dummy device node
 * @cdev: character device of /dev/hmm_dmirrorN.
 * @dev: device of the node; its release frees this structure.
 * @mem_type: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE or _COHERENT.
 * @spm_base: physical base of the coherent memory (coherent nodes only).
 * @mem_lock: serializes adding and removing chunks.
 * @chunks: device memory chunks, protected by @mem_lock.  Entries below
 *	@nr_chunks are only freed at module unload, after the node is gone,
 *	so they may be read without the lock by open files.
 * @nr_chunks: number of valid entries in @chunks (written under @mem_lock).
 * @free_lock: protects @free_pages and @nr_free.  Never held while
 *	sleeping; taken from the page_free callback.
 * @free_pages: free device pages, linked through page->zone_device_data.
 * @nr_free: length of @free_pages.
 * @mirrors_lock: protects @mirrors; may be held while taking dmirror.lock.
 * @mirrors: open files of this node (&dmirror.node).  A migration started
 *	by this node, whose invalidation its mirrors skip, uses the list to
 *	drop exactly the device mappings of the pages it moves.
 * @stats: sync callbacks of every mirror of the node, for HMM_DMIRROR_STATS.
 *
 * The address of this structure is the node's owner cookie: the pgmap
 * owner of its memory, the migration and exclusive access owner, and the
 * dev_private_owner of its snapshots and faults.
 */
struct dmirror_device {
	struct cdev		cdev;
	struct device		dev;
	unsigned int		mem_type;
	unsigned long		spm_base;

	struct mutex		mem_lock;	/* adds/removes @chunks */
	struct dmirror_chunk	*chunks[DMIRROR_MAX_CHUNKS];
	unsigned int		nr_chunks;

	spinlock_t		free_lock;	/* @free_pages, @nr_free */
	struct page		*free_pages;
	unsigned long		nr_free;

	struct mutex		mirrors_lock;	/* @mirrors */
	struct list_head	mirrors;

	struct dmirror_counters	stats;
};

/**
 * struct dmirror_chunk - a range of device memory
 * @pagemap: ZONE_DEVICE mapping of the range; pagemap.owner is the device.
 * @ddev: device owning the chunk.
 */
struct dmirror_chunk {
	struct dev_pagemap	pagemap;
	struct dmirror_device	*ddev;
};

/**
 * struct dmirror_scratch - a buffer an open file keeps between commands
 * @lock: held by the command using @buf.  Only ever tried: a command that
 *	finds it taken works in a buffer of its own, so commands on one file
 *	never wait for each other here.
 * @buf: NULL until first needed, then grown as commands need.
 * @size: bytes @buf holds.
 *
 * A driver keeps the buffers its commands work in rather than allocating
 * them for every command.  They are vmalloc()ed: nothing needs them
 * physically contiguous, and a buffer kept for the life of a file should
 * not hold a high-order block that THP or a driver's DMA could use.  They
 * are charged to the memory cgroup of the task that grew them, as any
 * memory a user makes the kernel keep.
 */
struct dmirror_scratch {
	struct mutex	lock;	/* @buf, @size, see above */
	void		*buf;
	size_t		size;
};

/**
 * struct dmirror - the device address space of one open file
 * @mirror: HMM mirror of the opener's mm.
 * @ddev: device the file was opened on; also the owner cookie of its
 *	migrations and exclusive grants.
 * @lock: protects @pt.  Taken by the mirror's sync callback, so every
 *	hmm_vma_range_done() and every device page table update happens under
 *	it.  Every change of @pt, stores and marks alike, holds it (and the
 *	xarray's own lock inside), so a walk under @lock alone sees @pt
 *	stable and meets no retry entry.  Never held across a memory
 *	allocation that may reclaim, a page lock or the mmap_lock.
 * @pt: device page table: virtual page number -> tagged struct page.  The
 *	entries hold no page reference; the mirror clears them before the
 *	CPU lets go of the pages.
 * @node: entry in &dmirror_device.mirrors.
 * @stats: sync callbacks of this mirror, for HMM_DMIRROR_STATS.
 * @snap: entries and protection bytes of snapshots larger than the stack
 *	buffers.
 * @bounce: bounce buffer of reads and writes.
 *
 * After fork() the file, and so this structure, is shared by parent and
 * child; it keeps mirroring the mm of the process that opened it.
 */
struct dmirror {
	struct hmm_mirror	mirror;
	struct dmirror_device	*ddev;
	struct mutex		lock;		/* @pt, see above */
	struct xarray		pt;
	struct list_head	node;
	struct dmirror_counters	stats;
	struct dmirror_scratch	snap;
	struct dmirror_scratch	bounce;
};

static dev_t dmirror_devt;
static struct dmirror_device *dmirror_devs[DMIRROR_MAX_DEVICES];
static const struct dev_pagemap_ops dmirror_devmem_ops;

/*
 * Whether @pfn may be coherent device memory, which is mapped like system
 * memory: only the one chunk of each coherent node, at its spm_addr, can
 * be.  A device knows its own apertures; any other pfn of a system page
 * entry is system memory, told apart without a look at its struct page.
 */
static bool dmirror_maybe_coherent(unsigned long pfn)
{
	phys_addr_t addr = PFN_PHYS(pfn);

	return (spm_addr_dev0 && addr - spm_addr_dev0 < DMIRROR_CHUNK_SIZE) ||
	       (spm_addr_dev1 && addr - spm_addr_dev1 < DMIRROR_CHUNK_SIZE);
}

static struct dmirror_device *dmirror_page_device(struct page *page)
{
	return container_of(page->pgmap, struct dmirror_chunk,
			    pagemap)->ddev;
}

/*
 * Where the data of a device page lives: the system page standing in for
 * device private memory, or the device coherent page itself.
 */
static struct page *dmirror_data_page(struct page *dpage)
{
	if (is_device_private_page(dpage))
		return dpage->zone_device_data;
	return dpage;
}

static bool dmirror_is_private(const struct dmirror_device *ddev)
{
	return ddev->mem_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
}

/* ------------------------------------------------------------------------
 * Device page table
 */

/*
 * The device wrote through the mapping @entry that is being dropped: tell
 * the CPU.  Its own dirty bit may be about to be cleared (page out of a
 * clean-looking page, MADV_FREE, writeback), and a page the device dirtied
 * would otherwise be thrown away.  set_page_dirty() does not sleep and the
 * page is still mapped by the CPU, so its mapping is stable.  Device
 * memory has no page cache state to update.
 */
static void dmirror_pt_dirty(void *entry)
{
	struct page *page = xa_untag_pointer(entry);

	if (page && !is_zone_device_page(page))
		set_page_dirty(page);
}

/* Dirty pages told at a time by dmirror_pt_drop(), outside the xarray lock. */
#define DMIRROR_DIRTY_BATCH	16

/*
 * Drop the device mappings of page indexes [first, last], only those whose
 * entry of @src (indexed from @first) a migration selected if @src is not
 * NULL; return how many there were.  Invalidations of several mirrors run
 * one after the other on the CPU (only their device side overlaps), so this
 * is one walk of the xarray under its lock, not a lookup from the root per
 * page: most invalidations concern pages the device never mapped, and then
 * the walk is all they cost.  set_page_dirty() goes into the filesystem and
 * takes the page cache's locks, which have no business under the device
 * page table's: the pages the device dirtied are gathered and told with the
 * lock dropped, a batch at a time.  They cannot go meanwhile: an
 * invalidation runs before the CPU page table lets go of them, and a
 * migration holds the pages it selected locked and referenced.
 * dmirror->lock keeps the device page table from changing.
 */
static unsigned long dmirror_pt_drop(struct dmirror *dmirror,
				     unsigned long first, unsigned long last,
				     const unsigned long *src)
{
	XA_STATE(xas, &dmirror->pt, first);
	void *dirty[DMIRROR_DIRTY_BATCH];
	unsigned long count = 0;
	unsigned int n, i;
	void *entry;

	lockdep_assert_held(&dmirror->lock);
	do {
		n = 0;
		xas_lock(&xas);
		xas_for_each(&xas, entry, last) {
			if (src && !(src[xas.xa_index - first] &
				     MIGRATE_PFN_MIGRATE))
				continue;
			if (xas_get_mark(&xas, DMIRROR_PT_DIRTY))
				dirty[n++] = entry;
			xas_store(&xas, NULL);
			count++;
			/*
			 * Not xas_pause(): the store may have freed the
			 * node, and the state now points into the parent.
			 */
			if (n == DMIRROR_DIRTY_BATCH) {
				xas_set(&xas, xas.xa_index + 1);
				break;
			}
		}
		xas_unlock(&xas);
		for (i = 0; i < n; i++)
			dmirror_pt_dirty(dirty[i]);
	} while (n == DMIRROR_DIRTY_BATCH);
	return count;
}

/* Drop the device mappings of [start, end); return how many there were. */
static unsigned long dmirror_pt_clear(struct dmirror *dmirror,
				      unsigned long start, unsigned long end)
{
	if (end <= start)
		return 0;
	return dmirror_pt_drop(dmirror, start >> PAGE_SHIFT,
			       (end - 1) >> PAGE_SHIFT, NULL);
}

/*
 * Map @page at @addr with @access.  GFP_ATOMIC: a reclaiming allocation
 * could invalidate this very mm and wait for dmirror->lock in the sync
 * callback.
 */
static int dmirror_pt_set(struct dmirror *dmirror, unsigned long addr,
			  struct page *page, enum dmirror_pt_access access)
{
	void *old;

	lockdep_assert_held(&dmirror->lock);
	old = xa_store(&dmirror->pt, addr >> PAGE_SHIFT,
		       xa_tag_pointer(page, access), GFP_ATOMIC);
	return xa_err(old);
}

/*
 * Copy the mapped pages from @start on into @buf, for at most @npages
 * pages.  Returns how many leading pages were mapped; the first unmapped
 * one stops the copy.  One walk, entry after entry (xas_next()), not a
 * lookup from the root per page.  dmirror->lock keeps the entries; the
 * RCU read section only satisfies the xarray's lockdep checks.
 */
static unsigned long dmirror_pt_read(struct dmirror *dmirror,
				     unsigned long start, unsigned long npages,
				     void *buf)
{
	XA_STATE(xas, &dmirror->pt, start >> PAGE_SHIFT);
	unsigned long done;

	lockdep_assert_held(&dmirror->lock);
	rcu_read_lock();
	for (done = 0; done < npages; done++, buf += PAGE_SIZE) {
		struct page *page = xa_untag_pointer(xas_next(&xas));
		void *kaddr;

		if (!page)
			break;
		kaddr = kmap_local_page(page);
		memcpy(buf, kaddr, PAGE_SIZE);
		kunmap_local(kaddr);
	}
	rcu_read_unlock();
	return done;
}

/*
 * Mark the @n device mappings from page index @first dirty, in one walk
 * under the xarray lock that only steps from leaf entry to leaf entry.
 */
static void dmirror_pt_mark_dirty(struct dmirror *dmirror, unsigned long first,
				  unsigned long n)
{
	XA_STATE(xas, &dmirror->pt, first);

	lockdep_assert_held(&dmirror->lock);
	xas_lock(&xas);
	while (n--) {
		xas_next(&xas);
		xas_set_mark(&xas, DMIRROR_PT_DIRTY);
	}
	xas_unlock(&xas);
}

/*
 * The write side of dmirror_pt_read(): only writable mappings count.  The
 * copy runs in the RCU read section, not under the xarray lock, which is
 * only taken afterwards to mark the pages written dirty.
 */
static unsigned long dmirror_pt_write(struct dmirror *dmirror,
				      unsigned long start, unsigned long npages,
				      const void *buf)
{
	XA_STATE(xas, &dmirror->pt, start >> PAGE_SHIFT);
	unsigned long done;

	lockdep_assert_held(&dmirror->lock);
	rcu_read_lock();
	for (done = 0; done < npages; done++, buf += PAGE_SIZE) {
		void *entry = xas_next(&xas);
		struct page *page = xa_untag_pointer(entry);
		void *kaddr;

		if (!page || xa_pointer_tag(entry) != DMIRROR_PT_WRITE)
			break;
		kaddr = kmap_local_page(page);
		memcpy(kaddr, buf, PAGE_SIZE);
		kunmap_local(kaddr);
	}
	rcu_read_unlock();
	if (done)
		dmirror_pt_mark_dirty(dmirror, start >> PAGE_SHIFT, done);
	return done;
}

/* ------------------------------------------------------------------------
 * Mirror callbacks
 */

static unsigned int dmirror_event_index(enum hmm_update_event event)
{
	switch (event) {
	case HMM_UPDATE_UNMAP:
		return HMM_DMIRROR_EVENT_UNMAP;
	case HMM_UPDATE_CLEAR:
		return HMM_DMIRROR_EVENT_CLEAR;
	case HMM_UPDATE_PROTECTION:
		return HMM_DMIRROR_EVENT_PROTECTION;
	case HMM_UPDATE_SOFT_DIRTY:
		return HMM_DMIRROR_EVENT_SOFT_DIRTY;
	case HMM_UPDATE_RELEASE:
		return HMM_DMIRROR_EVENT_RELEASE;
	case HMM_UPDATE_MIGRATE:
		return HMM_DMIRROR_EVENT_MIGRATE;
	case HMM_UPDATE_EXCLUSIVE:
		return HMM_DMIRROR_EVENT_EXCLUSIVE;
	case HMM_UPDATE_INVALIDATE:
		break;
	}
	return HMM_DMIRROR_EVENT_INVALIDATE;
}

/* Count one sync callback in @stats; may run in a non-blocking section. */
static void dmirror_count(struct dmirror_counters *stats,
			  const struct hmm_update *update, int ret)
{
	atomic64_inc(&stats->syncs);
	atomic64_inc(&stats->events[dmirror_event_index(update->event)]);
	if (!update->blockable)
		atomic64_inc(&stats->nonblockable);
	if (ret == -EAGAIN)
		atomic64_inc(&stats->eagain);
}

/**
 * struct dmirror_fence - a simulated device invalidation in flight
 * @base: what the HMM core waits on.
 * @timer: "the device" finishing the invalidation after inval_latency_us.
 * @done: completed by @timer.
 * @ref: one reference for every holder: the core (each update it was
 *	handed to), @timer, and dmirror_fences while listed.
 * @node: entry in dmirror_fences while in flight.
 * @dmirror: the file whose device invalidation this is; only compared.
 * @start: first address the invalidation covers.
 * @end: end of what it covers (exclusive).
 * @due: when @timer fires.  The device finishes its invalidations in the
 *	order it started them, so a fence is done only once every earlier
 *	one of its file is.
 */
struct dmirror_fence {
	struct hmm_fence	base;
	struct hrtimer		timer;
	struct completion	done;
	refcount_t		ref;
	struct list_head	node;
	const struct dmirror	*dmirror;
	unsigned long		start;
	unsigned long		end;
	ktime_t			due;
};

/* Fences whose timer has not run yet; module unload waits for them. */
static atomic_t dmirror_fences_live = ATOMIC_INIT(0);

/*
 * Device invalidations in flight, of every file: a second invalidation of
 * a range whose flush is still running must wait for that flush too (the
 * fence rule of hmm_mirror_ops.sync_cpu_device_pagetables).  The lock is
 * taken from the timers' hard interrupt context.
 */
static LIST_HEAD(dmirror_fences);
static DEFINE_SPINLOCK(dmirror_fences_lock);

static struct dmirror_fence *to_dmirror_fence(struct hmm_fence *fence)
{
	return container_of(fence, struct dmirror_fence, base);
}

static void dmirror_fence_put(struct hmm_fence *fence)
{
	struct dmirror_fence *df = to_dmirror_fence(fence);

	if (refcount_dec_and_test(&df->ref))
		kfree(df);
}

static bool dmirror_fence_signaled(struct hmm_fence *fence)
{
	return completion_done(&to_dmirror_fence(fence)->done);
}

static void dmirror_fence_wait(struct hmm_fence *fence)
{
	wait_for_completion(&to_dmirror_fence(fence)->done);
}

static const struct hmm_fence_ops dmirror_fence_ops = {
	.signaled	= dmirror_fence_signaled,
	.wait		= dmirror_fence_wait,
	.put		= dmirror_fence_put,
};

static enum hrtimer_restart dmirror_fence_timer(struct hrtimer *timer)
{
	struct dmirror_fence *df = container_of(timer, struct dmirror_fence,
						timer);
	unsigned long flags;

	spin_lock_irqsave(&dmirror_fences_lock, flags);
	list_del(&df->node);
	spin_unlock_irqrestore(&dmirror_fences_lock, flags);
	complete_all(&df->done);
	dmirror_fence_put(&df->base);		/* the list's */
	dmirror_fence_put(&df->base);		/* the timer's */
	if (atomic_dec_and_test(&dmirror_fences_live))
		wake_up_var(&dmirror_fences_live);
	return HRTIMER_NORESTART;
}

/*
 * The fence of the last device invalidation of @dmirror still in flight
 * that overlaps [start, end), with a reference for the caller; NULL if
 * none.  Being the last one, it is done only once all of them are.
 */
static struct dmirror_fence *dmirror_fence_inflight(const struct dmirror *dmirror,
						    unsigned long start,
						    unsigned long end)
{
	struct dmirror_fence *df, *last = NULL;
	unsigned long flags;

	/*
	 * A fence is counted before it is listed and uncounted after it is
	 * unlisted: no count, no fence.  The fence of an earlier
	 * invalidation that dropped the pages was counted under
	 * dmirror->lock, which the caller took after it.
	 */
	if (!atomic_read(&dmirror_fences_live))
		return NULL;
	spin_lock_irqsave(&dmirror_fences_lock, flags);
	list_for_each_entry(df, &dmirror_fences, node)
		if (df->dmirror == dmirror && df->start < end &&
		    df->end > start)
			last = df;
	if (last)
		refcount_inc(&last->ref);
	spin_unlock_irqrestore(&dmirror_fences_lock, flags);
	return last;
}

/*
 * Simulate a device whose TLB invalidation takes @latency_us: start it and
 * hand the core a fence.  The device works through its invalidations in
 * order, so this one finishes no earlier than the previous one of the
 * file.  GFP_NOWAIT because invalidations run in reclaim and in
 * non-blocking sections: -ENOMEM without memory.
 */
static int dmirror_start_latency(struct dmirror *dmirror,
				 struct hmm_update *update,
				 unsigned int latency_us)
{
	struct dmirror_fence *df, *prev;
	unsigned long flags;
	ktime_t due;

	df = kmalloc(sizeof(*df), GFP_NOWAIT | __GFP_NOWARN);
	if (!df)
		return -ENOMEM;
	df->base.ops = &dmirror_fence_ops;
	df->base.next = NULL;
	init_completion(&df->done);
	refcount_set(&df->ref, 3);	/* core, timer, list */
	df->dmirror = dmirror;
	df->start = update->start;
	df->end = update->end;
	atomic_inc(&dmirror_fences_live);
	hrtimer_init(&df->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	df->timer.function = dmirror_fence_timer;

	due = ktime_add_us(ktime_get(), latency_us);
	spin_lock_irqsave(&dmirror_fences_lock, flags);
	list_for_each_entry(prev, &dmirror_fences, node)
		if (prev->dmirror == dmirror && ktime_after(prev->due, due))
			due = prev->due;
	df->due = due;
	list_add_tail(&df->node, &dmirror_fences);
	hrtimer_start(&df->timer, due, HRTIMER_MODE_ABS);
	spin_unlock_irqrestore(&dmirror_fences_lock, flags);

	update->fence = &df->base;
	return 0;
}

/* The work of dmirror_sync_pagetables(): drop the device mappings. */
static int dmirror_invalidate(struct dmirror *dmirror,
			      struct hmm_update *update)
{
	unsigned int latency_us = READ_ONCE(inval_latency_us);
	struct dmirror_fence *df;
	unsigned long dropped;
	int ret = 0;

	/*
	 * Our own migrations unmap just the pages they move, with
	 * dmirror_device_unmap(), and map the new ones themselves; our own
	 * exclusive grants keep the same pages and remap them for atomics.
	 */
	if ((update->event == HMM_UPDATE_MIGRATE ||
	     update->event == HMM_UPDATE_EXCLUSIVE) &&
	    update->owner == dmirror->ddev)
		return 0;

	if (!update->blockable) {
		if (!mutex_trylock(&dmirror->lock))
			return -EAGAIN;
	} else {
		mutex_lock(&dmirror->lock);
	}
	dropped = dmirror_pt_clear(dmirror, update->start, update->end);
	/*
	 * Only a device that had something mapped has TLBs to flush.  Its
	 * fence is listed before the lock goes: a later invalidation of the
	 * range finds nothing left to drop, and must find this flush.
	 */
	if (latency_us && dropped)
		ret = dmirror_start_latency(dmirror, update, latency_us);
	mutex_unlock(&dmirror->lock);

	if (latency_us && dropped) {
		if (ret != -ENOMEM)
			return ret;
		/* No memory for a fence: flush synchronously, if allowed. */
		if (!update->blockable)
			return -EAGAIN;
		fsleep(latency_us);
		return 0;
	}

	/*
	 * Nothing new to drop, but an earlier invalidation of the range may
	 * still be flushing it out of the device: the pages must not go
	 * before that flush is done (the fence rule in hmm.h).
	 */
	df = dmirror_fence_inflight(dmirror, update->start, update->end);
	if (df)
		update->fence = &df->base;
	return 0;
}

static int dmirror_sync_pagetables(struct hmm_mirror *mirror,
				   struct hmm_update *update)
{
	struct dmirror *dmirror = container_of(mirror, struct dmirror, mirror);
	int ret;

	ret = dmirror_invalidate(dmirror, update);
	dmirror_count(&dmirror->stats, update, ret);
	dmirror_count(&dmirror->ddev->stats, update, ret);
	return ret;
}

/* The device page table lock, for hmm_vma_fault_lock(). */
static void dmirror_lock(struct hmm_mirror *mirror)
{
	mutex_lock(&container_of(mirror, struct dmirror, mirror)->lock);
}

static void dmirror_unlock(struct hmm_mirror *mirror)
{
	mutex_unlock(&container_of(mirror, struct dmirror, mirror)->lock);
}

static const struct hmm_mirror_ops dmirror_mirror_ops = {
	.sync_cpu_device_pagetables	= dmirror_sync_pagetables,
	.lock				= dmirror_lock,
	.unlock				= dmirror_unlock,
};

/*
 * @src describes the pages at [addr, addr + npages pages) of @mm that a
 * migration started by @ddev selected.  That migration's invalidation
 * skipped the mirrors of @ddev, so drop their device mappings of exactly
 * these pages here, before the data is copied and the old pages are freed.
 * Pages the migration did not select keep their device mappings.
 */
static void dmirror_device_unmap(struct dmirror_device *ddev,
				 struct mm_struct *mm, unsigned long addr,
				 const unsigned long *src, unsigned long npages)
{
	struct dmirror *dmirror;

	if (!npages)
		return;
	mutex_lock(&ddev->mirrors_lock);
	list_for_each_entry(dmirror, &ddev->mirrors, node) {
		if (dmirror->mirror.mm != mm)
			continue;
		mutex_lock(&dmirror->lock);
		dmirror_pt_drop(dmirror, addr >> PAGE_SHIFT,
				(addr >> PAGE_SHIFT) + npages - 1, src);
		mutex_unlock(&dmirror->lock);
	}
	mutex_unlock(&ddev->mirrors_lock);
}

/* ------------------------------------------------------------------------
 * Faults and snapshots through the HMM core
 */

/* A range of @dmirror's encoding over the entries at @pfns. */
static void dmirror_range_init(struct dmirror *dmirror,
			       struct hmm_range *range, u64 *pfns)
{
	*range = (struct hmm_range) {
		.pfns			= pfns,
		.flags			= dmirror_pte_flags,
		.values			= dmirror_pte_values,
		.order_mask		= DPTE_ORDER,
		.dev_private_owner	= dmirror->ddev,
		.mirror			= &dmirror->mirror,
		.pfn_shift		= DPTE_PFN_SHIFT,
	};
}

/*
 * The device page table entry of the faulted @entry of @range, NULL if it
 * is not what the fault asked for: the core promised every entry valid,
 * and writable for a @write fault.
 */
static void *dmirror_pt_entry(struct hmm_range *range, u64 entry, bool write)
{
	struct page *page = hmm_pfn_to_page(range, entry);
	enum dmirror_pt_access access = DMIRROR_PT_READ;

	if (WARN_ON_ONCE(!page))
		return NULL;
	if (entry & DPTE_WRITE)
		access = DMIRROR_PT_WRITE;
	else if (WARN_ON_ONCE(write))
		return NULL;
	/* Our own device memory: the device uses the data page. */
	if (entry & DPTE_DEVMEM)
		page = dmirror_data_page(page);
	return xa_tag_pointer(page, access);
}

/*
 * Store a faulted range in the device page table.  Called under
 * dmirror->lock after hmm_vma_range_done() said the entries are current.
 * One walk under the xarray lock, entry after entry, not a store from the
 * root per page; GFP_ATOMIC for the nodes it needs, as in dmirror_pt_set().
 */
static int dmirror_pt_commit(struct dmirror *dmirror, struct hmm_range *range,
			     bool write)
{
	XA_STATE(xas, &dmirror->pt, range->start >> PAGE_SHIFT);
	unsigned long addr = range->start;
	u64 *entry = range->pfns;
	void *dentry;
	int ret = 0;

	lockdep_assert_held(&dmirror->lock);
	do {
		xas_lock(&xas);
		for (; addr < range->end; addr += PAGE_SIZE, entry++) {
			dentry = dmirror_pt_entry(range, *entry, write);
			if (!dentry) {
				ret = -EFAULT;
				break;
			}
			xas_store(&xas, dentry);
			/* Out of nodes: allocated unlocked, then stored again. */
			if (xas_error(&xas))
				break;
			xas_next(&xas);
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_ATOMIC));
	return ret ?: xas_error(&xas);
}

/*
 * A device fault on [start, end), at most one step: make it accessible and
 * map it.  hmm_vma_fault_lock() keeps trying while the step is invalidated
 * under it, as long as it makes progress.  On success dmirror->lock is
 * held and the step is mapped: the caller accesses it before anything can
 * unmap it again, as the device access that faulted would.
 */
static int dmirror_fault_locked(struct dmirror *dmirror,
				struct hmm_range *range, unsigned long start,
				unsigned long end, bool write)
{
	int ret;

	/* default_flags is the request; input entries are unused. */
	range->start = start;
	range->end = end;
	range->default_flags = DPTE_VALID | (write ? DPTE_WRITE : 0);
	range->pfn_flags_mask = 0;

	ret = hmm_vma_fault_lock(range, true, 0);
	if (ret)
		return ret;
	ret = dmirror_pt_commit(dmirror, range, write);
	if (ret)
		mutex_unlock(&dmirror->lock);
	return ret;
}

/* HMM_DMIRROR_PROT_* mapping size bit of a valid entry. */
static u8 dmirror_prot_size(const struct hmm_range *range, u64 entry)
{
	unsigned int order = hmm_pfn_to_map_order(range, entry);

	if (order && order + PAGE_SHIFT == PMD_SHIFT)
		return HMM_DMIRROR_PROT_PMD;
	if (order && order + PAGE_SHIFT == PUD_SHIFT)
		return HMM_DMIRROR_PROT_PUD;
	return 0;
}

/* Translate one snapshot entry into the HMM_DMIRROR_PROT_* byte. */
static u8 dmirror_prot(struct dmirror *dmirror, const struct hmm_range *range,
		       u64 entry)
{
	unsigned long pfn;
	struct page *page;
	u8 prot;

	if (entry == DPTE_ERROR || entry == DPTE_NOPAGE)
		return HMM_DMIRROR_PROT_ERROR;
	if (!(entry & DPTE_VALID))
		return HMM_DMIRROR_PROT_NONE;

	/* A device knows its own encoding: every flag sits below the pfn. */
	pfn = entry >> DPTE_PFN_SHIFT;
	if (!(entry & DPTE_DEVMEM) && !dmirror_maybe_coherent(pfn)) {
		prot = is_zero_pfn(pfn) ? HMM_DMIRROR_PROT_ZERO :
					  HMM_DMIRROR_PROT_NONE;
		goto access;
	}

	page = pfn_to_page(pfn);
	if (is_device_private_page(page))
		prot = dmirror_page_device(page) == dmirror->ddev ?
		       HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL :
		       HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	else if (is_device_coherent_page(page))
		prot = dmirror_page_device(page) == dmirror->ddev ?
		       HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
		       HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
	else if (is_zero_pfn(page_to_pfn(page)))
		prot = HMM_DMIRROR_PROT_ZERO;
	else
		prot = HMM_DMIRROR_PROT_NONE;

access:
	prot |= (entry & DPTE_WRITE) ? HMM_DMIRROR_PROT_WRITE :
				       HMM_DMIRROR_PROT_READ;
	return prot | dmirror_prot_size(range, entry);
}

/*
 * Protection bytes of @n snapshot entries.  The snapshot is sparse
 * (HMM_RANGE_SPARSE_HUGE): the one entry written for a huge mapping decides
 * for the rest of that mapping inside the range, as a device programming a
 * huge page table entry would.
 */
static void dmirror_prot_fill(struct dmirror *dmirror,
			      const struct hmm_range *range, u8 *prot,
			      unsigned long n)
{
	unsigned long i, run;
	u64 entry;
	u8 v;

	for (i = 0; i < n; i += run) {
		entry = range->pfns[i];
		run = 1;
		/*
		 * The entries most snapshots are made of, mappings of system
		 * pages, are told by their flags and pfn alone (the zero page
		 * too: the architectures with coloured zero pages have
		 * several, which is_zero_pfn() knows), without a call.
		 */
		if ((entry & DPTE_SYSTEM_MASK) == DPTE_VALID &&
		    !dmirror_maybe_coherent(entry >> DPTE_PFN_SHIFT)) {
			v = (entry & DPTE_WRITE) ? HMM_DMIRROR_PROT_WRITE :
						   HMM_DMIRROR_PROT_READ;
			if (is_zero_pfn(entry >> DPTE_PFN_SHIFT))
				v |= HMM_DMIRROR_PROT_ZERO;
			if (!(entry & DPTE_ORDER)) {
				prot[i] = v;
				continue;
			}
			prot[i] = v | dmirror_prot_size(range, entry);
		} else if (entry == DPTE_EMPTY) {
			prot[i] = HMM_DMIRROR_PROT_NONE;
			continue;
		} else {
			prot[i] = dmirror_prot(dmirror, range, entry);
		}
		run = hmm_pfn_span(range, range->start + (i << PAGE_SHIFT),
				   entry);
		if (run > 1)
			memset(prot + i + 1, prot[i], run - 1);
	}
}

static int dmirror_snapshot_step(struct dmirror *dmirror,
				 struct hmm_range *range, unsigned long start,
				 unsigned long end, u8 *prot)
{
	unsigned long n = (end - start) >> PAGE_SHIFT;
	int ret;

	range->start = start;
	range->end = end;
	ret = hmm_vma_fault_lock(range, false, 0);
	if (ret)
		return ret;
	/*
	 * The lock keeps the reported pages from being unmapped, and so
	 * freed, while their struct page is looked at.
	 */
	dmirror_prot_fill(dmirror, range, prot, n);
	mutex_unlock(&dmirror->lock);
	return 0;
}

/*
 * At least @size bytes of @scratch's buffer if no other command of the file
 * holds it (*@own set, @scratch->lock held), otherwise a buffer of the
 * command's own; NULL if memory runs out.  Release it with
 * dmirror_scratch_put().
 */
static void *dmirror_scratch_get(struct dmirror_scratch *scratch,
				 size_t size, bool *own)
{
	void *buf;

	*own = false;
	if (!mutex_trylock(&scratch->lock))
		return __vmalloc(size, GFP_KERNEL_ACCOUNT);
	if (scratch->size < size) {
		buf = __vmalloc(size, GFP_KERNEL_ACCOUNT);
		if (!buf) {
			mutex_unlock(&scratch->lock);
			return NULL;
		}
		vfree(scratch->buf);
		scratch->buf = buf;
		scratch->size = size;
	}
	*own = true;
	return scratch->buf;
}

static void dmirror_scratch_put(struct dmirror_scratch *scratch, void *buf,
				bool own)
{
	if (own)
		mutex_unlock(&scratch->lock);
	else
		vfree(buf);
}

static int dmirror_snapshot(struct dmirror *dmirror,
			    struct hmm_dmirror_cmd *cmd, unsigned long start,
			    unsigned long end)
{
	struct mm_struct *mm = dmirror->mirror.mm;
	u8 __user *uptr = u64_to_user_ptr(cmd->ptr);
	u64 stack_pfns[DMIRROR_SNAP_STACK_PAGES];
	u8 stack_prot[DMIRROR_SNAP_STACK_PAGES];
	struct hmm_range range;
	unsigned long addr, next, n;
	u64 *pfns = stack_pfns;
	u8 *prot = stack_prot;
	bool own = false;
	int ret = 0;

	n = min((end - start) >> PAGE_SHIFT, DMIRROR_SNAP_STEP_PAGES);
	if (n > DMIRROR_SNAP_STACK_PAGES) {
		/* The entries, then their protection bytes. */
		pfns = dmirror_scratch_get(&dmirror->snap,
					   n * (sizeof(*pfns) + sizeof(*prot)),
					   &own);
		if (!pfns)
			return -ENOMEM;
		prot = (u8 *)(pfns + n);
	}
	dmirror_range_init(dmirror, &range, pfns);
	range.mode = HMM_RANGE_SPARSE_HUGE;

	if (!mmget_not_zero(mm)) {
		ret = -EINVAL;
		goto put_bufs;
	}
	for (addr = start; addr < end; addr = next) {
		next = min(end, addr + DMIRROR_SNAP_STEP_SIZE);
		n = (next - addr) >> PAGE_SHIFT;
		ret = dmirror_snapshot_step(dmirror, &range, addr, next, prot);
		if (ret)
			break;
		if (copy_to_user(uptr, prot, n)) {
			ret = -EFAULT;
			break;
		}
		uptr += n;
		cmd->cpages += n;
		cond_resched();
	}
	mmput(mm);
put_bufs:
	if (pfns != stack_pfns)
		dmirror_scratch_put(&dmirror->snap, pfns, own);
	return ret;
}

/* ------------------------------------------------------------------------
 * Device reads and writes
 */

/*
 * Bounce buffer of a read or a write, which faults and copies what it
 * holds at a time: a step, but never more than the command nor than
 * 2 MiB.  A step is 2 MiB with 4 KiB pages, and 512 MiB with 64 KiB
 * pages, too much memory for one command's buffer; the smaller pieces
 * still fault as one pass.  Release it with dmirror_scratch_put().
 */
#define DMIRROR_BOUNCE_MAX	(2UL << 20)

static void *dmirror_bounce_get(struct dmirror *dmirror, unsigned long start,
				unsigned long end, unsigned long *size,
				bool *own)
{
	*size = min3(end - start, DMIRROR_STEP_SIZE, DMIRROR_BOUNCE_MAX);
	return dmirror_scratch_get(&dmirror->bounce, *size, own);
}

/*
 * Read [start, end) through the device page table into the user buffer.
 * With @fault, unmapped pages are faulted in one step at a time and read
 * under the lock the fault returned with; cmd->faults counts fault passes
 * (steps faulted back to back are one pass).  Without, the first unmapped
 * page fails with -ENOENT.
 */
static int dmirror_read(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			unsigned long start, unsigned long end, bool fault)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	struct hmm_range range;
	unsigned long addr = start;
	unsigned long done, n;
	unsigned long size;
	bool in_pass = false;
	bool own;
	u64 *pfns = NULL;
	void *buf;
	int ret = 0;

	buf = dmirror_bounce_get(dmirror, start, end, &size, &own);
	if (fault)
		pfns = kmalloc_array(DMIRROR_STEP_PAGES, sizeof(*pfns),
				     GFP_KERNEL);
	if (!buf || (fault && !pfns)) {
		ret = -ENOMEM;
		goto free;
	}
	dmirror_range_init(dmirror, &range, pfns);

	while (addr < end) {
		n = min(end - addr, size) >> PAGE_SHIFT;
		mutex_lock(&dmirror->lock);
		done = dmirror_pt_read(dmirror, addr, n, buf);
		if (!done && fault) {
			mutex_unlock(&dmirror->lock);
			ret = dmirror_fault_locked(dmirror, &range, addr,
						   addr + (n << PAGE_SHIFT),
						   false);
			if (ret)
				break;
			if (!in_pass)
				cmd->faults++;
			done = dmirror_pt_read(dmirror, addr, n, buf);
		}
		mutex_unlock(&dmirror->lock);
		if (!done) {
			ret = -ENOENT;
			break;
		}
		in_pass = fault && done == n && range.start == addr;
		if (copy_to_user(uptr + (addr - start), buf,
				 done << PAGE_SHIFT)) {
			ret = -EFAULT;
			break;
		}
		addr += done << PAGE_SHIFT;
		cmd->cpages += done;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
free:
	kfree(pfns);
	dmirror_scratch_put(&dmirror->bounce, buf, own);
	return ret;
}

/* The write side of dmirror_read(), always faulting for write access. */
static int dmirror_write(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			 unsigned long start, unsigned long end)
{
	const char __user *uptr = u64_to_user_ptr(cmd->ptr);
	struct hmm_range range;
	unsigned long addr = start;
	unsigned long done, n;
	unsigned long size;
	bool in_pass = false;
	bool own;
	u64 *pfns;
	void *buf;
	int ret = 0;

	buf = dmirror_bounce_get(dmirror, start, end, &size, &own);
	pfns = kmalloc_array(DMIRROR_STEP_PAGES, sizeof(*pfns), GFP_KERNEL);
	if (!buf || !pfns) {
		ret = -ENOMEM;
		goto free;
	}
	dmirror_range_init(dmirror, &range, pfns);

	while (addr < end) {
		n = min(end - addr, size) >> PAGE_SHIFT;
		if (copy_from_user(buf, uptr + (addr - start),
				   n << PAGE_SHIFT)) {
			ret = -EFAULT;
			break;
		}
		mutex_lock(&dmirror->lock);
		done = dmirror_pt_write(dmirror, addr, n, buf);
		if (!done) {
			mutex_unlock(&dmirror->lock);
			ret = dmirror_fault_locked(dmirror, &range, addr,
						   addr + (n << PAGE_SHIFT),
						   true);
			if (ret)
				break;
			if (!in_pass)
				cmd->faults++;
			done = dmirror_pt_write(dmirror, addr, n, buf);
		}
		mutex_unlock(&dmirror->lock);
		/* The fault mapped the step writable: at least its first page. */
		if (WARN_ON_ONCE(!done)) {
			ret = -EFAULT;
			break;
		}
		in_pass = done == n && range.start == addr;
		addr += done << PAGE_SHIFT;
		cmd->cpages += done;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
free:
	kfree(pfns);
	dmirror_scratch_put(&dmirror->bounce, buf, own);
	return ret;
}

/* ------------------------------------------------------------------------
 * Device memory
 */

/* Add a chunk of device memory and put its pages on the free list. */
static int dmirror_chunk_add(struct dmirror_device *ddev)
{
	struct dmirror_chunk *chunk;
	struct resource *res = NULL;
	struct page *first, *last;
	unsigned long pfn, pfn_end;
	void *ret_ptr;
	int ret;

	lockdep_assert_held(&ddev->mem_lock);
	if (ddev->nr_chunks == ARRAY_SIZE(ddev->chunks) ||
	    (!dmirror_is_private(ddev) && ddev->nr_chunks))
		return -ENOMEM;

	chunk = kzalloc(sizeof(*chunk), GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;

	if (dmirror_is_private(ddev)) {
		res = request_free_mem_region(&iomem_resource,
					      DMIRROR_CHUNK_SIZE,
					      "hmm_dmirror");
		if (IS_ERR(res)) {
			ret = PTR_ERR(res);
			goto free_chunk;
		}
		chunk->pagemap.type = MEMORY_DEVICE_PRIVATE;
		chunk->pagemap.range.start = res->start;
		chunk->pagemap.range.end = res->end;
	} else {
		chunk->pagemap.type = MEMORY_DEVICE_COHERENT;
		chunk->pagemap.range.start = ddev->spm_base;
		chunk->pagemap.range.end = ddev->spm_base +
					   DMIRROR_CHUNK_SIZE - 1;
	}
	chunk->pagemap.nr_range = 1;
	chunk->pagemap.ops = &dmirror_devmem_ops;
	chunk->pagemap.owner = ddev;
	chunk->ddev = ddev;

	ret_ptr = memremap_pages(&chunk->pagemap, numa_node_id());
	if (IS_ERR_OR_NULL(ret_ptr)) {
		ret = ret_ptr ? PTR_ERR(ret_ptr) : -ENOMEM;
		goto release_region;
	}

	/* Chain the new pages privately, then splice them in at once. */
	pfn = chunk->pagemap.range.start >> PAGE_SHIFT;
	pfn_end = (chunk->pagemap.range.end + 1) >> PAGE_SHIFT;
	first = pfn_to_page(pfn);
	for (last = first; pfn + 1 < pfn_end; pfn++) {
		struct page *next = pfn_to_page(pfn + 1);

		last->zone_device_data = next;
		last = next;
	}

	spin_lock(&ddev->free_lock);
	last->zone_device_data = ddev->free_pages;
	ddev->free_pages = first;
	ddev->nr_free += DMIRROR_CHUNK_SIZE >> PAGE_SHIFT;
	spin_unlock(&ddev->free_lock);

	ddev->chunks[ddev->nr_chunks++] = chunk;
	dev_dbg(&ddev->dev, "chunk %u added: pfn %#llx-%#llx\n",
		ddev->nr_chunks, chunk->pagemap.range.start >> PAGE_SHIFT,
		chunk->pagemap.range.end >> PAGE_SHIFT);
	return 0;

release_region:
	if (res)
		release_mem_region(res->start, resource_size(res));
free_chunk:
	kfree(chunk);
	return ret;
}

static struct page *dmirror_free_page_pop(struct dmirror_device *ddev)
{
	struct page *page;

	spin_lock(&ddev->free_lock);
	page = ddev->free_pages;
	if (page) {
		ddev->free_pages = page->zone_device_data;
		ddev->nr_free--;
	}
	spin_unlock(&ddev->free_lock);
	return page;
}

/*
 * Allocate a device page, locked and with one reference, as migration
 * wants it; device private pages get their backing system page.
 */
static struct page *dmirror_devmem_alloc(struct dmirror_device *ddev)
{
	struct page *backing = NULL;
	struct page *dpage;

	if (dmirror_is_private(ddev)) {
		backing = alloc_page(GFP_HIGHUSER);
		if (!backing)
			return NULL;
	}

	dpage = dmirror_free_page_pop(ddev);
	if (!dpage) {
		mutex_lock(&ddev->mem_lock);
		/* Someone else may have added a chunk meanwhile. */
		dpage = dmirror_free_page_pop(ddev);
		if (!dpage && !dmirror_chunk_add(ddev))
			dpage = dmirror_free_page_pop(ddev);
		mutex_unlock(&ddev->mem_lock);
	}
	if (!dpage) {
		if (backing)
			__free_page(backing);
		return NULL;
	}

	zone_device_page_init(dpage);
	dpage->zone_device_data = backing;
	return dpage;
}

/* dev_pagemap_ops.page_free: the last reference to a device page is gone. */
static void dmirror_devmem_free(struct page *page)
{
	struct dmirror_device *ddev = dmirror_page_device(page);

	if (is_device_private_page(page) && page->zone_device_data)
		__free_page(page->zone_device_data);

	spin_lock(&ddev->free_lock);
	page->zone_device_data = ddev->free_pages;
	ddev->free_pages = page;
	ddev->nr_free++;
	spin_unlock(&ddev->free_lock);
}

/*
 * Allocate system pages for the device pages @src selects and copy their
 * data.  @vma: allocate for that mapping at @addr; NULL for eviction, which
 * must not fail.  Returns false if some allocation failed.
 */
static bool dmirror_copy_to_ram(const unsigned long *src, unsigned long *dst,
				unsigned long npages,
				struct vm_area_struct *vma, unsigned long addr)
{
	bool ok = true;
	unsigned long i;

	for (i = 0; i < npages; i++, addr += PAGE_SIZE) {
		struct page *spage = migrate_pfn_to_page(src[i]);
		struct page *page;

		dst[i] = 0;
		if (!spage || !(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (WARN_ON_ONCE(!is_device_private_page(spage) &&
				 !is_device_coherent_page(spage)))
			continue;

		if (vma)
			page = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, addr);
		else
			page = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL);
		if (!page) {
			ok = false;
			continue;
		}
		lock_page(page);
		copy_highpage(page, dmirror_data_page(spage));
		dst[i] = migrate_pfn(page_to_pfn(page));
		if (src[i] & MIGRATE_PFN_WRITE)
			dst[i] |= MIGRATE_PFN_WRITE;
	}
	return ok;
}

/*
 * One eviction pass over [pfn, pfn + npages) of a chunk.  Returns how many
 * pages of the range are still allocated afterwards.
 */
static unsigned long dmirror_evict_batch(unsigned long pfn,
					 unsigned long npages,
					 unsigned long *src, unsigned long *dst)
{
	unsigned long i, busy = 0;

	migrate_device_range(src, pfn, npages);
	dmirror_copy_to_ram(src, dst, npages, NULL, 0);
	migrate_device_pages(src, dst, npages);
	migrate_device_finalize(src, dst, npages);

	for (i = 0; i < npages; i++)
		if (page_ref_count(pfn_to_page(pfn + i)))
			busy++;
	return busy;
}

/*
 * Move every allocated page of @chunk back to system memory.  Pages that
 * are transiently locked or referenced are retried a bounded number of
 * times.  A coherent page under device exclusive access is not mapped, so
 * migration cannot move it until the CPU revokes that access.  Returns 0,
 * or -EBUSY if some page could not be moved.
 */
static int dmirror_chunk_evict(struct dmirror_chunk *chunk)
{
	unsigned long first = chunk->pagemap.range.start >> PAGE_SHIFT;
	unsigned long total = range_len(&chunk->pagemap.range) >> PAGE_SHIFT;
	unsigned long *src, *dst;
	unsigned long i, n, busy;
	unsigned int pass;

	src = kcalloc(DMIRROR_STEP_PAGES, sizeof(*src),
		      GFP_KERNEL | __GFP_NOFAIL);
	dst = kcalloc(DMIRROR_STEP_PAGES, sizeof(*dst),
		      GFP_KERNEL | __GFP_NOFAIL);

	for (pass = 0; pass < DMIRROR_EVICT_PASSES; pass++) {
		busy = 0;
		for (i = 0; i < total; i += n) {
			n = min(total - i, DMIRROR_STEP_PAGES);
			busy += dmirror_evict_batch(first + i, n, src, dst);
			cond_resched();
		}
		if (!busy)
			break;
		msleep(20);
	}

	kfree(dst);
	kfree(src);
	return busy ? -EBUSY : 0;
}

/* Show the first page of @chunk something still holds. */
static void dmirror_chunk_dump_busy(struct dmirror_chunk *chunk)
{
	unsigned long pfn = chunk->pagemap.range.start >> PAGE_SHIFT;
	unsigned long end = (chunk->pagemap.range.end + 1) >> PAGE_SHIFT;

	for (; pfn < end; pfn++) {
		if (page_ref_count(pfn_to_page(pfn))) {
			dump_page(pfn_to_page(pfn), "test_hmm: cannot evict");
			return;
		}
	}
}

/* HMM_DMIRROR_RELEASE: empty the device memory of @ddev. */
static int dmirror_device_evict(struct dmirror_device *ddev)
{
	unsigned int i, n;
	int ret = 0;

	/*
	 * Chunks are only appended while the node is open, so the first
	 * @n stay valid without holding mem_lock through the long eviction.
	 */
	mutex_lock(&ddev->mem_lock);
	n = ddev->nr_chunks;
	mutex_unlock(&ddev->mem_lock);

	for (i = 0; i < n; i++) {
		if (dmirror_chunk_evict(ddev->chunks[i]))
			ret = -EBUSY;
		if (fatal_signal_pending(current))
			return -EINTR;
	}
	return ret;
}

/* Evict and free every chunk; the node must have no user left. */
static void dmirror_device_free_chunks(struct dmirror_device *ddev)
{
	struct dmirror_chunk *chunk;

	mutex_lock(&ddev->mem_lock);
	while (ddev->nr_chunks) {
		chunk = ddev->chunks[--ddev->nr_chunks];
		ddev->chunks[ddev->nr_chunks] = NULL;

		/*
		 * memunmap_pages() waits for the last page reference.  A
		 * process that took device exclusive access to coherent
		 * pages and closed the node keeps them until it exits.
		 */
		if (dmirror_chunk_evict(chunk)) {
			dev_warn(&ddev->dev, "device memory still in use, waiting for it\n");
			dmirror_chunk_dump_busy(chunk);
		}
		memunmap_pages(&chunk->pagemap);
		if (chunk->pagemap.type == MEMORY_DEVICE_PRIVATE)
			release_mem_region(chunk->pagemap.range.start,
					   range_len(&chunk->pagemap.range));
		kfree(chunk);
	}
	spin_lock(&ddev->free_lock);
	ddev->free_pages = NULL;
	ddev->nr_free = 0;
	spin_unlock(&ddev->free_lock);
	mutex_unlock(&ddev->mem_lock);
}

/* dev_pagemap_ops.migrate_to_ram: the CPU touched a device private page. */
static vm_fault_t dmirror_devmem_fault(struct vm_fault *vmf)
{
	struct dmirror_device *ddev = dmirror_page_device(vmf->page);
	unsigned long src = 0, dst = 0;
	struct migrate_vma args = {
		.vma		= vmf->vma,
		.start		= vmf->address & PAGE_MASK,
		.end		= (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src		= &src,
		.dst		= &dst,
		.pgmap_owner	= ddev,
		.flags		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page	= vmf->page,
	};
	vm_fault_t ret = 0;

	if (migrate_vma_setup(&args))
		return VM_FAULT_SIGBUS;

	dmirror_device_unmap(ddev, args.vma->vm_mm, args.start, &src, 1);
	if (!dmirror_copy_to_ram(&src, &dst, 1, args.vma, args.start))
		ret = VM_FAULT_OOM;
	migrate_vma_pages(&args);
	migrate_vma_finalize(&args);
	return ret;
}

static const struct dev_pagemap_ops dmirror_devmem_ops = {
	.page_free	= dmirror_devmem_free,
	.migrate_to_ram	= dmirror_devmem_fault,
};

/* ------------------------------------------------------------------------
 * Migration commands
 */

/*
 * The VMA holding @addr, if the device may migrate it; @next is clipped to
 * its end.
 */
static struct vm_area_struct *dmirror_migrate_vma(struct mm_struct *mm,
						  unsigned long addr,
						  unsigned long *next)
{
	struct vm_area_struct *vma;

	/* Not mmap_assert_locked(): it needs dump_mm(), not exported. */
	lockdep_assert_held(&mm->mmap_lock);
	vma = vma_lookup(mm, addr);
	if (!vma || !(vma->vm_flags & VM_READ))
		return NULL;
	*next = min(*next, vma->vm_end);
	return vma;
}

/* Fill device pages for the system pages migrate_vma_setup() selected. */
static void dmirror_copy_to_device(struct dmirror *dmirror,
				   struct migrate_vma *args)
{
	unsigned int latency_us = READ_ONCE(copy_latency_us);
	unsigned long i;

	for (i = 0; i < args->npages; i++) {
		struct page *spage = migrate_pfn_to_page(args->src[i]);
		struct page *dpage;

		args->dst[i] = 0;
		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		/* No page: pte_none or the zero page, both read as zeroes. */
		if (WARN_ON_ONCE(spage && is_zone_device_page(spage)))
			continue;

		dpage = dmirror_devmem_alloc(dmirror->ddev);
		if (!dpage)
			continue;
		if (spage)
			copy_highpage(dmirror_data_page(dpage), spage);
		else
			clear_highpage(dmirror_data_page(dpage));

		args->dst[i] = migrate_pfn(page_to_pfn(dpage));
		if ((args->src[i] & MIGRATE_PFN_WRITE) ||
		    (!spage && (args->vma->vm_flags & VM_WRITE)))
			args->dst[i] |= MIGRATE_PFN_WRITE;
	}
	/* Killable, like a driver's wait for its DMA engine. */
	if (latency_us && args->cpages)
		schedule_timeout_killable(usecs_to_jiffies(latency_us));
}

/*
 * Map the pages a finished migration step moved into device memory.
 *
 * Once migrate_vma_finalize() has run, the CPU page table is the only
 * truth: a concurrent MADV_DONTNEED may have zapped a migration entry, and
 * with it the only reference to the new device page, while the step ran;
 * its invalidation then found nothing to clear.  So take a snapshot of the
 * step and map only the addresses that still hold the page the step put
 * there, validated like any other snapshot.
 */
static int dmirror_map_migrated(struct dmirror *dmirror,
				struct migrate_vma *args, u64 *pfns)
{
	struct hmm_range range;
	unsigned long i, addr;
	int ret;

	dmirror_range_init(dmirror, &range, pfns);
	range.start = args->start;
	range.end = args->end;
	ret = hmm_vma_fault_lock(&range, false, 0);
	if (ret)
		return ret;

	for (i = 0, addr = args->start; i < args->npages;
	     i++, addr += PAGE_SIZE) {
		struct page *dpage = migrate_pfn_to_page(args->dst[i]);
		struct page *page;

		if (!(args->src[i] & MIGRATE_PFN_MIGRATE) || !dpage)
			continue;
		page = hmm_pfn_to_page(&range, pfns[i]);
		if (page != dpage)
			continue;
		ret = dmirror_pt_set(dmirror, addr, dmirror_data_page(page),
				     (pfns[i] & DPTE_WRITE) ?
				     DMIRROR_PT_WRITE : DMIRROR_PT_READ);
		if (ret)
			break;
	}
	mutex_unlock(&dmirror->lock);
	return ret;
}

/* Number of pages a finished migration step actually moved. */
static unsigned long dmirror_migrated(const struct migrate_vma *args)
{
	unsigned long i, n = 0;

	for (i = 0; i < args->npages; i++)
		if ((args->src[i] & MIGRATE_PFN_VALID) &&
		    (args->src[i] & MIGRATE_PFN_MIGRATE))
			n++;
	return n;
}

static int dmirror_migrate(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			   unsigned long start, unsigned long end, bool to_dev)
{
	struct dmirror_device *ddev = dmirror->ddev;
	struct mm_struct *mm = dmirror->mirror.mm;
	struct migrate_vma args = { .pgmap_owner = ddev };
	unsigned long *src, *dst;
	unsigned long addr, next;
	u64 *pfns = NULL;
	int ret = 0;

	if (to_dev)
		args.flags = MIGRATE_VMA_SELECT_SYSTEM;
	else if (dmirror_is_private(ddev))
		args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
	else
		args.flags = MIGRATE_VMA_SELECT_DEVICE_COHERENT;

	src = kcalloc(DMIRROR_STEP_PAGES, sizeof(*src), GFP_KERNEL);
	dst = kcalloc(DMIRROR_STEP_PAGES, sizeof(*dst), GFP_KERNEL);
	if (to_dev)
		pfns = kmalloc_array(DMIRROR_STEP_PAGES, sizeof(*pfns),
				     GFP_KERNEL);
	if (!src || !dst || (to_dev && !pfns)) {
		ret = -ENOMEM;
		goto free_arrays;
	}
	args.src = src;
	args.dst = dst;

	if (!mmget_not_zero(mm)) {
		ret = -EINVAL;
		goto free_arrays;
	}
	for (addr = start; addr < end; addr = next) {
		next = min(end, addr + DMIRROR_STEP_SIZE);

		if (mmap_read_lock_killable(mm)) {
			ret = -EINTR;
			break;
		}
		args.vma = dmirror_migrate_vma(mm, addr, &next);
		if (!args.vma) {
			mmap_read_unlock(mm);
			ret = -EINVAL;
			break;
		}
		args.start = addr;
		args.end = next;
		ret = migrate_vma_setup(&args);
		if (ret) {
			mmap_read_unlock(mm);
			break;
		}

		/*
		 * The mirrors of this device skipped the invalidation of
		 * migrate_vma_setup(): unmap the selected pages from all of
		 * them (another open file may map them too) before the copy.
		 */
		dmirror_device_unmap(ddev, mm, addr, src, args.npages);
		if (to_dev) {
			dmirror_copy_to_device(dmirror, &args);
			migrate_vma_pages(&args);
			/*
			 * A selected page with nothing behind it kept its PTE,
			 * so another open file could fault the zero page in
			 * there since the unmap above, and migrate_vma_pages()
			 * has now put the device page in its place, with an
			 * invalidation our mirrors skip again: unmap them once
			 * more, or that file reads zeros from then on.
			 */
			dmirror_device_unmap(ddev, mm, addr, src, args.npages);
			migrate_vma_finalize(&args);
		} else {
			dmirror_copy_to_ram(src, dst, args.npages, args.vma,
					    addr);
			migrate_vma_pages(&args);
			cmd->cpages += dmirror_migrated(&args);
			migrate_vma_finalize(&args);
		}
		mmap_read_unlock(mm);
		/* Mapping takes its own snapshot, outside the mmap_lock. */
		if (to_dev)
			ret = dmirror_map_migrated(dmirror, &args, pfns);
		if (ret)
			break;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	mmput(mm);

	/* Give the device's view of the pages back for verification. */
	if (!ret && to_dev)
		ret = dmirror_read(dmirror, cmd, start, end, false);

free_arrays:
	kfree(pfns);
	kfree(dst);
	kfree(src);
	return ret;
}

/* ------------------------------------------------------------------------
 * Device exclusive access
 */

/*
 * Grant exclusive access to one step and map it for atomics, inside an
 * HMM critical section: make_device_exclusive_range() hands back locked
 * pages, but zap_pte_range() (MADV_DONTNEED, munmap) drops device
 * exclusive entries without the page lock, and the page may be freed as
 * soon as we let go of it.  Only if no invalidation of the step started
 * since hmm_vma_range_begin() do the pages still back the step; our own
 * grant (owner ddev) does not count.  Returns -EAGAIN to try the step
 * again.
 */
static int dmirror_exclusive_step(struct dmirror *dmirror,
				  struct mm_struct *mm, unsigned long start,
				  unsigned long end, struct page **pages)
{
	unsigned long i, got, n = (end - start) >> PAGE_SHIFT;
	struct hmm_range range = {
		.mirror	= &dmirror->mirror,
		.owner	= dmirror->ddev,
		.start	= start,
		.end	= end,
	};
	int ret;

	/* -EBUSY: the OOM reaper's invalidation of the step is under way. */
	ret = hmm_vma_range_begin(&range);
	if (ret)
		return ret == -EBUSY ? -EAGAIN : ret;

	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto done;
	}
	ret = make_device_exclusive_range(mm, start, end, pages,
					  dmirror->ddev);
	mmap_read_unlock(mm);
	if (ret < 0)
		goto done;
	got = ret;
	ret = 0;

	if (got != n)
		ret = -EBUSY;
	for (i = 0; i < got && !ret; i++)
		if (!pages[i])
			ret = -EBUSY;

	/*
	 * The pages stay locked until mapped: revoking exclusive access
	 * needs the page lock, so it cannot slip in before the mapping.
	 */
	mutex_lock(&dmirror->lock);
	if (!hmm_vma_range_done(&range)) {
		if (!ret)
			ret = -EAGAIN;
	} else {
		for (i = 0; i < n && !ret; i++)
			ret = dmirror_pt_set(dmirror, start + (i << PAGE_SHIFT),
					     pages[i], DMIRROR_PT_ATOMIC);
	}
	mutex_unlock(&dmirror->lock);

	for (i = 0; i < got; i++) {
		if (!pages[i])
			continue;
		unlock_page(pages[i]);
		put_page(pages[i]);
	}
	return ret;

done:
	mutex_lock(&dmirror->lock);
	hmm_vma_range_done(&range);
	mutex_unlock(&dmirror->lock);
	return ret;
}

/* Make [start, end) present and writable; @pages is scratch space. */
static void dmirror_exclusive_prefault(struct mm_struct *mm,
				       unsigned long start, unsigned long end,
				       struct page **pages)
{
	long i, got;

	if (mmap_read_lock_killable(mm))
		return;
	got = get_user_pages_remote(mm, start, (end - start) >> PAGE_SHIFT,
				    FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD,
				    pages, NULL, NULL);
	mmap_read_unlock(mm);
	for (i = 0; i < got; i++)
		put_page(pages[i]);
}

static int dmirror_exclusive(struct dmirror *dmirror,
			     struct hmm_dmirror_cmd *cmd, unsigned long start,
			     unsigned long end)
{
	struct mm_struct *mm = dmirror->mirror.mm;
	unsigned long addr, next, deadline;
	struct page **pages;
	int ret = 0;

	pages = kcalloc(DMIRROR_STEP_PAGES, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (!mmget_not_zero(mm)) {
		ret = -EINVAL;
		goto free_pages;
	}
	for (addr = start; addr < end; addr = next) {
		next = min(end, addr + DMIRROR_STEP_SIZE);
		deadline = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
		for (;;) {
			ret = dmirror_exclusive_step(dmirror, mm, addr, next,
						     pages);
			if (ret != -EAGAIN)
				break;
			if (time_after(jiffies, deadline)) {
				ret = -EBUSY;
				break;
			}
			if (fatal_signal_pending(current)) {
				ret = -EINTR;
				break;
			}
			/*
			 * Fault the step writable before trying again, outside
			 * the critical section: the revocation of the entries
			 * a failed attempt left, a copy on write or a THP split
			 * are invalidations of the step, and inside the section
			 * they would fail every attempt.
			 */
			dmirror_exclusive_prefault(mm, addr, next, pages);
		}
		if (ret)
			break;
		cond_resched();
	}
	mmput(mm);

	if (!ret)
		ret = dmirror_read(dmirror, cmd, start, end, false);
free_pages:
	kfree(pages);
	return ret;
}

/* -EPERM while any page of [start, end) is still mapped for atomics. */
static int dmirror_check_exclusive(struct dmirror *dmirror,
				   unsigned long start, unsigned long end)
{
	unsigned long idx;
	void *entry;
	int ret = 0;

	mutex_lock(&dmirror->lock);
	xa_for_each_range(&dmirror->pt, idx, entry, start >> PAGE_SHIFT,
			  (end - 1) >> PAGE_SHIFT) {
		if (xa_pointer_tag(entry) == DMIRROR_PT_ATOMIC) {
			ret = -EPERM;
			break;
		}
	}
	mutex_unlock(&dmirror->lock);
	return ret;
}

/* ------------------------------------------------------------------------
 * File operations
 */

static int dmirror_open(struct inode *inode, struct file *filp)
{
	struct dmirror_device *ddev = container_of(inode->i_cdev,
						   struct dmirror_device, cdev);
	struct dmirror *dmirror;
	int ret;

	/* Only a process with an address space has something to mirror. */
	if (!current->mm)
		return -EINVAL;

	dmirror = kzalloc(sizeof(*dmirror), GFP_KERNEL);
	if (!dmirror)
		return -ENOMEM;
	dmirror->ddev = ddev;
	mutex_init(&dmirror->lock);
	xa_init(&dmirror->pt);
	mutex_init(&dmirror->snap.lock);
	mutex_init(&dmirror->bounce.lock);
	dmirror->mirror.ops = &dmirror_mirror_ops;

	ret = hmm_mirror_register(&dmirror->mirror, current->mm);
	if (ret) {
		kfree(dmirror);
		return ret;
	}

	mutex_lock(&ddev->mirrors_lock);
	list_add(&dmirror->node, &ddev->mirrors);
	mutex_unlock(&ddev->mirrors_lock);

	filp->private_data = dmirror;
	return 0;
}

static int dmirror_release(struct inode *inode, struct file *filp)
{
	struct dmirror *dmirror = filp->private_data;
	struct dmirror_device *ddev = dmirror->ddev;

	mutex_lock(&ddev->mirrors_lock);
	list_del(&dmirror->node);
	mutex_unlock(&ddev->mirrors_lock);

	/* No callback runs after this, so the page table is ours alone. */
	hmm_mirror_unregister(&dmirror->mirror);

	/*
	 * Device pages do not point back at this structure: pages the
	 * process still has in device memory stay there and are found
	 * through their pagemap when touched.
	 */
	xa_destroy(&dmirror->pt);
	vfree(dmirror->bounce.buf);
	vfree(dmirror->snap.buf);
	kfree(dmirror);
	return 0;
}

static void dmirror_counters_read(const struct dmirror_counters *stats,
				  struct hmm_dmirror_counters *out)
{
	unsigned int i;

	out->syncs = atomic64_read(&stats->syncs);
	out->nonblockable = atomic64_read(&stats->nonblockable);
	out->eagain = atomic64_read(&stats->eagain);
	for (i = 0; i < HMM_DMIRROR_EVENTS; i++)
		out->events[i] = atomic64_read(&stats->events[i]);
}

/* HMM_DMIRROR_STATS: copy out the counters of the node and of the file. */
static int dmirror_stats(struct dmirror *dmirror, void __user *uarg)
{
	struct hmm_dmirror_stats stats;

	memset(&stats, 0, sizeof(stats));
	dmirror_counters_read(&dmirror->ddev->stats, &stats.device);
	dmirror_counters_read(&dmirror->stats, &stats.mirror);
	if (copy_to_user(uarg, &stats, sizeof(stats)))
		return -EFAULT;
	return 0;
}

/*
 * Validate the user range of @cmd: a page aligned address and a page count
 * whose byte size neither overflows nor wraps the address space.
 */
static int dmirror_cmd_range(const struct hmm_dmirror_cmd *cmd,
			     unsigned long *start, unsigned long *end)
{
	unsigned long size;

	if (cmd->addr != (unsigned long)cmd->addr ||
	    !PAGE_ALIGNED(cmd->addr))
		return -EINVAL;
	if (!cmd->npages || cmd->npages > ULONG_MAX >> PAGE_SHIFT)
		return -EINVAL;
	size = (unsigned long)cmd->npages << PAGE_SHIFT;
	*start = cmd->addr;
	if (check_add_overflow(*start, size, end))
		return -EINVAL;
	return 0;
}

static long dmirror_ioctl(struct file *filp, unsigned int command,
			  unsigned long arg)
{
	struct dmirror *dmirror = filp->private_data;
	void __user *uarg = (void __user *)arg;
	/* Copied in whole before any use. */
	struct hmm_dmirror_cmd cmd;
	unsigned long start, end;
	int ret;

	switch (command) {
	case HMM_DMIRROR_READ:
	case HMM_DMIRROR_WRITE:
	case HMM_DMIRROR_MIGRATE_TO_DEV:
	case HMM_DMIRROR_MIGRATE_TO_SYS:
	case HMM_DMIRROR_SNAPSHOT:
	case HMM_DMIRROR_EXCLUSIVE:
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
	case HMM_DMIRROR_RELEASE:
		break;
	case HMM_DMIRROR_STATS:
		return dmirror_stats(dmirror, uarg);
	default:
		return -ENOTTY;
	}

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	ret = dmirror_cmd_range(&cmd, &start, &end);
	if (ret)
		return ret;
	cmd.cpages = 0;
	cmd.faults = 0;

	switch (command) {
	case HMM_DMIRROR_READ:
		ret = dmirror_read(dmirror, &cmd, start, end, true);
		break;
	case HMM_DMIRROR_WRITE:
		ret = dmirror_write(dmirror, &cmd, start, end);
		break;
	case HMM_DMIRROR_MIGRATE_TO_DEV:
		ret = dmirror_migrate(dmirror, &cmd, start, end, true);
		break;
	case HMM_DMIRROR_MIGRATE_TO_SYS:
		ret = dmirror_migrate(dmirror, &cmd, start, end, false);
		break;
	case HMM_DMIRROR_SNAPSHOT:
		ret = dmirror_snapshot(dmirror, &cmd, start, end);
		break;
	case HMM_DMIRROR_EXCLUSIVE:
		ret = dmirror_exclusive(dmirror, &cmd, start, end);
		break;
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
		ret = dmirror_check_exclusive(dmirror, start, end);
		break;
	case HMM_DMIRROR_RELEASE:
		ret = dmirror_device_evict(dmirror->ddev);
		break;
	}
	if (ret)
		return ret;

	if (copy_to_user(uarg, &cmd, sizeof(cmd)))
		return -EFAULT;
	return 0;
}

/*
 * Mapping the node gives zeroed ordinary pages in a VM_MIXEDMAP VMA, the
 * kind of mapping a driver exporting its own buffers would create.
 */
static int dmirror_mmap(struct file *filp, struct vm_area_struct *vma)
{
	unsigned long addr;
	int ret;

	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		struct page *page = alloc_page(GFP_KERNEL | __GFP_ZERO);

		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		/* The mapping holds its own reference on success. */
		put_page(page);
		if (ret)
			return ret;
		cond_resched();
	}
	return 0;
}

static const struct file_operations dmirror_fops = {
	.owner		= THIS_MODULE,
	.open		= dmirror_open,
	.release	= dmirror_release,
	.mmap		= dmirror_mmap,
	.unlocked_ioctl	= dmirror_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= default_llseek,
};

/* ------------------------------------------------------------------------
 * Module setup
 */

static void dmirror_device_release(struct device *dev)
{
	kfree(container_of(dev, struct dmirror_device, dev));
}

/*
 * Create node @id.  On failure everything this call set up is undone and
 * the structure is freed.
 */
static int dmirror_device_create(unsigned int id, unsigned int mem_type,
				 unsigned long spm_base)
{
	struct dmirror_device *ddev;
	int ret;

	ddev = kzalloc(sizeof(*ddev), GFP_KERNEL);
	if (!ddev)
		return -ENOMEM;
	ddev->mem_type = mem_type;
	ddev->spm_base = spm_base;
	mutex_init(&ddev->mem_lock);
	spin_lock_init(&ddev->free_lock);
	mutex_init(&ddev->mirrors_lock);
	INIT_LIST_HEAD(&ddev->mirrors);

	/* From here on the device reference owns ddev. */
	device_initialize(&ddev->dev);
	ddev->dev.devt = MKDEV(MAJOR(dmirror_devt), id);
	ddev->dev.release = dmirror_device_release;
	ret = dev_set_name(&ddev->dev, "hmm_dmirror%u", id);
	if (ret)
		goto put_dev;

	/* Have memory before the node becomes visible. */
	mutex_lock(&ddev->mem_lock);
	ret = dmirror_chunk_add(ddev);
	mutex_unlock(&ddev->mem_lock);
	if (ret)
		goto put_dev;

	cdev_init(&ddev->cdev, &dmirror_fops);
	ddev->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&ddev->cdev, &ddev->dev);
	if (ret)
		goto free_chunks;

	dmirror_devs[id] = ddev;
	return 0;

free_chunks:
	dmirror_device_free_chunks(ddev);
put_dev:
	put_device(&ddev->dev);
	return ret;
}

static void dmirror_device_destroy(unsigned int id)
{
	struct dmirror_device *ddev = dmirror_devs[id];

	dmirror_devs[id] = NULL;
	cdev_device_del(&ddev->cdev, &ddev->dev);
	dmirror_device_free_chunks(ddev);
	put_device(&ddev->dev);
}

static int __init dmirror_init(void)
{
	unsigned int id, ndevs = DMIRROR_PRIVATE_DEVICES;
	int ret;

	if (spm_addr_dev0 && spm_addr_dev1)
		ndevs = DMIRROR_MAX_DEVICES;
	else if (spm_addr_dev0 || spm_addr_dev1)
		pr_warn("coherent devices need both spm_addr_dev0 and spm_addr_dev1\n");

	ret = alloc_chrdev_region(&dmirror_devt, 0, DMIRROR_MAX_DEVICES,
				  "HMM_DMIRROR");
	if (ret)
		return ret;

	for (id = 0; id < ndevs; id++) {
		unsigned int type = HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
		unsigned long spm = 0;

		if (id >= DMIRROR_PRIVATE_DEVICES) {
			type = HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
			spm = id == DMIRROR_PRIVATE_DEVICES ? spm_addr_dev0 :
							      spm_addr_dev1;
		}
		ret = dmirror_device_create(id, type, spm);
		if (ret)
			goto destroy_devices;
	}

	pr_info("%u dummy HMM devices ready; for testing only\n", ndevs);
	return 0;

destroy_devices:
	while (id--)
		dmirror_device_destroy(id);
	unregister_chrdev_region(dmirror_devt, DMIRROR_MAX_DEVICES);
	return ret;
}

static void __exit dmirror_exit(void)
{
	unsigned int id;

	for (id = DMIRROR_MAX_DEVICES; id--; )
		if (dmirror_devs[id])
			dmirror_device_destroy(id);
	unregister_chrdev_region(dmirror_devt, DMIRROR_MAX_DEVICES);
	/*
	 * A non-blockable update that failed put its fences without waiting;
	 * their timers may still be due.  The timer callback runs with
	 * interrupts off, so once the count is zero a grace period ends it.
	 */
	wait_var_event(&dmirror_fences_live,
		       !atomic_read(&dmirror_fences_live));
	synchronize_rcu();
}

module_init(dmirror_init);
module_exit(dmirror_exit);
MODULE_DESCRIPTION("Dummy HMM device for the HMM selftests");
MODULE_LICENSE("GPL");
