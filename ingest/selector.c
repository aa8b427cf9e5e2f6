/* selector.c - label selectors in configuration ({job="kubelet"},
 * {job=~"kubelet|cadvisor", metrics_path!="/metrics/probes"}): parsed once
 * when the config loads, matched per series on the write path (the kubelet
 * dedup stage's "which series are kubelet series").
 *
 * The ingest layer does not depend on the PromQL parser, so this is a small
 * parser of its own for the matcher list (PromQL's string escapes, an
 * optional leading metric name). Regexes are core/regex.h (anchored, RE2
 * syntax); matching takes the caller's per-thread match data, so one
 * compiled selector serves every request concurrently. An absent label
 * matches as "", as in PromQL. */
#include "clean.h"

#include <stdlib.h>
#include <string.h>
#include "core/text.h"

static int ident_start(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int ident_char(int c) { return ident_start(c) || (c >= '0' && c <= '9') || c == ':'; }

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* A quoted string ("...", '...' or `...`) with PromQL's escapes; malloc'd. */
static char *quoted(const char **pp, rw_err *err)
{
    const char *p = *pp;
    char q = *p++;
    size_t cap = strlen(p) + 1, o = 0;
    char *out = malloc(cap + 4);
    if (!out) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    while (*p && *p != q) {
        if (*p == '\\' && q != '`') {
            p++;
            char c = *p++;
            switch (c) {
            case 'n': out[o++] = '\n'; break;
            case 't': out[o++] = '\t'; break;
            case 'r': out[o++] = '\r'; break;
            case 'a': out[o++] = '\a'; break;
            case 'b': out[o++] = '\b'; break;
            case 'f': out[o++] = '\f'; break;
            case 'v': out[o++] = '\v'; break;
            case '\\': case '"': case '\'': out[o++] = c; break;
            case 'x': case 'u': case 'U': {
                int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int i = 0; i < nd; i++) {
                    int d = rw_hex_digit((unsigned char)p[i]);
                    if (d < 0) {
                        free(out);
                        rw_err_set(err, RW_BADREQ, "invalid escape sequence in selector string");
                        return NULL;
                    }
                    cp = cp * 16 + (uint32_t)d;
                }
                p += nd;
                if (c == 'x') {
                    out[o++] = (char)cp;
                } else {
                    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                        free(out);
                        rw_err_set(err, RW_BADREQ, "invalid Unicode code point in selector string");
                        return NULL;
                    }
                    o += rw_utf8_put(out + o, cp);
                }
                break;
            }
            default:
                free(out);
                rw_err_set(err, RW_BADREQ, "unknown escape sequence \\%c in selector string", c);
                return NULL;
            }
        } else {
            out[o++] = *p++;
        }
    }
    if (*p != q) {
        free(out);
        rw_err_set(err, RW_BADREQ, "unterminated string in selector");
        return NULL;
    }
    out[o] = '\0';
    *pp = p + 1;
    return out;
}

static rw_rc add(rw_in_selector *s, char *name, int op, char *value, rw_err *err)
{
    rw_in_matcher *m = realloc(s->m, (s->n + 1) * sizeof *m);
    if (!m) {
        free(name);
        free(value);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    s->m = m;
    m = &s->m[s->n++];
    m->name = name;
    m->op = op;
    m->value = value;
    m->re = NULL;
    if (op == RW_MATCH_RE || op == RW_MATCH_NRE) {
        m->re = rw_regex_compile(value, err);
        if (!m->re)
            return RW_BADREQ;
        if (rw_regex_ngroups(m->re) > s->ngroups)
            s->ngroups = rw_regex_ngroups(m->re);
    }
    return RW_OK;
}

rw_rc rw_in_selector_parse(const char *text, rw_in_selector *s, rw_err *err)
{
    memset(s, 0, sizeof *s);
    const char *p = text;
    rw_rc rc;
    skip_ws(&p);
    if (ident_start((unsigned char)*p)) { /* a metric name in front */
        const char *st = p;
        while (ident_char((unsigned char)*p))
            p++;
        if ((rc = add(s, strdup(RW_METRIC_NAME), RW_MATCH_EQ, strndup(st, (size_t)(p - st)),
                      err)) != RW_OK)
            goto fail;
        skip_ws(&p);
        if (!*p)
            return RW_OK;
    }
    if (*p != '{') {
        rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": expected '{'", text);
        goto fail;
    }
    p++;
    for (;;) {
        skip_ws(&p);
        if (*p == '}') {
            p++;
            break;
        }
        char *name;
        if (*p == '"' || *p == '\'') {
            if (!(name = quoted(&p, err))) {
                rc = RW_BADREQ;
                goto fail;
            }
        } else if (ident_start((unsigned char)*p)) {
            const char *st = p;
            while (ident_char((unsigned char)*p))
                p++;
            name = strndup(st, (size_t)(p - st));
        } else {
            rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": expected a label name at "
                            "offset %zu", text, (size_t)(p - text));
            goto fail;
        }
        skip_ws(&p);
        int op;
        if (p[0] == '=' && p[1] == '~') op = RW_MATCH_RE, p += 2;
        else if (p[0] == '!' && p[1] == '~') op = RW_MATCH_NRE, p += 2;
        else if (p[0] == '!' && p[1] == '=') op = RW_MATCH_NEQ, p += 2;
        else if (p[0] == '=') op = RW_MATCH_EQ, p += 1;
        else {
            free(name);
            rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": expected =, !=, =~ or !~ at "
                            "offset %zu", text, (size_t)(p - text));
            goto fail;
        }
        skip_ws(&p);
        if (*p != '"' && *p != '\'' && *p != '`') {
            free(name);
            rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": expected a quoted value at "
                            "offset %zu", text, (size_t)(p - text));
            goto fail;
        }
        char *value = quoted(&p, err);
        if (!value) {
            free(name);
            rc = RW_BADREQ;
            goto fail;
        }
        if ((rc = add(s, name, op, value, err)) != RW_OK)
            goto fail;
        skip_ws(&p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p++;
            break;
        }
        rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": expected ',' or '}' at offset %zu",
                        text, (size_t)(p - text));
        goto fail;
    }
    skip_ws(&p);
    if (*p) {
        rc = rw_err_set(err, RW_BADREQ, "selector \"%.100s\": unexpected text after '}'", text);
        goto fail;
    }
    return RW_OK;
fail:
    rw_in_selector_free(s);
    return rc;
}

void rw_in_selector_free(rw_in_selector *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        rw_regex_free(s->m[i].re);
    }
    free(s->m);
    memset(s, 0, sizeof *s);
}

int rw_in_selector_matches(const rw_in_selector *s, rw_regex_md *md, const rw_label *l, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        const rw_in_matcher *m = &s->m[i];
        const char *v = rw_labels_get(l, n, m->name);
        if (!v)
            v = "";
        int r;
        if (m->op == RW_MATCH_EQ || m->op == RW_MATCH_NEQ) {
            r = strcmp(v, m->value) == 0;
        } else {
            r = rw_regex_match(m->re, md, v, strlen(v), NULL);
            if (r < 0)
                return 0; /* a failing regex never selects */
        }
        if ((m->op == RW_MATCH_NEQ || m->op == RW_MATCH_NRE) ? r : !r)
            return 0;
    }
    return 1;
}
