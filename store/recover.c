/* recover.c - brings a shard back at open: loads the series (table
 * `series`), the metadata of persisted chunks (table `chunks`, not their
 * bytes), the head chunk snapshots of the last checkpoint (table `head`),
 * then replays the WAL rows written since through the normal append rules
 * (samples at or before a series' newest are ignored, so replay is
 * idempotent). A WAL row that fails its length/CRC check is torn or corrupt:
 * it and every later row are deleted and the event is logged; earlier data
 * is intact. store.c checkpoints the shard afterwards so the next open
 * replays nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

typedef struct replay_ctx {
    rw_shard *sh;
    uint64_t samples, ignored, unknown_refs;
    int nomem;
} replay_ctx;

static int replay_series(void *ctx, uint32_t ref, rw_label *l, size_t n)
{
    replay_ctx *rc = ctx;
    rw_shard *sh = rc->sh;
    series *s = ref < sh->cap_id ? sh->by_id[ref] : NULL;
    if (!s && ref != 0) {
        s = shard_series_create(sh, ref, rw_labels_hash(l, n), l, n, NULL);
        if (!s || shard_note_new_series(sh, ref) < 0) {
            free(l);
            rc->nomem = 1;
            return -1;
        }
    }
    free(l);
    return 0;
}

static int replay_sample(void *ctx, uint32_t ref, int64_t t, double v)
{
    replay_ctx *rc = ctx;
    rw_shard *sh = rc->sh;
    series *s = ref < sh->cap_id ? sh->by_id[ref] : NULL;
    if (!s) {
        rc->unknown_refs++;
        return 0;
    }
    int nomem = 0;
    int r = series_append_sample(sh, s, t, v, 1, &nomem);
    if (nomem) {
        rc->nomem = 1;
        return -1;
    }
    if (r == -1)
        rc->samples++;
    else
        rc->ignored++;
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
        if (id <= 0 || id >= UINT32_MAX || !b || get_uvarint(&b, end, &nl) < 0 || nl > RW_LABELS_MAX ||
            nl > (uint64_t)(end - b)) {
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

static rw_rc load_chunks(rw_shard *sh, uint64_t *n, rw_err *err)
{
    sqlite3_stmt *st;
    /* rowid order is time order within a series: chunks are inserted oldest
     * first and a new rowid is always above every existing one */
    int r = sqlite3_prepare_v2(sh->wdb,
                               "SELECT id, sid, span, substr(data,1,12), length(data) "
                               "FROM chunks ORDER BY id",
                               -1, &st, NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "load chunks", err);
    uint64_t orphans = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t sid = sqlite3_column_int64(st, 1);
        series *s = sid > 0 && sid < sh->cap_id ? sh->by_id[sid] : NULL;
        if (!s) {
            orphans++;
            continue;
        }
        const uint8_t *h = sqlite3_column_blob(st, 3);
        size_t hlen = (size_t)sqlite3_column_bytes(st, 3);
        int64_t mint;
        unsigned cnt = h ? chunk_count(h, hlen) : 0;
        if (!cnt || chunk_t0(h, hlen, &mint) < 0) {
            orphans++;
            continue;
        }
        if (s->nchunks == s->capchunks) {
            uint32_t nc = s->capchunks ? s->capchunks * 2 : 4;
            chunk_meta *m = realloc(s->chunks, nc * sizeof *m);
            if (!m) {
                sqlite3_finalize(st);
                return rw_err_set(err, RW_NOMEM, "out of memory loading chunks");
            }
            s->chunks = m;
            s->capchunks = nc;
        }
        chunk_meta *cm = &s->chunks[s->nchunks++];
        cm->rowid = id;
        cm->mint = mint;
        cm->maxt = (int64_t)((uint64_t)mint + (uint64_t)sqlite3_column_int64(st, 2));
        cm->data = NULL;
        cm->len = (uint32_t)sqlite3_column_int64(st, 4);
        cm->n = (uint16_t)cnt;
        if (!s->has_data || cm->maxt > s->newest_t) {
            s->newest_t = cm->maxt;
            s->has_data = 1;
        }
        sh->nchunks++;
        (*n)++;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_rc(sh->wdb, r, "load chunks", err);
    if (orphans)
        rw_warn("shard %d: %llu chunks of unknown series ignored", sh->idx,
                (unsigned long long)orphans);
    return RW_OK;
}

/* The newest value of series whose newest sample sits in a persisted chunk
 * (needed to tell an identical resend from a duplicate). */
static void load_newest_values(rw_shard *sh)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(sh->wdb, "SELECT data FROM chunks WHERE id=?", -1, &st, NULL) != SQLITE_OK)
        return;
    for (uint32_t i = 0; i < sh->cap_id; i++) {
        series *s = sh->by_id[i];
        if (!s || s->head.n || !s->nchunks)
            continue;
        sqlite3_bind_int64(st, 1, s->chunks[s->nchunks - 1].rowid);
        if (sqlite3_step(st) == SQLITE_ROW) {
            chunk_it it;
            const uint8_t *b = sqlite3_column_blob(st, 0);
            int64_t t;
            double v;
            if (b && chunk_it_init(&it, b, (size_t)sqlite3_column_bytes(st, 0)) > 0) {
                while (chunk_it_next(&it, &t, &v) == 1) {
                    s->newest_t = t;
                    memcpy(&s->newest_v, &v, sizeof v);
                }
            }
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static rw_rc load_heads(rw_shard *sh, uint64_t *n, rw_err *err)
{
    sqlite3_stmt *st;
    int r = sqlite3_prepare_v2(sh->wdb, "SELECT sid, data FROM head", -1, &st, NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "load heads", err);
    uint64_t bad = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sid = sqlite3_column_int64(st, 0);
        series *s = sid > 0 && sid < sh->cap_id ? sh->by_id[sid] : NULL;
        const uint8_t *b = sqlite3_column_blob(st, 1);
        chunk_it it;
        if (!s || !b || chunk_it_init(&it, b, (size_t)sqlite3_column_bytes(st, 1)) < 0) {
            bad++;
            continue;
        }
        int64_t t;
        double v;
        int k, nomem = 0;
        while ((k = chunk_it_next(&it, &t, &v)) == 1) {
            series_append_sample(sh, s, t, v, 1, &nomem);
            if (nomem) {
                sqlite3_finalize(st);
                return rw_err_set(err, RW_NOMEM, "out of memory loading heads");
            }
        }
        if (k < 0)
            bad++;
        s->head_dirty = 0;
        (*n)++;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_rc(sh->wdb, r, "load heads", err);
    if (bad)
        rw_warn("shard %d: %llu unreadable head chunks skipped", sh->idx, (unsigned long long)bad);
    return RW_OK;
}

static rw_rc replay_wal(rw_shard *sh, uint64_t *records, replay_ctx *rc, rw_err *err)
{
    sqlite3_stmt *st;
    int r = sqlite3_prepare_v2(sh->wdb, "SELECT seq, data FROM wal ORDER BY seq", -1, &st, NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "replay wal", err);
    wal_visitor v = {.ctx = rc, .series_fn = replay_series, .sample_fn = replay_sample};
    int64_t bad_seq = 0;
    uint64_t unapplied = 0;
    const char *why = NULL;
    int64_t t_start = rw_mono_ns(), t_last = t_start;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const uint8_t *b = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        /* check the whole record before applying any of it: only a record
         * whose checksum fails is torn or corrupt */
        if (!b || wal_record_check(b, len, &why) < 0) {
            if (!b)
                why = "empty record";
            bad_seq = seq;
            break;
        }
        if (wal_record_visit(b, len, &v, &why) < 0) {
            if (rc->nomem) {
                sqlite3_finalize(st);
                return rw_err_set(err, RW_NOMEM, "out of memory replaying the WAL");
            }
            /* intact but not applicable (an entry this build cannot read):
             * report it and keep going - later records hold acknowledged
             * writes too */
            unapplied++;
            rw_error("shard %d: WAL record %lld is intact but could not be applied fully (%s); "
                     "continuing with the next record",
                     sh->idx, (long long)seq, why);
        }
        (*records)++;
        int64_t now = rw_mono_ns();
        if (now - t_last > 5000000000LL) {
            t_last = now;
            rw_info("shard %d: replaying WAL: %llu records, %llu samples so far (%.0fs)", sh->idx,
                    (unsigned long long)*records, (unsigned long long)rc->samples,
                    (double)(now - t_start) / 1e9);
        }
    }
    sqlite3_finalize(st);
    if (bad_seq) {
        rw_error("shard %d: WAL record %lld is torn or corrupt (%s); truncating the WAL there "
                 "(earlier records were replayed)",
                 sh->idx, (long long)bad_seq, why);
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM wal WHERE seq >= %lld", (long long)bad_seq);
        rw_rc x = db_exec(sh->wdb, sql, err);
        if (x != RW_OK)
            return x;
    } else if (r != SQLITE_DONE) {
        return db_rc(sh->wdb, r, "replay wal", err);
    }
    return RW_OK;
}

rw_rc shard_recover(rw_shard *sh, rw_err *err)
{
    int64_t t0 = rw_mono_ns();
    uint64_t nseries = 0, nchunks = 0, nheads = 0, nrec = 0;
    replay_ctx rc = {.sh = sh};
    rw_rc r;
    pthread_mutex_lock(&sh->mu);
    sh->next_id = 1; /* 0 is never a series id */
    sh->next_sym = 1; /* nor a symbol id */
    sh->newest_bound = store_newest_bound(sh->store);
    if ((r = load_series(sh, &nseries, err)) != RW_OK || (r = load_chunks(sh, &nchunks, err)) != RW_OK)
        goto out;
    /* the retention check during head/WAL replay needs the newest time */
    for (uint32_t i = 0; i < sh->cap_id; i++)
        if (sh->by_id[i] && sh->by_id[i]->has_data && sh->by_id[i]->newest_t <= sh->newest_bound)
            store_note_newest(sh->store, sh->by_id[i]->newest_t);
    if ((r = load_heads(sh, &nheads, err)) != RW_OK)
        goto out;
    load_newest_values(sh);
    if ((r = replay_wal(sh, &nrec, &rc, err)) != RW_OK)
        goto out;
    {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(sh->wdb, "SELECT value FROM meta WHERE key='next_sid'", -1, &st,
                               NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) {
                int64_t v = sqlite3_column_int64(st, 0);
                if (v > sh->next_id && v < UINT32_MAX)
                    sh->next_id = (uint32_t)v;
            }
            sqlite3_finalize(st);
        }
    }
    rw_info("shard %d opened: %llu series, %llu persisted chunks, %llu head chunks loaded, "
            "%llu WAL records replayed (%llu samples applied, %llu already present%s) in %.3fs",
            sh->idx, (unsigned long long)nseries, (unsigned long long)nchunks,
            (unsigned long long)nheads, (unsigned long long)nrec, (unsigned long long)rc.samples,
            (unsigned long long)rc.ignored, rc.unknown_refs ? ", some for unknown series" : "",
            (double)(rw_mono_ns() - t0) / 1e9);
out:
    pthread_mutex_unlock(&sh->mu);
    if (r != RW_OK)
        rw_err_prefix(err, "shard %d recovery", sh->idx);
    return r;
}
