#!/usr/bin/env bash
# The official JavaScript SDK's end-to-end suite (dapr/js-sdk, tag v3.6.1: the last one before the
# suite moved to testcontainers) run against tandem-sidecar. A manual measurement tool, not part of
# scripts/test.sh: the suite lives in the SDK's GitHub repository, which CI cannot reach.
#
#   scripts/js-sdk-e2e.sh <js-sdk v3.6.1 checkout> [http|grpc|all]
#
# Prints one line per test file (and protocol for the common/* files, which test both):
#   <mode> <file> passed=N failed=N skipped=N
# and leaves jest's output and each sidecar's log under $JS_E2E_WORK (default: a temp directory).
#
# What it replaces in the SDK's harness (package.json's `test:e2e:*` scripts and
# scripts/test-e2e-common.sh), and nothing else: no test file or assertion is touched.
# - `dapr run ... -- jest` becomes: start tandem-sidecar (built from this worktree with
#   `cargo build -p tandem-sidecar --locked`) with the same app id, app protocol, ports, max body
#   size, API token and TEST_SECRET_* variables, wait for /v1.0/healthz/outbound, run jest on the
#   file with the variables `dapr run` gives its command (APP_ID, APP_PORT, DAPR_HTTP_PORT,
#   DAPR_GRPC_PORT; scripts/test-e2e-common.sh runs jest without them), stop the sidecar. The ports the tests hard-code are kept: http/* 50000 (HTTP API) with the
#   app on 50001; grpc/* 50000 (gRPC API) with the app on 50001; common/* 3500 (HTTP) with the app
#   on 3501 and 50000 (gRPC) with the app on 50001. The ports `dapr run` would pick at random
#   (the other API port, internal, public, metrics) are fixed ones that no test uses.
# - The daprd containers' Redis and MQTT broker (EMQX) become a private redis-server and mosquitto
#   on loopback; mosquitto takes the suite's MQTT credentials (admin/public). They listen on
#   JS_E2E_REDIS_PORT (16379) and JS_E2E_MQTT_PORT (11883) because 6379/1883 are often taken,
#   so the component YAMLs are the suite's own with `localhost:6379`/`localhost:1883` rewritten to
#   those ports. Redis is flushed before each file. `docker exec dapr_redis redis-cli ...` (the
#   configuration tests) goes to that Redis through a `docker` shim on PATH.
# - Components of types Tandem does not implement are left out, and the tests that use them fail
#   for that reason: configuration.redis (config-redis) and crypto.dapr.jwks (crypto-local), whose
#   APIs Tandem does not serve yet, and state.mongodb (state-mongodb, the query tests): no MongoDB
#   package on Debian.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js="$(cd "${1:?usage: scripts/js-sdk-e2e.sh <js-sdk checkout> [http|grpc|all]}" && pwd)"
mode="${2:-all}"
redis_port="${JS_E2E_REDIS_PORT:-16379}"
mqtt_port="${JS_E2E_MQTT_PORT:-11883}"
work="${JS_E2E_WORK:-$(mktemp -d /tmp/js-sdk-e2e.XXXXXX)}"
mkdir -p "$work"

# TANDEM_SIDECAR_BIN measures another build (e.g. main's, for a before/after comparison).
bin="${TANDEM_SIDECAR_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build -q -p tandem-sidecar --locked)
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/tandem-sidecar"
fi

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM

wait_port() { # host port what
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$3 did not listen on $1:$2" >&2
  return 1
}

# --- backends -------------------------------------------------------------------------------------
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --logfile "$work/redis.log" &
pids+=("$!")
mosquitto_passwd -b -c "$work/mqtt-passwd" admin public 2>/dev/null
cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous false
password_file $work/mqtt-passwd
persistence false
user root
log_dest file $work/mosquitto.log
EOF
/usr/sbin/mosquitto -c "$work/mosquitto.conf" &
pids+=("$!")
wait_port 127.0.0.1 "$redis_port" redis-server
wait_port 127.0.0.1 "$mqtt_port" mosquitto

mkdir -p "$work/shim"
cat >"$work/shim/docker" <<EOF
#!/usr/bin/env bash
# docker exec dapr_redis redis-cli ARGS -> redis-cli -p $redis_port ARGS
[ "\$1" = exec ] && [ "\$2" = dapr_redis ] && [ "\$3" = redis-cli ] || { echo "docker shim: \$*" >&2; exit 1; }
shift 3
exec redis-cli -p $redis_port "\$@"
EOF
chmod +x "$work/shim/docker"

# The suite's components, pointed at the private backends.
resources() { # suite dir -> our copy
  local out="$work/resources/$(echo "$1" | tr / -)"
  rm -rf "$out" && mkdir -p "$out"
  local f
  for f in "$js/$1"/*.yaml; do
    # Types Tandem has no implementation of: left out (the sidecar refuses to start with them).
    if grep -Eq "type: (configuration\.redis|crypto\.dapr\.jwks|state\.mongodb)$" "$f"; then continue; fi
    sed -e "s/localhost:6379/127.0.0.1:$redis_port/g" -e "s/localhost:1883/127.0.0.1:$mqtt_port/g" \
      "$f" >"$out/$(basename "$f")"
  done
  echo "$out"
}
all_components="$(resources test/components)"
common_components="$(resources test/components/common)"

# --- the SDK ----------------------------------------------------------------------------------------
if [ ! -d "$js/node_modules/jest" ]; then
  (cd "$js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
fi
[ -f "$js/src/version.ts" ] || (cd "$js" && bash scripts/prebuild.sh >/dev/null)

# --- sidecars ---------------------------------------------------------------------------------------
sidecar_pids=()
start_sidecar() { # name http-port grpc-port base-port app-port protocol resources [extra args...]
  local name="$1" http="$2" grpc="$3" base="$4" app="$5" protocol="$6" res="$7"
  shift 7
  rm -rf "$work/data-$name"
  TEST_SECRET_1=secret_val_1 TEST_SECRET_2=secret_val_2 "$bin" --app-id "$name" \
    --app-port "$app" --app-protocol "$protocol" --dapr-http-port "$http" --dapr-grpc-port "$grpc" \
    --dapr-public-port "$base" --dapr-internal-grpc-port "$((base + 1))" --metrics-port "$((base + 2))" \
    --dapr-listen-addresses 127.0.0.1 --resources-path "$res" --data-dir "$work/data-$name" "$@" \
    >>"$work/sidecar-$name.log" 2>&1 &
  sidecar_pids+=("$!")
  pids+=("$!")
  local i
  for i in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$http/v1.0/healthz/outbound"; then return 0; fi
    sleep 0.1
  done
  echo "sidecar $name did not become ready; see $work/sidecar-$name.log" >&2
  return 1
}
stop_sidecars() {
  local pid
  for pid in "${sidecar_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  sidecar_pids=()
}

# --- jest --------------------------------------------------------------------------------------------
run_file() { # label file [jest -t pattern] (JEST_ENV: `dapr run`'s variables for the app command)
  local label="$1" file="$2" pattern="${3:-}"
  local out="$work/$(echo "$label-$file" | tr / -)"
  redis-cli -p "$redis_port" flushall >/dev/null
  local args=(--runInBand --forceExit --coverage=false --json --outputFile="$out.json" "$file")
  [ -n "$pattern" ] && args+=(-t "$pattern")
  (cd "$js" && env ${JEST_ENV:-} PATH="$work/shim:$PATH" npx jest "${args[@]}" >"$out.log" 2>&1) || true
  node -e '
    const fs = require("fs");
    let r;
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { r = null; }
    if (!r) { console.log(`${process.argv[2]} ${process.argv[3]} no result (see ${process.argv[4]})`); process.exit(0); }
    console.log(`${process.argv[2]} ${process.argv[3]} passed=${r.numPassedTests} failed=${r.numFailedTests} skipped=${r.numPendingTests + r.numTodoTests}`);
  ' "$out.json" "$label" "$file" "$out.log"
}

http_mode() {
  local f
  for f in client server actors; do
    local extra=()
    [ "$f" = server ] && extra=(--max-body-size 10Mi)
    start_sidecar test-suite 50000 50030 50020 50001 http "$all_components" "${extra[@]}"
    JEST_ENV="APP_ID=test-suite APP_PORT=50001 DAPR_HTTP_PORT=50000 DAPR_GRPC_PORT=50030" \
      run_file http "test/e2e/http/$f.test.ts"
    stop_sidecars
  done
}

grpc_mode() {
  local f
  for f in client server clientWithApiToken; do
    local extra=()
    [ "$f" = server ] && extra=(--max-body-size 10Mi)
    # package.json gives this file's `dapr run` (sidecar and jest alike) DAPR_API_TOKEN=test.
    if [ "$f" = clientWithApiToken ]; then export DAPR_API_TOKEN=test; fi
    start_sidecar test-suite 50030 50000 50020 50001 grpc "$all_components" "${extra[@]}"
    JEST_ENV="APP_ID=test-suite APP_PORT=50001 DAPR_HTTP_PORT=50030 DAPR_GRPC_PORT=50000" \
      run_file grpc "test/e2e/grpc/$f.test.ts"
    stop_sidecars
    unset DAPR_API_TOKEN
  done
}

common() { # protocol (http|grpc): scripts/test-e2e-common.sh's two sidecars, this protocol's tests
  local f
  for f in client server; do
    start_sidecar test-suite-grpc 50030 50000 50020 50001 grpc "$common_components"
    start_sidecar test-suite-http 3500 50040 50050 3501 http "$common_components"
    # HTTP mode also takes the two query tests, which use the HTTP client without a prefix.
    local pattern=" grpc/"
    [ "$1" = http ] && pattern=" http/|should be able to query state|should return an empty object when result is empty"
    run_file "$1" "test/e2e/common/$f.test.ts" "$pattern"
    stop_sidecars
  done
}

case "$mode" in
  http) http_mode; common http ;;
  grpc) common grpc; grpc_mode ;;
  all) http_mode; common http; common grpc; grpc_mode ;;
  *) echo "mode: http, grpc or all" >&2; exit 64 ;;
esac
echo "logs: $work"
