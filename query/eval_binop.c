/* eval_binop.c - binary operators: scalar/scalar, vector/scalar and
 * vector/vector arithmetic and comparisons (with on/ignoring and
 * group_left/group_right matching), and the set operators and/or/unless.
 * Label matching is computed once per query node: every series gets the
 * ordinal of its match signature, and each step only flips presence bits,
 * so a range query costs one pass over the steps, not a join per step. */
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int changes_schema(rw_binop op)
{
    switch (op) {
    case RW_OP_ADD: case RW_OP_SUB: case RW_OP_MUL: case RW_OP_DIV: case RW_OP_POW:
    case RW_OP_MOD: case RW_OP_ATAN2:
        return 1;
    default:
        return 0;
    }
}

/* Value of l op r; *keep = 0 when a comparison filters the element out. */
static double elem(rw_binop op, double l, double r, int *keep)
{
    *keep = 1;
    switch (op) {
    case RW_OP_ADD: return l + r;
    case RW_OP_SUB: return l - r;
    case RW_OP_MUL: return l * r;
    case RW_OP_DIV: return l / r;
    case RW_OP_POW: return pow(l, r);
    case RW_OP_MOD: return fmod(l, r);
    case RW_OP_ATAN2: return atan2(l, r);
    case RW_OP_EQL: *keep = l == r; return l;
    case RW_OP_NEQ: *keep = l != r; return l;
    case RW_OP_GTR: *keep = l > r; return l;
    case RW_OP_LSS: *keep = l < r; return l;
    case RW_OP_GTE: *keep = l >= r; return l;
    case RW_OP_LTE: *keep = l <= r; return l;
    default: *keep = 0; return NAN;
    }
}

static rw_rc scalar_scalar(rw_eval_ctx *ctx, const rw_node *n, double *l, double *r,
                           rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_SCALAR;
    out->scalar = rw_arena_alloc(ctx->q->a, ctx->nsteps * sizeof(double));
    if (!out->scalar)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ctx->nsteps; i++) {
        int keep;
        double v = elem(n->u.bin.op, l[i], r[i], &keep);
        if (rw_binop_is_comparison(n->u.bin.op))
            v = keep ? 1 : 0;
        out->scalar[i] = v;
    }
    return RW_OK;
}

static rw_rc vector_scalar(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *vec, double *sc,
                           int swap, rw_eval_value *out)
{
    rw_binop op = n->u.bin.op;
    int cmp = rw_binop_is_comparison(op), rbool = n->u.bin.return_bool;
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(ctx->q->a, (vec->nseries ? vec->nseries : 1) * sizeof *out->series);
    if (!out->series)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < vec->nseries; s++) {
        rw_eval_series *in = &vec->series[s];
        rw_eval_series *o = &out->series[out->nseries];
        int drop = in->drop_name || changes_schema(op) || rbool;
        if (!rw_series_new(ctx, o, in->labels, in->nlabels, drop))
            return rw_eval_nomem(ctx);
        int any = 0;
        for (size_t i = 0; i < ctx->nsteps; i++) {
            if (!in->ok[i])
                continue;
            double l = in->v[i], r = sc[i];
            if (swap) {
                double t = l;
                l = r;
                r = t;
            }
            int keep;
            double v = elem(op, l, r, &keep);
            if (cmp && swap)
                v = r;
            if (rbool) {
                v = keep ? 1 : 0;
                keep = 1;
            }
            if (!keep)
                continue;
            o->ok[i] = 1;
            o->v[i] = v;
            any = 1;
        }
        if (any)
            out->nseries++;
    }
    return RW_OK;
}

/* ---- vector/vector ---- */

typedef struct sigtab {
    uint64_t *k;
    uint32_t *v; /* ordinal + 1 */
    size_t cap, n;
} sigtab;

static long sig_ordinal(rw_arena *a, sigtab *t, uint64_t h)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        uint64_t *k = rw_arena_alloc(a, nc * sizeof *k);
        uint32_t *v = rw_arena_calloc(a, nc, sizeof *v);
        if (!k || !v)
            return -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->v[i]) {
                size_t j = t->k[i] & (nc - 1);
                while (v[j])
                    j = (j + 1) & (nc - 1);
                k[j] = t->k[i];
                v[j] = t->v[i];
            }
        t->k = k;
        t->v = v;
        t->cap = nc;
    }
    size_t j = h & (t->cap - 1);
    while (t->v[j]) {
        if (t->k[j] == h)
            return (long)t->v[j] - 1;
        j = (j + 1) & (t->cap - 1);
    }
    t->k[j] = h;
    t->v[j] = (uint32_t)++t->n;
    return (long)t->n - 1;
}

/* Signature names: on(...) -> only those; ignoring(...) -> all but those and
 * __name__. */
typedef struct matchsig {
    const char **names;
    size_t n;
    int only;
} matchsig;

static int matchsig_init(rw_arena *a, const rw_vector_matching *m, matchsig *ms)
{
    size_t n = m ? m->nlabels : 0;
    ms->names = rw_arena_alloc(a, (n + 1) * sizeof(char *));
    if (!ms->names)
        return -1;
    ms->n = 0;
    for (size_t i = 0; i < n; i++)
        ms->names[ms->n++] = m->labels[i];
    ms->only = m && m->on;
    if (!ms->only)
        ms->names[ms->n++] = RW_METRIC_NAME;
    return 0;
}

static rw_rc ordinals(rw_eval_ctx *ctx, sigtab *t, const matchsig *ms, rw_eval_value *v,
                      long **ord)
{
    *ord = rw_arena_alloc(ctx->q->a, (v->nseries ? v->nseries : 1) * sizeof(long));
    if (!*ord)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < v->nseries; s++) {
        uint64_t h = rw_labels_hash_subset(v->series[s].labels, v->series[s].nlabels,
                                           ms->names, ms->n, ms->only);
        if (((*ord)[s] = sig_ordinal(ctx->q->a, t, h)) < 0)
            return rw_eval_nomem(ctx);
    }
    return RW_OK;
}

static rw_eval_series *filtered_copy(rw_eval_ctx *ctx, rw_eval_series *dst, const rw_eval_series *src)
{
    if (!rw_series_new(ctx, dst, src->labels, src->nlabels, src->drop_name))
        return NULL;
    memcpy(dst->v, src->v, ctx->nsteps * sizeof(double));
    return dst;
}

static rw_rc set_op(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *l, rw_eval_value *r,
                    rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    sigtab t = {0};
    matchsig ms;
    long *lo, *ro;
    rw_rc rc;
    if (matchsig_init(a, n->u.bin.matching, &ms) < 0)
        return rw_eval_nomem(ctx);
    if ((rc = ordinals(ctx, &t, &ms, l, &lo)) != RW_OK ||
        (rc = ordinals(ctx, &t, &ms, r, &ro)) != RW_OK)
        return rc;
    uint8_t *lp = rw_arena_calloc(a, t.n + 1, 1), *rp = rw_arena_calloc(a, t.n + 1, 1);
    size_t cap = l->nseries + (n->u.bin.op == RW_OP_OR ? r->nseries : 0);
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = rw_arena_alloc(a, (cap ? cap : 1) * sizeof *out->series);
    if (!lp || !rp || !out->series)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < l->nseries; s++)
        if (!filtered_copy(ctx, &out->series[s], &l->series[s]))
            return rw_eval_nomem(ctx);
    if (n->u.bin.op == RW_OP_OR)
        for (size_t s = 0; s < r->nseries; s++)
            if (!filtered_copy(ctx, &out->series[l->nseries + s], &r->series[s]))
                return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        memset(lp, 0, t.n);
        memset(rp, 0, t.n);
        for (size_t s = 0; s < l->nseries; s++)
            if (l->series[s].ok[i])
                lp[lo[s]] = 1;
        for (size_t s = 0; s < r->nseries; s++)
            if (r->series[s].ok[i])
                rp[ro[s]] = 1;
        for (size_t s = 0; s < l->nseries; s++) {
            if (!l->series[s].ok[i])
                continue;
            int in_r = rp[lo[s]];
            int keep = n->u.bin.op == RW_OP_AND ? in_r : n->u.bin.op == RW_OP_UNLESS ? !in_r : 1;
            out->series[s].ok[i] = (uint8_t)keep;
        }
        if (n->u.bin.op == RW_OP_OR)
            for (size_t s = 0; s < r->nseries; s++)
                if (r->series[s].ok[i] && !lp[ro[s]])
                    out->series[l->nseries + s].ok[i] = 1;
    }
    /* drop series left without values */
    out->nseries = cap;
    rw_eval_drop_empty(ctx, out);
    return RW_OK;
}

/* Labels of the match group (for error messages). */
static char *match_group_str(rw_eval_ctx *ctx, const rw_eval_series *s, const rw_vector_matching *m)
{
    rw_label *l;
    size_t n;
    if (m->on)
        n = rw_lbl_filter(ctx->q->a, s->labels, s->nlabels, m->labels, m->nlabels, 1, 0, &l);
    else
        n = rw_lbl_filter(ctx->q->a, s->labels, s->nlabels, m->labels, m->nlabels, 0, 1, &l);
    return rw_lbl_str(ctx->q->a, l, n);
}

static size_t result_labels(rw_eval_ctx *ctx, const rw_node *n, const rw_eval_series *ls,
                            const rw_eval_series *rs, rw_label **out)
{
    const rw_vector_matching *m = n->u.bin.matching;
    rw_arena *a = ctx->q->a;
    rw_label *l;
    size_t nl;
    if (changes_schema(n->u.bin.op))
        nl = rw_lbl_del(a, ls->labels, ls->nlabels, RW_METRIC_NAME, &l);
    else {
        l = ls->labels;
        nl = ls->nlabels;
    }
    if (m->card == RW_CARD_ONE_TO_ONE)
        nl = rw_lbl_filter(a, l, nl, m->labels, m->nlabels, m->on, 0, &l);
    for (size_t i = 0; i < m->ninclude; i++) {
        const char *v = rw_labels_get(rs->labels, rs->nlabels, m->include[i]);
        nl = rw_lbl_set(a, l, nl, m->include[i], v ? v : "", &l);
    }
    *out = l;
    return nl;
}

static rw_rc vector_vector(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *lhs,
                           rw_eval_value *rhs, rw_eval_value *out)
{
    rw_arena *a = ctx->q->a;
    const rw_vector_matching *m = n->u.bin.matching;
    rw_binop op = n->u.bin.op;
    int rbool = n->u.bin.return_bool;
    int swap = m->card == RW_CARD_ONE_TO_MANY;
    rw_eval_value *L = swap ? rhs : lhs, *R = swap ? lhs : rhs;
    sigtab t = {0};
    matchsig ms;
    long *lo, *ro;
    rw_rc rc;
    if (m->card == RW_CARD_MANY_TO_MANY)
        return rw_eval_fail(ctx, RW_EXEC, "many-to-many only allowed for set operators");
    if (matchsig_init(a, m, &ms) < 0)
        return rw_eval_nomem(ctx);
    if ((rc = ordinals(ctx, &t, &ms, L, &lo)) != RW_OK ||
        (rc = ordinals(ctx, &t, &ms, R, &ro)) != RW_OK)
        return rc;
    long *right = rw_arena_alloc(a, (t.n + 1) * sizeof(long));
    uint8_t *matched = rw_arena_calloc(a, t.n + 1, 1);
    /* per L series: cache of the last pairing */
    long *last_r = rw_arena_alloc(a, (L->nseries + 1) * sizeof(long));
    long *last_o = rw_arena_alloc(a, (L->nseries + 1) * sizeof(long));
    if (!right || !matched || !last_r || !last_o)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < L->nseries; s++)
        last_r[s] = -1;
    /* many-to-one: output series already produced per signature at a step */
    long *grp_first = NULL;
    long *grp_next = NULL;
    if (m->card != RW_CARD_ONE_TO_ONE) {
        grp_first = rw_arena_alloc(a, (t.n + 1) * sizeof(long));
        grp_next = rw_arena_alloc(a, (L->nseries + 1) * sizeof(long));
        if (!grp_first || !grp_next)
            return rw_eval_nomem(ctx);
    }
    long *outidx = rw_arena_alloc(a, (L->nseries + 1) * sizeof(long));
    if (!outidx)
        return rw_eval_nomem(ctx);

    rw_vbuild b;
    rw_vbuild_init(&b, ctx);
    for (size_t i = 0; i < ctx->nsteps; i++) {
        if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
            return rc;
        for (size_t k = 0; k < t.n; k++)
            right[k] = -1;
        memset(matched, 0, t.n);
        for (size_t s = 0; s < R->nseries; s++) {
            if (!R->series[s].ok[i])
                continue;
            long o = ro[s];
            if (right[o] >= 0) {
                char *d1 = rw_lbl_str(a, R->series[s].labels, R->series[s].nlabels);
                char *d2 = rw_lbl_str(a, R->series[right[o]].labels, R->series[right[o]].nlabels);
                if (strcmp(d1, d2) > 0) {
                    char *x = d1;
                    d1 = d2;
                    d2 = x;
                }
                return rw_eval_fail(ctx, RW_EXEC,
                                    "found duplicate series for the match group %s on the %s "
                                    "hand-side of the operation: [%s, %s];many-to-many matching "
                                    "not allowed: matching labels must be unique on one side",
                                    match_group_str(ctx, &R->series[s], m),
                                    swap ? "left" : "right", d1, d2);
            }
            right[o] = (long)s;
        }
        if (grp_first)
            for (size_t k = 0; k < t.n; k++)
                grp_first[k] = -1;
        for (size_t s = 0; s < L->nseries; s++) {
            const rw_eval_series *ls = &L->series[s];
            if (!ls->ok[i])
                continue;
            long o = lo[s];
            long rsi = right[o];
            if (rsi < 0)
                continue;
            const rw_eval_series *rs = &R->series[rsi];
            double fl = ls->v[i], fr = rs->v[i];
            if (swap) {
                double x = fl;
                fl = fr;
                fr = x;
            }
            int keep;
            double v = elem(op, fl, fr, &keep);
            if (rbool) {
                v = keep ? 1 : 0;
            }
            long oi;
            if (last_r[s] == rsi) {
                oi = last_o[s];
            } else {
                rw_label *rl;
                size_t nrl = result_labels(ctx, n, ls, rs, &rl);
                oi = rw_vbuild_series(&b, rl, nrl, rbool);
                if (oi < 0)
                    return rw_eval_nomem(ctx);
                last_r[s] = rsi;
                last_o[s] = oi;
            }
            if (m->card == RW_CARD_ONE_TO_ONE) {
                if (matched[o])
                    return rw_eval_fail(ctx, RW_EXEC,
                                        "multiple matches for labels: many-to-one matching must be "
                                        "explicit (group_left/group_right)");
                matched[o] = 1;
            } else {
                for (long g = grp_first[o]; g >= 0; g = grp_next[g])
                    if (outidx[g] == oi)
                        return rw_eval_fail(ctx, RW_EXEC,
                                            "multiple matches for labels: grouping labels must "
                                            "ensure unique matches");
                outidx[s] = oi;
                grp_next[s] = grp_first[o];
                grp_first[o] = (long)s;
            }
            if (!keep && !rbool)
                continue;
            if ((rc = rw_vbuild_set(&b, oi, i, v)) != RW_OK)
                return rc;
        }
    }
    rw_vbuild_finish(&b, out);
    /* a series created for a filtered pairing may have no value at all */
    rw_eval_drop_empty(ctx, out);
    return RW_OK;
}

rw_rc rw_eval_binary(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_eval_value l, r;
    rw_rc rc;
    if ((rc = rw_eval(ctx, n->u.bin.lhs, &l)) != RW_OK)
        return rc;
    if ((rc = rw_eval(ctx, n->u.bin.rhs, &r)) != RW_OK)
        return rc;
    if (l.type == RW_VAL_SCALAR && r.type == RW_VAL_SCALAR)
        return scalar_scalar(ctx, n, l.scalar, r.scalar, out);
    if (l.type == RW_VAL_VECTOR && r.type == RW_VAL_SCALAR)
        return vector_scalar(ctx, n, &l, r.scalar, 0, out);
    if (l.type == RW_VAL_SCALAR && r.type == RW_VAL_VECTOR)
        return vector_scalar(ctx, n, &r, l.scalar, 1, out);
    if (l.type == RW_VAL_VECTOR && r.type == RW_VAL_VECTOR) {
        if (rw_binop_is_set(n->u.bin.op))
            return set_op(ctx, n, &l, &r, out);
        if (!n->u.bin.matching)
            return rw_eval_fail(ctx, RW_INTERNAL, "binary operation without vector matching");
        return vector_vector(ctx, n, &l, &r, out);
    }
    return rw_eval_fail(ctx, RW_EXEC, "binary operator %s not defined between %s and %s",
                        rw_binop_str(n->u.bin.op), rw_val_type_name(l.type),
                        rw_val_type_name(r.type));
}
