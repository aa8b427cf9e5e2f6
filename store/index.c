/* index.c - the in-memory index of a shard: interned label strings (each
 * with its symbol id, its name in table `symbols`), the series hash map
 * (open addressing, the 64-bit label-set hash inline in the slot; the label
 * set is then compared exactly against the series' contiguous copy, so two
 * series are never confused),
 * the id table and the postings (label name -> value -> sorted series ids).
 * Appends (shard_append.c) and recovery find and create series here; selects
 * (shard_read.c) intersect postings; retention deletes series. Every function
 * expects the shard's mu held. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "store_int.h"
#include "core/text.h"

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

/* ---- interning + symbols ---- */

static int u32_push(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        uint32_t *p = realloc(*v, nc * sizeof *p);
        if (!p)
            return -1;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* Makes (*arr)[id] addressable in an id-indexed array of pointers (symbols,
 * series): grows it by doubling, new slots zero. -1 when out of memory. */
static int id_array_reserve(void **arr, uint32_t *cap, uint32_t id, size_t elem)
{
    if (id < *cap)
        return 0;
    uint32_t nc = *cap ? *cap : 1024;
    while (nc <= id)
        nc = nc > UINT32_MAX / 2 ? UINT32_MAX : nc * 2;
    char *na = realloc(*arr, (size_t)nc * elem);
    if (!na)
        return -1;
    memset(na + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = na;
    *cap = nc;
    return 0;
}

int shard_note_new_symbol(rw_shard *sh, uint32_t id)
{
    return u32_push(&sh->newsym, &sh->nnewsym, &sh->capnewsym, id);
}

const char *intern_get(rw_shard *sh, const char *s, uint32_t id)
{
    strmap *m = &sh->strings;
    uint64_t h = str_hash(s);
    strmap_slot *sl = strmap_find(m, s, h);
    if (sl) {
        sl->val = (void *)((uintptr_t)sl->val + 1);
        return sl->key;
    }
    int fresh = id == 0;
    if (fresh)
        id = sh->next_sym;
    if (id == 0 || id == UINT32_MAX)
        return NULL;
    if (id_array_reserve((void **)&sh->syms, &sh->cap_sym, id, sizeof *sh->syms) < 0)
        return NULL;
    if (sh->syms[id])
        return NULL; /* id taken: corrupt input */
    size_t len = strlen(s);
    if (len > UINT32_MAX)
        return NULL;
    char *blk = malloc(8 + len + 1);
    if (!blk)
        return NULL;
    uint32_t len32 = (uint32_t)len;
    memcpy(blk, &len32, 4);
    memcpy(blk + 4, &id, 4);
    char *c = memcpy(blk + 8, s, len + 1);
    if (strmap_put(m, c, h, (void *)(uintptr_t)1) < 0 ||
        (fresh && u32_push(&sh->newsym, &sh->nnewsym, &sh->capnewsym, id) < 0)) {
        strmap_del(m, c, h);
        free(blk);
        return NULL;
    }
    sh->syms[id] = c;
    if (id >= sh->next_sym)
        sh->next_sym = id + 1;
    return c;
}

void intern_put(rw_shard *sh, const char *s)
{
    strmap *m = &sh->strings;
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
    uint32_t id = intern_id(k);
    strmap_del(m, s, h);
    if (id < sh->cap_sym)
        sh->syms[id] = NULL;
    /* its row goes with the next retention transaction; if this list cannot
     * grow, the row stays until the next open purges unreferenced symbols */
    u32_push(&sh->deadsym, &sh->ndeadsym, &sh->capdeadsym, id);
    free(k - 8);
}

uint32_t symbol_id(const rw_shard *sh, const char *s)
{
    (void)sh;
    return intern_id(s); /* a series' label strings are the interned ones */
}

/* ---- postings ---- */

/* First position in the sorted id list whose id is >= id. */
static uint32_t plist_lower_bound(const plist *p, uint32_t id)
{
    uint32_t lo = 0, hi = (uint32_t)p->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

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
    uint32_t lo = plist_lower_bound(p, id);
    if (lo < p->n && p->ids[lo] == id)
        return 0;
    memmove(p->ids + lo + 1, p->ids + lo, (p->n - lo) * sizeof *p->ids);
    p->ids[lo] = id;
    p->n++;
    return 0;
}

static void plist_del(plist *p, uint32_t id)
{
    uint32_t lo = plist_lower_bound(p, id);
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

/* The series lookup runs once per received sample (remote-write sends every
 * sample with its full label set), so it is written by hand for few cache
 * lines per hit: table slot (hash inline), then one allocation holding the
 * series and its label array, whose strings are the shard's interned ones
 * (a few thousand distinct names and values, shared by every series: they
 * stay in cache, and a million series do not each carry a copy). */

/* Slot index from the hash: Fibonacci hashing on all 64 bits, because the
 * low bits are the same for every series of a shard (shard = hash % n). */
static inline size_t slot_of(const rw_shard *sh, uint64_t hash)
{
    return (size_t)((hash * 0x9E3779B97F4A7C15ULL) >> sh->slot_shift);
}

/* Exact label set comparison against a series' (interned) strings. With the
 * lengths of l's strings, each string is a length test and an inline
 * compare, not a strcmp call: this runs for every series of every write,
 * under the shard lock. */
static inline int labels_same(const series *s, const rw_label *l, const uint32_t *lens, size_t n)
{
    if (s->nlabels != n)
        return 0;
    const rw_label *x = series_labels(s);
    if (lens) {
        for (size_t i = 0; i < n; i++)
            if (intern_len(x[i].name) != lens[2 * i] || intern_len(x[i].value) != lens[2 * i + 1] ||
                !rw_bytes_eq(x[i].name, l[i].name, lens[2 * i]) ||
                !rw_bytes_eq(x[i].value, l[i].value, lens[2 * i + 1]))
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(x[i].name, l[i].name) || strcmp(x[i].value, l[i].value))
            return 0;
    return 1;
}

/* The probe of a lookup by labels. */
static inline series *probe(const rw_shard *sh, uint64_t hash, const rw_label *l,
                            const uint32_t *lens, size_t n)
{
    if (!sh->nslots)
        return NULL;
    size_t mask = sh->nslots - 1;
    uint32_t tag = (uint32_t)(hash >> 32);
    for (size_t i = slot_of(sh, hash);; i = (i + 1) & mask) {
        const sslot *sl = &sh->slots[i];
        if (!sl->id)
            return NULL;
        if (sl->tag == tag) {
            series *s = sh->by_id[sl->id];
            if (s->hash == hash && labels_same(s, l, lens, n))
                return s;
        }
    }
}

series *shard_series_lookup(rw_shard *sh, uint64_t hash, const rw_label *l, const uint32_t *lens,
                            size_t n)
{
    return probe(sh, hash, l, lens, n);
}

series *shard_series_lookup_ref(rw_shard *sh, uint64_t hash, uint32_t id)
{
    /* by_id holds exactly the series of the slots, by id: one load
       instead of a probe of the (larger, colder) slots */
    series *s = id && id < sh->cap_id ? sh->by_id[id] : NULL;
    return s && s->hash == hash ? s : NULL;
}

void shard_series_prefetch_slot(const rw_shard *sh, uint64_t hash, uint32_t id)
{
    if (id && id < sh->cap_id)
        __builtin_prefetch(&sh->by_id[id]);
    else if (sh->nslots)
        __builtin_prefetch(&sh->slots[slot_of(sh, hash)]);
}

void shard_series_prefetch(const rw_shard *sh, uint64_t hash, uint32_t id)
{
    const series *s = NULL;
    if (id && id < sh->cap_id) {
        s = sh->by_id[id];
    } else if (sh->nslots) {
        const sslot *sl = &sh->slots[slot_of(sh, hash)];
        s = sl->id && sl->tag == (uint32_t)(hash >> 32) ? sh->by_id[sl->id] : NULL;
    }
    if (s) {
        __builtin_prefetch(s);
        __builtin_prefetch((const char *)s + 64);
        __builtin_prefetch((const char *)s + 128);
    }
}

static void slot_insert(sslot *slots, size_t mask, unsigned shift, const series *s)
{
    size_t i = (size_t)((s->hash * 0x9E3779B97F4A7C15ULL) >> shift);
    while (slots[i].id)
        i = (i + 1) & mask;
    slots[i] = (sslot){.id = s->id, .tag = (uint32_t)(s->hash >> 32)};
}

static int slots_resize(rw_shard *sh, size_t nn)
{
    unsigned shift = (unsigned)(64 - __builtin_ctzll(nn));
    sslot *ns = calloc(nn, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < sh->nslots; i++)
        if (sh->slots[i].id)
            slot_insert(ns, nn - 1, shift, sh->by_id[sh->slots[i].id]);
    free(sh->slots);
    sh->slots = ns;
    sh->nslots = nn;
    sh->slot_shift = shift;
    return 0;
}

static int slots_grow(rw_shard *sh)
{
    return slots_resize(sh, sh->nslots ? sh->nslots * 2 : 2048);
}

int shard_index_reserve(rw_shard *sh, uint32_t max_id, size_t nseries)
{
    if (max_id && id_array_reserve((void **)&sh->by_id, &sh->cap_id, max_id, sizeof *sh->by_id) < 0)
        return -1;
    size_t nn = sh->nslots ? sh->nslots : 2048;
    while (nseries * 2 > nn)
        nn *= 2;
    return nn > sh->nslots ? slots_resize(sh, nn) : 0;
}

/* Backward-shift delete (no tombstones, so lookups stay short). */
static void slot_remove(rw_shard *sh, series *s)
{
    size_t mask = sh->nslots - 1, i = slot_of(sh, s->hash);
    while (sh->slots[i].id && sh->slots[i].id != s->id)
        i = (i + 1) & mask;
    if (!sh->slots[i].id)
        return;
    for (size_t j = (i + 1) & mask; sh->slots[j].id; j = (j + 1) & mask) {
        size_t home = slot_of(sh, sh->by_id[sh->slots[j].id]->hash);
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            sh->slots[i] = sh->slots[j];
            i = j;
        }
    }
    sh->slots[i] = (sslot){0};
}

/* Releases the interned copies of the first `k` labels. */
static void labels_unintern(rw_shard *sh, const series *s, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        intern_put(sh, series_labels(s)[i].name);
        intern_put(sh, series_labels(s)[i].value);
    }
}

void series_free_data(rw_shard *sh, series *s)
{
    (void)sh;
    chunk_enc_free(&s->head);
    for (uint32_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i].data);
    free(s->chunks);
    s->chunks = NULL;
    s->nchunks = s->capchunks = 0;
    ooo_free(s);
}

static void series_free(rw_shard *sh, series *s, int unintern)
{
    if (unintern)
        labels_unintern(sh, s, s->nlabels);
    series_free_data(sh, s);
    free(s);
}

series *shard_series_create(rw_shard *sh, uint32_t id, uint64_t hash, const rw_label *l,
                            size_t n, const uint32_t *symids)
{
    if (id == 0)
        id = sh->next_id;
    if (id == UINT32_MAX)
        return NULL;
    if (id_array_reserve((void **)&sh->by_id, &sh->cap_id, id, sizeof *sh->by_id) < 0)
        return NULL;
    if (sh->by_id[id])
        return NULL; /* id taken: corrupt input */
    if ((sh->nseries + 1) * 2 > sh->nslots && slots_grow(sh) < 0)
        return NULL;
    series *s = calloc(1, sizeof *s + n * sizeof(rw_label) + SERIES_HEAD_BYTES);
    if (!s)
        return NULL;
    s->pmint = INT64_MAX;
    s->pmaxt = INT64_MIN;
    s->id = id;
    s->hash = hash;
    s->nlabels = (uint32_t)n;
    chunk_enc_init_in(&s->head, series_head_home(s), SERIES_HEAD_BYTES);
    /* the labels are the interned strings (the postings keys, shared by
     * every series with that name or value) */
    for (size_t i = 0; i < n; i++) {
        const char *in = intern_get(sh, l[i].name, symids ? symids[2 * i] : 0);
        const char *iv = in ? intern_get(sh, l[i].value, symids ? symids[2 * i + 1] : 0) : NULL;
        int fail = !iv || postings_add(sh, in, iv, id) < 0;
        if (fail) {
            /* postings first: their keys are the interned strings */
            for (size_t j = 0; j < i; j++)
                postings_del(sh, series_labels(s)[j].name, series_labels(s)[j].value, id);
            if (iv) /* postings_add may have added before failing */
                postings_del(sh, in, iv, id);
            if (in)
                intern_put(sh, in);
            if (iv)
                intern_put(sh, iv);
            labels_unintern(sh, s, (uint32_t)i);
            series_free(sh, s, 0);
            return NULL;
        }
        series_labels(s)[i].name = in;
        series_labels(s)[i].value = iv;
    }
    sh->by_id[id] = s;
    slot_insert(sh->slots, sh->nslots - 1, sh->slot_shift, s);
    sh->nseries++;
    atomic_fetch_add(&sh->store->nseries, 1);
    if (id >= sh->next_id)
        sh->next_id = id + 1;
    return s;
}

void shard_series_delete(rw_shard *sh, series *s)
{
    slot_remove(sh, s);
    for (uint32_t i = 0; i < s->nlabels; i++)
        postings_del(sh, series_labels(s)[i].name, series_labels(s)[i].value, s->id);
    sh->by_id[s->id] = NULL;
    sh->nseries--;
    atomic_fetch_sub(&sh->store->nseries, 1);
    if (s->head.n) {
        sh->nheads--;
        sh->head_samples -= s->head.n;
    }
    for (uint32_t i = 0; i < s->nchunks; i++)
        sh->head_samples -= s->chunks[i].n;
    sh->head_chunks -= s->nchunks;
    if (s->ooo)
        sh->ooo_samples -= s->ooo->n;
    series_free(sh, s, 1);
}

void shard_index_free(rw_shard *sh)
{
    for (uint32_t i = 0; i < sh->cap_id; i++)
        if (sh->by_id[i])
            series_free(sh, sh->by_id[i], 0);
    free(sh->by_id);
    sh->by_id = NULL;
    sh->cap_id = 0;
    free(sh->slots);
    sh->slots = NULL;
    sh->nslots = sh->nseries = 0;
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
    STRMAP_EACH(&sh->strings, s) free((char *)s->key - 8);
    strmap_free(&sh->strings);
    free(sh->syms);
    sh->syms = NULL;
    sh->cap_sym = 0;
    free(sh->newsym);
    free(sh->deadsym);
    sh->newsym = sh->deadsym = NULL;
    sh->nnewsym = sh->capnewsym = sh->ndeadsym = sh->capdeadsym = 0;
}
