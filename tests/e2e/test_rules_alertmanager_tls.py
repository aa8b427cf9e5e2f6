#!/usr/bin/env python3
"""test_rules_alertmanager_tls - the notifier's tls_config through the rwgate
binary, against a real Alertmanager (Debian prometheus-alertmanager) that
serves HTTPS with a certificate for am.test only (not for 127.0.0.1, where
it listens) and requires a client certificate signed by the test CA.

  * with ca_file and the client certificate but no server_name, the
    certificate's name does not match the address: nothing is delivered and
    the failed requests are counted;
  * after a reload (SIGHUP) that adds server_name: am.test (and
    min_version: TLS13), the alert arrives: the connection still goes to
    127.0.0.1, TLS speaks to am.test and presents the client certificate."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwlib  # noqa: E402
from test_rules_alertmanager import AM_CONFIG  # noqa: E402  (the same routing)

RULES = """groups:
  - name: tls
    interval: 1s
    rules:
      - alert: NotifierTls
        expr: vector(1)
        labels: {severity: info}
"""


def main():
    c = rwlib.Checks("test_rules_alertmanager_tls")
    if not shutil.which("prometheus-alertmanager"):
        c.check(False, "prometheus-alertmanager is installed")
        c.done()
    tmp = tempfile.mkdtemp(prefix="rwgate-e2e-amtls-")

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=rwgate notifier test CA")
    with open(os.path.join(tmp, "srv.cnf"), "w") as f:
        f.write("subjectAltName=DNS:am.test\n")
    for name, ext in (("srv", ["-extfile", "srv.cnf"]), ("cli", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", *ext)
    p = lambda n: os.path.join(tmp, n)  # noqa: E731

    amdir = p("am")
    os.mkdir(amdir)
    with open(os.path.join(amdir, "am.yml"), "w") as f:
        f.write(AM_CONFIG)
    with open(os.path.join(amdir, "web.yml"), "w") as f:
        f.write("tls_server_config:\n  cert_file: %s\n  key_file: %s\n"
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n"
                % (p("srv.crt"), p("srv.key"), p("ca.crt")))
    am_port = rwlib.free_port()
    am_log = open(os.path.join(amdir, "log"), "ab")
    am = subprocess.Popen(
        ["prometheus-alertmanager", "--config.file=" + os.path.join(amdir, "am.yml"),
         "--storage.path=" + os.path.join(amdir, "data"),
         "--web.listen-address=127.0.0.1:%d" % am_port, "--cluster.listen-address=",
         "--web.config.file=" + os.path.join(amdir, "web.yml")],
        stdout=am_log, stderr=subprocess.STDOUT)

    # this test's own client for Alertmanager's API: the CA, am.test, a client certificate
    ctx = ssl.create_default_context(cafile=p("ca.crt"))
    ctx.load_cert_chain(p("cli.crt"), p("cli.key"))

    class AmConnection(http.client.HTTPSConnection):
        """connects to 127.0.0.1 and verifies the certificate as am.test"""

        def connect(self):
            sock = socket.create_connection(("127.0.0.1", am_port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname="am.test")

    def am_get(path):
        conn = AmConnection("am.test", am_port, context=ctx, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def am_alerts():
        try:
            st, b = am_get("/api/v2/alerts")
        except (OSError, ssl.SSLError):
            return []
        return [a for a in json.loads(b) if a["labels"].get("alertname") == "NotifierTls"] \
            if st == 200 else []

    def am_ready():
        try:
            return am_get("/-/ready")[0] == 200
        except (OSError, ssl.SSLError):
            return False

    with open(p("rules.yml"), "w") as f:
        f.write(RULES)
    cfg = p("rwgate.yml")

    def write_cfg(tls):
        with open(cfg, "w") as f:
            f.write("""global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:%d']}]
      scheme: https
      timeout: 5s
      tls_config: {ca_file: %s, cert_file: %s, key_file: %s%s}
""" % (am_port, p("ca.crt"), p("cli.crt"), p("cli.key"), tls))

    write_cfg("")
    data = p("data")
    os.mkdir(data)
    rw = None
    try:
        c.check(rwlib.poll(am_ready, 60), "Alertmanager serves HTTPS with client certificates")
        rw = rwlib.Rwgate(data=data, extra=["--config", cfg]).start()

        # ---- no server_name: the certificate names am.test, not 127.0.0.1
        errs = rwlib.poll(lambda: (rw.metric("rwgate_notifications_errors_total") or 0) >= 2, 60)
        c.check(errs, "requests without server_name fail verification and are counted",
                rw.log_tail())
        c.eq(am_alerts(), [], "nothing delivered without server_name")
        c.eq(rw.metric("rwgate_notifications_sent_total") or 0, 0, "nothing counted as sent")

        # ---- reload with server_name (and the oldest version TLS 1.3): delivered
        write_cfg(", server_name: am.test, min_version: TLS13")
        rw.proc.send_signal(signal.SIGHUP)
        got = rwlib.poll(am_alerts, 60)
        c.check(got, "delivered through 127.0.0.1 with server_name am.test and a client "
                "certificate", rw.log_tail())
        if got:
            c.eq(got[0]["labels"], {"alertname": "NotifierTls", "severity": "info"},
                 "the alert's labels")
        c.check(rwlib.poll(lambda: (rw.metric("rwgate_notifications_sent_total") or 0) >= 1, 30),
                "counted as sent")
    finally:
        if rw:
            c.eq(rw.stop(), 0, "rwgate stops cleanly")
            if c.failed:
                print(rw.log_tail(6000))
            rw.cleanup()
        am.terminate()
        try:
            am.wait(20)
        except subprocess.TimeoutExpired:
            am.kill()
            am.wait()
        am_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
