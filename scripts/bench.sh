#!/usr/bin/env bash
# Tandem's benchmark suite (BENCHMARKS.md). Every benchmark runs against its baseline in the same
# run, in interleaved rounds (A B C A B C …); the report quotes medians of per-round results.
#
#   scripts/bench.sh                  full run: 3 rounds per benchmark (about 15 min on 2 cores)
#   scripts/bench.sh --quick          1 short round: smoke-tests the script; numbers are rough
#   scripts/bench.sh --only B1,B7     a subset (B3 and B4 take their numbers from B1, so they run it)
#   scripts/bench.sh --only B8        pub/sub end to end (pubsub-bench): in-memory throughput and
#                                     latency, Redis Streams throughput vs redis-benchmark XADD
#   scripts/bench.sh --only B9        actors (actors-bench): activation, warm invoke vs B1's chain,
#                                     100 000 reminders; its own table in target/bench/b9.md
#   scripts/bench.sh --only B1T       the cost of tracing: B1's chain with the OTLP collector off,
#                                     up and down; its own table in target/bench/b1t.md
#   scripts/bench.sh --soak           adds B4's 10-minute soak at the B1 rate
#   scripts/bench.sh --only B11       gRPC (grpc-bench): proxied call, InvokeService and GetState vs
#                                     a direct call, an nginx grpc_pass hop and the HTTP routes
#   scripts/bench.sh --only B10       the operator (operator-bench) at 5 000 workloads + 5 000
#                                     Components against envtest's kube-apiserver (--quick: 300);
#                                     needs the envtest binaries (scripts/envtest.sh builds them)
#
# Installs what it needs when missing (oha into target/tools, nginx and Redis from apt), builds
# the release binaries, starts everything on free loopback ports under a temp dir and stops it by
# PID on exit. The load generator runs on CPU 0, everything under test on CPU 1.
# Binaries come from $CARGO_TARGET_DIR/release when CARGO_TARGET_DIR is set, or from
# TANDEM_BENCH_BIN_DIR (with TANDEM_BENCH_NO_BUILD=1: the test suite's smoke run uses its debug
# binaries). On a busy machine, TANDEM_BENCH_COOLDOWN_MAX (s) and TANDEM_BENCH_MAX_ATTEMPTS bound
# the noise guard's waits. B2 runs each path with oha and with wrk.
# Writes target/bench/results.md (the report), results.tsv (raw records) and raw/ (oha JSON, logs),
# or into TANDEM_BENCH_OUT_DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/lib/deps.sh
# shellcheck source=lib/bench-components.sh
source scripts/lib/bench-components.sh

usage() { sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

quick=0 soak=0 keep=0 only="B1,B2,B3,B4,B5,B7" rounds_opt=""
orig_args="$*"
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --soak) soak=1 ;;
    --only) only="${2:?--only needs a list like B1,B7}"; shift ;;
    --only=*) only="${1#*=}" ;;
    --rounds) rounds_opt="${2:?--rounds needs a number}"; shift ;;
    --keep) keep=1 ;;  # keep the temp dir (logs, component files) for a post-mortem
    -h | --help) usage; exit 0 ;;
    *) echo "bench.sh: unknown option '$1'" >&2; usage >&2; exit 64 ;;
  esac
  shift
done
only="${only^^}"
selected() { [[ ",$only," == *",$1,"* ]]; }
for b in ${only//,/ }; do
  case "$b" in B1 | B1M | B1T | B2 | B3 | B4 | B5 | B7 | B8 | B9 | B10 | B11) ;; *) echo "bench.sh: no benchmark '$b' (have B1 B1M B1T B2 B3 B4 B5 B7 B8 B9 B10 B11)" >&2; exit 64 ;; esac
done
# B3 (CPU per request) and B4's peak are read during B1.
if selected B3 || selected B4; then selected B1 || only="$only,B1"; fi

# ---------------------------------------------------------------------------------------------
# Settings
rate=1000  # open-loop rate (req/s) for latency: B1, B7, the soak
conns=16
if ((quick)); then
  rounds=1 lat_secs=2 tput_secs=2 warm_secs=1 b5_runs=5 rb_n16=20000 rb_n1=5000
  idle_wait=5 cooldown_max=0 max_attempts=1
else
  # 12 s at 1 000 req/s = 12 000 samples per run (p99 needs ≥ 10 000).
  rounds=3 lat_secs=12 tput_secs=10 warm_secs=2 b5_runs=10 rb_n16=200000 rb_n1=50000
  idle_wait=30 cooldown_max=180 max_attempts=3
fi
[ -n "$rounds_opt" ] && rounds="$rounds_opt"
# The noise guard's bounds, for a shared machine whose load average never settles.
cooldown_max=${TANDEM_BENCH_COOLDOWN_MAX:-$cooldown_max}
max_attempts=${TANDEM_BENCH_MAX_ATTEMPTS:-$max_attempts}
# The soak: 10 min at the B1 rate; TANDEM_BENCH_SOAK_SECS shortens it to test the script.
soak_secs=${TANDEM_BENCH_SOAK_SECS:-600}
soak_warm=$((soak_secs / 10 < 60 ? soak_secs / 10 : 60))

out_dir="${TANDEM_BENCH_OUT_DIR:-$root/target/bench}"
raw="$out_dir/raw"
rm -rf "$raw"
mkdir -p "$raw"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")"
chmod 755 "$tmp"  # nginx's worker runs as nobody
mkdir -p "$tmp/logs"
results="$tmp/results.tsv"
: >"$results"
round_out="$results"  # where measure() writes; a per-round buffer while a round runs

say() { printf '\033[1m==> [+%ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$results"; }
measure() { printf 'm\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$round_out"; }
fail() {
  printf 'fail\t%s\t%s\n' "$1" "$2" >>"$results"
  printf '\033[1;31m!!! %s FAILED: %s\033[0m\n' "$1" "$2" >&2
}
warn() {
  printf 'warn\t%s\t%s\n' "$1" "$2" >>"$results"
  printf '\033[33mwarning: %s: %s\033[0m\n' "$1" "$2" >&2
}
# kv KEY "k=v k=v …" → v
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -n 1; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
loadavg1() { cut -d' ' -f1 /proc/loadavg; }
log_tail() { tail -n "${2:-5}" "$1" 2>/dev/null | tr '\n\t' '  ' | cut -c1-600; }

# ---------------------------------------------------------------------------------------------
# Processes: everything started here is stopped by PID on exit.
pids=()
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  if ((keep)); then echo "temp dir kept: $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME CMD… : runs CMD in the background with its output in $tmp/logs/NAME.log; sets
# $last_pid. `taskset -c N prog` execs prog, so the PID is the program's own.
start_bg() {
  local name=$1
  shift
  "$@" >"$tmp/logs/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

# wait_http URL STATUS SECONDS PID: until URL answers STATUS; fails early if PID dies.
wait_http() {
  local url=$1 want=$2 secs=$3 pid=$4 code deadline
  deadline=$(($(date +%s) + secs))
  while (($(date +%s) < deadline)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
    [ "$code" = "$want" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Tools and binaries
SECONDS=0
say "tools"
OHA="$root/target/tools/bin/oha"
# oha drives B1, B1T, B2 (B3, B4 read B1) and B7; the other benches bring their own load generators.
if (selected B1 || selected B1M || selected B1T || selected B2 || selected B7) && [ ! -x "$OHA" ]; then
  note "installing oha into target/tools (several minutes on 2 cores)"
  cargo install oha --locked --root "$root/target/tools" >"$tmp/logs/oha-install.log" 2>&1 ||
    { cat "$tmp/logs/oha-install.log" >&2; exit 1; }
fi
command -v curl >/dev/null || apt_install curl
command -v taskset >/dev/null || apt_install util-linux
# wrk is B2's second load generator (issue 17: no one tool may flatter the sidecar).
if selected B2 && ! command -v wrk >/dev/null; then
  note "installing wrk"
  apt_install wrk
fi
if (selected B1 || selected B2 || selected B11) && ! command -v nginx >/dev/null; then
  note "installing nginx"
  apt_install nginx
fi
if (selected B5 || selected B7 || selected B8) && ! { command -v redis-server && command -v redis-benchmark && command -v redis-cli; } >/dev/null; then
  note "installing redis-server and redis-tools"
  apt_install redis-server redis-tools
fi
build=(-p tandem-sidecar -p tandem-bench)
selected B10 && build+=(-p tandem-operator)
if [ "${TANDEM_BENCH_NO_BUILD:-0}" != 1 ]; then
  note "cargo build --release ${build[*]} --locked"
  cargo build --release "${build[@]}" --locked
fi
bin="${TANDEM_BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/release}"
SIDECAR="$bin/tandem-sidecar" ECHO="$bin/bench-echo" COLD="$bin/cold-start" UTIL="$bin/bench-util"
ACTORS="$bin/actors-bench" GRPC="$bin/grpc-bench" OPBENCH="$bin/operator-bench" PUBSUB="$bin/pubsub-bench"
for b in "$SIDECAR" "$ECHO" "$COLD" "$UTIL" "$ACTORS" "$GRPC" "$OPBENCH" "$PUBSUB"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done
if selected B10 && [ ! -x "$bin/tandem-operator" ]; then echo "missing $bin/tandem-operator" >&2; exit 1; fi
if [ "$(nproc --all)" -lt 2 ]; then echo "bench.sh needs 2 CPUs (load generator on 0, the rest on 1)" >&2; exit 1; fi

read -r -a port < <("$UTIL" free-ports 26)
p_echo=${port[0]} p_nginx=${port[1]} p_redis=${port[2]} p_nginx2=${port[24]} p_echo7=${port[25]}
# Sidecars A (caller, no app), B (callee, app = bench-echo), S (state → Redis), C (cold starts):
# http, public, internal, metrics, grpc.
p_a=("${port[@]:3:4}" "${port[20]}") p_b=("${port[@]:7:4}" "${port[21]}")
p_s=("${port[@]:11:4}" "${port[22]}") p_c=("${port[@]:15:4}" "${port[23]}")
p_hello=${port[19]}

head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/body.bin"

mkdir -p "$tmp/components/redis"
write_memory_components "$tmp/components/mem"
cat >"$tmp/components/redis/statestore.yaml" <<EOF
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: "127.0.0.1:$p_redis"
  - name: keyPrefix
    value: none
EOF

# sidecar_args APPID PORTS-ARRAY-NAME COMPONENTS-DIR DATA-DIR [APP-PORT]
sidecar_args() {
  local -n ports_ref=$2
  sidecar_cmd=("$SIDECAR" --app-id "$1" --dapr-http-port "${ports_ref[0]}"
    --dapr-public-port "${ports_ref[1]}" --dapr-internal-grpc-port "${ports_ref[2]}"
    --metrics-port "${ports_ref[3]}" --dapr-grpc-port "${ports_ref[4]}" --dapr-listen-addresses 127.0.0.1
    --data-dir "$4" --resources-path "$3")
  [ -n "${5:-}" ] && sidecar_cmd+=(--app-port "$5")
  return 0
}
# start_sidecar NAME APPID PORTS-ARRAY-NAME COMPONENTS-DIR [APP-PORT]: sets $last_pid; fails
# when /v1.0/healthz/outbound is not 204 within 20 s.
start_sidecar() {
  local name=$1
  local -n sp=$3
  sidecar_args "$2" "$3" "$4" "$tmp/data" "${5:-}"
  start_bg "$name" taskset -c 1 "${sidecar_cmd[@]}"
  wait_http "http://127.0.0.1:${sp[0]}/v1.0/healthz/outbound" 204 20 "$last_pid"
}

# ---------------------------------------------------------------------------------------------
# oha (on CPU 0, one worker thread: the load generator has CPU 0 to itself)
oha() { taskset -c 0 "$OHA" --no-tui --output-format json --worker-threads 1 -c "$conns" "$@"; }
# oha_open OUT.json URL ARGS…: open loop at $rate with coordinated-omission correction.
oha_open() {
  local out=$1 url=$2
  shift 2
  oha -q "$rate" --latency-correction -n $((rate * lat_secs)) "$@" "$url" >"$out" 2>>"$tmp/logs/oha.log"
}
# oha_closed OUT.json URL ARGS…: closed loop for $tput_secs, in-flight requests waited for.
oha_closed() {
  local out=$1 url=$2
  shift 2
  oha -z "${tput_secs}s" -w "$@" "$url" >"$out" 2>>"$tmp/logs/oha.log"
}
# check_run BENCH LABEL SUMMARY [open]: warns on errors, non-2xx and (open loop) a rate below 95 %.
check_run() {
  local bench=$1 label=$2 s=$3 resp ok errs rps
  resp=$(kv responses "$s") ok=$(kv ok "$s") errs=$(kv errors "$s") rps=$(kv rps "$s")
  if [ "$errs" != 0 ] || [ "$ok" != "$resp" ] || [ "$resp" = 0 ]; then
    warn "$bench" "$label: $ok of $resp responses were 2xx, $errs requests failed"
  fi
  if [ "${4:-}" = open ] && ! le "$(calc "0.95 * $rate")" "$rps"; then
    warn "$bench" "$label: achieved $rps req/s of $rate requested"
  fi
  note "$label: $s"
}
cpu_us() { kv cpu_us "$("$UTIL" proc "$1")"; }

# ---------------------------------------------------------------------------------------------
# Rounds and the noise guard: before each round, wait (up to $cooldown_max s) for the 1-min load
# average to fall to 1.0 or below; a round that still starts above 1.0 is repeated (up to
# $max_attempts tries; the last try is kept and marked noisy).
wait_quiet() {
  local la waited=0
  la=$(loadavg1)
  while ! le "$la" 1.0 && ((waited < cooldown_max)); do
    ((waited == 0)) && note "load average $la > 1.0: waiting up to ${cooldown_max}s for it to settle"
    sleep 5
    waited=$((waited + 5))
    la=$(loadavg1)
  done
  echo "$la"
}
run_rounds() {
  local bench=$1 fn=$2 r attempt la status
  for ((r = 1; r <= rounds; r++)); do
    attempt=1
    while :; do
      la=$(wait_quiet)
      say "$bench round $r/$rounds (attempt $attempt, loadavg $la)"
      round_out="$tmp/round.tsv"
      : >"$round_out"
      "$fn" "$r"
      round_out="$results"
      if le "$la" 1.0; then
        status=ok
      elif ((attempt < max_attempts)); then
        printf 'round\t%s\t%s\t%s\t%s\t%s\n' "$bench" "$r" "$attempt" "$la" "repeated (started above 1.0)" >>"$results"
        attempt=$((attempt + 1))
        continue
      else
        status="noisy (started above 1.0; kept)"
      fi
      printf 'round\t%s\t%s\t%s\t%s\t%s\n' "$bench" "$r" "$attempt" "$la" "$status" >>"$results"
      cat "$tmp/round.tsv" >>"$results"
      break
    done
  done
}

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta command "scripts/bench.sh${orig_args:+ $orig_args}"
meta machine "$(nproc --all) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
meta commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
if ((quick)); then meta mode "quick: $rounds round, ${lat_secs}s latency runs, ${tput_secs}s throughput runs (smoke test; too few samples for a trustworthy p99)"; else meta mode "full: $rounds rounds, ${lat_secs}s latency runs ($((rate * lat_secs)) samples), ${tput_secs}s throughput runs"; fi
meta rate "$rate"
meta idle_wait_s "$idle_wait"
meta soak_minutes "$(awk "BEGIN { print $soak_secs / 60 }")"

# ---------------------------------------------------------------------------------------------
# start_nginx NAME SERVERS: nginx (one worker, no access log, keep-alive everywhere) on CPU 1 with
# the upstream and server blocks SERVERS, its files under $tmp/NAME; sets $last_pid (the master)
# and $nginx_worker, or $nginx_error and fails.
start_nginx() {
  local name=$1 nd="$tmp/$1" i
  mkdir -p "$nd/logs"
  cat >"$nd/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $nd/body;
  proxy_temp_path $nd/proxy;
  fastcgi_temp_path $nd/fastcgi;
  uwsgi_temp_path $nd/uwsgi;
  scgi_temp_path $nd/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
$2
}
EOF
  start_bg "$name" taskset -c 1 nginx -p "$nd" -c "$nd/nginx.conf" -e "$nd/error.log"
  nginx_worker=""
  for ((i = 0; i < 100; i++)); do
    kill -0 "$last_pid" 2>/dev/null || break
    nginx_worker=$(tr ' ' '\n' <"/proc/$last_pid/task/$last_pid/children" 2>/dev/null | grep -m1 . || true)
    [ -n "$nginx_worker" ] && return 0
    sleep 0.05
  done
  nginx_error="nginx ($name) did not start or has no worker: $(log_tail "$nd/error.log")"
  return 1
}

# ---------------------------------------------------------------------------------------------
# B1–B4: the invocation stack. oha → bench-echo (direct); oha → nginx → bench-echo;
# oha → sidecar A → sidecar B → bench-echo (chain); oha → sidecar B → its own app (one hop).
stack_up=0
start_stack() {
  say "starting bench-echo, nginx and sidecars A and B (CPU 1)"
  start_bg echo taskset -c 1 "$ECHO" --port "$p_echo"
  pid_echo=$last_pid
  wait_http "http://127.0.0.1:$p_echo/" 200 10 "$pid_echo" || { fail B1 "bench-echo did not start: $(log_tail "$tmp/logs/echo.log")"; return 1; }

  start_nginx nginx "
  upstream echo {
    server 127.0.0.1:$p_echo;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$p_nginx;
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }
  upstream hop1 {
    server 127.0.0.1:$p_nginx;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$p_nginx2;
    location / {
      proxy_pass http://hop1;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }" || { fail B1 "$nginx_error"; return 1; }
  pid_nginx=$last_pid pid_nginx_worker=$nginx_worker
  wait_http "http://127.0.0.1:$p_nginx/" 200 10 "$pid_nginx" || { fail B1 "nginx did not start: $(log_tail "$tmp/nginx/error.log")"; return 1; }

  start_sidecar sidecar_b b p_b "$tmp/components/mem" "$p_echo" ||
    { fail B1 "sidecar B did not become healthy: $(log_tail "$tmp/logs/sidecar_b.log")"; return 1; }
  pid_b=$last_pid
  t_b=$(date +%s)
  start_sidecar sidecar_a a p_a "$tmp/components/mem" ||
    { fail B1 "sidecar A did not become healthy: $(log_tail "$tmp/logs/sidecar_a.log")"; return 1; }
  pid_a=$last_pid
  url_direct="http://127.0.0.1:$p_echo/echo"
  url_nginx="http://127.0.0.1:$p_nginx/echo"
  url_nginx2="http://127.0.0.1:$p_nginx2/echo"
  url_chain="http://127.0.0.1:${p_a[0]}/v1.0/invoke/b/method/echo"
  url_sidecar1="http://127.0.0.1:${p_b[0]}/v1.0/invoke/b/method/echo"
  # Correctness first: the body must come back through every path.
  local path got
  for path in direct nginx nginx2 chain sidecar1; do
    local u="url_$path"
    got=$(curl -s --max-time 5 -X POST --data-binary @"$tmp/body.bin" "${!u}" || true)
    if [ "$got" != "$(cat "$tmp/body.bin")" ]; then
      fail B1 "POST ${!u} did not echo the 1 KiB body (got ${#got} bytes: ${got:0:200})"
      return 1
    fi
  done
  stack_up=1

  if selected B4; then
    local wait_left=$((t_b + idle_wait - $(date +%s)))
    ((wait_left > 0)) && { note "B4: waiting ${wait_left}s for the idle measurement (${idle_wait}s after start)"; sleep "$wait_left"; }
    local p s
    for p in sidecar_a:$pid_a sidecar_b:$pid_b echo:$pid_echo; do
      s=$("$UTIL" proc "${p#*:}")
      measure "b4.${p%%:*}.idle_rss_kb" 0 "$(kv rss_kb "$s")"
      measure "b4.${p%%:*}.idle_anon_kb" 0 "$(kv anon_kb "$s")"
      note "B4 idle ${p%%:*}: $s"
    done
  fi
  say "warming up every path (${warm_secs}s each at $rate req/s)"
  for path in direct nginx nginx2 chain sidecar1; do
    local u="url_$path"
    oha -q "$rate" -n $((rate * warm_secs)) -m POST -D "$tmp/body.bin" -T application/octet-stream "${!u}" >/dev/null 2>>"$tmp/logs/oha.log"
  done
}
stop_stack() {
  local p
  for p in "${pid_a:-}" "${pid_b:-}" "${pid_nginx:-}" "${pid_echo:-}"; do
    if [ -n "$p" ]; then stop_pid "$p"; fi
  done
  stack_up=0
}

# procs_of PATH → "name:pid …", the processes under test on that path
procs_of() {
  case $1 in
    direct) echo "echo:$pid_echo" ;;
    nginx | nginx2) echo "nginx:$pid_nginx_worker echo:$pid_echo" ;;
    sidecar1) echo "sidecar_b:$pid_b echo:$pid_echo" ;;
    chain) echo "sidecar_a:$pid_a sidecar_b:$pid_b echo:$pid_echo" ;;
  esac
}
# cpu_snapshot PATH: CPU time of the path's processes into $cpu_before
cpu_snapshot() {
  local p
  cpu_before=()
  for p in $(procs_of "$1"); do cpu_before[${p%%:*}]=$(cpu_us "${p#*:}"); done
}
# cpu_record KEY-PREFIX ROUND PATH REQUESTS: CPU µs per request of each process since cpu_snapshot
cpu_record() {
  local prefix=$1 r=$2 path=$3 n=$4 p name after
  for p in $(procs_of "$path"); do
    name=${p%%:*}
    after=$(cpu_us "${p#*:}")
    if ((n > 0)); then
      measure "$prefix.$path.$name.cpu_us_per_req" "$r" "$(calc "($after - ${cpu_before[$name]}) / $n")"
    fi
  done
}
declare -A cpu_before=()

b1_round() {
  local r=$1 path s
  for path in direct nginx chain; do
    local u="url_$path" f="$raw/b1-$path-r$r.json"
    cpu_snapshot "$path"
    oha_open "$f" "${!u}" -m POST -D "$tmp/body.bin" -T application/octet-stream
    s=$("$UTIL" oha "$f")
    cpu_record b3 "$r" "$path" "$(kv ok "$s")"
    check_run B1 "$path r$r" "$s" open
    measure "b1.$path.p50_us" "$r" "$(kv p50_us "$s")"
    measure "b1.$path.p99_us" "$r" "$(kv p99_us "$s")"
    measure "b1.$path.rps" "$r" "$(kv rps "$s")"
  done
}

# wrk_closed OUT URL: wrk on CPU 0 (one thread, $conns connections, keep-alive), closed loop for
# $tput_secs, posting the 1 KiB body; OUT gets wrk's text and the line its done() hook writes
# ("summary responses= ok= errors= rps= p50_us= p99_us=", the keys of `bench-util oha`).
wrk_closed() {
  taskset -c 0 wrk -t1 -c"$conns" -d"${tput_secs}s" -s "$tmp/wrk-post.lua" "$2" >"$1" 2>>"$tmp/logs/wrk.log"
}
cat >"$tmp/wrk-post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.timeout
  local responses = summary.requests - failed
  io.write(string.format("\nsummary responses=%d ok=%d errors=%d rps=%.1f p50_us=%.1f p99_us=%.1f\n",
    responses, responses - e.status, failed, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99)))
end
LUA

# B2 runs every path with oha and then with wrk (issue 17: the two tools disagreed by 2–3× on
# the sidecar, so neither alone decides).
b2_round() {
  local r=$1 path s f
  for path in direct nginx nginx2 sidecar1 chain; do
    local u="url_$path"
    f="$raw/b2-$path-r$r.json"
    cpu_snapshot "$path"
    oha_closed "$f" "${!u}" -m POST -D "$tmp/body.bin" -T application/octet-stream
    s=$("$UTIL" oha "$f")
    cpu_record b2cpu "$r" "$path" "$(kv ok "$s")"
    check_run B2 "$path r$r" "$s"
    measure "b2.$path.rps" "$r" "$(kv rps "$s")"
    f="$raw/b2-wrk-$path-r$r.txt"
    cpu_snapshot "$path"
    wrk_closed "$f" "${!u}" || warn B2 "wrk $path r$r exited with an error: $(log_tail "$tmp/logs/wrk.log")"
    s=$(sed -n 's/^summary //p' "$f" | tail -n 1)
    cpu_record b2wrkcpu "$r" "$path" "$(kv ok "$s")"
    check_run B2 "wrk $path r$r" "$s"
    measure "b2wrk.$path.rps" "$r" "$(kv rps "$s")"
  done
}

soak() {
  say "B4 soak: ${soak_secs}s at $rate req/s through the chain (RSS sampled every 10 s after ${soak_warm}s)"
  local f="$raw/b4-soak.json" line
  oha -q "$rate" --latency-correction -z "${soak_secs}s" -w -m POST -D "$tmp/body.bin" -T application/octet-stream "$url_chain" >"$f" 2>>"$tmp/logs/oha.log" &
  local soak_pid=$!
  pids+=("$soak_pid")
  sleep "$soak_warm"
  "$UTIL" watch --every-ms 10000 --duration-s $((soak_secs - soak_warm - 5)) "$pid_a" "$pid_b" "$pid_echo" >"$tmp/soak.txt"
  wait "$soak_pid" || warn B4 "the soak's oha exited with an error"
  check_run B4 "soak" "$("$UTIL" oha "$f")" open
  while read -r line; do
    local pid drift name
    pid=$(kv pid "$line") drift=$(kv drift_kb "$line")
    case $pid in "$pid_a") name=sidecar_a ;; "$pid_b") name=sidecar_b ;; *) name=echo ;; esac
    measure "b4.$name.soak_drift_kb" 0 "$drift"
    note "soak $name: $line"
  done <"$tmp/soak.txt"
}

if selected B1 || selected B2; then
  if start_stack; then
    if selected B1; then
      run_rounds B1 b1_round
      if selected B4; then
        for p in sidecar_a:$pid_a sidecar_b:$pid_b echo:$pid_echo; do
          measure "b4.${p%%:*}.peak_kb" 0 "$(kv hwm_kb "$("$UTIL" proc "${p#*:}")")"
        done
      fi
    fi
    selected B2 && run_rounds B2 b2_round
    ((soak)) && selected B4 && soak
  fi
  stop_stack
fi

# ---------------------------------------------------------------------------------------------
# B1M: the cost of mTLS between sidecars (issue 15). B1's chain twice, side by side: sidecars
# a → b in plaintext, and am → bm with `--enable-mtls` (the local CA in their shared data dir),
# both in front of one bench-echo on CPU 1. Rounds interleave direct, plain and mTLS at B1's
# rate; the peer connections are pooled, so handshakes happen only while warming up.
# `scripts/bench.sh --only B1M [--rounds N]`.
b1m_setup() {
  local ports
  read -r -a ports < <("$UTIL" free-ports 21)
  p_m_echo=${ports[0]} p_ma=("${ports[@]:1:5}") p_mb=("${ports[@]:6:5}") p_pa=("${ports[@]:11:5}") p_pb=("${ports[@]:16:5}")
  say "B1M: bench-echo, a → b in plaintext and am → bm with mTLS (CPU 1)"
  start_bg b1m-echo taskset -c 1 "$ECHO" --port "$p_m_echo"
  pid_m_echo=$last_pid
  wait_http "http://127.0.0.1:$p_m_echo/" 200 10 "$pid_m_echo" || { fail B1M "bench-echo did not start"; return 1; }
  local v name id app ports_name dir
  for v in pb:b:app pa:a: mb:b:app ma:a:; do
    IFS=: read -r name id app <<<"$v"
    ports_name="p_$name"
    case $name in m*) dir="$tmp/b1m-mtls" ;; *) dir="$tmp/b1m-plain" ;; esac
    sidecar_args "$id" "$ports_name" "$tmp/components/mem" "$dir" "${app:+$p_m_echo}"
    case $name in m*) sidecar_cmd+=(--enable-mtls) ;; esac
    start_bg "b1m-$name" taskset -c 1 "${sidecar_cmd[@]}"
    local -n started_ports=$ports_name
    wait_http "http://127.0.0.1:${started_ports[0]}/v1.0/healthz/outbound" 204 30 "$last_pid" ||
      { fail B1M "sidecar b1m-$name did not become healthy: $(log_tail "$tmp/logs/b1m-$name.log")"; return 1; }
    unset -n started_ports
    printf -v "pid_m_$name" '%s' "$last_pid"
  done
  url_m_direct="http://127.0.0.1:$p_m_echo/echo"
  url_m_plain="http://127.0.0.1:${p_pa[0]}/v1.0/invoke/b/method/echo"
  url_m_mtls="http://127.0.0.1:${p_ma[0]}/v1.0/invoke/b/method/echo"
  local path got
  for path in direct plain mtls; do
    local u="url_m_$path"
    got=$(curl -s --max-time 5 -X POST --data-binary @"$tmp/body.bin" "${!u}" || true)
    [ "$got" = "$(cat "$tmp/body.bin")" ] || { fail B1M "POST ${!u} did not echo the body (got ${#got} bytes: ${got:0:200})"; return 1; }
    oha -q "$rate" -n $((rate * warm_secs)) -m POST -D "$tmp/body.bin" -T application/octet-stream "${!u}" >/dev/null 2>>"$tmp/logs/oha.log"
  done
  grep -q "mTLS" "$tmp/logs/b1m-ma.log" || note "B1M: sidecar am's log does not mention mTLS: $(log_tail "$tmp/logs/b1m-ma.log" 3)"
}
b1m_round() {
  local r=$1 path s f before_a before_b after_a after_b pa pb
  for path in direct plain mtls; do
    local u="url_m_$path"
    f="$raw/b1m-$path-r$r.json"
    case $path in plain) pa=$pid_m_pa pb=$pid_m_pb ;; mtls) pa=$pid_m_ma pb=$pid_m_mb ;; *) pa="" pb="" ;; esac
    [ -n "$pa" ] && before_a=$(cpu_us "$pa") before_b=$(cpu_us "$pb")
    oha_open "$f" "${!u}" -m POST -D "$tmp/body.bin" -T application/octet-stream
    s=$("$UTIL" oha "$f")
    check_run B1M "$path r$r" "$s" open
    measure "b1m.$path.p50_us" "$r" "$(kv p50_us "$s")"
    measure "b1m.$path.p99_us" "$r" "$(kv p99_us "$s")"
    if [ -n "$pa" ] && (($(kv ok "$s") > 0)); then
      after_a=$(cpu_us "$pa") after_b=$(cpu_us "$pb")
      measure "b1m.$path.cpu_us_per_req" "$r" "$(calc "($after_a - $before_a + $after_b - $before_b) / $(kv ok "$s")")"
    fi
  done
}
if selected B1M; then
  b1m_setup && run_rounds B1M b1m_round
  for p in "${pid_m_ma:-}" "${pid_m_mb:-}" "${pid_m_pa:-}" "${pid_m_pb:-}" "${pid_m_echo:-}"; do
    if [ -n "$p" ]; then stop_pid "$p"; fi
  done
fi

# ---------------------------------------------------------------------------------------------
# B1T: the cost of tracing. B1's chain (oha → sidecar A → sidecar B → bench-echo) at B1's rate,
# restarted per variant with a Configuration whose tracing is: off (samplingRate "0"); up
# (samplingRate "1", OTLP/gRPC to oteltest's otelsink, on CPU 0 with the load generator: the
# collector is not under test); down (samplingRate "1", OTLP/gRPC to a port where nothing
# listens). Rounds interleave off, up, down; the added p50/p99 are up − off and down − off.
# `scripts/bench.sh --only B1T [--rounds N]`; its table goes to target/bench/b1t.md.
b1t_variant() {
  local r=$1 v=$2 cfg="$tmp/b1t-$2.yaml" tracing s f pid_tb pid_ta
  case $v in
    off) tracing="{samplingRate: '0'}" ;;
    up) tracing="{samplingRate: '1', otel: {endpointAddress: '127.0.0.1:$p_otel', protocol: grpc, isSecure: false}}" ;;
    down) tracing="{samplingRate: '1', otel: {endpointAddress: '127.0.0.1:$p_dead', protocol: grpc, isSecure: false}}" ;;
  esac
  printf 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: b1t}\nspec:\n  tracing: %s\n' "$tracing" >"$cfg"
  sidecar_args b p_b "$tmp/components/mem" "$tmp/data" "$p_echo"
  start_bg "b1t-$v-b" taskset -c 1 "${sidecar_cmd[@]}" --config "$cfg"
  pid_tb=$last_pid
  sidecar_args a p_a "$tmp/components/mem" "$tmp/data"
  start_bg "b1t-$v-a" taskset -c 1 "${sidecar_cmd[@]}" --config "$cfg"
  pid_ta=$last_pid
  if wait_http "http://127.0.0.1:${p_b[0]}/v1.0/healthz/outbound" 204 20 "$pid_tb" &&
    wait_http "http://127.0.0.1:${p_a[0]}/v1.0/healthz/outbound" 204 20 "$pid_ta"; then
    oha -q "$rate" -n $((rate * warm_secs)) -m POST -D "$tmp/body.bin" -T application/octet-stream "$url_b1t" >/dev/null 2>>"$tmp/logs/oha.log"
    f="$raw/b1t-$v-r$r.json"
    oha_open "$f" "$url_b1t" -m POST -D "$tmp/body.bin" -T application/octet-stream
    s=$("$UTIL" oha "$f")
    check_run B1T "$v r$r" "$s" open
    measure "b1t.$v.p50_us" "$r" "$(kv p50_us "$s")"
    measure "b1t.$v.p99_us" "$r" "$(kv p99_us "$s")"
  else
    fail B1T "$v r$r: the sidecars did not become healthy: $(log_tail "$tmp/logs/b1t-$v-a.log") $(log_tail "$tmp/logs/b1t-$v-b.log")"
  fi
  stop_pid "$pid_ta"
  stop_pid "$pid_tb"
}
b1t_round() {
  local v
  for v in off up down; do b1t_variant "$1" "$v"; done
}
# b1t_table: medians over the rounds, as a Markdown table on stdout.
b1t_table() {
  awk -F'\t' '
    function median(key,   n, i, j, t, a) {
      n = split(vals[key], a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
      if (n == 0) return ""
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "m" && $2 ~ /^b1t\./ { vals[$2] = vals[$2] " " $4; rounds[$3] = 1 }
    END {
      n = 0; for (r in rounds) n++
      off50 = median("b1t.off.p50_us"); off99 = median("b1t.off.p99_us")
      printf "| collector | p50 | p99 | added p50 vs off | added p99 vs off |\n|---|---|---|---|---|\n"
      split("off up down", vs, " ")
      for (i = 1; i <= 3; i++) {
        v = vs[i]; p50 = median("b1t." v ".p50_us"); p99 = median("b1t." v ".p99_us")
        if (p50 == "") { printf "| %s | – | – | – | – |\n", v; continue }
        if (v == "off") { printf "| off (tracing disabled) | %d µs | %d µs | – | – |\n", p50, p99; continue }
        printf "| %s | %d µs | %d µs | %+d µs | %+d µs |\n", v, p50, p99, p50 - off50, p99 - off99
      }
      printf "\nMedians of %d rounds, %s req/s open loop through two sidecars (samplingRate 1 when on).\n", n, RATE
    }' RATE="$rate" "$results"
}
if selected B1T; then
  ensure_otel_sink
  read -r p_otel p_otel_http p_dead < <("$UTIL" free-ports 3)
  start_bg b1t-otelsink taskset -c 0 "$TANDEM_OTEL_PYTHON" "$root/sidecar/tests/traces/otlp_receiver.py" "$p_otel" "$p_otel_http"
  pid_otel=$last_pid
  # The receiver's span lines go to its log; they show that "up" really received spans.
  sleep 2
  start_bg b1t-echo taskset -c 1 "$ECHO" --port "$p_echo"
  pid_techo=$last_pid
  url_b1t="http://127.0.0.1:${p_a[0]}/v1.0/invoke/b/method/echo"
  if ! kill -0 "$pid_otel" 2>/dev/null; then
    fail B1T "the OTLP receiver (oteltest) did not start: $(log_tail "$tmp/logs/b1t-otelsink.log")"
  elif ! wait_http "http://127.0.0.1:$p_echo/" 200 10 "$pid_techo"; then
    fail B1T "bench-echo did not start: $(log_tail "$tmp/logs/b1t-echo.log")"
  else
    run_rounds B1T b1t_round
    meta b1t_spans_received "$(grep -c '"traceId"' "$tmp/logs/b1t-otelsink.log" || true)"
    b1t_table >"$out_dir/b1t.md"
    cat "$out_dir/b1t.md" >&2
  fi
  stop_pid "$pid_techo"
  stop_pid "$pid_otel"
  rm -f "$tmp/logs/b1t-otelsink.log"  # large; not copied into raw/
fi

# ---------------------------------------------------------------------------------------------
# Redis (B5's second variant, B7), on CPU 1.
redis_up=0
start_redis() {
  ((redis_up)) && return 0
  start_bg redis taskset -c 1 redis-server --port "$p_redis" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
  pid_redis=$last_pid
  local i
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$p_redis" ping 2>/dev/null | grep -q PONG && { redis_up=1; return 0; }
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# B5: cold start, exec → first 2xx; hello server, sidecar with in-memory components, sidecar with
# a Redis state store; interleaved rounds of $b5_runs runs each.
b5_redis_broken=0
b5_variant() {
  local r=$1 name=$2 url=$3
  shift 3
  local out="$tmp/b5-$name.out" err="$tmp/b5-$name.err"
  if taskset -c 0 "$COLD" --runs "$b5_runs" --warmup 1 --cpu 1 --timeout-ms 10000 --url "$url" \
    --log "$tmp/logs/b5-$name.log" -- "$@" >"$out" 2>"$err"; then
    sed -n 's/^sample_ms=//p' "$out" | while read -r v; do measure "b5.$name.sample_ms" "$r" "$v"; done
    note "B5 $name r$r: $(grep '^summary' "$out")"
    return 0
  fi
  return 1
}
b5_round() {
  local r=$1
  rm -rf "$tmp/cold-data"
  b5_variant "$r" hello "http://127.0.0.1:$p_hello/" "$ECHO" --port "$p_hello" ||
    fail B5 "hello server: $(log_tail "$tmp/b5-hello.err" 3)"
  sidecar_args cold p_c "$tmp/components/mem" "$tmp/cold-data"
  b5_variant "$r" inmem "http://127.0.0.1:${p_c[0]}/v1.0/healthz/outbound" "${sidecar_cmd[@]}" ||
    fail B5 "in-memory components: $(log_tail "$tmp/b5-inmem.err" 3) | sidecar log: $(log_tail "$tmp/logs/b5-inmem.log" 3)"
  if ((!b5_redis_broken)); then
    sidecar_args cold p_c "$tmp/components/redis" "$tmp/cold-data"
    if ! b5_variant "$r" redis "http://127.0.0.1:${p_c[0]}/v1.0/healthz/outbound" "${sidecar_cmd[@]}"; then
      b5_redis_broken=1
      fail B5 "with a local Redis state store (state.redis): $(log_tail "$tmp/b5-redis.err" 3) | sidecar log: $(log_tail "$tmp/logs/b5-redis.log" 3)"
    fi
  fi
}
if selected B5; then
  if start_redis; then
    run_rounds B5 b5_round
  else
    fail B5 "redis-server did not start: $(log_tail "$tmp/logs/redis.log")"
  fi
fi

# ---------------------------------------------------------------------------------------------
# B7: state GET/SET through a sidecar to Redis (100-byte values, 10 000 keys) vs redis-benchmark.
value100="\"$(head -c 98 /dev/zero | tr '\0' 'v')\""  # a JSON string of 100 bytes
b7_setup() {
  start_redis || { fail B7 "redis-server did not start: $(log_tail "$tmp/logs/redis.log")"; return 1; }
  say "B7: sidecar S with a state.redis store"
  if ! start_sidecar sidecar_s s p_s "$tmp/components/redis"; then
    fail B7 "the sidecar with a state.redis component did not become healthy within 20 s (is state.redis implemented yet?): $(log_tail "$tmp/logs/sidecar_s.log")"
    return 1
  fi
  pid_s=$last_pid
  # The bare HTTP round trip B7's sidecar share is measured against: GET on a hello server.
  start_bg echo7 taskset -c 1 "$ECHO" --port "$p_echo7"
  pid_echo7=$last_pid
  wait_http "http://127.0.0.1:$p_echo7/" 200 10 "$pid_echo7" || { fail B7 "bench-echo did not start: $(log_tail "$tmp/logs/echo7.log")"; return 1; }
  local base="http://127.0.0.1:${p_s[0]}/v1.0/state/statestore" code got
  code=$(curl -s -o "$tmp/b7-probe.out" -w '%{http_code}' --max-time 5 -X POST -H 'content-type: application/json' \
    -d "[{\"key\":\"bench-probe\",\"value\":$value100}]" "$base" || true)
  got=$(curl -s --max-time 5 "$base/bench-probe" || true)
  if [ "$code" != 204 ] || [ "$got" != "$value100" ]; then
    fail B7 "state.redis round trip failed: save → HTTP $code ($(head -c 300 "$tmp/b7-probe.out")), get → '${got:0:200}'"
    return 1
  fi
  note "pre-loading 10 000 keys (k0000…k9999, 100-byte values)"
  local batch i
  for ((batch = 0; batch < 20; batch++)); do
    {
      printf '['
      for ((i = batch * 500; i < batch * 500 + 500; i++)); do
        ((i > batch * 500)) && printf ','
        printf '{"key":"k%04d","value":%s}' "$i" "$value100"
      done
      printf ']'
    } >"$tmp/preload.json"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST -H 'content-type: application/json' \
      --data-binary @"$tmp/preload.json" "$base" || true)
    [ "$code" = 204 ] || { fail B7 "pre-loading keys failed: HTTP $code"; return 1; }
  done
  got=$(curl -s --max-time 5 "$base/k9999" || true)
  [ "$got" = "$value100" ] || { fail B7 "k9999 did not read back after pre-loading: '${got:0:200}'"; return 1; }
  note "redis DBSIZE: $(redis-cli -p "$p_redis" dbsize)"
  printf '[{"key":"k0042","value":%s}]' "$value100" >"$tmp/set.json"
  url_get="http://127.0.0.1:${p_s[0]}/v1.0/state/statestore/k[0-9]{4}"
  url_set="$base"
  # Warm the sidecar's Redis connections.
  oha -q "$rate" -n $((rate * warm_secs)) --rand-regex-url "$url_get" >/dev/null 2>>"$tmp/logs/oha.log"
}
# redis_bench CLIENTS N → "SET rps p50_ms" and "GET rps p50_ms" lines
redis_bench() {
  taskset -c 0 redis-benchmark -h 127.0.0.1 -p "$p_redis" -c "$1" -n "$2" -d 100 -r 10000 -t set,get --csv 2>>"$tmp/logs/redis-benchmark.log" |
    tr -d '"' | awk -F, '$1 == "SET" || $1 == "GET" { print $1, $2, $5 }'
}
b7_round() {
  local r=$1 op rps p50 s f
  while read -r op rps p50; do
    op=${op,,}
    measure "b7.rb16.${op}_rps" "$r" "$rps"
    note "redis-benchmark -c 16 $op: $rps req/s, p50 $p50 ms"
  done < <(redis_bench 16 "$rb_n16")
  while read -r op rps p50; do
    op=${op,,}
    measure "b7.rb1.${op}_rps" "$r" "$rps"
    measure "b7.rb1.${op}_p50_us" "$r" "$(calc "$p50 * 1000")"
    note "redis-benchmark -c 1 $op: $rps req/s, p50 $p50 ms"
  done < <(redis_bench 1 "$rb_n1")
  f="$raw/b7-echo-open-r$r.json"
  oha_open "$f" "http://127.0.0.1:$p_echo7/"
  s=$("$UTIL" oha "$f")
  check_run B7 "hello server GET open loop r$r" "$s" open
  measure b7.echo.get_p50_us "$r" "$(kv p50_us "$s")"
  f="$raw/b7-get-open-r$r.json"
  oha_open "$f" "$url_get" --rand-regex-url
  s=$("$UTIL" oha "$f")
  check_run B7 "sidecar GET open loop r$r" "$s" open
  measure b7.sidecar.get_p50_us "$r" "$(kv p50_us "$s")"
  measure b7.sidecar.get_p99_us "$r" "$(kv p99_us "$s")"
  f="$raw/b7-set-open-r$r.json"
  oha_open "$f" "$url_set" -m POST -D "$tmp/set.json" -T application/json
  s=$("$UTIL" oha "$f")
  check_run B7 "sidecar SET open loop r$r" "$s" open
  measure b7.sidecar.set_p50_us "$r" "$(kv p50_us "$s")"
  measure b7.sidecar.set_p99_us "$r" "$(kv p99_us "$s")"
  f="$raw/b7-get-closed-r$r.json"
  oha_closed "$f" "$url_get" --rand-regex-url
  s=$("$UTIL" oha "$f")
  check_run B7 "sidecar GET closed loop r$r" "$s"
  measure b7.sidecar.get_rps "$r" "$(kv rps "$s")"
  f="$raw/b7-set-closed-r$r.json"
  oha_closed "$f" "$url_set" -m POST -D "$tmp/set.json" -T application/json
  s=$("$UTIL" oha "$f")
  check_run B7 "sidecar SET closed loop r$r" "$s"
  measure b7.sidecar.set_rps "$r" "$(kv rps "$s")"
}
if selected B7; then
  b7_setup && run_rounds B7 b7_round
  if [ -n "${pid_s:-}" ]; then stop_pid "$pid_s"; fi
  if [ -n "${pid_echo7:-}" ]; then stop_pid "$pid_echo7"; fi
fi

# ---------------------------------------------------------------------------------------------
# B8: pub/sub end to end (pubsub-bench, one call per round: fresh sidecars and redis-server, each
# warmed up). The bench process (closed- and open-loop publishers, the subscriber app,
# redis-benchmark) on CPU 0; the sidecar and redis-server on CPU 1. Its records go into the
# round's buffer, so the report's B8 rows are medians of per-round results like the others.
if ((quick)); then b8_args=(--messages 3000 --secs 2); else b8_args=(); fi
b8_round() {
  local r=$1
  if ! taskset -c 0 "$PUBSUB" --sidecar "$SIDECAR" --dir "$tmp/b8-r$r" --cpu 1 --rounds 1 --first-round "$r" \
    --records "$round_out" "${b8_args[@]}" >"$raw/b8-r$r.md" 2>"$tmp/logs/b8-r$r.log"; then
    fail B8 "pubsub-bench r$r: $(log_tail "$tmp/logs/b8-r$r.log" 3)"
  fi
  for f in "$tmp/b8-r$r"/*.log; do [ -e "$f" ] && cp "$f" "$raw/b8-r$r-$(basename "$f")"; done
  return 0
}
if selected B8; then
  run_rounds B8 b8_round
fi

# ---------------------------------------------------------------------------------------------
# B9: actors (actors-bench, one run; it interleaves its own warm rounds). The bench process (load
# and the in-process actor app) on CPU 0, every sidecar on CPU 1, the embedded SQLite store.
if selected B9; then
  la=$(wait_quiet)
  say "B9 actors (loadavg $la)"
  if ((quick)); then b9_args=(--ids 500 --rounds 1 --warm-secs 2 --reminders 5000 --reminder-actors 500); else b9_args=(); fi
  if taskset -c 0 "$ACTORS" --sidecar "$SIDECAR" --dir "$tmp/b9" --cpu 1 "${b9_args[@]}" >"$out_dir/b9.md" 2>"$tmp/logs/b9.log"; then
    cat "$out_dir/b9.md" >&2
  else
    fail B9 "actors-bench: $(log_tail "$tmp/logs/b9.log" 3)"
  fi
  cp "$tmp"/b9/*.log "$raw/" 2>/dev/null || true
fi

# ---------------------------------------------------------------------------------------------
# B10: the operator (operator-bench): a fresh envtest control plane per round with N Components and
# N Dapr-enabled Deployments; the release tandem-operator with --noop-reconcile (baseline), then
# for real, over the same objects. The apiserver, etcd, the operator and the bench share both
# CPUs (no pinning: the operator is measured with its API server, as it runs). It runs only when
# the envtest binaries are there: KUBEBUILDER_ASSETS, or scripts/envtest.sh's cache.
b10_assets="${KUBEBUILDER_ASSETS:-${TANDEM_ENVTEST_DIR:-$HOME/.cache/tandem/envtest/v1.20.2}}"
if ((quick)); then b10_n=300 b10_timeout=120; else b10_n=5000 b10_timeout=300; fi
b10_round() {
  local r=$1
  if KUBEBUILDER_ASSETS="$b10_assets" "$OPBENCH" --n "$b10_n" --timeout-s "$b10_timeout" \
    --records "$round_out" --round "$r" >"$raw/b10-r$r.md" 2>"$tmp/logs/b10-r$r.log"; then
    note "B10 r$r: $(grep -E 'reconciles/s|first reconcile|RSS at rest' "$raw/b10-r$r.md" | tr -s ' |' ' ' | tr '\n' ';')"
  else
    warn B10 "r$r: operator-bench failed: $(log_tail "$tmp/logs/b10-r$r.log" 3)"
  fi
}
if selected B10; then
  if [ -x "$b10_assets/kube-apiserver" ] && [ -x "$b10_assets/etcd" ]; then
    meta b10_n "$b10_n"
    run_rounds B10 b10_round
  else
    fail B10 "not run: no envtest binaries in $b10_assets (scripts/envtest.sh builds them)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# B11: gRPC. grpc-bench's echo app (AppCallback/OnInvoke) behind sidecar GB (--app-protocol grpc);
# grpc-bench (CPU 0) calls it directly, through an nginx grpc_pass hop, through sidecars GA → GB
# by dapr-app-id proxying and by InvokeService, and over HTTP (/v1.0/invoke); GetState over gRPC
# vs GET /v1.0/state on GA's in-memory store. Latency open loop at $rate, throughput closed loop.
b11_paths_open="direct nginx proxy invoke http state_grpc state_http"
b11_paths_closed="direct nginx proxy state_grpc state_http"
b11_key=b11-key
# b11_target PATH → grpc-bench load's arguments for that path
b11_target() {
  case $1 in
    direct) echo "--kind echo --target 127.0.0.1:$p_gapp" ;;
    nginx) echo "--kind echo --target 127.0.0.1:$p_gnginx" ;;
    proxy) echo "--kind echo --target 127.0.0.1:${p_ga[4]} --app-id grpc-b" ;;
    invoke) echo "--kind invoke-service --target 127.0.0.1:${p_ga[4]} --app-id grpc-b" ;;
    http) echo "--kind http-post --target http://127.0.0.1:${p_ga[0]}/v1.0/invoke/grpc-b/method/echo" ;;
    state_grpc) echo "--kind get-state --target 127.0.0.1:${p_ga[4]} --store statestore --key $b11_key" ;;
    state_http) echo "--kind http-get --target http://127.0.0.1:${p_ga[0]}/v1.0/state/statestore/$b11_key" ;;
  esac
}
# b11_procs PATH → "name:pid …", the processes under test on that path
b11_procs() {
  case $1 in
    direct) echo "app:$pid_gapp" ;;
    nginx) echo "nginx:$pid_gnginx_worker app:$pid_gapp" ;;
    proxy | invoke | http) echo "sidecar_a:$pid_ga sidecar_b:$pid_gb app:$pid_gapp" ;;
    state_grpc | state_http) echo "sidecar_a:$pid_ga" ;;
  esac
}
# b11_load OUT PATH ARGS…: one grpc-bench run on CPU 0; its summary line into OUT
b11_load() {
  local out=$1 path=$2
  shift 2
  # shellcheck disable=SC2046 # b11_target's words are separate arguments
  taskset -c 0 "$GRPC" load $(b11_target "$path") --conns "$conns" "$@" >"$out" 2>>"$tmp/logs/grpc-bench.log"
}
b11_setup() {
  local gp code got
  read -r -a gp < <("$UTIL" free-ports 12)
  p_gapp=${gp[0]} p_gnginx=${gp[1]} p_ga=("${gp[@]:2:5}") p_gb=("${gp[@]:7:5}")
  say "B11: grpc-bench app, nginx (grpc_pass) and sidecars GA and GB (--app-protocol grpc) on CPU 1"
  start_bg grpc_app taskset -c 1 "$GRPC" app --port "$p_gapp"
  pid_gapp=$last_pid
  start_nginx nginx_grpc "
  upstream grpc_app {
    server 127.0.0.1:$p_gapp;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$p_gnginx http2;
    location / {
      grpc_pass grpc://grpc_app;
    }
  }" || { fail B11 "$nginx_error"; return 1; }
  pid_gnginx=$last_pid pid_gnginx_worker=$nginx_worker
  sidecar_args grpc-b p_gb "$tmp/components/mem" "$tmp/data" "$p_gapp"
  start_bg sidecar_gb taskset -c 1 "${sidecar_cmd[@]}" --app-protocol grpc
  pid_gb=$last_pid
  wait_http "http://127.0.0.1:${p_gb[0]}/v1.0/healthz/outbound" 204 20 "$pid_gb" ||
    { fail B11 "sidecar GB did not become healthy: $(log_tail "$tmp/logs/sidecar_gb.log")"; return 1; }
  start_sidecar sidecar_ga grpc-a p_ga "$tmp/components/mem" ||
    { fail B11 "sidecar GA did not become healthy: $(log_tail "$tmp/logs/sidecar_ga.log")"; return 1; }
  pid_ga=$last_pid
  code=$(curl -s -o "$tmp/b11-save.out" -w '%{http_code}' --max-time 5 -X POST -H 'content-type: application/json' \
    -d "[{\"key\":\"$b11_key\",\"value\":$value100}]" "http://127.0.0.1:${p_ga[0]}/v1.0/state/statestore" || true)
  got=$(curl -s --max-time 5 "http://127.0.0.1:${p_ga[0]}/v1.0/state/statestore/$b11_key" || true)
  if [ "$code" != 204 ] || [ "$got" != "$value100" ]; then
    fail B11 "in-memory state round trip: save → HTTP $code ($(head -c 300 "$tmp/b11-save.out")), get → '${got:0:200}'"
    return 1
  fi
  # Correctness first: every path answers (grpc-bench checks each echo and state read), and the
  # connections are warm.
  local path s
  for path in $b11_paths_open; do
    b11_load "$tmp/b11-warm.out" "$path" --rate "$rate" --secs "$warm_secs" || true
    s=$(cat "$tmp/b11-warm.out" 2>/dev/null || true)
    if [ -z "$s" ] || [ "$(kv errors "$s")" != 0 ] || [ "$(kv ok "$s")" = 0 ]; then
      fail B11 "$path does not answer: ${s:-no summary}; $(log_tail "$tmp/logs/grpc-bench.log" 2)"
      return 1
    fi
    note "B11 warm-up $path: $s"
  done
}
b11_round() {
  local r=$1 path s p n name
  declare -A before=()
  for path in $b11_paths_open; do
    for p in $(b11_procs "$path"); do before[${p%%:*}]=$(cpu_us "${p#*:}"); done
    b11_load "$raw/b11-$path-open-r$r.txt" "$path" --rate "$rate" --secs "$lat_secs" ||
      warn B11 "$path r$r: grpc-bench failed: $(log_tail "$tmp/logs/grpc-bench.log" 2)"
    s=$(cat "$raw/b11-$path-open-r$r.txt" 2>/dev/null || true)
    [ -n "$s" ] || continue
    n=$(kv ok "$s")
    for p in $(b11_procs "$path"); do
      name=${p%%:*}
      ((n > 0)) && measure "b11cpu.$path.$name.cpu_us_per_req" "$r" "$(calc "($(cpu_us "${p#*:}") - ${before[$name]}) / $n")"
    done
    check_run B11 "$path open r$r" "$s" open
    measure "b11.$path.p50_us" "$r" "$(kv p50_us "$s")"
    measure "b11.$path.p99_us" "$r" "$(kv p99_us "$s")"
    measure "b11.$path.rps" "$r" "$(kv rps "$s")"
  done
  for path in $b11_paths_closed; do
    b11_load "$raw/b11-$path-closed-r$r.txt" "$path" --closed-secs "$tput_secs" ||
      warn B11 "$path closed r$r: grpc-bench failed: $(log_tail "$tmp/logs/grpc-bench.log" 2)"
    s=$(cat "$raw/b11-$path-closed-r$r.txt" 2>/dev/null || true)
    [ -n "$s" ] || continue
    check_run B11 "$path closed r$r" "$s"
    measure "b11t.$path.rps" "$r" "$(kv rps "$s")"
  done
}
if selected B11; then
  b11_setup && run_rounds B11 b11_round
  for p in "${pid_ga:-}" "${pid_gb:-}" "${pid_gnginx:-}" "${pid_gapp:-}"; do
    if [ -n "$p" ]; then stop_pid "$p"; fi
  done
fi

# ---------------------------------------------------------------------------------------------
meta duration "$((SECONDS / 60)) min $((SECONDS % 60)) s"
cp "$results" "$out_dir/results.tsv"
cp "$tmp"/logs/*.log "$raw/" 2>/dev/null || true
say "report (target/bench/results.md), $((SECONDS / 60)) min $((SECONDS % 60)) s"
"$UTIL" report --results "$results" --out "$out_dir/results.md"
if selected B1T && [ -s "$out_dir/b1t.md" ]; then
  printf '\n### B1T, the cost of tracing\n\n' >>"$out_dir/results.md"
  cat "$out_dir/b1t.md" >>"$out_dir/results.md"
fi
if selected B9 && [ -s "$out_dir/b9.md" ]; then
  printf '\n### B9, actors (actors-bench)\n\n' >>"$out_dir/results.md"
  cat "$out_dir/b9.md" >>"$out_dir/results.md"
fi
