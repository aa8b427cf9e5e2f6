"""Queries answered correctly while ingest runs at full speed: writer
threads send remote-write requests back to back (no pause) for a growing
metric, while query threads hit the HTTP query API.

Checked, during the load:
- queries over a fixed reference data set (written before the load) give
  exactly the answers they gave on the quiet server: instant and range
  queries, aggregations, rates, topk, histogram_quantile, /api/v1/series;
- read-your-writes: a sample a writer got a 2xx for is returned by an
  instant query at its timestamp, with its value, for the series alone and
  inside an aggregation over the writer's series;
- no write fails and no query errors; afterwards every acknowledged sample
  of the load is stored."""

import json
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import (Checks, Rwgate, enc_labels_v1, f_bytes, f_double, f_varint, http, log, scaled, wait_for,
                   write_request_v1)

c = Checks("test_query_under_ingest")
WRITERS = 3
QUERIERS = 3
QUERIES_PER_THREAD = scaled(300, 30)
LOAD_SERIES = 1000        # series per writer
T_REF = (int(time.time()) - 7200) * 1000
STEP = 15000

REFERENCE = [
    ("/api/v1/query", {"query": 'sum by (job) (rate(ref_requests_total[5m]))'}),
    ("/api/v1/query", {"query": 'topk(3, ref_requests_total)'}),
    ("/api/v1/query", {"query": 'histogram_quantile(0.9, sum by (le) (rate(ref_latency_bucket[10m])))'}),
    ("/api/v1/query", {"query": 'count(ref_requests_total) by (job)'}),
    ("/api/v1/query", {"query": 'ref_requests_total{instance="i7"}'}),
    ("/api/v1/query_range", {"query": 'sum(increase(ref_requests_total[10m]))', "step": "60"}),
    ("/api/v1/query_range", {"query": 'max_over_time(ref_requests_total{job="b"}[5m])', "step": "120"}),
    ("/api/v1/series", {"match[]": 'ref_requests_total{job="a"}'}),
]


def reference_data():
    series = []
    for i in range(20):
        labels = [("__name__", "ref_requests_total"), ("instance", "i%d" % i), ("job", "ab"[i % 2])]
        series.append((labels, [(T_REF + k * STEP, float(k * (i + 1))) for k in range(240)]))
    for j, le in enumerate(["0.1", "0.5", "1", "+Inf"]):
        labels = [("__name__", "ref_latency_bucket"), ("le", le)]
        series.append((labels, [(T_REF + k * STEP, float(k * (j + 1) * 3)) for k in range(240)]))
    return series


def ask(g, path, params):
    t_ref_end = (T_REF + 239 * STEP) / 1000
    p = dict(params)
    if path == "/api/v1/query":
        p["time"] = "%.3f" % (t_ref_end - 30)
    elif path == "/api/v1/query_range":
        p.update(start="%.3f" % (t_ref_end - 1800), end="%.3f" % t_ref_end)
    else:
        p.update(start="%.3f" % (T_REF / 1000), end="%.3f" % t_ref_end)
    st, _, b = http("GET", g.url + path + "?" + urllib.parse.urlencode(p), timeout=120)
    d = json.loads(b)
    return st, canonical(d)


def canonical(d):
    """the answer as text, with vectors and series lists in a fixed order"""
    data = d.get("data")
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        data["result"] = sorted(data["result"], key=lambda s: sorted(s["metric"].items()))
    elif isinstance(data, list):
        d["data"] = sorted(data, key=lambda s: sorted(s.items()))
    return json.dumps(d, sort_keys=True)


class Writer(threading.Thread):
    def __init__(self, idx, g, t0):
        super().__init__(daemon=True)
        self.idx, self.g, self.t = idx, g, t0
        self.acked = []          # (t, [values]) per acknowledged request, in order
        self.lock = threading.Lock()
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        # label sets encoded once: the requests go out as fast as the
        # client can put samples next to them
        enc = [enc_labels_v1([("__name__", "load_metric"), ("s", "%04d" % s), ("w", str(self.idx))])
               for s in range(LOAD_SERIES)]
        while not self.stop.is_set():
            t = self.t
            vals = [float(t // 1000 % 100000 * 1000 + s) for s in range(LOAD_SERIES)]
            ts = f_varint(2, t)
            body = b"".join(f_bytes(1, enc[s] + f_bytes(2, f_double(1, vals[s]) + ts)) for s in range(LOAD_SERIES))
            try:
                st, _, b = self.g.write(body)
            except OSError as e:
                self.errors.append(repr(e))
                continue
            if st != 204:
                self.errors.append((st, b[:200]))
                continue
            with self.lock:
                self.acked.append((t, vals))
            self.t += 1000

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.acked) if self.acked else None


class Querier(threading.Thread):
    def __init__(self, idx, g, writers, golden):
        super().__init__(daemon=True)
        self.idx, self.g, self.writers, self.golden = idx, g, writers, golden
        self.rng = random.Random(idx)
        self.failures = []
        self.done = 0

    def run(self):
        for n in range(QUERIES_PER_THREAD):
            try:
                if n % 2 == 0:
                    k = self.rng.randrange(len(REFERENCE))
                    got = ask(self.g, *REFERENCE[k])
                    if got != self.golden[k]:
                        self.failures.append(("reference", REFERENCE[k][1], got[1][:300], self.golden[k][1][:300]))
                else:
                    self.read_your_write()
            except Exception as e:  # noqa: BLE001 - any error is a failure of this check
                self.failures.append(("exception", repr(e)))
            self.done += 1

    def read_your_write(self):
        w = self.rng.choice(self.writers)
        a = w.pick(self.rng)
        if a is None:
            return
        t, vals = a
        s = self.rng.randrange(LOAD_SERIES)
        q = 'load_metric{w="%d", s="%04d"}' % (w.idx, s)
        st, _, b = http("GET", self.g.url + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": q, "time": "%.3f" % (t / 1000)}), timeout=120)
        r = json.loads(b).get("data", {}).get("result", [])
        if st != 200 or len(r) != 1 or float(r[0]["value"][1]) != vals[s] or r[0]["value"][0] != t / 1000:
            self.failures.append(("read-your-write", q, t, vals[s], st, r))
            return
        q = 'sum(load_metric{w="%d"}) - count(load_metric{w="%d"})' % (w.idx, w.idx)
        st, _, b = http("GET", self.g.url + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": q, "time": "%.3f" % (t / 1000)}), timeout=120)
        r = json.loads(b).get("data", {}).get("result", [])
        want = sum(vals) - LOAD_SERIES
        # the writer's requests follow each other 1 s apart, so at time t the
        # lookback sees exactly the acknowledged request of t for every series
        if st != 200 or len(r) != 1 or float(r[0]["value"][1]) != want:
            self.failures.append(("aggregate of acknowledged request", q, t, want, st, r))


g = Rwgate(extra=["--shards", "2"]).start()
writers = []
try:
    st, _, b = g.write(write_request_v1(reference_data()))
    c.eq(st, 204, "reference data written")
    golden = [ask(g, p, q) for p, q in REFERENCE]
    for (p, q), (st, body) in zip(REFERENCE, golden):
        c.eq(st, 200, "quiet server answers %s %s" % (p, q))
        c.check('"status": "success"' in body and '"result": []' not in body and '"data": []' not in body,
                "quiet answer is not empty: %s" % q, body[:300])
    t0 = int(time.time() * 1000) - 3600 * 1000
    writers = [Writer(i, g, t0) for i in range(WRITERS)]
    for w in writers:
        w.start()
    wait_for(lambda: all(len(w.acked) >= 5 for w in writers), "every writer acknowledged")
    t = time.time()
    queriers = [Querier(i, g, writers, golden) for i in range(QUERIERS)]
    for q in queriers:
        q.start()
    for q in queriers:
        q.join(600)
    elapsed = time.time() - t
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(60)
    acked = sum(len(w.acked) for w in writers) * LOAD_SERIES
    log("%d queries in %.1fs while %d samples were acknowledged (%.0f samples/s)" %
        (QUERIERS * QUERIES_PER_THREAD, elapsed, acked, acked / max(elapsed, 0.001)))
    for q in queriers:
        c.eq(q.done, QUERIES_PER_THREAD, "querier %d finished" % q.idx)
        c.eq(q.failures[:5], [], "querier %d: every answer correct under load" % q.idx)
    for w in writers:
        c.eq(w.errors[:5], [], "writer %d: no write failed" % w.idx)
        c.check(len(w.acked) > 10, "writer %d kept writing during the queries" % w.idx, str(len(w.acked)))
    # everything acknowledged is stored
    got = {k: dict(v) for k, v in g.read([(0, 2**62, [(0, "__name__", "load_metric")])])[0].items()}
    missing = 0
    for w in writers:
        for s in range(LOAD_SERIES):
            stored = got.get((("__name__", "load_metric"), ("s", "%04d" % s), ("w", str(w.idx))), {})
            missing += sum(1 for t, vals in w.acked if stored.get(t) != vals[s])
    c.eq(missing, 0, "acknowledged load samples missing afterwards")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for w in writers:
        w.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
