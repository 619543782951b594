#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh: the pristine base against ours, same run, same binary.
#
# Builds both kernels (prepare-tree.sh, build-kernel.sh) with -O2 as
# distributions do (configs/o2.config, flavour "o2"), the modules of
# bench/kmod against each kernel's objects (the walker microbenchmark and the
# pretend driver that calls HMM the way amdgpu, RDMA ODP and the seed's
# drivers do), the static bench/hmm-bench once against the BASE's test_hmm
# uapi header and bench/hmm-drivers once, and a guest per kernel carrying
# them all at /bench.  Then, for each clock, boots pristine, ours, pristine,
# ours, ... (alternating so drift of the host hits both alike) running the
# "bench" guest stage, and hands every boot's output to bench.py: a table
# per clock on stdout, build/bench/results.json.
#
# Two clocks.  "icount" is the judged figure: one vCPU under QEMU -icount
# shift=0, where a guest nanosecond is one guest instruction: deterministic,
# blind to host load, and not skewed by what TCG makes expensive (calls,
# returns, TLB misses); a string instruction still counts once per element,
# as TCG runs it.  "time" is the second table, for what counts cannot see
# (a second CPU is not used either way).
#
# Environment:
#   BENCH_CLOCKS=icount,time  which tables, in this order
#   BENCH_ICOUNT_BOOTS=2 boots per kernel under icount (at least 2: the
#                        spread column shows that the counts repeat)
#   BENCH_BOOTS=3        boots per kernel timed (at least 2)
#   BENCH_FLAVOUR=o2     config flavour of both kernels; empty for the -Os
#                        test kernels of make check
#   BENCH_SIZES=4,64,512 MiB sizes of the snapshot and walker metrics
#   BENCH_BIG=64         largest MiB size of read, migrate and munmap metrics
#   BENCH_DRV_MIB=64     MiB of each write request of the driver rows
#   BENCH_DRV_REPEATS=3  write requests per driver row and boot
#   BENCH_ITERS=11       timed iterations per metric and boot (at least 7)
#   BENCH_THP=madvise    THP mode of the guests
#   BENCH_TIMEOUT=900    host timeout of one boot, seconds
#   BENCH_CPUS=1         vCPUs of the guests when timing: one leaves the
#                        host's other core to QEMU's I/O thread and the rest
#                        of the host, which halves the spread of most rows
#   BENCH_PROFILE=METRIC instead of the tables, where the instructions of
#                        one hmm-bench metric (write_zero, read_pop, ...)
#                        or hmm_range_fault() write row of hmm-drivers
#                        (drv_write_zero_range, ...) go, function by
#                        function, at the size BENCH_BIG (MiB):
#                        one boot of each kernel under icount with the
#                        QEMU plugin bench/prof/tbcount.c, then
#                        scripts/profile.py (make profile)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

clocks=${BENCH_CLOCKS:-icount,time}
boots=${BENCH_BOOTS:-3}
iboots=${BENCH_ICOUNT_BOOTS:-2}
sizes=${BENCH_SIZES:-4,64,512}
big=${BENCH_BIG:-64}
drv_mib=${BENCH_DRV_MIB:-64}
drv_repeats=${BENCH_DRV_REPEATS:-3}
iters=${BENCH_ITERS:-11}
thp=${BENCH_THP:-madvise}
tmo=${BENCH_TIMEOUT:-900}
cpus=${BENCH_CPUS:-1}
flavour=${BENCH_FLAVOUR-o2}
profile=${BENCH_PROFILE:-}
out=$BUILD/bench
lock=${HMMH_BUILD_LOCK:-/tmp/hmm-series-kbuild.lock}

[ -z "${BENCH_ICOUNT:-}" ] ||
	die "BENCH_ICOUNT is gone: instruction counts are the default table (BENCH_CLOCKS=icount,time)"
case ",$clocks," in
,icount,|,time,|,icount,time,|,time,icount,) ;;
*) die "BENCH_CLOCKS must be icount, time or both (comma-separated)" ;;
esac
case "$boots$iboots" in *[!0-9]*) die "BENCH_BOOTS and BENCH_ICOUNT_BOOTS must be numbers" ;; esac
[ "$boots" -ge 2 ] || die "BENCH_BOOTS must be at least 2"
[ "$iboots" -ge 2 ] || die "BENCH_ICOUNT_BOOTS must be at least 2"
[ -z "$flavour" ] || [ -f "$ROOT/configs/$flavour.config" ] ||
	die "BENCH_FLAVOUR: no configs/$flavour.config"
[ "$iters" -ge 7 ] || die "BENCH_ITERS must be at least 7"
case "$drv_mib" in ''|*[!0-9]*|0) die "BENCH_DRV_MIB must be a positive number" ;; esac
case "$drv_repeats" in ''|*[!0-9]*|0) die "BENCH_DRV_REPEATS must be 1 to 16" ;; esac
[ "$drv_repeats" -le 16 ] || die "BENCH_DRV_REPEATS must be 1 to 16"
case "$profile" in
''|read_pop|read_empty|write_fresh|write_zero|write_cow|mig_to_dev|mig_to_sys|munmap_plain|munmap_mirrored) ;;
drv_write_fresh_range|drv_write_zero_range|drv_write_cow_range) ;;
*) die "BENCH_PROFILE: $profile is not a metric hmm-bench or hmm-drivers can profile on both kernels (see -P in bench/hmm-bench.c, bench/hmm-drivers.c)" ;;
esac
results=$out/results.json
start=$(date +%s)
mkdir -p "$out"
if [ -z "$profile" ]; then
	rm -f "$results" "$out/results-icount.json" \
		"$LOGS"/bench-*.{console,tests,qemu}.log "$LOGS"/bench-*.json
fi

# 1. Kernels.
for v in pristine ours; do
	bash "$ROOT/scripts/prepare-tree.sh" "$v"
	bash "$ROOT/scripts/build-kernel.sh" "$v" "$flavour"
done

# 2. The benchmark, once for both kernels: static, against the base's
# uapi header, so the very same binary drives both test_hmm modules.
bin=$out/hmm-bench
if ! gcc -O2 -Wall -Wextra -Werror -static -no-pie -pthread \
	-I "$BASE_DIR/lib" -I "$ROOT/bench" \
	"$ROOT/bench/hmm-bench.c" -o "$bin" >"$out/hmm-bench.log" 2>&1; then
	cat "$out/hmm-bench.log" >&2
	die "cannot build bench/hmm-bench.c"
fi
drv=$out/hmm-drivers
if ! gcc -O2 -Wall -Wextra -Werror -static -no-pie -pthread \
	-I "$ROOT/bench" "$ROOT/bench/hmm-drivers.c" -o "$drv" \
	>"$out/hmm-drivers.log" 2>&1; then
	cat "$out/hmm-drivers.log" >&2
	die "cannot build bench/hmm-drivers.c"
fi

# 3. The modules, against each kernel's objects, and the guests.
for v in pristine ours; do
	kmod=$out/kmod-$v
	payload=$out/payload-$v
	rm -rf "$kmod" "$payload"
	mkdir -p "$kmod" "$payload"
	cp "$ROOT"/bench/kmod/* "$kmod/"
	if ! flock "$lock" make -C "$(obj_dir "$v" "$flavour")" M="$kmod" \
		CC="ccache gcc" modules >"$kmod/build.log" 2>&1; then
		cat "$kmod/build.log" >&2
		die "cannot build bench/kmod against $v"
	fi
	if grep -E '(^|: )warning:' "$kmod/build.log" >&2; then
		die "warnings building bench/kmod against $v"
	fi
	cp "$kmod/hmm_walk_bench.ko" "$kmod/hmm_driver_bench.ko" "$bin" \
		"$drv" "$payload/"
	install -m 0755 "$ROOT/bench/guest-bench.sh" "$payload/guest-bench.sh"
	HMMH_BENCH_PAYLOAD=$payload bash "$ROOT/scripts/build-guest.sh" "$v" "$flavour"
done
log "built in $(( $(date +%s) - start ))s"

# 4. Per clock, alternating boots: pristine, ours, pristine, ours, ...
# The builds above leave the host writing back their objects for a while;
# flush that now rather than during the measurements.
sync

# The TSCs of TCG vCPUs are not synchronized and the watchdog may drop the
# TSC at any time: give every boot the same, stable clock.  The ours test
# kernel (BENCH_FLAVOUR empty) has the HMM KUnit suite built in, which would
# run at boot (mms, THPs, timers) right before the first rows: a glob that
# matches no suite skips it on both.
args="clocksource=hpet kunit.filter_glob=none-in-bench"
args+=" hmmh.bench_sizes=$sizes hmmh.bench_big=$big hmmh.bench_iters=$iters"
args+=" hmmh.bench_drv_mib=$drv_mib hmmh.bench_drv_repeats=$drv_repeats"
# An instruction profile instead: one boot per kernel, pristine first.
if [ -n "$profile" ]; then
	plugin=$out/tbcount.so
	gcc -O2 -Wall -Wextra -Werror -Wno-unused-parameter -shared -fPIC \
		"$ROOT/bench/prof/tbcount.c" -o "$plugin" ||
		die "cannot build bench/prof/tbcount.c"
	specs=()
	for v in pristine ours; do
		name=bench-profile-$v
		prof=$out/profile-$profile-$big-$v.txt
		rm -f "$prof"
		bash "$ROOT/scripts/run-guest.sh" -v "$v" -T "$thp" -t "$tmo" -I \
			${flavour:+-f "$flavour"} -p "$plugin,out=$prof" \
			-a "$args hmmh.bench_profile=$profile" "$name" bench ||
			die "$name: guest run not clean, see $LOGS/$name.*"
		obj=$(obj_dir "$v" "$flavour")
		kos=$obj/lib/test_hmm.ko,$out/kmod-$v/hmm_driver_bench.ko,$out/kmod-$v/hmm_walk_bench.ko
		specs+=("$v:$prof:$obj/System.map:$kos:$LOGS/$name.tests.log")
	done
	python3 "$ROOT/scripts/profile.py" --metric "$profile" \
		--pages $((big * 256)) --json "$out/profile-$profile-$big.json" \
		"${specs[@]}"
	log "profile in $(( $(date +%s) - start ))s: $out/profile-$profile-$big.json"
	exit 0
fi

runs=()
for clock in ${clocks//,/ }; do
	if [ "$clock" = icount ]; then
		n=$iboots guest_opts=(-I)
	else
		n=$boots guest_opts=(-c "$cpus")
	fi
	for i in $(seq 1 "$n"); do
		for v in pristine ours; do
			name=bench-$clock-$v-$i
			bash "$ROOT/scripts/run-guest.sh" -v "$v" -T "$thp" -t "$tmo" \
				"${guest_opts[@]}" ${flavour:+-f "$flavour"} -a "$args" \
				"$name" bench || log "$name: guest run not clean, see $LOGS/$name.*"
			runs+=("$clock:$v:$LOGS/$name.tests.log:$LOGS/$name.json")
		done
	done
done

python3 "$ROOT/scripts/bench.py" --json "$results" \
	--seconds "$(( $(date +%s) - start ))" \
	--config "flavour=${flavour:-Os} sizes=$sizes big=$big iters=$iters drv=${drv_mib}MiBx$drv_repeats boots=icount:$iboots,time:$boots thp=$thp" \
	"${runs[@]}"
