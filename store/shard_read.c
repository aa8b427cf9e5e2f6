/* shard_read.c - the read path: rw_store_select(), rw_store_read_samples()
 * (samples of series selected earlier, by ref, a batch at a time),
 * rw_store_label_names() and rw_store_label_values(). Under each shard's
 * lock it resolves matchers through the postings (exact lookups for =, a
 * scan of one label's values for regexes and !=), filters by the matchers
 * that also match the empty string (regexes are matched beforehand, outside
 * the lock, see "regex matchers" below, so a slow pattern never stalls the
 * shard's writers; the query's deadline is checked while they run), and
 * copies what it needs from memory - labels, head chunks, out-of-order
 * samples - into the caller's arena, with a reference on every block
 * overlapping the range. Then, without the shard lock, it reads the series'
 * parts of those blocks through the shard's read connection (SQLite's WAL
 * mode lets it run beside a flush) and merges everything per series
 * (merge.c: ascending, each timestamp once, the newer source winning).
 * Results of all shards are sorted by label set. */
#include <stdlib.h>
#include <string.h>
#include "core/timeutil.h"
#include "store_int.h"

/* sorted id set */
typedef struct idset {
    uint32_t *ids;
    size_t n;
    int owned;
} idset;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- regex matchers, outside the shard lock ----
 *
 * A regex runs over every value of its label, and PCRE2's limits bound each
 * match, not their number: a slow pattern over many values takes seconds,
 * and the shard lock is what the shard's writers wait on. So before a shard
 * is locked for selection, the values of each regex matcher's label are
 * copied under a short lock and matched without it, checking the deadline.
 * What is kept is what selection needs: for a matcher that does not match
 * "" the values that satisfy it (their postings are the candidates), for
 * one that does the values that do not (their postings are taken out).
 * Series ids only grow: a series with an id at or past the one recorded
 * when the values were copied is newer than the copy, and is matched under
 * the lock - a handful at most. A regex that cannot decide (match limit)
 * fails the selection: it is neither a match nor a non-match. */

typedef struct re_vals {
    int used;      /* the matcher is a regex */
    char **v;      /* values that satisfy it (it does not match ""), or that do not */
    size_t n;
} re_vals;

typedef struct sel_ctx {
    const rw_matcher *ms;
    size_t nms;
    re_vals *rv;         /* parallel to ms; NULL when no matcher is a regex */
    uint32_t snap_id;    /* series with ids below it existed when values were copied */
    rw_arena *scratch;   /* the copied values */
    int64_t deadline_ns; /* 0 = none */
    rw_err *err;
} sel_ctx;

static rw_rc deadline_check(int64_t deadline_ns, rw_err *err)
{
    if (deadline_ns && rw_mono_ns() > deadline_ns)
        return rw_err_set(err, RW_TIMEOUT, "query timed out in series selection");
    return RW_OK;
}

/* Regex errors are the query's execution errors (422), not a sample limit. */
static rw_rc regex_failed(rw_err *err)
{
    if (err)
        err->code = RW_EXEC;
    return RW_EXEC;
}

/* Matcher i on a value under the lock (not a regex, or a series newer than
 * the copy): 1 / 0, or -1 with c->err set. */
static int ctx_match(sel_ctx *c, size_t i, const char *value)
{
    int r = rw_matcher_match(&c->ms[i], value, c->err);
    if (r < 0)
        regex_failed(c->err);
    return r;
}

static void sel_ctx_free(sel_ctx *c)
{
    free(c->rv);
    rw_arena_free(c->scratch);
    c->rv = NULL;
    c->scratch = NULL;
}

/* Copies the values of `name` in one shard (short lock); records the next
 * series id the first time. */
static rw_rc copy_values(rw_shard *sh, sel_ctx *c, const char *name, char ***out, size_t *n,
                         rw_err *err)
{
    rw_rc rc = RW_OK;
    rw_arena *a = c->scratch;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&sh->mu);
    if (!c->snap_id)
        c->snap_id = sh->next_id ? sh->next_id : 1;
    else if (sh->next_id < c->snap_id)
        c->snap_id = sh->next_id;
    const lname *ln = postings_name(sh, name);
    if (ln && ln->values.n) {
        char **v = rw_arena_alloc(a, ln->values.n * sizeof *v);
        if (!v) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
        } else {
            size_t k = 0;
            STRMAP_EACH(&ln->values, sl) {
                if (!(v[k] = rw_arena_strdup(a, sl->key))) {
                    rc = rw_err_set(err, RW_NOMEM, "out of memory");
                    break;
                }
                k++;
            }
            *out = v;
            *n = k;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* Matches every regex matcher against its label's values in shard sh,
 * without holding its lock (see above). */
static rw_rc sel_ctx_init(sel_ctx *c, rw_shard *sh, const rw_matcher *ms, size_t nms,
                          int64_t deadline_ns, rw_err *err)
{
    memset(c, 0, sizeof *c);
    c->ms = ms;
    c->nms = nms;
    c->deadline_ns = deadline_ns;
    c->err = err;
    rw_rc rc = deadline_check(deadline_ns, err);
    if (rc != RW_OK)
        return rc;
    int any = 0;
    for (size_t i = 0; i < nms; i++)
        any |= rw_matcher_is_regex(&ms[i]);
    if (!any)
        return RW_OK;
    if (!(c->rv = calloc(nms, sizeof *c->rv)) || !(c->scratch = rw_arena_new(0, 0))) {
        sel_ctx_free(c);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nms && rc == RW_OK; i++) {
        if (!rw_matcher_is_regex(&ms[i]))
            continue;
        re_vals *rv = &c->rv[i];
        rv->used = 1;
        /* keep what satisfies a matcher that does not match "" (candidates),
           what does not satisfy one that does (exclusions) */
        int want = !rw_matcher_matches_empty(&ms[i]);
        char **vals;
        size_t n;
        if ((rc = copy_values(sh, c, ms[i].name, &vals, &n, err)) != RW_OK)
            break;
        rv->v = vals; /* filtered in place */
        for (size_t k = 0; k < n; k++) {
            if (k % 64 == 0 && (rc = deadline_check(deadline_ns, err)) != RW_OK)
                break;
            int r = rw_matcher_match(&ms[i], vals[k], err);
            if (r < 0) {
                rc = regex_failed(err);
                break;
            }
            if (r == want)
                vals[rv->n++] = vals[k];
        }
    }
    if (rc != RW_OK)
        sel_ctx_free(c);
    return rc;
}

static rw_rc idset_from_values(const rw_shard *sh, const char *name, const re_vals *rv, idset *out,
                               rw_err *err);

/* ids of series whose label `m->name` has a value matching ms[mi] (which
 * does not match ""); mu held. */
static rw_rc matcher_ids(const rw_shard *sh, sel_ctx *c, size_t mi, idset *out)
{
    const rw_matcher *m = &c->ms[mi];
    out->ids = NULL;
    out->n = 0;
    out->owned = 0;
    if (m->op == RW_MATCH_EQ) {
        const plist *p = postings_get(sh, m->name, m->value);
        if (p) {
            out->ids = p->ids;
            out->n = p->n;
        }
        return RW_OK;
    }
    if (c->rv && c->rv[mi].used)
        /* the values matched outside the lock; series newer than the copy
           are left out: the selection is as of the copy */
        return idset_from_values(sh, m->name, &c->rv[mi], out, c->err);
    const lname *ln = postings_name(sh, m->name);
    if (!ln)
        return RW_OK;
    size_t total = 0, nmatch = 0;
    const plist *one = NULL;
    STRMAP_EACH(&ln->values, s) {
        int r = ctx_match(c, mi, s->key);
        if (r < 0)
            return RW_EXEC;
        if (r) {
            const plist *p = s->val;
            total += p->n;
            nmatch++;
            one = p;
        }
    }
    if (nmatch == 1) {
        out->ids = one->ids;
        out->n = one->n;
        return RW_OK;
    }
    if (!total)
        return RW_OK;
    uint32_t *ids = malloc(total * sizeof *ids);
    if (!ids)
        return rw_err_set(c->err, RW_NOMEM, "out of memory");
    size_t k = 0;
    STRMAP_EACH(&ln->values, s) {
        /* not a regex: cheap to decide again */
        if (ctx_match(c, mi, s->key) == 1) {
            const plist *p = s->val;
            memcpy(ids + k, p->ids, p->n * sizeof *ids);
            k += p->n;
        }
    }
    /* a series has one value per name, so the union has no duplicates */
    qsort(ids, k, sizeof *ids, cmp_u32);
    out->ids = ids;
    out->n = k;
    out->owned = 1;
    return RW_OK;
}

/* The union of the postings of `name` = each of rv's values (mu held). */
static rw_rc idset_from_values(const rw_shard *sh, const char *name, const re_vals *rv, idset *out,
                               rw_err *err)
{
    out->ids = NULL;
    out->n = 0;
    out->owned = 0;
    const lname *ln = postings_name(sh, name);
    if (!ln || !rv->n)
        return RW_OK;
    size_t total = 0, nfound = 0;
    const plist *one = NULL;
    for (size_t k = 0; k < rv->n; k++) {
        const plist *p = strmap_get(&ln->values, rv->v[k], str_hash(rv->v[k]));
        if (p && p->n) {
            total += p->n;
            nfound++;
            one = p;
        }
    }
    if (nfound == 1) {
        out->ids = one->ids;
        out->n = one->n;
        return RW_OK;
    }
    if (!total)
        return RW_OK;
    uint32_t *ids = malloc(total * sizeof *ids);
    if (!ids)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t k = 0; k < rv->n; k++) {
        const plist *p = strmap_get(&ln->values, rv->v[k], str_hash(rv->v[k]));
        if (p && p->n) {
            memcpy(ids + n, p->ids, p->n * sizeof *ids);
            n += p->n;
        }
    }
    qsort(ids, n, sizeof *ids, cmp_u32);
    out->ids = ids;
    out->n = n;
    out->owned = 1;
    return RW_OK;
}

static void idset_free(idset *s)
{
    if (s->owned)
        free(s->ids);
    s->ids = NULL;
    s->n = 0;
}


/* Candidate series of one shard (mu held): a malloc'd array of series
 * pointers, valid while mu is held. With no positive matcher, all series. */
static rw_rc shard_candidates(rw_shard *sh, sel_ctx *c, series ***out, size_t *nout)
{
    const rw_matcher *ms = c->ms;
    size_t nms = c->nms;
    idset acc = {0};
    int have = 0;
    rw_rc rc;
    for (size_t i = 0; i < nms; i++) {
        if (rw_matcher_matches_empty(&ms[i]))
            continue;
        idset cur;
        if ((rc = matcher_ids(sh, c, i, &cur)) != RW_OK) {
            idset_free(&acc);
            return rc;
        }
        if (!have) {
            acc = cur;
            have = 1;
        } else {
            /* intersect into a new owned array */
            size_t cap = acc.n < cur.n ? acc.n : cur.n;
            uint32_t *r = malloc((cap ? cap : 1) * sizeof *r);
            if (!r) {
                idset_free(&acc);
                idset_free(&cur);
                return rw_err_set(c->err, RW_NOMEM, "out of memory");
            }
            size_t a = 0, b = 0, k = 0;
            while (a < acc.n && b < cur.n) {
                if (acc.ids[a] < cur.ids[b])
                    a++;
                else if (acc.ids[a] > cur.ids[b])
                    b++;
                else {
                    r[k++] = acc.ids[a];
                    a++;
                    b++;
                }
            }
            idset_free(&acc);
            idset_free(&cur);
            acc.ids = r;
            acc.n = k;
            acc.owned = 1;
        }
        if (acc.n == 0)
            break;
    }
    size_t cap = have ? acc.n : sh->nseries;
    series **res = malloc((cap ? cap : 1) * sizeof *res);
    if (!res) {
        idset_free(&acc);
        return rw_err_set(c->err, RW_NOMEM, "out of memory");
    }
    size_t k = 0;
    if (have) {
        for (size_t i = 0; i < acc.n; i++)
            if (acc.ids[i] < sh->cap_id && sh->by_id[acc.ids[i]])
                res[k++] = sh->by_id[acc.ids[i]];
    } else {
        for (uint32_t i = 0; i < sh->cap_id && k < cap; i++)
            if (sh->by_id[i])
                res[k++] = sh->by_id[i];
    }
    idset_free(&acc);
    /* filter by the matchers that match "" (absent label = ""); a regex one
       by the postings of the values that fail it, matched outside the lock */
    idset *excl = NULL;
    size_t *pos = NULL; /* res is in ascending id order: one cursor per set */
    for (size_t j = 0; j < nms; j++) {
        if (!c->rv || !c->rv[j].used || !rw_matcher_matches_empty(&ms[j]))
            continue;
        if (!excl && (!(excl = calloc(nms, sizeof *excl)) || !(pos = calloc(nms, sizeof *pos)))) {
            free(excl);
            free(pos);
            free(res);
            return rw_err_set(c->err, RW_NOMEM, "out of memory");
        }
        if ((rc = idset_from_values(sh, ms[j].name, &c->rv[j], &excl[j], c->err)) != RW_OK)
            break;
    }
    size_t w = 0;
    for (size_t i = 0; i < k && rc == RW_OK; i++) {
        series *s = res[i];
        int ok = 1;
        for (size_t j = 0; j < nms && ok == 1; j++) {
            if (!rw_matcher_matches_empty(&ms[j]))
                continue;
            if (excl && c->rv[j].used && s->id < c->snap_id) {
                const idset *x = &excl[j];
                while (pos[j] < x->n && x->ids[pos[j]] < s->id)
                    pos[j]++;
                ok = !(pos[j] < x->n && x->ids[pos[j]] == s->id);
            } else {
                ok = ctx_match(c, j, rw_labels_get(series_labels(s), s->nlabels, ms[j].name));
            }
        }
        if (ok < 0)
            rc = RW_EXEC;
        else if (ok)
            res[w++] = s;
    }
    if (excl) {
        for (size_t j = 0; j < nms; j++)
            idset_free(&excl[j]);
        free(excl);
        free(pos);
    }
    if (rc != RW_OK) {
        free(res);
        return rc;
    }
    *out = res;
    *nout = w;
    return RW_OK;
}

static int overlaps(const series *s, int64_t mint, int64_t maxt)
{
    return series_mint(s) <= maxt && series_maxt(s) >= mint;
}

static rw_rc check_matchers(const rw_matcher *ms, size_t nms, rw_err *err)
{
    for (size_t i = 0; i < nms; i++)
        if (!rw_matcher_matches_empty(&ms[i]))
            return RW_OK;
    return rw_err_set(err, RW_BADREQ, "match[] must contain at least one non-empty matcher");
}

/* ---- select ---- */

/* An in-memory chunk copied for decoding. */
typedef struct piece {
    const uint8_t *data;
    uint32_t len;
    uint16_t n;
    uint16_t seek;        /* its restart's byte offset, 0 = none */
} piece;

typedef struct sel_item {
    rw_label *labels;
    size_t nlabels;
    const char *key;      /* the label strings, contiguous (copy_labels) */
    size_t keylen;
    int shard;            /* -1: not found (rw_store_read_samples) */
    uint32_t sid;         /* series id, for the ref */
    piece *pieces;        /* head chunks in range, oldest first */
    size_t npieces;
    const int64_t *ooo_t; /* out-of-order samples in range (arena copy) */
    const uint64_t *ooo_v;
    size_t nooo;
    size_t maxn;          /* samples in memory pieces */
    int blocks;           /* its parts in blocks may overlap the range */
    int has_last;         /* RW_SELECT_LAST answered from the series' newest
                             sample: last_t/last_v, nothing to decode */
    int64_t last_t;
    double last_v;
} sel_item;

/* Copies the labels of s into the arena: the array, then every string in one
 * block "name\0value\0name\0value\0...". That block (key, keylen) sorts
 * byte-wise exactly as rw_labels_cmp orders label sets (a NUL ends a string
 * before any other byte, and a shorter set that is a prefix ends first), so
 * the merge of all shards sorts with one memcmp per comparison. */
static rw_label *copy_labels(rw_arena *a, const series *s, const char **key, size_t *keylen)
{
    rw_label *l = rw_arena_alloc(a, (s->nlabels ? s->nlabels : 1) * sizeof *l);
    if (!l)
        return NULL;
    size_t len[2 * 64], *lens = len, total = 0;
    if (s->nlabels > 64 && !(lens = rw_arena_alloc(a, 2 * s->nlabels * sizeof *lens)))
        return NULL;
    for (uint32_t i = 0; i < s->nlabels; i++) {
        lens[2 * i] = strlen(series_labels(s)[i].name) + 1;
        lens[2 * i + 1] = strlen(series_labels(s)[i].value) + 1;
        total += lens[2 * i] + lens[2 * i + 1];
    }
    char *p = rw_arena_alloc(a, total ? total : 1);
    if (!p)
        return NULL;
    *key = p;
    *keylen = total;
    for (uint32_t i = 0; i < s->nlabels; i++) {
        memcpy(p, series_labels(s)[i].name, lens[2 * i]);
        l[i].name = p;
        p += lens[2 * i];
        memcpy(p, series_labels(s)[i].value, lens[2 * i + 1]);
        l[i].value = p;
        p += lens[2 * i + 1];
    }
    return l;
}

static int item_cmp(const void *a, const void *b)
{
    const sel_item *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static rw_rc add_piece(sel_item *it, const uint8_t *b, size_t len, uint16_t n, uint16_t seek,
                       rw_arena *a, rw_err *err)
{
    uint8_t *d = rw_arena_alloc(a, len ? len : 1);
    if (!d)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    memcpy(d, b, len);
    piece *p = &it->pieces[it->npieces++];
    p->data = d;
    p->len = (uint32_t)len;
    p->n = n;
    p->seek = seek;
    it->maxn += n;
    return RW_OK;
}

/* Gathers what decoding the samples of s in [mint, maxt] needs from memory
 * (mu held): copies of the head chunks and out-of-order samples in range,
 * and whether its blocks must be read. With RW_SELECT_LAST, when the
 * series' newest sample is in range that is the answer. */
static rw_rc collect(const series *s, int64_t mint, int64_t maxt, int flags, rw_arena *a,
                     sel_item *it, rw_err *err)
{
    if ((flags & RW_SELECT_LAST) && s->has_data && s->newest_t >= mint && s->newest_t <= maxt) {
        /* newest_t/newest_v are exact (appends, replay, recovery keep them)
         * and out-of-order samples are always older */
        it->has_last = 1;
        it->last_t = s->newest_t;
        memcpy(&it->last_v, &s->newest_v, sizeof it->last_v);
        it->maxn = 1;
        return RW_OK;
    }
    it->pieces = rw_arena_alloc(a, (s->nchunks + 1) * sizeof *it->pieces);
    if (!it->pieces)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    for (uint32_t c = 0; c < s->nchunks; c++) {
        const hchunk *h = &s->chunks[c];
        if (h->mint > maxt || h->maxt < mint)
            continue;
        if (add_piece(it, h->data, h->len, h->n, h->seek, a, err) != RW_OK)
            return RW_LIMIT;
    }
    if (s->head.n && s->head.t0 <= maxt && s->head.t >= mint &&
        add_piece(it, s->head.b, chunk_enc_len(&s->head), s->head.n, s->head.seek, a, err) != RW_OK)
        return RW_LIMIT;
    if (s->ooo) {
        uint32_t lo = 0, hi = 0;
        while (lo < s->ooo->n && s->ooo->t[lo] < mint)
            lo++;
        hi = lo;
        while (hi < s->ooo->n && s->ooo->t[hi] <= maxt)
            hi++;
        if (hi > lo) {
            size_t n = hi - lo;
            int64_t *t = rw_arena_alloc(a, n * sizeof *t);
            uint64_t *v = rw_arena_alloc(a, n * sizeof *v);
            if (!t || !v)
                return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
            memcpy(t, s->ooo->t + lo, n * sizeof *t);
            memcpy(v, s->ooo->v + lo, n * sizeof *v);
            it->ooo_t = t;
            it->ooo_v = v;
            it->nooo = n;
            it->maxn += n;
        }
    }
    it->blocks = s->pmint <= s->pmaxt && s->pmint <= maxt && s->pmaxt >= mint;
    return RW_OK;
}

/* The blocks of a shard overlapping [mint, maxt], referenced (mu held). */
static blockd **blocks_in(rw_shard *sh, int64_t mint, int64_t maxt, size_t *n)
{
    *n = 0;
    if (!sh->nblocks)
        return NULL;
    blockd **r = malloc(sh->nblocks * sizeof *r);
    if (!r)
        return NULL;
    for (size_t i = 0; i < sh->nblocks; i++) {
        blockd *b = sh->blocks[i];
        if (b->mint <= maxt && b->maxt >= mint) {
            atomic_fetch_add(&b->refs, 1);
            r[(*n)++] = b;
        }
    }
    return r;
}

static rw_rc select_shard(rw_shard *sh, const rw_matcher *ms, size_t nms, int64_t mint,
                          int64_t maxt, int flags, int64_t deadline_ns, rw_arena *a,
                          sel_item **items, size_t *nitems, size_t *capitems, rw_err *err)
{
    series **cand;
    size_t ncand;
    sel_ctx c;
    rw_rc rc = sel_ctx_init(&c, sh, ms, nms, deadline_ns, err);
    if (rc != RW_OK)
        return rc;
    pthread_mutex_lock(&sh->mu);
    rc = shard_candidates(sh, &c, &cand, &ncand);
    if (rc != RW_OK) {
        pthread_mutex_unlock(&sh->mu);
        sel_ctx_free(&c);
        return rc;
    }
    for (size_t i = 0; i < ncand; i++) {
        series *s = cand[i];
        if (!overlaps(s, mint, maxt))
            continue;
        if (*nitems == *capitems) {
            size_t nc = *capitems ? *capitems * 2 : 64;
            sel_item *n = realloc(*items, nc * sizeof *n);
            if (!n) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
            *items = n;
            *capitems = nc;
        }
        sel_item *it = &(*items)[*nitems];
        memset(it, 0, sizeof *it);
        it->shard = sh->idx;
        it->nlabels = s->nlabels;
        it->labels = copy_labels(a, s, &it->key, &it->keylen);
        if (!it->labels) {
            rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
            break;
        }
        it->sid = s->id;
        if (!(flags & RW_SELECT_LABELS_ONLY) &&
            (rc = collect(s, mint, maxt, flags, a, it, err)) != RW_OK)
            break;
        (*nitems)++;
    }
    pthread_mutex_unlock(&sh->mu);
    free(cand);
    sel_ctx_free(&c);
    return rc;
}

/* A decoded part of one item (block samples, in the call's scratch). */
typedef struct brun {
    size_t item;
    size_t blk;            /* block order: later blocks hold newer writes */
    const int64_t *t;
    double *v;
    uint32_t n;
} brun;

static int brun_cmp(const void *a, const void *b)
{
    const brun *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    return x->blk < y->blk ? -1 : x->blk > y->blk;
}

typedef struct want {
    size_t item;
    const bidx_ent *e;
} want;

static int want_cmp(const void *a, const void *b)
{
    const want *x = a, *y = b;
    return x->e->rowid < y->e->rowid ? -1 : x->e->rowid > y->e->rowid;
}

/* Per-call decoding state of one shard. */
typedef struct reader {
    rw_shard *sh;
    blockd **blocks;
    bidx **idx;
    size_t nblocks;
    int locked, in_txn;    /* rd_mu held; a read transaction open on rdb */
    rw_buf scratch;
    rw_arena *bs;          /* decoded block values of this call */
    tscol **tsref;         /* timestamp columns the runs point into (held) */
    size_t ntsref, captsref;
    brun *runs;
    size_t nruns, capruns;
    /* scratch for one item's merge */
    int64_t *t;
    double *v;
    size_t cap;
    srun *sr;
    size_t capsr;
} reader;

/* Ends the read transaction and lets the next reader of the shard in: what
 * the runs point at (timestamp columns held, values in r->bs) is ours. */
static void reader_end_txn(reader *r)
{
    if (r->in_txn) {
        db_exec(r->sh->rdb, "COMMIT", NULL);
        db_read_stats(r->sh);
        r->in_txn = 0;
    }
    if (r->locked) {
        pthread_mutex_unlock(&r->sh->rd_mu);
        r->locked = 0;
    }
}

static void reader_done(reader *r)
{
    reader_end_txn(r);
    for (size_t i = 0; i < r->nblocks; i++) {
        bidx_put(r->idx ? r->idx[i] : NULL);
        blockd_put(r->blocks[i]);
    }
    free(r->blocks);
    free(r->idx);
    for (size_t i = 0; i < r->ntsref; i++)
        tscol_put(r->tsref[i]);
    free(r->tsref);
    rw_arena_free(r->bs);
    free(r->runs);
    free(r->t);
    free(r->v);
    free(r->sr);
    rw_buf_free(&r->scratch);
}

/* Takes the shard's reader connection; with nowait only when it is free
 * (returns 0 when another query holds it). */
static int reader_lock(reader *r, int nowait)
{
    if (!r->locked) {
        if (!nowait)
            pthread_mutex_lock(&r->sh->rd_mu);
        else if (pthread_mutex_trylock(&r->sh->rd_mu) != 0)
            return 0;
        r->locked = 1;
    }
    return 1;
}

/* Begins the read transaction when a part is first read: one snapshot per
 * shard. */
static void reader_txn(reader *r)
{
    reader_lock(r, 0);
    if (!r->in_txn) {
        db_exec(r->sh->rdb, "BEGIN", NULL);
        r->in_txn = 1;
    }
}

static int add_brun(reader *r, size_t item, size_t blk, const int64_t *t, double *v, uint32_t n)
{
    if (r->nruns == r->capruns) {
        size_t nc = r->capruns ? r->capruns * 2 : 256;
        brun *x = realloc(r->runs, nc * sizeof *x);
        if (!x)
            return -1;
        r->runs = x;
        r->capruns = nc;
    }
    r->runs[r->nruns++] = (brun){item, blk, t, v, n};
    return 0;
}

/* Reads the parts of every item in every block overlapping the range: a
 * block most of whose parts are wanted is read in one rowid range scan,
 * otherwise part by part. */
static rw_rc read_blocks(reader *r, sel_item *items, const size_t *mine, size_t nm, int64_t mint,
                         int64_t maxt, rw_err *err)
{
    rw_shard *sh = r->sh;
    want *w = malloc((nm ? nm : 1) * sizeof *w);
    const bidx_ent **e = malloc((nm ? nm : 1) * sizeof *e);
    tscol **tt = malloc((nm ? nm : 1) * sizeof *tt);
    uint64_t **vv = malloc((nm ? nm : 1) * sizeof *vv);
    rw_rc *res = malloc((nm ? nm : 1) * sizeof *res);
    rw_rc rc = w && e && tt && vv && res ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t b = 0; b < r->nblocks && rc == RW_OK; b++) {
        if (!r->idx[b])
            continue;
        size_t nw = 0;
        for (size_t k = 0; k < nm; k++) {
            sel_item *it = &items[mine[k]];
            if (!it->blocks)
                continue;
            const bidx_ent *x = bidx_find(r->idx[b], it->sid);
            if (x && x->mint <= maxt && x->maxt >= mint)
                w[nw++] = (want){mine[k], x};
        }
        if (!nw)
            continue;
        qsort(w, nw, sizeof *w, want_cmp);
        if (r->ntsref + nw > r->captsref) {
            size_t nc = r->captsref ? r->captsref * 2 : 256;
            while (nc < r->ntsref + nw)
                nc *= 2;
            tscol **x = realloc(r->tsref, nc * sizeof *x);
            if (!x)
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            else {
                r->tsref = x;
                r->captsref = nc;
            }
        }
        for (size_t k = 0; k < nw && rc == RW_OK; k++) {
            e[k] = w[k].e;
            tt[k] = NULL;
            vv[k] = rw_arena_alloc(r->bs, w[k].e->n * sizeof(uint64_t));
            if (!vv[k])
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
        }
        if (rc != RW_OK)
            break;
        reader_txn(r);
        if (nw >= 32 && nw * 8 >= r->idx[b]->n) {
            rc = parts_scan(sh, r->blocks[b], e, nw, tt, vv, res, &r->scratch, err);
        } else {
            for (size_t k = 0; k < nw && rc == RW_OK; k++) {
                res[k] = part_read(sh, r->blocks[b], e[k], &tt[k], vv[k], &r->scratch, err);
                if (res[k] != RW_OK && res[k] != RW_NOTFOUND)
                    rc = res[k];
            }
        }
        /* every timestamp column taken is held until the reader is done */
        for (size_t k = 0; k < nw; k++)
            if (tt[k])
                r->tsref[r->ntsref++] = tt[k];
        for (size_t k = 0; k < nw && rc == RW_OK; k++)
            if (res[k] == RW_OK &&
                add_brun(r, w[k].item, b, tt[k]->t, (double *)(void *)vv[k], e[k]->n) < 0)
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
    }
    free(w);
    free(e);
    free(tt);
    free(vv);
    free(res);
    return rc;
}

/* Merges one item's runs (its block parts, head chunks, out-of-order
 * samples) into the arena: *ot, *ov, *on. */
static rw_rc merge_item(reader *r, sel_item *it, const brun *br, size_t nbr, int64_t mint,
                        int64_t maxt, int last, rw_arena *a, int64_t **ot, double **ov,
                        size_t *on, rw_err *err)
{
    rw_shard *sh = r->sh;
    *on = 0;
    if (it->has_last) {
        int64_t *t = rw_arena_alloc(a, sizeof *t);
        double *v = rw_arena_alloc(a, sizeof *v);
        if (!t || !v)
            return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        *t = it->last_t;
        *v = it->last_v;
        *ot = t;
        *ov = v;
        *on = 1;
        return RW_OK;
    }
    size_t nruns = nbr + it->npieces + (it->nooo ? 1 : 0);
    if (!nruns)
        return RW_OK;
    if (nruns > r->capsr) {
        srun *x = realloc(r->sr, nruns * sizeof *x);
        if (!x)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        r->sr = x;
        r->capsr = nruns;
    }
    /* the head chunks decode into reusable scratch */
    size_t hn = 0;
    for (size_t p = 0; p < it->npieces; p++)
        hn += it->pieces[p].n;
    if (hn > r->cap) {
        size_t nc = r->cap ? r->cap : 1024;
        while (nc < hn)
            nc *= 2;
        int64_t *t = realloc(r->t, nc * sizeof *t);
        if (!t)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        r->t = t;
        double *v = realloc(r->v, nc * sizeof *v);
        if (!v)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        r->v = v;
        r->cap = nc;
    }
    size_t k = 0, used = 0, total = 0;
    /* blocks first (older writes), in block order */
    for (size_t i = 0; i < nbr; i++)
        r->sr[k++] = (srun){br[i].t, br[i].v, br[i].n};
    for (size_t p = 0; p < it->npieces; p++) {
        chunk_it ci;
        if (chunk_it_init(&ci, it->pieces[p].data, it->pieces[p].len) < 0)
            return rw_err_set(err, RW_INTERNAL, "shard %d: head chunk is corrupt", sh->idx);
        int64_t *t = r->t + used;
        double *v = r->v + used;
        /* A chunk is strictly ascending (the encoder only appends newer
         * samples), so decoding stops at the first sample past maxt, and
         * starts at the chunk's restart when that is not after mint (what
         * lies before mint otherwise is decoded, the format being
         * sequential, but not kept): a rule's rate over the last minutes
         * decodes about half a chunk less on average, and a query at a
         * time inside a chunk (in the past, or behind data that runs
         * ahead) nothing after that time. */
        chunk_it_seek(&ci, it->pieces[p].seek, mint);
        long n = ci.n == it->pieces[p].n ? chunk_it_range(&ci, mint, maxt, t, v) : -1;
        if (n < 0)
            return rw_err_set(err, RW_INTERNAL, "shard %d: head chunk is corrupt", sh->idx);
        r->sr[k++] = (srun){t, v, (size_t)n};
        used += (size_t)n;
    }
    if (it->nooo)
        r->sr[k++] = (srun){it->ooo_t, (const double *)(const void *)it->ooo_v, it->nooo};
    /* a block part holds a whole window or more: room for what is in range */
    total = runs_trim(r->sr, k, mint, maxt);
    if (!total)
        return RW_OK;
    if (last) {
        /* only the newest sample in range is wanted: merge into scratch */
        int64_t *t = malloc(total * sizeof *t);
        double *v = malloc(total * sizeof *v);
        int nomem = !t || !v;
        size_t n = nomem ? 0 : runs_merge(r->sr, k, t, v, &nomem);
        rw_rc rc = RW_OK;
        if (nomem) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
        } else if (n) {
            int64_t *t1 = rw_arena_alloc(a, sizeof *t1);
            double *v1 = rw_arena_alloc(a, sizeof *v1);
            if (!t1 || !v1) {
                rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
            } else {
                *t1 = t[n - 1];
                *v1 = v[n - 1];
                *ot = t1;
                *ov = v1;
                *on = 1;
            }
        }
        free(t);
        free(v);
        return rc;
    }
    int64_t *t = rw_arena_alloc(a, total * sizeof *t);
    double *v = rw_arena_alloc(a, total * sizeof *v);
    if (!t || !v)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    int nomem = 0;
    size_t n = runs_merge(r->sr, k, t, v, &nomem);
    if (nomem)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    *ot = t;
    *ov = v;
    *on = n;
    return RW_OK;
}

/* Decodes the items of one shard; out[] is parallel to items[]. With
 * nowait, returns RW_AGAIN (having decoded nothing) when the items need the
 * shard's reader connection and another query holds it. */
static rw_rc decode_items(rw_shard *sh, sel_item *items, size_t nitems, int64_t mint,
                          int64_t maxt, int last, int nowait, rw_arena *a, rw_series_data *out,
                          size_t max_samples, size_t *total, rw_err *err)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.sh = sh;
    rw_buf_init(&r.scratch, 0);
    rw_rc rc = RW_OK;
    size_t *mine = malloc((nitems ? nitems : 1) * sizeof *mine), nm = 0;
    if (!mine)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    int need_blocks = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (items[i].shard != sh->idx)
            continue;
        mine[nm++] = i;
        need_blocks |= items[i].blocks && !items[i].has_last;
    }
    if (need_blocks) {
        pthread_mutex_lock(&sh->mu);
        r.blocks = blocks_in(sh, mint, maxt, &r.nblocks);
        pthread_mutex_unlock(&sh->mu);
        if (r.nblocks) {
            r.idx = calloc(r.nblocks, sizeof *r.idx);
            r.bs = rw_arena_new(1u << 20, 0);
            if (!r.idx || !r.bs)
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            for (size_t b = 0; b < r.nblocks && rc == RW_OK; b++)
                if (!(r.idx[b] = block_index(sh, r.blocks[b], err)))
                    rc = err && err->code ? err->code : RW_INTERNAL;
            if (rc == RW_OK && !reader_lock(&r, nowait))
                rc = RW_AGAIN;
            if (rc == RW_OK)
                rc = read_blocks(&r, items, mine, nm, mint, maxt, err);
            /* the merge below needs no connection: the next reader goes on */
            reader_end_txn(&r);
            if (rc == RW_OK && r.nruns > 1)
                qsort(r.runs, r.nruns, sizeof *r.runs, brun_cmp);
        }
    }
    size_t j = 0;
    for (size_t m = 0; m < nm && rc == RW_OK; m++) {
        size_t i = mine[m];
        while (j < r.nruns && r.runs[j].item < i)
            j++;
        size_t j2 = j;
        while (j2 < r.nruns && r.runs[j2].item == i)
            j2++;
        int64_t *t = NULL;
        double *v = NULL;
        size_t n = 0;
        /* no runs at all: r.runs is NULL, and NULL + 0 is undefined in C */
        const brun *runs = j2 > j ? r.runs + j : NULL;
        rc = merge_item(&r, &items[i], runs, j2 - j, mint, maxt, last, a, &t, &v, &n, err);
        j = j2;
        if (rc != RW_OK || n == 0)
            continue;
        *total += n;
        if (max_samples && *total > max_samples) {
            rc = rw_err_set(err, RW_LIMIT, "query would return more than %zu samples",
                            max_samples);
            break;
        }
        out[i].t = t;
        out[i].v = v;
        out[i].n = n;
    }
    free(mine);
    reader_done(&r);
    return rc;
}

/* Decodes the items of every shard in mask (bit k: shard k has items; every
 * shard past 63): a shard whose reader connection another query holds is
 * left for a second round, and each call starts at the next shard in turn,
 * so that the workers of a range query (engine.c), which read the same
 * series for neighbouring steps, decode on different shards side by side
 * instead of queueing on one connection after another. */
static rw_rc decode_shards(rw_store *st, sel_item *items, size_t nitems, uint64_t mask,
                           int64_t mint, int64_t maxt, int last, rw_arena *a, rw_series_data *out,
                           size_t max_samples, size_t *total, rw_err *err)
{
    int n = st->nshards, start = (int)(atomic_fetch_add(&st->read_turn, 1) % (unsigned)n);
    uint64_t busy = 0; /* bit k: shard k left for the second round */
    rw_rc rc = RW_OK;
    for (int i = 0; i < n && rc == RW_OK; i++) {
        int k = (start + i) % n;
        if (k < 64 && !(mask >> k & 1))
            continue;
        rc = decode_items(&st->shards[k], items, nitems, mint, maxt, last, k < 64, a, out,
                          max_samples, total, err);
        if (rc == RW_AGAIN) {
            busy |= (uint64_t)1 << k;
            rc = RW_OK;
        }
    }
    for (int i = 0; i < n && rc == RW_OK && busy; i++) {
        int k = (start + i) % n;
        if (k < 64 && (busy >> k & 1))
            rc = decode_items(&st->shards[k], items, nitems, mint, maxt, last, 0, a, out,
                              max_samples, total, err);
    }
    return rc;
}

/* A series ref: shard index and series id. Series ids are never reused
 * (next_id only grows and is persisted), so a ref names one series for as
 * long as the store is open, and a deleted series is simply not found. */
static uint64_t make_ref(int shard, uint32_t sid)
{
    return (uint64_t)(uint32_t)shard << 32 | sid;
}

rw_rc rw_store_select(rw_store *st, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err)
{
    return store_select(st, ms, nms, mint, maxt, flags, max_samples, 0, a, out, nout, err);
}

rw_rc store_select(rw_store *st, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                   int flags, size_t max_samples, int64_t deadline_ns, rw_arena *a,
                   rw_series_data **out, size_t *nout, rw_err *err)
{
    *out = NULL;
    *nout = 0;
    rw_rc rc = check_matchers(ms, nms, err);
    if (rc != RW_OK)
        return rc;
    sel_item *items = NULL;
    size_t nitems = 0, cap = 0;
    for (int k = 0; k < st->nshards && rc == RW_OK; k++)
        rc = select_shard(&st->shards[k], ms, nms, mint, maxt, flags, deadline_ns, a, &items,
                          &nitems, &cap, err);
    if (rc != RW_OK) {
        free(items);
        return rc;
    }
    if (nitems > 1)
        qsort(items, nitems, sizeof *items, item_cmp);
    rw_series_data *res = rw_arena_calloc(a, nitems ? nitems : 1, sizeof *res);
    if (!res) {
        free(items);
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    }
    if (flags & RW_SELECT_LABELS_ONLY) {
        for (size_t i = 0; i < nitems; i++) {
            res[i].labels = items[i].labels;
            res[i].nlabels = items[i].nlabels;
            res[i].ref = make_ref(items[i].shard, items[i].sid);
        }
        *out = res;
        *nout = nitems;
        free(items);
        return RW_OK;
    }
    size_t total = 0;
    rc = decode_shards(st, items, nitems, ~(uint64_t)0, mint, maxt,
                       (flags & RW_SELECT_LAST) != 0, a, res, max_samples, &total, err);
    if (rc != RW_OK) {
        free(items);
        return rc;
    }
    /* compact: drop series without samples in range */
    size_t w = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (res[i].n == 0)
            continue;
        res[w].labels = items[i].labels;
        res[w].nlabels = items[i].nlabels;
        res[w].t = res[i].t;
        res[w].v = res[i].v;
        res[w].n = res[i].n;
        res[w].ref = make_ref(items[i].shard, items[i].sid);
        w++;
    }
    free(items);
    *out = res;
    *nout = w;
    return RW_OK;
}

rw_rc rw_store_read_samples(rw_store *st, rw_series_data *sd, size_t n, int64_t mint,
                            int64_t maxt, int flags, size_t max_samples, rw_arena *a,
                            size_t *decoded, rw_err *err)
{
    size_t total = 0;
    if (decoded)
        *decoded = 0;
    if (!n)
        return RW_OK;
    sel_item *items = calloc(n, sizeof *items);
    if (!items)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    rw_rc rc = RW_OK;
    uint64_t shards_used = 0; /* bit k: shard k (k < 64) has series here */
    for (size_t i = 0; i < n; i++) {
        uint64_t ref = sd[i].ref;
        int k = (int)(ref >> 32);
        sd[i].t = NULL;
        sd[i].v = NULL;
        sd[i].n = 0;
        items[i].shard = k < st->nshards ? k : -1;
        items[i].sid = (uint32_t)ref;
        if (items[i].shard >= 0)
            shards_used |= k < 64 ? (uint64_t)1 << k : 0;
    }
    uint64_t shards_some = 0; /* the shards with items left to decode */
    for (int k = 0; k < st->nshards && rc == RW_OK; k++) {
        if (k < 64 && !(shards_used >> k & 1))
            continue;
        rw_shard *sh = &st->shards[k];
        int any = 0;
        pthread_mutex_lock(&sh->mu);
        for (size_t i = 0; i < n; i++) {
            sel_item *it = &items[i];
            if (it->shard != k)
                continue;
            const series *s = it->sid < sh->cap_id ? sh->by_id[it->sid] : NULL;
            if (!s || !overlaps(s, mint, maxt)) {
                it->shard = -1; /* deleted meanwhile, or nothing in range */
                continue;
            }
            if ((rc = collect(s, mint, maxt, flags & RW_SELECT_LAST, a, it, err)) != RW_OK)
                break;
            any = 1;
        }
        pthread_mutex_unlock(&sh->mu);
        if (any)
            shards_some |= k < 64 ? (uint64_t)1 << k : 0;
    }
    if (rc == RW_OK)
        rc = decode_shards(st, items, n, shards_some, mint, maxt, (flags & RW_SELECT_LAST) != 0,
                           a, sd, max_samples, &total, err);
    free(items);
    if (decoded)
        *decoded = total;
    return rc;
}

/* ---- label names / values ---- */

typedef struct strset {
    strmap m;
    rw_arena *a;
} strset;

static int strset_add(strset *s, const char *v)
{
    uint64_t h = str_hash(v);
    if (strmap_find(&s->m, v, h))
        return 0;
    char *c = rw_arena_strdup(s->a, v);
    if (!c)
        return -1;
    return strmap_put(&s->m, c, h, NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rw_rc strset_out(strset *s, char ***out, size_t *nout, rw_err *err)
{
    char **r = rw_arena_alloc(s->a, (s->m.n ? s->m.n : 1) * sizeof *r);
    if (!r) {
        strmap_free(&s->m);
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    }
    size_t k = 0;
    STRMAP_EACH(&s->m, sl) r[k++] = (char *)sl->key;
    qsort(r, k, sizeof *r, cmp_str);
    strmap_free(&s->m);
    *out = r;
    *nout = k;
    return RW_OK;
}

static int plist_overlaps(const rw_shard *sh, const plist *p, int64_t mint, int64_t maxt)
{
    for (uint32_t i = 0; i < p->n; i++) {
        const series *s = p->ids[i] < sh->cap_id ? sh->by_id[p->ids[i]] : NULL;
        if (s && overlaps(s, mint, maxt))
            return 1;
    }
    return 0;
}

/* name == NULL: label names; else values of `name`. */
static rw_rc label_query(rw_store *st, const char *name, const rw_matcher *ms, size_t nms,
                         int64_t mint, int64_t maxt, int64_t deadline_ns, rw_arena *a,
                         char ***out, size_t *nout, rw_err *err)
{
    rw_rc rc = RW_OK;
    if (nms && (rc = check_matchers(ms, nms, err)) != RW_OK)
        return rc;
    strset set = {.a = a};
    for (int k = 0; k < st->nshards && rc == RW_OK; k++) {
        rw_shard *sh = &st->shards[k];
        sel_ctx c;
        if ((rc = sel_ctx_init(&c, sh, ms, nms, deadline_ns, err)) != RW_OK)
            break;
        pthread_mutex_lock(&sh->mu);
        if (nms == 0) {
            if (!name) {
                STRMAP_EACH(&sh->postings, ns) {
                    const lname *ln = ns->val;
                    int any = 0;
                    STRMAP_EACH(&ln->values, vs) {
                        if (plist_overlaps(sh, vs->val, mint, maxt)) {
                            any = 1;
                            break;
                        }
                    }
                    if (any && strset_add(&set, ln->name) < 0)
                        rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                }
            } else {
                const lname *ln = postings_name(sh, name);
                if (ln) {
                    STRMAP_EACH(&ln->values, vs) {
                        if (plist_overlaps(sh, vs->val, mint, maxt) && strset_add(&set, vs->key) < 0)
                            rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                    }
                }
            }
        } else {
            series **cand;
            size_t ncand;
            if ((rc = shard_candidates(sh, &c, &cand, &ncand)) == RW_OK) {
                for (size_t i = 0; i < ncand && rc == RW_OK; i++) {
                    series *s = cand[i];
                    if (!overlaps(s, mint, maxt))
                        continue;
                    if (!name) {
                        for (uint32_t j = 0; j < s->nlabels; j++)
                            if (strset_add(&set, series_labels(s)[j].name) < 0)
                                rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                    } else {
                        const char *v = rw_labels_get(series_labels(s), s->nlabels, name);
                        if (v && strset_add(&set, v) < 0)
                            rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                    }
                }
                free(cand);
            }
        }
        pthread_mutex_unlock(&sh->mu);
        sel_ctx_free(&c);
    }
    if (rc != RW_OK) {
        strmap_free(&set.m);
        return rc;
    }
    return strset_out(&set, out, nout, err);
}

rw_rc rw_store_label_names(rw_store *st, const rw_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, rw_arena *a, char ***out, size_t *nout, rw_err *err)
{
    return label_query(st, NULL, ms, nms, mint, maxt, 0, a, out, nout, err);
}

rw_rc rw_store_label_values(rw_store *st, const char *name, const rw_matcher *ms, size_t nms,
                            int64_t mint, int64_t maxt, rw_arena *a, char ***out, size_t *nout,
                            rw_err *err)
{
    return label_query(st, name, ms, nms, mint, maxt, 0, a, out, nout, err);
}

rw_rc store_label_query(rw_store *st, const char *name, const rw_matcher *ms, size_t nms,
                        int64_t mint, int64_t maxt, int64_t deadline_ns, rw_arena *a,
                        char ***out, size_t *nout, rw_err *err)
{
    return label_query(st, name, ms, nms, mint, maxt, deadline_ns, a, out, nout, err);
}
