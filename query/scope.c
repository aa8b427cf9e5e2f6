/* scope.c - reads scoped to tenants: a querier that wraps another and adds
 * one matcher (tenant_label =~ "a|b", or = "a") to every selection and every
 * label name/value lookup, so a credential sees only its tenants' series in
 * every read path (the PromQL engine, /api/v1/series, labels, /federate,
 * remote-read) without any of them knowing. It sits between the read API and
 * the store's querier; the request's deadline passes through (with_deadline
 * wraps what the inner querier returns). Samples by ref need no scope: refs
 * come from a scoped selection. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct scoped {
    rw_querier inner;
    const rw_matcher *scope;
} scoped;

/* ms + the scope matcher, shallow copies in the arena (the compiled
 * matchers are only read, by this thread). */
static const rw_matcher *with_scope(const scoped *sc, const rw_matcher *ms, size_t nms,
                                    rw_arena *a, size_t *n)
{
    rw_matcher *all = rw_arena_alloc(a, (nms + 1) * sizeof *all);
    if (!all)
        return NULL;
    if (nms)
        memcpy(all, ms, nms * sizeof *all);
    all[nms] = *sc->scope;
    *n = nms + 1;
    return all;
}

static rw_rc s_select(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err)
{
    scoped *sc = ctx;
    size_t n;
    const rw_matcher *all = with_scope(sc, ms, nms, a, &n);
    if (!all)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    return sc->inner.ops->select(sc->inner.ctx, all, n, mint, maxt, flags, max_samples, a, out,
                                 nout, err);
}

static rw_rc s_read_samples(void *ctx, rw_series_data *series, size_t n, int64_t mint,
                            int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                            size_t *decoded, rw_err *err)
{
    scoped *sc = ctx;
    return sc->inner.ops->read_samples(sc->inner.ctx, series, n, mint, maxt, flags, max_samples, a,
                                       decoded, err);
}

static rw_rc s_label_names(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err)
{
    scoped *sc = ctx;
    size_t n;
    const rw_matcher *all = with_scope(sc, ms, nms, a, &n);
    if (!all)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    return sc->inner.ops->label_names(sc->inner.ctx, all, n, mint, maxt, a, out, nout, err);
}

static rw_rc s_label_values(void *ctx, const char *name, const rw_matcher *ms, size_t nms,
                            int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                            rw_err *err)
{
    scoped *sc = ctx;
    size_t n;
    const rw_matcher *all = with_scope(sc, ms, nms, a, &n);
    if (!all)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    return sc->inner.ops->label_values(sc->inner.ctx, name, all, n, mint, maxt, a, out, nout,
                                       err);
}

static int s_with_deadline(void *ctx, int64_t deadline_ns, rw_arena *a, rw_querier *out)
{
    scoped *sc = ctx;
    rw_querier inner = rw_querier_with_deadline(&sc->inner, deadline_ns, a);
    *out = rw_query_scoped(&inner, sc->scope, a);
    return out->ctx ? 0 : -1;
}

static const rw_querier_ops scoped_ops = {s_select, s_read_samples, s_label_names,
                                          s_label_values, s_with_deadline};

rw_querier rw_query_scoped(const rw_querier *inner, const rw_matcher *scope, rw_arena *a)
{
    scoped *sc = rw_arena_alloc(a, sizeof *sc);
    if (!sc)
        return (rw_querier){&scoped_ops, NULL};
    sc->inner = *inner;
    sc->scope = scope;
    return (rw_querier){&scoped_ops, sc};
}

/* Regex metacharacters of RE2 / PCRE2 syntax, escaped in tenant names. */
static int meta(char c)
{
    return strchr("\\^$.|?*+()[]{}", c) != NULL;
}

rw_rc rw_query_scope_matcher(const rw_principal *p, rw_matcher *m, int *has, rw_err *err)
{
    *has = 0;
    if (!p || p->read_all)
        return RW_OK;
    if (!p->tenant_label || !p->tenant_label[0])
        return rw_err_set(err, RW_INTERNAL, "reads cannot be scoped: no tenant label configured");
    if (p->nread_tenants == 0) /* every credential has its own tenant (auth.c) */
        return rw_err_set(err, RW_INTERNAL, "reads cannot be scoped: the credential has no tenant");
    if (p->nread_tenants == 1) {
        rw_rc rc = rw_matcher_init(m, RW_MATCH_EQ, p->tenant_label, p->read_tenants[0], err);
        *has = rc == RW_OK;
        return rc;
    }
    size_t len = 1;
    for (size_t i = 0; i < p->nread_tenants; i++)
        len += 2 * strlen(p->read_tenants[i]) + 1;
    char *re = malloc(len), *o = re;
    if (!re)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t i = 0; i < p->nread_tenants; i++) {
        if (i)
            *o++ = '|';
        for (const char *c = p->read_tenants[i]; *c; c++) {
            if (meta(*c))
                *o++ = '\\';
            *o++ = *c;
        }
    }
    *o = '\0';
    rw_rc rc = rw_matcher_init(m, RW_MATCH_RE, p->tenant_label, re, err);
    free(re);
    *has = rc == RW_OK;
    return rc;
}
