/* rules.h - central evaluation of Prometheus recording and alerting rules.
 *
 * rw_rules loads rule files (the Prometheus format), evaluates every group
 * at its interval through the PromQL engine at `now - query_offset`, appends
 * recording results and the ALERTS / ALERTS_FOR_STATE series through an
 * appender (so they are durable, queryable and federated like remote-written
 * data), runs Prometheus' alert state machine and hands alerts that need
 * sending to a notifier callback. It serves /api/v1/rules and
 * /api/v1/alerts, and reloads without losing schedules or alert state.
 *
 * `rwgate check rules` and `rwgate test rules` (promtool's unit-test format,
 * evaluated in-process against a temporary store) live here too.
 *
 * Threading: one scheduler thread per group; the handle's functions may be
 * called from any thread. */
#ifndef RW_RULES_H
#define RW_RULES_H

#include <stddef.h>
#include <stdint.h>
#include "core/cfg.h"
#include "core/err.h"
#include "core/http.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "query/promql.h"
#include "rules/notify.h"
#include "store/store.h"

typedef struct rw_rules rw_rules;

/* ---- configuration (config.c) ----
 * The rules' keys of `global:` (a section row shared with the other layers'
 * global keys) and the top-level `rule_files` list. The root table places
 * them with RW_RULES_CONFIG_ROWS(offsetof(rw_config, rules)). */
typedef struct rw_rules_global_config {
    int64_t evaluation_interval_ms; /* global.evaluation_interval, default 1m */
    int64_t rule_query_offset_ms;   /* global.rule_query_offset, default 1m */
    char *external_url;             /* global.external_url, default "" */
} rw_rules_global_config;

/* `rules:` - what Prometheus has as --rules.alert.* flags */
typedef struct rw_rules_section_config {
    int64_t outage_tolerance_ms;    /* rules.for_outage_tolerance, default 1h */
    int64_t for_grace_period_ms;    /* rules.for_grace_period, default 10m */
    int64_t resend_delay_ms;        /* rules.resend_delay, default 1m */
    int64_t max_concurrent_groups;  /* rules.max_concurrent_groups, 0 = CPUs */
} rw_rules_section_config;

typedef struct rw_rules_config {
    rw_cfg_strings rule_files;      /* globs, relative to the config file */
    rw_rules_global_config global;
    rw_rules_section_config rules;
} rw_rules_config;

extern const rw_cfg_table rw_rules_global_table;
extern const rw_cfg_table rw_rules_section_table;

#define RW_RULES_CONFIG_ROWS(off)                                                           \
    {"global", RW_CFG_SECTION, (off) + offsetof(rw_rules_config, global), NULL, 0, 0,       \
     RW_CFG_RELOAD, "", &rw_rules_global_table, NULL},                                      \
    {"rule_files", RW_CFG_STRINGS, (off) + offsetof(rw_rules_config, rule_files), NULL, 0, 0, \
     RW_CFG_RELOAD, "rule files to load (globs, relative to the config file)", NULL, NULL}, \
    {"rules", RW_CFG_SECTION, (off) + offsetof(rw_rules_config, rules), NULL, 0, 0, 0, "",  \
     &rw_rules_section_table, NULL}

/* Receives the alerts of one rule evaluation that need sending (new firing,
 * resends every resend delay, resolved). Must not block: the notifier
 * enqueues. The messages and their strings live only for the call. */
typedef void (*rw_rules_notify_fn)(void *ctx, const rw_alert_msg *alerts, size_t n);

#define RW_RULES_DEFAULT_INTERVAL_MS 60000
#define RW_RULES_DEFAULT_QUERY_OFFSET_MS 60000

typedef struct rw_rules_opts {
    /* what to load (may change on reconfigure) */
    const char *const *rule_files;   /* globs */
    size_t nrule_files;
    const char *base_dir;            /* relative globs are resolved here (the
                                        config file's directory); NULL = cwd */
    int64_t evaluation_interval_ms;  /* groups without an interval; 0 = 1m */
    int64_t query_offset_ms;         /* groups without query_offset */
    const rw_label *external_labels; /* for templates; copied */
    size_t nexternal;
    const char *external_url;        /* $externalURL and generator URLs; copied */

    /* fixed at open */
    rw_engine *engine;               /* required */
    rw_appender appender;            /* where results go; required */
    rw_querier querier;              /* for restoring `for` state; required */
    int64_t timeout_ms;              /* per rule evaluation; 0 = the engine's */
    size_t max_samples;              /* per rule evaluation; 0 = the engine's */
    int64_t outage_tolerance_ms;     /* 0 = 1h */
    int64_t for_grace_period_ms;     /* 0 = 10m */
    int64_t resend_delay_ms;         /* 0 = 1m */
    int max_concurrent_groups;       /* groups evaluating at once; 0 = 1 */
    rw_rules_notify_fn notify;       /* may be NULL */
    void *notify_ctx;
    rw_metrics *metrics;             /* may be NULL */
} rw_rules_opts;

/* Loads the rule files and starts evaluating. NULL with err (every problem
 * found, one per line) when a file is invalid. */
rw_rules *rw_rules_open(const rw_rules_opts *opts, rw_err *err);
/* Loads the rule files named by opts again (and the defaults, external labels,
 * URL, outage tolerance, grace period and resend delay). An unchanged group keeps its schedule and state; a changed group
 * keeps the state of alerts that still exist; a removed group's series are
 * marked stale. On error nothing changes. */
rw_rc rw_rules_reconfigure(rw_rules *r, const rw_rules_opts *opts, rw_err *err);
/* Stops every group (an evaluation in progress finishes first), frees. */
void rw_rules_close(rw_rules *r);

/* Number of groups and rules loaded. */
void rw_rules_counts(rw_rules *r, size_t *ngroups, size_t *nrules);

/* Adds GET|POST /api/v1/rules and /api/v1/alerts (read permission). */
rw_rc rw_rules_routes(rw_rules *r, rw_routes *routes, rw_err *err);

/* The rule files a configuration names (globs relative to base_dir, NULL =
 * cwd), loaded as the server would: for `rwgate check config`. Writes one
 * line per file ("  SUCCESS: N rules found" or every error) to report;
 * RW_BADREQ when a file is invalid. */
rw_rc rw_rules_check_config(const rw_rules_config *c, const char *base_dir, rw_buf *report);

/* `rwgate check rules FILE...` (no file: standard input). Prints promtool's
 * report and returns its exit code: 0 valid (duplicate rules are a warning),
 * 1 invalid. */
int rw_rules_check_main(int nfiles, char **files);
/* `rwgate test rules [--run REGEX] FILE...`: promtool's rule unit tests;
 * 0 when every test passes, 1 otherwise (with a diff on standard error). */
int rw_rules_test_main(int argc, char **argv);

#endif
