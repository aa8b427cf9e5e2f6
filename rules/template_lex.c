/* template_lex.c - the lexer of alert templates, state for state Go's
 * text/template/parse/lex.go: text up to "{{", trim markers ("{{- " and
 * " -}}" with any ASCII space), comments that must close right before the
 * delimiter, and inside actions the same tokens (identifiers, keywords,
 * fields, variables, numbers, quoted / raw / character literals, := and =,
 * pipes, parentheses) with the same error texts ("unclosed action",
 * "bad character U+002B '+'", ...). The parser (template.c) pulls one item
 * at a time through tmpl_lex_item(). */
#include "template_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/text.h"

#define EOF_R (-1)

int32_t tmpl_decode(const char *s, size_t n, size_t *w)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) {
        *w = 0;
        return EOF_R;
    }
    if (p[0] < 0x80) {
        *w = 1;
        return p[0];
    }
    int need;
    int32_t cp, min;
    if ((p[0] & 0xe0) == 0xc0) {
        need = 1, cp = p[0] & 0x1f, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        need = 2, cp = p[0] & 0x0f, min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        need = 3, cp = p[0] & 0x07, min = 0x10000;
    } else {
        *w = 1;
        return 0xfffd;
    }
    if ((size_t)need >= n) {
        *w = 1;
        return 0xfffd;
    }
    for (int i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *w = 1;
            return 0xfffd;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        *w = 1;
        return 0xfffd;
    }
    *w = (size_t)need + 1;
    return cp;
}

static int is_space(int32_t r) { return r == ' ' || r == '\t' || r == '\r' || r == '\n'; }

/* unicode.IsLetter / IsDigit: exact for ASCII; beyond it, everything but
 * the common punctuation, symbol and space blocks counts as a letter (rule
 * templates name ASCII fields; this only decides where a name ends). */
static int uni_letter(int32_t r)
{
    if (r < 0x80)
        return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
    if (r == 0xfffd)
        return 0;
    if (r < 0xc0)
        return r == 0xaa || r == 0xb5 || r == 0xba;
    if (r == 0xd7 || r == 0xf7)
        return 0;
    if (r >= 0x2000 && r <= 0x2bff)
        return 0;
    if (r >= 0x3000 && r <= 0x303f)
        return 0;
    if ((r >= 0xff00 && r <= 0xff0f) || (r >= 0xfff0))
        return 0;
    return 1;
}

static int is_alnum(int32_t r) { return r == '_' || (r >= '0' && r <= '9') || uni_letter(r); }

static int32_t lnext(lexer *l)
{
    if (l->pos >= l->len) {
        l->width = 0;
        return EOF_R;
    }
    size_t w;
    int32_t r = tmpl_decode(l->in + l->pos, l->len - l->pos, &w);
    l->width = w;
    l->pos += w;
    if (r == '\n')
        l->line++;
    return r;
}

static void lbackup(lexer *l)
{
    l->pos -= l->width;
    if (l->width == 1 && l->in[l->pos] == '\n')
        l->line--;
}

static int32_t lpeek(lexer *l)
{
    int32_t r = lnext(l);
    lbackup(l);
    return r;
}

static int starts(const lexer *l, size_t at, const char *s)
{
    size_t n = strlen(s);
    return at <= l->len && l->len - at >= n && memcmp(l->in + at, s, n) == 0;
}

static int count_nl(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '\n';
    return c;
}

static item lemit(lexer *l, itype t)
{
    item it = {t, (int)l->start, l->in + l->start, l->pos - l->start, l->start_line};
    l->start = l->pos;
    l->start_line = l->line;
    return it;
}

static void lignore(lexer *l)
{
    l->line += count_nl(l->in + l->start, l->pos - l->start);
    l->start = l->pos;
    l->start_line = l->line;
}

static item lerror(lexer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static item lerror(lexer *l, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *m = rw_arena_strdup(l->a, msg);
    item it = {I_ERROR, (int)l->start, m ? m : "out of memory", m ? strlen(m) : 13,
               l->start_line};
    l->state = S_DONE;
    return it;
}

static int accept(lexer *l, const char *valid)
{
    int32_t r = lnext(l);
    if (r != EOF_R && r < 0x80 && strchr(valid, (int)r))
        return 1;
    lbackup(l);
    return 0;
}

static void accept_run(lexer *l, const char *valid)
{
    while (accept(l, valid)) {
    }
}

static int has_left_trim(const lexer *l, size_t at)
{
    return l->len - at >= 2 && l->in[at] == '-' && is_space((unsigned char)l->in[at + 1]);
}

static int has_right_trim(const lexer *l, size_t at)
{
    return l->len - at >= 2 && is_space((unsigned char)l->in[at]) && l->in[at + 1] == '-';
}

/* At "}}" or " -}}"; *trim set for the latter. */
static int at_right_delim(const lexer *l, int *trim)
{
    if (has_right_trim(l, l->pos) && starts(l, l->pos + 2, "}}")) {
        *trim = 1;
        return 1;
    }
    *trim = 0;
    return starts(l, l->pos, "}}");
}

static size_t left_trim_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    return i;
}

static int at_terminator(lexer *l)
{
    int32_t r = lpeek(l);
    if (is_space(r))
        return 1;
    switch (r) {
    case EOF_R:
    case '.':
    case ',':
    case '|':
    case ':':
    case ')':
    case '(':
    case '}':
        return 1;
    }
    return 0;
}

/* Go's %#U: "U+0026 '&'". */
static void fmt_rune(int32_t r, char *out, size_t cap)
{
    char enc[5] = {0};
    if (r >= 0x20 && r != 0x7f && r != 0xfffd && r <= 0x10ffff) {
        size_t n = rw_utf8_put(enc, (uint32_t)r);
        enc[n] = 0;
        snprintf(out, cap, "U+%04X '%s'", (unsigned)r, enc);
    } else if (r == 0xfffd) {
        snprintf(out, cap, "U+FFFD '\xef\xbf\xbd'");
    } else {
        snprintf(out, cap, "U+%04X", (unsigned)r);
    }
}

static itype keyword(const char *s, size_t n)
{
    static const struct {
        const char *w;
        itype t;
    } kw[] = {{"block", I_BLOCK}, {"break", I_BREAK}, {"continue", I_CONTINUE},
              {"define", I_DEFINE}, {"else", I_ELSE}, {"end", I_END}, {"if", I_IF},
              {"range", I_RANGE}, {"nil", I_NIL}, {"template", I_TEMPLATE}, {"with", I_WITH}};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strlen(kw[i].w) == n && memcmp(kw[i].w, s, n) == 0)
            return kw[i].t;
    return I_ERROR;
}

static int scan_number(lexer *l)
{
    accept(l, "+-");
    const char *digits = "0123456789_";
    int hex = 0;
    if (accept(l, "0")) {
        if (accept(l, "xX"))
            digits = "0123456789abcdefABCDEF_", hex = 1;
        else if (accept(l, "oO"))
            digits = "01234567_";
        else if (accept(l, "bB"))
            digits = "01_";
    }
    accept_run(l, digits);
    if (accept(l, "."))
        accept_run(l, digits);
    if (strlen(digits) == 11 && accept(l, "eE")) {
        accept(l, "+-");
        accept_run(l, "0123456789_");
    }
    if (hex && accept(l, "pP")) {
        accept(l, "+-");
        accept_run(l, "0123456789_");
    }
    accept(l, "i");
    if (is_alnum(lpeek(l))) {
        lnext(l);
        return 0;
    }
    return 1;
}

/* One step of the state machine; returns 1 when *out holds an item. */
static int lex_step(lexer *l, item *out)
{
    switch (l->state) {
    case S_DONE:
        *out = lemit(l, I_EOF);
        return 1;
    case S_TEXT: {
        l->width = 0;
        const char *x = NULL;
        for (size_t i = l->pos; i + 1 < l->len; i++)
            if (l->in[i] == '{' && l->in[i + 1] == '{') {
                x = l->in + i;
                break;
            }
        if (x) {
            l->pos = (size_t)(x - l->in);
            size_t trim = 0;
            if (has_left_trim(l, l->pos + 2)) {
                size_t s = l->start, e = l->pos;
                while (e > s && is_space((unsigned char)l->in[e - 1]))
                    e--;
                trim = l->pos - e;
            }
            l->pos -= trim;
            int got = 0;
            if (l->pos > l->start) {
                l->line += count_nl(l->in + l->start, l->pos - l->start);
                *out = lemit(l, I_TEXT);
                got = 1;
            }
            l->pos += trim;
            lignore(l);
            l->state = S_LDELIM;
            return got;
        }
        l->pos = l->len;
        if (l->pos > l->start) {
            l->line += count_nl(l->in + l->start, l->pos - l->start);
            *out = lemit(l, I_TEXT);
            return 1;
        }
        *out = lemit(l, I_EOF);
        l->state = S_DONE;
        return 1;
    }
    case S_LDELIM: {
        l->pos += 2;
        int trim = has_left_trim(l, l->pos);
        size_t after = trim ? 2 : 0;
        if (starts(l, l->pos + after, "/*")) {
            l->pos += after;
            lignore(l);
            l->state = S_COMMENT;
            return 0;
        }
        *out = lemit(l, I_LDELIM);
        l->pos += after;
        lignore(l);
        l->paren = 0;
        l->state = S_INSIDE;
        return 1;
    }
    case S_COMMENT: {
        l->pos += 2;
        const char *e = NULL;
        for (size_t i = l->pos; i + 1 < l->len; i++)
            if (l->in[i] == '*' && l->in[i + 1] == '/') {
                e = l->in + i;
                break;
            }
        if (!e) {
            *out = lerror(l, "unclosed comment");
            return 1;
        }
        l->pos = (size_t)(e - l->in) + 2;
        int trim;
        if (!at_right_delim(l, &trim)) {
            *out = lerror(l, "comment ends before closing delimiter");
            return 1;
        }
        if (trim)
            l->pos += 2;
        l->pos += 2;
        if (trim)
            l->pos += left_trim_len(l->in + l->pos, l->len - l->pos);
        lignore(l);
        l->state = S_TEXT;
        return 0;
    }
    case S_RDELIM: {
        int trim = has_right_trim(l, l->pos);
        if (trim) {
            l->pos += 2;
            lignore(l);
        }
        l->pos += 2;
        *out = lemit(l, I_RDELIM);
        if (trim) {
            l->pos += left_trim_len(l->in + l->pos, l->len - l->pos);
            lignore(l);
        }
        l->state = S_TEXT;
        return 1;
    }
    case S_SPACE: {
        int n = 0;
        while (is_space(lpeek(l))) {
            lnext(l);
            n++;
        }
        if (has_right_trim(l, l->pos - 1) && starts(l, l->pos - 1 + 2, "}}")) {
            lbackup(l);
            if (n == 1) {
                l->state = S_RDELIM;
                return 0;
            }
        }
        *out = lemit(l, I_SPACE);
        l->state = S_INSIDE;
        return 1;
    }
    case S_INSIDE:
        break;
    }

    /* inside an action */
    if (l->rparen_error) {
        *out = lerror(l, "unexpected right paren U+0029 ')'");
        return 1;
    }
    int trim;
    if (at_right_delim(l, &trim)) {
        if (l->paren == 0) {
            l->state = S_RDELIM;
            return 0;
        }
        *out = lerror(l, "unclosed left paren");
        return 1;
    }
    int32_t r = lnext(l);
    if (r == EOF_R) {
        *out = lerror(l, "unclosed action");
        return 1;
    }
    if (is_space(r)) {
        lbackup(l);
        l->state = S_SPACE;
        return 0;
    }
    switch (r) {
    case '=':
        *out = lemit(l, I_ASSIGN);
        return 1;
    case ':':
        if (lnext(l) != '=') {
            *out = lerror(l, "expected :=");
            return 1;
        }
        *out = lemit(l, I_DECLARE);
        return 1;
    case '|':
        *out = lemit(l, I_PIPE);
        return 1;
    case '"':
        for (;;) {
            int32_t c = lnext(l);
            if (c == '\\') {
                c = lnext(l);
                if (c != EOF_R && c != '\n')
                    continue;
            }
            if (c == EOF_R || c == '\n') {
                *out = lerror(l, "unterminated quoted string");
                return 1;
            }
            if (c == '"')
                break;
        }
        *out = lemit(l, I_STRING);
        return 1;
    case '`':
        for (;;) {
            int32_t c = lnext(l);
            if (c == EOF_R) {
                *out = lerror(l, "unterminated raw quoted string");
                return 1;
            }
            if (c == '`')
                break;
        }
        *out = lemit(l, I_RAWSTRING);
        return 1;
    case '\'':
        for (;;) {
            int32_t c = lnext(l);
            if (c == '\\') {
                c = lnext(l);
                if (c != EOF_R && c != '\n')
                    continue;
            }
            if (c == EOF_R || c == '\n') {
                *out = lerror(l, "unterminated character constant");
                return 1;
            }
            if (c == '\'')
                break;
        }
        *out = lemit(l, I_CHARCONST);
        return 1;
    case '$':
    case '.': {
        itype t = r == '$' ? I_VARIABLE : I_FIELD;
        if (r == '.' && l->pos < l->len && l->in[l->pos] >= '0' && l->in[l->pos] <= '9') {
            lbackup(l);
            goto number;
        }
        if (at_terminator(l)) {
            *out = lemit(l, r == '$' ? I_VARIABLE : I_DOT);
            return 1;
        }
        int32_t c;
        for (;;) {
            c = lnext(l);
            if (!is_alnum(c)) {
                lbackup(l);
                break;
            }
        }
        if (!at_terminator(l)) {
            char rb[32];
            fmt_rune(c, rb, sizeof rb);
            *out = lerror(l, "bad character %s", rb);
            return 1;
        }
        *out = lemit(l, t);
        return 1;
    }
    case '(':
        *out = lemit(l, I_LPAREN);
        l->paren++;
        return 1;
    case ')':
        *out = lemit(l, I_RPAREN);
        l->paren--;
        if (l->paren < 0)
            l->rparen_error = 1; /* Go emits the ')' first, then the error */
        return 1;
    }
    if (r == '+' || r == '-' || (r >= '0' && r <= '9')) {
        lbackup(l);
    number:
        if (!scan_number(l)) {
            *out = lerror(l, "bad number syntax: \"%.*s\"", (int)(l->pos - l->start),
                          l->in + l->start);
            return 1;
        }
        int32_t sign = lpeek(l);
        if (sign == '+' || sign == '-') {
            if (!scan_number(l) || l->in[l->pos - 1] != 'i') {
                *out = lerror(l, "bad number syntax: \"%.*s\"", (int)(l->pos - l->start),
                              l->in + l->start);
                return 1;
            }
            *out = lemit(l, I_COMPLEX);
            return 1;
        }
        *out = lemit(l, I_NUMBER);
        return 1;
    }
    if (is_alnum(r)) {
        int32_t c;
        for (;;) {
            c = lnext(l);
            if (!is_alnum(c)) {
                lbackup(l);
                break;
            }
        }
        if (!at_terminator(l)) {
            char rb[32];
            fmt_rune(c, rb, sizeof rb);
            *out = lerror(l, "bad character %s", rb);
            return 1;
        }
        const char *w = l->in + l->start;
        size_t n = l->pos - l->start;
        itype k = keyword(w, n);
        if (k != I_ERROR)
            *out = lemit(l, k);
        else if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0))
            *out = lemit(l, I_BOOL);
        else
            *out = lemit(l, I_IDENT);
        return 1;
    }
    if (r < 0x80 && r >= 0x20 && r != 0x7f) {
        *out = lemit(l, I_CHAR);
        return 1;
    }
    char rb[32];
    fmt_rune(r, rb, sizeof rb);
    *out = lerror(l, "unrecognized character in action: %s", rb);
    return 1;
}

item tmpl_lex_item(lexer *l)
{
    item it;
    for (;;)
        if (lex_step(l, &it))
            return it;
}

