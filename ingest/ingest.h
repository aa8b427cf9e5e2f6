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

/* The `ingest:` section of the configuration; its rows and every default are
 * in ingest_config.c. Every key applies on reload (rw_ingest_reconfigure). */
typedef struct rw_ingest_config {
    char *tenant_header;          /* "X-Scope-OrgID"; "THANOS-TENANT" is also read */
    char *tenant_label;           /* "tenant_id"; "" turns the tenant label off */
    char *default_tenant;         /* tenant of requests without the header; ""
                                     = no tenant label on their series */
    int64_t max_body_bytes;       /* compressed body; enforced by the HTTP route */
    int64_t max_decoded_bytes;    /* snappy's declared length is checked against it */
    int64_t max_inflight_bytes;   /* decoded bytes of requests being processed at once;
                                     one request is always admitted */
    int64_t max_series_per_request;
    int64_t max_labels_per_series;
    int64_t max_label_name_len;
    int64_t max_label_value_len;
    int64_t max_future_ms;        /* samples newer than now + this are rejected; 0 = no limit */
} rw_ingest_config;

struct rw_cfg_table;
extern const struct rw_cfg_table rw_ingest_config_table;

typedef struct rw_ingest_opts {
    const rw_appender *appender;  /* where accepted samples go (copied) */
    rw_metrics *metrics;          /* may be NULL */
    const rw_ingest_config *cfg;  /* copied; NULL = every default */
} rw_ingest_opts;

rw_ingest *rw_ingest_new(const rw_ingest_opts *opts, rw_err *err);
void rw_ingest_free(rw_ingest *ig);

/* Applies new settings without a gap: requests in flight finish with the
 * settings they started with, later ones use the new. Counters and every
 * other piece of state are kept. */
rw_rc rw_ingest_reconfigure(rw_ingest *ig, const rw_ingest_config *cfg, rw_err *err);

/* The current body limit, for the route's body-limit callback (ctx =
 * rw_ingest *). */
size_t rw_ingest_max_body(void *ctx);

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
