#!/usr/bin/env bash
# Runs every native Go fuzz target in the module for FUZZTIME each, FUZZJOBS targets at a time,
# one fuzzing worker per target (so JOBS targets share the machine predictably). Per-target logs
# go to FUZZLOGS; a crasher makes the target's go test exit non-zero, is written by Go under the
# package's testdata/fuzz/ (check it in as a regression seed) and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZJOBS=${FUZZJOBS:-1}
FUZZLOGS=${FUZZLOGS:-fuzz-logs}
mkdir -p "$FUZZLOGS"

targets=()
for pkg in $($GO list ./...); do
  for t in $($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    targets+=("$pkg $t")
  done
done
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each, $FUZZJOBS at a time, logs in $FUZZLOGS" >&2

run_one() {
  local pkg=$1 t=$2 log
  log="$FUZZLOGS/$(basename "$pkg")-$t.log"
  local start=$(date +%s)
  if $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -timeout 0 -parallel 1 "$pkg" >"$log" 2>&1; then
    status=ok
  else
    status=FAIL
  fi
  local execs
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  printf '%-4s %-50s %-28s %5ss execs=%s\n' "$status" "$pkg" "$t" "$(( $(date +%s) - start ))" "${execs:-?}"
  [ "$status" = ok ]
}
export -f run_one
export GO FUZZTIME FUZZLOGS
printf '%s\n' "${targets[@]}" | xargs -P "$FUZZJOBS" -L 1 bash -c 'run_one "$0" "$1"'
