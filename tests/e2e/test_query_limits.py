"""Query limits over HTTP, side by side with a real Prometheus (Debian
package) holding the same data with the same limits: a query that would
load more samples than query.max_samples (Prometheus --query.max-samples)
and a query that runs past its `timeout` parameter must both fail the way
Prometheus fails - the same HTTP status, the Prometheus JSON error shape
({"status":"error","errorType":...,"error":...}, application/json) and the
same error type and text (the text after "query timed out in" names the
stage and may differ). Queries within the limits answer the same on both,
and the server keeps serving after the errors."""

import json
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, V1_HEADERS, http, log, snappy_compress, write_request_v1

c = Checks("test_query_limits")
if not shutil.which("prometheus"):
    c.check(False, "prometheus is installed")
    c.done()

MAX_SAMPLES = 1000
# Prometheus' limit is on samples held at once (a range function over one
# series at a time stays under it); the cases over the limit therefore use
# one series with more samples than the limit, or a range query whose output
# alone is over it.
END = (int(time.time()) - 300) // 60 * 60
T0 = (END - 3600) * 1000
STEP = 15000


def data():
    series = []
    for i in range(10):
        labels = [("__name__", "lim_metric"), ("i", str(i))]
        series.append((labels, [(T0 + k * STEP + 7, float(k + i)) for k in range(241)]))
    series.append(([("__name__", "lim_dense")], [(T0 + k * 1000 + 3, float(k)) for k in range(3601)]))
    return write_request_v1(series)


def get(url, path, **params):
    st, hd, b = http("GET", url + path + "?" + urllib.parse.urlencode(params), timeout=120)
    try:
        d = json.loads(b)
    except ValueError:
        d = {"raw": b[:300].decode(errors="replace")}
    return st, hd.get("content-type", ""), d


def error_shape(name, st, ct, d, what):
    c.check(ct.startswith("application/json"), "%s: %s answers JSON" % (what, name), ct)
    c.eq(sorted(d), ["error", "errorType", "status"], "%s: %s error object has status, errorType, error" % (what, name))
    c.eq(d.get("status"), "error", "%s: %s status is error" % (what, name))


PROM_ARGS = ["--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y"]
# a pair with the samples limit, and a pair with the default one for the
# timeout (so that a long query cannot hit the samples limit first)
prom = Prometheus("limits", "global: {scrape_interval: 1h}\n", extra=PROM_ARGS + ["--query.max-samples=%d" % MAX_SAMPLES])
prom2 = Prometheus("timeout", "global: {scrape_interval: 1h}\n", extra=PROM_ARGS)
g = Rwgate(extra=["--set", "query.max_samples=%d" % MAX_SAMPLES]).start()
g2 = Rwgate().start()
try:
    body = snappy_compress(data())
    for name, url in (("Prometheus", prom.url), ("rwgate", g.url), ("Prometheus 2", prom2.url), ("rwgate 2", g2.url)):
        st, _, b = http("POST", url + "/api/v1/write", body, V1_HEADERS)
        c.check(st // 100 == 2, "data written to %s" % name, "%d %s" % (st, b[:200]))

    cases = [
        # (what, path, params, expected kind)
        ("instant within the limit", "/api/v1/query", {"query": "sum(count_over_time(lim_metric[5m]))", "time": END}, "ok"),
        ("range within the limit", "/api/v1/query_range",
         {"query": "sum(lim_metric)", "start": END - 600, "end": END, "step": 60}, "ok"),
        ("instant over max_samples", "/api/v1/query", {"query": "count_over_time(lim_dense[1h])", "time": END}, "samples"),
        ("range over max_samples", "/api/v1/query_range",
         {"query": "lim_metric", "start": END - 3600, "end": END, "step": 15}, "samples"),
        ("subquery over max_samples", "/api/v1/query",
         {"query": "max_over_time(lim_dense[30m:1s])", "time": END}, "samples"),
        # 8,640 steps of a 36,000-point subquery: 0.4-0.6 s of work for
        # rwgate, cut at 20 ms (at 1 s resolution it took 30-50 ms, close
        # enough to the timeout to finish between two checks on a busy machine)
        ("range past its timeout", "/api/v1/query_range",
         {"query": "max_over_time((vector(1) + time())[1h:100ms])", "start": END - 86400, "end": END, "step": 10,
          "timeout": "20ms"}, "timeout"),
        ("instant past its timeout", "/api/v1/query",
         {"query": "max_over_time((max_over_time((vector(1) + time())[1h:100ms]))[1d:10s])", "time": END,
          "timeout": "20ms"}, "timeout"),
        ("bad expression", "/api/v1/query", {"query": "sum(rate(lim_metric[5m])", "time": END}, "bad_data"),
    ]
    for what, path, params, kind in cases:
        pu, gu = (prom2.url, g2.url) if kind == "timeout" else (prom.url, g.url)
        pa = get(pu, path, **params)
        rb = get(gu, path, **params)
        if kind == "ok":
            for name, (st, ct, d) in (("Prometheus", pa), ("rwgate", rb)):
                c.check(st == 200 and d.get("status") == "success" and d["data"]["result"],
                        "%s: %s answers" % (what, name), repr(d)[:300])
            c.eq(rb[2].get("data"), pa[2].get("data"), "%s: same answer" % what)
            continue
        for name, (st, ct, d) in (("Prometheus", pa), ("rwgate", rb)):
            error_shape(name, st, ct, d, what)
        c.eq(rb[0], pa[0], "%s: same HTTP status as Prometheus" % what)
        c.eq(rb[2].get("errorType"), pa[2].get("errorType"), "%s: same errorType as Prometheus" % what)
        want = {"samples": (422, "execution"), "timeout": (503, "timeout"), "bad_data": (400, "bad_data")}[kind]
        c.eq((rb[0], rb[2].get("errorType")), want, "%s: rwgate status and errorType" % what)
        if kind == "samples":
            c.eq(rb[2].get("error"), pa[2].get("error"), "%s: same error text as Prometheus" % what)
            c.eq(rb[2].get("error"), "query processing would load too many samples into memory in query execution",
                 "%s: the max-samples message" % what)
        elif kind == "timeout":
            c.check(pa[2].get("error", "").startswith("query timed out in ") and
                    rb[2].get("error", "").startswith("query timed out in "),
                    "%s: both say the query timed out" % what, "%r / %r" % (pa[2].get("error"), rb[2].get("error")))
        else:
            c.check("parse error" in rb[2].get("error", ""), "%s: rwgate names the parse error" % what,
                    rb[2].get("error"))
    # still serving, and the limits did not stick to the next query
    st, _, d = get(g.url, "/api/v1/query", query="count(lim_metric)", time=END)
    c.check(st == 200 and d["data"]["result"][0]["value"][1] == "10", "rwgate answers after the errors", repr(d)[:200])
    st, _, d = get(g2.url, "/api/v1/query", query="count(lim_metric)", time=END)
    c.check(st == 200 and d["data"]["result"][0]["value"][1] == "10", "rwgate answers after a timeout", repr(d)[:200])
    c.eq(g.stop(), 0, "clean stop")
    c.eq(g2.stop(), 0, "clean stop")
finally:
    prom.stop(show_log=bool(c.failed))
    prom2.stop(show_log=bool(c.failed))
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail() + "\n" + g2.log_tail())
    g.cleanup()
    g2.cleanup()
c.done()
