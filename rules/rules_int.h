/* rules_int.h - internals of the rules layer, shared by its files and never
 * included from other layers (they use rules/rules.h).
 *
 * Two kinds of objects:
 *  - definitions (rw_rule_file > rw_group_def > rw_rule_def): what a rule
 *    file says, validated, expressions prepared and templates parsed. Built
 *    by load.c, immutable afterwards, freed with the group that owns them.
 *  - runtime (rw_group > rule_state > rw_alert): evaluation state. One
 *    thread evaluates a group at a time (its scheduler thread, or the unit
 *    test runner); readers (the HTTP API, reload) take group->mu, which the
 *    evaluating thread also holds while it changes what readers see. */
#ifndef RW_RULES_INT_H
#define RW_RULES_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "query/promql.h"
#include "rules/notify.h"
#include "rules/rules.h"
#include "rules/template.h"
#include "store/store.h"

/* "unset" for every time field (0 is a real time in unit tests) */
#define RW_TIME_UNSET INT64_MIN

/* ---- diagnostics: every error of a file, as promtool lists them ---- */

typedef struct rules_diag {
    char **msg;
    int *is_warning;
    size_t n;
    size_t nerrors;
} rules_diag;

void rules_diag_add(rules_diag *d, int warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rules_diag_free(rules_diag *d);

/* ---- YAML documents (libyaml's node tree with positions) ---- */

typedef struct ydoc {
    yaml_document_t doc;
    int loaded;
    size_t visits; /* nodes looked at; capped so alias bombs end */
} ydoc;

/* Loads the first document of buf; *more is set when another follows (which
 * is ignored, as Prometheus does). An empty input gives a document without a
 * root. RW_BADREQ with "yaml: line N: ..." on a syntax error. */
rw_rc ydoc_load(ydoc *d, const char *buf, size_t len, int *more, rw_err *err);
void ydoc_free(ydoc *d);
yaml_node_t *ydoc_root(ydoc *d);
yaml_node_t *ydoc_get(ydoc *d, int idx);
int ydoc_line(const yaml_node_t *n);
int ydoc_col(const yaml_node_t *n);
/* A plain null (empty, ~, null): what Go decodes as the zero value. */
int ydoc_is_null(const yaml_node_t *n);
/* The scalar's text, or NULL when n is not a scalar. */
const char *ydoc_scalar(const yaml_node_t *n);
const char *ydoc_kind(const yaml_node_t *n); /* "!!map", "!!seq", "!!str" ... for messages */
/* Counts one visit; 0 once the budget is spent. */
int ydoc_visit(ydoc *d);

/* Typed readers onto C fields, errors to diag as "path:line:col: msg". */
typedef struct ywalk {
    const char *path;
    ydoc *d;
    rules_diag *diag;
    int errors;
} ywalk;

typedef void (*yw_field_fn)(ywalk *c, void *obj, const char *key, yaml_node_t *val);
void yw_error(ywalk *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Walks a mapping: duplicate keys and keys not in known (NULL-terminated)
 * are errors; fn gets each known key. `what` names the object in messages. */
void yw_map(ywalk *c, yaml_node_t *m, const char *what, const char *const *known,
            yw_field_fn fn, void *obj);
char *yw_string(ywalk *c, yaml_node_t *v, const char *field); /* malloc'd; NULL on error */
void yw_duration(ywalk *c, yaml_node_t *v, const char *field, int64_t *ms, int *set);
void yw_int(ywalk *c, yaml_node_t *v, const char *field, int64_t *out);
/* map of string -> string, sorted by name; names and values malloc'd */
void yw_labels(ywalk *c, yaml_node_t *v, const char *field, rw_label **l, size_t *n);
void yw_float(ywalk *c, yaml_node_t *v, const char *field, double *out);
void yw_bool(ywalk *c, yaml_node_t *v, const char *field, int *out);
void yw_strings(ywalk *c, yaml_node_t *v, const char *field, char ***out, size_t *n);
/* Prometheus' model.ParseDuration ("0", "1h30m", "5m") */
int rules_parse_duration(const char *s, int64_t *ms, rw_err *err);

/* ---- definitions ---- */

typedef enum { RULE_RECORD, RULE_ALERT } rule_kind;

typedef struct rw_rule_def {
    rule_kind kind;
    char *name;
    char *expr_text;          /* as written */
    rw_promql_expr *expr;     /* prepared once */
    int64_t for_ms, keep_firing_for_ms;
    rw_label *labels;         /* group labels overlaid by the rule's, sorted; owned */
    size_t nlabels;
    rw_tmpl **label_tmpl;     /* alerting rules: per label, NULL when plain text */
    rw_label *annotations;    /* sorted; owned */
    size_t nannotations;
    rw_tmpl **ann_tmpl;       /* per annotation, NULL when plain text */
    int line;
} rw_rule_def;

typedef struct rw_group_def {
    char *file;
    char *name;
    int64_t interval_ms;      /* 0: the configured evaluation_interval */
    int has_query_offset;
    int64_t query_offset_ms;
    int64_t limit;            /* 0: none */
    rw_label *labels;         /* the group's own labels, sorted; owned */
    size_t nlabels;
    rw_rule_def *rules;
    size_t nrules;
    int line;
} rw_group_def;

typedef struct rw_rule_file {
    char *path;
    rw_group_def *groups;
    size_t ngroups;
} rw_rule_file;

/* Parses and validates one rule file (contents in data). Every problem is
 * added to diag, prefixed with the path; returns RW_OK when there were no
 * errors (warnings allowed) and then *out holds the file. */
rw_rc rules_file_parse(const char *path, const char *data, size_t len, rules_diag *diag,
                       rw_rule_file **out);
/* Reads path, then rules_file_parse. */
rw_rc rules_file_load(const char *path, rules_diag *diag, rw_rule_file **out);
void rules_file_free(rw_rule_file *f);
void rules_group_def_free(rw_group_def *g);
void rules_rule_def_free(rw_rule_def *r);
/* Same name, file, interval, limit, query offset and rules (kind, name,
 * canonical expression, for, keep_firing_for, labels, annotations). */
int rules_group_def_equal(const rw_group_def *a, const rw_group_def *b);
/* Identity of a rule across reloads: kind, name and labels. */
int rules_rule_same_identity(const rw_rule_def *a, const rw_rule_def *b);
/* Go's filepath.Clean, in place */
void rules_clean_path(char *p);
/* Expands rule_files globs (relative to base_dir) into sorted unique paths. */
rw_rc rules_glob(const char *const *patterns, size_t n, const char *base_dir, char ***out,
                 size_t *nout, rw_err *err);

/* ---- runtime ---- */

typedef enum { ALERT_INACTIVE = 1, ALERT_PENDING = 2, ALERT_FIRING = 3 } alert_state;
const char *rules_alert_state_str(int s);

typedef struct rw_alert {
    uint64_t hash;
    rw_label *labels;         /* sorted; names and values in one malloc'd block with the array */
    size_t nlabels;
    rw_label *annotations;    /* in their own block */
    size_t nannotations;
    int state;
    double value;
    int64_t active_at, fired_at, resolved_at, last_sent_at, valid_until, keep_firing_since;
} rw_alert;

rw_alert *rules_alert_new(const rw_label *l, size_t n, const rw_label *ann, size_t nann);
void rules_alert_free(rw_alert *a);
/* Replaces a's annotations with a copy of ann. */
int rules_alert_set_annotations(rw_alert *a, const rw_label *ann, size_t nann);

/* A set of label sets with their hashes, in one arena: the series a rule
 * wrote in its last evaluation. */
typedef struct series_set {
    rw_arena *arena;
    struct sset_ent *tab;
    size_t cap, n;
} series_set;

typedef struct sset_ent {
    uint64_t hash;
    rw_label *labels;
    size_t nlabels;
} sset_ent;

int sset_init(series_set *s);
void sset_free(series_set *s);
/* 1 if the set has it, else 0 */
int sset_has(const series_set *s, const rw_label *l, size_t n, uint64_t h);
/* Adds a copy; 0 on success, -1 out of memory. Duplicates are not added twice. */
int sset_add(series_set *s, const rw_label *l, size_t n, uint64_t h);

typedef enum { HEALTH_UNKNOWN, HEALTH_OK, HEALTH_ERR } rule_health;

typedef struct rule_state {
    const rw_rule_def *def;
    /* readers take the group's mu */
    rule_health health;
    char *last_error;         /* malloc'd or NULL */
    double eval_seconds;
    int64_t last_eval_ms;     /* wall clock when the rule last ran; RW_TIME_UNSET */
    series_set prev;          /* series written by the last successful evaluation */
    /* alerting */
    rw_alert **alerts;
    size_t nalerts, capalerts;
    int restored;             /* ALERTS / ALERTS_FOR_STATE are written once restored */
} rule_state;

/* What evaluation needs from its surroundings: the manager's or the unit
 * test runner's. The environment part (external labels, URL, default query
 * offset) may be swapped on reload; groups read it under env_mu. */
typedef struct rules_env {
    _Atomic int refs;
    rw_label *ext;            /* sorted; owned with the strings */
    size_t next;
    char *external_url;
    int64_t default_query_offset_ms;
} rules_env;

rules_env *rules_env_new(const rw_label *ext, size_t next, const char *url, int64_t offset);
void rules_env_ref(rules_env *e);
void rules_env_unref(rules_env *e);

typedef struct rules_ctx {
    rw_engine *engine;
    rw_appender appender;
    rw_querier querier;
    int64_t timeout_ms;
    size_t max_samples;
    /* may change on reload while groups run: atomics */
    _Atomic int64_t outage_tolerance_ms, for_grace_period_ms, resend_delay_ms;
    rw_rules_notify_fn notify;
    void *notify_ctx;
    /* Rules append visibly and make their results durable after the group
     * evaluation: through request_sync (the manager's syncer thread, so a
     * group's time is its evaluation, as in Prometheus, whose rule output
     * reaches its WAL the same way) or, when NULL, inline. */
    void (*request_sync)(void *ctx);
    void *sync_ctx;
    pthread_mutex_t env_mu;
    rules_env *env;
    int quiet;                /* no warning logs (unit tests of rule files) */
} rules_ctx;

rules_env *rules_ctx_env(rules_ctx *c); /* a reference; unref when done */

typedef struct rw_group rw_group;

struct rw_group {
    rw_group_def *def;        /* owned */
    char *key;                /* "file;name", Prometheus' rule_group label */
    int64_t interval_ms;      /* effective */
    rules_ctx *ctx;
    rule_state *rules;
    size_t nrules;

    pthread_mutex_t mu;       /* guards what readers see (below and in rules[]) */
    double last_duration_s;
    int64_t last_eval_wall_ms; /* RW_TIME_UNSET before the first */
    int64_t last_eval_slot_ms;
    uint64_t last_samples;
    /* series of rules that no longer exist (reload), marked stale at the
       group's next evaluation; owned */
    series_set stale;
    int has_stale;

    /* counters survive a rebuild of the group with the same key */
    _Atomic uint64_t iterations, missed, evaluations, failures;

    /* scheduling (manager.c) */
    pthread_t thread;
    int thread_started;
    _Atomic int finished;     /* the thread has returned (retiring groups) */
    pthread_mutex_t run_mu;
    pthread_cond_t run_cond;
    int stop;                 /* guarded by run_mu */
    int should_restore;
    int mark_stale_on_stop;   /* removed on reload: write stale markers */
    void *manager;            /* the owning rw_rules, NULL in the test runner */
};

/* Builds the runtime of a definition (taken over) for evaluation with ctx. */
rw_group *rules_group_new(rw_group_def *def, int64_t default_interval_ms, rules_ctx *ctx);
void rules_group_free(rw_group *g);
/* The slot this group evaluates at before or at now_ms (Prometheus spreads
 * groups within their interval by a hash of name and file). */
int64_t rules_group_slot(const rw_group *g, int64_t now_ms);
/* Evaluates every rule in order at slot ts (query time ts - query offset). */
void rules_group_eval(rw_group *g, int64_t ts);
int64_t rules_group_query_offset(rw_group *g, const rules_env *env);
/* Copies alert state and previous-series from old (same key) for rules that
 * still exist; series of rules that are gone are marked stale later. */
void rules_group_copy_state(rw_group *g, rw_group *old);
/* Restores `for` state from ALERTS_FOR_STATE (Prometheus RestoreForState). */
void rules_group_restore(rw_group *g, int64_t now_ms);
/* Writes stale markers for every series the group wrote last (group removed). */
void rules_group_mark_all_stale(rw_group *g, int64_t ts);

/* alert.c: evaluates an alerting rule's expression result into its state
 * machine; appends the ALERTS / ALERTS_FOR_STATE samples to out (arena a). */
typedef struct out_vec {
    rw_append_series *s;
    rw_sample *smp;
    size_t n, cap;
} out_vec;

int out_vec_push(out_vec *o, rw_arena *a, rw_label *l, size_t n, int64_t t, double v);

rw_rc rules_alert_eval(rw_group *g, rule_state *rs, const rules_env *env, const rw_result *res,
                       int64_t ts, int64_t offset_ms, rw_arena *a, out_vec *out, rw_err *err);
/* Sends what needs sending after a successful evaluation at ts. */
void rules_alert_send(rw_group *g, rule_state *rs, const rules_env *env, int64_t ts,
                      rw_arena *a);

/* ---- series_desc.c: test-file series notation ---- */

enum { RULES_SEQ_NONE, RULES_SEQ_FLOAT, RULES_SEQ_STALE };
typedef struct rules_seq_val {
    int kind;
    double v;
} rules_seq_val;
typedef struct rules_seq {
    rules_seq_val *v;
    size_t n, cap;
} rules_seq;

/* `name{a="b"}` / `{a="b"}` (= only) into a sorted label set without empty
 * values (names and values malloc'd); *end after the metric. */
rw_rc rules_parse_metric(const char *s, const char **end, rw_label **out, size_t *n, rw_err *err);
/* "1+1x3 _ stale ..." expanded, at most max values; free out->v. Error
 * columns count from col0 (where s starts in the line it came from). */
rw_rc rules_parse_values(const char *s, int col0, size_t max, rules_seq *out, rw_err *err);
void rules_free_labels(rw_label *l, size_t n);

/* manager.c: the group list for readers (api.c); unlock when done */
void rules_manager_read_lock(rw_rules *r, rw_group ***groups, size_t *n);
void rules_manager_read_unlock(rw_rules *r);

/* ---- helpers ---- */

/* Label builder on an arena: start from a set, set/delete, get a sorted set. */
typedef struct lbuild {
    rw_label *l;
    size_t n, cap;
    rw_arena *a;
} lbuild;

int lb_init(lbuild *b, rw_arena *a, const rw_label *from, size_t n, size_t extra);
/* value "" deletes the label, as Prometheus' labels.Builder */
int lb_set(lbuild *b, const char *name, const char *value);
void lb_del(lbuild *b, const char *name);
void lb_sort(lbuild *b);

/* A rule's result (vector, or scalar as one sample without labels): its
 * length and sample i. */
size_t rules_result_len(const rw_result *res);
void rules_result_sample(const rw_result *res, size_t i, const rw_label **l, size_t *n, double *v);

/* Go strconv.FormatFloat(v, 'e', -1, 64): "1.5e+00" */
void rules_fmt_float_e(double v, char *out, size_t cap);
/* Go encoding/json float64: 0.000086733, 60, 1e-7, 1e+21 */
void rules_fmt_float_json(double v, char *out, size_t cap);
/* Go url.QueryEscape */
void rules_query_escape(rw_buf *b, const char *s);
/* Go time.Time JSON: RFC 3339 with nanoseconds, trailing zeros trimmed, UTC */
void rules_fmt_time(int64_t ms, char *out, size_t cap);

#endif
