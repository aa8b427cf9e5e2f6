/* test_ingest_cache.c - the series cache (ingest/series_cache.c) as a data
 * structure: what is put is found, keys depend on the seed (tenant,
 * settings generation), the size stays within the configured entries
 * whatever is put and the newest are kept, a table grown through sizes
 * that are not powers of two (by half) still finds every entry, and
 * lookups racing writers (no lock on the read side) never see a torn
 * entry. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ingest/ingest_int.h"
#include "test.h"

/* a value derived from the key, so a reader can tell a torn one */
static rw_in_cache_val val_of(rw_in_cache_key k)
{
    rw_in_cache_val v = {.hash = k.lo * 31 + k.hi, .ref = (uint32_t)(k.hi ^ (k.lo >> 7)) | 1,
                         .flags = (uint16_t)(k.lo & RW_IN_CACHE_FLAGS),
                         .aux = (uint16_t)(k.hi >> 17)};
    return v;
}

static rw_in_cache_key key_n(const rw_in_cache *c, uint64_t seed, uint64_t n)
{
    char raw[64];
    int len = snprintf(raw, sizeof raw, "\x0a\x10series-%llu", (unsigned long long)n);
    return rw_in_cache_key_of(c, seed, raw, (size_t)len);
}

static void test_put_get(void)
{
    rw_in_cache *c = rw_in_cache_new(1 << 16);
    CHECK(c != NULL);
    CHECK(rw_in_cache_new(0) == NULL); /* 0 = off */
    uint64_t s1 = rw_in_cache_seed(c, 1, ""), s2 = rw_in_cache_seed(c, 2, ""),
             s3 = rw_in_cache_seed(c, 1, "team-a");
    CHECK(s1 != s2 && s1 != s3);
    rw_in_cache_val v;
    for (uint64_t n = 0; n < 1000; n++) {
        rw_in_cache_key k = key_n(c, s1, n);
        CHECK(!rw_in_cache_get(c, k, &v));
        rw_in_cache_val w = val_of(k);
        rw_in_cache_put(c, k, 1, &w);
    }
    CHECK_INT(rw_in_cache_entries(c), 1000);
    int found = 0, other = 0;
    for (uint64_t n = 0; n < 1000; n++) {
        rw_in_cache_key k = key_n(c, s1, n);
        rw_in_cache_val w = val_of(k);
        if (rw_in_cache_get(c, k, &v) && v.hash == w.hash && v.ref == w.ref && v.flags == w.flags &&
            v.aux == w.aux)
            found++;
        /* the same bytes under another generation or tenant: not found */
        other += rw_in_cache_get(c, key_n(c, s2, n), &v) + rw_in_cache_get(c, key_n(c, s3, n), &v);
    }
    CHECK_INT(found, 1000);
    CHECK_INT(other, 0);
    /* put again: replaced in place, not added */
    rw_in_cache_key k = key_n(c, s1, 7);
    rw_in_cache_val w = {.hash = 1, .ref = 2, .flags = 3, .aux = 4};
    rw_in_cache_put(c, k, 1, &w);
    CHECK(rw_in_cache_get(c, k, &v) && v.ref == 2 && v.hash == 1 && v.flags == 3 && v.aux == 4);
    CHECK_INT(rw_in_cache_entries(c), 1000);
    rw_in_cache_free(c);
}

/* 200,000 entries: every stripe's table grows by half from 16 buckets to
 * 406 (16, 24, 36, 54, 81, 121, 181, 271, 406: none a power of two after
 * the first), and the entries are found with their values - all but at
 * most one in a thousand, whose two buckets and their entries' other
 * buckets were all full (placed greedily, without moving an entry to its
 * other bucket, 1-2 % were turned away). */
static void test_growth(void)
{
    enum { N = 200000 };
    rw_in_cache *c = rw_in_cache_new(1 << 22);
    uint64_t seed = rw_in_cache_seed(c, 1, "");
    for (uint64_t n = 0; n < N; n++) {
        rw_in_cache_key k = key_n(c, seed, n);
        rw_in_cache_val w = val_of(k);
        rw_in_cache_put(c, k, 1, &w);
    }
    size_t held = rw_in_cache_entries(c);
    CHECK_MSG(held <= N && held >= N - N / 1000, "%zu of %d entries held", held, N);
    int found = 0;
    for (uint64_t n = 0; n < N; n++) {
        rw_in_cache_key k = key_n(c, seed, n);
        rw_in_cache_val v, w = val_of(k);
        found += rw_in_cache_get(c, k, &v) && v.hash == w.hash && v.ref == w.ref;
    }
    CHECK_MSG((size_t)found == held, "%d of the %zu entries held found", found, held);
    rw_in_cache_free(c);
}

static void test_bounded(void)
{
    /* 256 stripes of one 4-way bucket: 1024 entries at most */
    rw_in_cache *c = rw_in_cache_new(1024);
    uint64_t s1 = rw_in_cache_seed(c, 1, ""), s2 = rw_in_cache_seed(c, 2, "");
    for (uint64_t n = 0; n < 100000; n++) {
        rw_in_cache_key k = key_n(c, s1, n);
        rw_in_cache_val w = val_of(k);
        rw_in_cache_put(c, k, 1, &w);
    }
    CHECK(rw_in_cache_entries(c) <= 1024);
    CHECK(rw_in_cache_entries(c) > 900);
    /* the newest entries are the ones kept (under a newer generation, as
       after a reload): of 500 put now, only those beyond 4 in one bucket
       go (about 17 when 256 buckets take them at random) */
    for (uint64_t n = 0; n < 500; n++) {
        rw_in_cache_key k = key_n(c, s2, n);
        rw_in_cache_val w = val_of(k);
        rw_in_cache_put(c, k, 2, &w);
    }
    int found = 0;
    rw_in_cache_val v;
    for (uint64_t n = 0; n < 500; n++)
        found += rw_in_cache_get(c, key_n(c, s2, n), &v);
    CHECK_MSG(found > 460, "found %d of 500", found);
    rw_in_cache_free(c);
}

/* ---- readers racing writers ---- */

typedef struct race {
    rw_in_cache *c;
    uint64_t seed;
    int id;
    long found, torn;
} race;

static void *writer(void *arg)
{
    race *r = arg;
    for (uint64_t i = 0; i < 200000; i++) {
        rw_in_cache_key k = key_n(r->c, r->seed, (i * 7919 + (uint64_t)r->id) % 50000);
        rw_in_cache_val w = val_of(k);
        rw_in_cache_put(r->c, k, (uint16_t)(i / 50000), &w);
    }
    return NULL;
}

static void *reader(void *arg)
{
    race *r = arg;
    for (uint64_t i = 0; i < 400000; i++) {
        rw_in_cache_key k = key_n(r->c, r->seed, (i * 104729 + (uint64_t)r->id) % 50000);
        rw_in_cache_val v, w = val_of(k);
        if (rw_in_cache_get(r->c, k, &v)) {
            r->found++;
            if (v.hash != w.hash || v.ref != w.ref || v.flags != w.flags || v.aux != w.aux)
                r->torn++;
        }
    }
    return NULL;
}

static void test_race(void)
{
    /* small enough to grow and to replace while the readers read */
    rw_in_cache *c = rw_in_cache_new(16384);
    uint64_t seed = rw_in_cache_seed(c, 1, "");
    race r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (race){.c = c, .seed = seed, .id = i};
        pthread_create(&th[i], NULL, i < 2 ? writer : reader, &r[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(r[2].torn + r[3].torn, 0);
    CHECK(r[2].found + r[3].found > 0);
    CHECK(rw_in_cache_entries(c) <= 16384);
    rw_in_cache_free(c);
}

int main(void)
{
    RUN(test_put_get);
    RUN(test_growth);
    RUN(test_bounded);
    RUN(test_race);
    TEST_DONE();
}
