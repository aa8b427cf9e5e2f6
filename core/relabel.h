/* relabel.h - Prometheus relabel_config: the rules behind rwgate's ingest
 * write_relabel_configs (global and per tenant) and the rules layer's
 * alert_relabel_configs.
 *
 * Semantics and defaults are Prometheus' (model/relabel): actions replace,
 * keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep,
 * lowercase, uppercase; source_labels joined with separator (default ";"),
 * regex fully anchored (default "(.*)", RE2 syntax, core/regex.h),
 * target_label, replacement (default "$1", Go Regexp.Expand rules), modulus
 * (hashmod: MD5 of the joined value, its last 8 bytes big-endian, mod the
 * modulus). A label set to the empty string is removed. Label names follow
 * Prometheus 3's default (UTF-8) validation: a name is any non-empty valid
 * UTF-8 string, as on rwgate's write path.
 *
 * A rule is one element of rw_relabel_config_table; a list of rules is a
 * RW_CFG_LIST row with that table as its sub-table. The table's check
 * validates a rule the way Prometheus' Config.Validate does for its action
 * (the loader prefixes the rule's path, "ingest.write_relabel_configs[2]:").
 *
 * Applying rules needs a rw_relabel_state (regex match data and scratch
 * buffers), owned by one thread and reused for every series of a request;
 * new labels and strings go into the caller's arena. */
#ifndef RW_RELABEL_H
#define RW_RELABEL_H

#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "cfg.h"
#include "err.h"
#include "labels.h"

typedef enum {
    RW_RELABEL_REPLACE,
    RW_RELABEL_KEEP,
    RW_RELABEL_DROP,
    RW_RELABEL_KEEPEQUAL,
    RW_RELABEL_DROPEQUAL,
    RW_RELABEL_HASHMOD,
    RW_RELABEL_LABELMAP,
    RW_RELABEL_LABELDROP,
    RW_RELABEL_LABELKEEP,
    RW_RELABEL_LOWERCASE,
    RW_RELABEL_UPPERCASE,
} rw_relabel_action;

/* Action names in enum order, NULL-terminated (the cfg ENUM's names). */
extern const char *const rw_relabel_action_names[];

typedef struct rw_relabel_config {
    /* as loaded (rw_relabel_config_table) */
    rw_cfg_strings source_labels;
    char *separator;          /* default ";" */
    rw_cfg_regex regex;       /* default "(.*)" */
    int64_t modulus;          /* hashmod */
    char *target_label;
    char *replacement;        /* default "$1" */
    int action;               /* rw_relabel_action, default replace */
    /* derived by the table's check (rw_relabel_config_validate) */
    unsigned flags;
    size_t sep_len, target_len, repl_len;
    uint8_t first[32];        /* bytes a regex match can start with (label rules) */
} rw_relabel_config;

/* The element table: one rule. */
extern const rw_cfg_table rw_relabel_config_table;

/* The table's check: validates one rule as Prometheus does for its action
 * and derives the fields after `action`. For rules built in code (tests),
 * after setting the loaded fields with the regex compiled. */
rw_rc rw_relabel_config_validate(rw_relabel_config *c, rw_err *err);

/* ---- applying ---- */

typedef struct rw_relabel_state rw_relabel_state;

rw_relabel_state *rw_relabel_state_new(void);
void rw_relabel_state_free(rw_relabel_state *st);

typedef enum {
    RW_RELABEL_KEPT = 0,  /* out holds the result (out->v == in when nothing changed) */
    RW_RELABEL_DROPPED,   /* a keep/drop/keepequal/dropequal rule dropped it */
    RW_RELABEL_INVALID,   /* the result is not a valid series (an empty label name,
                             no __name__ with RW_RELABEL_REQUIRE_NAME); out holds
                             it and err says why */
    RW_RELABEL_FAILED,    /* a rule could not be applied (regex match limit, no
                             memory); err says which */
} rw_relabel_result;

enum { RW_RELABEL_REQUIRE_NAME = 1 };

/* Applies rules[0..n) in order to the label set in[0..nin) (sorted by name,
 * no empty values). The result is sorted; new arrays and strings come from
 * a. err may be NULL (no message). rw_relabel_state_rule() then tells which
 * rule dropped or failed the set. */
rw_relabel_result rw_relabel_apply(rw_relabel_state *st, const rw_relabel_config *rules, size_t n,
                                   unsigned flags, rw_arena *a, const rw_label *in, size_t nin,
                                   rw_labels *out, rw_err *err);

/* The same with label lengths: in_lens (2 per label: name, value; may be
 * NULL) spares the rules strlen, and *out_lens (when out_lens is not NULL)
 * gets the lengths of the result (in_lens itself when nothing changed, a
 * new array in a otherwise), so the caller's hashing needs none either. */
rw_relabel_result rw_relabel_apply_lens(rw_relabel_state *st, const rw_relabel_config *rules,
                                        size_t n, unsigned flags, rw_arena *a, const rw_label *in,
                                        const uint32_t *in_lens, size_t nin, rw_labels *out,
                                        const uint32_t **out_lens, rw_err *err);

/* Index of the rule that decided the last DROPPED / FAILED result, else -1. */
int rw_relabel_state_rule(const rw_relabel_state *st);

/* Starts a request: from now until the next begin, rule outcomes are
 * remembered per (rule, input) so the series of one request that repeat a
 * label name or value (most do) skip the regex. Every string handed to
 * rw_relabel_apply until the next begin must stay valid until then (one
 * request arena). Without a begin, nothing is remembered. */
void rw_relabel_state_begin(rw_relabel_state *st);

#endif
