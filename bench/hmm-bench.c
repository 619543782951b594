// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-bench: time the HMM paths of the test_hmm device and of the walker.
 *
 * One static binary for the pristine base and for the HMM series: it only
 * uses the test_hmm commands both kernels have (READ, WRITE, MIGRATE_TO_DEV,
 * MIGRATE_TO_SYS, SNAPSHOT), compiled against the base's uapi header, and
 * the hmm_walk_bench debugfs file (bench/kmod) for the in-kernel walker.
 *
 * Output is TAP, one test per metric, each preceded by a comment line
 *   # HMMB {"m": NAME, "mib": SIZE, "unit": UNIT, "v": [samples], ...}
 * that scripts/bench.py collects.  Every sample is one timed iteration
 * after an untimed warm-up; the host takes medians.
 *
 * Two rows need the series' inval_latency_us parameter of test_hmm and
 * are skipped on the base: N mirrors waited for together, and a snapshot on
 * one device beside another device's slow flush of a different range.
 *
 * usage: hmm-bench [-s MiB,MiB,...] [-b MiB] [-i ITERS] [-d DEVICE]
 *                  [-P METRIC]
 *   -s  sizes of the snapshot and walker metrics (default 4,64)
 *   -b  largest size of the read, write, migrate and munmap metrics
 *       (default 64)
 *   -i  timed iterations per metric (default 9, at least 7)
 *   -P  profile METRIC (one of read_pop, read_empty, write_fresh,
 *       write_zero, write_cow, mig_to_dev, mig_to_sys, munmap_plain,
 *       munmap_mirrored) at the sizes of -s up to -b: run only that
 *       metric, with the profile markers around the timed part of each
 *       sample (make profile: scripts/bench.sh, bench/prof/tbcount.c)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <test_hmm_uapi.h>
#include "kmod/hmm_walk_bench_uapi.h"
#include "prof/markers.h"

#define PAGE		4096UL
#define HPAGE		(2UL << 20)
#define MIB		(1UL << 20)
#define MAX_SIZES	8
#define MAX_ITERS	HWB_MAX_ITERS
#define INVAL_PARAM	"/sys/module/test_hmm/parameters/inval_latency_us"
#define INVAL_US	1000
#define INVAL_MIB	4
#define INVAL_MAX_FDS	4
#define FLUSH_US	20000
#define FLUSH_MIB	4
/*
 * Pages one timed sample of a snapshot or walker metric covers at least:
 * smaller ranges are walked several times per sample so that the cost of
 * reading the clock (a system call and an HPET read under TCG) does not
 * land on their per-page figure.
 */
#define REP_PAGES	16384UL
#define FLOOR_CALLS	256

/*
 * With -P the timed part of every sample of the metric runs between the
 * profile markers (prof/markers.h); the warm-up iteration stays outside,
 * as it does for the samples.
 */
static const char *prof_metric;

/* Does this run measure @name?  All metrics but with -P. */
static int want(const char *name)
{
	return !prof_metric || !strcmp(name, prof_metric);
}

/* Open (@start) or close the profile window of sample @it of @name. */
static void prof_mark(const char *name, int it, int start)
{
	if (prof_start && it >= 0 && !strcmp(name, prof_metric))
		(start ? prof_start : prof_stop)();
}

static const char *dev_path = "/dev/hmm_dmirror0";
static unsigned long sizes[MAX_SIZES] = { 4, 64 };
static int nsizes = 2;
static unsigned long big_max = 64;
static int iters = 9;
static int dev_fd = -1;
static int kwalk_fd = -1;
static int ntests;

enum kind { K_4K, K_THP, K_EMPTY };
static const char *const kind_name[] = { "4k", "thp", "empty" };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Direct compaction and reclaim stalls so far (/proc/vmstat): a metric
 * whose allocations stall spends its time in the page allocator, not in
 * the code it means to time.
 */
static long long vm_stalls(void)
{
	char key[64];
	long long val, sum = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fscanf(f, "%63s %lld", key, &val) == 2)
		if (!strcmp(key, "compact_stall") ||
		    !strncmp(key, "allocstall_", 11))
			sum += val;
	fclose(f);
	return sum;
}

static long long stall_mark;

/* TAP result of one metric, with its samples on the comment line before. */
static void emit(const char *name, unsigned long mib, const char *unit,
		 const double *v, int n, const char *fmt, ...)
{
	char extra[512] = "";
	long long stalls;
	va_list ap;
	int i;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(extra, sizeof(extra), fmt, ap);
		va_end(ap);
	}
	printf("# HMMB {\"m\": \"%s\", \"mib\": %lu, \"unit\": \"%s\", \"v\": [",
	       name, mib, unit);
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", v[i]);
	stalls = vm_stalls();
	printf("]%s%s, \"stalls\": %lld}\n", extra[0] ? ", " : "", extra,
	       stalls - stall_mark);
	stall_mark = stalls;
	printf("ok %d bench.%s.%luM\n", ++ntests, name, mib);
	fflush(stdout);
}

static void fail(const char *name, unsigned long mib, const char *what,
		 int err)
{
	printf("# %s %luM: %s: %s\n", name, mib, what, strerror(err));
	printf("not ok %d bench.%s.%luM\n", ++ntests, name, mib);
	fflush(stdout);
}

static void skip(const char *name, unsigned long mib, const char *why)
{
	printf("ok %d bench.%s.%luM # SKIP %s\n", ++ntests, name, mib, why);
	fflush(stdout);
}

/* An anonymous private mapping of @size at a 2 MiB aligned address. */
static void *map_region(size_t size, enum kind kind)
{
	char *raw, *p;
	size_t head;

	raw = mmap(NULL, size + HPAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	head = p - raw;
	if (head)
		munmap(raw, head);
	munmap(p + size, HPAGE - head);
	madvise(p, size, kind == K_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p;
}

/* Write every page so each one is a private anonymous page. */
static void populate(char *p, size_t size)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		p[off] = (char)(off / PAGE) | 1;
}

static int dmirror(int fd, unsigned long req, void *addr, void *ptr,
		   unsigned long npages, uint64_t *cpages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret && errno == EINTR);
	if (ret)
		return errno;
	if (cpages)
		*cpages = cmd.cpages;
	return 0;
}

/* Calls per timed sample, capped at what the walker module accepts. */
static unsigned int reps_for(unsigned long npages)
{
	unsigned long reps = (REP_PAGES + npages - 1) / npages;

	return reps > HWB_MAX_REPS ? HWB_MAX_REPS : reps;
}

/* ------------------------------------------------------------------ */

/* HMM_DMIRROR_SNAPSHOT of a region, ns per page. */
static void bench_snapshot(char *p, size_t size, enum kind kind)
{
	unsigned long npages = size / PAGE, mib = size / MIB, i, huge = 0;
	unsigned int r, reps = reps_for(npages);
	unsigned char *prot = malloc(npages);
	char name[32];
	double v[MAX_ITERS];
	uint64_t t0, cpages;
	int it, err = 0;

	snprintf(name, sizeof(name), "snap_%s", kind_name[kind]);
	if (!prot) {
		fail(name, mib, "malloc", ENOMEM);
		return;
	}
	memset(prot, 0, npages);
	for (it = -1; it < iters && !err; it++) {
		t0 = now_ns();
		for (r = 0; r < reps && !err; r++) {
			err = dmirror(dev_fd, HMM_DMIRROR_SNAPSHOT, p, prot,
				      npages, &cpages);
			if (!err && cpages != npages)
				err = EIO;
		}
		if (it >= 0)
			v[it] = (double)(now_ns() - t0) / ((double)npages * reps);
	}
	if (err) {
		fail(name, mib, "HMM_DMIRROR_SNAPSHOT", err);
		free(prot);
		return;
	}
	for (i = 0; i < npages; i++)
		huge += !!(prot[i] & HMM_DMIRROR_PROT_PMD);
	emit(name, mib, "ns/page", v, iters,
	     "\"huge_pct\": %.1f, \"reps\": %u", 100.0 * huge / npages, reps);
	free(prot);
}

/* Metric name prefix of each HWB_API_* walker. */
static const char *const api_name[] = {
	[HWB_API_NATIVE] = "kwalk",
	[HWB_API_RANGE_FAULT] = "kfault",
	[HWB_API_SPARSE] = "ksparse",
};

/* The in-kernel walker over the same region, ns per page. */
static void bench_kwalk(char *p, size_t size, enum kind kind, unsigned int api)
{
	static const char *const part[] = { "walk", "begin", "done", "clock" };
	static const int slot[] = { HWB_T_WALK, HWB_T_BEGIN, HWB_T_DONE,
				    HWB_T_CLOCK };
	unsigned long npages = size / PAGE, mib = size / MIB;
	uint64_t ns[MAX_ITERS * HWB_T_N];
	double v[MAX_ITERS], per;
	struct hwb_run run = {
		.addr = (uintptr_t)p,
		.npages = npages,
		.iters = iters,
		.api = api,
		.ns = (uintptr_t)ns,
		.reps = reps_for(npages),
	};
	char name[32];
	unsigned int k;
	int i, ret;

	/* Below 1 MiB: the fixed cost of one walk, ns per call. */
	if (!mib)
		snprintf(name, sizeof(name), "%s_call", api_name[api]);
	else
		snprintf(name, sizeof(name), "%s_%s", api_name[api],
			 kind_name[kind]);
	if (kwalk_fd < 0) {
		skip(name, mib, "no hmm_walk_bench module");
		return;
	}
	ret = ioctl(kwalk_fd, HWB_RUN, &run);
	if (ret && errno == EOPNOTSUPP) {
		skip(name, mib, "walker mode not in this kernel");
		return;
	}
	if (ret) {
		fail(name, mib, "HWB_RUN", errno);
		return;
	}
	/*
	 * The breakdown goes on comment lines as samples of their own: the
	 * walk in ns/page, the others in ns per snapshot or clock read.
	 */
	for (k = 0; k < sizeof(part) / sizeof(part[0]); k++) {
		per = slot[k] == HWB_T_WALK ? (double)npages * run.reps : 1;
		printf("# HMMB {\"m\": \"%s.%s\", \"mib\": %lu, \"unit\": \"%s\", \"info\": 1, \"v\": [",
		       name, part[k], mib,
		       slot[k] == HWB_T_WALK ? "ns/page" : "ns");
		for (i = 0; i < iters; i++)
			printf("%s%.3f", i ? ", " : "",
			       (double)ns[i * HWB_T_N + slot[k]] / per);
		printf("]}\n");
	}
	for (i = 0; i < iters; i++)
		v[i] = (double)ns[i * HWB_T_N + HWB_T_TOTAL] /
		       ((double)npages * run.reps);
	emit(name, mib, "ns/page", v, iters,
	     "\"api\": \"%s\", \"valid_pct\": %.1f, \"huge_pct\": %.1f, \"retries\": %llu, \"reps\": %u",
	     run.used == HWB_API_RANGE_FAULT ? "hmm_range_fault" :
					       "hmm_vma_get_pfns",
	     100.0 * run.valid / npages, 100.0 * run.huge / npages,
	     (unsigned long long)run.retries, run.reps);
}

/*
 * Fixed costs, ns per call, each the mean of FLOOR_CALLS calls:
 *   clock      reading the clock the samples are timed with;
 *   snap_null  HMM_DMIRROR_SNAPSHOT of 0 pages, refused with EINVAL by both
 *              test_hmm modules once the command is copied in: the system
 *              call, the file and the command, no HMM;
 *   snap_call  HMM_DMIRROR_SNAPSHOT of one populated page: the fixed cost
 *              of a snapshot (the above, set-up, locks, validation) that the
 *              per-page figures of small sizes include;
 *   kwalk_call, kfault_call  the same for the walker alone (bench/kmod).
 */
enum floor { F_CLOCK, F_NULL, F_CALL };

static int floor_call(enum floor f, char *page)
{
	unsigned char prot;
	int err;

	switch (f) {
	case F_CLOCK:
		return now_ns() ? 0 : EIO;
	case F_NULL:
		err = dmirror(dev_fd, HMM_DMIRROR_SNAPSHOT, page, &prot, 0,
			      NULL);
		return err == EINVAL ? 0 : err ? err : EIO;
	default:
		return dmirror(dev_fd, HMM_DMIRROR_SNAPSHOT, page, &prot, 1,
			       NULL);
	}
}

static void bench_floors(void)
{
	static const char *const names[] = { "clock", "snap_null", "snap_call" };
	double v[MAX_ITERS];
	enum floor f;
	uint64_t t0;
	int it, c, err;
	char *p;

	p = map_region(PAGE, K_4K);
	if (!p) {
		fail("snap_call", 0, "mmap", errno);
		return;
	}
	populate(p, PAGE);
	for (f = F_CLOCK; f <= F_CALL; f++) {
		err = 0;
		for (it = -1; it < iters && !err; it++) {
			t0 = now_ns();
			for (c = 0; c < FLOOR_CALLS && !err; c++)
				err = floor_call(f, p);
			if (it >= 0)
				v[it] = (double)(now_ns() - t0) / FLOOR_CALLS;
		}
		if (err)
			fail(names[f], 0, "HMM_DMIRROR_SNAPSHOT", err);
		else
			emit(names[f], 0, "ns", v, iters, NULL);
	}
	bench_kwalk(p, PAGE, K_4K, HWB_API_NATIVE);
	bench_kwalk(p, PAGE, K_4K, HWB_API_RANGE_FAULT);
	munmap(p, PAGE);
}

static void bench_snapshots(unsigned long mib)
{
	size_t size = mib * MIB;
	enum kind kind;
	char *p;

	for (kind = K_4K; kind <= K_EMPTY; kind++) {
		p = map_region(size, kind);
		if (!p) {
			fail(kind_name[kind], mib, "mmap", errno);
			continue;
		}
		if (kind != K_EMPTY)
			populate(p, size);
		bench_snapshot(p, size, kind);
		bench_kwalk(p, size, kind, HWB_API_NATIVE);
		if (kind == K_4K)
			bench_kwalk(p, size, kind, HWB_API_RANGE_FAULT);
		if (kind == K_THP)
			bench_kwalk(p, size, kind, HWB_API_SPARSE);
		munmap(p, size);
	}
}

/*
 * HMM_DMIRROR_READ: the device faults the range in through HMM and copies
 * it.  Before each iteration the device mapping is invalidated: by an
 * mprotect() round trip for populated memory (the pages stay), by
 * MADV_DONTNEED for empty memory (the pages go).
 */
static void bench_read(unsigned long mib, int populated, char *buf)
{
	size_t size = mib * MIB;
	unsigned long npages = size / PAGE;
	const char *name = populated ? "read_pop" : "read_empty";
	double v[MAX_ITERS];
	uint64_t t0, cpages;
	int it, err;
	char *p;

	p = map_region(size, K_4K);
	if (!p) {
		fail(name, mib, "mmap", errno);
		return;
	}
	if (populated)
		populate(p, size);
	for (it = -1; it < iters; it++) {
		if (populated) {
			mprotect(p, size, PROT_READ);
			mprotect(p, size, PROT_READ | PROT_WRITE);
		} else {
			madvise(p, size, MADV_DONTNEED);
		}
		t0 = now_ns();
		prof_mark(name, it, 1);
		err = dmirror(dev_fd, HMM_DMIRROR_READ, p, buf, npages,
			      &cpages);
		prof_mark(name, it, 0);
		if (!err && cpages != npages)
			err = EIO;
		if (err) {
			fail(name, mib, "HMM_DMIRROR_READ", err);
			munmap(p, size);
			return;
		}
		if (it >= 0)
			v[it] = (double)(now_ns() - t0) / npages;
	}
	emit(name, mib, "ns/page", v, iters, NULL);
	munmap(p, size);
}

/*
 * A device write over a whole mapping in one command, the way a GPU writes
 * into a userptr buffer, for each state the CPU may have left it in:
 * never touched (every page is allocated by the fault), read by the CPU
 * first (the zero page is mapped, and the write must replace it) or
 * populated and then shared with a forked child (every page is copied on
 * write).  A new mapping per iteration; the child lives until the write is
 * done.
 */
enum wstate { W_FRESH, W_ZERO, W_COW };
static const char *const wstate_name[] = { "write_fresh", "write_zero",
					   "write_cow" };

static void bench_write(unsigned long mib, enum wstate state, char *buf)
{
	const char *name = wstate_name[state];
	size_t size = mib * MIB, off;
	unsigned long npages = size / PAGE;
	double v[MAX_ITERS];
	volatile char sink = 0;
	uint64_t t0, t1, cpages;
	int it, err, pipefd[2];
	pid_t child;
	char c;
	char *p;

	for (it = -1; it < iters; it++) {
		p = map_region(size, K_4K);
		if (!p) {
			fail(name, mib, "mmap", errno);
			return;
		}
		child = -1;
		if (state == W_ZERO) {
			for (off = 0; off < size; off += PAGE)
				sink += p[off];
		} else if (state == W_COW) {
			populate(p, size);
			if (pipe(pipefd)) {
				fail(name, mib, "pipe", errno);
				munmap(p, size);
				return;
			}
			child = fork();
			if (child < 0) {
				fail(name, mib, "fork", errno);
				munmap(p, size);
				return;
			}
			if (!child) {
				/* Hold the pages shared until the parent is done. */
				close(pipefd[1]);
				_exit(read(pipefd[0], &c, 1) < 0);
			}
			close(pipefd[0]);
		}
		t0 = now_ns();
		prof_mark(name, it, 1);
		err = dmirror(dev_fd, HMM_DMIRROR_WRITE, p, buf, npages,
			      &cpages);
		prof_mark(name, it, 0);
		t1 = now_ns();
		if (!err && cpages != npages)
			err = EIO;
		/* The device wrote what buf holds, wherever the CPU looks. */
		if (!err && (p[0] != buf[0] || p[size - PAGE] != buf[size - PAGE]))
			err = EIO;
		if (child > 0) {
			close(pipefd[1]);
			waitpid(child, NULL, 0);
		}
		munmap(p, size);
		if (err) {
			fail(name, mib, "HMM_DMIRROR_WRITE", err);
			return;
		}
		if (it >= 0)
			v[it] = (double)(t1 - t0) / npages;
	}
	(void)sink;
	emit(name, mib, "ns/page", v, iters, NULL);
}

/* Migration of populated 4 KiB pages to device memory and back. */
static void bench_migrate(unsigned long mib, char *buf)
{
	size_t size = mib * MIB;
	unsigned long npages = size / PAGE;
	double to_dev[MAX_ITERS], to_sys[MAX_ITERS];
	uint64_t t0, t1, cpages;
	int it, err;
	char *p;

	p = map_region(size, K_4K);
	if (!p) {
		fail("migrate", mib, "mmap", errno);
		return;
	}
	populate(p, size);
	for (it = -1; it < iters; it++) {
		t0 = now_ns();
		prof_mark("mig_to_dev", it, 1);
		err = dmirror(dev_fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
			      npages, &cpages);
		prof_mark("mig_to_dev", it, 0);
		if (!err && cpages != npages)
			err = EIO;
		if (err) {
			fail("mig_to_dev", mib, "MIGRATE_TO_DEV", err);
			goto out;
		}
		t1 = now_ns();
		prof_mark("mig_to_sys", it, 1);
		err = dmirror(dev_fd, HMM_DMIRROR_MIGRATE_TO_SYS, p, buf,
			      npages, &cpages);
		prof_mark("mig_to_sys", it, 0);
		if (!err && cpages != npages)
			err = EIO;
		if (err) {
			fail("mig_to_sys", mib, "MIGRATE_TO_SYS", err);
			goto out;
		}
		if (it >= 0) {
			to_dev[it] = (double)(t1 - t0) / npages;
			to_sys[it] = (double)(now_ns() - t1) / npages;
		}
	}
	emit("mig_to_dev", mib, "ns/page", to_dev, iters, NULL);
	emit("mig_to_sys", mib, "ns/page", to_sys, iters, NULL);
out:
	munmap(p, size);
}

/*
 * munmap() of a populated range, timed, with the range read by the devices
 * of @fds first (mirrored) or not (@nfds == 0).  A sample is the mean of
 * @reps munmaps, each of a new range.  Returns 0 and fills @v[iters] with
 * ns per @scale, or an errno.
 */
static int time_munmap(const char *name, unsigned long mib, const int *fds,
		       int nfds, char *buf, double *v, double scale,
		       unsigned int reps)
{
	size_t size = mib * MIB;
	unsigned long npages = size / PAGE;
	unsigned int r;
	uint64_t t0, sum, cpages;
	int it, i, err;
	char *p;

	for (it = -1; it < iters; it++) {
		for (r = 0, sum = 0; r < reps; r++) {
			p = map_region(size, K_4K);
			if (!p)
				return errno;
			populate(p, size);
			for (i = 0; i < nfds; i++) {
				err = dmirror(fds[i], HMM_DMIRROR_READ, p, buf,
					      npages, &cpages);
				if (!err && cpages != npages)
					err = EIO;
				if (err) {
					munmap(p, size);
					return err;
				}
			}
			t0 = now_ns();
			prof_mark(name, it, 1);
			munmap(p, size);
			prof_mark(name, it, 0);
			sum += now_ns() - t0;
		}
		if (it >= 0)
			v[it] = (double)sum / reps / scale;
	}
	return 0;
}

/*
 * A single munmap of a small range takes a millisecond or two, which one
 * interruption on the host can double: like a snapshot sample, a munmap
 * sample covers REP_PAGES (16 munmaps of 4 MiB).
 */
static void bench_munmap(unsigned long mib, char *buf)
{
	unsigned int reps = reps_for(mib * MIB / PAGE);
	double v[MAX_ITERS];
	int err;

	if (want("munmap_plain")) {
		err = time_munmap("munmap_plain", mib, NULL, 0, buf, v,
				  mib * MIB / PAGE, reps);
		if (err)
			fail("munmap_plain", mib, "munmap", err);
		else
			emit("munmap_plain", mib, "ns/page", v, iters, NULL);
	}
	if (want("munmap_mirrored")) {
		err = time_munmap("munmap_mirrored", mib, &dev_fd, 1, buf, v,
				  mib * MIB / PAGE, reps);
		if (err)
			fail("munmap_mirrored", mib, "munmap", err);
		else
			emit("munmap_mirrored", mib, "ns/page", v, iters,
			     NULL);
	}
}

static int param_rw(const char *val, char *old, size_t oldlen)
{
	int fd, n;

	fd = open(INVAL_PARAM, O_RDWR);
	if (fd < 0)
		return errno;
	if (old) {
		n = read(fd, old, oldlen - 1);
		old[n > 0 ? n : 0] = '\0';
		lseek(fd, 0, SEEK_SET);
	}
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? errno : 0;
}

/*
 * Multi-device invalidation (the series only): with every mirror taking
 * inval_latency_us to complete an invalidation, munmap of a range that N
 * mirrors read costs about one latency if they are waited for together,
 * N latencies if one after the other.  Runs last: it closes dev_fd.
 */
static void bench_inval(char *buf)
{
	static const int ns[] = { 1, 4 };
	static const int lat[] = { INVAL_US, 0 };
	int fds[INVAL_MAX_FDS], n, i, k, l, err;
	double v[MAX_ITERS];
	char old[32], val[32], name[32];

	if (access(INVAL_PARAM, F_OK)) {
		for (k = 0; k < 2; k++) {
			snprintf(name, sizeof(name), "inval_n%d", ns[k]);
			skip(name, INVAL_MIB, "no inval_latency_us parameter");
		}
		return;
	}
	/* Exactly N mirrors: the main one would be an extra, idle, mirror. */
	close(dev_fd);
	dev_fd = -1;
	old[0] = '\0';
	/*
	 * With the latency, then without: the difference is the time spent
	 * waiting for the devices, apart from the CPU work of N mirrors.
	 */
	for (l = 0; l < 2; l++) {
		snprintf(val, sizeof(val), "%d", lat[l]);
		err = param_rw(val, l ? NULL : old, sizeof(old));
		for (k = 0; k < 2; k++) {
			n = ns[k];
			snprintf(name, sizeof(name), "inval%s_n%d",
				 lat[l] ? "" : "0", n);
			if (err) {
				fail(name, INVAL_MIB, "set inval_latency_us",
				     err);
				continue;
			}
			for (i = 0; i < n; i++) {
				fds[i] = open(dev_path, O_RDWR);
				if (fds[i] < 0) {
					err = errno;
					break;
				}
			}
			if (i == n)
				err = time_munmap(name, INVAL_MIB, fds, n, buf,
						  v, 1e6, 1);
			while (i--)
				close(fds[i]);
			if (err)
				fail(name, INVAL_MIB, "munmap", err);
			else
				emit(name, INVAL_MIB, "ms", v, iters,
				     "\"latency_us\": %d", lat[l]);
			err = 0;
		}
	}
	param_rw(old[0] ? old : "0", NULL, 0);
}

/* munmap() of @p, timed, in a thread of its own. */
struct unmapper {
	char *p;
	size_t size;
	uint64_t start;		/* __atomic */
	uint64_t end;		/* __atomic */
};

static void *unmapper_fn(void *data)
{
	struct unmapper *u = data;
	uint64_t t0 = now_ns();

	__atomic_store_n(&u->start, t0, __ATOMIC_RELEASE);
	munmap(u->p, u->size);
	__atomic_store_n(&u->end, now_ns(), __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Two devices of one process (the series only): device 0 read range X and
 * takes FLUSH_US to flush an invalidation out of its TLBs; another thread
 * munmaps X.  Meanwhile device 1 snapshots range Y, which nothing
 * invalidates: does it wait for device 0's flush?  Each sample is the
 * slowest snapshot of Y started while the munmap was in flight, against
 * the median of the same snapshots with nothing in flight (flush_quiet).
 * 6.1's mmu_interval_read_begin() waits for any invalidation of the mm.
 */
static void bench_beside_flush(char *buf)
{
	size_t size = FLUSH_MIB * MIB;
	unsigned long npages = size / PAGE;
	double quiet[MAX_ITERS], beside[MAX_ITERS], unmap_min = 0;
	unsigned char *prot = malloc(npages);
	char old[32] = "", val[32], *y = NULL;
	int fd0 = -1, fd1 = -1, it, err = 0;
	unsigned long during = 0;
	const char *what = "";
	uint64_t cpages;

	if (access(INVAL_PARAM, F_OK)) {
		skip("flush_quiet", FLUSH_MIB, "no inval_latency_us parameter");
		skip("flush_beside", FLUSH_MIB, "no inval_latency_us parameter");
		free(prot);
		return;
	}
	fd0 = open("/dev/hmm_dmirror0", O_RDWR);
	fd1 = open("/dev/hmm_dmirror1", O_RDWR);
	y = map_region(size, K_4K);
	if (!prot || fd0 < 0 || fd1 < 0 || !y) {
		err = errno ? errno : ENOMEM;
		what = "set up";
		goto out;
	}
	populate(y, size);
	err = dmirror(fd1, HMM_DMIRROR_SNAPSHOT, y, prot, npages, &cpages);
	if (err) {
		what = "snapshot";
		goto out;
	}
	/* Without anything in flight: the cost of one snapshot of Y. */
	for (it = 0; it < iters && !err; it++) {
		uint64_t t0 = now_ns();

		err = dmirror(fd1, HMM_DMIRROR_SNAPSHOT, y, prot, npages,
			      &cpages);
		quiet[it] = (now_ns() - t0) / 1e6;
	}
	if (err) {
		what = "snapshot";
		goto out;
	}
	snprintf(val, sizeof(val), "%d", FLUSH_US);
	err = param_rw(val, old, sizeof(old));
	if (err) {
		what = "set inval_latency_us";
		goto out;
	}
	for (it = 0; it < iters && !err; it++) {
		struct unmapper u = { .size = size };
		double worst = 0, ms;
		pthread_t t;

		u.p = map_region(size, K_4K);
		if (!u.p) {
			err = errno;
			what = "mmap";
			break;
		}
		populate(u.p, size);
		err = dmirror(fd0, HMM_DMIRROR_READ, u.p, buf, npages, &cpages);
		if (err || cpages != npages) {
			munmap(u.p, size);
			err = err ? err : EIO;
			what = "device 0 read";
			break;
		}
		err = pthread_create(&t, NULL, unmapper_fn, &u);
		if (err) {
			munmap(u.p, size);
			what = "pthread_create";
			break;
		}
		while (!__atomic_load_n(&u.start, __ATOMIC_ACQUIRE))
			sched_yield();
		while (!err && !__atomic_load_n(&u.end, __ATOMIC_ACQUIRE)) {
			uint64_t t0 = now_ns();

			err = dmirror(fd1, HMM_DMIRROR_SNAPSHOT, y, prot,
				      npages, &cpages);
			ms = (now_ns() - t0) / 1e6;
			/* Only snapshots that ran beside the flush, whole. */
			if (__atomic_load_n(&u.end, __ATOMIC_ACQUIRE))
				break;
			during++;
			if (ms > worst)
				worst = ms;
		}
		pthread_join(t, NULL);
		if (err) {
			what = "snapshot";
			break;
		}
		beside[it] = worst;
		ms = (u.end - u.start) / 1e6;
		if (!it || ms < unmap_min)
			unmap_min = ms;
		/* The flush must have been in flight, or nothing was measured. */
		if (ms < FLUSH_US / 1000.0) {
			err = EIO;
			what = "munmap took less than the device's flush";
		}
	}
	param_rw(old[0] ? old : "0", NULL, 0);
	if (!err && during < (unsigned long)iters) {
		err = EIO;
		what = "too few snapshots while the flush was in flight";
	}
out:
	if (err) {
		fail("flush_quiet", FLUSH_MIB, what, err);
		fail("flush_beside", FLUSH_MIB, what, err);
	} else {
		emit("flush_quiet", FLUSH_MIB, "ms", quiet, iters, NULL);
		emit("flush_beside", FLUSH_MIB, "ms", beside, iters,
		     "\"snapshots\": %lu, \"munmap_min_ms\": %.1f", during,
		     unmap_min);
	}
	if (y)
		munmap(y, size);
	if (fd1 >= 0)
		close(fd1);
	if (fd0 >= 0)
		close(fd0);
	free(prot);
}

static int parse_sizes(char *s)
{
	char *tok;

	nsizes = 0;
	for (tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (nsizes == MAX_SIZES)
			return -1;
		sizes[nsizes] = strtoul(tok, NULL, 10);
		if (!sizes[nsizes] || sizes[nsizes] % 2)
			return -1;
		nsizes++;
	}
	return nsizes ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned long maxbig = 0;
	enum wstate w;
	char *buf;
	int opt, k;

	while ((opt = getopt(argc, argv, "s:b:i:d:P:")) != -1) {
		switch (opt) {
		case 's':
			if (parse_sizes(optarg))
				goto usage;
			break;
		case 'b':
			big_max = strtoul(optarg, NULL, 10);
			break;
		case 'i':
			iters = atoi(optarg);
			break;
		case 'd':
			dev_path = optarg;
			break;
		case 'P':
			prof_metric = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (iters < 7 || iters > MAX_ITERS)
		goto usage;

	printf("TAP version 13\n");
	stall_mark = vm_stalls();
	dev_fd = open(dev_path, O_RDWR);
	if (dev_fd < 0) {
		printf("# open %s: %s\nnot ok 1 bench.open\n1..1\n", dev_path,
		       strerror(errno));
		return 1;
	}
	kwalk_fd = open("/sys/kernel/debug/hmm_walk_bench", O_RDWR);
	if (kwalk_fd < 0)
		printf("# no hmm_walk_bench: %s\n", strerror(errno));

	if (prof_metric) {
		if (prof_map("bench.profile"))
			return 1;
	} else {
		bench_floors();
	}
	for (k = 0; k < nsizes; k++) {
		if (!prof_metric)
			bench_snapshots(sizes[k]);
		if (sizes[k] <= big_max && sizes[k] > maxbig)
			maxbig = sizes[k];
	}

	/* Bounce buffer of the device commands, faulted in once. */
	if (maxbig < INVAL_MIB)
		maxbig = INVAL_MIB;
	buf = map_region(maxbig * MIB, K_4K);
	if (!buf) {
		printf("# mmap buffer: %s\n", strerror(errno));
		return 1;
	}
	populate(buf, maxbig * MIB);

	for (k = 0; k < nsizes; k++) {
		if (sizes[k] > big_max)
			continue;
		if (want("read_pop"))
			bench_read(sizes[k], 1, buf);
		if (want("read_empty"))
			bench_read(sizes[k], 0, buf);
		for (w = W_FRESH; w <= W_COW; w++)
			if (want(wstate_name[w]))
				bench_write(sizes[k], w, buf);
		if (want("mig_to_dev") || want("mig_to_sys"))
			bench_migrate(sizes[k], buf);
		bench_munmap(sizes[k], buf);
	}
	if (!prof_metric) {
		bench_beside_flush(buf);
		bench_inval(buf);
	}
	if (!ntests) {
		printf("# -P %s: no such metric\nnot ok 1 bench.profile\n",
		       prof_metric);
		ntests = 1;
	}

	printf("1..%d\n", ntests);
	return 0;

usage:
	fprintf(stderr, "usage: %s [-s MiB,...] [-b MiB] [-i ITERS(7..%d)] [-d DEV]\n",
		argv[0], MAX_ITERS);
	return 2;
}
