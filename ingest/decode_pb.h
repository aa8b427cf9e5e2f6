/* decode_pb.h - what the two remote-write decoders (decode_v1.c,
 * decode_v2.c) share: one Sample message, and the arena arrays of one
 * series, counted then allocated. Internal to ingest/; static inline
 * because these run once per sample in the hottest loop of the write path,
 * where a call per sample would cost more than the work. */
#ifndef RW_DECODE_PB_H
#define RW_DECODE_PB_H

#include <string.h>
#include "ingest_int.h"
#include "core/pb_wire.h"

/* One Sample: value (1, fixed64 double) and timestamp (2, varint); both
 * protocols number them alike. extra_varint names one more field that must
 * be a varint and is otherwise ignored (2.0's start timestamp, 3), or 0 for
 * none (field numbers start at 1). A field present twice keeps its last
 * value; other fields are skipped. -1 on a malformed body. */
static inline __attribute__((always_inline)) int rw_in_pb_sample(pb body, rw_sample *s,
                                                                 uint32_t extra_varint)
{
    double v = 0;
    int64_t ts = 0;
    /* the encoding every sender writes: value (1) then timestamp (2), whose
       varint ends the body - read directly */
    if (body.end - body.p >= 11 && body.p[0] == (1 << 3 | 1) && body.p[9] == (2 << 3 | 0)) {
        pb ts_field = {body.p + 10, body.end};
        uint64_t x;
        if (rd_varint(&ts_field, &x) == 0 && ts_field.p == body.end) {
            memcpy(&v, body.p + 1, 8);
            s->t = (int64_t)x;
            s->v = v;
            return 0;
        }
    }
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t x;
        if (rd_field(&body, &num, &wt, &sub, &x) < 0)
            return -1;
        if (num == 1) {
            if (wt != 1)
                return -1;
            memcpy(&v, &x, 8);
        } else if (num == 2 || (extra_varint && num == extra_varint)) {
            if (wt != 0)
                return -1;
            if (num == 2)
                ts = (int64_t)x;
        }
    }
    s->t = ts;
    s->v = v;
    return 0;
}

/* The first pass over a request: every top-level field parses, and the two
 * repeated message fields a and b (series and metadata, or series and
 * symbols) are length-delimited; their counts are added to *na and *nb.
 * -1 on a malformed field, with *at where reading stopped. */
static inline int rw_in_pb_scan(pb body, uint32_t a, uint32_t b, size_t *na, size_t *nb,
                                const uint8_t **at)
{
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0 || ((num == a || num == b) && wt != 2)) {
            *at = body.p;
            return -1;
        }
        *na += num == a;
        *nb += num == b;
    }
    return 0;
}

/* Arena bytes of the arrays rw_in_series_alloc gives a series of nl labels
 * and ns samples (each allocation rounded as the arena rounds it). */
static inline size_t rw_in_series_bytes(size_t nl, size_t ns)
{
    if (!nl)
        nl = 1;
    return PB_ALIGN16(nl * sizeof(rw_label)) + PB_ALIGN16(nl * 2 * sizeof(uint32_t)) +
           (ns ? PB_ALIGN16(ns * sizeof(rw_sample)) : 0);
}

/* Allocates s's labels, lens (room for nl labels, at least one) and samples
 * (ns, none when 0) from the arena reserved for them; nlabels and nsamples
 * are left to the caller. -1 when the arena refuses. */
static inline int rw_in_series_alloc(rw_arena *a, rw_in_series *s, size_t nl, size_t ns)
{
    /* one allocation carved in three (the arena rounds each to 16 bytes
       alike): one call per series of every request instead of three */
    size_t l = PB_ALIGN16((nl ? nl : 1) * sizeof *s->labels);
    size_t n = PB_ALIGN16((nl ? nl : 1) * 2 * sizeof *s->lens);
    unsigned char *p = rw_arena_alloc(a, rw_in_series_bytes(nl, ns));
    if (!p)
        return -1;
    s->labels = (rw_label *)p;
    s->lens = (uint32_t *)(p + l);
    s->samples = ns ? (rw_sample *)(p + l + n) : NULL;
    return 0;
}

/* The decoders' answer when the reserved arena cannot hold what was
 * counted (decode.c). */
rw_rc rw_in_decode_too_complex(rw_err *err);
/* RW_LIMIT when a request has more series than max_series_per_request
 * (decode.c), before anything is allocated for them. */
rw_rc rw_in_decode_series_limit(size_t nseries, const rw_ingest_config *c, rw_err *err);

#endif
