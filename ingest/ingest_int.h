/* ingest_int.h - internals of the write path shared by its files. */
#ifndef RW_INGEST_INT_H
#define RW_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "ingest.h"

/* One decoded series, labels sorted, strings in the request arena. */
typedef struct rw_in_series {
    rw_label *labels;
    uint32_t *lens;       /* name and value length per label, or NULL (then strlen) */
    size_t nlabels;
    rw_sample *samples;
    size_t nsamples;
    uint64_t nhistograms;
    uint64_t nexemplars;
} rw_in_series;

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
    int refs;                 /* guarded by rw_ingest.mu */
} ig_settings;

struct rw_ingest {
    rw_appender appender;
    pthread_mutex_t mu;       /* guards cur and every snapshot's refs */
    ig_settings *cur;
    /* self-metrics (NULL-safe); registered once, kept across reloads */
    _Atomic size_t inflight;  /* decoded bytes of requests in rw_ingest_write now */
    rw_counter *req_v1, *req_v2, *req_bad, *req_unavailable, *req_overloaded;
    rw_counter *samples_written, *series_invalid, *histograms_rejected, *exemplars_dropped;
    rw_counter *samples_rejected[RW_REJ__COUNT];
    rw_counter *metadata_written, *bytes_received, *samples_future;
};

ig_settings *ig_settings_get(rw_ingest *ig);
void ig_settings_put(rw_ingest *ig, ig_settings *s);
/* rw_ingest_write with the caller's snapshot (the HTTP handler reads the
 * tenant header name from the same one). */
rw_rc ig_write(rw_ingest *ig, const ig_settings *s, rw_proto_version v, const char *tenant,
               const void *body, size_t len, rw_write_stats *st, rw_err *err);

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
    rw_proto_version version;
    const char *tenant;          /* header or default; "" = none */
    int64_t now_ms;
    rw_write_stats *st;
    int nreasons;                /* reasons written into st->reasons */
} rw_in_ctx;

typedef rw_rc (*rw_in_stage_fn)(rw_in_ctx *c, rw_in_batch *b, rw_err *err);

typedef struct rw_in_stage {
    const char *name;
    rw_in_stage_fn fn;
} rw_in_stage;

/* Runs every stage, then appends what is left. */
rw_rc rw_in_run_pipeline(rw_in_ctx *c, rw_in_batch *b, rw_err *err);
/* Adds one of the first few reasons to the reply (cheap once enough are in). */
void rw_in_reason(rw_in_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The request arena's cap for a body that decodes to ulen bytes: protobuf-c
 * turns every small message into a struct plus string copies, so allow that
 * expansion and a little more, never more. */
static inline size_t ig_arena_cap(size_t ulen) { return ulen * 32 + (4u << 20); }

/* decode.c: snappy + protobuf into the batch; RW_BADREQ / RW_LIMIT on failure. */
rw_rc rw_in_decode(const rw_ingest_config *c, rw_proto_version v, const void *body, size_t len,
                   rw_arena *a, rw_in_batch *out, rw_err *err);

/* The declared decoded length of a snappy body (no allocation). */
rw_rc rw_in_decode_peek_len(const void *body, size_t len, size_t *ulen);

/* The remote-write metric type enum (same numbers in 1.0 and 2.0) as text. */
const char *rw_in_metric_type_name(uint64_t t);

/* decode_v1.c: zero-copy prometheus.WriteRequest decoder. raw must have one
 * spare writable byte after raw[len]: strings are terminated in place. */
rw_rc rw_in_decode_v1(uint8_t *raw, size_t len, rw_arena *a, rw_in_batch *out, rw_err *err);

/* validate.c: checks one series against the limits and label rules (sorts
 * nothing; invalid series are reported, not fixed). */
rw_rc rw_in_validate_series(const rw_ingest_config *c, const rw_in_series *s, rw_err *err);
/* Adds (or overrides) the tenant label; the set stays sorted. */
rw_rc rw_in_set_label(rw_arena *a, rw_in_series *s, const char *name, const char *value);

#endif
