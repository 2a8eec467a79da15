#!/usr/bin/env bash
# A profile-guided (PGO) release build of weir: an instrumented build, a training load on
# loopback, the profile merged, and the optimised build that uses it.
#
#   benches/load/pgo.sh                      # builds target/pgo/weir
#   WEIR=target/pgo/weir benches/load/vs-nginx.sh
#
# The training load is what a gateway mostly does, not only the benchmark's route: bodiless
# GETs through a route without filters, POSTs with a 1 KiB body, the OpenFaaS route's filters
# (CallId, ScaleFromZero, FunctionMetrics), lb:// with LoadBalancer, CircuitBreaker and Retry,
# a 64 MiB download, and GETs over TLS (kept alive, and a handshake each), each for a few
# seconds against an nginx origin. What LLVM learns is
# which branches and calls are hot, so it lays the hot code out together and inlines where it
# pays; code the load never reaches is still built, only optimised for size.
#
# Needs llvm-profdata able to read the profiles rustc's LLVM writes: rustup's llvm-tools
# component if installed, else Debian's llvm-19 (installed here), whose reader takes them for
# rustc 1.95 (LLVM 22). A build made this way is what BENCHMARKS.md calls "the PGO build";
# `cargo build --release` is not profile-guided. Traffic goes only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

ORIGIN_PORT=${ORIGIN_PORT:-18790}
WEIR_PORT=${WEIR_PORT:-18780}
SECONDS_EACH=${SECONDS_EACH:-4}
OUT=$PWD/target/pgo
host=$(rustc -vV | sed -n 's/^host: //p')

install wrk wrk
install nginx nginx-light
install curl curl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  install llvm-profdata-19 llvm-19
  profdata=$(command -v llvm-profdata-19)
fi

rm -rf "$OUT/profiles" "$OUT"/*.profdata
mkdir -p "$OUT/profiles"
# --target keeps the flags off build scripts and proc-macros (which would profile the build).
# RUSTFLAGS replaces .cargo/config.toml's flags, so they repeat its `--cfg tokio_unstable`.
echo "== instrumented build"
RUSTFLAGS="--cfg tokio_unstable -Cprofile-generate=$OUT/profiles" CARGO_TARGET_DIR="$OUT/generate" \
  cargo build --release --quiet --target "$host" --bin weir

mkdir -p "$work/www"
head -c 64M /dev/zero > "$work/www/big"
# nginx's workers run as nobody: they must be able to reach the file.
chmod 755 "$work" "$work/www"
start_origin "$ORIGIN_PORT" "$PROVIDER_STATUS
    location = /plain/big { alias $work/www/big; }"
origin="http://127.0.0.1:$ORIGIN_PORT"
routes="services:
  origin:
    instances: [ $origin ]
gateway:
  routes:
    - { id: all, uri: lb://origin, predicates: [ Path=/all/** ], filters: [ LoadBalancer=round-robin, CircuitBreaker=origin, Retry=3 ] }
    - { id: plain, uri: $origin, predicates: [ Path=/plain/** ] }
$(openfaas_route "$origin")"
cat > "$work/routes.yaml" <<CONF
server:
  listen: 127.0.0.1:$WEIR_PORT
admin:
  listen: 127.0.0.1:$((WEIR_PORT + 1))
$routes
CONF
cat > "$work/routes-tls.yaml" <<CONF
server:
  listen: 127.0.0.1:$WEIR_PORT
  ssl:
    certificate: $PWD/tests/e2e/certs/localhost-1.crt
    certificate-private-key: $PWD/tests/e2e/certs/localhost-1.key
admin:
  listen: 127.0.0.1:$((WEIR_PORT + 1))
$routes
CONF
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

echo "== training"
wait_for "$ORIGIN_PORT"
RUST_LOG=warn "$OUT/generate/$host/release/weir" --config "$work/routes.yaml" &
weir_pid=$!
pids+=($weir_pid)
wait_for "$WEIR_PORT"
train() {
  local what=$1
  shift
  printf '%-28s ' "$what"
  wrk -t1 -c64 -d"${SECONDS_EACH}s" "$@" | awk '/Requests\/sec/ {printf "%s requests/s", $2} /Non-2xx|Socket errors/ {printf " (%s)", $0} END {print ""}'
}
train "GET, no filters" "http://127.0.0.1:$WEIR_PORT/plain/x"
train "POST 1 KiB, no filters" -s "$work/post.lua" "http://127.0.0.1:$WEIR_PORT/plain/x"
train "GET, OpenFaaS filters" "http://127.0.0.1:$WEIR_PORT/openfaas/echo/x"
train "GET, LB + CB + Retry" "http://127.0.0.1:$WEIR_PORT/all/x"
for _ in 1 2 3 4; do
  curl -sf -o /dev/null "http://127.0.0.1:$WEIR_PORT/plain/big"
done
# The profile is written when weir exits (a graceful stop, waited for: weir exits 0 on SIGTERM,
# anything else fails the script); a second run with TLS on its listener adds to it.
kill -TERM "$weir_pid"
wait "$weir_pid"
RUST_LOG=warn "$OUT/generate/$host/release/weir" --config "$work/routes-tls.yaml" &
weir_pid=$!
pids+=($weir_pid)
wait_for "$WEIR_PORT"
train "GET over TLS" "https://127.0.0.1:$WEIR_PORT/plain/x"
train "GET over TLS, a handshake each" -H "Connection: close" "https://127.0.0.1:$WEIR_PORT/plain/x"
kill -TERM "$weir_pid"
wait "$weir_pid"

echo "== merge ($profdata)"
"$profdata" merge -o "$OUT/merged.profdata" "$OUT"/profiles/*.profraw
# Named by its content: cargo rebuilds when RUSTFLAGS change, not when a file they name does.
profile=$OUT/weir-$(sha256sum "$OUT/merged.profdata" | cut -c1-16).profdata
mv "$OUT/merged.profdata" "$profile"

echo "== optimised build"
RUSTFLAGS="--cfg tokio_unstable -Cprofile-use=$profile" CARGO_TARGET_DIR="$OUT/use" \
  cargo build --release --quiet --target "$host" --bin weir
cp "$OUT/use/$host/release/weir" "$OUT/weir"
echo "built $OUT/weir"
