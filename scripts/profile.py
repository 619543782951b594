#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""profile.py: where the instructions of one bench metric go, per function.

Reads, for the pristine and the ours kernel, what bench/prof/tbcount.c
wrote (one line per translation block that ran inside a profile window:
address, instructions, runs) and attributes each block to the function of
the kernel (System.map) or of test_hmm.ko (its .text symbols, at the load
address the guest printed) that contains it.  Prints instructions per page
and window for each function, pristine, ours and the difference, largest
differences first, and writes the same as JSON.

usage: profile.py --metric NAME --pages N --json OUT
                  pristine:PROFILE:SYSTEM_MAP:KO:TESTS_LOG
                  ours:PROFILE:SYSTEM_MAP:KO:TESTS_LOG
"""
import argparse
import bisect
import collections
import json
import re
import subprocess
import sys

KERNEL_TEXT = 0xffffffff80000000
MODULES = 0xffffffffa0000000


def kernel_symbols(system_map):
    syms = []
    with open(system_map) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in 'tTwW':
                syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def module_symbols(ko):
    """Functions of the .text section of @ko, offsets from its start."""
    out = subprocess.run(['objdump', '-t', ko], capture_output=True,
                         text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        # address flags... section size name
        if len(parts) >= 6 and parts[-3] == '.text' and 'F' in parts[1:-3]:
            syms.append((int(parts[0], 16), parts[-1]))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def module_base(tests_log):
    with open(tests_log, errors='replace') as f:
        for line in f:
            m = re.search(r'# bench: test_hmm \.text (0x[0-9a-f]+)', line)
            if m:
                return int(m.group(1), 16)
    return None


def lookup(addrs, names, addr, prefix=''):
    i = bisect.bisect_right(addrs, addr) - 1
    return prefix + names[i] if i >= 0 else prefix + '?'


def profile(spec):
    """Instructions per function, and the number of windows."""
    path, system_map, ko, tests_log = spec
    kaddrs, knames = kernel_symbols(system_map)
    maddrs, mnames = module_symbols(ko)
    base = module_base(tests_log)
    per_fn = collections.Counter()
    windows = None
    with open(path) as f:
        for line in f:
            if line.startswith('# windows'):
                windows = int(line.split()[2])
                continue
            addr, insns, runs = line.split()
            addr = int(addr, 16)
            count = int(insns) * int(runs)
            if addr < KERNEL_TEXT:
                name = '[user]' if addr < 0x800000000000 else '[kernel, no symbol]'
            elif addr >= MODULES:
                if base is not None and addr >= base:
                    name = lookup(maddrs, mnames, addr - base, 'test_hmm:')
                else:
                    name = '[module]'
            else:
                name = lookup(kaddrs, knames, addr)
            per_fn[name] += count
    return per_fn, windows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--metric', required=True)
    ap.add_argument('--pages', type=int, required=True,
                    help='pages one window covers')
    ap.add_argument('--json', required=True)
    ap.add_argument('--top', type=int, default=40)
    ap.add_argument('runs', nargs=2,
                    help='KERNEL:PROFILE:SYSTEM_MAP:KO:TESTS_LOG')
    args = ap.parse_args()

    data = {}
    for run in args.runs:
        kernel, *spec = run.split(':')
        if kernel not in ('pristine', 'ours') or len(spec) != 4:
            sys.exit(f'profile.py: bad run {run}')
        per_fn, windows = profile(spec)
        if not windows:
            sys.exit(f'profile.py: {kernel}: no profile window closed '
                     f'(metric {args.metric} missing or markers not seen)')
        data[kernel] = (per_fn, windows)

    scale = {k: 1.0 / (w * args.pages) for k, (_, w) in data.items()}
    pf, po = data['pristine'][0], data['ours'][0]
    totals = {k: sum(fn.values()) * scale[k] for k, (fn, _) in data.items()}
    names = sorted(set(pf) | set(po),
                   key=lambda n: -abs(po[n] * scale['ours'] -
                                      pf[n] * scale['pristine']))
    rows = [{'function': n,
             'pristine': pf[n] * scale['pristine'],
             'ours': po[n] * scale['ours']} for n in names]

    print(f'profile of {args.metric}: guest instructions per page '
          f'({args.pages} pages a window; windows: pristine '
          f'{data["pristine"][1]}, ours {data["ours"][1]})')
    print(f'{"total":<44} {totals["pristine"]:>10.2f} {totals["ours"]:>10.2f}'
          f' {totals["ours"] - totals["pristine"]:>+9.2f}'
          f'   ratio {totals["pristine"] / totals["ours"]:.4f}')
    print(f'{"function (largest differences first)":<44} {"pristine":>10}'
          f' {"ours":>10} {"ours-p":>9}')
    for r in rows[:args.top]:
        print(f'{r["function"][:44]:<44} {r["pristine"]:>10.2f}'
              f' {r["ours"]:>10.2f} {r["ours"] - r["pristine"]:>+9.2f}')
    with open(args.json, 'w') as f:
        json.dump({'metric': args.metric, 'pages': args.pages,
                   'windows': {k: w for k, (_, w) in data.items()},
                   'total': totals, 'functions': rows}, f, indent=1)


if __name__ == '__main__':
    main()
