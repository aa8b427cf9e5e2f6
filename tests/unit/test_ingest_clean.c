/* test_ingest_clean.c - the write path's cleaning stages end to end in one
 * process: remote-write 1.0 bodies through rw_ingest_write into a real
 * store, configured from YAML like the `ingest:` section of rwgate.yml.
 * Relabeling (global and per tenant) with dropped and invalid series
 * counted, the inventory's labels, HA pairs (one copy stored, the replica
 * label gone, failover by sample time without duplicates or regressions,
 * elections kept across a reload and a restart), kubelet dedup fed by KSM
 * series in the same requests, per-tenant limits (label limits naming the
 * limit, max_series, the ingestion rate with Retry-After), and the status
 * reports. */
#include <snappy-c.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/cfg.h"
#include "ingest/ingest_int.h"
#include "proto/remote.pb-c.h"
#include "proto/write_v2.pb-c.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

/* ---- a request builder ---- */

#define MAXS 64

typedef struct req {
    Prometheus__TimeSeries ts[MAXS];
    Prometheus__TimeSeries *tsp[MAXS];
    Prometheus__Label l[MAXS][16];
    Prometheus__Label *lp[MAXS][16];
    Prometheus__Sample s[MAXS][8];
    Prometheus__Sample *sp[MAXS][8];
    char text[MAXS][512];
    size_t n;
} req;

/* adds a series "name{a=b,c=d}" with samples (t, v) pairs, t in seconds */
static void add(req *r, const char *series, int ns, ...)
{
    size_t i = r->n++;
    Prometheus__TimeSeries *ts = &r->ts[i];
    prometheus__time_series__init(ts);
    snprintf(r->text[i], sizeof r->text[i], "%s", series);
    char *p = r->text[i];
    char *brace = strchr(p, '{');
    size_t nl = 0;
    prometheus__label__init(&r->l[i][nl]);
    r->l[i][nl].name = "__name__";
    r->l[i][nl].value = p;
    nl++;
    if (brace) {
        *brace = '\0';
        char *q = brace + 1;
        q[strlen(q) - 1] = '\0'; /* the closing brace */
        for (char *tok = strtok(q, ","); tok; tok = strtok(NULL, ",")) {
            char *eq = strchr(tok, '=');
            *eq = '\0';
            prometheus__label__init(&r->l[i][nl]);
            r->l[i][nl].name = tok;
            r->l[i][nl].value = eq + 1;
            nl++;
        }
    }
    /* sorted by name, as Prometheus sends them */
    for (size_t a = 1; a < nl; a++)
        for (size_t b = a; b > 0 && strcmp(r->l[i][b - 1].name, r->l[i][b].name) > 0; b--) {
            Prometheus__Label t = r->l[i][b];
            r->l[i][b] = r->l[i][b - 1];
            r->l[i][b - 1] = t;
        }
    for (size_t k = 0; k < nl; k++)
        r->lp[i][k] = &r->l[i][k];
    ts->n_labels = nl;
    ts->labels = r->lp[i];
    va_list ap;
    va_start(ap, ns);
    for (int k = 0; k < ns; k++) {
        prometheus__sample__init(&r->s[i][k]);
        r->s[i][k].timestamp = (int64_t)(va_arg(ap, double) * 1000);
        r->s[i][k].value = va_arg(ap, double);
        r->sp[i][k] = &r->s[i][k];
    }
    va_end(ap);
    ts->n_samples = (size_t)ns;
    ts->samples = r->sp[i];
    r->tsp[i] = ts;
}

/* Compresses a packed request (freed) and writes it; r is emptied. */
static rw_rc post(rw_ingest *ig, rw_proto_version v, uint8_t *buf, size_t len, req *r,
                  const char *tenant, rw_write_stats *st, rw_err *e)
{
    size_t clen = snappy_max_compressed_length(len);
    char *body = malloc(clen);
    snappy_compress((char *)buf, len, body, &clen);
    rw_err_init(e);
    rw_rc rc = rw_ingest_write(ig, v, tenant, body, clen, st, e);
    free(buf);
    free(body);
    memset(r, 0, sizeof *r);
    return rc;
}

static rw_rc send(rw_ingest *ig, req *r, const char *tenant, rw_write_stats *st, rw_err *e)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_timeseries = r->n;
    wr.timeseries = r->tsp;
    size_t len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *buf = malloc(len + 1);
    prometheus__write_request__pack(&wr, buf);
    return post(ig, RW_PROTO_V1, buf, len, r, tenant, st, e);
}

/* The same request as remote-write 2.0: symbols, label references. */
static rw_rc send_v2(rw_ingest *ig, req *r, const char *tenant, rw_write_stats *st, rw_err *e)
{
    static char *syms[MAXS * 32 + 1];
    static uint32_t refs[MAXS][32];
    Io__Prometheus__Write__V2__TimeSeries ts[MAXS], *tsp[MAXS];
    Io__Prometheus__Write__V2__Sample smp[MAXS][8], *sp[MAXS][8];
    size_t nsym = 1;
    syms[0] = "";
    for (size_t i = 0; i < r->n; i++) {
        io__prometheus__write__v2__time_series__init(&ts[i]);
        const Prometheus__TimeSeries *t = &r->ts[i];
        for (size_t k = 0; k < t->n_labels; k++)
            for (int j = 0; j < 2; j++) {
                char *str = j ? t->labels[k]->value : t->labels[k]->name;
                size_t at = 0;
                while (at < nsym && strcmp(syms[at], str))
                    at++;
                if (at == nsym)
                    syms[nsym++] = str;
                refs[i][2 * k + j] = (uint32_t)at;
            }
        ts[i].n_labels_refs = 2 * t->n_labels;
        ts[i].labels_refs = refs[i];
        for (size_t k = 0; k < t->n_samples; k++) {
            io__prometheus__write__v2__sample__init(&smp[i][k]);
            smp[i][k].timestamp = t->samples[k]->timestamp;
            smp[i][k].value = t->samples[k]->value;
            sp[i][k] = &smp[i][k];
        }
        ts[i].n_samples = t->n_samples;
        ts[i].samples = sp[i];
        tsp[i] = &ts[i];
    }
    Io__Prometheus__Write__V2__Request wr = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    wr.n_symbols = nsym;
    wr.symbols = syms;
    wr.n_timeseries = r->n;
    wr.timeseries = tsp;
    size_t len = io__prometheus__write__v2__request__get_packed_size(&wr);
    uint8_t *buf = malloc(len + 1);
    io__prometheus__write__v2__request__pack(&wr, buf);
    return post(ig, RW_PROTO_V2, buf, len, r, tenant, st, e);
}

/* ---- fixtures ---- */

typedef struct fx {
    char *dir;
    rw_store *store;
    rw_appender ap;
    rw_ingest *ig;
    rw_ingest_config cfg;
} fx;

static int load_cfg(rw_ingest_config *cfg, const char *yaml, rw_err *e)
{
    rw_cfg_defaults(&rw_ingest_config_table, cfg);
    rw_err_init(e);
    return rw_cfg_load_string(&rw_ingest_config_table, cfg, yaml, strlen(yaml), "ingest.yml",
                              e) == RW_OK;
}

static void fx_open_opts(fx *f, const char *yaml, int64_t retention_ms, rw_metrics *m)
{
    if (!f->dir)
        f->dir = test_mkdtemp("rwgate-clean");
    rw_store_opts so = {.dir = f->dir, .nshards = 2, .retention_ms = retention_ms};
    rw_err e;
    rw_err_init(&e);
    f->store = rw_store_open(&so, &e);
    CHECK_MSG(f->store != NULL, "%s", e.msg);
    f->ap = rw_store_appender(f->store);
    CHECK_MSG(load_cfg(&f->cfg, yaml, &e), "%s", e.msg);
    rw_ingest_opts o = {.appender = &f->ap, .cfg = &f->cfg, .data_dir = f->dir, .metrics = m};
    f->ig = rw_ingest_new(&o, &e);
    CHECK_MSG(f->ig != NULL, "%s", e.msg);
}

static void fx_open(fx *f, const char *yaml)
{
    fx_open_opts(f, yaml, 0, NULL);
}

static void fx_close(fx *f, int keep_dir)
{
    rw_ingest_free(f->ig);
    rw_store_close(f->store);
    rw_cfg_free(&rw_ingest_config_table, &f->cfg);
    if (!keep_dir) {
        test_rmtree(f->dir);
        f->dir = NULL;
    }
}

/* Series matching `name="value"` and their samples; returns the count and
 * writes "labels|t:v t:v;" lines into out. */
static size_t query(fx *f, const char *name, const char *value, char *out, size_t cap)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, name, value, &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *sd;
    size_t n = 0, o = 0;
    if (rw_store_select(f->store, &m, 1, 0, INT64_MAX / 2, 0, 0, a, &sd, &n, &e) != RW_OK)
        n = 0;
    if (out)
        out[0] = '\0';
    for (size_t i = 0; out && i < n; i++) {
        char lbl[512];
        rw_labels_format(sd[i].labels, sd[i].nlabels, lbl, sizeof lbl);
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s|", lbl);
        for (size_t k = 0; k < sd[i].n; k++)
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%lld:%g ",
                                  (long long)(sd[i].t[k] / 1000), sd[i].v[k]);
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, ";");
    }
    rw_matcher_free(&m);
    rw_arena_free(a);
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

/* ---- tests ---- */

static double metric(rw_metrics *m, const char *line);
#define HITS "rwgate_ingest_series_cache_lookups_total{result=\"hit\"}"

static void test_relabel_and_inventory(void)
{
    fx f = {0};
    f.dir = test_mkdtemp("rwgate-clean");
    char inv[512], yaml[2048];
    snprintf(inv, sizeof inv, "%s/clusters.yml", f.dir);
    write_file(inv, "clusters:\n"
                    "  gz-prod-0001: {region: gz, product: tke, scenario: business, size: large}\n"
                    "  sh-test-0042: {region: sh, scenario: internal, team: storage}\n");
    snprintf(yaml, sizeof yaml,
             "inventory_file: %s\n"
             "write_relabel_configs:\n"
             "  - {source_labels: [__name__], regex: 'go_.*', action: drop}\n"
             "  - {source_labels: [cluster], regex: '(gz)-.*', target_label: zone, "
             "replacement: '${1}-zone'}\n"
             "  - {source_labels: [kill], regex: 'me', target_label: __name__, replacement: ''}\n"
             "tenant_limits:\n"
             "  t2:\n"
             "    write_relabel_configs:\n"
             "      - {action: labeldrop, regex: pod}\n",
             inv);
    fx_open(&f, yaml);
    req r = {0};
    rw_write_stats st;
    rw_err e;
    add(&r, "up{cluster=gz-prod-0001,job=etcd,region=mine}", 1, 100.0, 1.0);
    add(&r, "go_goroutines{cluster=gz-prod-0001,job=etcd}", 1, 100.0, 40.0);
    add(&r, "up{cluster=nowhere-1,job=etcd}", 1, 100.0, 1.0);
    add(&r, "up{cluster=sh-test-0042,job=x,kill=me}", 1, 100.0, 1.0);
    add(&r, "up{job=nocluster,pod=p1}", 1, 100.0, 1.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 3);
    CHECK_INT(st.samples_dropped, 2); /* go_* dropped, the __name__-less one invalid */
    CHECK_INT(st.samples_rejected, 0);
    char out[4096];
    CHECK_INT(query(&f, "cluster", "gz-prod-0001", out, sizeof out), 1);
    /* the sender's region wins, the rest of the inventory is added, the
       relabel rule's zone too */
    CHECK_MSG(strstr(out, "up{cluster=\"gz-prod-0001\", job=\"etcd\", product=\"tke\", "
                          "region=\"mine\", scenario=\"business\", size=\"large\", "
                          "zone=\"gz-zone\"}") != NULL, "%s", out);
    CHECK_INT(query(&f, "cluster", "nowhere-1", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "scenario=\"unknown\"") != NULL, "%s", out);
    CHECK_INT(query(&f, "job", "nocluster", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "scenario") == NULL && strstr(out, "pod=\"p1\""), "%s", out);
    /* tenant t2's own rules run after the global ones */
    add(&r, "up{job=nocluster2,pod=p1}", 1, 100.0, 1.0);
    CHECK(send(f.ig, &r, "t2", &st, &e) == RW_OK);
    CHECK_INT(query(&f, "job", "nocluster2", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "pod") == NULL && strstr(out, "tenant_id=\"t2\""), "%s", out);

    /* the sources report: per tenant and cluster, with the drop reasons and
       the inventory verdict */
    rw_routes *routes = rw_routes_new();
    CHECK(rw_ingest_routes(f.ig, routes, &e) == RW_OK);
    CHECK_INT(rw_routes_count(routes), 3);
    rw_routes_free(routes);
    fx_close(&f, 0);
}

/* the samples of a series from two replicas, a at t, b at t + 2 s */
static void pair(req *r, const char *replica, double t, double v)
{
    char s[256];
    snprintf(s, sizeof s, "c_total{__replica__=%s,cluster=gz-prod-0001,job=node}", replica);
    add(r, s, 1, t, v);
    snprintf(s, sizeof s, "up{__replica__=%s,cluster=gz-prod-0001,job=node}", replica);
    add(r, s, 1, t, 1.0);
}

static void test_ha(void)
{
    fx f = {0};
    fx_open(&f, "ha_dedup: {failover_timeout: 30s}\n");
    req r = {0};
    rw_write_stats st;
    rw_err e;
    /* both replicas scrape every 15 s; a is elected by its first sample */
    double va = 100, vb = 101;
    for (int i = 0; i < 8; i++) {
        double t = 1000 + 15 * i;
        pair(&r, "a", t, va += 10);
        CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
        CHECK_INT(st.samples_written, 2);
        pair(&r, "b", t + 2, vb += 10);
        CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
        CHECK_INT(st.samples_written, 0);
        CHECK_INT(st.samples_deduplicated, 2);
    }
    char out[8192];
    CHECK_INT(query(&f, "__name__", "c_total", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "__replica__") == NULL, "%s", out);
    /* a stops after 1105 s; b's samples up to 1135 s are within a's
       timeout, at 1137 s b takes over */
    for (int i = 8; i < 14; i++) {
        double t = 1000 + 15 * i;
        pair(&r, "b", t + 2, vb += 10);
        CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    }
    CHECK_INT(query(&f, "__name__", "c_total", out, sizeof out), 1);
    /* a, restarted, replays from before the failover and then current data:
       nothing older than what is stored goes in, nothing after the failover
       point from a */
    pair(&r, "a", 1120, va += 10);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_rejected, 0);
    pair(&r, "a", 1210, va += 10);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 0);
    CHECK_INT(query(&f, "__name__", "c_total", out, sizeof out), 1);
    /* one series, timestamps strictly increasing, the counter never going
       back, no gap longer than the failover timeout plus a scrape */
    char *p = strchr(out, '|') + 1;
    long long prev_t = -1;
    double prev_v = -1;
    int n = 0, ok = 1;
    long long gap = 0;
    while (*p && *p != ';') {
        long long t;
        double v;
        int used;
        if (sscanf(p, "%lld:%lf %n", &t, &v, &used) != 2)
            break;
        if (prev_t >= 0) {
            ok &= t > prev_t && v >= prev_v;
            if (t - prev_t > gap)
                gap = t - prev_t;
        }
        prev_t = t;
        prev_v = v;
        n++;
        p += used;
    }
    CHECK_MSG(ok, "%s", out);
    /* b's samples at 1107 and 1122 s came while a was still in charge, but
       a never covered them: they were kept and are stored at the failover,
       so the series has no gap */
    CHECK_MSG(gap <= 15, "gap %lld: %s", gap, out);
    CHECK_INT(n, 8 + 7); /* a's 8; b's 1107 1122 (kept) 1137 1152 1167 1182 1197 */
    char rep[64];
    CHECK(rw_ha_elected(f.ig->ha, "", "gz-prod-0001", rep, sizeof rep));
    CHECK_STR(rep, "b");

    /* a reload keeps the election (and may change the timeout) */
    rw_ingest_config nc;
    CHECK(load_cfg(&nc, "ha_dedup: {failover_timeout: 1m}\n", &e));
    CHECK(rw_ingest_reconfigure(f.ig, &nc, &e) == RW_OK);
    rw_cfg_free(&rw_ingest_config_table, &nc);
    CHECK(rw_ha_elected(f.ig->ha, "", "gz-prod-0001", rep, sizeof rep));
    CHECK_STR(rep, "b");
    /* so does a restart (the elections file in the data directory) */
    fx_close(&f, 1);
    fx_open(&f, "ha_dedup: {failover_timeout: 30s}\n");
    CHECK(rw_ha_elected(f.ig->ha, "", "gz-prod-0001", rep, sizeof rep));
    CHECK_STR(rep, "b");
    pair(&r, "a", 1220, va += 10);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 0);
    fx_close(&f, 0);
}

static void test_kubelet(void)
{
    fx f = {0};
    rw_metrics *m = rw_metrics_new();
    fx_open_opts(&f, "kubelet_dedup: {mode: ip-reuse}\n", 0, m);
    req r = {0};
    rw_write_stats st;
    rw_err e;
    /* before any node information, both copies are stored */
    add(&r, "kubelet_running_pods{cluster=c1,instance=10.0.0.5:10250,job=kubelet,node=old}", 1,
        100.0, 7.0);
    add(&r, "kubelet_running_pods{cluster=c1,instance=10.0.0.5:10250,job=kubelet,node=new}", 1,
        100.0, 7.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 2);
    /* KSM's node series and the kubelet series in one request, as a real
       cluster's Prometheus sends a scrape round */
    const char *ksm[] = {
        "kube_node_status_condition{cluster=c1,condition=Ready,job=kube-state-metrics,node=old,"
        "status=unknown}",
        "kube_node_status_condition{cluster=c1,condition=Ready,job=kube-state-metrics,node=old,"
        "status=true}",
        "kube_node_status_condition{cluster=c1,condition=Ready,job=kube-state-metrics,node=new,"
        "status=true}",
        "kube_node_status_condition{cluster=c1,condition=Ready,job=kube-state-metrics,node=new,"
        "status=unknown}",
        "kube_node_info{cluster=c1,internal_ip=10.0.0.5,job=kube-state-metrics,node=old}",
        "kube_node_info{cluster=c1,internal_ip=10.0.0.5,job=kube-state-metrics,node=new}",
    };
    double vals[] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++)
        add(&r, ksm[i], 1, 130.0, vals[i]);
    add(&r, "kubelet_running_pods{cluster=c1,instance=10.0.0.5:10250,job=kubelet,node=old}", 1,
        130.0, 8.0);
    add(&r, "kubelet_running_pods{cluster=c1,instance=10.0.0.5:10250,job=kubelet,node=new}", 1,
        130.0, 8.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 7);
    CHECK_INT(st.samples_dropped, 1);
    /* the kubelet series were found in the series cache, and judged again
       by the node information of this very request */
    CHECK_INT((int)metric(m, HITS), 2);
    char out[4096];
    CHECK_INT(query(&f, "node", "old", out, sizeof out), 4); /* 3 KSM + the early kubelet one */
    CHECK_MSG(strstr(out, "130:8") == NULL, "%s", out);
    CHECK_INT(query(&f, "__name__", "kubelet_running_pods", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "node=\"new\"}|100:7 130:8 ;") != NULL, "%s", out);
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_kubelet_endpoints_json(f.ig->kubelet, NULL, NULL, NULL, &b);
    CHECK_MSG(strstr(b.p, "\"node\":\"new\"") && strstr(b.p, "\"ip_reuse\":1"), "%s", b.p);
    rw_buf_free(&b);
    fx_close(&f, 0);
    rw_metrics_free(m);
}

static void test_limits(void)
{
    fx f = {0};
    fx_open(&f, "tenant_limits:\n"
                "  default: {max_labels_per_series: 4}\n"
                "  small: {max_series: 2, ingestion_rate: 0.01, ingestion_burst: 5}\n");
    req r = {0};
    rw_write_stats st;
    rw_err e;
    add(&r, "up{a=1,b=2,c=3,d=4}", 1, 100.0, 1.0);
    add(&r, "up{a=1}", 1, 100.0, 1.0);
    CHECK(send(f.ig, &r, "someone", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 1);
    CHECK_INT(st.series_rejected, 1);
    CHECK_MSG(strstr(st.reasons, "limit is 4 (max_labels_per_series)") != NULL, "%s", st.reasons);
    /* max_series: the third new series is rejected, known ones go on */
    add(&r, "up{i=1}", 1, 100.0, 1.0);
    add(&r, "up{i=2}", 1, 100.0, 1.0);
    add(&r, "up{i=3}", 1, 100.0, 1.0);
    CHECK(send(f.ig, &r, "small", &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 2);
    CHECK_INT(st.samples_rejected, 1);
    CHECK_MSG(strstr(st.reasons, "max_series = 2") != NULL, "%s", st.reasons);
    CHECK_INT(rw_limits_active(f.ig->limits, "small"), 2);
    /* the bucket (5) is now used up by the 3 samples above: more waits */
    add(&r, "up{i=1}", 3, 101.0, 1.0, 102.0, 1.0, 103.0, 1.0);
    CHECK(send(f.ig, &r, "small", &st, &e) == RW_AGAIN);
    CHECK(st.retry_after_s >= 1);
    CHECK_MSG(strstr(e.msg, "ingestion rate limit") != NULL, "%s", e.msg);
    /* other tenants are not affected */
    add(&r, "up{i=1}", 1, 101.0, 1.0);
    CHECK(send(f.ig, &r, "other", &st, &e) == RW_OK);
    fx_close(&f, 0);
}

/* ---- the series cache ---- */

/* The value of a metric line ("name{labels} value") in m's exposition. */
static double metric(rw_metrics *m, const char *line)
{
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_metrics_render(m, &b);
    rw_buf_putc(&b, '\0');
    char want[256];
    snprintf(want, sizeof want, "\n%s ", line); /* the sample line, not # HELP */
    const char *p = strstr(b.p, want);
    double v = p ? strtod(p + strlen(want), NULL) : -1;
    rw_buf_free(&b);
    return v;
}

#define UNLISTED "rwgate_inventory_unlisted_samples_total"

/* One request of the cache scenario at time t: plain series with and
 * without a cluster (listed and not), an HA pair's series and a kubelet
 * series, which the cache must leave to the stages every time. */
static int round_v2; /* cache_round sends remote-write 2.0 */

static void cache_round(fx *f, const char *tenant, double t)
{
    req r = {0};
    rw_write_stats st;
    rw_err e;
    add(&r, "up{cluster=gz-prod-0001,job=etcd}", 1, t, 1.0);
    add(&r, "up{cluster=nowhere-1,job=etcd}", 1, t, 2.0);
    add(&r, "up{job=nocluster,pod=p1}", 1, t, 3.0);
    add(&r, "c_total{__replica__=a,cluster=gz-prod-0001,job=node}", 1, t, t);
    add(&r, "kubelet_running_pods{cluster=gz-prod-0001,instance=10.0.0.1:10250,"
            "job=kubelet,node=n1}", 1, t, 4.0);
    CHECK((round_v2 ? send_v2 : send)(f->ig, &r, tenant, &st, &e) == RW_OK);
    CHECK_INT(st.samples_written, 5);
}

/* Everything stored, as "labels|t:v ...;" in label order. */
static void dump(fx *f, char *out, size_t cap)
{
    query(f, "__name__", "up", out, cap);
    size_t n = strlen(out);
    query(f, "__name__", "c_total", out + n, cap - n);
    n = strlen(out);
    query(f, "__name__", "kubelet_running_pods", out + n, cap - n);
}

static void series_cache(void)
{
    char inv[512], yaml[2048], out_on[8192], out_off[8192];
    for (int on = 1; on >= 0; on--) {
        fx f = {0};
        f.dir = test_mkdtemp("rwgate-clean");
        snprintf(inv, sizeof inv, "%s/clusters.yml", f.dir);
        write_file(inv, "clusters:\n  gz-prod-0001: {region: gz, scenario: business}\n");
        snprintf(yaml, sizeof yaml,
                 "inventory_file: %s\n"
                 "series_cache_size: %d\n"
                 "write_relabel_configs:\n"
                 "  - {source_labels: [cluster], regex: '(gz)-.*', target_label: zone, "
                 "replacement: '${1}-zone'}\n",
                 inv, on ? 1000 : 0);
        rw_metrics *m = rw_metrics_new();
        fx_open_opts(&f, yaml, 0, m);
        CHECK(on ? f.ig->cache != NULL : f.ig->cache == NULL);
        /* the same series three times, then under another tenant */
        cache_round(&f, "", 100);
        cache_round(&f, "", 115);
        cache_round(&f, "", 130);
        cache_round(&f, "t2", 130);
        if (on) {
            /* the three plain series and the kubelet one (judged again
               each time, by its node and instance as sent), found twice;
               the HA pair's never; another tenant's bytes are another key */
            CHECK_INT((int)metric(m, HITS), 8);
        }
        /* the inventory's verdict counted for every request, cached or not */
        CHECK_INT((int)metric(m, UNLISTED), 4);
        /* rejected samples of a cached series are named with its labels */
        {
            req r = {0};
            rw_write_stats st;
            rw_err e;
            add(&r, "up{cluster=gz-prod-0001,job=etcd}", 1, 50.0, 1.0);
            add(&r, "up{cluster=nowhere-1,job=etcd}", 1, 1e10, 2.0);
            CHECK((round_v2 ? send_v2 : send)(f.ig, &r, "", &st, &e) == RW_OK);
            CHECK_INT(st.samples_rejected, 2);
            CHECK_MSG(strstr(st.reasons, "up{cluster=\"gz-prod-0001\", job=\"etcd\"") &&
                          strstr(st.reasons, "out_of_order"),
                      "%s", st.reasons);
            CHECK_MSG(strstr(st.reasons, "up{cluster=\"nowhere-1\", job=\"etcd\"") &&
                          strstr(st.reasons, "too far in the future"),
                      "%s", st.reasons);
            if (on)
                CHECK_INT((int)metric(m, HITS), 10);
        }
        /* a reload (a new relabel rule) applies to the series seen before */
        rw_ingest_config nc;
        rw_err e;
        snprintf(yaml, sizeof yaml,
                 "inventory_file: %s\n"
                 "series_cache_size: %d\n"
                 "write_relabel_configs:\n"
                 "  - {source_labels: [cluster], regex: '(gz)-.*', target_label: zone, "
                 "replacement: '${1}-new'}\n",
                 inv, on ? 1000 : 0);
        CHECK(load_cfg(&nc, yaml, &e));
        CHECK_INT(rw_ingest_reconfigure(f.ig, &nc, &e), RW_OK);
        rw_cfg_free(&rw_ingest_config_table, &nc);
        cache_round(&f, "", 145);
        if (on)
            CHECK_INT((int)metric(m, HITS), 10);
        char *out = on ? out_on : out_off;
        dump(&f, out, sizeof out_on);
        CHECK_MSG(strstr(out, "up{cluster=\"gz-prod-0001\", job=\"etcd\", region=\"gz\", "
                              "scenario=\"business\", zone=\"gz-new\"}|145:1 ;") != NULL,
                  "%s", out);
        CHECK_MSG(strstr(out, "up{cluster=\"gz-prod-0001\", job=\"etcd\", region=\"gz\", "
                              "scenario=\"business\", zone=\"gz-zone\"}|100:1 115:1 130:1 ;") !=
                      NULL, "%s", out);
        CHECK_MSG(strstr(out, "up{job=\"nocluster\", pod=\"p1\", tenant_id=\"t2\"}|130:3 ;") !=
                      NULL, "%s", out);
        CHECK_MSG(strstr(out, "c_total{cluster=\"gz-prod-0001\", job=\"node\", region=\"gz\", "
                              "scenario=\"business\", zone=\"gz-new\"}|145:145 ;") != NULL,
                  "%s", out);
        fx_close(&f, 0);
        rw_metrics_free(m);
    }
    /* the cache changes nothing that is stored */
    CHECK_MSG(strcmp(out_on, out_off) == 0, "with the cache:\n%s\nwithout:\n%s", out_on,
              out_off);
}

/* The series cache with remote-write 1.0 (keyed by the label fields'
 * bytes) and 2.0 (by the label strings). */
static void test_series_cache(void)
{
    round_v2 = 0;
    series_cache();
    round_v2 = 1;
    series_cache();
    round_v2 = 0;
}

/* A cached series whose stored series retention deleted (its sender was
 * silent longer than the retention): sent again, it is stored again with
 * every label the stages give it. */
static void test_series_cache_gone(void)
{
    fx f = {0};
    f.dir = test_mkdtemp("rwgate-clean");
    char inv[512], yaml[1024];
    snprintf(inv, sizeof inv, "%s/clusters.yml", f.dir);
    write_file(inv, "clusters:\n  gz-prod-0001: {region: gz, scenario: business}\n");
    snprintf(yaml, sizeof yaml, "inventory_file: %s\n", inv);
    rw_metrics *m = rw_metrics_new();
    fx_open_opts(&f, yaml, 3600 * 1000, m);
    req r = {0};
    rw_write_stats st;
    rw_err e;
    add(&r, "old{cluster=gz-prod-0001}", 1, 100.0, 1.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    add(&r, "old{cluster=gz-prod-0001}", 1, 115.0, 1.0);
    add(&r, "keep{cluster=gz-prod-0001}", 1, 36000.0, 1.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT((int)metric(m, HITS), 1);
    CHECK_INT(rw_store_maintain(f.store, &e), RW_OK);
    char out[2048];
    CHECK_INT(query(&f, "__name__", "old", out, sizeof out), 0);
    add(&r, "old{cluster=gz-prod-0001}", 1, 36000.0, 7.0);
    CHECK_MSG(send(f.ig, &r, "", &st, &e) == RW_OK, "%s", e.msg);
    CHECK_INT(st.samples_written, 1);
    CHECK_INT((int)metric(m, HITS), 2); /* found, its ref gone, stored anew */
    CHECK_INT(query(&f, "__name__", "old", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "old{cluster=\"gz-prod-0001\", region=\"gz\", scenario=\"business\"}"
                          "|36000:7 ;") != NULL, "%s", out);
    /* and the cache has its new ref: the next sample is a plain hit */
    add(&r, "old{cluster=gz-prod-0001}", 1, 36015.0, 8.0);
    CHECK(send(f.ig, &r, "", &st, &e) == RW_OK);
    CHECK_INT((int)metric(m, HITS), 3);
    CHECK_INT(query(&f, "__name__", "old", out, sizeof out), 1);
    CHECK_MSG(strstr(out, "|36000:7 36015:8 ;") != NULL, "%s", out);
    fx_close(&f, 0);
    rw_metrics_free(m);
}

int main(void)
{
    RUN(test_series_cache);
    RUN(test_series_cache_gone);
    RUN(test_relabel_and_inventory);
    RUN(test_ha);
    RUN(test_kubelet);
    RUN(test_limits);
    TEST_DONE();
}
