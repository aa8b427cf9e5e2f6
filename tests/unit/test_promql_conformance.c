/* test_promql_conformance.c - runs Prometheus' PromQL test scripts (the
 * promqltest format: load / clear / eval ... / expect ...) in process against
 * rw_engine over a real rw_store: ../shared/conformance/promql/NAME.test and
 * rwgate's own tests/promql/NAME.test (paths relative to the repo root, the
 * working directory under ctest). Each `clear`-separated part gets a fresh
 * store in a temporary directory. Comparison follows promqltest: label sets
 * exact, floats within 1e-6 relative (NaN == NaN), order only for ordered
 * evals, annotations when the script states them. Native-histogram cases are
 * skipped (never counted as passed).
 *
 * Usage: test_promql_conformance [FILE.test|DIR ...]
 *   PROMQL_FILTER=REGEX     run only evals whose expression matches
 *   PROMQL_RANGE_CHECK=0    do not re-run instant evals as range queries
 *   PROMQL_VERBOSE=1        print every case
 * Known failures: tests/unit/promql_known_failures.txt, lines
 * "FILE.test:LINE reason"; such a case failing is expected, passing is
 * reported so the line can be removed. */
#define _GNU_SOURCE
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/labels.h"
#include "query/promql.h"
#include "store/store.h"
#include "tests/unit/test.h"

/* ---- small utilities ---- */

#define VAL_NONE 0 /* '_': no sample */
#define VAL_FLOAT 1
#define VAL_STALE 2
#define VAL_HIST 3

typedef struct val {
    int kind;
    double v;
} val;

typedef struct lset {
    rw_label *l;
    size_t n;
} lset;

typedef struct series_desc {
    lset labels;
    val *vals;
    size_t nvals;
} series_desc;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static char *trim(char *s)
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
            if (cp < 0x80)
                o[j++] = (char)cp;
            else if (cp < 0x800) {
                o[j++] = (char)(0xc0 | (cp >> 6));
                o[j++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                o[j++] = (char)(0xe0 | (cp >> 12));
                o[j++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[j++] = (char)(0x80 | (cp & 0x3f));
            } else {
                o[j++] = (char)(0xf0 | (cp >> 18));
                o[j++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                o[j++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[j++] = (char)(0x80 | (cp & 0x3f));
            }
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

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static void lset_add(lset *ls, const char *name, const char *value)
{
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->l[i].name, name)) {
            free((char *)ls->l[i].value);
            ls->l[i].value = xstrdup(value);
            return;
        }
    ls->l = xrealloc(ls->l, (ls->n + 1) * sizeof *ls->l);
    ls->l[ls->n].name = xstrdup(name);
    ls->l[ls->n].value = xstrdup(value);
    ls->n++;
}

static void lset_free(lset *ls)
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
static const char *parse_labels(const char *s, lset *ls)
{
    const char *p = s;
    int found = 0;
    if (is_ident_start(*p)) {
        const char *b = p;
        while (is_ident(*p))
            p++;
        char *name = strndup(b, (size_t)(p - b));
        lset_add(ls, RW_METRIC_NAME, name);
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
            } else if (is_ident_start(*p)) {
                const char *b = p;
                while (is_ident(*p))
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
                lset_add(ls, tok, v);
                free(v);
            } else if (quoted) {
                lset_add(ls, RW_METRIC_NAME, tok);
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

static void vals_push(val **v, size_t *n, int kind, double x)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
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

static int parse_values(const char *s, val **v, size_t *nv)
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
                    vals_push(v, nv, VAL_HIST, 0);
            } else {
                vals_push(v, nv, VAL_HIST, 0);
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
                vals_push(v, nv, VAL_NONE, 0);
            continue;
        }
        if (!strcmp(tok, "stale")) {
            vals_push(v, nv, VAL_STALE, 0);
            continue;
        }
        double a, b = 0;
        const char *q = scan_num(tok, 0, &a);
        if (!q)
            return -1;
        if (!*q) {
            vals_push(v, nv, VAL_FLOAT, a);
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
            vals_push(v, nv, VAL_FLOAT, x);
            x += b;
        }
    }
}

/* ---- the script model ---- */

typedef struct expect_msg {
    int is_regex;
    char *text;
} expect_msg;

enum { EX_ORDERED, EX_FAIL, EX_WARN, EX_NO_WARN, EX_INFO, EX_NO_INFO, EX__N };

typedef struct eval_cmd {
    int line;
    char *expr;
    int is_range;
    int64_t start, end, step, at;
    int fail, warn, ordered, info;
    char *fail_msg, *fail_re;
    expect_msg *ex[EX__N];
    size_t nex[EX__N];
    int expect_scalar;
    double scalar;
    int has_string;
    char *string;
    series_desc *expected;
    size_t nexpected;
    int range_vector, exclude_from_range, uses_hist;
} eval_cmd;

typedef struct load_cmd {
    int64_t interval;
    int with_nhcb;
    series_desc *series;
    size_t nseries;
} load_cmd;

enum { CMD_LOAD, CMD_CLEAR, CMD_EVAL };

typedef struct cmd {
    int kind;
    int line;
    load_cmd load;
    eval_cmd eval;
} cmd;

static int is_ordered(const eval_cmd *e) { return e->ordered || e->nex[EX_ORDERED]; }
static int is_fail(const eval_cmd *e) { return e->fail || e->nex[EX_FAIL]; }

/* ---- regex helpers (PCRE2; Go's RE2 syntax is close enough here) ---- */

static int re_search(const char *re, const char *s)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!c)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    int r = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    return r >= 0;
}

/* ---- parsing a file ---- */

static int parse_eval_header(char *line, eval_cmd *e)
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
        e->expr = xstrdup(trim(p));
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
    e->expr = xstrdup(trim(p));
    return 0;
}

static void add_expect(eval_cmd *e, int kind, int is_regex, const char *text)
{
    e->ex[kind] = xrealloc(e->ex[kind], (e->nex[kind] + 1) * sizeof(expect_msg));
    e->ex[kind][e->nex[kind]].is_regex = is_regex;
    e->ex[kind][e->nex[kind]].text = xstrdup(text);
    e->nex[kind]++;
}

static int parse_expect(eval_cmd *e, char *d)
{
    static const char *const kinds[] = {"ordered", "fail", "warn", "no_warn", "info", "no_info"};
    char *p = d + 6;
    while (*p == ' ')
        p++;
    for (int k = 0; k < EX__N; k++) {
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
            add_expect(e, k, 0, trim(p + 4));
            return 0;
        }
        if (!strncmp(p, "regex:", 6)) {
            add_expect(e, k, 1, trim(p + 6));
            return 0;
        }
        return -1;
    }
    return -1;
}

static int parse_file(const char *path, cmd **out, size_t *nout)
{
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
        char *t = trim(buf);
        if (t[0] == '#')
            t[0] = '\0';
        lines = xrealloc(lines, (nl + 1) * sizeof *lines);
        lines[nl++] = xstrdup(t);
    }
    free(buf);
    fclose(f);
    cmd *cmds = NULL;
    size_t nc = 0;
    int rc = 0;
    for (size_t i = 0; i < nl && rc == 0; i++) {
        char *l = lines[i];
        if (!*l)
            continue;
        cmds = xrealloc(cmds, (nc + 1) * sizeof *cmds);
        cmd *c = &cmds[nc++];
        memset(c, 0, sizeof *c);
        c->line = (int)i + 1;
        if (!strncasecmp(l, "clear", 5)) {
            c->kind = CMD_CLEAR;
        } else if (!strncmp(l, "load", 4)) {
            c->kind = CMD_LOAD;
            char *p = l + 4;
            if (!strncmp(p, "_with_nhcb", 10)) {
                c->load.with_nhcb = 1;
                p += 10;
            }
            if (parse_duration(trim(p), &c->load.interval) < 0) {
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
                series_desc sd = {0};
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
                        lset_free(&c->load.series[k].labels);
                        free(c->load.series[k].vals);
                        c->load.series[k] = sd;
                        replaced = 1;
                    }
                if (!replaced) {
                    c->load.series = xrealloc(c->load.series, (c->load.nseries + 1) * sizeof sd);
                    c->load.series[c->load.nseries++] = sd;
                }
            }
        } else if (!strncmp(l, "eval", 4)) {
            c->kind = CMD_EVAL;
            eval_cmd *e = &c->eval;
            e->line = (int)i + 1;
            char *hdr = xstrdup(l);
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
                    e->fail_msg = xstrdup(trim(d + 21));
                    break;
                }
                if (e->fail && !strncmp(d, "expected_fail_regexp", 20)) {
                    e->fail_re = xstrdup(trim(d + 20));
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
                    const char *p = trim(d + 13), *end;
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
                series_desc sd = {0};
                const char *rest = parse_labels(d, &sd.labels);
                if (!rest || parse_values(rest, &sd.vals, &sd.nvals) < 0) {
                    fprintf(stderr, "%s:%zu: bad expected series\n", path, i + 1);
                    rc = -1;
                    break;
                }
                e->expected = xrealloc(e->expected, (e->nexpected + 1) * sizeof sd);
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

static void free_series(series_desc *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lset_free(&s[i].labels);
        free(s[i].vals);
    }
    free(s);
}

static void free_cmds(cmd *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].kind == CMD_LOAD)
            free_series(c[i].load.series, c[i].load.nseries);
        if (c[i].kind == CMD_EVAL) {
            eval_cmd *e = &c[i].eval;
            free(e->expr);
            free(e->fail_msg);
            free(e->fail_re);
            free(e->string);
            for (int k = 0; k < EX__N; k++) {
                for (size_t j = 0; j < e->nex[k]; j++)
                    free(e->ex[k][j].text);
                free(e->ex[k]);
            }
            free_series(e->expected, e->nexpected);
        }
    }
    free(c);
}

/* ---- comparison ---- */

static int almost_equal(double a, double b)
{
    const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
    if (isnan(a) && isnan(b))
        return 1;
    if (a == b)
        return 1;
    double absum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (isnan(diff))
        return 0;
    if (a == 0 || b == 0 || absum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(absum, 1.7976931348623157e308) < eps;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 64) * 2;
        b->p = xrealloc(b->p, b->cap);
        if (b->n == 0)
            b->p[0] = '\0';
    }
}

static void sb_labels(sbuf *b, const rw_label *l, size_t n)
{
    const char *name = rw_labels_get(l, n, RW_METRIC_NAME);
    sb_printf(b, "%s{", name ? name : "");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(l[i].name, RW_METRIC_NAME))
            continue;
        sb_printf(b, "%s%s=\"%s\"", first ? "" : ", ", l[i].name, l[i].value);
        first = 0;
    }
    sb_printf(b, "}");
}

static void sb_val(sbuf *b, double v)
{
    if (isnan(v))
        sb_printf(b, "NaN");
    else if (isinf(v))
        sb_printf(b, v > 0 ? "+Inf" : "-Inf");
    else
        sb_printf(b, "%.17g", v);
}

static void summarize(sbuf *b, const rw_result *r)
{
    switch (r->type) {
    case RW_VAL_SCALAR:
        sb_printf(b, "scalar ");
        sb_val(b, r->scalar);
        break;
    case RW_VAL_STRING:
        sb_printf(b, "string \"%s\"", r->string);
        break;
    case RW_VAL_VECTOR:
    case RW_VAL_MATRIX:
        sb_printf(b, "%s[%zu]:", r->type == RW_VAL_VECTOR ? "vector" : "matrix", r->nseries);
        for (size_t s = 0; s < r->nseries && s < 40; s++) {
            sb_printf(b, " ");
            sb_labels(b, r->series[s].labels, r->series[s].nlabels);
            for (size_t k = 0; k < r->series[s].npoints && k < 30; k++) {
                sb_printf(b, " ");
                sb_val(b, r->series[s].points[k].v);
                if (r->type == RW_VAL_MATRIX)
                    sb_printf(b, "@%lld", (long long)r->series[s].points[k].t);
            }
            sb_printf(b, ";");
        }
        break;
    default:
        sb_printf(b, "none");
    }
    for (size_t i = 0; i < r->nwarnings; i++)
        sb_printf(b, " [warn: %s]", r->warnings[i]);
    for (size_t i = 0; i < r->ninfos; i++)
        sb_printf(b, " [info: %s]", r->infos[i]);
}

static void expected_text(sbuf *b, const eval_cmd *e)
{
    if (is_fail(e))
        sb_printf(b, "<error>%s%s", e->fail_msg ? " " : "", e->fail_msg ? e->fail_msg : "");
    else if (e->expect_scalar) {
        sb_printf(b, "scalar ");
        sb_val(b, e->scalar);
    } else if (e->has_string)
        sb_printf(b, "string \"%s\"", e->string);
    else if (!e->nexpected)
        sb_printf(b, "<empty result>");
    for (size_t i = 0; i < e->nexpected; i++) {
        sb_printf(b, " ");
        sb_labels(b, e->expected[i].labels.l, e->expected[i].labels.n);
        for (size_t k = 0; k < e->expected[i].nvals; k++) {
            val v = e->expected[i].vals[k];
            sb_printf(b, " ");
            if (v.kind == VAL_NONE)
                sb_printf(b, "_");
            else if (v.kind == VAL_STALE)
                sb_printf(b, "stale");
            else if (v.kind == VAL_HIST)
                sb_printf(b, "{{hist}}");
            else
                sb_val(b, v.v);
        }
        sb_printf(b, ";");
    }
}

static int find_expected(const eval_cmd *e, const rw_label *l, size_t n)
{
    for (size_t i = 0; i < e->nexpected; i++)
        if (rw_labels_equal(e->expected[i].labels.l, e->expected[i].labels.n, l, n))
            return (int)i;
    return -1;
}

static double val_f(val v)
{
    return v.kind == VAL_STALE ? NAN : v.v;
}

/* Returns NULL when the result matches, else a message in *msg. */
static int compare_vector(const eval_cmd *e, const rw_result_series *s, size_t n, int ordered,
                          sbuf *msg)
{
    if (e->expect_scalar) {
        sb_printf(msg, "expected scalar result, but got vector of %zu elements", n);
        return 0;
    }
    char *seen = calloc(e->nexpected + 1, 1);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int k = find_expected(e, s[i].labels, s[i].nlabels);
        if (k < 0) {
            sb_printf(msg, "unexpected metric ");
            sb_labels(msg, s[i].labels, s[i].nlabels);
            sb_printf(msg, " in result");
            ok = 0;
            break;
        }
        if (seen[k]) {
            sb_printf(msg, "metric appears more than once in the result");
            ok = 0;
            break;
        }
        seen[k] = 1;
        if (ordered && (size_t)k != i) {
            sb_printf(msg, "expected metric at position %d but was at %zu", k + 1, i + 1);
            ok = 0;
            break;
        }
        double ev = e->expected[k].nvals ? val_f(e->expected[k].vals[0]) : 0;
        if (!almost_equal(ev, s[i].points[0].v)) {
            sb_printf(msg, "expected ");
            sb_val(msg, ev);
            sb_printf(msg, " for ");
            sb_labels(msg, s[i].labels, s[i].nlabels);
            sb_printf(msg, " but got ");
            sb_val(msg, s[i].points[0].v);
            ok = 0;
        }
    }
    for (size_t k = 0; ok && k < e->nexpected; k++)
        if (!seen[k]) {
            sb_printf(msg, "expected metric ");
            sb_labels(msg, e->expected[k].labels.l, e->expected[k].labels.n);
            sb_printf(msg, " not found");
            ok = 0;
        }
    free(seen);
    return ok;
}

static int compare_matrix(const eval_cmd *e, const rw_result *r, sbuf *msg)
{
    if (is_ordered(e)) {
        sb_printf(msg, "expected ordered result, but query returned a matrix");
        return 0;
    }
    if (e->expect_scalar) {
        sb_printf(msg, "expected scalar result, but got matrix");
        return 0;
    }
    for (size_t i = 0; i + 1 < r->nseries; i++)
        if (rw_labels_cmp(r->series[i].labels, r->series[i].nlabels, r->series[i + 1].labels,
                          r->series[i + 1].nlabels) > 0) {
            sb_printf(msg, "matrix results should always be sorted by labels");
            return 0;
        }
    char *seen = calloc(e->nexpected + 1, 1);
    int ok = 1;
    int span = e->is_range || e->range_vector;
    for (size_t s = 0; s < r->nseries && ok; s++) {
        const rw_result_series *rs = &r->series[s];
        int k = find_expected(e, rs->labels, rs->nlabels);
        if (k < 0) {
            sb_printf(msg, "unexpected metric ");
            sb_labels(msg, rs->labels, rs->nlabels);
            sb_printf(msg, " in result");
            ok = 0;
            break;
        }
        if (seen[k]) {
            sb_printf(msg, "metric appears more than once in the result");
            ok = 0;
            break;
        }
        seen[k] = 1;
        const series_desc *ex = &e->expected[k];
        size_t nexp = 0;
        for (size_t i = 0; i < ex->nvals; i++) {
            int64_t ts = e->start + (int64_t)i * e->step;
            if (!span || ts > e->end) {
                sb_printf(msg, "expected %zu points, but query time range cannot return this many",
                          ex->nvals);
                ok = 0;
                break;
            }
            if (ex->vals[i].kind == VAL_HIST) {
                sb_printf(msg, "expected histogram points");
                ok = 0;
                break;
            }
            if (ex->vals[i].kind != VAL_NONE)
                nexp++;
        }
        if (!ok)
            break;
        if (nexp != rs->npoints) {
            sb_printf(msg, "expected %zu float points for ", nexp);
            sb_labels(msg, rs->labels, rs->nlabels);
            sb_printf(msg, ", but got %zu", rs->npoints);
            ok = 0;
            break;
        }
        size_t j = 0;
        for (size_t i = 0; i < ex->nvals && ok; i++) {
            if (ex->vals[i].kind == VAL_NONE)
                continue;
            int64_t ts = e->start + (int64_t)i * e->step;
            if (rs->points[j].t != ts) {
                sb_printf(msg, "expected point %zu of ", j);
                sb_labels(msg, rs->labels, rs->nlabels);
                sb_printf(msg, " at t=%lld, got t=%lld", (long long)ts, (long long)rs->points[j].t);
                ok = 0;
            } else if (!almost_equal(val_f(ex->vals[i]), rs->points[j].v)) {
                sb_printf(msg, "expected value at t=%lld for ", (long long)ts);
                sb_labels(msg, rs->labels, rs->nlabels);
                sb_printf(msg, " to be ");
                sb_val(msg, val_f(ex->vals[i]));
                sb_printf(msg, ", got ");
                sb_val(msg, rs->points[j].v);
                ok = 0;
            }
            j++;
        }
    }
    for (size_t k = 0; ok && k < e->nexpected; k++)
        if (!seen[k]) {
            sb_printf(msg, "expected metric ");
            sb_labels(msg, e->expected[k].labels.l, e->expected[k].labels.n);
            sb_printf(msg, " not found");
            ok = 0;
        }
    free(seen);
    return ok;
}

static int compare_result(const eval_cmd *e, const rw_result *r, sbuf *msg)
{
    switch (r->type) {
    case RW_VAL_MATRIX:
        return compare_matrix(e, r, msg);
    case RW_VAL_VECTOR:
        return compare_vector(e, r->series, r->nseries, is_ordered(e), msg);
    case RW_VAL_SCALAR:
        if (!e->expect_scalar) {
            sb_printf(msg, "expected vector or matrix result, but got scalar");
            return 0;
        }
        if (!almost_equal(e->scalar, r->scalar)) {
            sb_printf(msg, "expected scalar ");
            sb_val(msg, e->scalar);
            sb_printf(msg, " but got ");
            sb_val(msg, r->scalar);
            return 0;
        }
        return 1;
    case RW_VAL_STRING:
        if (!e->has_string || strcmp(e->string, r->string)) {
            sb_printf(msg, "expected string \"%s\" but got \"%s\"", e->string ? e->string : "",
                      r->string);
            return 0;
        }
        return 1;
    default:
        sb_printf(msg, "unexpected result type");
        return 0;
    }
}

static int msg_match(const expect_msg *m, const char *s)
{
    return m->is_regex ? re_search(m->text, s) : !strcmp(m->text, s);
}

static int check_annos(const eval_cmd *e, const rw_result *r, sbuf *msg)
{
    if (e->warn && !r->nwarnings) {
        sb_printf(msg, "expected warnings but got none");
        return 0;
    }
    if (e->info && !r->ninfos) {
        sb_printf(msg, "expected info annotations but got none");
        return 0;
    }
    for (int t = 0; t < 2; t++) {
        int kind = t ? EX_INFO : EX_WARN;
        const char **act = t ? r->infos : r->warnings;
        size_t nact = t ? r->ninfos : r->nwarnings;
        if (!e->nex[kind])
            continue;
        if (!nact) {
            sb_printf(msg, "expected %s annotations but none were found", t ? "info" : "warn");
            return 0;
        }
        for (size_t i = 0; i < e->nex[kind]; i++) {
            int any = 0;
            for (size_t j = 0; j < nact && !any; j++)
                any = msg_match(&e->ex[kind][i], act[j]);
            if (!any) {
                sb_printf(msg, "expected %s annotation matching '%s'", t ? "info" : "warn",
                          e->ex[kind][i].text);
                return 0;
            }
        }
        for (size_t j = 0; j < nact; j++) {
            int any = 0;
            for (size_t i = 0; i < e->nex[kind] && !any; i++)
                any = msg_match(&e->ex[kind][i], act[j]);
            if (!any) {
                sb_printf(msg, "unexpected %s annotation '%s'", t ? "info" : "warn", act[j]);
                return 0;
            }
        }
    }
    if (e->nex[EX_NO_WARN] && r->nwarnings) {
        sb_printf(msg, "unexpected warning annotations: %s", r->warnings[0]);
        return 0;
    }
    if (e->nex[EX_NO_INFO] && r->ninfos) {
        sb_printf(msg, "unexpected info annotations: %s", r->infos[0]);
        return 0;
    }
    return 1;
}

static int check_failure(const eval_cmd *e, const char *m, sbuf *msg)
{
    if (e->fail_msg && strcmp(e->fail_msg, m)) {
        sb_printf(msg, "expected error '%s' but got: %s", e->fail_msg, m);
        return 0;
    }
    if (e->fail_re && !re_search(e->fail_re, m)) {
        sb_printf(msg, "expected error matching '%s' but got: %s", e->fail_re, m);
        return 0;
    }
    if (e->nex[EX_FAIL] && !msg_match(&e->ex[EX_FAIL][0], m)) {
        sb_printf(msg, "expected error matching '%s' but got: %s", e->ex[EX_FAIL][0].text, m);
        return 0;
    }
    return 1;
}

/* ---- running ---- */

typedef struct known {
    char *key; /* "file.test:LINE" */
    char *reason;
    int hit;
} known;

typedef struct runner {
    rw_store *store;
    rw_engine *eng;
    char dir[256];
    int range_check, verbose;
    const char *filter;
    known *known;
    size_t nknown;
    int pass, fail, skip, xfail, xpass;
    char **hist_names;
    size_t nhist;
    int seg_has_hist, seg_has_st;
} runner;

static int quiet_fd = -1;

static void quiet(int on)
{
    /* the store logs what it does on stderr; keep the report readable */
    static int saved = -1;
    if (getenv("PROMQL_STORE_LOG"))
        return;
    if (on) {
        fflush(stderr);
        saved = dup(2);
        if (quiet_fd < 0)
            quiet_fd = open("/dev/null", O_WRONLY);
        dup2(quiet_fd, 2);
    } else if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void store_close(runner *r)
{
    if (r->eng)
        rw_engine_free(r->eng);
    r->eng = NULL;
    if (r->store) {
        quiet(1);
        rw_store_close(r->store);
        quiet(0);
        nftw(r->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    r->store = NULL;
    for (size_t i = 0; i < r->nhist; i++)
        free(r->hist_names[i]);
    free(r->hist_names);
    r->hist_names = NULL;
    r->nhist = 0;
    r->seg_has_hist = r->seg_has_st = 0;
}

static int store_open(runner *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/rwgate-promqltest-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    rw_store_opts o = {.dir = r->dir, .nshards = 1};
    rw_err err;
    rw_err_init(&err);
    quiet(1);
    r->store = rw_store_open(&o, &err);
    quiet(0);
    if (!r->store) {
        fprintf(stderr, "rw_store_open: %s\n", err.msg);
        return -1;
    }
    rw_engine_opts eo = {0};
    r->eng = rw_engine_new(r->store, &eo);
    return r->eng ? 0 : -1;
}

static void add_hist_name(runner *r, const char *n)
{
    r->hist_names = xrealloc(r->hist_names, (r->nhist + 1) * sizeof(char *));
    r->hist_names[r->nhist++] = xstrdup(n);
}

static int do_load(runner *r, const load_cmd *l, const char *file, int line)
{
    for (size_t i = 0; i < l->nseries; i++) {
        const series_desc *sd = &l->series[i];
        const char *name = rw_labels_get(sd->labels.l, sd->labels.n, RW_METRIC_NAME);
        int hist = 0;
        for (size_t k = 0; k < sd->nvals; k++)
            hist |= sd->vals[k].kind == VAL_HIST;
        if (hist) {
            add_hist_name(r, name ? name : "");
            r->seg_has_hist = 1;
        }
        if (l->with_nhcb && name) {
            static const char *const suf[] = {"_bucket", "_count", "_sum"};
            for (int s = 0; s < 3; s++) {
                size_t nl = strlen(name), sl = strlen(suf[s]);
                if (nl > sl && !strcmp(name + nl - sl, suf[s])) {
                    char *base = strndup(name, nl - sl);
                    add_hist_name(r, base);
                    r->seg_has_hist = 1;
                    free(base);
                }
            }
        }
        rw_sample *smp = malloc((sd->nvals + 1) * sizeof *smp);
        size_t n = 0;
        for (size_t k = 0; k < sd->nvals; k++) {
            if (sd->vals[k].kind == VAL_NONE || sd->vals[k].kind == VAL_HIST)
                continue;
            smp[n].t = (int64_t)k * l->interval;
            smp[n].v = sd->vals[k].kind == VAL_STALE ? rw_stale_nan() : sd->vals[k].v;
            n++;
        }
        if (n) {
            rw_append_series as = {.labels = sd->labels.l, .nlabels = sd->labels.n,
                                   .hash = rw_labels_hash(sd->labels.l, sd->labels.n),
                                   .samples = smp, .nsamples = n};
            rw_append_result res = {0};
            rw_err err;
            rw_err_init(&err);
            quiet(1);
            rw_rc rc = rw_store_append(r->store, &as, 1, &res, &err);
            quiet(0);
            if (rc != RW_OK)
                fprintf(stderr, "%s:%d: append failed: %s\n", file, line, err.msg);
            else if (res.samples_written != n)
                fprintf(stderr, "%s:%d: store rejected %zu samples\n", file, line,
                        n - (size_t)res.samples_written);
        }
        free(smp);
    }
    return 0;
}

static const char *skip_reason(runner *r, const eval_cmd *e)
{
    if (e->uses_hist)
        return "native histograms";
    if (r->seg_has_st)
        return "start timestamps";
    /* identifiers of the expression outside string literals */
    const char *p = e->expr;
    int unnamed = 0;
    char prev = 0;
    while (*p) {
        if (*p == '"' || *p == '\'' || *p == '`') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && q != '`' && p[1])
                    p++;
                p++;
            }
            if (*p)
                p++;
            prev = ' ';
            continue;
        }
        if (*p == '{' && !is_ident(prev))
            unnamed = 1;
        if (is_ident_start(*p) && !is_ident(prev)) {
            const char *b = p;
            while (is_ident(*p))
                p++;
            size_t n = (size_t)(p - b);
            for (size_t i = 0; i < r->nhist; i++)
                if (strlen(r->hist_names[i]) == n && !strncmp(r->hist_names[i], b, n))
                    return "native histograms";
            prev = p[-1];
            continue;
        }
        prev = *p++;
    }
    if (r->seg_has_hist && (strstr(e->expr, "__name__") || unnamed))
        return "native histograms";
    return NULL;
}

static int is_known(runner *r, const char *file, int line, known **k)
{
    char key[512];
    const char *base = strrchr(file, '/');
    snprintf(key, sizeof key, "%s:%d", base ? base + 1 : file, line);
    for (size_t i = 0; i < r->nknown; i++)
        if (!strcmp(r->known[i].key, key)) {
            *k = &r->known[i];
            return 1;
        }
    return 0;
}

/* Runs one eval; returns 1 pass, 0 fail; msg/got filled on failure. */
static int run_eval(runner *r, const eval_cmd *e, sbuf *msg, sbuf *got)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_result res;
    rw_err err;
    rw_err_init(&err);
    rw_rc rc;
    if (e->is_range)
        rc = rw_engine_range(r->eng, e->expr, e->start, e->end, e->step, 0, a, &res, &err);
    else
        rc = rw_engine_instant(r->eng, e->expr, e->at, 0, a, &res, &err);
    int ok;
    if (rc != RW_OK) {
        sb_printf(got, "error (%s): %s", rw_rc_name(rc), err.msg);
        if (is_fail(e))
            ok = check_failure(e, err.msg, msg);
        else {
            sb_printf(msg, "query failed");
            ok = 0;
        }
        rw_arena_free(a);
        return ok;
    }
    summarize(got, &res);
    if (is_fail(e)) {
        sb_printf(msg, "expected the query to fail, but it succeeded");
        rw_arena_free(a);
        return 0;
    }
    ok = check_annos(e, &res, msg) && compare_result(e, &res, msg);
    int qctx = re_search("(start|end|range|step)\\(\\)", e->expr);
    if (ok && r->range_check && !e->is_range && !e->exclude_from_range && !is_ordered(e) && !qctx) {
        rw_result rr;
        rw_err_init(&err);
        rc = rw_engine_range(r->eng, e->expr, e->at - 60000, e->at + 60000, 60000, 0, a, &rr, &err);
        if (rc != RW_OK) {
            sb_printf(msg, "range mode: query failed: %s", err.msg);
            ok = 0;
        } else if (rr.type != RW_VAL_MATRIX) {
            sb_printf(msg, "range mode: expected a matrix");
            ok = 0;
        } else {
            /* the middle step as a vector */
            rw_result_series *vs = calloc(rr.nseries + 1, sizeof *vs);
            size_t nv = 0;
            for (size_t s = 0; s < rr.nseries; s++)
                for (size_t k = 0; k < rr.series[s].npoints; k++)
                    if (rr.series[s].points[k].t == e->at) {
                        vs[nv] = rr.series[s];
                        vs[nv].points = &rr.series[s].points[k];
                        vs[nv].npoints = 1;
                        nv++;
                    }
            if (res.type == RW_VAL_SCALAR) {
                if (!nv || !almost_equal(e->scalar, vs[0].points[0].v)) {
                    sb_printf(msg, "range mode: scalar mismatch");
                    ok = 0;
                }
            } else {
                sbuf m2 = {0};
                if (!compare_vector(e, vs, nv, 0, &m2)) {
                    sb_printf(msg, "range mode: %s", m2.p ? m2.p : "");
                    sb_printf(got, " | range mode: ");
                    summarize(got, &rr);
                    ok = 0;
                }
                free(m2.p);
            }
            free(vs);
        }
    }
    rw_arena_free(a);
    return ok;
}

static void run_file(runner *r, const char *path)
{
    cmd *cmds;
    size_t nc;
    int fp = 0, ff = 0, fs = 0, fx = 0;
    if (parse_file(path, &cmds, &nc) < 0) {
        printf("%s: cannot parse the file\n", path);
        r->fail++;
        free_cmds(cmds, nc);
        return;
    }
    if (store_open(r) < 0) {
        printf("%s: cannot open a store\n", path);
        r->fail++;
        free_cmds(cmds, nc);
        return;
    }
    for (size_t i = 0; i < nc; i++) {
        cmd *c = &cmds[i];
        if (c->kind == CMD_CLEAR) {
            store_close(r);
            if (store_open(r) < 0)
                break;
            continue;
        }
        if (c->kind == CMD_LOAD) {
            do_load(r, &c->load, path, c->line);
            continue;
        }
        eval_cmd *e = &c->eval;
        if (r->filter && !re_search(r->filter, e->expr))
            continue;
        const char *why = skip_reason(r, e);
        if (why) {
            fs++;
            if (r->verbose)
                printf("SKIP %s:%d %s (%s)\n", path, e->line, e->expr, why);
            continue;
        }
        sbuf msg = {0}, got = {0};
        int ok = run_eval(r, e, &msg, &got);
        known *k = NULL;
        int isk = is_known(r, path, e->line, &k);
        if (ok) {
            fp++;
            if (isk) {
                k->hit = 1;
                printf("NOW PASSING (remove from known failures): %s:%d %s\n", path, e->line,
                       e->expr);
                r->xpass++;
            }
            if (r->verbose)
                printf("PASS %s:%d %s\n", path, e->line, e->expr);
        } else if (isk) {
            k->hit = 1;
            fx++;
            if (r->verbose)
                printf("XFAIL %s:%d %s (%s)\n", path, e->line, e->expr, k->reason);
        } else {
            ff++;
            sbuf exp = {0};
            expected_text(&exp, e);
            printf("FAIL %s:%d: %s\n  expr:     %s\n  expected: %s\n  got:      %s\n", path,
                   e->line, msg.p ? msg.p : "", e->expr, exp.p ? exp.p : "", got.p ? got.p : "");
            free(exp.p);
        }
        free(msg.p);
        free(got.p);
    }
    store_close(r);
    printf("%s: %d passed, %d failed, %d skipped, %d known failures\n", path, fp, ff, fs, fx);
    r->pass += fp;
    r->fail += ff;
    r->skip += fs;
    r->xfail += fx;
    free_cmds(cmds, nc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(runner *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        printf("%s: not found\n", path);
        r->fail++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(r, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".test")) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            if (asprintf(&names[n++], "%s/%s", path, de->d_name) < 0)
                abort();
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        run_file(r, names[i]);
        free(names[i]);
    }
    free(names);
}

static void load_known(runner *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        char *t = trim(line);
        size_t n = strlen(t);
        if (n && t[n - 1] == '\n')
            t[--n] = '\0';
        if (!*t || *t == '#')
            continue;
        char *sp = strpbrk(t, " \t");
        r->known = xrealloc(r->known, (r->nknown + 1) * sizeof *r->known);
        r->known[r->nknown].key = sp ? strndup(t, (size_t)(sp - t)) : xstrdup(t);
        r->known[r->nknown].reason = xstrdup(sp ? trim(sp) : "");
        r->known[r->nknown].hit = 0;
        r->nknown++;
    }
    free(line);
    fclose(f);
}

/* ---- engine API behaviour the scripts cannot express ---- */

typedef struct conc_arg {
    rw_engine *eng;
    int bad;
} conc_arg;

static void *conc_worker(void *p)
{
    conc_arg *c = p;
    for (int i = 0; i < 40; i++) {
        rw_arena *a = rw_arena_new(0, 0);
        rw_result res;
        rw_err err;
        rw_err_init(&err);
        rw_rc rc = rw_engine_range(c->eng,
                                   "sum by (job) (rate(api_total{job=~\"j.*\"}[2m])) * 60",
                                   60000, 600000, 30000, 0, a, &res, &err);
        if (rc != RW_OK || res.nseries != 2 || res.series[0].npoints != 19 ||
            fabs(res.series[0].points[5].v - 1) > 1e-9)
            c->bad++;
        rw_arena_free(a);
    }
    return NULL;
}

static void engine_api_tests(runner *r)
{
    if (store_open(r) < 0) {
        CHECK(0);
        return;
    }
    /* two counters rising by 1 per minute, one per job */
    for (int j = 0; j < 2; j++) {
        rw_label l[2] = {{RW_METRIC_NAME, "api_total"}, {"job", j ? "j2" : "j1"}};
        rw_sample smp[61];
        for (int k = 0; k <= 60; k++) {
            smp[k].t = (int64_t)k * 60000;
            smp[k].v = k;
        }
        rw_append_series as = {.labels = l, .nlabels = 2, .hash = rw_labels_hash(l, 2),
                               .samples = smp, .nsamples = 61};
        rw_append_result ar = {0};
        rw_err err;
        rw_err_init(&err);
        quiet(1);
        CHECK(rw_store_append(r->store, &as, 1, &ar, &err) == RW_OK);
        quiet(0);
    }
    rw_arena *a = rw_arena_new(0, 0);
    rw_result res;
    rw_err err;

    /* errors: parse, type of a range query, bad step */
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "sum(", 0, 0, a, &res, &err), RW_BADREQ);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "api_total[5m]", 0, 60000, 1000, 0, a, &res, &err),
              RW_BADREQ);
    CHECK_MSG(strstr(err.msg, "invalid expression type \"range vector\" for range query") != NULL,
              "%s", err.msg);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "api_total", 0, 60000, 0, 0, a, &res, &err), RW_BADREQ);

    /* scalars: instant gives a scalar, range a one-series matrix */
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "1 + 2", 5000, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_SCALAR && res.scalar == 3 && res.t == 5000);
    rw_err_init(&err);
    CHECK_INT(rw_engine_range(r->eng, "time()", 0, 120000, 60000, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_MATRIX && res.nseries == 1 && res.series[0].nlabels == 0 &&
          res.series[0].npoints == 3 && res.series[0].points[2].v == 120);
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(r->eng, "\"x\"", 0, 0, a, &res, &err), RW_OK);
    CHECK(res.type == RW_VAL_STRING && !strcmp(res.string, "x"));

    /* max_samples */
    rw_engine_opts lo = {.max_samples = 10};
    rw_engine *small = rw_engine_new(r->store, &lo);
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(small, "count_over_time(api_total[1h])", 3600000, 0, a, &res,
                                &err),
              RW_EXEC);
    CHECK_STR(err.msg,
              "query processing would load too many samples into memory in query execution");
    rw_err_init(&err);
    CHECK_INT(rw_engine_instant(small, "api_total", 3600000, 0, a, &res, &err), RW_OK);
    rw_engine_free(small);

    /* timeout: a heavy subquery with a 1 ms budget */
    rw_err_init(&err);
    rw_rc rc = rw_engine_range(r->eng, "max_over_time((vector(1) + time())[1h:1s])", 0, 10000000,
                               1000, 1, a, &res, &err);
    CHECK_INT(rc, RW_TIMEOUT);
    CHECK_MSG(!strncmp(err.msg, "query timed out in ", 19), "%s", err.msg);

    /* one engine, several threads */
    conc_arg ca[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ca[i].eng = r->eng;
        ca[i].bad = 0;
        pthread_create(&th[i], NULL, conc_worker, &ca[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(ca[i].bad, 0);
    }
    rw_arena_free(a);
    store_close(r);
}

int main(int argc, char **argv)
{
    runner r = {0};
    const char *rc_env = getenv("PROMQL_RANGE_CHECK");
    r.range_check = !rc_env || strcmp(rc_env, "0");
    r.verbose = getenv("PROMQL_VERBOSE") != NULL;
    r.filter = getenv("PROMQL_FILTER");
    load_known(&r, "tests/unit/promql_known_failures.txt");
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_path(&r, argv[i]);
    } else {
        run_path(&r, "../shared/conformance/promql");
        run_path(&r, "tests/promql");
    }
    if (argc <= 1 && !r.filter)
        engine_api_tests(&r);
    printf("TOTAL: %d passed, %d failed, %d skipped, %d known failures, %d known now passing\n",
           r.pass, r.fail, r.skip, r.xfail, r.xpass);
    for (size_t i = 0; i < r.nknown; i++) {
        free(r.known[i].key);
        free(r.known[i].reason);
    }
    free(r.known);
    if (quiet_fd >= 0)
        close(quiet_fd);
    t_pass += r.pass;
    t_fail += r.fail;
    TEST_DONE();
}
