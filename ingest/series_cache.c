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
 * and the settings alone (pipeline.c decides: not HA pairs, not kubelet or
 * KSM node series, the cluster label unchanged by the stages).
 *
 * Written by hand, because it is hot and small: a fixed number of stripes,
 * each an array of 4-way buckets, growing by doubling up to the configured
 * size (memory follows the active series, and is bounded by
 * ingest.series_cache_size whatever the senders send: the tables a stripe
 * outgrew are kept until the end, at most as large as its last); when
 * full, an entry of an older generation, else a rotating way, is replaced.
 * Writers take the stripe's mutex; readers take no lock (a lookup per
 * series of every request): a sequence count, odd while a writer changes
 * the stripe, tells them to read again, and every field is read and written
 * atomically (relaxed), so a reader never sees a torn entry as valid. */
#include <stdlib.h>
#include <string.h>
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
    uint16_t flags; /* the caller's, and VALID */
    uint16_t gen;
} ent;

#define MAX_TABLES 40 /* doublings from 16 buckets: more than 2^40 entries */

typedef struct stripe {
    pthread_mutex_t mu;   /* writers */
    uint32_t seq;         /* odd while a writer changes t, nb or an entry */
    unsigned victim;      /* rotating way to replace when a bucket is full */
    ent *t;               /* nb buckets of WAYS entries */
    size_t nb, maxb;      /* buckets now, and at most */
    size_t n;             /* valid entries */
    ent *old[MAX_TABLES]; /* tables outgrown: a reader may still be in one */
    size_t nold;
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
    size_t maxb = max_entries / STRIPES / WAYS, b = 1;
    while (b * 2 <= maxb)
        b *= 2;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&c->s[i].mu, NULL);
        c->s[i].maxb = b; /* a power of two, at least one bucket */
    }
    return c;
}

void rw_in_cache_free(rw_in_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&c->s[i].mu);
        free(c->s[i].t);
        for (size_t k = 0; k < c->s[i].nold; k++)
            free(c->s[i].old[k]);
    }
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

static inline stripe *stripe_of(rw_in_cache *c, rw_in_cache_key k)
{
    return &c->s[k.hi >> 56];
}

static inline ent *bucket_of(const stripe *s, uint64_t lo)
{
    return &s->t[(lo & (s->nb - 1)) * WAYS];
}

void rw_in_cache_prefetch(rw_in_cache *c, rw_in_cache_key k)
{
    const stripe *s = stripe_of(c, k);
    size_t nb = __atomic_load_n(&s->nb, __ATOMIC_ACQUIRE);
    const ent *t = __atomic_load_n(&s->t, __ATOMIC_ACQUIRE);
    if (t && nb) {
        const ent *b = &t[(k.lo & (nb - 1)) * WAYS];
        __builtin_prefetch(b);
        __builtin_prefetch(b + WAYS - 1);
    }
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
        const ent *t = __atomic_load_n(&s->t, __ATOMIC_ACQUIRE);
        int found = 0;
        if (t && nb) {
            const ent *b = &t[(k.lo & (nb - 1)) * WAYS];
            for (int w = 0; w < WAYS && !found; w++) {
                uint16_t flags = LD(b[w].flags);
                if (LD(b[w].lo) == k.lo && LD(b[w].hi) == k.hi && (flags & VALID)) {
                    out->hash = LD(b[w].hash);
                    out->ref = LD(b[w].ref);
                    out->flags = (uint16_t)(flags & ~VALID);
                    found = 1;
                }
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LD(s->seq) == seq)
            return found;
    }
}

/* Doubles a stripe's table (entries a full bucket cannot take are dropped:
 * it is a cache). -1 without memory: the table stays as it was. Under the
 * mutex, within write_begin / write_end. */
static int grow(stripe *s)
{
    if (s->nold == MAX_TABLES)
        return -1;
    size_t nb = s->nb ? s->nb * 2 : 16;
    if (nb > s->maxb)
        nb = s->maxb;
    ent *t = calloc(nb * WAYS, sizeof *t);
    if (!t)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < s->nb * WAYS; i++) {
        const ent *e = &s->t[i];
        if (!(e->flags & VALID))
            continue;
        ent *b = &t[(e->lo & (nb - 1)) * WAYS];
        for (int w = 0; w < WAYS; w++)
            if (!(b[w].flags & VALID)) {
                b[w] = *e; /* published below, with the table */
                n++;
                break;
            }
    }
    if (s->t)
        s->old[s->nold++] = s->t;
    /* the table (and its entries) before its size: a reader that reads
       the size first never indexes a table smaller than that size */
    __atomic_store_n(&s->t, t, __ATOMIC_RELEASE);
    __atomic_store_n(&s->nb, nb, __ATOMIC_RELEASE);
    s->n = n;
    return 0;
}

void rw_in_cache_put(rw_in_cache *c, rw_in_cache_key k, uint16_t gen, const rw_in_cache_val *v)
{
    stripe *s = stripe_of(c, k);
    pthread_mutex_lock(&s->mu);
    write_begin(s);
    /* grow at three quarters full, while the size allows */
    if ((!s->t || (s->n + 1) * 4 > s->nb * WAYS * 3) && s->nb < s->maxb && grow(s) < 0 && !s->t) {
        write_end(s);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    ent *b = bucket_of(s, k.lo);
    int slot = -1, stale = -1;
    for (int w = 0; w < WAYS; w++) {
        if (b[w].lo == k.lo && b[w].hi == k.hi && (b[w].flags & VALID)) {
            slot = w; /* the same key again (its ref changed) */
            break;
        }
        if (slot < 0 && !(b[w].flags & VALID))
            slot = w;
        else if (stale < 0 && b[w].gen != gen)
            stale = w;
    }
    if (slot < 0)
        slot = stale >= 0 ? stale : (int)(s->victim++ % WAYS);
    if (!(b[slot].flags & VALID))
        s->n++;
    ST(b[slot].lo, k.lo);
    ST(b[slot].hi, k.hi);
    ST(b[slot].hash, v->hash);
    ST(b[slot].ref, v->ref);
    ST(b[slot].flags, (uint16_t)(v->flags | VALID));
    ST(b[slot].gen, gen);
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
