"""The queries' SQLite page cache (store.read_cache_size): data flushed into
blocks and read by a range query after a restart comes from the file the
first time (misses) and from the cache the second time (hits, no miss), with
more pages held than SQLite's default cache (2 MiB) could; the counters and
the cache's size are exported per shard; a cache size below the minimum is
refused at start with a message naming the key."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, log, rwgate_path, write_request_v1

c = Checks("test_read_cache")
SERIES = 1500
STEP = 15000
HOUR = 3600 * 1000
SPAN = 2 * HOUR
# one 2-hour block window that closed hours ago: one block per shard,
# nothing for compaction to merge
T0 = (int(time.time() * 1000) - 6 * HOUR) // (2 * HOUR) * (2 * HOUR)
POINTS = SPAN // 60000 + 1
MIB = 1024 * 1024


def value(s, k):
    # noise: the chunks cannot compress it, ~8 bytes a sample on disk
    x = (s * 2654435761 + k * 40503 + 12345) % 4294967296
    x = (x * 2246822519 + 3266489917) % 4294967296
    return x / 4096.0 + s


def totals(g):
    return (g.metric("rwgate_store_read_cache_hits_total") or 0,
            g.metric("rwgate_store_read_cache_misses_total") or 0)


def query(g):
    st, j = g.api("/api/v1/query_range", query="rc_m", start=T0 / 1000,
                  end=(T0 + SPAN) / 1000, step=60)
    res = j.get("data", {}).get("result", []) if st == 200 else []
    return st, len(res), sum(len(r["values"]) for r in res)


g = Rwgate(extra=["--shards", "2", "--set", "store.read_cache_size=16MiB"]).start()
try:
    for first in range(0, SERIES, 100):
        series = [([("__name__", "rc_m"), ("s", "%04d" % s)],
                   [(T0 + k * STEP, value(s, k)) for k in range(SPAN // STEP)])
                  for s in range(first, first + 100)]
        st, _, b = g.write(write_request_v1(series))
        if not c.check(st == 204, "write from series %d" % first, b[:200]):
            break
    c.eq(g.stop(), 0, "clean stop (everything into blocks)")
    g.start()
    c.check(g.metric("rwgate_store_blocks") >= 1, "the data is in blocks")
    h0, m0 = totals(g)
    st, n, pts = query(g)
    c.eq((st, n, pts), (200, SERIES, SERIES * POINTS), "the range query answers every series")
    h1, m1 = totals(g)
    log("first query: %d hits, %d misses" % (h1 - h0, m1 - m0))
    c.check(m1 > m0, "the first query reads pages from the file", "%s -> %s" % (m0, m1))
    # SQLite empties a reader's cache when the writer commits (the start's
    # retention pass may do so between two queries): the second of a pair
    # that no commit separated reads nothing from the file
    cached = None
    for attempt in range(5):
        st, n, pts = query(g)
        c.eq((st, n, pts), (200, SERIES, SERIES * POINTS), "the same answer again")
        ha, ma = totals(g)
        st, n, pts = query(g)
        h2, m2 = totals(g)
        log("query again: %d hits, %d misses" % (h2 - ha, m2 - ma))
        if m2 == ma and h2 > ha:
            cached = (h2 - ha, m2 - ma)
            break
    c.check(cached is not None, "a query right after another finds its pages in the cache "
            "and reads none from the file", str(cached))
    used = [g.metric("rwgate_store_read_cache_bytes", 'shard="%d"' % k) for k in (0, 1)]
    log("cache used: %s" % used)
    c.check(all(u is not None and 2.5 * MIB < u <= 8.5 * MIB for u in used),
            "each shard's cache holds more than SQLite's default 2 MiB could, within its 8 MiB",
            str(used))
    c.eq(g.stop(), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()

# below the minimum: a clear refusal, not a start
p = subprocess.run([rwgate_path(), "--listen", "127.0.0.1:0", "--data", "/nonexistent/x",
                    "--set", "store.read_cache_size=4KiB"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
out = p.stdout.decode(errors="replace")
c.check(p.returncode != 0 and "read_cache_size" in out, "a cache below 1 MiB is refused", out[-400:])
c.done()
