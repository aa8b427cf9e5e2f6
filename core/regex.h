/* regex.h - fully anchored regular expressions with capture groups, for
 * configuration (relabel rules, inventory selectors) and PromQL's
 * label_replace. RE2 syntax as Prometheus writes it, compiled with PCRE2
 * (UTF, JIT where available) as ^(?s:src)$, with match and depth limits so a
 * pathological pattern fails with an error instead of running for minutes;
 * a limit hit is reported as an error, never as "no match".
 *
 * A compiled rw_regex is immutable and may be shared by threads; matching
 * needs a match-data object (rw_regex_md) that belongs to one thread. */
#ifndef RW_REGEX_H
#define RW_REGEX_H

#include <stddef.h>
#include "err.h"

typedef struct rw_regex rw_regex;
typedef struct rw_regex_md rw_regex_md;

/* NULL with err set (RW_BADREQ, the position and PCRE2's reason) when the
 * pattern is invalid or is not valid UTF-8. */
rw_regex *rw_regex_compile(const char *src, rw_err *err);
void rw_regex_free(rw_regex *re);
const char *rw_regex_source(const rw_regex *re);
/* Number of capture groups (not counting group 0). */
int rw_regex_ngroups(const rw_regex *re);
/* Number of a named group, or -1. */
int rw_regex_group_number(const rw_regex *re, const char *name, size_t len);

/* Match data for up to ngroups groups; one per thread (or per request). */
rw_regex_md *rw_regex_md_new(int ngroups);
void rw_regex_md_free(rw_regex_md *md);

/* Matches the whole of s[0..len). Returns 1 on a match, 0 on none, -1 when
 * matching failed (match limit, bad UTF-8 subject) with err set. After a
 * match, rw_regex_group() gives group i's span. */
int rw_regex_match(const rw_regex *re, rw_regex_md *md, const char *s, size_t len, rw_err *err);
/* Span of group i of the last match: 1 with the start and end offsets, or 0 when
 * the group did not take part. */
int rw_regex_group(const rw_regex_md *md, int i, size_t *start, size_t *end);

#endif
