#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test guest.  Reads what to do from the kernel command line:
#   hmmh.stages=a,b,...  stages to run, in order (kunit conformance selftests
#                        reload storm oom faultinj fuzz dataloss demo shell
#                        inject)
#   hmmh.thp=MODE        transparent_hugepage/enabled (default madvise)
#   hmmh.filter=t1,t2    only these kselftest tests (fixture.variant.test)
#   hmmh.timeout=SECONDS every kselftest test's timeout (default: its own)
#   hmmh.inject=KIND     harness self-test: fail, panic or hang
#   hmmh.spm=ADDR0,ADDR1 physical bases of two reserved 256 MiB ranges
#                        (memmap=): test_hmm's device coherent memory
# and, for the reliability stages (storm oom faultinj fuzz dataloss):
#   hmmh.storm=SECONDS   invalidation storm length (default 20)
#   hmmh.bound=SECONDS   longest a device command may take (default 10)
#   hmmh.oom=N           OOM-kill iterations (default 20)
#   hmmh.fuzz=CALLS      ioctl fuzzer calls (default 20000)
#   hmmh.fuzzsecs=N      ioctl fuzzer time limit (default 120)
#   hmmh.seed=SEED       ioctl fuzzer seed (default 0x484d4d48)
#   hmmh.faults=N        failures to inject at least (default 1000)
# Kernel messages go to the console (ttyS0; ttyAMA0 on arm64).  Test output
# goes to ttyS1 (hvc0, a virtio console, on arm64) between
#   HMMH-BEGIN <stage>  and  HMMH-END <stage> rc=<status>
# markers, so printk can never split a TAP line.  The guest powers itself
# off (reboot with QEMU's -no-reboot) when done.

/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /tmp /mnt /dev/hugepages
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t hugetlbfs none /dev/hugepages 2>/dev/null

out=/dev/console
for port in /dev/ttyS1 /dev/hvc0; do
	[ -c "$port" ] && { out=$port; break; }
done

stages= thp=madvise filter= timeout= inject= spm=
storm=20 bound=10 oom=20 fuzz=20000 fuzzsecs=120 seed=0x484d4d48 faults=1000
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	hmmh.stages=*) stages=$(echo "${arg#*=}" | tr , ' ') ;;
	hmmh.thp=*) thp=${arg#*=} ;;
	hmmh.filter=*) filter=${arg#*=} ;;
	hmmh.timeout=*) timeout=${arg#*=} ;;
	hmmh.inject=*) inject=${arg#*=} ;;
	hmmh.spm=*) spm=${arg#*=} ;;
	hmmh.storm=*) storm=${arg#*=} ;;
	hmmh.bound=*) bound=${arg#*=} ;;
	hmmh.oom=*) oom=${arg#*=} ;;
	hmmh.fuzz=*) fuzz=${arg#*=} ;;
	hmmh.fuzzsecs=*) fuzzsecs=${arg#*=} ;;
	hmmh.seed=*) seed=${arg#*=} ;;
	hmmh.faults=*) faults=${arg#*=} ;;
	esac
done

say()
{
	echo "$*"
	echo "$*" >"$out"
}

cpus=$(grep -c ^processor /proc/cpuinfo)
say "HMMH-GUEST $(uname -r) cpus=$cpus thp=$thp stages=$stages"
# The benchmark alone may run on one CPU (instruction counts, run-guest.sh -I).
[ "$cpus" -ge 2 ] || [ "$stages" = bench ] ||
	say "HMMH-ERROR guest has $cpus CPU, races need 2"
echo "$thp" >/sys/kernel/mm/transparent_hugepage/enabled ||
	say "HMMH-ERROR cannot set THP mode $thp"
# hugetlbfs pages for the tests: 64 MiB of them, and at least two (arm64's
# 64 KiB pages make the default hugetlbfs page 512 MiB).
hpkb=$(sed -n 's/^Hugepagesize: *\([0-9]*\) kB/\1/p' /proc/meminfo)
nrhp=$(( 65536 / ${hpkb:-2048} ))
[ "$nrhp" -ge 2 ] || nrhp=2
echo "$nrhp" >/proc/sys/vm/nr_hugepages
# kmemleak: boot-time objects (e.g. early caches) are not ours to
# judge; grey everything suspected so far so the final scan shows only
# what the tests leaked.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6		# older than kmemleak's 5 s minimum age
	echo scan >/sys/kernel/debug/kmemleak
	say "HMMH-INFO kmemleak baseline: $(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak) boot-time objects ignored"
	echo clear >/sys/kernel/debug/kmemleak
fi
echo 1 >/proc/sys/kernel/panic_on_oops 2>/dev/null
# Every load of test_hmm, by this script, test_hmm.sh or a test program,
# gets the device coherent memory: nodes 2 and 3 exist.
if [ -n "$spm" ]; then
	mkdir -p /etc/modprobe.d
	echo "options test_hmm spm_addr_dev0=${spm%,*} spm_addr_dev1=${spm#*,}" \
		>/etc/modprobe.d/test_hmm.conf
fi

# The test programs are wrapped in harness-filter.c: only these run, and
# with this timeout per test when one is given.
export HMMH_FILTER="$filter" HMMH_TIMEOUT="$timeout"

# run_kselftest STAGE BINARY: the device module loaded around one binary.
run_kselftest()
{
	local rc

	say "HMMH-BEGIN $1"
	if ! modprobe test_hmm; then
		say "HMMH-END $1 rc=125"
		return
	fi
	"$2" >"$out" 2>&1
	rc=$?
	modprobe -r test_hmm || rc=126
	say "HMMH-END $1 rc=$rc"
}

# run_prog STAGE PROGRAM ARGS...: like run_kselftest for our own programs;
# the END marker also says how long the stage took.
run_prog()
{
	local stage=$1 rc start

	shift
	say "HMMH-BEGIN $stage"
	start=$(date +%s)
	if ! modprobe test_hmm; then
		say "HMMH-END $stage rc=125"
		return
	fi
	"$@" >"$out" 2>&1
	rc=$?
	modprobe -r test_hmm || rc=126
	say "HMMH-END $stage rc=$rc secs=$(( $(date +%s) - start ))"
}

# RAM disks for the oom (ram0: a filesystem to freeze) and dataloss (ram1:
# ext2, ram2: swap) stages, 64 MiB each, only allocated when written.
ramdisks()
{
	[ -b /dev/ram2 ] || modprobe brd rd_nr=3 rd_size=65536 ||
		say "HMMH-ERROR cannot load brd"
}

for stage in $stages; do
	case "$stage" in
	kunit)
		# Built-in suites already ran during boot and printed KTAP to
		# the console; the host reads them from there.
		say "HMMH-BEGIN kunit"
		say "HMMH-END kunit rc=0"
		;;
	conformance)
		run_kselftest conformance /tests/conformance/hmm-tests
		;;
	selftests)
		if [ -x /tests/selftests/test_hmm.sh ]; then
			say "HMMH-BEGIN selftests"
			/tests/selftests/test_hmm.sh >"$out" 2>&1
			say "HMMH-END selftests rc=$?"
		else
			run_kselftest selftests /tests/selftests/hmm-tests
		fi
		;;
	reload)
		say "HMMH-BEGIN reload"
		/tests/reload/hmm-reload 20 >"$out" 2>&1
		say "HMMH-END reload rc=$?"
		;;
	storm)
		run_prog storm /tests/reliability/hmm-storm "$storm" "$bound"
		;;
	oom)
		ramdisks
		mkdir -p /mnt/oom
		if mke2fs -q /dev/ram0 >/dev/null && mount -t ext2 /dev/ram0 /mnt/oom; then
			run_prog oom /tests/reliability/hmm-oom "$oom" /mnt/oom
			umount /mnt/oom
		else
			say "HMMH-ERROR cannot make ext2 on /dev/ram0"
		fi
		;;
	faultinj)
		run_prog faultinj /tests/reliability/hmm-faultinj "$faults" 300
		;;
	fuzz)
		run_prog fuzz /tests/reliability/hmm-fuzz "$fuzz" "$seed" "$fuzzsecs"
		;;
	dataloss)
		ramdisks
		run_prog dataloss /tests/reliability/hmm-dataloss /dev/ram1 /dev/ram2
		;;
	demo)
		say "HMMH-BEGIN demo"
		modprobe test_hmm && ls -l /dev/hmm_dmirror* >"$out"
		HMMH_FILTER=hmm.hmm_device_private.anon_read,hmm.hmm_device_private.migrate,hmm.hmm_device_private.migrate_fault,hmm2.hmm2_device_private.snapshot \
			/tests/conformance/hmm-tests >"$out" 2>&1
		rc=$?
		modprobe -r test_hmm || rc=126
		say "HMMH-END demo rc=$rc"
		;;
	bench)
		# Timings, not tests: see scripts/bench.sh.
		say "HMMH-BEGIN bench"
		sh /bench/guest-bench.sh >"$out" 2>&1
		say "HMMH-END bench rc=$?"
		;;
	inject)
		say "HMMH-BEGIN inject"
		case "$inject" in
		fail)
			printf 'TAP version 13\n1..1\nnot ok 1 harness.injected_failure\n' >"$out"
			say "HMMH-END inject rc=1"
			;;
		panic)
			echo c >/proc/sysrq-trigger
			;;
		hang)
			while :; do sleep 3600; done
			;;
		esac
		;;
	shell)
		echo "HMMH interactive shell; 'reboot -f' leaves QEMU"
		setsid cttyhack sh
		;;
	*)
		say "HMMH-ERROR unknown stage $stage"
		;;
	esac
done

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	sleep 1
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak
fi
say "HMMH-DONE"
sync
reboot -f
