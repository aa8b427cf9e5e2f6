/* matcher.h - label matchers (=, !=, =~, !~) shared by the store's series
 * selection, remote-read and PromQL. Regexes are fully anchored and compiled
 * once through core/regex.h (PCRE2, JIT where available, with match and
 * depth limits); common shapes (".*", ".+", plain literals, literal
 * alternations) are recognised and matched without PCRE2. A compiled
 * matcher may be used by one thread at a time (it owns its PCRE2 match
 * data). An absent label matches as the empty string.
 *
 * A regex that hits its match limit has neither matched nor failed to
 * match: rw_matcher_match reports it as an error, and callers that answer
 * queries must turn it into an error, never into "no match". */
#ifndef RW_MATCHER_H
#define RW_MATCHER_H

#include <stddef.h>
#include "err.h"

typedef enum { RW_MATCH_EQ, RW_MATCH_NEQ, RW_MATCH_RE, RW_MATCH_NRE } rw_match_op;

typedef struct rw_matcher {
    rw_match_op op;
    char *name;   /* owned */
    char *value;  /* owned */
    /* compiled form, private to matcher.c */
    int kind;
    void *re, *md;
    char **alts;
    size_t nalts;
} rw_matcher;

/* Compiles; RW_BADREQ with a message when the regex is invalid. */
rw_rc rw_matcher_init(rw_matcher *m, rw_match_op op, const char *name, const char *value,
                      rw_err *err);
void rw_matcher_free(rw_matcher *m);
/* 1 when value (NULL = absent = "") satisfies the matcher, 0 when not, -1
 * when the regex could not decide (match limit, invalid UTF-8 subject) with
 * err set (RW_LIMIT or RW_BADREQ). */
int rw_matcher_match(const rw_matcher *m, const char *value, rw_err *err);
/* rw_matcher_match as a boolean, an undecidable value counting as "does not
 * satisfy": only for callers that cannot report an error (filters over
 * values the caller chose); query paths use rw_matcher_match. */
int rw_matcher_matches(const rw_matcher *m, const char *value);
/* Whether matching runs a real regex (not one of the shapes matched by a
 * comparison): such a matcher may be slow, so the store runs it outside its
 * locks and checks the query deadline between values. */
int rw_matcher_is_regex(const rw_matcher *m);
int rw_matcher_matches_empty(const rw_matcher *m);
const char *rw_match_op_str(rw_match_op op);

#endif
