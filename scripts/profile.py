#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""profile.py: where the instructions of one bench metric go, per function.

Reads, for the pristine and the ours kernel, what bench/prof/tbcount.c
wrote (one line per translation block that ran inside a profile window:
address, instructions, runs) and attributes each block to the function of
the kernel (System.map) or of a module (the .text symbols of test_hmm.ko
and the bench modules, at the load addresses the guest printed) that
contains it.  Prints instructions per page and window for each function,
pristine, ours and the difference, largest differences first, after the
totals of instructions and of translation blocks run, and writes the same
as JSON.

usage: profile.py --metric NAME --pages N --json OUT
                  pristine:PROFILE:SYSTEM_MAP:KO[,KO...]:TESTS_LOG
                  ours:PROFILE:SYSTEM_MAP:KO[,KO...]:TESTS_LOG
"""
import argparse
import bisect
import collections
import json
import os
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


def module_bases(tests_log):
    """Where the guest loaded the .text of each module it printed."""
    bases = {}
    with open(tests_log, errors='replace') as f:
        for line in f:
            m = re.search(r'# bench: (\w+) \.text (0x[0-9a-f]+)', line)
            if m:
                bases[m.group(1)] = int(m.group(2), 16)
    return bases


def modules(kos, tests_log):
    """(base, name, addrs, names) of each of @kos the guest loaded."""
    bases = module_bases(tests_log)
    mods = []
    for ko in kos.split(','):
        name = os.path.basename(ko)[:-len('.ko')]
        if name in bases:
            mods.append((bases[name], name) + module_symbols(ko))
    return sorted(mods)


def lookup(addrs, names, addr, prefix=''):
    i = bisect.bisect_right(addrs, addr) - 1
    return prefix + names[i] if i >= 0 else prefix + '?'


def profile(spec):
    """Instructions per function, blocks run, and the number of windows."""
    path, system_map, kos, tests_log = spec
    kaddrs, knames = kernel_symbols(system_map)
    mods = modules(kos, tests_log)
    mbases = [m[0] for m in mods]
    per_fn = collections.Counter()
    blocks = 0
    windows = None
    with open(path) as f:
        for line in f:
            if line.startswith('# windows'):
                windows = int(line.split()[2])
                continue
            addr, insns, runs = line.split()
            addr = int(addr, 16)
            count = int(insns) * int(runs)
            blocks += int(runs)
            if addr < KERNEL_TEXT:
                name = '[user]' if addr < 0x800000000000 else '[kernel, no symbol]'
            elif addr >= MODULES:
                i = bisect.bisect_right(mbases, addr) - 1
                if i >= 0:
                    base, mod, maddrs, mnames = mods[i]
                    name = lookup(maddrs, mnames, addr - base, mod + ':')
                else:
                    name = '[module]'
            else:
                name = lookup(kaddrs, knames, addr)
            per_fn[name] += count
    return per_fn, windows, blocks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--metric', required=True)
    ap.add_argument('--pages', type=int, required=True,
                    help='pages one window covers')
    ap.add_argument('--json', required=True)
    ap.add_argument('--top', type=int, default=40)
    ap.add_argument('runs', nargs=2,
                    help='KERNEL:PROFILE:SYSTEM_MAP:KO[,KO...]:TESTS_LOG')
    args = ap.parse_args()

    data = {}
    for run in args.runs:
        kernel, *spec = run.split(':')
        if kernel not in ('pristine', 'ours') or len(spec) != 4:
            sys.exit(f'profile.py: bad run {run}')
        per_fn, windows, blocks = profile(spec)
        if not windows:
            sys.exit(f'profile.py: {kernel}: no profile window closed '
                     f'(metric {args.metric} missing or markers not seen)')
        data[kernel] = (per_fn, windows, blocks)

    scale = {k: 1.0 / (w * args.pages) for k, (_, w, _) in data.items()}
    pf, po = data['pristine'][0], data['ours'][0]
    totals = {k: sum(fn.values()) * scale[k] for k, (fn, _, _) in data.items()}
    blocks = {k: b * scale[k] for k, (_, _, b) in data.items()}
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
    # TCG's time goes by blocks as much as by instructions: each block
    # run is a dispatch, and a string instruction is a block per element.
    print(f'{"translation blocks run":<44} {blocks["pristine"]:>10.2f}'
          f' {blocks["ours"]:>10.2f}'
          f' {blocks["ours"] - blocks["pristine"]:>+9.2f}')
    print(f'{"function (largest differences first)":<44} {"pristine":>10}'
          f' {"ours":>10} {"ours-p":>9}')
    for r in rows[:args.top]:
        print(f'{r["function"][:44]:<44} {r["pristine"]:>10.2f}'
              f' {r["ours"]:>10.2f} {r["ours"] - r["pristine"]:>+9.2f}')
    with open(args.json, 'w') as f:
        json.dump({'metric': args.metric, 'pages': args.pages,
                   'windows': {k: w for k, (_, w, _) in data.items()},
                   'total': totals, 'blocks': blocks, 'functions': rows},
                  f, indent=1)


if __name__ == '__main__':
    main()
