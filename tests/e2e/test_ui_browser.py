"""test_ui_browser - the built-in web UI in a real browser: Debian's chromium,
headless, driven over the DevTools protocol (tests/e2e/cdp.py), against an
rwgate loaded with a small synthetic fleet (tests/e2e/fleetdata.py: 2 regions
x 2 scenarios x 2 sizes x 2 clusters, one cluster with an injected fault).

Serving: CSP and nosniff on every answer, gzip and identity bodies equal,
ETag/304, immutable hashed assets, 404 for unknown pages and stale hashes.
Every page: reaches its ready state with no exception, console error, CSP
violation, failed request, HTTP error or request to another host; a
screenshot of each is kept in build/ui-screenshots/. Then: a query draws
the expected series and points with painted pixels; Table and JSON agree
with the API; stacked mode; a bucket query becomes a heatmap; the fleet
tile shows the right share and leads to the scenario page with the faulty
cluster first, which leads to its cluster page whose queries select only
that cluster; a reload restores the state from the URL; the dark theme
changes the background. The alerts and rules pages page on the server:
rwgate loads a rule file of 23 groups whose alerting rules raise 174 alerts
over synthetic probe series, so /ui/alerts and /ui/rules need a second page;
each page shows what the API's page holds, the next page other alerts or
groups, both together everything, the previous page the first again, and
the filters (form and URL) select on the server. /ui/sources lists the
clusters /api/v1/status/sources reports. A build with -DRWGATE_UI=OFF must
answer 404 with a message saying so instead."""

import gzip
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402
import fleetdata  # noqa: E402
import rwlib  # noqa: E402
from rwlib import Checks, http, log  # noqa: E402

c = Checks("test_ui_browser")
SHOTS = os.path.join(os.path.dirname(rwlib.rwgate_path()), "ui-screenshots")


def api(rw, path, **params):
    st, body = rw.api(path, **params)
    if st != 200:
        raise RuntimeError("%s: HTTP %d %s" % (path, st, body))
    return body["data"]


def metric_name(m):
    """The way the UI writes a label set (util.js metricName)."""
    name = m.get("__name__", "")
    rest = ", ".join("%s=%s" % (k, json.dumps(v, ensure_ascii=False)) for k, v in m.items() if k != "__name__")
    return "%s{%s}" % (name, rest) if rest else (name or "{}")


def saturated(rows, min_spread=70):
    """Pixels with colour (series lines, areas, heat cells), not the greys of
    text, axes and grid."""
    return sum(1 for row in rows for px in row if max(px) - min(px) >= min_spread)


def serving(rw):
    base = rw.url
    st, hd, body = http("GET", base + "/ui/fleet")
    c.eq(st, 200, "shell status")
    c.check(hd.get("content-security-policy", "").startswith("default-src 'self'"), "CSP on the shell",
            hd.get("content-security-policy"))
    c.eq(hd.get("x-content-type-options"), "nosniff", "nosniff")
    c.eq(hd.get("cache-control"), "no-cache", "the shell is revalidated")
    html = body.decode()
    c.check("<script" in html and "<script>" not in html.replace(" ", ""), "no inline script in the shell")
    c.check("style=" not in html and "<style" not in html, "no inline style in the shell")
    prefix = html.split('src="', 1)[1].split("/js/app.js", 1)[0]
    c.check(prefix.startswith("/ui/a/") and len(prefix) == len("/ui/a/") + 16, "hashed asset prefix", prefix)
    st, hd, gz = http("GET", base + prefix + "/js/app.js", headers={"Accept-Encoding": "gzip"})
    c.eq((st, hd.get("content-encoding")), (200, "gzip"), "gzip answer when accepted")
    c.eq(hd.get("cache-control"), "public, max-age=31536000, immutable", "immutable hashed asset")
    c.check(hd.get("content-type", "").startswith("text/javascript"), "content type of a module")
    st2, hd2, plain = http("GET", base + prefix + "/js/app.js")
    c.check(st2 == 200 and "content-encoding" not in hd2, "identity answer without Accept-Encoding")
    c.eq(gzip.decompress(gz), plain, "gzip and identity bodies are the same file")
    st, _, _ = http("GET", base + prefix + "/js/app.js", headers={"Accept-Encoding": "gzip",
                                                                 "If-None-Match": hd["etag"]})
    c.eq(st, 304, "ETag revalidation gives 304")
    st, _, _ = http("GET", base + prefix + "/js/app.js", headers={"If-None-Match": '"nope"'})
    c.eq(st, 200, "another ETag gives the file")
    st, hd, _ = http("GET", base + "/ui/a/0000000000000000/js/app.js")
    c.check(st == 404 and "default-src" in hd.get("content-security-policy", ""), "stale asset hash: 404")
    st, _, b = http("GET", base + "/ui/nosuchpage")
    c.check(st == 404 and b"/ui/fleet" in b, "unknown page: 404 naming the pages", b[:200])
    st, hd, _ = http("GET", base + "/favicon.ico")
    c.check(st == 200 and hd.get("content-type") == "image/svg+xml", "favicon")
    st, hd, _ = http("GET", base + "/")
    c.check(st == 302 and hd.get("location") == "/ui/", "/ redirects to the UI")
    total = 0
    for name in ("js/app.js", "vendor/uPlot.esm.js", "css/app.css"):
        st, hd, b = http("GET", base + prefix + "/" + name, headers={"Accept-Encoding": "gzip"})
        c.eq(st, 200, "asset " + name)
        total += len(b)
    c.check(total < 150 * 1024, "the main assets stay within the budget", total)
    st, _, lic = http("GET", base + prefix + "/vendor/uPlot-LICENSE.txt")
    c.check(st == 200 and b"MIT" in lic, "uPlot's licence is served with it")


def page_ok(p, rw, what, shot=None):
    probs = p.problems(rw.url)
    c.check(not probs, what + ": no errors", "\n  " + "\n  ".join(probs))
    if shot:
        p.screenshot(os.path.join(SHOTS, shot + ".png"))


def goto(p, rw, path, what, shot=None):
    p.reset()
    try:
        p.goto(rw.url + path)
    except cdp.CDPError as e:
        c.check(False, what + ": ready", str(e))
        return False
    c.check(True, what + ": ready")
    page_ok(p, rw, what, shot)
    return True


def chart_data(p, sel="#query-chart"):
    return p.eval("JSON.stringify(document.querySelector(%s)?.dataset || null)" % json.dumps(sel))


def query_page(p, rw, now_s):
    end = (now_s // 60) * 60
    expr = 'sum by (cluster) (rate(etcd_server_proposals_committed_total{region="eu-west"}[5m]))'
    q = urllib.parse.urlencode({"g0.expr": expr, "g0.range_input": "1h", "g0.end_input": str(end),
                                "g0.step_input": "60s", "g0.tab": "0"})
    if not goto(p, rw, "/ui/query?" + q, "query graph", "query-graph"):
        return
    want = api(rw, "/api/v1/query_range", query=expr, start=end - 3600, end=end, step=60)["result"]
    ds = json.loads(chart_data(p))
    c.eq(int(ds["series"]), len(want), "query chart: series as the API answers")
    c.eq(len(want), 8, "query chart: one series per eu-west cluster")
    c.eq(int(ds["points"]), sum(len(s["values"]) for s in want), "query chart: points as the API answers")
    w, h, rows = cdp.png_pixels(p.screenshot(selector="#query-chart canvas"))
    c.check(saturated(rows) > 500, "query chart: painted pixels", saturated(rows))

    # reload restores the view from the URL
    p.reset()
    p.reload()
    c.eq(p.eval("document.querySelector('.expr textarea').value"), expr, "reload keeps the expression")
    c.eq(json.loads(chart_data(p))["series"], ds["series"], "reload draws the same chart")
    page_ok(p, rw, "query after reload")

    # Table and JSON agree with the API
    t = end - 120
    q = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "1", "g0.moment_input": str(t)})
    if goto(p, rw, "/ui/query?" + q, "query table", "query-table"):
        want = api(rw, "/api/v1/query", query=expr, time=t)
        rows = p.eval("[...document.querySelectorAll('.result-table tbody tr')].map(r =>"
                      " [r.cells[0].textContent, r.cells[1].textContent])")
        c.eq(sorted(map(tuple, rows)), sorted((metric_name(s["metric"]), s["value"][1]) for s in want["result"]),
             "Table tab = API")
        p.click("button[data-tab=json]")
        txt = p.wait("document.querySelector('pre.json')?.textContent", 20, "the JSON tab")
        c.eq(json.loads(txt), want, "JSON tab = API")
        c.check("g0.tab=json" in p.eval("location.search"), "the tab is in the URL")
        page_ok(p, rw, "query json")

    # stacked mode
    q = urllib.parse.urlencode({"g0.expr": expr, "g0.range_input": "1h", "g0.end_input": str(end),
                                "g0.tab": "graph", "g0.display_mode": "stacked"})
    if goto(p, rw, "/ui/query?" + q, "query stacked", "query-stacked"):
        c.eq(json.loads(chart_data(p))["kind"], "stacked", "stacked mode")

    # histogram buckets become a heatmap
    expr = 'sum by (le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{cluster="%s"}[5m]))' % fleetdata.FAULTY
    q = urllib.parse.urlencode({"g0.expr": expr, "g0.range_input": "2h", "g0.end_input": str(end), "g0.tab": "0"})
    if goto(p, rw, "/ui/query?" + q, "query heatmap", "query-heatmap"):
        ds = json.loads(chart_data(p))
        c.eq((ds["kind"], ds["series"]), ("heatmap", str(len(fleetdata.ETCD_BUCKETS) + 1)),
             "bucket series drawn as a heatmap with a row per bucket")
        _, _, rows = cdp.png_pixels(p.screenshot(selector="#query-chart canvas"))
        c.check(saturated(rows, 40) > 2000, "heatmap: painted cells", saturated(rows, 40))

    # suggestions from the API
    if goto(p, rw, "/ui/query", "query empty"):
        p.click(".expr textarea")
        p.type_text("etcd_disk_wal")
        items = p.wait("[...document.querySelectorAll('.suggest li')].map(l => l.firstChild.textContent)",
                       15, "metric name suggestions")
        c.check("etcd_disk_wal_fsync_duration_seconds_bucket" in items, "metric names suggested", items)
        p.type_text('_fsync_duration_seconds_bucket{cluster="eu-west-core-s')
        items = p.wait("[...document.querySelectorAll('.suggest li')].map(l => l.firstChild.textContent)"
                       ".filter(t => t.startsWith('eu-west-core-s'))", 15, "label value suggestions")
        c.eq(sorted(items), ["eu-west-core-small-1", "eu-west-core-small-2"], "label values suggested")
        page_ok(p, rw, "query suggestions")


def drill_down(p, rw, truth):
    if not goto(p, rw, "/ui/fleet", "fleet", "fleet"):
        return
    fs = [t["fsync"][0] > 0 for name, t in truth.items() if name.startswith("eu-west-")]
    want = sum(fs) / len(fs)
    tile = '.region[data-region="eu-west"] .tile[data-slo="fsync"]'
    got = p.eval("document.querySelector(%s)?.dataset.share" % json.dumps(tile))
    c.check(got is not None and abs(float(got) - want) < 1e-9, "fleet tile: share within budget", (got, want))
    c.eq(p.eval("document.querySelector(%s + ' .share').textContent" % json.dumps(tile)), "87.5%",
         "fleet tile: the share as shown")
    spark = p.eval("JSON.stringify(document.querySelector(%s + ' .spark').dataset)" % json.dumps(tile))
    c.check(int(json.loads(spark)["points"]) >= 7 * 24, "fleet tile: 7-day sparkline", spark)
    p.reset()
    p.click(tile)
    p.wait("location.pathname === '/ui/scenario'", 15, "the scenario page")
    p.wait_ready()
    c.eq(urllib.parse.parse_qs(p.eval("location.search")[1:]), {"region": ["eu-west"], "slo": ["fsync"]},
         "tile leads to the region's scenario page for its SLO")
    page_ok(p, rw, "scenario", "scenario")
    first = p.eval("document.querySelector('#clusters tr[data-cluster]')?.dataset.cluster")
    c.eq(first, fleetdata.FAULTY, "scenario: the faulty cluster first")
    cells = p.eval("(() => { const keys = [...document.querySelectorAll('th[data-key]')].map(t => t.dataset.key);"
                   " const r = document.querySelector('#clusters tr[data-cluster]');"
                   " return Object.fromEntries(keys.map((k, i) => [k, r.cells[i + 1].textContent])); })()")
    c.eq({k: cells.get(k) for k in ("budget", "burn1h", "fsync", "commit", "snapshot", "alerts")},
         {"budget": "-35%", "burn1h": "24×", "fsync": "120ms", "commit": "250ms", "snapshot": "1h30m", "alerts": "2"},
         "scenario: the faulty cluster's figures, formatted")
    n = p.eval("document.querySelector('#clusters').dataset.total")
    c.eq(n, "8", "scenario: every eu-west cluster listed")
    cell = p.eval("document.querySelector('td.cell[data-cell=\"rke2/core|small\"] a div').textContent")
    c.eq(cell, "50%", "scenario matrix: rke2/core small has 1 of 2 within budget")

    # sort by another column, then reload: the order comes back from the URL
    p.click('th[data-key="snapshot"]')
    p.wait("location.search.includes('sort=snapshot')", 10, "sort in the URL")
    p.wait_ready()
    order = p.eval("[...document.querySelectorAll('#clusters tr[data-cluster]')].map(r => r.dataset.cluster)")
    p.reset()
    p.reload()
    c.eq(p.eval("[...document.querySelectorAll('#clusters tr[data-cluster]')].map(r => r.dataset.cluster)"),
         order, "reload restores the sorted table")
    c.eq(p.eval("document.querySelector('th.sorted')?.dataset.key"), "snapshot", "reload restores the sort column")
    page_ok(p, rw, "scenario after reload")

    p.reset()
    p.click('#clusters tr[data-cluster="%s"] a' % fleetdata.FAULTY)
    p.wait("location.pathname === '/ui/cluster/%s'" % fleetdata.FAULTY, 15, "the cluster page")
    p.wait_ready(60)
    page_ok(p, rw, "cluster", "cluster")
    queries = cluster_queries(p)
    c.check(len(queries) >= 15, "cluster page: its panels queried", len(queries))
    others = [q for q in queries if 'cluster="%s"' % fleetdata.FAULTY not in q]
    c.check(not others, "cluster page: every query selects the cluster", others)
    charts = p.eval("[...document.querySelectorAll('.panel .chart')].map(e => e.dataset.kind + ':' + e.dataset.series)")
    c.check(charts and all(not x.endswith(":0") for x in charts if not x.startswith("table")),
            "cluster page: every chart has series", charts)
    legends = p.eval("[...document.querySelectorAll('section[data-title=\"Has leader\"] .u-legend th')]"
                     ".map(e => e.textContent).filter(t => t.includes(':2379'))")
    inst = "10.%d.0." % (fleetdata.zlib.crc32(fleetdata.FAULTY.encode()) % 200)
    c.check(len(legends) == 3 and all(l.startswith(inst) for l in legends),
            "cluster page: the chart's series are the cluster's members only", legends)
    # every chart visibly drew its data (a NaN in the data once blanked a chart)
    n = p.eval("document.querySelectorAll('.panel .chart[data-points] canvas').length")
    blank = []
    for i in range(n):
        title = p.eval("[...document.querySelectorAll('.panel .chart[data-points] canvas')][%d]"
                       ".closest('section').dataset.title" % i)
        p.eval("document.querySelectorAll('.panel .chart[data-points] canvas').forEach((e, j) =>"
               " e.id = j === %d ? 'shot-target' : '')" % i)
        _, _, rows = cdp.png_pixels(p.screenshot(selector="#shot-target"))
        if saturated(rows, 40) < 50:
            blank.append(title)
    c.check(n >= 12 and not blank, "cluster page: every chart painted its data", (n, blank))
    heat = p.eval("[...document.querySelectorAll('.chart[data-kind=heatmap]')].length")
    c.eq(heat, 2, "cluster page: fsync and commit heatmaps")
    errs = p.eval("[...document.querySelectorAll('.panel[data-error]')].map(e => e.dataset.title + ': ' + e.dataset.error)")
    c.eq(errs, [], "cluster page: no panel failed")

    p.reset()
    p.click("#troubleshoot-link")
    p.wait("location.pathname.endsWith('/troubleshoot')", 15, "the troubleshoot page")
    p.wait_ready(60)
    page_ok(p, rw, "troubleshoot", "troubleshoot")
    marks = p.eval("Object.fromEntries([...document.querySelectorAll('[data-annotation]')]"
                   ".map(e => [e.dataset.annotation, +e.dataset.count]))")
    c.check(marks.get("leader change", 0) >= 3 and marks.get("snapshot error", 0) >= 1,
            "troubleshoot: leader change and snapshot error annotations", marks)
    # one cursor for all charts: hovering one moves the others'
    x, y, w, h = p.rect(".panel .chart .u-over")
    p.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + w * 0.6, "y": y + h / 2})
    moved = p.wait("[...document.querySelectorAll('.u-cursor-x')].filter(e => e.style.transform && "
                   "!e.classList.contains('u-off')).length", 5, "synced cursors")
    c.check(moved >= 6, "troubleshoot: cursor synced across the charts", moved)
    queries = cluster_queries(p)
    c.check(queries and all('cluster="%s"' % fleetdata.FAULTY in q for q in queries),
            "troubleshoot: every query selects the cluster")


def cluster_queries(p):
    out = []
    for rid, url in p.requests.items():
        if "/api/v1/query" in url:
            body = p.send("Network.getRequestPostData", {"requestId": rid}).get("postData", "")
            out.append(urllib.parse.parse_qs(body).get("query", [""])[0])
    return out


def other_pages(p, rw):
    if goto(p, rw, "/ui/cardinality?" + urllib.parse.urlencode(
            {"match": '{cluster="%s"}' % fleetdata.FAULTY, "focusLabel": "__name__"}), "cardinality", "cardinality"):
        want = api(rw, "/api/v1/series", **{"match[]": '{cluster="%s"}' % fleetdata.FAULTY})
        shown = p.eval("document.querySelector('#card-total b').textContent")
        c.eq(shown, str(len(want)), "cardinality: the selector's series count")
        c.check(p.eval("document.querySelectorAll('#by-focus tr').length") == 10, "cardinality: focus label values")
    for path, name, needs in (("/ui/alerts", "alerts", "/api/v1/alerts"), ("/ui/rules", "rules", "/api/v1/rules"),
                              ("/ui/sources", "sources", "/api/v1/status/sources")):
        st, _, _ = http("GET", rw.url + needs)
        if st == 404:
            log("SKIP %s: this build has no %s yet" % (path, needs))
            continue
        if name == "alerts":
            alerts_pages(p, rw)
        elif name == "rules":
            rules_pages(p, rw)
        elif goto(p, rw, path, name, name):
            sources_page(p, rw)


# The paging fixture: rules raising more alerts than /ui/alerts shows on a
# page (100) and more groups than /ui/rules does (20).
N_PROBES = 130  # ui_paging_probe series; every third (44) also has a pending alert
N_RULE_GROUPS = 22


def paging_rules():
    out = ["groups:"]
    for i in range(N_RULE_GROUPS):
        out += ["  - name: ui-%02d" % i, "    interval: 1s", "    rules:",
                "      - record: ui:paging_probe:count_%02d" % i, "        expr: count(ui_paging_probe)"]
    out += ["  - name: ui-alerts", "    interval: 1s", "    rules:",
            "      - alert: UiProbeDown", "        expr: ui_paging_probe == 0", "        labels: {severity: warning}",
            "        annotations: {summary: 'probe {{ $labels.cluster }} down'}",
            "      - alert: UiProbeSlow", '        expr: ui_paging_probe{shard="a"} == 0', "        for: 1h",
            "        labels: {severity: info}"]
    return "\n".join(out) + "\n"


def next_page(p, rw, what):
    """Follows the pager's next link (same-document navigation)."""
    p.reset()
    p.click("#next-page")
    p.wait("location.search.includes('token=')", 15, what + " in the URL")
    p.wait_ready()
    page_ok(p, rw, what, what.replace(" ", "-"))


def shown_alerts(p):
    return [tuple(r) for r in p.eval("[...document.querySelectorAll('#alerts tbody tr[data-alert]')]"
                                     ".map(r => [r.dataset.alert, r.cells[2].textContent, r.cells[0].textContent])")]


def api_alerts(rw, **params):
    d = api(rw, "/api/v1/alerts", **params)
    return [(a["labels"]["alertname"], a["labels"].get("cluster", ""), a["state"]) for a in d["alerts"]], d


def alerts_pages(p, rw):
    t = int(time.time() * 1000)
    series = [([("__name__", "ui_paging_probe"), ("cluster", "ui-%03d" % i), ("shard", "a" if i % 3 == 0 else "b")],
               [(t, 0)]) for i in range(N_PROBES)]
    st, _, _ = rw.write(rwlib.write_request_v1(series))
    c.eq(st, 204, "write the paging probes")
    n_pending = len(range(0, N_PROBES, 3))
    want_n = N_PROBES + n_pending
    deadline = time.time() + 60
    every = []
    while time.time() < deadline:
        every, _ = api_alerts(rw, limit=1000)
        if len(every) == want_n:
            break
        time.sleep(0.3)
    if not c.eq(len(every), want_n, "alerts: the rules raised every alert"):
        return
    if not goto(p, rw, "/ui/alerts", "alerts", "alerts"):
        return
    first = shown_alerts(p)
    want, d = api_alerts(rw, limit=100)
    c.eq(first, want, "alerts page 1: the API's first page of 100, in its order")
    c.check("%d match" % want_n in p.eval("document.querySelector('.pager').textContent"),
            "alerts page 1: the total shown")
    c.check(p.eval("!!document.querySelector('#next-page')"), "alerts page 1: a next link")
    next_page(p, rw, "alerts page 2")
    second = shown_alerts(p)
    c.eq(len(second), want_n - 100, "alerts page 2: the rest")
    c.eq(second, api_alerts(rw, limit=100, next_token=d["nextToken"])[0], "alerts page 2: the API's second page")
    c.check(not set(first) & set(second), "alerts page 2: other alerts than page 1")
    c.eq(first + second, every, "alerts: both pages hold every alert once, in order")
    c.check(p.eval("!document.querySelector('#next-page')"), "alerts page 2: the last")
    p.reset()
    p.click(".pager button")
    p.wait("!location.search.includes('token=')", 15, "back to the first page")
    p.wait_ready()
    c.eq(shown_alerts(p), first, "alerts: previous shows page 1 again")
    page_ok(p, rw, "alerts back to page 1")

    # filters go to the server: from the URL and from the form
    if goto(p, rw, "/ui/alerts?state=pending", "alerts state=pending", "alerts-pending"):
        rows = shown_alerts(p)
        c.eq(rows, api_alerts(rw, state="pending", limit=100)[0], "alerts state=pending: the API's")
        c.eq((len(rows), {r[0] for r in rows}), (n_pending, {"UiProbeSlow"}), "alerts state=pending: the pending")
    p.reset()
    p.eval("document.querySelector('input[name=cluster]').value = 'ui-006';"
           " document.querySelector('form.toolbar').requestSubmit()")
    p.wait("location.search.includes('cluster=ui-006')", 15, "the filter in the URL")
    p.wait_ready()
    c.eq(shown_alerts(p), [("UiProbeSlow", "ui-006", "pending")],
         "alerts filter form: cluster, with the state from the URL")
    page_ok(p, rw, "alerts filtered by the form")
    if goto(p, rw, "/ui/alerts?severity=warning&cluster=ui-009", "alerts severity filter"):
        c.eq(shown_alerts(p), [("UiProbeDown", "ui-009", "firing")], "alerts: severity and cluster filter")


def shown_groups(p):
    return p.eval("[...document.querySelectorAll('table.rules[data-group]')].map(t => t.dataset.group)")


def rules_pages(p, rw):
    groups = [g["name"] for g in api(rw, "/api/v1/rules")["groups"]]
    c.eq(len(groups), N_RULE_GROUPS + 1, "rules: every group loaded")
    if not goto(p, rw, "/ui/rules", "rules", "rules"):
        return
    first = shown_groups(p)
    d = api(rw, "/api/v1/rules", group_limit=20)
    c.eq(first, [g["name"] for g in d["groups"]], "rules page 1: the API's first 20 groups")
    c.eq(len(first), 20, "rules page 1: 20 groups")
    next_page(p, rw, "rules page 2")
    second = shown_groups(p)
    c.eq(second, [g["name"] for g in api(rw, "/api/v1/rules", group_limit=20,
                                         group_next_token=d["groupNextToken"])["groups"]],
         "rules page 2: the API's second page")
    c.eq(first + second, groups, "rules: both pages hold every group once, in order")
    c.check(p.eval("!document.querySelector('#next-page')"), "rules page 2: the last")
    if goto(p, rw, "/ui/rules?type=alert&severity=info", "rules filtered"):
        rows = p.eval("[...document.querySelectorAll('table.rules tbody tr')].map(r => r.cells[0].textContent)")
        c.eq(rows, ["UiProbeSlow"], "rules: type and severity filter on the server")


def sources_page(p, rw):
    want = sorted({s["cluster"] for s in api(rw, "/api/v1/status/sources")["sources"] if s.get("cluster")})
    shown = p.eval("[...document.querySelectorAll('#sources tbody tr')].map(r => r.querySelector('a')?.textContent)"
                   ".filter(x => x)")
    c.check(len(want) >= 16 + N_PROBES, "sources: the fleet's clusters reported by the API", len(want))
    c.eq(sorted(shown), want, "sources: one row per cluster the API reports")
    c.check(fleetdata.FAULTY in shown, "sources: the faulty cluster listed")
    heads = p.eval("[...document.querySelectorAll('#sources th')].map(t => t.textContent)")
    c.check(heads[:2] == ["tenant", "cluster"] and "newest sample age seconds" in heads,
            "sources: the known columns first", heads)
    p.reset()
    p.eval("document.querySelector('form.toolbar input').value = %s;"
           " document.querySelector('form.toolbar').requestSubmit()" % json.dumps(fleetdata.FAULTY))
    p.wait("location.search.includes('q=')", 15, "the sources filter in the URL")
    p.wait_ready()
    rows = p.eval("[...document.querySelectorAll('#sources tbody tr')].map(r => r.querySelector('a')?.textContent)")
    c.eq(rows, [fleetdata.FAULTY], "sources: the filter keeps the one cluster")
    page_ok(p, rw, "sources filtered")


def theme(p, rw):
    if not goto(p, rw, "/ui/fleet", "fleet for the theme"):
        return
    light = p.eval("getComputedStyle(document.body).backgroundColor")
    for _ in range(3):
        if p.eval("document.documentElement.dataset.theme") == "dark":
            break
        p.click("#theme")
        p.wait_ready()
    c.eq(p.eval("document.documentElement.dataset.theme"), "dark", "the theme button reaches dark")
    dark = p.eval("getComputedStyle(document.body).backgroundColor")
    c.check(dark != light, "dark theme changes the background", (light, dark))
    p.screenshot(os.path.join(SHOTS, "fleet-dark.png"))
    p.reset()
    p.reload()
    c.eq(p.eval("getComputedStyle(document.body).backgroundColor"), dark, "the theme survives a reload")
    if goto(p, rw, "/ui/cluster/%s" % fleetdata.FAULTY, "cluster in the dark theme", "cluster-dark"):
        pass
    p.click("#theme")  # back to auto for anything after
    p.wait_ready()


def many_clusters(p, rw):
    """The scenario table holds thousands of clusters without putting them
    all in the document: only the rows in view exist, scrolling shows the
    rest. Written last: a region of its own ("big") that no other check reads."""
    # a little in the past: the page asks at whole seconds of its clock
    now = int(time.time() * 1000) - 5000
    series = []
    for i in range(3000):
        lab = [("cluster", "big-%04d" % i), ("product", "rke2"), ("region", "big"), ("scenario", "core"),
               ("size", "small"), ("slo", "fsync")]
        series.append((sorted([("__name__", "etcd:slo_error_budget_remaining:ratio30d")] + lab), [(now, 1 - i / 3000)]))
    for k in range(0, len(series), 1000):
        st, _, body = rw.write(rwlib.write_request_v1(series[k:k + 1000]))
        c.eq(st, 204, "write 1000 clusters")
    if not goto(p, rw, "/ui/scenario?region=big", "scenario with 3000 clusters"):
        return
    total, in_dom, first = p.eval("[document.querySelector('#clusters').dataset.total,"
                                  " document.querySelectorAll('#clusters tr[data-cluster]').length,"
                                  " document.querySelector('#clusters tr[data-cluster]').dataset.cluster]")
    c.eq((total, first), ("3000", "big-2999"), "3000 clusters, the lowest budget first")
    c.check(in_dom < 100, "virtualised: only the rows in view are in the document", in_dom)
    p.eval("document.querySelector('.scroller').scrollTop = 1e9")
    last = p.wait("(() => { const r = [...document.querySelectorAll('#clusters tr[data-cluster]')];"
                  " return r.length && r[r.length - 1].dataset.cluster === 'big-0000' && r.length; })()",
                  10, "the last row after scrolling")
    c.check(last and last < 100, "scrolling to the end shows the last cluster", last)
    page_ok(p, rw, "scenario with 3000 clusters")


def main():
    tmp = tempfile.mkdtemp(prefix="rwgate-ui-")
    with open(os.path.join(tmp, "paging.yml"), "w") as f:
        f.write(paging_rules())
    cfg = os.path.join(tmp, "rwgate.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  evaluation_interval: 1s\n  rule_query_offset: 0s\nrule_files: [paging.yml]\n")
    rw = rwlib.Rwgate(extra=["--config", cfg]).start()
    try:
        st, _, body = http("GET", rw.url + "/ui/fleet")
        if st == 404 and b"RWGATE_UI=OFF" in body:
            c.check(True, "built without the UI: /ui/ answers 404 saying so")
            c.done()
        browser_bin = cdp.find_chromium()
        if not c.check(browser_bin is not None, "chromium is installed (deploy/install-deps.sh)"):
            c.done()
        now_ms, truth = fleetdata.load(rw)
        os.makedirs(SHOTS, exist_ok=True)
        serving(rw)
        b = cdp.Browser(browser_bin)
        try:
            p = b.page()
            query_page(p, rw, now_ms // 1000)
            drill_down(p, rw, truth)
            other_pages(p, rw)
            theme(p, rw)
            many_clusters(p, rw)
        finally:
            b.close()
        log("screenshots in %s" % SHOTS)
    finally:
        rw.stop()
        rw.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == "__main__":
    main()
