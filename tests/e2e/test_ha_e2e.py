"""HA-pair dedup end to end with real components: two real Prometheus
servers (Debian prometheus) as an HA pair - same scrape targets, a real node
exporter (prometheus-node-exporter) and a real etcd, external labels
cluster and __replica__ - remote-write to rwgate. The elected replica is
stopped, later restarted. Over the whole period rwgate must hold exactly one
copy of each series (no replica label, no doubled samples), no gap longer
than two scrape intervals, and no counter reset that the targets did not
have (checked against the surviving replica's own storage); exactly one
failover happens, by sample time, and the restarted replica does not take
the election back."""

import base64
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, free_port, http, log, wait_for

c = Checks("test_ha_e2e")
ETCD = shutil.which("etcd")
NODE = shutil.which("prometheus-node-exporter")
if not ETCD or not NODE or not shutil.which("prometheus"):
    c.check(False, "etcd, prometheus-node-exporter and prometheus are installed")
    c.done()

INTERVAL = 5  # seconds
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-ha-")
cport, pport, nport = free_port(), free_port(), free_port()
curl = "http://127.0.0.1:%d" % cport
procs = []


def spawn(name, args):
    f = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


spawn("etcd", [ETCD, "--name", "ha", "--data-dir", os.path.join(tmp, "etcd"),
               "--listen-client-urls", curl, "--advertise-client-urls", curl,
               "--listen-peer-urls", "http://127.0.0.1:%d" % pport,
               "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pport,
               "--initial-cluster", "ha=http://127.0.0.1:%d" % pport])
spawn("node", [NODE, "--web.listen-address=127.0.0.1:%d" % nport])

cfg = os.path.join(tmp, "rwgate.yml")
open(cfg, "w").write("ingest:\n  ha_dedup: {failover_timeout: 10s}\n")
g = Rwgate(extra=["--config", cfg]).start()
stop = threading.Event()


def load():
    i = 0
    while not stop.is_set():
        kv = {"key": base64.b64encode(b"k%d" % (i % 20)).decode(), "value": base64.b64encode(b"v" * 64).decode()}
        try:
            http("POST", curl + "/v3/kv/put", json.dumps(kv).encode(), {"Content-Type": "application/json"}, timeout=5)
        except OSError:
            pass
        i += 1
        stop.wait(0.05)


def prom_config(replica):
    return """
global:
  scrape_interval: %ds
  external_labels: {cluster: ha-e2e, __replica__: %s}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:%d']}]
  - job_name: etcd
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 1s, max_shards: 4, min_backoff: 100ms, max_backoff: 1s}
""" % (INTERVAL, replica, nport, cport, g.url)


def wait_up(url, what):
    for _ in range(300):
        try:
            if http("GET", url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(what + " did not start")


def instant(q, t):
    st, d = g.api("/api/v1/query", query=q, time="%.3f" % t)
    return d["data"]["result"] if st == 200 and d.get("status") == "success" else None


def source():
    st, d = g.api("/api/v1/status/sources", cluster="ha-e2e")
    s = d.get("data", {}).get("sources", []) if st == 200 else []
    return s[0] if s else {}


proms = {}
try:
    wait_up(curl + "/health", "etcd")
    wait_up("http://127.0.0.1:%d/metrics" % nport, "node exporter")
    threading.Thread(target=load, daemon=True).start()
    t_start = time.time()
    proms["a"] = Prometheus("ha-a", prom_config("a"))
    proms["b"] = Prometheus("ha-b", prom_config("b"))
    log("etcd %s, node exporter :%d, prometheus a %s b %s, rwgate %s" %
        (curl, nport, proms["a"].url, proms["b"].url, g.url))
    # both replicas deliver for a while (the checked period starts 20 s in)
    # and one of them is elected
    wait_for(lambda: time.time() > t_start + 30 and source().get("ha_elected_replica") in ("a", "b"),
             "a replica elected after 30 s of data", timeout=120)
    elected = source().get("ha_elected_replica")
    c.check(elected in ("a", "b"), "a replica is elected", repr(source()))
    other = "b" if elected == "a" else "a"
    log("elected replica: %s; stopping it" % elected)
    t_stop = time.time()
    proms[elected].pause()
    # the failover (10 s of sample time), then a few scrapes by the other
    try:
        wait_for(lambda: source().get("ha_elected_replica") == other, "the failover", timeout=90)
    except TimeoutError:
        pass
    c.eq(source().get("ha_elected_replica"), other, "the other replica took over")
    time.sleep(4 * INTERVAL)
    log("restarting replica %s" % elected)
    proms[elected].resume()
    # long enough for the restarted replica to send (and catch up on) its
    # backlog and to take the election back if it wrongly could
    time.sleep(6 * INTERVAL)
    t_end = time.time()
    c.eq(source().get("ha_elected_replica"), other, "the restarted replica did not take it back")
    st, _, m = http("GET", g.url + "/metrics")
    m = m.decode()
    fo = [l for l in m.splitlines() if l.startswith('rwgate_ha_failovers_total{tenant="",cluster="ha-e2e"}')]
    c.check(fo and fo[0].endswith(" 1"), "exactly one failover", repr(fo))

    # --- exactly one copy: no replica label, the series set of one replica
    t_q = t_end - 3 * INTERVAL
    rep = instant('count({cluster="ha-e2e", __replica__=~".+"})', t_q)
    c.eq(rep, [], "no series carries the replica label")
    survivor = proms[other]
    for job in ("node", "etcd"):
        q = 'count by (__name__) ({job="%s"})' % job
        mine = instant(q, t_q)
        theirs = survivor.query(q, t_q)["data"]["result"]
        a = sorted((r["metric"].get("__name__"), r["value"][1]) for r in mine or [])
        b = sorted((r["metric"].get("__name__"), r["value"][1]) for r in theirs)
        c.check(len(a) > 20, "rwgate has the %s metric families" % job, str(len(a)))
        c.eq(a, b, "series per metric of job %s: rwgate = the replica's own storage" % job)

    # --- raw samples over the whole period: gaps and density
    lo_ms = int((t_start + 20) * 1000)
    hi_ms = int((t_end - 10) * 1000)
    res = g.read([(lo_ms, hi_ms, [(0, "job", "node"), (2, "__name__",
                                   "node_cpu_seconds_total|node_context_switches_total|node_intr_total|up|"
                                   "node_network_receive_bytes_total|process_cpu_seconds_total")]),
                  (lo_ms, hi_ms, [(0, "job", "etcd"), (2, "__name__",
                                   "etcd_server_proposals_committed_total|etcd_mvcc_put_total|"
                                   "etcd_debugging_mvcc_put_total|up|process_cpu_seconds_total|"
                                   "grpc_server_handled_total")])])
    nseries = 0
    worst_gap = (0, None)
    dense = []
    for q in res:
        for labels, samples in q.items():
            nseries += 1
            ts = [t for t, v in samples]
            if len(ts) < 2:
                continue
            for x, y in zip(ts, ts[1:]):
                if y - x > worst_gap[0]:
                    worst_gap = (y - x, labels, x)
            span = (ts[-1] - ts[0]) / 1000.0
            if len(ts) > span / INTERVAL * 1.15 + 3:
                dense.append((labels, len(ts), span))
    log("%d series read back; worst gap %d ms" % (nseries, worst_gap[0]))
    c.check(nseries >= 10, "raw samples read back", str(nseries))
    c.check(worst_gap[0] <= 2 * INTERVAL * 1000 + 500,
            "no gap longer than two scrape intervals over the stop and the restart",
            "worst %d ms in %s after %s" % worst_gap if worst_gap[1] else "")
    c.eq(dense[:3], [], "no series has doubled samples")

    # --- counters: no reset the targets did not have (per counter family,
    # rwgate against the surviving replica's own storage)
    rng = int(t_end - t_start - 20)
    counters = [("node", "node_cpu_seconds_total"), ("node", "node_context_switches_total"),
                ("node", "node_intr_total"), ("node", "node_network_receive_bytes_total"),
                ("node", "process_cpu_seconds_total"), ("etcd", "etcd_server_proposals_committed_total"),
                ("etcd", "etcd_mvcc_put_total"), ("etcd", "grpc_server_handled_total"),
                ("etcd", "process_cpu_seconds_total")]
    seen = 0
    for job, name in counters:
        q = 'sum(resets(%s{job="%s"}[%ds]))' % (name, job, rng)
        mine = instant(q, t_q)
        d = survivor.query(q, t_q)
        theirs = d.get("data", {}).get("result", []) if d.get("status") == "success" else []
        if not mine:
            continue
        seen += 1
        got = float(mine[0]["value"][1])
        ref = float(theirs[0]["value"][1]) if theirs else 0.0
        c.check(got <= ref, "counter resets of %s{job=%s}: rwgate %g, the targets (the replica's own "
                "storage) %g" % (name, job, got, ref))
    c.check(seen >= 6, "counter families checked for resets", str(seen))
    # the status report for the cluster
    s = source()
    c.check(s.get("samples_accepted", 0) > 0 and s.get("dropped", {}).get("ha_deduplicated", 0) > 0,
            "sources: accepted and deduplicated samples counted", repr(s)[:400])
finally:
    stop.set()
    for p in proms.values():
        try:
            p.stop(show_log=bool(c.failed))
        except Exception as e:  # a paused one: its process is gone already
            log("stopping prometheus: %s" % e)
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
