/* eval_agg.c - aggregation operators (sum, avg, min, max, count, group,
 * stddev, stdvar, quantile, topk, bottomk, limitk, limit_ratio,
 * count_values) with by/without grouping. Input series are assigned to
 * groups once per node; every step then folds each group's members in input
 * order, which is the order Prometheus folds them in (it matters for the
 * Kahan-compensated sums and for ties in topk/bottomk). The operators that
 * fold member by member take an argument that reads the store series by
 * series (rw_eval_stream) without holding it: groups are found as members
 * arrive, in the same order. */
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

typedef struct groups {
    size_t n;            /* number of groups */
    long *of;            /* [nseries] group of each series */
    size_t *first;       /* [n] first member (for labels) */
    size_t *members;     /* members grouped: members[start[g] .. start[g+1]) */
    size_t *start;       /* [n + 1] */
} groups;

/* The label names a series' group is hashed by: the grouping labels, and
 * __name__ as well for without. NULL out of memory. */
static const char **group_names(rw_eval_ctx *ctx, const rw_node *n, size_t *nn)
{
    size_t ng = n->u.agg.ngrouping;
    const char **names = rw_arena_alloc(ctx->q->a, (ng + 1) * sizeof(char *));
    if (!names)
        return NULL;
    for (size_t i = 0; i < ng; i++)
        names[i] = n->u.agg.grouping[i];
    *nn = ng;
    if (n->u.agg.without)
        names[(*nn)++] = RW_METRIC_NAME;
    return names;
}

static rw_rc make_groups(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *in, groups *g)
{
    rw_arena *a = ctx->q->a;
    int without = n->u.agg.without;
    size_t nn, ns = in->nseries;
    const char **names = group_names(ctx, n, &nn);
    if (!names)
        return rw_eval_nomem(ctx);
    g->of = rw_arena_alloc(a, (ns + 1) * sizeof(long));
    g->first = rw_arena_alloc(a, (ns + 1) * sizeof(size_t));
    g->members = rw_arena_alloc(a, (ns + 1) * sizeof(size_t));
    g->start = rw_arena_calloc(a, ns + 2, sizeof(size_t));
    if (!g->of || !g->first || !g->members || !g->start)
        return rw_eval_nomem(ctx);
    /* open addressing on the group hash */
    size_t cap = 16;
    while (cap < ns * 2)
        cap *= 2;
    uint64_t *hk = rw_arena_alloc(a, cap * sizeof *hk);
    long *hv = rw_arena_alloc(a, cap * sizeof *hv);
    if (!hk || !hv)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < cap; i++)
        hv[i] = -1;
    g->n = 0;
    for (size_t s = 0; s < ns; s++) {
        uint64_t h = 0;
        if (without || n->u.agg.ngrouping)
            h = rw_labels_hash_subset(in->series[s].labels, in->series[s].nlabels, names, nn,
                                      !without);
        size_t j = h & (cap - 1);
        while (hv[j] >= 0 && hk[j] != h)
            j = (j + 1) & (cap - 1);
        if (hv[j] < 0) {
            hk[j] = h;
            hv[j] = (long)g->n;
            g->first[g->n++] = s;
        }
        g->of[s] = hv[j];
        g->start[hv[j] + 1]++;
    }
    for (size_t i = 0; i < g->n; i++)
        g->start[i + 1] += g->start[i];
    size_t *fill = rw_arena_alloc(a, (g->n + 1) * sizeof(size_t));
    if (!fill)
        return rw_eval_nomem(ctx);
    memcpy(fill, g->start, g->n * sizeof(size_t));
    for (size_t s = 0; s < ns; s++)
        g->members[fill[g->of[s]]++] = s;
    return RW_OK;
}

static size_t group_labels(rw_eval_ctx *ctx, const rw_node *n, const rw_label *l, size_t nl,
                           char *const *grouping, size_t ngrouping, rw_label **out)
{
    if (n->u.agg.without)
        return rw_lbl_filter(ctx->q->a, l, nl, grouping, ngrouping, 0, 1, out);
    if (!ngrouping) {
        *out = NULL;
        return 0;
    }
    return rw_lbl_filter(ctx->q->a, l, nl, grouping, ngrouping, 1, 0, out);
}

/* The output series of group gi (labels from its first member), next in
 * out; NULL out of memory. */
static rw_eval_series *group_series(rw_eval_ctx *ctx, const rw_node *n, const rw_eval_value *in,
                                    const groups *g, size_t gi, rw_eval_value *out)
{
    const rw_eval_series *first = &in->series[g->first[gi]];
    rw_label *gl;
    size_t ngl = group_labels(ctx, n, first->labels, first->nlabels, n->u.agg.grouping,
                              n->u.agg.ngrouping, &gl);
    return rw_series_new(ctx, &out->series[out->nseries], gl, ngl, 0);
}

/* Max/min of a parameter over the steps with Go's NaN-propagating
 * math.Max/Min, as Prometheus' fParams; returns whether any step is NaN. */
static int param_stats(rw_eval_ctx *ctx, const double *p, double *mx, double *mn)
{
    int nan = 0;
    *mx = -1.7976931348623157e308;
    *mn = 1.7976931348623157e308;
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if (isnan(p[i])) {
            nan = 1;
            *mx = *mn = NAN;
        } else if (!isnan(*mx)) {
            *mx = fmax(*mx, p[i]);
            *mn = fmin(*mn, p[i]);
        }
    }
    return nan;
}

/* ---- sum, avg, min, max, count, group, stddev, stdvar, quantile ---- */

/* Per-step state of one group while its members are folded in: only the
 * arrays its operator uses (fold_new). */
typedef struct fold {
    double *v, *c, *mean, *count;
    rw_avg *avg;
    uint8_t *seen;
    int drop;            /* a member with a value had drop_name */
} fold;

static int fold_new(rw_arena *a, rw_aggop op, size_t ns, fold *f)
{
    memset(f, 0, sizeof *f);
    int v = op != RW_AGG_AVG && op != RW_AGG_COUNT;
    int mean = op == RW_AGG_STDDEV || op == RW_AGG_STDVAR;
    f->seen = rw_arena_calloc(a, ns, 1);
    return !f->seen || (v && !(f->v = rw_arena_alloc(a, ns * sizeof *f->v))) ||
                   (op == RW_AGG_SUM && !(f->c = rw_arena_alloc(a, ns * sizeof *f->c))) ||
                   (mean && !(f->mean = rw_arena_alloc(a, ns * sizeof *f->mean))) ||
                   ((mean || op == RW_AGG_COUNT) &&
                    !(f->count = rw_arena_alloc(a, ns * sizeof *f->count))) ||
                   (op == RW_AGG_AVG && !(f->avg = rw_arena_alloc(a, ns * sizeof *f->avg)))
               ? -1
               : 0;
}

/* Folds member s into f: one pass over its step arrays. Each step folds
 * the members in the order they come, which callers keep as input order. */
static void fold_member(fold *f, rw_aggop op, size_t ns, const rw_eval_series *s)
{
    const uint8_t *ok = s->ok;
    const double *xv = s->v;
    int any = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!ok[i])
            continue;
        double x = xv[i];
        any = 1;
        if (!f->seen[i]) {
            f->seen[i] = 1;
            switch (op) {
            case RW_AGG_SUM: f->v[i] = x; f->c[i] = 0; break;
            case RW_AGG_AVG: rw_avg_init(&f->avg[i], x); break;
            case RW_AGG_COUNT: f->count[i] = 1; break;
            case RW_AGG_GROUP: f->v[i] = 1; break;
            case RW_AGG_STDDEV: case RW_AGG_STDVAR:
                f->v[i] = (isnan(x) || isinf(x)) ? NAN : 0;
                f->mean[i] = x;
                f->count[i] = 1;
                break;
            default: f->v[i] = x; break;
            }
            continue;
        }
        switch (op) {
        case RW_AGG_SUM:
            rw_kahan_inc(x, &f->v[i], &f->c[i]);
            break;
        case RW_AGG_AVG:
            rw_avg_add(&f->avg[i], x);
            break;
        case RW_AGG_MAX:
            if (f->v[i] < x || isnan(f->v[i]))
                f->v[i] = x;
            break;
        case RW_AGG_MIN:
            if (f->v[i] > x || isnan(f->v[i]))
                f->v[i] = x;
            break;
        case RW_AGG_COUNT:
            f->count[i]++;
            break;
        case RW_AGG_STDDEV: case RW_AGG_STDVAR: {
            f->count[i]++;
            double delta = x - f->mean[i];
            f->mean[i] += delta / f->count[i];
            f->v[i] += delta * (x - f->mean[i]);
            break;
        }
        default:
            break;
        }
    }
    if (any && s->drop_name)
        f->drop = 1;
}

/* The group's value at step i (seen there). */
static inline double fold_value(const fold *f, rw_aggop op, size_t i)
{
    switch (op) {
    case RW_AGG_SUM: return f->v[i] + f->c[i];
    case RW_AGG_AVG: return rw_avg_value(&f->avg[i]);
    case RW_AGG_COUNT: return f->count[i];
    case RW_AGG_STDVAR: return f->v[i] / f->count[i];
    case RW_AGG_STDDEV: return sqrt(f->v[i] / f->count[i]);
    default: return f->v[i];
    }
}

/* The group's values into o; returns whether it has one at any step. */
static int fold_finish(const fold *f, rw_aggop op, size_t ns, rw_eval_series *o)
{
    int any = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!f->seen[i])
            continue;
        o->ok[i] = 1;
        o->v[i] = fold_value(f, op, i);
        any = 1;
    }
    if (f->drop)
        o->drop_name = 1;
    return any;
}

/* The group's values as o's step arrays, made in place from the fold's (o
 * takes them: no second pair of arrays per group, no copy): the result
 * where the fold has one, seen as the presence. Returns whether it has a
 * value at any step, like fold_finish; -1 for avg, whose state is not a
 * double a step. */
static int fold_take(fold *f, rw_aggop op, size_t ns, rw_eval_series *o)
{
    double *v = op == RW_AGG_COUNT ? f->count : f->v;
    if (op == RW_AGG_AVG || !v)
        return -1;
    int any = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!f->seen[i])
            continue;
        any = 1;
        v[i] = fold_value(f, op, i); /* reads step i's state before writing it */
    }
    o->v = v;
    o->ok = f->seen;
    o->t = NULL;
    o->drop_name = f->drop;
    return any;
}

/* Every operator but quantile, member by member: each member's step arrays
 * are read in one pass into per-step state of its group (kept in cache),
 * rather than each step gathering its value from every member - with
 * thousands of members the latter misses the cache at every value. Each
 * step still folds the members in input order, so the results are the
 * same bit for bit. */
static rw_rc agg_fold(rw_eval_ctx *ctx, const rw_node *n, const rw_eval_value *in,
                      const groups *g, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    rw_aggop op = n->u.agg.op;
    size_t ns = ctx->nsteps;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(a, (g->n ? g->n : 1) * sizeof *out->series);
    fold f;
    if (fold_new(a, op, ns, &f) < 0 || !out->series)
        return rw_eval_nomem(ctx);
    rw_rc rc;
    size_t done = 0;
    for (size_t gi = 0; gi < g->n; gi++) {
        memset(f.seen, 0, ns);
        f.drop = 0;
        for (size_t k = g->start[gi]; k < g->start[gi + 1]; k++, done++) {
            if ((done & 255) == 255 && (rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
                return rc;
            fold_member(&f, op, ns, &in->series[g->members[k]]);
        }
        rw_eval_series *o = group_series(ctx, n, in, g, gi, out);
        if (!o)
            return rw_eval_nomem(ctx);
        if (fold_finish(&f, op, ns, o))
            out->nseries++;
    }
    return RW_OK;
}

/* ---- the same fold over a streamed argument (rw_eval_stream) ----
 * Groups are found as their first member arrives (the order make_groups
 * numbers them in), each with a fold of its own; members are folded as
 * they come, which is input order. */
typedef struct stream_group {
    fold f;
    rw_label *labels;    /* output labels (group_labels of the first member) */
    size_t nlabels;
} stream_group;

typedef struct agg_stream {
    rw_series_sink sk;
    rw_eval_ctx *ctx;
    const rw_node *n;
    const char **names;  /* grouping labels hashed (group_names) */
    size_t nn;
    uint64_t *hk;        /* open addressing: group hash -> index + 1 */
    size_t *hv, hcap;
    stream_group *g;     /* [ng], in order of first member */
    size_t ng, cap;
} agg_stream;

static int stream_grow(agg_stream *st)
{
    rw_arena *a = st->ctx->q->a;
    if (st->ng == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 16;
        stream_group *g = rw_arena_realloc(a, st->g, st->ng * sizeof *g, nc * sizeof *g);
        if (!g)
            return -1;
        st->g = g;
        st->cap = nc;
    }
    if (st->ng * 2 >= st->hcap) {
        size_t nc = st->hcap ? st->hcap * 2 : 64;
        uint64_t *hk = rw_arena_alloc(a, nc * sizeof *hk);
        size_t *hv = rw_arena_calloc(a, nc, sizeof *hv);
        if (!hk || !hv)
            return -1;
        for (size_t i = 0; i < st->hcap; i++) {
            if (!st->hv[i])
                continue;
            size_t j = st->hk[i] & (nc - 1);
            while (hv[j])
                j = (j + 1) & (nc - 1);
            hk[j] = st->hk[i];
            hv[j] = st->hv[i];
        }
        st->hk = hk;
        st->hv = hv;
        st->hcap = nc;
    }
    return 0;
}

static rw_rc stream_put(rw_series_sink *sk, const rw_eval_series *s)
{
    agg_stream *st = (agg_stream *)sk;
    rw_eval_ctx *ctx = st->ctx;
    const rw_node *n = st->n;
    if (stream_grow(st) < 0)
        return rw_eval_nomem(ctx);
    uint64_t h = 0;
    if (n->u.agg.without || n->u.agg.ngrouping)
        h = rw_labels_hash_subset(s->labels, s->nlabels, st->names, st->nn, !n->u.agg.without);
    size_t j = h & (st->hcap - 1);
    while (st->hv[j] && st->hk[j] != h)
        j = (j + 1) & (st->hcap - 1);
    if (!st->hv[j]) {
        /* a new group: its state, accounted as the output it becomes */
        stream_group *g = &st->g[st->ng];
        if (fold_new(ctx->q->a, n->u.agg.op, ctx->nsteps, &g->f) < 0)
            return rw_eval_nomem(ctx);
        g->nlabels = group_labels(ctx, n, s->labels, s->nlabels, n->u.agg.grouping,
                                  n->u.agg.ngrouping, &g->labels);
        st->hk[j] = h;
        st->hv[j] = ++st->ng;
        rw_rc rc = rw_eval_account(ctx, ctx->nsteps);
        if (rc != RW_OK)
            return rc;
    }
    fold_member(&st->g[st->hv[j] - 1].f, n->u.agg.op, ctx->nsteps, s);
    return RW_OK;
}

static rw_rc agg_fold_stream(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    agg_stream st = {.sk = {.put = stream_put}, .ctx = ctx, .n = n};
    if (!(st.names = group_names(ctx, n, &st.nn)))
        return rw_eval_nomem(ctx);
    rw_rc rc = rw_eval_stream(ctx, n->u.agg.expr, &st.sk);
    if (rc != RW_OK)
        return rc;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    if (!(out->series = rw_arena_alloc(a, (st.ng ? st.ng : 1) * sizeof *out->series)))
        return rw_eval_nomem(ctx);
    for (size_t gi = 0; gi < st.ng; gi++) {
        stream_group *g = &st.g[gi];
        rw_eval_series *o = &out->series[out->nseries];
        o->labels = g->labels;
        o->nlabels = g->nlabels;
        int took = fold_take(&g->f, n->u.agg.op, ctx->nsteps, o);
        if (took >= 0) {
            out->nseries += (size_t)took;
            continue;
        }
        if (!rw_series_new(ctx, o, g->labels, g->nlabels, 0))
            return rw_eval_nomem(ctx);
        if (fold_finish(&g->f, n->u.agg.op, ctx->nsteps, o))
            out->nseries++;
    }
    return RW_OK;
}

/* quantile: every step needs all of its group's values at once */
static rw_rc agg_quantile(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *in,
                          const groups *g, double *param, rw_eval_value *out)
{
    double mx, mn;
    int has_nan = param_stats(ctx, param, &mx, &mn);
    char buf[64];
    int pos = n->u.agg.param ? n->u.agg.param->pos : -1;
    if (has_nan)
        rw_eval_warn(ctx, pos, "PromQL warning: quantile value should be between 0 and 1, got NaN");
    if (mx > 1) {
        rw_fmt_go_g(buf, sizeof buf, mx);
        rw_eval_warn(ctx, pos, "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
    }
    if (mn < 0) {
        rw_fmt_go_g(buf, sizeof buf, mn);
        rw_eval_warn(ctx, pos, "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
    }
    rw_arena *a = ctx->q->a;
    double *qbuf = rw_arena_alloc(a, (in->nseries + 1) * sizeof(double));
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(a, (g->n ? g->n : 1) * sizeof *out->series);
    if (!qbuf || !out->series)
        return rw_eval_nomem(ctx);
    rw_rc rc;
    for (size_t gi = 0; gi < g->n; gi++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        rw_eval_series *o = group_series(ctx, n, in, g, gi, out);
        if (!o)
            return rw_eval_nomem(ctx);
        int any = 0;
        for (size_t i = 0; i < ctx->nsteps; i++) {
            if ((i & 255) == 255 && (rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
                return rc;
            int drop = 0;
            size_t nq = 0;
            for (size_t k = g->start[gi]; k < g->start[gi + 1]; k++) {
                rw_eval_series *s = &in->series[g->members[k]];
                if (!s->ok[i])
                    continue;
                qbuf[nq++] = s->v[i];
                if (s->drop_name)
                    drop = 1;
            }
            if (!nq)
                continue;
            o->ok[i] = 1;
            o->v[i] = rw_quantile(param[i], qbuf, nq);
            if (drop)
                o->drop_name = 1;
            any = 1;
        }
        if (any)
            out->nseries++;
    }
    return RW_OK;
}

static rw_rc agg_simple(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *in, double *param,
                        rw_eval_value *out)
{
    groups g;
    rw_rc rc = make_groups(ctx, n, in, &g);
    if (rc != RW_OK)
        return rc;
    return n->u.agg.op == RW_AGG_QUANTILE ? agg_quantile(ctx, n, in, &g, param, out)
                                          : agg_fold(ctx, n, in, &g, out);
}

/* ---- topk, bottomk, limitk, limit_ratio ---- */

/* A binary heap with the exact sift rules of Go's container/heap, so that
 * ties resolve as in Prometheus. less(i, j) for topk: NaN or smaller first. */
typedef struct kheap {
    size_t *e;  /* series indices */
    size_t n;
    const rw_eval_value *in;
    size_t step;
    int rev;    /* bottomk */
} kheap;

static int kh_less(const kheap *h, size_t i, size_t j)
{
    double vi = h->in->series[h->e[i]].v[h->step], vj = h->in->series[h->e[j]].v[h->step];
    if (isnan(vi))
        return 1;
    return h->rev ? vi > vj : vi < vj;
}

static void kh_swap(kheap *h, size_t i, size_t j)
{
    size_t t = h->e[i];
    h->e[i] = h->e[j];
    h->e[j] = t;
}

static void kh_up(kheap *h, size_t j)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!kh_less(h, j, i))
            break;
        kh_swap(h, i, j);
        j = i;
    }
}

static int kh_down(kheap *h, size_t i0)
{
    size_t i = i0;
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= h->n)
            break;
        size_t j = j1;
        if (j1 + 1 < h->n && kh_less(h, j1 + 1, j1))
            j = j1 + 1;
        if (!kh_less(h, j, i))
            break;
        kh_swap(h, i, j);
        i = j;
    }
    return i > i0;
}

/* Output order of a topk/bottomk group: best first, NaN last. */
static int k_cmp(const rw_eval_value *in, size_t step, int rev, size_t a, size_t b)
{
    double x = in->series[a].v[step];
    double y = in->series[b].v[step];
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    if (x == y)
        return 0;
    return rev ? (x < y ? -1 : 1) : (x > y ? -1 : 1);
}

/* Prometheus labels.Hash: xxhash64 over name\xff value\xff ... */
static double ratio_offset(const rw_eval_series *s)
{
    XXH64_state_t st;
    XXH64_reset(&st, 0);
    const char sep = '\xff';
    for (size_t i = 0; i < s->nlabels; i++) {
        XXH64_update(&st, s->labels[i].name, strlen(s->labels[i].name));
        XXH64_update(&st, &sep, 1);
        XXH64_update(&st, s->labels[i].value, strlen(s->labels[i].value));
        XXH64_update(&st, &sep, 1);
    }
    return (double)XXH64_digest(&st) / 18446744073709551615.0;
}

static rw_rc agg_k(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *in, double *param,
                   rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    rw_aggop op = n->u.agg.op;
    double mx, mn;
    int has_nan = param_stats(ctx, param, &mx, &mn);
    rw_rc rc;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    char b1[64];
    if (op == RW_AGG_LIMIT_RATIO) {
        if (mx == 0 && mn == 0)
            return RW_OK;
        if (has_nan)
            return rw_eval_fail(ctx, RW_EXEC, "Ratio value is NaN");
        int pos = n->u.agg.param ? n->u.agg.param->pos : -1;
        if (mx > 1) {
            rw_fmt_go_g(b1, sizeof b1, mx);
            rw_eval_warn(ctx, pos, "PromQL warning: ratio value should be between -1 and 1, got %s, capping to 1", b1);
        }
        if (mn < -1) {
            rw_fmt_go_g(b1, sizeof b1, mn);
            rw_eval_warn(ctx, pos, "PromQL warning: ratio value should be between -1 and 1, got %s, capping to -1", b1);
        }
    } else {
        if (mx < 1)
            return RW_OK;
        if (has_nan)
            return rw_eval_fail(ctx, RW_EXEC, "Parameter value is NaN");
        if (mn <= -9223372036854775808.0) {
            rw_fmt_go_g(b1, sizeof b1, mn);
            return rw_eval_fail(ctx, RW_EXEC, "Scalar value %s underflows int64", b1);
        }
        if (mx >= 9223372036854775807.0) {
            rw_fmt_go_g(b1, sizeof b1, mx);
            return rw_eval_fail(ctx, RW_EXEC, "Scalar value %s overflows int64", b1);
        }
    }
    groups g;
    if ((rc = make_groups(ctx, n, in, &g)) != RW_OK)
        return rc;
    size_t ns = in->nseries;
    /* output: one series per input series, values at the steps it was kept */
    rw_eval_series *os = rw_arena_alloc(a, (ns ? ns : 1) * sizeof *os);
    uint8_t *used = rw_arena_calloc(a, ns + 1, 1);
    size_t *heap = rw_arena_alloc(a, (ns + 1) * sizeof(size_t));
    size_t *order = rw_arena_alloc(a, (ns + 1) * sizeof(size_t)); /* instant output order */
    double *roff = NULL;
    size_t norder = 0;
    if (!os || !used || !heap || !order)
        return rw_eval_nomem(ctx);
    if (op == RW_AGG_LIMIT_RATIO) {
        if (!(roff = rw_arena_alloc(a, (ns + 1) * sizeof(double))))
            return rw_eval_nomem(ctx);
        for (size_t s = 0; s < ns; s++)
            roff[s] = ratio_offset(&in->series[s]);
    }
    for (size_t s = 0; s < ns; s++)
        if (!rw_series_new(ctx, &os[s], in->series[s].labels, in->series[s].nlabels,
                           in->series[s].drop_name))
            return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        int64_t k = 0;
        double r = 0;
        if (op == RW_AGG_LIMIT_RATIO) {
            r = param[i];
            if (r == 0)
                continue;
            r = r < -1 ? -1 : r > 1 ? 1 : r;
        } else {
            k = (int64_t)param[i];
            if (k > (int64_t)ns)
                k = (int64_t)ns;
            if (k < 1)
                continue;
        }
        for (size_t gi = 0; gi < g.n; gi++) {
            kheap h = {.e = heap, .n = 0, .in = in, .step = i, .rev = op == RW_AGG_BOTTOMK};
            for (size_t m = g.start[gi]; m < g.start[gi + 1]; m++) {
                size_t s = g.members[m];
                if (!in->series[s].ok[i])
                    continue;
                double x = in->series[s].v[i];
                switch (op) {
                case RW_AGG_TOPK:
                case RW_AGG_BOTTOMK:
                    if ((int64_t)h.n < k) {
                        heap[h.n++] = s;
                        kh_up(&h, h.n - 1);
                    } else {
                        double top = in->series[heap[0]].v[i];
                        int better = op == RW_AGG_TOPK ? top < x : top > x;
                        if (better || (isnan(top) && !isnan(x))) {
                            heap[0] = s;
                            if (k > 1 && !kh_down(&h, 0))
                                kh_up(&h, 0);
                        }
                    }
                    break;
                case RW_AGG_LIMITK:
                    if ((int64_t)h.n < k)
                        heap[h.n++] = s;
                    break;
                case RW_AGG_LIMIT_RATIO:
                    if ((r >= 0 && roff[s] < r) || (r < 0 && roff[s] >= 1.0 + r))
                        heap[h.n++] = s;
                    break;
                default:
                    break;
                }
            }
            if (op == RW_AGG_TOPK || op == RW_AGG_BOTTOMK) {
                /* stable insertion sort: groups are small */
                int rev = op == RW_AGG_BOTTOMK;
                for (size_t x = 1; x < h.n; x++) {
                    size_t e = heap[x], y = x;
                    while (y > 0 && k_cmp(in, i, rev, heap[y - 1], e) > 0) {
                        heap[y] = heap[y - 1];
                        y--;
                    }
                    heap[y] = e;
                }
            }
            for (size_t x = 0; x < h.n; x++) {
                size_t s = heap[x];
                os[s].ok[i] = 1;
                os[s].v[i] = in->series[s].v[i];
                if (!used[s]) {
                    used[s] = 1;
                    order[norder++] = s;
                }
            }
        }
    }
    out->series = rw_arena_alloc(a, (norder ? norder : 1) * sizeof *out->series);
    if (!out->series)
        return rw_eval_nomem(ctx);
    for (size_t x = 0; x < norder; x++)
        out->series[x] = os[order[x]];
    out->nseries = norder;
    return RW_OK;
}

/* ---- count_values ---- */

static rw_rc agg_count_values(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *in,
                              const char *label, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    if (!label[0] || !rw_utf8_valid(label, strlen(label)))
        return rw_eval_fail(ctx, RW_EXEC, "invalid label name %s", rw_go_quote(a, label));
    size_t ng = n->u.agg.ngrouping;
    char **grouping = rw_arena_alloc(a, (ng + 1) * sizeof(char *));
    if (!grouping)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ng; i++)
        grouping[i] = n->u.agg.grouping[i];
    if (!n->u.agg.without)
        grouping[ng++] = (char *)label;
    rw_vbuild b;
    rw_vbuild_init(&b, ctx);
    long *cnt_idx = rw_arena_alloc(a, (in->nseries + 1) * sizeof(long));
    /* per series: the value and group of its previous step (values of a
     * series rarely change from step to step) */
    long *last_idx = rw_arena_alloc(a, (in->nseries + 1) * sizeof(long));
    double *last_val = rw_arena_alloc(a, (in->nseries + 1) * sizeof(double));
    if (!last_idx || !last_val)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < in->nseries; s++)
        last_idx[s] = -1;
    double *counts = NULL;
    size_t ncounts = 0;
    if (!cnt_idx)
        return rw_eval_nomem(ctx);
    rw_rc rc;
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        size_t first_new = b.n;
        for (size_t s = 0; s < in->nseries; s++) {
            rw_eval_series *se = &in->series[s];
            cnt_idx[s] = -1;
            if (!se->ok[i])
                continue;
            if (last_idx[s] >= 0 && memcmp(&last_val[s], &se->v[i], sizeof(double)) == 0) {
                cnt_idx[s] = last_idx[s];
                continue;
            }
            char buf[64];
            rw_fmt_go_f(buf, sizeof buf, se->v[i]);
            char *val = rw_arena_strdup(a, buf);
            rw_label *l;
            size_t nl = rw_lbl_set(a, se->labels, se->nlabels, label, val, &l);
            rw_label *gl;
            size_t ngl = group_labels(ctx, n, l, nl, grouping, ng, &gl);
            long idx = rw_vbuild_series(&b, gl, ngl, 0);
            if (idx < 0 || !val)
                return rw_eval_nomem(ctx);
            cnt_idx[s] = idx;
            last_idx[s] = idx;
            last_val[s] = se->v[i];
        }
        (void)first_new;
        if (b.n > ncounts) {
            double *nc = rw_arena_realloc(a, counts, ncounts * sizeof(double), b.n * 2 * sizeof(double));
            if (!nc)
                return rw_eval_nomem(ctx);
            counts = nc;
            ncounts = b.n * 2;
        }
        for (size_t x = 0; x < b.n; x++)
            counts[x] = 0;
        for (size_t s = 0; s < in->nseries; s++)
            if (cnt_idx[s] >= 0)
                counts[cnt_idx[s]]++;
        for (size_t x = 0; x < b.n; x++)
            if (counts[x] > 0) {
                b.s[x].ok[i] = 1;
                b.s[x].v[i] = counts[x];
            }
    }
    rw_vbuild_finish(&b, out);
    return RW_OK;
}

rw_rc rw_eval_aggregate(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_aggop op = n->u.agg.op;
    rw_rc rc;
    double *param = NULL;
    const char *label = NULL;
    if (op == RW_AGG_COUNT_VALUES) {
        rw_eval_value pv;
        if ((rc = rw_eval(ctx, n->u.agg.param, &pv)) != RW_OK)
            return rc;
        if (pv.type != RW_VAL_STRING)
            return rw_eval_fail(ctx, RW_EXEC, "count_values needs a string parameter");
        label = pv.str;
    } else if (n->u.agg.param) {
        if ((rc = rw_eval_scalar(ctx, n->u.agg.param, &param)) != RW_OK)
            return rc;
    }
    if (op != RW_AGG_QUANTILE && op != RW_AGG_COUNT_VALUES && op != RW_AGG_TOPK &&
        op != RW_AGG_BOTTOMK && op != RW_AGG_LIMITK && op != RW_AGG_LIMIT_RATIO &&
        rw_eval_streams(ctx, n->u.agg.expr))
        return agg_fold_stream(ctx, n, out);
    rw_eval_value in;
    if ((rc = rw_eval(ctx, n->u.agg.expr, &in)) != RW_OK)
        return rc;
    if (in.type != RW_VAL_VECTOR)
        return rw_eval_fail(ctx, RW_EXEC, "aggregation over a %s is not supported",
                            rw_val_type_name(in.type));
    switch (op) {
    case RW_AGG_COUNT_VALUES:
        return agg_count_values(ctx, n, &in, label, out);
    case RW_AGG_TOPK: case RW_AGG_BOTTOMK: case RW_AGG_LIMITK: case RW_AGG_LIMIT_RATIO:
        return agg_k(ctx, n, &in, param, out);
    default:
        return agg_simple(ctx, n, &in, param, out);
    }
}
