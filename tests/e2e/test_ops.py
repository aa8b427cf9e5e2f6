"""Operational contracts of the binary: /-/ready and /-/healthy, `rwgate
check config`, configuration reload through POST /-/reload and SIGHUP
(reloadable keys apply without a restart and without failed writes; a key
that needs a restart makes the reload fail and the running configuration
stays), unknown flags, and SIGTERM exiting 0."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, rwgate_path, write_request_v1

c = Checks("test_ops")
binary = rwgate_path()
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-ops-")
cfg = os.path.join(tmp, "rwgate.yml")

# ---- check config
open(cfg, "w").write("store:\n  retention: 30d\ningest:\n  tenant_label: team\nglobal:\n  external_labels:\n    central: one\n")
p = subprocess.run([binary, "check", "config", cfg], capture_output=True, text=True)
c.check(p.returncode == 0 and "SUCCESS" in p.stdout and "retention: 4w2d" in p.stdout, "check config: valid file", p.stdout + p.stderr)
bad = os.path.join(tmp, "bad.yml")
open(bad, "w").write("ingest:\n  max_bodyy: 1\n")
p = subprocess.run([binary, "check", "config", bad], capture_output=True, text=True)
c.check(p.returncode != 0 and "bad.yml:2: unknown configuration key \"ingest.max_bodyy\"" in p.stderr,
        "check config: names the bad key and its line", p.stderr)
p = subprocess.run([binary, "--bogus"], capture_output=True, text=True)
c.check(p.returncode == 2 and "unknown argument" in p.stderr, "unknown flag -> exit 2 with usage", p.stderr)
p = subprocess.run([binary, "--help"], capture_output=True, text=True)
c.check(p.returncode == 0 and "--retention" in p.stdout, "--help prints usage")

g = Rwgate(extra=["--config", cfg]).start()
T = int(time.time() * 1000)


def read_tenant_labels(name):
    """label sets of `name` via remote-read, without the external labels
    that remote-read adds (as Prometheus does)"""
    res = g.read([(0, 2**62, [(0, "__name__", name)])])[0]
    return sorted(tuple(kv for kv in k if kv[0] != "central") for k in res.keys())


try:
    st, _, b = http("GET", g.url + "/-/healthy")
    c.eq(st, 200, "/-/healthy")
    st, _, b = http("GET", g.url + "/-/ready")
    c.eq(st, 200, "/-/ready")

    h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Scope-OrgID": "t1"}
    st, _, _ = g.write(write_request_v1([([("__name__", "ops_m"), ("k", "1")], [(T, 1.0)])]), headers=h)
    c.eq(st, 204, "write before reload")

    # writes keep flowing while the config is reloaded many times
    stop = threading.Event()
    failures = []

    def writer():
        i = 1
        while not stop.is_set():
            st, _, b = g.write(write_request_v1([([("__name__", "ops_flow")], [(T + i, float(i))])]))
            if st != 204:
                failures.append((st, b[:200]))
            i += 1
    th = threading.Thread(target=writer, daemon=True)
    th.start()

    open(cfg, "w").write("store:\n  retention: 30d\ningest:\n  tenant_label: tenant\nglobal:\n  external_labels:\n    central: two\n")
    st, _, b = http("POST", g.url + "/-/reload")
    c.eq(st, 200, "POST /-/reload with a reloadable change")
    st, _, _ = g.write(write_request_v1([([("__name__", "ops_m"), ("k", "2")], [(T, 1.0)])]), headers=h)
    keys = read_tenant_labels("ops_m")
    c.eq(keys, [(("__name__", "ops_m"), ("k", "1"), ("team", "t1")),
                (("__name__", "ops_m"), ("k", "2"), ("tenant", "t1"))],
         "the new tenant label applies to writes after the reload")

    # external labels reloaded: visible in /federate
    now = int(time.time() * 1000)
    g.write(write_request_v1([([("__name__", "ops_fed"), ("job", "x")], [(now, 5.0)])]))
    st, _, b = http("GET", g.url + "/federate?match[]=ops_fed")
    c.check(b'central="two"' in b, "reloaded external labels appear in /federate", b[:300])

    # SIGHUP reloads too
    open(cfg, "w").write("store:\n  retention: 30d\ningest:\n  tenant_label: viahup\n")
    g.proc.send_signal(signal.SIGHUP)
    ok = False
    for _ in range(50):
        time.sleep(0.1)
        st, _, _ = g.write(write_request_v1([([("__name__", "ops_hup")], [(T, 1.0)])]), headers=h)
        if any(("viahup", "t1") in k for k in read_tenant_labels("ops_hup")):
            ok = True
            break
    c.check(ok, "SIGHUP reloads the configuration")

    # a key that needs a restart: reload refused, old config stays
    open(cfg, "w").write("store:\n  retention: 30d\nquery:\n  lookback_delta: 1m\ningest:\n  tenant_label: viahup\n")
    st, _, b = http("POST", g.url + "/-/reload")
    c.check(st == 500 and b"query.lookback_delta cannot change without a restart" in b,
            "reload with an unreloadable change is refused with a reason", b[:300])
    open(cfg, "w").write("store: {retention: 'unterminated\n")
    st, _, b = http("POST", g.url + "/-/reload")
    c.check(st == 500 and b"YAML" in b, "reload of a broken file is refused", b[:300])
    st, _, _ = g.write(write_request_v1([([("__name__", "ops_after")], [(T, 1.0)])]), headers=h)
    c.eq(st, 204, "still accepting writes after refused reloads")
    c.check(any(("viahup", "t1") in k for k in read_tenant_labels("ops_after")), "running configuration kept")

    stop.set()
    th.join(10)
    c.eq(failures, [], "no write failed while reloading")
    st, _, b = http("GET", g.url + "/metrics")
    c.check(b'rwgate_config_reloads_total{result="failure"} 2' in b, "reload failures are counted", b"")
    c.eq(g.stop(), 0, "SIGTERM exits 0")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
