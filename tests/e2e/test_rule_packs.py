"""test_rule_packs - the shipped rule packs in deploy/rules/ and their unit
tests in deploy/rules/tests/.

For every rule checker in CHECKERS: each rule file passes its `check rules`
and each test file passes its `test rules` (promtool's unit-test format).
Then, without any tool, the conventions the packs promise (see
deploy/rules/README.md):
  - every recording rule is asserted by some test (promql_expr_test), every
    alert has a test where it fires and one where it does not;
  - every recorded series and every alert is documented in the README;
  - every aggregation that keeps `cluster` keeps all standard labels
    (tenant_id, cluster, region, product, scenario, size), fleet roll-ups
    keep tenant_id and region, `without (...)` drops none of them, and no
    matcher on `cluster` is a regex;
  - every alert has a severity and summary/description annotations whose
    templates use only the functions rwgate's template engine supports.

The rule and test files are read with regular expressions (Python's standard
library has no YAML reader); they follow the layout of the shipped files:
one `- record:`/`- alert:` key per rule, `expr:` either inline or as a `|`
block, tests with `alertname:` followed by `exp_alerts:`."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from rwlib import Checks, log, rwgate_path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "rules")
TESTS = os.path.join(RULES, "tests")

c = Checks("test_rule_packs")

# Each checker: name, argv of `check rules` (files appended), argv of `test
# rules` (one test file appended). rwgate's own checker is added here once
# `rwgate check rules` / `rwgate test rules` exist:
#   ("rwgate", [rwgate_path(), "check", "rules"], [rwgate_path(), "test", "rules"]),
CHECKERS = []
PROMTOOL = shutil.which("promtool")
if PROMTOOL:
    CHECKERS.append(("promtool", [PROMTOOL, "check", "rules", "--lint=all", "--lint-fatal"],
                     [PROMTOOL, "test", "rules"]))
c.check(PROMTOOL is not None, "promtool is installed (Debian package prometheus)")

STD = ["tenant_id", "cluster", "region", "product", "scenario", "size"]
TEMPLATE_WORDS = {"humanize", "humanizePercentage", "humanizeDuration", "printf", "if", "else", "end"}

rule_files = sorted(os.path.join(RULES, f) for f in os.listdir(RULES) if f.endswith(".yml"))
test_files = sorted(os.path.join(TESTS, f) for f in os.listdir(TESTS) if f.endswith(".test.yml"))
c.check(len(rule_files) >= 8, "rule files found", str(rule_files))
c.check(len(test_files) >= 8, "test files found", str(test_files))


def run(argv, what):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    c.check(p.returncode == 0, what, "exit %d\n%s" % (p.returncode, p.stdout[-4000:]))
    return p


# ------------------------------------------------------------ the checkers
for name, check_argv, test_argv in CHECKERS:
    for f in rule_files:
        run(check_argv + [f], "%s check rules %s" % (name, os.path.relpath(f, ROOT)))
    for f in test_files:
        log("%s test rules %s" % (name, os.path.relpath(f, ROOT)))
        run(test_argv + [f], "%s test rules %s" % (name, os.path.relpath(f, ROOT)))


# ----------------------------------------------------- reading rule files
def parse_rules(path):
    """[(kind, name, expr, labels_text, annotations_text, lineno)] of a rule file."""
    lines = open(path).read().split("\n")
    rules = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)- (record|alert): (\S+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1)) + 2
        start = i
        i += 1
        body = []
        while i < len(lines):
            ln = lines[i]
            if ln.strip() and (len(ln) - len(ln.lstrip())) < indent:
                break
            if re.match(r"^\s*- (record|alert): ", ln) and (len(ln) - len(ln.lstrip())) == indent - 2:
                break
            body.append(ln)
            i += 1
        text = "\n".join(body)
        em = re.search(r"^\s*expr: \|\n((?:\s{%d,}.*\n?|\s*\n)*)" % (indent + 2), text + "\n", re.M)
        if em:
            expr = em.group(1)
        else:
            em = re.search(r"^\s*expr: (.+)$", text, re.M)
            expr = em.group(1) if em else ""
        lab = re.search(r"^\s*labels:(.*?)(?=^\s*(?:annotations|expr|for|keep_firing_for):|\Z)", text, re.M | re.S)
        ann = re.search(r"^\s*annotations:(.*?)(?=^\s*(?:labels|expr|for|keep_firing_for):|\Z)", text, re.M | re.S)
        rules.append((m.group(2), m.group(3), expr, lab.group(1) if lab else "", ann.group(1) if ann else "",
                      start + 1))
    return rules


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


all_rules = []
for f in rule_files:
    rs = parse_rules(f)
    c.check(len(rs) > 0, "rules parsed from %s" % os.path.basename(f))
    for r in rs:
        all_rules.append((os.path.basename(f),) + r)
records = sorted({r[2] for r in all_rules if r[1] == "record"})
alerts = sorted({r[2] for r in all_rules if r[1] == "alert"})
log("%d rules: %d recorded series, %d alerts" % (len(all_rules), len(records), len(alerts)))

# ------------------------------------------------------- reading the tests
expr_text = []         # every expr / labels line of every test file
alert_cases = {}       # alertname -> set of "firing" / "quiet"
for f in test_files:
    lines = open(f).read().split("\n")
    for i, ln in enumerate(lines):
        s = ln.strip()
        if s.startswith("- expr:") or s.startswith("expr:") or "labels:" in s:
            # a `|` block: take the indented lines that follow
            expr_text.append(s)
            if s.endswith("|"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" " * (len(ln) - len(ln.lstrip()) + 2))):
                    expr_text.append(lines[j].strip())
                    j += 1
        m = re.match(r"^\s*alertname: (\S+)\s*$", ln)
        if m:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*exp_alerts:", lines[j]):
                j += 1
            if j < len(lines):
                kind = "quiet" if lines[j].strip() == "exp_alerts: []" else "firing"
                alert_cases.setdefault(m.group(1), set()).add(kind)
expr_blob = "\n".join(expr_text)

for name in records:
    c.check(re.search(r"(?<![\w:])%s(?![\w:])" % re.escape(name), expr_blob) is not None,
            "recorded series %s is asserted by a unit test" % name)
for name in alerts:
    got = alert_cases.get(name, set())
    c.check("firing" in got, "alert %s has a unit test where it fires" % name)
    c.check("quiet" in got, "alert %s has a unit test where it does not fire" % name)

# ------------------------------------------------------------- the README
readme_path = os.path.join(RULES, "README.md")
c.check(os.path.exists(readme_path), "deploy/rules/README.md exists")
readme = open(readme_path).read() if os.path.exists(readme_path) else ""
for name in records + alerts:
    c.check("`%s`" % name in readme, "%s is documented in deploy/rules/README.md" % name)
for f in rule_files + test_files:
    base = os.path.relpath(f, RULES)
    c.check(base in readme, "%s is described in deploy/rules/README.md" % base)

# ------------------------------------------------------------ conventions
for fname, kind, name, expr, labels, annotations, lineno in all_rules:
    where = "%s:%d %s" % (fname, lineno, name)
    c.check(expr.strip() != "", "%s: expression read" % where)
    e = strip_strings(expr)
    c.check(re.search(r"\bcluster\s*[=!]~", expr) is None, "%s: no regex matcher on cluster" % where)
    for m in re.finditer(r"\bby\s*\(([^)]*)\)", e):
        labs = [x.strip() for x in m.group(1).split(",") if x.strip()]
        if "cluster" in labs:
            missing = [x for x in STD if x not in labs]
            c.check(not missing, "%s: `by (%s)` keeps the standard labels" % (where, m.group(1)),
                    "missing %s" % missing)
        else:
            c.check("tenant_id" in labs and "region" in labs and fname == "fleet-rollups.yml",
                    "%s: `by (%s)` without cluster only in fleet roll-ups, keeping tenant_id and region"
                    % (where, m.group(1)))
    for m in re.finditer(r"\bwithout\s*\(([^)]*)\)", e):
        labs = [x.strip() for x in m.group(1).split(",")]
        c.check(not [x for x in labs if x in STD], "%s: `without (%s)` drops no standard label"
                % (where, m.group(1)))
    if kind == "alert":
        c.check(re.search(r"severity: (critical|warning|info)\b", labels) is not None,
                "%s: severity label" % where)
        c.check(re.search(r"^\s*summary:", annotations, re.M) is not None, "%s: summary annotation" % where)
        c.check(re.search(r"^\s*description:", annotations, re.M) is not None,
                "%s: description annotation" % where)
    for block in re.findall(r"\{\{(.*?)\}\}", labels + annotations):
        words = re.findall(r"[$A-Za-z_][\w.$]*", re.sub(r'"(?:[^"\\]|\\.)*"', "", block))
        bad = [w for w in words if not (w in TEMPLATE_WORDS or w == "$value" or w.startswith("$labels."))]
        c.check(not bad, "%s: template {{%s}} uses only supported functions" % (where, block), str(bad))

# ------------------------------- rwgate's PromQL engine takes every expression
# Until `rwgate test rules` joins CHECKERS, this at least shows that rwgate's
# parser and function table accept every rule expression and every
# expression the unit tests assert (an instant query over an empty store).
test_exprs = sorted({m.group(1).strip() for f in test_files
                     for m in re.finditer(r"^\s*- expr: (\S.*)$", open(f).read(), re.M)
                     if m.group(1).strip() != "|"})
rw_bin = rwgate_path()
if os.path.exists(rw_bin):
    from rwlib import Rwgate
    g = Rwgate(binary=rw_bin)
    try:
        g.start()
        for fname, kind, name, expr, _l, _a, lineno in all_rules:
            st, body = g.api("/api/v1/query", query=expr, time="1700000000")
            c.check(st == 200 and body.get("status") == "success",
                    "rwgate evaluates %s:%d %s" % (fname, lineno, name), "HTTP %d %r" % (st, body))
        for expr in test_exprs:
            st, body = g.api("/api/v1/query", query=expr, time="1700000000")
            c.check(st == 200 and body.get("status") == "success", "rwgate evaluates test expression %s" % expr,
                    "HTTP %d %r" % (st, body))
    finally:
        g.stop()
        g.cleanup()
else:
    c.check(False, "rwgate binary %s exists" % rw_bin)

c.done()
