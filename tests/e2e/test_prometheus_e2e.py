"""End to end with real Prometheus servers (Debian package): Prometheus A
scrapes itself every second and remote-writes to rwgate; Prometheus B has no
data of its own and a remote_read pointing at rwgate. After some scrapes the
raw samples of `up` and a few other series must be identical in A's local
storage, in rwgate (remote-read decoded here, and rwgate's own query API),
and in B (reading rwgate through Prometheus' remote-read client)."""

import json
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, http, log, wait_for

c = Checks("test_prometheus_e2e")
PROM = shutil.which("prometheus")
if not PROM:
    print("prometheus binary not found (deploy/install-deps.sh installs it)")
    c.check(False, "prometheus is installed")
    c.done()

SERIES = ['up{job="prometheus"}', 'prometheus_tsdb_head_series', 'scrape_samples_scraped',
          'prometheus_http_requests_total{handler="/metrics"}']


def prom_matrix(url, expr, t):
    q = urllib.parse.urlencode({"query": expr, "time": "%.3f" % t})
    st, _, b = http("GET", url + "/api/v1/query?" + q, timeout=60)
    d = json.loads(b)
    if d.get("status") != "success":
        raise RuntimeError("%s: %s" % (expr, d))
    out = {}
    for s in d["data"]["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(int(round(float(t) * 1000)), float(v)) for t, v in s["values"]]
    return out


g = Rwgate(extra=["--shards", "2"]).start()
procs = []
try:
    pa = Prometheus("a", """
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:SELF_PORT']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 1s, max_shards: 2, min_backoff: 50ms, max_backoff: 1s}
    metadata_config: {send: true, send_interval: 2s}
""" % g.url, extra=["--storage.remote.flush-deadline=1s"])  # rwgate stops first: do not retry for a minute
    procs.append(pa)
    pb = Prometheus("b", """
global: {scrape_interval: 1h}
remote_read:
  - url: %s/api/v1/read
    read_recent: true
""" % g.url)
    procs.append(pb)
    ua, ub = pa.url, pb.url
    log("prometheus A %s, B %s, rwgate %s; waiting for scrapes" % (ua, ub, g.url))
    # wait (bounded) until A has 12+ scrapes of every series in a 15 s window
    # that ends 6 s ago ...
    def window_scraped():
        t = time.time() - 6.0
        counts = [min([len(v) for v in prom_matrix(ua, e + "[15s]", t).values()] or [0]) for e in SERIES]
        return t if min(counts) >= 12 else None
    t = wait_for(window_scraped, "12 scrapes in Prometheus A", timeout=180, interval=0.5)
    log("Prometheus A has scraped the window; waiting for it in rwgate")

    # ... and until A's remote-write has delivered that window to rwgate
    def rr_window(expr):
        name = expr.split("{")[0]
        ms = [(0, "__name__", name)]
        if "{" in expr:
            k, v = expr.split("{")[1].rstrip("}").split("=")
            ms.append((0, k, v.strip('"')))
        start_ms, end_ms = int(round((t - 15) * 1000)), int(round(t * 1000))
        rr = g.read([(start_ms, end_ms, ms)])[0]
        return {k: [(ts, v) for ts, v in s if start_ms <= ts <= end_ms] for k, s in rr.items()}

    try:
        wait_for(lambda: all(rr_window(e) == prom_matrix(ua, e + "[15s]", t) for e in SERIES),
                 "the window to arrive in rwgate", timeout=120, interval=0.5)
    except TimeoutError:
        pass  # the checks below say what differs
    for expr in SERIES:
        local = prom_matrix(ua, expr + "[15s]", t)
        c.check(len(local) >= 1 and all(len(v) >= 10 for v in local.values()),
                "Prometheus A has scraped %s" % expr, repr(local)[:200])
        # rwgate, raw samples through remote-read
        rr = rr_window(expr)
        c.eq(rr, local, "rwgate holds exactly A's samples of %s (remote-read)" % expr)
        # Prometheus B reads rwgate
        remote = prom_matrix(ub, expr + "[15s]", t)
        c.eq(remote, local, "Prometheus B via remote_read returns A's samples of %s" % expr)
        # rwgate's own PromQL
        own = prom_matrix(g.url, expr + "[15s]", t)
        c.eq(own, local, "rwgate /api/v1/query returns A's samples of %s" % expr)
    # metadata sent by Prometheus is served back
    st, md = g.api("/api/v1/metadata", metric="prometheus_tsdb_head_series")
    c.check(st == 200 and md.get("data", {}).get("prometheus_tsdb_head_series", [{}])[0].get("type") == "gauge",
            "metadata from Prometheus' metadata-only requests is stored", repr(md)[:300])
    st, lab = g.api("/api/v1/label/job/values")
    c.check(st == 200 and "prometheus" in lab.get("data", []), "label values API sees job=prometheus", repr(lab)[:200])
    st, ser = g.api("/api/v1/series", **{"match[]": 'up{job=~"prom.*"}'})
    c.check(st == 200 and len(ser.get("data", [])) == 1, "series API with a regex matcher", repr(ser)[:300])
    # rwgate's counters agree that samples flowed and none were rejected
    st, _, m = http("GET", g.url + "/metrics")
    text = m.decode()
    written = [l for l in text.splitlines() if l.startswith("rwgate_ingest_samples_written_total")]
    c.check(written and float(written[0].split()[-1]) > 100, "rwgate counted written samples", repr(written))
    c.eq(g.stop(), 0, "rwgate stops cleanly while Prometheus is still sending")
finally:
    for p in procs:
        p.stop(show_log=bool(c.failed))
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
