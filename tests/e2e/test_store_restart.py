"""Restarts with a large WAL: rwgate runs with small WAL segments (64 KiB)
and a checkpoint size so large that no checkpoint happens, while 8 hours of
data for 300 series arrive. Window flushes must still move closed 2-hour
windows into blocks and delete the WAL segments they cover (the WAL stays
bounded); after kill -9 every acknowledged sample must be back (blocks plus
the replayed WAL), again after a second kill -9 right after the restart
(replay is idempotent), and after a clean stop no WAL is left at all; after
that start the blocks' indexes and timestamp columns are cached before any
query asks (a read of everything adds nothing to the cache)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, write_request_v1

c = Checks("test_store_restart")
SERIES = 300
STEP = 15000
PER_REQ = 40  # samples per series per request: 10 minutes
HOURS = 8
T0 = (int(time.time() * 1000) - (HOURS + 1) * 3600 * 1000) // 3600000 * 3600000


def value(s, k):
    # noisy gauges: the WAL cannot compress them much, so it spans many segments
    x = (k * 2654435761 + s * 40503) % 4294967296
    return x / 65536.0 + (0.5 if s % 3 == 0 else 0.0)


def segments(g):
    d = os.path.join(g.data, "wal")
    return sorted(f for f in os.listdir(d) if len(f) == 16)


def count_all(g):
    res = g.read([(0, 2**62, [(0, "__name__", "rs_m")])])[0]
    n = 0
    bad = 0
    for labels, samples in res.items():
        s = int(dict(labels)["s"])
        for t, v in samples:
            n += 1
            if v != value(s, (t - T0) // STEP):
                bad += 1
    return len(res), n, bad


g = Rwgate(extra=["--shards", "2", "--set", "store.wal_segment_size=64KiB",
                  "--set", "store.checkpoint_size=1GiB"]).start()
try:
    nreq = HOURS * 3600 * 1000 // (PER_REQ * STEP)
    acked = 0
    first_seg = segments(g)[0]
    for r in range(nreq):
        series = []
        for s in range(SERIES):
            ks = range(r * PER_REQ, (r + 1) * PER_REQ)
            series.append(([("__name__", "rs_m"), ("s", "%03d" % s)],
                           [(T0 + k * STEP, value(s, k)) for k in ks]))
        st, _, b = g.write(write_request_v1(series))
        if not c.check(st == 204, "write %d" % r, b[:200]):
            break
        acked += SERIES * PER_REQ
    # window flushes run every second: wait until the closed windows are in
    # blocks and their segments gone
    deadline = time.time() + 60
    while time.time() < deadline and segments(g)[0] == first_seg:
        time.sleep(0.2)
    segs = segments(g)
    created = int(segs[-1], 16)
    log("WAL: %d segments live of %d created" % (len(segs), created))
    c.check(segs[0] != first_seg, "window flushes deleted the oldest WAL segments", str(segs))
    c.check(len(segs) < created, "the WAL stays bounded", "%d of %d" % (len(segs), created))
    g.kill9()
    g.start()
    ns, n, bad = count_all(g)
    c.eq((ns, n, bad), (SERIES, acked, 0), "every sample back after kill -9 (series, samples, wrong values)")
    g.kill9()  # before any flush of the replayed data
    g.start()
    ns, n, bad = count_all(g)
    c.eq((ns, n, bad), (SERIES, acked, 0), "and after a second kill -9 right after the restart")
    st, _, b = http("GET", g.url + "/metrics")
    c.check(st == 200 and b"rwgate_store_blocks" in b, "block metrics exported")
    c.eq(g.stop(), 0, "clean stop")
    c.eq(segments(g), [], "no WAL left after a clean stop (everything in blocks)")
    g.start()
    # before any query: the blocks' indexes are loaded into the cache in the
    # background, so the first query after a start does not read them cold
    deadline = time.time() + 30
    cached = {}
    while time.time() < deadline:
        st, _, b = http("GET", g.url + "/metrics")
        cached = {ln.split('"')[1]: float(ln.split()[-1]) for ln in b.decode().splitlines()
                  if ln.startswith("rwgate_store_index_cache_bytes{")}
        if len(cached) == 2 and all(v > 0 for v in cached.values()):
            break
        time.sleep(0.1)
    c.check(len(cached) == 2 and all(v > 0 for v in cached.values()),
            "block indexes cached after the start, before any query", str(cached))
    ns, n, bad = count_all(g)
    c.eq((ns, n, bad), (SERIES, acked, 0), "everything read back from blocks")

    def cache_and_blocks():
        return ([g.metric("rwgate_store_index_cache_bytes", 'shard="%d"' % k) for k in (0, 1)],
                [g.metric("rwgate_store_blocks", 'shard="%d"' % k) for k in (0, 1)])

    def settled(need):
        # the same figures over `need` readings 0.2 s apart (compaction runs
        # once a second)
        deadline = time.time() + 30
        seen = [cache_and_blocks()]
        while time.time() < deadline and not (len(seen) >= need and
                                              all(x == seen[-1] for x in seen[-need:])):
            time.sleep(0.2)
            seen.append(cache_and_blocks())
        return seen[-1]

    # the timestamp columns too: once compaction has merged what this start
    # found and the next start has loaded the cache, a read of everything
    # adds nothing to it
    settled(15)
    c.eq(g.stop(), 0, "clean stop")
    g.start()
    before = settled(6)
    ns, n, bad = count_all(g)
    c.eq((ns, n, bad), (SERIES, acked, 0), "everything read back again")
    after = cache_and_blocks()
    c.eq(after[1], before[1], "no block written or merged meanwhile")
    c.check(all(v for v in before[0]), "the cache was loaded", str(before[0]))
    c.eq(after[0], before[0], "the read found every index and timestamp column in the cache")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
