/* test_query_fastpaths.c - the shortcuts the read path takes must give the
 * same answers as the general code: rw_store_select with RW_SELECT_LAST
 * (newest sample per series, from the series' newest sample or one chunk)
 * against the last sample of a full select, over windows that end before,
 * inside and after each chunk and the head, with a stale marker and series
 * that end early; and the exact integer float formatting against known
 * Go/Prometheus strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "store/store.h"
#include "support/tmpdir.h"
#include "test.h"

static void append(rw_store *st, const char *inst, int64_t t0, size_t n, int stale_at)
{
    rw_label l[2] = {{"__name__", "m"}, {"instance", inst}};
    rw_sample *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].t = t0 + (int64_t)i * 15000;
        s[i].v = (int)i == stale_at ? rw_stale_nan() : (double)i * 1.5 + 0.1;
    }
    rw_append_series as = {l, 2, rw_labels_hash(l, 2), s, n};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err e;
    rw_err_init(&e);
    CHECK_MSG(rw_store_append(st, &as, 1, &res, &e) == RW_OK, "append: %s", e.msg);
    free(s);
}

static void check_windows(rw_store *st)
{
    rw_matcher m;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_matcher_init(&m, RW_MATCH_EQ, "__name__", "m", &e) == RW_OK);
    int checked = 0;
    for (int64_t maxt = -20000; maxt <= 300 * 15000 + 40000; maxt += 7001) {
        for (int64_t span = 1000; span <= 400000; span *= 5) {
            int64_t mint = maxt - span;
            rw_arena *a = rw_arena_new(0, 0);
            rw_series_data *full, *last;
            size_t nfull, nlast;
            CHECK(rw_store_select(st, &m, 1, mint, maxt, 0, 0, a, &full, &nfull, &e) == RW_OK);
            CHECK(rw_store_select(st, &m, 1, mint, maxt, RW_SELECT_LAST, 0, a, &last, &nlast,
                                  &e) == RW_OK);
            CHECK_INT(nlast, nfull);
            for (size_t i = 0; i < nfull && i < nlast; i++) {
                CHECK(rw_labels_equal(full[i].labels, full[i].nlabels, last[i].labels,
                                      last[i].nlabels));
                CHECK_INT(last[i].n, 1);
                CHECK_INT(last[i].t[0], full[i].t[full[i].n - 1]);
                double x = full[i].v[full[i].n - 1], y = last[i].v[0];
                CHECK(memcmp(&x, &y, sizeof x) == 0);
                checked++;
            }
            rw_arena_free(a);
        }
    }
    CHECK(checked > 100);
    rw_matcher_free(&m);
}

static void test_select_last(void)
{
    char *dir = test_mkdtemp("rwq-fast");
    rw_store_opts so = {.dir = dir, .nshards = 2};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&so, &e);
    CHECK_MSG(st != NULL, "%s", e.msg);
    if (!st) {
        test_rmtree(dir);
        return;
    }
    append(st, "a", 0, 300, -1);       /* two full chunks and a head */
    append(st, "b", 0, 240, 239);      /* ends with a stale marker, no head */
    append(st, "c", 15000, 100, 50);   /* ends early, a stale marker inside */
    append(st, "d", 2000000, 130, -1); /* starts late */
    check_windows(st);
    rw_store_close(st);
    /* again after recovery: chunks come from SQLite, newest values from
       their last chunk */
    st = rw_store_open(&so, &e);
    CHECK_MSG(st != NULL, "%s", e.msg);
    if (st) {
        check_windows(st);
        rw_store_close(st);
    }
    test_rmtree(dir);
}

static void test_float_format(void)
{
    static const struct {
        double v;
        const char *json;
    } cases[] = {
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {123456.789, "123456.789"},
        {1e-5, "0.00001"},
        {1.5e-5, "0.000015"},
        {0.000123456789012345, "0.000123456789012345"},
        {4503599627370495.5, "4503599627370495.5"},
        {9007199254740991.0, "9007199254740991"},
        {9007199254740993.0, "9007199254740992"},
        {-42.125, "-42.125"},
        {1e15, "1000000000000000"},
        {100, "100"},
        {0.30000000000000004, "0.30000000000000004"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.5, "2.5"},
        {1234567.0, "1234567"},
        {0.000001, "0.000001"},
        {0.0000001, "1e-07"},
    };
    char b[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rw_fmt_float_json(cases[i].v, b);
        CHECK_STR(b, cases[i].json);
    }
    /* every formatted value reads back exactly, and no shorter digits do */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v = (double)(x >> 11) / 9007199254740992.0 * pow(10, (int)(x % 24) - 6);
        rw_fmt_float_json(v, b);
        if (strtod(b, NULL) != v) {
            CHECK_MSG(0, "%.17g formatted as %s", v, b);
            break;
        }
        /* significant digits: leading and trailing zeros do not count */
        char dg[40];
        int nd = 0;
        for (const char *p = b; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9' && (nd || *p != '0'))
                dg[nd++] = *p;
        while (nd > 1 && dg[nd - 1] == '0')
            nd--;
        int sig = nd;
        if (sig > 1) {
            char shorter[40];
            snprintf(shorter, sizeof shorter, "%.*e", sig - 2, v);
            if (strtod(shorter, NULL) == v) {
                CHECK_MSG(0, "%.17g formatted as %s but %s reads back", v, b, shorter);
                break;
            }
        }
    }
}

int main(void)
{
    RUN(test_select_last);
    RUN(test_float_format);
    TEST_DONE();
}
