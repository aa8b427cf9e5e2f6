/* test_rules_engine.c - the rule engine against a real store: loading
 * (valid and invalid files, messages with position, group and rule), the
 * alert state machine (pending -> firing -> resolved, keep_firing_for,
 * resolved alerts kept 15 minutes), what is sent and when (resend delay,
 * endsAt), ALERTS / ALERTS_FOR_STATE, restoring `for` state after a restart,
 * stale markers, rules seeing earlier rules' output in the same evaluation,
 * query offset, carrying state over a reload, and the manager keeping an
 * unchanged group across a reconfigure. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rules/rules_int.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define MIN 60000LL

typedef struct env {
    char *dir;
    rw_store *store;
    rw_engine *engine;
    rules_ctx ctx;
    /* notifications received */
    struct sent {
        char alertname[64];
        char labels[256];
        int64_t starts, ends;
        char url[256];
        char ann[256];
    } sent[256];
    size_t nsent;
} env;

static void on_notify(void *c, const rw_alert_msg *m, size_t n)
{
    env *e = c;
    for (size_t i = 0; i < n && e->nsent < 256; i++) {
        struct sent *s = &e->sent[e->nsent++];
        const char *an = rw_labels_get(m[i].labels, m[i].nlabels, "alertname");
        snprintf(s->alertname, sizeof s->alertname, "%s", an ? an : "");
        rw_labels_format(m[i].labels, m[i].nlabels, s->labels, sizeof s->labels);
        s->starts = m[i].starts_at_ms;
        s->ends = m[i].ends_at_ms;
        snprintf(s->url, sizeof s->url, "%s", m[i].generator_url);
        s->ann[0] = '\0';
        if (m[i].nannotations)
            snprintf(s->ann, sizeof s->ann, "%s=%s", m[i].annotations[0].name,
                     m[i].annotations[0].value);
    }
}

static env *env_open(int64_t default_offset)
{
    env *e = calloc(1, sizeof *e);
    e->dir = test_mkdtemp("rwrules");
    rw_store_opts so = {.dir = e->dir, .nshards = 2};
    rw_err err;
    rw_err_init(&err);
    e->store = rw_store_open(&so, &err);
    if (!e->store) {
        fprintf(stderr, "store: %s\n", err.msg);
        exit(1);
    }
    rw_querier q = rw_store_querier(e->store);
    rw_engine_opts eo = {.lookback_ms = 5 * MIN};
    e->engine = rw_engine_new(&q, &eo);
    e->ctx.engine = e->engine;
    e->ctx.appender = rw_store_appender(e->store);
    e->ctx.querier = q;
    e->ctx.outage_tolerance_ms = 60 * MIN;
    e->ctx.for_grace_period_ms = 10 * MIN;
    e->ctx.resend_delay_ms = MIN;
    e->ctx.notify = on_notify;
    e->ctx.notify_ctx = e;
    e->ctx.quiet = 1;
    pthread_mutex_init(&e->ctx.env_mu, NULL);
    rw_label ext[] = {{"region", "eu-1"}};
    e->ctx.env = rules_env_new(ext, 1, "http://rwgate.example:9201/", default_offset);
    return e;
}

static void env_close(env *e)
{
    rules_env_unref(e->ctx.env);
    rw_engine_free(e->engine);
    rw_store_close(e->store);
    test_rmtree(e->dir);
    free(e);
}

/* appends one sample of a series given as "name", "v", "label", "value", ... NULL */
static void put(env *e, int64_t t, double v, const char *name, ...)
{
    rw_label l[8];
    size_t n = 0;
    l[n].name = RW_METRIC_NAME;
    l[n++].value = name;
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));) {
        l[n].name = k;
        l[n++].value = va_arg(ap, const char *);
    }
    va_end(ap);
    rw_labels_sort(l, n);
    rw_sample s = {t, v};
    rw_append_series a = {l, n, rw_labels_hash(l, n), &s, 1};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err err;
    rw_err_init(&err);
    CHECK(rw_store_append(e->store, &a, 1, &res, &err) == RW_OK);
}

/* the raw samples of the series matching {__name__=name, extra} in [mint, maxt] */
static size_t raw(env *e, const char *name, const char *lname, const char *lval, int64_t mint,
                  int64_t maxt, rw_arena *a, rw_series_data **out)
{
    rw_matcher m[2];
    size_t nm = 0;
    rw_err err;
    rw_err_init(&err);
    rw_matcher_init(&m[nm++], RW_MATCH_EQ, RW_METRIC_NAME, name, &err);
    if (lname)
        rw_matcher_init(&m[nm++], RW_MATCH_EQ, lname, lval, &err);
    size_t n = 0;
    *out = NULL;
    rw_store_select(e->store, m, nm, mint, maxt, 0, 0, a, out, &n, &err);
    for (size_t i = 0; i < nm; i++)
        rw_matcher_free(&m[i]);
    return n;
}

static rw_group *group_from(env *e, const char *yaml, int restored)
{
    rules_diag d = {0};
    rw_rule_file *f = NULL;
    rw_rc rc = rules_file_parse("rules.yml", yaml, strlen(yaml), &d, &f);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "diag: %s\n", d.msg[i]);
    rules_diag_free(&d);
    if (rc != RW_OK)
        return NULL;
    rw_group_def *def = malloc(sizeof *def);
    *def = f->groups[0];
    memset(&f->groups[0], 0, sizeof f->groups[0]);
    rules_file_free(f);
    rw_group *g = rules_group_new(def, MIN, &e->ctx);
    for (size_t i = 0; i < g->nrules; i++)
        g->rules[i].restored = restored;
    return g;
}

static rw_alert *alert_of(rw_group *g, size_t rule, size_t i)
{
    return i < g->rules[rule].nalerts ? g->rules[rule].alerts[i] : NULL;
}

/* ---- loading ---- */

static int errors_of(const char *yaml, const char *needle)
{
    rules_diag d = {0};
    rw_rule_file *f = NULL;
    rules_file_parse("f.yml", yaml, strlen(yaml), &d, &f);
    int found = !needle;
    for (size_t i = 0; i < d.n; i++)
        if (needle && strstr(d.msg[i], needle))
            found = 1;
    int n = (int)d.nerrors;
    if (!found) {
        fprintf(stderr, "no \"%s\" among:\n", needle);
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "  %s\n", d.msg[i]);
    }
    rules_diag_free(&d);
    rules_file_free(f);
    return found ? n : -1;
}

static void test_load(void)
{
    const char *ok = "groups:\n"
                     "  - name: g\n"
                     "    interval: 30s\n"
                     "    query_offset: 2m\n"
                     "    limit: 5\n"
                     "    labels: {team: a}\n"
                     "    rules:\n"
                     "      - record: r:sum\n"
                     "        expr: sum(x)\n"
                     "        labels: {team: b}\n"
                     "      - alert: A\n"
                     "        expr: r:sum > 1\n"
                     "        for: 5m\n"
                     "        keep_firing_for: 1m\n"
                     "        annotations: {s: '{{ $labels.team }}'}\n";
    rules_diag d = {0};
    rw_rule_file *f = NULL;
    CHECK(rules_file_parse("f.yml", ok, strlen(ok), &d, &f) == RW_OK);
    CHECK_INT(d.n, 0);
    CHECK(f && f->ngroups == 1);
    if (f && f->ngroups == 1) {
        rw_group_def *g = &f->groups[0];
        CHECK_INT(g->interval_ms, 30000);
        CHECK(g->has_query_offset && g->query_offset_ms == 2 * MIN);
        CHECK_INT(g->limit, 5);
        CHECK_INT(g->nrules, 2);
        CHECK_STR(rw_labels_get(g->rules[0].labels, g->rules[0].nlabels, "team"), "b");
        CHECK_STR(rw_labels_get(g->rules[1].labels, g->rules[1].nlabels, "team"), "a");
        CHECK(g->rules[1].kind == RULE_ALERT && g->rules[1].for_ms == 5 * MIN &&
              g->rules[1].keep_firing_for_ms == MIN);
        CHECK(g->rules[1].ann_tmpl && g->rules[1].ann_tmpl[0]);
        CHECK_STR(rw_promql_expr_string(g->rules[0].expr), "sum(x)");
    }
    rules_file_free(f);
    rules_diag_free(&d);

    CHECK_INT(errors_of("", NULL), 0);
    CHECK_INT(errors_of("groups:\n", NULL), 0);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: sum(\n",
                        "f.yml:5:15: group \"g\", rule 1, \"a\": could not parse expression: 1:5:"),
              1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: x\n"
                        "        fro: 1m\n",
                        "f.yml:6:9: field fro not found"),
              1);
    CHECK_INT(errors_of("groups:\n  - name: g\n  - name: g\n", "groupname: \"g\" is repeated"), 1);
    CHECK_INT(errors_of("groups:\n  - rules: []\n", "Groupname must not be empty"), 1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n        alert: b\n"
                        "        expr: x\n",
                        "only one of 'record' and 'alert'"),
              1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n", "'expr' must be set"),
              1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: x\n"
                        "        for: 1m\n        annotations: {a: b}\n",
                        "invalid field 'annotations'"),
              2);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: x\n"
                        "        for: 5\n",
                        "not a valid duration"),
              1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: x\n"
                        "        annotations: {s: '{{ $labels.x '}\n",
                        "annotation \"s\": template: __alert_a:1:"),
              1);
    CHECK_INT(errors_of("groups: [\n", "yaml: line"), 1);
    CHECK_INT(errors_of("- a\n", "cannot unmarshal !!seq"), 1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    limit: '5'\n", "limit"), 1);
    CHECK_INT(errors_of("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: x\n"
                        "        labels: {__name__: y}\n",
                        "invalid label name: __name__"),
              1);
}

/* ---- the state machine ---- */

static const char *alert_rules =
    "groups:\n"
    "  - name: g\n"
    "    rules:\n"
    "      - alert: Down\n"
    "        expr: up == 0\n"
    "        for: 2m\n"
    "        labels: {severity: page}\n"
    "        annotations: {summary: '{{ $labels.instance }} down'}\n";

static void test_pending_firing_resolved(void)
{
    env *e = env_open(0);
    rw_group *g = group_from(e, alert_rules, 1);
    CHECK(g != NULL);
    if (!g) {
        env_close(e);
        return;
    }
    int64_t t0 = 1000 * MIN;
    /* down for 5 minutes, then up */
    for (int i = 0; i <= 30; i++)
        put(e, t0 + i * MIN, i >= 1 && i <= 5 ? 0 : 1, "up", "instance", "a", NULL);

    rules_group_eval(g, t0);
    CHECK_INT(g->rules[0].nalerts, 0);
    rules_group_eval(g, t0 + MIN);
    rw_alert *a = alert_of(g, 0, 0);
    CHECK(a && a->state == ALERT_PENDING && a->active_at == t0 + MIN);
    CHECK_INT(e->nsent, 0); /* pending alerts are not sent */
    rules_group_eval(g, t0 + 2 * MIN);
    CHECK(a->state == ALERT_PENDING);
    rules_group_eval(g, t0 + 3 * MIN);
    CHECK(a->state == ALERT_FIRING && a->fired_at == t0 + 3 * MIN);
    CHECK_INT(e->nsent, 1);
    if (e->nsent == 1) {
        CHECK_STR(e->sent[0].alertname, "Down");
        CHECK_INT(e->sent[0].starts, t0 + 3 * MIN);
        CHECK_INT(e->sent[0].ends, t0 + 3 * MIN + 4 * MIN); /* 4 x max(interval, resend) */
        CHECK_STR(e->sent[0].ann, "summary=a down");
        CHECK_STR(e->sent[0].url,
                  "http://rwgate.example:9201/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
        CHECK(strstr(e->sent[0].labels, "severity=\"page\"") != NULL);
        CHECK(strstr(e->sent[0].labels, "__name__") == NULL);
    }
    /* resend only after the resend delay has passed (strictly) */
    rules_group_eval(g, t0 + 4 * MIN);
    CHECK_INT(e->nsent, 1);
    rules_group_eval(g, t0 + 4 * MIN + 30000);
    CHECK_INT(e->nsent, 2);
    rules_group_eval(g, t0 + 5 * MIN);
    CHECK_INT(e->nsent, 2);
    /* up again at 6m: resolved, sent at once with endsAt = resolvedAt */
    rules_group_eval(g, t0 + 6 * MIN);
    CHECK(a->state == ALERT_INACTIVE && a->resolved_at == t0 + 6 * MIN);
    CHECK_INT(e->nsent, 3);
    if (e->nsent == 3)
        CHECK_INT(e->sent[2].ends, t0 + 6 * MIN);
    /* kept and resent every resend delay for 15 minutes, then dropped */
    size_t before = e->nsent;
    for (int i = 7; i <= 21; i++)
        rules_group_eval(g, t0 + i * MIN);
    CHECK(g->rules[0].nalerts == 1);
    CHECK(e->nsent > before + 5);
    rules_group_eval(g, t0 + 22 * MIN);
    CHECK_INT(g->rules[0].nalerts, 0);

    /* ALERTS: pending at 1m and 2m, firing from 3m to 5m, stale after */
    rw_arena *ar = rw_arena_new(0, 0);
    rw_series_data *sd;
    size_t n = raw(e, "ALERTS", "alertstate", "pending", t0, t0 + 30 * MIN, ar, &sd);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(sd[0].n, 3);
        CHECK(sd[0].t[0] == t0 + MIN && sd[0].v[0] == 1);
        CHECK(sd[0].t[2] == t0 + 3 * MIN && rw_is_stale_nan(sd[0].v[2]));
        CHECK_STR(rw_labels_get(sd[0].labels, sd[0].nlabels, "instance"), "a");
        CHECK_STR(rw_labels_get(sd[0].labels, sd[0].nlabels, "severity"), "page");
    }
    n = raw(e, "ALERTS", "alertstate", "firing", t0, t0 + 30 * MIN, ar, &sd);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(sd[0].n, 5); /* 3m, 4m, 4m30s, 5m and the stale marker at 6m */
        CHECK(rw_is_stale_nan(sd[0].v[sd[0].n - 1]) && sd[0].t[sd[0].n - 1] == t0 + 6 * MIN);
    }
    n = raw(e, "ALERTS_FOR_STATE", NULL, NULL, t0, t0 + 30 * MIN, ar, &sd);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK(sd[0].v[0] == (double)((t0 + MIN) / 1000));
    rw_arena_free(ar);
    rules_group_free(g);
    env_close(e);
}

static void test_keep_firing_for(void)
{
    env *e = env_open(0);
    rw_group *g = group_from(e,
                             "groups:\n  - name: g\n    rules:\n      - alert: K\n"
                             "        expr: up == 0\n        keep_firing_for: 3m\n",
                             1);
    int64_t t0 = 500 * MIN;
    for (int i = 0; i <= 10; i++)
        put(e, t0 + i * MIN, i == 1 ? 0 : 1, "up", "instance", "a", NULL);
    rules_group_eval(g, t0 + MIN);
    rw_alert *a = alert_of(g, 0, 0);
    CHECK(a && a->state == ALERT_FIRING); /* for: 0 fires at once */
    rules_group_eval(g, t0 + 2 * MIN);
    CHECK(a->state == ALERT_FIRING && a->keep_firing_since == t0 + 2 * MIN);
    rules_group_eval(g, t0 + 4 * MIN);
    CHECK(a->state == ALERT_FIRING);
    rules_group_eval(g, t0 + 5 * MIN); /* 3m since it went missing */
    CHECK(a->state == ALERT_INACTIVE && a->resolved_at == t0 + 5 * MIN);
    rules_group_free(g);
    env_close(e);
}

/* ---- restore after a restart ---- */

static void test_restore(void)
{
    env *e = env_open(0);
    const char *rules = "groups:\n  - name: g\n    rules:\n      - alert: Long\n"
                        "        expr: up == 0\n        for: 30m\n"
                        "      - alert: Short\n        expr: up == 0\n        for: 5m\n";
    rw_group *g = group_from(e, rules, 1);
    int64_t t0 = 2000 * MIN;
    for (int i = 0; i <= 60; i++)
        put(e, t0 + i * MIN, 0, "up", "instance", "a", NULL);
    /* pending for 10 minutes, then rwgate "stops" at t0+10m */
    for (int i = 0; i <= 10; i++)
        rules_group_eval(g, t0 + i * MIN);
    CHECK(alert_of(g, 0, 0) && alert_of(g, 0, 0)->state == ALERT_PENDING);
    rules_group_free(g);

    /* restart 5 minutes later: two evaluations, then restore */
    g = group_from(e, rules, 0);
    rules_group_eval(g, t0 + 15 * MIN);
    rules_group_eval(g, t0 + 16 * MIN);
    rw_alert *a = alert_of(g, 0, 0);
    CHECK(a && a->active_at == t0 + 15 * MIN); /* a fresh alert before restoring */
    rules_group_restore(g, t0 + 16 * MIN + 5000);
    /* spent 10m pending before going down at t0+10m, 20m remain (more than
       the grace period): activeAt moves by the outage, t0 + (16m5s - 10m) */
    CHECK(a && a->active_at == t0 + 6 * MIN + 5000);
    /* `for` shorter than the grace period: not restored */
    rw_alert *s = alert_of(g, 1, 0);
    CHECK(s && s->active_at == t0 + 15 * MIN);
    CHECK(g->rules[0].restored && g->rules[1].restored);
    /* fires when the 30m are complete, counting the time before the restart */
    rules_group_eval(g, t0 + 35 * MIN);
    CHECK(a->state == ALERT_PENDING);
    rules_group_eval(g, t0 + 36 * MIN + 5000);
    CHECK(a->state == ALERT_FIRING);
    rules_group_free(g);

    /* outage longer than the tolerance (1h): nothing to restore from */
    g = group_from(e, rules, 0);
    rules_group_eval(g, t0 + 200 * MIN);
    rules_group_restore(g, t0 + 200 * MIN);
    CHECK(alert_of(g, 0, 0) == NULL); /* up ended at t0+60m: no alert at all */
    rules_group_free(g);
    env_close(e);
}

static void test_restore_grace(void)
{
    env *e = env_open(0);
    const char *rules = "groups:\n  - name: g\n    rules:\n      - alert: Long\n"
                        "        expr: up == 0\n        for: 20m\n";
    rw_group *g = group_from(e, rules, 1);
    int64_t t0 = 3000 * MIN;
    for (int i = 0; i <= 40; i++)
        put(e, t0 + i * MIN, 0, "up", "instance", "a", NULL);
    for (int i = 0; i <= 15; i++) /* 15 of 20 minutes pending */
        rules_group_eval(g, t0 + i * MIN);
    rules_group_free(g);
    g = group_from(e, rules, 0);
    rules_group_eval(g, t0 + 17 * MIN);
    rules_group_restore(g, t0 + 17 * MIN);
    rw_alert *a = alert_of(g, 0, 0);
    /* 5m remained, less than the 10m grace period: fires 10m after restore */
    CHECK(a && a->active_at == t0 + 17 * MIN + 10 * MIN - 20 * MIN);
    rules_group_free(g);
    env_close(e);
}

/* ---- recording rules: order, offset, stale markers, reload ---- */

static void test_recording(void)
{
    env *e = env_open(MIN); /* the default query offset: 1m */
    const char *rules = "groups:\n  - name: rec\n    rules:\n"
                        "      - record: job:x:sum\n        expr: sum by (job) (x)\n"
                        "      - record: job:x:double\n        expr: job:x:sum * 2\n";
    rw_group *g = group_from(e, rules, 1);
    int64_t t0 = 4000 * MIN;
    for (int i = 0; i <= 10; i++) {
        put(e, t0 + i * MIN, i, "x", "job", "a", NULL);
        if (i < 4)
            put(e, t0 + i * MIN, 100, "x", "job", "b", NULL);
    }
    rules_group_eval(g, t0 + 2 * MIN); /* evaluates at t0+1m */
    rw_arena *ar = rw_arena_new(0, 0);
    rw_series_data *sd;
    size_t n = raw(e, "job:x:double", "job", "a", t0, t0 + 60 * MIN, ar, &sd);
    /* the second rule saw the first's output of the same evaluation */
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK(sd[0].n == 1 && sd[0].t[0] == t0 + MIN && sd[0].v[0] == 2);
    /* job b's input stops at 3m; the 5m lookback is left-open: gone at 8m */
    for (int i = 3; i <= 10; i++)
        rules_group_eval(g, t0 + (i + 1) * MIN);
    n = raw(e, "job:x:sum", "job", "b", t0, t0 + 60 * MIN, ar, &sd);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK(sd[0].n >= 2 && rw_is_stale_nan(sd[0].v[sd[0].n - 1]));
        CHECK_INT(sd[0].t[sd[0].n - 1], t0 + 8 * MIN);
    }

    /* reload: the second rule removed; its series goes stale at the next
       evaluation of the group that replaced this one */
    const char *rules2 = "groups:\n  - name: rec\n    rules:\n"
                         "      - record: job:x:sum\n        expr: sum by (job) (x)\n";
    rw_group *g2 = group_from(e, rules2, 1);
    rules_group_copy_state(g2, g);
    CHECK(g2->rules[0].prev.n == 1);
    CHECK(g2->stale.n == 1);
    rules_group_eval(g2, t0 + 12 * MIN);
    n = raw(e, "job:x:double", "job", "a", t0, t0 + 60 * MIN, ar, &sd);
    CHECK(n == 1 && sd[0].n && rw_is_stale_nan(sd[0].v[sd[0].n - 1]) &&
          sd[0].t[sd[0].n - 1] == t0 + 11 * MIN);
    CHECK_INT(g2->stale.n, 0);
    rw_arena_free(ar);
    rules_group_free(g);
    rules_group_free(g2);
    env_close(e);
}

static void test_reload_keeps_alerts(void)
{
    env *e = env_open(0);
    rw_group *g = group_from(e, alert_rules, 1);
    int64_t t0 = 5000 * MIN;
    for (int i = 0; i <= 10; i++)
        put(e, t0 + i * MIN, 0, "up", "instance", "a", NULL);
    rules_group_eval(g, t0);
    rules_group_eval(g, t0 + MIN);
    /* same alert (name, labels), another annotation and a new rule */
    const char *changed = "groups:\n  - name: g\n    rules:\n      - alert: Down\n"
                          "        expr: up == 0\n        for: 2m\n        labels: {severity: page}\n"
                          "        annotations: {summary: 'changed'}\n"
                          "      - alert: Other\n        expr: up == 0\n";
    rw_group *g2 = group_from(e, changed, 1);
    rules_group_copy_state(g2, g);
    rw_alert *a = alert_of(g2, 0, 0);
    CHECK(a && a->active_at == t0);
    rules_group_eval(g2, t0 + 2 * MIN);
    CHECK(a && a->state == ALERT_FIRING);
    /* labels changed: a new alert identity, no state carried */
    const char *relabelled = "groups:\n  - name: g\n    rules:\n      - alert: Down\n"
                             "        expr: up == 0\n        for: 2m\n        labels: {severity: low}\n";
    rw_group *g3 = group_from(e, relabelled, 1);
    rules_group_copy_state(g3, g2);
    CHECK_INT(g3->rules[0].nalerts, 0);
    rules_group_free(g);
    rules_group_free(g2);
    rules_group_free(g3);
    env_close(e);
}

static void test_alert_errors(void)
{
    env *e = env_open(0);
    /* two samples become the same alert once __name__ is dropped */
    rw_group *g = group_from(e,
                             "groups:\n  - name: g\n    limit: 1\n    rules:\n"
                             "      - alert: Dup\n        expr: '{__name__=~\"a|b\"}'\n"
                             "      - alert: Many\n        expr: c\n"
                             "      - record: ok\n        expr: vector(1)\n",
                             1);
    int64_t t0 = 6000 * MIN;
    put(e, t0, 1, "a", "i", "1", NULL);
    put(e, t0, 1, "b", "i", "1", NULL);
    put(e, t0, 1, "c", "i", "1", NULL);
    put(e, t0, 1, "c", "i", "2", NULL);
    rules_group_eval(g, t0);
    CHECK(g->rules[0].health == HEALTH_ERR && g->rules[0].last_error &&
          strstr(g->rules[0].last_error, "same labelset after applying alert labels"));
    CHECK(g->rules[1].health == HEALTH_ERR && g->rules[1].last_error &&
          strstr(g->rules[1].last_error, "exceeded limit of 1 with 2 alerts"));
    CHECK_INT(g->rules[1].nalerts, 0);
    /* the group goes on after failing rules */
    CHECK(g->rules[2].health == HEALTH_OK);
    CHECK_INT(atomic_load(&g->failures), 2);
    CHECK_INT(atomic_load(&g->evaluations), 3);
    rules_group_free(g);
    env_close(e);
}

/* ---- the manager ---- */

static void test_manager_reconfigure(void)
{
    env *e = env_open(0);
    char *dir = test_mkdtemp("rwrules-files");
    char path[512];
    snprintf(path, sizeof path, "%s/a.yml", dir);
    FILE *f = fopen(path, "w");
    fputs("groups:\n  - name: one\n    rules: [{record: r1, expr: vector(1)}]\n"
          "  - name: two\n    rules: [{record: r2, expr: vector(2)}]\n",
          f);
    fclose(f);
    const char *globs[] = {"*.yml"};
    rw_rules_opts o = {.rule_files = globs, .nrule_files = 1, .base_dir = dir,
                       .evaluation_interval_ms = 3600000, .engine = e->engine,
                       .appender = rw_store_appender(e->store),
                       .querier = rw_store_querier(e->store)};
    rw_err err;
    rw_err_init(&err);
    rw_rules *r = rw_rules_open(&o, &err);
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "open: %s\n", err.msg);
        env_close(e);
        return;
    }
    size_t ng, nr;
    rw_rules_counts(r, &ng, &nr);
    CHECK(ng == 2 && nr == 2);
    rw_group **gs;
    size_t n;
    rules_manager_read_lock(r, &gs, &n);
    rw_group *one = gs[0], *two = gs[1];
    CHECK_STR(one->def->name, "one");
    rules_manager_read_unlock(r);

    /* group two changes; one stays the very same object */
    f = fopen(path, "w");
    fputs("groups:\n  - name: one\n    rules: [{record: r1, expr: vector(1)}]\n"
          "  - name: two\n    rules: [{record: r2, expr: vector(3)}]\n",
          f);
    fclose(f);
    CHECK(rw_rules_reconfigure(r, &o, &err) == RW_OK);
    rules_manager_read_lock(r, &gs, &n);
    CHECK(n == 2 && gs[0] == one && gs[1] != two);
    rules_manager_read_unlock(r);

    /* an invalid file keeps the running rules */
    f = fopen(path, "w");
    fputs("groups:\n  - name: one\n    rules: [{record: r1, expr: 'sum('}]\n", f);
    fclose(f);
    rw_err_init(&err);
    CHECK(rw_rules_reconfigure(r, &o, &err) == RW_BADREQ);
    CHECK(strstr(err.msg, "a.yml:3:") != NULL);
    rw_rules_counts(r, &ng, &nr);
    CHECK(ng == 2);
    rw_rules_close(r);
    test_rmtree(dir);
    env_close(e);
}

static void test_slots(void)
{
    env *e = env_open(0);
    rw_group *g = group_from(e, "groups:\n  - name: g\n    interval: 1m\n", 1);
    int64_t s1 = rules_group_slot(g, 1000 * MIN + 1234);
    int64_t s2 = rules_group_slot(g, 1001 * MIN + 1234);
    CHECK(s1 <= 1000 * MIN + 1234 && s1 > 999 * MIN + 1234);
    CHECK_INT(s2 - s1, MIN);
    /* the phase within the interval is stable */
    CHECK_INT(((s1 % MIN) + MIN) % MIN, ((rules_group_slot(g, 77 * MIN) % MIN) + MIN) % MIN);
    rules_group_free(g);
    env_close(e);
}

static void test_formats(void)
{
    char b[64];
    rules_fmt_float_e(1, b, sizeof b);
    CHECK_STR(b, "1e+00");
    rules_fmt_float_e(0.25, b, sizeof b);
    CHECK_STR(b, "2.5e-01");
    rules_fmt_float_e(123456789, b, sizeof b);
    CHECK_STR(b, "1.23456789e+08");
    rules_fmt_float_json(8.6733e-05, b, sizeof b);
    CHECK_STR(b, "0.000086733");
    rules_fmt_float_json(60, b, sizeof b);
    CHECK_STR(b, "60");
    rules_fmt_float_json(1.5e-7, b, sizeof b);
    CHECK_STR(b, "1.5e-7");
    rules_fmt_float_json(-1234.5, b, sizeof b);
    CHECK_STR(b, "-1234.5");
    rules_fmt_float_json(1e21, b, sizeof b);
    CHECK_STR(b, "1e+21");
    rules_fmt_float_json(0.001095822, b, sizeof b);
    CHECK_STR(b, "0.001095822");
    rules_fmt_time(0, b, sizeof b);
    CHECK_STR(b, "1970-01-01T00:00:00Z");
    rules_fmt_time(1500, b, sizeof b);
    CHECK_STR(b, "1970-01-01T00:00:01.5Z");
    rules_fmt_time(RW_TIME_UNSET, b, sizeof b);
    CHECK_STR(b, "0001-01-01T00:00:00Z");
    rw_buf q;
    rw_buf_init(&q, 0);
    rules_query_escape(&q, "sum(x{a=\"b c\"}) > 1");
    CHECK_STR(q.p, "sum%28x%7Ba%3D%22b+c%22%7D%29+%3E+1");
    rw_buf_free(&q);

    static const char *const paths[][2] = {
        {"tests/../etcd.yml", "etcd.yml"}, {"./a/./b//c.yml", "a/b/c.yml"},
        {"/x/../../y", "/y"}, {"../a/../../b", "../../b"}, {"a/..", "."},
        {"/", "/"}, {"a/b/../../..", ".."}, {"/etc/rules/", "/etc/rules"}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s", paths[i][0]);
        rules_clean_path(p);
        CHECK_STR(p, paths[i][1]);
    }

    rules_seq s;
    rw_err err;
    rw_err_init(&err);
    CHECK(rules_parse_values("1+1x3 _ _x2 stale -2+4x1 5x1 1-0.5x2", 0, 1000, &s, &err) == RW_OK);
    double want[] = {1, 2, 3, 4, NAN, NAN, NAN, -1, -2, 2, 5, 5, 1, 0.5, 0};
    int kinds[] = {1, 1, 1, 1, 0, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1};
    CHECK_INT(s.n, 15);
    for (size_t i = 0; i < s.n && i < 15; i++) {
        CHECK_INT(s.v[i].kind, kinds[i]);
        if (kinds[i] == 1)
            CHECK(s.v[i].v == want[i]);
    }
    free(s.v);
    CHECK(rules_parse_values("1 2 0x3", 0, 1000, &s, &err) == RW_OK && s.n == 6 && s.v[5].v == 0);
    free(s.v);
    CHECK(rules_parse_values("1x100", 0, 10, &s, &err) == RW_LIMIT);
    CHECK(rules_parse_values("1 foo", 0, 10, &s, &err) == RW_BADREQ);
    rw_label *l;
    size_t n;
    CHECK(rules_parse_metric("up{job=\"a\", instance='b', x=\"\"}", NULL, &l, &n, &err) == RW_OK);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(l[0].name, "__name__");
        CHECK_STR(l[1].value, "b");
        CHECK_STR(l[2].value, "a");
    }
    rules_free_labels(l, n);
    CHECK(rules_parse_metric("{}", NULL, &l, &n, &err) == RW_OK && n == 0);
    rules_free_labels(l, n);
    CHECK(rules_parse_metric("up{job=~\"a\"}", NULL, &l, &n, &err) == RW_BADREQ);
}

int main(void)
{
    RUN(test_load);
    RUN(test_pending_firing_resolved);
    RUN(test_keep_firing_for);
    RUN(test_restore);
    RUN(test_restore_grace);
    RUN(test_recording);
    RUN(test_reload_keeps_alerts);
    RUN(test_alert_errors);
    RUN(test_manager_reconfigure);
    RUN(test_slots);
    RUN(test_formats);
    TEST_DONE();
}
