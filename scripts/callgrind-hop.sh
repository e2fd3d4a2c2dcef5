#!/usr/bin/env bash
# Instructions per request of one sidecar hop, under callgrind: numbers that do not move with the
# machine's noise, for proving a lever before timing it (issue 17; BENCHMARKS.md).
#
#   scripts/callgrind-hop.sh SIDECAR_BIN [SECONDS] [TOP]
#
# bench-echo (target/release, or $ECHO) as the app; the sidecar (B2's components) under
# `valgrind --tool=callgrind` on CPU 1; `wrk -t1 -c16` POSTing 1 KiB to /v1.0/invoke/b/method/echo
# (self-invocation) on CPU 0. Counters are zeroed after a 3 s warm-up and dumped after SECONDS
# (default 20). Prints the instructions per request and the TOP (default 25) functions by self cost;
# CALLGRIND_KEEP=<file> keeps the dump. CALLGRIND_PATH=chain counts B1's caller instead: a sidecar
# with no app calling b, a plain sidecar in front of bench-echo (both on CPU 1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/bench-components.sh
source "$root/scripts/lib/bench-components.sh"
bin=$(realpath "$1")
secs=${2:-20}
top=${3:-25}
echo_bin=${ECHO:-${CARGO_TARGET_DIR:-$root/target}/release/bench-echo}
for tool in valgrind callgrind_control wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "callgrind-hop: $tool is missing (apt install valgrind wrk)" >&2; exit 1; }
done
[ -x "$echo_bin" ] || { echo "callgrind-hop: no bench-echo at $echo_bin (cargo build --release -p tandem-bench)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$tmp/data"
write_memory_components "$tmp/res"
printf 'wrk.method = "POST"\nwrk.body = string.rep("x", 1024)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' >"$tmp/post.lua"
p_echo=$(free_port) p_http=$(free_port)
taskset -c 0 "$echo_bin" --port "$p_echo" >"$tmp/echo.log" 2>&1 &
pids+=($!)
# sidecar_flags APP-ID: the ports and directories every sidecar here takes.
sidecar_flags() {
  echo --app-id "$1" --dapr-public-port "$(free_port)" --dapr-internal-grpc-port "$(free_port)" \
    --metrics-port "$(free_port)" --dapr-grpc-port "$(free_port)" --dapr-listen-addresses 127.0.0.1 \
    --data-dir "$tmp/data" --resources-path "$tmp/res"
}
counted=(b --app-port "$p_echo")
if [ "${CALLGRIND_PATH:-hop}" = chain ]; then
  # B1's caller is counted instead: sidecar a (no app) under callgrind calls b, a plain sidecar
  # with the app, found through the shared data directory.
  # shellcheck disable=SC2046
  RUST_LOG=warn taskset -c 1 "$bin" $(sidecar_flags b) --app-port "$p_echo" \
    --dapr-http-port "$(free_port)" >"$tmp/callee.log" 2>&1 &
  pids+=($!)
  counted=(a)
fi
# shellcheck disable=SC2046
RUST_LOG=warn taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$bin" \
  $(sidecar_flags "${counted[0]}") "${counted[@]:1}" --dapr-http-port "$p_http" \
  >"$tmp/sidecar.log" 2>&1 &
sidecar=$!
pids+=("$sidecar")
for _ in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST -d x "http://127.0.0.1:$p_http/v1.0/invoke/b/method/echo")" = 200 ] && break
  sleep 0.2
done
url="http://127.0.0.1:$p_http/v1.0/invoke/b/method/echo"
taskset -c 0 wrk -t1 -c16 -d3s -s "$tmp/post.lua" "$url" >/dev/null
callgrind_control -z "$sidecar" >/dev/null
out=$(taskset -c 0 wrk -t1 -c16 -d"${secs}s" -s "$tmp/post.lua" "$url")
callgrind_control -d "$sidecar" >/dev/null
# The dump is written by the sidecar's process: wait for its file (10 s at most).
for _ in $(seq 1 100); do
  compgen -G "$tmp/cg.out.*" >/dev/null && break
  sleep 0.1
done
requests=$(awk '/requests in/ {print $1}' <<<"$out")
if grep -q Non-2xx <<<"$out"; then echo "callgrind-hop: non-2xx answers: $out" >&2; exit 1; fi
dump=$(ls -t "$tmp"/cg.out.* | head -1)
# CALLGRIND_KEEP=<file>: keep the dump for callgrind_annotate (e.g. --tree=caller).
[ -z "${CALLGRIND_KEEP:-}" ] || cp "$dump" "$CALLGRIND_KEEP"
# Self cost per function (callgrind's format: cost lines after `fn=`, minus the inclusive cost
# lines that follow each `calls=`), divided by the requests served.
python3 - "$dump" "$requests" "$top" <<'PY'
import collections, re, sys
path, requests, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names, cost, fn, after_call = {}, collections.Counter(), None, False
def name(token):
    m = re.match(r'\((\d+)\)(?:\s+(.*))?', token)
    if not m:
        return token
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), token)
for line in open(path, errors='replace'):
    line = line.rstrip('\n')
    if line.startswith('fn='):
        fn = name(line[3:])
    elif line.startswith('cfn='):
        name(line[4:])
    elif line.startswith('calls='):
        after_call = True
    elif line[:1].isdigit() or line[:1] in '+-*':
        if after_call:
            after_call = False
        elif fn and len(line.split()) >= 2:
            cost[fn] += int(line.split()[1])
total = sum(cost.values())
print(f"requests {requests}, instructions {total:,}, per request {total // requests:,}")
for f, c in cost.most_common(top):
    print(f"{100 * c / total:5.1f}% {c // requests:8,}  {f[:140]}")
PY
