/* recover.c - brings a shard back at open (one thread per shard, store.c):
 *
 *   1. its series (table `series`, label sets as symbol ids);
 *   2. its blocks: the descriptors stay in memory, and each block's index is
 *      read once to learn every series' persisted range and newest sample
 *      (then dropped: what stays in memory does not grow with retention);
 *      rows a crashed flush or retention left outside every block go;
 *   3. its head snapshot (snapshot.c), if a checkpoint wrote one;
 *   4. the WAL: every segment from the snapshot's on (all without one), in
 *      order, this shard's section of each record,
 *      through the normal append rules in replay mode - an in-order sample at
 *      or before the series' newest is already in a block or was replayed,
 *      an out-of-order one is applied unless present - so replay is
 *      idempotent and never needs to know where the last flush stopped.
 *
 * A record whose checksum fails ends its segment (a torn last write: nothing
 * after it was acknowledged); one whose checksum holds is never dropped:
 * what of it cannot be applied is logged and replay goes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

typedef struct replay_ctx {
    rw_shard *sh;
    uint64_t samples, ignored, unknown_refs, bad_series, unapplied;
    int64_t seg_maxt, bound;
    int seg_future;
    int nomem;
} replay_ctx;

static int replay_series(void *ctx, uint32_t ref, rw_label *l, size_t n)
{
    replay_ctx *rc = ctx;
    rw_shard *sh = rc->sh;
    series *s = ref < sh->cap_id ? sh->by_id[ref] : NULL;
    if (s) {
        if (!rw_labels_equal(series_labels(s), s->nlabels, l, n)) {
            rc->bad_series++;
            rw_error("shard %d: WAL names series %u with another label set than the one "
                     "stored; keeping the stored one",
                     sh->idx, ref);
        }
        free(l);
        return 0;
    }
    s = shard_series_create(sh, ref, rw_labels_hash(l, n), l, n, NULL);
    free(l);
    if (!s || shard_note_new_series(sh, ref) < 0) {
        if (s)
            shard_series_delete(sh, s);
        rc->bad_series++;
        rw_error("shard %d: cannot recreate series %u from the WAL (out of memory or a bad "
                 "label set)",
                 sh->idx, ref);
        return -1;
    }
    return 0;
}

/* Applies one decoded section. Every sample lands on a different series
 * (remote-write sends one sample per series per request), so the series are
 * prefetched a few runs ahead: without it replay waits on memory. */
static int replay_batch(void *ctx, const walbatch *b)
{
    replay_ctx *rc = ctx;
    rw_shard *sh = rc->sh;
    enum { AHEAD = 8 };
    size_t at = 0;
    /* three stages: the id slot, then the series, then its open chunk's
     * tail - each loaded only once the previous stage had time to arrive */
    for (size_t r = 0; r < b->nrun; r++) {
        if (r + 3 * AHEAD < b->nrun && b->id[r + 3 * AHEAD] < sh->cap_id)
            __builtin_prefetch(&sh->by_id[b->id[r + 3 * AHEAD]]);
        if (r + 2 * AHEAD < b->nrun && b->id[r + 2 * AHEAD] < sh->cap_id) {
            const series *p = sh->by_id[b->id[r + 2 * AHEAD]];
            if (p) {
                __builtin_prefetch(p);
                __builtin_prefetch((const char *)p + 64);
            }
        }
        if (r + AHEAD < b->nrun && b->id[r + AHEAD] < sh->cap_id) {
            const series *p = sh->by_id[b->id[r + AHEAD]];
            if (p && p->head.b)
                __builtin_prefetch(p->head.b + (p->head.nbits >> 3));
        }
        uint32_t ref = b->id[r], n = b->n[r];
        series *s = ref < sh->cap_id ? sh->by_id[ref] : NULL;
        for (uint32_t i = 0; i < n; i++) {
            int64_t t = b->t[at + i];
            if (t > rc->bound)
                rc->seg_future = 1;
            else if (t > rc->seg_maxt)
                rc->seg_maxt = t;
            if (!s) {
                rc->unknown_refs++;
                continue;
            }
            int nomem = 0;
            int k = series_append_sample(sh, s, t, b->v[at + i], b->ooo[r] ? 2 : 1, &nomem);
            if (nomem) {
                rc->nomem = 1;
                return -1;
            }
            if (k == -1 || k == -3)
                rc->samples++;
            else
                rc->ignored++;
        }
        at += n;
    }
    return 0;
}

/* Symbols (table `symbols`), then the series (table `series`, label sets as
 * symbol ids). Symbol rows no series row names are deleted. */
static rw_rc load_series(rw_shard *sh, uint64_t *n, rw_err *err)
{
    sqlite3_stmt *st;
    rw_rc rc = RW_OK;
    int64_t maxid = 0;
    int r = sqlite3_prepare_v2(sh->wdb, "SELECT max(id) FROM symbols", -1, &st, NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "load symbols", err);
    if (sqlite3_step(st) == SQLITE_ROW)
        maxid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (maxid < 0 || maxid >= UINT32_MAX - 1)
        return rw_err_set(err, RW_IO, "symbol id %lld out of range", (long long)maxid);
    size_t cap = (size_t)maxid + 1;
    char **sym = calloc(cap, sizeof *sym);
    uint8_t *used = calloc(cap, 1);
    rw_label *l = NULL;
    uint32_t *ids = NULL;
    if (!sym || !used) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory loading symbols");
        goto out;
    }
    r = sqlite3_prepare_v2(sh->wdb, "SELECT id, s FROM symbols", -1, &st, NULL);
    if (r != SQLITE_OK) {
        rc = db_rc(sh->wdb, r, "load symbols", err);
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *str = (const char *)sqlite3_column_text(st, 1);
        if (id <= 0 || id >= (int64_t)cap || !str)
            continue;
        if (!(sym[id] = strdup(str))) {
            r = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        rc = r == SQLITE_NOMEM ? rw_err_set(err, RW_NOMEM, "out of memory loading symbols")
                               : db_rc(sh->wdb, r, "load symbols", err);
        goto out;
    }
    if (sh->next_sym < cap)
        sh->next_sym = (uint32_t)cap;

    r = sqlite3_prepare_v2(sh->wdb, "SELECT count(*), max(id) FROM series", -1, &st, NULL);
    if (r != SQLITE_OK) {
        rc = db_rc(sh->wdb, r, "load series", err);
        goto out;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t cnt = sqlite3_column_int64(st, 0), mx = sqlite3_column_int64(st, 1);
        if (cnt > 0 && mx > 0 && mx < UINT32_MAX &&
            shard_index_reserve(sh, (uint32_t)mx, (size_t)cnt) < 0) {
            sqlite3_finalize(st);
            rc = rw_err_set(err, RW_NOMEM, "out of memory loading series");
            goto out;
        }
    }
    sqlite3_finalize(st);
    r = sqlite3_prepare_v2(sh->wdb, "SELECT id, labels FROM series ORDER BY id", -1, &st, NULL);
    if (r != SQLITE_OK) {
        rc = db_rc(sh->wdb, r, "load series", err);
        goto out;
    }
    uint64_t bad = 0;
    size_t capl = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const uint8_t *b = sqlite3_column_blob(st, 1);
        const uint8_t *end = b + sqlite3_column_bytes(st, 1);
        uint64_t nl;
        if (id <= 0 || id >= UINT32_MAX || !b || get_uvarint(&b, end, &nl) < 0 ||
            nl > RW_LABELS_MAX || nl > (uint64_t)(end - b)) {
            bad++;
            continue;
        }
        if (nl > capl) {
            capl = nl;
            free(l);
            free(ids);
            l = malloc(capl * sizeof *l);
            ids = malloc(capl * 2 * sizeof *ids);
            if (!l || !ids) {
                sqlite3_finalize(st);
                rc = rw_err_set(err, RW_NOMEM, "out of memory loading series");
                goto out;
            }
        }
        int ok = 1;
        for (uint64_t i = 0; i < 2 * nl && ok; i++) {
            uint64_t ref;
            ok = get_uvarint(&b, end, &ref) == 0 && ref > 0 && ref < cap && sym[ref];
            if (ok) {
                ids[i] = (uint32_t)ref;
                if (i % 2 == 0)
                    l[i / 2].name = sym[ref];
                else
                    l[i / 2].value = sym[ref];
            }
        }
        series *s = ok && b == end ? shard_series_create(sh, (uint32_t)id, rw_labels_hash(l, nl),
                                                         l, nl, ids)
                                   : NULL;
        if (!s) {
            bad++;
            continue;
        }
        for (uint64_t i = 0; i < 2 * nl; i++)
            used[ids[i]] = 1;
        s->in_db = 1;
        (*n)++;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        rc = db_rc(sh->wdb, r, "load series", err);
        goto out;
    }
    if (bad)
        rw_warn("shard %d: %llu unreadable series rows skipped", sh->idx, (unsigned long long)bad);
    size_t purge = 0;
    for (size_t i = 1; i < cap; i++)
        purge += sym[i] && !used[i];
    if (purge) {
        rc = db_begin(sh, err);
        for (size_t i = 1; i < cap && rc == RW_OK; i++) {
            if (!sym[i] || used[i])
                continue;
            sqlite3_bind_int64(sh->st_sym_del, 1, (int64_t)i);
            rc = db_step_done(sh, sh->st_sym_del, "delete symbol", err);
        }
        rw_err perr;
        rw_err_init(&perr);
        rc = db_end(sh, rc, &perr);
        if (rc == RW_OK)
            rw_info("shard %d: %zu unreferenced symbols deleted", sh->idx, purge);
        else /* harmless rows; the next open tries again */
            rw_warn("shard %d: cannot delete %zu unreferenced symbols: %s", sh->idx, purge,
                    perr.msg);
        rc = RW_OK;
    }
out:
    if (sym)
        for (size_t i = 0; i < cap; i++)
            free(sym[i]);
    free(sym);
    free(used);
    free(l);
    free(ids);
    return rc;
}

static int block_cmp(const void *a, const void *b)
{
    const blockd *x = *(blockd *const *)a, *y = *(blockd *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Deletes rows of `table` whose ids no block's [lo, hi] covers: what a
 * crashed flush or retention left (best effort). */
static void purge_orphans(rw_shard *sh, const char *table, int parts)
{
    size_t nb = sh->nblocks;
    int64_t (*rg)[2] = malloc((nb + 1) * sizeof *rg);
    if (!rg)
        return;
    size_t n = 0;
    for (size_t i = 0; i < nb; i++) {
        int64_t lo = parts ? sh->blocks[i]->parts_lo : sh->blocks[i]->ts_lo;
        int64_t hi = parts ? sh->blocks[i]->parts_hi : sh->blocks[i]->ts_hi;
        if (lo > 0 && hi >= lo) {
            rg[n][0] = lo;
            rg[n][1] = hi;
            n++;
        }
    }
    /* ranges ascend with block ids (rowids only grow) */
    rw_err e;
    rw_err_init(&e);
    if (db_begin(sh, &e) != RW_OK) {
        free(rg);
        return;
    }
    int64_t prev = 0;
    uint64_t gone = 0;
    rw_rc rc = RW_OK;
    for (size_t i = 0; i <= n && rc == RW_OK; i++) {
        int64_t next = i < n ? rg[i][0] : INT64_MAX;
        char sql[160];
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id > %lld AND id < %lld", table,
                 (long long)prev, (long long)next);
        rc = db_exec(sh->wdb, sql, &e);
        gone += (uint64_t)sqlite3_changes64(sh->wdb);
        if (i < n)
            prev = rg[i][1] > prev ? rg[i][1] : prev;
    }
    if (db_end(sh, rc, &e) == RW_OK && gone)
        rw_info("shard %d: %llu %s rows no block names deleted (left by an interrupted flush or "
                "retention)",
                sh->idx, (unsigned long long)gone, table);
    free(rg);
}

/* Loads the block descriptors and, from each block's index, every series'
 * persisted range and newest sample. */
static rw_rc load_blocks(rw_shard *sh, uint64_t *nblocks, rw_err *err)
{
    sqlite3_stmt *st;
    int r = sqlite3_prepare_v2(sh->wdb,
                               "SELECT id, mint, maxt, parts_lo, parts_hi, ts_lo, ts_hi, nparts, "
                               "nsamples, bytes, idx FROM blocks ORDER BY id",
                               -1, &st, NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "load blocks", err);
    rw_buf scratch;
    rw_buf_init(&scratch, 0);
    ZSTD_DCtx *zd = ZSTD_createDCtx();
    rw_rc rc = RW_OK;
    uint64_t unknown = 0, corrupt = 0;
    while (rc == RW_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        blockd *b = calloc(1, sizeof *b);
        if (!b) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory loading blocks");
            break;
        }
        b->id = sqlite3_column_int64(st, 0);
        b->mint = sqlite3_column_int64(st, 1);
        b->maxt = sqlite3_column_int64(st, 2);
        b->parts_lo = sqlite3_column_int64(st, 3);
        b->parts_hi = sqlite3_column_int64(st, 4);
        b->ts_lo = sqlite3_column_int64(st, 5);
        b->ts_hi = sqlite3_column_int64(st, 6);
        b->nparts = (uint64_t)sqlite3_column_int64(st, 7);
        b->nsamples = (uint64_t)sqlite3_column_int64(st, 8);
        b->bytes = (uint64_t)sqlite3_column_int64(st, 9);
        atomic_init(&b->refs, 1);
        const uint8_t *blob = sqlite3_column_blob(st, 10);
        bidx *x = blob ? bidx_decode(blob, (size_t)sqlite3_column_bytes(st, 10), b->mint,
                                     b->parts_lo, &scratch, zd)
                       : NULL;
        if (!x) {
            /* keep the rows (a later build may read them) but do not serve
             * them: nothing can be found without the index */
            corrupt++;
            free(b);
            continue;
        }
        for (size_t i = 0; i < x->n; i++) {
            const bidx_ent *e = &x->e[i];
            series *s = e->sid < sh->cap_id ? sh->by_id[e->sid] : NULL;
            if (!s) {
                unknown++;
                continue;
            }
            if (s->pmint > s->pmaxt) {
                s->pmint = e->mint;
                s->pmaxt = e->maxt;
            } else {
                if (e->mint < s->pmint)
                    s->pmint = e->mint;
                if (e->maxt > s->pmaxt)
                    s->pmaxt = e->maxt;
            }
            if (!s->has_data || e->maxt > s->newest_t) {
                s->newest_t = e->maxt;
                s->newest_v = e->lastv;
                s->has_data = 1;
            }
        }
        bidx_put(x);
        if (shard_blocks_push(sh, b) < 0) {
            free(b);
            rc = rw_err_set(err, RW_NOMEM, "out of memory loading blocks");
            break;
        }
        (*nblocks)++;
    }
    sqlite3_finalize(st);
    ZSTD_freeDCtx(zd);
    rw_buf_free(&scratch);
    if (rc == RW_OK && r != SQLITE_DONE)
        rc = db_rc(sh->wdb, r, "load blocks", err);
    if (rc != RW_OK)
        return rc;
    if (sh->nblocks > 1)
        qsort(sh->blocks, sh->nblocks, sizeof *sh->blocks, block_cmp);
    if (corrupt)
        rw_error("shard %d: %llu blocks have an unreadable index and are not served",
                 sh->idx, (unsigned long long)corrupt);
    if (unknown)
        rw_info("shard %d: %llu parts of deleted series in blocks (dropped with their blocks)",
                sh->idx, (unsigned long long)unknown);
    if (!corrupt) {
        purge_orphans(sh, "parts", 1);
        purge_orphans(sh, "tscols", 0);
    }
    return RW_OK;
}

/* Replays this shard's sections of every WAL segment from `from` on (the
 * ones before are in its head snapshot). */
static rw_rc replay_wal(rw_shard *sh, uint64_t from, replay_ctx *rc, uint64_t *records,
                        rw_err *err)
{
    rw_wal *w = &sh->store->wal;
    walstate ws;
    memset(&ws, 0, sizeof ws);
    rw_buf scratch;
    rw_buf_init(&scratch, 0);
    wal_visitor v = {.ctx = rc, .series_fn = replay_series, .batch_fn = replay_batch};
    int64_t t_start = rw_mono_ns(), t_last = t_start;
    rw_rc r = RW_OK;
    for (size_t i = 0; i < w->nsegs && r == RW_OK; i++) {
        uint64_t seq = w->segs[i].seq;
        if (seq < from)
            continue;
        uint8_t *buf;
        size_t len;
        if (wal_read_segment(w, seq, &buf, &len, err) < 0) {
            r = err ? err->code : RW_IO;
            break;
        }
        rc->seg_maxt = INT64_MIN;
        rc->seg_future = 0;
        size_t off = 0;
        for (;;) {
            const uint8_t *sec;
            size_t seclen;
            const char *why = NULL;
            size_t at = off;
            int k = wal_next_record(buf, len, seq, &off, sh->idx, &scratch, &sec, &seclen, &why);
            if (k == -1) {
                if (why && !(at == 0 && len == 0))
                    rw_error("shard %d: WAL segment %016llx: %s at offset %zu; the rest of the "
                             "segment is ignored (a write that was never acknowledged)",
                             sh->idx, (unsigned long long)seq, why, at);
                break;
            }
            if (k == -2) {
                rw_error("shard %d: WAL segment %016llx: the record at offset %zu is intact but "
                         "unreadable (%s); skipped, replay goes on",
                         sh->idx, (unsigned long long)seq, at, why);
                /* which series it held is unknown: their later values in
                 * this segment cannot be decoded until a record that stands
                 * alone */
                walstate_poison_all(&ws, seq);
                continue;
            }
            if (k == 0)
                continue;
            (*records)++;
            why = NULL;
            if (walrec_decode(sec, seclen, &ws, seq, &v, &rc->unapplied, &why) < 0) {
                if (rc->nomem) {
                    r = rw_err_set(err, RW_NOMEM, "out of memory replaying the WAL");
                    break;
                }
                rw_error("shard %d: WAL segment %016llx: the record at offset %zu could not be "
                         "applied fully (%s); replay goes on with the next record",
                         sh->idx, (unsigned long long)seq, at, why);
            }
            int64_t now = rw_mono_ns();
            if (now - t_last > 5000000000LL) {
                t_last = now;
                rw_info("shard %d: replaying the WAL: segment %zu of %zu, %llu samples so far "
                        "(%.0fs)",
                        sh->idx, i + 1, w->nsegs, (unsigned long long)rc->samples,
                        (double)(now - t_start) / 1e9);
            }
        }
        free(buf);
        wal_note_segment(w, seq, off, rc->seg_maxt, rc->seg_future);
    }
    walstate_free(&ws);
    walbatch_free(&v.batch);
    rw_buf_free(&scratch);
    return r;
}

rw_rc shard_recover(rw_shard *sh, rw_err *err)
{
    int64_t t0 = rw_mono_ns();
    uint64_t nseries = 0, nblocks = 0, nrec = 0;
    replay_ctx rc = {.sh = sh};
    rw_rc r;
    pthread_mutex_lock(&sh->mu);
    sh->next_id = 1;  /* 0 is never a series id */
    sh->next_sym = 1; /* nor a symbol id */
    sh->newest_bound = store_newest_bound(sh->store);
    rc.bound = sh->newest_bound;
    if ((r = load_series(sh, &nseries, err)) != RW_OK || (r = load_blocks(sh, &nblocks, err)) != RW_OK)
        goto out;
    /* the retention check during replay needs the newest time */
    for (uint32_t i = 0; i < sh->cap_id; i++)
        if (sh->by_id[i] && sh->by_id[i]->has_data && sh->by_id[i]->newest_t <= sh->newest_bound)
            store_note_newest(sh->store, sh->by_id[i]->newest_t);
    {
        int64_t v;
        if (db_meta_get(sh->wdb, "next_sid", &v) == 1 && v > sh->next_id && v < UINT32_MAX)
            sh->next_id = (uint32_t)v;
    }
    uint64_t from = 0;
    snapshot_stats ss;
    if ((r = shard_snapshot_load(sh, &from, &ss, err)) != RW_OK)
        goto out;
    /* the segments before the snapshot's are covered by it */
    sh->ckpt_seq = from;
    int64_t t_snap = rw_mono_ns();
    if ((r = replay_wal(sh, from, &rc, &nrec, err)) != RW_OK)
        goto out;
    if (from)
        rw_info("shard %d: head snapshot loaded: %llu series (%llu deleted since), %llu chunks, "
                "replay from WAL segment %016llx (%.3fs)",
                sh->idx, (unsigned long long)ss.series, (unsigned long long)ss.gone_series,
                (unsigned long long)ss.chunks, (unsigned long long)from,
                (double)(t_snap - t0) / 1e9);
    rw_info("shard %d opened: %llu series, %llu blocks, %llu WAL records replayed (%llu samples "
            "applied, %llu already present%s%s) in %.3fs",
            sh->idx, (unsigned long long)nseries, (unsigned long long)nblocks,
            (unsigned long long)nrec, (unsigned long long)rc.samples,
            (unsigned long long)rc.ignored, rc.unknown_refs ? ", some for unknown series" : "",
            rc.bad_series ? ", some series entries unusable" : "",
            (double)(rw_mono_ns() - t0) / 1e9);
    if (rc.unapplied || rc.unknown_refs)
        rw_error("shard %d: %llu WAL samples could not be applied (their record or series entry "
                 "was unreadable) and %llu named unknown series",
                 sh->idx, (unsigned long long)rc.unapplied, (unsigned long long)rc.unknown_refs);
out:
    pthread_mutex_unlock(&sh->mu);
    if (r != RW_OK)
        rw_err_prefix(err, "shard %d recovery", sh->idx);
    return r;
}
