/* func_label.c - PromQL functions that work on series identity rather than
 * values: label_replace (anchored RE2-style regex through core/regex.h,
 * Go-style $1 / ${name} expansion), label_join, absent, and the ordering
 * functions sort, sort_desc, sort_by_label(_desc) (natural order as
 * Prometheus). Ordering only matters for instant queries: a range query's
 * result is always sorted by labels, so there the sort functions only warn.
 *
 * A label value these functions build is capped at the ingest value limit
 * (rw_engine_opts.max_label_value_bytes): nested label_replace calls that
 * double a value each time would otherwise reach gigabytes from a query of
 * a few hundred bytes. Subjects with invalid UTF-8 (a "\xff" escape in a
 * query string) are an error from core/regex.h, never undefined behaviour
 * inside PCRE2. */
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/regex.h"
#include "func_impl.h"

static const char *str_arg(const rw_node *n)
{
    n = rw_node_unparen(n);
    return n->kind == RW_N_STRING ? n->u.string : "";
}

static int valid_label_name(const char *s)
{
    return s[0] && rw_utf8_valid(s, strlen(s));
}

/* ---- label_replace ---- */

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c >= 0x80;
}

/* An output string in the arena, at most max bytes. */
typedef struct outbuf {
    rw_arena *a;
    char *p;
    size_t len, cap, max;
    int over; /* past max */
} outbuf;

static int put(outbuf *o, const char *s, size_t n)
{
    if (o->len + n > o->max) {
        o->over = 1;
        return -1;
    }
    if (o->len + n + 1 > o->cap) {
        size_t nc = (o->len + n + 1) * 2;
        char *np = rw_arena_realloc(o->a, o->p, o->cap, nc);
        if (!np)
            return -1;
        o->p = np;
        o->cap = nc;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
    return 0;
}

/* Go regexp.Expand semantics for the replacement template; NULL when out
 * of memory or past o->max (o->over). */
static char *expand(outbuf *o, const rw_regex *re, const rw_regex_md *md, const char *tmpl,
                    const char *src)
{
    if (put(o, "", 0) < 0)
        return NULL;
    const char *p = tmpl;
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d)
            break;
        if (put(o, p, (size_t)(d - p)) < 0)
            return NULL;
        p = d + 1;
        if (*p == '$') {
            if (put(o, "$", 1) < 0)
                return NULL;
            p++;
            continue;
        }
        const char *q = p;
        int brace = 0;
        if (*q == '{') {
            brace = 1;
            q++;
        }
        const char *ns = q;
        while (*q && name_char((unsigned char)*q))
            q++;
        size_t nl = (size_t)(q - ns);
        if (nl == 0 || (brace && *q != '}')) {
            if (put(o, "$", 1) < 0)
                return NULL;
            continue;
        }
        p = q + brace;
        long num = 0;
        for (size_t i = 0; i < nl; i++) {
            if (ns[i] < '0' || ns[i] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (ns[i] - '0');
        }
        if (ns[0] == '0' && nl > 1)
            num = -1;
        if (num < 0)
            num = rw_regex_group_number(re, ns, nl);
        size_t gs, ge;
        if (num >= 0 && rw_regex_group(md, (int)num, &gs, &ge) && put(o, src + gs, ge - gs) < 0)
            return NULL;
    }
    if (put(o, p, strlen(p)) < 0)
        return NULL;
    return o->p;
}

static rw_rc value_too_long(rw_eval_ctx *ctx, const char *fn, const char *dst)
{
    return rw_eval_fail(ctx, RW_EXEC,
                        "%s(): the value of label \"%.64s\" would be longer than %zu bytes, the "
                        "limit on label values",
                        fn, dst, ctx->q->opts->max_label_value_bytes);
}

/* Sets the destination label of label_replace / label_join on one result
 * series (a new label array: the old one may be shared with the argument).
 * Writing __name__ gives the series its name back. */
static void set_dst(rw_arena *a, rw_eval_series *se, const char *dst, const char *value)
{
    rw_label *l;
    se->nlabels = rw_lbl_set(a, se->labels, se->nlabels, dst, value, &l);
    se->labels = l;
    if (!strcmp(dst, RW_METRIC_NAME))
        se->drop_name = 0;
}

RW_FN(rw_fn_label_replace)
{
    rw_arena *a = ctx->q->a;
    const char *dst = str_arg(call->u.call.args[1]);
    const char *repl = str_arg(call->u.call.args[2]);
    const char *src = str_arg(call->u.call.args[3]);
    const char *regex = str_arg(call->u.call.args[4]);
    rw_err rerr;
    rw_err_init(&rerr);
    rw_regex *re = rw_regex_compile(regex, &rerr);
    if (!re)
        return rerr.code == RW_NOMEM
                   ? rw_eval_nomem(ctx)
                   : rw_eval_fail(ctx, RW_EXEC, "invalid regular expression in label_replace(): %s",
                                  regex);
    rw_rc rc = RW_OK;
    rw_regex_md *md = rw_regex_md_new(rw_regex_ngroups(re));
    if (!md) {
        rw_regex_free(re);
        return rw_eval_nomem(ctx);
    }
    if (!valid_label_name(dst)) {
        rc = rw_eval_fail(ctx, RW_EXEC, "invalid destination label name in label_replace(): %s", dst);
        goto out;
    }
    if ((rc = rw_eval(ctx, call->u.call.args[0], out)) != RW_OK)
        goto out;
    for (size_t s = 0; s < out->nseries; s++) {
        rw_eval_series *se = &out->series[s];
        const char *sv = rw_labels_get(se->labels, se->nlabels, src);
        if (!sv)
            sv = "";
        size_t svl = strlen(sv);
        /* checked here, not left to the regex: its fast paths (".*",
           literals) do not look at the bytes */
        if (!rw_utf8_valid(sv, svl)) {
            rc = rw_eval_fail(ctx, RW_EXEC, "label_replace(): the value of label %s is not valid "
                              "UTF-8", src);
            goto out;
        }
        int m = rw_regex_match(re, md, sv, svl, &rerr);
        if (m < 0) {
            rc = rw_eval_fail(ctx, RW_EXEC, "label_replace(): %s", rerr.msg);
            goto out;
        }
        if (m == 0)
            continue;
        outbuf o = {.a = a, .max = ctx->q->opts->max_label_value_bytes};
        char *res = expand(&o, re, md, repl, sv);
        if (!res) {
            rc = o.over ? value_too_long(ctx, "label_replace", dst) : rw_eval_nomem(ctx);
            goto out;
        }
        set_dst(a, se, dst, res);
    }
    rc = rw_eval_merge_same_labels(ctx, out);
out:
    rw_regex_md_free(md);
    rw_regex_free(re);
    return rc;
}

RW_FN(rw_fn_label_join)
{
    rw_arena *a = ctx->q->a;
    const char *dst = str_arg(call->u.call.args[1]);
    const char *sep = str_arg(call->u.call.args[2]);
    size_t nsrc = call->u.call.nargs - 3;
    for (size_t i = 0; i < nsrc; i++) {
        const char *srcn = str_arg(call->u.call.args[3 + i]);
        if (!valid_label_name(srcn))
            return rw_eval_fail(ctx, RW_EXEC, "invalid source label name in label_join(): %s", srcn);
    }
    if (!valid_label_name(dst))
        return rw_eval_fail(ctx, RW_EXEC, "invalid destination label name in label_join(): %s", dst);
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], out);
    if (rc != RW_OK)
        return rc;
    size_t seplen = strlen(sep);
    for (size_t s = 0; s < out->nseries; s++) {
        rw_eval_series *se = &out->series[s];
        size_t total = 1;
        for (size_t i = 0; i < nsrc; i++) {
            const char *v = rw_labels_get(se->labels, se->nlabels, str_arg(call->u.call.args[3 + i]));
            total += (v ? strlen(v) : 0) + seplen;
        }
        if (total - 1 > ctx->q->opts->max_label_value_bytes + seplen)
            return value_too_long(ctx, "label_join", dst);
        char *res = rw_arena_alloc(a, total);
        if (!res)
            return rw_eval_nomem(ctx);
        size_t p = 0;
        for (size_t i = 0; i < nsrc; i++) {
            const char *v = rw_labels_get(se->labels, se->nlabels, str_arg(call->u.call.args[3 + i]));
            if (i) {
                memcpy(res + p, sep, seplen);
                p += seplen;
            }
            if (v) {
                memcpy(res + p, v, strlen(v));
                p += strlen(v);
            }
        }
        res[p] = '\0';
        set_dst(a, se, dst, res);
    }
    return rw_eval_merge_same_labels(ctx, out);
}

/* ---- absent ---- */

RW_FN(rw_fn_absent)
{
    rw_eval_value in;
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], &in);
    if (rc != RW_OK)
        return rc;
    uint8_t *present = rw_arena_calloc(ctx->q->a, ctx->nsteps, 1);
    if (!present)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < in.nseries; s++)
        for (size_t i = 0; i < ctx->nsteps; i++)
            present[i] |= in.series[s].ok[i];
    return rw_absent_vector(ctx, call->u.call.args[0], present, 0, out);
}

/* ---- sorting ---- */

/* facette/natsort (the version Prometheus uses): strings are split into runs
 * of digits and non-digits; digit runs compare as integers when both parse,
 * other runs as strings. Returns -1 when a sorts first, else 1; only called
 * for a != b. */
static size_t chunk(const char *s, size_t i, size_t *end, int *digit)
{
    int d = s[i] >= '0' && s[i] <= '9';
    size_t j = i;
    while (s[j] && ((s[j] >= '0' && s[j] <= '9') == d))
        j++;
    *end = j;
    *digit = d;
    return j - i;
}

static int parse_int(const char *s, size_t n, long long *v)
{
    if (n == 0 || n > 18)
        return 0;
    long long x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (s[i] - '0');
    *v = x;
    return 1;
}

int rw_natural_cmp(const char *a, const char *b)
{
    size_t ia = 0, ib = 0;
    while (a[ia]) {
        if (!b[ib])
            return 1;
        size_t ea, eb;
        int da, db;
        size_t la = chunk(a, ia, &ea, &da), lb = chunk(b, ib, &eb, &db);
        int last_a = a[ea] == '\0', last_b = b[eb] == '\0';
        long long va, vb;
        if (da && db && parse_int(a + ia, la, &va) && parse_int(b + ib, lb, &vb)) {
            if (va == vb) {
                if (last_a)
                    return -1;
                if (last_b)
                    return 1;
                ia = ea;
                ib = eb;
                continue;
            }
            return va < vb ? -1 : 1;
        }
        if (la == lb && memcmp(a + ia, b + ib, la) == 0) {
            if (last_a)
                return -1;
            if (last_b)
                return 1;
            ia = ea;
            ib = eb;
            continue;
        }
        size_t n = la < lb ? la : lb;
        int c = memcmp(a + ia, b + ib, n);
        if (c == 0)
            c = la < lb ? -1 : 1;
        return c < 0 ? -1 : 1;
    }
    return 1;
}

static void sort_warn(rw_eval_ctx *ctx, const rw_node *call)
{
    rw_eval_warn(ctx, call->pos,
                 "PromQL warning: sort is ineffective for range queries since results are always "
                 "ordered by labels");
}

/* Merge sort (stable) of series with a comparator and context. */
typedef int (*series_cmp)(const rw_eval_series *a, const rw_eval_series *b, const void *arg);

static void msort(rw_eval_series *v, rw_eval_series *tmp, size_t n, series_cmp cmp, const void *arg)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    msort(v, tmp, h, cmp, arg);
    msort(v + h, tmp, n - h, cmp, arg);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp(&v[j], &v[i], arg) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int by_value(const rw_eval_series *a, const rw_eval_series *b, const void *arg)
{
    int desc = *(const int *)arg;
    double x = a->v[0], y = b->v[0];
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    if (x == y)
        return 0;
    return desc ? (x > y ? -1 : 1) : (x < y ? -1 : 1);
}

RW_FN(rw_fn_sort)
{
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], out);
    if (rc != RW_OK)
        return rc;
    if (ctx->nsteps > 1 || ctx->ts[0] != ctx->ts[ctx->nsteps - 1]) {
        sort_warn(ctx, call);
        return RW_OK;
    }
    int desc = call->u.call.fn->op == RW_SORT_DESC;
    rw_eval_series *tmp = rw_arena_alloc(ctx->q->a, (out->nseries + 1) * sizeof *tmp);
    rw_eval_series *copy = rw_arena_alloc(ctx->q->a, (out->nseries + 1) * sizeof *copy);
    if (!tmp || !copy)
        return rw_eval_nomem(ctx);
    memcpy(copy, out->series, out->nseries * sizeof *copy);
    out->series = copy;
    msort(out->series, tmp, out->nseries, by_value, &desc);
    return RW_OK;
}

typedef struct label_sort {
    const char **names;
    size_t n;
    int desc;
} label_sort;

static int by_labels(const rw_eval_series *a, const rw_eval_series *b, const void *arg)
{
    const label_sort *ls = arg;
    for (size_t i = 0; i < ls->n; i++) {
        const char *x = rw_labels_get(a->labels, a->nlabels, ls->names[i]);
        const char *y = rw_labels_get(b->labels, b->nlabels, ls->names[i]);
        if (!x)
            x = "";
        if (!y)
            y = "";
        if (!strcmp(x, y))
            continue;
        int c = rw_natural_cmp(x, y);
        return ls->desc ? -c : c;
    }
    int c = rw_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
    return ls->desc ? -c : c;
}

RW_FN(rw_fn_sort_by_label)
{
    rw_rc rc = rw_eval(ctx, call->u.call.args[0], out);
    if (rc != RW_OK)
        return rc;
    if (ctx->nsteps > 1) {
        sort_warn(ctx, call);
        return RW_OK;
    }
    label_sort ls = {.n = call->u.call.nargs - 1,
                     .desc = call->u.call.fn->op == RW_SORT_DESC};
    ls.names = rw_arena_alloc(ctx->q->a, (ls.n + 1) * sizeof(char *));
    rw_eval_series *tmp = rw_arena_alloc(ctx->q->a, (out->nseries + 1) * sizeof *tmp);
    rw_eval_series *copy = rw_arena_alloc(ctx->q->a, (out->nseries + 1) * sizeof *copy);
    if (!ls.names || !tmp || !copy)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < ls.n; i++)
        ls.names[i] = str_arg(call->u.call.args[1 + i]);
    memcpy(copy, out->series, out->nseries * sizeof *copy);
    out->series = copy;
    msort(out->series, tmp, out->nseries, by_labels, &ls);
    return RW_OK;
}
