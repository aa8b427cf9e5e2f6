"""Every configuration key marked reloadable really applies on reload.

The list of reloadable keys comes from the binary itself (`rwgate help
config`), so a key that becomes reloadable without a check here fails this
test. Each key is changed alone in the file, the running process reloads
(POST /-/reload), and a write or a read shows the new behaviour; then the
file goes back to the base and the old behaviour returns. Keys inside lists
and maps (e.g. relabel rules) are covered by their container's check.

Also: metrics registered once whatever the number of reloads, and
rwgate_config_last_reload_successful following the outcome."""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, http, log, rwgate_path, snappy_compress, write_request_v1, V1_HEADERS

c = Checks("test_reload")
binary = rwgate_path()
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-reload-")
cfg = os.path.join(tmp, "rwgate.yml")
BASE = "store:\n  retention: 0\n"


def reloadable_keys():
    out = subprocess.run([binary, "help", "config"], capture_output=True, text=True, check=True).stdout
    keys = set()
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 4 and f[3] == "reload" and not re.search(r"\[\]|\.NAME|<label>", f[0]):
            keys.add(f[0])
    return keys


def yaml_for(key, value):
    """the base config plus one dotted key set to value (a YAML fragment)"""
    parts = key.split(".")
    text = ""
    for depth, p in enumerate(parts[:-1]):
        text += "  " * depth + p + ":\n"
    text += "  " * (len(parts) - 1) + parts[-1] + ": " + value + "\n"
    return BASE + text


g = None


def reload_with(text):
    open(cfg, "w").write(text)
    st, _, b = http("POST", g.url + "/-/reload")
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
    """with a 64 KiB budget, two ~100 KiB writes at once cannot both be
    admitted: at least one of many concurrent rounds is answered 503"""
    big = write_request_v1([([("__name__", "rl_if"), ("i", str(i)), ("pad", "p" * 80)], [(NOW, 1.0)])
                            for i in range(800)])
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


CASES = {
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
}

try:
    keys = reloadable_keys()
    c.check(len(keys) >= len(CASES) - 1, "help config lists the reloadable keys", sorted(keys))
    missing = sorted(keys - set(CASES))
    c.eq(missing, [], "every reloadable key has a check here")

    open(cfg, "w").write(BASE)
    g = Rwgate(extra=["--config", cfg, "--shards", "1"]).start()
    for key in sorted(CASES):
        if key not in keys:
            c.check(False, "%s is reloadable" % key)
            continue
        value, probe = CASES[key]
        c.check(not probe(False), "%s: base behaviour before the reload" % key)
        reload_with(yaml_for(key, value))
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
