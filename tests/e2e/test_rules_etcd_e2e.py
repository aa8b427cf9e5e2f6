#!/usr/bin/env python3
"""test_rules_etcd_e2e - the shipped rule packs evaluated centrally agree
with Prometheus.

A real etcd (Debian etcd-server) under a small write load is scraped every
second by a real Prometheus that remote-writes the raw series to rwgate.
Both load the shipped rule packs (deploy/rules/*.yml, with every group's
interval shortened to 5s for the test, the same files for both); Prometheus
does not forward what it records, so rwgate's recording series are its own.

Then, for every recording rule:
  * the set of series (label sets) rwgate records equals the set Prometheus
    records;
  * for rules over raw series, the value rwgate recorded at its evaluation
    time equals Prometheus' own evaluation of the rule's expression at that
    time, over Prometheus' copy of the data;
  * for rules over other rules' output, the value rwgate recorded equals
    rwgate's evaluation of the expression at that time (it saw the earlier
    rules' results of the same evaluation);
and the alerts active in both are the same (name and labels). The two
evaluate at their own moments in each 5 s interval, so a burn rate right at a
threshold can be over it in one and under it in the other for an
evaluation: the sets must agree within a few evaluations.

Usage: test_rules_etcd_e2e.py [--rwgate PATH] [--rules DIR] (default
deploy/rules of this repository)."""

import base64
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rwlib import Checks, Prometheus, Rwgate, free_port, http, log, poll  # noqa: E402

INTERVAL = "5s"
OFFSET = "10s"
TARGET_LABELS = {"cluster": "e2e-etcd", "product": "rke2", "scenario": "e2e", "size": "default",
                 "region": "eu-1"}


def arg(name, default):
    for i, a in enumerate(sys.argv):
        if a == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return default


def value_of(s):
    v = float(s)
    return v


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def main():
    c = Checks("test_rules_etcd_e2e")
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    rules_dir = arg("--rules", os.path.join(root, "deploy", "rules"))
    etcd_bin = shutil.which("etcd")
    if not etcd_bin or not shutil.which("prometheus"):
        c.check(False, "etcd and prometheus are installed")
        c.done()
    packs = sorted(glob.glob(os.path.join(rules_dir, "*.yml")))
    if not packs and "--rules" not in sys.argv:
        # before the rule packs are in the tree: the corpus' etcd rules
        packs = [os.path.join(root, "tests", "rules", "unit", "rules_etcd.yml")]
        log("no rule packs in %s: using %s" % (rules_dir, packs[0]))
    c.check(len(packs) > 0, "rule files found in %s" % rules_dir)
    if not packs:
        c.done()

    tmp = tempfile.mkdtemp(prefix="rwgate-e2e-rules-etcd-")
    rdir = os.path.join(tmp, "rules")
    os.mkdir(rdir)
    for f in packs:
        with open(f) as src:
            text = src.read()
        # shorter intervals so a short test sees many evaluations; the same
        # files go to both systems
        text = re.sub(r"(?m)^(\s*)interval:\s*\S+", r"\1interval: " + INTERVAL, text)
        with open(os.path.join(rdir, os.path.basename(f)), "w") as dst:
            dst.write(text)

    cport, pport = free_port(), free_port()
    curl = "http://127.0.0.1:%d" % cport
    elog = open(os.path.join(tmp, "etcd.log"), "wb")
    etcd = subprocess.Popen([etcd_bin, "--name", "e2e", "--data-dir", os.path.join(tmp, "etcd"),
                             "--listen-client-urls", curl, "--advertise-client-urls", curl,
                             "--listen-peer-urls", "http://127.0.0.1:%d" % pport,
                             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pport,
                             "--initial-cluster", "e2e=http://127.0.0.1:%d" % pport],
                            stdout=elog, stderr=subprocess.STDOUT)
    cfg = os.path.join(tmp, "rwgate.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: %s\n  rule_query_offset: %s\n"
                "rule_files: [rules/*.yml]\n" % (INTERVAL, OFFSET))
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    g = Rwgate(data=data, extra=["--config", cfg]).start()
    prom = None
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            kv = {"key": base64.b64encode(b"k%d" % (i % 50)).decode(),
                  "value": base64.b64encode(b"v" * (100 + i % 300)).decode()}
            try:
                http("POST", curl + "/v3/kv/put", json.dumps(kv).encode(),
                     {"Content-Type": "application/json"}, timeout=5)
            except OSError:
                pass
            i += 1
            stop.wait(0.02)

    try:
        for _ in range(200):
            try:
                if http("GET", curl + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        th = threading.Thread(target=load, daemon=True)
        th.start()
        labels = "".join("\n          %s: %s" % kv for kv in sorted(TARGET_LABELS.items()))
        prom = Prometheus("rules-etcd", """
global: {scrape_interval: 1s, evaluation_interval: %s}
rule_files: [%s/*.yml]
scrape_configs:
  - job_name: etcd
    static_configs:
      - targets: ['127.0.0.1:%d']
        labels:%s
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 1s, max_shards: 2}
    write_relabel_configs:
      # what Prometheus records stays there: rwgate records its own
      - source_labels: [__name__]
        regex: '.*:.*|ALERTS|ALERTS_FOR_STATE'
        action: drop
""" % (INTERVAL, rdir, cport, labels, g.url))
        log("etcd %s, prometheus %s, rwgate %s: %d rule files, loading for 100s"
            % (curl, prom.url, g.url, len(packs)))
        time.sleep(100)

        st, doc = g.api("/api/v1/rules", type="record")
        c.eq(st, 200, "rwgate rules API")
        rules = [(r["name"], r["query"], r.get("labels", {}), grp["name"])
                 for grp in doc["data"]["groups"] for r in grp["rules"]]
        st, pdoc = prom.api("/api/v1/rules", type="record")
        prules = [(r["name"], r["query"]) for grp in pdoc["data"]["groups"] for r in grp["rules"]]
        # the same rules by name (the canonical text of an expression differs
        # between Prometheus 2.42 and 3: matcher order, 30d printed as 4w2d)
        c.eq(sorted(n for n, _, _, _ in rules), sorted(n for n, _ in prules),
             "same recording rules loaded in both")
        recorded = {n for n, _, _, _ in rules}
        bad_health = [(r["name"], r.get("lastError")) for grp in doc["data"]["groups"]
                      for r in grp["rules"] if r["health"] != "ok"]
        c.eq(bad_health, [], "every recording rule evaluates without error in rwgate")

        compared = nonempty = 0
        for name in sorted(recorded):
            # rwgate's newest recorded sample per series, and the same series in Prometheus
            st, gd = g.api("/api/v1/query", query="last_over_time(%s[30s])" % name)
            gres = gd["data"]["result"] if st == 200 else []
            pd = prom.query("last_over_time(%s[30s])" % name)
            pres = pd["data"]["result"] if pd.get("status") == "success" else []
            key = lambda s: json.dumps(s["metric"], sort_keys=True)  # noqa: E731
            c.eq(sorted(key(s) for s in gres), sorted(key(s) for s in pres),
                 "%s: same series in rwgate and Prometheus" % name)
            if gres:
                nonempty += 1
            # the value recorded at the evaluation time, against the expression there
            st, gts = g.api("/api/v1/query", query="max(timestamp(%s))" % name)
            if st != 200 or not gts["data"]["result"]:
                continue
            t = float(gts["data"]["result"][0]["value"][1])
            defs = [(q, lab) for n, q, lab, _ in rules if n == name]
            # over other rules' output (or its own history): compare with rwgate's inputs
            chained = any(re.search(r"(?<![\w:])%s(?![\w:])" % re.escape(r), q)
                          for q, _ in defs for r in recorded)
            st, gv = g.api("/api/v1/query", query="%s" % name, time="%.3f" % t)
            got = {key(s): value_of(s["value"][1]) for s in gv["data"]["result"]} if st == 200 else {}
            want = {}
            for q, lab in defs:
                if chained:
                    st, ev = g.api("/api/v1/query", query=q, time="%.3f" % t)
                    res = ev["data"]["result"] if st == 200 and ev["data"]["resultType"] == "vector" else []
                else:
                    ev = prom.query(q, t)
                    res = ev["data"]["result"] if ev.get("status") == "success" and \
                        ev["data"]["resultType"] == "vector" else []
                for s in res:
                    m = dict(s["metric"])
                    m["__name__"] = name
                    for k, v in lab.items():
                        if v:
                            m[k] = v
                        else:
                            m.pop(k, None)
                    want[json.dumps(m, sort_keys=True)] = value_of(s["value"][1])
            same = set(got) == set(want) and all(close(got[k], want[k]) for k in got)
            c.check(same, "%s at %.3f: recorded = %s evaluation of the expression"
                    % (name, t, "rwgate's" if chained else "Prometheus'"),
                    "\n  recorded: %r\n  expected: %r" % (got, want))
            compared += 1
        want_rules = min(10, len(recorded))
        c.check(nonempty >= want_rules, "at least %d recording rules produced series" % want_rules,
                str(nonempty))
        c.check(compared >= want_rules, "at least %d recording rules compared by value" % want_rules,
                str(compared))

        def active(get):
            return sorted(json.dumps(a["labels"], sort_keys=True) for a in get
                          if a["state"] in ("firing", "pending"))
        last = {}

        def same_alerts():
            st, ga = g.api("/api/v1/alerts")
            pa = prom.api("/api/v1/alerts")[1]
            last["rwgate"], last["prometheus"] = active(ga["data"]["alerts"]), active(pa["data"]["alerts"])
            return last["rwgate"] == last["prometheus"]
        ok = poll(same_alerts, 30, step=1)
        c.check(ok, "the same alerts are active in rwgate and Prometheus (within 30 s)",
                "\n  rwgate: %r\n  prometheus: %r" % (last.get("rwgate"), last.get("prometheus")))
    finally:
        stop.set()
        if prom:
            prom.stop(show_log=bool(c.failed))
        etcd.terminate()
        try:
            etcd.wait(20)
        except subprocess.TimeoutExpired:
            etcd.kill()
        if c.failed:
            log("rwgate log tail:\n" + g.log_tail(6000))
        g.stop()
        g.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
