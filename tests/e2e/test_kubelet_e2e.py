"""Kubelet-endpoint dedup end to end.

1. The IP-reuse bug as a real cluster's Prometheus produces it
   (prometheus-operator#6548): a real Prometheus scrapes a kube-state-
   metrics endpoint (node "old" NotReady with its Ready condition Unknown,
   node "new" Ready, both with the same InternalIP) and then two kubelet
   targets that differ only in their `node` target label but point at the
   same address - the reused IP - with honor_labels as kube-prometheus sets
   it, so kubelet_node_name carries the kubelet's own name. It remote-writes
   to rwgate: every kubelet series must be stored once, under node "new",
   and GET /api/v1/kubelet/endpoints must show node "old" excluded with the
   reason.

2. The optional Kubernetes API node source: there is no real API server
   here, so a tiny HTTPS server in this test (python's http.server + ssl,
   certificate made with openssl) serves GET /api/v1/nodes as a paged
   NodeList and checks the bearer token. rwgate lists the nodes over TLS
   (CA from tls_config.ca_file), decides the same way from them, keeps the
   last good list when the server starts failing and reports the error, and
   picks up a rotated token from the token file."""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, free_port, http, log, write_request_v1, V1_HEADERS

c = Checks("test_kubelet_e2e")
if not shutil.which("prometheus") or not shutil.which("openssl"):
    c.check(False, "prometheus and openssl are installed")
    c.done()

tmp = tempfile.mkdtemp(prefix="rwgate-e2e-kubelet-")

# ---------------------------------------------------------------- fake targets

KSM = """# HELP kube_node_info Information about a cluster node.
# TYPE kube_node_info gauge
kube_node_info{node="old",internal_ip="127.0.0.1",kubelet_version="v1.29.3",os_image="Ubuntu 22.04"} 1
kube_node_info{node="new",internal_ip="127.0.0.1",kubelet_version="v1.29.3",os_image="Ubuntu 22.04"} 1
# HELP kube_node_status_condition The condition of a cluster node.
# TYPE kube_node_status_condition gauge
kube_node_status_condition{node="old",condition="Ready",status="true"} 0
kube_node_status_condition{node="old",condition="Ready",status="false"} 0
kube_node_status_condition{node="old",condition="Ready",status="unknown"} 1
kube_node_status_condition{node="new",condition="Ready",status="true"} 1
kube_node_status_condition{node="new",condition="Ready",status="false"} 0
kube_node_status_condition{node="new",condition="Ready",status="unknown"} 0
kube_node_status_condition{node="new",condition="MemoryPressure",status="false"} 1
# HELP kube_node_status_addresses Node address information.
# TYPE kube_node_status_addresses gauge
kube_node_status_addresses{node="old",type="InternalIP",address="127.0.0.1"} 1
kube_node_status_addresses{node="new",type="InternalIP",address="127.0.0.1"} 1
"""

# what the (new) kubelet at the reused IP exposes
KUBELET = """# HELP kubelet_node_name The node's name. The count is always 1.
# TYPE kubelet_node_name gauge
kubelet_node_name{node="new"} 1
# HELP kubelet_running_pods Number of pods that have a running pod sandbox
# TYPE kubelet_running_pods gauge
kubelet_running_pods 11
# HELP kubelet_running_containers Number of containers currently running
# TYPE kubelet_running_containers gauge
kubelet_running_containers{container_state="running"} 23
kubelet_running_containers{container_state="exited"} 2
# HELP kubelet_pleg_relist_duration_seconds_count Duration in seconds for relisting pods in PLEG.
# TYPE kubelet_pleg_relist_duration_seconds_count counter
kubelet_pleg_relist_duration_seconds_count %d
"""

start_time = time.time()


class Targets(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/ksm"):
            body = KSM
        else:
            body = KUBELET % int((time.time() - start_time) * 10)
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


targets = ThreadingHTTPServer(("127.0.0.1", 0), Targets)
tport = targets.server_address[1]
threading.Thread(target=targets.serve_forever, daemon=True).start()

# ---------------------------------------------------------------- fake API server

subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", os.path.join(tmp, "key.pem"), "-out", os.path.join(tmp, "cert.pem"),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:kube-api.test"],
               check=True, capture_output=True)
token_file = os.path.join(tmp, "token")
open(token_file, "w").write("tok-1\n")
api_state = {"token": "tok-1", "fail": False, "requests": 0, "pages": 0}


def node(name, ready, ip, created):
    conds = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conds.append({"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-11-30T10:00:00Z",
                      "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown"})
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": {"kubernetes.io/os": "linux"}},
            "status": {"conditions": conds,
                       "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "images": [{"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 321520}]}}


API_NODES = [
    node("api-old", "Unknown", "10.20.0.5", "2026-01-01T00:00:00Z"),
    node("api-new", "True", "10.20.0.5", "2026-11-01T00:00:00Z"),
    node("api-down", "False", "10.20.0.6", "2026-06-01T00:00:00Z"),
]


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        api_state["requests"] += 1
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if self.headers.get("Authorization") != "Bearer " + api_state["token"]:
            return self.reply(401, {"kind": "Status", "status": "Failure", "message": "Unauthorized", "code": 401})
        if api_state["fail"]:
            return self.reply(500, {"kind": "Status", "status": "Failure", "message": "etcdserver: timeout", "code": 500})
        if u.path != "/api/v1/nodes":
            return self.reply(404, {"kind": "Status", "code": 404})
        # pages of 2 (the client asks for more; a server may return fewer)
        start = int(q.get("continue", ["0"])[0])
        items = API_NODES[start:start + 2]
        meta = {"resourceVersion": "4242"}
        if start + 2 < len(API_NODES):
            meta["continue"] = str(start + 2)
        api_state["pages"] += 1
        self.reply(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": items})

    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
api.socket = ctx.wrap_socket(api.socket, server_side=True)
aport = api.server_address[1]
threading.Thread(target=api.serve_forever, daemon=True).start()

# ---------------------------------------------------------------- rwgate

cfg = os.path.join(tmp, "rwgate.yml")
open(cfg, "w").write("""ingest:
  kubelet_dedup:
    mode: ip-reuse
    kubernetes_api:
      url: https://127.0.0.1:%d
      bearer_token_file: %s
      tls_config: {ca_file: %s}
      cluster: api-e2e
      refresh_interval: 1s
      timeout: 5s
""" % (aport, token_file, os.path.join(tmp, "cert.pem")))
g = Rwgate(extra=["--config", cfg]).start()


def endpoints(cluster):
    st, d = g.api("/api/v1/kubelet/endpoints", cluster=cluster)
    cl = d.get("data", {}).get("clusters", []) if st == 200 else []
    return cl[0] if cl else {}


def kapi_status():
    st, d = g.api("/api/v1/status/sources")
    return d.get("data", {}).get("kubernetes_api", {}) if st == 200 else {}


def query(q):
    st, d = g.api("/api/v1/query", query=q)
    return d["data"]["result"] if st == 200 and d.get("status") == "success" else None


def poll(fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    return fn()


prom = None
try:
    # ---- 1. a real Prometheus, KSM first, then the two kubelet targets
    pcfg = """
global:
  scrape_interval: 2s
  external_labels: {cluster: kc-e2e}
scrape_configs:
  - job_name: kube-state-metrics
    honor_labels: true
    metrics_path: /ksm
    static_configs: [{targets: ['127.0.0.1:%d']}]
%s
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 1s, max_shards: 2}
"""
    kubelet_jobs = """
  - job_name: kubelet
    honor_labels: true
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:%d']
        labels: {node: old, namespace: kube-system, service: kubelet, endpoint: https-metrics}
      - targets: ['127.0.0.1:%d']
        labels: {node: new, namespace: kube-system, service: kubelet, endpoint: https-metrics}
""" % (tport, tport)
    prom = Prometheus("kubelet", pcfg % (tport, "", g.url), extra=["--web.enable-lifecycle"])
    ep = poll(lambda: endpoints("kc-e2e").get("nodes") == 2 and endpoints("kc-e2e"))
    c.check(bool(ep), "node table learned from the KSM series on the write path", repr(endpoints("kc-e2e")))
    log("KSM data in; adding the kubelet targets")
    with open(os.path.join(prom.dir, "prometheus.yml"), "w") as f:
        f.write(pcfg % (tport, kubelet_jobs, g.url))
    st, _, b = http("POST", prom.url + "/-/reload")
    c.check(st == 200, "prometheus reloaded with the kubelet targets", b[:200])
    # Prometheus itself has both copies (two targets, two node labels)
    both = poll(lambda: len(prom.query("kubelet_running_pods")["data"]["result"]) == 2)
    c.check(both, "the sender scrapes two kubelet targets at the reused IP (the bug)")
    time.sleep(12)
    r = query('kubelet_running_pods{cluster="kc-e2e"}')
    c.eq(sorted(x["metric"].get("node") for x in r or []), ["new"], "kubelet_running_pods stored once, node=new")
    r = query('kubelet_running_containers{cluster="kc-e2e"}')
    c.eq(sorted((x["metric"].get("node"), x["metric"].get("container_state")) for x in r or []),
         [("new", "exited"), ("new", "running")], "every kubelet series once, under the right node")
    r = query('count_over_time({cluster="kc-e2e", job="kubelet", node="old"}[1h])')
    c.eq(r, [], "nothing of the impostor node was ever stored")
    r = query('kubelet_node_name{cluster="kc-e2e"}')
    c.eq([x["metric"].get("node") for x in r or []], ["new"], "kubelet_node_name once")
    r = query('kube_node_info{cluster="kc-e2e"}')
    c.eq(sorted(x["metric"]["node"] for x in r or []), ["new", "old"], "KSM series themselves untouched")
    ep = endpoints("kc-e2e")
    e = [x for x in ep.get("endpoints", []) if x.get("ip") == "127.0.0.1"]
    c.check(len(e) == 1 and e[0]["node"] == "new" and e[0]["ready"] == "true", "endpoint owned by node new", repr(ep))
    if e:
        ex = e[0].get("excluded", [])
        c.check(len(ex) == 1 and ex[0]["node"] == "old" and ex[0]["ready"] == "unknown"
                and "Ready condition is unknown" in ex[0].get("reason", ""),
                "endpoints API explains why old is excluded", repr(ex))
        c.eq(e[0].get("kubelet_node_name"), "new", "the kubelet's own name is reported")
    c.check(ep.get("dropped_series", {}).get("ip_reuse", 0) > 0, "drops counted", repr(ep.get("dropped_series")))
    st, d = g.api("/api/v1/status/sources", cluster="kc-e2e")
    src = d["data"]["sources"][0] if st == 200 and d["data"]["sources"] else {}
    c.check(src.get("kubelet_endpoints_dropped", 0) > 0 and src.get("dropped", {}).get("kubelet_endpoint_dedup", 0) > 0,
            "sources report the kubelet drops", repr(src)[:300])
    # the dry run says the same about one series
    st, _, b = http("POST", g.url + "/api/v1/relabel/test", json.dumps({"labels": {
        "__name__": "kubelet_running_pods", "cluster": "kc-e2e", "instance": "127.0.0.1:%d" % tport,
        "job": "kubelet", "node": "old"}}).encode(), {"Content-Type": "application/json"})
    d = json.loads(b)
    c.check(d.get("data", {}).get("result") == "dropped" and "another node owns" in d["data"].get("reason", ""),
            "dry run: old's series would be dropped", b[:400])

    # ---- 2. the Kubernetes API source over TLS
    ok = poll(lambda: endpoints("api-e2e").get("nodes") == 3)
    c.check(ok, "nodes listed from the API server (paged, bearer token, TLS)", repr(kapi_status()))
    c.check(api_state["pages"] >= 2, "the NodeList was read page by page", repr(api_state))
    ks = kapi_status()
    c.check(ks.get("last_error") is None and ks.get("nodes") == 3, "API source healthy", repr(ks))
    now = int(time.time() * 1000)

    def kubelet_write(node_name, ip, metric):
        body = write_request_v1([([("__name__", metric), ("cluster", "api-e2e"), ("instance", ip + ":10250"),
                                   ("job", "kubelet"), ("node", node_name)], [(now, 1.0)])])
        return g.write(body)[0]
    for n, ip in (("api-old", "10.20.0.5"), ("api-new", "10.20.0.5"), ("api-down", "10.20.0.6")):
        c.check(kubelet_write(n, ip, "kubelet_api_m") in (202, 204), "write for %s" % n)
    r = query('kubelet_api_m{cluster="api-e2e"}')
    c.eq(sorted(x["metric"]["node"] for x in r or []), ["api-down", "api-new"],
         "API-listed nodes: the Unknown claimant of a reused IP dropped, a NotReady unique one kept")
    ep = endpoints("api-e2e")
    c.check("kubernetes-api" in ep.get("sources", []), "endpoints name the API as a source", repr(ep)[:300])
    # the API server fails: the last list stays in force, the error is reported
    api_state["fail"] = True
    err = poll(lambda: (kapi_status().get("last_error") or "").find("HTTP 500") >= 0)
    c.check(err, "a failing API server is reported", repr(kapi_status()))
    c.check(kubelet_write("api-old", "10.20.0.5", "kubelet_api_m2") in (202, 204), "write during the outage")
    r = query('kubelet_api_m2{cluster="api-e2e"}')
    c.eq(r, [], "the last node list is kept while the API server fails")
    api_state["fail"] = False
    # a rotated token: the server accepts only the new one; the file changes
    api_state["token"] = "tok-2"
    err = poll(lambda: (kapi_status().get("last_error") or "").find("HTTP 401") >= 0)
    c.check(err, "a rejected token is reported", repr(kapi_status()))
    open(token_file, "w").write("tok-2\n")
    healthy = poll(lambda: kapi_status().get("last_error") is None)
    c.check(healthy, "the rotated token is read from the file", repr(kapi_status()))
    # a CA that does not match: TLS fails, reported
    other = os.path.join(tmp, "other")
    os.mkdir(other)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", os.path.join(other, "k.pem"), "-out", os.path.join(other, "c.pem"),
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    text = open(cfg).read().replace(os.path.join(tmp, "cert.pem"), os.path.join(other, "c.pem"))
    open(cfg, "w").write(text)
    st, _, b = http("POST", g.url + "/-/reload")
    c.check(st == 200, "reload with another CA", b[:200])
    err = poll(lambda: "SSL" in (kapi_status().get("last_error") or "") or
               "certificate" in (kapi_status().get("last_error") or ""))
    c.check(err, "an untrusted server certificate is reported", repr(kapi_status()))
finally:
    if prom:
        prom.stop(show_log=bool(c.failed))
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
    targets.shutdown()
    api.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
