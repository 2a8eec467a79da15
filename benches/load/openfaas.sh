#!/usr/bin/env bash
# OpenFaaS load test on loopback: wrk against a minimal provider's /function/echo directly,
# then through weir's embedded default config (basic_auth off, scale_from_zero on, call ids,
# function metrics), in interleaved rounds so that all see the same machine. A third row runs
# weir with a plain route to the provider and no filters, to tell the OpenFaaS filters' cost
# from proxying's.
#
#   benches/load/openfaas.sh                  # 64 connections, 2 threads, 5 s, 3 pairs
#   CONNS=1 ROUNDS=5 benches/load/openfaas.sh
#
# The provider is examples/faas_provider.rs: every function has a ready replica and answers
# 6 bytes, so the difference between the rows is weir's cost, ScaleFromZero's cached look-up
# included. Traffic goes only to 127.0.0.1; every wrk run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
PROVIDER_PORT=${PROVIDER_PORT:-18181}
WEIR_PORT=${WEIR_PORT:-18180}
PLAIN_PORT=${PLAIN_PORT:-18182}

install wrk wrk
cargo build --release --quiet --bin weir --example faas_provider


target/release/examples/faas_provider "127.0.0.1:$PROVIDER_PORT" 2>/dev/null &
pids+=($!)
env -i PATH="$PATH" RUST_LOG=warn functions_provider_url="http://127.0.0.1:$PROVIDER_PORT/" \
  function_namespace=openfaas-fn WEIR_LISTEN="127.0.0.1:$WEIR_PORT" \
  WEIR_METRICS_LISTEN=127.0.0.1:0 WEIR_ADMIN_LISTEN=127.0.0.1:0 \
  target/release/weir 2>/dev/null &
pids+=($!)
cat > "$work/plain.yaml" <<CONF
server: {listen: 127.0.0.1:$PLAIN_PORT}
admin: {listen: 127.0.0.1:0}
gateway:
  routes:
    - id: function
      uri: http://127.0.0.1:$PROVIDER_PORT
      predicates: [Path=/function/**]
CONF
env -i PATH="$PATH" RUST_LOG=warn target/release/weir --config "$work/plain.yaml" 2>/dev/null &
pids+=($!)
for port in "$PROVIDER_PORT" "$WEIR_PORT" "$PLAIN_PORT"; do
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/function/echo" && break
    sleep 0.1
  done
done

# One wrk round: prints "requests/s p50 p99" (latencies in µs).
round() {
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1" | awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; return (v+0)*1000000 }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%d %d %d\n", rps, p50, p99 }'
}

printf "%-6s %-8s %12s %10s %10s\n" round target "requests/s" "p50 µs" "p99 µs"
for i in $(seq 1 "$ROUNDS"); do
  read -r drps dp50 dp99 < <(round "http://127.0.0.1:$PROVIDER_PORT/function/echo")
  read -r wrps wp50 wp99 < <(round "http://127.0.0.1:$WEIR_PORT/function/echo")
  read -r prps pp50 pp99 < <(round "http://127.0.0.1:$PLAIN_PORT/function/echo")
  printf "%-6s %-8s %12s %10s %10s\n" "$i" direct "$drps" "$dp50" "$dp99"
  printf "%-6s %-8s %12s %10s %10s\n" "$i" weir "$wrps" "$wp50" "$wp99"
  printf "%-6s %-8s %12s %10s %10s\n" "$i" plain "$prps" "$pp50" "$pp99"
done
