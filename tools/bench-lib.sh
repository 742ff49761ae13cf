# Shell functions shared by the benchmark scripts (sourced, not run).

# A free TCP port on 127.0.0.1 (python3), or one derived from the PID.
bench_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	    echo $((20000 + $$ % 20000 + ${1:-0}))
}

# Waits until URL/healthz answers; after 60 s prints LOG and exits 1.
# NAME prefixes the message.
bench_wait_up() {
	_i=0
	until curl -sf "$1/healthz" >/dev/null; do
		_i=$((_i + 1))
		if [ $_i -gt 600 ]; then
			echo "$3: logd did not start" >&2
			cat "$2" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# Warns (one line on stderr, prefixed NAME) when the machine was more than
# 15% busy over one second before the run: every rate measured then is
# low, baselines included, and the run is better repeated on an idle
# machine.  Reads /proc/stat; silent where there is none.
bench_idle_check() {
	[ -r /proc/stat ] || return 0
	_a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	sleep 1
	_b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	echo "$_a $_b" | awk -v name="$1" '{
		busy = $3 - $1; idle = $4 - $2
		if (busy + idle > 0 && busy * 100 / (busy + idle) > 15)
			printf "%s: warning: the machine was %.0f%% busy before the run; figures will be low\n",
			    name, busy * 100 / (busy + idle) > "/dev/stderr" }'
}

# Installs what the benchmarks need and checks that build/ holds each
# program named (paths under build/).  NAME prefixes the message.  Uses
# $top and $build.
bench_prepare() {
	_name=$1
	shift
	"$top/tools/install-deps.sh" --bench
	for _t in "$@"; do
		[ -x "$build/$_t" ] || {
			echo "$_name: build first (tools/test --quick)" >&2
			exit 1
		}
	done
}

# The batch counters of the daemon at $url (/metrics), on one line:
# batches entries add index ckpt commit.
bench_batch_counters() {
	curl -sf "$url/metrics" | awk '
		/^keytrail_batches_total / { b = $2 }
		/^keytrail_entries_appended_total / { e = $2 }
		/^keytrail_batch_step_seconds_total\{step="add"\}/ { a = $2 }
		/^keytrail_batch_step_seconds_total\{step="index"\}/ { x = $2 }
		/^keytrail_batch_step_seconds_total\{step="checkpoint"\}/ { c = $2 }
		/^keytrail_batch_step_seconds_total\{step="commit"\}/ { m = $2 }
		END { print b, e, a, x, c, m }'
}

# From two bench_batch_counters lines: entries per batch, then ms per
# batch adding, moving index rows, making the checkpoint, committing.
bench_batch_steps() {
	echo "$1 $2" | awk '{
		b = $7 - $1
		if (b <= 0) { print "-"; exit }
		printf "%.0f %.2f/%.2f/%.2f/%.2f ms", ($8 - $2) / b,
		    ($9 - $3) * 1000 / b, ($10 - $4) * 1000 / b,
		    ($11 - $5) * 1000 / b, ($12 - $6) * 1000 / b }'
}

# Starts keytrail-logd on data directory DATA at 127.0.0.1:$port, its log
# appended to $tmp/logd.log, and waits until it answers; sets logd_pid.
# bench_logd_stop stops it.  NAME prefixes the message if it does not
# start.
bench_logd_start() {
	"$build/logd/keytrail-logd" --data "$1" --listen "127.0.0.1:$port" \
	    --quiet 2>>"$tmp/logd.log" &
	logd_pid=$!
	bench_wait_up "http://127.0.0.1:$port" "$tmp/logd.log" "$2"
}

bench_logd_stop() {
	kill "$logd_pid"
	wait "$logd_pid" || true
	logd_pid=
}

# On exit: stops the daemon and nginx the script started ($logd_pid,
# $nginx_pid, either may be empty or unset) and removes $tmp.  Scripts
# install it with: trap bench_cleanup EXIT INT TERM
bench_cleanup() {
	[ -n "${logd_pid:-}" ] && kill "$logd_pid" 2>/dev/null || true
	[ -n "${nginx_pid:-}" ] && kill "$nginx_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
