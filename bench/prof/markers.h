/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Profile markers of make profile, for bench/hmm-bench.c and
 * bench/hmm-drivers.c.  What is profiled runs between a call to
 * prof_start() and one to prof_stop(): a "ret" each, on a page of their
 * own at a fixed address that nothing else maps, which the QEMU plugin
 * bench/prof/tbcount.c watches for (its default start and stop
 * addresses).  x86_64 only, as the bench is.
 */
#ifndef HMM_BENCH_PROF_MARKERS_H
#define HMM_BENCH_PROF_MARKERS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PROF_ADDR	0x5a5a00000000UL
#define PROF_STOP_OFF	0x40
#define PROF_PAGE	4096UL

static void (*prof_start)(void);
static void (*prof_stop)(void);

/*
 * Map the marker page: 0, or -1 once the failure was reported as the TAP
 * test @test, the only one of the run.
 */
static int prof_map(const char *test)
{
	unsigned char *code;

	code = mmap((void *)PROF_ADDR, PROF_PAGE,
		    PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (code == MAP_FAILED) {
		printf("# profile markers at %#lx: %s\nnot ok 1 %s\n1..1\n",
		       PROF_ADDR, strerror(errno), test);
		return -1;
	}
	memset(code, 0xc3, PROF_PAGE);	/* ret */
	prof_start = (void (*)(void))code;
	prof_stop = (void (*)(void))(code + PROF_STOP_OFF);
	return 0;
}

#endif /* HMM_BENCH_PROF_MARKERS_H */
