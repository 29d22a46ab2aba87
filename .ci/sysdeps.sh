#!/usr/bin/env bash
# Install the Debian packages the test-suite needs, only when they are missing.
set -euo pipefail
need=()
# Debian's prometheus package: promtool checks the config and rules, and the server
# itself runs in tests/unit/test_monitoring_prometheus.py (and the live-stack test).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  need+=(prometheus)
fi
# amtool checks monitoring/alertmanager.yml (tests/unit/test_monitoring_config.py); the
# server (Debian names it prometheus-alertmanager) posts to the retrain webhook in
# tests/integration/test_retrain_hook.py.
if ! command -v amtool >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  need+=(prometheus-alertmanager)
fi
# stunnel terminates TLS in front of the embedded broker in tests/integration/test_kafka_tls.py.
if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
  need+=(stunnel4)
fi
# kubectl (its built-in kustomize renders deploy/k8s in tests/unit/test_k8s.py) is not a Debian
# package: it comes with the machine image here and with GitHub's runners.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl not found: tests/unit/test_k8s.py needs it (kubectl kustomize)" >&2
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
