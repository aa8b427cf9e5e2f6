/* merge.c - a series' samples can sit in several places at once: persisted
 * parts of blocks (possibly overlapping, when out-of-order samples or a
 * restart split a window), completed head chunks, the open head chunk and
 * the out-of-order buffer. This file holds the out-of-order buffer
 * (store.out_of_order_window) and the one merge every reader and the flush
 * use to turn those runs into one ascending sequence: on equal timestamps
 * the newer source wins (a run given later), so a sample that exists in a
 * block and again in memory - a replayed WAL entry, an identical resend - is
 * returned once. */
#include <stdlib.h>
#include <string.h>
#include "store_int.h"

/* ---- out-of-order buffer ---- */

static uint32_t ooo_lower(const ooo_buf *o, int64_t t)
{
    uint32_t lo = 0, hi = o->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (o->t[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ooo_insert(series *s, int64_t t, uint64_t v)
{
    ooo_buf *o = s->ooo;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o)
            return -1;
        s->ooo = o;
    }
    uint32_t i = ooo_lower(o, t);
    if (i < o->n && o->t[i] == t)
        return o->v[i] == v ? 0 : -2;
    if (o->n == o->cap) {
        uint32_t nc = o->cap ? o->cap * 2 : 8;
        int64_t *nt = realloc(o->t, nc * sizeof *nt);
        if (!nt)
            return -1;
        o->t = nt;
        uint64_t *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        o->v = nv;
        o->cap = nc;
    }
    memmove(o->t + i + 1, o->t + i, (o->n - i) * sizeof *o->t);
    memmove(o->v + i + 1, o->v + i, (o->n - i) * sizeof *o->v);
    o->t[i] = t;
    o->v[i] = v;
    o->n++;
    return 1;
}

void ooo_free(series *s)
{
    if (!s->ooo)
        return;
    free(s->ooo->t);
    free(s->ooo->v);
    free(s->ooo);
    s->ooo = NULL;
}

/* Looks t up in one encoded chunk. */
static int chunk_find(const uint8_t *b, size_t len, int64_t t, uint64_t *v)
{
    chunk_it it;
    if (chunk_it_init(&it, b, len) < 0)
        return 0;
    int64_t ts;
    double vs;
    while (chunk_it_next(&it, &ts, &vs) == 1) {
        if (ts == t) {
            memcpy(v, &vs, sizeof *v);
            return 1;
        }
        if (ts > t)
            break;
    }
    return 0;
}

int series_head_find(const series *s, int64_t t, uint64_t *v)
{
    if (s->ooo) {
        uint32_t i = ooo_lower(s->ooo, t);
        if (i < s->ooo->n && s->ooo->t[i] == t) {
            *v = s->ooo->v[i];
            return 1;
        }
    }
    for (uint32_t c = 0; c < s->nchunks; c++)
        if (t >= s->chunks[c].mint && t <= s->chunks[c].maxt)
            return chunk_find(s->chunks[c].data, s->chunks[c].len, t, v);
    if (s->head.n && t >= s->head.t0 && t <= s->head.t)
        return chunk_find(s->head.b, chunk_enc_len(&s->head), t, v);
    return 0;
}

/* ---- merging runs ---- */

typedef struct mref {
    int64_t t;
    uint32_t run, pos;
} mref;

static int mref_cmp(const void *a, const void *b)
{
    const mref *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->run < y->run ? -1 : x->run > y->run; /* newer run last */
}

/* First index of run r with t >= x. */
static size_t lower(const srun *r, int64_t x)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->t[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t runs_trim(srun *r, size_t nr, int64_t mint, int64_t maxt)
{
    size_t total = 0;
    for (size_t i = 0; i < nr; i++) {
        if (!r[i].n || r[i].t[r[i].n - 1] < mint || r[i].t[0] > maxt) {
            r[i].n = 0;
            continue;
        }
        size_t a = r[i].t[0] >= mint ? 0 : lower(&r[i], mint);
        size_t b = r[i].t[r[i].n - 1] <= maxt ? r[i].n : lower(&r[i], maxt + 1);
        r[i].t += a;
        r[i].v += a;
        r[i].n = b - a;
        total += r[i].n;
    }
    return total;
}

size_t runs_merge(const srun *r, size_t nr, int64_t *ot, double *ov, int *nomem)
{
    /* the common case: runs without overlap (every run is ascending by
     * construction), in time order or not - a compacted block is listed
     * after the blocks flushed since - copied in time order, which for
     * disjoint runs is the merge */
    size_t order[64], m = 0, total = 0;
    int disjoint = 1;
    for (size_t i = 0; i < nr; i++) {
        total += r[i].n;
        if (!r[i].n)
            continue;
        if (m == 64) {
            disjoint = 0; /* too many to order here: the general merge */
            continue;
        }
        size_t j = m++;
        while (j > 0 && r[order[j - 1]].t[0] > r[i].t[0]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t j = 1; j < m && disjoint; j++)
        disjoint = r[order[j - 1]].t[r[order[j - 1]].n - 1] < r[order[j]].t[0];
    size_t n = 0;
    if (disjoint) {
        for (size_t j = 0; j < m; j++) {
            const srun *x = &r[order[j]];
            memcpy(ot + n, x->t, x->n * sizeof *ot);
            memcpy(ov + n, x->v, x->n * sizeof *ov);
            n += x->n;
        }
        return n;
    }
    mref *mr = malloc((total ? total : 1) * sizeof *mr);
    if (!mr) {
        *nomem = 1;
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < r[i].n; j++)
            mr[k++] = (mref){r[i].t[j], (uint32_t)i, (uint32_t)j};
    qsort(mr, k, sizeof *mr, mref_cmp);
    for (size_t i = 0; i < k; i++) {
        if (i + 1 < k && mr[i + 1].t == mr[i].t)
            continue; /* a newer run has this timestamp */
        ot[n] = mr[i].t;
        ov[n] = r[mr[i].run].v[mr[i].pos];
        n++;
    }
    free(mr);
    return n;
}
