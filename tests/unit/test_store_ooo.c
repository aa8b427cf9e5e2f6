/* test_store_ooo.c - the out-of-order window (store.out_of_order_window):
 * samples up to the window behind their series' newest are accepted, older
 * ones rejected as out of order, a different value at a timestamp already
 * held is a duplicate and the same one an identical resend; every read path
 * (full select, RW_SELECT_LAST, rw_store_read_samples) returns each series
 * merged in time order - from memory, from blocks after a flush, from both
 * when out-of-order samples land in a range already flushed - and all of it
 * survives kill -9 (WAL replay) and a clean restart. With the window at 0
 * every older sample is rejected, as before. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/labels.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define STEP 15000
#define WIN (10 * 60 * 1000)
#define T0 (1700000000000LL)

static rw_store *open_store(char *dir, int64_t window)
{
    rw_store_opts o = {.dir = dir, .nshards = 2, .ooo_window_ms = window};
    rw_err e;
    rw_err_init(&e);
    rw_store *s = rw_store_open(&o, &e);
    if (!s)
        fprintf(stderr, "open: %s\n", e.msg);
    return s;
}

static rw_label L[3][2] = {{{"__name__", "m"}, {"s", "a"}},
                           {{"__name__", "m"}, {"s", "b"}},
                           {{"__name__", "m"}, {"s", "c"}}};

static rw_rc put(rw_store *st, int ser, const int64_t *t, const double *v, size_t n,
                 rw_append_result *res)
{
    rw_sample smp[64];
    for (size_t i = 0; i < n; i++)
        smp[i] = (rw_sample){t[i], v[i]};
    rw_append_series as = {L[ser], 2, rw_labels_hash(L[ser], 2), smp, n};
    memset(res, 0, sizeof *res);
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_store_append(st, &as, 1, res, &e);
    if (rc != RW_OK)
        fprintf(stderr, "append: %s\n", e.msg);
    return rc;
}

/* The model: series `ser` should hold exactly the samples (t, v) in want
 * (sorted). Checks a full select, RW_SELECT_LAST at every sample and
 * between them, and rw_store_read_samples over a window. */
static int check(rw_store *st, int ser, const int64_t *wt, const double *wv, size_t n)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "s", L[ser][1].value, &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t ns = 0;
    int ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &ns, &e) == RW_OK &&
             ns == 1 && out[0].n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = out[0].t[i] == wt[i] && out[0].v[i] == wv[i];
    if (!ok)
        fprintf(stderr, "series %s: full select: %zu series, %zu samples, want %zu\n",
                L[ser][1].value, ns, ns ? out[0].n : 0, n);
    /* the newest sample at or before each timestamp, and just before it */
    for (size_t i = 0; ok && i < n; i++) {
        for (int d = 0; d < 2 && ok; d++) {
            int64_t at = wt[i] - d;
            size_t want = d ? (i ? i - 1 : (size_t)-1) : i;
            rw_series_data *l;
            size_t nl = 0;
            rw_arena_reset(a);
            ok = rw_store_select(st, &m, 1, at - 3600000, at, RW_SELECT_LAST, 0, a, &l, &nl,
                                 &e) == RW_OK;
            if (want == (size_t)-1)
                ok = ok && nl == 0;
            else
                ok = ok && nl == 1 && l[0].n == 1 && l[0].t[0] == wt[want] && l[0].v[0] == wv[want];
            if (!ok)
                fprintf(stderr, "series %s: last at %lld: %zu series, t %lld\n", L[ser][1].value,
                        (long long)at, nl, nl ? (long long)l[0].t[0] : 0LL);
        }
    }
    /* by ref, a window in the middle */
    if (ok && n > 4) {
        rw_arena_reset(a);
        rw_series_data *ls;
        size_t nl;
        ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, RW_SELECT_LABELS_ONLY, 0, a, &ls,
                             &nl, &e) == RW_OK &&
             nl == 1 &&
             rw_store_read_samples(st, ls, 1, wt[1], wt[n - 2], 0, 0, a, NULL, &e) == RW_OK &&
             ls[0].n == n - 2;
        for (size_t i = 0; ok && i < n - 2; i++)
            ok = ls[0].t[i] == wt[i + 1] && ls[0].v[i] == wv[i + 1];
        if (!ok)
            fprintf(stderr, "series %s: read_samples window wrong\n", L[ser][1].value);
    }
    rw_matcher_free(&m);
    rw_arena_free(a);
    return ok;
}

/* the model of series a: in-order every STEP from T0, 40 samples; then
 * out-of-order ones in the gaps of the last 10 minutes */
typedef struct model {
    int64_t t[128];
    double v[128];
    size_t n;
} model;

static void model_add(model *m, int64_t t, double v)
{
    size_t i = m->n;
    while (i > 0 && m->t[i - 1] > t) {
        m->t[i] = m->t[i - 1];
        m->v[i] = m->v[i - 1];
        i--;
    }
    m->t[i] = t;
    m->v[i] = v;
    m->n++;
}

static void test_window(void)
{
    char *dir = test_mkdtemp("rwstore-ooo");
    rw_store *st = open_store(dir, WIN);
    model ma = {0};
    int64_t t[64];
    double v[64];
    for (int i = 0; i < 40; i++) {
        t[i] = T0 + i * STEP;
        v[i] = i;
        model_add(&ma, t[i], v[i]);
    }
    rw_append_result r;
    CHECK_INT(put(st, 0, t, v, 40, &r), RW_OK);
    int64_t newest = T0 + 39 * STEP;
    /* within the window, between existing samples, in any order */
    int64_t ot[4] = {newest - 5 * STEP - 7000, newest - 1000, newest - 9 * STEP - 1, newest - WIN};
    double ov[4] = {100.5, 101.5, 102.5, 103.5};
    CHECK_INT(put(st, 0, ot, ov, 4, &r), RW_OK);
    CHECK_INT(r.samples_written, 4);
    for (int i = 0; i < 4; i++)
        model_add(&ma, ot[i], ov[i]);
    /* beyond the window: out of order; a held timestamp with another value:
     * duplicate; the same value: an identical resend */
    int64_t bt[4] = {newest - WIN - 1, ot[0], ot[1], T0 + 30 * STEP};
    double bv[4] = {1, 999, 101.5, 30};
    CHECK_INT(put(st, 0, bt, bv, 4, &r), RW_OK);
    CHECK_INT(r.rejected[RW_REJ_OUT_OF_ORDER], 1);
    CHECK_INT(r.rejected[RW_REJ_DUPLICATE], 1);
    CHECK_INT(r.samples_written, 2);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));

    /* into blocks; then out-of-order samples into the range already flushed */
    rw_err e;
    CHECK_INT(rw_store_maintain(st, &e), RW_OK);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));
    int64_t ft[2] = {newest - 2 * STEP - 500, newest - 3 * STEP - 500};
    double fv[2] = {200.25, 201.25};
    CHECK_INT(put(st, 0, ft, fv, 2, &r), RW_OK);
    CHECK_INT(r.samples_written, 2);
    for (int i = 0; i < 2; i++)
        model_add(&ma, ft[i], fv[i]);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));
    /* an in-order sample after all of it */
    int64_t nt = newest + STEP;
    double nv = 41;
    CHECK_INT(put(st, 0, &nt, &nv, 1, &r), RW_OK);
    model_add(&ma, nt, nv);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));
    rw_store_close(st);

    /* a clean restart: all from blocks */
    st = open_store(dir, WIN);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));

    rw_store_close(st);

    /* out-of-order samples only in the WAL, then a crash (no close) */
    int64_t kt[3] = {nt - 4 * STEP - 123, nt - STEP - 1, nt - 7 * STEP - 2};
    double kv[3] = {300.5, 301.5, 302.5};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rw_store *cs = open_store(dir, WIN);
        rw_append_result rr;
        _exit(cs && put(cs, 0, kt, kv, 3, &rr) == RW_OK && rr.samples_written == 3 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 3; i++)
        model_add(&ma, kt[i], kv[i]);
    st = open_store(dir, WIN);
    CHECK(check(st, 0, ma.t, ma.v, ma.n));
    rw_store_close(st);
    test_rmtree(dir);
}

/* The window off: older samples are rejected, as they always were. */
static void test_off(void)
{
    char *dir = test_mkdtemp("rwstore-ooo");
    rw_store *st = open_store(dir, 0);
    int64_t t[3] = {T0, T0 + STEP, T0 + 2 * STEP};
    double v[3] = {1, 2, 3};
    rw_append_result r;
    CHECK_INT(put(st, 1, t, v, 3, &r), RW_OK);
    int64_t o = T0 + STEP / 2;
    double ovv = 9;
    CHECK_INT(put(st, 1, &o, &ovv, 1, &r), RW_OK);
    CHECK_INT(r.rejected[RW_REJ_OUT_OF_ORDER], 1);
    CHECK(check(st, 1, t, v, 3));
    rw_store_close(st);
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_window);
    RUN(test_off);
    TEST_DONE();
}
