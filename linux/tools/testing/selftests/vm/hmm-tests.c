// SPDX-License-Identifier: GPL-2.0
/*
 * Selftests for HMM mirrors, using the dummy devices of lib/test_hmm.c.
 *
 * Each /dev/hmm_dmirrorN node pretends to be a GPU with its own page table
 * that mirrors the address space of the process that opened it.  The tests
 * drive it through the ioctls of lib/test_hmm_uapi.h: device reads and
 * writes (which fault through the HMM core), snapshots of the CPU page
 * table, migration to and from device memory, device exclusive access and
 * the per-device counters of the sync callback (HMM_DMIRROR_STATS).
 *
 * Nodes 0 and 1 own device private memory; nodes 2 and 3 own device
 * coherent memory and exist only when test_hmm was loaded with the
 * spm_addr_dev0/1 parameters.  The coherent variants skip in the test body
 * when their node is missing (SKIP() in FIXTURE_SETUP is unreliable in
 * this kernel's harness).
 *
 * Copyright (C) 2026 The HMM series authors.
 */
#define _GNU_SOURCE
#include "../kselftest_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <lib/test_hmm_uapi.h>
#include <mm/gup_test.h>

#ifndef FOLL_WRITE
#define FOLL_WRITE		0x01
#endif
#ifndef FOLL_LONGTERM
#define FOLL_LONGTERM		0x10000
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open		434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd	438
#endif

#define PM_SWAP			0x4000000000000000ULL	/* bit 62 */
#define PM_PRESENT		0x8000000000000000ULL	/* bit 63 */
#define CGROUP_ROOT		"/sys/fs/cgroup"

/* ------------------------------------------------------------------------
 * Helpers
 */

/* Result of the last device command of a helper call. */
struct dres {
	uint64_t cpages;
	uint64_t faults;
};

static int dev_open(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", node);
	return open(path, O_RDWR | O_CLOEXEC);
}

/*
 * Issue one HMM_DMIRROR_* command, retrying while a signal interrupts it.
 * Returns 0 or -errno; @res, if given, receives cpages and faults.
 */
static int dev_cmd(int fd, unsigned long req, void *addr, void *buf,
		   unsigned long npages, struct dres *res)
{
	struct hmm_dmirror_cmd cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	cmd.addr = (uintptr_t)addr;
	cmd.ptr = (uintptr_t)buf;
	cmd.npages = npages;
	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (res) {
		res->cpages = cmd.cpages;
		res->faults = cmd.faults;
	}
	return 0;
}

/* Read the counters of the node of @fd and of @fd itself. */
static int dev_stats(int fd, struct hmm_dmirror_stats *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	do {
		ret = ioctl(fd, HMM_DMIRROR_STATS, st);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}

static size_t psize(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The number in @path: its first line's, or the one after "@key ". */
static long read_long(const char *path, const char *key)
{
	char line[256];
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			val = strtol(line, NULL, 10);
			break;
		}
		if (strncmp(line, key, strlen(key)) == 0 &&
		    line[strlen(key)] == ' ') {
			val = strtol(line + strlen(key) + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/*
 * What a PMD maps: 2 MiB with 4 KiB pages, 512 MiB with arm64's 64 KiB
 * pages.  THP says; without THP, a page table holds a page of 8 byte
 * entries.
 */
static size_t pmd_bytes(void)
{
	static size_t bytes;
	long v;

	if (!bytes) {
		v = read_long("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
			      NULL);
		bytes = v > 0 ? v : psize() / sizeof(uint64_t) * psize();
	}
	return bytes;
}

/* hugetlbfs's default page size (MAP_HUGETLB without a size). */
static size_t huge_bytes(void)
{
	static size_t bytes;
	long kb;

	if (!bytes) {
		kb = read_long("/proc/meminfo", "Hugepagesize:");
		bytes = kb > 0 ? (size_t)kb << 10 : pmd_bytes();
	}
	return bytes;
}

static void *map_anon(size_t size, int prot, int flags)
{
	return mmap(NULL, size, prot, flags | MAP_ANONYMOUS, -1, 0);
}

/* A PMD aligned chunk of @size bytes inside a larger anonymous mapping. */
static void *map_aligned(size_t size, void **base, size_t *base_size)
{
	char *p;

	*base_size = size + pmd_bytes();
	p = map_anon(*base_size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	if (p == MAP_FAILED)
		return MAP_FAILED;
	*base = p;
	return (void *)(((uintptr_t)p + pmd_bytes() - 1) & ~(pmd_bytes() - 1));
}

/* Fill @n 32-bit words with seed, seed + 1, ... */
static void pattern_fill(void *p, size_t bytes, uint32_t seed)
{
	uint32_t *w = p;
	size_t i;

	for (i = 0; i < bytes / sizeof(*w); i++)
		w[i] = seed + (uint32_t)i;
}

/*
 * @size bytes of fresh private anonymous read-write memory, and a bounce
 * buffer of the same size in *@buf.  ASSERT fails the calling test (the
 * 6.1 harness longjmps out of helpers that get _metadata).
 */
static char *anon_with_buf(struct __test_metadata *_metadata, size_t size,
			   char **buf)
{
	char *p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);

	ASSERT_NE(p, MAP_FAILED);
	*buf = malloc(size);
	ASSERT_NE(*buf, NULL);
	return p;
}

/* Index of the first word that breaks pattern_fill(seed), or -1. */
static long pattern_check(const void *p, size_t bytes, uint32_t seed)
{
	const uint32_t *w = p;
	size_t i;

	for (i = 0; i < bytes / sizeof(*w); i++)
		if (w[i] != seed + (uint32_t)i)
			return (long)i;
	return -1;
}

/* A temporary file on tmpfs of @size bytes, already unlinked. */
static int tmpfile_sized(size_t size)
{
	char name[] = "/tmp/hmm-tests-XXXXXX";
	int fd = mkstemp(name);

	if (fd < 0)
		return -1;
	unlink(name);
	if (ftruncate(fd, size)) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t pagemap_entry(void *addr)
{
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent),
		  ((uintptr_t)addr / psize()) * sizeof(ent)) != sizeof(ent))
		ent = 0;
	close(fd);
	return ent;
}

/* Value in kB of smaps field @key for the VMA that holds @addr, or -1. */
static long smaps_field(void *addr, const char *key)
{
	unsigned long start, end;
	bool in_vma = false;
	char line[256];
	long val = -1;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/*
		 * The VMA that holds @addr, which need not start it: with
		 * 64 KiB pages the test's buffer is a mapping of its own
		 * that may merge with the one under test.
		 */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in_vma = start <= (uintptr_t)addr && (uintptr_t)addr < end;
			continue;
		}
		if (!in_vma)
			continue;
		if (strncmp(line, key, strlen(key)) == 0 &&
		    line[strlen(key)] == ':') {
			val = strtol(line + strlen(key) + 1, NULL, 10);
			break;
		}
		if (strncmp(line, "VmFlags", 7) == 0)
			break;
	}
	fclose(f);
	return val;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* waitpid() with a deadline; returns the pid or 0 on timeout. */
static pid_t wait_bounded(pid_t pid, int *status, double secs)
{
	double end = now_sec() + secs;
	pid_t r;

	do {
		r = waitpid(pid, status, WNOHANG);
		if (r != 0)
			return r;
		usleep(10000);
	} while (now_sec() < end);
	return 0;
}

/* Fork, run @fn in the child and return its exit status (or -1). */
static int run_child(int (*fn)(void *), void *arg, double secs)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg));
	if (wait_bounded(pid, &status, secs) != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ------------------------------------------------------------------------
 * Fixtures
 */

FIXTURE(hmm)
{
	int fd;
	size_t psz;
};

FIXTURE_VARIANT(hmm)
{
	int node;
	bool coherent;
};

FIXTURE_VARIANT_ADD(hmm, hmm_device_private)
{
	.node = 0,
	.coherent = false,
};

FIXTURE_VARIANT_ADD(hmm, hmm_device_coherent)
{
	.node = 2,
	.coherent = true,
};

FIXTURE(hmm2)
{
	int fd0;
	int fd1;
	size_t psz;
};

FIXTURE_VARIANT(hmm2)
{
	int node0;
	int node1;
	bool coherent;
};

FIXTURE_VARIANT_ADD(hmm2, hmm2_device_private)
{
	.node0 = 0,
	.node1 = 1,
	.coherent = false,
};

FIXTURE_VARIANT_ADD(hmm2, hmm2_device_coherent)
{
	.node0 = 2,
	.node1 = 3,
	.coherent = true,
};

FIXTURE_SETUP(hmm)
{
	self->psz = psize();
	self->fd = dev_open(variant->node);
	/* Private nodes always exist; coherent ones are checked in the body. */
	if (!variant->coherent)
		ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(hmm)
{
	if (self->fd >= 0)
		close(self->fd);
}

FIXTURE_SETUP(hmm2)
{
	self->psz = psize();
	self->fd0 = dev_open(variant->node0);
	self->fd1 = dev_open(variant->node1);
	if (!variant->coherent) {
		ASSERT_GE(self->fd0, 0);
		ASSERT_GE(self->fd1, 0);
	}
}

FIXTURE_TEARDOWN(hmm2)
{
	if (self->fd0 >= 0)
		close(self->fd0);
	if (self->fd1 >= 0)
		close(self->fd1);
}

/* ------------------------------------------------------------------------
 * Upstream coverage
 */

/* Opening and closing a node registers and unregisters a mirror. */
TEST_F(hmm, open_close)
{
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = dev_open(variant->node);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(close(fd), 0);
}

/* A device read of CPU-written anonymous memory returns that data. */
TEST_F(hmm, anon_read)
{
	unsigned long npages = 64;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x100);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, &r), 0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(r.faults, 1);
	ASSERT_EQ(pattern_check(buf, size, 0x100), -1);
	free(buf);
	munmap(p, size);
}

/* PROT_NONE memory is unreadable by the device until mprotect allows it. */
TEST_F(hmm, anon_read_prot)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	buf = calloc(1, size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 7);
	ASSERT_EQ(mprotect(p, size, PROT_NONE), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL),
		  -EFAULT);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 7), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL),
		  -EPERM);
	free(buf);
	munmap(p, size);
}

/* A device write to untouched anonymous memory is seen by the CPU. */
TEST_F(hmm, anon_write)
{
	unsigned long npages = 64;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(buf, size, 0xabc);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, &r), 0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(r.faults, 1);
	ASSERT_EQ(pattern_check(p, size, 0xabc), -1);
	free(buf);
	munmap(p, size);
}

/* Device writes to read-only memory fail with EPERM until mprotect(RW). */
TEST_F(hmm, anon_write_prot)
{
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	/* Reading maps the zero page. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(buf[0], 0);
	pattern_fill(buf, size, 99);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL),
		  -EPERM);
	ASSERT_EQ(p[0], 0);
	ASSERT_EQ(mprotect(p, size, PROT_READ | PROT_WRITE), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 99), -1);
	free(buf);
	munmap(p, size);
}

struct child_write_arg {
	int node;
	char *p;
	size_t size;
	unsigned long npages;
	uint32_t seed;
};

/* Child side: mirror our own copy of the mm and write through it. */
static int child_device_write(void *data)
{
	struct child_write_arg *a = data;
	char *buf = malloc(a->size);
	int fd = dev_open(a->node);

	if (fd < 0 || !buf)
		return 10;
	pattern_fill(buf, a->size, a->seed);
	if (dev_cmd(fd, HMM_DMIRROR_WRITE, a->p, buf, a->npages, NULL))
		return 11;
	if (pattern_check(a->p, a->size, a->seed) != -1)
		return 12;
	close(fd);
	return 0;
}

/* A child's device writes to private memory stay out of the parent. */
TEST_F(hmm, anon_write_child)
{
	struct child_write_arg a = { .node = variant->node, .npages = 32 };

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	a.size = a.npages * self->psz;
	a.seed = 0x5000;
	a.p = map_anon(a.size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(a.p, MAP_FAILED);
	pattern_fill(a.p, a.size, 1);
	ASSERT_EQ(run_child(child_device_write, &a, 20), 0);
	ASSERT_EQ(pattern_check(a.p, a.size, 1), -1);
	munmap(a.p, a.size);
}

/* A child's device writes to MAP_SHARED memory are seen by the parent. */
TEST_F(hmm, anon_write_child_shared)
{
	struct child_write_arg a = { .node = variant->node, .npages = 32 };

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	a.size = a.npages * self->psz;
	a.seed = 0x6000;
	a.p = map_anon(a.size, PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(a.p, MAP_FAILED);
	pattern_fill(a.p, a.size, 1);
	ASSERT_EQ(run_child(child_device_write, &a, 20), 0);
	ASSERT_EQ(pattern_check(a.p, a.size, 0x6000), -1);
	munmap(a.p, a.size);
}

/* Device writes into a transparent huge page land in the THP. */
TEST_F(hmm, anon_write_huge)
{
	size_t size = pmd_bytes(), base_size;
	unsigned long npages = size / self->psz;
	void *base;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_aligned(size, &base, &base_size);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_EQ(madvise(p, size, MADV_HUGEPAGE), 0);
	p[0] = 1;
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(buf, size, 0x77);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 0x77), -1);
	free(buf);
	munmap(base, base_size);
}

/* Device reads and writes work on a hugetlbfs mapping. */
TEST_F(hmm, anon_write_hugetlbfs)
{
	size_t size = huge_bytes();
	unsigned long npages = size / self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB);
	if (p == MAP_FAILED)
		SKIP(return, "no hugetlb page available");
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 3);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 3), -1);
	pattern_fill(buf, size, 0x33);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 0x33), -1);
	free(buf);
	munmap(p, size);
}

/* The device reads what write(2) put in a shared file mapping. */
TEST_F(hmm, file_read)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *buf;
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = tmpfile_sized(size);
	ASSERT_GE(fd, 0);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(buf, size, 0x4242);
	ASSERT_EQ(pwrite(fd, buf, size, 0), (ssize_t)size);
	memset(buf, 0, size);
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0x4242), -1);
	free(buf);
	munmap(p, size);
	close(fd);
}

/* Device writes to a shared file mapping reach the page cache. */
TEST_F(hmm, file_write)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *buf;
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = tmpfile_sized(size);
	ASSERT_GE(fd, 0);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(p, MAP_FAILED);
	pattern_fill(buf, size, 0x2424);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 0x2424), -1);
	memset(buf, 0, size);
	ASSERT_EQ(pread(fd, buf, size, 0), (ssize_t)size);
	ASSERT_EQ(pattern_check(buf, size, 0x2424), -1);
	free(buf);
	munmap(p, size);
	close(fd);
}

/* Migration to device memory keeps the data and reports every page. */
TEST_F(hmm, migrate)
{
	unsigned long npages = 64;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x1000);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  &r), 0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(pattern_check(buf, size, 0x1000), -1);
	ASSERT_EQ(pattern_check(p, size, 0x1000), -1);
	free(buf);
	munmap(p, size);
}

/* COW copies of a private file mapping migrate like anonymous memory. */
TEST_F(hmm, migrate_file_private)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = tmpfile_sized(size);
	ASSERT_GE(fd, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(p, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 0x9090);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  &r), 0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(pattern_check(buf, size, 0x9090), -1);
	ASSERT_EQ(pattern_check(p, size, 0x9090), -1);
	/* The file itself never saw the private copies. */
	ASSERT_EQ(pread(fd, buf, self->psz, 0), (ssize_t)self->psz);
	ASSERT_EQ(buf[0], 0);
	free(buf);
	munmap(p, size);
	close(fd);
}

/* CPU faults bring migrated pages back; they can be migrated again. */
TEST_F(hmm, migrate_fault)
{
	unsigned long npages = 32;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;
	int round;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 5);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
				  npages, &r), 0);
		ASSERT_EQ(r.cpages, npages);
		/* The CPU read faults the pages back (private memory). */
		ASSERT_EQ(pattern_check(p, size, 5), -1);
	}
	/* Explicit migration back reports what was moved. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, p, buf, npages,
			  &r), 0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(pattern_check(p, size, 5), -1);
	free(buf);
	munmap(p, size);
}

/* Releasing device memory evicts migrated pages with their data. */
TEST_F(hmm, migrate_release)
{
	unsigned long npages = 32;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x777);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_RELEASE, p, NULL, npages,
			  NULL), 0);
	/* Evicted pages are ordinary again: no device page in the snapshot. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ((unsigned char)buf[0] & 0xf0, 0);
	ASSERT_EQ(pattern_check(p, size, 0x777), -1);
	free(buf);
	munmap(p, size);
}

/* Shared anonymous memory cannot migrate: nothing is device mapped. */
TEST_F(hmm, migrate_shared)
{
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(p, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	memset(p, 1, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), -ENOENT);
	free(buf);
	munmap(p, size);
}

/* Migration refuses holes and unreadable VMAs but moves readable ones. */
TEST_F(hmm2, migrate_mixed)
{
	unsigned long npages = 6;
	size_t psz = self->psz, size = npages * psz;
	struct dres r;
	char *p, *buf;

	if (self->fd0 < 0 || self->fd1 < 0)
		SKIP(return, "/dev/hmm_dmirror%d/%d absent",
		     variant->node0, variant->node1);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x3131);
	ASSERT_EQ(munmap(p + 3 * psz, psz), 0);
	ASSERT_EQ(mprotect(p + 5 * psz, psz, PROT_NONE), 0);
	/* Whole range: hole at page 3. */
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
			  npages, NULL), -EINVAL);
	/* PROT_NONE page. */
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, p + 5 * psz,
			  buf, 1, NULL), -EINVAL);
	/* Read-only is fine. */
	ASSERT_EQ(mprotect(p + 4 * psz, psz, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd1, HMM_DMIRROR_MIGRATE_TO_DEV, p + 4 * psz,
			  buf, 1, &r), 0);
	ASSERT_EQ(r.cpages, 1);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, 3,
			  &r), 0);
	ASSERT_EQ(r.cpages, 3);
	ASSERT_EQ(pattern_check(buf, 3 * psz, 0x3131), -1);
	ASSERT_EQ(pattern_check(p, 3 * psz, 0x3131), -1);
	ASSERT_EQ(pattern_check(p + 4 * psz, psz,
				0x3131 + 4 * psz / 4), -1);
	free(buf);
	munmap(p, size);
}

/* Many migrate / CPU touch / migrate back rounds keep the data. */
TEST_F(hmm, migrate_multiple)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;
	int i;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	for (i = 0; i < 20; i++) {
		p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		ASSERT_NE(p, MAP_FAILED);
		pattern_fill(p, size, i * 1000);
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
				  npages, &r), 0);
		ASSERT_EQ(r.cpages, npages);
		ASSERT_EQ(pattern_check(buf, size, i * 1000), -1);
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, p, buf,
				  npages, &r), 0);
		ASSERT_EQ(pattern_check(p, size, i * 1000), -1);
		munmap(p, size);
	}
	free(buf);
}

/* Repeated device reads see every CPU update in between. */
TEST_F(hmm, anon_read_multiple)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *buf;
	int i;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	for (i = 0; i < 50; i++) {
		pattern_fill(p, size, i);
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages,
				  NULL), 0);
		ASSERT_EQ(pattern_check(buf, size, i), -1);
	}
	free(buf);
	munmap(p, size);
}

struct unmap_arg {
	char *p;
	size_t size;
};

static void *unmap_later(void *data)
{
	struct unmap_arg *a = data;

	usleep(rand() % 500);
	munmap(a->p, a->size);
	return NULL;
}

/* munmap racing a device read: success with full data, or EFAULT. */
TEST_F(hmm, anon_teardown)
{
	unsigned long npages = 64;
	size_t size = npages * self->psz;
	struct unmap_arg a;
	pthread_t th;
	char *buf;
	int i, ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	for (i = 0; i < 40; i++) {
		a.size = size;
		a.p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		ASSERT_NE(a.p, MAP_FAILED);
		pattern_fill(a.p, size, i);
		ASSERT_EQ(pthread_create(&th, NULL, unmap_later, &a), 0);
		ret = dev_cmd(self->fd, HMM_DMIRROR_READ, a.p, buf, npages,
			      NULL);
		pthread_join(th, NULL);
		/* ASSERT_*() expand to two statements: keep the braces. */
		if (ret == 0) {
			ret = pattern_check(buf, size, i);
			ASSERT_EQ(ret, -1);
		} else {
			ASSERT_EQ(ret, -EFAULT);
		}
	}
	free(buf);
}

/* A VM_MIXEDMAP mapping of the node is mirrored read-only. */
TEST_F(hmm, mixedmap)
{
	unsigned char m[1];
	char *p;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = mmap(NULL, self->psz, PROT_READ, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, 1, NULL), 0);
	ASSERT_EQ(m[0], HMM_DMIRROR_PROT_READ);
	munmap(p, self->psz);
}

/* Snapshots report every kind of CPU mapping, local and remote. */
TEST_F(hmm2, snapshot)
{
	unsigned long npages = 7;
	size_t psz = self->psz, size = npages * psz;
	unsigned char m[7];
	char *p, *buf;

	if (self->fd0 < 0 || self->fd1 < 0)
		SKIP(return, "/dev/hmm_dmirror%d/%d absent",
		     variant->node0, variant->node1);
	p = map_anon(size, PROT_NONE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	/* 0: PROT_NONE, 1: hole, 2: zero page, 3: read-only, 4: writable. */
	ASSERT_EQ(munmap(p + psz, psz), 0);
	ASSERT_EQ(mprotect(p + 2 * psz, psz, PROT_READ), 0);
	/* Read the page in: the zero page. */
	(void)__atomic_load_n(&p[2 * psz], __ATOMIC_RELAXED);
	ASSERT_EQ(mprotect(p + 3 * psz, 4 * psz, PROT_READ | PROT_WRITE), 0);
	p[3 * psz] = 1;
	ASSERT_EQ(mprotect(p + 3 * psz, psz, PROT_READ), 0);
	p[4 * psz] = 1;
	p[5 * psz] = 1;
	p[6 * psz] = 1;
	/* 5: on our device, 6: on the other device. */
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, p + 5 * psz,
			  buf, 1, NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd1, HMM_DMIRROR_MIGRATE_TO_DEV, p + 6 * psz,
			  buf, 1, NULL), 0);
	memset(m, 0xee, sizeof(m));
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	ASSERT_EQ(m[0], HMM_DMIRROR_PROT_ERROR);
	ASSERT_EQ(m[1], HMM_DMIRROR_PROT_ERROR);
	ASSERT_EQ(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ);
	ASSERT_EQ(m[3], HMM_DMIRROR_PROT_READ);
	ASSERT_EQ(m[4], HMM_DMIRROR_PROT_WRITE);
	if (!variant->coherent) {
		ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL |
				HMM_DMIRROR_PROT_WRITE);
		ASSERT_EQ(m[6], HMM_DMIRROR_PROT_NONE);
	} else {
		ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL |
				HMM_DMIRROR_PROT_WRITE);
		ASSERT_EQ(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE |
				HMM_DMIRROR_PROT_WRITE);
	}
	free(buf);
	munmap(p, size);
}

/* A hugetlb page is reported as one PMD (or PUD) mapping, then READ. */
TEST_F(hmm, compound)
{
	size_t size = huge_bytes();
	unsigned long i, npages = size / self->psz;
	unsigned char *m, size_bit;
	char *p;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB);
	if (p == MAP_FAILED)
		SKIP(return, "no hugetlb page available");
	m = malloc(npages);
	ASSERT_NE(m, NULL);
	memset(p, 1, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	size_bit = m[0] & (HMM_DMIRROR_PROT_PMD | HMM_DMIRROR_PROT_PUD);
	ASSERT_NE(size_bit, 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE | size_bit);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(m[i], HMM_DMIRROR_PROT_READ | size_bit);
	free(m);
	munmap(p, size);
}

/* Two devices mirror the same pages and both see later CPU writes. */
TEST_F(hmm2, double_map)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *b0, *b1;

	if (self->fd0 < 0 || self->fd1 < 0)
		SKIP(return, "/dev/hmm_dmirror%d/%d absent",
		     variant->node0, variant->node1);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	b0 = malloc(size);
	b1 = malloc(size);
	ASSERT_NE(b0, NULL);
	ASSERT_NE(b1, NULL);
	pattern_fill(p, size, 11);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_READ, p, b0, npages, NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd1, HMM_DMIRROR_READ, p, b1, npages, NULL), 0);
	ASSERT_EQ(pattern_check(b0, size, 11), -1);
	ASSERT_EQ(pattern_check(b1, size, 11), -1);
	ASSERT_EQ(mprotect(p, size, PROT_READ | PROT_WRITE), 0);
	pattern_fill(p, size, 12);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_READ, p, b0, npages, NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd1, HMM_DMIRROR_READ, p, b1, npages, NULL), 0);
	ASSERT_EQ(pattern_check(b0, size, 12), -1);
	ASSERT_EQ(pattern_check(b1, size, 12), -1);
	free(b0);
	free(b1);
	munmap(p, size);
}

/* Exclusive access is revoked by CPU access, which sees device data. */
TEST_F(hmm, exclusive)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	struct dres r;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x55);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages, &r),
		  0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(pattern_check(buf, size, 0x55), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, p, NULL,
			  npages, NULL), -EPERM);
	/* CPU access revokes it page by page. */
	pattern_fill(p, size, 0x56);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, p, NULL,
			  npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 0x56), -1);
	free(buf);
	munmap(p, size);
}

/*
 * Evicting device memory while the device holds exclusive access to it, as
 * a driver reclaiming its memory under a running atomics kernel: coherent
 * pages under exclusive access stay (-EBUSY: they are not mapped, so
 * migration cannot move them), but the failed eviction must leave them
 * exclusive and leak nothing.  Once CPU access has revoked it,
 * everything is evicted with its data.  On 6.1 the failed migration
 * "restored" each device exclusive entry as if it were a migration entry,
 * with a reference too many: the page could never be evicted or freed.
 */
TEST_F(hmm, exclusive_release)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	unsigned long i;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x4d);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, buf, npages,
			  NULL), 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ((unsigned char)buf[i],
			  HMM_DMIRROR_PROT_WRITE |
			  (variant->coherent ?
			   HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
			   HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL));
	/*
	 * Device private pages come back to system memory for exclusive
	 * access; device coherent ones stay where they are.
	 */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages,
			  NULL), 0);
	ret = dev_cmd(self->fd, HMM_DMIRROR_RELEASE, p, NULL, npages, NULL);
	ASSERT_EQ(ret, variant->coherent ? -EBUSY : 0);
	/* Still exclusive: nothing turned the entries back into mappings. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, buf, npages,
			  NULL), 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ((unsigned char)buf[i], HMM_DMIRROR_PROT_NONE);

	/* The CPU revokes it and sees the data; then all of it goes. */
	ASSERT_EQ(pattern_check(p, size, 0x4d), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_RELEASE, p, NULL, npages,
			  NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, buf, npages,
			  NULL), 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ((unsigned char)buf[i] & 0xf0, 0);
	ASSERT_EQ(pattern_check(p, size, 0x4d), -1);
	free(buf);
	munmap(p, size);
}

/* mprotect(PROT_READ) of exclusive pages stops device writes. */
TEST_F(hmm, exclusive_mprotect)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x66);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL),
		  -EPERM);
	ASSERT_EQ(pattern_check(p, size, 0x66), -1);
	free(buf);
	munmap(p, size);
}

/* fork() after exclusive access: parent and child get their own copies. */
TEST_F(hmm, exclusive_cow)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	int status;
	char *p, *buf;
	pid_t pid;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0x88);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages,
			  NULL), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (pattern_check(p, size, 0x88) != -1)
			_exit(1);
		pattern_fill(p, size, 0x99);
		_exit(pattern_check(p, size, 0x99) != -1);
	}
	pattern_fill(p, size, 0xaa);
	ASSERT_EQ(wait_bounded(pid, &status, 20), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(pattern_check(p, size, 0xaa), -1);
	free(buf);
	munmap(p, size);
}

static int gup_run(int gup_fd, void *addr, unsigned long cmd,
		   size_t size, unsigned int flags)
{
	struct gup_test g;

	memset(&g, 0, sizeof(g));
	g.addr = (uintptr_t)addr;
	g.size = size;
	g.nr_pages_per_call = 1;
	g.gup_flags = flags;
	return ioctl(gup_fd, cmd, &g);
}

/* GUP of device pages migrates private ones back; data survives. */
TEST_F(hmm, hmm_gup_test)
{
	unsigned long npages = 4;
	size_t psz = self->psz, size = npages * psz;
	unsigned char m[4];
	char *p, *buf;
	int gup_fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	if (gup_fd < 0)
		SKIP(return, "no /sys/kernel/debug/gup_test");
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0xd0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(gup_run(gup_fd, p, GUP_BASIC_TEST, psz, FOLL_WRITE), 0);
	ASSERT_EQ(gup_run(gup_fd, p + psz, PIN_BASIC_TEST, psz, FOLL_WRITE), 0);
	ASSERT_EQ(gup_run(gup_fd, p + 2 * psz, PIN_FAST_BENCHMARK, psz,
			  FOLL_LONGTERM), 0);
	ASSERT_EQ(gup_run(gup_fd, p + 3 * psz, PIN_LONGTERM_BENCHMARK, psz,
			  FOLL_WRITE), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	/* Long-term pins always move pages out of device memory. */
	ASSERT_EQ(m[2], HMM_DMIRROR_PROT_WRITE);
	ASSERT_EQ(m[3], HMM_DMIRROR_PROT_WRITE);
	if (!variant->coherent) {
		ASSERT_EQ(m[0], HMM_DMIRROR_PROT_WRITE);
		ASSERT_EQ(m[1], HMM_DMIRROR_PROT_WRITE);
	}
	ASSERT_EQ(pattern_check(p, size, 0xd0), -1);
	close(gup_fd);
	free(buf);
	munmap(p, size);
}

/* Device pages shared by fork() can still be taken exclusive after COW. */
TEST_F(hmm, hmm_cow_in_device)
{
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	int status;
	char *p, *buf;
	pid_t pid;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0xc0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(pattern_check(p, size, 0xc0) != -1);
	ASSERT_EQ(wait_bounded(pid, &status, 20), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0xc0), -1);
	pattern_fill(p, size, 0xc1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0xc1), -1);
	free(buf);
	munmap(p, size);
}

/* ------------------------------------------------------------------------
 * New: OOM kill inside a memory cgroup with a live mirror
 */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

/* Make a memory cgroup limited to @max; 0 or a reason to skip. */
static const char *memcg_create(char *dir, size_t len, const char *max)
{
	char path[256];

	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK)) {
		mkdir(CGROUP_ROOT, 0755);
		if (mount("none", CGROUP_ROOT, "cgroup2", 0, NULL))
			return "cannot mount cgroup2";
	}
	/* EBUSY/EINVAL are fine if memory is already enabled. */
	write_str(CGROUP_ROOT "/cgroup.subtree_control", "+memory");
	snprintf(dir, len, CGROUP_ROOT "/hmm-tests-%d", getpid());
	if (mkdir(dir, 0755) && errno != EEXIST)
		return "cannot create a cgroup";
	snprintf(path, sizeof(path), "%s/memory.max", dir);
	if (write_str(path, max)) {
		rmdir(dir);
		return "no memory controller";
	}
	snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
	write_str(path, "0");
	return NULL;
}

struct holder {
	int fd;
	char *addr;
	unsigned long npages;
	unsigned char *m;
	int stop;		/* set with __atomic_store_n() */
	int last;
	unsigned long rounds;
};

/*
 * Keep snapshotting a large, untouched range of the victim through its
 * mirror.  Every snapshot holds a reference on the victim's mm users, so
 * exit_mmap() is deferred and the OOM reaper, which runs two seconds after
 * the kill in 6.1, gets to unmap the victim's memory first.
 */
static void *holder_fn(void *data)
{
	struct holder *h = data;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		h->last = dev_cmd(h->fd, HMM_DMIRROR_SNAPSHOT, h->addr, h->m,
				  h->npages, NULL);
		h->rounds++;
		if (h->last == -EINVAL)	/* the mm is gone */
			break;
	}
	return NULL;
}

#define OOM_HOLD_BYTES	0x4000000000UL	/* 256 GiB */

/*
 * A child with a live mirror and device-touched memory is OOM-killed in a
 * memory cgroup.  Asserted: it dies of SIGKILL, memory.events counts the
 * OOM kill, the group empties and memory.current falls back, no step
 * waits unboundedly, and the sync callback never failed a blockable
 * update.  If the OOM reaper reached the victim's mm before exit_mmap()
 * (the parent holds it alive through the mirror for about 4 s), the
 * device counters must show non-blockable updates, and every -EAGAIN must
 * have been a non-blockable one; if the victim exited first the reaper
 * skips it (MMF_OOM_SKIP) and only the rest is asserted, with a note.
 */
TEST_F_TIMEOUT(hmm, oom_reaper_nonblock, 180)
{
	struct hmm_dmirror_stats before, after;
	char dir[200], path[300], msg[64];
	int ctl[2], ready[2], status, cfd;
	struct holder h = { 0 };
	const char *why;
	pthread_t th;
	long cur;
	pid_t pid;
	int pidfd, i, n;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	why = memcg_create(dir, sizeof(dir), "64M");
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(pipe(ctl), 0);
	ASSERT_EQ(pipe(ready), 0);
	ASSERT_EQ(dev_stats(self->fd, &before), 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		size_t sz = 4UL << 20;
		char *p, *big, *buf, c;
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		if (write_str(path, "0"))
			_exit(20);
		fd = dev_open(variant->node);
		p = map_anon(sz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		big = map_anon(OOM_HOLD_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_NORESERVE);
		buf = malloc(sz);
		if (fd < 0 || p == MAP_FAILED || big == MAP_FAILED || !buf)
			_exit(21);
		pattern_fill(buf, sz, 1);
		if (dev_cmd(fd, HMM_DMIRROR_WRITE, p, buf, sz / psize(), NULL))
			_exit(22);
		if (dev_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
			    sz / psize() / 2, NULL))
			_exit(23);
		snprintf(msg, sizeof(msg), "%d %lx", fd, (unsigned long)big);
		if (write(ready[1], msg, sizeof(msg)) != sizeof(msg))
			_exit(24);
		if (read(ctl[0], &c, 1) != 1)
			_exit(25);
		/* Allocate until the memcg OOM killer stops us. */
		for (i = 0; i < 1024; i++) {
			char *q = map_anon(1UL << 20, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE);

			if (q == MAP_FAILED)
				_exit(26);
			memset(q, i, 1UL << 20);
		}
		_exit(27);
	}
	close(ctl[0]);
	close(ready[1]);
	ASSERT_EQ(read(ready[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	n = sscanf(msg, "%d %lx", &cfd, (unsigned long *)&h.addr);
	ASSERT_EQ(n, 2);

	pidfd = syscall(__NR_pidfd_open, pid, 0);
	h.fd = pidfd < 0 ? -1 : syscall(__NR_pidfd_getfd, pidfd, cfd, 0);
	h.npages = OOM_HOLD_BYTES / self->psz;
	h.m = malloc(h.npages);
	ASSERT_NE(h.m, NULL);
	if (h.fd >= 0) {
		n = pthread_create(&th, NULL, holder_fn, &h);
		ASSERT_EQ(n, 0);
	} else {
		TH_LOG("pidfd_getfd unavailable: no reaper window");
	}

	ASSERT_EQ(write(ctl[1], "g", 1), 1);
	ASSERT_EQ(wait_bounded(pid, &status, 90), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGKILL);

	if (h.fd >= 0) {
		/* Give the OOM reaper (2 s delay) its chance, bounded. */
		sleep(4);
		__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		close(h.fd);
	}
	if (pidfd >= 0)
		close(pidfd);

	snprintf(path, sizeof(path), "%s/memory.events", dir);
	ASSERT_GE(read_long(path, "oom_kill"), 1);
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	for (i = 0; i < 100; i++) {
		cur = read_long(path, NULL);
		if (cur >= 0 && cur < (8L << 20))
			break;
		usleep(50000);
	}
	ASSERT_LT(cur, 8L << 20);
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	ASSERT_EQ(read_long(path, NULL), -1);	/* empty file */
	ASSERT_EQ(rmdir(dir), 0);

	ASSERT_EQ(dev_stats(self->fd, &after), 0);
	ASSERT_GT(after.device.syncs, before.device.syncs);
	ASSERT_LE(after.device.eagain - before.device.eagain,
		  after.device.nonblockable - before.device.nonblockable);
	if (after.device.nonblockable == before.device.nonblockable) {
		TH_LOG("OOM reaper did not reach the mirror (victim exited first, %lu rounds)",
		       h.rounds);
	} else {
		TH_LOG("non-blockable updates: %llu, -EAGAIN: %llu",
		       (unsigned long long)(after.device.nonblockable -
					    before.device.nonblockable),
		       (unsigned long long)(after.device.eagain -
					    before.device.eagain));
	}
	free(h.m);
	close(ctl[1]);
	close(ready[0]);
}

/* ------------------------------------------------------------------------
 * New: device reads racing CPU page table changes
 */

enum race_kind { RACE_MPROTECT, RACE_REMAP, RACE_DONTNEED, RACE_FORK };

struct race {
	pthread_mutex_t lock;
	int stop;		/* set with __atomic_store_n() */
	int backoff;		/* same; the reader is starving */
	enum race_kind kind;
	char *p;
	size_t psz;
	unsigned long npages;
	uint64_t gen;		/* last generation written, under @lock */
	unsigned long ops;
	int err;
};

static void race_write_page(struct race *r, unsigned long i, uint64_t gen)
{
	__atomic_store_n((uint64_t *)(r->p + i * r->psz), gen, __ATOMIC_RELAXED);
}

static void *race_cpu(void *data)
{
	struct race *r = data;
	unsigned int seed = 1;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		unsigned long k = rand_r(&seed) % r->npages;
		char *page = r->p + k * r->psz;
		int fds[2];
		pid_t pid;

		pthread_mutex_lock(&r->lock);
		switch (r->kind) {
		case RACE_MPROTECT:
			/* The CPU writer is kept out while read-only. */
			if (mprotect(r->p, r->npages * r->psz, PROT_READ))
				r->err = errno;
			usleep(50);
			if (mprotect(r->p, r->npages * r->psz,
				     PROT_READ | PROT_WRITE))
				r->err = errno;
			break;
		case RACE_REMAP:
			if (munmap(page, r->psz) ||
			    mmap(page, r->psz, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0) == MAP_FAILED)
				r->err = errno;
			race_write_page(r, k, r->gen);
			break;
		case RACE_DONTNEED:
			if (madvise(page, r->psz, MADV_DONTNEED))
				r->err = errno;
			race_write_page(r, k, r->gen);
			break;
		case RACE_FORK:
			/* The child keeps the pages shared (COW) a while. */
			if (pipe(fds)) {
				r->err = errno;
				break;
			}
			pid = fork();
			if (pid == 0) {
				char c;

				close(fds[1]);
				_exit(read(fds[0], &c, 1) < 0);
			}
			close(fds[0]);
			pthread_mutex_unlock(&r->lock);
			usleep(200);
			close(fds[1]);
			if (pid > 0)
				waitpid(pid, NULL, 0);
			else
				r->err = errno;
			pthread_mutex_lock(&r->lock);
			break;
		}
		r->ops++;
		pthread_mutex_unlock(&r->lock);
		/* Still racing, but leaving gaps a whole read can fit in. */
		if (__atomic_load_n(&r->backoff, __ATOMIC_ACQUIRE))
			usleep(200);
		else
			sched_yield();
	}
	return NULL;
}

/*
 * 4 s (or 400 rounds) of racing.  On a slow (debug, emulated) kernel every
 * read may hit an unmapped window in that time, so go on until one read
 * got through, for at most 30 s more, with the racing thread pausing
 * between its operations (race_cpu()).
 */
static bool race_go_on(unsigned long it, unsigned long reads, double end,
		       double last)
{
	double t = now_sec();

	return (it < 400 && t < end) || (!reads && t < last);
}

/*
 * Main side of a race: write generation N to every page from the CPU, then
 * read through the device.  Every page must hold a generation >= N (or 0
 * where the racing thread just discarded the page), never an older one:
 * that would be data from a page the device should have forgotten.
 */
static void race_run(struct __test_metadata *_metadata, int fd,
		     enum race_kind kind)
{
	struct race r = { .kind = kind, .npages = 32 };
	unsigned long i, it, reads = 0;
	double end = now_sec() + 4, last = end + 30;
	uint64_t *buf, start;
	pthread_t th;
	int ret;

	r.psz = psize();
	pthread_mutex_init(&r.lock, NULL);
	r.p = map_anon(r.npages * r.psz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(r.p, MAP_FAILED);
	buf = malloc(r.npages * r.psz);
	ASSERT_NE(buf, NULL);
	ASSERT_EQ(pthread_create(&th, NULL, race_cpu, &r), 0);

	for (it = 0; race_go_on(it, reads, end, last); it++) {
		if (!reads && now_sec() >= end)
			__atomic_store_n(&r.backoff, 1, __ATOMIC_RELEASE);
		pthread_mutex_lock(&r.lock);
		start = ++r.gen;
		for (i = 0; i < r.npages; i++)
			race_write_page(&r, i, start);
		pthread_mutex_unlock(&r.lock);

		ret = dev_cmd(fd, HMM_DMIRROR_READ, r.p, buf, r.npages, NULL);
		if (kind == RACE_REMAP && ret == -EFAULT)
			continue;	/* hit the unmapped window */
		if (ret) {
			__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
			pthread_join(th, NULL);
			ASSERT_EQ(ret, 0);
		}
		reads++;
		for (i = 0; i < r.npages; i++) {
			uint64_t v = buf[i * r.psz / sizeof(*buf)];

			if (v == 0 && (kind == RACE_REMAP ||
				       kind == RACE_DONTNEED))
				continue;
			if (v < start || v > r.gen) {
				__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
				pthread_join(th, NULL);
				TH_LOG("page %lu: generation %llu, wrote %llu",
				       i, (unsigned long long)v,
				       (unsigned long long)start);
				ASSERT_TRUE(0);
			}
		}
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ASSERT_EQ(r.err, 0);
	ASSERT_GT(r.ops, 0);
	ASSERT_GT(reads, 0);
	free(buf);
	munmap(r.p, r.npages * r.psz);
}

/* Device reads racing mprotect() never see a stale generation. */
TEST_F_TIMEOUT(hmm, race_mprotect, 60)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	race_run(_metadata, self->fd, RACE_MPROTECT);
}

/* Device reads racing munmap()+mmap(MAP_FIXED) never see a stale page. */
TEST_F_TIMEOUT(hmm, race_munmap_mmap, 60)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	race_run(_metadata, self->fd, RACE_REMAP);
}

/* Device reads racing MADV_DONTNEED never see a discarded page. */
TEST_F_TIMEOUT(hmm, race_dontneed, 60)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	race_run(_metadata, self->fd, RACE_DONTNEED);
}

/* Device reads racing fork() (COW breaks) never see the old copy. */
TEST_F_TIMEOUT(hmm, race_fork, 60)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	race_run(_metadata, self->fd, RACE_FORK);
}

struct wrace {
	char *p;
	size_t size;
	int stop;		/* set with __atomic_store_n() */
};

static void *wrace_unmap(void *data)
{
	struct wrace *w = data;

	usleep(rand() % 300);
	/* Replace the range by fresh zero pages the device never mapped. */
	mmap(w->p, w->size, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return NULL;
}

/*
 * Device writes racing a MAP_FIXED replacement of the range: each new page
 * holds zeroes or the device's complete page, written after the switch;
 * never a torn mix that would show a write split across the old page.
 */
TEST_F_TIMEOUT(hmm, race_write_remap, 60)
{
	unsigned long npages = 16, i, it;
	size_t psz = self->psz, size = npages * psz;
	struct wrace w = { .size = size };
	pthread_t th;
	char *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	for (i = 0; i < npages; i++)
		pattern_fill(buf + i * psz, psz, 0x10000 * (i + 1));
	for (it = 0; it < 60; it++) {
		w.p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		ASSERT_NE(w.p, MAP_FAILED);
		ASSERT_EQ(pthread_create(&th, NULL, wrace_unmap, &w), 0);
		ret = dev_cmd(self->fd, HMM_DMIRROR_WRITE, w.p, buf, npages,
			      NULL);
		pthread_join(th, NULL);
		ASSERT_EQ(ret, 0);
		for (i = 0; i < npages; i++) {
			uint32_t *q = (uint32_t *)(w.p + i * psz);

			if (q[0] == 0 && q[psz / 4 - 1] == 0)
				continue;
			ASSERT_EQ(pattern_check(q, psz, 0x10000 * (i + 1)), -1);
		}
		/* The device must not keep a mapping of the old pages. */
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, w.p, buf + 0,
				  0 + 1, NULL), 0);
		ASSERT_EQ(memcmp(buf, w.p, psz), 0);
		pattern_fill(buf, psz, 0x10000);
		munmap(w.p, size);
	}
	free(buf);
}

/* ------------------------------------------------------------------------
 * New: several mirrors of one mm
 */

static uint64_t ev(const struct hmm_dmirror_counters *c, int e)
{
	return c->events[e];
}

/* Both devices' mirrors see an munmap; closing one leaves the other. */
TEST_F(hmm2, mirrors_all_invalidated)
{
	struct hmm_dmirror_stats a0, a1, b0, b1;
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	char *p, *q, *buf;

	if (self->fd0 < 0 || self->fd1 < 0)
		SKIP(return, "/dev/hmm_dmirror%d/%d absent",
		     variant->node0, variant->node1);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	q = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_NE(q, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 1);
	pattern_fill(q, size, 2);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd1, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_READ, q, buf, npages, NULL), 0);
	ASSERT_EQ(dev_stats(self->fd0, &a0), 0);
	ASSERT_EQ(dev_stats(self->fd1, &a1), 0);
	ASSERT_EQ(munmap(p, size), 0);
	ASSERT_EQ(dev_stats(self->fd0, &b0), 0);
	ASSERT_EQ(dev_stats(self->fd1, &b1), 0);
	ASSERT_GT(ev(&b0.mirror, HMM_DMIRROR_EVENT_UNMAP),
		  ev(&a0.mirror, HMM_DMIRROR_EVENT_UNMAP));
	ASSERT_GT(ev(&b1.mirror, HMM_DMIRROR_EVENT_UNMAP),
		  ev(&a1.mirror, HMM_DMIRROR_EVENT_UNMAP));
	/* The device counters include the mirror's. */
	ASSERT_GE(b0.device.syncs, b0.mirror.syncs);
	/* Dropping the second mirror does not disturb the first. */
	ASSERT_EQ(close(self->fd1), 0);
	self->fd1 = -1;
	pattern_fill(q, size, 3);
	ASSERT_EQ(dev_cmd(self->fd0, HMM_DMIRROR_READ, q, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 3), -1);
	ASSERT_EQ(mprotect(q, size, PROT_READ), 0);
	ASSERT_EQ(dev_stats(self->fd0, &a0), 0);
	ASSERT_GT(ev(&a0.mirror, HMM_DMIRROR_EVENT_PROTECTION),
		  ev(&b0.mirror, HMM_DMIRROR_EVENT_PROTECTION));
	free(buf);
	munmap(q, size);
}

/* Two opens of one node: both invalidated; each closes independently. */
TEST_F(hmm, two_opens_invalidate)
{
	struct hmm_dmirror_stats a0, a1, b0, b1;
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	char *p, *buf;
	int fd2;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd2 = dev_open(variant->node);
	ASSERT_GE(fd2, 0);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 8);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(dev_cmd(fd2, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(dev_stats(self->fd, &a0), 0);
	ASSERT_EQ(dev_stats(fd2, &a1), 0);
	ASSERT_EQ(madvise(p, size, MADV_DONTNEED), 0);
	ASSERT_EQ(dev_stats(self->fd, &b0), 0);
	ASSERT_EQ(dev_stats(fd2, &b1), 0);
	ASSERT_GT(ev(&b0.mirror, HMM_DMIRROR_EVENT_CLEAR),
		  ev(&a0.mirror, HMM_DMIRROR_EVENT_CLEAR));
	ASSERT_GT(ev(&b1.mirror, HMM_DMIRROR_EVENT_CLEAR),
		  ev(&a1.mirror, HMM_DMIRROR_EVENT_CLEAR));
	/* Same node: both see the same device-wide totals. */
	ASSERT_EQ(b0.device.syncs, b1.device.syncs);
	/* The dropped pages read as zero through both mirrors. */
	ASSERT_EQ(dev_cmd(fd2, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(buf[0], 0);
	ASSERT_EQ(close(fd2), 0);
	pattern_fill(p, size, 9);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 9), -1);
	free(buf);
	munmap(p, size);
}

/* Each kind of CPU page table change is counted under its own event. */
TEST_F(hmm, stats_events)
{
	struct hmm_dmirror_stats a, b;
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 1, size);
	ASSERT_EQ(dev_stats(self->fd, &a), 0);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(madvise(p, size, MADV_DONTNEED), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(munmap(p, size), 0);
	ASSERT_EQ(dev_stats(self->fd, &b), 0);
	ASSERT_GT(ev(&b.mirror, HMM_DMIRROR_EVENT_PROTECTION),
		  ev(&a.mirror, HMM_DMIRROR_EVENT_PROTECTION));
	ASSERT_GT(ev(&b.mirror, HMM_DMIRROR_EVENT_CLEAR),
		  ev(&a.mirror, HMM_DMIRROR_EVENT_CLEAR));
	ASSERT_GT(ev(&b.mirror, HMM_DMIRROR_EVENT_MIGRATE),
		  ev(&a.mirror, HMM_DMIRROR_EVENT_MIGRATE));
	ASSERT_GT(ev(&b.mirror, HMM_DMIRROR_EVENT_UNMAP),
		  ev(&a.mirror, HMM_DMIRROR_EVENT_UNMAP));
	/* Nothing here is an OOM reap: every update could block. */
	ASSERT_EQ(b.mirror.nonblockable, a.mirror.nonblockable);
	ASSERT_EQ(b.mirror.eagain, 0);
	free(buf);
}

/* Unknown commands fail with ENOTTY, bad ranges with EINVAL. */
TEST_F(hmm, bad_commands)
{
	struct hmm_dmirror_cmd cmd;
	char *p;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(self->psz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	memset(&cmd, 0, sizeof(cmd));
	ASSERT_EQ(ioctl(self->fd, _IOWR('H', 0x7f, struct hmm_dmirror_cmd),
			&cmd), -1);
	ASSERT_EQ(errno, ENOTTY);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p + 1, p, 1, NULL),
		  -EINVAL);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, p, 0, NULL), -EINVAL);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, p, ~0UL, NULL),
		  -EINVAL);
	munmap(p, self->psz);
}

/* ------------------------------------------------------------------------
 * New: what /proc shows of device memory
 */

/* Device private pages are swap-type entries in pagemap, present after. */
TEST_F(hmm, pagemap_device_entries)
{
	unsigned long npages = 4, i;
	size_t size = npages * self->psz;
	uint64_t ent;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 0x5a, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	for (i = 0; i < npages; i++) {
		ent = pagemap_entry(p + i * self->psz);
		if (variant->coherent) {
			ASSERT_TRUE(ent & PM_PRESENT);
		} else {
			ASSERT_TRUE(ent & PM_SWAP);
			ASSERT_FALSE(ent & PM_PRESENT);
		}
	}
	/* A CPU touch brings the page back: present again. */
	ASSERT_EQ(p[0], 0x5a);
	ent = pagemap_entry(p);
	ASSERT_TRUE(ent & PM_PRESENT);
	ASSERT_FALSE(ent & PM_SWAP);
	free(buf);
	munmap(p, size);
}

/*
 * smaps of 6.1 counts device private pages as resident (smaps_pte_entry()
 * accounts the page of a pfn swap entry) and never as Swap.
 */
TEST_F(hmm, smaps_device_pages)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	long rss, anon;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 1, size);
	/*
	 * With 64 KiB pages @buf is a mapping of its own, which may merge
	 * with @p's: make it resident too, and compare before and after.
	 */
	memset(buf, 0, size);
	rss = smaps_field(p, "Rss");
	anon = smaps_field(p, "Anonymous");
	ASSERT_GE(rss, (long)(size >> 10));
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(smaps_field(p, "Rss"), rss);
	ASSERT_EQ(smaps_field(p, "Anonymous"), anon);
	ASSERT_EQ(smaps_field(p, "Swap"), 0);
	free(buf);
	munmap(p, size);
}

/* mprotect(PROT_READ) on device pages: device writes EPERM, CPU reads OK. */
TEST_F(hmm, mprotect_device_pages)
{
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	unsigned char m[8];
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0xe0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	ASSERT_EQ(mprotect(p, size, PROT_READ), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	ASSERT_EQ(m[0], (variant->coherent ?
			 HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
			 HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL) |
			HMM_DMIRROR_PROT_READ);
	pattern_fill(buf, size, 0xe1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL),
		  -EPERM);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0xe0), -1);
	ASSERT_EQ(pattern_check(p, size, 0xe0), -1);
	free(buf);
	munmap(p, size);
}

/* ------------------------------------------------------------------------
 * New: file, fork, exit, mremap, THP split, hugetlbfs
 */

/* Device writes to a shared tmpfs mapping survive munmap + fsync. */
TEST_F(hmm, file_shared_write_fsync)
{
	unsigned long npages = 32;
	size_t size = npages * self->psz;
	char *p, *buf;
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = tmpfile_sized(size);
	ASSERT_GE(fd, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(p, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(buf, size, 0xf11e);
	/* The pages are not even in the page cache yet: the device faults. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(munmap(p, size), 0);
	ASSERT_EQ(fsync(fd), 0);
	memset(buf, 0, size);
	ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
	ASSERT_EQ(read(fd, buf, size), (ssize_t)size);
	ASSERT_EQ(pattern_check(buf, size, 0xf11e), -1);
	free(buf);
	close(fd);
}

/* fork() with pages in device memory: both sides keep their own data. */
TEST_F(hmm, fork_cow_device_pages)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	int status;
	char *p, *buf;
	pid_t pid;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	pattern_fill(p, size, 0xf0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (pattern_check(p, size, 0xf0) != -1)
			_exit(1);
		pattern_fill(p, size, 0xf1);
		_exit(pattern_check(p, size, 0xf1) != -1 ? 2 : 0);
	}
	ASSERT_EQ(wait_bounded(pid, &status, 20), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	/* The device, then the CPU, still see the parent's data. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0xf0), -1);
	ASSERT_EQ(pattern_check(p, size, 0xf0), -1);
	/* And a device write after the fork breaks COW for the parent only. */
	pattern_fill(buf, size, 0xf2);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(p, size, 0xf2), -1);
	free(buf);
	munmap(p, size);
}

struct exit_arg {
	int node;
};

static int child_exit_on_device(void *data)
{
	struct exit_arg *a = data;
	size_t size = 64 * psize();
	char *p, *buf;
	int fd;

	fd = dev_open(a->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	buf = malloc(size);
	if (fd < 0 || p == MAP_FAILED || !buf)
		return 10;
	memset(p, 3, size);
	if (dev_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, 64, NULL))
		return 11;
	/* Exit with pages on the device and the mirror still open. */
	return 0;
}

/* A process exiting with device pages frees them; the node stays sane. */
TEST_F(hmm, exit_with_device_pages)
{
	struct hmm_dmirror_stats a, b;
	struct exit_arg arg = { .node = variant->node };
	char *p;
	int i;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	ASSERT_EQ(dev_stats(self->fd, &a), 0);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(run_child(child_exit_on_device, &arg, 20), 0);
	ASSERT_EQ(dev_stats(self->fd, &b), 0);
	/* Teardown reached each child's mirror as a RELEASE or an UNMAP. */
	ASSERT_GE(ev(&b.device, HMM_DMIRROR_EVENT_RELEASE) +
		  ev(&b.device, HMM_DMIRROR_EVENT_UNMAP) -
		  ev(&a.device, HMM_DMIRROR_EVENT_RELEASE) -
		  ev(&a.device, HMM_DMIRROR_EVENT_UNMAP), 5);
	/* No device page is left pinned by the dead processes. */
	p = map_anon(self->psz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_RELEASE, p, NULL, 1, NULL), 0);
	munmap(p, self->psz);
}

/* After mremap the device finds the data at the new address only. */
TEST_F(hmm, mremap_mirrored)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *q, *target, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	target = map_anon(size, PROT_NONE, MAP_PRIVATE);
	ASSERT_NE(target, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 0x3e3e);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	/* Half of it lives in device memory when the move happens. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf,
			  npages / 2, NULL), 0);
	q = mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	ASSERT_EQ(q, target);
	memset(buf, 0, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, q, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0x3e3e), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL),
		  -EFAULT);
	ASSERT_EQ(pattern_check(q, size, 0x3e3e), -1);
	free(buf);
	munmap(q, size);
}

/* Map a THP the device mirrors; 0 if it really is PMD mapped. */
static int thp_setup(int fd, size_t psz, char **p, void **base,
		     size_t *base_size, char *buf)
{
	unsigned long npages = pmd_bytes() / psz;
	unsigned char *m = malloc(npages);
	int ret = -1;

	*p = map_aligned(pmd_bytes(), base, base_size);
	if (*p == MAP_FAILED || !m)
		goto out;
	madvise(*p, pmd_bytes(), MADV_HUGEPAGE);
	pattern_fill(*p, pmd_bytes(), 0x7707);
	if (dev_cmd(fd, HMM_DMIRROR_READ, *p, buf, npages, NULL))
		goto out;
	if (dev_cmd(fd, HMM_DMIRROR_SNAPSHOT, *p, m, npages, NULL))
		goto out;
	ret = (m[0] & HMM_DMIRROR_PROT_PMD) ? 0 : 1;
out:
	free(m);
	return ret;
}

/* Partial munmap of a mirrored THP splits it; the rest stays readable. */
TEST_F(hmm, thp_split_munmap)
{
	size_t half = pmd_bytes() / 2, base_size;
	unsigned long npages = pmd_bytes() / self->psz;
	unsigned char *m;
	void *base;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(pmd_bytes());
	m = malloc(npages);
	ASSERT_NE(buf, NULL);
	ASSERT_NE(m, NULL);
	ret = thp_setup(self->fd, self->psz, &p, &base, &base_size, buf);
	ASSERT_GE(ret, 0);
	if (ret)
		SKIP(goto out, "no THP allocated");
	ASSERT_EQ(munmap(p + half, half), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages / 2,
			  NULL), 0);
	ASSERT_EQ(m[0] & HMM_DMIRROR_PROT_PMD, 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages / 2,
			  NULL), 0);
	ASSERT_EQ(pattern_check(buf, half, 0x7707), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p + half, buf, 1, NULL),
		  -EFAULT);
out:
	free(m);
	free(buf);
	munmap(base, base_size);
}

/*
 * Device exclusive access to a THP-backed range, as a device doing atomics
 * on a buffer that transparent_hugepage gave a huge page: the huge page is
 * split so that every page can become a device exclusive entry, the device
 * reads the data through its atomic mappings, and CPU accesses revoke them
 * page by page, seeing the same data.  6.1 left every page of a THP out of
 * exclusive access (EBUSY here).
 */
TEST_F(hmm, exclusive_thp)
{
	unsigned long npages = pmd_bytes() / self->psz, i;
	unsigned char *m;
	size_t base_size;
	struct dres r;
	void *base;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(pmd_bytes());
	m = malloc(npages);
	ASSERT_NE(buf, NULL);
	ASSERT_NE(m, NULL);
	ret = thp_setup(self->fd, self->psz, &p, &base, &base_size, buf);
	ASSERT_GE(ret, 0);
	if (ret)
		SKIP(goto out, "no THP allocated");

	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages, &r),
		  0);
	ASSERT_EQ(r.cpages, npages);
	ASSERT_EQ(pattern_check(buf, pmd_bytes(), 0x7707), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, p, NULL,
			  npages, NULL), -EPERM);
	/* Every page is a device exclusive entry now, no PMD is left. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(m[i], HMM_DMIRROR_PROT_NONE);

	/* CPU reads revoke the device's access and see the same data. */
	ASSERT_EQ(pattern_check(p, pmd_bytes(), 0x7707), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, p, NULL,
			  npages, NULL), 0);
out:
	free(m);
	free(buf);
	munmap(base, base_size);
}

/*
 * Windows of a mirrored THP: every page of a snapshot of part of the PMD,
 * at any offset and into a buffer at any alignment, says PMD, and nothing
 * around the buffer is written.  A buffer that becomes read-only part way
 * fails the snapshot with -EFAULT.
 */
TEST_F(hmm, snapshot_thp_windows)
{
	unsigned long npages = pmd_bytes() / self->psz, first, count, i, k;
	const unsigned char want = HMM_DMIRROR_PROT_WRITE |
				   HMM_DMIRROR_PROT_PMD;
	unsigned char *m, *out, *ro;
	size_t base_size;
	void *base;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(pmd_bytes());
	m = malloc(npages + 16);
	ASSERT_NE(buf, NULL);
	ASSERT_NE(m, NULL);
	ret = thp_setup(self->fd, self->psz, &p, &base, &base_size, buf);
	ASSERT_GE(ret, 0);
	if (ret)
		SKIP(goto out, "no THP allocated");

	for (k = 0; k < 5; k++) {
		const unsigned long win[5][2] = {
			{ 0, npages }, { 1, npages - 2 }, { npages / 5, 1 },
			{ 3, npages * 2 / 3 + 1 }, { npages - 1, 1 },
		};

		first = win[k][0];
		count = win[k][1];
		memset(m, 0xee, npages + 16);
		out = m + 1 + k;
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT,
				  p + first * self->psz, out, count, NULL), 0);
		for (i = 0; i < count; i++)
			ASSERT_EQ(out[i], want);
		ASSERT_EQ(out[-1], 0xee);
		ASSERT_EQ(out[count], 0xee);
	}

	/* 13 writable bytes, then a read-only page. */
	ro = map_anon(2 * self->psz, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(ro, MAP_FAILED);
	memset(ro, 0xee, 2 * self->psz);
	ASSERT_EQ(mprotect(ro + self->psz, self->psz, PROT_READ), 0);
	out = ro + self->psz - 13;
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, out, 100, NULL),
		  -EFAULT);
	ASSERT_EQ(out[-1], 0xee);
	ASSERT_EQ(out[13], 0xee);
	munmap(ro, 2 * self->psz);
out:
	free(m);
	free(buf);
	munmap(base, base_size);
}

/* MADV_NOHUGEPAGE + zapping one page of a mirrored THP splits the PMD. */
TEST_F(hmm, thp_split_nohugepage)
{
	unsigned long npages = pmd_bytes() / self->psz;
	size_t base_size;
	uint32_t *w;
	unsigned char *m;
	void *base;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	buf = malloc(pmd_bytes());
	m = malloc(npages);
	ASSERT_NE(buf, NULL);
	ASSERT_NE(m, NULL);
	ret = thp_setup(self->fd, self->psz, &p, &base, &base_size, buf);
	ASSERT_GE(ret, 0);
	if (ret)
		SKIP(goto out, "no THP allocated");
	ASSERT_EQ(madvise(p, pmd_bytes(), MADV_NOHUGEPAGE), 0);
	ASSERT_EQ(madvise(p + self->psz, self->psz, MADV_DONTNEED), 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	w = (uint32_t *)buf;
	ASSERT_EQ(pattern_check(buf, self->psz, 0x7707), -1);
	ASSERT_EQ(w[self->psz / 4], 0);
	ASSERT_EQ(pattern_check(buf + 2 * self->psz,
				pmd_bytes() - 2 * self->psz,
				0x7707 + 2 * self->psz / 4), -1);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	ASSERT_EQ(m[0], HMM_DMIRROR_PROT_WRITE);
out:
	free(m);
	free(buf);
	munmap(base, base_size);
}

/* hugetlbfs cannot migrate to the device; it stays mirrored in place. */
TEST_F(hmm, hugetlbfs_migrate)
{
	size_t size = huge_bytes();
	unsigned long npages = size / self->psz;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB);
	if (p == MAP_FAILED)
		SKIP(return, "no hugetlb page available");
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	pattern_fill(p, size, 0x4e4e);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, npages,
			  NULL), -EINVAL);
	ASSERT_EQ(pagemap_entry(p) & PM_SWAP, 0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf, size, 0x4e4e), -1);
	free(buf);
	munmap(p, size);
}

/* ------------------------------------------------------------------------
 * Dirty propagation, fences, trace events and statistics
 */

/* Whether every page of [p, p + size) is resident, per mincore(). */
static int resident_pages(void *p, size_t size, size_t psz)
{
	unsigned char vec[64];
	size_t i, n = size / psz;
	int count = 0;

	if (n > sizeof(vec) || mincore(p, size, vec))
		return -1;
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	return count;
}

/*
 * MADV_FREE leaves writable but clean PTEs, and reclaim throws clean lazy
 * free pages away.  The device writes through such a PTE without a fault,
 * so only the mirror marking the page dirty when it drops its mapping keeps
 * the data.  A control range without device writes must be discarded, or
 * the test proves nothing and says so.
 */
TEST_F(hmm, dirty_madv_free)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	char *p, *ctl, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	ctl = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(ctl, MAP_FAILED);
	pattern_fill(p, size, 0xd1);
	pattern_fill(ctl, size, 0xd1);
	ASSERT_EQ(madvise(p, size, MADV_FREE), 0);
	ASSERT_EQ(madvise(ctl, size, MADV_FREE), 0);

	pattern_fill(buf, size, 0xd2);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(madvise(ctl, size, MADV_PAGEOUT), 0);
	ASSERT_EQ(madvise(p, size, MADV_PAGEOUT), 0);

	if (pattern_check(ctl, size, 0xd1) == -1)
		SKIP(goto out, "reclaim kept clean MADV_FREE pages");
	ASSERT_EQ(pattern_check(p, size, 0xd2), -1);
out:
	free(buf);
	munmap(ctl, size);
	munmap(p, size);
}

/*
 * A read fault maps tmpfs pages of a shared mapping writable and clean (no
 * write notification on tmpfs).  Device writes through those PTEs must
 * survive the reclaim of a page that looks clean to the CPU.
 */
TEST_F(hmm, dirty_shmem_pageout)
{
	unsigned long npages = 16, i;
	size_t size = npages * self->psz;
	char *p, *ctl, *buf;
	long sum = 0;
	int fd, cfd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd = tmpfile_sized(size);
	cfd = tmpfile_sized(size);
	ASSERT_GE(fd, 0);
	ASSERT_GE(cfd, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ctl = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
	ASSERT_NE(p, MAP_FAILED);
	ASSERT_NE(ctl, MAP_FAILED);
	buf = malloc(size);
	ASSERT_NE(buf, NULL);
	/* Read faults: fresh tmpfs pages, mapped writable and clean. */
	for (i = 0; i < npages; i++)
		sum += p[i * self->psz] + ctl[i * self->psz];
	ASSERT_EQ(sum, 0);

	pattern_fill(buf, size, 0x5e);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL), 0);
	ASSERT_EQ(madvise(ctl, size, MADV_PAGEOUT), 0);
	ASSERT_EQ(madvise(p, size, MADV_PAGEOUT), 0);

	if (resident_pages(ctl, size, self->psz) != 0)
		SKIP(goto out, "reclaim kept clean tmpfs pages");
	ASSERT_EQ(pattern_check(p, size, 0x5e), -1);
	memset(buf, 0, size);
	ASSERT_EQ(pread(fd, buf, size, 0), (ssize_t)size);
	ASSERT_EQ(pattern_check(buf, size, 0x5e), -1);
out:
	free(buf);
	munmap(ctl, size);
	munmap(p, size);
	close(cfd);
	close(fd);
}

#define HMM_STATS_PATH		"/sys/kernel/debug/hmm/stats"
#define INVAL_LATENCY_PATH	"/sys/module/test_hmm/parameters/inval_latency_us"
#define COPY_LATENCY_PATH	"/sys/module/test_hmm/parameters/copy_latency_us"

/* The core's counters (debugfs hmm/stats) move with what the device does. */
TEST_F(hmm, debugfs_stats)
{
	long snaps, faults, unmaps, ebusy;
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	unsigned char m[8];
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	snaps = read_long(HMM_STATS_PATH, "snapshots");
	faults = read_long(HMM_STATS_PATH, "faults");
	unmaps = read_long(HMM_STATS_PATH, "inv_unmap");
	ebusy = read_long(HMM_STATS_PATH, "ebusy");
	ASSERT_GE(snaps, 0);
	ASSERT_GE(faults, 0);
	ASSERT_GE(unmaps, 0);
	ASSERT_GE(ebusy, 0);

	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 7, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(munmap(p, size), 0);

	ASSERT_GT(read_long(HMM_STATS_PATH, "snapshots"), snaps);
	ASSERT_GT(read_long(HMM_STATS_PATH, "faults"), faults);
	ASSERT_GT(read_long(HMM_STATS_PATH, "inv_unmap"), unmaps);
	/* Nothing raced with these commands. */
	ASSERT_EQ(read_long(HMM_STATS_PATH, "ebusy"), ebusy);
	free(buf);
}

/* Read the whole trace buffer of @dir into a NUL-terminated string. */
static char *trace_read(const char *dir)
{
	size_t len = 0, cap = 1 << 16;
	char path[128], *out = malloc(cap);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/trace", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !out) {
		free(out);
		return NULL;
	}
	while ((n = read(fd, out + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			out = realloc(out, cap);
			if (!out)
				break;
		}
	}
	close(fd);
	if (out)
		out[len] = '\0';
	return out;
}

/* Enable or disable the hmm: trace events under @dir; 0 or -errno. */
static int trace_hmm_enable(const char *dir, bool on)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/events/hmm/enable", dir);
	return write_str(path, on ? "1" : "0");
}

/* The hmm: trace events report a snapshot, a fault and an unmap. */
TEST_F(hmm, trace_events)
{
	static const char * const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	unsigned long npages = 4;
	size_t size = npages * self->psz;
	const char *dir = NULL;
	unsigned char m[4];
	char path[128], *p, *buf, *trace;
	unsigned int i;
	int fd;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	for (i = 0; i < 2 && !dir; i++) {
		snprintf(path, sizeof(path), "%s/events/hmm", dirs[i]);
		if (!access(path, F_OK))
			dir = dirs[i];
	}
	ASSERT_NE(dir, NULL) TH_LOG("no hmm: trace events in tracefs");
	snprintf(path, sizeof(path), "%s/trace", dir);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(trace_hmm_enable(dir, true), 0);

	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 3, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages, NULL),
		  0);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(munmap(p, size), 0);
	ASSERT_EQ(trace_hmm_enable(dir, false), 0);

	trace = trace_read(dir);
	ASSERT_NE(trace, NULL);
	EXPECT_NE(strstr(trace, "hmm_walk_start: "), NULL);
	EXPECT_NE(strstr(trace, " snapshot start="), NULL);
	EXPECT_NE(strstr(trace, "hmm_walk_end: "), NULL);
	EXPECT_NE(strstr(trace, " fault start="), NULL);
	EXPECT_NE(strstr(trace, "ret=0 retries="), NULL);
	EXPECT_NE(strstr(trace, "hmm_invalidate: "), NULL);
	EXPECT_NE(strstr(trace, " unmap start="), NULL);
	EXPECT_NE(strstr(trace, " blockable=1 mirrors="), NULL);
	free(trace);
	free(buf);
}

/*
 * Four mirrors of one process, each taking 100 ms to invalidate: the core
 * starts all four device invalidations before it waits, so a munmap takes
 * about one latency, not four.  Waiting for any two of them one after the
 * other would take two latencies, which is the bound: the latency is long
 * enough that what the munmap costs besides (tens of milliseconds under an
 * emulator) stays well inside it.
 */
TEST_F_TIMEOUT(hmm, fence_parallel, 60)
{
	unsigned long npages = 16;
	size_t size = npages * self->psz;
	long fences, fences_after;
	double t0, t;
	char *p, *buf;
	int fds[4], i, ret = 0;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 9, size);
	for (i = 0; i < 4; i++) {
		fds[i] = dev_open(variant->node);
		ASSERT_GE(fds[i], 0);
		ASSERT_EQ(dev_cmd(fds[i], HMM_DMIRROR_READ, p, buf, npages,
				  NULL), 0);
	}
	fences = read_long(HMM_STATS_PATH, "fences");
	ASSERT_EQ(write_str(INVAL_LATENCY_PATH, "100000"), 0);
	t0 = now_sec();
	if (munmap(p, size))
		ret = -errno;
	t = now_sec() - t0;
	/* Put the module back before any assertion can leave the test. */
	ASSERT_EQ(write_str(INVAL_LATENCY_PATH, "0"), 0);
	fences_after = read_long(HMM_STATS_PATH, "fences");
	for (i = 0; i < 4; i++)
		close(fds[i]);
	free(buf);

	ASSERT_EQ(ret, 0);
	ASSERT_GE(fences_after - fences, 4);
	ASSERT_GE(t, 0.100);
	ASSERT_LT(t, 0.200) TH_LOG("munmap took %.1f ms: serial?", t * 1e3);
}

/**
 * struct mover - a thread moving pages into device memory
 * @fd: the open file it migrates through
 * @p: first page moved
 * @buf: what the device reads back
 * @npages: pages moved
 * @tid: its thread id, set before it starts
 * @ret: dev_cmd()'s result
 * @res: pages moved, according to the device
 */
struct mover {
	int fd;
	char *p;
	char *buf;
	unsigned long npages;
	pid_t tid;
	int ret;
	struct dres res;
};

static void *mover_fn(void *data)
{
	struct mover *m = data;

	__atomic_store_n(&m->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	m->ret = dev_cmd(m->fd, HMM_DMIRROR_MIGRATE_TO_DEV, m->p, m->buf,
			 m->npages, &m->res);
	return NULL;
}

/* The state letter of thread @tid of this process ('?' if unreadable). */
static char thread_state(pid_t tid)
{
	char path[64], line[256], *rp;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	rp = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	return rp && rp[1] == ' ' ? rp[2] : '?';
}

/* Migration invalidations the mirror of @fd heard of; -1 on error. */
static long migrate_events(int fd)
{
	struct hmm_dmirror_stats st;

	if (dev_stats(fd, &st))
		return -1;
	return (long)ev(&st.mirror, HMM_DMIRROR_EVENT_MIGRATE);
}

/*
 * Two open files of one device mirror the process, as two contexts of a
 * GPU do.  Through the first, a migration moves pages nobody touched yet
 * into device memory.  While it copies (copy_latency_us, with the
 * mmap_lock held for read), the second file reads the pages: that faults
 * in the zero page, which keeps no migration entry.  migrate_vma_pages()
 * then puts device memory in its place, under an invalidation owned by the
 * device, which all of its mirrors skip: the device must unmap the pages
 * from its mirrors itself once more.  Otherwise the second file keeps
 * reading zeroes after the CPU wrote the pages (straight into coherent
 * device memory; private memory faults back to RAM, which unmaps too).
 *
 * The read is known to fall inside the copy, not the wall clock: the
 * second file has heard of exactly one migration invalidation, that of
 * migrate_vma_setup() (migrate_vma_pages() sends the next), and the mover
 * sleeps since, which it does nowhere between that invalidation and the
 * copy.  The count is read again after the read.
 */
TEST_F_TIMEOUT(hmm, migrate_other_file_reads_during_copy, 60)
{
	unsigned long npages = 32, i;
	size_t size = npages * self->psz;
	struct mover m = { .npages = npages };
	long events, seen = -1, after = -1;
	char *p, *buf, *buf2, state = '?';
	double deadline;
	pthread_t th;
	pid_t tid;
	int fd2, ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	fd2 = dev_open(variant->node);
	ASSERT_GE(fd2, 0);
	p = anon_with_buf(_metadata, size, &buf);
	buf2 = malloc(size);
	ASSERT_NE(buf2, NULL);
	memset(buf2, 0xa5, size);
	m.fd = self->fd;
	m.p = p;
	m.buf = buf;
	events = migrate_events(fd2);
	ASSERT_GE(events, 0);

	/* Over a second: refused, and the parameter keeps its value. */
	ASSERT_EQ(write_str(COPY_LATENCY_PATH, "1000001"), -EINVAL);
	ASSERT_EQ(read_long(COPY_LATENCY_PATH, NULL), 0);
	ASSERT_EQ(write_str(COPY_LATENCY_PATH, "1000000"), 0);
	deadline = now_sec() + 0.9;
	ret = pthread_create(&th, NULL, mover_fn, &m);
	if (!ret) {
		do {
			usleep(1000);
			seen = migrate_events(fd2);
			tid = __atomic_load_n(&m.tid, __ATOMIC_ACQUIRE);
			state = tid && seen == events + 1 ? thread_state(tid)
							  : '?';
		} while (state != 'D' && now_sec() < deadline);
		ret = dev_cmd(fd2, HMM_DMIRROR_READ, p, buf2, npages, NULL);
		after = migrate_events(fd2);
		pthread_join(th, NULL);
	}
	/* Put the module back before any assertion can leave the test. */
	ASSERT_EQ(write_str(COPY_LATENCY_PATH, "0"), 0);

	ASSERT_EQ(ret, 0);
	ASSERT_EQ(m.ret, 0);
	ASSERT_EQ(m.res.cpages, npages);
	/* Otherwise the read did not fall inside the copy: no test. */
	ASSERT_EQ(state, 'D')
		TH_LOG("never saw the mover sleep in its copy (%ld migration invalidations)",
		       seen - events);
	ASSERT_EQ(after, events + 1)
		TH_LOG("migrate_vma_pages() ran before the read ended");
	for (i = 0; i < size && !buf2[i]; i++)
		;
	ASSERT_EQ(i, size) TH_LOG("byte %lu read during the copy is not 0", i);

	pattern_fill(p, size, 77);
	ASSERT_EQ(dev_cmd(fd2, HMM_DMIRROR_READ, p, buf2, npages, NULL), 0);
	ASSERT_EQ(pattern_check(buf2, size, 77), -1)
		TH_LOG("the second file still maps what was there before the migration");
	ASSERT_EQ(close(fd2), 0);
	free(buf2);
	free(buf);
	munmap(p, size);
}

/* ------------------------------------------------------------------------
 * Core v2: retries that progress, critical sections, the fence rule
 */

/**
 * struct storm - a thread that zaps pages of a range in a loop
 * @p: first byte of what is zapped
 * @len: bytes zapped by each MADV_DONTNEED (or remapped with @remap)
 * @secs: how long it goes on
 * @remap: munmap() and mmap(MAP_FIXED) instead of MADV_DONTNEED
 * @shared: MAP_SHARED or MAP_PRIVATE, for @remap
 * @gap_us: pause between operations, set by a test whose side starves
 * @stop: set by the test to end the storm early
 * @pause: the storm does nothing while it is set
 * @gate: held by the storm across each operation, with @pause checked
 *	under it (storm_pause())
 * @loops: completed operations
 *
 * The fields the two threads share are read and written with
 * __atomic_load_n() and __atomic_store_n() (st_get(), st_set()).
 */
struct storm {
	char *p;
	size_t len;
	double secs;
	bool remap;
	int shared;
	unsigned int gap_us;
	int stop;
	int pause;
	pthread_mutex_t gate;
	unsigned long loops;
};

#define st_get(field)		__atomic_load_n(&(field), __ATOMIC_ACQUIRE)
#define st_set(field, v)	__atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

static void *storm_fn(void *data)
{
	struct storm *st = data;
	double end = now_sec() + st->secs;
	unsigned int gap;

	while (!st_get(st->stop) && now_sec() < end) {
		pthread_mutex_lock(&st->gate);
		if (st_get(st->pause)) {
			pthread_mutex_unlock(&st->gate);
			usleep(100);
			continue;
		}
		if (st->remap) {
			munmap(st->p, st->len);
			mmap(st->p, st->len, PROT_READ | PROT_WRITE,
			     st->shared | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		} else {
			madvise(st->p, st->len, MADV_DONTNEED);
		}
		st_set(st->loops, st->loops + 1);
		pthread_mutex_unlock(&st->gate);
		gap = st_get(st->gap_us);
		if (gap)
			usleep(gap);
	}
	return NULL;
}

static int storm_start(struct storm *st, pthread_t *t)
{
	int ret = pthread_mutex_init(&st->gate, NULL);

	return ret ? ret : pthread_create(t, NULL, storm_fn, st);
}

/*
 * On return the storm is between operations and starts no new one until
 * storm_resume().  A flag the storm acknowledges is not enough: the storm
 * may have read "not paused" just before the test set @pause, and its
 * acknowledgment of the previous pause still stands.
 */
static void storm_pause(struct storm *st)
{
	st_set(st->pause, 1);
	pthread_mutex_lock(&st->gate);
	pthread_mutex_unlock(&st->gate);
}

static void storm_resume(struct storm *st)
{
	st_set(st->pause, 0);
}

/*
 * Another thread zaps the whole range the device writes (one device fault
 * step), over and over for 2.5 s: attempts of the device's fault are
 * invalidated while they fault, but each one faults pages back in, so it
 * makes progress and the fault keeps going until the storm ends.  A loop
 * that gave up after a fixed second (HMM_RANGE_DEFAULT_TIMEOUT) failed
 * this write with EBUSY.
 */
TEST_F_TIMEOUT(hmm, fault_storm_progress, 120)
{
	unsigned long npages = 512;
	size_t size = npages * self->psz;
	struct storm st = { 0 };
	pthread_t t;
	double t0;
	char *p, *buf;
	int ret;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 1, size);
	pattern_fill(buf, size, 0x77);
	st.p = p;
	st.len = size;
	st.secs = 2.5;
	ASSERT_EQ(storm_start(&st, &t), 0);
	while (st_get(st.loops) < 10)
		usleep(100);
	t0 = now_sec();
	ret = dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL);
	st_set(st.stop, 1);
	pthread_join(t, NULL);
	TH_LOG("write took %.2f s against %lu zaps", now_sec() - t0, st.loops);
	ASSERT_EQ(ret, 0);
	/* Written through the device; the storm zaps nothing any more. */
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_WRITE, p, buf, npages, NULL),
		  0);
	ASSERT_EQ(pattern_check(p, size, 0x77), -1);
	free(buf);
	munmap(p, size);
}

/*
 * The device reads the range first, through whatever it has mapped (and
 * faulting the rest); only then does the CPU look, which revokes the
 * device's exclusive access.  Count the pages where the two differ.
 */
static void exclusive_race_check(struct __test_metadata *_metadata, int fd,
				 char *p, char *buf, unsigned long npages,
				 size_t psz, unsigned long *stale)
{
	unsigned long i;

	ASSERT_EQ(dev_cmd(fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	for (i = 0; i < npages; i++) {
		if (buf[i * psz] == p[i * psz])
			continue;
		if (!*stale)
			TH_LOG("page %lu: the device read %d, the CPU %d", i,
			       buf[i * psz], p[i * psz]);
		(*stale)++;
	}
}

static void exclusive_race(struct __test_metadata *_metadata, int fd,
			   size_t psz, bool remap)
{
	unsigned long npages = 16, it, stale = 0, ok = 0, busy = 0, last = 0;
	size_t size = npages * psz;
	struct storm st = { 0 };
	double end = now_sec() + 4.0;
	char *p, *buf;
	pthread_t t;
	int ret;

	p = anon_with_buf(_metadata, size, &buf);
	st.p = p;
	st.len = size;
	st.secs = 3600;
	st.remap = remap;
	st.shared = MAP_PRIVATE;
	st.pause = 1;
	ASSERT_EQ(storm_start(&st, &t), 0);

	for (it = 0; now_sec() < end || it < 50; it++) {
		/* Quiet: the CPU writes this round's value everywhere. */
		memset(p, (int)(it % 250) + 1, size);
		storm_resume(&st);
		ret = dev_cmd(fd, HMM_DMIRROR_EXCLUSIVE, p, buf, npages, NULL);
		storm_pause(&st);
		/*
		 * The storm may have unmapped the range halfway, or after the
		 * grant and before the device read the pages back (ENOENT).
		 */
		if (ret == 0) {
			ok++;
			last = it;
		} else if (ret == -EBUSY || ret == -EFAULT || ret == -EINVAL ||
			   ret == -ENOENT) {
			busy++;
		} else {
			ASSERT_EQ(ret, 0);
		}
		/*
		 * On a slow kernel the storm may win every round: ease off,
		 * more and more, until grants get through again.
		 */
		if (it - last > 20 && st.gap_us < 64000) {
			st_set(st.gap_us, st.gap_us ? 2 * st.gap_us : 500);
			last = it;
		}
		exclusive_race_check(_metadata, fd, p, buf, npages, psz, &stale);
		if (stale)
			break;
	}
	st_set(st.stop, 1);
	pthread_join(t, NULL);
	TH_LOG("%lu rounds: %lu granted, %lu refused, %lu storm ops",
	       it, ok, busy, st.loops);
	ASSERT_EQ(stale, 0) TH_LOG("device kept a page the CPU dropped");
	ASSERT_GT(ok, 0);
	free(buf);
	munmap(p, size);
}

/*
 * Device exclusive access races MADV_DONTNEED of the same pages, which
 * drops device exclusive entries without the page lock: the device must
 * never keep a page the CPU already let go of (and freed).
 */
TEST_F_TIMEOUT(hmm, exclusive_race_dontneed, 120)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	exclusive_race(_metadata, self->fd, self->psz, false);
}

/* The same against munmap() and mmap(MAP_FIXED) of the range. */
TEST_F_TIMEOUT(hmm, exclusive_race_munmap, 120)
{
	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	exclusive_race(_metadata, self->fd, self->psz, true);
}

struct timed_madvise {
	char *p;
	size_t len;
	int go;			/* st_get(), st_set() */
	double start;
	double end;
	int ret;
};

static void *timed_dontneed(void *data)
{
	struct timed_madvise *m = data;

	/*
	 * Created before either starts: creating a thread maps its stack,
	 * which waits for the mmap_lock the first madvise holds.
	 */
	while (!st_get(m->go))
		usleep(1000);
	m->start = now_sec();
	m->ret = madvise(m->p, m->len, MADV_DONTNEED) ? -errno : 0;
	m->end = now_sec();
	return NULL;
}

/*
 * The fence rule.  The device takes 300 ms to flush an invalidation.  A
 * first MADV_DONTNEED drops the device mappings and waits for the flush; a
 * second one of the same pages, started meanwhile, finds nothing left to
 * drop, but the pages may only go once the first flush is done: the second
 * madvise must not return before the first one's flush completed.
 */
TEST_F_TIMEOUT(hmm, fence_overlap, 60)
{
	unsigned long npages = 8;
	size_t size = npages * self->psz;
	struct timed_madvise first = { 0 }, second = { 0 };
	pthread_t t1, t2;
	char *p, *buf;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = anon_with_buf(_metadata, size, &buf);
	memset(p, 5, size);
	ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_READ, p, buf, npages, NULL), 0);
	ASSERT_EQ(write_str(INVAL_LATENCY_PATH, "300000"), 0);
	first.p = p;
	first.len = size;
	second.p = p;
	second.len = size;
	if (pthread_create(&t1, NULL, timed_dontneed, &first) == 0) {
		if (pthread_create(&t2, NULL, timed_dontneed, &second) == 0) {
			st_set(first.go, 1);
			usleep(100000);
			st_set(second.go, 1);
			pthread_join(t2, NULL);
		} else {
			st_set(first.go, 1);
		}
		pthread_join(t1, NULL);
	}
	/* Put the module back before any assertion can leave the test. */
	ASSERT_EQ(write_str(INVAL_LATENCY_PATH, "0"), 0);
	ASSERT_EQ(first.ret, 0);
	ASSERT_EQ(second.ret, 0);
	TH_LOG("first %.0f-%.0f ms, second %.0f-%.0f ms", 0.0,
	       (first.end - first.start) * 1e3,
	       (second.start - first.start) * 1e3,
	       (second.end - first.start) * 1e3);
	/* The second started while the first was flushing... */
	ASSERT_LT(second.start, first.start + 0.250);
	/* ...and returned only once that flush was done. */
	ASSERT_GE(second.end, first.start + 0.290);
	free(buf);
	munmap(p, size);
}

/* Every counter of hmm/stats, in file order; -1 past the last. */
static void stats_snap(long *v)
{
	char line[256];
	FILE *f = fopen(HMM_STATS_PATH, "r");
	int i = 0;

	while (f && i < 63 && fgets(line, sizeof(line), f))
		v[i++] = strtol(strchr(line, ' ') ? strchr(line, ' ') + 1 :
				line, NULL, 10);
	v[i] = -1;
	if (f)
		fclose(f);
}

/* Log the counters of hmm/stats that moved since @before. */
static void stats_log(struct __test_metadata *_metadata, const long *before)
{
	char line[256], name[64];
	FILE *f = fopen(HMM_STATS_PATH, "r");
	long val;
	int i = 0;

	while (f && before[i] >= 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %ld", name, &val) == 2 &&
		    val != before[i])
			TH_LOG("hmm/stats %s +%ld", name, val - before[i]);
		i++;
	}
	if (f)
		fclose(f);
}

/*
 * Another thread of the process keeps unmapping and mapping unrelated
 * memory while the device takes snapshots: not one snapshot is retried or
 * waits because of it.  hmm/stats counts one walk per snapshot command
 * that was not retried ("snapshots"), and, where the core has them, the
 * retries, waits and rewinds themselves.  The other memory is shared so
 * that it never merges with the range: merging and splitting private VMAs
 * that share a PMD makes 6.1 invalidate the whole PMD
 * (vma_adjust_trans_huge()), which does concern the range.
 */
TEST_F_TIMEOUT(hmm, snapshot_unrelated_munmap, 60)
{
	unsigned long npages = 256, i;
	size_t size = npages * self->psz;
	long walks, retries, waits, rewinds, before[64];
	struct storm st = { 0 };
	unsigned char *m;
	char *p, *other;
	pthread_t t;

	if (self->fd < 0)
		SKIP(return, "/dev/hmm_dmirror%d absent", variant->node);
	p = map_anon(size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(p, MAP_FAILED);
	other = map_anon(64 * self->psz, PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(other, MAP_FAILED);
	m = malloc(npages);
	ASSERT_NE(m, NULL);
	memset(p, 2, size);
	stats_snap(before);
	walks = read_long(HMM_STATS_PATH, "snapshots");
	retries = read_long(HMM_STATS_PATH, "lock_retries");
	waits = read_long(HMM_STATS_PATH, "range_waits");
	rewinds = read_long(HMM_STATS_PATH, "rewinds");
	ASSERT_GE(walks, 0);

	st.p = other;
	st.len = 64 * self->psz;
	st.secs = 3600;
	st.remap = true;
	st.shared = MAP_SHARED;
	ASSERT_EQ(storm_start(&st, &t), 0);
	for (i = 0; i < 2000 || st_get(st.loops) < 200; i++)
		ASSERT_EQ(dev_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, p, m, npages,
				  NULL), 0);
	st_set(st.stop, 1);
	pthread_join(t, NULL);
	TH_LOG("%lu snapshots beside %lu munmap+mmap", i, st.loops);
	stats_log(_metadata, before);
	ASSERT_EQ(read_long(HMM_STATS_PATH, "snapshots") - walks, (long)i);
	ASSERT_EQ(read_long(HMM_STATS_PATH, "lock_retries"), retries);
	ASSERT_EQ(read_long(HMM_STATS_PATH, "range_waits"), waits);
	ASSERT_EQ(read_long(HMM_STATS_PATH, "rewinds"), rewinds);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE);
	free(m);
	munmap(other, 64 * self->psz);
	munmap(p, size);
}

TEST_HARNESS_MAIN
