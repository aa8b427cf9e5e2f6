/* regex.c - anchored PCRE2 regular expressions with captures (see regex.h).
 * Patterns are compiled as ^(?s:src)$ - RE2's full-match semantics as
 * Prometheus applies them to relabel rules and label_replace - with UTF
 * checking of the pattern at compile time and of every subject at match time
 * (never PCRE2_NO_UTF_CHECK: a subject with invalid UTF-8 is an error, not
 * undefined behaviour). Match and depth limits bound backtracking. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Backtracking bounds: generous for any sane pattern over label-sized
 * subjects, small enough that a pathological one fails in milliseconds. */
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000

struct rw_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
    char *src;
    int ngroups;
};

struct rw_regex_md {
    pcre2_match_data *md;
    int ngroups;
    int matched;
};

rw_regex *rw_regex_compile(const char *src, rw_err *err)
{
    size_t n = strlen(src);
    char *wrapped = malloc(n + 16);
    rw_regex *re = calloc(1, sizeof *re);
    if (!wrapped || !re || !(re->src = strdup(src))) {
        free(wrapped);
        rw_regex_free(re);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(wrapped, "^(?s:", 5);
    memcpy(wrapped + 5, src, n);
    memcpy(wrapped + 5 + n, ")$", 3);
    int ecode;
    PCRE2_SIZE eoff;
    re->code = pcre2_compile((PCRE2_SPTR)wrapped, n + 7, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ecode,
                             &eoff, NULL);
    free(wrapped);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        size_t at = eoff >= 5 ? (size_t)eoff - 5 : 0;
        rw_err_set(err, RW_BADREQ, "invalid regular expression \"%.100s\" at offset %zu: %s", src,
                   at > n ? n : at, (char *)msg);
        rw_regex_free(re);
        return NULL;
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* best effort */
    uint32_t cap = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &cap);
    /* the (?s: ...) wrapper is non-capturing: group numbers are the user's */
    re->ngroups = (int)cap;
    re->mctx = pcre2_match_context_create(NULL);
    if (!re->mctx) {
        rw_regex_free(re);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
    return re;
}

void rw_regex_free(rw_regex *re)
{
    if (!re)
        return;
    if (re->code)
        pcre2_code_free(re->code);
    if (re->mctx)
        pcre2_match_context_free(re->mctx);
    free(re->src);
    free(re);
}

const char *rw_regex_source(const rw_regex *re)
{
    return re->src;
}

int rw_regex_ngroups(const rw_regex *re)
{
    return re->ngroups;
}

int rw_regex_group_number(const rw_regex *re, const char *name, size_t len)
{
    char buf[256];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    int n = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)buf);
    return n > 0 ? n : -1;
}

rw_regex_md *rw_regex_md_new(int ngroups)
{
    rw_regex_md *md = calloc(1, sizeof *md);
    if (!md)
        return NULL;
    md->ngroups = ngroups < 0 ? 0 : ngroups;
    md->md = pcre2_match_data_create((uint32_t)md->ngroups + 1, NULL);
    if (!md->md) {
        free(md);
        return NULL;
    }
    return md;
}

void rw_regex_md_free(rw_regex_md *md)
{
    if (!md)
        return;
    pcre2_match_data_free(md->md);
    free(md);
}

int rw_regex_match(const rw_regex *re, rw_regex_md *md, const char *s, size_t len, rw_err *err)
{
    md->matched = 0;
    if (re->ngroups > md->ngroups) {
        rw_err_set(err, RW_INTERNAL, "regex match data too small (%d < %d groups)", md->ngroups,
                   re->ngroups);
        return -1;
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md->md, re->mctx);
    if (rc >= 0) {
        md->matched = 1;
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(rc, msg, sizeof msg);
    rw_err_set(err, rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ? RW_LIMIT
                                                                                  : RW_BADREQ,
               "regular expression \"%.100s\": %s", re->src, (char *)msg);
    return -1;
}

int rw_regex_group(const rw_regex_md *md, int i, size_t *start, size_t *end)
{
    if (!md->matched || i < 0 || i > md->ngroups)
        return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md->md);
    if ((uint32_t)i >= pcre2_get_ovector_count(md->md) || ov[2 * i] == PCRE2_UNSET)
        return 0;
    *start = ov[2 * i];
    *end = ov[2 * i + 1];
    return 1;
}
