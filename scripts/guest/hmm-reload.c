// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-reload: load and unload test_hmm again and again while a process
 * still has pages in its device memory.
 *
 * Each cycle loads the module, fills a buffer, migrates it to device
 * memory (device private and device coherent nodes in turn), checks that
 * the module cannot go while a mirror is open, closes
 * the device (the mirror goes, the device pages stay mapped in this
 * process), unloads the module, which must evict every device page back to
 * system memory, and finally checks every byte.  Prints TAP; exit status 0
 * only if every cycle passed.  Run it on a kmemleak kernel: the guest's
 * final scan then proves the cycles leaked nothing.
 */
#include <sys/mman.h>

#include "hmmh.h"

#define NPAGES		512

static long page_size;

/* One cycle; returns NULL on success or what went wrong. */
static const char *cycle(unsigned int seed, const char *dev, char *why,
			 size_t len)
{
	size_t size = NPAGES * page_size;
	struct hmm_dmirror_cmd cmd;
	uint32_t *buf, *copy;
	size_t i, n = size / sizeof(*buf);
	int fd, ret;

	if (sh("modprobe test_hmm"))
		return "modprobe test_hmm failed";
	fd = open(dev, O_RDWR);
	if (fd < 0) {
		snprintf(why, len, "open %s: %s", dev, strerror(errno));
		return why;
	}
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	copy = malloc(size);
	if (buf == MAP_FAILED || !copy)
		return "out of memory";
	for (i = 0; i < n; i++)
		buf[i] = seed * 2654435761u + i;

	ret = dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, copy, NPAGES, &cmd);
	if (ret || cmd.cpages != NPAGES) {
		snprintf(why, len, "migrate to device: %d, %llu of %d pages",
			 ret, (unsigned long long)cmd.cpages, NPAGES);
		return why;
	}
	/* A live mirror pins the module. */
	if (!sh("modprobe -r test_hmm 2>/dev/null"))
		return "module unloaded while a mirror was open";
	close(fd);
	/* No mirror left; the device pages are still mapped here. */
	if (sh("modprobe -r test_hmm"))
		return "modprobe -r test_hmm failed with device pages mapped";
	for (i = 0; i < n; i++) {
		if (buf[i] != seed * 2654435761u + i) {
			snprintf(why, len, "word %zu is %#x after eviction",
				 i, buf[i]);
			return why;
		}
	}
	munmap(buf, size);
	free(copy);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int cycles = argc > 1 ? atoi(argv[1]) : 20;
	unsigned int i;
	char why[160];

	page_size = sysconf(_SC_PAGESIZE);
	tap_plan(cycles);
	for (i = 0; i < cycles; i++) {
		/* Odd cycles: the device coherent node. */
		const char *dev = i & 1 ? HMMH_DEV2 : HMMH_DEV0;
		const char *err = cycle(i + 1, dev, why, sizeof(why));

		if (err) {
			tap(0, "reload.cycle%u (%s) # %s", i + 1, dev, err);
			sh("modprobe -r test_hmm 2>/dev/null");
		} else {
			tap(1, "reload.cycle%u (%s)", i + 1, dev);
		}
	}
	return tap_failed ? 1 : 0;
}
