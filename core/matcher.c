/* matcher.c - compiled label matchers (see matcher.h). Regex matching is hot
 * in series selection, so anchored PCRE2 with JIT is used and trivial
 * patterns skip it. Patterns are RE2 syntax, which PCRE2 accepts for the
 * subset PromQL users write; "." matches newlines as in Prometheus ((?s)). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "matcher.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

enum { K_EQ, K_ANY, K_NONEMPTY, K_ALTS, K_PCRE };

static int is_literal(const char *s)
{
    for (; *s; s++)
        if (strchr("\\^$.|?*+()[]{}", *s))
            return 0;
    return 1;
}

/* "a|b|c" with plain literals only */
static int split_alts(rw_matcher *m, const char *v)
{
    size_t n = 1;
    for (const char *p = v; *p; p++) {
        if (strchr("\\^$.?*+()[]{}", *p))
            return 0;
        if (*p == '|')
            n++;
    }
    m->alts = calloc(n, sizeof *m->alts);
    if (!m->alts)
        return 0;
    const char *start = v;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, '|');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        m->alts[i] = strndup(start, len);
        start = end ? end + 1 : start + len;
    }
    m->nalts = n;
    return 1;
}

rw_rc rw_matcher_init(rw_matcher *m, rw_match_op op, const char *name, const char *value,
                      rw_err *err)
{
    memset(m, 0, sizeof *m);
    m->op = op;
    m->name = strdup(name);
    m->value = strdup(value);
    if (!m->name || !m->value) {
        rw_matcher_free(m);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    if (op == RW_MATCH_EQ || op == RW_MATCH_NEQ) {
        m->kind = K_EQ;
        return RW_OK;
    }
    if (strcmp(value, ".*") == 0) {
        m->kind = K_ANY;
        return RW_OK;
    }
    if (strcmp(value, ".+") == 0) {
        m->kind = K_NONEMPTY;
        return RW_OK;
    }
    if (is_literal(value)) {
        m->kind = K_EQ;
        return RW_OK;
    }
    if (strchr(value, '|') && split_alts(m, value)) {
        m->kind = K_ALTS;
        return RW_OK;
    }
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_UTF,
                                   &ecode, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        rw_err_set(err, RW_BADREQ, "invalid regular expression \"%.100s\" at offset %zu: %s",
                   value, (size_t)eoff, (char *)msg);
        rw_matcher_free(m);
        return RW_BADREQ;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort */
    m->re = re;
    m->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!m->md) {
        rw_matcher_free(m);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    m->kind = K_PCRE;
    return RW_OK;
}

void rw_matcher_free(rw_matcher *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->value);
    if (m->md)
        pcre2_match_data_free(m->md);
    if (m->re)
        pcre2_code_free(m->re);
    for (size_t i = 0; i < m->nalts; i++)
        free(m->alts[i]);
    free(m->alts);
    memset(m, 0, sizeof *m);
}

static int raw_match(const rw_matcher *m, const char *v)
{
    switch (m->kind) {
    case K_EQ: return strcmp(v, m->value) == 0;
    case K_ANY: return 1;
    case K_NONEMPTY: return v[0] != '\0';
    case K_ALTS:
        for (size_t i = 0; i < m->nalts; i++)
            if (strcmp(v, m->alts[i]) == 0)
                return 1;
        return 0;
    default:
        return pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, m->md, NULL) >= 0;
    }
}

int rw_matcher_matches(const rw_matcher *m, const char *value)
{
    if (!value)
        value = "";
    int r = raw_match(m, value);
    return (m->op == RW_MATCH_NEQ || m->op == RW_MATCH_NRE) ? !r : r;
}

int rw_matcher_matches_empty(const rw_matcher *m)
{
    return rw_matcher_matches(m, "");
}

const char *rw_match_op_str(rw_match_op op)
{
    switch (op) {
    case RW_MATCH_EQ: return "=";
    case RW_MATCH_NEQ: return "!=";
    case RW_MATCH_RE: return "=~";
    case RW_MATCH_NRE: return "!~";
    }
    return "?";
}
