/* checkpoint.c - bounds the WAL. Periodically (maintenance thread in store.c),
 * after recovery and on close, a shard's checkpoint takes the write
 * connection like a group-commit leader and, in ONE transaction, writes the
 * completed chunks still waiting, the bytes of every open head chunk that
 * changed since the last checkpoint (table `head`), the rows of series
 * created since (table `series`) and deletes every WAL row: at that moment
 * all WAL content is covered by heads + chunks, so the pending WAL buffer is
 * dropped too. After it, recovery replays nothing older than the checkpoint. */
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

typedef struct snap {
    uint32_t sid;
    size_t off, len;
} snap;

rw_rc shard_checkpoint(rw_shard *sh, int final, rw_err *err)
{
    rw_store *st = sh->store;
    int64_t t0 = rw_mono_ns();
    rw_rc rc = RW_OK;
    rw_err lerr;
    rw_err_init(&lerr);
    rw_buf heads, labels;
    rw_buf_init(&heads, 0);
    rw_buf_init(&labels, 0);
    snap *hs = NULL;
    size_t nhs = 0, nss = 0, caph = 0;

    pthread_mutex_lock(&sh->mu);
    shard_db_acquire(sh);
    uint64_t target = sh->pending_seq;
    rw_buf taken;
    pend_chunk *pc;
    size_t npc;
    shard_take_pending(sh, &taken, &pc, &npc);
    uint32_t next_id = sh->next_id;
    for (uint32_t i = 0; i < sh->cap_id && rc == RW_OK; i++) {
        series *s = sh->by_id[i];
        if (!s)
            continue;
        if (s->head_dirty && s->head.n) {
            if (nhs == caph) {
                caph = caph ? caph * 2 : 256;
                snap *n = realloc(hs, caph * sizeof *n);
                if (!n) {
                    rc = rw_err_set(&lerr, RW_NOMEM, "out of memory");
                    break;
                }
                hs = n;
            }
            size_t len = chunk_enc_len(&s->head);
            hs[nhs++] = (snap){.sid = s->id, .off = heads.len, .len = len};
            rw_buf_append(&heads, s->head.b, len);
            s->head_dirty = 0;
        }
    }
    shard_take_new_series(sh, &labels);
    if (heads.failed || labels.failed)
        rc = rw_err_set(&lerr, RW_NOMEM, "out of memory");
    pthread_mutex_unlock(&sh->mu);

    int64_t wal_rows = 0;
    if (rc == RW_OK)
        rc = db_begin(sh, &lerr);
    if (rc == RW_OK)
        rc = db_put_pending_chunks(sh, pc, npc, NULL, &lerr);
    if (rc == RW_OK)
        rc = db_put_series_rows(sh, &labels, &nss, &lerr);
    for (size_t i = 0; rc == RW_OK && i < nhs; i++) {
        sqlite3_bind_int64(sh->st_head_put, 1, hs[i].sid);
        sqlite3_bind_blob(sh->st_head_put, 2, heads.p + hs[i].off, (int)hs[i].len, SQLITE_STATIC);
        rc = db_step_done(sh, sh->st_head_put, "write head", &lerr);
    }
    if (rc == RW_OK) {
        rc = db_step_done(sh, sh->st_wal_clear, "trim wal", &lerr);
        wal_rows = sqlite3_changes64(sh->wdb);
    }
    if (rc == RW_OK) {
        sqlite3_bind_text(sh->st_meta_put, 1, "next_sid", -1, SQLITE_STATIC);
        sqlite3_bind_int64(sh->st_meta_put, 2, next_id);
        rc = db_step_done(sh, sh->st_meta_put, "write meta", &lerr);
    }
    rc = db_end(sh, rc, &lerr);
    double secs = (double)(rw_mono_ns() - t0) / 1e9;

    pthread_mutex_lock(&sh->mu);
    if (rc == RW_OK) {
        shard_txn_committed(sh, target, pc, npc, &taken);
        sh->last_checkpoint_ms = rw_now_ms();
        rw_histogram_observe(st->m_ckpt_dur, secs);
    } else {
        for (size_t i = 0; i < nhs; i++)
            if (sh->by_id[hs[i].sid])
                sh->by_id[hs[i].sid]->head_dirty = 1;
        shard_restore_new_series(sh, &labels);
        shard_restore_pending(sh, &taken, pc, npc);
        shard_note_failure(sh, target, rc, &lerr);
    }
    shard_db_release(sh);
    pthread_mutex_unlock(&sh->mu);

    if (rc == RW_OK) {
        if (final || npc || nhs || nss || wal_rows)
            rw_log(final ? RW_LOG_INFO : RW_LOG_DEBUG,
                   "shard %d checkpoint: %zu chunks, %zu head chunks, %zu new series written, "
                   "%lld WAL records trimmed in %.3fs",
                   sh->idx, npc, nhs, nss, (long long)wal_rows, secs);
    } else {
        rw_warn("shard %d checkpoint failed: %s", sh->idx, lerr.msg);
        rw_err_set(err, rc, "shard %d checkpoint: %s", sh->idx, lerr.msg);
    }
    free(hs);
    rw_buf_free(&heads);
    rw_buf_free(&labels);
    return rc;
}
