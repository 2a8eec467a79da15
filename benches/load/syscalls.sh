#!/usr/bin/env bash
# System calls and context switches per request, weir against nginx as a proxy, counted with
# perf's tracepoints during a wrk round of each (every process on CPU 0, as vs-nginx.sh).
#
#   benches/load/syscalls.sh
#   DURATION=10 benches/load/syscalls.sh
#
# The requests in the counted window are estimated from wrk's requests/s over its round
# (which runs a second longer on each side of the window), the same way for both proxies.
# Needs perf (linux-perf) and permission to trace (root). Traffic goes only to 127.0.0.1;
# every round is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

DURATION=${DURATION:-5}
ORIGIN_PORT=${ORIGIN_PORT:-18490}
WEIR_PORT=${WEIR_PORT:-18480}
NGINX_PORT=${NGINX_PORT:-18481}
PIN="taskset -c 0"

install wrk wrk
install nginx nginx-light
install perf linux-perf
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
weir_binary

start_origin "$ORIGIN_PORT"
start_weir_proxy "$WEIR_PORT" "$((WEIR_PORT + 1000))" "$ORIGIN_PORT"
start_nginx_proxy "$NGINX_PORT" "$ORIGIN_PORT"
wait_for "$WEIR_PORT"
wait_for "$NGINX_PORT"
nginx_worker() { pgrep -P "$(cat "$work/proxy/nginx.pid")" | head -1; }

# One round against PORT, with perf on PID for DURATION seconds in the middle of it.
count() {
  local pid=$1 port=$2 wrk_pid requests
  $PIN wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null
  $PIN wrk -t1 -c64 -d"$((DURATION + 2))s" "http://127.0.0.1:$port/" >"$work/wrk.txt" &
  wrk_pid=$!
  sleep 1
  perf stat -x, -e 'raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,context-switches' \
    -p "$pid" -- sleep "$DURATION" 2>"$work/perf.txt" >/dev/null
  wait "$wrk_pid"
  requests=$(awk '/Requests\/sec/ {print $2 * '"$DURATION"'}' "$work/wrk.txt")
  awk -F, -v n="$requests" '{ split($3, e, ":"); name = (e[2] != "" ? e[2] : $3); sub(/^sys_enter_?/, "", name); if (name == "") name = "all"; printf " %s %.2f", name, $1 / n }' "$work/perf.txt"
  echo
}

echo "per request, every process on CPU 0, ${DURATION}s counted per proxy:"
printf 'weir: '
count "$weir_pid" "$WEIR_PORT"
printf 'nginx:'
count "$(nginx_worker)" "$NGINX_PORT"
