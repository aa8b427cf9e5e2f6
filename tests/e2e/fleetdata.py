"""fleetdata - a small synthetic etcd fleet for the UI and Grafana tests:
2 regions x 2 product/scenarios x 2 size classes x 2 clusters of 3 etcd
members each, with the standard labels (region, product, scenario, size,
cluster) an inventory adds at ingest, and one cluster with an injected
fault (slow WAL fsync and backend commits, leader changes, failing
snapshots, a NotReady node, a critical alert firing).

Raw series are what a cluster's Prometheus remote-writes: etcd's metric
families with etcd's bucket layouts, the RKE2 snapshot histograms, and the
Kubernetes side (apiserver's etcd request latency, storage objects, request
codes, kube-state-metrics node conditions). `recorded=True` also writes the
series that the shipped rule packs (deploy/rules) record - per-cluster SLO
budgets and burn rates, p99 latencies, snapshot ages, ALERTS and the fleet
roll-ups - with values that follow from the fault by construction, for runs
without the rule engine. Samples run from 2 h before `now` to 8 min after it
(rwgate accepts samples up to 10 min ahead), so instant queries at the wall
clock keep finding them for about 13 minutes."""

import math
import random
import time
import zlib

import rwlib

REGIONS = ["eu-west", "us-east"]
SCENARIOS = [("rke2", "core"), ("k3s", "edge")]
SIZES = ["small", "large"]
PER_CELL = 2
SLOS = ["availability", "fsync", "commit", "leader"]
FAULTY = "eu-west-core-small-2"
STEP_MS = 60_000
BEFORE_MS = 2 * 3600_000
AHEAD_MS = 8 * 60_000

ETCD_BUCKETS = [0.001 * 2 ** i for i in range(14)]            # 1 ms .. 8.192 s
PEER_BUCKETS = [0.0001 * 2 ** i for i in range(16)]           # 0.1 ms .. 3.2768 s
SNAP_BUCKETS = [0.008 * 2 ** i for i in range(15)]            # 8 ms .. 131 s
APISERVER_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 5, 10]


def le_str(v):
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


class Cluster:
    def __init__(self, region, product, scenario, size, n):
        self.region, self.product, self.scenario, self.size = region, product, scenario, size
        self.name = "%s-%s-%s-%d" % (region, scenario, size, n)
        self.faulty = self.name == FAULTY

    @property
    def labels(self):
        return [("cluster", self.name), ("product", self.product), ("region", self.region),
                ("scenario", self.scenario), ("size", self.size)]


def clusters():
    return [Cluster(r, p, s, z, n) for r in REGIONS for (p, s) in SCENARIOS for z in SIZES
            for n in range(1, PER_CELL + 1)]


def cdf_healthy(x, scale):
    """Share of observations <= x for a latency around `scale` seconds."""
    return 1 - math.exp(-x / scale)


class Writer:
    """Collects series (label list, samples) and writes them in batches."""

    def __init__(self, rw):
        self.rw = rw
        self.batch = []
        self.series = 0
        self.samples = 0

    def add(self, name, labels, samples):
        ls = sorted([("__name__", name)] + list(labels))
        self.batch.append((ls, samples))
        self.series += 1
        self.samples += len(samples)
        if len(self.batch) >= 400:
            self.flush()

    def flush(self):
        if not self.batch:
            return
        st, _, body = self.rw.write(rwlib.write_request_v1(self.batch))
        if st != 204:
            raise RuntimeError("fixture write: HTTP %d %s" % (st, body[:300]))
        self.batch = []


def hist(w, name, labels, ts, rate_per_s, cdf, buckets, t_ms_step):
    """Cumulative histogram counters: `rate_per_s(i)` observations a second,
    `cdf(i, le)` the share at or below each bucket at step i."""
    counts = [[] for _ in buckets]
    inf, total_sum = [], []
    acc = [0.0] * len(buckets)
    acc_inf = acc_sum = 0.0
    for i, t in enumerate(ts):
        n = rate_per_s(i) * t_ms_step / 1000
        for b, le in enumerate(buckets):
            acc[b] += n * cdf(i, le)
            counts[b].append((t, round(acc[b])))
        acc_inf += n
        acc_sum += n * cdf(i, None)
        inf.append((t, round(acc_inf)))
        total_sum.append((t, acc_sum))
    for b, le in enumerate(buckets):
        w.add(name + "_bucket", labels + [("le", le_str(le))], counts[b])
    w.add(name + "_bucket", labels + [("le", "+Inf")], inf)
    w.add(name + "_count", labels, inf)
    w.add(name + "_sum", labels, total_sum)


def write_raw(rw, now_ms):
    w = Writer(rw)
    t0 = now_ms - BEFORE_MS
    ts = list(range(t0 - t0 % STEP_MS, now_ms + AHEAD_MS, STEP_MS))
    n = len(ts)
    fault_from = n - 90          # the fault starts 1.5 h before now
    for c in clusters():
        rnd = random.Random(c.name)
        bad = lambda i: c.faulty and i >= fault_from
        for m in range(3):
            inst = [("instance", "10.%d.0.%d:2379" % (zlib.crc32(c.name.encode()) % 200, m + 1)),
                    ("job", "etcd")]
            lab = c.labels + inst
            w.add("up", lab, [(t, 1) for t in ts])
            w.add("etcd_server_has_leader", lab, [(t, 1) for t in ts])
            w.add("etcd_server_is_leader", lab, [(t, 1 if m == 0 else 0) for t in ts])
            changes, v = [], 1
            for i, t in enumerate(ts):
                if bad(i) and i % 15 == 0:
                    v += 1
                changes.append((t, v))
            w.add("etcd_server_leader_changes_seen_total", lab, changes)
            prop = 10 + rnd.random() * 5
            w.add("etcd_server_proposals_committed_total", lab,
                  [(t, round(prop * 60 * i)) for i, t in enumerate(ts)])
            w.add("etcd_server_proposals_applied_total", lab,
                  [(t, round(prop * 60 * i)) for i, t in enumerate(ts)])
            w.add("etcd_server_proposals_pending", lab, [(t, 3 if bad(i) else 0) for i, t in enumerate(ts)])
            w.add("etcd_server_proposals_failed_total", lab,
                  [(t, (i - fault_from) * 2 if bad(i) else 0) for i, t in enumerate(ts)])
            db = (300 + 200 * rnd.random()) * 2 ** 20
            w.add("etcd_mvcc_db_total_size_in_bytes", lab, [(t, round(db + i * 4096)) for i, t in enumerate(ts)])
            w.add("etcd_mvcc_db_total_size_in_use_in_bytes", lab, [(t, round(db * 0.8)) for t in ts])
            w.add("etcd_server_quota_backend_bytes", lab, [(t, 2 * 2 ** 30) for t in ts])
            fs = 0.0015 + 0.0005 * rnd.random()
            hist(w, "etcd_disk_wal_fsync_duration_seconds", lab, ts, lambda i: 10,
                 lambda i, le, fs=fs: (0.045 if bad(i) else fs) if le is None
                 else cdf_healthy(le, 0.045 if bad(i) else fs), ETCD_BUCKETS, STEP_MS)
            cm = 0.003 + 0.001 * rnd.random()
            hist(w, "etcd_disk_backend_commit_duration_seconds", lab, ts, lambda i: 8,
                 lambda i, le, cm=cm: (0.09 if bad(i) else cm) if le is None
                 else cdf_healthy(le, 0.09 if bad(i) else cm), ETCD_BUCKETS, STEP_MS)
            for p in range(3):
                if p == m:
                    continue
                rtt = 0.0008 + 0.0004 * rnd.random()
                hist(w, "etcd_network_peer_round_trip_time_seconds",
                     lab + [("To", "%x" % (0xabc0 + p))], ts, lambda i: 0.5,
                     lambda i, le, rtt=rtt: (0.02 if bad(i) else rtt) if le is None
                     else cdf_healthy(le, 0.02 if bad(i) else rtt), PEER_BUCKETS, STEP_MS)
            for code, frac in (("OK", 1.0), ("Unavailable", 0.0)):
                g = [("grpc_code", code), ("grpc_method", "Range"), ("grpc_service", "etcdserverpb.KV"),
                     ("grpc_type", "unary")]
                vals, acc = [], 0.0
                for i, t in enumerate(ts):
                    share = (0.02 if code == "Unavailable" else 0.98) if bad(i) else frac
                    acc += 50 * 60 * share
                    vals.append((t, round(acc)))
                w.add("grpc_server_handled_total", lab + g, vals)
        # the Kubernetes side, once per cluster
        k = c.labels + [("job", "apiserver")]
        for op in ("get", "list", "update"):
            scale = (0.08 if op == "list" else 0.01) * (6 if c.faulty else 1)
            hist(w, "etcd_request_duration_seconds", k + [("operation", op), ("type", "pods")], ts,
                 lambda i: 20, lambda i, le, scale=scale: (scale if bad(i) else scale / (6 if c.faulty else 1))
                 if le is None else cdf_healthy(le, scale if bad(i) else scale / (6 if c.faulty else 1)),
                 APISERVER_BUCKETS, STEP_MS)
        for res, base, growth in (("pods", 400, 0.1), ("configmaps", 120, 0.0), ("secrets", 90, 0.0),
                                  ("events.events.k8s.io", 800, 12.0 if c.faulty else 1.0)):
            w.add("apiserver_storage_objects", k + [("resource", res)],
                  [(t, round(base + growth * i)) for i, t in enumerate(ts)])
        for code in ("200", "500"):
            vals, acc = [], 0.0
            for i, t in enumerate(ts):
                acc += 60 * (100 if code == "200" else (3 if bad(i) else 0))
                vals.append((t, round(acc)))
            w.add("apiserver_request_total", k + [("code", code), ("verb", "GET")], vals)
        for node in range(3):
            nl = c.labels + [("job", "kube-state-metrics"), ("node", "%s-node-%d" % (c.name, node)),
                             ("condition", "Ready")]
            notready = lambda i: c.faulty and node == 2 and i >= n - 38
            w.add("kube_node_status_condition", nl + [("status", "true")],
                  [(t, 0 if notready(i) else 1) for i, t in enumerate(ts)])
            w.add("kube_node_status_condition", nl + [("status", "false")],
                  [(t, 1 if notready(i) else 0) for i, t in enumerate(ts)])
        # RKE2 snapshots: one success every 30 min; the faulty cluster fails
        # every attempt once the fault starts
        sl = c.labels + [("job", "rke2-supervisor")]
        for status in ("success", "error"):
            cnt = []
            acc = 0
            for i, t in enumerate(ts):
                if i % 30 == 0 and ((status == "error") == bad(i)):
                    acc += 1
                cnt.append(acc)
            hist_counts = [[(t, cnt[i] if le >= 1.0 else 0) for i, t in enumerate(ts)] for le in SNAP_BUCKETS]
            for b, le in enumerate(SNAP_BUCKETS):
                w.add("rke2_etcd_snapshot_save_duration_seconds_bucket",
                      sl + [("le", le_str(le)), ("status", status)], hist_counts[b])
            w.add("rke2_etcd_snapshot_save_duration_seconds_bucket",
                  sl + [("le", "+Inf"), ("status", status)], [(t, cnt[i]) for i, t in enumerate(ts)])
            w.add("rke2_etcd_snapshot_save_duration_seconds_count", sl + [("status", status)],
                  [(t, cnt[i]) for i, t in enumerate(ts)])
            w.add("rke2_etcd_snapshot_save_duration_seconds_sum", sl + [("status", status)],
                  [(t, cnt[i] * 1.6) for i, t in enumerate(ts)])
    w.flush()
    return w


def slo_truth(c):
    """The per-cluster SLO values the rule packs would record: budget left
    (30 d) and burn rates, per SLO."""
    out = {}
    rnd = random.Random("slo" + c.name)
    for slo in SLOS:
        budget = 0.55 + 0.4 * rnd.random()
        burn = 0.1 + 0.5 * rnd.random()
        if c.faulty and slo == "fsync":
            budget, burn = -0.35, 24.0
        elif c.faulty and slo == "commit":
            budget, burn = 0.12, 7.5
        out[slo] = (budget, burn)
    return out


def write_recorded(rw, now_ms):
    """The series deploy/rules records, for runs without the rule engine."""
    w = Writer(rw)
    t_end = now_ms + AHEAD_MS
    recent = list(range(now_ms - BEFORE_MS - (now_ms - BEFORE_MS) % STEP_MS, t_end, STEP_MS))
    # hourly for the week before (on whole hours, as a 1 h query step falls)
    first_hour = recent[0] - recent[0] % 3600_000 - 7 * 86400_000
    week = list(range(first_hour, recent[0], 3600_000))
    cs = clusters()
    truth = {c.name: slo_truth(c) for c in cs}
    for c in cs:
        for slo, (budget, burn) in truth[c.name].items():
            sl = c.labels + [("slo", slo)]
            # the budget drains over the week from 1 to today's value, then holds
            series = [(t, 1 - (1 - budget) * (i + 1) / len(week)) for i, t in enumerate(week)]
            series += [(t, budget) for t in recent]
            w.add("etcd:slo_error_budget_remaining:ratio30d", sl, series)
            for win, f in (("rate5m", 1.1), ("rate30m", 1.05), ("rate1h", 1.0), ("rate6h", 0.9)):
                w.add("etcd:slo_burn_rate:" + win, sl, [(t, burn * f) for t in recent])
        fs = 0.12 if c.faulty else 0.006
        cm = 0.25 if c.faulty else 0.014
        w.add("etcd:disk_wal_fsync_duration_seconds:p99_rate5m", c.labels, [(t, fs) for t in recent])
        w.add("etcd:disk_backend_commit_duration_seconds:p99_rate5m", c.labels, [(t, cm) for t in recent])
        w.add("etcd:leader_changes:increase1h", c.labels, [(t, 4 if c.faulty else 0) for t in recent])
        w.add("etcd:snapshot_age:seconds", c.labels, [(t, 5400 if c.faulty else 900) for t in recent])
        w.add("etcd:snapshot_age_over_window:ratio", c.labels, [(t, 1.5 if c.faulty else 0.25) for t in recent])
        for m in range(3):
            w.add("etcd:db_quota_used:ratio", c.labels + [("instance", "m%d" % m)],
                  [(t, 0.2 + 0.05 * m) for t in recent])
        if c.faulty:
            for name, sev, extra in (("etcdErrorBudgetBurn", "critical", [("slo", "fsync")]),
                                     ("etcdHighFsyncDurations", "warning", [])):
                w.add("ALERTS", c.labels + [("alertname", name), ("alertstate", "firing"),
                                            ("severity", sev)] + extra,
                      [(t, 1) for t in recent[-60:]])
    # fleet roll-ups: scenario level, then region level, over the week too
    cells = {}
    for c in cs:
        cells.setdefault((c.region, c.product, c.scenario, c.size), []).append(c)
    regions = {}
    for key, members in cells.items():
        region, product, scenario, size = key
        lab = [("product", product), ("region", region), ("scenario", scenario), ("size", size)]
        counts = {
            "scenario:etcd_clusters:count": len(members),
            "scenario:etcd_clusters_silent:count": 0,
            "scenario:etcd_clusters_snapshot_overdue:count": sum(1 for c in members if c.faulty),
            "scenario:etcd_alerts_critical_firing:count": sum(1 for c in members if c.faulty),
        }
        for name, v in counts.items():
            w.add(name, lab, [(t, v) for t in week + recent])
            regions.setdefault((region, name.replace("scenario:", "region:"), None), 0)
            regions[(region, name.replace("scenario:", "region:"), None)] += v
        for slo in SLOS:
            within = sum(1 for c in members if truth[c.name][slo][0] > 0)
            fast = sum(1 for c in members if truth[c.name][slo][1] > 14.4)
            vals = {"scenario:etcd_slo_clusters:count": len(members),
                    "scenario:etcd_slo_clusters_within_budget:count": within,
                    "scenario:etcd_slo_clusters_budget_exhausted:count": len(members) - within,
                    "scenario:etcd_slo_clusters_burning_fast:count": fast}
            for name, v in vals.items():
                w.add(name, lab + [("slo", slo)], [(t, v) for t in week + recent])
                k = (region, name.replace("scenario:", "region:"), slo)
                regions[k] = regions.get(k, 0) + v
    for (region, name, slo), v in sorted(regions.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        lab = [("region", region)] + ([("slo", slo)] if slo else [])
        w.add(name, lab, [(t, v) for t in week + recent])
    w.flush()
    return truth


def load(rw, recorded=True, now_ms=None):
    """Writes the fleet into a running rwgate; returns (now_ms, truth)."""
    now_ms = now_ms or int(time.time() * 1000)
    t0 = time.time()
    w = write_raw(rw, now_ms)
    truth = write_recorded(rw, now_ms) if recorded else None
    rwlib.log("fleet fixture: %d raw series, %d samples in %.1fs" % (w.series, w.samples, time.time() - t0))
    return now_ms, truth
