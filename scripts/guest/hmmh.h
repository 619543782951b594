/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the reliability programs in scripts/guest/: the device
 * command wrapper, TAP output, time and a deterministic PRNG.  Header only,
 * every program is one static binary.
 */
#ifndef HMMH_H
#define HMMH_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define HMMH_DEV0	"/dev/hmm_dmirror0"
#define HMMH_DEV1	"/dev/hmm_dmirror1"
/* Device coherent nodes: test_hmm loaded with spm_addr_dev0/1. */
#define HMMH_DEV2	"/dev/hmm_dmirror2"
#define HMMH_DEV3	"/dev/hmm_dmirror3"

/* Node @i of test_hmm: 0 and 1 device private, 2 and 3 device coherent. */
static const char *const hmmh_devs[] = {
	HMMH_DEV0, HMMH_DEV1, HMMH_DEV2, HMMH_DEV3,
};

static unsigned int tap_n;
static unsigned int tap_failed;

static inline void tap_plan(unsigned int n)
{
	printf("TAP version 13\n1..%u\n", n);
	fflush(stdout);
}

static inline void __attribute__((format(printf, 2, 3)))
tap(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %u ", ok ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		tap_failed++;
}

static inline void tap_skip(const char *name, const char *why)
{
	printf("ok %u %s # SKIP %s\n", ++tap_n, name, why);
	fflush(stdout);
}

/* A TAP comment line; returns 0 so that "return diag(...), 0" reads. */
static inline int __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return 0;
}

/* Issue one device command; returns 0 or -errno, never -EINTR. */
static inline int dmirror_cmd(int fd, unsigned long req, void *addr,
			      void *ptr, unsigned long npages,
			      struct hmm_dmirror_cmd *cmd)
{
	int ret;

	memset(cmd, 0, sizeof(*cmd));
	cmd->addr = (uintptr_t)addr;
	cmd->ptr = (uintptr_t)ptr;
	cmd->npages = npages;
	do {
		ret = ioctl(fd, req, cmd);
	} while (ret && errno == EINTR);
	return ret ? -errno : 0;
}

#ifdef HMM_DMIRROR_STATS	/* our uapi; hmm-reload also builds on the base's */
/* Counters of the node behind @path, read through a fresh open. */
static inline int dmirror_stats(const char *path, struct hmm_dmirror_stats *st)
{
	int fd = open(path, O_RDWR);
	int ret;

	if (fd < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	ret = ioctl(fd, HMM_DMIRROR_STATS, st) ? -errno : 0;
	close(fd);
	return ret;
}
#endif

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* xorshift64*: deterministic from its seed, never 0. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Run a shell command; its exit status, 255 if it did not exit. */
static inline int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	status = system(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* Write @val to the file at @path; 0 or -errno. */
static inline int put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int ret = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Read the file at @path into @buf as a string; its length or -1. */
static inline ssize_t read_text(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* Read a number from the start of the file at @path (-1 if unreadable). */
static inline long long get_num(const char *path)
{
	char buf[64];

	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtoll(buf, NULL, 0);
}

#endif /* HMMH_H */
