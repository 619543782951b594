#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make-series.py: write the git format-patch series to build/series/.

The series is defined by patches/series.d/plan (see the comment at its
top) and built only from linux/ and patches/, so it cannot drift from what
the harness builds:

  1. build/src-ours is laid out afresh (prepare-tree.sh ours);
  2. build/series-git holds the base as one commit (branch "base"), made
     once per base tarball exactly as a user would: extract, git init,
     git add -A -f (Debian's .gitignore ignores every top-level entry),
     git commit;
  3. every stanza of the plan becomes one commit on branch "series": its
     linux/ files copied over the tree, its diffs applied with patch -p1
     (as prepare-tree.sh does), its version notes attached as git notes;
  4. checks: every file under linux/ and every entry of patches/series is
     taken by exactly one patch, and the tree after the last patch is
     byte-identical to build/src-ours;
  5. git format-patch --cover-letter --base writes build/series/, and the
     cover letter is filled from series.d/cover.txt plus the test results
     found in build/logs/*.json.

Commits get fixed identities and dates so that the same inputs give the
same series.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get('BUILD', os.path.join(ROOT, 'build'))
SERIES_D = os.path.join(ROOT, 'patches', 'series.d')
GITDIR = os.path.join(BUILD, 'series-git')
OUT = os.path.join(BUILD, 'series')
SRC_OURS = os.path.join(BUILD, 'src-ours')
BASE_DIR = os.path.join(BUILD, 'base')
IDENT = ('HMM series', 'hmm@example.invalid')
SIGNOFF = 'Signed-off-by: %s <%s>' % IDENT
DATE0 = 1795000000		# fixed commit dates: reproducible hashes


def log(msg):
    print('[%s] series: %s' % (time.strftime('%H:%M:%S'), msg),
          file=sys.stderr, flush=True)


def die(msg):
    print('ERROR: series: %s' % msg, file=sys.stderr)
    sys.exit(1)


def git(*args, env=None, **kw):
    e = dict(os.environ)
    e.update({'GIT_AUTHOR_NAME': IDENT[0], 'GIT_AUTHOR_EMAIL': IDENT[1],
              'GIT_COMMITTER_NAME': IDENT[0], 'GIT_COMMITTER_EMAIL': IDENT[1],
              'GIT_CONFIG_NOSYSTEM': '1', 'HOME': BUILD})
    e.update(env or {})
    return subprocess.run(['git', '-C', GITDIR] + list(args), env=e,
                          check=True, text=True, **kw)


def git_out(*args):
    return git(*args, stdout=subprocess.PIPE).stdout


def dated(n):
    d = '@%d +0000' % (DATE0 + 60 * n)
    return {'GIT_AUTHOR_DATE': d, 'GIT_COMMITTER_DATE': d}


def base_version():
    mk = open(os.path.join(BASE_DIR, 'Makefile')).read()
    v = [re.search(r'^%s = (\S+)' % k, mk, re.M).group(1)
         for k in ('VERSION', 'PATCHLEVEL', 'SUBLEVEL')]
    return '.'.join(v)


def ensure_base_repo():
    """build/series-git: the base as one commit, made once per base."""
    stamp_src = os.path.join(BUILD, 'base.stamp')
    stamp = os.path.join(BUILD, 'series-git.stamp')
    want = open(stamp_src).read()
    if os.path.exists(stamp) and open(stamp).read() == want and \
       os.path.isdir(os.path.join(GITDIR, '.git')):
        return
    log('creating the base repository %s (once per base)' % GITDIR)
    shutil.rmtree(GITDIR, ignore_errors=True)
    subprocess.run(['cp', '-a', BASE_DIR, GITDIR], check=True)
    subprocess.run(['chmod', '-R', 'u+w', GITDIR], check=True)
    git('init', '-q', '-b', 'master')
    for k, v in (('core.autocrlf', 'false'), ('gc.auto', '0'),
                 ('core.fileMode', 'true'), ('am.threeWay', 'false')):
        git('config', k, v)
    # Debian's top-level .gitignore ignores everything ("/*"): force.
    git('add', '-A', '-f')
    git('commit', '-q', '-m', 'Linux %s (Debian linux-source-6.1)' %
        base_version(), env=dated(0))
    git('tag', '-f', 'base')
    with open(stamp, 'w') as f:
        f.write(want)


def reset_to_base(branch):
    """A fresh base in the work tree; only files that differ are rewritten."""
    git('checkout', '-q', '-f', '-B', branch, 'base')
    git('clean', '-q', '-fdx')


def parse_plan():
    plan, cur = [], None
    for n, line in enumerate(open(os.path.join(SERIES_D, 'plan')), 1):
        line = line.rstrip('\n')
        if line.startswith('#'):
            continue
        if not line.strip():
            cur = None
            continue
        key, _, val = line.partition(' ')
        val = val.strip()
        if cur is None:
            cur = {'subject': None, 'body': None, 'copy': [], 'apply': []}
            plan.append(cur)
        if key in ('subject', 'body'):
            cur[key] = val
        elif key in ('copy', 'apply'):
            cur[key] += val.split()
        else:
            die('plan:%d: unknown key %s' % (n, key))
    for i, p in enumerate(plan, 1):
        if not p['subject'] or not p['body']:
            die('plan: patch %d lacks a subject or body' % i)
        if len(p['subject']) > 75:
            die('plan: subject too long: %s' % p['subject'])
    return plan


def read_body(name):
    """Body and notes of a patch.  A line '?PATH: text' is kept, as
    'text', only if linux/PATH exists (files that may not exist yet)."""
    lines = []
    for line in open(os.path.join(SERIES_D, name)):
        m = re.match(r'\?(\S+): ?(.*\n?)$', line)
        if m:
            if not os.path.exists(os.path.join(ROOT, 'linux', m.group(1))):
                continue
            line = m.group(2)
        lines.append(line)
    text = ''.join(lines)
    body, sep, notes = text.partition('\n---\n')
    if not sep and text.startswith('---\n'):
        body, notes = '', text[4:]
    return body.strip(), notes.strip()


def series_entries():
    path = os.path.join(ROOT, 'patches', 'series')
    out = []
    for line in open(path):
        w = line.split()
        if w and not w[0].startswith('#'):
            out.append(w[0])
    return out


def linux_files():
    base = os.path.join(ROOT, 'linux')
    out = set()
    for d, _, files in os.walk(base):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), base))
    return out


def build_commits(plan):
    taken = {}
    applied = {}
    all_linux = linux_files()
    reset_to_base('series')
    subprocess.run(['git', '-C', GITDIR, 'update-ref', '-d', 'refs/notes/series'],
                   stderr=subprocess.DEVNULL)
    for n, p in enumerate(plan, 1):
        for pat in p['copy']:
            for f in sorted(glob.glob(os.path.join(ROOT, 'linux', pat))):
                if os.path.isdir(f):
                    continue
                rel = os.path.relpath(f, os.path.join(ROOT, 'linux'))
                if rel in taken:
                    die('%s taken by patches %d and %d' % (rel, taken[rel], n))
                taken[rel] = n
                dst = os.path.join(GITDIR, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(f, dst)
        for d in p['apply']:
            if d in applied:
                die('%s applied by patches %d and %d' % (d, applied[d], n))
            applied[d] = n
            pf = os.path.join(ROOT, 'patches', d)
            r = subprocess.run(['patch', '-d', GITDIR, '-p1', '-N', '-s',
                                '--no-backup-if-mismatch', '-r', '-',
                                '-i', pf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode:
                die('patch %d (%s): %s does not apply:\n%s' %
                    (n, p['subject'], d, r.stdout))
        body, notes = read_body(p['body'])
        # A body that ends in trailers (Fixes:) gets the sign-off below
        # them, in the same block.
        trailers = body and re.match(r'^[A-Z][A-Za-z-]+: ',
                                     body.splitlines()[-1])
        msg = p['subject'] + '\n\n' + \
            (body + ('\n' if trailers else '\n\n') if body else '') + \
            SIGNOFF + '\n'
        git('add', '-A', '-f')
        if not git_out('diff', '--cached', '--name-only').strip():
            die('patch %d (%s) is empty' % (n, p['subject']))
        git('commit', '-q', '-F', '-', input=msg, env=dated(n))
        if notes:
            git('notes', '--ref=series', 'add', '-f', '-F', '-', 'HEAD',
                input=notes + '\n', env=dated(n))
    missing = sorted(all_linux - set(taken))
    if missing:
        die('files under linux/ taken by no patch of the plan: %s' %
            ' '.join(missing))
    unused = [e for e in series_entries() if e not in applied]
    if unused:
        die('patches/series entries used by no patch of the plan: %s' %
            ' '.join(unused))
    return len(plan)


def compare_with_ours():
    """The final tree must be byte-identical to build/src-ours.

    prepare-tree.sh records every file it replaced or patched in
    build/ours.changed; every other file of src-ours is the base's.  The
    series changes git diff --name-only base..series.  Outside the union
    of both lists, both trees are the base, so comparing the union is a
    comparison of the whole tree.
    """
    changed = set(l.strip() for l in open(os.path.join(BUILD, 'ours.changed'))
                  if l.strip())
    changed |= set(git_out('diff', '--name-only', 'base', 'series').split())
    bad = []
    for rel in sorted(changed):
        a = os.path.join(GITDIR, rel)
        b = os.path.join(SRC_OURS, rel)
        if os.path.isfile(a) != os.path.isfile(b):
            bad.append(rel + (' (only in the series)' if os.path.isfile(a)
                              else ' (only in build/src-ours)'))
        elif os.path.isfile(a) and open(a, 'rb').read() != open(b, 'rb').read():
            bad.append(rel)
    if bad:
        die('the series tree differs from build/src-ours: %s' % ', '.join(bad))
    return len(changed)


def testing_summary():
    logs = sorted(glob.glob(os.path.join(BUILD, 'logs', '*.json')))
    if not logs:
        return ('No results in build/logs/ when this series was generated:\n'
                'run "make check" and then "make series" again.')
    check_steps = re.compile(r'^(harness-(fail|panic|hang)|pristine-conformance'
                             r'|ours|ours-debug|lint|docs)$')
    rows, in_check = [], []
    for path in logs:
        try:
            d = json.load(open(path))
        except (OSError, ValueError):
            continue
        name = d.get('name', os.path.basename(path)[:-5])
        when = time.strftime('%Y-%m-%d %H:%M',
                             time.gmtime(os.path.getmtime(path)))
        rows.append((when, name, d.get('passed', 0), d.get('failed', 0),
                     d.get('skipped', 0), d.get('failures', [])))
        if check_steps.match(name):
            in_check.append(name)
    rows.sort()
    out = ['Results read from build/logs/*.json when the series was generated',
           '(UTC time of each result file; "make check" writes the results of',
           'its steps harness-*, pristine-conformance, ours and lint; the others',
           'come from single "make kunit/selftests/conformance" runs):', '']
    out.append('  %-16s  %-32s %6s %6s %7s' % ('when', 'run', 'passed', 'failed',
                                             'skipped'))
    for when, name, p, f, s, _ in rows:
        out.append('  %-16s  %-32s %6d %6d %7d' % (when, name, p, f, s))
    if 'ours' not in in_check:
        out += ['', 'No "ours" result of a complete "make check" was present;'
                ' the ours', 'kernel rows above come from the single runs.']
    fails = [(n, x) for _, n, _, f, _, xs in rows for x in xs if f]
    if fails:
        out += ['', 'Failures reported in those runs:']
        for n, x in fails[:12]:
            out.append('  %s: %s' % (n, x))
        if len(fails) > 12:
            out.append('  ... and %d more' % (len(fails) - 12))
    out += ['', '"make series-check" applies this series with git am to a fresh',
            'base and, after every patch, builds a bzImage of tinyconfig +',
            'configs/{base,hmm,callers,ours}.config plus the objects of every',
            'in-tree HMM caller, lib/test_hmm.o, mm/hmm*.o and the sample, runs',
            'checkpatch --strict on the patch and kernel-doc -none on every C',
            'file and header it touches; then W=1 C=1 and an LLVM=1 (clang 14)',
            'build of our objects and the callers.']
    sc = os.path.join(BUILD, 'logs', 'series-check.json')
    if os.path.exists(sc):
        d = json.load(open(sc))
        when = time.strftime('%Y-%m-%d %H:%M', time.gmtime(os.path.getmtime(sc)))
        out += ['Its last run (%s UTC, %ss, on the series as generated then):'
                % (when, d.get('seconds', '?')),
                '  series-check: %d passed, %d failed' % (d['passed'], d['failed'])]
        for x in d.get('failures', [])[:8]:
            out.append('  failed: ' + x)
    else:
        out.append('It had not been run when this cover letter was written.')
    return '\n'.join(out)


def write_cover(npatches):
    cover = os.path.join(OUT, '0000-cover-letter.patch')
    text = open(cover).read()
    tmpl = open(os.path.join(SERIES_D, 'cover.txt')).read().strip()
    title, _, blurb = tmpl.partition('\n\n')
    note = os.path.join(SERIES_D, 'checkpatch-notes.txt')
    blurb = blurb.replace('@CHECKPATCH@',
                          open(note).read().strip() if os.path.exists(note)
                          else 'checkpatch --strict reports 0 errors, 0 warnings '
                          'and 0 checks on every\npatch.')
    blurb = blurb.replace('@TESTING@', testing_summary())
    blurb = blurb.replace('@BASEVERSION@', 'Linux ' + base_version())
    if '*** SUBJECT HERE ***' not in text or '*** BLURB HERE ***' not in text:
        die('unexpected cover letter template from git format-patch')
    text = text.replace('*** SUBJECT HERE ***', title)
    text = text.replace('*** BLURB HERE ***', blurb)
    open(cover, 'w').write(text)


def main():
    r = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'prepare-tree.sh'),
                        'ours'], stdout=subprocess.PIPE, text=True)
    if r.returncode:
        die('prepare-tree.sh ours failed')
    ensure_base_repo()
    plan = parse_plan()
    log('%d patches in patches/series.d/plan' % len(plan))
    n = build_commits(plan)
    nfiles = compare_with_ours()
    log('final tree matches build/src-ours (%d changed files compared)' % nfiles)
    shutil.rmtree(OUT, ignore_errors=True)
    git('format-patch', '-q', '-o', OUT, '--cover-letter', '--base=base',
        '--notes=series', '--subject-prefix=PATCH v2', '--no-signature',
        'base..series', env=dated(n + 1))
    write_cover(n)
    files = sorted(os.listdir(OUT))
    print('series: %d patches and a cover letter in %s' % (n, OUT))
    for f in files:
        print('  ' + f)


if __name__ == '__main__':
    main()
