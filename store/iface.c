/* iface.c - the store seen through the narrow interfaces of store.h: an
 * rw_appender for the write path and rule evaluation, an rw_querier for the
 * PromQL engine and the read APIs. Thin forwarding; the point is that callers
 * depend on the interface, so wrappers (tenant-scoped reads, forwarding) slot
 * in without touching them. A querier with a deadline (with_deadline) is a
 * small view {store, deadline} in the caller's arena. */
#include "store_int.h"

static rw_rc ap_append(void *ctx, const rw_append_series *series, size_t n,
                       rw_append_result *res, rw_err *err)
{
    return rw_store_append(ctx, series, n, res, err);
}

static rw_rc ap_put_metadata(void *ctx, const rw_metadata *md, size_t n, rw_err *err)
{
    return rw_store_put_metadata(ctx, md, n, err);
}

static rw_rc ap_append_nowait(void *ctx, const rw_append_series *series, size_t n,
                              rw_append_result *res, rw_err *err)
{
    return rw_store_append_nowait(ctx, series, n, res, err);
}

static rw_rc ap_sync(void *ctx, rw_err *err)
{
    return rw_store_sync(ctx, err);
}

static const rw_appender_ops appender_ops = {ap_append, ap_put_metadata, ap_append_nowait,
                                             ap_sync};

rw_appender rw_store_appender(rw_store *s)
{
    return (rw_appender){&appender_ops, s};
}

static rw_rc q_select(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err)
{
    return rw_store_select(ctx, ms, nms, mint, maxt, flags, max_samples, a, out, nout, err);
}

static rw_rc q_read_samples(void *ctx, rw_series_data *series, size_t n, int64_t mint,
                            int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                            size_t *decoded, rw_err *err)
{
    return rw_store_read_samples(ctx, series, n, mint, maxt, flags, max_samples, a, decoded, err);
}

static rw_rc q_label_names(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err)
{
    return rw_store_label_names(ctx, ms, nms, mint, maxt, a, out, nout, err);
}

static rw_rc q_label_values(void *ctx, const char *name, const rw_matcher *ms, size_t nms,
                            int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                            rw_err *err)
{
    return rw_store_label_values(ctx, name, ms, nms, mint, maxt, a, out, nout, err);
}

/* The store with a deadline: ctx is a store_view in the caller's arena. */
typedef struct store_view {
    rw_store *st;
    int64_t deadline_ns;
} store_view;

static rw_rc v_select(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err)
{
    store_view *v = ctx;
    return store_select(v->st, ms, nms, mint, maxt, flags, max_samples, v->deadline_ns, a, out,
                        nout, err);
}

static rw_rc v_read_samples(void *ctx, rw_series_data *series, size_t n, int64_t mint,
                            int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                            size_t *decoded, rw_err *err)
{
    store_view *v = ctx;
    return rw_store_read_samples(v->st, series, n, mint, maxt, flags, max_samples, a, decoded,
                                 err);
}

static rw_rc v_label_names(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err)
{
    store_view *v = ctx;
    return store_label_query(v->st, NULL, ms, nms, mint, maxt, v->deadline_ns, a, out, nout,
                             err);
}

static rw_rc v_label_values(void *ctx, const char *name, const rw_matcher *ms, size_t nms,
                            int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                            rw_err *err)
{
    store_view *v = ctx;
    return store_label_query(v->st, name, ms, nms, mint, maxt, v->deadline_ns, a, out, nout,
                             err);
}

static int v_with_deadline(void *ctx, int64_t deadline_ns, rw_arena *a, rw_querier *out);

static const rw_querier_ops view_ops = {v_select, v_read_samples, v_label_names, v_label_values,
                                        v_with_deadline};

static int make_view(rw_store *st, int64_t deadline_ns, rw_arena *a, rw_querier *out)
{
    store_view *v = rw_arena_alloc(a, sizeof *v);
    if (!v)
        return -1;
    v->st = st;
    v->deadline_ns = deadline_ns;
    *out = (rw_querier){&view_ops, v};
    return 0;
}

static int v_with_deadline(void *ctx, int64_t deadline_ns, rw_arena *a, rw_querier *out)
{
    store_view *v = ctx;
    /* the earlier deadline wins */
    if (v->deadline_ns && v->deadline_ns < deadline_ns)
        deadline_ns = v->deadline_ns;
    return make_view(v->st, deadline_ns, a, out);
}

static int q_with_deadline(void *ctx, int64_t deadline_ns, rw_arena *a, rw_querier *out)
{
    return make_view(ctx, deadline_ns, a, out);
}

static const rw_querier_ops querier_ops = {q_select, q_read_samples, q_label_names,
                                           q_label_values, q_with_deadline};

rw_querier rw_store_querier(rw_store *s)
{
    return (rw_querier){&querier_ops, s};
}
