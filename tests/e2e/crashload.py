"""crashload - the write load and the final check shared by the crash tests
(test_crash_recovery, test_crash_full_disk): senders that write batches of
samples while rwgate is killed and restarted, remembering exactly what was
acknowledged, and a comparison of what is stored with that record."""

import threading
import time

from rwlib import write_request_v1

T0 = 1_700_000_000_000
STEP = 300_000


class Sender(threading.Thread):
    """Writes `series` series of crash_metric{sender=idx}, one sample each
    per request, `step` ms of data time apart (5 minutes by default: the 2 h
    flush windows close within a crash cycle). Resends a request until it gets a 2xx, as
    Prometheus does (an identical resend of samples that did reach the disk
    is accepted silently), and on stop still sends the request in hand until
    it is acknowledged, so that what is stored is exactly what was
    acknowledged."""

    def __init__(self, idx, g, series, step=STEP):
        super().__init__(daemon=True)
        self.idx = idx
        self.step_ms = step
        self.g = g
        self.series = series
        self.step = 0
        self.acks = 0
        self.refusals = 0        # 5xx replies (full disk, overload, starting)
        self.acked = {}          # series name -> list of (t, v) acknowledged
        self.pending = None      # a request not yet acknowledged: resend it first
        self.stop = threading.Event()
        self.errors = []

    def batch(self, step):
        t = T0 + step * self.step_ms
        return [([("__name__", "crash_metric"), ("sender", str(self.idx)), ("series", "%03d" % s)],
                 [(t, float(step * 1000 + s) + 0.25)]) for s in range(self.series)]

    def run(self):
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
                self.refusals += 1
                time.sleep(0.05)
            else:
                self.errors.append((st, body[:200]))
                self.pending = None


def probe_write(g, k, timeout=60):
    """a write of a series no sender uses, retried on 5xx until it gets 204
    or the deadline passes; -> (final status, body)"""
    body = write_request_v1([([("__name__", "crash_probe")], [(T0 + k * 1000, float(k))])])
    deadline = time.time() + timeout
    while True:
        st, _, b = g.write(body)
        if st == 204 or time.time() > deadline:
            return st, b[:200]
        time.sleep(0.1)


def read_all(g, name):
    return g.read([(0, 2**62, [(0, "__name__", name)])], raw=True)[0]


def acknowledged(senders):
    """series key (as remote-read returns it) -> sorted acknowledged samples"""
    want = {}
    for s in senders:
        for name, samples in s.acked.items():
            key = (("__name__", "crash_metric"), ("sender", str(s.idx)), ("series", name))
            want[key] = sorted(samples)
    return want


def compare(c, got, want, when):
    """got (remote-read raw result) holds exactly the samples of want: none
    missing, none with another value, nothing never acknowledged, no series
    or timestamp twice"""
    total = sum(len(v) for v in want.values())
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
