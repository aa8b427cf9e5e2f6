#!/usr/bin/env bash
# run_clean.sh - what ingest-time cleaning costs: the shared benchmark's
# etcd-fleet traffic sent by HA pairs (bench_hapack: every request from
# replicas a and b, external label __replica__), ingested by rwgate twice,
# alternating:
#   clean  inventory for every cluster, ten relabel rules, HA dedup on
#          (kubelet dedup on too: the data has no kubelet series)
#   off    no inventory, no rules, HA and kubelet dedup off
# and compared by server CPU per sample sent (README: at most 1.2x).
# Read-back checks are off: "clean" stores one replica, "off" both.
#   tests/bench/run_clean.sh [PRESET] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
preset="${1:-small}"
rounds="${2:-3}"
# the shared benchmark sits next to the checkout (../shared/bench), or say where
bench="${RWBENCH_DIR:-$root/../shared/bench}"
[ -d "$bench" ] || bench=/work/shared/bench
bench=$(cd "$bench" && pwd)
work=/tmp/rwbench-clean
mkdir -p "$work"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rwgate bench_hapack
make -s -C "$bench"
(cd "$bench" && ./bench.py gen --preset "$preset" --workdir "$work" >/dev/null)
build/bench_hapack "$work/data.pack" "$work/pairs.pack"
clusters=$(python3 -c "import json; print(json.load(open('$work/data.pack.json'))['clusters'])")

# the inventory: every cluster of the dataset
{
  echo "clusters:"
  for ((i = 0; i < clusters; i++)); do
    printf '  rke2-prod-%04d: {region: r%d, product: rke2, scenario: business, size: %s, team: t%d}\n' \
      "$i" $((i % 5)) "$([ $((i % 3)) = 0 ] && echo large || echo default)" $((i % 7))
  done
} > "$work/clusters.yml"

# ten relabel rules: RULES=cleanup (default) is the ingest-time cleanup a
# fleet gateway typically runs (drop noisy families and labels, normalise
# values, one label added); RULES=enrich adds five labels to every series
# (what the inventory is for) and shows what larger label sets cost.
if [ "${RULES:-cleanup}" = enrich ]; then
  rules=$(cat <<'R'
    - {source_labels: [__name__], regex: 'go_memstats_.*_bucket|etcd_debugging_.*', action: drop}
    - {source_labels: [cluster], regex: 'rke2-(prod|test)-.*', target_label: env, replacement: '$1'}
    - {source_labels: [instance], regex: '([^:]+):.*', target_label: host, replacement: '$1'}
    - {action: labeldrop, regex: 'pod_template_hash|controller_revision_hash'}
    - {source_labels: [job], regex: etcd, target_label: component, replacement: control-plane}
    - {source_labels: [__name__], regex: '.+', action: keep}
    - {source_labels: [team], regex: '', target_label: team, replacement: platform}
    - {action: labelmap, regex: '__meta_kubernetes_(.+)'}
    - {source_labels: [cluster, job], separator: '/', regex: '(.*)', target_label: scope, replacement: '$1'}
    - {source_labels: [grpc_code], regex: 'Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded', target_label: grpc_error, replacement: 'true'}
R
)
else
  rules=$(cat <<'R'
    - {source_labels: [__name__], regex: 'go_memstats_.*_bucket|etcd_debugging_.*', action: drop}
    - {source_labels: [__name__], regex: 'go_info|go_memstats_last_gc_time_seconds', action: drop}
    - {action: labeldrop, regex: 'pod_template_hash|controller_revision_hash'}
    - {action: labelmap, regex: '__meta_kubernetes_(.+)'}
    - {source_labels: [cluster], target_label: cluster, action: lowercase}
    - {source_labels: [job], regex: 'etcd-server', target_label: job, replacement: etcd}
    - {source_labels: [__name__], regex: '.+', action: keep}
    - {source_labels: [grpc_code], regex: 'Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded', target_label: grpc_error, replacement: 'true'}
    - {source_labels: [cluster], regex: 'rke2-(prod|test)-.*', target_label: env, replacement: '$1'}
    - {source_labels: [instance], regex: '(.+):2381', target_label: instance, replacement: '${1}:2381'}
R
)
fi
cat > "$work/clean.yml" <<YML
ingest:
  inventory_file: $work/clusters.yml
  write_relabel_configs:
$rules
  ha_dedup: {failover_timeout: 30s}
YML
cat > "$work/off.yml" <<YML
ingest:
  ha_dedup: {enabled: false}
  kubelet_dedup: {enabled: false}
YML

out="$root/tests/bench/results"
mkdir -p "$out"
cd "$bench"
./bench.py run --pack "$work/pairs.pack" --rounds "$rounds" --systems "" --no-queries --no-verify \
  --system clean="$root/build/rwgate --config $work/clean.yml --listen 127.0.0.1:{port} --data {data}" \
  --system off="$root/build/rwgate --config $work/off.yml --listen 127.0.0.1:{port} --data {data}" \
  --workdir "$work" --out "$out/clean-$preset-${RULES:-cleanup}"
