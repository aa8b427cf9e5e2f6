/* promql_script.h - the model of a Prometheus PromQL test script (the
 * promqltest `.test` format: load / clear / eval ... / expect ...) and the
 * parser that reads one from a file. The runner,
 * tests/unit/test_promql_conformance.c, executes the commands against
 * rw_engine and compares results; this module knows nothing of the engine.
 *
 * Ownership: pt_parse_file() returns an array of commands that owns every
 * string and array reachable from it (all malloc'd); pt_free_cmds() frees it
 * all. Label sets are sorted by name, empty values dropped, as Prometheus'
 * labels.Labels. */
#ifndef RW_TEST_PROMQL_SCRIPT_H
#define RW_TEST_PROMQL_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/labels.h"

/* pt_val.kind: one point of a series in the expanding notation */
#define PT_VAL_NONE 0 /* '_': no sample */
#define PT_VAL_FLOAT 1
#define PT_VAL_STALE 2
#define PT_VAL_HIST 3 /* a {{...}} native histogram: parsed, not modelled */

typedef struct pt_val {
    int kind;
    double v;
} pt_val;

typedef struct pt_lset {
    rw_label *l; /* names and values malloc'd */
    size_t n;
} pt_lset;

/* One series line: `name{a="b"} 1+2x3 _ stale`, expanded to one value per
 * step (load interval or eval step). */
typedef struct pt_series {
    pt_lset labels;
    pt_val *vals;
    size_t nvals;
} pt_series;

/* `expect warn msg: ...` / `expect info regex: ...`; an empty regex matches
 * anything. */
typedef struct pt_expect {
    int is_regex;
    char *text;
} pt_expect;

enum { PT_EX_ORDERED, PT_EX_FAIL, PT_EX_WARN, PT_EX_NO_WARN, PT_EX_INFO, PT_EX_NO_INFO, PT_EX__N };

typedef struct pt_eval {
    int line;
    char *expr;
    int is_range;
    int64_t start, end, step, at; /* milliseconds */
    int fail, warn, ordered, info; /* eval_fail, eval_warn, ... */
    char *fail_msg, *fail_re;      /* expected_fail_message / _regexp */
    pt_expect *ex[PT_EX__N];       /* expect lines, by kind */
    size_t nex[PT_EX__N];
    int expect_scalar;
    double scalar;
    int has_string;
    char *string;
    pt_series *expected;
    size_t nexpected;
    /* expect range vector: an instant eval of a range selector; such evals
     * and `expect string` ones are not re-run as range queries.
     * uses_hist: the expression or the expected result has {{...}}. */
    int range_vector, exclude_from_range, uses_hist;
} pt_eval;

typedef struct pt_load {
    int64_t interval; /* milliseconds between a series' values */
    int with_nhcb;    /* load_with_nhcb: classic histograms are also native */
    pt_series *series;
    size_t nseries;
} pt_load;

enum { PT_CMD_LOAD, PT_CMD_CLEAR, PT_CMD_EVAL };

typedef struct pt_cmd {
    int kind;
    int line; /* 1-based line in the file */
    pt_load load;
    pt_eval eval;
} pt_cmd;

static inline int pt_is_ordered(const pt_eval *e) { return e->ordered || e->nex[PT_EX_ORDERED]; }
static inline int pt_is_fail(const pt_eval *e) { return e->fail || e->nex[PT_EX_FAIL]; }

/* Parses the script at path into *out / *nout (always set, partly filled
 * on error); returns 0, or -1 when the file cannot be read or a line is
 * malformed (most say "path:line: why" on stderr). The caller frees *out
 * with pt_free_cmds() in both cases. */
int pt_parse_file(const char *path, pt_cmd **out, size_t *nout);
void pt_free_cmds(pt_cmd *c, size_t n);

/* Helpers the runner shares. The x-functions abort on out-of-memory. */
char *pt_xstrdup(const char *s);
void *pt_xrealloc(void *p, size_t n);
char *pt_trim(char *s); /* strips blanks and \r at both ends, in place */
int pt_is_ident_start(char c); /* [a-zA-Z_:] as a PromQL metric name */
int pt_is_ident(char c);       /* [a-zA-Z0-9_:] */
/* Sets name=value in a label set (replacing an earlier value; copies both),
 * and frees a set's strings and array. */
void pt_lset_add(pt_lset *ls, const char *name, const char *value);
void pt_lset_free(pt_lset *ls);

#endif
