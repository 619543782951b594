// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit suite "hmm": the driver encoded pfn helpers of include/linux/hmm.h,
 * the fixed format of hmm_range_fault(), and the sequence rules that decide
 * whether hmm_vma_range_done() accepts a snapshot.  The cases need no mm.
 */

#define pr_fmt(fmt) "hmm_kunit: " fmt

#include <kunit/test.h>
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/slab.h>

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
 * Sequence cases.  A mirror's interval notifier holds invalidate_seq; a
 * snapshot records the value mmu_interval_read_begin() returned, and the
 * mirror's invalidate callback stores the odd cur_seq with
 * mmu_interval_set_seq() before calling the driver.  These cases drive
 * that state by hand, as the callback would.
 */
#define HMM_TEST_SEQ	0x1000UL

static void hmm_test_seq_init(struct mmu_interval_notifier *mni,
			      struct hmm_range *range)
{
	memset(mni, 0, sizeof(*mni));
	memset(range, 0, sizeof(*range));
	/* Not invalidating: the notifier holds the last odd seq - 1. */
	mni->invalidate_seq = HMM_TEST_SEQ;
	range->notifier = mni;
	range->notifier_seq = mni->invalidate_seq;	/* read_begin() */
}

static void hmm_test_done_no_invalidation(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	KUNIT_EXPECT_TRUE(test, hmm_vma_range_done(&range));
}

static void hmm_test_done_invalidation_inside(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	/* Starts after the snapshot began ... */
	mmu_interval_set_seq(&mni, HMM_TEST_SEQ + 1);
	/* ... and ends before it is checked: nothing is undone at the end. */
	KUNIT_EXPECT_FALSE(test, hmm_vma_range_done(&range));
}

static void hmm_test_done_invalidation_in_progress(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	/*
	 * An invalidation of the mm had started but not yet reached this
	 * notifier when read_begin() ran, so read_begin() did not wait.  Its
	 * callback runs during the snapshot and must fail it.
	 */
	mmu_interval_set_seq(&mni, HMM_TEST_SEQ + 3);
	KUNIT_EXPECT_FALSE(test, hmm_vma_range_done(&range));
}

static void hmm_test_done_invalidation_before(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	/* Finished before the snapshot: read_begin() returns the new seq. */
	mmu_interval_set_seq(&mni, HMM_TEST_SEQ + 1);
	range.notifier_seq = mni.invalidate_seq;
	KUNIT_EXPECT_TRUE(test, hmm_vma_range_done(&range));
}

static void hmm_test_done_failed_invalidation(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	/*
	 * A non-blockable invalidation whose driver callback returned
	 * -EAGAIN still advanced the sequence: the snapshot is dropped.
	 */
	mmu_interval_set_seq(&mni, HMM_TEST_SEQ + 1);
	KUNIT_EXPECT_FALSE(test, hmm_vma_range_done(&range));
}

static void hmm_test_done_two_snapshots(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range old, new;

	hmm_test_seq_init(&mni, &old);
	mmu_interval_set_seq(&mni, HMM_TEST_SEQ + 1);
	/* A snapshot begun after the invalidation is not affected by it. */
	memset(&new, 0, sizeof(new));
	new.notifier = &mni;
	new.notifier_seq = mni.invalidate_seq;
	KUNIT_EXPECT_TRUE(test, hmm_vma_range_done(&new));
	KUNIT_EXPECT_FALSE(test, hmm_vma_range_done(&old));
}

static void hmm_test_done_finishes_range(struct kunit *test)
{
	struct mmu_interval_notifier mni;
	struct hmm_range range;

	hmm_test_seq_init(&mni, &range);
	KUNIT_EXPECT_TRUE(test, hmm_vma_range_done(&range));
	/* Poisoned: a second hmm_vma_range_done() would be caught. */
	KUNIT_EXPECT_NULL(test, range.notifier);
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
	KUNIT_CASE(hmm_test_done_no_invalidation),
	KUNIT_CASE(hmm_test_done_invalidation_inside),
	KUNIT_CASE(hmm_test_done_invalidation_in_progress),
	KUNIT_CASE(hmm_test_done_invalidation_before),
	KUNIT_CASE(hmm_test_done_failed_invalidation),
	KUNIT_CASE(hmm_test_done_two_snapshots),
	KUNIT_CASE(hmm_test_done_finishes_range),
	{}
};

static struct kunit_suite hmm_test_suite = {
	.name = "hmm",
	.test_cases = hmm_test_cases,
};

kunit_test_suite(hmm_test_suite);

MODULE_DESCRIPTION("KUnit tests for HMM pfn encoding and snapshot validity");
MODULE_LICENSE("GPL");
