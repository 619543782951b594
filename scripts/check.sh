#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# check.sh [STEP...]
#
# Runs every test step (all of them when none is named), keeps going after
# a failure, and ends with one line "check: N passed, M failed".  Each guest
# run contributes its test cases (build/logs/NAME.json); a step that fails
# before producing a verdict (a build, a patch that does not apply) counts
# as one failure.  Exit status is non-zero if anything failed.
#
# Steps:
#   harness      the harness catches an injected test failure, panic, hang
#   pristine     the unmodified base passes its own hmm-tests (THP madvise);
#                with THP always it fails exactly the exclusive access tests
#                (6.1 cannot make a THP device exclusive): the baseline
#   callers      every in-tree HMM caller (amdgpu, amdkfd, nouveau, RDMA
#                ODP) compiles warning-free against our hmm.h
#   ours         our kernel: KUnit, our selftests, the base's hmm-tests
#                (THP madvise, and again with THP always),
#                20 test_hmm load/unload cycles with device pages live, and
#                the reliability stages (CI sized): invalidation storm, 20
#                OOM kills reaped non-blockably, ioctl fuzzer, no data loss
#   debug        the same tests on a debug kernel (configs/debug.config:
#                KASAN, lockdep, DEBUG_VM, DEBUG_PAGEALLOC, kmemleak, ...),
#                plus fault injection (failslab, fail_page_alloc)
#   arm64        our kernel cross built for arm64 with 64 KiB pages
#                (configs/arm64.config) under qemu-system-aarch64: KUnit,
#                our selftests, the base's hmm-tests
#   lint         checkpatch --strict, kernel-doc, W=1 and sparse on our files
#   docs         make SPHINXDIRS=mm htmldocs: no new warning, none about hmm
set -uo pipefail
# x86_64 unless a step says otherwise, whatever ARCH the caller has set.
export HMMH_ARCH=x86_64
. "$(dirname "$0")/lib.sh"

all=(harness pristine callers ours debug arm64 lint docs)

# The base's exclusive access tests with THP always: 6.1 leaves every page
# of a THP out of device exclusive access; the series fixes it
# (patches/0010-mm-rmap-split-large-folios-for-device-exclusive.patch).
pristine_thp_xfail=
for v in hmm_device_private hmm_device_coherent; do
	for t in exclusive exclusive_mprotect exclusive_cow; do
		pristine_thp_xfail+=${pristine_thp_xfail:+,}hmm.$v.$t
	done
done
steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=("${all[@]}")

results=()	# json files of this run
extra_pass=0
extra_fail=0
failed_steps=()
start=$(date +%s)

# step NAME CMD...: a build-type step, one failure if the command fails.
step()
{
	local name=$1

	shift
	if "$@"; then
		return 0
	fi
	extra_fail=$((extra_fail + 1))
	failed_steps+=("$name")
	return 1
}

# guest NAME STAGES [OPTIONS...]: a guest run judged by parse-results.py.
guest()
{
	local name=$1 stages=$2

	shift 2
	rm -f "$LOGS/$name.json"
	bash "$ROOT/scripts/run-guest.sh" "$@" "$name" "$stages"
	if [ -f "$LOGS/$name.json" ]; then
		results+=("$LOGS/$name.json")
	else
		extra_fail=$((extra_fail + 1))
		failed_steps+=("$name")
	fi
}

kernel()	# VARIANT [FLAVOUR], for $HMMH_ARCH
{
	local what=$1${2:+-$2}

	[ "$HMMH_ARCH" = x86_64 ] || what=$1-$HMMH_ARCH${2:+-$2}
	step "prepare-$1" bash "$ROOT/scripts/prepare-tree.sh" "$1" &&
		step "kernel-$what" bash "$ROOT/scripts/build-kernel.sh" "$@" &&
		step "guest-$what" bash "$ROOT/scripts/build-guest.sh" "$@"
}

bash "$ROOT/scripts/prepare-tree.sh" pristine >/dev/null 2>&1 || true
echo "check: base Linux $(base_version 2>/dev/null || echo unknown), steps: ${steps[*]}"

for s in "${steps[@]}"; do
	case "$s" in
	harness)
		kernel pristine || continue
		for k in fail panic hang; do
			guest "harness-$k" inject -v pristine -t 20 -x "$k" -a "hmmh.inject=$k"
		done
		;;
	pristine)
		kernel pristine || continue
		guest pristine-conformance conformance -v pristine -t 900
		# Each of those expected failures loops in the fixture's
		# teardown, printing the same assertion until the harness
		# kills it: 10 s each rather than the harness' 30 (every other
		# test there takes well under a second).  Their lines flood
		# the emulated serial port, and a vCPU draining it with
		# interrupts off can hold up a grace period past RCU's 21 s
		# stall report (seen once, in serial8250_tx_chars()); a real
		# stall still shows after 2 minutes.
		guest pristine-conformance-always conformance -v pristine -T always \
			-t 900 -X "$pristine_thp_xfail" \
			-a "hmmh.timeout=10 rcupdate.rcu_cpu_stall_timeout=120"
		;;
	callers)
		step prepare-ours bash "$ROOT/scripts/prepare-tree.sh" ours || continue
		src=$(src_dir ours)
		mapfile -t objs < <(cd "$src" && grep -rlE 'linux/hmm\.h|hmm_range|HMM_PFN_|hmm_(fixed_)?pfn_' \
			drivers --include='*.c' | sed -e 's#^drivers/gpu/drm/amd/amdkfd/#drivers/gpu/drm/amd/amdgpu/../amdkfd/#' \
			-e 's#\.c$#.o#' | sort)
		objs+=(mm/hmm.o)
		echo "callers: ${objs[*]}"
		if step callers bash "$ROOT/scripts/build-kernel.sh" ours callers "${objs[@]}"; then
			w=$(obj_dir ours callers)/warnings.log
			if [ -s "$w" ]; then
				cat "$w"
				echo "callers: FAIL, compiler warnings"
				extra_fail=$((extra_fail + 1))
			else
				extra_pass=$((extra_pass + ${#objs[@]}))
			fi
		fi
		;;
	ours)
		kernel ours || continue
		stages=selftests,conformance,reload,storm,oom,fuzz,dataloss
		grep -qs "^CONFIG_.*KUNIT_TEST=y" "$ROOT/configs/ours.config" && stages=kunit,$stages
		guest ours "$stages" -t 1800
		guest conformance-ours-always conformance -v ours -T always -t 900
		;;
	debug)
		kernel ours debug || continue
		stages=selftests,conformance,reload,storm,oom,faultinj,fuzz,dataloss
		grep -qs "^CONFIG_.*KUNIT_TEST=y" "$ROOT/configs/ours.config" && stages=kunit,$stages
		# KASAN and lockdep under TCG: more time per device command.
		guest ours-debug "$stages" -f debug -t 2700 -a "hmmh.bound=30"
		;;
	arm64)
		export HMMH_ARCH=arm64
		if kernel ours; then
			guest arm64 kunit,selftests,conformance -t 2400
		fi
		export HMMH_ARCH=x86_64
		;;
	lint)
		rm -f "$LOGS/lint.json"
		bash "$ROOT/scripts/lint.sh"
		if [ -f "$LOGS/lint.json" ]; then
			results+=("$LOGS/lint.json")
		else
			extra_fail=$((extra_fail + 1))
			failed_steps+=(lint)
		fi
		;;
	docs)
		step docs bash "$ROOT/scripts/docs.sh" && extra_pass=$((extra_pass + 1))
		;;
	*)
		echo "check: unknown step $s" >&2
		extra_fail=$((extra_fail + 1))
		failed_steps+=("$s")
		;;
	esac
done

read -r passed failed skipped < <(python3 - "${results[@]}" <<'PY'
import json, sys
p = f = s = 0
for path in sys.argv[1:]:
    d = json.load(open(path))
    p += d['passed']; f += d['failed']; s += d['skipped']
print(p, f, s)
PY
)
passed=$((passed + extra_pass))
failed=$((failed + extra_fail))
[ "${#failed_steps[@]}" -gt 0 ] && echo "check: steps that failed before a verdict: ${failed_steps[*]}"
echo "check: $(( $(date +%s) - start ))s, $skipped skipped (counted neither way), logs in build/logs/"
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
