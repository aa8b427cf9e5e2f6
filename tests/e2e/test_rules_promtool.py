#!/usr/bin/env python3
"""test_rules_promtool - `rwgate check rules` and `rwgate test rules` give
promtool's verdicts.

Corpus (tests/rules/):
  check/good_*.yml  valid rule files        -> exit 0
  check/bad_*.yml   invalid rule files      -> exit 1 with the reasons
  unit/pass_*.yml   passing rule unit tests -> exit 0
  unit/fail_*.yml   failing rule unit tests -> exit 1 with a diff
The expected verdicts are Prometheus 3's. Debian's promtool (2.42) is run on
the same files when installed and must agree, except on files whose first
line says "promtool-2.42: differs (...)" (features or fixes newer than 2.42).

Shipped rule packs (deploy/rules/*.yml): `rwgate check rules` and promtool
accept every file, and `rwgate test rules` passes every unit-test file in
deploy/rules/tests/."""

import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwlib  # noqa: E402


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    return p.returncode, p.stdout + p.stderr


def run_all(cmds):
    """every command, as many at once as there are cores (the corpus is a few
    hundred short runs); the results in the order given"""
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        return list(ex.map(run, cmds))


def differs_from_242(path):
    with open(path) as f:
        return "promtool-2.42: differs" in f.readline()


def main():
    c = rwlib.Checks("test_rules_promtool")
    rwgate = rwlib.rwgate_path()
    promtool = shutil.which("promtool")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    root = os.path.normpath(root)
    corpus = os.path.join(root, "tests", "rules")

    cases = []
    for f in sorted(glob.glob(os.path.join(corpus, "check", "*.yml"))):
        want = 0 if os.path.basename(f).startswith("good_") else 1
        cases.append(("check", f, want))
    for f in sorted(glob.glob(os.path.join(corpus, "unit", "*.yml"))):
        b = os.path.basename(f)
        if b.startswith("pass_"):
            cases.append(("test", f, 0))
        elif b.startswith("fail_"):
            cases.append(("test", f, 1))
    c.check(len(cases) > 40, "corpus present", str(len(cases)))

    ours = run_all([[rwgate, verb, "rules", f] for verb, f, _ in cases])
    theirs = run_all([[promtool, verb, "rules", f] for verb, f, _ in cases]) if promtool else []
    for i, (verb, f, want) in enumerate(cases):
        rel = os.path.relpath(f, root)
        rc, out = ours[i]
        c.check(rc == want, "rwgate %s rules %s exits %d" % (verb, rel, want),
                "got %d:\n%s" % (rc, out))
        if want == 1:
            c.check("FAILED" in out, "%s: reasons printed" % rel, out)
        if promtool:
            prc, pout = theirs[i]
            if differs_from_242(f):
                c.check(prc != want, "promtool 2.42 differs on %s as noted" % rel,
                        "promtool agreed (%d): drop the marker?\n%s" % (prc, pout))
            else:
                c.check(prc == rc, "promtool 2.42 agrees on %s" % rel,
                        "rwgate %d, promtool %d\n--- rwgate\n%s--- promtool\n%s" % (rc, prc, out, pout))

    # the shipped rule packs
    packs = sorted(glob.glob(os.path.join(root, "deploy", "rules", "*.yml")) +
                   glob.glob(os.path.join(root, "deploy", "rules", "*.yaml")))
    tests = sorted(glob.glob(os.path.join(root, "deploy", "rules", "tests", "*.yml")) +
                   glob.glob(os.path.join(root, "deploy", "rules", "tests", "*.yaml")))
    rwlib.log("shipped rule files: %d, unit-test files: %d" % (len(packs), len(tests)))
    ours = run_all([[rwgate, "check", "rules", f] for f in packs])
    theirs = run_all([[promtool, "check", "rules", f] for f in packs]) if promtool else []
    for i, f in enumerate(packs):
        rel = os.path.relpath(f, root)
        rc, out = ours[i]
        c.check(rc == 0 and "SUCCESS" in out, "rwgate check rules %s" % rel, out)
        if promtool:
            prc, pout = theirs[i]
            c.check(prc == 0, "promtool check rules %s" % rel, pout)
    for f, (rc, out) in zip(tests, run_all([[rwgate, "test", "rules", f] for f in tests])):
        rel = os.path.relpath(f, root)
        c.check(rc == 0, "rwgate test rules %s" % rel, out)
    c.done()


if __name__ == "__main__":
    main()
