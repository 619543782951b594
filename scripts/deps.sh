#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install every Debian package the harness needs.  Idempotent: apt is only
# consulted when something is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

pkgs=(
	linux-source-6.1	# the base
	build-essential bc bison flex libelf-dev libssl-dev dwarves
	cpio kmod xz-utils rsync python3 ccache
	busybox-static		# the guest's userland
	qemu-system-x86		# TCG guest
	sparse			# C=1 checks
	python3-sphinx python3-sphinx-rtd-theme	# make htmldocs (docs step)
	clang lld llvm		# LLVM=1 build of series-check
	git			# make series, series-check
	python3-ply python3-git	# checkpatch's spdxcheck.py in series-check
	libc6-dev		# static test binaries
	# the arm64 guest (make ... ARCH=arm64, check step arm64)
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
	log "installing: ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ -f "$BASE_TARBALL" ] || die "base tarball $BASE_TARBALL missing after install"

# The arm64 guest's busybox: Debian's busybox-static for arm64, unpacked
# into build/ (the package cannot be installed beside the host's own).
bb=$BUILD/deps/arm64/bin/busybox
if [ ! -x "$bb" ]; then
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		log "adding the arm64 architecture to dpkg"
		$SUDO dpkg --add-architecture arm64
		$SUDO apt-get update -q
	fi
	dl=$BUILD/deps/dl
	rm -rf "$dl"
	mkdir -p "$dl"
	# apt's sandbox user cannot write into build/: download as ourselves.
	(cd "$dl" && apt-get download -q -o APT::Sandbox::User=root busybox-static:arm64) ||
		die "cannot download busybox-static:arm64"
	dpkg-deb -x "$dl"/busybox-static_*_arm64.deb "$BUILD/deps/arm64"
	rm -rf "$dl"
	[ -x "$bb" ] || die "no busybox in busybox-static:arm64"
fi
echo "deps: ok (${#pkgs[@]} packages present, ${#missing[@]} installed now)"
