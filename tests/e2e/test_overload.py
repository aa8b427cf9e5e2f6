"""Overload: remote-write offered at twice the rate rwgate sustains.

First the sustainable rate is measured: two senders back to back, each
waiting for its answer, for a few seconds (every write must be a 2xx).
Then requests are offered open-loop at twice that rate (each on schedule,
whatever the answers) for a few seconds. Expected:
- the excess is answered 503 with Retry-After (never 429, never dropped);
- the process stays within its memory bound (ingest.max_inflight_bytes +
  the head data of what was acknowledged + a fixed margin);
- queries keep answering while it lasts;
- every acknowledged sample is there afterwards, and nothing of a refused
  request is."""

import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, V1_HEADERS, http, log, snappy_compress, write_request_v1

c = Checks("test_overload")
SERIES, SAMPLES = 100, 50          # per request: 5,000 samples
T0 = int(time.time() * 1000) - 3600 * 1000
BUDGET_MIB = 8


# one encoded request; each request gets its own r label by rewriting the
# fixed-width placeholder in place (encoding thousands in Python is too slow
# to offer twice the rate rwgate sustains)
_TEMPLATE = write_request_v1(
    [([("__name__", "ovl"), ("k", "%03d" % k), ("r", "RRRRRRR")],
      [(T0 + j * 1000, float(k * 7 + j)) for j in range(SAMPLES)]) for k in range(SERIES)])


def body(i):
    return snappy_compress(_TEMPLATE.replace(b"RRRRRRR", b"%07d" % i))


def rss_mb(pid, field="VmHWM"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) // 1024
    return -1


g = Rwgate(extra=["--shards", "2", "--set", "ingest.max_inflight_bytes=%dMiB" % BUDGET_MIB]).start()
try:
    pid = g.proc.pid
    log("encoding request bodies")
    bodies = [body(i) for i in range(6000)]
    size = len(bodies[0])
    lock = threading.Lock()
    acked, refused, other, no_retry_after = [], [], [], []
    next_id = [0]

    def fresh_body():
        with lock:
            i = next_id[0]
            next_id[0] += 1
        return i, bodies[i] if i < len(bodies) else body(i)

    def send(i, b):
        try:
            st, hd, _ = http("POST", g.url + "/api/v1/write", b, V1_HEADERS, timeout=60)
        except OSError as e:
            st, hd = -1, {}
        with lock:
            if 200 <= st < 300:
                acked.append(i)
            elif st == 503:
                refused.append(i)
                if "retry-after" not in hd:
                    no_retry_after.append(i)
            else:
                other.append((i, st))

    # ---- the sustainable rate: two closed-loop senders, every write a 2xx
    stop = time.monotonic() + 4
    n_before = 0

    def closed_loop():
        while time.monotonic() < stop:
            i, b = fresh_body()
            send(i, b)

    t0 = time.monotonic()
    ths = [threading.Thread(target=closed_loop) for _ in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    secs = time.monotonic() - t0
    rate = len(acked) / secs
    log("sustainable: %d requests in %.1fs = %.1f req/s (%d samples/s), body %d bytes"
        % (len(acked), secs, rate, rate * SERIES * SAMPLES, size))
    c.check(not refused and not other, "closed-loop phase: every write 2xx", (refused[:5], other[:5]))
    c.check(rate > 0, "a rate was measured")

    # ---- twice that rate, open loop, with queries alongside
    base_acked = len(acked)
    interval = 1.0 / (2 * rate)
    duration = 6.0
    qres = []
    qstop = threading.Event()

    def queries():
        while not qstop.is_set():
            try:
                st, _, b = http("GET", g.url + "/api/v1/query?" + urllib.parse.urlencode(
                    {"query": "count(count by (r) (ovl))", "time": str((T0 + 60000) / 1000)}), timeout=30)
            except OSError:
                st = -1
            qres.append(st)
            time.sleep(0.1)

    qt = threading.Thread(target=queries)
    qt.start()
    workers = []
    start = time.monotonic()
    k = 0
    peak_during = 0
    while True:
        due = start + k * interval
        now = time.monotonic()
        if due > start + duration:
            break
        if due > now:
            time.sleep(due - now)
        i, b = fresh_body()
        w = threading.Thread(target=send, args=(i, b))
        w.start()
        workers.append(w)
        k += 1
        if k % 20 == 0:
            peak_during = max(peak_during, rss_mb(pid, "VmRSS"))
    offered_secs = time.monotonic() - start
    for w in workers:
        w.join()
    qstop.set()
    qt.join()
    n_acked = len(acked) - base_acked
    log("offered %d requests in %.1fs (%.1f req/s): %d acknowledged, %d refused with 503, %d other"
        % (k, offered_secs, k / offered_secs, n_acked, len(refused), len(other)))
    c.check(len(refused) > 0, "the excess is refused with 503")
    c.eq(no_retry_after, [], "every 503 carries Retry-After")
    c.eq(other, [], "no answer other than 2xx and 503 (no 429, no dropped connection)")
    c.check(n_acked > 0, "writes keep being acknowledged under overload")
    c.check(qres and all(s == 200 for s in qres), "queries answered during the overload",
            "%d queries, statuses %s" % (len(qres), sorted(set(qres))))

    # memory: the budgets plus what the acknowledged data takes in the head
    st, _, b = http("GET", g.url + "/metrics")
    peak = rss_mb(pid)
    series = len(acked) * SERIES
    bound = BUDGET_MIB + 120 + series * 2 // 1024  # budget, base + margin, ~2 KiB per series
    log("peak RSS %d MB (sampled during overload %d MB), %d series, bound %d MB"
        % (peak, peak_during, series, bound))
    c.check(peak < bound, "memory under the bound", "peak %d MB, bound %d MB" % (peak, bound))

    # ---- everything acknowledged is there, nothing refused is
    def q(expr):
        st, _, b = http("GET", g.url + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr, "time": str((T0 + SAMPLES * 1000) / 1000)}), timeout=120)
        r = json.loads(b)["data"]["result"]
        return float(r[0]["value"][1]) if r else 0.0

    c.eq(q("count(count by (r) (ovl))"), float(len(acked)), "every acknowledged request's series present")
    c.eq(q("sum(count_over_time(ovl[1h]))"), float(len(acked) * SERIES * SAMPLES),
         "every acknowledged sample present")
    if refused:
        c.eq(q('count(ovl{r=~"%s"})' % "|".join("%07d" % i for i in refused[:200])), 0.0,
             "nothing of a refused request was stored")
    g.stop()
    g.start()
    c.eq(q("sum(count_over_time(ovl[1h]))"), float(len(acked) * SERIES * SAMPLES),
         "every acknowledged sample present after a restart")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
