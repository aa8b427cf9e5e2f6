"""Restart at scale: 100,000 series written in rounds with window flushes
between them and checkpoints (a 1 MiB store.checkpoint_size), so that the
store holds series rows, blocks, head snapshots and WAL records from several
flushes. Then kill -9 (recovery = blocks + snapshot + WAL tail) and, after
checking everything, a clean SIGTERM restart.

After each restart: all 100,000 series are there (remote-read, count() over
PromQL, /api/v1/series), every acknowledged sample with its exact value,
none twice, and new samples for existing series are accepted.
(The sanitizer pass runs it with fewer series: RWGATE_E2E_SCALE.)"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, enc_labels_v1, f_bytes, f_double, f_varint, log, scaled, wait_for

c = Checks("test_restart_100k")
NSERIES = scaled(100_000, 1000) // 250 * 250  # a whole number per cluster
ROUNDS = 4
PER_REQUEST = 5000
SHARDS = 2
T0 = (int(time.time()) - 12 * 3600) * 1000
# rounds 2.5 h of data time apart: each round closes the 2 h flush window of
# the one before, so a window flush writes it into blocks between rounds
STEP = 9000 * 1000


def labels(i):
    return [("__name__", "big_metric"), ("cluster", "c%03d" % (i % 250)), ("pod", "pod-%06d" % i)]


def value(i, r):
    return float(i * 10 + r) + 0.5


ENC = [enc_labels_v1(labels(i)) for i in range(NSERIES)]  # encoded once, sent every round


def write_round(g, r):
    """one sample for every series; the WriteRequest is put together from
    the pre-encoded label sets (as rwlib.write_request_v1 would)"""
    t = T0 + r * STEP
    ts = f_varint(2, t)
    for b in range(0, NSERIES, PER_REQUEST):
        body = b"".join(f_bytes(1, ENC[i] + f_bytes(2, f_double(1, value(i, r)) + ts))
                        for i in range(b, min(b + PER_REQUEST, NSERIES)))
        st, _, resp = g.write(body)
        if st != 204:
            raise RuntimeError("round %d: write %d %s" % (r, st, resp[:300]))


def flushes(g):
    return g.metric("rwgate_store_flushes_total") or 0


def verify(g, rounds, what):
    res = g.read([(0, 2**62, [(0, "__name__", "big_metric")])], raw=True)[0]
    keys = [k for k, _ in res]
    c.eq(len(keys), NSERIES, "%s: series read back" % what)
    c.eq(len(set(keys)), len(keys), "%s: no series twice" % what)
    bad = []
    for k, samples in res:
        i = int(dict(k)["pod"][4:])
        want = [(T0 + r * STEP, value(i, r)) for r in range(rounds)]
        if samples != want:
            bad.append((k, samples[:6], want[:6]))
    c.check(not bad, "%s: every series has exactly its acknowledged samples" % what,
            "%d series differ, e.g. %r" % (len(bad), bad[:3]))
    t = (T0 + (rounds - 1) * STEP) / 1000
    st, d = g.api("/api/v1/query", query="count(big_metric)", time="%.3f" % t)
    c.check(st == 200 and d["data"]["result"] and d["data"]["result"][0]["value"][1] == str(NSERIES),
            "%s: count(big_metric) over PromQL" % what, repr(d)[:300])
    st, d = g.api("/api/v1/series", **{"match[]": 'big_metric{cluster="c007"}', "start": "%.3f" % (T0 / 1000),
                                       "end": "%.3f" % t})
    c.check(st == 200 and len(d.get("data", [])) == NSERIES // 250, "%s: /api/v1/series of one cluster" % what,
            repr(d)[:300])


g = Rwgate(extra=["--shards", str(SHARDS), "--set", "store.checkpoint_interval=1s",
                  "--set", "store.checkpoint_size=1MiB"]).start()
try:
    for r in range(ROUNDS):
        ck = flushes(g)
        t = time.time()
        write_round(g, r)
        log("round %d: %d series written in %.1fs" % (r, NSERIES, time.time() - t))
        if r < ROUNDS - 1:
            # a flush of every shard between two rounds
            wait_for(lambda: flushes(g) >= ck + SHARDS, "a flush after round %d" % r, timeout=120)
    log("kill -9 with the last round in the WAL only")
    g.kill9()
    t = time.time()
    g.start(timeout=300)
    log("recovered %d series in %.1fs" % (NSERIES, time.time() - t))
    verify(g, ROUNDS, "after kill -9")
    write_round(g, ROUNDS)
    c.eq(g.stop(timeout=300), 0, "clean stop")
    t = time.time()
    g.start(timeout=300)
    log("restarted after a clean stop in %.1fs" % (time.time() - t))
    verify(g, ROUNDS + 1, "after a clean restart")
    c.eq(g.stop(timeout=300), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
