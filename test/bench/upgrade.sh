#!/usr/bin/env bash
# The hot-upgrade part of `make bench` (run.sh calls it; issue 10, "Measured").
#
#   bash test/bench/upgrade.sh BUILD_DIR
#
# Ottava with every component in memory and one HTTP/1.1 mesh listener in front of nginx (1
# worker, a fixed 100-byte body). bench_upgrade_load sends UPGRADE_BENCH_RATE requests/s (2,000)
# on UPGRADE_BENCH_CONNECTIONS keep-alive connections (20) for UPGRADE_BENCH_DURATION s (12),
# paced, latency measured from each request's scheduled time. Meanwhile `ottavactl upgrade`
# upgrades the sidecar UPGRADE_BENCH_UPGRADES times (3), one every 3 s from t = 2 s. Alongside,
# bench_load keeps UPGRADE_BENCH_GRPC_CONNECTIONS (2) gRPC connections busy with SaveState, one
# call in flight on each (closed loop), through all the upgrades. Reports:
#   - switch time 1, upgrade start → old process no longer accepting: from the command's start to
#     the moment the old process finished StopAccepting (the new process's "ready" time plus the
#     old process's stop_us, both in the report); target ≤ 200 ms;
#   - switch time 2, new process ready → old no longer accepting (stop_us);
#   - the API pause (new process: "ready" sent → its gRPC/Dapr HTTP accept, state import included);
#   - requests failed or refused during the whole run (target 0), HTTP and gRPC;
#   - p99 latency inside the switch windows (command start to its end + 200 ms) against outside
#     them; p99 added = inside − outside (target ≤ 5 ms).
# Writes BUILD_DIR/bench/upgrade-report.md and upgrade-results.json. Exit 1 when a request or an
# upgrade failed; a missed time target is reported, not failed.
set -uo pipefail

BUILD_DIR=$(cd "${1:?usage: upgrade.sh BUILD_DIR}" && pwd)
BIN=$BUILD_DIR/bin
OUT=$BUILD_DIR/bench
RATE=${UPGRADE_BENCH_RATE:-2000}
CONNECTIONS=${UPGRADE_BENCH_CONNECTIONS:-20}
DURATION=${UPGRADE_BENCH_DURATION:-12}
UPGRADES=${UPGRADE_BENCH_UPGRADES:-3}
GRPC_CONNECTIONS=${UPGRADE_BENCH_GRPC_CONNECTIONS:-2}
READY_TIMEOUT_S=15
BODY=$(printf 'ottava-bench-upstream-%078d' 0) # 100 bytes

for tool in ottava ottavactl bench_upgrade_load bench_load; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "upgrade.sh: $BIN/$tool is missing; build first (make build)" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx) || {
  echo "upgrade.sh: nginx is not installed (scripts/setup.sh installs it)" >&2
  exit 1
}

mkdir -p "$OUT/logs"
WORK=$(mktemp -d /tmp/ottava-upgrade-bench.XXXXXX)
BENCH_NAME=upgrade
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Generations started by the upgrades are not our children: stop whichever serves at the end.
stop_last_generation() {
  local pid
  pid=$(json_num "$WORK/ready.json" pid 2>/dev/null)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
}
trap 'stop_last_generation; cleanup' EXIT

# ---- upstream: nginx, 1 worker, the same fixed body on every path.
UP_PORT=$(free_port)
start_nginx_upstream "$WORK/upstream" "$UP_PORT" "$BODY"
for _ in $(seq 300); do
  [ "$(curl -s --max-time 1 "http://127.0.0.1:$UP_PORT/" 2>/dev/null)" = "$BODY" ] && break
  sleep 0.05
done

# ---- Ottava: in-memory components, one mesh listener.
cat >"$WORK/ottava.json" <<EOF
{
  "app": {"id": "bench"},
  "grpc": {"address": "127.0.0.1:0"},
  "actuator": {"address": "127.0.0.1:0"},
  "dapr": {"http_address": "127.0.0.1:0"},
  "log": {"level": "warn"},
  "upgrade": {"drain_seconds": 5, "timeout_seconds": 20},
  "components": {
    "state": {"state": {"type": "in-memory"}},
    "lock": {"lock": {"type": "in-memory"}},
    "sequencer": {"sequencer": {"type": "in-memory"}},
    "config_store": {"config": {"type": "in-memory"}}
  },
  "mesh": {
    "workers": 2,
    "listeners": [{"name": "web", "address": "127.0.0.1:0", "protocol": "http1", "router": "r"}],
    "routers": [{"name": "r", "routes": [{"match": {"service": "echo"}, "cluster": "up"}]}],
    "clusters": [{"name": "up", "hosts": [{"address": "127.0.0.1:$UP_PORT"}]}]
  }
}
EOF
cp "$WORK/ottava.json" "$OUT/upgrade-ottava.json"
"$BIN/ottava" --config "$WORK/ottava.json" --ready-file "$WORK/ready.json" \
  >"$OUT/logs/upgrade-ottava.log" 2>&1 &
PIDS+=("$!")
deadline=$((SECONDS + READY_TIMEOUT_S))
while [ ! -s "$WORK/ready.json" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
WEB=$(tr -d '\n ' <"$WORK/ready.json" | sed -n 's/.*"web":"\([^"]*\)".*/\1/p')
ACTUATOR=$(json_str "$WORK/ready.json" actuator)
if [ -z "$WEB" ] || [ -z "$ACTUATOR" ]; then
  echo "upgrade.sh: Ottava did not become ready: $(tail -5 "$OUT/logs/upgrade-ottava.log")" >&2
  exit 1
fi
# Some state to carry: 10,000 keys of 100 bytes.
for i in $(seq 0 99); do
  "$BIN/ottavactl" --address "$(json_str "$WORK/ready.json" grpc)" state tx \
    $(for j in $(seq 0 99); do printf 'upsert:k%d-%d=%s ' "$i" "$j" "${BODY}"; done) >/dev/null ||
    fail "seeding state failed"
done

echo "== $UPGRADES upgrades under $RATE req/s on $CONNECTIONS connections for $DURATION s"
"$BIN/bench_upgrade_load" --target "$WEB" --rate "$RATE" --connections "$CONNECTIONS" \
  --duration "$DURATION" --samples "$WORK/samples.txt" >"$OUT/upgrade-load.json" \
  2>"$OUT/logs/upgrade-load.err" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
"$BIN/bench_load" --target "$(json_str "$WORK/ready.json" grpc)" --method save \
  --connections "$GRPC_CONNECTIONS" --streams 1 --duration "$DURATION" --warmup 0 \
  --key grpc-bench >"$OUT/upgrade-grpc-load.json" 2>"$OUT/logs/upgrade-grpc-load.err" &
GRPC_LOAD_PID=$!
PIDS+=("$GRPC_LOAD_PID")
: >"$WORK/windows.txt"
UPGRADE_ERRORS=0
sleep 2
for n in $(seq "$UPGRADES"); do
  start_us=$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.0f", t * 1e6 }')
  if ! "$BIN/ottavactl" --json upgrade --actuator "$ACTUATOR" >"$WORK/upgrade-$n.json" \
    2>"$WORK/upgrade-$n.err"; then
    fail "upgrade $n failed: $(cat "$WORK/upgrade-$n.err")"
    UPGRADE_ERRORS=$((UPGRADE_ERRORS + 1))
  fi
  end_us=$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.0f", t * 1e6 }')
  ready_at=$(json_num "$WORK/upgrade-$n.json" ready_at_us)
  stop_us=$(json_num "$WORK/upgrade-$n.json" stop_us)
  pause_us=$(json_num "$WORK/upgrade-$n.json" api_pause_us)
  bytes=$(json_num "$WORK/upgrade-$n.json" state_bytes)
  echo "$start_us $end_us ${ready_at:-0} ${stop_us:-0} ${pause_us:-0} ${bytes:-0}" >>"$WORK/windows.txt"
  echo "   upgrade $n: $(cat "$WORK/upgrade-$n.json")"
  sleep 2
done
wait "$LOAD_PID" || fail "bench_upgrade_load failed: $(cat "$OUT/logs/upgrade-load.err")"
wait "$GRPC_LOAD_PID" || fail "bench_load (gRPC) failed: $(cat "$OUT/logs/upgrade-grpc-load.err")"
GRPC_LOAD=$OUT/upgrade-grpc-load.json
GRPC_OK=$(json_num "$GRPC_LOAD" all_requests)
GRPC_ERRORS=$(json_num "$GRPC_LOAD" errors)
GRPC_P99=$(json_num "$GRPC_LOAD" p99_us)
GRPC_MAX=$(json_num "$GRPC_LOAD" max_us)
[ "${GRPC_ERRORS:-1}" = 0 ] || fail "$GRPC_ERRORS gRPC calls failed: $(tr -d '\n' <"$GRPC_LOAD")"
cp "$WORK/windows.txt" "$OUT/upgrade-windows.txt"

LOAD=$OUT/upgrade-load.json
SENT=$(json_num "$LOAD" sent)
OK=$(json_num "$LOAD" ok)
FAILED_REQ=$(json_num "$LOAD" failed)
REFUSED=$(json_num "$LOAD" refused)
RECONNECTS=$(json_num "$LOAD" reconnects)
[ "${FAILED_REQ:-1}" = 0 ] && [ "${REFUSED:-1}" = 0 ] || fail "$FAILED_REQ failed, $REFUSED refused"

# Per-upgrade switch times, and p99 inside / outside the switch windows.
read -r SWITCH1 SWITCH2 PAUSE STATE_BYTES <<<"$(awk '{
    if ($3 > 0) { s1 = ($3 + $4 - $1) / 1000; a1 = a1 (n ? ", " : "") sprintf("%.1f", s1);
      if (s1 > m1) m1 = s1 }
    s2 = $4 / 1000; a2 = a2 (n ? ", " : "") sprintf("%.2f", s2); if (s2 > m2) m2 = s2
    p = $5 / 1000; a3 = a3 (n ? ", " : "") sprintf("%.1f", p)
    b = $6; n++ }
  END { printf "%s|%s|%s|%s\n", a1, a2, a3, b }' "$WORK/windows.txt" | tr ' ' '_')"
IFS='|' read -r SWITCH1 SWITCH2 PAUSE STATE_BYTES <<<"$SWITCH1"
SWITCH1=${SWITCH1//_/ }
SWITCH2=${SWITCH2//_/ }
PAUSE=${PAUSE//_/ }
MAX_SWITCH1=$(awk '$3 > 0 { s = ($3 + $4 - $1) / 1000; if (s > m) m = s } END { printf "%.1f", m }' \
  "$WORK/windows.txt")
# Split the successful requests' latencies by whether they were scheduled inside a window.
awk 'NR == FNR { from[NR] = $1; to[NR] = $2 + 200000; w = NR; next }
  $3 == 1 {
    inside = 0
    for (i = 1; i <= w; i++) if ($1 >= from[i] && $1 <= to[i]) inside = 1
    print $2 >(inside ? "'"$WORK"'/inside.txt" : "'"$WORK"'/outside.txt")
  }' "$WORK/windows.txt" "$WORK/samples.txt"
touch "$WORK/inside.txt" "$WORK/outside.txt"
p99_of() { # p99_of FILE: the 99th percentile of the numbers in FILE (0 when empty)
  sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0; exit }
    i = int(0.99 * NR) + 1; if (i > NR) i = NR; print v[i] }'
}
P99_IN=$(p99_of "$WORK/inside.txt")
P99_OUT=$(p99_of "$WORK/outside.txt")
N_IN=$(wc -l <"$WORK/inside.txt")
N_OUT=$(wc -l <"$WORK/outside.txt")
ADDED=$(awk -v a="$P99_IN" -v b="$P99_OUT" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
SWITCH_RESULT=$(awk -v m="$MAX_SWITCH1" 'BEGIN { print (m <= 200) ? "PASS" : "FAIL" }')
FAILED_RESULT=$([ "${FAILED_REQ:-1}" = 0 ] && [ "${REFUSED:-1}" = 0 ] && echo PASS || echo FAIL)
GRPC_RESULT=$([ "${GRPC_ERRORS:-1}" = 0 ] && echo PASS || echo FAIL)
ADDED_RESULT=$(awk -v a="$ADDED" 'BEGIN { print (a <= 5) ? "PASS" : "FAIL" }')

{
  echo "## Hot upgrade (test/bench/upgrade.sh)"
  echo
  echo "$UPGRADES upgrades (\`ottavactl upgrade\`) during $DURATION s of $RATE req/s HTTP/1.1 through a mesh"
  echo "listener ($CONNECTIONS keep-alive connections, paced, latency from the scheduled send time),"
  echo "in-memory components holding 10,000 keys of 100 B ($STATE_BYTES bytes of state per transfer)."
  echo
  echo "| Measure | Value | Target | Result |"
  echo "|---|---|---|---|"
  echo "| Switch: upgrade start → old no longer accepting (per upgrade) | $SWITCH1 ms | ≤ 200 ms | $SWITCH_RESULT |"
  echo "| Switch: new ready → old no longer accepting | $SWITCH2 ms | | |"
  echo "| API pause (ready → new accepts gRPC/Dapr HTTP, state transfer included) | $PAUSE ms | | |"
  echo "| Requests failed / refused (of $SENT) | $FAILED_REQ / $REFUSED | 0 | $FAILED_RESULT |"
  echo "| gRPC SaveState failed (of $GRPC_OK OK, $GRPC_CONNECTIONS connections, closed loop) | ${GRPC_ERRORS:-?} | 0 | $GRPC_RESULT |"
  echo "| gRPC SaveState p99 / max over the whole run | $(fmt '%.2f' "$(awk -v v="${GRPC_P99:-0}" 'BEGIN { print v / 1000 }')") / $(fmt '%.2f' "$(awk -v v="${GRPC_MAX:-0}" 'BEGIN { print v / 1000 }')") ms | | |"
  echo "| p99 inside switch windows ($N_IN requests) | $(fmt '%.2f' "$(awk -v v="$P99_IN" 'BEGIN { print v / 1000 }')") ms | | |"
  echo "| p99 outside ($N_OUT requests) | $(fmt '%.2f' "$(awk -v v="$P99_OUT" 'BEGIN { print v / 1000 }')") ms | | |"
  echo "| p99 added during a switch | $ADDED ms | ≤ 5 ms | $ADDED_RESULT |"
  echo
  echo "Reconnects after \`Connection: close\` (the old process draining): $RECONNECTS."
} >"$OUT/upgrade-report.md"
{
  echo "{\"rate\":$RATE,\"connections\":$CONNECTIONS,\"duration_s\":$DURATION,\"upgrades\":$UPGRADES,"
  echo "\"load\":$(cat "$LOAD"),\"max_switch_ms\":$MAX_SWITCH1,\"p99_inside_us\":$P99_IN,"
  echo "\"p99_outside_us\":$P99_OUT,\"p99_added_ms\":$ADDED,\"upgrade_errors\":$UPGRADE_ERRORS,"
  echo "\"grpc_load\":$(cat "$GRPC_LOAD")}"
} >"$OUT/upgrade-results.json"
cat "$OUT/upgrade-report.md"
exit $FAILED
