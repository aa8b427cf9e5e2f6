/* group.c - one evaluation of a rule group, and the state a group carries
 * between evaluations.
 *
 * A group's rules run in file order at one timestamp, `slot - query_offset`
 * (the group's query_offset, or the configured default: central evaluation
 * waits for late remote-write data). Each rule's result is appended through
 * the appender before the next rule runs, so a rule sees what the rules
 * before it recorded in the same evaluation. A series a rule wrote last time
 * and not this time gets a stale marker at the same timestamp. A failing
 * rule (query error, timeout, limit, duplicate output) is counted, logged
 * with its group and keeps its previous series; the group goes on.
 *
 * Scheduling lives in manager.c; alerting rules' state machine in alert.c.
 * This file is also what `rwgate test rules` drives, synchronously. */
#include "rules_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"

rw_group *rules_group_new(rw_group_def *def, int64_t default_interval_ms, rules_ctx *ctx)
{
    rw_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->def = def;
    g->ctx = ctx;
    g->interval_ms = def->interval_ms > 0 ? def->interval_ms : default_interval_ms;
    if (g->interval_ms <= 0)
        g->interval_ms = RW_RULES_DEFAULT_INTERVAL_MS;
    g->key = malloc(strlen(def->file) + strlen(def->name) + 2);
    g->rules = calloc(def->nrules ? def->nrules : 1, sizeof *g->rules);
    if (!g->key || !g->rules) {
        free(g->key);
        free(g->rules);
        free(g);
        return NULL;
    }
    sprintf(g->key, "%s;%s", def->file, def->name);
    g->nrules = def->nrules;
    for (size_t i = 0; i < g->nrules; i++) {
        g->rules[i].def = &def->rules[i];
        g->rules[i].last_eval_ms = RW_TIME_UNSET;
    }
    g->last_eval_wall_ms = RW_TIME_UNSET;
    g->last_eval_slot_ms = RW_TIME_UNSET;
    pthread_mutex_init(&g->mu, NULL);
    pthread_mutex_init(&g->run_mu, NULL);
    pthread_cond_init(&g->run_cond, NULL);
    return g;
}

static void rule_state_clear(rule_state *rs)
{
    free(rs->last_error);
    rs->last_error = NULL;
    sset_free(&rs->prev);
    for (size_t i = 0; i < rs->nalerts; i++)
        rules_alert_free(rs->alerts[i]);
    free(rs->alerts);
    rs->alerts = NULL;
    rs->nalerts = rs->capalerts = 0;
}

void rules_group_free(rw_group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nrules; i++)
        rule_state_clear(&g->rules[i]);
    free(g->rules);
    sset_free(&g->stale);
    rules_group_def_free(g->def);
    free(g->def);
    free(g->key);
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->run_mu);
    pthread_cond_destroy(&g->run_cond);
    free(g);
}

int64_t rules_group_slot(const rw_group *g, int64_t now_ms)
{
    rw_label id[2] = {{"file", g->def->file}, {"name", g->def->name}};
    int64_t iv = g->interval_ms;
    int64_t offset = (int64_t)(rw_labels_hash(id, 2) % (uint64_t)iv);
    /* the slot before now: aligned to the interval, shifted by offset */
    int64_t adj = now_ms - offset;
    int64_t base = adj - (((adj % iv) + iv) % iv);
    return base + offset;
}

int64_t rules_group_query_offset(rw_group *g, const rules_env *env)
{
    return g->def->has_query_offset ? g->def->query_offset_ms : env->default_query_offset_ms;
}

/* ---- output vector ---- */

int out_vec_push(out_vec *o, rw_arena *a, rw_label *l, size_t n, int64_t t, double v)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        rw_append_series *ns =
            rw_arena_realloc(a, o->s, o->cap * sizeof *o->s, nc * sizeof *o->s);
        rw_sample *nsm = rw_arena_realloc(a, o->smp, o->cap * sizeof *o->smp, nc * sizeof *nsm);
        if (!ns || !nsm)
            return -1;
        o->s = ns;
        o->smp = nsm;
        o->cap = nc;
    }
    o->smp[o->n].t = t;
    o->smp[o->n].v = v;
    rw_append_series *s = &o->s[o->n];
    s->labels = l;
    s->nlabels = n;
    s->hash = rw_labels_hash(l, n);
    s->samples = NULL; /* set once the arrays stop moving */
    s->nsamples = 1;
    s->lens = NULL;
    s->ref = 0;
    s->ref_only = 0;
    o->n++;
    return 0;
}

/* ---- recording rules ---- */

static int cmp_series_hash(const void *a, const void *b)
{
    const rw_append_series *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return rw_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static rw_rc record_eval(rw_group *g, rule_state *rs, const rw_result *res, int64_t t,
                         rw_arena *a, out_vec *out, rw_err *err)
{
    const rw_rule_def *r = rs->def;
    size_t nres = rules_result_len(res);
    for (size_t i = 0; i < nres; i++) {
        const rw_label *sl;
        size_t sn;
        double v;
        rules_result_sample(res, i, &sl, &sn, &v);
        lbuild b;
        if (lb_init(&b, a, sl, sn, r->nlabels + 1) != 0 || lb_set(&b, RW_METRIC_NAME, r->name) != 0)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        for (size_t k = 0; k < r->nlabels; k++)
            if (lb_set(&b, r->labels[k].name, r->labels[k].value) != 0)
                return rw_err_set(err, RW_NOMEM, "out of memory");
        lb_sort(&b);
        if (out_vec_push(out, a, b.l, b.n, t, v) != 0)
            return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    if (out->n > 1) {
        /* same label set twice: Prometheus' ErrDuplicateRecordingLabelSet */
        rw_append_series *tmp = rw_arena_alloc(a, out->n * sizeof *tmp);
        if (!tmp)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        memcpy(tmp, out->s, out->n * sizeof *tmp);
        qsort(tmp, out->n, sizeof *tmp, cmp_series_hash);
        for (size_t i = 1; i < out->n; i++)
            if (cmp_series_hash(&tmp[i - 1], &tmp[i]) == 0)
                return rw_err_set(err, RW_EXEC,
                                  "vector contains metrics with the same labelset after "
                                  "applying rule labels");
    }
    if (g->def->limit > 0 && (int64_t)out->n > g->def->limit)
        return rw_err_set(err, RW_LIMIT, "exceeded limit of %lld with %zu series",
                          (long long)g->def->limit, out->n);
    return RW_OK;
}

/* ---- appending ---- */

typedef struct rejects {
    const rw_append_series *base;
    unsigned char *rejected;
} rejects;

static void on_reject(void *ctx, const rw_append_series *s, size_t idx, rw_reject_reason why)
{
    rejects *r = ctx;
    r->rejected[s - r->base] = 1;
}

/* Appends out plus stale markers for rs->prev series that are not in out;
 * on success the accepted series become rs->prev. When the appender can,
 * the samples are only made visible here (*deferred set) and made durable
 * once for the whole group evaluation (rules_group_eval): a durable write
 * per rule would cost a disk flush per rule. */
static rw_rc append_results(rw_group *g, rule_state *rs, out_vec *out, int64_t t, rw_arena *a,
                            int *deferred, rw_err *err)
{
    size_t ncur = out->n;
    series_set next;
    if (sset_init(&next) != 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t i = 0; i < ncur; i++) {
        rw_err verr;
        rw_err_init(&verr);
        if (rw_labels_validate(out->s[i].labels, out->s[i].nlabels, &verr) != RW_OK) {
            sset_free(&next);
            return rw_err_set(err, RW_EXEC, "result series not storable: %s", verr.msg);
        }
        if (sset_add(&next, out->s[i].labels, out->s[i].nlabels, out->s[i].hash) != 0) {
            sset_free(&next);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < rs->prev.cap; i++) {
        const sset_ent *e = &rs->prev.tab[i];
        if (!e->labels || sset_has(&next, e->labels, e->nlabels, e->hash))
            continue;
        if (out_vec_push(out, a, e->labels, e->nlabels, t, rw_stale_nan()) != 0) {
            sset_free(&next);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
    }
    rw_rc rc = RW_OK;
    if (out->n) {
        for (size_t i = 0; i < out->n; i++)
            out->s[i].samples = &out->smp[i];
        rejects rj = {.base = out->s, .rejected = rw_arena_calloc(a, out->n, 1)};
        if (!rj.rejected) {
            sset_free(&next);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
        rw_append_result res;
        memset(&res, 0, sizeof res);
        res.on_reject = on_reject;
        res.on_reject_ctx = &rj;
        const rw_appender *ap = &g->ctx->appender;
        if (ap->ops->append_nowait && ap->ops->sync) {
            rc = ap->ops->append_nowait(ap->ctx, out->s, out->n, &res, err);
            *deferred = 1;
        } else {
            rc = rw_append(ap, out->s, out->n, &res, err);
        }
        if (rc != RW_OK) {
            sset_free(&next);
            rw_err_prefix(err, "rule sample appending failed");
            return rc;
        }
        size_t rej_cur = 0;
        for (size_t i = 0; i < ncur; i++)
            rej_cur += rj.rejected[i];
        if (rej_cur) {
            /* what the store refused (out of order, duplicate timestamp, too
               old) is not "written": rebuild the set without it */
            series_set acc;
            if (sset_init(&acc) == 0) {
                for (size_t i = 0; i < ncur; i++)
                    if (!rj.rejected[i])
                        sset_add(&acc, out->s[i].labels, out->s[i].nlabels, out->s[i].hash);
                sset_free(&next);
                next = acc;
            }
            if (!g->ctx->quiet)
                rw_warn("rules: group=%s rule=%s: %zu result samples discarded (out of order %llu, "
                        "duplicate timestamp %llu, too old %llu, series limit %llu)",
                        g->def->name, rs->def->name, rej_cur,
                        (unsigned long long)res.rejected[RW_REJ_OUT_OF_ORDER],
                        (unsigned long long)res.rejected[RW_REJ_DUPLICATE],
                        (unsigned long long)res.rejected[RW_REJ_TOO_OLD],
                        (unsigned long long)res.rejected[RW_REJ_SERIES_LIMIT]);
        }
    }
    pthread_mutex_lock(&g->mu);
    sset_free(&rs->prev);
    rs->prev = next;
    pthread_mutex_unlock(&g->mu);
    return RW_OK;
}

/* ---- one evaluation ---- */

static void set_health(rw_group *g, rule_state *rs, const rw_err *err)
{
    pthread_mutex_lock(&g->mu);
    free(rs->last_error);
    rs->last_error = err ? strdup(err->msg) : NULL;
    rs->health = err ? HEALTH_ERR : HEALTH_OK;
    pthread_mutex_unlock(&g->mu);
}

static int stop_requested(rw_group *g)
{
    if (!g->manager)
        return 0;
    pthread_mutex_lock(&g->run_mu);
    int s = g->stop;
    pthread_mutex_unlock(&g->run_mu);
    return s;
}

static void write_stale_set(rw_group *g, series_set *set, int64_t t)
{
    if (!set->n)
        return;
    rw_arena *a = rw_arena_new(0, 0);
    if (!a)
        return;
    out_vec out = {0};
    for (size_t i = 0; i < set->cap; i++)
        if (set->tab[i].labels &&
            out_vec_push(&out, a, set->tab[i].labels, set->tab[i].nlabels, t, rw_stale_nan()) != 0)
            break;
    for (size_t i = 0; i < out.n; i++)
        out.s[i].samples = &out.smp[i];
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err err;
    rw_err_init(&err);
    if (out.n && rw_append(&g->ctx->appender, out.s, out.n, &res, &err) != RW_OK) {
        if (!g->ctx->quiet)
            rw_warn("rules: group=%s: stale markers for removed rules not written: %s",
                    g->def->name, err.msg);
    } else {
        sset_free(set);
    }
    rw_arena_free(a);
}

static void eval_rule(rw_group *g, rule_state *rs, const rules_env *env, int64_t ts,
                      int64_t offset, uint64_t *samples, int *deferred)
{
    const rw_rule_def *r = rs->def;
    int64_t t0 = rw_mono_ns(), wall = rw_now_ms();
    int64_t t = ts - offset;
    atomic_fetch_add(&g->evaluations, 1);
    rw_arena *a = rw_arena_new(0, 0);
    rw_err err;
    rw_err_init(&err);
    rw_rc rc;
    rw_result res;
    memset(&res, 0, sizeof res);
    out_vec out = {0};
    if (!a) {
        rc = rw_err_set(&err, RW_NOMEM, "out of memory");
        goto done;
    }
    rw_eval_opts eo = {.timeout_ms = g->ctx->timeout_ms, .max_samples = g->ctx->max_samples};
    rc = rw_engine_eval_instant(g->ctx->engine, r->expr, t, &eo, a, &res, &err);
    if (rc != RW_OK)
        goto done;
    if (res.type != RW_VAL_VECTOR && res.type != RW_VAL_SCALAR) {
        rc = rw_err_set(&err, RW_EXEC, "rule result is not a vector or scalar");
        goto done;
    }
    if (r->kind == RULE_RECORD) {
        rc = record_eval(g, rs, &res, t, a, &out, &err);
    } else {
        /* takes g->mu itself, after expanding templates (which may query) */
        rc = rules_alert_eval(g, rs, env, &res, ts, offset, a, &out, &err);
    }
    if (rc != RW_OK)
        goto done;
    *samples += rules_result_len(&res);
    if (r->kind == RULE_ALERT) {
        pthread_mutex_lock(&g->mu);
        rules_alert_send(g, rs, env, ts, a);
        pthread_mutex_unlock(&g->mu);
    }
    rc = append_results(g, rs, &out, t, a, deferred, &err);
done:
    if (rc != RW_OK) {
        atomic_fetch_add(&g->failures, 1);
        if (!g->ctx->quiet)
            rw_warn("rules: evaluating rule failed: group=\"%s\" file=%s rule=\"%s\" index=%zu: %s",
                    g->def->name, g->def->file, r->name, (size_t)(rs - g->rules), err.msg);
    }
    set_health(g, rs, rc == RW_OK ? NULL : &err);
    pthread_mutex_lock(&g->mu);
    rs->eval_seconds = (double)(rw_mono_ns() - t0) / 1e9;
    rs->last_eval_ms = wall;
    pthread_mutex_unlock(&g->mu);
    rw_arena_free(a);
}

void rules_group_eval(rw_group *g, int64_t ts)
{
    int64_t t0 = rw_mono_ns(), wall = rw_now_ms();
    rules_env *env = rules_ctx_env(g->ctx);
    int64_t offset = rules_group_query_offset(g, env);
    uint64_t samples = 0;
    atomic_fetch_add(&g->iterations, 1);
    unsigned char *deferred = calloc(g->nrules + 1, 1);
    int any_deferred = 0;
    for (size_t i = 0; i < g->nrules; i++) {
        if (stop_requested(g))
            break;
        int d = 0;
        eval_rule(g, &g->rules[i], env, ts, offset, &samples, &d);
        if (deferred)
            deferred[i] = (unsigned char)d;
        any_deferred |= d;
    }
    if (any_deferred && g->ctx->request_sync) {
        g->ctx->request_sync(g->ctx->sync_ctx);
    } else if (any_deferred) {
        /* one durable commit for every rule's results of this evaluation */
        const rw_appender *ap = &g->ctx->appender;
        rw_err err;
        rw_err_init(&err);
        if (ap->ops->sync(ap->ctx, &err) != RW_OK) {
            rw_err_prefix(&err, "rule sample appending failed");
            if (!g->ctx->quiet)
                rw_warn("rules: group=\"%s\" file=%s: %s", g->def->name, g->def->file, err.msg);
            for (size_t i = 0; i < g->nrules; i++)
                if (!deferred || deferred[i]) {
                    atomic_fetch_add(&g->failures, 1);
                    set_health(g, &g->rules[i], &err);
                }
        }
    }
    free(deferred);
    if (g->stale.n)
        write_stale_set(g, &g->stale, ts - offset);
    rules_env_unref(env);
    pthread_mutex_lock(&g->mu);
    g->last_duration_s = (double)(rw_mono_ns() - t0) / 1e9;
    g->last_eval_wall_ms = wall;
    g->last_eval_slot_ms = ts;
    g->last_samples = samples;
    pthread_mutex_unlock(&g->mu);
}

void rules_group_mark_all_stale(rw_group *g, int64_t ts)
{
    rules_env *env = rules_ctx_env(g->ctx);
    int64_t t = ts - rules_group_query_offset(g, env);
    rules_env_unref(env);
    for (size_t i = 0; i < g->nrules; i++) {
        series_set s;
        pthread_mutex_lock(&g->mu);
        s = g->rules[i].prev;
        memset(&g->rules[i].prev, 0, sizeof g->rules[i].prev);
        pthread_mutex_unlock(&g->mu);
        write_stale_set(g, &s, t);
        sset_free(&s);
    }
    write_stale_set(g, &g->stale, t);
}

/* ---- reload: carry state over from the group this one replaces ---- */

static void sset_merge(series_set *dst, const series_set *src)
{
    for (size_t i = 0; i < src->cap; i++)
        if (src->tab[i].labels)
            sset_add(dst, src->tab[i].labels, src->tab[i].nlabels, src->tab[i].hash);
}

void rules_group_copy_state(rw_group *g, rw_group *old)
{
    pthread_mutex_lock(&old->mu);
    g->last_duration_s = old->last_duration_s;
    g->last_eval_wall_ms = old->last_eval_wall_ms;
    g->last_eval_slot_ms = old->last_eval_slot_ms;
    atomic_store(&g->iterations, atomic_load(&old->iterations));
    atomic_store(&g->missed, atomic_load(&old->missed));
    atomic_store(&g->evaluations, atomic_load(&old->evaluations));
    atomic_store(&g->failures, atomic_load(&old->failures));
    unsigned char *taken = calloc(old->nrules + 1, 1);
    for (size_t i = 0; i < g->nrules; i++) {
        rule_state *rs = &g->rules[i];
        /* first unmatched old rule with the same name and labels (duplicates
           pair up in order, as Prometheus' CopyState) */
        for (size_t k = 0; taken && k < old->nrules; k++) {
            rule_state *os = &old->rules[k];
            if (taken[k] || !rules_rule_same_identity(rs->def, os->def))
                continue;
            taken[k] = 1;
            rs->prev = os->prev;
            memset(&os->prev, 0, sizeof os->prev);
            if (rs->def->kind == RULE_ALERT) {
                rs->alerts = os->alerts;
                rs->nalerts = os->nalerts;
                rs->capalerts = os->capalerts;
                os->alerts = NULL;
                os->nalerts = os->capalerts = 0;
            }
            break;
        }
    }
    /* series of rules that are gone: stale at the next evaluation */
    if (old->stale.n)
        sset_merge(&g->stale, &old->stale);
    for (size_t k = 0; taken && k < old->nrules; k++)
        if (!taken[k] && old->rules[k].prev.n)
            sset_merge(&g->stale, &old->rules[k].prev);
    free(taken);
    pthread_mutex_unlock(&old->mu);
}
