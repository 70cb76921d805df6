#!/usr/bin/env bash
# Overhead benchmark: our driver vs vegeta v12.13.0 against a trivial handler.
# vegeta is built into a temporary GOBIN, never added to go.mod.
# Usage: load/bench/compare.sh [rates] [duration]   (default 5000,10000,20000 10s)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES="${1:-5000,10000,20000}"
DURATION="${2:-10s}"
VEGETA_DIR="${VEGETA_DIR:-/tmp/vegeta}"
if [[ ! -x "$VEGETA_DIR/vegeta" ]]; then
  echo "building vegeta v12.13.0 into $VEGETA_DIR" >&2
  (cd "${TMPDIR:-/tmp}" && GOBIN="$VEGETA_DIR" go install github.com/tsenart/vegeta/v12@v12.13.0)
fi
BIN="$(mktemp -d)"
trap 'rm -rf "$BIN"' EXIT
go build -o "$BIN/bench" ./load/bench
"$BIN/bench" compare -vegeta "$VEGETA_DIR/vegeta" -rates "$RATES" -duration "$DURATION" -out "${OUT:-/dev/null}"
