"""make_corpus.py - writes the seed corpora of the libFuzzer targets
(tests/fuzz/corpus/<target>/, committed; tests/run.sh fuzzes from them):
valid and slightly broken remote-write 1.0 / 2.0 and remote-read bodies
built with the end-to-end tests' encoders, PromQL expressions from the
conformance files, alert templates and whole rule files from the shipped
rule packs, configuration files, relabel rules. Deterministic: running it
again gives the same files.
    python3 tests/fuzz/make_corpus.py"""

import hashlib
import os
import re
import shutil
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(root, "tests", "e2e"))
sys.path.insert(0, os.path.join(root, "tests", "promql"))
from rwlib import STALE_NAN, read_request, snappy_compress, write_request_v1, write_request_v2  # noqa: E402
import promqltest  # noqa: E402  (its snappy encoder emits copy elements too)


def put(target, blobs):
    d = os.path.join(here, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for b in blobs:
        if isinstance(b, str):
            b = b.encode()
        with open(os.path.join(d, hashlib.sha1(b).hexdigest()[:16]), "wb") as f:
            f.write(b)
    print("%s: %d seeds" % (target, len(blobs)))


def snappies(pb):
    return [snappy_compress(pb), promqltest.snappy_compress(pb)]


T = 1_700_000_000_000
etcd = [("__name__", "etcd_disk_wal_fsync_duration_seconds_bucket"), ("cluster", "c1"),
        ("instance", "10.0.0.1:2381"), ("job", "etcd"), ("le", "0.008")]
v1 = [
    write_request_v1([([("__name__", "up"), ("job", "a")], [(T, 1.0)])]),
    write_request_v1([(etcd, [(T + i * 15000, float(i * 7)) for i in range(20)]),
                      ([("__name__", "m"), ("x", "y" * 300)], [(T, float("inf")), (T + 1, -0.0), (T + 2, STALE_NAN)])],
                     metadata=[(1, "up", "help text", "seconds")]),
    write_request_v1([([("__name__", "h")], [(T, 1.0)], 2, [(T, 0.5)])]),
    write_request_v1([([("job", "a"), ("__name__", "unsorted")], [(T, 1.0)]),
                      ([("__name__", "dup"), ("a", "1"), ("a", "2")], [(T, 1.0)]),
                      ([("__name__", "bad\xff"), ("", "x")], [(T, 1.0)])]),
    write_request_v1([], metadata=[(2, "m", "h", "")]),
]
v2 = [
    write_request_v2([([("__name__", "up"), ("job", "a")], [(T, 1.0)])]),
    write_request_v2([(etcd, [(T + i * 15000, float(i)) for i in range(20)]),
                      ([("__name__", "g")], [(T, 3.5)])], metadata={0: (2, "help", "s")}),
    write_request_v2([([(1, 7)], [(T, 1.0)])], symbols=["", "__name__", "x"]),  # a ref past the table
]
write = []
for pb in v1:
    write += [b"\x00" + s for s in snappies(pb)]
for pb in v2:
    write += [b"\x01" + s for s in snappies(pb)]
good = snappy_compress(v1[1])
write += [b"\x00", b"\x00\x00", b"\x00" + good[:len(good) // 2], b"\x00\xff\xff\xff\xff\x0f" + good[5:],
          b"\x01" + snappy_compress(b"\x0a\x05hello")]
put("fuzz_write", write)

rr = [
    read_request([(0, 2**62, [(0, "__name__", "up")])]),
    read_request([(T, T + 3600000, [(0, "__name__", "etcd_server_has_leader"), (1, "job", "x"),
                                    (2, "instance", "10\\.0\\..*:2381"), (3, "cluster", "eu|us")]),
                  (T, T, [(2, "__name__", ".+"), (0, "cluster", "eu1")])]),
    read_request([(5, 1, [(2, "a", "(")])]),
    read_request([]),
]
read = []
for pb in rr:
    read += snappies(pb)
read += [b"", b"\x05\x00", snappy_compress(rr[1])[:20]]
put("fuzz_remote_read", read)

exprs = []
seen = set()
files = sorted(os.path.join(root, "tests", "promql", "upstream", f) for f in
               os.listdir(os.path.join(root, "tests", "promql", "upstream")) if f.endswith(".test"))
files.append(os.path.join(root, "tests", "promql", "rwgate.test"))
pat = re.compile(r"^eval\w*\s+(?:instant(?:\s+at\s+\S+)?|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(.+)$")
for f in files:
    for line in open(f, encoding="utf-8"):
        m = pat.match(line.strip())
        if m and m.group(1) not in seen:
            seen.add(m.group(1))
            exprs.append(m.group(1))
# every 6th distinct expression: all shapes, few files
promql = exprs[::6] + ['up{job="a"}', 'sum by (le) (rate(x_bucket[5m]))', "(((((1)))))", "1 +", '{a=~"("}',
                       'foo[5m:1m] offset -1h @ end()', '"\\xff"', "sum(" * 50]
put("fuzz_promql", promql)

# alert templates: the annotations of the shipped rule packs, and the
# language's corners (actions, pipelines, functions, variables, errors)
tmpl = set()
rules = os.path.join(root, "deploy", "rules")
for f in sorted(os.listdir(rules)):
    if not f.endswith(".yml"):
        continue
    for line in open(os.path.join(rules, f), encoding="utf-8"):
        m = re.match(r"^\s*(?:summary|description|runbook_url|message)?:?\s*'(.*\{\{.*)'\s*$", line)
        if m:
            tmpl.add(m.group(1).replace("''", "'"))
tmpl = sorted(tmpl)
tmpl += [
    '{{ $labels.instance }} is {{ $value | humanize }}',
    '{{ with query "up" }}{{ range . }}{{ .Labels.instance }}={{ .Value }} {{ end }}{{ else }}none{{ end }}',
    '{{ if gt $value 0.5 }}high{{ else if lt $value 0.1 }}low{{ else }}mid{{ end }}',
    '{{ $x := 1 }}{{ range $i, $e := query "up" }}{{ $i }}{{ $x = 2 }}{{ end }}{{ $x }}',
    '{{- /* comment */ -}}{{ "a" | toUpper | title }}{{ printf "%5.2f|%x|%q" 3.14159 255 "s" }}',
    '{{ $externalLabels.cluster }} {{ externalURL }} {{ humanizeDuration 3661 }} {{ humanizePercentage 0.25 }}',
    '{{ reReplaceAll "(a+)" "<$1>" "caaab" }} {{ match "^a" "abc" }} {{ safeHtml "<b>" }} {{ query "err" }}',
    '{{ range query "" }}x{{ break }}{{ end }}{{ index $labels "job" }} {{ len $labels }}',
    '{{ template "x" }}', '{{ end }}', '{{ if }}', '{{ $value | }}', '{{ "unterminated }}',
]
put("fuzz_template", tmpl)

# relabel rules: one rule per line, tab-separated fields (action byte index,
# source labels, separator, regex, target_label, replacement, modulus), see
# fuzz_relabel.c; every action, RE2 corners and regexes RE2 refuses
A = {n: chr(i) for i, n in enumerate(["replace", "keep", "drop", "keepequal", "dropequal", "hashmod",
                                      "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase"])}


def rule(action, src="", sep=";", regex="(.*)", target="", repl="$1", mod="0"):
    return "\t".join([A[action], src, sep, regex, target, repl, mod])


relabel = [
    rule("replace", "cluster", regex="([a-z]+)-(.*)", target="region"),
    rule("replace", "instance,job", sep="/", regex="(?P<host>[^:]+):.*", target="${host}_x", repl="$host-${1}x$$"),
    rule("keep", "__name__", regex="kubelet_.*|up"),
    rule("drop", "job", regex="kubelet"),
    rule("keepequal", "node", target="node"),
    rule("dropequal", "job", target="cluster"),
    rule("hashmod", "instance", target="shard", mod="7"),
    rule("labelmap", regex="tmp_(.+)", repl="$1"),
    rule("labeldrop", regex="tmp_.*|node"),
    rule("labelkeep", regex="__name__|cluster|job"),
    rule("lowercase", "tmp_x", target="lower"),
    rule("uppercase", "tmp_x", target="upper"),
    "\n".join([rule("replace", "cluster", regex="gz-.*", target="region", repl="gz"),
               rule("labeldrop", regex="pod|service"),
               rule("keep", "__name__", regex=".+")]),
    rule("replace", "a", regex="(a|aa)*c", target="x"),
    rule("replace", "a", regex="a(?=b)", target="x"),
    rule("replace", "a", regex="(\\d+)\\1", target="x"),
    rule("replace", "a", regex="[[:alpha:]]+\\pL*\\v\\s\\Qa.b\\E{2,3}x{,1}", target="x"),
    rule("replace", "a", regex="(", target="x"),
    rule("hashmod", "a", target="s", mod="0"),
    rule("labelmap", regex="(.*)", repl=""),
]
put("fuzz_relabel", relabel)
# configuration files: the shipped example, the Kubernetes manifest's file,
# every section with the keys that parse something (auth hashes, TLS,
# durations, sizes, lists), YAML anchors, several documents, errors
cfgs = [open(os.path.join(root, "deploy", "rwgate.example.yml"), encoding="utf-8").read()]
manifest = open(os.path.join(root, "deploy", "kubernetes", "rwgate.yaml"), encoding="utf-8").read()
embedded = manifest.split("rwgate.yml: |\n")[1].split("\n---")[0]
cfgs.append("\n".join(line[4:] for line in embedded.splitlines()))
cfgs += [
    "http:\n  listen: 0.0.0.0:9201\n  max_connections_per_client: 64\n  read_header_timeout: 10s\n"
    "  tls: {cert_file: '', key_file: '', min_version: TLS13}\n"
    "ingest:\n  tenant_label: tenant_id\n  max_inflight_bytes: 64MiB\n"
    "query:\n  max_concurrent: 4\n  max_memory_bytes: 256MiB\n"
    "auth:\n  open_paths: [/metrics, /-/healthy]\n  tenants:\n"
    "    - name: team-a\n      bearer_token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "      permissions: [write, read]\n"
    "    - name: dash\n      basic_auth: {username: grafana, password_pbkdf2: 'pbkdf2-sha256$1000$"
    "10089690115e3b162af661feea52f9ae$463ba481f64651c972cdd90020f2ee4e32cf2165214e5b57c762422d789970fe'}\n"
    "      permissions: [read]\n      read_tenants: ['*', team-a]\n"
    "global:\n  external_labels: {central: eu-1, &a region: *a}\n",
    "store:\n  retention: 1y2w3d\n  shards: 3\n  max_series: 0\n---\nquery: {timeout: 1ms}\n",
    "ingest:\n  max_body_bytes: 1.5GiB\n  unknown: [1, {a: b}]\n",
    "auth:\n  tenants:\n  - name: x\n    bearer_token_sha256: abc\n    permissions: [root]\n",
    "http: [not, a, map]\n", "{a: [b, {c: d}]}", "- - -\n", "key: 'unterminated\n",
]
put("fuzz_config", cfgs)

# rule files: the shipped rule packs whole, promtool's corners (every group
# and rule field, group labels under rule labels, templates in labels and
# annotations, YAML anchors, several documents) and its errors (shape,
# validation, expressions, templates)
rule_files = [open(os.path.join(rules, f), encoding="utf-8").read()
              for f in sorted(os.listdir(rules)) if f.endswith(".yml")]
rule_files += [
    "",
    "groups: []\n",
    "groups:\n- name: empty\n  rules: []\n",
    "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  limit: 10\n  labels: {team: a, env: prod}\n"
    "  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {env: dev, source: rec}\n"
    "  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 10m\n"
    "    labels: {severity: page, instance: '{{ $labels.instance }}'}\n"
    "    annotations:\n      summary: '{{ $labels.job }} down for {{ $value | humanizeDuration }}'\n"
    "      description: |\n        {{ with query \"up\" }}{{ . | first | value }}{{ end }} {{ $externalLabels.cluster }}\n",
    "groups:\n- name: anchors\n  labels: &l {a: b}\n  rules:\n  - &r {alert: A, expr: 'vector(1)', labels: *l}\n"
    "  - {alert: B, expr: 'vector(1)', labels: *l, annotations: *l}\n",
    "groups:\n- name: a\n  rules:\n  - record: x\n    expr: '1'\n---\ngroups:\n- name: b\n",
    "groups:\n- name: g\n  labels: {broken: '{{ .Foo'}\n  rules:\n  - alert: A\n    expr: '1'\n",
    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'rate(x[5m]) > bool 0 unless on(job) y offset 1h @ 100'\n"
    "    for: 0s\n  - alert: A\n    expr: '1'\n  - record: 'r:total'\n    expr: 'sum(rate(x[1m]))'\n"
    "  - record: 'r:total'\n    expr: 'sum(rate(x[1m]))'\n",
    # errors
    "groups:\n- name: g\n  rules:\n  - record: x\n    alert: y\n    expr: '1'\n",
    "groups:\n- name: g\n  rules:\n  - expr: '1'\n  - record: x\n  - null\n  - [1]\n",
    "groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'sum(('\n  - alert: y\n    expr: '{a=~\"(\"}'\n",
    "groups:\n- name: g\n  rules:\n  - record: 'x{a=\"b\"}'\n    expr: '1'\n    for: 1m\n    keep_firing_for: 1m\n"
    "    annotations: {a: b}\n    labels: {__name__: x, '': y}\n",
    "groups:\n- name: g\n- name: g\n- name: ''\n- {}\n- null\n- 7\n",
    "groups:\n- name: g\n  unknown: 1\n  interval: 5x\n  limit: many\n  query_offset: -1m\n  rules: {a: b}\n",
    "groups:\n- name: g\n  name: h\n  rules:\n  - alert: A\n    alert: B\n    expr: '1'\n    for: [1]\n",
    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '1'\n    labels: {l: '{{ end }}'}\n"
    "    annotations: {a: '{{ template \"x\" }}', b: '{{ $undefined }}', c: '{{ nosuchfunc 1 }}'}\n",
    "groups:\n- name: g\n  labels: {'\\xff': v, __name__: n}\n  rules:\n  - alert: \"\\xff\"\n    expr: '1'\n",
    "groups: {a: b}\n", "groups: 1\n", "- a\n- b\n", "rules: []\n", "groups:\n- name: [x]\n",
    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 1\n    labels: {a: [1], b: {c: d}, 1: 2}\n",
    "a: &a [*a, *a]\n",
    "l0: &l0 [x, x, x, x, x, x, x, x]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n"
    "l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\ngroups: [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\n",
    "groups:\n- name: 'unterminated\n",
    "groups:\n\t- name: tab\n",
    b"groups:\n- name: g\x00\n  rules: []\n",
    b"\xef\xbb\xbfgroups:\n- name: bom\n",
]
put("fuzz_rules", rule_files)
