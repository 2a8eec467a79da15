# Helpers shared by the load scripts; sourced, not run.
#
#   install CMD PACKAGE   installs PACKAGE from Debian when CMD is missing
#   wait_for PORT         polls 127.0.0.1:PORT for up to 5 s
#   ticks PID             the process's utime + stime, in clock ticks
#   median N...           the median of the numbers
#   to_us VALUE           a wrk latency (us, ms, s) in microseconds
#   start_origin PORT [LOCATION...]
#                         starts the origin: nginx ($NGINX, one worker, access log off)
#                         answering "hello\n" on 127.0.0.1:PORT, with any extra location
#                         blocks given, under $PIN when it is set; its pid goes to pids
#
# Sourcing it also makes a scratch directory, $work, and an array, pids, of processes to
# kill on exit; both are cleaned up when the script ends.

install() {
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
    echo "installing $2 from Debian" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
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

median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.1f", n }'
}

start_origin() {
  local port=$1
  shift
  mkdir -p "$work/origin"
  cat > "$work/origin/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    $*
    location / { return 200 "hello\n"; }
  }
}
CONF
  ${PIN:-} "${NGINX:-nginx}" -c "$work/origin/nginx.conf" -p "$work/origin" &
  pids+=($!)
}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
