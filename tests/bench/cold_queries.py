#!/usr/bin/env python3
# cold_queries.py - the shared benchmark's range queries over a whole pack's span (step 60 s)
# against rwgate and VictoriaMetrics, cold and warm. Both must already hold the same pack
# (load it with the shared bench's rwload) and be stopped. For each query both are started
# afresh with the page cache dropped (run as root), the query runs once on each (cold), then
# three more times each, alternating (warm, median). Which system goes first alternates.
#   tests/bench/cold_queries.py RWGATE_BIN RWGATE_DATA VM_DATA PACK.json
import json, os, signal, subprocess, sys, time, urllib.request, urllib.parse, statistics
if len(sys.argv) != 5:
    raise SystemExit(__doc__ if __doc__ else 'usage: cold_queries.py RWGATE_BIN RWGATE_DATA VM_DATA PACK.json')
meta = json.load(open(sys.argv[4]))
start = meta['t_min_ms'] / 1000; end = meta['t_max_ms'] / 1000
SYS = {
  'rwgate': ([sys.argv[1], '--listen', '127.0.0.1:19001', '--data', sys.argv[2]], 19001, '/api/v1/query?query=1', signal.SIGTERM),
  'vm': (['victoria-metrics', '-storageDataPath=' + sys.argv[3], '-httpListenAddr=127.0.0.1:19002', '-retentionPeriod=100y',
          '-search.disableCache', '-search.maxUniqueTimeseries=10000000', '-search.maxQueryDuration=300s', '-loggerLevel=WARN'], 19002, '/health', signal.SIGINT),
}
Q = [
 ("proposals_rate", 'sum by (cluster) (rate(etcd_server_proposals_committed_total[5m]))'),
 ("wal_fsync_p99", 'histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))'),
 ("db_size_max", 'max by (cluster) (etcd_mvcc_db_total_size_in_bytes)'),
 ("count_etcd", 'count({__name__=~"etcd_.*"})'),
 ("grpc_topk", 'topk(10, rate(grpc_server_handled_total[5m]))'),
 ("grpc_errors", 'sum by (cluster, grpc_code) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))'),
 ("peer_rtt_p99", 'histogram_quantile(0.99, sum by (cluster, To, le) (rate(etcd_network_peer_round_trip_time_seconds_bucket[5m])))'),
 ("one_cluster_cpu", 'rate(process_cpu_seconds_total{cluster="rke2-prod-0000"}[5m])'),
 ("snapshot_incr", 'increase(rke2_etcd_snapshot_save_duration_seconds_count{status="success"}[1h])'),
]
def pid_of(port):
    out = subprocess.run(['ss', '-ltnp', 'sport = :%d' % port], capture_output=True, text=True).stdout
    return int(out.split('pid=')[1].split(',')[0]) if 'pid=' in out else None
PROCS = {}
def stop(name):
    p = pid_of(SYS[name][1])
    if p:
        os.kill(p, SYS[name][3])
        if name in PROCS:
            PROCS[name].wait()
        while os.path.exists('/proc/%d' % p):
            time.sleep(0.1)
def startsys(name):
    cmd, port, ready, _ = SYS[name]
    PROCS[name] = subprocess.Popen(cmd, stdout=open('/tmp/cold_queries.%s.log' % name, 'a'), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        try:
            urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, ready), timeout=2).read(); return
        except Exception:
            time.sleep(0.1)
    raise SystemExit('%s not ready' % name)
def q(name, expr):
    u = 'http://127.0.0.1:%d/api/v1/query_range?%s' % (SYS[name][1], urllib.parse.urlencode({'query': expr, 'start': start, 'end': end, 'step': 60}))
    t0 = time.time(); body = urllib.request.urlopen(u, timeout=600).read(); t = time.time() - t0
    return t * 1000, len(json.loads(body)['data']['result'])
rows = []
for i, (qn, expr) in enumerate(Q):
    order = ['rwgate', 'vm'] if i % 2 == 0 else ['vm', 'rwgate']
    for n in order: stop(n)
    subprocess.run(['sync']); open('/proc/sys/vm/drop_caches', 'w').write('3\n')
    for n in order: startsys(n)
    time.sleep(1)
    res = {}
    for n in order:
        res[n] = {'cold': q(n, expr)}
    warm = {n: [] for n in order}
    for r in range(3):
        for n in order:
            warm[n].append(q(n, expr)[0])
    for n in order:
        res[n]['warm'] = statistics.median(warm[n])
    rows.append((qn, res))
    print('%-16s cold rwgate %7.0f ms vm %7.0f ms (%.2fx)   warm rwgate %7.0f vm %7.0f (%.2fx)   series %d/%d' % (
        qn, res['rwgate']['cold'][0], res['vm']['cold'][0], res['rwgate']['cold'][0] / res['vm']['cold'][0],
        res['rwgate']['warm'], res['vm']['warm'], res['rwgate']['warm'] / res['vm']['warm'],
        res['rwgate']['cold'][1], res['vm']['cold'][1]), flush=True)
for n in SYS:
    stop(n)
