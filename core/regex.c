/* regex.c - fully anchored regular expressions in RE2 syntax (the syntax
 * Prometheus configuration is written in: relabel rules, inventory
 * selectors, label_replace), compiled with PCRE2. See regex.h.
 *
 * PCRE2 accepts far more than RE2, and a few RE2 escapes mean something else
 * in PCRE2, so the source is first scanned and translated: constructs RE2
 * rejects (lookaround, backreferences, atomic groups, possessive and nested
 * quantifiers, recursion, callouts, verbs, the x flag, repeat counts over
 * 1000) are rejected here with a message naming the offset; \v (a vertical
 * tab in RE2, a class in PCRE2), \s (RE2 has no \v in it), octal escapes and
 * a literal '{' are rewritten to their PCRE2 equivalents. Then the pattern is
 * wrapped the way Prometheus wraps it, "(?s:" src ")", and compiled with
 * PCRE2_ANCHORED, a trailing \z, PCRE2_DOLLAR_ENDONLY (RE2's '$' without
 * (?m) is end of text), UTF and LF newlines. An unbalanced ')' is rejected:
 * Go would accept "a)|(b" because its wrapping is plain concatenation, but
 * the result ("^(?s:a)|(b)$") is never what the author meant.
 *
 * The shapes configuration uses most (".*", "(.*)", ".+", a plain literal,
 * an alternation of literals) are recognised at compile time and matched
 * without PCRE2; for the rest, the literal prefix of every top-level branch
 * is a prefilter that rejects most non-matching subjects (label names
 * against "__meta_(.+)", metric names against "go_.*|process_.*") before
 * PCRE2. Matching goes
 * through a per-thread rw_regex_md (PCRE2 match data, a match context with
 * the match limits, a JIT stack); a limit hit is an error, never a "no". */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <stdio.h>

#include <locale.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>
#include "labels.h"
#include "text.h"

/* Backtracking budget: RE2 is linear, PCRE2 is not; a pathological pattern
 * fails loudly after this many steps instead of stalling a request. */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u
#define RE2_MAX_REPEAT 1000

enum { K_PCRE, K_ANY, K_ANY1, K_NONEMPTY, K_LITERAL, K_ALTS };

#define MAX_PREFIXES 16

struct rw_regex {
    char *src;         /* as written */
    int kind;
    int ngroups;
    size_t srclen;
    pcre2_code *code;  /* K_PCRE only */
    /* K_ALTS: "a|b|c" or "(a|b|c)" of plain literals, matched by comparison;
       K_PCRE: the literal prefixes one of which every match starts with
       (from each top-level branch), so most non-matching subjects never
       reach PCRE2. n = 0: no such prefilter. */
    char **lits;
    size_t *litlen;
    size_t nlits;
};

struct rw_regex_md {
    int cap;                    /* groups the ovector has room for */
    pcre2_match_data *pmd;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    /* result of the last match: from PCRE2's ovector or the fast paths */
    int matched;
    int from_pcre;
    int ngroups;
    size_t fast[4];
};

/* ---- RE2 syntax check and translation ---- */

typedef struct xlat {
    char *out;
    size_t len, cap;
    int failed;
} xlat;

static void put(xlat *x, const char *s, size_t n)
{
    if (x->failed)
        return;
    if (x->len + n + 1 > x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 64;
        while (nc < x->len + n + 1)
            nc *= 2;
        char *p = realloc(x->out, nc);
        if (!p) {
            x->failed = 1;
            return;
        }
        x->out = p;
        x->cap = nc;
    }
    memcpy(x->out + x->len, s, n);
    x->len += n;
    x->out[x->len] = '\0';
}

static void puts_(xlat *x, const char *s) { put(x, s, strlen(s)); }

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Length of a valid RE2 repeat "{n}", "{n,}", "{n,m}" at s (0 when s does
 * not start one: then '{' is a literal); the bounds go to lo and hi (-1 = none). */
static size_t repeat_len(const char *s, long *lo, long *hi)
{
    const char *p = s + 1;
    if (!is_digit(*p))
        return 0;
    long a = 0, b = -1;
    while (is_digit(*p)) {
        if (a < 100000)
            a = a * 10 + (*p - '0');
        p++;
    }
    if (*p == ',') {
        p++;
        if (is_digit(*p)) {
            b = 0;
            while (is_digit(*p)) {
                if (b < 100000)
                    b = b * 10 + (*p - '0');
                p++;
            }
        }
    } else {
        b = a;
    }
    if (*p != '}')
        return 0;
    *lo = a;
    *hi = b;
    return (size_t)(p + 1 - s);
}

static rw_rc bad(rw_err *err, const char *src, size_t off, const char *what)
{
    rw_err_set(err, RW_BADREQ, "invalid regular expression \"%.100s\" at offset %zu: %s", src,
               off, what);
    if (err)
        err->pos = (int)off;
    return RW_BADREQ;
}

/* Translates one escape at src[i] ('\\'); returns the bytes consumed or 0
 * with err set. in_class: inside [...]. */
static size_t escape(xlat *x, const char *src, size_t i, int in_class, rw_err *err)
{
    char c = src[i + 1];
    char tmp[32];
    switch (c) {
    case '\0':
        bad(err, src, i, "trailing backslash at end of expression");
        return 0;
    case 'a': case 'f': case 't': case 'n': case 'r':
    case 'd': case 'D': case 'w': case 'W':
        put(x, src + i, 2);
        return 2;
    case 'v':
        puts_(x, "\\x{0b}");
        return 2;
    case 's':
        puts_(x, in_class ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]");
        return 2;
    case 'S':
        /* inside a class PCRE2's \S is used: it differs from RE2 only for
           the vertical tab */
        puts_(x, in_class ? "\\S" : "[^\\t\\n\\f\\r ]");
        return 2;
    case 'b': case 'B': case 'A': case 'z':
        if (in_class) {
            bad(err, src, i, "invalid escape sequence inside a character class");
            return 0;
        }
        put(x, src + i, 2);
        return 2;
    case 'p': case 'P': {
        size_t n = 2;
        if (src[i + 2] == '{') {
            const char *e = strchr(src + i + 2, '}');
            if (!e) {
                bad(err, src, i, "invalid character class range");
                return 0;
            }
            n = (size_t)(e - (src + i)) + 1;
        } else if (src[i + 2]) {
            n = 3;
        } else {
            bad(err, src, i, "invalid character class range");
            return 0;
        }
        put(x, src + i, n);
        return n;
    }
    case 'x': {
        size_t n = 2;
        if (src[i + 2] == '{') {
            const char *e = strchr(src + i + 2, '}');
            if (!e) {
                bad(err, src, i, "invalid escape sequence");
                return 0;
            }
            n = (size_t)(e - (src + i)) + 1;
        } else {
            /* RE2: exactly two hex digits */
            for (int k = 2; k < 4; k++)
                if (!strchr("0123456789abcdefABCDEF", src[i + k]) || !src[i + k]) {
                    bad(err, src, i, "invalid escape sequence");
                    return 0;
                }
            n = 4;
        }
        put(x, src + i, n);
        return n;
    }
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        /* RE2: a single non-zero digit would be a backreference (rejected);
           otherwise up to three octal digits */
        size_t n = 1;
        if (c != '0' && !(src[i + 2] >= '0' && src[i + 2] <= '7')) {
            bad(err, src, i, "backreferences are not supported (RE2 syntax)");
            return 0;
        }
        unsigned v = (unsigned)(c - '0');
        while (n < 3 && src[i + 1 + n] >= '0' && src[i + 1 + n] <= '7') {
            v = v * 8 + (unsigned)(src[i + 1 + n] - '0');
            n++;
        }
        snprintf(tmp, sizeof tmp, "\\x{%x}", v);
        puts_(x, tmp);
        return 1 + n;
    }
    case '8': case '9':
        bad(err, src, i, "backreferences are not supported (RE2 syntax)");
        return 0;
    default:
        if ((unsigned char)c < 0x80 && !is_alnum(c)) {
            put(x, src + i, 2); /* escaped punctuation is itself */
            return 2;
        }
        snprintf(tmp, sizeof tmp, "invalid escape sequence \\%c", c);
        bad(err, src, i, (unsigned char)c < 0x80 ? tmp : "invalid escape sequence");
        return 0;
    }
}

/* The inline flags RE2 knows: i, m, s, U and '-'. Returns the length of
 * "(?flags)" or "(?flags:" at s, 0 when it is not a flag group. */
static size_t flag_group(const char *s)
{
    const char *p = s + 2;
    int any = 0;
    while (*p == 'i' || *p == 'm' || *p == 's' || *p == 'U' || *p == '-') {
        p++;
        any = 1;
    }
    if (any && (*p == ')' || *p == ':'))
        return (size_t)(p + 1 - s);
    return 0;
}

static rw_rc translate(const char *src, xlat *x, rw_err *err)
{
    size_t i = 0, n = strlen(src);
    int in_class = 0, depth = 0;
    size_t class_start = 0;
    int quant_ok = 0; /* the previous item can take a quantifier */
    int after_quant = 0;
    while (i < n) {
        char c = src[i];
        if (in_class) {
            if (c == '\\') {
                size_t k = escape(x, src, i, 1, err);
                if (!k)
                    return RW_BADREQ;
                i += k;
                continue;
            }
            if (c == '[' && src[i + 1] == ':') {
                const char *e = strstr(src + i + 2, ":]");
                if (e) {
                    size_t k = (size_t)(e + 2 - (src + i));
                    put(x, src + i, k);
                    i += k;
                    continue;
                }
            }
            if (c == '[' && (src[i + 1] == '.' || src[i + 1] == '=')) {
                put(x, "\\[", 2); /* a literal '[' in RE2, a collating element in PCRE2 */
                i++;
                continue;
            }
            if (c == ']' && i > class_start) {
                in_class = 0;
                quant_ok = 1;
                after_quant = 0;
            }
            put(x, src + i, 1);
            i++;
            continue;
        }
        switch (c) {
        case '\\': {
            if (src[i + 1] == 'Q') {
                const char *e = strstr(src + i + 2, "\\E");
                size_t k = e ? (size_t)(e + 2 - (src + i)) : n - i;
                put(x, src + i, k);
                if (!e)
                    put(x, "\\E", 2);
                i += k;
                quant_ok = 1;
                after_quant = 0;
                continue;
            }
            size_t k = escape(x, src, i, 0, err);
            if (!k)
                return RW_BADREQ;
            quant_ok = 1; /* PCRE2 judges repeated assertions */
            after_quant = 0;
            i += k;
            continue;
        }
        case '[':
            in_class = 1;
            put(x, "[", 1);
            i++;
            if (src[i] == '^') {
                put(x, "^", 1);
                i++;
            }
            class_start = i; /* a ']' right here is a literal */
            if (src[i] == ']') {
                put(x, "\\]", 2);
                i++;
            }
            continue;
        case '(':
            depth++;
            if (src[i + 1] == '*')
                return bad(err, src, i, "missing argument to repetition operator: `*`");
            if (src[i + 1] == '?') {
                const char *p = src + i + 2;
                if (*p == ':') {
                    put(x, "(?:", 3);
                    i += 3;
                } else if ((*p == 'P' && p[1] == '<') || (*p == '<' && p[1] != '=' && p[1] != '!')) {
                    const char *name = p + (*p == 'P' ? 2 : 1);
                    const char *q = name;
                    while (is_alnum(*q) || *q == '_')
                        q++;
                    if (q == name || *q != '>')
                        return bad(err, src, i, "invalid named capture");
                    put(x, "(?<", 3);
                    put(x, name, (size_t)(q + 1 - name));
                    i = (size_t)(q + 1 - src);
                } else {
                    size_t k = flag_group(src + i);
                    if (!k)
                        return bad(err, src, i,
                                   "invalid or unsupported Perl syntax (RE2 has no lookaround, "
                                   "backreferences, atomic groups, recursion or conditionals)");
                    put(x, src + i, k);
                    i += k;
                    if (src[i - 1] == ')') { /* "(?i)": applies onwards, nothing to repeat */
                        depth--;
                        quant_ok = 0;
                        after_quant = 0;
                        continue;
                    }
                }
            } else {
                put(x, "(", 1);
                i++;
            }
            quant_ok = 0;
            after_quant = 0;
            continue;
        case ')':
            if (depth == 0)
                return bad(err, src, i, "unexpected )");
            depth--;
            put(x, ")", 1);
            i++;
            quant_ok = 1;
            after_quant = 0;
            continue;
        case '*': case '+': case '?': {
            if (after_quant && !(c == '?' && after_quant == 1))
                return bad(err, src, i, "invalid nested repetition operator");
            if (!quant_ok && !after_quant)
                return bad(err, src, i, "missing argument to repetition operator");
            /* "x*?" is lazy (allowed once); "x*+" possessive is rejected above */
            if (after_quant && c == '?') {
                put(x, "?", 1);
                i++;
                after_quant = 2;
                continue;
            }
            put(x, src + i, 1);
            i++;
            after_quant = 1;
            quant_ok = 0;
            continue;
        }
        case '{': {
            long lo, hi;
            size_t k = repeat_len(src + i, &lo, &hi);
            if (!k) {
                put(x, "\\{", 2); /* a literal brace in RE2 */
                i++;
                quant_ok = 1;
                after_quant = 0;
                continue;
            }
            if (lo > RE2_MAX_REPEAT || hi > RE2_MAX_REPEAT || (hi >= 0 && hi < lo))
                return bad(err, src, i, "invalid repeat count");
            if (after_quant)
                return bad(err, src, i, "invalid nested repetition operator");
            if (!quant_ok)
                return bad(err, src, i, "missing argument to repetition operator");
            put(x, src + i, k);
            i += k;
            after_quant = 1;
            quant_ok = 0;
            continue;
        }
        case '}':
            put(x, "\\}", 2);
            i++;
            quant_ok = 1;
            after_quant = 0;
            continue;
        case '|':
            put(x, "|", 1);
            i++;
            quant_ok = 0;
            after_quant = 0;
            continue;
        default:
            put(x, src + i, 1);
            i++;
            quant_ok = 1;
            after_quant = 0;
            continue;
        }
    }
    if (in_class)
        return bad(err, src, n, "missing closing ]");
    if (depth)
        return bad(err, src, n, "missing closing )");
    return x->failed ? rw_err_set(err, RW_NOMEM, "out of memory") : RW_OK;
}

/* ---- compile ---- */

static int plain_char(unsigned char c)
{
    return c >= 0x80 || is_alnum(c) || strchr("_-:/,;=@%#!~'\"<>& ", c);
}

static int add_lit(rw_regex *re, const char *p, size_t n)
{
    if (re->nlits == MAX_PREFIXES)
        return -1;
    if (!re->lits) {
        re->lits = calloc(MAX_PREFIXES, sizeof *re->lits);
        re->litlen = calloc(MAX_PREFIXES, sizeof *re->litlen);
        if (!re->lits || !re->litlen)
            return -1;
    }
    if (!(re->lits[re->nlits] = strndup(p, n)))
        return -1;
    re->litlen[re->nlits++] = n;
    return 0;
}

static void free_lits(rw_regex *re)
{
    for (size_t i = 0; i < re->nlits; i++)
        free(re->lits[i]);
    free(re->lits);
    free(re->litlen);
    re->lits = NULL;
    re->litlen = NULL;
    re->nlits = 0;
}

/* "a|b|c" or "(a|b|c)" with plain literal branches: K_ALTS. */
static int try_alts(rw_regex *re, const char *src)
{
    size_t n = strlen(src);
    int group = n >= 2 && src[0] == '(' && src[n - 1] == ')';
    const char *p = src + group, *end = src + n - group;
    if (group && p < end && *p == '?')
        return 0; /* (?...) */
    for (const char *q = p; q < end; q++)
        if (*q != '|' && !plain_char((unsigned char)*q))
            return 0;
    while (1) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *e = bar ? bar : end;
        if (add_lit(re, p, (size_t)(e - p)) < 0) {
            free_lits(re);
            return 0;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    re->kind = K_ALTS;
    re->ngroups = group;
    return 1;
}

/* The literal prefix of each top-level branch of src (as RE2 source); none
 * when a branch has none, when flags could change case, or when there are
 * too many branches. */
static void prefixes(rw_regex *re, const char *src)
{
    if (strstr(src, "(?"))
        return;
    const char *p = src;
    char buf[256];
    for (;;) {
        size_t n = 0;
        if (*p == '^')
            p++;
        while (*p && n < sizeof buf - 1) {
            if (plain_char((unsigned char)*p)) {
                buf[n++] = *p++;
            } else if (*p == '\\' && p[1] && !is_alnum((unsigned char)p[1]) &&
                       (unsigned char)p[1] < 0x80) {
                buf[n++] = p[1];
                p += 2;
            } else {
                break;
            }
        }
        /* a quantifier after the last literal makes it optional */
        if (n && (*p == '*' || *p == '?' || *p == '{'))
            n--;
        if (!n) {
            free_lits(re);
            return;
        }
        if (add_lit(re, buf, n) < 0) {
            free_lits(re);
            return;
        }
        /* the next top-level '|' (outside groups and classes) */
        int depth = 0, in_class = 0;
        while (*p) {
            if (*p == '\\' && p[1]) {
                p += 2;
                continue;
            }
            if (in_class) {
                if (*p == ']')
                    in_class = 0;
            } else if (*p == '[') {
                in_class = 1;
                if (p[1] == '^')
                    p++;
                if (p[1] == ']')
                    p++;
            } else if (*p == '(') {
                depth++;
            } else if (*p == ')') {
                depth--;
            } else if (*p == '|' && depth == 0) {
                break;
            }
            p++;
        }
        if (*p != '|')
            return;
        p++;
    }
}

static int is_literal(const char *s)
{
    for (; *s; s++)
        if (strchr("\\^$.|?*+()[]{}", *s))
            return 0;
    return 1;
}

rw_regex *rw_regex_compile(const char *src, rw_err *err)
{
    if (!src)
        src = "";
    rw_regex *re = calloc(1, sizeof *re);
    if (!re || !(re->src = strdup(src))) {
        free(re);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    if (!rw_utf8_valid(src, strlen(src))) {
        rw_regex_free(re);
        rw_err_set(err, RW_BADREQ, "invalid regular expression: not valid UTF-8");
        return NULL;
    }
    if (strcmp(src, ".*") == 0) {
        re->kind = K_ANY;
        return re;
    }
    if (strcmp(src, "(.*)") == 0) {
        re->kind = K_ANY1;
        re->ngroups = 1;
        return re;
    }
    if (strcmp(src, ".+") == 0) {
        re->kind = K_NONEMPTY;
        return re;
    }
    re->srclen = strlen(src);
    if (is_literal(src)) {
        re->kind = K_LITERAL;
        return re;
    }
    if (try_alts(re, src))
        return re;
    xlat x = {0};
    puts_(&x, "(?s:");
    if (translate(src, &x, err) != RW_OK) {
        free(x.out);
        rw_regex_free(re);
        return NULL;
    }
    puts_(&x, ")\\z");
    if (x.failed) {
        free(x.out);
        rw_regex_free(re);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc)
        pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int ecode;
    PCRE2_SIZE eoff;
    re->code = pcre2_compile((PCRE2_SPTR)x.out, x.len,
                             PCRE2_ANCHORED | PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                 PCRE2_NEVER_BACKSLASH_C,
                             &ecode, &eoff, cc);
    pcre2_compile_context_free(cc);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        /* the offset is in the translated text; near enough for a message */
        size_t off = eoff >= 4 ? (size_t)eoff - 4 : 0;
        if (off > strlen(src))
            off = strlen(src);
        bad(err, src, off, (const char *)msg);
        free(x.out);
        rw_regex_free(re);
        return NULL;
    }
    free(x.out);
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* best effort */
    uint32_t cnt = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &cnt);
    re->ngroups = (int)cnt;
    re->kind = K_PCRE;
    prefixes(re, src);
    return re;
}

void rw_regex_free(rw_regex *re)
{
    if (!re)
        return;
    if (re->code)
        pcre2_code_free(re->code);
    free_lits(re);
    free(re->src);
    free(re);
}

const char *rw_regex_source(const rw_regex *re) { return re->src; }
int rw_regex_ngroups(const rw_regex *re) { return re->ngroups; }

int rw_regex_group_number(const rw_regex *re, const char *name, size_t len)
{
    if (re->kind != K_PCRE || len == 0 || len > 64)
        return -1;
    char buf[65];
    memcpy(buf, name, len);
    buf[len] = '\0';
    int r = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)buf);
    return r > 0 ? r : -1;
}

int rw_regex_is_match_all(const rw_regex *re)
{
    return re->kind == K_ANY || re->kind == K_ANY1;
}

int rw_regex_quick(const rw_regex *re, const char *s, size_t len)
{
    switch (re->kind) {
    case K_ANY:
    case K_ANY1:
        return 1;
    case K_NONEMPTY:
        return len > 0;
    case K_LITERAL:
        return re->srclen == len && memcmp(re->src, s, len) == 0;
    case K_ALTS:
        for (size_t i = 0; i < re->nlits; i++)
            if (re->litlen[i] == len && memcmp(re->lits[i], s, len) == 0)
                return 1;
        return 0;
    }
    if (!re->nlits)
        return -1;
    for (size_t i = 0; i < re->nlits; i++)
        if (re->litlen[i] <= len && memcmp(re->lits[i], s, re->litlen[i]) == 0)
            return -1;
    return 0;
}

void rw_regex_first_bytes(const rw_regex *re, uint8_t set[32])
{
    memset(set, 0, 32);
    switch (re->kind) {
    case K_LITERAL:
        if (re->srclen)
            set[(unsigned char)re->src[0] >> 3] |= (uint8_t)(1u << ((unsigned char)re->src[0] & 7));
        return;
    case K_ALTS:
        break;
    case K_PCRE:
        if (re->nlits)
            break;
        __attribute__((fallthrough)); /* anything may start a match */
    default:
        memset(set, 0xff, 32);
        return;
    }
    for (size_t i = 0; i < re->nlits; i++)
        if (re->litlen[i]) {
            unsigned char c = (unsigned char)re->lits[i][0];
            set[c >> 3] |= (uint8_t)(1u << (c & 7));
        }
}

int rw_regex_cheap(const rw_regex *re, const char *s, size_t len)
{
    if (re->kind != K_PCRE)
        return 1;
    if (!re->nlits)
        return 0;
    for (size_t i = 0; i < re->nlits; i++)
        if (re->litlen[i] <= len && memcmp(re->lits[i], s, re->litlen[i]) == 0)
            return 0;
    return 1; /* the prefilter rejects it */
}

/* ---- match ---- */

rw_regex_md *rw_regex_md_new(int ngroups)
{
    if (ngroups < 0)
        ngroups = 0;
    rw_regex_md *md = calloc(1, sizeof *md);
    if (!md)
        return NULL;
    md->cap = ngroups;
    md->pmd = pcre2_match_data_create((uint32_t)ngroups + 1, NULL);
    md->mctx = pcre2_match_context_create(NULL);
    if (!md->pmd || !md->mctx) {
        rw_regex_md_free(md);
        return NULL;
    }
    pcre2_set_match_limit(md->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(md->mctx, DEPTH_LIMIT);
    md->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (md->jit)
        pcre2_jit_stack_assign(md->mctx, NULL, md->jit);
    return md;
}

void rw_regex_md_free(rw_regex_md *md)
{
    if (!md)
        return;
    if (md->pmd)
        pcre2_match_data_free(md->pmd);
    if (md->mctx)
        pcre2_match_context_free(md->mctx);
    if (md->jit)
        pcre2_jit_stack_free(md->jit);
    free(md);
}

int rw_regex_md_groups(const rw_regex_md *md) { return md->cap; }

int rw_regex_match(const rw_regex *re, rw_regex_md *md, const char *s, size_t len, rw_err *err)
{
    md->from_pcre = 0;
    md->ngroups = 0;
    md->matched = 0;
    if (re->ngroups > md->cap) {
        rw_err_set(err, RW_INTERNAL, "regex match data too small (%d < %d groups)", md->cap,
                   re->ngroups);
        return -1;
    }
    int r = 0;
    switch (re->kind) {
    case K_ANY:
        r = 1;
        break;
    case K_ANY1:
        md->fast[2] = 0;
        md->fast[3] = len;
        md->ngroups = 1;
        r = 1;
        break;
    case K_NONEMPTY:
        r = len > 0;
        break;
    case K_LITERAL:
        r = re->srclen == len && memcmp(re->src, s, len) == 0;
        break;
    case K_ALTS:
        for (size_t i = 0; i < re->nlits && !r; i++)
            r = re->litlen[i] == len && memcmp(re->lits[i], s, len) == 0;
        if (r && re->ngroups) {
            md->fast[2] = 0;
            md->fast[3] = len;
            md->ngroups = 1;
        }
        break;
    default: {
        if (re->nlits) {
            int any = 0;
            for (size_t i = 0; i < re->nlits && !any; i++)
                any = re->litlen[i] <= len && memcmp(re->lits[i], s, re->litlen[i]) == 0;
            if (!any)
                break; /* no branch can match: r = 0 */
        }
        int pr = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md->pmd, md->mctx);
        if (pr >= 0) {
            md->from_pcre = 1;
            md->ngroups = re->ngroups;
            r = 1;
        } else if (pr != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(pr, msg, sizeof msg);
            rw_err_set(err,
                       pr == PCRE2_ERROR_MATCHLIMIT || pr == PCRE2_ERROR_DEPTHLIMIT ||
                               pr == PCRE2_ERROR_JIT_STACKLIMIT
                           ? RW_LIMIT
                           : RW_BADREQ,
                       "regular expression \"%.100s\": %s", re->src, (const char *)msg);
            return -1;
        }
    }
    }
    if (r && !md->from_pcre) {
        md->fast[0] = 0;
        md->fast[1] = len;
    }
    md->matched = r;
    return r;
}

int rw_regex_group(const rw_regex_md *md, int i, size_t *start, size_t *end)
{
    if (!md->matched || i < 0 || i > md->ngroups)
        return 0;
    if (!md->from_pcre) {
        *start = md->fast[2 * i];
        *end = md->fast[2 * i + 1];
        return 1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md->pmd);
    if (ov[2 * i] == PCRE2_UNSET)
        return 0;
    *start = ov[2 * i];
    *end = ov[2 * i + 1];
    return 1;
}

/* ---- Go's Regexp.Expand ---- */

/* The C.UTF-8 locale for Unicode character classes in template names;
 * created once per process, read-only afterwards. */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static void utf8_locale_init(void) { utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

static locale_t utf8_loc(void)
{
    pthread_once(&utf8_once, utf8_locale_init);
    return utf8_locale;
}

/* unicode.IsLetter || unicode.IsDigit || '_' */
static size_t name_char(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return (is_alnum(c) || c == '_') ? 1 : 0;
    uint32_t cp;
    size_t k = rw_utf8_get(s, n, &cp);
    locale_t loc = utf8_loc();
    if (loc && (iswalpha_l((wint_t)cp, loc) || iswdigit_l((wint_t)cp, loc)))
        return k;
    return 0;
}

rw_rc rw_regex_expand(const rw_regex *re, const rw_regex_md *md, const char *tmpl, size_t tlen,
                      const char *subj, rw_buf *out)
{
    size_t i = 0;
    while (i < tlen) {
        const char *d = memchr(tmpl + i, '$', tlen - i);
        if (!d)
            break;
        size_t di = (size_t)(d - tmpl);
        rw_buf_append(out, tmpl + i, di - i);
        i = di + 1;
        if (i < tlen && tmpl[i] == '$') {
            rw_buf_putc(out, '$');
            i++;
            continue;
        }
        /* extract: name or {name} */
        size_t p = i;
        int brace = 0;
        if (p < tlen && tmpl[p] == '{') {
            brace = 1;
            p++;
        }
        size_t ns = p, k;
        while (p < tlen && (k = name_char(tmpl + p, tlen - p)) > 0)
            p += k;
        size_t ne = p;
        int ok = ne > ns;
        if (ok && brace) {
            if (p < tlen && tmpl[p] == '}')
                p++;
            else
                ok = 0;
        }
        if (!ok) { /* malformed: the '$' is literal text */
            rw_buf_putc(out, '$');
            continue;
        }
        i = p;
        long num = 0;
        for (size_t q = ns; q < ne; q++) {
            if (tmpl[q] < '0' || tmpl[q] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (tmpl[q] - '0');
        }
        if (tmpl[ns] == '0' && ne - ns > 1)
            num = -1;
        if (num < 0)
            num = rw_regex_group_number(re, tmpl + ns, ne - ns);
        size_t gs, ge;
        if (num >= 0 && num <= INT32_MAX && rw_regex_group(md, (int)num, &gs, &ge))
            rw_buf_append(out, subj + gs, ge - gs);
    }
    rw_buf_append(out, tmpl + i, tlen - i);
    return out->failed ? RW_NOMEM : RW_OK;
}
