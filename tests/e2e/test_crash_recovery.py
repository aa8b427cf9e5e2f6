"""Crash test: while several senders write, rwgate is killed with SIGKILL and
restarted on the same data directory, 20 times, with a small
store.checkpoint_size and WAL segments so that flushes (memory written into
blocks) and checkpoints (head snapshots) happen between the kills, covered WAL
segments are deleted, and recovery starts from blocks plus a head snapshot
plus a WAL tail.

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
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, log, wait_for
from crashload import T0, Sender, acknowledged, compare, probe_write, read_all

c = Checks("test_crash_recovery")
SENDERS = 3
SERIES_PER_SENDER = 200
# the sanitizer pass of tests/run.sh sets fewer: it looks for memory errors
# on these paths, the release pass for lost writes
KILLS = int(os.environ.get("RWGATE_CRASH_KILLS", "20"))
SHARDS = 2
# one minute of data time per request: a 2 h flush window is 120 requests
# per sender, several times store.checkpoint_size of WAL, so that the WAL
# passes the checkpoint size between two window flushes whatever the
# senders' rate (at 5 minutes, a slow sanitized run flushed every window
# before its WAL reached the size and never checkpointed)
DATA_STEP_MS = 60_000
rng = random.Random(7)


def wal_segments(data):
    """the WAL segment files a killed rwgate left behind"""
    return set(os.listdir(os.path.join(data, "wal")))


def flushes(g):
    """shard flushes (blocks written) since the start; the number of blocks
    itself also falls when compaction merges them"""
    return g.metric("rwgate_store_flushes_total") or 0


def snapshots_written(g):
    with open(g.logf.name, "rb") as f:
        return f.read().count(b"head snapshot written")


g = Rwgate(extra=["--shards", str(SHARDS), "--set", "store.checkpoint_interval=1s",
                  "--set", "store.checkpoint_size=64KiB", "--set", "store.wal_segment_size=64KiB"]).start()
senders = [Sender(i, g, SERIES_PER_SENDER, DATA_STEP_MS) for i in range(SENDERS)]
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
        # flushes write new blocks while the senders write, then the kill
        f0 = flushes(g)
        try:
            wait_for(lambda: flushes(g) >= f0 + SHARDS and g.metric("rwgate_store_blocks"),
                     "flushes of the shards", timeout=60)
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
        if k == KILLS - 1:
            # the last restart at the latest starts from a head snapshot:
            # a checkpoint ran in some cycle (snapshots stay until a full
            # flush, which here only the clean stop at the end runs)
            try:
                wait_for(lambda: snapshots_written(g) > 0, "a checkpoint wrote head snapshots",
                         timeout=90)
                ok = True
            except TimeoutError:
                ok = False
            c.check(ok, "checkpoints write head snapshots while the senders write",
                    "WAL segments %s" % sorted(wal_segments(g.data)))
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

    want = acknowledged(senders)
    total = sum(len(v) for v in want.values())
    log("acknowledged samples: %d over %d kills" % (total, KILLS))
    c.check(total > SENDERS * SERIES_PER_SENDER * 5 * (KILLS + 1), "the load generator got a meaningful number of acks",
            str(total))

    with open(g.logf.name, "rb") as f:
        loaded = f.read().count(b"head snapshot loaded")
    c.check(loaded > 0, "restarts after a kill loaded head snapshots (checkpoints ran between "
            "the kills)", "%d loads" % loaded)
    log("head snapshots loaded at %d shard recoveries" % loaded)

    got = read_all(g, "crash_metric")
    compare(c, got, want, "after %d kills" % KILLS)
    c.eq(dict(read_all(g, "crash_probe")).get((("__name__", "crash_probe"),)), probes,
         "the probe writes after every restart are stored")
    c.eq(g.stop(), 0, "clean stop after the crash cycles")
    # and once more after a clean shutdown + start (checkpointed state)
    g.start(timeout=120)
    got2 = read_all(g, "crash_metric")
    compare(c, got2, want, "after a clean restart")
    c.check(sorted(got2) == sorted(got), "same series and values after a clean restart as before it")
    c.eq(g.stop(), 0, "clean stop")
finally:
    for s in senders:
        s.stop.set()
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
