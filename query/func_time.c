/* func_time.c - time-related PromQL functions: time(), timestamp() (the
 * sample's own timestamp when given a plain selector), the UTC calendar
 * functions (year, month, day_of_month, ..., defaulting to vector(time())),
 * and the query-context functions start(), end(), range(), step(). */
#define _GNU_SOURCE
#include "eval_int.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include "func_impl.h"

/* out: a vector with one series per series of in, the same labels (the
 * metric name dropped) and the same steps present; the values are the
 * caller's to fill. */
static rw_rc same_series(rw_eval_ctx *ctx, const rw_eval_value *in, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(ctx->q->a, (in->nseries ? in->nseries : 1) * sizeof *out->series);
    if (!out->series)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < in->nseries; s++) {
        const rw_eval_series *is = &in->series[s];
        rw_eval_series *o = &out->series[s];
        if (!rw_series_new(ctx, o, is->labels, is->nlabels, 1))
            return rw_eval_nomem(ctx);
        memcpy(o->ok, is->ok, ctx->nsteps);
    }
    out->nseries = in->nseries;
    return RW_OK;
}

RW_FN(rw_fn_time)
{
    rw_rc rc = rw_eval_scalar_new(ctx, out);
    if (rc != RW_OK)
        return rc;
    for (size_t i = 0; i < ctx->nsteps; i++)
        out->scalar[i] = (double)ctx->ts[i] / 1000;
    return RW_OK;
}

RW_FN(rw_fn_query_time)
{
    rw_eval_query *q = ctx->q;
    double v;
    switch (call->u.call.fn->op) {
    case RW_QT_START: v = (double)q->start / 1000; break;
    case RW_QT_END: v = (double)q->end / 1000; break;
    case RW_QT_RANGE: v = (double)(q->end - q->start) / 1000; break;
    default: v = q->start == q->end ? 0 : (double)q->step / 1000; break;
    }
    return rw_eval_scalar_const(ctx, v, out);
}

RW_FN(rw_fn_timestamp)
{
    const rw_node *arg = rw_node_unparen(call->u.call.args[0]);
    rw_eval_value in;
    rw_rc rc;
    int sel = arg->kind == RW_N_VECTOR_SEL;
    if (sel)
        rc = rw_eval_vector_selector(ctx, arg, 1, &in);
    else
        rc = rw_eval(ctx, arg, &in);
    if (rc != RW_OK || (rc = same_series(ctx, &in, out)) != RW_OK)
        return rc;
    for (size_t s = 0; s < in.nseries; s++) {
        const rw_eval_series *is = &in.series[s];
        rw_eval_series *o = &out->series[s];
        for (size_t i = 0; i < ctx->nsteps; i++)
            o->v[i] = (double)(sel && is->t ? is->t[i] : ctx->ts[i]) / 1000;
    }
    return RW_OK;
}

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static double calendar(int op, double secs)
{
    /* Go: time.Unix(int64(f), 0).UTC() */
    int64_t s;
    if (isnan(secs) || secs >= 9.2233720368547758e18 || secs < -9.2233720368547758e18)
        s = INT64_MIN;
    else
        s = (int64_t)secs;
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return NAN;
    long year = (long)tm.tm_year + 1900;
    switch (op) {
    case RW_CAL_YEAR: return (double)year;
    case RW_CAL_MONTH: return tm.tm_mon + 1;
    case RW_CAL_DAY_OF_MONTH: return tm.tm_mday;
    case RW_CAL_DAY_OF_WEEK: return tm.tm_wday;
    case RW_CAL_DAY_OF_YEAR: return tm.tm_yday + 1;
    case RW_CAL_HOUR: return tm.tm_hour;
    case RW_CAL_MINUTE: return tm.tm_min;
    case RW_CAL_DAYS_IN_MONTH: {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int d = days[tm.tm_mon];
        if (tm.tm_mon == 1 && is_leap(year))
            d = 29;
        return d;
    }
    }
    return NAN;
}

RW_FN(rw_fn_calendar)
{
    int op = call->u.call.fn->op;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    if (call->u.call.nargs == 0) {
        out->series = rw_arena_alloc(ctx->q->a, sizeof *out->series);
        if (!out->series || !rw_series_new(ctx, &out->series[0], NULL, 0, 0))
            return rw_eval_nomem(ctx);
        for (size_t i = 0; i < ctx->nsteps; i++) {
            out->series[0].ok[i] = 1;
            out->series[0].v[i] = calendar(op, (double)(ctx->ts[i] / 1000));
        }
        out->nseries = 1;
        return RW_OK;
    }
    rw_eval_value in;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK || (rc = same_series(ctx, &in, out)) != RW_OK)
        return rc;
    for (size_t s = 0; s < in.nseries; s++) {
        const rw_eval_series *is = &in.series[s];
        rw_eval_series *o = &out->series[s];
        for (size_t i = 0; i < ctx->nsteps; i++)
            if (is->ok[i])
                o->v[i] = calendar(op, is->v[i]);
    }
    return RW_OK;
}
