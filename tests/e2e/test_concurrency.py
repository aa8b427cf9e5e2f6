"""Everything at once, for the race detectors: writers, readers on every
read path (instant and range queries, series, label values, federate,
remote-read), reloads from SIGHUP and POST /-/reload racing each other
(the file alternates between two valid configurations, credentials
included), and store checkpoints every second, for a few seconds. Then:
every acknowledged write is there, the process stops cleanly, and its log
has no sanitizer report (tests/run.sh runs this test once against a
ThreadSanitizer build)."""

import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, V1_HEADERS, http, log, read_request, snappy_compress, write_request_v1

c = Checks("test_concurrency")
tmp = tempfile.mkdtemp(prefix="rwgate-e2e-conc-")
cfg = os.path.join(tmp, "rwgate.yml")
TOKEN_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
CONFIGS = [
    "store:\n  checkpoint_interval: 1s\ningest:\n  max_future: 1h\n",
    "store:\n  checkpoint_interval: 1s\ningest:\n  max_future: 2h\n  max_help_length: 9000\n"
    "global:\n  external_labels: {central: x}\n",
]
with open(cfg, "w") as f:
    f.write(CONFIGS[0])
AUTH = {"Authorization": "Bearer test"}
SECS = float(os.environ.get("RWGATE_CONCURRENCY_SECONDS", "8"))
T0 = int(time.time() * 1000) - 600000

g = Rwgate(extra=["--config", cfg, "--shards", "3"]).start(timeout=180)
stop = threading.Event()
lock = threading.Lock()
acked = []
errors = []


def writer(w):
    i = 0
    while not stop.is_set():
        body = snappy_compress(write_request_v1(
            [([("__name__", "conc"), ("s", str(k)), ("w", str(w))], [(T0 + i * 1000, float(i))])
             for k in range(50)],
            metadata=[(1, "conc", "help %d" % (i % 3), "")]))
        try:
            st, _, b = http("POST", g.url + "/api/v1/write", body, V1_HEADERS, timeout=60)
        except OSError as e:
            st, b = -1, str(e).encode()
        with lock:
            if st == 204:
                acked.append((w, i))
            elif st != 503:
                errors.append(("write", st, b[:200]))
        i += 1


def reader(r):
    k = 0
    while not stop.is_set():
        k += 1
        t = (T0 + 30000) / 1000
        kind = k % 6
        try:
            if kind == 0:
                st, _, b = http("GET", g.url + "/api/v1/query?" + urllib.parse.urlencode(
                    {"query": 'sum by (w) (conc{s=~"1.*"})', "time": str(t)}), timeout=60)
            elif kind == 1:
                st, _, b = http("GET", g.url + "/api/v1/query_range?" + urllib.parse.urlencode(
                    {"query": "count(conc)", "start": str(t - 60), "end": str(t), "step": "15"}), timeout=60)
            elif kind == 2:
                st, _, b = http("GET", g.url + "/api/v1/series?" + urllib.parse.urlencode(
                    {"match[]": 'conc{w="1"}'}), timeout=60)
            elif kind == 3:
                st, _, b = http("GET", g.url + "/api/v1/label/s/values", timeout=60)
            elif kind == 4:
                st, _, b = http("GET", g.url + "/federate?match[]=conc", timeout=60)
            else:
                body = snappy_compress(read_request([(0, 2**62, [(0, "__name__", "conc"), (2, "s", "[0-4]")])]))
                st, _, b = http("POST", g.url + "/api/v1/read", body,
                                {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}, timeout=60)
        except OSError as e:
            st, b = -1, str(e).encode()
        if st not in (200, 503):
            with lock:
                errors.append(("read %d" % kind, st, b[:200]))


def reloader(how):
    n = 0
    while not stop.is_set():
        n += 1
        with lock:
            with open(cfg + ".tmp", "w") as f:
                f.write(CONFIGS[n % 2])
            os.replace(cfg + ".tmp", cfg)
        if how == "signal":
            g.proc.send_signal(signal.SIGHUP)
        else:
            try:
                st, _, b = http("POST", g.url + "/-/reload", b"", AUTH, timeout=60)
                if st != 200:
                    with lock:
                        errors.append(("reload", st, b[:200]))
            except OSError as e:
                with lock:
                    errors.append(("reload", -1, str(e)))
        time.sleep(0.05)


try:
    ths = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    ths += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    ths += [threading.Thread(target=reloader, args=(h,)) for h in ("signal", "http")]
    for t in ths:
        t.start()
    time.sleep(SECS)
    stop.set()
    for t in ths:
        t.join()
    log("%d writes acknowledged, %d errors" % (len(acked), len(errors)))
    c.eq(errors[:5], [], "no errors on any path during the run")
    c.check(len(acked) > 0, "writes were acknowledged")
    # every acknowledged write: 50 series with the sample at T0 + i s
    per = {}
    for w, i in acked:
        per.setdefault(w, set()).add(i)
    body = snappy_compress(read_request([(0, 2**62, [(0, "__name__", "conc")])]))
    st, _, b = http("POST", g.url + "/api/v1/read", body,
                    {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}, timeout=120)
    from rwlib import decode_read_response, snappy_decompress
    got = {}
    for labels, samples in decode_read_response(snappy_decompress(b))[0].items():
        d = dict(labels)
        got.setdefault(int(d["w"]), {}).setdefault(d["s"], set()).update(int((t - T0) / 1000) for t, _ in samples)
    missing = 0
    for w, idx in per.items():
        for s in range(50):
            missing += len(idx - got.get(w, {}).get(str(s), set()))
    c.eq(missing, 0, "every acknowledged sample is there")
    c.eq(g.stop(), 0, "clean stop")
    text = g.log_tail(10 ** 7)
    for marker in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer"):
        c.check(marker not in text, "no sanitizer report (%s)" % marker,
                text[text.find(marker):text.find(marker) + 3000] if marker in text else "")
finally:
    stop.set()
    g.cleanup()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
