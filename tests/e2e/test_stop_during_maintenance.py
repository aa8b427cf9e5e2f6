"""A stop during long background work of the store: the maintenance
thread's flushes and retention passes have no deadline, and a stop used to
wait for the one in progress to finish before the closing flush (which has
its own 2.5 s budget) even began; at a million series a full flush runs for many
seconds, past what systemd or Kubernetes grant a stop. Now a background
flush that sees the store closing writes what it has collected and ends
("interrupted (stopping)" in the log), the closing flush writes the rest or
puts what its budget leaves into a head snapshot; a retention pass stops between its steps and leaves
what it did not delete whole on disk for the next start.

Flush: 200,000 series (one sample each, hours old), then one sample at the
present: the 2-hour window of the old samples is closed and the next
maintenance pass flushes all of them into a block. While that flush runs
(rwgate_store_flushes_running), SIGTERM. The process must stop cleanly, the
log must show the background flush interrupted, and after a restart every
acknowledged sample is there with its value, once.

Retention: the same data in a block, then a restart with a 1 h retention
(everything but the present sample expires at the first pass, one second
after the start): SIGTERM while the pass deletes (rwgate_store_retention_running).
It must stop cleanly with the pass interrupted; the next start finishes the
deletion (only the present sample's series is left), and a start with the
default retention brings none of the expired data back.
(The sanitizer pass runs it with fewer series: RWGATE_E2E_SCALE.)"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, enc_labels_v1, f_bytes, f_double, f_varint, log, scaled, wait_for

c = Checks("test_stop_during_maintenance")
NSERIES = scaled(200_000, 20_000) // 1000 * 1000
PER_REQUEST = 5000
NOW = int(time.time()) * 1000
T0 = NOW - 6 * 3600 * 1000  # a closed 2-hour window once NOW is written


def labels(i):
    return [("__name__", "sdf_metric"), ("cluster", "c%03d" % (i % 100)), ("pod", "pod-%06d" % i)]


def value(i):
    return float(i) * 3 + 0.25


def post(g, series):
    """one WriteRequest of (labels, value, t) series; must be acknowledged"""
    body = b"".join(f_bytes(1, enc_labels_v1(l) + f_bytes(2, f_double(1, v) + f_varint(2, t)))
                    for l, v, t in series)
    st, _, resp = g.write(body)
    if st != 204:
        raise RuntimeError("write %d %s" % (st, resp[:300]))


def write_all(g):
    for b in range(0, NSERIES, PER_REQUEST):
        post(g, [(labels(i), value(i), T0) for i in range(b, min(b + PER_REQUEST, NSERIES))])


def trigger(g):
    post(g, [([("__name__", "sdf_trigger")], 1.0, NOW)])


def caught_running(g, gauge, counter, before, what):
    """polls until the gauge shows the work running (True) or the counter
    shows it already done (False: a missed attempt)"""
    running = lambda: g.metric(gauge) or 0
    wait_for(lambda: running() >= 1 or (g.metric(counter) or 0) > before,
             "the background %s to start" % what, timeout=60, interval=0.005)
    return running() >= 1


def verify(g, what):
    res = g.read([(0, 2**62, [(0, "__name__", "sdf_metric")])], raw=True)[0]
    c.eq(len(res), NSERIES, "%s: series read back" % what)
    bad = 0
    for lab, samples in res:
        i = int(dict(lab)["pod"][4:])
        if samples != [(T0, value(i))]:
            bad += 1
    c.eq(bad, 0, "%s: every series has exactly its one acknowledged sample" % what)


def attempt(g, n):
    """one stop during the flush; True when the log shows the background flush
    interrupted. A SIGTERM that lands after the flush collected its last
    slice (while it writes the block index and syncs) rightly lets it finish,
    so the scenario is tried up to three times; with the old behaviour no
    attempt shows it."""
    write_all(g)
    log("attempt %d: %d series written" % (n, NSERIES))
    wait_for(lambda: not g.metric("rwgate_store_flushes_running"),
             "no flush running before the trigger", timeout=120)
    done0 = g.metric("rwgate_store_flushes_total") or 0
    trigger(g)
    if not caught_running(g, "rwgate_store_flushes_running", "rwgate_store_flushes_total",
                          done0, "flush"):
        log("attempt %d: the flush ended before it was seen running" % n)
        return False
    t0 = time.time()
    c.eq(g.stop(timeout=120), 0, "clean stop during the background flush")
    log("stopped %.2f s after SIGTERM" % (time.time() - t0))
    text = g.log_tail(200_000)
    c.check("store closed" in text, "the store closed after the closing flush")
    interrupted = "interrupted (stopping) window flush" in text
    if not interrupted:
        log("the flush was past its last slice:\n" +
            "\n".join(l for l in text.splitlines() if "flush" in l)[-2000:])
    # whatever the flush had done, nothing acknowledged is lost
    g.start()
    verify(g, "attempt %d, after the stop" % n)
    c.eq(g.stop(), 0, "clean stop")
    g.start()
    verify(g, "attempt %d, after a second restart" % n)
    c.eq(g.stop(), 0, "clean stop")
    return interrupted


def retention_attempt(g, n):
    """True when the log shows the retention pass interrupted by the stop"""
    short = ["--shards", "1", "--retention", "1h", "--set", "store.checkpoint_interval=1s"]
    write_all(g)
    trigger(g)
    c.eq(g.stop(timeout=120), 0, "retention attempt %d: clean stop (the data into a block)" % n)
    c.check("partial" not in g.log_tail(200_000), "the closing flush wrote everything")
    g.extra = short
    g.start()
    if not caught_running(g, "rwgate_store_retention_running",
                          "rwgate_store_retention_series_dropped_total", 0, "retention pass"):
        log("retention attempt %d: the pass ended before it was seen running" % n)
        g.stop()
        return False
    t0 = time.time()
    c.eq(g.stop(timeout=120), 0, "clean stop during the retention pass")
    log("stopped %.2f s after SIGTERM" % (time.time() - t0))
    text = g.log_tail(200_000)
    interrupted = "retention interrupted (stopping" in text
    if not interrupted:
        log("the retention pass was past its last step:\n" +
            "\n".join(l for l in text.splitlines() if "retention" in l)[-2000:])
    # the next start finishes the deletion, durably
    g.start()
    wait_for(lambda: g.metric("rwgate_store_series") == 1
             and not g.metric("rwgate_store_retention_running")
             and "retention: dropped" in g.log_tail(200_000),
             "retention to finish", timeout=120)
    res = g.read([(0, 2**62, [(0, "__name__", "sdf_metric")])])[0]
    c.eq(len(res), 0, "retention attempt %d: the expired series are gone" % n)
    res = g.read([(0, 2**62, [(0, "__name__", "sdf_trigger")])])[0]
    c.eq(list(res.values()), [[(NOW, 1.0)]], "the present sample stays")
    c.eq(g.stop(), 0, "clean stop")
    g.extra = ["--shards", "1"]
    g.start()
    res = g.read([(0, 2**62, [(0, "__name__", "sdf_metric")])])[0]
    c.eq(len(res), 0, "with the default retention none of the expired data comes back")
    c.eq(g.stop(), 0, "clean stop")
    return interrupted


def with_rwgate(fn, n):
    # one shard: its flush and retention are one long pass over every series
    g = Rwgate(extra=["--shards", "1"]).start()
    try:
        return fn(g, n)
    finally:
        if c.failed:
            log("rwgate log tail:\n" + g.log_tail())
        g.cleanup()


for name, fn in (("flush", attempt), ("retention", retention_attempt)):
    ok = False
    for n in range(1, 4):
        ok = with_rwgate(fn, n)
        if ok or c.failed:
            break
    c.check(ok, "a background %s ended early for the stop (interrupted)" % name)
c.done()
