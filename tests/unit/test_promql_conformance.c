/* test_promql_conformance.c - runs Prometheus' PromQL test scripts (the
 * promqltest format: load / clear / eval ... / expect ...) in process against
 * rw_engine over a real rw_store: ../shared/conformance/promql/NAME.test and
 * rwgate's own tests/promql/NAME.test (paths relative to the repo root, the
 * working directory under ctest). Each `clear`-separated part gets a fresh
 * store in a temporary directory. Comparison follows promqltest: label sets
 * exact, floats within 1e-6 relative (NaN == NaN), order only for ordered
 * evals, annotations when the script states them. Native-histogram cases are
 * skipped (never counted as passed). The script parser is
 * tests/unit/support/promql_script.c; this file compares and runs, and also
 * tests the engine API behaviour the scripts cannot express.
 *
 * Usage: test_promql_conformance [FILE.test|DIR ...]
 *   PROMQL_FILTER=REGEX     run only evals whose expression matches
 *   PROMQL_RANGE_CHECK=0    do not re-run instant evals as range queries
 *   PROMQL_VERBOSE=1        print every case
 * Known failures: tests/unit/promql_known_failures.txt, lines
 * "FILE.test:LINE reason"; such a case failing is expected, passing is
 * reported so the line can be removed. */
#define _GNU_SOURCE
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdarg.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/labels.h"
#include "query/promql.h"
#include "store/store.h"
#include "tests/unit/support/promql_script.h"
#include "tests/unit/test.h"

/* ---- regex helpers (PCRE2; Go's RE2 syntax is close enough here) ---- */

static int re_search(const char *re, const char *s)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!c)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    int r = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    return r >= 0;
}

/* ---- comparison ---- */

static int almost_equal(double a, double b)
{
    const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
    if (isnan(a) && isnan(b))
        return 1;
    if (a == b)
        return 1;
    double absum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (isnan(diff))
        return 0;
    if (a == 0 || b == 0 || absum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(absum, 1.7976931348623157e308) < eps;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 64) * 2;
        b->p = pt_xrealloc(b->p, b->cap);
        if (b->n == 0)
            b->p[0] = '\0';
    }
}

static void sb_labels(sbuf *b, const rw_label *l, size_t n)
{
    const char *name = rw_labels_get(l, n, RW_METRIC_NAME);
    sb_printf(b, "%s{", name ? name : "");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(l[i].name, RW_METRIC_NAME))
            continue;
        sb_printf(b, "%s%s=\"%s\"", first ? "" : ", ", l[i].name, l[i].value);
        first = 0;
    }
    sb_printf(b, "}");
}

static void sb_val(sbuf *b, double v)
{
    if (isnan(v))
        sb_printf(b, "NaN");
    else if (isinf(v))
        sb_printf(b, v > 0 ? "+Inf" : "-Inf");
    else
        sb_printf(b, "%.17g", v);
}

static void summarize(sbuf *b, const rw_result *r)
{
    switch (r->type) {
    case RW_VAL_SCALAR:
        sb_printf(b, "scalar ");
        sb_val(b, r->scalar);
        break;
    case RW_VAL_STRING:
        sb_printf(b, "string \"%s\"", r->string);
        break;
    case RW_VAL_VECTOR:
    case RW_VAL_MATRIX:
        sb_printf(b, "%s[%zu]:", r->type == RW_VAL_VECTOR ? "vector" : "matrix", r->nseries);
        for (size_t s = 0; s < r->nseries && s < 40; s++) {
            sb_printf(b, " ");
            sb_labels(b, r->series[s].labels, r->series[s].nlabels);
            for (size_t k = 0; k < r->series[s].npoints && k < 30; k++) {
                sb_printf(b, " ");
                sb_val(b, r->series[s].points[k].v);
                if (r->type == RW_VAL_MATRIX)
                    sb_printf(b, "@%lld", (long long)r->series[s].points[k].t);
            }
            sb_printf(b, ";");
        }
        break;
    default:
        sb_printf(b, "none");
    }
    for (size_t i = 0; i < r->nwarnings; i++)
        sb_printf(b, " [warn: %s]", r->warnings[i]);
    for (size_t i = 0; i < r->ninfos; i++)
        sb_printf(b, " [info: %s]", r->infos[i]);
}

static void expected_text(sbuf *b, const pt_eval *e)
{
    if (pt_is_fail(e))
        sb_printf(b, "<error>%s%s", e->fail_msg ? " " : "", e->fail_msg ? e->fail_msg : "");
    else if (e->expect_scalar) {
        sb_printf(b, "scalar ");
        sb_val(b, e->scalar);
    } else if (e->has_string)
        sb_printf(b, "string \"%s\"", e->string);
    else if (!e->nexpected)
        sb_printf(b, "<empty result>");
    for (size_t i = 0; i < e->nexpected; i++) {
        sb_printf(b, " ");
        sb_labels(b, e->expected[i].labels.l, e->expected[i].labels.n);
        for (size_t k = 0; k < e->expected[i].nvals; k++) {
            pt_val v = e->expected[i].vals[k];
            sb_printf(b, " ");
            if (v.kind == PT_VAL_NONE)
                sb_printf(b, "_");
            else if (v.kind == PT_VAL_STALE)
                sb_printf(b, "stale");
            else if (v.kind == PT_VAL_HIST)
                sb_printf(b, "{{hist}}");
            else
                sb_val(b, v.v);
        }
        sb_printf(b, ";");
    }
}

static int find_expected(const pt_eval *e, const rw_label *l, size_t n)
{
    for (size_t i = 0; i < e->nexpected; i++)
        if (rw_labels_equal(e->expected[i].labels.l, e->expected[i].labels.n, l, n))
            return (int)i;
    return -1;
}

static double val_f(pt_val v)
{
    return v.kind == PT_VAL_STALE ? NAN : v.v;
}

/* The index of the expected series a result series stands for, marked in
 * seen; -1 with a message when there is none or it was seen before. */
static int match_expected(const pt_eval *e, const rw_result_series *rs, char *seen, sbuf *msg)
{
    int k = find_expected(e, rs->labels, rs->nlabels);
    if (k < 0) {
        sb_printf(msg, "unexpected metric ");
        sb_labels(msg, rs->labels, rs->nlabels);
        sb_printf(msg, " in result");
        return -1;
    }
    if (seen[k]) {
        sb_printf(msg, "metric appears more than once in the result");
        return -1;
    }
    seen[k] = 1;
    return k;
}

/* 1 when every expected series was seen, else 0 with a message. */
static int all_seen(const pt_eval *e, const char *seen, sbuf *msg)
{
    for (size_t k = 0; k < e->nexpected; k++)
        if (!seen[k]) {
            sb_printf(msg, "expected metric ");
            sb_labels(msg, e->expected[k].labels.l, e->expected[k].labels.n);
            sb_printf(msg, " not found");
            return 0;
        }
    return 1;
}

/* Returns 1 when the result matches, else 0 with a message in *msg. */
static int compare_vector(const pt_eval *e, const rw_result_series *s, size_t n, int ordered,
                          sbuf *msg)
{
    if (e->expect_scalar) {
        sb_printf(msg, "expected scalar result, but got vector of %zu elements", n);
        return 0;
    }
    char *seen = calloc(e->nexpected + 1, 1);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int k = match_expected(e, &s[i], seen, msg);
        if (k < 0) {
            ok = 0;
            break;
        }
        if (ordered && (size_t)k != i) {
            sb_printf(msg, "expected metric at position %d but was at %zu", k + 1, i + 1);
            ok = 0;
            break;
        }
        double ev = e->expected[k].nvals ? val_f(e->expected[k].vals[0]) : 0;
        if (!almost_equal(ev, s[i].points[0].v)) {
            sb_printf(msg, "expected ");
            sb_val(msg, ev);
            sb_printf(msg, " for ");
            sb_labels(msg, s[i].labels, s[i].nlabels);
            sb_printf(msg, " but got ");
            sb_val(msg, s[i].points[0].v);
            ok = 0;
        }
    }
    if (ok)
        ok = all_seen(e, seen, msg);
    free(seen);
    return ok;
}

static int compare_matrix(const pt_eval *e, const rw_result *r, sbuf *msg)
{
    if (pt_is_ordered(e)) {
        sb_printf(msg, "expected ordered result, but query returned a matrix");
        return 0;
    }
    if (e->expect_scalar) {
        sb_printf(msg, "expected scalar result, but got matrix");
        return 0;
    }
    for (size_t i = 0; i + 1 < r->nseries; i++)
        if (rw_labels_cmp(r->series[i].labels, r->series[i].nlabels, r->series[i + 1].labels,
                          r->series[i + 1].nlabels) > 0) {
            sb_printf(msg, "matrix results should always be sorted by labels");
            return 0;
        }
    char *seen = calloc(e->nexpected + 1, 1);
    int ok = 1;
    int span = e->is_range || e->range_vector;
    for (size_t s = 0; s < r->nseries && ok; s++) {
        const rw_result_series *rs = &r->series[s];
        int k = match_expected(e, rs, seen, msg);
        if (k < 0) {
            ok = 0;
            break;
        }
        const pt_series *ex = &e->expected[k];
        size_t nexp = 0;
        for (size_t i = 0; i < ex->nvals; i++) {
            int64_t ts = e->start + (int64_t)i * e->step;
            if (!span || ts > e->end) {
                sb_printf(msg, "expected %zu points, but query time range cannot return this many",
                          ex->nvals);
                ok = 0;
                break;
            }
            if (ex->vals[i].kind == PT_VAL_HIST) {
                sb_printf(msg, "expected histogram points");
                ok = 0;
                break;
            }
            if (ex->vals[i].kind != PT_VAL_NONE)
                nexp++;
        }
        if (!ok)
            break;
        if (nexp != rs->npoints) {
            sb_printf(msg, "expected %zu float points for ", nexp);
            sb_labels(msg, rs->labels, rs->nlabels);
            sb_printf(msg, ", but got %zu", rs->npoints);
            ok = 0;
            break;
        }
        size_t j = 0;
        for (size_t i = 0; i < ex->nvals && ok; i++) {
            if (ex->vals[i].kind == PT_VAL_NONE)
                continue;
            int64_t ts = e->start + (int64_t)i * e->step;
            if (rs->points[j].t != ts) {
                sb_printf(msg, "expected point %zu of ", j);
                sb_labels(msg, rs->labels, rs->nlabels);
                sb_printf(msg, " at t=%lld, got t=%lld", (long long)ts, (long long)rs->points[j].t);
                ok = 0;
            } else if (!almost_equal(val_f(ex->vals[i]), rs->points[j].v)) {
                sb_printf(msg, "expected value at t=%lld for ", (long long)ts);
                sb_labels(msg, rs->labels, rs->nlabels);
                sb_printf(msg, " to be ");
                sb_val(msg, val_f(ex->vals[i]));
                sb_printf(msg, ", got ");
                sb_val(msg, rs->points[j].v);
                ok = 0;
            }
            j++;
        }
    }
    if (ok)
        ok = all_seen(e, seen, msg);
    free(seen);
    return ok;
}

static int compare_result(const pt_eval *e, const rw_result *r, sbuf *msg)
{
    switch (r->type) {
    case RW_VAL_MATRIX:
        return compare_matrix(e, r, msg);
    case RW_VAL_VECTOR:
        return compare_vector(e, r->series, r->nseries, pt_is_ordered(e), msg);
    case RW_VAL_SCALAR:
        if (!e->expect_scalar) {
            sb_printf(msg, "expected vector or matrix result, but got scalar");
            return 0;
        }
        if (!almost_equal(e->scalar, r->scalar)) {
            sb_printf(msg, "expected scalar ");
            sb_val(msg, e->scalar);
            sb_printf(msg, " but got ");
            sb_val(msg, r->scalar);
            return 0;
        }
        return 1;
    case RW_VAL_STRING:
        if (!e->has_string || strcmp(e->string, r->string)) {
            sb_printf(msg, "expected string \"%s\" but got \"%s\"", e->string ? e->string : "",
                      r->string);
            return 0;
        }
        return 1;
    default:
        sb_printf(msg, "unexpected result type");
        return 0;
    }
}

static int msg_match(const pt_expect *m, const char *s)
{
    return m->is_regex ? re_search(m->text, s) : !strcmp(m->text, s);
}

static int check_annos(const pt_eval *e, const rw_result *r, sbuf *msg)
{
    if (e->warn && !r->nwarnings) {
        sb_printf(msg, "expected warnings but got none");
        return 0;
    }
    if (e->info && !r->ninfos) {
        sb_printf(msg, "expected info annotations but got none");
        return 0;
    }
    for (int t = 0; t < 2; t++) {
        int kind = t ? PT_EX_INFO : PT_EX_WARN;
        const char **act = t ? r->infos : r->warnings;
        size_t nact = t ? r->ninfos : r->nwarnings;
        if (!e->nex[kind])
            continue;
        if (!nact) {
            sb_printf(msg, "expected %s annotations but none were found", t ? "info" : "warn");
            return 0;
        }
        for (size_t i = 0; i < e->nex[kind]; i++) {
            int any = 0;
            for (size_t j = 0; j < nact && !any; j++)
                any = msg_match(&e->ex[kind][i], act[j]);
            if (!any) {
                sb_printf(msg, "expected %s annotation matching '%s'", t ? "info" : "warn",
                          e->ex[kind][i].text);
                return 0;
            }
        }
        for (size_t j = 0; j < nact; j++) {
            int any = 0;
            for (size_t i = 0; i < e->nex[kind] && !any; i++)
                any = msg_match(&e->ex[kind][i], act[j]);
            if (!any) {
                sb_printf(msg, "unexpected %s annotation '%s'", t ? "info" : "warn", act[j]);
                return 0;
            }
        }
    }
    if (e->nex[PT_EX_NO_WARN] && r->nwarnings) {
        sb_printf(msg, "unexpected warning annotations: %s", r->warnings[0]);
        return 0;
    }
    if (e->nex[PT_EX_NO_INFO] && r->ninfos) {
        sb_printf(msg, "unexpected info annotations: %s", r->infos[0]);
        return 0;
    }
    return 1;
}

static int check_failure(const pt_eval *e, const char *m, sbuf *msg)
{
    if (e->fail_msg && strcmp(e->fail_msg, m)) {
        sb_printf(msg, "expected error '%s' but got: %s", e->fail_msg, m);
        return 0;
    }
    if (e->fail_re && !re_search(e->fail_re, m)) {
        sb_printf(msg, "expected error matching '%s' but got: %s", e->fail_re, m);
        return 0;
    }
    if (e->nex[PT_EX_FAIL] && !msg_match(&e->ex[PT_EX_FAIL][0], m)) {
        sb_printf(msg, "expected error matching '%s' but got: %s", e->ex[PT_EX_FAIL][0].text, m);
        return 0;
    }
    return 1;
}

/* ---- running ---- */

typedef struct known {
    char *key; /* "file.test:LINE" */
    char *reason;
    int hit;
} known;

typedef struct runner {
    rw_store *store;
    rw_engine *eng;
    char dir[256];
    int range_check, verbose;
    const char *filter;
    known *known;
    size_t nknown;
    int pass, fail, skip, xfail, xpass;
    char **hist_names;
    size_t nhist;
    int seg_has_hist, seg_has_st;
} runner;

static int quiet_fd = -1;

static void quiet(int on)
{
    /* the store logs what it does on stderr; keep the report readable */
    static int saved = -1;
    if (getenv("PROMQL_STORE_LOG"))
        return;
    if (on) {
        fflush(stderr);
        saved = dup(2);
        if (quiet_fd < 0)
            quiet_fd = open("/dev/null", O_WRONLY);
        dup2(quiet_fd, 2);
    } else if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void store_close(runner *r)
{
    if (r->eng)
        rw_engine_free(r->eng);
    r->eng = NULL;
    if (r->store) {
        quiet(1);
        rw_store_close(r->store);
        quiet(0);
        nftw(r->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    r->store = NULL;
    for (size_t i = 0; i < r->nhist; i++)
        free(r->hist_names[i]);
    free(r->hist_names);
    r->hist_names = NULL;
    r->nhist = 0;
    r->seg_has_hist = r->seg_has_st = 0;
}

static int store_open(runner *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/rwgate-promqltest-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    rw_store_opts o = {.dir = r->dir, .nshards = 1};
    rw_err err;
    rw_err_init(&err);
    quiet(1);
    r->store = rw_store_open(&o, &err);
    quiet(0);
    if (!r->store) {
        fprintf(stderr, "rw_store_open: %s\n", err.msg);
        return -1;
    }
    rw_engine_opts eo = {0};
    rw_querier sq = rw_store_querier(r->store);
    r->eng = rw_engine_new(&sq, &eo);
    return r->eng ? 0 : -1;
}

static void add_hist_name(runner *r, const char *n)
{
    r->hist_names = pt_xrealloc(r->hist_names, (r->nhist + 1) * sizeof(char *));
    r->hist_names[r->nhist++] = pt_xstrdup(n);
}

static int do_load(runner *r, const pt_load *l, const char *file, int line)
{
    for (size_t i = 0; i < l->nseries; i++) {
        const pt_series *sd = &l->series[i];
        const char *name = rw_labels_get(sd->labels.l, sd->labels.n, RW_METRIC_NAME);
        int hist = 0;
        for (size_t k = 0; k < sd->nvals; k++)
            hist |= sd->vals[k].kind == PT_VAL_HIST;
        if (hist) {
            add_hist_name(r, name ? name : "");
            r->seg_has_hist = 1;
        }
        if (l->with_nhcb && name) {
            static const char *const suf[] = {"_bucket", "_count", "_sum"};
            for (int s = 0; s < 3; s++) {
                size_t nl = strlen(name), sl = strlen(suf[s]);
                if (nl > sl && !strcmp(name + nl - sl, suf[s])) {
                    char *base = strndup(name, nl - sl);
                    add_hist_name(r, base);
                    r->seg_has_hist = 1;
                    free(base);
                }
            }
        }
        rw_sample *smp = malloc((sd->nvals + 1) * sizeof *smp);
        size_t n = 0;
        for (size_t k = 0; k < sd->nvals; k++) {
            if (sd->vals[k].kind == PT_VAL_NONE || sd->vals[k].kind == PT_VAL_HIST)
                continue;
            smp[n].t = (int64_t)k * l->interval;
            smp[n].v = sd->vals[k].kind == PT_VAL_STALE ? rw_stale_nan() : sd->vals[k].v;
            n++;
        }
        if (n) {
            rw_append_series as = {.labels = sd->labels.l, .nlabels = sd->labels.n,
                                   .hash = rw_labels_hash(sd->labels.l, sd->labels.n),
                                   .samples = smp, .nsamples = n};
            rw_append_result res = {0};
            rw_err err;
            rw_err_init(&err);
            quiet(1);
            rw_rc rc = rw_store_append(r->store, &as, 1, &res, &err);
            quiet(0);
            if (rc != RW_OK)
                fprintf(stderr, "%s:%d: append failed: %s\n", file, line, err.msg);
            else if (res.samples_written != n)
                fprintf(stderr, "%s:%d: store rejected %zu samples\n", file, line,
                        n - (size_t)res.samples_written);
        }
        free(smp);
    }
    return 0;
}

static const char *skip_reason(runner *r, const pt_eval *e)
{
    if (e->uses_hist)
        return "native histograms";
    if (r->seg_has_st)
        return "start timestamps";
    /* identifiers of the expression outside string literals */
    const char *p = e->expr;
    int unnamed = 0;
    char prev = 0;
    while (*p) {
        if (*p == '"' || *p == '\'' || *p == '`') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && q != '`' && p[1])
                    p++;
                p++;
            }
            if (*p)
                p++;
            prev = ' ';
            continue;
        }
        if (*p == '{' && !pt_is_ident(prev))
            unnamed = 1;
        if (pt_is_ident_start(*p) && !pt_is_ident(prev)) {
            const char *b = p;
            while (pt_is_ident(*p))
                p++;
            size_t n = (size_t)(p - b);
            for (size_t i = 0; i < r->nhist; i++)
                if (strlen(r->hist_names[i]) == n && !strncmp(r->hist_names[i], b, n))
                    return "native histograms";
            prev = p[-1];
            continue;
        }
        prev = *p++;
    }
    if (r->seg_has_hist && (strstr(e->expr, "__name__") || unnamed))
        return "native histograms";
    return NULL;
}

static int is_known(runner *r, const char *file, int line, known **k)
{
    char key[512];
    const char *base = strrchr(file, '/');
    snprintf(key, sizeof key, "%s:%d", base ? base + 1 : file, line);
    for (size_t i = 0; i < r->nknown; i++)
        if (!strcmp(r->known[i].key, key)) {
            *k = &r->known[i];
            return 1;
        }
    return 0;
}

/* Runs one eval; returns 1 pass, 0 fail; msg/got filled on failure. */
static int run_eval(runner *r, const pt_eval *e, sbuf *msg, sbuf *got)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_result res;
    rw_err err;
    rw_err_init(&err);
    rw_rc rc;
    if (e->is_range)
        rc = rw_engine_range(r->eng, e->expr, e->start, e->end, e->step, 0, a, &res, &err);
    else
        rc = rw_engine_instant(r->eng, e->expr, e->at, 0, a, &res, &err);
    int ok;
    if (rc != RW_OK) {
        sb_printf(got, "error (%s): %s", rw_rc_name(rc), err.msg);
        if (pt_is_fail(e))
            ok = check_failure(e, err.msg, msg);
        else {
            sb_printf(msg, "query failed");
            ok = 0;
        }
        rw_arena_free(a);
        return ok;
    }
    summarize(got, &res);
    if (pt_is_fail(e)) {
        sb_printf(msg, "expected the query to fail, but it succeeded");
        rw_arena_free(a);
        return 0;
    }
    ok = check_annos(e, &res, msg) && compare_result(e, &res, msg);
    int qctx = re_search("(start|end|range|step)\\(\\)", e->expr);
    if (ok && r->range_check && !e->is_range && !e->exclude_from_range && !pt_is_ordered(e) && !qctx) {
        rw_result rr;
        rw_err_init(&err);
        rc = rw_engine_range(r->eng, e->expr, e->at - 60000, e->at + 60000, 60000, 0, a, &rr, &err);
        if (rc != RW_OK) {
            sb_printf(msg, "range mode: query failed: %s", err.msg);
            ok = 0;
        } else if (rr.type != RW_VAL_MATRIX) {
            sb_printf(msg, "range mode: expected a matrix");
            ok = 0;
        } else {
            /* the middle step as a vector */
            rw_result_series *vs = calloc(rr.nseries + 1, sizeof *vs);
            size_t nv = 0;
            for (size_t s = 0; s < rr.nseries; s++)
                for (size_t k = 0; k < rr.series[s].npoints; k++)
                    if (rr.series[s].points[k].t == e->at) {
                        vs[nv] = rr.series[s];
                        vs[nv].points = &rr.series[s].points[k];
                        vs[nv].npoints = 1;
                        nv++;
                    }
            if (res.type == RW_VAL_SCALAR) {
                if (!nv || !almost_equal(e->scalar, vs[0].points[0].v)) {
                    sb_printf(msg, "range mode: scalar mismatch");
                    ok = 0;
                }
            } else {
                sbuf m2 = {0};
                if (!compare_vector(e, vs, nv, 0, &m2)) {
                    sb_printf(msg, "range mode: %s", m2.p ? m2.p : "");
                    sb_printf(got, " | range mode: ");
                    summarize(got, &rr);
                    ok = 0;
                }
                free(m2.p);
            }
            free(vs);
        }
    }
    rw_arena_free(a);
    return ok;
}

static void run_file(runner *r, const char *path)
{
    pt_cmd *cmds;
    size_t nc;
    int fp = 0, ff = 0, fs = 0, fx = 0;
    if (pt_parse_file(path, &cmds, &nc) < 0) {
        printf("%s: cannot parse the file\n", path);
        r->fail++;
        pt_free_cmds(cmds, nc);
        return;
    }
    if (store_open(r) < 0) {
        printf("%s: cannot open a store\n", path);
        r->fail++;
        pt_free_cmds(cmds, nc);
        return;
    }
    for (size_t i = 0; i < nc; i++) {
        pt_cmd *c = &cmds[i];
        if (c->kind == PT_CMD_CLEAR) {
            store_close(r);
            if (store_open(r) < 0)
                break;
            continue;
        }
        if (c->kind == PT_CMD_LOAD) {
            do_load(r, &c->load, path, c->line);
            continue;
        }
        pt_eval *e = &c->eval;
        if (r->filter && !re_search(r->filter, e->expr))
            continue;
        const char *why = skip_reason(r, e);
        if (why) {
            fs++;
            if (r->verbose)
                printf("SKIP %s:%d %s (%s)\n", path, e->line, e->expr, why);
            continue;
        }
        sbuf msg = {0}, got = {0};
        int ok = run_eval(r, e, &msg, &got);
        known *k = NULL;
        int isk = is_known(r, path, e->line, &k);
        if (ok) {
            fp++;
            if (isk) {
                k->hit = 1;
                printf("NOW PASSING (remove from known failures): %s:%d %s\n", path, e->line,
                       e->expr);
                r->xpass++;
            }
            if (r->verbose)
                printf("PASS %s:%d %s\n", path, e->line, e->expr);
        } else if (isk) {
            k->hit = 1;
            fx++;
            if (r->verbose)
                printf("XFAIL %s:%d %s (%s)\n", path, e->line, e->expr, k->reason);
        } else {
            ff++;
            sbuf exp = {0};
            expected_text(&exp, e);
            printf("FAIL %s:%d: %s\n  expr:     %s\n  expected: %s\n  got:      %s\n", path,
                   e->line, msg.p ? msg.p : "", e->expr, exp.p ? exp.p : "", got.p ? got.p : "");
            free(exp.p);
        }
        free(msg.p);
        free(got.p);
    }
    store_close(r);
    printf("%s: %d passed, %d failed, %d skipped, %d known failures\n", path, fp, ff, fs, fx);
    r->pass += fp;
    r->fail += ff;
    r->skip += fs;
    r->xfail += fx;
    pt_free_cmds(cmds, nc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(runner *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        printf("%s: not found\n", path);
        r->fail++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(r, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".test")) {
            names = pt_xrealloc(names, (n + 1) * sizeof *names);
            if (asprintf(&names[n++], "%s/%s", path, de->d_name) < 0)
                abort();
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        run_file(r, names[i]);
        free(names[i]);
    }
    free(names);
}

static void load_known(runner *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        char *t = pt_trim(line);
        size_t n = strlen(t);
        if (n && t[n - 1] == '\n')
            t[--n] = '\0';
        if (!*t || *t == '#')
            continue;
        char *sp = strpbrk(t, " \t");
        r->known = pt_xrealloc(r->known, (r->nknown + 1) * sizeof *r->known);
        r->known[r->nknown].key = sp ? strndup(t, (size_t)(sp - t)) : pt_xstrdup(t);
        r->known[r->nknown].reason = pt_xstrdup(sp ? pt_trim(sp) : "");
        r->known[r->nknown].hit = 0;
        r->nknown++;
    }
    free(line);
    fclose(f);
}

/* ---- engine API behaviour the scripts cannot express ---- */

typedef struct conc_arg {
    rw_engine *eng;
    int bad;
} conc_arg;

static void *conc_worker(void *p)
{
    conc_arg *c = p;
    for (int i = 0; i < 40; i++) {
        rw_arena *a = rw_arena_new(0, 0);
        rw_result res;
        rw_err err;
        rw_err_init(&err);
        rw_rc rc = rw_engine_range(c->eng,
                                   "sum by (job) (rate(api_total{job=~\"j.*\"}[2m])) * 60",
                                   60000, 600000, 30000, 0, a, &res, &err);
        if (rc != RW_OK || res.nseries != 2 || res.series[0].npoints != 19 ||
            fabs(res.series[0].points[5].v - 1) > 1e-9)
            c->bad++;
        rw_arena_free(a);
    }
    return NULL;
}

static void engine_api_tests(runner *r)
{
    if (store_open(r) < 0) {
        CHECK(0);
        return;
    }
    /* two counters rising by 1 per minute, one per job */
    for (int j = 0; j < 2; j++) {
        rw_label l[2] = {{RW_METRIC_NAME, "api_total"}, {"job", j ? "j2" : "j1"}};
        rw_sample smp[61];
        for (int k = 0; k <= 60; k++) {
            smp[k].t = (int64_t)k * 60000;
            smp[k].v = k;
        }
        rw_append_series as = {.labels = l, .nlabels = 2, .hash = rw_labels_hash(l, 2),
                               .samples = smp, .nsamples = 61};
        rw_append_result ar = {0};
        rw_err err;
        rw_err_init(&err);
        quiet(1);
        CHECK(rw_store_append(r->store, &as, 1, &ar, &err) == RW_OK);
        quiet(0);
    }
    rw_arena *a = rw_arena_new(0, 0);
    rw_result res;
    rw_err err;

    /* errors: parse, type of a range query, bad step */
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "sum(", 0, 0, a, &res, &err), RW_BADREQ);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "api_total[5m]", 0, 60000, 1000, 0, a, &res, &err),
              RW_BADREQ);
    CHECK_MSG(strstr(err.msg, "invalid expression type \"range vector\" for range query") != NULL,
              "%s", err.msg);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "api_total", 0, 60000, 0, 0, a, &res, &err), RW_BADREQ);

    /* scalars: instant gives a scalar, range a one-series matrix */
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "1 + 2", 5000, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_SCALAR && res.scalar == 3 && res.t == 5000);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "time()", 0, 120000, 60000, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_MATRIX && res.nseries == 1 && res.series[0].nlabels == 0 &&
          res.series[0].npoints == 3 && res.series[0].points[2].v == 120);
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "\"x\"", 0, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_STRING && !strcmp(res.string, "x"));

    /* max_samples */
    rw_engine_opts lo = {.max_samples = 10};
    rw_querier sq = rw_store_querier(r->store);
    rw_engine *small = rw_engine_new(&sq, &lo);
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(small, "count_over_time(api_total[1h])", 3600000, 0, a, &res,
                                &err),
              RW_EXEC);
    CHECK_STR(err.msg,
              "query processing would load too many samples into memory in query execution");
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(small, "api_total", 3600000, 0, a, &res, &err), RW_OK);
    rw_engine_free(small);

    /* timeout: a heavy subquery with a 1 ms budget */
    rw_err_init(&err);
    rw_rc rc = rw_engine_range(r->eng, "max_over_time((vector(1) + time())[1h:1s])", 0, 10000000,
                               1000, 1, a, &res, &err);
    CHECK_INT(rc, RW_TIMEOUT);
    CHECK_MSG(!strncmp(err.msg, "query timed out in ", 19), "%s", err.msg);

    /* one engine, several threads */
    conc_arg ca[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ca[i].eng = r->eng;
        ca[i].bad = 0;
        pthread_create(&th[i], NULL, conc_worker, &ca[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(ca[i].bad, 0);
    }
    rw_arena_free(a);
    store_close(r);
}

int main(int argc, char **argv)
{
    runner r = {0};
    const char *rc_env = getenv("PROMQL_RANGE_CHECK");
    r.range_check = !rc_env || strcmp(rc_env, "0");
    r.verbose = getenv("PROMQL_VERBOSE") != NULL;
    r.filter = getenv("PROMQL_FILTER");
    load_known(&r, "tests/unit/promql_known_failures.txt");
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_path(&r, argv[i]);
    } else {
        run_path(&r, "../shared/conformance/promql");
        run_path(&r, "tests/promql");
    }
    if (argc <= 1 && !r.filter)
        engine_api_tests(&r);
    printf("TOTAL: %d passed, %d failed, %d skipped, %d known failures, %d known now passing\n",
           r.pass, r.fail, r.skip, r.xfail, r.xpass);
    for (size_t i = 0; i < r.nknown; i++) {
        free(r.known[i].key);
        free(r.known[i].reason);
    }
    free(r.known);
    if (quiet_fd >= 0)
        close(quiet_fd);
    t_pass += r.pass;
    t_fail += r.fail;
    TEST_DONE();
}
