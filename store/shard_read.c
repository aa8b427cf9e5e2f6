/* shard_read.c - the read path: rw_store_select(), rw_store_read_samples()
 * (samples of series selected earlier, by ref, a batch at a time),
 * rw_store_label_names() and rw_store_label_values(). Under each shard's lock it resolves matchers
 * through the postings (exact lookups for =, a scan of one label's values for
 * regexes and !=), filters by the matchers that also match the empty string,
 * (regexes are matched beforehand, outside the lock, see "regex matchers"
 * below, so a slow pattern never stalls the shard's writers; the query's
 * deadline is checked while they run),
 * and copies what it needs - labels, the open head chunk, completed chunks not
 * yet committed - into the caller's arena; persisted chunks are then read
 * through the shard's read connection without the shard lock held (SQLite WAL
 * mode lets readers run beside the committing writer). Results of all shards
 * are merged and sorted by label set. */
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
                ok = ctx_match(c, j, rw_labels_get(s->labels, s->nlabels, ms[j].name));
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

typedef struct piece {
    int64_t rowid;        /* persisted chunk, or 0 */
    uint32_t sid;         /* checked on read: a rowid freed by retention
                             may have been reused meanwhile */
    const uint8_t *data;  /* arena copy when rowid == 0 */
    uint32_t len;
    uint16_t n;
} piece;

typedef struct sel_item {
    rw_label *labels;
    size_t nlabels;
    const char *key;      /* the label strings, contiguous (copy_labels) */
    size_t keylen;
    int shard;            /* -1: not found (rw_store_read_samples) */
    uint32_t sid;         /* series id, for the ref */
    piece *pieces;
    size_t npieces;
    size_t maxn;          /* samples in all pieces */
    int has_last;         /* RW_SELECT_LAST answered from the series' newest
                             sample: last_t/last_v, no pieces */
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
        lens[2 * i] = strlen(s->labels[i].name) + 1;
        lens[2 * i + 1] = strlen(s->labels[i].value) + 1;
        total += lens[2 * i] + lens[2 * i + 1];
    }
    char *p = rw_arena_alloc(a, total ? total : 1);
    if (!p)
        return NULL;
    *key = p;
    *keylen = total;
    for (uint32_t i = 0; i < s->nlabels; i++) {
        memcpy(p, s->labels[i].name, lens[2 * i]);
        l[i].name = p;
        p += lens[2 * i];
        memcpy(p, s->labels[i].value, lens[2 * i + 1]);
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

/* Decodes one chunk's samples within [mint, maxt] into t/v at *n. */
static int decode_into(const uint8_t *b, size_t len, int64_t mint, int64_t maxt, int64_t *t,
                       double *v, size_t *n, size_t cap)
{
    chunk_it it;
    if (chunk_it_init(&it, b, len) < 0)
        return -1;
    int64_t ts;
    double vs;
    int r;
    while ((r = chunk_it_next(&it, &ts, &vs)) == 1) {
        if (ts < mint)
            continue;
        if (ts > maxt)
            break;
        if (*n >= cap)
            return -1;
        t[*n] = ts;
        v[*n] = vs;
        (*n)++;
    }
    return r < 0 ? -1 : 0;
}

/* Describes a completed chunk as a piece to decode (mu held): a persisted one
 * by its rowid, one not yet committed as a copy of its bytes. */
static rw_rc chunk_piece(const series *s, const chunk_meta *cm, rw_arena *a, piece *p,
                         rw_err *err)
{
    p->n = cm->n;
    p->rowid = cm->rowid;
    p->sid = s->id;
    p->data = NULL;
    p->len = cm->len;
    if (!cm->rowid) {
        uint8_t *d = rw_arena_alloc(a, cm->len);
        if (!d)
            return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        memcpy(d, cm->data, cm->len);
        p->data = d;
    }
    return RW_OK;
}

/* RW_SELECT_LAST (mu held): the series' newest sample when it lies in
 * [mint, maxt] - newest_t/newest_v are kept exact by every append, by WAL
 * replay and by recovery (load_newest_values), and retention never drops a
 * series' newest chunk while keeping older ones. Otherwise the one chunk
 * that holds the newest sample <= maxt: the last chunk starting at or before
 * maxt (every later chunk starts after maxt). */
static rw_rc select_last(const series *s, int64_t mint, int64_t maxt, rw_arena *a, sel_item *it,
                         rw_err *err)
{
    if (s->has_data && s->newest_t >= mint && s->newest_t <= maxt) {
        it->has_last = 1;
        it->last_t = s->newest_t;
        memcpy(&it->last_v, &s->newest_v, sizeof it->last_v);
        it->maxn = 1;
        return RW_OK;
    }
    it->pieces = rw_arena_alloc(a, sizeof *it->pieces);
    if (!it->pieces)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    piece *p = &it->pieces[0];
    if (s->head.n && s->head.t0 <= maxt) {
        if (s->head.t < mint)
            return RW_OK; /* newest sample <= maxt is older than mint */
        size_t len = chunk_enc_len(&s->head);
        uint8_t *d = rw_arena_alloc(a, len);
        if (!d)
            return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        memcpy(d, s->head.b, len);
        p->rowid = 0;
        p->data = d;
        p->len = (uint32_t)len;
        p->n = s->head.n;
    } else {
        uint32_t c = s->nchunks;
        while (c > 0 && s->chunks[c - 1].mint > maxt)
            c--;
        if (c == 0 || s->chunks[c - 1].maxt < mint)
            return RW_OK;
        if (chunk_piece(s, &s->chunks[c - 1], a, p, err) != RW_OK)
            return RW_LIMIT;
    }
    it->npieces = 1;
    it->maxn = p->n;
    return RW_OK;
}

/* Gathers what decoding the samples of s in [mint, maxt] needs (mu held):
 * persisted chunks by rowid, copies of uncommitted chunks and of the open
 * head; with RW_SELECT_LAST only the one chunk (or the newest sample) the
 * answer is in. */
static rw_rc collect_pieces(const series *s, int64_t mint, int64_t maxt, int flags, rw_arena *a,
                            sel_item *it, rw_err *err)
{
    if (flags & RW_SELECT_LAST)
        return select_last(s, mint, maxt, a, it, err);
    it->pieces = rw_arena_alloc(a, (s->nchunks + 1) * sizeof *it->pieces);
    if (!it->pieces)
        return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
    for (uint32_t c = 0; c < s->nchunks; c++) {
        const chunk_meta *cm = &s->chunks[c];
        if (cm->mint > maxt || cm->maxt < mint)
            continue;
        if (chunk_piece(s, cm, a, &it->pieces[it->npieces++], err) != RW_OK)
            return RW_LIMIT;
        it->maxn += cm->n;
    }
    if (s->head.n && s->head.t0 <= maxt && s->head.t >= mint) {
        size_t len = chunk_enc_len(&s->head);
        uint8_t *d = rw_arena_alloc(a, len);
        if (!d)
            return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        memcpy(d, s->head.b, len);
        piece *p = &it->pieces[it->npieces++];
        p->rowid = 0;
        p->data = d;
        p->len = (uint32_t)len;
        p->n = s->head.n;
        it->maxn += s->head.n;
    }
    return RW_OK;
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
            (rc = collect_pieces(s, mint, maxt, flags, a, it, err)) != RW_OK)
            break;
        (*nitems)++;
    }
    pthread_mutex_unlock(&sh->mu);
    free(cand);
    sel_ctx_free(&c);
    return rc;
}

/* Decodes the pieces of the items of one shard; persisted chunks come from
 * the read connection. */
static rw_rc decode_items(rw_shard *sh, sel_item *items, size_t nitems, int64_t mint,
                          int64_t maxt, int last, rw_arena *a, rw_series_data *out,
                          size_t max_samples, size_t *total, rw_err *err)
{
    rw_rc rc = RW_OK;
    int locked = 0;
    for (size_t i = 0; i < nitems && rc == RW_OK; i++) {
        sel_item *it = &items[i];
        if (it->shard != sh->idx)
            continue;
        if (it->has_last || (last && !it->npieces)) {
            if (!it->has_last)
                continue;
            int64_t *t = rw_arena_alloc(a, sizeof *t);
            double *v = rw_arena_alloc(a, sizeof *v);
            if (!t || !v)
                return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
            *t = it->last_t;
            *v = it->last_v;
            if (++*total > max_samples && max_samples) {
                rc = rw_err_set(err, RW_LIMIT, "query would return more than %zu samples",
                                max_samples);
                break;
            }
            out[i].t = t;
            out[i].v = v;
            out[i].n = 1;
            continue;
        }
        int64_t *t = rw_arena_alloc(a, (it->maxn ? it->maxn : 1) * sizeof *t);
        double *v = rw_arena_alloc(a, (it->maxn ? it->maxn : 1) * sizeof *v);
        if (!t || !v)
            return rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
        size_t n = 0;
        for (size_t p = 0; p < it->npieces; p++) {
            piece *pc = &it->pieces[p];
            if (pc->rowid) {
                if (!locked) {
                    pthread_mutex_lock(&sh->rd_mu);
                    db_exec(sh->rdb, "BEGIN", NULL); /* one snapshot per shard */
                    locked = 1;
                }
                sqlite3_stmt *st = sh->st_chunk_get;
                sqlite3_bind_int64(st, 1, pc->rowid);
                int r = sqlite3_step(st);
                if (r == SQLITE_ROW && sqlite3_column_int64(st, 1) == pc->sid) {
                    const uint8_t *b = sqlite3_column_blob(st, 0);
                    int len = sqlite3_column_bytes(st, 0);
                    if (decode_into(b, (size_t)len, mint, maxt, t, v, &n, it->maxn) < 0)
                        rc = rw_err_set(err, RW_INTERNAL, "shard %d: chunk %lld is corrupt",
                                        sh->idx, (long long)pc->rowid);
                } else if (r != SQLITE_DONE && r != SQLITE_ROW) {
                    rc = db_rc(sh->rdb, r, "read chunk", err);
                } /* gone or reused: dropped by retention meanwhile */
                sqlite3_reset(st);
            } else if (decode_into(pc->data, pc->len, mint, maxt, t, v, &n, it->maxn) < 0) {
                rc = rw_err_set(err, RW_INTERNAL, "shard %d: head chunk is corrupt", sh->idx);
            }
            if (rc != RW_OK)
                break;
        }
        if (rc != RW_OK || n == 0)
            continue;
        if (last && n > 1) {
            t[0] = t[n - 1];
            v[0] = v[n - 1];
            n = 1;
        }
        *total += n;
        if (max_samples && *total > max_samples) {
            rc = rw_err_set(err, RW_LIMIT, "query would return more than %zu samples",
                            max_samples);
            break;
        }
        /* out[] is parallel to items[]; rw_store_select compacts it */
        out[i].t = t;
        out[i].v = v;
        out[i].n = n;
    }
    if (locked) {
        db_exec(sh->rdb, "COMMIT", NULL);
        pthread_mutex_unlock(&sh->rd_mu);
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
    for (int k = 0; k < st->nshards && rc == RW_OK; k++)
        rc = decode_items(&st->shards[k], items, nitems, mint, maxt, (flags & RW_SELECT_LAST) != 0,
                          a, res, max_samples, &total, err);
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
            if ((rc = collect_pieces(s, mint, maxt, flags & RW_SELECT_LAST, a, it, err)) != RW_OK)
                break;
            any = 1;
        }
        pthread_mutex_unlock(&sh->mu);
        if (rc == RW_OK && any)
            rc = decode_items(sh, items, n, mint, maxt, (flags & RW_SELECT_LAST) != 0, a, sd,
                              max_samples, &total, err);
    }
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
                            if (strset_add(&set, s->labels[j].name) < 0)
                                rc = rw_err_set(err, RW_LIMIT, "query memory limit exceeded");
                    } else {
                        const char *v = rw_labels_get(s->labels, s->nlabels, name);
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
