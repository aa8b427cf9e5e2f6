/* test_store_read.c - rw_store_read_samples(), the batched read path the
 * query engine uses: series refs from rw_store_select are stable (equal in
 * a labels-only and a full select, and across calls), the samples read by
 * ref in batches equal those of a full select over windows before, across
 * and after persisted chunks, uncommitted chunks and the head (stale markers
 * included), RW_SELECT_LAST equals the newest sample of a full select, the
 * max_samples cap fails with RW_LIMIT, and a series deleted by retention
 * between the select and the read yields no samples (also once a series
 * with the same labels exists again). After a start with the database file
 * out of the page cache, a read that misses the cache reads the 512 KiB
 * around the missed page (store/vfs.c) and returns the same samples. A
 * block of more series than the index encoder takes in one piece (its
 * streamed zstd frame, store/block.c) reads back whole after a reopen.
 * Readers at once (the workers of a range query) each get what one reader
 * alone gets. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/labels.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define NSER 24
#define STEP 15000

static rw_store *open_store(const char *dir, int nshards, int64_t retention)
{
    rw_store_opts o = {.dir = (char *)dir, .nshards = nshards, .retention_ms = retention};
    rw_err e;
    rw_err_init(&e);
    rw_store *s = rw_store_open(&o, &e);
    if (!s)
        fprintf(stderr, "open: %s\n", e.msg);
    return s;
}

/* One series of 3 labels with its samples. */
static void append_one(rw_store *st, const rw_label *l, const rw_sample *s, size_t n)
{
    rw_append_series as = {l, 3, rw_labels_hash(l, 3), s, n};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err e;
    rw_err_init(&e);
    CHECK_MSG(rw_store_append(st, &as, 1, &res, &e) == RW_OK, "append: %s", e.msg);
}

/* Series i: job="j", inst="<i>", n samples from t0; series 3 has a stale
 * marker in the middle, series 5 ends early. */
static void append_series(rw_store *st, const char *job, int i, int64_t t0, size_t n)
{
    char inst[16];
    snprintf(inst, sizeof inst, "i%02d", i);
    rw_label l[3] = {{"__name__", "m"}, {"inst", inst}, {"job", job}};
    rw_sample *s = malloc(n * sizeof *s);
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (i == 5 && k > n / 3)
            break;
        s[m].t = t0 + (int64_t)k * STEP + (i % 3); /* a little jitter */
        s[m].v = (i == 3 && k == n / 2) ? rw_stale_nan() : (double)(k * (size_t)(i + 1)) + 0.25;
        m++;
    }
    append_one(st, l, s, m);
    free(s);
}

static size_t select_job(rw_store *st, const char *job, int64_t mint, int64_t maxt, int flags,
                         rw_arena *a, rw_series_data **out)
{
    rw_matcher m;
    rw_err e;
    rw_err_init(&e);
    rw_matcher_init(&m, RW_MATCH_EQ, "job", job, &e);
    size_t n = 0;
    rw_rc rc = rw_store_select(st, &m, 1, mint, maxt, flags, 0, a, out, &n, &e);
    CHECK_MSG(rc == RW_OK, "select: %s", e.msg);
    rw_matcher_free(&m);
    return rc == RW_OK ? n : 0;
}

static int same_samples(const rw_series_data *x, const rw_series_data *y)
{
    if (x->n != y->n)
        return 0;
    for (size_t k = 0; k < x->n; k++)
        if (x->t[k] != y->t[k] || memcmp(&x->v[k], &y->v[k], sizeof(double)) != 0)
            return 0;
    return 1;
}

/* Reads [mint, maxt] by ref in batches of `batch` and compares with a full
 * select (which leaves out series without samples in range). */
static void compare_window(rw_store *st, rw_series_data *refs, size_t nrefs, int64_t mint,
                           int64_t maxt, int flags, size_t batch)
{
    rw_arena *a = rw_arena_new(0, 0), *scratch = rw_arena_new(0, 0);
    rw_series_data *full;
    size_t nfull = select_job(st, "a", mint, maxt, flags, a, &full);
    size_t f = 0, total = 0, with = 0;
    for (size_t i = 0; i < nrefs; i += batch) {
        size_t n = nrefs - i < batch ? nrefs - i : batch;
        rw_err e;
        rw_err_init(&e);
        size_t dec = 0;
        rw_arena_reset(scratch);
        CHECK_MSG(rw_store_read_samples(st, refs + i, n, mint, maxt, flags, 0, scratch, &dec,
                                        &e) == RW_OK,
                  "read: %s", e.msg);
        size_t sum = 0;
        for (size_t k = 0; k < n; k++) {
            rw_series_data *r = &refs[i + k];
            sum += r->n;
            if (!r->n)
                continue;
            with++;
            CHECK_MSG(f < nfull, "window [%lld, %lld]: more series by ref than selected",
                      (long long)mint, (long long)maxt);
            if (f >= nfull)
                break;
            CHECK(rw_labels_equal(r->labels, r->nlabels, full[f].labels, full[f].nlabels));
            CHECK_INT(r->ref, full[f].ref);
            CHECK_MSG(same_samples(r, &full[f]), "window [%lld, %lld] flags %d series %zu: "
                      "%zu samples by ref, %zu selected", (long long)mint, (long long)maxt, flags,
                      i + k, r->n, full[f].n);
            f++;
        }
        CHECK_INT(dec, sum);
        total += sum;
    }
    CHECK_INT(with, nfull);
    CHECK_MSG(total > 0 || nfull == 0, "window has samples");
    rw_arena_free(a);
    rw_arena_free(scratch);
}

static void test_refs_and_windows(void)
{
    char *dir = test_mkdtemp("store_read");
    rw_store *st = open_store(dir, 3, 0);
    if (!st)
        return;
    const int64_t t0 = 1700000000000;
    const size_t n = 1000; /* several completed chunks per series, and a head */
    for (int i = 0; i < NSER; i++)
        append_series(st, "a", i, t0, n / 2);
    rw_err e;
    rw_err_init(&e);
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* persist what is completed */
    for (int i = 0; i < NSER; i++)               /* more: uncommitted chunks + heads */
        append_series(st, "a", i, t0 + (int64_t)(n / 2) * STEP, n / 2);
    append_series(st, "b", 0, t0, n);

    rw_arena *a = rw_arena_new(0, 0);
    int64_t end = t0 + (int64_t)n * STEP;
    rw_series_data *refs, *refs2, *full;
    size_t nrefs = select_job(st, "a", t0, end, RW_SELECT_LABELS_ONLY, a, &refs);
    CHECK_INT(nrefs, NSER);
    size_t nrefs2 = select_job(st, "a", t0, end, RW_SELECT_LABELS_ONLY, a, &refs2);
    size_t nfull = select_job(st, "a", t0, end, 0, a, &full);
    CHECK_INT(nrefs2, nrefs);
    CHECK_INT(nfull, nrefs);
    for (size_t i = 0; i < nrefs && i < nrefs2 && i < nfull; i++) {
        CHECK(refs[i].n == 0 && refs[i].t == NULL);
        CHECK_INT(refs[i].ref, refs2[i].ref);
        CHECK_INT(refs[i].ref, full[i].ref);
        for (size_t j = 0; j < i; j++)
            CHECK(refs[i].ref != refs[j].ref);
    }

    const int64_t w[][2] = {
        {t0, end},                                       /* everything */
        {t0 - 100000, t0 + 10 * STEP},                   /* the start */
        {t0 + 90 * STEP, t0 + 250 * STEP},               /* across two chunks */
        {t0 + 470 * STEP, t0 + 730 * STEP},              /* across the first head */
        {t0 + 130 * STEP + 1, t0 + 131 * STEP},          /* one sample or none */
        {t0 + 990 * STEP, end + 100000},                 /* the head */
        {t0 + 249 * STEP, t0 + 251 * STEP + 2},          /* the stale marker of i03 */
        {end + 100000, end + 200000},                    /* after all data */
    };
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        compare_window(st, refs, nrefs, w[k][0], w[k][1], 0, 5);
        compare_window(st, refs, nrefs, w[k][0], w[k][1], 0, NSER);
        compare_window(st, refs, nrefs, w[k][0], w[k][1], RW_SELECT_LAST, 7);
    }

    /* max_samples caps what one call decodes */
    rw_arena *s = rw_arena_new(0, 0);
    size_t dec = 0;
    CHECK_INT(rw_store_read_samples(st, refs, nrefs, t0, end, 0, 100, s, &dec, &e), RW_LIMIT);
    CHECK_INT(rw_store_read_samples(st, refs, 2, t0, end, 0, 2 * n, s, &dec, &e), RW_OK);
    CHECK_INT(dec, 2 * n);

    /* a ref from another store's select (unknown shard / id) reads nothing */
    rw_series_data bogus = refs[0];
    bogus.ref = (uint64_t)99 << 32 | 7;
    CHECK_INT(rw_store_read_samples(st, &bogus, 1, t0, end, 0, 0, s, &dec, &e), RW_OK);
    CHECK_INT(bogus.n, 0);
    bogus.ref = (uint64_t)(uint32_t)refs[0].ref + 1000000;
    CHECK_INT(rw_store_read_samples(st, &bogus, 1, t0, end, 0, 0, s, &dec, &e), RW_OK);
    CHECK_INT(bogus.n, 0);

    rw_arena_free(s);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

static void test_retention_between_calls(void)
{
    char *dir = test_mkdtemp("store_read_ret");
    const int64_t hour = 3600 * 1000;
    rw_store *st = open_store(dir, 2, hour);
    if (!st)
        return;
    const int64_t t0 = 1700000000000;
    for (int i = 0; i < 6; i++)
        append_series(st, "a", i, t0, 200);
    rw_arena *a = rw_arena_new(0, 0), *s = rw_arena_new(0, 0);
    rw_series_data *refs;
    size_t nrefs = select_job(st, "a", t0, t0 + 10 * hour, RW_SELECT_LABELS_ONLY, a, &refs);
    CHECK_INT(nrefs, 6);
    rw_err e;
    rw_err_init(&e);
    size_t dec = 0;
    CHECK_INT(rw_store_read_samples(st, refs, nrefs, t0, t0 + 10 * hour, 0, 0, s, &dec, &e),
              RW_OK);
    CHECK(dec > 0);

    /* newer data for series 0 only: retention drops series 1..5 entirely */
    append_series(st, "a", 0, t0 + 5 * hour, 10);
    CHECK_INT(rw_store_maintain(st, &e), RW_OK);
    CHECK_INT(rw_store_read_samples(st, refs, nrefs, t0, t0 + 10 * hour, 0, 0, s, &dec, &e),
              RW_OK);
    CHECK_INT(refs[0].n, 10); /* only its new samples are left */
    for (size_t i = 1; i < nrefs; i++)
        CHECK_INT(refs[i].n, 0);
    CHECK_INT(dec, 10);
    CHECK_INT(rw_store_read_samples(st, refs, nrefs, t0, t0 + 10 * hour, RW_SELECT_LAST, 0, s,
                                    &dec, &e),
              RW_OK);
    CHECK_INT(refs[0].n, 1);
    CHECK_INT(refs[1].n, 0);

    /* the same labels again: a new series, the old ref still reads nothing */
    append_series(st, "a", 1, t0 + 5 * hour, 10);
    CHECK_INT(rw_store_read_samples(st, refs, nrefs, t0, t0 + 10 * hour, 0, 0, s, &dec, &e),
              RW_OK);
    CHECK_INT(refs[1].n, 0);
    rw_series_data *now;
    size_t nnow = select_job(st, "a", t0, t0 + 10 * hour, RW_SELECT_LABELS_ONLY, a, &now);
    CHECK_INT(nnow, 2);
    if (nnow == 2) {
        CHECK_INT(now[0].ref, refs[0].ref);
        CHECK(now[1].ref != refs[1].ref);
        CHECK_INT(rw_store_read_samples(st, now, nnow, t0, t0 + 10 * hour, 0, 0, s, &dec, &e),
                  RW_OK);
        CHECK_INT(now[1].n, 10);
    }
    rw_arena_free(s);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

/* A read that wants most parts of a block scans the block's rows in one
 * range; one that wants a few reads them one by one: both must give the
 * same samples, also when retention has not touched anything and when some
 * parts of the range belong to series not selected. */
static void test_scan_vs_point(void)
{
    enum { N = 120 };
    char *dir = test_mkdtemp("rwstore-read");
    rw_store *st = open_store(dir, 1, 0);
    for (int i = 0; i < N; i++)
        append_series(st, i % 2 ? "odd" : "even", i, 1000000, 300);
    rw_err e;
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* all of it into one block */
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *all;
    size_t nall = select_job(st, "even", INT64_MIN, INT64_MAX, 0, a, &all); /* 60 of 120 parts */
    CHECK_INT(nall, N / 2);
    int ok = 1;
    for (size_t k = 0; k < nall; k++) {
        rw_matcher m[2];
        rw_matcher_init(&m[0], RW_MATCH_EQ, "job", "even", &e);
        rw_matcher_init(&m[1], RW_MATCH_EQ, "inst", rw_labels_get(all[k].labels, all[k].nlabels, "inst"), &e);
        rw_series_data *one;
        size_t n1 = 0;
        ok &= rw_store_select(st, m, 2, INT64_MIN, INT64_MAX, 0, 0, a, &one, &n1, &e) == RW_OK &&
              n1 == 1 && same_samples(&one[0], &all[k]) && all[k].n > 0;
        rw_matcher_free(&m[0]);
        rw_matcher_free(&m[1]);
    }
    CHECK(ok);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

/* Readers running at once: each reads every series again and again, as
 * the workers of a range query do, and must get what one reader alone
 * gets - a shard whose reader connection the other holds is read after
 * the others (shard_read.c), never skipped. */
typedef struct conc_reader {
    rw_store *st;
    const rw_series_data *refs, *want;
    size_t nrefs;
    int64_t mint, maxt;
    int bad, reads;
} conc_reader;

static void *conc_read(void *arg)
{
    conc_reader *c = arg;
    rw_series_data *mine = malloc(c->nrefs * sizeof *mine);
    rw_arena *a = rw_arena_new(0, 0);
    for (int r = 0; r < 40 && mine && a; r++) {
        memcpy(mine, c->refs, c->nrefs * sizeof *mine);
        rw_arena_reset(a);
        rw_err e;
        rw_err_init(&e);
        size_t dec = 0;
        if (rw_store_read_samples(c->st, mine, c->nrefs, c->mint, c->maxt, 0, 0, a, &dec, &e) !=
            RW_OK) {
            c->bad++;
            continue;
        }
        for (size_t k = 0; k < c->nrefs; k++)
            c->bad += !same_samples(&mine[k], &c->want[k]) || mine[k].n == 0;
        c->reads++;
    }
    rw_arena_free(a);
    free(mine);
    return NULL;
}

static void test_concurrent_readers(void)
{
    char *dir = test_mkdtemp("store_read_conc");
    rw_store *st = open_store(dir, 4, 0);
    if (!st)
        return;
    const int64_t t0 = 1700000000000;
    for (int i = 0; i < 64; i++)
        append_series(st, "a", i, t0, 600);
    rw_err e;
    rw_err_init(&e);
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* most of it in blocks */
    rw_arena *a = rw_arena_new(0, 0);
    int64_t end = t0 + 600 * STEP;
    rw_series_data *refs, *want;
    size_t nrefs = select_job(st, "a", t0, end, RW_SELECT_LABELS_ONLY, a, &refs);
    CHECK_INT(nrefs, 64);
    want = rw_arena_alloc(a, nrefs * sizeof *want);
    memcpy(want, refs, nrefs * sizeof *want);
    size_t dec = 0;
    CHECK_INT(rw_store_read_samples(st, want, nrefs, t0, end, 0, 0, a, &dec, &e), RW_OK);
    CHECK(dec > 64 * 100);
    conc_reader c[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (conc_reader){st, refs, want, nrefs, t0, end, 0, 0};
        CHECK_INT(pthread_create(&th[i], NULL, conc_read, &c[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(c[i].bad == 0 && c[i].reads == 40, "reader %d: %d reads, %d differ", i,
                  c[i].reads, c[i].bad);
    }
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

/* Pages of the file in the page cache, or -1. */
static long resident_pages(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    long pg = sysconf(_SC_PAGESIZE);
    size_t npg = (size_t)((sb.st_size + pg - 1) / pg);
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *vec = malloc(npg);
    long n = -1;
    if (m != MAP_FAILED && vec && mincore(m, (size_t)sb.st_size, vec) == 0) {
        n = 0;
        for (size_t i = 0; i < npg; i++)
            n += vec[i] & 1;
    }
    if (m != MAP_FAILED)
        munmap(m, (size_t)sb.st_size);
    free(vec);
    close(fd);
    return n;
}

/* Drops the file's pages from the page cache. */
static void evict(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Read-around (store/vfs.c): a store reopened with its database out of the
 * page cache; one series' read misses the cache and brings the 512 KiB
 * around the missed page in, not only the pages it reads; the samples
 * equal those read before. */
static void test_read_around(void)
{
    enum { N = 2000, NS = 720 };
    char *dir = test_mkdtemp("rwstore-ra");
    rw_store *st = open_store(dir, 1, 0);
    rw_sample *s = malloc(NS * sizeof *s);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        char inst[16];
        snprintf(inst, sizeof inst, "i%04d", i);
        rw_label l[3] = {{"__name__", "m"}, {"inst", inst}, {"job", "ra"}};
        for (int k = 0; k < NS; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* values that do not compress */
            s[k] = (rw_sample){1000000 + (int64_t)k * STEP, (double)(x >> 11) / 7.0};
        }
        append_one(st, l, s, NS);
    }
    free(s);
    rw_err e;
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* into a block on disk */
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", "i1000", &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    CHECK_INT(rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &before, &nb, &e), RW_OK);
    rw_store_close(st);

    char path[512];
    snprintf(path, sizeof path, "%s/shard-0.db", dir);
    st = open_store(dir, 1, 0);
    evict(path);
    long r0 = resident_pages(path);
    if (r0 < 0 || r0 > 64) {
        printf("  (skipped: the page cache of %s cannot be dropped here: %ld pages stay)\n", path,
               r0);
    } else {
        CHECK_INT(rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &after, &na, &e),
                  RW_OK);
        long r1 = resident_pages(path);
        long want = (512 << 10) / sysconf(_SC_PAGESIZE);
        CHECK_MSG(r1 - r0 >= want, "pages cached by one series' read: %ld -> %ld (want +%ld)", r0,
                  r1, want);
        CHECK(nb == 1 && na == 1 && before[0].n == NS && same_samples(&before[0], &after[0]));
    }
    rw_matcher_free(&m);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

/* 10,000 series in one block: its index goes through the zstd stream in
 * three pieces; after a reopen every series reads back its own samples. */
static void test_large_index(void)
{
    enum { N = 10000, NS = 4 };
    char *dir = test_mkdtemp("rwstore-bigidx");
    rw_store *st = open_store(dir, 1, 0);
    for (int i = 0; i < N; i++) {
        char inst[16];
        snprintf(inst, sizeof inst, "i%05d", i);
        rw_label l[3] = {{"__name__", i % 3 ? "m" : "n"}, {"inst", inst}, {"job", "big"}};
        rw_sample s[NS];
        for (int k = 0; k < NS; k++) /* each series its own start and values */
            s[k] = (rw_sample){1000000 + (int64_t)(i % 97) * 1000 + (int64_t)k * STEP,
                               (double)i * 10 + k + (i % 7 ? 0 : 0.5)};
        append_one(st, l, s, NS);
    }
    rw_err e;
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* one block */
    rw_store_close(st);
    st = open_store(dir, 1, 0);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *got = NULL;
    size_t n = select_job(st, "big", INT64_MIN, INT64_MAX, 0, a, &got);
    CHECK_MSG(n == N, "series read back: %zu of %d", n, N);
    int bad = 0;
    for (size_t j = 0; j < n; j++) {
        const char *inst = rw_labels_get(got[j].labels, got[j].nlabels, "inst");
        int i = inst ? atoi(inst + 1) : -1;
        int ok = i >= 0 && got[j].n == NS;
        for (int k = 0; ok && k < NS; k++)
            ok = got[j].t[k] == 1000000 + (int64_t)(i % 97) * 1000 + (int64_t)k * STEP &&
                 got[j].v[k] == (double)i * 10 + k + (i % 7 ? 0 : 0.5);
        bad += !ok;
    }
    CHECK_MSG(bad == 0, "%d series read back wrong", bad);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_large_index);
    RUN(test_read_around);
    RUN(test_scan_vs_point);
    RUN(test_refs_and_windows);
    RUN(test_retention_between_calls);
    RUN(test_concurrent_readers);
    TEST_DONE();
}
