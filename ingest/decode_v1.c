/* decode_v1.c - a hand-written, zero-copy decoder of remote-write 1.0's
 * prometheus.WriteRequest: the hottest code of the write path.
 *
 * Why by hand: protobuf-c's generic unpacker walks field descriptors by
 * reflection and allocates a struct per Label and Sample plus a copy of every
 * string; on the benchmark that was ~15% of all ingest CPU. Here label
 * strings are not copied at all: they point into the decompressed body, which
 * the request owns. Every string is NUL-terminated in place AFTER the whole
 * message has been parsed - the byte after a string's content is always the
 * next field's tag (or the body's end, for which one spare byte is
 * allocated), never part of another string, and it is not read again once
 * parsing is over. String lengths travel with the labels (rw_in_series.lens)
 * so validation and hashing never rescan them.
 *
 * Wire format handled: varint (0), 64-bit (1), length-delimited (2) and
 * 32-bit (5) fields; groups (3, 4) are invalid. Unknown fields are skipped,
 * a repeated scalar field keeps its last value, as protobuf does. Every
 * length is checked against what remains before it is used. */
#include <string.h>
#include "ingest_int.h"

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static inline __attribute__((always_inline)) int rd_varint(pb *b, uint64_t *out)
{
    if (b->p < b->end && !(*b->p & 0x80)) { /* tags and lengths: nearly always one byte */
        *out = *b->p++;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads one field's key and, for length-delimited fields, its body. */
static inline __attribute__((always_inline)) int rd_field(pb *b, uint32_t *num, int *wt,
                                                          pb *sub, uint64_t *val)
{
    uint64_t key;
    if (rd_varint(b, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return rd_varint(b, val);
    case 1:
        if (b->end - b->p < 8)
            return -1;
        memcpy(val, b->p, 8);
        b->p += 8;
        return 0;
    case 2: {
        uint64_t len;
        if (rd_varint(b, &len) < 0 || len > (uint64_t)(b->end - b->p))
            return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    }
    case 5:
        if (b->end - b->p < 4)
            return -1;
        *val = 0;
        memcpy(val, b->p, 4);
        b->p += 4;
        return 0;
    default:
        return -1;
    }
}

/* Strings to terminate once parsing is over. */
typedef struct term_list {
    char **at;
    size_t n, cap;
    rw_arena *a;
} term_list;

static int term_add(term_list *t, const pb *s)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        char **na = rw_arena_realloc(t->a, t->at, t->cap * sizeof *na, ncap * sizeof *na);
        if (!na)
            return -1;
        t->at = na;
        t->cap = ncap;
    }
    t->at[t->n++] = (char *)s->end;
    return 0;
}

static int decode_label(pb body, rw_label *l, uint32_t *lens, term_list *t)
{
    pb name = {body.p, body.p}, value = {body.p, body.p};
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0)
            return -1;
        if (num == 1 && wt == 2)
            name = sub;
        else if (num == 2 && wt == 2)
            value = sub;
        else if (num <= 2)
            return -1;
    }
    l->name = (const char *)name.p;
    l->value = (const char *)value.p;
    lens[0] = (uint32_t)(name.end - name.p);
    lens[1] = (uint32_t)(value.end - value.p);
    if (term_add(t, &name) < 0 || term_add(t, &value) < 0)
        return -1;
    return 0;
}

static int decode_sample(pb body, rw_sample *s)
{
    double v = 0;
    int64_t ts = 0;
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
        } else if (num == 2) {
            if (wt != 0)
                return -1;
            ts = (int64_t)x;
        }
    }
    s->t = ts;
    s->v = v;
    return 0;
}

static int decode_series(pb body, rw_arena *a, rw_in_series *s, term_list *t)
{
    /* first pass: counts, so the arrays are allocated once */
    size_t nl = 0, ns = 0;
    pb scan = body;
    while (scan.p < scan.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&scan, &num, &wt, &sub, &v) < 0)
            return -1;
        if (num >= 1 && num <= 4 && wt != 2)
            return -1;
        if (num == 1)
            nl++;
        else if (num == 2)
            ns++;
        else if (num == 3)
            s->nexemplars++;
        else if (num == 4)
            s->nhistograms++;
    }
    s->labels = rw_arena_alloc(a, (nl ? nl : 1) * sizeof *s->labels);
    s->lens = rw_arena_alloc(a, (nl ? nl : 1) * 2 * sizeof *s->lens);
    s->samples = ns ? rw_arena_alloc(a, ns * sizeof *s->samples) : NULL;
    if (!s->labels || !s->lens || (ns && !s->samples))
        return -2;
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the first pass */
        if (num == 1) {
            if (decode_label(sub, &s->labels[s->nlabels], &s->lens[2 * s->nlabels], t) < 0)
                return -1;
            s->nlabels++;
        } else if (num == 2) {
            if (decode_sample(sub, &s->samples[s->nsamples]) < 0)
                return -1;
            s->nsamples++;
        }
    }
    return 0;
}

static int decode_metadata(pb body, rw_metadata *m, term_list *t)
{
    uint64_t type = 0;
    pb name = {body.p, body.p}, help = name, unit = name;
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0)
            return -1;
        if (num == 1 && wt == 0)
            type = v;
        else if (num == 2 && wt == 2)
            name = sub;
        else if (num == 4 && wt == 2)
            help = sub;
        else if (num == 5 && wt == 2)
            unit = sub;
        else if (num == 1 || num == 2 || num == 4 || num == 5)
            return -1;
    }
    m->type = rw_in_metric_type_name(type);
    m->metric = (const char *)name.p;
    m->help = (const char *)help.p;
    m->unit = (const char *)unit.p;
    if (term_add(t, &name) < 0 || term_add(t, &help) < 0 || term_add(t, &unit) < 0)
        return -1;
    return 0;
}

/* raw must have one writable byte after raw[len] (see the file header). */
rw_rc rw_in_decode_v1(uint8_t *raw, size_t len, rw_arena *a, rw_in_batch *out, rw_err *err)
{
    pb body = {raw, raw + len}, scan = body;
    size_t nts = 0, nmd = 0;
    while (scan.p < scan.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&scan, &num, &wt, &sub, &v) < 0 || ((num == 1 || num == 3) && wt != 2))
            return rw_err_set(err, RW_BADREQ, "cannot decode protobuf prometheus.WriteRequest: "
                                              "malformed field at byte %zu",
                              (size_t)(scan.p - raw));
        nts += num == 1;
        nmd += num == 3;
    }
    out->series = rw_arena_calloc(a, nts ? nts : 1, sizeof *out->series);
    out->metadata = rw_arena_calloc(a, nmd ? nmd : 1, sizeof *out->metadata);
    term_list t = {NULL, 0, 0, a};
    if (!out->series || !out->metadata)
        return RW_LIMIT;
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the scan */
        int rc = 0;
        if (num == 1)
            rc = decode_series(sub, a, &out->series[out->nseries++], &t);
        else if (num == 3)
            rc = decode_metadata(sub, &out->metadata[out->nmetadata++], &t);
        if (rc == -2)
            return RW_LIMIT;
        if (rc < 0)
            return rw_err_set(err, RW_BADREQ,
                              "cannot decode protobuf prometheus.WriteRequest: malformed %s %zu",
                              num == 1 ? "time series" : "metadata entry",
                              num == 1 ? out->nseries - 1 : out->nmetadata - 1);
    }
    for (size_t i = 0; i < t.n; i++)
        *t.at[i] = '\0';
    return RW_OK;
}
