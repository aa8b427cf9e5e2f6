/* db.c - SQLite underneath a shard: opening the shard's file with its
 * settings (WAL journal so readers never wait for the flush writing beside
 * them, synchronous=FULL so a committed flush survives power loss before
 * the WAL segments it covers are deleted, incremental auto-vacuum), the
 * schema, the prepared statements of the write and read connections,
 * transactions and error mapping. Only the maintenance work writes here
 * (flushes, retention, metadata): acknowledged samples are made durable by
 * the store's own WAL (wal.c). See FORMAT.md "Tables". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include "core/log.h"
#include "store_int.h"

rw_rc db_rc(sqlite3 *db, int rc, const char *what, rw_err *err)
{
    int prim = rc & 0xff;
    rw_rc code;
    switch (prim) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return RW_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = RW_AGAIN; break;
    case SQLITE_NOMEM: code = RW_NOMEM; break;
    default: code = RW_IO; break;
    }
    return rw_err_set(err, code, "sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

void db_read_stats(rw_shard *sh)
{
    int cur, hi;
    if (!sh->rdb)
        return;
    /* SQLite counts in an int: taken and reset at every read, summed here */
    if (sqlite3_db_status(sh->rdb, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 1) == SQLITE_OK)
        atomic_fetch_add(&sh->rcache_hits, (uint64_t)(unsigned)cur);
    if (sqlite3_db_status(sh->rdb, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1) == SQLITE_OK)
        atomic_fetch_add(&sh->rcache_misses, (uint64_t)(unsigned)cur);
    if (sqlite3_db_status(sh->rdb, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) == SQLITE_OK)
        atomic_store(&sh->rcache_bytes, (uint64_t)(unsigned)cur);
}

rw_rc db_exec(sqlite3 *db, const char *sql, rw_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rw_rc r = db_rc(db, rc, sql, err);
        if (msg)
            rw_err_set(err, r, "sqlite: %.60s: %s", sql, msg);
        sqlite3_free(msg);
        return r;
    }
    return RW_OK;
}

rw_rc db_step_done(rw_shard *sh, sqlite3_stmt *st, const char *what, rw_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_rc(sh->wdb, rc, what, err);
    return RW_OK;
}

rw_rc db_begin(rw_shard *sh, rw_err *err)
{
    return db_exec(sh->wdb, "BEGIN IMMEDIATE", err);
}

rw_rc db_commit(rw_shard *sh, rw_err *err)
{
    rw_rc rc = db_exec(sh->wdb, "COMMIT", err);
    if (rc != RW_OK)
        db_rollback(sh);
    return rc;
}

void db_rollback(rw_shard *sh)
{
    if (!sqlite3_get_autocommit(sh->wdb))
        sqlite3_exec(sh->wdb, "ROLLBACK", NULL, NULL, NULL);
}

rw_rc db_end(rw_shard *sh, rw_rc rc, rw_err *err)
{
    if (rc == RW_OK)
        return db_commit(sh, err);
    db_rollback(sh);
    return rc;
}

uint64_t db_file_bytes(const rw_shard *sh)
{
    struct stat st;
    uint64_t n = 0;
    char p[4096];
    if (stat(sh->path, &st) == 0)
        n += (uint64_t)st.st_size;
    snprintf(p, sizeof p, "%s-wal", sh->path);
    if (stat(p, &st) == 0)
        n += (uint64_t)st.st_size;
    return n;
}

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS symbols(id INTEGER PRIMARY KEY, s TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, labels BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tscols(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS parts(id INTEGER PRIMARY KEY, sid INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS blocks(id INTEGER PRIMARY KEY, mint INTEGER NOT NULL,"
    " maxt INTEGER NOT NULL, parts_lo INTEGER NOT NULL, parts_hi INTEGER NOT NULL,"
    " ts_lo INTEGER NOT NULL, ts_hi INTEGER NOT NULL, nparts INTEGER NOT NULL,"
    " nsamples INTEGER NOT NULL, bytes INTEGER NOT NULL, idx BLOB NOT NULL);";

/* metric metadata lives in shard 0 only */
static const char *schema0 =
    "CREATE TABLE IF NOT EXISTS metadata(metric TEXT PRIMARY KEY, type TEXT NOT NULL,"
    " help TEXT NOT NULL, unit TEXT NOT NULL) WITHOUT ROWID;";

int db_meta_get(sqlite3 *db, const char *key, int64_t *v)
{
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

static rw_rc prep(rw_shard *sh, sqlite3 *db, const char *sql, sqlite3_stmt **st, rw_err *err)
{
    (void)sh;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return db_rc(db, rc, sql, err);
    return RW_OK;
}

static int table_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *q;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1,
                           &q, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return found;
}

rw_rc db_open_shard(rw_shard *sh, rw_err *err)
{
    rw_rc rc;
    int src;
    int nshards = sh->store->nshards;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if ((src = sqlite3_open_v2(sh->path, &sh->wdb, flags, NULL)) != SQLITE_OK) {
        rc = rw_err_set(err, RW_IO, "open %s: %s", sh->path,
                        sh->wdb ? sqlite3_errmsg(sh->wdb) : sqlite3_errstr(src));
        return rc;
    }
    sqlite3_busy_timeout(sh->wdb, sh->store->opts.busy_timeout_ms);
    /* auto_vacuum only takes effect before the first table is created; on an
     * existing file it is not set again (it would need a write, which fails
     * on a full disk - and a full disk must not keep the store from opening) */
    int64_t pages = 0;
    {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(sh->wdb, "PRAGMA page_count", -1, &q, NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW)
                pages = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
    }
    if ((pages == 0 && (rc = db_exec(sh->wdb, "PRAGMA auto_vacuum=INCREMENTAL", err)) != RW_OK) ||
        (rc = db_exec(sh->wdb, "PRAGMA journal_mode=WAL", err)) != RW_OK ||
        (rc = db_exec(sh->wdb, "PRAGMA synchronous=FULL", err)) != RW_OK ||
        /* SQLite's own -wal file is truncated back to this after checkpoints */
        (rc = db_exec(sh->wdb, "PRAGMA journal_size_limit=67108864", err)) != RW_OK)
        goto fail;
    int64_t v;
    int got = db_meta_get(sh->wdb, "nshards", &v);
    if (got < 0 && pages > 0) {
        rc = rw_err_set(err, RW_BADREQ, "%s is not an rwgate shard database", sh->path);
        goto fail;
    }
    if (got > 0 && v != nshards) {
        rc = rw_err_set(err, RW_BADREQ,
                        "data directory %s was created with %lld shards, cannot open it with %d "
                        "(the shard count of a data directory is fixed)",
                        sh->store->opts.dir, (long long)v, nshards);
        goto fail;
    }
    int64_t fmt = FORMAT_VERSION;
    if (got > 0 && db_meta_get(sh->wdb, "format", &fmt) != 1)
        fmt = FORMAT_VERSION;
    if (got > 0 && fmt == 3) {
        /* format 4 adds the head snapshot file and nothing else: a format-3
         * directory is upgraded by recording the new number (a rwgate that
         * knows only format 3 would then refuse it rather than ignore the
         * snapshot, which holds samples the WAL no longer has) */
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE meta SET value=%d WHERE key='format'", FORMAT_VERSION);
        if ((rc = db_exec(sh->wdb, sql, err)) != RW_OK)
            goto fail;
        rw_info("%s upgraded from store format 3 to %d", sh->path, FORMAT_VERSION);
        fmt = FORMAT_VERSION;
    }
    if (got > 0 && fmt != FORMAT_VERSION) {
        if (fmt == 2 && table_exists(sh->wdb, "chunks")) {
            rc = rw_err_set(err, RW_UNSUPPORTED,
                            "%s is in format 2 (written by an older rwgate)", sh->path);
        } else {
            rc = rw_err_set(err, RW_BADREQ,
                            "%s: unsupported format version %lld (this rwgate reads format %d)",
                            sh->path, (long long)fmt, FORMAT_VERSION);
        }
        goto fail;
    }
    if ((rc = db_exec(sh->wdb, schema, err)) != RW_OK ||
        (sh->idx == 0 && (rc = db_exec(sh->wdb, schema0, err)) != RW_OK))
        goto fail;
    if (got <= 0) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO meta(key,value) VALUES('nshards',%d),('shard',%d),"
                 "('format',%d)",
                 nshards, sh->idx, FORMAT_VERSION);
        if ((rc = db_exec(sh->wdb, sql, err)) != RW_OK)
            goto fail;
    }
    if ((rc = prep(sh, sh->wdb, "INSERT INTO parts(sid,ts,data) VALUES(?,?,?)", &sh->st_part_ins,
                   err)) ||
        (rc = prep(sh, sh->wdb, "INSERT INTO tscols(data) VALUES(?)", &sh->st_ts_ins, err)) ||
        (rc = prep(sh, sh->wdb,
                   "INSERT INTO blocks(mint,maxt,parts_lo,parts_hi,ts_lo,ts_hi,nparts,nsamples,"
                   "bytes,idx) VALUES(?,?,?,?,?,?,?,?,?,?)",
                   &sh->st_block_ins, err)) ||
        (rc = prep(sh, sh->wdb, "INSERT OR REPLACE INTO series(id,labels) VALUES(?,?)",
                   &sh->st_series_put, err)) ||
        (rc = prep(sh, sh->wdb, "DELETE FROM series WHERE id=?", &sh->st_series_del, err)) ||
        (rc = prep(sh, sh->wdb, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)",
                   &sh->st_meta_put, err)) ||
        (rc = prep(sh, sh->wdb, "INSERT OR REPLACE INTO symbols(id,s) VALUES(?,?)",
                   &sh->st_sym_put, err)) ||
        (rc = prep(sh, sh->wdb, "DELETE FROM symbols WHERE id=?", &sh->st_sym_del, err)))
        goto fail;

    rw_store *st = sh->store;
    if ((src = sqlite3_open_v2(sh->path, &sh->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               st->read_vfs_on ? st->read_vfs_name : NULL)) != SQLITE_OK) {
        rc = rw_err_set(err, RW_IO, "open %s (reader): %s", sh->path,
                        sh->rdb ? sqlite3_errmsg(sh->rdb) : sqlite3_errstr(src));
        goto fail;
    }
    sqlite3_busy_timeout(sh->rdb, sh->store->opts.busy_timeout_ms);
    if (st->read_vfs_on && (sh->rdb_fd = open(sh->path, O_RDONLY | O_CLOEXEC)) >= 0)
        db_vfs_set_fd(sh->rdb, sh->rdb_fd); /* without it: reads without read-around */
    /* the page cache: a warm query (a dashboard refreshing) finds its pages
       here instead of a system call and a copy a page. Its growth costs a
       page fault per page of fresh memory, paid by the first queries after
       a start: on a 3-day range query 32 MiB a shard made warm runs ~10 %
       faster and a cold scan of 45 MB of pages 30 % slower, 8 MiB a shard
       (the default over two shards) ~5 % and 11 %. SQLite empties it when
       the writer connection commits (a flush, retention, metadata) */
    int64_t cache_kib = st->opts.read_cache_bytes / st->nshards / 1024;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld",
             (long long)(cache_kib > 2048 ? cache_kib : 2048));
    if ((rc = db_exec(sh->rdb, "PRAGMA query_only=1", err)) != RW_OK ||
        (rc = db_exec(sh->rdb, pragma, err)) != RW_OK ||
        (rc = prep(sh, sh->rdb, "SELECT sid, ts, data FROM parts WHERE id=?", &sh->st_part_get,
                   err)) ||
        (rc = prep(sh, sh->rdb, "SELECT data FROM tscols WHERE id=?", &sh->st_ts_get, err)) ||
        (rc = prep(sh, sh->rdb, "SELECT idx FROM blocks WHERE id=?", &sh->st_idx_get, err)) ||
        (rc = prep(sh, sh->rdb, "SELECT id, sid, ts, data FROM parts WHERE id BETWEEN ? AND ?",
                   &sh->st_part_scan, err)))
        goto fail;
    sh->zd = ZSTD_createDCtx();
    if (!sh->zd) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    return RW_OK;
fail:
    rw_err_prefix(err, "shard %d", sh->idx);
    db_close_shard(sh);
    return rc;
}

void db_close_shard(rw_shard *sh)
{
    sqlite3_stmt **sts[] = {&sh->st_part_ins, &sh->st_ts_ins,    &sh->st_block_ins,
                            &sh->st_series_put, &sh->st_series_del, &sh->st_meta_put,
                            &sh->st_sym_put,  &sh->st_sym_del,   &sh->st_part_get,
                            &sh->st_ts_get,   &sh->st_idx_get,   &sh->st_part_scan};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) {
        sqlite3_finalize(*sts[i]);
        *sts[i] = NULL;
    }
    if (sh->rdb)
        sqlite3_close(sh->rdb);
    if (sh->wdb)
        sqlite3_close(sh->wdb);
    sh->rdb = sh->wdb = NULL;
    if (sh->rdb_fd >= 0)
        close(sh->rdb_fd); /* after the connections: it would drop their locks */
    sh->rdb_fd = -1;
    ZSTD_freeDCtx(sh->zd);
    sh->zd = NULL;
}
