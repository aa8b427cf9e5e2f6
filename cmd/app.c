/* app.c - wiring of a running rwgate (see app.h): store -> ingest -> query
 * engine -> query API, one HTTP route table for all of them, the ops
 * endpoints, self-metrics of the process, and configuration reload.
 *
 * Reload swaps the write path's settings under a read-write lock: write
 * handlers hold it shared for the duration of a request, a reload takes it
 * exclusively for the instant of the swap, so ingestion never pauses for
 * longer than one in-flight request. */
#include "app.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "ingest/ingest.h"
#include "query/api.h"
#include "query/promql.h"
#include "store/store.h"

#ifndef RWGATE_VERSION
#define RWGATE_VERSION "0.1.0"
#endif

#define MAX_ROUTES 32

struct rw_app {
    char *config_path;
    const rw_app_flag *flags; /* owned by the caller, outlive the app */
    size_t nflags;
    rw_config cfg;            /* guarded by lock for the reloadable parts */
    rw_metrics *metrics;
    rw_store *store;
    rw_engine *engine;
    rw_query_api *api;
    pthread_rwlock_t lock;    /* guards ingest (swapped on reload) and cfg */
    rw_ingest *ingest;
    rw_http_server *http;
    atomic_int ready;
    int64_t start_ms;
    rw_counter *reloads_ok, *reloads_failed;
};

static rw_ingest *make_ingest(rw_app *app, const rw_config *c, rw_err *err)
{
    rw_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.store = app->store;
    o.metrics = app->metrics;
    o.limits.max_body_bytes = (size_t)c->max_body_bytes;
    o.limits.max_decoded_bytes = (size_t)c->max_decoded_bytes;
    o.limits.max_series_per_request = (size_t)c->max_series_per_request;
    o.limits.max_labels_per_series = (size_t)c->max_labels_per_series;
    o.limits.max_label_name_len = (size_t)c->max_label_name_len;
    o.limits.max_label_value_len = (size_t)c->max_label_value_len;
    o.limits.max_future_ms = c->max_future_ms ? c->max_future_ms : -1; /* 0 = no limit */
    o.limits.max_inflight_bytes = (size_t)c->max_inflight_bytes;
    o.tenant_header = c->tenant_header;
    o.tenant_label = c->tenant_label;
    o.default_tenant = c->default_tenant;
    return rw_ingest_new(&o, err);
}

/* ---- handlers ---- */

static void h_write(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_app *app = ctx;
    pthread_rwlock_rdlock(&app->lock);
    rw_ingest_http_write(app->ingest, req, resp);
    pthread_rwlock_unlock(&app->lock);
}

static void h_ready(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_app *app = ctx;
    if (atomic_load(&app->ready))
        rw_http_resp_text(resp, 200, "rwgate is Ready.");
    else
        rw_http_resp_text(resp, 503, "rwgate is not ready.");
}

static void h_healthy(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_http_resp_text(resp, 200, "rwgate is Healthy.");
}

static void h_reload(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_err err;
    rw_err_init(&err);
    if (rw_app_reload(ctx, &err) != RW_OK)
        rw_http_resp_text(resp, 500, "failed to reload config: %s", err.msg);
    else
        rw_http_resp_text(resp, 200, "config reloaded");
}

static void h_metrics(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_app *app = ctx;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->gzip_ok = 1;
    rw_metrics_render(app->metrics, &resp->body);
}

/* process_* metrics from /proc, as every Prometheus exporter has them */
static void collect_process(void *ctx, rw_buf *out)
{
    rw_app *app = ctx;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long utime = 0, stime = 0, vsize = 0;
    long rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                          "%*d %*d %*u %lu %ld", &utime, &stime, &vsize, &rss);
        fclose(f);
    }
    rw_buf_printf(out,
                  "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                  "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                  "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                  "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                  "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %lu\n"
                  "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n"
                  "# HELP rwgate_build_info A metric with a constant '1' value labeled by version.\n"
                  "# TYPE rwgate_build_info gauge\nrwgate_build_info{version=\"%s\"} 1\n",
                  (double)(utime + stime) / (double)(ticks > 0 ? ticks : 100), rss * page, vsize,
                  (double)app->start_ms / 1000.0, RWGATE_VERSION);
}

/* ---- lifecycle ---- */

static int default_shards(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

rw_rc rw_app_load_config(const char *config_path, const rw_app_flag *flags, size_t nflags,
                         rw_config *out, rw_err *err)
{
    rw_rc rc;
    rw_config_defaults(out);
    if (config_path && (rc = rw_config_load_file(out, config_path, err)) != RW_OK)
        return rc;
    for (size_t i = 0; i < nflags; i++)
        if ((rc = rw_config_set(out, flags[i].key, flags[i].value, err)) != RW_OK)
            return rc;
    return RW_OK;
}

rw_app *rw_app_start(const char *config_path, const rw_app_flag *flags, size_t nflags,
                     rw_err *err)
{
    int64_t t0 = rw_mono_ns();
    rw_app *app = calloc(1, sizeof *app);
    if (!app) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    app->start_ms = rw_now_ms();
    pthread_rwlock_init(&app->lock, NULL);
    app->config_path = config_path ? strdup(config_path) : NULL;
    app->flags = flags;
    app->nflags = nflags;
    if (rw_app_load_config(config_path, flags, nflags, &app->cfg, err) != RW_OK)
        goto fail;
    app->metrics = rw_metrics_new();
    rw_metrics_add_collector(app->metrics, collect_process, app);
    app->reloads_ok = rw_metrics_counter(app->metrics, "rwgate_config_reloads_total",
                                         "result=\"success\"", "Configuration reloads.");
    app->reloads_failed = rw_metrics_counter(app->metrics, "rwgate_config_reloads_total",
                                             "result=\"failure\"", "Configuration reloads.");
    const rw_config *c = &app->cfg;

    rw_store_opts so;
    memset(&so, 0, sizeof so);
    so.dir = c->data_dir;
    so.nshards = c->shards ? (int)c->shards : default_shards();
    so.retention_ms = c->retention_ms;
    so.busy_timeout_ms = (int)c->busy_timeout_ms;
    so.max_pending_bytes = (size_t)c->max_pending_bytes;
    so.checkpoint_interval_ms = c->checkpoint_interval_ms;
    so.checkpoint_bytes = (uint64_t)c->checkpoint_bytes;
    so.wal_segment_bytes = (uint64_t)c->wal_segment_bytes;
    so.ooo_window_ms = c->ooo_window_ms;
    so.max_series = (uint64_t)c->max_series;
    so.max_future_ms = c->max_future_ms;
    so.metrics = app->metrics;
    app->store = rw_store_open(&so, err);
    if (!app->store)
        goto fail;

    app->ingest = make_ingest(app, c, err);
    if (!app->ingest)
        goto fail;

    rw_engine_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.lookback_ms = c->lookback_ms;
    eo.default_subquery_step_ms = c->subquery_step_ms;
    eo.max_samples = (size_t)c->query_max_samples;
    eo.timeout_ms = c->query_timeout_ms;
    app->engine = rw_engine_new(app->store, &eo);
    if (!app->engine) {
        rw_err_set(err, RW_NOMEM, "cannot create the query engine");
        goto fail;
    }

    rw_query_api_opts qo;
    memset(&qo, 0, sizeof qo);
    qo.store = app->store;
    qo.engine = app->engine;
    qo.external_labels = c->external_labels;
    qo.nexternal = c->nexternal;
    qo.lookback_ms = c->lookback_ms;
    qo.default_timeout_ms = c->query_timeout_ms;
    qo.max_remote_read_samples = (size_t)c->remote_read_max_samples;
    qo.version = RWGATE_VERSION;
    qo.revision = "";
    qo.metrics = app->metrics;
    app->api = rw_query_api_new(&qo);
    if (!app->api) {
        rw_err_set(err, RW_NOMEM, "cannot create the query API");
        goto fail;
    }

    rw_http_route routes[MAX_ROUTES];
    size_t n = 0;
    routes[n++] = (rw_http_route){"/api/v1/write", RW_HTTP_POST, (size_t)c->max_body_bytes,
                                  h_write, app};
    routes[n++] = (rw_http_route){"/-/ready", RW_HTTP_GET, 0, h_ready, app};
    routes[n++] = (rw_http_route){"/-/healthy", RW_HTTP_GET, 0, h_healthy, app};
    routes[n++] = (rw_http_route){"/-/reload", RW_HTTP_POST | RW_HTTP_PUT, 0, h_reload, app};
    routes[n++] = (rw_http_route){"/metrics", RW_HTTP_GET, 0, h_metrics, app};
    n += rw_query_api_routes(app->api, routes + n, MAX_ROUTES - n);

    rw_http_opts ho = {.max_connections = (unsigned)c->max_connections, .metrics = app->metrics};
    app->http = rw_http_start(c->listen, routes, n, &ho, err);
    if (!app->http)
        goto fail;
    atomic_store(&app->ready, 1);
    rw_info("rwgate %s ready: listening on http://%s (port %d), data in %s, %d shards, "
            "started in %.0f ms",
            RWGATE_VERSION, c->listen, rw_http_port(app->http), c->data_dir, so.nshards,
            (double)(rw_mono_ns() - t0) / 1e6);
    return app;
fail:
    rw_app_stop(app);
    return NULL;
}

int rw_app_port(const rw_app *app)
{
    return rw_http_port(app->http);
}

rw_rc rw_app_reload(rw_app *app, rw_err *err)
{
    rw_config nc;
    rw_rc rc = rw_app_load_config(app->config_path, app->flags, app->nflags, &nc, err);
    if (rc != RW_OK)
        goto out;
    const char *bad = rw_config_unreloadable_change(&app->cfg, &nc);
    if (bad) {
        rc = rw_err_set(err, RW_BADREQ, "%s cannot change without a restart", bad);
        goto out;
    }
    rw_ingest *ni = make_ingest(app, &nc, err);
    if (!ni) {
        rc = RW_NOMEM;
        goto out;
    }
    if ((rc = rw_query_api_set_external_labels(app->api, nc.external_labels, nc.nexternal)) !=
        RW_OK) {
        rw_ingest_free(ni);
        rw_err_set(err, rc, "cannot apply external labels");
        goto out;
    }
    pthread_rwlock_wrlock(&app->lock);
    rw_ingest *old = app->ingest;
    app->ingest = ni;
    rw_config tmp = app->cfg;
    app->cfg = nc;
    nc = tmp;
    pthread_rwlock_unlock(&app->lock);
    rw_ingest_free(old);
    rw_info("reload: configuration reloaded from %s",
            app->config_path ? app->config_path : "defaults and flags");
out:
    rw_config_free(&nc);
    rw_counter_add(rc == RW_OK ? app->reloads_ok : app->reloads_failed, 1);
    if (rc != RW_OK)
        rw_warn("reload failed, keeping the running configuration: %s", err->msg);
    return rc;
}

void rw_app_stop(rw_app *app)
{
    if (!app)
        return;
    atomic_store(&app->ready, 0);
    if (app->http) {
        rw_info("shutting down: finishing in-flight requests");
        rw_http_stop(app->http);
    }
    rw_query_api_free(app->api);
    rw_engine_free(app->engine);
    rw_ingest_free(app->ingest);
    if (app->store)
        rw_store_close(app->store);
    rw_metrics_free(app->metrics);
    rw_config_free(&app->cfg);
    free(app->config_path);
    pthread_rwlock_destroy(&app->lock);
    free(app);
}
