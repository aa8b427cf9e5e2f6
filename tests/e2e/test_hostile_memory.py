"""Small hostile requests cannot take gigabytes. Each case was measured on
the binary before the fix (peak RSS) and is checked here against a bound
near what the request legitimately needs:

- a 6 MB snappy body of 64M empty remote-write 1.0 series (128 MiB decoded)
  took 3.7 GB before its 400; the 2.0 form 2.2 GB: series are counted
  before anything is allocated for them;
- one series with 8M empty labels (16 MiB decoded): labels beyond
  ingest.max_labels_per_series are counted, not decoded;
- a 1.5 MB remote-read request of 16M empty matchers took 3.5 GB; one of
  2M matchers (within the decoded-size cap) is refused by
  query.remote_read_max_matchers before protobuf-c expands it;
- 22 nested label_replace calls doubling a value took 1.5 GB: values built
  by functions are capped at the ingest value limit (422);
- a subquery producing millions of points fails against
  query.max_memory_bytes (422) instead of growing;
- concurrent read requests beyond query.max_concurrent wait, and past
  query.max_queued or query.queue_timeout get 503 + Retry-After, while
  health and writes go on;
- /api/v1/series and label values past query.max_response_bytes fail
  instead of building the whole answer; /federate, streamed as Prometheus
  streams it, is cut at the cap.
"""

import http.client as http_client
import os
import struct
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import (Checks, Rwgate, V1_HEADERS, V2_HEADERS, f_bytes, http, log, varint, wait_for,
                   write_request_v1)

c = Checks("test_hostile_memory")
T = int(time.time() * 1000)


def snappy_repeat(prefix, pattern, count, suffix=b""):
    """A valid snappy block of prefix + pattern * count + suffix, with copies
    (the compressed form is ~1/20 of the decoded size)."""
    n = len(prefix) + len(pattern) * count + len(suffix)
    out = bytearray(varint(n))
    lit = prefix + pattern
    i = 0
    while i < len(lit):  # literals of up to 60 bytes
        chunk = lit[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
        i += len(chunk)
    rem = len(pattern) * (count - 1)
    while rem:
        k = min(64, rem)
        if k < 4 and rem > k:
            k = rem
        out += bytes([((k - 1) << 2) | 2]) + struct.pack("<H", len(pattern))
        rem -= k
    for i in range(0, len(suffix), 60):
        chunk = suffix[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def peak_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    return -1


def reset_peak(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def post_query(g, q, path="/api/v1/query", **params):
    params["query"] = q
    return http("POST", g.url + path, urllib.parse.urlencode(params).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"}, timeout=300)


g = Rwgate(extra=["--shards", "1"]).start()
pid = g.proc.pid
try:
    def measured(what, bound_mb, fn):
        reset_peak(pid)
        base = peak_mb(pid)
        res = fn()
        peak = peak_mb(pid)
        log("%s: peak %d MB (from %d)" % (what, peak, base))
        c.check(peak - base < bound_mb, "%s: peak memory bounded" % what,
                "peak %d MB, before %d MB, bound +%d MB" % (peak, base, bound_mb))
        return res

    # ---- empty series, 1.0 and 2.0: 128 MiB decoded, 64M series
    for name, hdr, pat in (("v1", V1_HEADERS, b"\x0a\x00"), ("v2", V2_HEADERS, b"\x2a\x00")):
        body = snappy_repeat(b"", pat, 64 << 20)
        st, _, b = measured("%s: 64M empty series" % name, 200,
                            lambda: http("POST", g.url + "/api/v1/write", body, hdr, timeout=300))
        c.eq(st, 400, "%s: 64M empty series -> 400" % name)
        c.check(b"series" in b and b"limit" in b, "%s: reply names the series limit" % name, b[:200])

    # ---- one series with 8M empty labels (the label fields are 2 bytes each)
    labels = 8 << 20
    sample = f_bytes(2, b"\x09" + struct.pack("<d", 1.0) + b"\x10" + varint(T))
    inner_len = 2 * labels + len(sample)
    prefix = b"\x0a" + varint(inner_len)  # WriteRequest.timeseries = 1, then the labels
    body = snappy_repeat(prefix, b"\x0a\x00", labels, sample)
    st, _, b = measured("v1: 8M empty labels", 150,
                        lambda: http("POST", g.url + "/api/v1/write", body, V1_HEADERS, timeout=300))
    c.eq(st, 400, "8M labels -> 400")
    c.check(b"labels, limit is 128" in b, "reply names the label limit", b[:200])

    # ---- remote-read: 16M empty matchers (32 MiB decoded) and 2M (4 MiB)
    rr_headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
    for n, status in ((16 << 20) - 8, 413), ((2 << 20) - 8, 400):
        q_len = 2 * n
        body = snappy_repeat(b"\x0a" + varint(q_len), b"\x1a\x00", n)
        st, _, b = measured("remote-read: %d empty matchers" % n, 60,
                            lambda: http("POST", g.url + "/api/v1/read", body, rr_headers, timeout=300))
        c.eq(st, status, "remote-read with %d matchers -> %d (%s)" % (n, status, b[:120]))
    c.check(b"remote_read_max_matchers" in b, "reply names the matcher limit", b[:200])

    # ---- label_replace doubling a value 22 times
    q = 'label_replace(vector(1), "a", "%s", "", "")' % ("x" * 128)
    for _ in range(22):
        q = 'label_replace(%s, "a", "$1$1", "a", "(.*)")' % q
    st, _, b = measured("nested label_replace", 50, lambda: post_query(g, q))
    c.eq(st, 422, "nested label_replace -> 422")
    c.check(b"longer than 4096 bytes" in b, "error names the value limit", b[:200])
    # label_join the same way
    q = 'label_replace(vector(1), "a", "%s", "", "")' % ("y" * 3000)
    st, _, b = post_query(g, 'label_join(%s, "b", ",", "a", "a")' % q)
    c.eq(st, 422, "label_join past the value limit -> 422")
    # a regex subject with invalid UTF-8 (a \\xff escape) is an error, not undefined behaviour
    st, _, b = post_query(g, 'label_replace(label_replace(vector(1), "a", "\\xff", "", ""), "b", "$1", "a", "(.*)")')
    c.eq(st, 422, "label_replace over an invalid UTF-8 value -> 422 (%s)" % b[:200])
finally:
    g.cleanup()

# ---- query.max_memory_bytes, concurrency, response size
g = Rwgate(extra=["--shards", "1", "--set", "query.max_memory_bytes=8MiB",
                  "--set", "query.max_concurrent=1", "--set", "query.max_queued=1",
                  "--set", "query.queue_timeout=1s", "--set", "query.max_response_bytes=64KiB"]).start()
try:
    st, _, b = post_query(g, "sum_over_time(vector(1)[30d:1s])")
    c.eq(st, 422, "a subquery of 2.6M points with an 8 MiB memory limit -> 422 (%s)" % b[:200])
    c.check(b"max_memory_bytes" in b, "error names query.max_memory_bytes", b[:200])
    st, _, b = post_query(g, "sum_over_time(vector(1)[1h:1m])")
    c.eq(st, 200, "a small subquery still answers")

    # many series and values for the response cap; slow regex values for the slot test
    series = [([("__name__", "resp_m"), ("i", "value-%05d-%s" % (i, "p" * 20))], [(T, 1.0)]) for i in range(3000)]
    st, _, _ = g.write(write_request_v1(series))
    c.eq(st, 204, "write 3000 series")
    # (about 0.5 ms of backtracking per value: the slow query holds its slot
    # for seconds, well past the 1 s queue timeout, even on a fast machine)
    series = [([("__name__", "slow_m"), ("w", "a" * 24 + "c%d" % i)], [(T, 1.0)]) for i in range(6000)]
    st, _, _ = g.write(write_request_v1(series))
    c.eq(st, 204, "write slow-regex series")

    st, _, b = http("GET", g.url + "/api/v1/series?" + urllib.parse.urlencode({"match[]": "resp_m"}))
    c.eq(st, 422, "/api/v1/series past max_response_bytes -> 422")
    c.check(b"max_response_bytes" in b, "error names query.max_response_bytes", b[:200])
    st, _, b = http("GET", g.url + "/api/v1/series?" + urllib.parse.urlencode({"match[]": "resp_m", "limit": "10"}))
    c.eq(st, 200, "/api/v1/series with limit=10 answers")
    st, _, b = http("GET", g.url + "/api/v1/label/i/values")
    c.eq(st, 422, "label values past max_response_bytes -> 422")
    # /federate streams its text as Prometheus does: past the cap the body is
    # cut (the status went out first), never built whole
    conn = http_client.HTTPConnection("127.0.0.1", g.port, timeout=30)
    conn.request("GET", "/federate?" + urllib.parse.urlencode({"match[]": "resp_m"}))
    r = conn.getresponse()
    try:
        got, cut = r.read(), False
    except http_client.IncompleteRead as e:
        got, cut = e.partial, True
    conn.close()
    c.check(r.status == 200 and cut and len(got) <= 64 * 1024,
            "/federate past max_response_bytes is cut at the cap", (r.status, cut, len(got)))
    st, _, b = http("GET", g.url + "/federate?" + urllib.parse.urlencode({"match[]": 'resp_m{i=~"value-0000.*"}'}))
    c.check(st == 200 and b.count(b"\nresp_m{") == 10, "/federate below the cap answers whole", b[:200])
    st, _, b = http("GET", g.url + "/api/v1/labels")
    c.eq(st, 200, "/api/v1/labels (small) answers")

    # one slot, one queue place: a slow query holds the slot
    res = {}

    def run(k, q):
        res[k] = post_query(g, q)

    slow = threading.Thread(target=run, args=("slow", 'count(slow_m{w=~"(a|aa)+"})'))
    slow.start()
    wait_for(lambda: g.metric("rwgate_query_running") == 1, "the slow query holds the slot")
    queued = threading.Thread(target=run, args=("queued", "vector(1)"))
    queued.start()
    wait_for(lambda: g.metric("rwgate_query_queued") == 1 or "queued" in res,
             "the second query waits for the slot")
    c.check("queued" not in res, "the second query is still waiting", res.get("queued"))
    st, hd, b = post_query(g, "vector(2)")
    c.eq(st, 503, "a third read request while one runs and one waits -> 503 at once")
    c.check("retry-after" in hd, "503 carries Retry-After", hd)
    st, _, _ = http("GET", g.url + "/-/healthy")
    c.eq(st, 200, "/-/healthy answers while reads are saturated")
    st, _, _ = g.write(write_request_v1([([("__name__", "during"), ("x", "1")], [(T, 1.0)])]))
    c.eq(st, 204, "writes go on while reads are saturated")
    queued.join()
    c.eq(res["queued"][0], 503, "the queued request gets 503 after query.queue_timeout")
    slow.join()
    c.eq(res["slow"][0], 200, "the slow query answers")
    st, _, _ = post_query(g, "vector(3)")
    c.eq(st, 200, "a query once the slot is free answers")
    st, _, b = http("GET", g.url + "/metrics")
    c.check(b'rwgate_query_rejected_total{reason="queue"} 2' in b, "rejections counted")
finally:
    g.cleanup()

c.done()
