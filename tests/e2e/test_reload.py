"""Every configuration key marked reloadable really applies on reload.

The list of reloadable keys comes from the binary itself (`rwgate help
config`), so a key that becomes reloadable without a check here fails this
test. Each key is changed alone in the file, the running process reloads
(POST /-/reload), and a write or a read shows the new behaviour; then the
file goes back to the base and the old behaviour returns. Keys inside lists
and maps (e.g. relabel rules) are covered by their container's check; keys
that only make sense together with others (the Kubernetes API source) are
set in a small document of their own and checked through the settings the
running poller reports.

Rules and alerting keys are checked with a rule file (a group without its
own interval, an alert that fires at once and reports its evaluation time as
its value) and an Alertmanager stand-in that counts the alerts posted to it.

Also: metrics registered once whatever the number of reloads, and
rwgate_config_last_reload_successful following the outcome."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import rfc3339 as rwlib_rfc3339
from rwlib import Checks, Rwgate, http, log, rwgate_path, snappy_compress, write_request_v1, V1_HEADERS

c = Checks("test_reload")
binary = rwgate_path()
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-reload-")
cfg = os.path.join(tmp, "rwgate.yml")


# ---- an Alertmanager stand-in: counts the alerts posted to each path
class Sink(BaseHTTPRequestHandler):
    posts = {}
    labels = []  # label sets of the alerts posted since the last reload

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        try:
            alerts = json.loads(body)
            count = len(alerts)
            Sink.labels.extend(a.get("labels", {}) for a in alerts)
        except ValueError:
            count = 0
        Sink.posts[self.path] = Sink.posts.get(self.path, 0) + count
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()
SINK = "127.0.0.1:%d" % sink.server_address[1]

RULES = {
    "rl_base.yml": """groups:
  - name: rl_default
    rules: [{record: rl_default_rec, expr: vector(1)}]
  - name: rl_fast
    interval: 1s
    rules:
      - alert: rl_alert
        expr: vector(time())
        annotations: {url: "{{ $externalURL }}"}
""",
    "rl_other.yml": """groups:
  - name: rl_other
    rules: [{record: rl_other_rec, expr: vector(1)}]
""",
}
for name, text in RULES.items():
    open(os.path.join(tmp, name), "w").write(text)

SECTIONS = [
    ("store", "store:\n  retention: 0\n"),
    ("rule_files", "rule_files: [rl_base.yml]\n"),
    ("alerting", "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['%s']}]\n"
                 "      path_prefix: /a\n" % SINK),
]
BASE = "".join(t for _, t in SECTIONS)


def reloadable_keys():
    out = subprocess.run([binary, "help", "config"], capture_output=True, text=True, check=True).stdout
    keys = set()
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 4 and f[3] == "reload" and not re.search(r"\[\]|\.NAME|<label>", f[0]):
            keys.add(f[0])
    return keys


def yaml_for(key, value):
    """the base config plus one dotted key set to value (a YAML fragment); a
    key of a section the base has goes into that section, a top-level key of
    the base replaces it"""
    parts = key.split(".")
    base = dict(SECTIONS)
    if parts[0] in base:
        if len(parts) == 1 or base[parts[0]].split("\n")[1].strip().startswith(parts[1] + ":"):
            # the key itself, or the first key of the base's section: replace
            base[parts[0]] = parts[0] + ":\n  " + parts[1] + ": " + value + "\n" \
                if len(parts) > 1 else parts[0] + ": " + value + "\n"
        else:
            base[parts[0]] = base[parts[0]].replace(parts[0] + ":\n", parts[0] + ":\n  " +
                                                    parts[1] + ": " + value + "\n", 1)
        return "".join(base[k] for k, _ in SECTIONS)
    text = ""
    for depth, p in enumerate(parts[:-1]):
        text += "  " * depth + p + ":\n"
    text += "  " * (len(parts) - 1) + parts[-1] + ": " + value + "\n"
    return BASE + text


g = None


def reload_with(text):
    open(cfg, "w").write(text)
    Sink.labels = []
    # the credential the auth.* cases configure (ignored while auth is off)
    st, _, b = http("POST", g.url + "/-/reload", headers={"Authorization": "Bearer test"})
    c.check(st == 200, "reload accepted", b[:300])


def write(series, headers=None):
    h = dict(V1_HEADERS)
    h.update(headers or {})
    return g.write(write_request_v1(series), headers=h)


def series_labels(match):
    st, j = g.api("/api/v1/series", **{"match[]": match})
    return j.get("data", []) if st == 200 else []


NOW = int(time.time() * 1000)
seq = [0]


def fresh(name):
    seq[0] += 1
    return "%s_%d" % (name, seq[0])


# ---- one check per reloadable key: (before, after) both return True when the
# behaviour matches the base (before) or the changed setting (after)

def k_tenant_header(expect=False):
    m = fresh("rl_th")
    write([([("__name__", m)], [(NOW, 1.0)])], {"X-Team": "tx"})
    return any(s.get("tenant_id") == "tx" for s in series_labels(m))


def k_tenant_label(expect=False):
    m = fresh("rl_tl")
    write([([("__name__", m)], [(NOW, 1.0)])], {"X-Scope-OrgID": "t1"})
    return any(s.get("team") == "t1" for s in series_labels(m))


def k_default_tenant(expect=False):
    m = fresh("rl_dt")
    write([([("__name__", m)], [(NOW, 1.0)])])
    return any(s.get("tenant_id") == "anon" for s in series_labels(m))


def k_max_future(expect=False):
    m = fresh("rl_mf")
    st, _, _ = write([([("__name__", m)], [(int(time.time() * 1000) + 30 * 60 * 1000, 1.0)])])
    return st == 204


def k_max_body_bytes(expect=False):
    body = write_request_v1([([("__name__", fresh("rl_mb")), ("pad", "x" * 3000)], [(NOW, 1.0)])])
    st, _, _ = g.write(body)
    return st == 413


def k_max_decoded_bytes(expect=False):
    body = write_request_v1([([("__name__", fresh("rl_md")), ("pad", "y" * 1500)], [(NOW, 1.0)]),
                             ([("__name__", fresh("rl_md")), ("pad", "z" * 1500)], [(NOW, 1.0)])])
    st, _, b = g.write(body)
    return st == 400 and b"exceeds the limit" in b


def k_max_series_per_request(expect=False):
    st, _, b = write([([("__name__", fresh("rl_ms"))], [(NOW, 1.0)]) for _ in range(3)])
    return st == 400 and b"limit is 2 per request" in b


def k_max_labels_per_series(expect=False):
    st, _, b = write([([("__name__", fresh("rl_ml")), ("a", "1"), ("b", "2"), ("c", "3")], [(NOW, 1.0)])])
    return st == 400 and b"labels, limit is 3" in b


def k_max_label_name_length(expect=False):
    st, _, b = write([([("__name__", fresh("rl_nl")), ("abcdefgh", "1")], [(NOW, 1.0)])])
    return st == 400 and b"limit is 6" in b


def k_max_label_value_length(expect=False):
    st, _, b = write([([("__name__", fresh("rl_vl")), ("k", "abcdefgh")], [(NOW, 1.0)])])
    return st == 400 and b"limit is 5" in b


def k_max_inflight_bytes(expect=False):
    """with a 64 KiB budget, a write of 50 series fits alone, two at once
    do not: at least one of many concurrent rounds is answered 503"""
    big = write_request_v1([([("__name__", "rl_if"), ("i", str(i)), ("pad", "p" * 80)], [(NOW, 1.0)])
                            for i in range(50)])
    body = snappy_compress(big)
    seen = []
    # expecting 503s: hammer until one comes (or 30 s); expecting none: a
    # few rounds must all be admitted
    deadline = time.time() + (30 if expect else 3)

    def worker():
        while time.time() < deadline and not seen:
            st, hd, _ = http("POST", g.url + "/api/v1/write", body, V1_HEADERS)
            if st == 503 and "retry-after" in hd:
                seen.append(st)
    ths = [threading.Thread(target=worker) for _ in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return bool(seen)


def k_external_labels(expect=False):
    m = fresh("rl_el")
    write([([("__name__", m), ("job", "x")], [(int(time.time() * 1000), 1.0)])])
    st, _, b = http("GET", g.url + "/federate?match[]=" + m)
    return b'central="two"' in b


def rules_api():
    st, j = g.api("/api/v1/rules")
    return j["data"]["groups"] if st == 200 else []


def fast_alert(after):
    """rl_alert as evaluated after wall-clock time `after` (waits for it)"""
    deadline = time.time() + 20
    while time.time() < deadline:
        for grp in rules_api():
            for r in grp["rules"]:
                if r["name"] == "rl_alert" and r["alerts"] and rwlib_rfc3339(r["lastEvaluation"]) > after:
                    return r
        time.sleep(0.2)
    return None


def k_rule_files(expect=False):
    return any(grp["name"] == "rl_other" for grp in rules_api())


def k_evaluation_interval(expect=False):
    return any(grp["name"] == "rl_default" and grp["interval"] == 7 for grp in rules_api())


def k_rule_query_offset(expect=False):
    """the alert's value is its evaluation time, lastEvaluation the wall
    clock: they are the query offset apart (3m instead of 1m)"""
    r = fast_alert(time.time())
    if not r:
        return None
    return rwlib_rfc3339(r["lastEvaluation"]) - float(r["alerts"][0]["value"]) > 150


def k_external_url(expect=False):
    r = fast_alert(time.time())
    return bool(r) and r["alerts"][0]["annotations"]["url"] == "http://rl.example:1234"


def k_resend_delay(expect=False):
    """firing alerts are sent again once more than the resend delay has
    passed: with 1s (and 1s evaluations) every other evaluation, so at least
    two in 5s; with the default 1m at most one"""
    time.sleep(1.5)  # what the reload itself triggered is not counted
    before = Sink.posts.get("/a/api/v2/alerts", 0)
    time.sleep(5)
    return Sink.posts.get("/a/api/v2/alerts", 0) - before >= 2


def k_alertmanagers(expect=False):
    """the firing alert reaches the new Alertmanager at its next resend (the
    default resend delay is 1m); none arrives there with the base config"""
    before = Sink.posts.get("/b/api/v2/alerts", 0)
    deadline = time.time() + (70 if expect else 3)
    while time.time() < deadline:
        if Sink.posts.get("/b/api/v2/alerts", 0) > before:
            return True
        time.sleep(0.2)
    return False


def k_alert_relabel_configs(expect=False):
    """alerts posted after the reload carry the label the rule sets (the
    document also sets a 1 s resend delay, so one is posted at once)"""
    deadline = time.time() + (20 if expect else 3)
    while time.time() < deadline:
        if any(l.get("relabeled") == "yes" for l in list(Sink.labels)):
            return True
        time.sleep(0.2)
    return False


def k_queue_capacity(expect=False):
    st, _, b = http("GET", g.url + "/metrics")
    return b"rwgate_notifications_queue_capacity 77" in b


# ---- ingest-time cleaning

def sources():
    st, j = g.api("/api/v1/status/sources")
    return j.get("data", {}) if st == 200 else {}


def w(labels, t, v=1.0, headers=None):
    """writes one sample of one series (labels: dict), sorted as Prometheus sends"""
    return write([(sorted(labels.items()), [(t, v)])], headers)


def stored(match):
    return series_labels(match)


def k_cluster_label(expect=False):
    cl = fresh("rl_cl")
    w({"__name__": "rl_cl_m", "kc": cl}, NOW)
    return any(x["cluster"] == cl for x in sources().get("sources", []))


def k_inventory_file(expect=False):
    m = fresh("rl_inv")
    w({"__name__": m, "cluster": "invc"}, NOW)
    return any(x.get("region") == "r1" for x in stored(m))


def k_write_relabel_configs(expect=False):
    m = fresh("rl_wr")
    w({"__name__": m}, NOW)
    return any(x.get("rl") == "yes" for x in stored(m))


def k_tenant_limits(expect=False):
    st, _, b = w({"__name__": fresh("rl_tlim"), "a": "1", "b": "2"}, NOW, headers={"X-Scope-OrgID": "tl1"})
    return st == 400 and b"limit is 2 (max_labels_per_series)" in b


def ha_pair(cluster, labels_extra=None, replica_label="__replica__", cluster_label="cluster"):
    """replica a at NOW-60s, then b at NOW; returns the stored series of the metric"""
    m = fresh("rl_ha")
    la = {"__name__": m, cluster_label: cluster, replica_label: "a"}
    lb = dict(la)
    lb[replica_label] = "b"
    w(la, NOW - 60000, 1.0)
    w(lb, NOW, 2.0)
    return m


def k_ha_enabled(expect=False):
    m = ha_pair(fresh("c"))
    return any("__replica__" in x for x in stored(m))      # not removed: dedup off


def k_ha_cluster_label(expect=False):
    m = ha_pair(fresh("c"), cluster_label="hc")
    return not any("__replica__" in x for x in stored(m))  # deduplicated: label gone


def k_ha_replica_label(expect=False):
    m = ha_pair(fresh("c"), replica_label="rep")
    return not any("rep" in x for x in stored(m))


def samples_of(m):
    st, j = g.api("/api/v1/query", query="count_over_time(%s[10m])" % m, time="%.3f" % (NOW / 1000.0 + 1))
    r = j.get("data", {}).get("result", []) if st == 200 else []
    return int(float(r[0]["value"][1])) if r else 0


def k_ha_failover_timeout(expect=False):
    m = ha_pair(fresh("c"))   # b 60 s newer: a failover at 30s, none at 1h
    return samples_of(m) == 1


def k_ha_max_clusters(expect=False):
    """the table is full (earlier probes filled it): a new cluster passes
    undeduplicated, both replicas' samples are stored"""
    m = fresh("rl_hm")
    c1 = fresh("c")
    w({"__name__": m, "__replica__": "a", "cluster": c1}, NOW - 1000, 1.0)
    w({"__name__": m, "__replica__": "b", "cluster": c1}, NOW, 2.0)
    return samples_of(m) == 2


def k_ha_standby_buffer(expect=False):
    """b's sample at +5 s is newer than anything of a's: kept and stored at
    b's failover (+40 s) with a buffer, lost without"""
    m = fresh("rl_hb")
    c1 = fresh("c")
    w({"__name__": m, "__replica__": "a", "cluster": c1}, NOW - 45000, 1.0)
    w({"__name__": m, "__replica__": "b", "cluster": c1}, NOW - 40000, 2.0)
    w({"__name__": m, "__replica__": "b", "cluster": c1}, NOW, 3.0)
    return samples_of(m) == 2   # a's and b's current one only


def kubelet_case(strict_node=False, ksm_age_ms=0, node_label="node", instance_label="instance", job="kubelet"):
    """node 'old' (Ready unknown) and 'new' (Ready true) share 10.9.9.9 in a
    fresh cluster; returns whether old's kubelet series was stored. With
    strict_node: a lone node with Ready=false instead."""
    c1 = fresh("kc")
    m = fresh("rl_kub")
    if strict_node:
        for st, v in (("true", 0.0), ("false", 1.0), ("unknown", 0.0)):
            w({"__name__": "kube_node_status_condition", "cluster": c1, "condition": "Ready",
               "node": "old", "status": st}, NOW, v)
        w({"__name__": "kube_node_info", "cluster": c1, "internal_ip": "10.9.9.8", "node": "old"}, NOW)
        w({"__name__": m, "cluster": c1, instance_label: "10.9.9.8:10250", "job": job, node_label: "old"}, NOW)
        return bool(stored(m))
    for node, ready, age in (("old", "unknown", ksm_age_ms), ("new", "true", 0)):
        for st in ("true", "false", "unknown"):
            w({"__name__": "kube_node_status_condition", "cluster": c1, "condition": "Ready",
               "node": node, "status": st}, NOW - age, 1.0 if st == ready else 0.0)
        w({"__name__": "kube_node_info", "cluster": c1, "internal_ip": "10.9.9.9", "node": node}, NOW - age)
    labels = {"__name__": m, "cluster": c1, "instance": "10.9.9.9:10250", "job": job, "node": "old"}
    # a second node / instance label under another name: what the series is
    # judged by when node_label / instance_label name it
    if node_label != "node":
        labels[node_label] = "new"
    if instance_label != "instance":
        labels[instance_label] = "10.9.9.7:10250"
    w(labels, NOW)
    return bool(stored(m))


def k_kub_enabled(expect=False):
    return kubelet_case()


def k_kub_selector(expect=False):
    return kubelet_case()


def k_kub_mode(expect=False):
    return not kubelet_case(strict_node=True)


def k_kub_node_label(expect=False):
    return kubelet_case(node_label="nd")


def k_kub_instance_label(expect=False):
    return kubelet_case(instance_label="inst")


def k_kub_node_ttl(expect=False):
    return kubelet_case(ksm_age_ms=5 * 60000)   # old's KSM data 5 min older: expired at 1m


def k_kub_max_nodes(expect=False):
    return kubelet_case()


def k_active_series_window(expect=False):
    return sources().get("settings", {}).get("active_series_window") == "2h"


def k_max_sources(expect=False):
    before = sources().get("overflow_requests", 0)
    w({"__name__": "rl_ms_m", "cluster": fresh("src")}, NOW)
    return sources().get("overflow_requests", 0) > before


def kapi(field, want):
    def probe(expect=False):
        k = sources().get("kubernetes_api")
        return bool(k) and (k.get("settings") or {}).get(field) == want
    return probe


KAPI = "ingest:\n  kubelet_dedup:\n    kubernetes_api:\n      url: http://127.0.0.1:9\n      cluster: kc0\n"


def kapi_yaml(extra):
    return BASE + KAPI + "".join("      " + line + "\n" for line in extra.splitlines())


inv_path = os.path.join(tmp, "clusters.yml")
open(inv_path, "w").write("clusters:\n  invc: {region: r1}\n")

# keys whose change needs more than one line of YAML: key -> (document, probe)
FULL = {
    "ingest.kubelet_dedup.kubernetes_api.url": (kapi_yaml(""), kapi("url", "http://127.0.0.1:9")),
    "ingest.kubelet_dedup.kubernetes_api.cluster": (kapi_yaml(""), kapi("cluster", "kc0")),
    "ingest.kubelet_dedup.kubernetes_api.tenant": (kapi_yaml("tenant: kt"), kapi("tenant", "kt")),
    "ingest.kubelet_dedup.kubernetes_api.bearer_token_file": (
        kapi_yaml("bearer_token_file: /nonexistent/token"), kapi("bearer_token_file", "/nonexistent/token")),
    "ingest.kubelet_dedup.kubernetes_api.refresh_interval": (
        kapi_yaml("refresh_interval: 7s"), kapi("refresh_interval_seconds", 7)),
    "ingest.kubelet_dedup.kubernetes_api.timeout": (kapi_yaml("timeout: 9s"), kapi("timeout_seconds", 9)),
    "ingest.kubelet_dedup.kubernetes_api.tls_config.ca_file": (
        kapi_yaml("tls_config: {ca_file: /nonexistent/ca.pem}"), kapi("ca_file", "/nonexistent/ca.pem")),
    "ingest.kubelet_dedup.kubernetes_api.tls_config.cert_file": (
        kapi_yaml("tls_config: {cert_file: /nonexistent/c.pem}"), kapi("cert_file", "/nonexistent/c.pem")),
    "ingest.kubelet_dedup.kubernetes_api.tls_config.key_file": (
        kapi_yaml("tls_config: {key_file: /nonexistent/k.pem}"), kapi("key_file", "/nonexistent/k.pem")),
    "ingest.kubelet_dedup.kubernetes_api.tls_config.server_name": (
        kapi_yaml("tls_config: {server_name: api.example}"), kapi("server_name", "api.example")),
    "ingest.kubelet_dedup.kubernetes_api.tls_config.insecure_skip_verify": (
        kapi_yaml("tls_config: {insecure_skip_verify: true}"), kapi("insecure_skip_verify", True)),
    "alerting.alert_relabel_configs": (
        BASE.replace("alerting:\n", "alerting:\n  alert_relabel_configs: [{target_label: relabeled, "
                     "replacement: 'yes'}]\n") + "rules:\n  resend_delay: 1s\n",
        k_alert_relabel_configs),
}

def k_max_help_length(expect=False):
    m = fresh("rl_hl")
    st, _, b = g.write(write_request_v1([([("__name__", m), ("x", "1")], [(NOW, 1.0)])],
                                        metadata=[(1, m, "a help text", "")]))
    return st == 400 and b"max_help_length" in b


TOKEN_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
TENANTS = "[{name: t, bearer_token_sha256: %s, permissions: [write, read, admin]}]" % TOKEN_SHA


def k_auth_tenants(expect=False):
    """credentials configured: a write without one is 401, with it 204"""
    m = fresh("rl_au")
    body = snappy_compress(write_request_v1([([("__name__", m), ("x", "1")], [(NOW, 1.0)])]))
    st, _, _ = http("POST", g.url + "/api/v1/write", body, V1_HEADERS)
    h = dict(V1_HEADERS, Authorization="Bearer test")
    st2, _, _ = http("POST", g.url + "/api/v1/write", body, h)
    return st == 401 and st2 == 204


def k_auth_open_paths(expect=False):
    """/-/ready left out of open_paths needs a credential"""
    return http("GET", g.url + "/-/ready")[0] == 401


def k_auth_realm(expect=False):
    st, hd, _ = http("GET", g.url + "/api/v1/query?query=1")
    return st == 401 and 'realm="other"' in hd.get("www-authenticate", "")


CASES = {
    "rule_files": ("[rl_other.yml]", k_rule_files),
    "global.evaluation_interval": ("7s", k_evaluation_interval),
    "global.rule_query_offset": ("3m", k_rule_query_offset),
    "global.external_url": ("http://rl.example:1234", k_external_url),
    "rules.resend_delay": ("1s", k_resend_delay),
    "alerting.alertmanagers": ("[{static_configs: [{targets: ['%s']}], path_prefix: /b}]" % SINK,
                               k_alertmanagers),
    "alerting.notification_queue_capacity": ("77", k_queue_capacity),
    "ingest.tenant_header": ("X-Team", k_tenant_header),
    "ingest.tenant_label": ("team", k_tenant_label),
    "ingest.default_tenant": ("anon", k_default_tenant),
    "ingest.max_future": ("1h", k_max_future),
    "ingest.max_body_bytes": ("2KiB", k_max_body_bytes),
    "ingest.max_decoded_bytes": ("2KiB", k_max_decoded_bytes),
    "ingest.max_series_per_request": ("2", k_max_series_per_request),
    "ingest.max_labels_per_series": ("3", k_max_labels_per_series),
    "ingest.max_label_name_length": ("6", k_max_label_name_length),
    "ingest.max_label_value_length": ("5", k_max_label_value_length),
    "ingest.max_inflight_bytes": ("64KiB", k_max_inflight_bytes),
    "global.external_labels": ("{central: two}", k_external_labels),
    "ingest.cluster_label": ("kc", k_cluster_label),
    "ingest.inventory_file": (inv_path, k_inventory_file),
    "ingest.write_relabel_configs": ("[{target_label: rl, replacement: 'yes'}]", k_write_relabel_configs),
    "ingest.tenant_limits": ("{tl1: {max_labels_per_series: 2}}", k_tenant_limits),
    "ingest.ha_dedup.enabled": ("false", k_ha_enabled),
    "ingest.ha_dedup.cluster_label": ("hc", k_ha_cluster_label),
    "ingest.ha_dedup.replica_label": ("rep", k_ha_replica_label),
    "ingest.ha_dedup.failover_timeout": ("1h", k_ha_failover_timeout),
    "ingest.ha_dedup.max_clusters": ("1", k_ha_max_clusters),
    "ingest.ha_dedup.standby_buffer": ("0", k_ha_standby_buffer),
    "ingest.kubelet_dedup.enabled": ("false", k_kub_enabled),
    "ingest.kubelet_dedup.selector": ("'{job=\"kub2\"}'", k_kub_selector),
    "ingest.kubelet_dedup.mode": ("strict", k_kub_mode),
    "ingest.kubelet_dedup.node_label": ("nd", k_kub_node_label),
    "ingest.kubelet_dedup.instance_label": ("inst", k_kub_instance_label),
    "ingest.kubelet_dedup.node_ttl": ("1m", k_kub_node_ttl),
    "ingest.kubelet_dedup.max_nodes": ("1", k_kub_max_nodes),
    "ingest.active_series_window": ("2h", k_active_series_window),
    "ingest.max_sources": ("1", k_max_sources),
    "ingest.max_help_length": ("5", k_max_help_length),
    "auth.tenants": (TENANTS, k_auth_tenants),
    # open_paths and realm only matter with credentials: the value carries them
    "auth.open_paths": ("[/metrics]\n  tenants: " + TENANTS, k_auth_open_paths),
    "auth.realm": ("other\n  tenants: " + TENANTS, k_auth_realm),
}

try:
    keys = reloadable_keys()
    c.check(len(keys) >= len(CASES) - 1, "help config lists the reloadable keys", sorted(keys))
    missing = sorted(keys - set(CASES) - set(FULL))
    c.eq(missing, [], "every reloadable key has a check here")

    open(cfg, "w").write(BASE)
    g = Rwgate(extra=["--config", cfg, "--shards", "1"]).start()
    for key in sorted(set(CASES) | set(FULL)):
        if key not in keys:
            c.check(False, "%s is reloadable" % key)
            continue
        if key in FULL:
            doc, probe = FULL[key]
            value = "(document)"
        else:
            value, probe = CASES[key]
            doc = yaml_for(key, value)
        c.check(not probe(False), "%s: base behaviour before the reload" % key)
        reload_with(doc)
        c.check(probe(True), "%s=%s applies after the reload" % (key, value))
        reload_with(BASE)
        c.check(not probe(False), "%s: base behaviour back after reloading the base" % key)

    st, _, b = http("GET", g.url + "/metrics")
    text = b.decode()
    c.eq(text.count('rwgate_ingest_requests_total{version="1"}'), 1,
         "a series is exposed once after many reloads")
    c.check("rwgate_config_last_reload_successful 1" in text, "last reload successful = 1")
    open(cfg, "w").write(BASE + "query:\n  timeout: 7s\n")
    st, _, b = http("POST", g.url + "/-/reload")
    c.check(st == 500 and b"query.timeout cannot change without a restart" in b, "restart-only key refused", b[:200])
    st, _, b = http("GET", g.url + "/metrics")
    c.check(b"rwgate_config_last_reload_successful 0" in b, "last reload successful = 0 after a failure")
finally:
    if g is not None:
        if c.failed:
            log("rwgate log tail:\n" + g.log_tail())
        g.cleanup()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
