/* ast.c - services on the PromQL AST (ast.h) that both the parser and its
 * users need: releasing the compiled matchers a tree owns (rw_ast_free),
 * printing a tree back as PromQL (rw_ast_format, used for rule files, logs
 * and error messages; the output re-parses to the same tree), and the names
 * of operators. The printed form follows Prometheus' String() methods:
 * `sum by (job) (rate(x[5m]))`, `a + on (x) group_left (y) b`,
 * `foo{a="b"}[5m] @ 100.000 offset 1m`. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "core/buf.h"
#include "core/labels.h"
#include "core/timeutil.h"
#include "func.h"

void rw_ast_free(rw_node *n)
{
    if (!n)
        return;
    switch (n->kind) {
    case RW_N_VECTOR_SEL:
    case RW_N_MATRIX_SEL:
        for (size_t i = 0; i < n->u.sel.nmatchers; i++)
            rw_matcher_free(&n->u.sel.matchers[i]);
        n->u.sel.nmatchers = 0;
        break;
    case RW_N_SUBQUERY:
        rw_ast_free(n->u.subq.expr);
        break;
    case RW_N_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++)
            rw_ast_free(n->u.call.args[i]);
        break;
    case RW_N_AGG:
        rw_ast_free(n->u.agg.param);
        rw_ast_free(n->u.agg.expr);
        break;
    case RW_N_BINARY:
        rw_ast_free(n->u.bin.lhs);
        rw_ast_free(n->u.bin.rhs);
        break;
    case RW_N_UNARY:
    case RW_N_PAREN:
    case RW_N_STEP_INVARIANT:
        rw_ast_free(n->u.unary.expr);
        break;
    default:
        break;
    }
}

const char *rw_binop_str(rw_binop op)
{
    static const char *const names[] = {
        [RW_OP_ADD] = "+",   [RW_OP_SUB] = "-",      [RW_OP_MUL] = "*",  [RW_OP_DIV] = "/",
        [RW_OP_MOD] = "%",   [RW_OP_POW] = "^",      [RW_OP_ATAN2] = "atan2",
        [RW_OP_EQL] = "==",  [RW_OP_NEQ] = "!=",     [RW_OP_GTR] = ">",  [RW_OP_LSS] = "<",
        [RW_OP_GTE] = ">=",  [RW_OP_LTE] = "<=",     [RW_OP_AND] = "and", [RW_OP_OR] = "or",
        [RW_OP_UNLESS] = "unless",
    };
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?";
}

const char *rw_aggop_str(rw_aggop op)
{
    static const char *const names[] = {
        [RW_AGG_SUM] = "sum",         [RW_AGG_AVG] = "avg",
        [RW_AGG_MIN] = "min",         [RW_AGG_MAX] = "max",
        [RW_AGG_COUNT] = "count",     [RW_AGG_STDDEV] = "stddev",
        [RW_AGG_STDVAR] = "stdvar",   [RW_AGG_TOPK] = "topk",
        [RW_AGG_BOTTOMK] = "bottomk", [RW_AGG_QUANTILE] = "quantile",
        [RW_AGG_COUNT_VALUES] = "count_values", [RW_AGG_GROUP] = "group",
        [RW_AGG_LIMITK] = "limitk",   [RW_AGG_LIMIT_RATIO] = "limit_ratio",
    };
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?";
}

int rw_binop_is_comparison(rw_binop op)
{
    return op == RW_OP_EQL || op == RW_OP_NEQ || op == RW_OP_GTR || op == RW_OP_LSS ||
           op == RW_OP_GTE || op == RW_OP_LTE;
}

int rw_binop_is_set(rw_binop op)
{
    return op == RW_OP_AND || op == RW_OP_OR || op == RW_OP_UNLESS;
}

/* ---- printing ---- */

/* Go's fmt.Sprint(float64), which Prometheus prints numbers with: the
 * shortest digits that read back to the same double, in %e form when the
 * decimal exponent is < -4 or >= 6 ("1e+06", "123456", "1.5e-05"). */
void rw_format_number(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0" : "0");
        return;
    }
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    const char *x = strchr(e, 'e');
    int exp = x ? atoi(x + 1) : 0;
    if (exp < -4 || exp >= 6) {
        snprintf(out, cap, "%s", e);
        return;
    }
    int decimals = prec - 1 - exp;
    snprintf(out, cap, "%.*f", decimals > 0 ? decimals : 0, v);
}

static void put_quoted(rw_buf *b, const char *s)
{
    rw_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\v': esc = "\\v"; break;
        default: break;
        }
        if (esc) {
            rw_buf_puts(b, esc);
            p++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            rw_buf_printf(b, "\\x%02x", c);
            p++;
            continue;
        }
        if (c < 0x80) {
            rw_buf_putc(b, (char)c);
            p++;
            continue;
        }
        size_t w = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        size_t avail = strnlen((const char *)p, w);
        if (w > 1 && avail == w && rw_utf8_valid((const char *)p, w)) {
            rw_buf_append(b, p, w);
            p += w;
        } else {
            rw_buf_printf(b, "\\x%02x", c);
            p++;
        }
    }
    rw_buf_putc(b, '"');
}

static int legacy_label(const char *s)
{
    return rw_label_name_legacy(s, strlen(s));
}

static void put_label_name(rw_buf *b, const char *s)
{
    if (legacy_label(s))
        rw_buf_puts(b, s);
    else
        put_quoted(b, s);
}

static void put_label_list(rw_buf *b, char **l, size_t n)
{
    rw_buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_puts(b, ", ");
        put_label_name(b, l[i]);
    }
    rw_buf_putc(b, ')');
}

static void put_duration(rw_buf *b, int64_t ms)
{
    char d[64];
    rw_format_duration(ms, d, sizeof d);
    rw_buf_puts(b, d);
}

static void put_at_offset(rw_buf *b, rw_at_kind at, int64_t at_ms, int64_t offset_ms)
{
    switch (at) {
    case RW_AT_TIME: {
        int64_t a = at_ms < 0 ? -at_ms : at_ms;
        rw_buf_printf(b, " @ %s%" PRId64 ".%03" PRId64, at_ms < 0 ? "-" : "", a / 1000, a % 1000);
        break;
    }
    case RW_AT_START: rw_buf_puts(b, " @ start()"); break;
    case RW_AT_END: rw_buf_puts(b, " @ end()"); break;
    default: break;
    }
    if (offset_ms) {
        rw_buf_puts(b, " offset ");
        put_duration(b, offset_ms);
    }
}

static void put_selector(rw_buf *b, const rw_node *n)
{
    const char *metric = n->u.sel.metric;
    int bare = metric && rw_metric_name_legacy(metric, strlen(metric));
    int skipped = 0, first = 1;
    if (bare) {
        /* foo{__name__=~"x"} would not parse back ("metric name must not be
         * set twice"): with further __name__ matchers the name goes into the
         * braces as a bare string, which may be combined with them */
        size_t names = 0;
        for (size_t i = 0; i < n->u.sel.nmatchers; i++)
            names += strcmp(n->u.sel.matchers[i].name, RW_METRIC_NAME) == 0;
        bare = names <= 1;
    }
    if (bare)
        rw_buf_puts(b, metric);
    size_t shown = 0;
    for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
        const rw_matcher *m = &n->u.sel.matchers[i];
        if (bare && !skipped && m->op == RW_MATCH_EQ && strcmp(m->name, RW_METRIC_NAME) == 0 &&
            strcmp(m->value, metric) == 0) {
            skipped = 1;
            continue;
        }
        shown++;
    }
    if (shown == 0 && bare)
        return;
    rw_buf_putc(b, '{');
    skipped = 0;
    if (metric && !bare) {
        /* a UTF-8 metric name is written as a bare string in the braces */
        put_quoted(b, metric);
        first = 0;
    }
    for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
        const rw_matcher *m = &n->u.sel.matchers[i];
        if (metric && !skipped && m->op == RW_MATCH_EQ && strcmp(m->name, RW_METRIC_NAME) == 0 &&
            strcmp(m->value, metric) == 0) {
            skipped = 1;
            continue;
        }
        if (!first)
            rw_buf_puts(b, ", ");
        first = 0;
        put_label_name(b, m->name);
        rw_buf_puts(b, rw_match_op_str(m->op));
        put_quoted(b, m->value);
    }
    rw_buf_putc(b, '}');
}

static void format(const rw_node *n, rw_buf *b)
{
    char num[64];
    switch (n->kind) {
    case RW_N_NUMBER:
        rw_format_number(n->u.number, num, sizeof num);
        rw_buf_puts(b, num);
        break;
    case RW_N_STRING:
        put_quoted(b, n->u.string);
        break;
    case RW_N_VECTOR_SEL:
    case RW_N_MATRIX_SEL:
        put_selector(b, n);
        if (n->kind == RW_N_MATRIX_SEL) {
            rw_buf_putc(b, '[');
            put_duration(b, n->u.sel.range_ms);
            rw_buf_putc(b, ']');
        }
        put_at_offset(b, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms);
        break;
    case RW_N_SUBQUERY:
        format(n->u.subq.expr, b);
        rw_buf_putc(b, '[');
        put_duration(b, n->u.subq.range_ms);
        rw_buf_putc(b, ':');
        if (n->u.subq.step_ms)
            put_duration(b, n->u.subq.step_ms);
        rw_buf_putc(b, ']');
        put_at_offset(b, n->u.subq.at, n->u.subq.at_ms, n->u.subq.offset_ms);
        break;
    case RW_N_CALL:
        rw_buf_puts(b, n->u.call.fn->name);
        rw_buf_putc(b, '(');
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (i)
                rw_buf_puts(b, ", ");
            format(n->u.call.args[i], b);
        }
        rw_buf_putc(b, ')');
        break;
    case RW_N_AGG:
        rw_buf_puts(b, rw_aggop_str(n->u.agg.op));
        if (n->u.agg.without) {
            rw_buf_puts(b, " without ");
            put_label_list(b, n->u.agg.grouping, n->u.agg.ngrouping);
            rw_buf_putc(b, ' ');
        } else if (n->u.agg.ngrouping) {
            rw_buf_puts(b, " by ");
            put_label_list(b, n->u.agg.grouping, n->u.agg.ngrouping);
            rw_buf_putc(b, ' ');
        }
        rw_buf_putc(b, '(');
        if (n->u.agg.param) {
            format(n->u.agg.param, b);
            rw_buf_puts(b, ", ");
        }
        format(n->u.agg.expr, b);
        rw_buf_putc(b, ')');
        break;
    case RW_N_BINARY: {
        const rw_vector_matching *vm = n->u.bin.matching;
        format(n->u.bin.lhs, b);
        rw_buf_putc(b, ' ');
        rw_buf_puts(b, rw_binop_str(n->u.bin.op));
        if (n->u.bin.return_bool)
            rw_buf_puts(b, " bool");
        if (vm && (vm->nlabels || vm->on)) {
            rw_buf_puts(b, vm->on ? " on " : " ignoring ");
            put_label_list(b, vm->labels, vm->nlabels);
            if (vm->card == RW_CARD_MANY_TO_ONE || vm->card == RW_CARD_ONE_TO_MANY) {
                rw_buf_puts(b, vm->card == RW_CARD_MANY_TO_ONE ? " group_left " : " group_right ");
                put_label_list(b, vm->include, vm->ninclude);
            }
        }
        rw_buf_putc(b, ' ');
        format(n->u.bin.rhs, b);
        break;
    }
    case RW_N_UNARY:
        rw_buf_putc(b, '-');
        format(n->u.unary.expr, b);
        break;
    case RW_N_PAREN:
        rw_buf_putc(b, '(');
        format(n->u.unary.expr, b);
        rw_buf_putc(b, ')');
        break;
    case RW_N_STEP_INVARIANT:
        format(n->u.unary.expr, b);
        break;
    }
}

rw_rc rw_ast_format(const rw_node *n, rw_buf *b)
{
    format(n, b);
    return b->failed ? RW_LIMIT : RW_OK;
}
