/* promql.h - the public interface of rwgate's PromQL engine.
 *
 * The engine parses a query into an AST (query/ast.h), then evaluates it step
 * by step against the store's series selection (rw_store_select). Results are
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

rw_engine *rw_engine_new(rw_store *store, const rw_engine_opts *opts);
void rw_engine_free(rw_engine *e);

/* Parse errors are RW_BADREQ ("bad_data") with err->pos set and a message
 * giving the position and what was expected; evaluation errors are RW_EXEC
 * ("execution"), RW_TIMEOUT, RW_LIMIT (max samples: "execution" too). */
rw_rc rw_engine_instant(rw_engine *e, const char *query, int64_t t_ms, int64_t timeout_ms,
                        rw_arena *a, rw_result *out, rw_err *err);
/* A range query always returns RW_VAL_MATRIX (or scalar-as-matrix as
 * Prometheus does), series sorted by labels, points at start + i*step. */
rw_rc rw_engine_range(rw_engine *e, const char *query, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, int64_t timeout_ms, rw_arena *a, rw_result *out,
                      rw_err *err);

/* Parses a series selector (for match[] parameters): a vector selector only.
 * Matchers are initialised in *out (caller frees them with rw_matcher_free
 * and the array with free()). */
rw_rc rw_promql_parse_selector(const char *s, rw_matcher **out, size_t *n, rw_err *err);

#endif
