#!/usr/bin/env bash
# The Dapr part of `make bench` (run.sh calls it): one Ottava on the in-memory quickstart config,
# its two gRPC front ends and Dapr's HTTP API measured in this one run, rounds alternating.
#
#   bash test/bench/dapr.sh BUILD_DIR
#
# Targets (issue 12):
#   - Dapr gRPC GetState and SaveState, 64 B: throughput at 8 connections x 16 streams and p50 at
#     one stream, within 5 % of the Layotto front end's (ratio Dapr / Layotto in [0.95, 1.05] for
#     throughput >= 0.95, p50 <= 1.05);
#   - Dapr HTTP GetState: p50 at one connection, and throughput at 4 connections against the same
#     call over gRPC (Dapr's, 4 connections x 1 stream: the same concurrency). Reported with the
#     sidecar's CPU time per request; no target.
# CPU per request = the sidecar's utime + stime (/proc/PID/stat) over one load run, divided by the
# answers of that run, warmup included (all_requests). The load generator shares the cores.
#
# Writes BUILD_DIR/bench/dapr-report.md and dapr-results.json. Exit 1 on request errors or a tool
# failure; ratios missing their targets are reported, not failed.
set -uo pipefail

BUILD_DIR=${1:?usage: dapr.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN="$BUILD_DIR/bin"
OUT="$BUILD_DIR/bench"
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-1}
WARMUP=${BENCH_WARMUP:-0.5}
mkdir -p "$OUT/dapr-runs" "$OUT/logs"
WORK=$(mktemp -d /tmp/ottava-bench-dapr.XXXXXX)
BENCH_NAME=dapr
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in ottava bench_load bench_http_load; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "dapr.sh: $BIN/$tool is missing; build first (make build)" >&2
    exit 1
  fi
done

CONFIG=$WORK/ottava.json
sed -E -e 's/("(grpc|actuator)" *: *\{ *"address" *: *)"[^"]*"/\1"127.0.0.1:0"/' \
  -e 's/("dapr" *: *\{ *"http_address" *: *)"[^"]*"/\1"127.0.0.1:0"/' \
  -e 's/"level": *"info"/"level": "warn"/' \
  "$ROOT/configs/quickstart.json" >"$CONFIG"
start_bg ottava "$BIN/ottava" --config "$CONFIG" --ready-file "$WORK/ready.json"
OTTAVA_PID=$PID
for _ in $(seq 300); do
  [ -s "$WORK/ready.json" ] && break
  sleep 0.05
done
GRPC=$(json_str "$WORK/ready.json" grpc)
HTTP=$(json_str "$WORK/ready.json" dapr_http)
if [ -z "$GRPC" ] || [ -z "$HTTP" ]; then
  echo "dapr.sh: ottava did not become ready: $(tail -5 "$OUT/logs/dapr-ottava.log")" >&2
  exit 1
fi
echo "== dapr: ottava pid $OTTAVA_PID, gRPC $GRPC, Dapr HTTP $HTTP"


# run_one FILE COMMAND...: one load run with the sidecar's CPU time around it; FILE gets the tool's
# JSON plus cpu_us_per_request. Returns 1 on a failure or any error.
run_one() {
  local file=$1
  shift
  if ! kill -0 "$OTTAVA_PID" 2>/dev/null; then
    fail "ottava is no longer running: $(tail -3 "$OUT/logs/dapr-ottava.log")"
    return 1
  fi
  local before after raw
  before=$(cpu_ticks "$OTTAVA_PID")
  if ! raw=$("$@" 2>"$file.err"); then
    fail "$* failed: $(cat "$file.err")"
    return 1
  fi
  after=$(cpu_ticks "$OTTAVA_PID")
  echo "$raw" >"$file.raw"
  local all cpu
  all=$(json_num "$file.raw" all_requests)
  cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$all" \
    'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n; else print 0 }')
  echo "${raw%\}},\"cpu_us_per_request\":$cpu}" >"$file"
  local bad
  bad=$(($(json_num "$file" errors) + $(json_num "$file" bad_responses)))
  if [ "$bad" -gt 0 ]; then
    fail "$bad bad answers in $*"
    return 1
  fi
}

# Each series: id | label | command (without duration/warmup).
LOAD="$BIN/bench_load --target $GRPC --value-bytes 64"
declare -A CMD=(
  [layotto-get-tput]="$LOAD --api layotto --method get --connections 8 --streams 16 --key bench-dapr-get"
  [dapr-get-tput]="$LOAD --api dapr --method get --connections 8 --streams 16 --key bench-dapr-get"
  [layotto-save-tput]="$LOAD --api layotto --method save --connections 8 --streams 16 --key bench-dapr-save"
  [dapr-save-tput]="$LOAD --api dapr --method save --connections 8 --streams 16 --key bench-dapr-save"
  [layotto-get-p50]="$LOAD --api layotto --method get --connections 1 --streams 1 --key bench-dapr-get"
  [dapr-get-p50]="$LOAD --api dapr --method get --connections 1 --streams 1 --key bench-dapr-get"
  [layotto-save-p50]="$LOAD --api layotto --method save --connections 1 --streams 1 --key bench-dapr-save"
  [dapr-save-p50]="$LOAD --api dapr --method save --connections 1 --streams 1 --key bench-dapr-save"
  [grpc-get-p50]="$LOAD --api dapr --method get --connections 1 --streams 1 --key bench-dapr-get"
  [grpc-get-c4]="$LOAD --api dapr --method get --connections 4 --streams 1 --key bench-dapr-get"
  [http-get-c4]="$BIN/bench_http_load --target $HTTP --value-bytes 64 --connections 4 --key bench-dapr-http"
  [http-get-p50]="$BIN/bench_http_load --target $HTTP --value-bytes 64 --connections 1 --key bench-dapr-http"
)
# Pairs measured alternately, round by round: A | B. A series belongs to one pair only, so its
# median comes from the rounds it alternated with its partner.
PAIRS=(
  "layotto-get-tput|dapr-get-tput"
  "layotto-save-tput|dapr-save-tput"
  "layotto-get-p50|dapr-get-p50"
  "layotto-save-p50|dapr-save-p50"
  "grpc-get-p50|http-get-p50"
  "grpc-get-c4|http-get-c4"
)
declare -A TPUT P50 CPU
for pair in "${PAIRS[@]}"; do
  IFS='|' read -r a b <<<"$pair"
  echo "== $a vs $b"
  for round in $(seq "$ROUNDS"); do
    for series in "$a" "$b"; do
      file=$OUT/dapr-runs/$series-$a-$round.json
      # shellcheck disable=SC2086  # the command line is split on purpose
      if run_one "$file" ${CMD[$series]} --duration "$DURATION" --warmup "$WARMUP"; then
        TPUT[$series]+="$(json_num "$file" throughput) "
        P50[$series]+="$(json_num "$file" p50_us) "
        CPU[$series]+="$(json_num "$file" cpu_us_per_request) "
        printf '   %-18s round %s: %10.1f req/s  p50 %8.1f us  cpu %6.2f us/req\n' "$series" "$round" \
          "$(json_num "$file" throughput)" "$(json_num "$file" p50_us)" \
          "$(json_num "$file" cpu_us_per_request)"
      fi
    done
  done
done
kill -TERM "$OTTAVA_PID" 2>/dev/null
wait "$OTTAVA_PID" 2>/dev/null

# shellcheck disable=SC2086
m() { median ${1:-}; }
declare -A M_TPUT M_P50 M_CPU
for series in "${!CMD[@]}"; do
  M_TPUT[$series]=$(m "${TPUT[$series]:-}")
  M_P50[$series]=$(m "${P50[$series]:-}")
  M_CPU[$series]=$(m "${CPU[$series]:-}")
done

ROWS=()
JSON_ROWS=()
# row ID LABEL METRIC A B TARGET CHECK: one comparison row, B / A.
row() {
  local id=$1 label=$2 metric=$3 a=$4 b=$5 target=$6 check=$7 va vb ratio result f
  if [ "$metric" = throughput ]; then
    va=${M_TPUT[$a]} vb=${M_TPUT[$b]} f='%.0f req/s'
  else
    va=${M_P50[$a]} vb=${M_P50[$b]} f='%.1f µs'
  fi
  ratio=$(awk -v x="$va" -v y="$vb" 'BEGIN { if (x > 0 && y != "") printf "%.3f", y / x }')
  if [ -z "$ratio" ]; then
    result=ERROR
  elif [ -z "$check" ]; then
    result="report"
  else
    result=$(awk -v r="$ratio" "BEGIN { print ($check) ? \"PASS\" : \"FAIL\" }")
  fi
  ROWS+=("| $label | $(fmt "$f" "$va") ($(fmt '%.1f' "${M_CPU[$a]}") µs CPU) | $(fmt "$f" "$vb") ($(fmt '%.1f' "${M_CPU[$b]}") µs CPU) | ${ratio:-n/a} | $target | $result |")
  JSON_ROWS+=("{\"id\":\"$id\",\"scenario\":\"$label\",\"metric\":\"$metric\",\"a\":\"$a\",\"b\":\"$b\",\"a_value\":$(json_or_null "$va"),\"b_value\":$(json_or_null "$vb"),\"a_cpu_us_per_request\":$(json_or_null "${M_CPU[$a]}"),\"b_cpu_us_per_request\":$(json_or_null "${M_CPU[$b]}"),\"ratio\":$(json_or_null "$ratio"),\"target\":\"$target\",\"result\":\"$result\"}")
}
row get-tput "GetState 64 B throughput, 8 conn x 16 streams: Layotto gRPC → Dapr gRPC" \
  throughput layotto-get-tput dapr-get-tput "≥ 0.95×" "r >= 0.95"
row save-tput "SaveState 64 B throughput, 8 conn x 16 streams: Layotto gRPC → Dapr gRPC" \
  throughput layotto-save-tput dapr-save-tput "≥ 0.95×" "r >= 0.95"
row get-p50 "GetState 64 B p50, 1 stream: Layotto gRPC → Dapr gRPC" p50 layotto-get-p50 \
  dapr-get-p50 "≤ 1.05×" "r <= 1.05"
row save-p50 "SaveState 64 B p50, 1 stream: Layotto gRPC → Dapr gRPC" p50 layotto-save-p50 \
  dapr-save-p50 "≤ 1.05×" "r <= 1.05"
row http-p50 "GetState 64 B p50, 1 connection: Dapr gRPC → Dapr HTTP" p50 grpc-get-p50 \
  http-get-p50 "report" ""
row http-tput "GetState 64 B throughput, 4 connections x 1: Dapr gRPC → Dapr HTTP" throughput \
  grpc-get-c4 http-get-c4 "report" ""

{
  echo "## Dapr front ends (dapr.sh)"
  echo
  echo "One Ottava (in-memory quickstart config); $ROUNDS alternating rounds of ${WARMUP} s warmup +"
  echo "${DURATION} s each, medians shown. CPU = the sidecar's CPU time per request. Ratio = second / first."
  echo
  echo "| Scenario | First | Second | Ratio | Target | Result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} >"$OUT/dapr-report.md"
{
  echo "{\"failed\":$([ "$FAILED" = 1 ] && echo true || echo false),\"scenarios\":["
  (IFS=$',\n'; echo "${JSON_ROWS[*]}")
  echo "]}"
} >"$OUT/dapr-results.json"
cat "$OUT/dapr-report.md"
[ "$FAILED" = 0 ]
