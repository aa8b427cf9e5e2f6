"""test_grafana_dashboards - every Grafana dashboard shipped in
deploy/grafana/ works against rwgate: with rwgate loaded with the synthetic
fleet (tests/e2e/fleetdata.py), the test expands each dashboard's template
variables the way Grafana does (label_values() through /api/v1/label/NAME/
values with match[], multi-value and "All" as a regex alternation, then the
first value alone), substitutes Grafana's built-in intervals, and runs every
panel target and annotation query as Grafana would (query_range, or query
for instant targets): each must succeed and return series. It also checks
the dashboards' shape: the three levels and the troubleshooting view, the
datasource/region/scenario/cluster variables, unique panel ids, every
panel on the templated data source."""

import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleetdata  # noqa: E402
import rwlib  # noqa: E402
from rwlib import Checks, log  # noqa: E402

c = Checks("test_grafana_dashboards")
HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "..", "deploy", "grafana")
BUILTINS = {"$__rate_interval": "2m", "$__interval": "1m", "$__range": "1h", "${__range}": "1h",
            "$__interval_ms": "60000"}


def regex_escape(v):
    """Grafana's escaping of a value in a regex matcher (lodash-like)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", v)


def fmt_value(values, in_regex):
    if len(values) == 1:
        return regex_escape(values[0]) if in_regex else values[0]
    return "(" + "|".join(regex_escape(v) for v in values) + ")"


def expand(expr, chosen):
    for k, v in BUILTINS.items():
        expr = expr.replace(k, v)
    for name, values in sorted(chosen.items(), key=lambda kv: -len(kv[0])):
        # inside =~"..." a multi-value becomes an alternation
        expr = re.sub(r'(=~"[^"]*)\$\{?%s\}?' % name, lambda m: m.group(1) + fmt_value(values, True), expr)
        expr = re.sub(r"\$\{?%s\}?" % name, lambda m: values[0], expr)
    return expr


def label_values(rw, query, chosen):
    m = re.fullmatch(r"\s*label_values\((?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)\s*", query)
    if not m:
        raise ValueError("unsupported variable query %r" % query)
    sel, label = m.group(1), m.group(2)
    params = {}
    if sel:
        params["match[]"] = expand(sel, chosen)
    st, body = rw.api("/api/v1/label/%s/values" % label, **params)
    if st != 200 or body.get("status") != "success":
        raise RuntimeError("label_values %s: HTTP %d %s" % (query, st, body))
    return body["data"]


def run_target(rw, expr, instant, now):
    if instant:
        st, body = rw.api("/api/v1/query", query=expr, time=now)
    else:
        st, body = rw.api("/api/v1/query_range", query=expr, start=now - 3600, end=now, step=60)
    ok = st == 200 and body.get("status") == "success"
    return ok, (body.get("data", {}).get("result") or []) if ok else body


def panels(d):
    for p in d["panels"]:
        yield p
        for q in p.get("panels", []):
            yield q


def check_shape(dashboards):
    c.eq(sorted(dashboards), ["etcd-cluster.json", "etcd-fleet.json", "etcd-scenario.json", "etcd-troubleshoot.json"],
         "the three levels and the troubleshooting view")
    for name, d in dashboards.items():
        vars_ = [v["name"] for v in d["templating"]["list"]]
        want = {"etcd-fleet.json": ["datasource", "region"],
                "etcd-scenario.json": ["datasource", "region", "scenario"]}.get(
            name, ["datasource", "region", "scenario", "cluster"])
        c.eq(vars_, want, name + ": variables")
        ids = [p["id"] for p in panels(d)]
        c.eq(len(ids), len(set(ids)), name + ": unique panel ids")
        for p in panels(d):
            if p["type"] == "row":
                continue
            c.check(p.get("datasource", {}).get("uid") == "${datasource}" and p["targets"],
                    name + ": panel %r on the templated data source" % p["title"])


def main():
    files = sorted(glob.glob(os.path.join(DIR, "*.json")))
    dashboards = {os.path.basename(f): json.load(open(f)) for f in files}
    check_shape(dashboards)
    rw = rwlib.Rwgate().start()
    try:
        now_ms, _ = fleetdata.load(rw)
        now = now_ms / 1000
        for name, d in dashboards.items():
            # every variable's values, in order (later ones depend on earlier)
            allv, full = {}, {}
            for v in d["templating"]["list"]:
                if v["type"] != "query":
                    continue
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                try:
                    vals = label_values(rw, q, allv)
                except (ValueError, RuntimeError) as e:
                    c.check(False, "%s: variable %s" % (name, v["name"]), str(e))
                    vals = []
                c.check(len(vals) > 0, "%s: variable %s has values" % (name, v["name"]), q)
                full[v["name"]] = vals
                allv[v["name"]] = vals if v.get("includeAll") or v.get("multi") else vals[:1]
            # "All" for the multi-value variables, then a single first value
            choices = [allv, {k: vals[:1] for k, vals in allv.items()}]
            if "cluster" in allv:
                c.check(fleetdata.FAULTY in full["cluster"],
                        "%s: the faulty cluster is a value of $cluster" % name)
                choices.append({**{k: vals[:1] for k, vals in allv.items()},
                                "region": ["eu-west"], "scenario": ["core"], "cluster": [fleetdata.FAULTY]})
            for chosen in choices:
                # a healthy cluster legitimately has no alerts or snapshot
                # errors: "returns series" is asked of the faulty one, where
                # every panel has data
                want_data = "cluster" not in chosen or chosen["cluster"] == [fleetdata.FAULTY]
                tag = ",".join("%s=%s" % (k, "All" if len(v) > 1 else v[0]) for k, v in chosen.items())
                for p in panels(d):
                    for t in p.get("targets", []):
                        expr = expand(t["expr"], chosen)
                        ok, res = run_target(rw, expr, t.get("instant") and not t.get("range"), now)
                        c.check(ok, "%s [%s] %r: query succeeds" % (name, tag, p["title"]), "%s\n  %s" % (expr, res))
                        if ok and want_data:
                            c.check(len(res) > 0, "%s [%s] %r: returns series" % (name, tag, p["title"]), expr)
                for a in d.get("annotations", {}).get("list", []):
                    if "expr" not in a:
                        continue
                    ok, res = run_target(rw, expand(a["expr"], chosen), False, now)
                    c.check(ok, "%s [%s] annotation %r succeeds" % (name, tag, a["name"]), res)
                    if chosen.get("cluster") == [fleetdata.FAULTY]:
                        c.check(ok and len(res) > 0, "%s: annotation %r marks the faulty cluster" % (name, a["name"]))
        log("checked %d dashboards" % len(dashboards))
    finally:
        rw.stop()
        rw.cleanup()
    c.done()


if __name__ == "__main__":
    main()
