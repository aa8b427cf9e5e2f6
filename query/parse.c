/* parse.c - the PromQL parser. It sits between the lexer (lex.c), which
 * turns the query text into tokens, and the evaluator (eval*.c), which walks
 * the AST (ast.h) built here. rw_promql_parse() is the entry point for
 * queries and rules; rw_promql_parse_selector() parses the lone series
 * selectors of match[] parameters.
 *
 * A hand-written recursive-descent parser with precedence climbing for the
 * binary operators (lowest to highest: or; and unless; comparisons; + -;
 * * / % atan2; ^, the only right-associative one). Unary minus binds tighter
 * than every binary operator except ^, so -2^2 is -(2^2). Range brackets,
 * subqueries, offset and @ are postfix and bind tightest. Nodes are type
 * checked as they are built, from the function table (func.c) for calls, with
 * Prometheus' error messages; the first error wins and carries its byte
 * position, and the message is prefixed with "line:col: parse error: ".
 *
 * Recursion is bounded by MAX_DEPTH so hostile input cannot overflow the
 * stack; the finished tree's height is checked too (without recursion),
 * because long operator chains are built by loops, not recursion, and the
 * evaluator walks the tree recursively. Every selector built is remembered so
 * that its compiled matchers are released when parsing fails. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "func.h"
#include "lex.h"

#define MAX_DEPTH 1000

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

typedef struct parser {
    const char *in;
    rw_token *t;
    size_t nt, i;
    rw_arena *a;
    rw_err *err;
    int failed;
    rw_rc code;      /* of the first error */
    int depth;
    int last_end;    /* end of the last consumed token */
    rw_node **sels;  /* every selector built, for cleanup on failure */
    size_t nsels, capsels;
} parser;

/* ---- errors ---- */

static void set_error(parser *p, rw_rc code, int pos, const char *msg)
{
    if (p->failed)
        return;
    p->failed = 1;
    p->code = code;
    int line = 1, last_nl = -1;
    for (int i = 0; i < pos && p->in[i]; i++)
        if (p->in[i] == '\n') {
            line++;
            last_nl = i;
        }
    rw_err_set(p->err, code, "%d:%d: parse error: %s", line, pos - last_nl, msg);
    if (p->err)
        p->err->pos = pos;
}

static void *fail(parser *p, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *fail(parser *p, int pos, const char *fmt, ...)
{
    char msg[RW_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(p, RW_BADREQ, pos, msg);
    return NULL;
}

static void *nomem(parser *p)
{
    if (!p->failed) {
        p->failed = 1;
        p->code = RW_NOMEM;
        rw_err_set(p->err, RW_NOMEM, "out of memory while parsing the query");
        if (p->err)
            p->err->pos = -1;
    }
    return NULL;
}

static rw_token *cur(parser *p)
{
    return &p->t[p->i];
}

static rw_token *peek(parser *p, size_t k)
{
    size_t j = p->i + k;
    return j < p->nt ? &p->t[j] : &p->t[p->nt - 1];
}

static void next(parser *p)
{
    rw_token *t = cur(p);
    if (t->kind != RW_TK_EOF && t->kind != RW_TK_ERROR) {
        p->last_end = t->pos + t->len;
        p->i++;
    }
}

/* "unexpected <token>[ in <context>][, expected <what>]"; a lexical error
 * token is reported as itself. */
static void *unexpected(parser *p, const char *context, const char *expected)
{
    rw_token *t = cur(p);
    if (t->kind == RW_TK_ERROR)
        return fail(p, t->pos, "%s", t->str);
    char d[96];
    rw_tok_desc(p->in, t, d, sizeof d);
    return fail(p, t->pos, "unexpected %s%s%s%s%s", d, context ? " in " : "", context ? context : "",
                expected ? ", expected " : "", expected ? expected : "");
}

/* Prometheus' DocumentedType */
static const char *doc_type(rw_val_type t)
{
    switch (t) {
    case RW_VAL_SCALAR: return "scalar";
    case RW_VAL_VECTOR: return "instant vector";
    case RW_VAL_MATRIX: return "range vector";
    case RW_VAL_STRING: return "string";
    default: return "none";
    }
}

static const char *plain_type(rw_val_type t)
{
    switch (t) {
    case RW_VAL_SCALAR: return "scalar";
    case RW_VAL_VECTOR: return "vector";
    case RW_VAL_MATRIX: return "matrix";
    case RW_VAL_STRING: return "string";
    default: return "none";
    }
}

/* ---- node construction ---- */

static rw_node *new_node(parser *p, rw_node_kind k, rw_val_type type, int pos)
{
    rw_node *n = rw_arena_calloc(p->a, 1, sizeof *n);
    if (!n)
        return nomem(p);
    n->kind = k;
    n->type = type;
    n->pos = pos;
    n->end = p->last_end;
    return n;
}

static int remember_sel(parser *p, rw_node *n)
{
    if (p->nsels == p->capsels) {
        size_t nc = p->capsels ? p->capsels * 2 : 8;
        rw_node **ns = rw_arena_realloc(p->a, p->sels, p->capsels * sizeof *ns, nc * sizeof *ns);
        if (!ns)
            return 0;
        p->sels = ns;
        p->capsels = nc;
    }
    p->sels[p->nsels++] = n;
    return 1;
}

/* A growable array of pointers in the arena. */
typedef struct vec {
    void **v;
    size_t n, cap;
} vec;

static int vec_push(parser *p, vec *v, void *x)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        void **nv = rw_arena_realloc(p->a, v->v, v->cap * sizeof *nv, nc * sizeof *nv);
        if (!nv)
            return 0;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = x;
    return 1;
}

static rw_node *expr(parser *p, int min_prec);

/* A duration-valued token (range, step, offset, @): a duration literal or a
 * number of seconds. Returns 0 on error. */
static int duration_tok(parser *p, int64_t *ms, const char *context)
{
    rw_token *t = cur(p);
    if (t->kind == RW_TK_DURATION) {
        *ms = t->dur_ms;
    } else if (t->kind == RW_TK_NUMBER) {
        double v = t->num * 1000.0;
        if (!isfinite(v) || v > 9.2e18 || v < -9.2e18) {
            fail(p, t->pos, "duration out of range: \"%.*s\"", t->len, p->in + t->pos);
            return 0;
        }
        *ms = (int64_t)llround(v);
    } else {
        unexpected(p, context, "number or duration");
        return 0;
    }
    next(p);
    return 1;
}

/* ( label, label, ... ) for by/without/on/ignoring/group_x. Labels may be
 * identifiers (keywords included) or quoted UTF-8 names. */
static int grouping_labels(parser *p, char ***out, size_t *nout)
{
    vec v = {0};
    if (cur(p)->kind != RW_TK_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return 0;
    }
    next(p);
    for (;;) {
        rw_token *t = cur(p);
        if (t->kind == RW_TK_RPAREN) {
            next(p);
            break;
        }
        char *name;
        if (t->kind == RW_TK_IDENT || t->kind == RW_TK_METRIC_IDENT) {
            name = rw_arena_strndup(p->a, p->in + t->pos, (size_t)t->len);
        } else if (t->kind == RW_TK_STRING) {
            if (t->slen == 0 || strlen(t->str) != t->slen || !rw_utf8_valid(t->str, t->slen)) {
                fail(p, t->pos, "invalid label name for grouping: %.*s", t->len, p->in + t->pos);
                return 0;
            }
            name = rw_arena_strdup(p->a, t->str);
        } else {
            unexpected(p, "grouping opts", "label");
            return 0;
        }
        if (!name || !vec_push(p, &v, name)) {
            nomem(p);
            return 0;
        }
        next(p);
        if (cur(p)->kind == RW_TK_COMMA)
            next(p);
        else if (cur(p)->kind != RW_TK_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return 0;
        }
    }
    *out = (char **)v.v;
    *nout = v.n;
    return 1;
}

/* ---- selectors ---- */

typedef struct pmatch {
    rw_match_op op;
    const char *name, *value;
    int pos;
} pmatch;

static int is_matcher_op(rw_tok_kind k, rw_match_op *op)
{
    switch (k) {
    case RW_TK_ASSIGN: *op = RW_MATCH_EQ; return 1;
    case RW_TK_NEQ: *op = RW_MATCH_NEQ; return 1;
    case RW_TK_EQL_REGEX: *op = RW_MATCH_RE; return 1;
    case RW_TK_NEQ_REGEX: *op = RW_MATCH_NRE; return 1;
    default: return 0;
    }
}

/* name_tok: the metric identifier in front of the braces, or NULL. */
static rw_node *selector(parser *p, rw_token *name_tok)
{
    int pos = name_tok ? name_tok->pos : cur(p)->pos;
    const char *metric = NULL, *outside = NULL;
    pmatch *pm = NULL;
    size_t npm = 0, cappm = 0;
    if (name_tok) {
        outside = metric = rw_arena_strndup(p->a, p->in + name_tok->pos, (size_t)name_tok->len);
        if (!metric)
            return nomem(p);
        next(p);
    }
    if (cur(p)->kind == RW_TK_LBRACE) {
        next(p);
        for (;;) {
            rw_token *t = cur(p);
            if (t->kind == RW_TK_RBRACE) {
                next(p);
                break;
            }
            pmatch m = {.pos = t->pos};
            rw_match_op op;
            if (t->kind == RW_TK_STRING && !is_matcher_op(peek(p, 1)->kind, &op)) {
                /* a bare quoted string is the metric name */
                if (strlen(t->str) != t->slen)
                    return fail(p, t->pos, "metric name must not contain NUL bytes");
                if (outside)
                    return fail(p, pos, "metric name must not be set twice: \"%s\" or \"%s\"",
                                outside, t->str);
                m.op = RW_MATCH_EQ;
                m.name = RW_METRIC_NAME;
                m.value = t->str;
                if (!metric)
                    metric = t->str;
                next(p);
            } else if (t->kind == RW_TK_STRING || t->kind == RW_TK_IDENT) {
                if (t->kind == RW_TK_STRING) {
                    if (t->slen == 0 || strlen(t->str) != t->slen ||
                        !rw_utf8_valid(t->str, t->slen))
                        return fail(p, t->pos, "invalid label name: %.*s", t->len,
                                    p->in + t->pos);
                    m.name = t->str;
                } else {
                    m.name = rw_arena_strndup(p->a, p->in + t->pos, (size_t)t->len);
                    if (!m.name)
                        return nomem(p);
                }
                next(p);
                if (!is_matcher_op(cur(p)->kind, &m.op))
                    return unexpected(p, "label matching", "label matching operator");
                next(p);
                t = cur(p);
                if (t->kind != RW_TK_STRING)
                    return unexpected(p, "label matching", "string");
                if (strlen(t->str) != t->slen)
                    return fail(p, t->pos, "label matcher value must not contain NUL bytes");
                m.value = t->str;
                next(p);
                if (outside && strcmp(m.name, RW_METRIC_NAME) == 0)
                    return fail(p, pos, "metric name must not be set twice: \"%s\" or \"%s\"",
                                outside, m.value);
            } else {
                return unexpected(p, "label matching", "identifier or \"}\"");
            }
            if (npm == cappm) {
                size_t nc = cappm ? cappm * 2 : 4;
                pmatch *n2 = rw_arena_realloc(p->a, pm, cappm * sizeof *pm, nc * sizeof *pm);
                if (!n2)
                    return nomem(p);
                pm = n2;
                cappm = nc;
            }
            pm[npm++] = m;
            t = cur(p);
            if (t->kind == RW_TK_COMMA)
                next(p);
            else if (t->kind != RW_TK_RBRACE)
                return unexpected(p, "label matching", "\",\" or \"}\"");
        }
    }
    rw_node *n = new_node(p, RW_N_VECTOR_SEL, RW_VAL_VECTOR, pos);
    if (!n)
        return NULL;
    size_t total = npm + (outside ? 1 : 0);
    rw_matcher *ms = rw_arena_calloc(p->a, total ? total : 1, sizeof *ms);
    if (!ms)
        return nomem(p);
    size_t k = 0; /* matchers initialised so far */
    rw_err merr;
    rw_err_init(&merr);
    if (outside) {
        if (rw_matcher_init(&ms[0], RW_MATCH_EQ, RW_METRIC_NAME, outside, &merr) != RW_OK)
            goto matcher_failed;
        k++;
    }
    for (size_t j = 0; j < npm; j++, k++)
        if (rw_matcher_init(&ms[k], pm[j].op, pm[j].name, pm[j].value, &merr) != RW_OK) {
            pos = pm[j].pos;
            goto matcher_failed;
        }
    n->u.sel.metric = metric;
    n->u.sel.matchers = ms;
    n->u.sel.nmatchers = total;
    if (!remember_sel(p, n)) {
        for (size_t j = 0; j < total; j++)
            rw_matcher_free(&ms[j]);
        return nomem(p);
    }
    if (!outside) {
        int nonempty = 0;
        for (size_t j = 0; j < total && !nonempty; j++)
            nonempty = !rw_matcher_matches_empty(&ms[j]);
        if (!nonempty)
            return fail(p, pos, "vector selector must contain at least one non-empty matcher");
    }
    return n;

matcher_failed:
    /* ms[k] failed and was cleaned up by rw_matcher_init */
    for (size_t j = 0; j < k; j++)
        rw_matcher_free(&ms[j]);
    if (merr.code == RW_NOMEM)
        return nomem(p);
    return fail(p, pos, "%s", merr.msg);
}

/* ---- calls and aggregations ---- */

/* ( expr, expr, ... ) with an optional trailing comma. */
static int call_args(parser *p, vec *args, const char *context)
{
    if (cur(p)->kind != RW_TK_LPAREN) {
        unexpected(p, context, "\"(\"");
        return 0;
    }
    next(p);
    while (cur(p)->kind != RW_TK_RPAREN) {
        rw_node *e = expr(p, 0);
        if (!e)
            return 0;
        if (!vec_push(p, args, e)) {
            nomem(p);
            return 0;
        }
        if (cur(p)->kind == RW_TK_COMMA) {
            int comma = cur(p)->pos;
            next(p);
            if (cur(p)->kind == RW_TK_RPAREN) {
                fail(p, comma, "trailing commas not allowed in function call args");
                return 0;
            }
        } else if (cur(p)->kind != RW_TK_RPAREN) {
            unexpected(p, context, "\",\" or \")\"");
            return 0;
        }
    }
    next(p);
    return 1;
}

static int expect_type(parser *p, const rw_node *n, rw_val_type want, const char *context)
{
    if (n->type == want)
        return 1;
    fail(p, n->pos, "expected type %s in %s, got %s", doc_type(want), context, doc_type(n->type));
    return 0;
}

static rw_node *call(parser *p)
{
    rw_token *id = cur(p);
    const rw_func *fn = rw_func_lookup(p->in + id->pos, (size_t)id->len);
    if (!fn)
        return fail(p, id->pos, "unknown function with name \"%.*s\"", id->len, p->in + id->pos);
    next(p);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "call to function \"%s\"", fn->name);
    vec args = {0};
    if (!call_args(p, &args, ctx))
        return NULL;
    rw_node *n = new_node(p, RW_N_CALL, fn->ret, id->pos);
    if (!n)
        return NULL;
    int na = (int)args.n;
    if (fn->min_args == fn->max_args && na != fn->min_args)
        return fail(p, id->pos, "expected %d argument(s) in call to \"%s\", got %d", fn->min_args,
                    fn->name, na);
    if (na < fn->min_args)
        return fail(p, id->pos, "expected at least %d argument(s) in call to \"%s\", got %d",
                    fn->min_args, fn->name, na);
    if (fn->max_args >= 0 && na > fn->max_args)
        return fail(p, id->pos, "expected at most %d argument(s) in call to \"%s\", got %d",
                    fn->max_args, fn->name, na);
    /* the last declared type repeats for variadic functions */
    int ntypes = 0;
    while (ntypes < RW_FUNC_MAX_ARGS && fn->arg_types[ntypes] != RW_VAL_NONE)
        ntypes++;
    for (int i = 0; i < na; i++) {
        int ti = i < ntypes ? i : ntypes - 1;
        if (ti < 0)
            break;
        if (!expect_type(p, args.v[i], fn->arg_types[ti], ctx))
            return NULL;
    }
    n->u.call.fn = fn;
    n->u.call.args = (rw_node **)args.v;
    n->u.call.nargs = args.n;
    return n;
}

static int agg_has_param(rw_aggop op)
{
    return op == RW_AGG_TOPK || op == RW_AGG_BOTTOMK || op == RW_AGG_QUANTILE ||
           op == RW_AGG_COUNT_VALUES || op == RW_AGG_LIMITK || op == RW_AGG_LIMIT_RATIO;
}

static int agg_modifier(parser *p, rw_node *n)
{
    rw_token *t = cur(p);
    if (t->kind != RW_TK_IDENT || (t->kw != RW_KW_BY && t->kw != RW_KW_WITHOUT))
        return 1;
    n->u.agg.without = t->kw == RW_KW_WITHOUT;
    n->u.agg.has_grouping = 1;
    next(p);
    return grouping_labels(p, &n->u.agg.grouping, &n->u.agg.ngrouping);
}

static rw_node *aggregation(parser *p)
{
    rw_token *op = cur(p);
    rw_node *n = new_node(p, RW_N_AGG, RW_VAL_VECTOR, op->pos);
    if (!n)
        return NULL;
    n->u.agg.op = op->agg;
    next(p);
    if (!agg_modifier(p, n))
        return NULL;
    int before = n->u.agg.has_grouping;
    vec args = {0};
    if (!call_args(p, &args, "aggregation"))
        return NULL;
    if (!before && !agg_modifier(p, n))
        return NULL;
    n->end = p->last_end;
    if (args.n == 0)
        return fail(p, n->pos, "no arguments for aggregate expression provided");
    size_t want = agg_has_param(n->u.agg.op) ? 2 : 1;
    if (args.n != want)
        return fail(p, n->pos,
                    "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
                    want, args.n);
    n->u.agg.expr = args.v[want - 1];
    if (!expect_type(p, n->u.agg.expr, RW_VAL_VECTOR, "aggregation expression"))
        return NULL;
    if (want == 2) {
        n->u.agg.param = args.v[0];
        rw_val_type pt = n->u.agg.op == RW_AGG_COUNT_VALUES ? RW_VAL_STRING : RW_VAL_SCALAR;
        if (!expect_type(p, n->u.agg.param, pt, "aggregation parameter"))
            return NULL;
    }
    return n;
}

/* ---- primary and postfix expressions ---- */

static rw_node *primary(parser *p)
{
    rw_token *t = cur(p);
    rw_node *n;
    switch (t->kind) {
    case RW_TK_NUMBER:
    case RW_TK_DURATION: /* a duration is a number of seconds where a number is expected */
        next(p);
        n = new_node(p, RW_N_NUMBER, RW_VAL_SCALAR, t->pos);
        if (n)
            n->u.number = t->kind == RW_TK_NUMBER ? t->num : (double)t->dur_ms / 1000.0;
        return n;
    case RW_TK_STRING:
        next(p);
        n = new_node(p, RW_N_STRING, RW_VAL_STRING, t->pos);
        if (n)
            n->u.string = t->str;
        return n;
    case RW_TK_LPAREN: {
        next(p);
        rw_node *e = expr(p, 0);
        if (!e)
            return NULL;
        if (cur(p)->kind != RW_TK_RPAREN)
            return unexpected(p, "paren expression", "\")\"");
        next(p);
        n = new_node(p, RW_N_PAREN, e->type, t->pos);
        if (n)
            n->u.unary.expr = e;
        return n;
    }
    case RW_TK_LBRACE:
        return selector(p, NULL);
    case RW_TK_METRIC_IDENT:
        return selector(p, t);
    case RW_TK_IDENT: {
        rw_token *nx = peek(p, 1);
        /* these keywords, unlike the others, can never name a metric */
        if (t->kw == RW_KW_ON || t->kw == RW_KW_IGNORING || t->kw == RW_KW_GROUP_LEFT ||
            t->kw == RW_KW_GROUP_RIGHT || t->kw == RW_KW_BOOL || t->kw == RW_KW_ATAN2)
            return unexpected(p, NULL, NULL);
        if (t->kw == RW_KW_AGG &&
            (nx->kind == RW_TK_LPAREN ||
             (nx->kind == RW_TK_IDENT && (nx->kw == RW_KW_BY || nx->kw == RW_KW_WITHOUT))))
            return aggregation(p);
        if (nx->kind == RW_TK_LPAREN)
            return call(p);
        return selector(p, t);
    }
    default:
        return unexpected(p, NULL, NULL);
    }
}

static int is_sel(const rw_node *n)
{
    return n->kind == RW_N_VECTOR_SEL || n->kind == RW_N_MATRIX_SEL;
}

/* [range], [range:step], offset d, @ t after a primary expression. */
static rw_node *postfix(parser *p)
{
    rw_node *n = primary(p);
    while (n) {
        rw_token *t = cur(p);
        if (t->kind == RW_TK_LBRACKET) {
            next(p);
            int64_t range, step = 0;
            if (!duration_tok(p, &range, "range or subquery"))
                return NULL;
            if (range <= 0)
                return fail(p, t->pos + 1, "duration must be greater than 0");
            if (cur(p)->kind == RW_TK_COLON) {
                next(p);
                if (cur(p)->kind != RW_TK_RBRACKET) {
                    int spos = cur(p)->pos;
                    if (!duration_tok(p, &step, "subquery"))
                        return NULL;
                    if (step <= 0)
                        return fail(p, spos, "duration must be greater than 0");
                }
                if (cur(p)->kind != RW_TK_RBRACKET)
                    return unexpected(p, "subquery", "\"]\"");
                next(p);
                if (n->type != RW_VAL_VECTOR)
                    return fail(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
                                plain_type(n->type));
                rw_node *s = new_node(p, RW_N_SUBQUERY, RW_VAL_MATRIX, n->pos);
                if (!s)
                    return NULL;
                s->u.subq.expr = n;
                s->u.subq.range_ms = range;
                s->u.subq.step_ms = step;
                n = s;
                continue;
            }
            if (cur(p)->kind != RW_TK_RBRACKET)
                return unexpected(p, "range", "\"]\" or \":\"");
            next(p);
            if (n->kind != RW_N_VECTOR_SEL)
                return fail(p, n->pos, "ranges only allowed for vector selectors");
            if (n->u.sel.offset_ms != 0)
                return fail(p, n->pos, "no offset modifiers allowed before range");
            if (n->u.sel.at != RW_AT_NONE)
                return fail(p, n->pos, "no @ modifiers allowed before range");
            n->kind = RW_N_MATRIX_SEL;
            n->type = RW_VAL_MATRIX;
            n->u.sel.range_ms = range;
            n->end = p->last_end;
            continue;
        }
        if (t->kind == RW_TK_IDENT && t->kw == RW_KW_OFFSET) {
            next(p);
            int neg = 0;
            if (cur(p)->kind == RW_TK_SUB || cur(p)->kind == RW_TK_ADD) {
                neg = cur(p)->kind == RW_TK_SUB;
                next(p);
            }
            int64_t off;
            if (!duration_tok(p, &off, "offset"))
                return NULL;
            if (neg)
                off = -off;
            int64_t *slot;
            if (is_sel(n))
                slot = &n->u.sel.offset_ms;
            else if (n->kind == RW_N_SUBQUERY)
                slot = &n->u.subq.offset_ms;
            else
                return fail(p, n->pos, "offset modifier must be preceded by an instant vector "
                                       "selector or range vector selector or a subquery");
            if (*slot != 0)
                return fail(p, n->pos, "offset may not be set multiple times");
            *slot = off;
            n->end = p->last_end;
            continue;
        }
        if (t->kind == RW_TK_AT) {
            next(p);
            rw_at_kind at;
            int64_t at_ms = 0;
            rw_token *v = cur(p);
            if (v->kind == RW_TK_IDENT && (v->kw == RW_KW_START || v->kw == RW_KW_END)) {
                at = v->kw == RW_KW_START ? RW_AT_START : RW_AT_END;
                next(p);
                if (cur(p)->kind != RW_TK_LPAREN)
                    return unexpected(p, "@", "\"(\"");
                next(p);
                if (cur(p)->kind != RW_TK_RPAREN)
                    return unexpected(p, "@", "\")\"");
                next(p);
            } else {
                int neg = 0;
                if (v->kind == RW_TK_SUB || v->kind == RW_TK_ADD) {
                    neg = v->kind == RW_TK_SUB;
                    next(p);
                    v = cur(p);
                }
                double secs;
                if (v->kind == RW_TK_NUMBER)
                    secs = v->num;
                else if (v->kind == RW_TK_DURATION)
                    secs = (double)v->dur_ms / 1000.0;
                else
                    return unexpected(p, "@", "timestamp");
                next(p);
                if (neg)
                    secs = -secs;
                if (!isfinite(secs) || secs * 1000.0 >= 9.2e18 || secs * 1000.0 <= -9.2e18) {
                    char num[64];
                    if (isfinite(secs))
                        snprintf(num, sizeof num, "%f", secs);
                    else
                        rw_format_number(secs, num, sizeof num);
                    return fail(p, n->pos, "timestamp out of bounds for @ modifier: %s", num);
                }
                at = RW_AT_TIME;
                at_ms = (int64_t)llround(secs * 1000.0);
            }
            rw_at_kind *slot;
            int64_t *ms_slot;
            if (is_sel(n)) {
                slot = &n->u.sel.at;
                ms_slot = &n->u.sel.at_ms;
            } else if (n->kind == RW_N_SUBQUERY) {
                slot = &n->u.subq.at;
                ms_slot = &n->u.subq.at_ms;
            } else
                return fail(p, n->pos, "@ modifier must be preceded by an instant vector selector "
                                       "or range vector selector or a subquery");
            if (*slot != RW_AT_NONE)
                return fail(p, n->pos, "@ <timestamp> may not be set multiple times");
            *slot = at;
            *ms_slot = at_ms;
            n->end = p->last_end;
            continue;
        }
        break;
    }
    return n;
}

/* ---- unary and binary expressions ---- */

static rw_node *unary(parser *p)
{
    rw_token *t = cur(p);
    if (t->kind != RW_TK_SUB && t->kind != RW_TK_ADD)
        return postfix(p);
    next(p);
    /* binds tighter than any binary operator but ^ */
    rw_node *e = expr(p, PREC_POW);
    if (!e)
        return NULL;
    if (e->type != RW_VAL_SCALAR && e->type != RW_VAL_VECTOR)
        return fail(p, t->pos,
                    "unary expression only allowed on expressions of type scalar or instant "
                    "vector, got \"%s\"",
                    doc_type(e->type));
    if (e->kind == RW_N_NUMBER) {
        if (t->kind == RW_TK_SUB)
            e->u.number = -e->u.number;
        e->pos = t->pos;
        return e;
    }
    if (t->kind == RW_TK_ADD)
        return e;
    rw_node *n = new_node(p, RW_N_UNARY, e->type, t->pos);
    if (n)
        n->u.unary.expr = e;
    return n;
}

static int tok_binop(const rw_token *t, rw_binop *op, int *prec)
{
    switch (t->kind) {
    case RW_TK_ADD: *op = RW_OP_ADD; *prec = PREC_ADD; return 1;
    case RW_TK_SUB: *op = RW_OP_SUB; *prec = PREC_ADD; return 1;
    case RW_TK_MUL: *op = RW_OP_MUL; *prec = PREC_MUL; return 1;
    case RW_TK_DIV: *op = RW_OP_DIV; *prec = PREC_MUL; return 1;
    case RW_TK_MOD: *op = RW_OP_MOD; *prec = PREC_MUL; return 1;
    case RW_TK_POW: *op = RW_OP_POW; *prec = PREC_POW; return 1;
    case RW_TK_EQLC: *op = RW_OP_EQL; *prec = PREC_CMP; return 1;
    case RW_TK_NEQ: *op = RW_OP_NEQ; *prec = PREC_CMP; return 1;
    case RW_TK_GTR: *op = RW_OP_GTR; *prec = PREC_CMP; return 1;
    case RW_TK_LSS: *op = RW_OP_LSS; *prec = PREC_CMP; return 1;
    case RW_TK_GTE: *op = RW_OP_GTE; *prec = PREC_CMP; return 1;
    case RW_TK_LTE: *op = RW_OP_LTE; *prec = PREC_CMP; return 1;
    case RW_TK_IDENT:
        switch (t->kw) {
        case RW_KW_AND: *op = RW_OP_AND; *prec = PREC_AND; return 1;
        case RW_KW_UNLESS: *op = RW_OP_UNLESS; *prec = PREC_AND; return 1;
        case RW_KW_OR: *op = RW_OP_OR; *prec = PREC_OR; return 1;
        case RW_KW_ATAN2: *op = RW_OP_ATAN2; *prec = PREC_MUL; return 1;
        default: return 0;
        }
    default:
        return 0;
    }
}

typedef struct binmods {
    int return_bool;
    int has_matching, on;
    char **labels;
    size_t nlabels;
    rw_card card;
    char **include;
    size_t ninclude;
} binmods;

/* [bool] [on|ignoring (labels) [group_left|group_right [(labels)]]] */
static int bin_modifiers(parser *p, binmods *m)
{
    rw_token *t = cur(p);
    if (t->kind == RW_TK_IDENT && t->kw == RW_KW_BOOL) {
        m->return_bool = 1;
        next(p);
        t = cur(p);
    }
    if (t->kind != RW_TK_IDENT || (t->kw != RW_KW_ON && t->kw != RW_KW_IGNORING))
        return 1;
    m->has_matching = 1;
    m->on = t->kw == RW_KW_ON;
    next(p);
    if (!grouping_labels(p, &m->labels, &m->nlabels))
        return 0;
    t = cur(p);
    if (t->kind == RW_TK_IDENT && (t->kw == RW_KW_GROUP_LEFT || t->kw == RW_KW_GROUP_RIGHT)) {
        m->card = t->kw == RW_KW_GROUP_LEFT ? RW_CARD_MANY_TO_ONE : RW_CARD_ONE_TO_MANY;
        next(p);
        if (cur(p)->kind == RW_TK_LPAREN && !grouping_labels(p, &m->include, &m->ninclude))
            return 0;
    }
    return 1;
}

static rw_node *binary(parser *p, rw_binop op, int op_pos, rw_node *lhs, rw_node *rhs,
                       binmods *m)
{
    rw_val_type lt = lhs->type, rt = rhs->type;
    if (m->return_bool && !rw_binop_is_comparison(op))
        return fail(p, op_pos, "bool modifier can only be used on comparison operators");
    if (rw_binop_is_comparison(op) && !m->return_bool && lt == RW_VAL_SCALAR &&
        rt == RW_VAL_SCALAR)
        return fail(p, op_pos, "comparisons between scalars must use BOOL modifier");
    if (m->on)
        for (size_t i = 0; i < m->nlabels; i++)
            for (size_t j = 0; j < m->ninclude; j++)
                if (strcmp(m->labels[i], m->include[j]) == 0)
                    return fail(p, op_pos, "label \"%s\" must not occur in ON and GROUP clause at once",
                                m->labels[i]);
    if (lt != RW_VAL_SCALAR && lt != RW_VAL_VECTOR)
        return fail(p, lhs->pos, "binary expression must contain only scalar and instant vector types");
    if (rt != RW_VAL_SCALAR && rt != RW_VAL_VECTOR)
        return fail(p, rhs->pos, "binary expression must contain only scalar and instant vector types");
    int vectors = lt == RW_VAL_VECTOR && rt == RW_VAL_VECTOR;
    if (!vectors && m->nlabels > 0)
        return fail(p, lhs->pos, "vector matching only allowed between instant vectors");
    if (rw_binop_is_set(op)) {
        if (vectors && (m->card == RW_CARD_ONE_TO_MANY || m->card == RW_CARD_MANY_TO_ONE))
            return fail(p, lhs->pos, "no grouping allowed for \"%s\" operation", rw_binop_str(op));
        if (!vectors)
            return fail(p, lhs->pos, "set operator \"%s\" not allowed in binary scalar expression",
                        rw_binop_str(op));
    }
    rw_val_type type = lt == RW_VAL_VECTOR || rt == RW_VAL_VECTOR ? RW_VAL_VECTOR : RW_VAL_SCALAR;
    rw_node *n = new_node(p, RW_N_BINARY, type, lhs->pos);
    if (!n)
        return NULL;
    n->u.bin.op = op;
    n->u.bin.lhs = lhs;
    n->u.bin.rhs = rhs;
    n->u.bin.return_bool = m->return_bool;
    if (vectors) {
        rw_vector_matching *vm = rw_arena_calloc(p->a, 1, sizeof *vm);
        if (!vm)
            return nomem(p);
        vm->card = rw_binop_is_set(op) ? RW_CARD_MANY_TO_MANY : m->card;
        vm->on = m->on;
        vm->labels = m->labels;
        vm->nlabels = m->nlabels;
        vm->include = m->include;
        vm->ninclude = m->ninclude;
        n->u.bin.matching = vm;
    }
    return n;
}

static rw_node *expr(parser *p, int min_prec)
{
    if (++p->depth > MAX_DEPTH)
        return fail(p, cur(p)->pos, "expression nesting exceeds the maximum depth of %d",
                    MAX_DEPTH);
    rw_node *lhs = unary(p);
    while (lhs) {
        rw_binop op;
        int prec;
        rw_token *t = cur(p);
        if (!tok_binop(t, &op, &prec) || prec < min_prec)
            break;
        int op_pos = t->pos;
        next(p);
        binmods m = {.card = RW_CARD_ONE_TO_ONE};
        if (!bin_modifiers(p, &m))
            return NULL;
        rw_node *rhs = expr(p, op == RW_OP_POW ? prec : prec + 1);
        if (!rhs)
            return NULL;
        lhs = binary(p, op, op_pos, lhs, rhs, &m);
    }
    p->depth--;
    return lhs;
}

/* ---- tree height, without recursion ---- */

/* The children of a node other than a call (calls have their args array). */
static size_t children(const rw_node *n, const rw_node *out[2])
{
    switch (n->kind) {
    case RW_N_SUBQUERY:
        out[0] = n->u.subq.expr;
        return 1;
    case RW_N_AGG:
        out[0] = n->u.agg.expr;
        out[1] = n->u.agg.param;
        return n->u.agg.param ? 2 : 1;
    case RW_N_BINARY:
        out[0] = n->u.bin.lhs;
        out[1] = n->u.bin.rhs;
        return 2;
    case RW_N_UNARY: case RW_N_PAREN: case RW_N_STEP_INVARIANT:
        out[0] = n->u.unary.expr;
        return 1;
    default:
        return 0;
    }
}

/* Fails (returns 0) when the tree is taller than MAX_DEPTH, reporting the
 * first node found beyond the limit. An explicit stack in the arena, so the
 * check itself cannot overflow the C stack. */
static int check_height(parser *p, const rw_node *root)
{
    typedef struct { const rw_node *n; int d; } item;
    size_t cap = 64, sp = 0;
    item *st = rw_arena_alloc(p->a, cap * sizeof *st);
    if (!st)
        return nomem(p), 0;
    st[sp++] = (item){root, 1};
    while (sp) {
        item it = st[--sp];
        if (it.d > MAX_DEPTH) {
            fail(p, it.n->pos, "expression nesting exceeds the maximum depth of %d", MAX_DEPTH);
            return 0;
        }
        const rw_node *kids[2];
        const rw_node *const *list = kids;
        size_t nk;
        if (it.n->kind == RW_N_CALL) {
            nk = it.n->u.call.nargs;
            list = (const rw_node *const *)it.n->u.call.args;
        } else {
            nk = children(it.n, kids);
        }
        if (sp + nk > cap) {
            size_t nc = (sp + nk) * 2;
            item *ns = rw_arena_realloc(p->a, st, cap * sizeof *st, nc * sizeof *st);
            if (!ns)
                return nomem(p), 0;
            st = ns;
            cap = nc;
        }
        for (size_t i = 0; i < nk; i++)
            st[sp++] = (item){list[i], it.d + 1};
    }
    return 1;
}

/* ---- entry points ---- */

static void parser_cleanup(parser *p)
{
    for (size_t i = 0; i < p->nsels; i++) {
        rw_node *n = p->sels[i];
        for (size_t j = 0; j < n->u.sel.nmatchers; j++)
            rw_matcher_free(&n->u.sel.matchers[j]);
        n->u.sel.nmatchers = 0;
    }
}

static rw_rc parser_init(parser *p, const char *input, rw_arena *a, rw_err *err)
{
    memset(p, 0, sizeof *p);
    p->in = input;
    p->a = a;
    p->err = err;
    size_t n = strlen(input);
    if (n > (size_t)1 << 30)
        return rw_err_set(err, RW_BADREQ, "query too long");
    return rw_lex(input, n, a, &p->t, &p->nt, err);
}

rw_rc rw_promql_parse(const char *input, rw_arena *a, rw_node **out, rw_err *err)
{
    parser p;
    rw_rc rc;
    *out = NULL;
    if ((rc = parser_init(&p, input, a, err)) != RW_OK)
        return rc;
    rw_node *n = expr(&p, 0);
    if (n && cur(&p)->kind != RW_TK_EOF)
        n = unexpected(&p, NULL, NULL);
    if (n && !check_height(&p, n))
        n = NULL;
    if (!n) {
        parser_cleanup(&p);
        if (!p.failed)
            nomem(&p);
        return p.code;
    }
    *out = n;
    return RW_OK;
}

rw_rc rw_promql_parse_selector(const char *s, rw_matcher **out, size_t *nout, rw_err *err)
{
    *out = NULL;
    *nout = 0;
    rw_arena *a = rw_arena_new(0, 1 << 24);
    if (!a)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    parser p;
    rw_rc rc = parser_init(&p, s, a, err);
    if (rc != RW_OK) {
        rw_arena_free(a);
        return rc;
    }
    rw_token *t = cur(&p);
    rw_node *n = NULL;
    if (t->kind == RW_TK_LBRACE)
        n = selector(&p, NULL);
    else if (t->kind == RW_TK_IDENT || t->kind == RW_TK_METRIC_IDENT)
        n = selector(&p, t);
    else
        unexpected(&p, NULL, "vector selector");
    if (n && cur(&p)->kind != RW_TK_EOF)
        n = unexpected(&p, NULL, NULL);
    rw_matcher *ms = NULL;
    if (n) {
        ms = malloc((n->u.sel.nmatchers ? n->u.sel.nmatchers : 1) * sizeof *ms);
        if (!ms)
            n = nomem(&p);
    }
    if (!n) {
        parser_cleanup(&p);
        rw_arena_free(a);
        return p.code;
    }
    /* the matchers' owned strings and compiled regexes move to the caller */
    memcpy(ms, n->u.sel.matchers, n->u.sel.nmatchers * sizeof *ms);
    *out = ms;
    *nout = n->u.sel.nmatchers;
    rw_arena_free(a);
    return RW_OK;
}
