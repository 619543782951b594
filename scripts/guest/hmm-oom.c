// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-oom: OOM-kill a mirrored process again and again and check that the
 * OOM reaper takes its memory through the non-blockable invalidation.
 *
 *   hmm-oom ITERATIONS FREEZE_DIR
 *
 * FREEZE_DIR is a mounted filesystem that supports FIFREEZE (ext2 on brd).
 * Each iteration forks a victim into a memory cgroup (v2, memory.max
 * LIMIT_MB, no swap) that mirrors its buffer in /dev/hmm_dmirror0, moves
 * part of it to device memory, parks one thread in uninterruptible sleep
 * on a write to the frozen filesystem (it holds no mmap_lock, but keeps the
 * mm alive, so the victim cannot exit and free it through exit_mmap) and
 * then allocates until the memcg OOM killer kills it.  The memory must
 * then come back while the victim still exists, which only the reaper can
 * do: on even iterations the parent calls process_mrelease(), on odd ones
 * it waits for the oom_reaper thread (OOM_REAPER_DELAY, 2 s).  Both end in
 * __oom_reap_task_mm() -> mmu_notifier_invalidate_range_start_nonblock(),
 * so test_hmm's count of non-blockable sync callbacks (HMM_DMIRROR_STATS,
 * device.nonblockable) must grow.  Then the filesystem is thawed and the
 * victim must finish dying, killed by SIGKILL.  Every wait is bounded.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "hmmh.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_process_mrelease
#define __NR_process_mrelease 448
#endif

#define CG		"/sys/fs/cgroup"
#define CGV		CG "/hmm-oom"
#define LIMIT_MB	32
#define MIRROR_MB	4

static const char *file;
static int ready_pipe[2];

/* Victim thread: blocks in sb_start_write() on the frozen filesystem. */
static void *blocker(void *arg)
{
	static char page[4096];
	int fd = open(file, O_WRONLY);

	if (fd < 0)
		_exit(3);
	memset(page, 0x5a, sizeof(page));
	if (write(fd, page, sizeof(page)) < 0)
		_exit(4);
	return NULL;	/* only after the thaw; the victim is dead by then */
}

/* State letter of one thread of this process ('?' if unknown). */
static char task_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

static pid_t blocker_tid;

static void *blocker_start(void *arg)
{
	blocker_tid = syscall(SYS_gettid);
	return blocker(arg);
}

static void __attribute__((noreturn)) victim(void)
{
	size_t mirror = MIRROR_MB << 20, psz = sysconf(_SC_PAGESIZE);
	struct hmm_dmirror_cmd cmd;
	pthread_t th;
	char *buf, *out;
	int fd, i;

	if (put(CGV "/cgroup.procs", "0"))
		_exit(5);
	fd = open(HMMH_DEV0, O_RDWR);
	buf = mmap(NULL, mirror, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	out = malloc(mirror);
	if (fd < 0 || buf == MAP_FAILED || !out)
		_exit(6);
	memset(buf, 0x3c, mirror);
	if (dmirror_cmd(fd, HMM_DMIRROR_READ, buf, out, mirror / psz, &cmd))
		_exit(7);
	if (dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, out,
			mirror / psz / 4, &cmd))
		_exit(8);
	if (pthread_create(&th, NULL, blocker_start, NULL))
		_exit(9);
	for (i = 0; i < 1000 && (!blocker_tid || task_state(blocker_tid) != 'D');
	     i++)
		sleep_ms(10);
	if (i == 1000)
		_exit(10);
	if (write(ready_pipe[1], "r", 1) != 1)
		_exit(11);
	/* Eat memory until the memcg OOM killer ends this. */
	for (;;) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			memset(p, 0x77, 1 << 20);
	}
}

static long long memcg_event(const char *key)
{
	char buf[1024], *p;

	if (read_text(CGV "/memory.events", buf, sizeof(buf)) < 0)
		return -1;
	for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
		if (!strncmp(p, key, strlen(key)) && p[strlen(key)] == ' ')
			return atoll(p + strlen(key) + 1);
	return -1;
}

static int wait_ready(int ms)
{
	struct pollfd pfd = { .fd = ready_pipe[0], .events = POLLIN };
	char c;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return read(ready_pipe[0], &c, 1) == 1 ? 0 : -1;
}

static int setup_cgroup(void)
{
	char max[16];

	mkdir(CG, 0755);
	if (access(CG "/cgroup.controllers", R_OK) &&
	    sh("mount -t cgroup2 none " CG))
		return -1;
	if (put(CG "/cgroup.subtree_control", "+memory"))
		return -1;
	if (mkdir(CGV, 0755) && errno != EEXIST)
		return -1;
	snprintf(max, sizeof(max), "%dM", LIMIT_MB);
	if (put(CGV "/memory.max", max))
		return -1;
	if (!access(CGV "/memory.swap.max", W_OK))
		put(CGV "/memory.swap.max", "0");
	return 0;
}

struct totals {
	unsigned int passed, mreleased, reaped_by_thread;
	unsigned long long nonblockable;
	double secs;
};

/* One iteration; returns 1 if every check passed. */
static int iteration(int i, int dirfd, struct totals *t)
{
	struct hmm_dmirror_stats st0, st1;
	long long kills0, cur_peak = 0, cur_reaped = -1, cur_end;
	int use_mrelease = !(i & 1), pidfd, status = 0, ret, k;
	int frozen = 0, ok = 1;
	double t0 = now();
	const char *why = "";
	pid_t pid;

	if (dmirror_stats(HMMH_DEV0, &st0))
		return diag("cannot read the device counters"), 0;
	kills0 = memcg_event("oom_kill");
	if (ioctl(dirfd, FIFREEZE, 0))
		return diag("FIFREEZE: %s", strerror(errno)), 0;
	frozen = 1;
	pid = fork();
	if (pid < 0) {
		ioctl(dirfd, FITHAW, 0);
		return 0;
	}
	if (!pid)
		victim();
	pidfd = syscall(__NR_pidfd_open, pid, 0);

	if (wait_ready(60000)) {
		why = "victim never got ready";
		ok = 0;
		goto thaw;
	}
	/* Wait for the kill. */
	for (k = 0; k < 6000 && memcg_event("oom_kill") <= kills0; k++)
		sleep_ms(10);
	if (memcg_event("oom_kill") <= kills0) {
		why = "no OOM kill within 60 s";
		ok = 0;
		goto thaw;
	}
	cur_peak = get_num(CGV "/memory.peak");
	if (use_mrelease) {
		for (k = 0; k < 100; k++) {
			ret = syscall(__NR_process_mrelease, pidfd, 0);
			if (!ret || (errno != EAGAIN && errno != EINVAL))
				break;
			sleep_ms(10);
		}
		if (ret) {
			why = "process_mrelease failed";
			diag("process_mrelease: %s", strerror(errno));
			ok = 0;
		}
	}
	/* The memory comes back while the victim still exists. */
	for (k = 0; k < 1000; k++) {
		cur_reaped = get_num(CGV "/memory.current");
		if (cur_reaped < (LIMIT_MB << 20) / 4)
			break;
		sleep_ms(10);
	}
	if (cur_reaped >= (LIMIT_MB << 20) / 4) {
		why = "memory not reaped within 10 s";
		ok = 0;
	}
	if (waitpid(pid, &status, WNOHANG) != 0) {
		why = "victim exited before the thaw: reap not forced";
		ok = 0;
	}
	if (dmirror_stats(HMMH_DEV0, &st1) ||
	    st1.device.nonblockable <= st0.device.nonblockable) {
		why = "no non-blockable invalidation";
		ok = 0;
	}
	t->nonblockable += st1.device.nonblockable - st0.device.nonblockable;
	if (ok && use_mrelease)
		t->mreleased++;
	else if (ok)
		t->reaped_by_thread++;
thaw:
	if (frozen && ioctl(dirfd, FITHAW, 0)) {
		diag("FITHAW: %s", strerror(errno));
		ok = 0;
	}
	for (k = 0; k < 3000; k++) {
		ret = waitpid(pid, &status, WNOHANG);
		if (ret)
			break;
		if (k == 2000)	/* 20 s: something is stuck, don't hang */
			kill(pid, SIGKILL);
		sleep_ms(10);
	}
	if (ret != pid || !WIFSIGNALED(status) ||
	    WTERMSIG(status) != SIGKILL) {
		diag("victim status %#x (ret %d)", status, ret);
		if (!*why)
			why = "victim did not die of SIGKILL after the thaw";
		ok = 0;
	}
	close(pidfd);
	for (k = 0; k < 500; k++) {
		cur_end = get_num(CGV "/memory.current");
		if (cur_end < (2 << 20))
			break;
		sleep_ms(10);
	}
	if (cur_end >= (2 << 20)) {
		why = "memory still charged after exit";
		ok = 0;
	}
	t->secs += now() - t0;
	tap(ok, "oom.iteration_%d (%s; peak %lld KiB, %lld KiB after the reap, %lld KiB after exit, nonblockable +%llu, %.1f s)%s%s",
	    i + 1, use_mrelease ? "process_mrelease" : "oom_reaper",
	    cur_peak >> 10, cur_reaped >> 10, cur_end >> 10,
	    (unsigned long long)(st1.device.nonblockable -
				 st0.device.nonblockable),
	    now() - t0, *why ? ": " : "", why);
	return ok;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20, i, dirfd, fd;
	const char *dir = argc > 2 ? argv[2] : "/mnt/oom";
	static char path[256];
	struct totals t = { 0 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(iters + 1);
	snprintf(path, sizeof(path), "%s/victim-file", dir);
	file = path;
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dirfd < 0 || setup_cgroup() || pipe(ready_pipe)) {
		diag("setup: %s", strerror(errno));
		for (i = 0; i <= iters; i++)
			tap(0, "oom.setup");
		return 1;
	}
	close(fd);
	sync();
	for (i = 0; i < iters; i++)
		t.passed += iteration(i, dirfd, &t);
	diag("oom: %u of %d iterations passed: %u reaped by process_mrelease, %u by the oom_reaper thread, %llu non-blockable syncs, %.1f s",
	     t.passed, iters, t.mreleased, t.reaped_by_thread,
	     t.nonblockable, t.secs);
	tap(t.passed == (unsigned int)iters && t.mreleased && t.reaped_by_thread,
	    "oom.all_iterations (%u reaped by process_mrelease, %u by the oom_reaper thread, %llu non-blockable syncs)",
	    t.mreleased, t.reaped_by_thread, t.nonblockable);
	return tap_failed ? 1 : 0;
}
