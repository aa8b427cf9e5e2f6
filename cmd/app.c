/* app.c - wiring of a running rwgate (see app.h): store -> ingest -> query
 * engine -> query API, the web UI, one HTTP route registry that every module adds its
 * rows to, the ops endpoints, self-metrics of the process, and
 * configuration reload.
 *
 * A reload loads the whole configuration anew, refuses it when a key that
 * cannot change at run time changed, and hands each stateful module its new
 * section (rw_ingest_reconfigure, ...): modules keep their state and
 * counters, and swap settings between requests, so ingestion never pauses.
 * Reloads are serialised (SIGHUP and POST /-/reload may arrive together). */
#include "app.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd/config.h"
#include "core/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "ingest/ingest.h"
#include "query/api.h"
#include "query/promql.h"
#include "rules/notify.h"
#include "rules/rules.h"
#include "store/store.h"
#include "ui/ui.h"

#ifndef RWGATE_VERSION
#define RWGATE_VERSION "0.1.0"
#endif

struct rw_app {
    char *config_path;
    const rw_app_flag *flags; /* owned by the caller, outlive the app */
    size_t nflags;
    pthread_mutex_t reload_mu; /* serialises reloads; guards cfg */
    rw_config cfg;
    rw_metrics *metrics;
    rw_store *store;
    rw_appender appender;
    rw_engine *engine;
    rw_query_api *api;
    rw_ingest *ingest;
    rw_rules *rules;
    rw_notifier *notifier;    /* Alertmanagers of `alerting:` */
    char *rules_base_dir;     /* rule_files globs are relative to the config file */
    char *default_url;        /* external URL when global.external_url is empty */
    rw_ui *ui;
    rw_auth *auth;
    rw_routes *routes;
    rw_http_server *http;
    atomic_int ready;
    int64_t start_ms;
    rw_counter *reloads_ok, *reloads_failed;
    rw_gauge *reload_last_ok, *reload_last_ts;
};

/* ---- handlers ---- */

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

/* ---- rules ---- */

/* http://<listen address>, with the host name for a wildcard address, as
 * Prometheus builds its default external URL */
static char *default_external_url(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char host[256];
    size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
    snprintf(host, sizeof host, "%.*s", (int)hl, listen);
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0 ||
        strcmp(host, "::") == 0) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
    }
    char *url = malloc(strlen(host) + 32);
    if (url)
        sprintf(url, "http://%s%s", host, colon ? colon : ":9201");
    return url;
}

static void notify_alerts(void *ctx, const rw_alert_msg *alerts, size_t n)
{
    rw_notifier_send(ctx, alerts, n);
}

static rw_rules_opts rules_opts(rw_app *app, const rw_config *c)
{
    const char *url = c->rules.global.external_url;
    rw_rules_opts o = {
        .rule_files = (const char *const *)c->rules.rule_files.v,
        .nrule_files = c->rules.rule_files.n,
        .base_dir = app->rules_base_dir,
        .evaluation_interval_ms = c->rules.global.evaluation_interval_ms,
        .query_offset_ms = c->rules.global.rule_query_offset_ms,
        .external_labels = c->global.external_labels.v,
        .nexternal = c->global.external_labels.n,
        .external_url = url && *url ? url : app->default_url,
        .engine = app->engine,
        .appender = app->appender,
        .querier = rw_store_querier(app->store),
        .timeout_ms = c->query.timeout_ms,
        .outage_tolerance_ms = c->rules.rules.outage_tolerance_ms,
        .for_grace_period_ms = c->rules.rules.for_grace_period_ms,
        .resend_delay_ms = c->rules.rules.resend_delay_ms,
        /* default: half the CPUs (at least one), the rest for ingestion and
           queries; the store serialises reads of one shard, so more groups
           at once mostly wait for each other */
        .max_concurrent_groups = c->rules.rules.max_concurrent_groups > 0
                                     ? (int)c->rules.rules.max_concurrent_groups
                                     : (int)(sysconf(_SC_NPROCESSORS_ONLN) / 2 > 0
                                                 ? sysconf(_SC_NPROCESSORS_ONLN) / 2
                                                 : 1),
        .max_samples = (size_t)c->query.max_samples,
        .notify = notify_alerts,
        .notify_ctx = app->notifier,
        .metrics = app->metrics,
    };
    return o;
}

/* ---- lifecycle ---- */

rw_rc rw_app_load_config(const char *config_path, const rw_app_flag *flags, size_t nflags,
                         rw_config *out, rw_err *err)
{
    rw_rc rc;
    rw_cfg_defaults(&rw_config_table, out);
    if (config_path && (rc = rw_cfg_load_file(&rw_config_table, out, config_path, err)) != RW_OK)
        return rc;
    for (size_t i = 0; i < nflags; i++)
        if ((rc = rw_cfg_set(&rw_config_table, out, flags[i].key, flags[i].value, err)) != RW_OK)
            return rc;
    return rw_cfg_check(&rw_config_table, out, err);
}

static rw_rc add_routes(rw_app *app, rw_err *err)
{
    const rw_http_route ops[] = {
        {.path = "/api/v1/write", .methods = RW_HTTP_POST, .perm = RW_PERM_WRITE,
         .body_limit = rw_ingest_max_body, .budget = rw_ingest_budget(app->ingest),
         .fn = rw_ingest_http_write, .ctx = app->ingest},
        /* open by default through auth.open_paths, which can close them */
        {.path = "/-/ready", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_ready,
         .ctx = app},
        {.path = "/-/healthy", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_healthy,
         .ctx = app},
        {.path = "/-/reload", .methods = RW_HTTP_POST | RW_HTTP_PUT, .perm = RW_PERM_ADMIN,
         .fn = h_reload, .ctx = app},
        {.path = "/metrics", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_metrics,
         .ctx = app},
    };
    rw_rc rc;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if ((rc = rw_routes_add(app->routes, &ops[i], err)) != RW_OK)
            return rc;
    if ((rc = rw_ingest_routes(app->ingest, app->routes, err)) != RW_OK)
        return rc;
    if ((rc = rw_rules_routes(app->rules, app->routes, err)) != RW_OK)
        return rc;
    if ((rc = rw_query_api_routes(app->api, app->routes, err)) != RW_OK)
        return rc;
    return rw_ui_routes(app->ui, app->routes, err);
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
    pthread_mutex_init(&app->reload_mu, NULL);
    app->config_path = config_path ? strdup(config_path) : NULL;
    app->flags = flags;
    app->nflags = nflags;
    if (rw_app_load_config(config_path, flags, nflags, &app->cfg, err) != RW_OK)
        goto fail;
    app->metrics = rw_metrics_new();
    rw_metrics_add_collector(app->metrics, collect_process, app);
    const char *rh = "Configuration reloads.";
    app->reloads_ok = rw_metrics_counter(app->metrics, "rwgate_config_reloads_total",
                                         "result=\"success\"", rh);
    app->reloads_failed = rw_metrics_counter(app->metrics, "rwgate_config_reloads_total",
                                             "result=\"failure\"", rh);
    app->reload_last_ok = rw_metrics_gauge(app->metrics, "rwgate_config_last_reload_successful",
                                           NULL, "Whether the last configuration reload "
                                                 "attempt was successful.");
    app->reload_last_ts = rw_metrics_gauge(
        app->metrics, "rwgate_config_last_reload_success_timestamp_seconds", NULL,
        "Timestamp of the last successful configuration reload.");
    rw_gauge_set(app->reload_last_ok, 1);
    rw_gauge_set(app->reload_last_ts, (double)app->start_ms / 1000.0);
    const rw_config *c = &app->cfg;

    rw_store_opts so = c->store;
    /* retention measures from the newest sample not ahead of the clock plus
     * the future the ingest path allows */
    so.max_future_ms = c->ingest.max_future_ms;
    so.metrics = app->metrics;
    app->store = rw_store_open(&so, err);
    if (!app->store)
        goto fail;
    app->appender = rw_store_appender(app->store);

    rw_ingest_opts io = {.appender = &app->appender, .metrics = app->metrics, .cfg = &c->ingest,
                         .data_dir = c->store.dir};
    app->ingest = rw_ingest_new(&io, err);
    if (!app->ingest)
        goto fail;

    rw_engine_opts eo = rw_query_engine_opts(&c->query);
    /* values built by label_replace / label_join: the ingest value limit */
    eo.max_label_value_bytes = (size_t)c->ingest.max_label_value_len;
    rw_querier sq = rw_store_querier(app->store);
    app->engine = rw_engine_new(&sq, &eo);
    if (!app->engine) {
        rw_err_set(err, RW_NOMEM, "cannot create the query engine");
        goto fail;
    }

    rw_query_api_opts qo = {
        .store = app->store,
        .engine = app->engine,
        .external_labels = c->global.external_labels.v,
        .nexternal = c->global.external_labels.n,
        .cfg = c->query,
        .version = RWGATE_VERSION,
        .revision = "",
        .metrics = app->metrics,
    };
    app->api = rw_query_api_new(&qo);
    if (!app->api) {
        rw_err_set(err, RW_NOMEM, "cannot create the query API");
        goto fail;
    }

    if (config_path) {
        const char *sl = strrchr(config_path, '/');
        /* no directory part: globs stay relative to the working directory,
           as Prometheus' filepath.Join(".", glob) leaves them */
        if (sl)
            app->rules_base_dir =
                strndup(config_path, sl == config_path ? 1 : (size_t)(sl - config_path));
    }
    app->default_url = default_external_url(c->http.listen);
    app->notifier = rw_notifier_new(&app->cfg.alerting, c->global.external_labels.v,
                                    c->global.external_labels.n, app->metrics, err);
    if (!app->notifier)
        goto fail;
    rw_rules_opts ro = rules_opts(app, c);
    app->rules = rw_rules_open(&ro, err);
    if (!app->rules)
        goto fail;

    if (!(app->ui = rw_ui_new(err)))
        goto fail;
    if (!(app->routes = rw_routes_new())) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    if (add_routes(app, err) != RW_OK)
        goto fail;
    if (!(app->auth = rw_auth_new(&c->auth, c->ingest.tenant_label, app->metrics, err)))
        goto fail;
    rw_http_opts ho = {.cfg = &c->http, .metrics = app->metrics, .auth = rw_auth_http,
                       .auth_ctx = app->auth};
    /* a reload may arrive (POST /-/reload) as soon as the server listens:
       it waits until app->http is set and start-up has read app->cfg */
    pthread_mutex_lock(&app->reload_mu);
    app->http = rw_http_start(&ho, app->routes, err);
    if (!app->http) {
        pthread_mutex_unlock(&app->reload_mu);
        goto fail;
    }
    atomic_store(&app->ready, 1);
    rw_info("rwgate %s ready: listening on %s://%s (port %d), data in %s, %d shards, "
            "started in %.0f ms",
            RWGATE_VERSION, rw_http_tls_enabled(app->http) ? "https" : "http", c->http.listen,
            rw_http_port(app->http), c->store.dir,
            rw_store_nshards(app->store), (double)(rw_mono_ns() - t0) / 1e6);
    pthread_mutex_unlock(&app->reload_mu);
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
    pthread_mutex_lock(&app->reload_mu);
    rw_config nc;
    char key[256];
    rw_rc rc = rw_app_load_config(app->config_path, app->flags, app->nflags, &nc, err);
    if (rc != RW_OK)
        goto out;
    if (!rw_cfg_equal(&rw_config_table, &app->cfg, &nc, 1, key, sizeof key)) {
        rc = rw_err_set(err, RW_BADREQ, "%s cannot change without a restart", key);
        goto out;
    }
    /* rules first: an invalid rule file is the likeliest failure, and until
       it succeeds nothing has changed */
    rw_rules_opts ro = rules_opts(app, &nc);
    if ((rc = rw_rules_reconfigure(app->rules, &ro, err)) != RW_OK)
        goto out;
    /* the certificate files are read again even when their paths did not
       change: a renewed certificate is what a SIGHUP is usually for */
    if ((rc = rw_http_reload_tls(app->http, &nc.http, err)) != RW_OK)
        goto out;
    if ((rc = rw_auth_reconfigure(app->auth, &nc.auth, nc.ingest.tenant_label, err)) != RW_OK)
        goto out;
    if ((rc = rw_ingest_reconfigure(app->ingest, &nc.ingest, err)) != RW_OK)
        goto out;
    if ((rc = rw_query_api_set_external_labels(app->api, nc.global.external_labels.v,
                                               nc.global.external_labels.n)) != RW_OK) {
        rw_err_set(err, rc, "cannot apply external labels");
        goto out;
    }
    rw_config tmp = app->cfg;
    app->cfg = nc;
    nc = tmp;
    /* the notifier keeps a pointer to its section: give it the one that
       stays (only fails for want of memory; the old targets keep going) */
    rw_err nerr;
    rw_err_init(&nerr);
    if (rw_notifier_reconfigure(app->notifier, &app->cfg.alerting,
                                app->cfg.global.external_labels.v,
                                app->cfg.global.external_labels.n, &nerr) != RW_OK)
        rw_error("reload: alerting not reconfigured: %s", nerr.msg);
    rw_info("reload: configuration reloaded from %s",
            app->config_path ? app->config_path : "defaults and flags");
out:
    rw_cfg_free(&rw_config_table, &nc);
    rw_counter_add(rc == RW_OK ? app->reloads_ok : app->reloads_failed, 1);
    rw_gauge_set(app->reload_last_ok, rc == RW_OK);
    if (rc == RW_OK)
        rw_gauge_set(app->reload_last_ts, (double)rw_now_ms() / 1000.0);
    else
        rw_warn("reload failed, keeping the running configuration: %s", err->msg);
    pthread_mutex_unlock(&app->reload_mu);
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
    rw_routes_free(app->routes);
    /* rules append through the store: stop them before it closes; then the
       notifier delivers what they last sent */
    rw_rules_close(app->rules);
    rw_notifier_free(app->notifier);
    free(app->rules_base_dir);
    free(app->default_url);
    rw_ui_free(app->ui);
    rw_auth_free(app->auth);
    rw_query_api_free(app->api);
    rw_engine_free(app->engine);
    rw_ingest_free(app->ingest);
    if (app->store)
        rw_store_close(app->store);
    rw_metrics_free(app->metrics);
    rw_cfg_free(&rw_config_table, &app->cfg);
    free(app->config_path);
    pthread_mutex_destroy(&app->reload_mu);
    free(app);
}
