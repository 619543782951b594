#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test guest.  Reads what to do from the kernel command line:
#   hmmh.stages=a,b,...  stages to run, in order (kunit conformance selftests
#                        reload demo shell inject)
#   hmmh.thp=MODE        transparent_hugepage/enabled (default madvise)
#   hmmh.filter=t1,t2    only these kselftest tests (fixture.variant.test)
#   hmmh.inject=KIND     harness self-test: fail, panic or hang
# Kernel messages go to ttyS0.  Test output goes to ttyS1 between
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

out=/dev/ttyS1
[ -c "$out" ] || out=/dev/console

stages= thp=madvise filter= inject=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	hmmh.stages=*) stages=$(echo "${arg#*=}" | tr , ' ') ;;
	hmmh.thp=*) thp=${arg#*=} ;;
	hmmh.filter=*) filter=${arg#*=} ;;
	hmmh.inject=*) inject=${arg#*=} ;;
	esac
done

say()
{
	echo "$*"
	echo "$*" >"$out"
}

cpus=$(grep -c ^processor /proc/cpuinfo)
say "HMMH-GUEST $(uname -r) cpus=$cpus thp=$thp stages=$stages"
[ "$cpus" -ge 2 ] || say "HMMH-ERROR guest has $cpus CPU, races need 2"
echo "$thp" >/sys/kernel/mm/transparent_hugepage/enabled ||
	say "HMMH-ERROR cannot set THP mode $thp"
echo 32 >/proc/sys/vm/nr_hugepages
# kmemleak: boot-time objects (e.g. ACPI's early caches) are not ours to
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

# The test programs are wrapped in harness-filter.c: only these run.
export HMMH_FILTER="$filter"

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
