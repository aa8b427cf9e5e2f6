#!/usr/bin/env python3
"""test_rules_reload - rule state survives reloads and restarts.

rwgate evaluates a recording group and an alert group every 2s from data
remote-written to it:
  * SIGHUP with the alert group changed (another annotation, one more rule):
    the pending alert keeps its activeAt and the unchanged recording group
    keeps evaluating (its counters keep growing);
  * POST /-/reload with a rule file that does not parse: 500, the old rules
    keep running, rwgate_config_last_reload_successful 0; fixing the file
    and reloading again sets it back to 1;
  * removing a recording rule: its series gets a stale marker;
  * restart while the alert is pending: after the restart the alert's `for`
    progress is restored from ALERTS_FOR_STATE (activeAt moves forward by the
    outage, not to the restart), as Prometheus does.
Recording results are queryable with the query offset applied (written at
the evaluation time minus rule_query_offset)."""

import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwlib  # noqa: E402

REC = """groups:
  - name: rec
    interval: 2s
    rules:
      - record: cluster:leader:min
        expr: min by (cluster) (etcd_server_has_leader)
      - record: cluster:leader:count
        expr: count by (cluster) (etcd_server_has_leader)
"""

ALERT = """groups:
  - name: alerts
    interval: 2s
    rules:
      - alert: NoLeader
        expr: cluster:leader:min == 0
        for: 60s
        labels: {severity: critical}
        annotations: {summary: "%s"}
"""

ALERT2 = ALERT + """      - alert: Extra
        expr: cluster:leader:min == 0
"""


def alerts(rw, name):
    st, d = rw.api("/api/v1/alerts")
    if st != 200:
        return []
    return [a for a in d["data"]["alerts"] if a["labels"]["alertname"] == name]


def metric(rw, name, labels=""):
    st, _, b = rwlib.http("GET", rw.url + "/metrics")
    for line in b.decode().splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
        if labels and line.startswith(name + "{") and labels.strip("{}") in line:
            return float(line.split()[-1])
    return None


def main():
    c = rwlib.Checks("test_rules_reload")
    tmp = tempfile.mkdtemp(prefix="rwgate-rules-reload-")
    rdir = os.path.join(tmp, "rules")
    os.mkdir(rdir)

    def write(name, text):
        with open(os.path.join(rdir, name), "w") as f:
            f.write(text)

    write("rec.yml", REC)
    write("alert.yml", ALERT % "first")
    cfg = os.path.join(tmp, "rwgate.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: 2s\n  rule_query_offset: 1s\n"
                "rule_files: [rules/*.yml]\n"
                "rules:\n  for_grace_period: 5s\n")
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    rw = rwlib.Rwgate(data=data, extra=["--config", cfg]).start()
    stop = threading.Event()

    def push():
        while not stop.is_set():
            t = int(time.time() * 1000)
            s = [([("__name__", "etcd_server_has_leader"), ("cluster", "c1"), ("instance", "a")],
                  [(t, 0)])]
            try:
                rwlib.http("POST", rw.url + "/api/v1/write",
                           rwlib.snappy_compress(rwlib.write_request_v1(s)), rwlib.V1_HEADERS,
                           timeout=5)
            except OSError:
                pass
            stop.wait(0.5)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    try:
        # the first start restores after two evaluations, then ALERTS_FOR_STATE is written
        a = rwlib.poll(lambda: alerts(rw, "NoLeader"), 30)
        c.check(a and a[0]["state"] == "pending", "NoLeader pending", repr(a))
        active0 = a[0]["activeAt"] if a else None
        iters0 = metric(rw, "rwgate_rule_group_iterations_total", '{rule_group="%s/rec.yml;rec"}' % rdir)
        c.check(iters0 is not None and iters0 >= 1, "recording group iterations", repr(iters0))

        # recording results: queryable, written at evaluation time - 1s offset
        st, d = rw.api("/api/v1/query", query="cluster:leader:min")
        c.check(st == 200 and d["data"]["result"] and d["data"]["result"][0]["value"][1] == "0",
                "recorded series queryable", repr(d))

        # --- reload with the alert group changed
        write("alert.yml", ALERT2 % "second")
        rw.proc.send_signal(signal.SIGHUP)
        ok = rwlib.poll(lambda: metric(rw, "rwgate_config_reloads_total", '{result="success"}') == 1, 20)
        c.check(ok, "SIGHUP reload succeeded", rw.log_tail())
        a = rwlib.poll(lambda: [x for x in alerts(rw, "NoLeader") if x["annotations"]["summary"] == "second"], 20)
        c.check(bool(a), "changed annotation applied", repr(alerts(rw, "NoLeader")))
        c.eq(a[0]["activeAt"] if a else None, active0, "activeAt kept across the reload")
        c.check(rwlib.poll(lambda: alerts(rw, "Extra"), 20), "new rule evaluated")
        iters1 = rwlib.poll(lambda: (metric(rw, "rwgate_rule_group_iterations_total",
                                      '{rule_group="%s/rec.yml;rec"}' % rdir) or 0) > iters0 and
                      metric(rw, "rwgate_rule_group_iterations_total",
                             '{rule_group="%s/rec.yml;rec"}' % rdir), 20)
        c.check(iters1, "unchanged group keeps evaluating, counters kept", repr(iters1))

        # --- an invalid rule file: the reload fails, the rules stay
        write("alert.yml", "groups:\n  - name: alerts\n    rules:\n      - alert: X\n        expr: sum(\n")
        st, _, body = rwlib.http("POST", rw.url + "/-/reload")
        c.eq(st, 500, "reload with a broken rule file answers 500")
        c.check(b"alert.yml:5:" in body, "the reason names the file and line", body)
        c.eq(metric(rw, "rwgate_config_last_reload_successful"), 0.0,
             "rwgate_config_last_reload_successful 0")
        before = alerts(rw, "NoLeader")
        time.sleep(3)
        st, d = rw.api("/api/v1/rules")
        names = sorted(r["name"] for g in d["data"]["groups"] for r in g["rules"])
        c.eq(names, ["Extra", "NoLeader", "cluster:leader:count", "cluster:leader:min"],
             "old rules still loaded")
        c.eq([x["activeAt"] for x in alerts(rw, "NoLeader")], [x["activeAt"] for x in before],
             "alert state untouched by the failed reload")

        # --- drop a recording rule: its series goes stale
        write("alert.yml", ALERT2 % "second")
        write("rec.yml", REC.split("      - record: cluster:leader:count")[0])
        st, _, body = rwlib.http("POST", rw.url + "/-/reload")
        c.eq(st, 200, "reload after fixing the file")
        c.eq(metric(rw, "rwgate_config_last_reload_successful"), 1.0,
             "rwgate_config_last_reload_successful back to 1")

        def gone():
            st, d = rw.api("/api/v1/query", query="cluster:leader:count")
            return st == 200 and d["data"]["result"] == []
        c.check(rwlib.poll(gone, 20), "removed rule's series is stale (not returned within the lookback)")
        st, d = rw.api("/api/v1/query", query="cluster:leader:count[1m]")
        c.check(st == 200 and d["data"]["result"], "its samples before the stale marker remain",
                repr(d))

        # --- restart while pending: `for` progress is restored
        a = alerts(rw, "NoLeader")
        c.check(a and a[0]["state"] == "pending", "still pending before the restart", repr(a))
        active_before = rwlib.rfc3339(a[0]["activeAt"]) if a else 0
        time.sleep(4)  # ALERTS_FOR_STATE has been written a few times
        stopped = time.time()
        c.eq(rw.stop(), 0, "SIGTERM: clean stop")
        time.sleep(5)
        rw = rwlib.Rwgate(data=data, extra=["--config", cfg], port=rw.port).start()
        restarted = time.time()
        # two evaluations (~4s), then the restore
        ok = rwlib.poll(lambda: [x for x in alerts(rw, "NoLeader")
                           if rwlib.rfc3339(x["activeAt"]) < restarted - 1], 30)
        c.check(ok, "activeAt restored to before the restart", repr(alerts(rw, "NoLeader")))
        if ok:
            got = rwlib.rfc3339(ok[0]["activeAt"])
            outage = restarted - stopped
            # moved forward by (restore time - last ALERTS_FOR_STATE sample): about the outage
            # plus the two evaluations before the restore
            c.check(active_before + outage - 3 <= got <= active_before + outage + 12,
                    "activeAt moved by about the outage",
                    "before %.1f outage %.1f now %.1f" % (active_before, outage, got))
            c.eq(ok[0]["state"], "pending", "still pending after the restore")
    finally:
        stop.set()
        th.join(5)
        rc = rw.stop()
        c.eq(rc, 0, "rwgate stops cleanly")
        if c.failed:
            print(rw.log_tail(6000))
        rw.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
