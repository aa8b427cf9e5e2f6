/* eval_int.h - internals of the PromQL evaluator, shared by eval*.c, func_*.c
 * and engine.c. Internal to query/.
 *
 * Evaluation model. A query is evaluated over all of its steps at once: every
 * node is evaluated once per evaluation context (struct rw_eval_ctx: the list
 * of step timestamps) and yields one value covering all steps:
 *
 *   scalar  - one double per step;
 *   vector  - a list of series, each with a dense array of one value per step
 *             and a presence byte per step (a series exists in the result if it
 *             has a value at one step at least);
 *   matrix  - a range vector: per series all raw samples of the time span any
 *             step needs, plus the window parameters (range, offset, @); the
 *             window of step i is (e - range, e] with e = (@ or ts[i]) - offset;
 *   string  - a string literal.
 *
 * An instant query is a range query with one step. Subqueries evaluate their
 * inner expression in a child context whose steps are aligned to the subquery
 * step, then present the result as a matrix to the parent.
 *
 * Memory: every value lives in the query's evaluation arena (rw_eval_query.a),
 * freed in one call when the query ends. Raw samples that are reduced right
 * away (a range function over a plain selector, a vector selector over
 * several steps) live only in a per-selector scratch arena, one batch of
 * series at a time (rw_sel_iter below). Nothing here is shared between
 * queries: a rw_eval_query belongs to one thread.
 *
 * Names: Prometheus 3 removes __name__ late ("delayed name removal"). A series
 * carries drop_name when an operation that changes its meaning (arithmetic,
 * most functions) touched it; the name is stripped when the final result is
 * built (engine.c), or earlier where Prometheus does it. */
#ifndef RW_QUERY_EVAL_INT_H
#define RW_QUERY_EVAL_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "ast.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/labels.h"
#include "func.h"
#include "promql.h"
#include "store/store.h"

struct rw_engine {
    rw_querier querier;  /* the default source of series */
    rw_engine_opts opts; /* defaults filled in; read-only after rw_engine_new */
};

/* Annotations (Prometheus "warnings" / "infos"), deduplicated by text. */
typedef struct rw_annos {
    char **warn;
    size_t nwarn, capwarn;
    char **info;
    size_t ninfo, capinfo;
} rw_annos;

/* State of one query evaluation, shared by the root context and every
 * subquery context. */
typedef struct rw_eval_query {
    const rw_querier *querier;
    const rw_engine_opts *opts;
    rw_arena *a;             /* evaluation arena: all intermediate values */
    const char *text;        /* the query text (positions in annotations) */
    int64_t start, end;      /* the query's start/end (for @ start()/end()) */
    int64_t step;            /* the query's step; 0 for an instant query */
    size_t samples;          /* samples loaded so far (max_samples) */
    int64_t deadline_ns;     /* CLOCK_MONOTONIC; 0 = none */
    rw_annos annos;
    rw_err *err;
} rw_eval_query;

/* One evaluation context: the steps a node is evaluated at. */
struct rw_eval_ctx {
    rw_eval_query *q;
    const int64_t *ts;       /* ascending step timestamps */
    size_t nsteps;
    int64_t interval;        /* step width (1 for a single step) */
};
typedef struct rw_eval_ctx rw_eval_ctx;

/* An instant-vector series over the context's steps. */
typedef struct rw_eval_series {
    rw_label *labels;        /* sorted, in the evaluation arena */
    size_t nlabels;
    int drop_name;           /* strip __name__ at output (delayed removal) */
    double *v;               /* [nsteps] */
    uint8_t *ok;             /* [nsteps]: 1 when the series has a value */
    int64_t *t;              /* [nsteps] sample timestamps; only for plain
                                selectors evaluated for timestamp() */
} rw_eval_series;

/* A range-vector series: raw samples (no stale markers), ascending. */
typedef struct rw_eval_mseries {
    rw_label *labels;
    size_t nlabels;
    int drop_name;
    int64_t *t;
    double *v;
    size_t n;
} rw_eval_mseries;

struct rw_eval_value {
    rw_val_type type;
    /* RW_VAL_SCALAR */
    double *scalar;          /* [nsteps] */
    /* RW_VAL_VECTOR */
    rw_eval_series *series;
    size_t nseries;
    /* RW_VAL_MATRIX */
    rw_eval_mseries *ms;
    size_t nms;
    int64_t range_ms;
    int64_t offset_ms;
    int pinned;              /* @ given: every step uses pin_ms */
    int64_t pin_ms;
    /* RW_VAL_STRING */
    const char *str;
};
typedef struct rw_eval_value rw_eval_value;

/* ---- eval.c: dispatch and shared helpers ---- */

/* Evaluates node n in context ctx into *out. Returns RW_OK or an error code
 * with ctx->q->err filled. */
rw_rc rw_eval(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out);
/* Evaluates n, which must yield a scalar (number literals, scalar functions,
 * scalar arithmetic); *vals gets one value per step. */
rw_rc rw_eval_scalar(rw_eval_ctx *ctx, const rw_node *n, double **vals);
/* Checks the deadline: RW_TIMEOUT once it has passed. */
rw_rc rw_eval_check(rw_eval_ctx *ctx, const char *where);
/* Accounts n more samples against max_samples. */
rw_rc rw_eval_account(rw_eval_ctx *ctx, size_t n);
rw_rc rw_eval_fail(rw_eval_ctx *ctx, rw_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
rw_rc rw_eval_nomem(rw_eval_ctx *ctx);

/* Effective evaluation time of step i for a node with @ modifier kind/at. */
int64_t rw_eval_at_time(const rw_eval_ctx *ctx, rw_at_kind at, int64_t at_ms, size_t i);

/* Strips parentheses. */
const rw_node *rw_node_unparen(const rw_node *n);

/* Annotations. The position is the byte offset in the query text of the node
 * the annotation is about; -1 for none. */
void rw_eval_warn(rw_eval_ctx *ctx, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rw_eval_info(rw_eval_ctx *ctx, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new empty vector series with arrays for the context's steps. */
rw_eval_series *rw_series_new(rw_eval_ctx *ctx, rw_eval_series *s, const rw_label *l, size_t n,
                              int drop_name);
/* Removes, in place and keeping the order, the series of a vector that have
 * no value at any step (a pairing or group that produced nothing). */
void rw_eval_drop_empty(const rw_eval_ctx *ctx, rw_eval_value *v);
/* out becomes a scalar with an uninitialised value per step. */
rw_rc rw_eval_scalar_new(rw_eval_ctx *ctx, rw_eval_value *out);
/* out becomes the scalar v at every step. */
rw_rc rw_eval_scalar_const(rw_eval_ctx *ctx, double v, rw_eval_value *out);

/* Output builder: collects result series keyed by label set, so that the
 * same labels at two steps land in one series; the same labels twice at one
 * step is an error ("vector cannot contain metrics with the same labelset"). */
typedef struct rw_vbuild {
    rw_eval_ctx *ctx;
    rw_eval_series *s;
    size_t n, cap;
    uint64_t *hk;            /* open addressing: hash keys */
    uint32_t *hv;            /* index + 1, 0 = empty */
    size_t hcap;
} rw_vbuild;

void rw_vbuild_init(rw_vbuild *b, rw_eval_ctx *ctx);
/* Finds or creates the series with these labels (copied only when new);
 * returns its index, or -1 out of memory. */
long rw_vbuild_series(rw_vbuild *b, const rw_label *l, size_t n, int drop_name);
/* Sets a value at a step; RW_EXEC when the series already has one there. */
rw_rc rw_vbuild_set(rw_vbuild *b, long idx, size_t step, double v);
void rw_vbuild_finish(rw_vbuild *b, rw_eval_value *out);

/* Label-set helpers (results in the evaluation arena). */
rw_label *rw_lbl_copy(rw_arena *a, const rw_label *l, size_t n);
/* Copy without the names listed (keep=0) or with only them (keep=1). */
size_t rw_lbl_filter(rw_arena *a, const rw_label *l, size_t n, char *const *names,
                     size_t nnames, int keep, int drop_metric_name, rw_label **out);
/* Copy with name=value set (value "" deletes). */
size_t rw_lbl_set(rw_arena *a, const rw_label *l, size_t n, const char *name, const char *value,
                  rw_label **out);
size_t rw_lbl_del(rw_arena *a, const rw_label *l, size_t n, const char *name, rw_label **out);
/* Prometheus-style label set text: {__name__="x", a="b"}. */
char *rw_lbl_str(rw_arena *a, const rw_label *l, size_t n);

/* Go float formatting (strconv 'g' / 'f' with shortest precision). */
void rw_fmt_go_g(char *buf, size_t cap, double f);
void rw_fmt_go_f(char *buf, size_t cap, double f);
/* Go strconv.Quote-like quoting of a string, into the arena. */
char *rw_go_quote(rw_arena *a, const char *s);

/* Kahan/Neumaier summation step as Prometheus does it. */
static inline void rw_kahan_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (t > 1.7976931348623157e308 || t < -1.7976931348623157e308)
        *c = 0;
    else if ((*sum >= 0 ? *sum : -*sum) >= (inc >= 0 ? inc : -inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* Prometheus' average (avg, avg_over_time): a compensated sum that switches
 * to an incremental mean once the sum would overflow to +-Inf. */
typedef struct rw_avg {
    double sum, c, mean, count;
    int incr;
} rw_avg;

static inline void rw_avg_init(rw_avg *a, double x)
{
    a->sum = x;
    a->c = 0;
    a->mean = 0;
    a->count = 1;
    a->incr = 0;
}

static inline void rw_avg_add(rw_avg *a, double x)
{
    a->count++;
    if (!a->incr) {
        double ns = a->sum, nc = a->c;
        rw_kahan_inc(x, &ns, &nc);
        if (!isinf(ns)) {
            a->sum = ns;
            a->c = nc;
            return;
        }
        a->incr = 1;
        a->mean = a->sum / (a->count - 1);
        a->c /= a->count - 1;
    }
    double q = (a->count - 1) / a->count;
    double m2 = q * a->mean, c2 = q * a->c;
    rw_kahan_inc(x / a->count, &m2, &c2);
    a->mean = m2;
    a->c = c2;
}

static inline double rw_avg_value(const rw_avg *a)
{
    return a->incr ? a->mean + a->c : a->sum / a->count + a->c / a->count;
}

/* quantile of values (sorted in place), Prometheus semantics. */
double rw_quantile(double q, double *vals, size_t n);

/* ---- streaming: an argument handed over series by series ----
 *
 * An aggregation that folds its members one at a time (sum, avg, count,
 * min, max, group, stddev, stdvar) does not need its whole argument at
 * once. When the argument reads the store itself - a plain vector selector,
 * or a range function over a plain matrix selector - it is evaluated into a
 * sink instead: each output series goes to put() as soon as it is complete
 * (in the order it would have had in the vector), and its arrays are reused
 * for the next. The query then holds the groups' per-step state and one
 * batch of raw samples instead of members x steps values, so the engine's
 * step batches (engine.c) can cover a long range in a few passes, and each
 * stored part is decoded about once instead of once per step batch. */
typedef struct rw_series_sink rw_series_sink;
struct rw_series_sink {
    /* s is valid during the call only; RW_OK or an error (ctx->q->err set) */
    rw_rc (*put)(rw_series_sink *sk, const rw_eval_series *s);
};
/* Whether rw_eval_stream can evaluate n (over several steps: a single step
 * holds one value per series anyway). */
int rw_eval_streams(const rw_eval_ctx *ctx, const rw_node *n);
/* Evaluates n (rw_eval_streams true) into sk. The series handed over are
 * not accounted against max_samples (they are gone after put()): the sink
 * accounts what it keeps. */
rw_rc rw_eval_stream(rw_eval_ctx *ctx, const rw_node *n, rw_series_sink *sk);

/* ---- func_range.c ---- */
/* Whether call is a range function over a plain matrix selector, which
 * rw_range_fn_to streams. */
int rw_range_fn_streams(const rw_node *call);
rw_rc rw_range_fn_to(rw_eval_ctx *ctx, const rw_node *call, rw_series_sink *sk);

/* ---- eval_select.c ---- */

/* A plain selector read in batches: the labels (and refs) of every matching
 * series are selected once into the evaluation arena, then the samples of
 * one batch of series at a time are decoded into a scratch arena that the
 * next batch reuses. A caller that reduces each batch to per-step values
 * (a range function, a vector selector over several steps) thus holds at
 * most one batch of raw samples, so the query's memory follows its output
 * (series x steps) rather than its input. Batches hold about
 * RW_SEL_BATCH_SAMPLES samples; their series come in label order. */
typedef struct rw_sel_iter {
    rw_eval_ctx *ctx;
    rw_series_data *all;     /* every selected series: labels + ref (q->a) */
    size_t nall, next;       /* next: first series of the next batch */
    size_t batch;            /* series in the next batch (adapts) */
    rw_arena *scratch;       /* the current batch's samples; owned */
    size_t scratch_block;    /* its block size (grows with the batches) */
    int64_t mint, maxt;
    size_t budget;           /* samples one batch may decode; 0 = no cap */
    size_t decoded;          /* samples decoded so far (all batches) */
    size_t kept;             /* samples handed out (matrix: stale dropped) */
    rw_eval_mseries *ms;     /* matrix batch (scratch) */
} rw_sel_iter;

/* Opens a batched read of matrix selector n (RW_N_MATRIX_SEL); m gets the
 * window parameters (range, offset, @) and no series. */
rw_rc rw_matrix_iter_open(rw_eval_ctx *ctx, const rw_node *n, rw_sel_iter *it, rw_eval_value *m);
/* The next batch as m->ms / m->nms (raw samples without stale markers, in
 * the scratch arena: valid until the next call); *done set (and m->nms 0)
 * once every series has been read. */
rw_rc rw_matrix_iter_next(rw_sel_iter *it, rw_eval_value *m, int *done);
/* Ends the read: frees the scratch arena (the raw samples); the caller
 * accounts its per-step output against max_samples. Returns rc. */
rw_rc rw_sel_iter_end(rw_sel_iter *it, rw_rc rc);

rw_rc rw_eval_vector_selector(rw_eval_ctx *ctx, const rw_node *n, int want_ts, rw_eval_value *out);
/* Streams vector selector n into sk (see rw_eval_stream). */
rw_rc rw_eval_vector_selector_to(rw_eval_ctx *ctx, const rw_node *n, rw_series_sink *sk);
rw_rc rw_eval_matrix_selector(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out);
rw_rc rw_eval_subquery(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out);
/* Window of step i of matrix m over series s: samples [*lo, *hi). Also gives
 * the window's bounds (start exclusive, end inclusive). */
void rw_matrix_window(const rw_eval_ctx *ctx, const rw_eval_value *m, const rw_eval_mseries *s,
                      size_t i, size_t *lo, size_t *hi, int64_t *wstart, int64_t *wend);

/* ---- eval_binop.c / eval_agg.c ---- */
rw_rc rw_eval_binary(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out);
rw_rc rw_eval_aggregate(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out);

/* Merges series with identical label sets when they do not overlap in time
 * (label_replace/label_join and the final result), else RW_EXEC. */
rw_rc rw_eval_merge_same_labels(rw_eval_ctx *ctx, rw_eval_value *v);

/* absent() / absent_over_time(): out is empty when every step has a value
 * (present[i]), else one series with the labels of arg's equality matchers
 * and 1 at the steps without. */
rw_rc rw_absent_vector(rw_eval_ctx *ctx, const rw_node *arg, const uint8_t *present,
                       int drop_name, rw_eval_value *out);

/* Natural ("human") string order as used by sort_by_label. */
int rw_natural_cmp(const char *a, const char *b);

#endif
