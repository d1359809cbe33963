#!/usr/bin/env bash
# The Redis part of `make bench` (run.sh calls it): Ottava on a real redis-server against
# redis-benchmark on the same data layout, plus a bare gRPC echo server for the gRPC floor, all
# measured in this one run.
#
#   bash test/bench/redis.sh BUILD_DIR
#
# Targets (issue "Redis components"):
#   - added p50 at one stream (Ottava p50 minus redis-benchmark p50) <= echo p50 + 20 us, for
#     GetState (vs HGETALL of the hash) and SaveState (vs EVALSHA of the very script Ottava runs,
#     captured with MONITOR);
#   - throughput at 8 connections x 16 streams >= 0.7x redis-benchmark with 128 clients.
# Reported without targets: the gRPC echo server's own 8 x 16 rate (the ceiling of any gRPC
# sidecar on this host), TryLock+Unlock pairs/s, WEAK GetNextId/s, Publish/s on Redis Streams,
# and redis-benchmark PING at one client (a Redis round trip) for comparison.
#
# Writes BUILD_DIR/bench/redis-report.md and prints it. Exit 1 on request errors or a tool
# failure; ratios missing their targets are reported, not failed.
set -uo pipefail

BUILD_DIR=${1:?usage: redis.sh BUILD_DIR}
BIN="$BUILD_DIR/bin"
OUT="$BUILD_DIR/bench"
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-1}
WARMUP=${BENCH_WARMUP:-0.5}
mkdir -p "$OUT"
WORK=$(mktemp -d)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v redis-server >/dev/null || { echo "redis.sh: redis-server not installed" >&2; exit 1; }

free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "redis.sh: no free port" >&2
  exit 1
}

json_num() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ERRORS=0

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --daemonize no \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do
  [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = "PONG" ] && break
  sleep 0.05
done

wait_ready() {  # wait_ready FILE -> prints the grpc address
  for _ in $(seq 400); do
    if [ -s "$1" ]; then
      sed -n 's/.*"grpc":"\([^"]*\)".*/\1/p' "$1"
      return
    fi
    sleep 0.025
  done
  echo "redis.sh: $1 never appeared" >&2
  exit 1
}

"$BIN/bench_echo_server" --value-bytes 64 --ready-file "$WORK/echo.ready" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
ECHO=$(wait_ready "$WORK/echo.ready")

MD="{\"redisHost\": \"127.0.0.1:$REDIS_PORT\"}"
cat >"$WORK/ottava.json" <<JSON
{
  "app": {"id": "bench"},
  "grpc": {"address": "127.0.0.1:0"},
  "actuator": {"address": "127.0.0.1:0"},
  "dapr": {"http_address": "127.0.0.1:0"},
  "log": {"level": "warn"},
  "components": {
    "state": {"state": {"type": "redis", "metadata": $MD}},
    "lock": {"lock": {"type": "redis", "metadata": $MD}},
    "sequencer": {"sequencer": {"type": "redis", "metadata": $MD}},
    "pub_subs": {"pubsub": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:$REDIS_PORT", "maxLenApprox": "100000"}}}
  }
}
JSON
"$BIN/ottava" --config "$WORK/ottava.json" --ready-file "$WORK/ottava.ready" >"$WORK/ottava.log" 2>&1 &
PIDS+=($!)
OTTAVA=$(wait_ready "$WORK/ottava.ready")

load() {  # load TARGET METHOD CONNECTIONS STREAMS -> one JSON line
  local line
  line=$("$BIN/bench_load" --target "$1" --method "$2" --connections "$3" --streams "$4" \
    --value-bytes 64 --duration "$DURATION" --warmup "$WARMUP" --key bench-key)
  local errors
  errors=$(json_num "$line" errors)
  if [ -z "$line" ] || [ "${errors:-1}" != "0" ] || [ "$(json_num "$line" bad_responses)" != "0" ]; then
    echo "redis.sh: errors in $2 against $1: $line" >&2
    ERRORS=1
  fi
  echo "$line"
}

rb() {  # rb CLIENTS REQUESTS COMMAND... -> "rps p50_us"
  redis-benchmark -p "$REDIS_PORT" -c "$1" -n "$2" --csv "${@:3}" | tail -1 |
    awk -F'","' '{ gsub(/"/, "", $2); gsub(/"/, "", $5); printf "%s %.1f\n", $2, $5 * 1000 }'
}

# Ottava stores state as Dapr does: hash "<app-id>||<key>" with fields data and version.
load "$OTTAVA" get 1 1 >/dev/null  # pre-saves bench-key through Ottava
HASH_KEY="bench||bench-key"
[ "$(redis-cli -p "$REDIS_PORT" HEXISTS "$HASH_KEY" data)" = "1" ] || {
  echo "redis.sh: $HASH_KEY is not a hash with a data field" >&2
  exit 1
}

# The exact EVALSHA Ottava sends for a SaveState, captured from MONITOR.
redis-cli -p "$REDIS_PORT" MONITOR >"$WORK/monitor.log" &
MONITOR_PID=$!
sleep 0.2
"$BIN/ottavactl" --address "$OTTAVA" state set bench-key "$(printf 'v%.0s' $(seq 64))" >/dev/null
sleep 0.2
kill "$MONITOR_PID" 2>/dev/null
wait "$MONITOR_PID" 2>/dev/null
EVAL_LINE=$(grep -m1 '"EVALSHA"' "$WORK/monitor.log")
mapfile -t EVAL_ARGS < <(grep -o '"[^"]*"' <<<"$EVAL_LINE" | sed 's/^"//; s/"$//')
if [ ${#EVAL_ARGS[@]} -lt 3 ]; then
  echo "redis.sh: no EVALSHA seen for SaveState; monitor said: $(head -3 "$WORK/monitor.log")" >&2
  exit 1
fi

declare -A S
for round in $(seq "$ROUNDS"); do
  S[echo_p50]+=" $(json_num "$(load "$ECHO" get 1 1)" p50_us)"
  S[get_p50]+=" $(json_num "$(load "$OTTAVA" get 1 1)" p50_us)"
  read -r _ p50 < <(rb 1 20000 HGETALL "$HASH_KEY")
  S[rb_get_p50]+=" $p50"
  S[save_p50]+=" $(json_num "$(load "$OTTAVA" save 1 1)" p50_us)"
  read -r _ p50 < <(rb 1 20000 "${EVAL_ARGS[@]}")
  S[rb_save_p50]+=" $p50"
  S[echo_tput]+=" $(json_num "$(load "$ECHO" get 8 16)" throughput)"
  S[get_tput]+=" $(json_num "$(load "$OTTAVA" get 8 16)" throughput)"
  read -r rps _ < <(rb 128 100000 HGETALL "$HASH_KEY")
  S[rb_get_tput]+=" $rps"
  S[save_tput]+=" $(json_num "$(load "$OTTAVA" save 8 16)" throughput)"
  read -r rps _ < <(rb 128 100000 "${EVAL_ARGS[@]}")
  S[rb_save_tput]+=" $rps"
done
LOCK=$(json_num "$(load "$OTTAVA" lock 8 16)" throughput)
NEXTID=$(json_num "$(load "$OTTAVA" nextid 8 16)" throughput)
NEXTID_1=$(json_num "$(load "$OTTAVA" nextid 1 1)" throughput)
PUBLISH=$(json_num "$(load "$OTTAVA" publish 8 16)" throughput)
read -r PING_RPS PING_P50 < <(rb 1 20000 PING)

m() { median ${S[$1]}; }
ECHO_P50=$(m echo_p50)
row_latency() {  # label ottava_p50 redis_p50
  awk -v label="$1" -v o="$2" -v r="$3" -v e="$ECHO_P50" 'BEGIN {
    added = o - r; limit = e + 20
    printf "| %s | %.1f us | %.1f us | %.1f us | %.1f us | <= %.1f us | %s |\n", label, o, r, added, e, limit, (added <= limit ? "PASS" : "FAIL") }'
}
row_tput() {  # label ottava redis
  awk -v label="$1" -v o="$2" -v r="$3" 'BEGIN {
    ratio = o / r
    printf "| %s | %.0f req/s | %.0f req/s | %.3f | >= 0.7 | %s |\n", label, o, r, ratio, (ratio >= 0.7 ? "PASS" : "FAIL") }'
}
{
  echo "## Redis components (redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), median of $ROUNDS rounds)"
  echo
  echo "| Single stream | Ottava p50 | redis-benchmark p50 | added by Ottava | gRPC echo p50 | target | result |"
  echo "|---|---|---|---|---|---|---|"
  row_latency "GetState vs HGETALL" "$(m get_p50)" "$(m rb_get_p50)"
  row_latency "SaveState vs EVALSHA (same script)" "$(m save_p50)" "$(m rb_save_p50)"
  echo
  echo "| 8 connections x 16 streams | Ottava | redis-benchmark -c 128 | ratio | target | result |"
  echo "|---|---|---|---|---|---|"
  row_tput "GetState vs HGETALL" "$(m get_tput)" "$(m rb_get_tput)"
  row_tput "SaveState vs EVALSHA" "$(m save_tput)" "$(m rb_save_tput)"
  echo
  echo "The gRPC ceiling of this host: the bare echo server (no work at all) serves $(m echo_tput | xargs printf '%.0f') req/s at"
  echo "8 x 16, $(awk -v e="$(m echo_tput)" -v r="$(m rb_get_tput)" 'BEGIN { printf "%.3f", e / r }')x redis-benchmark's HGETALL rate; Ottava's GetState reaches"
  echo "$(awk -v o="$(m get_tput)" -v e="$(m echo_tput)" 'BEGIN { printf "%.3f", o / e }')x of it and SaveState $(awk -v o="$(m save_tput)" -v e="$(m echo_tput)" 'BEGIN { printf "%.3f", o / e }')x. The load generator shares the two cores."
  echo
  echo "| Reported (8 x 16 unless noted) | rate |"
  echo "|---|---|"
  printf '| TryLock+Unlock pairs | %.0f pairs/s |\n' "$LOCK"
  printf '| GetNextId WEAK | %.0f ids/s (1 stream: %.0f ids/s) |\n' "$NEXTID" "$NEXTID_1"
  printf '| PublishEvent on Redis Streams (64 B) | %.0f events/s |\n' "$PUBLISH"
  printf '| redis-benchmark PING, 1 client (one Redis round trip) | %.0f req/s, p50 %.1f us |\n' "$PING_RPS" "$PING_P50"
  echo
  echo "Raw rounds: $(for k in "${!S[@]}"; do printf '%s=[%s] ' "$k" "${S[$k]# }"; done)"
} >"$OUT/redis-report.md"
cat "$OUT/redis-report.md"
exit "$ERRORS"
