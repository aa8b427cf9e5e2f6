#!/usr/bin/env bash
# install-deps.sh - installs every build and test dependency of rwgate from
# Debian 12 packages. Idempotent: installs only what is missing. Runs apt-get
# as root, through sudo otherwise.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev
  libsnappy-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev libssl-dev
  libyaml-dev libpcre2-dev libxxhash-dev zlib1g-dev libgnutls28-dev libzstd-dev)
# libgnutls28-dev: libmicrohttpd (Debian) speaks TLS through GnuTLS; rwgate
# checks server certificate/key pairs with it before serving them.
# The web UI fetches its one runtime dependency (uPlot, pinned in
# ui/package-lock.json) with npm at build time; a machine that has node and
# npm from elsewhere keeps them (-DRWGATE_UI=OFF builds without both).
if ! command -v npm >/dev/null 2>&1; then
  BUILD_PKGS+=(nodejs npm)
fi
# Real peers for the end-to-end tests and the benchmark; chromium for the
# web UI's browser tests; clang with its runtimes (libFuzzer,
# AddressSanitizer, LeakSanitizer) for the fuzz targets.
TEST_PKGS=(python3 curl openssl prometheus prometheus-alertmanager etcd-server
  prometheus-node-exporter victoria-metrics sqlite3 chromium clang libclang-rt-14-dev)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" != "--build-only" ]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start their services; the tests run their own copies
# on free loopback ports, so stop the system ones where systemd runs them.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for s in prometheus prometheus-alertmanager etcd prometheus-node-exporter victoria-metrics; do
    $SUDO systemctl stop "$s" >/dev/null 2>&1 || true
  done
fi
echo "install-deps: done"
