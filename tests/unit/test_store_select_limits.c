/* test_store_select_limits.c - series selection under hostile matchers: a
 * regex that hits PCRE2's match limit fails the select (RW_EXEC) instead of
 * selecting nothing, for positive matchers (postings scan) and for matchers
 * that match "" (the per-series filter) alike; a querier with a deadline
 * (rw_querier_with_deadline) fails with RW_TIMEOUT once it has passed, in
 * select and in label names/values; regex answers are the same through the
 * out-of-lock path as a plain scan would give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/labels.h"
#include "core/timeutil.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

static void append_one(rw_store *st, const char *v, const char *w)
{
    rw_label l[3] = {{"__name__", "m"}, {"v", v}, {"w", w}};
    rw_sample s = {1000, 1};
    rw_append_series as = {l, 3, rw_labels_hash(l, 3), &s, 1};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err e;
    rw_err_init(&e);
    CHECK_MSG(rw_store_append(st, &as, 1, &res, &e) == RW_OK, "append: %s", e.msg);
}

static rw_rc sel(const rw_querier *q, rw_match_op op, const char *name, const char *re,
                 size_t *n, rw_err *e)
{
    rw_matcher m[2];
    rw_err_init(e);
    rw_matcher_init(&m[0], RW_MATCH_EQ, "__name__", "m", e);
    rw_matcher_init(&m[1], op, name, re, e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    rw_rc rc = rw_query_select(q, m, 2, 0, 10000, RW_SELECT_LABELS_ONLY, 0, a, &out, n, e);
    rw_arena_free(a);
    rw_matcher_free(&m[0]);
    rw_matcher_free(&m[1]);
    return rc;
}

int main(void)
{
    char *dir = test_mkdtemp("rwsel");
    rw_store_opts o = {.dir = dir, .nshards = 2};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK_MSG(st != NULL, "open: %s", e.msg);
    if (!st)
        TEST_DONE();
    char bad[64];
    memset(bad, 'a', 40);
    strcpy(bad + 40, "b");
    append_one(st, "aaaa", "x");
    append_one(st, "aab", "y");
    append_one(st, bad, "z");
    rw_querier q = rw_store_querier(st);
    size_t n = 0;

    /* answers through the memoised out-of-lock path */
    CHECK(sel(&q, RW_MATCH_RE, "v", "(a|aa)+b", &n, &e) == RW_OK && n == 2);
    CHECK(sel(&q, RW_MATCH_RE, "w", "[xy]+", &n, &e) == RW_OK && n == 2);
    CHECK(sel(&q, RW_MATCH_NRE, "w", "[xy]+", &n, &e) == RW_OK && n == 1);
    CHECK(sel(&q, RW_MATCH_NRE, "absent", "[xy]+", &n, &e) == RW_OK && n == 3);

    /* the match limit is an error on both paths, never "no match" */
    rw_rc rc = sel(&q, RW_MATCH_RE, "v", "(a|aa)+", &n, &e);
    CHECK_MSG(rc == RW_EXEC && strstr(e.msg, "match limit"), "rc %d: %s", rc, e.msg);
    rc = sel(&q, RW_MATCH_NRE, "v", "(a|aa)+", &n, &e);
    CHECK_MSG(rc == RW_EXEC && strstr(e.msg, "match limit"), "rc %d: %s", rc, e.msg);

    /* a deadline that has passed */
    rw_arena *a = rw_arena_new(0, 0);
    rw_querier dq = rw_querier_with_deadline(&q, rw_mono_ns() - 1, a);
    CHECK(dq.ctx != q.ctx);
    rc = sel(&dq, RW_MATCH_RE, "w", "[xy]+", &n, &e);
    CHECK_MSG(rc == RW_TIMEOUT, "rc %d: %s", rc, e.msg);
    char **vals;
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_RE, "w", "[xy]+", &e);
    rc = dq.ops->label_values(dq.ctx, "v", &m, 1, 0, 10000, a, &vals, &n, &e);
    CHECK_MSG(rc == RW_TIMEOUT, "rc %d: %s", rc, e.msg);
    rc = dq.ops->label_names(dq.ctx, &m, 1, 0, 10000, a, &vals, &n, &e);
    CHECK_MSG(rc == RW_TIMEOUT, "rc %d: %s", rc, e.msg);
    /* a deadline far away changes nothing */
    rw_querier fq = rw_querier_with_deadline(&q, rw_mono_ns() + 60000000000LL, a);
    CHECK(sel(&fq, RW_MATCH_RE, "w", "[xy]+", &n, &e) == RW_OK && n == 2);
    rc = fq.ops->label_values(fq.ctx, "v", &m, 1, 0, 10000, a, &vals, &n, &e);
    CHECK(rc == RW_OK && n == 2);
    rw_matcher_free(&m);
    rw_arena_free(a);

    rw_store_close(st);
    test_rmtree(dir);
    TEST_DONE();
}
