#!/usr/bin/env bash
# The flow-control part of `make bench` (run.sh calls it), issue 9:
#   1. bench_flow_control (Google Benchmark): ns per limit check (Controller::Check + Exit) with
#      one QPS rule and with 20 rules, on 1, 2 and 4 threads sharing the counters;
#   2. the cost of the mesh filter: two Ottava proxies in front of the same nginx upstream (1
#      worker, fixed 100-byte body), one plain and one with the flow_control filter and 20 rules
#      (15 on other resources, and on the benchmarked path a QPS rule, a prefix concurrency rule,
#      a refined rule on a caller app, an error-ratio breaker and an async cluster rule whose
#      central counter is a redis-server started here, all admitting everything):
#      throughput with wrk -t2 -c64 and p50 with wrk -t1 -c1, rounds alternating plain/flow.
# Targets: flow throughput >= 0.97x plain; added p50 <= 2 us.
#
#   bash test/bench/flow.sh BUILD_DIR
#
# Knobs: FLOW_BENCH_WORKERS (2), FLOW_BENCH_DURATION (s per wrk run, 2), FLOW_BENCH_ROUNDS (5).
# Writes BUILD_DIR/bench/flow-report.md. Exit 1 on non-2xx answers, socket errors or a tool
# failure; ratios missing their targets are reported, not failed.
set -uo pipefail

BUILD_DIR=$(cd "${1:?usage: flow.sh BUILD_DIR}" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
WORKERS=${FLOW_BENCH_WORKERS:-2}
DURATION=${FLOW_BENCH_DURATION:-2}
ROUNDS=${FLOW_BENCH_ROUNDS:-5}
READY_TIMEOUT_S=15
BODY=$(printf 'ottava-bench-upstream-%078d' 0) # 100 bytes

for tool in nginx wrk redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "flow.sh: $tool is not installed" >&2; exit 1; }
done
for tool in ottava bench_flow_control; do
  [ -x "$BIN/$tool" ] || { echo "flow.sh: $BIN/$tool is missing; build first" >&2; exit 1; }
done
mkdir -p "$OUT/flow-runs" "$OUT/logs"
rm -f "$OUT"/flow-runs/*
WORK=$(mktemp -d /tmp/ottava-flow-bench.XXXXXX)
BENCH_NAME=flow
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "== flow: microbenchmark"
"$BIN/bench_flow_control" --benchmark_min_time=0.2 >"$OUT/flow-micro.txt" 2>"$OUT/logs/flow-micro.log" ||
  fail "bench_flow_control failed: $(tail -3 "$OUT/logs/flow-micro.log")"
cat "$OUT/flow-micro.txt"

wait_http() { # NAME PID PORT
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ "$(curl -s --max-time 1 "http://127.0.0.1:$3/" 2>/dev/null)" != "$BODY" ]; do
    kill -0 "$2" 2>/dev/null || { fail "$1 exited at startup"; return 1; }
    [ $SECONDS -lt $deadline ] || { fail "$1 does not answer on :$3"; return 1; }
    sleep 0.05
  done
}

UP_PORT=$(free_port)
start_nginx_upstream "$WORK/up" "$UP_PORT" "$BODY"
wait_http upstream "$PID" "$UP_PORT" || exit 1

start_redis

RULES='{"id": "q", "resource": "/", "kind": "qps", "threshold": 1000000000},
  {"id": "cl", "resource": "/", "kind": "cluster", "mode": "async", "threshold": 1000000000,
   "share": 100000, "fallback": "allow"},
  {"id": "c", "resource": "/", "match": "prefix", "kind": "concurrency", "threshold": 1000000},
  {"id": "r", "resource": "/", "kind": "qps", "threshold": 0,
   "when": {"all": [{"caller_app": "batch"}, {"header": "x-tier", "exact": "free"}]}},
  {"id": "b", "resource": "/", "kind": "breaker", "strategy": "error_ratio", "threshold": 0.5}'
for i in $(seq 0 14); do
  RULES+=", {\"id\": \"other$i\", \"resource\": \"/other/$i\", \"kind\": \"qps\", \"threshold\": 10}"
done

declare -A PORT TPID
for target in plain flow; do
  filters='[]'
  rules='[]'
  cluster=''
  if [ "$target" = flow ]; then
    filters='[{"name": "flow_control"}]'
    rules="[$RULES]"
    cluster="\"cluster\": {\"redis\": {\"redisHost\": \"127.0.0.1:$REDIS_PORT\"}},"
  fi
  cat >"$WORK/$target.json" <<EOF
{"app": {"id": "bench"}, "grpc": {"address": "127.0.0.1:0"}, "actuator": {"address": "127.0.0.1:0"},
 "dapr": {"http_address": "127.0.0.1:0"}, "log": {"level": "warn"}, "components": {},
 "flow_control": {$cluster "rules": $rules},
 "mesh": {"workers": $WORKERS,
   "listeners": [{"name": "http", "address": "127.0.0.1:0", "protocol": "http1", "router": "r"}],
   "routers": [{"name": "r", "filters": $filters,
                "routes": [{"match": {}, "cluster": "up", "timeout_ms": 3000}]}],
   "clusters": [{"name": "up", "protocol": "http1",
                 "hosts": [{"address": "127.0.0.1:$UP_PORT", "weight": 1}]}]}}
EOF
  cp "$WORK/$target.json" "$OUT/flow-$target.json"
  start_bg "$target" "$BIN/ottava" --config "$WORK/$target.json" --ready-file "$WORK/$target.ready"
  TPID[$target]=$PID
  for _ in $(seq $((READY_TIMEOUT_S * 20))); do
    [ -s "$WORK/$target.ready" ] && break
    sleep 0.05
  done
  listener=$(tr -d '\n ' <"$WORK/$target.ready" 2>/dev/null | sed -n 's/.*"listeners":{[^}]*"http":"\([^"]*\)".*/\1/p')
  [ -n "$listener" ] || { fail "$target wrote no ready file"; exit 1; }
  PORT[$target]=${listener##*:}
  wait_http "$target" "$PID" "${PORT[$target]}" || exit 1
done

cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT %d %d %d %d\n', summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50)))
end
EOF

declare -A TPUT P50 CPU
for t in plain flow; do
  TPUT[$t]="" P50[$t]="" CPU[$t]=""
  wrk -t2 -c64 -d1s "http://127.0.0.1:${PORT[$t]}/" >/dev/null 2>&1 || true
done
# run TARGET THREADS CONNS: prints "throughput p50_us cpu_us_per_request" (the proxy's own
# utime + stime over the run), fails on errors.
run() {
  local raw=$OUT/flow-runs/$1-$2-$3-$RANDOM.txt before after
  before=$(cpu_ticks "${TPID[$1]}")
  wrk -t"$2" -c"$3" -d"${DURATION}s" --timeout 5s -s "$WORK/report.lua" \
    "http://127.0.0.1:${PORT[$1]}/" >"$raw" 2>&1 || { fail "wrk against $1 failed"; return 1; }
  after=$(cpu_ticks "${TPID[$1]}")
  read -r _ requests duration errors p50 < <(grep '^RESULT' "$raw")
  [ "${errors:-1}" = 0 ] || fail "$1: $errors errors (non-2xx or socket) in $raw"
  awk -v n="$requests" -v d="$duration" -v p="$p50" -v t=$((after - before)) -v hz="$CLK_TCK" \
    'BEGIN { printf "%.1f %d %.3f", n * 1e6 / d, p, t * 1e6 / hz / n }'
}
echo "== flow: filter cost, throughput wrk -t2 -c64 and p50 wrk -t1 -c1, ${DURATION}s x $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for t in plain flow; do
    read -r tput _ cpu < <(run "$t" 2 64)
    read -r _ p50 _ < <(run "$t" 1 1)
    TPUT[$t]+="$tput " P50[$t]+="$p50 " CPU[$t]+="$cpu "
    printf '   %-6s round %s: %10.1f req/s  p50 %6d us  cpu %6.2f us/req\n' "$t" "$round" "$tput" "$p50" "$cpu"
  done
done

# Per-round ratios (each round's pair ran back to back), then their median.
read -ra tp <<<"${TPUT[plain]}"
read -ra tf <<<"${TPUT[flow]}"
read -ra pp <<<"${P50[plain]}"
read -ra pf <<<"${P50[flow]}"
read -ra cp <<<"${CPU[plain]}"
read -ra cf <<<"${CPU[flow]}"
ratios=() added=() cpu_ratios=()
for i in "${!tp[@]}"; do
  ratios+=("$(awk -v a="${tf[$i]}" -v b="${tp[$i]}" 'BEGIN { printf "%.4f", a / b }')")
  added+=("$((pf[i] - pp[i]))")
  cpu_ratios+=("$(awk -v a="${cf[$i]}" -v b="${cp[$i]}" 'BEGIN { printf "%.4f", a / b }')")
done
RATIO=$(median "${ratios[@]}")
ADDED=$(median "${added[@]}")
CPU_RATIO=$(median "${cpu_ratios[@]}")
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "PASS" : "FAIL" }'; }
{
  echo "## Flow control (issue 9)"
  echo
  echo "Microbenchmark (bench_flow_control, ns per Check+Exit; threads share one controller):"
  echo
  echo '```'
  grep -E '^(BM_|Benchmark|-)' "$OUT/flow-micro.txt"
  echo '```'
  echo
  echo "Filter cost, $WORKERS workers, nginx upstream, medians of $ROUNDS alternating rounds:"
  echo
  echo "| | plain | flow_control, 20 rules | target |"
  echo "|---|---|---|---|"
  echo "| throughput wrk -t2 -c64 (req/s) | $(median ${TPUT[plain]}) | $(median ${TPUT[flow]}) | ratio $RATIO (per-round median) ≥ 0.97: $(verdict "$RATIO" 0.97 '>=') |"
  echo "| p50 wrk -t1 -c1 (µs, wrk's integer µs) | $(median ${P50[plain]}) | $(median ${P50[flow]}) | added $ADDED ≤ 2: $(verdict "$ADDED" 2 '<=') |"
  echo "| proxy CPU per request at -c64 (µs, utime+stime) | $(median ${CPU[plain]}) | $(median ${CPU[flow]}) | ratio $CPU_RATIO (per-round median), reported |"
} >"$OUT/flow-report.md"
cat "$OUT/flow-report.md"
exit $FAILED
