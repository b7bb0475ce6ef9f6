#!/usr/bin/env bash
# compare.sh: wsgate against its peers (gorilla/websocket, lxzan/gws,
# lesismal/nbio, panjf2000/gnet), the same scenarios in one run, driven by
# wsbench; the table lands between <!-- compare:begin --> and
# <!-- compare:end --> in docs/benchmarks.md. `make compare` runs it.
#
# Every server runs every scenario on a fresh process bound to 127.0.0.1:PORT;
# the order of servers rotates each round so drift (thermal, page cache, the
# other tenants of the machine) shows up as spread between rounds instead of
# as a bias against whoever runs last. wsbench reads the server's CPU time
# from /proc/PID/stat, so CPU per operation is reported next to throughput:
# driver and server share the cores, and throughput alone understates a lean
# server.
#
# Sizes come from the environment (defaults in brackets):
#   ROUNDS [2]  SERVERS ["wsgate gorilla gws nbio gnet"]
#   CONNS [15000] CONNECT_RATE [5000] HOLD [10s]             connect scenario
#   ECHO_CONNS [1000] ECHO_SIZE [64] ECHO_DURATION [10s]      echo scenario
#   SUBS [10000] PUB_DURATION [10s]                           pubsub scenarios:
#   PUB_RATE [10] OVERLOAD_RATE [100]                         publishes per second,
#                                                             each to all SUBS
#   PUB_SIZE [0]                                              published data bytes
#                                                             (wsbench pubsub -size)
#   ONLY [all]       all, or pubsub: only the two pub/sub scenarios
#   MARKER [compare] the block goes between <!-- MARKER:begin --> and
#                    <!-- MARKER:end --> (one block per configuration)
#   (CONNECT_RATE also paces the echo and pubsub connects.)
#   PROCS [auto] SRC [127.0.0.2-127.0.0.9]                    wsbench -procs / -src
#     (SRC spreads the driver's sockets over 8 loopback source addresses:
#     scenarios follow each other faster than TIME_WAIT frees ports, and one
#     source address has only ip_local_port_range ports towards the server;
#     SRC= lets the kernel choose)
#   RESULTS_DIR [bench/peers/results/<UTC timestamp>]         wsbench JSON files
#   DOC [docs/benchmarks.md] IMG_DIR [docs/img/]
#   PORT [picked] ADMIN_PORT [picked]                         servers' loopback ports
# Unset, PORT and ADMIN_PORT are picked at random among the ports nothing
# listens on, outside ip_local_port_range when the range leaves room: the
# driver's client sockets take their source ports from that range, and one
# of them holding the server's port makes its bind fail. When a server still
# fails to start, both ports are picked again and the start retried (up to 3
# times); ports set in the environment are never changed. (Not port 0: the
# gnet peer binds one SO_REUSEPORT listener per event loop, which would each
# get a different port.)
# Servers bind with SO_REUSEPORT, so a stranger listening on PORT would share
# the connections silently: the script refuses to start a server on a busy
# port and fails any run during which a listener it did not start appeared.
# The open-files limit (20000 here) applies to every process: one server
# cannot hold much more than ~19000 connections, so keep CONNS below that.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

ROUNDS=${ROUNDS:-2}
SERVERS=${SERVERS:-"wsgate gorilla gws nbio gnet"}
CONNS=${CONNS:-15000}
CONNECT_RATE=${CONNECT_RATE:-5000}
HOLD=${HOLD:-10s}
ECHO_CONNS=${ECHO_CONNS:-1000}
ECHO_SIZE=${ECHO_SIZE:-64}
ECHO_DURATION=${ECHO_DURATION:-10s}
SUBS=${SUBS:-10000}
PUB_DURATION=${PUB_DURATION:-10s}
PUB_RATE=${PUB_RATE:-10}
OVERLOAD_RATE=${OVERLOAD_RATE:-100}
PUB_SIZE=${PUB_SIZE:-0}
ONLY=${ONLY:-all}
MARKER=${MARKER:-compare}
PROCS=${PROCS:-auto}
SRC=${SRC-127.0.0.2-127.0.0.9}
RESULTS_DIR=${RESULTS_DIR:-bench/peers/results/$(date -u +%Y%m%dT%H%M%SZ)}
DOC=${DOC:-docs/benchmarks.md}
IMG_DIR=${IMG_DIR:-docs/img/}

HOST=127.0.0.1
PICK_PORTS=
if [[ -z ${PORT:-} && -z ${ADMIN_PORT:-} ]]; then
	PICK_PORTS=1
fi
PORT=${PORT:-}
ADMIN_PORT=${ADMIN_PORT:-}
case $ONLY in
all) SCENARIOS=(connect echo pubsub-steady pubsub-overload) ;;
pubsub) SCENARIOS=(pubsub-steady pubsub-overload) ;;
*)
	echo "ONLY=$ONLY: want all or pubsub" >&2
	exit 2
	;;
esac
PEERS=(gorilla gws nbio gnet)

BIN=$(mktemp -d "${TMPDIR:-/tmp}/wsgate-compare.XXXXXX")
LOGS=$BIN/logs
mkdir -p "$LOGS" "$RESULTS_DIR"
SERVER_PID=
FAILED=()

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
	local rc=$?
	if [[ -n $SERVER_PID ]]; then
		stop_server || true
	fi
	if [[ $rc -eq 0 && ${#FAILED[@]} -eq 0 ]]; then
		rm -rf "$BIN"
	else
		log "build dir and server logs kept in $BIN"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# listening reports whether anything listens on TCP port $1.
listening() { [[ -n $(ss -Htln "sport = :$1") ]]; }

# foreign_listeners PORT PID prints the listeners on PORT that PID does not
# own.
foreign_listeners() {
	ss -Htlnp "sport = :$1" | grep -v "pid=$2," || true
}

# pick_port EXCLUDE prints a port other than EXCLUDE that nothing listens
# on, chosen at random outside ip_local_port_range (and above 1023) when the
# range leaves room, otherwise anywhere in 1024-65535.
pick_port() {
	local exclude=$1 lo=32768 hi=60999 below above total r p i
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range || true
	below=$((lo > 1024 ? lo - 1024 : 0))    # 1024 .. lo-1
	above=$((hi < 65535 ? 65535 - hi : 0)) # hi+1 .. 65535
	total=$((below + above))
	for ((i = 0; i < 200; i++)); do
		r=$(((RANDOM << 15 | RANDOM) % (total > 0 ? total : 64512)))
		if ((total == 0)); then
			p=$((1024 + r))
		elif ((r < below)); then
			p=$((1024 + r))
		else
			p=$((hi + 1 + r - below))
		fi
		if [[ $p != "$exclude" ]] && ! listening "$p"; then
			echo "$p"
			return 0
		fi
	done
	log "no free port found"
	return 1
}

# set_ports picks PORT and ADMIN_PORT when they are not fixed by the
# environment (or re-picks both after a failed start), and derives ADDR and
# URL from PORT.
set_ports() {
	if [[ -n $PICK_PORTS ]]; then
		PORT=$(pick_port "")
		ADMIN_PORT=$(pick_port "$PORT")
	fi
	if [[ -z $PORT ]]; then
		PORT=$(pick_port "$ADMIN_PORT")
	fi
	if [[ -z $ADMIN_PORT ]]; then
		ADMIN_PORT=$(pick_port "$PORT")
	fi
	ADDR=$HOST:$PORT
	URL=ws://$ADDR/
}

# wait_port_free waits (up to 30 s) until nothing listens on port $1.
wait_port_free() {
	local i
	for ((i = 0; i < 300; i++)); do
		listening "$1" || return 0
		sleep 0.1
	done
	log "port $1 is still in use:"
	ss -Htlnp "sport = :$1" >&2
	return 1
}

# server_cmd NAME MODE: sets CMD to the command line that serves MODE.
server_cmd() {
	local name=$1 mode=$2
	case $name in
	wsgate)
		if [[ $mode == echo ]]; then
			CMD=("$BIN/wsgate" -mode echo -addr "$ADDR" -admin-addr "")
		else
			CMD=("$BIN/wsgate" -mode pubsub -addr "$ADDR" -client-publish -admin-addr "$HOST:$ADMIN_PORT")
		fi
		;;
	*) CMD=("$BIN/$name" -mode "$mode" -addr "$ADDR") ;;
	esac
}

# driver_cmd SCENARIO NAME ROUND PID: sets CMD to the wsbench command line.
driver_cmd() {
	local sc=$1 name=$2 round=$3 pid=$4
	local common=(-url "$URL" -procs "$PROCS" -server-pid "$pid" -label "$name"
		-json "$RESULTS_DIR/$sc-$name-$round.json")
	if [[ -n $SRC ]]; then
		common+=(-src "$SRC")
	fi
	case $sc in
	connect) CMD=("$BIN/wsbench" connect -conns "$CONNS" -rate "$CONNECT_RATE" -hold "$HOLD" "${common[@]}") ;;
	echo) CMD=("$BIN/wsbench" echo -conns "$ECHO_CONNS" -connect-rate "$CONNECT_RATE" -size "$ECHO_SIZE" -duration "$ECHO_DURATION" "${common[@]}") ;;
	pubsub-steady) CMD=("$BIN/wsbench" pubsub -conns "$SUBS" -rate "$CONNECT_RATE" -channels 1 -publish-rate "$PUB_RATE" -size "$PUB_SIZE" -duration "$PUB_DURATION" "${common[@]}") ;;
	pubsub-overload) CMD=("$BIN/wsbench" pubsub -conns "$SUBS" -rate "$CONNECT_RATE" -channels 1 -publish-rate "$OVERLOAD_RATE" -size "$PUB_SIZE" -duration "$PUB_DURATION" "${common[@]}") ;;
	*)
		log "unknown scenario $sc"
		return 1
		;;
	esac
}

# show renders CMD for the docs: binaries by name, paths relative to the repo.
show() {
	local out=() a
	for a in "${CMD[@]}"; do
		a=${a#"$BIN/"}
		out+=("$a")
	done
	printf '%q ' "${out[@]}" | sed 's/ $//'
}

# start_server NAME MODE TAG: starts the server, waits until it accepts,
# sets SERVER_PID. A server that exits while starting (say, its port was
# taken meanwhile) is started again on freshly picked ports, when the ports
# are the script's to pick.
start_server() {
	local try
	for try in 1 2 3; do
		if start_server_once "$@"; then
			return 0
		fi
		[[ -n $PICK_PORTS && $try -lt 3 ]] || break
		set_ports
		log "retrying on ports $PORT and $ADMIN_PORT ($try/2)"
	done
	return 1
}

start_server_once() {
	local name=$1 mode=$2 tag=$3 i
	wait_port_free "$PORT" || return 1
	server_cmd "$name" "$mode"
	"${CMD[@]}" >"$LOGS/$tag.log" 2>&1 &
	SERVER_PID=$!
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			log "$name exited while starting; its log:"
			tail -n 20 "$LOGS/$tag.log" >&2
			wait "$SERVER_PID" || true
			SERVER_PID=
			return 1
		fi
		if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
			if [[ -n $(foreign_listeners "$PORT" "$SERVER_PID") ]]; then
				log "another process listens on port $PORT too:"
				foreign_listeners "$PORT" "$SERVER_PID" >&2
				stop_server
				return 1
			fi
			return 0
		fi
		sleep 0.1
	done
	log "$name did not accept on $ADDR within 30 s"
	stop_server
	return 1
}

# stop_server stops SERVER_PID (TERM, then KILL after 10 s) and waits until
# the ports are free.
stop_server() {
	local i
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		log "server $SERVER_PID ignored SIGTERM; killing it"
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
	wait_port_free "$PORT"
	wait_port_free "$ADMIN_PORT"
}

# writev_per_delivery TAG prints a table row with wsgate's writev calls per
# delivered message, read from its /metrics after a pub/sub run.
writev_per_delivery() {
	local m w d
	m=$(curl -fsS "http://$HOST:$ADMIN_PORT/metrics") || return 1
	w=$(awk '$1 == "wsgate_writev_calls_total" {print $2}' <<<"$m")
	d=$(awk '$1 == "wsgate_deliveries_total" {print $2}' <<<"$m")
	[[ -n $w && -n $d && $d != 0 ]] || return 1
	awk -v t="$1" -v w="$w" -v d="$d" 'BEGIN { printf "| %s | %.0f | %.0f | %.3f |\n", t, w, d, w / d }'
}

# --- preflight --------------------------------------------------------------

set_ports
for p in $PORT $ADMIN_PORT; do
	if listening "$p"; then
		log "something already listens on port $p; stop it first (SO_REUSEPORT would let it share our connections)"
		exit 1
	fi
done
need=$((CONNS > SUBS ? CONNS : SUBS))
nofile=$(ulimit -Hn)
if [[ $nofile != unlimited && $need -ge $((nofile - 100)) ]]; then
	log "CONNS/SUBS=$need needs more open files than the hard limit $nofile allows one server process"
	exit 1
fi

# --- build ------------------------------------------------------------------

log "building into $BIN"
go build -o "$BIN/wsgate" ./cmd/wsgate
go build -o "$BIN/wsbench" ./cmd/wsbench
for p in "${PEERS[@]}"; do
	(cd "bench/peers/$p" && go build -o "$BIN/$p" .)
done

# --- run --------------------------------------------------------------------

read -r -a servers <<<"$SERVERS"
n=${#servers[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	order=()
	for ((k = 0; k < n; k++)); do
		order+=("${servers[$(((round - 1 + k) % n))]}")
	done
	log "round $round/$ROUNDS: ${order[*]}"
	for name in "${order[@]}"; do
		for sc in "${SCENARIOS[@]}"; do
			mode=echo
			[[ $sc == pubsub-* ]] && mode=pubsub
			tag=$sc-$name-$round
			if ! start_server "$name" "$mode" "$tag"; then
				FAILED+=("$tag (server did not start)")
				continue
			fi
			driver_cmd "$sc" "$name" "$round" "$SERVER_PID"
			log "$tag: $(show)"
			if ! "${CMD[@]}" 2>&1 | tee "$LOGS/$tag.wsbench.log" >&2; then
				FAILED+=("$tag (wsbench failed)")
			fi
			if [[ $name == wsgate && $mode == pubsub ]]; then
				writev_per_delivery "$tag" >>"$BIN/writev.md" || true
			fi
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				FAILED+=("$tag (server died)")
			elif [[ -n $(foreign_listeners "$PORT" "$SERVER_PID") ]]; then
				FAILED+=("$tag (another process listened on port $PORT)")
				rm -f "$RESULTS_DIR/$tag.json"
			fi
			stop_server
		done
	done
done

# --- report -----------------------------------------------------------------

# wsbench report keeps one result per (scenario, server), so rounds and the
# two pub/sub rates are reported by separate calls: the headline is the last
# round (it also draws the charts), then every round, then the overload runs.

# files_of ROUND SCENARIO...: sets FILES to that round's result files.
files_of() {
	local round=$1 sc
	shift
	FILES=()
	shopt -s nullglob
	for sc in "$@"; do
		FILES+=("$RESULTS_DIR/$sc"-*-"$round".json)
	done
	shopt -u nullglob
}

# table IMG_DIR OUT FILES...: writes wsbench's Markdown table for FILES to
# OUT; nothing when FILES is empty. wsbench's list of the charts it wrote is
# shown only on failure: most of them go to a scratch directory removed on
# exit.
table() {
	local img=$1 out=$2
	shift 2
	: >"$out"
	if [[ $# -gt 0 ]]; then
		if ! "$BIN/wsbench" report "$@" -o "$img" -md "$out" >/dev/null 2>"$BIN/report.err"; then
			cat "$BIN/report.err" >&2
			return 1
		fi
	fi
}

mkdir -p "$IMG_DIR"
files_of "$ROUNDS" connect echo pubsub-steady
if [[ ${#FILES[@]} -eq 0 ]]; then
	log "no results for round $ROUNDS in $RESULTS_DIR"
	exit 1
fi
table "$IMG_DIR" "$BIN/headline.md" "${FILES[@]}"
for ((round = 1; round <= ROUNDS; round++)); do
	files_of "$round" connect echo pubsub-steady
	table "$BIN/img-scratch" "$BIN/main-$round.md" "${FILES[@]}"
	files_of "$round" pubsub-overload
	table "$BIN/img-scratch" "$BIN/overload-$round.md" "${FILES[@]}"
done

# rows prints only the table lines of a wsbench report.
rows() { grep '^|' "$1" || true; }

version_of() { # module dir, module path
	(cd "$1" && go list -m -f '{{.Version}}' "$2")
}
wsgate_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then
	wsgate_rev="$wsgate_rev + uncommitted changes"
fi
mem_gib=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

BLOCK=$BIN/block.md
{
	if [[ $ONLY == pubsub ]]; then
		echo "## Fan-out: $SUBS subscribers, ${PUB_SIZE:-0}-byte data"
	else
		echo "## wsgate and its peers"
	fi
	echo
	echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/peers/compare.sh\` (\`make compare\`)."
	echo
	echo "- Machine: $(nproc) CPUs ($model), Linux $(uname -r), ${mem_gib} GiB RAM, $(go env GOVERSION); driver and server share the CPUs, loopback only."
	echo "- Servers: wsgate ($wsgate_rev); gorilla/websocket $(version_of bench/peers/gorilla github.com/gorilla/websocket); lxzan/gws $(version_of bench/peers/gws github.com/lxzan/gws); lesismal/nbio $(version_of bench/peers/nbio github.com/lesismal/nbio); panjf2000/gnet $(version_of bench/peers/gnet github.com/panjf2000/gnet/v2) with gobwas/ws $(version_of bench/peers/gnet github.com/gobwas/ws). How each peer is configured, and why: the package comment of bench/peers/NAME."
	if [[ $ONLY == all ]]; then
		echo "- Scenarios: connect $CONNS connections at $CONNECT_RATE/s and hold them $HOLD; echo $ECHO_CONNS connections x $ECHO_SIZE B for $ECHO_DURATION; pub/sub $SUBS subscribers on one channel for $PUB_DURATION at $PUB_RATE publishes/s (steady, $((SUBS * PUB_RATE)) deliveries/s) and at $OVERLOAD_RATE publishes/s (overload)."
	else
		echo "- Scenarios: pub/sub $SUBS subscribers on one channel, data of $PUB_SIZE bytes (0: the bare timestamp object, about 35 bytes), for $PUB_DURATION at $PUB_RATE publishes/s (steady, $((SUBS * PUB_RATE)) deliveries/s) and at $OVERLOAD_RATE publishes/s (overload)."
	fi
	echo "- Method: $ROUNDS round(s); the server order rotates each round; every scenario runs on a fresh server process; CPU per operation is the server's user+system time from /proc/PID/stat divided by the operations it served."
	echo
	echo "### Headline: round $ROUNDS (steady pub/sub; charts in $IMG_DIR)"
	echo
	cat "$BIN/headline.md"
	if ((ROUNDS > 1)); then
		echo
		echo "### Every round (spread between rounds is drift, not a difference)"
		for ((round = 1; round <= ROUNDS; round++)); do
			echo
			echo "Round $round:"
			echo
			rows "$BIN/main-$round.md"
		done
	fi
	echo
	echo "### Pub/sub overload: $OVERLOAD_RATE publishes/s to $SUBS subscribers"
	for ((round = 1; round <= ROUNDS; round++)); do
		echo
		echo "Round $round:"
		echo
		rows "$BIN/overload-$round.md"
	done
	if [[ -s $BIN/writev.md ]]; then
		echo
		echo "### wsgate writev calls per delivered message (from its /metrics)"
		echo
		echo "| run | writev calls | deliveries | writev per delivery |"
		echo "|---|---:|---:|---:|"
		cat "$BIN/writev.md"
	fi
	echo
	echo "### Commands"
	echo
	echo "NAME is the server, ROUND the round, PID the server's process id."
	echo
	echo '```sh'
	for name in "${servers[@]}"; do
		for mode in echo pubsub; do
			server_cmd "$name" "$mode"
			echo "$(show)    # $name, $mode scenarios"
		done
	done
	for sc in "${SCENARIOS[@]}"; do
		driver_cmd "$sc" NAME ROUND PID
		show
		echo
	done
	echo "wsbench report $RESULTS_DIR/{connect,echo,pubsub-steady}-*-ROUND.json -o $IMG_DIR -md TABLE"
	echo "wsbench report $RESULTS_DIR/pubsub-overload-*-ROUND.json -o SCRATCH -md TABLE"
	echo '```'
	echo
	if [[ ${#FAILED[@]} -gt 0 ]]; then
		echo "Failed runs (missing from the tables): ${FAILED[*]}."
	else
		echo "Failed runs: none."
	fi
} >"$BLOCK"

# Splice the block between the markers, adding them at the end when absent.
BEGIN="<!-- $MARKER:begin -->"
END="<!-- $MARKER:end -->"
mkdir -p "$(dirname "$DOC")"
touch "$DOC"
if grep -qF "$BEGIN" "$DOC" && grep -qF "$END" "$DOC"; then
	awk -v begin="$BEGIN" -v end="$END" -v block="$BLOCK" '
		index($0, begin) { print; while ((getline line < block) > 0) print line; skip = 1; next }
		index($0, end) { skip = 0 }
		!skip { print }
	' "$DOC" >"$BIN/doc.md"
else
	{
		cat "$DOC"
		[[ -s $DOC ]] && echo
		echo "$BEGIN"
		cat "$BLOCK"
		echo "$END"
	} >"$BIN/doc.md"
fi
cat "$BIN/doc.md" >"$DOC"
log "table written to $DOC; results in $RESULTS_DIR; images in $IMG_DIR"

if [[ ${#FAILED[@]} -gt 0 ]]; then
	log "failed runs: ${FAILED[*]}"
	exit 1
fi
