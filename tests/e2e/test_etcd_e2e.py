"""End to end with a real etcd (Debian etcd-server) on loopback: a small
write load through etcd's v3 JSON gateway makes real WAL fsyncs, backend
commits and gRPC traffic; a real Prometheus scrapes etcd every second and
remote-writes to rwgate. The etcd mixin's alert expressions and the SLO
queries a platform team runs (fsync / commit p99, leader, DB size, gRPC
error ratio) must give the same answers on rwgate as on that Prometheus'
own storage, on etcd's real metric families and bucket layouts."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import (Checks, Prometheus, Rwgate, decode_read_response_raw, free_port, http, log, read_request,
                   snappy_compress, snappy_decompress, wait_for)

c = Checks("test_etcd_e2e")
ETCD = shutil.which("etcd")
if not ETCD or not shutil.which("prometheus"):
    c.check(False, "etcd and prometheus are installed")
    c.done()

QUERIES = [
    # etcd mixin alerts (contrib/mixin), job selector as the mixin's default
    'sum without (instance) (up{job=~".*etcd.*"} == bool 0)',
    'etcd_server_has_leader{job=~".*etcd.*"} == 0',
    'increase((max without (instance) (etcd_server_leader_changes_seen_total{job=~".*etcd.*"}) or 0 * absent(etcd_server_leader_changes_seen_total{job=~".*etcd.*"}))[15m:1m]) >= 4',
    '100 * sum(rate(grpc_server_handled_total{job=~".*etcd.*", grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}[1m])) without (grpc_type, grpc_code) / sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[1m])) without (grpc_type, grpc_code) > 1',
    'rate(etcd_server_proposals_failed_total{job=~".*etcd.*"}[1m]) > 5',
    'histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~".*etcd.*"}[1m])) > 0.5',
    'histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job=~".*etcd.*"}[1m])) > 0.25',
    '(last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[1m]) / last_over_time(etcd_server_quota_backend_bytes{job=~".*etcd.*"}[1m])) * 100 > 95',
    'predict_linear(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[1m], 4*60*60) > etcd_server_quota_backend_bytes{job=~".*etcd.*"}',
    '(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{job=~".*etcd.*"}[1m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[1m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes{job=~".*etcd.*"} > 104857600',
]
# must return data on a healthy, loaded etcd (so the comparison is not vacuous);
# the first ones are the alerts above without their thresholds
NONEMPTY = [
    'histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~".*etcd.*"}[1m]))',
    'histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job=~".*etcd.*"}[1m]))',
    '100 * sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[1m])) without (grpc_type, grpc_code)',
    '(last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[1m]) / last_over_time(etcd_server_quota_backend_bytes{job=~".*etcd.*"}[1m])) * 100',
    'predict_linear(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[1m], 4*60*60)',
    'increase((max without (instance) (etcd_server_leader_changes_seen_total{job=~".*etcd.*"}))[1m:10s])',
    'histogram_quantile(0.99, sum by (le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[1m])))',
    'histogram_quantile(0.99, sum by (le) (rate(etcd_disk_backend_commit_duration_seconds_bucket[1m])))',
    'sum(rate(etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"}[1m])) / sum(rate(etcd_disk_wal_fsync_duration_seconds_count[1m]))',
    'etcd_server_has_leader',
    'etcd_mvcc_db_total_size_in_bytes',
    'sum by (grpc_method) (rate(grpc_server_handled_total[1m]))',
    'rate(etcd_server_proposals_committed_total[1m])',
    'count by (__name__) ({job="etcd", __name__=~"etcd_disk_.*_bucket"})',
]

tmp = tempfile.mkdtemp(prefix="rwgate-e2e-etcd-")
cport, pport = free_port(), free_port()
curl = "http://127.0.0.1:%d" % cport
elog = open(os.path.join(tmp, "etcd.log"), "wb")
etcd = subprocess.Popen([ETCD, "--name", "e2e", "--data-dir", os.path.join(tmp, "data"),
                         "--listen-client-urls", curl, "--advertise-client-urls", curl,
                         "--listen-peer-urls", "http://127.0.0.1:%d" % pport,
                         "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pport,
                         "--initial-cluster", "e2e=http://127.0.0.1:%d" % pport],
                        stdout=elog, stderr=subprocess.STDOUT)
g = Rwgate().start()
prom = None
stop = threading.Event()


def load():
    i = 0
    while not stop.is_set():
        kv = {"key": base64.b64encode(b"k%d" % (i % 50)).decode(), "value": base64.b64encode(b"v" * 100).decode()}
        try:
            http("POST", curl + "/v3/kv/put", json.dumps(kv).encode(), {"Content-Type": "application/json"}, timeout=5)
            if i % 10 == 0:
                http("POST", curl + "/v3/kv/range", json.dumps({"key": kv["key"]}).encode(),
                     {"Content-Type": "application/json"}, timeout=5)
        except OSError:
            pass
        i += 1
        stop.wait(0.02)


def norm(d):
    if d.get("status") != "success":
        return ("error", d.get("error"))
    return sorted((json.dumps(s["metric"], sort_keys=True), s["value"][1]) for s in d["data"]["result"])


def etcd_healthy():
    try:
        return http("GET", curl + "/health", timeout=2)[0] == 200
    except OSError:
        return False


def count(url, expr, t):
    st, _, b = http("GET", url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": "%.3f" % t}),
                    timeout=60)
    r = json.loads(b).get("data", {}).get("result", [])
    return float(r[0]["value"][1]) if st == 200 and r else 0.0


def samples_read(url, t):
    """the samples of job="etcd" in the two minutes before t, through the
    remote-read API (Prometheus and rwgate both serve it)"""
    body = snappy_compress(read_request([(int((t - 120) * 1000), int(t * 1000), [(0, "job", "etcd")])]))
    st, _, b = http("POST", url + "/api/v1/read", body, {"Content-Type": "application/x-protobuf",
                                                         "Content-Encoding": "snappy",
                                                         "X-Prometheus-Remote-Read-Version": "0.1.0"}, timeout=60)
    if st != 200:
        return None
    return {k: v for k, v in decode_read_response_raw(snappy_decompress(b))[0]}


def ready_to_compare():
    """-> the evaluation time once Prometheus has scraped etcd for over a
    minute up to it (the queries use [1m] windows), every NONEMPTY query
    answers there, and rwgate holds exactly the samples Prometheus stored in
    the two minutes before it (remote-write caught up); else None"""
    t = time.time() - 8
    if count(prom.url, 'count_over_time(up{job="etcd"}[70s])', t) < 60:
        return None
    if any(not norm(prom.query(q, t)) for q in NONEMPTY):
        return None
    have = samples_read(prom.url, t)
    return t if have and samples_read(g.url, t) == have else None


try:
    wait_for(etcd_healthy, "etcd to answer /health", timeout=60)
    th = threading.Thread(target=load, daemon=True)
    th.start()
    prom = Prometheus("etcd", """
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: etcd
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 1s, max_shards: 2}
""" % (cport, g.url))
    log("etcd %s, prometheus %s, rwgate %s: loading until a minute of scrapes is in both" % (curl, prom.url, g.url))
    t = wait_for(ready_to_compare, "a minute of etcd scrapes in Prometheus and rwgate", timeout=300, interval=1)
    for q in QUERIES + NONEMPTY:
        a = norm(prom.query(q, t))
        st, b = g.api("/api/v1/query", query=q, time="%.3f" % t)
        b = norm(b)
        c.check(isinstance(a, list), "Prometheus answers %s" % q[:80], repr(a)[:200])
        if q in NONEMPTY:
            c.check(len(a) > 0, "non-empty answer for %s" % q[:80])
        c.eq(b, a, "rwgate = Prometheus for %s" % q[:100])
    # the SLO queries are real numbers, not empty
    st, d = g.api("/api/v1/query", query='histogram_quantile(0.99, sum by (le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[1m])))', time="%.3f" % t)
    v = float(d["data"]["result"][0]["value"][1]) if st == 200 and d["data"]["result"] else float("nan")
    c.check(0 < v < 10, "p99 WAL fsync of the real etcd is a real duration", str(v))
    st, d = g.api("/api/v1/query", query="etcd_server_has_leader", time="%.3f" % t)
    c.check(st == 200 and d["data"]["result"] and d["data"]["result"][0]["value"][1] == "1", "etcd has a leader")
finally:
    stop.set()
    if prom:
        prom.stop(show_log=bool(c.failed))
    etcd.terminate()
    try:
        etcd.wait(20)
    except subprocess.TimeoutExpired:
        etcd.kill()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
        log("etcd log tail:\n" + open(os.path.join(tmp, "etcd.log"), errors="replace").read()[-1500:])
    g.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
