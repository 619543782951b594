#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# docs.sh
#
# Builds the mm book of our tree with the kernel's own
# "make SPHINXDIRS=mm htmldocs" (Debian's python3-sphinx and
# python3-sphinx-rtd-theme), out of tree in build/obj-docs, and fails on
#   - any warning that mentions hmm (Documentation/mm/hmm.rst, the
#     kernel-doc of include/linux/hmm.h and mm/hmm.c, the sample it
#     includes);
#   - any warning the pristine base's mm book does not also have.  Built
#     alone, the mm book of 6.1 has a few warnings of its own (references
#     into other books); those are compared away, every new one fails.
# The sample code the document includes (samples/hmm/hmm_mirror_sample.c)
# is compiled by the ours kernel build: configs/ours.config sets
# CONFIG_SAMPLE_HMM_MIRROR=m.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

command -v sphinx-build >/dev/null || die "sphinx-build missing: run 'make deps'"

# build VARIANT: the mm book of build/src-VARIANT; prints its warnings,
# with the tree's path and line numbers taken out, one per line.
build()
{
	local v=$1 src obj log

	src=$(src_dir "$v")
	obj=$BUILD/obj-docs${2:-}
	log=$obj/htmldocs.log
	bash "$ROOT/scripts/prepare-tree.sh" "$v" >/dev/null || die "prepare-tree.sh $v failed"
	# Sphinx only re-reads changed documents and would not repeat the
	# warnings of the others: always build the book from scratch.
	rm -rf "$obj/Documentation/output"
	mkdir -p "$obj"
	if ! make -C "$src" O="$obj" SPHINXDIRS=mm htmldocs >"$log" 2>&1; then
		tail -20 "$log" >&2
		die "make SPHINXDIRS=mm htmldocs failed for $v, see $log"
	fi
	grep -E 'WARNING|ERROR|[Ww]arning:|[Ee]rror:' "$log" |
		sed -E -e "s#$src/##g" -e 's#:[0-9]+:#:#g' -e 's#line [0-9]+#line N#g' | sort -u
}

base=$(build pristine -pristine) || exit 1
ours=$(build ours) || exit 1
new=$(comm -13 <(echo "$base") <(echo "$ours") | sed '/^$/d')
hmm=$(echo "$ours" | grep -i hmm)
echo "docs: mm book built in $BUILD/obj-docs/Documentation/output/mm" \
	"($(echo "$ours" | sed '/^$/d' | wc -l) warnings, $(echo "$base" | sed '/^$/d' | wc -l) in the pristine base)"
if [ -n "$new$hmm" ]; then
	printf '%s\n' "$new" "$hmm" | sed '/^$/d' | sort -u | sed 's/^/  /'
	echo "docs: FAIL, warnings above are new or mention hmm"
	exit 1
fi
echo "docs: no new warning, none mentioning hmm"
