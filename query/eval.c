/* eval.c - the heart of the PromQL evaluator: dispatches AST nodes to their
 * evaluators (selectors in eval_select.c, operators in eval_binop.c,
 * aggregations in eval_agg.c, functions through the table of func.c) and
 * holds the helpers they share: deadline and sample accounting, annotations,
 * the output builder that collects series by label set, label-set editing and
 * Go-compatible number formatting. See eval_int.h for the value model. */
#define _GNU_SOURCE
#include "eval_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors, deadline, limits ---- */

rw_rc rw_eval_fail(rw_eval_ctx *ctx, rw_rc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rw_err_setv(ctx->q->err, code, fmt, ap);
    va_end(ap);
    return code;
}

rw_rc rw_eval_nomem(rw_eval_ctx *ctx)
{
    return rw_err_set(ctx->q->err, RW_NOMEM, "out of memory evaluating the query");
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

rw_rc rw_eval_check(rw_eval_ctx *ctx, const char *where)
{
    rw_eval_query *q = ctx->q;
    if (!q->deadline_ns)
        return RW_OK;
    /* a vDSO clock read costs tens of nanoseconds; callers check per node,
     * per series or every few hundred steps, never per sample */
    if (now_ns() > q->deadline_ns)
        return rw_err_set(q->err, RW_TIMEOUT, "query timed out in %s", where);
    return RW_OK;
}

rw_rc rw_eval_account(rw_eval_ctx *ctx, size_t n)
{
    rw_eval_query *q = ctx->q;
    q->samples += n;
    if (q->opts->max_samples && q->samples > q->opts->max_samples)
        return rw_err_set(q->err, RW_EXEC,
                          "query processing would load too many samples into memory in query "
                          "execution");
    return RW_OK;
}

int64_t rw_eval_at_time(const rw_eval_ctx *ctx, rw_at_kind at, int64_t at_ms, size_t i)
{
    switch (at) {
    case RW_AT_TIME: return at_ms;
    case RW_AT_START: return ctx->q->start;
    case RW_AT_END: return ctx->q->end;
    default: return ctx->ts[i];
    }
}

const rw_node *rw_node_unparen(const rw_node *n)
{
    while (n && (n->kind == RW_N_PAREN || n->kind == RW_N_STEP_INVARIANT))
        n = n->u.unary.expr;
    return n;
}

/* ---- annotations ---- */

/* Prometheus deduplicates annotations by their text without position and
 * keeps the last one added. */
static void annos_add(rw_eval_ctx *ctx, int info, int pos, const char *fmt, va_list ap)
{
    rw_eval_query *q = ctx->q;
    char base[1024], full[1100];
    vsnprintf(base, sizeof base, fmt, ap);
    if (pos >= 0 && q->text) {
        int line = 1, last_nl = -1;
        int len = (int)strlen(q->text);
        if (pos > len)
            pos = len;
        for (int i = 0; i < pos; i++)
            if (q->text[i] == '\n') {
                line++;
                last_nl = i;
            }
        snprintf(full, sizeof full, "%s (%d:%d)", base, line, pos - last_nl);
    } else {
        snprintf(full, sizeof full, "%s", base);
    }
    char ***arr = info ? &q->annos.info : &q->annos.warn;
    size_t *n = info ? &q->annos.ninfo : &q->annos.nwarn;
    size_t *cap = info ? &q->annos.capinfo : &q->annos.capwarn;
    size_t blen = strlen(base);
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*arr)[i], base, blen) == 0 &&
            ((*arr)[i][blen] == '\0' || (*arr)[i][blen] == ' ')) {
            if ((*arr)[i][blen] == '\0' || strncmp((*arr)[i] + blen, " (", 2) == 0) {
                char *d = rw_arena_strdup(q->a, full);
                if (d)
                    (*arr)[i] = d;
                return;
            }
        }
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **na = rw_arena_realloc(q->a, *arr, *cap * sizeof(char *), nc * sizeof(char *));
        if (!na)
            return;
        *arr = na;
        *cap = nc;
    }
    char *d = rw_arena_strdup(q->a, full);
    if (d)
        (*arr)[(*n)++] = d;
}

void rw_eval_warn(rw_eval_ctx *ctx, int pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    annos_add(ctx, 0, pos, fmt, ap);
    va_end(ap);
}

void rw_eval_info(rw_eval_ctx *ctx, int pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    annos_add(ctx, 1, pos, fmt, ap);
    va_end(ap);
}

/* ---- series and the output builder ---- */

rw_eval_series *rw_series_new(rw_eval_ctx *ctx, rw_eval_series *s, const rw_label *l, size_t n,
                              int drop_name)
{
    rw_arena *a = ctx->q->a;
    s->labels = (rw_label *)l;
    s->nlabels = n;
    s->drop_name = drop_name;
    s->t = NULL;
    s->v = rw_arena_alloc(a, ctx->nsteps * sizeof(double));
    s->ok = rw_arena_calloc(a, ctx->nsteps, 1);
    if (!s->v || !s->ok)
        return NULL;
    return s;
}

void rw_vbuild_init(rw_vbuild *b, rw_eval_ctx *ctx)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
}

static int vb_grow_hash(rw_vbuild *b)
{
    rw_arena *a = b->ctx->q->a;
    size_t nc = b->hcap ? b->hcap * 2 : 64;
    uint64_t *hk = rw_arena_alloc(a, nc * sizeof(uint64_t));
    uint32_t *hv = rw_arena_calloc(a, nc, sizeof(uint32_t));
    if (!hk || !hv)
        return -1;
    for (size_t i = 0; i < b->hcap; i++) {
        if (!b->hv[i])
            continue;
        size_t j = b->hk[i] & (nc - 1);
        while (hv[j])
            j = (j + 1) & (nc - 1);
        hk[j] = b->hk[i];
        hv[j] = b->hv[i];
    }
    b->hk = hk;
    b->hv = hv;
    b->hcap = nc;
    return 0;
}

long rw_vbuild_series(rw_vbuild *b, const rw_label *l, size_t n, int drop_name)
{
    uint64_t h = rw_labels_hash(l, n);
    if ((b->n + 1) * 2 > b->hcap && vb_grow_hash(b) < 0)
        return -1;
    size_t j = h & (b->hcap - 1);
    while (b->hv[j]) {
        if (b->hk[j] == h) {
            rw_eval_series *s = &b->s[b->hv[j] - 1];
            if (rw_labels_equal(s->labels, s->nlabels, l, n)) {
                if (drop_name)
                    s->drop_name = 1;
                return (long)(b->hv[j] - 1);
            }
        }
        j = (j + 1) & (b->hcap - 1);
    }
    rw_arena *a = b->ctx->q->a;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        rw_eval_series *ns =
            rw_arena_realloc(a, b->s, b->cap * sizeof *b->s, nc * sizeof *b->s);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = nc;
    }
    rw_label *cl = rw_lbl_copy(a, l, n);
    if (!cl && n)
        return -1;
    if (!rw_series_new(b->ctx, &b->s[b->n], cl, n, drop_name))
        return -1;
    b->hk[j] = h;
    b->hv[j] = (uint32_t)(b->n + 1);
    return (long)b->n++;
}

rw_rc rw_vbuild_set(rw_vbuild *b, long idx, size_t step, double v)
{
    rw_eval_series *s = &b->s[idx];
    if (s->ok[step])
        return rw_eval_fail(b->ctx, RW_EXEC, "vector cannot contain metrics with the same labelset");
    s->ok[step] = 1;
    s->v[step] = v;
    return RW_OK;
}

void rw_vbuild_finish(rw_vbuild *b, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_VECTOR;
    out->series = b->s;
    out->nseries = b->n;
}

rw_rc rw_eval_merge_same_labels(rw_eval_ctx *ctx, rw_eval_value *v)
{
    rw_vbuild b;
    rw_vbuild_init(&b, ctx);
    rw_rc rc;
    for (size_t i = 0; i < v->nseries; i++) {
        rw_eval_series *s = &v->series[i];
        size_t before = b.n;
        long idx = rw_vbuild_series(&b, s->labels, s->nlabels, 0);
        if (idx < 0)
            return rw_eval_nomem(ctx);
        /* a merged series keeps the drop flag of its first part */
        if (b.n > before)
            b.s[idx].drop_name = s->drop_name;
        for (size_t k = 0; k < ctx->nsteps; k++)
            if (s->ok[k] && (rc = rw_vbuild_set(&b, idx, k, s->v[k])) != RW_OK)
                return rc;
    }
    rw_vbuild_finish(&b, v);
    return RW_OK;
}

void rw_eval_drop_empty(const rw_eval_ctx *ctx, rw_eval_value *v)
{
    size_t k = 0;
    for (size_t s = 0; s < v->nseries; s++) {
        int any = 0;
        for (size_t i = 0; i < ctx->nsteps && !any; i++)
            any = v->series[s].ok[i];
        if (any)
            v->series[k++] = v->series[s];
    }
    v->nseries = k;
}

rw_rc rw_eval_scalar_new(rw_eval_ctx *ctx, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_SCALAR;
    out->scalar = rw_arena_alloc(ctx->q->a, ctx->nsteps * sizeof(double));
    return out->scalar ? RW_OK : rw_eval_nomem(ctx);
}

rw_rc rw_eval_scalar_const(rw_eval_ctx *ctx, double v, rw_eval_value *out)
{
    rw_rc rc = rw_eval_scalar_new(ctx, out);
    if (rc != RW_OK)
        return rc;
    for (size_t i = 0; i < ctx->nsteps; i++)
        out->scalar[i] = v;
    return RW_OK;
}

/* ---- label sets ---- */

rw_label *rw_lbl_copy(rw_arena *a, const rw_label *l, size_t n)
{
    if (!n)
        return NULL;
    rw_label *c = rw_arena_alloc(a, n * sizeof *c);
    if (c)
        memcpy(c, l, n * sizeof *c);
    return c;
}

static int in_list(const char *name, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

size_t rw_lbl_filter(rw_arena *a, const rw_label *l, size_t n, char *const *names,
                     size_t nnames, int keep, int drop_metric_name, rw_label **out)
{
    rw_label *c = rw_arena_alloc(a, (n ? n : 1) * sizeof *c);
    size_t m = 0;
    if (!c) {
        *out = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (drop_metric_name && strcmp(l[i].name, RW_METRIC_NAME) == 0)
            continue;
        if (in_list(l[i].name, names, nnames) != keep)
            continue;
        c[m++] = l[i];
    }
    *out = c;
    return m;
}

size_t rw_lbl_set(rw_arena *a, const rw_label *l, size_t n, const char *name, const char *value,
                  rw_label **out)
{
    rw_label *c = rw_arena_alloc(a, (n + 1) * sizeof *c);
    size_t m = 0, i = 0;
    int done = 0;
    if (!c) {
        *out = NULL;
        return 0;
    }
    for (; i < n; i++) {
        int cmp = strcmp(l[i].name, name);
        if (!done && cmp >= 0) {
            if (value[0]) {
                c[m].name = cmp == 0 ? l[i].name : rw_arena_strdup(a, name);
                c[m].value = value;
                m++;
            }
            done = 1;
            if (cmp == 0)
                continue;
        }
        c[m++] = l[i];
    }
    if (!done && value[0]) {
        c[m].name = rw_arena_strdup(a, name);
        c[m].value = value;
        m++;
    }
    *out = c;
    return m;
}

size_t rw_lbl_del(rw_arena *a, const rw_label *l, size_t n, const char *name, rw_label **out)
{
    return rw_lbl_set(a, l, n, name, "", out);
}

char *rw_lbl_str(rw_arena *a, const rw_label *l, size_t n)
{
    size_t need = 3;
    for (size_t i = 0; i < n; i++)
        need += strlen(l[i].name) + 2 * strlen(l[i].value) + 6;
    char *s = rw_arena_alloc(a, need);
    if (!s)
        return (char *)"{}";
    size_t p = 0;
    s[p++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            p += (size_t)sprintf(s + p, ", ");
        p += (size_t)sprintf(s + p, "%s=\"", l[i].name);
        for (const char *v = l[i].value; *v; v++) {
            if (*v == '"' || *v == '\\')
                s[p++] = '\\';
            if (*v == '\n') {
                s[p++] = '\\';
                s[p++] = 'n';
                continue;
            }
            s[p++] = *v;
        }
        s[p++] = '"';
    }
    s[p++] = '}';
    s[p] = '\0';
    return s;
}

/* ---- Go number formatting ---- */

/* Shortest digits that round-trip: returns the number of significant digits
 * and the decimal exponent (of the first digit), digits in dig. */
static int shortest_digits(double f, char *dig, int *exp10)
{
    char tmp[40];
    for (int p = 0; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p, f);
        if (strtod(tmp, NULL) == f || p == 16) {
            /* tmp: [-]d.ddde[+-]xx */
            const char *s = tmp;
            if (*s == '-')
                s++;
            int nd = 0;
            for (; *s && *s != 'e'; s++)
                if (*s != '.')
                    dig[nd++] = *s;
            dig[nd] = '\0';
            *exp10 = atoi(s + 1);
            while (nd > 1 && dig[nd - 1] == '0')
                dig[--nd] = '\0';
            return nd;
        }
    }
    return 0;
}

/* Go strconv.FormatFloat(f, fmt, -1, 64) for fmt 'g' or 'f'. */
static void fmt_go(char *buf, size_t cap, double f, char fmt)
{
    if (isnan(f)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, cap, signbit(f) ? "-0" : "0");
        return;
    }
    char dig[40];
    int e;
    int nd = shortest_digits(f, dig, &e);
    if (fmt == 'g' && (e < -4 || e >= 6)) { /* Go: shortest precision decides with 6 */
        snprintf(buf, cap, "%.*e", nd - 1, f);
        return;
    }
    int prec = nd - 1 - e;
    snprintf(buf, cap, "%.*f", prec > 0 ? prec : 0, f);
}

void rw_fmt_go_g(char *buf, size_t cap, double f)
{
    fmt_go(buf, cap, f, 'g');
}

void rw_fmt_go_f(char *buf, size_t cap, double f)
{
    fmt_go(buf, cap, f, 'f');
}

char *rw_go_quote(rw_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *o = rw_arena_alloc(a, n * 4 + 3);
    if (!o)
        return (char *)s;
    size_t p = 0;
    o[p++] = '"';
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c >= 0x80) {
            /* valid UTF-8 sequence? copy it, else \xNN */
            size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
            if (len && i + len <= n && rw_utf8_valid(s + i, len)) {
                memcpy(o + p, s + i, len);
                p += len;
                i += len;
                continue;
            }
            p += (size_t)sprintf(o + p, "\\x%02x", c);
            i++;
            continue;
        }
        switch (c) {
        case '"': o[p++] = '\\'; o[p++] = '"'; break;
        case '\\': o[p++] = '\\'; o[p++] = '\\'; break;
        case '\n': o[p++] = '\\'; o[p++] = 'n'; break;
        case '\t': o[p++] = '\\'; o[p++] = 't'; break;
        case '\r': o[p++] = '\\'; o[p++] = 'r'; break;
        default:
            if (c < 0x20 || c == 0x7f)
                p += (size_t)sprintf(o + p, "\\x%02x", c);
            else
                o[p++] = (char)c;
        }
        i++;
    }
    o[p++] = '"';
    o[p] = '\0';
    return o;
}

/* ---- quantile ---- */

static int cmp_nan_first(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return x < y ? -1 : x > y ? 1 : 0;
}

double rw_quantile(double q, double *vals, size_t n)
{
    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(vals, n, sizeof *vals, cmp_nan_first);
    double rank = q * (double)(n - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin((double)(n - 1), lower + 1);
    double weight = rank - floor(rank);
    return vals[(size_t)lower] * (1 - weight) + vals[(size_t)upper] * weight;
}

/* ---- dispatch ---- */

static rw_rc eval_number(rw_eval_ctx *ctx, double v, rw_eval_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = RW_VAL_SCALAR;
    out->scalar = rw_arena_alloc(ctx->q->a, ctx->nsteps * sizeof(double));
    if (!out->scalar)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ctx->nsteps; i++)
        out->scalar[i] = v;
    return RW_OK;
}

static rw_rc eval_unary(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_rc rc = rw_eval(ctx, n->u.unary.expr, out);
    if (rc != RW_OK)
        return rc;
    if (out->type == RW_VAL_SCALAR) {
        for (size_t i = 0; i < ctx->nsteps; i++)
            out->scalar[i] = -out->scalar[i];
    } else if (out->type == RW_VAL_VECTOR) {
        /* the values may be shared with the operand's producer: copy */
        rw_eval_series *ns = rw_arena_alloc(ctx->q->a, (out->nseries ? out->nseries : 1) * sizeof *ns);
        if (!ns)
            return rw_eval_nomem(ctx);
        for (size_t s = 0; s < out->nseries; s++) {
            rw_eval_series *src = &out->series[s];
            if (!rw_series_new(ctx, &ns[s], src->labels, src->nlabels, 1))
                return rw_eval_nomem(ctx);
            memcpy(ns[s].ok, src->ok, ctx->nsteps);
            for (size_t i = 0; i < ctx->nsteps; i++)
                ns[s].v[i] = -src->v[i];
        }
        out->series = ns;
    } else {
        return rw_eval_fail(ctx, RW_EXEC, "unary minus on a %s is not supported",
                            rw_val_type_name(out->type));
    }
    return RW_OK;
}

static rw_rc eval_call(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    const rw_func *fn = n->u.call.fn;
    if (!fn || !fn->impl)
        return rw_eval_fail(ctx, RW_EXEC, "function %s is not implemented",
                            fn ? fn->name : "(null)");
    memset(out, 0, sizeof *out);
    return (rw_rc)fn->impl(ctx, n, out);
}

rw_rc rw_eval(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_rc rc;
    if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
        return rc;
    switch (n->kind) {
    case RW_N_NUMBER:
        return eval_number(ctx, n->u.number, out);
    case RW_N_STRING:
        memset(out, 0, sizeof *out);
        out->type = RW_VAL_STRING;
        out->str = n->u.string;
        return RW_OK;
    case RW_N_VECTOR_SEL:
        return rw_eval_vector_selector(ctx, n, 0, out);
    case RW_N_MATRIX_SEL:
        return rw_eval_matrix_selector(ctx, n, out);
    case RW_N_SUBQUERY:
        return rw_eval_subquery(ctx, n, out);
    case RW_N_CALL:
        return eval_call(ctx, n, out);
    case RW_N_AGG:
        return rw_eval_aggregate(ctx, n, out);
    case RW_N_BINARY:
        return rw_eval_binary(ctx, n, out);
    case RW_N_UNARY:
        return eval_unary(ctx, n, out);
    case RW_N_PAREN:
    case RW_N_STEP_INVARIANT:
        return rw_eval(ctx, n->u.unary.expr, out);
    }
    return rw_eval_fail(ctx, RW_INTERNAL, "unknown node kind %d", (int)n->kind);
}

int rw_eval_streams(const rw_eval_ctx *ctx, const rw_node *n)
{
    n = rw_node_unparen(n);
    if (ctx->nsteps < 2)
        return 0;
    return n->kind == RW_N_VECTOR_SEL || (n->kind == RW_N_CALL && rw_range_fn_streams(n));
}

rw_rc rw_eval_stream(rw_eval_ctx *ctx, const rw_node *n, rw_series_sink *sk)
{
    rw_rc rc;
    if ((rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
        return rc;
    n = rw_node_unparen(n);
    if (n->kind == RW_N_VECTOR_SEL)
        return rw_eval_vector_selector_to(ctx, n, sk);
    return rw_range_fn_to(ctx, n, sk);
}

rw_rc rw_eval_scalar(rw_eval_ctx *ctx, const rw_node *n, double **vals)
{
    rw_eval_value v;
    rw_rc rc = rw_eval(ctx, n, &v);
    if (rc != RW_OK)
        return rc;
    if (v.type != RW_VAL_SCALAR)
        return rw_eval_fail(ctx, RW_EXEC, "expected a scalar, got %s", rw_val_type_name(v.type));
    *vals = v.scalar;
    return RW_OK;
}
