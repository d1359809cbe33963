#!/usr/bin/env bash
# `make bench`: Ottava against a bare gRPC echo server built from the same libgrpc++, in one run.
#
#   bash test/bench/run.sh BUILD_DIR
#
# Builds nothing: `make bench` builds first. Uses BUILD_DIR/bin/{ottava,bench_echo_server,
# bench_load,bench_startup}. Measures
#   - startup: exec to ready file, median of 5 starts (bench_startup), and idle RSS ~1 s after ready,
#     for both servers (Ottava on configs/quickstart.json with ports 0);
#   - GetState/SaveState with 64 B and 1 KiB values: throughput at 8 connections x 16 streams and
#     single-stream p50 latency, each scenario run echo, ottava, echo, ottava, ... for fairness;
#     beside each, the server's CPU per request (utime + stime from /proc over the load run,
#     warmup included, divided by every request the run sent).
# Then the Redis scenarios (redis.sh), the Dapr front ends (dapr.sh), Kafka Publish (kafka.sh),
# the mesh against nginx and HAProxy (mesh.sh), Bolt against HAProxy in TCP mode (bolt.sh), flow
# control (flow.sh, flow_cluster.sh) and three hot upgrades under 2,000 req/s (upgrade.sh).
# Writes BUILD_DIR/bench/report.md and BUILD_DIR/bench/results.json and prints the table.
#
# Exit status: 1 if any request got a non-OK gRPC status or a malformed answer, or a server or tool
# failed; 0 otherwise. Ratios that miss their target are reported as FAIL but are measurements, not
# tests, so they do not change the exit status.
#
# Each scenario's value is the median over its rounds: on a small shared machine single-stream
# latency swings between runs, so many short alternating rounds beat a few long ones. Knobs
# (environment): BENCH_DURATION (s measured per run, default 1), BENCH_WARMUP (s, default 0.5),
# BENCH_ROUNDS (echo/ottava pairs per scenario, default 5), BENCH_STARTS (default 5). The defaults
# keep the whole run under 3 minutes.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=$(cd "$1" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
DURATION=${BENCH_DURATION:-1}
WARMUP=${BENCH_WARMUP:-0.5}
ROUNDS=${BENCH_ROUNDS:-5}
STARTS=${BENCH_STARTS:-5}
READY_TIMEOUT_S=15

for tool in ottava bench_echo_server bench_load bench_startup; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "run.sh: $BIN/$tool is missing; build first (make build)" >&2
    exit 1
  fi
done

rm -rf "$OUT"
mkdir -p "$OUT/runs" "$OUT/logs"
WORK=$(mktemp -d /tmp/ottava-bench.XXXXXX)

BENCH_NAME=run
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

json_list() {
  tr -d '\n' <"$1" | sed -n "s/.*\"$2\" *: *\[\([^]]*\)\].*/\1/p" | tr ',' ' '
}
json_str() {
  tr -d '\n' <"$1" | sed -n "s/.*\"$2\" *: *\"\([^\"]*\)\".*/\1/p"
}

# start_server NAME READY_FILE COMMAND...: starts COMMAND in the background, waits (bounded) for
# READY_FILE and sets ADDRESS to the gRPC address it names. Not run in $(...), so that PIDS keeps
# the new process for cleanup.
start_server() {
  local name=$1 ready=$2
  shift 2
  rm -f "$ready"
  "$@" >"$OUT/logs/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  SERVER_PID=$pid
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ ! -s "$ready" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: $name exited before it was ready; its log:" >&2
      tail -20 "$OUT/logs/$name.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "run.sh: $name wrote no ready file within ${READY_TIMEOUT_S}s" >&2
      return 1
    fi
    sleep 0.05
  done
  ADDRESS=$(json_str "$ready" grpc)
  if [ -z "$ADDRESS" ]; then
    echo "run.sh: no \"grpc\" address in the ready file of $name: $(cat "$ready")" >&2
    return 1
  fi
}

# stop_server PID: SIGTERM, then up to 10 s for the exit (SIGKILL after); sets STOP_RESULT.
stop_server() {
  local pid=$1 start=$EPOCHREALTIME rc=0
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || rc=$?
    STOP_RESULT="had already exited (status $rc) before the bench stopped it"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1000); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    STOP_RESULT="did not exit within 10 s of SIGTERM (killed)"
    return
  fi
  wait "$pid" 2>/dev/null || rc=$?
  STOP_RESULT="exit $rc, $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms after SIGTERM"
}

# Ottava on the quickstart config, with its three listeners on port 0.
CONFIG=$WORK/ottava.json
sed -E -e 's/("(grpc|actuator)" *: *\{ *"address" *: *)"[^"]*"/\1"127.0.0.1:0"/' \
  -e 's/("dapr" *: *\{ *"http_address" *: *)"[^"]*"/\1"127.0.0.1:0"/' \
  "$ROOT/configs/quickstart.json" >"$CONFIG"
if [ "$(grep -c 'address": *"127.0.0.1:0"' "$CONFIG")" -lt 3 ]; then
  echo "run.sh: could not set the grpc and actuator addresses of configs/quickstart.json to port 0" >&2
  exit 1
fi
cp "$CONFIG" "$OUT/ottava.json"

echo "== startup and idle RSS (median of $STARTS starts each)"
"$BIN/bench_startup" --runs "$STARTS" --log-dir "$OUT/logs/startup-echo" -- \
  "$BIN/bench_echo_server" --value-bytes 64 --ready-file '{ready}' >"$OUT/runs/startup-echo.json"
"$BIN/bench_startup" --runs "$STARTS" --log-dir "$OUT/logs/startup-ottava" -- \
  "$BIN/ottava" --config "$CONFIG" --ready-file '{ready}' >"$OUT/runs/startup-ottava.json"
cat "$OUT/runs/startup-echo.json" "$OUT/runs/startup-ottava.json"

# Long-lived servers for the load scenarios. GetState on the echo server answers a fixed value, so
# there is one echo server per value size.
start_server echo-64 "$WORK/echo-64.ready" \
  "$BIN/bench_echo_server" --value-bytes 64 --ready-file "$WORK/echo-64.ready"
ECHO_64=$ADDRESS
ECHO_64_PID=$SERVER_PID
start_server echo-1k "$WORK/echo-1k.ready" \
  "$BIN/bench_echo_server" --value-bytes 1024 --ready-file "$WORK/echo-1k.ready"
ECHO_1K=$ADDRESS
ECHO_1K_PID=$SERVER_PID
start_server ottava "$WORK/ottava.ready" \
  "$BIN/ottava" --config "$CONFIG" --ready-file "$WORK/ottava.ready"
OTTAVA=$ADDRESS
OTTAVA_PID=$SERVER_PID
echo "== servers: echo-64 $ECHO_64, echo-1k $ECHO_1K, ottava $OTTAVA"

# id | label | method | value bytes | connections | streams | metric
SCENARIOS=(
  "get-64-tput|GetState 64 B throughput, 8 conn x 16 streams|get|64|8|16|throughput"
  "get-1k-tput|GetState 1 KiB throughput, 8 conn x 16 streams|get|1024|8|16|throughput"
  "save-64-tput|SaveState 64 B throughput, 8 conn x 16 streams|save|64|8|16|throughput"
  "save-1k-tput|SaveState 1 KiB throughput, 8 conn x 16 streams|save|1024|8|16|throughput"
  "get-64-p50|GetState 64 B p50 latency, 1 stream|get|64|1|1|p50_us"
  "get-1k-p50|GetState 1 KiB p50 latency, 1 stream|get|1024|1|1|p50_us"
  "save-64-p50|SaveState 64 B p50 latency, 1 stream|save|64|1|1|p50_us"
  "save-1k-p50|SaveState 1 KiB p50 latency, 1 stream|save|1024|1|1|p50_us"
)

ROWS=()        # markdown table rows
ROUND_LINES=() # per-round values, to judge the noise
CPU_ROWS=()    # CPU per request, echo and Ottava, per scenario
JSON_ROWS=()   # results.json scenario objects

# fmt_list FORMAT NUMBER...: the numbers formatted, comma-separated ("none" when there are none)
fmt_list() {
  local f=$1
  shift
  if [ $# -eq 0 ]; then
    echo none
    return
  fi
  printf '%s\n' "$@" | awk -v f="$f" '{ printf "%s" f, (NR > 1 ? ", " : ""), $1 }'
}

# median of the numbers given as arguments (nothing when there are none)
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.6f", v[(NR + 1) / 2]; else if (NR) printf "%.6f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r id label method bytes conns streams metric <<<"$scenario"
  echo "== $label"
  echo_target=$ECHO_64
  echo_pid=$ECHO_64_PID
  echo_log=echo-64
  if [ "$bytes" = 1024 ]; then
    echo_target=$ECHO_1K
    echo_pid=$ECHO_1K_PID
    echo_log=echo-1k
  fi
  declare -A values=([echo]="" [ottava]="")
  declare -A errors=([echo]=0 [ottava]=0)
  declare -A runs_json=([echo]="" [ottava]="")
  declare -A cpus=([echo]="" [ottava]="")
  for round in $(seq "$ROUNDS"); do
    for server in echo ottava; do
      target=$echo_target pid=$echo_pid log=$echo_log
      if [ $server = ottava ]; then
        target=$OTTAVA pid=$OTTAVA_PID log=ottava
      fi
      # A server that died (or was killed from outside) fails the run at once instead of costing
      # a connect timeout per remaining run.
      if ! kill -0 "$pid" 2>/dev/null; then
        fail "$server (pid $pid) is no longer running; skipping '$label' round $round." \
          "Last lines of $OUT/logs/$log.log: $(tail -3 "$OUT/logs/$log.log")"
        errors[$server]=$((errors[$server] + 1))
        continue
      fi
      file=$OUT/runs/$id-$server-$round.json
      ticks_before=$(cpu_ticks "$pid")
      if ! "$BIN/bench_load" --target "$target" --method "$method" --value-bytes "$bytes" \
        --connections "$conns" --streams "$streams" --duration "$DURATION" --warmup "$WARMUP" \
        --key "bench-$id" >"$file" 2>"$OUT/logs/$id-$server-$round.err"; then
        fail "bench_load against $server failed in '$label': $(cat "$OUT/logs/$id-$server-$round.err")"
        errors[$server]=$((errors[$server] + 1))
        continue
      fi
      ticks_after=$(cpu_ticks "$pid")
      cpu=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$CLK_TCK" \
        -v n="$(json_num "$file" all_requests)" \
        'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n; else print 0 }')
      cpus[$server]+="$cpu "
      bad=$(($(json_num "$file" errors) + $(json_num "$file" bad_responses)))
      if [ "$bad" -gt 0 ]; then
        fail "$server answered $bad requests of '$label' with a non-OK status or a malformed" \
          "response: $(tr -d '\n' <"$file" | sed -n 's/.*\("errors_by_code":{[^}]*}\).*/\1/p')"
        errors[$server]=$((errors[$server] + bad))
      fi
      values[$server]+="$(json_num "$file" "$metric") "
      runs_json[$server]+="${runs_json[$server]:+,}$(cat "$file")"
      printf '   %-6s round %s: %10.1f req/s  p50 %8.1f us  p99 %8.1f us  cpu %6.2f us/req\n' \
        "$server" "$round" "$(json_num "$file" throughput)" "$(json_num "$file" p50_us)" \
        "$(json_num "$file" p99_us)" "$cpu"
    done
  done

  # shellcheck disable=SC2086  # word splitting of the value lists is intended
  echo_value=$(median ${values[echo]})
  # shellcheck disable=SC2086
  ottava_value=$(median ${values[ottava]})
  if [ "$metric" = throughput ]; then
    target_text="≥ 0.85×"
    fmt='%.0f req/s'
    check='r >= 0.85'
  else
    target_text="≤ 1.2×"
    fmt='%.1f µs'
    check='r <= 1.2'
  fi
  if [ "${errors[echo]}" -gt 0 ] || [ "${errors[ottava]}" -gt 0 ] || [ -z "$echo_value" ] ||
    [ -z "$ottava_value" ]; then
    result=ERROR
    ratio=""
  else
    ratio=$(awk -v o="$ottava_value" -v e="$echo_value" 'BEGIN { if (e > 0) printf "%.3f", o / e }')
    result=$(awk -v r="$ratio" "BEGIN { if (r != \"\" && $check) print \"PASS\"; else print \"FAIL\" }")
  fi
  ROWS+=("| $label | $(awk -v v="${echo_value:-0}" -v f="$fmt" 'BEGIN { printf f, v }') | $(awk -v v="${ottava_value:-0}" -v f="$fmt" 'BEGIN { printf f, v }') | ${ratio:-n/a} | $target_text | $result |")
  # shellcheck disable=SC2086
  echo_cpu=$(median ${cpus[echo]})
  # shellcheck disable=SC2086
  ottava_cpu=$(median ${cpus[ottava]})
  cpu_ratio=$(awk -v o="${ottava_cpu:-0}" -v e="${echo_cpu:-0}" 'BEGIN { if (e > 0) printf "%.3f", o / e; else print "n/a" }')
  JSON_ROWS+=("{\"id\":\"$id\",\"scenario\":\"$label\",\"metric\":\"$metric\",\"echo\":${echo_value:-null},\"ottava\":${ottava_value:-null},\"cpu_us_per_request\":{\"echo\":${echo_cpu:-null},\"ottava\":${ottava_cpu:-null}},\"ratio\":${ratio:-null},\"target\":\"$target_text\",\"result\":\"$result\",\"errors\":{\"echo\":${errors[echo]},\"ottava\":${errors[ottava]}},\"runs\":{\"echo\":[${runs_json[echo]}],\"ottava\":[${runs_json[ottava]}]}}")
  # shellcheck disable=SC2086
  ROUND_LINES+=("- $label: echo $(fmt_list "$fmt" ${values[echo]}); ottava $(fmt_list "$fmt" ${values[ottava]})")
  CPU_ROWS+=("| $label | $(awk -v v="${echo_cpu:-0}" 'BEGIN { printf "%.2f µs", v }') | $(awk -v v="${ottava_cpu:-0}" 'BEGIN { printf "%.2f µs", v }') | $cpu_ratio |")
  unset values errors runs_json cpus
done

# Shutdown after the load: not a target, but a hang here is worth seeing in the report.
stop_server "$OTTAVA_PID"
OTTAVA_STOP=$STOP_RESULT
stop_server "$ECHO_64_PID"
ECHO_STOP=$STOP_RESULT
stop_server "$ECHO_1K_PID"
echo "== shutdown after load: ottava $OTTAVA_STOP; echo $ECHO_STOP"

# Startup and idle RSS rows.
echo_rss=$(json_num "$OUT/runs/startup-echo.json" idle_rss_kib_median)
ottava_rss=$(json_num "$OUT/runs/startup-ottava.json" idle_rss_kib_median)
rss_ratio=$(awk -v o="$ottava_rss" -v e="$echo_rss" 'BEGIN { printf "%.3f", o / e }')
rss_result=$(awk -v r="$rss_ratio" 'BEGIN { print (r <= 1.4) ? "PASS" : "FAIL" }')
echo_start=$(json_num "$OUT/runs/startup-echo.json" startup_ms_median)
ottava_start=$(json_num "$OUT/runs/startup-ottava.json" startup_ms_median)
start_ratio=$(awk -v o="$ottava_start" -v e="$echo_start" 'BEGIN { printf "%.3f", o / e }')
start_result=$(awk -v o="$ottava_start" 'BEGIN { print (o <= 100) ? "PASS" : "FAIL" }')
ROWS+=("| Idle RSS, quickstart config (median of $STARTS) | $(awk -v v="$echo_rss" 'BEGIN { printf "%.1f MiB", v / 1024 }') | $(awk -v v="$ottava_rss" 'BEGIN { printf "%.1f MiB", v / 1024 }') | $rss_ratio | ≤ 1.4× | $rss_result |")
ROWS+=("| Exec to ready file (median of $STARTS) | $(awk -v v="$echo_start" 'BEGIN { printf "%.1f ms", v }') | $(awk -v v="$ottava_start" 'BEGIN { printf "%.1f ms", v }') | $start_ratio | ≤ 100 ms (Ottava) | $start_result |")
JSON_ROWS+=("{\"id\":\"idle-rss\",\"scenario\":\"Idle RSS, quickstart config\",\"metric\":\"idle_rss_kib_median\",\"echo\":$echo_rss,\"ottava\":$ottava_rss,\"ratio\":$rss_ratio,\"target\":\"≤ 1.4×\",\"result\":\"$rss_result\",\"runs\":{\"echo\":$(cat "$OUT/runs/startup-echo.json"),\"ottava\":$(cat "$OUT/runs/startup-ottava.json")}}")
JSON_ROWS+=("{\"id\":\"startup\",\"scenario\":\"Exec to ready file\",\"metric\":\"startup_ms_median\",\"echo\":$echo_start,\"ottava\":$ottava_start,\"ratio\":$start_ratio,\"target\":\"≤ 100 ms\",\"result\":\"$start_result\"}")

# Machine notes: the load generator shares the CPU with the server under test.
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr -cd '[:alnum:] @().,_-')
CORES=$(nproc)
KERNEL=$(uname -r)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
  COMMIT="$COMMIT (dirty tree)"
fi
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

{
  echo "# Ottava benchmark report"
  echo
  echo "$DATE, commit $COMMIT, $CORES cores ($CPU), kernel $KERNEL."
  echo "Each load scenario: $ROUNDS rounds of echo then Ottava, ${WARMUP} s warmup + ${DURATION} s measured"
  echo "each; the table shows the median over rounds. The load generator shares the cores with the"
  echo "server under test. Ratio = Ottava / echo."
  echo
  echo "| Scenario | Echo server | Ottava | Ratio | Target | Result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "CPU per request (the server process's utime + stime over each load run, warmup included, ÷"
  echo "every request of the run; median over rounds). Not a target: the figure that carries over to"
  echo "a bigger machine, where throughput here is bounded by the load generator on the same cores."
  echo
  echo "| Scenario | Echo server | Ottava | Ratio |"
  echo "|---|---|---|---|"
  printf '%s\n' "${CPU_ROWS[@]}"
  echo
  echo "Per-run values:"
  echo
  printf '%s\n' "${ROUND_LINES[@]}"
  # shellcheck disable=SC2046  # word splitting of the value lists is intended
  echo "- exec to ready: echo $(fmt_list '%.1f ms' $(json_list "$OUT/runs/startup-echo.json" startup_ms));" \
    "ottava $(fmt_list '%.1f ms' $(json_list "$OUT/runs/startup-ottava.json" startup_ms))"
  # shellcheck disable=SC2046
  echo "- idle RSS: echo $(fmt_list '%.0f KiB' $(json_list "$OUT/runs/startup-echo.json" idle_rss_kib));" \
    "ottava $(fmt_list '%.0f KiB' $(json_list "$OUT/runs/startup-ottava.json" idle_rss_kib))"
  echo "- shutdown after the load: ottava $OTTAVA_STOP; echo server $ECHO_STOP"
} >"$OUT/report.md"

{
  echo "{\"date\":\"$DATE\",\"commit\":\"$COMMIT\","
  echo "\"machine\":{\"cores\":$CORES,\"cpu\":\"$CPU\",\"kernel\":\"$KERNEL\"},"
  echo "\"settings\":{\"duration_s\":$DURATION,\"warmup_s\":$WARMUP,\"rounds\":$ROUNDS,\"starts\":$STARTS},"
  echo "\"failed\":$([ $FAILED = 1 ] && echo true || echo false),"
  echo "\"ottava_shutdown_after_load\":\"$OTTAVA_STOP\","
  echo "\"scenarios\":["
  (IFS=$',\n'; echo "${JSON_ROWS[*]}")
  echo "]}"
} >"$OUT/results.json"

# The Redis components against redis-benchmark on one redis-server (test/bench/redis.sh).
echo "run.sh: Redis scenarios..." >&2
if ! bash "$ROOT/test/bench/redis.sh" "$BUILD_DIR" >/dev/null; then
  FAILED=1
fi
if [ -f "$OUT/redis-report.md" ]; then
  { echo; cat "$OUT/redis-report.md"; } >>"$OUT/report.md"
fi

# Dapr's gRPC front end against Layotto's, and Dapr's HTTP API against gRPC (test/bench/dapr.sh).
echo "run.sh: Dapr scenarios..." >&2
if ! bash "$ROOT/test/bench/dapr.sh" "$BUILD_DIR" >"$OUT/logs/dapr.out"; then
  FAILED=1
fi
if [ -f "$OUT/dapr-report.md" ]; then
  { echo; cat "$OUT/dapr-report.md"; } >>"$OUT/report.md"
fi

# Kafka Publish against a direct librdkafka producer on the mock cluster (test/bench/kafka.sh).
echo "run.sh: Kafka scenarios..." >&2
if ! bash "$ROOT/test/bench/kafka.sh" "$BUILD_DIR" >/dev/null; then
  FAILED=1
fi
if [ -f "$OUT/kafka-report.md" ]; then
  { echo; cat "$OUT/kafka-report.md"; } >>"$OUT/report.md"
fi

# The mesh against nginx and HAProxy (test/bench/mesh.sh); its results join results.json as "mesh".
echo "run.sh: mesh scenarios..." >&2
if ! bash "$ROOT/test/bench/mesh.sh" "$BUILD_DIR" >"$OUT/logs/mesh.out"; then
  FAILED=1
fi
if [ -f "$OUT/mesh-report.md" ]; then
  { echo; cat "$OUT/mesh-report.md"; } >>"$OUT/report.md"
fi
if [ -f "$OUT/mesh-results.json" ]; then
  sed -i '$d' "$OUT/results.json" # the closing "]}"
  { echo "],\"mesh\":"; cat "$OUT/mesh-results.json"; echo "}"; } >>"$OUT/results.json"
fi

# Bolt against HAProxy in TCP mode (test/bench/bolt.sh); its results join results.json as "bolt".
echo "run.sh: Bolt scenarios..." >&2
if ! bash "$ROOT/test/bench/bolt.sh" "$BUILD_DIR" >"$OUT/logs/bolt.out"; then
  FAILED=1
fi
if [ -f "$OUT/bolt-report.md" ]; then
  { echo; cat "$OUT/bolt-report.md"; } >>"$OUT/report.md"
fi
if [ -f "$OUT/bolt-results.json" ]; then
  # The last line closes the top object: "}" after the mesh results, "]}" without them.
  last=$(tail -n 1 "$OUT/results.json")
  sed -i '$d' "$OUT/results.json"
  { echo "${last%\}}"; echo ",\"bolt\":"; cat "$OUT/bolt-results.json"; echo "}"; } >>"$OUT/results.json"
fi

# Flow control: microbenchmark and filter cost (test/bench/flow.sh); report only.
echo "run.sh: flow-control scenarios..." >&2
if ! bash "$ROOT/test/bench/flow.sh" "$BUILD_DIR" >"$OUT/logs/flow.out"; then
  FAILED=1
fi
if [ -f "$OUT/flow-report.md" ]; then
  { echo; cat "$OUT/flow-report.md"; } >>"$OUT/report.md"
fi

# Cluster flow control: Redis commands per sidecar (test/bench/flow_cluster.sh); report only.
echo "run.sh: cluster flow-control scenarios..." >&2
if ! bash "$ROOT/test/bench/flow_cluster.sh" "$BUILD_DIR" >"$OUT/logs/flow_cluster.out"; then
  echo "run.sh: flow_cluster.sh reported a failure (see $OUT/logs/flow_cluster.out)" >&2
fi
if [ -f "$OUT/flow-cluster-report.md" ]; then
  { echo; cat "$OUT/flow-cluster-report.md"; } >>"$OUT/report.md"
fi

# Hot upgrade under 2,000 req/s (test/bench/upgrade.sh); report only, joined as "upgrade".
echo "run.sh: hot-upgrade scenario..." >&2
if ! bash "$ROOT/test/bench/upgrade.sh" "$BUILD_DIR" >"$OUT/logs/upgrade.out"; then
  FAILED=1
fi
if [ -f "$OUT/upgrade-report.md" ]; then
  { echo; cat "$OUT/upgrade-report.md"; } >>"$OUT/report.md"
fi
if [ -f "$OUT/upgrade-results.json" ]; then
  last=$(tail -n 1 "$OUT/results.json")
  sed -i '$d' "$OUT/results.json"
  { echo "${last%\}}"; echo ",\"upgrade\":"; cat "$OUT/upgrade-results.json"; echo "}"; } >>"$OUT/results.json"
fi

echo
cat "$OUT/report.md"
echo
echo "report: $OUT/report.md, raw results: $OUT/results.json"
if [ $FAILED = 1 ]; then
  echo "run.sh: FAILED: some requests got errors (see above)" >&2
  exit 1
fi
