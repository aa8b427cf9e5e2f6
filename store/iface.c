/* iface.c - the store seen through the narrow interfaces of store.h: an
 * rw_appender for the write path and rule evaluation, an rw_querier for the
 * PromQL engine and the read APIs. Thin forwarding; the point is that callers
 * depend on the interface, so wrappers (tenant-scoped reads, forwarding) slot
 * in without touching them. */
#include "store.h"

static rw_rc ap_append(void *ctx, const rw_append_series *series, size_t n,
                       rw_append_result *res, rw_err *err)
{
    return rw_store_append(ctx, series, n, res, err);
}

static rw_rc ap_put_metadata(void *ctx, const rw_metadata *md, size_t n, rw_err *err)
{
    return rw_store_put_metadata(ctx, md, n, err);
}

static const rw_appender_ops appender_ops = {ap_append, ap_put_metadata};

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

static const rw_querier_ops querier_ops = {q_select, q_read_samples, q_label_names,
                                           q_label_values};

rw_querier rw_store_querier(rw_store *s)
{
    return (rw_querier){&querier_ops, s};
}
