/* api_int.h - what the files of the HTTP API (api.c, api_meta.c, federate.c,
 * remote_read.c) share: the handle, the Prometheus response envelope, and
 * parameter parsing. Internal to query/. */
#ifndef RW_QUERY_API_INT_H
#define RW_QUERY_API_INT_H

#include <pthread.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/http.h"
#include "core/matcher.h"
#include "query/api.h"

/* Endpoints, for the duration histogram. */
typedef enum {
    QAPI_EP_QUERY,
    QAPI_EP_QUERY_RANGE,
    QAPI_EP_SERIES,
    QAPI_EP_LABELS,
    QAPI_EP_LABEL_VALUES,
    QAPI_EP_METADATA,
    QAPI_EP_BUILDINFO,
    QAPI_EP_TSDB,
    QAPI_EP_FEDERATE,
    QAPI_EP_READ,
    QAPI_EP_EXEMPLARS,
    QAPI_EP__COUNT
} qapi_endpoint;

struct rw_query_api {
    /* set once in rw_query_api_new, read-only afterwards */
    rw_store *store;
    rw_querier querier;
    rw_engine *engine;
    int64_t lookback_ms;
    int64_t default_timeout_ms;
    size_t max_remote_read_samples;
    size_t max_memory_bytes, max_response_bytes;
    size_t rr_max_queries, rr_max_matchers;
    char *version, *revision;
    rw_histogram *duration[QAPI_EP__COUNT];
    rw_counter *queue_rejected;
    rw_gauge *g_running, *g_waiting; /* running and waiting, published (qmu) */

    /* concurrency: slots for read requests (qmu) */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    size_t running, waiting;
    size_t max_concurrent, max_queued;
    int64_t queue_timeout_ms;

    /* ext_mu guards ext and next. The set is sorted by name; its strings
       live in the same malloc'd block as the array (one free). */
    pthread_mutex_t ext_mu;
    rw_label *ext;
    size_t next;
};

/* What one read request works with: its slot among the concurrent read
 * requests (query.max_concurrent, a queue of query.max_queued waiting at
 * most query.queue_timeout), an arena capped at query.max_memory_bytes, and
 * its querier - the store's, scoped to the caller's tenants when
 * authentication is on, with the request's deadline. The response body is
 * capped at query.max_response_bytes. */
typedef struct qapi_req {
    rw_arena *a;
    rw_querier q;
    int64_t deadline_ns;
    rw_matcher scope;
    int has_scope;
    int slot;
} qapi_req;

/* Returns 0 after writing the error (503 + Retry-After when no slot is
 * free in time; JSON envelope, or plain text when text is set). */
int rw_qapi_req_begin(rw_query_api *api, rw_http_req *req, rw_http_resp *resp,
                      int64_t timeout_ms, int text, qapi_req *r);
void rw_qapi_req_end(rw_query_api *api, qapi_req *r);
/* The error of a request that failed: names the memory limit when the
 * request's arena hit it. */
void rw_qapi_req_error(rw_query_api *api, qapi_req *r, rw_http_resp *resp, rw_rc rc,
                       const char *msg);

/* Copies the current external labels into the arena (sorted by name).
 * Returns the count; *out is NULL when there are none. */
size_t rw_qapi_ext_labels(rw_query_api *api, rw_arena *a, rw_label **out);

void rw_qapi_observe(rw_query_api *api, qapi_endpoint ep, int64_t start_ns);

/* ---- the Prometheus JSON envelope ---- */

/* errorType strings and their statuses, as Prometheus' API answers them */
#define QAPI_BAD_DATA "bad_data"
#define QAPI_EXEC "execution"
#define QAPI_INTERNAL "internal"

/* Replaces the body with {"status":"error","errorType":..,"error":..}. */
void rw_qapi_error(rw_http_resp *resp, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same, type and status derived from a return code; msg is used as is. */
void rw_qapi_error_rc(rw_http_resp *resp, rw_rc rc, const char *msg);
/* bad_data, 400: `invalid parameter "NAME": MSG` */
void rw_qapi_bad_param(rw_http_resp *resp, const char *param, const char *msg);

/* {"status":"success","data": ... then the caller writes the data ... */
void rw_qapi_begin(rw_http_resp *resp);
/* ... closes the envelope with optional "warnings" / "infos" arrays. */
void rw_qapi_end(rw_http_resp *resp, const char *const *warnings, size_t nwarnings,
                 const char *const *infos, size_t ninfos);

/* {"name":"value",...} */
void rw_qapi_labels_json(rw_buf *b, const rw_label *l, size_t n);

/* ---- parameters; each returns 0 after writing the error response ---- */

/* Missing parameter: *ms = def. */
int rw_qapi_time_param(rw_http_req *req, rw_http_resp *resp, const char *name, int64_t def,
                       int64_t *ms);
/* `limit`: non-negative integer, 0 (or absent) = no limit. */
int rw_qapi_limit_param(rw_http_req *req, rw_http_resp *resp, size_t *limit);

/* Parsed match[] parameters: one matcher array per selector. */
typedef struct qapi_msets {
    rw_matcher **sets;
    size_t *lens;
    size_t n;
} qapi_msets;

/* Parses every match[] (there may be none). Errors are Prometheus':
 * invalid parameter "match[]": ... */
int rw_qapi_parse_matches(rw_http_req *req, rw_http_resp *resp, qapi_msets *out);
void rw_qapi_msets_free(qapi_msets *m);

/* Sorted, unique union of sorted string lists. */
size_t rw_qapi_merge_strings(rw_arena *a, char ***lists, const size_t *lens, size_t nlists,
                             char ***out);

/* ---- remote-read pieces, separate for the fuzz target ---- */

/* Snappy (declared length capped), a scan that counts queries, matchers and
 * fields against the limits, then protobuf-c from the arena. */
struct Prometheus__ReadRequest;
struct Prometheus__Query;
rw_rc rw_qapi_read_decode(const char *body, size_t len, size_t max_queries, size_t max_matchers,
                          rw_arena *a, struct Prometheus__ReadRequest **out, rw_err *err);
/* A Query's matchers into ms (room for q->n_matchers); an equality matcher
 * on an external label with its value becomes `name=""`. Returns 0 with err
 * set on a bad type or regex; *nms matchers are initialised either way. */
int rw_qapi_read_matchers(const struct Prometheus__Query *q, const rw_label *ext, size_t next,
                          rw_matcher *ms, size_t *nms, rw_err *err);

/* ---- handlers (route rows) ---- */
void rw_qapi_query(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_query_range(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_series(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_labels(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_label_values(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_metadata(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_buildinfo(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_tsdb(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_federate(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_remote_read(void *ctx, rw_http_req *req, rw_http_resp *resp);
void rw_qapi_exemplars(void *ctx, rw_http_req *req, rw_http_resp *resp);

#endif
