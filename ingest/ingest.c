/* ingest.c - the write path's object: settings snapshots that a reload swaps
 * without a gap, admission against the in-flight byte budget, and one
 * request's journey: decode the body into a batch in a request arena, run
 * the pipeline of stages (pipeline.c), account for what was written and
 * rejected. The HTTP side (negotiation, status codes, headers) is
 * write_handler.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/cfg.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "ingest_int.h"

static ig_settings *settings_new(const rw_ingest_config *cfg, rw_err *err)
{
    ig_settings *s = calloc(1, sizeof *s);
    if (!s) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    rw_rc rc;
    if (cfg) {
        rc = rw_cfg_copy(&rw_ingest_config_table, &s->cfg, cfg, err);
    } else {
        rw_cfg_defaults(&rw_ingest_config_table, &s->cfg);
        rc = rw_cfg_check(&rw_ingest_config_table, &s->cfg, err);
    }
    if (rc != RW_OK) {
        rw_cfg_free(&rw_ingest_config_table, &s->cfg);
        free(s);
        return NULL;
    }
    s->refs = 1; /* the ingest's own reference while it is current */
    return s;
}

static void settings_free(ig_settings *s)
{
    rw_cfg_free(&rw_ingest_config_table, &s->cfg);
    free(s);
}

ig_settings *ig_settings_get(rw_ingest *ig)
{
    pthread_mutex_lock(&ig->mu);
    ig_settings *s = ig->cur;
    s->refs++;
    pthread_mutex_unlock(&ig->mu);
    return s;
}

void ig_settings_put(rw_ingest *ig, ig_settings *s)
{
    pthread_mutex_lock(&ig->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&ig->mu);
    if (last)
        settings_free(s);
}

rw_ingest *rw_ingest_new(const rw_ingest_opts *o, rw_err *err)
{
    rw_ingest *ig = calloc(1, sizeof *ig);
    if (!ig) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    ig->appender = *o->appender;
    pthread_mutex_init(&ig->mu, NULL);
    if (!(ig->cur = settings_new(o->cfg, err))) {
        pthread_mutex_destroy(&ig->mu);
        free(ig);
        return NULL;
    }
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
    return ig;
}

void rw_ingest_free(rw_ingest *ig)
{
    if (!ig)
        return;
    ig_settings_put(ig, ig->cur);
    pthread_mutex_destroy(&ig->mu);
    free(ig);
}

rw_rc rw_ingest_reconfigure(rw_ingest *ig, const rw_ingest_config *cfg, rw_err *err)
{
    ig_settings *s = settings_new(cfg, err);
    if (!s)
        return err ? err->code : RW_NOMEM;
    pthread_mutex_lock(&ig->mu);
    ig_settings *old = ig->cur;
    ig->cur = s;
    pthread_mutex_unlock(&ig->mu);
    ig_settings_put(ig, old);
    return RW_OK;
}

size_t rw_ingest_max_body(void *ctx)
{
    rw_ingest *ig = ctx;
    ig_settings *s = ig_settings_get(ig);
    size_t n = (size_t)s->cfg.max_body_bytes;
    ig_settings_put(ig, s);
    return n;
}

static rw_rc write_batch(rw_ingest *ig, const rw_ingest_config *cfg, rw_proto_version v,
                         const char *tenant, const void *body, size_t len, size_t ulen,
                         rw_write_stats *st, rw_err *err);

/* Admission: the decoded bytes of all requests being processed stay under
 * max_inflight_bytes, so memory stays bounded however many senders push at
 * once; past it the sender is told to retry later (503), never dropped. One
 * request is always admitted, whatever its size, so a lone big request
 * cannot be starved. */
rw_rc ig_write(rw_ingest *ig, const ig_settings *s, rw_proto_version v, const char *tenant,
               const void *body, size_t len, rw_write_stats *st, rw_err *err)
{
    memset(st, 0, sizeof *st);
    const rw_ingest_config *cfg = &s->cfg;
    size_t ulen = 0;
    if (rw_in_decode_peek_len(body, len, &ulen) != RW_OK ||
        ulen > (size_t)cfg->max_decoded_bytes)
        ulen = 0; /* rejected by decode.c with a precise message */
    size_t cost = ulen + len;
    size_t before = atomic_fetch_add(&ig->inflight, cost);
    if (before > 0 && before + cost > (size_t)cfg->max_inflight_bytes) {
        atomic_fetch_sub(&ig->inflight, cost);
        rw_counter_add(ig->req_overloaded, 1);
        return rw_err_set(err, RW_AGAIN,
                          "overloaded: %zu bytes of write requests in flight (limit %lld); "
                          "retry later",
                          before, (long long)cfg->max_inflight_bytes);
    }
    rw_rc rc = write_batch(ig, cfg, v, tenant, body, len, ulen, st, err);
    atomic_fetch_sub(&ig->inflight, cost);
    return rc;
}

rw_rc rw_ingest_write(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                      size_t len, rw_write_stats *st, rw_err *err)
{
    ig_settings *s = ig_settings_get(ig);
    rw_rc rc = ig_write(ig, s, v, tenant, body, len, st, err);
    ig_settings_put(ig, s);
    return rc;
}

static rw_rc write_batch(rw_ingest *ig, const rw_ingest_config *cfg, rw_proto_version v,
                         const char *tenant, const void *body, size_t len, size_t ulen,
                         rw_write_stats *st, rw_err *err)
{
    rw_counter_add(v == RW_PROTO_V2 ? ig->req_v2 : ig->req_v1, 1);
    rw_counter_add(ig->bytes_received, len);
    if (!tenant || !*tenant)
        tenant = cfg->default_tenant;
    /* the arena is sized from the declared length (0 when decode.c is about
       to reject it) */
    rw_arena *a = rw_arena_new(ulen > (1u << 20) ? (1u << 20) : 0, ig_arena_cap(ulen));
    if (!a)
        return rw_err_set(err, RW_AGAIN, "out of memory");
    rw_in_batch b;
    rw_rc rc = rw_in_decode(cfg, v, body, len, a, &b, err);
    if (rc != RW_OK) {
        rw_arena_free(a);
        rw_counter_add(ig->req_bad, 1);
        return rc;
    }
    rw_in_ctx c = {
        .ig = ig, .cfg = cfg, .a = a, .version = v, .tenant = tenant, .now_ms = rw_now_ms(),
        .st = st,
    };
    rc = rw_in_run_pipeline(&c, &b, err);
    if (rc == RW_AGAIN || rc == RW_IO || rc == RW_NOMEM)
        rw_counter_add(ig->req_unavailable, 1);
    rw_arena_free(a);
    return rc;
}
