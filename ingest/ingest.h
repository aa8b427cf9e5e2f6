/* ingest.h - the public interface of the write path: POST /api/v1/write.
 *
 * A request flows: body cap (HTTP layer) -> content negotiation (v1 / v2 /
 * 415) -> snappy (declared length checked before allocating) -> protobuf-c
 * into a per-request arena -> per-series validation and limits -> tenant
 * label -> rw_store_append (durable on RW_OK). Invalid series and rejected
 * samples do not fail the rest of the request: every valid sample is stored,
 * then the reply is 400 with counts and the first reasons. Later stages
 * (relabeling, HA dedup, kubelet endpoint dedup) slot in between validation
 * and the store, see DESIGN.md. */
#ifndef RW_INGEST_H
#define RW_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/http.h"
#include "core/metrics.h"
#include "store/store.h"

typedef struct rw_ingest rw_ingest;

typedef struct rw_ingest_limits {
    size_t max_body_bytes;        /* compressed body; enforced by the HTTP route */
    size_t max_decoded_bytes;     /* snappy's declared length is checked against it */
    size_t max_series_per_request;
    size_t max_labels_per_series;
    size_t max_label_name_len;
    size_t max_label_value_len;
    int64_t max_future_ms;        /* samples newer than now + this are rejected; <0 = no limit */
    size_t max_inflight_bytes;    /* decoded bytes of requests being processed at once;
                                     one request is always admitted */
} rw_ingest_limits;

typedef struct rw_ingest_opts {
    rw_store *store;
    rw_metrics *metrics;          /* may be NULL */
    rw_ingest_limits limits;      /* zero fields take the defaults below */
    const char *tenant_header;    /* default "X-Scope-OrgID"; "THANOS-TENANT" is also read */
    const char *tenant_label;     /* default "tenant_id"; "" turns the tenant label off */
    const char *default_tenant;   /* tenant of requests without the header; "" (default)
                                     = no tenant label on their series */
} rw_ingest_opts;

#define RW_INGEST_DEFAULT_MAX_BODY (32u << 20)
#define RW_INGEST_DEFAULT_MAX_DECODED (128u << 20)
#define RW_INGEST_DEFAULT_MAX_SERIES 100000
#define RW_INGEST_DEFAULT_MAX_LABELS 128
#define RW_INGEST_DEFAULT_MAX_NAME_LEN 1024
#define RW_INGEST_DEFAULT_MAX_VALUE_LEN 4096
#define RW_INGEST_DEFAULT_MAX_FUTURE_MS (10 * 60 * 1000)
#define RW_INGEST_DEFAULT_MAX_INFLIGHT ((size_t)512 << 20)

rw_ingest *rw_ingest_new(const rw_ingest_opts *opts, rw_err *err);
void rw_ingest_free(rw_ingest *ig);
/* Effective limits (defaults filled in). */
const rw_ingest_limits *rw_ingest_get_limits(const rw_ingest *ig);

/* The route handler for POST /api/v1/write (ctx = rw_ingest *). */
void rw_ingest_http_write(void *ctx, rw_http_req *req, rw_http_resp *resp);

/* Protocol versions. */
typedef enum { RW_PROTO_V1 = 1, RW_PROTO_V2 = 2 } rw_proto_version;

/* What one request did. */
typedef struct rw_write_stats {
    uint64_t samples_written;
    uint64_t samples_rejected;
    uint64_t series_rejected;     /* invalid labels, over a limit */
    uint64_t histograms_rejected; /* native histograms: not stored yet */
    uint64_t exemplars_dropped;
    uint64_t metadata_written;
    char reasons[1024];           /* first few reasons, human readable */
} rw_write_stats;

/* The decode-validate-store core without HTTP (tests, fuzzing, and later
 * other receivers). body is the snappy-compressed protobuf. Returns RW_OK
 * when everything valid was stored durably (stats tell whether anything was
 * rejected), RW_BADREQ when the body cannot be decoded, RW_LIMIT when the
 * request exceeds a limit as a whole, RW_AGAIN / RW_IO when the store could
 * not make the data durable. */
rw_rc rw_ingest_write(rw_ingest *ig, rw_proto_version v, const char *tenant, const void *body,
                      size_t len, rw_write_stats *stats, rw_err *err);

/* Content negotiation: from Content-Type and Content-Encoding headers (may be
 * NULL) to a version, or RW_UNSUPPORTED with a message. */
rw_rc rw_ingest_negotiate(const char *content_type, const char *content_encoding,
                          rw_proto_version *v, rw_err *err);

#endif
