"""Crash test: while several senders write, rwgate is killed with SIGKILL,
restarted on the same data directory, several times. Every sample that got a
2xx reply must be there, with its exact value, after the last restart; a
request that failed because of the crash is resent after the restart, as
Prometheus does, and must then be accepted (an identical resend of samples
that did reach the disk is accepted silently)."""

import random
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rwlib import Checks, Rwgate, write_request_v1, log

c = Checks("test_crash_recovery")
SENDERS = 3
SERIES_PER_SENDER = 200
KILLS = 4
T0 = 1_700_000_000_000
rng = random.Random(7)


class Sender(threading.Thread):
    def __init__(self, idx, g):
        super().__init__(daemon=True)
        self.idx = idx
        self.g = g
        self.step = 0
        self.acked = {}          # (series name) -> list of (t, v) acknowledged
        self.pending = None      # a request that failed: resend it first
        self.stop = threading.Event()
        self.errors = []

    def batch(self, step):
        t = T0 + step * 15000
        out = []
        for s in range(SERIES_PER_SENDER):
            v = float(step * 1000 + s) + 0.25
            out.append(([("__name__", "crash_metric"), ("sender", str(self.idx)), ("series", "%03d" % s)],
                        [(t, v)]))
        return out

    def run(self):
        while not self.stop.is_set():
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
                self.pending = None
            elif st >= 500:
                time.sleep(0.05)
            else:
                self.errors.append((st, body[:200]))
                self.pending = None


g = Rwgate(extra=["--shards", "2"]).start()
senders = [Sender(i, g) for i in range(SENDERS)]
try:
    for s in senders:
        s.start()
    for k in range(KILLS):
        time.sleep(rng.uniform(1.0, 2.5))
        log("kill -9 #%d (steps so far: %s)" % (k + 1, [s.step for s in senders]))
        g.kill9()
        time.sleep(0.2)
        t = time.time()
        g.start()
        log("restarted in %.2fs" % (time.time() - t))
    time.sleep(1.0)
    for s in senders:
        s.stop.set()
    for s in senders:
        s.join(30)
    for s in senders:
        c.eq(s.errors, [], "sender %d got no 4xx (resends after a crash are accepted)" % s.idx)
    # read back everything
    got = g.read([(0, 2**62, [(0, "__name__", "crash_metric")])])[0]
    total = missing = wrong = 0
    for s in senders:
        for name, samples in s.acked.items():
            key = (("__name__", "crash_metric"), ("sender", str(s.idx)), ("series", name))
            stored = dict(got.get(key, []))
            for t, v in samples:
                total += 1
                if t not in stored:
                    missing += 1
                elif stored[t] != v:
                    wrong += 1
    log("acknowledged samples: %d over %d kills" % (total, KILLS))
    c.check(total > SENDERS * SERIES_PER_SENDER * 5, "the load generator got a meaningful number of acks", str(total))
    c.eq(missing, 0, "acknowledged samples missing after kill -9 and restart")
    c.eq(wrong, 0, "acknowledged samples with a wrong value")
    c.eq(g.stop(), 0, "clean stop after the crash cycles")
    # and once more after a clean shutdown + start (checkpointed state)
    g.start()
    got2 = g.read([(0, 2**62, [(0, "__name__", "crash_metric")])])[0]
    c.eq(sum(len(v) for v in got2.values()), sum(len(v) for v in got.values()),
         "same data after a clean restart")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for s in senders:
        s.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
