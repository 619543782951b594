// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-dataloss: nothing the device wrote or holds may be lost.
 *
 *   hmm-dataloss DATA_BLOCKDEV SWAP_BLOCKDEV
 *
 * On a real filesystem (ext2 made on DATA_BLOCKDEV, e.g. a brd disk):
 * device writes (HMM_DMIRROR_WRITE) into a MAP_SHARED file mapping must
 * reach the disk: checked with read() after msync or fsync and
 * drop_caches, and again after umount and mount.  Three cases: the device
 * writes pages the CPU wrote and msync()ed (the device mapping the pages
 * read-only first), pages nobody touched yet, and pages written again by
 * the device after writeback cleaned them (only a device write fault, made
 * possible by writeback's invalidation of the device mapping, can dirty
 * them again).
 *
 * Anonymous pages migrated to device memory (MIGRATE_TO_DEV) keep their
 * content through fork (the child reads them), through swap-out of their
 * neighbours (swap on SWAP_BLOCKDEV, reclaim forced with memory.reclaim of
 * a memory cgroup), through the exit of a child sharing them, and through
 * the unload of test_hmm (which evicts them).  Pages swapped out under a
 * device mirror must come back right when the device reads them.  Device
 * writes into shared memory (memfd) must survive reclaim, also into pages
 * the CPU mapped writable but clean, also once the process unmapped them
 * (see shmem_case()).  Prints
 * TAP and the number of bytes verified; a failure names the first bad
 * page and what it holds instead (old data, zeroes or other).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "hmmh.h"

#define NPAGES		256
#define RECLAIM_ROUNDS	10	/* of MADV_PAGEOUT and memory.reclaim */
#define MNT		"/mnt/hmm-data"
#define CG		"/sys/fs/cgroup"
#define CGD		CG "/hmm-data"

static size_t psz, size;
static unsigned long long verified;
static const char *blkdev;

static uint32_t pat(unsigned int seed, size_t page, size_t word)
{
	return (seed * 0x9e3779b1u) ^ (uint32_t)(page << 12) ^ (uint32_t)word;
}

static void fill(void *buf, size_t npages, unsigned int seed)
{
	uint32_t *w = buf;
	size_t p, i, n = psz / 4;

	for (p = 0; p < npages; p++)
		for (i = 0; i < n; i++)
			w[p * n + i] = pat(seed, p, i);
}

/* What page @p of @buf holds: 1 the pattern @seed, 0 zeroes, -1 other. */
static int page_is(const void *buf, size_t p, unsigned int seed)
{
	const uint32_t *w = (const uint32_t *)buf + p * (psz / 4);
	size_t i, n = psz / 4, zero = 1;

	for (i = 0; i < n; i++)
		if (w[i])
			zero = 0;
	if (zero)
		return 0;
	for (i = 0; i < n; i++)
		if (w[i] != pat(seed, p, i))
			return -1;
	return 1;
}

/*
 * Check @npages pages against the pattern @seed (@old: what they held
 * before, to name what a lost write left); 1 if all match.
 */
static int verify(const char *what, const void *buf, size_t npages,
		  unsigned int seed, unsigned int old)
{
	size_t p, bad = 0, was_old = 0, zero = 0, first = 0;

	for (p = 0; p < npages; p++) {
		int r = page_is(buf, p, seed);

		if (r == 1)
			continue;
		if (!bad++)
			first = p;
		if (!r)
			zero++;
		else if (old && page_is(buf, p, old) == 1)
			was_old++;
	}
	if (!bad) {
		verified += npages * psz;
		return 1;
	}
	diag("%s: %zu of %zu pages wrong, first page %zu; %zu hold the old data, %zu zeroes, %zu other",
	     what, bad, npages, first, was_old, zero, bad - was_old - zero);
	return 0;
}

static int drop_caches(void)
{
	sync();
	return put("/proc/sys/vm/drop_caches", "3");
}

static int remount(void)
{
	return sh("umount " MNT) || sh("mount -t ext2 %s " MNT, blkdev);
}

/* The whole file through read(), after the caches went. */
static int verify_file(const char *what, const char *path, unsigned int seed,
		       unsigned int old)
{
	char *buf = malloc(size);
	int fd = open(path, O_RDONLY), ok;
	ssize_t n;

	n = fd < 0 || !buf ? -1 : pread(fd, buf, size, 0);
	if (n != (ssize_t)size) {
		diag("%s: read %zd bytes of %s: %s", what, n, path,
		     strerror(errno));
		ok = 0;
	} else {
		ok = verify(what, buf, NPAGES, seed, old);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

static char *map_file(const char *path, int create, int *fdp)
{
	int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	char *p;

	if (fd < 0 || (create && ftruncate(fd, size)))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	*fdp = fd;
	return p;
}

/* Device writes into a shared file mapping. */
static void file_tests(int dev)
{
	char *buf = malloc(size), *map, name[64];
	struct hmm_dmirror_cmd cmd;
	int fd, ret, ok;
	size_t p;

	/* 1. Over CPU-written, msync()ed pages the device mapped read-only. */
	map = map_file(MNT "/a", 1, &fd);
	ok = !!map;
	if (ok) {
		fill(map, NPAGES, 1);
		ok = !msync(map, size, MS_SYNC);
		ret = dmirror_cmd(dev, HMM_DMIRROR_READ, map, buf, NPAGES,
				  &cmd);
		ok &= !ret && verify("a: device read", buf, NPAGES, 1, 0);
		fill(buf, NPAGES, 2);
		ret = dmirror_cmd(dev, HMM_DMIRROR_WRITE, map, buf, NPAGES,
				  &cmd);
		ok &= !ret && verify("a: CPU view of the device write", map,
				     NPAGES, 2, 1);
		ok &= !msync(map, size, MS_SYNC);
		munmap(map, size);
		close(fd);
	}
	ok &= !drop_caches();
	tap(ok && verify_file("a: after msync, drop_caches", MNT "/a", 2, 1),
	    "dataloss.file_device_write_after_msync (msync, drop_caches)");
	tap(!remount() && verify_file("a: after remount", MNT "/a", 2, 1),
	    "dataloss.file_device_write_after_msync_remount");

	/* 2. Into pages nobody touched, unmapped unsynced, then fsync. */
	map = map_file(MNT "/b", 1, &fd);
	ok = !!map;
	if (ok) {
		fill(buf, NPAGES, 3);
		ret = dmirror_cmd(dev, HMM_DMIRROR_WRITE, map, buf, NPAGES,
				  &cmd);
		if (ret)
			diag("b: device write: %d", ret);
		ok = !ret;
		munmap(map, size);
		ok &= !fsync(fd);
		close(fd);
	}
	ok &= !drop_caches();
	tap(ok && verify_file("b: after fsync, drop_caches", MNT "/b", 3, 0),
	    "dataloss.file_device_write_untouched (munmap, fsync, drop_caches)");
	tap(!remount() && verify_file("b: after remount", MNT "/b", 3, 0),
	    "dataloss.file_device_write_untouched_remount");

	/*
	 * 3. The device writes, writeback cleans the pages, the device
	 * writes again: the second write must dirty them anew.
	 */
	map = map_file(MNT "/c", 1, &fd);
	ok = !!map;
	if (ok) {
		fill(map, NPAGES, 4);
		fill(buf, NPAGES, 5);
		ret = dmirror_cmd(dev, HMM_DMIRROR_WRITE, map, buf, NPAGES,
				  &cmd);
		ok = !ret && !msync(map, size, MS_SYNC);
		fill(buf, NPAGES, 6);
		/* Page by page, in case the first ones need a fault. */
		for (p = 0; p < NPAGES && ok; p++) {
			ret = dmirror_cmd(dev, HMM_DMIRROR_WRITE,
					  map + p * psz, buf + p * psz, 1,
					  &cmd);
			if (ret) {
				diag("c: device write of page %zu: %d", p, ret);
				ok = 0;
			}
		}
		munmap(map, size);
		close(fd);
	}
	ok &= !drop_caches();
	snprintf(name, sizeof(name), "c: after writeback, sync, drop_caches");
	tap(ok && verify_file(name, MNT "/c", 6, 5),
	    "dataloss.file_device_write_after_writeback (sync, drop_caches)");
	tap(!remount() && verify_file("c: after remount", MNT "/c", 6, 5),
	    "dataloss.file_device_write_after_writeback_remount");
	free(buf);
}

static char *anon(size_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Fill an anonymous buffer and move it to device memory. */
static char *on_device(int dev, unsigned int seed)
{
	struct hmm_dmirror_cmd cmd;
	char *p = anon(size), *buf = malloc(size);
	int ret;

	if (!p || !buf)
		return NULL;
	fill(p, NPAGES, seed);
	ret = dmirror_cmd(dev, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, NPAGES,
			  &cmd);
	if (ret || cmd.cpages != NPAGES ||
	    !verify("migration read-back", buf, NPAGES, seed, 0)) {
		diag("migrate to device: %d, %llu of %d pages", ret,
		     (unsigned long long)cmd.cpages, NPAGES);
		free(buf);
		return NULL;
	}
	free(buf);
	return p;
}

/* The device's view of @p: a read through the mirror. */
static int device_verify(int dev, const char *what, char *p, size_t npages,
			 unsigned int seed)
{
	struct hmm_dmirror_cmd cmd;
	char *buf = malloc(npages * psz);
	int ok, ret;

	ret = dmirror_cmd(dev, HMM_DMIRROR_READ, p, buf, npages, &cmd);
	if (ret)
		diag("%s: device read %d", what, ret);
	ok = !ret && verify(what, buf, npages, seed, 0);
	free(buf);
	return ok;
}

/* Run @fn in a child bounded by 60 s; 1 if it exited 0. */
static int child_ok(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		diag("child status %#x", st);
	return WIFEXITED(st) && !WEXITSTATUS(st);
}

static void fork_and_exit_tests(int dev)
{
	char *p = on_device(dev, 7);
	pid_t pid;
	int ok;

	/* The child reads the device pages it inherited. */
	ok = !!p;
	if (ok) {
		pid = fork();
		if (!pid) {
			alarm(60);
			_exit(verify("fork: child's CPU view", p, NPAGES, 7,
				     0) ? 0 : 1);
		}
		ok = child_ok(pid);
		ok &= device_verify(dev, "fork: parent's device view", p,
				    NPAGES, 7);
		ok &= verify("fork: parent's CPU view", p, NPAGES, 7, 0);
		if (ok)
			verified += size;	/* the child's check */
	}
	tap(ok, "dataloss.device_pages_through_fork");

	/* A child sharing device pages exits without touching them. */
	p = on_device(dev, 8);
	ok = !!p;
	if (ok) {
		pid = fork();
		if (!pid)
			_exit(0);
		ok = child_ok(pid);
		ok &= device_verify(dev, "exit: parent's device view", p,
				    NPAGES, 8);
		ok &= verify("exit: parent's CPU view", p, NPAGES, 8, 0);
	}
	tap(ok, "dataloss.device_pages_through_child_exit");
}

static long long swap_used(void)
{
	long long v = get_num(CGD "/memory.swap.current");

	return v;
}

/*
 * Map @fd (@size bytes, shared) at a 2 MiB aligned address: the device page
 * table then starts a new node at the first page, and the dummy device's
 * batches of dirty pages end exactly where a node of it empties.
 */
static char *map_shared_aligned(int fd)
{
	size_t align = 2UL << 20;
	char *p, *want;

	p = mmap(NULL, size + align, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return MAP_FAILED;
	want = (char *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (want > p)
		munmap(p, want - p);
	munmap(want + size, p + align - want);
	return mmap(want, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		    fd, 0);
}

/*
 * Device writes into shared memory (memfd), then reclaim of those pages.
 * With @cpu_read, the CPU read-faults the pages first: a shared writable
 * mapping without dirty tracking (shmem has no writenotify) then maps them
 * writable but clean, so the device write needs no fault, and only the
 * device's driver can tell the kernel the pages are dirty.  Reclaim drops
 * clean shmem pages: a write nobody marked dirty comes back as zeroes.
 *
 * With @unmap the process unmaps the buffer the device wrote before
 * reclaim, as when it frees memory the GPU wrote: one invalidation drops
 * every device mapping at once and must dirty every page.  The pages are
 * then reclaimed, all of them, through a second mapping made before the
 * munmap, which the device never mapped (so no later invalidation can
 * make up for a page the first one missed).
 */
static int shmem_case(int dev, int cpu_read, int unmap, unsigned int seed)
{
	char *buf = malloc(size), *map, *map2 = MAP_FAILED;
	struct hmm_dmirror_cmd cmd;
	unsigned char vec[NPAGES];
	volatile char sink;
	size_t gone;
	int fd = memfd_create("hmm-dataloss", 0), ok, ret, round;
	size_t p;

	if (fd < 0 || ftruncate(fd, size) || !buf)
		return diag("shmem: setup: %s", strerror(errno)), 0;
	map = map_shared_aligned(fd);
	if (map == MAP_FAILED)
		return diag("shmem: mmap: %s", strerror(errno)), 0;
	if (cpu_read)
		for (p = 0; p < NPAGES; p++)
			sink = map[p * psz];
	(void)sink;
	fill(buf, NPAGES, seed);
	ret = dmirror_cmd(dev, HMM_DMIRROR_WRITE, map, buf, NPAGES, &cmd);
	ok = !ret && verify("shmem: CPU view of the device write", map,
			    NPAGES, seed, 0);
	if (ret)
		diag("shmem: device write: %d", ret);
	if (unmap) {
		map2 = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    0);
		if (map2 == MAP_FAILED)
			return diag("shmem: mmap: %s", strerror(errno)), 0;
		munmap(map, size);
		map = map2;
		/* Mapped, so that MADV_PAGEOUT takes every page. */
		for (p = 0; p < NPAGES; p++)
			sink = map[p * psz];
	}
	/*
	 * Reclaim exactly these pages, then whatever the memcg holds, until
	 * none is left in memory.  One round may not take them all: a page
	 * still in another CPU's LRU cache cannot be isolated (MADV_PAGEOUT
	 * drains only this CPU's; memory.reclaim drains every CPU's only
	 * when it runs out of pages), and a page just written to swap stays
	 * in the swap cache until reclaim comes back for it.
	 */
	for (round = 1;; round++) {
		if (madvise(map, size, MADV_PAGEOUT))
			diag("shmem: MADV_PAGEOUT: %s", strerror(errno));
		put(CGD "/memory.reclaim", "200M");
		/* Not vacuous: the pages really left memory. */
		if (mincore(map, size, vec))
			memset(vec, 1, sizeof(vec));
		for (p = 0, gone = 0; p < NPAGES; p++)
			gone += !(vec[p] & 1);
		if (gone == NPAGES || round == RECLAIM_ROUNDS)
			break;
	}
	diag("shmem (%s%s): %zu of %d pages reclaimed in %d round%s",
	     cpu_read ? "read-faulted" : "untouched", unmap ? ", unmapped" : "",
	     gone, NPAGES, round, round > 1 ? "s" : "");
	/* A page left in memory would hide a write lost here. */
	ok &= unmap ? gone == NPAGES : gone > 0;
	ok &= verify(unmap ? "shmem: unmapped pages after reclaim" :
		     cpu_read ? "shmem: read-faulted pages after reclaim" :
				"shmem: untouched pages after reclaim",
		     map, NPAGES, seed, 0);
	munmap(map, size);
	close(fd);
	free(buf);
	return ok;
}

static void shmem_tests(int dev)
{
	tap(shmem_case(dev, 0, 0, 12),
	    "dataloss.shmem_device_write_through_reclaim");
	tap(shmem_case(dev, 1, 0, 13),
	    "dataloss.shmem_device_write_over_clean_pte_through_reclaim");
	tap(shmem_case(dev, 1, 1, 14),
	    "dataloss.shmem_device_write_over_clean_pte_then_munmap_through_reclaim");
}

static void swap_tests(int dev, const char *swapdev)
{
	size_t nbig = 48 << 20, half = NPAGES / 2;
	char pid[32], *p, *big, *buf = malloc(size);
	struct hmm_dmirror_cmd cmd;
	long long used;
	int ok = 1;

	if (sh("mkswap %s >/dev/null && swapon %s", swapdev, swapdev)) {
		tap(0, "dataloss.swap_setup");
		tap(0, "dataloss.device_pages_through_neighbour_swapout");
		tap(0, "dataloss.swapped_pages_read_by_device");
		tap(0, "dataloss.shmem_device_write_through_reclaim");
		tap(0, "dataloss.shmem_device_write_over_clean_pte_through_reclaim");
		tap(0, "dataloss.shmem_device_write_over_clean_pte_then_munmap_through_reclaim");
		return;
	}
	mkdir(CG, 0755);
	if (access(CG "/cgroup.controllers", F_OK))
		sh("mount -t cgroup2 none " CG);
	put(CG "/cgroup.subtree_control", "+memory");
	mkdir(CGD, 0755);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ok = !put(CGD "/cgroup.procs", pid);

	/* First half in device memory, second half mirrored in RAM. */
	p = anon(size);
	big = anon(nbig);
	ok &= p && big && buf;
	if (ok) {
		fill(p, NPAGES, 9);
		ok = !dmirror_cmd(dev, HMM_DMIRROR_MIGRATE_TO_DEV, p, buf, half,
				  &cmd) && cmd.cpages == half;
		ok &= !dmirror_cmd(dev, HMM_DMIRROR_READ, p + half * psz, buf,
				   NPAGES - half, &cmd);
		memset(big, 0x6b, nbig);
		/* May stop short of the target: EAGAIN is fine. */
		put(CGD "/memory.reclaim", "200M");
		put(CGD "/memory.reclaim", "200M");
	}
	used = swap_used();
	tap(ok && used > 0, "dataloss.swap_setup (%lld KiB swapped out)",
	    used >> 10);
	/* The device reads everything: its own pages and swapped ones. */
	ok &= device_verify(dev, "swap: device view", p, NPAGES, 9);
	ok &= verify("swap: CPU view", p, NPAGES, 9, 0);
	if (ok) {
		size_t i;

		for (i = 0; i < nbig && big[i] == 0x6b; i++)
			;
		ok = i == nbig;
		if (ok)
			verified += nbig;
		else
			diag("swap: neighbour byte %zu is %#x", i, big[i]);
	}
	tap(ok, "dataloss.device_pages_through_neighbour_swapout");

	/* Swap out pages the device has mapped, then let it read them. */
	fill(p, NPAGES, 10);
	ok = !dmirror_cmd(dev, HMM_DMIRROR_READ, p, buf, NPAGES, &cmd);
	used = swap_used();
	put(CGD "/memory.reclaim", "200M");
	ok &= device_verify(dev, "swap: device reads swapped pages", p, NPAGES,
			    10);
	tap(ok, "dataloss.swapped_pages_read_by_device (swap %lld -> %lld KiB)",
	    used >> 10, swap_used() >> 10);
	munmap(big, nbig);
	shmem_tests(dev);
	snprintf(pid, sizeof(pid), "%d", getpid());
	put(CG "/cgroup.procs", pid);
	sh("swapoff %s", swapdev);
	free(buf);
}

int main(int argc, char **argv)
{
	const char *swapdev = argc > 2 ? argv[2] : "/dev/ram2";
	double t0 = now();
	char *p;
	int dev, ok;

	blkdev = argc > 1 ? argv[1] : "/dev/ram1";
	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	size = NPAGES * psz;
	tap_plan(16);
	mkdir(MNT, 0755);
	dev = open(HMMH_DEV0, O_RDWR);
	if (dev < 0 || sh("mke2fs -q %s >/dev/null", blkdev) ||
	    sh("mount -t ext2 %s " MNT, blkdev)) {
		diag("setup: cannot open the device or make ext2 on %s",
		     blkdev);
		return 1;
	}
	file_tests(dev);
	fork_and_exit_tests(dev);
	swap_tests(dev, swapdev);

	/* Device pages of a closed mirror survive the unload of test_hmm. */
	p = on_device(dev, 11);
	close(dev);
	ok = p && !sh("modprobe -r test_hmm") && access(HMMH_DEV0, F_OK) &&
	     verify("unload: CPU view", p, NPAGES, 11, 0);
	tap(ok && !sh("modprobe test_hmm"),
	    "dataloss.device_pages_through_module_unload");

	/* The same with device coherent memory, evicted at unload too. */
	dev = open(HMMH_DEV2, O_RDWR);
	p = dev < 0 ? NULL : on_device(dev, 12);
	if (dev >= 0)
		close(dev);
	ok = p && !sh("modprobe -r test_hmm") && access(HMMH_DEV2, F_OK) &&
	     verify("unload: CPU view of coherent pages", p, NPAGES, 12, 0);
	tap(ok && !sh("modprobe test_hmm"),
	    "dataloss.coherent_pages_through_module_unload");
	sh("umount " MNT);
	diag("dataloss: %llu bytes verified, %.1f s", verified, now() - t0);
	return tap_failed ? 1 : 0;
}
