"""Storage trouble and overload answer 503 with Retry-After, never 429 and
never a lost 2xx. rwgate runs on a small ext4 file system of its own (a loop
device; needs root, skipped otherwise):

* the file system fills up: group commits fail, writes get 503 +
  Retry-After (the data stays pending, not dropped); once space returns the
  retried writes succeed;
* the file system is frozen (fsfreeze): a big write is stuck in its commit
  holding its decoded bytes in the in-flight budget, and a second one that
  would take the bytes in flight past ingest.max_inflight_bytes is turned
  away at once with 503 (memory stays bounded); after the thaw the stuck one
  completes;
* new series beyond store.max_series are refused (400) while known series
  keep ingesting;
and everything acknowledged is there after a restart."""

import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, small_fs, small_fs_remove, wait_for, write_request_v1

c = Checks("test_storage_busy")
base, mnt = small_fs(c, "rwgate-e2e-busy-")
data = os.path.join(mnt, "data")
os.makedirs(data)
filler = os.path.join(mnt, "filler")
frozen = False

g = Rwgate(data=data, extra=["--shards", "1", "--set", "ingest.max_inflight_bytes=512KiB",
                             "--set", "store.max_series=300"])
T = int(time.time() * 1000) - 60000


def body(i):
    return write_request_v1([([("__name__", "busy_m"), ("i", str(i % 10))], [(T + i * 1000, float(i))])])


def fill():
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass


try:
    g.start()
    st, _, _ = g.write(body(0))
    c.eq(st, 204, "write before the disk is full")
    fill()
    # what still fits in blocks the WAL already has is written; after that
    # every write gets 503 (the bodies carry 100 samples each)
    acked = [0]

    def wide(i):
        # values that do not compress: each record takes ~1 KB of the WAL
        return write_request_v1([([("__name__", "busy_w"), ("k", str(k))],
                                  [(T + i * 1000, random.Random(i * 1000 + k).random())])
                                 for k in range(100)])
    st = 204
    for i in range(1, 3000):
        st, hd, b = g.write(wide(i))
        if st != 204:
            break
        acked.append(i)
    c.eq(st, 503, "writes on a full disk -> 503")
    c.check("retry-after" in hd, "503 carries Retry-After", repr(hd))
    c.check(st != 429, "never 429")
    c.check(len(b) > 0, "503 body says what is wrong", b[:200])
    failed_i = i
    st2, _, _ = g.write(body(2))
    c.eq(st2, 503, "still 503 while full")
    st, _, _ = http("GET", g.url + "/-/healthy")
    c.eq(st, 200, "process healthy while storage is failing")
    os.unlink(filler)
    # the sender retries what got 503
    ok = False
    for _ in range(100):
        s1, _, _ = g.write(wide(failed_i))
        s2, _, _ = g.write(body(2))
        if s1 == 204 and s2 == 204:
            ok = True
            acked.append(failed_i)
            break
        time.sleep(0.2)
    c.check(ok, "retried writes succeed once space returns")
    st, _, _ = g.write(body(1))
    c.eq(st, 204, "new writes succeed")
    st, _, _ = g.write(body(3))
    c.eq(st, 204, "new writes succeed")

    # overload: a ~150 KB write stuck in a frozen commit holds its budget
    # (its body as it arrived, the decoded body, the decoding arena: about
    # 2 x 150 KB of the 512 KiB); a second one does not fit beside it
    big = write_request_v1([([("__name__", "busy_big"), ("i", str(i)), ("pad", "x" * 1500)], [(T, 1.0)]) for i in range(100)])
    c.check(len(big) > 140000, "big body is big", str(len(big)))
    series0 = g.metric("rwgate_store_series")
    subprocess.run(["fsfreeze", "-f", mnt], check=True)
    frozen = True
    first = {}
    th = threading.Thread(target=lambda: first.update(r=g.write(big)))
    th.start()
    # the first write has appended its 100 new series and waits on the WAL
    wait_for(lambda: g.metric("rwgate_store_series") >= series0 + 100 or "r" in first,
             "the first big write appended")
    c.check("r" not in first, "the first big write is still in flight (stuck in its commit)")
    st, hd, b = g.write(big)
    c.eq(st, 503, "second big write while the first is stuck -> 503")
    c.check(b"overloaded" in b and "retry-after" in hd, "503 says overloaded, with Retry-After", b[:200])
    st, _, _ = http("GET", g.url + "/-/healthy")
    c.eq(st, 200, "process healthy while storage is stuck")
    subprocess.run(["fsfreeze", "-u", mnt], check=True)
    frozen = False
    th.join(30)
    c.eq(first.get("r", (0,))[0], 204, "the stuck write completes after the thaw")
    st, _, _ = g.write(big)
    c.eq(st, 204, "the big write, resent, is an identical resend")
    st, _, b = http("GET", g.url + "/metrics")
    # refused before its body was read (HTTP) or while decoding (ingest)
    n = sum(float(l.split()[-1]) for l in b.decode().splitlines()
            if l.startswith('rwgate_ingest_requests_failed_total{reason="overloaded"}')
            or l.startswith("rwgate_http_requests_overloaded_total"))
    c.eq(n, 1.0, "overload is counted")

    # cardinality limit: 300 series allowed (1 shard); busy_m has 10, busy_w and busy_big 100 each
    st, _, b = g.write(write_request_v1([([("__name__", "card"), ("i", str(i))], [(T, 1.0)]) for i in range(100)]))
    c.eq(st, 400, "new series beyond store.max_series -> 400")
    c.check(b"series_limit" in b, "the reply names the series limit", b[:300])
    st, _, _ = g.write(body(11))  # label i="1": a known series, a newer sample
    c.eq(st, 204, "known series keep ingesting at the series limit")
    c.eq(g.stop(), 0, "clean stop")
    g.start()
    res = g.read([(0, 2**62, [(0, "__name__", "busy_m")])])[0]
    got = sorted(t for s in res.values() for t, _ in s)
    c.eq(got, [T + i * 1000 for i in (0, 1, 2, 3, 11)], "all acknowledged samples present after restart")
    res = g.read([(0, 2**62, [(0, "__name__", "busy_big")])])[0]
    c.eq(len(res), 100, "the big write's series are there")
    res = g.read([(0, 2**62, [(0, "__name__", "busy_w")])])[0]
    c.check(len(res) == 100 and all(sorted(t for t, _ in v) == [T + i * 1000 for i in sorted(set(acked) - {0})]
                                    for v in res.values()), "every acknowledged wide write is there",
            "%d acked" % len(acked))
    c.eq(g.stop(), 0, "clean stop")
finally:
    if frozen:
        subprocess.run(["fsfreeze", "-u", mnt])
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()  # the data directory is the test's: removed with the file system
    small_fs_remove(base, mnt)
c.done()
