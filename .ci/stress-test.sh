#!/usr/bin/env bash
# .ci/stress-test.sh: the suite under load, behind `make stress-test`.
#
# Runs `go test -race -shuffle=on -count=1` over the main module (and the peer modules) RUNS times
# in a row while one busy-loop process per CPU keeps every core busy, so that a test whose verdict
# depends on timing or on the scheduler fails here rather than in CI. Each run's shuffle seed is
# printed by go test; repeat a failure with -test.shuffle=SEED.
#
# Environment: RUNS (default 5), PKGS (default ./...), GO (default go).
# The burners are started and stopped by this script, by PID, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
RUNS=${RUNS:-5}
PKGS=${PKGS:-./...}
burners=()
stop_burners() {
	for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${burners[@]}"; do wait "$pid" 2>/dev/null || true; done
	burners=()
}
trap stop_burners EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 "$(nproc)"); do
	bash -c 'while :; do :; done' &
	burners+=($!)
done
echo "stress-test: $RUNS runs of the suite with ${#burners[@]} busy-loop processes (PIDs ${burners[*]})"
failed=0
for i in $(seq 1 "$RUNS"); do
	start=$(date +%s)
	status=passed
	if ! $GO test -race -shuffle=on -count=1 $PKGS; then
		status=FAILED
		failed=$((failed + 1))
	fi
	if [[ "$PKGS" == "./..." ]]; then
		for d in bench/peers/*/; do
			[[ -f $d/go.mod ]] || continue
			(cd "$d" && $GO test -race -shuffle=on -count=1 ./...) || { status=FAILED; failed=$((failed + 1)); }
		done
	fi
	echo "stress-test: run $i of $RUNS $status in $(($(date +%s) - start)) s"
done
echo "stress-test: $((RUNS - failed)) passed, $failed failed"
[[ $failed -eq 0 ]]
