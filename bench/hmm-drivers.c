// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-drivers: HMM called the way drivers call it, on memory in the states
 * drivers meet, with the retries counted (bench/kmod/hmm_driver_bench.c).
 *
 * For each memory state, a fresh anonymous mapping of -m MiB:
 *   fresh   never touched;
 *   zero    read by the CPU first (the zero page is mapped);
 *   cow     written, then shared with a forked child that sleeps
 * one write request over all of it through
 *   range   hmm_range_fault() in one call (amdgpu userptr, RDMA ODP),
 *   mirror  hmm_vma_fault() with the seed's retry loop (the series),
 *   lock    hmm_vma_fault_lock() (the series, where present).
 * Then "churn": -n snapshots of a 4 MiB range, each validated under the
 * driver lock, while another thread munmaps and maps unrelated memory.
 *
 * Output: TAP, each metric preceded by
 *   # HMMB {"m": NAME, "mib": SIZE, "unit": "ms", "v": [ms], "retries": N, ...}
 * as bench/hmm-bench does.
 *
 * With -P ROW (drv_write_zero_range, ...) only that write row runs, each of
 * its requests between the profile markers (prof/markers.h, make profile).
 *
 * usage: hmm-drivers [-m MiB] [-n SNAPSHOTS] [-r REPEATS] [-P ROW]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kmod/hmm_driver_bench_uapi.h"
#include "prof/markers.h"

#define PAGE		4096UL
#define MIB		(1UL << 20)
#define CHURN_MIB	4
#define CHURN_LOOPS	500

static int hdb_fd = -1;
static int ntests;
static unsigned long mib = 64;
static unsigned long nsnaps = 2000;
static int repeats = 3;
static const char *prof_row;

enum state { FRESH, ZERO, COW, NSTATES };
static const char *const state_name[] = { "fresh", "zero", "cow" };
static const char *const mode_name[] = { "range", "mirror", "lock" };

static char *map_state(size_t size, enum state st, pid_t *child)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char sink;
	size_t off;

	*child = 0;
	if (p == MAP_FAILED)
		return NULL;
	/* 4 KiB pages, as userptr buffers malloc()ed by applications. */
	madvise(p, size, MADV_NOHUGEPAGE);
	if (st == ZERO)
		for (off = 0; off < size; off += PAGE)
			sink = p[off];
	if (st == COW) {
		memset(p, 0x5a, size);
		*child = fork();
		if (*child == 0) {
			pause();
			_exit(0);
		}
	}
	(void)sink;
	return p;
}

static void unmap_state(char *p, size_t size, pid_t child)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	munmap(p, size);
}

static int hdb(struct hdb_run *r)
{
	int ret;

	do {
		ret = ioctl(hdb_fd, HDB_RUN, r);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}

static void emit(const char *name, unsigned long size_mib, const double *v,
		 int n, unsigned long long retries, unsigned long long ebusy,
		 unsigned long long invalid)
{
	int i;

	printf("# HMMB {\"m\": \"%s\", \"mib\": %lu, \"unit\": \"ms\", \"v\": [",
	       name, size_mib);
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", v[i]);
	printf("], \"retries\": %llu, \"ebusy\": %llu, \"invalid\": %llu}\n",
	       retries, ebusy, invalid);
	printf("ok %d drivers.%s.%luM\n", ++ntests, name, size_mib);
	fflush(stdout);
}

static void fail(const char *name, unsigned long size_mib, const char *what,
		 int err)
{
	printf("# %s %luM: %s: %s\n", name, size_mib, what, strerror(err));
	printf("not ok %d drivers.%s.%luM\n", ++ntests, name, size_mib);
	fflush(stdout);
}

static void write_case(enum state st, int mode, unsigned int have)
{
	size_t size = mib * MIB;
	unsigned long long retries = 0, ebusy = 0, invalid = 0;
	double v[16];
	char name[64];
	int i, ret = 0;

	snprintf(name, sizeof(name), "drv_write_%s_%s", state_name[st],
		 mode_name[mode]);
	if (prof_row && strcmp(name, prof_row))
		return;
	if ((mode == HDB_MIRROR_FAULT && !(have & HDB_HAVE_MIRROR)) ||
	    (mode == HDB_MIRROR_LOCK && !(have & HDB_HAVE_LOCK))) {
		printf("ok %d drivers.%s.%luM # SKIP not in this kernel\n",
		       ++ntests, name, mib);
		return;
	}
	for (i = 0; i < repeats && i < 16; i++) {
		struct hdb_run r = { 0 };
		pid_t child;
		char *p = map_state(size, st, &child);

		if (!p) {
			fail(name, mib, "mmap", errno);
			return;
		}
		r.addr = (uintptr_t)p;
		r.npages = size / PAGE;
		r.mode = mode;
		r.write = 1;
		if (prof_row)
			prof_start();
		ret = hdb(&r);
		if (prof_row)
			prof_stop();
		unmap_state(p, size, child);
		printf("# %s: %.1f ms, %llu -EBUSY, %llu invalid, %llu/%llu writable, ret %d\n",
		       name, r.ns / 1e6, (unsigned long long)r.ebusy,
		       (unsigned long long)r.invalid,
		       (unsigned long long)r.writable,
		       (unsigned long long)r.npages, ret);
		if (ret) {
			fail(name, mib, "HDB_RUN", -ret);
			return;
		}
		if (r.writable != r.npages) {
			fail(name, mib, "not all writable", EIO);
			return;
		}
		v[i] = r.ns / 1e6;
		ebusy += r.ebusy;
		invalid += r.invalid;
		retries += r.ebusy + r.invalid;
	}
	emit(name, mib, v, i, retries, ebusy, invalid);
}

struct churn {
	volatile bool stop;
	unsigned long loops;
};

/*
 * munmap + mmap of unrelated memory, as another thread of the app does.
 * Shared, so that it never merges with the range snapshotted: merging and
 * splitting private VMAs that share a PMD makes 6.1 invalidate that whole
 * PMD (vma_adjust_trans_huge()), on any kernel.
 */
static void *churn_fn(void *data)
{
	struct churn *c = data;

	while (!c->stop) {
		char *q = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (q == MAP_FAILED)
			break;
		memset(q, 1, 64 * PAGE);
		madvise(q, 32 * PAGE, MADV_DONTNEED);
		munmap(q, 64 * PAGE);
		c->loops++;
	}
	return NULL;
}

static void churn_case(void)
{
	size_t size = CHURN_MIB * MIB;
	unsigned long long ns = 0, ebusy = 0, invalid = 0;
	struct churn c = { 0 };
	struct hdb_run r = { 0 };
	unsigned long done = 0;
	pthread_t t;
	double v[1];
	char *p;
	int ret;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fail("drv_snap_churn", CHURN_MIB, "mmap", errno);
		return;
	}
	madvise(p, size, MADV_NOHUGEPAGE);
	memset(p, 3, size);
	r.addr = (uintptr_t)p;
	r.npages = size / PAGE;
	r.mode = HDB_SNAPSHOTS;
	if (pthread_create(&t, NULL, churn_fn, &c)) {
		fail("drv_snap_churn", CHURN_MIB, "pthread_create", errno);
		return;
	}
	/*
	 * Batches of 100 until both the snapshots and the churn (which may
	 * share one CPU with them) have done their share.
	 */
	r.count = 100;
	do {
		ret = hdb(&r);
		ns += r.ns;
		ebusy += r.ebusy;
		invalid += r.invalid;
		done += r.count;
	} while (!ret && (done < nsnaps || c.loops < CHURN_LOOPS));
	c.stop = true;
	pthread_join(t, NULL);
	munmap(p, size);
	printf("# drv_snap_churn: %lu snapshots in %.1f ms (%.0f/s) beside %lu munmaps: %llu -EBUSY, %llu invalid, ret %d\n",
	       done, ns / 1e6, done / (ns / 1e9), c.loops, ebusy, invalid,
	       ret);
	if (ret) {
		fail("drv_snap_churn", CHURN_MIB, "HDB_RUN", -ret);
		return;
	}
	v[0] = ns / 1e6 / done;
	emit("drv_snap_churn", CHURN_MIB, v, 1, ebusy + invalid, ebusy,
	     invalid);
}

int main(int argc, char **argv)
{
	struct hdb_run probe = { 0 };
	int opt, st, mode;

	while ((opt = getopt(argc, argv, "m:n:r:P:")) != -1) {
		switch (opt) {
		case 'm':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			nsnaps = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		case 'P':
			prof_row = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-m MiB] [-n SNAPSHOTS] [-r REPEATS] [-P ROW]\n",
				argv[0]);
			return 2;
		}
	}
	printf("TAP version 13\n");
	hdb_fd = open("/sys/kernel/debug/hmm_driver_bench", O_RDWR);
	if (hdb_fd < 0) {
		printf("# open hmm_driver_bench: %s\nnot ok 1 drivers.open\n1..1\n",
		       strerror(errno));
		return 1;
	}
	/* An invalid run tells what the module was built with. */
	probe.npages = 0;
	hdb(&probe);
	printf("# drivers: %lu MiB, %d repeats, module has%s%s\n", mib,
	       repeats, probe.have & HDB_HAVE_MIRROR ? " mirror" : "",
	       probe.have & HDB_HAVE_LOCK ? " lock" : "");
	if (prof_row && prof_map("drivers.profile"))
		return 1;
	for (st = 0; st < NSTATES; st++)
		for (mode = HDB_RANGE_FAULT; mode <= HDB_MIRROR_LOCK; mode++)
			write_case(st, mode, probe.have);
	if (!prof_row)
		churn_case();
	else if (!ntests)
		printf("# -P %s: no such row\nnot ok %d drivers.profile\n",
		       prof_row, ++ntests);
	printf("1..%d\n", ntests);
	return 0;
}
