#!/usr/bin/env bash
# weir against nginx as a reverse proxy, on loopback, every process pinned to one CPU.
#
#   benches/load/vs-nginx.sh                 # 5 interleaved rounds of 10 s per proxy
#   ROUNDS=3 DURATION=5s benches/load/vs-nginx.sh
#   WEIR=target/pgo/weir benches/load/vs-nginx.sh   # a given weir binary, not built here
#
# Pinning the origin, the load generator and the proxy to the same CPU keeps the spread between
# rounds at a few percent on a shared 2-core machine; it dilutes throughput with the origin's
# and wrk's own cost, so the sharpest figure is the proxy's own CPU time per request, read from
# /proc/PID/stat before and after each round. nginx runs with one worker, upstream keepalive,
# keepalive_requests high and the access log off. Rounds alternate weir, nginx, weir, ...
#
# Each round also gives the part of that CPU time spent in the kernel and the proxy's context
# switches per request (voluntary or not), and the CPU time per request left to the rest of
# CPU 0 (the origin, wrk and the kernel): on a shared CPU, a proxy that is preempted more makes
# everything else on it pay as well.
#
# Also measured: added latency at one connection (p50 vs calling the origin directly), idle RSS
# with the embedded default config, RSS with 1,000 idle keep-alive client connections, and a
# 1 GiB download streamed through each proxy against direct.
#
# Traffic goes only to 127.0.0.1; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
CPU=${CPU:-0}
ORIGIN_PORT=${ORIGIN_PORT:-18190}
NGINX_PORT=${NGINX_PORT:-18191}
WEIR_PORT=${WEIR_PORT:-18192}
ADMIN_PORT=${ADMIN_PORT:-19192}

install wrk wrk
install nginx nginx-light
install curl curl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

weir_binary
PIN="taskset -c $CPU"

mkdir -p "$work/origin" "$work/www"
# nginx's workers run as nobody: let them read the served file.
chmod 755 "$work" "$work/www"
# The large body: 1 GiB, sparse on disk, served by the origin.
truncate -s 1G "$work/www/big"

start_origin "$ORIGIN_PORT" "location = /big { root $work/www; }"
start_nginx_proxy "$NGINX_PORT" "$ORIGIN_PORT"
start_weir_proxy "$WEIR_PORT" "$ADMIN_PORT" "$ORIGIN_PORT"

for port in "$ORIGIN_PORT" "$NGINX_PORT" "$WEIR_PORT"; do wait_for "$port"; done

# The proxy nginx's worker: the child of its master.
nginx_master=$(cat "$work/proxy/nginx.pid")
nginx_worker=$(pgrep -P "$nginx_master" | head -1)

# round PORT PID: requests/s p50 p99 cpu-us-per-request errors kernel-us-per-request
# switches-per-request of the proxy PID (see wrk_round).
round() {
  wrk_round "$2" "http://127.0.0.1:$1/"
}

# Latency units from wrk (us, ms, s) to microseconds.

echo "warming up" >&2
$PIN wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$WEIR_PORT/" >/dev/null
$PIN wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$NGINX_PORT/" >/dev/null

declare -a w_rps w_p50 w_p99 w_cpu w_sys w_cs n_rps n_p50 n_p99 n_cpu n_sys n_cs
printf '%-6s %-6s %12s %10s %10s %12s %12s %9s  %s\n' round proxy "requests/s" p50 p99 "cpu us/req" "kernel us" switches errors
for i in $(seq 1 "$ROUNDS"); do
  read -r rps p50 p99 cpu err sys cs < <(round "$WEIR_PORT" "$weir_pid")
  printf '%-6s %-6s %12s %10s %10s %12s %12s %9s  %s\n' "$i" weir "$rps" "$p50" "$p99" "$cpu" "$sys" "$cs" "$err"
  w_rps+=("$rps"); w_p50+=("$(to_us "$p50")"); w_p99+=("$(to_us "$p99")"); w_cpu+=("$cpu")
  w_sys+=("$sys"); w_cs+=("$cs")
  read -r rps p50 p99 cpu err sys cs < <(round "$NGINX_PORT" "$nginx_worker")
  printf '%-6s %-6s %12s %10s %10s %12s %12s %9s  %s\n' "$i" nginx "$rps" "$p50" "$p99" "$cpu" "$sys" "$cs" "$err"
  n_rps+=("$rps"); n_p50+=("$(to_us "$p50")"); n_p99+=("$(to_us "$p99")"); n_cpu+=("$cpu")
  n_sys+=("$sys"); n_cs+=("$cs")
done

wr=$(median "${w_rps[@]}"); nr=$(median "${n_rps[@]}")
wc=$(median "${w_cpu[@]}"); nc=$(median "${n_cpu[@]}")
ws=$(median "${w_sys[@]}"); ns=$(median "${n_sys[@]}")
wx=$(median "${w_cs[@]}"); nx=$(median "${n_cs[@]}")
w99=$(median "${w_p99[@]}"); n99=$(median "${n_p99[@]}")
w50=$(median "${w_p50[@]}"); n50=$(median "${n_p50[@]}")

# Added latency at low load: one connection, direct against through weir.
low() { $PIN wrk --latency -t1 -c1 -d5s "http://127.0.0.1:$1/" | awk '$1 == "50%" {print $2}'; }
direct_p50=$(to_us "$(low "$ORIGIN_PORT")")
weir_p50=$(to_us "$(low "$WEIR_PORT")")

# 1 GiB through each proxy against direct (page-cached sparse file, discarded by curl).
speed() { curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$1/big"; }
direct_bps=$(speed "$ORIGIN_PORT")
weir_bps=$(speed "$WEIR_PORT")
nginx_bps=$(speed "$NGINX_PORT")
peak_stream_kib=$(awk '/VmHWM/ {print $2}' "/proc/$weir_pid/status")
nginx_peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$nginx_worker/status")

# Memory: idle with the embedded default config, then with 1,000 idle keep-alive clients.
RUST_LOG=warn WEIR_LISTEN=127.0.0.1:18193 WEIR_ADMIN_LISTEN=127.0.0.1:19193 \
  functions_provider_url=http://127.0.0.1:$ORIGIN_PORT $PIN "$WEIR" &
idle_pid=$!
pids+=($idle_pid)
wait_for 18193
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$idle_pid/status")
python3 - "$idle_pid" <<'PY' > "$work/conns.txt"
import socket, sys
pid = sys.argv[1]
socks = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", 18193), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    socks.append(s)
for s in socks:  # read each answer; the connections stay open (keep-alive)
    s.recv(65536)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
print(rss)
PY
conns_kib=$(cat "$work/conns.txt")

echo
echo "weir: $WEIR"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); all processes on CPU $CPU"
echo "rounds: $ROUNDS x $DURATION per proxy, interleaved; wrk -t1 -c$CONNS; medians below"
printf '%-22s %12s %12s %10s\n' "" weir nginx weir/nginx
awk -v w="$wr" -v n="$nr" 'BEGIN { printf "%-22s %12.0f %12.0f %10.2f\n", "requests/s", w, n, w / n }'
awk -v w="$wc" -v n="$nc" 'BEGIN { printf "%-22s %12.2f %12.2f %10.2f\n", "cpu us per request", w, n, w / n }'
awk -v w="$ws" -v n="$ns" 'BEGIN { printf "%-22s %12.2f %12.2f %10.2f\n", "  of which kernel", w, n, w / n }'
awk -v w="$wx" -v n="$nx" 'BEGIN { printf "%-22s %12.2f %12.2f %10.2f\n", "switches per request", w, n, w / n }'
# CPU 0 is saturated during a round: all it ran cost 1/rps per request; what the proxy did not
# use went to the origin, wrk and the kernel work charged to neither.
awk -v w="$wr" -v n="$nr" -v wc="$wc" -v nc="$nc" 'BEGIN {
  printf "%-22s %12.2f %12.2f %10.2f\n", "rest of CPU 0, us/req", 1e6 / w - wc, 1e6 / n - nc, (1e6 / w - wc) / (1e6 / n - nc) }'
awk -v w="$w50" -v n="$n50" 'BEGIN { printf "%-22s %12.1f %12.1f %10.2f\n", "p50 latency (us)", w, n, w / n }'
awk -v w="$w99" -v n="$n99" 'BEGIN { printf "%-22s %12.1f %12.1f %10.2f\n", "p99 latency (us)", w, n, w / n }'
awk -v w="$peak_stream_kib" -v n="$nginx_peak_kib" 'BEGIN { printf "%-22s %12.1f %12.1f %10.2f\n", "peak RSS (MiB)", w / 1024, n / 1024, w / n }'
echo
echo "1 connection, p50: direct ${direct_p50} us, through weir ${weir_p50} us (added $(awk -v a="$weir_p50" -v b="$direct_p50" 'BEGIN { printf "%.1f", a - b }') us)"
awk -v d="$direct_bps" -v w="$weir_bps" -v n="$nginx_bps" 'BEGIN {
  printf "1 GiB download: direct %.0f MiB/s, weir %.0f MiB/s (%.0f%%), nginx %.0f MiB/s (%.0f%%)\n", d/1048576, w/1048576, w*100/d, n/1048576, n*100/d }'
echo "peak RSS: after the rounds and the 1 GiB download; nginx's is its worker's"
echo "weir idle RSS (embedded default config): $((idle_kib / 1024)) MiB ($idle_kib KiB)"
echo "weir RSS with 1,000 idle keep-alive connections: $((conns_kib / 1024)) MiB ($conns_kib KiB)"
