# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the harness scripts.  Sourced, never executed.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOGS=$BUILD/logs
BASE_TARBALL=${BASE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
BASE_DIR=$BUILD/base
JOBS=${JOBS:-$(nproc)}

mkdir -p "$BUILD" "$LOGS"

log()
{
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die()
{
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# The kernel version of the extracted base, e.g. 6.1.192.
base_version()
{
	local mf=$BASE_DIR/Makefile v p s

	[ -f "$mf" ] || return 1
	v=$(sed -n 's/^VERSION = //p' "$mf")
	p=$(sed -n 's/^PATCHLEVEL = //p' "$mf")
	s=$(sed -n 's/^SUBLEVEL = //p' "$mf")
	echo "$v.$p.$s"
}

# Validate a variant name: "ours" is the base with our series laid on
# top, "pristine" is the unmodified base.
check_variant()
{
	case "$1" in
	ours|pristine) ;;
	*) die "unknown variant '$1' (want ours or pristine)" ;;
	esac
}

src_dir() { echo "$BUILD/src-$1"; }
# Objects live one level inside their source tree, build/src-VARIANT/obj or
# build/src-VARIANT/obj-FLAVOUR: kbuild then names the source tree ".."
# rather than by its absolute path, so the compiler sees the same command
# lines and the same preprocessed text in both trees, and ccache serves
# every object our series does not touch to the second variant built.
obj_dir() { echo "$BUILD/src-$1/obj${2:+-$2}"; }
