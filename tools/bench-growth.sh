#!/bin/sh
# Growth of keytrail-logd as a client sees it: one daemon, its log filled
# to each size in turn, and at each size, through HTTP on 127.0.0.1:
#
#   proofs    latency of single inclusion-proof requests at random indexes
#             (wrk, one connection, after a warm-up pass), p50 / p99, and
#             the p50 as a ratio to the baseline measured just before and
#             after it: GET /checkpoint, the same HTTP path with no tree
#             walk (the machine's speed moves between sizes);
#   appends   keytrail bench append: durable appends through POST
#             /v1/entries with signature verification, every proof checked:
#             KT_GROWTH_APPENDS of them (default 131072, two runs of the
#             default index buffer, so that the window holds a run written
#             out and the merges it starts, docs/storage.md; KT_GROWTH_IXBUF
#             sets index_buffer_entries, default the daemon's);
#   batches   from the daemon's /metrics over the appends: entries per
#             batch, and the milliseconds per batch spent adding the
#             entries, moving index rows into index tables, making the
#             checkpoint and committing (fsync);
#   memory    the daemon's anonymous resident memory (LMDB's map is
#             file-backed and not counted);
#   disk      bytes of the log's LMDB files per entry.
#
# The log is filled between sizes by keytrail-bench-store --logd, which
# appends signature-sized entries to the stopped daemon's own log, signing
# every checkpoint with the daemon's key in its HSM (bulk load).
#
#   tools/bench-growth.sh [SIZE ...]     default: 10000 1000000 10000000
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
. "$top/tools/bench-lib.sh"
sizes=${*:-10000 1000000 10000000}
appends=${KT_GROWTH_APPENDS:-131072}
tmp=$(mktemp -d /tmp/kt-growth-XXXXXX)
data="$tmp/data"
logd_pid=

trap bench_cleanup EXIT INT TERM

bench_prepare bench-growth logd/keytrail-logd tools/keytrail \
    tools/keytrail-bench-store
port=$(bench_free_port)
url="http://127.0.0.1:$port"
bench_idle_check bench-growth

start() {
	bench_logd_start "$data" bench-growth
}

stop() {
	bench_logd_stop
}

tree_size() {
	curl -sf "$url/checkpoint" | sed -n 2p
}

# A wrk latency ("55.00us", "1.32ms", "2.01s") in microseconds.
wrk_us() {
	echo "$1" | awk '{ v = $1 + 0
		if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /[^mu]s$/) v *= 1e6
		print v }'
}

# The baseline of proof latency, measured next to it: p50 in microseconds
# of GET /checkpoint (the same HTTP path, no tree walk), one connection.
ckpt_p50() {
	wrk -t1 -c1 -d3s --latency "$url/checkpoint" >"$tmp/ck.txt"
	wrk_us "$(awk '$1 == "50%" { print $2 }' "$tmp/ck.txt")"
}

# First start: the development setup.  Room for ten million entries.
start
stop
sed -i 's/"map_size_mib": [0-9]*/"map_size_mib": 32768/' "$data/keytrail.json"
if [ -n "${KT_GROWTH_IXBUF:-}" ]; then
	sed -i "s/\"map_size_mib\": 32768/&, \"index_buffer_entries\": $KT_GROWTH_IXBUF/" \
	    "$data/keytrail.json"
fi

cat >"$tmp/proof.lua" <<'EOF'
local size = tonumber(os.getenv("KT_SIZE"))
math.randomseed(tonumber(os.getenv("KT_SEED")))
request = function()
	local i = math.random(0, size - 1)
	return wrk.format("GET", "/v1/proof/inclusion?index=" .. i ..
	    "&size=" .. size)
end
EOF

printf '%10s %14s %9s %10s %14s %12s %10s %30s\n' entries proof-p50/p99 \
    /ckpt-p50 appends/s append-p50/p99 disk-B/entry RSS-anon \
    'per batch: n add/index/ckpt/commit'

have=0
for want in $sizes; do
	if [ "$want" -gt "$have" ]; then
		"$build/tools/keytrail-bench-store" --logd "$data" \
		    $((want - have)) 1024 >"$tmp/load.txt"
	fi
	start
	size=$(tree_size)
	# Warm-up pass over other indexes, then the measured one, between
	# two runs of the baseline.
	KT_SIZE=$size KT_SEED=1 wrk -t1 -c4 -d3s -s "$tmp/proof.lua" "$url" \
	    >/dev/null
	ck1=$(ckpt_p50)
	KT_SIZE=$size KT_SEED=2 wrk -t1 -c1 -d5s --latency -s "$tmp/proof.lua" \
	    "$url" >"$tmp/wrk.txt"
	ck2=$(ckpt_p50)
	grep -q 'Non-2xx' "$tmp/wrk.txt" && {
		echo "bench-growth: proof requests failed" >&2
		cat "$tmp/wrk.txt" >&2
		exit 1
	}
	p50=$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.txt")
	rel=$(echo "$(wrk_us "$p50") $ck1 $ck2" |
	    awk '{ printf "%.2fx", $1 / (($2 + $3) / 2) }')
	p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.txt")
	disk=$(du -B1 -s "$data/log" | awk '{ print $1 }')
	before=$(bench_batch_counters)
	"$build/tools/keytrail" bench append --url "$url" --data "$data" \
	    -n "$appends" -c 64 >"$tmp/append.txt"
	steps=$(bench_batch_steps "$before" "$(bench_batch_counters)")
	rss=$(awk '/^RssAnon:/ { print $2 " " $3 }' "/proc/$logd_pid/status")
	rate=$(awk '/durable appends/ { print $3 }' "$tmp/append.txt")
	alat=$(awk '/latency p50/ { print $5 "/" $7 }' "$tmp/append.txt")
	grep -q "appended and proven   $appends of $appends" "$tmp/append.txt" || {
		echo "bench-growth: appends failed" >&2
		cat "$tmp/append.txt" >&2
		exit 1
	}
	printf '%10s %14s %9s %10s %14s %12s %10s %30s\n' "$size" \
	    "$p50/$p99" "$rel" "$rate" "$alat ms" $((disk / size)) "$rss" \
	    "$steps"
	have=$(tree_size)
	stop
done
