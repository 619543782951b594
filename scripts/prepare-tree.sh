#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# prepare-tree.sh VARIANT
#
# Lays out build/src-VARIANT from the base:
#   pristine: the base exactly as Debian ships it;
#   ours:     the base, then every file under linux/ copied over its in-tree
#             path, then patches/ applied in the order of patches/series.
#
# The tree is assembled afresh in a staging directory on every run and then
# synchronised into build/src-VARIANT so that only files whose content
# changed get a new mtime: incremental kernel builds stay incremental and
# nothing in build/ is ever edited by hand.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:?usage: prepare-tree.sh ours|pristine}
check_variant "$variant"

# Never lay out a tree while another script builds or lays out one.
exec 9>"${HMMH_BUILD_LOCK:-/tmp/hmm-series-kbuild.lock}"
if ! flock -n 9; then
	log "waiting for another tree or kernel build to finish"
	flock 9
fi

# 1. The base, extracted once per tarball version.
stamp=$BUILD/base.stamp
want=$(stat -c '%s %Y' "$BASE_TARBALL" 2>/dev/null) ||
	die "no base tarball at $BASE_TARBALL: run 'make deps'"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -d "$BASE_DIR" ]; then
	log "extracting $BASE_TARBALL"
	rm -rf "$BASE_DIR" "$BUILD/base.tmp"
	mkdir -p "$BUILD/base.tmp"
	tar xf "$BASE_TARBALL" -C "$BUILD/base.tmp"
	mv "$BUILD/base.tmp/linux-source-6.1" "$BASE_DIR"
	rmdir "$BUILD/base.tmp"
	chmod -R a-w "$BASE_DIR"
	# A new base invalidates every tree and object built from the old one.
	rm -rf "$BUILD"/src-* "$BUILD"/obj-* "$BUILD"/*.changed
	echo "$want" >"$stamp"
fi
echo "base: Linux $(base_version) from $(basename "$BASE_TARBALL")"

# 2. A fresh staging copy: a hard-link farm of the base.  Files we replace
# or patch are first turned into private copies so the base is never
# written through a link.
stage=$BUILD/stage-$variant
src=$(src_dir "$variant")
rm -rf "$stage"
# "$BASE_DIR/.": a build/base that is a symlink to another tree's base
# must be linked file by file, never copied as the symlink itself (the
# stage would then be that other base, and every edit would land in it).
mkdir "$stage"
cp -al "$BASE_DIR/." "$stage"
[ -L "$stage" ] && die "$stage is a symlink: refusing to write through it"
chmod -R u+w "$stage"

changed=()		# files in the stage that differ from the base

privatize()
{
	local f=$stage/$1

	mkdir -p "$(dirname "$f")"
	if [ -e "$f" ]; then
		cp --remove-destination "$f" "$f.hmmh-tmp"
		mv "$f.hmmh-tmp" "$f"
	fi
}

if [ "$variant" = ours ]; then
	# Our own files over their in-tree paths.
	while IFS= read -r -d '' f; do
		rel=${f#"$ROOT"/linux/}
		privatize "$rel"
		cp "$f" "$stage/$rel"
		changed+=("$rel")
	done < <(find "$ROOT/linux" -type f -print0 | sort -z)

	# Then the patches, in series order.
	series=$ROOT/patches/series
	if [ -f "$series" ]; then
		n=0
		while read -r p _; do
			case "$p" in ''|'#'*) continue ;; esac
			pf=$ROOT/patches/$p
			[ -f "$pf" ] || die "patches/series names $p, which does not exist"
			while read -r rel; do
				privatize "$rel"
				changed+=("$rel")
			done < <(sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$pf")
			if ! out=$(patch -d "$stage" -p1 -N -s --no-backup-if-mismatch -r - <"$pf" 2>&1); then
				printf '%s\n' "$out" >&2
				die "patch $p does not apply"
			fi
			n=$((n + 1))
		done <"$series"
		echo "series: $n patches applied"
	fi
	echo "series: ${#changed[@]} files replaced or patched"
fi

# 3. Keep the mtime of every file whose content did not change since the
# last run (files we changed then or change now), synchronise, and give a
# new mtime to files restored to the base's content, which rsync copies
# with the base's old mtime.
prev=$BUILD/$variant.changed
touch "$prev"
mapfile -t before <"$prev"
if [ -d "$src" ]; then
	for rel in "${changed[@]}" "${before[@]}"; do
		if [ -f "$src/$rel" ] && [ -f "$stage/$rel" ] && cmp -s "$src/$rel" "$stage/$rel"; then
			privatize "$rel"
			touch -r "$src/$rel" "$stage/$rel"
		fi
	done
fi
# Objects of the layout before obj_dir() moved them into the tree.
rm -rf "$BUILD/obj-$variant" "$BUILD/obj-$variant"-*
mkdir -p "$src"
list=$BUILD/sync-$variant.list
# The objects built inside the tree (lib.sh, obj_dir) are not the base's
# and stay.
rsync -a --delete --exclude='/obj/' --exclude='/obj-*/' --out-format='%n' \
	"$stage/" "$src/" >"$list"
for rel in "${before[@]}"; do
	if grep -qxF "$rel" "$list"; then
		touch --no-create "$src/$rel"
	fi
done
printf '%s\n' "${changed[@]}" | sed '/^$/d' >"$prev"
echo "tree: $src ($(grep -vc '/$' "$list") files updated)"
rm -rf "$stage"
