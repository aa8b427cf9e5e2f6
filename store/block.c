/* block.c - the persisted form of samples. A flush (flush.c) writes, per
 * shard, a block: one part per series (its samples of the flushed range),
 * the timestamp columns those parts share, and the block's index. Reads
 * (shard_read.c, merge.c) find a series' part through the index and decode
 * it; recovery reads the indexes to learn each series' persisted range.
 *
 * Columns, not chunks: the samples of all series scraped from one target
 * share their timestamps, so a block stores each distinct timestamp
 * sequence once (table `tscols`) and a part holds only its values:
 *   constant        one value
 *   integers        delta-of-delta of the integers (counters, buckets)
 *   floats          XOR with the previous value, non-zero bytes only
 * each zstd-compressed when that is smaller. On the bench's etcd fleet this
 * is ~0.3-0.4 bytes per sample against ~1.05 for the head chunk codec.
 *
 * Decoded indexes and timestamp columns are kept in a small per-shard cache
 * (bounded bytes, least recently used out), reference counted so that an
 * eviction never frees what a reader holds. Layout: FORMAT.md "Blocks". */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "store_int.h"

#define CACHE_BYTES_TOTAL (64u << 20)
#define F_ZSTD 0x80

enum { V_CONST = 0, V_INT = 1, V_XOR = 2 };

/* out = [mode | F_ZSTD?][payload or its zstd frame] */
static int finish(uint8_t mode, const uint8_t *raw, size_t rawlen, rw_buf *out, void *zc)
{
    size_t bound = ZSTD_compressBound(rawlen);
    if (rw_buf_reserve(out, 1 + (bound > rawlen ? bound : rawlen)) != RW_OK)
        return -1;
    uint8_t *o = (uint8_t *)out->p + out->len;
    size_t c = rawlen >= 16 && zc ? ZSTD_compressCCtx(zc, o + 1, bound, raw, rawlen, 3) : 0;
    if (c && !ZSTD_isError(c) && c + 4 < rawlen) {
        o[0] = (uint8_t)(mode | F_ZSTD);
        out->len += 1 + c;
    } else {
        o[0] = mode;
        memcpy(o + 1, raw, rawlen);
        out->len += 1 + rawlen;
    }
    return 0;
}

/* The payload of b (after the mode byte), decompressed into scratch when
 * needed. rawcap: the most bytes it may decompress to. */
static const uint8_t *payload(const uint8_t *b, size_t len, size_t rawcap, void *zd,
                              rw_buf *scratch, size_t *plen)
{
    if (!(b[0] & F_ZSTD)) {
        *plen = len - 1;
        return b + 1;
    }
    unsigned long long sz = ZSTD_getFrameContentSize(b + 1, len - 1);
    if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN || sz > rawcap)
        return NULL;
    rw_buf_reset(scratch);
    if (rw_buf_reserve(scratch, (size_t)sz) != RW_OK)
        return NULL;
    size_t r = zd ? ZSTD_decompressDCtx(zd, scratch->p, (size_t)sz, b + 1, len - 1)
                  : ZSTD_decompress(scratch->p, (size_t)sz, b + 1, len - 1);
    if (ZSTD_isError(r) || r != sz)
        return NULL;
    *plen = r;
    return (const uint8_t *)scratch->p;
}

/* The payload of a counted column (timestamps, block index: mode 0, maybe
 * zstd) from its leading count on, and that count in *n: at most one entry
 * per payload byte, so a corrupt count cannot ask for more memory than the
 * column could describe. NULL when malformed. */
static const uint8_t *counted_payload(const uint8_t *b, size_t len, size_t rawcap, void *zd,
                                      rw_buf *scratch, const uint8_t **end, uint64_t *n)
{
    if (len < 2 || (b[0] & ~F_ZSTD) != 0)
        return NULL;
    size_t plen;
    const uint8_t *p = payload(b, len, rawcap, zd, scratch, &plen);
    if (!p)
        return NULL;
    *end = p + plen;
    if (get_uvarint(&p, *end, n) < 0 || *n > plen)
        return NULL;
    return p;
}

/* ---- values ---- */

int part_encode_values(const uint64_t *v, size_t n, rw_buf *out, rw_buf *scratch, void *zc)
{
    int allsame = 1, allint = 1;
    int64_t iv;
    for (size_t i = 0; i < n && (allsame || allint); i++) {
        if (v[i] != v[0])
            allsame = 0;
        if (allint && !value_as_int(v[i], &iv))
            allint = 0;
    }
    if (allsame) {
        if (rw_buf_reserve(out, 9) != RW_OK)
            return -1;
        uint8_t *o = (uint8_t *)out->p + out->len;
        o[0] = V_CONST;
        memcpy(o + 1, &v[0], 8);
        out->len += 9;
        return 0;
    }
    rw_buf_reset(scratch);
    if (rw_buf_reserve(scratch, n * 10 + 16) != RW_OK)
        return -1;
    uint8_t *p = (uint8_t *)scratch->p, *p0 = p;
    if (allint) {
        int64_t prev = 0, pd = 0;
        for (size_t i = 0; i < n; i++) {
            value_as_int(v[i], &iv);
            int64_t d = iv - prev;
            p = put_uv(p, zigzag(d - pd));
            pd = d;
            prev = iv;
        }
        return finish(V_INT, p0, (size_t)(p - p0), out, zc);
    }
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i] ^ prev;
        prev = v[i];
        if (!x) {
            *p++ = 0;
            continue;
        }
        unsigned tz = (unsigned)__builtin_ctzll(x) / 8, lz = (unsigned)__builtin_clzll(x) / 8;
        unsigned nb = 8 - tz - lz;
        *p++ = (uint8_t)(((tz << 3) | (nb - 1)) + 1);
        x >>= 8 * tz;
        for (unsigned k = 0; k < nb; k++, x >>= 8)
            *p++ = (uint8_t)x;
    }
    return finish(V_XOR, p0, (size_t)(p - p0), out, zc);
}

int part_decode_values(const uint8_t *b, size_t len, size_t n, uint64_t *v, rw_buf *scratch,
                       void *zd)
{
    if (len < 1)
        return -1;
    uint8_t mode = b[0] & ~F_ZSTD;
    if (mode == V_CONST) {
        if (len != 9)
            return -1;
        uint64_t c;
        memcpy(&c, b + 1, 8);
        for (size_t i = 0; i < n; i++)
            v[i] = c;
        return 0;
    }
    size_t plen;
    const uint8_t *p = payload(b, len, n * 10 + 16, zd, scratch, &plen);
    if (!p)
        return -1;
    const uint8_t *end = p + plen;
    if (mode == V_INT) {
        int64_t prev = 0, pd = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t z;
            if (get_uvarint(&p, end, &z) < 0)
                return -1;
            int64_t d = (int64_t)((uint64_t)pd + (uint64_t)unzigzag(z));
            prev = (int64_t)((uint64_t)prev + (uint64_t)d);
            pd = d;
            double x = (double)prev;
            memcpy(&v[i], &x, 8);
        }
        return p == end ? 0 : -1;
    }
    if (mode != V_XOR)
        return -1;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (p >= end)
            return -1;
        uint8_t c = *p++;
        if (c) {
            unsigned x = (unsigned)c - 1, tz = x >> 3, nb = (x & 7) + 1;
            if (tz + nb > 8 || (size_t)(end - p) < nb)
                return -1;
            uint64_t w = 0;
            for (unsigned k = 0; k < nb; k++)
                w |= (uint64_t)p[k] << (8 * k);
            p += nb;
            prev ^= w << (8 * tz);
        }
        v[i] = prev;
    }
    return p == end ? 0 : -1;
}

/* ---- timestamps ---- */

int ts_encode(const int64_t *t, size_t n, rw_buf *out, rw_buf *scratch, void *zc)
{
    rw_buf_reset(scratch);
    if (rw_buf_reserve(scratch, n * 10 + 16) != RW_OK)
        return -1;
    uint8_t *p = (uint8_t *)scratch->p, *p0 = p;
    p = put_uv(p, n);
    int64_t pd = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0) {
            p = put_uv(p, zigzag(t[0]));
            continue;
        }
        int64_t d = (int64_t)((uint64_t)t[i] - (uint64_t)t[i - 1]);
        p = put_uv(p, zigzag((int64_t)((uint64_t)d - (uint64_t)pd)));
        pd = d;
    }
    return finish(0, p0, (size_t)(p - p0), out, zc);
}

tscol *ts_decode(int64_t id, const uint8_t *b, size_t len, rw_buf *scratch, void *zd)
{
    const uint8_t *end;
    uint64_t n;
    const uint8_t *p = counted_payload(b, len, (size_t)1 << 30, zd, scratch, &end, &n);
    if (!p)
        return NULL;
    tscol *c = malloc(sizeof *c + (size_t)n * sizeof(int64_t));
    if (!c)
        return NULL;
    c->id = id;
    c->n = (size_t)n;
    atomic_init(&c->refs, 1);
    int64_t pd = 0, t = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t z;
        if (get_uvarint(&p, end, &z) < 0) {
            free(c);
            return NULL;
        }
        if (i == 0) {
            t = unzigzag(z);
        } else {
            pd = (int64_t)((uint64_t)pd + (uint64_t)unzigzag(z));
            t = (int64_t)((uint64_t)t + (uint64_t)pd);
        }
        c->t[i] = t;
    }
    if (p != end) {
        free(c);
        return NULL;
    }
    return c;
}

void tscol_put(tscol *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        free(c);
}

/* ---- block index ---- */

#define IDX_PIECE 4096 /* entries encoded at a time: at most 192 KiB */

static inline size_t uv_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

/* Entries e[i, j) after the previous sid / rowid (advanced). */
static uint8_t *put_ents(uint8_t *p, const bidx_ent *e, size_t i, size_t j, int64_t base_mint,
                         uint32_t *psid, int64_t *prow)
{
    for (; i < j; i++) {
        p = put_uv(p, e[i].sid - *psid);
        *psid = e[i].sid;
        p = put_uv(p, zigzag(e[i].rowid - *prow));
        *prow = e[i].rowid;
        p = put_uv(p, zigzag((int64_t)((uint64_t)e[i].mint - (uint64_t)base_mint)));
        p = put_uv(p, (uint64_t)e[i].maxt - (uint64_t)e[i].mint);
        p = put_uv(p, e[i].n);
        memcpy(p, &e[i].lastv, 8);
        p += 8;
    }
    return p;
}

/* A large index through a zstd stream, piece by piece, its exact length
 * pledged first (the frame says it, as a one-shot frame does): neither the
 * raw index nor its worst-case compressed bound is ever in memory whole -
 * for a flush of a million series those were 24 and 16 MB a shard. */
static int bidx_stream(const bidx_ent *e, size_t n, int64_t base_mint, int64_t base_rowid,
                       rw_buf *out, rw_buf *scratch, ZSTD_CCtx *zc)
{
    size_t rawlen = uv_len(n);
    uint32_t psid = 0;
    int64_t prow = base_rowid;
    for (size_t i = 0; i < n; i++) {
        rawlen += uv_len(e[i].sid - psid) + uv_len(zigzag(e[i].rowid - prow)) +
                  uv_len(zigzag((int64_t)((uint64_t)e[i].mint - (uint64_t)base_mint))) +
                  uv_len((uint64_t)e[i].maxt - (uint64_t)e[i].mint) + uv_len(e[i].n) + 8;
        psid = e[i].sid;
        prow = e[i].rowid;
    }
    if (ZSTD_isError(ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, 3)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(zc, rawlen)))
        return -1;
    rw_buf_reset(scratch);
    if (rw_buf_reserve(scratch, IDX_PIECE * 48 + 16) != RW_OK ||
        rw_buf_reserve(out, 1 + ZSTD_CStreamOutSize()) != RW_OK)
        return -1;
    size_t start = out->len;
    out->p[out->len++] = (char)F_ZSTD;
    psid = 0;
    prow = base_rowid;
    for (size_t i = 0, first = 1; i < n || first; first = 0) {
        uint8_t *p0 = (uint8_t *)scratch->p, *p = p0;
        if (first)
            p = put_uv(p, n);
        size_t j = n - i > IDX_PIECE ? i + IDX_PIECE : n;
        p = put_ents(p, e, i, j, base_mint, &psid, &prow);
        i = j;
        ZSTD_EndDirective end = i == n ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer in = {p0, (size_t)(p - p0), 0};
        size_t left;
        do {
            if (rw_buf_reserve(out, ZSTD_CStreamOutSize()) != RW_OK)
                return -1;
            ZSTD_outBuffer ob = {out->p + out->len, out->alloc - out->len - 1, 0};
            left = ZSTD_compressStream2(zc, &ob, &in, end);
            if (ZSTD_isError(left))
                return -1;
            out->len += ob.pos;
        } while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
    }
    if (out->len - start - 1 + 4 < rawlen)
        return 0;
    /* it did not shrink (never seen): raw, as finish() would */
    out->len = start;
    if (rw_buf_reserve(out, 1 + rawlen) != RW_OK)
        return -1;
    uint8_t *p = (uint8_t *)out->p + out->len;
    *p++ = 0;
    p = put_uv(p, n);
    psid = 0;
    prow = base_rowid;
    p = put_ents(p, e, 0, n, base_mint, &psid, &prow);
    out->len = (size_t)(p - (uint8_t *)out->p);
    return 0;
}

int bidx_encode(const bidx_ent *e, size_t n, int64_t base_mint, int64_t base_rowid, rw_buf *out,
                rw_buf *scratch, void *zc)
{
    if (zc && n > IDX_PIECE)
        return bidx_stream(e, n, base_mint, base_rowid, out, scratch, zc);
    rw_buf_reset(scratch);
    if (rw_buf_reserve(scratch, n * 48 + 16) != RW_OK)
        return -1;
    uint8_t *p = (uint8_t *)scratch->p, *p0 = p;
    p = put_uv(p, n);
    uint32_t psid = 0;
    int64_t prow = base_rowid;
    p = put_ents(p, e, 0, n, base_mint, &psid, &prow);
    return finish(0, p0, (size_t)(p - p0), out, zc);
}

bidx *bidx_decode(const uint8_t *b, size_t len, int64_t base_mint, int64_t base_rowid,
                  rw_buf *scratch, void *zd)
{
    const uint8_t *end;
    uint64_t n;
    const uint8_t *p = counted_payload(b, len, (size_t)1 << 31, zd, scratch, &end, &n);
    if (!p)
        return NULL;
    bidx *x = malloc(sizeof *x + (size_t)n * sizeof(bidx_ent));
    if (!x)
        return NULL;
    atomic_init(&x->refs, 1);
    x->n = (size_t)n;
    uint64_t sid = 0;
    int64_t row = base_rowid;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ds, zr, zm, span, cnt;
        if (get_uvarint(&p, end, &ds) < 0 || get_uvarint(&p, end, &zr) < 0 ||
            get_uvarint(&p, end, &zm) < 0 || get_uvarint(&p, end, &span) < 0 ||
            get_uvarint(&p, end, &cnt) < 0 ||
            (size_t)(end - p) < 8 || (i && ds == 0) || sid + ds >= UINT32_MAX ||
            cnt == 0 || cnt > UINT32_MAX) {
            free(x);
            return NULL;
        }
        sid += ds;
        row += unzigzag(zr);
        bidx_ent *e = &x->e[i];
        e->sid = (uint32_t)sid;
        e->rowid = row;
        e->mint = (int64_t)((uint64_t)base_mint + (uint64_t)unzigzag(zm));
        e->maxt = (int64_t)((uint64_t)e->mint + span);
        e->n = (uint32_t)cnt;
        memcpy(&e->lastv, p, 8);
        p += 8;
    }
    if (p != end) {
        free(x);
        return NULL;
    }
    return x;
}

void bidx_put(bidx *x)
{
    if (x && atomic_fetch_sub(&x->refs, 1) == 1)
        free(x);
}

const bidx_ent *bidx_find(const bidx *x, uint32_t sid)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->e[mid].sid < sid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n && x->e[lo].sid == sid ? &x->e[lo] : NULL;
}

void blockd_put(blockd *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* ---- cache ---- */

typedef struct cache_ent {
    int64_t block;
    bidx *idx;
    tscol **ts;          /* ts_hi - ts_lo + 1 slots, filled on demand */
    size_t nts;
    int64_t ts_lo;
    size_t bytes;
    uint64_t tick;
} cache_ent;

static size_t cache_limit(const rw_shard *sh)
{
    size_t l = CACHE_BYTES_TOTAL / (size_t)sh->store->nshards;
    return l < (1u << 20) ? (1u << 20) : l;
}

static void ent_free(cache_ent *c)
{
    bidx_put(c->idx);
    for (size_t i = 0; i < c->nts; i++)
        tscol_put(c->ts[i]);
    free(c->ts);
}

/* Evicts least recently used entries until the cache fits (cache_mu held). */
static void cache_trim(rw_shard *sh, size_t limit)
{
    while (sh->cache_bytes > limit && sh->ncache) {
        size_t old = 0;
        for (size_t i = 1; i < sh->ncache; i++)
            if (sh->cache[i].tick < sh->cache[old].tick)
                old = i;
        sh->cache_bytes -= sh->cache[old].bytes;
        ent_free(&sh->cache[old]);
        sh->cache[old] = sh->cache[--sh->ncache];
    }
}

void cache_free(rw_shard *sh)
{
    for (size_t i = 0; i < sh->ncache; i++)
        ent_free(&sh->cache[i]);
    free(sh->cache);
    sh->cache = NULL;
    sh->ncache = sh->capcache = sh->cache_bytes = 0;
}

void cache_drop_block(rw_shard *sh, const blockd *b)
{
    pthread_mutex_lock(&sh->cache_mu);
    for (size_t i = 0; i < sh->ncache; i++) {
        if (sh->cache[i].block == b->id) {
            sh->cache_bytes -= sh->cache[i].bytes;
            ent_free(&sh->cache[i]);
            sh->cache[i] = sh->cache[--sh->ncache];
            break;
        }
    }
    pthread_mutex_unlock(&sh->cache_mu);
}

static cache_ent *cache_find(rw_shard *sh, int64_t block)
{
    for (size_t i = 0; i < sh->ncache; i++)
        if (sh->cache[i].block == block) {
            sh->cache[i].tick = ++sh->cache_tick;
            return &sh->cache[i];
        }
    return NULL;
}

/* Reads and decodes a block's index row (rd_mu held). */
static bidx *load_index(rw_shard *sh, const blockd *b, rw_buf *scratch, rw_err *err)
{
    sqlite3_stmt *q = sh->st_idx_get;
    sqlite3_bind_int64(q, 1, b->id);
    int r = sqlite3_step(q);
    bidx *x = NULL;
    if (r == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(q, 0);
        int len = sqlite3_column_bytes(q, 0);
        x = blob ? bidx_decode(blob, (size_t)len, b->mint, b->parts_lo, scratch, sh->zd) : NULL;
        if (!x)
            rw_err_set(err, RW_INTERNAL, "shard %d: index of block %lld is corrupt", sh->idx,
                       (long long)b->id);
    } else if (r == SQLITE_DONE) {
        rw_err_set(err, RW_INTERNAL, "shard %d: block %lld has no index", sh->idx,
                   (long long)b->id);
    } else {
        db_rc(sh->rdb, r, "read block index", err);
    }
    sqlite3_reset(q);
    return x;
}

bidx *block_index(rw_shard *sh, blockd *b, rw_err *err)
{
    pthread_mutex_lock(&sh->cache_mu);
    cache_ent *c = cache_find(sh, b->id);
    if (c) {
        bidx *x = c->idx;
        atomic_fetch_add(&x->refs, 1);
        pthread_mutex_unlock(&sh->cache_mu);
        return x;
    }
    pthread_mutex_unlock(&sh->cache_mu);
    /* load outside the cache lock (another reader may load it too; the
     * second insert is dropped) */
    rw_buf scratch;
    rw_buf_init(&scratch, 0);
    pthread_mutex_lock(&sh->rd_mu);
    bidx *x = load_index(sh, b, &scratch, err);
    pthread_mutex_unlock(&sh->rd_mu);
    rw_buf_free(&scratch);
    if (!x)
        return NULL;
    size_t nts = b->ts_hi >= b->ts_lo ? (size_t)(b->ts_hi - b->ts_lo + 1) : 0;
    tscol **ts = nts ? calloc(nts, sizeof *ts) : NULL;
    pthread_mutex_lock(&sh->cache_mu);
    if (!cache_find(sh, b->id) && (ts || !nts) && !b->dead) {
        if (sh->ncache == sh->capcache) {
            size_t nc = sh->capcache ? sh->capcache * 2 : 32;
            cache_ent *n = realloc(sh->cache, nc * sizeof *n);
            if (n) {
                sh->cache = n;
                sh->capcache = nc;
            }
        }
        if (sh->ncache < sh->capcache) {
            cache_ent *e = &sh->cache[sh->ncache++];
            e->block = b->id;
            e->idx = x;
            atomic_fetch_add(&x->refs, 1);
            e->ts = ts;
            e->nts = nts;
            e->ts_lo = b->ts_lo;
            e->bytes = sizeof *x + x->n * sizeof(bidx_ent) + nts * sizeof *ts;
            e->tick = ++sh->cache_tick;
            sh->cache_bytes += e->bytes;
            ts = NULL;
            cache_trim(sh, cache_limit(sh));
        }
    }
    pthread_mutex_unlock(&sh->cache_mu);
    free(ts);
    return x;
}

size_t cache_bytes(rw_shard *sh)
{
    pthread_mutex_lock(&sh->cache_mu);
    size_t b = sh->cache_bytes;
    pthread_mutex_unlock(&sh->cache_mu);
    return b;
}

static int by_maxt_desc(const void *a, const void *b)
{
    const blockd *x = *(const blockd *const *)a, *y = *(const blockd *const *)b;
    return x->maxt > y->maxt ? -1 : x->maxt < y->maxt;
}

/* Timestamp column `id` of block b (rd_mu held); cached with the block. */
static tscol *get_tscol(rw_shard *sh, const blockd *b, int64_t id, rw_buf *scratch, rw_err *err)
{
    pthread_mutex_lock(&sh->cache_mu);
    cache_ent *c = cache_find(sh, b->id);
    if (c && id >= c->ts_lo && (size_t)(id - c->ts_lo) < c->nts && c->ts[id - c->ts_lo]) {
        tscol *t = c->ts[id - c->ts_lo];
        atomic_fetch_add(&t->refs, 1);
        pthread_mutex_unlock(&sh->cache_mu);
        return t;
    }
    pthread_mutex_unlock(&sh->cache_mu);
    sqlite3_stmt *q = sh->st_ts_get;
    sqlite3_bind_int64(q, 1, id);
    int r = sqlite3_step(q);
    tscol *t = NULL;
    if (r == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(q, 0);
        t = blob ? ts_decode(id, blob, (size_t)sqlite3_column_bytes(q, 0), scratch, sh->zd) : NULL;
        if (!t)
            rw_err_set(err, RW_INTERNAL, "shard %d: timestamp column %lld is corrupt", sh->idx,
                       (long long)id);
    } else if (r == SQLITE_DONE) {
        rw_err_set(err, RW_NOTFOUND, "gone");
    } else {
        db_rc(sh->rdb, r, "read timestamps", err);
    }
    sqlite3_reset(q);
    if (!t)
        return NULL;
    pthread_mutex_lock(&sh->cache_mu);
    c = cache_find(sh, b->id);
    if (c && id >= c->ts_lo && (size_t)(id - c->ts_lo) < c->nts && !c->ts[id - c->ts_lo]) {
        c->ts[id - c->ts_lo] = t;
        atomic_fetch_add(&t->refs, 1);
        size_t add = sizeof *t + t->n * sizeof(int64_t);
        c->bytes += add;
        sh->cache_bytes += add;
        cache_trim(sh, cache_limit(sh));
    }
    pthread_mutex_unlock(&sh->cache_mu);
    return t;
}

/* Decodes the timestamp columns of block b into the cache, one at a time
 * (the reader connection is taken for each, so a query waits for one read at
 * most), while the cache stays under half its bound. */
static void warm_tscols(rw_shard *sh, const blockd *b)
{
    rw_buf scratch;
    rw_buf_init(&scratch, 0);
    for (int64_t id = b->ts_lo; id <= b->ts_hi && !store_stopping(sh->store); id++) {
        if (cache_bytes(sh) >= cache_limit(sh) / 2)
            break;
        rw_err e;
        rw_err_init(&e);
        pthread_mutex_lock(&sh->rd_mu);
        tscol_put(get_tscol(sh, b, id, &scratch, &e)); /* a failure is the query's to report */
        pthread_mutex_unlock(&sh->rd_mu);
    }
    rw_buf_free(&scratch);
}

void shard_warm_cache(rw_shard *sh)
{
    pthread_mutex_lock(&sh->mu);
    size_t n = sh->nblocks;
    blockd **bl = n ? malloc(n * sizeof *bl) : NULL;
    for (size_t i = 0; bl && i < n; i++) {
        bl[i] = sh->blocks[i];
        atomic_fetch_add(&bl[i]->refs, 1);
    }
    pthread_mutex_unlock(&sh->mu);
    if (!bl)
        return;
    /* newest data first: what dashboards open with */
    qsort(bl, n, sizeof *bl, by_maxt_desc);
    for (size_t i = 0; i < n; i++) {
        if (!store_stopping(sh->store) && cache_bytes(sh) < cache_limit(sh) / 2) {
            rw_err e;
            rw_err_init(&e);
            bidx *x = block_index(sh, bl[i], &e); /* a failure is the query's to report */
            if (x)
                warm_tscols(sh, bl[i]);
            bidx_put(x);
        }
        blockd_put(bl[i]);
    }
    free(bl);
}

/* Decodes a part's row (its timestamp column id and value blob) into v and
 * *ts (a reference the caller releases with tscol_put) (rd_mu held). */
static rw_rc part_decode_row(rw_shard *sh, const blockd *b, const bidx_ent *e, int64_t tsid,
                             const uint8_t *blob, size_t len, tscol **ts, uint64_t *v,
                             rw_buf *scratch, rw_err *err)
{
    if (!blob || part_decode_values(blob, len, e->n, v, scratch, sh->zd) < 0)
        return rw_err_set(err, RW_INTERNAL, "shard %d: part %lld is corrupt", sh->idx,
                          (long long)e->rowid);
    rw_err lerr;
    rw_err_init(&lerr);
    tscol *c = get_tscol(sh, b, tsid, scratch, &lerr);
    if (!c) {
        if (lerr.code == RW_NOTFOUND)
            return RW_NOTFOUND;
        return rw_err_set(err, lerr.code ? lerr.code : RW_INTERNAL, "%s", lerr.msg);
    }
    if (c->n != e->n) {
        tscol_put(c);
        return rw_err_set(err, RW_INTERNAL, "shard %d: part %lld: %u values, %zu timestamps",
                          sh->idx, (long long)e->rowid, e->n, c->n);
    }
    *ts = c;
    return RW_OK;
}

rw_rc part_read(rw_shard *sh, const blockd *b, const bidx_ent *e, tscol **ts, uint64_t *v,
                rw_buf *scratch, rw_err *err)
{
    sqlite3_stmt *q = sh->st_part_get;
    sqlite3_bind_int64(q, 1, e->rowid);
    int r = sqlite3_step(q);
    rw_rc rc;
    if (r == SQLITE_ROW && (uint32_t)sqlite3_column_int64(q, 0) == e->sid) {
        int64_t tsid = sqlite3_column_int64(q, 1);
        const uint8_t *blob = sqlite3_column_blob(q, 2);
        int len = sqlite3_column_bytes(q, 2);
        rc = part_decode_row(sh, b, e, tsid, blob, (size_t)len, ts, v, scratch, err);
    } else if (r == SQLITE_ROW || r == SQLITE_DONE) {
        rc = RW_NOTFOUND; /* deleted by retention meanwhile */
    } else {
        rc = db_rc(sh->rdb, r, "read part", err);
    }
    sqlite3_reset(q);
    return rc;
}

rw_rc parts_scan(rw_shard *sh, const blockd *b, const bidx_ent *const *e, size_t n,
                 tscol **ts, uint64_t *const *v, rw_rc *res, rw_buf *scratch, rw_err *err)
{
    sqlite3_stmt *q = sh->st_part_scan;
    sqlite3_bind_int64(q, 1, e[0]->rowid);
    sqlite3_bind_int64(q, 2, e[n - 1]->rowid);
    size_t k = 0;
    int r;
    rw_rc rc = RW_OK;
    for (size_t i = 0; i < n; i++)
        res[i] = RW_NOTFOUND;
    while (k < n && (r = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        while (k < n && e[k]->rowid < id)
            k++; /* gone (retention) */
        if (k == n || e[k]->rowid != id)
            continue;
        if ((uint32_t)sqlite3_column_int64(q, 1) == e[k]->sid) {
            const uint8_t *blob = sqlite3_column_blob(q, 3);
            int len = sqlite3_column_bytes(q, 3);
            res[k] = part_decode_row(sh, b, e[k], sqlite3_column_int64(q, 2), blob, (size_t)len,
                                     &ts[k], v[k], scratch, err);
            if (res[k] != RW_OK && res[k] != RW_NOTFOUND) {
                rc = res[k];
                break;
            }
        }
        k++;
    }
    if (rc == RW_OK && k < n && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_rc(sh->rdb, r, "read parts", err);
    sqlite3_reset(q);
    return rc;
}
