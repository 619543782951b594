#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-guest.sh VARIANT [FLAVOUR]
#
# Builds the guest's initramfs in build/guest-VARIANT[-arm64][-FLAVOUR]/
# (lib.sh, guest_dir) for the architecture of lib.sh's HMMH_ARCH: Debian's
# static busybox, scripts/guest-init.sh as /init, the kernel's modules, and
# statically linked test programs:
#   /tests/conformance/hmm-tests  the BASE's unmodified hmm-tests.c, built
#                                 against the base's own uapi header, so it
#                                 checks our kernel against upstream's ABI;
#   /tests/selftests/             the VARIANT tree's hmm-tests.c (ours once
#                                 the series replaces it) and test_hmm.sh;
#   /tests/reload/hmm-reload      scripts/guest/hmm-reload.c: module
#                                 load/unload cycles with device pages live;
#   /tests/reliability/hmm-*      scripts/guest/hmm-{storm,oom,faultinj,
#                                 fuzz,dataloss}.c: the reliability stages
#                                 (ours only).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:?usage: build-guest.sh ours|pristine [flavour]}
flavour=${2:-}
check_variant "$variant"
src=$(src_dir "$variant")
obj=$(obj_dir "$variant" "$flavour")
guest=$(guest_dir "$variant" "$flavour")
root=$guest/root
[ -f "$obj/$KIMAGE_PATH" ] || die "no kernel in $obj: build it first"
[ -x "$BUSYBOX" ] || die "no $HMMH_ARCH busybox at $BUSYBOX: run 'make deps'"

rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,tests/conformance,tests/selftests,lib}
cp "$BUSYBOX" "$root/bin/busybox"
install -m 0755 "$ROOT/scripts/guest-init.sh" "$root/init"
cp -a "$obj/modinst/lib/modules" "$root/lib/"

# The selftests' own flags (vm/Makefile) plus static linking.
cflags=(-O2 -Wall -static -no-pie -isystem "$obj/usr/include")
ldlibs=(-lrt -lpthread)

# build_test TREE SOURCE OUTPUT [harness]: TREE gives the include paths;
# "harness" wraps a kselftest_harness program in harness-filter.c so the
# guest can run a subset ($HMMH_FILTER), the program itself unmodified.
build_test()
{
	local tree=$1 srcf=$2 out=$3 what=(${4:+-DHMMH_SOURCE=\"$2\" "$ROOT/scripts/guest/harness-filter.c"})

	[ "${#what[@]}" -gt 0 ] || what=("$srcf")
	if ! "${CROSS}gcc" "${cflags[@]}" -I "$tree" -I "$tree/tools/testing/selftests" \
		"${what[@]}" "${ldlibs[@]}" -o "$out" >"$out.log" 2>&1; then
		cat "$out.log" >&2
		die "cannot build $srcf"
	fi
	[ -s "$out.log" ] && log "warnings building $srcf: see $out.log"
	mv "$out.log" "$guest/$(basename "$out").$(basename "$(dirname "$out")").log"
}

build_test "$BASE_DIR" "$BASE_DIR/tools/testing/selftests/vm/hmm-tests.c" "$root/tests/conformance/hmm-tests" harness
build_test "$src" "$src/tools/testing/selftests/vm/hmm-tests.c" "$root/tests/selftests/hmm-tests" harness
# Load/unload cycles with device pages mapped (built against the tree's
# uapi header).
mkdir -p "$root/tests/reload"
build_test "$src" "$ROOT/scripts/guest/hmm-reload.c" "$root/tests/reload/hmm-reload"
# The reliability programs (scripts/guest/hmmh.h is their shared header)
# use our uapi (HMM_DMIRROR_STATS): ours only.
if [ "$variant" = ours ]; then
	mkdir -p "$root/tests/reliability"
	for prog in storm oom faultinj fuzz dataloss; do
		build_test "$src" "$ROOT/scripts/guest/hmm-$prog.c" "$root/tests/reliability/hmm-$prog"
	done
fi
if [ "$variant" = ours ] && [ -f "$ROOT/linux/tools/testing/selftests/vm/test_hmm.sh" ]; then
	install -m 0755 "$ROOT/linux/tools/testing/selftests/vm/test_hmm.sh" "$root/tests/selftests/test_hmm.sh"
fi

# Optional payload of scripts/bench.sh (benchmark, its module), at /bench.
if [ -n "${HMMH_BENCH_PAYLOAD:-}" ]; then
	mkdir -p "$root/bench"
	cp -a "$HMMH_BENCH_PAYLOAD/." "$root/bench/"
fi

(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$guest/initramfs.cpio.gz"
echo "guest: $guest/initramfs.cpio.gz ($(du -h "$guest/initramfs.cpio.gz" | cut -f1))"
