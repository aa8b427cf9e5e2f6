#!/usr/bin/env python3
"""rules_bench - rule evaluation cost against Prometheus, and ingest with and
without rules, on the shared benchmark's etcd-fleet data set.

Run through tests/bench/run.sh (which knows where the shared benchmark is):
  tests/bench/run.sh rules [PRESET] [ROUNDS]

Phase 1, per round and system (rwgate, then Prometheus, one at a time on
the shared cores): generate the preset's data, ending --ahead seconds in the
future (so however long a system takes to load, every evaluation measured
afterwards has its range windows full of data: a rule over an empty window
costs nothing and would flatter whoever loads slowest), start the
system with the rule packs (every group's interval set to --interval, the same
files for both), replay the data with rwload, then for --window seconds read
/api/v1/rules every second and keep each group's evaluationTime of every
evaluation that ran after the load finished (so every evaluation sees the
whole data set). Reported: per group, the median over rounds of the median
evaluation time, rwgate / Prometheus.

Phase 2, per round: rwgate without rules and with the packs (same interval)
replay the same data; reported: ingest samples/s (rwload) both ways, and the
ratio.

Results: <out>.md and <out>.json."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PRESETS = {
    "tiny": ["-c", "3", "-d", "20m", "-p", "2"],
    "small": ["-c", "20", "-d", "1h", "-p", "4"],
    "medium": ["-c", "100", "-d", "1h", "-p", "4"],
}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(proc, url, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s" % proc.returncode)
        try:
            if get(url, 2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("not ready")


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        proc.wait(300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def copy_rules(src, dst, interval):
    os.makedirs(dst, exist_ok=True)
    n = 0
    for f in sorted(os.listdir(src)):
        if not f.endswith((".yml", ".yaml")):
            continue
        with open(os.path.join(src, f)) as fh:
            text = fh.read()
        text = re.sub(r"(?m)^(\s*)interval:\s*\S+", r"\1interval: " + interval, text)
        with open(os.path.join(dst, f), "w") as fh:
            fh.write(text)
        n += 1
    return n


class System:
    def __init__(self, kind, args, work, rules_dir):
        self.kind, self.args, self.work, self.rules_dir = kind, args, work, rules_dir
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.data = os.path.join(work, "data-%s" % kind)
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data)
        self.logf = open(os.path.join(work, "%s.log" % kind), "w")
        if kind == "prom":
            conf = os.path.join(work, "prometheus.yml")
            with open(conf, "w") as f:
                f.write("global:\n  evaluation_interval: %s\n" % args.interval)
                if rules_dir:
                    f.write("rule_files: [%s/*.yml]\n" % rules_dir)
            cmd = ["prometheus", "--config.file=" + conf, "--storage.tsdb.path=" + self.data,
                   "--web.listen-address=127.0.0.1:%d" % self.port,
                   "--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y",
                   "--query.max-samples=500000000", "--query.timeout=5m", "--log.level=warn"]
            ready = "/-/ready"
        else:
            conf = os.path.join(work, "rwgate.yml")
            with open(conf, "w") as f:
                f.write("global:\n  evaluation_interval: %s\n" % args.interval)
                if rules_dir:
                    f.write("rule_files: [%s/*.yml]\n" % rules_dir)
            # the data runs ahead of the clock (see --ahead): no future limit
            cmd = [args.rwgate, "--config", conf, "--listen", "127.0.0.1:%d" % self.port,
                   "--data", self.data, "--set", "ingest.max_future=0"]
            ready = "/-/ready"
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_ready(self.proc, self.url + ready)

    def load(self, pack):
        j = os.path.join(self.work, "rwload-%s.json" % self.kind)
        p = subprocess.run([os.path.join(self.args.bench, "rwload"), "-q", "-u",
                            self.url + "/api/v1/write", "-f", pack, "-j", j],
                           capture_output=True, text=True)
        if p.returncode != 0:
            log("rwload failed:", (p.stdout + p.stderr)[-1000:])
        return json.load(open(j))

    def groups(self):
        st, b = get(self.url + "/api/v1/rules")
        return json.loads(b)["data"]["groups"]

    def close(self):
        stop(self.proc)
        self.logf.close()
        shutil.rmtree(self.data, ignore_errors=True)


def gen(args, path):
    end_ms = int((time.time() + args.ahead) * 1000)
    cmd = [os.path.join(args.bench, "rwgen")] + PRESETS[args.preset] + ["-s", "1", "-e", str(end_ms),
                                                                       "-o", path]
    subprocess.run(cmd, check=True, capture_output=True)
    return json.load(open(path + ".json"))


def measure_eval(args, kind, work, rules_dir):
    pack = os.path.join(work, "data.pack")
    meta = gen(args, pack)
    s = System(kind, args, work, rules_dir)
    try:
        ld = s.load(pack)
        load_end = time.time()
        log("[%s] loaded %d samples at %.0f/s" % (kind, ld.get("samples_sent", 0),
                                                   ld.get("samples_per_s", 0)))
        seen = {}   # group -> {lastEvaluation: evaluationTime}
        health = {}
        t_end = time.time() + args.window
        while time.time() < t_end:
            for g in s.groups():
                le = g["lastEvaluation"]
                if le.startswith("0001"):
                    continue
                # evaluations that started after the load finished
                ts = parse_rfc3339(le)
                if ts >= load_end:
                    seen.setdefault(g["name"], {})[le] = g["evaluationTime"]
                    bad = [r["name"] for r in g["rules"] if r["health"] == "err"]
                    if bad:
                        health[g["name"]] = bad
            time.sleep(1)
        return {g: statistics.median(v.values()) for g, v in seen.items()}, \
            {g: len(v) for g, v in seen.items()}, health, meta
    finally:
        s.close()


def parse_rfc3339(s):
    import calendar
    m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+)(\.\d+)?(Z|[+-]\d\d:\d\d)", s)
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    if m.group(2):
        t += float(m.group(2))
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        hh, mm = m.group(3)[1:].split(":")
        t -= sign * (int(hh) * 3600 + int(mm) * 60)
    return t


def measure_ingest(args, work, rules_dir, pack):
    s = System("rwgate", args, work, rules_dir)
    try:
        ld = s.load(pack)
        return ld.get("samples_per_s", 0)
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="the shared benchmark directory (rwgen, rwload)")
    ap.add_argument("--rules", required=True, help="directory of rule files")
    ap.add_argument("--rwgate", required=True)
    ap.add_argument("--preset", default="medium", choices=sorted(PRESETS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--interval", default="15s", help="group interval for the benchmark")
    ap.add_argument("--window", type=int, default=90, help="seconds of evaluations measured")
    ap.add_argument("--ahead", type=int, default=1500,
                    help="the data ends this many seconds after its generation, so it still "
                         "covers the evaluations measured after even a slow load")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rwbench-rules-")
    rules_dir = os.path.join(work, "rules")
    n = copy_rules(args.rules, rules_dir, args.interval)
    log("%d rule files, interval %s, preset %s, %d rounds" % (n, args.interval, args.preset, args.rounds))

    evals = {"rwgate": [], "prom": []}
    counts = {"rwgate": [], "prom": []}
    errors = {}
    meta = {}
    for r in range(args.rounds):
        for kind in ("rwgate", "prom"):
            med, cnt, health, meta = measure_eval(args, kind, work, rules_dir)
            evals[kind].append(med)
            counts[kind].append(cnt)
            errors[kind] = health
            log("[%s r%d] %s" % (kind, r, ", ".join("%s %.1fms" % (g, v * 1e3) for g, v in sorted(med.items()))))
    ingest = {"off": [], "on": []}
    pack = os.path.join(work, "data.pack")
    gen(args, pack)
    for r in range(args.rounds):
        for mode in ("off", "on"):
            v = measure_ingest(args, work, rules_dir if mode == "on" else None, pack)
            ingest[mode].append(v)
            log("[ingest rules-%s r%d] %.0f samples/s" % (mode, r, v))

    groups = sorted(set().union(*[set(m) for m in evals["rwgate"] + evals["prom"]]))

    def med_of(kind, g):
        vals = [m[g] for m in evals[kind] if g in m]
        return statistics.median(vals) if vals else None

    rows = []
    for g in groups:
        a, b = med_of("rwgate", g), med_of("prom", g)
        rows.append({"group": g, "rwgate_s": a, "prometheus_s": b,
                     "ratio": (a / b) if a is not None and b else None,
                     "evaluations": [sum(c.get(g, 0) for c in counts["rwgate"]),
                                     sum(c.get(g, 0) for c in counts["prom"])]})
    ing_off = statistics.median(ingest["off"])
    ing_on = statistics.median(ingest["on"])
    out = {"preset": args.preset, "series": meta.get("series"), "samples": meta.get("samples"),
           "interval": args.interval, "rounds": args.rounds, "groups": rows,
           "ingest_samples_per_s": {"rules_off": ingest["off"], "rules_on": ingest["on"],
                                    "ratio": ing_on / ing_off if ing_off else None},
           "rule_errors": errors}
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1)
    md = ["# Rule evaluation: rwgate vs Prometheus (%s: %s series, %s samples)" %
          (args.preset, meta.get("series"), meta.get("samples")), "",
          "Group evaluation time (median of per-round medians; evaluations after the load; "
          "interval %s; %d rounds)." % (args.interval, args.rounds), "",
          "| group | rwgate ms | Prometheus ms | rwgate / Prometheus | evaluations (rwgate, Prometheus) |",
          "|---|---|---|---|---|"]
    for r in rows:
        f = lambda v: "%.2f" % (v * 1e3) if v is not None else "-"  # noqa: E731
        md.append("| %s | %s | %s | %s | %d, %d |" % (r["group"], f(r["rwgate_s"]), f(r["prometheus_s"]),
                                                    "%.2f×" % r["ratio"] if r["ratio"] else "-",
                                                    r["evaluations"][0], r["evaluations"][1]))
    md += ["", "Ingest (rwgate, rwload): rules off %.0f samples/s, rules on %.0f samples/s: %.3f×"
           % (ing_off, ing_on, ing_on / ing_off if ing_off else 0),
           "", "Rules with errors: %s" % (json.dumps(errors) if any(errors.values()) else "none")]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
