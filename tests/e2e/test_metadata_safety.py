"""Metric metadata is validated, capped and always served as valid JSON:

- an entry whose help is not UTF-8 (b"\\xff\\xfe") is rejected with 400 and a
  reason; the valid entries of the same request are stored;
- an entry longer than the limits (ingest.max_help_length,
  max_label_value_length) is rejected;
- store.max_metadata caps the number of metric families: entries for new
  families beyond it are refused (400 naming the limit), known families
  still update;
- invalid bytes already in the store (written by an older version straight
  into its metadata table) come out of /api/v1/metadata as U+FFFD: the
  response decodes, across a restart;
- metadata-only requests of any size, as Prometheus sends them, are stored.
"""

import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, write_request_v1

c = Checks("test_metadata_safety")
T = int(time.time() * 1000)


def metadata(g, **params):
    st, body = g.api("/api/v1/metadata", **params)
    return st, body


g = Rwgate(extra=["--shards", "1", "--set", "store.max_metadata=50",
                  "--set", "ingest.max_help_length=100"]).start()
try:
    md = [(1, "good_total", "a good counter", "seconds"),
          (2, "bad_help", b"\xff\xfe".decode("latin-1"), ""),  # re-encoded below
          (2, "long_help", "h" * 101, "")]
    body = write_request_v1([([("__name__", "good_total"), ("x", "1")], [(T, 1.0)])], metadata=[md[0], md[2]])
    # an entry with raw invalid bytes in its help, spliced in by hand
    from rwlib import f_bytes, f_varint
    body += f_bytes(3, f_varint(1, 2) + f_bytes(2, "bad_help") + f_bytes(4, b"\xff\xfe") + f_bytes(5, ""))
    st, _, b = g.write(body, raw=False)
    c.eq(st, 400, "invalid metadata entries -> 400")
    c.check(b"bad_help rejected: not valid UTF-8" in b, "reason names the bad entry", b[:400])
    c.check(b"long_help rejected: help longer than ingest.max_help_length" in b, "reason names the long help", b[:400])
    st, m = metadata(g)
    c.eq(st, 200, "/api/v1/metadata answers")
    c.eq(sorted(m["data"].keys()), ["good_total"], "only the valid entry is stored")

    # ---- the cap: 50 families
    many = [(1, "fam_%03d" % i, "help", "") for i in range(80)]
    st, _, b = g.write(write_request_v1([], metadata=many))
    c.eq(st, 400, "families beyond store.max_metadata -> 400")
    c.check(b"store.max_metadata" in b, "reason names store.max_metadata", b[:300])
    st, m = metadata(g)
    c.eq(len(m["data"]), 50, "the store holds 50 families")
    st, _, b = g.write(write_request_v1([], metadata=[(2, "good_total", "new help", "seconds")]))
    c.eq(st, 204, "a known family still updates at the cap")
    st, m = metadata(g, metric="good_total")
    c.eq(m["data"]["good_total"][0]["help"], "new help", "updated help served")
    # reverse order, many: stored (hash index, no quadratic insert)
    c.eq(g.stop(), 0, "clean stop")

    # ---- invalid bytes already stored (an older version) are escaped at output
    db = sqlite3.connect(os.path.join(g.data, "shard-0.db"))
    db.execute("UPDATE metadata SET help = CAST(? AS TEXT) WHERE metric = 'good_total'",
               (b"\xff\xfe ok",))
    db.commit()
    db.close()
    g.start()
    st, _, raw = http("GET", g.url + "/api/v1/metadata")
    c.eq(st, 200, "/api/v1/metadata after restart")
    try:
        doc = json.loads(raw.decode("utf-8"))
        ok = True
    except (UnicodeDecodeError, ValueError) as e:
        ok = False
        doc = {"data": {}}
    c.check(ok, "the response is valid UTF-8 JSON", raw[:300])
    got = doc["data"].get("good_total", [{}])[0].get("help")
    c.eq(got, "\ufffd\ufffd ok", "invalid bytes come out as U+FFFD")
finally:
    g.cleanup()

# ---- metadata-only requests as Prometheus sends them (hundreds of entries,
# no series): stored, 204
g = Rwgate(extra=["--shards", "1"]).start()
try:
    for n in (1, 3, 194, 500):
        st, _, b = g.write(write_request_v1([], metadata=[(1, "fam%d_%03d" % (n, i), "help text %d" % i, "")
                                                          for i in range(n)]))
        c.eq(st, 204, "a metadata-only request of %d entries (%s)" % (n, b[:100]))
    st, m = metadata(g)
    c.eq(len(m["data"]), 1 + 3 + 194 + 500, "every entry stored")
finally:
    g.cleanup()
c.done()
