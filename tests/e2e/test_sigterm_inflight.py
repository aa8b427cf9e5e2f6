"""SIGTERM with writes in flight: several writer threads send requests back
to back; rwgate gets SIGTERM while requests are being received, decoded and
committed. It must finish what it accepted, persist and exit 0. A request
either got a 2xx - and then every sample of it is read back after the
restart, with its value - or failed (refused connection, reset, 503) and is
resent to the restarted server, as Prometheus does. Three stop/start cycles;
at the end the store holds exactly the acknowledged samples."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, enc_labels_v1, f_bytes, f_double, f_varint, log, wait_for

c = Checks("test_sigterm_inflight")
WRITERS = 4
SERIES = 1000
CYCLES = 3
T0 = (int(time.time()) - 3600) * 1000


class Writer(threading.Thread):
    def __init__(self, idx, g):
        super().__init__(daemon=True)
        self.idx, self.g = idx, g
        self.enc = [enc_labels_v1([("__name__", "term_metric"), ("s", "%04d" % s), ("w", str(idx))])
                    for s in range(SERIES)]
        self.step = 0
        self.acks = 0
        self.acked = []      # steps acknowledged
        self.failed = 0      # attempts that got no 2xx
        self.errors = []     # 4xx: never expected
        self.stop = threading.Event()

    def value(self, step, s):
        return float(step * 10000 + s) + 0.125

    def body(self, step):
        ts = f_varint(2, T0 + step * 1000)
        return b"".join(f_bytes(1, self.enc[s] + f_bytes(2, f_double(1, self.value(step, s)) + ts))
                        for s in range(SERIES))

    def run(self):
        pending = None
        while not self.stop.is_set() or pending is not None:
            if pending is None:
                pending = self.step
                self.step += 1
            try:
                st, _, b = self.g.write(self.body(pending))
            except OSError:
                self.failed += 1
                time.sleep(0.02)
                continue
            if 200 <= st < 300:
                self.acked.append(pending)
                self.acks += 1
                pending = None
            elif st >= 500:
                self.failed += 1
                time.sleep(0.02)
            else:
                self.errors.append((st, b[:200]))
                pending = None


g = Rwgate(extra=["--shards", "2"]).start()
writers = [Writer(i, g) for i in range(WRITERS)]
try:
    for w in writers:
        w.start()
    for k in range(CYCLES):
        base = [w.acks for w in writers]
        wait_for(lambda: all(w.acks >= b + 10 for w, b in zip(writers, base)), "writers busy", timeout=120)
        acked_before = sum(w.acks for w in writers)
        log("SIGTERM #%d with %d writers in flight (%d requests acknowledged so far)" % (k + 1, WRITERS, acked_before))
        rc = g.stop(timeout=120)
        c.eq(rc, 0, "cycle %d: SIGTERM with writes in flight exits 0" % k)
        c.check("stopped cleanly" in g.log_tail(4000), "cycle %d: rwgate says it stopped cleanly" % k)
        g.start(timeout=120)
    wait_for(lambda: all(w.acks >= 10 for w in writers), "writers busy after the last start", timeout=120)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(120)
        c.check(not w.is_alive(), "writer %d finished its last request" % w.idx)
        c.eq(w.errors[:3], [], "writer %d: no 4xx" % w.idx)
    failed = sum(w.failed for w in writers)
    log("%d requests acknowledged, %d attempts failed around the stops" % (sum(w.acks for w in writers), failed))
    c.check(failed > 0, "some requests were in flight or refused during the stops (the test hit the window)",
            str(failed))
    got = g.read([(0, 2**62, [(0, "__name__", "term_metric")])], raw=True)[0]
    keys = [k for k, _ in got]
    c.eq(len(keys), len(set(keys)), "no series twice")
    got = dict(got)
    bad = 0
    for w in writers:
        for s in range(SERIES):
            key = (("__name__", "term_metric"), ("s", "%04d" % s), ("w", str(w.idx)))
            want = [(T0 + step * 1000, w.value(step, s)) for step in sorted(w.acked)]
            if got.get(key) != want:
                bad += 1
    c.eq(bad, 0, "series whose stored samples differ from the acknowledged ones")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for w in writers:
        w.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
