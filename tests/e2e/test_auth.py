"""Authentication, permissions and tenancy (auth: section):

- no or a wrong credential: 401 with WWW-Authenticate; a known credential
  without the route's permission: 403 (write, read, admin are separate);
- a credential writes as its tenant: the series carry tenant_id=<its
  tenant>, and a tenant header naming another tenant is 403;
- reads are scoped in every read path (query, query_range, series, labels,
  label values, federate, remote-read): a tenant sees only its own series
  unless read_tenants grants more ("*" = all); /api/v1/status/tsdb needs
  read_tenants "*";
- the rules API scopes alerts the same way: an alerting rule over a metric
  both tenants write fires once per tenant, and /api/v1/alerts (paged or
  not) and the alerts and state in /api/v1/rules show a credential only the
  alerts of tenants it reads; an alert without a tenant label only to "*";
  rule definitions stay visible to every reader;
- bearer tokens are stored as SHA-256, basic-auth passwords as PBKDF2
  (`rwgate hash-password`); open_paths serve /metrics and health without a
  credential; rwgate_auth_enabled says whether credentials are required;
- credentials reload (SIGHUP / POST /-/reload by an admin);
- a real Prometheus remote-writes with a bearer token.
Without an auth section rwgate stays open and says so."""

import base64
import hashlib
import http.client as http_client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import (Checks, Prometheus, Rwgate, V1_HEADERS, http, log, read_request, rwgate_path,
                   snappy_compress, snappy_decompress, decode_read_response, write_request_v1)

c = Checks("test_auth")
binary = rwgate_path()
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-auth-")
T = int(time.time() * 1000)

TOK = {k: "tok-%s-%s" % (k, os.urandom(8).hex()) for k in ("a", "b", "ops", "reader")}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


p = subprocess.run([binary, "hash-password", "--iterations", "2000"], input="grafana-pw\n",
                   capture_output=True, text=True)
c.check(p.returncode == 0 and p.stdout.startswith("pbkdf2-sha256$2000$"), "hash-password", p.stdout + p.stderr)
PW_HASH = p.stdout.strip()


def config(with_team_a=True):
    ten = []
    if with_team_a:
        ten.append("  - name: team-a\n    bearer_token_sha256: %s\n    permissions: [write, read]\n" % sha(TOK["a"]))
    ten.append("  - name: team-b\n    bearer_token_sha256: %s\n    permissions: [write, read]\n" % sha(TOK["b"]))
    ten.append("  - name: dashboards\n    basic_auth: {username: grafana, password_pbkdf2: '%s'}\n"
               "    permissions: [read]\n    read_tenants: ['*']\n" % PW_HASH)
    ten.append("  - name: ops\n    bearer_token_sha256: %s\n    permissions: [admin]\n" % sha(TOK["ops"]))
    ten.append("  - name: team-a\n    bearer_token_sha256: %s\n    permissions: [read]\n"
               "    read_tenants: [team-b]\n" % sha(TOK["reader"]))
    return ("global:\n  evaluation_interval: 1s\n  rule_query_offset: 0s\nrule_files: [alerts.yml]\n"
            "auth:\n  open_paths: [/-/healthy, /-/ready, /metrics]\n  tenants:\n" + "".join(ten))


cfg = os.path.join(tmp, "rwgate.yml")
# one alert per tenant writing auth_alert_metric, and one that belongs to no tenant
with open(os.path.join(tmp, "alerts.yml"), "w") as f:
    f.write("groups:\n- name: auth-alerts\n  rules:\n"
            "  - alert: AuthAlert\n    expr: auth_alert_metric > 0\n    for: 0s\n"
            "    labels: {severity: page}\n"
            "  - alert: AuthFleetAlert\n    expr: count(auth_alert_metric) > 0\n    for: 0s\n"
            "- name: auth-records\n  rules:\n"
            "  - record: auth:alert_metric:count\n    expr: count(auth_alert_metric)\n")
with open(cfg, "w") as f:
    f.write(config())


def bearer(k):
    return {"Authorization": "Bearer " + TOK[k]}


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


DASH = basic("grafana", "grafana-pw")


def write(g, name, hdr, extra=None):
    h = dict(V1_HEADERS)
    h.update(hdr)
    h.update(extra or {})
    body = snappy_compress(write_request_v1([([("__name__", name), ("x", "1")], [(T, 1.0)])]))
    return http("POST", g.url + "/api/v1/write", body, h)


def get(g, path, hdr, **params):
    q = urllib.parse.urlencode(params, doseq=True)
    return http("GET", g.url + path + ("?" + q if q else ""), headers=hdr)


def tenants_of_query(g, hdr, q='{__name__=~"auth_.*"}'):
    st, _, b = get(g, "/api/v1/query", hdr, query=q, time=str(T / 1000))
    if st != 200:
        return st, None
    return st, sorted({s["metric"].get("tenant_id", "") for s in json.loads(b)["data"]["result"]})


def remote_read_tenants(g, hdr):
    body = snappy_compress(read_request([(0, 2**62, [(2, "__name__", "auth_.*")])]))
    h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
    h.update(hdr)
    st, _, b = http("POST", g.url + "/api/v1/read", body, h)
    if st != 200:
        return st, None
    res = decode_read_response(snappy_decompress(b))[0]
    return st, sorted({dict(k).get("tenant_id", "") for k in res})


g = Rwgate(extra=["--config", cfg]).start()
prom = None
try:
    c.check("authentication is on: 5 credentials" in g.log_tail(), "start-up log says auth is on")
    st, _, b = http("GET", g.url + "/metrics")
    c.eq(st, 200, "/metrics open (open_paths)")
    c.check(b"rwgate_auth_enabled 1" in b, "rwgate_auth_enabled 1")
    c.eq(http("GET", g.url + "/-/healthy")[0], 200, "/-/healthy open")

    # ---- 401 / 403
    st, hd, b = write(g, "auth_none", {})
    c.eq(st, 401, "write without a credential -> 401")
    conn = http_client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    conn.request("GET", "/api/v1/query?query=1")
    r = conn.getresponse()
    r.read()
    challenges = sorted(v for k, v in r.getheaders() if k.lower() == "www-authenticate")
    conn.close()
    c.eq((r.status, challenges), (401, ['Basic realm="rwgate"', 'Bearer realm="rwgate"']),
         "401 carries both WWW-Authenticate challenges")
    c.eq(write(g, "auth_none", {"Authorization": "Bearer wrong"})[0], 401, "unknown token -> 401")
    c.eq(write(g, "auth_none", basic("grafana", "nope"))[0], 401, "wrong password -> 401")
    c.eq(write(g, "auth_none", basic("nobody", "x"))[0], 401, "unknown user -> 401")
    c.eq(write(g, "auth_none", DASH)[0], 403, "read-only credential writing -> 403")
    c.eq(get(g, "/api/v1/query", {}, query="1")[0], 401, "query without a credential -> 401")
    c.eq(get(g, "/api/v1/query", bearer("ops"), query="1")[0], 403, "admin-only credential querying -> 403")
    c.eq(http("POST", g.url + "/-/reload", b"", bearer("a"))[0], 403, "reload by a read/write credential -> 403")

    # ---- writes carry the credential's tenant
    c.eq(write(g, "auth_a", bearer("a"))[0], 204, "team-a writes")
    c.eq(write(g, "auth_a2", bearer("a"), {"X-Scope-OrgID": "team-a"})[0], 204, "team-a with its own tenant header")
    st, _, b = write(g, "auth_x", bearer("a"), {"X-Scope-OrgID": "team-b"})
    c.eq(st, 403, "team-a naming team-b in the header -> 403")
    c.check(b"may not write to tenant team-b" in b, "403 says why", b[:200])
    c.eq(write(g, "auth_b", bearer("b"))[0], 204, "team-b writes")

    # ---- scoped reads, every path
    c.eq(tenants_of_query(g, bearer("a")), (200, ["team-a"]), "team-a query sees only team-a")
    c.eq(tenants_of_query(g, bearer("b")), (200, ["team-b"]), "team-b query sees only team-b")
    c.eq(tenants_of_query(g, DASH), (200, ["team-a", "team-b"]), "read_tenants '*' sees both")
    c.eq(tenants_of_query(g, bearer("reader")), (200, ["team-a", "team-b"]), "read_tenants [team-b] adds team-b")
    st, _, b = get(g, "/api/v1/query_range", bearer("b"), query='count({__name__=~"auth_.*"})',
                   start=str(T / 1000 - 60), end=str(T / 1000 + 60), step="60")
    vals = {v[1] for s in json.loads(b)["data"]["result"] for v in s["values"]} if st == 200 else None
    c.eq((st, vals), (200, {"1"}), "query_range scoped (team-b counts one series)")
    st, _, b = get(g, "/api/v1/series", bearer("a"), **{"match[]": '{__name__=~"auth_.*"}'})
    c.eq(sorted(s["__name__"] for s in json.loads(b)["data"]), ["auth_a", "auth_a2"], "series scoped")
    st, _, b = get(g, "/api/v1/label/tenant_id/values", bearer("a"))
    c.eq(json.loads(b)["data"], ["team-a"], "label values scoped")
    st, _, b = get(g, "/api/v1/label/__name__/values", bearer("b"))
    c.eq(json.loads(b)["data"], ["auth_b"], "metric names scoped")
    st, _, b = get(g, "/api/v1/labels", bearer("b"))
    c.check(st == 200 and "tenant_id" in json.loads(b)["data"], "label names answer")
    st, _, b = get(g, "/federate", bearer("b"), **{"match[]": '{__name__=~"auth_.*"}'})
    c.check(st == 200 and b"auth_b" in b and b"auth_a" not in b, "federate scoped", b[:300])
    c.eq(remote_read_tenants(g, bearer("a")), (200, ["team-a"]), "remote-read scoped")
    c.eq(remote_read_tenants(g, DASH), (200, ["team-a", "team-b"]), "remote-read with '*'")
    c.eq(get(g, "/api/v1/status/tsdb", bearer("a"))[0], 403, "tsdb status needs read_tenants '*'")
    c.eq(get(g, "/api/v1/status/tsdb", DASH)[0], 200, "tsdb status for '*'")
    # a selector naming another tenant finds nothing
    c.eq(tenants_of_query(g, bearer("a"), '{tenant_id="team-b"}'), (200, []), "team-a cannot select team-b")

    # the per-source status lists only the tenants a credential may read
    c.eq(write(g, "auth_src", bearer("a"), None)[0], 204, "team-a writes a source")
    for who, hdr in (("a", bearer("a")), ("b", bearer("b"))):
        h = dict(V1_HEADERS)
        h.update(hdr)
        body = snappy_compress(write_request_v1([([("__name__", "auth_src"), ("cluster", "c-" + who)], [(T, 1.0)])]))
        c.eq(http("POST", g.url + "/api/v1/write", body, h)[0], 204, "team-%s writes cluster c-%s" % (who, who))

    def source_tenants(hdr):
        st, _, b = get(g, "/api/v1/status/sources", hdr)
        return st, sorted({x["tenant"] for x in json.loads(b)["data"]["sources"]}) if st == 200 else None

    c.eq(source_tenants(bearer("a")), (200, ["team-a"]), "sources scoped to team-a")
    c.eq(source_tenants(DASH), (200, ["team-a", "team-b"]), "sources with read_tenants '*'")
    st, _, b = get(g, "/api/v1/kubelet/endpoints", bearer("b"))
    c.eq(st, 200, "kubelet endpoints answer a scoped reader")

    # ---- the rules API: alerts scoped by their tenant label
    now = int(time.time() * 1000)
    for who in ("a", "b"):
        h = dict(V1_HEADERS)
        h.update(bearer(who))
        body = snappy_compress(write_request_v1(
            [([("__name__", "auth_alert_metric"), ("x", "1")], [(now, 1.0)])]))
        c.eq(http("POST", g.url + "/api/v1/write", body, h)[0], 204, "team-%s writes auth_alert_metric" % who)

    def alerts(hdr, **params):
        st, _, b = get(g, "/api/v1/alerts", hdr, **params)
        c.eq(st, 200, "/api/v1/alerts %s" % params)
        return json.loads(b)["data"] if st == 200 else {"alerts": []}

    def firing(hdr):
        return sorted((a["labels"]["alertname"], a["labels"].get("tenant_id", ""))
                      for a in alerts(hdr)["alerts"] if a["state"] == "firing")

    both = [("AuthAlert", "team-a"), ("AuthAlert", "team-b"), ("AuthFleetAlert", "")]
    deadline = time.time() + 60
    while time.time() < deadline and firing(DASH) != both:
        time.sleep(0.5)
    c.eq(firing(DASH), both, "'*' sees the alert of both tenants and the fleet's")
    c.eq(firing(bearer("a")), [("AuthAlert", "team-a")], "team-a sees only its alert in /api/v1/alerts")
    c.eq(firing(bearer("b")), [("AuthAlert", "team-b")], "team-b sees only its alert")
    c.eq(firing(bearer("reader")), [("AuthAlert", "team-a"), ("AuthAlert", "team-b")],
         "read_tenants [team-b] sees team-a's and team-b's alerts, not the fleet's")
    # paging counts only what the reader sees
    d = alerts(bearer("a"), limit="1")
    c.eq((len(d["alerts"]), d.get("total"), "nextToken" in d), (1, 1, False), "team-a's page: 1 of 1, no next page")
    d = alerts(DASH, limit="1")
    c.eq((len(d["alerts"]), d.get("total"), "nextToken" in d), (1, 3, True), "'*' page: 1 of 3, a next page")
    seen = [tuple(sorted(a["labels"].items())) for a in d["alerts"]]
    while "nextToken" in d:
        d = alerts(DASH, limit="1", next_token=d["nextToken"])
        seen += [tuple(sorted(a["labels"].items())) for a in d["alerts"]]
    c.eq(len(seen), 3, "'*' pages through all three alerts")
    d = alerts(bearer("reader"), limit="1")
    tenants = [a["labels"].get("tenant_id") for a in d["alerts"]]
    while "nextToken" in d:
        d = alerts(bearer("reader"), limit="1", next_token=d["nextToken"])
        tenants += [a["labels"].get("tenant_id") for a in d["alerts"]]
    c.eq(tenants, ["team-a", "team-b"], "read_tenants [team-b] pages through exactly its two alerts")

    def rules_view(hdr, **params):
        st, _, b = get(g, "/api/v1/rules", hdr, **params)
        c.eq(st, 200, "/api/v1/rules %s" % params)
        out = {}
        if st != 200:
            return out, {}
        data = json.loads(b)["data"]
        for grp in data["groups"]:
            for r in grp["rules"]:
                out[r["name"]] = (r.get("state"), sorted(a["labels"].get("tenant_id", "")
                                                         for a in r.get("alerts") or []))
        return out, data

    view, _ = rules_view(DASH)
    c.eq(view, {"AuthAlert": ("firing", ["team-a", "team-b"]), "AuthFleetAlert": ("firing", [""]),
                "auth:alert_metric:count": (None, [])}, "'*' sees every alert in /api/v1/rules")
    view, _ = rules_view(bearer("a"))
    c.eq(view, {"AuthAlert": ("firing", ["team-a"]), "AuthFleetAlert": ("inactive", []),
                "auth:alert_metric:count": (None, [])},
         "team-a: every rule, only its alert, and no state from alerts it cannot see")
    view, _ = rules_view(bearer("b"), type="alert")
    c.eq(view, {"AuthAlert": ("firing", ["team-b"]), "AuthFleetAlert": ("inactive", [])}, "team-b, type=alert")
    # group paging is unchanged: definitions are visible to all
    view, data = rules_view(bearer("a"), group_limit="1")
    c.eq((sorted(view), "groupNextToken" in data), (["AuthAlert", "AuthFleetAlert"], True),
         "team-a pages groups: the first group with its rules, a next page")
    view, data = rules_view(bearer("a"), group_limit="1", group_next_token=data.get("groupNextToken", ""))
    c.eq((sorted(view), "groupNextToken" in data), (["auth:alert_metric:count"], False),
         "team-a's second page: the recording group")

    # ---- a real Prometheus remote-writes with its bearer token
    if shutil.which("prometheus"):
        prom = Prometheus("auth", """
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: ['127.0.0.1:SELF_PORT']}]
remote_write:
  - url: %s/api/v1/write
    authorization: {credentials: %s}
    queue_config: {batch_send_deadline: 1s}
""" % (g.url, TOK["b"]))
        found = None
        for _ in range(120):
            st, _, b = get(g, "/api/v1/query", bearer("b"), query='up{job="self"}')
            if st == 200 and json.loads(b)["data"]["result"]:
                found = json.loads(b)["data"]["result"][0]["metric"]
                break
            time.sleep(0.5)
        c.check(found is not None and found.get("tenant_id") == "team-b",
                "Prometheus' writes with a bearer token land in its tenant", found)
        c.eq(tenants_of_query(g, bearer("a"), 'up{job="self"}'), (200, []), "team-a does not see them")
        prom.stop()
        prom = None

    # ---- reload: remove team-a's token, by an admin
    with open(cfg, "w") as f:
        f.write(config(with_team_a=False))
    st, _, b = http("POST", g.url + "/-/reload", b"", bearer("ops"))
    c.eq(st, 200, "admin reloads (%s)" % b[:200])
    c.eq(write(g, "auth_a", bearer("a"))[0], 401, "a removed token is refused after reload")
    c.eq(write(g, "auth_b", bearer("b"))[0], 204, "other tokens keep working")
finally:
    if prom:
        prom.stop(show_log=True)
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()

# ---- config refusals
bad = os.path.join(tmp, "bad.yml")
for text, why in (
        ("auth:\n  tenants:\n  - name: x\n    bearer_token_sha256: abc\n    permissions: [read]\n", "64 hex digits"),
        ("auth:\n  tenants:\n  - name: x\n    bearer_token_sha256: %s\n    permissions: [root]\n" % sha("t"), "unknown permission"),
        ("auth:\n  tenants:\n  - name: x\n    basic_auth: {username: u, password_pbkdf2: plain}\n    permissions: [read]\n", "hash-password"),
        ("ingest:\n  tenant_label: ''\nauth:\n  tenants:\n  - name: x\n    bearer_token_sha256: %s\n    permissions: [read]\n" % sha("t"), "tenant_label"),
        ("auth:\n  tenants:\n  - name: x\n    bearer_token_sha256: %s\n    permissions: [read]\n  - name: y\n    bearer_token_sha256: %s\n    permissions: [read]\n" % (sha("t"), sha("t")), "same bearer token")):
    with open(bad, "w") as f:
        f.write(text)
    p = subprocess.run([binary, "check", "config", bad], capture_output=True, text=True)
    c.check(p.returncode != 0 and why in p.stderr, "check config refuses: %s" % why, p.stderr)

# ---- no auth section: open, and it says so
g = Rwgate().start()
try:
    c.check("authentication is off" in g.log_tail(), "start-up log says rwgate is open")
    st, _, b = http("GET", g.url + "/metrics")
    c.check(b"rwgate_auth_enabled 0" in b, "rwgate_auth_enabled 0")
    st, _, _ = g.write(write_request_v1([([("__name__", "open_m"), ("x", "1")], [(T, 1.0)])]))
    c.eq(st, 204, "writes without credentials when auth is off")
finally:
    g.cleanup()
shutil.rmtree(tmp, ignore_errors=True)
c.done()
