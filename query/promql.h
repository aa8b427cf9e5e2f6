/* promql.h - the public interface of rwgate's PromQL engine.
 *
 * The engine parses a query into an AST (query/ast.h), then evaluates it step
 * by step against series read through a querier (store/store.h). Results are
 * allocated in the caller's arena. Semantics are those of Prometheus 3.x for
 * float samples: 5m lookback (configurable), staleness markers end a series,
 * left-open range selectors (t-range, t], extrapolated rate/increase/delta,
 * delayed __name__ removal. */
#ifndef RW_PROMQL_H
#define RW_PROMQL_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/labels.h"
#include "store/store.h"

typedef enum {
    RW_VAL_NONE,
    RW_VAL_SCALAR,
    RW_VAL_VECTOR, /* instant vector */
    RW_VAL_MATRIX, /* range vector, or the result of a range query */
    RW_VAL_STRING
} rw_val_type;

const char *rw_val_type_name(rw_val_type t); /* "scalar", "vector", "matrix", "string" */

typedef struct rw_point {
    int64_t t;
    double v;
} rw_point;

typedef struct rw_result_series {
    rw_label *labels;
    size_t nlabels;
    rw_point *points; /* one for a vector element, many for a matrix */
    size_t npoints;
} rw_result_series;

typedef struct rw_result {
    rw_val_type type;
    /* scalar / string: */
    int64_t t;
    double scalar;
    const char *string;
    /* vector / matrix: */
    rw_result_series *series;
    size_t nseries;
    /* annotations, as Prometheus returns them in "warnings" / "infos" */
    const char **warnings;
    size_t nwarnings;
    const char **infos;
    size_t ninfos;
} rw_result;

typedef struct rw_engine rw_engine;

typedef struct rw_engine_opts {
    int64_t lookback_ms;         /* default 5m */
    int64_t default_subquery_step_ms; /* default 1m: step of [x:] subqueries */
    size_t max_samples;          /* loaded at once; default 50,000,000 */
    int64_t timeout_ms;          /* default 2m */
} rw_engine_opts;

/* The engine reads series through `querier` (store/store.h): the store itself,
 * or a wrapper that scopes reads to tenants or merges remote stores. The
 * querier is copied; what it points to must outlive the engine. */
rw_engine *rw_engine_new(const rw_querier *querier, const rw_engine_opts *opts);
void rw_engine_free(rw_engine *e);

/* ---- prepared expressions: parse once, evaluate many times ----
 *
 * A prepared expression holds the parsed, type-checked tree and its compiled
 * matchers. Rules prepare each expression once at load and evaluate it every
 * interval. An expression may be evaluated by one thread at a time (its
 * compiled regex matchers own their match data); it never changes. */
typedef struct rw_promql_expr rw_promql_expr;

/* NULL on a parse error: err is RW_BADREQ with err->pos (byte offset) and a
 * message in Prometheus' form ("1:5: parse error: unexpected ..."). */
rw_promql_expr *rw_promql_prepare(const char *text, rw_err *err);
void rw_promql_expr_free(rw_promql_expr *x);
/* The text as given. */
const char *rw_promql_expr_text(const rw_promql_expr *x);
/* The canonical form, as Prometheus prints a parsed expression (what the
 * rules API and `check rules` show): `sum by (job) (rate(x[5m]))`. */
const char *rw_promql_expr_string(const rw_promql_expr *x);
/* The expression's result type. */
rw_val_type rw_promql_expr_type(const rw_promql_expr *x);

/* Per-evaluation settings; zero fields take the engine's values. */
typedef struct rw_eval_opts {
    const rw_querier *querier; /* NULL: the engine's */
    int64_t timeout_ms;        /* can shorten the engine's timeout, not extend it */
    size_t max_samples;        /* can lower the engine's limit, not raise it */
} rw_eval_opts;

/* Parse errors are RW_BADREQ ("bad_data") with err->pos set and a message
 * giving the position and what was expected; evaluation errors are RW_EXEC
 * ("execution"), RW_TIMEOUT, RW_LIMIT (max samples: "execution" too).
 * opts may be NULL. */
rw_rc rw_engine_eval_instant(rw_engine *e, const rw_promql_expr *x, int64_t t_ms,
                             const rw_eval_opts *opts, rw_arena *a, rw_result *out, rw_err *err);
/* A range query always returns RW_VAL_MATRIX (or scalar-as-matrix as
 * Prometheus does), series sorted by labels, points at start + i*step. */
rw_rc rw_engine_eval_range(rw_engine *e, const rw_promql_expr *x, int64_t start_ms,
                           int64_t end_ms, int64_t step_ms, const rw_eval_opts *opts,
                           rw_arena *a, rw_result *out, rw_err *err);

/* One-shot forms: prepare, evaluate, free. */
rw_rc rw_engine_instant(rw_engine *e, const char *query, int64_t t_ms, int64_t timeout_ms,
                        rw_arena *a, rw_result *out, rw_err *err);
rw_rc rw_engine_range(rw_engine *e, const char *query, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, int64_t timeout_ms, rw_arena *a, rw_result *out,
                      rw_err *err);

/* Parses a series selector (for match[] parameters): a vector selector only.
 * Matchers are initialised in *out (caller frees them with rw_matcher_free
 * and the array with free()). */
rw_rc rw_promql_parse_selector(const char *s, rw_matcher **out, size_t *n, rw_err *err);

#endif
