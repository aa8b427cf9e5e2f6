/* func_math.c - element-wise PromQL functions on instant vectors (abs, ceil,
 * exp, ln, sqrt, trigonometry, deg/rad, sgn, clamp*, round) and the small
 * scalar/vector conversions (pi, vector, scalar, min_of/max_of). Each maps
 * every present value of every series at every step; results drop the metric
 * name (delayed, see eval_int.h). */
#include "eval_int.h"

#include <math.h>
#include <string.h>
#include "func_impl.h"

typedef double (*map_fn)(double x, double a, double b);

static rw_rc vec_map(rw_eval_ctx *ctx, const rw_eval_value *in, map_fn f, const double *a,
                     const double *b, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(ctx->q->a, (in->nseries ? in->nseries : 1) * sizeof *out->series);
    if (!out->series)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < in->nseries; s++) {
        const rw_eval_series *is = &in->series[s];
        rw_eval_series *o = &out->series[out->nseries];
        if (!rw_series_new(ctx, o, is->labels, is->nlabels, 1))
            return rw_eval_nomem(ctx);
        int any = 0;
        for (size_t i = 0; i < ctx->nsteps; i++) {
            if (!is->ok[i])
                continue;
            double v = f(is->v[i], a ? a[i] : 0, b ? b[i] : 0);
            if (isnan(v) && a && b && a[i] > b[i])
                continue; /* clamp with max < min: no output */
            o->ok[i] = 1;
            o->v[i] = v;
            any = 1;
        }
        if (any)
            out->nseries++;
    }
    return RW_OK;
}

static double f_abs(double x, double a, double b) { return fabs(x); }
static double f_ceil(double x, double a, double b) { return ceil(x); }
static double f_floor(double x, double a, double b) { return floor(x); }
static double f_exp(double x, double a, double b) { return exp(x); }
static double f_sqrt(double x, double a, double b) { return sqrt(x); }
static double f_ln(double x, double a, double b) { return log(x); }
static double f_log2(double x, double a, double b) { return log2(x); }
static double f_log10(double x, double a, double b) { return log10(x); }
static double f_sin(double x, double a, double b) { return sin(x); }
static double f_cos(double x, double a, double b) { return cos(x); }
static double f_tan(double x, double a, double b) { return tan(x); }
static double f_asin(double x, double a, double b) { return asin(x); }
static double f_acos(double x, double a, double b) { return acos(x); }
static double f_atan(double x, double a, double b) { return atan(x); }
static double f_sinh(double x, double a, double b) { return sinh(x); }
static double f_cosh(double x, double a, double b) { return cosh(x); }
static double f_tanh(double x, double a, double b) { return tanh(x); }
static double f_asinh(double x, double a, double b) { return asinh(x); }
static double f_acosh(double x, double a, double b) { return acosh(x); }
static double f_atanh(double x, double a, double b) { return atanh(x); }
static double f_deg(double x, double a, double b) { return x * 180 / M_PI; }
static double f_rad(double x, double a, double b) { return x * M_PI / 180; }
static double f_sgn(double x, double a, double b) { return x < 0 ? -1 : x > 0 ? 1 : x; }

/* indexed by the table row's op */
static const map_fn kernels[RW_MATH__COUNT] = {
    [RW_MATH_ABS] = f_abs,     [RW_MATH_CEIL] = f_ceil,   [RW_MATH_FLOOR] = f_floor,
    [RW_MATH_EXP] = f_exp,     [RW_MATH_SQRT] = f_sqrt,   [RW_MATH_LN] = f_ln,
    [RW_MATH_LOG2] = f_log2,   [RW_MATH_LOG10] = f_log10, [RW_MATH_SIN] = f_sin,
    [RW_MATH_COS] = f_cos,     [RW_MATH_TAN] = f_tan,     [RW_MATH_ASIN] = f_asin,
    [RW_MATH_ACOS] = f_acos,   [RW_MATH_ATAN] = f_atan,   [RW_MATH_SINH] = f_sinh,
    [RW_MATH_COSH] = f_cosh,   [RW_MATH_TANH] = f_tanh,   [RW_MATH_ASINH] = f_asinh,
    [RW_MATH_ACOSH] = f_acosh, [RW_MATH_ATANH] = f_atanh, [RW_MATH_DEG] = f_deg,
    [RW_MATH_RAD] = f_rad,     [RW_MATH_SGN] = f_sgn,
};

RW_FN(rw_fn_math)
{
    int op = call->u.call.fn->op;
    map_fn f = op >= 0 && op < RW_MATH__COUNT ? kernels[op] : NULL;
    if (!f)
        return rw_eval_fail(ctx, RW_INTERNAL, "no math kernel for %s", call->u.call.fn->name);
    rw_eval_value in;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK)
        return rc;
    return vec_map(ctx, &in, f, NULL, NULL, out);
}

/* Go's math.Max / math.Min: infinities win over NaN, NaN over numbers. */
static double go_max(double x, double y)
{
    if ((isinf(x) && x > 0) || (isinf(y) && y > 0))
        return INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && y == 0)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double go_min(double x, double y)
{
    if ((isinf(x) && x < 0) || (isinf(y) && y < 0))
        return -INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && y == 0)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static double f_clamp(double x, double lo, double hi)
{
    if (hi < lo)
        return NAN;
    return go_max(lo, go_min(hi, x));
}

RW_FN(rw_fn_clamp)
{
    int op = call->u.call.fn->op;
    rw_eval_value in;
    double *lo = NULL, *hi = NULL, *tmp;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK)
        return rc;
    size_t ns = ctx->nsteps;
    if (op == RW_CLAMP_BOTH) {
        if ((rc = rw_eval_scalar(ctx, call->u.call.args[1], &lo)) != RW_OK ||
            (rc = rw_eval_scalar(ctx, call->u.call.args[2], &hi)) != RW_OK)
            return rc;
    } else {
        if ((rc = rw_eval_scalar(ctx, call->u.call.args[1], &tmp)) != RW_OK)
            return rc;
        double *inf = rw_arena_alloc(ctx->q->a, ns * sizeof(double));
        if (!inf)
            return rw_eval_nomem(ctx);
        int is_max = op == RW_CLAMP_MAX;
        for (size_t i = 0; i < ns; i++)
            inf[i] = is_max ? -INFINITY : INFINITY;
        lo = is_max ? inf : tmp;
        hi = is_max ? tmp : inf;
    }
    return vec_map(ctx, &in, f_clamp, lo, hi, out);
}

static double f_round(double x, double to, double unused)
{
    double inv = 1.0 / to;
    return floor(x * inv + 0.5) / inv;
}

RW_FN(rw_fn_round)
{
    rw_eval_value in;
    double *to = NULL;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK)
        return rc;
    if (call->u.call.nargs > 1) {
        if ((rc = rw_eval_scalar(ctx, call->u.call.args[1], &to)) != RW_OK)
            return rc;
    } else {
        if (!(to = rw_arena_alloc(ctx->q->a, ctx->nsteps * sizeof(double))))
            return rw_eval_nomem(ctx);
        for (size_t i = 0; i < ctx->nsteps; i++)
            to[i] = 1;
    }
    return vec_map(ctx, &in, f_round, to, NULL, out);
}

RW_FN(rw_fn_pi)
{
    return rw_eval_scalar_const(ctx, M_PI, out);
}

RW_FN(rw_fn_minmax_of)
{
    double *a, *b;
    rw_rc rc;
    if ((rc = rw_eval_scalar(ctx, call->u.call.args[0], &a)) != RW_OK ||
        (rc = rw_eval_scalar(ctx, call->u.call.args[1], &b)) != RW_OK ||
        (rc = rw_eval_scalar_new(ctx, out)) != RW_OK)
        return rc;
    int is_max = call->u.call.fn->op == RW_OF_MAX;
    for (size_t i = 0; i < ctx->nsteps; i++)
        out->scalar[i] = is_max ? go_max(a[i], b[i]) : go_min(a[i], b[i]);
    return RW_OK;
}

RW_FN(rw_fn_vector)
{
    double *v;
    rw_rc rc = rw_eval_scalar(ctx, call->u.call.args[0], &v);
    if (rc != RW_OK)
        return rc;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(ctx->q->a, sizeof *out->series);
    if (!out->series || !rw_series_new(ctx, &out->series[0], NULL, 0, 0))
        return rw_eval_nomem(ctx);
    memcpy(out->series[0].v, v, ctx->nsteps * sizeof(double));
    memset(out->series[0].ok, 1, ctx->nsteps);
    out->nseries = 1;
    return RW_OK;
}

RW_FN(rw_fn_scalar)
{
    rw_eval_value in;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK || (rc = rw_eval_scalar_new(ctx, out)) != RW_OK)
        return rc;
    for (size_t i = 0; i < ctx->nsteps; i++) {
        int found = 0;
        double v = NAN;
        for (size_t s = 0; s < in.nseries && found < 2; s++)
            if (in.series[s].ok[i]) {
                found++;
                v = in.series[s].v[i];
            }
        out->scalar[i] = found == 1 ? v : NAN;
    }
    return RW_OK;
}
