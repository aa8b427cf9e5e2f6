"""Crash test on a small file system that fills up: the load and checks of
test_crash_recovery (senders that resend until a 2xx, kill -9 at random
moments, 20 cycles), with rwgate's data directory on a 64 MB ext4 file
system of its own (a loop device; needs root, skipped otherwise) that is
filled up in every cycle:

* even cycles: the disk is filled completely, the senders' writes are
  refused with 503, then kill -9; rwgate restarts on the full disk, is
  ready, answers queries, and refuses writes with 503 + Retry-After;
* odd cycles: the disk is filled up to a random headroom of 0-3 MiB that
  the load runs into, and rwgate is killed at a random moment.
At the start of every cycle space returns: a new write is acknowledged
again and every sender gets 2xx replies. At the end the store holds exactly
the acknowledged samples, value for value, and again after a clean restart.
(The sanitizer pass of tests/run.sh runs fewer cycles: RWGATE_CRASH_KILLS.)"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, log, poll, small_fs, small_fs_remove, write_request_v1
from crashload import T0, Sender, acknowledged, compare, probe_write, read_all

c = Checks("test_crash_full_disk")
SENDERS = 3
SERIES_PER_SENDER = 100
KILLS = int(os.environ.get("RWGATE_CRASH_KILLS", "20"))
rng = random.Random(11)

base, mnt = small_fs(c, "rwgate-e2e-crashfull-")
filler = os.path.join(mnt, "filler")


def fill(headroom):
    """fills the file system, then gives `headroom` bytes back"""
    chunk = b"\0" * (1 << 20)
    with open(filler, "ab") as f:
        for size in (1 << 20, 1 << 16, 1 << 12):
            try:
                while True:
                    f.write(chunk[:size])
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass
    if headroom:
        os.truncate(filler, max(0, os.path.getsize(filler) - headroom))


def free():
    if os.path.exists(filler):
        os.unlink(filler)


# The senders' data moves 300 s per step: a fast run sends more than the
# default retention (15 days, 4,320 steps), which would then rightly drop the
# first samples and refuse the probes (stamped from T0 on) as too old.
g = Rwgate(data=os.path.join(mnt, "data"), log=os.path.join(base, "rwgate.log"),
           extra=["--shards", "2", "--set", "store.checkpoint_interval=1s",
                  "--set", "store.checkpoint_size=1MiB", "--set", "store.wal_segment_size=64KiB",
                  "--set", "store.retention=3650d"])
senders = [Sender(i, g, SERIES_PER_SENDER) for i in range(SENDERS)]
probes = []
refused = []
try:
    os.makedirs(g.data)
    g.start()
    for s in senders:
        s.start()
    for k in range(KILLS + 1):
        free()
        if refused:
            # the write refused on the full disk, resent as a sender would
            # once space is back: accepted (its samples may have sat in
            # memory pending the WAL; a resend of them is no error)
            body = write_request_v1([([("__name__", "crash_refused")], refused[-1:])])
            st = poll(lambda: g.write(body)[0] == 204, 60)
            c.check(st, "cycle %d: the write refused on the full disk is accepted when resent" % k)
        st, b = probe_write(g, k)
        c.eq(st, 204, "cycle %d: space back, a new write is acknowledged (%r)" % (k, b))
        if st == 204:
            probes.append((T0 + k * 1000, float(k)))
        base_acks = [s.acks for s in senders]
        ok = poll(lambda: all(s.acks >= b0 + 5 for s, b0 in zip(senders, base_acks)), 90)
        c.check(ok, "cycle %d: every sender gets 2xx replies again" % k,
                "acks %s -> %s; log: %s" % (base_acks, [s.acks for s in senders], g.log_tail(600)))
        if k == KILLS:
            break
        full = k % 2 == 0
        if full:
            fill(0)
            r0 = sum(s.refusals for s in senders)
            ok = poll(lambda: sum(s.refusals for s in senders) > r0 + SENDERS, 60)
            c.check(ok, "cycle %d: writes refused (5xx) on the full disk" % k)
        else:
            fill(rng.randint(0, 3 << 20))
        time.sleep(rng.uniform(0.2, 1.2))
        log("kill -9 #%d (%s disk; steps so far: %s)" % (k + 1, "full" if full else "filling",
                                                         [s.step for s in senders]))
        g.kill9()
        t = time.time()
        try:
            g.start(timeout=120)
            ok = True
        except RuntimeError as e:
            ok = False
            c.check(False, "cycle %d: rwgate starts after kill -9" % k, str(e)[-1500:])
            break
        log("restarted in %.2fs" % (time.time() - t))
        st, j = g.api("/api/v1/query", query="count(crash_metric)", time=str(T0 / 1000 + 1e6))
        c.eq(st, 200, "cycle %d: queries answered after the restart" % k)
        if full:
            refused.append((T0 + k * 1000, float(k)))
            st, hd, b = g.write(write_request_v1([([("__name__", "crash_refused")], refused[-1:])]))
            c.eq(st, 503, "cycle %d: a write on the still full disk -> 503" % k)
            c.check("retry-after" in hd, "cycle %d: the 503 carries Retry-After" % k, repr(hd))
    free()
    for s in senders:
        s.stop.set()
    for s in senders:
        s.join(120)
        c.check(not s.is_alive(), "sender %d finished its last request" % s.idx)
        c.eq(s.errors, [], "sender %d got no 4xx" % s.idx)
    want = acknowledged(senders)
    total = sum(len(v) for v in want.values())
    log("acknowledged samples: %d over %d kills" % (total, KILLS))
    c.check(total > SENDERS * SERIES_PER_SENDER * 5 * (KILLS + 1), "the senders got a meaningful number of acks",
            str(total))
    compare(c, read_all(g, "crash_metric"), want, "after %d kills" % KILLS)
    c.eq(dict(read_all(g, "crash_probe")).get((("__name__", "crash_probe"),)), probes,
         "the probe writes after every restart are stored")
    c.eq(dict(read_all(g, "crash_refused")).get((("__name__", "crash_refused"),), []), refused,
         "the writes refused and resent are stored, each sample once")
    c.eq(g.stop(), 0, "clean stop after the crash cycles")
    g.start(timeout=120)
    compare(c, read_all(g, "crash_metric"), want, "after a clean restart")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for s in senders:
        s.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()  # the data directory is the test's: removed with the file system
    small_fs_remove(base, mnt)
c.done()
