#!/usr/bin/env bash
# run.sh - the benchmark we judge by: ../shared/bench drives rwgate side by
# side with VictoriaMetrics and Prometheus (Debian packages) on the same
# generated etcd-fleet remote-write traffic, alternating systems, and writes
# tests/bench/results/<preset>.{md,json} with ingest samples/s, CPU per million
# samples, peak RSS, bytes per sample on disk, disk bytes written per sample,
# visibility delay, query latencies and a read-back check. Copy the figures
# into the README's benchmark section.
#   tests/bench/run.sh [PRESET] [ROUNDS] [extra bench.py args]
#   tests/bench/run.sh rules [PRESET] [ROUNDS] [extra rules_bench.py args]
#     rule evaluation time per group against Prometheus with the shipped
#     rule packs (deploy/rules), and ingest with and without rules
#     (tests/bench/rules_bench.py); results in tests/bench/results/rules-<preset>.*
#   tests/bench/run.sh checkpoint [PRESET] [ROUNDS] [extra bench.py args]
#     write latency with checkpoints against without: rwgate with a 4 MiB
#     store.checkpoint_size and 1 MiB WAL segments (a checkpoint - head
#     snapshots - every 4 MiB of WAL, several during the load), with the
#     defaults (8 MiB, 4 MiB segments) and with checkpoints out of reach
#     (64 GiB, 24 h),
#     alternating; results in
#     tests/bench/results/checkpoint-<preset>.* (write p50/p90/p99 per system)
# Presets: small, medium, long, days (15k series x 3 days), wide (~1M series
# x 15 min), tiny. Extra args go to bench.py, e.g. --kill-restart (SIGKILL
# after the queries, restart, time to ready, read everything back) or
# --no-queries. Peers: vm,prom for the short presets; vm alone for days
# (Prometheus refuses samples that old) and wide; SYSTEMS=... overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
if [ "${1:-}" = rules ]; then
  shift
  preset="${1:-medium}"
  rounds="${2:-2}"
  shift $(( $# > 2 ? 2 : $# )) || true
  bench=$(cd "$root/../shared/bench" && pwd)
  ./deploy/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target rwgate
  make -s -C "$bench"
  mkdir -p "$root/tests/bench/results"
  exec python3 "$root/tests/bench/rules_bench.py" --bench "$bench" --rules "$root/deploy/rules" \
    --rwgate "$root/build/rwgate" --preset "$preset" --rounds "$rounds" \
    --out "$root/tests/bench/results/rules-$preset" "$@"
fi
mode=""
if [ "${1:-}" = checkpoint ]; then
  mode=checkpoint
  shift
fi
preset="${1:-small}"
rounds="${2:-2}"
shift $(( $# > 2 ? 2 : $# )) || true
bench=$(cd "$root/../shared/bench" && pwd)
case "$preset" in
  days|wide) systems="${SYSTEMS:-vm}" ;;
  *) systems="${SYSTEMS:-vm,prom}" ;;
esac
extra=()
rwflags=""
if [ "$preset" = days ]; then
  # the read-back check sums three days of samples per metric in one query:
  # the peers run it without a sample limit
  rwflags="--set query.max_samples=1000000000"
fi
if [ "$preset" = wide ]; then
  # a million series: the read-back and the queries would measure the
  # harness; ingest, memory, disk and restarts are what this preset is for
  extra+=(--no-queries)
fi
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rwgate
make -s -C "$bench"
out="$root/tests/bench/results"
mkdir -p "$out"
suffix=""
for a in "$@"; do
  [ "$a" = --kill-restart ] && suffix="-kill-restart"
done
cd "$bench"
if [ "$mode" = checkpoint ]; then
  rw="$root/build/rwgate --listen 127.0.0.1:{port} --data {data} $rwflags"
  exec ./bench.py run --preset "$preset" --rounds "$rounds" --systems "" --no-queries \
    --system rwgate-ckpt4m="$rw --set store.checkpoint_size=4MiB --set store.wal_segment_size=1MiB" \
    --system rwgate="$rw" \
    --system rwgate-nockpt="$rw --set store.checkpoint_size=64GiB --set store.checkpoint_interval=24h" \
    --workdir /tmp/rwbench-rwgate --out "$out/checkpoint-$preset" "$@"
fi
./bench.py run --preset "$preset" --rounds "$rounds" --systems "$systems" \
  --system rwgate="$root/build/rwgate --listen 127.0.0.1:{port} --data {data} $rwflags" \
  --workdir /tmp/rwbench-rwgate --out "$out/$preset$suffix" "${extra[@]}" "$@"
