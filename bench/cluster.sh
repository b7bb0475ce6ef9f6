#!/usr/bin/env bash
# bench/cluster.sh: cluster mode against a single node under the same load, in one run
# (`make bench-cluster`). It starts nats-server with JetStream, NODES wsgate nodes sharing one
# SO_REUSEPORT port, and one single node, then runs `wsbench pubsub` against each with
# SUBS_PER_NODE subscribers per node, publishing over HTTP to one node, for 1 channel and for
# many channels. It prints one table: delivery latency, throughput, and server CPU per delivery
# (wsgate processes, and NATS apart).
#
# Environment (defaults in brackets):
#   NODES [3]  SUBS_PER_NODE [10000]  DURATION [20s]
#   RATE_ONE [5]     publishes/s when every subscriber is on one channel
#   CHANNELS [1000]  RATE_MANY [1000]  the many-channel case: channels and publishes/s
#   OUT              directory for the wsbench JSON results (kept; default: a temporary one)
# Every process it starts is stopped by PID on exit; every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-3}
SUBS=${SUBS_PER_NODE:-10000}
DURATION=${DURATION:-20s}
RATE_ONE=${RATE_ONE:-5}
CHANNELS=${CHANNELS:-1000}
RATE_MANY=${RATE_MANY:-1000}
WORK=$(mktemp -d)
KEEP=${OUT:-}
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make -s build nats-server

# wait_log FILE REGEX: the first match of REGEX in FILE (waits up to 20 s for it).
wait_log() {
	for _ in $(seq 1 200); do
		if m=$(grep -oE "$2" "$1" | head -1) && [[ -n "$m" ]]; then
			echo "$m"
			return 0
		fi
		sleep 0.1
	done
	echo "cluster.sh: no '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

./bin/nats-server -js -a 127.0.0.1 -p -1 -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
NATS=nats://$(wait_log "$WORK/nats.log" 'client connections on 127\.0\.0\.1:[0-9]+' | grep -oE '127\.0\.0\.1:[0-9]+')

# node N ARGS...: starts a wsgate node, logging to $WORK/nodeN.log; sets NODE_PID.
node() {
	local n=$1
	shift
	WSGATE_LOG_LEVEL=info ./bin/wsgate -loops 1 -log-format text -admin-addr 127.0.0.1:0 \
		-history-size 100 -ping-interval 25s "$@" >"$WORK/node$n.log" 2>&1 &
	NODE_PID=$!
	PIDS+=("$NODE_PID")
}

node 1 -addr 127.0.0.1:0 -nats "$NATS" -node-id node1
CLUSTER_PIDS=$NODE_PID
ADDR=$(wait_log "$WORK/node1.log" 'addr=127\.0\.0\.1:[0-9]+' | cut -d= -f2)
ADMIN=$(wait_log "$WORK/node1.log" 'admin=127\.0\.0\.1:[0-9]+' | cut -d= -f2)
for n in $(seq 2 "$NODES"); do
	node "$n" -addr "$ADDR" -nats "$NATS" -node-id "node$n"
	CLUSTER_PIDS+=",$NODE_PID"
	wait_log "$WORK/node$n.log" 'wsgate listening' >/dev/null
done
node 0 -addr 127.0.0.1:0
SINGLE_PID=$NODE_PID
SADDR=$(wait_log "$WORK/node0.log" 'addr=127\.0\.0\.1:[0-9]+' | cut -d= -f2)
SADMIN=$(wait_log "$WORK/node0.log" 'admin=127\.0\.0\.1:[0-9]+' | cut -d= -f2)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME URL ADMIN PIDS CONNS CHANNELS RATE: one wsbench pubsub run; prints its table row.
run() {
	local name=$1 url=$2 admin=$3 pids=$4 conns=$5 channels=$6 rate=$7
	local n0 line
	n0=$(cpu_ticks "$NATS_PID")
	line=$(./bin/wsbench pubsub -url "ws://$url/" -conns "$conns" -channels "$channels" \
		-publish-rate "$rate" -duration "$DURATION" -publish-url "http://$admin/api/publish" \
		-server-pid "$pids" -src 127.0.0.2-127.0.0.40 -rate 5000 -label "$name" -strict \
		-json "$OUT/$name.json" 2>"$WORK/$name.err" | grep '^scenario=') || {
		echo "cluster.sh: $name failed:" >&2
		tail -5 "$WORK/$name.err" >&2
		return 1
	}
	local nats_ticks=$(($(cpu_ticks "$NATS_PID") - n0))
	val() { grep -oE "(^| )$1=[^ ]+" <<<"$line" | head -1 | cut -d= -f2; }
	local delivered published cpu_s
	delivered=$(val delivered)
	published=$(val published)
	cpu_s=$(val server_cpu_s)
	awk -v name="$name" -v conns="$conns" -v ch="$channels" -v pub="$published" -v d="$(val measured_s)" \
		-v thr="$(val throughput)" -v p50="$(val p50_us)" -v p99="$(val p99_us)" -v del="$delivered" \
		-v cpu="$cpu_s" -v nats="$nats_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		printf "| %-16s | %6d | %5d | %8.1f | %10.0f | %9.2f | %9.2f | %8.2f | %8.2f |\n",
			name, conns, ch, pub / d, thr, p50 / 1000, p99 / 1000,
			(del > 0 ? cpu * 1e6 / del : 0), (name ~ /^single/ ? 0 : (del > 0 ? nats / hz * 1e6 / del : 0))
	}'
}

echo
echo "| run              |  conns | chans | pub/s    | deliv/s    | p50 ms    | p99 ms    | wsgate µs/deliv | NATS µs/deliv |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
run single-1ch "$SADDR" "$SADMIN" "$SINGLE_PID" "$SUBS" 1 "$RATE_ONE"
run cluster-1ch "$ADDR" "$ADMIN" "$CLUSTER_PIDS" $((SUBS * NODES)) 1 "$RATE_ONE"
run single-${CHANNELS}ch "$SADDR" "$SADMIN" "$SINGLE_PID" "$SUBS" "$CHANNELS" "$RATE_MANY"
run cluster-${CHANNELS}ch "$ADDR" "$ADMIN" "$CLUSTER_PIDS" $((SUBS * NODES)) "$CHANNELS" "$RATE_MANY"
echo
if [[ -n "$KEEP" ]]; then
	echo "wsbench results: $KEEP"
else
	echo "(set OUT=DIR to keep the wsbench JSON results)"
fi
