// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-storm: an invalidation storm against the mirrors of one range.
 *
 *   hmm-storm SECONDS [OP_BOUND_SECONDS]
 *
 * Device threads read, write, snapshot and migrate NPAGES pages through
 * the device private nodes /dev/hmm_dmirror0 and 1 and the device coherent
 * nodes 2 and 3 (reads through all four, migrations to 0 and 2) while
 * other threads mprotect the
 * range, zap it (MADV_DONTNEED), replace it (mmap MAP_FIXED, munmap+mmap)
 * and fork children that touch and exit.  One writer thread gives every
 * page a rising generation, by CPU stores or by device writes.
 *
 * What a device read may return, under the races, for page p:
 *   - a tagged value of page p whose generation is at least that of the
 *     last write completed before the call (lo) and at most the last
 *     generation handed out when the call returned (hi): any older value
 *     is stale data the device should no longer see;
 *   - zero, only if the page could have been zero during the call: a zap
 *     ran during the call, or one started after the last completed write;
 *   - a value torn between those by a racing CPU store (see torn()).
 * After the storm, with everything quiet, exact page contents are checked
 * in both directions and through a migration round trip.
 *
 * Errors a racing command may return (lib/test_hmm.c, mm/hmm.c):
 *   READ, WRITE, SNAPSHOT: EFAULT (range unmapped or PROT_NONE: no VMA or
 *     a VMA without access, hmm_vma_fault/get_pfns), EPERM (WRITE to a
 *     PROT_READ range: hmm_record_fault), EBUSY (the fault or snapshot
 *     made no progress for HMM_RANGE_DEFAULT_TIMEOUT: hmm_vma_fault_lock);
 *   MIGRATE_TO_DEV: EINVAL (no readable VMA at an address:
 *     dmirror_migrate_vma), ENOENT (a page moved was invalidated again
 *     before the device read it back), EBUSY (dmirror_map_migrated's
 *     snapshot timed out);
 *   MIGRATE_TO_SYS: EINVAL (no readable VMA).
 * Any other errno is a failure, and so is a command that takes longer
 * than OP_BOUND_SECONDS (default 10).  Prints TAP and the counts.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "hmmh.h"

#define NPAGES		32
#define MAGIC		0x5a17ull
#define CHILD_MAGIC	0xc41dull
#define MAXERR		140

enum { OP_READ, OP_WRITE, OP_TO_DEV, OP_TO_SYS, OP_SNAP, OP_CPU, NOPS };
static const char *const op_name[NOPS] = {
	"read", "write", "migrate_to_dev", "migrate_to_sys", "snapshot",
	"cpu_store",
};

/* Allowed errnos per command, see the header comment. */
static const int op_ok_err[NOPS][4] = {
	[OP_READ]	= { EFAULT, EBUSY },
	[OP_WRITE]	= { EFAULT, EPERM, EBUSY },
	[OP_TO_DEV]	= { EINVAL, ENOENT, EBUSY },
	[OP_TO_SYS]	= { EINVAL },
	[OP_SNAP]	= { EFAULT, EBUSY },
};

enum {
	CH_PROT_READ, CH_PROT_NONE, CH_DONTNEED, CH_REMAP, CH_UNMAP_MAP,
	CH_FORK, NCHAOS
};

static const char *const chaos_name[NCHAOS] = {
	"mprotect_read", "mprotect_none", "madv_dontneed", "mmap_fixed",
	"munmap_mmap", "fork_exit",
};

static char *region;
static size_t psz, size;
static double op_bound = 10.0;
static atomic_bool stop;

/* Generation handed out last, and last completed write: epoch << 32 | gen */
static atomic_uint_fast64_t gen[NPAGES], pub[NPAGES];
/* Zap epoch: odd while a zap (DONTNEED, remap) is in progress. */
static atomic_uint_fast64_t epoch;

static atomic_ulong ok_count[NOPS], err_count[NOPS][MAXERR];
static atomic_ulong chaos_count[NCHAOS], checked, zero_reads, torn_reads;
static atomic_ulong bad_err, stale;
static atomic_uint_fast64_t max_ns[NOPS];

/* Per thread: start of the command in flight, for the watchdog. */
#define NTHREADS 6
static atomic_uint_fast64_t busy_since[NTHREADS];
static atomic_int busy_op[NTHREADS];

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t ns(void)
{
	return (uint64_t)(now() * 1e9);
}

static uint64_t tag(uint64_t magic, unsigned int p, uint64_t g)
{
	return magic << 48 | (uint64_t)p << 32 | (g & 0xffffffffull);
}

static int err_allowed(int op, int err)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (op_ok_err[op][i] == err)
			return 1;
	return 0;
}

/* Account one finished command; returns its result. */
static int account(int self, int op, int ret, uint64_t t0)
{
	uint64_t d = ns() - t0, m = atomic_load(&max_ns[op]);

	atomic_store(&busy_since[self], 0);
	while (d > m && !atomic_compare_exchange_weak(&max_ns[op], &m, d))
		;
	if (!ret) {
		atomic_fetch_add(&ok_count[op], 1);
		return 0;
	}
	atomic_fetch_add(&err_count[op][-ret < MAXERR ? -ret : 0], 1);
	if (!err_allowed(op, -ret) && atomic_fetch_add(&bad_err, 1) < 5) {
		pthread_mutex_lock(&report_lock);
		diag("%s: unexpected error %d (%s)", op_name[op], ret,
		     strerror(-ret));
		pthread_mutex_unlock(&report_lock);
	}
	return ret;
}

static int dev_op(int self, int fd, int op, unsigned long req, void *ptr)
{
	struct hmm_dmirror_cmd cmd;
	uint64_t t0 = ns();

	atomic_store(&busy_op[self], op);
	atomic_store(&busy_since[self], t0);
	return account(self, op, dmirror_cmd(fd, req, region, ptr, NPAGES,
					     &cmd), t0);
}

struct window {
	uint64_t e0, e1;
	uint64_t pub0[NPAGES], hi[NPAGES];
};

static void window_open(struct window *w)
{
	unsigned int p;

	w->e0 = atomic_load(&epoch);
	for (p = 0; p < NPAGES; p++)
		w->pub0[p] = atomic_load(&pub[p]);
}

static void window_close(struct window *w)
{
	unsigned int p;

	for (p = 0; p < NPAGES; p++)
		w->hi[p] = atomic_load(&gen[p]);
	w->e1 = atomic_load(&epoch);
}

/* Page @p may have been zero during the window: a zap could have run. */
static int zero_ok(const struct window *w, unsigned int p)
{
	return (w->e0 & 1) || w->e1 != w->e0 || !w->pub0[p] ||
	       w->pub0[p] >> 32 != w->e0;
}

/*
 * The kernel copies a page with memcpy(), byte by byte under TCG, while
 * the CPU may store to it: a read racing a store sees some bytes of the
 * old word and some of the new.  Accept @v if each of its bytes is that
 * byte of a value page @p held during the window (zero if @zero, a tag of
 * a generation in [@lo, @hi]).  A stale generation still fails unless
 * each of its bytes happens to match one of those values.
 */
static int torn(uint64_t v, unsigned int p, uint64_t lo, uint64_t hi,
		int zero)
{
	unsigned int b;
	uint64_t g;

	if (hi < lo || hi - lo > 65536)
		return 0;
	for (b = 0; b < 8; b++) {
		unsigned int byte = (v >> (8 * b)) & 0xff, found = 0;

		if (zero && !byte)
			continue;
		for (g = lo ? lo : 1; g <= hi && !found; g++)
			found = ((tag(MAGIC, p, g) >> (8 * b)) & 0xff) == byte;
		if (!found)
			return 0;
	}
	return 1;
}

/* Check what the device returned for every page against the window. */
static void check_pages(const char *what, const struct window *w,
			const char *buf)
{
	unsigned int p;

	for (p = 0; p < NPAGES; p++) {
		uint64_t v = *(const uint64_t *)(buf + p * psz);
		uint64_t pe = w->pub0[p] >> 32, lo = w->pub0[p] & 0xffffffff;
		uint64_t g = v & 0xffffffff;
		int ok;

		atomic_fetch_add(&checked, 1);
		if (!v) {
			ok = zero_ok(w, p);
			atomic_fetch_add(&zero_reads, 1);
		} else {
			ok = v >> 48 == MAGIC &&
			     ((v >> 32) & 0xffff) == p && g >= lo &&
			     g <= w->hi[p];
		}
		if (!ok && torn(v, p, lo, w->hi[p], zero_ok(w, p))) {
			atomic_fetch_add(&torn_reads, 1);
			continue;
		}
		if (ok)
			continue;
		if (atomic_fetch_add(&stale, 1) < 10) {
			pthread_mutex_lock(&report_lock);
			diag("%s: page %u returned %#llx; lo gen %llu hi gen %llu epoch %llu..%llu (last write in epoch %llu)",
			     what, p, (unsigned long long)v,
			     (unsigned long long)lo,
			     (unsigned long long)w->hi[p],
			     (unsigned long long)w->e0,
			     (unsigned long long)w->e1,
			     (unsigned long long)pe);
			pthread_mutex_unlock(&report_lock);
		}
	}
}

/*
 * The checker must catch what it is there for: an older generation, a
 * value of another page or of a child, zero where no zap could have been,
 * and let a torn but possible value pass.  Returns how many of the four
 * planted bad values were caught (0 if the torn one was not accepted).
 */
static unsigned long checker_selftest(void)
{
	char *buf = calloc(NPAGES, psz);
	unsigned long caught;
	struct window w;
	unsigned int p;

	memset(&w, 0, sizeof(w));
	w.e0 = 2;
	w.e1 = 2;
	for (p = 0; p < NPAGES; p++) {
		w.pub0[p] = 2ull << 32 | 10;	/* gen 10 written in epoch 2 */
		w.hi[p] = 12;
		*(uint64_t *)(buf + p * psz) = tag(MAGIC, p, 11);
	}
	*(uint64_t *)(buf + 1 * psz) = tag(MAGIC, 1, 9);	/* stale */
	*(uint64_t *)(buf + 2 * psz) = tag(MAGIC, 3, 11);	/* other page */
	*(uint64_t *)(buf + 3 * psz) = tag(CHILD_MAGIC, 3, 0);	/* child's */
	*(uint64_t *)(buf + 4 * psz) = 0;			/* no zap */
	/* Byte 0 of gen 0xff, byte 1 of gen 0x100: torn, acceptable. */
	w.pub0[5] = 2ull << 32 | 0xfe;
	w.hi[5] = 0x100;
	*(uint64_t *)(buf + 5 * psz) = tag(MAGIC, 5, 0x1ff);
	check_pages("checker self-test", &w, buf);
	caught = atomic_load(&stale);
	if (atomic_load(&torn_reads) != 1)
		caught = 0;
	atomic_store(&torn_reads, 0);
	atomic_store(&stale, 0);
	atomic_store(&checked, 0);
	atomic_store(&zero_reads, 0);
	free(buf);
	return caught;
}

/* The only writer: CPU stores or device writes, rising generations. */
static __thread sigjmp_buf store_jmp;
static __thread volatile int in_store;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	if (in_store)
		siglongjmp(store_jmp, 1);
	signal(sig, SIG_DFL);	/* a real bug: die on the refault */
}

/* One CPU store that may fault (protected, unmapped); 0 if it landed. */
static __attribute__((noinline)) int try_store(uint64_t *addr, uint64_t v)
{
	if (sigsetjmp(store_jmp, 1)) {
		in_store = 0;
		return -1;
	}
	in_store = 1;
	*(volatile uint64_t *)addr = v;
	in_store = 0;
	return 0;
}

static void *writer(void *arg)
{
	int self = (intptr_t)arg, fd = open(HMMH_DEV0, O_RDWR);
	char *buf = aligned_alloc(psz, size);
	uint64_t seed = 1, g[NPAGES];
	unsigned int p;

	if (fd < 0 || !buf)
		return NULL;
	while (!atomic_load(&stop)) {
		uint64_t e = atomic_load(&epoch);

		if (rnd(&seed) & 1) {
			/* CPU store: word 0 of one page or of every page. */
			unsigned int first = rnd(&seed) % NPAGES;
			unsigned int last = (rnd(&seed) & 1) ? first : NPAGES - 1;
			uint64_t t0 = ns();

			for (p = first; p <= last; p++) {
				uint64_t n = atomic_fetch_add(&gen[p], 1) + 1;

				if (!try_store((uint64_t *)(region + p * psz),
					       tag(MAGIC, p, n)))
					atomic_store(&pub[p], e << 32 | n);
			}
			account(self, OP_CPU, 0, t0);
			continue;
		}
		memset(buf, 0, size);
		for (p = 0; p < NPAGES; p++) {
			g[p] = atomic_fetch_add(&gen[p], 1) + 1;
			((uint64_t *)(buf + p * psz))[0] = tag(MAGIC, p, g[p]);
			((uint64_t *)(buf + p * psz))[1] = ~tag(MAGIC, p, g[p]);
		}
		if (!dev_op(self, fd, OP_WRITE, HMM_DMIRROR_WRITE, buf))
			for (p = 0; p < NPAGES; p++)
				atomic_store(&pub[p], e << 32 | g[p]);
	}
	close(fd);
	return NULL;
}

static void *reader(void *arg)
{
	static const char *const what[] = {
		"read dev0", "read dev1", "read dev2", "read dev3",
	};
	int self = (intptr_t)arg, fd[4], d;
	char *buf = aligned_alloc(psz, size);
	unsigned long i;
	struct window w;

	for (d = 0; d < 4; d++)
		fd[d] = open(hmmh_devs[d], O_RDWR);
	if (fd[0] < 0 || fd[1] < 0 || fd[2] < 0 || fd[3] < 0 || !buf)
		return NULL;
	for (i = 0; !atomic_load(&stop); i++) {
		d = i % 4;
		memset(buf, 0xee, size);
		window_open(&w);
		if (!dev_op(self, fd[d], OP_READ, HMM_DMIRROR_READ, buf)) {
			window_close(&w);
			check_pages(what[d], &w, buf);
		}
	}
	for (d = 0; d < 4; d++)
		close(fd[d]);
	return NULL;
}

/* Migrations to device private (node 0) and device coherent (node 2). */
static void *migrator(void *arg)
{
	int self = (intptr_t)arg;
	int fd[2] = { open(HMMH_DEV0, O_RDWR), open(HMMH_DEV2, O_RDWR) };
	char *buf = aligned_alloc(psz, size);
	unsigned long i;
	struct window w;

	if (fd[0] < 0 || fd[1] < 0 || !buf)
		return NULL;
	for (i = 0; !atomic_load(&stop); i++) {
		memset(buf, 0xee, size);
		window_open(&w);
		if (!dev_op(self, fd[i & 1], OP_TO_DEV,
			    HMM_DMIRROR_MIGRATE_TO_DEV, buf)) {
			window_close(&w);
			check_pages(i & 1 ? "migrate_to_dev2" :
					    "migrate_to_dev0", &w, buf);
		}
		if (atomic_load(&stop))
			break;
		dev_op(self, fd[i & 1], OP_TO_SYS, HMM_DMIRROR_MIGRATE_TO_SYS,
		       buf);
	}
	close(fd[0]);
	close(fd[1]);
	return NULL;
}

static int prot_valid(unsigned char b)
{
	unsigned char loc = b & 0xf0;

	if (b == HMM_DMIRROR_PROT_ERROR || b == HMM_DMIRROR_PROT_NONE)
		return 1;
	if ((b & 3) != HMM_DMIRROR_PROT_READ &&
	    (b & 3) != HMM_DMIRROR_PROT_WRITE)
		return 0;
	return loc <= HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE &&
	       !(b & HMM_DMIRROR_PROT_PUD);
}

static atomic_ulong bad_snap;

static void *snapshotter(void *arg)
{
	int self = (intptr_t)arg, fd = open(HMMH_DEV0, O_RDWR);
	unsigned char prot[NPAGES];
	unsigned int p;

	if (fd < 0)
		return NULL;
	while (!atomic_load(&stop)) {
		if (dev_op(self, fd, OP_SNAP, HMM_DMIRROR_SNAPSHOT, prot))
			continue;
		for (p = 0; p < NPAGES; p++)
			if (!prot_valid(prot[p]) &&
			    atomic_fetch_add(&bad_snap, 1) < 5)
				diag("snapshot: page %u has byte %#x", p,
				     prot[p]);
	}
	close(fd);
	return NULL;
}

static void remap(int unmap_first)
{
	void *p;

	if (unmap_first)
		munmap(region, size);
	p = mmap(region, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p != region) {
		diag("cannot map the range back: %s", strerror(errno));
		abort();
	}
}

static void *chaos(void *arg)
{
	uint64_t seed = 7;

	while (!atomic_load(&stop)) {
		unsigned int c = rnd(&seed) % (NCHAOS - 1);

		switch (c) {
		case CH_PROT_READ:
		case CH_PROT_NONE:
			mprotect(region, size, c == CH_PROT_READ ? PROT_READ :
				 PROT_NONE);
			usleep(rnd(&seed) % 500);
			mprotect(region, size, PROT_READ | PROT_WRITE);
			break;
		default:
			atomic_fetch_add(&epoch, 1);
			if (c == CH_DONTNEED)
				madvise(region, size, MADV_DONTNEED);
			else
				remap(c == CH_UNMAP_MAP);
			atomic_fetch_add(&epoch, 1);
			break;
		}
		atomic_fetch_add(&chaos_count[c], 1);
		usleep(rnd(&seed) % 2000);
	}
	return NULL;
}

/* Children touch the range (read one page, write another) and exit. */
static void *forker(void *arg)
{
	uint64_t seed = 11;

	while (!atomic_load(&stop)) {
		unsigned int a = rnd(&seed) % NPAGES, b = rnd(&seed) % NPAGES;
		pid_t pid = fork();

		if (pid == 0) {
			volatile uint64_t *pa = (uint64_t *)(region + a * psz);
			volatile uint64_t *pb = (uint64_t *)(region + b * psz);

			(void)*pa;
			*pb = tag(CHILD_MAGIC, b, 0);
			_exit(0);
		}
		if (pid > 0) {
			waitpid(pid, NULL, 0);
			atomic_fetch_add(&chaos_count[CH_FORK], 1);
		}
		usleep(rnd(&seed) % 5000);
	}
	return NULL;
}

/* After the storm: exact contents in both directions, one round trip. */
static int quiet_checks(void)
{
	char *buf = aligned_alloc(psz, size), *want = aligned_alloc(psz, size);
	unsigned char prot[NPAGES];
	struct hmm_dmirror_cmd cmd;
	int fd = open(HMMH_DEV0, O_RDWR), fd2, ret, bad = 0;
	size_t i;

	if (fd < 0 || !buf || !want)
		return 0;
	mprotect(region, size, PROT_READ | PROT_WRITE);
	/*
	 * A migration back that met a PROT_NONE range may have left pages in
	 * node 2's coherent memory, which the CPU uses in place but node 0
	 * cannot migrate (another device owns them): bring them back first.
	 */
	fd2 = open(HMMH_DEV2, O_RDWR);
	ret = fd2 < 0 ? -errno :
	      dmirror_cmd(fd2, HMM_DMIRROR_MIGRATE_TO_SYS, region, buf, NPAGES,
			  &cmd);
	if (fd2 >= 0)
		close(fd2);
	if (ret) {
		diag("quiet: migrate back from node 2 %d", ret);
		bad++;
	}
	for (i = 0; i < size / 8; i++)
		((uint64_t *)region)[i] = 0x1234567800000000ull + i;
	ret = dmirror_cmd(fd, HMM_DMIRROR_READ, region, buf, NPAGES, &cmd);
	if (ret || memcmp(buf, region, size)) {
		diag("quiet: device read %d, data %s", ret,
		     memcmp(buf, region, size) ? "differs" : "ok");
		bad++;
	}
	for (i = 0; i < size / 8; i++)
		((uint64_t *)want)[i] = 0x8765432100000000ull + i;
	ret = dmirror_cmd(fd, HMM_DMIRROR_WRITE, region, want, NPAGES, &cmd);
	if (ret || memcmp(want, region, size)) {
		diag("quiet: device write %d, CPU sees %s", ret,
		     memcmp(want, region, size) ? "other data" : "it");
		bad++;
	}
	ret = dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, region, buf, NPAGES,
			  &cmd);
	if (ret || cmd.cpages != NPAGES || memcmp(want, buf, size)) {
		diag("quiet: migrate to device %d, %llu pages", ret,
		     (unsigned long long)cmd.cpages);
		bad++;
	}
	ret = dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, region, prot, NPAGES, &cmd);
	for (i = 0; !ret && i < NPAGES; i++)
		if (prot[i] != (HMM_DMIRROR_PROT_WRITE |
				HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL))
			ret = -EIO;
	if (ret) {
		diag("quiet: snapshot after migration %d (page %zu: %#x)", ret,
		     i - 1, i ? prot[i - 1] : 0);
		bad++;
	}
	ret = dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, region, buf, NPAGES,
			  &cmd);
	if (ret || memcmp(want, region, size)) {
		diag("quiet: migrate back %d, CPU sees %s", ret,
		     memcmp(want, region, size) ? "other data" : "it");
		bad++;
	}
	close(fd);
	return !bad;
}

int main(int argc, char **argv)
{
	static void *(*const fn[NTHREADS])(void *) = {
		writer, reader, migrator, snapshotter, chaos, forker,
	};
	double secs = argc > 1 ? atof(argv[1]) : 20, t0, worst = 0;
	struct sigaction sa = { .sa_sigaction = on_fault,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	pthread_t th[NTHREADS];
	unsigned long allowed = 0, ops = 0;
	int i, e, stuck = -1;

	if (argc > 2)
		op_bound = atof(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	size = NPAGES * psz;
	tap_plan(7);
	diag("storm: %u pages, %.0f s, %d threads, command bound %.0f s",
	     NPAGES, secs, NTHREADS, op_bound);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	region = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Every node, the device coherent ones included, must be there. */
	if (region == MAP_FAILED || access(HMMH_DEV1, R_OK) ||
	    access(HMMH_DEV3, R_OK)) {
		tap(0, "storm.setup (%s)", strerror(errno));
		return 1;
	}

	e = checker_selftest();
	tap(e == 4, "storm.checker_catches_planted_stale_values (%d of 4)", e);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, fn[i], (void *)(intptr_t)i);
	/* Watchdog: every command finishes within op_bound. */
	t0 = now();
	while (now() - t0 < secs && stuck < 0) {
		sleep_ms(100);
		for (i = 0; i < NTHREADS; i++) {
			uint64_t b = atomic_load(&busy_since[i]);

			if (b && (ns() - b) / 1e9 > op_bound)
				stuck = i;
		}
	}
	if (stuck >= 0) {
		tap(0, "storm.commands_bounded (%s stuck for more than %.0f s)",
		    op_name[atomic_load(&busy_op[stuck])], op_bound);
		fflush(stdout);
		_exit(1);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);

	for (i = 0; i < NOPS; i++) {
		unsigned long errs = 0;
		char line[512];
		int n;

		n = snprintf(line, sizeof(line), "%-15s %8lu ok", op_name[i],
			     atomic_load(&ok_count[i]));
		for (e = 0; e < MAXERR; e++) {
			unsigned long c = atomic_load(&err_count[i][e]);

			if (!c)
				continue;
			errs += c;
			n += snprintf(line + n, sizeof(line) - n, ", %lu %s",
				      c, e ? strerrorname_np(e) : "E?");
		}
		diag("%s, max %.3f s", line, atomic_load(&max_ns[i]) / 1e9);
		ops += atomic_load(&ok_count[i]) + errs;
		if (i != OP_CPU)
			allowed += errs;
		if (atomic_load(&max_ns[i]) / 1e9 > worst)
			worst = atomic_load(&max_ns[i]) / 1e9;
	}
	for (i = 0; i < NCHAOS; i++)
		diag("%-15s %8lu", chaos_name[i], atomic_load(&chaos_count[i]));
	diag("storm: %lu operations, %lu pages checked (%lu zero, %lu torn by a racing store), %lu errors, %lu stale",
	     ops, atomic_load(&checked), atomic_load(&zero_reads),
	     atomic_load(&torn_reads), allowed, atomic_load(&stale));

	tap(!atomic_load(&stale), "storm.no_stale_reads (%lu pages checked)",
	    atomic_load(&checked));
	tap(!atomic_load(&bad_err), "storm.only_documented_errors (%lu unexpected)",
	    atomic_load(&bad_err));
	tap(!atomic_load(&bad_snap), "storm.snapshot_values_valid");
	tap(worst <= op_bound, "storm.commands_bounded (slowest %.3f s)", worst);
	e = 1;
	for (i = 0; i < NOPS; i++)
		if (!atomic_load(&ok_count[i]))
			e = 0;
	for (i = 0; i < NCHAOS; i++)
		if (!atomic_load(&chaos_count[i]))
			e = 0;
	tap(e, "storm.every_operation_ran");
	tap(quiet_checks(), "storm.exact_after_quiesce");
	return tap_failed ? 1 : 0;
}
