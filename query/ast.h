/* ast.h - the PromQL abstract syntax tree, shared by the parser (parse.c)
 * and the evaluator (eval*.c). Internal to query/. Nodes and their strings
 * live in the arena given to rw_promql_parse(); matchers inside selectors own
 * compiled regexes and are released by rw_ast_free(). */
#ifndef RW_QUERY_AST_H
#define RW_QUERY_AST_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/matcher.h"
#include "promql.h"

typedef enum {
    RW_N_NUMBER,
    RW_N_STRING,
    RW_N_VECTOR_SEL,  /* foo{a="b"} offset 5m @ 123 */
    RW_N_MATRIX_SEL,  /* foo{a="b"}[5m] offset 5m @ 123 */
    RW_N_SUBQUERY,    /* expr[30m:1m] offset .. @ .. */
    RW_N_CALL,
    RW_N_AGG,
    RW_N_BINARY,
    RW_N_UNARY,       /* -expr (unary + is dropped by the parser) */
    RW_N_PAREN,
    RW_N_STEP_INVARIANT /* wrapper the evaluator may add; the parser never does */
} rw_node_kind;

typedef enum {
    RW_OP_ADD, RW_OP_SUB, RW_OP_MUL, RW_OP_DIV, RW_OP_MOD, RW_OP_POW, RW_OP_ATAN2,
    RW_OP_EQL, RW_OP_NEQ, RW_OP_GTR, RW_OP_LSS, RW_OP_GTE, RW_OP_LTE,
    RW_OP_AND, RW_OP_OR, RW_OP_UNLESS
} rw_binop;

typedef enum {
    RW_AGG_SUM, RW_AGG_AVG, RW_AGG_MIN, RW_AGG_MAX, RW_AGG_COUNT, RW_AGG_STDDEV,
    RW_AGG_STDVAR, RW_AGG_TOPK, RW_AGG_BOTTOMK, RW_AGG_QUANTILE, RW_AGG_COUNT_VALUES,
    RW_AGG_GROUP, RW_AGG_LIMITK, RW_AGG_LIMIT_RATIO
} rw_aggop;

typedef enum { RW_AT_NONE, RW_AT_TIME, RW_AT_START, RW_AT_END } rw_at_kind;

typedef enum {
    RW_CARD_ONE_TO_ONE, RW_CARD_MANY_TO_ONE, RW_CARD_ONE_TO_MANY, RW_CARD_MANY_TO_MANY
} rw_card;

typedef struct rw_func rw_func; /* query/func.h */

typedef struct rw_vector_matching {
    rw_card card;      /* many-to-many for and/or/unless */
    int on;            /* on(...) rather than ignoring(...) */
    char **labels;     /* the on/ignoring list */
    size_t nlabels;
    char **include;    /* group_left/group_right extra labels */
    size_t ninclude;
} rw_vector_matching;

typedef struct rw_node rw_node;

struct rw_node {
    rw_node_kind kind;
    rw_val_type type;   /* result type, set by the parser */
    int pos, end;       /* byte range in the query text */
    union {
        double number;
        const char *string;
        struct {
            const char *metric;     /* NULL when the selector has no name */
            rw_matcher *matchers;   /* includes __name__="metric" when named */
            size_t nmatchers;
            int64_t offset_ms;      /* may be negative */
            rw_at_kind at;
            int64_t at_ms;          /* for RW_AT_TIME */
            int64_t range_ms;       /* RW_N_MATRIX_SEL only */
        } sel;
        struct {
            rw_node *expr;
            int64_t range_ms;
            int64_t step_ms;        /* 0 = engine default */
            int64_t offset_ms;
            rw_at_kind at;
            int64_t at_ms;
        } subq;
        struct {
            const rw_func *fn;
            rw_node **args;
            size_t nargs;
        } call;
        struct {
            rw_aggop op;
            rw_node *expr;
            rw_node *param;         /* topk/bottomk/quantile/count_values/limitk/limit_ratio */
            char **grouping;
            size_t ngrouping;
            int without;
            int has_grouping;       /* by()/without() was written, even empty */
        } agg;
        struct {
            rw_binop op;
            rw_node *lhs, *rhs;
            int return_bool;
            rw_vector_matching *matching; /* NULL unless both sides are vectors */
        } bin;
        struct {
            rw_node *expr;          /* RW_N_UNARY (negation), RW_N_PAREN,
                                       RW_N_STEP_INVARIANT */
        } unary;
    } u;
};

/* Parses `input` into an AST in arena `a`. On error returns RW_BADREQ with
 * err->pos and a message like Prometheus':
 *   "1:5: parse error: unexpected <op:*> ..." */
rw_rc rw_promql_parse(const char *input, rw_arena *a, rw_node **out, rw_err *err);
/* Releases the compiled matchers of every selector in the tree. */
void rw_ast_free(rw_node *n);

const char *rw_binop_str(rw_binop op);
const char *rw_aggop_str(rw_aggop op);
int rw_binop_is_comparison(rw_binop op);
int rw_binop_is_set(rw_binop op);

/* Added by the parser (ast.c). */
struct rw_buf; /* core/buf.h */
/* Appends the expression as PromQL text (Prometheus' printed form, e.g.
 * `sum by (job) (rate(x[5m] offset 1m))`); the text parses back to the same
 * tree. RW_LIMIT when the buffer's cap was hit. */
rw_rc rw_ast_format(const rw_node *n, struct rw_buf *b);
/* A float as Go's fmt.Sprint prints it ("1e+06", "0.5", "NaN", "+Inf"). */
void rw_format_number(double v, char *out, size_t cap);

#endif
