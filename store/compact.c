/* compact.c - merges runs of small blocks into one, as Prometheus compacts
 * its 2-hour blocks. A flush writes one part per series per window, a few
 * hundred samples each; a query over days then reads one SQLite row, one
 * zstd frame and one index entry per series per block, and those per-part
 * costs, not the samples, make up most of a long range query. Run by the
 * maintenance thread (and rw_store_maintain), one run of one shard at a
 * time:
 *
 *   choose    consecutive blocks (list order) that each hold fewer than
 *             TARGET_PER_PART samples per part, spanning at most a tenth of
 *             the retention (a merged block is dropped whole, so it keeps
 *             data at most that much longer), together at most
 *             MAX_RUN_SAMPLES; merged once they reach TARGET_PER_PART per
 *             part, or earlier when nothing can join them any more - so a
 *             sample is rewritten about once;
 *   merge     series by series in the flush's write order (metric name,
 *             then series id: partorder.c), SLICE series per read
 *             transaction: every block's part of the series merged as every
 *             reader merges them (equal timestamps: the later block's
 *             sample), written as one part through the flush's block writer;
 *   publish   one synced transaction inserts the new block row and deletes
 *             the old ones; the new block goes last in the list. Moving data
 *             behind blocks that came after the run could change which of
 *             two samples at one timestamp a reader returns, so a run whose
 *             merged part of a series overlaps that series' part in a later
 *             block (out-of-order samples) is not merged;
 *   clean up  the old blocks' parts and timestamp columns are deleted once no
 *             reader holds the old blocks any more.
 *
 * Crash safety is the flush's: rows no block names are deleted at open, so a
 * crash before the publishing transaction leaves the old blocks, one after
 * it the new block. Flushes and checkpoints wait for a merge (ckpt_mu: the
 * new block's rows must form a contiguous rowid range); appends and queries
 * never do - a query that took the old blocks reads them whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define TARGET_PER_PART 1536
#define MAX_RUN_SAMPLES (48u << 20)
#define MAX_SPAN_MS (31LL * 86400000)
#define SLICE 512

static int small(const blockd *b)
{
    return b->nparts && b->nsamples / b->nparts < TARGET_PER_PART;
}

/* Chooses the first run to merge (mu held): [*lo, *hi] in the list. */
static int choose_run(const rw_shard *sh, int64_t max_span, size_t *lo, size_t *hi)
{
    for (size_t i = 0; i < sh->nblocks; i++) {
        const blockd *b = sh->blocks[i];
        if (!small(b) || b->id <= sh->compact_skip)
            continue;
        int64_t mint = b->mint, maxt = b->maxt;
        uint64_t samples = b->nsamples, parts = b->nparts;
        size_t j = i;
        int blocked = 0;
        while (j + 1 < sh->nblocks && samples / parts < TARGET_PER_PART) {
            const blockd *n = sh->blocks[j + 1];
            int64_t mn = n->mint < mint ? n->mint : mint, mx = n->maxt > maxt ? n->maxt : maxt;
            if (!small(n) || mx - mn > max_span || samples + n->nsamples > MAX_RUN_SAMPLES) {
                blocked = 1;
                break;
            }
            j++;
            mint = mn;
            maxt = mx;
            samples += n->nsamples;
            if (n->nparts > parts)
                parts = n->nparts;
        }
        /* the merged block has at least as many parts as its largest block */
        if (j > i && (blocked || samples / parts >= TARGET_PER_PART)) {
            *lo = i;
            *hi = j;
            return 1;
        }
        i = j;
    }
    return 0;
}

/* One merge in progress. */
typedef struct merge {
    rw_shard *sh;
    blockd **run;          /* the blocks merged, referenced */
    bidx **idx;
    size_t nrun;
    blockd **later;        /* the blocks after the run, referenced */
    bidx **lidx;
    size_t nlater;
    porder o;              /* the run's series in write order */
    /* one slice: per run block, entries [from[b], from[b + 1]) in o's order */
    size_t *from, *at;     /* [nrun + 1] */
    srun *runs;            /* [nrun] */
    const bidx_ent **e;
    tscol **ts;
    uint64_t **v;          /* into vals */
    rw_rc *res;
    size_t cap;
    uint64_t *vals;
    size_t capvals;
    rw_buf scratch;
} merge;

static void merge_free(merge *m)
{
    for (size_t i = 0; i < m->nrun; i++) {
        bidx_put(m->idx ? m->idx[i] : NULL);
        blockd_put(m->run[i]);
    }
    for (size_t i = 0; i < m->nlater; i++) {
        bidx_put(m->lidx ? m->lidx[i] : NULL);
        blockd_put(m->later[i]);
    }
    free(m->run);
    free(m->idx);
    free(m->later);
    free(m->lidx);
    porder_free(&m->o);
    free(m->from);
    free(m->at);
    free(m->runs);
    free(m->vals);
    free(m->e);
    free(m->ts);
    free(m->v);
    free(m->res);
    rw_buf_free(&m->scratch);
}

/* Whether series sid has a part in a block after the run overlapping
 * [mint, maxt]. */
static int overlaps_later(const merge *m, uint32_t sid, int64_t mint, int64_t maxt)
{
    for (size_t k = 0; k < m->nlater; k++) {
        const bidx_ent *x = bidx_find(m->lidx[k], sid);
        if (x && x->mint <= maxt && x->maxt >= mint)
            return 1;
    }
    return 0;
}

/* Grows the slice arrays to n entries and the value buffer to nv values. */
static int slice_reserve(merge *m, size_t n, size_t nv)
{
    if (n > m->cap) {
        size_t nc = n * 2;
        const bidx_ent **e = realloc(m->e, nc * sizeof *e);
        if (e)
            m->e = e;
        tscol **ts = realloc(m->ts, nc * sizeof *ts);
        if (ts)
            m->ts = ts;
        uint64_t **v = realloc(m->v, nc * sizeof *v);
        if (v)
            m->v = v;
        rw_rc *res = realloc(m->res, nc * sizeof *res);
        if (res)
            m->res = res;
        if (!e || !ts || !v || !res)
            return -1;
        m->cap = nc;
    }
    if (nv > m->capvals) {
        uint64_t *x = realloc(m->vals, nv * 2 * sizeof *x);
        if (!x)
            return -1;
        m->vals = x;
        m->capvals = nv * 2;
    }
    return 0;
}

/* The run's series in write order (m->o): the union of the run blocks'
 * series ids, with their names taken under mu a few slices at a time;
 * -1 out of memory. */
static int order_series(merge *m)
{
    rw_shard *sh = m->sh;
    size_t *at = m->at;
    for (size_t b = 0; b < m->nrun; b++)
        at[b] = 0;
    for (int more = 1; more;) {
        pthread_mutex_lock(&sh->mu);
        for (size_t cnt = 0; cnt < 8 * SLICE; cnt++) {
            uint32_t sid = UINT32_MAX;
            more = 0;
            for (size_t b = 0; b < m->nrun; b++)
                if (at[b] < m->idx[b]->n && (!more || m->idx[b]->e[at[b]].sid < sid)) {
                    sid = m->idx[b]->e[at[b]].sid;
                    more = 1;
                }
            if (!more)
                break;
            for (size_t b = 0; b < m->nrun; b++)
                if (at[b] < m->idx[b]->n && m->idx[b]->e[at[b]].sid == sid)
                    at[b]++;
            if (porder_add(&m->o, sid < sh->cap_id ? sh->by_id[sid] : NULL, sid, 0) < 0) {
                pthread_mutex_unlock(&sh->mu);
                return -1;
            }
        }
        pthread_mutex_unlock(&sh->mu);
    }
    porder_sort(&m->o);
    return 0;
}

/* Merges and writes the series m->o.k[lo, hi) (the next slice). RW_EXEC: a
 * series overlaps its part in a later block; RW_AGAIN: a part went
 * (retention). */
static rw_rc merge_slice(merge *m, flusher *f, size_t lo, size_t hi, rw_err *err)
{
    rw_shard *sh = m->sh;
    /* the entries of the slice, block by block, in write order (each
       found once; room for a part per series per block) */
    if (slice_reserve(m, m->nrun * (hi - lo), 0) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    size_t need = 0, nvals = 0;
    for (size_t b = 0; b < m->nrun; b++) {
        m->from[b] = need;
        for (size_t k = lo; k < hi; k++) {
            const bidx_ent *x = bidx_find(m->idx[b], m->o.k[k].sid);
            if (x) {
                m->e[need++] = x;
                nvals += x->n;
            }
        }
    }
    if (slice_reserve(m, need, nvals) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    nvals = 0;
    for (size_t k = 0; k < need; k++) {
        m->ts[k] = NULL;
        m->v[k] = m->vals + nvals;
        nvals += m->e[k]->n;
    }
    m->from[m->nrun] = need;
    /* one range scan per block when its rowids ascend in this order, as in
       every block written in it; else (older blocks, in series id order)
       part by part */
    pthread_mutex_lock(&sh->rd_mu);
    rw_rc rc = db_exec(sh->rdb, "BEGIN", err);
    for (size_t b = 0; b < m->nrun && rc == RW_OK; b++) {
        size_t lo_b = m->from[b], n = m->from[b + 1] - lo_b;
        int asc = 1;
        for (size_t k = lo_b + 1; k < lo_b + n && asc; k++)
            asc = m->e[k - 1]->rowid < m->e[k]->rowid;
        if (n && asc)
            rc = parts_scan(sh, m->run[b], m->e + lo_b, n, m->ts + lo_b, m->v + lo_b,
                            m->res + lo_b, &m->scratch, err);
        for (size_t k = lo_b; k < lo_b + n && !asc && rc == RW_OK; k++) {
            m->res[k] = part_read(sh, m->run[b], m->e[k], &m->ts[k], m->v[k], &m->scratch, err);
            if (m->res[k] != RW_OK && m->res[k] != RW_NOTFOUND)
                rc = m->res[k];
        }
        for (size_t k = lo_b; k < lo_b + n && rc == RW_OK; k++)
            if (m->res[k] != RW_OK)
                rc = RW_AGAIN; /* retention deleted it meanwhile */
    }
    db_exec(sh->rdb, "COMMIT", NULL);
    pthread_mutex_unlock(&sh->rd_mu);

    /* series by series, in write order: each block's part of it */
    size_t *at = m->at;
    for (size_t b = 0; b < m->nrun; b++)
        at[b] = m->from[b];
    for (size_t k = lo; k < hi && rc == RW_OK; k++) {
        uint32_t sid = m->o.k[k].sid;
        size_t nr = 0, total = 0;
        for (size_t b = 0; b < m->nrun; b++)
            if (at[b] < m->from[b + 1] && m->e[at[b]]->sid == sid) {
                size_t j = at[b]++;
                m->runs[nr++] = (srun){m->ts[j]->t, (const double *)(const void *)m->v[j],
                                       m->e[j]->n};
                total += m->e[j]->n;
            }
        if (flusher_reserve(f, total + 1) < 0) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        }
        int nomem = 0;
        size_t n = runs_merge(m->runs, nr, f->t, f->v, &nomem);
        if (nomem) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        }
        if (n && overlaps_later(m, sid, f->t[0], f->t[n - 1])) {
            rc = RW_EXEC;
            break;
        }
        rc = flusher_part(f, sid, n, err);
    }
    for (size_t k = 0; k < need; k++)
        tscol_put(m->ts[k]);
    return rc;
}

/* Merges one run of the shard, if one is due (ckpt_mu held). RW_OK with
 * *merged set when it did; on RW_OK the caller cleans up after m. */
static rw_rc compact_one(rw_shard *sh, merge *m, int *merged, rw_err *err)
{
    rw_store *st = sh->store;
    int64_t t0 = rw_mono_ns();
    int64_t ret = st->opts.retention_ms;
    int64_t max_span = ret > 0 ? ret / 10 : MAX_SPAN_MS;
    *merged = 0;
    size_t lo, hi;
    pthread_mutex_lock(&sh->mu);
    int found = choose_run(sh, max_span, &lo, &hi);
    if (found) {
        m->run = calloc(hi - lo + 1, sizeof *m->run);
        m->later = calloc(sh->nblocks - hi, sizeof *m->later);
        if (m->run && m->later) {
            m->nrun = hi - lo + 1;
            m->nlater = sh->nblocks - hi - 1;
            for (size_t i = 0; i < m->nrun; i++) {
                m->run[i] = sh->blocks[lo + i];
                atomic_fetch_add(&m->run[i]->refs, 1);
            }
            for (size_t i = 0; i < m->nlater; i++) {
                m->later[i] = sh->blocks[hi + 1 + i];
                atomic_fetch_add(&m->later[i]->refs, 1);
            }
        }
    }
    pthread_mutex_unlock(&sh->mu);
    if (!found)
        return RW_OK;
    if (!m->nrun)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    m->idx = calloc(m->nrun, sizeof *m->idx);
    m->lidx = calloc(m->nlater + 1, sizeof *m->lidx);
    m->from = calloc(m->nrun + 1, sizeof *m->from);
    m->at = calloc(m->nrun + 1, sizeof *m->at);
    m->runs = calloc(m->nrun, sizeof *m->runs);
    if (!m->idx || !m->lidx || !m->from || !m->at || !m->runs)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t i = 0; i < m->nrun; i++)
        if (!(m->idx[i] = block_index(sh, m->run[i], err)))
            return err && err->code ? err->code : RW_INTERNAL;
    for (size_t i = 0; i < m->nlater; i++)
        if (!(m->lidx[i] = block_index(sh, m->later[i], err)))
            return err && err->code ? err->code : RW_INTERNAL;

    if (order_series(m) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");

    flusher f;
    rw_rc rc = flusher_init(&f, sh) == 0 ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t lo = 0; rc == RW_OK && lo < m->o.n; lo += SLICE)
        rc = store_stopping(st) ? RW_CANCELED
                                : merge_slice(m, &f, lo, lo + SLICE < m->o.n ? lo + SLICE : m->o.n,
                                              err);
    if (rc == RW_OK && !f.nents)
        rc = RW_AGAIN; /* nothing read: leave the blocks as they are */
    if (rc == RW_OK)
        rc = flusher_index(&f, err);
    if (rc == RW_OK && f.in_txn)
        rc = flusher_txn_end(&f, RW_OK, err);
    int64_t id = 0;
    if (rc == RW_OK)
        rc = flusher_txn_begin_sync(&f, 1, err);
    if (rc == RW_OK)
        rc = flusher_block_row(&f, &id, err);
    for (size_t i = 0; i < m->nrun && rc == RW_OK; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM blocks WHERE id=%lld", (long long)m->run[i]->id);
        rc = db_exec(sh->wdb, sql, err);
    }
    rc = flusher_txn_end(&f, rc, err);
    blockd *nb = NULL;
    if (rc == RW_OK && !(nb = flusher_blockd(&f, id))) {
        /* on disk but not listed: the old blocks stay listed, their rows
           stay, and the next open lists the new block instead */
        flusher_free(&f);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    if (rc != RW_OK) {
        flusher_undo(&f);
        if (rc == RW_EXEC) {
            /* out-of-order data in a later block: not this run again */
            sh->compact_skip = m->run[m->nrun - 1]->id;
            rw_log(RW_LOG_DEBUG, "shard %d: blocks %lld..%lld not compacted: a series has "
                   "samples within their range in a later block", sh->idx,
                   (long long)m->run[0]->id, (long long)m->run[m->nrun - 1]->id);
        }
        flusher_free(&f);
        /* a later block, retention or the stop: not a failure */
        return rc == RW_EXEC || rc == RW_AGAIN || rc == RW_CANCELED ? RW_OK : rc;
    }
    pthread_mutex_lock(&sh->mu);
    size_t w = 0;
    for (size_t i = 0; i < sh->nblocks; i++) {
        blockd *b = sh->blocks[i];
        int gone = 0;
        for (size_t k = 0; k < m->nrun && !gone; k++)
            gone = b == m->run[k];
        if (!gone) {
            sh->blocks[w++] = b;
            continue;
        }
        b->dead = 1;
        sh->block_bytes -= b->bytes;
        sh->block_samples -= b->nsamples;
        sh->block_parts -= b->nparts;
        blockd_put(b); /* the list's reference; the merge's stays */
    }
    sh->nblocks = w;
    shard_blocks_push(sh, nb); /* cannot fail: the list just shrank */
    pthread_mutex_unlock(&sh->mu);
    *merged = 1;
    rw_counter_add(st->m_compactions, 1);
    rw_log(RW_LOG_INFO, "shard %d compacted %zu blocks into one: %zu parts, %llu samples, "
           "%llu bytes in %.3fs", sh->idx, m->nrun, f.nents, (unsigned long long)f.nsamples,
           (unsigned long long)f.bytes, (double)(rw_mono_ns() - t0) / 1e9);
    flusher_free(&f);
    return RW_OK;
}

/* Deletes the rows of the merged blocks once no reader holds them. When the
 * store closes first, they stay: the next open deletes rows no block names. */
static void cleanup(rw_shard *sh, merge *m)
{
    for (size_t i = 0; i < m->nrun; i++) {
        blockd *b = m->run[i];
        cache_drop_block(sh, b);
        while (atomic_load(&b->refs) > 1) {
            if (store_stopping(sh->store))
                return;
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (shard_delete_rows(sh, "parts", b->parts_lo, b->parts_hi, NULL) != RW_OK ||
            shard_delete_rows(sh, "tscols", b->ts_lo, b->ts_hi, NULL) != RW_OK)
            return;
    }
}

int shard_compact(rw_shard *sh)
{
    rw_store *st = sh->store;
    merge m;
    memset(&m, 0, sizeof m);
    m.sh = sh;
    rw_buf_init(&m.scratch, 0);
    porder_init(&m.o);
    rw_err err;
    rw_err_init(&err);
    int merged = 0;
    pthread_mutex_lock(&st->ckpt_mu);
    rw_rc rc = compact_one(sh, &m, &merged, &err);
    pthread_mutex_unlock(&st->ckpt_mu);
    if (rc != RW_OK)
        rw_warn("shard %d: compaction failed (the blocks stay as they are): %s", sh->idx,
                err.msg);
    if (merged)
        cleanup(sh, &m);
    merge_free(&m);
    return merged;
}
