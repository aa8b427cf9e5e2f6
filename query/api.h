/* api.h - the read side of rwgate's HTTP interface: the Prometheus HTTP API
 * (/api/v1/query, query_range, series, labels, label/NAME/values, metadata,
 * status/buildinfo, status/tsdb, and query_exemplars, always empty: rwgate
 * stores no exemplars), GET /federate and POST /api/v1/read (remote-read,
 * samples response).
 *
 * The module hands its rows of the server's route table to the integrator
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

typedef struct rw_query_api_opts {
    rw_store *store;                 /* required */
    rw_engine *engine;               /* required for query / query_range */
    const rw_label *external_labels; /* copied; need not be sorted */
    size_t nexternal;
    int64_t lookback_ms;             /* /federate window; 0 = 5m */
    int64_t default_timeout_ms;      /* query timeout; 0 = 2m */
    size_t max_remote_read_samples;  /* per remote-read request; 0 = 50,000,000 */
    const char *version;             /* buildinfo; copied; NULL = "unknown" */
    const char *revision;
    rw_metrics *metrics;             /* may be NULL */
} rw_query_api_opts;

/* The route rows this module serves (see RW_QUERY_API_NROUTES). */
#define RW_QUERY_API_NROUTES 11

rw_query_api *rw_query_api_new(const rw_query_api_opts *opts);
void rw_query_api_free(rw_query_api *api);

/* Writes the module's route rows into out, at most `max`, and returns how
 * many it wrote; all of them need max >= RW_QUERY_API_NROUTES. */
size_t rw_query_api_routes(rw_query_api *api, rw_http_route *out, size_t max);

/* Replaces the external labels (config reload). Copied; thread-safe. Returns
 * RW_NOMEM (and keeps the old set) when the copy cannot be made. */
rw_rc rw_query_api_set_external_labels(rw_query_api *api, const rw_label *labels, size_t n);

#endif
