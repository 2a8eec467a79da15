#!/usr/bin/env bash
# weir against nginx terminating TLS, on loopback, every process pinned to one CPU (the layout
# of vs-nginx.sh; read its header for why).
#
#   benches/load/tls.sh                      # 3 interleaved rounds of 5 s per proxy and mode
#   ROUNDS=5 DURATION=10s benches/load/tls.sh
#   WEIR=target/pgo/weir benches/load/tls.sh  # a given weir binary, not built here
#
# Both proxies present the same certificate (tests/e2e/certs/localhost-1, ECDSA P-256) with
# their default TLS settings: weir (rustls, ring) and nginx (OpenSSL, `ssl_protocols TLSv1.2
# TLSv1.3`, its default session tickets) in front of the same nginx origin over plain HTTP.
# wrk (OpenSSL) negotiates TLS 1.3 with both. Two modes:
#   keep-alive   64 connections reused: the cost of TLS records on small requests;
#   handshake    `Connection: close` on every request: a TCP connection and a TLS handshake
#                (full, or resumed if wrk resumes) per request.
# Printed: requests/s, p99, and the proxy's CPU time per request (from /proc), with ratios.
# Traffic goes only to 127.0.0.1; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
CPU=${CPU:-0}
ORIGIN_PORT=${ORIGIN_PORT:-18490}
NGINX_PORT=${NGINX_PORT:-18491}
WEIR_PORT=${WEIR_PORT:-18492}
ADMIN_PORT=${ADMIN_PORT:-19492}

install wrk wrk
install nginx nginx-light
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

weir_binary
PIN="taskset -c $CPU"
CERT=$PWD/tests/e2e/certs/localhost-1.crt
KEY=$PWD/tests/e2e/certs/localhost-1.key

cat > "$work/routes.yaml" <<CONF
server:
  listen: 127.0.0.1:$WEIR_PORT
  ssl:
    certificate: $CERT
    certificate-private-key: $KEY
admin:
  listen: 127.0.0.1:$ADMIN_PORT
gateway:
  routes:
    - id: origin
      uri: http://127.0.0.1:$ORIGIN_PORT
CONF

start_origin "$ORIGIN_PORT"
start_nginx_proxy "$NGINX_PORT" "$ORIGIN_PORT" ssl \
  "ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.2 TLSv1.3;"
RUST_LOG=warn $PIN "$WEIR" --config "$work/routes.yaml" &
weir_pid=$!
pids+=($weir_pid)
for port in "$ORIGIN_PORT" "$NGINX_PORT" "$WEIR_PORT"; do wait_for "$port"; done
nginx_worker=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" | head -1)

echo "warming up" >&2
$PIN wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:$WEIR_PORT/" >/dev/null
$PIN wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:$NGINX_PORT/" >/dev/null

summary=()
for mode in keep-alive handshake; do
  args=()
  [ "$mode" = handshake ] && args=(-H "Connection: close")
  declare -a w_rps=() w_p99=() w_cpu=() n_rps=() n_p99=() n_cpu=()
  printf '%-10s %-6s %-6s %12s %10s %12s  %s\n' mode round proxy "requests/s" p99 "cpu us/req" errors
  for i in $(seq 1 "$ROUNDS"); do
    read -r rps _ p99 cpu err _ _ < <(wrk_round "$weir_pid" "https://127.0.0.1:$WEIR_PORT/" "${args[@]}")
    printf '%-10s %-6s %-6s %12s %10s %12s  %s\n' "$mode" "$i" weir "$rps" "$p99" "$cpu" "$err"
    w_rps+=("$rps"); w_p99+=("$(to_us "$p99")"); w_cpu+=("$cpu")
    read -r rps _ p99 cpu err _ _ < <(wrk_round "$nginx_worker" "https://127.0.0.1:$NGINX_PORT/" "${args[@]}")
    printf '%-10s %-6s %-6s %12s %10s %12s  %s\n' "$mode" "$i" nginx "$rps" "$p99" "$cpu" "$err"
    n_rps+=("$rps"); n_p99+=("$(to_us "$p99")"); n_cpu+=("$cpu")
  done
  summary+=("$(awk -v m="$mode" -v wr="$(median "${w_rps[@]}")" -v nr="$(median "${n_rps[@]}")" \
    -v wc="$(median "${w_cpu[@]}")" -v nc="$(median "${n_cpu[@]}")" \
    -v w9="$(median "${w_p99[@]}")" -v n9="$(median "${n_p99[@]}")" 'BEGIN {
      printf "%-10s %10.0f %10.0f %6.2f   %8.2f %8.2f %6.2f   %8.0f %8.0f %6.2f", m, wr, nr, wr / nr, wc, nc, wc / nc, w9, n9, w9 / n9 }')")
done

echo
echo "machine: $(nproc) cores, $(uname -r); all processes on CPU $CPU; $ROUNDS x $DURATION per proxy and mode, interleaved; medians"
printf '%-10s %10s %10s %6s   %8s %8s %6s   %8s %8s %6s\n' mode "weir rps" "nginx rps" ratio "weir us" "nginx us" ratio "weir p99" "nginx p99" ratio
printf '%s\n' "${summary[@]}"
echo "(us: the proxy's CPU time per request; p99 in microseconds)"
