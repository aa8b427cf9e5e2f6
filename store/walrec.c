/* walrec.c - what a WAL record holds for one shard (a "section") and how it
 * is encoded: the group-commit leader (wal.c) turns the entries appends left
 * in the shard's pending chain (shard_append.c) into a section, and recovery
 * (recover.c) decodes sections back into series and samples. Also the varint
 * and label-blob helpers the store's rows share.
 *
 * A section is columnar so that zstd (applied by wal.c) finds the
 * repetition: remote-write sends one sample per series per request, and the
 * series of one scrape target arrive together with equal timestamps and in
 * the same order every scrape (FORMAT.md "WAL"):
 *
 *   uvarint flags (bit 0: values against 0, not the series' previous value),
 *   uvarint nser, uvarint nrun, uvarint len(series), len(ids), len(counts),
 *   len(times); then the columns:
 *   series  nser x (uvarint id, label blob)
 *   ids     nrun x zigzag(id - previous run's id)
 *   counts  nrun x uvarint(n << 1 | out_of_order)
 *   times   per run zigzag(t0 - previous run's t0), n-1 x zigzag(t_i - t_i-1)
 *   values  per sample, against the value last logged for the series in
 *           this segment (0 at a segment's start, so a segment decodes on
 *           its own): 0 = the same bits; odd c = integer delta
 *           unzigzag(c >> 1); even c = XOR with the previous bits, whose
 *           non-zero bytes follow ((c >> 1) - 1 = trailing zero bytes << 3 |
 *           byte count - 1).
 * The value state is per series id and segment; the leader owns the
 * encoder's, each replaying thread its decoder's. Every WALREC_RESET_EVERY-th
 * record of a segment has flag bit 0 set: its values stand alone. So when a
 * record that passed its checksum still cannot be decoded (a bug, or a
 * newer format), the series it touched are "poisoned" only until the next
 * such record: their samples in between are reported and skipped (their
 * bases are unknown), everything else is applied. */
#include <stdlib.h>
#include <string.h>
#include "store_int.h"

size_t uvarint_encode(uint8_t *p, uint64_t v)
{
    return (size_t)(put_uv(p, v) - p);
}

void put_uvarint(rw_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    rw_buf_append(b, tmp, uvarint_encode(tmp, v));
}

int get_uvarint_long(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    int shift = 0;
    const uint8_t *q = *p;
    while (q < end && shift < 64) {
        uint8_t byte = *q++;
        x |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *p = q;
            *v = x;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

uint8_t *labels_put(uint8_t *o, const rw_label *l, size_t n)
{
    o = put_uv(o, n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        o = put_uv(o, nl);
        memcpy(o, l[i].name, nl);
        o = put_uv(o + nl, vl);
        memcpy(o, l[i].value, vl);
        o += vl;
    }
    return o;
}

void labels_encode(rw_buf *b, const rw_label *l, size_t n)
{
    if (rw_buf_reserve(b, labels_encoded_len(l, n)) != RW_OK)
        return; /* b->failed */
    uint8_t *o = labels_put((uint8_t *)b->p + b->len, l, n);
    b->len = (size_t)(o - (uint8_t *)b->p);
    b->p[b->len] = '\0';
}

size_t labels_encoded_len(const rw_label *l, size_t n)
{
    size_t len = uvarint_len(n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        len += uvarint_len(nl) + nl + uvarint_len(vl) + vl;
    }
    return len;
}

int labels_decode(const uint8_t **p, const uint8_t *end, rw_label **out, size_t *nout)
{
    uint64_t n;
    const uint8_t *q = *p;
    if (get_uvarint(&q, end, &n) < 0 || n > RW_LABELS_MAX || n > (uint64_t)(end - q))
        return -1;
    /* first pass: sizes */
    size_t strbytes = 0;
    const uint8_t *r = q;
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint64_t len;
        if (get_uvarint(&r, end, &len) < 0 || len > (uint64_t)(end - r))
            return -1;
        r += len;
        strbytes += len + 1;
    }
    rw_label *l = malloc(n * sizeof *l + strbytes + 1);
    if (!l)
        return -1;
    char *sp = (char *)(l + n);
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint64_t len = 0; /* validated by the first pass */
        get_uvarint(&q, end, &len);
        memcpy(sp, q, len);
        sp[len] = '\0';
        if (memchr(sp, '\0', len)) {
            free(l);
            return -1;
        }
        if (i % 2 == 0)
            l[i / 2].name = sp;
        else
            l[i / 2].value = sp;
        sp += len + 1;
        q += len;
    }
    *p = q;
    *out = l;
    *nout = n;
    return 0;
}

int value_as_int(uint64_t bits, int64_t *out)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0)) /* also NaN */
        return 0;
    int64_t i = (int64_t)x;
    if ((double)i != x || (i == 0 && bits != 0)) /* fraction, or -0 */
        return 0;
    *out = i;
    return 1;
}

/* ---- per-series value state ---- */

int walstate_reserve(walstate *ws, uint32_t id)
{
    if (id < ws->cap)
        return 0;
    uint32_t nc = ws->cap ? ws->cap : 1024;
    while (nc <= id)
        nc = nc > UINT32_MAX / 2 ? UINT32_MAX : nc * 2;
    wsent *e = realloc(ws->e, (size_t)nc * sizeof *e);
    if (!e)
        return -1;
    ws->e = e;
    /* stamp 0 never names a live segment (numbers start at 1 and a segment
     * is never reused within 2^32 of another) */
    for (uint32_t i = ws->cap; i < nc; i++)
        e[i] = (wsent){.v = 0, .seg = 0, .bad = ws->all_bad}; /* poisoned when all are */
    ws->cap = nc;
    return 0;
}

void walstate_free(walstate *ws)
{
    free(ws->e);
    memset(ws, 0, sizeof *ws);
}

void walstate_poison_all(walstate *ws, uint64_t seg)
{
    uint32_t s = (uint32_t)seg;
    ws->all_bad = s;
    for (uint32_t i = 0; i < ws->cap; i++)
        ws->e[i].bad = s;
}

/* Whether the value base of id is unknown in segment seg (id < cap). */
static inline int ws_poisoned(const walstate *ws, uint32_t id, uint32_t seg)
{
    return ws->e[id].bad == seg;
}

/* The previous value of series id in segment seg (id < cap). */
static inline uint64_t ws_prev(const walstate *ws, uint32_t id, uint32_t seg)
{
    return ws->e[id].seg == seg ? ws->e[id].v : 0;
}

static inline uint8_t *val_put(uint8_t *p, uint64_t prev, uint64_t bits)
{
    if (bits == prev) {
        *p++ = 0;
        return p;
    }
    uint64_t x = bits ^ prev;
    unsigned tz = (unsigned)__builtin_ctzll(x) / 8, lz = (unsigned)__builtin_clzll(x) / 8;
    unsigned nb = 8 - tz - lz;
    int64_t a, b;
    if (value_as_int(prev, &a) && value_as_int(bits, &b)) {
        uint64_t z = zigzag(b - a) << 1 | 1;
        if (uvarint_len(z) <= 1 + nb)
            return put_uv(p, z);
    }
    *p++ = (uint8_t)((((tz << 3) | (nb - 1)) + 1) << 1);
    x >>= 8 * tz;
    for (unsigned k = 0; k < nb; k++, x >>= 8)
        *p++ = (uint8_t)x;
    return p;
}

static inline int val_get(const uint8_t **p, const uint8_t *end, uint64_t prev, uint64_t *out)
{
    uint64_t c;
    if (get_uvarint(p, end, &c) < 0)
        return -1;
    if (c == 0) {
        *out = prev;
        return 0;
    }
    if (c & 1) {
        int64_t a;
        if (!value_as_int(prev, &a))
            return -1;
        int64_t b = (int64_t)((uint64_t)a + (uint64_t)unzigzag(c >> 1));
        double d = (double)b;
        memcpy(out, &d, sizeof d);
        return 0;
    }
    uint64_t x = (c >> 1) - 1;
    unsigned tz = (unsigned)(x >> 3), nb = (unsigned)(x & 7) + 1;
    if (x > 63 || tz + nb > 8 || (size_t)(end - *p) < nb)
        return -1;
    uint64_t v = 0;
    for (unsigned k = 0; k < nb; k++)
        v |= (uint64_t)(*p)[k] << (8 * k);
    *p += nb;
    *out = prev ^ (v << (8 * tz));
    return 0;
}

/* ---- encode ---- */

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

int walrec_encode(const pchain *pc, walstate *ws, uint64_t seg, int reset, int64_t bound,
                  rw_buf *out, int64_t *maxt, int *future)
{
    /* pass 1: sizes of the columns (upper bounds) */
    size_t nser = 0, nrun = 0, nsmp = 0, serbytes = 0;
    uint32_t maxid = 0;
    for (const pbuf *b = pc->head; b; b = b->next) {
        for (size_t o = 0; o < b->len;) {
            uint8_t type = b->data[o];
            uint32_t id = rd32(b->data + o + 1), n = rd32(b->data + o + 5);
            if (id > maxid)
                maxid = id;
            if (type == PE_SERIES) {
                nser++;
                serbytes += 5 + n;
                o += 9 + n;
            } else {
                nrun++;
                nsmp += n;
                o += 9 + (size_t)n * 16;
            }
        }
    }
    if (walstate_reserve(ws, maxid) < 0)
        return -1;
    size_t cap = 60 + serbytes + nrun * 20 + nsmp * 20;
    if (rw_buf_reserve(out, cap) != RW_OK)
        return -1;
    /* columns are written at their worst-case offsets inside `out`, then
     * moved together */
    uint8_t *base = (uint8_t *)out->p + out->len;
    uint8_t *ser = base + 60, *ids = ser + serbytes, *cnt = ids + nrun * 10,
            *ts = cnt + nrun * 10, *vals = ts + nsmp * 10;
    uint8_t *ps = ser, *pi = ids, *pn = cnt, *pt = ts, *pv = vals;
    uint32_t seg32 = (uint32_t)seg, prev_id = 0;
    int64_t prev_t0 = 0, mx = *maxt;
    int fut = *future;
    for (const pbuf *b = pc->head; b; b = b->next) {
        for (size_t o = 0; o < b->len;) {
            const uint8_t *e = b->data + o;
            uint8_t type = e[0];
            uint32_t id = rd32(e + 1), n = rd32(e + 5);
            if (type == PE_SERIES) {
                ps = put_uv(ps, id);
                memcpy(ps, e + 9, n);
                ps += n;
                o += 9 + n;
                continue;
            }
            pi = put_uv(pi, zigzag((int64_t)id - (int64_t)prev_id));
            prev_id = id;
            pn = put_uv(pn, (uint64_t)n << 1 | (type == PE_OOO));
            uint64_t prev = reset ? 0 : ws_prev(ws, id, seg32);
            int64_t tprev = 0;
            for (uint32_t i = 0; i < n; i++) {
                int64_t t;
                uint64_t v;
                memcpy(&t, e + 9 + (size_t)i * 16, 8);
                memcpy(&v, e + 9 + (size_t)i * 16 + 8, 8);
                if (i == 0) {
                    pt = put_uv(pt, zigzag((int64_t)((uint64_t)t - (uint64_t)prev_t0)));
                    prev_t0 = t;
                } else {
                    pt = put_uv(pt, zigzag((int64_t)((uint64_t)t - (uint64_t)tprev)));
                }
                tprev = t;
                if (t > bound)
                    fut = 1;
                else if (t > mx)
                    mx = t;
                pv = val_put(pv, prev, v);
                prev = v;
            }
            ws->e[id].v = prev;
            ws->e[id].seg = seg32;
            o += 9 + (size_t)n * 16;
        }
    }
    /* header, then the columns back to back */
    uint8_t *h = base;
    h = put_uv(h, reset ? 1 : 0);
    h = put_uv(h, nser);
    h = put_uv(h, nrun);
    h = put_uv(h, (uint64_t)(ps - ser));
    h = put_uv(h, (uint64_t)(pi - ids));
    h = put_uv(h, (uint64_t)(pn - cnt));
    h = put_uv(h, (uint64_t)(pt - ts));
    memmove(h, ser, (size_t)(ps - ser));
    h += ps - ser;
    memmove(h, ids, (size_t)(pi - ids));
    h += pi - ids;
    memmove(h, cnt, (size_t)(pn - cnt));
    h += pn - cnt;
    memmove(h, ts, (size_t)(pt - ts));
    h += pt - ts;
    memmove(h, vals, (size_t)(pv - vals));
    h += pv - vals;
    out->len += (size_t)(h - base);
    *maxt = mx;
    *future = fut;
    return 0;
}

/* ---- decode ---- */

void walbatch_free(walbatch *b)
{
    free(b->id);
    free(b->n);
    free(b->ooo);
    free(b->t);
    free(b->v);
    memset(b, 0, sizeof *b);
}

static int batch_reserve(walbatch *b, size_t nrun, size_t nsmp)
{
    if (nrun > b->caprun) {
        uint32_t *id = realloc(b->id, nrun * sizeof *id);
        if (!id)
            return -1;
        b->id = id;
        uint32_t *n = realloc(b->n, nrun * sizeof *n);
        if (!n)
            return -1;
        b->n = n;
        uint8_t *o = realloc(b->ooo, nrun);
        if (!o)
            return -1;
        b->ooo = o;
        b->caprun = nrun;
    }
    if (nsmp > b->capsmp) {
        int64_t *t = realloc(b->t, nsmp * sizeof *t);
        if (!t)
            return -1;
        b->t = t;
        uint64_t *v = realloc(b->v, nsmp * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->capsmp = nsmp;
    }
    return 0;
}

/* Marks the series of runs [from, nrun) poisoned: their value bases are
 * unknown until the next record that stands alone. */
static void poison_runs(walstate *ws, const uint8_t *pi, const uint8_t *pie, int64_t prev_id,
                        uint64_t from, uint64_t nrun, uint32_t seg32)
{
    for (uint64_t r = from; r < nrun; r++) {
        uint64_t zid;
        if (get_uvarint(&pi, pie, &zid) < 0) {
            walstate_poison_all(ws, seg32);
            return;
        }
        int64_t id = prev_id + unzigzag(zid);
        prev_id = id;
        if (id <= 0 || id >= UINT32_MAX || walstate_reserve(ws, (uint32_t)id) < 0) {
            walstate_poison_all(ws, seg32);
            return;
        }
        ws->e[id].bad = seg32;
    }
}

int walrec_decode(const uint8_t *b, size_t len, walstate *ws, uint64_t seg, wal_visitor *v,
                  uint64_t *unapplied, const char **msg)
{
    const uint8_t *p = b, *end = b + len;
    uint32_t seg32 = (uint32_t)seg;
    uint64_t flags, nser, nrun, lser, lids, lcnt, lts;
    if (get_uvarint(&p, end, &flags) < 0 || get_uvarint(&p, end, &nser) < 0 ||
        get_uvarint(&p, end, &nrun) < 0 || get_uvarint(&p, end, &lser) < 0 ||
        get_uvarint(&p, end, &lids) < 0 || get_uvarint(&p, end, &lcnt) < 0 ||
        get_uvarint(&p, end, &lts) < 0) {
        *msg = "bad section header";
        walstate_poison_all(ws, seg32);
        return -1;
    }
    size_t rest = (size_t)(end - p);
    if (lser > rest || lids > rest - lser || lcnt > rest - lser - lids ||
        lts > rest - lser - lids - lcnt) {
        *msg = "column lengths past the section";
        walstate_poison_all(ws, seg32);
        return -1;
    }
    int reset = (int)(flags & 1);
    const uint8_t *ps = p, *pse = ps + lser;
    const uint8_t *pi = pse, *pie = pi + lids;
    const uint8_t *pn = pie, *pne = pn + lcnt;
    const uint8_t *pt = pne, *pte = pt + lts;
    const uint8_t *pv = pte, *pve = end;
    int bad = 0;
    for (uint64_t i = 0; i < nser; i++) {
        uint64_t id;
        rw_label *l;
        size_t nl;
        if (get_uvarint(&ps, pse, &id) < 0 || id == 0 || id >= UINT32_MAX ||
            labels_decode(&ps, pse, &l, &nl) < 0) {
            /* the runs are still readable: their series are applied below
             * when they exist; a series this entry would have created is
             * missing, and its samples are reported as unknown */
            *msg = "bad series entry";
            bad = 1;
            break;
        }
        /* a series entry precedes the first sample of a new series (ids
         * are never reused): its base in this segment is known, 0 */
        if (walstate_reserve(ws, (uint32_t)id) == 0) {
            ws->e[id].bad = 0;
            ws->e[id].seg = 0;
        }
        if (v->series_fn(v->ctx, (uint32_t)id, l, nl) < 0)
            bad = 1; /* reported by the callback; its samples are unknown refs */
    }
    /* every sample takes at least one byte of the times column */
    walbatch *bt = &v->batch;
    bt->nrun = bt->nsmp = 0;
    if (batch_reserve(bt, (size_t)(nrun < lids ? nrun : lids) + 1, (size_t)lts + 1) < 0) {
        *msg = "out of memory";
        return -1;
    }
    int64_t prev_id = 0, prev_t0 = 0;
    int rc = 0;
    for (uint64_t r = 0; r < nrun; r++) {
        const uint8_t *pi_run = pi;
        uint64_t zid, nc;
        if (get_uvarint(&pi, pie, &zid) < 0 || get_uvarint(&pn, pne, &nc) < 0) {
            *msg = "bad run";
            walstate_poison_all(ws, seg32);
            rc = -1;
            break;
        }
        int64_t id = prev_id + unzigzag(zid);
        uint64_t n = nc >> 1;
        int ooo = (int)(nc & 1);
        if (id <= 0 || id >= UINT32_MAX || n == 0 || n > (uint64_t)(pte - pt) ||
            walstate_reserve(ws, (uint32_t)id) < 0) {
            *msg = id <= 0 || id >= UINT32_MAX || n == 0 ? "bad run" : "out of memory";
            poison_runs(ws, pi_run, pie, prev_id, r, nrun, seg32);
            rc = -1;
            break;
        }
        prev_id = id;
        int skip = !reset && ws_poisoned(ws, (uint32_t)id, seg32);
        uint64_t prev = reset ? 0 : ws_prev(ws, (uint32_t)id, seg32);
        int64_t t = 0;
        size_t at = bt->nsmp;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t z, bits;
            if (get_uvarint(&pt, pte, &z) < 0 || val_get(&pv, pve, prev, &bits) < 0) {
                *msg = "bad sample";
                poison_runs(ws, pi_run, pie, prev_id - unzigzag(zid), r, nrun, seg32);
                rc = -1;
                break;
            }
            if (i == 0) {
                t = (int64_t)((uint64_t)prev_t0 + (uint64_t)unzigzag(z));
                prev_t0 = t;
            } else {
                t = (int64_t)((uint64_t)t + (uint64_t)unzigzag(z));
            }
            prev = bits;
            bt->t[at + i] = t;
            bt->v[at + i] = bits;
        }
        if (rc < 0)
            break;
        ws->e[id].v = prev;
        ws->e[id].seg = seg32;
        if (reset)
            ws->e[id].bad = 0;
        if (skip) {
            *unapplied += n;
            continue;
        }
        bt->id[bt->nrun] = (uint32_t)id;
        bt->n[bt->nrun] = (uint32_t)n;
        bt->ooo[bt->nrun] = (uint8_t)ooo;
        bt->nrun++;
        bt->nsmp += n;
    }
    /* apply what was decoded, even when the rest could not be */
    if (bt->nrun && v->batch_fn(v->ctx, bt) < 0) {
        *msg = "out of memory";
        return -1;
    }
    if (rc < 0)
        return -1;
    if (pi != pie || pn != pne || pt != pte || pv != pve) {
        *msg = "trailing bytes in a column";
        return -1;
    }
    if (bad) {
        if (!*msg)
            *msg = "a series entry could not be applied";
        return -1;
    }
    return 0;
}
