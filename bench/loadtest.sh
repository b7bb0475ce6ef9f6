#!/usr/bin/env bash
# bench/loadtest.sh: the smoke load test behind `make loadtest`.
#
# Builds wsgate and wsbench, starts a local wsgate on loopback and runs every
# wsbench scenario briefly against it with -strict, so any failed connection
# or lost, duplicated or corrupted message fails the run:
#
#   wsgate -mode echo:                    connect, echo (closed loop), echo (paced, 2 processes), churn
#   wsgate -mode pubsub -client-publish:  pubsub (WebSocket publish), pubsub (HTTP POST /api/publish)
#
# Ports: wsgate listens on 127.0.0.1:0 (WebSocket and admin) and the script
# reads the ports the kernel chose from its start-up log line ("wsgate
# listening addr=... admin=..."). A port picked in advance can be taken
# before the server binds it, most often by one of the run's own client
# sockets, whose source ports come from ip_local_port_range; a kernel-chosen
# port cannot collide.
#
# Every process it starts is stopped by PID on exit; every run is bounded.
# On failure the work directory (server logs, JSON results) is kept and named
# on the last line; on success it is removed unless LOADTEST_OUT is set.
# Environment:
#   LOADTEST_SCENARIOS  space-separated subset of "connect echo churn pubsub" (default: all)
#   LOADTEST_OUT        keep the JSON results, charts and a Markdown table in this directory
#   LOADTEST_CONNS      connections per scenario (default 2000)
#   GO                  go command (default: go)
# WSGATE_* variables are ignored: the flags below are the server's whole
# configuration.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
SCENARIOS=${LOADTEST_SCENARIOS:-connect echo churn pubsub}
CONNS=${LOADTEST_CONNS:-2000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsgate-loadtest.XXXXXX")
OUT=${LOADTEST_OUT:-$WORK/results}
mkdir -p "$OUT"
SERVER_PID=""
SERVER_LOG=""
ADDR=""
ADMIN=""

for v in $(compgen -e); do
	if [[ $v == WSGATE_* ]]; then
		unset "$v"
	fi
done

log() { printf '== %s\n' "$*" >&2; }

stop_server() {
	if [[ -n "$SERVER_PID" ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	fi
}

# cleanup stops the server and removes what nobody was told about: the work
# directory survives a failed run (its path is the last line printed).
cleanup() {
	local rc=$?
	stop_server
	rm -rf "$WORK/bin"
	if [[ $rc -eq 0 ]]; then
		rm -rf "$WORK"
	else
		log "FAILED (exit $rc); server logs and results kept in $WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME ARGS...: runs wsgate with ARGS on kernel-chosen ports,
# logging to $WORK/wsgate-NAME.log; sets SERVER_PID, ADDR and ADMIN (empty
# when the admin listener is disabled). A failed start is retried; every try
# binds fresh kernel-chosen ports.
start_server() {
	local try
	for try in 1 2 3; do
		if start_server_once "$@"; then
			return 0
		fi
		echo "loadtest: retrying wsgate start ($try/3)" >&2
	done
	return 1
}

start_server_once() {
	local name=$1 line
	shift
	SERVER_LOG=$WORK/wsgate-$name.log
	"$WORK/bin/wsgate" -addr 127.0.0.1:0 -loops 1 -log-format text -log-level info "$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		# The line is written once both listeners are up:
		# time=... level=INFO msg="wsgate listening" addr=127.0.0.1:PORT loops=1 mode=echo admin=""
		line=$(grep -m1 'msg="wsgate listening"' "$SERVER_LOG" || true)
		if [[ -n $line ]]; then
			ADDR=$(sed -n 's/.* addr=\([^ ]*\).*/\1/p' <<<"$line")
			ADMIN=$(sed -n 's/.* admin=\([^ ]*\).*/\1/p' <<<"$line")
			ADMIN=${ADMIN//\"/}
			if [[ $ADDR == 127.0.0.1:[1-9]* ]]; then
				return 0
			fi
			echo "loadtest: cannot read the listen address from: $line" >&2
			stop_server
			return 1
		fi
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "loadtest: wsgate $* exited at start:" >&2
			cat "$SERVER_LOG" >&2
			wait "$SERVER_PID" 2>/dev/null || true
			SERVER_PID=""
			return 1
		fi
		sleep 0.1
	done
	echo "loadtest: wsgate logged no 'wsgate listening' line within 10s:" >&2
	cat "$SERVER_LOG" >&2
	stop_server
	return 1
}

# bench NAME SCENARIO ARGS...: one bounded, strict wsbench run; its summary
# line is kept for the table at the end.
bench() {
	local name=$1
	shift
	log "wsbench $*"
	if ! timeout 120 "$WORK/bin/wsbench" "$@" -url "ws://$ADDR/" -server-pid "$SERVER_PID" \
		-label wsgate -json "$OUT/$name.json" -strict >"$WORK/$name.summary"; then
		cat "$WORK/$name.summary"
		echo "loadtest: FAILED: wsbench $*" >&2
		echo "--- wsgate log ($SERVER_LOG):" >&2
		tail -n 50 "$SERVER_LOG" >&2
		return 1
	fi
	cat "$WORK/$name.summary"
	RUNS+=("$name")
}

# field KEY FILE prints KEY's value from a wsbench summary line.
field() { tr ' ' '\n' <"$2" | sed -n "s/^$1=//p" | head -n 1; }

# latency P FILE prints percentile P (p50, p99) of the run's latency: the
# round trip or publish-to-delivery, or for connect and churn, which carry
# no messages, the handshake (as wsbench report does).
latency() {
	local v
	v=$(field "$1_us" "$2")
	if [[ -z $v ]]; then
		v="$(field "handshake_$1_us" "$2") (handshake)"
	fi
	echo "$v"
}

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

RUNS=()
log "building wsgate and wsbench"
mkdir -p "$WORK/bin"
"$GO" build -o "$WORK/bin/wsgate" ./cmd/wsgate
"$GO" build -o "$WORK/bin/wsbench" ./cmd/wsbench

if want connect || want echo || want churn; then
	start_server echo -mode echo -admin-addr ""
	log "wsgate -mode echo on $ADDR (pid $SERVER_PID)"
	if want connect; then
		bench connect connect -conns "$CONNS" -rate 5000 -hold 2s -src 127.0.0.2-127.0.0.250
	fi
	if want echo; then
		bench echo echo -conns "$CONNS" -size 64 -duration 3s
		bench echo-paced echo -conns "$CONNS" -procs 2 -rate 20000 -size 256 -duration 3s
	fi
	if want churn; then
		bench churn churn -conns "$((CONNS / 4))" -rate 2000 -hold 200ms -backoff-base 50ms \
			-backoff-max 1s -backoff-jitter 10ms -duration 3s
	fi
	stop_server
fi

if want pubsub; then
	start_server pubsub -mode pubsub -client-publish -admin-addr 127.0.0.1:0
	if [[ -z $ADMIN ]]; then
		echo "loadtest: wsgate reported no admin listener" >&2
		exit 1
	fi
	log "wsgate -mode pubsub on $ADDR, admin $ADMIN (pid $SERVER_PID)"
	bench pubsub pubsub -conns "$CONNS" -channels 20 -publish-rate 500 -duration 3s
	bench pubsub-http pubsub -conns "$CONNS" -channels 20 -publish-rate 500 -duration 3s \
		-publish-url "http://$ADMIN/api/publish"
	stop_server
fi

log "all scenarios passed:"
{
	printf '%-12s %10s %-14s %20s %20s %14s\n' run throughput unit p50_us p99_us rss_per_conn
	for name in "${RUNS[@]}"; do
		f=$WORK/$name.summary
		printf '%-12s %10s %-14s %20s %20s %14s\n' "$name" "$(field throughput "$f")" "$(field unit "$f")" \
			"$(latency p50 "$f")" "$(latency p99 "$f")" "$(field rss_per_conn "$f")"
	done
} >&2
if [[ -n "${LOADTEST_OUT:-}" ]]; then
	"$WORK/bin/wsbench" report "$OUT"/*.json -o "$OUT/img" -md "$OUT/table.md" >/dev/null
	log "results, charts and table in $OUT ($OUT/img, $OUT/table.md)"
else
	log "results discarded; set LOADTEST_OUT=DIR to keep them"
fi
