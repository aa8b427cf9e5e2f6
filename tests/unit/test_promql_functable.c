/* test_promql_functable.c - the PromQL function table (query/func.c): every
 * row has an implementation, rows sharing one differ by op, rows are sorted (lookup is a binary search) and
 * every name is found; plus the evaluator's Go-compatible helpers that
 * labels and messages depend on (float formatting, quoting, natural order). */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "query/eval_int.h"
#include "query/func.h"
#include "tests/unit/test.h"

static void test_table(void)
{
    size_t n;
    const rw_func *t = rw_func_table(&n);
    CHECK(n > 70);
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(t[i].impl != NULL, "function %s has no implementation", t[i].name);
        if (i > 0)
            CHECK_MSG(strcmp(t[i - 1].name, t[i].name) < 0, "table not sorted at %s", t[i].name);
        CHECK_MSG(rw_func_lookup(t[i].name, strlen(t[i].name)) == &t[i], "lookup %s", t[i].name);
        CHECK_MSG(t[i].max_args < 0 || t[i].max_args >= t[i].min_args, "arity of %s", t[i].name);
    }
    /* functions that share an implementation are told apart by their op, never
       by name: two rows with the same impl and op must be aliases */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (t[i].impl == t[j].impl && t[i].op == t[j].op)
                CHECK_MSG(!strcmp(t[i].name, "double_exponential_smoothing") &&
                              !strcmp(t[j].name, "holt_winters"),
                          "%s and %s share impl and op", t[i].name, t[j].name);
    CHECK(rw_func_lookup("nope", 4) == NULL);
    CHECK(rw_func_lookup("rat", 3) == NULL);
    CHECK(rw_func_lookup("ratex", 5) == NULL);
    static const char *const must[] = {"rate", "histogram_quantile", "label_replace",
                                       "holt_winters", "double_exponential_smoothing",
                                       "sort_by_label_desc", "limit_ratio_not_a_function"};
    for (size_t i = 0; i + 1 < sizeof must / sizeof must[0]; i++)
        CHECK_MSG(rw_func_lookup(must[i], strlen(must[i])) != NULL, "missing %s", must[i]);
}

static void test_format(void)
{
    char b[64];
    rw_fmt_go_g(b, sizeof b, 1.5);
    CHECK_STR(b, "1.5");
    rw_fmt_go_g(b, sizeof b, 1e6);
    CHECK_STR(b, "1e+06");
    rw_fmt_go_g(b, sizeof b, 123456);
    CHECK_STR(b, "123456");
    rw_fmt_go_g(b, sizeof b, 0.0001);
    CHECK_STR(b, "0.0001");
    rw_fmt_go_g(b, sizeof b, 0.00001);
    CHECK_STR(b, "1e-05");
    rw_fmt_go_g(b, sizeof b, NAN);
    CHECK_STR(b, "NaN");
    rw_fmt_go_g(b, sizeof b, -INFINITY);
    CHECK_STR(b, "-Inf");
    rw_fmt_go_f(b, sizeof b, 1e21);
    CHECK_STR(b, "1000000000000000000000");
    rw_fmt_go_f(b, sizeof b, 0.1);
    CHECK_STR(b, "0.1");
    rw_fmt_go_f(b, sizeof b, 100);
    CHECK_STR(b, "100");
    rw_fmt_go_f(b, sizeof b, -2.5);
    CHECK_STR(b, "-2.5");

    rw_arena *a = rw_arena_new(0, 0);
    CHECK_STR(rw_go_quote(a, "a\xc5z"), "\"a\\xc5z\"");
    CHECK_STR(rw_go_quote(a, "x\"y"), "\"x\\\"y\"");
    CHECK_STR(rw_go_quote(a, "h\xc3\xa9"), "\"h\xc3\xa9\"");
    rw_arena_free(a);
}

static void test_natural(void)
{
    CHECK(rw_natural_cmp("a2", "a10") < 0);
    CHECK(rw_natural_cmp("a10", "a2") > 0);
    CHECK(rw_natural_cmp("1.2.3", "1.11.3") < 0);
    CHECK(rw_natural_cmp("4m5", "4m600") < 0);
    CHECK(rw_natural_cmp("abc", "abd") < 0);
    CHECK(rw_natural_cmp("x", "x1") < 0);
    /* as facette/natsort: the empty string never sorts first */
    CHECK(rw_natural_cmp("", "a") > 0);
}

int main(void)
{
    RUN(test_table);
    RUN(test_format);
    RUN(test_natural);
    TEST_DONE();
}
