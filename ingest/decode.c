/* decode.c - from a remote-write body to a batch of series (first step of
 * the write path, after content negotiation), and the request's memory
 * accounting (rw_in_mem).
 *
 * Snappy's declared uncompressed length is read and checked against the
 * limit, and reserved against the in-flight budget, before anything is
 * allocated. Remote-write 1.0 and 2.0 bodies go to the zero-copy decoders
 * of decode_v1.c and decode_v2.c, which count before they allocate and
 * reserve the exact arena size they need. Nothing here validates label
 * sets: that is validate.c's job, per series, so one bad series does not
 * fail the request. */
#include <snappy-c.h>
#include <string.h>
#include "decode_pb.h"

rw_rc rw_in_decode_too_complex(rw_err *err)
{
    return rw_err_set(err, RW_LIMIT, "request too complex: decoding needs more memory than allowed");
}

rw_rc rw_in_decode_series_limit(size_t nseries, const rw_ingest_config *c, rw_err *err)
{
    size_t max_series = (size_t)c->max_series_per_request;
    if (nseries > max_series)
        return rw_err_set(err, RW_LIMIT, "request has %zu series, limit is %zu per request",
                          nseries, max_series);
    return RW_OK;
}

const char *rw_in_metric_type_name(uint64_t t)
{
    static const char *const names[] = {"unknown", "counter", "gauge", "histogram",
                                        "gaugehistogram", "summary", "info", "stateset"};
    return t < 8 ? names[t] : "unknown";
}

rw_rc rw_in_mem_reserve(rw_in_mem *m, size_t total, rw_err *err)
{
    if (total <= m->held)
        return RW_OK;
    if (m->budget) {
        size_t more = total - m->held;
        if (!rw_budget_take(m->budget, more)) {
            size_t limit = rw_budget_limit(m->budget);
            if (total + m->outside > limit) /* would not fit even alone */
                return rw_err_set(err, RW_LIMIT,
                                  "request too complex: decoding needs %zu bytes of memory beside "
                                  "the %zu bytes of its body, more than "
                                  "ingest.max_inflight_bytes (%zu)",
                                  total, m->outside, limit);
            return rw_err_set(err, RW_AGAIN,
                              "overloaded: %zu bytes of write requests in flight (limit %zu); "
                              "retry later",
                              rw_budget_used(m->budget), limit);
        }
        m->held = total;
        if (m->a)
            rw_arena_set_cap(m->a, total);
    }
    return RW_OK;
}

rw_rc rw_in_mem_grow(rw_in_mem *m, size_t more, rw_err *err)
{
    if (!m->a)
        return RW_OK;
    /* a new block is at least the block size; the current one's free room
       is already counted in rw_arena_used */
    size_t blk = more > m->block ? more : m->block;
    rw_rc rc = rw_in_mem_reserve(m, rw_arena_used(m->a) + blk, err);
    if (rc != RW_OK)
        return rc;
    if (rw_arena_reserve(m->a, more) < 0)
        return rw_err_set(err, m->budget ? RW_AGAIN : RW_LIMIT,
                          "request too complex: decoding needs more memory than allowed");
    return RW_OK;
}

rw_rc rw_in_decode_peek_len(const void *body, size_t len, size_t *ulen)
{
    return snappy_uncompressed_length(body, len, ulen) == SNAPPY_OK ? RW_OK : RW_BADREQ;
}

rw_rc rw_in_decode_mem(const rw_ingest_config *c, rw_proto_version v, const void *body,
                       size_t len, rw_in_mem *m, rw_in_batch *out, rw_err *err)
{
    memset(out, 0, sizeof *out);
    size_t ulen = 0;
    if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input (bad length header)");
    if (ulen > (size_t)c->max_decoded_bytes)
        return rw_err_set(err, RW_LIMIT,
                          "snappy: decoded size %zu bytes exceeds the limit of %lld bytes", ulen,
                          (long long)c->max_decoded_bytes);
    rw_rc rc = rw_in_mem_grow(m, PB_ALIGN16(ulen + 1), err);
    if (rc != RW_OK)
        return rc;
    char *raw = rw_arena_alloc(m->a, ulen + 1); /* +1: the decoders terminate in place */
    if (!raw)
        return rw_err_set(err, RW_AGAIN, "out of memory for a %zu-byte body", ulen);
    size_t got = ulen;
    if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != ulen)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input");
    return v == RW_PROTO_V2 ? rw_in_decode_v2((uint8_t *)raw, ulen, c, m, out, err)
                            : rw_in_decode_v1((uint8_t *)raw, ulen, c, m, out, err);
}

rw_rc rw_in_decode(const rw_ingest_config *c, rw_proto_version v, const void *body, size_t len,
                   rw_arena *a, rw_in_batch *out, rw_err *err)
{
    rw_in_mem m = {.a = a, .block = 64u << 10};
    return rw_in_decode_mem(c, v, body, len, &m, out, err);
}
