/* clean.h - ingest-time cleaning, internal to the write path: the cluster
 * inventory (standard labels), the HA-pair tracker, the kubelet-endpoint
 * node table, per-tenant limits and per-source status. Each piece is a
 * module of its own with a handle; the write path's stages (ingest.c) call
 * them once per request with its decoded batch. State that must outlive a
 * reload (elections, node tables, token buckets, source statistics) lives
 * in the handles, which are kept across reloads and reconfigured; what a
 * reload replaces wholesale (the inventory) is immutable and swapped. */
#ifndef RW_INGEST_CLEAN_H
#define RW_INGEST_CLEAN_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/matcher.h"
#include "core/metrics.h"
#include "core/regex.h"
#include "store/store.h"

/* FNV-1a over a, a 0xff separator, b: the key hash of the cleaning modules'
 * (tenant, cluster) tables (b may be "" for one-string keys). */
static inline uint64_t rw_in_pair_hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

/* ---- label selectors in configuration (selector.c) ---- */

typedef struct rw_in_matcher {
    char *name, *value;
    int op;          /* rw_match_op */
    rw_regex *re;    /* =~ and !~ */
} rw_in_matcher;

typedef struct rw_in_selector {
    rw_in_matcher *m;
    size_t n;
    int ngroups;     /* most groups of any regex: size the match data for it */
} rw_in_selector;

/* Parses `{name="v", name=~"re", ...}` (a metric name may lead). */
rw_rc rw_in_selector_parse(const char *text, rw_in_selector *s, rw_err *err);
void rw_in_selector_free(rw_in_selector *s);
/* All matchers match the sorted set l[] (md: the caller's, ngroups or more). */
int rw_in_selector_matches(const rw_in_selector *s, rw_regex_md *md, const rw_label *l, size_t n);

/* ---- cluster inventory (inventory.c) ----
 *
 * A YAML file `clusters: {NAME: {region, product, scenario, size, <any
 * label>..., override: bool}}` loaded (and re-loaded on reload) into an
 * immutable lookup table. Every series of a listed cluster gets the
 * cluster's labels; a label the sender set wins unless the entry says
 * override: true. A series of an unlisted cluster gets scenario="unknown"
 * (unless it has a scenario). */

typedef struct rw_inventory rw_inventory;
typedef struct rw_inventory_entry rw_inventory_entry;

rw_inventory *rw_inventory_load(const char *path, rw_err *err);
rw_inventory *rw_inventory_parse(const char *yaml, size_t len, const char *name, rw_err *err);
void rw_inventory_free(rw_inventory *inv);
size_t rw_inventory_size(const rw_inventory *inv);
const char *rw_inventory_path(const rw_inventory *inv);
/* The entry of a cluster, NULL when unlisted. */
const rw_inventory_entry *rw_inventory_find(const rw_inventory *inv, const char *cluster,
                                            size_t len);
/* The entry's labels (sorted) and override flag. */
const rw_label *rw_inventory_entry_labels(const rw_inventory_entry *e, size_t *n, int *override);
/* Applies e (NULL: unlisted, scenario="unknown") to the sorted set in[];
 * out is in[] itself when nothing changes, else a new sorted array in a.
 * RW_NOMEM when the arena is exhausted. */
rw_rc rw_inventory_apply(const rw_inventory_entry *e, rw_arena *a, const rw_label *in,
                         size_t nin, rw_labels *out);
/* The same carrying label lengths along (2 per label; see
 * rw_relabel_apply_lens): *out_lens is in_lens when nothing changed, the
 * result's lengths otherwise, NULL when in_lens was NULL. */
rw_rc rw_inventory_apply_lens(const rw_inventory_entry *e, rw_arena *a, const rw_label *in,
                              const uint32_t *in_lens, size_t nin, rw_labels *out,
                              const uint32_t **out_lens);

/* ---- HA-pair dedup (ha.c) ----
 *
 * Per (tenant, cluster) one replica is elected; samples of the others are
 * dropped (the sender gets a 2xx: it must not retry them). The election
 * fails over when a standby sends a sample newer than the elected replica's
 * newest accepted sample plus failover_timeout: sample time, not arrival
 * time, so a sender that catches up on a backlog cannot take over while the
 * elected replica is current. Time is partitioned at a failover: the old
 * replica's samples up to the failover point are still taken (its in-flight
 * data), the new one's from then on; per series the store skips any sample
 * not newer than what it holds (rw_append_result.skip_old), so a failover
 * never stores a sample twice nor moves a counter backwards.
 *
 * No gap at a failover: a standby's dropped samples that are newer than the
 * elected replica's newest are kept in a bounded buffer (they are the ones
 * the elected replica has not covered yet); when that standby takes over,
 * they are handed back and stored before its current samples, so the data
 * continues from where the old replica stopped instead of after the
 * timeout (the ~30 s hole of mimir#7495). */

typedef struct rw_ha rw_ha;

typedef struct rw_ha_opts {
    const char *state_path;      /* elections persisted here (atomically); NULL = none */
    int64_t failover_timeout_ms; /* default 30 s */
    size_t max_clusters;         /* tracked (tenant, cluster) pairs; default 100000 */
    size_t buffer_bytes;         /* standby samples kept for a failover; 0 = none */
    rw_metrics *metrics;         /* may be NULL */
} rw_ha_opts;

#define RW_HA_DEFAULT_FAILOVER_MS 30000
#define RW_HA_DEFAULT_MAX_CLUSTERS 100000
#define RW_HA_DEFAULT_BUFFER_BYTES ((size_t)64 << 20)

/* Loads persisted elections (a missing file is an empty table; a corrupt
 * one is an error naming the line). */
rw_ha *rw_ha_open(const rw_ha_opts *o, rw_err *err);
/* Persists, frees. */
void rw_ha_close(rw_ha *ha);
void rw_ha_reconfigure(rw_ha *ha, int64_t failover_timeout_ms, size_t max_clusters,
                       size_t buffer_bytes);
/* Writes the elections when they changed since the last write (temporary
 * file, fsync, rename). Called periodically and at close. */
rw_rc rw_ha_persist(rw_ha *ha, rw_err *err);

/* A new elected replica's buffered samples, handed back at its failover:
 * series (labels without the replica label) with samples in time order. */
typedef struct rw_ha_backlog_series {
    const rw_label *labels;
    size_t nlabels;
    const rw_sample *samples;
    size_t nsamples;
} rw_ha_backlog_series;

typedef struct rw_ha_backlog {
    rw_ha_backlog_series *series;
    size_t n;
    void *priv;       /* owns the labels and samples */
} rw_ha_backlog;

void rw_ha_backlog_free(rw_ha_backlog *b);

/* What happened to one series' samples. */
typedef struct rw_ha_verdict {
    size_t kept;       /* samples[0..kept) are the accepted ones, in order */
    size_t dropped;    /* from a replica that is not elected for their time */
    int failover;      /* this series' samples caused a failover */
    int untracked;     /* the table is full: passed through undeduplicated */
    rw_ha_backlog *backlog; /* on a failover: the new replica's buffered samples
                               (the caller stores them first and frees them) */
} rw_ha_verdict;

/* Judges the samples of one series from `replica` of (tenant, cluster):
 * compacts samples[] to the accepted ones. labels (sorted, without the
 * replica label; may be NULL) let a standby's samples be buffered for a
 * failover. Thread-safe. */
void rw_ha_judge(rw_ha *ha, const char *tenant, const char *cluster, const char *replica,
                 const rw_label *labels, size_t nlabels, rw_sample *samples, size_t n,
                 rw_ha_verdict *v);

/* The same for the series of one request: begin takes the tracker's lock
 * once, judge_in remembers the last (cluster) entry, end releases it. */
typedef struct rw_ha_session {
    rw_ha *ha;
    const char *tenant, *cluster;
    void *entry;
    int64_t now_ms;
} rw_ha_session;
void rw_ha_begin(rw_ha *ha, rw_ha_session *s, const char *tenant);
/* lens: the labels' name/value lengths (2 per label) or NULL */
void rw_ha_judge_in(rw_ha_session *s, const char *cluster, const char *replica,
                    const rw_label *labels, const uint32_t *lens, size_t nlabels,
                    rw_sample *samples, size_t n, rw_ha_verdict *v);
void rw_ha_end(rw_ha_session *s);

/* The elected replica of (tenant, cluster), copied into buf; 0 when none. */
int rw_ha_elected(rw_ha *ha, const char *tenant, const char *cluster, char *buf, size_t cap);

/* One tracked pair, for the status API. */
typedef struct rw_ha_info {
    const char *tenant, *cluster, *elected, *previous;
    int64_t newest_ms;       /* newest sample time accepted from the elected replica */
    int64_t since_ms;        /* sample time the elected replica took over at */
    uint64_t accepted, deduplicated, failovers;
} rw_ha_info;
/* Calls fn for every tracked pair under the table's lock (fn must not call
 * back into the tracker). */
void rw_ha_each(rw_ha *ha, void (*fn)(void *ctx, const rw_ha_info *info), void *ctx);

/* ---- kubelet-endpoint dedup (kubelet.c) ----
 *
 * Per (tenant, cluster) a table of Kubernetes nodes learned from
 * kube-state-metrics series on the write path (kube_node_status_condition
 * Ready, kube_node_info internal_ip, kube_node_status_addresses,
 * kube_node_created), from kubelet_node_name (which node the kubelet at an
 * instance says it is), and optionally from a Kubernetes API server
 * (kube_api.c). When a NotReady node's IP is reused by a new node while the
 * old Node object still exists, both are kubelet targets and the same
 * kubelet series arrive twice with different `node` labels; the owner of
 * the IP keeps its series by prometheus-operator's rule (PR 6549): a node
 * whose Ready condition is known (true or false) beats one whose condition
 * is unknown or missing; then the node the instance's kubelet_node_name
 * names; then the most recently created or heartbeating node. In strict
 * mode every kubelet series of a node whose Ready is not true is dropped.
 * Without node information nothing is dropped. */

typedef struct rw_kubelet rw_kubelet;

typedef enum { RW_KUBELET_IP_REUSE = 0, RW_KUBELET_STRICT = 1 } rw_kubelet_mode;

typedef struct rw_kubelet_opts {
    rw_kubelet_mode mode;
    int64_t node_ttl_ms;      /* a node not seen in KSM data for this long (sample
                                 time, against the cluster's newest KSM sample) is
                                 forgotten; default 10 min */
    size_t max_nodes;         /* over all clusters; default 200000 */
    rw_metrics *metrics;      /* may be NULL */
} rw_kubelet_opts;

#define RW_KUBELET_DEFAULT_TTL_MS (10 * 60 * 1000)
#define RW_KUBELET_DEFAULT_MAX_NODES 200000

rw_kubelet *rw_kubelet_new(const rw_kubelet_opts *o, rw_err *err);
void rw_kubelet_free(rw_kubelet *k);
void rw_kubelet_reconfigure(rw_kubelet *k, const rw_kubelet_opts *o);

/* Is this series one the node table learns from (by metric name)? */
int rw_kubelet_is_source(const rw_label *l, size_t n);
/* Learns from one such series (labels sorted, samples in time order). */
void rw_kubelet_observe(rw_kubelet *k, const char *tenant, const char *cluster, const rw_label *l,
                        size_t n, const rw_sample *s, size_t ns);

typedef enum {
    RW_KUBELET_KEEP = 0,
    RW_KUBELET_DROP_IP_REUSE,   /* another node owns the instance's IP */
    RW_KUBELET_DROP_NOT_READY,  /* strict: the node's Ready is not true */
} rw_kubelet_decision;

/* The decision for a kubelet series with these instance and node labels
 * (either may be NULL: kept). Counts drops per cluster (not when nsamples
 * is 0: a dry run). */
rw_kubelet_decision rw_kubelet_decide(rw_kubelet *k, const char *tenant, const char *cluster,
                                      const char *instance, const char *node, size_t nsamples);

/* Nodes as the Kubernetes API lists them, for rw_kubelet_set_api_nodes. */
typedef enum { RW_NODE_READY_MISSING = 0, RW_NODE_READY_TRUE, RW_NODE_READY_FALSE,
               RW_NODE_READY_UNKNOWN } rw_node_ready;
typedef struct rw_kubelet_api_node {
    const char *name;
    rw_node_ready ready;
    const char *internal_ip, *external_ip;  /* may be NULL */
    int64_t heartbeat_ms;                    /* Ready condition's lastHeartbeatTime, 0 = none */
    int64_t created_ms;
} rw_kubelet_api_node;
/* Replaces the API-learned nodes of (tenant, cluster): the API is the truth
 * about which nodes exist there from now on. */
void rw_kubelet_set_api_nodes(rw_kubelet *k, const char *tenant, const char *cluster,
                              const rw_kubelet_api_node *nodes, size_t n);

/* GET /api/v1/kubelet/endpoints: writes the JSON `data` value (clusters with
 * their endpoint IPs, owning node and readiness, excluded claimants with the
 * reason, drop counts). tenant / cluster filter when not NULL. */
void rw_kubelet_endpoints_json(rw_kubelet *k, const char *tenant, const char *cluster,
                               const rw_principal *reader, rw_buf *out);
/* Series dropped in (tenant, cluster), for the status API. */
uint64_t rw_kubelet_dropped(rw_kubelet *k, const char *tenant, const char *cluster);

/* ---- per-tenant limits (limits.c) ----
 *
 * Token buckets for the ingestion rate and the set of active series per
 * tenant (a series is active for the window after its last sample), both
 * state that outlives a reload. Tenants are bounded (max_tenants); past it,
 * new tenants share one overflow entry. */

typedef struct rw_limits rw_limits;
typedef struct rw_limits_tenant rw_limits_tenant;

#define RW_LIMITS_MAX_TENANTS 100000

rw_limits *rw_limits_new(rw_metrics *m);
void rw_limits_free(rw_limits *l);
/* The tenant's entry (created on first use; stable for the limits' life). */
rw_limits_tenant *rw_limits_tenant_get(rw_limits *l, const char *tenant);
/* Takes n samples from the tenant's bucket (rate per second, burst: the
 * bucket's size; 0 = one second's worth). Returns 0 when admitted, else the
 * seconds until that many tokens are back (at least 1). */
int rw_limits_take(rw_limits_tenant *t, double rate, int64_t burst, uint64_t n, int64_t now_ms);

/* Active series: lock once per request around the calls for its series. */
void rw_limits_series_lock(rw_limits_tenant *t, int64_t now_ms, int64_t window_ms);
void rw_limits_series_unlock(rw_limits_tenant *t);
/* 1 when the series may be written (already active, or a new one under
 * max_series), recording it; 0 when it is new and the tenant is at its
 * limit. max_series 0 = unlimited (still counted). */
int rw_limits_series_admit(rw_limits_tenant *t, uint64_t hash, int64_t max_series);
/* Active series of a tenant right now (as of its last request). */
uint64_t rw_limits_active(rw_limits *l, const char *tenant);

/* ---- per-source status (sources.c) ----
 *
 * Per (tenant, cluster): newest sample time, samples/s over the last
 * minute, samples rejected or dropped by reason, remote-write versions
 * seen, whether the cluster is missing from the inventory. Bounded by
 * max_sources; beyond, counted as overflow. Writers accumulate a request's
 * deltas per source and add them once per request. */

typedef enum {
    RW_SRC_INVALID,          /* series breaking the label rules or a label limit */
    RW_SRC_FUTURE,           /* samples too far ahead of the clock */
    RW_SRC_OUT_OF_ORDER,
    RW_SRC_DUPLICATE,
    RW_SRC_TOO_OLD,
    RW_SRC_STORE_SERIES_LIMIT,
    RW_SRC_MAX_SERIES,       /* the tenant's active series limit */
    RW_SRC_RATE_LIMITED,
    RW_SRC__REJECTED,        /* reasons above: rejected (the sender is told) */
    RW_SRC_HA_DEDUP = RW_SRC__REJECTED, /* below: dropped on purpose (2xx) */
    RW_SRC_RELABEL_DROP,
    RW_SRC_RELABEL_INVALID,
    RW_SRC_KUBELET,
    RW_SRC__COUNT
} rw_src_reason;

const char *rw_src_reason_str(rw_src_reason r);

typedef struct rw_source_delta {
    uint64_t accepted;                 /* samples written */
    uint64_t reasons[RW_SRC__COUNT];   /* samples */
    int64_t newest_ms;                 /* newest accepted sample time, INT64_MIN = none */
    unsigned versions;                 /* bit 1: remote-write 1.0, bit 2: 2.0 */
    int unlisted;                      /* 1 missing from the inventory, 0 listed, -1 no inventory */
} rw_source_delta;

typedef struct rw_sources rw_sources;

rw_sources *rw_sources_new(size_t max_sources);
void rw_sources_free(rw_sources *s);
void rw_sources_reconfigure(rw_sources *s, size_t max_sources);
void rw_sources_add(rw_sources *s, const char *tenant, const char *cluster,
                    const rw_source_delta *d, int64_t now_ms);

/* One source, for reports. */
typedef struct rw_source_info {
    const char *tenant, *cluster;
    int64_t newest_ms, first_ms, last_ms;  /* sample time; wall clock of first/last request */
    double rate_1m;                        /* accepted samples/s over the last minute */
    uint64_t accepted;
    const uint64_t *reasons;               /* RW_SRC__COUNT */
    unsigned versions;
    int unlisted;
} rw_source_info;
/* Calls fn for each source in (tenant, cluster) order; filters when not NULL. */
void rw_sources_each(rw_sources *s, const char *tenant, const char *cluster, int64_t now_ms,
                     void (*fn)(void *ctx, const rw_source_info *in), void *ctx);
uint64_t rw_sources_overflow(rw_sources *s);
size_t rw_sources_count(rw_sources *s);

#endif
