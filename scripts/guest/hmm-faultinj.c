// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-faultinj: run the device commands while slab and page allocations
 * fail (failslab, fail_page_alloc), only in this task.
 *
 *   hmm-faultinj [MIN_FAILURES [SECONDS]]
 *
 * Phases inject with failslab, fail_page_alloc or both at several
 * probabilities (verbose=0, task-filter=Y with /proc/self/make-it-fail,
 * allocations that may sleep included).  A round opens the device, reads,
 * writes, migrates to device memory and back, snapshots and closes.  Each
 * failure must surface as one of the errnos an allocation failure can give
 * (ENOMEM; EFAULT when a fault inside hmm_vma_fault() could not allocate;
 * EBUSY/ENOENT when a device mapping could not be made or was lost; ENFILE
 * from the VFS for open), never as a crash or a kernel report.  Between
 * phases, with injection off, a full round trip must check out byte for
 * byte.  The number of injected failures is read back from the "times"
 * knobs; at least MIN_FAILURES (default 1000) are required.  Leaks are
 * left to the kmemleak scan at the end of the guest; this program only
 * checks that kmemleak is still enabled (its own allocations may fail).
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "hmmh.h"

#define NPAGES		64
#define TIMES		1000000
#define DBG		"/sys/kernel/debug"

static const char *const knob_dir[2] = { DBG "/failslab",
					 DBG "/fail_page_alloc" };
static int fail_fd;
static char *region, *buf;
static size_t psz, size;

static const int ok_errs[] = { ENOMEM, EFAULT, EBUSY, ENOENT, ENFILE };

static int knob(int k, const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", knob_dir[k], name);
	return put(path, val);
}

static long long injected(int k)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/times", knob_dir[k]);
	return TIMES - get_num(path);
}

static int arm(int k, int prob)
{
	char p[16];
	int ret = 0;

	snprintf(p, sizeof(p), "%d", prob);
	ret |= knob(k, "verbose", "0");
	ret |= knob(k, "task-filter", "Y");
	ret |= knob(k, "interval", "1");
	ret |= knob(k, "space", "0");
	ret |= knob(k, "ignore-gfp-wait", "N");
	if (k == 1) {
		ret |= knob(k, "ignore-gfp-highmem", "N");
		ret |= knob(k, "min-order", "0");
	}
	snprintf(p, sizeof(p), "%d", TIMES);
	ret |= knob(k, "times", p);
	snprintf(p, sizeof(p), "%d", prob);
	ret |= knob(k, "probability", p);
	return ret;
}

static void disarm(int k)
{
	knob(k, "probability", "0");
}

static void make_it_fail(int on)
{
	if (pwrite(fail_fd, on ? "1" : "0", 1, 0) != 1) {
		diag("make-it-fail: %s", strerror(errno));
		exit(1);
	}
}

struct phase {
	const char *name;
	int slab, page;		/* probabilities in percent, 0: off */
};

static const struct phase phases[] = {
	{ "failslab_p5", 5, 0 },
	{ "failslab_p20", 20, 0 },
	{ "failslab_p50", 50, 0 },
	{ "fail_page_alloc_p5", 0, 5 },
	{ "fail_page_alloc_p20", 0, 20 },
	{ "fail_page_alloc_p50", 0, 50 },
	{ "both_p25", 25, 25 },
};

#define NPHASES ARRAY_SIZE(phases)

static const struct {
	const char *name;
	unsigned long req;
} cmds[] = {
	{ "read", HMM_DMIRROR_READ },
	{ "write", HMM_DMIRROR_WRITE },
	{ "migrate_to_dev", HMM_DMIRROR_MIGRATE_TO_DEV },
	{ "snapshot", HMM_DMIRROR_SNAPSHOT },
	{ "migrate_to_sys", HMM_DMIRROR_MIGRATE_TO_SYS },
	{ "exclusive", HMM_DMIRROR_EXCLUSIVE },
};

#define NCMDS ARRAY_SIZE(cmds)

static unsigned long errs[NCMDS + 1][140], oks[NCMDS + 1], unexpected;

static void count(unsigned int c, int ret)
{
	unsigned int i;

	if (!ret) {
		oks[c]++;
		return;
	}
	errs[c][-ret < 140 ? -ret : 0]++;
	for (i = 0; i < ARRAY_SIZE(ok_errs); i++)
		if (-ret == ok_errs[i])
			return;
	unexpected++;
}

/* One round under injection: open, every command, close. */
static void round_once(int persistent)
{
	struct hmm_dmirror_cmd cmd;
	unsigned int c;
	int fd;

	make_it_fail(1);
	fd = open(HMMH_DEV0, O_RDWR);
	count(NCMDS, fd < 0 ? -errno : 0);
	for (c = 0; c < NCMDS; c++)
		count(c, dmirror_cmd(fd >= 0 ? fd : persistent, cmds[c].req,
				     region, buf, NPAGES, &cmd));
	if (fd >= 0)
		close(fd);
	make_it_fail(0);
}

static uint32_t pattern(unsigned int seed, size_t i)
{
	return seed * 2654435761u + (uint32_t)i;
}

/* With injection off: every direction checks out byte for byte. */
static int round_trip(unsigned int seed)
{
	struct hmm_dmirror_cmd cmd;
	int fd = open(HMMH_DEV0, O_RDWR), bad = 0;
	size_t i, n = size / sizeof(uint32_t);
	uint32_t *r = (uint32_t *)region, *b = (uint32_t *)buf;

	if (fd < 0)
		return diag("round trip: open: %s", strerror(errno)), 0;
	for (i = 0; i < n; i++)
		r[i] = pattern(seed, i);
	if (dmirror_cmd(fd, HMM_DMIRROR_READ, region, buf, NPAGES, &cmd) ||
	    memcmp(region, buf, size))
		bad |= 1;
	for (i = 0; i < n; i++)
		b[i] = ~pattern(seed, i);
	if (dmirror_cmd(fd, HMM_DMIRROR_WRITE, region, buf, NPAGES, &cmd) ||
	    memcmp(region, buf, size))
		bad |= 2;
	memset(buf, 0, size);
	if (dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, region, buf, NPAGES,
			&cmd) || cmd.cpages != NPAGES)
		bad |= 4;
	for (i = 0; i < n; i++) {
		if (r[i] == (uint32_t)~pattern(seed, i) && b[i] == r[i])
			continue;
		if (!(bad & 8))
			diag("round trip %u: word %zu (page %zu): CPU %#x, device %#x, want %#x",
			     seed, i, i * 4 / psz, r[i], b[i],
			     (uint32_t)~pattern(seed, i));
		bad |= 8;
	}
	close(fd);
	if (bad)
		diag("round trip %u failed: %#x (1 read, 2 write, 4 migrate, 8 data)",
		     seed, bad);
	return !bad;
}

int main(int argc, char **argv)
{
	long long min = argc > 1 ? atoll(argv[1]) : 1000, total = 0;
	double limit = argc > 2 ? atof(argv[2]) : 300, t0 = now();
	unsigned int p, c, e;
	int persistent, k, trips_ok = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	size = NPAGES * psz;
	if (access(knob_dir[0], F_OK) || access(knob_dir[1], F_OK)) {
		tap_plan(1);
		tap_skip("faultinj", "no failslab/fail_page_alloc in debugfs (kernel without FAULT_INJECTION_DEBUG_FS)");
		return 0;
	}
	tap_plan(NPHASES + 3);
	region = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	fail_fd = open("/proc/self/make-it-fail", O_WRONLY);
	persistent = open(HMMH_DEV0, O_RDWR);
	if (region == MAP_FAILED || buf == MAP_FAILED || fail_fd < 0 ||
	    persistent < 0) {
		diag("setup: %s", strerror(errno));
		return 1;
	}
	trips_ok = round_trip(100);
	for (p = 0; p < NPHASES; p++) {
		const struct phase *ph = &phases[p];
		long long before[2], got = 0, want = (min + NPHASES - 1) / NPHASES;
		unsigned long rounds = 0, unexp0 = unexpected;
		double tp = now(), budget = limit / NPHASES;

		for (k = 0; k < 2; k++) {
			before[k] = 0;
			if ((k ? ph->page : ph->slab) && arm(k, k ? ph->page : ph->slab)) {
				diag("%s: cannot set the knobs", ph->name);
				return 1;
			}
		}
		while (got < want && now() - tp < budget) {
			round_once(persistent);
			rounds++;
			got = 0;
			for (k = 0; k < 2; k++)
				if (k ? ph->page : ph->slab)
					got += injected(k) - before[k];
		}
		for (k = 0; k < 2; k++)
			disarm(k);
		total += got;
		trips_ok &= round_trip(p + 1);
		tap(unexpected == unexp0 && got > 0,
		    "faultinj.%s (%lld failures injected in %lu rounds, %.1f s, %lu unexpected errnos)",
		    ph->name, got, rounds, now() - tp, unexpected - unexp0);
	}
	for (c = 0; c <= NCMDS; c++) {
		char line[600];
		int n = snprintf(line, sizeof(line), "%-15s %6lu ok",
				 c < NCMDS ? cmds[c].name : "open", oks[c]);

		for (e = 0; e < 140; e++)
			if (errs[c][e])
				n += snprintf(line + n, sizeof(line) - n,
					      ", %lu %s", errs[c][e],
					      e ? strerrorname_np(e) : "E?");
		diag("%s", line);
	}
	diag("faultinj: %lld failures injected, %lu unexpected errnos, %.1f s",
	     total, unexpected, now() - t0);
	close(persistent);
	tap(total >= min, "faultinj.injected_at_least_%lld (%lld)", min, total);
	tap(trips_ok && round_trip(99), "faultinj.round_trips_after_injection");
	if (access(DBG "/kmemleak", F_OK))
		tap_skip("faultinj.kmemleak_still_enabled", "no kmemleak");
	else
		tap(!put(DBG "/kmemleak", "scan"), "faultinj.kmemleak_still_enabled");
	return tap_failed ? 1 : 0;
}
