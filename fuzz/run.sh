#!/usr/bin/env bash
# Runs weir's fuzz targets with libFuzzer, on the stable toolchain.
#
#   fuzz/run.sh TARGET SECONDS [LIBFUZZER ARGS...]   one target
#   fuzz/run.sh all SECONDS [LIBFUZZER ARGS...]      every target, one after another
#   fuzz/run.sh build                                only build them
#
# Targets: config, shortcut, path_pattern, rewrite_path, normalize_path, raw_framing,
# upstream_response, server_request.
#
# The targets are instrumented with rustc's stable -C flags (the sancov pass with libFuzzer's
# options: inline 8-bit counters, PC table, compare tracing) and link libFuzzer from the
# libfuzzer-sys crate. Each run starts from the committed seeds in fuzz/corpus/TARGET and
# keeps what it finds in fuzz/target/corpus/TARGET (not committed); a crash is written to
# fuzz/target/artifacts/TARGET/ and fails the run. Memory is bounded (-rss_limit_mb) and so is
# the input size (-max_len).
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(config shortcut path_pattern rewrite_path normalize_path raw_framing upstream_response server_request)
which=${1:?usage: fuzz/run.sh TARGET|all|build [SECONDS] [LIBFUZZER ARGS...]}
seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))

host=$(rustc -vV | sed -n 's/^host: //p')
out=${CARGO_TARGET_DIR:-target}
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"
# --target keeps the flags off build scripts and proc-macros.
cargo build --quiet --release --target "$host" --bins
[ "$which" = build ] && exit 0

max_len() {
    case $1 in
        config) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

run() {
    local target=$1
    shift
    mkdir -p "$out/corpus/$target" "$out/artifacts/$target"
    echo "== fuzz $target for ${seconds}s"
    "$out/$host/release/$target" \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 \
        -malloc_limit_mb=2048 \
        -max_len="$(max_len "$target")" \
        -timeout=10 \
        -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$target/" \
        "$@" \
        "$out/corpus/$target" "corpus/$target"
}

if [ "$which" = all ]; then
    for target in "${TARGETS[@]}"; do
        run "$target" "$@"
    done
else
    run "$which" "$@"
fi
