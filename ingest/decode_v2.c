/* decode_v2.c - a hand-written, zero-copy decoder of remote-write 2.0's
 * io.prometheus.write.v2.Request, the counterpart of decode_v1.c.
 *
 * Why by hand: protobuf-c unpacks every Sample, Exemplar and Histogram into
 * a struct of its own plus a pointer, and copies every symbol - a body of
 * millions of empty messages expands 20 to 30 times, and nothing tells how
 * much before it has happened. Here symbols point into the decompressed
 * body (terminated in place once parsing is over, as in decode_v1.c), label
 * references are resolved against the symbol table with bounds checks, and
 * memory is counted before it is allocated: a scan of the top-level fields
 * counts symbols and series (too many series is refused before anything is
 * allocated for them), a second pass counts each series' label references,
 * samples, histograms and exemplars, then the exact arena size is reserved
 * against the in-flight budget (rw_in_mem) and the third pass decodes.
 *
 * Native histograms and exemplars are not stored (the pipeline counts and
 * rejects them): their messages are only checked to be well-formed, as
 * protobuf-c would have. Unknown fields are skipped; packed and unpacked
 * labels_refs are both accepted, as protobuf requires of a parser. The
 * Sample message and a series' arena arrays are decode_pb.h's, shared with
 * decode_v1.c. With the series cache, each series is keyed by its label
 * strings (references change from request to request) and looked up. */
#include <string.h>
#include "decode_pb.h"
#include "core/text.h"

static rw_rc bad(rw_err *err)
{
    return rw_err_set(err, RW_BADREQ, "cannot decode protobuf io.prometheus.write.v2.Request");
}

/* Count pass over one TimeSeries: label references into *nrefs, samples,
 * histograms and exemplars into s. */
static int count_series(pb body, rw_in_series *s, size_t *nrefs)
{
    size_t refs = 0, ns = 0;
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0)
            return -1;
        switch (num) {
        case 1:
            if (wt == 0) {
                refs++;
            } else if (wt == 2) {
                int64_t n = pb_packed_count(sub);
                if (n < 0)
                    return -1;
                refs += (size_t)n;
            } else {
                return -1;
            }
            break;
        case 2:
            if (wt != 2)
                return -1;
            ns++;
            break;
        case 3:
        case 4:
            if (wt != 2 || !pb_well_formed(sub))
                return -1;
            if (num == 3)
                s->nhistograms++;
            else
                s->nexemplars++;
            break;
        case 5:
            if (wt != 2 || !pb_well_formed(sub))
                return -1;
            break;
        case 6:
            if (wt != 0)
                return -1;
            break;
        default:
            break;
        }
    }
    *nrefs = refs;
    s->nsamples = ns;
    return 0;
}

typedef struct symtab {
    const char **s;
    uint32_t *len;
    size_t n;
} symtab;

typedef struct md_ref {
    uint64_t type, help, unit;
    int present;
} md_ref;

static int decode_metadata(pb body, md_ref *m)
{
    m->present = 1;
    while (body.p < body.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&body, &num, &wt, &sub, &v) < 0)
            return -1;
        if (num == 1 || num == 3 || num == 4) {
            if (wt != 0)
                return -1;
            if (num == 1)
                m->type = v;
            else if (num == 3)
                m->help = v;
            else
                m->unit = v;
        }
    }
    return 0;
}

/* The r-th label reference of series idx (a name when r is even). */
static rw_rc add_ref(rw_in_series *s, const symtab *sym, size_t idx, size_t r, size_t nrefs,
                     uint64_t ref, rw_err *err)
{
    if (ref >= sym->n)
        return rw_err_set(err, RW_BADREQ,
                          "remote-write 2.0: series %zu: label reference %llu out of range "
                          "(%zu symbols)",
                          idx, (unsigned long long)ref, sym->n);
    if (r >= nrefs)
        return bad(err);
    size_t k = r / 2;
    if (r % 2 == 0) {
        s->labels[k].name = sym->s[ref];
        s->lens[2 * k] = sym->len[ref];
    } else {
        s->labels[k].value = sym->s[ref];
        s->lens[2 * k + 1] = sym->len[ref];
    }
    return RW_OK;
}

/* Decode pass over one TimeSeries (counts from count_series, memory
 * reserved); nrefs label references were counted. */
static rw_rc decode_series(pb body, size_t idx, const symtab *sym, size_t nrefs, rw_arena *a,
                           rw_in_series *s, rw_in_batch *out, rw_err *err)
{
    if (nrefs % 2)
        return rw_err_set(err, RW_BADREQ,
                          "remote-write 2.0: series %zu has an odd number of labels_refs (%zu)",
                          idx, nrefs);
    size_t nl = nrefs / 2, ns = s->nsamples;
    if (rw_in_series_alloc(a, s, nl, ns) < 0)
        return rw_in_decode_too_complex(err);
    s->nlabels = nl;
    s->nsamples = 0;
    size_t r = 0;
    rw_rc rc;
    md_ref md = {0, 0, 0, 0};
    while (body.p < body.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v = 0;
        rd_field(&body, &num, &wt, &sub, &v); /* checked by the count pass */
        if (num == 1) {
            pb packed = sub;
            int single = wt == 0;
            while (single || packed.p < packed.end) {
                uint64_t ref = v;
                if (!single && rd_varint(&packed, &ref) < 0)
                    return bad(err);
                single = 0;
                if ((rc = add_ref(s, sym, idx, r++, nrefs, ref, err)) != RW_OK)
                    return rc;
            }
        } else if (num == 2) {
            /* 2.0's Sample also has start_timestamp (3), a varint not kept */
            if (rw_in_pb_sample(sub, &s->samples[s->nsamples], 3) < 0)
                return bad(err);
            s->nsamples++;
        } else if (num == 5) {
            if (decode_metadata(sub, &md) < 0)
                return bad(err);
        }
    }
    if (md.present && (md.type != 0 || md.help || md.unit)) {
        /* strings are not terminated yet: compare with their lengths */
        const char *metric = NULL;
        for (size_t i = 0; i < s->nlabels && !metric; i++)
            if (s->lens[2 * i] == 8 && !memcmp(s->labels[i].name, RW_METRIC_NAME, 8))
                metric = s->labels[i].value;
        /* unusable metadata is ignored, never fatal */
        if (metric && md.help < sym->n && md.unit < sym->n) {
            rw_metadata *m = &out->metadata[out->nmetadata++];
            m->metric = metric;
            m->type = rw_in_metric_type_name(md.type);
            m->help = sym->s[md.help];
            m->unit = sym->s[md.unit];
        }
    }
    return RW_OK;
}

rw_rc rw_in_decode_v2(uint8_t *raw, size_t len, const rw_ingest_config *c, rw_in_mem *m,
                      rw_in_batch *out, rw_err *err)
{
    rw_arena *a = m->a;
    pb body = {raw, raw + len}, scan = body;
    size_t nts = 0, nsym = 0;
    const uint8_t *at;
    if (rw_in_pb_scan(body, 5, 4, &nts, &nsym, &at) < 0)
        return bad(err);
    rw_rc rc = rw_in_decode_series_limit(nts, c, err);
    if (rc != RW_OK)
        return rc;
    size_t nrefs_bytes = PB_ALIGN16((nts ? nts : 1) * sizeof(size_t));
    rc = rw_in_mem_grow(m, PB_ALIGN16((nts ? nts : 1) * sizeof(rw_in_series)) +
                                     PB_ALIGN16((nts ? nts : 1) * sizeof(rw_metadata)) +
                                     PB_ALIGN16((nsym ? nsym : 1) * sizeof(char *)) +
                                     PB_ALIGN16((nsym ? nsym : 1) * sizeof(uint32_t)) +
                                     nrefs_bytes,
                              err);
    if (rc != RW_OK)
        return rc;
    symtab sym = {rw_arena_alloc(a, (nsym ? nsym : 1) * sizeof(char *)),
                  rw_arena_alloc(a, (nsym ? nsym : 1) * sizeof(uint32_t)), 0};
    size_t *nrefs = rw_arena_alloc(a, (nts ? nts : 1) * sizeof *nrefs);
    out->series = rw_arena_calloc(a, nts ? nts : 1, sizeof *out->series);
    out->metadata = rw_arena_calloc(a, nts ? nts : 1, sizeof *out->metadata);
    if (!sym.s || !sym.len || !nrefs || !out->series || !out->metadata)
        return rw_in_decode_too_complex(err);
    /* count pass: symbols into the table, series' counts */
    size_t need = 0, nlabels = 0, k = 0;
    /* the span from the second symbol's field to the end of the last one */
    const uint8_t *sym_lo = NULL, *sym_hi = NULL;
    scan = body;
    while (scan.p < scan.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        const uint8_t *at = scan.p;
        rd_field(&scan, &num, &wt, &sub, &v); /* checked by the scan */
        if (num == 4) {
            if ((uint64_t)(sub.end - sub.p) > UINT32_MAX)
                return bad(err);
            if (sym.n == 1)
                sym_lo = at;
            sym_hi = scan.p;
            sym.s[sym.n] = (const char *)sub.p;
            sym.len[sym.n] = (uint32_t)(sub.end - sub.p);
            sym.n++;
        } else if (num == 5) {
            rw_in_series *s = &out->series[k];
            if (count_series(sub, s, &nrefs[k]) < 0)
                return bad(err);
            if (nrefs[k] / 2 > (size_t)c->max_labels_per_series) {
                s->labels_over = (uint32_t)(nrefs[k] / 2); /* counted only: validation rejects it */
                k++;
                continue;
            }
            need += rw_in_series_bytes(nrefs[k] / 2, s->nsamples);
            nlabels += nrefs[k] / 2;
            k++;
        }
    }
    if (nts && (sym.n == 0 || sym.len[0] != 0))
        return rw_err_set(err, RW_BADREQ, "remote-write 2.0: symbols[0] must be the empty string");
    /* every byte of that span ASCII and none NUL (whatever lies between the
       symbols included): every symbol but the first, the empty one, is
       ASCII without NUL, so are the label strings of every series (a
       reference to symbols[0] is an empty string, which validation still
       rejects) - as decode_v1.c's label span */
    uint8_t ascii = sym_lo && rw_ascii_nonul(sym_lo, (size_t)(sym_hi - sym_lo));
    if ((rc = rw_in_mem_grow(m, need + rw_in_stage_bytes(nts, nlabels), err)) != RW_OK)
        return rc;
    scan = body;
    while (scan.p < scan.end) {
        uint32_t num = 0;
        int wt = 0;
        pb sub = {NULL, NULL};
        uint64_t v;
        rd_field(&scan, &num, &wt, &sub, &v);
        if (num != 5)
            continue;
        size_t i = out->nseries++;
        if (out->series[i].labels_over)
            continue;
        if ((rc = decode_series(sub, i, &sym, nrefs[i], a, &out->series[i], out, err)) != RW_OK)
            return rc;
        out->series[i].ascii = ascii;
    }
    if (m->cache)
        rw_in_cache_find_labels(m, out->series, out->nseries);
    /* every symbol's end is the next field's tag or the body's spare byte,
       never read again now that parsing is over */
    for (size_t i = 0; i < sym.n; i++)
        ((char *)sym.s[i])[sym.len[i]] = '\0';
    return RW_OK;
}
