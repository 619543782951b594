#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# run-guest.sh [options] NAME STAGES
#
# Boots build/src-VARIANT/obj[-arm64][-FLAVOUR]'s kernel with its initramfs
# in QEMU (TCG, 2 vCPUs by default; arm64 with HMMH_ARCH or ARCH=arm64),
# runs STAGES (comma separated, see scripts/guest-init.sh) under a host
# timeout and judges the run with parse-results.py.  The console goes to build/logs/NAME.console.log, test
# output to build/logs/NAME.tests.log, the verdict to build/logs/NAME.json.
#
#   -v VARIANT   ours (default) or pristine
#   -f FLAVOUR   config flavour (e.g. debug)
#   -t SECONDS   host timeout (default 900)
#   -T MODE      THP mode (default madvise)
#   -F FILTER    kselftest tests to run (fixture.variant.test,...)
#   -a ARGS      extra kernel command line
#   -x OUTCOME   expect this failure instead of a pass (harness self-test)
#   -c CPUS      vCPUs (default 2)
#   -X TESTS     expected failures: kselftest names (comma separated) that
#                must fail; they count neither way, a pass counts as failed
#   -I           count instructions: one vCPU under -icount shift=0,sleep=off,
#                so one guest nanosecond is one guest instruction
#   -p PLUGIN    load a QEMU TCG plugin: FILE.so[,ARG=VALUE...] (the
#                instruction profiles of bench.sh)
#   -i           interactive: console on this terminal, no verdict
#   -s           show the test output on this terminal after the run
#
# Every guest has device coherent memory for test_hmm's nodes 2 and 3: two
# 256 MiB ranges of its RAM that the kernel leaves alone (x86_64: reserved
# with memmap= in the middle of 2 GiB; arm64, which has no memmap=: the
# top 512 MiB of 6 GiB, cut off with mem=) and hmmh.spm= tells the guest's
# init to load test_hmm with them, so the coherent variants of the tests
# run everywhere; a coherent test that skips anyway counts as failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=ours flavour= tmo=900 thp=madvise filter= extra= expect= interactive= show=
smp=2 icount=() xfail= plugin=()
while getopts v:f:t:T:F:a:x:c:X:p:isI o; do
	case "$o" in
	v) variant=$OPTARG ;;
	f) flavour=$OPTARG ;;
	t) tmo=$OPTARG ;;
	T) thp=$OPTARG ;;
	F) filter=$OPTARG ;;
	a) extra=$OPTARG ;;
	x) expect=$OPTARG ;;
	c) smp=$OPTARG ;;
	X) xfail=$OPTARG ;;
	i) interactive=1 ;;
	s) show=1 ;;
	I) icount=(-icount shift=0,sleep=off) ;;
	p) plugin=(-plugin "$OPTARG") ;;
	*) die "bad option" ;;
	esac
done
shift $((OPTIND - 1))
case "$smp" in [1-4]) ;; *) die "vCPUs must be 1 to 4" ;; esac
[ ${#icount[@]} -eq 0 ] || smp=1
name=${1:?usage: run-guest.sh [options] NAME STAGES}
stages=${2:?usage: run-guest.sh [options] NAME STAGES}
check_variant "$variant"
case "$thp" in always|madvise|never) ;; *) die "THP mode must be always, madvise or never" ;; esac

obj=$(obj_dir "$variant" "$flavour")
guest=$(guest_dir "$variant" "$flavour")
kernel=$obj/$KIMAGE_PATH
[ -f "$kernel" ] || die "no kernel at $kernel"
[ -f "$guest/initramfs.cpio.gz" ] || die "no initramfs in $guest"

# The machine, its ports and the device coherent memory (see above).
if [ "$HMMH_ARCH" = arm64 ]; then
	# -machine virt's RAM starts at 1 GiB; the coherent ranges are its
	# top 512 MiB.  64 KiB pages make PMDs and hugetlbfs's default page
	# 512 MiB, so the THP and hugetlbfs tests want gigabytes: 6 GiB.
	# pauth-impdef: QEMU's own pointer authentication hash, not the
	# emulated QARMA that would cost most of the guest's time.  The
	# test output goes to a virtio console.
	spm0=0x1a0000000 spm1=0x1b0000000
	append="console=ttyAMA0 mem=5632M"
	qemu=(qemu-system-aarch64 -machine virt -accel tcg -cpu max,pauth-impdef=on
		-smp "$smp" -m 6G "${icount[@]}" "${plugin[@]}" -nodefaults -no-reboot -nographic
		-kernel "$kernel" -initrd "$guest/initramfs.cpio.gz"
		-device virtio-serial-device)
	tests_port=(-chardev file,id=tests,path=@TESTS@ -device virtconsole,chardev=tests)
	interactive_port=(-serial mon:stdio)
else
	# Coherent memory not at the top of RAM, where QEMU loads the
	# initramfs: the kernel would move it below the reserved ranges with
	# a memblock allocation that kmemleak tracks and x86's
	# free_initrd_mem() never untracks, and the debug kernel's first
	# kmemleak scan would then read the freed, unmapped
	# (DEBUG_PAGEALLOC) pages and oops.
	spm0=0x40000000 spm1=0x50000000
	append="console=ttyS0 memmap=256M\$$spm0 memmap=256M\$$spm1"
	# One CPU per socket: the test kernels have no ACPI, and the MP
	# table SeaBIOS writes lists one CPU of each socket only.
	qemu=(qemu-system-x86_64 -machine q35 -accel tcg -cpu max
		-smp "$smp,sockets=$smp" -m 2G
		"${icount[@]}" "${plugin[@]}" -nodefaults -no-reboot -nographic
		-kernel "$kernel" -initrd "$guest/initramfs.cpio.gz")
	tests_port=(-serial file:@TESTS@)
	interactive_port=(-serial mon:stdio -serial null)
fi
append+=" panic=-1 hmmh.stages=$stages hmmh.thp=$thp hmmh.spm=$spm0,$spm1"
[ -n "$filter" ] && append+=" hmmh.filter=$filter"
[ -n "$extra" ] && append+=" $extra"

if [ -n "$interactive" ]; then
	exec "${qemu[@]}" "${interactive_port[@]}" -append "$append hmmh.stages=${stages},shell"
fi

console=$LOGS/$name.console.log
tests=$LOGS/$name.tests.log
rm -f "$console" "$tests" "$LOGS/$name.json"
log "booting $variant ($HMMH_ARCH${flavour:+, $flavour}) for $name: stages=$stages thp=$thp timeout=${tmo}s"
start=$(date +%s)
set +e
timeout -k 10 "$tmo" "${qemu[@]}" -serial "file:$console" "${tests_port[@]//@TESTS@/$tests}" \
	-append "$append" </dev/null >"$LOGS/$name.qemu.log" 2>&1
qrc=$?
set -e
secs=$(( $(date +%s) - start ))
[ -n "$show" ] && sed -e '/^HMMH-/d' "$tests"

set +e
python3 "$ROOT/scripts/parse-results.py" --name "$name" --stages "$stages" \
	--console "$console" --tests "$tests" --qemu-rc "$qrc" --seconds "$secs" \
	--timeout "$tmo" ${expect:+--expect "$expect"} ${xfail:+--xfail "$xfail"} \
	--require-coherent --json "$LOGS/$name.json"
rc=$?
set -e
exit $rc
