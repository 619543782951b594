#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the output of scripts/bench.sh's boots into tables and a JSON.

Each argument is CLOCK:VARIANT:TESTS_LOG:VERDICT_JSON of one boot, CLOCK
being "icount" (QEMU -icount shift=0: every guest ns is one instruction)
or "time".  One table per clock: the instruction counts are the judged
figure, time the second table, for what counts cannot see.  The tests log
holds the TAP of bench/hmm-bench, whose "# HMMB {...}" comment lines carry
the samples of each metric (bench/hmm-drivers prints its rows, with their
-EBUSY and failed validations, in the same format).  For every metric and kernel, all samples of
all boots are pooled and their median reported; the spread column is how
far apart the per-boot medians of one kernel are, the drift that the
alternating boots are there to cancel.  ratio = pristine / ours, so > 1
means ours is faster.
"""

import argparse
import json
import re
import statistics
import sys

HMMB = re.compile(r'^# HMMB (\{.*\})\s*$')

# (metric, label) in table order; sizes come from the data.
ROWS = [
    ('clock', 'clock read, not HMM (ns/call)'),
    ('snap_null', 'uapi snapshot, 0 pages: EINVAL (ns/call)'),
    ('snap_call', 'uapi snapshot, 1 page (ns/call)'),
    ('kwalk_call', 'walker (native API), 1 page (ns/call)'),
    ('kfault_call', 'walker hmm_range_fault(), 1 page (ns/call)'),
    ('snap_4k', 'uapi snapshot, 4K populated'),
    ('snap_thp', 'uapi snapshot, THP populated'),
    ('snap_empty', 'uapi snapshot, empty'),
    ('kwalk_4k', 'walker (native API), 4K populated'),
    ('kwalk_thp', 'walker (native API), THP populated'),
    ('kwalk_empty', 'walker (native API), empty'),
    ('kfault_4k', 'walker hmm_range_fault(), 4K'),
    ('read_pop', 'uapi read-fault, populated'),
    ('read_empty', 'uapi read-fault, empty'),
    ('write_fresh', 'uapi write, never touched'),
    ('write_zero', 'uapi write, zero page'),
    ('write_cow', 'uapi write, COW after fork'),
    ('mig_to_dev', 'migrate to device, 4K'),
    ('mig_to_sys', 'migrate back to system, 4K'),
    ('munmap_plain', 'munmap, not mirrored'),
    ('munmap_mirrored', 'munmap, mirrored (device read it)'),
]
# bench/hmm-drivers: one write request over a whole mapping, the way each
# kind of driver makes it, and validated snapshots beside unrelated munmaps.
DRIVER_ROWS = [
    (f'drv_write_{state}_{mode}', f'write {what}: {how}')
    for state, what in (('fresh', 'never touched'), ('zero', 'zero page'),
                        ('cow', 'COW after fork'))
    for mode, how in (('range', 'hmm_range_fault() 1 call'),
                      ('mirror', 'hmm_vma_fault() loop'),
                      ('lock', 'hmm_vma_fault_lock()'))
] + [('drv_snap_churn', 'snapshot beside munmap elsewhere (ms/call)')]
OURS_ONLY = [
    ('ksparse_thp', 'walker, sparse huge mode, THP'),
    ('inval_n1', 'munmap, 1 mirror, 1ms inval latency'),
    ('inval_n4', 'munmap, 4 mirrors, 1ms inval latency'),
    ('inval0_n1', 'munmap, 1 mirror, no inval latency'),
    ('inval0_n4', 'munmap, 4 mirrors, no inval latency'),
    ('flush_quiet', 'snapshot on dev 1, nothing in flight (ms)'),
    ('flush_beside', 'same, beside dev 0\'s 20 ms flush (ms)'),
]
BREAKDOWN = ['walk', 'begin', 'done', 'clock']
PAGES_PER_MIB = 256     # 4 KiB pages (x86-64 guests)
# Rows that run no HMM code (identical on both kernels): shown, not judged.
NOT_HMM = {'clock', 'snap_null'}


def median(v):
    return statistics.median(v) if v else None


def collect(runs):
    """{variant: {(metric, mib): {'unit', 'boots': [[samples]], 'extra'}}}"""
    data = {'pristine': {}, 'ours': {}}
    boots = []
    for run in runs:
        clock, variant, tests, verdict = run.split(':', 3)
        info = {'clock': clock, 'variant': variant, 'log': tests,
                'metrics': 0}
        try:
            with open(verdict) as f:
                v = json.load(f)
            info['failures'] = v.get('failures', [])
            info['seconds'] = v.get('seconds')
        except (OSError, ValueError):
            info['failures'] = ['no verdict']
        try:
            with open(tests, errors='replace') as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            if line.startswith('# bench: clocksource '):
                info['clocksource'] = line.split()[-1]
            m = HMMB.match(line)
            if not m:
                continue
            try:
                rec = json.loads(m.group(1))
            except ValueError:
                continue
            key = (rec['m'], rec['mib'])
            ent = data[variant].setdefault(
                key, {'unit': rec['unit'], 'boots': [], 'extra': {}})
            ent['boots'].append(rec['v'])
            for k, val in rec.items():
                if k not in ('m', 'mib', 'unit', 'v'):
                    ent['extra'].setdefault(k, []).append(val)
            info['metrics'] += 1
        boots.append(info)
    return data, boots


def summary(ent):
    if not ent:
        return None
    pooled = [x for b in ent['boots'] for x in b]
    bm = [median(b) for b in ent['boots'] if b]
    med = median(pooled)
    spread = (max(bm) - min(bm)) / med * 100 if med and len(bm) > 1 else 0.0
    return {'median': med, 'min': min(pooled) if pooled else None,
            'boot_medians': bm, 'spread_pct': spread,
            'samples': len(pooled), 'unit': ent['unit'],
            'extra': ent['extra']}


def fmt(x, unit):
    if x is None:
        return 'n/a'
    if unit == 'ms':
        return f'{x:.2f} ms'
    return f'{x:.1f}' if x < 1000 else f'{x:.0f}'


NOTES = {
    'icount': ('INSTRUCTION COUNTS (judged): one vCPU under QEMU -icount '
               'shift=0, so every "ns" is one guest instruction (sleeps and '
               'idle waits still count virtual time).  Deterministic: host '
               'load does not move them.  They leave out what time also pays '
               'for: cache and TLB misses, lock contention, a second CPU.'),
    'time': ('TIME under QEMU TCG (second table): noisy and machine '
             'dependent, and TCG charges calls, returns and string '
             'instructions far more than a CPU does; only ratios of this '
             'same run mean anything (boots alternate, same binary).'),
}
JUDGED = 'icount'


def analyse(clock, data):
    """One clock's rows and derived figures."""
    all_sizes = sorted({mib for v in data.values() for (_, mib) in v})
    sizes = [mib for mib in all_sizes if mib]
    rows = []

    def add(metric, mib, label):
        p = summary(data['pristine'].get((metric, mib)))
        o = summary(data['ours'].get((metric, mib)))
        if not p and not o:
            return
        pm = p['median'] if p else None
        om = o['median'] if o else None
        ratio = pm / om if pm and om else None
        best = p['min'] / o['min'] if p and o and p['min'] and o['min'] else None
        spread = max(s['spread_pct'] for s in (p, o) if s)
        unit = (p or o)['unit']
        rows.append({'metric': metric, 'mib': mib, 'label': label,
                     'unit': unit, 'pristine': p, 'ours': o,
                     'ratio': ratio, 'best_ratio': best,
                     'spread_pct': spread})

    for metric, label in ROWS + DRIVER_ROWS + OURS_ONLY:
        for mib in all_sizes:
            add(metric, mib, label)

    def get(variant, metric, mib):
        s = summary(data[variant].get((metric, mib)))
        return s['median'] if s else None

    a = {'clock': clock, 'rows': rows, 'sizes': sizes,
         'all_sizes': all_sizes, 'get': get}
    thp = {}
    for mib in sizes:
        for v in ('pristine', 'ours'):
            s4, st = get(v, 'snap_4k', mib), get(v, 'snap_thp', mib)
            thp[(v, mib)] = s4 / st if s4 and st else None
    a['thp'] = thp
    # What the THP/4K ratio can reach at all: a THP snapshot of N pages is
    # one snapshot call, which costs at least a 1-page call (same system
    # call, locks, validation and copy out), so 4K/THP <= 4K ns/page * N /
    # call.
    ceiling = {}
    call = get('ours', 'snap_call', 0)
    for mib in sizes:
        s4 = get('ours', 'snap_4k', mib)
        if s4 and call:
            ceiling[mib] = s4 * mib * PAGES_PER_MIB / call
    a['ceiling'] = ceiling
    # The same in the walker alone: sparse huge mode against 4K pages.
    kthp = {}
    for mib in sizes:
        k4, ks = get('ours', 'kwalk_4k', mib), get('ours', 'ksparse_thp', mib)
        kthp[mib] = k4 / ks if k4 and ks else None
    a['kthp'] = kthp
    # Per-page cost without the fixed cost of a call: the slope between
    # the two smallest sizes, (T2 * N2 - T1 * N1) / (N2 - N1).
    marginal = {}
    if len(sizes) >= 2:
        m1, m2 = sizes[0], sizes[1]
        slope = {}
        for metric in ('snap_4k', 'snap_thp'):
            t1, t2 = get('ours', metric, m1), get('ours', metric, m2)
            slope[metric] = ((t2 * m2 - t1 * m1) / (m2 - m1)
                             if t1 and t2 else None)
        if slope['snap_4k'] and slope['snap_thp'] and slope['snap_thp'] > 0:
            marginal = {'from_mib': m1, 'to_mib': m2,
                        'snap_4k': slope['snap_4k'],
                        'snap_thp': slope['snap_thp'],
                        'ratio': slope['snap_4k'] / slope['snap_thp']}
    a['marginal'] = marginal
    n1, n4 = get('ours', 'inval_n1', 4), get('ours', 'inval_n4', 4)
    a['inval_ratio'] = n4 / n1 if n1 and n4 else None
    # The part of the munmap spent waiting for the devices, without the
    # CPU work of clearing N device page tables.
    z1, z4 = get('ours', 'inval0_n1', 4), get('ours', 'inval0_n4', 4)
    a['wait_ratio'] = None
    if n1 and n4 and z1 and z4 and n1 > z1:
        a['wait_ratio'] = (n4 - z4) / (n1 - z1)
    # Where the in-kernel walker's time goes (ktime around each step).
    bd = []
    for metric in ('kwalk_call', 'kfault_call', 'kwalk_4k', 'kwalk_thp',
                   'kwalk_empty', 'kfault_4k', 'ksparse_thp'):
        for mib in all_sizes:
            line = {}
            for part in BREAKDOWN:
                for v in ('pristine', 'ours'):
                    line[(part, v)] = get(v, f'{metric}.{part}', mib)
            if any(x is not None for x in line.values()):
                bd.append((metric, mib, line))
    a['breakdown'] = bd
    return a


def retries(s):
    """-EBUSY plus failed validations per request (or per snapshot)."""
    if not s or 'retries' not in s['extra'] or not s['samples']:
        return None
    return sum(s['extra']['retries']) / s['samples']


def judged(r):
    """Rows that run HMM code on both kernels: ratio judged."""
    return (r['ratio'] is not None and r['metric'] not in NOT_HMM and
            r['metric'] not in dict(OURS_ONLY))


def render(a, config):
    """The table of one clock, as lines."""
    out = []
    rows = a['rows']
    w = max(len(label) for _, label in ROWS + DRIVER_ROWS + OURS_ONLY) + 1
    unit = 'instructions' if a['clock'] == 'icount' else 'ns'
    out.append(f"bench [{a['clock']}]: HMM, pristine base vs ours ({config})")
    out.append(f"NOTE: {NOTES[a['clock']]}")
    out.append(f'      {unit} per page unless noted (icount: "ms" is '
               'millions of instructions plus virtual sleeps); median of '
               'all samples of all boots; ratio = pristine/ours (>1: ours '
               'does less); spread = gap between one kernel\'s per-boot '
               'medians; min-ratio = ratio of the smallest samples; '
               'alloc-stalls p/o = direct compaction or reclaim stalls '
               '(/proc/vmstat) during the row, all boots; a snapshot or '
               'walker sample covers at least 64 MiB, small ranges being '
               'walked several times in it; retries p/o = -EBUSY plus '
               'failed validations per request (for the munmap row: per '
               'boot, over all its snapshots).')
    out.append('')
    hdr = (f'{"metric":<{w}} {"MiB":>4} {"pristine":>10} {"ours":>10} '
           f'{"ratio":>7} {"spread":>7} {"min-ratio":>9}')
    out.append(hdr)
    out.append('-' * len(hdr))
    for r in rows:
        p = r['pristine']['median'] if r['pristine'] else None
        o = r['ours']['median'] if r['ours'] else None
        ratio = f"{r['ratio']:.2f}x" if r['ratio'] is not None else 'n/a'
        best = f"{r['best_ratio']:.2f}x" if r['best_ratio'] is not None else 'n/a'
        extra = ''
        for s in (r['pristine'], r['ours']):
            if s and 'huge_pct' in s['extra'] and r['metric'].endswith('thp'):
                extra += f" thp{min(s['extra']['huge_pct']):.0f}%"
        st = [sum(s['extra'].get('stalls', [])) if s else 0
              for s in (r['pristine'], r['ours'])]
        if any(st):
            extra += f" alloc-stalls {st[0]}/{st[1]}"
        rt = [retries(s) for s in (r['pristine'], r['ours'])]
        if any(x is not None for x in rt):
            extra += ' retries p/o ' + '/'.join(
                'n/a' if x is None else f'{x:g}' for x in rt)
        out.append(f"{r['label']:<{w}} {r['mib']:>4} {fmt(p, r['unit']):>10} "
                   f"{fmt(o, r['unit']):>10} {ratio:>7} "
                   f"{r['spread_pct']:>6.0f}% {best:>9}{extra}")
    if not any(r['metric'] in ('inval_n1', 'inval_n4') for r in rows):
        for metric, label in OURS_ONLY:
            out.append(f"{label:<{w}} {4:>4} {'n/a':>10} {'n/a':>10} {'n/a':>7}")
    for label, x in (('munmap ratio 4 mirrors / 1 mirror', a['inval_ratio']),
                     ('  same, latency part only', a['wait_ratio'])):
        out.append(f"{label:<{w}} {4:>4} {'n/a':>10} "
                   f"{(f'{x:.2f}' if x else 'n/a'):>10}")
    for mib in a['sizes']:
        p, o = a['thp'][('pristine', mib)], a['thp'][('ours', mib)]
        if p or o:
            out.append(f"{'snapshot 4K/THP per-page cost':<{w}} {mib:>4} "
                       f"{(f'{p:.1f}x' if p else 'n/a'):>10} "
                       f"{(f'{o:.1f}x' if o else 'n/a'):>10}")
    if a['breakdown']:
        out.append('')
        out.append('in-kernel breakdown (median): walk = the walker call '
                   'repeated as often as the row\'s samples, per page; begin '
                   '= read_begin + mmap_read_lock, done = unlock + validation '
                   'under the driver lock, per call, each including one '
                   'clock read; clock = one ktime_get_ns()')
        out.append(f'{"":<12} {"MiB":>4} ' + ' '.join(
            f'{f"{part} {v[0]}":>9}' for part in BREAKDOWN
            for v in ('pristine', 'ours')))
        for metric, mib, line in a['breakdown']:
            cells = ' '.join(f'{fmt(line[(part, v)], ""):>9}'
                             for part in BREAKDOWN for v in ('pristine', 'ours'))
            out.append(f'{metric:<12} {mib:>4} {cells}')
    return out


def targets_of(an, seconds):
    """The targets of issue 20, each on the clock it is judged by."""
    targets = []

    def target(name, value, goal, ok):
        targets.append({'name': name, 'value': value, 'goal': goal,
                        'met': None if value is None else ok(value)})

    ic, tm = an.get('icount'), an.get('time')
    if ic:
        for r in ic['rows']:
            if r['metric'] in ('snap_4k', 'kwalk_4k'):
                target(f"[icount] {r['label']} {r['mib']} MiB: lead over "
                       'pristine', r['ratio'], '>= 1.5x', lambda x: x >= 1.5)
        rows = [r for r in ic['rows'] if judged(r)]
        below = [r for r in rows if r['ratio'] < 1.0]
        if rows:
            w = min(rows, key=lambda r: r['ratio'])
            name = (f"[icount] every judged row at least pristine (worst: "
                    f"{w['metric']} {w['mib']} MiB")
            if below:
                name += '; below 1.0x: ' + ', '.join(
                    f"{r['metric']} {r['mib']} MiB {r['ratio']:.3f}x"
                    for r in below)
            target(name + ')', w['ratio'], '>= 1.0x', lambda x: x >= 1.0)
        for r in ic['rows']:
            if not r['metric'].startswith('drv_'):
                continue
            po = [retries(r['pristine']), retries(r['ours'])]
            if r['metric'] == 'drv_snap_churn':
                target('[icount] ours: failed snapshots beside unrelated '
                       'munmap', po[1], '== 0', lambda x: x == 0)
            elif po[0] is not None and po[1] is not None:
                target(f"[icount] ours: retries of {r['metric']} "
                       f"{r['mib']} MiB, no more than pristine's "
                       f"{po[0]:.1f}", po[1], f'<= {po[0]:.1f}',
                       lambda x, lim=po[0]: x <= lim)
        for mib in ic['sizes']:
            target(f'[icount] ours: THP snapshot per page cheaper than 4K, '
                   f'{mib} MiB (info)', ic['thp'][('ours', mib)], '>= 20x',
                   lambda x: x >= 20)
        target('[icount] ours: munmap with 4 mirrors / 1 mirror (1 ms '
               'latency)', ic['inval_ratio'], '<= 1.5', lambda x: x <= 1.5)
    if tm:
        for r in tm['rows']:
            if r['metric'] in ('drv_write_zero_range', 'drv_write_cow_range',
                               'write_zero', 'write_cow'):
                target(f"[time] {r['label']} {r['mib']} MiB", r['ratio'],
                       '>= 1.0x', lambda x: x >= 1.0)
        get = tm['get']
        fq, fb = get('ours', 'flush_quiet', 4), get('ours', 'flush_beside', 4)
        target('[time] ours: snapshot beside another device\'s 20 ms flush '
               'elsewhere, ms more than with nothing in flight',
               fb - fq if fq is not None and fb is not None else None, '< 1',
               lambda x: x < 1)
        rows = [r for r in tm['rows'] if judged(r)]
        if rows:
            w = min(rows, key=lambda r: r['ratio'])
            target(f"[time] no judged row below 0.95x (info; worst: "
                   f"{w['metric']} {w['mib']} MiB)", w['ratio'], '>= 0.95x',
                   lambda x: x >= 0.95)
    target('make bench, minutes', seconds / 60 if seconds else None, '< 25',
           lambda x: x < 25)
    return targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json', required=True)
    ap.add_argument('--seconds', type=int, default=0)
    ap.add_argument('--config', default='')
    ap.add_argument('runs', nargs='+')
    a = ap.parse_args()

    an, boots = {}, []
    for clock in ('icount', 'time'):
        runs = [r for r in a.runs if r.split(':', 1)[0] == clock]
        if not runs:
            continue
        data, b = collect(runs)
        boots += b
        an[clock] = analyse(clock, data)
    if not an:
        print('bench: no boots', file=sys.stderr)
        return 1
    targets = targets_of(an, a.seconds)

    out = []
    for clock in an:
        out += render(an[clock], a.config)
        out.append('')
    out.append('targets (reported, not enforced; [icount] rows are judged '
               'by instruction counts, [time] rows by time):')
    for t in targets:
        val = 'n/a' if t['value'] is None else f"{t['value']:.2f}"
        met = {None: 'n/a', True: 'met', False: 'NOT MET'}[t['met']]
        out.append(f"  {t['name']}: {val} (goal {t['goal']}): {met}")
    bad = [b for b in boots if b['failures'] or not b['metrics']]
    out.append('')
    out.append(f"boots: {' '.join(b['clock'] + '/' + b['variant'] for b in boots)} "
               f"({len(boots) - len(bad)} of {len(boots)} clean); "
               f"total {a.seconds}s")
    for b in bad:
        out.append(f"  boot {b['log']}: {b['metrics']} metrics, "
                   f"failures: {b['failures'][:3]}")
    clocks = {b.get('clocksource') for b in boots}
    if len(clocks) > 1:
        out.append(f'WARNING: the boots used different clocksources: {sorted(map(str, clocks))}')
    elif clocks and clocks != {'hpet'}:
        # bench.sh asks for clocksource=hpet; x86 finds the HPET through
        # ACPI, which only the o2 flavour's kernels have.
        out.append(f'WARNING: the boots did not use the HPET but {sorted(map(str, clocks))}')
    print('\n'.join(out))

    def dump(x):
        return {'note': NOTES[x['clock']],
                'unit': 'instructions' if x['clock'] == 'icount' else 'ns',
                'rows': [{k: r[k] for k in ('metric', 'mib', 'label', 'unit',
                                            'pristine', 'ours', 'ratio',
                                            'best_ratio', 'spread_pct')}
                         for r in x['rows']],
                'thp_vs_4k': {f'{v}-{mib}': t for (v, mib), t in x['thp'].items()},
                'snap_thp_vs_4k_ceiling': x['ceiling'],
                'walker_sparse_thp_vs_4k': x['kthp'],
                'snap_marginal_thp_vs_4k': x['marginal'],
                'inval_n4_over_n1': x['inval_ratio'],
                'inval_wait_n4_over_n1': x['wait_ratio'],
                'breakdown': [{'metric': m, 'mib': mib,
                               **{f'{p}_{v}': y for (p, v), y in l.items()}}
                              for m, mib, l in x['breakdown']]}

    with open(a.json, 'w') as f:
        json.dump({'config': a.config, 'seconds': a.seconds,
                   'judged': JUDGED if JUDGED in an else next(iter(an)),
                   'ratio': 'pristine/ours, > 1 means ours does less',
                   **{clock: dump(x) for clock, x in an.items()},
                   'targets': targets, 'boots': boots}, f, indent=1)
    return 0 if not bad else 1


if __name__ == '__main__':
    sys.exit(main())
