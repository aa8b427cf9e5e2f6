"""Storage trouble and overload answer 503 with Retry-After, never 429 and
never a lost 2xx: another process holds SQLite's write lock on the shard
database past rwgate's busy timeout, so group commits fail; writes must get
503 + Retry-After (the data stays pending, not dropped). Once the lock is
released the retried writes succeed, and everything is there after a
restart. While one big write is stuck in a slow commit, a second one that
would take the bytes in flight past ingest.max_inflight_bytes (bodies,
decoded bodies, decoding arenas) is turned away at once with 503 (memory
stays bounded)."""

import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, log, wait_for, write_request_v1

c = Checks("test_storage_busy")
# busy_timeout 2s: a write stuck on the lock stays in flight long enough for
# the overload check below to catch it there, however loaded the machine
g = Rwgate(extra=["--shards", "1", "--set", "store.busy_timeout=2s",
                  "--set", "ingest.max_inflight_bytes=512KiB", "--set", "store.max_series=150"]).start()
T = int(time.time() * 1000) - 60000


def body(i):
    return write_request_v1([([("__name__", "busy_m"), ("i", str(i % 10))], [(T + i * 1000, float(i))])])


try:
    st, _, _ = g.write(body(0))
    c.eq(st, 204, "write before the lock")
    db = sqlite3.connect(os.path.join(g.data, "shard-0.db"), timeout=5, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # hold the write lock
    st, hd, b = g.write(body(1))
    c.eq(st, 503, "write while the database is locked -> 503")
    c.check("retry-after" in hd, "503 carries Retry-After", repr(hd))
    c.check(st != 429, "never 429")
    c.check(len(b) > 0, "503 body says what is wrong", b[:200])
    st2, _, _ = g.write(body(2))
    c.eq(st2, 503, "still 503 while locked")
    st, _, _ = __import__("rwlib").http("GET", g.url + "/-/healthy")
    c.eq(st, 200, "process healthy while storage is busy")
    db.execute("ROLLBACK")
    db.close()
    # the sender retries what got 503
    try:
        ok = wait_for(lambda: g.write(body(1))[0] == 204 and g.write(body(2))[0] == 204,
                      "retried writes accepted", timeout=60, interval=0.2)
    except TimeoutError:
        ok = False
    c.check(ok, "retried writes succeed once the lock is gone")
    st, _, _ = g.write(body(3))
    c.eq(st, 204, "new writes succeed")

    # overload: a ~150 KB write stuck in a locked commit holds its budget
    # (its body as it arrived, the decoded body, the decoding arena: about
    # 2 x 150 KB of the 512 KiB); a second one does not fit beside it
    big = write_request_v1([([("__name__", "busy_big"), ("i", str(i)), ("pad", "x" * 1500)], [(T, 1.0)]) for i in range(100)])
    c.check(len(big) > 140000, "big body is big", str(len(big)))
    db = sqlite3.connect(os.path.join(g.data, "shard-0.db"), timeout=5, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    first = {}
    series0 = g.metric("rwgate_store_series")
    th = threading.Thread(target=lambda: first.update(r=g.write(big)))
    th.start()
    # the first write has appended its 100 new series and waits on the lock
    wait_for(lambda: g.metric("rwgate_store_series") >= series0 + 100 or "r" in first,
             "the first big write appended")
    c.check("r" not in first, "the first big write is still in flight (stuck in its commit)")
    st, hd, b = g.write(big)
    c.eq(st, 503, "second big write while the first is in flight -> 503")
    c.check(b"overloaded" in b and "retry-after" in hd, "503 says overloaded, with Retry-After", b[:200])
    th.join(10)
    c.eq(first.get("r", (0,))[0], 503, "the stuck write itself gets 503 (commit busy)")
    db.execute("ROLLBACK")
    db.close()
    st, _, _ = g.write(big)
    c.eq(st, 204, "the big write succeeds when retried alone")
    st, _, b = __import__("rwlib").http("GET", g.url + "/metrics")
    # refused before its body was read (HTTP) or while decoding (ingest)
    n = sum(float(l.split()[-1]) for l in b.decode().splitlines()
            if l.startswith('rwgate_ingest_requests_failed_total{reason="overloaded"}')
            or l.startswith("rwgate_http_requests_overloaded_total"))
    c.eq(n, 1.0, "overload is counted")

    # cardinality limit: 150 series allowed (1 shard); busy_m has 10, busy_big 100
    st, _, b = g.write(write_request_v1([([("__name__", "card"), ("i", str(i))], [(T, 1.0)]) for i in range(60)]))
    c.eq(st, 400, "new series beyond store.max_series -> 400")
    c.check(b"series_limit" in b, "the reply names the series limit", b[:300])
    st, _, _ = g.write(body(11))  # label i="1": a known series, a newer sample
    c.eq(st, 204, "known series keep ingesting at the series limit")
    c.eq(g.stop(), 0, "clean stop")
    g.start()
    res = g.read([(0, 2**62, [(0, "__name__", "busy_m")])])[0]
    got = sorted(t for s in res.values() for t, _ in s)
    c.eq(got, [T + i * 1000 for i in (0, 1, 2, 3, 11)], "all acknowledged samples present after restart")
    c.eq(g.stop(), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
