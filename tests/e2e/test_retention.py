"""Retention in the running binary: data with old timestamps (2020) and a
1 h retention, measured from the newest sample stored (not the wall clock),
enforced by the maintenance thread (1 s interval here).

Checked:
- old data stays as long as it is within an hour of the newest sample,
  although every timestamp is years old;
- once newer samples arrive, whole blocks older than the window are deleted
  (counted in /metrics; nothing older than the window plus one block window
  of 2 h is left: blocks are the unit of retention, as in Prometheus), while
  every sample inside the window is still there with its value;
- a series whose samples all fell out of the window is gone from
  remote-read and /api/v1/series;
- retention holds across a restart;
- database space is reused: after six more hours of data the shard files
  (measured after a clean stop) are about as large as after the first five,
  not twice as large."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, log, wait_for, write_request_v1

c = Checks("test_retention")
HOUR = 3600 * 1000
STEP = 15000
T0 = 1_580_000_000_000  # January 2020
SERIES = 200
BLOCK_SPAN = 2 * HOUR  # data goes into blocks of 2 h windows (store/FORMAT.md)
SHARDS = 2


def value(s, t):
    return float((t - T0) // STEP * 10 + s)


def write_hours(g, h_from, h_to, extra=()):
    """ret_metric for SERIES series from hour h_from to h_to (excluded), in
    time order, requests of 20 steps; -> {labels: [(t, v)]} written"""
    sent = {}
    t = T0 + h_from * HOUR
    end = T0 + h_to * HOUR
    while t < end:
        ts = [t + k * STEP for k in range(20) if t + k * STEP < end]
        series = []
        for s in range(SERIES):
            labels = [("__name__", "ret_metric"), ("s", "%03d" % s)]
            samples = [(x, value(s, x)) for x in ts]
            series.append((labels, samples))
            sent.setdefault(tuple(labels), []).extend(samples)
        for labels, samples in extra:
            series.append((labels, [p for p in samples if p[0] in ts]))
        st, _, b = g.write(write_request_v1([x for x in series if x[1]]))
        if st != 204:
            raise RuntimeError("write: %d %s" % (st, b[:300]))
        t = ts[-1] + STEP
    return sent


def read(g, name):
    return g.read([(0, 2**62, [(0, "__name__", name)])])[0]


def shard_bytes(data):
    total = 0
    for k in range(SHARDS):
        for suffix in ("", "-wal"):
            p = os.path.join(data, "shard-%d.db%s" % (k, suffix))
            if os.path.exists(p):
                total += os.path.getsize(p)
    return total


def check_window(g, sent, newest, what):
    """every sent sample within the hour before newest is there; nothing
    older than the window and one block window; returns the oldest timestamp"""
    got = read(g, "ret_metric")
    cutoff = newest - HOUR
    missing = wrong = 0
    for key, samples in sent.items():
        stored = dict(got.get(key, []))
        for t, v in samples:
            if t < cutoff:
                continue
            if t not in stored:
                missing += 1
            elif stored[t] != v:
                wrong += 1
    c.eq(missing, 0, "%s: samples inside the retention window missing" % what)
    c.eq(wrong, 0, "%s: samples inside the retention window with a wrong value" % what)
    oldest = min((t for smp in got.values() for t, _ in smp), default=None)
    c.check(oldest is not None and oldest >= cutoff - BLOCK_SPAN,
            "%s: nothing older than the window plus one block window is left" % what,
            "oldest %s, cut-off %d" % (oldest, cutoff))
    return oldest


g = Rwgate(extra=["--retention", "1h", "--shards", str(SHARDS), "--set", "store.checkpoint_interval=1s"]).start()
try:
    # 1. 50 minutes of 2020 data: all inside the window, years before "now"
    old = [([("__name__", "ret_old"), ("s", str(s))], [(T0 + k * STEP, float(k)) for k in range(40)])
           for s in range(20)]
    sent = write_hours(g, 0, 1, extra=old)
    c.eq(sum(len(v) for v in read(g, "ret_old").values()), 20 * 40, "ret_old is stored (10 min of 2020 data)")
    # the maintenance thread runs every second: give it a few rounds to prove
    # that nothing inside the window is dropped
    ck = g.metric("rwgate_store_maintenance_runs_total") or 0
    wait_for(lambda: (g.metric("rwgate_store_maintenance_runs_total") or 0) >= ck + 3,
             "three maintenance rounds")
    c.eq(g.metric("rwgate_store_retention_blocks_dropped_total"), 0.0, "nothing dropped while all data is in the window")
    c.eq(sum(len(v) for v in read(g, "ret_metric").values()), SERIES * 240, "all of the first hour is there")

    # 2. four more hours: the first block window (with ret_old) falls out of
    #    the retention window
    sent_more = write_hours(g, 1, 5)
    for k, v in sent_more.items():
        sent[k].extend(v)
    newest = T0 + 5 * HOUR - STEP
    wait_for(lambda: not read(g, "ret_old"), "ret_old dropped by retention", timeout=90)
    wait_for(lambda: min(t for smp in read(g, "ret_metric").values() for t, _ in smp) >= newest - HOUR - BLOCK_SPAN,
             "old blocks of ret_metric dropped", timeout=90)
    # whole blocks, or head data that retention trimmed before its window
    # was flushed into a block (the data arrives faster than the flushes)
    dropped = (g.metric("rwgate_store_retention_blocks_dropped_total") or 0) + \
        (g.metric("rwgate_store_retention_series_dropped_total") or 0)
    c.check(dropped >= 1, "retention counted what it dropped", str(dropped))
    c.check((g.metric("rwgate_store_retention_series_dropped_total") or 0) >= 20, "retention counted dropped series")
    check_window(g, sent, newest, "after 5 h")
    st, d = g.api("/api/v1/series", **{"match[]": "ret_old", "start": "0", "end": str(2**31)})
    c.check(st == 200 and d.get("data") == [], "/api/v1/series no longer lists ret_old", repr(d)[:300])
    c.eq(g.stop(), 0, "clean stop")
    size1 = shard_bytes(g.data)
    log("shard files after 5 h of data: %d bytes" % size1)

    # 3. restart: retention still holds; six more hours reuse the space
    g.start()
    check_window(g, sent, newest, "after a restart")
    c.eq(read(g, "ret_old"), {}, "ret_old stays gone after a restart")
    sent_more = write_hours(g, 5, 11)
    for k, v in sent_more.items():
        sent[k].extend(v)
    newest = T0 + 11 * HOUR - STEP
    wait_for(lambda: min(t for smp in read(g, "ret_metric").values() for t, _ in smp) >= newest - HOUR - BLOCK_SPAN,
             "old blocks dropped after 11 h", timeout=90)
    check_window(g, sent, newest, "after 11 h")
    c.eq(g.stop(), 0, "clean stop")
    size2 = shard_bytes(g.data)
    log("shard files after 11 h of data: %d bytes" % size2)
    c.check(size2 < size1 * 1.5, "the database space of dropped chunks is reused (files did not grow with the data)",
            "%d bytes after 5 h, %d after 11 h" % (size1, size2))
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
