/* store.h - the public interface of rwgate's storage layer.
 *
 * The store holds float samples of many series in N shards. A series belongs
 * to the shard `hash % nshards` where hash is rw_labels_hash() of its full
 * label set. Recent samples live in memory (compressed head chunks, per
 * series), made durable by a store-wide write-ahead log (<dir>/wal/); older
 * ones in blocks: each shard owns one SQLite database file
 * `<dir>/shard-<k>.db` holding its series (label sets as symbol ids) and its
 * blocks - per series one part of columnar, zstd-compressed values, with
 * the timestamp columns the series of one scrape target share stored once.
 * In memory each shard has a postings index (label name -> value -> series).
 * See store/FORMAT.md for the on-disk format.
 *
 * Threading: every function may be called from any thread concurrently.
 * Appends to one shard are serialised by the shard's lock; readers see a
 * consistent snapshot per shard.
 *
 * Durability: rw_store_append() returns RW_OK only once every sample it
 * accepted (and everything appended before it) is in the WAL on disk: a 2xx
 * reply built on RW_OK survives kill -9 and power loss. Concurrent appends
 * share one WAL write and sync (group commit), however many shards they
 * touch. */
#ifndef RW_STORE_H
#define RW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/labels.h"
#include "core/matcher.h"
#include "core/metrics.h"

typedef struct rw_store rw_store;

/* The store's configuration: the `store:` section of the config file, and
 * what embedders and tests fill in directly. The rows of
 * rw_store_config_table (store_config.c) hold every default; a zero field
 * given to rw_store_open takes that default. */
typedef struct rw_store_opts {
    char *dir;                  /* data directory, created if missing */
    int64_t nshards;            /* 0 = number of CPUs; fixed for a data directory
                                   (stored in it) */
    int64_t retention_ms;       /* chunks whose newest sample is older than
                                   (newest sample in the store - retention) are
                                   dropped; 0 = keep forever */
    int64_t busy_timeout_ms;    /* SQLite busy timeout of flushes and retention */
    int64_t max_pending_bytes;  /* per shard: WAL entries not yet committed before
                                   appends fail RW_AGAIN (disk trouble) */
    int64_t checkpoint_interval_ms; /* how often retention runs */
    int64_t checkpoint_bytes;   /* a checkpoint (every shard's head snapshot, then
                                   the WAL before it deleted) when the WAL grows
                                   past this: bounds the replay after a crash; at
                                   least one segment and a quarter of the last
                                   snapshots' size */
    int64_t wal_segment_bytes;  /* WAL segment files are this big (the unit the WAL
                                   is deleted in); at least 16 bytes per series */
    int64_t ooo_window_ms;      /* samples up to this far behind their series' newest
                                   are accepted out of order; 0 = off */
    int64_t max_future_ms;      /* not part of the table (ingest.max_future):
                                   retention and the too-old check measure from the
                                   newest sample at most this far ahead of the wall
                                   clock (later ones are stored but do not count, so
                                   one far-future sample cannot move the window);
                                   0 = the wall clock itself */
    int64_t max_series;         /* series the store may hold, 0 = unlimited. Applied per
                                   shard as ceil(max_series / nshards) (series spread
                                   evenly by hash); a new series beyond it is rejected
                                   (RW_REJ_SERIES_LIMIT), known series keep ingesting */
    int64_t max_metadata;       /* metric families with metadata, 0 = unlimited; entries
                                   for new families beyond it are refused (RW_LIMIT) */
    int64_t read_cache_bytes;   /* SQLite page cache of the shards' query connections,
                                   all shards together (at least 2 MiB a shard) */
    rw_metrics *metrics;        /* may be NULL; not part of the table */
} rw_store_opts;

struct rw_cfg_table;
extern const struct rw_cfg_table rw_store_config_table;

/* Opens (creating or recovering) every shard. Logs what it does: shards opened,
 * WAL records replayed (with progress on long replays), series and chunks
 * loaded, time taken. A torn or corrupt WAL tail is truncated and logged. */
rw_store *rw_store_open(const rw_store_opts *opts, rw_err *err);
/* Checkpoints every shard (so the next open replays nothing), logs what it
 * persisted, closes. Callers must have stopped appending. */
void rw_store_close(rw_store *s);

int rw_store_nshards(const rw_store *s);

/* ---- write path ---- */

typedef struct rw_sample {
    int64_t t; /* ms since epoch */
    double v;  /* the stale marker is the NaN with bits 0x7ff0000000000002 */
} rw_sample;

#define RW_STALE_NAN_BITS 0x7ff0000000000002ULL
/* Inline: readers test every sample they decode. */
static inline int rw_is_stale_nan(double v)
{
    uint64_t u;
    __builtin_memcpy(&u, &v, sizeof u);
    return u == RW_STALE_NAN_BITS;
}
double rw_stale_nan(void);

typedef struct rw_append_series {
    const rw_label *labels;  /* validated, sorted (rw_labels_validate) */
    size_t nlabels;
    uint64_t hash;           /* rw_labels_hash(labels, nlabels) */
    const rw_sample *samples;
    size_t nsamples;         /* in the order the sender sent them */
    const uint32_t *lens;    /* optional: (name, value) length per label, which
                                spares the series lookup its strcmp calls */
    uint32_t ref;            /* optional: the series' id from an earlier append
                                (rw_append_result.refs), 0 = none: the lookup
                                then compares the id, not the labels */
    uint8_t ref_only;        /* with ref: labels are not this series' own (the
                                caller skipped computing them), so when the ref
                                is gone nothing is stored and the series is
                                reported in rw_append_result.gone */
} rw_append_series;

/* Why one sample was not stored. */
typedef enum {
    RW_REJ_OUT_OF_ORDER,  /* older than the series' newest sample */
    RW_REJ_DUPLICATE,     /* same timestamp as the newest, different value */
    RW_REJ_TOO_OLD,       /* older than the retention window */
    RW_REJ_SERIES_LIMIT,  /* a new series while the store holds max_series */
    RW_REJ__COUNT
} rw_reject_reason;

const char *rw_reject_reason_str(rw_reject_reason r);

typedef void (*rw_reject_fn)(void *ctx, const rw_append_series *series, size_t sample_index,
                             rw_reject_reason reason);

typedef struct rw_append_result {
    uint64_t samples_written;   /* accepted, including identical resends */
    uint64_t rejected[RW_REJ__COUNT];
    uint64_t series_created;
    rw_reject_fn on_reject;     /* optional, called for every rejected sample */
    void *on_reject_ctx;
    /* optional, one byte per series of the batch: when nonzero, a sample of
       that series not newer than the series' newest is skipped silently
       (counted in skipped, neither written nor rejected): the HA dedup
       stage's "already held from the other replica" */
    const uint8_t *skip_old;
    uint64_t skipped;
    rw_reject_fn on_skip;       /* optional, called for every skipped sample (reason
                                   out_of_order or duplicate_timestamp) */
    /* optional outputs, one entry per series of the batch, zeroed by the
       caller: refs gets the id of the series each was appended to (0 when
       none: rejected whole, or gone); gone[i] is set for a ref_only series
       whose ref no longer exists (deleted by retention), counted in ngone */
    uint32_t *refs;
    uint8_t *gone;
    uint64_t ngone;
} rw_append_result;

/* Appends a batch. Per-sample rejections are counted in *res and do not fail
 * the call (the very same sample sent again - same timestamp and value - is
 * accepted silently and counted as written). Returns RW_OK once everything
 * accepted is durable; RW_AGAIN (busy, too much unsynced data) or RW_IO
 * (disk full, fsync failed) when it could not be made durable, in which case
 * the caller answers 503 and the sender retries. */
rw_rc rw_store_append(rw_store *s, const rw_append_series *series, size_t n,
                      rw_append_result *res, rw_err *err);

/* rw_store_append without the wait for durability: returns once the
 * samples are visible to readers (RW_AGAIN when a shard is backed up, as
 * above). rw_store_sync then waits until everything appended before it is
 * durable. Rule evaluation appends each rule's results this way (a later
 * rule reads them at once) and syncs once per group evaluation. */
rw_rc rw_store_append_nowait(rw_store *s, const rw_append_series *series, size_t n,
                             rw_append_result *res, rw_err *err);
rw_rc rw_store_sync(rw_store *s, rw_err *err);

/* Metric metadata (type, help, unit per metric family), last write wins. */
typedef struct rw_metadata {
    const char *metric;
    const char *type;   /* "counter", "gauge", "histogram", "gaugehistogram",
                           "summary", "info", "stateset", "unknown" */
    const char *help;
    const char *unit;
} rw_metadata;

/* Entries for families beyond opts.max_metadata are not stored: RW_LIMIT
 * once the others are (err says how many were refused). */
rw_rc rw_store_put_metadata(rw_store *s, const rw_metadata *md, size_t n, rw_err *err);
/* All metadata (or only `metric` when not NULL), strings in arena, sorted by
 * metric name; at most `limit` entries when limit > 0. */
rw_rc rw_store_get_metadata(rw_store *s, const char *metric, size_t limit, rw_arena *a,
                            rw_metadata **out, size_t *nout, rw_err *err);

/* ---- read path ---- */

typedef struct rw_series_data {
    rw_label *labels;   /* sorted; strings in the caller's arena */
    size_t nlabels;
    int64_t *t;         /* ascending; in the caller's arena */
    double *v;
    size_t n;           /* samples in [mint, maxt] (stale markers included) */
    uint64_t ref;       /* opaque reference to the stored series, for
                           rw_store_read_samples; valid while the store is
                           open (a series deleted by retention is not
                           found again: its ref is never reused) */
} rw_series_data;

enum {
    RW_SELECT_LABELS_ONLY = 1, /* no samples: t/v NULL, n 0; a series is
                                  returned if it has any sample in range */
    RW_SELECT_LAST = 2,        /* only the newest sample in [mint, maxt] of
                                  each series (n is 1): what an instant
                                  selector or /federate needs. Decodes at most
                                  one chunk per series, none when that sample
                                  is the series' newest. */
};

/* Every series that matches all matchers and has at least one sample in
 * [mint, maxt] (inclusive), sorted by label set. At least one matcher must
 * not match the empty string (like Prometheus) or RW_BADREQ is returned.
 * max_samples > 0 caps the total samples returned (RW_LIMIT when exceeded). */
rw_rc rw_store_select(rw_store *s, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err);

/* Samples in [mint, maxt] of series found by an earlier rw_store_select
 * (typically with RW_SELECT_LABELS_ONLY), without running the matchers
 * again: lets a reader select labels once, then decode the samples of one
 * batch of series at a time into a scratch arena. For each of series[0..n)
 * it sets t, v and n from the series' ref (labels are not touched); a series
 * deleted meanwhile (retention) gets n = 0, as does one without samples in
 * range. flags: 0 or RW_SELECT_LAST. max_samples > 0 caps the samples this
 * call decodes (RW_LIMIT when exceeded); *decoded (may be NULL) gets their
 * number. Each shard's lock is taken once per call. */
rw_rc rw_store_read_samples(rw_store *s, rw_series_data *series, size_t n, int64_t mint,
                            int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                            size_t *decoded, rw_err *err);

/* Sorted, unique label names / values of `name` over series that match all
 * matchers (nms may be 0: all series) and have samples in [mint, maxt].
 * Strings in the arena. */
rw_rc rw_store_label_names(rw_store *s, const rw_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err);
rw_rc rw_store_label_values(rw_store *s, const char *name, const rw_matcher *ms, size_t nms,
                            int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                            rw_err *err);

/* ---- narrow interfaces for the layers above ----
 *
 * The write path and rule evaluation append through an rw_appender; the
 * PromQL engine, /federate, remote-read and the metadata API read through
 * an rw_querier. The store provides both (rw_store_appender,
 * rw_store_querier); other implementations wrap or replace them (reads
 * scoped to a tenant, forwarding to peers, remote stores) without the
 * engine or the ingest pipeline knowing. The functions have the contracts of
 * the rw_store_* functions of the same names above. */
typedef struct rw_appender_ops {
    rw_rc (*append)(void *ctx, const rw_append_series *series, size_t n, rw_append_result *res,
                    rw_err *err);
    rw_rc (*put_metadata)(void *ctx, const rw_metadata *md, size_t n, rw_err *err);
    /* optional (NULL: append is all there is): append visible at once and
     * durable only after sync, which covers everything appended before it */
    rw_rc (*append_nowait)(void *ctx, const rw_append_series *series, size_t n,
                           rw_append_result *res, rw_err *err);
    rw_rc (*sync)(void *ctx, rw_err *err);
} rw_appender_ops;

typedef struct rw_appender {
    const rw_appender_ops *ops;
    void *ctx;
} rw_appender;

struct rw_querier;
typedef struct rw_querier_ops {
    rw_rc (*select)(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                    int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                    size_t *nout, rw_err *err);
    rw_rc (*read_samples)(void *ctx, rw_series_data *series, size_t n, int64_t mint,
                          int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                          size_t *decoded, rw_err *err);
    rw_rc (*label_names)(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint,
                         int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err);
    rw_rc (*label_values)(void *ctx, const char *name, const rw_matcher *ms, size_t nms,
                          int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                          rw_err *err);
    /* Optional: the same querier with a deadline (rw_mono_ns clock): its
     * reads give up with RW_TIMEOUT once the deadline has passed, checked
     * inside series selection too (regex matchers over many values). The
     * new querier's state lives in `a`. A wrapper forwards this to what it
     * wraps and wraps the result. NULL: the querier has no deadlines. */
    int (*with_deadline)(void *ctx, int64_t deadline_ns, rw_arena *a, struct rw_querier *out);
} rw_querier_ops;

typedef struct rw_querier {
    const rw_querier_ops *ops;
    void *ctx;
} rw_querier;

/* q with a deadline when q supports one (and memory allows), else q. */
static inline rw_querier rw_querier_with_deadline(const rw_querier *q, int64_t deadline_ns,
                                                  rw_arena *a)
{
    rw_querier out = *q;
    if (deadline_ns && q->ops->with_deadline && q->ops->with_deadline(q->ctx, deadline_ns, a, &out) < 0)
        out = *q;
    return out;
}

/* The store as an appender / a querier (valid while the store is open). */
rw_appender rw_store_appender(rw_store *s);
rw_querier rw_store_querier(rw_store *s);

/* Calls through an interface, for readability at call sites. */
static inline rw_rc rw_append(const rw_appender *ap, const rw_append_series *series, size_t n,
                              rw_append_result *res, rw_err *err)
{
    return ap->ops->append(ap->ctx, series, n, res, err);
}
static inline rw_rc rw_query_select(const rw_querier *q, const rw_matcher *ms, size_t nms,
                                    int64_t mint, int64_t maxt, int flags, size_t max_samples,
                                    rw_arena *a, rw_series_data **out, size_t *nout, rw_err *err)
{
    return q->ops->select(q->ctx, ms, nms, mint, maxt, flags, max_samples, a, out, nout, err);
}

/* ---- status ---- */

typedef struct rw_store_stats {
    uint64_t series;
    uint64_t head_chunks;      /* open chunks in memory */
    uint64_t persisted_chunks; /* completed chunks in SQLite */
    uint64_t samples_in_head;
    int64_t min_time, max_time; /* over all data; INT64_MAX/INT64_MIN when empty */
    uint64_t db_bytes;         /* size of all database files */
} rw_store_stats;

void rw_store_get_stats(rw_store *s, rw_store_stats *st);

/* Cardinality for /api/v1/status/tsdb: top `limit` metric names by series
 * count, label names by number of values, label=value pairs by series count. */
typedef struct rw_stat_entry {
    char *name;
    uint64_t value;
} rw_stat_entry;

typedef struct rw_store_cardinality {
    rw_stat_entry *by_metric;      size_t n_by_metric;
    rw_stat_entry *label_values;   size_t n_label_values;   /* label name -> #values */
    rw_stat_entry *by_label_pair;  size_t n_by_label_pair;  /* "name=value" -> #series */
    rw_stat_entry *memory_by_label;size_t n_memory_by_label;/* label name -> bytes of values */
} rw_store_cardinality;

rw_rc rw_store_cardinality_top(rw_store *s, size_t limit, rw_arena *a,
                               rw_store_cardinality *out, rw_err *err);

/* Runs retention and checkpoints now (they also run on their own in a
 * background thread). For tests and operations. */
rw_rc rw_store_maintain(rw_store *s, rw_err *err);
/* Writes a checkpoint now: every shard's head snapshot (FORMAT.md), then the
 * WAL before it is deleted. The maintenance thread does this whenever the
 * WAL passes checkpoint_bytes. For tests and operations. */
rw_rc rw_store_checkpoint(rw_store *s, rw_err *err);

#endif
