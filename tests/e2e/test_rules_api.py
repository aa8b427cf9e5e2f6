#!/usr/bin/env python3
"""test_rules_api - /api/v1/rules and /api/v1/alerts answer in Prometheus'
JSON shape.

A real Prometheus (Debian 2.42, remote-write receiver on) and rwgate load the
same rule file (recording rule, a firing alert with labels and a templated
annotation, a pending alert, an alert whose query fails) and receive the same
remote-written samples. Once the alert fires in both, their answers are
compared whole, with the values that legitimately differ (timestamps,
durations) reduced to their JSON type. Then the filters: type (also in
2.42), rule_name[], rule_group[], file[], match[] and exclude_alerts
(Prometheus 3's), and the bad_data error for an unknown type. rwgate's own
self-metrics for the groups are checked on /metrics.

Then paging, on a second rwgate with 27 groups and ~400 alerts (Debian's
Prometheus 2.42 predates paging, so the semantics are Prometheus 3's, read
from its web/api/v1): /api/v1/rules with group_limit / group_next_token
(the token is the SHA-256 of "file;name" of the group the next page starts
at, an unknown one a 400), and /api/v1/alerts with rwgate's limit /
next_token / state / match[]: every page walk returns each group or alert
exactly once, in order, filters hold, bad parameters are 400 bad_data, and
without these parameters the answers carry no extra field."""

import os
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwlib  # noqa: E402

RULES = """groups:
  - name: rec
    interval: 2s
    rules:
      - record: cluster:leader:min
        expr: min by (cluster) (etcd_server_has_leader)
      - record: cluster:leader:max
        expr: max by (cluster) (etcd_server_has_leader)
        labels: {source: central}
  - name: alerts
    interval: 2s
    rules:
      - alert: NoLeader
        expr: cluster:leader:min == 0
        for: 4s
        labels: {severity: critical}
        annotations: {summary: "no leader in {{ $labels.cluster }}"}
      - alert: Pending
        expr: cluster:leader:min == 0
        for: 1h
      - alert: Broken
        expr: label_replace(etcd_server_has_leader, "instance", "", "instance", ".*")
"""

VOLATILE = {"activeAt", "lastEvaluation", "evaluationTime"}


def normalize(x):
    """JSON with volatile values replaced by their type, lists of alerts sorted."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if k in VOLATILE:
                out[k] = "<%s>" % type(v).__name__
            else:
                out[k] = normalize(v)
        if "alerts" in out and isinstance(out["alerts"], list):
            out["alerts"] = sorted(out["alerts"], key=lambda a: sorted(a["labels"].items()))
        return out
    if isinstance(x, list):
        return [normalize(v) for v in x]
    return x


def drop_empty_groups(doc):
    d = dict(doc)
    d["data"] = {"groups": [g for g in doc["data"]["groups"] if g["rules"]]}
    return d


N_PROBES = 240  # paging_probe series; every third is in shard "a"
N_GROUPS = 25   # recording groups besides the two alerting ones


def paging_rules():
    out = ["groups:"]
    for i in range(N_GROUPS):
        out += ["  - name: g%02d" % i, "    interval: 1s", "    rules:",
                "      - record: paging:probe:count_%02d" % i, "        expr: count(paging_probe)"]
    out += ["  - name: alerts", "    interval: 1s", "    rules:",
            "      - alert: ProbeDown", "        expr: paging_probe == 0",
            "        labels: {severity: warning}",
            "      - alert: ProbeSlow", '        expr: paging_probe{shard="a"} == 0', "        for: 1h",
            "        labels: {severity: info}",
            # the same alert, labels and all, from another group: pages still
            # hold both (the order breaks the tie by group and rule)
            "  - name: zdup", "    interval: 1s", "    rules:",
            "      - alert: ProbeDown", '        expr: paging_probe{cluster="p-007"} == 0',
            "        labels: {severity: warning}"]
    return "\n".join(out) + "\n"


def key(a):
    return sorted(a["labels"].items())


def canon(a):
    return json.dumps(a, sort_keys=True)


def walk(c, rw, path, items, token_name, next_name, limit_name, limit, **params):
    """Follows the tokens to the end; -> (items of every page, pages)."""
    got, pages, token = [], 0, None
    while pages < 1000:
        q = dict(params)
        q[limit_name] = limit
        if token is not None:
            q[token_name] = token
        st, d = rw.api(path, **q)
        if not c.eq(st, 200, "%s page %d: status" % (path, pages)):
            print(d)
            break
        pages += 1
        page = d["data"][items]
        c.check(len(page) <= limit, "%s page %d: at most %d" % (path, pages, limit), len(page))
        got += page
        token = d["data"].get(next_name)
        if token is None:
            break
        c.check(len(page) == limit, "%s page %d: full when more follow" % (path, pages), len(page))
    return got, pages


def bad(c, rw, path, what, **params):
    st, d = rw.api(path, **params)
    c.eq((st, d.get("status"), d.get("errorType")), (400, "error", "bad_data"), what)
    return d.get("error", "")


def paging(c, tmp):
    rules = os.path.join(tmp, "paging.yml")
    with open(rules, "w") as f:
        f.write(paging_rules())
    cfg = os.path.join(tmp, "paging-rwgate.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: 1s\n  rule_query_offset: 0s\nrule_files: [paging.yml]\n")
    rw = rwlib.Rwgate(extra=["--config", cfg]).start()
    try:
        t = int(time.time() * 1000)
        series = [([("__name__", "paging_probe"), ("cluster", "p-%03d" % i), ("shard", "a" if i % 3 == 0 else "b")],
                   [(t, 0)]) for i in range(N_PROBES)]
        st, _, _ = rw.write(rwlib.write_request_v1(series))
        c.eq(st, 204, "paging: write the probes")
        n_pending = len([i for i in range(N_PROBES) if i % 3 == 0])
        want_n = N_PROBES + 1 + n_pending
        deadline = time.time() + 60
        alerts = []
        while time.time() < deadline:
            st, d = rw.api("/api/v1/alerts")
            alerts = d["data"]["alerts"] if st == 200 else []
            if len(alerts) == want_n:
                break
            time.sleep(0.3)
        if not c.eq(len(alerts), want_n, "paging: every alert active"):
            print(rw.log_tail())
            return

        # without the new parameters: Prometheus' answer, nothing added
        st, d = rw.api("/api/v1/alerts")
        c.eq((sorted(d), sorted(d["data"])), (["data", "status"], ["alerts"]), "alerts: no extra fields unpaged")
        st, d = rw.api("/api/v1/rules")
        c.eq((sorted(d), sorted(d["data"])), (["data", "status"], ["groups"]), "rules: no extra fields unpaged")
        all_groups = [(g["file"], g["name"]) for g in d["data"]["groups"]]
        c.eq(len(all_groups), N_GROUPS + 2, "rules: every group")

        # /api/v1/rules, Prometheus 3's paging
        for limit in (1, 7, N_GROUPS + 2, 100):
            got, pages = walk(c, rw, "/api/v1/rules", "groups", "group_next_token", "groupNextToken",
                              "group_limit", limit)
            c.eq([(g["file"], g["name"]) for g in got], all_groups,
                 "rules group_limit=%d: each group once, in order" % limit)
            c.eq(pages, -(-len(all_groups) // limit), "rules group_limit=%d: pages" % limit)
        st, d = rw.api("/api/v1/rules", group_limit=7)
        tok = d["data"].get("groupNextToken")
        c.eq(tok, hashlib.sha256(("%s;%s" % all_groups[7]).encode()).hexdigest(),
             "rules: the token is Prometheus' (sha256 of file;name of the next page's first group)")
        got, _ = walk(c, rw, "/api/v1/rules", "groups", "group_next_token", "groupNextToken", "group_limit", 3,
                      type="alert")
        c.eq([g["name"] for g in got], ["alerts", "zdup"], "rules: paging after the type filter")
        got, _ = walk(c, rw, "/api/v1/rules", "groups", "group_next_token", "groupNextToken", "group_limit", 2,
                      **{"match[]": '{severity="warning"}'})
        c.eq([(g["name"], [r["name"] for r in g["rules"]]) for g in got],
             [("alerts", ["ProbeDown"]), ("zdup", ["ProbeDown"])], "rules: paging after match[]")
        st, d = rw.api("/api/v1/rules", group_limit=5, group_next_token=tok)
        c.eq([g["name"] for g in d["data"]["groups"]], [n for _, n in all_groups[7:12]],
             "rules: a page starts at the group its token names")
        st, d = rw.api("/api/v1/rules", group_limit="1000")
        c.check("groupNextToken" not in d["data"], "rules: no token on the last page")
        for v in ("0", "-3", "x", "1.5", "99999999999", " 5"):
            err = bad(c, rw, "/api/v1/rules", "rules: group_limit=%r is a 400" % v, group_limit=v)
            c.check(err.startswith('invalid parameter "group_limit": group_limit needs to be'), "its message", err)
        err = bad(c, rw, "/api/v1/rules", "rules: a token without group_limit", group_next_token=tok)
        c.check("group_limit needs to be present" in err, "its message", err)
        err = bad(c, rw, "/api/v1/rules", "rules: unknown token", group_limit=5, group_next_token="abc123")
        c.eq(err, "invalid parameter \"group_next_token\": invalid group_next_token 'abc123'. "
             "were rule groups changed?", "rules: unknown token, Prometheus' message")

        # /api/v1/alerts: rwgate's paging, in label order
        ordered = sorted(alerts, key=key)
        for limit in (1, 50, 97, want_n, 1000):
            got, pages = walk(c, rw, "/api/v1/alerts", "alerts", "next_token", "nextToken", "limit", limit)
            c.eq([key(a) for a in got], [key(a) for a in ordered],
                 "alerts limit=%d: every alert once, sorted by labels" % limit)
            c.eq(sorted(map(canon, got)), sorted(map(canon, alerts)), "alerts limit=%d: the same alerts" % limit)
            c.eq(pages, -(-want_n // limit), "alerts limit=%d: pages" % limit)
        st, d = rw.api("/api/v1/alerts", limit=50)
        c.eq((len(d["data"]["alerts"]), d["data"]["total"]), (50, want_n), "alerts: a page and the total")
        st, d2 = rw.api("/api/v1/alerts", limit=50, next_token=d["data"]["nextToken"])
        c.check(not {canon(a) for a in d["data"]["alerts"]} & {canon(a) for a in d2["data"]["alerts"]},
                "alerts: the next page shows other alerts")
        body = "limit=50&next_token=%s" % d["data"]["nextToken"]
        st, _, b = rwlib.http("POST", rw.url + "/api/v1/alerts", body.encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
        c.eq((st, json.loads(b)["data"]["alerts"]), (200, d2["data"]["alerts"]), "alerts: POST pages the same")

        # filters, alone and with paging
        st, d = rw.api("/api/v1/alerts", state="pending")
        c.eq(sorted(a["labels"]["alertname"] for a in d["data"]["alerts"]), ["ProbeSlow"] * n_pending,
             "alerts: state=pending")
        c.eq(sorted(d["data"]), ["alerts"], "alerts: a filter alone adds no field")
        got, _ = walk(c, rw, "/api/v1/alerts", "alerts", "next_token", "nextToken", "limit", 30, state="firing")
        c.eq([key(a) for a in got], [key(a) for a in ordered if a["state"] == "firing"],
             "alerts: state=firing, paged")
        sel = ['{cluster=~"p-00.*"}', '{alertname="ProbeSlow",cluster="p-201"}']
        want = [key(a) for a in ordered if a["labels"]["cluster"].startswith("p-00")
                or (a["labels"]["alertname"] == "ProbeSlow" and a["labels"]["cluster"] == "p-201")]
        got, _ = walk(c, rw, "/api/v1/alerts", "alerts", "next_token", "nextToken", "limit", 4, **{"match[]": sel})
        c.eq([key(a) for a in got], want, "alerts: match[] sets ORed, paged")
        c.eq(len(want), 10 + 4 + 1 + 1, "alerts: match[] picks the expected alerts")
        st, d = rw.api("/api/v1/alerts", state="pending", limit=5, **{"match[]": '{cluster=~"p-0.*"}'})
        c.eq(d["data"]["total"], len([i for i in range(100) if i % 3 == 0]), "alerts: total counts the filtered")
        # a token stays good after the alert it names has gone: the page
        # starts at the next one
        st, d = rw.api("/api/v1/alerts", limit=10, state="pending")
        tok = d["data"]["nextToken"]
        at = key([a for a in ordered if a["state"] == "pending"][10])
        st, d = rw.api("/api/v1/alerts", limit=10, next_token=tok, state="firing")
        c.eq([key(a) for a in d["data"]["alerts"]],
             [key(a) for a in ordered if a["state"] == "firing" and key(a) >= at][:10],
             "alerts: a token whose alert is not in the answer resumes from its place")

        for v in ("0", "-1", "abc", "1e3", "4294967296"):
            bad(c, rw, "/api/v1/alerts", "alerts: limit=%r is a 400" % v, limit=v)
        for t in ("zz", "00", "0" * 40, "x" * 64):
            bad(c, rw, "/api/v1/alerts", "alerts: next_token=%r is a 400" % t, limit=5, next_token=t)
        err = bad(c, rw, "/api/v1/alerts", "alerts: a token without limit", next_token="00")
        c.check("limit needs to be present" in err, "its message", err)
        bad(c, rw, "/api/v1/alerts", "alerts: state=inactive is a 400", state="inactive")
        bad(c, rw, "/api/v1/alerts", "alerts: a bad match[] is a 400", **{"match[]": "{cluster="})
    finally:
        rc = rw.stop()
        c.eq(rc, 0, "paging rwgate stops cleanly")
        if c.failed:
            print(rw.log_tail())
        rw.cleanup()


def main():
    c = rwlib.Checks("test_rules_api")
    if not shutil.which("prometheus"):
        print("prometheus not installed")
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="rwgate-rules-api-")
    rules = os.path.join(tmp, "rules.yml")
    with open(rules, "w") as f:
        f.write(RULES)
    cfg = os.path.join(tmp, "rwgate.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: 2s\n  rule_query_offset: 0s\n"
                "  external_labels: {central: eu-1}\nrule_files: [rules.yml]\n")
    prom = rwlib.Prometheus("rules-api", "global:\n  evaluation_interval: 2s\n"
                            "rule_files: [%s]\n" % rules,
                            extra=["--web.enable-remote-write-receiver"])
    rw = rwlib.Rwgate(extra=["--config", cfg]).start()
    stop = threading.Event()

    def push():
        while not stop.is_set():
            t = int(time.time() * 1000)
            s = [([("__name__", "etcd_server_has_leader"), ("cluster", "c1"), ("instance", "a")],
                  [(t, 0)]),
                 ([("__name__", "etcd_server_has_leader"), ("cluster", "c1"), ("instance", "b")],
                  [(t, 1)])]
            body = rwlib.snappy_compress(rwlib.write_request_v1(s))
            for u in (prom.url, rw.url):
                try:
                    rwlib.http("POST", u + "/api/v1/write", body, rwlib.V1_HEADERS)
                except OSError:
                    pass
            stop.wait(1)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    try:
        def firing(url):
            st, _, b = rwlib.http("GET", url + "/api/v1/alerts")
            return st == 200 and b'"state":"firing"' in b
        deadline = time.time() + 60
        while time.time() < deadline and not (firing(prom.url) and firing(rw.url)):
            time.sleep(0.5)
        c.check(firing(rw.url), "NoLeader fires in rwgate", rw.log_tail())
        c.check(firing(prom.url), "NoLeader fires in Prometheus", prom.log_tail())
        # let both evaluate at least once more so every rule has run
        time.sleep(2.5)

        def both(path, **params):
            return prom.api(path, **params), rw.api(path, **params)

        (pst, pdoc), (rst, rdoc) = both("/api/v1/rules")
        c.eq(rst, 200, "rules: status")
        c.eq(normalize(rdoc), normalize(pdoc), "rules: same document as Prometheus")
        (pst, pdoc), (rst, rdoc) = both("/api/v1/alerts")
        c.eq(normalize(rdoc), normalize(pdoc), "alerts: same document as Prometheus")
        for typ in ("alert", "record", "ALERT"):
            (pst, pdoc), (rst, rdoc) = both("/api/v1/rules", type=typ)
            # Prometheus 3 leaves out groups whose rules are all filtered; 2.42 kept them empty
            c.eq(normalize(rdoc), normalize(drop_empty_groups(pdoc)), "rules?type=%s" % typ)
        (pst, pdoc), (rst, rdoc) = both("/api/v1/rules", type="bogus")
        c.eq((rst, rdoc), (pst, pdoc), "rules?type=bogus: the same 400 bad_data")

        # Prometheus 3's filters
        st, d = rw.api("/api/v1/rules", **{"rule_name[]": ["NoLeader", "cluster:leader:max"]})
        names = [(g["name"], [r["name"] for r in g["rules"]]) for g in d["data"]["groups"]]
        c.eq(names, [("alerts", ["NoLeader"]), ("rec", ["cluster:leader:max"])], "rule_name[]")
        st, d = rw.api("/api/v1/rules", **{"rule_group[]": "rec"})
        c.eq([g["name"] for g in d["data"]["groups"]], ["rec"], "rule_group[]")
        st, d = rw.api("/api/v1/rules", **{"file[]": rules})
        c.eq(len(d["data"]["groups"]), 2, "file[] matching")
        st, d = rw.api("/api/v1/rules", **{"file[]": "/nonexistent.yml"})
        c.eq(d["data"]["groups"], [], "file[] not matching")
        st, d = rw.api("/api/v1/rules", **{"match[]": '{severity="critical"}'})
        names = [r["name"] for g in d["data"]["groups"] for r in g["rules"]]
        c.eq(names, ["NoLeader"], "match[] on rule labels")
        st, d = rw.api("/api/v1/rules", **{"match[]": '{severity="critical"', "x": "1"})
        c.eq((st, d.get("errorType")), (400, "bad_data"), "match[] invalid")
        st, d = rw.api("/api/v1/rules", type="alert", exclude_alerts="true")
        c.eq([r["alerts"] for g in d["data"]["groups"] for r in g["rules"]], [None, None, None],
             "exclude_alerts")
        broken = [r for g in d["data"]["groups"] for r in g["rules"] if r["name"] == "Broken"]
        c.check(broken and broken[0]["health"] == "err" and "same labelset" in broken[0]["lastError"],
                "failing rule: health err with its error", repr(broken))

        # self-metrics per group
        st, _, m = rwlib.http("GET", rw.url + "/metrics")
        m = m.decode()
        key = "%s;alerts" % rules
        for name in ("rwgate_rule_group_last_duration_seconds",
                     "rwgate_rule_group_iterations_missed_total",
                     "rwgate_rule_evaluation_failures_total",
                     "rwgate_rule_evaluations_total",
                     "rwgate_rule_group_last_evaluation_timestamp_seconds",
                     "rwgate_rule_group_interval_seconds",
                     "rwgate_rule_group_rules"):
            c.check('%s{rule_group="%s"}' % (name, key) in m, "metric %s" % name)
        line = [l for l in m.splitlines()
                if l.startswith('rwgate_rule_evaluation_failures_total{rule_group="%s"}' % key)]
        c.check(line and float(line[0].split()[-1]) >= 1, "failures counted", repr(line))
        line = [l for l in m.splitlines()
                if l.startswith('rwgate_rule_group_rules{rule_group="%s"}' % key)]
        c.check(line and float(line[0].split()[-1]) == 3, "rules per group", repr(line))
        paging(c, tmp)
    finally:
        stop.set()
        th.join(5)
        prom.stop(show_log=c.failed > 0)
        rc = rw.stop()
        c.eq(rc, 0, "rwgate stops cleanly")
        if c.failed:
            print(rw.log_tail())
        rw.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
