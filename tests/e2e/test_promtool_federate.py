"""Real clients against rwgate's read side: `promtool query instant|range|
series|labels` (Debian's promtool) must work unchanged against the query
API, and a real Prometheus scraping rwgate's /federate (honor_labels) must
store the federated series with the values rwgate holds. A background writer
keeps the data fresh, since /federate answers relative to now."""

import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
import json
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, http, log, wait_for, write_request_v1

c = Checks("test_promtool_federate")
PROMTOOL = shutil.which("promtool")
PROM = shutil.which("prometheus")
if not PROMTOOL or not PROM:
    c.check(False, "promtool and prometheus are installed")
    c.done()

g = Rwgate().start()
stop = threading.Event()
written = {}
rounds = [0]  # writes acknowledged so far


def writer():
    i = 0
    while not stop.is_set():
        t = int(time.time() * 1000)
        series = []
        for inst in range(3):
            labels = [("__name__", "etcd_server_proposals_committed_total"), ("cluster", "c1"),
                      ("instance", "10.0.0.%d:2381" % inst), ("job", "etcd")]
            v = float(1000 * inst + i * 7)
            series.append((labels, [(t, v)]))
            written[tuple(labels)] = (t, v)
        series.append(([("__name__", "other_metric"), ("job", "kubelet")], [(t, float(i))]))
        st, _, b = g.write(write_request_v1(series))
        if st != 204:
            print("writer: %d %s" % (st, b[:200]), flush=True)
        else:
            rounds[0] += 1
        i += 1
        stop.wait(1.0)


def promtool(*args):
    p = subprocess.run([PROMTOOL, "query"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    return p.returncode, p.stdout


th = threading.Thread(target=writer, daemon=True)
th.start()
procs = []
try:
    # a few rounds written: the range query below spans the last 2 s
    wait_for(lambda: rounds[0] >= 3, "three rounds of writes")
    rc, out = promtool("instant", g.url, 'etcd_server_proposals_committed_total{instance="10.0.0.2:2381"}')
    c.check(rc == 0 and 'etcd_server_proposals_committed_total{cluster="c1", instance="10.0.0.2:2381", job="etcd"} =>' in out,
            "promtool query instant", out[:500])
    rc, out = promtool("instant", g.url, 'sum(etcd_server_proposals_committed_total) > bool 0')
    c.check(rc == 0 and "{} => 1 @[" in out, "promtool query instant with aggregation", out[:500])
    now = time.time()
    rc, out = promtool("range", "--start=%d" % (now - 2), "--end=%d" % now, "--step=1s", g.url,
                       'count(etcd_server_proposals_committed_total)')
    c.check(rc == 0 and "{} =>" in out and "3 @[" in out, "promtool query range", out[:500])
    rc, out = promtool("series", "--match=etcd_server_proposals_committed_total", g.url)
    c.check(rc == 0 and out.count("etcd_server_proposals_committed_total") == 3, "promtool query series", out[:500])
    rc, out = promtool("labels", g.url, "instance")
    c.check(rc == 0 and all("10.0.0.%d:2381" % i in out for i in range(3)), "promtool query labels", out[:500])
    rc, out = promtool("instant", g.url, 'rate(')
    c.check(rc != 0 and "parse error" in out, "promtool shows rwgate's parse error", out[:300])

    # /federate directly: text format, TYPE lines, gzip
    st, hd, body = http("GET", g.url + "/federate?" + urllib.parse.urlencode({"match[]": '{job="etcd"}'}),
                        headers={"Accept-Encoding": "gzip"})
    text = gzip.decompress(body).decode() if hd.get("content-encoding") == "gzip" else body.decode()
    c.eq(st, 200, "/federate status")
    c.check("# TYPE etcd_server_proposals_committed_total" in text, "/federate has TYPE lines", text[:300])
    c.eq(sum(1 for l in text.splitlines() if l.startswith("etcd_server_proposals_committed_total{")), 3,
         "/federate returns the 3 matching series")
    c.check("other_metric" not in text, "/federate returns only matching series")
    st, _, body = http("GET", g.url + "/federate")
    c.eq(st, 400, "/federate without match[] -> 400")

    # a real Prometheus federating from rwgate
    p = Prometheus("fed", """
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {'match[]': ['{job="etcd"}']}
    static_configs: [{targets: ['127.0.0.1:%d']}]
""" % g.port)
    procs.append(p)
    purl = p.url

    def federated():
        st, _, b = http("GET", purl + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'etcd_server_proposals_committed_total'}))
        r = json.loads(b)["data"]["result"] if st == 200 else []
        return r if len(r) >= 3 else None
    # Prometheus scrapes every second; a few scrapes in, the series are there
    try:
        res = wait_for(federated, "Prometheus to store the federated series", timeout=120, interval=0.5)
    except TimeoutError:
        res = []
    c.eq(len(res), 3, "Prometheus federating rwgate stores the 3 etcd series")
    for s in res:
        key = tuple([("__name__", s["metric"]["__name__"])] + sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
        c.check(key in written, "federated series has rwgate's labels", repr(s["metric"]))
    st, _, b = http("GET", purl + "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="federate"}'}))
    c.check(json.loads(b)["data"]["result"][0]["value"][1] == "1", "the /federate scrape target is up")
    st, _, b = http("GET", purl + "/api/v1/query?" + urllib.parse.urlencode({"query": 'other_metric'}))
    c.eq(json.loads(b)["data"]["result"], [], "non-matching series are not federated")
finally:
    stop.set()
    th.join(5)
    for p in procs:
        p.stop(show_log=bool(c.failed))
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
