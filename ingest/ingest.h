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

#include "core/cfg.h"

/* ---- ingest-time cleaning settings (rows in ingest_config.c) ---- */

/* ingest.ha_dedup */
typedef struct rw_ingest_ha_config {
    int enabled;                  /* acts only on series that carry replica_label */
    char *cluster_label;          /* "cluster" */
    char *replica_label;          /* "__replica__"; removed before storage */
    int64_t failover_timeout_ms;  /* 30s, judged by sample time */
    int64_t max_clusters;         /* tracked (tenant, cluster) pairs */
    int64_t standby_buffer_bytes; /* a standby's uncovered samples kept for a gapless failover */
} rw_ingest_ha_config;

/* ingest.kubelet_dedup.kubernetes_api.tls_config */
typedef struct rw_ingest_tls_config {
    char *ca_file, *cert_file, *key_file, *server_name;
    int insecure_skip_verify;
} rw_ingest_tls_config;

/* ingest.kubelet_dedup.kubernetes_api: an optional node source */
typedef struct rw_ingest_kube_api_config {
    char *url;                    /* "" = off; e.g. https://10.0.0.1:6443 */
    char *bearer_token_file;      /* re-read before every request */
    rw_ingest_tls_config tls_config;
    char *cluster;                /* the cluster (label value) its nodes belong to */
    char *tenant;                 /* and the tenant; "" = none */
    int64_t refresh_interval_ms;  /* 1m */
    int64_t timeout_ms;           /* 30s per request */
} rw_ingest_kube_api_config;

/* ingest.kubelet_dedup */
typedef struct rw_ingest_kubelet_config {
    int enabled;                  /* acts only on kubelet series with node information */
    char *selector;               /* which series are kubelet series: {job="kubelet"} */
    int mode;                     /* 0 ip-reuse, 1 strict (rw_kubelet_mode) */
    char *node_label, *instance_label;
    int64_t node_ttl_ms;
    int64_t max_nodes;
    rw_ingest_kube_api_config kubernetes_api;
    void *compiled_selector;      /* built by check (rw_in_selector), freed by release */
} rw_ingest_kubelet_config;

/* ingest.tenant_limits.<tenant> ("default" for tenants without an entry) */
typedef struct rw_ingest_tenant_limits {
    double ingestion_rate;        /* samples/s; 0 = unlimited */
    int64_t ingestion_burst;      /* samples; 0 = one second's worth */
    int64_t max_series;           /* active series; 0 = unlimited */
    int64_t max_labels_per_series;   /* 0 = the ingest-wide limit */
    int64_t max_label_name_length;
    int64_t max_label_value_length;
    rw_cfg_list write_relabel_configs; /* after the global ones (core/relabel.h) */
} rw_ingest_tenant_limits;

/* The `ingest:` section of the configuration; its rows and every default are
 * in ingest_config.c. Every key applies on reload (rw_ingest_reconfigure). */
typedef struct rw_ingest_config {
    char *tenant_header;          /* "X-Scope-OrgID"; "THANOS-TENANT" is also read */
    char *tenant_label;           /* "tenant_id"; "" turns the tenant label off */
    char *default_tenant;         /* tenant of requests without the header; ""
                                     = no tenant label on their series */
    int64_t max_body_bytes;       /* compressed body; enforced by the HTTP route */
    int64_t max_decoded_bytes;    /* snappy's declared length is checked against it */
    int64_t max_inflight_bytes;   /* bytes the write requests in flight may hold at once:
                                     compressed bodies as they arrive, decoded bodies,
                                     decoding arenas; past it 503, a request that alone
                                     needs more gets 400 */
    int64_t max_series_per_request;
    int64_t max_labels_per_series;
    int64_t max_label_name_len;
    int64_t max_label_value_len;
    int64_t max_help_len;         /* metadata help text */
    int64_t max_future_ms;        /* samples newer than now + this are rejected; 0 = no limit */

    /* cleaning */
    char *cluster_label;          /* "cluster": inventory, kubelet tables, status */
    char *inventory_file;         /* "" = no inventory */
    rw_cfg_list write_relabel_configs; /* of rw_relabel_config (core/relabel.h) */
    rw_ingest_ha_config ha_dedup;
    rw_ingest_kubelet_config kubelet_dedup;
    rw_cfg_map tenant_limits;     /* tenant -> rw_ingest_tenant_limits */
    int64_t active_series_window_ms; /* a series is active for this long after a sample */
    int64_t max_sources;          /* (tenant, cluster) pairs in /api/v1/status/sources */
    int64_t series_cache_size;    /* entries of the series cache; 0 = off (restart) */
    void *inventory;              /* loaded by check from inventory_file (rw_inventory),
                                     freed by release */
} rw_ingest_config;

struct rw_cfg_table;
extern const struct rw_cfg_table rw_ingest_config_table;

typedef struct rw_ingest_opts {
    const rw_appender *appender;  /* where accepted samples go (copied) */
    const char *data_dir;         /* HA elections persist here; NULL = not persisted */
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

/* The in-flight byte budget (ingest.max_inflight_bytes) that decoded
 * bodies and decoding arenas are charged to; the write route hands it to
 * the HTTP server so that compressed bodies are charged to it too, as they
 * arrive (rw_http_route.budget). */
struct rw_budget;
struct rw_budget *rw_ingest_budget(rw_ingest *ig);

/* The route handler for POST /api/v1/write (ctx = rw_ingest *). */
void rw_ingest_http_write(void *ctx, rw_http_req *req, rw_http_resp *resp);

/* Adds the write path's other routes: GET /api/v1/kubelet/endpoints,
 * GET /api/v1/status/sources, POST /api/v1/relabel/test. */
rw_rc rw_ingest_routes(rw_ingest *ig, rw_routes *r, rw_err *err);

/* Protocol versions. */
typedef enum { RW_PROTO_V1 = 1, RW_PROTO_V2 = 2 } rw_proto_version;

/* What one request did. */
typedef struct rw_write_stats {
    uint64_t samples_written;
    uint64_t samples_rejected;
    uint64_t samples_deduplicated; /* HA dedup: another replica's (reply 202) */
    uint64_t samples_dropped;     /* relabel drop, kubelet dedup: dropped on purpose */
    int retry_after_s;            /* with RW_AGAIN from a rate limit: when to retry */
    uint64_t series_rejected;     /* invalid labels, over a limit */
    uint64_t histograms_rejected; /* native histograms: not stored yet */
    uint64_t exemplars_dropped;
    uint64_t metadata_written;
    uint64_t metadata_rejected;   /* invalid entries, or beyond store.max_metadata */
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
