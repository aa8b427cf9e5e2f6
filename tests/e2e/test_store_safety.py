"""Acknowledged writes are never lost (issue 9, store side), each against the
real binary:

* one data directory belongs to one process: a second rwgate on the same
  directory is refused with a message naming the holder's pid, and a second
  rwgate on the same port fails to listen (no SO_REUSEPORT);
* a series with more labels than the old recovery limit (10,000) and every
  write after it survive kill -9 (one label limit for ingest and recovery);
* retention is measured from the newest sample not ahead of the wall clock:
  with ingest.max_future=0 one far-future sample must not delete older data;
* disk full, then kill -9: rwgate starts anyway, serves every acknowledged
  sample, answers writes and metadata changes with 503 (keeping the old
  metadata) until space returns, then accepts them, and nothing
  acknowledged is lost (needs root for a small tmpfs; skipped otherwise)."""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, Rwgate, free_port, http, log, rwgate_path, write_request_v1

c = Checks("test_store_safety")
NOW = int(time.time() * 1000)


def samples_of(g, name):
    res = g.read([(0, 2**62, [(0, "__name__", name)])])[0]
    return sorted(t for s in res.values() for t, _ in s)


def run_second(args, timeout=15):
    """Starts a second rwgate that must fail; -> (exit code or None when it
    kept running, output)."""
    p = subprocess.Popen([rwgate_path()] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out.decode(errors="replace")


def metric(g, name):
    st, _, b = http("GET", g.url + "/metrics")
    for ln in b.decode().splitlines():
        if ln.startswith(name + " ") or ln.startswith(name + "{"):
            return float(ln.rsplit(" ", 1)[1])
    return None


# ---- one process per data directory, one per port
g = Rwgate(extra=["--shards", "2"]).start()
try:
    rc, out = run_second(["--listen", "127.0.0.1:%d" % free_port(), "--data", g.data, "--shards", "2"])
    c.check(rc not in (0, None), "a second rwgate on the same data directory is refused", out[-500:])
    c.check(str(g.proc.pid) in out and "in use" in out, "the refusal names the holder's pid", out[-500:])
    other = tempfile.mkdtemp(prefix="rwgate-e2e-other-")
    rc, out = run_second(["--listen", "127.0.0.1:%d" % g.port, "--data", other, "--shards", "2"])
    c.check(rc not in (0, None), "a second rwgate on the same port fails to listen", out[-500:])
    subprocess.run(["rm", "-rf", other])
    st, _, _ = g.write(write_request_v1([([("__name__", "lock_m")], [(NOW - 1000, 1.0)])]))
    c.eq(st, 204, "the first rwgate still serves writes")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()

# ---- wide series survive kill -9, and so does everything after them
g = Rwgate(extra=["--shards", "1", "--set", "ingest.max_labels_per_series=20000"]).start()
try:
    wide = [("__name__", "wide_m")] + [("l%05d" % i, "v") for i in range(12000)]
    st, _, b = g.write(write_request_v1([(wide, [(NOW - 3000, 1.0)])]))
    c.eq(st, 204, "a series with 12,000 labels is accepted")
    st, _, _ = g.write(write_request_v1([([("__name__", "after_wide")], [(NOW - 2000, 2.0)])]))
    c.eq(st, 204, "a write after it")
    g.kill9()
    g.start()
    c.eq(samples_of(g, "wide_m"), [NOW - 3000], "the wide series survived kill -9")
    c.eq(samples_of(g, "after_wide"), [NOW - 2000], "the write after it survived kill -9")
    st, j = g.api("/api/v1/series", **{"match[]": "wide_m"})
    c.check(st == 200 and j["data"] and len(j["data"][0]) == 12001, "all 12,001 labels are back",
            str(st))
    c.eq(g.stop(), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()

# ---- one far-future sample does not move the retention window
g = Rwgate(extra=["--shards", "1", "--retention", "1h", "--set", "ingest.max_future=0",
                  "--set", "store.checkpoint_interval=1s"]).start()
try:
    st, _, _ = g.write(write_request_v1([([("__name__", "ret_m")], [(NOW - 1800 * 1000, 1.0)])]))
    c.eq(st, 204, "a sample 30 minutes old")
    future = NOW + 10 * 365 * 86400 * 1000
    st, _, _ = g.write(write_request_v1([([("__name__", "ret_future")], [(future, 2.0)])]))
    c.eq(st, 204, "a sample ten years ahead (max_future=0 accepts it)")
    st, _, b = g.write(write_request_v1([([("__name__", "ret_m")], [(NOW - 1700 * 1000, 3.0)])]))
    c.eq(st, 204, "a later sample of the old series is not 'too old'")
    # retention runs every store.checkpoint_interval: wait for two more passes
    n0 = metric(g, "rwgate_store_maintenance_runs_total") or 0
    deadline = time.time() + 60
    while time.time() < deadline and (metric(g, "rwgate_store_maintenance_runs_total") or 0) < n0 + 2:
        time.sleep(0.2)
    c.check((metric(g, "rwgate_store_maintenance_runs_total") or 0) >= n0 + 2,
            "maintenance ran")
    c.eq(samples_of(g, "ret_m"), [NOW - 1800 * 1000, NOW - 1700 * 1000],
         "data within the retention window of the wall clock is kept")
    c.eq(samples_of(g, "ret_future"), [future], "the future sample is stored")
    c.eq(g.stop(), 0, "clean stop")
finally:
    if c.failed:
        log("rwgate log tail:\n" + g.log_tail())
    g.cleanup()

# ---- disk full, then kill -9
if os.geteuid() != 0:
    log("SKIP disk-full part: needs root to mount a small tmpfs")
else:
    base = tempfile.mkdtemp(prefix="rwgate-e2e-full-")
    mnt = os.path.join(base, "data")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], check=True)
    g = Rwgate(data=mnt, extra=["--shards", "2", "--set", "store.busy_timeout=200ms",
                                "--set", "store.checkpoint_interval=1s"])
    filler = os.path.join(mnt, "filler")
    acked = []
    try:
        g.start()

        def put(i):
            body = write_request_v1([([("__name__", "full_m"), ("i", str(i % 8))], [(NOW - 100000 + i, float(i))])],
                                    metadata=[(1, "full_m", "help %d" % i, "")])
            st, hd, b = g.write(body)
            if st == 204:
                acked.append(NOW - 100000 + i)
            return st, hd, b

        for i in range(20):
            c.eq(put(i)[0], 204, "write %d before the disk is full" % i)
        st, j = g.api("/api/v1/metadata", metric="full_m")
        c.eq(j.get("data", {}).get("full_m", [{}])[0].get("help"), "help 19", "metadata stored")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        # let the maintenance thread hit the full disk too
        time.sleep(1.5)
        st, hd, b = put(100)
        c.eq(st, 503, "a write on a full disk -> 503")
        c.check("retry-after" in hd, "with Retry-After", repr(hd))
        st, hd, _ = g.write(write_request_v1([], metadata=[(1, "full_m", "changed help", "")]))
        c.eq(st, 503, "a metadata-only write on a full disk -> 503")
        st, j = g.api("/api/v1/metadata", metric="full_m")
        c.eq(j.get("data", {}).get("full_m", [{}])[0].get("help"), "help 19",
             "a failed metadata write keeps the old entry")
        g.kill9()
        g.start()
        c.check(True, "rwgate starts after kill -9 on a full disk")
        got = samples_of(g, "full_m")
        c.check(set(acked) <= set(got), "every acknowledged sample is readable",
                "missing %r" % sorted(set(acked) - set(got)))
        st, j = g.api("/api/v1/metadata", metric="full_m")
        c.eq(j.get("data", {}).get("full_m", [{}])[0].get("help"), "help 19", "metadata after restart")
        st, hd, _ = put(101)
        c.eq(st, 503, "writes answer 503 while the disk is still full")
        os.unlink(filler)
        ok = False
        deadline = time.time() + 60
        while time.time() < deadline:
            if put(102)[0] == 204:
                ok = True
                break
            time.sleep(0.2)
        c.check(ok, "writes succeed once space returns")
        for i in range(103, 110):
            c.eq(put(i)[0], 204, "write %d after space returned" % i)
        st, j = g.api("/api/v1/metadata", metric="full_m")
        c.eq(j.get("data", {}).get("full_m", [{}])[0].get("help"), "help 109", "metadata updated again")
        g.kill9()
        g.start()
        got = samples_of(g, "full_m")
        c.check(set(acked) <= set(got), "every acknowledged sample survives the second kill -9",
                "missing %r" % sorted(set(acked) - set(got)))
        c.eq(g.stop(), 0, "clean stop")
    finally:
        if c.failed:
            log("rwgate log tail:\n" + g.log_tail())
        g.kill9()
        if g.logf:
            g.logf.close()
        subprocess.run(["umount", "-l", mnt])
        subprocess.run(["rm", "-rf", base])
c.done()
