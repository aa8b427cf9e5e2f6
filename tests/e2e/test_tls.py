"""TLS for the HTTP server (http.tls): HTTPS with a certificate from a test
CA, TLS 1.2 and 1.3 accepted and older versions refused, plain HTTP on the
TLS port answered with nothing, the certificate re-read on SIGHUP (new
connections get the new one, nobody is refused), a mismatched pair refused
at reload with the old one kept, and a real Prometheus remote-writing over
HTTPS with its tls_config verifying the server name against the CA."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
import http.client as http_client

warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Prometheus, Rwgate, log, rwgate_path, snappy_compress, write_request_v1

c = Checks("test_tls")
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-tls-")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp)


def make_ca():
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=rwgate test CA")


def make_cert(name):
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,DNS:rwgate.test,IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", "ext.cnf")


def der_of(name):
    with open(os.path.join(tmp, name + ".crt")) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


make_ca()
make_cert("one")
make_cert("two")
cert = os.path.join(tmp, "server.crt")
key = os.path.join(tmp, "server.key")
shutil.copy(os.path.join(tmp, "one.crt"), cert)
shutil.copy(os.path.join(tmp, "one.key"), key)
cfg = os.path.join(tmp, "rwgate.yml")
with open(cfg, "w") as f:
    f.write("http:\n  tls:\n    cert_file: %s\n    key_file: %s\n" % (cert, key))

CA = os.path.join(tmp, "ca.crt")


def ctx(minv=None, maxv=None):
    x = ssl.create_default_context(cafile=CA)
    if minv:
        x.minimum_version = minv
    if maxv:
        x.maximum_version = maxv
    return x


def https_get(port, path, context=None, host="127.0.0.1"):
    conn = http_client.HTTPSConnection(host, port, timeout=10, context=context or ctx())
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, body, conn.sock.getpeercert(binary_form=True), conn.sock.version()
    finally:
        conn.close()


class TlsRwgate(Rwgate):
    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self, timeout=60):
        self.logf = open(os.path.join(tmp, "rwgate.log"), "ab")
        cmd = [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rwgate exited: " + self.log_tail())
            try:
                if https_get(self.port, "/-/ready")[0] == 200:
                    return self
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.1)
        raise RuntimeError("rwgate (TLS) not ready: " + self.log_tail())


g = TlsRwgate(extra=["--config", cfg]).start()
prom = None
try:
    st, _, peer, ver = https_get(g.port, "/-/healthy")
    c.eq(st, 200, "HTTPS /-/healthy")
    c.check(peer == der_of("one"), "serves the configured certificate")
    c.check("https://" in g.log_tail(), "start-up log says https")
    for v, name in ((ssl.TLSVersion.TLSv1_2, "1.2"), (ssl.TLSVersion.TLSv1_3, "1.3")):
        st, _, _, got = https_get(g.port, "/-/healthy", ctx(v, v))
        c.check(st == 200 and got == "TLSv" + name, "TLS %s accepted" % name, got)
    old = ctx()
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    refused = False
    try:
        https_get(g.port, "/-/healthy", old)
    except (ssl.SSLError, OSError):
        refused = True
    c.check(refused, "TLS 1.0/1.1 refused")
    # plain HTTP on the TLS port gets no HTTP answer
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    s.close()
    c.check(not got.startswith(b"HTTP/1.1 200"), "plain HTTP on the TLS port is not served", got[:40])
    # a write over HTTPS
    conn = http_client.HTTPSConnection("127.0.0.1", g.port, timeout=10, context=ctx())
    body = snappy_compress(write_request_v1([([("__name__", "tls_m"), ("x", "1")], [(int(time.time() * 1000), 1.0)])]))
    conn.request("POST", "/api/v1/write", body, {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    r = conn.getresponse()
    r.read()
    c.eq(r.status, 204, "remote-write over HTTPS")
    # keep this connection open across the reload

    # ---- SIGHUP: the renewed certificate is served to new connections
    shutil.copy(os.path.join(tmp, "two.crt"), cert)
    shutil.copy(os.path.join(tmp, "two.key"), key)
    g.proc.send_signal(signal.SIGHUP)
    seen = None
    for _ in range(100):
        try:
            st, _, peer, _ = https_get(g.port, "/-/healthy")
            if peer == der_of("two"):
                seen = st
                break
        except (OSError, ssl.SSLError) as e:
            log("during reload: %r" % e)
        time.sleep(0.1)
    c.eq(seen, 200, "after SIGHUP new connections get the new certificate")
    conn.request("GET", "/-/healthy")
    r = conn.getresponse()
    r.read()
    c.eq(r.status, 200, "a connection opened before the reload keeps working")
    conn.close()

    # ---- a mismatched pair is refused at reload, the running one stays
    shutil.copy(os.path.join(tmp, "one.crt"), cert)  # key stays two.key
    g.proc.send_signal(signal.SIGHUP)
    ok = False
    for _ in range(100):
        if "reload failed" in g.log_tail(20000):
            ok = True
            break
        time.sleep(0.1)
    c.check(ok, "reload with a mismatched certificate and key fails", g.log_tail()[-500:])
    st, _, peer, _ = https_get(g.port, "/-/healthy")
    c.check(st == 200 and peer == der_of("two"), "the previous certificate is still served")
    shutil.copy(os.path.join(tmp, "two.crt"), cert)

    # ---- a real Prometheus writes over HTTPS, verifying rwgate.test against the CA
    if shutil.which("prometheus"):
        prom = Prometheus("tls", """
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: ['127.0.0.1:SELF_PORT']}]
remote_write:
  - url: https://127.0.0.1:%d/api/v1/write
    tls_config: {ca_file: %s, server_name: rwgate.test}
    queue_config: {batch_send_deadline: 1s}
""" % (g.port, CA))
        found = False
        for _ in range(120):
            st, b, _, _ = https_get(g.port, "/api/v1/query?query=up%7Bjob%3D%22self%22%7D")
            if st == 200 and json.loads(b)["data"]["result"]:
                found = True
                break
            time.sleep(0.5)
        c.check(found, "Prometheus remote-writes over HTTPS (CA + server name verified)")
        prom.stop()
        prom = None

    # ---- the Kubernetes manifest: its configuration (credentials, TLS,
    # limits) loads, and the pod is hardened
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "deploy", "kubernetes", "rwgate.yaml")) as f:
        manifest = f.read()
    embedded = manifest.split("rwgate.yml: |\n")[1].split("\n---")[0]
    text = "\n".join(l[4:] for l in embedded.splitlines())
    text = text.replace("/etc/rwgate/tls/tls.crt", cert).replace("/etc/rwgate/tls/tls.key", key)
    kcfg = os.path.join(tmp, "k8s.yml")
    with open(kcfg, "w") as f:
        f.write(text)
    p = subprocess.run([rwgate_path(), "check", "config", kcfg], capture_output=True, text=True)
    c.check(p.returncode == 0, "deploy/kubernetes configuration loads", p.stderr)
    for want in ("runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false",
                 "drop: [ALL]", "limits: {cpu:", "requests: {cpu:", "kind: Secret", "scheme: HTTPS"):
        c.check(want in manifest, "deploy/kubernetes: %s" % want)
finally:
    if prom:
        prom.stop(show_log=True)
    if c.failed:
        log("rwgate log:\n" + g.log_tail())
    g.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
