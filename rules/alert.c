/* alert.c - alerting rules: Prometheus' state machine, the ALERTS and
 * ALERTS_FOR_STATE series, what is sent to Alertmanager and when, and the
 * restore of `for` progress after a restart.
 *
 * Per evaluation at slot ts (query at ts - query_offset):
 *  - every result sample becomes an alert: its labels without __name__, the
 *    rule's labels (templates expanded with $labels, $value, ...) and
 *    alertname; annotations are expanded too;
 *  - a new alert (or one that had resolved) starts pending with activeAt =
 *    ts; it fires once ts - activeAt >= for;
 *  - an alert missing from the result resolves (pending ones are dropped),
 *    unless it was firing and keep_firing_for has not passed since it first
 *    went missing; a resolved alert is kept (and resent) for 15 minutes;
 *  - once the rule is "restored", every active alert writes ALERTS{alertstate}
 *    = 1 and ALERTS_FOR_STATE = activeAt in seconds, at ts - query_offset.
 * Sending: firing alerts every resend delay, resolved ones once resolved and
 * again every resend delay while kept; endsAt is resolvedAt, or ts + 4 x
 * max(interval, resend delay) for firing ones, so Alertmanager resolves them
 * itself if rwgate goes away. */
#include "rules_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"

#define RESOLVED_RETENTION_MS (15 * 60 * 1000)
#define ALERTS_METRIC "ALERTS"
#define ALERTS_FOR_STATE_METRIC "ALERTS_FOR_STATE"

/* ---- alerts ---- */

static rw_label *copy_block(const rw_label *l, size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(rw_label);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    rw_label *c = malloc(bytes);
    if (!c)
        return NULL;
    char *p = (char *)(c + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(p, l[i].name, a);
        c[i].name = p;
        p += a;
        memcpy(p, l[i].value, b);
        c[i].value = p;
        p += b;
    }
    return c;
}

rw_alert *rules_alert_new(const rw_label *l, size_t n, const rw_label *ann, size_t nann)
{
    rw_alert *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->labels = copy_block(l, n);
    a->annotations = copy_block(ann, nann);
    if (!a->labels || !a->annotations) {
        rules_alert_free(a);
        return NULL;
    }
    a->nlabels = n;
    a->nannotations = nann;
    a->hash = rw_labels_hash(l, n);
    a->active_at = a->fired_at = a->resolved_at = RW_TIME_UNSET;
    a->last_sent_at = a->valid_until = a->keep_firing_since = RW_TIME_UNSET;
    return a;
}

void rules_alert_free(rw_alert *a)
{
    if (!a)
        return;
    free(a->labels);
    free(a->annotations);
    free(a);
}

int rules_alert_set_annotations(rw_alert *a, const rw_label *ann, size_t nann)
{
    rw_label *c = copy_block(ann, nann);
    if (!c)
        return -1;
    free(a->annotations);
    a->annotations = c;
    a->nannotations = nann;
    return 0;
}

/* ---- templates ---- */

typedef struct tquery {
    rules_ctx *ctx;
    int64_t t;
} tquery;

/* `query` in templates: evaluated at the evaluation slot, as Prometheus'
 * template expander does */
static rw_rc template_query(void *c, const char *expr, rw_arena *a, rw_result *out, rw_err *err)
{
    tquery *q = c;
    rw_promql_expr *x = rw_promql_prepare(expr, err);
    if (!x)
        return err ? err->code : RW_BADREQ;
    rw_eval_opts eo = {.timeout_ms = q->ctx->timeout_ms, .max_samples = q->ctx->max_samples};
    rw_rc rc = rw_engine_eval_instant(q->ctx->engine, x, q->t, &eo, a, out, err);
    rw_promql_expr_free(x);
    if (rc == RW_OK && out->type == RW_VAL_SCALAR) {
        /* Prometheus' rule query function turns a scalar into a one-sample vector */
        rw_result_series *s = rw_arena_calloc(a, 1, sizeof *s);
        rw_point *p = rw_arena_alloc(a, sizeof *p);
        if (!s || !p)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        p->t = out->t;
        p->v = out->scalar;
        s->points = p;
        s->npoints = 1;
        out->type = RW_VAL_VECTOR;
        out->series = s;
        out->nseries = 1;
    } else if (rc == RW_OK && out->type != RW_VAL_VECTOR) {
        return rw_err_set(err, RW_EXEC, "rule result is not a vector or scalar");
    }
    return rc;
}

static const char *expand(rw_group *g, const rw_rule_def *r, const rw_tmpl *t, const char *raw,
                          const rw_tmpl_data *d, rw_arena *a)
{
    if (!t)
        return raw;
    char *out = NULL;
    rw_err err;
    rw_err_init(&err);
    if (rw_tmpl_exec(t, d, a, &out, &err) == RW_OK && out)
        return out;
    if (!g->ctx->quiet)
        rw_warn("rules: expanding alert template failed: group=\"%s\" alert=\"%s\": %s",
                g->def->name, r->name, err.msg);
    out = rw_arena_sprintf(a, "<error expanding template: %s>", err.msg);
    return out ? out : "";
}

/* ---- evaluation ---- */

typedef struct cand {
    rw_label *labels;
    size_t nlabels;
    rw_label *ann;
    size_t nann;
    uint64_t hash;
    double value;
} cand;

static int cand_cmp(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return rw_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

static rw_alert *find_alert(rule_state *rs, const rw_label *l, size_t n, uint64_t h, size_t *idx)
{
    for (size_t i = 0; i < rs->nalerts; i++) {
        rw_alert *a = rs->alerts[i];
        if (a->hash == h && rw_labels_equal(a->labels, a->nlabels, l, n)) {
            if (idx)
                *idx = i;
            return a;
        }
    }
    return NULL;
}

static int add_alert(rule_state *rs, rw_alert *a)
{
    if (rs->nalerts == rs->capalerts) {
        size_t nc = rs->capalerts ? rs->capalerts * 2 : 8;
        rw_alert **na = realloc(rs->alerts, nc * sizeof *na);
        if (!na)
            return -1;
        rs->alerts = na;
        rs->capalerts = nc;
    }
    rs->alerts[rs->nalerts++] = a;
    return 0;
}

/* ALERTS / ALERTS_FOR_STATE labels: the rule's labels as written, overlaid
 * by the alert's, then the name (and state) */
static int alert_series(const rw_rule_def *r, const rw_alert *al, const char *metric,
                        const char *state, rw_arena *a, lbuild *b)
{
    if (lb_init(b, a, NULL, 0, r->nlabels + al->nlabels + 3) != 0)
        return -1;
    for (size_t k = 0; k < r->nlabels; k++)
        if (lb_set(b, r->labels[k].name, r->labels[k].value) != 0)
            return -1;
    for (size_t k = 0; k < al->nlabels; k++)
        if (lb_set(b, al->labels[k].name, al->labels[k].value) != 0)
            return -1;
    if (lb_set(b, RW_METRIC_NAME, metric) != 0 || lb_set(b, "alertname", r->name) != 0)
        return -1;
    if (state && lb_set(b, "alertstate", state) != 0)
        return -1;
    lb_sort(b);
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

rw_rc rules_alert_eval(rw_group *g, rule_state *rs, const rules_env *env, const rw_result *res,
                       int64_t ts, int64_t offset_ms, rw_arena *a, out_vec *out, rw_err *err)
{
    const rw_rule_def *r = rs->def;
    size_t nres = rules_result_len(res);
    cand *cs = rw_arena_calloc(a, nres ? nres : 1, sizeof *cs);
    if (!cs)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    tquery tq = {.ctx = g->ctx, .t = ts};

    /* phase 1, without the lock: expand templates (they may query) */
    for (size_t i = 0; i < nres; i++) {
        const rw_label *sl;
        size_t sn;
        double v;
        rules_result_sample(res, i, &sl, &sn, &v);
        rw_tmpl_data d = {.labels = sl, .nlabels = sn, .value = v, .external_labels = env->ext,
                          .nexternal = env->next, .external_url = env->external_url,
                          .query = template_query, .query_ctx = &tq};
        lbuild b;
        if (lb_init(&b, a, sl, sn, r->nlabels + 1) != 0)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        lb_del(&b, RW_METRIC_NAME);
        for (size_t k = 0; k < r->nlabels; k++) {
            const char *val = expand(g, r, r->label_tmpl ? r->label_tmpl[k] : NULL,
                                     r->labels[k].value, &d, a);
            if (lb_set(&b, r->labels[k].name, val) != 0)
                return rw_err_set(err, RW_NOMEM, "out of memory");
        }
        if (lb_set(&b, "alertname", r->name) != 0)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        lb_sort(&b);
        rw_label *ann = rw_arena_alloc(a, (r->nannotations + 1) * sizeof *ann);
        if (!ann)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        for (size_t k = 0; k < r->nannotations; k++) {
            ann[k].name = r->annotations[k].name;
            ann[k].value = expand(g, r, r->ann_tmpl ? r->ann_tmpl[k] : NULL,
                                  r->annotations[k].value, &d, a);
        }
        cs[i] = (cand){.labels = b.l, .nlabels = b.n, .ann = ann, .nann = r->nannotations,
                       .hash = rw_labels_hash(b.l, b.n), .value = v};
    }
    if (nres > 1) {
        cand *sorted = rw_arena_alloc(a, nres * sizeof *sorted);
        if (!sorted)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        memcpy(sorted, cs, nres * sizeof *sorted);
        qsort(sorted, nres, sizeof *sorted, cand_cmp);
        for (size_t i = 1; i < nres; i++)
            if (cand_cmp(&sorted[i - 1], &sorted[i]) == 0)
                return rw_err_set(err, RW_EXEC,
                                  "vector contains metrics with the same labelset after "
                                  "applying alert labels");
    }

    /* phase 2, under the lock readers take: the state machine */
    rw_rc rc = RW_OK;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < nres; i++) {
        cand *c = &cs[i];
        size_t idx;
        rw_alert *old = find_alert(rs, c->labels, c->nlabels, c->hash, &idx);
        if (old && old->state != ALERT_INACTIVE) {
            old->value = c->value;
            /* annotations mostly stay the same: copy only when they changed */
            if (!rw_labels_equal(old->annotations, old->nannotations, c->ann, c->nann))
                rules_alert_set_annotations(old, c->ann, c->nann);
            continue;
        }
        rw_alert *al = rules_alert_new(c->labels, c->nlabels, c->ann, c->nann);
        if (!al) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            goto unlock;
        }
        al->active_at = ts;
        al->state = ALERT_PENDING;
        al->value = c->value;
        if (old) {
            rules_alert_free(old);
            rs->alerts[idx] = al;
        } else if (add_alert(rs, al) != 0) {
            rules_alert_free(al);
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            goto unlock;
        }
    }
    unsigned char *in_result = rw_arena_calloc(a, rs->nalerts + 1, 1);
    unsigned char *drop = rw_arena_calloc(a, rs->nalerts + 1, 1);
    if (!in_result || !drop) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto unlock;
    }
    for (size_t i = 0; i < nres; i++) {
        size_t idx;
        if (find_alert(rs, cs[i].labels, cs[i].nlabels, cs[i].hash, &idx))
            in_result[idx] = 1;
    }
    size_t active_pending = 0;
    int64_t t = ts - offset_ms;
    for (size_t i = 0; i < rs->nalerts; i++) {
        rw_alert *al = rs->alerts[i];
        if (!in_result[i]) {
            int keep_firing = 0;
            if (al->state == ALERT_FIRING && r->keep_firing_for_ms > 0) {
                if (al->keep_firing_since == RW_TIME_UNSET)
                    al->keep_firing_since = ts;
                if (ts - al->keep_firing_since < r->keep_firing_for_ms)
                    keep_firing = 1;
            }
            if (al->state == ALERT_PENDING ||
                (al->resolved_at != RW_TIME_UNSET && ts - al->resolved_at > RESOLVED_RETENTION_MS))
                drop[i] = 1;
            if (al->state != ALERT_INACTIVE && !keep_firing) {
                al->state = ALERT_INACTIVE;
                al->resolved_at = ts;
            }
            if (!keep_firing)
                continue;
        } else {
            al->keep_firing_since = RW_TIME_UNSET;
        }
        active_pending++;
        if (al->state == ALERT_PENDING && ts - al->active_at >= r->for_ms) {
            al->state = ALERT_FIRING;
            al->fired_at = ts;
        }
        if (al->state == ALERT_FIRING && ts - al->active_at < r->for_ms) {
            /* restored activeAt moved into the future: back to pending */
            al->state = ALERT_PENDING;
            al->fired_at = RW_TIME_UNSET;
            al->last_sent_at = RW_TIME_UNSET;
            al->keep_firing_since = RW_TIME_UNSET;
        }
        if (rs->restored) {
            lbuild b1, b2;
            if (alert_series(r, al, ALERTS_METRIC, rules_alert_state_str(al->state), a, &b1) != 0 ||
                out_vec_push(out, a, b1.l, b1.n, t, 1) != 0 ||
                alert_series(r, al, ALERTS_FOR_STATE_METRIC, NULL, a, &b2) != 0 ||
                out_vec_push(out, a, b2.l, b2.n, t, (double)floor_div(al->active_at, 1000)) != 0) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < rs->nalerts; i++) {
        if (drop[i])
            rules_alert_free(rs->alerts[i]);
        else
            rs->alerts[k++] = rs->alerts[i];
    }
    rs->nalerts = k;
    if (rc == RW_OK && g->def->limit > 0 && (int64_t)active_pending > g->def->limit) {
        for (size_t i = 0; i < rs->nalerts; i++)
            rules_alert_free(rs->alerts[i]);
        rs->nalerts = 0;
        out->n = 0;
        rc = rw_err_set(err, RW_LIMIT, "exceeded limit of %lld with %zu alerts",
                        (long long)g->def->limit, active_pending);
    }
unlock:
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- sending ---- */

static int needs_sending(const rw_alert *a, int64_t ts, int64_t resend_delay)
{
    if (a->state == ALERT_PENDING)
        return 0;
    if (a->resolved_at != RW_TIME_UNSET &&
        (a->last_sent_at == RW_TIME_UNSET || a->resolved_at > a->last_sent_at))
        return 1;
    return a->last_sent_at == RW_TIME_UNSET || a->last_sent_at + resend_delay < ts;
}

void rules_alert_send(rw_group *g, rule_state *rs, const rules_env *env, int64_t ts, rw_arena *a)
{
    rules_ctx *c = g->ctx;
    int64_t resend = c->resend_delay_ms;
    int64_t delta = g->interval_ms > resend ? g->interval_ms : resend;
    rw_alert_msg *msgs = NULL;
    size_t n = 0;
    const char *url = NULL;
    for (size_t i = 0; i < rs->nalerts; i++) {
        rw_alert *al = rs->alerts[i];
        if (!needs_sending(al, ts, resend))
            continue;
        al->last_sent_at = ts;
        al->valid_until = ts + 4 * delta;
        if (!c->notify)
            continue;
        if (!msgs) {
            msgs = rw_arena_calloc(a, rs->nalerts, sizeof *msgs);
            rw_buf b;
            rw_buf_init(&b, 0);
            const char *base = env->external_url;
            size_t bl = strlen(base);
            while (bl && base[bl - 1] == '/')
                bl--;
            rw_buf_append(&b, base, bl);
            rw_buf_puts(&b, "/graph?g0.expr=");
            rules_query_escape(&b, rw_promql_expr_string(rs->def->expr));
            rw_buf_puts(&b, "&g0.tab=1");
            url = b.p ? rw_arena_strdup(a, b.p) : "";
            rw_buf_free(&b);
            if (!msgs)
                return;
        }
        msgs[n++] = (rw_alert_msg){
            .labels = al->labels,
            .nlabels = al->nlabels,
            .annotations = al->annotations,
            .nannotations = al->nannotations,
            .starts_at_ms = al->fired_at != RW_TIME_UNSET ? al->fired_at : al->active_at,
            .ends_at_ms = al->resolved_at != RW_TIME_UNSET ? al->resolved_at : al->valid_until,
            .generator_url = url ? url : "",
        };
    }
    if (n && c->notify)
        c->notify(c->notify_ctx, msgs, n);
}

/* ---- restoring `for` state after a restart ---- */

typedef struct last_sample {
    rw_label *labels; /* without __name__ */
    size_t nlabels;
    int64_t t;
    double v;
} last_sample;

static void restore_rule(rw_group *g, rule_state *rs, int64_t now, rw_arena *a)
{
    rules_ctx *c = g->ctx;
    const rw_rule_def *r = rs->def;
    int64_t hold = r->for_ms;
    if (hold < c->for_grace_period_ms)
        return; /* would fire within the grace period anyway */

    /* ALERTS_FOR_STATE{alertname, the rule's labels without templates} */
    rw_matcher ms[64];
    size_t nm = 0;
    rw_err err;
    rw_err_init(&err);
    int ok = rw_matcher_init(&ms[nm++], RW_MATCH_EQ, RW_METRIC_NAME, ALERTS_FOR_STATE_METRIC,
                             &err) == RW_OK &&
             rw_matcher_init(&ms[nm++], RW_MATCH_EQ, "alertname", r->name, &err) == RW_OK;
    for (size_t k = 0; ok && k < r->nlabels && nm < 64; k++) {
        const char *v = r->labels[k].value;
        if (!*v || strstr(v, "{{") || strcmp(r->labels[k].name, "alertname") == 0)
            continue;
        ok = rw_matcher_init(&ms[nm++], RW_MATCH_EQ, r->labels[k].name, v, &err) == RW_OK;
    }
    rw_series_data *sd = NULL;
    size_t nsd = 0;
    if (ok)
        ok = rw_query_select(&c->querier, ms, nm, now - c->outage_tolerance_ms, now, 0, 0, a, &sd,
                             &nsd, &err) == RW_OK;
    for (size_t k = 0; k < nm; k++)
        rw_matcher_free(&ms[k]);
    if (!ok) {
        if (!c->quiet)
            rw_error("rules: failed to restore 'for' state: group=\"%s\" alert=\"%s\": %s",
                     g->def->name, r->name, err.msg);
        return;
    }
    last_sample *ls = rw_arena_calloc(a, nsd + 1, sizeof *ls);
    if (!ls)
        return;
    size_t nls = 0;
    for (size_t i = 0; i < nsd; i++) {
        if (!sd[i].n)
            continue;
        lbuild b;
        if (lb_init(&b, a, sd[i].labels, sd[i].nlabels, 0) != 0)
            return;
        lb_del(&b, RW_METRIC_NAME);
        ls[nls++] = (last_sample){b.l, b.n, sd[i].t[sd[i].n - 1], sd[i].v[sd[i].n - 1]};
    }
    if (!nls)
        return;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < rs->nalerts; i++) {
        rw_alert *al = rs->alerts[i];
        last_sample *s = NULL;
        for (size_t k = 0; k < nls && !s; k++)
            if (rw_labels_equal(ls[k].labels, ls[k].nlabels, al->labels, al->nlabels))
                s = &ls[k];
        if (!s || rw_is_stale_nan(s->v) || isnan(s->v))
            continue;
        /* seconds, as Prometheus keeps them */
        int64_t down_at = floor_div(s->t, 1000) * 1000;
        int64_t restored = (int64_t)s->v * 1000;
        int64_t remaining = hold - (down_at - restored);
        if (remaining <= 0) {
            /* it was firing when rwgate went down: fires again at the next
               evaluation if it still holds */
        } else if (remaining < c->for_grace_period_ms) {
            restored = now + c->for_grace_period_ms - hold;
        } else {
            restored += now - down_at;
        }
        al->active_at = restored;
        if (!c->quiet)
            rw_info("rules: 'for' state restored: alert=\"%s\" activeAt=%lld", r->name,
                    (long long)(restored / 1000));
    }
    pthread_mutex_unlock(&g->mu);
}

void rules_group_restore(rw_group *g, int64_t now_ms)
{
    for (size_t i = 0; i < g->nrules; i++) {
        rule_state *rs = &g->rules[i];
        if (rs->def->kind != RULE_ALERT)
            continue;
        rw_arena *a = rw_arena_new(0, 0);
        if (a)
            restore_rule(g, rs, now_ms, a);
        rw_arena_free(a);
        pthread_mutex_lock(&g->mu);
        rs->restored = 1;
        pthread_mutex_unlock(&g->mu);
    }
}
