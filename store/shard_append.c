/* shard_append.c - the write path below ingest: rw_store_append() routes each
 * series to its shard, applies the per-sample rules (out of order, the
 * out-of-order window, duplicate, identical resend, too old) under the shard
 * lock, appends accepted samples to the series' head chunk (or its
 * out-of-order buffer) and leaves WAL entries in the shard's pending chain;
 * then it waits for the store-wide group commit (wal.c) to put them on disk.
 * Only then does it return RW_OK.
 *
 * The space the entries need is reserved in the chain before anything is
 * changed, so an append either applies completely or not at all; a failed
 * commit puts the taken chains back in front without allocating, so what is
 * in memory is always either durable or still pending - and an identical
 * resend of a pending sample waits for the same commit its original needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define PBUF_MIN (256u << 10)

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
        pthread_cond_wait(&sh->db_cv, &sh->mu);
    sh->db_owner = 1;
}

void shard_db_release(rw_shard *sh)
{
    sh->db_owner = 0;
    pthread_cond_broadcast(&sh->db_cv);
}

int64_t series_mint(const series *s)
{
    int64_t m = s->pmint <= s->pmaxt ? s->pmint : INT64_MAX;
    if (s->nchunks && s->chunks[0].mint < m)
        m = s->chunks[0].mint;
    else if (!s->nchunks && s->head.n && s->head.t0 < m)
        m = s->head.t0;
    if (s->ooo && s->ooo->n && s->ooo->t[0] < m)
        m = s->ooo->t[0];
    return m;
}

int64_t series_maxt(const series *s)
{
    int64_t m = s->pmint <= s->pmaxt ? s->pmaxt : INT64_MIN;
    if ((s->nchunks || s->head.n) && s->newest_t > m)
        m = s->newest_t;
    if (s->ooo && s->ooo->n && s->ooo->t[s->ooo->n - 1] > m)
        m = s->ooo->t[s->ooo->n - 1];
    return m;
}

/* ---- pending chains ---- */

uint8_t *pchain_reserve(pchain *pc, size_t need)
{
    pbuf *t = pc->tail;
    if (t && t->cap - t->len >= need)
        return t->data + t->len;
    size_t cap = need > PBUF_MIN ? need : PBUF_MIN;
    pbuf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->len = 0;
    b->cap = cap;
    if (t)
        t->next = b;
    else
        pc->head = b;
    pc->tail = b;
    return b->data;
}

void pchain_commit(pchain *pc, size_t used)
{
    pc->tail->len += used;
    pc->bytes += used;
}

void pchain_take(pchain *from, pchain *to)
{
    *to = *from;
    /* keep an empty last buffer with room for the next appends */
    memset(from, 0, sizeof *from);
}

void pchain_restore(pchain *pc, pchain *taken)
{
    if (!taken->head)
        return;
    /* taken is older than what arrived meanwhile: it goes first */
    taken->tail->next = pc->head;
    if (!pc->head)
        pc->tail = taken->tail;
    pc->head = taken->head;
    pc->bytes += taken->bytes;
    memset(taken, 0, sizeof *taken);
}

void pchain_free(pchain *pc)
{
    for (pbuf *b = pc->head; b;) {
        pbuf *n = b->next;
        free(b);
        b = n;
    }
    memset(pc, 0, sizeof *pc);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

uint8_t *pe_put_series(uint8_t *p, const series *s)
{
    size_t len = labels_encoded_len(series_labels(s), s->nlabels);
    p[0] = PE_SERIES;
    put32(p + 1, s->id);
    put32(p + 5, (uint32_t)len);
    return labels_put(p + 9, series_labels(s), s->nlabels);
}

/* ---- series ---- */

int series_cut_head(rw_shard *sh, series *s)
{
    if (!s->head.n)
        return 0;
    if (s->nchunks == s->capchunks) {
        uint32_t nc = s->capchunks ? s->capchunks * 2 : 1;
        hchunk *n = realloc(s->chunks, nc * sizeof *n);
        if (!n)
            return -1;
        s->chunks = n;
        s->capchunks = nc;
    }
    uint32_t len = (uint32_t)chunk_enc_len(&s->head);
    /* a right-sized copy; the open buffer stays for the next chunk */
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        return -1;
    memcpy(data, s->head.b, len);
    hchunk *c = &s->chunks[s->nchunks++];
    c->mint = s->head.t0;
    c->maxt = s->head.t;
    c->data = data;
    c->len = len;
    c->n = s->head.n;
    c->seek = s->head.seek;
    sh->head_chunks++;
    sh->nheads--;
    series_head_reset(s);
    return 0;
}

static inline int64_t window_of(int64_t t)
{
    int64_t w = t / BLOCK_WINDOW_MS;
    return (t < 0 && t % BLOCK_WINDOW_MS) ? w - 1 : w;
}

int series_append_sample(rw_shard *sh, series *s, int64_t t, uint64_t bits, int replay,
                         int *nomem)
{
    rw_store *st = sh->store;
    int64_t ret = st->opts.retention_ms;
    if (ret > 0) {
        int64_t newest = atomic_load(&st->newest);
        if (newest != INT64_MIN && t < newest - ret)
            return replay ? -2 : RW_REJ_TOO_OLD;
    }
    if (s->has_data && t <= s->newest_t) {
        if (t == s->newest_t) {
            if (bits == s->newest_v || replay)
                return -2;
            return RW_REJ_DUPLICATE;
        }
        /* older than the newest: in-order entries replayed are already
         * here (in a block or the head); out-of-order ones are applied
         * unless present */
        if (replay == 1)
            return -2;
        int64_t win = st->opts.ooo_window_ms;
        if (!replay && (win <= 0 || s->newest_t - t > win))
            return RW_REJ_OUT_OF_ORDER;
        uint64_t have;
        if (series_head_find(s, t, &have))
            return have == bits || replay ? -2 : RW_REJ_DUPLICATE;
        int r = ooo_insert(s, t, bits);
        if (r < 0) {
            *nomem = 1;
            return -2;
        }
        sh->ooo_samples++;
        return -3;
    }
    if (s->head.n &&
        (s->head.n >= RW_CHUNK_MAX_SAMPLES || window_of(t) != window_of(s->head.t0))) {
        if (series_cut_head(sh, s) < 0) {
            *nomem = 1;
            return -2;
        }
    }
    if (t < sh->late_bound)
        sh->late_samples++;
    int was_empty = s->head.n == 0;
    double v;
    memcpy(&v, &bits, sizeof v);
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
    if (t <= sh->newest_bound)
        store_note_newest(st, t);
    return -1;
}

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

/* ---- append ---- */

static size_t max_pending(const rw_store *st)
{
    return (size_t)st->opts.max_pending_bytes;
}

/* Applies the series routed to one shard; *ticket gets what to wait for. */
static rw_rc shard_apply(rw_shard *sh, const rw_append_series *in, const uint32_t *idx, size_t n,
                         rw_append_result *res, uint64_t *ticket, rw_err *err)
{
    rw_store *st = sh->store;
    size_t maxs = 1;
    for (size_t k = 0; k < n; k++)
        if (in[idx[k]].nsamples > maxs)
            maxs = in[idx[k]].nsamples;
    series **sp = malloc((n ? n : 1) * sizeof *sp);
    rw_sample *oo = malloc(maxs * sizeof *oo); /* out-of-order samples of one series */
    if (!sp || !oo) {
        free(sp);
        free(oo);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    uint64_t rej[RW_REJ__COUNT] = {0};
    uint64_t written = 0, skipped = 0, created = 0, ooo = 0, gone = 0;
    rw_rc rc = RW_OK;
    uint64_t series_cap = st->opts.max_series
                              ? (st->opts.max_series + (uint64_t)st->opts.nshards - 1) /
                                    (uint64_t)st->opts.nshards
                              : 0;
    int64_t bound = store_newest_bound(st);

    pthread_mutex_lock(&sh->mu);
    sh->newest_bound = bound;
    if (sh->pend.bytes > max_pending(st)) {
        size_t pend = sh->pend.bytes;
        pthread_mutex_unlock(&sh->mu);
        free(sp);
        free(oo);
        return rw_err_set(err, RW_AGAIN, "shard %d: %zu bytes not yet durable (storage too slow "
                          "or failing); retry later", sh->idx, pend);
    }
    /* pass 1: find the series and size the entries, so the space can be
     * reserved before anything changes */
    size_t need = 1, nnew = 0;
    for (size_t k = 0; k < n; k++) {
        const rw_append_series *a = &in[idx[k]];
        if (k + 16 < n)
            shard_series_prefetch_slot(sh, in[idx[k + 16]].hash, in[idx[k + 16]].ref);
        if (k + 8 < n)
            shard_series_prefetch(sh, in[idx[k + 8]].hash, in[idx[k + 8]].ref);
        sp[k] = NULL;
        if (a->nsamples && a->ref)
            sp[k] = shard_series_lookup_ref(sh, a->hash, a->ref);
        if (a->nsamples && !sp[k] && !a->ref_only)
            sp[k] = shard_series_lookup(sh, a->hash, a->labels, a->lens, a->nlabels);
        need += 18 + 16 * a->nsamples;
        if (!sp[k] && a->nsamples && !a->ref_only) {
            need += 9 + labels_encoded_len(a->labels, a->nlabels);
            nnew++;
        }
    }
    uint8_t *p = pchain_reserve(&sh->pend, need);
    if (!p) {
        pthread_mutex_unlock(&sh->mu);
        free(sp);
        free(oo);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    uint8_t *start = p;
    for (size_t k = 0; k < n && rc == RW_OK; k++) {
        const rw_append_series *a = &in[idx[k]];
        if (!a->nsamples)
            continue;
        if (k + 4 < n && sp[k + 4] && sp[k + 4]->head.b)
            __builtin_prefetch(sp[k + 4]->head.b + (sp[k + 4]->head.nbits >> 3));
        series *s = sp[k];
        if (!s && a->ref_only) { /* its ref is gone: the caller retries with labels */
            gone++;
            if (res->gone)
                res->gone[idx[k]] = 1;
            continue;
        }
        if (!s) /* created by an earlier entry of this request (a repeated series)? */
            s = shard_series_lookup(sh, a->hash, a->labels, a->lens, a->nlabels);
        if (!s) {
            if (series_cap && sh->nseries >= series_cap) {
                /* cardinality limit: refuse the new series, never the known ones */
                rej[RW_REJ_SERIES_LIMIT] += a->nsamples;
                if (res->on_reject)
                    for (size_t j = 0; j < a->nsamples; j++)
                        res->on_reject(res->on_reject_ctx, a, j, RW_REJ_SERIES_LIMIT);
                continue;
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
            p = pe_put_series(p, s);
            created++;
        }
        if (res->refs)
            res->refs[idx[k]] = s->id;
        /* the in-order run, then the out-of-order run (its samples are
         * collected aside meanwhile), each only when not empty */
        uint8_t *q = p + 9;
        uint32_t nin = 0, nooo = 0;
        int nomem = 0;
        int skip_old = res->skip_old && res->skip_old[idx[k]];
        for (size_t j = 0; j < a->nsamples; j++) {
            uint64_t bits;
            memcpy(&bits, &a->samples[j].v, sizeof bits);
            int r = series_append_sample(sh, s, a->samples[j].t, bits, 0, &nomem);
            if (nomem) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory appending a sample");
                break;
            }
            if (r == -1) {
                memcpy(q, &a->samples[j].t, 8);
                memcpy(q + 8, &bits, 8);
                q += 16;
                nin++;
                written++;
            } else if (r == -3) {
                oo[nooo++] = a->samples[j];
                written++;
                ooo++;
            } else if (r == -2) {
                written++;
            } else if (skip_old && (r == RW_REJ_OUT_OF_ORDER || r == RW_REJ_DUPLICATE)) {
                skipped++; /* already held, from another replica (HA dedup) */
                if (res->on_skip)
                    res->on_skip(res->on_reject_ctx, a, j, (rw_reject_reason)r);
            } else {
                rej[r]++;
                if (res->on_reject)
                    res->on_reject(res->on_reject_ctx, a, j, (rw_reject_reason)r);
            }
        }
        if (nin) {
            p[0] = PE_SAMPLES;
            put32(p + 1, s->id);
            put32(p + 5, nin);
            p = q;
        }
        if (nooo) {
            p[0] = PE_OOO;
            put32(p + 1, s->id);
            put32(p + 5, nooo);
            for (uint32_t i = 0; i < nooo; i++) {
                memcpy(p + 9 + (size_t)i * 16, &oo[i].t, 8);
                memcpy(p + 9 + (size_t)i * 16 + 8, &oo[i].v, 8);
            }
            p += 9 + (size_t)nooo * 16;
        }
    }
    if (p > start)
        pchain_commit(&sh->pend, (size_t)(p - start));
    *ticket = wal_ticket(&st->wal, p > start);
    pthread_mutex_unlock(&sh->mu);
    free(sp);
    free(oo);
    (void)nnew;

    res->samples_written += written;
    res->skipped += skipped;
    res->series_created += created;
    res->ngone += gone;
    rw_counter_add(st->m_appended, written);
    rw_counter_add(st->m_series_created, created);
    rw_counter_add(st->m_ooo, ooo);
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        res->rejected[r] += rej[r];
        rw_counter_add(st->m_rejected[r], rej[r]);
    }
    return rc;
}

static rw_rc store_append(rw_store *st, const rw_append_series *in, size_t n,
                          rw_append_result *res, int wait, rw_err *err)
{
    int ns = st->nshards;
    rw_rc rc = RW_OK;
    if (n == 0)
        return RW_OK;
    if (atomic_load(&st->read_only))
        return rw_err_set(err, RW_IO, "store: writes are disabled (see the log at start-up)");
    /* counting sort of the series by shard */
    uint32_t *idx = malloc(n * sizeof *idx);
    size_t *start = calloc((size_t)ns + 1, sizeof *start);
    size_t *fill = calloc((size_t)ns, sizeof *fill);
    if (!idx || !start || !fill) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        start[in[i].hash % (uint64_t)ns + 1]++;
    for (int k = 0; k < ns; k++)
        start[k + 1] += start[k];
    for (size_t i = 0; i < n; i++) {
        int k = (int)(in[i].hash % (uint64_t)ns);
        idx[start[k] + fill[k]++] = (uint32_t)i;
    }
    /* refuse up front, before changing any shard, when one is backed up */
    for (int k = 0; k < ns; k++) {
        if (start[k + 1] == start[k])
            continue;
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        size_t pend = sh->pend.bytes;
        pthread_mutex_unlock(&sh->mu);
        if (pend > max_pending(st)) {
            /* a backlog left by failed commits: try to drain it first, or
             * it would never shrink since nothing else is admitted */
            rw_err lerr;
            rw_err_init(&lerr);
            if (wal_wait(&st->wal, wal_ticket(&st->wal, 0), &lerr) == RW_OK) {
                pthread_mutex_lock(&sh->mu);
                pend = sh->pend.bytes;
                pthread_mutex_unlock(&sh->mu);
            }
        }
        if (pend > max_pending(st)) {
            rc = rw_err_set(err, RW_AGAIN, "shard %d: %zu bytes not yet durable (storage too "
                            "slow or failing); retry later", k, pend);
            goto out;
        }
    }
    uint64_t ticket = 0;
    for (int k = 0; k < ns; k++) {
        if (start[k + 1] == start[k])
            continue;
        uint64_t t = 0;
        rc = shard_apply(&st->shards[k], in, idx + start[k], start[k + 1] - start[k], res, &t,
                         err);
        if (t > ticket)
            ticket = t;
        if (rc != RW_OK)
            goto out;
    }
    /* durability: even when nothing new was accepted, since the reply
     * implies that what the sender sent before is on disk (the rules'
     * appends wait once per group evaluation, in rw_store_sync) */
    if (wait)
        rc = wal_wait(&st->wal, ticket, err);
out:
    free(idx);
    free(start);
    free(fill);
    return rc;
}

rw_rc rw_store_append(rw_store *st, const rw_append_series *in, size_t n, rw_append_result *res,
                      rw_err *err)
{
    return store_append(st, in, n, res, 1, err);
}

rw_rc rw_store_append_nowait(rw_store *st, const rw_append_series *in, size_t n,
                             rw_append_result *res, rw_err *err)
{
    return store_append(st, in, n, res, 0, err);
}

rw_rc rw_store_sync(rw_store *st, rw_err *err)
{
    /* the WAL is store-wide: everything appended before this call is
     * covered by the current ticket */
    return wal_wait(&st->wal, wal_ticket(&st->wal, 0), err);
}
