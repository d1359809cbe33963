#!/usr/bin/env bash
# The Bolt (SOFARPC) part of `make bench` (run.sh calls it): Ottava's Bolt listener against
# HAProxy in TCP mode (it copies bytes without parsing: the floor for any L7 proxy), both in front
# of the same Bolt server, and against that server directly.
#
#   bash test/bench/bolt.sh BUILD_DIR
#
# Server: bench_bolt_server (1 thread) answering every request with a fixed SofaResponse.
# Proxies, each with W workers (BOLT_BENCH_WORKERS, default 2):
#   - HAProxy: mode tcp, nbthread W;
#   - Ottava:  mesh.workers W, one bolt listener, one route (service com.example.Echo:1.0) to a
#              one-host bolt cluster.
# Load: bench_bolt_load (its own Bolt v1 code, not the mesh's). Per target and round:
#   - throughput: 4 connections x 16 pipelined requests = 64 in flight; the proxy's CPU time
#     (utime+stime from /proc) over that run divided by the requests it served;
#   - latency: 1 connection, 1 request in flight: p50 (added p50 = proxy - direct).
#   - Ottava only: frames per writev, from the histogram ottava_mesh_frames_per_writev on /metrics
#     (sum / count over the whole run); the row is left out when Ottava has no such histogram.
# Targets (issue 8, "Benchmarks"):
#   - Bolt throughput through Ottava at 64 in flight on 4 connections >= 0.9x HAProxy TCP;
#   - added p50 at one in-flight request <= HAProxy TCP's added p50 + 10 us;
#   - proxy CPU per request <= 1.2x HAProxy TCP's;
#   - frames per writev reported under load.
# Targets alternate round by round (direct, HAProxy, Ottava, direct, ...) and medians are
# reported: the 2-core machine is shared by the load generator, the server and the proxy.
#
# Until the Bolt codec lands, Ottava rejects a bolt listener (exit 2): its rows then say "not
# available" and everything else is still measured.
#
# Knobs (environment): BOLT_BENCH_WORKERS (2), BOLT_BENCH_DURATION (s per run, 2),
# BOLT_BENCH_ROUNDS (3), BENCH_WARMUP (s, 0.3).
#
# Writes BUILD_DIR/bench/bolt-report.md and BUILD_DIR/bench/bolt-results.json (run.sh appends them
# to report.md and results.json). Exit 1 on request errors or a tool failure; ratios missing their
# targets are reported, not failed.
set -uo pipefail

BUILD_DIR=$(cd "${1:?usage: bolt.sh BUILD_DIR}" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
WORKERS=${BOLT_BENCH_WORKERS:-2}
DURATION=${BOLT_BENCH_DURATION:-2}
ROUNDS=${BOLT_BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-0.3}
READY_TIMEOUT_S=15
SERVICE=com.example.Echo:1.0

if ! command -v haproxy >/dev/null; then
  echo "bolt.sh: haproxy is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
HAPROXY=$(command -v haproxy)
for tool in ottava bench_bolt_server bench_bolt_load; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "bolt.sh: $BIN/$tool is missing; build first (make build)" >&2
    exit 1
  fi
done

mkdir -p "$OUT/bolt-runs" "$OUT/logs"
rm -f "$OUT"/bolt-runs/* "$OUT/bolt-report.md" "$OUT/bolt-results.json"
WORK=$(mktemp -d /tmp/ottava-bolt-bench.XXXXXX)
BENCH_NAME=bolt
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# probe PORT: one short bench_bolt_load run (1 connection, 1 in flight) must get answers.
probe() {
  "$BIN/bench_bolt_load" --target "127.0.0.1:$1" --connections 1 --inflight 1 --duration 0.05 \
    --warmup 0 >/dev/null 2>&1
}

# wait_bolt NAME PID PORT: bounded wait until a Bolt request through PORT is answered.
wait_bolt() {
  local name=$1 pid=$2 port=$3 deadline=$((SECONDS + READY_TIMEOUT_S))
  while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bolt.sh: $name exited at startup; its log:" >&2
      tail -20 "$OUT/logs/bolt-$name.log" >&2
      return 1
    fi
    probe "$port" && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "bolt.sh: $name did not answer a Bolt request on port $port within ${READY_TIMEOUT_S}s" >&2
      return 1
    fi
    sleep 0.05
  done
}

# ---- the Bolt server.
start_bg server "$BIN/bench_bolt_server" --threads 1 --ready-file "$WORK/server.ready"
SERVER_PID=$PID
for _ in $(seq $((READY_TIMEOUT_S * 20))); do
  [ -s "$WORK/server.ready" ] && break
  sleep 0.05
done
SERVER_PORT=$(json_num "$WORK/server.ready" port 2>/dev/null)
if [ -z "$SERVER_PORT" ]; then
  echo "bolt.sh: bench_bolt_server wrote no ready file: $(cat "$OUT/logs/bolt-server.log")" >&2
  exit 1
fi
wait_bolt server "$SERVER_PID" "$SERVER_PORT" || exit 1

# ---- HAProxy in TCP mode, no logging.
HAPROXY_PORT=$(free_port)
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn 4096

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend up

backend up
  server up1 127.0.0.1:$SERVER_PORT
EOF
cp "$WORK/haproxy.cfg" "$OUT/bolt-haproxy.cfg"
start_bg haproxy "$HAPROXY" -db -f "$WORK/haproxy.cfg"
HAPROXY_PID=$PID
wait_bolt haproxy "$HAPROXY_PID" "$HAPROXY_PORT" || exit 1

# ---- Ottava: one bolt listener, one route, one bolt cluster.
write_bolt_config "$WORK/ottava.json" "$SERVER_PORT" "$WORKERS" "$SERVICE"
cp "$WORK/ottava.json" "$OUT/bolt-ottava.json"
OTTAVA_NA=""
OTTAVA_PID=""
OTTAVA_PORT=""
OTTAVA_ACTUATOR=""
start_bg ottava "$BIN/ottava" --config "$WORK/ottava.json" --ready-file "$WORK/ottava.ready"
deadline=$((SECONDS + READY_TIMEOUT_S))
while [ ! -s "$WORK/ottava.ready" ]; do
  if ! kill -0 "$PID" 2>/dev/null; then
    rc=0
    wait "$PID" || rc=$?
    OTTAVA_NA="ottava exited with status $rc at startup: $(head -c 300 "$OUT/logs/bolt-ottava.log" | tr '\n' ' ')"
    # Exit 2 is a rejected config: no Bolt in this build. Anything else is a bug.
    [ "$rc" = 2 ] || fail "$OTTAVA_NA"
    break
  fi
  if [ $SECONDS -ge $deadline ]; then
    OTTAVA_NA="ottava wrote no ready file within ${READY_TIMEOUT_S}s"
    fail "$OTTAVA_NA"
    break
  fi
  sleep 0.05
done
if [ -z "$OTTAVA_NA" ]; then
  OTTAVA_PID=$PID
  OTTAVA_ACTUATOR=$(json_str "$WORK/ottava.ready" actuator)
  listener=$(tr -d '\n ' <"$WORK/ottava.ready" | sed -n 's/.*"listeners":{[^}]*"bolt":"\([^"]*\)".*/\1/p')
  OTTAVA_PORT=${listener##*:}
  if [ -z "$listener" ]; then
    OTTAVA_NA="the ready file names no \"bolt\" listener: $(cat "$WORK/ottava.ready")"
  elif ! wait_bolt ottava "$OTTAVA_PID" "$OTTAVA_PORT"; then
    OTTAVA_NA="the bolt listener $listener does not answer Bolt requests"
    fail "$OTTAVA_NA"
  fi
fi
if [ -n "$OTTAVA_NA" ]; then
  echo "bolt.sh: Ottava rows not available: $OTTAVA_NA" >&2
fi

TARGETS=(direct haproxy)
declare -A PORT=([direct]=$SERVER_PORT [haproxy]=$HAPROXY_PORT)
declare -A TPID=([direct]=$SERVER_PID [haproxy]=$HAPROXY_PID)
if [ -z "$OTTAVA_NA" ]; then
  TARGETS+=(ottava)
  PORT[ottava]=$OTTAVA_PORT
  TPID[ottava]=$OTTAVA_PID
fi
echo "== bolt: server :$SERVER_PORT, haproxy :$HAPROXY_PORT," \
  "ottava ${OTTAVA_PORT:+:$OTTAVA_PORT}${OTTAVA_NA:+not available}, $WORKERS workers each"


# frames_per_writev: "sum count" of Ottava's ottava_mesh_frames_per_writev histogram (all label
# sets added), or nothing when /metrics has no such histogram.
frames_per_writev() {
  [ -n "$OTTAVA_ACTUATOR" ] || return 0
  curl -s --max-time 2 "http://$OTTAVA_ACTUATOR/metrics" 2>/dev/null | awk '
    /^ottava_mesh_frames_per_writev_sum/ { s += $NF; seen = 1 }
    /^ottava_mesh_frames_per_writev_count/ { c += $NF }
    END { if (seen) printf "%s %s\n", s, c }'
}

# run_load TARGET KIND ROUND: one bench_bolt_load run; sets RUN_FILE and returns 1 on failure.
run_load() {
  local target=$1 kind=$2 round=$3 conns=4 inflight=16
  if [ "$kind" = lat ]; then
    conns=1 inflight=1
  fi
  RUN_FILE=$OUT/bolt-runs/$kind-$target-$round.json
  local raw=$OUT/bolt-runs/$kind-$target-$round.out
  if ! kill -0 "${TPID[$target]}" 2>/dev/null; then
    fail "$target (pid ${TPID[$target]}) is no longer running; skipping $kind round $round"
    return 1
  fi
  local before after rc=0
  before=$(cpu_ticks "${TPID[$target]}")
  "$BIN/bench_bolt_load" --target "127.0.0.1:${PORT[$target]}" --connections $conns \
    --inflight $inflight --duration "$DURATION" --warmup "$WARMUP" >"$raw" 2>"$raw.err" || rc=$?
  after=$(cpu_ticks "${TPID[$target]}")
  if ! grep -q '"requests"' "$raw"; then
    fail "bench_bolt_load against $target printed no result: $(cat "$raw.err")"
    return 1
  fi
  local requests cpu_us
  requests=$(json_num "$raw" requests)
  cpu_us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" \
    'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n; else print 0 }')
  echo "$(sed 's/}$//' "$raw"),\"cpu_us_per_request\":$cpu_us,\"cpu_ticks\":$((after - before))}" >"$RUN_FILE"
  if [ "$rc" != 0 ] || [ "$(json_num "$raw" errors)" != 0 ]; then
    fail "$target, $kind round $round: $(json_num "$raw" errors) errors (status $(json_num "$raw" status_errors)," \
      "unknown ids $(json_num "$raw" unknown_ids), connections $(json_num "$raw" connection_errors)," \
      "unanswered $(json_num "$raw" unanswered))"
    ERRORS[$target]=$((ERRORS[$target] + 1))
  fi
  return 0
}

declare -A TPUT CPU P50 ERRORS RUNS_JSON
for t in direct haproxy ottava; do
  TPUT[$t]="" CPU[$t]="" P50[$t]="" ERRORS[$t]=0 RUNS_JSON[$t]=""
done

FPW_BEFORE=$(frames_per_writev)
echo "== throughput, 4 connections x 16 in flight, ${DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    run_load "$t" tput "$round" || {
      ERRORS[$t]=$((ERRORS[$t] + 1))
      continue
    }
    TPUT[$t]+="$(json_num "$RUN_FILE" throughput) "
    CPU[$t]+="$(json_num "$RUN_FILE" cpu_us_per_request) "
    RUNS_JSON[$t]+="${RUNS_JSON[$t]:+,}$(cat "$RUN_FILE")"
    printf '   %-8s round %s: %10.1f req/s  cpu %6.2f us/req\n' "$t" "$round" \
      "$(json_num "$RUN_FILE" throughput)" "$(json_num "$RUN_FILE" cpu_us_per_request)"
  done
done
FPW_AFTER=$(frames_per_writev)

echo "== latency, 1 connection x 1 in flight, ${DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    run_load "$t" lat "$round" || {
      ERRORS[$t]=$((ERRORS[$t] + 1))
      continue
    }
    P50[$t]+="$(json_num "$RUN_FILE" p50_us) "
    RUNS_JSON[$t]+="${RUNS_JSON[$t]:+,}$(cat "$RUN_FILE")"
    printf '   %-8s round %s: p50 %8.1f us  p99 %8.1f us\n' "$t" "$round" \
      "$(json_num "$RUN_FILE" p50_us)" "$(json_num "$RUN_FILE" p99_us)"
  done
done

# ---- medians, targets.
declare -A M_TPUT M_CPU M_P50 ADD50
for t in direct haproxy ottava; do
  # shellcheck disable=SC2086  # word splitting of the value lists is intended
  M_TPUT[$t]=$(median ${TPUT[$t]:-})
  # shellcheck disable=SC2086
  M_CPU[$t]=$(median ${CPU[$t]:-})
  # shellcheck disable=SC2086
  M_P50[$t]=$(median ${P50[$t]:-})
done
for t in haproxy ottava; do
  ADD50[$t]=""
  if [ -n "${M_P50[$t]}" ] && [ -n "${M_P50[direct]}" ]; then
    ADD50[$t]=$(awk -v a="${M_P50[$t]}" -v b="${M_P50[direct]}" 'BEGIN { printf "%.6f", a - b }')
  fi
done
# Frames per writev over the throughput runs: the histogram's growth between the two scrapes.
FPW=""
FPW_NA=""
if [ -n "$OTTAVA_NA" ]; then
  FPW_NA="not available"
elif [ -z "$FPW_AFTER" ]; then
  FPW_NA="no ottava_mesh_frames_per_writev histogram on /metrics"
else
  FPW=$(awk -v a="$FPW_AFTER" -v b="${FPW_BEFORE:-0 0}" 'BEGIN {
    split(a, x, " "); split(b, y, " "); c = x[2] - y[2];
    if (c > 0) printf "%.3f", (x[1] - y[1]) / c }')
fi

ROWS=()
JSON_ROWS=()
# row ID LABEL FORMAT VALUE LIMIT BASE_TEXT OP TARGET_TEXT: PASS when VALUE OP LIMIT, where LIMIT
# is already the target's bound (a ratio of HAProxy's value, or HAProxy's plus a constant).
row() {
  local id=$1 label=$2 f=$3 value=$4 limit=$5 base_text=$6 op=$7 target=$8 result
  if [ -n "$OTTAVA_NA" ] && [ -z "$value" ]; then
    result="not available"
  elif [ -z "$value" ] || [ -z "$limit" ] || [ "${ERRORS[ottava]}" -gt 0 ] ||
    [ "${ERRORS[haproxy]}" -gt 0 ] || [ "${ERRORS[direct]}" -gt 0 ]; then
    result=ERROR
  else
    result=$(awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN {
      ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "PASS" : "FAIL" }')
  fi
  local value_text="not available"
  [ -n "$value" ] && value_text=$(fmt "$f" "$value")
  ROWS+=("| $label | $value_text | $base_text | $(fmt "$f" "$limit") | $target | $result |")
  JSON_ROWS+=("{\"id\":\"$id\",\"scenario\":\"$label\",\"value\":${value:-null},\"limit\":${limit:-null},\"target\":\"$target\",\"result\":\"$result\"}")
}
scale() { [ -n "$1" ] && awk -v v="$1" -v k="$2" 'BEGIN { printf "%.6f", v * k }'; }
plus() { [ -n "$1" ] && awk -v v="$1" -v k="$2" 'BEGIN { printf "%.6f", v + k }'; }
row tput-vs-haproxy "Throughput, 64 in flight on 4 connections: Ottava vs HAProxy TCP" '%.0f req/s' \
  "${M_TPUT[ottava]}" "$(scale "${M_TPUT[haproxy]}" 0.9)" \
  "$(fmt '%.0f req/s' "${M_TPUT[haproxy]}") (HAProxy)" ">=" "≥ 0.9× HAProxy"
row added-p50-vs-haproxy "Added p50, 1 in flight (proxy − direct): Ottava vs HAProxy TCP" '%.1f µs' \
  "${ADD50[ottava]}" "$(plus "${ADD50[haproxy]}" 10)" \
  "$(fmt '%.1f µs' "${ADD50[haproxy]}") (HAProxy)" "<=" "≤ HAProxy + 10 µs"
row cpu-vs-haproxy "Proxy CPU per request, 64 in flight: Ottava vs HAProxy TCP" '%.2f µs' \
  "${M_CPU[ottava]}" "$(scale "${M_CPU[haproxy]}" 1.2)" \
  "$(fmt '%.2f µs' "${M_CPU[haproxy]}") (HAProxy)" "<=" "≤ 1.2× HAProxy"
if [ -n "$FPW" ]; then
  ROWS+=("| Frames per writev under load (Ottava, throughput runs) | $FPW | | | reported | PASS |")
  JSON_ROWS+=("{\"id\":\"frames-per-writev\",\"scenario\":\"Frames per writev under load\",\"value\":$FPW,\"limit\":null,\"target\":\"reported\",\"result\":\"PASS\"}")
elif [ -z "$OTTAVA_NA" ]; then
  echo "bolt.sh: frames per writev row left out: $FPW_NA" >&2
else
  ROWS+=("| Frames per writev under load (Ottava) | not available | | | reported | not available |")
fi

REF_ROWS=()
for t in direct haproxy ottava; do
  name=$t
  case $t in
    direct) name="server directly" ;;
    haproxy) name="HAProxy (mode tcp)" ;;
    ottava) name=Ottava ;;
  esac
  if [ "$t" = ottava ] && [ -n "$OTTAVA_NA" ]; then
    REF_ROWS+=("| $name | not available | not available | not available | not available |")
    continue
  fi
  cpu_label="$(fmt '%.2f µs' "${M_CPU[$t]}")"
  [ "$t" = direct ] && cpu_label="$cpu_label (server itself)"
  added="—"
  [ "$t" != direct ] && added="$(fmt '%+.1f µs' "${ADD50[$t]}")"
  REF_ROWS+=("| $name | $(fmt '%.0f req/s' "${M_TPUT[$t]}") | $cpu_label | $(fmt '%.1f µs' "${M_P50[$t]}") | $added |")
done

ROUND_LINES=()
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  ROUND_LINES+=("- $t: throughput $(fmt_list '%.0f' ${TPUT[$t]}) req/s; CPU $(fmt_list '%.2f' ${CPU[$t]}) µs/req; p50 $(fmt_list '%.1f' ${P50[$t]}) µs")
done

HAPROXY_VERSION=$("$HAPROXY" -v 2>&1 | head -1 | awk '{ print $3 }')
{
  echo "## Mesh: Bolt (SOFARPC) proxy against HAProxy in TCP mode"
  echo
  echo "Server: bench_bolt_server, 1 thread, a fixed SofaResponse for every request. Proxies with"
  echo "$WORKERS workers each: HAProxy $HAPROXY_VERSION (mode tcp, nbthread $WORKERS), Ottava (mesh.workers"
  echo "$WORKERS, a bolt listener and a one-host bolt cluster). Load: bench_bolt_load (Bolt v1, 327-byte"
  echo "echo requests); throughput and CPU with 4 connections x 16 pipelined requests, latency with 1 x 1;"
  echo "$ROUNDS rounds of $DURATION s per target, targets alternating; medians. CPU = utime+stime of the"
  echo "proxy over the run ÷ requests. Load generator, server and proxy share the machine's $(nproc) cores."
  if [ -n "$OTTAVA_NA" ]; then
    echo
    echo "**Ottava: not available** — $OTTAVA_NA"
  fi
  echo
  echo "| Scenario | Value | Baseline | Limit | Target | Result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "| Target | Throughput, 64 in flight | CPU per request | p50, 1 in flight | Added p50 |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${REF_ROWS[@]}"
  echo
  echo "Per-round values:"
  echo
  printf '%s\n' "${ROUND_LINES[@]}"
} >"$OUT/bolt-report.md"

{
  echo "{\"workers\":$WORKERS,\"duration_s\":$DURATION,\"rounds\":$ROUNDS,"
  echo "\"ottava_available\":$([ -z "$OTTAVA_NA" ] && echo true || echo false),"
  echo "\"ottava_not_available_reason\":\"$(sed 's/["\\]/ /g' <<<"$OTTAVA_NA" | tr -d '\n\r\t')\","
  echo "\"frames_per_writev\":$(json_or_null "$FPW"),"
  echo "\"targets\":{"
  first=1
  for t in direct haproxy ottava; do
    [ $first = 1 ] || echo ","
    first=0
    echo "\"$t\":{\"throughput\":$(json_or_null "${M_TPUT[$t]}"),\"cpu_us_per_request\":$(json_or_null "${M_CPU[$t]}"),\"p50_us\":$(json_or_null "${M_P50[$t]}"),\"errors\":${ERRORS[$t]:-0},\"runs\":[${RUNS_JSON[$t]:-}]}"
  done
  echo "},"
  echo "\"scenarios\":["
  (IFS=$',\n'; echo "${JSON_ROWS[*]}")
  echo "]}"
} >"$OUT/bolt-results.json"

cat "$OUT/bolt-report.md"
if [ $FAILED = 1 ]; then
  echo "bolt.sh: FAILED: some requests got errors or a tool failed (see above)" >&2
  exit 1
fi
