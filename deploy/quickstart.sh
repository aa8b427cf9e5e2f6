#!/usr/bin/env bash
# quickstart.sh - install what is missing, build a Release rwgate and run it
# in the foreground with its embedded defaults (loopback, ./data). Prints the
# listen address and a Prometheus remote_write snippet to paste.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh --build-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rwgate

LISTEN="${RWGATE_LISTEN:-127.0.0.1:9201}"
cat <<SNIP

rwgate will listen on http://${LISTEN} (data in ./data). Point Prometheus at it:

remote_write:
  - url: http://${LISTEN}/api/v1/write
    # optional: a tenant per cluster
    # headers: { X-Scope-OrgID: my-cluster }

Query it like a Prometheus: http://${LISTEN}/api/v1/query?query=up
Stop with Ctrl-C (the store is persisted on exit).

SNIP
exec ./build/rwgate --listen "${LISTEN}" "$@"
