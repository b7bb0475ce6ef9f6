#!/usr/bin/env bash
# moderate.sh: server CPU at the moderate load most servers live at, wsgate against its peers in
# one run (`make compare-moderate`). Each server is pinned to SERVER_CPU with taskset and wsbench
# to DRIVER_CPU, so the server's CPU time is its own and the driver never starves it. Two
# scenarios, each on a fresh server process:
#   echo     ECHO_CONNS connections echoing ECHO_SIZE-byte messages at a fixed ECHO_RATE msgs/s
#            in total (wsbench echo -rate): server CPU per message;
#   fanout   SUBS subscribers of one channel, PUB_RATE publishes/s (wsbench pubsub): server CPU
#            per delivery, publish-to-delivery latency; wsgate is published to through its HTTP
#            API (-publish-url, so the publish call's own latency is measured too), the peers
#            through their WebSocket publish op (they have no HTTP API). For wsgate the table also
#            gives the HTTP publish's server-side latency from wsgate_api_publish_seconds.
#   connect  CONNECT_CONNS connections opened at CONNECT_RATE (0: as fast as the driver can) and
#            held for 5 s (wsbench connect, 2 worker processes): server CPU per connection
#            (accept, handshake, the idle hold) and the connect rate.
# The order of servers rotates each round; the table gives every round and the median, and each
# server's share of its CPU spent in the kernel (/proc/PID/stat stime over utime + stime).
#
# Environment (defaults in brackets):
#   SERVERS ["wsgate gnet"]  any of wsgate gorilla gws nbio gnet, and wsgate-base when
#                            WSGATE_BASE is set
#   WSGATE_BASE []           another wsgate binary (e.g. built from an older commit), run as the
#                            server "wsgate-base" for before/after comparisons
#   ROUNDS [3]  SERVER_CPU [1]  DRIVER_CPU [0]  DURATION [10s]
#   SCENARIOS ["echo fanout connect"]
#   ECHO_CONNS [1000] ECHO_RATE [20000] ECHO_SIZE [64]  SUBS [1000] PUB_RATE [100]
#   CONNECT_CONNS [18000] CONNECT_RATE [0]
#   NICE [0]                 nice value for the server and wsbench (e.g. -20, as root, so that
#                            other work on a shared machine does not take their CPUs)
#   RESULTS_DIR [bench/peers/results/moderate-<UTC time>]  wsbench JSON and the table (table.md)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

SERVERS=${SERVERS:-"wsgate gnet"}
WSGATE_BASE=${WSGATE_BASE:-}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
DRIVER_CPU=${DRIVER_CPU:-0}
DURATION=${DURATION:-10s}
ECHO_CONNS=${ECHO_CONNS:-1000}
ECHO_RATE=${ECHO_RATE:-20000}
ECHO_SIZE=${ECHO_SIZE:-64}
SUBS=${SUBS:-1000}
PUB_RATE=${PUB_RATE:-100}
SCENARIOS=${SCENARIOS:-"echo fanout connect"}
CONNECT_CONNS=${CONNECT_CONNS:-18000}
CONNECT_RATE=${CONNECT_RATE:-0}
NICE=${NICE:-0}
RESULTS_DIR=${RESULTS_DIR:-bench/peers/results/moderate-$(date -u +%Y%m%dT%H%M%SZ)}
HOST=127.0.0.1

log() { printf '[moderate %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

command -v taskset >/dev/null || die "taskset is missing (Debian: util-linux)"
ncpu=$(nproc)
((SERVER_CPU < ncpu && DRIVER_CPU < ncpu)) || die "SERVER_CPU=$SERVER_CPU or DRIVER_CPU=$DRIVER_CPU: this host has CPUs 0-$((ncpu - 1))"
[[ $SERVER_CPU != "$DRIVER_CPU" ]] || die "SERVER_CPU and DRIVER_CPU must differ"
[[ -z $WSGATE_BASE || -x $WSGATE_BASE ]] || die "WSGATE_BASE=$WSGATE_BASE is not an executable"

BIN=$(mktemp -d "${TMPDIR:-/tmp}/wsgate-moderate.XXXXXX")
mkdir -p "$RESULTS_DIR" "$BIN/logs"
SERVER_PID=
cleanup() {
	if [[ -n $SERVER_PID ]]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$BIN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building into $BIN"
go build -o "$BIN/wsgate" ./cmd/wsgate
go build -o "$BIN/wsbench" ./cmd/wsbench
for name in $SERVERS; do
	case $name in
	wsgate) ;;
	wsgate-base)
		[[ -n $WSGATE_BASE ]] || die "SERVERS names wsgate-base but WSGATE_BASE is not set"
		cp "$WSGATE_BASE" "$BIN/wsgate-base"
		;;
	gorilla | gws | nbio | gnet) (cd "bench/peers/$name" && go build -o "$BIN/$name" .) ;;
	*) die "unknown server $name" ;;
	esac
done

# free_port prints a loopback port nothing listens on, above the ephemeral range when possible.
free_port() {
	local lo hi p i
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	for ((i = 0; i < 200; i++)); do
		if ((hi < 65000)); then p=$((hi + 1 + RANDOM % (65535 - hi))); else p=$((1024 + RANDOM % (lo - 1024))); fi
		[[ -z $(ss -Htln "sport = :$p") ]] && echo "$p" && return 0
	done
	die "no free port"
}

# start NAME MODE TAG: starts NAME pinned to SERVER_CPU serving MODE; sets SERVER_PID, PORT, ADMIN.
start() {
	local name=$1 mode=$2 tag=$3 i cmd
	PORT=$(free_port)
	ADMIN=$(free_port)
	case $name in
	wsgate | wsgate-base)
		if [[ $mode == echo ]]; then
			cmd=("$BIN/$name" -mode echo -addr "$HOST:$PORT" -admin-addr "")
		else
			cmd=("$BIN/$name" -mode pubsub -addr "$HOST:$PORT" -admin-addr "$HOST:$ADMIN")
		fi
		;;
	*) cmd=("$BIN/$name" -mode "$mode" -addr "$HOST:$PORT") ;;
	esac
	nice -n "$NICE" taskset -c "$SERVER_CPU" "${cmd[@]}" >"$BIN/logs/$tag.log" 2>&1 &
	SERVER_PID=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || die "$name exited while starting: $(tail -n 5 "$BIN/logs/$tag.log")"
		if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
			if [[ $mode == pubsub && $name == wsgate* ]]; then
				(exec 3<>"/dev/tcp/$HOST/$ADMIN") 2>/dev/null || { sleep 0.1; continue; }
			fi
			return 0
		fi
		sleep 0.1
	done
	die "$name did not accept on $HOST:$PORT within 30 s"
}

stop() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# apipub prints the server-side HTTP publish latency of the wsgate on $ADMIN from its
# wsgate_api_publish_seconds histogram (cumulative "le" buckets): the bound of the first bucket
# holding the median, in µs, and the share of publishes answered within 1 ms, in percent.
apipub() {
	curl -s --max-time 5 "http://$HOST:$ADMIN/metrics" | awk '
	/^wsgate_api_publish_seconds_bucket\{le="/ {
		if (!match($0, /le="[^"]*"/)) next
		le = substr($0, RSTART + 4, RLENGTH - 5)
		n++; bound[n] = (le == "+Inf" ? -1 : le + 0); cum[n] = $NF + 0
	}
	/^wsgate_api_publish_seconds_count / { total = $NF + 0 }
	END {
		if (total == 0) { print "- -"; exit }
		for (i = 1; i <= n; i++) {
			if (bound[i] >= 0 && bound[i] <= 0.001) u = cum[i]
			if (p == "" && cum[i] >= total / 2) p = (bound[i] < 0 ? "inf" : sprintf("%.0f", bound[i] * 1e6))
		}
		printf "%s %.0f\n", p, 100 * u / total
	}'
}

# sysshare prints the share of the server's CPU spent in the kernel (stime over utime + stime
# from /proc/PID/stat, the whole life of the process: start-up and the connections' set-up are
# a small part of a run), in percent: what is left to win in a server's own code is the rest.
sysshare() {
	awk '{ sub(/^.*\) /, ""); u = $12; s = $13; if (u + s > 0) printf "%.0f\n", 100 * s / (u + s); else print "-" }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo -
}

# kv LINE KEY prints KEY's value in a wsbench summary line ("" when absent).
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

ROWS=$BIN/rows.tsv
: >"$ROWS"
read -ra names <<<"$SERVERS"
n=${#names[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	for ((k = 0; k < n; k++)); do
		name=${names[$(((round - 1 + k) % n))]}
		for sc in $SCENARIOS; do
			tag=$sc-$name-$round
			mode=echo
			[[ $sc == fanout ]] && mode=pubsub
			start "$name" "$mode" "$tag"
			common=(-url "ws://$HOST:$PORT/" -procs 1 -server-pid "$SERVER_PID" -label "$name" -json "$RESULTS_DIR/$tag.json")
			if [[ $sc == echo ]]; then
				drv=("$BIN/wsbench" echo -conns "$ECHO_CONNS" -rate "$ECHO_RATE" -size "$ECHO_SIZE" -duration "$DURATION" "${common[@]}")
			elif [[ $sc == connect ]]; then
				drv=("$BIN/wsbench" connect -conns "$CONNECT_CONNS" -rate "$CONNECT_RATE" -hold 5s "${common[@]}" -procs 2 -src 127.0.0.2-127.0.0.20)
			else
				drv=("$BIN/wsbench" pubsub -conns "$SUBS" -channels 1 -publish-rate "$PUB_RATE" -duration "$DURATION" "${common[@]}")
				[[ $name == wsgate* ]] && drv+=(-publish-url "http://$HOST:$ADMIN/api/publish")
			fi
			log "$tag: nice -n $NICE taskset -c $DRIVER_CPU ${drv[*]#"$BIN/"}"
			line=$(nice -n "$NICE" taskset -c "$DRIVER_CPU" "${drv[@]}" 2>"$BIN/logs/$tag.wsbench.log" | tail -n 1) || die "$tag: wsbench failed: $(tail -n 5 "$BIN/logs/$tag.wsbench.log")"
			api="- -"
			[[ $sc == fanout && $name == wsgate* ]] && api=$(apipub)
			sys=$(sysshare)
			stop
			tp=$(kv "$line" throughput) lat=$(kv "$line" p50_us)
			[[ $sc == connect ]] && tp=$(kv "$line" connect_rate) lat=$(kv "$line" handshake_p50_us)
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$name" "$round" "$tp" \
				"$(kv "$line" cpu_us_per_op)" "$lat" "$(kv "$line" publish_call_p50_us)" \
				"$(kv "$line" lost)" "${api% *}" "${api#* }" "$sys" >>"$ROWS"
			log "$tag: $line (server-side publish p50 <= ${api% *} µs, ${api#* }% within 1 ms; server CPU in the kernel ${sys}%)"
		done
	done
done

# The table: every round, then the median of the rounds, per scenario and server.
{
	echo "| scenario | server | rounds: server CPU µs per op | median CPU µs/op | median throughput (connect: connections/s) | median p50 latency µs (connect: handshake) | median publish call p50 µs | server-side publish p50 µs (bucket bound), rounds | publishes within 1 ms, rounds | server CPU in the kernel, rounds | lost |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for sc in $SCENARIOS; do
		for name in "${names[@]}"; do
			awk -F'\t' -v sc="$sc" -v name="$name" '
			function median(a, m,   i, j, t) {
				for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
				return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			}
			$1 == sc && $2 == name {
				m++; cpu[m] = $5; tp[m] = $4; lat[m] = $6; call[m] = ($7 == "" ? 0 : $7); lost += $8
				list = list (list == "" ? "" : " / ") $5
				sp = sp (sp == "" ? "" : " / ") $9; su = su (su == "" ? "" : " / ") $10 "%"; ks = ks (ks == "" ? "" : " / ") $11 "%"
			}
			END {
				if (m == 0) exit
				c = (sc == "fanout" && name ~ /^wsgate/) ? sprintf("%.0f", median(call, m)) : "-"
				if (c == "-") { sp = "-"; su = "-" }
				printf "| %s | %s | %s | %.2f | %.0f | %.0f | %s | %s | %s | %s | %d |\n", sc, name, list, median(cpu, m), median(tp, m), median(lat, m), c, sp, su, ks, lost
			}' "$ROWS"
		done
	done
} | tee "$RESULTS_DIR/table.md"
log "results in $RESULTS_DIR"
