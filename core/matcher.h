/* matcher.h - label matchers (=, !=, =~, !~) shared by the store's series
 * selection, remote-read and PromQL. Regexes are fully anchored and compiled
 * once with PCRE2 (JIT where available); common shapes (".*", ".+", plain
 * literals, literal alternations) are recognised and matched without PCRE2.
 * A compiled matcher may be used by one thread at a time (it owns its PCRE2
 * match data). An absent label matches as the empty string. */
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
int rw_matcher_matches(const rw_matcher *m, const char *value);
int rw_matcher_matches_empty(const rw_matcher *m);
const char *rw_match_op_str(rw_match_op op);

#endif
