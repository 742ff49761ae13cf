#!/bin/sh
# Is the append rate flat?  tools/bench-growth.sh measures each size in
# turn, minutes apart, and this machine's speed moves by more than the
# effect in that time.  This script measures a small log and a large one
# alternately, several rounds, so each large figure has small ones taken
# just before and just after it:
#
#   small   a log of 10,000 entries, restored from a copy before each
#           round (so it stays that size);
#   large   a log of LARGE entries (default 10 million), bulk-loaded
#           once with keytrail-bench-store --logd, as bench-growth.sh
#           does; it grows by the appends of each round.
#
# Each measurement is keytrail bench append: KT_GROWTH_APPENDS (default
# 131072) signed submissions over 64 connections, every proof checked.
# Printed: each round's rates (with the batches' steps from /metrics),
# and the large rate as a ratio to the mean of the small rates around it.
#
#   tools/bench-growth-ab.sh [LARGE] [ROUNDS]     (10000000, 3)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
. "$top/tools/bench-lib.sh"
large=${1:-10000000}
rounds=${2:-3}
appends=${KT_GROWTH_APPENDS:-131072}
tmp=$(mktemp -d /tmp/kt-growth-ab-XXXXXX)
logd_pid=

trap bench_cleanup EXIT INT TERM

bench_prepare bench-growth-ab logd/keytrail-logd tools/keytrail \
    tools/keytrail-bench-store
port=$(bench_free_port)
url="http://127.0.0.1:$port"
bench_idle_check bench-growth-ab

start() {
	bench_logd_start "$1" bench-growth-ab
}

stop() {
	bench_logd_stop
}

# A copy of a data directory whose SoftHSM configuration names its own
# token directory.
copy() {
	rm -rf "$2"
	cp -a "$1" "$2"
	sed -i "s|^directories.tokendir = .*|directories.tokendir = $2/hsm/tokens|" \
	    "$2/hsm/softhsm2.conf"
}

# Appends to the log in $1; prints the rate.  Each batch's figures go to
# $tmp/steps.txt (bench_batch_steps) for say().
measure() {
	start "$1"
	_before=$(bench_batch_counters)
	"$build/tools/keytrail" bench append --url "$url" --data "$1" \
	    -n "$appends" -c 64 >"$tmp/append.txt"
	bench_batch_steps "$_before" "$(bench_batch_counters)" >"$tmp/steps.txt"
	stop
	grep -q "appended and proven   $appends of $appends" "$tmp/append.txt" || {
		echo "bench-growth-ab: appends failed" >&2
		cat "$tmp/append.txt" >&2
		exit 1
	}
	awk '/durable appends/ { print $3 }' "$tmp/append.txt"
}

# One line of results: the log, its rate, and per batch its entries and
# milliseconds adding / moving index rows / checkpoint / commit.
say() {
	echo "$1 $2 (per batch: $(cat "$tmp/steps.txt"))"
}

# One development setup, map raised to 32 GiB, then the two logs.
start "$tmp/small"
stop
sed -i 's/"map_size_mib": [0-9]*/"map_size_mib": 32768/' \
    "$tmp/small/keytrail.json"
copy "$tmp/small" "$tmp/large"
"$build/tools/keytrail-bench-store" --logd "$tmp/small" 10000 1024 \
    >"$tmp/load.txt"
copy "$tmp/small" "$tmp/small0"
"$build/tools/keytrail-bench-store" --logd "$tmp/large" "$large" 1024 \
    >"$tmp/load.txt"

echo "appends/s, small log (10,000 entries) and large log ($large), in turns"
copy "$tmp/small0" "$tmp/small"
prev=$(measure "$tmp/small")
say small "$prev"
r=1
while [ "$r" -le "$rounds" ]; do
	big=$(measure "$tmp/large")
	say large "$big"
	copy "$tmp/small0" "$tmp/small"
	next=$(measure "$tmp/small")
	say small "$next"
	echo "$prev $big $next" | awk -v r="$r" '{
		printf "round %d: large / mean of the small runs around it = %.2fx\n",
		    r, $2 / (($1 + $3) / 2) }'
	prev=$next
	r=$((r + 1))
done
