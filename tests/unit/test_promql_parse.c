/* test_promql_parse.c - the PromQL lexer and parser (query/lex.c, parse.c,
 * ast.c): valid expressions checked through the printed form and through an
 * S-expression view of the tree (precedence, associativity, modifiers),
 * invalid ones by error message and byte position, series selectors for
 * match[], and every `eval` expression of the shared conformance files
 * (tests/promql/upstream/NAME.test, relative to the repo root). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "query/ast.h"
#include "query/func.h"
#include "tests/unit/test.h"

/* ---- helpers ---- */

static char *fmt_expr(const char *q, char *out, size_t cap, rw_err *err)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_node *n = NULL;
    rw_err_init(err);
    out[0] = '\0';
    rw_rc rc = rw_promql_parse(q, a, &n, err);
    if (rc == RW_OK) {
        rw_buf b;
        rw_buf_init(&b, 0);
        rw_ast_format(n, &b);
        snprintf(out, cap, "%s", b.p ? b.p : "");
        rw_buf_free(&b);
        rw_ast_free(n);
    } else {
        snprintf(out, cap, "ERROR: %s", err->msg);
    }
    rw_arena_free(a);
    return out;
}

/* An S-expression view of the tree: (op lhs rhs), (neg x), (paren x),
 * (fn args...), (agg[ by(l..)] [param] expr), (subq expr range step), and
 * the printed form for selectors and literals. */
static void sexpr(const rw_node *n, rw_buf *b)
{
    switch (n->kind) {
    case RW_N_BINARY: {
        const rw_vector_matching *vm = n->u.bin.matching;
        rw_buf_printf(b, "(%s", rw_binop_str(n->u.bin.op));
        if (n->u.bin.return_bool)
            rw_buf_puts(b, " bool");
        if (vm && (vm->on || vm->nlabels)) {
            rw_buf_puts(b, vm->on ? " on(" : " ignoring(");
            for (size_t i = 0; i < vm->nlabels; i++)
                rw_buf_printf(b, "%s%s", i ? "," : "", vm->labels[i]);
            rw_buf_putc(b, ')');
        }
        if (vm && (vm->card == RW_CARD_MANY_TO_ONE || vm->card == RW_CARD_ONE_TO_MANY)) {
            rw_buf_puts(b, vm->card == RW_CARD_MANY_TO_ONE ? " group_left(" : " group_right(");
            for (size_t i = 0; i < vm->ninclude; i++)
                rw_buf_printf(b, "%s%s", i ? "," : "", vm->include[i]);
            rw_buf_putc(b, ')');
        }
        if (vm && vm->card == RW_CARD_MANY_TO_MANY)
            rw_buf_puts(b, " m2m");
        rw_buf_putc(b, ' ');
        sexpr(n->u.bin.lhs, b);
        rw_buf_putc(b, ' ');
        sexpr(n->u.bin.rhs, b);
        rw_buf_putc(b, ')');
        break;
    }
    case RW_N_UNARY:
        rw_buf_puts(b, "(neg ");
        sexpr(n->u.unary.expr, b);
        rw_buf_putc(b, ')');
        break;
    case RW_N_PAREN:
        rw_buf_puts(b, "(paren ");
        sexpr(n->u.unary.expr, b);
        rw_buf_putc(b, ')');
        break;
    case RW_N_CALL:
        rw_buf_printf(b, "(%s", n->u.call.fn->name);
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            rw_buf_putc(b, ' ');
            sexpr(n->u.call.args[i], b);
        }
        rw_buf_putc(b, ')');
        break;
    case RW_N_AGG:
        rw_buf_printf(b, "(%s", rw_aggop_str(n->u.agg.op));
        if (n->u.agg.has_grouping) {
            rw_buf_puts(b, n->u.agg.without ? " without(" : " by(");
            for (size_t i = 0; i < n->u.agg.ngrouping; i++)
                rw_buf_printf(b, "%s%s", i ? "," : "", n->u.agg.grouping[i]);
            rw_buf_putc(b, ')');
        }
        if (n->u.agg.param) {
            rw_buf_putc(b, ' ');
            sexpr(n->u.agg.param, b);
        }
        rw_buf_putc(b, ' ');
        sexpr(n->u.agg.expr, b);
        rw_buf_putc(b, ')');
        break;
    case RW_N_SUBQUERY:
        rw_buf_puts(b, "(subq ");
        sexpr(n->u.subq.expr, b);
        rw_buf_printf(b, " %lld %lld)", (long long)n->u.subq.range_ms, (long long)n->u.subq.step_ms);
        break;
    default:
        rw_ast_format(n, b);
        break;
    }
}

static char *sexpr_expr(const char *q, char *out, size_t cap)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_node *n = NULL;
    rw_err err;
    rw_err_init(&err);
    if (rw_promql_parse(q, a, &n, &err) == RW_OK) {
        rw_buf b;
        rw_buf_init(&b, 0);
        sexpr(n, &b);
        snprintf(out, cap, "%s", b.p ? b.p : "");
        rw_buf_free(&b);
        rw_ast_free(n);
    } else {
        snprintf(out, cap, "ERROR: %s", err.msg);
    }
    rw_arena_free(a);
    return out;
}

/* ---- valid expressions: printed form (which must also re-parse to itself) ---- */

static const struct {
    const char *in, *want;
} fmt_cases[] = {
    {"foo", "foo"},
    {"  foo  ", "foo"},
    {"foo:bar:baz", "foo:bar:baz"},
    {":foo", ":foo"},
    {"foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\"}", "foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\"}"},
    {"foo{a=\"b\",}", "foo{a=\"b\"}"},
    {"foo{}", "foo"},
    {"{__name__=\"foo\"}", "{__name__=\"foo\"}"},
    {"{__name__=~\"foo|bar\", job=\"x\"}", "{__name__=~\"foo|bar\", job=\"x\"}"},
    {"{\"my.metric\", \"a.b\"=\"c\"}", "{\"my.metric\", \"a.b\"=\"c\"}"},
    {"{\"foo\"}", "foo"},
    {"{\"foo\", a=\"b\"}", "foo{a=\"b\"}"},
    {"{\"foo\", \"bar\"}", "{\"foo\", __name__=\"bar\"}"},
    {"{\"foo\", __name__=~\"b.*\"}", "{\"foo\", __name__=~\"b.*\"}"},
    {"foo{\"a.b\"=\"c\"}", "foo{\"a.b\"=\"c\"}"},
    {"{\"über\"}", "{\"über\"}"},
    {"foo{by=\"x\", offset=\"y\", sum=\"z\"}", "foo{by=\"x\", offset=\"y\", sum=\"z\"}"},
    {"foo[5m]", "foo[5m]"},
    {"foo[1h30m]", "foo[1h30m]"},
    {"foo[90m]", "foo[1h30m]"},
    {"foo[1d12h]", "foo[1d12h]"},
    {"foo[2w]", "foo[2w]"},
    {"foo[1y]", "foo[1y]"},
    {"foo[500ms]", "foo[500ms]"},
    {"foo[1m30s500ms]", "foo[1m30s500ms]"},
    {"foo[90]", "foo[1m30s]"},
    {"foo offset 5m", "foo offset 5m"},
    {"foo offset -5m", "foo offset -5m"},
    {"foo offset 1.5", "foo offset 1s500ms"},
    {"foo @ 100", "foo @ 100.000"},
    {"foo @ 1.5", "foo @ 1.500"},
    {"foo @ -100", "foo @ -100.000"},
    {"foo offset 5m @ 100", "foo @ 100.000 offset 5m"},
    {"foo @ 100 offset 5m", "foo @ 100.000 offset 5m"},
    {"foo @ start()", "foo @ start()"},
    {"foo @ end() offset 1m", "foo @ end() offset 1m"},
    {"foo[5m] @ end()", "foo[5m] @ end()"},
    {"foo[5m] offset 1m @ 10", "foo[5m] @ 10.000 offset 1m"},
    {"rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]"},
    {"rate(foo[5m])[30m:]", "rate(foo[5m])[30m:]"},
    {"foo[30m:] offset 1m @ 10", "foo[30m:] @ 10.000 offset 1m"},
    {"(foo + bar)[1h:5m] @ start()", "(foo + bar)[1h:5m] @ start()"},
    {"max_over_time(rate(foo[5m])[1h:])", "max_over_time(rate(foo[5m])[1h:])"},
    {"1", "1"},
    {"0x1F", "31"},
    {"0X10", "16"},
    {"010", "8"},
    {"019", "19"},
    {"0.10", "0.1"},
    {"007e1", "70"},
    {"1e3", "1000"},
    {"1E-3", "0.001"},
    {"1.5e-7", "1.5e-07"},
    {"1e6", "1e+06"},
    {"123456", "123456"},
    {".5", "0.5"},
    {"5.", "5"},
    {"Inf", "+Inf"},
    {"+inf", "+Inf"},
    {"-Inf", "-Inf"},
    {"NaN", "NaN"},
    {"nan", "NaN"},
    {"-1", "-1"},
    {"1h", "3600"},
    {"90s", "90"},
    {"\"a\\nb\"", "\"a\\nb\""},
    {"'single \\' quote'", "\"single ' quote\""},
    {"\"double \\\" quote\"", "\"double \\\" quote\""},
    {"`raw \\n string`", "\"raw \\\\n string\""},
    {"\"\\x41\\u00e9\\U0001F600\\101\\t\"", "\"Aé\xf0\x9f\x98\x80" "A\\t\""},
    {"\"\\a\\b\\f\\r\\v\\\\\"", "\"\\a\\b\\f\\r\\v\\\\\""},
    {"sum by (job) (rate(x[5m]))", "sum by (job) (rate(x[5m]))"},
    {"sum(rate(x[5m])) by (job)", "sum by (job) (rate(x[5m]))"},
    {"SUM BY (job) (x)", "sum by (job) (x)"},
    {"sum without (a, b) (x)", "sum without (a, b) (x)"},
    {"sum without () (x)", "sum without () (x)"},
    {"sum by () (x)", "sum(x)"},
    {"sum by (a,) (x)", "sum by (a) (x)"},
    {"sum by (\"a.b\", c) (x)", "sum by (\"a.b\", c) (x)"},
    {"sum by (offset, by, sum) (x)", "sum by (offset, by, sum) (x)"},
    {"topk by (a) (5, x)", "topk by (a) (5, x)"},
    {"bottomk(3, x)", "bottomk(3, x)"},
    {"quantile(0.9, x)", "quantile(0.9, x)"},
    {"count_values(\"v\", x)", "count_values(\"v\", x)"},
    {"limitk(2, x)", "limitk(2, x)"},
    {"limit_ratio(0.5, x)", "limit_ratio(0.5, x)"},
    {"group(x)", "group(x)"},
    {"stddev(x) + stdvar(x) + avg(x) + min(x) + max(x) + count(x)",
     "stddev(x) + stdvar(x) + avg(x) + min(x) + max(x) + count(x)"},
    {"a + on (x) group_left (y) b", "a + on (x) group_left (y) b"},
    {"a + on(x) group_left b", "a + on (x) group_left () b"},
    {"a * ignoring(x, y) group_right(z) b", "a * ignoring (x, y) group_right (z) b"},
    {"a + on () b", "a + on () b"},
    {"a + ignoring () b", "a + b"},
    {"a + on(offset, by) b", "a + on (offset, by) b"},
    {"a > bool 1", "a > bool 1"},
    {"1 < bool 2", "1 < bool 2"},
    {"a == bool on(x) b", "a == bool on (x) b"},
    {"a and b unless c or d", "a and b unless c or d"},
    {"a AND b", "a and b"},
    {"a atan2 b", "a atan2 b"},
    {"time()", "time()"},
    {"pi()", "pi()"},
    {"day_of_month()", "day_of_month()"},
    {"label_replace(x, \"a\", \"b\", \"c\", \"d\")", "label_replace(x, \"a\", \"b\", \"c\", \"d\")"},
    {"label_join(x, \"a\", \",\", \"b\", \"c\", \"d\", \"e\")",
     "label_join(x, \"a\", \",\", \"b\", \"c\", \"d\", \"e\")"},
    {"round(x, 0.5)", "round(x, 0.5)"},
    {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
     "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"},
    {"foo # a comment\n + bar", "foo + bar"},
    {"# leading comment\nfoo", "foo"},
    {"-foo", "-foo"},
    {"-(1)", "-(1)"},
    {"+foo", "foo"},
    {"+(1)", "(1)"},
    {"1 + -2", "1 + -2"},
    {"(1 + 2) * 3", "(1 + 2) * 3"},
    {"\"str\"", "\"str\""},
    {"predict_linear(x[5m], 1h)", "predict_linear(x[5m], 3600)"},
    {"count > 5", "count > 5"},
    {"start + end", "start + end"},
};

/* ---- valid expressions: tree shape ---- */

static const struct {
    const char *in, *want;
} shape_cases[] = {
    {"1 + 2 * 3", "(+ 1 (* 2 3))"},
    {"1 * 2 + 3", "(+ (* 1 2) 3)"},
    {"1 - 2 - 3", "(- (- 1 2) 3)"},
    {"a / b * c % d", "(% (* (/ a b) c) d)"},
    {"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"},
    {"-2 ^ 2", "(neg (^ 2 2))"},
    {"-2", "-2"},
    {"- -2", "2"},
    {"-a * b", "(* (neg a) b)"},
    {"a - -b", "(- a (neg b))"},
    {"2 ^ -1", "(^ 2 -1)"},
    {"2 ^ -a ^ 2", "(^ 2 (neg (^ a 2)))"},
    {"a ^ b * c", "(* (^ a b) c)"},
    {"a or b and c", "(or m2m a (and m2m b c))"},
    {"a and b or c", "(or m2m (and m2m a b) c)"},
    {"a unless b and c", "(and m2m (unless m2m a b) c)"},
    {"a == b + c", "(== a (+ b c))"},
    {"a + b == c", "(== (+ a b) c)"},
    {"a > b or c < d", "(or m2m (> a b) (< c d))"},
    {"a / b atan2 c", "(atan2 (/ a b) c)"},
    {"a + b atan2 c", "(+ a (atan2 b c))"},
    {"(a + b) * c", "(* (paren (+ a b)) c)"},
    {"a > bool 1", "(> bool a 1)"},
    {"a * on(x, y) group_left(z) b", "(* on(x,y) group_left(z) a b)"},
    {"a + ignoring(x) group_right b", "(+ ignoring(x) group_right() a b)"},
    {"a and on() b", "(and on() m2m a b)"},
    {"a * 2", "(* a 2)"},
    {"sum by (job) (x)", "(sum by(job) x)"},
    {"sum(x) without (a)", "(sum without(a) x)"},
    {"sum by () (x)", "(sum by() x)"},
    {"topk(5, x)", "(topk 5 x)"},
    {"count_values(\"v\", x)", "(count_values \"v\" x)"},
    {"rate(x[5m])", "(rate x[5m])"},
    {"rate(x[5m])[30m:]", "(subq (rate x[5m]) 1800000 0)"},
    {"x[1h30m:90s]", "(subq x 5400000 90000)"},
    {"-rate(foo[5m])", "(neg (rate foo[5m]))"},
    {"-x offset 5m", "(neg x offset 5m)"},
    {"a + b offset 5m", "(+ a b offset 5m)"},
    {"sum(a) - sum(b) / 2", "(- (sum a) (/ (sum b) 2))"},
};

static void test_valid(void)
{
    char got[1024], again[1024];
    rw_err err;
    for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        fmt_expr(fmt_cases[i].in, got, sizeof got, &err);
        CHECK_MSG(strcmp(got, fmt_cases[i].want) == 0, "%s: got \"%s\", want \"%s\"",
                  fmt_cases[i].in, got, fmt_cases[i].want);
        /* the printed form parses back to itself */
        if (strncmp(got, "ERROR", 5) != 0) {
            fmt_expr(got, again, sizeof again, &err);
            CHECK_MSG(strcmp(got, again) == 0, "reformat of %s: got \"%s\"", got, again);
        }
    }
    for (size_t i = 0; i < sizeof shape_cases / sizeof shape_cases[0]; i++) {
        sexpr_expr(shape_cases[i].in, got, sizeof got);
        CHECK_MSG(strcmp(got, shape_cases[i].want) == 0, "%s: got \"%s\", want \"%s\"",
                  shape_cases[i].in, got, shape_cases[i].want);
    }
}

/* ---- AST fields ---- */

static rw_node *parse_ok(rw_arena *a, const char *q)
{
    rw_node *n = NULL;
    rw_err err;
    rw_err_init(&err);
    rw_rc rc = rw_promql_parse(q, a, &n, &err);
    CHECK_MSG(rc == RW_OK, "%s: %s", q, err.msg);
    return rc == RW_OK ? n : NULL;
}

static void test_ast_fields(void)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_node *n;

    n = parse_ok(a, "foo{a=\"b\"} offset -5m @ 12.345");
    if (n) {
        CHECK_INT(n->kind, RW_N_VECTOR_SEL);
        CHECK_INT(n->type, RW_VAL_VECTOR);
        CHECK_STR(n->u.sel.metric, "foo");
        CHECK_INT(n->u.sel.nmatchers, 2);
        int saw_name = 0, saw_a = 0;
        for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
            const rw_matcher *m = &n->u.sel.matchers[i];
            if (!strcmp(m->name, "__name__") && m->op == RW_MATCH_EQ && !strcmp(m->value, "foo"))
                saw_name = 1;
            if (!strcmp(m->name, "a") && m->op == RW_MATCH_EQ && !strcmp(m->value, "b"))
                saw_a = 1;
        }
        CHECK(saw_name && saw_a);
        CHECK_INT(n->u.sel.offset_ms, -300000);
        CHECK_INT(n->u.sel.at, RW_AT_TIME);
        CHECK_INT(n->u.sel.at_ms, 12345);
        CHECK_INT(n->pos, 0);
        rw_ast_free(n);
    }

    n = parse_ok(a, "{\"my.metric\", \"a.b\"=~\"c|d\"}[5m]");
    if (n) {
        CHECK_INT(n->kind, RW_N_MATRIX_SEL);
        CHECK_INT(n->type, RW_VAL_MATRIX);
        CHECK_STR(n->u.sel.metric, "my.metric");
        CHECK_INT(n->u.sel.range_ms, 300000);
        CHECK_INT(n->u.sel.nmatchers, 2);
        CHECK_STR(n->u.sel.matchers[1].name, "a.b");
        CHECK_INT(n->u.sel.matchers[1].op, RW_MATCH_RE);
        CHECK(rw_matcher_matches(&n->u.sel.matchers[1], "d"));
        CHECK(!rw_matcher_matches(&n->u.sel.matchers[1], "cd"));
        rw_ast_free(n);
    }

    n = parse_ok(a, "{job=~\".+\"}");
    if (n) {
        CHECK(n->u.sel.metric == NULL);
        CHECK_INT(n->u.sel.nmatchers, 1);
        rw_ast_free(n);
    }

    n = parse_ok(a, "rate(foo[1m])[5m:30s] offset 1m @ end()");
    if (n) {
        CHECK_INT(n->kind, RW_N_SUBQUERY);
        CHECK_INT(n->type, RW_VAL_MATRIX);
        CHECK_INT(n->u.subq.range_ms, 300000);
        CHECK_INT(n->u.subq.step_ms, 30000);
        CHECK_INT(n->u.subq.offset_ms, 60000);
        CHECK_INT(n->u.subq.at, RW_AT_END);
        CHECK_INT(n->u.subq.expr->kind, RW_N_CALL);
        CHECK_STR(n->u.subq.expr->u.call.fn->name, "rate");
        CHECK_INT(n->u.subq.expr->type, RW_VAL_VECTOR);
        rw_ast_free(n);
    }

    n = parse_ok(a, "a * on(x) group_left(y, z) b");
    if (n) {
        const rw_vector_matching *vm = n->u.bin.matching;
        CHECK(vm != NULL);
        if (vm) {
            CHECK_INT(vm->card, RW_CARD_MANY_TO_ONE);
            CHECK(vm->on);
            CHECK_INT(vm->nlabels, 1);
            CHECK_INT(vm->ninclude, 2);
            CHECK_STR(vm->include[1], "z");
        }
        rw_ast_free(n);
    }

    n = parse_ok(a, "a + b");
    if (n) {
        CHECK(n->u.bin.matching != NULL);
        CHECK_INT(n->u.bin.matching->card, RW_CARD_ONE_TO_ONE);
        CHECK(!n->u.bin.matching->on);
        rw_ast_free(n);
    }
    n = parse_ok(a, "a + 1");
    if (n) {
        CHECK(n->u.bin.matching == NULL);
        CHECK_INT(n->type, RW_VAL_VECTOR);
        rw_ast_free(n);
    }
    n = parse_ok(a, "1 + 2 > bool 3");
    if (n) {
        CHECK_INT(n->type, RW_VAL_SCALAR);
        CHECK(n->u.bin.return_bool);
        CHECK(n->u.bin.matching == NULL);
    }
    n = parse_ok(a, "a or b");
    if (n) {
        CHECK_INT(n->u.bin.matching->card, RW_CARD_MANY_TO_MANY);
        rw_ast_free(n);
    }

    n = parse_ok(a, "sum without (instance) (x)");
    if (n) {
        CHECK_INT(n->u.agg.op, RW_AGG_SUM);
        CHECK(n->u.agg.without);
        CHECK(n->u.agg.has_grouping);
        CHECK_INT(n->u.agg.ngrouping, 1);
        CHECK(n->u.agg.param == NULL);
        rw_ast_free(n);
    }
    n = parse_ok(a, "sum(x)");
    if (n) {
        CHECK(!n->u.agg.has_grouping);
        rw_ast_free(n);
    }
    n = parse_ok(a, "quantile(0.5, x)");
    if (n) {
        CHECK_INT(n->u.agg.op, RW_AGG_QUANTILE);
        CHECK(n->u.agg.param && n->u.agg.param->kind == RW_N_NUMBER &&
              n->u.agg.param->u.number == 0.5);
        rw_ast_free(n);
    }

    n = parse_ok(a, "-1.5e3");
    if (n) {
        CHECK_INT(n->kind, RW_N_NUMBER);
        CHECK(n->u.number == -1500);
        CHECK_INT(n->pos, 0);
    }
    n = parse_ok(a, "\"\\xff\\x00z\"");
    if (n) {
        CHECK_INT(n->kind, RW_N_STRING);
        CHECK_INT(n->type, RW_VAL_STRING);
        CHECK((unsigned char)n->u.string[0] == 0xff);
    }
    n = parse_ok(a, "scalar(x)");
    if (n) {
        CHECK_INT(n->type, RW_VAL_SCALAR);
        rw_ast_free(n);
    }
    n = parse_ok(a, "(x[5m])");
    if (n) {
        CHECK_INT(n->type, RW_VAL_MATRIX);
        rw_ast_free(n);
    }
    n = parse_ok(a, "  foo  +  bar");
    if (n) {
        CHECK_INT(n->pos, 2);
        CHECK_INT(n->end, 13);
        CHECK_INT(n->u.bin.rhs->pos, 10);
        rw_ast_free(n);
    }
    CHECK(strcmp(rw_binop_str(RW_OP_UNLESS), "unless") == 0);
    CHECK(strcmp(rw_aggop_str(RW_AGG_LIMIT_RATIO), "limit_ratio") == 0);
    CHECK(rw_binop_is_comparison(RW_OP_LTE) && !rw_binop_is_comparison(RW_OP_ADD));
    CHECK(rw_binop_is_set(RW_OP_OR) && !rw_binop_is_set(RW_OP_POW));
    rw_ast_free(NULL);
    rw_arena_free(a);
}

/* ---- invalid expressions ---- */

static const struct {
    const char *in, *want;
    int pos;
} bad_cases[] = {
    {"", "1:1: parse error: unexpected end of input", 0},
    {"foo +", "1:6: parse error: unexpected end of input", 5},
    {"foo * * 2", "1:7: parse error: unexpected <op:*>", 6},
    {"foo $", "1:5: parse error: unexpected character: '$'", 4},
    {"foo bar", "unexpected identifier \"bar\"", 4},
    {"foo 1", "unexpected number \"1\"", 4},
    {"1a", "bad number or duration syntax: \"1a\"", 0},
    {"1.5m", "bad number or duration syntax", 0},
    {"0x", "bad number or duration syntax", 0},
    {"1m5", "bad number or duration syntax", 0},
    {"5m1h", "bad number or duration syntax", 0},
    {"(foo", "unclosed left parenthesis", 4},
    {"foo)", "unexpected right parenthesis ')'", 3},
    {"foo[5m", "unclosed left bracket", 6},
    {"foo]", "unexpected right bracket ']'", 3},
    {"foo}", "unexpected right brace '}'", 3},
    {"foo{a=\"b\"", "unexpected end of input inside braces", 9},
    {"foo{a:b=\"c\"}", "unexpected character inside braces: ':'", 5},
    {"foo{a=1}", "unexpected character inside braces: '1'", 6},
    {"foo{{}", "unexpected left brace '{'", 4},
    {"foo{a}", "unexpected \"}\" in label matching, expected label matching operator", 5},
    {"foo{a=b}", "unexpected identifier \"b\" in label matching, expected string", 6},
    {"foo{a=\"b\" c=\"d\"}", "in label matching, expected \",\" or \"}\"", 10},
    {"foo{a=\"b\"}{c=\"d\"}", "unexpected \"{\"", 10},
    {"!foo", "unexpected character after '!': 'f'", 0},
    {"\"abc", "unterminated quoted string", 0},
    {"\"ab\nc\"", "unterminated quoted string", 0},
    {"`abc", "unterminated raw string", 0},
    {"\"\\q\"", "unknown escape sequence 'q'", 1},
    {"'\\\"'", "unknown escape sequence '\"'", 1},
    {"\"\\x4\"", "illegal character '\"' in escape sequence", 1},
    {"\"\\400\"", "octal escape value > 255", 1},
    {"\"\\uD800\"", "invalid Unicode code point", 1},
    {"\"\xff\"", "invalid UTF-8 rune", 0},
    {"foo(x)", "1:1: parse error: unknown function with name \"foo\"", 0},
    {"rate(foo)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector", 5},
    {"abs(foo[5m])", "expected type instant vector in call to function \"abs\", got range vector", 4},
    {"label_replace(x, \"a\", \"b\", \"c\", 1)", "expected type string in call to function \"label_replace\", got scalar", 32},
    {"label_join(x, \"a\", \",\", \"b\", 1)", "expected type string in call to function \"label_join\", got scalar", 29},
    {"rate(foo[5m], 1)", "expected 1 argument(s) in call to \"rate\", got 2", 0},
    {"time(1)", "expected 0 argument(s) in call to \"time\", got 1", 0},
    {"round()", "expected at least 1 argument(s) in call to \"round\", got 0", 0},
    {"round(x, 1, 2)", "expected at most 2 argument(s) in call to \"round\", got 3", 0},
    {"label_join(x, \"a\")", "expected at least 3 argument(s) in call to \"label_join\", got 2", 0},
    {"rate(foo[5m] bar)", "unexpected identifier \"bar\" in call to function \"rate\", expected \",\" or \")\"", 13},
    {"{}", "vector selector must contain at least one non-empty matcher", 0},
    {"{a=\"\"}", "vector selector must contain at least one non-empty matcher", 0},
    {"{a=~\".*\", b!=\"x\"}", "vector selector must contain at least one non-empty matcher", 0},
    {"foo{__name__=\"bar\"}", "metric name must not be set twice: \"foo\" or \"bar\"", 0},
    {"foo{\"bar\"}", "metric name must not be set twice: \"foo\" or \"bar\"", 0},
    {"foo{a=~\"(\"}", "parse error", 4},
    {"foo{a=\"x\\x00y\"}", "label matcher value must not contain NUL bytes", 6},
    {"1 > 2", "1:3: parse error: comparisons between scalars must use BOOL modifier", 2},
    {"foo + bool bar", "bool modifier can only be used on comparison operators", 4},
    {"1 and foo", "set operator \"and\" not allowed in binary scalar expression", 0},
    {"foo or 1", "set operator \"or\" not allowed in binary scalar expression", 0},
    {"foo and on(a) group_left(b) bar", "no grouping allowed for \"and\" operation", 0},
    {"foo * on(a) group_left(a) bar", "label \"a\" must not occur in ON and GROUP clause at once", 4},
    {"foo + on(a) 1", "vector matching only allowed between instant vectors", 0},
    {"foo[5m] + 1", "binary expression must contain only scalar and instant vector types", 0},
    {"1 + foo[5m]", "binary expression must contain only scalar and instant vector types", 4},
    {"\"a\" + 1", "binary expression must contain only scalar and instant vector types", 0},
    {"sum(foo[5m])", "expected type instant vector in aggregation expression, got range vector", 4},
    {"topk(foo, bar)", "expected type scalar in aggregation parameter, got instant vector", 5},
    {"count_values(1, foo)", "expected type string in aggregation parameter, got scalar", 13},
    {"topk(foo)", "wrong number of arguments for aggregate expression provided, expected 2, got 1", 0},
    {"sum(a, b)", "wrong number of arguments for aggregate expression provided, expected 1, got 2", 0},
    {"sum()", "no arguments for aggregate expression provided", 0},
    {"sum by (a) (x) by (b)", "unexpected <by>", 15},
    {"sum by a (x)", "unexpected identifier \"a\" in grouping opts, expected \"(\"", 7},
    {"sum by (1) (x)", "unexpected number \"1\" in grouping opts, expected label", 8},
    {"(foo)[5m]", "ranges only allowed for vector selectors", 0},
    {"rate(foo[5m])[5m]", "ranges only allowed for vector selectors", 0},
    {"foo offset 5m [10m]", "no offset modifiers allowed before range", 0},
    {"foo @ 10 [10m]", "no @ modifiers allowed before range", 0},
    {"rate(foo[5m]) offset 5m", "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0},
    {"1 @ 10", "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0},
    {"foo offset 5m offset 1m", "offset may not be set multiple times", 0},
    {"foo @ 1 @ 2", "@ <timestamp> may not be set multiple times", 0},
    {"foo @ start() @ end()", "@ <timestamp> may not be set multiple times", 0},
    {"foo @ bar", "unexpected identifier \"bar\" in @, expected timestamp", 6},
    {"foo @ start", "unexpected end of input in @, expected \"(\"", 11},
    {"foo offset", "unexpected end of input in offset, expected number or duration", 10},
    {"foo offset bar", "unexpected identifier \"bar\" in offset", 11},
    {"foo[5m][10m:]", "subquery is only allowed on instant vector, got matrix instead", 0},
    {"foo[0s]", "duration must be greater than 0", 4},
    {"foo[5m:0s]", "duration must be greater than 0", 7},
    {"foo[]", "unexpected \"]\" in range or subquery, expected number or duration", 4},
    {"foo[5m:1m:]", "unexpected \":\" in subquery, expected \"]\"", 9},
    {"-\"a\"", "unary expression only allowed on expressions of type scalar or instant vector, got \"string\"", 0},
    {"-foo[5m]", "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"", 0},
    {"foo +\n  * bar", "2:3: parse error: unexpected <op:*>", 8},
    {"foo\n\n)", "3:1: parse error: unexpected right parenthesis ')'", 5},
    {"(1 2)", "unexpected number \"2\" in paren expression, expected \")\"", 3},
    {"sum(x) sum", "unexpected <aggr:sum>", 7},
    {"a by", "unexpected <by>", 2},
    {"foo{a=\"b\"} and", "unexpected end of input", 14},
    {"= 1", "unexpected \"=\"", 0},
    {"foo{a=\"b\"} =~ 1", "unexpected <op:=~>", 11},
    {"rate(foo[5m],)", "trailing commas not allowed in function call args", 12},
    {"sum(foo,)", "trailing commas not allowed in function call args", 7},
    {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>", 10},
    {"foo + group_left(baz) bar", "unexpected <group_left>", 6},
    {"bool", "unexpected <bool>", 0},
    {"atan2(x)", "unexpected <op:atan2>", 0},
    {"foo @ +Inf", "timestamp out of bounds for @ modifier: +Inf", 0},
    {"foo @ 1e300", "timestamp out of bounds for @ modifier: 1000000", 0},
    {"sum without(==)(x)", "unexpected <op:==> in grouping opts, expected label", 12},
    {"sum without(,)(x)", "unexpected \",\" in grouping opts, expected label", 12},
    {"foo{gibberish}", "unexpected \"}\" in label matching, expected label matching operator", 13},
    {"2.5.", "bad number or duration syntax", 0},
};

static void test_invalid(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        rw_arena *a = rw_arena_new(0, 0);
        rw_node *n = NULL;
        rw_err err;
        rw_err_init(&err);
        rw_rc rc = rw_promql_parse(bad_cases[i].in, a, &n, &err);
        CHECK_MSG(rc == RW_BADREQ, "%s: rc %d", bad_cases[i].in, rc);
        if (rc == RW_OK) {
            rw_ast_free(n);
        } else {
            CHECK_MSG(strstr(err.msg, bad_cases[i].want) != NULL, "%s: got \"%s\", want \"%s\"",
                      bad_cases[i].in, err.msg, bad_cases[i].want);
            CHECK_MSG(err.pos == bad_cases[i].pos, "%s: pos %d, want %d (%s)", bad_cases[i].in,
                      err.pos, bad_cases[i].pos, err.msg);
            CHECK(n == NULL);
        }
        rw_arena_free(a);
    }
}

/* Hostile nesting must fail cleanly, not overflow the stack. */
static void test_depth(void)
{
    size_t n = 100000;
    char *q = malloc(20 * n + 16);
    rw_err err;
    struct {
        const char *open, *mid, *close;
    } shapes[] = {
        {"(", "1", ")"},
        {"-", "1", ""},
        {"abs(", "x", ")"},
        {"sum(", "x", ")"},
        {"max_over_time(", "x", "[1m:])"},
        {"", "1", "+1"},
        {"", "2", "^2"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t len = 0, count = n / 4;
        for (size_t i = 0; i < count; i++)
            len += (size_t)sprintf(q + len, "%s", shapes[s].open);
        len += (size_t)sprintf(q + len, "%s", shapes[s].mid);
        for (size_t i = 0; i < count; i++)
            len += (size_t)sprintf(q + len, "%s", shapes[s].close);
        rw_arena *a = rw_arena_new(0, 0);
        rw_node *node = NULL;
        rw_err_init(&err);
        rw_rc rc = rw_promql_parse(q, a, &node, &err);
        CHECK_MSG(rc == RW_BADREQ && strstr(err.msg, "maximum depth"), "shape %zu: rc %d %s", s,
                  rc, err.msg);
        rw_arena_free(a);
    }
    /* nesting below the cap is fine */
    size_t len = 0;
    for (int i = 0; i < 500; i++)
        len += (size_t)sprintf(q + len, "(");
    len += (size_t)sprintf(q + len, "foo");
    for (int i = 0; i < 500; i++)
        len += (size_t)sprintf(q + len, ")");
    rw_arena *a = rw_arena_new(0, 0);
    rw_node *node = NULL;
    rw_err_init(&err);
    CHECK_MSG(rw_promql_parse(q, a, &node, &err) == RW_OK, "%s", err.msg);
    rw_ast_free(node);
    rw_arena_free(a);
    free(q);
}

/* An arena cap makes parsing fail with RW_NOMEM, never crash. */
static void test_arena_cap(void)
{
    const char *q = "sum by (job) (rate(foo{a=~\"x.*\"}[5m])) / on(job) group_left(z) "
                    "count(bar{b=\"c\"} offset 5m) > bool 3";
    for (size_t cap = 256; cap < 64 * 1024; cap *= 2) {
        rw_arena *a = rw_arena_new(256, cap);
        rw_node *n = NULL;
        rw_err err;
        rw_err_init(&err);
        rw_rc rc = rw_promql_parse(q, a, &n, &err);
        CHECK_MSG(rc == RW_OK || rc == RW_NOMEM, "cap %zu: rc %d %s", cap, rc, err.msg);
        if (rc == RW_OK)
            rw_ast_free(n);
        rw_arena_free(a);
    }
}

static void test_selector(void)
{
    rw_matcher *ms = NULL;
    size_t n = 0;
    rw_err err;
    rw_err_init(&err);
    CHECK(rw_promql_parse_selector("up{job=\"x\", i=~\"a.*\"}", &ms, &n, &err) == RW_OK);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(ms[0].name, "__name__");
        CHECK_STR(ms[0].value, "up");
        CHECK_STR(ms[2].name, "i");
        CHECK(rw_matcher_matches(&ms[2], "abc"));
    }
    for (size_t i = 0; i < n; i++)
        rw_matcher_free(&ms[i]);
    free(ms);

    CHECK(rw_promql_parse_selector("{__name__=~\"a.+\"}", &ms, &n, &err) == RW_OK);
    CHECK_INT(n, 1);
    for (size_t i = 0; i < n; i++)
        rw_matcher_free(&ms[i]);
    free(ms);

    CHECK(rw_promql_parse_selector("{\"my.metric\"}", &ms, &n, &err) == RW_OK);
    CHECK_INT(n, 1);
    for (size_t i = 0; i < n; i++)
        rw_matcher_free(&ms[i]);
    free(ms);

    const char *bad[] = {"up[5m]", "1 + 1", "up offset 5m", "{}", "up{a=~\"(\"}", "", "rate(x[5m])",
                         "up{a=\"b\"} or down"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = NULL;
        n = 0;
        rw_err_init(&err);
        rw_rc rc = rw_promql_parse_selector(bad[i], &ms, &n, &err);
        CHECK_MSG(rc == RW_BADREQ && ms == NULL && n == 0, "%s: rc %d", bad[i], rc);
        CHECK_MSG(strstr(err.msg, "parse error") != NULL, "%s: %s", bad[i], err.msg);
    }
}

/* ---- the conformance files ---- */

/* Out of scope: native histograms ({{...}} literals and the functions that
 * only make sense on them). histogram_fraction and histogram_quantiles also
 * read classic _bucket series, so they are parsed when the table has them. */
static const char *const skip_funcs[] = {
    "histogram_count(",  "histogram_sum(",    "histogram_avg(",
    "histogram_stddev(", "histogram_stdvar(",
};

typedef struct conf_stats {
    int parsed, failed, allowed_fail, skipped_hist, unknown_fn;
    char **exprs; /* every expression seen, for the mutation test */
    size_t nexprs, capexprs;
    char unknown[4096]; /* distinct unknown function names */
} conf_stats;

static void note_unknown(conf_stats *st, const char *msg)
{
    const char *q = strstr(msg, "unknown function with name \"");
    if (!q)
        return;
    q += strlen("unknown function with name \"");
    const char *e = strchr(q, '"');
    if (!e)
        return;
    char name[128];
    snprintf(name, sizeof name, " %.*s", (int)(e - q), q);
    if (!strstr(st->unknown, name) && strlen(st->unknown) + strlen(name) + 1 < sizeof st->unknown)
        strcat(st->unknown, name);
}

/* Returns a pointer to the expression on an eval line, or NULL. */
static char *eval_expr(char *line, int *is_fail)
{
    char *p = line;
    if (strncmp(p, "eval", 4) != 0)
        return NULL;
    char *w = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    size_t wl = (size_t)(p - w);
    *is_fail = wl == 9 && strncmp(w, "eval_fail", 9) == 0;
    /* skip the words of "instant at T" or "range from A to B step S" */
    int words;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "instant", 7) == 0)
        words = 3;
    else if (strncmp(p, "range", 5) == 0)
        words = 7;
    else
        return NULL;
    for (int i = 0; i < words; i++) {
        while (*p && *p != ' ' && *p != '\t')
            p++;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    size_t n = strlen(p);
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        p[--n] = '\0';
    return *p ? p : NULL;
}

static void conformance_file(const char *path, conf_stats *st)
{
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    char **lines = NULL;
    size_t nlines = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) >= 0) {
        if (nlines == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = realloc(lines, cap * sizeof *lines);
        }
        lines[nlines++] = strdup(line);
    }
    free(line);
    fclose(f);
    for (size_t i = 0; i < nlines; i++) {
        int is_fail = 0;
        char *e = eval_expr(lines[i], &is_fail);
        if (!e)
            continue;
        /* an indented "expect fail" below the eval also allows failure */
        for (size_t j = i + 1; j < nlines && (lines[j][0] == ' ' || lines[j][0] == '\t'); j++)
            if (strstr(lines[j], "expect fail"))
                is_fail = 1;
        if (st->nexprs == st->capexprs) {
            st->capexprs = st->capexprs ? st->capexprs * 2 : 256;
            st->exprs = realloc(st->exprs, st->capexprs * sizeof *st->exprs);
        }
        st->exprs[st->nexprs++] = strdup(e);
        int hist = strstr(e, "{{") != NULL;
        for (size_t k = 0; k < sizeof skip_funcs / sizeof skip_funcs[0]; k++)
            if (strstr(e, skip_funcs[k]))
                hist = 1;
        if (hist) {
            st->skipped_hist++;
            continue;
        }
        rw_arena *a = rw_arena_new(0, 0);
        rw_node *n = NULL;
        rw_err err;
        rw_err_init(&err);
        rw_rc rc = rw_promql_parse(e, a, &n, &err);
        if (rc == RW_OK) {
            st->parsed++;
            /* printing and re-parsing gives the same text */
            rw_buf b1, b2;
            rw_buf_init(&b1, 0);
            rw_buf_init(&b2, 0);
            rw_ast_format(n, &b1);
            rw_node *n2 = NULL;
            rw_arena *a2 = rw_arena_new(0, 0);
            rw_err err2;
            rw_err_init(&err2);
            int ok = rw_promql_parse(b1.p, a2, &n2, &err2) == RW_OK;
            if (ok) {
                rw_ast_format(n2, &b2);
                ok = strcmp(b1.p, b2.p) == 0;
                rw_ast_free(n2);
            }
            CHECK_MSG(ok, "%s:%zu: reformat of %s: \"%s\" -> \"%s\" %s", path, i + 1, e, b1.p,
                      b2.p ? b2.p : "", err2.msg);
            rw_arena_free(a2);
            rw_buf_free(&b1);
            rw_buf_free(&b2);
            rw_ast_free(n);
        } else if (is_fail) {
            st->allowed_fail++;
            fprintf(stderr, "  expected failure %s:%zu: %s: %s\n", path, i + 1, e, err.msg);
        } else if (strstr(err.msg, "unknown function with name")) {
            st->unknown_fn++;
            note_unknown(st, err.msg);
        } else {
            st->failed++;
            CHECK_MSG(0, "%s:%zu: %s: %s", path, i + 1, e, err.msg);
        }
        rw_arena_free(a);
    }
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
}

/* Mutations of the conformance expressions (truncation, deleted, inserted
 * and replaced bytes, from a fixed seed) must never crash or leak (run under
 * ASan), fail only with RW_BADREQ, and whatever parses must print to text
 * that parses back to the same text. */
static void mutate_all(char **exprs, size_t n)
{
    static const char alphabet[] = "()[]{},:@+-*/%^=!~<>\"'`#.05emshxyz_ \n\\\xc3\xa9";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int ok = 0, bad = 0, roundtrip_fail = 0;
    char buf[4096], out1[8192], out2[8192];
    rw_err err;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(exprs[i]);
        if (len == 0 || len >= sizeof buf - 8)
            continue;
        for (int m = 0; m < 16; m++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = seed >> 17;
            memcpy(buf, exprs[i], len + 1);
            size_t at = (size_t)(r % len);
            char c = alphabet[(r >> 20) % (sizeof alphabet - 1)];
            switch ((r >> 28) % 4) {
            case 0: buf[at] = '\0'; break;
            case 1: memmove(buf + at, buf + at + 1, len - at); break;
            case 2: memmove(buf + at + 1, buf + at, len - at + 1); buf[at] = c; break;
            default: buf[at] = c; break;
            }
            fmt_expr(buf, out1, sizeof out1, &err);
            if (strncmp(out1, "ERROR", 5) == 0) {
                CHECK_MSG(err.code == RW_BADREQ && err.pos >= 0 && err.pos <= (int)strlen(buf),
                          "%s: code %d pos %d", buf, err.code, err.pos);
                bad++;
                continue;
            }
            ok++;
            fmt_expr(out1, out2, sizeof out2, &err);
            if (strcmp(out1, out2) != 0) {
                roundtrip_fail++;
                CHECK_MSG(0, "mutant %s printed as %s, which prints as %s", buf, out1, out2);
            }
        }
    }
    fprintf(stderr, "mutations: %d parsed, %d rejected, %d round-trip failures\n", ok, bad,
            roundtrip_fail);
}

static void test_conformance_files(void)
{
    const char *dir = "tests/promql/upstream";
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s (tests run from the repo root)", dir);
    if (!d)
        return;
    conf_stats st;
    memset(&st, 0, sizeof st);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".test") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        conformance_file(path, &st);
        files++;
    }
    closedir(d);
    /* the vendored corpus is complete, every function it uses is known,
     * and only the few native-histogram expressions are left out */
    CHECK_MSG(files == 9, "%d .test files in %s, want 9", files, dir);
    CHECK(st.parsed > 1000);
    CHECK_MSG(st.unknown_fn == 0, "functions not in the table:%s", st.unknown);
    CHECK_MSG(st.skipped_hist <= 7, "%d native-histogram expressions skipped, at most 7",
              st.skipped_hist);
    fprintf(stderr,
            "conformance: %d files, %d parsed, %d failed, %d expected failures, "
            "%d native-histogram skipped, %d with functions not in the table:%s\n",
            files, st.parsed, st.failed, st.allowed_fail, st.skipped_hist, st.unknown_fn,
            st.unknown);
    mutate_all(st.exprs, st.nexprs);
    for (size_t i = 0; i < st.nexprs; i++)
        free(st.exprs[i]);
    free(st.exprs);
}

int main(void)
{
    RUN(test_valid);
    RUN(test_ast_fields);
    RUN(test_invalid);
    RUN(test_depth);
    RUN(test_arena_cap);
    RUN(test_selector);
    RUN(test_conformance_files);
    TEST_DONE();
}
