#!/usr/bin/env bash
# Enforces the import table of docs/architecture.md: each package may import only the packages
# listed for it (the standard library is always allowed). Test files are not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/wsgate/wsgate
declare -A allow=(
  [ringbuf]="golang.org/x/sys/"
  [frame]="github.com/gobwas/ws"
  [netpoll]="golang.org/x/sys/"
  [conn]="$mod/frame $mod/ringbuf $mod/netpoll github.com/gobwas/ws golang.org/x/sys/"
  [shard]="$mod/conn github.com/cespare/xxhash/v2"
  [sysctl]="golang.org/x/sys/"
  [bench]="github.com/gobwas/ws golang.org/x/sys/"
)
bad=0
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
