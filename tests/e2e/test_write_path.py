"""End-to-end test of POST /api/v1/write against the real rwgate binary:
remote-write 1.0 and 2.0 bodies, hostile and malformed inputs (each must get
its documented status and leave the server serving), partial writes (valid
samples stored, 400 with counts), tenants, metadata-only requests, native
histograms and exemplars. Data is read back through remote-read."""

import struct
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rwlib import (Checks, Rwgate, V1_HEADERS, V2_HEADERS, STALE_NAN, f_bytes, f_varint,
                   snappy_compress, varint, write_request_v1, write_request_v2, log)

c = Checks("test_write_path")
# recent timestamps, as a real sender's: retention runs from the newest sample
# stored, so data from 2023 next to "now" samples would be (rightly) too old
T0 = (int(__import__("time").time()) - 7200) * 1000


def series(name, extra=(), samples=((T0, 1.0),), **kw):
    labels = [("__name__", name)] + list(extra)
    return (labels, list(samples)) + ((kw["histograms"],) if "histograms" in kw else ())


def read_back(g, name, **match):
    ms = [(0, "__name__", name)] + [(0, k, v) for k, v in match.items()]
    return g.read([(0, 2**62, ms)])[0]


def alive(g, what):
    st, _, _ = g.write(write_request_v1([series("alive_check", samples=[(T0, 1.0)])]))
    c.check(st == 204, "server still serving after: " + what, "status %s" % st)


g = Rwgate(extra=["--set", "ingest.max_body_bytes=1536KiB", "--set", "ingest.max_labels_per_series=8",
                  "--set", "ingest.max_decoded_bytes=1MiB", "--shards", "2"]).start()
try:
    # ---- happy path v1
    st, hd, body = g.write(write_request_v1([
        series("m_ok", [("job", "a")], [(T0, 1.0), (T0 + 15000, 2.0)]),
        series("m_ok", [("job", "b")], [(T0, float("inf")), (T0 + 15000, -0.0), (T0 + 30000, STALE_NAN)]),
    ]))
    c.eq(st, 204, "v1 write status")
    c.eq(body, b"", "204 has no body")
    got = read_back(g, "m_ok")
    c.eq(got.get((("__name__", "m_ok"), ("job", "a"))), [(T0, 1.0), (T0 + 15000, 2.0)], "v1 samples read back")
    b = got.get((("__name__", "m_ok"), ("job", "b")), [])
    c.check(len(b) == 3 and b[0][1] == float("inf") and struct.pack("<d", b[1][1]) == struct.pack("<d", -0.0)
            and struct.pack("<d", b[2][1]) == struct.pack("<d", STALE_NAN),
            "+Inf, -0 and the stale marker are stored bit-exactly", repr(b))

    # content type variants that mean v1
    for ct in ["application/x-protobuf;proto=prometheus.WriteRequest", None]:
        h = dict(V1_HEADERS)
        if ct is None:
            del h["Content-Type"]
        else:
            h["Content-Type"] = ct
        st, _, _ = g.write(write_request_v1([series("m_ct", [("v", str(ct))])]), headers=h)
        c.eq(st, 204, "v1 accepted with Content-Type %r" % ct)

    # identical resend accepted silently; different value at same ts rejected; OOO rejected
    st, _, _ = g.write(write_request_v1([series("m_ok", [("job", "a")], [(T0 + 15000, 2.0)])]))
    c.eq(st, 204, "identical resend is accepted (retrying sender)")
    st, _, body = g.write(write_request_v1([
        series("m_ok", [("job", "a")], [(T0 + 15000, 3.0)]),          # duplicate ts, new value
        series("m_ok", [("job", "a")], [(T0 + 5000, 3.0)]),           # out of order
        series("m_ok", [("job", "c")], [(T0, 7.0)]),                  # valid: must be stored
    ]))
    c.eq(st, 400, "partial write status")
    c.check(b"2 samples rejected" in body and b"out_of_order" in body and b"duplicate" in body,
            "partial write body gives counts and reasons", body[:400])
    got = read_back(g, "m_ok")
    c.eq(got.get((("__name__", "m_ok"), ("job", "c"))), [(T0, 7.0)], "valid sample of a partial write is stored")
    c.eq(got.get((("__name__", "m_ok"), ("job", "a"))), [(T0, 1.0), (T0 + 15000, 2.0)], "rejected samples not stored")

    # ---- a sample far in the future is rejected (it would move the retention
    # window); its older siblings in the same series and request are stored
    import time as _t
    now = int(_t.time() * 1000)
    st, _, body = g.write(write_request_v1([series("m_future", [("s", "1")], [(now - 1000, 1.0), (now + 3600_000, 2.0)]),
                                            series("m_future", [("s", "2")], [(now, 3.0)])]))
    c.eq(st, 400, "sample an hour in the future -> 400")
    c.check(b"too far in the future" in body, "future rejection reason", body[:300])
    got = read_back(g, "m_future")
    c.eq(got.get((("__name__", "m_future"), ("s", "1"))), [(now - 1000, 1.0)], "in-range sample beside a future one is stored")
    c.eq(got.get((("__name__", "m_future"), ("s", "2"))), [(now, 3.0)], "sibling series of a future sample is stored")

    # ---- invalid series: rejected alone, siblings stored, 400 naming the problem
    bad_series = [
        ("unsorted labels", [("__name__", "m_bad"), ("z", "1"), ("a", "2")], b"sorted"),
        ("duplicate label", [("__name__", "m_bad"), ("a", "1"), ("a", "2")], b"duplicate label"),
        ("missing __name__", [("job", "x")], b"__name__"),
        ("empty label value", [("__name__", "m_bad"), ("job", "")], b"empty value"),
        ("invalid UTF-8", [("__name__", "m_bad"), ("job", b"\xc3\x28".decode("latin-1"))], None),
        ("too many labels", [("__name__", "m_bad")] + [("l%02d" % i, "v") for i in range(10)], b"limit"),
        ("empty label name", [("", "x"), ("__name__", "m_bad")], b"empty label name"),
    ]
    for what, labels, needle in bad_series:
        if what == "invalid UTF-8":
            # build the bytes by hand: a value that is not UTF-8
            body_pb = f_bytes(1, f_bytes(1, f_bytes(1, "__name__") + f_bytes(2, "m_bad")) +
                              f_bytes(1, f_bytes(1, "job") + f_bytes(2, b"\xc3\x28")) +
                              f_bytes(2, struct.pack("<Bd", 9, 1.0) + f_varint(2, T0)))
            body_pb += f_bytes(1, f_bytes(1, f_bytes(1, "__name__") + f_bytes(2, "m_sibling")) +
                               f_bytes(1, f_bytes(1, "case") + f_bytes(2, "utf8")) +
                               f_bytes(2, struct.pack("<Bd", 9, 1.0) + f_varint(2, T0)))
            needle = b"UTF-8"
        else:
            body_pb = write_request_v1([(labels, [(T0, 1.0)]),
                                        series("m_sibling", [("case", what.replace(" ", "_"))])])
        st, _, body = g.write(body_pb)
        c.eq(st, 400, "invalid series (%s) -> 400" % what)
        c.check(needle in body, "400 body names the problem (%s)" % what, body[:300])
    sib = read_back(g, "m_sibling")
    c.eq(len(sib), len(bad_series), "the valid sibling of every invalid series was stored")
    alive(g, "invalid series")

    # ---- malformed bodies: whole request rejected
    good = snappy_compress(write_request_v1([series("m_never", [("x", "1")])]))
    cases = [
        ("truncated snappy", good[: len(good) // 2], 400),
        ("garbage", b"\x00\xff" * 50 + b"garbage", 400),
        ("declared length of gigabytes", varint(4 << 30) + b"\x00" * 20, 400),
        ("declared length larger than data", varint(len(good) * 3) + good[len(varint(len(good))):], 400),
        ("empty body", b"", 400),
        ("valid snappy, invalid protobuf", snappy_compress(b"\x0a\xff\xff\xff\xff\x0f" + b"x" * 10), 400),
        ("valid snappy, protobuf with wrong lengths", snappy_compress(b"\x0a\x05\x0a\x10abc"), 400),
        ("body over the size limit", b"\x00" * (1600 * 1024), 413),
    ]
    for what, body_raw, want in cases:
        st, _, body = g.write(body_raw, raw=True)
        c.eq(st, want, "%s -> %d" % (what, want))
        c.check(len(body) > 0, "%s: the reply says what is wrong" % what)
        alive(g, what)
    c.eq(read_back(g, "m_never"), {}, "nothing from malformed requests was stored")

    # huge-but-within-cap decoded length vs decoded limit (1MiB)
    big = snappy_compress(write_request_v1([series("m_big", [("pad", "x" * 3000)], [(T0 + i, 1.0)]) for i in range(400)]))
    st, _, body = g.write(big, raw=True)
    c.eq(st, 400, "decoded size over ingest.max_decoded_bytes -> 400")
    c.check(b"exceeds the limit" in body, "decoded-limit message", body[:200])

    # ---- content negotiation
    for what, h in [("wrong content type", {"Content-Type": "application/json", "Content-Encoding": "snappy"}),
                    ("unknown proto", {"Content-Type": "application/x-protobuf;proto=foo.Bar", "Content-Encoding": "snappy"}),
                    ("wrong encoding", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})]:
        st, _, body = g.write(write_request_v1([series("m_never")]), headers=h)
        c.eq(st, 415, what + " -> 415")
    alive(g, "415s")

    # ---- remote-write 2.0
    st, hd, body = g.write(write_request_v2(
        [([("__name__", "m_v2"), ("job", "etcd")], [(T0, 1.5), (T0 + 15000, 2.5)]),
         ([("__name__", "m_v2"), ("job", "kubelet")], [(T0, 3.0)])],
        metadata={0: (1, "help text", "seconds")}), headers=V2_HEADERS)
    c.eq(st, 204, "v2 write status")
    c.eq(hd.get("x-prometheus-remote-write-samples-written"), "3", "v2 Samples-Written header")
    c.eq(hd.get("x-prometheus-remote-write-histograms-written"), "0", "v2 Histograms-Written header")
    c.eq(hd.get("x-prometheus-remote-write-exemplars-written"), "0", "v2 Exemplars-Written header")
    got = read_back(g, "m_v2")
    c.eq(got.get((("__name__", "m_v2"), ("job", "etcd"))), [(T0, 1.5), (T0 + 15000, 2.5)], "v2 samples read back")
    st, md = g.api("/api/v1/metadata", metric="m_v2")
    c.check(st == 200 and md.get("data", {}).get("m_v2", [{}])[0].get("help") == "help text",
            "v2 metadata stored", repr(md)[:300])
    st, _, body = g.write(write_request_v2([([(1, 9)], [(T0, 1.0)])], symbols=["", "__name__", "x"]),
                          headers=V2_HEADERS)
    c.eq(st, 400, "v2 label reference out of range -> 400")
    c.check(b"out of range" in body, "v2 bad ref message", body[:200])
    st, _, body = g.write(write_request_v2([([(1, 2)], [(T0, 1.0)])], symbols=["x", "__name__", "m"]),
                          headers=V2_HEADERS)
    c.eq(st, 400, "v2 symbols[0] not empty -> 400")
    st, hd, body = g.write(write_request_v2([([("__name__", "m_v2"), ("job", "etcd")], [(T0 + 1000, 9.0)])]),
                           headers=V2_HEADERS)
    c.eq(st, 400, "v2 out-of-order sample -> 400")
    c.eq(hd.get("x-prometheus-remote-write-samples-written"), "0", "v2 error reply still has Samples-Written")
    alive(g, "v2 errors")

    # ---- native histograms rejected, floats in the same request stored; exemplars never an error
    st, _, body = g.write(write_request_v1([
        ([("__name__", "m_hist")], [], 2),
        series("m_float_beside_hist"),
    ]))
    c.eq(st, 400, "native histograms -> 400 (reported as rejected)")
    c.check(b"native histogram" in body, "histogram rejection reason", body[:300])
    c.check(len(read_back(g, "m_float_beside_hist")) == 1, "float series beside histograms stored")
    from rwlib import enc_series_v1
    st, _, body = g.write(f_bytes(1, enc_series_v1([("__name__", "m_exemplar")], [(T0, 1.0)], 0, [(T0, 0.5)])))
    c.eq(st, 204, "exemplars are accepted (dropped), never an error")

    # ---- metadata-only request (Prometheus 2.x sends these every minute)
    st, _, _ = g.write(write_request_v1([], metadata=[(1, "m_ok", "a counter", ""), (2, "m_gauge", "a gauge", "bytes")]))
    c.eq(st, 204, "metadata-only request -> 204")
    st, md = g.api("/api/v1/metadata")
    d = md.get("data", {})
    c.check(d.get("m_ok", [{}])[0].get("type") == "counter" and d.get("m_gauge", [{}])[0].get("unit") == "bytes",
            "metadata readable from /api/v1/metadata", repr(md)[:300])

    # ---- tenants
    h = dict(V1_HEADERS, **{"X-Scope-OrgID": "team-a"})
    st, _, _ = g.write(write_request_v1([series("m_tenant")]), headers=h)
    c.eq(st, 204, "write with tenant header")
    h = dict(V1_HEADERS, **{"THANOS-TENANT": "team-b"})
    st, _, _ = g.write(write_request_v1([series("m_tenant")]), headers=h)
    c.eq(st, 204, "write with THANOS-TENANT header")
    st, _, _ = g.write(write_request_v1([series("m_tenant")]))
    got = read_back(g, "m_tenant")
    c.eq(sorted(got.keys()), [(("__name__", "m_tenant"),),
                              (("__name__", "m_tenant"), ("tenant_id", "team-a")),
                              (("__name__", "m_tenant"), ("tenant_id", "team-b"))],
         "tenant header becomes the tenant_id label; no header = no tenant label by default")

    # ---- /metrics counts what happened
    st, _, body = __import__("rwlib").http("GET", g.url + "/metrics")
    text = body.decode()
    c.check(st == 200 and 'rwgate_ingest_samples_rejected_total{reason="out_of_order"}' in text,
            "/metrics has rejection counters by reason")
    c.check("rwgate_http_request_duration_seconds_bucket" in text, "/metrics has request durations")
    c.check("rwgate_store_" in text, "/metrics has store metrics")

    rc = g.stop()
    c.eq(rc, 0, "SIGTERM exits 0")
    # everything acknowledged is there after a restart
    g.start()
    got = read_back(g, "m_ok")
    c.eq(got.get((("__name__", "m_ok"), ("job", "a"))), [(T0, 1.0), (T0 + 15000, 2.0)], "data survives a restart")
    c.eq(g.stop(), 0, "second SIGTERM exits 0")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
