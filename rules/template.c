/* template.c - lexer and parser of alert templates (Go text/template syntax).
 *
 * Rule loading calls rw_tmpl_parse() once per label and annotation value;
 * the tree it builds is executed at every alert evaluation by
 * template_exec.c. The lexer and parser follow Go's text/template/parse
 * state for state (lex.go, parse.go): the same tokens, the same trim-marker
 * and comment rules, the same three-token look-ahead, the same checks at
 * parse time (unknown functions, undefined variables, break outside range,
 * non-executable pipeline stages) and the same messages, so a template that
 * Prometheus refuses is refused here and one it accepts parses the same
 * way. Messages add the column to Go's "template: NAME:LINE: ..." so that
 * `check rules` can point at the byte.
 *
 * What Prometheus' rule templates never need is refused with a clear
 * message: define / template / block, complex numbers, and the template
 * functions that return Go time values (toTime, toDuration, now).
 *
 * Parse errors unwind with longjmp (Go's parser panics the same way); all
 * parse memory is in the template's arena, so nothing leaks. */
#include "template_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/text.h"

/* ---- parser (Go's parse.go) ---- */

typedef struct parser {
    rw_tmpl *t;
    lexer lex;
    item tok[3];
    int peekc;
    const char **vars;
    size_t nvars, capvars;
    int range_depth, depth;
    int action_line;
    rw_err *err;
    jmp_buf jb;
} parser;

static void perr(parser *p, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void perr(parser *p, int pos, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pos < 0)
        pos = p->tok[0].pos;
    if (pos > (int)p->t->len)
        pos = (int)p->t->len;
    int line = 1, col = 0;
    for (int i = 0; i < pos; i++) {
        if (p->t->text[i] == '\n')
            line++, col = 0;
        else
            col++;
    }
    rw_err_set(p->err, RW_BADREQ, "template: %s:%d:%d: %s", p->t->name, line, col + 1, msg);
    if (p->err)
        p->err->pos = pos;
    longjmp(p->jb, 1);
}

static void *palloc(parser *p, size_t n)
{
    void *m = rw_arena_calloc(p->t->arena, 1, n);
    if (!m) {
        rw_err_set(p->err, RW_NOMEM, "template: %s: out of memory", p->t->name);
        longjmp(p->jb, 1);
    }
    return m;
}

static item pnext(parser *p)
{
    if (p->peekc > 0)
        p->peekc--;
    else
        p->tok[0] = tmpl_lex_item(&p->lex);
    return p->tok[p->peekc];
}

static void pbackup(parser *p) { p->peekc++; }

static void pbackup2(parser *p, item t1)
{
    p->tok[1] = t1;
    p->peekc = 2;
}

static void pbackup3(parser *p, item t2, item t1)
{
    p->tok[1] = t1;
    p->tok[2] = t2;
    p->peekc = 3;
}

static item ppeek(parser *p)
{
    if (p->peekc > 0)
        return p->tok[p->peekc - 1];
    p->peekc = 1;
    p->tok[0] = tmpl_lex_item(&p->lex);
    return p->tok[0];
}

static item pnext_nonspace(parser *p)
{
    item t;
    do
        t = pnext(p);
    while (t.typ == I_SPACE);
    return t;
}

static item ppeek_nonspace(parser *p)
{
    item t = pnext_nonspace(p);
    pbackup(p);
    return t;
}

/* Go's item.String(). */
static void item_string(const item *it, char *out, size_t cap)
{
    if (it->typ == I_EOF) {
        snprintf(out, cap, "EOF");
    } else if (it->typ == I_ERROR) {
        snprintf(out, cap, "%.*s", (int)it->len, it->val);
    } else if (it->typ > I_KEYWORD) {
        snprintf(out, cap, "<%.*s>", (int)it->len, it->val);
    } else {
        rw_buf b;
        rw_buf_init(&b, 256);
        size_t n = it->len, runes = 0, i = 0;
        int cut = 0;
        for (; i < n; runes++) {
            if (runes == 10) {
                cut = 1;
                break;
            }
            size_t w;
            tmpl_decode(it->val + i, n - i, &w);
            i += w ? w : 1;
        }
        tmpl_quote(&b, it->val, cut ? i : n, 0);
        snprintf(out, cap, "%s%s", b.p ? b.p : "\"\"", cut ? "..." : "");
        rw_buf_free(&b);
    }
}

static void unexpected(parser *p, const item *it, const char *context) __attribute__((noreturn));
static void unexpected(parser *p, const item *it, const char *context)
{
    char s[128];
    item_string(it, s, sizeof s);
    if (it->typ == I_ERROR) {
        if (p->action_line != 0 && p->action_line != it->line) {
            int suffix = it->len >= 7 && memcmp(it->val + it->len - 7, " action", 7) == 0;
            perr(p, it->pos, "%s%s started at %s:%d", s, suffix ? "" : " in action", p->t->name,
                 p->action_line);
        }
        perr(p, it->pos, "%s", s);
    }
    perr(p, it->pos, "unexpected %s in %s", s, context);
}

static tnode *new_node(parser *p, tnode_type type, int pos)
{
    tnode *n = palloc(p, sizeof *n);
    n->type = type;
    n->pos = pos;
    n->fn = -1;
    return n;
}

static void add_kid(parser *p, tnode *parent, tnode *kid)
{
    if ((parent->nkids & (parent->nkids - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        size_t cap = parent->nkids ? parent->nkids * 2 : 1;
        tnode **k = palloc(p, cap * sizeof *k);
        if (parent->nkids)
            memcpy(k, parent->kids, parent->nkids * sizeof *k);
        parent->kids = k;
    }
    parent->kids[parent->nkids++] = kid;
}

static const char *pstrndup(parser *p, const char *s, size_t n)
{
    char *d = palloc(p, n + 1);
    memcpy(d, s, n);
    return d;
}

static void push_var(parser *p, const char *name)
{
    if (p->nvars == p->capvars) {
        size_t cap = p->capvars ? p->capvars * 2 : 16;
        const char **v = palloc(p, cap * sizeof *v);
        if (p->nvars)
            memcpy(v, p->vars, p->nvars * sizeof *v);
        p->vars = v;
        p->capvars = cap;
    }
    p->vars[p->nvars++] = name;
}

/* A field token is ".name", a variable token "$name" (the lexer stops at
 * each '.'); operand() merges the chain that follows. */
static void one_ident(parser *p, tnode *n, const char *s, size_t len, int field)
{
    n->ident = palloc(p, sizeof *n->ident);
    n->ident[0] = field ? pstrndup(p, s + 1, len - 1) : pstrndup(p, s, len);
    n->nident = 1;
}

static tnode *new_variable(parser *p, int pos, const char *s, size_t len)
{
    tnode *n = new_node(p, N_VAR, pos);
    one_ident(p, n, s, len, 0);
    return n;
}

static tnode *use_var(parser *p, int pos, const char *s, size_t len)
{
    tnode *v = new_variable(p, pos, s, len);
    for (size_t i = p->nvars; i-- > 0;)
        if (strcmp(p->vars[i], v->ident[0]) == 0)
            return v;
    perr(p, pos, "undefined variable \"%s\"", v->ident[0]);
}

static tnode *pipeline(parser *p, const char *context, itype end);
static tnode *item_list(parser *p, tnode **next);

/* strconv.UnquoteChar: decodes one character or escape of a literal
 * quoted with `quote` from s[0..n). Writes its bytes to w (a byte for \x and
 * octal escapes in strings, UTF-8 otherwise); returns the bytes consumed or
 * 0 on invalid syntax. */
static size_t unquote_char(const char *s, size_t n, char quote, char *w, size_t *wn, int32_t *rune)
{
    unsigned char c = (unsigned char)s[0];
    if (c == (unsigned char)quote && (quote == '\'' || quote == '"'))
        return 0;
    if (c != '\\') {
        size_t wd;
        int32_t r = tmpl_decode(s, n, &wd);
        if (r == 0xfffd && wd == 1 && c >= 0x80) {
            *wn = rw_utf8_put(w, 0xfffd);
        } else {
            memcpy(w, s, wd);
            *wn = wd;
        }
        *rune = r;
        return wd;
    }
    if (n < 2)
        return 0;
    char e = s[1];
    uint32_t v = 0;
    size_t used = 2;
    switch (e) {
    case 'a': v = '\a'; break;
    case 'b': v = '\b'; break;
    case 'f': v = '\f'; break;
    case 'n': v = '\n'; break;
    case 'r': v = '\r'; break;
    case 't': v = '\t'; break;
    case 'v': v = '\v'; break;
    case '\\': v = '\\'; break;
    case '\'':
    case '"':
        if (e != quote)
            return 0;
        v = (uint32_t)e;
        break;
    case 'x':
    case 'u':
    case 'U': {
        size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (n < 2 + digits)
            return 0;
        for (size_t k = 0; k < digits; k++) {
            int h = rw_hex_digit((unsigned char)s[2 + k]);
            if (h < 0)
                return 0;
            v = v * 16 + (uint32_t)h;
        }
        used = 2 + digits;
        if (e == 'x') {
            *rune = (int32_t)v;
            if (quote == '\'') {
                *wn = rw_utf8_put(w, v);
            } else {
                w[0] = (char)v;
                *wn = 1;
            }
            return used;
        }
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        break;
    }
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        if (n < 4)
            return 0;
        for (size_t k = 1; k < 4; k++) {
            char d = s[k];
            if (d < '0' || d > '7')
                return 0;
            v = v * 8 + (uint32_t)(d - '0');
        }
        if (v > 255)
            return 0;
        *rune = (int32_t)v;
        if (quote == '\'') {
            *wn = rw_utf8_put(w, v);
        } else {
            w[0] = (char)v;
            *wn = 1;
        }
        return 4;
    default:
        return 0;
    }
    *rune = (int32_t)v;
    *wn = rw_utf8_put(w, v);
    return used;
}

/* strconv.Unquote for "..." and `...`; NULL on invalid syntax. */
static const char *unquote(parser *p, const item *it, size_t *outlen)
{
    const char *s = it->val;
    size_t n = it->len;
    char *o = palloc(p, 4 * n + 1), *w = o;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i] != '\r')
                *w++ = s[i];
        *outlen = (size_t)(w - o);
        return o;
    }
    for (size_t i = 1; i + 1 < n;) {
        if (s[i] == '\n')
            return NULL;
        size_t wn;
        int32_t r;
        size_t used = unquote_char(s + i, n - 1 - i, '"', w, &wn, &r);
        if (!used)
            return NULL;
        w += wn;
        i += used;
    }
    *outlen = (size_t)(w - o);
    return o;
}

/* strconv.ParseUint / ParseInt with base 0 (underscores allowed, 0x 0o 0b
 * prefixes, leading 0 = octal). Returns 1 on success. */
static int parse_int_base0(const char *s, size_t n, int is_signed, int64_t *iv, uint64_t *uv)
{
    size_t i = 0;
    int neg = 0;
    if (is_signed && i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i >= n)
        return 0;
    int base = 10;
    int prefix = 0;
    if (s[i] == '0' && i + 1 < n) {
        char c = s[i + 1];
        if (c == 'x' || c == 'X')
            base = 16, i += 2, prefix = 1;
        else if (c == 'o' || c == 'O')
            base = 8, i += 2, prefix = 1;
        else if (c == 'b' || c == 'B')
            base = 2, i += 2, prefix = 1;
        else
            base = 8, i += 1, prefix = 1;
    }
    /* underscores: only between digits or after a prefix */
    char last = prefix ? '0' : '^';
    uint64_t v = 0;
    int any = prefix && base == 8 && s[i - 1] == '0' && !(i >= 2 && (s[i - 1] == 'o' || s[i - 1] == 'O'));
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            if (last != '0')
                return 0;
            last = '_';
            continue;
        }
        int d = rw_hex_digit((unsigned char)c);
        if (d < 0 || d >= base)
            return 0;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return 0;
        v = v * (uint64_t)base + (uint64_t)d;
        last = '0';
        any = 1;
    }
    if (!any || last == '_')
        return 0;
    if (!is_signed) {
        *uv = v;
        return 1;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return 0;
        *iv = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return 0;
        *iv = (int64_t)v;
    }
    return 1;
}

/* Go's parse.newNumber. */
static tnode *new_number(parser *p, const item *it)
{
    tnode *n = new_node(p, N_NUMBER, it->pos);
    n->src = it->val;
    n->srclen = it->len;
    const char *s = it->val;
    size_t len = it->len;
    if (it->typ == I_COMPLEX || (len > 0 && s[len - 1] == 'i'))
        perr(p, it->pos, "complex number %.*s: complex numbers are not supported", (int)len, s);
    if (it->typ == I_CHARCONST) {
        /* 'x', '\n', '\x41', '\u00e9' ...: one character, then the quote */
        char w[8];
        size_t wn;
        int32_t r = 0;
        size_t used = len >= 3 ? unquote_char(s + 1, len - 1, '\'', w, &wn, &r) : 0;
        if (!used)
            perr(p, it->pos, "invalid syntax");
        if (1 + used != len - 1)
            perr(p, it->pos, "malformed character constant: %.*s", (int)len, s);
        n->is_int = n->is_uint = n->is_float = 1;
        n->i64 = r;
        n->u64 = (uint64_t)r;
        n->f64 = r;
        return n;
    }
    uint64_t u;
    int64_t i;
    if (parse_int_base0(s, len, 0, NULL, &u)) {
        n->is_uint = 1;
        n->u64 = u;
    }
    if (parse_int_base0(s, len, 1, &i, NULL)) {
        n->is_int = 1;
        n->i64 = i;
        if (i == 0) {
            n->is_uint = 1;
            n->u64 = 0;
        }
    }
    if (n->is_int) {
        n->is_float = 1;
        n->f64 = (double)n->i64;
    } else if (n->is_uint) {
        n->is_float = 1;
        n->f64 = (double)n->u64;
    } else {
        double f;
        if (tmpl_parse_float(s, len, &f) == 0) {
            int dotted = 0;
            for (size_t k = 0; k < len; k++)
                if (strchr(".eEpP", s[k]))
                    dotted = 1;
            if (!dotted)
                perr(p, it->pos, "integer overflow: \"%.*s\"", (int)len, s);
            n->is_float = 1;
            n->f64 = f;
            if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 && (double)(int64_t)f == f) {
                n->is_int = 1;
                n->i64 = (int64_t)f;
            }
            if (f >= 0 && f < 18446744073709551616.0 && (double)(uint64_t)f == f) {
                n->is_uint = 1;
                n->u64 = (uint64_t)f;
            }
        }
    }
    if (!n->is_int && !n->is_uint && !n->is_float)
        perr(p, it->pos, "illegal number syntax: \"%.*s\"", (int)len, s);
    return n;
}

/* A string literal used as a regex pattern is compiled once, here. */
static void maybe_compile_pattern(parser *p, tnode *cmd)
{
    if (cmd->nkids < 2 || cmd->kids[0]->type != N_IDENT)
        return;
    int f = cmd->kids[0]->fn;
    if (!(tmpl_func_is(f, "reReplaceAll") || tmpl_func_is(f, "match")))
        return;
    tnode *pat = cmd->kids[1];
    if (pat->type != N_STRING || pat->re || pat->re_failed)
        return;
    char msg[8];
    void *re = tmpl_regex_compile(pat->text, pat->len, msg, sizeof msg);
    if (!re) {
        pat->re_failed = 1; /* Go fails at run time; so do we */
        return;
    }
    rw_tmpl *t = p->t;
    if (t->nregexes == t->capregexes) {
        size_t cap = t->capregexes ? t->capregexes * 2 : 4;
        void **v = realloc(t->regexes, cap * sizeof *v);
        if (!v) {
            tmpl_regex_free(re);
            return;
        }
        t->regexes = v;
        t->capregexes = cap;
    }
    t->regexes[t->nregexes++] = re;
    pat->re = re;
}

static tnode *term(parser *p)
{
    item t = pnext_nonspace(p);
    switch (t.typ) {
    case I_IDENT: {
        int f = tmpl_func_find(t.val, t.len);
        if (f < 0)
            perr(p, t.pos, "function \"%.*s\" not defined", (int)t.len, t.val);
        if (!tmpl_funcs[f].fn)
            perr(p, t.pos, "function \"%.*s\" is not supported by rwgate: %s", (int)t.len, t.val,
                 tmpl_funcs[f].why);
        tnode *n = new_node(p, N_IDENT, t.pos);
        n->text = pstrndup(p, t.val, t.len);
        n->len = t.len;
        n->fn = f;
        return n;
    }
    case I_DOT:
        return new_node(p, N_DOT, t.pos);
    case I_NIL:
        return new_node(p, N_NIL, t.pos);
    case I_VARIABLE:
        return use_var(p, t.pos, t.val, t.len);
    case I_FIELD: {
        tnode *n = new_node(p, N_FIELD, t.pos);
        one_ident(p, n, t.val, t.len, 1);
        return n;
    }
    case I_BOOL: {
        tnode *n = new_node(p, N_BOOL, t.pos);
        n->b = t.val[0] == 't';
        return n;
    }
    case I_CHARCONST:
    case I_COMPLEX:
    case I_NUMBER:
        return new_number(p, &t);
    case I_LPAREN: {
        if (p->depth >= TMPL_MAX_DEPTH)
            perr(p, t.pos, "max expression depth exceeded");
        p->depth++;
        tnode *n = pipeline(p, "parenthesized pipeline", I_RPAREN);
        p->depth--;
        return n;
    }
    case I_STRING:
    case I_RAWSTRING: {
        size_t ol;
        const char *s = unquote(p, &t, &ol);
        if (!s)
            perr(p, t.pos, "invalid syntax");
        tnode *n = new_node(p, N_STRING, t.pos);
        n->text = s;
        n->len = ol;
        n->src = t.val;
        n->srclen = t.len;
        return n;
    }
    default:
        break;
    }
    pbackup(p);
    return NULL;
}

static tnode *operand(parser *p)
{
    tnode *node = term(p);
    if (!node)
        return NULL;
    if (ppeek(p).typ == I_FIELD) {
        tnode *chain = new_node(p, N_CHAIN, ppeek(p).pos);
        chain->chain = node;
        size_t cap = 4;
        chain->ident = palloc(p, cap * sizeof *chain->ident);
        while (ppeek(p).typ == I_FIELD) {
            item f = pnext(p);
            /* a field token may itself be ".a.b"? no: the lexer splits at '.' */
            if (chain->nident == cap) {
                const char **v = palloc(p, cap * 2 * sizeof *v);
                memcpy(v, chain->ident, cap * sizeof *v);
                chain->ident = v;
                cap *= 2;
            }
            chain->ident[chain->nident++] = pstrndup(p, f.val + 1, f.len - 1);
        }
        switch (node->type) {
        case N_FIELD:
        case N_VAR: {
            size_t total = node->nident + chain->nident;
            const char **v = palloc(p, total * sizeof *v);
            memcpy(v, node->ident, node->nident * sizeof *v);
            memcpy(v + node->nident, chain->ident, chain->nident * sizeof *v);
            node->ident = v;
            node->nident = total;
            node->pos = chain->pos;
            break;
        }
        case N_BOOL:
        case N_STRING:
        case N_NUMBER:
        case N_NIL:
        case N_DOT: {
            rw_buf b;
            rw_buf_init(&b, 256);
            tmpl_node_string(node, &b);
            rw_buf q;
            rw_buf_init(&q, 512);
            tmpl_quote(&q, b.p ? b.p : "", b.len, 0);
            char msg[300];
            snprintf(msg, sizeof msg, "%s", q.p ? q.p : "");
            rw_buf_free(&b);
            rw_buf_free(&q);
            perr(p, -1, "unexpected . after term %s", msg);
        }
        default:
            node = chain;
        }
    }
    return node;
}

static tnode *command(parser *p)
{
    tnode *cmd = new_node(p, N_CMD, ppeek_nonspace(p).pos);
    for (;;) {
        ppeek_nonspace(p);
        tnode *op = operand(p);
        if (op)
            add_kid(p, cmd, op);
        item t = pnext(p);
        if (t.typ == I_SPACE)
            continue;
        if (t.typ == I_RDELIM || t.typ == I_RPAREN)
            pbackup(p);
        else if (t.typ != I_PIPE)
            unexpected(p, &t, "operand");
        break;
    }
    if (cmd->nkids == 0)
        perr(p, -1, "empty command");
    maybe_compile_pattern(p, cmd);
    return cmd;
}

static tnode *pipeline(parser *p, const char *context, itype end)
{
    item tk = ppeek_nonspace(p);
    tnode *pipe = new_node(p, N_PIPE, tk.pos);
decls:;
    item v = ppeek_nonspace(p);
    if (v.typ == I_VARIABLE) {
        pnext(p);
        item after = ppeek(p);
        item next = ppeek_nonspace(p);
        if (next.typ == I_ASSIGN || next.typ == I_DECLARE) {
            pipe->is_assign = next.typ == I_ASSIGN;
            pnext_nonspace(p);
            const char *name = pstrndup(p, v.val, v.len);
            const char **d = palloc(p, (pipe->ndecl + 1) * sizeof *d);
            if (pipe->ndecl)
                memcpy(d, pipe->decl, pipe->ndecl * sizeof *d);
            d[pipe->ndecl++] = name;
            pipe->decl = d;
            push_var(p, name);
        } else if (next.typ == I_CHAR && next.len == 1 && next.val[0] == ',') {
            pnext_nonspace(p);
            const char *name = pstrndup(p, v.val, v.len);
            const char **d = palloc(p, (pipe->ndecl + 1) * sizeof *d);
            if (pipe->ndecl)
                memcpy(d, pipe->decl, pipe->ndecl * sizeof *d);
            d[pipe->ndecl++] = name;
            pipe->decl = d;
            push_var(p, name);
            if (strcmp(context, "range") == 0 && pipe->ndecl < 2) {
                itype pt = ppeek_nonspace(p).typ;
                if (pt == I_VARIABLE || pt == I_RDELIM || pt == I_RPAREN)
                    goto decls;
                perr(p, -1, "range can only initialize variables");
            }
            perr(p, -1, "too many declarations in %s", context);
        } else if (after.typ == I_SPACE) {
            pbackup3(p, v, after);
        } else {
            pbackup2(p, v);
        }
    }
    for (;;) {
        item t = pnext_nonspace(p);
        if (t.typ == end) {
            if (pipe->nkids == 0)
                perr(p, -1, "missing value for %s", context);
            for (size_t i = 1; i < pipe->nkids; i++) {
                tnode_type a = pipe->kids[i]->kids[0]->type;
                if (a == N_BOOL || a == N_DOT || a == N_NIL || a == N_NUMBER || a == N_STRING)
                    perr(p, -1, "non executable command in pipeline stage %zu", i + 1);
            }
            return pipe;
        }
        switch (t.typ) {
        case I_BOOL:
        case I_CHARCONST:
        case I_COMPLEX:
        case I_DOT:
        case I_FIELD:
        case I_IDENT:
        case I_NUMBER:
        case I_NIL:
        case I_RAWSTRING:
        case I_STRING:
        case I_VARIABLE:
        case I_LPAREN:
            pbackup(p);
            add_kid(p, pipe, command(p));
            break;
        default:
            unexpected(p, &t, context);
        }
    }
}

static tnode *if_like(parser *p, tnode_type type, const char *context, int pos);

static tnode *control(parser *p, tnode_type type, const char *context)
{
    size_t mark = p->nvars;
    if (p->depth >= TMPL_MAX_DEPTH)
        perr(p, -1, "max nesting depth exceeded");
    p->depth++;
    tnode *n = new_node(p, type, 0);
    n->pipe = pipeline(p, context, I_RDELIM);
    n->pos = n->pipe->pos;
    if (type == N_RANGE)
        p->range_depth++;
    tnode *next;
    n->list = item_list(p, &next);
    if (type == N_RANGE)
        p->range_depth--;
    if (next->type == N_ELSE) {
        if (type == N_IF && ppeek(p).typ == I_IF) {
            pnext(p);
            n->elist = new_node(p, N_LIST, next->pos);
            add_kid(p, n->elist, if_like(p, N_IF, "if", next->pos));
        } else if (type == N_WITH && ppeek(p).typ == I_WITH) {
            pnext(p);
            n->elist = new_node(p, N_LIST, next->pos);
            add_kid(p, n->elist, if_like(p, N_WITH, "with", next->pos));
        } else {
            n->elist = item_list(p, &next);
            if (next->type != N_END)
                perr(p, next->pos, "expected end; found {{else}}");
        }
    }
    p->depth--;
    p->nvars = mark;
    return n;
}

static tnode *if_like(parser *p, tnode_type type, const char *context, int pos)
{
    (void)pos;
    return control(p, type, context);
}

static tnode *action(parser *p)
{
    item t = pnext_nonspace(p);
    switch (t.typ) {
    case I_BLOCK:
    case I_DEFINE:
    case I_TEMPLATE:
        perr(p, t.pos, "{{%.*s}} is not supported by rwgate (rule templates are single templates)",
             (int)t.len, t.val);
    case I_BREAK:
    case I_CONTINUE: {
        item r = pnext_nonspace(p);
        if (r.typ != I_RDELIM)
            unexpected(p, &r, t.typ == I_BREAK ? "{{break}}" : "{{continue}}");
        if (p->range_depth == 0)
            perr(p, t.pos, "{{%s}} outside {{range}}", t.typ == I_BREAK ? "break" : "continue");
        return new_node(p, t.typ == I_BREAK ? N_BREAK : N_CONTINUE, t.pos);
    }
    case I_ELSE: {
        item pk = ppeek_nonspace(p);
        if (pk.typ == I_IF || pk.typ == I_WITH)
            return new_node(p, N_ELSE, pk.pos);
        item r = pnext_nonspace(p);
        if (r.typ != I_RDELIM)
            unexpected(p, &r, "else");
        return new_node(p, N_ELSE, r.pos);
    }
    case I_END: {
        item r = pnext_nonspace(p);
        if (r.typ != I_RDELIM)
            unexpected(p, &r, "end");
        return new_node(p, N_END, r.pos);
    }
    case I_IF:
        return control(p, N_IF, "if");
    case I_RANGE:
        return control(p, N_RANGE, "range");
    case I_WITH:
        return control(p, N_WITH, "with");
    default:
        break;
    }
    pbackup(p);
    item tk = ppeek(p);
    tnode *n = new_node(p, N_ACTION, tk.pos);
    n->pipe = pipeline(p, "command", I_RDELIM);
    return n;
}

static tnode *text_or_action(parser *p)
{
    item t = pnext_nonspace(p);
    switch (t.typ) {
    case I_TEXT: {
        tnode *n = new_node(p, N_TEXT, t.pos);
        n->text = t.val;
        n->len = t.len;
        return n;
    }
    case I_LDELIM: {
        p->action_line = t.line;
        tnode *n = action(p);
        p->action_line = 0;
        return n;
    }
    default:
        unexpected(p, &t, "input");
    }
}

static tnode *item_list(parser *p, tnode **next)
{
    tnode *list = new_node(p, N_LIST, ppeek_nonspace(p).pos);
    while (ppeek_nonspace(p).typ != I_EOF) {
        tnode *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE) {
            *next = n;
            return list;
        }
        add_kid(p, list, n);
    }
    perr(p, -1, "unexpected EOF");
}

static void parse_root(parser *p)
{
    tnode *root = new_node(p, N_LIST, ppeek(p).pos);
    while (ppeek(p).typ != I_EOF) {
        tnode *n = text_or_action(p);
        if (n->type == N_END)
            perr(p, n->pos, "unexpected {{end}}");
        if (n->type == N_ELSE)
            perr(p, n->pos, "unexpected {{else}}");
        add_kid(p, root, n);
    }
    p->t->root = root;
}

/* Runs the parser; errors longjmp back here. 0 on success. */
static int parse_guarded(parser *p)
{
    if (setjmp(p->jb))
        return -1;
    /* the variables Prometheus defines in front of every alert template */
    static const char *const predefined[] = {"$", "$labels", "$externalLabels", "$externalURL",
                                             "$value"};
    for (size_t i = 0; i < sizeof predefined / sizeof predefined[0]; i++)
        push_var(p, predefined[i]);
    parse_root(p);
    return 0;
}

rw_tmpl *rw_tmpl_parse(const char *name, const char *text, rw_err *err)
{
    if (!name)
        name = "";
    if (!text)
        text = "";
    rw_tmpl *t = calloc(1, sizeof *t);
    rw_arena *a = rw_arena_new(0, 0);
    if (!t || !a) {
        free(t);
        rw_arena_free(a);
        rw_err_set(err, RW_NOMEM, "template: out of memory");
        return NULL;
    }
    t->arena = a;
    t->name = rw_arena_strdup(a, name);
    t->len = strlen(text);
    t->text = rw_arena_strndup(a, text, t->len);
    if (!t->name || !t->text) {
        rw_tmpl_free(t);
        rw_err_set(err, RW_NOMEM, "template: out of memory");
        return NULL;
    }
    parser *p = calloc(1, sizeof *p);
    if (!p) {
        rw_tmpl_free(t);
        rw_err_set(err, RW_NOMEM, "template: out of memory");
        return NULL;
    }
    p->t = t;
    p->err = err;
    p->lex.in = t->text;
    p->lex.len = t->len;
    p->lex.line = p->lex.start_line = 1;
    p->lex.state = S_TEXT;
    p->lex.a = a;
    if (parse_guarded(p) != 0) {
        free(p);
        rw_tmpl_free(t);
        return NULL;
    }
    free(p);
    return t;
}

const char *rw_tmpl_name(const rw_tmpl *t) { return t && t->name ? t->name : ""; }

void rw_tmpl_free(rw_tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nregexes; i++)
        tmpl_regex_free(t->regexes[i]);
    free(t->regexes);
    rw_arena_free(t->arena);
    free(t);
}

/* ---- Go's Node.String(), for execution error context ---- */

static void list_string(const tnode *n, rw_buf *b)
{
    for (size_t i = 0; n && i < n->nkids; i++)
        tmpl_node_string(n->kids[i], b);
}

void tmpl_node_string(const tnode *n, rw_buf *b)
{
    if (!n)
        return;
    switch (n->type) {
    case N_TEXT:
        rw_buf_append(b, n->text, n->len);
        break;
    case N_ACTION:
        rw_buf_puts(b, "{{");
        tmpl_node_string(n->pipe, b);
        rw_buf_puts(b, "}}");
        break;
    case N_IF:
    case N_RANGE:
    case N_WITH:
        rw_buf_puts(b, n->type == N_IF ? "{{if " : n->type == N_RANGE ? "{{range " : "{{with ");
        tmpl_node_string(n->pipe, b);
        rw_buf_puts(b, "}}");
        list_string(n->list, b);
        if (n->elist) {
            rw_buf_puts(b, "{{else}}");
            list_string(n->elist, b);
        }
        rw_buf_puts(b, "{{end}}");
        break;
    case N_LIST:
        list_string(n, b);
        break;
    case N_BREAK:
        rw_buf_puts(b, "{{break}}");
        break;
    case N_CONTINUE:
        rw_buf_puts(b, "{{continue}}");
        break;
    case N_END:
        rw_buf_puts(b, "{{end}}");
        break;
    case N_ELSE:
        rw_buf_puts(b, "{{else}}");
        break;
    case N_PIPE:
        for (size_t i = 0; i < n->ndecl; i++) {
            if (i)
                rw_buf_puts(b, ", ");
            rw_buf_puts(b, n->decl[i]);
        }
        if (n->ndecl)
            rw_buf_puts(b, n->is_assign ? " = " : " := ");
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                rw_buf_puts(b, " | ");
            tmpl_node_string(n->kids[i], b);
        }
        break;
    case N_CMD:
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                rw_buf_putc(b, ' ');
            if (n->kids[i]->type == N_PIPE) {
                rw_buf_putc(b, '(');
                tmpl_node_string(n->kids[i], b);
                rw_buf_putc(b, ')');
            } else {
                tmpl_node_string(n->kids[i], b);
            }
        }
        break;
    case N_FIELD:
        for (size_t i = 0; i < n->nident; i++) {
            rw_buf_putc(b, '.');
            rw_buf_puts(b, n->ident[i]);
        }
        break;
    case N_VAR:
        for (size_t i = 0; i < n->nident; i++) {
            if (i)
                rw_buf_putc(b, '.');
            rw_buf_puts(b, n->ident[i]);
        }
        break;
    case N_CHAIN:
        if (n->chain->type == N_PIPE) {
            rw_buf_putc(b, '(');
            tmpl_node_string(n->chain, b);
            rw_buf_putc(b, ')');
        } else {
            tmpl_node_string(n->chain, b);
        }
        for (size_t i = 0; i < n->nident; i++) {
            rw_buf_putc(b, '.');
            rw_buf_puts(b, n->ident[i]);
        }
        break;
    case N_DOT:
        rw_buf_putc(b, '.');
        break;
    case N_NIL:
        rw_buf_puts(b, "nil");
        break;
    case N_BOOL:
        rw_buf_puts(b, n->b ? "true" : "false");
        break;
    case N_NUMBER:
    case N_STRING:
        rw_buf_append(b, n->src, n->srclen);
        break;
    case N_IDENT:
        rw_buf_puts(b, n->text);
        break;
    }
}
