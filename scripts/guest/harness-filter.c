// SPDX-License-Identifier: GPL-2.0
/*
 * Runs a kselftest_harness program, unmodified, with only the tests named in
 * $HMMH_FILTER (comma separated, "fixture.variant.test" or "fixture.test").
 * 6.1's harness has no filter option of its own.
 *
 * Built as: gcc -DHMMH_SOURCE='"path/to/hmm-tests.c"' harness-filter.c
 * The program's main() is renamed, its registered fixture, variant and test
 * lists are pruned, then it runs.  A name that matches nothing is an error,
 * so a typo cannot pass as an empty, green run.
 *
 * $HMMH_TIMEOUT, when set, replaces every test's timeout (seconds).  Only
 * the pristine THP always baseline uses it: its six expected failures loop
 * in their teardown until the harness kills them, 30 s each by default.
 */
#define main hmmh_harness_main
#include HMMH_SOURCE
#undef main

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hmmh_wanted(const char *filter, const char *name)
{
	size_t len = strlen(name);
	const char *p = filter;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && !strncmp(p, name, n))
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Keep only the items of a harness list whose keep[] entry is set. */
#define HMMH_PRUNE(head, type, keep)					\
	do {								\
		type *item_, *next_, *last_ = NULL;			\
		int i_ = 0;						\
									\
		for (item_ = (head), (head) = NULL; item_; item_ = next_, i_++) { \
			next_ = item_->next;				\
			if (!(keep)[i_])				\
				continue;				\
			item_->next = NULL;				\
			if (last_)					\
				last_->next = item_;			\
			else						\
				(head) = item_;				\
			item_->prev = last_ ? last_ : item_;		\
			last_ = item_;					\
		}							\
		if (head)						\
			(head)->prev = last_;				\
	} while (0)

static int hmmh_filter(const char *filter)
{
	struct __fixture_variant_metadata none = { .name = "" };
	struct __fixture_metadata *f;
	int found = 0;

	for (f = __fixture_list; f; f = f->next) {
		struct __fixture_variant_metadata *v;
		struct __test_metadata *t;
		char keep_v[256] = { 0 }, keep_t[1024] = { 0 };
		int iv, it;

		for (v = f->variant ?: &none, iv = 0; v; v = v->next, iv++) {
			for (t = f->tests, it = 0; t; t = t->next, it++) {
				char name[512];

				snprintf(name, sizeof(name), "%s.%s%s%s", f->name,
					 v->name, v->name[0] ? "." : "", t->name);
				if (iv < 256 && it < 1024 && hmmh_wanted(filter, name)) {
					keep_v[iv] = keep_t[it] = 1;
					found++;
				}
			}
		}
		HMMH_PRUNE(f->tests, struct __test_metadata, keep_t);
		if (f->variant)
			HMMH_PRUNE(f->variant, struct __fixture_variant_metadata, keep_v);
	}
	return found;
}

/* Every remaining test gets this timeout; false if it is not a number. */
static int hmmh_timeout(const char *arg)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	char *end;
	long secs = strtol(arg, &end, 10);

	if (*end || secs < 1 || secs > 3600)
		return 0;
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout = secs;
	return 1;
}

int main(int argc, char **argv)
{
	const char *filter = getenv("HMMH_FILTER");
	const char *timeout = getenv("HMMH_TIMEOUT");

	if (filter && *filter && !hmmh_filter(filter)) {
		printf("TAP version 13\n1..1\nnot ok 1 filter # no test matches '%s'\n",
		       filter);
		return 1;
	}
	if (timeout && *timeout && !hmmh_timeout(timeout)) {
		printf("TAP version 13\n1..1\nnot ok 1 timeout # not 1 to 3600 seconds: '%s'\n",
		       timeout);
		return 1;
	}
	return hmmh_harness_main(argc, argv);
}
