#!/usr/bin/env bash
# Async invocations under load, on loopback: for the embedded queue and for NATS JetStream,
#   - accept throughput: POST /async-function/echo answered 202 per second (wrk, bounded);
#   - completion rate: invocations finished (function called, callback posted) per second,
#     from the first accepted request until the worker has drained the queue.
#
#   benches/load/async.sh                 # 5 s of load per backend
#   DURATION=3s benches/load/async.sh
#
# nginx (one worker) plays both the provider (`/function/*` answers 200) and the callback
# receiver. nats-server runs with JetStream in a temporary directory. Traffic goes only to
# 127.0.0.1; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
PROVIDER_PORT=${PROVIDER_PORT:-18390}
WEIR_PORT=${WEIR_PORT:-18391}
ADMIN_PORT=${ADMIN_PORT:-19391}
NATS_PORT=${NATS_PORT:-14222}

install wrk wrk
install nginx nginx-light
install nats-server nats-server
export PATH="$PATH:/usr/sbin"

weir_binary


cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PROVIDER_PORT;
    location / { return 200 "done\n"; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$work/jetstream" >/dev/null 2>&1 &
pids+=($!)

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "hello"
wrk.headers["X-Callback-Url"] = "http://127.0.0.1:$PROVIDER_PORT/callback"
LUA

wait_for "$PROVIDER_PORT"
wait_for "$NATS_PORT"

metric() { # name: the value of an unlabelled metric, or the sum of a labelled one
  exec 3<>"/dev/tcp/127.0.0.1/$ADMIN_PORT"
  printf 'GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n' >&3
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }' <&3
  exec 3<&-
}

run() { # backend
  cat > "$work/routes.yaml" <<CONF
server: { listen: "127.0.0.1:$WEIR_PORT" }
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
async:
  queue: $1
  capacity: 2000000
  provider: http://127.0.0.1:$PROVIDER_PORT/
  nats: { url: "nats://127.0.0.1:$NATS_PORT", stream: bench-$RANDOM, consumer: bench }
  worker: { max-inflight: 64 }
gateway:
  routes:
    - id: async-function
      uri: "queue:"
      predicates: ["Path=/async-function/{name},/async-function/{name}/**", "Method=POST"]
CONF
  RUST_LOG=warn "$WEIR" --config "$work/routes.yaml" &
  local weir=$!
  wait_for "$WEIR_PORT"
  sleep 0.5 # the queue opens in the background (the NATS stream is created)
  local start out rps errors queued completed
  start=$(date +%s.%N)
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/post.lua" "http://127.0.0.1:$WEIR_PORT/async-function/echo")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  queued=$(metric weir_async_queued_total)
  # Wait (bounded: 120 s) until the worker has finished everything that was accepted.
  for _ in $(seq 1 1200); do
    completed=$(metric weir_async_completed_total)
    [ "$completed" -ge "$queued" ] && break
    sleep 0.1
  done
  local end
  end=$(date +%s.%N)
  printf '%-9s %12s %10s %10s %14s  %s\n' "$1" "$rps" "$queued" "$completed" \
    "$(awk -v c="$completed" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", c / (e - s) }')" "${errors:-none}"
  kill "$weir"
  wait "$weir" 2>/dev/null || true
}

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk -t2 -c$CONNS -d$DURATION"
printf '%-9s %12s %10s %10s %14s  %s\n' backend "accepted/s" queued completed "completed/s" errors
run embedded
run nats
