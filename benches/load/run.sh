#!/usr/bin/env bash
# Load test on loopback: wrk against an origin directly, then through weir.
#
#   benches/load/run.sh            # defaults: 64 connections, 10 s per round, all on CPU 0
#   CONNS=1 DURATION=5s benches/load/run.sh
#
# The origin is nginx (one worker, access log off) answering a 6-byte body, so the
# difference between the two rows is weir's cost. Prints requests/s, p50 and p99 for each,
# and weir's peak RSS. A third round runs through weir while its config file is rewritten
# every 100 ms: its errors column must say none. Then interleaved pairs of rounds compare a
# plain route with an lb:// route behind LoadBalancer, CircuitBreaker and Retry, by
# requests/s and by weir's own CPU time per request (from /proc/PID/stat).
#
# Every process (origin, weir, wrk -t1) is pinned to one CPU, as in vs-nginx.sh: on a shared
# 2-core machine that keeps the spread between rounds at a few percent, where spreading them
# over both cores gives 20-40%. Traffic goes only to 127.0.0.1; every wrk run is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

CONNS=${CONNS:-64}
DURATION=${DURATION:-10s}
PAIRS=${PAIRS:-7}
CPU=${CPU:-0}
PIN="taskset -c $CPU"
ORIGIN_PORT=${ORIGIN_PORT:-18090}
WEIR_PORT=${WEIR_PORT:-18080}
ADMIN_PORT=${ADMIN_PORT:-19901}

install wrk wrk
install nginx nginx-light
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

weir_binary


start_origin "$ORIGIN_PORT"

cat > "$work/routes.yaml" <<CONF
server:
  listen: 127.0.0.1:$WEIR_PORT
admin:
  listen: 127.0.0.1:$ADMIN_PORT
services:
  origin:
    instances:
      - http://127.0.0.1:$ORIGIN_PORT
gateway:
  routes:
    - id: resilient
      uri: lb://origin
      predicates:
        - Path=/resilient/**
      filters:
        - LoadBalancer=round-robin
        - CircuitBreaker=origin
        - Retry=3
    - id: plain
      uri: http://127.0.0.1:$ORIGIN_PORT
      predicates:
        - Path=/plain/**
    - id: origin
      uri: http://127.0.0.1:$ORIGIN_PORT
      predicates:
        - Path=/**
      filters:
        - AddResponseHeader=X-Config-Version, 0
reload:
  debounce: 20ms
CONF
RUST_LOG=warn $PIN "$WEIR" --config "$work/routes.yaml" &
weir_pid=$!
pids+=($weir_pid)

wait_for "$ORIGIN_PORT"
wait_for "$WEIR_PORT"

# round PORT [PATH]: requests/s p50 p99 weir-cpu-us-per-request errors ... (see wrk_round).
round() {
  wrk_round "$weir_pid" "http://127.0.0.1:$1${2:-/}"
}

# Warm both paths (connection pools, page cache) before measuring.
$PIN wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$WEIR_PORT/plain/x" >/dev/null
$PIN wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$WEIR_PORT/resilient/x" >/dev/null

read -r d_rps d_p50 d_p99 _ d_err _ < <(round "$ORIGIN_PORT")
read -r w_rps w_p50 w_p99 _ w_err _ < <(round "$WEIR_PORT")

# The same round while the config file is rewritten every 100 ms, alternating between two
# valid configs: hot reload must not fail a single request.
reload_loop() {
  local i=0
  while [ -e "$work/reloading" ]; do
    i=$((i + 1))
    sed "s/X-Config-Version, [0-9]*/X-Config-Version, $i/" "$work/routes.yaml" > "$work/routes.yaml.tmp"
    mv "$work/routes.yaml.tmp" "$work/routes.yaml"
    sleep 0.1
  done
  echo "$i" > "$work/reloads"
}
touch "$work/reloading"
reload_loop &
reload_pid=$!
read -r r_rps r_p50 r_p99 _ r_err _ < <(round "$WEIR_PORT")
rm -f "$work/reloading"
wait "$reload_pid" 2>/dev/null || true
reloads=$(cat "$work/reloads" 2>/dev/null || echo 0)

# Resilience overhead: a plain route (no filters) against an lb:// route to the same origin
# with LoadBalancer, CircuitBreaker and Retry, in interleaved pairs of rounds; the medians
# are compared.
plain=() resilient=() plain_cpu=() resilient_cpu=()
for _ in $(seq 1 "$PAIRS"); do
  read -r rps _ _ cpu err _ < <(round "$WEIR_PORT" /plain/x)
  plain+=("$rps") plain_cpu+=("$cpu")
  [ "$err" = none ] || echo "plain round errors: $err" >&2
  read -r rps _ _ cpu err _ < <(round "$WEIR_PORT" /resilient/x)
  resilient+=("$rps") resilient_cpu+=("$cpu")
  [ "$err" = none ] || echo "resilient round errors: $err" >&2
done
plain_median=$(median "${plain[@]}")
resilient_median=$(median "${resilient[@]}")
plain_cpu_median=$(median "${plain_cpu[@]}")
resilient_cpu_median=$(median "${resilient_cpu[@]}")
# weir's own count: the config version (1 at start, +1 per successful reload).
version=$(exec 3<>"/dev/tcp/127.0.0.1/$ADMIN_PORT" && printf 'GET /actuator/gateway/config HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n' >&3 && grep -o '"version":[0-9]*' <&3 | cut -d: -f2)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$weir_pid/status")

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "wrk --latency -t1 -c$CONNS -d$DURATION (origin: nginx, 1 worker); every process on CPU $CPU"
printf '%-8s %12s %10s %10s  %s\n' target "requests/s" p50 p99 errors
printf '%-8s %12s %10s %10s  %s\n' direct "$d_rps" "$d_p50" "$d_p99" "$d_err"
printf '%-8s %12s %10s %10s  %s\n' weir "$w_rps" "$w_p50" "$w_p99" "$w_err"
printf '%-8s %12s %10s %10s  %s\n' reload "$r_rps" "$r_p50" "$r_p99" "$r_err"
echo "reload row: weir while its config was rewritten $reloads times (every 100 ms); config version at the end: $version"
awk -v w="$w_rps" -v d="$d_rps" 'BEGIN { printf "weir/direct throughput: %.2f\n", w / d }'
echo "plain route, $PAIRS rounds (requests/s): ${plain[*]}"
echo "  weir CPU per request (us): ${plain_cpu[*]}"
echo "LoadBalancer + CircuitBreaker + Retry route, $PAIRS rounds (requests/s): ${resilient[*]}"
echo "  weir CPU per request (us): ${resilient_cpu[*]}"
awk -v p="$plain_median" -v r="$resilient_median" 'BEGIN { printf "resilience overhead (median vs median): %.1f%% of throughput\n", (p - r) * 100 / p }'
awk -v p="$plain_cpu_median" -v r="$resilient_cpu_median" 'BEGIN { printf "resilience cost in weir CPU per request: %.2f us -> %.2f us (+%.1f%%)\n", p, r, (r - p) * 100 / p }'
echo "weir peak RSS: $((peak_kib / 1024)) MiB ($peak_kib KiB)"
