/* flush.c - moves head data into blocks and lets the WAL shrink. Run by the
 * maintenance thread (store.c) and at close:
 *
 *   window flush  when the newest sample is FLUSH_GRACE (or the out-of-order
 *                 window, if longer) past the end of a BLOCK_WINDOW, every
 *                 shard writes everything it holds from before that end;
 *   full flush    at close (and rw_store_maintain): everything in memory;
 *                 what the closing flush's deadline leaves goes into a head
 *                 snapshot (snapshot.c);
 *   checkpoint    when the WAL passes store.checkpoint_size (bounding replay
 *                 after a crash): every shard's head snapshot, then the WAL
 *                 before it is deleted - no blocks, so no part per series
 *                 for a window that is not complete yet.
 *
 * A shard's flush collects the data per slice of series under the shard
 * lock (the chunks are immutable and only the flush frees them, so it
 * keeps pointers), encodes parts and writes them in metric name order
 * (partorder.c; the closing flush, short of time, in series id order) with
 * their timestamp columns, in transactions of bounded size without any
 * lock, writes the block row (its index) last, publishes the block, and
 * then drops the flushed chunks from the heads, slice by slice. A reader
 * between the two sees the data twice, which the merge returns once
 * (merge.c).
 *
 * A WAL segment is deleted once every shard has covered all of it: it was
 * closed before a full flush or checkpoint began, or before a window flush
 * began whose end is after the segment's newest sample (wal.c covered()). A failed flush
 * changes nothing in memory; its committed rows are deleted (or by the next
 * open) and the next pass tries again. A flush ends early, keeping what it
 * wrote, when the closing flush runs out of its time or (a background
 * flush) when the store is closing: what it did not reach stays in the heads
 * and the WAL. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define SLICE 2048            /* series per lock hold */
#define TXN_PARTS 32768       /* parts per transaction */
#define TXN_BYTES (32u << 20)

#define WBATCH 256            /* parts written per lock hold for their chunks */

/* What the flush takes from one series: its first nchunks completed head
 * chunks, whose descriptors are read again under the lock when its part is
 * written (only a flush removes chunks, in this thread; appends add after
 * them), and a copy of its first nooo out-of-order samples (appends insert
 * among those). 16 bytes a series: a flush of a million series holds 16 MB
 * of items, the rare copies beside them. */
typedef struct fitem {
    uint32_t sid;
    uint32_t nchunks : 31;
    uint32_t written : 1;    /* its part is written: the drop takes it */
    uint32_t nooo;
    uint32_t ooo;            /* its copy in fitems.ooo (when nooo) */
} fitem;

typedef struct fooo {
    int64_t *t;
    uint64_t *v;
} fooo;

typedef struct fitems {
    fitem *v;
    size_t n, cap;
    fooo *ooo;
    size_t nooo, capooo;
} fitems;

int shard_blocks_push(rw_shard *sh, blockd *b)
{
    if (sh->nblocks == sh->capblocks) {
        size_t nc = sh->capblocks ? sh->capblocks * 2 : 16;
        blockd **n = realloc(sh->blocks, nc * sizeof *n);
        if (!n)
            return -1;
        sh->blocks = n;
        sh->capblocks = nc;
    }
    sh->blocks[sh->nblocks++] = b;
    sh->block_bytes += b->bytes;
    sh->block_samples += b->nsamples;
    sh->block_parts += b->nparts;
    return 0;
}

/* ---- series rows ---- */

static void put_u32(rw_buf *b, uint32_t v)
{
    rw_buf_append(b, &v, sizeof v); /* host order: never leaves the process */
}

enum { ROW_SYMBOL = 0, ROW_SERIES = 1 };

static size_t row_begin(rw_buf *out, uint8_t kind, uint32_t id)
{
    size_t at = out->len;
    rw_buf_putc(out, (char)kind);
    put_u32(out, id);
    put_u32(out, 0);
    return at;
}

static void row_end(rw_buf *out, size_t at)
{
    uint32_t len = (uint32_t)(out->len - at - 9);
    if (!out->failed)
        memcpy(out->p + at + 5, &len, 4);
}

/* Rows of the symbols and series created since the last flush (mu held):
 * [u8 kind][u32 id][u32 len][blob]; symbol rows first, so a series row never
 * names a symbol its transaction does not also write (or an earlier one
 * did). Series blob: uvarint n, 2n uvarint symbol ids. */
static void take_new_series(rw_shard *sh, rw_buf *out)
{
    for (size_t i = 0; i < sh->nnewsym && !out->failed; i++) {
        uint32_t id = sh->newsym[i];
        const char *str = id < sh->cap_sym ? sh->syms[id] : NULL;
        if (!str) /* freed before it was written */
            continue;
        size_t at = row_begin(out, ROW_SYMBOL, id);
        rw_buf_append(out, str, strlen(str));
        row_end(out, at);
    }
    sh->nnewsym = 0;
    for (size_t i = 0; i < sh->nnewser && !out->failed; i++) {
        series *s = sh->newser[i] < sh->cap_id ? sh->by_id[sh->newser[i]] : NULL;
        if (!s || s->in_db)
            continue;
        size_t at = row_begin(out, ROW_SERIES, s->id);
        put_uvarint(out, s->nlabels);
        for (uint32_t j = 0; j < s->nlabels; j++) {
            put_uvarint(out, symbol_id(sh, series_labels(s)[j].name));
            put_uvarint(out, symbol_id(sh, series_labels(s)[j].value));
        }
        row_end(out, at);
        s->in_db = 1;
    }
    sh->nnewser = 0;
}

#define ROWS_EACH(rows, kind, id, blob, len)                                              \
    for (size_t _o = 0; _o + 9 <= (rows)->len &&                                           \
                        (kind = (uint8_t)(rows)->p[_o], memcpy(&id, (rows)->p + _o + 1, 4), \
                         memcpy(&len, (rows)->p + _o + 5, 4),                               \
                         blob = (const uint8_t *)(rows)->p + _o + 9, 1);                   \
         _o += 9 + len)

static rw_rc put_series_rows(rw_shard *sh, const rw_buf *rows, size_t *n, rw_err *err)
{
    uint32_t id, len;
    uint8_t kind;
    const uint8_t *blob;
    ROWS_EACH(rows, kind, id, blob, len) {
        sqlite3_stmt *st = kind == ROW_SYMBOL ? sh->st_sym_put : sh->st_series_put;
        sqlite3_bind_int64(st, 1, id);
        if (kind == ROW_SYMBOL)
            sqlite3_bind_text(st, 2, (const char *)blob, (int)len, SQLITE_STATIC);
        else
            sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_STATIC);
        rw_rc rc = db_step_done(sh, st, kind == ROW_SYMBOL ? "insert symbol" : "insert series", err);
        if (rc != RW_OK)
            return rc;
        if (kind == ROW_SERIES)
            (*n)++;
    }
    return RW_OK;
}

/* Re-queues the rows of a failed flush (mu held). */
static void restore_new_series(rw_shard *sh, const rw_buf *rows)
{
    uint32_t id, len;
    uint8_t kind;
    const uint8_t *blob;
    ROWS_EACH(rows, kind, id, blob, len) {
        (void)blob;
        if (kind == ROW_SYMBOL) {
            if (id < sh->cap_sym && sh->syms[id])
                shard_note_new_symbol(sh, id);
            continue;
        }
        series *s = id < sh->cap_id ? sh->by_id[id] : NULL;
        if (s) {
            s->in_db = 0;
            shard_note_new_series(sh, id);
        }
    }
}

/* ---- transactions ---- */

/* The transactions of a flush before its last are not synced
 * (synchronous=NORMAL): the last one, which writes the block row, is, and
 * its sync of SQLite's WAL covers every frame before it. A crash before it
 * leaves rows no block names, which the next open deletes. Everyone else
 * (metadata, retention) always commits with synchronous=FULL. */
rw_rc flusher_txn_begin_sync(flusher *f, int sync, rw_err *err)
{
    rw_shard *sh = f->sh;
    pthread_mutex_lock(&sh->mu);
    shard_db_acquire(sh);
    pthread_mutex_unlock(&sh->mu);
    f->unsynced = !sync && db_exec(sh->wdb, "PRAGMA synchronous=NORMAL", NULL) == RW_OK;
    rw_rc rc = db_begin(sh, err);
    if (rc != RW_OK) {
        if (f->unsynced)
            db_exec(sh->wdb, "PRAGMA synchronous=FULL", NULL);
        f->unsynced = 0;
        pthread_mutex_lock(&sh->mu);
        shard_db_release(sh);
        pthread_mutex_unlock(&sh->mu);
        return rc;
    }
    f->in_txn = 1;
    f->txn_parts = f->txn_bytes = 0;
    return RW_OK;
}

static rw_rc txn_begin(flusher *f, rw_err *err)
{
    return flusher_txn_begin_sync(f, 0, err);
}

rw_rc flusher_txn_end(flusher *f, rw_rc rc, rw_err *err)
{
    rw_shard *sh = f->sh;
    if (!f->in_txn)
        return rc;
    rc = db_end(sh, rc, err);
    f->in_txn = 0;
    if (f->unsynced)
        db_exec(sh->wdb, "PRAGMA synchronous=FULL", NULL);
    f->unsynced = 0;
    pthread_mutex_lock(&sh->mu);
    shard_db_release(sh);
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* ---- encoding one series ---- */

int flusher_reserve(flusher *f, size_t n)
{
    if (n <= f->cap)
        return 0;
    size_t nc = f->cap ? f->cap : 1024;
    while (nc < n)
        nc *= 2;
    int64_t *t = realloc(f->t, nc * sizeof *t);
    if (!t)
        return -1;
    f->t = t;
    double *v = realloc(f->v, nc * sizeof *v);
    if (!v)
        return -1;
    f->v = v;
    uint64_t *vb = realloc(f->vb, nc * sizeof *vb);
    if (!vb)
        return -1;
    f->vb = vb;
    f->cap = nc;
    return 0;
}

/* The samples of one item, merged, into f->t / f->v; returns the count or
 * -1 (no memory) / -2 (a corrupt chunk). */
static long item_samples(flusher *f, const fitem *it, const hchunk *chunks, const fooo *oo)
{
    size_t total = it->nooo;
    for (uint32_t c = 0; c < it->nchunks; c++)
        total += chunks[c].n;
    /* decode the chunks into the upper half, then merge into t/v */
    if (flusher_reserve(f, 2 * total + 1) < 0)
        return -1;
    int64_t *ct = f->t + total;
    double *cv = f->v + total;
    size_t n = 0;
    for (uint32_t c = 0; c < it->nchunks; c++) {
        chunk_it ci;
        if (chunk_it_init(&ci, chunks[c].data, chunks[c].len) < 0)
            return -2;
        int64_t t;
        double v;
        int r;
        /* never more than the counts promised (the out-of-order samples
         * are merged in after them) */
        while ((r = chunk_it_next(&ci, &t, &v)) == 1 && n < total - it->nooo) {
            ct[n] = t;
            cv[n] = v;
            n++;
        }
        if (r < 0)
            return -2;
    }
    if (!it->nooo) {
        memmove(f->t, ct, n * sizeof *ct);
        memmove(f->v, cv, n * sizeof *cv);
        return (long)n;
    }
    srun runs[2] = {{ct, cv, n}, {oo->t, (const double *)(const void *)oo->v, it->nooo}};
    /* merging into the lower half cannot overrun the upper half it reads:
     * the output never has more samples than it has consumed */
    int64_t *ot = malloc(total * sizeof *ot);
    double *ov = malloc(total * sizeof *ov);
    if (!ot || !ov) {
        free(ot);
        free(ov);
        return -1;
    }
    int nomem = 0;
    size_t m = runs_merge(runs, 2, ot, ov, &nomem);
    memcpy(f->t, ot, m * sizeof *ot);
    memcpy(f->v, ov, m * sizeof *ov);
    free(ot);
    free(ov);
    return nomem ? -1 : (long)m;
}

/* The id of the timestamp column t[0..n) in this block, writing it when it
 * is new. */
static rw_rc ts_id(flusher *f, const int64_t *t, size_t n, int64_t *id, rw_err *err)
{
    rw_shard *sh = f->sh;
    uint64_t h = XXH3_64bits(t, n * sizeof *t);
    if (f->tsn * 2 >= f->tscap) {
        size_t nc = f->tscap ? f->tscap * 2 : 256;
        tsent *nt = calloc(nc, sizeof *nt);
        if (!nt)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        for (size_t i = 0; i < f->tscap; i++) {
            if (!f->ts[i].t)
                continue;
            size_t j = f->ts[i].hash & (nc - 1);
            while (nt[j].t)
                j = (j + 1) & (nc - 1);
            nt[j] = f->ts[i];
        }
        free(f->ts);
        f->ts = nt;
        f->tscap = nc;
    }
    size_t j = h & (f->tscap - 1);
    for (; f->ts[j].t; j = (j + 1) & (f->tscap - 1)) {
        if (f->ts[j].hash == h && f->ts[j].n == n && !memcmp(f->ts[j].t, t, n * sizeof *t)) {
            *id = f->ts[j].id;
            return RW_OK;
        }
    }
    rw_buf_reset(&f->tsbuf);
    if (ts_encode(t, n, &f->tsbuf, &f->scratch, f->zc) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    sqlite3_bind_blob(sh->st_ts_ins, 1, f->tsbuf.p, (int)f->tsbuf.len, SQLITE_STATIC);
    rw_rc rc = db_step_done(sh, sh->st_ts_ins, "insert timestamps", err);
    if (rc != RW_OK)
        return rc;
    *id = sqlite3_last_insert_rowid(sh->wdb);
    int64_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    memcpy(copy, t, n * sizeof *t);
    f->ts[j] = (tsent){.hash = h, .id = *id, .t = copy, .n = n};
    f->tsn++;
    if (!f->ts_lo)
        f->ts_lo = *id;
    f->ts_hi = *id;
    f->bytes += f->tsbuf.len;
    f->txn_bytes += f->tsbuf.len;
    return RW_OK;
}

static int ent_cmp(const void *a, const void *b)
{
    const bidx_ent *x = a, *y = b;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

rw_rc flusher_part(flusher *f, uint32_t sid, size_t n, rw_err *err)
{
    rw_shard *sh = f->sh;
    if (n == 0)
        return RW_OK;
    if (!f->in_txn) {
        rw_rc rc = txn_begin(f, err);
        if (rc != RW_OK)
            return rc;
    }
    int64_t tsid = 0;
    rw_rc rc = ts_id(f, f->t, n, &tsid, err);
    if (rc != RW_OK)
        return rc;
    memcpy(f->vb, f->v, n * sizeof *f->vb);
    rw_buf_reset(&f->vals);
    if (part_encode_values(f->vb, n, &f->vals, &f->scratch, f->zc) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    sqlite3_bind_int64(sh->st_part_ins, 1, sid);
    sqlite3_bind_int64(sh->st_part_ins, 2, tsid);
    sqlite3_bind_blob(sh->st_part_ins, 3, f->vals.p, (int)f->vals.len, SQLITE_STATIC);
    if ((rc = db_step_done(sh, sh->st_part_ins, "insert part", err)) != RW_OK)
        return rc;
    int64_t rowid = sqlite3_last_insert_rowid(sh->wdb);
    if (f->nents == f->capents) {
        size_t nc = f->capents ? f->capents * 2 : 1024;
        bidx_ent *ne = realloc(f->ents, nc * sizeof *ne);
        if (!ne)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        f->ents = ne;
        f->capents = nc;
    }
    bidx_ent *e = &f->ents[f->nents++];
    e->sid = sid;
    e->n = (uint32_t)n;
    e->rowid = rowid;
    e->mint = f->t[0];
    e->maxt = f->t[n - 1];
    memcpy(&e->lastv, &f->v[n - 1], 8);
    if (!f->parts_lo)
        f->parts_lo = rowid;
    f->parts_hi = rowid;
    if (e->mint < f->mint)
        f->mint = e->mint;
    if (e->maxt > f->maxt)
        f->maxt = e->maxt;
    f->nsamples += (uint64_t)n;
    f->bytes += f->vals.len;
    f->txn_parts++;
    f->txn_bytes += f->vals.len;
    if (f->txn_parts >= TXN_PARTS || f->txn_bytes >= TXN_BYTES)
        rc = flusher_txn_end(f, RW_OK, err);
    return rc;
}

static rw_rc write_item(flusher *f, const fitem *it, const hchunk *chunks, const fooo *oo,
                        rw_err *err)
{
    long n = item_samples(f, it, chunks, oo);
    if (n == -1)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    if (n == -2) {
        rw_error("shard %d: series %u: a head chunk is corrupt; its samples are not flushed",
                 f->sh->idx, it->sid);
        return RW_OK;
    }
    return flusher_part(f, it->sid, (size_t)n, err);
}

int flusher_init(flusher *f, rw_shard *sh)
{
    memset(f, 0, sizeof *f);
    f->sh = sh;
    f->mint = INT64_MAX;
    f->maxt = INT64_MIN;
    f->zc = ZSTD_createCCtx();
    rw_buf_init(&f->vals, 0);
    rw_buf_init(&f->scratch, 0);
    rw_buf_init(&f->tsbuf, 0);
    rw_buf_init(&f->rows, 0);
    return f->zc ? 0 : -1;
}

void flusher_free(flusher *f)
{
    for (size_t i = 0; i < f->tscap; i++)
        free(f->ts[i].t);
    free(f->ts);
    free(f->ents);
    free(f->t);
    free(f->v);
    free(f->vb);
    rw_buf_free(&f->vals);
    rw_buf_free(&f->scratch);
    rw_buf_free(&f->tsbuf);
    rw_buf_free(&f->rows);
    ZSTD_freeCCtx(f->zc);
}

rw_rc flusher_index(flusher *f, rw_err *err)
{
    qsort(f->ents, f->nents, sizeof *f->ents, ent_cmp);
    rw_buf_reset(&f->vals);
    if (bidx_encode(f->ents, f->nents, f->mint, f->parts_lo, &f->vals, &f->scratch, f->zc) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    return RW_OK;
}

rw_rc flusher_block_row(flusher *f, int64_t *id, rw_err *err)
{
    rw_shard *sh = f->sh;
    sqlite3_stmt *q = sh->st_block_ins;
    f->bytes += f->vals.len;
    sqlite3_bind_int64(q, 1, f->mint);
    sqlite3_bind_int64(q, 2, f->maxt);
    sqlite3_bind_int64(q, 3, f->parts_lo);
    sqlite3_bind_int64(q, 4, f->parts_hi);
    sqlite3_bind_int64(q, 5, f->ts_lo);
    sqlite3_bind_int64(q, 6, f->ts_hi);
    sqlite3_bind_int64(q, 7, (int64_t)f->nents);
    sqlite3_bind_int64(q, 8, (int64_t)f->nsamples);
    sqlite3_bind_int64(q, 9, (int64_t)f->bytes);
    sqlite3_bind_blob(q, 10, f->vals.p, (int)f->vals.len, SQLITE_STATIC);
    rw_rc rc = db_step_done(sh, q, "insert block", err);
    *id = rc == RW_OK ? sqlite3_last_insert_rowid(sh->wdb) : 0;
    return rc;
}

blockd *flusher_blockd(const flusher *f, int64_t id)
{
    blockd *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->id = id;
    b->mint = f->mint;
    b->maxt = f->maxt;
    b->nparts = f->nents;
    b->nsamples = f->nsamples;
    b->parts_lo = f->parts_lo;
    b->parts_hi = f->parts_hi;
    b->ts_lo = f->ts_lo;
    b->ts_hi = f->ts_hi;
    b->bytes = f->bytes;
    atomic_init(&b->refs, 1);
    return b;
}

/* ---- collecting ---- */

static void items_free(fitems *it)
{
    for (size_t i = 0; i < it->nooo; i++) {
        free(it->ooo[i].t);
        free(it->ooo[i].v);
    }
    free(it->ooo);
    free(it->v);
    memset(it, 0, sizeof *it);
}

/* A copy of the first n out-of-order samples of s, as the item's. */
static int copy_ooo(fitems *its, fitem *it, const series *s, uint32_t n)
{
    if (its->nooo == its->capooo) {
        size_t nc = its->capooo ? its->capooo * 2 : 64;
        fooo *o = realloc(its->ooo, nc * sizeof *o);
        if (!o)
            return -1;
        its->ooo = o;
        its->capooo = nc;
    }
    fooo c = {malloc(n * sizeof *c.t), malloc(n * sizeof *c.v)};
    if (!c.t || !c.v) {
        free(c.t);
        free(c.v);
        return -1;
    }
    memcpy(c.t, s->ooo->t, n * sizeof *c.t);
    memcpy(c.v, s->ooo->v, n * sizeof *c.v);
    it->ooo = (uint32_t)its->nooo;
    its->ooo[its->nooo++] = c;
    return 0;
}

/* Collects the items of series ids [from, to) (mu held), with their
 * names into o. */
static int collect(rw_shard *sh, uint32_t from, uint32_t to, int full, int64_t win_end,
                   fitems *its, porder *o)
{
    for (uint32_t i = from; i < to; i++) {
        series *s = sh->by_id[i];
        if (!s)
            continue;
        if (s->head.n && (full || s->head.t0 < win_end) && series_cut_head(sh, s) < 0)
            return -1;
        uint32_t k = 0;
        while (k < s->nchunks && (full || s->chunks[k].maxt < win_end))
            k++;
        uint32_t no = 0;
        if (s->ooo)
            while (no < s->ooo->n && (full || s->ooo->t[no] < win_end))
                no++;
        if (!k && !no)
            continue;
        if (its->n == its->cap) {
            size_t nc = its->cap ? its->cap * 2 : 1024;
            fitem *n = realloc(its->v, nc * sizeof *n);
            if (!n)
                return -1;
            its->v = n;
            its->cap = nc;
        }
        fitem *it = &its->v[its->n];
        *it = (fitem){.sid = s->id, .nchunks = k, .nooo = no};
        if (no && copy_ooo(its, it, s, no) < 0)
            return -1;
        if (porder_add(o, s, s->id, (uint32_t)its->n) < 0)
            return -1; /* its copy is freed with the others */
        its->n++;
    }
    return 0;
}

/* Writes the parts of the items o->k[lo, hi): their chunks' descriptors
 * taken under the lock, the parts encoded and written without it. An item
 * whose series went (or lost chunks) since it was collected is left
 * unwritten. */
static rw_rc write_batch(flusher *f, fitems *its, const porder *o, size_t lo, size_t hi,
                         hchunk **descs, size_t *capdescs, rw_err *err)
{
    rw_shard *sh = f->sh;
    size_t need = 0, at[WBATCH];
    for (size_t k = lo; k < hi; k++)
        need += its->v[o->k[k].at].nchunks;
    if (need > *capdescs) {
        hchunk *d = realloc(*descs, need * sizeof *d);
        if (!d)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        *descs = d;
        *capdescs = need;
    }
    size_t nd = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t k = lo; k < hi; k++) {
        const fitem *it = &its->v[o->k[k].at];
        const series *s = it->sid < sh->cap_id ? sh->by_id[it->sid] : NULL;
        at[k - lo] = SIZE_MAX;
        if (!s || s->nchunks < it->nchunks)
            continue;
        if (it->nchunks)
            memcpy(*descs + nd, s->chunks, it->nchunks * sizeof **descs);
        at[k - lo] = nd;
        nd += it->nchunks;
    }
    pthread_mutex_unlock(&sh->mu);
    for (size_t k = lo; k < hi; k++) {
        if (at[k - lo] == SIZE_MAX)
            continue;
        fitem *it = &its->v[o->k[k].at];
        rw_rc rc = write_item(f, it, it->nchunks ? *descs + at[k - lo] : NULL,
                              it->nooo ? &its->ooo[it->ooo] : NULL, err);
        if (rc != RW_OK)
            return rc;
        it->written = 1;
    }
    return RW_OK;
}

/* Drops what an item flushed from its series (mu held). */
static void drop_flushed(rw_shard *sh, const fitem *it, const fooo *oo, const bidx_ent *e)
{
    series *s = it->sid < sh->cap_id ? sh->by_id[it->sid] : NULL;
    if (!s)
        return;
    uint32_t k = it->nchunks <= s->nchunks ? it->nchunks : s->nchunks;
    for (uint32_t c = 0; c < k; c++) {
        sh->head_samples -= s->chunks[c].n;
        free(s->chunks[c].data);
    }
    if (k) {
        memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof *s->chunks);
        s->nchunks -= k;
        sh->head_chunks -= k;
    }
    if (!s->nchunks && s->chunks) {
        /* most series are left with none: their array goes until the
           next cut (a million series' arrays are 32-64 MB) */
        free(s->chunks);
        s->chunks = NULL;
        s->capchunks = 0;
    }
    if (it->nooo && s->ooo) {
        /* remove exactly the samples flushed (newer ones may have come) */
        ooo_buf *o = s->ooo;
        uint32_t w = 0, j = 0;
        for (uint32_t r = 0; r < o->n; r++) {
            while (j < it->nooo && oo->t[j] < o->t[r])
                j++;
            if (j < it->nooo && oo->t[j] == o->t[r] && oo->v[j] == o->v[r]) {
                sh->ooo_samples--;
                continue;
            }
            o->t[w] = o->t[r];
            o->v[w] = o->v[r];
            w++;
        }
        o->n = w;
        if (!o->n)
            ooo_free(s);
    }
    if (e) {
        if (s->pmint > s->pmaxt) {
            s->pmint = e->mint;
            s->pmaxt = e->maxt;
        } else {
            if (e->mint < s->pmint)
                s->pmint = e->mint;
            if (e->maxt > s->pmaxt)
                s->pmaxt = e->maxt;
        }
    }
}

static rw_rc write_rows_txn(flusher *f, const rw_buf *rows, uint32_t next_id, size_t *nss,
                            rw_err *err)
{
    rw_shard *sh = f->sh;
    rw_rc rc = RW_OK;
    if (!f->in_txn && (rc = txn_begin(f, err)) != RW_OK)
        return rc;
    (void)next_id; /* written by the flush's last, synced transaction */
    return put_series_rows(sh, rows, nss, err);
}


/* Deletes the rows a failed flush committed (best effort; the next open
 * deletes rows no block names). */
void flusher_undo(flusher *f)
{
    rw_shard *sh = f->sh;
    if (!f->parts_lo && !f->ts_lo)
        return;
    char sql[160];
    rw_err e;
    rw_err_init(&e);
    if (txn_begin(f, &e) != RW_OK)
        return;
    rw_rc rc = RW_OK;
    if (f->parts_lo) {
        snprintf(sql, sizeof sql, "DELETE FROM parts WHERE id BETWEEN %lld AND %lld",
                 (long long)f->parts_lo, (long long)f->parts_hi);
        rc = db_exec(sh->wdb, sql, &e);
    }
    if (rc == RW_OK && f->ts_lo) {
        snprintf(sql, sizeof sql, "DELETE FROM tscols WHERE id BETWEEN %lld AND %lld",
                 (long long)f->ts_lo, (long long)f->ts_hi);
        rc = db_exec(sh->wdb, sql, &e);
    }
    flusher_txn_end(f, rc, &e);
}

rw_rc shard_flush(rw_shard *sh, int full, int64_t win_end, uint64_t start_seq,
                  int64_t deadline_ns, rw_err *err)
{
    int partial = 0;
    rw_store *st = sh->store;
    int64_t t0 = rw_mono_ns();
    flusher f;
    fitems items = {0};
    hchunk *descs = NULL;
    size_t capdescs = 0, nss = 0;
    rw_rc rc = flusher_init(&f, sh) == 0 ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");

    /* the rows of series created so far, and how far ids went */
    pthread_mutex_lock(&sh->mu);
    take_new_series(sh, &f.rows);
    uint32_t next_id = sh->next_id, cap_id = sh->cap_id;
    pthread_mutex_unlock(&sh->mu);
    if (f.rows.failed && rc == RW_OK)
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
    if (rc == RW_OK && (f.rows.len || full))
        rc = write_rows_txn(&f, &f.rows, next_id, &nss, err);

    /* collect, slice by slice, then write in name order (partorder.c).
     * Out of time (the closing flush), or the store closing (a background
     * flush, which has no deadline: a large one could hold a stop for many
     * seconds): what was written stays written, the rest stays in the heads
     * and the WAL for the closing flush or the next start. */
    porder o;
    porder_init(&o);
    for (uint32_t from = 0; rc == RW_OK && from < cap_id; from += SLICE) {
        if (deadline_ns ? rw_mono_ns() > deadline_ns : store_stopping(st)) {
            partial = deadline_ns ? 1 : 2;
            break;
        }
        pthread_mutex_lock(&sh->mu);
        uint32_t to = from + SLICE < sh->cap_id ? from + SLICE : sh->cap_id;
        int r = collect(sh, from, to, full, win_end, &items, &o);
        pthread_mutex_unlock(&sh->mu);
        if (r < 0)
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
    }
    /* the closing flush keeps series id order: sorting a million names
       would come out of its time, and compaction orders its small blocks */
    if (!deadline_ns)
        porder_sort(&o);
    for (size_t k = 0; k < o.n && rc == RW_OK; k += WBATCH) {
        if (deadline_ns ? rw_mono_ns() > deadline_ns : store_stopping(st)) {
            partial = deadline_ns ? 1 : 2;
            break;
        }
        rc = write_batch(&f, &items, &o, k, k + WBATCH < o.n ? k + WBATCH : o.n, &descs,
                         &capdescs, err);
    }
    porder_free(&o);
    free(descs);
    /* the last transaction is synced, and covers the unsynced ones before it:
     * meta.next_sid (always a write, so the commit syncs) and the block row,
     * which makes the parts visible to the next open */
    if (rc == RW_OK && f.nents)
        rc = flusher_index(&f, err);
    if (rc == RW_OK && f.in_txn)
        rc = flusher_txn_end(&f, RW_OK, err);
    if (rc == RW_OK)
        rc = flusher_txn_begin_sync(&f, 1, err);
    if (rc == RW_OK) {
        sqlite3_bind_text(sh->st_meta_put, 1, "next_sid", -1, SQLITE_STATIC);
        sqlite3_bind_int64(sh->st_meta_put, 2, next_id);
        rc = db_step_done(sh, sh->st_meta_put, "write meta", err);
    }
    int64_t block_id = 0;
    if (rc == RW_OK && f.nents)
        rc = flusher_block_row(&f, &block_id, err);
    rc = flusher_txn_end(&f, rc, err);

    blockd *b = NULL;
    /* on disk but not in memory: the next open finds it; until then the
     * data stays in the heads, nothing is dropped */
    if (rc == RW_OK && f.nents && !(b = flusher_blockd(&f, block_id)))
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
    if (rc == RW_OK) {
        pthread_mutex_lock(&sh->mu);
        int ok = !b || shard_blocks_push(sh, b) == 0;
        pthread_mutex_unlock(&sh->mu);
        if (!ok) {
            free(b);
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
        }
    }
    if (rc == RW_OK) {
        /* the block is visible: drop the flushed data from the heads (the
         * entries are sorted by sid, and so are the items) */
        size_t j = 0;
        for (size_t i = 0; i < items.n;) {
            pthread_mutex_lock(&sh->mu);
            size_t end = i + SLICE < items.n ? i + SLICE : items.n;
            for (; i < end; i++) {
                const fitem *it = &items.v[i];
                if (!it->written)
                    continue; /* cut short: it stays in the heads */
                while (j < f.nents && f.ents[j].sid < it->sid)
                    j++;
                drop_flushed(sh, it, it->nooo ? &items.ooo[it->ooo] : NULL,
                             j < f.nents && f.ents[j].sid == it->sid ? &f.ents[j] : NULL);
            }
            pthread_mutex_unlock(&sh->mu);
        }
        if (partial)
            ; /* not everything before the start is in blocks: the WAL stays */
        else if (full)
            sh->ckpt_seq = start_seq;
        else {
            sh->flush_win_seq = start_seq;
            sh->flush_win_end = win_end;
            sh->flushed_win_end = win_end;
            pthread_mutex_lock(&sh->mu);
            sh->late_bound = win_end;
            sh->late_samples = 0;
            pthread_mutex_unlock(&sh->mu);
        }
        rw_counter_add(st->m_flushes, 1);
        rw_histogram_observe(st->m_flush_dur, (double)(rw_mono_ns() - t0) / 1e9);
        if (f.nents || nss || partial)
            rw_log(full || partial ? RW_LOG_INFO : RW_LOG_DEBUG,
                   "shard %d %s%s flush: %zu parts, %llu samples, %zu timestamp columns, %llu "
                   "bytes, %zu new series in %.3fs",
                   sh->idx, partial == 2 ? "interrupted (stopping) " : partial ? "partial " : "",
                   full ? "full" : "window", f.nents,
                   (unsigned long long)f.nsamples,
                   f.tsn, (unsigned long long)f.bytes, nss, (double)(rw_mono_ns() - t0) / 1e9);
    } else {
        flusher_undo(&f);
        pthread_mutex_lock(&sh->mu);
        restore_new_series(sh, &f.rows);
        pthread_mutex_unlock(&sh->mu);
        rw_counter_add(st->m_flush_fail, 1);
        rw_warn("shard %d flush failed (the data stays in memory and the WAL): %s", sh->idx,
                err ? err->msg : "");
    }
    items_free(&items);
    flusher_free(&f);
    return rc;
}

rw_rc shard_write_new_series(rw_shard *sh, rw_err *err)
{
    flusher f;
    memset(&f, 0, sizeof f);
    f.sh = sh;
    rw_buf_init(&f.rows, 0);
    pthread_mutex_lock(&sh->mu);
    take_new_series(sh, &f.rows);
    uint32_t next_id = sh->next_id;
    pthread_mutex_unlock(&sh->mu);
    size_t n = 0;
    rw_rc rc = f.rows.failed ? rw_err_set(err, RW_NOMEM, "out of memory") : RW_OK;
    if (rc == RW_OK && f.rows.len) {
        rc = flusher_txn_begin_sync(&f, 1, err);
        if (rc == RW_OK)
            rc = put_series_rows(sh, &f.rows, &n, err);
        if (rc == RW_OK) {
            sqlite3_bind_text(sh->st_meta_put, 1, "next_sid", -1, SQLITE_STATIC);
            sqlite3_bind_int64(sh->st_meta_put, 2, next_id);
            rc = db_step_done(sh, sh->st_meta_put, "write meta", err);
        }
        rc = flusher_txn_end(&f, rc, err);
    }
    if (rc != RW_OK) {
        pthread_mutex_lock(&sh->mu);
        restore_new_series(sh, &f.rows);
        pthread_mutex_unlock(&sh->mu);
    }
    rw_buf_free(&f.rows);
    return rc;
}

/* ---- policy ---- */

static inline int64_t floor_window(int64_t t)
{
    int64_t w = t / BLOCK_WINDOW_MS;
    if (t < 0 && t % BLOCK_WINDOW_MS)
        w--;
    return w * BLOCK_WINDOW_MS;
}

/* One shard's flush or snapshot, on its own thread: shards work in
 * parallel. */
typedef struct flush_job {
    rw_shard *sh;
    int full, snapshot;
    int64_t win_end, deadline_ns;
    uint64_t seq;
    rw_rc rc;
    rw_err err;
    pthread_t th;
    int started, skip;
} flush_job;

static void *flush_main(void *arg)
{
    flush_job *j = arg;
    /* in the background while ingesting; the closing flush (which has a
     * deadline and nothing to yield to) keeps its priority */
    if (!j->deadline_ns)
        store_background_thread();
    rw_err_init(&j->err);
    if (j->snapshot) {
        j->rc = shard_snapshot_write(j->sh, j->seq, j->deadline_ns, &j->err);
        return NULL;
    }
    rw_gauge *running = j->sh->store->m_flush_running;
    rw_gauge_add(running, 1);
    j->rc = shard_flush(j->sh, j->full, j->win_end, j->seq, j->deadline_ns, &j->err);
    rw_gauge_add(running, -1);
    return NULL;
}

/* The shards' jobs, each on a thread of its own (the last on this one), or
 * one after another on this thread (one shard's flush state in memory at a
 * time, and the cores left to ingestion). */
static rw_rc flush_shards(rw_store *st, flush_job *jobs, int parallel, rw_err *err)
{
    rw_rc first = RW_OK;
    for (int k = 0; k < st->nshards; k++) {
        if (jobs[k].skip)
            continue;
        jobs[k].started = parallel && k + 1 < st->nshards &&
                          pthread_create(&jobs[k].th, NULL, flush_main, &jobs[k]) == 0;
        if (!jobs[k].started)
            flush_main(&jobs[k]);
    }
    for (int k = 0; k < st->nshards; k++) {
        if (jobs[k].skip)
            continue;
        if (jobs[k].started)
            pthread_join(jobs[k].th, NULL);
        if (jobs[k].rc != RW_OK && first == RW_OK) {
            first = jobs[k].rc;
            if (err)
                *err = jobs[k].err;
        }
    }
    return first;
}

/* Rotates the WAL and runs a copy of `proto` on every shard, the new
 * segment as its seq; *jobs (NULL when out of memory) for the caller to
 * read and free. */
static rw_rc rotate_and_run(rw_store *st, flush_job proto, uint64_t *seq, flush_job **jobs,
                            rw_err *err)
{
    *jobs = NULL;
    rw_rc rc = wal_rotate(&st->wal, seq, err);
    if (rc != RW_OK)
        return rc;
    if (!(*jobs = calloc((size_t)st->nshards, sizeof **jobs)))
        return rw_err_set(err, RW_NOMEM, "out of memory");
    proto.seq = *seq;
    for (int k = 0; k < st->nshards; k++) {
        (*jobs)[k] = proto;
        (*jobs)[k].sh = &st->shards[k];
    }
    return flush_shards(st, *jobs, 1, err);
}

/* A checkpoint: the WAL rotated, every shard's head snapshot written, the
 * segments before the rotation deleted. */
static rw_rc checkpoint(rw_store *st, int64_t deadline_ns, rw_err *err)
{
    uint64_t seq;
    flush_job *jobs;
    rw_rc rc = rotate_and_run(st, (flush_job){.snapshot = 1, .deadline_ns = deadline_ns}, &seq,
                              &jobs, err);
    for (int k = 0; jobs && k < st->nshards; k++) {
        if (jobs[k].rc == RW_OK && st->shards[k].ckpt_seq < seq)
            st->shards[k].ckpt_seq = seq;
        else if (jobs[k].rc != RW_OK)
            rw_warn("shard %d: head snapshot failed (the WAL stays): %s", k, jobs[k].err.msg);
    }
    free(jobs);
    wal_truncate(&st->wal);
    return rc;
}

rw_rc rw_store_checkpoint(rw_store *st, rw_err *err)
{
    pthread_mutex_lock(&st->ckpt_mu);
    rw_rc rc = checkpoint(st, 0, err);
    pthread_mutex_unlock(&st->ckpt_mu);
    return rc;
}

/* Everything in memory into blocks. A shard whose flush completed has no use
 * for its snapshot; when the deadline cut a flush short (a stop), what is
 * left goes into a snapshot, so that no WAL is left to replay. */
static rw_rc full_flush(rw_store *st, int64_t deadline_ns, rw_err *err)
{
    uint64_t seq;
    flush_job *jobs;
    rw_rc first = rotate_and_run(st, (flush_job){.full = 1, .win_end = INT64_MAX,
                                                 .deadline_ns = deadline_ns},
                                 &seq, &jobs, err);
    if (!jobs)
        return first;
    free(jobs);
    int partial = 0;
    for (int k = 0; k < st->nshards; k++) {
        if (st->shards[k].ckpt_seq == seq)
            shard_snapshot_remove(&st->shards[k]);
        else
            partial = 1;
    }
    wal_truncate(&st->wal);
    if (first == RW_OK && partial && deadline_ns)
        first = checkpoint(st, deadline_ns + CLOSE_SNAPSHOT_NS, err);
    return first;
}

rw_rc store_flush_due(rw_store *st, int force_full, int64_t deadline_ns, rw_err *err)
{
    pthread_mutex_lock(&st->ckpt_mu);
    rw_rc first = RW_OK;
    if (force_full) {
        first = full_flush(st, deadline_ns, err);
        pthread_mutex_unlock(&st->ckpt_mu);
        return first;
    }
    int64_t newest = atomic_load(&st->newest);
    int64_t grace = st->opts.ooo_window_ms > FLUSH_GRACE_MS ? st->opts.ooo_window_ms
                                                            : FLUSH_GRACE_MS;
    if (newest != INT64_MIN && newest >= INT64_MIN + grace + BLOCK_WINDOW_MS) {
        int64_t end = floor_window(newest - grace);
        int any = 0;
        uint64_t seq = wal_current_seq(&st->wal);
        flush_job *jobs = calloc((size_t)st->nshards, sizeof *jobs);
        if (!jobs) {
            pthread_mutex_unlock(&st->ckpt_mu);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
        for (int k = 0; k < st->nshards; k++) {
            rw_shard *sh = &st->shards[k];
            pthread_mutex_lock(&sh->mu);
            int late = sh->late_samples >= LATE_FLUSH_SAMPLES;
            pthread_mutex_unlock(&sh->mu);
            jobs[k] = (flush_job){.sh = sh, .win_end = end, .deadline_ns = deadline_ns,
                                  .seq = seq, .skip = sh->flushed_win_end >= end && !late};
            any |= !jobs[k].skip;
        }
        if (any) {
            /* in the background, so one shard at a time: at a million
               series a shard's flush holds ~100 bytes a series (its
               items, order keys, index entries and cut heads) */
            first = flush_shards(st, jobs, 0, err);
            wal_truncate(&st->wal);
            /* what the flush took for its items and index, and the heads
               it dropped, back to the system (milliseconds) */
            malloc_trim(0);
        }
        free(jobs);
    }
    /* replay after a crash is bounded by the WAL's size: past the limit, the
     * heads go into snapshots and the WAL before them is deleted */
    uint64_t seg_limit, limit, snap = 0;
    wal_limits(st, &seg_limit, &limit);
    for (int k = 0; k < st->nshards; k++)
        snap += st->shards[k].snap_bytes;
    if (limit < snap / CKPT_WAL_SHARE)
        limit = snap / CKPT_WAL_SHARE;
    int64_t now = rw_mono_ns();
    if (wal_bytes(&st->wal) > limit && !store_stopping(st) && now >= st->ckpt_retry_ns) {
        rw_rc rc = checkpoint(st, deadline_ns, first == RW_OK ? err : NULL);
        /* a failed one (disk full) is not retried at every tick: each
         * attempt writes the whole head */
        st->ckpt_retry_ns = rc == RW_OK ? 0 : now + CKPT_RETRY_NS;
        if (first == RW_OK)
            first = rc;
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    return first;
}
