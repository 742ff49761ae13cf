#!/bin/sh
# Installs the Debian packages keytrail needs to build, test and run, but
# only those that are missing, and says what it is doing.  Safe to rerun.
#
#   tools/install-deps.sh            build, test and run
#   tools/install-deps.sh --bench    also what the benchmarks use
set -eu

pkgs="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
libssl-dev openssl liblmdb-dev lmdb-utils libevent-dev libjansson-dev
softhsm2 libp11-dev libp11-kit-dev p11-kit opensc libcmocka-dev
zlib1g-dev curl jq libtcmalloc-minimal4"
# The benchmarks also drive wrk and nginx (tools/bench-logd.sh).
if [ "${1:-}" = "--bench" ]; then
	pkgs="$pkgs wrk nginx-light python3"
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all build and test packages are present"
	exit 0
fi

echo "install-deps: installing missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: need root (or sudo) to install:$missing" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-deps: done"
