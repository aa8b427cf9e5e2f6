/* func_range.c - functions over range vectors: rate/increase/delta (with
 * Prometheus' extrapolation to the window boundaries and counter-reset
 * handling), irate/idelta, deriv/predict_linear (least squares),
 * double_exponential_smoothing (holt_winters), the *_over_time family,
 * changes/resets, and absent_over_time. A range vector arrives with all raw
 * samples its steps need (eval_select.c); each step looks at its window
 * (t - range, t], so a range query reads each sample once. When the argument
 * is a plain selector it arrives one batch of series at a time
 * (rw_matrix_iter_*): every series is reduced to its per-step output before
 * the next batch is decoded, which bounds the memory by the output. */
#include "eval_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "func_impl.h"

/* What a window computes: the table row's op (func_impl.h RW_RANGE_*). */
typedef int kind;

/* ---- per-window computations; return 0 when there is no output ---- */

/* resets: the series may have a counter reset somewhere (else the scan of
 * the window for them is skipped; it would add nothing). */
static int extrapolated_rate(const int64_t *t, const double *v, size_t n, int64_t rstart,
                             int64_t rend, int counter, int resets, int is_rate, int64_t range_ms,
                             double *res)
{
    if (n < 2)
        return 0;
    double result = v[n - 1] - v[0];
    if (counter && resets)
        for (size_t k = 1; k < n; k++)
            if (v[k] < v[k - 1])
                result += v[k - 1];
    double to_start = (double)(t[0] - rstart) / 1000;
    double to_end = (double)(rend - t[n - 1]) / 1000;
    double sampled = (double)(t[n - 1] - t[0]) / 1000;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    if (to_start >= threshold)
        to_start = avg / 2;
    if (counter) {
        /* a counter cannot go below zero: do not extrapolate past it */
        double to_zero = to_start;
        if (result > 0 && v[0] >= 0)
            to_zero = sampled * (v[0] / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    if (to_end >= threshold)
        to_end = avg / 2;
    double factor = 1;
    if (sampled != 0)
        factor = (sampled + to_start + to_end) / sampled;
    if (is_rate)
        factor /= (double)range_ms / 1000;
    *res = result * factor;
    return 1;
}

static int instant_value(const int64_t *t, const double *v, size_t n, int is_rate, double *res)
{
    if (n < 2)
        return 0;
    int64_t dt = t[n - 1] - t[n - 2];
    if (dt == 0)
        return 0;
    double r = v[n - 1];
    if (!is_rate || !(v[n - 1] < v[n - 2]))
        r = v[n - 1] - v[n - 2];
    if (is_rate)
        r /= (double)dt / 1000;
    *res = r;
    return 1;
}

static void linear_regression(const int64_t *t, const double *v, size_t n, int64_t icpt,
                              double *slope, double *intercept)
{
    double cnt = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init = v[0];
    int consty = 1;
    for (size_t k = 0; k < n; k++) {
        if (consty && k > 0 && v[k] != init)
            consty = 0;
        cnt += 1;
        double x = (double)(t[k] - icpt) / 1e3;
        rw_kahan_inc(x, &sx, &cx);
        rw_kahan_inc(v[k], &sy, &cy);
        rw_kahan_inc(x * v[k], &sxy, &cxy);
        rw_kahan_inc(x * x, &sx2, &cx2);
    }
    if (consty) {
        if (isinf(init)) {
            *slope = NAN;
            *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = init;
        }
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / cnt;
    double var = sx2 - sx * sx / cnt;
    *slope = cov / var;
    *intercept = sy / cnt - *slope * sx / cnt;
}

static double avg_over(const double *v, size_t n)
{
    rw_avg a;
    rw_avg_init(&a, v[0]);
    for (size_t k = 1; k < n; k++)
        rw_avg_add(&a, v[k]);
    return rw_avg_value(&a);
}

static double variance_over(const double *v, size_t n)
{
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (size_t k = 0; k < n; k++) {
        count++;
        double delta = v[k] - (mean + cmean);
        rw_kahan_inc(delta / count, &mean, &cmean);
        rw_kahan_inc(delta * (v[k] - (mean + cmean)), &aux, &caux);
    }
    return (aux + caux) / count;
}

/* ---- the driver ---- */

static int is_counter_name(const char *name)
{
    static const char *const suf[] = {"_total", "_sum", "_count", "_bucket"};
    size_t n = strlen(name);
    for (size_t i = 0; i < 4; i++) {
        size_t l = strlen(suf[i]);
        if (n >= l && strcmp(name + n - l, suf[i]) == 0)
            return 1;
    }
    return 0;
}

/* What range_fn keeps across the series of its argument. */
typedef struct range_state {
    kind k;
    const rw_node *call, *marg;
    const double *p1, *p2;   /* scalar parameters per step */
    double *buf;             /* quantile / mad scratch */
    size_t bufcap;
    int keep_name;
    int qwarned;
    rw_series_sink *sk;      /* streaming: each series to sk, through one */
    rw_eval_series one;
} range_state;

/* Computes the output of one series of the matrix m (window parameters in
 * m) at every step; appends it to out when it has a value at one step. */
static rw_rc range_series(rw_eval_ctx *ctx, range_state *rs, const rw_eval_value *m,
                          const rw_eval_mseries *ms, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    kind k = rs->k;
    const rw_node *call = rs->call, *marg = rs->marg;
    const double *p1 = rs->p1, *p2 = rs->p2;
    rw_rc rc;
    rw_eval_series *o = rs->sk ? &rs->one : &out->series[out->nseries];
    if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
        return rc;
    int drop_name = rs->keep_name ? ms->drop_name : 1;
    if (rs->sk) {
        o->labels = ms->labels;
        o->nlabels = ms->nlabels;
        o->drop_name = drop_name;
        memset(o->ok, 0, ctx->nsteps);
    } else if (!rw_series_new(ctx, o, ms->labels, ms->nlabels, drop_name)) {
        return rw_eval_nomem(ctx);
    }
    int any = 0;
    int resets = 0; /* any decrease in the whole series */
    if (k == RW_RANGE_RATE || k == RW_RANGE_INCREASE)
        for (size_t j = 1; j < ms->n && !resets; j++)
            resets = ms->v[j] < ms->v[j - 1];
    /* the window (ws, we] of step i is samples [lo, hi); steps ascend,
       so both ends only move forward (what rw_matrix_window finds by
       binary search) */
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((i & 255) == 255 && (rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        int64_t we = (m->pinned ? m->pin_ms : ctx->ts[i]) - m->offset_ms;
        int64_t ws = we - m->range_ms;
        while (lo < ms->n && ms->t[lo] <= ws)
            lo++;
        if (hi < lo)
            hi = lo;
        while (hi < ms->n && ms->t[hi] <= we)
            hi++;
        if (hi == lo)
            continue;
        const int64_t *t = ms->t + lo;
        const double *v = ms->v + lo;
        size_t n = hi - lo;
        double r = 0;
        int ok = 1;
        switch (k) {
        case RW_RANGE_RATE:
            ok = extrapolated_rate(t, v, n, ws, we, 1, resets, 1, m->range_ms, &r);
            break;
        case RW_RANGE_INCREASE:
            ok = extrapolated_rate(t, v, n, ws, we, 1, resets, 0, m->range_ms, &r);
            break;
        case RW_RANGE_DELTA: ok = extrapolated_rate(t, v, n, ws, we, 0, 0, 0, m->range_ms, &r); break;
        case RW_RANGE_IRATE: ok = instant_value(t, v, n, 1, &r); break;
        case RW_RANGE_IDELTA: ok = instant_value(t, v, n, 0, &r); break;
        case RW_RANGE_DERIV: {
            double icpt;
            if (n < 2) {
                ok = 0;
                break;
            }
            linear_regression(t, v, n, t[0], &r, &icpt);
            break;
        }
        case RW_RANGE_PREDICT: {
            double slope, icpt;
            if (n < 2) {
                ok = 0;
                break;
            }
            linear_regression(t, v, n, ctx->ts[i], &slope, &icpt);
            r = slope * p1[i] + icpt;
            break;
        }
        case RW_RANGE_SMOOTH: {
            double sf = p1[i], tf = p2[i];
            if (sf <= 0 || sf >= 1)
                return rw_eval_fail(ctx, RW_EXEC,
                                    "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
            if (tf <= 0 || tf >= 1)
                return rw_eval_fail(ctx, RW_EXEC,
                                    "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
            if (n < 2) {
                ok = 0;
                break;
            }
            double s0 = 0, s1 = v[0], b = v[1] - v[0];
            for (size_t j = 1; j < n; j++) {
                double x = sf * v[j];
                if (j > 1)
                    b = tf * (s1 - s0) + (1 - tf) * b;
                double y = (1 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            r = s1;
            break;
        }
        case RW_RANGE_AVG: r = avg_over(v, n); break;
        case RW_RANGE_COUNT: r = (double)n; break;
        case RW_RANGE_SUM: {
            double sum = 0, c = 0;
            for (size_t j = 0; j < n; j++)
                rw_kahan_inc(v[j], &sum, &c);
            r = isinf(sum) ? sum : sum + c;
            break;
        }
        case RW_RANGE_MIN: case RW_RANGE_MAX: case RW_RANGE_TS_MIN: case RW_RANGE_TS_MAX: {
            double best = v[0];
            int64_t bt = t[0];
            for (size_t j = 0; j < n; j++) {
                double x = v[j];
                int take;
                switch (k) {
                case RW_RANGE_MAX: take = x > best || isnan(best); break;
                case RW_RANGE_MIN: take = x < best || isnan(best); break;
                case RW_RANGE_TS_MAX: take = x >= best || isnan(best); break;
                default: take = x <= best || isnan(best); break;
                }
                if (take) {
                    best = x;
                    bt = t[j];
                }
            }
            r = (k == RW_RANGE_MIN || k == RW_RANGE_MAX) ? best : (double)bt / 1000;
            break;
        }
        case RW_RANGE_STDDEV: r = sqrt(variance_over(v, n)); break;
        case RW_RANGE_STDVAR: r = variance_over(v, n); break;
        case RW_RANGE_LAST: r = v[n - 1]; break;
        case RW_RANGE_FIRST: r = v[0]; break;
        case RW_RANGE_TS_LAST: r = (double)t[n - 1] / 1000; break;
        case RW_RANGE_TS_FIRST: r = (double)t[0] / 1000; break;
        case RW_RANGE_PRESENT: r = 1; break;
        case RW_RANGE_CHANGES: {
            double c = 0;
            for (size_t j = 1; j < n; j++)
                if (v[j] != v[j - 1] && !(isnan(v[j]) && isnan(v[j - 1])))
                    c++;
            r = c;
            break;
        }
        case RW_RANGE_RESETS: {
            double c = 0;
            for (size_t j = 1; j < n; j++)
                if (v[j] < v[j - 1])
                    c++;
            r = c;
            break;
        }
        case RW_RANGE_MAD: case RW_RANGE_QUANTILE: {
            if (n > rs->bufcap) {
                rs->bufcap = n * 2;
                if (!(rs->buf = rw_arena_alloc(a, rs->bufcap * sizeof(double))))
                    return rw_eval_nomem(ctx);
            }
            memcpy(rs->buf, v, n * sizeof(double));
            if (k == RW_RANGE_QUANTILE) {
                double q = p1[i];
                if (!rs->qwarned && (isnan(q) || q < 0 || q > 1)) {
                    char qb[64];
                    rw_fmt_go_g(qb, sizeof qb, q);
                    rw_eval_warn(ctx, call->u.call.args[0]->pos,
                                 "PromQL warning: quantile value should be between 0 and 1, got %s", qb);
                    rs->qwarned = 1;
                }
                r = rw_quantile(q, rs->buf, n);
                break;
            }
            int nan = 0;
            for (size_t j = 0; j < n; j++)
                nan |= isnan(v[j]);
            if (nan) {
                r = NAN;
                break;
            }
            double med = rw_quantile(0.5, rs->buf, n);
            for (size_t j = 0; j < n; j++)
                rs->buf[j] = fabs(rs->buf[j] - med);
            r = rw_quantile(0.5, rs->buf, n);
            break;
        }
        }
        if (!ok)
            continue;
        o->ok[i] = 1;
        o->v[i] = r;
        any = 1;
    }
    if (!any)
        return RW_OK;
    if (!rs->sk)
        out->nseries++;
    else if ((rc = rs->sk->put(rs->sk, o)) != RW_OK)
        return rc;
    if (k == RW_RANGE_RATE || k == RW_RANGE_INCREASE) {
        const char *mn = rw_labels_get(ms->labels, ms->nlabels, RW_METRIC_NAME);
        if (mn && *mn && !is_counter_name(mn))
            rw_eval_info(ctx, marg->pos,
                         "PromQL info: metric might not be a counter, name does not end in "
                         "_total/_sum/_count/_bucket: %s",
                         rw_go_quote(a, mn));
    }
    return RW_OK;
}

/* A range function into out (a vector), or with sk series by series
 * (rw_eval_stream; then its argument is a plain selector). */
static rw_rc range_fn(rw_eval_ctx *ctx, const rw_node *call, rw_eval_value *out,
                      rw_series_sink *sk)
{
    kind k = call->u.call.fn->op;
    rw_arena *a = ctx->q->a;
    size_t midx = k == RW_RANGE_QUANTILE ? 1 : 0;
    double *p1 = NULL, *p2 = NULL;
    rw_rc rc;
    if (k == RW_RANGE_QUANTILE && (rc = rw_eval_scalar(ctx, call->u.call.args[0], &p1)) != RW_OK)
        return rc;
    if (k == RW_RANGE_PREDICT && (rc = rw_eval_scalar(ctx, call->u.call.args[1], &p1)) != RW_OK)
        return rc;
    if (k == RW_RANGE_SMOOTH && ((rc = rw_eval_scalar(ctx, call->u.call.args[1], &p1)) != RW_OK ||
                          (rc = rw_eval_scalar(ctx, call->u.call.args[2], &p2)) != RW_OK))
        return rc;
    const rw_node *marg = rw_node_unparen(call->u.call.args[midx]);
    rw_eval_value one;
    if (sk)
        out = &one;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    range_state r = {.k = k, .call = call, .marg = marg, .p1 = p1, .p2 = p2,
                     .keep_name = k == RW_RANGE_LAST || k == RW_RANGE_FIRST, .sk = sk};
    if (sk && !rw_series_new(ctx, &r.one, NULL, 0, 0))
        return rw_eval_nomem(ctx);
    if (marg->kind == RW_N_MATRIX_SEL) {
        /* a plain selector: decode and reduce one batch of series at a
           time, so only the output and one batch of samples are held */
        rw_sel_iter it;
        rw_eval_value m;
        int done = 0;
        if ((rc = rw_matrix_iter_open(ctx, marg, &it, &m)) == RW_OK && !sk &&
            !(out->series = rw_arena_alloc(a, (it.nall ? it.nall : 1) * sizeof *out->series)))
            rc = rw_eval_nomem(ctx);
        while (rc == RW_OK && (rc = rw_matrix_iter_next(&it, &m, &done)) == RW_OK && !done)
            for (size_t s = 0; s < m.nms && rc == RW_OK; s++)
                rc = range_series(ctx, &r, &m, &m.ms[s], out);
        rc = rw_sel_iter_end(&it, rc);
        /* what stays: one value per step of every output series (streamed:
           nothing, the sink accounts what it keeps) */
        return rc == RW_OK && !sk ? rw_eval_account(ctx, out->nseries * ctx->nsteps) : rc;
    }
    rw_eval_value m;
    if ((rc = rw_eval(ctx, marg, &m)) != RW_OK)
        return rc;
    if (m.type != RW_VAL_MATRIX)
        return rw_eval_fail(ctx, RW_EXEC, "%s: expected a range vector argument",
                            call->u.call.fn->name);
    out->series = rw_arena_alloc(a, (m.nms ? m.nms : 1) * sizeof *out->series);
    if (!out->series)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < m.nms; s++)
        if ((rc = range_series(ctx, &r, &m, &m.ms[s], out)) != RW_OK)
            return rc;
    return RW_OK;
}

int rw_range_fn_streams(const rw_node *call)
{
    const rw_func *fn = call->u.call.fn;
    if (!fn || (fn->impl != rw_fn_rate && fn->impl != rw_fn_instant_rate &&
                fn->impl != rw_fn_deriv && fn->impl != rw_fn_smoothing &&
                fn->impl != rw_fn_over_time && fn->impl != rw_fn_quantile_over_time))
        return 0;
    size_t midx = fn->op == RW_RANGE_QUANTILE ? 1 : 0;
    return call->u.call.nargs > midx &&
           rw_node_unparen(call->u.call.args[midx])->kind == RW_N_MATRIX_SEL;
}

rw_rc rw_range_fn_to(rw_eval_ctx *ctx, const rw_node *call, rw_series_sink *sk)
{
    return range_fn(ctx, call, NULL, sk);
}

RW_FN(rw_fn_rate) { return range_fn(ctx, call, out, NULL); }
RW_FN(rw_fn_instant_rate) { return range_fn(ctx, call, out, NULL); }
RW_FN(rw_fn_deriv) { return range_fn(ctx, call, out, NULL); }
RW_FN(rw_fn_smoothing) { return range_fn(ctx, call, out, NULL); }
RW_FN(rw_fn_over_time) { return range_fn(ctx, call, out, NULL); }
RW_FN(rw_fn_quantile_over_time) { return range_fn(ctx, call, out, NULL); }

/* Labels absent()/absent_over_time() give their output: the equality
 * matchers of a plain selector argument (not __name__). */
static size_t absent_labels(rw_eval_ctx *ctx, const rw_node *arg, rw_label **out)
{
    rw_arena *a = ctx->q->a;
    arg = rw_node_unparen(arg);
    *out = NULL;
    if (arg->kind != RW_N_VECTOR_SEL && arg->kind != RW_N_MATRIX_SEL)
        return 0;
    rw_label *l = NULL;
    size_t n = 0;
    const char **seen = rw_arena_alloc(a, (arg->u.sel.nmatchers + 1) * sizeof(char *));
    size_t nseen = 0;
    if (!seen)
        return 0;
    for (size_t i = 0; i < arg->u.sel.nmatchers; i++) {
        const rw_matcher *m = &arg->u.sel.matchers[i];
        if (!strcmp(m->name, RW_METRIC_NAME))
            continue;
        int had = 0;
        for (size_t j = 0; j < nseen; j++)
            had |= !strcmp(seen[j], m->name);
        if (m->op == RW_MATCH_EQ && !had) {
            n = rw_lbl_set(a, l, n, m->name, m->value, &l);
            seen[nseen++] = m->name;
        } else {
            n = rw_lbl_del(a, l, n, m->name, &l);
        }
    }
    *out = l;
    return n;
}

RW_FN(rw_fn_absent_over_time)
{
    const rw_node *marg = rw_node_unparen(call->u.call.args[0]);
    rw_eval_value m;
    rw_rc rc = rw_eval(ctx, marg, &m);
    if (rc != RW_OK)
        return rc;
    if (m.type != RW_VAL_MATRIX)
        return rw_eval_fail(ctx, RW_EXEC, "absent_over_time: expected a range vector argument");
    uint8_t *present = rw_arena_calloc(ctx->q->a, ctx->nsteps, 1);
    if (!present)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < m.nms; s++)
        for (size_t i = 0; i < ctx->nsteps; i++) {
            if (present[i])
                continue;
            size_t lo, hi;
            rw_matrix_window(ctx, &m, &m.ms[s], i, &lo, &hi, NULL, NULL);
            if (hi > lo)
                present[i] = 1;
        }
    return rw_absent_vector(ctx, marg, present, 1, out);
}

rw_rc rw_absent_vector(rw_eval_ctx *ctx, const rw_node *arg, const uint8_t *present,
                       int drop_name, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    int anyabsent = 0;
    for (size_t i = 0; i < ctx->nsteps; i++)
        anyabsent |= !present[i];
    if (!anyabsent)
        return RW_OK;
    rw_label *l;
    size_t nl = absent_labels(ctx, arg, &l);
    out->series = rw_arena_alloc(ctx->q->a, sizeof *out->series);
    if (!out->series || !rw_series_new(ctx, &out->series[0], l, nl, drop_name))
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ctx->nsteps; i++)
        if (!present[i]) {
            out->series[0].ok[i] = 1;
            out->series[0].v[i] = 1;
        }
    out->nseries = 1;
    return RW_OK;
}
