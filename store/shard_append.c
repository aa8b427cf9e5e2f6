/* shard_append.c - the write path below ingest: rw_store_append() routes each
 * series to its shard, applies the per-sample rules (out of order, duplicate,
 * identical resend, too old) under the shard lock, appends accepted samples
 * to the series' head chunk and to the shard's pending WAL buffer, and then
 * makes them durable with group commit:
 *
 *   every append that added WAL bytes takes a sequence number (pending_seq);
 *   whoever finds no commit running becomes the leader, takes the whole
 *   pending buffer plus the completed chunks, writes them in ONE SQLite
 *   transaction without holding the shard lock, publishes committed_seq and
 *   wakes everybody; the others sleep until committed_seq covers their seq.
 *
 * A failed commit (disk full, busy) puts the taken data back in front of the
 * pending buffer, so nothing acknowledged or later acknowledged is lost, and
 * the appends whose data it covered fail with RW_IO / RW_AGAIN (503). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define DEFAULT_MAX_PENDING (64u << 20)

void store_note_newest(rw_store *st, int64_t t)
{
    int64_t cur = atomic_load(&st->newest);
    while (t > cur && !atomic_compare_exchange_weak(&st->newest, &cur, t))
        ;
}

int64_t store_newest_bound(const rw_store *st)
{
    int64_t f = st->opts.max_future_ms > 0 ? st->opts.max_future_ms : 0;
    return rw_now_ms() + f;
}

void shard_db_acquire(rw_shard *sh)
{
    while (sh->db_owner)
        pthread_cond_wait(&sh->commit_cv, &sh->mu);
    sh->db_owner = 1;
}

void shard_db_release(rw_shard *sh)
{
    sh->db_owner = 0;
    pthread_cond_broadcast(&sh->commit_cv);
}

int series_cut_head(rw_shard *sh, series *s)
{
    if (!s->head.n)
        return 0;
    if (s->nchunks == s->capchunks) {
        uint32_t nc = s->capchunks ? s->capchunks * 2 : 4;
        chunk_meta *n = realloc(s->chunks, nc * sizeof *n);
        if (!n)
            return -1;
        s->chunks = n;
        s->capchunks = nc;
    }
    if (sh->npchunks == sh->cappchunks) {
        size_t nc = sh->cappchunks ? sh->cappchunks * 2 : 64;
        pend_chunk *n = realloc(sh->pchunks, nc * sizeof *n);
        if (!n)
            return -1;
        sh->pchunks = n;
        sh->cappchunks = nc;
    }
    uint32_t len = (uint32_t)chunk_enc_len(&s->head);
    uint8_t *data = realloc(s->head.b, len); /* shrink to fit */
    if (!data)
        data = s->head.b;
    chunk_meta *cm = &s->chunks[s->nchunks++];
    cm->mint = s->head.t0;
    cm->maxt = s->head.t;
    cm->rowid = 0;
    cm->data = data;
    cm->len = len;
    cm->n = s->head.n;
    sh->pchunks[sh->npchunks++] =
        (pend_chunk){.sid = s->id, .mint = cm->mint, .maxt = cm->maxt, .data = data, .len = len};
    sh->nchunks++;
    sh->nheads--;
    sh->head_samples -= s->head.n;
    chunk_enc_init(&s->head);
    s->head_dirty = 1;
    return 0;
}

int series_append_sample(rw_shard *sh, series *s, int64_t t, double v, int replay, int *nomem)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (s->has_data && t <= s->newest_t) {
        if (replay || (t == s->newest_t && bits == s->newest_v))
            return -2;
        return t == s->newest_t ? RW_REJ_DUPLICATE : RW_REJ_OUT_OF_ORDER;
    }
    int64_t ret = sh->store->opts.retention_ms;
    if (ret > 0) {
        int64_t newest = atomic_load(&sh->store->newest);
        if (newest != INT64_MIN && t < newest - ret)
            return replay ? -2 : RW_REJ_TOO_OLD;
    }
    if (s->head.n >= RW_CHUNK_MAX_SAMPLES ||
        (s->head.n && (uint64_t)t - (uint64_t)s->head.t0 > (uint64_t)RW_CHUNK_MAX_SPAN_MS)) {
        if (series_cut_head(sh, s) < 0) {
            *nomem = 1;
            return -2;
        }
    }
    int was_empty = s->head.n == 0;
    if (chunk_enc_append(&s->head, t, v) < 0) {
        *nomem = 1;
        return -2;
    }
    if (was_empty)
        sh->nheads++;
    sh->head_samples++;
    s->newest_t = t;
    s->newest_v = bits;
    s->has_data = 1;
    s->head_dirty = 1;
    if (s->head.n >= RW_CHUNK_MAX_SAMPLES)
        series_cut_head(sh, s); /* on failure the next append retries */
    if (t <= sh->newest_bound)
        store_note_newest(sh->store, t);
    return -1;
}

/* ---- commit ---- */

int shard_note_new_series(rw_shard *sh, uint32_t id)
{
    if (sh->nnewser == sh->capnewser) {
        size_t nc = sh->capnewser ? sh->capnewser * 2 : 256;
        uint32_t *n = realloc(sh->newser, nc * sizeof *n);
        if (!n)
            return -1;
        sh->newser = n;
        sh->capnewser = nc;
    }
    sh->newser[sh->nnewser++] = id;
    return 0;
}

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

/* Rows: [u8 kind][u32 id][u32 len][blob]; symbol rows first, so a series
 * row never names a symbol its transaction does not also write (or an
 * earlier one did). Series blob: uvarint n, 2n uvarint symbol ids. */
void shard_take_new_series(rw_shard *sh, rw_buf *out)
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
            put_uvarint(out, symbol_id(sh, s->labels[j].name));
            put_uvarint(out, symbol_id(sh, s->labels[j].value));
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

rw_rc db_put_series_rows(rw_shard *sh, const rw_buf *rows, size_t *n, rw_err *err)
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

void shard_restore_new_series(rw_shard *sh, const rw_buf *rows)
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

static series *series_by_id(rw_shard *sh, uint32_t id)
{
    return id < sh->cap_id ? sh->by_id[id] : NULL;
}

rw_rc db_put_pending_chunks(rw_shard *sh, pend_chunk *pc, size_t npc, uint64_t *bytes,
                            rw_err *err)
{
    for (size_t i = 0; i < npc; i++) {
        rw_rc rc = db_chunk_insert(sh, pc[i].sid, pc[i].mint, pc[i].maxt, pc[i].data,
                                   pc[i].len, &pc[i].rowid, err);
        if (bytes)
            *bytes += pc[i].len + 24;
        if (rc == RW_OK) {
            /* a checkpoint may have saved it while it was the open head */
            sqlite3_bind_int64(sh->st_head_del, 1, pc[i].sid);
            rc = db_step_done(sh, sh->st_head_del, "delete head", err);
        }
        if (rc != RW_OK)
            return rc;
    }
    return RW_OK;
}

static void chunks_committed(rw_shard *sh, const pend_chunk *pc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        series *s = series_by_id(sh, pc[i].sid);
        if (!s)
            continue;
        uint32_t lo = 0, hi = s->nchunks;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (s->chunks[mid].mint < pc[i].mint)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < s->nchunks && s->chunks[lo].mint == pc[i].mint && s->chunks[lo].data == pc[i].data) {
            s->chunks[lo].rowid = pc[i].rowid;
            free(s->chunks[lo].data);
            s->chunks[lo].data = NULL;
        }
    }
}

void shard_txn_committed(rw_shard *sh, uint64_t target, pend_chunk *pc, size_t npc,
                         rw_buf *taken)
{
    if (sh->committed_seq < target)
        sh->committed_seq = target;
    chunks_committed(sh, pc, npc);
    free(pc);
    rw_buf_free(taken);
}

void shard_take_pending(rw_shard *sh, rw_buf *taken, pend_chunk **pc, size_t *npc)
{
    *taken = sh->pending;
    wal_buf_init(&sh->pending);
    *pc = sh->pchunks;
    *npc = sh->npchunks;
    sh->pchunks = NULL;
    sh->npchunks = sh->cappchunks = 0;
}

void shard_restore_pending(rw_shard *sh, rw_buf *taken, pend_chunk *pc, size_t npc)
{
    /* taken goes first: it is older than what arrived meanwhile */
    if (wal_payload_len(&sh->pending))
        rw_buf_append(taken, sh->pending.p + WAL_HDR, wal_payload_len(&sh->pending));
    rw_buf_free(&sh->pending);
    sh->pending = *taken;
    rw_buf_init(taken, 0);
    if (npc) {
        size_t total = npc + sh->npchunks;
        pend_chunk *n = malloc((total ? total : 1) * sizeof *n);
        if (n) {
            memcpy(n, pc, npc * sizeof *n);
            if (sh->npchunks)
                memcpy(n + npc, sh->pchunks, sh->npchunks * sizeof *n);
            free(sh->pchunks);
            sh->pchunks = n;
            sh->npchunks = sh->cappchunks = total;
        } else {
            /* cannot happen in practice; the chunks stay in memory and are
             * written by the next checkpoint's full head pass only if open,
             * so log loudly */
            rw_error("shard %d: out of memory re-queueing %zu chunks", sh->idx, npc);
        }
    }
    free(pc);
}

void shard_note_failure(rw_shard *sh, uint64_t target, rw_rc rc, const rw_err *err)
{
    sh->fail_gen++;
    sh->fail_seq = target;
    sh->fail_rc = rc;
    snprintf(sh->fail_msg, sizeof sh->fail_msg, "%.200s", err && err->msg[0] ? err->msg : rw_rc_name(rc));
}

rw_rc shard_commit_locked(rw_shard *sh, rw_err *err)
{
    rw_store *st = sh->store;
    sh->db_owner = 1;
    uint64_t target = sh->pending_seq;
    if (wal_payload_len(&sh->pending) == 0 && sh->npchunks == 0 && sh->nnewser == 0) {
        if (sh->committed_seq < target)
            sh->committed_seq = target;
        shard_db_release(sh);
        return RW_OK;
    }
    rw_buf taken;
    pend_chunk *pc;
    size_t npc;
    shard_take_pending(sh, &taken, &pc, &npc);
    rw_buf rows;
    rw_buf_init(&rows, 0);
    shard_take_new_series(sh, &rows);
    pthread_mutex_unlock(&sh->mu);

    int64_t t0 = rw_mono_ns();
    uint64_t bytes = rows.len;
    size_t nrows = 0;
    rw_err lerr;
    rw_err_init(&lerr);
    rw_rc rc = rows.failed ? rw_err_set(&lerr, RW_NOMEM, "out of memory") : db_begin(sh, &lerr);
    if (rc == RW_OK)
        rc = db_put_series_rows(sh, &rows, &nrows, &lerr);
    if (rc == RW_OK && wal_payload_len(&taken)) {
        wal_seal(&taken);
        sqlite3_bind_blob(sh->st_wal_ins, 1, taken.p, (int)taken.len, SQLITE_STATIC);
        rc = db_step_done(sh, sh->st_wal_ins, "insert wal", &lerr);
        bytes += taken.len;
    }
    if (rc == RW_OK)
        rc = db_put_pending_chunks(sh, pc, npc, &bytes, &lerr);
    rc = db_end(sh, rc, &lerr);
    double secs = (double)(rw_mono_ns() - t0) / 1e9;

    pthread_mutex_lock(&sh->mu);
    if (rc == RW_OK) {
        shard_txn_committed(sh, target, pc, npc, &taken);
        rw_histogram_observe(st->m_commit_dur, secs);
        rw_histogram_observe(st->m_txn_bytes, (double)bytes);
        rw_counter_add(st->m_commits, 1);
    } else {
        shard_restore_pending(sh, &taken, pc, npc);
        shard_restore_new_series(sh, &rows);
        shard_note_failure(sh, target, rc, &lerr);
        rw_counter_add(st->m_commit_fail, 1);
        rw_warn("shard %d: commit failed, %zu bytes kept pending: %s", sh->idx,
                wal_payload_len(&sh->pending), lerr.msg);
        rw_err_set(err, rc, "shard %d: %s", sh->idx, lerr.msg);
    }
    shard_db_release(sh);
    rw_buf_free(&rows);
    return rc;
}

/* Waits (mu held) until everything up to `seq` is committed, leading a
 * commit when nobody else is. */
static rw_rc wait_durable(rw_shard *sh, uint64_t seq, rw_err *err)
{
    uint64_t fails_seen = sh->fail_gen;
    while (sh->committed_seq < seq) {
        if (sh->fail_gen != fails_seen && sh->fail_seq >= seq)
            return rw_err_set(err, sh->fail_rc, "shard %d: %s", sh->idx, sh->fail_msg);
        if (!sh->db_owner) {
            rw_rc rc = shard_commit_locked(sh, err);
            if (rc != RW_OK)
                return rc;
            continue;
        }
        pthread_cond_wait(&sh->commit_cv, &sh->mu);
    }
    return RW_OK;
}

static size_t max_pending(const rw_store *st)
{
    return st->opts.max_pending_bytes ? st->opts.max_pending_bytes : DEFAULT_MAX_PENDING;
}

/* Applies the series routed to one shard; returns the seq to wait for. */
static rw_rc shard_apply(rw_shard *sh, const rw_append_series *in, const uint32_t *idx, size_t n,
                         rw_append_result *res, uint64_t *seq, rw_err *err)
{
    rw_store *st = sh->store;
    /* WAL bytes of the samples; a new series reserves its label bytes when
     * it is created (label lengths are not computed for known series) */
    size_t need = 0, maxs = 0;
    for (size_t k = 0; k < n; k++) {
        const rw_append_series *a = &in[idx[k]];
        need += 32 + 20 * a->nsamples;
        if (a->nsamples > maxs)
            maxs = a->nsamples;
    }
    rw_sample *acc = malloc((maxs ? maxs : 1) * sizeof *acc);
    if (!acc)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    uint64_t rej[RW_REJ__COUNT] = {0};
    uint64_t written = 0;
    rw_rc rc = RW_OK;
    uint64_t series_cap = st->opts.max_series
                              ? (st->opts.max_series + (uint64_t)st->opts.nshards - 1) /
                                    (uint64_t)st->opts.nshards
                              : 0;

    int64_t bound = store_newest_bound(st);
    pthread_mutex_lock(&sh->mu);
    sh->newest_bound = bound;
    if (sh->pending.len > max_pending(st)) {
        pthread_mutex_unlock(&sh->mu);
        free(acc);
        return rw_err_set(err, RW_AGAIN, "shard %d: %zu bytes not yet durable (storage too slow "
                          "or failing); retry later", sh->idx, sh->pending.len);
    }
    /* reserve the WAL bytes first so encoding below cannot fail half way */
    if (rw_buf_reserve(&sh->pending, need) != RW_OK) {
        pthread_mutex_unlock(&sh->mu);
        free(acc);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    size_t start = sh->pending.len;
    for (size_t k = 0; k < n && rc == RW_OK; k++) {
        const rw_append_series *a = &in[idx[k]];
        series *s = shard_series_lookup(sh, a->hash, a->labels, a->nlabels);
        if (!s) {
            if (a->nsamples == 0)
                continue;
            if (series_cap && sh->nseries >= series_cap) {
                /* cardinality limit: refuse the new series, never the known ones */
                rej[RW_REJ_SERIES_LIMIT] += a->nsamples;
                if (res->on_reject)
                    for (size_t j = 0; j < a->nsamples; j++)
                        res->on_reject(res->on_reject_ctx, a, j, RW_REJ_SERIES_LIMIT);
                continue;
            }
            size_t lbytes = 16;
            for (size_t j = 0; j < a->nlabels; j++)
                lbytes += strlen(a->labels[j].name) + strlen(a->labels[j].value) + 20;
            if (rw_buf_reserve(&sh->pending, need + lbytes) != RW_OK) {
                sh->pending.failed = 0; /* nothing was written */
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
            s = shard_series_create(sh, 0, a->hash, a->labels, a->nlabels, NULL);
            if (!s) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory creating a series");
                break;
            }
            if (shard_note_new_series(sh, s->id) < 0) {
                shard_series_delete(sh, s);
                rc = rw_err_set(err, RW_NOMEM, "out of memory creating a series");
                break;
            }
            wal_put_series(&sh->pending, s);
            res->series_created++;
            rw_counter_add(st->m_series_created, 1);
        }
        size_t nacc = 0;
        int nomem = 0;
        for (size_t j = 0; j < a->nsamples; j++) {
            int r = series_append_sample(sh, s, a->samples[j].t, a->samples[j].v, 0, &nomem);
            if (nomem) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory appending a sample");
                break;
            }
            if (r == -1) {
                acc[nacc++] = a->samples[j];
                written++;
            } else if (r == -2) {
                written++;
            } else {
                rej[r]++;
                if (res->on_reject)
                    res->on_reject(res->on_reject_ctx, a, j, (rw_reject_reason)r);
            }
        }
        wal_put_samples(&sh->pending, s->id, acc, nacc);
    }
    if (sh->pending.len > start)
        sh->pending_seq++;
    *seq = sh->pending_seq;
    pthread_mutex_unlock(&sh->mu);
    free(acc);

    res->samples_written += written;
    rw_counter_add(st->m_appended, written);
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        res->rejected[r] += rej[r];
        rw_counter_add(st->m_rejected[r], rej[r]);
    }
    return rc;
}

rw_rc rw_store_append(rw_store *st, const rw_append_series *in, size_t n, rw_append_result *res,
                      rw_err *err)
{
    int ns = st->nshards;
    rw_rc rc = RW_OK;
    if (n == 0)
        return RW_OK;
    /* counting sort of the series by shard */
    uint32_t *idx = malloc(n * sizeof *idx);
    size_t *start = calloc((size_t)ns + 1, sizeof *start);
    uint64_t *seq = calloc((size_t)ns, sizeof *seq);
    if (!idx || !start || !seq) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        start[in[i].hash % (uint64_t)ns + 1]++;
    for (int k = 0; k < ns; k++)
        start[k + 1] += start[k];
    {
        size_t *fill = calloc((size_t)ns, sizeof *fill);
        if (!fill) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            int k = (int)(in[i].hash % (uint64_t)ns);
            idx[start[k] + fill[k]++] = (uint32_t)i;
        }
        free(fill);
    }
    /* refuse up front, before mutating any shard, when one is backed up */
    for (int k = 0; k < ns; k++) {
        if (start[k + 1] == start[k])
            continue;
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        size_t pend = sh->pending.len;
        if (pend > max_pending(st) && !sh->db_owner) {
            /* a backlog left by failed commits: try to drain it first, or
             * it would never shrink since nothing else is admitted */
            rw_err lerr;
            if (shard_commit_locked(sh, &lerr) == RW_OK)
                pend = sh->pending.len;
        }
        pthread_mutex_unlock(&sh->mu);
        if (pend > max_pending(st)) {
            rc = rw_err_set(err, RW_AGAIN, "shard %d: %zu bytes not yet durable (storage too "
                            "slow or failing); retry later", k, pend);
            goto out;
        }
    }
    for (int k = 0; k < ns; k++) {
        if (start[k + 1] == start[k])
            continue;
        rc = shard_apply(&st->shards[k], in, idx + start[k], start[k + 1] - start[k], res,
                         &seq[k], err);
        if (rc != RW_OK)
            goto out;
    }
    /* durability: every touched shard, even when nothing new was accepted
     * there (earlier appends' data this reply implies must be on disk) */
    for (int k = 0; k < ns; k++) {
        if (start[k + 1] == start[k])
            continue;
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        rc = wait_durable(sh, seq[k], err);
        pthread_mutex_unlock(&sh->mu);
        if (rc != RW_OK)
            goto out;
    }
out:
    free(idx);
    free(start);
    free(seq);
    return rc;
}
