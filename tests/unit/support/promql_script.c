/* promql_script.c - reads a Prometheus PromQL test script (the promqltest
 * `.test` format) into the command list of promql_script.h: `load` blocks
 * with series in the expanding notation (`a{b="c"} 0+10x5 _ stale`),
 * `clear`, `eval instant|range ...` with their expected series, scalars,
 * strings, failures and `expect` annotation lines. Numbers, durations and
 * quoted strings follow Go (strconv, model.ParseDuration) as promqltest does.
 * The runner that executes the commands is tests/unit/test_promql_conformance.c;
 * this file is part of the rw_test_support library. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/labels.h"
#include "core/text.h"
#include "tests/unit/support/promql_script.h"

/* ---- small utilities ---- */

char *pt_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

void *pt_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

char *pt_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Prometheus model.ParseDuration; returns 0 on success. */
static int parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000},
                 {"h", 3600000},          {"ms", 1},             {"m", 60000},
                 {"s", 1000}};
    int64_t total = 0;
    const char *p = s;
    if (!strcmp(s, "0")) {
        *ms = 0;
        return 0;
    }
    if (!*p)
        return -1;
    int last = -1;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p))
            n = n * 10 + (*p++ - '0');
        int found = -1;
        for (int i = 0; i < 7; i++) {
            size_t l = strlen(units[i].u);
            if (!strncmp(p, units[i].u, l) && !(l == 1 && units[i].u[0] == 'm' && p[1] == 's')) {
                found = i;
                p += l;
                break;
            }
        }
        if (found < 0)
            return -1;
        int order = found == 4 ? 6 : found == 5 ? 4 : found == 6 ? 5 : found;
        if (order <= last)
            return -1;
        last = order;
        total += n * units[found].ms;
    }
    *ms = total;
    return 0;
}

/* Go strconv ParseInt(s, 0, 64) then ParseFloat, as promqltest. */
static int parse_number(const char *s, double *out)
{
    char buf[128];
    size_t n = strlen(s);
    if (!n || n >= sizeof buf || isspace((unsigned char)s[0]))
        return -1;
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (!strcasecmp(p, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t j = 0;
    for (const char *c = p; *c; c++)
        if (*c != '_')
            buf[j++] = *c;
    buf[j] = '\0';
    char *end;
    if (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X') && !strpbrk(buf, "pP.")) {
        unsigned long long v = strtoull(buf + 2, &end, 16);
        if (*end || end == buf + 2)
            return -1;
        *out = neg ? -(double)v : (double)v;
        return 0;
    }
    if (buf[0] == '0' && (buf[1] == 'o' || buf[1] == 'O' || buf[1] == 'b' || buf[1] == 'B')) {
        unsigned long long v = strtoull(buf + 2, &end, (buf[1] | 32) == 'o' ? 8 : 2);
        if (*end || end == buf + 2)
            return -1;
        *out = neg ? -(double)v : (double)v;
        return 0;
    }
    int octal = buf[0] == '0' && buf[1];
    for (size_t i = 0; octal && buf[i]; i++)
        if (buf[i] < '0' || buf[i] > '7')
            octal = 0;
    if (octal) {
        unsigned long long v = strtoull(buf, &end, 8);
        *out = neg ? -(double)v : (double)v;
        return 0;
    }
    for (size_t i = 0; buf[i]; i++)
        if (!(isdigit((unsigned char)buf[i]) || strchr(".eE+-xXpPabcdefABCDEF", buf[i])))
            return -1;
    if (!isdigit((unsigned char)buf[0]) && buf[0] != '.')
        return -1;
    double v = strtod(buf, &end);
    if (*end)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

/* Unquotes a Go string literal starting at s (quote char s[0]); returns the
 * malloc'd value and sets *end past the closing quote, or NULL. */
static char *go_unquote(const char *s, const char **end)
{
    char q = s[0];
    size_t n = strlen(s);
    char *o = malloc(n * 4 + 1);
    size_t j = 0;
    const char *p = s + 1;
    if (!o)
        abort();
    while (*p && *p != q) {
        if (*p != '\\' || q == '`') {
            o[j++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'a': o[j++] = 7; p++; break;
        case 'b': o[j++] = 8; p++; break;
        case 'f': o[j++] = 12; p++; break;
        case 'n': o[j++] = 10; p++; break;
        case 'r': o[j++] = 13; p++; break;
        case 't': o[j++] = 9; p++; break;
        case 'v': o[j++] = 11; p++; break;
        case '\\': case '\'': case '"': o[j++] = *p++; break;
        case 'x': {
            char h[3] = {p[1], p[2], 0};
            o[j++] = (char)strtol(h, NULL, 16);
            p += 3;
            break;
        }
        case 'u': case 'U': {
            int len = *p == 'u' ? 4 : 8;
            char h[9] = {0};
            memcpy(h, p + 1, (size_t)len);
            unsigned long cp = strtoul(h, NULL, 16);
            p += 1 + len;
            j += rw_utf8_put(o + j, (uint32_t)cp);
            break;
        }
        default:
            if (*p >= '0' && *p <= '7') {
                char h[4] = {p[0], p[1], p[2], 0};
                o[j++] = (char)strtol(h, NULL, 8);
                p += 3;
                break;
            }
            free(o);
            return NULL;
        }
    }
    if (*p != q) {
        free(o);
        return NULL;
    }
    o[j] = '\0';
    *end = p + 1;
    return o;
}

/* ---- series notation: labels and values ---- */

int pt_is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

int pt_is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

void pt_lset_add(pt_lset *ls, const char *name, const char *value)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->l[i].name, name)) {
            free((char *)ls->l[i].value);
            ls->l[i].value = pt_xstrdup(value);
            return;
        }
    ls->l = pt_xrealloc(ls->l, (ls->n + 1) * sizeof *ls->l);
    ls->l[ls->n].name = pt_xstrdup(name);
    ls->l[ls->n].value = pt_xstrdup(value);
    ls->n++;
}

void pt_lset_free(pt_lset *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free((char *)ls->l[i].name);
        free((char *)ls->l[i].value);
    }
    free(ls->l);
    ls->l = NULL;
    ls->n = 0;
}

/* Parses `name{a="b", ...}`; returns the rest of the line or NULL. */
static const char *parse_labels(const char *s, pt_lset *ls)
{
    const char *p = s;
    int found = 0;
    if (pt_is_ident_start(*p)) {
        const char *b = p;
        while (pt_is_ident(*p))
            p++;
        char *name = strndup(b, (size_t)(p - b));
        pt_lset_add(ls, RW_METRIC_NAME, name);
        free(name);
        found = 1;
    }
    if (*p == '{') {
        found = 1;
        p++;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '}') {
                p++;
                break;
            }
            char *tok;
            int quoted = 0;
            if (*p == '"' || *p == '\'' || *p == '`') {
                tok = go_unquote(p, &p);
                if (!tok)
                    return NULL;
                quoted = 1;
            } else if (pt_is_ident_start(*p)) {
                const char *b = p;
                while (pt_is_ident(*p))
                    p++;
                tok = strndup(b, (size_t)(p - b));
            } else {
                return NULL;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=' && p[1] != '~' && p[1] != '=') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p != '"' && *p != '\'' && *p != '`') {
                    free(tok);
                    return NULL;
                }
                char *v = go_unquote(p, &p);
                if (!v) {
                    free(tok);
                    return NULL;
                }
                pt_lset_add(ls, tok, v);
                free(v);
            } else if (quoted) {
                pt_lset_add(ls, RW_METRIC_NAME, tok);
            } else {
                free(tok);
                return NULL;
            }
            free(tok);
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == '}') {
                p++;
                break;
            }
            return NULL;
        }
    }
    if (!found)
        return NULL;
    /* empty values are no labels; sort by name */
    size_t m = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->l[i].value[0]) {
            free((char *)ls->l[i].name);
            free((char *)ls->l[i].value);
            continue;
        }
        ls->l[m++] = ls->l[i];
    }
    ls->n = m;
    rw_labels_sort(ls->l, ls->n);
    return p;
}

static void vals_push(pt_val **v, size_t *n, int kind, double x)
{
    *v = pt_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n].kind = kind;
    (*v)[*n].v = x;
    (*n)++;
}

/* A number token of a series value: [+-]?(digits[.digits][e..]|inf|nan). */
static const char *scan_num(const char *p, int signed_required, double *out)
{
    const char *b = p;
    if (*p == '+' || *p == '-')
        p++;
    else if (signed_required)
        return NULL;
    if (!strncasecmp(p, "inf", 3) || !strncasecmp(p, "nan", 3)) {
        p += 3;
    } else {
        const char *d = p;
        while (isdigit((unsigned char)*p) || *p == '_' || *p == '.')
            p++;
        if (p == d)
            return NULL;
        if ((*p == 'e' || *p == 'E') &&
            (isdigit((unsigned char)p[1]) ||
             ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
            p += 2;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    char tmp[128];
    size_t n = (size_t)(p - b);
    if (n >= sizeof tmp)
        return NULL;
    memcpy(tmp, b, n);
    tmp[n] = '\0';
    if (parse_number(tmp, out) < 0)
        return NULL;
    return p;
}

static int parse_values(const char *s, pt_val **v, size_t *nv)
{
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return 0;
        if (p[0] == '{' && p[1] == '{') {
            const char *e = strstr(p, "}}");
            if (!e)
                return -1;
            p = e + 2;
            if ((*p == '+' || *p == '-') && p[1] == '{' && p[2] == '{') {
                e = strstr(p + 1, "}}");
                if (!e)
                    return -1;
                p = e + 2;
            }
            if (*p == 'x' && isdigit((unsigned char)p[1])) {
                long cnt = strtol(p + 1, (char **)&p, 10);
                for (long i = 0; i <= cnt; i++)
                    vals_push(v, nv, PT_VAL_HIST, 0);
            } else {
                vals_push(v, nv, PT_VAL_HIST, 0);
            }
            continue;
        }
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t')
            e++;
        char tok[256];
        size_t tl = (size_t)(e - p);
        if (tl >= sizeof tok)
            return -1;
        memcpy(tok, p, tl);
        tok[tl] = '\0';
        p = e;
        if (tok[0] == '_') {
            long cnt = 1;
            if (tok[1] == 'x')
                cnt = strtol(tok + 2, NULL, 10);
            else if (tok[1])
                return -1;
            for (long i = 0; i < cnt; i++)
                vals_push(v, nv, PT_VAL_NONE, 0);
            continue;
        }
        if (!strcmp(tok, "stale")) {
            vals_push(v, nv, PT_VAL_STALE, 0);
            continue;
        }
        double a, b = 0;
        const char *q = scan_num(tok, 0, &a);
        if (!q)
            return -1;
        if (!*q) {
            vals_push(v, nv, PT_VAL_FLOAT, a);
            continue;
        }
        if (*q == '+' || *q == '-') {
            q = scan_num(q, 1, &b);
            if (!q)
                return -1;
        }
        if (*q != 'x' || !isdigit((unsigned char)q[1]))
            return -1;
        char *end;
        long cnt = strtol(q + 1, &end, 10);
        if (*end)
            return -1;
        double x = a;
        for (long i = 0; i <= cnt; i++) {
            vals_push(v, nv, PT_VAL_FLOAT, x);
            x += b;
        }
    }
}

/* ---- parsing a file ---- */

static int parse_eval_header(char *line, pt_eval *e)
{
    char *p = line + 4;
    if (*p == '_') {
        p++;
        if (!strncmp(p, "fail", 4)) { e->fail = 1; p += 4; }
        else if (!strncmp(p, "warn", 4)) { e->warn = 1; p += 4; }
        else if (!strncmp(p, "ordered", 7)) { e->ordered = 1; p += 7; }
        else if (!strncmp(p, "info", 4)) { e->info = 1; p += 4; }
        else return -1;
    }
    if (*p != ' ' && *p != '\t')
        return -1;
    while (*p == ' ' || *p == '\t')
        p++;
    char *tok = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    if (!strcmp(tok, "instant")) {
        if (!strncmp(p, "at ", 3) || !strncmp(p, "at\t", 3)) {
            p += 3;
            while (*p == ' ' || *p == '\t')
                p++;
            char *d = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (*p)
                *p++ = '\0';
            if (parse_duration(d, &e->at) < 0)
                return -1;
        }
        e->start = e->end = e->at;
        e->expr = pt_xstrdup(pt_trim(p));
        return 0;
    }
    if (strcmp(tok, "range") || e->ordered)
        return -1;
    e->is_range = 1;
    char *words[6];
    for (int i = 0; i < 6; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        words[i] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
    if (strcmp(words[0], "from") || strcmp(words[2], "to") || strcmp(words[4], "step"))
        return -1;
    if (parse_duration(words[1], &e->start) < 0 || parse_duration(words[3], &e->end) < 0 ||
        parse_duration(words[5], &e->step) < 0)
        return -1;
    e->expr = pt_xstrdup(pt_trim(p));
    return 0;
}

static void add_expect(pt_eval *e, int kind, int is_regex, const char *text)
{
    e->ex[kind] = pt_xrealloc(e->ex[kind], (e->nex[kind] + 1) * sizeof(pt_expect));
    e->ex[kind][e->nex[kind]].is_regex = is_regex;
    e->ex[kind][e->nex[kind]].text = pt_xstrdup(text);
    e->nex[kind]++;
}

static int parse_expect(pt_eval *e, char *d)
{
    static const char *const kinds[] = {"ordered", "fail", "warn", "no_warn", "info", "no_info"};
    char *p = d + 6;
    while (*p == ' ')
        p++;
    for (int k = 0; k < PT_EX__N; k++) {
        size_t l = strlen(kinds[k]);
        if (strncmp(p, kinds[k], l) || (p[l] && p[l] != ' ' && p[l] != '\t'))
            continue;
        p += l;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            add_expect(e, k, 1, "");
            return 0;
        }
        if (!strncmp(p, "msg:", 4)) {
            add_expect(e, k, 0, pt_trim(p + 4));
            return 0;
        }
        if (!strncmp(p, "regex:", 6)) {
            add_expect(e, k, 1, pt_trim(p + 6));
            return 0;
        }
        return -1;
    }
    return -1;
}

int pt_parse_file(const char *path, pt_cmd **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char **lines = NULL;
    size_t nl = 0;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t r;
    while ((r = getline(&buf, &cap, f)) >= 0) {
        if (r && buf[r - 1] == '\n')
            buf[r - 1] = '\0';
        char *t = pt_trim(buf);
        if (t[0] == '#')
            t[0] = '\0';
        lines = pt_xrealloc(lines, (nl + 1) * sizeof *lines);
        lines[nl++] = pt_xstrdup(t);
    }
    free(buf);
    fclose(f);
    pt_cmd *cmds = NULL;
    size_t nc = 0;
    int rc = 0;
    for (size_t i = 0; i < nl && rc == 0; i++) {
        char *l = lines[i];
        if (!*l)
            continue;
        cmds = pt_xrealloc(cmds, (nc + 1) * sizeof *cmds);
        pt_cmd *c = &cmds[nc++];
        memset(c, 0, sizeof *c);
        c->line = (int)i + 1;
        if (!strncasecmp(l, "clear", 5)) {
            c->kind = PT_CMD_CLEAR;
        } else if (!strncmp(l, "load", 4)) {
            c->kind = PT_CMD_LOAD;
            char *p = l + 4;
            if (!strncmp(p, "_with_nhcb", 10)) {
                c->load.with_nhcb = 1;
                p += 10;
            }
            if (parse_duration(pt_trim(p), &c->load.interval) < 0) {
                fprintf(stderr, "%s:%zu: bad load interval\n", path, i + 1);
                rc = -1;
                break;
            }
            while (i + 1 < nl && lines[i + 1][0]) {
                i++;
                char *d = lines[i];
                char *sp = strpbrk(d, " \t");
                if (sp && sp - d > 3 && !strncmp(sp - 3, "@st", 3))
                    continue; /* start timestamps: not supported, ignored */
                pt_series sd = {0};
                const char *rest = parse_labels(d, &sd.labels);
                if (!rest || parse_values(rest, &sd.vals, &sd.nvals) < 0) {
                    fprintf(stderr, "%s:%zu: bad series line\n", path, i + 1);
                    rc = -1;
                    break;
                }
                /* a later line for the same series replaces the earlier one */
                int replaced = 0;
                for (size_t k = 0; k < c->load.nseries; k++)
                    if (rw_labels_equal(c->load.series[k].labels.l, c->load.series[k].labels.n,
                                        sd.labels.l, sd.labels.n)) {
                        pt_lset_free(&c->load.series[k].labels);
                        free(c->load.series[k].vals);
                        c->load.series[k] = sd;
                        replaced = 1;
                    }
                if (!replaced) {
                    c->load.series = pt_xrealloc(c->load.series, (c->load.nseries + 1) * sizeof sd);
                    c->load.series[c->load.nseries++] = sd;
                }
            }
        } else if (!strncmp(l, "eval", 4)) {
            c->kind = PT_CMD_EVAL;
            pt_eval *e = &c->eval;
            e->line = (int)i + 1;
            char *hdr = pt_xstrdup(l);
            if (parse_eval_header(hdr, e) < 0) {
                fprintf(stderr, "%s:%zu: bad eval line\n", path, i + 1);
                free(hdr);
                rc = -1;
                break;
            }
            free(hdr);
            if (strstr(e->expr, "{{"))
                e->uses_hist = 1;
            while (i + 1 < nl && lines[i + 1][0]) {
                i++;
                char *d = lines[i];
                if (e->fail && !strncmp(d, "expected_fail_message", 21)) {
                    e->fail_msg = pt_xstrdup(pt_trim(d + 21));
                    break;
                }
                if (e->fail && !strncmp(d, "expected_fail_regexp", 20)) {
                    e->fail_re = pt_xstrdup(pt_trim(d + 20));
                    break;
                }
                if (!strncmp(d, "expect range vector", 19)) {
                    char *w[6];
                    char *p = d + 19;
                    for (int k = 0; k < 6; k++) {
                        while (*p == ' ' || *p == '\t')
                            p++;
                        w[k] = p;
                        while (*p && *p != ' ' && *p != '\t')
                            p++;
                        if (*p)
                            *p++ = '\0';
                    }
                    if (parse_duration(w[1], &e->start) < 0 || parse_duration(w[3], &e->end) < 0 ||
                        parse_duration(w[5], &e->step) < 0) {
                        rc = -1;
                        break;
                    }
                    e->at = e->end;
                    e->range_vector = 1;
                    e->exclude_from_range = 1;
                    continue;
                }
                if (!strncmp(d, "expect string", 13)) {
                    const char *p = pt_trim(d + 13), *end;
                    e->string = go_unquote(p, &end);
                    e->has_string = 1;
                    e->exclude_from_range = 1;
                    continue;
                }
                if (!strncmp(d, "expect ", 7) || !strcmp(d, "expect")) {
                    if (parse_expect(e, d) < 0) {
                        fprintf(stderr, "%s:%zu: bad expect line\n", path, i + 1);
                        rc = -1;
                        break;
                    }
                    continue;
                }
                double num;
                if (parse_number(d, &num) == 0) {
                    e->expect_scalar = 1;
                    e->scalar = num;
                    break;
                }
                if (strstr(d, "{{"))
                    e->uses_hist = 1;
                pt_series sd = {0};
                const char *rest = parse_labels(d, &sd.labels);
                if (!rest || parse_values(rest, &sd.vals, &sd.nvals) < 0) {
                    fprintf(stderr, "%s:%zu: bad expected series\n", path, i + 1);
                    rc = -1;
                    break;
                }
                e->expected = pt_xrealloc(e->expected, (e->nexpected + 1) * sizeof sd);
                e->expected[e->nexpected++] = sd;
            }
        } else {
            fprintf(stderr, "%s:%zu: unknown command %s\n", path, i + 1, l);
            rc = -1;
        }
    }
    for (size_t i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
    *out = cmds;
    *nout = nc;
    return rc;
}

static void free_series(pt_series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pt_lset_free(&s[i].labels);
        free(s[i].vals);
    }
    free(s);
}

void pt_free_cmds(pt_cmd *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].kind == PT_CMD_LOAD)
            free_series(c[i].load.series, c[i].load.nseries);
        if (c[i].kind == PT_CMD_EVAL) {
            pt_eval *e = &c[i].eval;
            free(e->expr);
            free(e->fail_msg);
            free(e->fail_re);
            free(e->string);
            for (int k = 0; k < PT_EX__N; k++) {
                for (size_t j = 0; j < e->nex[k]; j++)
                    free(e->ex[k][j].text);
                free(e->ex[k]);
            }
            free_series(e->expected, e->nexpected);
        }
    }
    free(c);
}
