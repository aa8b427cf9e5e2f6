/* func.h - the PromQL function table. One table (func.c) gives every
 * function's name, argument types, arity and implementation: the parser
 * type-checks calls from it, the evaluator dispatches through it, and a unit
 * test checks that every entry has an implementation. Internal to query/. */
#ifndef RW_QUERY_FUNC_H
#define RW_QUERY_FUNC_H

#include <stddef.h>
#include "promql.h"

#define RW_FUNC_MAX_ARGS 6

typedef struct rw_func rw_func;

struct rw_eval_ctx;      /* query/eval_int.h */
struct rw_eval_value;    /* query/eval_int.h */
struct rw_node;

/* Implementation: evaluates a call node at every step of the context. The
 * evaluator owns the signature (eval_int.h); NULL here means "not
 * implemented" and the unit test fails. */
typedef int (*rw_func_impl)(struct rw_eval_ctx *ctx, const struct rw_node *call,
                            struct rw_eval_value *out);

struct rw_func {
    const char *name;
    rw_val_type arg_types[RW_FUNC_MAX_ARGS];
    int min_args;        /* required arguments */
    int max_args;        /* -1 = variadic (last type repeats) */
    rw_val_type ret;
    rw_func_impl impl;
    int op;              /* which variant impl runs (func_impl.h enums) */
};

/* NULL when there is no such function. */
const rw_func *rw_func_lookup(const char *name, size_t len);
const rw_func *rw_func_table(size_t *n);

#endif
