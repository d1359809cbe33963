#!/usr/bin/env bash
# Instructions per proxied Bolt request: Ottava under callgrind between bench_bolt_load and
# bench_bolt_server, as in bolt.sh's throughput run (4 connections x 16 in flight). Wall-clock CPU
# on a shared VM moves by +-10 % between runs; the instruction count moves by well under 1 %, so it
# tells whether a change to the proxy path made it cheaper. A compass, not a target: not run by
# `make bench`.
#
#   bash test/bench/bolt_callgrind.sh BUILD_DIR [SECONDS]
#
# Needs valgrind (apt-get install valgrind). Prints the request count, the instructions counted
# while the load ran, and their quotient; the callgrind profile stays in
# BUILD_DIR/bench/bolt-callgrind.out for callgrind_annotate.
set -euo pipefail

BUILD_DIR=$(cd "${1:?usage: bolt_callgrind.sh BUILD_DIR [SECONDS]}" && pwd)
SECONDS_LOADED=${2:-3}
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
for tool in valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "bolt_callgrind.sh: $tool is missing (apt-get install valgrind)" >&2; exit 1; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/ottava-bolt-callgrind.XXXXXX)
BENCH_NAME=bolt_callgrind
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wait_for FILE SECONDS: bounded wait for a non-empty file.
wait_for() {
  local deadline=$((SECONDS + $2))
  until [ -s "$1" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bolt_callgrind.sh: $1 did not appear within $2 s" >&2
      exit 1
    fi
    sleep 0.1
  done
}

"$BIN/bench_bolt_server" --port 0 --ready-file "$WORK/server.json" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_for "$WORK/server.json" 10
server_port=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$WORK/server.json")

write_bolt_config "$WORK/ottava.json" "$server_port" 2
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/bolt-callgrind.out" \
  "$BIN/ottava" --config "$WORK/ottava.json" --ready-file "$WORK/ottava.ready" \
  >"$WORK/ottava.log" 2>&1 &
OTTAVA_PID=$!
PIDS+=("$OTTAVA_PID")
wait_for "$WORK/ottava.ready" 120
port=$(tr -d '\n ' <"$WORK/ottava.ready" |
  sed -n 's/.*"listeners":{[^}]*"bolt":"[^"]*:\([0-9]*\)".*/\1/p')

load() {
  "$BIN/bench_bolt_load" --target "127.0.0.1:$port" --connections 4 --inflight 16 \
    --duration "$1" --warmup 0
}
load 1 >/dev/null  # connections and pools warm, outside the count
callgrind_control -i on "$OTTAVA_PID" >/dev/null 2>&1
load "$SECONDS_LOADED" >"$WORK/load.json"
callgrind_control -i off "$OTTAVA_PID" >/dev/null 2>&1
kill "$OTTAVA_PID"
wait "$OTTAVA_PID" 2>/dev/null || true

requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$WORK/load.json")
errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' "$WORK/load.json")
instructions=$(callgrind_annotate "$OUT/bolt-callgrind.out" 2>/dev/null |
  sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
if [ -z "$requests" ] || [ "$requests" -eq 0 ] || [ "${errors:-1}" -ne 0 ] || [ -z "$instructions" ]; then
  echo "bolt_callgrind.sh: no clean measurement (load: $(cat "$WORK/load.json"))" >&2
  exit 1
fi
echo "requests $requests instructions $instructions per_request $((instructions / requests))"
