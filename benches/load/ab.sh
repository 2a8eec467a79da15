#!/usr/bin/env bash
# Two weir builds against each other: the same route, interleaved rounds, every process on one
# CPU (as vs-nginx.sh). For a change whose effect is smaller than the drift between runs.
#
#   benches/load/ab.sh OLD_BINARY NEW_BINARY            # e.g. a build of main and this tree's
#   ROUNDS=9 DURATION=5s ROUTE=resilient benches/load/ab.sh A B
#
# ROUTE is `plain` (a fixed http:// upstream, no filters), `resilient` (lb:// with
# LoadBalancer, CircuitBreaker and Retry=3) or `openfaas` (the default config's
# /function/{name} filters: CallId, ScaleFromZero, FunctionMetrics; its route is written only
# for this ROUTE, so that older builds run the other two). Prints, per round and as medians,
# requests/s, p99 and each build's CPU time per request. Traffic goes only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

A=${1:?usage: benches/load/ab.sh OLD_BINARY NEW_BINARY}
B=${2:?usage: benches/load/ab.sh OLD_BINARY NEW_BINARY}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROUTE=${ROUTE:-plain}
CPU=${CPU:-0}
PIN="taskset -c $CPU"
ORIGIN_PORT=${ORIGIN_PORT:-18490}
A_PORT=${A_PORT:-18480}
B_PORT=${B_PORT:-18481}

install wrk wrk
install nginx nginx-light
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

start_origin "$ORIGIN_PORT" "$PROVIDER_STATUS"
for port in "$A_PORT" "$B_PORT"; do
  cat > "$work/routes-$port.yaml" <<CONF
server:
  listen: 127.0.0.1:$port
admin:
  listen: 127.0.0.1:$((port + 1000))
services:
  origin:
    instances: [ http://127.0.0.1:$ORIGIN_PORT ]
gateway:
  routes:
    - { id: resilient, uri: lb://origin, predicates: [ Path=/resilient/** ], filters: [ LoadBalancer=round-robin, CircuitBreaker=origin, Retry=3 ] }
    - { id: plain, uri: http://127.0.0.1:$ORIGIN_PORT, predicates: [ Path=/plain/** ] }
$([ "$ROUTE" = openfaas ] && openfaas_route "http://127.0.0.1:$ORIGIN_PORT")
CONF
done
RUST_LOG=warn $PIN "$A" --config "$work/routes-$A_PORT.yaml" &
a_pid=$!
pids+=($a_pid)
RUST_LOG=warn $PIN "$B" --config "$work/routes-$B_PORT.yaml" &
b_pid=$!
pids+=($b_pid)
wait_for "$ORIGIN_PORT"
wait_for "$A_PORT"
wait_for "$B_PORT"

# Warm both up (pools, caches) before counting.
DURATION=1s wrk_round "$a_pid" "http://127.0.0.1:$A_PORT/$ROUTE/x" >/dev/null
DURATION=1s wrk_round "$b_pid" "http://127.0.0.1:$B_PORT/$ROUTE/x" >/dev/null

printf '%-6s %-4s %12s %10s %12s %8s\n' round build requests/s p99 "cpu us/req" errors
a_rps=() a_cpu=() a_p99=() b_rps=() b_cpu=() b_p99=()
for round in $(seq 1 "$ROUNDS"); do
  for which in a b; do
    if [ $which = a ]; then pid=$a_pid port=$A_PORT; else pid=$b_pid port=$B_PORT; fi
    read -r rps _ p99 cpu errors _ < <(wrk_round "$pid" "http://127.0.0.1:$port/$ROUTE/x")
    printf '%-6s %-4s %12s %10s %12s %8s\n' "$round" "$which" "$rps" "$p99" "$cpu" "$errors"
    if [ $which = a ]; then a_rps+=("$rps") a_cpu+=("$cpu") a_p99+=("$(to_us "$p99")")
    else b_rps+=("$rps") b_cpu+=("$cpu") b_p99+=("$(to_us "$p99")"); fi
  done
done

echo
echo "a: $A"
echo "b: $B"
echo "route $ROUTE; $ROUNDS x $DURATION per build, interleaved; wrk -t1 -c$CONNS; medians; every process on CPU $CPU"
awk -v ar="$(median "${a_rps[@]}")" -v br="$(median "${b_rps[@]}")" \
  -v ac="$(median "${a_cpu[@]}")" -v bc="$(median "${b_cpu[@]}")" \
  -v ap="$(median "${a_p99[@]}")" -v bp="$(median "${b_p99[@]}")" 'BEGIN {
  printf "%-18s %12s %12s %8s\n", "", "a", "b", "b/a"
  printf "%-18s %12.0f %12.0f %8.3f\n", "requests/s", ar, br, br / ar
  printf "%-18s %12.2f %12.2f %8.3f\n", "cpu us/request", ac, bc, bc / ac
  printf "%-18s %12.0f %12.0f %8.3f\n", "p99 (us)", ap, bp, bp / ap
}'
