/* ingest_int.h - internals of the write path shared by its files. */
#ifndef RW_INGEST_INT_H
#define RW_INGEST_INT_H

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

struct rw_ingest {
    rw_store *store;
    rw_ingest_limits lim;
    char *tenant_header, *tenant_label, *default_tenant;
    /* self-metrics (NULL-safe) */
    _Atomic size_t inflight;  /* decoded bytes of requests in rw_ingest_write now */
    rw_counter *req_v1, *req_v2, *req_bad, *req_unavailable, *req_overloaded;
    rw_counter *samples_written, *series_invalid, *histograms_rejected, *exemplars_dropped;
    rw_counter *samples_rejected[RW_REJ__COUNT];
    rw_counter *metadata_written, *bytes_received, *samples_future;
};

/* The request arena's cap for a body that decodes to ulen bytes: protobuf-c
 * turns every small message into a struct plus string copies, so allow that
 * expansion and a little more, never more. */
static inline size_t ig_arena_cap(size_t ulen) { return ulen * 32 + (4u << 20); }

/* decode.c: snappy + protobuf into the batch; RW_BADREQ / RW_LIMIT on failure. */
rw_rc rw_in_decode(const rw_ingest *ig, rw_proto_version v, const void *body, size_t len,
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
rw_rc rw_in_validate_series(const rw_ingest *ig, const rw_in_series *s, rw_err *err);
/* Adds (or overrides) the tenant label; the set stays sorted. */
rw_rc rw_in_set_label(rw_arena *a, rw_in_series *s, const char *name, const char *value);

#endif
