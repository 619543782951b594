// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Heterogeneous Memory Management: snapshot or fault the CPU page table of
 * a range on behalf of a device, reporting pages in the driver's own page
 * table encoding (hmm_vma_get_pfns(), hmm_vma_fault()) or in the fixed
 * format of hmm_range_fault().  Mirrors, the validity of ranges and the
 * invalidations are in mm/hmm_mirror.c.
 *
 * The public API is described in include/linux/hmm.h.
 */

#define pr_fmt(fmt) "hmm: " fmt

#include <linux/hmm.h>
#include <linux/hugetlb.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/sched/signal.h>
#include <linux/swap.h>
#include <linux/swapops.h>

#include "internal.h"
#include "hmm_internal.h"

#define CREATE_TRACE_POINTS
#include <trace/events/hmm.h>

/*
 * Walk protocol
 * =============
 *
 * The page table walk never faults.  When an entry needs a fault the walk
 * records a run of entries and returns HMM_WALK_FAULT; the run is faulted
 * with handle_mm_fault() outside the page table walk, with the VMA looked
 * up again, and the walk resumes from the first entry it has not written.
 * Entries before that point hold output, entries at or after it still hold
 * the caller's input.
 *
 * A run is as long as the page table allows: from the entry that needs a
 * fault, every following entry of the same PMD (or of the same hole, huge
 * mapping or hugetlb page) that needs the same fault joins it, whatever it
 * is now: none, present (zero page, copy on write, read-only), swapped out
 * or in another owner's device memory.  The walk therefore leaves the page
 * table once per run, not once per page.
 *
 * Ranges of a mirror (hmm_vma_get_pfns(), hmm_vma_fault()) are tracked by
 * mm/hmm_mirror.c while they are walked: before a run is faulted and once
 * every entry is written, hmm_track_check() publishes how far the walk
 * got.  The faults of a run invalidate only entries not written yet, so
 * they cost the driver no retry; an invalidation that reached written
 * entries sends the walk back to them when their input is not needed, and
 * fails it with -EBUSY otherwise.
 *
 * hmm_range_fault() is validated by its caller's notifier.  Its faults move
 * that notifier's sequence; it faults every run of the range anyway, and
 * only then reports -EBUSY if the sequence moved, so a caller that retries
 * finds everything faulted: one retry for the whole range, not one per run.
 *
 * With block == true the mmap_lock is never dropped; with block == false a
 * fault may drop it, which is reported as -EAGAIN.  -EBUSY always means
 * "invalidated, retry with fresh input".
 */

/* Private walk results; they never leave this file. */
enum {
	HMM_WALK_FAULT = 1,		/* fault hw->fault_start..fault_end */
	HMM_WALK_RESTART,		/* waited for migration, walk again */
	HMM_WALK_PTE_MIGRATION,		/* pte level only: wait, then restart */
};

/*
 * What an entry needs before it can be reported as requested.
 * HMM_NEED_WAIT: a migration entry, wait for it and walk again.
 */
enum {
	HMM_NEED_FAULT = BIT(0),
	HMM_NEED_WRITE = BIT(1),
	HMM_NEED_WAIT = BIT(2),
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
 * @reached: farthest @last of the walk
 * @fault_start: first address of the run to fault (HMM_WALK_FAULT)
 * @fault_end: end of the run to fault (exclusive)
 * @f_valid: encoding of HMM_PFN_VALID
 * @f_write: encoding of HMM_PFN_WRITE
 * @f_devpriv: encoding of HMM_PFN_DEVICE_PRIVATE
 * @v_error: encoding of HMM_PFN_ERROR
 * @v_none: encoding of HMM_PFN_NONE
 * @v_special: encoding of HMM_PFN_SPECIAL
 * @req_mask: &hmm_range.pfn_flags_mask
 * @req_default: &hmm_range.default_flags
 * @fault_need: HMM_NEED_* bits of the run
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
	unsigned long		reached;
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

/* First address of [addr, end) whose entry requests a fault, or @end. */
static unsigned long hmm_first_request(const struct hmm_vma_walk *hw,
				       unsigned long addr, unsigned long end)
{
	unsigned long i = hmm_index(hw->range, addr);

	if (!hw->may_fault)
		return end;
	for (; addr < end; addr += PAGE_SIZE, i++)
		if (hmm_entry_request(hw, i) & hw->f_valid)
			return addr;
	return end;
}

static bool hmm_wants_fault(const struct hmm_vma_walk *hw, unsigned long addr,
			    unsigned long end)
{
	return hmm_first_request(hw, addr, end) < end;
}

/*
 * The entry at @addr cannot be made what it requests.  In the driver's
 * encoding the entry says so (values[HMM_PFN_ERROR]), so that the caller
 * knows which page failed; hmm_range_fault() leaves its entries alone, as
 * it always did.
 */
static int hmm_fail(struct hmm_vma_walk *hw, unsigned long addr, int err)
{
	if (!hw->fixed)
		hmm_entry_set(hw, hmm_index(hw->range, addr), hw->v_error);
	return err;
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
		return hmm_fail(hw, addr, -EFAULT);
	if ((need & HMM_NEED_WRITE) && !(vma->vm_flags & VM_WRITE))
		return hmm_fail(hw, addr, -EPERM);

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

	/* The same request for every entry: the whole chunk or nothing. */
	if (!hw->per_entry && !hw->req_mask) {
		need = hmm_need(hw, hw->req_default, cpu);
		if (!need)
			return 0;
		ret = hmm_record_fault(walk, addr, need);
		if (ret == HMM_WALK_FAULT) {
			hw->last = addr;
			hw->fault_end = end;
		}
		return ret;
	}

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
	unsigned long first = hmm_first_request(hw, addr, end);

	if (first < end)
		return hmm_fail(hw, first, -EFAULT);
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
 * What the CPU offers at a device private entry of the range's owner:
 * valid, device private, writable or not.  0 for any other swap entry.
 */
static u64 hmm_own_device_private(const struct hmm_vma_walk *hw,
				  swp_entry_t entry)
{
	u64 cpu;

	if (!is_device_private_entry(entry) ||
	    pfn_swap_entry_to_page(entry)->pgmap->owner !=
	    hw->range->dev_private_owner)
		return 0;
	cpu = hw->f_valid | hw->f_devpriv;
	if (is_writable_device_private_entry(entry))
		cpu |= hw->f_write;
	return cpu;
}

/*
 * What @pte needs to satisfy request @req: HMM_NEED_* bits, 0 if it can be
 * reported as it is, -EFAULT if it cannot be made valid.  *@cpu is set to
 * what the pte offers in the range's encoding (0: nothing to report).  It
 * does not look at whether a present page has a struct page;
 * hmm_vma_handle_pte() does, for entries that need nothing.
 */
static int hmm_pte_need(const struct hmm_vma_walk *hw, pte_t pte, u64 req,
			u64 *cpu)
{
	swp_entry_t entry;
	unsigned int need;

	*cpu = 0;
	if (pte_none_mostly(pte))
		return hmm_need(hw, req, 0);

	if (pte_present(pte)) {
		/* NUMA hinting ptes are not accessible until faulted. */
		if (!pte_protnone(pte))
			*cpu = hw->f_valid | (pte_write(pte) ? hw->f_write : 0);
		return hmm_need(hw, req, *cpu);
	}

	entry = pte_to_swp_entry(pte);
	*cpu = hmm_own_device_private(hw, entry);
	if (*cpu) {
		/*
		 * Device private memory of the caller is reported, never
		 * faulted, by hmm_range_fault(); other users get what they
		 * requested (write access, migration back).
		 */
		return hw->fixed ? 0 : hmm_need(hw, req, *cpu);
	}

	need = hmm_need(hw, req, 0);
	if (!need)
		return 0;
	if (is_migration_entry(entry))
		return HMM_NEED_WAIT;
	/*
	 * Swapped out pages, device private pages of another owner and
	 * device exclusive entries all come back with a CPU fault.
	 */
	if (!non_swap_entry(entry) || is_device_private_entry(entry) ||
	    is_device_exclusive_entry(entry))
		return need;
	/* Poisoned pages and other entries cannot be made valid. */
	return -EFAULT;
}

/*
 * The pte at @addr needs @need: record it, and every following pte of this
 * page table up to @end that needs the same, as one run to fault.  Entries
 * before @addr are written.
 */
static int hmm_fault_ptes(struct mm_walk *walk, unsigned long addr,
			  unsigned long end, pte_t *ptep, unsigned int need)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long i = hmm_index(hw->range, addr);
	u64 cpu;	/* what the pte offers: unused, the run is only faulted */
	int ret;

	hw->last = addr;
	ret = hmm_record_fault(walk, addr, need);
	if (ret != HMM_WALK_FAULT)
		return ret;

	for (addr += PAGE_SIZE, i++, ptep++; addr < end;
	     addr += PAGE_SIZE, i++, ptep++) {
		if (hmm_pte_need(hw, ptep_get(ptep),
				 hmm_entry_request(hw, i), &cpu) != need)
			break;
		hw->fault_end = addr + PAGE_SIZE;
	}
	return HMM_WALK_FAULT;
}

static int hmm_vma_handle_pte(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, pte_t *ptep)
{
	struct hmm_vma_walk *hw = walk->private;
	unsigned long i = hmm_index(hw->range, addr);
	pte_t pte = ptep_get(ptep);
	u64 req = hmm_entry_request(hw, i);
	int need;
	u64 cpu;

	need = hmm_pte_need(hw, pte, req, &cpu);
	if (need < 0)
		return hmm_fail(hw, addr, need);
	if (need & HMM_NEED_WAIT) {
		hw->last = addr;
		return HMM_WALK_PTE_MIGRATION;
	}
	if (need)
		return hmm_fault_ptes(walk, addr, end, ptep, need);

	/* Nothing to report: none, an inaccessible pte, another swap entry. */
	if (!cpu) {
		hmm_entry_set(hw, i, hw->v_none);
		return 0;
	}
	if (!pte_present(pte)) {
		hmm_entry_set(hw, i, ((u64)swp_offset_pfn(pte_to_swp_entry(pte))
				      << hw->pfn_shift) | cpu);
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
			return hmm_fail(hw, addr, -EFAULT);
		hmm_entry_set(hw, i, hw->v_special);
		return 0;
	}

	hmm_entry_set(hw, i, ((u64)pte_pfn(pte) << hw->pfn_shift) | cpu);
	return 0;
}

/*
 * Fast path over the ptes whose entry needs no fault and no look at a
 * struct page: none ptes not requested valid, and present, accessible ptes
 * that are not special (vm_normal_page() would return their page) and are
 * writable if write access is requested.  It writes them in one tight
 * loop, with the encoding and the request rule held in registers, and
 * returns the address of the first pte it left to hmm_vma_handle_pte(), or
 * @end.  That is every pte of a snapshot of ordinary memory, and of a
 * fault request once the fault is done.  @fixed and @fault are constants
 * at each call site, so each entry format, with and without requests, gets
 * its own loop.
 */
static __always_inline unsigned long
hmm_fast_ptes(struct hmm_vma_walk *hw, unsigned long addr, unsigned long end,
	      pte_t *ptep, bool fixed, bool fault)
{
	unsigned long i = hmm_index(hw->range, addr);
	unsigned long *fixed_out = NULL;
	u64 *out = NULL;
	const unsigned int shift = hw->pfn_shift;
	const u64 valid = hw->f_valid;
	const u64 write = hw->f_write;
	const u64 none = hw->v_none;
	/* The request rule of hmm_entry_request(), hoisted. */
	const u64 req_default = fault ? hw->req_default : 0;
	const u64 req_mask = !fault ? 0 : hw->per_entry ? ~0ULL : hw->req_mask;
	u64 entry, req = 0;
	pte_t pte;

	/* Only the array of the format in use exists. */
	if (fixed)
		fixed_out = hw->range->hmm_pfns + i;
	else
		out = hw->range->pfns + i;
	for (; addr < end; addr += PAGE_SIZE, ptep++) {
		if (fault) {
			req = req_default;
			if (req_mask)
				req |= (fixed ? *fixed_out : *out) & req_mask;
			/* A request without the valid flag asks for nothing. */
			if (!(req & valid))
				req = 0;
		}
		pte = ptep_get(ptep);
		if (pte_none(pte) && !req)
			entry = none;
		else if (pte_present(pte) && !pte_protnone(pte) &&
			 !pte_special(pte) &&
			 (pte_write(pte) || !(req & write)))
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

/* The loops themselves, one per entry format and kind of walk. */
static unsigned long hmm_fast_ptes_fixed(struct hmm_vma_walk *hw,
					 unsigned long addr, unsigned long end,
					 pte_t *ptep)
{
	if (hw->may_fault)
		return hmm_fast_ptes(hw, addr, end, ptep, true, true);
	return hmm_fast_ptes(hw, addr, end, ptep, true, false);
}

static unsigned long hmm_fast_ptes_enc(struct hmm_vma_walk *hw,
				       unsigned long addr, unsigned long end,
				       pte_t *ptep)
{
	if (hw->may_fault)
		return hmm_fast_ptes(hw, addr, end, ptep, false, true);
	return hmm_fast_ptes(hw, addr, end, ptep, false, false);
}

static int hmm_vma_walk_ptes(struct mm_walk *walk, pmd_t *pmdp,
			     unsigned long start, unsigned long end)
{
	struct hmm_vma_walk *hw = walk->private;
	/* Without special ptes any pte may hide a pfn map: no fast path. */
	bool fast = IS_ENABLED(CONFIG_ARCH_HAS_PTE_SPECIAL);
	unsigned long addr, next;
	pte_t *ptep, *first;
	int ret = 0;

	first = pte_offset_map(pmdp, start);
	for (addr = start, ptep = first; addr < end;
	     addr += PAGE_SIZE, ptep++) {
		if (fast) {
			if (hw->fixed)
				next = hmm_fast_ptes_fixed(hw, addr, end, ptep);
			else
				next = hmm_fast_ptes_enc(hw, addr, end, ptep);
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

/* [start, end) within the PMD at @pmdp, whatever that PMD holds. */
static int hmm_walk_pmd(pmd_t *pmdp, unsigned long start, unsigned long end,
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
 * level that is none, huge or bad), for the generic walk to handle.  The
 * caller holds the mmap_lock and walks inside a VMA, whose upper page
 * tables free_pgtables() never frees while the VMA exists.
 *
 * One PUD is tested with PUD_MASK, not pud_addr_end(): where the PUD level
 * is folded (arm64 with 64 KiB pages and 48-bit addresses, three levels)
 * pud_addr_end() is @end whatever the range, and a range over a PGD
 * boundary would walk off the end of its PMD table.  Where the PMD level
 * is folded too, one PUD is one PMD, and hmm_walk_pmds() walks one entry.
 */
static pmd_t *hmm_pmd_table(struct vm_area_struct *vma, unsigned long start,
			    unsigned long end)
{
	pgd_t *pgdp, pgd;
	p4d_t *p4dp, p4d;
	pud_t *pudp, pud;

	if (is_vm_hugetlb_page(vma) || ((start ^ (end - 1)) & PUD_MASK))
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
 * Walk [start, end) one VMA at a time, and inside a VMA one PMD table at a
 * time (hmm_walk_vma()).  This is walk_page_range() made cheap for the
 * walks drivers make most, a few pages around a device fault, where its
 * fixed cost dominates: it looks up the VMA following each one it walks,
 * even when the range ends inside it, and descends four levels of loops
 * and indirect calls.  At -O2 a one-page walk costs about 1,050 guest
 * instructions this way and 1,600 through walk_page_range() (make bench).
 * Anything else (a range crossing a PUD, hugetlb VMAs, upper levels that
 * are not page tables) goes through walk_page_range_vma() with the same
 * callbacks (hmm_walk_ops).
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
		return hmm_fail(hw, hw->fault_start, -EFAULT);

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
			return hmm_fail(hw, addr, -EFAULT);
		ret = hmm_check_signal(hw);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Walk the range until every entry is written; see the walk protocol.  A
 * range of a mirror goes through hmm_track_check() before each fault run
 * and once it is complete, and may be sent back to entries it wrote.
 */
static int hmm_walk_range(struct hmm_vma_walk *hw, struct mm_struct *mm,
			  bool block)
{
	struct hmm_range *range = hw->range;
	unsigned long prev = range->start;
	unsigned long rewound = 0;
	unsigned int stalls = 0;
	unsigned long pos;
	int ret;

	hw->last = range->start;
	for (;;) {
		if (!hw->fixed) {
			pos = hw->last;
			ret = hmm_track_check(range, &pos);
			if (ret)
				return ret == -EAGAIN ? -EBUSY : ret;
			if (pos < hw->last) {
				/*
				 * Sent back.  Invalidations moving on through
				 * the range, each further than any before, are
				 * progress; being sent back to where the walk
				 * already was, again and again, is not.
				 */
				hw->last = pos;
				hw->retries++;
				hmm_stat_inc(HMM_STAT_REWINDS);
				if (pos > rewound) {
					rewound = pos;
					stalls = 0;
				} else if (++stalls > HMM_WALK_MAX_STALLS) {
					return -EBUSY;
				}
			}
		}
		if (hw->last >= range->end)
			break;

		ret = hmm_walk_vmas(hw, mm, hw->last, range->end);
		if (ret < 0)
			return ret;
		if (!ret) {
			hw->last = range->end;
			hw->reached = range->end;
			continue;
		}
		hw->reached = max(hw->reached, hw->last);

		/* Give up on a position that keeps needing a restart. */
		pos = ret == HMM_WALK_FAULT ? hw->fault_start : hw->last;
		if (pos > prev) {
			prev = pos;
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

		if (!hw->fixed) {
			/*
			 * Publish what is written before faulting, so that the
			 * run's own invalidations only concern entries ahead.
			 */
			pos = hw->last;
			ret = hmm_track_check(range, &pos);
			if (ret)
				return ret == -EAGAIN ? -EBUSY : ret;
			if (pos < hw->last) {
				hw->last = pos;
				hw->retries++;
				hmm_stat_inc(HMM_STAT_REWINDS);
				continue;
			}
		}
		hw->faults++;
		ret = hmm_fault_run(hw, mm, block);
		if (ret)
			return ret;
	}

	/*
	 * hmm_range_fault(): once everything is faulted, tell the caller if
	 * its sequence moved meanwhile (a copy on write fault moves it).  A
	 * walk that faulted nothing leaves that check to the caller, as the
	 * walk always did.
	 */
	if (hw->fixed && hw->faults &&
	    mmu_interval_check_retry(range->notifier, range->notifier_seq))
		return -EBUSY;
	return 0;
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
 * its caller; the others are tracked from start to end, and stay listed
 * on success until hmm_vma_range_done().  @info, if not NULL, gets what the
 * walk did.
 */
static int hmm_walk_counted(struct hmm_range *range, struct mm_struct *mm,
			    bool may_fault, bool fixed, bool block,
			    unsigned int kind, struct hmm_walk_info *info)
{
	struct hmm_vma_walk hw = {
		.range		= range,
		.last		= range->start,
		.reached	= range->start,
		.f_valid	= range->flags[HMM_PFN_VALID],
		.f_write	= range->flags[HMM_PFN_WRITE],
		.f_devpriv	= range->flags[HMM_PFN_DEVICE_PRIVATE],
		.v_error	= range->values[HMM_PFN_ERROR],
		.v_none		= range->values[HMM_PFN_NONE],
		.v_special	= range->values[HMM_PFN_SPECIAL],
		.req_mask	= range->pfn_flags_mask,
		.req_default	= range->default_flags,
		.pfn_shift	= range->pfn_shift,
		.sparse		= range->mode & HMM_RANGE_SPARSE_HUGE,
		.fixed		= fixed,
	};
	int ret;

	hmm_walk_requests(&hw, may_fault);
	trace_hmm_walk_start(mm, range->start, range->end, kind);
	if (!fixed) {
		/* Entries may be written again if their input is not needed. */
		ret = hmm_track_begin(range, true, !hw.may_fault ||
				      (!hw.per_entry && !hw.req_mask));
		if (ret)
			goto out;
	}
	ret = hmm_walk_range(&hw, mm, block);
	if (ret && !fixed)
		hmm_track_abort(range);
	if (info) {
		info->faults = hw.faults;
		info->reached = hw.reached;
	}
out:
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

/* hmm_vma_get_pfns() and hmm_vma_fault(); see hmm_internal.h. */
int hmm_mirror_walk(struct hmm_range *range, bool fault, bool block,
		    struct hmm_walk_info *info)
{
	struct mm_struct *mm;
	int ret;

	ret = hmm_range_check(range);
	if (ret)
		return ret;

	mm = range->mirror->mm;
	mmap_assert_locked(mm);

	return hmm_walk_counted(range, mm, fault, false, block,
				!fault ? HMM_TRACE_SNAPSHOT :
				block ? HMM_TRACE_FAULT :
				HMM_TRACE_FAULT_UNLOCKABLE, info);
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
 * Invalidations of the range while it is walked send the walk back to the
 * entries they touched; invalidations of other addresses do not concern
 * it, and the walk never waits for them.
 *
 * On success the caller must end the snapshot with hmm_vma_range_done(),
 * under the lock its sync_cpu_device_pagetables() takes, before using it.
 * On error the range is already finished (hmm_vma_range_done() returns
 * false for it).
 *
 * Context: mmap_lock of the mirrored mm held for read; may sleep (never
 * for an invalidation); must not hold a lock that a mirror callback takes.
 *
 * Return:
 * * 0 - the snapshot is written.
 * * -EINVAL - invalid range, encoding or mode, unregistered mirror, or a
 *   range still in flight.
 * * -EBUSY - an invalidation of the range is under way, or it was
 *   invalidated again and again while walking: drop the mmap_lock, let
 *   the invalidation finish (hmm_vma_range_wait()) and retry.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_get_pfns(struct hmm_range *range)
{
	return hmm_mirror_walk(range, false, true, NULL);
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
 * as hmm_vma_get_pfns() would.  Faults are taken one run at a time (a run
 * covers every following entry of the page table that needs the same
 * fault) and the walk resumes where it stopped; entries not yet written
 * keep their input.  The invalidations the walk's own faults cause (copy on
 * write, the zero page) do not fail it.
 *
 * On success the caller must end the snapshot with hmm_vma_range_done().
 * On error the range is already finished (hmm_vma_range_done() returns
 * false for it); on -EFAULT and -EPERM the entry of the page that failed
 * holds values[HMM_PFN_ERROR].  After -EBUSY the input entries may have
 * been overwritten: set them again before retrying.
 *
 * Context: mmap_lock of the mirrored mm held for read; may sleep; must not
 * hold a lock that a mirror callback takes.
 *
 * Return:
 * * 0 - every request is satisfied and the snapshot is written.
 * * -EINVAL - invalid range, encoding or mode, unregistered mirror, or a
 *   range still in flight.
 * * -EFAULT - a requested page has no VMA, is in an unreadable, VM_IO or
 *   VM_PFNMAP VMA, has no struct page, or the fault failed.
 * * -EPERM - write access requested in a VMA without VM_WRITE.
 * * -EBUSY - an invalidation of the range is under way, or it invalidated
 *   entries with per-entry requests already written, or the range was
 *   invalidated again and again: set the input again, drop the mmap_lock,
 *   let the invalidation finish (hmm_vma_range_wait()) and retry.
 * * -EAGAIN - only with !@block: a fault dropped the mmap_lock; the caller
 *   must not unlock it, and retries after taking it again.
 * * -EINTR - a fatal signal is pending.
 */
int hmm_vma_fault(struct hmm_range *range, bool block)
{
	return hmm_mirror_walk(range, true, block, NULL);
}
EXPORT_SYMBOL_GPL(hmm_vma_fault);

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
 * notifier lock after.  The faults the walk takes move the caller's
 * notifier sequence when they invalidate (copy on write, the zero page):
 * every run of the range is faulted first, then -EBUSY is returned once,
 * so that the caller's next call finds nothing left to fault.
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
				HMM_TRACE_RANGE_FAULT, NULL);
}
EXPORT_SYMBOL(hmm_range_fault);
