#!/bin/sh
# Benchmarks keytrail-logd on this machine.  Every figure is printed next to
# a baseline measured in the same run, because the machine is shared:
#
#   appends   keytrail bench append (durable appends through POST
#             /v1/entries, p50/p99 to the answer with the proof), next to
#             raw Ed25519 verification in the same process;
#   signs     keytrail bench sign (POST /v1/sign with the default key,
#             p50/p99), next to the raw SoftHSM C_Sign rate of the same
#             key from keytrail-bench-hsm, run just before and just after
#             (with the token's key object, and with a session copy);
#   reads     wrk on tiles and entry bundles from logd, and the very same
#             files (mirrored and verified by keytrail mirror) from nginx;
#             and wrk on inclusion proofs, next to the same nginx figure.
#
#   tools/bench-logd.sh [N] [SECONDS] [CONNS]
#             defaults: 30000 entries, 10 s, 128 client connections
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
. "$top/tools/bench-lib.sh"
n=${1:-30000}
secs=${2:-10}
conns=${3:-128}
tmp=$(mktemp -d /tmp/kt-bench-XXXXXX)
logd_pid= nginx_pid=

trap bench_cleanup EXIT INT TERM

"$top/tools/install-deps.sh" --bench
for tool in wrk nginx curl; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
		echo "bench-logd: $tool is missing (tools/install-deps.sh)" >&2
		exit 1
	}
done
[ -x "$build/logd/keytrail-logd" ] || {
	echo "bench-logd: build first (tools/test --quick)" >&2
	exit 1
}

p1=$(bench_free_port 1)
p2=$(bench_free_port 2)
bench_idle_check bench-logd

"$build/logd/keytrail-logd" --data "$tmp/data" --listen "127.0.0.1:$p1" \
    --quiet 2>"$tmp/logd.log" &
logd_pid=$!
bench_wait_up "http://127.0.0.1:$p1" "$tmp/logd.log" bench-logd

echo "== appends"
"$build/tools/keytrail" bench append --url "http://127.0.0.1:$p1" \
    --data "$tmp/data" -n "$n" -c "$conns"

echo "== signatures (POST /v1/sign, key default) and the raw HSM rate"
# The raw rate is measured just before and just after the signing run, and
# the ratio taken against their mean: the machine's speed drifts.
"$build/tools/keytrail-bench-hsm" "$tmp/data" default 3 2 | tee "$tmp/hsm.txt"
"$build/tools/keytrail" bench sign --url "http://127.0.0.1:$p1" \
    --data "$tmp/data" -n "$n" -c "$conns" | tee "$tmp/sign.txt"
"$build/tools/keytrail-bench-hsm" "$tmp/data" default 3 2 | tee -a "$tmp/hsm.txt"
# The baseline is C_Sign with the token's key object, as any PKCS#11 client
# signs; the daemon signs with a session copy (hsm.session_copies), whose
# raw rate is shown too.
raw=$(awk '/raw C_Sign, token object/ { t += $5; k++ } END { printf "%.0f", t / k }' "$tmp/hsm.txt")
copy=$(awk '/raw C_Sign, session copy/ { t += $5; k++ } END { printf "%.0f", t / k }' "$tmp/hsm.txt")
sig=$(awk '/signatures  / { print $2 }' "$tmp/sign.txt")
awk -v r="$raw" -v c="$copy" -v s="$sig" 'BEGIN {
	printf "  raw HSM C_Sign (token object), mean of before and after  %d /s\n", r
	printf "  raw HSM C_Sign (session copy), mean of before and after  %d /s\n", c
	printf "  signatures / raw C_Sign, token object  %.2fx  (goal >= 0.30)\n", s / r
	printf "  signatures / raw C_Sign, session copy  %.2fx\n", s / c }'

echo "== mirror (verifies every tile)"
# nginx workers run unprivileged: let them reach the mirror (the data
# directory inside keeps its own 0700).
chmod 0755 "$tmp"
"$build/tools/keytrail" mirror --url "http://127.0.0.1:$p1" --out "$tmp/www"

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $tmp/nginx/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	default_type application/octet-stream;
	sendfile on;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$p2;
		root $tmp/www;
	}
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
sleep 0.5

# The paths wrk walks: every full tile and bundle of the mirror.
(cd "$tmp/www" && find tile -type f | sort) >"$tmp/paths"
size=$(sed -n 2p "$tmp/www/checkpoint")
{
	echo 'local paths = {'
	sed 's|.*|"/&",|' "$tmp/paths"
	echo '}'
	echo 'local i = 0'
	echo 'request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end'
} >"$tmp/tiles.lua"
{
	echo "local size = $size"
	echo 'local i = 0'
	echo 'request = function() i = (i * 7919 + 1) % size; return wrk.format("GET", "/v1/proof/inclusion?index=" .. i .. "&size=" .. size) end'
} >"$tmp/proofs.lua"

# Requests/s of wrk; a run with any error answer or socket error counts 0.
rate() {
	wrk -t1 -c32 -d"${secs}s" -s "$2" "$1" 2>/dev/null | awk '
		/Non-2xx|Socket errors/ { bad = 1 }
		/Requests\/sec/ { r = $2 }
		END { print bad ? 0 : r }'
}
# Three alternating rounds, so both servers see the same machine; the best
# round of each is compared (noise only ever slows a run down).
echo "== reads ($(wc -l <"$tmp/paths") tile and bundle files, wrk -t1 -c32 -d${secs}s, 3 rounds)"
: >"$tmp/rounds"
for round in 1 2 3; do
	a=$(rate "http://127.0.0.1:$p2" "$tmp/tiles.lua")
	b=$(rate "http://127.0.0.1:$p1" "$tmp/tiles.lua")
	c=$(rate "http://127.0.0.1:$p1" "$tmp/proofs.lua")
	echo "$a $b $c" >>"$tmp/rounds"
	awk -v a="$a" -v b="$b" -v c="$c" -v r="$round" 'BEGIN {
		printf "  round %d: nginx %.0f, logd %.0f (%.2fx), proofs %.0f req/s\n", r, a, b, b / a, c }'
done
awk '{ if ($1 > n) n = $1; if ($2 > l) l = $2; if ($3 > p) p = $3 } END {
	printf "  nginx, same files (1 worker)  %10.0f req/s  (baseline, best round)\n", n
	printf "  logd tiles and bundles        %10.0f req/s  %.2fx nginx\n", l, l / n
	printf "  logd inclusion proofs         %10.0f req/s  %.2fx nginx tiles\n", p, p / n
}' "$tmp/rounds"
