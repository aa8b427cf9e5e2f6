/* template_fmt.c - Go's fmt package as alert templates reach it: printing an
 * action's value (fmt.Fprint), print / println / printf, and the %v of maps,
 * samples and vectors. template_funcs.c and template_exec.c call in here.
 *
 * It follows fmt/print.go and fmt/format.go: the flag, width, precision and
 * [n] argument-index grammar, verbs per type with "%!d(string=x)" for a
 * verb that does not fit, "%!d(MISSING)", "%!(EXTRA int=1)", "%!(NOVERB)",
 * padding counted in runes, Go's integer formatting (sign before zero
 * padding, # prefixes), floats through C's printf where the two agree
 * (fixed precision %e %f %g round the exact binary value the same way) and
 * through Go's shortest formatting for %v / %g, and strconv.Quote for %q.
 * Width and precision above 10^6 are refused as Go refuses them. */
#include "template_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/text.h"

typedef struct fflags {
    int plus, minus, sharp, space, zero;
    int plus_v, sharp_v;
    int wid, prec;
    int wid_present, prec_present;
} fflags;

static int32_t udec(const char *s, size_t n, size_t *w)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0x80) {
        *w = 1;
        return p[0];
    }
    int need;
    int32_t cp, min;
    if ((p[0] & 0xe0) == 0xc0)
        need = 1, cp = p[0] & 0x1f, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        need = 2, cp = p[0] & 0x0f, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        need = 3, cp = p[0] & 0x07, min = 0x10000;
    else {
        *w = 1;
        return -1;
    }
    if ((size_t)need >= n) {
        *w = 1;
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *w = 1;
            return -1;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        *w = 1;
        return -1;
    }
    *w = (size_t)need + 1;
    return cp;
}

static size_t rune_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; c++) {
        size_t w;
        udec(s + i, n - i, &w);
        i += w;
    }
    return c;
}

/* unicode.IsPrint, exact for ASCII and Latin-1, approximate beyond. */
static int is_print(int32_t r)
{
    if (r < 0x80)
        return r >= 0x20 && r < 0x7f;
    if (r < 0xa0 || r == 0xa0 || r == 0xad)
        return 0;
    if (r == 0x1680 || (r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) ||
        (r >= 0x205f && r <= 0x206f) || r == 0x3000 || r == 0xfeff || (r >= 0xfff9 && r <= 0xfffb) ||
        (r >= 0xd800 && r <= 0xdfff) || r == 0xfffe || r == 0xffff || (r >= 0xe000 && r <= 0xf8ff) ||
        r >= 0xf0000)
        return 0;
    return 1;
}

static void pad(rw_buf *b, const fflags *f, int n)
{
    char chunk[256];
    memset(chunk, f->zero ? '0' : ' ', sizeof chunk);
    /* widths reach 10^6: write in chunks, stop once the capped buffer failed */
    while (n > 0 && !b->failed) {
        int k = n < (int)sizeof chunk ? n : (int)sizeof chunk;
        rw_buf_append(b, chunk, (size_t)k);
        n -= k;
    }
}

/* fmt.padString: width in runes. */
static void pad_str(rw_buf *b, const fflags *f, const char *s, size_t n)
{
    if (!f->wid_present || f->wid == 0) {
        rw_buf_append(b, s, n);
        return;
    }
    int w = f->wid - (int)rune_count(s, n);
    if (!f->minus) {
        pad(b, f, w);
        rw_buf_append(b, s, n);
    } else {
        rw_buf_append(b, s, n);
        pad(b, f, w);
    }
}

rw_rc tmpl_quote(rw_buf *b, const char *s, size_t n, int ascii)
{
    static const char hex[] = "0123456789abcdef";
    rw_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        size_t w;
        int32_t r = udec(s + i, n - i, &w);
        if (r < 0) {
            unsigned char c = (unsigned char)s[i];
            rw_buf_printf(b, "\\x%c%c", hex[c >> 4], hex[c & 15]);
            i += w;
            continue;
        }
        if (r == '"' || r == '\\') {
            rw_buf_putc(b, '\\');
            rw_buf_putc(b, (char)r);
        } else if (r < 0x80 && is_print(r)) {
            rw_buf_putc(b, (char)r);
        } else if (!ascii && is_print(r)) {
            rw_buf_append(b, s + i, w);
        } else {
            switch (r) {
            case '\a': rw_buf_puts(b, "\\a"); break;
            case '\b': rw_buf_puts(b, "\\b"); break;
            case '\f': rw_buf_puts(b, "\\f"); break;
            case '\n': rw_buf_puts(b, "\\n"); break;
            case '\r': rw_buf_puts(b, "\\r"); break;
            case '\t': rw_buf_puts(b, "\\t"); break;
            case '\v': rw_buf_puts(b, "\\v"); break;
            default:
                if (r < ' ' || r == 0x7f)
                    rw_buf_printf(b, "\\x%c%c", hex[r >> 4], hex[r & 15]);
                else if (r < 0x10000)
                    rw_buf_printf(b, "\\u%04x", (unsigned)r);
                else
                    rw_buf_printf(b, "\\U%08x", (unsigned)r);
            }
        }
        i += w;
    }
    return rw_buf_putc(b, '"');
}

/* strconv.CanBackquote */
static int can_backquote(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t w;
        int32_t r = udec(s + i, n - i, &w);
        if (r < 0 || r == '`' || r == 0xfeff)
            return 0;
        if (w == 1 && r < ' ' && r != '\t')
            return 0;
        if (r == 0x7f)
            return 0;
        i += w;
    }
    return 1;
}

static void fmt_bool(rw_buf *b, const fflags *f, int v)
{
    pad_str(b, f, v ? "true" : "false", v ? 4 : 5);
}

/* fmt.fmtInteger. */
static void fmt_integer(rw_buf *b, fflags f, uint64_t u, int base, int is_signed, int verb,
                        int upper)
{
    const char *digits = upper ? "0123456789ABCDEFX" : "0123456789abcdefx";
    int negative = is_signed && (int64_t)u < 0;
    if (negative)
        u = -u;
    char buf[72]; /* 64 binary digits at most; zero fill is written separately */
    int prec = 0;
    if (f.prec_present) {
        prec = f.prec;
        if (prec == 0 && u == 0) {
            fflags g = f;
            g.zero = 0;
            pad(b, &g, f.wid);
            return;
        }
    } else if (f.zero && f.wid_present) {
        prec = f.wid;
        if (negative || f.plus || f.space)
            prec--;
    }
    int i = (int)sizeof buf;
    do {
        buf[--i] = digits[u % (uint64_t)base];
        u /= (uint64_t)base;
    } while (u);
    int ndig = (int)sizeof buf - i;
    int fill = prec > ndig ? prec - ndig : 0;
    char pre[8];
    int np = 0;
    if (negative)
        pre[np++] = '-';
    else if (f.plus)
        pre[np++] = '+';
    else if (f.space)
        pre[np++] = ' ';
    if (f.sharp) {
        if (base == 2) {
            pre[np++] = '0';
            pre[np++] = 'b';
        } else if (base == 8 && !(fill > 0 || buf[i] == '0')) {
            pre[np++] = '0';
        } else if (base == 16) {
            pre[np++] = '0';
            pre[np++] = digits[16];
        }
    }
    if (verb == 'O') {
        pre[np++] = '0';
        pre[np++] = 'o';
    }
    /* Go puts the sign in front of the prefix */
    int total = np + fill + ndig;
    int padn = f.wid_present ? f.wid - total : 0;
    fflags g = f;
    g.zero = 0;
    if (padn > 0 && !f.minus)
        pad(b, &g, padn);
    rw_buf_append(b, pre, (size_t)np);
    for (int k = 0; k < fill; k++)
        rw_buf_putc(b, '0');
    rw_buf_append(b, buf + i, (size_t)ndig);
    if (padn > 0 && f.minus)
        pad(b, &g, padn);
}

/* fmt.fmtFloat with strconv.AppendFloat's output. prec -1: shortest. */
static void fmt_float(rw_buf *b, fflags f, double v, int verb, int prec)
{
    if (f.prec_present)
        prec = f.prec;
    /* %f of a denormal with a large precision has about 1100 significant
     * digits; the precision itself is at most 10^6 (parsenum) */
    size_t cap = (size_t)(prec > 0 ? prec : 0) + 1400;
    char *num = malloc(cap + 1);
    if (!num) {
        b->failed = 1;
        return;
    }
    num[0] = '+';
    char *s = num + 1;
    if (isnan(v)) {
        snprintf(s, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(s, cap, v > 0 ? "+Inf" : "-Inf");
    } else if ((verb == 'g' || verb == 'G') && prec < 0) {
        rw_fmt_float_g(v, s);
        if (verb == 'G')
            for (char *p = s; *p; p++)
                if (*p == 'e')
                    *p = 'E';
    } else if (verb == 'x' || verb == 'X') {
        char tmp[128];
        if (prec < 0)
            snprintf(tmp, sizeof tmp, verb == 'x' ? "%a" : "%A", v);
        else
            snprintf(tmp, sizeof tmp, verb == 'x' ? "%.*a" : "%.*A", prec > 100 ? 100 : prec, v);
        /* Go writes at least two exponent digits */
        char *pe = strpbrk(tmp, "pP");
        if (pe && (pe[1] == '+' || pe[1] == '-') && pe[2] && !pe[3])
            snprintf(s, cap, "%.*s%c%c0%c", (int)(pe - tmp), tmp, pe[0], pe[1], pe[2]);
        else
            snprintf(s, cap, "%s", tmp);
    } else if (verb == 'b') {
        int e;
        double m = frexp(v, &e);
        long long mant = (long long)ldexp(m, 53);
        snprintf(s, cap, "%lldp%+d", mant, e - 53);
    } else {
        char cf[8] = {'%', '.', '*', (char)verb, 0};
        snprintf(s, cap, cf, prec, v);
    }
    char *n = num;
    size_t len = strlen(num);
    if (num[1] == '-' || num[1] == '+') {
        n = num + 1;
        len--;
    }
    if (f.space && n[0] == '+' && !f.plus)
        n[0] = ' ';
    if (n[1] == 'I' || n[1] == 'N') {
        fflags g = f;
        g.zero = 0;
        if (n[1] == 'N' && !f.space && !f.plus) {
            n++;
            len--;
        }
        pad_str(b, &g, n, len);
        free(num);
        return;
    }
    if (f.plus || n[0] != '+') {
        if (f.zero && f.wid_present && f.wid > (int)len) {
            rw_buf_putc(b, n[0]);
            pad(b, &f, f.wid - (int)len);
            rw_buf_append(b, n + 1, len - 1);
            free(num);
            return;
        }
        pad_str(b, &f, n, len);
        free(num);
        return;
    }
    pad_str(b, &f, n + 1, len - 1);
    free(num);
}

static void fmt_sx(rw_buf *b, const fflags *f, const char *s, size_t n, int upper)
{
    const char *digits = upper ? "0123456789ABCDEFX" : "0123456789abcdefx";
    size_t length = n;
    if (f->prec_present && (size_t)f->prec < length)
        length = (size_t)f->prec;
    int width = 2 * (int)length;
    if (width > 0) {
        if (f->space) {
            if (f->sharp)
                width *= 2;
            width += (int)length - 1;
        } else if (f->sharp) {
            width += 2;
        }
    } else {
        if (f->wid_present)
            pad(b, f, f->wid);
        return;
    }
    if (f->wid_present && f->wid > width && !f->minus)
        pad(b, f, f->wid - width);
    if (f->sharp) {
        rw_buf_putc(b, '0');
        rw_buf_putc(b, digits[16]);
    }
    for (size_t i = 0; i < length; i++) {
        if (f->space && i > 0) {
            rw_buf_putc(b, ' ');
            if (f->sharp) {
                rw_buf_putc(b, '0');
                rw_buf_putc(b, digits[16]);
            }
        }
        unsigned char c = (unsigned char)s[i];
        rw_buf_putc(b, digits[c >> 4]);
        rw_buf_putc(b, digits[c & 15]);
    }
    if (f->wid_present && f->wid > width && f->minus)
        pad(b, f, f->wid - width);
}

/* s truncated to prec runes */
static size_t trunc_prec(const fflags *f, const char *s, size_t n)
{
    if (!f->prec_present)
        return n;
    size_t i = 0;
    for (int k = 0; k < f->prec && i < n; k++) {
        size_t w;
        udec(s + i, n - i, &w);
        i += w;
    }
    return i;
}

static void fmt_string(rw_buf *b, fflags f, const char *s, size_t n, int verb)
{
    switch (verb) {
    case 'v':
        if (f.sharp_v) {
            rw_buf q;
            rw_buf_init(&q, 0);
            tmpl_quote(&q, s, n, 0);
            pad_str(b, &f, q.p ? q.p : "", q.len);
            rw_buf_free(&q);
            return;
        }
        /* fallthrough */
    case 's':
        pad_str(b, &f, s, trunc_prec(&f, s, n));
        return;
    case 'x':
    case 'X':
        fmt_sx(b, &f, s, n, verb == 'X');
        return;
    case 'q': {
        n = trunc_prec(&f, s, n);
        rw_buf q;
        rw_buf_init(&q, 0);
        if (f.sharp && can_backquote(s, n)) {
            rw_buf_putc(&q, '`');
            rw_buf_append(&q, s, n);
            rw_buf_putc(&q, '`');
        } else {
            tmpl_quote(&q, s, n, f.plus);
        }
        pad_str(b, &f, q.p ? q.p : "", q.len);
        rw_buf_free(&q);
        return;
    }
    }
}

static rw_rc print_arg(texec *x, rw_buf *b, const tv *v, int verb, fflags f, int depth);

static void bad_verb(texec *x, rw_buf *b, const tv *v, int verb, fflags f)
{
    rw_buf_puts(b, "%!");
    char enc[4];
    rw_buf_append(b, enc, rw_utf8_put(enc, (uint32_t)verb));
    rw_buf_putc(b, '(');
    if (v->k == TV_INVALID) {
        rw_buf_puts(b, "<nil>");
    } else {
        rw_buf_puts(b, tmpl_type_name(v));
        rw_buf_putc(b, '=');
        print_arg(x, b, v, 'v', f, 0);
    }
    rw_buf_putc(b, ')');
}

static void label_map(texec *x, rw_buf *b, const rw_label *l, size_t n, int verb, fflags f)
{
    /* fmtsort: keys in order */
    const rw_label **ord = n ? malloc(n * sizeof *ord) : NULL;
    if (n && !ord) {
        b->failed = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = &l[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(ord[j - 1]->name, ord[j]->name) > 0; j--) {
            const rw_label *t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    rw_buf_puts(b, "map[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(b, ' ');
        tv k = {TV_STRING, {.s = {ord[i]->name, strlen(ord[i]->name)}}};
        tv v = {TV_STRING, {.s = {ord[i]->value, strlen(ord[i]->value)}}};
        print_arg(x, b, &k, verb, f, 1);
        rw_buf_putc(b, ':');
        print_arg(x, b, &v, verb, f, 1);
    }
    rw_buf_putc(b, ']');
    free(ord);
}

static rw_rc print_arg(texec *x, rw_buf *b, const tv *v, int verb, fflags f, int depth)
{
    if (verb == 'T') {
        pad_str(b, &f, tmpl_type_name(v), strlen(tmpl_type_name(v)));
        return RW_OK;
    }
    switch (v->k) {
    case TV_INVALID:
        if (verb == 'v')
            pad_str(b, &f, "<nil>", 5);
        else
            bad_verb(x, b, v, verb, f);
        break;
    case TV_BOOL:
        if (verb == 't' || verb == 'v')
            fmt_bool(b, &f, v->u.b);
        else
            bad_verb(x, b, v, verb, f);
        break;
    case TV_INT: {
        uint64_t u = (uint64_t)v->u.i;
        switch (verb) {
        case 'v':
        case 'd':
            fmt_integer(b, f, u, 10, 1, verb, 0);
            break;
        case 'b':
            fmt_integer(b, f, u, 2, 1, verb, 0);
            break;
        case 'o':
        case 'O':
            fmt_integer(b, f, u, 8, 1, verb, 0);
            break;
        case 'x':
            fmt_integer(b, f, u, 16, 1, verb, 0);
            break;
        case 'X':
            fmt_integer(b, f, u, 16, 1, verb, 1);
            break;
        case 'c': {
            char enc[4];
            int64_t r = v->u.i;
            if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
                r = 0xfffd;
            pad_str(b, &f, enc, rw_utf8_put(enc, (uint32_t)r));
            break;
        }
        case 'q': {
            int64_t r = v->u.i;
            if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
                r = 0xfffd;
            char enc[4];
            size_t en = rw_utf8_put(enc, (uint32_t)r);
            rw_buf q;
            rw_buf_init(&q, 0);
            if (r == '\'') {
                rw_buf_puts(&q, "'\\''");
            } else if (r == '"') {
                rw_buf_puts(&q, "'\"'");
            } else {
                tmpl_quote(&q, enc, en, f.plus);
                q.p[0] = '\'';
                q.p[q.len - 1] = '\'';
            }
            pad_str(b, &f, q.p, q.len);
            rw_buf_free(&q);
            break;
        }
        case 'U': {
            char tmp[64];
            int n = snprintf(tmp, sizeof tmp, "U+%04llX", (unsigned long long)u);
            if (f.sharp && v->u.i >= 0 && v->u.i <= 0x10ffff && is_print((int32_t)v->u.i)) {
                char enc[4];
                size_t en = rw_utf8_put(enc, (uint32_t)v->u.i);
                n += snprintf(tmp + n, sizeof tmp - (size_t)n, " '%.*s'", (int)en, enc);
            }
            fflags g = f;
            g.zero = 0;
            pad_str(b, &g, tmp, (size_t)n);
            break;
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 's':
        default:
            bad_verb(x, b, v, verb, f);
        }
        break;
    }
    case TV_FLOAT:
        switch (verb) {
        case 'v':
            fmt_float(b, f, v->u.f, 'g', -1);
            break;
        case 'b':
        case 'g':
        case 'G':
        case 'x':
        case 'X':
            fmt_float(b, f, v->u.f, verb, -1);
            break;
        case 'f':
        case 'e':
        case 'E':
        case 'F':
            fmt_float(b, f, v->u.f, verb, 6);
            break;
        default:
            bad_verb(x, b, v, verb, f);
        }
        break;
    case TV_STRING:
    case TV_HTML:
        if (verb == 'v' || verb == 's' || verb == 'x' || verb == 'X' || verb == 'q')
            fmt_string(b, f, v->u.s.p, v->u.s.n, verb);
        else
            bad_verb(x, b, v, verb, f);
        break;
    case TV_LABELS:
        label_map(x, b, v->u.lm ? v->u.lm->v : NULL, v->u.lm ? v->u.lm->n : 0, verb, f);
        break;
    case TV_SAMPLE:
        if (!v->u.sm) {
            if (verb == 'v')
                pad_str(b, &f, "<nil>", 5);
            else
                bad_verb(x, b, v, verb, f);
            break;
        }
        if (depth >= 0)
            rw_buf_putc(b, '&');
        rw_buf_putc(b, '{');
        if (f.plus_v)
            rw_buf_puts(b, "Labels:");
        label_map(x, b, v->u.sm->labels, v->u.sm->nlabels, verb, f);
        rw_buf_putc(b, ' ');
        if (f.plus_v)
            rw_buf_puts(b, "Value:");
        {
            tv fv = {TV_FLOAT, {.f = v->u.sm->value}};
            print_arg(x, b, &fv, verb, f, 1);
        }
        rw_buf_putc(b, '}');
        break;
    case TV_VECTOR:
        rw_buf_putc(b, '[');
        for (size_t i = 0; v->u.vec && i < v->u.vec->n; i++) {
            if (i)
                rw_buf_putc(b, ' ');
            tv e = {TV_SAMPLE, {.sm = v->u.vec->v[i]}};
            print_arg(x, b, &e, verb, f, 1);
            if (b->failed)
                break;
        }
        rw_buf_putc(b, ']');
        break;
    case TV_ARGS: {
        size_t n = v->u.args ? v->u.args->n : 0;
        /* keys arg0, arg1, arg10, arg2 ...: sorted as strings */
        size_t *ord = n ? malloc(n * sizeof *ord) : NULL;
        for (size_t i = 0; ord && i < n; i++)
            ord[i] = i;
        for (size_t i = 1; ord && i < n; i++)
            for (size_t j = i; j > 0; j--) {
                char a[32], c[32];
                snprintf(a, sizeof a, "arg%zu", ord[j - 1]);
                snprintf(c, sizeof c, "arg%zu", ord[j]);
                if (strcmp(a, c) <= 0)
                    break;
                size_t t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        rw_buf_puts(b, "map[");
        for (size_t i = 0; ord && i < n; i++) {
            char k[32];
            int kn = snprintf(k, sizeof k, "arg%zu", ord[i]);
            if (i)
                rw_buf_putc(b, ' ');
            tv kv = {TV_STRING, {.s = {k, (size_t)kn}}};
            print_arg(x, b, &kv, verb, f, depth + 1);
            rw_buf_putc(b, ':');
            print_arg(x, b, &v->u.args->v[ord[i]], verb, f, depth + 1);
        }
        rw_buf_putc(b, ']');
        free(ord);
        break;
    }
    case TV_DATA: {
        rw_buf_putc(b, '{');
        if (f.plus_v)
            rw_buf_puts(b, "Labels:");
        label_map(x, b, x->labels.v, x->labels.n, verb, f);
        rw_buf_putc(b, ' ');
        if (f.plus_v)
            rw_buf_puts(b, "ExternalLabels:");
        label_map(x, b, x->external.v, x->external.n, verb, f);
        rw_buf_putc(b, ' ');
        if (f.plus_v)
            rw_buf_puts(b, "ExternalURL:");
        const char *u = x->d->external_url ? x->d->external_url : "";
        tv uv = {TV_STRING, {.s = {u, strlen(u)}}};
        print_arg(x, b, &uv, verb, f, 1);
        rw_buf_putc(b, ' ');
        if (f.plus_v)
            rw_buf_puts(b, "Value:");
        tv fv = {TV_FLOAT, {.f = x->d->value}};
        print_arg(x, b, &fv, verb, f, 1);
        rw_buf_putc(b, '}');
        break;
    }
    }
    return RW_OK;
}

rw_rc tmpl_fmt_value(texec *x, rw_buf *b, const tv *v, int verb, int depth)
{
    fflags f;
    memset(&f, 0, sizeof f);
    return print_arg(x, b, v, verb, f, depth);
}

static int is_stringish(const tv *v) { return v->k == TV_STRING || v->k == TV_HTML; }

rw_rc tmpl_sprint(texec *x, rw_buf *b, const tv *args, size_t n, int ln)
{
    fflags f;
    memset(&f, 0, sizeof f);
    int prev_string = 0;
    for (size_t i = 0; i < n; i++) {
        int s = is_stringish(&args[i]);
        if (i > 0 && (ln || (!s && !prev_string)))
            rw_buf_putc(b, ' ');
        print_arg(x, b, &args[i], 'v', f, 0);
        prev_string = s;
    }
    if (ln)
        rw_buf_putc(b, '\n');
    return b->failed ? RW_LIMIT : RW_OK;
}

#define TOO_LARGE(n) ((n) > 1000000 || (n) < -1000000)

/* parsenum: digits at f[*i..end); 0 when none or too large. */
static int parsenum(const char *s, size_t *i, size_t end, int *num)
{
    int isnum = 0;
    *num = 0;
    if (*i >= end)
        return 0;
    for (; *i < end && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        if (TOO_LARGE(*num)) {
            *num = 0;
            *i = end;
            return 0;
        }
        *num = *num * 10 + (s[*i] - '0');
        isnum = 1;
    }
    return isnum;
}

typedef struct pstate {
    int reordered, good_argnum;
} pstate;

/* [n] argument index: returns the new argument number, moves *i. */
static size_t arg_number(pstate *ps, size_t argnum, const char *s, size_t *i, size_t end,
                         size_t nargs, int *found)
{
    *found = 0;
    if (*i >= end || s[*i] != '[')
        return argnum;
    ps->reordered = 1;
    if (end - *i < 3) {
        (*i)++;
        ps->good_argnum = 0;
        return argnum;
    }
    for (size_t k = *i + 1; k < end; k++) {
        if (s[k] == ']') {
            size_t p = *i + 1;
            int width;
            int ok = parsenum(s, &p, k, &width);
            size_t next = k + 1;
            if (!ok || p != k) {
                *i = next;
                ps->good_argnum = 0;
                return argnum;
            }
            *i = next;
            *found = 1;
            if (width - 1 >= 0 && (size_t)(width - 1) < nargs)
                return (size_t)(width - 1);
            ps->good_argnum = 0;
            return argnum;
        }
    }
    (*i)++;
    ps->good_argnum = 0;
    return argnum;
}

static int int_from_arg(const tv *args, size_t n, size_t *argnum, int *num)
{
    int isint = 0;
    *num = 0;
    if (*argnum < n) {
        const tv *a = &args[*argnum];
        if (a->k == TV_INT && !TOO_LARGE(a->u.i)) {
            *num = (int)a->u.i;
            isint = 1;
        }
        (*argnum)++;
    }
    return isint;
}

rw_rc tmpl_sprintf(texec *x, rw_buf *b, const char *s, size_t end, const tv *args, size_t nargs)
{
    pstate ps = {0, 1};
    size_t argnum = 0;
    int after_index = 0;
    for (size_t i = 0; i < end;) {
        ps.good_argnum = 1;
        size_t lasti = i;
        while (i < end && s[i] != '%')
            i++;
        if (i > lasti)
            rw_buf_append(b, s + lasti, i - lasti);
        if (i >= end)
            break;
        i++;
        fflags f;
        memset(&f, 0, sizeof f);
        for (; i < end; i++) {
            char c = s[i];
            if (c == '#')
                f.sharp = 1;
            else if (c == '0')
                f.zero = !f.minus;
            else if (c == '+')
                f.plus = 1;
            else if (c == '-') {
                f.minus = 1;
                f.zero = 0;
            } else if (c == ' ')
                f.space = 1;
            else
                break;
        }
        argnum = arg_number(&ps, argnum, s, &i, end, nargs, &after_index);
        if (i < end && s[i] == '*') {
            i++;
            f.wid_present = int_from_arg(args, nargs, &argnum, &f.wid);
            if (!f.wid_present)
                rw_buf_puts(b, "%!(BADWIDTH)");
            if (f.wid < 0) {
                f.wid = -f.wid;
                f.minus = 1;
                f.zero = 0;
            }
            after_index = 0;
        } else {
            f.wid_present = parsenum(s, &i, end, &f.wid);
            if (after_index && f.wid_present)
                ps.good_argnum = 0;
        }
        if (i + 1 < end && s[i] == '.') {
            i++;
            if (after_index)
                ps.good_argnum = 0;
            argnum = arg_number(&ps, argnum, s, &i, end, nargs, &after_index);
            if (i < end && s[i] == '*') {
                i++;
                f.prec_present = int_from_arg(args, nargs, &argnum, &f.prec);
                if (f.prec < 0) {
                    f.prec = 0;
                    f.prec_present = 0;
                }
                if (!f.prec_present)
                    rw_buf_puts(b, "%!(BADPREC)");
                after_index = 0;
            } else {
                f.prec_present = parsenum(s, &i, end, &f.prec);
                if (!f.prec_present) {
                    f.prec = 0;
                    f.prec_present = 1;
                }
            }
        }
        if (!after_index)
            argnum = arg_number(&ps, argnum, s, &i, end, nargs, &after_index);
        if (i >= end) {
            rw_buf_puts(b, "%!(NOVERB)");
            break;
        }
        size_t w;
        int32_t verb = udec(s + i, end - i, &w);
        if (verb < 0)
            verb = 0xfffd;
        i += w;
        char enc[4];
        if (verb == '%') {
            rw_buf_putc(b, '%');
        } else if (!ps.good_argnum) {
            rw_buf_puts(b, "%!");
            rw_buf_append(b, enc, rw_utf8_put(enc, (uint32_t)verb));
            rw_buf_puts(b, "(BADINDEX)");
        } else if (argnum >= nargs) {
            rw_buf_puts(b, "%!");
            rw_buf_append(b, enc, rw_utf8_put(enc, (uint32_t)verb));
            rw_buf_puts(b, "(MISSING)");
        } else {
            if (verb == 'v') {
                f.sharp_v = f.sharp;
                f.sharp = 0;
                f.plus_v = f.plus;
                f.plus = 0;
            }
            print_arg(x, b, &args[argnum], verb, f, 0);
            argnum++;
        }
        if (b->failed)
            return RW_LIMIT;
    }
    if (!ps.reordered && argnum < nargs) {
        fflags f;
        memset(&f, 0, sizeof f);
        rw_buf_puts(b, "%!(EXTRA ");
        for (size_t k = argnum; k < nargs; k++) {
            if (k > argnum)
                rw_buf_puts(b, ", ");
            if (args[k].k == TV_INVALID) {
                rw_buf_puts(b, "<nil>");
            } else {
                rw_buf_puts(b, tmpl_type_name(&args[k]));
                rw_buf_putc(b, '=');
                print_arg(x, b, &args[k], 'v', f, 0);
            }
        }
        rw_buf_putc(b, ')');
    }
    return b->failed ? RW_LIMIT : RW_OK;
}
