# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the harness scripts.  Sourced, never executed.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOGS=$BUILD/logs
BASE_TARBALL=${BASE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
BASE_DIR=$BUILD/base
JOBS=${JOBS:-$(nproc)}
# ccache's depend mode: on a miss it compiles once and takes the headers
# from the dependency file kbuild asks for (-Wp,-MMD), instead of running
# the preprocessor over every file as well.  A hit needs every header
# unchanged, as in direct mode; the only headers -MMD leaves out are the
# compiler's own, and ccache hashes the compiler.  CCACHE_NODEPEND=1 in
# the environment turns it off.
[ -n "${CCACHE_NODEPEND:-}" ] || export CCACHE_DEPEND=1

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

# The architecture built and booted: x86_64, or arm64 with 64 KiB pages
# (cross built, qemu-system-aarch64).  HMMH_ARCH wins over ARCH, which
# "make ... ARCH=arm64" puts in the environment.  BUSYBOX is Debian's static
# busybox for the guest: the host's own, or for arm64 the one deps.sh
# unpacks from busybox-static:arm64.
HMMH_ARCH=${HMMH_ARCH:-${ARCH:-x86_64}}
case "$HMMH_ARCH" in
x86_64|x86)
	HMMH_ARCH=x86_64 ARCH_SFX= CROSS= KIMAGE=bzImage
	KIMAGE_PATH=arch/x86/boot/bzImage BUSYBOX=/bin/busybox
	;;
arm64|aarch64)
	HMMH_ARCH=arm64 ARCH_SFX=-arm64 CROSS=aarch64-linux-gnu- KIMAGE=Image
	KIMAGE_PATH=arch/arm64/boot/Image BUSYBOX=$BUILD/deps/arm64/bin/busybox
	;;
*)
	die "unknown architecture '$HMMH_ARCH' (want x86_64 or arm64)"
	;;
esac

src_dir() { echo "$BUILD/src-$1"; }
# Objects live one level inside their source tree, build/src-VARIANT/obj or
# build/src-VARIANT/obj-FLAVOUR: kbuild then names the source tree ".."
# rather than by its absolute path, so the compiler sees the same command
# lines and the same preprocessed text in both trees, and ccache serves
# every object our series does not touch to the second variant built.
# Another architecture's objects have its name in the directory's:
# obj-arm64[-FLAVOUR].
obj_dir() { echo "$BUILD/src-$1/obj$ARCH_SFX${2:+-$2}"; }
# The guest's initramfs and test programs: build/guest-VARIANT[-arm64][-FLAVOUR].
guest_dir() { echo "$BUILD/guest-$1$ARCH_SFX${2:+-$2}"; }

# config_lost CONFIG FRAGMENT...: print each option the fragments ask for
# that CONFIG (a .config after olddefconfig) does not have, with what it has
# instead; the value asked for is the one the last fragment naming the
# option gives, as merge_config applies them.  "CONFIG_X=n" asks for X off,
# which .config writes "# CONFIG_X is not set" or leaves out.
config_lost()
{
	local config=$1 line opt
	local -A want=()
	local -a order=()

	shift
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		opt=${line%%=*}
		[ -n "${want[$opt]+set}" ] || order+=("$opt")
		want[$opt]=$line
	done < <(cat "$@")
	for opt in "${order[@]}"; do
		line=${want[$opt]}
		case "$line" in
		*=n) grep -q "^$opt=[ym]" "$config" || continue ;;
		*) ! grep -qxF "$line" "$config" || continue ;;
		esac
		echo "$line (got $(grep -E "^(# )?$opt[= ]" "$config" || echo unset))"
	done
}
