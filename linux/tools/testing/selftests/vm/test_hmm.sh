#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the HMM selftests (hmm-tests) against the test_hmm dummy device.
#
# Usage:
#   test_hmm.sh [hmm-tests options...]
#   test_hmm.sh smoke [SPM_ADDR_DEV0 SPM_ADDR_DEV1] [hmm-tests options...]
#
# The module is loaded, hmm-tests (found next to this script) runs with the
# remaining arguments, and the module is unloaded again.  Giving both
# special purpose memory addresses also creates the device coherent nodes
# /dev/hmm_dmirror2 and 3; without them their tests are skipped.  "smoke"
# is accepted for compatibility with older callers and changes nothing else.
#
# Exit status: that of hmm-tests; 4 (kselftest skip) when a prerequisite is
# missing; 1 when the module cannot be loaded or unloaded.

ksft_skip=4
module=test_hmm

dir=$(dirname "$0")
tests=$dir/hmm-tests

skip()
{
	echo "$0: SKIP: $*" >&2
	exit "$ksft_skip"
}

usage()
{
	sed -n 's/^#   //p' "$0" >&2
	exit 1
}

spm0=
spm1=
if [ "$1" = "smoke" ]; then
	shift
	case "$1" in
	[0-9]*)
		[ $# -ge 2 ] || usage
		spm0=$1
		spm1=$2
		shift 2
		;;
	esac
fi
case "$1" in
-h|--help|help)
	usage
	;;
esac

[ "$(id -u)" -eq 0 ] || skip "must run as root"
[ -x "$tests" ] || skip "$tests not found or not executable"
command -v modprobe >/dev/null 2>&1 || skip "modprobe not available"

# Is the module installed at all?  Works with kmod and busybox alike.
module_installed()
{
	[ -d "/sys/module/$module" ] && return 0
	find "/lib/modules/$(uname -r)" -name "$module.ko*" 2>/dev/null |
		grep -q .
}
module_installed || skip "module $module not installed"

# A leftover instance would run with stale parameters.
if [ -d "/sys/module/$module" ]; then
	modprobe -r "$module" || {
		echo "$0: cannot unload the already loaded $module" >&2
		exit 1
	}
fi

if [ -n "$spm0" ]; then
	echo "Loading $module with spm_addr_dev0=$spm0 spm_addr_dev1=$spm1"
	modprobe "$module" spm_addr_dev0="$spm0" spm_addr_dev1="$spm1"
else
	modprobe "$module"
fi || {
	echo "$0: cannot load $module" >&2
	exit 1
}

"$tests" "$@"
rc=$?

if ! modprobe -r "$module"; then
	echo "$0: cannot unload $module" >&2
	[ "$rc" -ne 0 ] || rc=1
fi

exit "$rc"
