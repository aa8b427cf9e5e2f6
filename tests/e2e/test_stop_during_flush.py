"""A stop during a long background flush: the maintenance thread's flushes
have no deadline, and a stop used to wait for the one in progress to finish
before the closing flush (which has its 3 s budget) even began; at a million
series a full flush runs for many seconds, past what systemd or Kubernetes
grant a stop. Now a background flush that sees the store closing writes what
it has collected and ends ("interrupted (stopping)" in the log), and the
closing flush writes the rest or leaves it in the WAL.

The test writes 200,000 series (one sample each, hours old), then one sample
at the present: the 2-hour window of the old samples is closed and the next
maintenance pass flushes all of them into a block. While that flush runs
(rwgate_store_flushes_running), SIGTERM. The process must stop cleanly, the
log must show the background flush interrupted, and after a restart every
acknowledged sample is there with its value, once.
(The sanitizer pass runs it with fewer series: RWGATE_E2E_SCALE.)"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, enc_labels_v1, f_bytes, f_double, f_varint, log, scaled, wait_for

c = Checks("test_stop_during_flush")
NSERIES = scaled(200_000, 20_000) // 1000 * 1000
PER_REQUEST = 5000
NOW = int(time.time()) * 1000
T0 = NOW - 6 * 3600 * 1000  # a closed 2-hour window once NOW is written


def labels(i):
    return [("__name__", "sdf_metric"), ("cluster", "c%03d" % (i % 100)), ("pod", "pod-%06d" % i)]


def value(i):
    return float(i) * 3 + 0.25


def write_all(g):
    ts = f_varint(2, T0)
    for b in range(0, NSERIES, PER_REQUEST):
        body = b"".join(f_bytes(1, enc_labels_v1(labels(i)) + f_bytes(2, f_double(1, value(i)) + ts))
                        for i in range(b, min(b + PER_REQUEST, NSERIES)))
        st, _, resp = g.write(body)
        if st != 204:
            raise RuntimeError("write %d %s" % (st, resp[:300]))


def trigger(g):
    body = f_bytes(1, enc_labels_v1([("__name__", "sdf_trigger")]) +
                   f_bytes(2, f_double(1, 1.0) + f_varint(2, NOW)))
    st, _, resp = g.write(body)
    if st != 204:
        raise RuntimeError("trigger write %d %s" % (st, resp[:300]))


def verify(g, what):
    res = g.read([(0, 2**62, [(0, "__name__", "sdf_metric")])], raw=True)[0]
    c.eq(len(res), NSERIES, "%s: series read back" % what)
    bad = 0
    for lab, samples in res:
        i = int(dict(lab)["pod"][4:])
        if samples != [(T0, value(i))]:
            bad += 1
    c.eq(bad, 0, "%s: every series has exactly its one acknowledged sample" % what)


def attempt(n):
    """one stop during the flush; True when the log shows the background flush
    interrupted. A SIGTERM that lands after the flush collected its last
    slice (while it writes the block index and syncs) rightly lets it finish,
    so the scenario is tried up to three times; with the old behaviour no
    attempt shows it."""
    # one shard: its flush is one long pass over every series
    g = Rwgate(extra=["--shards", "1"]).start()
    try:
        write_all(g)
        log("attempt %d: %d series written" % (n, NSERIES))
        running = lambda: g.metric("rwgate_store_flushes_running") or 0
        done = lambda: g.metric("rwgate_store_flushes_total") or 0
        wait_for(lambda: running() == 0, "no flush running before the trigger", timeout=120)
        done0 = done()
        trigger(g)
        wait_for(lambda: running() >= 1 or done() > done0,
                 "the background flush to start", timeout=60, interval=0.005)
        if running() == 0:
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
    finally:
        if c.failed:
            log("rwgate log tail:\n" + g.log_tail())
        g.cleanup()


ok = False
for n in range(1, 4):
    ok = attempt(n)
    if ok or c.failed:
        break
c.check(ok, "a background flush ended early for the stop (interrupted)")
c.done()
