#!/usr/bin/env bash
# Enforces the import table of docs/architecture.md: each package may import only the packages
# listed for it (the standard library is always allowed). Test files are not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/wsgate/wsgate
declare -A allow=(
  [ringbuf]=""
  [frame]="github.com/gobwas/ws github.com/klauspost/compress/flate"
  [netpoll]="golang.org/x/sys/"
  [conn]="$mod/frame $mod/ringbuf $mod/netpoll github.com/gobwas/ws golang.org/x/sys/"
  [shard]="$mod/conn github.com/cespare/xxhash/v2"
  [auth]="github.com/golang-jwt/jwt/v5"
  [pubsub]="$mod/auth $mod/shard $mod/conn $mod/frame github.com/VictoriaMetrics/metrics github.com/gobwas/ws github.com/cespare/xxhash/v2 github.com/nats-io/nats.go"
  [sysctl]="golang.org/x/sys/"
  [client]="github.com/coder/websocket"
  [bench]="github.com/gobwas/ws golang.org/x/sys/"
)
bad=0
# The root package may import any package of the module, but none may import it (nor cmd/).
while read -r pkg imp; do
  case $imp in
    "$mod" | "$mod"/cmd/*)
      echo "import-check: $pkg imports $imp; only cmd/ may build on the root package"
      bad=1 ;;
  esac
done < <(go list -f '{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}}{{"\n"}}{{end}}' ./... | grep -v "^$mod/cmd/")
for dir in "${!allow[@]}"; do
  [ -d "$dir" ] || continue
  while read -r pkg imp; do
    [ -n "$imp" ] || continue
    first=${imp%%/*}
    [[ $first != *.* ]] && continue # standard library
    ok=0
    for a in ${allow[$dir]}; do
      if [[ $imp == "$a" || ( $a == */ && $imp == "$a"* ) || $imp == "$a"/* ]]; then ok=1; fi
    done
    if [ $ok = 0 ]; then
      echo "import-check: $pkg imports $imp, which $dir/ may not (see docs/architecture.md)"
      bad=1
    fi
  done < <(go list -f '{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}}{{"\n"}}{{end}}' "./$dir/..." | grep -v '/peers/')
done
exit $bad
