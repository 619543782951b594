#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# lint.sh
#
# The kernel-native quality gate on our own files, one check a case:
#   checkpatch --strict (0 errors, 0 warnings, 0 checks) on every C file and
#   header under linux/ and on every patch in patches/;
#   kernel-doc -none on every C file and header under linux/;
#   W=1 and sparse (C=2) on our objects in build/src-ours/obj, zero warnings.
# Writes build/logs/lint.json like a guest run.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

src=$(src_dir ours)
obj=$(obj_dir ours)
[ -f "$src/scripts/checkpatch.pl" ] || die "run prepare-tree.sh ours first"
cases=()
pass=0
fail=0

record()	# NAME OK? [DETAILS FILE]
{
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		cases+=("pass $1")
	else
		fail=$((fail + 1))
		cases+=("fail $1")
		echo "  FAIL $1"
		[ -n "${3:-}" ] && sed 's/^/    /' "$3" | head -20
	fi
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

mapfile -t files < <(cd "$ROOT" && find linux -name '*.[ch]' | sort)
for f in "${files[@]}"; do
	perl "$src/scripts/checkpatch.pl" --strict --no-tree --terse -f "$ROOT/$f" >"$tmp" 2>&1
	ok=1; [ ! -s "$tmp" ] || grep -q 'total: 0 errors, 0 warnings, 0 checks' "$tmp" && ok=0
	record "checkpatch $f" $ok "$tmp"
	perl "$src/scripts/kernel-doc" -none "$ROOT/$f" >"$tmp" 2>&1
	ok=1; [ -s "$tmp" ] || ok=0
	record "kernel-doc $f" $ok "$tmp"
done
# A Fixes: tag names an upstream commit, which 6.1's checkpatch looks up
# in the git history of its cwd and reports unknown without one: the base
# is a tarball with no history, so that one check is left out.
for p in "$ROOT"/patches/*.patch; do
	[ -e "$p" ] || continue
	perl "$src/scripts/checkpatch.pl" --strict --no-tree --terse \
		--ignore UNKNOWN_COMMIT_ID "$p" >"$tmp" 2>&1
	ok=1; [ ! -s "$tmp" ] || grep -q 'total: 0 errors, 0 warnings, 0 checks' "$tmp" && ok=0
	record "checkpatch patches/$(basename "$p")" $ok "$tmp"
done

# W=1 and sparse on the objects built from our C files.
if [ -f "$obj/.config" ]; then
	exec 9>"${HMMH_BUILD_LOCK:-/tmp/hmm-series-kbuild.lock}"
	flock 9
	for f in "${files[@]}"; do
		case "$f" in *.c) ;; *) continue ;; esac
		o=${f#linux/}
		o=${o%.c}.o
		grep -q "^obj-.*$(basename "$o")" "$src/$(dirname "$o")/Makefile" 2>/dev/null || continue
		make -s -C "$src" O="$obj" ARCH=x86_64 CC="ccache gcc" W=1 C=2 "$o" >"$tmp" 2>&1
		rc=$?
		ok=1; [ "$rc" -eq 0 ] && ! grep -qE 'warning|error' "$tmp" && ok=0
		record "W=1 C=2 $o" $ok "$tmp"
	done
else
	record "W=1 C=2: no configured build/src-ours/obj" 1
fi

echo "lint: $pass passed, $fail failed"
python3 - "$LOGS/lint.json" "$pass" "$fail" "${cases[@]}" <<'PY'
import json, sys
path, p, f, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
json.dump({'name': 'lint', 'passed': p, 'failed': f, 'skipped': 0,
           'failures': [c[5:] for c in cases if c.startswith('fail ')],
           'cases': [{'stage': 'lint', 'name': c[5:], 'result': c[:4]} for c in cases]},
          open(path, 'w'), indent=1)
PY
[ "$fail" -eq 0 ]
