# shellcheck shell=bash
# The components the invocation benchmarks run with (B1–B4, and scripts/callgrind-hop.sh, which
# counts B2's hop): an in-memory state store and the environment secret store.

# write_memory_components DIR: writes them into DIR (created if missing).
write_memory_components() {
  mkdir -p "$1"
  cat >"$1/statestore.yaml" <<EOF
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
EOF
  cat >"$1/secrets.yaml" <<EOF
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: envsecrets
spec:
  type: secretstores.local.env
  version: v1
EOF
}
