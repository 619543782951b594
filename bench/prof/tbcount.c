// SPDX-License-Identifier: GPL-2.0
/*
 * tbcount.c: a QEMU TCG plugin that counts the guest instructions run
 * between two marker addresses, per translation block, for make profile
 * (scripts/bench.sh with BENCH_PROFILE, then scripts/profile.py).
 *
 * Every translation block gets a counter that an inline add bumps on each
 * execution.  Two user addresses are markers: running the block at
 * "start" snapshots every counter, running the block at "stop" adds what
 * each counter gained since to its total.  At exit the plugin writes one
 * line per block that ran inside a window: its guest virtual address, its
 * instruction count and how many times it ran, so that the blocks can be
 * attributed to the functions of the guest kernel and modules.  A string
 * instruction runs once per element, as icount counts it.
 *
 * Arguments: out=FILE (required), start=ADDR, stop=ADDR (hexadecimal).
 * One vCPU (-icount implies it): the inline adds are not atomic.
 *
 * QEMU installs no header for plugins, so the few declarations of its
 * plugin API (version 1, QEMU 7.2) used here are spelled out below.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb)(unsigned int vcpu, void *udata);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *udata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  vcpu_udata_cb cb,
					  enum qemu_plugin_cb_flags flags,
					  void *udata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
					      enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb,
				    void *udata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

struct block {
	uint64_t vaddr;
	uint64_t runs;		/* bumped inline on every execution */
	uint64_t mark;		/* runs when the current window opened */
	uint64_t total;		/* runs inside closed windows */
	size_t insns;
};

static struct block **blocks;
static size_t nblocks, capacity;
static uint64_t start_addr = 0x5a5a00000000ULL;
static uint64_t stop_addr = 0x5a5a00000040ULL;
static const char *out_path;
static int open_window;
static unsigned long windows;

static void window_start(unsigned int vcpu, void *udata)
{
	size_t i;

	if (open_window)
		return;
	for (i = 0; i < nblocks; i++)
		blocks[i]->mark = blocks[i]->runs;
	open_window = 1;
}

static void window_stop(unsigned int vcpu, void *udata)
{
	size_t i;

	if (!open_window)
		return;
	for (i = 0; i < nblocks; i++)
		blocks[i]->total += blocks[i]->runs - blocks[i]->mark;
	open_window = 0;
	windows++;
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct block *b = calloc(1, sizeof(*b));

	if (!b)
		abort();
	if (nblocks == capacity) {
		capacity = capacity ? 2 * capacity : 1 << 16;
		blocks = realloc(blocks, capacity * sizeof(*blocks));
		if (!blocks)
			abort();
	}
	/* A block translated inside a window starts at 0, its mark too. */
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = qemu_plugin_tb_n_insns(tb);
	blocks[nblocks++] = b;
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &b->runs, 1);
	if (b->vaddr == start_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, window_start,
						     QEMU_PLUGIN_CB_NO_REGS,
						     NULL);
	else if (b->vaddr == stop_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, window_stop,
						     QEMU_PLUGIN_CB_NO_REGS,
						     NULL);
}

static void finished(qemu_plugin_id_t id, void *udata)
{
	FILE *f = fopen(out_path, "w");
	size_t i;

	if (!f) {
		perror(out_path);
		return;
	}
	fprintf(f, "# windows %lu\n", windows);
	for (i = 0; i < nblocks; i++)
		if (blocks[i]->total)
			fprintf(f, "%" PRIx64 " %zu %" PRIu64 "\n",
				blocks[i]->vaddr, blocks[i]->insns,
				blocks[i]->total);
	fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
			       const struct qemu_info *info, int argc,
			       char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			out_path = argv[i] + 4;
		else if (!strncmp(argv[i], "start=", 6))
			start_addr = strtoull(argv[i] + 6, NULL, 16);
		else if (!strncmp(argv[i], "stop=", 5))
			stop_addr = strtoull(argv[i] + 5, NULL, 16);
		else {
			fprintf(stderr, "tbcount: bad argument %s\n", argv[i]);
			return 1;
		}
	}
	if (!out_path) {
		fprintf(stderr, "tbcount: out=FILE is required\n");
		return 1;
	}
	out_path = strdup(out_path);
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, finished, NULL);
	return 0;
}
