/* lex.c - the PromQL tokenizer. rw_promql_parse() (parse.c) hands the query
 * text here first; the lexer splits it into tokens (identifiers, keywords,
 * numbers, durations, decoded strings, operators and punctuation) in the
 * parse arena and the recursive-descent parser then walks that array.
 *
 * Like SQLite's tokenize.c it is driven by a character-class table and a
 * keyword table. It tracks just enough context to mirror Prometheus' lexer:
 * inside `{...}` only label names, strings, matcher operators and commas are
 * valid and ':' is not part of a name; inside `[...]` ':' separates a
 * subquery's range from its step; parentheses, brackets and braces are
 * balanced here so that "unclosed left parenthesis" and friends come out as
 * lexical errors at the right byte. An error ends the token array with an
 * RW_TK_ERROR token carrying the message. */
#include "lex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/labels.h"
#include "core/text.h"
#include "core/timeutil.h"

/* Character classes. */
enum {
    CC_SPACE = 1 << 0, /* ' ' \t \n \r */
    CC_DIGIT = 1 << 1, /* 0-9 */
    CC_ALPHA = 1 << 2, /* a-z A-Z _ : may start an identifier */
    CC_HEX = 1 << 3,   /* 0-9 a-f A-F */
    CC_OPER = 1 << 4   /* single-character punctuation and operators */
};

static const unsigned char cclass[256] = {
    [' '] = CC_SPACE, ['\t'] = CC_SPACE, ['\n'] = CC_SPACE, ['\r'] = CC_SPACE,
    ['0' ... '9'] = CC_DIGIT | CC_HEX,
    ['a' ... 'f'] = CC_ALPHA | CC_HEX, ['g' ... 'z'] = CC_ALPHA,
    ['A' ... 'F'] = CC_ALPHA | CC_HEX, ['G' ... 'Z'] = CC_ALPHA,
    ['_'] = CC_ALPHA,
    ['('] = CC_OPER, [')'] = CC_OPER, ['{'] = CC_OPER, ['}'] = CC_OPER, ['['] = CC_OPER,
    [']'] = CC_OPER, [','] = CC_OPER, ['@'] = CC_OPER, ['+'] = CC_OPER, ['-'] = CC_OPER,
    ['*'] = CC_OPER, ['/'] = CC_OPER, ['%'] = CC_OPER, ['^'] = CC_OPER,
};

#define IS(c, cls) (cclass[(unsigned char)(c)] & (cls))

/* Keywords, matched case-insensitively against a whole identifier. */
static const struct {
    const char *word;
    rw_keyword kw;
    rw_aggop agg;
} keywords[] = {
    {"and", RW_KW_AND, 0},
    {"or", RW_KW_OR, 0},
    {"unless", RW_KW_UNLESS, 0},
    {"atan2", RW_KW_ATAN2, 0},
    {"by", RW_KW_BY, 0},
    {"without", RW_KW_WITHOUT, 0},
    {"on", RW_KW_ON, 0},
    {"ignoring", RW_KW_IGNORING, 0},
    {"group_left", RW_KW_GROUP_LEFT, 0},
    {"group_right", RW_KW_GROUP_RIGHT, 0},
    {"bool", RW_KW_BOOL, 0},
    {"offset", RW_KW_OFFSET, 0},
    {"start", RW_KW_START, 0},
    {"end", RW_KW_END, 0},
    {"sum", RW_KW_AGG, RW_AGG_SUM},
    {"avg", RW_KW_AGG, RW_AGG_AVG},
    {"min", RW_KW_AGG, RW_AGG_MIN},
    {"max", RW_KW_AGG, RW_AGG_MAX},
    {"count", RW_KW_AGG, RW_AGG_COUNT},
    {"stddev", RW_KW_AGG, RW_AGG_STDDEV},
    {"stdvar", RW_KW_AGG, RW_AGG_STDVAR},
    {"topk", RW_KW_AGG, RW_AGG_TOPK},
    {"bottomk", RW_KW_AGG, RW_AGG_BOTTOMK},
    {"quantile", RW_KW_AGG, RW_AGG_QUANTILE},
    {"count_values", RW_KW_AGG, RW_AGG_COUNT_VALUES},
    {"group", RW_KW_AGG, RW_AGG_GROUP},
    {"limitk", RW_KW_AGG, RW_AGG_LIMITK},
    {"limit_ratio", RW_KW_AGG, RW_AGG_LIMIT_RATIO},
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int word_eq(const char *w, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (w[i] == '\0' || lower((unsigned char)s[i]) != w[i])
            return 0;
    return w[i] == '\0';
}

typedef struct lexer {
    const char *in;
    size_t n, i;
    rw_arena *a;
    rw_token *t;
    size_t nt, cap;
    int paren, brace, bracket; /* open counts */
} lexer;

static rw_token *push(lexer *l, rw_tok_kind k, size_t pos, size_t end)
{
    if (l->nt == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        rw_token *nt = rw_arena_realloc(l->a, l->t, l->cap * sizeof *nt, nc * sizeof *nt);
        if (!nt)
            return NULL;
        l->t = nt;
        l->cap = nc;
    }
    rw_token *t = &l->t[l->nt++];
    memset(t, 0, sizeof *t);
    t->kind = k;
    t->pos = (int)pos;
    t->len = (int)(end - pos);
    return t;
}

/* Ends the token stream with an error token; returns 0 so callers can
 * `return error(...)` from the scanning loop. NULL message = out of memory. */
static int lex_error(lexer *l, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lex_error(lexer *l, size_t pos, const char *fmt, ...)
{
    char msg[RW_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rw_token *t = push(l, RW_TK_ERROR, pos, pos);
    if (!t)
        return -1;
    t->str = rw_arena_strdup(l->a, msg);
    if (!t->str)
        return -1;
    t->slen = strlen(t->str);
    return 0;
}

/* Writes a character Go-%q style into out: 'x', '\n', '\x00', or the UTF-8
 * sequence it starts. */
static void quote_char(const char *s, size_t n, char *out, size_t cap)
{
    unsigned char c = (unsigned char)s[0];
    if (c == '\'' || c == '\\')
        snprintf(out, cap, "'\\%c'", c);
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out, cap, "'%c'", c);
    else if (c == '\n')
        snprintf(out, cap, "'\\n'");
    else if (c == '\t')
        snprintf(out, cap, "'\\t'");
    else if (c < 0x80)
        snprintf(out, cap, "'\\x%02x'", c);
    else {
        size_t w = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (w > n || !rw_utf8_valid(s, w))
            snprintf(out, cap, "'\\ufffd'");
        else
            snprintf(out, cap, "'%.*s'", (int)w, s);
    }
}

/* A quoted or raw string starting at l->i (the opening quote). Escapes are
 * Go's, as Prometheus uses: \a \b \f \n \r \t \v \\, the quote character
 * itself, \NNN octal, \xNN, \uNNNN, \UNNNNNNNN. Returns 1 on a token, 0 on an
 * error token, -1 when out of memory. */
static int lex_string(lexer *l)
{
    size_t start = l->i;
    char q = l->in[l->i++];
    size_t body = l->i, end;
    /* find the end first: validates UTF-8 and sizes the output */
    for (end = body;; end++) {
        if (end >= l->n)
            return lex_error(l, start, q == '`' ? "unterminated raw string"
                                                : "unterminated quoted string");
        char c = l->in[end];
        if (c == q)
            break;
        if (q != '`' && c == '\n')
            return lex_error(l, start, "unterminated quoted string");
        if (q != '`' && c == '\\') {
            if (end + 1 >= l->n)
                return lex_error(l, start, "unterminated quoted string");
            end++;
            if (l->in[end] == '\n')
                return lex_error(l, start, "unterminated quoted string");
        }
    }
    if (!rw_utf8_valid(l->in + body, end - body))
        return lex_error(l, start, "invalid UTF-8 rune");
    /* decoded text is never longer than its source */
    char *o = rw_arena_alloc(l->a, end - body + 1);
    if (!o)
        return -1;
    size_t k = 0;
    for (size_t i = body; i < end;) {
        char c = l->in[i];
        if (q == '`' || c != '\\') {
            o[k++] = c;
            i++;
            continue;
        }
        size_t epos = i;
        char e = l->in[i + 1];
        i += 2;
        switch (e) {
        case 'a': o[k++] = '\a'; continue;
        case 'b': o[k++] = '\b'; continue;
        case 'f': o[k++] = '\f'; continue;
        case 'n': o[k++] = '\n'; continue;
        case 'r': o[k++] = '\r'; continue;
        case 't': o[k++] = '\t'; continue;
        case 'v': o[k++] = '\v'; continue;
        case '\\': o[k++] = '\\'; continue;
        default: break;
        }
        if (e == q) {
            o[k++] = q;
            continue;
        }
        if (e >= '0' && e <= '7') {
            unsigned v = 0;
            i--; /* back to the first digit */
            for (int d = 0; d < 3; d++, i++) {
                if (i >= end || l->in[i] < '0' || l->in[i] > '7') {
                    char qc[16];
                    quote_char(l->in + i, end - i, qc, sizeof qc);
                    return lex_error(l, i < end ? i : epos,
                                     "illegal character %s in escape sequence", qc);
                }
                v = v * 8 + (unsigned)(l->in[i] - '0');
            }
            if (v > 255)
                return lex_error(l, epos, "octal escape value > 255: %u", v);
            o[k++] = (char)v;
            continue;
        }
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (!digits) {
            char qc[16];
            quote_char(l->in + epos + 1, end - epos - 1, qc, sizeof qc);
            return lex_error(l, epos, "unknown escape sequence %s", qc);
        }
        uint32_t v = 0;
        for (int d = 0; d < digits; d++, i++) {
            int h = i < end ? rw_hex_digit((unsigned char)l->in[i]) : -1;
            if (h < 0) {
                char qc[16];
                if (i < end)
                    quote_char(l->in + i, end - i, qc, sizeof qc);
                else
                    snprintf(qc, sizeof qc, "'%c'", q);
                return lex_error(l, i < end ? i : epos,
                                 "illegal character %s in escape sequence", qc);
            }
            v = v * 16 + (uint32_t)h;
        }
        if (e == 'x') {
            o[k++] = (char)v; /* a raw byte, may make the value invalid UTF-8 */
            continue;
        }
        if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
            return lex_error(l, epos, "escape sequence is an invalid Unicode code point");
        /* \uNNNN needs 6 source bytes for at most 3 output bytes, \U 10 for 4 */
        k += rw_utf8_put(o + k, v);
    }
    o[k] = '\0';
    l->i = end + 1;
    rw_token *t = push(l, RW_TK_STRING, start, l->i);
    if (!t)
        return -1;
    t->str = o;
    t->slen = k;
    return 1;
}

/* A number (decimal, hex, scientific) or a duration (1h30m) at l->i. */
static int lex_number(lexer *l)
{
    size_t start = l->i, i = l->i;
    const char *s = l->in;
    int plain = 1; /* only decimal digits so far: may be a duration */
    if (s[i] == '0' && i + 1 < l->n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        plain = 0;
        size_t d = i;
        while (i < l->n && IS(s[i], CC_HEX))
            i++;
        if (i == d)
            goto bad;
    } else {
        size_t d = i;
        while (i < l->n && IS(s[i], CC_DIGIT))
            i++;
        size_t ndig = i - d;
        if (i < l->n && s[i] == '.') {
            plain = 0;
            i++;
            size_t f = i;
            while (i < l->n && IS(s[i], CC_DIGIT))
                i++;
            ndig += i - f;
        }
        if (ndig == 0)
            goto bad;
        if (i < l->n && (s[i] == 'e' || s[i] == 'E')) {
            size_t j = i + 1;
            if (j < l->n && (s[j] == '+' || s[j] == '-'))
                j++;
            if (j < l->n && IS(s[j], CC_DIGIT)) {
                while (j < l->n && IS(s[j], CC_DIGIT))
                    j++;
                i = j;
                plain = 0;
            }
        }
    }
    if (i < l->n && (IS(s[i], CC_ALPHA | CC_DIGIT) || s[i] == '.')) {
        if (!plain)
            goto bad;
        /* a duration: digits and unit letters, validated by rw_parse_duration */
        while (i < l->n && IS(s[i], CC_ALPHA | CC_DIGIT) && s[i] != '_')
            i++;
        int64_t ms;
        if (i < l->n && (IS(s[i], CC_ALPHA) || s[i] == '.'))
            goto bad;
        if (rw_parse_duration(s + start, i - start, &ms, NULL) != RW_OK)
            goto bad_at;
        rw_token *t = push(l, RW_TK_DURATION, start, i);
        if (!t)
            return -1;
        t->dur_ms = ms;
        l->i = i;
        return 1;
    }
    char buf[128], *p = buf;
    size_t len = i - start;
    if (len >= sizeof buf && !(p = rw_arena_alloc(l->a, len + 1)))
        return -1;
    memcpy(p, s + start, len);
    p[len] = '\0';
    rw_token *t = push(l, RW_TK_NUMBER, start, i);
    if (!t)
        return -1;
    t->num = strtod(p, NULL); /* hex too: C99 strtod reads 0x... */
    if (plain && len > 1 && p[0] == '0' && strspn(p, "01234567") == len) {
        /* Prometheus reads integers with Go's ParseInt(s, 0, 64) first, so
         * a leading 0 means octal: 010 is 8 (019 is not octal: 19) */
        double v = 0;
        for (size_t k = 1; k < len; k++)
            v = v * 8 + (p[k] - '0');
        t->num = v;
    }
    l->i = i;
    return 1;
bad:
    /* swallow the rest of the word for the message */
    while (i < l->n && (IS(s[i], CC_ALPHA | CC_DIGIT) || s[i] == '.'))
        i++;
bad_at:
    return lex_error(l, start, "bad number or duration syntax: \"%.*s\"", (int)(i - start),
                     s + start);
}

static int lex_ident(lexer *l)
{
    size_t start = l->i, i = l->i;
    int colon = 0;
    /* ':' belongs to metric names, but not inside braces (label names) or
     * brackets (where it separates a subquery's range and step) */
    int colon_ok = !l->brace && !l->bracket;
    while (i < l->n && (IS(l->in[i], CC_ALPHA | CC_DIGIT) || (colon_ok && l->in[i] == ':'))) {
        if (l->in[i] == ':')
            colon = 1;
        i++;
    }
    const char *w = l->in + start;
    size_t n = i - start;
    l->i = i;
    if (!colon && !l->brace && (word_eq("inf", w, n) || word_eq("nan", w, n))) {
        rw_token *t = push(l, RW_TK_NUMBER, start, i);
        if (!t)
            return -1;
        t->num = word_eq("inf", w, n) ? __builtin_inf() : __builtin_nan("");
        return 1;
    }
    rw_token *t = push(l, colon ? RW_TK_METRIC_IDENT : RW_TK_IDENT, start, i);
    if (!t)
        return -1;
    if (!colon)
        for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
            if (word_eq(keywords[k].word, w, n)) {
                t->kw = keywords[k].kw;
                t->agg = keywords[k].agg;
                break;
            }
    return 1;
}

/* Scans one token; 1 = token pushed, 0 = error token pushed (stop),
 * 2 = end of input pushed (stop), -1 = out of memory. */
static int lex_one(lexer *l)
{
    const char *s = l->in;
    for (;;) {
        while (l->i < l->n && IS(s[l->i], CC_SPACE))
            l->i++;
        if (l->i < l->n && s[l->i] == '#') {
            while (l->i < l->n && s[l->i] != '\n')
                l->i++;
            continue;
        }
        break;
    }
    size_t p = l->i;
    if (p >= l->n) {
        if (l->paren)
            return lex_error(l, p, "unclosed left parenthesis");
        if (l->bracket)
            return lex_error(l, p, "unclosed left bracket");
        if (l->brace)
            return lex_error(l, p, "unexpected end of input inside braces");
        return push(l, RW_TK_EOF, p, p) ? 2 : -1;
    }
    unsigned char c = (unsigned char)s[p];
    char nx = p + 1 < l->n ? s[p + 1] : '\0';
    if (c == '"' || c == '\'' || c == '`')
        return lex_string(l);
    if (l->brace) {
        /* inside braces: names, strings, matcher operators, commas */
        if (IS(c, CC_ALPHA))
            return lex_ident(l);
        if (c != '=' && c != '!' && c != ',' && c != '}' && c != '{') {
            char qc[16];
            quote_char(s + p, l->n - p, qc, sizeof qc);
            return lex_error(l, p, "unexpected character inside braces: %s", qc);
        }
    }
    if (IS(c, CC_DIGIT) || (c == '.' && IS(nx, CC_DIGIT)))
        return lex_number(l);
    if (IS(c, CC_ALPHA) || (c == ':' && !l->bracket))
        return lex_ident(l);
    rw_tok_kind k;
    size_t w = 1;
    switch (c) {
    case '(': k = RW_TK_LPAREN; l->paren++; break;
    case ')':
        if (!l->paren)
            return lex_error(l, p, "unexpected right parenthesis ')'");
        l->paren--;
        k = RW_TK_RPAREN;
        break;
    case '{':
        if (l->brace)
            return lex_error(l, p, "unexpected left brace '{'");
        l->brace++;
        k = RW_TK_LBRACE;
        break;
    case '}':
        if (!l->brace)
            return lex_error(l, p, "unexpected right brace '}'");
        l->brace--;
        k = RW_TK_RBRACE;
        break;
    case '[':
        if (l->bracket)
            return lex_error(l, p, "unexpected left bracket '['");
        l->bracket++;
        k = RW_TK_LBRACKET;
        break;
    case ']':
        if (!l->bracket)
            return lex_error(l, p, "unexpected right bracket ']'");
        l->bracket--;
        k = RW_TK_RBRACKET;
        break;
    case ',': k = RW_TK_COMMA; break;
    case ':': k = RW_TK_COLON; break;
    case '@': k = RW_TK_AT; break;
    case '+': k = RW_TK_ADD; break;
    case '-': k = RW_TK_SUB; break;
    case '*': k = RW_TK_MUL; break;
    case '/': k = RW_TK_DIV; break;
    case '%': k = RW_TK_MOD; break;
    case '^': k = RW_TK_POW; break;
    case '=':
        if (nx == '=') { k = RW_TK_EQLC; w = 2; }
        else if (nx == '~') { k = RW_TK_EQL_REGEX; w = 2; }
        else k = RW_TK_ASSIGN;
        break;
    case '!':
        if (nx == '=') { k = RW_TK_NEQ; w = 2; }
        else if (nx == '~') { k = RW_TK_NEQ_REGEX; w = 2; }
        else {
            char qc[16];
            if (p + 1 < l->n)
                quote_char(s + p + 1, l->n - p - 1, qc, sizeof qc);
            else
                snprintf(qc, sizeof qc, "EOF");
            return lex_error(l, p, "unexpected character after '!': %s", qc);
        }
        break;
    case '<':
        if (nx == '=') { k = RW_TK_LTE; w = 2; }
        else k = RW_TK_LSS;
        break;
    case '>':
        if (nx == '=') { k = RW_TK_GTE; w = 2; }
        else k = RW_TK_GTR;
        break;
    default: {
        char qc[16];
        quote_char(s + p, l->n - p, qc, sizeof qc);
        return lex_error(l, p, "unexpected character: %s", qc);
    }
    }
    l->i = p + w;
    return push(l, k, p, p + w) ? 1 : -1;
}

rw_rc rw_lex(const char *input, size_t n, rw_arena *a, rw_token **out, size_t *nout,
             rw_err *err)
{
    lexer l = {.in = input, .n = n, .a = a};
    int r;
    while ((r = lex_one(&l)) == 1)
        ;
    if (r < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory while lexing the query");
    *out = l.t;
    *nout = l.nt;
    return RW_OK;
}

const char *rw_tok_desc(const char *input, const rw_token *t, char *buf, size_t cap)
{
    const char *txt = input + t->pos;
    int len = t->len;
    switch (t->kind) {
    case RW_TK_EOF:
        snprintf(buf, cap, "end of input");
        break;
    case RW_TK_ERROR:
        snprintf(buf, cap, "%s", t->str);
        break;
    case RW_TK_IDENT:
        if (t->kw == RW_KW_AGG)
            snprintf(buf, cap, "<aggr:%.*s>", len, txt);
        else if (t->kw == RW_KW_AND || t->kw == RW_KW_OR || t->kw == RW_KW_UNLESS ||
                 t->kw == RW_KW_ATAN2)
            snprintf(buf, cap, "<op:%.*s>", len, txt);
        else if (t->kw != RW_KW_NONE)
            snprintf(buf, cap, "<%.*s>", len, txt);
        else
            snprintf(buf, cap, "identifier \"%.*s\"", len, txt);
        break;
    case RW_TK_METRIC_IDENT:
        snprintf(buf, cap, "metric identifier \"%.*s\"", len, txt);
        break;
    case RW_TK_NUMBER:
        snprintf(buf, cap, "number \"%.*s\"", len, txt);
        break;
    case RW_TK_DURATION:
        snprintf(buf, cap, "duration \"%.*s\"", len, txt);
        break;
    case RW_TK_STRING:
        if (len > 12)
            snprintf(buf, cap, "string %.12s...", txt);
        else
            snprintf(buf, cap, "string %.*s", len, txt);
        break;
    case RW_TK_EQL_REGEX: case RW_TK_NEQ_REGEX:
    case RW_TK_EQLC: case RW_TK_NEQ: case RW_TK_LSS: case RW_TK_LTE: case RW_TK_GTR:
    case RW_TK_GTE: case RW_TK_ADD: case RW_TK_SUB: case RW_TK_MUL: case RW_TK_DIV:
    case RW_TK_MOD: case RW_TK_POW: case RW_TK_AT:
        snprintf(buf, cap, "<op:%.*s>", len, txt);
        break;
    default:
        snprintf(buf, cap, "\"%.*s\"", len, txt);
        break;
    }
    return buf;
}
