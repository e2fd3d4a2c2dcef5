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
}

# The SDK clients live in target/sdk (ignored by git): npm's lock file pins @dapr/dapr.
ensure_sdk_clients() {
  local sdk="$root/target/sdk"
  mkdir -p "$sdk"
  command -v node >/dev/null || apt_install nodejs npm
  if [ ! -d "$root/sidecar/tests/sdk/js/node_modules/@dapr/dapr" ]; then
    (cd "$root/sidecar/tests/sdk/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if [ ! -x "$sdk/venv/bin/python" ] || ! "$sdk/venv/bin/python" -c "import dapr.clients" 2>/dev/null; then
    python3 -m venv "$sdk/venv"
    "$sdk/venv/bin/pip" install -q --disable-pip-version-check "dapr==1.19.0"
  fi
  export TANDEM_SDK_JS_DIR="$root/sidecar/tests/sdk/js"
  export TANDEM_SDK_PYTHON="$sdk/venv/bin/python"
}
