#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /bench/guest-bench.sh: the "bench" stage of scripts/guest-init.sh.  Loads
# test_hmm and the walker microbenchmark built for this kernel, runs
# /bench/hmm-bench (TAP on stdout) and unloads both.  Parameters come from
# the kernel command line (scripts/bench.sh sets them):
#   hmmh.bench_sizes=4,64,512  snapshot and walker sizes in MiB
#   hmmh.bench_big=64          largest read/write/migrate/munmap size in MiB
#   hmmh.bench_iters=9         timed iterations per metric (>= 7)
#   hmmh.bench_drv_mib=64      MiB of each write request of /bench/hmm-drivers
#   hmmh.bench_drv_repeats=3   write requests per driver row
#   hmmh.bench_profile=METRIC  only that metric of hmm-bench (or write row
#                              drv_* of hmm-drivers), at the size
#                              hmmh.bench_big, between profile markers
#                              (scripts/bench.sh with BENCH_PROFILE)

sizes=4,64 big=64 iters=9 drv_mib=64 drv_repeats=3 profile=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	hmmh.bench_sizes=*) sizes=${arg#*=} ;;
	hmmh.bench_big=*) big=${arg#*=} ;;
	hmmh.bench_iters=*) iters=${arg#*=} ;;
	hmmh.bench_drv_mib=*) drv_mib=${arg#*=} ;;
	hmmh.bench_drv_repeats=*) drv_repeats=${arg#*=} ;;
	hmmh.bench_profile=*) profile=${arg#*=} ;;
	esac
done

echo "# bench: kernel $(uname -r), thp $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
echo "# bench: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "# bench: sizes $sizes MiB, read/write/migrate/munmap up to $big MiB, $iters iterations"
if ! modprobe test_hmm; then
	printf 'not ok 1 bench.modprobe_test_hmm\n1..1\n'
	exit 1
fi
insmod /bench/hmm_walk_bench.ko || echo "# bench: cannot load hmm_walk_bench.ko"
insmod /bench/hmm_driver_bench.ko || echo "# bench: cannot load hmm_driver_bench.ko"

# A profile: the one metric, and where the modules' code was loaded, for
# the symbols of the instruction profile.
if [ -n "$profile" ]; then
	for m in test_hmm hmm_driver_bench hmm_walk_bench; do
		[ -r /sys/module/$m/sections/.text ] &&
			echo "# bench: $m .text $(cat /sys/module/$m/sections/.text)"
	done
	case "$profile" in
	drv_*) /bench/hmm-drivers -m "$big" -r "$drv_repeats" -P "$profile" ;;
	*) /bench/hmm-bench -s "$big" -b "$big" -i "$iters" -P "$profile" ;;
	esac
	rc=$?
	rmmod hmm_driver_bench 2>/dev/null
	rmmod hmm_walk_bench 2>/dev/null
	modprobe -r test_hmm || rc=126
	exit $rc
fi

# Two TAP streams made one: results renumbered, their plans dropped, one
# plan at the end; an exit status other than 0 fails the stage.
{
	/bench/hmm-bench -s "$sizes" -b "$big" -i "$iters"
	echo "HMMH-RC $?"
	/bench/hmm-drivers -m "$drv_mib" -r "$drv_repeats"
	echo "HMMH-RC $?"
} | awk '
	BEGIN { print "TAP version 13" }
	/^HMMH-RC / { if ($2 != 0) rc = 1; next }
	/^TAP version/ || /^1\.\.[0-9]+$/ { next }
	/^(not )?ok [0-9]+/ { sub(/ok [0-9]+/, "ok " ++n) }
	{ print; fflush() }
	END { print "1.." n; exit rc }'
rc=$?
rmmod hmm_driver_bench 2>/dev/null
rmmod hmm_walk_bench 2>/dev/null
modprobe -r test_hmm || rc=126
exit $rc
