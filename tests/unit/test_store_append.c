/* test_store_append.c - the store's append rules and read path through the
 * public API: out-of-order, duplicate, identical resend, too old; select with
 * =, !=, =~, !~ (absent labels match ""), the non-empty matcher rule, time
 * ranges spanning persisted chunks and the head, label names/values,
 * max_samples, metadata, stats and cardinality. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "core/labels.h"
#include "store/chunk.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

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

/* labels given as "name", "value", ... NULL; must be sorted by name */
typedef struct ser {
    rw_label l[8];
    size_t n;
} ser;

static ser mk(const char *first, ...)
{
    ser s = {0};
    va_list ap;
    va_start(ap, first);
    for (const char *n = first; n; n = va_arg(ap, const char *)) {
        s.l[s.n].name = n;
        s.l[s.n].value = va_arg(ap, const char *);
        s.n++;
    }
    va_end(ap);
    rw_labels_sort(s.l, s.n);
    return s;
}

static rw_rc app(rw_store *st, const ser *s, const rw_sample *smp, size_t n, rw_append_result *res)
{
    rw_append_series a = {.labels = s->l, .nlabels = s->n, .hash = rw_labels_hash(s->l, s->n),
                          .samples = smp, .nsamples = n};
    rw_err e;
    rw_err_init(&e);
    rw_append_result local;
    if (!res) {
        memset(&local, 0, sizeof local);
        res = &local;
    }
    rw_rc rc = rw_store_append(st, &a, 1, res, &e);
    if (rc != RW_OK)
        fprintf(stderr, "append: %s\n", e.msg);
    return rc;
}

static size_t sel(rw_store *st, rw_arena *a, rw_series_data **out, int64_t mint, int64_t maxt,
                  rw_match_op op, const char *name, const char *value, rw_match_op op2,
                  const char *name2, const char *value2)
{
    rw_matcher m[2];
    rw_err e;
    size_t nm = 1, n = 0;
    rw_matcher_init(&m[0], op, name, value, &e);
    if (name2) {
        rw_matcher_init(&m[1], op2, name2, value2, &e);
        nm = 2;
    }
    rw_rc rc = rw_store_select(st, m, nm, mint, maxt, 0, 0, a, out, &n, &e);
    if (rc != RW_OK) {
        fprintf(stderr, "select: %s\n", e.msg);
        n = (size_t)-1;
    }
    for (size_t i = 0; i < nm; i++)
        rw_matcher_free(&m[i]);
    return n;
}

typedef struct rejects {
    int n;
    size_t idx[16];
    rw_reject_reason why[16];
} rejects;

static void on_reject(void *ctx, const rw_append_series *s, size_t i, rw_reject_reason r)
{
    rejects *rj = ctx;
    if (rj->n < 16) {
        rj->idx[rj->n] = i;
        rj->why[rj->n] = r;
    }
    rj->n++;
}

static void test_rules(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store *st = open_store(dir, 2, 3600 * 1000);
    CHECK(st != NULL);
    ser s = mk("__name__", "up", "job", "etcd", NULL);
    rw_sample a[] = {{1000, 1}, {2000, 2}, {3000, 3}};
    rw_append_result r = {0};
    CHECK_INT(app(st, &s, a, 3, &r), RW_OK);
    CHECK_INT(r.samples_written, 3);
    CHECK_INT(r.series_created, 1);

    rejects rj = {0};
    rw_sample b[] = {
        {3000, 3},  /* identical resend: accepted silently */
        {3000, 4},  /* duplicate timestamp, other value */
        {2500, 9},  /* out of order */
        {4000, 4},  /* fine */
        {4000, 4},  /* identical again */
        {5000, rw_stale_nan()},
    };
    memset(&r, 0, sizeof r);
    r.on_reject = on_reject;
    r.on_reject_ctx = &rj;
    CHECK_INT(app(st, &s, b, 6, &r), RW_OK);
    CHECK_INT(r.samples_written, 4);
    CHECK_INT(r.rejected[RW_REJ_DUPLICATE], 1);
    CHECK_INT(r.rejected[RW_REJ_OUT_OF_ORDER], 1);
    CHECK_INT(r.series_created, 0);
    CHECK_INT(rj.n, 2);
    CHECK_INT(rj.idx[0], 1);
    CHECK_INT(rj.why[0], RW_REJ_DUPLICATE);
    CHECK_INT(rj.idx[1], 2);
    CHECK_INT(rj.why[1], RW_REJ_OUT_OF_ORDER);
    /* the stale marker stays a stale marker, 0x7ff0000000000002 */
    rw_arena *ar = rw_arena_new(0, 0);
    rw_series_data *out;
    CHECK_INT(sel(st, ar, &out, 0, 10000, RW_MATCH_EQ, "job", "etcd", 0, NULL, NULL), 1);
    CHECK_INT(out[0].n, 5);
    CHECK(rw_is_stale_nan(out[0].v[4]));
    CHECK(out[0].v[2] == 3);

    /* too old: another series far behind the store's newest sample */
    ser s2 = mk("__name__", "up", "job", "old", NULL);
    rw_sample far[] = {{100000000, 1}};
    CHECK_INT(app(st, &s2, far, 1, NULL), RW_OK); /* store newest -> 1e8 */
    ser s3 = mk("__name__", "up", "job", "late", NULL);
    rw_sample old[] = {{100000000 - 3600 * 1000 - 1, 1}, {100000000 - 3600 * 1000 + 1, 2}};
    memset(&r, 0, sizeof r);
    CHECK_INT(app(st, &s3, old, 2, &r), RW_OK);
    CHECK_INT(r.rejected[RW_REJ_TOO_OLD], 1);
    CHECK_INT(r.samples_written, 1);

    rw_store_close(st);
    rw_arena_free(ar);
    test_rmtree(dir);
}

static void test_select(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store *st = open_store(dir, 3, 0);
    ser ss[] = {
        mk("__name__", "etcd_up", "job", "etcd", "instance", "a", NULL),
        mk("__name__", "etcd_up", "job", "etcd", "instance", "b", NULL),
        mk("__name__", "etcd_up", "job", "etcd", "instance", "c", "env", "prod", NULL),
        mk("__name__", "kube_up", "job", "ksm", "instance", "a", NULL),
        mk("__name__", "kube_up", "job", "ksm", "instance", "d", "env", "dev", NULL),
    };
    size_t ns = sizeof ss / sizeof ss[0];
    /* 500 samples each: 2 completed head chunks + the open one */
    enum { N = 500 };
    rw_sample smp[N];
    for (size_t k = 0; k < ns; k++) {
        for (int i = 0; i < N; i++) {
            smp[i].t = 1000000 + (int64_t)i * 15000;
            smp[i].v = (double)(k * 1000 + (size_t)i);
        }
        CHECK_INT(app(st, &ss[k], smp, N, NULL), RW_OK);
    }
    rw_err e;
    CHECK_INT(rw_store_maintain(st, &e), RW_OK); /* a full flush: everything into a block */
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    int64_t lo = 0, hi = INT64_MAX;
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_EQ, "__name__", "etcd_up", 0, NULL, NULL), 3);
    /* sorted by label set: {env="prod"} sorts before {instance=...} */
    CHECK_STR(rw_labels_get(out[0].labels, out[0].nlabels, "instance"), "c");
    CHECK_STR(rw_labels_get(out[1].labels, out[1].nlabels, "instance"), "a");
    CHECK_STR(rw_labels_get(out[2].labels, out[2].nlabels, "instance"), "b");
    CHECK_INT(out[1].n, N);
    int ok = 1;
    for (size_t i = 0; i < out[1].n; i++)
        ok &= out[1].t[i] == 1000000 + (int64_t)i * 15000 && out[1].v[i] == (double)i;
    CHECK(ok);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "job", "etcd|ksm", RW_MATCH_EQ, "instance", "a"), 2);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "__name__", ".*_up", RW_MATCH_NEQ, "instance", "a"), 3);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "__name__", "etcd.+", RW_MATCH_NRE, "instance", "[ab]"), 1);
    /* absent label matches "": env="" selects series without env */
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_EQ, "job", "etcd", RW_MATCH_EQ, "env", ""), 2);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_EQ, "job", "ksm", RW_MATCH_NEQ, "env", "dev"), 1);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "env", ".+", 0, NULL, NULL), 2);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_EQ, "job", "nope", 0, NULL, NULL), 0);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "job", "e.*d", 0, NULL, NULL), 3);
    /* only empty-matching matchers: 400 */
    {
        rw_matcher m;
        size_t n;
        rw_matcher_init(&m, RW_MATCH_RE, "job", ".*", &e);
        CHECK_INT(rw_store_select(st, &m, 1, lo, hi, 0, 0, a, &out, &n, &e), RW_BADREQ);
        CHECK(strstr(e.msg, "at least one non-empty matcher") != NULL);
        rw_matcher_free(&m);
        rw_matcher_init(&m, RW_MATCH_NEQ, "job", "x", &e);
        CHECK_INT(rw_store_select(st, &m, 1, lo, hi, 0, 0, a, &out, &n, &e), RW_BADREQ);
        rw_matcher_free(&m);
    }
    /* time ranges: inside one persisted chunk, across chunk + head, head only */
    int64_t t_of[] = {10, 130, 250, 470, 499};
    struct { int from, to; } rg[] = {{10, 20}, {100, 130}, {110, 479}, {490, 499}, {0, 0}, {499, 600}};
    for (size_t r = 0; r < sizeof rg / sizeof rg[0]; r++) {
        int64_t mn = 1000000 + (int64_t)rg[r].from * 15000, mx = 1000000 + (int64_t)rg[r].to * 15000;
        size_t n = sel(st, a, &out, mn, mx, RW_MATCH_EQ, "instance", "d", 0, NULL, NULL);
        int last = rg[r].to < N ? rg[r].to : N - 1;
        CHECK_INT(n, 1);
        if (n == 1) {
            CHECK_INT(out[0].n, last - rg[r].from + 1);
            CHECK_INT(out[0].t[0], mn);
            CHECK(out[0].v[0] == 4000 + rg[r].from);
            CHECK_INT(out[0].t[out[0].n - 1], 1000000 + (int64_t)last * 15000);
        }
    }
    (void)t_of;
    /* a range with no samples returns no series */
    CHECK_INT(sel(st, a, &out, 0, 999999, RW_MATCH_EQ, "instance", "d", 0, NULL, NULL), 0);
    CHECK_INT(sel(st, a, &out, 1000000 + 15000 * 3 + 1, 1000000 + 15000 * 4 - 1, RW_MATCH_EQ,
                  "instance", "d", 0, NULL, NULL), 0);
    /* labels only */
    {
        rw_matcher m;
        size_t n;
        rw_matcher_init(&m, RW_MATCH_EQ, "job", "ksm", &e);
        CHECK_INT(rw_store_select(st, &m, 1, lo, hi, RW_SELECT_LABELS_ONLY, 0, a, &out, &n, &e), RW_OK);
        CHECK_INT(n, 2);
        CHECK(out[0].n == 0 && out[0].t == NULL);
        /* max_samples */
        CHECK_INT(rw_store_select(st, &m, 1, lo, hi, 0, 999, a, &out, &n, &e), RW_LIMIT);
        CHECK_INT(rw_store_select(st, &m, 1, lo, hi, 0, 1000, a, &out, &n, &e), RW_OK);
        rw_matcher_free(&m);
    }
    /* label names and values */
    char **names;
    size_t nn;
    CHECK_INT(rw_store_label_names(st, NULL, 0, lo, hi, a, &names, &nn, &e), RW_OK);
    CHECK_INT(nn, 4);
    if (nn == 4) {
        CHECK_STR(names[0], "__name__");
        CHECK_STR(names[1], "env");
        CHECK_STR(names[3], "job");
    }
    CHECK_INT(rw_store_label_names(st, NULL, 0, 0, 10, a, &names, &nn, &e), RW_OK);
    CHECK_INT(nn, 0);
    CHECK_INT(rw_store_label_values(st, "instance", NULL, 0, lo, hi, a, &names, &nn, &e), RW_OK);
    CHECK_INT(nn, 4);
    if (nn == 4) {
        CHECK_STR(names[0], "a");
        CHECK_STR(names[3], "d");
    }
    {
        rw_matcher m;
        rw_matcher_init(&m, RW_MATCH_EQ, "job", "ksm", &e);
        CHECK_INT(rw_store_label_values(st, "instance", &m, 1, lo, hi, a, &names, &nn, &e), RW_OK);
        CHECK_INT(nn, 2);
        CHECK_INT(rw_store_label_names(st, &m, 1, lo, hi, a, &names, &nn, &e), RW_OK);
        CHECK_INT(nn, 4);
        rw_matcher_free(&m);
    }
    /* stats and cardinality */
    rw_store_stats stt;
    rw_store_get_stats(st, &stt);
    CHECK_INT(stt.series, 5);
    CHECK_INT(stt.persisted_chunks, 5); /* one part per series */
    CHECK_INT(stt.head_chunks, 0);
    CHECK_INT(stt.samples_in_head, 0);
    CHECK_INT(stt.min_time, 1000000);
    CHECK_INT(stt.max_time, 1000000 + (N - 1) * 15000);
    CHECK(stt.db_bytes > 0);
    rw_store_cardinality c;
    CHECK_INT(rw_store_cardinality_top(st, 10, a, &c, &e), RW_OK);
    CHECK_INT(c.n_by_metric, 2);
    CHECK_STR(c.by_metric[0].name, "etcd_up");
    CHECK_INT(c.by_metric[0].value, 3);
    CHECK_STR(c.label_values[0].name, "instance");
    CHECK_INT(c.label_values[0].value, 4);
    CHECK_STR(c.by_label_pair[0].name, "__name__=etcd_up"); /* ties sort by name */
    CHECK_STR(c.by_label_pair[1].name, "job=etcd");
    CHECK_INT(c.by_label_pair[0].value, 3);
    rw_store_close(st);

    /* all of it again after a restart */
    st = open_store(dir, 3, 0);
    rw_arena_reset(a);
    CHECK_INT(sel(st, a, &out, lo, hi, RW_MATCH_RE, "job", "etcd|ksm", 0, NULL, NULL), 5);
    ok = 1;
    for (size_t k = 0; k < 5; k++)
        ok &= out[k].n == N;
    CHECK(ok);
    rw_store_get_stats(st, &stt);
    CHECK_INT(stt.persisted_chunks, 5);
    rw_store_close(st);
    rw_arena_free(a);
    test_rmtree(dir);
}

static void test_metadata(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store *st = open_store(dir, 1, 0);
    rw_metadata md[] = {
        {"up", "gauge", "Target up.", ""},
        {"etcd_server_has_leader", "gauge", "Has leader.", ""},
        {"http_requests_total", "counter", "Requests.", "requests"},
    };
    rw_err e;
    CHECK_INT(rw_store_put_metadata(st, md, 3, &e), RW_OK);
    rw_metadata upd = {"up", "gauge", "Target is up.", ""};
    CHECK_INT(rw_store_put_metadata(st, &upd, 1, &e), RW_OK);
    rw_store_close(st);
    st = open_store(dir, 1, 0);
    rw_arena *a = rw_arena_new(0, 0);
    rw_metadata *out;
    size_t n;
    CHECK_INT(rw_store_get_metadata(st, NULL, 0, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(out[0].metric, "etcd_server_has_leader");
        CHECK_STR(out[2].metric, "up");
        CHECK_STR(out[2].help, "Target is up.");
        CHECK_STR(out[1].unit, "requests");
    }
    CHECK_INT(rw_store_get_metadata(st, "up", 0, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, 1);
    CHECK_INT(rw_store_get_metadata(st, "nope", 0, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, 0);
    CHECK_INT(rw_store_get_metadata(st, NULL, 2, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, 2);
    rw_store_close(st);
    rw_arena_free(a);
    test_rmtree(dir);
}

/* store.max_series: new series beyond the cap are rejected per sample with
 * RW_REJ_SERIES_LIMIT; known series keep ingesting; the cap survives a
 * restart (it counts what is stored, not what was created this run). */
static void test_series_limit(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store_opts o = {.dir = (char *)dir, .nshards = 1, .max_series = 3};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK(st != NULL);
    if (!st)
        return;
    char v[16];
    rw_sample smp[2] = {{1000, 1}, {2000, 2}};
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof v, "%d", i);
        ser s = mk("__name__", "m", "i", v, NULL);
        rw_append_result res = {0};
        CHECK(app(st, &s, smp, 1, &res) == RW_OK && res.samples_written == 1);
    }
    ser s4 = mk("__name__", "m", "i", "new", NULL);
    rejects rj = {0};
    rw_append_result res = {.on_reject = on_reject, .on_reject_ctx = &rj};
    CHECK(app(st, &s4, smp, 2, &res) == RW_OK);
    CHECK_INT(res.samples_written, 0);
    CHECK_INT(res.rejected[RW_REJ_SERIES_LIMIT], 2);
    CHECK(rj.n == 2 && rj.why[0] == RW_REJ_SERIES_LIMIT);
    CHECK_STR(rw_reject_reason_str(RW_REJ_SERIES_LIMIT), "series_limit");
    ser s0 = mk("__name__", "m", "i", "0", NULL);
    memset(&res, 0, sizeof res);
    CHECK(app(st, &s0, smp + 1, 1, &res) == RW_OK && res.samples_written == 1); /* known series */
    rw_store_close(st);
    st = rw_store_open(&o, &e);
    memset(&res, 0, sizeof res);
    CHECK(st && app(st, &s4, smp, 1, &res) == RW_OK && res.rejected[RW_REJ_SERIES_LIMIT] == 1);
    rw_store_close(st);
    o.max_series = 4; /* raising the limit lets the new series in */
    st = rw_store_open(&o, &e);
    memset(&res, 0, sizeof res);
    CHECK(st && app(st, &s4, smp, 1, &res) == RW_OK && res.samples_written == 1);
    rw_store_close(st);
    test_rmtree(dir);
}

/* Appends by ref (the series cache of the write path): the id out, the
 * lookup by id, and a ref that no longer exists reported, not stored. */
static void test_refs(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store *st = open_store(dir, 2, 0);
    ser a = mk("__name__", "m", "k", "a", NULL), b = mk("__name__", "m", "k", "b", NULL);
    rw_sample s1 = {1000, 1}, s2 = {2000, 2};
    rw_append_series as[2] = {
        {.labels = a.l, .nlabels = a.n, .hash = rw_labels_hash(a.l, a.n), .samples = &s1, .nsamples = 1},
        {.labels = b.l, .nlabels = b.n, .hash = rw_labels_hash(b.l, b.n), .samples = &s1, .nsamples = 1},
    };
    uint32_t refs[2] = {0, 0};
    uint8_t gone[2] = {0, 0};
    rw_append_result r = {.refs = refs, .gone = gone};
    rw_err e;
    rw_err_init(&e);
    CHECK_INT(rw_store_append(st, as, 2, &r, &e), RW_OK);
    CHECK(refs[0] != 0 && refs[1] != 0);
    /* by ref only: the labels given are not read (here: b's, for a) */
    rw_append_series byref = {.labels = b.l, .nlabels = b.n, .hash = as[0].hash, .samples = &s2,
                              .nsamples = 1, .ref = refs[0], .ref_only = 1};
    uint32_t ref2 = 0;
    rw_append_result r2 = {.refs = &ref2};
    CHECK_INT(rw_store_append(st, &byref, 1, &r2, &e), RW_OK);
    CHECK_INT(r2.samples_written, 1);
    CHECK_INT(r2.series_created, 0);
    CHECK_INT(ref2, refs[0]);
    /* an id no series of that hash has: gone, nothing stored or created */
    byref.ref = refs[0] + 1000;
    uint8_t g = 0;
    rw_append_result r3 = {.gone = &g};
    CHECK_INT(rw_store_append(st, &byref, 1, &r3, &e), RW_OK);
    CHECK_INT(r3.ngone, 1);
    CHECK_INT(g, 1);
    CHECK_INT(r3.samples_written + r3.series_created, 0);
    rw_arena *ar = rw_arena_new(0, 0);
    rw_series_data *out;
    CHECK_INT(sel(st, ar, &out, 0, 10000, RW_MATCH_EQ, "k", "a", 0, NULL, NULL), 1);
    CHECK_INT(out[0].n, 2);
    CHECK_INT(sel(st, ar, &out, 0, 10000, RW_MATCH_EQ, "k", "b", 0, NULL, NULL), 1);
    CHECK_INT(out[0].n, 1);
    rw_arena_free(ar);
    rw_store_close(st);
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_refs);
    RUN(test_rules);
    RUN(test_select);
    RUN(test_metadata);
    RUN(test_series_limit);
    TEST_DONE();
}
