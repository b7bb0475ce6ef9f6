#!/usr/bin/env bash
# bench/million.sh: one million concurrent WebSocket connections on one host (`make million`).
#
# It checks the host, starts nats-server with JetStream and as many `wsgate -nats` nodes as the
# connections need on one SO_REUSEPORT port, then runs `wsbench pubsub`: every connection
# subscribes to one channel, connects at a paced rate over loopback source addresses, is held for
# HOLD with pings on while one message is published every PUBLISH_EVERY seconds through the HTTP
# API of node 1 (each publish is CONNS deliveries across all nodes). While it runs it samples the
# wsgate, NATS and driver processes (CPU ticks, RSS), /proc/net/sockstat, /proc/meminfo and every
# node's /api/stats once per SAMPLE_EVERY, prints wsbench's progress lines and its own, and at the
# end writes into OUT:
#   report.json   every number of the run (connections, failures by reason, deliveries, latency,
#                 memory per connection, CPU by phase, PIDs it started, sysctl changes)
#   summary.txt   the same as text (also printed)
#   samples.tsv   the sampled series; progress.log the progress lines with their times
#   connections.svg memory.svg cpu.svg latency.svg   charts
#   wsbench.json  wsbench's own result; nats.log, node*.log
# Exit status: 0 the run completed and wrote its report (report.json "ok" says whether every
# target was met; STRICT=1 makes a missed target exit 3); 1 it failed; 2 the host cannot carry
# the run or something it needs is missing (nothing was started).
#
# Environment (defaults in brackets):
#   CONNS [1000000]        connections to open and hold
#   PER_NODE [18000]       connections per wsgate process (the open-files limit bounds it)
#   PER_DRIVER [15000]     connections per wsbench worker process (-procs); up to the open-files
#                          limit less 512 (19488 here): fewer worker processes for a very large run
#   RATE [5000]            connections opened per second over all workers
#   HOLD [5m]              how long the connections are held (wsbench -duration)
#   PUBLISH_EVERY [5]      seconds between publishes (one channel: each is CONNS deliveries)
#   PING_INTERVAL [25s]    wsgate -ping-interval (pings on during the hold)
#   WHEEL_TICK [250ms]     wsgate -wheel-tick: a coarse tick batches each node's pings into a few
#                          wake-ups a second (about 2.7x less heartbeat CPU per idle connection
#                          than the 10 ms default at 15 000 per node; docs/benchmarks.md)
#   HANDSHAKE_TIMEOUT [30s] wsgate -handshake-timeout (a busy machine handshakes slowly)
#   DIAL_TIMEOUT [30s]     wsbench -timeout: connect plus handshake, and each HTTP publish
#   DRAIN [30s]            wsbench -drain: wait for the last deliveries after the hold
#   SRC [127.0.0.2-127.0.0.250]  loopback source addresses (wsbench -src)
#   ADDR [127.0.0.1:0]     the shared WebSocket address (port 0: the first node picks one)
#   PIN [0]                1: pin node i to CPU i mod CPUs (wsgate -cpus)
#   NODE_GOGC []           GOGC for the wsgate nodes (empty: Go's default)
#   SAMPLE_EVERY [1]       seconds between samples
#   APPLY_SYSCTL [0]       1: apply wsgate's bundled sysctl profile for the run (root), restoring
#                          every changed value afterwards; otherwise sysctls are only read
#   NATS_SERVER [bin/nats-server]  nats-server binary (the default is installed with
#                          `make nats-server` when missing)
#   BIN [bin]              directory with wsgate and wsbench; BUILD [1] runs `make build` first
#   OUT [bench/out/million-<time>]  where the results go
#   STRICT [0]             1: exit 3 when a target (all held, no unexpected close, ratio 1.0,
#                          no seq gap) is missed
#   PING_CPU_US [140] FANOUT_CPU_US [25]  CPU of both ends per ping and per delivery for the
#                          start-up warning when the run is likely to need more CPUs than the host has
#   Host-check estimates: KERNEL_KB_PER_CONN [10] (socket memory of a loopback pair),
#   RSS_KB_PER_CONN [1] (wsgate), DRIVER_KB_PER_CONN [1] (wsbench), NODE_BASE_MB [14],
#   DRIVER_BASE_MB [16], HEADROOM_MB [1024], TCP_PAGES_PER_CONN [1] (tcp_mem high mark)
#
# Every process it starts is stopped by PID on exit, on Ctrl-C and on failure; the run is bounded
# by the connect time at RATE, HOLD and DRAIN plus a margin, after which it stops wsbench itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONNS=${CONNS:-1000000}
PER_NODE=${PER_NODE:-18000}
PER_DRIVER=${PER_DRIVER:-15000}
RATE=${RATE:-5000}
HOLD=${HOLD:-5m}
PUBLISH_EVERY=${PUBLISH_EVERY:-5}
PING_INTERVAL=${PING_INTERVAL:-25s}
WHEEL_TICK=${WHEEL_TICK:-250ms}
HANDSHAKE_TIMEOUT=${HANDSHAKE_TIMEOUT:-30s}
DIAL_TIMEOUT=${DIAL_TIMEOUT:-30s}
DRAIN=${DRAIN:-30s}
SRC=${SRC:-127.0.0.2-127.0.0.250}
ADDR=${ADDR:-127.0.0.1:0}
PIN=${PIN:-0}
NODE_GOGC=${NODE_GOGC:-}
SAMPLE_EVERY=${SAMPLE_EVERY:-1}
APPLY_SYSCTL=${APPLY_SYSCTL:-0}
BIN=${BIN:-bin}
BUILD=${BUILD:-1}
STRICT=${STRICT:-0}
KERNEL_KB_PER_CONN=${KERNEL_KB_PER_CONN:-10}
RSS_KB_PER_CONN=${RSS_KB_PER_CONN:-1}
DRIVER_KB_PER_CONN=${DRIVER_KB_PER_CONN:-1}
NODE_BASE_MB=${NODE_BASE_MB:-14}
DRIVER_BASE_MB=${DRIVER_BASE_MB:-16}
HEADROOM_MB=${HEADROOM_MB:-1024}
TCP_PAGES_PER_CONN=${TCP_PAGES_PER_CONN:-1}
OUT=${OUT:-bench/out/million-$(date -u +%Y%m%dT%H%M%SZ)}
COMMAND="$*"
[[ -z "$COMMAND" ]] && COMMAND="CONNS=$CONNS PER_NODE=$PER_NODE PER_DRIVER=$PER_DRIVER RATE=$RATE HOLD=$HOLD PUBLISH_EVERY=$PUBLISH_EVERY PING_INTERVAL=$PING_INTERVAL WHEEL_TICK=$WHEEL_TICK APPLY_SYSCTL=$APPLY_SYSCTL PIN=$PIN bash bench/million.sh"

say() {
	set_elapsed
	printf '[million %6ss] %s\n' "$ELAPSED" "$*" >&2
}
die() { printf 'million.sh: %s\n' "$*" >&2; exit 1; }
refuse() { printf 'million.sh: refusing to run: %s\n' "$*" >&2; exit 2; }
T0=$EPOCHREALTIME
T0_US=${T0/./}
# set_elapsed: ELAPSED = seconds since the start, to 0.01 s. Bash arithmetic only: on a machine
# this busy a fork costs up to a second, and the monitoring loop must keep up with wsbench.
set_elapsed() {
	local us=$((${EPOCHREALTIME/./} - T0_US))
	printf -v ELAPSED '%d.%02d' $((us / 1000000)) $((us / 10000 % 100))
}
isnum() { [[ "$1" =~ ^[0-9]+$ ]]; }
# secs DURATION: a Go-style duration (90s, 5m, 1m30s, 2h) or plain seconds, in whole seconds.
secs() {
	local d=$1 total=0 n u
	if isnum "$d"; then echo "$d"; return; fi
	while [[ -n "$d" ]]; do
		[[ "$d" =~ ^([0-9]+)(h|m|s|ms)(.*)$ ]] || { echo "million.sh: bad duration '$1'" >&2; return 1; }
		n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
		case $u in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; ms) total=$((total + n / 1000)) ;; esac
	done
	echo "$total"
}

# ------------------------------------------------------------------ arguments
for v in CONNS PER_NODE PER_DRIVER RATE PUBLISH_EVERY SAMPLE_EVERY; do
	isnum "${!v}" && ((${!v} > 0)) || refuse "$v must be a positive whole number (got '${!v}')"
done
HOLD_S=$(secs "$HOLD") || exit 2
DRAIN_S=$(secs "$DRAIN") || exit 2
DIAL_S=$(secs "$DIAL_TIMEOUT") || exit 2
PING_S=$(secs "$PING_INTERVAL") || exit 2
((HOLD_S > 0)) || refuse "HOLD must be at least 1s"
[[ "$SRC" =~ ^127\.0\.0\.([0-9]+)-127\.0\.0\.([0-9]+)$ ]] || refuse "SRC must be a loopback range 127.0.0.A-127.0.0.B (got '$SRC')"
SRC_N=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))
((SRC_N > 0)) || refuse "SRC range is empty"
[[ "$ADDR" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$ ]] || refuse "ADDR must be a 127.x address with a port (got '$ADDR')"
NODES=$(((CONNS + PER_NODE - 1) / PER_NODE))
DRIVERS=$(((CONNS + PER_DRIVER - 1) / PER_DRIVER))
NCPU=$(nproc)

# CPU budget, a warning and not a refusal (a host may be faster than the one measured): both ends
# of every connection run here, and on a 2-CPU test host (docs/benchmarks.md §13, runs G and H)
# wsgate and wsbench together spent about PING_CPU_US of CPU per ping and FANOUT_CPU_US per
# delivery above that, the kernel's floor included.
PING_CPU_US=${PING_CPU_US:-140}
FANOUT_CPU_US=${FANOUT_CPU_US:-25}
for v in PING_CPU_US FANOUT_CPU_US; do
	isnum "${!v}" || refuse "$v must be a whole number of µs (got '${!v}')"
done
BUDGET_MILLI=$((CONNS * FANOUT_CPU_US / PUBLISH_EVERY / 1000))
((PING_S > 0)) && BUDGET_MILLI=$((BUDGET_MILLI + CONNS * PING_CPU_US / PING_S / 1000))
if ((BUDGET_MILLI > NCPU * 1000 * 8 / 10)); then
		say "warning: pings every ${PING_S}s to $CONNS connections and a publish to all of them every ${PUBLISH_EVERY}s need about $((BUDGET_MILLI / 1000)).$((BUDGET_MILLI % 1000 / 100)) CPUs for both ends (at ${PING_CPU_US} µs per ping and ${FANOUT_CPU_US} µs per delivery, measured on a 2-CPU host), and this host has $NCPU: expect missed pongs and a growing fan-out backlog; longer PING_INTERVAL and PUBLISH_EVERY, or fewer CONNS, fit (the 2-CPU host held 1,000,000 with PING_INTERVAL=120s PUBLISH_EVERY=60)"
fi

# ------------------------------------------------------------------ host check
for tool in curl jq awk pgrep; do
	command -v "$tool" >/dev/null || refuse "$tool is not installed (apt-get install ${tool/pgrep/procps})"
done
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
sysval() { tr -s ' \t' '  ' <"/proc/sys/${1//.//}"; }
MEM_TOTAL_KB=$(meminfo MemTotal)
MEM_AVAIL_KB=$(meminfo MemAvailable)
NEED_KB=$((CONNS * (KERNEL_KB_PER_CONN + RSS_KB_PER_CONN + DRIVER_KB_PER_CONN) + (NODES * NODE_BASE_MB + DRIVERS * DRIVER_BASE_MB + HEADROOM_MB) * 1024))
if ((NEED_KB > MEM_AVAIL_KB)); then
	refuse "$CONNS connections need about $((NEED_KB / 1024)) MiB ($CONNS x ($KERNEL_KB_PER_CONN KB kernel + $RSS_KB_PER_CONN KB wsgate + $DRIVER_KB_PER_CONN KB wsbench) + $NODES nodes x $NODE_BASE_MB MB + $DRIVERS drivers x $DRIVER_BASE_MB MB + $HEADROOM_MB MB headroom), but MemAvailable is $((MEM_AVAIL_KB / 1024)) MiB: ask for at most about $(((MEM_AVAIL_KB - (NODES * NODE_BASE_MB + DRIVERS * DRIVER_BASE_MB + HEADROOM_MB) * 1024) / (KERNEL_KB_PER_CONN + RSS_KB_PER_CONN + DRIVER_KB_PER_CONN))) connections"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [[ "$NOFILE" != unlimited ]]; then
	((PER_NODE + 200 <= NOFILE)) || refuse "PER_NODE=$PER_NODE connections plus listeners do not fit under the open-files limit $NOFILE: use PER_NODE <= $((NOFILE - 200)) (more nodes)"
	((PER_DRIVER + 512 <= NOFILE)) || refuse "PER_DRIVER=$PER_DRIVER connections do not fit in one wsbench worker under the open-files limit $NOFILE: use PER_DRIVER <= $((NOFILE - 512))"
fi

NATS_BIN=${NATS_SERVER:-$BIN/nats-server}
if [[ ! -x "$NATS_BIN" ]]; then
	if [[ -z "${NATS_SERVER:-}" ]]; then
		echo "million.sh: $NATS_BIN missing: installing it with make nats-server" >&2
		make -s nats-server BIN="$BIN" >&2 || refuse "make nats-server failed: no nats-server to run the cluster"
	fi
	[[ -x "$NATS_BIN" ]] || refuse "nats-server not found at $NATS_BIN (NATS_SERVER); install one with make nats-server"
fi
if [[ "$BUILD" == 1 ]]; then
	make -s build BIN="$BIN" >&2 || die "make build failed"
fi
for b in wsgate wsbench; do [[ -x "$BIN/$b" ]] || refuse "$BIN/$b not found (make build)"; done

# Sysctl: the bundled profile is checked; it is applied only with APPLY_SYSCTL=1, after
# recording every value it may change so the exit handler can restore them.
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SYSCTL_APPLIED=false
SYSCTL_RESTORED=null
SYSCTL_CHANGED=()
SYSCTL_CHECK_RC=0
"$BIN/wsgate" sysctl check -addr "$ADDR" -admin-addr '' >"$OUT/sysctl-check.txt" 2>&1 || SYSCTL_CHECK_RC=$?
if ((SYSCTL_CHECK_RC != 0)); then
	echo "million.sh: wsgate sysctl check: the host falls short of the bundled profile (rows below; $OUT/sysctl-check.txt)" >&2
	grep -E ' (low|high|differs|error)' "$OUT/sysctl-check.txt" | grep -v '^RLIMIT' | sed 's/^/  /' >&2 || true
fi
if [[ "$APPLY_SYSCTL" == 1 ]]; then
	(($(id -u) == 0)) || refuse "APPLY_SYSCTL=1 needs root"
	: >"$OUT/sysctl-before.tsv"
	for key in $(awk 'NR > 1 && $1 ~ /\./ { print $1 }' "$OUT/sysctl-check.txt"); do
		[[ -r "/proc/sys/${key//.//}" ]] && printf '%s\t%s\n' "$key" "$(sysval "$key")" >>"$OUT/sysctl-before.tsv"
	done
fi

# Limits the run must fit, read after any apply (see restore_sysctl for the way back).
check_kernel_limits() {
	local lo hi fmax watches tcpmax
	read -r lo hi <"/proc/sys/net/ipv4/ip_local_port_range"
	((SRC_N * (hi - lo + 1) >= CONNS + CONNS / 10)) || refuse "$SRC_N source addresses x $((hi - lo + 1)) ports (ip_local_port_range $lo-$hi) leave too few ports for $CONNS connections: widen SRC"
	fmax=$(sysval fs.file-max)
	((fmax >= 2 * CONNS + 20000)) || refuse "fs.file-max $fmax < $((2 * CONNS + 20000)) (both ends of every connection are files here): APPLY_SYSCTL=1"
	watches=$(sysval fs.epoll.max_user_watches)
	((watches >= 2 * CONNS + 1000)) || refuse "fs.epoll.max_user_watches $watches < $((2 * CONNS + 1000)) (server and driver both register every connection): APPLY_SYSCTL=1"
	tcpmax=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_mem)
	((tcpmax >= CONNS * TCP_PAGES_PER_CONN)) || refuse "net.ipv4.tcp_mem high mark $tcpmax pages < $((CONNS * TCP_PAGES_PER_CONN)) ($TCP_PAGES_PER_CONN page per connection for pings and fan-out in flight; past it the kernel refuses socket memory): APPLY_SYSCTL=1 applies the profile and restores it afterwards"
	if [[ -r /proc/sys/net/netfilter/nf_conntrack_count ]] && (($(cat /proc/sys/net/netfilter/nf_conntrack_count) > 0)); then
		local ctmax
		ctmax=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
		((ctmax >= CONNS + 10000)) || refuse "connections are tracked (nf_conntrack_count > 0) and nf_conntrack_max $ctmax < $CONNS: APPLY_SYSCTL=1"
	fi
}

# ------------------------------------------------------------------ processes and cleanup
WORK=$(mktemp -d)
NATS_PID=
NODE_PIDS=()
ADMINS=()
WSB_PID=
DRIVER_SEEN=()

restore_sysctl() {
	[[ "$SYSCTL_APPLIED" == true ]] || return 0
	local key old cur ok=true
	while IFS=$'\t' read -r key old; do
		cur=$(sysval "$key")
		if [[ "$cur" != "$old" ]]; then
			printf '%s\n' "$old" >"/proc/sys/${key//.//}" 2>/dev/null || true
			cur=$(sysval "$key")
			if [[ "$cur" == "$old" ]]; then
				echo "million.sh: restored $key = $old" >&2
			else
				echo "million.sh: could not restore $key: '$cur', was '$old'" >&2
				ok=false
			fi
		fi
	done <"$OUT/sysctl-before.tsv"
	SYSCTL_RESTORED=$ok
	SYSCTL_APPLIED=restored
}

# stop_pids SIGNAL_WAIT_S PID...: TERM, wait up to SIGNAL_WAIT_S, then KILL; reaps children.
stop_pids() {
	local wait_s=$1 p deadline
	shift
	(($# > 0)) || return 0
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	deadline=$((SECONDS + wait_s))
	for p in "$@"; do
		while alive "$p" && ((SECONDS < deadline)); do sleep 0.1; done
		if alive "$p"; then
			echo "million.sh: pid $p did not stop within ${wait_s}s: SIGKILL" >&2
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
# alive PID: the process exists and is not a zombie.
alive() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[[ -n "$st" && "${st:0:1}" != Z ]]
}

CLEANED=0
cleanup() {
	local rc=$?
	((CLEANED)) && return
	CLEANED=1
	trap - INT TERM
	[[ -n "$WSB_PID" ]] && stop_pids 40 "$WSB_PID"
	local d live=()
	for d in "${DRIVER_SEEN[@]}"; do alive "$d" && live+=("$d"); done
	((${#live[@]})) && stop_pids 10 "${live[@]}"
	((${#NODE_PIDS[@]})) && stop_pids 20 "${NODE_PIDS[@]}"
	[[ -n "$NATS_PID" ]] && stop_pids 10 "$NATS_PID"
	restore_sysctl
	if [[ -f "$OUT/report.json" && "$SYSCTL_RESTORED" != null ]]; then
		jq --argjson r "$SYSCTL_RESTORED" '.sysctl.restored = $r' "$OUT/report.json" >"$WORK/r.json" && mv "$WORK/r.json" "$OUT/report.json"
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "million.sh: interrupted: stopping everything it started" >&2; exit 130' INT TERM

if [[ "$APPLY_SYSCTL" == 1 ]]; then
	echo "million.sh: applying the bundled sysctl profile (old values in $OUT/sysctl-before.tsv, restored on exit)" >&2
	SYSCTL_APPLIED=true
	"$BIN/wsgate" sysctl apply -addr "$ADDR" -admin-addr '' >"$OUT/sysctl-apply.txt" 2>&1 || true
	grep '^set ' "$OUT/sysctl-apply.txt" >&2 || true
	mapfile -t SYSCTL_CHANGED < <(grep '^set ' "$OUT/sysctl-apply.txt" | sed 's/^set //')
fi
check_kernel_limits

# wait_log FILE REGEX [SECONDS]: prints the first match of REGEX in FILE, waiting for it.
wait_log() {
	local i
	for ((i = 0; i < ${3:-30} * 10; i++)); do
		if m=$(grep -oE "$2" "$1" 2>/dev/null | head -1) && [[ -n "$m" ]]; then
			echo "$m"
			return 0
		fi
		sleep 0.1
	done
	echo "million.sh: no '$2' in $1 within ${3:-30}s:" >&2
	tail -5 "$1" >&2
	return 1
}

say "host: $NCPU CPUs, MemAvailable $((MEM_AVAIL_KB / 1024)) MiB (the run needs about $((NEED_KB / 1024)) MiB), open files $NOFILE"
say "plan: $CONNS connections, $NODES wsgate nodes x $PER_NODE, $DRIVERS wsbench workers x $PER_DRIVER, $RATE conns/s, hold ${HOLD_S}s, a publish every ${PUBLISH_EVERY}s, pings every $PING_INTERVAL, wheel tick $WHEEL_TICK"
"$NATS_BIN" -js -a 127.0.0.1 -p -1 -sd "$WORK/js" >"$OUT/nats.log" 2>&1 &
NATS_PID=$!
NATS=nats://$(wait_log "$OUT/nats.log" 'client connections on 127\.0\.0\.1:[0-9]+' | grep -oE '127\.0\.0\.1:[0-9]+') || die "nats-server did not start"

# start_node N ADDR: one wsgate cluster node with its own admin port.
start_node() {
	local n=$1 cpus=()
	((PIN == 1)) && cpus=(-cpus $(((n - 1) % NCPU)))
	GOGC=${NODE_GOGC:-${GOGC:-}} "$BIN/wsgate" -nats "$NATS" -node-id "node$n" -addr "$2" -admin-addr 127.0.0.1:0 \
		-loops 1 "${cpus[@]}" -handshake-timeout "$HANDSHAKE_TIMEOUT" -ping-interval "$PING_INTERVAL" -wheel-tick "$WHEEL_TICK" \
		-shutdown-timeout 5s -log-format text >"$OUT/node$n.log" 2>&1 &
	NODE_PIDS+=($!)
}
[[ -z "$NODE_GOGC" ]] && unset NODE_GOGC
start_node 1 "$ADDR"
LISTEN=$(wait_log "$OUT/node1.log" 'addr=127\.[0-9.]+:[0-9]+' 60 | cut -d= -f2) || die "node 1 did not start"
for ((n = 2; n <= NODES; n++)); do start_node "$n" "$LISTEN"; done
for ((n = 1; n <= NODES; n++)); do
	a=$(wait_log "$OUT/node$n.log" 'admin=127\.0\.0\.1:[0-9]+' 120 | cut -d= -f2) || die "node $n did not start"
	ADMINS+=("$a")
done
SERVER_PIDS=$(
	IFS=,
	echo "${NODE_PIDS[*]}"
)
STAT_URLS=()
for a in "${ADMINS[@]}"; do STAT_URLS+=("http://$a/api/stats"); done
say "nats-server pid $NATS_PID at $NATS; $NODES wsgate nodes on ws://$LISTEN/ (pids ${NODE_PIDS[*]:0:5}${NODE_PIDS[5]:+ ...}); publishing through http://${ADMINS[0]}/api/publish"

# ------------------------------------------------------------------ sampling
HZ=$(getconf CLK_TCK)
PAGE=$(getconf PAGESIZE)
SAMPLES=$OUT/samples.tsv
printf 't_s\tphase\tsrv_ticks\tsrv_rss_kb\tnats_ticks\tnats_rss_kb\tdrv_ticks\tdrv_rss_kb\ttcp_inuse\ttcp_mem_pages\ttcp_tw\tslab_kb\tsunreclaim_kb\tmemavail_kb\tconntrack\tconns\tdeliveries\tnodes_up\tdrivers_up\n' >"$SAMPLES"
PHASE=pre
# procsum VAR PID...: sets VAR to "ticks rss_kb count" added up over the live processes among PID... (utime plus
# stime from /proc/PID/stat, resident pages from /proc/PID/statm); a process that is gone or a
# zombie counts for nothing.
procsum() {
	local p st sm ticks=0 rss=0 n=0 out=$1
	shift
	local -a f
	for p in "$@"; do
		{ read -r st <"/proc/$p/stat" && read -r sm <"/proc/$p/statm"; } 2>/dev/null || continue
		st=${st##*) }
		f=($st)
		[[ ${f[0]} == Z ]] && continue
		ticks=$((ticks + f[11] + f[12]))
		f=($sm)
		rss=$((rss + f[1] * PAGE / 1024))
		n=$((n + 1))
	done
	printf -v "$out" '%s %s %s' "$ticks" "$rss" "$n"
}
# sample: one line of samples.tsv (one awk, one curl and one pgrep per sample).
sample() {
	local t p drv=() srv nats dr stats ct=0
	set_elapsed
	t=$ELAPSED
	if [[ -n "$WSB_PID" ]]; then
		mapfile -t drv < <(pgrep -P "$WSB_PID" 2>/dev/null || true)
		for p in "${drv[@]}"; do
			[[ " ${DRIVER_SEEN[*]} " == *" $p "* ]] || DRIVER_SEEN+=("$p")
		done
		drv+=("$WSB_PID")
	fi
	procsum srv "${NODE_PIDS[@]}"
	procsum nats "$NATS_PID"
	procsum dr "${drv[@]}"
	[[ -r /proc/sys/net/netfilter/nf_conntrack_count ]] && read -r ct </proc/sys/net/netfilter/nf_conntrack_count
	stats=$(curl -s -Z --parallel-max 64 --max-time 2 "${STAT_URLS[@]}" 2>/dev/null |
		awk 'BEGIN { RS = "[,{}]" } /"connections":/ { split($0, a, ":"); c += a[2] } /"deliveries":/ { split($0, a, ":"); d += a[2] } /"connections":/ { seen = 1 } END { if (seen) printf "%d %d", c, d; else printf "-1 -1" }') || stats="-1 -1"
	awk -v t="$t" -v phase="$PHASE" -v srv="$srv" -v nats="$nats" -v drv="$dr" -v stats="$stats" -v ct="$ct" '
		FILENAME == "/proc/net/sockstat" && $1 == "TCP:" { inuse = $3; tw = $7; mem = $11; next }
		FILENAME == "/proc/meminfo" { if ($1 == "Slab:") slab = $2; if ($1 == "SUnreclaim:") sur = $2; if ($1 == "MemAvailable:") avail = $2; next }
		END { split(srv, s, " "); split(nats, n, " "); split(drv, d, " "); split(stats, a, " ")
			printf "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n",
			t, phase, s[1], s[2], n[1], n[2], d[1], d[2], inuse, mem, tw, slab, sur, avail, ct, a[1], a[2], s[3], d[3] }
	' /proc/net/sockstat /proc/meminfo >>"$SAMPLES"
}
# status_line: a progress line of this script's own from the last sample.
status_line() {
	tail -1 "$SAMPLES" | awk -F'\t' -v hz="$HZ" -v prev="$1" '
		{ split(prev, p, "\t"); dt = $1 - p[1]; cpu = (dt > 0 && p[3] != "") ? ($3 - p[3]) / hz / dt : 0
		  printf "held %d, wsgate RSS %.0f MiB, slab %.0f MiB, TCP mem %.0f MiB, MemAvailable %.0f MiB, wsgate CPU %.2f cores, nodes up %d", $16, $4 / 1024, $12 / 1024, $10 * 4 / 1024, $14 / 1024, cpu, $18 }'
}

sample
sleep 1
sample
say "before any connection: $(status_line "")"

# ------------------------------------------------------------------ the run
CONNECT_S=$((CONNS / RATE + 1))
LIMIT_S=$((CONNECT_S * 3 / 2 + DIAL_S + 30 + HOLD_S + DRAIN_S + 60))
say "wsbench pubsub: at most ${LIMIT_S}s from now, then it is stopped"
"$BIN/wsbench" pubsub -url "ws://$LISTEN/" -conns "$CONNS" -channels 1 -procs "$DRIVERS" -src "$SRC" \
	-rate "$RATE" -timeout "$DIAL_TIMEOUT" -duration "${HOLD_S}s" -drain "${DRAIN_S}s" \
	-publish-rate "$(awk -v e="$PUBLISH_EVERY" 'BEGIN { printf "%.6f", 1 / e }')" \
	-publish-url "http://${ADMINS[0]}/api/publish" -server-pid "$SERVER_PIDS" -label "wsgate-$NODES-nodes" \
	-json "$OUT/wsbench.json" >"$OUT/wsbench.out" 2>"$OUT/wsbench.err" &
WSB_PID=$!
PHASE=setup
: >"$OUT/progress.log"
LINES=0
DEADLINE=$((SECONDS + LIMIT_S))
NEXT_STATUS=$((SECONDS + 10))
PREV=$(tail -1 "$SAMPLES")
while alive "$WSB_PID"; do
	sleep "$SAMPLE_EVERY"
	# New wsbench lines: shown with the time since the script started, phase tracked.
	n=$(wc -l <"$OUT/wsbench.err")
	set_elapsed
	if ((n > LINES)); then
		while IFS= read -r l; do
			case $l in
			"[pubsub setup]"*) PHASE=setup ;;
			"[pubsub measure]"*) PHASE=measure ;;
			"[pubsub drain]"* | "[pubsub done]"*) PHASE=drain ;;
			esac
			printf '%s %s\n' "$ELAPSED" "$l" >>"$OUT/progress.log"
			printf '[wsbench %6ss] %s\n' "$ELAPSED" "$l" >&2
		done < <(sed -n "$((LINES + 1)),${n}p" "$OUT/wsbench.err")
		LINES=$n
	fi
	sample || say "sampling failed"
	if ((SECONDS >= NEXT_STATUS)); then
		line=$(status_line "$PREV")
		say "$line"
		printf '%s [million] %s\n' "$ELAPSED" "$line" >>"$OUT/progress.log"
		PREV=$(tail -1 "$SAMPLES")
		NEXT_STATUS=$((SECONDS + 10))
	fi
	if ((SECONDS >= DEADLINE)); then
		say "time limit of ${LIMIT_S}s reached: stopping wsbench"
		stop_pids 40 "$WSB_PID"
		break
	fi
done
WSB_RC=0
wait "$WSB_PID" 2>/dev/null || WSB_RC=$?
WSB_PID_DONE=$WSB_PID
WSB_PID=
sed -n "$((LINES + 1)),\$p" "$OUT/wsbench.err" | while IFS= read -r l; do printf '[wsbench] %s\n' "$l" >&2; done
PHASE=post
sample
[[ -s "$OUT/wsbench.json" ]] || die "wsbench wrote no result (exit $WSB_RC): $(tail -3 "$OUT/wsbench.err")"
((WSB_RC == 0 || WSB_RC == 3)) || say "wsbench exited with status $WSB_RC: $(tail -1 "$OUT/wsbench.err")"

# ------------------------------------------------------------------ analysis
# measured.json: what the samples say. Hold = samples in wsbench's measured phase. A sample
# interval is fan-out when the nodes' delivery counters moved in it; heartbeat-only when they
# moved neither in it nor in the interval before (the tail of a fan-out is not counted as idle).
awk -F'\t' -v hz="$HZ" -v ping_s="$PING_S" 'function div(a, b) { return b > 0 ? a / b : 0 }
	NR == 1 { next }
	{ n++; T[n] = $1; P[n] = $2; ST[n] = $3; SR[n] = $4; NT[n] = $5; NR_[n] = $6; DT[n] = $7; DR[n] = $8
	  MEM[n] = $10; SLAB[n] = $12; SUR[n] = $13; AV[n] = $14; C[n] = $16; D[n] = $17
	  if (C[n] < 0) { C[n] = n > 1 ? C[n-1] : 0; D[n] = n > 1 ? D[n-1] : 0 } }  # /api/stats did not answer
	END {
		b = 2  # the second sample: all nodes up, before any connection
		for (i = 1; i <= n; i++) {
			if (P[i] == "setup" && !s0) s0 = i
			if (P[i] == "measure") { if (!h0) h0 = i; h1 = i }
			if (AV[i] > 0 && (minav == 0 || AV[i] < minav)) minav = AV[i]
			if (C[i] > peak) peak = C[i]
			if (MEM[i] > maxmem) maxmem = MEM[i]
			if (SR[i] > maxrss) maxrss = SR[i]
		}
		if (!h0) { h0 = n; h1 = n }
		# The phase is known from progress lines that come up to 2 s late, so the last "measure"
		# samples may already see wsbench closing: the hold ends before that final decline.
		while (h1 > h0 && C[h1] < C[h1-1]) h1--
		held = C[h1]; heldmin = held
		for (i = h0; i <= h1; i++) if (C[i] < heldmin) heldmin = C[i]
		# Setup: from the sample before wsbench started to the first hold sample.
		sb = s0 > 1 ? s0 - 1 : 1
		setup_s = T[h0] - T[sb]; setup_srv = (ST[h0] - ST[sb]) / hz; setup_drv = (DT[h0] - DT[sb]) / hz
		opened = C[h0]
		for (i = h0 + 1; i <= h1; i++) {
			dt = T[i] - T[i-1]; dd = D[i] - D[i-1]; ds = (ST[i] - ST[i-1]) / hz
			hold_s += dt; hold_srv += ds; hold_nats += (NT[i] - NT[i-1]) / hz; hold_drv += (DT[i] - DT[i-1]) / hz
			if (dd > 0) { fan_s += dt; fan_srv += ds; fan_d += dd; fan_n++ }
			else if (i > h0 + 1 && D[i-1] == D[i-2]) { quiet_s += dt; quiet_srv += ds; quiet_nats += (NT[i] - NT[i-1]) / hz; quiet_drv += (DT[i] - DT[i-1]) / hz }
		}
		hb = quiet_s > 0 ? quiet_srv / quiet_s : -1
		fan_extra = (hb >= 0) ? fan_srv - hb * fan_s : fan_srv
		hbv = (hb >= 0) ? hb : 0
		printf "{"
		printf "\"samples\":%d,\"hold_samples\":%d,\"held_at_end_of_hold\":%d,\"held_min_during_hold\":%d,\"peak_connections\":%d,", n, h1 - h0 + 1, held, heldmin, peak
		printf "\"memory\":{\"server_rss_kb_before\":%d,\"server_rss_kb_end_of_hold\":%d,\"server_rss_kb_max\":%d,", SR[b], SR[h1], maxrss
		printf "\"server_rss_bytes_per_conn\":%.1f,", div((SR[h1] - SR[b]) * 1024, held)
		printf "\"nats_rss_kb_end_of_hold\":%d,\"driver_rss_kb_end_of_hold\":%d,", NR_[h1], DR[h1]
		printf "\"slab_kb_before\":%d,\"slab_kb_end_of_hold\":%d,\"slab_bytes_per_conn\":%.1f,", SLAB[b], SLAB[h1], div((SLAB[h1] - SLAB[b]) * 1024, held)
		printf "\"sunreclaim_kb_before\":%d,\"sunreclaim_kb_end_of_hold\":%d,", SUR[b], SUR[h1]
		printf "\"tcp_mem_pages_before\":%d,\"tcp_mem_pages_end_of_hold\":%d,\"tcp_mem_pages_max\":%d,", MEM[b], MEM[h1], maxmem
		printf "\"tcp_mem_bytes_per_conn\":%.1f,", div((MEM[h1] - MEM[b]) * 4096, held)
		printf "\"kernel_bytes_per_conn\":%.1f,", div((SLAB[h1] - SLAB[b]) * 1024 + (MEM[h1] - MEM[b]) * 4096, held)
		printf "\"memavailable_kb_before\":%d,\"memavailable_kb_min\":%d},", AV[b], minav
		printf "\"cpu\":{\"hz\":%d,", hz
		printf "\"setup\":{\"seconds\":%.2f,\"connections\":%d,\"server_cpu_s\":%.2f,\"server_us_per_conn\":%.1f,\"driver_cpu_s\":%.2f,\"driver_us_per_conn\":%.1f},", setup_s, opened, setup_srv, div(setup_srv * 1e6, opened), setup_drv, div(setup_drv * 1e6, opened)
		printf "\"hold\":{\"seconds\":%.2f,\"server_cpu_s\":%.2f,\"server_cores\":%.3f,\"nats_cpu_s\":%.2f,\"driver_cpu_s\":%.2f},", hold_s, hold_srv, div(hold_srv, hold_s), hold_nats, hold_drv
		printf "\"heartbeat_only\":{\"seconds\":%.2f,\"server_cores\":%.4f,\"server_us_per_conn_per_s\":%.4f,\"server_us_per_ping\":%.2f,\"nats_cores\":%.4f,\"driver_cores\":%.4f},", quiet_s, hbv, div(hbv * 1e6, held), div(hbv * 1e6 * ping_s, held), div(quiet_nats, quiet_s), div(quiet_drv, quiet_s)
		printf "\"fanout\":{\"seconds\":%.2f,\"windows\":%d,\"deliveries\":%d,\"server_cores\":%.3f,\"server_us_per_delivery\":%.3f}}", fan_s, fan_n, fan_d, div(fan_srv, fan_s), div(fan_extra * 1e6, fan_d)
		printf "}\n"
	}' "$SAMPLES" >"$OUT/measured.json"

PIDS_JSON=$(jq -n --arg nats "$NATS_PID" --arg nodes "${NODE_PIDS[*]}" --arg wsb "$WSB_PID_DONE" --arg drv "${DRIVER_SEEN[*]}" \
	'{nats: ($nats | tonumber), nodes: ($nodes | split(" ") | map(tonumber)), wsbench: ($wsb | tonumber),
	  drivers: ($drv | split(" ") | map(select(. != "") | tonumber))}')
SYS_CHANGED_JSON=$(printf '%s\n' "${SYSCTL_CHANGED[@]}" | jq -R . | jq -s 'map(select(. != ""))')
jq -n --slurpfile w "$OUT/wsbench.json" --slurpfile m "$OUT/measured.json" --argjson pids "$PIDS_JSON" \
	--arg command "$COMMAND" --arg started "$(date -u -d "@${T0%.*}" +%Y-%m-%dT%H:%M:%SZ)" \
	--argjson conns "$CONNS" --argjson nodes "$NODES" --argjson per_node "$PER_NODE" --argjson drivers "$DRIVERS" \
	--argjson per_driver "$PER_DRIVER" --argjson rate "$RATE" --argjson hold_s "$HOLD_S" --argjson every "$PUBLISH_EVERY" \
	--arg ping "$PING_INTERVAL" --arg tick "$WHEEL_TICK" --arg hst "$HANDSHAKE_TIMEOUT" --arg dial "$DIAL_TIMEOUT" --arg src "$SRC" --argjson pin "$PIN" \
	--argjson cpus "$NCPU" --argjson memtotal "$MEM_TOTAL_KB" --argjson memavail "$MEM_AVAIL_KB" --argjson need "$NEED_KB" \
	--arg nofile "$NOFILE" --arg kernel "$(uname -r)" --argjson checkrc "$SYSCTL_CHECK_RC" --argjson applied "$([[ "$APPLY_SYSCTL" == 1 ]] && echo true || echo false)" \
	--argjson changed "$SYS_CHANGED_JSON" --argjson wsbrc "$WSB_RC" --arg out "$OUT" '
	($w[0]) as $w | ($m[0]) as $m | ($w.pubsub // {}) as $p |
	([($w.drops // {}) | to_entries[].value] | add // 0) as $drops |
	{
	  version: 1, started: $started, command: $command, out: $out,
	  config: {conns: $conns, nodes: $nodes, per_node: $per_node, drivers: $drivers, per_driver: $per_driver,
	    connect_rate_target: $rate, hold_s: $hold_s, publish_every_s: $every, ping_interval: $ping, wheel_tick: $tick,
	    handshake_timeout: $hst, dial_timeout: $dial, src: $src, pin: ($pin == 1), channels: 1},
	  host: {cpus: $cpus, mem_total_kb: $memtotal, mem_available_kb: $memavail, estimated_need_kb: $need,
	    open_files_limit: $nofile, kernel: $kernel, sysctl_profile_met: ($checkrc == 0)},
	  connections: {target: $conns, attempts: $w.attempts, opened: $w.opened, failed: $w.failed,
	    failures_by_reason: ($w.failures // {}), held_at_end: $w.open_at_end,
	    held_at_end_of_hold_server: $m.held_at_end_of_hold, held_min_during_hold_server: $m.held_min_during_hold,
	    unexpected_closes: $drops, unexpected_closes_by_reason: ($w.drops // {}),
	    connect_rate: $w.connect_rate, time_to_all_open_s: $w.time_to_all_open_s,
	    handshake_us: {p50: $w.handshake.p50_us, p99: $w.handshake.p99_us, max: $w.handshake.max_us},
	    pings_answered: $w.pings_answered},
	  delivery: {publishes: $p.published, publishes_acked: $p.publish_acked, publish_errors: $p.publish_errors,
	    publish_error_reasons: ($p.publish_error_reasons // {}), subscribed: $p.subscribed,
	    expected: $p.expected, delivered: $p.delivered,
	    ratio: (if ($p.expected // 0) > 0 then $p.delivered / $p.expected else null end),
	    seq_gaps: $p.lost, duplicated: $p.duplicated, unexpected: $p.unexpected,
	    server_errors: ($p.error_reasons // {}),
	    latency_us: {count: $w.latency.count, p50: $w.latency.p50_us, p90: $w.latency.p90_us,
	      p99: $w.latency.p99_us, p999: $w.latency.p999_us, max: $w.latency.max_us}},
	  memory: ($m.memory + {wsbench_server_rss_bytes_end: $w.server.end.rss_bytes, wsbench_rss_per_conn: $w.server.rss_per_conn}),
	  cpu: $m.cpu,
	  samples: {count: $m.samples, hold: $m.hold_samples, peak_connections: $m.peak_connections},
	  pids: $pids,
	  sysctl: {applied: $applied, changed: $changed, restored: null},
	  wsbench_exit: $wsbrc, warnings: ($w.warnings // [])
	} |
	.problems = ([
	  (if .connections.opened < $conns then "\($conns - .connections.opened) of \($conns) connections never opened" else empty end),
	  (if .connections.held_at_end < .connections.opened then "\(.connections.opened - .connections.held_at_end) connections were not held to the end" else empty end),
	  (if .connections.unexpected_closes > 0 then "\(.connections.unexpected_closes) unexpected closes" else empty end),
	  (if (.delivery.ratio // 0) < 1 then "delivery ratio \(.delivery.ratio)" else empty end),
	  (if (.delivery.seq_gaps // 0) > 0 then "\(.delivery.seq_gaps) seq gaps" else empty end),
	  (if (.delivery.publish_errors // 0) > 0 then "\(.delivery.publish_errors) publish errors" else empty end)
	]) | .ok = (.problems | length == 0)' >"$OUT/report.json"

# ------------------------------------------------------------------ charts
# line_chart OUT TITLE YLABEL YSCALE COL:LABEL... : a line chart of samples.tsv columns over time
# (values divided by YSCALE), with the hold shaded and publishes marked.
line_chart() {
	local out=$1 title=$2 ylabel=$3 scale=$4
	shift 4
	awk -F'\t' -v title="$title" -v ylabel="$ylabel" -v scale="$scale" -v series="$*" -v hz="$HZ" '
	function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); return s }
	function X(t) { return 70 + (t - t0) / (tmax - t0) * 620 }
	function Y(v) { return 330 - v / ymax * 280 }
	NR == 1 { next }
	{ n++; T[n] = $1; P[n] = $2; D[n] = $17; if ($16 < 0) { $16 = n > 1 ? V16 : 0; D[n] = n > 1 ? D[n-1] : 0 }; V16 = $16
	  for (k = 1; k <= ns; k++) { c = col[k]
		if (c ~ /^cpu/) { src = substr(c, 4); v = (n > 1 && T[n] > T[n-1]) ? ($src - prevv[k]) / hz / (T[n] - T[n-1]) : 0; if (v < 0) v = 0; prevv[k] = $src }
		else if (c ~ /\*/) { split(c, m, "*"); v = $(m[1]) * m[2] / scale }
		else v = $c / scale
		V[k, n] = v; if (v > ymax) ymax = v } }
	BEGIN { ns = split(series, s, " "); for (k = 1; k <= ns; k++) { split(s[k], a, ":"); col[k] = a[1]; lab[k] = a[2]; gsub(/_/, " ", lab[k]) }
		split("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd", pal, " ") }
	END {
		t0 = T[1]; tmax = T[n] > t0 ? T[n] : t0 + 1; if (ymax <= 0) ymax = 1
		raw = ymax / 5; mag = 10 ^ int(log(raw) / log(10)); if (mag > raw) mag /= 10
		step = mag; if (2 * mag >= raw) step = 2 * mag; else if (5 * mag >= raw) step = 5 * mag; else step = 10 * mag
		if (step < raw) step = 10 * mag
		ymax = step * (int(ymax / step - 1e-9) + 1)
		printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"380\" viewBox=\"0 0 720 380\" font-family=\"sans-serif\" font-size=\"12\">\n<title>%s</title>\n<rect width=\"720\" height=\"380\" fill=\"#ffffff\"/>\n", esc(title)
		printf "<text x=\"360\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", esc(title)
		for (i = 1; i <= n; i++) if (P[i] == "measure") { if (!h0) h0 = i; h1 = i }
		if (h0) printf "<rect x=\"%.1f\" y=\"50\" width=\"%.1f\" height=\"280\" fill=\"#eef5ee\"><title>hold</title></rect>\n<text x=\"%.1f\" y=\"46\" font-size=\"10\" fill=\"#2ca02c\">hold</text>\n", X(T[h0]), X(T[h1]) - X(T[h0]), X(T[h0]) + 2
		for (i = 2; i <= n; i++) if (D[i] > D[i-1]) printf "<line x1=\"%.1f\" y1=\"50\" x2=\"%.1f\" y2=\"330\" stroke=\"#d0d0d0\" stroke-width=\"1\"/>\n", X(T[i]), X(T[i])
		for (v = 0; v <= ymax * 1.0001; v += step) {
			printf "<line x1=\"70\" y1=\"%.1f\" x2=\"690\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n<text x=\"64\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", Y(v), Y(v), Y(v) + 4, fmt(v)
		}
		xs = (tmax - t0) / 6; xm = 10 ^ int(log(xs) / log(10)); xst = xm; if (2 * xm >= xs) xst = 2 * xm; else if (5 * xm >= xs) xst = 5 * xm; else xst = 10 * xm
		for (x = 0; x <= tmax - t0; x += xst) printf "<text x=\"%.1f\" y=\"348\" text-anchor=\"middle\">%s</text>\n", X(t0 + x), fmt(x)
		printf "<line x1=\"70\" y1=\"330\" x2=\"690\" y2=\"330\" stroke=\"#000\"/><line x1=\"70\" y1=\"50\" x2=\"70\" y2=\"330\" stroke=\"#000\"/>\n"
		printf "<text x=\"380\" y=\"370\" text-anchor=\"middle\">seconds since the start (grey lines: publishes delivered)</text>\n"
		printf "<text x=\"16\" y=\"190\" text-anchor=\"middle\" transform=\"rotate(-90 16 190)\">%s</text>\n", esc(ylabel)
		for (k = 1; k <= ns; k++) {
			printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", pal[k]
			for (i = 1; i <= n; i++) printf "%s%.1f,%.1f", (i > 1 ? " " : ""), X(T[i]), Y(V[k, i])
			printf "\"/>\n<rect x=\"%d\" y=\"56\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"62\">%s</text>\n", 80 + (k - 1) * 165, pal[k], 96 + (k - 1) * 165, esc(lab[k])
		}
		print "</svg>"
	}
	function fmt(v) { if (v >= 1e6) return sprintf("%gM", v / 1e6); if (v >= 1e4) return sprintf("%gk", v / 1e3); return sprintf("%g", v) }
	' "$SAMPLES" >"$out"
}
line_chart "$OUT/connections.svg" "Connections held ($CONNS asked, $NODES wsgate nodes)" "connections" 1 "16:connections_held_(server)"
line_chart "$OUT/memory.svg" "Memory: wsgate RSS and kernel (slab, TCP buffers)" "MiB" 1024 "4:wsgate_RSS_(all_nodes)" "12:kernel_slab" "10*4:TCP_buffers" "8:wsbench_RSS"
line_chart "$OUT/cpu.svg" "CPU: wsgate nodes, NATS and wsbench (2 CPUs = 2.0)" "CPU cores" 1 "cpu3:wsgate_nodes" "cpu5:nats-server" "cpu7:wsbench"

# latency.svg: the cumulative distribution of publish-to-delivery latency over all deliveries,
# from wsbench's merged histogram (bucket index -> lower bound as in bench/hist.go).
jq -r '.latency_hist.buckets[]? | "\(.[0]) \(.[1])"' "$OUT/wsbench.json" | awk -v p50="$(jq '.latency.p50_us' "$OUT/wsbench.json")" \
	-v p99="$(jq '.latency.p99_us' "$OUT/wsbench.json")" -v pmax="$(jq '.latency.max_us' "$OUT/wsbench.json")" -v title="Publish-to-delivery latency, all subscribers (CDF)" '
	function lo(i,  s) { if (i < 256) return i; s = int(i / 128) - 1; return (i - s * 128) * 2 ^ s }
	function X(us) { if (us < xlo) us = xlo; return 70 + (log(us) - log(xlo)) / (log(xhi) - log(xlo)) * 620 }
	function Y(f) { return 330 - f * 280 }
	{ n++; V[n] = lo($1) / 1000; Cn[n] = $2; total += $2 }
	END {
		printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"380\" viewBox=\"0 0 720 380\" font-family=\"sans-serif\" font-size=\"12\">\n<title>%s</title>\n<rect width=\"720\" height=\"380\" fill=\"#ffffff\"/>\n<text x=\"360\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", title, title
		if (total == 0) { print "<text x=\"360\" y=\"190\" text-anchor=\"middle\">no deliveries</text></svg>"; exit }
		xlo = 10 ^ int(log(V[1] > 1 ? V[1] : 1) / log(10)); xhi = 10; while (xhi < pmax) xhi *= 10
		if (xhi <= xlo) xhi = xlo * 10
		for (e = xlo; e <= xhi; e *= 10) printf "<line x1=\"%.1f\" y1=\"50\" x2=\"%.1f\" y2=\"330\" stroke=\"#e0e0e0\"/><text x=\"%.1f\" y=\"348\" text-anchor=\"middle\">%s</text>\n", X(e), X(e), X(e), (e >= 1000000 ? e / 1000000 " s" : e >= 1000 ? e / 1000 " ms" : e " µs")
		for (f = 0; f <= 1.0001; f += 0.25) printf "<line x1=\"70\" y1=\"%.1f\" x2=\"690\" y2=\"%.1f\" stroke=\"#e0e0e0\"/><text x=\"64\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", Y(f), Y(f), Y(f) + 4, f * 100
		printf "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"%.1f,%.1f", X(V[1]), Y(0)
		for (i = 1; i <= n; i++) { cum += Cn[i]; printf " %.1f,%.1f", X(V[i]), Y(cum / total) }
		printf "\"/>\n"
		split("p50 p99 max", nm, " "); pv[1] = p50; pv[2] = p99; pv[3] = pmax
		for (k = 1; k <= 3; k++) printf "<line x1=\"%.1f\" y1=\"50\" x2=\"%.1f\" y2=\"330\" stroke=\"#d62728\" stroke-dasharray=\"3,3\"/><text x=\"%.1f\" y=\"%d\" fill=\"#d62728\" font-size=\"11\">%s %.1f ms</text>\n", X(pv[k]), X(pv[k]), X(pv[k]) + 3, 62 + 14 * k, nm[k], pv[k] / 1000
		printf "<line x1=\"70\" y1=\"330\" x2=\"690\" y2=\"330\" stroke=\"#000\"/><line x1=\"70\" y1=\"50\" x2=\"70\" y2=\"330\" stroke=\"#000\"/>\n"
		printf "<text x=\"380\" y=\"370\" text-anchor=\"middle\">latency from the HTTP publish to the subscriber reading it (log scale); %d deliveries</text>\n", total
		printf "<text x=\"16\" y=\"190\" text-anchor=\"middle\" transform=\"rotate(-90 16 190)\">deliveries at or below</text>\n</svg>\n"
	}' >"$OUT/latency.svg"

# ------------------------------------------------------------------ summary
jq -r '
	def n(x): if x == null then "-" else (x | tostring) end;
	def f(x; d): if x == null then "-" else ((x * pow(10; d) | round) / pow(10; d) | tostring) end;
	def reasons(m): if (m | length) == 0 then "none" else ([m | to_entries[] | "\(.key): \(.value)"] | join("; ")) end;
	"million: \(.config.conns) connections, \(.config.nodes) wsgate nodes x \(.config.per_node), \(.config.drivers) wsbench workers, hold \(.config.hold_s)s, a publish every \(.config.publish_every_s)s",
	"  command: \(.command)",
	"  connections: opened \(n(.connections.opened)) of \(.connections.target), held to the end \(n(.connections.held_at_end)), failed \(n(.connections.failed)) (\(reasons(.connections.failures_by_reason)))",
	"  connect rate \(f(.connections.connect_rate; 0))/s over \(f(.connections.time_to_all_open_s; 1))s; handshake p50/p99/max \(f(.connections.handshake_us.p50 / 1000; 1))/\(f(.connections.handshake_us.p99 / 1000; 1))/\(f(.connections.handshake_us.max / 1000; 1)) ms",
	"  unexpected closes during the run: \(n(.connections.unexpected_closes)) (\(reasons(.connections.unexpected_closes_by_reason)))",
	"  delivery: \(n(.delivery.publishes)) publishes, \(n(.delivery.delivered)) of \(n(.delivery.expected)) deliveries, ratio \(f(.delivery.ratio; 6)), seq gaps \(n(.delivery.seq_gaps)), duplicates \(n(.delivery.duplicated)), publish errors \(n(.delivery.publish_errors))",
	"  latency publish-to-delivery p50/p99/max: \(f(.delivery.latency_us.p50 / 1000; 1)) / \(f(.delivery.latency_us.p99 / 1000; 1)) / \(f(.delivery.latency_us.max / 1000; 1)) ms",
	"  wsgate RSS: \(f(.memory.server_rss_kb_before / 1024; 0)) MiB before, \(f(.memory.server_rss_kb_end_of_hold / 1024; 0)) MiB at the end of the hold: \(f(.memory.server_rss_bytes_per_conn; 0)) B per connection",
	"  kernel: slab +\(f((.memory.slab_kb_end_of_hold - .memory.slab_kb_before) / 1024; 0)) MiB (\(f(.memory.slab_bytes_per_conn; 0)) B per connection, both ends), TCP buffers \(.memory.tcp_mem_pages_end_of_hold) pages at the end (max \(.memory.tcp_mem_pages_max)): \(f(.memory.kernel_bytes_per_conn; 0)) B per connection; MemAvailable min \(f(.memory.memavailable_kb_min / 1024; 0)) MiB",
	"  CPU connecting: wsgate \(f(.cpu.setup.server_us_per_conn; 1)) µs, wsbench \(f(.cpu.setup.driver_us_per_conn; 1)) µs per connection (\(f(.cpu.setup.seconds; 0))s)",
	"  CPU heartbeats only: wsgate \(f(.cpu.heartbeat_only.server_cores; 3)) cores (\(f(.cpu.heartbeat_only.server_us_per_ping; 1)) µs per ping; \(f(.cpu.heartbeat_only.seconds; 0))s of windows), NATS \(f(.cpu.heartbeat_only.nats_cores; 3)), wsbench \(f(.cpu.heartbeat_only.driver_cores; 3))",
	"  CPU fan-out: wsgate \(f(.cpu.fanout.server_cores; 2)) cores in \(.cpu.fanout.windows) windows (\(f(.cpu.fanout.seconds; 0))s), \(f(.cpu.fanout.server_us_per_delivery; 2)) µs per delivery above heartbeats",
	"  sysctl: applied \(.sysctl.applied)\(if .sysctl.applied then ", \(.sysctl.changed | length) values changed, restored on exit" else "" end)",
	(if .ok then "  targets met: all held, no unexpected close, ratio 1.0, no seq gap" else "  targets missed: \(.problems | join("; "))" end),
	"  results: \(.out)/{report.json,summary.txt,samples.tsv,connections.svg,memory.svg,cpu.svg,latency.svg}"
' "$OUT/report.json" | tee "$OUT/summary.txt" >&2
if [[ "$STRICT" == 1 ]] && [[ "$(jq .ok "$OUT/report.json")" != true ]]; then
	exit 3
fi
exit 0
