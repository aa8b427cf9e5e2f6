/* test_store_compact.c - compaction (store/compact.c): runs of small blocks
 * are merged into one block and every sample reads back the same - before
 * and after the merge, after a reopen, with stale markers, integer and float
 * values; a sample written again at an existing timestamp (out of order)
 * keeps winning over the older one once merged; a run whose series have
 * samples in a later block within the run's range is left alone; the merged
 * blocks' rows are gone from the database; a short retention keeps blocks
 * from being merged across more than a tenth of it. Flushed and merged
 * blocks alike hold their parts in metric name order (store/partorder.c):
 * the even series are "m_even", the odd ones "m_odd", created alternately,
 * and every block's rows hold all of m_even's parts before m_odd's; with
 * 150 names created out of their order (more than the order's first tables
 * hold), a block's parts follow the names, then the series ids. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/labels.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define NSER 24
#define WIN 7200000LL   /* one flush per window of data */
#define STEP 60000      /* 120 samples per series per window */
#define DENSE_STEP 3000 /* 2400 per series: a block that is not small */
#define NO_WINDOW (-1)

typedef struct fleet {
    char inst[NSER][16];
    rw_label l[NSER][2];
    uint64_t hash[NSER];
} fleet;

static void fleet_init(fleet *f)
{
    for (int i = 0; i < NSER; i++) {
        snprintf(f->inst[i], sizeof f->inst[i], "s%d", i);
        f->l[i][0] = (rw_label){"__name__", i % 2 ? "m_odd" : "m_even"};
        f->l[i][1] = (rw_label){"inst", f->inst[i]};
        f->hash[i] = rw_labels_hash(f->l[i], 2);
    }
}

static double stale(void)
{
    uint64_t b = 0x7ff0000000000002ULL;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* The scenario: windows [0, nwin), window `dense` sampled every DENSE_STEP;
 * series 5 has a stale marker at its 11th sample of window 3; with `ooo`,
 * series 0's sample at OOO_T is written again (value OOO_V) together with
 * window `ooo_with`'s data. */
#define OOO_T (2 * WIN + 5 * STEP)
#define OOO_V 12345.5

typedef struct scen {
    int nwin, dense, ooo, ooo_with;
} scen;

static int step_of(const scen *s, int w) { return w == s->dense ? DENSE_STEP : STEP; }

static double val(int i, int64_t t)
{
    if (i == 5 && t == 3 * WIN + 10 * STEP)
        return stale();
    return i % 2 ? (double)t / 7.0 + i : (double)(t / 1000) * 3 + i;
}

static rw_rc append_window(rw_store *st, fleet *f, const scen *sc, int w)
{
    int step = step_of(sc, w);
    size_t per = (size_t)(WIN / step);
    rw_sample *smp = calloc(per + 1, sizeof *smp);
    rw_rc rc = RW_OK;
    for (int i = 0; i < NSER && rc == RW_OK; i++) {
        size_t n = 0;
        for (size_t k = 0; k < per; k++) {
            int64_t t = (int64_t)w * WIN + (int64_t)k * step;
            smp[n++] = (rw_sample){t, val(i, t)};
        }
        rw_append_series as = {.labels = f->l[i], .nlabels = 2, .hash = f->hash[i],
                               .samples = smp, .nsamples = n};
        rw_append_result r = {0};
        rw_err e;
        rw_err_init(&e);
        rc = rw_store_append(st, &as, 1, &r, &e);
        if (rc != RW_OK || r.samples_written != n)
            fprintf(stderr, "append window %d series %d: %s (%llu of %zu written)\n", w, i,
                    e.msg, (unsigned long long)r.samples_written, n);
        if (rc == RW_OK && r.samples_written != n)
            rc = RW_INTERNAL;
    }
    if (rc == RW_OK && sc->ooo && w == sc->ooo_with) {
        rw_sample o = {OOO_T, OOO_V};
        rw_append_series as = {.labels = f->l[0], .nlabels = 2, .hash = f->hash[0],
                               .samples = &o, .nsamples = 1};
        rw_append_result r = {0};
        rw_err e;
        rw_err_init(&e);
        rc = rw_store_append(st, &as, 1, &r, &e);
        if (rc == RW_OK && r.samples_written != 1)
            rc = RW_INTERNAL;
    }
    free(smp);
    return rc;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, 8) == 0; }

/* Series i reads back exactly windows [0, nwin) of the scenario. */
static int check_series(rw_store *st, fleet *f, const scen *sc, int nwin, int i)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", f->inst[i], &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0;
    int ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK &&
             n == 1;
    rw_matcher_free(&m);
    size_t k = 0;
    for (int w = 0; ok && w < nwin; w++) {
        int step = step_of(sc, w);
        for (int64_t t = (int64_t)w * WIN; ok && t < (int64_t)(w + 1) * WIN; t += step, k++) {
            double want = val(i, t);
            if (i == 0 && sc->ooo && sc->ooo_with < nwin && t == OOO_T)
                want = OOO_V;
            if (k >= out[0].n || out[0].t[k] != t || !same_bits(out[0].v[k], want)) {
                fprintf(stderr, "series %d sample %zu: %lld %g, want %lld %g\n", i, k,
                        k < out[0].n ? (long long)out[0].t[k] : -1LL,
                        k < out[0].n ? out[0].v[k] : 0.0, (long long)t, want);
                ok = 0;
            }
        }
    }
    if (ok && out[0].n != k) {
        fprintf(stderr, "series %d: %zu samples, want %zu\n", i, out[0].n, k);
        ok = 0;
    }
    rw_arena_free(a);
    return ok;
}

static int check_all(rw_store *st, fleet *f, const scen *sc, int nwin)
{
    int ok = 1;
    for (int i = 0; i < NSER; i++)
        ok &= check_series(st, f, sc, nwin, i);
    return ok;
}

static rw_store *open_dir(const char *dir, int nshards, int64_t retention_ms)
{
    rw_store_opts o = {.dir = (char *)dir, .nshards = nshards, .retention_ms = retention_ms,
                       .ooo_window_ms = 30LL * WIN};
    rw_err e;
    rw_err_init(&e);
    rw_store *s = rw_store_open(&o, &e);
    if (!s)
        fprintf(stderr, "open: %s\n", e.msg);
    return s;
}

/* sum over the shards of one integer query */
static long long db_int(const char *dir, int nshards, const char *sql)
{
    long long total = 0;
    for (int k = 0; k < nshards; k++) {
        char p[512];
        snprintf(p, sizeof p, "%s/shard-%d.db", dir, k);
        sqlite3 *db;
        sqlite3_stmt *q;
        if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
            return -1;
        if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW)
                total += sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        } else {
            total = -1000000;
        }
        sqlite3_close(db);
    }
    return total;
}

/* Whether every block of a one-shard store holds its parts in name order:
 * series ids follow creation (first id: the smallest in table series), so
 * even offsets are m_even, odd ones m_odd; m_even's parts come first, each
 * name's by id. */
static int parts_in_name_order(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    sqlite3 *db;
    sqlite3_stmt *q;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return 0;
    int ok = sqlite3_prepare_v2(db,
                                "SELECT b.id, p.sid, (SELECT min(id) FROM series) FROM blocks b "
                                "JOIN parts p ON p.id BETWEEN b.parts_lo AND b.parts_hi "
                                "ORDER BY b.id, p.id",
                                -1, &q, NULL) == SQLITE_OK;
    long long block = -1, pkey = -1, rows = 0;
    while (ok && sqlite3_step(q) == SQLITE_ROW) {
        long long b = sqlite3_column_int64(q, 0), sid = sqlite3_column_int64(q, 1);
        long long key = ((sid - sqlite3_column_int64(q, 2)) % 2) * 1000000 + sid;
        if (b == block && key <= pkey) {
            fprintf(stderr, "block %lld: series %lld's part after a part it should precede\n", b,
                    sid);
            ok = 0;
        }
        block = b;
        pkey = key;
        rows++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return ok && rows > 0;
}

/* Writes the scenario window by window, each flushed into a block by
 * rw_store_maintain (which also compacts), checking everything after each;
 * closes, reopens and checks again. Returns the number of blocks; *span
 * (if given) gets the longest time range of one. */
static long long run(const scen *sc, int nshards, int64_t retention_ms, long long *span)
{
    char *dir = test_mkdtemp("compact");
    if (!dir)
        return -1;
    fleet f;
    fleet_init(&f);
    rw_store *st = open_dir(dir, nshards, retention_ms);
    CHECK(st != NULL);
    if (!st)
        return -1;
    int ok = 1;
    for (int w = 0; w < sc->nwin && ok; w++) {
        rw_err e;
        rw_err_init(&e);
        ok = append_window(st, &f, sc, w) == RW_OK && rw_store_maintain(st, &e) == RW_OK;
        CHECK_MSG(ok, "window %d: %s", w, e.msg);
        if (ok)
            ok = check_all(st, &f, sc, w + 1);
        CHECK_MSG(ok, "window %d reads back wrong", w);
    }
    rw_store_close(st);
    /* every part row belongs to a listed block: the merged ones are gone */
    CHECK(db_int(dir, nshards, "SELECT count(*) FROM parts") ==
          db_int(dir, nshards, "SELECT sum(nparts) FROM blocks"));
    long long blocks = db_int(dir, nshards, "SELECT count(*) FROM blocks");
    if (nshards == 1)
        CHECK_MSG(parts_in_name_order(dir), "parts in metric name order in every block");
    if (span)
        *span = db_int(dir, 1, "SELECT max(maxt - mint) FROM blocks");
    st = open_dir(dir, nshards, retention_ms);
    CHECK(st != NULL);
    if (st) {
        CHECK_MSG(check_all(st, &f, sc, sc->nwin), "after reopening");
        rw_store_close(st);
    }
    CHECK(db_int(dir, nshards, "SELECT count(*) FROM blocks") == blocks);
    test_rmtree(dir);
    return blocks;
}

/* 600 series of 150 names, series i named m<(7 i) mod 150>: one flushed
 * block whose rows go by name, then by id (ids follow creation). */
static void test_many_names(void)
{
    enum { N = 600, NAMES = 150 };
    char *dir = test_mkdtemp("compact-names");
    rw_store *st = dir ? open_dir(dir, 1, 0) : NULL;
    CHECK(st != NULL);
    if (!st)
        return;
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        char name[16], inst[16];
        snprintf(name, sizeof name, "m%03d", (i * 7) % NAMES);
        snprintf(inst, sizeof inst, "s%d", i);
        rw_label l[2] = {{"__name__", name}, {"inst", inst}};
        rw_sample smp = {1000 + i, (double)i};
        rw_append_series as = {.labels = l, .nlabels = 2, .hash = rw_labels_hash(l, 2),
                               .samples = &smp, .nsamples = 1};
        rw_append_result r = {0};
        rw_err e;
        rw_err_init(&e);
        ok = rw_store_append(st, &as, 1, &r, &e) == RW_OK && r.samples_written == 1;
    }
    rw_err e;
    rw_err_init(&e);
    CHECK(ok && rw_store_maintain(st, &e) == RW_OK);
    rw_store_close(st);
    /* the rows' series in file order against (name, creation) order */
    int want[N], got[N], n = 0;
    for (int k = 0; k < NAMES; k++)
        for (int i = 0; i < N; i++)
            if ((i * 7) % NAMES == k)
                want[n++] = i;
    char p[512];
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    sqlite3 *db;
    sqlite3_stmt *q;
    n = 0;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        if (sqlite3_prepare_v2(db,
                               "SELECT p.sid - (SELECT min(id) FROM series) FROM blocks b "
                               "JOIN parts p ON p.id BETWEEN b.parts_lo AND b.parts_hi "
                               "ORDER BY b.id, p.id",
                               -1, &q, NULL) == SQLITE_OK) {
            while (sqlite3_step(q) == SQLITE_ROW && n < N)
                got[n++] = (int)sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
        sqlite3_close(db);
    }
    CHECK_MSG(n == N, "%d parts in the blocks, want %d", n, N);
    int first_bad = -1;
    for (int k = 0; k < n && first_bad < 0; k++)
        if (got[k] != want[k])
            first_bad = k;
    CHECK_MSG(first_bad < 0, "part %d is series %d, want %d (name order, then id)", first_bad,
              first_bad < 0 ? 0 : got[first_bad], first_bad < 0 ? 0 : want[first_bad]);
    test_rmtree(dir);
}

int main(void)
{
    test_many_names();
    /* 30 windows of 120 samples per part: runs of 13 blocks reach 1536
       samples per part; two runs merged, four blocks left small */
    scen plain = {.nwin = 30, .dense = NO_WINDOW};
    long long b = run(&plain, 1, 0, NULL);
    CHECK_MSG(b == 6, "30 small blocks became %lld, want 2 merged + 4", b);
    b = run(&plain, 2, 0, NULL);
    CHECK_MSG(b == 12, "2 shards: %lld blocks, want 12", b);

    /* series 0's sample at OOO_T written again with window 8: its block is
       in the run, and the newer value stays the one read */
    scen again = {.nwin = 30, .dense = NO_WINDOW, .ooo = 1, .ooo_with = 8};
    b = run(&again, 1, 0, NULL);
    CHECK_MSG(b == 6, "with a rewritten sample: %lld blocks, want 6", b);

    /* window 12 is dense (not small): blocks 0..11 cannot grow any more and
       are merged... */
    scen dense = {.nwin = 13, .dense = 12};
    b = run(&dense, 1, 0, NULL);
    CHECK_MSG(b == 2, "before a dense block: %lld blocks, want 2", b);
    /* ...unless the dense block rewrites a sample inside their range: then
       the merged block, which goes last, would hide the newer sample */
    scen dense_ooo = {.nwin = 13, .dense = 12, .ooo = 1, .ooo_with = 12};
    b = run(&dense_ooo, 1, 0, NULL);
    CHECK_MSG(b == 13, "with a later rewritten sample: %lld blocks, want 13 (no merge)", b);

    /* retention 70 h: a merged block spans at most 7 h (three windows) */
    long long span = 0;
    b = run(&plain, 1, 70 * 3600000LL, &span);
    CHECK_MSG(b > 0 && b < 30 && span <= 7 * 3600000LL,
              "with retention 70h: %lld blocks, the longest spanning %lld ms", b, span);
    TEST_DONE();
}
