/* engine.c - the PromQL engine's public API (promql.h): parses a query,
 * evaluates it (eval.c) in a private arena, and builds the result in the
 * caller's arena: names dropped where delayed name removal asks for it,
 * range results merged by label set and sorted, and the annotations
 * collected during evaluation. An engine is immutable after rw_engine_new,
 * so one engine serves any number of threads; each call has its own arena,
 * AST and compiled matchers.
 *
 * A range query is evaluated in batches of steps: every node holds
 * (series x steps) values while it is evaluated, so a dashboard's 3-day
 * panel over thousands of series would need gigabytes at once. Each batch
 * of steps gets a fresh evaluation arena and its own max_samples budget; its
 * result joins the output, merged by label set at the end. After the first
 * batch the size follows what a batch used (about EVAL_BATCH_BYTES),
 * so that a cheap query runs in as few batches as there are workers, and a batch that
 * hits max_samples is retried with half the steps - a query is refused only
 * when a single step does not fit. PromQL evaluates every step on its own
 * (windows, lookback, subquery steps and @ start()/end() are absolute), so
 * the batches give exactly the one-pass result - and can run at the same
 * time: up to MAX_WORKERS threads (one per CPU) take batches, which is what
 * lets a long range query use the machine's cores. */
#define _GNU_SOURCE
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/cfg.h"
#include "query/api.h"

#define MAX_RANGE_POINTS 11000
#define EVAL_BATCH_BYTES (64u << 20)
#define FIRST_BATCH_STEPS 512

rw_engine *rw_engine_new(const rw_querier *querier, const rw_engine_opts *opts)
{
    rw_engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->querier = *querier;
    if (opts)
        e->opts = *opts;
    /* zero fields take the configuration table's defaults (query_config.c) */
    rw_query_config d;
    rw_cfg_defaults(&rw_query_config_table, &d);
    rw_engine_opts def = rw_query_engine_opts(&d);
    if (e->opts.lookback_ms <= 0)
        e->opts.lookback_ms = def.lookback_ms;
    if (e->opts.default_subquery_step_ms <= 0)
        e->opts.default_subquery_step_ms = def.default_subquery_step_ms;
    if (e->opts.max_samples == 0)
        e->opts.max_samples = def.max_samples;
    if (e->opts.timeout_ms <= 0)
        e->opts.timeout_ms = def.timeout_ms;
    if (e->opts.max_memory_bytes == 0)
        e->opts.max_memory_bytes = def.max_memory_bytes;
    if (e->opts.max_label_value_bytes == 0)
        e->opts.max_label_value_bytes = 4096;
    return e;
}

void rw_engine_free(rw_engine *e)
{
    free(e);
}

/* ---- result building ---- */

/* Labels for output: __name__ removed when the series asks for it. Copied
 * into the caller's arena. */
static rw_label *out_labels(rw_arena *a, const rw_label *l, size_t n, int drop, size_t *nout)
{
    rw_label *o = rw_arena_alloc(a, (n ? n : 1) * sizeof *o);
    size_t m = 0;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (drop && !strcmp(l[i].name, RW_METRIC_NAME))
            continue;
        o[m].name = rw_arena_strdup(a, l[i].name);
        o[m].value = rw_arena_strdup(a, l[i].value);
        if (!o[m].name || !o[m].value)
            return NULL;
        m++;
    }
    *nout = m;
    return o;
}

static int cmp_result_series(const void *x, const void *y)
{
    const rw_result_series *a = x, *b = y;
    return rw_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

/* Sorts a matrix by labels, merging series whose label sets became equal
 * (after name removal) when their points do not overlap. */
static rw_rc finish_matrix(rw_arena *a, rw_result *out, rw_err *err)
{
    qsort(out->series, out->nseries, sizeof *out->series, cmp_result_series);
    size_t m = 0;
    for (size_t i = 0; i < out->nseries; i++) {
        if (m > 0 && rw_labels_equal(out->series[m - 1].labels, out->series[m - 1].nlabels,
                                     out->series[i].labels, out->series[i].nlabels)) {
            rw_result_series *d = &out->series[m - 1], *s = &out->series[i];
            rw_point *p = rw_arena_alloc(a, (d->npoints + s->npoints) * sizeof *p);
            if (!p)
                return rw_err_set(err, RW_NOMEM, "out of memory building the result");
            /* both in step order: merged in one pass; a step in both is
               two values for one label set */
            size_t np = 0, x = 0, y = 0;
            while (x < d->npoints || y < s->npoints) {
                if (x < d->npoints && y < s->npoints && d->points[x].t == s->points[y].t)
                    return rw_err_set(err, RW_EXEC,
                                      "vector cannot contain metrics with the same labelset");
                if (y >= s->npoints || (x < d->npoints && d->points[x].t < s->points[y].t))
                    p[np++] = d->points[x++];
                else
                    p[np++] = s->points[y++];
            }
            d->points = p;
            d->npoints = np;
            continue;
        }
        out->series[m++] = out->series[i];
    }
    out->nseries = m;
    return RW_OK;
}

static rw_rc build_result(rw_eval_ctx *ctx, rw_eval_value *v, int range, rw_arena *a,
                          rw_result *out, rw_err *err)
{
    size_t nsteps = ctx->nsteps;
    switch (v->type) {
    case RW_VAL_STRING:
        out->type = RW_VAL_STRING;
        out->t = ctx->ts[0];
        out->string = rw_arena_strdup(a, v->str ? v->str : "");
        return out->string ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");
    case RW_VAL_SCALAR:
        if (!range) {
            out->type = RW_VAL_SCALAR;
            out->t = ctx->ts[0];
            out->scalar = v->scalar[0];
            return RW_OK;
        }
        out->type = RW_VAL_MATRIX;
        out->series = rw_arena_calloc(a, 1, sizeof *out->series);
        if (!out->series || !(out->series[0].points = rw_arena_alloc(a, nsteps * sizeof(rw_point))))
            return rw_err_set(err, RW_NOMEM, "out of memory building the result");
        for (size_t i = 0; i < nsteps; i++) {
            out->series[0].points[i].t = ctx->ts[i];
            out->series[0].points[i].v = v->scalar[i];
        }
        out->series[0].npoints = nsteps;
        out->nseries = 1;
        return RW_OK;
    case RW_VAL_VECTOR: {
        out->type = range ? RW_VAL_MATRIX : RW_VAL_VECTOR;
        out->series = rw_arena_calloc(a, v->nseries ? v->nseries : 1, sizeof *out->series);
        if (!out->series)
            return rw_err_set(err, RW_NOMEM, "out of memory building the result");
        for (size_t s = 0; s < v->nseries; s++) {
            rw_eval_series *se = &v->series[s];
            size_t np = 0;
            for (size_t i = 0; i < nsteps; i++)
                np += se->ok[i];
            if (!np)
                continue;
            rw_result_series *o = &out->series[out->nseries];
            o->labels = out_labels(a, se->labels, se->nlabels, se->drop_name, &o->nlabels);
            o->points = rw_arena_alloc(a, np * sizeof(rw_point));
            if (!o->labels || !o->points)
                return rw_err_set(err, RW_NOMEM, "out of memory building the result");
            for (size_t i = 0; i < nsteps; i++)
                if (se->ok[i]) {
                    o->points[o->npoints].t = ctx->ts[i];
                    o->points[o->npoints].v = se->v[i];
                    o->npoints++;
                }
            out->nseries++;
        }
        if (range)
            return finish_matrix(a, out, err);
        /* an instant vector must not hold one label set twice */
        if (out->nseries > 1) {
            rw_result_series *tmp = rw_arena_alloc(a, out->nseries * sizeof *tmp);
            if (!tmp)
                return rw_err_set(err, RW_NOMEM, "out of memory building the result");
            memcpy(tmp, out->series, out->nseries * sizeof *tmp);
            qsort(tmp, out->nseries, sizeof *tmp, cmp_result_series);
            for (size_t i = 1; i < out->nseries; i++)
                if (rw_labels_equal(tmp[i - 1].labels, tmp[i - 1].nlabels, tmp[i].labels,
                                    tmp[i].nlabels))
                    return rw_err_set(err, RW_EXEC,
                                      "vector cannot contain metrics with the same labelset");
        }
        return RW_OK;
    }
    case RW_VAL_MATRIX: {
        out->type = RW_VAL_MATRIX;
        out->series = rw_arena_calloc(a, v->nms ? v->nms : 1, sizeof *out->series);
        if (!out->series)
            return rw_err_set(err, RW_NOMEM, "out of memory building the result");
        for (size_t s = 0; s < v->nms; s++) {
            rw_eval_mseries *ms = &v->ms[s];
            size_t lo, hi;
            rw_matrix_window(ctx, v, ms, 0, &lo, &hi, NULL, NULL);
            if (hi == lo)
                continue;
            rw_result_series *o = &out->series[out->nseries];
            o->labels = out_labels(a, ms->labels, ms->nlabels, ms->drop_name, &o->nlabels);
            o->points = rw_arena_alloc(a, (hi - lo) * sizeof(rw_point));
            if (!o->labels || !o->points)
                return rw_err_set(err, RW_NOMEM, "out of memory building the result");
            for (size_t k = lo; k < hi; k++) {
                o->points[o->npoints].t = ms->t[k];
                o->points[o->npoints].v = ms->v[k];
                o->npoints++;
            }
            out->nseries++;
        }
        return finish_matrix(a, out, err);
    }
    default:
        return rw_err_set(err, RW_INTERNAL, "unexpected result type");
    }
}

/* Keeps the annotations of a finished batch in the caller's arena
 * (deduplicated), before the batch's arena goes. */
static void keep_annos(rw_arena *a, rw_annos *keep, const rw_annos *got)
{
    for (int info = 0; info < 2; info++) {
        char **src = info ? got->info : got->warn;
        size_t n = info ? got->ninfo : got->nwarn;
        char ***arr = info ? &keep->info : &keep->warn;
        size_t *kn = info ? &keep->ninfo : &keep->nwarn;
        size_t *cap = info ? &keep->capinfo : &keep->capwarn;
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            while (k < *kn && strcmp((*arr)[k], src[i]) != 0)
                k++;
            if (k < *kn)
                continue;
            if (*kn == *cap) {
                size_t nc = *cap ? *cap * 2 : 8;
                char **na = rw_arena_realloc(a, *arr, *cap * sizeof(char *), nc * sizeof(char *));
                if (!na)
                    return;
                *arr = na;
                *cap = nc;
            }
            char *d = rw_arena_strdup(a, src[i]);
            if (d)
                (*arr)[(*kn)++] = d;
        }
    }
}

static int is_limit(const rw_err *err)
{
    return err->code == RW_EXEC && strstr(err->msg, "too many samples") != NULL;
}

/* Whatever failed to allocate in an arena over its cap did so because of
 * the query's memory limit. */
static rw_rc memory_error(rw_err *err, size_t limit)
{
    return rw_err_set(err, RW_EXEC,
                      "query processing would use more than %zu bytes of memory "
                      "(query.max_memory_bytes)",
                      limit);
}

/* ---- prepared expressions ---- */

struct rw_promql_expr {
    rw_arena *a;      /* the tree, its strings and the texts */
    rw_node *root;
    char *text;
    char *canonical;
};

rw_promql_expr *rw_promql_prepare(const char *text, rw_err *err)
{
    rw_promql_expr *x = calloc(1, sizeof *x);
    if (!x || !(x->a = rw_arena_new(0, 0))) {
        free(x);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    if (!(x->text = rw_arena_strdup(x->a, text))) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    if (rw_promql_parse(x->text, x->a, &x->root, err) != RW_OK)
        goto fail;
    rw_buf b;
    rw_buf_init(&b, 0);
    if (rw_ast_format(x->root, &b) != RW_OK ||
        !(x->canonical = rw_arena_strndup(x->a, b.p ? b.p : "", b.len))) {
        rw_buf_free(&b);
        rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    rw_buf_free(&b);
    return x;
fail:
    rw_promql_expr_free(x);
    return NULL;
}

void rw_promql_expr_free(rw_promql_expr *x)
{
    if (!x)
        return;
    rw_ast_free(x->root);
    rw_arena_free(x->a);
    free(x);
}

const char *rw_promql_expr_text(const rw_promql_expr *x)
{
    return x->text;
}

const char *rw_promql_expr_string(const rw_promql_expr *x)
{
    return x->canonical;
}

rw_val_type rw_promql_expr_type(const rw_promql_expr *x)
{
    return x->root->type;
}

/* ---- evaluation ---- */

/* ---- batches of steps, evaluated by a few threads ---- */

#define MAX_WORKERS 4

/* A range query split into batches of steps. Workers take the next batch
 * (a retried half first), evaluate it on their own parse of the query (a
 * tree's matchers keep match state, so no two threads share one) in their
 * own arena, and add its result under the mutex. */
typedef struct batches {
    pthread_mutex_t mu;
    const rw_promql_expr *x;
    const rw_eval_query *tmpl;   /* what every batch's query starts from */
    const int64_t *ts;
    size_t nsteps, cursor, batch;
    size_t nworkers;
    size_t handed, share;        /* batches handed out; the workers' share of the rest */
    int64_t step;
    size_t retry_at[64], retry_n[64]; /* halves of batches over max_samples */
    size_t nretry;
    size_t arena_cap;            /* per batch: the memory limit shared by the workers */
    rw_arena *a;                 /* the caller's: results (under mu) */
    rw_result_series *acc;
    size_t nacc, capacc;
    rw_annos keep;
    rw_rc rc;
    rw_err *err;
} batches;

static void *batch_worker(void *arg)
{
    batches *b = arg;
    rw_err lerr;
    rw_err_init(&lerr);
    rw_arena *pa = rw_arena_new(0, 0);
    rw_node *root = NULL;
    rw_rc rc = pa ? rw_promql_parse(b->x->text, pa, &root, &lerr)
                  : rw_err_set(&lerr, RW_NOMEM, "out of memory");
    for (;;) {
        pthread_mutex_lock(&b->mu);
        if (rc != RW_OK && b->rc == RW_OK) {
            b->rc = rc;
            *b->err = lerr;
        }
        size_t i, n;
        if (b->rc != RW_OK) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        if (b->nretry) {
            b->nretry--;
            i = b->retry_at[b->nretry];
            n = b->retry_n[b->nretry];
        } else if (b->cursor < b->nsteps) {
            /* the batch size; after every worker's first batch, what is
               left goes in one equal share per worker (or smaller batches,
               when the memory asks for them): a long last batch would
               leave the other workers idle at the end, and halving the
               rest again and again would add boundaries, each costing the
               stored parts that straddle it decoded twice */
            i = b->cursor;
            size_t left = b->nsteps - i;
            n = left < b->batch ? left : b->batch;
            if (b->handed >= b->nworkers) {
                if (!b->share)
                    b->share = (left + b->nworkers - 1) / b->nworkers;
                if (n > b->share)
                    n = b->share;
            }
            b->handed++;
            b->cursor += n;
        } else {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        pthread_mutex_unlock(&b->mu);

        rw_arena *ea = rw_arena_new(0, b->arena_cap);
        if (!ea) {
            rc = rw_err_set(&lerr, RW_NOMEM, "out of memory");
            continue;
        }
        rw_eval_query q = *b->tmpl;
        q.a = ea;
        q.samples = 0;
        q.err = &lerr;
        memset(&q.annos, 0, sizeof q.annos);
        rw_eval_ctx ctx = {.q = &q, .ts = b->ts + i, .nsteps = n, .interval = b->step};
        rw_eval_value v;
        rw_result part;
        memset(&part, 0, sizeof part);
        rc = rw_eval(&ctx, root, &v);
        if (rc == RW_OK)
            rc = rw_eval_check(&ctx, "expression evaluation"); /* as in one pass */
        if (rc != RW_OK && rw_arena_over_cap(ea))
            rc = memory_error(&lerr, b->tmpl->opts->max_memory_bytes);
        pthread_mutex_lock(&b->mu);
        if (rc != RW_OK && n > 1 && (is_limit(&lerr) || rw_arena_over_cap(ea)) &&
            b->nretry + 2 <= 64) {
            /* too much at once: the same steps in two halves */
            b->retry_at[b->nretry] = i + n / 2;
            b->retry_n[b->nretry++] = n - n / 2;
            b->retry_at[b->nretry] = i;
            b->retry_n[b->nretry++] = n / 2;
            if (b->batch > n / 2)
                b->batch = n / 2;
            rw_err_init(&lerr);
            rc = RW_OK;
        } else if (rc == RW_OK) {
            rc = build_result(&ctx, &v, 1, b->a, &part, &lerr);
            if (rc == RW_OK)
                keep_annos(b->a, &b->keep, &q.annos);
            if (rc == RW_OK && part.nseries) {
                if (b->nacc + part.nseries > b->capacc) {
                    size_t nc = b->capacc ? b->capacc * 2 : 64;
                    while (nc < b->nacc + part.nseries)
                        nc *= 2;
                    rw_result_series *na = rw_arena_realloc(b->a, b->acc, b->capacc * sizeof *na,
                                                            nc * sizeof *na);
                    if (!na) {
                        rc = rw_err_set(&lerr, RW_NOMEM, "out of memory building the result");
                    } else {
                        b->acc = na;
                        b->capacc = nc;
                    }
                }
                if (rc == RW_OK) {
                    memcpy(b->acc + b->nacc, part.series, part.nseries * sizeof *part.series);
                    b->nacc += part.nseries;
                }
            }
            /* size the next batches after what this one took: the memory
               of a batch grows with its steps (series x steps values), and
               every boundary between batches decodes the stored parts that
               straddle it twice (a 3-day count of 10k series: 118 M samples
               decoded for 72 M with batches that only doubled), so the next
               ones are as long as the target allows */
            size_t used = rw_arena_used(ea);
            double fit = used ? (double)n * EVAL_BATCH_BYTES / (double)used : 0;
            b->batch = !used || fit >= (double)b->nsteps ? b->nsteps : fit < 1 ? 1 : (size_t)fit;
        }
        pthread_mutex_unlock(&b->mu);
        rw_arena_free(ea);
    }
    rw_ast_free(root);
    rw_arena_free(pa);
    return NULL;
}

static rw_rc run(rw_engine *e, const rw_promql_expr *x, int64_t start, int64_t end, int64_t step,
                 int range, const rw_eval_opts *eo, rw_arena *a, rw_result *out, rw_err *err)
{
    rw_err local;
    if (!err) {
        rw_err_init(&local);
        err = &local;
    }
    memset(out, 0, sizeof *out);
    const rw_node *root = x->root;
    if (range) {
        if (step <= 0)
            return rw_err_set(err, RW_BADREQ,
                              "zero or negative query resolution step widths are not accepted. "
                              "Try a positive integer");
        if (end < start)
            return rw_err_set(err, RW_BADREQ, "end timestamp must not be before start time");
        if ((end - start) / step > MAX_RANGE_POINTS)
            return rw_err_set(err, RW_BADREQ,
                              "exceeded maximum resolution of 11,000 points per timeseries. Try "
                              "decreasing the query resolution (?step=XX)");
        if (root->type != RW_VAL_SCALAR && root->type != RW_VAL_VECTOR)
            return rw_err_set(err, RW_BADREQ,
                              "invalid expression type \"%s\" for range query, must be Scalar or "
                              "instant Vector",
                              root->type == RW_VAL_MATRIX ? "range vector"
                                                          : rw_val_type_name(root->type));
    }
    /* per-evaluation limits can tighten the engine's, never loosen them */
    rw_engine_opts opts = e->opts;
    int64_t timeout_ms = eo ? eo->timeout_ms : 0;
    if (timeout_ms <= 0 || timeout_ms > opts.timeout_ms)
        timeout_ms = opts.timeout_ms;
    if (eo && eo->max_samples && eo->max_samples < opts.max_samples)
        opts.max_samples = eo->max_samples;
    if (eo && eo->max_memory_bytes && eo->max_memory_bytes < opts.max_memory_bytes)
        opts.max_memory_bytes = eo->max_memory_bytes;
    /* what lives through the whole evaluation (steps, the deadline querier);
       each pass or batch evaluates in an arena of its own whose cap is the
       query's memory limit (query.max_memory_bytes) */
    rw_arena *pa = rw_arena_new(0, 0);
    if (!pa)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    rw_rc rc = RW_OK;
    size_t nsteps = range ? (size_t)((end - start) / step) + 1 : 1;
    int64_t *ts = rw_arena_alloc(pa, nsteps * sizeof *ts);
    if (!ts) {
        rw_arena_free(pa);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nsteps; i++)
        ts[i] = start + (int64_t)i * step;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t deadline_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + timeout_ms * 1000000;
    /* the store checks the deadline too, inside series selection */
    rw_querier dq = rw_querier_with_deadline(eo && eo->querier ? eo->querier : &e->querier,
                                             deadline_ns, pa);
    rw_eval_query q = {
        .querier = &dq,
        .opts = &opts,
        .text = x->text,
        .start = start,
        /* start()/end() and @ end() use the requested end, as Prometheus */
        .end = range ? end : start,
        .step = range ? step : 0,
        .deadline_ns = deadline_ns,
        .err = err,
    };
    if (!range || nsteps <= FIRST_BATCH_STEPS) {
        /* one pass */
        rw_arena *ea = rw_arena_new(0, opts.max_memory_bytes);
        if (!ea) {
            rw_arena_free(pa);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
        q.a = ea;
        rw_eval_ctx ctx = {.q = &q, .ts = ts, .nsteps = nsteps, .interval = range ? step : 1};
        rw_eval_value v;
        rc = rw_eval(&ctx, root, &v);
        /* the checks inside are periodic: work that ran past the deadline
           after the last one (a descheduled thread) still times out */
        if (rc == RW_OK)
            rc = rw_eval_check(&ctx, "expression evaluation");
        if (rc == RW_OK)
            rc = build_result(&ctx, &v, range, a, out, err);
        if (rc != RW_OK && rw_arena_over_cap(ea))
            rc = memory_error(err, opts.max_memory_bytes);
        if (rc == RW_OK) {
            rw_annos keep = {0};
            keep_annos(a, &keep, &q.annos);
            out->warnings = (const char **)keep.warn;
            out->nwarnings = keep.nwarn;
            out->infos = (const char **)keep.info;
            out->ninfos = keep.ninfo;
        }
        rw_arena_free(ea);
        rw_arena_free(pa);
        return rc;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nw = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
    batches b = {.x = x, .tmpl = &q, .ts = ts, .nsteps = nsteps, .step = step, .a = a,
                 .batch = FIRST_BATCH_STEPS, .nworkers = (size_t)nw, .err = err,
                 .arena_cap = opts.max_memory_bytes / (size_t)nw};
    pthread_mutex_init(&b.mu, NULL);
    pthread_t th[MAX_WORKERS];
    int started = 0;
    for (int w = 1; w < nw; w++)
        if (pthread_create(&th[started], NULL, batch_worker, &b) == 0)
            started++;
    batch_worker(&b);
    for (int w = 0; w < started; w++)
        pthread_join(th[w], NULL);
    pthread_mutex_destroy(&b.mu);
    rc = b.rc;
    if (rc == RW_OK) {
        /* the parts joined, series merged by label set */
        out->type = RW_VAL_MATRIX;
        out->series = b.acc;
        out->nseries = b.nacc;
        rc = finish_matrix(a, out, err);
    }
    if (rc == RW_OK) {
        out->warnings = (const char **)b.keep.warn;
        out->nwarnings = b.keep.nwarn;
        out->infos = (const char **)b.keep.info;
        out->ninfos = b.keep.ninfo;
    }
    rw_arena_free(pa);
    return rc;
}

rw_rc rw_engine_eval_instant(rw_engine *e, const rw_promql_expr *x, int64_t t_ms,
                             const rw_eval_opts *opts, rw_arena *a, rw_result *out, rw_err *err)
{
    return run(e, x, t_ms, t_ms, 0, 0, opts, a, out, err);
}

rw_rc rw_engine_eval_range(rw_engine *e, const rw_promql_expr *x, int64_t start_ms,
                           int64_t end_ms, int64_t step_ms, const rw_eval_opts *opts,
                           rw_arena *a, rw_result *out, rw_err *err)
{
    return run(e, x, start_ms, end_ms, step_ms, 1, opts, a, out, err);
}

static rw_rc one_shot(rw_engine *e, const char *query, int64_t start, int64_t end, int64_t step,
                      int range, int64_t timeout_ms, rw_arena *a, rw_result *out, rw_err *err)
{
    memset(out, 0, sizeof *out);
    rw_promql_expr *x = rw_promql_prepare(query, err);
    if (!x)
        return err ? err->code : RW_BADREQ;
    rw_eval_opts eo = {.timeout_ms = timeout_ms};
    rw_rc rc = run(e, x, start, end, step, range, &eo, a, out, err);
    rw_promql_expr_free(x);
    return rc;
}

rw_rc rw_engine_instant(rw_engine *e, const char *query, int64_t t_ms, int64_t timeout_ms,
                        rw_arena *a, rw_result *out, rw_err *err)
{
    return one_shot(e, query, t_ms, t_ms, 0, 0, timeout_ms, a, out, err);
}

rw_rc rw_engine_range(rw_engine *e, const char *query, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, int64_t timeout_ms, rw_arena *a, rw_result *out,
                      rw_err *err)
{
    return one_shot(e, query, start_ms, end_ms, step_ms, 1, timeout_ms, a, out, err);
}

const char *rw_val_type_name(rw_val_type t)
{
    switch (t) {
    case RW_VAL_SCALAR: return "scalar";
    case RW_VAL_VECTOR: return "vector";
    case RW_VAL_MATRIX: return "matrix";
    case RW_VAL_STRING: return "string";
    default: return "none";
    }
}
