#!/usr/bin/env bash
# The mesh part of `make bench` (run.sh calls it): Ottava's HTTP/1.1 proxy against nginx as a
# reverse proxy and HAProxy in HTTP mode, all in front of the same upstream, and against the
# upstream directly; plus InvokeService through the mesh against the gRPC echo floor.
#
#   bash test/bench/mesh.sh BUILD_DIR
#
# Upstream: nginx (1 worker) answering a fixed 100-byte body on every path, with keep-alive.
# Proxies, each with W workers (MESH_BENCH_WORKERS, default 2) and keep-alive to the upstream:
#   - nginx:   worker_processes W, proxy_http_version 1.1, Connection "", upstream keepalive 64;
#   - HAProxy: mode http, nbthread W, http-reuse always;
#   - Ottava:  mesh.workers W, one http1 listener, one route to a one-host http1 cluster.
# Load: wrk. Per target and round:
#   - throughput: wrk -t2 -c64 (any non-2xx answer or socket error fails the run), and the proxy's
#     CPU time (utime+stime from /proc of the proxy and its child processes) over that run divided
#     by the requests it served;
#   - latency: wrk -t1 -c1, p50 and p99 (added latency = proxy - direct);
#   - InvokeService at one stream (bench_load --method invoke): Ottava routing id "bench-up" to the
#     upstream; bench_echo_server answering the same RPC with no upstream, on the gRPC thread and
#     (--handoff 1) from a Dispatcher thread; Ottava answering "bench-local" from a direct_response.
# Targets (issue "mesh benchmarks"):
#   - throughput at 64 connections >= 1.0x nginx and >= 0.9x HAProxy;
#   - proxy CPU per request <= 1.0x nginx's;
#   - added p50 and p99 at 1 connection <= nginx's;
#   - InvokeService p50 <= echo InvokeService p50 + direct HTTP p50 + 30 us; and re-based with the
#     hand-off echo in place of the echo.
# Targets alternate targets round by round (direct, nginx, HAProxy, Ottava, direct, ...) and report
# medians, because the 2-core machine is shared by wrk, the upstream, the proxy and everyone else.
#
# Until the mesh engine lands, Ottava rejects a config with listeners (exit 2) or its ready file
# names no "http" listener: its rows then say "not available" and everything else is still measured.
#
# Knobs (environment): MESH_BENCH_WORKERS (2), MESH_BENCH_DURATION (s per wrk run, 2),
# MESH_BENCH_ROUNDS (5), MESH_BENCH_INVOKE_DURATION (s, 1), BENCH_WARMUP (s, 0.5, bench_load only).
# Defaults keep the run near 2 minutes with Ottava, under 2 without.
#
# Writes BUILD_DIR/bench/mesh-report.md and BUILD_DIR/bench/mesh-results.json (run.sh appends them
# to report.md and results.json). Exit 1 on non-2xx answers, socket errors, gRPC errors or a tool
# failure; ratios missing their targets are reported, not failed.
set -uo pipefail

BUILD_DIR=$(cd "${1:?usage: mesh.sh BUILD_DIR}" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
WORKERS=${MESH_BENCH_WORKERS:-2}
DURATION=${MESH_BENCH_DURATION:-2}
ROUNDS=${MESH_BENCH_ROUNDS:-5}
INVOKE_DURATION=${MESH_BENCH_INVOKE_DURATION:-1}
WARMUP=${BENCH_WARMUP:-0.5}
READY_TIMEOUT_S=15
BODY=$(printf 'ottava-bench-upstream-%078d' 0) # 100 bytes

for tool in nginx haproxy wrk; do
  if ! command -v "$tool" >/dev/null; then
    echo "mesh.sh: $tool is not installed (scripts/setup.sh installs it)" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx)
HAPROXY=$(command -v haproxy)
for tool in ottava bench_echo_server bench_load; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "mesh.sh: $BIN/$tool is missing; build first (make build)" >&2
    exit 1
  fi
done

mkdir -p "$OUT/mesh-runs" "$OUT/logs"
rm -f "$OUT"/mesh-runs/*
WORK=$(mktemp -d /tmp/ottava-mesh-bench.XXXXXX)

# Every process this script starts, stopped on any exit (nginx and HAProxy run in the foreground,
# so their PIDs are ours; SIGTERM reaches nginx's master, which stops its workers).
BENCH_NAME=mesh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wait_http NAME PID PORT: bounded wait until GET / on PORT answers the upstream's body (through a
# proxy this also proves the proxy reaches the upstream).
wait_http() {
  local name=$1 pid=$2 port=$3 deadline=$((SECONDS + READY_TIMEOUT_S))
  while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "mesh.sh: $name exited at startup; its log:" >&2
      tail -20 "$OUT/logs/mesh-$name.log" >&2
      return 1
    fi
    if [ "$(curl -s --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null)" = "$BODY" ]; then
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "mesh.sh: $name did not answer GET / on port $port within ${READY_TIMEOUT_S}s" >&2
      return 1
    fi
    sleep 0.05
  done
}

# ---- upstream: nginx, 1 worker, a fixed body on every path.
UP_PORT=$(free_port)
start_nginx_upstream "$WORK/upstream" "$UP_PORT" "$BODY"
cp "$WORK/upstream/nginx.conf" "$OUT/mesh-upstream-nginx.conf"
UP_PID=$PID
wait_http upstream "$UP_PID" "$UP_PORT" || exit 1

# ---- nginx as a reverse proxy.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
{
  nginx_common "$WORK/nginx"
  cat <<EOF
worker_processes $WORKERS;
events { worker_connections 4096; }
http {
$(nginx_http_common "$WORK/nginx")
  upstream up {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$WORK/nginx/nginx.conf"
cp "$WORK/nginx/nginx.conf" "$OUT/mesh-nginx.conf"
start_bg nginx "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
NGINX_PID=$PID
wait_http nginx "$NGINX_PID" "$NGINX_PORT" || exit 1

# ---- HAProxy in HTTP mode, no logging.
HAPROXY_PORT=$(free_port)
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend up

backend up
  server up1 127.0.0.1:$UP_PORT
EOF
cp "$WORK/haproxy.cfg" "$OUT/mesh-haproxy.cfg"
start_bg haproxy "$HAPROXY" -db -f "$WORK/haproxy.cfg"
HAPROXY_PID=$PID
wait_http haproxy "$HAPROXY_PID" "$HAPROXY_PORT" || exit 1

# ---- Ottava: the mesh with one listener, one router, one cluster.
{
  bench_config_head
  cat <<EOF
 "mesh": {
   "workers": $WORKERS,
   "listeners": [{"name": "http", "address": "127.0.0.1:0", "protocol": "http1", "router": "r"}],
   "routers": [{"name": "r", "routes": [
     {"match": {"service": "bench-up"}, "cluster": "up", "timeout_ms": 3000},
     {"match": {"service": "bench-local"}, "direct_response": {"status": 200, "body": "$BODY"}},
     {"match": {}, "cluster": "up", "timeout_ms": 3000}]}],
   "clusters": [{"name": "up", "protocol": "http1", "lb": "round_robin",
                 "hosts": [{"address": "127.0.0.1:$UP_PORT", "weight": 1}]}]}}
EOF
} >"$WORK/ottava.json"
cp "$WORK/ottava.json" "$OUT/mesh-ottava.json"
OTTAVA_NA="" # why Ottava's rows are "not available", when they are
OTTAVA_PID=""
OTTAVA_PORT=""
OTTAVA_GRPC=""
rm -f "$WORK/ottava.ready"
start_bg ottava "$BIN/ottava" --config "$WORK/ottava.json" --ready-file "$WORK/ottava.ready"
deadline=$((SECONDS + READY_TIMEOUT_S))
while [ ! -s "$WORK/ottava.ready" ]; do
  if ! kill -0 "$PID" 2>/dev/null; then
    rc=0
    wait "$PID" || rc=$?
    OTTAVA_NA="ottava exited with status $rc at startup: $(head -c 300 "$OUT/logs/mesh-ottava.log" | tr '\n' ' ')"
    # Exit 2 is a rejected config: the mesh engine is not in this build. Anything else is a bug.
    if [ "$rc" != 2 ]; then
      fail "$OTTAVA_NA"
    fi
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
  OTTAVA_GRPC=$(json_str "$WORK/ottava.ready" grpc)
  listener=$(tr -d '\n ' <"$WORK/ottava.ready" | sed -n 's/.*"listeners":{[^}]*"http":"\([^"]*\)".*/\1/p')
  OTTAVA_PORT=${listener##*:}
  if [ -z "$listener" ]; then
    OTTAVA_NA="the ready file names no \"http\" listener: $(cat "$WORK/ottava.ready")"
  elif ! wait_http ottava "$OTTAVA_PID" "$OTTAVA_PORT"; then
    OTTAVA_NA="the mesh listener $listener does not proxy GET / to the upstream"
    fail "$OTTAVA_NA"
  fi
fi
if [ -n "$OTTAVA_NA" ]; then
  echo "mesh.sh: Ottava rows not available: $OTTAVA_NA" >&2
fi

# The gRPC echo floors for InvokeService: answered on the gRPC thread (the issue's baseline), and
# answered from a Dispatcher loop thread (--handoff 1: the two thread crossings an in-process mesh
# with its own event loops makes, and nothing else).
start_echo() {
  local name=$1
  shift
  rm -f "$WORK/$name.ready"
  start_bg "$name" "$BIN/bench_echo_server" --value-bytes 64 --ready-file "$WORK/$name.ready" "$@"
  for _ in $(seq $((READY_TIMEOUT_S * 20))); do
    [ -s "$WORK/$name.ready" ] && break
    sleep 0.05
  done
}
start_echo echo
ECHO_PID=$PID
ECHO_GRPC=$(json_str "$WORK/echo.ready" grpc 2>/dev/null)
[ -n "$ECHO_GRPC" ] || fail "bench_echo_server wrote no ready file"
start_echo handoff --handoff 1
HANDOFF_PID=$PID
HANDOFF_GRPC=$(json_str "$WORK/handoff.ready" grpc 2>/dev/null)
[ -n "$HANDOFF_GRPC" ] || fail "bench_echo_server --handoff 1 wrote no ready file"

TARGETS=(direct nginx haproxy)
declare -A PORT=([direct]=$UP_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
declare -A TPID=([direct]=$UP_PID [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID)
if [ -z "$OTTAVA_NA" ]; then
  TARGETS+=(ottava)
  PORT[ottava]=$OTTAVA_PORT
  TPID[ottava]=$OTTAVA_PID
fi
echo "== mesh: upstream :$UP_PORT, nginx :$NGINX_PORT, haproxy :$HAPROXY_PORT," \
  "ottava ${OTTAVA_PORT:+:$OTTAVA_PORT}${OTTAVA_NA:+not available}, $WORKERS workers each"

# wrk prints its summary; this script adds one exact line for us: requests, duration, errors and
# the latency percentiles in microseconds.
cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
EOF

# run_wrk TARGET KIND ROUND: one wrk run; sets RUN_FILE (the RESULT JSON) and returns 1 on failure.
run_wrk() {
  local target=$1 kind=$2 round=$3 threads=2 conns=64
  if [ "$kind" = lat ]; then
    threads=1 conns=1
  fi
  local raw=$OUT/mesh-runs/$kind-$target-$round.txt
  RUN_FILE=$OUT/mesh-runs/$kind-$target-$round.json
  if ! kill -0 "${TPID[$target]}" 2>/dev/null; then
    fail "$target (pid ${TPID[$target]}) is no longer running; skipping $kind round $round"
    return 1
  fi
  local before after
  before=$(cpu_ticks "${TPID[$target]}")
  if ! wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 5s -s "$WORK/report.lua" \
    "http://127.0.0.1:${PORT[$target]}/" >"$raw" 2>&1; then
    fail "wrk against $target failed: $(tail -3 "$raw")"
    return 1
  fi
  after=$(cpu_ticks "${TPID[$target]}")
  local result
  result=$(sed -n 's/^RESULT //p' "$raw")
  if [ -z "$result" ]; then
    fail "wrk against $target printed no result: $(tail -3 "$raw")"
    return 1
  fi
  local requests seconds cpu_us
  requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$result")
  seconds=$(sed -n 's/.*"duration_us":\([0-9]*\).*/\1/p' <<<"$result")
  cpu_us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" \
    'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n; else print 0 }')
  echo "${result%\}},\"throughput\":$(awk -v n="$requests" -v d="$seconds" 'BEGIN { printf "%.1f", n * 1e6 / d }'),\"cpu_us_per_request\":$cpu_us,\"cpu_ticks\":$((after - before))}" >"$RUN_FILE"
  # wrk counts a 4xx/5xx answer as a status error; a wrong body would need a Lua response() hook
  # that slows wrk down, so the body is checked once per target by wait_http instead.
  local bad
  bad=$(awk -v s="$(json_num "$RUN_FILE" status_errors)" -v c="$(json_num "$RUN_FILE" connect_errors)" \
    -v r="$(json_num "$RUN_FILE" read_errors)" -v w="$(json_num "$RUN_FILE" write_errors)" \
    -v t="$(json_num "$RUN_FILE" timeouts)" 'BEGIN { print s + c + r + w + t }')
  if [ "$bad" != 0 ]; then
    fail "$target, $kind round $round: $bad errors (non-2xx $(json_num "$RUN_FILE" status_errors)," \
      "connect $(json_num "$RUN_FILE" connect_errors), read $(json_num "$RUN_FILE" read_errors)," \
      "write $(json_num "$RUN_FILE" write_errors), timeout $(json_num "$RUN_FILE" timeouts))"
    ERRORS[$target]=$((ERRORS[$target] + bad))
  fi
  # A non-2xx that wrk does not count (1xx/3xx) still shows in its own summary line.
  if grep -q 'Non-2xx or 3xx responses' "$raw"; then
    fail "$target, $kind round $round: $(grep 'Non-2xx or 3xx responses' "$raw")"
    ERRORS[$target]=$((ERRORS[$target] + 1))
  fi
  return 0
}

declare -A TPUT CPU P50 P99 ERRORS RUNS_JSON
for t in "${TARGETS[@]}"; do
  TPUT[$t]="" CPU[$t]="" P50[$t]="" P99[$t]="" ERRORS[$t]=0 RUNS_JSON[$t]=""
done

# Warm every target once (connections, caches, the upstream's keep-alive pool), then alternate.
echo "== warmup"
for t in "${TARGETS[@]}"; do
  wrk -t2 -c64 -d1s "http://127.0.0.1:${PORT[$t]}/" >/dev/null 2>&1 || true
done

echo "== throughput, wrk -t2 -c64, ${DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    run_wrk "$t" tput "$round" || {
      ERRORS[$t]=$((ERRORS[$t] + 1))
      continue
    }
    TPUT[$t]+="$(json_num "$RUN_FILE" throughput) "
    CPU[$t]+="$(json_num "$RUN_FILE" cpu_us_per_request) "
    RUNS_JSON[$t]+="${RUNS_JSON[$t]:+,}$(cat "$RUN_FILE")"
    printf '   %-12s round %s: %10.1f req/s  cpu %6.2f us/req\n' "$t" "$round" \
      "$(json_num "$RUN_FILE" throughput)" "$(json_num "$RUN_FILE" cpu_us_per_request)"
  done
done

echo "== latency, wrk -t1 -c1, ${DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    run_wrk "$t" lat "$round" || {
      ERRORS[$t]=$((ERRORS[$t] + 1))
      continue
    }
    P50[$t]+="$(json_num "$RUN_FILE" p50_us) "
    P99[$t]+="$(json_num "$RUN_FILE" p99_us) "
    RUNS_JSON[$t]+="${RUNS_JSON[$t]:+,}$(cat "$RUN_FILE")"
    printf '   %-12s round %s: p50 %8.1f us  p99 %8.1f us\n' "$t" "$round" \
      "$(json_num "$RUN_FILE" p50_us)" "$(json_num "$RUN_FILE" p99_us)"
  done
done

# InvokeService at one stream: echo floor and Ottava through the mesh, alternating.
# ottava-local is Ottava answering from a direct_response route: the mesh's own work with no
# upstream, to set beside the hand-off echo.
INVOKE_SERVERS=()
[ -n "$ECHO_GRPC" ] && INVOKE_SERVERS+=(echo)
[ -n "$HANDOFF_GRPC" ] && INVOKE_SERVERS+=(handoff)
[ -z "$OTTAVA_NA" ] && INVOKE_SERVERS+=(ottava-local ottava)
declare -A INVOKE=([echo]="" [handoff]="" [ottava-local]="" [ottava]="")
declare -A INVOKE_ERRORS=([echo]=0 [handoff]=0 [ottava-local]=0 [ottava]=0)
declare -A INVOKE_RUNS=([echo]="" [handoff]="" [ottava-local]="" [ottava]="")
declare -A GRPC_TARGET=([echo]=$ECHO_GRPC [handoff]=$HANDOFF_GRPC [ottava-local]=$OTTAVA_GRPC [ottava]=$OTTAVA_GRPC)
declare -A GRPC_PID=([echo]=$ECHO_PID [handoff]=$HANDOFF_PID [ottava-local]=$OTTAVA_PID [ottava]=$OTTAVA_PID)
declare -A INVOKE_ID=([echo]=bench-up [handoff]=bench-up [ottava-local]=bench-local [ottava]=bench-up)
echo "== InvokeService p50, 1 stream, ${INVOKE_DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for s in "${INVOKE_SERVERS[@]}"; do
    file=$OUT/mesh-runs/invoke-$s-$round.json
    if ! kill -0 "${GRPC_PID[$s]}" 2>/dev/null; then
      fail "$s is no longer running; skipping InvokeService round $round"
      INVOKE_ERRORS[$s]=$((INVOKE_ERRORS[$s] + 1))
      continue
    fi
    if ! "$BIN/bench_load" --target "${GRPC_TARGET[$s]}" --method invoke --invoke-id "${INVOKE_ID[$s]}" \
      --invoke-method echo --invoke-verb GET --value-bytes 0 --connections 1 --streams 1 \
      --duration "$INVOKE_DURATION" --warmup "$WARMUP" >"$file" 2>"$OUT/logs/mesh-invoke-$s-$round.err"; then
      fail "bench_load InvokeService against $s failed: $(cat "$OUT/logs/mesh-invoke-$s-$round.err")"
      INVOKE_ERRORS[$s]=$((INVOKE_ERRORS[$s] + 1))
      continue
    fi
    bad=$(($(json_num "$file" errors) + $(json_num "$file" bad_responses)))
    if [ "$bad" -gt 0 ]; then
      fail "$s answered $bad InvokeService calls with an error:" \
        "$(tr -d '\n' <"$file" | sed -n 's/.*\("errors_by_code":{[^}]*}\).*/\1/p')"
      INVOKE_ERRORS[$s]=$((INVOKE_ERRORS[$s] + bad))
    fi
    INVOKE[$s]+="$(json_num "$file" p50_us) "
    INVOKE_RUNS[$s]+="${INVOKE_RUNS[$s]:+,}$(cat "$file")"
    printf '   %-12s round %s: p50 %8.1f us  p99 %8.1f us\n' "$s" "$round" \
      "$(json_num "$file" p50_us)" "$(json_num "$file" p99_us)"
  done
done

# ---- medians, ratios, verdicts.
declare -A M_TPUT M_CPU M_P50 M_P99
for t in direct nginx haproxy ottava; do
  # shellcheck disable=SC2086  # word splitting of the value lists is intended
  M_TPUT[$t]=$(median ${TPUT[$t]:-})
  # shellcheck disable=SC2086
  M_CPU[$t]=$(median ${CPU[$t]:-})
  # shellcheck disable=SC2086
  M_P50[$t]=$(median ${P50[$t]:-})
  # shellcheck disable=SC2086
  M_P99[$t]=$(median ${P99[$t]:-})
done
# shellcheck disable=SC2086
ECHO_INVOKE=$(median ${INVOKE[echo]})
# shellcheck disable=SC2086
OTTAVA_INVOKE=$(median ${INVOKE[ottava]})
# shellcheck disable=SC2086
HANDOFF_INVOKE=$(median ${INVOKE[handoff]})
# shellcheck disable=SC2086
LOCAL_INVOKE=$(median ${INVOKE[ottava-local]})
sub() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
declare -A ADD50 ADD99
for t in nginx haproxy ottava; do
  ADD50[$t]=$(sub "${M_P50[$t]}" "${M_P50[direct]}")
  ADD99[$t]=$(sub "${M_P99[$t]}" "${M_P99[direct]}")
done
INVOKE_LIMIT=""
if [ -n "$ECHO_INVOKE" ] && [ -n "${M_P50[direct]}" ]; then
  INVOKE_LIMIT=$(awk -v e="$ECHO_INVOKE" -v d="${M_P50[direct]}" 'BEGIN { printf "%.6f", e + d + 30 }')
fi

ROWS=()
JSON_ROWS=()
# row ID LABEL FORMAT VALUE BASELINE BASELINE_TEXT OP FACTOR TARGET_TEXT: a target row. The ratio
# is value / baseline; OP is ">=" or "<=" against FACTOR. "not available" when the value is
# missing because Ottava has no mesh; ERROR when a run failed.
row() {
  local id=$1 label=$2 f=$3 value=$4 base=$5 base_text=$6 op=$7 factor=$8 target=$9
  local ratio="" result
  if [ -n "$OTTAVA_NA" ] && [ -z "$value" ]; then
    result="not available"
  elif [ -z "$value" ] || [ -z "$base" ] || [ "${ERRORS[ottava]:-0}" -gt 0 ]; then
    result=ERROR
  else
    ratio=$(awk -v v="$value" -v b="$base" 'BEGIN { if (b != 0) printf "%.3f", v / b }')
    result=$(awk -v v="$value" -v b="$base" -v k="$factor" -v op="$op" 'BEGIN {
      ok = (op == ">=") ? (v >= k * b) : (v <= k * b); print ok ? "PASS" : "FAIL" }')
  fi
  local value_text
  if [ -n "$value" ]; then value_text=$(fmt "$f" "$value"); else value_text="not available"; fi
  ROWS+=("| $label | $value_text | $base_text | ${ratio:-n/a} | $target | $result |")
  JSON_ROWS+=("{\"id\":\"$id\",\"scenario\":\"$label\",\"value\":${value:-null},\"baseline\":${base:-null},\"ratio\":${ratio:-null},\"target\":\"$target\",\"result\":\"$result\"}")
}
row tput-vs-nginx "Throughput, 64 connections: Ottava / nginx" '%.0f req/s' "${M_TPUT[ottava]}" \
  "${M_TPUT[nginx]}" "$(fmt '%.0f req/s' "${M_TPUT[nginx]}") (nginx)" ">=" 1.0 "≥ 1.0×"
row tput-vs-haproxy "Throughput, 64 connections: Ottava / HAProxy" '%.0f req/s' "${M_TPUT[ottava]}" \
  "${M_TPUT[haproxy]}" "$(fmt '%.0f req/s' "${M_TPUT[haproxy]}") (HAProxy)" ">=" 0.9 "≥ 0.9×"
row cpu-vs-nginx "Proxy CPU per request, 64 connections: Ottava / nginx" '%.2f µs' "${M_CPU[ottava]}" \
  "${M_CPU[nginx]}" "$(fmt '%.2f µs' "${M_CPU[nginx]}") (nginx)" "<=" 1.0 "≤ 1.0×"
row added-p50-vs-nginx "Added p50, 1 connection (proxy − direct): Ottava / nginx" '%.1f µs' \
  "${ADD50[ottava]}" "${ADD50[nginx]}" "$(fmt '%.1f µs' "${ADD50[nginx]}") (nginx)" "<=" 1.0 "≤ 1.0×"
row added-p99-vs-nginx "Added p99, 1 connection (proxy − direct): Ottava / nginx" '%.1f µs' \
  "${ADD99[ottava]}" "${ADD99[nginx]}" "$(fmt '%.1f µs' "${ADD99[nginx]}") (nginx)" "<=" 1.0 "≤ 1.0×"
# The same ratios paired round by round (each round runs every target back to back), then their
# median: a machine-wide slowdown during one round moves both sides of that round's ratio, where
# the medians above may come from different rounds.
paired() { # paired VALUES BASELINES: median of value[i] / baseline[i]
  local -a v b r=()
  read -ra v <<<"$1"
  read -ra b <<<"$2"
  for i in "${!v[@]}"; do
    [ -n "${b[$i]:-}" ] && r+=("$(awk -v x="${v[$i]}" -v y="${b[$i]}" 'BEGIN { if (y != 0) printf "%.6f", x / y }')")
  done
  [ ${#r[@]} -gt 0 ] && median "${r[@]}"
}
row tput-vs-nginx-paired "Throughput, 64 connections: Ottava / nginx, paired per round" '%.3f' \
  "$(paired "${TPUT[ottava]:-}" "${TPUT[nginx]:-}")" 1 "1 (nginx, same round)" ">=" 1.0 "≥ 1.0×"
row tput-vs-haproxy-paired "Throughput, 64 connections: Ottava / HAProxy, paired per round" '%.3f' \
  "$(paired "${TPUT[ottava]:-}" "${TPUT[haproxy]:-}")" 1 "1 (HAProxy, same round)" ">=" 0.9 "≥ 0.9×"
row cpu-vs-nginx-paired "Proxy CPU per request: Ottava / nginx, paired per round" '%.3f' \
  "$(paired "${CPU[ottava]:-}" "${CPU[nginx]:-}")" 1 "1 (nginx, same round)" "<=" 1.0 "≤ 1.0×"
ERRORS[ottava]=$((${ERRORS[ottava]:-0} + INVOKE_ERRORS[ottava] + INVOKE_ERRORS[echo]))
row invoke-p50 "InvokeService → HTTP upstream p50, 1 stream" '%.1f µs' "$OTTAVA_INVOKE" \
  "$INVOKE_LIMIT" "$(fmt '%.1f µs' "$INVOKE_LIMIT") (echo $(fmt '%.1f' "$ECHO_INVOKE") + direct $(fmt '%.1f' "${M_P50[direct]}") + 30)" \
  "<=" 1.0 "≤ 1.0× (≤ limit)"

# The floor InvokeService pays and the echo does not: the gRPC thread hands the call to a mesh
# worker and the answer is finished from the worker. The hand-off echo measures exactly that in the
# same run; the re-based limit puts it in place of the plain echo. The target row above stays as
# the issue states it.
ERRORS[ottava]=$((${ERRORS[ottava]:-0} + INVOKE_ERRORS[handoff] + INVOKE_ERRORS[ottava-local]))
REBASED_LIMIT=""
if [ -n "$HANDOFF_INVOKE" ] && [ -n "${M_P50[direct]}" ]; then
  REBASED_LIMIT=$(awk -v e="$HANDOFF_INVOKE" -v d="${M_P50[direct]}" 'BEGIN { printf "%.6f", e + d + 30 }')
fi
row invoke-p50-rebased "InvokeService p50, re-based on the hand-off echo" '%.1f µs' \
  "$OTTAVA_INVOKE" "$REBASED_LIMIT" \
  "$(fmt '%.1f µs' "$REBASED_LIMIT") (hand-off echo $(fmt '%.1f' "$HANDOFF_INVOKE") + direct $(fmt '%.1f' "${M_P50[direct]}") + 30)" \
  "<=" 1.0 "≤ 1.0× (≤ re-based limit)"

# Reference rows: every target's own numbers.
REF_ROWS=()
for t in direct nginx haproxy ottava; do
  name=$t
  case $t in
    direct) name="upstream directly" ;;
    haproxy) name=HAProxy ;;
    ottava) name=Ottava ;;
  esac
  if [ "$t" = ottava ] && [ -n "$OTTAVA_NA" ]; then
    REF_ROWS+=("| $name | not available | not available | not available | not available | not available |")
    continue
  fi
  cpu_label="$(fmt '%.2f µs' "${M_CPU[$t]}")"
  [ "$t" = direct ] && cpu_label="$cpu_label (upstream itself)"
  added="—"
  [ "$t" != direct ] && added="$(fmt '%+.1f' "${ADD50[$t]}") / $(fmt '%+.1f' "${ADD99[$t]}") µs"
  REF_ROWS+=("| $name | $(fmt '%.0f req/s' "${M_TPUT[$t]}") | $cpu_label | $(fmt '%.1f µs' "${M_P50[$t]}") | $(fmt '%.1f µs' "${M_P99[$t]}") | $added |")
done

ROUND_LINES=()
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  ROUND_LINES+=("- $t: throughput $(fmt_list '%.0f' ${TPUT[$t]}) req/s; CPU $(fmt_list '%.2f' ${CPU[$t]}) µs/req; p50 $(fmt_list '%.0f' ${P50[$t]}) µs; p99 $(fmt_list '%.0f' ${P99[$t]}) µs")
done
for s in "${INVOKE_SERVERS[@]}"; do
  # shellcheck disable=SC2086
  ROUND_LINES+=("- InvokeService p50, $s: $(fmt_list '%.1f' ${INVOKE[$s]}) µs")
done

NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/.*version: //')
HAPROXY_VERSION=$("$HAPROXY" -v 2>&1 | head -1 | awk '{ print $3 }')
WRK_VERSION=$(wrk --version 2>&1 | head -1 | awk '{ print $2 }')
{
  echo "## Mesh: HTTP/1.1 proxy against nginx and HAProxy"
  echo
  echo "Upstream: $NGINX_VERSION, 1 worker, a fixed ${#BODY}-byte body on every path, keep-alive."
  echo "Proxies with $WORKERS workers each and keep-alive to the upstream: nginx (reverse proxy),"
  echo "HAProxy $HAPROXY_VERSION (mode http, nbthread $WORKERS, http-reuse always), Ottava (mesh.workers $WORKERS)."
  echo "Load: wrk $WRK_VERSION; throughput and CPU with -t2 -c64, latency with -t1 -c1; $ROUNDS rounds of"
  echo "${DURATION} s per target, targets alternating; medians. CPU = utime+stime of the proxy's processes"
  echo "over the run ÷ requests. wrk, the upstream and the proxy share the machine's $(nproc) cores, so"
  echo "throughput is bounded by all three, not by the proxy alone."
  if [ -n "$OTTAVA_NA" ]; then
    echo
    echo "**Ottava: not available** — $OTTAVA_NA"
  fi
  echo
  echo "| Scenario | Value | Baseline | Ratio | Target | Result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "| Target | Throughput, 64 conn | CPU per request | p50, 1 conn | p99, 1 conn | Added p50 / p99 |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${REF_ROWS[@]}"
  echo "| gRPC echo InvokeService, 1 stream | | | $(fmt '%.1f µs' "$ECHO_INVOKE") | | |"
  echo "| gRPC echo InvokeService answered from a Dispatcher thread, 1 stream | | | $(fmt '%.1f µs' "$HANDOFF_INVOKE") | | |"
  echo "| Ottava InvokeService to a direct_response route (no upstream), 1 stream | | | $(fmt '%.1f µs' "$LOCAL_INVOKE") | | |"
  echo
  echo "Per-round values:"
  echo
  printf '%s\n' "${ROUND_LINES[@]}"
} >"$OUT/mesh-report.md"

{
  echo "{\"workers\":$WORKERS,\"duration_s\":$DURATION,\"rounds\":$ROUNDS,\"body_bytes\":${#BODY},"
  echo "\"ottava_available\":$([ -z "$OTTAVA_NA" ] && echo true || echo false),"
  echo "\"ottava_not_available_reason\":\"$(sed 's/["\\]/ /g' <<<"$OTTAVA_NA" | tr -d '\n\r\t')\","
  echo "\"targets\":{"
  first=1
  for t in direct nginx haproxy ottava; do
    [ $first = 1 ] || echo ","
    first=0
    echo "\"$t\":{\"throughput\":$(json_or_null "${M_TPUT[$t]}"),\"cpu_us_per_request\":$(json_or_null "${M_CPU[$t]}"),\"p50_us\":$(json_or_null "${M_P50[$t]}"),\"p99_us\":$(json_or_null "${M_P99[$t]}"),\"errors\":${ERRORS[$t]:-0},\"runs\":[${RUNS_JSON[$t]:-}]}"
  done
  echo "},"
  echo "\"invoke\":{\"echo_p50_us\":$(json_or_null "$ECHO_INVOKE"),\"handoff_echo_p50_us\":$(json_or_null "$HANDOFF_INVOKE"),\"ottava_local_p50_us\":$(json_or_null "$LOCAL_INVOKE"),\"ottava_p50_us\":$(json_or_null "$OTTAVA_INVOKE"),\"runs\":{\"echo\":[${INVOKE_RUNS[echo]}],\"handoff\":[${INVOKE_RUNS[handoff]}],\"ottava-local\":[${INVOKE_RUNS[ottava-local]}],\"ottava\":[${INVOKE_RUNS[ottava]}]}},"
  echo "\"scenarios\":["
  (IFS=$',\n'; echo "${JSON_ROWS[*]}")
  echo "]}"
} >"$OUT/mesh-results.json"

cat "$OUT/mesh-report.md"
if [ $FAILED = 1 ]; then
  echo "mesh.sh: FAILED: some requests got errors or a tool failed (see above)" >&2
  exit 1
fi
