/* func_hist.c - histogram_quantile and histogram_fraction over classic
 * histograms: series carrying an `le` label are grouped by all their other
 * labels (the metric name included), and each group's buckets are sorted,
 * coalesced, made monotonic and interpolated as Prometheus does. Native
 * histograms are not stored by rwgate, so only classic buckets exist here. */
#define _GNU_SOURCE
#include "eval_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "func_impl.h"

typedef struct bucket {
    double ub, count;
} bucket;

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const bucket *)a)->ub, y = ((const bucket *)b)->ub;
    return x < y ? -1 : x > y ? 1 : 0;
}

typedef struct member_ub {
    double ub;
    size_t s;
} member_ub;

static int cmp_member(const void *a, const void *b)
{
    const member_ub *x = a, *y = b;
    if (x->ub != y->ub)
        return x->ub < y->ub ? -1 : 1;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* Go strconv.ParseFloat acceptance (decimal, inf/infinity/nan, hex with p). */
static int parse_go_float(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return 0;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    if (!strcasecmp(p, "nan")) {
        *out = NAN;
        return 1;
    }
    for (const char *c = p; *c; c++)
        if (!(isxdigit((unsigned char)*c) || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-' || *c == 'x' || *c == 'X' || *c == 'p' || *c == 'P'))
            return 0;
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && end != s;
}

static int almost_equal(double a, double b, double eps)
{
    if (a == b)
        return 1;
    double min_normal = 2.2250738585072014e-308;
    double absum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (a == 0 || b == 0 || absum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(absum, 1.7976931348623157e308) < eps;
}

typedef struct mono_info {
    int forced;
    double min_b, max_b, max_diff;
} mono_info;

/* Coalesces equal bounds of buckets sorted by bound, fixes monotonicity;
 * returns the new count. */
static size_t prepare(bucket *b, size_t n, mono_info *mi)
{
    size_t i = 0;
    bucket last = b[0];
    for (size_t k = 1; k < n; k++) {
        if (b[k].ub == last.ub)
            last.count += b[k].count;
        else {
            b[i++] = last;
            last = b[k];
        }
    }
    b[i++] = last;
    n = i;
    if (mi) {
        mi->forced = 0;
        mi->min_b = INFINITY;
        mi->max_b = -INFINITY;
        mi->max_diff = 0;
        double prev = b[0].count;
        for (size_t k = 1; k < n; k++) {
            double cur = b[k].count;
            if (cur == prev)
                continue;
            if (almost_equal(prev, cur, 1e-12)) {
                b[k].count = prev;
                continue;
            }
            if (cur < prev) {
                b[k].count = prev;
                mi->forced = 1;
                mi->min_b = fmin(mi->min_b, b[k].ub);
                mi->max_b = fmax(mi->max_b, b[k].ub);
                if (prev - cur > mi->max_diff)
                    mi->max_diff = prev - cur;
                continue;
            }
            prev = cur;
        }
    }
    return n;
}

/* b is sorted by bound unless `sorted` is 0 */
static double bucket_quantile(double q, bucket *b, size_t n, int sorted, mono_info *mi)
{
    mi->forced = 0;
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (!sorted)
        qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
        return NAN;
    n = prepare(b, n, mi);
    if (n < 2)
        return NAN;
    double obs = b[n - 1].count;
    if (obs == 0)
        return NAN;
    double rank = q * obs;
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t k = lo;
    if (k == n - 1)
        return b[n - 2].ub;
    if (k == 0 && b[0].ub <= 0)
        return b[0].ub;
    double start = 0, end = b[k].ub, count = b[k].count;
    if (k > 0) {
        start = b[k - 1].ub;
        count -= b[k - 1].count;
        rank -= b[k - 1].count;
    }
    return start + (end - start) * (rank / count);
}

static double bucket_fraction(double lower, double upper, bucket *b, size_t n, int sorted)
{
    if (!sorted)
        qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
        return NAN;
    n = prepare(b, n, NULL);
    double count = b[n - 1].count;
    if (count == 0 || isnan(lower) || isnan(upper))
        return NAN;
    if (lower >= upper)
        return 0;
    double rank = 0, lrank = 0, urank = 0;
    int lset = 0, uset = 0;
    double lb = b[0].ub <= 0 ? -INFINITY : 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lb = b[i - 1].ub;
        double ub = b[i].ub;
        if (!lset && lb >= lower) {
            lrank = rank;
            lset = 1;
        }
        if (!uset && lb >= upper) {
            urank = rank;
            uset = 1;
        }
        if (lset && uset)
            break;
        if (!lset && lb < lower && ub > lower) {
            lrank = isinf(lb) && lb < 0 ? b[i].count
                                        : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
            lset = 1;
        }
        if (!uset && lb < upper && ub > upper) {
            urank = isinf(lb) && lb < 0 ? b[i].count
                                        : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
            uset = 1;
        }
        if (lset && uset)
            break;
        rank = b[i].count;
    }
    if (!lset || lrank > count)
        lrank = count;
    if (!uset || urank > count)
        urank = count;
    return (urank - lrank) / count;
}

typedef struct mono_acc {
    const char *metric;
    int64_t min_ts, max_ts;
    double min_b, max_b, max_diff;
    long count;
} mono_acc;

static void fmt_rfc3339(char *buf, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* labels.FormatOpenMetricsFloat */
static void fmt_om_float(char *buf, size_t cap, double f)
{
    if (f == 1 || f == 0 || f == -1) {
        snprintf(buf, cap, "%s", f == 1 ? "1.0" : f == 0 ? "0.0" : "-1.0");
        return;
    }
    rw_fmt_go_g(buf, cap, f);
    if (!isnan(f) && !isinf(f) && !strpbrk(buf, "e."))
        strncat(buf, ".0", cap - strlen(buf) - 1);
}

enum { H_QUANTILE, H_FRACTION, H_QUANTILES };

static rw_rc hist_fn(rw_eval_ctx *ctx, const rw_node *call, int mode, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    double **qs = NULL, *lower = NULL, *upper = NULL;
    size_t nq = 0;
    const char *qlabel = NULL;
    rw_rc rc;
    size_t varg = mode == H_FRACTION ? 2 : mode == H_QUANTILE ? 1 : 0;
    if (mode == H_FRACTION) {
        if ((rc = rw_eval_scalar(ctx, call->u.call.args[0], &lower)) != RW_OK ||
            (rc = rw_eval_scalar(ctx, call->u.call.args[1], &upper)) != RW_OK)
            return rc;
    } else {
        size_t first = mode == H_QUANTILE ? 0 : 2;
        size_t last = mode == H_QUANTILE ? 1 : call->u.call.nargs;
        nq = last - first;
        qs = rw_arena_alloc(a, (nq + 1) * sizeof(double *));
        if (!qs)
            return rw_eval_nomem(ctx);
        for (size_t k = 0; k < nq; k++) {
            if ((rc = rw_eval_scalar(ctx, call->u.call.args[first + k], &qs[k])) != RW_OK)
                return rc;
            for (size_t i = 0; i < ctx->nsteps; i++)
                if (isnan(qs[k][i]) || qs[k][i] < 0 || qs[k][i] > 1) {
                    char b[64];
                    rw_fmt_go_g(b, sizeof b, qs[k][i]);
                    rw_eval_warn(ctx, call->u.call.args[first + k]->pos,
                                 "PromQL warning: quantile value should be between 0 and 1, got %s", b);
                    break;
                }
        }
        if (mode == H_QUANTILES) {
            const rw_node *ln = rw_node_unparen(call->u.call.args[1]);
            qlabel = ln->kind == RW_N_STRING ? ln->u.string : "";
        }
    }
    rw_eval_value in;
    if ((rc = rw_eval(ctx, call->u.call.args[varg], &in)) != RW_OK)
        return rc;
    int vpos = call->u.call.args[varg]->pos;
    size_t ns = in.nseries;
    double *ub = rw_arena_alloc(a, (ns + 1) * sizeof(double));
    uint8_t *valid = rw_arena_alloc(a, ns + 1);
    long *grp = rw_arena_alloc(a, (ns + 1) * sizeof(long));
    long *gout = rw_arena_alloc(a, (ns + 1) * sizeof(long));
    bucket *bk = rw_arena_alloc(a, (ns + 1) * sizeof(bucket));
    size_t *gstart = rw_arena_calloc(a, ns + 2, sizeof(size_t));
    size_t *members = rw_arena_alloc(a, (ns + 1) * sizeof(size_t));
    if (!ub || !valid || !grp || !gout || !bk || !gstart || !members)
        return rw_eval_nomem(ctx);
    /* group series by their labels without le */
    rw_vbuild b;
    rw_vbuild_init(&b, ctx);
    const char *le_name[] = {"le"};
    size_t ngroups = 0;
    for (size_t s = 0; s < ns; s++) {
        rw_eval_series *se = &in.series[s];
        const char *le = rw_labels_get(se->labels, se->nlabels, "le");
        valid[s] = le && parse_go_float(le, &ub[s]);
        if (!valid[s]) {
            const char *mn = rw_labels_get(se->labels, se->nlabels, RW_METRIC_NAME);
            const char *lq = rw_go_quote(a, le ? le : "");
            if (mn && *mn)
                rw_eval_warn(ctx, vpos,
                             "PromQL warning: bucket label \"le\" is missing or has a malformed "
                             "value of %s for metric name %s",
                             lq, rw_go_quote(a, mn));
            else
                rw_eval_warn(ctx, vpos,
                             "PromQL warning: bucket label \"le\" is missing or has a malformed "
                             "value of %s",
                             lq);
            grp[s] = -1;
            continue;
        }
        rw_label *l;
        size_t nl = rw_lbl_filter(a, se->labels, se->nlabels, (char *const *)le_name, 1, 0, 0, &l);
        long idx = rw_vbuild_series(&b, l, nl, 1);
        if (idx < 0)
            return rw_eval_nomem(ctx);
        grp[s] = idx;
        if ((size_t)idx + 1 > ngroups)
            ngroups = (size_t)idx + 1;
        gstart[idx + 1]++;
    }
    for (size_t g = 0; g < ngroups; g++)
        gstart[g + 1] += gstart[g];
    size_t *fill = rw_arena_alloc(a, (ngroups + 1) * sizeof(size_t));
    if (!fill)
        return rw_eval_nomem(ctx);
    memcpy(fill, gstart, ngroups * sizeof(size_t));
    for (size_t s = 0; s < ns; s++)
        if (grp[s] >= 0)
            members[fill[grp[s]]++] = s;
    (void)gout;
    /* each group's members in bucket order once, rather than a sort per step:
       a step's buckets are then a sorted subsequence, in the order a stable
       sort of that step's buckets gives. A group with a NaN bound (which
       compares equal to every bound) is sorted per step as before. */
    uint8_t *gsorted = rw_arena_alloc(a, ngroups + 1);
    member_ub *tmp = rw_arena_alloc(a, (ns + 1) * sizeof *tmp);
    if (!gsorted || !tmp)
        return rw_eval_nomem(ctx);
    for (size_t g = 0; g < ngroups; g++) {
        size_t *m = members + gstart[g], n = gstart[g + 1] - gstart[g];
        gsorted[g] = 1;
        for (size_t x = 0; x < n; x++)
            if (isnan(ub[m[x]]))
                gsorted[g] = 0;
        if (!gsorted[g])
            continue;
        for (size_t x = 0; x < n; x++)
            tmp[x] = (member_ub){ub[m[x]], m[x]};
        qsort(tmp, n, sizeof *tmp, cmp_member); /* ties by position: stable */
        for (size_t x = 0; x < n; x++)
            m[x] = tmp[x].s;
    }

    mono_acc *macc = NULL;
    size_t nmacc = 0;
    bucket *bk2 = rw_arena_alloc(a, (ns + 1) * sizeof(bucket));
    long *qout = rw_arena_alloc(a, (nq * ngroups + 1) * sizeof(long));
    if (!bk2 || !qout)
        return rw_eval_nomem(ctx);
    for (size_t x = 0; x < nq * ngroups; x++)
        qout[x] = -1;
    rw_vbuild qb_out;
    rw_vbuild_init(&qb_out, ctx);
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        for (size_t g = 0; g < ngroups; g++) {
            size_t nb = 0;
            for (size_t m = gstart[g]; m < gstart[g + 1]; m++) {
                size_t s = members[m];
                if (!in.series[s].ok[i])
                    continue;
                bk[nb].ub = ub[s];
                bk[nb].count = in.series[s].v[i];
                nb++;
            }
            if (!nb)
                continue;
            if (mode == H_FRACTION) {
                b.s[g].ok[i] = 1;
                b.s[g].v[i] = bucket_fraction(lower[i], upper[i], bk, nb, gsorted[g]);
                continue;
            }
            for (size_t k = 0; k < nq; k++) {
                memcpy(bk2, bk, nb * sizeof *bk);
                mono_info mi;
                double v = bucket_quantile(qs[k][i], bk2, nb, gsorted[g], &mi);
                if (mi.forced) {
                    const char *mn = rw_labels_get(b.s[g].labels, b.s[g].nlabels, RW_METRIC_NAME);
                    if (!mn)
                        mn = "";
                    mono_acc *ma = NULL;
                    for (size_t x = 0; x < nmacc; x++)
                        if (!strcmp(macc[x].metric, mn))
                            ma = &macc[x];
                    if (!ma) {
                        mono_acc *nm = rw_arena_realloc(a, macc, nmacc * sizeof *macc,
                                                        (nmacc + 1) * sizeof *macc);
                        if (!nm)
                            return rw_eval_nomem(ctx);
                        macc = nm;
                        ma = &macc[nmacc++];
                        *ma = (mono_acc){mn, ctx->ts[i], ctx->ts[i], mi.min_b, mi.max_b,
                                         mi.max_diff, 0};
                    } else {
                        ma->count++;
                        ma->min_ts = ma->min_ts < ctx->ts[i] ? ma->min_ts : ctx->ts[i];
                        ma->max_ts = ma->max_ts > ctx->ts[i] ? ma->max_ts : ctx->ts[i];
                        ma->min_b = fmin(ma->min_b, mi.min_b);
                        ma->max_b = fmax(ma->max_b, mi.max_b);
                        ma->max_diff = fmax(ma->max_diff, mi.max_diff);
                    }
                }
                if (mode == H_QUANTILE) {
                    b.s[g].ok[i] = 1;
                    b.s[g].v[i] = v;
                    continue;
                }
                long oi = qout[k * ngroups + g];
                if (oi < 0) {
                    char qb[64];
                    fmt_om_float(qb, sizeof qb, qs[k][i]);
                    rw_label *ql;
                    size_t nql = rw_lbl_set(a, b.s[g].labels, b.s[g].nlabels, qlabel,
                                            rw_arena_strdup(a, qb), &ql);
                    if ((oi = rw_vbuild_series(&qb_out, ql, nql, 1)) < 0)
                        return rw_eval_nomem(ctx);
                    qout[k * ngroups + g] = oi;
                }
                if ((rc = rw_vbuild_set(&qb_out, oi, i, v)) != RW_OK)
                    return rc;
            }
        }
    }
    for (size_t x = 0; x < nmacc; x++) {
        mono_acc *ma = &macc[x];
        char b1[64], b2[64], t1[40], t2[40], name[300] = "";
        rw_fmt_go_g(b1, sizeof b1, ma->min_b);
        rw_fmt_go_g(b2, sizeof b2, ma->max_b);
        fmt_rfc3339(t1, sizeof t1, ma->min_ts);
        fmt_rfc3339(t2, sizeof t2, ma->max_ts);
        if (*ma->metric)
            snprintf(name, sizeof name, " for metric name %s", rw_go_quote(a, ma->metric));
        rw_eval_info(ctx, vpos,
                     "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
                     "(see https://prometheus.io/docs/prometheus/latest/querying/functions/"
                     "#histogram_quantile)%s, from buckets %s to %s, with a max diff of %.2g, over "
                     "%ld samples from %s to %s",
                     name, b1, b2, ma->max_diff, ma->count + 1, t1, t2);
    }
    if (mode == H_QUANTILES)
        rw_vbuild_finish(&qb_out, out);
    else
        rw_vbuild_finish(&b, out);
    rw_eval_drop_empty(ctx, out);
    return RW_OK;
}

RW_FN(rw_fn_histogram_quantile)
{
    int plural = call->u.call.fn->op == RW_HQ_MANY;
    return hist_fn(ctx, call, plural ? H_QUANTILES : H_QUANTILE, out);
}

RW_FN(rw_fn_histogram_fraction) { return hist_fn(ctx, call, H_FRACTION, out); }
