#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# series-check.sh
#
# Verifies the series written by make-series.py (build/series/) the way a
# maintainer would receive it:
#   - git am of every patch, one at a time, on a fresh base commit
#     (build/series-git, branch "am");
#   - after EVERY patch: checkpatch --strict on the patch (0 errors,
#     0 warnings, 0 checks), kernel-doc -none on every C file and header it
#     touches (no new warnings), and a build: bzImage of tinyconfig +
#     configs/{base,x86_64,hmm,callers,ours}.config plus the objects of every
#     in-tree HMM caller, lib/test_hmm.o, mm/hmm*.o and the sample, with no
#     compiler warning in a file the series touches (bisectability);
#   - at the end: the tree git am produced is the tree make-series.py
#     generated, which it checked to be byte-identical to build/src-ours;
#     W=1 C=1 on our objects and an LLVM=1 (clang) build of our objects and
#     the callers, zero warnings.
# Ends with "series-check: N passed, M failed", non-zero exit on failure,
# and writes build/logs/series-check.json.
#
# Builds are out of tree (build/obj-series, build/obj-series-clang), use
# ccache, and take the kernel build lock one make at a time.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

series=$BUILD/series
tree=$BUILD/series-git
obj=$BUILD/obj-series
objc=$BUILD/obj-series-clang
lock=${HMMH_BUILD_LOCK:-/tmp/hmm-series-kbuild.lock}
out=$LOGS/series-check
start=$(date +%s)
export CCACHE_BASEDIR=$BUILD
# checkpatch runs scripts/spdxcheck.py, which needs Debian's python3-ply
# and python3-git: prefer the system python over any other on PATH.
export PATH=/usr/bin:$PATH

pass=0
fail=0
cases=()
mkdir -p "$out"

record()	# NAME STATUS(0 = pass) [DETAILS FILE]
{
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		cases+=("pass $1")
		echo "  ok    $1"
	else
		fail=$((fail + 1))
		cases+=("fail $1")
		echo "  FAIL  $1"
		[ -n "${3:-}" ] && [ -s "$3" ] && sed 's/^/        /' "$3" | head -25
	fi
}

finish()
{
	local elapsed=$(( $(date +%s) - start ))

	python3 - "$LOGS/series-check.json" "$pass" "$fail" "$elapsed" "${cases[@]}" <<'PY'
import json, sys
path, p, f, secs, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
json.dump({'name': 'series-check', 'passed': p, 'failed': f, 'skipped': 0,
           'seconds': secs,
           'failures': [c[5:] for c in cases if c.startswith('fail ')],
           'cases': [{'stage': 'series-check', 'name': c[5:], 'result': c[:4]}
                     for c in cases]},
          open(path, 'w'), indent=1)
PY
	echo "series-check: ${elapsed}s, logs in $out/"
	echo "series-check: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

g() { git -C "$tree" "$@"; }

# kmake OBJDIR [make args...]: one make of the am tree, under the lock.
kmake()
{
	local o=$1

	shift
	flock "$lock" make -s -C "$tree" O="$o" ARCH=x86_64 -j"$JOBS" "$@"
}

# configure OBJDIR [make args...]: tinyconfig + our fragments, like
# build-kernel.sh.  Options that do not exist yet at this point of the
# series are dropped by olddefconfig; every option of base, hmm and
# callers (all in the base) must survive.
configure()
{
	local o=$1 lost

	shift
	mkdir -p "$o"
	kmake "$o" "$@" tinyconfig >/dev/null || return 1
	(cd "$o" && "$tree/scripts/kconfig/merge_config.sh" -m -O "$o" "$o/.config" \
		"$ROOT"/configs/{base,x86_64,hmm,callers,ours}.config >"$o/merge.log" 2>&1) || return 1
	kmake "$o" "$@" olddefconfig >/dev/null || return 1
	lost=$(config_lost "$o/.config" "$ROOT"/configs/{base,x86_64,hmm,callers}.config)
	[ -z "$lost" ] || { sed 's/^/config: did not survive: /' <<<"$lost"; return 1; }
}

# The objects every step compiles on top of bzImage.
objects()
{
	local list

	list=$(cd "$tree" && grep -rlE 'linux/hmm\.h|hmm_range|HMM_PFN_|hmm_(fixed_)?pfn_' \
		drivers --include='*.c' | sed -e 's#^drivers/gpu/drm/amd/amdkfd/#drivers/gpu/drm/amd/amdgpu/../amdkfd/#' \
		-e 's#\.c$#.o#' | sort)
	echo "$list"
	ours_objects
}

ours_objects()
{
	local f

	for f in mm/hmm.c mm/hmm_kunit.c lib/test_hmm.c samples/hmm/hmm_mirror_sample.c; do
		[ -f "$tree/$f" ] && echo "${f%.c}.o"
	done
}

# warnings LOG FILES...: compiler warnings of LOG in any of FILES.
warnings_in()
{
	local log=$1 f

	shift
	for f in "$@"; do
		# The last two components: amdkfd is built as amdgpu/../amdkfd.
		f=$(echo "$f" | awk -F/ '{ print (NF > 1 ? $(NF - 1) "/" : "") $NF }')
		grep -E "(^|/)${f//./\\.}:[0-9]+:[0-9]+: (warning|error)" "$log"
	done
}

# New files of the current patch must be covered by the HMM entry of
# MAINTAINERS at the end of the series; only then is checkpatch's
# FILE_PATH_CHANGES ("does MAINTAINERS need updating?") answered.
covered_by_hmm_entry()
{
	python3 - "$@" <<'PY'
import fnmatch, subprocess, sys, os
tree = os.environ['tree']
m = subprocess.run(['git', '-C', tree, 'show', 'series:MAINTAINERS'],
                   stdout=subprocess.PIPE, text=True, check=True).stdout
entry = m.split('\nHMM - Heterogeneous Memory Management\n', 1)[1].split('\n\n', 1)[0]
pats = [l[2:].strip() for l in entry.splitlines() if l.startswith('F:')]
bad = [f for f in sys.argv[1:]
       if not any(f.startswith(p) if p.endswith('/') else fnmatch.fnmatch(f, p)
                  for p in pats)]
for f in bad:
    print('not covered by the HMM entry: ' + f)
sys.exit(1 if bad else 0)
PY
}
export tree

# 1. A fresh base and the series.
[ -d "$series" ] && ls "$series"/0000-cover-letter.patch >/dev/null 2>&1 ||
	die "no series in $series: run 'make series' first"
mapfile -t patches < <(ls "$series"/[0-9]*.patch | grep -v '/0000-cover-letter\.patch$')
[ "${#patches[@]}" -gt 0 ] || die "no patches in $series"
echo "series-check: ${#patches[@]} patches from $series on $(g log -1 --format=%s base)"
g am --abort >/dev/null 2>&1
g checkout -q -f -B am base && g clean -q -fdx || die "cannot reset $tree to the base"

n=0
configured=
am_failed=
for p in "${patches[@]}"; do
	n=$((n + 1))
	name=$(printf '%02d' "$n")
	log=$out/$name

	# git am, exactly as a maintainer would.
	if ! g am -q --no-3way "$p" >"$log.am.log" 2>&1; then
		record "$name git am" 1 "$log.am.log"
		g am --abort >/dev/null 2>&1
		am_failed=1
		break
	fi
	record "$name git am: $(g log -1 --format=%s)" 0

	# checkpatch --strict: 0 errors, 0 warnings, 0 checks.  The tree's
	# history starts at the base tarball, where no upstream commit a
	# Fixes: tag names can be found (see lint.sh).
	(cd "$tree" && perl scripts/checkpatch.pl --strict --terse --show-types \
		--ignore UNKNOWN_COMMIT_ID "$p") >"$log.checkpatch.log" 2>&1
	other=$(grep -E '^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK):' "$log.checkpatch.log" |
		grep -v ':FILE_PATH_CHANGES:' || true)
	if [ -z "$other" ] && ! grep -qE ':FILE_PATH_CHANGES:|Traceback|^total: [1-9]|[1-9][0-9]* (warnings|checks)' "$log.checkpatch.log"; then
		record "$name checkpatch --strict" 0
	elif [ -z "$other" ] && grep -q ':FILE_PATH_CHANGES:' "$log.checkpatch.log" &&
		! grep -q 'Traceback' "$log.checkpatch.log" &&
		mapfile -t added < <(g diff --name-only --diff-filter=A HEAD~1 HEAD) &&
		covered_by_hmm_entry "${added[@]}" >>"$log.checkpatch.log"; then
		# The only finding: new files, all already under the HMM entry.
		record "$name checkpatch --strict (FILE_PATH_CHANGES only: new files covered by MAINTAINERS' HMM entry)" 0
	else
		record "$name checkpatch --strict" 1 "$log.checkpatch.log"
	fi

	# kernel-doc -none on every touched C file and header: no new warnings.
	mapfile -t touched < <(g diff --name-only --diff-filter=AM HEAD~1 HEAD -- '*.c' '*.h')
	kd=0
	: >"$log.kernel-doc.log"
	for f in "${touched[@]}"; do
		[ -n "$f" ] || continue
		before=$(mktemp --suffix=.${f##*.})
		g show "HEAD~1:$f" >"$before" 2>/dev/null || : >"$before"
		perl "$tree/scripts/kernel-doc" -none "$before" 2>&1 |
			sed -e "s#^$before:[0-9]*:#$f:#" -e 's/line [0-9]*/line N/' | sort -u >"$before.old"
		perl "$tree/scripts/kernel-doc" -none "$tree/$f" 2>&1 |
			sed -e "s#^$tree/$f:[0-9]*:#$f:#" -e 's/line [0-9]*/line N/' | sort -u >"$before.new"
		if comm -13 "$before.old" "$before.new" | grep -q .; then
			comm -13 "$before.old" "$before.new" >>"$log.kernel-doc.log"
			kd=1
		fi
		rm -f "$before" "$before.old" "$before.new"
	done
	record "$name kernel-doc -none (${#touched[@]} files)" "$kd" "$log.kernel-doc.log"

	# Build: bzImage, then the callers, test_hmm, mm/hmm* and the sample.
	if [ -z "$configured" ] || g diff --name-only HEAD~1 HEAD | grep -qE '(^|/)Kconfig'; then
		if ! configure "$obj" CC="ccache gcc" HOSTCC="ccache gcc" >"$log.config.log" 2>&1; then
			record "$name configure" 1 "$log.config.log"
			continue
		fi
		configured=1
	fi
	mapfile -t objs < <(objects)
	mapfile -t changed < <(g diff --name-only base HEAD)
	if kmake "$obj" CC="ccache gcc" HOSTCC="ccache gcc" bzImage >"$log.build.log" 2>&1 &&
		kmake "$obj" CC="ccache gcc" HOSTCC="ccache gcc" "${objs[@]}" >>"$log.build.log" 2>&1; then
		warnings_in "$log.build.log" "${changed[@]}" >"$log.warnings.log"
		record "$name build: bzImage + ${#objs[@]} objects, no warning in touched files" \
			"$([ -s "$log.warnings.log" ] && echo 1 || echo 0)" "$log.warnings.log"
	else
		grep -E 'error|Error' "$log.build.log" | head -30 >"$log.errors.log"
		record "$name build: bzImage + ${#objs[@]} objects" 1 "$log.errors.log"
	fi
done

[ -z "$am_failed" ] || finish

# 2. What git am produced is what make-series.py generated and compared
# with build/src-ours.
if [ "$(g rev-parse 'am^{tree}')" = "$(g rev-parse 'series^{tree}')" ]; then
	record "final tree = generated series = build/src-ours" 0
else
	g diff --stat series am >"$out/final-diff.log" 2>&1
	record "final tree = generated series = build/src-ours" 1 "$out/final-diff.log"
fi

# 3. W=1 and sparse (C=1) on our objects.
mapfile -t ours < <(ours_objects)
mapfile -t srcs < <(printf '%s\n' "${ours[@]}" | sed 's/\.o$/.c/')
if kmake "$obj" CC="ccache gcc" HOSTCC="ccache gcc" W=1 C=1 "${ours[@]}" >"$out/w1c1.log" 2>&1; then
	grep -E '(warning|error):' "$out/w1c1.log" >"$out/w1c1.warnings.log"
	record "W=1 C=1: ${ours[*]}" "$([ -s "$out/w1c1.warnings.log" ] && echo 1 || echo 0)" "$out/w1c1.warnings.log"
else
	record "W=1 C=1: ${ours[*]}" 1 "$out/w1c1.log"
fi

# 4. clang (LLVM=1) build of our objects and the callers.
mapfile -t objs < <(objects)
mapfile -t changed < <(g diff --name-only base HEAD)
if configure "$objc" LLVM=1 CC="ccache clang" HOSTCC="ccache clang" >"$out/clang.config.log" 2>&1 &&
	kmake "$objc" LLVM=1 CC="ccache clang" HOSTCC="ccache clang" "${objs[@]}" >"$out/clang.log" 2>&1; then
	warnings_in "$out/clang.log" "${changed[@]}" >"$out/clang.warnings.log"
	record "LLVM=1 $(clang --version | head -1 | sed 's/ (.*//'): ${#objs[@]} objects, no warning in touched files" \
		"$([ -s "$out/clang.warnings.log" ] && echo 1 || echo 0)" "$out/clang.warnings.log"
else
	cat "$out/clang.config.log" >"$out/clang.errors.log"
	grep -E 'error|Error' "$out/clang.log" 2>/dev/null | head -30 >>"$out/clang.errors.log"
	record "LLVM=1 build" 1 "$out/clang.errors.log"
fi

finish
