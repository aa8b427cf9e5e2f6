/* matcher.c - compiled label matchers (see matcher.h). Regex matching is hot
 * in series selection, so trivial patterns skip PCRE2 altogether; real
 * regexes go through core/regex.h, which anchors them, makes "." match
 * newlines as Prometheus does ((?s)), JIT-compiles them and bounds
 * backtracking with match and depth limits - a limit hit is an error the
 * caller reports, never a silent "no match". */
#include "matcher.h"

#include <stdlib.h>
#include <string.h>
#include "regex.h"

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
    rw_regex *re = rw_regex_compile(value, err);
    if (!re) {
        rw_matcher_free(m);
        return err ? err->code : RW_BADREQ;
    }
    m->re = re;
    m->md = rw_regex_md_new(rw_regex_ngroups(re));
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
    rw_regex_md_free(m->md);
    rw_regex_free(m->re);
    for (size_t i = 0; i < m->nalts; i++)
        free(m->alts[i]);
    free(m->alts);
    memset(m, 0, sizeof *m);
}

static int raw_match(const rw_matcher *m, const char *v, rw_err *err)
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
        return rw_regex_match(m->re, m->md, v, strlen(v), err);
    }
}

int rw_matcher_match(const rw_matcher *m, const char *value, rw_err *err)
{
    if (!value)
        value = "";
    int r = raw_match(m, value, err);
    if (r < 0)
        return -1;
    return (m->op == RW_MATCH_NEQ || m->op == RW_MATCH_NRE) ? !r : r;
}

int rw_matcher_matches(const rw_matcher *m, const char *value)
{
    return rw_matcher_match(m, value, NULL) == 1;
}

int rw_matcher_is_regex(const rw_matcher *m)
{
    return m->kind == K_PCRE;
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
