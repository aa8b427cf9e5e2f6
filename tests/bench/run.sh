#!/usr/bin/env bash
# run.sh - the benchmark we judge by: ../shared/bench drives rwgate side by
# side with VictoriaMetrics and Prometheus (Debian packages) on the same
# generated etcd-fleet remote-write traffic, alternating systems, and writes
# tests/bench/results/<preset>.{md,json} with ingest samples/s, CPU per million samples, peak
# RSS, bytes per sample on disk, visibility delay, query latencies and a
# read-back check. Copy the figures into the README's benchmark section.
#   tests/bench/run.sh [PRESET] [ROUNDS] [extra bench.py args]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
preset="${1:-small}"
rounds="${2:-2}"
shift $(( $# > 2 ? 2 : $# )) || true
bench=$(cd "$root/../shared/bench" && pwd)
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rwgate
make -s -C "$bench"
out="$root/tests/bench/results"
mkdir -p "$out"
cd "$bench"
./bench.py run --preset "$preset" --rounds "$rounds" --systems vm,prom \
  --system rwgate="$root/build/rwgate --listen 127.0.0.1:{port} --data {data}" \
  --workdir /tmp/rwbench-rwgate --out "$out/$preset" "$@"
