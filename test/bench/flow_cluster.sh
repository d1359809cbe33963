#!/usr/bin/env bash
# The cluster flow-control part of `make bench` (run.sh calls it), issue 9: how many Redis commands
# per second one sidecar sends for a cluster rule while it serves ~2.5k, ~5k and ~10k requests per
# second. One Ottava proxy (HTTP/1.1, nginx upstream) with a cluster rule on "/" of 2000 QPS
# (share 100, fallback allow) against a real redis-server; wrk paces the load with a per-request
# delay (c connections x 1000/delay_ms requests per second). For each rate the script resets
# Redis' command statistics, runs wrk and reads `INFO commandstats` (EVALSHA calls: one per
# reservation in async mode, one per request in sync mode).
# Expectation: async stays near threshold / share + 1 per window (~21/s) at every rate; sync grows
# with the rate (shown at the highest rate for contrast).
#
#   bash test/bench/flow_cluster.sh BUILD_DIR
#
# Knobs: FLOW_CLUSTER_DURATION (s per run, 5). Writes BUILD_DIR/bench/flow-cluster-report.md.
set -uo pipefail

BUILD_DIR=$(cd "${1:?usage: flow_cluster.sh BUILD_DIR}" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
DURATION=${FLOW_CLUSTER_DURATION:-5}
READY_TIMEOUT_S=15
BODY=$(printf 'ottava-bench-upstream-%078d' 0) # 100 bytes

for tool in nginx wrk redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "flow_cluster.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$BIN/ottava" ] || { echo "flow_cluster.sh: $BIN/ottava is missing; build first" >&2; exit 1; }
mkdir -p "$OUT/logs"
WORK=$(mktemp -d /tmp/ottava-flow-cluster-bench.XXXXXX)
BENCH_NAME=flow_cluster
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wait_http() { # NAME PID PORT
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ "$(curl -s --max-time 1 "http://127.0.0.1:$3/" 2>/dev/null)" != "$BODY" ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$3/" 2>/dev/null)" != 429 ]; do
    kill -0 "$2" 2>/dev/null || { fail "$1 exited at startup"; return 1; }
    [ $SECONDS -lt $deadline ] || { fail "$1 does not answer on :$3"; return 1; }
    sleep 0.05
  done
}

start_redis

UP_PORT=$(free_port)
start_nginx_upstream "$WORK/up" "$UP_PORT" "$BODY"
wait_http upstream "$PID" "$UP_PORT" || exit 1

declare -A PORT
for mode in async sync; do
  cat >"$WORK/$mode.json" <<EOF
{"app": {"id": "bench"}, "grpc": {"address": "127.0.0.1:0"}, "actuator": {"address": "127.0.0.1:0"},
 "dapr": {"http_address": "127.0.0.1:0"}, "log": {"level": "warn"}, "components": {},
 "flow_control": {"cluster": {"redis": {"redisHost": "127.0.0.1:$REDIS_PORT"}, "key_prefix": "$mode:"},
   "rules": [{"id": "cl", "resource": "/", "kind": "cluster", "mode": "$mode", "threshold": 2000,
              "share": 100, "fallback": "allow"}]},
 "mesh": {"workers": 2,
   "listeners": [{"name": "http", "address": "127.0.0.1:0", "protocol": "http1", "router": "r"}],
   "routers": [{"name": "r", "filters": [{"name": "flow_control"}],
                "routes": [{"match": {}, "cluster": "up", "timeout_ms": 3000}]}],
   "clusters": [{"name": "up", "protocol": "http1",
                 "hosts": [{"address": "127.0.0.1:$UP_PORT", "weight": 1}]}]}}
EOF
  cp "$WORK/$mode.json" "$OUT/flow-cluster-$mode.json"
  start_bg "$mode" "$BIN/ottava" --config "$WORK/$mode.json" --ready-file "$WORK/$mode.ready"
  for _ in $(seq $((READY_TIMEOUT_S * 20))); do
    [ -s "$WORK/$mode.ready" ] && break
    sleep 0.05
  done
  listener=$(tr -d '\n ' <"$WORK/$mode.ready" 2>/dev/null | sed -n 's/.*"listeners":{[^}]*"http":"\([^"]*\)".*/\1/p')
  [ -n "$listener" ] || { fail "$mode wrote no ready file"; exit 1; }
  PORT[$mode]=${listener##*:}
  wait_http "$mode" "$PID" "${PORT[$mode]}" || exit 1
done

# Paces each connection: one request, then PACE_MS ms (wrk's delay() hook).
cat >"$WORK/pace.lua" <<'EOF'
local pause = tonumber(os.getenv("PACE_MS") or "2")
function delay() return pause end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT %d %d %d\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout))
end
EOF

passes() { # MODE: the rule's pass counter
  curl -s "http://$(json_str "$WORK/$1.ready" actuator)/metrics" |
    sed -n 's/^ottava_flow_control_passes_total{[^}]*rule="cl"[^}]*} \([0-9]*\).*/\1/p'
}

# measure MODE CONNS: prints "requests_per_s admitted_per_s evalsha_per_s".
measure() {
  local raw=$OUT/logs/flow_cluster-$1-$2.txt
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  local before after calls
  before=$(passes "$1")
  PACE_MS=2 wrk -t2 -c"$2" -d"${DURATION}s" --timeout 5s -s "$WORK/pace.lua" \
    "http://127.0.0.1:${PORT[$1]}/" >"$raw" 2>&1 || { fail "wrk against $1 failed"; return 1; }
  calls=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
  after=$(passes "$1")
  read -r _ requests duration errors < <(grep '^RESULT' "$raw")
  [ "${errors:-1}" = 0 ] || fail "$1: $errors socket errors in $raw"
  awk -v n="$requests" -v d="$duration" -v p="$((${after:-0} - ${before:-0}))" \
    -v c="${calls:-0}" 'BEGIN { printf "%.0f %.0f %.1f", n * 1e6 / d, p * 1e6 / d, c * 1e6 / d }'
}

echo "== flow_cluster: Redis commands per second, ${DURATION}s per rate"
ROWS=""
for conns in 5 12 24; do
  read -r rps admitted cmds < <(measure async "$conns")
  printf '   async c=%-3s %8s req/s, %6s admitted/s, %6s EVALSHA/s\n' "$conns" "$rps" "$admitted" "$cmds"
  ROWS+="| async | $conns | $rps | $admitted | $cmds |"$'\n'
done
read -r rps admitted cmds < <(measure sync 24)
printf '   sync  c=%-3s %8s req/s, %6s admitted/s, %6s EVALSHA/s\n' 24 "$rps" "$admitted" "$cmds"
ROWS+="| sync | 24 | $rps | $admitted | $cmds |"$'\n'
{
  echo "## Cluster flow control: Redis commands per sidecar"
  echo
  echo "One sidecar, 2 workers, cluster rule of 2000 QPS (share 100) on \`/\`, wrk paced at 2 ms per"
  echo "request per connection, ${DURATION} s per row; EVALSHA calls from \`INFO commandstats\`."
  echo
  echo "| mode | connections | requests/s | admitted/s | Redis commands/s |"
  echo "|---|---|---|---|---|"
  printf '%s' "$ROWS"
} >"$OUT/flow-cluster-report.md"
cat "$OUT/flow-cluster-report.md"
exit $FAILED
