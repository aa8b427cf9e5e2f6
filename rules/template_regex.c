/* template_regex.c - regular expressions in alert templates: match and
 * reReplaceAll, with Go's regexp semantics (RE2 syntax, unanchored,
 * leftmost-first) compiled by PCRE2. Perl-only syntax that RE2 refuses
 * (look-around, back-references, atomic groups, possessive quantifiers) is
 * refused here with Go's message; PCRE2's errors for the common mistakes
 * are reworded as Go words them. ReplaceAllString follows regexp.go: an
 * empty match right after a match is not replaced, the scan advances one
 * rune past empty matches, and the replacement expands $1, ${1}, $name,
 * ${name} and $$ as Regexp.Expand does. Literal patterns are compiled once
 * at parse time (template.c); others per call. */
#include "template_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static rw_rc ferr(texec *x, const char *fn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static rw_rc ferr(texec *x, const char *fn, const char *fmt, ...)
{
    char msg[RW_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tmpl_fail(x, RW_EXEC, "error calling %s: %s", fn, msg);
}

/* Refuses the Perl syntax RE2 does not have, with Go's messages. */
static int re2_check(const char *p, size_t n, char *msg, size_t cap)
{
    int cls = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 < n && !cls && p[i + 1] >= '1' && p[i + 1] <= '9') {
                snprintf(msg, cap, "invalid escape sequence: `\\%c`", p[i + 1]);
                return -1;
            }
            if (i + 1 < n && p[i + 1] == 'Q') { /* \Q...\E is literal */
                const char *e = NULL;
                for (size_t k = i + 2; k + 1 < n; k++)
                    if (p[k] == '\\' && p[k + 1] == 'E') {
                        e = p + k;
                        break;
                    }
                i = e ? (size_t)(e - p) + 1 : n;
                continue;
            }
            i++;
            continue;
        }
        if (cls) {
            if (c == ']')
                cls = 0;
            continue;
        }
        if (c == '[') {
            cls = 1;
            if (i + 1 < n && p[i + 1] == '^')
                i++;
            if (i + 1 < n && p[i + 1] == ']')
                i++;
            continue;
        }
        if (c == '(' && i + 2 < n && p[i + 1] == '?') {
            char d = p[i + 2];
            int bad = d == '=' || d == '!' || d == '>' || d == '|' || d == '#' || d == '(' ||
                      d == 'R' || d == '&' || (d >= '0' && d <= '9') || d == '+' ||
                      (d == '<' && i + 3 < n && (p[i + 3] == '=' || p[i + 3] == '!'));
            if (bad) {
                size_t l = d == '<' ? 4 : 3;
                snprintf(msg, cap, "invalid or unsupported Perl syntax: `%.*s`", (int)l, p + i);
                return -1;
            }
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n && p[i + 1] == '+') {
            snprintf(msg, cap, "invalid nested repetition operator: `%c+`", c);
            return -1;
        }
    }
    return 0;
}

void *tmpl_regex_compile(const char *pat, size_t len, char *msg, size_t cap)
{
    /* Go's text: "error parsing regexp: CODE: `EXPR`", EXPR being the
     * offending fragment for syntax RE2 lacks, the whole pattern otherwise */
    char why[200];
    if (re2_check(pat, len, why, sizeof why) < 0) {
        snprintf(msg, cap, "error parsing regexp: %s", why);
        return NULL;
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY |
                                       PCRE2_NEVER_BACKSLASH_C,
                                   &code, &off, NULL);
    if (!re) {
        /* Go's wording for the common mistakes, PCRE2's for the rest */
        static const struct {
            int code;
            const char *go;
        } words[] = {{PCRE2_ERROR_MISSING_CLOSING_PARENTHESIS, "missing closing )"},
                     {PCRE2_ERROR_UNMATCHED_CLOSING_PARENTHESIS, "unexpected )"},
                     {PCRE2_ERROR_MISSING_SQUARE_BRACKET, "missing closing ]"},
                     {PCRE2_ERROR_QUANTIFIER_INVALID, "missing argument to repetition operator"},
                     {PCRE2_ERROR_END_BACKSLASH, "trailing backslash at end of expression"},
                     {PCRE2_ERROR_CLASS_RANGE_ORDER, "invalid character class range"}};
        const char *what = NULL;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (words[i].code == code)
                what = words[i].go;
        PCRE2_UCHAR m[160];
        pcre2_get_error_message(code, m, sizeof m);
        char detail[220];
        if (!what) {
            snprintf(detail, sizeof detail, "%s (at offset %zu)", (char *)m, (size_t)off);
            what = detail;
        }
        int bq = !memchr(pat, '`', len);
        snprintf(msg, cap, "error parsing regexp: %s: %s%.*s%s", what, bq ? "`" : "\"",
                 (int)len, pat, bq ? "`" : "\"");
        return NULL;
    }
    return re;
}

void tmpl_regex_free(void *re) { pcre2_code_free(re); }

/* The pattern's compiled form: from the parse when it was a literal. */
static pcre2_code *get_regex(texec *x, const char *fn, const tnode *lit, const tv *pat, int *owned,
                             int panics)
{
    *owned = 0;
    if (lit && lit->re)
        return lit->re;
    char msg[RW_ERR_MSG];
    pcre2_code *re = tmpl_regex_compile(pat->u.s.p, pat->u.s.n, msg, sizeof msg);
    if (!re) {
        if (panics) { /* regexp.MustCompile's panic text */
            rw_buf q;
            rw_buf_init(&q, 1024);
            if (!memchr(pat->u.s.p, '`', pat->u.s.n)) {
                rw_buf_putc(&q, '`');
                rw_buf_append(&q, pat->u.s.p, pat->u.s.n);
                rw_buf_putc(&q, '`');
            } else {
                tmpl_quote(&q, pat->u.s.p, pat->u.s.n, 0);
            }
            ferr(x, fn, "regexp: Compile(%s): %s", q.p ? q.p : "", msg);
            rw_buf_free(&q);
        } else {
            ferr(x, fn, "%s", msg);
        }
        return NULL;
    }
    *owned = 1;
    return re;
}

static const tnode *pattern_literal(texec *x)
{
    const tnode *cmd = x->at;
    if (cmd && cmd->type == N_CMD && cmd->nkids >= 2 && cmd->kids[1]->type == N_STRING)
        return cmd->kids[1];
    return NULL;
}

/* Match at or after start: 1 with ov set, 0 none, -1 error. */
static int re_exec(texec *x, pcre2_code *re, const char *s, size_t n, size_t start,
                   pcre2_match_data *md)
{
    int r = pcre2_match(re, (PCRE2_SPTR)s, n, start, 0, md, NULL);
    if (r >= 0)
        return 1;
    if (r == PCRE2_ERROR_NOMATCH)
        return 0;
    return -1;
}

rw_rc tmpl_f_match(texec *x, const tv *a, size_t n, tv *out)
{
    int owned;
    pcre2_code *re = get_regex(x, "match", pattern_literal(x), &a[0], &owned, 0);
    if (!re)
        return RW_EXEC;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int r = md ? re_exec(x, re, a[1].u.s.p, a[1].u.s.n, 0, md) : -1;
    pcre2_match_data_free(md);
    if (owned)
        pcre2_code_free(re);
    if (r < 0)
        return ferr(x, "match", "regular expression match failed (match limit)");
    out->k = TV_BOOL;
    out->u.b = r;
    return RW_OK;
}

/* Go's Regexp.expand: $1, ${1}, $name, ${name}, $$. */
static void expand(rw_buf *b, pcre2_code *re, const char *tpl, size_t tn, const char *src,
                   const PCRE2_SIZE *ov, int ngroups)
{
    size_t i = 0;
    while (i < tn) {
        const char *d = memchr(tpl + i, '$', tn - i);
        if (!d) {
            rw_buf_append(b, tpl + i, tn - i);
            return;
        }
        size_t at = (size_t)(d - tpl);
        rw_buf_append(b, tpl + i, at - i);
        i = at + 1;
        if (i < tn && tpl[i] == '$') {
            rw_buf_putc(b, '$');
            i++;
            continue;
        }
        size_t k = i;
        int brace = 0;
        if (k < tn && tpl[k] == '{') {
            brace = 1;
            k++;
        }
        size_t ns = k;
        while (k < tn) {
            size_t w;
            int32_t r = tmpl_decode(tpl + k, tn - k, &w);
            if (!(r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') ||
                  (r >= 'A' && r <= 'Z') || (r >= 0x80 && r != 0xfffd && r >= 0)))
                break;
            k += w;
        }
        size_t nl = k - ns;
        if (nl == 0 || (brace && (k >= tn || tpl[k] != '}'))) {
            rw_buf_putc(b, '$'); /* malformed: the $ is text */
            continue;
        }
        const char *name = tpl + ns;
        if (brace)
            k++;
        i = k;
        long num = 0;
        for (size_t q = 0; q < nl; q++) {
            if (name[q] < '0' || name[q] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name[q] - '0');
        }
        if (name[0] == '0' && nl > 1)
            num = -1;
        if (num < 0) {
            char nm[128];
            if (nl >= sizeof nm)
                continue;
            memcpy(nm, name, nl);
            nm[nl] = 0;
            int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nm);
            if (g <= 0)
                continue;
            num = g;
        }
        if (num <= ngroups && ov[2 * num] != PCRE2_UNSET)
            rw_buf_append(b, src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
}

rw_rc tmpl_f_re_replace_all(texec *x, const tv *a, size_t n, tv *out)
{
    int owned;
    pcre2_code *re = get_regex(x, "reReplaceAll", pattern_literal(x), &a[0], &owned, 1);
    if (!re)
        return RW_EXEC;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        if (owned)
            pcre2_code_free(re);
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    }
    uint32_t cap = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cap);
    const char *src = a[2].u.s.p, *tpl = a[1].u.s.p;
    size_t len = a[2].u.s.n, tn = a[1].u.s.n;
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    size_t last_end = 0, search = 0;
    rw_rc rc = RW_OK;
    while (search <= len) {
        int r = re_exec(x, re, src, len, search, md);
        if (r < 0) {
            rc = ferr(x, "reReplaceAll", "regular expression match failed (match limit)");
            break;
        }
        if (r == 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        rw_buf_append(&b, src + last_end, m0 > last_end ? m0 - last_end : 0);
        if (m1 > last_end || m0 == 0)
            expand(&b, re, tpl, tn, src, ov, (int)cap);
        last_end = m1;
        size_t w = 0;
        if (search < len)
            tmpl_decode(src + search, len - search, &w);
        if (search + w > m1)
            search += w;
        else if (search + 1 > m1)
            search++;
        else
            search = m1;
        if (b.failed)
            break;
    }
    if (rc == RW_OK && last_end < len)
        rw_buf_append(&b, src + last_end, len - last_end);
    pcre2_match_data_free(md);
    if (owned)
        pcre2_code_free(re);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

