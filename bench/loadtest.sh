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
# Every process it starts is stopped by PID on exit; every run is bounded.
# Environment:
#   LOADTEST_SCENARIOS  space-separated subset of "connect echo churn pubsub" (default: all)
#   LOADTEST_OUT        directory for the JSON results (default: a temporary directory)
#   LOADTEST_CONNS      connections per scenario (default 2000)
#   GO                  go command (default: go)
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
SCENARIOS=${LOADTEST_SCENARIOS:-connect echo churn pubsub}
CONNS=${LOADTEST_CONNS:-2000}
WORK=$(mktemp -d)
OUT=${LOADTEST_OUT:-$WORK/results}
mkdir -p "$OUT"
SERVER_PID=""

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

cleanup() {
	stop_server
	rm -rf "$WORK/bin"
	if [[ -z "${LOADTEST_OUT:-}" ]]; then
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port picks a free port below the ephemeral range, so it cannot
# collide with the source ports of the many client sockets a run creates.
free_port() {
	local p lo=32768 hi
	if read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then :; fi
	if ((lo <= 11000)); then lo=40000; fi
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	echo "loadtest: no free port found" >&2
	return 1
}

# start_server ARGS...: runs wsgate on a free port; sets SERVER_PID and ADDR.
# A start failure (say, a port taken in the meantime) is retried on
# another port.
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
	ADDR=127.0.0.1:$(free_port)
	"$WORK/bin/wsgate" -addr "$ADDR" -loops 1 "$@" >"$WORK/wsgate.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "loadtest: wsgate $* exited at start:" >&2
			cat "$WORK/wsgate.log" >&2
			SERVER_PID=""
			return 1
		fi
		if ! port_free "${ADDR##*:}"; then
			return 0
		fi
		sleep 0.1
	done
	echo "loadtest: wsgate did not listen on $ADDR within 10s" >&2
	cat "$WORK/wsgate.log" >&2
	stop_server
	return 1
}

# bench NAME SCENARIO ARGS...: one bounded, strict wsbench run.
bench() {
	local name=$1
	shift
	log "wsbench $*"
	if ! timeout 120 "$WORK/bin/wsbench" "$@" -url "ws://$ADDR/" -server-pid "$SERVER_PID" \
		-label wsgate -json "$OUT/$name.json" -strict; then
		echo "loadtest: FAILED: wsbench $*" >&2
		echo "--- wsgate log:" >&2
		tail -n 50 "$WORK/wsgate.log" >&2
		return 1
	fi
}

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

log "building wsgate and wsbench"
mkdir -p "$WORK/bin"
"$GO" build -o "$WORK/bin/wsgate" ./cmd/wsgate
"$GO" build -o "$WORK/bin/wsbench" ./cmd/wsbench

if want connect || want echo || want churn; then
	start_server -mode echo -admin-addr ""
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
	ADMIN=127.0.0.1:$(free_port)
	start_server -mode pubsub -client-publish -admin-addr "$ADMIN"
	if port_free "${ADMIN##*:}"; then
		echo "loadtest: wsgate admin listener is not up on $ADMIN" >&2
		exit 1
	fi
	log "wsgate -mode pubsub on $ADDR, admin $ADMIN (pid $SERVER_PID)"
	bench pubsub pubsub -conns "$CONNS" -channels 20 -publish-rate 500 -duration 3s
	bench pubsub-http pubsub -conns "$CONNS" -channels 20 -publish-rate 500 -duration 3s \
		-publish-url "http://$ADMIN/api/publish"
	stop_server
fi

log "all scenarios passed; results in $OUT"
if [[ -n "${LOADTEST_OUT:-}" ]]; then
	"$WORK/bin/wsbench" report "$OUT"/*.json -o "$OUT/img" -md "$OUT/table.md" >/dev/null
	log "charts and table in $OUT/img and $OUT/table.md"
fi
