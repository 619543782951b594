#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge one guest run from its logs.

The test stream (ttyS1) holds each stage's output between
"HMMH-BEGIN <stage>" and "HMMH-END <stage> rc=<n>".  kselftest stages are
TAP; the kunit stage is KTAP printed by the kernel on the console (ttyS0).
Anything that looks like a kernel report on the console (BUG, Oops, WARNING,
lockdep, KASAN, kmemleak, hung task, panic) is a failure of its own, and so
is a stage that never started or never finished, a stage whose exit status
disagrees with its results, a guest that timed out, and a TAP plan that was
not met.

kselftest quirk: 6.1's harness reports SKIP(exit(0), ...) in a fixture
setup as "ok".  A test whose own output says SKIP is counted as a skip,
never as a pass.  With --require-coherent (every guest has device coherent
memory) a skipped device coherent variant is a failure.  --xfail names
tests that must fail (a documented baseline): they count neither way, and
one that passes or does not run is a failure.
"""

import argparse
import json
import re
import sys

TIMESTAMP = re.compile(r'^\[\s*\d+\.\d+\]\s?')
RESULT = re.compile(r'^(\s*)(not )?ok (\d+)(?: -)? ?(.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$')
PLAN = re.compile(r'^\s*1\.\.(\d+)\s*$')
SUBTEST = re.compile(r'^(\s*)# Subtest: (\S+)')
RUN_LINE = re.compile(r'^#\s+RUN\s+(\S+)')
SKIP_MSG = re.compile(r'^#\s+SKIP\s')

# Kernel reports: each matching console line is one failure.
REPORTS = [
    re.compile(p) for p in (
        r'\bBUG: ',
        r'\bOops\b',
        r'\bWARNING: ',
        r'Kernel panic',
        r'general protection fault',
        r'INFO: task \S+ blocked for more than',
        r'rcu: INFO: .*stall',
        r'\bKASAN: ',
        r'\bUBSAN: ',
        r'DEBUG_LOCKS_WARN_ON',
        r'unreferenced object 0x',
        r'kmemleak: \d+ new suspected memory leaks',
        r'Unable to handle kernel',
        r'HMMH-ERROR',
    )
]

# Diagnostic lines shown under a failed test, the last ones it printed.
DIAG_LINES = 8

KMEMLEAK = re.compile(r'kmemleak: \d+ new suspected memory leaks')

EXPECT = {
    'fail': re.compile(r'^inject: harness\.injected_failure'),
    'panic': re.compile(r'^kernel report: .*Kernel panic'),
    'hang': re.compile(r'^guest timed out'),
}


def read_lines(path):
    try:
        with open(path, 'rb') as f:
            data = f.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return []
    return [TIMESTAMP.sub('', line.rstrip('\r')) for line in data.split('\n')]


class Verdict:
    def __init__(self, require_coherent=False, xfail=()):
        self.cases = []        # (stage, name, 'pass' | 'fail' | 'skip' | 'xfail')
        self.failures = []     # human-readable reasons
        self.details = {}      # index in failures -> the test's last diagnostics
        self.require_coherent = require_coherent
        self.xfail = set(xfail)

    def case(self, stage, name, result, diag=()):
        if name in self.xfail:
            if result == 'fail':
                result = 'xfail'
            elif result == 'pass':
                self.failures.append(f'{stage}: {name}: expected to fail, passed')
        if result == 'skip' and self.require_coherent and \
                'device_coherent' in name:
            result = 'fail'
            self.failures.append(f'{stage}: {name}: skipped, but the guest '
                                 'has device coherent memory')
            self.cases.append((stage, name, result))
            return
        self.cases.append((stage, name, result))
        if result == 'fail':
            self.failures.append(f'{stage}: {name}')
            if diag:
                self.details[len(self.failures) - 1] = list(diag)

    def fail(self, why):
        self.failures.append(why)

    def count(self, what, stage=None):
        return sum(1 for s, _, r in self.cases
                   if r == what and (stage is None or s == stage))


def parse_tap(stage, lines, v):
    """Top-level TAP results of one kselftest stage; returns (results, plan)."""
    seen = 0
    plan = None
    block_skip = False
    run_name = None
    diag = []
    for line in lines:
        m = RUN_LINE.match(line)
        if m:
            block_skip = False
            run_name = m.group(1)
            diag = []
            continue
        if line.startswith('#'):
            # What a failure printed before its result line: the CI
            # output then says why, not only what, failed.
            diag = (diag + [line])[-DIAG_LINES:]
        if SKIP_MSG.match(line):
            block_skip = True
            continue
        m = PLAN.match(line)
        if m and plan is None and not line.startswith(' '):
            plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m or m.group(1):
            continue
        seen += 1
        # A skipped kselftest prints no name on its result line.
        name = m.group(4).strip() or run_name or f'test {m.group(3)}'
        if m.group(2):
            result = 'fail'
        elif m.group(5) == 'SKIP' or block_skip:
            result = 'skip'
        else:
            result = 'pass'
        v.case(stage, name, result, diag)
        block_skip = False
        run_name = None
        diag = []
    return seen, plan


def parse_ktap(lines, v):
    """Leaf results of the KUnit KTAP on the console; returns their number."""
    started = False
    prev_indent = None
    names = {}
    leaves = 0
    for line in lines:
        if not started:
            started = line.strip().startswith(('KTAP version', 'TAP version'))
            continue
        m = SUBTEST.match(line)
        if m:
            names[len(m.group(1))] = m.group(2)
            continue
        m = RESULT.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        leaf = prev_indent is None or prev_indent <= indent
        prev_indent = indent
        if not leaf:
            if m.group(2):
                # a suite or parameterised case that failed as a whole
                # (e.g. its init failed) without a failing leaf
                name = m.group(4).strip()
                if not any(r == 'fail' and n.startswith(name + '.')
                           for _, n, r in v.cases):
                    v.case('kunit', name, 'fail')
            continue
        # KTAP prints "# Subtest: NAME" at the indent of NAME's results.
        parent = names.get(indent)
        name = m.group(4).strip()
        if parent:
            name = f'{parent}.{name}'
        leaves += 1
        if m.group(2):
            v.case('kunit', name, 'fail')
        elif m.group(5) == 'SKIP':
            v.case('kunit', name, 'skip')
        else:
            v.case('kunit', name, 'pass')
    return leaves


def split_stages(lines):
    """Map stage -> (output lines, rc or None if it never ended)."""
    out = {}
    cur = None
    for line in lines:
        if line.startswith('HMMH-BEGIN '):
            cur = line.split()[1]
            out[cur] = ([], None)
            continue
        m = re.match(r'^HMMH-END (\S+) rc=(-?\d+)', line)
        if m and m.group(1) in out:
            out[m.group(1)] = (out[m.group(1)][0], int(m.group(2)))
            cur = None
            continue
        if cur is not None:
            out[cur][0].append(line)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--name', required=True)
    ap.add_argument('--stages', required=True)
    ap.add_argument('--console', required=True)
    ap.add_argument('--tests', required=True)
    ap.add_argument('--qemu-rc', type=int, required=True)
    ap.add_argument('--seconds', type=int, default=0)
    ap.add_argument('--timeout', type=int, default=0)
    ap.add_argument('--expect', choices=sorted(EXPECT))
    ap.add_argument('--xfail', default='',
                    help='comma separated tests that must fail')
    ap.add_argument('--require-coherent', action='store_true',
                    help='a skipped device coherent test is a failure')
    ap.add_argument('--json')
    a = ap.parse_args()

    console = read_lines(a.console)
    tests = read_lines(a.tests)
    xfail = [t for t in a.xfail.split(',') if t]
    v = Verdict(a.require_coherent, xfail)

    if a.qemu_rc in (124, 137):
        v.fail(f'guest timed out after {a.timeout}s (hung?)')
    elif a.qemu_rc != 0:
        v.fail(f'qemu exited with status {a.qemu_rc}')

    # The guest greys boot-time kmemleak suspects (not ours to judge) and
    # then prints a baseline line; kmemleak lines before it do not count.
    baseline = any(line.startswith('HMMH-INFO kmemleak baseline') for line in console)
    for line in console:
        if line.startswith('HMMH-INFO kmemleak baseline'):
            baseline = False
        if baseline and KMEMLEAK.search(line):
            continue
        if any(p.search(line) for p in REPORTS):
            v.fail(f'kernel report: {line.strip()}')

    stages = split_stages(tests)
    summary = []
    for stage in [s for s in a.stages.split(',') if s]:
        if stage not in stages:
            v.fail(f'stage {stage} never started')
            continue
        body, rc = stages[stage]
        if stage == 'kunit':
            n = parse_ktap(console, v)
            if n == 0:
                v.fail('kunit: no KUnit results on the console')
        else:
            n, plan = parse_tap(stage, body, v)
            if plan is not None and n != plan:
                v.fail(f'{stage}: planned {plan} tests, saw {n} results')
            if n == 0 and stage != 'inject':
                v.fail(f'{stage}: no test results')
        if rc is None:
            v.fail(f'stage {stage} did not finish')
        elif rc != 0 and v.count('fail', stage) + v.count('xfail', stage) == 0:
            v.fail(f'{stage}: exited with status {rc} but no test failed')
        xf = v.count('xfail', stage)
        summary.append(f'  {stage}: {v.count("pass", stage)} passed, '
                       f'{v.count("fail", stage)} failed, '
                       f'{v.count("skip", stage)} skipped'
                       f'{f", {xf} failed as expected" if xf else ""}'
                       f'{"" if rc is None else f" (rc={rc})"}')

    ran = {n for _, n, _ in v.cases}
    for t in xfail:
        if t not in ran:
            v.fail(f'expected failure {t} did not run')

    if not any(line.startswith('HMMH-DONE') for line in tests) and \
            not any('timed out' in f for f in v.failures):
        v.fail('guest did not reach the end of its init (crashed or panicked?)')

    passed, failed, skipped = v.count('pass'), len(v.failures), v.count('skip')
    print(f'== {a.name}: stages {a.stages}, {a.seconds}s, logs build/logs/{a.name}.*')
    for s in summary:
        print(s)
    if a.expect:
        hits = [f for f in v.failures if EXPECT[a.expect].search(f)]
        if hits:
            print(f'  injected {a.expect} detected as: {hits[0]}')
            passed, failed, skipped = 1, 0, 0
        else:
            print(f'  injected {a.expect} NOT detected; failures were: {v.failures}')
            passed, failed, skipped = 0, 1, 0
        v.failures = [] if hits else [f'harness missed an injected {a.expect}']
    else:
        for i, f in enumerate(v.failures[:40]):
            print(f'  FAIL {f}')
            for d in v.details.get(i, []):
                print(f'    | {d}')
        if len(v.failures) > 40:
            print(f'  ... and {len(v.failures) - 40} more failures')
    print(f'{a.name}: {passed} passed, {failed} failed, {skipped} skipped')

    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'name': a.name, 'passed': passed, 'failed': failed,
                       'skipped': skipped, 'failures': v.failures,
                       'seconds': a.seconds,
                       'cases': [{'stage': s, 'name': n, 'result': r}
                                 for s, n, r in v.cases]}, f, indent=1)
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
