/* ingest_int.h - internals of the write path shared by its files. */
#ifndef RW_INGEST_INT_H
#define RW_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "clean.h"
#include "core/relabel.h"
#include "core/budget.h"
#include "ingest.h"

/* ---- the series cache (series_cache.c) ----
 * From a series' label bytes as sent (with the tenant and the settings
 * generation) to what the write path learned of it: the hash of its final
 * labels, the store's id of it and the caller's flags. Thread-safe; bounded
 * by the entries given to new (0: no cache, NULL). */
typedef struct rw_in_cache rw_in_cache;
typedef struct rw_in_cache_key {
    uint64_t lo, hi;
} rw_in_cache_key;
typedef struct rw_in_cache_val {
    uint64_t hash;
    uint32_t ref;
    uint16_t flags;           /* the caller's, RW_IN_CACHE_FLAGS bits */
    uint16_t aux;             /* the caller's */
} rw_in_cache_val;
#define RW_IN_CACHE_FLAGS 0x7ffu
rw_in_cache *rw_in_cache_new(size_t max_entries);
void rw_in_cache_free(rw_in_cache *c);
/* The seed of a request's keys: per process, settings generation, tenant. */
uint64_t rw_in_cache_seed(const rw_in_cache *c, uint64_t gen, const char *tenant);
rw_in_cache_key rw_in_cache_key_of(const rw_in_cache *c, uint64_t seed, const void *raw,
                                   size_t len);
/* The key of a label set by its strings (2.0, whose bytes as sent are
 * references into the request's own symbol table). */
rw_in_cache_key rw_in_cache_key_labels(const rw_in_cache *c, uint64_t seed, const rw_label *l,
                                       const uint32_t *lens, size_t n);
/* Brings k's bucket towards the CPU cache (a lookup a few series later). */
void rw_in_cache_prefetch(rw_in_cache *c, rw_in_cache_key k);
int rw_in_cache_get(rw_in_cache *c, rw_in_cache_key k, rw_in_cache_val *out);
/* Adds or replaces; gen (the settings generation, truncated) lets entries of
 * older generations go first when a bucket is full. */
void rw_in_cache_put(rw_in_cache *c, rw_in_cache_key k, uint16_t gen, const rw_in_cache_val *v);
size_t rw_in_cache_entries(rw_in_cache *c);

/* One decoded series, labels sorted, strings in the request arena. */
typedef struct rw_in_series {
    rw_label *labels;
    uint32_t *lens;       /* name and value length per label, or NULL (then strlen) */
    size_t nlabels;
    rw_sample *samples;
    size_t nsamples;
    uint32_t nhistograms;
    uint32_t nexemplars;
    uint32_t labels_over; /* > 0: the series has this many labels, more than
                             max_labels_per_series; neither its labels nor
                             its samples were decoded (nsamples still counts
                             them): validation rejects it */
    int32_t src;          /* per-request source index + 1 (0 = not looked up yet) */
    uint8_t skip_old;     /* HA series: the store skips samples it already holds newer */
    uint8_t ascii;        /* the decoder saw every byte of the label fields,
                             strings included, be ASCII and not NUL: the
                             strings need no UTF-8 or NUL check (lens set) */
    /* the series cache (series_cache.c, pipeline.c); the fields are packed:
       a request holds one of these per series */
    uint8_t keyed;        /* key set (by the decoder, when asked); else not cacheable */
    uint8_t cached;       /* found: labels stay the sender's, the stages before
                             the sink skip the series, hash and ref are those
                             of the stored series */
    uint8_t nocache;      /* a stage's verdict depends on more than the labels
                             and the settings (HA pair, KSM node series): not
                             cached */
    uint8_t inv;          /* inventory verdict on its cluster: RW_IN_INV_* */
    uint8_t kube;         /* cached, and judged by the kubelet dedup by its
                             node and instance as sent (raw_node, raw_inst) */
    uint8_t kube_sel;     /* not cached, and the kubelet dedup judged it */
    /* places among the labels as sent, + 1 (0: none, or beyond 255) */
    uint8_t raw_cl_idx, raw_node_idx, raw_inst_idx;
    uint32_t raw_len;
    uint32_t ref;         /* cached: the store's id of the series */
    uint32_t lazy_n;      /* cached and its labels not decoded (nlabels 0):
                             this many, decoded from raw when a message or a
                             retry needs them (rw_in_decode_v1_labels) */
    rw_in_cache_key key;  /* of the labels as sent (keyed) */
    uint64_t hash;        /* cached: hash of the final label set */
    const uint8_t *raw;   /* the label fields' bytes as sent, when contiguous
                             (1.0's decoder), or NULL */
    /* the values the stages read of the labels as sent (cached: copied or
       pointing into the request; not cached: noted before the stages) */
    const char *raw_cluster, *raw_node, *raw_inst;
} rw_in_series;

/* The series cache entry's flags: the inventory's verdict, whether the
 * kubelet dedup judges the series (RW_IN_CF_KUBE: its aux holds where its
 * node and instance labels are among the labels as sent, + 1, one byte
 * each), and where the cluster label is (+ 1; 0: none). */
#define RW_IN_CF_INV_MASK 3u
#define RW_IN_CF_KUBE 4u
#define RW_IN_CF_CL_SHIFT 3
#define RW_IN_CF_CL_MAX 0xffu

enum { RW_IN_INV_NONE, RW_IN_INV_LISTED, RW_IN_INV_UNLISTED };

/* A decoded request: the batch the pipeline stages work on. */
typedef struct rw_in_batch {
    rw_in_series *series;
    size_t nseries;
    rw_metadata *metadata;
    size_t nmetadata;
} rw_in_batch;

/* One snapshot of the settings. A request takes a reference for its whole
 * life (ig_settings_get / _put); a reload publishes a new snapshot and the
 * old one is freed when its last request ends, so settings change between
 * requests, never inside one, and a reload never waits for a request. */
typedef struct ig_settings {
    rw_ingest_config cfg;     /* owned deep copy */
    uint64_t gen;             /* 1, 2, ... per snapshot: the series cache's
                                 entries are valid for one generation */
    int refs;                 /* guarded by rw_ingest.mu */
} ig_settings;

struct rw_ingest {
    rw_appender appender;
    pthread_mutex_t mu;       /* guards cur, gen and every snapshot's refs */
    ig_settings *cur;
    uint64_t gen;             /* the newest settings generation */
    rw_in_cache *cache;       /* NULL when ingest.series_cache_size is 0 */
    rw_counter *cache_hits, *cache_misses;
    /* self-metrics (NULL-safe); registered once, kept across reloads */
    rw_budget *budget;        /* max_inflight_bytes: request bodies (charged by the HTTP
                                 layer as they arrive), decoded bodies and decoding
                                 arenas of the requests in flight */
    rw_counter *req_v1, *req_v2, *req_bad, *req_unavailable, *req_overloaded;
    rw_counter *samples_written, *series_invalid, *histograms_rejected, *exemplars_dropped;
    rw_counter *samples_rejected[RW_REJ__COUNT];
    rw_counter *metadata_written, *bytes_received, *samples_future;
    /* ingest-time cleaning: state kept across reloads (clean.h) */
    rw_ha *ha;
    rw_kubelet *kubelet;
    struct rw_kube_api *kapi;     /* the Kubernetes API node poller; NULL when off */
    pthread_mutex_t kapi_mu;      /* serialises reconfiguring the poller */
    rw_limits *limits;
    rw_sources *sources;
    pthread_mutex_t pool_mu;      /* guards pool */
    struct ig_scratch *pool;      /* per-request scratch kept for reuse */
    rw_counter *relabel_dropped, *relabel_invalid, *relabel_failed, *inventory_unlisted;
    rw_counter *ha_deduplicated, *ha_skipped, *kubelet_dropped[2], *rate_limited;
    rw_counter *max_series_rejected, *limit_rejected;
};

/* Scratch one request needs and later requests can reuse (regex match data
 * with its JIT stack, relabel buffers): kept in a small pool. */
typedef struct ig_scratch {
    rw_relabel_state *rs;
    rw_regex_md *md;              /* for selectors */
    struct ig_scratch *next;
} ig_scratch;

ig_scratch *ig_scratch_get(rw_ingest *ig);
void ig_scratch_put(rw_ingest *ig, ig_scratch *s);

/* One source's counts within a request (flushed to rw_sources at its end). */
typedef struct ig_src {
    const char *cluster;          /* the cluster label's value ("" = none) */
    rw_source_delta d;
} ig_src;

ig_settings *ig_settings_get(rw_ingest *ig);
void ig_settings_put(rw_ingest *ig, ig_settings *s);
/* rw_ingest_write with the caller's snapshot (the HTTP handler reads the
 * tenant header name from the same one); body_charged: bytes of the body
 * the caller already holds in the in-flight budget. */
rw_rc ig_write(rw_ingest *ig, const ig_settings *s, rw_proto_version v, const char *tenant,
               const void *body, size_t len, size_t body_charged, rw_write_stats *st,
               rw_err *err);

/* ---- the pipeline ----
 *
 * A decoded request (an rw_in_batch) flows through a table of stages in
 * order (pipeline.c). A stage may rewrite a series' labels (keeping them
 * sorted, strings in the request arena) or drop series or samples (setting
 * nsamples to 0 drops a series; the stage counts why). After the last
 * stage every remaining series is hashed once and appended. */
typedef struct rw_in_ctx {
    rw_ingest *ig;
    const rw_ingest_config *cfg; /* the request's settings snapshot */
    rw_arena *a;                 /* the request arena */
    struct rw_in_mem *mem;       /* its reservation (NULL: no admission) */
    rw_proto_version version;
    const char *tenant;          /* header or default; "" = none */
    int64_t now_ms;
    rw_write_stats *st;
    int nreasons;                /* reasons written into st->reasons */
    /* cleaning */
    ig_scratch *scr;             /* per-request scratch (relabel state, match data) */
    const rw_ingest_tenant_limits *tl; /* the tenant's limits entry (or "default"), or NULL */
    rw_limits_tenant *lt;        /* held (locked) by the sink's active-series check */
    ig_src *srcs;                /* sources seen in this request (arena) */
    size_t nsrcs, capsrcs;
    int32_t last_src;
    uint64_t ha_skipped;         /* samples the store skipped as already held (HA) */
    uint64_t gen;                /* the settings snapshot's generation */
    uint64_t cache_seed;         /* keys of this request's series (cache on) */
    int retry;                   /* the pass for series whose cached ref was gone */
    /* during the sink's append: its batch, the series handed to the store
       and the batch index of each (for the store's reject callback) */
    rw_in_batch *sink_batch;
    const struct rw_append_series *sink_as;
    const size_t *sink_from;
} rw_in_ctx;

/* kube_api.c: starts, restarts or stops the Kubernetes API node poller so
 * that it matches the settings (no change: nothing happens). */
rw_rc rw_in_kube_api_apply(rw_ingest *ig, const rw_ingest_kube_api_config *c, rw_err *err);
void rw_in_kube_api_stop(rw_ingest *ig);
/* For the sources report: the poller's last outcome (NULL when off). */
typedef struct rw_in_kube_api_status {
    int64_t last_ok_ms, last_try_ms;
    char last_error[256];
    size_t nodes;
} rw_in_kube_api_status;
int rw_in_kube_api_status_get(rw_ingest *ig, rw_in_kube_api_status *out);
/* The running poller's settings as JSON (null when off). */
void rw_in_kube_api_settings_json(rw_ingest *ig, rw_buf *b);

/* clean_stages.c: the cleaning stages and the sink's share of them */
rw_rc rw_in_stage_relabel(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
rw_rc rw_in_stage_inventory(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
rw_rc rw_in_stage_ha(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
rw_rc rw_in_stage_kubelet(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
rw_rc rw_in_stage_rate(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
/* The request's source index for a series (by its cluster label now). */
ig_src *rw_in_src(rw_in_ctx *c, rw_in_series *s);
ig_src *rw_in_src_labels(rw_in_ctx *c, const rw_label *l, size_t n);
/* Notes n samples of s dropped or rejected for reason r. */
void rw_in_src_note(rw_in_ctx *c, rw_in_series *s, rw_src_reason r, uint64_t n);
/* Sink: the tenant's active-series limit. begin/end bracket the batch (one
 * lock); admit is 0 when s is a new series over the limit (counted, reason
 * given). */
void rw_in_series_limit_begin(rw_in_ctx *c);
int rw_in_series_limit_admit(rw_in_ctx *c, rw_in_series *s, uint64_t hash);
void rw_in_series_limit_end(rw_in_ctx *c);
/* End of a request: sources and counters. */
void rw_in_clean_finish(rw_in_ctx *c);
/* The tenant's limits entry from the settings ("default" when it has none). */
const rw_ingest_tenant_limits *rw_in_tenant_limits(const rw_ingest_config *cfg,
                                                   const char *tenant);
/* Label limits in force for a tenant (its entry, else the ingest-wide ones). */
typedef struct rw_in_label_limits {
    int64_t max_labels, max_name, max_value;
} rw_in_label_limits;
rw_in_label_limits rw_in_label_limits_for(const rw_ingest_config *cfg,
                                          const rw_ingest_tenant_limits *tl);

typedef rw_rc (*rw_in_stage_fn)(rw_in_ctx *c, rw_in_batch *b, rw_err *err);

typedef struct rw_in_stage {
    const char *name;
    rw_in_stage_fn fn;
} rw_in_stage;

/* Runs every stage, then appends what is left. */
rw_rc rw_in_run_pipeline(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
/* Adds one of the first few reasons to the reply (cheap once enough are in). */
void rw_in_reason(rw_in_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- decoding memory ----
 *
 * A decoder counts what a body holds (series, labels, samples) in a scan
 * before it allocates, and reserves the exact arena size it will need
 * first: the arena's cap is raised to what the request holds of the
 * in-flight budget, so a request can never hold more memory than it was
 * granted, and a hostile body (millions of empty series or labels) is
 * refused before anything is allocated for it. */
typedef struct rw_in_mem {
    rw_arena *a;
    rw_budget *budget; /* NULL: no admission (tests, fuzzing): the arena's own
                          cap, if any, is the only bound */
    size_t held;       /* budget bytes this request holds; the caller gives
                          them back when the request ends */
    size_t block;      /* the arena's block size */
    size_t outside;    /* bytes of this request the budget holds elsewhere (its
                          body, charged by the HTTP layer as it arrived) */
    rw_in_cache *cache; /* 1.0's decoder looks each series up in it (or NULL) */
    uint64_t cache_seed; /* rw_in_cache_seed of the request */
} rw_in_mem;

/* Makes sure the request may hold `total` bytes of arena (rw_arena_used
 * counts): takes what it lacks from the budget and raises the arena's cap.
 * RW_LIMIT when total passes the budget's whole limit (the request is too
 * complex to decode, whatever else runs), RW_AGAIN when other requests hold
 * the rest (retry later). */
rw_rc rw_in_mem_reserve(rw_in_mem *m, size_t total, rw_err *err);
/* Reserves room for `more` bytes of allocations (each a multiple of 16)
 * beyond what the arena holds now, in one block (rw_arena_reserve), so the
 * counted allocations that follow fit without waste. */
rw_rc rw_in_mem_grow(rw_in_mem *m, size_t more, rw_err *err);

/* Arena bytes the pipeline's stages may add for a batch of nseries series
 * with nlabels labels in all: part of every request's reservation. It
 * covers the tenant label's copies of the label arrays, the append array,
 * a relabeling stage's copy of every label set, and a fixed amount for
 * allocations every request makes (even one without series). A stage that
 * allocates more per series or label must raise it: past it the request
 * fails with "request too complex". */
static inline size_t rw_in_stage_bytes(size_t nseries, size_t nlabels)
{
    return (16u << 10) + nseries * (2 * 16 + 2 * 16 + 64 + 64) + nlabels * 48;
}

/* decode.c: snappy + protobuf into the batch; RW_BADREQ / RW_LIMIT on
 * failure, RW_AGAIN when the in-flight budget cannot take the request now. */
rw_rc rw_in_decode_mem(const rw_ingest_config *c, rw_proto_version v, const void *body,
                       size_t len, rw_in_mem *m, rw_in_batch *out, rw_err *err);
/* rw_in_decode_mem without a budget, into the caller's arena (tests,
 * fuzzing). */
rw_rc rw_in_decode(const rw_ingest_config *c, rw_proto_version v, const void *body, size_t len,
                   rw_arena *a, rw_in_batch *out, rw_err *err);

/* The declared decoded length of a snappy body (no allocation). */
rw_rc rw_in_decode_peek_len(const void *body, size_t len, size_t *ulen);

/* The remote-write metric type enum (same numbers in 1.0 and 2.0) as text. */
const char *rw_in_metric_type_name(uint64_t t);

/* decode_v1.c / decode_v2.c: zero-copy decoders of prometheus.WriteRequest
 * and io.prometheus.write.v2.Request. raw must have one spare writable byte
 * after raw[len]: strings are terminated in place. More than
 * max_series_per_request series is RW_LIMIT before anything is allocated
 * for them; a series with more than max_labels_per_series labels is
 * counted, not decoded (labels_over). */
rw_rc rw_in_decode_v1(uint8_t *raw, size_t len, const rw_ingest_config *c, rw_in_mem *m,
                      rw_in_batch *out, rw_err *err);
rw_rc rw_in_decode_v2(uint8_t *raw, size_t len, const rw_ingest_config *c, rw_in_mem *m,
                      rw_in_batch *out, rw_err *err);
/* A cached series' labels, decoded from its bytes as sent into arrays
 * taken from the request arena a (within what the decoder reserved for
 * them); 0 at once for a series whose labels are decoded. -1 on a
 * malformed span (cannot be: it was parsed) or no memory. */
int rw_in_decode_v1_labels(rw_in_series *s, rw_arena *a);
/* 2.0's decoder, its labels decoded: keys each series by its label strings
 * and marks those the cache (rw_in_mem.cache) knows. */
struct rw_in_mem;
void rw_in_cache_find_labels(struct rw_in_mem *m, rw_in_series *series, size_t n);

/* validate.c: checks one series against the limits and label rules (sorts
 * nothing; invalid series are reported, not fixed). */
rw_rc rw_in_validate_series(const rw_ingest_config *c, const rw_in_series *s, rw_err *err);
/* The same with the limits in force for the request's tenant. */
rw_rc rw_in_validate_series_lim(const rw_in_label_limits *lim, const rw_in_series *s,
                                rw_err *err);
/* Adds (or overrides) the tenant label; the set stays sorted. */
rw_rc rw_in_set_label(rw_arena *a, rw_in_series *s, const char *name, const char *value);

#endif
