#!/bin/sh
# Did a change make signing faster?  The machine's speed moves by more
# than most changes between two runs of bench-logd.sh, so this script
# runs two builds' keytrail-logd side by side, each on a fresh data
# directory, and measures POST /v1/sign on each in turns: ROUNDS rounds,
# the order swapped every round, with the raw C_Sign rate of a session
# copy of the same key (keytrail-bench-hsm, 2 threads, 2 s) just before
# and just after each round.  Printed per round: both rates, each as a
# ratio to the mean raw rate, and this build's rate over the other's.
# With --append it measures durable appends (POST /v1/entries, keytrail
# bench append) instead; the raw C_Sign rate is still printed as a gauge
# of the machine's speed.
#
#   tools/bench-sign-ab.sh [--append] OTHER_BUILD [ROUNDS] [N] [CONNS]
#       OTHER_BUILD  the build directory of another revision (only its
#                    logd/keytrail-logd is used); this tree's build/ is
#                    the other side, and its keytrail client drives both
#       defaults     4 rounds, 30000 requests, 128 connections
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
. "$top/tools/bench-lib.sh"
mode=sign what=signatures
if [ "${1:-}" = "--append" ]; then
	mode=append what=appends
	shift
fi
[ $# -ge 1 ] || {
	echo "usage: tools/bench-sign-ab.sh [--append] OTHER_BUILD [ROUNDS] [N]" \
	    "[CONNS]" >&2
	exit 2
}
other=$1
rounds=${2:-4}
n=${3:-30000}
conns=${4:-128}
[ -x "$other/logd/keytrail-logd" ] || {
	echo "bench-sign-ab: no $other/logd/keytrail-logd" >&2
	exit 1
}
tmp=$(mktemp -d /tmp/kt-sign-ab-XXXXXX)
pid_a= pid_b=

cleanup() {
	for p in $pid_a $pid_b; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

bench_prepare bench-sign-ab logd/keytrail-logd tools/keytrail \
    tools/keytrail-bench-hsm
port_a=$(bench_free_port 1)
port_b=$(bench_free_port 2)
bench_idle_check bench-sign-ab
"$other/logd/keytrail-logd" --data "$tmp/a" --listen "127.0.0.1:$port_a" \
    --quiet 2>"$tmp/a.log" &
pid_a=$!
"$build/logd/keytrail-logd" --data "$tmp/b" --listen "127.0.0.1:$port_b" \
    --quiet 2>"$tmp/b.log" &
pid_b=$!
bench_wait_up "http://127.0.0.1:$port_a" "$tmp/a.log" bench-sign-ab
bench_wait_up "http://127.0.0.1:$port_b" "$tmp/b.log" bench-sign-ab

# rate SIDE COUNT: the signing (or appending) rate of side a (other) or
# b (this build).
rate() {
	eval "_port=\$port_$1"
	"$build/tools/keytrail" bench "$mode" --url "http://127.0.0.1:$_port" \
	    --data "$tmp/$1" -n "$2" -c "$conns" |
	    awk '/signatures  |durable appends  / { print $(NF - 1) }'
}
raw() {
	"$build/tools/keytrail-bench-hsm" "$tmp/b" default 2 2 |
	    awk '/raw C_Sign, session copy/ { print $5 }'
}

# Warm both up: first signatures build each key's tables.
rate a 2000 >/dev/null
rate b 2000 >/dev/null
echo "bench-sign-ab: $other (other) against $build (this), $n $what" \
    "at $conns connections, $rounds rounds"
r=1
while [ "$r" -le "$rounds" ]; do
	r0=$(raw)
	if [ $((r % 2)) -eq 1 ]; then
		sa=$(rate a "$n")
		sb=$(rate b "$n")
	else
		sb=$(rate b "$n")
		sa=$(rate a "$n")
	fi
	r1=$(raw)
	echo "$r $r0 $r1 $sa $sb" | awk '{ m = ($2 + $3) / 2;
	    printf "  round %d: raw %d, %d/s; other %d/s (%.3fx raw), " \
	        "this %d/s (%.3fx raw); this / other %.3f\n",
	        $1, $2, $3, $4, $4 / m, $5, $5 / m, $5 / $4 }'
	r=$((r + 1))
done
