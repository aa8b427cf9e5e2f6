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
self-metrics for the groups are checked on /metrics."""

import os
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
