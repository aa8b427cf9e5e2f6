/* decode.c - from a remote-write body to a batch of series (first step of
 * the write path, after content negotiation).
 *
 * Snappy's declared uncompressed length is read and checked against the
 * limit before anything is allocated. Remote-write 1.0 bodies go to the
 * zero-copy decoder of decode_v1.c; 2.0 bodies are unpacked by protobuf-c
 * with an allocator that draws from the request arena (capped, so a hostile
 * message that expands into millions of tiny objects fails instead of
 * exhausting memory). Remote-write 2.0 label references are resolved against
 * the symbol table with bounds checks. Nothing here validates label sets:
 * that is validate.c's job, per series, so one bad series does not fail the
 * request. */
#include <snappy-c.h>
#include <string.h>
#include "ingest_int.h"
#include "proto/write_v2.pb-c.h"

static void *arena_alloc(void *ctx, size_t n) { return rw_arena_alloc(ctx, n); }
static void arena_free(void *ctx, void *p) { (void)ctx; (void)p; }

const char *rw_in_metric_type_name(uint64_t t)
{
    static const char *const names[] = {"unknown", "counter", "gauge", "histogram",
                                        "gaugehistogram", "summary", "info", "stateset"};
    return t < 8 ? names[t] : "unknown";
}

static rw_rc copy_samples(rw_arena *a, rw_in_series *s, size_t n,
                          Io__Prometheus__Write__V2__Sample **src)
{
    s->nsamples = n;
    s->samples = n ? rw_arena_alloc(a, n * sizeof *s->samples) : NULL;
    if (n && !s->samples)
        return RW_LIMIT;
    for (size_t i = 0; i < n; i++) {
        s->samples[i].t = src[i]->timestamp;
        s->samples[i].v = src[i]->value;
    }
    return RW_OK;
}

static rw_rc decode_v2(const uint8_t *raw, size_t n, rw_arena *a, ProtobufCAllocator *pa,
                       rw_in_batch *out, rw_err *err)
{
    Io__Prometheus__Write__V2__Request *rq = io__prometheus__write__v2__request__unpack(pa, n, raw);
    if (!rq)
        return RW_BADREQ;
    if (rq->n_timeseries && (rq->n_symbols == 0 || rq->symbols[0][0] != '\0'))
        return rw_err_set(err, RW_BADREQ, "remote-write 2.0: symbols[0] must be the empty string");
    out->nseries = rq->n_timeseries;
    out->series = rw_arena_calloc(a, rq->n_timeseries ? rq->n_timeseries : 1, sizeof *out->series);
    out->metadata = rw_arena_calloc(a, rq->n_timeseries ? rq->n_timeseries : 1,
                                    sizeof *out->metadata);
    if (!out->series || !out->metadata)
        return RW_LIMIT;
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        const Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
        rw_in_series *s = &out->series[i];
        if (ts->n_labels_refs % 2)
            return rw_err_set(err, RW_BADREQ,
                              "remote-write 2.0: series %zu has an odd number of labels_refs (%zu)",
                              i, ts->n_labels_refs);
        s->nlabels = ts->n_labels_refs / 2;
        s->labels = rw_arena_alloc(a, (s->nlabels ? s->nlabels : 1) * sizeof *s->labels);
        if (!s->labels)
            return RW_LIMIT;
        for (size_t k = 0; k < s->nlabels; k++) {
            uint32_t nr = ts->labels_refs[2 * k], vr = ts->labels_refs[2 * k + 1];
            if (nr >= rq->n_symbols || vr >= rq->n_symbols)
                return rw_err_set(err, RW_BADREQ,
                                  "remote-write 2.0: series %zu: label reference %u out of range "
                                  "(%zu symbols)",
                                  i, nr >= rq->n_symbols ? nr : vr, rq->n_symbols);
            s->labels[k].name = rq->symbols[nr];
            s->labels[k].value = rq->symbols[vr];
        }
        if (copy_samples(a, s, ts->n_samples, ts->samples) != RW_OK)
            return RW_LIMIT;
        s->nhistograms = ts->n_histograms;
        s->nexemplars = ts->n_exemplars;
        const Io__Prometheus__Write__V2__Metadata *md = ts->metadata;
        if (md && (md->type != 0 || md->help_ref || md->unit_ref)) {
            const char *metric = rw_labels_get(s->labels, s->nlabels, RW_METRIC_NAME);
            if (!metric || md->help_ref >= rq->n_symbols || md->unit_ref >= rq->n_symbols)
                continue; /* unusable metadata is ignored, never fatal */
            rw_metadata *m = &out->metadata[out->nmetadata++];
            m->metric = metric;
            m->type = rw_in_metric_type_name((uint64_t)md->type);
            m->help = rq->symbols[md->help_ref];
            m->unit = rq->symbols[md->unit_ref];
        }
    }
    return RW_OK;
}

rw_rc rw_in_decode_peek_len(const void *body, size_t len, size_t *ulen)
{
    return snappy_uncompressed_length(body, len, ulen) == SNAPPY_OK ? RW_OK : RW_BADREQ;
}

rw_rc rw_in_decode(const rw_ingest_config *c, rw_proto_version v, const void *body, size_t len,
                   rw_arena *a, rw_in_batch *out, rw_err *err)
{
    memset(out, 0, sizeof *out);
    size_t ulen = 0;
    if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input (bad length header)");
    if (ulen > (size_t)c->max_decoded_bytes)
        return rw_err_set(err, RW_LIMIT,
                          "snappy: decoded size %zu bytes exceeds the limit of %lld bytes", ulen,
                          (long long)c->max_decoded_bytes);
    char *raw = rw_arena_alloc(a, ulen + 1); /* +1: decode_v1.c terminates in place */
    if (!raw)
        return rw_err_set(err, RW_AGAIN, "out of memory for a %zu-byte body", ulen);
    size_t got = ulen;
    if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != ulen)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input");
    ProtobufCAllocator pa = {arena_alloc, arena_free, a};
    rw_rc rc = v == RW_PROTO_V2 ? decode_v2((uint8_t *)raw, ulen, a, &pa, out, err)
                                : rw_in_decode_v1((uint8_t *)raw, ulen, a, out, err);
    if (rc == RW_BADREQ && rw_arena_used(a) + (1u << 20) >= ig_arena_cap(ulen))
        rc = RW_LIMIT; /* protobuf-c ran out of the arena, the message is fine */
    if (rc == RW_LIMIT)
        return rw_err_set(err, RW_LIMIT,
                          "request too complex: decoding needs more memory than allowed");
    if (rc == RW_BADREQ && (!err || err->code != RW_BADREQ))
        return rw_err_set(err, RW_BADREQ, "cannot decode protobuf %s",
                          v == RW_PROTO_V2 ? "io.prometheus.write.v2.Request"
                                           : "prometheus.WriteRequest");
    if (rc == RW_OK && out->nseries > (size_t)c->max_series_per_request)
        return rw_err_set(err, RW_LIMIT, "request has %zu series, limit is %lld per request",
                          out->nseries, (long long)c->max_series_per_request);
    return rc;
}
