/* retention.c - drops data older than the retention window, measured from
 * the newest sample in the store (not the wall clock, so backfilled data
 * stays) that is not ahead of the wall clock + max_future (so one far-future
 * sample cannot move the window and delete everything). Run by the
 * maintenance thread and rw_store_maintain(), in small steps: every lock
 * hold covers one slice of series, every transaction a bounded number of
 * rows, so neither ingestion nor queries wait behind it.
 *
 *   blocks whose newest sample is before the cut-off: out of the list, then
 *   their block row, parts and timestamp columns (a crash in between leaves
 *   rows no block names, which the next open deletes);
 *   head data before the cut-off (retention shorter than a flush window);
 *   series left with nothing: out of the index, then their rows and the
 *   symbols no remaining series uses;
 *   then, when a quarter of the file is free pages, incremental vacuum a
 *   few hundred pages at a time.
 * When the store is closing, a pass stops between steps (before a block's
 * rows, a transaction of series rows, a vacuum step): what it did not
 * delete stays on disk whole, and the next pass after a start deletes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "store_int.h"

#define SLICE 4096
#define ROWS_PER_TXN 4096
#define VACUUM_PAGES 512
#define VACUUM_STEPS 16

typedef struct ivec {
    int64_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int64_t *n = realloc(a->v, nc * sizeof *n);
        if (!n)
            return -1;
        a->v = n;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

rw_rc shard_delete_rows(rw_shard *sh, const char *table, int64_t lo, int64_t hi, rw_err *err)
{
    rw_rc rc = RW_OK;
    for (int64_t a = lo; a > 0 && a <= hi && rc == RW_OK; a += ROWS_PER_TXN) {
        int64_t b = a + ROWS_PER_TXN - 1 < hi ? a + ROWS_PER_TXN - 1 : hi;
        char sql[160];
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id BETWEEN %lld AND %lld", table,
                 (long long)a, (long long)b);
        pthread_mutex_lock(&sh->mu);
        shard_db_acquire(sh);
        pthread_mutex_unlock(&sh->mu);
        rc = db_exec(sh->wdb, sql, err);
        pthread_mutex_lock(&sh->mu);
        shard_db_release(sh);
        pthread_mutex_unlock(&sh->mu);
    }
    return rc;
}

static rw_rc drop_block(rw_shard *sh, blockd *b, rw_err *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM blocks WHERE id=%lld", (long long)b->id);
    pthread_mutex_lock(&sh->mu);
    shard_db_acquire(sh);
    pthread_mutex_unlock(&sh->mu);
    rw_rc rc = db_exec(sh->wdb, sql, err);
    pthread_mutex_lock(&sh->mu);
    shard_db_release(sh);
    pthread_mutex_unlock(&sh->mu);
    if (rc == RW_OK && b->parts_lo > 0)
        rc = shard_delete_rows(sh, "parts", b->parts_lo, b->parts_hi, err);
    if (rc == RW_OK && b->ts_lo > 0)
        rc = shard_delete_rows(sh, "tscols", b->ts_lo, b->ts_hi, err);
    return rc;
}

/* Deletes rows by id from `st` (a "DELETE ... WHERE id=?" statement),
 * ROWS_PER_TXN per transaction; *stopped when the store closing ended it
 * before the last. */
static rw_rc delete_ids(rw_shard *sh, sqlite3_stmt *st, const int64_t *ids, size_t n,
                        const char *what, int *stopped, rw_err *err)
{
    rw_rc rc = RW_OK;
    for (size_t i = 0; i < n && rc == RW_OK;) {
        if (store_stopping(sh->store)) {
            *stopped = 1;
            break;
        }
        pthread_mutex_lock(&sh->mu);
        shard_db_acquire(sh);
        pthread_mutex_unlock(&sh->mu);
        rc = db_begin(sh, err);
        size_t end = i + ROWS_PER_TXN < n ? i + ROWS_PER_TXN : n;
        for (; i < end && rc == RW_OK; i++) {
            sqlite3_bind_int64(st, 1, ids[i]);
            rc = db_step_done(sh, st, what, err);
        }
        rc = db_end(sh, rc, err);
        pthread_mutex_lock(&sh->mu);
        shard_db_release(sh);
        pthread_mutex_unlock(&sh->mu);
    }
    return rc;
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return v;
}

/* Gives free pages back to the file system, a few at a time, when many
 * are free (after retention; new blocks reuse free pages otherwise). */
static void vacuum_steps(rw_shard *sh)
{
    for (int i = 0; i < VACUUM_STEPS && !store_stopping(sh->store); i++) {
        pthread_mutex_lock(&sh->mu);
        shard_db_acquire(sh);
        pthread_mutex_unlock(&sh->mu);
        int64_t fl = pragma_int(sh->wdb, "PRAGMA freelist_count");
        int64_t pc = pragma_int(sh->wdb, "PRAGMA page_count");
        int go = fl > 1024 && fl * 4 > pc;
        if (go) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", VACUUM_PAGES);
            db_exec(sh->wdb, sql, NULL);
        }
        pthread_mutex_lock(&sh->mu);
        shard_db_release(sh);
        pthread_mutex_unlock(&sh->mu);
        if (!go)
            break;
    }
}

static rw_rc retention_pass(rw_shard *sh, int64_t ret, rw_err *err);

rw_rc shard_retention(rw_shard *sh, rw_err *err)
{
    rw_store *st = sh->store;
    int64_t ret = st->opts.retention_ms;
    if (ret <= 0)
        return RW_OK;
    rw_gauge_add(st->m_retention_running, 1);
    rw_rc rc = retention_pass(sh, ret, err);
    rw_gauge_add(st->m_retention_running, -1);
    return rc;
}

static rw_rc retention_pass(rw_shard *sh, int64_t ret, rw_err *err)
{
    rw_store *st = sh->store;
    int stopped = 0;
    /* samples stored ahead of the clock count once the clock reaches them */
    int64_t bound = store_newest_bound(st);
    for (uint32_t from = 0;; from += SLICE) {
        pthread_mutex_lock(&sh->mu);
        uint32_t cap = sh->cap_id, to = from + SLICE < cap ? from + SLICE : cap;
        for (uint32_t i = from; i < to; i++) {
            const series *s = sh->by_id[i];
            if (s && s->has_data && s->newest_t <= bound)
                store_note_newest(st, s->newest_t);
        }
        pthread_mutex_unlock(&sh->mu);
        if (to >= cap)
            break;
    }
    int64_t newest = atomic_load(&st->newest);
    if (newest == INT64_MIN || newest < INT64_MIN + ret)
        return RW_OK;
    int64_t cutoff = newest - ret;
    rw_rc rc = RW_OK;

    /* blocks */
    blockd **gone = NULL;
    size_t ngone = 0;
    pthread_mutex_lock(&sh->mu);
    if (sh->nblocks)
        gone = malloc(sh->nblocks * sizeof *gone);
    if (gone) {
        size_t w = 0;
        for (size_t i = 0; i < sh->nblocks; i++) {
            blockd *b = sh->blocks[i];
            if (b->maxt < cutoff) {
                b->dead = 1;
                gone[ngone++] = b;
                sh->block_bytes -= b->bytes;
                sh->block_samples -= b->nsamples;
                sh->block_parts -= b->nparts;
            } else {
                sh->blocks[w++] = b;
            }
        }
        sh->nblocks = w;
    }
    pthread_mutex_unlock(&sh->mu);
    for (size_t i = 0; i < ngone; i++) {
        cache_drop_block(sh, gone[i]);
        /* closing: a block not begun stays whole on disk (its row names its
           rows), the next open lists it and the next pass drops it */
        if (!stopped && store_stopping(sh->store))
            stopped = 1;
        rw_rc r = stopped ? RW_OK : drop_block(sh, gone[i], err);
        if (r != RW_OK && rc == RW_OK)
            rc = r; /* the rows stay; the next open deletes what no block names */
        blockd_put(gone[i]);
    }
    free(gone);

    /* head data and series */
    ivec dead = {0};
    uint64_t nseries_gone = 0;
    int nomem = 0;
    for (uint32_t from = 0; !nomem; from += SLICE) {
        if (store_stopping(sh->store)) {
            stopped = 1; /* the series not reached are still whole */
            break;
        }
        pthread_mutex_lock(&sh->mu);
        uint32_t cap = sh->cap_id, to = from + SLICE < cap ? from + SLICE : cap;
        for (uint32_t i = from; i < to && !nomem; i++) {
            series *s = sh->by_id[i];
            if (!s)
                continue;
            uint32_t k = 0;
            while (k < s->nchunks && s->chunks[k].maxt < cutoff) {
                sh->head_samples -= s->chunks[k].n;
                free(s->chunks[k].data);
                k++;
            }
            if (k) {
                memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof *s->chunks);
                s->nchunks -= k;
                sh->head_chunks -= k;
            }
            if (s->head.n && s->head.t < cutoff) {
                sh->nheads--;
                sh->head_samples -= s->head.n;
                series_head_reset(s);
            }
            if (s->ooo) {
                uint32_t w = 0;
                for (uint32_t j = 0; j < s->ooo->n; j++) {
                    if (s->ooo->t[j] < cutoff) {
                        sh->ooo_samples--;
                        continue;
                    }
                    s->ooo->t[w] = s->ooo->t[j];
                    s->ooo->v[w] = s->ooo->v[j];
                    w++;
                }
                s->ooo->n = w;
                if (!w)
                    ooo_free(s);
            }
            if (s->pmint <= s->pmaxt && s->pmint < cutoff)
                s->pmint = cutoff; /* what is older goes with its blocks */
            int empty = !s->nchunks && !s->head.n && !s->ooo &&
                        (s->pmint > s->pmaxt || s->pmaxt < cutoff);
            if (empty) {
                if (s->in_db && ivec_push(&dead, s->id) < 0) {
                    nomem = 1;
                    break;
                }
                shard_series_delete(sh, s);
                nseries_gone++;
            }
        }
        pthread_mutex_unlock(&sh->mu);
        if (to >= cap)
            break;
    }
    /* symbols no series uses any more (freed by the deletes above) */
    pthread_mutex_lock(&sh->mu);
    uint32_t *dsym = sh->deadsym;
    size_t ndsym = sh->ndeadsym;
    sh->deadsym = NULL;
    sh->ndeadsym = sh->capdeadsym = 0;
    pthread_mutex_unlock(&sh->mu);
    rw_rc r = delete_ids(sh, sh->st_series_del, dead.v, dead.n, "delete series", &stopped, err);
    /* symbols only once every series row naming them is gone */
    if (r == RW_OK && ndsym && !stopped) {
        int64_t *ids = malloc(ndsym * sizeof *ids);
        if (ids) {
            for (size_t i = 0; i < ndsym; i++)
                ids[i] = dsym[i];
            r = delete_ids(sh, sh->st_sym_del, ids, ndsym, "delete symbol", &stopped, err);
            free(ids);
        }
    }
    if (r != RW_OK && rc == RW_OK)
        rc = r; /* rows of deleted series stay; the next open skips unnamed symbols */
    free(dsym);
    free(dead.v);
    if (ngone || nseries_gone) {
        rw_counter_add(st->m_retention_blocks, ngone);
        rw_counter_add(st->m_retention_series, nseries_gone);
        rw_info("shard %d retention%s: dropped %zu blocks and %llu series older than %lld",
                sh->idx, stopped ? " interrupted (stopping; the rest after the next start)" : "",
                ngone, (unsigned long long)nseries_gone, (long long)cutoff);
        vacuum_steps(sh);
    }
    if (rc != RW_OK)
        rw_warn("shard %d retention: %s (will retry)", sh->idx, err ? err->msg : "");
    if (nomem && rc == RW_OK)
        rc = rw_err_set(err, RW_NOMEM, "shard %d retention: out of memory", sh->idx);
    return rc;
}
