/* test_store_chunk.c - the chunk codec (store/chunk.c): exact round trips of
 * special floats (NaN payloads incl. the stale marker, +-Inf, -0), big,
 * negative and irregular timestamps, single-sample and full chunks, and the
 * compressed size of typical scrape data; chunk_it_range() keeps exactly the
 * samples of its window, from the chunk's restart when the window starts
 * after it; an encoder in its owner's bytes moves out and back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "store/chunk.h"
#include "store/store.h"
#include "test.h"

static uint64_t bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* encodes n samples into one chunk, decodes, compares bit for bit */
static int roundtrip(const int64_t *t, const double *v, size_t n, size_t *bytes)
{
    chunk_enc e;
    chunk_enc_init(&e);
    for (size_t i = 0; i < n; i++)
        if (chunk_enc_append(&e, t[i], v[i]) < 0)
            return 0;
    size_t len = chunk_enc_len(&e);
    if (bytes)
        *bytes = len;
    /* decode from an exact-size copy so reading past the end is caught by ASan */
    uint8_t *copy = malloc(len);
    memcpy(copy, e.b, len);
    chunk_it it;
    int ok = chunk_it_init(&it, copy, len) == (int)n;
    int64_t ts;
    double vs;
    size_t i = 0;
    int r;
    while (ok && (r = chunk_it_next(&it, &ts, &vs)) == 1) {
        if (i >= n || ts != t[i] || bits(vs) != bits(v[i])) {
            fprintf(stderr, "  mismatch at %zu: t %lld/%lld v %016llx/%016llx\n", i,
                    (long long)ts, (long long)(i < n ? t[i] : 0), (unsigned long long)bits(vs),
                    (unsigned long long)(i < n ? bits(v[i]) : 0));
            ok = 0;
        }
        i++;
    }
    if (ok && (r != 0 || i != n))
        ok = 0;
    /* chunk_it_seek + chunk_it_range: the samples in [mint, maxt] and
     * nothing else, for the whole chunk, its edges and windows inside it */
    int64_t *rt = malloc((n ? n : 1) * sizeof *rt);
    double *rv = malloc((n ? n : 1) * sizeof *rv);
    for (size_t w = 0; ok && n && w < 7; w++) {
        size_t a = w * n / 7, b = a + (w % 3) * n / 5;
        if (b >= n)
            b = n - 1;
        int64_t mint = w == 0 ? INT64_MIN : t[a] - (int64_t)(w & 1);
        int64_t maxt = w == 0 ? INT64_MAX : t[b] + (int64_t)(w >> 1 & 1);
        chunk_it ri;
        long got = -1;
        if (chunk_it_init(&ri, copy, len) == (int)n) {
            /* from the restart when the window starts at or after it */
            chunk_it_seek(&ri, e.seek, mint);
            if (n > RW_CHUNK_SEEK_AT && mint >= t[RW_CHUNK_SEEK_AT])
                CHECK_INT(ri.i, RW_CHUNK_SEEK_AT);
            else
                CHECK_INT(ri.i, 0);
            got = chunk_it_range(&ri, mint, maxt, rt, rv);
        }
        long want = 0;
        for (size_t k = 0; k < n; k++) {
            if (t[k] < mint || t[k] > maxt)
                continue;
            if (want >= got || rt[want] != t[k] || bits(rv[want]) != bits(v[k])) {
                fprintf(stderr, "  range [%lld, %lld] mismatch at %zu\n", (long long)mint,
                        (long long)maxt, k);
                ok = 0;
                break;
            }
            want++;
        }
        if (ok && got != want) {
            fprintf(stderr, "  range [%lld, %lld]: %ld samples, want %ld\n", (long long)mint,
                    (long long)maxt, got, want);
            ok = 0;
        }
    }
    free(rt);
    free(rv);
    free(copy);
    chunk_enc_free(&e);
    return ok;
}

static void test_specials(void)
{
    double v[] = {0.0, -0.0, 1.0, NAN, rw_stale_nan(), INFINITY, -INFINITY,
                  from_bits(0x7ff8000000000001ULL), from_bits(0xfff0000000000001ULL),
                  5e-324, -1.7976931348623157e308, 42.5, rw_stale_nan(), rw_stale_nan(), 0.1};
    size_t n = sizeof v / sizeof v[0];
    int64_t t[sizeof v / sizeof v[0]];
    for (size_t i = 0; i < n; i++)
        t[i] = 1700000000000 + (int64_t)i * 15000;
    CHECK(roundtrip(t, v, n, NULL));
    /* the stale marker as the first and the only sample */
    double s1[] = {rw_stale_nan()};
    int64_t t1[] = {-5};
    CHECK(roundtrip(t1, s1, 1, NULL));
    double z[] = {-0.0};
    CHECK(roundtrip(t1, z, 1, NULL));
}

static void test_timestamps(void)
{
    int64_t t[] = {INT64_MIN, INT64_MIN + 1, -1000000000000LL, -1, 0, 1, 2, 1000, 1001,
                   4000000000000LL, 4000000000001LL, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
    size_t n = sizeof t / sizeof t[0];
    double v[sizeof t / sizeof t[0]];
    for (size_t i = 0; i < n; i++)
        v[i] = (double)i * 1.5;
    CHECK(roundtrip(t, v, n, NULL));
    /* irregular gaps exercising every delta-of-delta bucket */
    int64_t gaps[] = {15000, 15000, 15001, 14990, 15040, 20000, 5000, 1000000, 1, 70000000,
                      3, 5000000000LL, 7, 15000, 15000, 2, 9000000000000LL};
    size_t ng = sizeof gaps / sizeof gaps[0];
    int64_t t2[64];
    double v2[64];
    t2[0] = -123456789;
    v2[0] = 1;
    for (size_t i = 0; i < ng; i++) {
        t2[i + 1] = t2[i] + gaps[i];
        v2[i + 1] = (double)(i % 3);
    }
    CHECK(roundtrip(t2, v2, ng + 1, NULL));
}

static void test_full_and_patterns(void)
{
    enum { N = 200 };
    int64_t t[N];
    double v[N];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t[i] = 1700000000000 + (int64_t)i * 15000 + (int64_t)(x % 7) - 3;
        v[i] = from_bits(x); /* random bit patterns: worst case for XOR */
    }
    CHECK(roundtrip(t, v, N, NULL));
    for (size_t i = 0; i < N; i++)
        v[i] = (double)(i * 17) + 0.25; /* a counter */
    CHECK(roundtrip(t, v, N, NULL));

    /* constant series, 120 samples, regular: nearly 2 bits per sample */
    size_t bytes;
    for (size_t i = 0; i < 120; i++) {
        t[i] = 1700000000000 + (int64_t)i * 15000;
        v[i] = 1;
    }
    CHECK(roundtrip(t, v, 120, &bytes));
    CHECK_MSG(bytes < 50, "constant regular chunk took %zu bytes", bytes);
    /* constant value with +-3ms jitter: about one byte per sample */
    for (size_t i = 0; i < 120; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t[i] = 1700000000000 + (int64_t)i * 15000 + (int64_t)(x % 7) - 3;
    }
    CHECK(roundtrip(t, v, 120, &bytes));
    printf("constant jittered 15s chunk: %zu bytes for 120 samples (%.2f bytes/sample)\n", bytes,
           bytes / 120.0);
    CHECK_MSG(bytes < 140, "jittered constant chunk took %zu bytes", bytes);
}

/* int mode: integral values, beyond 2^53, negative, mixed with non-integral
 * values in one chunk (re-encoded as XOR), NaN/Inf after integers */
static void test_int_mode(void)
{
    enum { N = RW_CHUNK_MAX_SAMPLES };
    int64_t t[N];
    double v[N];
    size_t bytes;
    for (size_t i = 0; i < N; i++)
        t[i] = 1700000000000 + (int64_t)i * 15000 + (int64_t)(i * 7919 % 7) - 3;
    /* a counter with small increments: int mode, well under XOR's cost */
    for (size_t i = 0; i < N; i++)
        v[i] = 1000000.0 + (double)(i * i % 13) + (double)i * 4;
    CHECK(roundtrip(t, v, N, &bytes));
    {
        chunk_enc e;
        chunk_enc_init(&e);
        for (size_t i = 0; i < N; i++)
            chunk_enc_append(&e, t[i], v[i]);
        CHECK_INT(e.b[1] & RW_CHUNK_F_INT, RW_CHUNK_F_INT);
        CHECK_INT(e.b[1] & RW_CHUNK_F_SEEK, N > RW_CHUNK_SEEK_AT ? RW_CHUNK_F_SEEK : 0);
        chunk_enc_free(&e);
    }
    CHECK_MSG(bytes < N * 2, "integer counter chunk took %zu bytes", bytes);
    /* negative values, extremes of the exact range, huge jumps */
    double ext[] = {-5, -4, 0, 9007199254740992.0, -9007199254740992.0, 1, -1,
                    4503599627370496.0, 3, 3, 3, -7, 123456789012345.0, 0};
    size_t ne = sizeof ext / sizeof ext[0];
    CHECK(roundtrip(t, ext, ne, NULL));
    /* beyond 2^53 and -0 are not int-mode values: the chunk turns XOR */
    double big[] = {1, 2, 3, 18014398509481984.0, 4, -0.0, 5, 1e300};
    CHECK(roundtrip(t, big, sizeof big / sizeof big[0], NULL));
    double negz[] = {-0.0, 1, 2};
    CHECK(roundtrip(t, negz, 3, NULL));
    /* integral then non-integral at every position, then specials */
    for (size_t cut = 1; cut < 12; cut++) {
        double m[16];
        for (size_t i = 0; i < 16; i++)
            m[i] = i < cut ? (double)(i * 3) : (double)i + 0.5;
        m[15] = rw_stale_nan();
        CHECK(roundtrip(t, m, 16, NULL));
    }
    double sp[] = {7, 8, rw_stale_nan(), 9, INFINITY, 10, -INFINITY, NAN, 11};
    CHECK(roundtrip(t, sp, sizeof sp / sizeof sp[0], NULL));
    /* full chunk of integers followed by one float in the last position */
    for (size_t i = 0; i < N; i++)
        v[i] = (double)(i % 5);
    v[N - 1] = 0.1;
    CHECK(roundtrip(t, v, N, NULL));
}

/* the expected-interval timestamp coding: exact intervals, jitter, interval
 * changes, gaps in every escape bucket, non-second intervals */
static void test_ts_intervals(void)
{
    enum { N = 64 };
    int64_t t[N];
    double v[N];
    size_t bytes;
    for (size_t i = 0; i < N; i++)
        v[i] = 1;
    for (size_t i = 0; i < N; i++)
        t[i] = 1000 + (int64_t)i * 15000;
    CHECK(roundtrip(t, v, N, &bytes));
    CHECK_MSG(bytes <= 24, "exact 15s chunk took %zu bytes", bytes);
    int64_t gaps[] = {15003, 14997, 30001, 15000, 1500, 1502, 1498, 15000, 8191, 8300,
                      600000, 700000, 3000000000LL, 7, 7, 1, 1, 999, 1050, 60000};
    size_t ng = sizeof gaps / sizeof gaps[0];
    t[0] = -77;
    for (size_t i = 0; i < ng; i++)
        t[i + 1] = t[i] + gaps[i];
    CHECK(roundtrip(t, v, ng + 1, NULL));
    for (size_t i = 0; i < N; i++)
        t[i] = 5 + (int64_t)i * 1500 + (int64_t)(i % 3);
    CHECK(roundtrip(t, v, N, NULL));
}

static void test_corrupt(void)
{
    chunk_enc e;
    chunk_enc_init(&e);
    for (int i = 0; i < 50; i++)
        chunk_enc_append(&e, i * 1000, i * 0.37);
    size_t len = chunk_enc_len(&e);
    chunk_it it;
    int64_t t;
    double v;
    /* truncated: must end with -1, never read past */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, e.b, cut);
        int r = 0, k = 0;
        if (chunk_it_init(&it, b, cut) >= 0)
            while ((r = chunk_it_next(&it, &t, &v)) == 1)
                k++;
        CHECK(cut < RW_CHUNK_HDR || r == -1 || k == 50);
        int64_t rt[50];
        double rv[50];
        if (chunk_it_init(&it, b, cut) >= 0)
            CHECK(chunk_it_range(&it, INT64_MIN, INT64_MAX, rt, rv) == (k == 50 ? 50 : -1));
        free(b);
    }
    CHECK_INT(chunk_count(e.b, len), 50);
    chunk_enc_free(&e);
}

/* An encoder started in its owner's bytes (chunk_enc_init_in): it writes
 * there while the chunk fits, moves to malloc'd memory when it outgrows
 * them or leaves int mode, and goes back on chunk_enc_reset_in; the owner's
 * bytes are never freed (ASan: they are on the stack) and the samples come
 * back exactly wherever they were written. */
static void test_lent_bytes(void)
{
    uint8_t home[64];
    for (int xor_at = 0; xor_at < 2; xor_at++) {
        memset(home, 0, sizeof home);
        chunk_enc e;
        chunk_enc_init_in(&e, home, sizeof home);
        int64_t t[200];
        double v[200];
        size_t n = 0, moved_at = 0;
        for (; n < 200; n++) {
            t[n] = 1700000000000 + (int64_t)n * 15000 + (int64_t)(n % 7);
            /* integral, so int mode; with xor_at, a fraction at sample 5 */
            v[n] = xor_at && n >= 5 ? (double)n / 3 : (double)(n * n);
            CHECK(chunk_enc_append(&e, t[n], v[n]) == 0);
            if (!moved_at && e.b != home)
                moved_at = n + 1;
        }
        CHECK(moved_at > 1);
        if (xor_at)
            CHECK_INT(moved_at, 6); /* re-encoded in XOR mode: out of home */
        CHECK(!e.lent && e.b != home);
        size_t len = chunk_enc_len(&e);
        chunk_it it;
        CHECK_INT(chunk_it_init(&it, e.b, len), 200);
        int64_t ts;
        double vs;
        size_t i = 0;
        while (chunk_it_next(&it, &ts, &vs) == 1 && i < 200) {
            CHECK(ts == t[i] && bits(vs) == bits(v[i]));
            i++;
        }
        CHECK_INT(i, 200);
        /* back home, zeroed, and the next chunk is written there */
        chunk_enc_reset_in(&e, home, sizeof home);
        CHECK(e.lent && e.b == home && e.n == 0);
        for (size_t k = 0; k < 3; k++)
            CHECK(chunk_enc_append(&e, t[k], v[k]) == 0);
        CHECK(e.b == home);
        CHECK_INT(chunk_it_init(&it, home, chunk_enc_len(&e)), 3);
        for (size_t k = 0; k < 3; k++)
            CHECK(chunk_it_next(&it, &ts, &vs) == 1 && ts == t[k] && bits(vs) == bits(v[k]));
        chunk_enc_reset(&e); /* keeps the bytes it has: home */
        CHECK(e.lent && e.b == home);
        chunk_enc_free(&e);
    }
}

int main(void)
{
    RUN(test_specials);
    RUN(test_timestamps);
    RUN(test_full_and_patterns);
    RUN(test_int_mode);
    RUN(test_ts_intervals);
    RUN(test_corrupt);
    RUN(test_lent_bytes);
    TEST_DONE();
}
