/* index.c - the in-memory index of a shard: interned label strings, the
 * series hash map (label-set hash -> series, labels compared on collision),
 * the id table and the postings (label name -> value -> sorted series ids).
 * Appends (shard_append.c) and recovery find and create series here; selects
 * (shard_read.c) intersect postings; retention deletes series. Every function
 * expects the shard's mu held. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "store_int.h"

/* ---- strmap: open addressing, linear probing, backward-shift delete ---- */

uint64_t str_hash(const char *s)
{
    return XXH3_64bits(s, strlen(s));
}

strmap_slot *strmap_find(const strmap *m, const char *key, uint64_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        strmap_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && (s->key == key || strcmp(s->key, key) == 0))
            return s;
    }
}

void *strmap_get(const strmap *m, const char *key, uint64_t h)
{
    strmap_slot *s = strmap_find(m, key, h);
    return s ? s->val : NULL;
}

static int strmap_grow(strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    strmap_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        strmap_slot *s = &m->slots[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int strmap_put(strmap *m, const char *key, uint64_t h, void *val)
{
    strmap_slot *s = strmap_find(m, key, h);
    if (s) {
        s->val = val;
        return 0;
    }
    if ((m->n + 1) * 4 > m->cap * 3 && strmap_grow(m) < 0)
        return -1;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key)
        i = (i + 1) & mask;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->slots[i].hash = h;
    m->n++;
    return 0;
}

void strmap_del(strmap *m, const char *key, uint64_t h)
{
    strmap_slot *s = strmap_find(m, key, h);
    if (!s)
        return;
    size_t mask = m->cap - 1, i = (size_t)(s - m->slots);
    /* backward shift: move later entries of the cluster into the hole when
     * their home position allows it */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* can entry j move to i? yes if home is not in (i, j] cyclically */
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->slots[i].val = NULL;
    m->n--;
}

void strmap_free(strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ---- interning ---- */

const char *intern_get(strmap *m, const char *s)
{
    uint64_t h = str_hash(s);
    strmap_slot *sl = strmap_find(m, s, h);
    if (sl) {
        sl->val = (void *)((uintptr_t)sl->val + 1);
        return sl->key;
    }
    char *c = strdup(s);
    if (!c || strmap_put(m, c, h, (void *)(uintptr_t)1) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

void intern_put(strmap *m, const char *s)
{
    uint64_t h = str_hash(s);
    strmap_slot *sl = strmap_find(m, s, h);
    if (!sl)
        return;
    uintptr_t rc = (uintptr_t)sl->val;
    if (rc > 1) {
        sl->val = (void *)(rc - 1);
        return;
    }
    char *k = (char *)sl->key;
    strmap_del(m, s, h);
    free(k);
}

/* ---- postings ---- */

static int plist_add(plist *p, uint32_t id)
{
    if (p->n == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 4;
        uint32_t *ni = realloc(p->ids, nc * sizeof *ni);
        if (!ni)
            return -1;
        p->ids = ni;
        p->cap = nc;
    }
    if (p->n == 0 || p->ids[p->n - 1] < id) { /* the common case: ids grow */
        p->ids[p->n++] = id;
        return 0;
    }
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n && p->ids[lo] == id)
        return 0;
    memmove(p->ids + lo + 1, p->ids + lo, (p->n - lo) * sizeof *p->ids);
    p->ids[lo] = id;
    p->n++;
    return 0;
}

static void plist_del(plist *p, uint32_t id)
{
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n && p->ids[lo] == id) {
        memmove(p->ids + lo, p->ids + lo + 1, (p->n - lo - 1) * sizeof *p->ids);
        p->n--;
    }
}

/* name and value are interned pointers */
static int postings_add(rw_shard *sh, const char *name, const char *value, uint32_t id)
{
    uint64_t hn = str_hash(name);
    lname *ln = strmap_get(&sh->postings, name, hn);
    if (!ln) {
        ln = calloc(1, sizeof *ln);
        if (!ln)
            return -1;
        ln->name = name;
        if (strmap_put(&sh->postings, name, hn, ln) < 0) {
            free(ln);
            return -1;
        }
    }
    uint64_t hv = str_hash(value);
    plist *p = strmap_get(&ln->values, value, hv);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            return -1;
        if (strmap_put(&ln->values, value, hv, p) < 0) {
            free(p);
            return -1;
        }
    }
    return plist_add(p, id);
}

static void postings_del(rw_shard *sh, const char *name, const char *value, uint32_t id)
{
    uint64_t hn = str_hash(name);
    lname *ln = strmap_get(&sh->postings, name, hn);
    if (!ln)
        return;
    uint64_t hv = str_hash(value);
    plist *p = strmap_get(&ln->values, value, hv);
    if (!p)
        return;
    plist_del(p, id);
    if (p->n == 0) {
        strmap_del(&ln->values, value, hv);
        free(p->ids);
        free(p);
    }
    if (ln->values.n == 0) {
        strmap_del(&sh->postings, name, hn);
        strmap_free(&ln->values);
        free(ln);
    }
}

const lname *postings_name(const rw_shard *sh, const char *name)
{
    return strmap_get(&sh->postings, name, str_hash(name));
}

const plist *postings_get(const rw_shard *sh, const char *name, const char *value)
{
    const lname *ln = postings_name(sh, name);
    return ln ? strmap_get(&ln->values, value, str_hash(value)) : NULL;
}

/* ---- series ---- */

series *shard_series_lookup(rw_shard *sh, uint64_t hash, const rw_label *l, size_t n)
{
    if (!sh->nbuckets)
        return NULL;
    for (series *s = sh->buckets[hash & (sh->nbuckets - 1)]; s; s = s->hnext)
        if (s->hash == hash && rw_labels_equal(s->labels, s->nlabels, l, n))
            return s;
    return NULL;
}

static int buckets_grow(rw_shard *sh)
{
    size_t nb = sh->nbuckets ? sh->nbuckets * 2 : 1024;
    series **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        for (series *s = sh->buckets[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = nb;
    return 0;
}

static void series_free(rw_shard *sh, series *s)
{
    for (uint32_t i = 0; i < s->nlabels; i++) {
        if (s->labels[i].name)
            intern_put(&sh->strings, s->labels[i].name);
        if (s->labels[i].value)
            intern_put(&sh->strings, s->labels[i].value);
    }
    free(s->labels);
    chunk_enc_free(&s->head);
    for (uint32_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i].data);
    free(s->chunks);
    free(s);
}

series *shard_series_create(rw_shard *sh, uint32_t id, uint64_t hash, const rw_label *l,
                            size_t n)
{
    if (id == 0)
        id = sh->next_id;
    if (id == UINT32_MAX)
        return NULL;
    if (id >= sh->cap_id) {
        uint32_t nc = sh->cap_id ? sh->cap_id : 1024;
        while (nc <= id)
            nc = nc > UINT32_MAX / 2 ? UINT32_MAX : nc * 2;
        series **nb = realloc(sh->by_id, (size_t)nc * sizeof *nb);
        if (!nb)
            return NULL;
        memset(nb + sh->cap_id, 0, (size_t)(nc - sh->cap_id) * sizeof *nb);
        sh->by_id = nb;
        sh->cap_id = nc;
    }
    if (sh->by_id[id])
        return NULL; /* id taken: corrupt input */
    if ((sh->nseries + 1) > sh->nbuckets && buckets_grow(sh) < 0)
        return NULL;
    series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    chunk_enc_init(&s->head);
    s->id = id;
    s->hash = hash;
    s->labels = calloc(n ? n : 1, sizeof *s->labels);
    if (!s->labels) {
        free(s);
        return NULL;
    }
    s->nlabels = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        s->labels[i].name = intern_get(&sh->strings, l[i].name);
        s->labels[i].value = intern_get(&sh->strings, l[i].value);
        if (!s->labels[i].name || !s->labels[i].value) {
            series_free(sh, s);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (postings_add(sh, s->labels[i].name, s->labels[i].value, id) < 0) {
            for (size_t j = 0; j <= i; j++)
                postings_del(sh, s->labels[j].name, s->labels[j].value, id);
            series_free(sh, s);
            return NULL;
        }
    }
    sh->by_id[id] = s;
    s->hnext = sh->buckets[hash & (sh->nbuckets - 1)];
    sh->buckets[hash & (sh->nbuckets - 1)] = s;
    sh->nseries++;
    if (id >= sh->next_id)
        sh->next_id = id + 1;
    return s;
}

void shard_series_delete(rw_shard *sh, series *s)
{
    series **pp = &sh->buckets[s->hash & (sh->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    for (uint32_t i = 0; i < s->nlabels; i++)
        postings_del(sh, s->labels[i].name, s->labels[i].value, s->id);
    sh->by_id[s->id] = NULL;
    sh->nseries--;
    if (s->head.n) {
        sh->nheads--;
        sh->head_samples -= s->head.n;
    }
    sh->nchunks -= s->nchunks;
    series_free(sh, s);
}

void shard_index_free(rw_shard *sh)
{
    for (uint32_t i = 0; i < sh->cap_id; i++)
        if (sh->by_id[i])
            series_free(sh, sh->by_id[i]);
    free(sh->by_id);
    sh->by_id = NULL;
    sh->cap_id = 0;
    free(sh->buckets);
    sh->buckets = NULL;
    sh->nbuckets = sh->nseries = 0;
    STRMAP_EACH(&sh->postings, s) {
        lname *ln = s->val;
        STRMAP_EACH(&ln->values, v) {
            plist *p = v->val;
            free(p->ids);
            free(p);
        }
        strmap_free(&ln->values);
        free(ln);
    }
    strmap_free(&sh->postings);
    STRMAP_EACH(&sh->strings, s) free((char *)s->key);
    strmap_free(&sh->strings);
}
