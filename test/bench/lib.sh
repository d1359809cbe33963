# Shared by the bench scripts (sourced, not run). The caller sets WORK (a temp dir), OUT and
# BENCH_NAME first.
# Every process a script starts goes into PIDS; all are stopped, and WORK removed, on any exit.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Helpers for scripts that set BENCH_NAME (the log prefix, e.g. "mesh") before sourcing.

FAILED=0
fail() {
  echo "$BENCH_NAME.sh: $*" >&2
  FAILED=1
}

# start_bg NAME COMMAND...: starts COMMAND in the background with its output in
# $OUT/logs/$BENCH_NAME-NAME.log; sets PID.
start_bg() {
  local name=$1
  shift
  "$@" >"$OUT/logs/$BENCH_NAME-$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
}

# A port nothing listens on, from the kernel: bind port 0, read the port, close (perl-base is
# Essential on Debian). Another process could take it before our server binds it; the server then
# fails to start and says so.
free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'
}

# nginx writes its temp files and pid under the prefix; -e keeps it off /var/log/nginx.
nginx_common() {
  local dir=$1
  mkdir -p "$dir/tmp"
  cat <<EOF
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
EOF
}
nginx_http_common() {
  local dir=$1
  cat <<EOF
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
EOF
}

# start_nginx_upstream DIR PORT BODY: nginx (1 worker, keep-alive, no access log) in DIR answering
# every path with 200 and BODY on 127.0.0.1:PORT, started with start_bg as "upstream" (sets PID).
# The caller waits for it to answer.
start_nginx_upstream() {
  local dir=$1 port=$2 body=$3
  mkdir -p "$dir"
  {
    nginx_common "$dir"
    cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common "$dir")
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
EOF
  } >"$dir/nginx.conf"
  start_bg upstream "$(command -v nginx)" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

# start_redis: a redis-server without persistence on a free port, started with start_bg as
# "redis"; sets REDIS_PORT and returns once it answers PING (or after 5 s).
start_redis() {
  REDIS_PORT=$(free_port)
  start_bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK"
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done
}

json_str() {
  tr -d '\n' <"$1" | sed -n "s/.*\"$2\" *: *\"\([^\"]*\)\".*/\1/p"
}
json_num() {
  tr -d '\n' <"$1" | sed -n "s/.*\"$2\" *: *\([-0-9.eE+]*\).*/\1/p"
}
json_or_null() { if [ -n "$1" ]; then echo "$1"; else echo null; fi; }
# median NUMBER...: nothing when there are no numbers.
median() {
  printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 } END {
    if (n % 2) printf "%.6f", v[(n + 1) / 2]; else if (n) printf "%.6f", (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
fmt() { # fmt FORMAT VALUE: the value formatted, or "n/a" when empty
  if [ -z "$2" ]; then
    echo "n/a"
  else
    awk -v f="$1" -v v="$2" 'BEGIN { printf f, v }'
  fi
}
fmt_list() {
  local f=$1
  shift
  if [ $# -eq 0 ]; then
    echo none
    return
  fi
  printf '%s\n' "$@" | awk -v f="$f" '{ printf "%s" f, (NR > 1 ? ", " : ""), $1 }'
}

# cpu_ticks PID: utime + stime (clock ticks, CLK_TCK per second) of PID and its direct children
# (nginx's workers), summed over all their threads.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local pids total=0 p ticks
  pids="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')"
  for p in $pids; do
    # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    ticks=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
    total=$((total + ${ticks:-0}))
  done
  echo "$total"
}

# bench_config_head: the opening lines every bench's Ottava config shares: app id "bench", the
# gRPC, actuator and Dapr HTTP ports from the kernel, warnings only, no components. The caller
# appends its own keys and the closing brace.
bench_config_head() {
  cat <<EOF
{"app": {"id": "bench"},
 "grpc": {"address": "127.0.0.1:0"},
 "actuator": {"address": "127.0.0.1:0"},
 "dapr": {"http_address": "127.0.0.1:0"},
 "log": {"level": "warn"},
 "components": {},
EOF
}

# write_bolt_config FILE SERVER_PORT WORKERS [SERVICE]: Ottava's config for the Bolt benches: one
# bolt listener (port from the kernel), one route for SERVICE (com.example.Echo:1.0) to a one-host
# bolt cluster at SERVER_PORT.
write_bolt_config() {
  {
    bench_config_head
    cat <<EOF
 "mesh": {
   "workers": $3,
   "listeners": [{"name": "bolt", "address": "127.0.0.1:0", "protocol": "bolt", "router": "rb"}],
   "routers": [{"name": "rb", "routes": [
     {"match": {"service": "${4:-com.example.Echo:1.0}"}, "cluster": "echo", "timeout_ms": 3000}]}],
   "clusters": [{"name": "echo", "protocol": "bolt", "lb": "round_robin",
                 "hosts": [{"address": "127.0.0.1:$2"}]}]}}
EOF
  } >"$1"
}
