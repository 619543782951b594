// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit suite "hmm": the driver encoded pfn helpers of include/linux/hmm.h
 * and the fixed format of hmm_range_fault(); those cases need no mm.  The
 * end-to-end cases ("e2e") build an mm of their own, register a fake
 * mirror on it and run hmm_vma_get_pfns(), hmm_vma_fault(),
 * hmm_vma_range_begin(), hmm_vma_range_done(), hmm_vma_fault_lock() and
 * hmm_range_fault() on its real page tables, with real invalidations
 * (madvise, munmap, non-blockable and lock-free starts, exit_mmap()), other
 * threads and other mms.  They use mm_alloc(), arch_pick_mmap_layout(),
 * do_madvise() and the core's counters, which are not exported: the suite
 * is built in (CONFIG_HMM_KUNIT_TEST depends on KUNIT=y).
 */

#define pr_fmt(fmt) "hmm_kunit: " fmt

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hmm_internal.h"

/**
 * struct hmm_test_enc - one driver encoding to exercise
 * @name: case name shown by KUnit
 * @flags: &hmm_range.flags
 * @values: &hmm_range.values
 * @pfn_shift: &hmm_range.pfn_shift
 * @order_mask: &hmm_range.order_mask
 * @max_order: largest order the order field can hold (0 without a field)
 */
struct hmm_test_enc {
	const char	*name;
	u64		flags[HMM_PFN_FLAG_MAX];
	u64		values[HMM_PFN_VALUE_MAX];
	u8		pfn_shift;
	u64		order_mask;
	unsigned int	max_order;
};

static const struct hmm_test_enc hmm_test_encs[] = {
	{
		/* The layout hmm_range_fault() uses: flags at the top. */
		.name = "fixed_shift0",
		.flags = {
			[HMM_PFN_VALID] = HMM_PFN_FIXED_VALID,
			[HMM_PFN_WRITE] = HMM_PFN_FIXED_WRITE,
			[HMM_PFN_DEVICE_PRIVATE] = 0,
		},
		.values = {
			[HMM_PFN_ERROR] = HMM_PFN_FIXED_ERROR,
			[HMM_PFN_NONE] = 0,
			[HMM_PFN_SPECIAL] = HMM_PFN_FIXED_ERROR,
		},
		.pfn_shift = 0,
		.order_mask = (u64)HMM_PFN_FIXED_ORDER_MASK <<
			      HMM_PFN_FIXED_ORDER_SHIFT,
		.max_order = HMM_PFN_FIXED_ORDER_MASK,
	},
	{
		/* Flags in the low byte, order right above them. */
		.name = "low_flags_shift8",
		.flags = {
			[HMM_PFN_VALID] = BIT_ULL(0),
			[HMM_PFN_WRITE] = BIT_ULL(1),
			[HMM_PFN_DEVICE_PRIVATE] = BIT_ULL(2),
		},
		.values = {
			[HMM_PFN_ERROR] = BIT_ULL(7),
			[HMM_PFN_NONE] = 0,
			[HMM_PFN_SPECIAL] = BIT_ULL(6),
		},
		.pfn_shift = 8,
		.order_mask = GENMASK_ULL(7, 3),
		.max_order = 31,
	},
	{
		/* A page table entry like layout: pfn at bit 12. */
		.name = "pte_like_shift12",
		.flags = {
			[HMM_PFN_VALID] = BIT_ULL(0),
			[HMM_PFN_WRITE] = BIT_ULL(1),
			[HMM_PFN_DEVICE_PRIVATE] = BIT_ULL(11),
		},
		.values = {
			[HMM_PFN_ERROR] = BIT_ULL(2),
			[HMM_PFN_NONE] = BIT_ULL(3),
			[HMM_PFN_SPECIAL] = BIT_ULL(4),
		},
		.pfn_shift = 12,
		.order_mask = GENMASK_ULL(9, 5),
		.max_order = 31,
	},
	{
		/* No order field, narrow order field elsewhere not reported. */
		.name = "no_order_shift12",
		.flags = {
			[HMM_PFN_VALID] = BIT_ULL(1),
			[HMM_PFN_WRITE] = BIT_ULL(2),
			[HMM_PFN_DEVICE_PRIVATE] = 0,
		},
		.values = {
			[HMM_PFN_ERROR] = BIT_ULL(3),
			[HMM_PFN_NONE] = 0,
			[HMM_PFN_SPECIAL] = BIT_ULL(3),
		},
		.pfn_shift = 12,
		.order_mask = 0,
		.max_order = 0,
	},
	{
		/* Flags at the top, 3-bit order field: orders above 7 drop. */
		.name = "high_flags_shift4_order3",
		.flags = {
			[HMM_PFN_VALID] = BIT_ULL(63),
			[HMM_PFN_WRITE] = BIT_ULL(62),
			[HMM_PFN_DEVICE_PRIVATE] = BIT_ULL(61),
		},
		.values = {
			[HMM_PFN_ERROR] = BIT_ULL(60),
			[HMM_PFN_NONE] = BIT_ULL(59),
			[HMM_PFN_SPECIAL] = BIT_ULL(58),
		},
		.pfn_shift = 4,
		.order_mask = GENMASK_ULL(3, 1),
		.max_order = 7,
	},
};

static void hmm_test_enc_desc(const struct hmm_test_enc *enc, char *desc)
{
	strscpy(desc, enc->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(hmm_enc, hmm_test_encs, hmm_test_enc_desc);

/* pfns that fit every encoding above, on 32 and 64-bit. */
static const unsigned long hmm_test_pfns[] = {
	0, 1, 0x1ff, 0x200, 0xabcde, 0x7ffff, 0xfffff,
};

static void hmm_test_range_init(struct hmm_range *range,
				const struct hmm_test_enc *enc)
{
	memset(range, 0, sizeof(*range));
	range->flags = enc->flags;
	range->values = enc->values;
	range->pfn_shift = enc->pfn_shift;
	range->order_mask = enc->order_mask;
}

static void hmm_test_pfn_roundtrip(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	unsigned int i;
	u64 entry;

	hmm_test_range_init(&range, enc);
	for (i = 0; i < ARRAY_SIZE(hmm_test_pfns); i++) {
		entry = hmm_pfn_from_pfn(&range, hmm_test_pfns[i]);
		KUNIT_EXPECT_TRUE(test, entry & enc->flags[HMM_PFN_VALID]);
		KUNIT_EXPECT_FALSE(test, hmm_pfn_is_value(&range, entry));
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry),
				hmm_test_pfns[i]);
	}
}

static void hmm_test_pfn_roundtrip_all_flags(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	u64 flags = enc->flags[HMM_PFN_WRITE] |
		    enc->flags[HMM_PFN_DEVICE_PRIVATE];
	struct hmm_range range;
	unsigned int i;
	u64 entry;

	hmm_test_range_init(&range, enc);
	for (i = 0; i < ARRAY_SIZE(hmm_test_pfns); i++) {
		entry = hmm_pfn_from_pfn(&range, hmm_test_pfns[i]) | flags;
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry),
				hmm_test_pfns[i]);
		KUNIT_EXPECT_EQ(test, entry & flags, flags);
	}
}

static void hmm_test_values_never_decode(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	unsigned int i;

	hmm_test_range_init(&range, enc);
	for (i = 0; i < HMM_PFN_VALUE_MAX; i++) {
		KUNIT_EXPECT_TRUE(test, hmm_pfn_is_value(&range,
							 enc->values[i]));
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, enc->values[i]),
				-1UL);
		KUNIT_EXPECT_NULL(test, hmm_pfn_to_page(&range,
							enc->values[i]));
	}
}

static void hmm_test_values_lack_valid(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	unsigned int i;

	/* A table breaking this rule would make values look like pages. */
	for (i = 0; i < HMM_PFN_VALUE_MAX; i++)
		KUNIT_EXPECT_FALSE(test,
				   enc->values[i] & enc->flags[HMM_PFN_VALID]);
	KUNIT_EXPECT_NE(test, enc->values[HMM_PFN_NONE],
			enc->values[HMM_PFN_ERROR]);
	KUNIT_EXPECT_NE(test, enc->values[HMM_PFN_NONE],
			enc->values[HMM_PFN_SPECIAL]);
}

static void hmm_test_invalid_not_decoded(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	u64 entry;

	hmm_test_range_init(&range, enc);
	/* A pfn with write permission but no valid flag is not a page. */
	entry = ((u64)0x1234 << enc->pfn_shift) | enc->flags[HMM_PFN_WRITE];
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry), -1UL);
	KUNIT_EXPECT_NULL(test, hmm_pfn_to_page(&range, entry));
}

static void hmm_test_order_roundtrip(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	static const unsigned int orders[] = { 0, 1, 7, 9, 18, 31 };
	struct hmm_range range;
	unsigned int i, want;
	u64 entry;

	hmm_test_range_init(&range, enc);
	for (i = 0; i < ARRAY_SIZE(orders); i++) {
		entry = hmm_pfn_from_pfn(&range, 0xabcde) |
			enc->flags[HMM_PFN_WRITE];
		entry = hmm_pfn_set_map_order(&range, entry, orders[i]);
		/* An order the field cannot hold is reported as 0. */
		want = orders[i] <= enc->max_order ? orders[i] : 0;
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(&range, entry),
				want);
		/* The order field never leaks into the pfn or the flags. */
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry),
				0xabcdeUL);
		KUNIT_EXPECT_TRUE(test, entry & enc->flags[HMM_PFN_WRITE]);
	}
}

static void hmm_test_order_replace(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	u64 entry;

	hmm_test_range_init(&range, enc);
	entry = hmm_pfn_from_pfn(&range, 0x200);
	entry = hmm_pfn_set_map_order(&range, entry, enc->max_order);
	entry = hmm_pfn_set_map_order(&range, entry, 1);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(&range, entry),
			enc->max_order ? 1U : 0U);
	entry = hmm_pfn_set_map_order(&range, entry, 0);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(&range, entry), 0U);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry), 0x200UL);
}

static void hmm_test_flag_bits(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	u64 bits;
	int i;

	hmm_test_range_init(&range, enc);
	bits = hmm_pfn_flag_bits(&range);
	for (i = 0; i < HMM_PFN_FLAG_MAX; i++)
		KUNIT_EXPECT_EQ(test, bits & enc->flags[i], enc->flags[i]);
	KUNIT_EXPECT_EQ(test, bits & enc->order_mask, enc->order_mask);
	/* No pfn bit is mistaken for a flag. */
	KUNIT_EXPECT_EQ(test, bits & ((u64)0xfffff << enc->pfn_shift), 0ULL);
}

static void hmm_test_page_roundtrip(struct kunit *test)
{
	const struct hmm_test_enc *enc = test->param_value;
	struct hmm_range range;
	struct page *page;
	u64 entry;

	page = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);

	hmm_test_range_init(&range, enc);
	entry = hmm_pfn_from_page(&range, page) | enc->flags[HMM_PFN_WRITE];
	entry = hmm_pfn_set_map_order(&range, entry, 9);
	KUNIT_EXPECT_PTR_EQ(test, hmm_pfn_to_page(&range, entry), page);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(&range, entry),
			page_to_pfn(page));
	__free_page(page);
}

static void hmm_test_fixed_abi(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_VALID,
			1UL << (BITS_PER_LONG - 1));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_WRITE,
			1UL << (BITS_PER_LONG - 2));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_ERROR,
			1UL << (BITS_PER_LONG - 3));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_ORDER_SHIFT,
			(unsigned long)(BITS_PER_LONG - 8));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_REQ_FAULT,
			(unsigned long)HMM_PFN_FIXED_VALID);
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_REQ_WRITE,
			(unsigned long)HMM_PFN_FIXED_WRITE);
	/* Every flag and the order field are inside HMM_PFN_FIXED_FLAGS. */
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FIXED_FLAGS &
			(HMM_PFN_FIXED_VALID | HMM_PFN_FIXED_WRITE |
			 HMM_PFN_FIXED_ERROR |
			 (HMM_PFN_FIXED_ORDER_MASK << HMM_PFN_FIXED_ORDER_SHIFT)),
			(unsigned long)(HMM_PFN_FIXED_VALID |
			HMM_PFN_FIXED_WRITE | HMM_PFN_FIXED_ERROR |
			(HMM_PFN_FIXED_ORDER_MASK << HMM_PFN_FIXED_ORDER_SHIFT)));
	/* The seed indexes are small integers, not masks. */
	KUNIT_EXPECT_EQ(test, (int)HMM_PFN_VALID, 0);
	KUNIT_EXPECT_EQ(test, (int)HMM_PFN_FLAG_MAX, 3);
	KUNIT_EXPECT_EQ(test, (int)HMM_PFN_VALUE_MAX, 3);
}

static void hmm_test_fixed_helpers(struct kunit *test)
{
	const struct hmm_test_enc *enc = &hmm_test_encs[0];
	struct hmm_range range;
	unsigned long entry;
	struct page *page;

	page = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);

	entry = page_to_pfn(page) | HMM_PFN_FIXED_VALID | HMM_PFN_FIXED_WRITE |
		(9UL << HMM_PFN_FIXED_ORDER_SHIFT);
	KUNIT_EXPECT_PTR_EQ(test, hmm_fixed_pfn_to_page(entry), page);
	KUNIT_EXPECT_EQ(test, hmm_fixed_pfn_to_map_order(entry), 9U);

	/* The generic helpers agree when given the fixed tables. */
	hmm_test_range_init(&range, enc);
	KUNIT_EXPECT_PTR_EQ(test, hmm_pfn_to_page(&range, entry), page);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(&range, entry), 9U);
	KUNIT_EXPECT_NULL(test, hmm_pfn_to_page(&range, 0));
	KUNIT_EXPECT_NULL(test, hmm_pfn_to_page(&range, HMM_PFN_FIXED_ERROR));
	__free_page(page);
}

/*
 * End-to-end cases.  Each case builds an mm of its own (a KUnit case runs in
 * a kthread without one), maps anonymous memory into it with vm_mmap(),
 * registers a fake mirror and runs hmm_vma_get_pfns() / hmm_vma_fault() on
 * the real page tables.  The mm is dropped in the case body: the final
 * mmput() runs exit_mmap(), which also sends the mirror's release.
 *
 * The fake mirror and the context live in kzalloc() memory that is only
 * freed once the mirror is unregistered, so a case aborted by a failed
 * ASSERT leaks it instead of leaving a freed mirror on a live mm.
 */

/* Driver encoding: flags in the low bits, order field, pfn at bit 12. */
#define HMM_E2E_VALID		BIT_ULL(0)
#define HMM_E2E_WRITE		BIT_ULL(1)
#define HMM_E2E_DEVPRIV		BIT_ULL(2)
#define HMM_E2E_ERROR		BIT_ULL(3)
#define HMM_E2E_NONE		BIT_ULL(4)
#define HMM_E2E_SPECIAL		BIT_ULL(5)
#define HMM_E2E_ORDER_MASK	GENMASK_ULL(10, 6)
#define HMM_E2E_PFN_SHIFT	12
/* Written into entries before a walk: looks like nothing the walk writes. */
#define HMM_E2E_POISON		(0xdead0ULL << HMM_E2E_PFN_SHIFT)

#define HMM_E2E_MAX_PAGES	(PMD_SIZE >> PAGE_SHIFT)

static const u64 hmm_e2e_flags[HMM_PFN_FLAG_MAX] = {
	[HMM_PFN_VALID]		 = HMM_E2E_VALID,
	[HMM_PFN_WRITE]		 = HMM_E2E_WRITE,
	[HMM_PFN_DEVICE_PRIVATE] = HMM_E2E_DEVPRIV,
};

static const u64 hmm_e2e_values[HMM_PFN_VALUE_MAX] = {
	[HMM_PFN_ERROR]		= HMM_E2E_ERROR,
	[HMM_PFN_NONE]		= HMM_E2E_NONE,
	[HMM_PFN_SPECIAL]	= HMM_E2E_SPECIAL,
};

struct hmm_test_nest;

/**
 * struct hmm_test_mirror - fake device mirror
 * @mirror: the registered mirror
 * @lock: the "device page table lock": taken by the sync callback and
 *	around hmm_vma_range_done()
 * @syncs: completed sync_cpu_device_pagetables() calls
 * @eagain: non-blockable calls that returned -EAGAIN
 * @releases: release() calls
 * @release_events: sync calls with HMM_UPDATE_RELEASE
 * @release_nonblock: of those, calls that were not blockable
 * @in_cb: sync callbacks running right now
 * @delay_us: time a blockable sync callback sleeps, to widen races
 * @last_event: event of the last completed sync (under @lock)
 * @last_blockable: blockable flag of the last completed sync (under @lock)
 * @last_start: start of the last completed sync (under @lock)
 * @last_end: end of the last completed sync (under @lock)
 * @registered: hmm_mirror_register() succeeded and no unregister yet
 * @fence: the fence handed out by a sync in a fence mode; cases invalidate
 *	one range at a time, so one is enough
 * @fence_mode: HMM_TEST_FENCE_*, what a successful sync hands back
 * @fence_us: delay of HMM_TEST_FENCE_TIMER
 * @fences: fences handed to the core
 * @fence_waits: &hmm_fence_ops.wait calls
 * @fence_puts: &hmm_fence_ops.put calls
 * @waits_at_sync: hmm_test_fence_waits when the last fence was handed out
 * @non_block: non_block_count of the task in the last non-blockable sync
 *	(CONFIG_DEBUG_ATOMIC_SLEEP only; -1 before any)
 * @zap_mm: mm whose page @zap_addr the lock callback zaps first, until
 *	@zap_until (jiffies): "the CPU unmaps it just as the driver
 *	validates"
 * @zap_addr: page zapped by the lock callback
 * @zap_until: last jiffy the lock callback zaps
 * @lock_calls: &hmm_mirror_ops.lock calls
 * @nest: set by the nested invalidation case, see there
 * @late_mm: mm that another thread invalidates while release() runs
 *	(the late invalidation case); not referenced, exit_mmap() is on it
 * @late_addr: page of @late_mm that thread invalidates
 * @late_task: that thread, created beforehand: a callback may not allocate
 * @late_done: that thread is done
 * @late_syncs: sync callbacks its invalidations got
 */
struct hmm_test_mirror {
	struct hmm_mirror	mirror;
	struct mutex		lock;	/* the device page table lock */
	atomic_t		syncs;
	atomic_t		eagain;
	atomic_t		releases;
	atomic_t		release_events;
	atomic_t		release_nonblock;
	atomic_t		in_cb;
	unsigned int		delay_us;
	enum hmm_update_event	last_event;
	bool			last_blockable;
	unsigned long		last_start;
	unsigned long		last_end;
	bool			registered;
	struct hmm_test_fence {
		struct hmm_fence	base;
		struct completion	done;
		struct hrtimer		timer;
		struct hmm_test_mirror	*tm;
	}			fence;
	unsigned int		fence_mode;
	unsigned int		fence_us;
	atomic_t		fences;
	atomic_t		fence_waits;
	atomic_t		fence_puts;
	int			waits_at_sync;
	int			non_block;
	struct mm_struct	*zap_mm;
	unsigned long		zap_addr;
	unsigned long		zap_until;
	atomic_t		lock_calls;
	struct hmm_test_nest	*nest;
	struct mm_struct	*late_mm;
	unsigned long		late_addr;
	struct task_struct	*late_task;
	struct completion	late_done;
	int			late_syncs;
};

enum {
	HMM_TEST_FENCE_NONE,		/* finish in the callback */
	HMM_TEST_FENCE_TIMER,		/* signaled fence_us after the sync */
	HMM_TEST_FENCE_SIGNALED,	/* already signaled when handed out */
	HMM_TEST_FENCE_PENDING,		/* signaled by the case itself */
};

/* fence wait() calls of every mirror: tells whether phase two started. */
static atomic_t hmm_test_fence_waits = ATOMIC_INIT(0);

static struct hmm_test_fence *hmm_test_to_fence(struct hmm_fence *fence)
{
	return container_of(fence, struct hmm_test_fence, base);
}

static bool hmm_test_fence_signaled(struct hmm_fence *fence)
{
	return completion_done(&hmm_test_to_fence(fence)->done);
}

static void hmm_test_fence_wait(struct hmm_fence *fence)
{
	struct hmm_test_fence *f = hmm_test_to_fence(fence);

	atomic_inc(&hmm_test_fence_waits);
	atomic_inc(&f->tm->fence_waits);
	wait_for_completion(&f->done);
}

static void hmm_test_fence_put(struct hmm_fence *fence)
{
	atomic_inc(&hmm_test_to_fence(fence)->tm->fence_puts);
}

static const struct hmm_fence_ops hmm_test_fence_ops = {
	.signaled	= hmm_test_fence_signaled,
	.wait		= hmm_test_fence_wait,
	.put		= hmm_test_fence_put,
};

static enum hrtimer_restart hmm_test_fence_timer(struct hrtimer *timer)
{
	complete_all(&container_of(timer, struct hmm_test_fence,
				   timer)->done);
	return HRTIMER_NORESTART;
}

/* Hand the core a fence as @tm->fence_mode says; called under @tm->lock. */
static void hmm_test_hand_fence(struct hmm_test_mirror *tm,
				struct hmm_update *update)
{
	struct hmm_test_fence *f = &tm->fence;

	if (tm->fence_mode == HMM_TEST_FENCE_NONE)
		return;
	reinit_completion(&f->done);
	if (tm->fence_mode == HMM_TEST_FENCE_SIGNALED)
		complete_all(&f->done);
	else if (tm->fence_mode == HMM_TEST_FENCE_TIMER)
		hrtimer_start(&f->timer, ns_to_ktime(tm->fence_us * 1000ULL),
			      HRTIMER_MODE_REL);
	tm->waits_at_sync = atomic_read(&hmm_test_fence_waits);
	atomic_inc(&tm->fences);
	update->fence = &f->base;
}

static void hmm_test_nest_sync(struct hmm_test_mirror *tm,
			       const struct hmm_update *update);

static int hmm_test_sync(struct hmm_mirror *mirror,
			 struct hmm_update *update)
{
	struct hmm_test_mirror *tm = container_of(mirror,
						  struct hmm_test_mirror,
						  mirror);

	if (update->event == HMM_UPDATE_RELEASE && !update->blockable)
		atomic_inc(&tm->release_nonblock);
#ifdef CONFIG_DEBUG_ATOMIC_SLEEP
	if (!update->blockable)
		tm->non_block = current->non_block_count;
#endif
	if (tm->nest && update->blockable)
		hmm_test_nest_sync(tm, update);
	if (!update->blockable) {
		if (!mutex_trylock(&tm->lock)) {
			atomic_inc(&tm->eagain);
			return -EAGAIN;
		}
	} else {
		mutex_lock(&tm->lock);
	}
	atomic_inc(&tm->in_cb);
	if (update->event == HMM_UPDATE_RELEASE)
		atomic_inc(&tm->release_events);
	tm->last_event = update->event;
	tm->last_blockable = update->blockable;
	tm->last_start = update->start;
	tm->last_end = update->end;
	if (tm->delay_us && update->blockable)
		usleep_range(tm->delay_us, 2 * tm->delay_us);
	hmm_test_hand_fence(tm, update);
	atomic_inc(&tm->syncs);
	atomic_dec(&tm->in_cb);
	mutex_unlock(&tm->lock);
	return 0;
}

static void hmm_test_release(struct hmm_mirror *mirror)
{
	struct hmm_test_mirror *tm = container_of(mirror,
						  struct hmm_test_mirror,
						  mirror);

	atomic_inc(&tm->releases);
}

/*
 * The lock hmm_vma_fault_lock() validates under.  When armed, the CPU
 * unmaps one page of the range just before the driver gets its lock.
 */
static void hmm_test_lock(struct hmm_mirror *mirror)
{
	struct hmm_test_mirror *tm = container_of(mirror,
						  struct hmm_test_mirror,
						  mirror);

	atomic_inc(&tm->lock_calls);
	if (tm->zap_mm && time_before_eq(jiffies, tm->zap_until))
		do_madvise(tm->zap_mm, tm->zap_addr, PAGE_SIZE, MADV_DONTNEED);
	mutex_lock(&tm->lock);
}

static void hmm_test_unlock(struct hmm_mirror *mirror)
{
	mutex_unlock(&container_of(mirror, struct hmm_test_mirror,
				   mirror)->lock);
}

static const struct hmm_mirror_ops hmm_test_mirror_ops = {
	.release = hmm_test_release,
	.sync_cpu_device_pagetables = hmm_test_sync,
	.lock = hmm_test_lock,
	.unlock = hmm_test_unlock,
};

static const struct hmm_mirror_ops hmm_test_mirror_ops_norelease = {
	.sync_cpu_device_pagetables = hmm_test_sync,
};

/**
 * struct hmm_e2e - state of one end-to-end case
 * @test: the case
 * @mm: mm made for the case, used by the case kthread; NULL once dropped
 * @tm: fake mirror registered on @mm
 * @tm2: second mirror for the cases that need one
 * @range: range of the last walk
 * @pfns: entries of @range, HMM_E2E_MAX_PAGES of them
 */
struct hmm_e2e {
	struct kunit		*test;
	struct mm_struct	*mm;
	struct hmm_test_mirror	tm;
	struct hmm_test_mirror	tm2;
	struct hmm_range	range;
	u64			pfns[HMM_E2E_MAX_PAGES];
};

static void hmm_test_mirror_init(struct hmm_test_mirror *tm,
				 const struct hmm_mirror_ops *ops)
{
	mutex_init(&tm->lock);
	tm->non_block = -1;
	tm->mirror.ops = ops;
	tm->fence.base.ops = &hmm_test_fence_ops;
	tm->fence.tm = tm;
	init_completion(&tm->fence.done);
	init_completion(&tm->late_done);
	hrtimer_init(&tm->fence.timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	tm->fence.timer.function = hmm_test_fence_timer;
}

static int hmm_test_mirror_register(struct hmm_test_mirror *tm,
				    struct mm_struct *mm)
{
	int ret = hmm_mirror_register(&tm->mirror, mm);

	tm->registered = !ret;
	return ret;
}

static void hmm_test_mirror_unregister(struct hmm_test_mirror *tm)
{
	if (!tm->registered)
		return;
	hmm_mirror_unregister(&tm->mirror);
	tm->registered = false;
}

/* Make an mm, use it in this kthread and register the first mirror. */
static struct hmm_e2e *hmm_e2e_start_ops(struct kunit *test,
					 const struct hmm_mirror_ops *ops)
{
	struct mm_struct *mm;
	struct hmm_e2e *e;
	int ret;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, e);
	e->test = test;
	hmm_test_mirror_init(&e->tm, ops);
	hmm_test_mirror_init(&e->tm2, ops);

	mm = mm_alloc();
	if (!mm)
		kfree(e);
	KUNIT_ASSERT_NOT_NULL(test, mm);
	mm->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm, &current->signal->rlim[RLIMIT_STACK]);
	kthread_use_mm(mm);
	e->mm = mm;

	ret = hmm_test_mirror_register(&e->tm, mm);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return e;
}

static struct hmm_e2e *hmm_e2e_start(struct kunit *test)
{
	return hmm_e2e_start_ops(test, &hmm_test_mirror_ops);
}

/* Drop the mm (exit_mmap() if last) but keep the mirrors registered. */
static void hmm_e2e_drop_mm(struct hmm_e2e *e)
{
	if (!e->mm)
		return;
	kthread_unuse_mm(e->mm);
	mmput(e->mm);
	e->mm = NULL;
}

static void hmm_e2e_end(struct hmm_e2e *e)
{
	hmm_test_mirror_unregister(&e->tm);
	hmm_test_mirror_unregister(&e->tm2);
	hrtimer_cancel(&e->tm.fence.timer);
	hrtimer_cancel(&e->tm2.fence.timer);
	hmm_e2e_drop_mm(e);
	kfree(e);
}

static unsigned long hmm_e2e_map(struct hmm_e2e *e, unsigned long npages,
				 unsigned long prot)
{
	unsigned long addr;

	addr = vm_mmap(NULL, 0, npages << PAGE_SHIFT, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS, 0);
	KUNIT_ASSERT_FALSE_MSG(e->test, IS_ERR_VALUE(addr),
			       "vm_mmap() failed: %ld", (long)addr);
	return addr;
}

/* Write page i as byte i followed by 0xa0 + i: each page is recognisable. */
static void hmm_e2e_fill(struct hmm_e2e *e, unsigned long addr,
			 unsigned long npages)
{
	unsigned long i;
	u8 *buf;

	buf = kunit_kmalloc(e->test, PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(e->test, buf);
	for (i = 0; i < npages; i++) {
		memset(buf, 0xa0 + i, PAGE_SIZE);
		buf[0] = i;
		KUNIT_ASSERT_EQ(e->test,
				copy_to_user((void __user *)addr +
					     (i << PAGE_SHIFT),
					     buf, PAGE_SIZE), 0UL);
	}
}

/* Read one byte of every page: maps the zero page. */
static void hmm_e2e_touch_read(struct hmm_e2e *e, unsigned long addr,
			       unsigned long npages)
{
	unsigned long i;
	u8 val;

	for (i = 0; i < npages; i++) {
		KUNIT_ASSERT_EQ(e->test,
				get_user(val, (u8 __user *)addr +
					 (i << PAGE_SHIFT)), 0);
		KUNIT_EXPECT_EQ(e->test, val, 0);
	}
}

/* Prepare e->range over [addr, addr + npages pages) for @tm. */
static struct hmm_range *hmm_e2e_range(struct hmm_e2e *e,
				       struct hmm_test_mirror *tm,
				       unsigned long addr,
				       unsigned long npages)
{
	struct hmm_range *range = &e->range;
	unsigned long i;

	KUNIT_ASSERT_LE(e->test, npages, HMM_E2E_MAX_PAGES);
	memset(range, 0, sizeof(*range));
	range->mirror = &tm->mirror;
	range->start = addr;
	range->end = addr + (npages << PAGE_SHIFT);
	range->pfns = e->pfns;
	range->flags = hmm_e2e_flags;
	range->values = hmm_e2e_values;
	range->pfn_shift = HMM_E2E_PFN_SHIFT;
	range->order_mask = HMM_E2E_ORDER_MASK;
	for (i = 0; i < npages; i++)
		e->pfns[i] = HMM_E2E_POISON;
	return range;
}

static int hmm_e2e_get(struct hmm_e2e *e)
{
	int ret;

	mmap_read_lock(e->range.mirror->mm);
	ret = hmm_vma_get_pfns(&e->range);
	mmap_read_unlock(e->range.mirror->mm);
	return ret;
}

static int hmm_e2e_fault(struct hmm_e2e *e)
{
	int ret;

	mmap_read_lock(e->range.mirror->mm);
	ret = hmm_vma_fault(&e->range, true);
	mmap_read_unlock(e->range.mirror->mm);
	return ret;
}

/*
 * Driver retry loop: -EBUSY means "invalidated, set the input again".  The
 * walk's own copy on write fault invalidates the range, so a write request
 * over zero pages needs it.
 */
static int hmm_e2e_fault_retry(struct hmm_e2e *e, const u64 *input)
{
	unsigned long npages = (e->range.end - e->range.start) >> PAGE_SHIFT;
	struct hmm_range saved = e->range;
	unsigned long tries;
	int ret = -EBUSY;

	for (tries = 0; tries < 2 * npages + 4 && ret == -EBUSY; tries++) {
		e->range = saved;
		memcpy(e->pfns, input, npages * sizeof(*input));
		ret = hmm_e2e_fault(e);
	}
	return ret;
}

static bool hmm_e2e_done(struct hmm_e2e *e, struct hmm_test_mirror *tm)
{
	bool valid;

	mutex_lock(&tm->lock);
	valid = hmm_vma_range_done(&e->range);
	mutex_unlock(&tm->lock);
	return valid;
}

static unsigned long hmm_e2e_pfn(struct hmm_e2e *e, unsigned long i)
{
	return hmm_pfn_to_pfn(&e->range, e->pfns[i]);
}

/* Entry @i is a valid 4K mapping of a zero page, not writable. */
static void hmm_e2e_expect_zero(struct hmm_e2e *e, unsigned long i)
{
	u64 entry = e->pfns[i];

	KUNIT_EXPECT_EQ_MSG(e->test, entry & (HMM_E2E_VALID | HMM_E2E_WRITE),
			    HMM_E2E_VALID, "entry %lu = %#llx", i, entry);
	KUNIT_EXPECT_TRUE_MSG(e->test, is_zero_pfn(hmm_e2e_pfn(e, i)),
			      "entry %lu = %#llx", i, entry);
	KUNIT_EXPECT_EQ(e->test, hmm_pfn_to_map_order(&e->range, entry), 0U);
}

/* Entry @i is a valid writable 4K mapping of an ordinary page. */
static void hmm_e2e_expect_rw(struct hmm_e2e *e, unsigned long i)
{
	u64 entry = e->pfns[i];

	KUNIT_EXPECT_EQ_MSG(e->test, entry & (HMM_E2E_VALID | HMM_E2E_WRITE),
			    HMM_E2E_VALID | HMM_E2E_WRITE,
			    "entry %lu = %#llx", i, entry);
	KUNIT_EXPECT_FALSE_MSG(e->test, is_zero_pfn(hmm_e2e_pfn(e, i)),
			       "entry %lu = %#llx", i, entry);
	KUNIT_EXPECT_FALSE(e->test, entry & HMM_E2E_DEVPRIV);
	KUNIT_EXPECT_EQ(e->test, hmm_pfn_to_map_order(&e->range, entry), 0U);
}

static void hmm_e2e_expect_value(struct hmm_e2e *e, unsigned long first,
				 unsigned long last, u64 value)
{
	unsigned long i;

	for (i = first; i <= last; i++)
		KUNIT_EXPECT_EQ_MSG(e->test, e->pfns[i], value,
				    "entry %lu", i);
}

/*
 * Mapped but never touched: every entry is NONE, and the snapshot does not
 * fault anything in (a second snapshot still sees NONE).
 */
static void hmm_test_e2e_none(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);

	hmm_e2e_range(e, &e->tm, addr, 4);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 3, HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 4);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 3, HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* A read fault maps the zero page: VALID, not WRITE, the zero pfn. */
static void hmm_test_e2e_zero_page(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	hmm_e2e_touch_read(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_zero(e, 0);
	hmm_e2e_expect_zero(e, 1);
	KUNIT_EXPECT_EQ(test, hmm_e2e_pfn(e, 0), my_zero_pfn(addr));
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * Written pages are VALID|WRITE and hmm_pfn_to_page() returns the very page
 * that holds the data written through the user address.
 */
static void hmm_test_e2e_populated(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 3, PROT_READ | PROT_WRITE);
	struct page *page;
	unsigned long i;
	u8 *kaddr;

	hmm_e2e_fill(e, addr, 3);
	hmm_e2e_range(e, &e->tm, addr, 3);
	KUNIT_ASSERT_EQ(test, hmm_e2e_get(e), 0);

	mutex_lock(&e->tm.lock);
	KUNIT_EXPECT_TRUE(test, hmm_vma_range_done(&e->range));
	for (i = 0; i < 3; i++) {
		hmm_e2e_expect_rw(e, i);
		page = hmm_pfn_to_page(&e->range, e->pfns[i]);
		if (!page)
			continue;
		kaddr = kmap_local_page(page);
		KUNIT_EXPECT_EQ(test, kaddr[0], (u8)i);
		KUNIT_EXPECT_EQ(test, kaddr[1], (u8)(0xa0 + i));
		KUNIT_EXPECT_EQ(test, kaddr[PAGE_SIZE - 1], (u8)(0xa0 + i));
		kunmap_local(kaddr);
	}
	mutex_unlock(&e->tm.lock);
	KUNIT_EXPECT_NE(test, hmm_e2e_pfn(e, 0), hmm_e2e_pfn(e, 1));
	KUNIT_EXPECT_NE(test, hmm_e2e_pfn(e, 1), hmm_e2e_pfn(e, 2));
	hmm_e2e_end(e);
}

/*
 * PROT_READ: a touched page is VALID only; asking for write access is
 * -EPERM, asking for read access of an untouched page faults it in.
 */
static void hmm_test_e2e_read_only(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ);

	hmm_e2e_touch_read(e, addr, 1);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_zero(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->pfns[0] = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[1] = 0;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EPERM);

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->pfns[0] = 0;
	e->pfns[1] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EPERM);

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.default_flags = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	hmm_e2e_expect_zero(e, 0);
	hmm_e2e_expect_zero(e, 1);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* PROT_NONE cannot be mirrored: ERROR, and -EFAULT when requested. */
static void hmm_test_e2e_prot_none(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_NONE);

	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* No request: reported like a snapshot. */
	hmm_e2e_range(e, &e->tm, addr, 2);
	e->pfns[0] = 0;
	e->pfns[1] = 0;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->pfns[0] = 0;
	e->pfns[1] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
	hmm_e2e_end(e);
}

/*
 * PROT_WRITE without PROT_READ: the VMA lacks VM_READ, which hmm.c treats
 * as unmirrorable (a device cannot get write access without read access),
 * even once the CPU wrote the pages: ERROR, and -EFAULT when requested.
 */
static void hmm_test_e2e_write_only(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_WRITE);

	hmm_e2e_fill(e, addr, 1);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.default_flags = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
	hmm_e2e_end(e);
}

/*
 * Three pages, the middle one unmapped: the walk spans both VMAs, the hole
 * is ERROR, a request on the hole is -EFAULT, requests around it work.
 */
static void hmm_test_e2e_hole(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 3, PROT_READ | PROT_WRITE);

	hmm_e2e_fill(e, addr, 3);
	KUNIT_ASSERT_EQ(test, vm_munmap(addr + PAGE_SIZE, PAGE_SIZE), 0);

	hmm_e2e_range(e, &e->tm, addr, 3);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_ERROR);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 3);
	e->range.default_flags = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);

	hmm_e2e_range(e, &e->tm, addr, 3);
	e->pfns[0] = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[1] = 0;
	e->pfns[2] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	hmm_e2e_expect_rw(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_ERROR);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * Two adjacent VMAs with different protections (RW then PROT_READ mapped
 * over the second page): one walk reports each page by its own VMA.
 */
static void hmm_test_e2e_adjacent_vmas(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 3, PROT_READ | PROT_WRITE);
	unsigned long ret;

	hmm_e2e_fill(e, addr, 3);
	ret = vm_mmap(NULL, addr + PAGE_SIZE, PAGE_SIZE, PROT_READ,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	KUNIT_ASSERT_EQ(test, ret, addr + PAGE_SIZE);
	hmm_e2e_touch_read(e, addr + PAGE_SIZE, 1);

	hmm_e2e_range(e, &e->tm, addr, 3);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	hmm_e2e_expect_zero(e, 1);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* Write everywhere: the read-only VMA in the middle refuses. */
	hmm_e2e_range(e, &e->tm, addr, 3);
	e->range.default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EPERM);
	hmm_e2e_end(e);
}

/*
 * A walk over several VMAs: a hole first, a mirrored VMA, an unmirrorable
 * one, a mirrored VMA that must be faulted, and a hole at the end.  The
 * fault makes the walk start again in the middle of the range.
 */
static void hmm_test_e2e_vma_walk(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 7, PROT_READ | PROT_WRITE);
	unsigned long ret;

	hmm_e2e_fill(e, addr + PAGE_SIZE, 2);
	KUNIT_ASSERT_EQ(test, vm_munmap(addr, PAGE_SIZE), 0);
	ret = vm_mmap(NULL, addr + 3 * PAGE_SIZE, PAGE_SIZE, PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	KUNIT_ASSERT_EQ(test, ret, addr + 3 * PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, vm_munmap(addr + 5 * PAGE_SIZE, 2 * PAGE_SIZE),
			0);

	hmm_e2e_range(e, &e->tm, addr, 7);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_ERROR);
	hmm_e2e_expect_rw(e, 1);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_EQ(test, e->pfns[3], HMM_E2E_ERROR);
	KUNIT_EXPECT_EQ(test, e->pfns[4], HMM_E2E_NONE);
	hmm_e2e_expect_value(e, 5, 6, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 7);
	memset(e->pfns, 0, 7 * sizeof(*e->pfns));
	e->pfns[4] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_ERROR);
	hmm_e2e_expect_rw(e, 1);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_EQ(test, e->pfns[3], HMM_E2E_ERROR);
	hmm_e2e_expect_rw(e, 4);
	hmm_e2e_expect_value(e, 5, 6, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* A request in the trailing hole fails the whole fault. */
	hmm_e2e_range(e, &e->tm, addr, 7);
	memset(e->pfns, 0, 7 * sizeof(*e->pfns));
	e->pfns[6] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
	hmm_e2e_end(e);
}

/* Fault [addr, +npages pages) writable: every entry comes back writable. */
static void hmm_e2e_fault_rw(struct hmm_e2e *e, unsigned long addr,
			     unsigned long npages)
{
	unsigned long i;

	hmm_e2e_range(e, &e->tm, addr, npages);
	e->range.default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(e->test, hmm_e2e_fault(e), 0);
	for (i = 0; i < npages; i++)
		hmm_e2e_expect_rw(e, i);
	KUNIT_EXPECT_TRUE(e->test, hmm_e2e_done(e, &e->tm));
}

/*
 * Ranges that the walk cannot take from one PMD table: one across a PUD
 * boundary, and one under a PUD with no page table yet.  A PROT_NONE
 * reservation of three PUDs keeps other mappings out of the way.
 */
static void hmm_test_e2e_pud_boundary(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long resv = hmm_e2e_map(e, 3 * (PUD_SIZE >> PAGE_SHIFT),
					 PROT_NONE);
	unsigned long cross = ALIGN(resv, PUD_SIZE) - 2 * PAGE_SIZE;
	unsigned long empty = cross + PUD_SIZE + PUD_SIZE / 2;
	unsigned long ret;

	ret = vm_mmap(NULL, cross, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	KUNIT_ASSERT_EQ(test, ret, cross);
	ret = vm_mmap(NULL, empty, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	KUNIT_ASSERT_EQ(test, ret, empty);
	/*
	 * The upper PUD's tables first: a walk that ran past the end of the
	 * lower PMD table would then read some other page table, not (by
	 * chance) the upper PMD table allocated right after it.
	 */
	hmm_e2e_fill(e, cross + 3 * PAGE_SIZE, 1);
	hmm_e2e_fill(e, cross, 1);

	hmm_e2e_range(e, &e->tm, cross, 4);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	hmm_e2e_expect_value(e, 1, 2, HMM_E2E_NONE);
	hmm_e2e_expect_rw(e, 3);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_fault_rw(e, cross, 4);

	hmm_e2e_range(e, &e->tm, empty, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_fault_rw(e, empty, 2);
	hmm_e2e_end(e);
}

/* No VMA at all: ERROR, -EFAULT when a fault is requested. */
static void hmm_test_e2e_no_vma(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	KUNIT_ASSERT_EQ(test, vm_munmap(addr, 2 * PAGE_SIZE), 0);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.default_flags = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
	hmm_e2e_end(e);
}

/* A read request on untouched pages faults the zero page in. */
static void hmm_test_e2e_fault_read(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);
	unsigned long i;

	hmm_e2e_range(e, &e->tm, addr, 4);
	for (i = 0; i < 4; i++)
		e->pfns[i] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	for (i = 0; i < 4; i++)
		hmm_e2e_expect_zero(e, i);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* They stay valid: a snapshot sees them too. */
	hmm_e2e_range(e, &e->tm, addr, 4);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	for (i = 0; i < 4; i++)
		hmm_e2e_expect_zero(e, i);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* A write request on untouched pages allocates writable pages. */
static void hmm_test_e2e_fault_write(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);
	unsigned long i;

	hmm_e2e_range(e, &e->tm, addr, 4);
	for (i = 0; i < 4; i++)
		e->pfns[i] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	for (i = 0; i < 4; i++)
		hmm_e2e_expect_rw(e, i);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * A write request on zero pages breaks copy on write: each entry ends up
 * VALID|WRITE on a new page.  Each COW invalidates the page it replaces,
 * which the walk has not written yet: the fault costs no retry, even with
 * per-entry requests.
 */
static void hmm_test_e2e_fault_cow(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);
	unsigned long i;

	hmm_e2e_touch_read(e, addr, 4);
	hmm_e2e_range(e, &e->tm, addr, 4);
	for (i = 0; i < 4; i++)
		e->pfns[i] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	for (i = 0; i < 4; i++)
		hmm_e2e_expect_rw(e, i);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	/* Replacing the zero page was mirrored as a CLEAR. */
	KUNIT_EXPECT_GE(test, atomic_read(&e->tm.syncs), 4);
	KUNIT_EXPECT_EQ(test, (int)e->tm.last_event, (int)HMM_UPDATE_CLEAR);
	hmm_e2e_end(e);
}

/*
 * default_flags == pfn_flags_mask == 0: every input entry is its own
 * request.  WRITE without VALID asks for nothing.
 */
static void hmm_test_e2e_req_per_entry(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);

	hmm_e2e_range(e, &e->tm, addr, 4);
	e->pfns[0] = HMM_E2E_VALID;
	e->pfns[1] = 0;
	e->pfns[2] = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[3] = HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	hmm_e2e_expect_zero(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_NONE);
	hmm_e2e_expect_rw(e, 2);
	KUNIT_EXPECT_EQ(test, e->pfns[3], HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * default_flags alone: applied to every entry, the input (even a write
 * request) is ignored because pfn_flags_mask is 0.
 */
static void hmm_test_e2e_req_default(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);
	unsigned long i;

	hmm_e2e_range(e, &e->tm, addr, 4);
	e->range.default_flags = HMM_E2E_VALID;
	e->pfns[1] = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[2] = 0;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	for (i = 0; i < 4; i++)
		hmm_e2e_expect_zero(e, i);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * default_flags plus pfn_flags_mask: the masked input bits add to the
 * defaults; unmasked input bits are ignored.
 */
static void hmm_test_e2e_req_mask(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);

	hmm_e2e_range(e, &e->tm, addr, 4);
	e->range.default_flags = HMM_E2E_VALID;
	e->range.pfn_flags_mask = HMM_E2E_WRITE;
	e->pfns[0] = 0;
	e->pfns[1] = HMM_E2E_WRITE;
	e->pfns[2] = HMM_E2E_DEVPRIV;
	e->pfns[3] = HMM_E2E_POISON;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	hmm_e2e_expect_zero(e, 0);
	hmm_e2e_expect_rw(e, 1);
	hmm_e2e_expect_zero(e, 2);
	hmm_e2e_expect_zero(e, 3);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* Mask only: entries without VALID stay untouched (NONE). */
	addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.pfn_flags_mask = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[0] = HMM_E2E_POISON | HMM_E2E_WRITE;
	e->pfns[1] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_NONE);
	hmm_e2e_expect_zero(e, 1);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* hmm_vma_get_pfns() ignores the input entries and the request fields. */
static void hmm_test_e2e_get_ignores_input(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	hmm_e2e_range(e, &e->tm, addr, 2);
	e->range.default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->range.pfn_flags_mask = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[0] = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->pfns[1] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_value(e, 0, 1, HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* Malformed ranges are refused with -EINVAL before anything is walked. */
static void hmm_test_e2e_invalid_range(struct kunit *test)
{
	static const u64 no_valid[HMM_PFN_FLAG_MAX] = {
		[HMM_PFN_WRITE] = HMM_E2E_WRITE,
	};
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct hmm_range *range;

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->start += 1;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->end = range->start;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->flags = no_valid;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EINVAL);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->order_mask = GENMASK_ULL(7, 1);	/* overlaps WRITE */
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->order_mask = BIT_ULL(6) | BIT_ULL(8);	/* not contiguous */
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->pfns = NULL;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);

	/* The failed calls left nothing behind: a good one still works. */
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * A PMD-mapped THP: every entry reports order 9 and the pfns are
 * consecutive, also for a range that covers only part of the PMD.
 */
static void hmm_test_e2e_thp(struct kunit *test)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	struct hmm_e2e *e;
	unsigned long addr, huge, pfn0, i;
	struct page *page;
	bool mapped;
	int ret;

	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		kunit_skip(test, "needs CONFIG_TRANSPARENT_HUGEPAGE");

	e = hmm_e2e_start(test);
	addr = hmm_e2e_map(e, 2 * nr, PROT_READ | PROT_WRITE);
	huge = ALIGN(addr, PMD_SIZE);
	ret = do_madvise(e->mm, huge, PMD_SIZE, MADV_HUGEPAGE);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, put_user((u8)0x5a, (u8 __user *)huge), 0);

	hmm_e2e_range(e, &e->tm, huge, nr);
	KUNIT_ASSERT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	/* Decide from the page itself, not from the order under test. */
	page = hmm_pfn_to_page(&e->range, e->pfns[0]);
	mapped = page && PageTransCompound(page);
	if (!mapped) {
		hmm_e2e_end(e);
		kunit_skip(test, "no THP was allocated (fragmented memory?)");
	}

	pfn0 = hmm_e2e_pfn(e, 0);
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(pfn0, nr));
	for (i = 0; i < nr; i++) {
		KUNIT_EXPECT_EQ_MSG(test, e->pfns[i] &
				    (HMM_E2E_VALID | HMM_E2E_WRITE),
				    HMM_E2E_VALID | HMM_E2E_WRITE, "entry %lu", i);
		KUNIT_EXPECT_EQ_MSG(test,
				    hmm_pfn_to_map_order(&e->range, e->pfns[i]),
				    (unsigned int)(PMD_SHIFT - PAGE_SHIFT), "entry %lu", i);
		KUNIT_EXPECT_EQ_MSG(test, hmm_e2e_pfn(e, i), pfn0 + i,
				    "entry %lu", i);
		if (e->pfns[i] != e->pfns[0] + (i << HMM_E2E_PFN_SHIFT))
			break;
	}

	/* Part of the PMD only: same order, pfns offset into the THP. */
	hmm_e2e_range(e, &e->tm, huge + 100 * PAGE_SIZE, 20);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	for (i = 0; i < 20; i++) {
		KUNIT_EXPECT_EQ(test, hmm_e2e_pfn(e, i), pfn0 + 100 + i);
		KUNIT_EXPECT_EQ(test,
				hmm_pfn_to_map_order(&e->range, e->pfns[i]),
				(unsigned int)(PMD_SHIFT - PAGE_SHIFT));
	}
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * hmm_pfn_span() on hand-made entries: one entry per page without
 * HMM_RANGE_SPARSE_HUGE, otherwise a valid entry with an order reaches the
 * end of its order-aligned mapping, capped at the end of the range.
 */
static void hmm_test_pfn_span(struct kunit *test)
{
	const unsigned int order = PMD_SHIFT - PAGE_SHIFT;
	const unsigned long nr = 1UL << order;
	struct hmm_range range = {
		.flags = hmm_e2e_flags,
		.values = hmm_e2e_values,
		.pfn_shift = HMM_E2E_PFN_SHIFT,
		.order_mask = HMM_E2E_ORDER_MASK,
		.start = 16 * PMD_SIZE + 3 * PAGE_SIZE,
		.end = 18 * PMD_SIZE + PAGE_SIZE,
	};
	u64 huge = hmm_pfn_set_map_order(&range,
					 hmm_pfn_from_pfn(&range, 0x1000 + 3),
					 order);
	u64 small = hmm_pfn_from_pfn(&range, 0x2000);

	/* Not sparse: every entry is its own. */
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start, huge), 1UL);

	range.mode = HMM_RANGE_SPARSE_HUGE;
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start, huge), nr - 3);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, 17 * PMD_SIZE, huge), nr);
	/* The last mapping is cut by the end of the range. */
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, 18 * PMD_SIZE, huge), 1UL);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start, small), 1UL);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start,
					   HMM_E2E_NONE), 1UL);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start,
					   huge & ~HMM_E2E_VALID), 1UL);
	/* The last huge mapping of the address space: no overflow. */
	range.start = ULONG_MAX & PMD_MASK;
	range.end = ULONG_MAX & PAGE_MASK;
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&range, range.start, huge),
			nr - 1);
}

/*
 * Map a THP at a PMD aligned address followed by one 4K page and one
 * untouched page.  Return the THP address, or 0 (case skipped) without THP.
 */
static unsigned long hmm_e2e_thp_then_4k(struct hmm_e2e *e)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	unsigned long addr, huge;
	struct page *page;
	bool mapped;

	addr = hmm_e2e_map(e, 3 * nr, PROT_READ | PROT_WRITE);
	huge = ALIGN(addr, PMD_SIZE);
	KUNIT_EXPECT_EQ(e->test, do_madvise(e->mm, huge, PMD_SIZE,
					    MADV_HUGEPAGE), 0);
	KUNIT_EXPECT_EQ(e->test, do_madvise(e->mm, huge + PMD_SIZE, PMD_SIZE,
					    MADV_NOHUGEPAGE), 0);
	KUNIT_EXPECT_EQ(e->test, put_user((u8)0x5a, (u8 __user *)huge), 0);
	KUNIT_EXPECT_EQ(e->test, put_user((u8)0xa5,
					  (u8 __user *)huge + PMD_SIZE), 0);

	hmm_e2e_range(e, &e->tm, huge, 1);
	KUNIT_ASSERT_EQ(e->test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(e->test, hmm_e2e_done(e, &e->tm));
	page = hmm_pfn_to_page(&e->range, e->pfns[0]);
	mapped = page && PageTransCompound(page);
	return mapped ? huge : 0;
}

/*
 * Start a case on hmm_e2e_thp_then_4k()'s mapping, its THP address in
 * @huge; the case is skipped without THP.
 */
static struct hmm_e2e *hmm_e2e_start_thp(struct kunit *test,
					 unsigned long *huge)
{
	struct hmm_e2e *e;

	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		kunit_skip(test, "needs CONFIG_TRANSPARENT_HUGEPAGE");
	e = hmm_e2e_start(test);
	*huge = hmm_e2e_thp_then_4k(e);
	if (!*huge) {
		hmm_e2e_end(e);
		kunit_skip(test, "no THP was allocated (fragmented memory?)");
	}
	return e;
}

/*
 * HMM_RANGE_SPARSE_HUGE over the tail of a THP and two 4K pages: one entry
 * for the THP part, the entries it stands for untouched, then one entry per
 * 4K page.  Without the mode the same range gets every entry.
 */
static void hmm_test_e2e_sparse_thp(struct kunit *test)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	const unsigned long first = 100, npages = nr - first + 2;
	unsigned long huge, pfn0, i, addr;
	struct hmm_range *range;
	struct hmm_e2e *e;

	e = hmm_e2e_start_thp(test, &huge);
	pfn0 = hmm_e2e_pfn(e, 0);

	addr = huge + first * PAGE_SIZE;
	range = hmm_e2e_range(e, &e->tm, addr, npages);
	range->mode = HMM_RANGE_SPARSE_HUGE;
	KUNIT_ASSERT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	KUNIT_EXPECT_EQ(test, hmm_e2e_pfn(e, 0), pfn0 + first);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(range, e->pfns[0]),
			(unsigned int)(PMD_SHIFT - PAGE_SHIFT));
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(range, addr, e->pfns[0]),
			nr - first);
	for (i = 1; i < nr - first; i++)
		if (e->pfns[i] != HMM_E2E_POISON)
			break;
	KUNIT_EXPECT_EQ_MSG(test, i, nr - first, "entry %lu was written", i);
	/* The 4K page after the THP, then the untouched one. */
	i = nr - first;
	hmm_e2e_expect_rw(e, i);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(range, huge + PMD_SIZE,
					   e->pfns[i]), 1UL);
	KUNIT_EXPECT_EQ(test, e->pfns[i + 1], HMM_E2E_NONE);

	/* Same range, default mode: every entry written, pfns consecutive. */
	hmm_e2e_range(e, &e->tm, addr, npages);
	KUNIT_ASSERT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	for (i = 0; i < nr - first; i++)
		if (hmm_e2e_pfn(e, i) != pfn0 + first + i)
			break;
	KUNIT_EXPECT_EQ_MSG(test, i, nr - first, "entry %lu", i);
	hmm_e2e_end(e);
}

/*
 * hmm_vma_fault() in sparse mode with per-entry requests: the requests of
 * the entries the THP entry stands for are read, and left in place.
 */
static void hmm_test_e2e_sparse_fault(struct kunit *test)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	unsigned long huge, i;
	struct hmm_range *range;
	struct hmm_e2e *e;
	u64 *input;

	e = hmm_e2e_start_thp(test, &huge);
	input = kunit_kcalloc(test, nr, sizeof(*input), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, input);
	for (i = 0; i < nr; i++)
		input[i] = HMM_E2E_VALID | HMM_E2E_WRITE;

	range = hmm_e2e_range(e, &e->tm, huge, nr);
	range->mode = HMM_RANGE_SPARSE_HUGE;
	KUNIT_ASSERT_EQ(test, hmm_e2e_fault_retry(e, input), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	KUNIT_EXPECT_EQ(test, e->pfns[0] & (HMM_E2E_VALID | HMM_E2E_WRITE),
			HMM_E2E_VALID | HMM_E2E_WRITE);
	KUNIT_EXPECT_EQ(test, hmm_pfn_span(&e->range, huge, e->pfns[0]), nr);
	for (i = 1; i < nr; i++)
		if (e->pfns[i] != input[i])
			break;
	KUNIT_EXPECT_EQ_MSG(test, i, nr, "entry %lu was written", i);
	hmm_e2e_end(e);
}

static bool hmm_test_ni_invalidate(struct mmu_interval_notifier *mni,
				   const struct mmu_notifier_range *nrange,
				   unsigned long cur_seq)
{
	mmu_interval_set_seq(mni, cur_seq);
	return true;
}

static const struct mmu_interval_notifier_ops hmm_test_ni_ops = {
	.invalidate = hmm_test_ni_invalidate,
};

/*
 * A mode the walker cannot honour is refused before anything is written:
 * unknown bits, sparse without an order field, any mode for the fixed
 * format of hmm_range_fault().
 */
static void hmm_test_e2e_mode_invalid(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct mmu_interval_notifier ni;
	unsigned long hmm_pfns[2] = { 7, 7 };
	struct hmm_range *range, fixed;
	int ret;

	hmm_e2e_fill(e, addr, 2);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->mode = HMM_RANGE_MODE_ALL + 1;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_POISON);

	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->mode = HMM_RANGE_SPARSE_HUGE;
	range->order_mask = 0;
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EINVAL);
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EINVAL);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_POISON);

	ret = mmu_interval_notifier_insert(&ni, e->mm, addr, 2 * PAGE_SIZE,
					   &hmm_test_ni_ops);
	KUNIT_ASSERT_EQ(test, ret, 0);
	fixed = (struct hmm_range) {
		.notifier = &ni,
		.start = addr,
		.end = addr + 2 * PAGE_SIZE,
		.hmm_pfns = hmm_pfns,
		.mode = HMM_RANGE_SPARSE_HUGE,
	};
	fixed.notifier_seq = mmu_interval_read_begin(&ni);
	mmap_read_lock(e->mm);
	KUNIT_EXPECT_EQ(test, hmm_range_fault(&fixed), -EINVAL);
	mmap_read_unlock(e->mm);
	KUNIT_EXPECT_EQ(test, hmm_pfns[0], 7UL);
	KUNIT_EXPECT_PTR_EQ(test, fixed.flags, (const u64 *)NULL);

	/* Mode 0: the same call works. */
	fixed.mode = 0;
	fixed.notifier_seq = mmu_interval_read_begin(&ni);
	mmap_read_lock(e->mm);
	KUNIT_EXPECT_EQ(test, hmm_range_fault(&fixed), 0);
	mmap_read_unlock(e->mm);
	KUNIT_EXPECT_TRUE(test, hmm_pfns[0] & HMM_PFN_FIXED_VALID);
	mmu_interval_notifier_remove(&ni);
	hmm_e2e_end(e);
}

/*
 * VM_PFNMAP: a kernel page is inserted with remap_pfn_range() into a fresh
 * one page private VMA (a COW mapping must be remapped whole; the pte is
 * none because the VMA was never touched).  remap_pfn_range() sets
 * VM_IO | VM_PFNMAP itself.  Such a VMA cannot be mirrored: ERROR in a
 * snapshot, -EFAULT on a request.  The page is freed after exit_mmap():
 * vm_normal_page() is NULL for it, so the zap never touches it.
 */
static void hmm_test_e2e_pfnmap(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct vm_area_struct *vma;
	bool pfnmap = false;
	struct page *page;
	int ret = -ENOENT;

	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	KUNIT_ASSERT_NOT_NULL(test, page);

	mmap_write_lock(e->mm);
	vma = vma_lookup(e->mm, addr);
	if (vma && vma->vm_start == addr && vma->vm_end == addr + PAGE_SIZE)
		ret = remap_pfn_range(vma, addr, page_to_pfn(page), PAGE_SIZE,
				      vma->vm_page_prot);
	if (!ret)
		pfnmap = vma->vm_flags & VM_PFNMAP;
	mmap_write_unlock(e->mm);
	KUNIT_EXPECT_EQ(test, ret, 0);
	if (ret)
		goto out;
	KUNIT_EXPECT_TRUE(test, pfnmap);

	hmm_e2e_range(e, &e->tm, addr, 1);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 1);
	e->pfns[0] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
out:
	hmm_e2e_end(e);
	__free_page(page);
}

/* Nothing happened between snapshot and check: the snapshot is valid. */
static void hmm_test_e2e_done_unchanged(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	KUNIT_EXPECT_NULL(test, e->range.track.hmm);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), 0);
	hmm_e2e_end(e);
}

/*
 * MADV_DONTNEED of one page between snapshot and check: an invalidation
 * that starts and ends inside the snapshot.  The mirror saw it as a
 * blockable CLEAR covering the page, the snapshot is refused, and a new
 * snapshot shows the page gone.
 */
static void hmm_test_e2e_done_dontneed(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	int syncs;

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	syncs = atomic_read(&e->tm.syncs);

	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_GT(test, atomic_read(&e->tm.syncs), syncs);
	KUNIT_EXPECT_EQ(test, (int)e->tm.last_event, (int)HMM_UPDATE_CLEAR);
	KUNIT_EXPECT_TRUE(test, e->tm.last_blockable);
	KUNIT_EXPECT_LE(test, e->tm.last_start, addr);
	KUNIT_EXPECT_GE(test, e->tm.last_end, addr + PAGE_SIZE);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_NONE);
	hmm_e2e_expect_rw(e, 1);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* Same with munmap(): the mirror sees an UNMAP, the page becomes ERROR. */
static void hmm_test_e2e_done_munmap(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	int syncs;

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	syncs = atomic_read(&e->tm.syncs);

	KUNIT_EXPECT_EQ(test, vm_munmap(addr + PAGE_SIZE, PAGE_SIZE), 0);
	KUNIT_EXPECT_GT(test, atomic_read(&e->tm.syncs), syncs);
	KUNIT_EXPECT_EQ(test, (int)e->tm.last_event, (int)HMM_UPDATE_UNMAP);
	KUNIT_EXPECT_TRUE(test, e->tm.last_blockable);
	KUNIT_EXPECT_LE(test, e->tm.last_start, addr + PAGE_SIZE);
	KUNIT_EXPECT_GE(test, e->tm.last_end, addr + 2 * PAGE_SIZE);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_ERROR);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/**
 * struct hmm_test_holder - holds a mirror's lock from another thread
 * @tm: mirror whose lock is held
 * @held: completed once the lock is held
 *
 * The lock is held by a helper rather than by the case itself: the case
 * enters the invalidate_range_start lockdep map, inside which the sync
 * callback takes the lock, so holding it around that call would be a lock
 * inversion for lockdep even though the callback only trylocks.
 */
struct hmm_test_holder {
	struct hmm_test_mirror	*tm;
	struct completion	held;
};

static int hmm_test_holder_fn(void *data)
{
	struct hmm_test_holder *h = data;

	mutex_lock(&h->tm->lock);
	complete(&h->held);
	while (!kthread_should_stop())
		msleep(20);
	mutex_unlock(&h->tm->lock);
	return 0;
}

/*
 * A non-blockable invalidation of the page at @addr, as the OOM reaper
 * starts one; only a successful start has an end.  Returns the start's
 * result.
 */
static int hmm_e2e_nonblock(struct hmm_e2e *e, unsigned long addr)
{
	struct mmu_notifier_range r;
	int ret;

	mmu_notifier_range_init(&r, MMU_NOTIFY_CLEAR, 0, NULL, e->mm, addr,
				addr + PAGE_SIZE);
	mmap_read_lock(e->mm);
	ret = mmu_notifier_invalidate_range_start_nonblock(&r);
	if (!ret)
		mmu_notifier_invalidate_range_end(&r);
	mmap_read_unlock(e->mm);
	return ret;
}

/*
 * A non-blockable invalidation (as the OOM reaper does) while the driver
 * lock is busy: the callback's trylock fails, the start returns -EAGAIN
 * and the core unwinds it.  The sequence still moved, so an older snapshot
 * is refused; afterwards blockable invalidations reach the mirror and new
 * snapshots work (no invalidation was left open: read_begin() would block).
 */
static void hmm_test_e2e_nonblock(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct hmm_test_holder holder = { .tm = &e->tm };
	struct task_struct *t;
	int syncs, ret;

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	syncs = atomic_read(&e->tm.syncs);

	init_completion(&holder.held);
	t = kthread_run(hmm_test_holder_fn, &holder, "hmm_kunit_hold");
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	wait_for_completion(&holder.held);

	ret = hmm_e2e_nonblock(e, addr);
	kthread_stop(t);

	KUNIT_EXPECT_EQ(test, ret, -EAGAIN);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.eagain), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), syncs);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), syncs + 1);
	KUNIT_EXPECT_TRUE(test, e->tm.last_blockable);
	KUNIT_EXPECT_EQ(test, (int)e->tm.last_event, (int)HMM_UPDATE_CLEAR);

	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_EQ(test, e->pfns[0], HMM_E2E_NONE);
	hmm_e2e_expect_rw(e, 1);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/**
 * struct hmm_test_zapper - thread invalidating an mm in a loop
 * @mm: mm to invalidate, with a reference on its users
 * @addr: page zapped with MADV_DONTNEED
 * @loops: completed MADV_DONTNEED calls
 */
struct hmm_test_zapper {
	struct mm_struct	*mm;
	unsigned long		addr;
	atomic_t		loops;
};

static int hmm_test_zapper_fn(void *data)
{
	struct hmm_test_zapper *z = data;

	kthread_use_mm(z->mm);
	while (!kthread_should_stop()) {
		do_madvise(z->mm, z->addr, PAGE_SIZE, MADV_DONTNEED);
		atomic_inc(&z->loops);
		cond_resched();
	}
	kthread_unuse_mm(z->mm);
	mmput(z->mm);
	return 0;
}

/*
 * hmm_mirror_unregister() is a barrier: with another thread invalidating
 * the mm in a loop and a slow sync callback, once unregister returns no
 * callback is running and none runs again, while the invalidations go on.
 */
static void hmm_test_e2e_unregister_barrier(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_test_zapper z = { .addr = addr };
	struct task_struct *t;
	int i, syncs, in_cb, loops;

	e->tm.delay_us = 2000;
	mmget(e->mm);
	z.mm = e->mm;
	t = kthread_run(hmm_test_zapper_fn, &z, "hmm_kunit_zap");
	if (IS_ERR(t))
		mmput(e->mm);
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));

	for (i = 0; i < 500 && atomic_read(&e->tm.syncs) < 5; i++)
		msleep(20);
	KUNIT_EXPECT_GE(test, atomic_read(&e->tm.syncs), 5);

	hmm_test_mirror_unregister(&e->tm);
	in_cb = atomic_read(&e->tm.in_cb);
	syncs = atomic_read(&e->tm.syncs);
	loops = atomic_read(&z.loops);
	msleep(100);
	KUNIT_EXPECT_EQ(test, in_cb, 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.in_cb), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), syncs);
	/* The zapper kept going: the callbacks would have run. */
	KUNIT_EXPECT_GT(test, atomic_read(&z.loops), loops);
	kthread_stop(t);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), syncs);
	hmm_e2e_end(e);
}

/*
 * The last mmput() runs exit_mmap(): release() runs exactly once and the
 * sync callback is not given HMM_UPDATE_RELEASE.  Unregistering after the
 * exit is allowed and runs nothing more.
 */
static void hmm_test_e2e_release(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_drop_mm(e);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.releases), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.release_events), 0);
	hmm_test_mirror_unregister(&e->tm);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.releases), 1);
	hmm_e2e_end(e);
}

/*
 * Another path invalidating the mm while exit_mmap() releases it: the OOM
 * reaper (not blockable) or reclaim.  exit_mmap() tells the interval
 * notifiers first, whose callbacks run release(), and only then removes
 * the plain ones, whose end still hears what happens meanwhile.
 */
static int hmm_test_late_fn(void *data)
{
	struct hmm_test_mirror *tm = data;
	struct mmu_notifier_range range;
	int syncs = atomic_read(&tm->syncs);

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, NULL,
				tm->late_mm, tm->late_addr,
				tm->late_addr + PAGE_SIZE);
	if (!mmu_notifier_invalidate_range_start_nonblock(&range))
		mmu_notifier_invalidate_range_end(&range);
	mmu_notifier_invalidate_range_start(&range);
	mmu_notifier_invalidate_range_end(&range);
	tm->late_syncs = atomic_read(&tm->syncs) - syncs;
	complete(&tm->late_done);
	return 0;
}

static void hmm_test_release_late(struct hmm_mirror *mirror)
{
	struct hmm_test_mirror *tm = container_of(mirror,
						  struct hmm_test_mirror,
						  mirror);

	atomic_inc(&tm->releases);
	wake_up_process(tm->late_task);
	wait_for_completion(&tm->late_done);
}

static const struct hmm_mirror_ops hmm_test_mirror_ops_late = {
	.release = hmm_test_release_late,
	.sync_cpu_device_pagetables = hmm_test_sync,
};

/*
 * Invalidations that start after the release and end before exit_mmap()
 * removes the plain notifier were never recorded: their end is no error,
 * and the mirror still hears them (the device must let go of the pages).
 */
static void hmm_test_e2e_inval_during_release(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start_ops(test, &hmm_test_mirror_ops_late);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct task_struct *t;

	hmm_e2e_fill(e, addr, 1);
	e->tm.late_mm = e->mm;
	e->tm.late_addr = addr;
	e->tm.late_syncs = -1;	/* the thread did not run */
	t = kthread_create(hmm_test_late_fn, &e->tm, "hmm_kunit_late");
	if (IS_ERR(t))
		hmm_e2e_end(e);
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	get_task_struct(t);
	e->tm.late_task = t;

	hmm_e2e_drop_mm(e);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.releases), 1);
	KUNIT_EXPECT_EQ(test, e->tm.late_syncs, 2);
	if (e->tm.late_syncs < 0)
		kthread_stop(t);	/* never woken */
	put_task_struct(t);
	hmm_e2e_end(e);
}

/**
 * struct hmm_test_held - an invalidation a kthread keeps under way
 * @mm: mm invalidated
 * @addr: page invalidated
 * @started: its start returned
 * @ended: its end returned
 * @release: completed by the case when every end may come
 */
struct hmm_test_held {
	struct mm_struct	*mm;
	unsigned long		addr;
	struct completion	started;
	struct completion	ended;
	struct completion	*release;
};

static int hmm_test_held_fn(void *data)
{
	struct hmm_test_held *h = data;
	struct mmu_notifier_range range;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, NULL, h->mm,
				h->addr, h->addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	complete(&h->started);
	wait_for_completion(h->release);
	mmu_notifier_invalidate_range_end(&range);
	complete(&h->ended);
	return 0;
}

#define HMM_TEST_HELD	(HMM_INVAL_SLOTS + 2)

/*
 * More blockable invalidations under way than the core has slots for, as
 * many threads unmapping at once make: the ones without a slot hold back
 * the walks that overlap them, not every walk of the mm.  Pages 0 to
 * HMM_TEST_HELD - 1 are invalidated, one thread each, in order (the last
 * two find no slot); the page after them is not, nor the one after that.
 */
static void hmm_test_e2e_slots_overflow(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long npages = HMM_TEST_HELD + 2;
	unsigned long addr = hmm_e2e_map(e, npages, PROT_READ | PROT_WRITE);
	unsigned long i, started;
	struct completion release;
	struct hmm_test_held *held;
	struct task_struct *t;

	hmm_e2e_fill(e, addr, npages);
	held = kcalloc(HMM_TEST_HELD, sizeof(*held), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, held);
	init_completion(&release);
	for (started = 0; started < HMM_TEST_HELD; started++) {
		struct hmm_test_held *h = &held[started];

		h->mm = e->mm;
		h->addr = addr + (started << PAGE_SHIFT);
		h->release = &release;
		init_completion(&h->started);
		init_completion(&h->ended);
		t = kthread_run(hmm_test_held_fn, h, "hmm_kunit_held");
		if (IS_ERR(t))
			break;
		wait_for_completion(&h->started);
	}
	KUNIT_EXPECT_EQ(test, started, HMM_TEST_HELD);

	if (started == HMM_TEST_HELD) {
		/* Beyond every invalidation: not held back. */
		hmm_e2e_range(e, &e->tm, addr + (HMM_TEST_HELD << PAGE_SHIFT),
			      2);
		KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
		KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
		/* In a slot, and past the slots: held back. */
		hmm_e2e_range(e, &e->tm, addr, 1);
		KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EBUSY);
		hmm_e2e_range(e, &e->tm,
			      addr + ((HMM_TEST_HELD - 1) << PAGE_SHIFT), 1);
		KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), -EBUSY);
	}

	complete_all(&release);
	for (i = 0; i < started; i++)
		wait_for_completion(&held[i].ended);
	kfree(held);

	/* Every invalidation ended: nothing is held back any more. */
	hmm_e2e_range(e, &e->tm, addr, npages);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/* Without release(), the sync callback gets one blockable RELEASE. */
static void hmm_test_e2e_release_via_sync(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start_ops(test,
					      &hmm_test_mirror_ops_norelease);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_drop_mm(e);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.releases), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.release_events), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.release_nonblock), 0);
	hmm_test_mirror_unregister(&e->tm);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.release_events), 1);
	hmm_e2e_end(e);
}

/*
 * Two mirrors on one mm both see an invalidation; once one is
 * unregistered the other keeps working and the first sees nothing more.
 */
static void hmm_test_e2e_two_mirrors(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	int s1, s2;

	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	hmm_e2e_fill(e, addr, 2);

	hmm_e2e_range(e, &e->tm2, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	s1 = atomic_read(&e->tm.syncs);
	s2 = atomic_read(&e->tm2.syncs);
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), s1 + 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.syncs), s2 + 1);
	KUNIT_EXPECT_EQ(test, (int)e->tm2.last_event, (int)HMM_UPDATE_CLEAR);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm2));

	hmm_test_mirror_unregister(&e->tm2);
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr + PAGE_SIZE, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.syncs), s1 + 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.syncs), s2 + 1);

	hmm_e2e_fill(e, addr, 1);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_NONE);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * Two-phase invalidation: two mirrors whose device invalidation takes
 * 20 ms each.  Both are started before the core waits on either fence
 * (phase one, then phase two), each fence is waited for and put exactly
 * once, and the update only completes once both devices are done.
 */
static void hmm_test_e2e_fence_parallel(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	int waits;
	u64 t0;

	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	hmm_e2e_fill(e, addr, 1);
	e->tm.fence_mode = HMM_TEST_FENCE_TIMER;
	e->tm2.fence_mode = HMM_TEST_FENCE_TIMER;
	e->tm.fence_us = 20000;
	e->tm2.fence_us = 20000;

	waits = atomic_read(&hmm_test_fence_waits);
	t0 = ktime_get_ns();
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_GE(test, ktime_get_ns() - t0, 20ULL * NSEC_PER_MSEC);

	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fences), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fences), 1);
	/* No fence was waited for before the second mirror was called. */
	KUNIT_EXPECT_EQ(test, e->tm.waits_at_sync, waits);
	KUNIT_EXPECT_EQ(test, e->tm2.waits_at_sync, waits);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fence_waits), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_waits), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fence_puts), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_puts), 1);
	KUNIT_EXPECT_TRUE(test, completion_done(&e->tm.fence.done));
	KUNIT_EXPECT_TRUE(test, completion_done(&e->tm2.fence.done));
	hmm_e2e_end(e);
}

/*
 * A non-blockable update (OOM reaper) may not wait: the second mirror
 * hands back a fence that is still pending, so the whole update fails
 * with -EAGAIN.  Nothing is left half-done: the fence was put without a
 * wait, no invalidation stays open (a new snapshot can begin and is
 * valid), the snapshot taken before is refused, and a later blockable
 * update waits for the fence as usual.
 */
static void hmm_test_e2e_fence_nonblock(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	int ret;

	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	e->tm2.fence_mode = HMM_TEST_FENCE_PENDING;

	ret = hmm_e2e_nonblock(e, addr);

	KUNIT_EXPECT_EQ(test, ret, -EAGAIN);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fences), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_waits), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_puts), 1);
	KUNIT_EXPECT_FALSE(test, completion_done(&e->tm2.fence.done));
	KUNIT_EXPECT_FALSE(test, e->tm2.last_blockable);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* read_begin() would block forever had the update been left open. */
	hmm_e2e_range(e, &e->tm, addr, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	hmm_e2e_expect_rw(e, 0);
	hmm_e2e_expect_rw(e, 1);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	e->tm2.fence_mode = HMM_TEST_FENCE_TIMER;
	e->tm2.fence_us = 1000;
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, addr, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fences), 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_waits), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm2.fence_puts), 2);
	KUNIT_EXPECT_TRUE(test, completion_done(&e->tm2.fence.done));
	hmm_e2e_end(e);
}

/* A non-blockable update takes a fence that is already signaled. */
static void hmm_test_e2e_fence_nonblock_signaled(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	int ret;

	hmm_e2e_fill(e, addr, 1);
	e->tm.fence_mode = HMM_TEST_FENCE_SIGNALED;
	ret = hmm_e2e_nonblock(e, addr);

	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fences), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fence_waits), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&e->tm.fence_puts), 1);
	hmm_e2e_end(e);
}

/* ------------------------------------------------------------------------
 * How drivers use HMM: one big fault over memory that needs copy on write,
 * unrelated activity in the same mm, other devices and other mms, the seed
 * API's error handling, critical sections and the retry helper.
 */

/* One core counter (hmm/stats), summed over the CPUs. */
static unsigned long hmm_test_stat(enum hmm_stat_item item)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(hmm_stats.count[item], cpu);
	return sum;
}

/* Entries of e->range among the first @n that are VALID|WRITE, not zero. */
static unsigned long hmm_e2e_count_rw(struct hmm_e2e *e, unsigned long n)
{
	unsigned long i, rw = 0;

	for (i = 0; i < n; i++)
		if ((e->pfns[i] & (HMM_E2E_VALID | HMM_E2E_WRITE)) ==
		    (HMM_E2E_VALID | HMM_E2E_WRITE) &&
		    !is_zero_pfn(hmm_e2e_pfn(e, i)))
			rw++;
	return rw;
}

/**
 * struct hmm_test_async - a call made by another thread of the case
 * @mm: mm the thread uses (a reference on its users is held), or NULL
 * @fn: what the thread does; its result goes to @ret
 * @arg: argument of @fn
 * @addr: address argument of @fn
 * @len: length argument of @fn
 * @ret: result of @fn
 * @done: completed when @fn returned
 *
 * kzalloc()ed and freed by the case once @done completed, so that a case
 * aborted by an ASSERT leaks it rather than free it under the thread.
 */
struct hmm_test_async {
	struct mm_struct	*mm;
	int			(*fn)(struct hmm_test_async *a);
	void			*arg;
	unsigned long		addr;
	unsigned long		len;
	int			ret;
	struct completion	done;
};

static int hmm_test_async_thread(void *data)
{
	struct hmm_test_async *a = data;

	if (a->mm)
		kthread_use_mm(a->mm);
	a->ret = a->fn(a);
	if (a->mm) {
		kthread_unuse_mm(a->mm);
		mmput(a->mm);
	}
	/* All: the case may have waited for it with a timeout already. */
	complete_all(&a->done);
	return 0;
}

/*
 * Run fn(a) in a kthread of its own, in mm's context if mm is set; an error
 * pointer, with nothing left behind, if it cannot start.
 */
static struct hmm_test_async *hmm_test_async_try(struct mm_struct *mm,
						 int (*fn)(struct hmm_test_async *),
						 void *arg, unsigned long addr,
						 unsigned long len)
{
	struct hmm_test_async *a;
	struct task_struct *t;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return ERR_PTR(-ENOMEM);
	a->mm = mm;
	a->fn = fn;
	a->arg = arg;
	a->addr = addr;
	a->len = len;
	init_completion(&a->done);
	if (mm)
		mmget(mm);
	t = kthread_run(hmm_test_async_thread, a, "hmm_kunit_async");
	if (IS_ERR(t)) {
		if (mm)
			mmput(mm);
		kfree(a);
		return ERR_CAST(t);
	}
	return a;
}

/*
 * The same, asserting: for a case that leaves nothing waiting on anything
 * it set up so far if it stops here.
 */
static struct hmm_test_async *hmm_test_async_start(struct kunit *test,
						   struct mm_struct *mm,
						   int (*fn)(struct hmm_test_async *),
						   void *arg, unsigned long addr,
						   unsigned long len)
{
	struct hmm_test_async *a = hmm_test_async_try(mm, fn, arg, addr, len);

	KUNIT_ASSERT_FALSE(test, IS_ERR(a));
	return a;
}

/* Wait for the thread and free it; its result. */
static int hmm_test_async_end(struct hmm_test_async *a)
{
	int ret;

	wait_for_completion(&a->done);
	ret = a->ret;
	kfree(a);
	return ret;
}

static int hmm_test_async_dontneed(struct hmm_test_async *a)
{
	return do_madvise(a->mm, a->addr, a->len, MADV_DONTNEED);
}

static int hmm_test_async_get(struct hmm_test_async *a)
{
	return hmm_e2e_get(a->arg);
}

static int hmm_test_async_unregister(struct hmm_test_async *a)
{
	hmm_test_mirror_unregister(a->arg);
	return 0;
}

/*
 * An invalidation as rmap-based code (reclaim, migration) starts one: no
 * mmap_lock held.  Nothing in the page table changes.
 */
static int hmm_test_raw_inval(struct mm_struct *mm, unsigned long addr,
			      unsigned long len, enum mmu_notifier_event event,
			      void *owner)
{
	struct mmu_notifier_range r;

	mmu_notifier_range_init_owner(&r, event, 0, NULL, mm, addr,
				      addr + len, owner);
	mmu_notifier_invalidate_range_start(&r);
	mmu_notifier_invalidate_range_end(&r);
	return 0;
}

static int hmm_test_async_raw_inval(struct hmm_test_async *a)
{
	return hmm_test_raw_inval(a->mm, a->addr, a->len, MMU_NOTIFY_CLEAR,
				  NULL);
}

/* Wait until @tm handed out @n fences; false after 10 s. */
static bool hmm_test_wait_fences(struct hmm_test_mirror *tm, int n)
{
	int i;

	for (i = 0; i < 500 && atomic_read(&tm->fences) < n; i++)
		msleep(20);
	return atomic_read(&tm->fences) >= n;
}

/*
 * A write request over a PMD's worth of zero pages (memory a process read
 * before the device writes it): every page needs a copy on write fault,
 * each of which invalidates its page.  The faults go by runs, one per page
 * table the range touches, and none of their invalidations fails the walk: the first
 * call succeeds and the result is valid.  Before runs were extended over
 * present ptes this took one -EBUSY per page.
 */
static void hmm_test_e2e_fault_zero_runs(struct kunit *test)
{
	const unsigned long n = HMM_E2E_MAX_PAGES;
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, n, PROT_READ | PROT_WRITE);
	struct hmm_range *range;
	unsigned long runs;

	hmm_e2e_touch_read(e, addr, n);
	range = hmm_e2e_range(e, &e->tm, addr, n);
	range->default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	runs = hmm_test_stat(HMM_STAT_FAULT_RUNS);
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	runs = hmm_test_stat(HMM_STAT_FAULT_RUNS) - runs;
	/* A page table's worth of pages lies in at most two page tables. */
	KUNIT_EXPECT_LE(test, runs, 2UL);
	KUNIT_EXPECT_EQ(test, hmm_e2e_count_rw(e, n), n);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	KUNIT_EXPECT_GE(test, atomic_read(&e->tm.syncs), (int)n);
	hmm_e2e_end(e);
}

/*
 * amdgpu's userptr shape: one interval notifier over the buffer, one
 * hmm_range_fault() call over all of it, -EBUSY retried from
 * mmu_interval_read_begin().  Over zero pages each copy on write moves the
 * notifier's sequence; the walk faults every run before it reports that,
 * so the next call finds nothing left to fault: at most one -EBUSY, where
 * 6.1 takes one per page table plus one.
 */
static void hmm_test_e2e_range_fault_zero(struct kunit *test)
{
	const unsigned long n = HMM_E2E_MAX_PAGES;
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, n, PROT_READ | PROT_WRITE);
	unsigned long *hmm_pfns, i, rw = 0;
	struct mmu_interval_notifier ni;
	struct hmm_range range;
	int ret = -EBUSY, busy = 0;

	hmm_pfns = kunit_kcalloc(test, n, sizeof(*hmm_pfns), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, hmm_pfns);
	hmm_e2e_touch_read(e, addr, n);
	KUNIT_ASSERT_EQ(test, mmu_interval_notifier_insert(&ni, e->mm, addr,
							   n << PAGE_SHIFT,
							   &hmm_test_ni_ops),
			0);
	range = (struct hmm_range) {
		.notifier = &ni,
		.start = addr,
		.end = addr + (n << PAGE_SHIFT),
		.hmm_pfns = hmm_pfns,
		.default_flags = HMM_PFN_FIXED_REQ_FAULT |
				 HMM_PFN_FIXED_REQ_WRITE,
	};
	while (busy <= (int)n) {
		range.notifier_seq = mmu_interval_read_begin(&ni);
		mmap_read_lock(e->mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(e->mm);
		if (ret != -EBUSY)
			break;
		busy++;
	}
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_LE(test, busy, 1);
	KUNIT_EXPECT_FALSE(test, mmu_interval_read_retry(&ni,
							 range.notifier_seq));
	for (i = 0; i < n; i++)
		if ((hmm_pfns[i] & (HMM_PFN_FIXED_VALID | HMM_PFN_FIXED_WRITE)) ==
		    (HMM_PFN_FIXED_VALID | HMM_PFN_FIXED_WRITE) &&
		    !is_zero_pfn(hmm_pfns[i] & ~HMM_PFN_FIXED_FLAGS))
			rw++;
	KUNIT_EXPECT_EQ(test, rw, n);
	mmu_interval_notifier_remove(&ni);
	hmm_e2e_end(e);
}

/* A private mapping of a new shmem file of @npages, read and write. */
static unsigned long hmm_e2e_map_file(struct hmm_e2e *e, unsigned long npages)
{
	struct file *file;
	unsigned long addr;

	file = shmem_file_setup("hmm_kunit", npages << PAGE_SHIFT, 0);
	KUNIT_ASSERT_FALSE(e->test, IS_ERR(file));
	addr = vm_mmap(file, 0, npages << PAGE_SHIFT, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE, 0);
	fput(file);
	KUNIT_ASSERT_FALSE_MSG(e->test, IS_ERR_VALUE(addr),
			       "vm_mmap() failed: %ld", (long)addr);
	return addr;
}

/* How hmm_e2e_private_file_write() asks for write access. */
enum hmm_e2e_request {
	HMM_E2E_REQ_DEFAULT,	/* default_flags */
	HMM_E2E_REQ_PER_ENTRY,	/* each input entry, entry 0 read only */
	HMM_E2E_REQ_MASK,	/* default read, pfn_flags_mask write */
	HMM_E2E_REQ_RANGE_FAULT,	/* hmm_range_fault(), default_flags */
};

/*
 * Map 4 pages of a new shmem file privately, read them with the CPU (the
 * page cache pages are mapped present, read-only, not special), then ask
 * for write access as @how says.  Every entry asked for write must come
 * back writable on a new page, copied on write; entry 0 of the requests
 * that leave it read only keeps its page cache page.
 */
static void hmm_e2e_private_file_write(struct hmm_e2e *e,
				       enum hmm_e2e_request how)
{
	const unsigned long fixed_rw = HMM_PFN_FIXED_VALID |
				       HMM_PFN_FIXED_WRITE;
	const bool read0 = how == HMM_E2E_REQ_PER_ENTRY ||
			   how == HMM_E2E_REQ_MASK;
	unsigned long cache[4], hmm_pfns[4], addr, i, pfn;
	struct kunit *test = e->test;
	struct mmu_interval_notifier ni;
	struct hmm_range range;
	int ret, busy;

	addr = hmm_e2e_map_file(e, 4);
	hmm_e2e_touch_read(e, addr, 4);
	hmm_e2e_range(e, &e->tm, addr, 4);
	KUNIT_ASSERT_EQ(test, hmm_e2e_get(e), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	for (i = 0; i < 4; i++) {
		KUNIT_EXPECT_EQ(test, e->pfns[i] &
				(HMM_E2E_VALID | HMM_E2E_WRITE), HMM_E2E_VALID);
		cache[i] = hmm_e2e_pfn(e, i);
	}

	if (how == HMM_E2E_REQ_RANGE_FAULT) {
		KUNIT_ASSERT_EQ(test,
				mmu_interval_notifier_insert(&ni, e->mm, addr,
							     4 * PAGE_SIZE,
							     &hmm_test_ni_ops),
				0);
		range = (struct hmm_range) {
			.notifier = &ni,
			.start = addr,
			.end = addr + 4 * PAGE_SIZE,
			.hmm_pfns = hmm_pfns,
			.default_flags = HMM_PFN_FIXED_REQ_FAULT |
					 HMM_PFN_FIXED_REQ_WRITE,
		};
		for (busy = 0, ret = -EBUSY; ret == -EBUSY && busy < 8; busy++) {
			range.notifier_seq = mmu_interval_read_begin(&ni);
			mmap_read_lock(e->mm);
			ret = hmm_range_fault(&range);
			mmap_read_unlock(e->mm);
		}
		mmu_interval_notifier_remove(&ni);
		KUNIT_EXPECT_EQ(test, ret, 0);
		for (i = 0; i < 4; i++) {
			pfn = hmm_pfns[i] & ~HMM_PFN_FIXED_FLAGS;
			KUNIT_EXPECT_EQ_MSG(test, hmm_pfns[i] & fixed_rw,
					    fixed_rw, "entry %lu", i);
			KUNIT_EXPECT_NE(test, pfn, cache[i]);
		}
		goto unmap;
	}

	hmm_e2e_range(e, &e->tm, addr, 4);
	switch (how) {
	case HMM_E2E_REQ_DEFAULT:
		e->range.default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
		break;
	case HMM_E2E_REQ_PER_ENTRY:
		e->pfns[0] = HMM_E2E_VALID;
		for (i = 1; i < 4; i++)
			e->pfns[i] = HMM_E2E_VALID | HMM_E2E_WRITE;
		break;
	default:
		e->range.default_flags = HMM_E2E_VALID;
		e->range.pfn_flags_mask = HMM_E2E_WRITE;
		e->pfns[0] = 0;
		for (i = 1; i < 4; i++)
			e->pfns[i] = HMM_E2E_WRITE;
		break;
	}
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), 0);
	for (i = read0 ? 1 : 0; i < 4; i++) {
		hmm_e2e_expect_rw(e, i);
		KUNIT_EXPECT_NE(test, hmm_e2e_pfn(e, i), cache[i]);
	}
	if (read0) {
		KUNIT_EXPECT_EQ(test, e->pfns[0] &
				(HMM_E2E_VALID | HMM_E2E_WRITE), HMM_E2E_VALID);
		KUNIT_EXPECT_EQ(test, hmm_e2e_pfn(e, 0), cache[0]);
	}
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
unmap:
	KUNIT_EXPECT_EQ(test, vm_munmap(addr, 4 * PAGE_SIZE), 0);
}

/*
 * A write request on a present, read-only, non-special pte must break copy
 * on write, not be answered with the read-only page: the zero page tests
 * cannot show it, the zero page being special.  Every way of asking.
 */
static void hmm_test_e2e_fault_private_file(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);

	hmm_e2e_private_file_write(e, HMM_E2E_REQ_DEFAULT);
	hmm_e2e_private_file_write(e, HMM_E2E_REQ_PER_ENTRY);
	hmm_e2e_private_file_write(e, HMM_E2E_REQ_MASK);
	hmm_e2e_private_file_write(e, HMM_E2E_REQ_RANGE_FAULT);
	hmm_e2e_end(e);
}

/*
 * Invalidations of other addresses do not concern a range: another thread
 * unmapping or zapping unrelated memory of the same process fails nothing.
 */
static void hmm_test_e2e_done_unrelated(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long a = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	unsigned long b = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	int syncs;

	hmm_e2e_fill(e, a, 2);
	hmm_e2e_fill(e, b, 2);
	hmm_e2e_range(e, &e->tm, a, 2);
	KUNIT_EXPECT_EQ(test, hmm_e2e_get(e), 0);
	syncs = atomic_read(&e->tm.syncs);
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, b, PAGE_SIZE, MADV_DONTNEED),
			0);
	KUNIT_EXPECT_EQ(test, vm_munmap(b + PAGE_SIZE, PAGE_SIZE), 0);
	/* The mirror did see them. */
	KUNIT_EXPECT_GE(test, atomic_read(&e->tm.syncs), syncs + 2);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * Another device of the process is slow to flush an invalidation of other
 * memory (its fence is pending): a snapshot of this range neither waits for
 * it nor fails because of it.  The snapshot runs in a thread of its own so
 * that a snapshot that waits is caught after a second instead of hanging.
 */
static void hmm_test_e2e_no_wait_unrelated(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long a = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	unsigned long b = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_test_async *zap, *snap;
	bool prompt;

	hmm_e2e_fill(e, a, 2);
	hmm_e2e_fill(e, b, 1);
	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	e->tm2.fence_mode = HMM_TEST_FENCE_PENDING;

	zap = hmm_test_async_start(test, e->mm, hmm_test_async_dontneed,
				   NULL, b, PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_test_wait_fences(&e->tm2, 1));

	hmm_e2e_range(e, &e->tm, a, 2);
	snap = hmm_test_async_try(e->mm, hmm_test_async_get, e, 0, 0);
	if (IS_ERR(snap)) {
		/* Not an assertion: the zap waits for the pending fence. */
		complete_all(&e->tm2.fence.done);
		hmm_test_async_end(zap);
		KUNIT_FAIL(test, "cannot start a thread: %ld", PTR_ERR(snap));
		hmm_e2e_end(e);
		return;
	}
	prompt = wait_for_completion_timeout(&snap->done, HZ);
	KUNIT_EXPECT_TRUE_MSG(test, prompt,
			      "snapshot waited for another range's fence");

	complete_all(&e->tm2.fence.done);
	KUNIT_EXPECT_EQ(test, hmm_test_async_end(zap), 0);
	KUNIT_EXPECT_EQ(test, hmm_test_async_end(snap), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * One device of process A takes 2 s to flush, and another mirror of A is
 * being unregistered meanwhile (it waits for that flush).  Registering and
 * unregistering a mirror of process B must not wait for any of it: no lock
 * is shared between mms.
 */
static void hmm_test_e2e_other_mm_no_wait(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_test_async *zap, *unreg;
	struct hmm_test_mirror *tm3;
	struct mm_struct *mm_b;
	ktime_t t0;
	s64 ms;
	int ret;

	hmm_e2e_fill(e, addr, 1);
	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	/* Process B, made before any thread starts: asserting is safe. */
	tm3 = kunit_kzalloc(test, sizeof(*tm3), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, tm3);
	hmm_test_mirror_init(tm3, &hmm_test_mirror_ops);
	mm_b = mm_alloc();
	KUNIT_ASSERT_NOT_NULL(test, mm_b);
	mm_b->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm_b, &current->signal->rlim[RLIMIT_STACK]);

	e->tm.fence_mode = HMM_TEST_FENCE_TIMER;
	e->tm.fence_us = 2 * USEC_PER_SEC;
	zap = hmm_test_async_try(e->mm, hmm_test_async_dontneed, NULL, addr,
				 PAGE_SIZE);
	if (IS_ERR(zap)) {
		mmput(mm_b);
		KUNIT_FAIL(test, "cannot start a thread: %ld", PTR_ERR(zap));
		hmm_e2e_end(e);
		return;
	}
	KUNIT_EXPECT_TRUE(test, hmm_test_wait_fences(&e->tm, 1));
	unreg = hmm_test_async_try(NULL, hmm_test_async_unregister, &e->tm2,
				   0, 0);
	if (IS_ERR(unreg)) {
		/* Not an assertion: the zap is still running. */
		hmm_test_async_end(zap);
		mmput(mm_b);
		KUNIT_FAIL(test, "cannot start a thread: %ld", PTR_ERR(unreg));
		hmm_e2e_end(e);
		return;
	}
	msleep(50);

	t0 = ktime_get();
	ret = hmm_test_mirror_register(tm3, mm_b);
	hmm_test_mirror_unregister(tm3);
	ms = ktime_ms_delta(ktime_get(), t0);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_LT_MSG(test, ms, 100LL,
			    "register + unregister on another mm took %lld ms",
			    ms);

	KUNIT_EXPECT_EQ(test, hmm_test_async_end(zap), 0);
	hmm_test_async_end(unreg);
	mmput(mm_b);
	hmm_e2e_end(e);
}

/*
 * Reclaim or migration (no mmap_lock held) is invalidating a page and the
 * device takes 2 s to flush it: registering a second mirror of the same mm
 * does not wait for that (it holds the mmap_lock for write meanwhile).
 */
static void hmm_test_e2e_register_no_wait(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_test_async *inval;
	ktime_t t0;
	s64 ms;
	int ret;

	hmm_e2e_fill(e, addr, 1);
	e->tm.fence_mode = HMM_TEST_FENCE_TIMER;
	e->tm.fence_us = 2 * USEC_PER_SEC;
	inval = hmm_test_async_start(test, e->mm, hmm_test_async_raw_inval,
				     NULL, addr, PAGE_SIZE);
	KUNIT_EXPECT_TRUE(test, hmm_test_wait_fences(&e->tm, 1));

	t0 = ktime_get();
	ret = hmm_test_mirror_register(&e->tm2, e->mm);
	ms = ktime_ms_delta(ktime_get(), t0);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_LT_MSG(test, ms, 100LL, "registration took %lld ms", ms);
	hmm_test_async_end(inval);
	hmm_e2e_end(e);
}

/**
 * struct hmm_test_nest - a sync callback that waits for work which
 *	invalidates the same mm, as an eviction worker migrating pages back
 * @trigger: start address of the update whose sync runs the work
 * @victim: mirror another thread unregisters while the callback waits
 * @fired: the work was started
 * @entered: completed when the sync callback starts the work
 * @go: completed by the sync callback to start the work
 * @worker: the worker thread, created beforehand as a driver's is (a
 *	callback may not allocate); ended by the case
 * @completed: the work finished within 5 s
 */
struct hmm_test_nest {
	unsigned long		trigger;
	struct hmm_test_mirror	*victim;
	atomic_t		fired;
	struct completion	entered;
	struct completion	go;
	struct hmm_test_async	*worker;
	bool			completed;
};

static void hmm_test_nest_sync(struct hmm_test_mirror *tm,
			       const struct hmm_update *update)
{
	struct hmm_test_nest *n = tm->nest;

	if (update->start != n->trigger || atomic_xchg(&n->fired, 1))
		return;
	complete(&n->entered);
	/* Let another thread start unregistering a mirror meanwhile. */
	msleep(200);
	complete(&n->go);
	/* A stuck worker gets going once this callback returns. */
	n->completed = wait_for_completion_timeout(&n->worker->done, 5 * HZ);
}

/* The worker: zap a page of the mm once the callback says so. */
static int hmm_test_async_nested_zap(struct hmm_test_async *a)
{
	struct hmm_test_nest *n = a->arg;

	wait_for_completion(&n->go);
	return do_madvise(a->mm, a->addr, a->len, MADV_DONTNEED);
}

/* Unregister the victim once the callback is waiting for its work. */
static int hmm_test_async_unregister_victim(struct hmm_test_async *a)
{
	struct hmm_test_nest *n = a->arg;

	wait_for_completion(&n->entered);
	hmm_test_mirror_unregister(n->victim);
	return 0;
}

/*
 * A sync callback waits for work that zaps another page of the same mm,
 * while another thread unregisters a second mirror (and so waits for the
 * callback).  The work's own invalidation must go through: nothing in the
 * core may make it wait behind the unregistration.
 */
static void hmm_test_e2e_nested_invalidation(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long x = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	unsigned long y = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_test_async *unreg;
	struct hmm_test_nest *n;

	hmm_e2e_fill(e, x, 1);
	hmm_e2e_fill(e, y, 1);
	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	n = kzalloc(sizeof(*n), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, n);
	n->trigger = x;
	n->victim = &e->tm2;
	init_completion(&n->entered);
	init_completion(&n->go);
	n->worker = hmm_test_async_start(test, e->mm,
					 hmm_test_async_nested_zap, n, y,
					 PAGE_SIZE);
	e->tm.nest = n;

	unreg = hmm_test_async_try(NULL, hmm_test_async_unregister_victim,
				   n, 0, 0);
	if (IS_ERR(unreg)) {
		/* Not an assertion: the worker waits for n->go. */
		complete(&n->go);
		hmm_test_async_end(n->worker);
		e->tm.nest = NULL;
		kfree(n);
		KUNIT_FAIL(test, "cannot start a thread: %ld", PTR_ERR(unreg));
		hmm_e2e_end(e);
		return;
	}
	/* The unregistration starts once the callback is running. */
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, x, PAGE_SIZE, MADV_DONTNEED),
			0);
	hmm_test_async_end(unreg);
	complete(&n->go);	/* in case the callback never ran */
	KUNIT_EXPECT_EQ(test, hmm_test_async_end(n->worker), 0);
	KUNIT_EXPECT_TRUE_MSG(test, n->completed,
			      "the callback's work could not invalidate the mm");
	e->tm.nest = NULL;
	kfree(n);
	hmm_e2e_end(e);
}

/*
 * A non-blockable invalidation calls the mirrors inside a non_block_start()
 * section, so that a driver that sleeps there is caught by
 * CONFIG_DEBUG_ATOMIC_SLEEP.
 */
static void hmm_test_e2e_nonblock_section(struct kunit *test)
{
	struct hmm_e2e *e;
	unsigned long addr;

	if (!IS_ENABLED(CONFIG_DEBUG_ATOMIC_SLEEP))
		kunit_skip(test, "needs CONFIG_DEBUG_ATOMIC_SLEEP");
	e = hmm_e2e_start(test);
	addr = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	hmm_e2e_fill(e, addr, 1);
	KUNIT_EXPECT_EQ(test, hmm_e2e_nonblock(e, addr), 0);
	KUNIT_EXPECT_GT(test, e->tm.non_block, 0);
	hmm_e2e_end(e);
}

/*
 * hmm_vma_range_begin() / hmm_vma_range_done(): a critical section for
 * device mappings not built from a walk (exclusive access, migration).
 * Only invalidations of its range count, and with an owner set, that
 * owner's own exclusive grants and migrations do not.
 */
static void hmm_test_e2e_critical_section(struct kunit *test)
{
	static int owner, other;
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long a = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	unsigned long b = hmm_e2e_map(e, 1, PROT_READ | PROT_WRITE);
	struct hmm_range *r = &e->range;

	hmm_e2e_fill(e, a, 2);
	hmm_e2e_fill(e, b, 1);
	memset(r, 0, sizeof(*r));
	r->mirror = &e->tm.mirror;
	r->owner = &owner;
	r->start = a;
	r->end = a + 2 * PAGE_SIZE;

	/* Somewhere else. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, b, PAGE_SIZE, MADV_DONTNEED),
			0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* The owner's own exclusive grant and migration. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	hmm_test_raw_inval(e->mm, a, PAGE_SIZE, MMU_NOTIFY_EXCLUSIVE, &owner);
	hmm_test_raw_inval(e->mm, a + PAGE_SIZE, PAGE_SIZE,
			   MMU_NOTIFY_MIGRATE, &owner);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));

	/* Another owner's exclusive grant. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	hmm_test_raw_inval(e->mm, a, PAGE_SIZE, MMU_NOTIFY_EXCLUSIVE, &other);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* A zap, even one that names the owner. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	hmm_test_raw_inval(e->mm, a, PAGE_SIZE, MMU_NOTIFY_CLEAR, &owner);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* MADV_DONTNEED of the range, as in the exclusive race. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	KUNIT_EXPECT_EQ(test, do_madvise(e->mm, a + PAGE_SIZE, PAGE_SIZE,
					 MADV_DONTNEED), 0);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* Done twice: the second says nothing is valid. */
	KUNIT_ASSERT_EQ(test, hmm_vma_range_begin(r), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* Bad ranges change nothing. */
	r->end = r->start;
	KUNIT_EXPECT_EQ(test, hmm_vma_range_begin(r), -EINVAL);
	r->end = a + 1;
	KUNIT_EXPECT_EQ(test, hmm_vma_range_begin(r), -EINVAL);
	KUNIT_EXPECT_NULL(test, r->track.hmm);
	hmm_e2e_end(e);
}

static int hmm_test_async_section(struct hmm_test_async *a)
{
	return hmm_vma_range_begin(a->arg);
}

/*
 * A critical section that begins while an invalidation of its range is
 * under way (a MADV_DONTNEED between its start and its end) waits for it
 * to end: that invalidation touched nothing, the section was not listed
 * yet, and the pages the driver is about to take may be zapped after its
 * callback ran.  The exclusive race of hmm-tests (device exclusive access
 * against MADV_DONTNEED) lost pages that way on arm64 when the section
 * only looked for invalidations from its end.
 */
static void hmm_test_e2e_section_waits(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long a = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct hmm_range *r = &e->range;
	struct mmu_notifier_range inv;
	struct hmm_test_async *t;
	unsigned long waits;
	int i;

	memset(r, 0, sizeof(*r));
	r->mirror = &e->tm.mirror;
	r->start = a;
	r->end = a + 2 * PAGE_SIZE;

	waits = hmm_test_stat(HMM_STAT_RANGE_WAITS);
	mmu_notifier_range_init(&inv, MMU_NOTIFY_CLEAR, 0, NULL, e->mm,
				a + PAGE_SIZE, a + 2 * PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&inv);
	t = hmm_test_async_try(NULL, hmm_test_async_section, r, 0, 0);
	if (IS_ERR(t)) {
		/* Not an assertion: the invalidation must end first. */
		mmu_notifier_invalidate_range_end(&inv);
		KUNIT_FAIL(test, "cannot start a thread: %ld", PTR_ERR(t));
		hmm_e2e_end(e);
		return;
	}
	/* Until the section sleeps on the invalidation, or opens anyway. */
	for (i = 0; i < 250 && !completion_done(&t->done) &&
	     hmm_test_stat(HMM_STAT_RANGE_WAITS) == waits; i++)
		msleep(20);
	KUNIT_EXPECT_FALSE(test, completion_done(&t->done));
	KUNIT_EXPECT_GT(test, hmm_test_stat(HMM_STAT_RANGE_WAITS), waits);
	mmu_notifier_invalidate_range_end(&inv);
	KUNIT_EXPECT_EQ(test, hmm_test_async_end(t), 0);
	KUNIT_EXPECT_TRUE(test, hmm_e2e_done(e, &e->tm));
	hmm_e2e_end(e);
}

/*
 * The seed's documented loop calls hmm_vma_range_done() after an error, and
 * its hmm_vma_fault() marks the entry that failed with
 * values[HMM_PFN_ERROR].  So: the failing entry says ERROR, and done on a
 * range that is not in flight returns false, quietly.
 */
static void hmm_test_e2e_seed_errors(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long ro = hmm_e2e_map(e, 2, PROT_READ);
	unsigned long x = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct hmm_range never = {};

	/* Write access requested in a read-only VMA. */
	hmm_e2e_range(e, &e->tm, ro, 2);
	e->pfns[0] = HMM_E2E_VALID;
	e->pfns[1] = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EPERM);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_ERROR);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* A request in a hole. */
	hmm_e2e_fill(e, x, 1);
	KUNIT_ASSERT_EQ(test, vm_munmap(x + PAGE_SIZE, PAGE_SIZE), 0);
	hmm_e2e_range(e, &e->tm, x, 2);
	e->pfns[0] = HMM_E2E_VALID;
	e->pfns[1] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_e2e_fault(e), -EFAULT);
	KUNIT_EXPECT_EQ(test, e->pfns[1], HMM_E2E_ERROR);
	KUNIT_EXPECT_FALSE(test, hmm_e2e_done(e, &e->tm));

	/* Never started. */
	KUNIT_EXPECT_FALSE(test, hmm_vma_range_done(&never));
	hmm_e2e_end(e);
}

/*
 * hmm_vma_fault_lock(): the whole driver loop.  It returns with the driver
 * lock held and valid entries; requests in the entries (which a retry
 * would lose) and mirrors without lock callbacks are refused.
 */
static void hmm_test_e2e_fault_lock(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 4, PROT_READ | PROT_WRITE);
	struct hmm_range *range;

	hmm_e2e_touch_read(e, addr, 4);
	range = hmm_e2e_range(e, &e->tm, addr, 4);
	range->default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	KUNIT_ASSERT_EQ(test, hmm_vma_fault_lock(range, true, 0), 0);
	KUNIT_EXPECT_TRUE(test, mutex_is_locked(&e->tm.lock));
	KUNIT_EXPECT_EQ(test, hmm_e2e_count_rw(e, 4), 4UL);
	KUNIT_EXPECT_NULL(test, range->track.hmm);
	mutex_unlock(&e->tm.lock);

	range = hmm_e2e_range(e, &e->tm, addr, 4);
	e->pfns[0] = HMM_E2E_VALID;
	KUNIT_EXPECT_EQ(test, hmm_vma_fault_lock(range, true, 0), -EINVAL);

	hmm_test_mirror_init(&e->tm2, &hmm_test_mirror_ops_norelease);
	KUNIT_ASSERT_EQ(test, hmm_test_mirror_register(&e->tm2, e->mm), 0);
	range = hmm_e2e_range(e, &e->tm2, addr, 4);
	KUNIT_EXPECT_EQ(test, hmm_vma_fault_lock(range, false, 0), -EINVAL);
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&e->tm2.lock));
	hmm_e2e_end(e);
}

/*
 * Nothing progresses: every time the driver is about to validate, the CPU
 * unmaps a page of the range again, and a snapshot has nothing to fault.
 * hmm_vma_fault_lock() gives up with -EBUSY once the timeout passed
 * without progress, and not much later.
 */
static void hmm_test_e2e_fault_lock_gives_up(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	ktime_t t0;
	s64 ms;
	int ret;

	hmm_e2e_fill(e, addr, 2);
	hmm_e2e_range(e, &e->tm, addr, 2);
	e->tm.zap_mm = e->mm;
	e->tm.zap_addr = addr + PAGE_SIZE;
	e->tm.zap_until = jiffies + 60 * HZ;
	t0 = ktime_get();
	ret = hmm_vma_fault_lock(&e->range, false, 200);
	ms = ktime_ms_delta(ktime_get(), t0);
	e->tm.zap_mm = NULL;
	KUNIT_EXPECT_EQ(test, ret, -EBUSY);
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&e->tm.lock));
	KUNIT_EXPECT_GE(test, ms, 190LL);
	KUNIT_EXPECT_LT(test, ms, 2000LL);
	KUNIT_EXPECT_GE(test, atomic_read(&e->tm.lock_calls), 2);
	hmm_e2e_end(e);
}

/*
 * Progress: the CPU unmaps a page of the range at every validation for
 * 600 ms, three times the timeout, but every attempt faults it back in.
 * hmm_vma_fault_lock() keeps going and succeeds once the unmapping stops;
 * a loop with a fixed deadline would have given up.
 */
static void hmm_test_e2e_fault_lock_progress(struct kunit *test)
{
	struct hmm_e2e *e = hmm_e2e_start(test);
	unsigned long addr = hmm_e2e_map(e, 2, PROT_READ | PROT_WRITE);
	struct hmm_range *range;
	ktime_t t0;
	s64 ms;
	int ret;

	hmm_e2e_fill(e, addr, 2);
	range = hmm_e2e_range(e, &e->tm, addr, 2);
	range->default_flags = HMM_E2E_VALID | HMM_E2E_WRITE;
	e->tm.zap_mm = e->mm;
	e->tm.zap_addr = addr + PAGE_SIZE;
	e->tm.zap_until = jiffies + msecs_to_jiffies(600);
	t0 = ktime_get();
	ret = hmm_vma_fault_lock(range, true, 200);
	ms = ktime_ms_delta(ktime_get(), t0);
	e->tm.zap_mm = NULL;
	KUNIT_ASSERT_EQ(test, ret, 0);
	KUNIT_EXPECT_TRUE(test, mutex_is_locked(&e->tm.lock));
	KUNIT_EXPECT_EQ(test, hmm_e2e_count_rw(e, 2), 2UL);
	mutex_unlock(&e->tm.lock);
	KUNIT_EXPECT_GE(test, ms, 500LL);
	KUNIT_EXPECT_GT(test, atomic_read(&e->tm.lock_calls), 3);
	hmm_e2e_end(e);
}

static struct kunit_case hmm_test_cases[] = {
	KUNIT_CASE_PARAM(hmm_test_pfn_roundtrip, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_pfn_roundtrip_all_flags, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_values_never_decode, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_values_lack_valid, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_invalid_not_decoded, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_order_roundtrip, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_order_replace, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_flag_bits, hmm_enc_gen_params),
	KUNIT_CASE_PARAM(hmm_test_page_roundtrip, hmm_enc_gen_params),
	KUNIT_CASE(hmm_test_fixed_abi),
	KUNIT_CASE(hmm_test_fixed_helpers),
	KUNIT_CASE(hmm_test_e2e_none),
	KUNIT_CASE(hmm_test_e2e_zero_page),
	KUNIT_CASE(hmm_test_e2e_populated),
	KUNIT_CASE(hmm_test_e2e_read_only),
	KUNIT_CASE(hmm_test_e2e_prot_none),
	KUNIT_CASE(hmm_test_e2e_write_only),
	KUNIT_CASE(hmm_test_e2e_hole),
	KUNIT_CASE(hmm_test_e2e_adjacent_vmas),
	KUNIT_CASE(hmm_test_e2e_no_vma),
	KUNIT_CASE(hmm_test_e2e_vma_walk),
	KUNIT_CASE(hmm_test_e2e_pud_boundary),
	KUNIT_CASE(hmm_test_e2e_fault_read),
	KUNIT_CASE(hmm_test_e2e_fault_write),
	KUNIT_CASE(hmm_test_e2e_fault_cow),
	KUNIT_CASE(hmm_test_e2e_fault_private_file),
	KUNIT_CASE(hmm_test_e2e_req_per_entry),
	KUNIT_CASE(hmm_test_e2e_req_default),
	KUNIT_CASE(hmm_test_e2e_req_mask),
	KUNIT_CASE(hmm_test_e2e_get_ignores_input),
	KUNIT_CASE(hmm_test_e2e_invalid_range),
	KUNIT_CASE(hmm_test_e2e_thp),
	KUNIT_CASE(hmm_test_pfn_span),
	KUNIT_CASE(hmm_test_e2e_sparse_thp),
	KUNIT_CASE(hmm_test_e2e_sparse_fault),
	KUNIT_CASE(hmm_test_e2e_mode_invalid),
	KUNIT_CASE(hmm_test_e2e_pfnmap),
	KUNIT_CASE(hmm_test_e2e_done_unchanged),
	KUNIT_CASE(hmm_test_e2e_done_dontneed),
	KUNIT_CASE(hmm_test_e2e_done_munmap),
	KUNIT_CASE(hmm_test_e2e_nonblock),
	KUNIT_CASE(hmm_test_e2e_unregister_barrier),
	KUNIT_CASE(hmm_test_e2e_release),
	KUNIT_CASE(hmm_test_e2e_inval_during_release),
	KUNIT_CASE(hmm_test_e2e_slots_overflow),
	KUNIT_CASE(hmm_test_e2e_release_via_sync),
	KUNIT_CASE(hmm_test_e2e_two_mirrors),
	KUNIT_CASE(hmm_test_e2e_fence_parallel),
	KUNIT_CASE(hmm_test_e2e_fence_nonblock),
	KUNIT_CASE(hmm_test_e2e_fence_nonblock_signaled),
	KUNIT_CASE(hmm_test_e2e_fault_zero_runs),
	KUNIT_CASE(hmm_test_e2e_range_fault_zero),
	KUNIT_CASE(hmm_test_e2e_done_unrelated),
	KUNIT_CASE(hmm_test_e2e_no_wait_unrelated),
	KUNIT_CASE(hmm_test_e2e_other_mm_no_wait),
	KUNIT_CASE(hmm_test_e2e_register_no_wait),
	KUNIT_CASE(hmm_test_e2e_nested_invalidation),
	KUNIT_CASE(hmm_test_e2e_nonblock_section),
	KUNIT_CASE(hmm_test_e2e_critical_section),
	KUNIT_CASE(hmm_test_e2e_section_waits),
	KUNIT_CASE(hmm_test_e2e_seed_errors),
	KUNIT_CASE(hmm_test_e2e_fault_lock),
	KUNIT_CASE(hmm_test_e2e_fault_lock_gives_up),
	KUNIT_CASE(hmm_test_e2e_fault_lock_progress),
	{}
};

static struct kunit_suite hmm_test_suite = {
	.name = "hmm",
	.test_cases = hmm_test_cases,
};

kunit_test_suite(hmm_test_suite);

MODULE_DESCRIPTION("KUnit tests for HMM pfn encoding, snapshots and mirrors");
MODULE_LICENSE("GPL");
