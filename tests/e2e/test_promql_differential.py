"""Differential test: the same generated etcd-fleet data is written by
remote-write to rwgate and to Debian's Prometheus (remote-write receiver on);
dashboard-style queries (rates, increases, histogram_quantile over etcd's
bucket layout, topk, sum by, predict_linear, absent, label_replace,
subqueries, vector matching ...) must give the same answers within 1e-6
relative, as instant queries at several times and as range queries: the
same series (none twice), values and, for top-level sort / sort_desc / topk /
bottomk, cases marked ordered and every range result, the same order. An
error on one side only fails; two errors pass only where the case expects
one; two empty answers pass only where the case expects emptiness.

Prometheus here is 2.42; rwgate implements 3.x. Where they differ on purpose
the data avoids the difference rather than hiding it: samples carry
millisecond jitter so that no sample sits exactly on a range or lookback
boundary (3.x left-open vs 2.42 closed ranges); queries whose semantics
changed in 3.x are not in the list (see NOT_COMPARED)."""

import json
import math
import os
import random
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, http, log, snappy_compress, write_request_v1, V1_HEADERS

c = Checks("test_promql_differential")
PROM = shutil.which("prometheus")

# Each case: the query and what it expects beyond "same answer on both".
#   ordered: the order of an instant vector result matters (compared as
#            well as the values); set for top-level sort, sort_desc, topk and
#            bottomk, and for cases written as `eval ordered` would be
#   empty:   the evaluation points where both must answer with no series
#            ("all", or a set of TIMES names and "range"); anywhere else two
#            empty answers fail, so no comparison passes vacuously
#   error:   both must answer with an error (4xx, JSON status "error")
QUERIES = [
    ('sum by (cluster) (rate(etcd_server_proposals_committed_total[5m]))', {}),
    ('increase(etcd_server_proposals_committed_total[10m])', {}),
    ('histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))', {}),
    ('histogram_quantile(0.9, rate(etcd_network_peer_round_trip_time_seconds_bucket[5m]))', {}),
    ('topk(3, rate(grpc_server_handled_total[5m]))', {}),
    ('topk(5, etcd_mvcc_db_total_size_in_bytes)', {}),
    ('bottomk(2, etcd_mvcc_db_total_size_in_bytes)', {}),
    ('bottomk(3, rate(grpc_server_handled_total{grpc_code="OK"}[5m]))', {}),
    ('sum by (cluster, grpc_code) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))', {}),
    ('100 * sum by (cluster) (rate(grpc_server_handled_total{grpc_code=~"Unknown|Unavailable|DeadlineExceeded"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total[5m]))', {}),
    ('predict_linear(etcd_mvcc_db_total_size_in_bytes[30m], 4 * 3600)', {}),
    ('absent(etcd_server_has_leader{cluster="nope"})', {}),
    ('absent(etcd_server_has_leader)', {"empty": "all"}),
    ('label_replace(etcd_mvcc_db_total_size_in_bytes, "member", "$1", "instance", "(.*):2381")', {}),
    ('label_join(etcd_server_has_leader, "where", "/", "cluster", "instance")', {}),
    # subquery offset by 7s: its inner steps (whole minutes) never sit on the
    # range boundary, where 2.42 (closed) and 3.x (left-open) differ
    ('max_over_time(rate(etcd_server_proposals_committed_total[5m])[30m:1m] offset 7s)', {}),
    ('avg_over_time(sum by (cluster) (rate(grpc_server_handled_total[5m]))[20m:2m] offset 13s)', {}),
    # a member of cluster 2 has no leader for 5 minutes, 57 minutes before the end
    ('count by (cluster) (etcd_server_has_leader == 0)', {"empty": {"end", "end-10m", "end-30m"}}),
    ('etcd_server_has_leader == bool 0', {}),
    ('sum(rate(etcd_disk_wal_fsync_duration_seconds_sum[5m])) / sum(rate(etcd_disk_wal_fsync_duration_seconds_count[5m]))', {}),
    ('avg_over_time(etcd_mvcc_db_total_size_in_bytes[10m])', {}),
    ('deriv(etcd_mvcc_db_total_size_in_bytes[10m])', {}),
    ('resets(etcd_server_proposals_committed_total[1h])', {}),
    ('changes(etcd_server_has_leader[1h])', {}),
    ('quantile by (cluster) (0.5, etcd_mvcc_db_total_size_in_bytes)', {}),
    ('count_values("v", etcd_server_has_leader)', {}),
    ('stddev by (cluster) (etcd_mvcc_db_total_size_in_bytes)', {}),
    ('holt_winters(etcd_mvcc_db_total_size_in_bytes[10m], 0.5, 0.5)', {}),
    ('etcd_mvcc_db_total_size_in_bytes / on(cluster, instance) group_left etcd_server_is_leader', {}),
    ('etcd_mvcc_db_total_size_in_bytes * on(cluster, instance) group_left(version) etcd_server_version', {}),
    ('rate(etcd_server_proposals_committed_total[5m] offset 10m)', {}),
    ('timestamp(etcd_server_has_leader)', {}),
    ('irate(etcd_server_proposals_committed_total[2m])', {}),
    ('delta(etcd_mvcc_db_total_size_in_bytes[15m])', {}),
    ('quantile_over_time(0.9, etcd_mvcc_db_total_size_in_bytes[20m])', {}),
    ('min by (cluster) (etcd_mvcc_db_total_size_in_bytes) unless on(cluster) (etcd_server_has_leader == 0)', {}),
    ('clamp_max(rate(etcd_server_proposals_committed_total[5m]), 5)', {}),
    ('sort_desc(sum by (cluster) (etcd_mvcc_db_total_size_in_bytes))', {}),
    ('sort(rate(etcd_server_proposals_committed_total[5m]))', {}),
    ('sort_desc(rate(grpc_server_handled_total{grpc_code="OK", grpc_method="Put"}[5m]))', {}),
    # an aggregation whose output order Prometheus defines only through the
    # explicit sort: compared in order, as an `eval ordered` case
    ('sort(max by (cluster) (etcd_mvcc_db_total_size_in_bytes) * 2)', {"ordered": True}),
    ('sum without (instance) (rate(etcd_disk_backend_commit_duration_seconds_count[5m]))', {}),
    ('count({__name__=~"etcd_.*"})', {}),
    ('sum by (cluster) (increase(rke2_etcd_snapshot_save_duration_seconds_count{status="success"}[1h]))', {}),
    # errors both must give
    ('rate(etcd_server_has_leader)', {"error": True}),
    ('label_replace(etcd_server_has_leader, "x", "$1", "instance", "(")', {"error": True}),
    ('sum by (cluster) (', {"error": True}),
]
ORDERED_FUNCS = ("sort(", "sort_desc(", "topk(", "bottomk(")
# Semantics that changed between Prometheus 2.42 and 3.x, not compared here
# (covered by the conformance files instead): left-open range selectors and
# lookback at exact sample timestamps; subqueries whose inner steps fall on
# the range start (`x[30m:1m]` evaluated at whole minutes: 2.42 includes the
# inner point at exactly t-30m, 3.x does not - the differential run showed
# Prometheus' max_over_time larger exactly where that point was the maximum); delayed __name__ removal in
# label_replace over functions, holt_winters' rename, and the 3.x-only
# functions (sort_by_label, limitk, limit_ratio, mad_over_time).

CLUSTERS = 3
MEMBERS = 3
LE = [0.001 * 2 ** k for k in range(14)] + [float("inf")]
METHODS = ["Range", "Put", "Txn", "LeaseGrant"]
CODES = ["OK", "Unavailable", "DeadlineExceeded", "Unknown"]


def fmt_le(v):
    return "+Inf" if v == float("inf") else repr(v).rstrip("0").rstrip(".") if "e" not in repr(v) else repr(v)


def generate(end_ms, minutes=90):
    """-> list of rounds: (base_t_ms, [(labels, value)]) every 15 s; send_all
    gives each target its own offset and jitter inside the round"""
    rng = random.Random(1)
    rounds = []
    n = minutes * 4
    start = end_ms - n * 15000
    state = {}
    for i in range(n):
        base_t = start + i * 15000
        out = []
        for cl in range(CLUSTERS):
            cluster = "rke2-prod-%04d" % cl
            for m in range(MEMBERS):
                inst = "10.0.%d.%d:2381" % (cl, m + 1)
                lb = [("cluster", cluster), ("instance", inst), ("job", "etcd")]
                k = (cl, m)
                s = state.setdefault(k, {"prop": 1000.0 * (cl + 1), "db": 5e7 * (m + 1), "fs": [0] * 15,
                                         "fsum": 0.0, "grpc": {}, "rtt": [0] * 15, "snap": 0})
                s["prop"] += rng.randint(5, 40) * (1 + cl)
                if cl == 1 and m == 0 and i == n // 2:
                    s["prop"] = rng.randint(0, 10)  # counter reset (restart)
                s["db"] += rng.randint(0, 4096 * 20)
                lat = rng.lognormvariate(math.log(0.004 * (m + 1)), 0.7)
                for j, le in enumerate(LE):
                    if lat <= le:
                        s["fs"][j] += 1
                s["fsum"] += lat
                rt = rng.lognormvariate(math.log(0.01), 0.5)
                for j, le in enumerate(LE):
                    if rt <= le:
                        s["rtt"][j] += rng.randint(1, 3)
                has_leader = 0 if (cl == 2 and m == 1 and n // 3 <= i < n // 3 + 20) else 1
                out.append(([("__name__", "etcd_server_proposals_committed_total")] + lb, s["prop"]))
                out.append(([("__name__", "etcd_mvcc_db_total_size_in_bytes")] + lb, s["db"]))
                out.append(([("__name__", "etcd_server_has_leader")] + lb, has_leader))
                out.append(([("__name__", "etcd_server_is_leader")] + lb, 1 if m == 0 else 0))
                out.append(([("__name__", "etcd_server_version")] + lb[:2] + [("job", "etcd"), ("version", "3.5.%d" % cl)], 1))
                for j, le in enumerate(LE):
                    out.append(([("__name__", "etcd_disk_wal_fsync_duration_seconds_bucket")] + lb[:2] +
                                [("job", "etcd"), ("le", fmt_le(le))], s["fs"][j]))
                    out.append(([("__name__", "etcd_network_peer_round_trip_time_seconds_bucket"), ("To", "peer%d" % ((m + 1) % 3))] +
                                lb[:2] + [("job", "etcd"), ("le", fmt_le(le))], s["rtt"][j]))
                out.append(([("__name__", "etcd_disk_wal_fsync_duration_seconds_sum")] + lb, s["fsum"]))
                out.append(([("__name__", "etcd_disk_wal_fsync_duration_seconds_count")] + lb, s["fs"][-1]))
                out.append(([("__name__", "etcd_disk_backend_commit_duration_seconds_count")] + lb, s["fs"][-1] * 2))
                for mi, meth in enumerate(METHODS):
                    for code in CODES:
                        g = s["grpc"].setdefault((meth, code), 0)
                        if code == "OK":
                            # a per-series base rate keeps topk/bottomk rankings
                            # apart by far more than float rounding: the test
                            # compares ranking, not ties within an ulp
                            g += rng.randint(10, 100) + 300 * (mi * MEMBERS * CLUSTERS + m * CLUSTERS + cl)
                        elif rng.random() < 0.1:
                            g += 1
                        s["grpc"][(meth, code)] = g
                        out.append(([("__name__", "grpc_server_handled_total")] + lb[:1] +
                                    [("grpc_code", code), ("grpc_method", meth), ("grpc_service", "etcdserverpb.KV"),
                                     ("grpc_type", "unary")] + lb[1:], g))
                if i % 240 == 10:
                    s["snap"] += 1
                out.append(([("__name__", "rke2_etcd_snapshot_save_duration_seconds_count")] + lb[:2] +
                            [("job", "etcd"), ("status", "success")], s["snap"]))
        rounds.append((base_t, [(sorted(l), v) for l, v in out]))
    return rounds


def send_all(url, rounds, headers=V1_HEADERS):
    """one request per round, series in order; each sample at its member's jittered time"""
    batch = []
    for base_t, series in rounds:
        # jittered per-target time: recompute from the instance label
        req = []
        for labels, v in series:
            d = dict(labels)
            cl = int(d["cluster"][-4:])
            m = int(d["instance"].split(".")[-1].split(":")[0]) - 1
            # offset inside the round + 137 ms + jitter of -3..3 ms: never on a
            # whole second, so never exactly on an evaluation or range boundary
            t = base_t + 1000 * m + 300 * cl + 137 + ((hash((cl, m, base_t)) % 7) - 3)
            req.append((labels, [(t, float(v))]))
        batch.extend(req)
        if len(batch) >= 1500:
            st, _, b = http("POST", url + "/api/v1/write", snappy_compress(write_request_v1(batch)), headers)
            if st // 100 != 2:
                raise RuntimeError("write to %s: %d %s" % (url, st, b[:300]))
            batch = []
    if batch:
        st, _, b = http("POST", url + "/api/v1/write", snappy_compress(write_request_v1(batch)), headers)
        if st // 100 != 2:
            raise RuntimeError("write to %s: %d %s" % (url, st, b[:300]))


def query(url, path, **params):
    st, _, b = http("GET", url + path + "?" + urllib.parse.urlencode(params), timeout=60)
    return json.loads(b)


def normalize(d):
    """-> (kind, {labels: points}, [labels in answer order]); kind is the
    result type or "error"."""
    if d.get("status") != "success":
        return ("error", d.get("error"), [])
    r = d["data"]
    if r["resultType"] in ("scalar", "string"):
        return (r["resultType"], [r["result"]], [])
    out, order = {}, []
    for s in r["result"]:
        key = tuple(sorted(s["metric"].items()))
        pts = s.get("values") or [s["value"]]
        out[key] = [(float(t), float(v)) for t, v in pts]
        order.append(key)
    return (r["resultType"], out, order)


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) < 1e-12


def differ(x, y, ordered):
    """None when answers x (Prometheus) and y (rwgate) agree, else why not"""
    if (x[0] == "error") != (y[0] == "error"):
        return "one answered with an error, the other did not"
    if x[0] != y[0]:
        return "result types differ"
    if x[0] == "error":
        return None
    if x[0] in ("scalar", "string"):
        ok = all(close(float(p[1]), float(q[1])) if x[0] == "scalar" else p[1] == q[1] for p, q in zip(x[1], y[1]))
        return None if ok else "values differ"
    if set(x[1]) != set(y[1]):
        return "series differ: only in Prometheus %s, only in rwgate %s" % (
            sorted(set(x[1]) - set(y[1]))[:3], sorted(set(y[1]) - set(x[1]))[:3])
    if len(x[2]) != len(set(x[2])) or len(y[2]) != len(set(y[2])):
        return "a series appears twice"
    for k, pts in x[1].items():
        q = y[1][k]
        if len(pts) != len(q) or any(p[0] != r[0] or not close(p[1], r[1]) for p, r in zip(pts, q)):
            return "values of %s differ" % (k,)
    if ordered and x[2] != y[2]:
        return "order differs"
    return None


def compare(q, opts, where, a, b):
    """a, b: normalized answers of Prometheus and rwgate at `where` (a TIMES
    name or "range")"""
    what = "%s %s" % (where, q)
    detail = "\n  prometheus: %s\n  rwgate:     %s" % (repr(a)[:600], repr(b)[:600])
    if opts.get("error"):
        c.check(a[0] == "error" and b[0] == "error", "both answer with an error: " + what, detail)
        return
    c.check(a[0] != "error", "Prometheus answers " + what, detail)
    c.check(b[0] != "error", "rwgate answers " + what, detail)
    # range results are sorted by labels in both; instant vectors keep the
    # order of sort/topk/bottomk at the top
    ordered = where == "range" or opts.get("ordered") or q.startswith(ORDERED_FUNCS)
    why = differ(a, b, ordered)
    c.check(why is None, "same answer: " + what, "(%s)%s" % (why, detail))
    empty = opts.get("empty", ())
    want_empty = empty == "all" or where in empty
    for name, ans in (("Prometheus", a), ("rwgate", b)):
        if ans[0] in ("vector", "matrix"):
            c.check((len(ans[1]) == 0) == want_empty,
                    "%s answers %s: %s" % (name, "nothing" if want_empty else "some series", what), detail)


if not PROM:
    c.check(False, "prometheus is installed")
    c.done()

end_ms = (int(time.time()) - 120) * 1000
rounds = generate(end_ms)

prom = Prometheus("diff", "global: {scrape_interval: 1h}\n",
                  extra=["--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y"])
purl = prom.url
g = Rwgate().start()
try:
    log("writing %d rounds to Prometheus and rwgate" % len(rounds))
    send_all(purl, rounds)
    send_all(g.url, rounds)
    end_s = end_ms // 1000 // 60 * 60
    times = {"end": end_s, "end-10m": end_s - 600, "end-30m": end_s - 1800 - 7, "end-57m": end_s - 3600 + 150}
    for q, opts in QUERIES:
        for name, t in times.items():
            a = normalize(query(purl, "/api/v1/query", query=q, time=t))
            b = normalize(query(g.url, "/api/v1/query", query=q, time=t))
            compare(q, opts, name, a, b)
        a = normalize(query(purl, "/api/v1/query_range", query=q, start=end_s - 3600, end=end_s, step=60))
        b = normalize(query(g.url, "/api/v1/query_range", query=q, start=end_s - 3600, end=end_s, step=60))
        compare(q, opts, "range", a, b)
finally:
    prom.stop(show_log=bool(c.failed))
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
c.done()
