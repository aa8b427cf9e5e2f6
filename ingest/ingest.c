/* ingest.c - the write path's core: decode a body into a batch, validate
 * each series, add the tenant label, append everything valid to the store in
 * one call (one lock per shard, one group commit), and account for what was
 * written and rejected. The HTTP side (negotiation, status codes, headers) is
 * write_handler.c. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "ingest_int.h"

#define MAX_REASONS 5

static char *dup_or(const char *s, const char *def)
{
    return strdup(s ? s : def);
}

rw_ingest *rw_ingest_new(const rw_ingest_opts *o, rw_err *err)
{
    rw_ingest *ig = calloc(1, sizeof *ig);
    if (!ig) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    ig->store = o->store;
    ig->lim = o->limits;
#define DEF(f, d) if (!ig->lim.f) ig->lim.f = (d)
    DEF(max_body_bytes, RW_INGEST_DEFAULT_MAX_BODY);
    DEF(max_decoded_bytes, RW_INGEST_DEFAULT_MAX_DECODED);
    DEF(max_series_per_request, RW_INGEST_DEFAULT_MAX_SERIES);
    DEF(max_labels_per_series, RW_INGEST_DEFAULT_MAX_LABELS);
    DEF(max_label_name_len, RW_INGEST_DEFAULT_MAX_NAME_LEN);
    DEF(max_label_value_len, RW_INGEST_DEFAULT_MAX_VALUE_LEN);
    DEF(max_future_ms, RW_INGEST_DEFAULT_MAX_FUTURE_MS);
    DEF(max_inflight_bytes, RW_INGEST_DEFAULT_MAX_INFLIGHT);
#undef DEF
    ig->tenant_header = dup_or(o->tenant_header, "X-Scope-OrgID");
    ig->tenant_label = dup_or(o->tenant_label, "tenant_id");
    ig->default_tenant = dup_or(o->default_tenant, "");
    rw_metrics *m = o->metrics;
    const char *rh = "Remote-write requests received by protocol version.";
    ig->req_v1 = rw_metrics_counter(m, "rwgate_ingest_requests_total", "version=\"1\"", rh);
    ig->req_v2 = rw_metrics_counter(m, "rwgate_ingest_requests_total", "version=\"2\"", rh);
    const char *fh = "Remote-write requests that failed as a whole, by kind.";
    ig->req_bad = rw_metrics_counter(m, "rwgate_ingest_requests_failed_total",
                                     "reason=\"bad_request\"", fh);
    ig->req_unavailable = rw_metrics_counter(m, "rwgate_ingest_requests_failed_total",
                                             "reason=\"unavailable\"", fh);
    ig->req_overloaded = rw_metrics_counter(m, "rwgate_ingest_requests_failed_total",
                                            "reason=\"overloaded\"", fh);
    ig->samples_written = rw_metrics_counter(m, "rwgate_ingest_samples_written_total", NULL,
                                             "Samples stored (including identical resends).");
    const char *sh = "Samples rejected, by reason.";
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "reason=\"%s\"", rw_reject_reason_str((rw_reject_reason)r));
        ig->samples_rejected[r] = rw_metrics_counter(m, "rwgate_ingest_samples_rejected_total",
                                                     lbl, sh);
    }
    ig->samples_future = rw_metrics_counter(m, "rwgate_ingest_samples_rejected_total",
                                            "reason=\"too_far_in_future\"", sh);
    ig->series_invalid = rw_metrics_counter(m, "rwgate_ingest_series_rejected_total",
                                            "reason=\"invalid\"",
                                            "Series rejected whole (invalid labels, limits).");
    ig->histograms_rejected = rw_metrics_counter(
        m, "rwgate_ingest_histograms_rejected_total", NULL,
        "Native histogram samples rejected (not stored by this version).");
    ig->exemplars_dropped = rw_metrics_counter(m, "rwgate_ingest_exemplars_dropped_total", NULL,
                                               "Exemplars received and not stored.");
    ig->metadata_written = rw_metrics_counter(m, "rwgate_ingest_metadata_written_total", NULL,
                                              "Metric metadata entries stored.");
    ig->bytes_received = rw_metrics_counter(m, "rwgate_ingest_bytes_received_total", NULL,
                                            "Compressed remote-write body bytes received.");
    if (!ig->tenant_header || !ig->tenant_label || !ig->default_tenant) {
        rw_ingest_free(ig);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    return ig;
}

void rw_ingest_free(rw_ingest *ig)
{
    if (!ig)
        return;
    free(ig->tenant_header);
    free(ig->tenant_label);
    free(ig->default_tenant);
    free(ig);
}

const rw_ingest_limits *rw_ingest_get_limits(const rw_ingest *ig)
{
    return &ig->lim;
}

static void add_reason(rw_write_stats *st, int *nreasons, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_reason(rw_write_stats *st, int *nreasons, const char *fmt, ...)
{
    if (*nreasons >= MAX_REASONS)
        return;
    size_t len = strlen(st->reasons);
    if (len + 8 >= sizeof st->reasons)
        return;
    if (len)
        len += (size_t)snprintf(st->reasons + len, sizeof st->reasons - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reasons + len, sizeof st->reasons - len, fmt, ap);
    va_end(ap);
    (*nreasons)++;
}

typedef struct reject_ctx {
    rw_write_stats *st;
    int *nreasons;
} reject_ctx;

/* Called by the store under its shard lock for every rejected sample: only
 * the first few reasons are formatted, the rest cost a comparison. */
static void on_reject(void *ctx, const rw_append_series *s, size_t i, rw_reject_reason r)
{
    reject_ctx *rc = ctx;
    if (*rc->nreasons >= MAX_REASONS)
        return;
    char lbl[256];
    rw_labels_format(s->labels, s->nlabels, lbl, sizeof lbl);
    add_reason(rc->st, rc->nreasons, "%s: sample at %lld: %s", lbl, (long long)s->samples[i].t,
               rw_reject_reason_str(r));
}

static rw_rc write_batch(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                         size_t len, size_t ulen, rw_write_stats *st, rw_err *err);

/* Admission: the decoded bytes of all requests being processed stay under
 * max_inflight_bytes, so memory stays bounded however many senders push at
 * once; past it the sender is told to retry later (503), never dropped. One
 * request is always admitted, whatever its size, so a lone big request
 * cannot be starved. */
rw_rc rw_ingest_write(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                      size_t len, rw_write_stats *st, rw_err *err)
{
    size_t ulen = 0;
    if (rw_in_decode_peek_len(body, len, &ulen) != RW_OK || ulen > ig->lim.max_decoded_bytes)
        ulen = 0; /* rejected by decode.c with a precise message */
    size_t cost = ulen + len;
    size_t before = atomic_fetch_add(&ig->inflight, cost);
    if (before > 0 && before + cost > ig->lim.max_inflight_bytes) {
        atomic_fetch_sub(&ig->inflight, cost);
        memset(st, 0, sizeof *st);
        rw_counter_add(ig->req_overloaded, 1);
        return rw_err_set(err, RW_AGAIN,
                          "overloaded: %zu bytes of write requests in flight (limit %zu); retry later",
                          before, ig->lim.max_inflight_bytes);
    }
    rw_rc rc = write_batch(ig, v, tenant, body, len, ulen, st, err);
    atomic_fetch_sub(&ig->inflight, cost);
    return rc;
}

static rw_rc write_batch(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                         size_t len, size_t ulen, rw_write_stats *st, rw_err *err)
{
    memset(st, 0, sizeof *st);
    int nreasons = 0;
    rw_counter_add(v == RW_PROTO_V2 ? ig->req_v2 : ig->req_v1, 1);
    rw_counter_add(ig->bytes_received, len);
    if (!tenant || !*tenant)
        tenant = ig->default_tenant;
    /* the arena is sized from the declared length (0 when decode.c is about
       to reject it) */
    rw_arena *a = rw_arena_new(ulen > (1u << 20) ? (1u << 20) : 0, ig_arena_cap(ulen));
    if (!a)
        return rw_err_set(err, RW_AGAIN, "out of memory");
    rw_in_batch b;
    rw_rc rc = rw_in_decode(ig, v, body, len, a, &b, err);
    if (rc != RW_OK) {
        rw_arena_free(a);
        rw_counter_add(ig->req_bad, 1);
        return rc;
    }
    rw_append_series *as = rw_arena_alloc(a, (b.nseries ? b.nseries : 1) * sizeof *as);
    if (!as) {
        rw_arena_free(a);
        return rw_err_set(err, RW_LIMIT, "request too complex");
    }
    size_t nas = 0;
    int add_tenant = ig->tenant_label[0] && tenant[0];
    int64_t future_limit = ig->lim.max_future_ms >= 0 ? rw_now_ms() + ig->lim.max_future_ms
                                                      : INT64_MAX;
    uint64_t future = 0;
    for (size_t i = 0; i < b.nseries; i++) {
        rw_in_series *s = &b.series[i];
        st->histograms_rejected += s->nhistograms;
        st->exemplars_dropped += s->nexemplars;
        if (s->nhistograms)
            add_reason(st, &nreasons, "series %zu: %llu native histogram samples not supported",
                       i, (unsigned long long)s->nhistograms);
        if (s->nsamples == 0)
            continue;
        rw_err verr;
        rw_err_init(&verr);
        if (rw_in_validate_series(ig, s, &verr) != RW_OK) {
            char lbl[200];
            rw_labels_format(s->labels, s->nlabels < 16 ? s->nlabels : 16, lbl, sizeof lbl);
            add_reason(st, &nreasons, "series %s: %s", lbl, verr.msg);
            st->series_rejected++;
            st->samples_rejected += s->nsamples;
            continue;
        }
        /* drop samples too far ahead of the clock (kept in order) */
        size_t keep = 0;
        for (size_t k = 0; k < s->nsamples; k++) {
            if (s->samples[k].t > future_limit) {
                if (!future) {
                    char lbl[200];
                    rw_labels_format(s->labels, s->nlabels < 16 ? s->nlabels : 16, lbl, sizeof lbl);
                    add_reason(st, &nreasons, "%s: sample at %lld: too far in the future", lbl,
                               (long long)s->samples[k].t);
                }
                future++;
                continue;
            }
            s->samples[keep++] = s->samples[k];
        }
        s->nsamples = keep;
        if (keep == 0)
            continue;
        if (add_tenant && rw_in_set_label(a, s, ig->tenant_label, tenant) != RW_OK) {
            rw_arena_free(a);
            return rw_err_set(err, RW_LIMIT, "request too complex");
        }
        as[nas].labels = s->labels;
        as[nas].nlabels = s->nlabels;
        as[nas].hash = s->lens ? rw_labels_hash_lens(s->labels, s->lens, s->nlabels)
                               : rw_labels_hash(s->labels, s->nlabels);
        as[nas].samples = s->samples;
        as[nas].nsamples = s->nsamples;
        nas++;
    }
    reject_ctx rctx = {st, &nreasons};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    res.on_reject = on_reject;
    res.on_reject_ctx = &rctx;
    if (nas) {
        rc = rw_store_append(ig->store, as, nas, &res, err);
        if (rc != RW_OK) {
            rw_counter_add(ig->req_unavailable, 1);
            rw_arena_free(a);
            return rc;
        }
    }
    if (b.nmetadata) {
        /* not stored = not acknowledged: 503, the sender retries (the store
         * keeps what it held before) */
        rc = rw_store_put_metadata(ig->store, b.metadata, b.nmetadata, err);
        if (rc != RW_OK) {
            rw_warn("ingest: storing %zu metadata entries failed: %s", b.nmetadata, err->msg);
            rw_counter_add(ig->req_unavailable, 1);
            rw_arena_free(a);
            return rc;
        }
        st->metadata_written = b.nmetadata;
    }
    st->samples_written = res.samples_written;
    st->samples_rejected += future;
    rw_counter_add(ig->samples_future, future);
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        st->samples_rejected += res.rejected[r];
        rw_counter_add(ig->samples_rejected[r], res.rejected[r]);
    }
    rw_counter_add(ig->samples_written, st->samples_written);
    rw_counter_add(ig->series_invalid, st->series_rejected);
    rw_counter_add(ig->histograms_rejected, st->histograms_rejected);
    rw_counter_add(ig->exemplars_dropped, st->exemplars_dropped);
    rw_counter_add(ig->metadata_written, st->metadata_written);
    rw_arena_free(a);
    return RW_OK;
}
