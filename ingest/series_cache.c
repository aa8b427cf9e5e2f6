/* series_cache.c - what the write path learned about a series, found again
 * from the bytes the sender encodes its labels in.
 *
 * Remote-write sends every sample with its whole label set, and a sender
 * encodes a series' labels in the same bytes request after request. Without
 * this cache every series of every request is validated, goes through the
 * cleaning stages, is hashed, and the store compares its labels string by
 * string with the stored series' - about half of the server's CPU per
 * sample. With it, a series seen before is one hash of its label bytes and
 * one probe here: the entry gives the hash of its final label set (after
 * the tenant label, relabeling and the inventory) and the store's id of the
 * series, which the store checks instead of the labels.
 *
 * The key is a 128-bit XXH3 of those bytes with a secret made at random
 * per process, folded with a seed per settings generation (a reload makes every entry a miss: relabel
 * rules, the inventory and the limits may have changed) and per tenant.
 * Entries are only made for series whose outcome follows from their labels
 * and the settings alone, or, for the series the kubelet dedup judges, from
 * their node and instance labels as sent, judged again for every request
 * (pipeline.c decides: not HA pairs, not KSM node series, the labels the
 * stages read unchanged by the stages).
 *
 * Written by hand, because it is hot and small: a fixed number of stripes,
 * each an array of 4-way buckets (two candidate buckets per key), growing
 * by half up to the configured size (memory follows the active series -
 * by doubling, a million series filled 48 % of a 64 MB table, now 72 % of
 * a 45 MB one - and is bounded by ingest.series_cache_size whatever the
 * senders send). Each stripe's table grows in place, in address space
 * reserved for its largest size at the start (not resident until written):
 * a reader is never left in a table that went away, and a growth touches
 * only the new pages, not every page of a new table (growing to a million
 * series faulted in three times the final table, at ~10 us a fault on a
 * virtual machine: 820 ns a new series, now 510). When full, an entry of
 * an older generation, else a rotating way, is replaced.
 * Writers take the stripe's mutex; readers take no lock (a lookup per
 * series of every request): a sequence count, odd while a writer changes
 * the stripe, tells them to read again, and every field is read and written
 * atomically (relaxed), so a reader never sees a torn entry as valid. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "ingest_int.h"

#define STRIPES 256
#define WAYS 4
#define VALID 0x8000u

typedef struct ent {
    uint64_t lo, hi;
    uint64_t hash;
    uint32_t ref;
    uint16_t flags; /* VALID, the generation's low bits (GEN_*), the caller's */
    uint16_t aux;   /* the caller's */
} ent;

#define GEN_SHIFT 11
#define GEN_MASK 0x7800u

typedef struct stripe {
    pthread_mutex_t mu;   /* writers */
    uint32_t seq;         /* odd while a writer changes nb or an entry */
    unsigned victim;      /* rotating way to replace when a bucket is full */
    ent *t;               /* nb buckets of WAYS entries, room for maxb */
    size_t nb, maxb;      /* buckets now, and at most */
    size_t n;             /* valid entries */
} __attribute__((aligned(64))) stripe;

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* A writer's change of the stripe, between begin and end. */
static void write_begin(stripe *s)
{
    ST(s->seq, s->seq + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(stripe *s)
{
    __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

struct rw_in_cache {
    unsigned char secret[XXH3_SECRET_DEFAULT_SIZE]; /* random, per process */
    uint64_t seed;
    size_t max_entries;
    void *tables;         /* every stripe's largest table */
    size_t tables_bytes;
    stripe s[STRIPES];
};

rw_in_cache *rw_in_cache_new(size_t max_entries)
{
    if (max_entries == 0)
        return NULL;
    rw_in_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix[6] = {(uint64_t)ts.tv_nsec, (uint64_t)ts.tv_sec, (uint64_t)getpid(),
                       (uint64_t)(uintptr_t)c};
    if (getrandom(&mix[4], 2 * sizeof mix[4], GRND_NONBLOCK) < 0)
        mix[4] = mix[5] = 0; /* the clock and the address still differ per process */
    XXH3_generateSecret(c->secret, sizeof c->secret, mix, sizeof mix);
    c->seed = XXH3_64bits_withSecret(mix, sizeof mix, c->secret, sizeof c->secret);
    c->max_entries = max_entries;
    size_t maxb = max_entries / STRIPES / WAYS;
    maxb = maxb ? maxb : 1; /* at least one bucket */
    /* reserved, not committed: a page counts once written (zeroed: no
       entry valid) */
    size_t stride = maxb * WAYS * sizeof(ent);
    c->tables_bytes = stride * STRIPES;
    c->tables = mmap(NULL, c->tables_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->tables == MAP_FAILED) {
        free(c);
        return NULL;
    }
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&c->s[i].mu, NULL);
        c->s[i].t = (ent *)((char *)c->tables + (size_t)i * stride);
        c->s[i].maxb = maxb;
    }
    return c;
}

void rw_in_cache_free(rw_in_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->s[i].mu);
    munmap(c->tables, c->tables_bytes);
    free(c);
}

uint64_t rw_in_cache_seed(const rw_in_cache *c, uint64_t gen, const char *tenant)
{
    return c->seed ^ (gen * 0x9E3779B97F4A7C15ULL) ^ XXH3_64bits(tenant, strlen(tenant));
}

/* The secret (a seed would make XXH3 derive a secret on every call for
 * inputs over 240 bytes: most label sets), then the request's seed folded
 * into both halves. */
rw_in_cache_key rw_in_cache_key_of(const rw_in_cache *c, uint64_t seed, const void *raw,
                                   size_t len)
{
    XXH128_hash_t h = XXH3_128bits_withSecret(raw, len, c->secret, sizeof c->secret);
    rw_in_cache_key k = {h.low64 ^ seed, h.high64 ^ (seed * 0xC2B2AE3D27D4EB4FULL)};
    return k;
}

/* 2.0's series, by their label strings: each length before its string
 * (no two label sets give the same bytes), under a seed of their own (nor
 * the same key as a 1.0 span). */
rw_in_cache_key rw_in_cache_key_labels(const rw_in_cache *c, uint64_t seed, const rw_label *l,
                                       const uint32_t *lens, size_t n)
{
    unsigned char buf[2048];
    size_t len = 0;
    XXH3_state_t st;
    int streaming = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            const char *str = j ? l[i].value : l[i].name;
            uint32_t sl = lens[2 * i + j];
            if (!streaming && len + 4 + sl > sizeof buf) {
                XXH3_128bits_reset_withSecret(&st, c->secret, sizeof c->secret);
                XXH3_128bits_update(&st, buf, len);
                streaming = 1;
            }
            if (streaming) {
                XXH3_128bits_update(&st, &sl, 4);
                XXH3_128bits_update(&st, str, sl);
            } else {
                memcpy(buf + len, &sl, 4);
                memcpy(buf + len + 4, str, sl);
                len += 4 + sl;
            }
        }
    XXH128_hash_t h = streaming ? XXH3_128bits_digest(&st)
                                : XXH3_128bits_withSecret(buf, len, c->secret, sizeof c->secret);
    seed ^= 0x2f5e1d3c4b6a7988ULL; /* 2.0's */
    rw_in_cache_key k = {h.low64 ^ seed, h.high64 ^ (seed * 0xC2B2AE3D27D4EB4FULL)};
    return k;
}

static inline stripe *stripe_of(rw_in_cache *c, rw_in_cache_key k)
{
    return &c->s[k.hi >> 56];
}

/* A key's two buckets (two choices: a bucket overflows only when both are
 * full, which at the load the table grows at practically never happens;
 * with one, a few percent of the series of a full table would keep pushing
 * each other out). The stripe took hi's top byte: the second bucket takes
 * bits below it. Any table size: 32 bits of the key times the size, the
 * high word (a multiply, not a mask). */
static inline size_t bucket1(uint64_t lo, size_t nb)
{
    return (size_t)(((lo & 0xffffffffu) * nb) >> 32) * WAYS;
}

static inline size_t bucket2(uint64_t hi, size_t nb)
{
    return (size_t)((((hi >> 20) & 0xffffffffu) * nb) >> 32) * WAYS;
}

void rw_in_cache_prefetch(rw_in_cache *c, rw_in_cache_key k)
{
    const stripe *s = stripe_of(c, k);
    size_t nb = __atomic_load_n(&s->nb, __ATOMIC_ACQUIRE);
    const ent *t = s->t;
    if (nb) {
        __builtin_prefetch(t + bucket1(k.lo, nb));
        __builtin_prefetch(t + bucket1(k.lo, nb) + WAYS - 1);
        __builtin_prefetch(t + bucket2(k.hi, nb));
        __builtin_prefetch(t + bucket2(k.hi, nb) + WAYS - 1);
    }
}

/* The key's entry in bucket b, read without the lock (atomically), or 0. */
static inline int read_bucket(const ent *b, rw_in_cache_key k, rw_in_cache_val *out)
{
    for (int w = 0; w < WAYS; w++) {
        uint16_t flags = LD(b[w].flags);
        if (LD(b[w].lo) == k.lo && LD(b[w].hi) == k.hi && (flags & VALID)) {
            out->hash = LD(b[w].hash);
            out->ref = LD(b[w].ref);
            out->flags = (uint16_t)(flags & RW_IN_CACHE_FLAGS);
            out->aux = LD(b[w].aux);
            return 1;
        }
    }
    return 0;
}

int rw_in_cache_get(rw_in_cache *c, rw_in_cache_key k, rw_in_cache_val *out)
{
    stripe *s = stripe_of(c, k);
    for (;;) {
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) { /* a writer is at it: wait for it to end */
            pthread_mutex_lock(&s->mu);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        size_t nb = __atomic_load_n(&s->nb, __ATOMIC_ACQUIRE);
        const ent *t = s->t;
        int found = nb &&
                    (read_bucket(t + bucket1(k.lo, nb), k, out) ||
                     read_bucket(t + bucket2(k.hi, nb), k, out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LD(s->seq) == seq)
            return found;
    }
}

/* Copies entry from into to, field by field atomically (a reader may be
 * reading to: it reads again, the sequence count has moved). */
static void ent_copy(ent *to, const ent *from)
{
    ST(to->lo, LD(from->lo));
    ST(to->hi, LD(from->hi));
    ST(to->hash, LD(from->hash));
    ST(to->ref, LD(from->ref));
    ST(to->aux, LD(from->aux));
    ST(to->flags, LD(from->flags));
}

/* A free way of the key's two buckets (the emptier first), or NULL. */
static ent *free_way(ent *t, size_t nb, uint64_t lo, uint64_t hi)
{
    ent *b[2] = {t + bucket1(lo, nb), t + bucket2(hi, nb)};
    int nfree[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (int w = 0; w < WAYS; w++)
            nfree[i] += !(b[i][w].flags & VALID);
    int first = nfree[1] > nfree[0];
    for (int i = 0; i < 2; i++) {
        ent *x = b[(first + i) & 1];
        for (int w = 0; w < WAYS; w++)
            if (!(x[w].flags & VALID))
                return &x[w];
    }
    return NULL;
}

/* A free way for the key, made when both its buckets are full by moving one
 * of their entries to its other bucket where that has one (a step of cuckoo
 * hashing: greedily, a table filled to the three quarters it grows at
 * turned away 1-2 % of its keys, each then a miss at every request and an
 * eviction of another). The move is under the writer's sequence count like
 * any change: a reader meanwhile reads again. NULL: none. */
static ent *make_way(ent *t, size_t nb, uint64_t lo, uint64_t hi)
{
    ent *x = free_way(t, nb, lo, hi);
    if (x)
        return x;
    ent *b[2] = {t + bucket1(lo, nb), t + bucket2(hi, nb)};
    for (int i = 0; i < 2; i++)
        for (int w = 0; w < WAYS; w++) {
            ent *e = &b[i][w];
            ent *one = t + bucket1(LD(e->lo), nb), *two = t + bucket2(LD(e->hi), nb);
            ent *alt = one == b[i] ? two : one;
            if (alt == b[i])
                continue;
            for (int v = 0; v < WAYS; v++) {
                if (LD(alt[v].flags) & VALID)
                    continue;
                ent_copy(&alt[v], e);
                ST(e->flags, 0);
                return e;
            }
        }
    return NULL;
}

/* Grows a stripe's table by half, in place: its entries are taken out,
 * the table made empty at its new size and they are put back (an entry
 * for which no way can be made is dropped: it is a cache). A reader
 * meanwhile reads again (the sequence count moves), and whatever size it
 * read indexes memory reserved for the stripe. -1 without memory: the
 * table stays as it was. Under the mutex, within write_begin / write_end. */
static int grow(stripe *s)
{
    size_t nb = s->nb ? s->nb + s->nb / 2 : 16;
    if (nb > s->maxb)
        nb = s->maxb;
    ent *keep = NULL;
    if (s->n && !(keep = malloc(s->n * sizeof *keep)))
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < s->nb * WAYS; i++)
        if (s->t[i].flags & VALID) {
            keep[n++] = s->t[i];
            ST(s->t[i].flags, 0);
        }
    __atomic_store_n(&s->nb, nb, __ATOMIC_RELEASE);
    s->n = 0;
    for (size_t i = 0; i < n; i++) {
        ent *x = make_way(s->t, nb, keep[i].lo, keep[i].hi);
        if (x) {
            ent_copy(x, &keep[i]);
            s->n++;
        }
    }
    free(keep);
    return 0;
}

void rw_in_cache_put(rw_in_cache *c, rw_in_cache_key k, uint16_t gen, const rw_in_cache_val *v)
{
    stripe *s = stripe_of(c, k);
    pthread_mutex_lock(&s->mu);
    write_begin(s);
    /* grow at three quarters full, while the size allows */
    if ((s->n + 1) * 4 > s->nb * WAYS * 3 && s->nb < s->maxb && grow(s) < 0 && !s->nb) {
        write_end(s);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    ent *b[2] = {s->t + bucket1(k.lo, s->nb), s->t + bucket2(k.hi, s->nb)};
    ent *slot = NULL, *stale = NULL;
    for (int i = 0; i < 2 && !slot; i++)
        for (int w = 0; w < WAYS; w++)
            if (b[i][w].lo == k.lo && b[i][w].hi == k.hi && (b[i][w].flags & VALID)) {
                slot = &b[i][w]; /* the same key again (its ref changed) */
                break;
            } else if (!stale && (b[i][w].flags & VALID) &&
                       (b[i][w].flags & GEN_MASK) != ((gen << GEN_SHIFT) & GEN_MASK)) {
                stale = &b[i][w];
            }
    if (!slot)
        slot = make_way(s->t, s->nb, k.lo, k.hi);
    if (!slot) /* both full: an older generation's entry, else a rotating one */
        slot = stale ? stale : &b[s->victim & 1][(s->victim >> 1) % WAYS];
    s->victim++;
    if (!(slot->flags & VALID))
        s->n++;
    ST(slot->lo, k.lo);
    ST(slot->hi, k.hi);
    ST(slot->hash, v->hash);
    ST(slot->ref, v->ref);
    ST(slot->flags, (uint16_t)((v->flags & RW_IN_CACHE_FLAGS) | ((gen << GEN_SHIFT) & GEN_MASK) |
                               VALID));
    ST(slot->aux, v->aux);
    write_end(s);
    pthread_mutex_unlock(&s->mu);
}

size_t rw_in_cache_entries(rw_in_cache *c)
{
    size_t n = 0;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&c->s[i].mu);
        n += c->s[i].n;
        pthread_mutex_unlock(&c->s[i].mu);
    }
    return n;
}
