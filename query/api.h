/* api.h - the read side of rwgate's HTTP interface: the Prometheus HTTP API
 * (/api/v1/query, query_range, series, labels, label/NAME/values, metadata,
 * status/buildinfo, status/tsdb, and query_exemplars, always empty: rwgate
 * stores no exemplars), GET /federate and POST /api/v1/read (remote-read,
 * samples response).
 *
 * The module adds its rows to the server's route registry
 * (rw_query_api_routes); each handler answers exactly as Prometheus does, so
 * Grafana, promtool and an upper-level Prometheus work unchanged. The handle
 * must outlive the HTTP server that calls its routes.
 *
 * Threading: handlers run concurrently, one per connection thread. External
 * labels may be swapped at any time (config reload) with
 * rw_query_api_set_external_labels; a request sees either the old or the new
 * set, never a mix. */
#ifndef RW_QUERY_API_H
#define RW_QUERY_API_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "query/promql.h"
#include "store/store.h"

typedef struct rw_query_api rw_query_api;

/* The `query:` section of the configuration; rows and defaults in
 * query_config.c. A zero field given to rw_engine_new / rw_query_api_new
 * takes the table's default. */
typedef struct rw_query_config {
    int64_t lookback_ms;             /* lookback_delta: instant selectors, /federate */
    int64_t timeout_ms;              /* longest a query may run */
    int64_t max_samples;             /* samples one query may hold at once */
    int64_t default_subquery_step_ms;
    int64_t remote_read_max_samples; /* samples one remote-read request may return */
} rw_query_config;

struct rw_cfg_table;
extern const struct rw_cfg_table rw_query_config_table;

/* The engine options a configuration gives (defaults filled in). */
rw_engine_opts rw_query_engine_opts(const rw_query_config *cfg);

typedef struct rw_query_api_opts {
    rw_store *store;                 /* required: metadata, status */
    const rw_querier *querier;       /* series reads; NULL = the store's */
    rw_engine *engine;               /* required for query / query_range */
    const rw_label *external_labels; /* copied; need not be sorted */
    size_t nexternal;
    rw_query_config cfg;             /* zero fields: defaults */
    const char *version;             /* buildinfo; copied; NULL = "unknown" */
    const char *revision;
    rw_metrics *metrics;             /* may be NULL */
} rw_query_api_opts;

rw_query_api *rw_query_api_new(const rw_query_api_opts *opts);
void rw_query_api_free(rw_query_api *api);

/* Adds the module's routes (all RW_PERM_READ) to the registry. */
rw_rc rw_query_api_routes(rw_query_api *api, rw_routes *routes, rw_err *err);

/* Replaces the external labels (config reload). Copied; thread-safe. Returns
 * RW_NOMEM (and keeps the old set) when the copy cannot be made. */
rw_rc rw_query_api_set_external_labels(rw_query_api *api, const rw_label *labels, size_t n);

#endif
