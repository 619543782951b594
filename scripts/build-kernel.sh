#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-kernel.sh VARIANT [FLAVOUR [OBJECTS...]]
#
# Configures and builds build/src-VARIANT with its objects apart (O=), in
# build/src-VARIANT/obj[-FLAVOUR] (lib.sh, obj_dir): tinyconfig, then the
# fragments below merged in, then olddefconfig, then a check that every
# option a fragment asked for survived.  Builds the boot image (bzImage;
# Image for arm64), the modules
# (installed to obj/modinst) and the uapi headers (obj/usr/include) the test
# programs compile against.
#
#   fragments: configs/base.config configs/ARCH.config configs/hmm.config
#              (ARCH: x86_64, or arm64 with 64 KiB pages, see lib.sh)
#              + configs/ours.config       (ours only: options our series adds;
#                                           not for a flavour marked alike)
#              + configs/stress.config     (both variants: what the reliability
#                                           stages need: brd, ext2, swap)
#              + configs/FLAVOUR.config    (e.g. debug)
#              + configs/FLAVOUR.ARCH.config (if any: the flavour's options
#                                           for one architecture)
# A later fragment overrides an earlier one, as merge_config does.
#
# With OBJECTS, only those make targets are built (e.g. mm/hmm.o), nothing
# is installed: a compile test.
#
# The first build of ours in an object directory starts from a copy of
# pristine's, when pristine's of the same architecture and flavour exists
# (HMMH_NO_SEED=1: not); the comment before the copy says why that is exact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:?usage: build-kernel.sh ours|pristine [flavour]}
flavour=${2:-}
shift $(( $# < 2 ? $# : 2 ))
objects=("$@")
check_variant "$variant"
src=$(src_dir "$variant")
obj=$(obj_dir "$variant" "$flavour")
[ -f "$src/Makefile" ] || die "$src missing: run prepare-tree.sh $variant first"

# A flavour whose fragment has the line "# hmmh: both variants alike" (the
# bench's) leaves configs/ours.config out: both variants then have the same
# configuration, and ccache serves ours every object the series does not
# change straight from pristine's build.
alike=
if [ -n "$flavour" ]; then
	[ -f "$ROOT/configs/$flavour.config" ] || die "no configs/$flavour.config"
	grep -qx '# hmmh: both variants alike' "$ROOT/configs/$flavour.config" && alike=1
fi
frags=("$ROOT/configs/base.config" "$ROOT/configs/$HMMH_ARCH.config" "$ROOT/configs/hmm.config")
[ "$variant" = ours ] && [ -z "$alike" ] && [ -f "$ROOT/configs/ours.config" ] &&
	frags+=("$ROOT/configs/ours.config")
frags+=("$ROOT/configs/stress.config")
if [ -n "$flavour" ]; then
	frags+=("$ROOT/configs/$flavour.config")
	[ ! -f "$ROOT/configs/$flavour.$HMMH_ARCH.config" ] ||
		frags+=("$ROOT/configs/$flavour.$HMMH_ARCH.config")
fi

export CCACHE_BASEDIR=$BUILD
kmake=(make -s -C "$src" O="$obj" ARCH="$HMMH_ARCH" ${CROSS:+CROSS_COMPILE="$CROSS"}
	CC="ccache ${CROSS}gcc" HOSTCC="ccache gcc" -j"$JOBS")

# One kernel build at a time on this machine (2 cores): wait for others.
exec 9>"${HMMH_BUILD_LOCK:-/tmp/hmm-series-kbuild.lock}"
if ! flock -n 9; then
	log "waiting for another kernel build to finish"
	flock 9
fi

# A first build of ours starts from pristine's objects of the same
# architecture and flavour, when pristine has been configured there: both
# trees are the same base laid out by prepare-tree.sh, so those objects are
# ours' too except where the series changed a file, and kbuild's own
# incremental rules then rebuild just those files, what includes them and
# what uses an option only ours has.  Every file the series changed
# (build/ours.changed) is touched after the copy, so it is newer than any
# object copied whichever tree was laid out first.  objtool comes along
# (every object depends on its binary); its dependency lists name the
# source tree by absolute path and are pointed at ours.  Installed modules
# and headers are left behind and made anew.
seed=$(obj_dir pristine "$flavour")
if [ "$variant" = ours ] && [ -z "${HMMH_NO_SEED:-}" ] && [ ! -e "$obj/.config" ] &&
	[ -f "$seed/.config" ] && [ -f "$BUILD/ours.changed" ]; then
	log "seeding $obj with pristine's objects"
	mkdir -p "$obj"
	rsync -a --exclude='/modinst/' --exclude='/usr/' --exclude='*.log' "$seed/" "$obj/"
	# No objtool on arm64: nothing under tools/ then.
	[ ! -d "$obj/tools" ] ||
		find "$obj/tools" -name '.*.cmd' -exec sed -i "s#$(src_dir pristine)/#$src/#g" {} +
	(cd "$src" && sed '/^$/d' "$BUILD/ours.changed" | xargs -r -d '\n' touch --no-create --)
fi

mkdir -p "$obj"
log "configuring $variant ($HMMH_ARCH${flavour:+, $flavour}) in $obj"
"${kmake[@]}" tinyconfig >/dev/null
(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "${frags[@]}" >"$obj/merge.log" 2>&1) ||
	die "merge_config failed, see $obj/merge.log"
"${kmake[@]}" olddefconfig >/dev/null

# Every option asked for must have survived olddefconfig (lib.sh).
mapfile -t lost < <(config_lost "$obj/.config" "${frags[@]}")
if [ "${#lost[@]}" -gt 0 ]; then
	printf '  %s\n' "${lost[@]}" >&2
	die "${#lost[@]} requested config option(s) did not survive olddefconfig"
fi
echo "config: $(cat "${frags[@]}" | grep -o '^CONFIG_[A-Za-z0-9_]*' | sort -u | wc -l) requested options all present"

start=$(date +%s)
if [ "${#objects[@]}" -gt 0 ]; then
	log "compiling ${#objects[@]} objects of $variant${flavour:+ ($flavour)}"
	if ! "${kmake[@]}" "${objects[@]}" >"$obj/build.log" 2>&1; then
		grep -E 'error|Error' "$obj/build.log" | head -30 >&2
		die "compile test failed, see $obj/build.log"
	fi
	grep -E '(^|: )warning:' "$obj/build.log" >"$obj/warnings.log" || true
	echo "compile: ${#objects[@]} objects of $variant${flavour:+ ($flavour)} in $(( $(date +%s) - start ))s, $(wc -l <"$obj/warnings.log") compiler warnings"
	exit 0
fi

log "building $variant${flavour:+ ($flavour)}"
if ! "${kmake[@]}" "$KIMAGE" modules >"$obj/build.log" 2>&1; then
	grep -E 'error|Error' "$obj/build.log" | head -30 >&2
	die "kernel build failed, see $obj/build.log"
fi
rm -rf "$obj/modinst"
"${kmake[@]}" INSTALL_MOD_PATH="$obj/modinst" INSTALL_MOD_STRIP=1 modules_install >>"$obj/build.log" 2>&1 ||
	die "modules_install failed, see $obj/build.log"
"${kmake[@]}" headers_install >>"$obj/build.log" 2>&1 || die "headers_install failed"
grep -E '(^|: )warning:' "$obj/build.log" >"$obj/warnings.log" || true
echo "kernel: $variant ($HMMH_ARCH${flavour:+, $flavour}) $(cat "$obj/include/config/kernel.release") built in $(( $(date +%s) - start ))s, $(wc -l <"$obj/warnings.log") compiler warnings"
