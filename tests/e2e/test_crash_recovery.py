"""Crash test: while several senders write, rwgate is killed with SIGKILL and
restarted on the same data directory, 20 times, with a small
store.checkpoint_size and WAL segments so that flushes (memory written into
blocks, covered WAL segments deleted) happen between the kills and recovery
starts from blocks plus a WAL tail.

Each sender resends a request until it gets a 2xx, as Prometheus does (an
identical resend of samples that did reach the disk is accepted silently),
and finishes its last request before it stops. Checked:
- after every restart, new writes are acknowledged again: a fresh probe
  write gets 204, and every sender gets new 2xx replies (a binary that
  answered 503 after each restart fails here);
- a flush wrote new blocks before every kill, and the WAL segments a kill
  left behind are deleted once flushes cover them (the WAL does not grow
  from cycle to cycle);
- after the last restart the store holds exactly the acknowledged samples,
  value for value: none missing, none changed, no series and no timestamp
  twice, nothing that was never sent;
- after a clean stop and start the data is the same, value for value."""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, write_request_v1, log, wait_for

c = Checks("test_crash_recovery")
SENDERS = 3
SERIES_PER_SENDER = 200
# the sanitizer pass of tests/run.sh sets fewer: it looks for memory errors
# on these paths, the release pass for lost writes
KILLS = int(os.environ.get("RWGATE_CRASH_KILLS", "20"))
SHARDS = 2
T0 = 1_700_000_000_000
STEP = 300_000
rng = random.Random(7)


class Sender(threading.Thread):
    def __init__(self, idx, g):
        super().__init__(daemon=True)
        self.idx = idx
        self.g = g
        self.step = 0
        self.acks = 0
        self.acked = {}          # series name -> list of (t, v) acknowledged
        self.pending = None      # a request not yet acknowledged: resend it first
        self.stop = threading.Event()
        self.errors = []

    def batch(self, step):
        # 5 minutes of data time per request: the 2 h flush windows close
        # within a cycle, so window flushes write blocks and delete WAL
        # segments between the kills
        t = T0 + step * STEP
        out = []
        for s in range(SERIES_PER_SENDER):
            v = float(step * 1000 + s) + 0.25
            out.append(([("__name__", "crash_metric"), ("sender", str(self.idx)), ("series", "%03d" % s)],
                        [(t, v)]))
        return out

    def run(self):
        # on stop, the request in hand is still sent until acknowledged, so
        # that what is stored is exactly what was acknowledged
        while not self.stop.is_set() or self.pending is not None:
            if self.pending is None:
                self.pending = (self.step, self.batch(self.step))
                self.step += 1
            step, series = self.pending
            try:
                st, _, body = self.g.write(write_request_v1(series))
            except OSError:
                time.sleep(0.05)  # server down: retry the same request
                continue
            if st == 204:
                for labels, samples in series:
                    self.acked.setdefault(labels[2][1], []).extend(samples)
                self.acks += 1
                self.pending = None
            elif st >= 500:
                time.sleep(0.05)
            else:
                self.errors.append((st, body[:200]))
                self.pending = None


def wal_segments(data):
    """the WAL segment files a killed rwgate left behind"""
    return set(os.listdir(os.path.join(data, "wal")))


def blocks(g):
    return g.metric("rwgate_store_blocks") or 0


def probe_write(g, k):
    """a write of a series no sender uses must get 204 soon after a restart;
    -> the final status (503s are retried until the deadline)"""
    body = write_request_v1([([("__name__", "crash_probe")], [(T0 + k * 1000, float(k))])])
    deadline = time.time() + 60
    while True:
        st, _, b = g.write(body)
        if st == 204 or time.time() > deadline:
            return st, b[:200]
        time.sleep(0.1)


def read_all(g, name):
    return g.read([(0, 2**62, [(0, "__name__", name)])], raw=True)[0]


g = Rwgate(extra=["--shards", str(SHARDS), "--set", "store.checkpoint_interval=1s",
                  "--set", "store.checkpoint_size=1MiB", "--set", "store.wal_segment_size=64KiB"]).start()
senders = [Sender(i, g) for i in range(SENDERS)]
probes = []
try:
    for s in senders:
        s.start()
    for k in range(KILLS + 1):
        # after every (re)start: new writes are acknowledged again
        st, b = probe_write(g, k)
        c.eq(st, 204, "cycle %d: a new write is acknowledged after the (re)start (%r)" % (k, b))
        if st == 204:
            probes.append((T0 + k * 1000, float(k)))
        base = [s.acks for s in senders]
        try:
            wait_for(lambda: all(s.acks >= b0 + 5 for s, b0 in zip(senders, base)),
                     "every sender acknowledged again", timeout=90)
            ok = True
        except TimeoutError:
            ok = False
        c.check(ok, "cycle %d: every sender gets 2xx replies again" % k,
                "acks %s -> %s; log: %s" % (base, [s.acks for s in senders], g.log_tail(600)))
        if k == KILLS:
            break
        # a flush writes new blocks of every shard while the senders
        # write, then the kill
        b0 = blocks(g)
        try:
            wait_for(lambda: blocks(g) >= b0 + SHARDS, "new blocks of every shard", timeout=60)
            ok = True
        except TimeoutError:
            ok = False
        c.check(ok, "cycle %d: flushes write blocks between the kills" % k)
        if k > 0:
            # the segments the last kill left are replayed into memory, then
            # flushed with their windows and deleted, while new ones grow
            try:
                wait_for(lambda: prev_segs - wal_segments(g.data), "a replayed WAL segment deleted",
                         timeout=60)
                ok = True
            except TimeoutError:
                ok = False
            c.check(ok, "cycle %d: WAL segments the flushes cover are deleted" % k,
                    "segments at the last kill %s, now %s" % (sorted(prev_segs), sorted(wal_segments(g.data))))
        time.sleep(rng.uniform(0.2, 1.2))  # kill at a random point after it
        log("kill -9 #%d (steps so far: %s)" % (k + 1, [s.step for s in senders]))
        g.kill9()
        segs = wal_segments(g.data)
        prev_segs = segs
        t = time.time()
        g.start(timeout=120)
        log("restarted in %.2fs (%d WAL segments to replay)" % (time.time() - t, len(segs)))
    for s in senders:
        s.stop.set()
    for s in senders:
        s.join(120)
        c.check(not s.is_alive(), "sender %d finished its last request" % s.idx)
    for s in senders:
        c.eq(s.errors, [], "sender %d got no 4xx (resends after a crash are accepted)" % s.idx)

    # what was acknowledged, series by series
    want = {}
    for s in senders:
        for name, samples in s.acked.items():
            key = (("__name__", "crash_metric"), ("sender", str(s.idx)), ("series", name))
            want[key] = sorted(samples)
    total = sum(len(v) for v in want.values())
    log("acknowledged samples: %d over %d kills" % (total, KILLS))
    c.check(total > SENDERS * SERIES_PER_SENDER * 5 * (KILLS + 1), "the load generator got a meaningful number of acks",
            str(total))

    def compare(got, when):
        keys = [k for k, _ in got]
        c.eq(len(keys), len(set(keys)), "%s: no series returned twice" % when)
        dup_ts = [k for k, smp in got if len({t for t, _ in smp}) != len(smp)]
        c.eq(dup_ts[:5], [], "%s: no timestamp twice in a series" % when)
        got = dict(got)
        missing = wrong = 0
        for key, samples in want.items():
            stored = dict(got.get(key, []))
            for t, v in samples:
                if t not in stored:
                    missing += 1
                elif stored[t] != v:
                    wrong += 1
        extra = sum(len(v) for v in got.values()) - total
        c.eq(missing, 0, "%s: acknowledged samples missing" % when)
        c.eq(wrong, 0, "%s: acknowledged samples with a wrong value" % when)
        c.eq(extra, 0, "%s: samples stored that were never acknowledged" % when)
        c.eq(sorted(got), sorted(want), "%s: exactly the acknowledged series" % when)

    got = read_all(g, "crash_metric")
    compare(got, "after %d kills" % KILLS)
    c.eq(dict(read_all(g, "crash_probe")).get((("__name__", "crash_probe"),)), probes,
         "the probe writes after every restart are stored")
    c.eq(g.stop(), 0, "clean stop after the crash cycles")
    # and once more after a clean shutdown + start (checkpointed state)
    g.start(timeout=120)
    got2 = read_all(g, "crash_metric")
    compare(got2, "after a clean restart")
    c.check(sorted(got2) == sorted(got), "same series and values after a clean restart as before it")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for s in senders:
        s.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
