/* test_query_batches.c - long range queries are evaluated in batches of
 * steps (engine.c). The result must be exactly what the one-pass definition
 * of a range query gives: at every step, the instant query at that time.
 * Checked for selectors, rate, aggregations, topk, a subquery, @ end(),
 * offset, absent() and a binary operation over series that start, stop and
 * come back during the range, on data partly in blocks and partly in the
 * head; then a query that does not fit max_samples at once is answered
 * (batches shrink) instead of refused, and one whose single step does not
 * fit is still refused. An aggregation streams its selector (it holds its
 * groups, not its members): inside a subquery it fits a max_samples its
 * members would not, with the unlimited result. A cheap query over many
 * steps runs in a few batches (two per worker at most). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "query/promql.h"
#include "store/store.h"
#include "support/tmpdir.h"
#include "test.h"

#define STEP 15000
#define NS 12
#define H (3600 * 1000LL)
#define T0 (1700000000000LL / H * H)

static void load(rw_store *st, int64_t from, int64_t to)
{
    for (int i = 0; i < NS; i++) {
        char inst[16], grp[8];
        snprintf(inst, sizeof inst, "i%02d", i);
        snprintf(grp, sizeof grp, "g%d", i % 3);
        rw_label l[4] = {{"__name__", "reqs"}, {"grp", grp}, {"inst", inst}, {"job", "j"}};
        size_t cap = (size_t)((to - from) / STEP) + 1, n = 0;
        rw_sample *s = malloc(cap * sizeof *s);
        for (int64_t t = from; t < to; t += STEP) {
            /* series 4 pauses for an hour, series 7 starts late */
            if (i == 4 && t >= T0 + 2 * H && t < T0 + 3 * H)
                continue;
            if (i == 7 && t < T0 + H)
                continue;
            int64_t k = (t - T0) / STEP;
            s[n].t = t + i; /* a little jitter */
            s[n].v = (double)(k * (i + 1)) + (i % 2 ? 0.5 : 0);
            n++;
        }
        rw_append_series as = {l, 4, rw_labels_hash(l, 4), s, n};
        rw_append_result r;
        memset(&r, 0, sizeof r);
        rw_err e;
        rw_err_init(&e);
        CHECK_MSG(n == 0 || rw_store_append(st, &as, 1, &r, &e) == RW_OK, "append: %s", e.msg);
        free(s);
    }
}

/* The point of series `labels` at time t in an instant result, or NAN. */
static double instant_at(const rw_result *r, const rw_label *l, size_t nl, int *found)
{
    *found = 0;
    if (r->type == RW_VAL_SCALAR) {
        *found = 1;
        return r->scalar;
    }
    for (size_t i = 0; i < r->nseries; i++)
        if (rw_labels_equal(r->series[i].labels, r->series[i].nlabels, l, nl)) {
            *found = 1;
            return r->series[i].points[0].v;
        }
    return NAN;
}

static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-9 * fabs(a);
}

/* The range result of q equals the instant results of iq (q itself when
 * NULL) at its steps. */
static void check_query(rw_engine *eng, const char *q, const char *iq, int64_t start, int64_t end,
                        int64_t step)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_result rr;
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_engine_range(eng, q, start, end, step, 0, a, &rr, &e);
    CHECK_MSG(rc == RW_OK, "%s: %s", q, e.msg);
    if (rc != RW_OK) {
        rw_arena_free(a);
        return;
    }
    size_t nsteps = (size_t)((end - start) / step) + 1;
    size_t points = 0, bad = 0, checked = 0;
    for (size_t s = 0; s < rr.nseries; s++)
        points += rr.series[s].npoints;
    /* every 5th step, and the first and last */
    size_t seen_points = 0;
    for (size_t i = 0; i < nsteps; i++) {
        if (i % 5 && i != nsteps - 1)
            continue;
        int64_t t = start + (int64_t)i * step;
        rw_arena *b = rw_arena_new(0, 0);
        rw_result ir;
        rw_err_init(&e);
        if (rw_engine_instant(eng, iq ? iq : q, t, 0, b, &ir, &e) != RW_OK) {
            bad++;
            rw_arena_free(b);
            continue;
        }
        size_t want = ir.type == RW_VAL_SCALAR ? 1 : ir.nseries;
        size_t got = 0;
        for (size_t s = 0; s < rr.nseries; s++) {
            const rw_result_series *rs = &rr.series[s];
            for (size_t p = 0; p < rs->npoints; p++) {
                if (rs->points[p].t != t)
                    continue;
                got++;
                int found;
                double v = instant_at(&ir, rs->labels, rs->nlabels, &found);
                if (!found || !same(v, rs->points[p].v))
                    bad++;
            }
        }
        if (got != want)
            bad++;
        seen_points += got;
        checked++;
        rw_arena_free(b);
    }
    CHECK_MSG(bad == 0, "%s: %zu mismatches over %zu steps", q, bad, checked);
    CHECK_MSG(points > 0 && seen_points > 0, "%s: no points", q);
    /* each series' points ascend */
    for (size_t s = 0; s < rr.nseries; s++)
        for (size_t p = 1; p < rr.series[s].npoints; p++)
            CHECK(rr.series[s].points[p].t > rr.series[s].points[p - 1].t);
    rw_arena_free(a);
}

/* A querier that counts the series lookups of the store it wraps: every
 * batch of steps of a range query looks its selector's series up once. */
typedef struct counting {
    rw_querier inner;
    _Atomic int lookups;
} counting;

static rw_rc c_select(void *ctx, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                      int flags, size_t max_samples, rw_arena *a, rw_series_data **out,
                      size_t *nout, rw_err *err)
{
    counting *c = ctx;
    if (flags & RW_SELECT_LABELS_ONLY)
        c->lookups++;
    return c->inner.ops->select(c->inner.ctx, ms, nms, mint, maxt, flags, max_samples, a, out,
                                nout, err);
}

static rw_rc c_read(void *ctx, rw_series_data *series, size_t n, int64_t mint, int64_t maxt,
                    int flags, size_t max_samples, rw_arena *a, size_t *decoded, rw_err *err)
{
    counting *c = ctx;
    return c->inner.ops->read_samples(c->inner.ctx, series, n, mint, maxt, flags, max_samples, a,
                                      decoded, err);
}

/* A cheap query over many steps runs in few batches: one first batch per
 * worker, then the rest in one share per worker - every boundary between
 * batches decodes the stored parts that straddle it twice. */
static void test_few_batches(rw_store *st)
{
    static const rw_querier_ops ops = {.select = c_select, .read_samples = c_read};
    counting c = {.inner = rw_store_querier(st)};
    rw_querier q = {&ops, &c};
    rw_engine *eng = rw_engine_new(&q, NULL);
    rw_arena *a = rw_arena_new(0, 0);
    rw_result r;
    rw_err e;
    rw_err_init(&e);
    /* 5 h at 2 s: 9001 steps */
    CHECK_MSG(rw_engine_range(eng, "count(reqs)", T0, T0 + 5 * H, 2000, 0, a, &r, &e) == RW_OK,
              "%s", e.msg);
    CHECK_INT(r.nseries, 1);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = cpus < 1 ? 1 : cpus > 4 ? 4 : (int)cpus;
    CHECK_MSG(c.lookups >= 2 && c.lookups <= 2 * workers, "%d batches for %d workers", c.lookups,
              workers);
    rw_arena_free(a);
    rw_engine_free(eng);
}

static void test_batches(void)
{
    char *dir = test_mkdtemp("rwq-batch");
    rw_store_opts so = {.dir = dir, .nshards = 2};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&so, &e);
    CHECK_MSG(st != NULL, "%s", e.msg);
    if (!st) {
        test_rmtree(dir);
        return;
    }
    load(st, T0, T0 + 3 * H);
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* these hours into blocks */
    load(st, T0 + 3 * H, T0 + 5 * H);            /* the rest in the head */
    rw_querier sq = rw_store_querier(st);
    rw_engine *eng = rw_engine_new(&sq, NULL);
    /* 5 h at 10 s: 1801 steps, several batches */
    int64_t start = T0 + 7000, end = T0 + 5 * H - 2000, step = 10000;
    const char *qs[] = {
        "reqs",
        "rate(reqs[5m])",
        "sum by (grp) (rate(reqs[2m]))",
        "topk(3, reqs)",
        "max_over_time(reqs[20m:1m])",
        "reqs offset 30m",
        "absent(reqs{inst=\"i04\"})",
        "count(reqs) * 2",
        "reqs / on(inst) group_left reqs",
        "time()",
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        check_query(eng, qs[i], NULL, start, end, step);
    /* end() is the range's end in every batch */
    char at[64];
    snprintf(at, sizeof at, "reqs @ %lld.%03lld", (long long)(end / 1000), (long long)(end % 1000));
    check_query(eng, "reqs @ end()", at, start, end, step);
    rw_engine_free(eng);

    /* max_samples: the whole range (12 series x 1801 steps) does not fit at
     * once, a batch does: answered */
    rw_engine_opts eo = {.max_samples = 4000};
    eng = rw_engine_new(&sq, &eo);
    rw_arena *a = rw_arena_new(0, 0);
    rw_result rr;
    rw_err_init(&e);
    CHECK_MSG(rw_engine_range(eng, "reqs", start, end, step, 0, a, &rr, &e) == RW_OK,
              "batched under max_samples: %s", e.msg);
    size_t pts = 0;
    for (size_t s = 0; s < rr.nseries; s++)
        pts += rr.series[s].npoints;
    CHECK(pts > 4000);
    rw_arena_reset(a);
    /* an aggregation that folds member by member streams its argument: it
     * holds its groups' steps, not its members'. Inside a subquery (one
     * evaluation, no step batches) 12 series x 4,801 steps would not fit
     * max_samples = 50000, three groups do - and give what the same query
     * gives without a limit; quantile, which needs every member of a step
     * at once, is still refused */
    rw_engine_free(eng);
    rw_engine_opts mid = {.max_samples = 50000};
    eng = rw_engine_new(&sq, &mid);
    rw_engine *full = rw_engine_new(&sq, NULL);
    const char *sub[] = {
        "max_over_time(sum(reqs)[4h:3s])",
        "min_over_time(count by (grp) (rate(reqs[1m]))[4h:3s])",
        "avg_over_time(avg without (inst) (avg_over_time(reqs[30s]))[4h:3s])",
        "max_over_time(stddev(reqs)[4h:3s])",
    };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        rw_result lr, fr;
        rw_err_init(&e);
        rw_rc lrc = rw_engine_instant(eng, sub[i], end, 0, a, &lr, &e);
        CHECK_MSG(lrc == RW_OK, "%s under max_samples: %s", sub[i], e.msg);
        rw_err_init(&e);
        CHECK_INT(rw_engine_instant(full, sub[i], end, 0, a, &fr, &e), RW_OK);
        if (lrc != RW_OK)
            continue;
        CHECK_MSG(lr.nseries == fr.nseries && lr.nseries > 0, "%s: %zu series, %zu without a limit",
                  sub[i], lr.nseries, fr.nseries);
        for (size_t s = 0; s < lr.nseries; s++) {
            int found;
            double v = instant_at(&fr, lr.series[s].labels, lr.series[s].nlabels, &found);
            CHECK_MSG(found && same(v, lr.series[s].points[0].v), "%s: %g against %g", sub[i],
                      lr.series[s].points[0].v, v);
        }
    }
    rw_err_init(&e);
    CHECK_INT(rw_engine_instant(eng, "max_over_time(quantile(0.5, reqs)[4h:3s])", end, 0, a, &rr,
                                &e),
              RW_EXEC);
    CHECK(strstr(e.msg, "too many samples") != NULL);
    rw_engine_free(full);
    rw_engine_free(eng);
    eng = NULL;
    rw_arena_reset(a);
    /* a single step over more samples than allowed is still refused */
    rw_engine_opts tiny = {.max_samples = 5};
    eng = rw_engine_new(&sq, &tiny);
    rw_err_init(&e);
    CHECK_INT(rw_engine_range(eng, "reqs", start, end, step, 0, a, &rr, &e), RW_EXEC);
    CHECK(strstr(e.msg, "too many samples") != NULL);
    rw_engine_free(eng);
    rw_arena_free(a);
    test_few_batches(st);
    rw_store_close(st);
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_batches);
    TEST_DONE();
}
