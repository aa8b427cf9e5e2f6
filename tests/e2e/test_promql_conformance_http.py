"""The PromQL correctness gate over HTTP: runs Prometheus' own PromQL test
files (tests/promql/upstream/*.test, vendored unmodified) and rwgate's own
(tests/promql/*.test) with the project's harness (tests/promql/promqltest.py)
against the real rwgate binary - data goes in through remote-write, every
eval is checked through /api/v1/query and /api/v1/query_range.

What counts:
- every case that runs must pass, except those listed in
  tests/promql/known_failures_http.txt (file:line and the reason); a listed
  case that now passes, or a line naming no case, also fails this test, so
  the list only ever shrinks;
- only native-histogram cases may be skipped, at most MAX_SKIPPED[file] per
  file (the same bounds as the in-process runner); float cases of a part that
  also loads histograms are run;
- a sample refused during a `load` fails the cases after it (the harness);
- a missing or empty corpus fails."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, rwgate_path, log

# The most cases each file may skip (native histograms only); a file not
# listed may skip none. Keep in step with skip_bounds[] in
# tests/unit/test_promql_conformance.c.
MAX_SKIPPED = {
    "aggregators.test": 35, "functions.test": 108, "histograms.test": 92, "literals.test": 0,
    "operators.test": 72, "range_queries.test": 2, "selectors.test": 0, "staleness.test": 0,
    "trig_functions.test": 0,
}

c = Checks("test_promql_conformance_http")
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
promql_dir = os.path.join(root, "tests", "promql")
upstream = os.path.join(promql_dir, "upstream")
harness = os.path.join(promql_dir, "promqltest.py")
if not c.check(os.path.exists(harness), "conformance harness present at %s" % harness):
    c.done()

st = subprocess.run([sys.executable, harness, "--self-test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)
c.check(st.returncode == 0, "the harness' self-test passes", st.stdout[-2000:])

known = {}
kf = os.path.join(promql_dir, "known_failures_http.txt")
if os.path.exists(kf):
    for line in open(kf):
        line = line.strip()
        if line and not line.startswith("#"):
            loc, _, reason = line.partition(" ")
            known[loc] = reason.strip()


def test_files(d):
    try:
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".test"))
    except OSError:
        return []


up_files = test_files(upstream)
c.eq(sorted(os.path.basename(f) for f in up_files), sorted(MAX_SKIPPED),
     "the vendored upstream corpus is complete")
own_files = test_files(promql_dir)
c.check(len(own_files) > 0, "rwgate's own .test files are present")
files = up_files + own_files
if not files:
    c.done()

fd, out = tempfile.mkstemp(suffix=".json")
os.close(fd)
# --check-exit: every rwgate must exit 0 on SIGTERM (under the sanitizer
# build, a leak at shutdown makes the exit code non-zero)
cmd = [sys.executable, harness, "--jobs", "2", "--range-check", "--check-exit", "--stop-timeout", "60",
       "--json", out, "--max-fail-print", "40", "--target-cmd", rwgate_path() + " --listen 127.0.0.1:{port} --data {data} --shards 1"] + files
log("running: " + " ".join(cmd[:8]) + " ...")
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(p.stdout[-8000:])
c.eq(p.returncode, 0, "the harness ran (exit 0)")
try:
    summary = json.load(open(out))
except ValueError:
    summary = {"files": {}, "total": {"passed": 0, "failed": 0, "skipped": 0}}
os.unlink(out)
failed, now_passing, seen = [], [], set()
for f, res in sorted(summary["files"].items()):
    base = os.path.basename(f)
    skipped = [case for case in res["cases"] if case["status"] == "skip"]
    bad_skips = sorted({case["reason"] for case in skipped if case["reason"] != "native histograms"})
    c.eq(bad_skips, [], "%s: skip reasons other than native histograms" % base)
    c.check(len(skipped) <= MAX_SKIPPED.get(base, 0), "%s: skipped cases within the bound" % base,
            "%d skipped, at most %d" % (len(skipped), MAX_SKIPPED.get(base, 0)))
    c.check(any(case["status"] == "pass" for case in res["cases"]), "%s: some cases passed" % base)
    for case in res["cases"]:
        loc = "%s:%d" % (base, case["line"])
        seen.add(loc)
        if case["status"] == "fail" and loc not in known:
            failed.append("%s %s: %s" % (loc, case["expr"], (case.get("reason") or "")[:200]))
        elif case["status"] == "pass" and loc in known:
            now_passing.append(loc)
c.eq(sorted(os.path.basename(f) for f in summary["files"]), sorted(os.path.basename(f) for f in files),
     "every file was run")
tot = summary["total"]
log("conformance over HTTP: %d passed, %d failed (%d known), %d skipped" %
    (tot["passed"], tot["failed"], len(known), tot["skipped"]))
c.check(tot["passed"] > 0, "some conformance cases ran and passed")
c.eq(failed, [], "in-scope conformance cases failing (not in the known-failure list)")
c.eq(now_passing, [], "known failures that pass now (remove them from %s)" % os.path.basename(kf))
c.eq(sorted(set(known) - seen), [], "known-failure lines that name no case (remove them)")
c.done()
