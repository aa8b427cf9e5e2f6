"""The PromQL correctness gate over HTTP: runs Prometheus' own PromQL test
files (../shared/conformance/promql/*.test) with the shared harness against
the real rwgate binary - data goes in through remote-write, every eval is
checked through /api/v1/query and /api/v1/query_range. Every in-scope case
must pass, except those listed in tests/promql_known_failures_http.txt
(file:line and the reason); a listed case that now passes also fails this
test, so the list only ever shrinks."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, rwgate_path, log

c = Checks("test_promql_conformance_http")
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
shared = os.path.abspath(os.path.join(root, "..", "shared", "conformance"))
harness = os.path.join(shared, "promqltest.py")
if not os.path.exists(harness):
    c.check(False, "conformance harness present at %s" % harness)
    c.done()

known = {}
kf = os.path.join(root, "tests", "promql_known_failures_http.txt")
if os.path.exists(kf):
    for line in open(kf):
        line = line.strip()
        if line and not line.startswith("#"):
            loc, _, reason = line.partition(" ")
            known[loc] = reason.strip()

files = sorted(os.path.join(shared, "promql", f) for f in os.listdir(os.path.join(shared, "promql"))
               if f.endswith(".test"))
out = tempfile.mktemp(suffix=".json")
cmd = [sys.executable, harness, "--jobs", "2", "--range-check", "--json", out, "--max-fail-print", "40",
       "--target-cmd", rwgate_path() + " --listen 127.0.0.1:{port} --data {data} --shards 1"] + files
log("running: " + " ".join(cmd[:8]) + " ...")
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(p.stdout[-6000:])
c.eq(p.returncode, 0, "the harness ran (exit 0)")
summary = json.load(open(out))
os.unlink(out)
failed, now_passing = [], []
for f, res in summary["files"].items():
    base = os.path.basename(f)
    for case in res["cases"]:
        loc = "%s:%d" % (base, case["line"])
        if case["status"] == "fail" and loc not in known:
            failed.append("%s %s: %s" % (loc, case["expr"], (case.get("reason") or "")[:200]))
        elif case["status"] == "pass" and loc in known:
            now_passing.append(loc)
tot = summary["total"]
log("conformance over HTTP: %d passed, %d failed (%d known), %d skipped" %
    (tot["passed"], tot["failed"], len(known), tot["skipped"]))
c.check(tot["passed"] > 0, "some conformance cases ran and passed")
c.eq(failed, [], "in-scope conformance cases failing (not in the known-failure list)")
c.eq(now_passing, [], "known failures that pass now (remove them from %s)" % os.path.basename(kf))
c.done()
