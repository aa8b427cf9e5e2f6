/* retention.c - drops data older than the retention window, measured from
 * the newest sample in the store (not the wall clock, so backfilled data
 * stays) that is not ahead of the wall clock + max_future (so one far-future
 * sample cannot move the window and delete everything). Run by the maintenance thread and rw_store_maintain(): whole
 * persisted chunks whose maxt is before the cut-off go, open head chunks
 * whose newest sample is before it go, and series left with no data are
 * removed from the index and from table `series`. In-memory state is changed
 * under the shard lock, then the rows are deleted in one transaction. A
 * failed delete leaves rows that the next open loads and drops again. */
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "store_int.h"

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

rw_rc shard_retention(rw_shard *sh, rw_err *err)
{
    rw_store *st = sh->store;
    int64_t ret = st->opts.retention_ms;
    int64_t bound = store_newest_bound(st);
    if (ret > 0) {
        /* samples stored ahead of the clock count once the clock reaches them */
        pthread_mutex_lock(&sh->mu);
        for (uint32_t i = 0; i < sh->cap_id; i++) {
            const series *s = sh->by_id[i];
            if (s && s->has_data && s->newest_t <= bound)
                store_note_newest(st, s->newest_t);
        }
        pthread_mutex_unlock(&sh->mu);
    }
    int64_t newest = atomic_load(&st->newest);
    if (ret <= 0 || newest == INT64_MIN || newest < INT64_MIN + ret)
        return RW_OK;
    int64_t cutoff = newest - ret;
    ivec chunks = {0}, heads = {0}, gone = {0};
    int nomem = 0;

    pthread_mutex_lock(&sh->mu);
    shard_db_acquire(sh);
    for (uint32_t i = 0; i < sh->cap_id && !nomem; i++) {
        series *s = sh->by_id[i];
        if (!s)
            continue;
        uint32_t k = 0;
        while (k < s->nchunks && s->chunks[k].rowid && s->chunks[k].maxt < cutoff) {
            if (ivec_push(&chunks, s->chunks[k].rowid) < 0) {
                nomem = 1;
                break;
            }
            k++;
        }
        if (k) {
            for (uint32_t j = 0; j < k; j++)
                free(s->chunks[j].data);
            memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof *s->chunks);
            s->nchunks -= k;
            sh->nchunks -= k;
        }
        if (nomem)
            break;
        if (s->head.n && s->head.t < cutoff) {
            if (ivec_push(&heads, s->id) < 0) {
                nomem = 1;
                break;
            }
            sh->nheads--;
            sh->head_samples -= s->head.n;
            chunk_enc_free(&s->head);
            s->head_dirty = 0;
        }
        if (s->nchunks == 0 && s->head.n == 0) {
            if (ivec_push(&gone, s->id) < 0) {
                nomem = 1;
                break;
            }
            shard_series_delete(sh, s);
        }
    }
    /* symbols no series uses any more (freed by the deletes above) */
    uint32_t *dead = sh->deadsym;
    size_t ndead = sh->ndeadsym;
    sh->deadsym = NULL;
    sh->ndeadsym = sh->capdeadsym = 0;
    pthread_mutex_unlock(&sh->mu);

    rw_rc rc = RW_OK;
    rw_err lerr;
    rw_err_init(&lerr);
    if (chunks.n || heads.n || gone.n || ndead) {
        rc = db_begin(sh, &lerr);
        for (size_t i = 0; rc == RW_OK && i < chunks.n; i++) {
            sqlite3_bind_int64(sh->st_chunk_del, 1, chunks.v[i]);
            rc = db_step_done(sh, sh->st_chunk_del, "delete chunk", &lerr);
        }
        for (size_t i = 0; rc == RW_OK && i < heads.n; i++) {
            sqlite3_bind_int64(sh->st_head_del, 1, heads.v[i]);
            rc = db_step_done(sh, sh->st_head_del, "delete head", &lerr);
        }
        for (size_t i = 0; rc == RW_OK && i < gone.n; i++) {
            sqlite3_bind_int64(sh->st_series_del, 1, gone.v[i]);
            rc = db_step_done(sh, sh->st_series_del, "delete series", &lerr);
            if (rc == RW_OK) {
                sqlite3_bind_int64(sh->st_head_del, 1, gone.v[i]);
                rc = db_step_done(sh, sh->st_head_del, "delete head", &lerr);
            }
        }
        for (size_t i = 0; rc == RW_OK && i < ndead; i++) {
            sqlite3_bind_int64(sh->st_sym_del, 1, dead[i]);
            rc = db_step_done(sh, sh->st_sym_del, "delete symbol", &lerr);
        }
        if (rc == RW_OK)
            rc = db_commit(sh, &lerr);
        else
            db_rollback(sh);
        if (rc == RW_OK) {
            rw_counter_add(st->m_retention_chunks, chunks.n);
            rw_counter_add(st->m_retention_series, gone.n);
            rw_info("shard %d retention: dropped %zu chunks, %zu head chunks, %zu series older "
                    "than %lld",
                    sh->idx, chunks.n, heads.n, gone.n, (long long)cutoff);
        } else {
            rw_warn("shard %d retention: delete failed (will retry after restart): %s", sh->idx,
                    lerr.msg);
            rw_err_set(err, rc, "shard %d retention: %s", sh->idx, lerr.msg);
        }
    }
    pthread_mutex_lock(&sh->mu);
    shard_db_release(sh);
    pthread_mutex_unlock(&sh->mu);
    free(chunks.v);
    free(heads.v);
    free(gone.v);
    free(dead); /* on failure the rows stay; the next open purges them */
    if (nomem && rc == RW_OK)
        rc = rw_err_set(err, RW_NOMEM, "shard %d retention: out of memory", sh->idx);
    return rc;
}
