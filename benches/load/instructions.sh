#!/usr/bin/env bash
# Instructions weir executes per request, by route, counted with callgrind.
#
#   benches/load/instructions.sh                  # every route below, 5 s each
#   ROUTES="plain all" DURATION=10 benches/load/instructions.sh
#
# Timings on a shared machine move by several percent between rounds; instruction counts move
# by well under one, so this is the measure to compare two builds or two routes with (it does
# not see cache misses or the kernel: read it next to run.sh's CPU time per request). weir
# runs under valgrind's callgrind against an nginx origin; for each route the counters are
# zeroed, wrk (1 thread, 8 connections) runs for DURATION seconds, and the counters are
# dumped and divided by the requests wrk completed. Routes:
#   plain  a fixed http:// upstream, no filters
#   lb     lb://origin (one instance), no filters
#   cb     CircuitBreaker
#   retry  Retry=3
#   all    lb://origin with LoadBalancer, CircuitBreaker and Retry=3 (run.sh's resilient route)
#   openfaas  the default config's /function/{name} filters: CallId, ScaleFromZero and
#          FunctionMetrics (the origin also answers the provider's function status, so every
#          request takes ScaleFromZero's cached path; its 250 ms expiry renews it 4 times a
#          second, a few requests in thousands)
# The dumps stay in $OUT (default target/instructions) for callgrind_annotate. Traffic goes
# only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

ROUTES=${ROUTES:-"plain lb cb retry all openfaas"}
DURATION=${DURATION:-5}
OUT=${OUT:-$PWD/target/instructions}
ORIGIN_PORT=${ORIGIN_PORT:-18290}
WEIR_PORT=${WEIR_PORT:-18280}

install wrk wrk
install nginx nginx-light
install valgrind valgrind
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

weir_binary
rm -rf "$OUT"
mkdir -p "$OUT"

start_origin "$ORIGIN_PORT" "$PROVIDER_STATUS"

origin="http://127.0.0.1:$ORIGIN_PORT"
cat > "$work/routes.yaml" <<CONF
server:
  listen: 127.0.0.1:$WEIR_PORT
services:
  origin:
    instances: [ $origin ]
gateway:
  routes:
    - { id: all, uri: lb://origin, predicates: [ Path=/all/** ], filters: [ LoadBalancer=round-robin, CircuitBreaker=origin, Retry=3 ] }
    - { id: lb, uri: lb://origin, predicates: [ Path=/lb/** ] }
    - { id: cb, uri: $origin, predicates: [ Path=/cb/** ], filters: [ CircuitBreaker=cb ] }
    - { id: retry, uri: $origin, predicates: [ Path=/retry/** ], filters: [ Retry=3 ] }
    - { id: plain, uri: $origin, predicates: [ Path=/plain/** ] }
$(openfaas_route "$origin")
CONF
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" \
  "$WEIR" --config "$work/routes.yaml" 2>"$OUT/valgrind.log" &
weir_pid=$!
pids+=($weir_pid)
wait_for "$ORIGIN_PORT"
# weir starts slowly under valgrind: up to 60 s.
for _ in $(seq 1 12); do wait_for "$WEIR_PORT" 2>/dev/null && break; done
wait_for "$WEIR_PORT"

# Warm every route (connection pools, lazily built state) before counting.
for route in $ROUTES; do
  wrk -t1 -c8 -d2s "http://127.0.0.1:$WEIR_PORT/$route/x" >/dev/null
done

printf '%-6s %10s %20s\n' route requests "instructions/request"
for route in $ROUTES; do
  callgrind_control --zero "$weir_pid" >/dev/null 2>&1
  out=$(wrk -t1 -c8 -d"${DURATION}s" "http://127.0.0.1:$WEIR_PORT/$route/x")
  callgrind_control --dump="$route" "$weir_pid" >/dev/null 2>&1
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  dump=$(ls -t "$OUT"/callgrind.*.* | head -1)
  mv "$dump" "$OUT/$route.out"
  total=$(callgrind_annotate "$OUT/$route.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '%-6s %10s %20s\n' "$route" "$requests" "$((total / requests))"
done
echo "dumps: $OUT/<route>.out (callgrind_annotate --inclusive=yes $OUT/all.out)"
