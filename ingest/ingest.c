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
    if (!(ig->budget = rw_budget_new((size_t)ig->cur->cfg.max_inflight_bytes))) {
        ig_settings_put(ig, ig->cur);
        pthread_mutex_destroy(&ig->mu);
        free(ig);
        rw_err_set(err, RW_NOMEM, "out of memory");
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
    const char *dh = "Samples dropped on purpose by ingest-time cleaning, by reason.";
    ig->relabel_dropped = rw_metrics_counter(m, "rwgate_ingest_samples_dropped_total",
                                             "reason=\"relabel_drop\"", dh);
    ig->relabel_invalid = rw_metrics_counter(m, "rwgate_ingest_samples_dropped_total",
                                             "reason=\"relabel_invalid\"", dh);
    ig->relabel_failed = rw_metrics_counter(m, "rwgate_ingest_samples_dropped_total",
                                            "reason=\"relabel_failed\"", dh);
    ig->kubelet_dropped[0] = rw_metrics_counter(m, "rwgate_ingest_samples_dropped_total",
                                                "reason=\"kubelet_ip_reuse\"", dh);
    ig->kubelet_dropped[1] = rw_metrics_counter(m, "rwgate_ingest_samples_dropped_total",
                                                "reason=\"kubelet_not_ready\"", dh);
    const char *hh = "Samples of HA pairs not stored because the other replica's are, by "
                     "where it was decided (election: a standby's; store: already held newer).";
    ig->ha_deduplicated = rw_metrics_counter(m, "rwgate_ingest_samples_deduplicated_total",
                                             "stage=\"election\"", hh);
    ig->ha_skipped = rw_metrics_counter(m, "rwgate_ingest_samples_deduplicated_total",
                                        "stage=\"store\"", hh);
    ig->inventory_unlisted = rw_metrics_counter(
        m, "rwgate_inventory_unlisted_samples_total", NULL,
        "Samples of clusters missing from the inventory (stored with scenario=\"unknown\").");
    ig->rate_limited = rw_metrics_counter(m, "rwgate_ingest_samples_rejected_total",
                                          "reason=\"rate_limited\"", sh);
    ig->max_series_rejected = rw_metrics_counter(m, "rwgate_ingest_samples_rejected_total",
                                                 "reason=\"max_series\"", sh);
    pthread_mutex_init(&ig->pool_mu, NULL);
    pthread_mutex_init(&ig->kapi_mu, NULL);
    const rw_ingest_config *cfg = &ig->cur->cfg;
    ig->gen = ig->cur->gen = 1;
    const char *ch = "Series of remote-write requests looked up in the series cache, by result.";
    ig->cache_hits = rw_metrics_counter(m, "rwgate_ingest_series_cache_lookups_total",
                                        "result=\"hit\"", ch);
    ig->cache_misses = rw_metrics_counter(m, "rwgate_ingest_series_cache_lookups_total",
                                          "result=\"miss\"", ch);
    char *path = NULL;
    if (o->data_dir && *o->data_dir) {
        size_t n = strlen(o->data_dir) + 32;
        if ((path = malloc(n)))
            snprintf(path, n, "%s/ha_elections", o->data_dir);
    }
    rw_ha_opts ho = {.state_path = path,
                     .failover_timeout_ms = cfg->ha_dedup.failover_timeout_ms,
                     .max_clusters = (size_t)cfg->ha_dedup.max_clusters,
                     .buffer_bytes = (size_t)cfg->ha_dedup.standby_buffer_bytes,
                     .metrics = m};
    ig->ha = rw_ha_open(&ho, err);
    free(path);
    rw_kubelet_opts ko = {.mode = (rw_kubelet_mode)cfg->kubelet_dedup.mode,
                          .node_ttl_ms = cfg->kubelet_dedup.node_ttl_ms,
                          .max_nodes = (size_t)cfg->kubelet_dedup.max_nodes,
                          .metrics = m};
    if (ig->ha)
        ig->kubelet = rw_kubelet_new(&ko, err);
    ig->limits = rw_limits_new(m);
    ig->sources = rw_sources_new((size_t)cfg->max_sources);
    if (!ig->ha || !ig->kubelet || !ig->limits || !ig->sources) {
        if (ig->ha && ig->kubelet)
            rw_err_set(err, RW_NOMEM, "out of memory");
        rw_ingest_free(ig);
        return NULL;
    }
    if (cfg->series_cache_size > 0 &&
        !(ig->cache = rw_in_cache_new((size_t)cfg->series_cache_size))) {
        /* its tables' address space is reserved at the start (pages count
           once written): a size the system cannot map fails here */
        rw_err_set(err, RW_NOMEM, "ingest.series_cache_size = %lld: cannot reserve %lld MiB of "
                   "address space for the series cache (32 bytes an entry)",
                   (long long)cfg->series_cache_size,
                   (long long)(cfg->series_cache_size / 32768));
        rw_ingest_free(ig);
        return NULL;
    }
    if (rw_in_kube_api_apply(ig, &cfg->kubelet_dedup.kubernetes_api, err) != RW_OK) {
        rw_ingest_free(ig);
        return NULL;
    }
    return ig;
}

void rw_ingest_free(rw_ingest *ig)
{
    if (!ig)
        return;
    rw_in_kube_api_stop(ig);
    rw_ha_close(ig->ha);
    rw_kubelet_free(ig->kubelet);
    rw_limits_free(ig->limits);
    rw_sources_free(ig->sources);
    rw_in_cache_free(ig->cache);
    for (ig_scratch *s = ig->pool, *next; s; s = next) {
        next = s->next;
        rw_relabel_state_free(s->rs);
        rw_regex_md_free(s->md);
        free(s);
    }
    pthread_mutex_destroy(&ig->pool_mu);
    pthread_mutex_destroy(&ig->kapi_mu);
    ig_settings_put(ig, ig->cur);
    rw_budget_free(ig->budget);
    pthread_mutex_destroy(&ig->mu);
    free(ig);
}

rw_budget *rw_ingest_budget(rw_ingest *ig)
{
    return ig->budget;
}

rw_rc rw_ingest_reconfigure(rw_ingest *ig, const rw_ingest_config *cfg, rw_err *err)
{
    ig_settings *s = settings_new(cfg, err);
    if (!s)
        return err ? err->code : RW_NOMEM;
    const rw_ingest_config *nc = &s->cfg;
    rw_rc rc = rw_in_kube_api_apply(ig, &nc->kubelet_dedup.kubernetes_api, err);
    if (rc != RW_OK) {
        ig_settings_put(ig, s);
        return rc;
    }
    rw_ha_reconfigure(ig->ha, nc->ha_dedup.failover_timeout_ms, (size_t)nc->ha_dedup.max_clusters,
                      (size_t)nc->ha_dedup.standby_buffer_bytes);
    rw_kubelet_opts ko = {.mode = (rw_kubelet_mode)nc->kubelet_dedup.mode,
                          .node_ttl_ms = nc->kubelet_dedup.node_ttl_ms,
                          .max_nodes = (size_t)nc->kubelet_dedup.max_nodes};
    rw_kubelet_reconfigure(ig->kubelet, &ko);
    rw_sources_reconfigure(ig->sources, (size_t)nc->max_sources);
    pthread_mutex_lock(&ig->mu);
    ig_settings *old = ig->cur;
    s->gen = ++ig->gen;
    ig->cur = s;
    pthread_mutex_unlock(&ig->mu);
    rw_budget_set_limit(ig->budget, (size_t)cfg->max_inflight_bytes);
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

/* Admission: the request's decoded body and decoding arena are reserved
 * against the in-flight budget (max_inflight_bytes) before they are
 * allocated - in steps, as decoding counts what the body holds - beside the
 * compressed bodies the HTTP layer charged as they arrived. Past the limit
 * the sender is told to retry later (503), never dropped; a request that
 * could not fit even alone is refused (400). */
rw_rc ig_write(rw_ingest *ig, const ig_settings *s, rw_proto_version v, const char *tenant,
               const void *body, size_t len, size_t body_charged, rw_write_stats *st,
               rw_err *err)
{
    memset(st, 0, sizeof *st);
    const rw_ingest_config *cfg = &s->cfg;
    rw_counter_add(v == RW_PROTO_V2 ? ig->req_v2 : ig->req_v1, 1);
    rw_counter_add(ig->bytes_received, len);
    if (!tenant || !*tenant)
        tenant = cfg->default_tenant;
    size_t ulen = 0;
    if (rw_in_decode_peek_len(body, len, &ulen) != RW_OK ||
        ulen > (size_t)cfg->max_decoded_bytes)
        ulen = 0; /* rejected by decode.c with a precise message */
    /* blocks sized after the body, so a small request holds little */
    size_t block = ulen / 16;
    block = block < (4u << 10) ? (4u << 10) : block > (1u << 20) ? (1u << 20) : block;
    rw_in_mem m = {.budget = ig->budget, .block = block, .outside = body_charged};
    if (ig->cache) {
        m.cache = ig->cache;
        m.cache_seed = rw_in_cache_seed(ig->cache, s->gen, tenant);
    }
    rw_rc rc = rw_in_mem_reserve(&m, block, err);
    if (rc == RW_OK && !(m.a = rw_arena_new(block, m.held)))
        rc = rw_err_set(err, RW_AGAIN, "out of memory");
    rw_in_batch b;
    if (rc == RW_OK)
        rc = rw_in_decode_mem(cfg, v, body, len, &m, &b, err);
    if (rc == RW_OK) {
        rw_in_ctx c = {
            .ig = ig, .cfg = cfg, .a = m.a, .mem = &m, .version = v, .tenant = tenant,
            .now_ms = rw_now_ms(), .st = st, .tl = rw_in_tenant_limits(cfg, tenant),
            .scr = ig_scratch_get(ig), .gen = s->gen,
        };
        if (!c.scr) {
            rc = rw_err_set(err, RW_AGAIN, "out of memory");
        } else {
            rc = rw_in_run_pipeline(&c, &b, err);
            rw_in_clean_finish(&c);
            ig_scratch_put(ig, c.scr);
        }
        if (rc == RW_AGAIN || rc == RW_IO || rc == RW_NOMEM)
            rw_counter_add(ig->req_unavailable, 1);
    } else if (rc == RW_AGAIN) {
        rw_counter_add(ig->req_overloaded, 1);
    } else {
        rw_counter_add(ig->req_bad, 1);
    }
    rw_arena_free(m.a);
    rw_budget_give(ig->budget, m.held);
    return rc;
}

rw_rc rw_ingest_write(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                      size_t len, rw_write_stats *st, rw_err *err)
{
    ig_settings *s = ig_settings_get(ig);
    rw_rc rc = ig_write(ig, s, v, tenant, body, len, 0, st, err);
    ig_settings_put(ig, s);
    return rc;
}
