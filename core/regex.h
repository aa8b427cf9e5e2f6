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
#include <stdint.h>
#include "buf.h"
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
/* Groups a match data object has room for (rw_regex_md_new's ngroups): a
 * caller sharing one md between regexes recreates it when one has more. */
int rw_regex_md_groups(const rw_regex_md *md);
/* 1 when the regex matches every string (".*", "(.*)"). */
int rw_regex_is_match_all(const rw_regex *re);
/* 1 when matching s costs no PCRE2 call (a shape matched by comparison, or
 * a subject the literal-prefix prefilter rejects): callers that memoize
 * results can skip their cache for it. */
int rw_regex_cheap(const rw_regex *re, const char *s, size_t len);
/* Whether re matches s when that is known without PCRE2 (1 or 0), else -1.
 * No groups are recorded: for yes/no questions on hot paths. */
int rw_regex_quick(const rw_regex *re, const char *s, size_t len);
/* The bytes a non-empty match can start with, as a 256-bit set (all of
 * them when unknown): a hot loop over many short strings rejects most with
 * one bit test. */
void rw_regex_first_bytes(const rw_regex *re, uint8_t set[32]);

/* Appends tmpl with $1, ${1}, $name, ${name} replaced by the groups of the
 * last match of re against subj, exactly as Go's Regexp.Expand (what
 * Prometheus' relabel replacement and label_replace use): "$$" is a '$', a
 * name runs as far as letters, digits and '_' go ("$1x" is the group named
 * "1x"), an unknown or unmatched group is empty, a malformed "$" is kept
 * literally. RW_NOMEM / RW_LIMIT when out cannot grow. */
rw_rc rw_regex_expand(const rw_regex *re, const rw_regex_md *md, const char *tmpl, size_t tlen,
                      const char *subj, rw_buf *out);

#endif
