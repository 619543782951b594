// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-fuzz: feed the dummy device nonsense and check that it only ever
 * answers with a clear errno.
 *
 *   hmm-fuzz [CALLS [SEED [SECONDS]]]
 *
 * The files are the four nodes of test_hmm, device private (0, 1) and
 * device coherent (2, 3).
 *
 * Deterministic for a SEED (printed; default 0x484d4d48): random commands
 * (every real one, unknown numbers, wrong sizes and directions) with random
 * picks from interesting values for the argument pointer (NULL, read-only,
 * unmapped, kernel), addr (0, unaligned, kernel, TASK_SIZE and past it,
 * the top of the address space), npages (0, 1, step sizes and one past
 * them, byte sizes that overflow, 2^64-1) and ptr (NULL, too short before a
 * guard page, read-only, kernel, the range itself).  Meanwhile another
 * thread replaces the open files under the fuzzer with dup2(), children
 * inherit the files and fuzz through them, and the module is asked to
 * unload, which must fail with EWOULDBLOCK while a file is open.
 *
 * Every call must return 0 or -1 with EINVAL, EFAULT, ENOTTY, ENOENT,
 * EPERM or EBUSY; an unknown command must fail with ENOTTY; no call may
 * take longer than 10 s.  Afterwards, with every file closed, modprobe -r
 * must succeed and remove the nodes, and after modprobe a read, write and
 * migration round trip must still check out.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hmmh.h"

#define NPAGES		16
#define CALL_BOUND	10.0

static size_t psz;
static char *range, *rdonly, *unmapped, *shortbuf, *bigbuf;
#define NFDS		4
static int fds[NFDS];
static atomic_bool stop;
static atomic_ulong calls, unexpected, not_enotty, slow, dups, unloads,
		    unload_bad, successes;
static double slowest;

static const unsigned long valid_cmds[] = {
	HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
	HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE,
	HMM_DMIRROR_RELEASE, HMM_DMIRROR_STATS,
};

#define NVALID ARRAY_SIZE(valid_cmds)

static int is_valid(unsigned long req)
{
	unsigned int i;

	for (i = 0; i < NVALID; i++)
		if (valid_cmds[i] == req)
			return 1;
	return 0;
}

static unsigned long pick_cmd(uint64_t *s)
{
	/* Not types the VFS answers itself (T, X, f, 0x94). */
	static const unsigned char types[] = { 'H', 'H', 'H', 'h', 'G', 'Z' };
	unsigned long req;

	if (rnd(s) % 3)
		return valid_cmds[rnd(s) % NVALID];
	do {
		req = _IOC(rnd(s) % 4, types[rnd(s) % sizeof(types)],
			   rnd(s) % 3 ? rnd(s) % 16 : rnd(s) % 256,
			   rnd(s) % 2 ? sizeof(struct hmm_dmirror_cmd) :
					rnd(s) % 0x4000);
	} while (is_valid(req));
	return req;
}

static uint64_t pick_addr(uint64_t *s)
{
	const uint64_t v[] = {
		0, (uintptr_t)range, (uintptr_t)range + 1,
		(uintptr_t)range + psz / 2, (uintptr_t)range + 15 * psz,
		(uintptr_t)unmapped, (uintptr_t)rdonly,
		0xffff888000000000ull, 0xffffffff81000000ull,
		0x7ffffffff000ull, 0x7fffffffe000ull, 1ull << 47, 1ull << 56,
		~0ull << 12, 1ull << 63, 0x1000, (uintptr_t)bigbuf,
		rnd(s) << 12, rnd(s),
	};

	return v[rnd(s) % ARRAY_SIZE(v)];
}

static uint64_t pick_npages(uint64_t *s)
{
	const uint64_t v[] = {
		0, 1, 2, NPAGES, NPAGES + 1, 512, 513, 1 << 20,
		~0ull >> 12, (~0ull >> 12) + 1, ~0ull, 1ull << 63,
		1ull << 35, rnd(s) % 64, rnd(s),
	};

	return v[rnd(s) % ARRAY_SIZE(v)];
}

static uint64_t pick_ptr(uint64_t *s)
{
	const uint64_t v[] = {
		0, (uintptr_t)shortbuf, (uintptr_t)rdonly,
		(uintptr_t)unmapped, 0xffff888000000000ull, (uintptr_t)range,
		(uintptr_t)bigbuf, (uintptr_t)bigbuf + 3, rnd(s),
	};

	return v[rnd(s) % ARRAY_SIZE(v)];
}

static void *pick_arg(uint64_t *s, struct hmm_dmirror_cmd *cmd)
{
	switch (rnd(s) % 12) {
	case 0: return NULL;
	case 1: return rdonly;
	case 2: return unmapped;
	case 3: return (void *)0xffff888000000000ull;
	case 4: return (char *)shortbuf + 4 * psz - 8;	/* runs into guard */
	default: return cmd;
	}
}

/* One random call; returns 0 if its answer was acceptable. */
static int fuzz_one(uint64_t *s, int fd, int quiet)
{
	static const int ok_errs[] = { EINVAL, EFAULT, ENOTTY, ENOENT, EPERM,
				       EBUSY };
	struct hmm_dmirror_stats stats;
	struct hmm_dmirror_cmd cmd = {
		.addr = pick_addr(s), .ptr = pick_ptr(s),
		.npages = pick_npages(s), .cpages = rnd(s), .faults = rnd(s),
	};
	unsigned long req = pick_cmd(s);
	void *arg = req == HMM_DMIRROR_STATS && rnd(s) % 2 ? (void *)&stats :
		    pick_arg(s, &cmd);
	double t0 = now(), d;
	unsigned int i;
	int ret, err;

	ret = ioctl(fd, req, arg);
	err = errno;
	d = now() - t0;
	atomic_fetch_add(&calls, 1);
	if (d > slowest)
		slowest = d;
	if (d > CALL_BOUND) {
		atomic_fetch_add(&slow, 1);
		diag("slow: cmd %#lx addr %#llx npages %#llx ptr %#llx: %.1f s",
		     req, (unsigned long long)cmd.addr,
		     (unsigned long long)cmd.npages,
		     (unsigned long long)cmd.ptr, d);
	}
	if (ret == 0) {
		atomic_fetch_add(&successes, 1);
		if (is_valid(req))
			return 0;
	}
	if (ret == 0 || (!is_valid(req) && err != ENOTTY && err != EBADF)) {
		atomic_fetch_add(&not_enotty, 1);
		if (!quiet)
			diag("unknown cmd %#lx: ret %d errno %d", req, ret, err);
		return -1;
	}
	if (ret != -1)
		goto bad;
	if (err == EBADF)	/* the other thread is between dup2s: never */
		goto bad;
	for (i = 0; i < ARRAY_SIZE(ok_errs); i++)
		if (err == ok_errs[i])
			return 0;
bad:
	atomic_fetch_add(&unexpected, 1);
	if (!quiet)
		diag("cmd %#lx arg %p addr %#llx npages %#llx ptr %#llx: ret %d errno %d (%s)",
		     req, arg, (unsigned long long)cmd.addr,
		     (unsigned long long)cmd.npages,
		     (unsigned long long)cmd.ptr, ret, err, strerror(err));
	return -1;
}

/* Replace the files under the fuzzer: the old file's last fput races. */
static void *closer(void *arg)
{
	uint64_t s = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		int i = rnd(&s) % NFDS;
		int fd = open(hmmh_devs[i], O_RDWR);

		if (fd >= 0) {
			dup2(fd, fds[i]);
			close(fd);
			atomic_fetch_add(&dups, 1);
		}
		usleep(rnd(&s) % 3000);
	}
	return NULL;
}

/* While any file is open, the module must refuse to go. */
static void *unloader(void *arg)
{
	while (!atomic_load(&stop)) {
		long ret = syscall(SYS_delete_module, "test_hmm", O_NONBLOCK);

		atomic_fetch_add(&unloads, 1);
		if (ret != -1 || errno != EWOULDBLOCK) {
			atomic_fetch_add(&unload_bad, 1);
			diag("delete_module with files open: %ld errno %d",
			     ret, errno);
		}
		usleep(20000);
	}
	return NULL;
}

static int round_trip(void)
{
	size_t size = NPAGES * psz, i;
	char *buf = malloc(size);
	struct hmm_dmirror_cmd cmd;
	int fd = open(HMMH_DEV0, O_RDWR), bad = 0;

	if (fd < 0 || !buf)
		return diag("round trip: open: %s", strerror(errno)), 0;
	mprotect(range, size, PROT_READ | PROT_WRITE);
	for (i = 0; i < size; i++)
		range[i] = i * 7 + 1;
	bad |= dmirror_cmd(fd, HMM_DMIRROR_READ, range, buf, NPAGES, &cmd) ||
	       memcmp(buf, range, size);
	for (i = 0; i < size; i++)
		buf[i] = i * 13 + 5;
	bad |= (dmirror_cmd(fd, HMM_DMIRROR_WRITE, range, buf, NPAGES, &cmd) ||
		memcmp(buf, range, size)) << 1;
	memset(buf, 0, size);
	bad |= (dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, range, buf, NPAGES,
			    &cmd) || cmd.cpages != NPAGES) << 2;
	for (i = 0; i < size; i++)
		if (range[i] != (char)(i * 13 + 5) || buf[i] != range[i])
			bad |= 8;
	close(fd);
	if (bad)
		diag("round trip: %#x (1 read, 2 write, 4 migrate, 8 data)",
		     bad);
	return !bad;
}

int main(int argc, char **argv)
{
	unsigned long max_calls = argc > 1 ? strtoul(argv[1], NULL, 0) : 20000;
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x484d4d48;
	double secs = argc > 3 ? atof(argv[3]) : 60, t0 = now();
	unsigned long children = 0, bad_children = 0, n;
	pthread_t th_close, th_unload;
	uint64_t s = seed;
	int i, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	tap_plan(8);
	diag("fuzz: seed %#llx (hmm-fuzz CALLS SEED to replay), at most %lu calls, %.0f s",
	     (unsigned long long)seed, max_calls, secs);
	range = mmap(NULL, (NPAGES + 1) * psz, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rdonly = mmap(NULL, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unmapped = mmap(NULL, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	shortbuf = mmap(NULL, 5 * psz, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bigbuf = mmap(NULL, 64 * psz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (range == MAP_FAILED || rdonly == MAP_FAILED ||
	    unmapped == MAP_FAILED || shortbuf == MAP_FAILED ||
	    bigbuf == MAP_FAILED)
		return diag("setup: %s", strerror(errno)), 1;
	munmap(unmapped, psz);
	mprotect(range + NPAGES * psz, psz, PROT_NONE);	/* guard */
	mprotect(shortbuf + 4 * psz, psz, PROT_NONE);	/* guard */
	memset(range, 0x11, NPAGES * psz);
	for (i = 0; i < NFDS; i++) {
		fds[i] = open(hmmh_devs[i], O_RDWR);
		if (fds[i] < 0)
			return diag("open %s: %s", hmmh_devs[i],
				    strerror(errno)), 1;
	}

	pthread_create(&th_close, NULL, closer, (void *)(uintptr_t)(seed ^ 1));
	pthread_create(&th_unload, NULL, unloader, NULL);
	for (n = 0; n < max_calls && now() - t0 < secs; n++) {
		if (n % 500 == 250) {
			/* A child fuzzes through the inherited files. */
			uint64_t cs = rnd(&s);
			pid_t pid = fork();
			int st, k, bad = 0;

			if (!pid) {
				for (k = 0; k < 50; k++)
					bad |= fuzz_one(&cs, fds[k % NFDS], 1);
				_exit(bad ? 1 : 0);
			}
			if (pid > 0 && waitpid(pid, &st, 0) == pid) {
				children++;
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					bad_children++;
			}
		}
		if (n % 2000 == 1000 &&
		    !sh("modprobe -r test_hmm >/dev/null 2>&1")) {
			atomic_fetch_add(&unload_bad, 1);
			diag("modprobe -r succeeded with files open");
		}
		fuzz_one(&s, fds[rnd(&s) % NFDS], 0);
	}
	atomic_store(&stop, 1);
	pthread_join(th_close, NULL);
	pthread_join(th_unload, NULL);

	diag("fuzz: %lu calls (%lu succeeded), %lu unexpected answers, %lu unknown commands not ENOTTY, slowest %.3f s",
	     atomic_load(&calls), atomic_load(&successes),
	     atomic_load(&unexpected), atomic_load(&not_enotty), slowest);
	diag("fuzz: %lu files replaced under the fuzzer, %lu children, %lu unload attempts refused",
	     atomic_load(&dups), children, atomic_load(&unloads));
	tap(!atomic_load(&unexpected), "fuzz.clear_errnos (%lu calls)",
	    atomic_load(&calls));
	tap(!atomic_load(&not_enotty), "fuzz.unknown_commands_enotty");
	tap(!atomic_load(&slow), "fuzz.calls_bounded (slowest %.3f s)",
	    slowest);
	tap(children && !bad_children, "fuzz.children_through_inherited_files (%lu, %lu bad)",
	    children, bad_children);
	tap(atomic_load(&dups) > 0, "fuzz.files_replaced_concurrently (%lu)",
	    atomic_load(&dups));
	tap(atomic_load(&unloads) && !atomic_load(&unload_bad),
	    "fuzz.unload_refused_while_open (%lu attempts)",
	    atomic_load(&unloads));

	for (i = 0; i < NFDS; i++)
		close(fds[i]);
	for (i = 0, ret = 1; i < 50 && ret; i++) {
		ret = sh("modprobe -r test_hmm");
		if (ret)
			sleep_ms(100);
	}
	tap(!ret && access(HMMH_DEV0, F_OK),
	    "fuzz.unload_after_close (modprobe -r: %d, node %s)", ret,
	    access(HMMH_DEV0, F_OK) ? "gone" : "still there");
	tap(!sh("modprobe test_hmm") && round_trip(),
	    "fuzz.round_trip_after_reload");
	return tap_failed ? 1 : 0;
}
