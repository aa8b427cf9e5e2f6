/* store.c - the store's lifecycle and everything that is not the append or
 * select path: rw_store_open() locks the data directory, opens every shard's
 * database, recovers every shard in parallel (one thread each: series,
 * blocks, then its part of the WAL) and starts the maintenance thread
 * (window and full flushes, retention, retrying commits);
 * rw_store_close() stops it, flushes everything in memory into blocks so the
 * WAL can go, and closes. Also metric metadata (kept in memory, stored in
 * shard 0), stats, cardinality for /api/v1/status/tsdb, and the
 * self-metrics registration and collector. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "core/cfg.h"
#include "store_int.h"

#define TICK_MS 1000
#define BACKGROUND_NICE 5
/* the closing flush's budget: with draining requests before it and freeing
 * the heads after it (about 1 s at a million series) a stop stays within
 * the 5 s a service manager is commonly given */
#define CLOSE_FLUSH_NS (2500LL * 1000 * 1000)
#define MAX_SHARDS 4096

int rw_store_nshards(const rw_store *st)
{
    return st->nshards;
}

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- metadata ---- */

static void md_entry_free(md_entry *e)
{
    free(e->metric);
    free(e->type);
    free(e->help);
    free(e->unit);
}

/* Metadata is kept in arrival order with a hash index on the metric name:
 * setting an entry is O(1) whatever the order names arrive in (a sorted
 * array took quadratic time for names arriving in reverse order), and only
 * a read sorts, into its own arena. */
static int md_find(const rw_store *st, const char *metric, size_t *pos)
{
    void *v = strmap_get(&st->md_index, metric, str_hash(metric));
    if (!v)
        return 0;
    *pos = (size_t)(uintptr_t)v - 1;
    return 1;
}

/* Sets one entry (md_mu held); returns 1 if it changed, -1 on no memory,
 * -2 when it is a new family beyond max_metadata. */
static int md_set(rw_store *st, const char *metric, const char *type, const char *help,
                  const char *unit)
{
    size_t pos;
    type = type ? type : "";
    help = help ? help : "";
    unit = unit ? unit : "";
    if (md_find(st, metric, &pos)) {
        md_entry *e = &st->md[pos];
        if (!strcmp(e->type, type) && !strcmp(e->help, help) && !strcmp(e->unit, unit))
            return 0;
        char *t = strdup(type), *h = strdup(help), *u = strdup(unit);
        if (!t || !h || !u) {
            free(t);
            free(h);
            free(u);
            return -1;
        }
        free(e->type);
        free(e->help);
        free(e->unit);
        e->type = t;
        e->help = h;
        e->unit = u;
        return 1;
    }
    if (st->opts.max_metadata > 0 && st->nmd >= (size_t)st->opts.max_metadata)
        return -2;
    if (st->nmd == st->capmd) {
        size_t nc = st->capmd ? st->capmd * 2 : 64;
        md_entry *n = realloc(st->md, nc * sizeof *n);
        if (!n)
            return -1;
        st->md = n;
        st->capmd = nc;
    }
    md_entry e = {strdup(metric), strdup(type), strdup(help), strdup(unit)};
    if (!e.metric || !e.type || !e.help || !e.unit) {
        md_entry_free(&e);
        return -1;
    }
    pos = st->nmd;
    if (strmap_put(&st->md_index, e.metric, str_hash(e.metric), (void *)(uintptr_t)(pos + 1)) < 0) {
        md_entry_free(&e);
        return -1;
    }
    st->md[pos] = e;
    st->nmd++;
    return 1;
}

static rw_rc md_load(rw_store *st, rw_err *err)
{
    rw_shard *sh = &st->shards[0];
    sqlite3_stmt *q;
    int r = sqlite3_prepare_v2(sh->wdb, "SELECT metric, type, help, unit FROM metadata", -1, &q,
                               NULL);
    if (r != SQLITE_OK)
        return db_rc(sh->wdb, r, "load metadata", err);
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(q, 0);
        if (m && md_set(st, m, (const char *)sqlite3_column_text(q, 1),
                        (const char *)sqlite3_column_text(q, 2),
                        (const char *)sqlite3_column_text(q, 3)) == -1) {
            sqlite3_finalize(q);
            return rw_err_set(err, RW_NOMEM, "out of memory loading metadata");
        }
    }
    sqlite3_finalize(q);
    return r == SQLITE_DONE ? RW_OK : db_rc(sh->wdb, r, "load metadata", err);
}

/* Whether storing (type, help, unit) for metric would change what is held
 * (md_mu held). */
static int md_differs(const rw_store *st, const rw_metadata *m)
{
    size_t pos;
    if (!md_find(st, m->metric, &pos))
        return 1;
    const md_entry *e = &st->md[pos];
    return strcmp(e->type, m->type ? m->type : "") || strcmp(e->help, m->help ? m->help : "") ||
           strcmp(e->unit, m->unit ? m->unit : "");
}

/* The rows are written first and the in-memory copy changes only once they
 * are committed: a failed transaction (disk full, busy) leaves every entry
 * as it was and answers the error, so the caller replies 503 and the sender
 * retries - nothing is acknowledged that is not on disk, and nothing held
 * before is dropped. */
rw_rc rw_store_put_metadata(rw_store *st, const rw_metadata *md, size_t n, rw_err *err)
{
    rw_rc rc = RW_OK;
    size_t *changed = malloc((n ? n : 1) * sizeof *changed);
    if (!changed)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    size_t nch = 0, over = 0, nnew = 0;
    pthread_mutex_lock(&st->md_mu);
    for (size_t i = 0; i < n; i++) {
        if (!md[i].metric || !md[i].metric[0])
            continue;
        if (!md_differs(st, &md[i]))
            continue;
        size_t pos;
        if (st->opts.max_metadata > 0 && !md_find(st, md[i].metric, &pos) &&
            st->nmd + nnew >= (size_t)st->opts.max_metadata) {
            over++; /* a new family beyond store.max_metadata */
            continue;
        }
        nnew += !md_find(st, md[i].metric, &pos);
        changed[nch++] = i;
    }
    if (nch) {
        rw_shard *sh = &st->shards[0];
        rw_err lerr;
        rw_err_init(&lerr);
        pthread_mutex_lock(&sh->mu);
        shard_db_acquire(sh);
        pthread_mutex_unlock(&sh->mu);
        sqlite3_stmt *q = NULL;
        int r = sqlite3_prepare_v2(sh->wdb,
                                   "INSERT OR REPLACE INTO metadata(metric,type,help,unit) "
                                   "VALUES(?,?,?,?)",
                                   -1, &q, NULL);
        rc = r == SQLITE_OK ? db_begin(sh, &lerr) : db_rc(sh->wdb, r, "metadata", &lerr);
        for (size_t k = 0; rc == RW_OK && k < nch; k++) {
            const rw_metadata *m = &md[changed[k]];
            sqlite3_bind_text(q, 1, m->metric, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, m->type ? m->type : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, m->help ? m->help : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, m->unit ? m->unit : "", -1, SQLITE_STATIC);
            rc = db_step_done(sh, q, "write metadata", &lerr);
        }
        if (rc == RW_OK)
            rc = db_commit(sh, &lerr);
        else if (q)
            db_rollback(sh);
        sqlite3_finalize(q);
        pthread_mutex_lock(&sh->mu);
        shard_db_release(sh);
        pthread_mutex_unlock(&sh->mu);
        if (rc != RW_OK) {
            rw_err_set(err, rc, "storing metadata: %s", lerr.msg);
        } else {
            for (size_t k = 0; k < nch && rc == RW_OK; k++) {
                const rw_metadata *m = &md[changed[k]];
                if (md_set(st, m->metric, m->type, m->help, m->unit) < 0)
                    /* on disk, not in memory: the sender's retry rewrites it */
                    rc = rw_err_set(err, RW_NOMEM, "out of memory storing metadata");
            }
        }
    }
    pthread_mutex_unlock(&st->md_mu);
    free(changed);
    if (rc == RW_OK && over)
        rc = rw_err_set(err, RW_LIMIT,
                        "metadata of %zu new metric families not stored: the store holds "
                        "store.max_metadata (%lld) families",
                        over, (long long)st->opts.max_metadata);
    return rc;
}

static int cmp_md_ptr(const void *x, const void *y)
{
    return strcmp((*(md_entry *const *)x)->metric, (*(md_entry *const *)y)->metric);
}

rw_rc rw_store_get_metadata(rw_store *st, const char *metric, size_t limit, rw_arena *a,
                            rw_metadata **out, size_t *nout, rw_err *err)
{
    rw_rc rc = RW_OK;
    *out = NULL;
    *nout = 0;
    pthread_mutex_lock(&st->md_mu);
    md_entry **sel = NULL;
    size_t n = 0;
    if (metric) {
        size_t pos;
        if (md_find(st, metric, &pos)) {
            sel = rw_arena_alloc(a, sizeof *sel);
            if (sel) {
                sel[0] = &st->md[pos];
                n = 1;
            }
        }
    } else if (st->nmd) {
        sel = rw_arena_alloc(a, st->nmd * sizeof *sel);
        if (sel) {
            for (size_t i = 0; i < st->nmd; i++)
                sel[i] = &st->md[i];
            n = st->nmd;
            qsort(sel, n, sizeof *sel, cmp_md_ptr);
        }
    }
    if (!sel && (metric ? 0 : st->nmd)) {
        rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        n = 0;
    }
    if (limit && n > limit)
        n = limit;
    rw_metadata *r = rc == RW_OK ? rw_arena_calloc(a, n ? n : 1, sizeof *r) : NULL;
    if (!r) {
        if (rc == RW_OK)
            rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    } else {
        for (size_t i = 0; i < n; i++) {
            const md_entry *e = sel[i];
            r[i].metric = rw_arena_strdup(a, e->metric);
            r[i].type = rw_arena_strdup(a, e->type);
            r[i].help = rw_arena_strdup(a, e->help);
            r[i].unit = rw_arena_strdup(a, e->unit);
            if (!r[i].metric || !r[i].type || !r[i].help || !r[i].unit) {
                rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                break;
            }
        }
        if (rc == RW_OK) {
            *out = r;
            *nout = n;
        }
    }
    pthread_mutex_unlock(&st->md_mu);
    return rc;
}

/* ---- stats and cardinality ---- */

void rw_store_get_stats(rw_store *st, rw_store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->min_time = INT64_MAX;
    out->max_time = INT64_MIN;
    for (int k = 0; k < st->nshards; k++) {
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        out->series += sh->nseries;
        out->head_chunks += sh->nheads + sh->head_chunks;
        out->persisted_chunks += sh->block_parts;
        out->samples_in_head += sh->head_samples + sh->ooo_samples;
        for (size_t i = 0; i < sh->nblocks; i++) {
            if (sh->blocks[i]->mint < out->min_time)
                out->min_time = sh->blocks[i]->mint;
            if (sh->blocks[i]->maxt > out->max_time)
                out->max_time = sh->blocks[i]->maxt;
        }
        uint32_t cap = sh->cap_id;
        pthread_mutex_unlock(&sh->mu);
        /* the heads a slice of series at a time: never one long hold */
        for (uint32_t from = 0; from < cap; from += 4096) {
            pthread_mutex_lock(&sh->mu);
            uint32_t to = from + 4096 < sh->cap_id ? from + 4096 : sh->cap_id;
            for (uint32_t i = from; i < to; i++) {
                const series *s = sh->by_id[i];
                if (!s || (!s->nchunks && !s->head.n && !s->ooo))
                    continue;
                int64_t lo = s->nchunks ? s->chunks[0].mint : s->head.n ? s->head.t0 : INT64_MAX;
                if (s->ooo && s->ooo->n && s->ooo->t[0] < lo)
                    lo = s->ooo->t[0];
                int64_t hi = series_maxt(s);
                if (lo < out->min_time)
                    out->min_time = lo;
                if (hi > out->max_time)
                    out->max_time = hi;
            }
            pthread_mutex_unlock(&sh->mu);
        }
        out->db_bytes += db_file_bytes(sh);
    }
    out->db_bytes += wal_bytes(&st->wal);
}

typedef struct counted {
    strmap m;          /* key (arena) -> uint64 count as pointer */
} counted;

static int count_add(counted *c, rw_arena *a, const char *key, uint64_t n, int *fresh)
{
    uint64_t h = str_hash(key);
    strmap_slot *s = strmap_find(&c->m, key, h);
    if (s) {
        s->val = (void *)((uintptr_t)s->val + n);
        if (fresh)
            *fresh = 0;
        return 0;
    }
    char *k = rw_arena_strdup(a, key);
    if (!k)
        return -1;
    if (fresh)
        *fresh = 1;
    return strmap_put(&c->m, k, h, (void *)(uintptr_t)n);
}

static int stat_cmp(const void *a, const void *b)
{
    const rw_stat_entry *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int top(counted *c, size_t limit, rw_arena *a, rw_stat_entry **out, size_t *nout)
{
    rw_stat_entry *all = malloc((c->m.n ? c->m.n : 1) * sizeof *all);
    if (!all)
        return -1;
    size_t k = 0;
    STRMAP_EACH(&c->m, s) {
        all[k].name = (char *)s->key;
        all[k].value = (uint64_t)(uintptr_t)s->val;
        k++;
    }
    qsort(all, k, sizeof *all, stat_cmp);
    if (limit && k > limit)
        k = limit;
    rw_stat_entry *r = rw_arena_alloc(a, (k ? k : 1) * sizeof *r);
    if (r)
        memcpy(r, all, k * sizeof *r);
    free(all);
    if (!r)
        return -1;
    *out = r;
    *nout = k;
    return 0;
}

rw_rc rw_store_cardinality_top(rw_store *st, size_t limit, rw_arena *a, rw_store_cardinality *out,
                               rw_err *err)
{
    memset(out, 0, sizeof *out);
    counted metric = {0}, lvals = {0}, pairs = {0}, mem = {0};
    int fail = 0;
    char *tmp = NULL;
    size_t tmpcap = 0;
    for (int k = 0; k < st->nshards && !fail; k++) {
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        STRMAP_EACH(&sh->postings, ns) {
            const lname *ln = ns->val;
            int is_name = strcmp(ln->name, RW_METRIC_NAME) == 0;
            STRMAP_EACH(&ln->values, vs) {
                const plist *p = vs->val;
                size_t need = strlen(ln->name) + strlen(vs->key) + 2;
                if (need > tmpcap) {
                    char *t = realloc(tmp, need * 2);
                    if (!t) {
                        fail = 1;
                        break;
                    }
                    tmp = t;
                    tmpcap = need * 2;
                }
                snprintf(tmp, tmpcap, "%s=%s", ln->name, vs->key);
                int fresh = 0;
                if (count_add(&pairs, a, tmp, p->n, &fresh) < 0)
                    fail = 1;
                if (fresh && (count_add(&lvals, a, ln->name, 1, NULL) < 0 ||
                              count_add(&mem, a, ln->name, strlen(vs->key), NULL) < 0))
                    fail = 1;
                if (is_name && count_add(&metric, a, vs->key, p->n, NULL) < 0)
                    fail = 1;
                if (fail)
                    break;
            }
            if (fail)
                break;
        }
        pthread_mutex_unlock(&sh->mu);
    }
    free(tmp);
    if (!fail && (top(&metric, limit, a, &out->by_metric, &out->n_by_metric) < 0 ||
                  top(&lvals, limit, a, &out->label_values, &out->n_label_values) < 0 ||
                  top(&pairs, limit, a, &out->by_label_pair, &out->n_by_label_pair) < 0 ||
                  top(&mem, limit, a, &out->memory_by_label, &out->n_memory_by_label) < 0))
        fail = 1;
    strmap_free(&metric.m);
    strmap_free(&lvals.m);
    strmap_free(&pairs.m);
    strmap_free(&mem.m);
    if (fail)
        return rw_err_set(err, RW_LIMIT, "out of memory computing cardinality");
    return RW_OK;
}

/* ---- self-metrics ---- */

static void collect(void *ctx, rw_buf *out)
{
    rw_store *st = ctx;
    static const struct { const char *name, *type, *help; } g[] = {
        {"rwgate_store_series", "gauge", "Series in memory."},
        {"rwgate_store_head_chunks", "gauge", "Head chunks in memory (open and completed, not yet in a block)."},
        {"rwgate_store_head_samples", "gauge", "Samples in memory not yet in a block."},
        {"rwgate_store_blocks", "gauge", "Blocks (flushed data)."},
        {"rwgate_store_block_samples", "gauge", "Samples in blocks."},
        {"rwgate_store_pending_wal_bytes", "gauge", "Bytes of WAL entries accepted but not yet committed."},
        {"rwgate_store_db_bytes", "gauge", "Size of the shard's SQLite files (database and its -wal)."},
        {"rwgate_store_index_cache_bytes", "gauge",
         "Block indexes and timestamp columns cached in memory (filled at start, newest first)."},
        {"rwgate_store_read_cache_hits_total", "counter",
         "Pages queries found in the SQLite page cache (store.read_cache_size)."},
        {"rwgate_store_read_cache_misses_total", "counter",
         "Pages queries read from the file (the kernel's page cache or the disk)."},
        {"rwgate_store_read_cache_bytes", "gauge", "Memory of the queries' SQLite page cache."},
    };
    enum { NG = sizeof g / sizeof g[0] };
    int ns = st->nshards;
    uint64_t *v = calloc((size_t)ns * NG, sizeof *v);
    if (!v)
        return;
    for (int k = 0; k < ns; k++) {
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        v[k * NG + 0] = sh->nseries;
        v[k * NG + 1] = sh->nheads + sh->head_chunks;
        v[k * NG + 2] = sh->head_samples + sh->ooo_samples;
        v[k * NG + 3] = sh->nblocks;
        v[k * NG + 4] = sh->block_samples;
        v[k * NG + 5] = sh->pend.bytes;
        pthread_mutex_unlock(&sh->mu);
        v[k * NG + 6] = db_file_bytes(sh);
        v[k * NG + 7] = cache_bytes(sh);
        v[k * NG + 8] = atomic_load(&sh->rcache_hits);
        v[k * NG + 9] = atomic_load(&sh->rcache_misses);
        v[k * NG + 10] = atomic_load(&sh->rcache_bytes);
    }
    for (int m = 0; m < NG; m++) {
        rw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", g[m].name, g[m].help, g[m].name,
                      g[m].type);
        for (int k = 0; k < ns; k++)
            rw_buf_printf(out, "%s{shard=\"%d\"} %llu\n", g[m].name, k,
                          (unsigned long long)v[k * NG + m]);
    }
    free(v);
    rw_buf_printf(out, "# HELP rwgate_store_wal_bytes Size of the live WAL segments.\n"
                       "# TYPE rwgate_store_wal_bytes gauge\nrwgate_store_wal_bytes %llu\n",
                  (unsigned long long)wal_bytes(&st->wal));
}

static void metrics_register(rw_store *st)
{
    rw_metrics *m = st->opts.metrics;
    if (!m)
        return;
    static const double bytes_buckets[] = {256,    1024,    4096,    16384,   65536,
                                           262144, 1048576, 4194304, 16777216};
    st->m_commit_dur = rw_metrics_histogram(m, "rwgate_store_wal_commit_duration_seconds", NULL,
                                            "Duration of group commits (encode, write, sync).",
                                            rw_latency_buckets, rw_latency_nbuckets);
    st->m_rec_bytes = rw_metrics_histogram(m, "rwgate_store_wal_record_bytes", NULL,
                                           "Bytes per WAL record (one per group commit).",
                                           bytes_buckets, sizeof bytes_buckets / sizeof bytes_buckets[0]);
    st->m_flush_dur = rw_metrics_histogram(m, "rwgate_store_flush_duration_seconds", NULL,
                                           "Duration of shard flushes (head data into blocks).",
                                           rw_latency_buckets, rw_latency_nbuckets);
    st->m_commits = rw_metrics_counter(m, "rwgate_store_commits_total", NULL,
                                       "Group commits written to the WAL.");
    st->m_commit_fail = rw_metrics_counter(m, "rwgate_store_commit_failures_total", NULL,
                                           "Group commits that failed.");
    st->m_wal_bytes = rw_metrics_counter(m, "rwgate_store_wal_written_bytes_total", NULL,
                                         "Bytes of WAL records written.");
    st->m_flushes = rw_metrics_counter(m, "rwgate_store_flushes_total", NULL,
                                       "Shard flushes completed.");
    st->m_flush_running = rw_metrics_gauge(m, "rwgate_store_flushes_running", NULL,
                                           "Shard flushes in progress.");
    st->m_flush_fail = rw_metrics_counter(m, "rwgate_store_flush_failures_total", NULL,
                                          "Shard flushes that failed (retried).");
    st->m_maint = rw_metrics_counter(m, "rwgate_store_maintenance_runs_total", NULL,
                                     "Maintenance passes (retention, then flushes) completed.");
    st->m_appended = rw_metrics_counter(m, "rwgate_store_samples_appended_total", NULL,
                                        "Samples accepted (including identical resends).");
    st->m_ooo = rw_metrics_counter(m, "rwgate_store_samples_out_of_order_total", NULL,
                                   "Samples accepted within the out-of-order window.");
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        char l[64];
        snprintf(l, sizeof l, "reason=\"%s\"", rw_reject_reason_str((rw_reject_reason)r));
        st->m_rejected[r] = rw_metrics_counter(m, "rwgate_store_samples_rejected_total", l,
                                               "Samples rejected, by reason.");
    }
    st->m_series_created = rw_metrics_counter(m, "rwgate_store_series_created_total", NULL,
                                              "Series created.");
    st->m_retention_blocks = rw_metrics_counter(m, "rwgate_store_retention_blocks_dropped_total",
                                                NULL, "Blocks dropped by retention.");
    st->m_retention_series = rw_metrics_counter(m, "rwgate_store_retention_series_dropped_total",
                                                NULL, "Series dropped by retention.");
    st->m_retention_running = rw_metrics_gauge(m, "rwgate_store_retention_running", NULL,
                                               "Shard retention passes in progress.");
    st->m_compactions = rw_metrics_counter(m, "rwgate_store_compactions_total", NULL,
                                           "Runs of small blocks merged into one.");
    rw_metrics_add_collector(m, collect, st);
}

/* ---- maintenance ---- */

rw_rc rw_store_maintain(rw_store *st, rw_err *err)
{
    rw_rc first = RW_OK;
    pthread_mutex_lock(&st->ckpt_mu);
    for (int k = 0; k < st->nshards; k++) {
        rw_rc rc = shard_retention(&st->shards[k], first == RW_OK ? err : NULL);
        if (rc != RW_OK && first == RW_OK)
            first = rc;
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    rw_rc rc = store_flush_due(st, 1, 0, first == RW_OK ? err : NULL);
    if (rc != RW_OK && first == RW_OK)
        first = rc;
    for (int k = 0; k < st->nshards; k++)
        while (shard_compact(&st->shards[k]))
            ;
    rw_counter_add(st->m_maint, 1);
    return first;
}

void store_kick(rw_store *st)
{
    pthread_mutex_lock(&st->maint_mu);
    st->kicked = 1;
    pthread_cond_broadcast(&st->maint_cv);
    pthread_mutex_unlock(&st->maint_mu);
}

void store_background_thread(void)
{
    /* flushes and retention yield to appends and queries: the write latency
     * during a flush stays what it is without one (Linux nice is per thread) */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BACKGROUND_NICE) < 0)
        rw_log(RW_LOG_DEBUG, "store: cannot lower the priority of a background thread: %s",
               strerror(errno));
}

static void *maint_main(void *arg)
{
    rw_store *st = arg;
    store_background_thread();
    int64_t interval = st->opts.checkpoint_interval_ms;
    int64_t last_ret = rw_now_ms();
    for (int k = 0; k < st->nshards && !store_stopping(st); k++)
        shard_warm_cache(&st->shards[k]);
    pthread_mutex_lock(&st->maint_mu);
    while (!store_stopping(st)) {
        if (!st->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += TICK_MS / 1000;
            ts.tv_nsec += (TICK_MS % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&st->maint_cv, &st->maint_mu, &ts);
        }
        st->kicked = 0;
        if (store_stopping(st))
            break;
        pthread_mutex_unlock(&st->maint_mu);
        /* retry what failed commits left pending, when no append will */
        int pending = 0;
        for (int k = 0; k < st->nshards; k++) {
            pthread_mutex_lock(&st->shards[k].mu);
            pending |= st->shards[k].pend.bytes > 0;
            pthread_mutex_unlock(&st->shards[k].mu);
        }
        if (pending) {
            rw_err lerr;
            rw_err_init(&lerr);
            wal_wait(&st->wal, wal_ticket(&st->wal, 0), &lerr);
        }
        int ran_retention = 0;
        if (rw_now_ms() - last_ret >= interval) {
            pthread_mutex_lock(&st->ckpt_mu);
            for (int k = 0; k < st->nshards; k++)
                shard_retention(&st->shards[k], NULL);
            pthread_mutex_unlock(&st->ckpt_mu);
            last_ret = rw_now_ms();
            ran_retention = 1;
        }
        store_flush_due(st, 0, 0, NULL);
        /* one run per tick at most, so a due flush never waits long */
        for (int k = 0; k < st->nshards && !store_stopping(st); k++)
            if (shard_compact(&st->shards[k]))
                break;
        if (ran_retention)
            rw_counter_add(st->m_maint, 1);
        pthread_mutex_lock(&st->maint_mu);
    }
    pthread_mutex_unlock(&st->maint_mu);
    return NULL;
}

/* ---- open / close ---- */

/* One data directory belongs to one process: an exclusive flock on
 * <dir>/lock, taken before anything is read and held (the descriptor stays
 * open) until rw_store_close; the kernel drops it when the process dies, so a
 * kill -9 leaves no stale lock. The file holds the holder's pid for the
 * message the next process prints. Returns the descriptor or -1. */
static int dir_lock(const char *dir, rw_err *err)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/lock", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rw_err_set(err, RW_IO, "store: cannot open %s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            rw_err_set(err, RW_BADREQ,
                       "data directory %s is in use by another process (pid %s holds %s); one "
                       "data directory belongs to one rwgate",
                       dir, pid[0] ? pid : "unknown", p);
        else
            rw_err_set(err, RW_IO, "store: cannot lock %s: %s", p, strerror(e));
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        rw_warn("store: cannot write the pid into %s: %s", p, strerror(errno));
    return fd;
}

static void shard_free(rw_shard *sh)
{
    db_close_shard(sh);
    shard_index_free(sh);
    pchain_free(&sh->pend);
    free(sh->newser);
    for (size_t i = 0; i < sh->nblocks; i++)
        blockd_put(sh->blocks[i]);
    free(sh->blocks);
    cache_free(sh);
    free(sh->path);
    pthread_mutex_destroy(&sh->mu);
    pthread_mutex_destroy(&sh->rd_mu);
    pthread_mutex_destroy(&sh->cache_mu);
    pthread_cond_destroy(&sh->db_cv);
}

static void store_free(rw_store *st)
{
    if (st->wal_opened)
        wal_close(&st->wal);
    if (st->shards) {
        for (int k = 0; k < st->nshards; k++)
            shard_free(&st->shards[k]);
        free(st->shards);
    }
    db_vfs_unregister(st);
    for (size_t i = 0; i < st->nmd; i++)
        md_entry_free(&st->md[i]);
    free(st->md);
    strmap_free(&st->md_index);
    free((char *)st->opts.dir);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the data directory lock */
    pthread_mutex_destroy(&st->md_mu);
    pthread_mutex_destroy(&st->maint_mu);
    pthread_mutex_destroy(&st->ckpt_mu);
    pthread_cond_destroy(&st->maint_cv);
    free(st);
}

typedef struct recover_job {
    rw_shard *sh;
    rw_rc rc;
    rw_err err;
    pthread_t th;
    int started;
} recover_job;

static void *recover_main(void *arg)
{
    recover_job *j = arg;
    rw_err_init(&j->err);
    j->rc = shard_recover(j->sh, &j->err);
    return NULL;
}

rw_store *rw_store_open(const rw_store_opts *o, rw_err *err)
{
    int64_t t0 = rw_mono_ns();
    if (!o || !o->dir || !o->dir[0]) {
        rw_err_set(err, RW_BADREQ, "store: no data directory given");
        return NULL;
    }
    int64_t nshards = o->nshards;
    if (nshards == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nshards = cpus > 0 ? cpus : 1;
    }
    if (nshards < 1 || nshards > MAX_SHARDS) {
        rw_err_set(err, RW_BADREQ, "store: shard count %lld out of range 1..%d",
                   (long long)nshards, MAX_SHARDS);
        return NULL;
    }
    if (o->retention_ms < 0) {
        rw_err_set(err, RW_BADREQ, "store: negative retention");
        return NULL;
    }
    if (mkdir_p(o->dir) < 0) {
        rw_err_set(err, RW_IO, "store: cannot create %s: %s", o->dir, strerror(errno));
        return NULL;
    }
    int lock_fd = dir_lock(o->dir, err);
    if (lock_fd < 0)
        return NULL;
    rw_store *st = calloc(1, sizeof *st);
    if (!st) {
        close(lock_fd);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    st->lock_fd = lock_fd;
    /* zero fields take the table's defaults (store_config.c), the only place
       defaults are written */
    rw_store_opts d;
    rw_cfg_defaults(&rw_store_config_table, &d);
    st->opts = *o;
    st->opts.dir = strdup(o->dir);
    if (st->opts.checkpoint_interval_ms <= 0)
        st->opts.checkpoint_interval_ms = d.checkpoint_interval_ms;
    if (st->opts.busy_timeout_ms <= 0)
        st->opts.busy_timeout_ms = d.busy_timeout_ms;
    if (st->opts.max_pending_bytes <= 0)
        st->opts.max_pending_bytes = d.max_pending_bytes;
    if (st->opts.max_metadata < 0)
        st->opts.max_metadata = d.max_metadata;
    if (st->opts.checkpoint_bytes <= 0)
        st->opts.checkpoint_bytes = d.checkpoint_bytes;
    if (st->opts.wal_segment_bytes <= 0)
        st->opts.wal_segment_bytes = d.wal_segment_bytes;
    if (st->opts.read_cache_bytes <= 0)
        st->opts.read_cache_bytes = d.read_cache_bytes;
    rw_cfg_free(&rw_store_config_table, &d);
    st->opts.nshards = nshards;
    st->nshards = (int)nshards;
    atomic_init(&st->newest, INT64_MIN);
    atomic_init(&st->stopping, 0);
    pthread_mutex_init(&st->md_mu, NULL);
    pthread_mutex_init(&st->maint_mu, NULL);
    pthread_mutex_init(&st->ckpt_mu, NULL);
    pthread_cond_init(&st->maint_cv, NULL);
    db_vfs_register(st);
    st->shards = calloc((size_t)st->nshards, sizeof *st->shards);
    if (!st->opts.dir || !st->shards) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        st->nshards = st->shards ? st->nshards : 0;
        store_free(st);
        return NULL;
    }
    for (int k = 0; k < st->nshards; k++) {
        rw_shard *sh = &st->shards[k];
        sh->store = st;
        sh->idx = k;
        sh->late_bound = INT64_MIN;
        sh->rdb_fd = -1;
        pthread_mutex_init(&sh->mu, NULL);
        pthread_mutex_init(&sh->rd_mu, NULL);
        pthread_mutex_init(&sh->cache_mu, NULL);
        pthread_cond_init(&sh->db_cv, NULL);
        size_t len = strlen(o->dir) + 32;
        sh->path = malloc(len);
        if (sh->path)
            snprintf(sh->path, len, "%s/shard-%d.db", o->dir, k);
    }
    int old_format = 0;
    for (int k = 0; k < st->nshards; k++) {
        if (!st->shards[k].path) {
            rw_err_set(err, RW_NOMEM, "out of memory");
            store_free(st);
            return NULL;
        }
        rw_rc orc = db_open_shard(&st->shards[k], err);
        if (orc == RW_UNSUPPORTED) {
            old_format = 1;
            continue;
        }
        if (orc != RW_OK) {
            store_free(st);
            return NULL;
        }
        if (k == 0) {
            /* shard 0 checked the recorded count; a data directory with more
             * shard files than asked for but no count recorded is refused
             * too, before anything else is created */
            char p[4096];
            struct stat sb;
            snprintf(p, sizeof p, "%s/shard-%d.db", o->dir, st->nshards);
            if (stat(p, &sb) == 0) {
                rw_err_set(err, RW_BADREQ,
                           "data directory %s holds %s: it was created with more than %d shards "
                           "(the shard count of a data directory is fixed)",
                           o->dir, p, st->nshards);
                store_free(st);
                return NULL;
            }
        }
    }
    if (old_format) {
        rw_err_set(err, RW_BADREQ,
                   "data directory %s is in store format 2 (written by an older rwgate); this "
                   "rwgate stores format %d and does not convert it: keep running the older "
                   "rwgate on it, or start this one on an empty data directory",
                   o->dir, FORMAT_VERSION);
        store_free(st);
        return NULL;
    }
    if (wal_open(st, err) != RW_OK) {
        st->wal_opened = 1;
        store_free(st);
        return NULL;
    }
    st->wal_opened = 1;
    recover_job *jobs = calloc((size_t)st->nshards, sizeof *jobs);
    if (!jobs) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        store_free(st);
        return NULL;
    }
    for (int k = 0; k < st->nshards; k++) {
        jobs[k].sh = &st->shards[k];
        jobs[k].started = st->nshards > 1 && pthread_create(&jobs[k].th, NULL, recover_main, &jobs[k]) == 0;
        if (!jobs[k].started)
            recover_main(&jobs[k]);
    }
    rw_rc rc = RW_OK;
    for (int k = 0; k < st->nshards; k++) {
        if (jobs[k].started)
            pthread_join(jobs[k].th, NULL);
        if (jobs[k].rc != RW_OK && rc == RW_OK) {
            rc = jobs[k].rc;
            if (err)
                *err = jobs[k].err;
        }
    }
    free(jobs);
    /* new segments are numbered past every snapshot's (the segments they
     * name may all be gone: a clean stop drops the WAL's empty tail) */
    for (int k = 0; k < st->nshards; k++)
        if (st->shards[k].ckpt_seq > st->wal.min_seq)
            st->wal.min_seq = st->shards[k].ckpt_seq;
    if (rc == RW_OK)
        rc = md_load(st, err);
    if (rc != RW_OK) {
        store_free(st);
        return NULL;
    }
    /* new records go into a new segment (never after a torn tail). When it
     * cannot be created (disk full) the store still opens and serves reads;
     * commits retry it and answer 503 until the storage recovers */
    {
        rw_err werr;
        rw_err_init(&werr);
        if (wal_start(&st->wal, &werr) != RW_OK)
            rw_warn("store: cannot start a WAL segment, writes answer 503 until the storage "
                    "recovers: %s",
                    werr.msg);
    }
    metrics_register(st);
    if (pthread_create(&st->maint, NULL, maint_main, st) == 0)
        st->maint_started = 1;
    else
        rw_warn("store: cannot start the maintenance thread; flushes and retention only run "
                "on rw_store_maintain and close");
    rw_store_stats s;
    rw_store_get_stats(st, &s);
    rw_info("store opened: %s, %d shards, %llu series, %llu parts in blocks, %llu head chunks, "
            "%llu bytes on disk in %.3fs",
            o->dir, st->nshards, (unsigned long long)s.series,
            (unsigned long long)s.persisted_chunks, (unsigned long long)s.head_chunks,
            (unsigned long long)s.db_bytes, (double)(rw_mono_ns() - t0) / 1e9);
    return st;
}

void rw_store_close(rw_store *st)
{
    if (!st)
        return;
    int64_t t0 = rw_mono_ns();
    /* a background flush or retention pass in progress ends early: the
       closing flush below has the deadline a stop must keep */
    atomic_store(&st->stopping, 1);
    if (st->maint_started) {
        pthread_mutex_lock(&st->maint_mu);
        pthread_cond_broadcast(&st->maint_cv);
        pthread_mutex_unlock(&st->maint_mu);
        pthread_join(st->maint, NULL);
    }
    rw_store_stats s;
    rw_store_get_stats(st, &s);
    /* everything in memory into blocks: then no WAL is left to replay. A stop
     * must be quick whatever memory holds (a service manager kills a slow
     * one): what does not fit in CLOSE_FLUSH_NS stays in the WAL, which the
     * next start replays */
    rw_err ferr;
    rw_err_init(&ferr);
    rw_rc frc = store_flush_due(st, 1, rw_mono_ns() + CLOSE_FLUSH_NS, &ferr);
    if (frc == RW_OK) {
        wal_drop_empty_tail(&st->wal);
        for (int k = 0; k < st->nshards; k++)
            db_exec(st->shards[k].wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
    } else {
        rw_warn("store: the final flush failed, the WAL stays and the next start replays it: %s",
                ferr.msg);
    }
    uint64_t bytes = wal_bytes(&st->wal);
    for (int k = 0; k < st->nshards; k++)
        bytes += db_file_bytes(&st->shards[k]);
    rw_store_stats left;
    rw_store_get_stats(st, &left);
    rw_info("store closed: %llu series, %llu samples in memory at the stop (%llu of them left "
            "in the WAL for the next start), %llu bytes on disk, in %.3fs",
            (unsigned long long)s.series, (unsigned long long)s.samples_in_head,
            (unsigned long long)left.samples_in_head, (unsigned long long)bytes,
            (double)(rw_mono_ns() - t0) / 1e9);
    store_free(st);
}
