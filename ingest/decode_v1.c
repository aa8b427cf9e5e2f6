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
 * Memory: three passes, nothing allocated before it is counted. A scan of
 * the top-level fields counts series and metadata (too many series is
 * refused before anything is allocated for them); a second pass counts
 * each series' labels and samples into its rw_in_series; then the exact
 * arena size is reserved against the in-flight budget (rw_in_mem) and the
 * third pass decodes into arrays of exactly the counted sizes.
 *
 * Wire format handled: varint (0), 64-bit (1), length-delimited (2) and
 * 32-bit (5) fields; groups (3, 4) are invalid (pb_wire.h). Unknown fields
 * are skipped, a repeated scalar field keeps its last value, as protobuf
 * does. Every length is checked against what remains before it is used.
 * The Sample message and a series' arena arrays are decoded and sized by
 * decode_pb.h, shared with decode_v2.c. When the request asks for them
 * (rw_in_mem.cache), each series gets its series-cache key from the
 * bytes of its label fields as sent. */
#include <string.h>
#include "decode_pb.h"
#include "core/text.h"

/* Strings to terminate once parsing is over; sized by the count pass. */
typedef struct term_list {
    char **at;
    size_t n, cap;
} term_list;

static int term_add(term_list *t, const pb *s)
{
    if (t->n == t->cap)
        return -1;
    t->at[t->n++] = (char *)s->end;
    return 0;
}

static int decode_label(pb body, rw_label *l, uint32_t *lens, term_list *t)
{
    pb name = {body.p, body.p}, value = {body.p, body.p};
    /* the layout every sender writes: name (1) then value (2), each shorter
       than 128 bytes, nothing else - read directly, the loop is the rest */
    size_t len = (size_t)(body.end - body.p);
    if (len >= 4 && body.p[0] == (1 << 3 | 2) && body.p[1] < 0x80 && (size_t)body.p[1] + 4 <= len &&
        body.p[2 + body.p[1]] == (2 << 3 | 2) && body.p[3 + body.p[1]] < 0x80 &&
        (size_t)body.p[1] + body.p[3 + body.p[1]] + 4 == len) {
        name.p = body.p + 2;
        name.end = name.p + body.p[1];
        value.p = name.end + 2;
        value.end = body.end;
        body.p = body.end;
    }
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

/* Count pass: a series' labels, samples, exemplars and native histograms
 * into s (nlabels / nsamples are reset by the decode pass). */
static int count_series(pb body, rw_in_series *s)
{
    size_t nl = 0, ns = 0;
    /* the span from the first label field to the end of the last, when
       nothing else lies between them (Prometheus writes all labels first):
       the series cache's key, and what the ASCII check reads */
    const uint8_t *lab_lo = NULL, *lab_hi = NULL;
    int other = 0, split = 0; /* a field after a label / a label after that */
    /* the labels as every sender writes them, first and each shorter than
       128 bytes: over them at once (the loop below checks the rest, and
       decode_label each label's body) */
    const uint8_t *p = body.p;
    while (body.end - p >= 2 && p[0] == (1 << 3 | 2) && p[1] < 0x80 && p[1] <= body.end - p - 2)
        p += 2 + p[1], nl++;
    if (nl) {
        lab_lo = body.p;
        lab_hi = body.p = p;
    }
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        const uint8_t *at = body.p;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0)
            return -1;
        if (num >= 1 && num <= 4 && wt != 2)
            return -1;
        if (num != 1 && lab_lo)
            other = 1;
        if (num == 1) {
            nl++;
            if (!lab_lo)
                lab_lo = at;
            lab_hi = body.p;
            split |= other;
        } else if (num == 2)
            ns++;
        else if (num == 3)
            s->nexemplars++;
        else if (num == 4)
            s->nhistograms++;
    }
    s->nlabels = nl;
    s->nsamples = ns;
    if (lab_lo && !split && (size_t)(lab_hi - lab_lo) < UINT32_MAX) {
        s->raw = lab_lo;
        s->raw_len = (uint32_t)(lab_hi - lab_lo);
    }
    return 0;
}

/* Arena bytes decode_series takes for s; a series over the label limit is
 * not decoded (labels_over) and takes nothing. */
static size_t series_bytes(rw_in_series *s, size_t max_labels)
{
    if (s->nlabels > max_labels) {
        s->labels_over = (uint32_t)s->nlabels;
        s->nlabels = 0;
        return 0;
    }
    return rw_in_series_bytes(s->nlabels, s->nsamples);
}

/* Decode pass (counts from count_series, memory reserved). */
static int decode_series(pb body, rw_arena *a, rw_in_series *s, term_list *t, int keyed)
{
    if (s->labels_over)
        return 0; /* counted only: validation rejects it */
    if (rw_in_series_alloc(a, s, s->nlabels, s->nsamples) < 0)
        return -2;
    s->nlabels = 0;
    s->nsamples = 0;
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the count pass */
        if (num == 1) {
            if (decode_label(sub, &s->labels[s->nlabels], &s->lens[2 * s->nlabels], t) < 0)
                return -1;
            s->nlabels++;
        } else if (num == 2) {
            if (rw_in_pb_sample(sub, &s->samples[s->nsamples], 0) < 0)
                return -1;
            s->nsamples++;
        }
    }
    /* every byte of the label fields' span (count_series) ASCII and none
       NUL: every label string is ASCII without NUL. Validation still checks
       the rest (an empty or left-out name or value, order, duplicates, the
       metric name). Not scanned when the series are keyed for the cache:
       only the series not found are validated, and those check their
       strings themselves; nor for the rare series whose label fields are
       not contiguous (no span). */
    s->ascii = !keyed && s->raw && rw_ascii_nonul(s->raw, s->raw_len);
    return 0;
}

/* The decode pass of a series the cache knows: its samples, and of its
 * labels only the values the stages read of it - its cluster, and its node
 * and instance when the kubelet dedup judges it - copied (the span stays as
 * sent, for rw_in_decode_v1_labels), each shared with the series before
 * when the same. */
typedef struct last_value {
    const uint8_t *p;
    size_t len;
    const char *copy;
} last_value;

static const char *copy_value(rw_arena *a, last_value *lv, const char *v, uint32_t len)
{
    if (!lv->copy || lv->len != len || memcmp(lv->p, v, len)) {
        char *c = rw_arena_alloc(a, (size_t)len + 1);
        if (!c)
            return NULL;
        memcpy(c, v, len);
        c[len] = '\0';
        lv->p = (const uint8_t *)v;
        lv->len = len;
        lv->copy = c;
    }
    return lv->copy;
}

static int decode_series_cached(pb body, rw_arena *a, rw_in_series *s, last_value lv[3])
{
    /* its samples only, side by side with the other series' (the store
       reads them in a row); its label arrays when they are decoded
       (rw_in_decode_v1_labels, in what was reserved for them) */
    s->labels = NULL;
    s->lens = NULL;
    s->samples = NULL;
    if (s->nsamples && !(s->samples = rw_arena_alloc(a, s->nsamples * sizeof *s->samples)))
        return -2;
    s->lazy_n = (uint32_t)s->nlabels;
    s->nlabels = 0;
    s->nsamples = 0;
    /* the labels wanted, by place (+ 1; 0: none), and where they go */
    uint32_t want[3] = {s->raw_cl_idx, s->kube ? s->raw_node_idx : 0u,
                        s->kube ? s->raw_inst_idx : 0u};
    const char **to[3] = {&s->raw_cluster, &s->raw_node, &s->raw_inst};
    uint32_t last = want[0] > want[1] ? want[0] : want[1];
    last = last > want[2] ? last : want[2];
    uint32_t li = 0;
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the count pass */
        if (num == 1 && li >= last && s->raw && body.p <= s->raw + s->raw_len) {
            /* past the labels wanted: over the others at once, the span
               holds nothing else */
            body.p = s->raw + s->raw_len;
            li = s->lazy_n;
            continue;
        }
        if (num == 1) {
            li++;
            for (int w = 0; w < 3; w++) {
                if (li != want[w])
                    continue;
                char *at[2];
                term_list none = {at, 0, 2}; /* not terminated: copied */
                rw_label l;
                uint32_t lens[2];
                if (decode_label(sub, &l, lens, &none) < 0)
                    return -1;
                if (!(*to[w] = copy_value(a, &lv[w], l.value, lens[1])))
                    return -2;
            }
        } else if (num == 2) {
            if (rw_in_pb_sample(sub, &s->samples[s->nsamples], 0) < 0)
                return -1;
            s->nsamples++;
        }
    }
    return 0;
}

/* Which keyed series the cache knows (their buckets prefetched a few
 * series ahead): marked cached, with what the entry holds. */
static void mark_cached(rw_in_mem *m, rw_in_series *series, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        rw_in_series *s = &series[k];
        if (k + 8 < n && series[k + 8].keyed)
            rw_in_cache_prefetch(m->cache, series[k + 8].key);
        rw_in_cache_val v;
        if (!s->keyed || !rw_in_cache_get(m->cache, s->key, &v))
            continue;
        uint32_t cl = v.flags >> RW_IN_CF_CL_SHIFT;
        uint32_t node = v.aux & 0xffu, inst = v.aux >> 8;
        int kube = (v.flags & RW_IN_CF_KUBE) != 0;
        if (cl > s->nlabels || (kube && (!node || !inst || node > s->nlabels ||
                                         inst > s->nlabels)))
            continue; /* cannot be: the same bytes, the same labels */
        s->cached = 1;
        s->hash = v.hash;
        s->ref = v.ref;
        s->inv = (uint8_t)(v.flags & RW_IN_CF_INV_MASK);
        s->raw_cl_idx = (uint8_t)cl;
        s->kube = (uint8_t)kube;
        s->raw_node_idx = (uint8_t)node;
        s->raw_inst_idx = (uint8_t)inst;
    }
}

/* In the count pass, while its bytes are in the cache: a series' key, from
 * its label fields' bytes. */
static void key_series(rw_in_mem *m, rw_in_series *s)
{
    if (s->raw && !s->labels_over && s->nsamples) {
        s->key = rw_in_cache_key_of(m->cache, m->cache_seed, s->raw, s->raw_len);
        s->keyed = 1;
    }
}

void rw_in_cache_find_labels(rw_in_mem *m, rw_in_series *series, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        rw_in_series *s = &series[k];
        if (s->nlabels && s->lens && !s->labels_over && s->nsamples) {
            s->key = rw_in_cache_key_labels(m->cache, m->cache_seed, s->labels, s->lens,
                                            s->nlabels);
            s->keyed = 1;
        }
    }
    mark_cached(m, series, n);
    for (size_t k = 0; k < n; k++) { /* their labels are decoded: no lazy decode */
        rw_in_series *s = &series[k];
        if (!s->cached)
            continue;
        if (s->raw_cl_idx)
            s->raw_cluster = s->labels[s->raw_cl_idx - 1].value;
        if (s->kube) {
            s->raw_node = s->labels[s->raw_node_idx - 1].value;
            s->raw_inst = s->labels[s->raw_inst_idx - 1].value;
        }
    }
}

int rw_in_decode_v1_labels(rw_in_series *s, rw_arena *a)
{
    if (!s->lazy_n)
        return 0;
    if (!s->labels) {
        rw_sample *keep = s->samples;
        if (rw_in_series_alloc(a, s, s->lazy_n, 0) < 0)
            return -1;
        s->samples = keep;
    }
    char *at[2];
    pb body = {s->raw, s->raw + s->raw_len};
    size_t n = 0;
    while (body.p < body.end && n < s->lazy_n) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0 || num != 1)
            return -1;
        term_list t = {at, 0, 2};
        if (decode_label(sub, &s->labels[n], &s->lens[2 * n], &t) < 0)
            return -1;
        n++;
    }
    /* terminated in place once all are parsed: the byte after each string
       is a tag of this span or of a field decoded before (file header) */
    for (size_t i = 0; i < n; i++) {
        ((char *)s->labels[i].name)[s->lens[2 * i]] = '\0';
        ((char *)s->labels[i].value)[s->lens[2 * i + 1]] = '\0';
    }
    s->nlabels = n;
    s->lazy_n = 0;
    s->ascii = 0;
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

static rw_rc malformed(rw_err *err, const char *what, size_t i)
{
    return rw_err_set(err, RW_BADREQ,
                      "cannot decode protobuf prometheus.WriteRequest: malformed %s %zu", what, i);
}

/* raw must have one writable byte after raw[len] (see the file header). */
rw_rc rw_in_decode_v1(uint8_t *raw, size_t len, const rw_ingest_config *c, rw_in_mem *m,
                      rw_in_batch *out, rw_err *err)
{
    rw_arena *a = m->a;
    pb body = {raw, raw + len}, scan = body;
    size_t nts = 0, nmd = 0;
    const uint8_t *at;
    if (rw_in_pb_scan(body, 1, 3, &nts, &nmd, &at) < 0)
        return rw_err_set(err, RW_BADREQ, "cannot decode protobuf prometheus.WriteRequest: "
                                          "malformed field at byte %zu",
                          (size_t)(at - raw));
    rw_rc rc = rw_in_decode_series_limit(nts, c, err);
    if (rc != RW_OK)
        return rc;
    rc = rw_in_mem_grow(m, PB_ALIGN16((nts ? nts : 1) * sizeof(rw_in_series)) +
                                     PB_ALIGN16((nmd ? nmd : 1) * sizeof(rw_metadata)),
                              err);
    if (rc != RW_OK)
        return rc;
    out->series = rw_arena_calloc(a, nts ? nts : 1, sizeof *out->series);
    out->metadata = rw_arena_calloc(a, nmd ? nmd : 1, sizeof *out->metadata);
    if (!out->series || !out->metadata)
        return rw_in_decode_too_complex(err);
    /* count pass */
    size_t need = 0, nlabels = 0, k = 0;
    scan = body;
    while (scan.p < scan.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&scan, &num, &wt, &sub, &v); /* checked by the scan */
        if (num != 1)
            continue;
        rw_in_series *s = &out->series[k];
        if (count_series(sub, s) < 0)
            return malformed(err, "time series", k);
        need += series_bytes(s, (size_t)c->max_labels_per_series);
        nlabels += s->nlabels;
        if (m->cache)
            key_series(m, s);
        k++;
    }
    term_list t = {NULL, 0, 2 * nlabels + 3 * nmd};
    need += PB_ALIGN16((t.cap ? t.cap : 1) * sizeof *t.at) + rw_in_stage_bytes(nts, nlabels);
    if ((rc = rw_in_mem_grow(m, need, err)) != RW_OK)
        return rc;
    if (!(t.at = rw_arena_alloc(a, (t.cap ? t.cap : 1) * sizeof *t.at)))
        return rw_in_decode_too_complex(err);
    if (m->cache) /* between the passes: which the cache knows */
        mark_cached(m, out->series, k);
    last_value lv[3] = {{NULL, 0, NULL}, {NULL, 0, NULL}, {NULL, 0, NULL}};
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the scan */
        int r = 0;
        rw_in_series *s = num == 1 ? &out->series[out->nseries++] : NULL;
        if (s && s->cached)
            r = decode_series_cached(sub, a, s, lv);
        else if (s)
            r = decode_series(sub, a, s, &t, m->cache != NULL);
        else if (num == 3)
            r = decode_metadata(sub, &out->metadata[out->nmetadata++], &t);
        if (r == -2)
            return rw_in_decode_too_complex(err);
        if (r < 0)
            return num == 1 ? malformed(err, "time series", out->nseries - 1)
                            : malformed(err, "metadata entry", out->nmetadata - 1);
    }
    for (size_t i = 0; i < t.n; i++)
        *t.at[i] = '\0';
    return RW_OK;
}
