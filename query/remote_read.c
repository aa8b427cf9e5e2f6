/* remote_read.c - POST /api/v1/read, the remote-read protocol with the
 * SAMPLES response type: a snappy-compressed prometheus.ReadRequest comes in,
 * each Query's matchers and time range become one selection through the querier, and a
 * snappy-compressed prometheus.ReadResponse goes out with one QueryResult per
 * Query, in order.
 *
 * As Prometheus' remote-read server: an equality matcher on an external
 * label with that label's value is turned into "label is absent" (stored
 * series do not carry the server's external labels), and the external labels
 * are merged into every returned series (the series' own value wins). A
 * client that accepts only STREAMED_XOR_CHUNKS gets 400; one that lists
 * SAMPLES anywhere, or nothing, gets samples. The total number of samples of
 * a request is capped (max_remote_read_samples); past it the request fails
 * with 400 "exceeded sample limit".
 *
 * The request is decoded with protobuf-c from the generated
 * proto/remote.pb-c.h, allocating from the request arena; the declared
 * decompressed length is checked against a cap first. The response is
 * encoded by hand straight from the store's arrays (sizes first, then one
 * write), because building protobuf-c message structs would cost about 48
 * bytes and an allocation per sample on a path meant for millions of them.
 * The wire layout written is that of remote.proto:
 *   ReadResponse{1: QueryResult{1: TimeSeries{1: Label{1: name, 2: value},
 *                                             2: Sample{1: double, 2: int64}}}}
 * with proto3's rule that zero scalars and empty strings are omitted. */
#include "api_int.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/timeutil.h"
#include "proto/remote.pb-c.h"

#define READ_MAX_DECODED (32u << 20) /* a ReadRequest is a few matchers */

/* ---- protobuf wire encoding ---- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* a length-delimited field of payload n, with its one-byte tag */
static size_t ld_len(size_t n)
{
    return 1 + varint_len(n) + n;
}

static uint8_t *put_ld_head(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    return put_varint(p, n);
}

static uint8_t *put_str(uint8_t *p, uint8_t tag, const char *s, size_t n)
{
    if (!n)
        return p;
    p = put_ld_head(p, tag, n);
    memcpy(p, s, n);
    return p + n;
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static size_t label_len(const rw_label *l)
{
    size_t a = strlen(l->name), b = strlen(l->value);
    return (a ? ld_len(a) : 0) + (b ? ld_len(b) : 0);
}

static size_t sample_len(int64_t t, double v)
{
    return (dbits(v) ? 9 : 0) + (t ? 1 + varint_len((uint64_t)t) : 0);
}

static size_t series_len(const rw_series_data *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nlabels; i++)
        n += ld_len(label_len(&s->labels[i]));
    for (size_t i = 0; i < s->n; i++)
        n += ld_len(sample_len(s->t[i], s->v[i]));
    return n;
}

static uint8_t *put_series(uint8_t *p, const rw_series_data *s, size_t len)
{
    p = put_ld_head(p, 0x0a, len); /* QueryResult.timeseries = 1 */
    for (size_t i = 0; i < s->nlabels; i++) {
        const rw_label *l = &s->labels[i];
        p = put_ld_head(p, 0x0a, label_len(l)); /* TimeSeries.labels = 1 */
        p = put_str(p, 0x0a, l->name, strlen(l->name));
        p = put_str(p, 0x12, l->value, strlen(l->value));
    }
    for (size_t i = 0; i < s->n; i++) {
        p = put_ld_head(p, 0x12, sample_len(s->t[i], s->v[i])); /* TimeSeries.samples = 2 */
        uint64_t u = dbits(s->v[i]);
        if (u) {
            *p++ = 0x09; /* Sample.value = 1, fixed64 */
            for (int k = 0; k < 8; k++)
                *p++ = (uint8_t)(u >> (8 * k));
        }
        if (s->t[i]) {
            *p++ = 0x10; /* Sample.timestamp = 2, varint */
            p = put_varint(p, (uint64_t)s->t[i]);
        }
    }
    return p;
}

/* ---- request handling ---- */

typedef struct query_result {
    rw_series_data *series;
    size_t n;
    size_t *lens; /* encoded TimeSeries payload per series */
    size_t len;   /* encoded QueryResult payload */
} query_result;

static void *arena_alloc(void *ctx, size_t n)
{
    return rw_arena_alloc(ctx, n ? n : 1);
}

static void arena_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* freed with the request arena */
}

/* Merges two sorted label sets; on equal names `own` wins. */
static rw_label *merge_labels(rw_arena *a, const rw_label *own, size_t n, const rw_label *ext,
                              size_t next, size_t *nout)
{
    rw_label *out = rw_arena_alloc(a, (n + next) * sizeof *out);
    if (!out)
        return NULL;
    size_t i = 0, j = 0, k = 0;
    while (i < n || j < next) {
        int c = i == n ? 1 : j == next ? -1 : strcmp(own[i].name, ext[j].name);
        if (c <= 0) {
            out[k++] = own[i++];
            if (c == 0)
                j++;
        } else {
            out[k++] = ext[j++];
        }
    }
    *nout = k;
    return out;
}

int rw_qapi_read_matchers(const Prometheus__Query *q, const rw_label *ext, size_t next,
                          rw_matcher *ms, size_t *nms, rw_err *err)
{
    *nms = 0;
    for (size_t i = 0; i < q->n_matchers; i++) {
        const Prometheus__LabelMatcher *pm = q->matchers[i];
        const char *name = pm->name ? pm->name : "", *value = pm->value ? pm->value : "";
        rw_match_op op;
        switch (pm->type) {
        case PROMETHEUS__LABEL_MATCHER__TYPE__EQ: op = RW_MATCH_EQ; break;
        case PROMETHEUS__LABEL_MATCHER__TYPE__NEQ: op = RW_MATCH_NEQ; break;
        case PROMETHEUS__LABEL_MATCHER__TYPE__RE: op = RW_MATCH_RE; break;
        case PROMETHEUS__LABEL_MATCHER__TYPE__NRE: op = RW_MATCH_NRE; break;
        default:
            rw_err_set(err, RW_BADREQ, "invalid matcher type %d", (int)pm->type);
            return 0;
        }
        if (op == RW_MATCH_EQ) {
            /* name="v" on external label name=v: the store has no such label */
            const char *ev = rw_labels_get(ext, next, name);
            if (ev && strcmp(ev, value) == 0)
                value = "";
        }
        if (rw_matcher_init(&ms[*nms], op, name, value, err) != RW_OK)
            return 0;
        (*nms)++;
    }
    return 1;
}

static const char *type_name(int t)
{
    return t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES ? "SAMPLES"
           : t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS
               ? "STREAMED_XOR_CHUNKS"
               : "UNKNOWN";
}

static int accepts_samples(const Prometheus__ReadRequest *rr, char *why, size_t cap)
{
    if (!rr->n_accepted_response_types)
        return 1;
    for (size_t i = 0; i < rr->n_accepted_response_types; i++)
        if (rr->accepted_response_types[i] == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES)
            return 1;
    size_t len = (size_t)snprintf(why, cap,
                                  "server does not support any of the requested response types: [");
    for (size_t i = 0; i < rr->n_accepted_response_types && len < cap; i++)
        len += (size_t)snprintf(why + len, cap - len, "%s%s", i ? " " : "",
                                type_name(rr->accepted_response_types[i]));
    if (len < cap)
        snprintf(why + len, cap - len, "]; supported: [SAMPLES]");
    return 0;
}

rw_rc rw_qapi_read_decode(const char *body, size_t blen, rw_arena *a,
                          Prometheus__ReadRequest **out, rw_err *err)
{
    size_t ulen;
    *out = NULL;
    if (snappy_uncompressed_length(body, blen, &ulen) != SNAPPY_OK)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input");
    if (ulen > READ_MAX_DECODED)
        return rw_err_set(err, RW_TOOLARGE,
                          "decompressed request of %zu bytes exceeds the limit of %u bytes", ulen,
                          READ_MAX_DECODED);
    char *plain = rw_arena_alloc(a, ulen ? ulen : 1);
    if (!plain)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    size_t got = ulen;
    if (snappy_uncompress(body, blen, plain, &got) != SNAPPY_OK || got != ulen)
        return rw_err_set(err, RW_BADREQ, "snappy: corrupt input");
    ProtobufCAllocator pa = {arena_alloc, arena_free, a};
    *out = prometheus__read_request__unpack(&pa, ulen, (uint8_t *)plain);
    if (!*out)
        return rw_err_set(err, RW_BADREQ, "cannot decode prometheus.ReadRequest: invalid protobuf");
    return RW_OK;
}

void rw_qapi_remote_read(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    rw_arena *a = rw_http_arena(req);
    uint8_t *raw = NULL;
    size_t blen;
    const char *body = rw_http_body(req, &blen);
    Prometheus__ReadRequest *rr;
    rw_err de;
    rw_err_init(&de);
    rw_rc drc = rw_qapi_read_decode(body, blen, a, &rr, &de);
    if (drc != RW_OK) {
        rw_http_resp_text(resp, rw_rc_http_status(drc), "%s", de.msg);
        goto out;
    }
    char why[256];
    if (!accepts_samples(rr, why, sizeof why)) {
        rw_http_resp_text(resp, 400, "%s", why);
        goto out;
    }

    rw_label *ext;
    size_t next = rw_qapi_ext_labels(api, a, &ext);
    size_t cap = api->max_remote_read_samples, used = 0;
    query_result *qr = rw_arena_calloc(a, rr->n_queries ? rr->n_queries : 1, sizeof *qr);
    if (!qr) {
        rw_http_resp_text(resp, 503, "out of memory");
        goto out;
    }
    size_t total = 0;
    for (size_t i = 0; i < rr->n_queries; i++) {
        const Prometheus__Query *q = rr->queries[i];
        rw_err e;
        rw_err_init(&e);
        rw_matcher *ms = calloc(q->n_matchers ? q->n_matchers : 1, sizeof *ms);
        size_t nms = 0;
        if (!ms) {
            rw_http_resp_text(resp, 503, "out of memory");
            goto out;
        }
        rw_rc rc = RW_BADREQ;
        if (rw_qapi_read_matchers(q, ext, next, ms, &nms, &e))
            /* budget + 1 so that the store fails only past the cap */
            rc = rw_query_select(&api->querier, ms, nms, q->start_timestamp_ms, q->end_timestamp_ms,
                                 0, cap - used + 1, a, &qr[i].series, &qr[i].n, &e);
        for (size_t j = 0; j < nms; j++)
            rw_matcher_free(&ms[j]);
        free(ms);
        if (rc == RW_OK) {
            for (size_t j = 0; j < qr[i].n; j++)
                used += qr[i].series[j].n;
            if (used > cap)
                rc = RW_LIMIT;
        }
        if (rc == RW_LIMIT && strstr(e.msg, "memory")) { /* out of memory, not the cap */
            rw_http_resp_text(resp, 503, "%s", e.msg);
            goto out;
        }
        if (rc == RW_LIMIT) {
            rw_http_resp_text(resp, 400, "exceeded sample limit (%zu)", cap);
            goto out;
        }
        if (rc != RW_OK) {
            rw_http_resp_text(resp, rc == RW_BADREQ ? 400 : rw_rc_http_status(rc), "%s", e.msg);
            goto out;
        }
        qr[i].lens = rw_arena_alloc(a, (qr[i].n ? qr[i].n : 1) * sizeof *qr[i].lens);
        if (!qr[i].lens) {
            rw_http_resp_text(resp, 503, "out of memory");
            goto out;
        }
        for (size_t j = 0; j < qr[i].n; j++) {
            rw_series_data *s = &qr[i].series[j];
            if (next) {
                s->labels = merge_labels(a, s->labels, s->nlabels, ext, next, &s->nlabels);
                if (!s->labels) {
                    rw_http_resp_text(resp, 503, "out of memory");
                    goto out;
                }
            }
            qr[i].lens[j] = series_len(s);
            qr[i].len += ld_len(qr[i].lens[j]);
        }
        total += ld_len(qr[i].len); /* ReadResponse.results = 1 */
    }

    raw = malloc(total ? total : 1);
    if (!raw || rw_buf_reserve(&resp->body, snappy_max_compressed_length(total)) != RW_OK) {
        rw_http_resp_text(resp, 503, "out of memory: response of %zu bytes", total);
        goto out;
    }
    uint8_t *p = raw;
    for (size_t i = 0; i < rr->n_queries; i++) {
        p = put_ld_head(p, 0x0a, qr[i].len);
        for (size_t j = 0; j < qr[i].n; j++)
            p = put_series(p, &qr[i].series[j], qr[i].lens[j]);
    }
    if ((size_t)(p - raw) != total) { /* the two passes disagree: a bug */
        rw_http_resp_text(resp, 500, "remote read: response encoding size mismatch");
        goto out;
    }
    size_t clen = resp->body.alloc - 1;
    if (snappy_compress((const char *)raw, total, resp->body.p, &clen) != SNAPPY_OK) {
        rw_http_resp_text(resp, 500, "remote read: snappy compression failed");
        goto out;
    }
    resp->body.len = clen;
    resp->body.p[clen] = '\0';
    resp->status = 200;
    resp->content_type = "application/x-protobuf";
    rw_http_resp_header(resp, "Content-Encoding", "snappy");
out:
    free(raw);
    rw_qapi_observe(api, QAPI_EP_READ, start_ns);
}
