"""The out-of-order window through every read path of the real binary.

rwgate runs with store.out_of_order_window=30m. A series gets in-order
samples every 15 s, then samples in the gaps (older than its newest, within
the window) in a scrambled order, one far older sample (rejected: 400 naming
out_of_order), and a duplicate with another value (rejected). Every read
path must return the merged series in time order: a PromQL range query,
count_over_time, remote-read, /federate (the newest sample) and
/api/v1/series. The same after kill -9 (WAL replay), after a clean restart
(everything read back from blocks), and after more out-of-order samples
land in that flushed range."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, write_request_v1

c = Checks("test_store_ooo")
STEP = 15000
NOW = int(time.time() * 1000) // 1000 * 1000
T0 = NOW - 120 * STEP + 10000  # the newest in-order sample 5 s before now
LABELS = [("__name__", "ooo_m"), ("job", "ooo")]

model = {}  # t -> v


def write(samples, want=204):
    st, _, b = g.write(write_request_v1([(LABELS, samples)]))
    return st, b


def check_all(when):
    ts = sorted(model)
    # remote-read: the merged series, in order
    res = g.read([(T0 - 3600000, NOW + 60000, [(0, "__name__", "ooo_m")])])[0]
    got = next(iter(res.values()), [])
    c.eq(got, [(t, model[t]) for t in ts], "remote-read returns the merged series (%s)" % when)
    # PromQL range query with a step that hits every sample's timestamp
    st, j = g.api("/api/v1/query_range", query="ooo_m", start="%.3f" % (ts[0] / 1000.0),
                  end="%.3f" % (ts[-1] / 1000.0), step="0.5")
    vals = j.get("data", {}).get("result", [{}])[0].get("values", []) if st == 200 else []
    # lookback picks the newest sample at or before each step: check the
    # steps that fall exactly on samples
    exact = {int(round(float(t) * 1000)): float(v) for t, v in vals}
    c.check(st == 200 and all(exact.get(t) == model[t] for t in ts),
            "query_range sees every sample at its timestamp (%s)" % when, str(st))
    st, j = g.api("/api/v1/query", query="count_over_time(ooo_m[2h])", time="%.3f" % (NOW / 1000.0))
    n = j.get("data", {}).get("result", [{}])[0].get("value", [0, "0"])[1] if st == 200 else None
    c.eq(n, str(len(ts)), "count_over_time counts each sample once (%s)" % when)
    st, j = g.api("/api/v1/query", query="ooo_m", time="%.3f" % ((ts[5] + 1) / 1000.0))
    v = j.get("data", {}).get("result", [{}])[0].get("value", [0, None])[1] if st == 200 else None
    c.eq(v, repr(model[ts[5]]) if model[ts[5]] != int(model[ts[5]]) else str(int(model[ts[5]])),
         "an instant query between samples sees the out-of-order one (%s)" % when)
    st, _, b = http("GET", g.url + "/federate?match[]=ooo_m")
    newest = ts[-1]
    c.check(st == 200 and (" %d\n" % newest).encode() in b, "federate returns the newest sample (%s)" % when,
            b[:300])
    st, j = g.api("/api/v1/series", **{"match[]": "ooo_m"})
    c.check(st == 200 and len(j.get("data", [])) == 1, "one series (%s)" % when)


g = Rwgate(extra=["--shards", "2", "--set", "store.out_of_order_window=30m"]).start()
try:
    inorder = [(T0 + i * STEP, float(i)) for i in range(120)]
    st, _ = write(inorder)
    c.eq(st, 204, "in-order samples")
    model.update(dict(inorder))
    newest = inorder[-1][0]
    late = [(newest - 7 * STEP - 5000, 1000.5), (newest - 100 * STEP - 500, 1001.5),
            (newest - 1000, 1002.5), (newest - 50 * STEP - 7000, 1003.5)]
    st, b = write(late)
    c.eq(st, 204, "out-of-order samples within the window")
    model.update(dict(late))
    st, b = write([(newest - 31 * 60 * 1000, 5.0)])
    c.eq(st, 400, "a sample beyond the window -> 400")
    c.check(b"out_of_order" in b, "the reply names out_of_order", b[:200])
    st, b = write([(late[0][0], 77.0)])
    c.eq(st, 400, "another value at a held timestamp -> 400")
    st, b = write([late[1]])
    c.eq(st, 204, "an identical resend -> 204")
    check_all("in memory")
    g.kill9()
    g.start()
    check_all("after kill -9")
    c.eq(g.stop(), 0, "clean stop (everything into blocks)")
    g.start()
    check_all("from blocks")
    later = [(newest - 3 * STEP - 3000, 2000.25), (newest - 60 * STEP - 1500, 2001.25)]
    st, _ = write(later)
    c.eq(st, 204, "out-of-order samples into the flushed range")
    model.update(dict(later))
    check_all("blocks and memory merged")
    g.kill9()
    g.start()
    check_all("blocks and replayed WAL merged")
    c.eq(g.stop(), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
