#!/usr/bin/env bash
# What a proxy costs per request in vs-nginx.sh's layout, and how low that can go: weir, nginx,
# HAProxy as an HTTP proxy, and HAProxy as a TCP relay, on loopback, every process pinned to
# one CPU.
#
#   benches/load/floor.sh                    # 5 interleaved rounds of 10 s per proxy
#   ROUNDS=3 DURATION=5s benches/load/floor.sh
#   WEIR=target/pgo/weir benches/load/floor.sh      # a given weir binary, not built here
#
# The same origin, wrk and pinning as vs-nginx.sh, and the same nginx. HAProxy (Debian's, one
# thread, no logging, keep-alive on both sides) runs twice: in `mode http`, a second
# event-driven HTTP proxy to read weir against; and in `mode tcp`, where it parses nothing and
# copies bytes between each client connection and one upstream connection of its own. That
# relay makes the same socket reads and writes per request as an HTTP proxy and does nothing
# else: a reference point for what a proxy costs in this layout without any HTTP work.
#
# For each proxy: medians over the rounds of requests/s, p50, p99, CPU time per request (from
# /proc/PID/stat), its kernel part (user: the CPU median less the kernel median), and context
# switches per request; then each proxy's CPU time over nginx's. Load traffic goes only to
# 127.0.0.1; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
CPU=${CPU:-0}
ORIGIN_PORT=${ORIGIN_PORT:-18390}
NGINX_PORT=${NGINX_PORT:-18391}
WEIR_PORT=${WEIR_PORT:-18392}
HTTP_PORT=${HTTP_PORT:-18393}
TCP_PORT=${TCP_PORT:-18394}
ADMIN_PORT=${ADMIN_PORT:-19392}

install wrk wrk
install nginx nginx-light
install haproxy haproxy
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

weir_binary
PIN="taskset -c $CPU"

# start_haproxy MODE PORT: HAProxy in MODE (http or tcp) on 127.0.0.1:PORT in front of the
# origin, in the foreground with one thread; its pid goes to pids and to the variable named
# haproxy_MODE.
start_haproxy() {
  cat > "$work/haproxy-$1.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode $1
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend in
  bind 127.0.0.1:$2
  default_backend origin
backend origin
  $([ "$1" = http ] && echo "http-reuse always")
  server origin 127.0.0.1:$ORIGIN_PORT
CONF
  $PIN "$HAPROXY" -db -f "$work/haproxy-$1.cfg" &
  pids+=($!)
  printf -v "haproxy_$1" '%s' "$!"
}

start_origin "$ORIGIN_PORT"
start_nginx_proxy "$NGINX_PORT" "$ORIGIN_PORT"
start_weir_proxy "$WEIR_PORT" "$ADMIN_PORT" "$ORIGIN_PORT"
start_haproxy http "$HTTP_PORT"
start_haproxy tcp "$TCP_PORT"

for port in "$ORIGIN_PORT" "$NGINX_PORT" "$WEIR_PORT" "$HTTP_PORT" "$TCP_PORT"; do
  wait_for "$port"
done
nginx_worker=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" | head -1) ||
  { echo "the proxy nginx has no worker" >&2; exit 1; }

names=(weir nginx haproxy-http haproxy-tcp)
ports=("$WEIR_PORT" "$NGINX_PORT" "$HTTP_PORT" "$TCP_PORT")
procs=("$weir_pid" "$nginx_worker" "$haproxy_http" "$haproxy_tcp")

echo "warming up" >&2
for port in "${ports[@]}"; do
  $PIN wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null
done

declare -A rps p50 p99 cpu sys cs
printf '%-6s %-13s %12s %10s %10s %12s %10s %9s  %s\n' round proxy "requests/s" p50 p99 "cpu us/req" "kernel us" switches errors
for i in $(seq 1 "$ROUNDS"); do
  for k in "${!names[@]}"; do
    name=${names[$k]}
    read -r r m q c err s x < <(wrk_round "${procs[$k]}" "http://127.0.0.1:${ports[$k]}/")
    printf '%-6s %-13s %12s %10s %10s %12s %10s %9s  %s\n' "$i" "$name" "$r" "$m" "$q" "$c" "$s" "$x" "$err"
    rps[$name]+=" $r"; p50[$name]+=" $(to_us "$m")"; p99[$name]+=" $(to_us "$q")"; cpu[$name]+=" $c"
    sys[$name]+=" $s"; cs[$name]+=" $x"
  done
done

# shellcheck disable=SC2086 # the lists are space-separated numbers
nginx_cpu=$(median ${cpu[nginx]})
echo
echo "weir: $WEIR"
echo "haproxy: $("$HAPROXY" -v | head -1)"
echo "machine: $(nproc) cores, $(uname -r); all processes on CPU $CPU"
echo "rounds: $ROUNDS x $DURATION per proxy, interleaved; wrk -t1 -c$CONNS; medians below"
printf '%-13s %12s %10s %10s %12s %10s %10s %9s %10s\n' proxy "requests/s" "p50 us" "p99 us" "cpu us/req" "kernel" "user" switches "cpu/nginx"
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  awk -v r="$(median ${rps[$name]})" -v m="$(median ${p50[$name]})" -v q="$(median ${p99[$name]})" -v c="$(median ${cpu[$name]})" \
    -v s="$(median ${sys[$name]})" -v x="$(median ${cs[$name]})" -v n="$nginx_cpu" -v name="$name" \
    'BEGIN { printf "%-13s %12.0f %10.1f %10.1f %12.2f %10.2f %10.2f %9.2f %10.2f\n", name, r, m, q, c, s, c - s, x, c / n }'
done
echo "kernel: the median over the rounds; user: the cpu median less the kernel median"
