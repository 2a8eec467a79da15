# Helpers shared by the load scripts; sourced, not run.
#
#   install CMD PACKAGE   installs PACKAGE from Debian when CMD is missing
#   weir_binary           sets WEIR to the weir binary to measure: $WEIR when it is set
#                         (the PGO build of pgo.sh, say), else a release build of this tree,
#                         built here
#   wait_for PORT         polls 127.0.0.1:PORT for up to 5 s
#   ticks PID             the process's utime + stime, in clock ticks
#   counts PID            the process's utime and stime (clock ticks) and the context
#                         switches of all its threads, voluntary or not
#   median N...           the median of the numbers
#   to_us VALUE           a wrk latency (us, ms, s) in microseconds
#   wrk_round PID URL [WRK_ARG...]
#                         one wrk round (--latency -t1 -c$CONNS -d$DURATION, any WRK_ARGs,
#                         under $PIN):
#                         prints requests/s p50 p99 PID's-CPU-us-per-request errors, then
#                         the part of that CPU time spent in the kernel (us per request) and
#                         PID's context switches per request
#                         (latencies in wrk's units, e.g. 1.02ms; errors "none" or wrk's lines)
#   start_origin PORT [LOCATION...]
#                         starts the origin: nginx ($NGINX, one worker, access log off)
#                         answering "hello\n" on 127.0.0.1:PORT, with any extra location
#                         blocks given, under $PIN when it is set; its pid goes to pids
#   PROVIDER_STATUS       an nginx location for start_origin: the faas-provider's function
#                         status (one ready replica) for any name, so that ScaleFromZero
#                         in front of the origin takes its cached path
#   openfaas_route URL    prints a route `openfaas` (Path=/openfaas/{name}/**, to URL) with
#                         the default config's /function/{name} filters: CallId,
#                         ScaleFromZero (URL as the provider) and FunctionMetrics
#   start_nginx NAME BODY  starts nginx (one worker, access log off, under $PIN when set) in
#                         $work/NAME with BODY inside its http block; its pid goes to pids
#   start_weir_proxy PORT ADMIN_PORT ORIGIN_PORT
#                         starts $WEIR (see weir_binary) on 127.0.0.1:PORT, its admin API on
#                         ADMIN_PORT, with one route (Path=/**, no filters) to the origin,
#                         under $PIN when it is set and with RUST_LOG=warn; its pid goes to
#                         pids and to weir_pid
#   start_nginx_proxy PORT ORIGIN_PORT [LISTEN_OPTIONS [SERVER_LINES]]
#                         starts nginx as the reverse proxy weir is measured against (one
#                         worker, upstream keepalive, keepalive_requests high, no access log,
#                         no response buffering) on 127.0.0.1:PORT in front of the origin,
#                         under $PIN when it is set; its master's pid goes to pids, and
#                         $work/proxy/nginx.pid names it. LISTEN_OPTIONS (e.g. ssl) go on
#                         its listen line, SERVER_LINES (e.g. ssl_certificate ...) in its
#                         server block
#
# Sourcing it also makes a scratch directory, $work, and an array, pids, of processes to
# kill on exit; both are cleaned up when the script ends.

install() {
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
    echo "installing $2 from Debian" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

weir_binary() {
  if [ -z "${WEIR:-}" ]; then
    cargo build --release --quiet --bin weir
    WEIR=$PWD/target/release/weir
  fi
}

wait_for() {
  for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}

counts() {
  local switches
  switches=$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }')
  awk -v s="$switches" '{print $14, $15, s}' "/proc/$1/stat"
}

median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.1f", n }'
}

wrk_round() {
  local u0 s0 c0 u1 s1 c1 out requests rps p50 p99 errors
  read -r u0 s0 c0 < <(counts "$1")
  out=$(${PIN:-} wrk --latency -t1 -c"$CONNS" -d"$DURATION" "${@:3}" "$2")
  read -r u1 s1 c1 < <(counts "$1")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ' | tr -s ' ' '_')
  awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    -v rps="$rps" -v p50="$p50" -v p99="$p99" -v e="${errors:-none}" \
    'BEGIN { printf "%s %s %s %.2f %s %.2f %.2f\n", rps, p50, p99, (u + s) / hz * 1e6 / n, e, s / hz * 1e6 / n, c / n }'
}

# nginx with one worker and no access log, in $work/NAME, serving the http block's BODY.
start_nginx() {
  local name=$1 body=$2
  mkdir -p "$work/$name"
  cat > "$work/$name/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
$body
}
CONF
  ${PIN:-} "${NGINX:-nginx}" -c "$work/$name/nginx.conf" -p "$work/$name" &
  pids+=($!)
}

PROVIDER_STATUS="location /system/function/ {
      default_type application/json;
      return 200 '{\"name\":\"x\",\"replicas\":1,\"availableReplicas\":1}';
    }"

openfaas_route() {
  cat <<ROUTE
    - id: openfaas
      uri: $1
      predicates: [ "Path=/openfaas/{name}/**" ]
      filters:
        - CallId
        - { name: ScaleFromZero, args: { provider: $1/, namespace: openfaas-fn } }
        - { name: FunctionMetrics, args: { namespace: openfaas-fn } }
ROUTE
}

start_origin() {
  local port=$1
  shift
  start_nginx origin "  server {
    listen 127.0.0.1:$port;
    $*
    location / { return 200 \"hello\\n\"; }
  }"
}

start_weir_proxy() {
  cat > "$work/weir-$1.yaml" <<CONF
server:
  listen: 127.0.0.1:$1
admin:
  listen: 127.0.0.1:$2
gateway:
  routes:
    - { id: origin, uri: "http://127.0.0.1:$3", predicates: [ Path=/** ] }
CONF
  RUST_LOG=warn ${PIN:-} "$WEIR" --config "$work/weir-$1.yaml" &
  weir_pid=$!
  pids+=($weir_pid)
}

start_nginx_proxy() {
  start_nginx proxy "  upstream origin {
    server 127.0.0.1:$2;
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$1 ${3:-};
    ${4:-}
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_buffering off;
    }
  }"
}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
