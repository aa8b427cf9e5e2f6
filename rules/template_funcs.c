/* template_funcs.c - the functions alert templates can call: Go's
 * text/template built-ins (and, or, not, len, index, slice, print, printf,
 * println, html, js, urlquery, eq, ne, lt, le, gt, ge) and Prometheus'
 * template functions (query, first, label, value, humanize*, title,
 * reReplaceAll, ...), in one table that the parser checks names against and
 * the executor dispatches from (template_exec.c validates argument counts
 * and types from the table before calling).
 *
 * Each function reproduces its Go counterpart: Prometheus' humanize family
 * as template/template.go and prometheus/common's helpers write them,
 * strings.ToUpper/ToLower, x/text/cases' Title with NoLower (what
 * Prometheus 3 uses), Go's regexp ReplaceAllString (RE2 syntax compiled with
 * PCRE2, Perl-only syntax refused as Go refuses it, $1 / ${name}
 * expansion), net.SplitHostPort, url.QueryEscape, and Go's error texts. */
#include "template_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/text.h"
#include "core/timeutil.h"

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

static void set_str(tv *out, const char *p, size_t n)
{
    out->k = TV_STRING;
    out->u.s.p = p;
    out->u.s.n = n;
}

static void set_bool(tv *out, int b)
{
    out->k = TV_BOOL;
    out->u.b = b;
}

/* ---- UTF-8 and simple case mapping ---- */

static int32_t dec(const char *s, size_t n, size_t *w)
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

/* Simple (one-rune) case mappings for ASCII, Latin-1, Latin Extended-A,
 * Greek and Cyrillic: the scripts label values are written in. Other runes
 * are left as they are. */
/* The Latin digraphs DŽ Dž dž, LJ Lj lj, NJ Nj nj, DZ Dz dz: upper, title,
 * lower in a row. Returns 0 for other runes. */
static int digraph_base(int32_t r)
{
    if (r >= 0x1c4 && r <= 0x1cc)
        return 0x1c4 + (r - 0x1c4) / 3 * 3;
    if (r >= 0x1f1 && r <= 0x1f3)
        return 0x1f1;
    return 0;
}

static int32_t to_upper(int32_t r)
{
    if (r >= 'a' && r <= 'z')
        return r - 32;
    if (r < 0x80)
        return r;
    if (digraph_base(r))
        return digraph_base(r);
    if (r == 0xb5)
        return 0x39c;
    if (r >= 0xe0 && r <= 0xfe && r != 0xf7)
        return r - 32;
    if (r == 0xff)
        return 0x178;
    if (r >= 0x100 && r <= 0x17f) {
        if (r == 0x131)
            return 'I';
        if (r == 0x17f)
            return 'S';
        if ((r >= 0x139 && r <= 0x148) || (r >= 0x179 && r <= 0x17e))
            return (r & 1) ? r : r - 1;
        if (r == 0x130 || r == 0x138 || r == 0x149 || r == 0x178)
            return r;
        return (r & 1) ? r - 1 : r;
    }
    if (r >= 0x3b1 && r <= 0x3c9 && r != 0x3c2)
        return r - 32;
    if (r == 0x3c2)
        return 0x3a3;
    if (r >= 0x430 && r <= 0x44f)
        return r - 32;
    if (r >= 0x450 && r <= 0x45f)
        return r - 80;
    return r;
}

static int32_t to_lower(int32_t r)
{
    if (r >= 'A' && r <= 'Z')
        return r + 32;
    if (r < 0x80)
        return r;
    if (digraph_base(r))
        return digraph_base(r) + 2;
    if (r >= 0xc0 && r <= 0xde && r != 0xd7)
        return r + 32;
    if (r == 0x178)
        return 0xff;
    if (r >= 0x100 && r <= 0x17f) {
        if (r == 0x130)
            return 'i';
        if ((r >= 0x139 && r <= 0x148) || (r >= 0x179 && r <= 0x17e))
            return (r & 1) ? r + 1 : r;
        if (r == 0x131 || r == 0x138 || r == 0x149 || r == 0x17f)
            return r;
        return (r & 1) ? r : r + 1;
    }
    if (r >= 0x391 && r <= 0x3a9 && r != 0x3a2)
        return r + 32;
    if (r >= 0x410 && r <= 0x42f)
        return r + 32;
    if (r >= 0x400 && r <= 0x40f)
        return r + 80;
    return r;
}

static int is_cased(int32_t r) { return to_upper(r) != r || to_lower(r) != r || r == 0xdf; }

/* strings.ToUpper / ToLower: invalid UTF-8 becomes U+FFFD, as strings.Map does. */
static rw_rc map_case(texec *x, const tv *s, int upper, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    for (size_t i = 0; i < s->u.s.n;) {
        size_t w;
        int32_t r = dec(s->u.s.p + i, s->u.s.n - i, &w);
        if (r < 0)
            r = 0xfffd;
        r = upper ? to_upper(r) : to_lower(r);
        char enc[4];
        rw_buf_append(&b, enc, rw_utf8_put(enc, (uint32_t)r));
        i += w;
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_toupper(texec *x, const tv *a, size_t n, tv *out) { return map_case(x, &a[0], 1, out); }
static rw_rc f_tolower(texec *x, const tv *a, size_t n, tv *out) { return map_case(x, &a[0], 0, out); }

/* Word-break classes of x/text/cases' title caser: letters, digits and '_'
 * continue a word; the mid-word characters ' . : (and the Unicode
 * MidLetter/MidNumLet ones) continue it once; everything else breaks. */
static int is_mid(int32_t r)
{
    return r == '\'' || r == '.' || r == ':' || r == 0xb7 || r == 0x387 || r == 0x2018 ||
           r == 0x2019 || r == 0x2024 || r == 0x2027 || r == 0xfe13 || r == 0xfe52 ||
           r == 0xfe55 || r == 0xff07 || r == 0xff0e || r == 0xff1a;
}

static int is_break(int32_t r)
{
    if (r < 0)
        return 0;
    if (r < 0x80)
        return !((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
                 r == '_' || is_mid(r));
    if (is_mid(r))
        return 0;
    return (r >= 0x80 && r <= 0xbf && r != 0xaa && r != 0xb5 && r != 0xba) || r == 0xd7 ||
           r == 0xf7 || (r >= 0x2000 && r <= 0x2bff) || (r >= 0x3000 && r <= 0x3003);
}

static rw_rc f_title(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    const char *s = a[0].u.s.p;
    size_t len = a[0].u.s.n;
    int mid_word = 0, was_mid = 0;
    for (size_t i = 0; i < len;) {
        size_t w;
        int32_t r = dec(s + i, len - i, &w);
        int mid = r >= 0 && is_mid(r);
        if (i > 0 && was_mid && mid)
            mid_word = 0;
        if (r >= 0 && is_cased(r)) {
            int32_t o = r;
            if (!mid_word) {
                o = digraph_base(r) ? digraph_base(r) + 1 : to_upper(r);
                mid_word = 1;
            }
            char enc[4];
            rw_buf_append(&b, enc, rw_utf8_put(enc, (uint32_t)o));
        } else {
            rw_buf_append(&b, s + i, w);
            if (is_break(r))
                mid_word = 0;
        }
        was_mid = mid;
        i += w;
    }
    return tmpl_buf_str(x, &b, out);
}

/* ---- numbers ---- */

int tmpl_parse_float(const char *s, size_t n, double *out)
{
    char buf[512];
    size_t i = 0, o = 0;
    if (n == 0 || n >= sizeof buf)
        return -1;
    if (s[i] == '+' || s[i] == '-')
        buf[o++] = s[i++];
    const char *rest = s + i;
    size_t rn = n - i;
    static const char *const specials[] = {"inf", "infinity", "nan"};
    for (size_t k = 0; k < 3; k++)
        if (rn == strlen(specials[k]) && strncasecmp(rest, specials[k], rn) == 0) {
            double v = k == 2 ? NAN : INFINITY;
            *out = (o && buf[0] == '-' && k != 2) ? -v : v;
            return 0;
        }
    int hex = rn > 2 && rest[0] == '0' && (rest[1] == 'x' || rest[1] == 'X');
    size_t j = 0;
    int digits = 0, exp = 0, dot = 0;
    char last = '^';
    if (hex) {
        buf[o++] = '0';
        buf[o++] = 'x';
        j = 2;
        last = '0'; /* a base prefix counts as a digit for '_' */
    }
    for (; j < rn; j++) {
        char c = rest[j];
        if (c == '_') {
            if (last != '0')
                return -1;
            last = '_';
            continue;
        }
        int isdig = hex && !exp ? rw_hex_digit((unsigned char)c) >= 0 : (c >= '0' && c <= '9');
        if (isdig) {
            digits++;
            last = '0';
        } else if (c == '.' && !dot && !exp) {
            dot = 1;
            last = '.';
        } else if (!exp && ((!hex && (c == 'e' || c == 'E')) || (hex && (c == 'p' || c == 'P')))) {
            if (!digits)
                return -1;
            exp = 1;
            last = 'e';
            buf[o++] = c;
            if (j + 1 < rn && (rest[j + 1] == '+' || rest[j + 1] == '-'))
                buf[o++] = rest[++j];
            if (j + 1 >= rn)
                return -1;
            continue;
        } else {
            return -1;
        }
        buf[o++] = c;
    }
    if (!digits || last == '_' || last == 'e' || (hex && !exp))
        return -1;
    buf[o] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end)
        return -1;
    *out = v;
    if (isinf(v))
        return -2;
    return 0;
}

/* prometheus/common ConvertToFloat. */
static rw_rc to_float(texec *x, const char *fn, const tv *v, double *out)
{
    switch (v->k) {
    case TV_FLOAT:
        *out = v->u.f;
        return RW_OK;
    case TV_INT:
        *out = (double)v->u.i;
        return RW_OK;
    case TV_STRING: {
        int r = tmpl_parse_float(v->u.s.p, v->u.s.n, out);
        if (r == 0)
            return RW_OK;
        rw_buf q;
        rw_buf_init(&q, 1024);
        tmpl_quote(&q, v->u.s.p, v->u.s.n, 0);
        rw_rc rc = ferr(x, fn, "strconv.ParseFloat: parsing %s: %s", q.p ? q.p : "",
                        r == -2 ? "value out of range" : "invalid syntax");
        rw_buf_free(&q);
        return rc;
    }
    default:
        return ferr(x, fn, "can't convert %s to float", tmpl_type_name(v));
    }
}

void tmpl_fmt_g(double v, int prec, char *out, size_t cap)
{
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(out, cap, "%.*g", prec, v);
}

static rw_rc str_out(texec *x, const char *s, tv *out) { return tmpl_str(x, s, strlen(s), out); }

static rw_rc f_humanize(texec *x, const tv *a, size_t n, tv *out)
{
    double v;
    rw_rc rc = to_float(x, "humanize", &a[0], &v);
    if (rc != RW_OK)
        return rc;
    char num[64], res[80];
    if (v == 0 || isnan(v) || isinf(v)) {
        tmpl_fmt_g(v, 4, res, sizeof res);
        return str_out(x, res, out);
    }
    const char *prefix = "";
    if (fabs(v) >= 1) {
        static const char *const big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
        for (size_t i = 0; i < 8; i++) {
            if (fabs(v) < 1000)
                break;
            prefix = big[i];
            v /= 1000;
        }
    } else {
        static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
        for (size_t i = 0; i < 8; i++) {
            if (fabs(v) >= 1)
                break;
            prefix = small[i];
            v *= 1000;
        }
    }
    tmpl_fmt_g(v, 4, num, sizeof num);
    snprintf(res, sizeof res, "%s%s", num, prefix);
    return str_out(x, res, out);
}

static rw_rc f_humanize1024(texec *x, const tv *a, size_t n, tv *out)
{
    double v;
    rw_rc rc = to_float(x, "humanize1024", &a[0], &v);
    if (rc != RW_OK)
        return rc;
    char num[64], res[80];
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
        tmpl_fmt_g(v, 4, res, sizeof res);
        return str_out(x, res, out);
    }
    static const char *const pre[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
    const char *prefix = "";
    for (size_t i = 0; i < 8; i++) {
        if (fabs(v) < 1024)
            break;
        prefix = pre[i];
        v /= 1024;
    }
    tmpl_fmt_g(v, 4, num, sizeof num);
    snprintf(res, sizeof res, "%s%s", num, prefix);
    return str_out(x, res, out);
}

/* Go's int64(f) on amd64: out-of-range conversions give INT64_MIN. */
static int64_t go_int64(double f)
{
    if (!(f > -9223372036854775808.0 && f < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)f;
}

static rw_rc f_humanize_duration(texec *x, const tv *a, size_t n, tv *out)
{
    double v;
    rw_rc rc = to_float(x, "humanizeDuration", &a[0], &v);
    if (rc != RW_OK)
        return rc;
    char num[64], res[160];
    if (isnan(v) || isinf(v)) {
        tmpl_fmt_g(v, 4, res, sizeof res);
        return str_out(x, res, out);
    }
    if (v == 0) {
        tmpl_fmt_g(v, 4, num, sizeof num);
        snprintf(res, sizeof res, "%ss", num);
        return str_out(x, res, out);
    }
    if (fabs(v) >= 1) {
        const char *sign = "";
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        int64_t d = go_int64(v);
        int64_t seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 60 / 60) % 24,
                days = d / 60 / 60 / 24;
        if (days != 0)
            snprintf(res, sizeof res, "%s%lldd %lldh %lldm %llds", sign, (long long)days,
                     (long long)hours, (long long)minutes, (long long)seconds);
        else if (hours != 0)
            snprintf(res, sizeof res, "%s%lldh %lldm %llds", sign, (long long)hours,
                     (long long)minutes, (long long)seconds);
        else if (minutes != 0)
            snprintf(res, sizeof res, "%s%lldm %llds", sign, (long long)minutes, (long long)seconds);
        else {
            tmpl_fmt_g(v, 4, num, sizeof num);
            snprintf(res, sizeof res, "%s%ss", sign, num);
        }
        return str_out(x, res, out);
    }
    static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    const char *prefix = "";
    for (size_t i = 0; i < 8; i++) {
        if (fabs(v) >= 1)
            break;
        prefix = small[i];
        v *= 1000;
    }
    tmpl_fmt_g(v, 4, num, sizeof num);
    snprintf(res, sizeof res, "%s%ss", num, prefix);
    return str_out(x, res, out);
}

static rw_rc f_humanize_percentage(texec *x, const tv *a, size_t n, tv *out)
{
    double v;
    rw_rc rc = to_float(x, "humanizePercentage", &a[0], &v);
    if (rc != RW_OK)
        return rc;
    char num[64], res[80];
    tmpl_fmt_g(v * 100, 4, num, sizeof num);
    snprintf(res, sizeof res, "%s%%", num);
    return str_out(x, res, out);
}

/* time.Time.String() of a UTC time with millisecond precision:
 * "2006-01-02 15:04:05.999999999 +0000 UTC". */
static void fmt_utc(int64_t ms, char *out, size_t cap)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* civil from days (Howard Hinnant's algorithm) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    char fr[8] = "";
    if (frac) {
        snprintf(fr, sizeof fr, ".%03d", (int)frac);
        size_t l = strlen(fr);
        while (fr[l - 1] == '0')
            fr[--l] = 0;
    }
    snprintf(out, cap, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld%s +0000 UTC", (long long)y,
             (long long)m, (long long)d, (long long)(rem / 3600), (long long)(rem / 60 % 60),
             (long long)(rem % 60), fr);
}

static rw_rc f_humanize_timestamp(texec *x, const tv *a, size_t n, tv *out)
{
    double v;
    rw_rc rc = to_float(x, "humanizeTimestamp", &a[0], &v);
    if (rc != RW_OK)
        return rc;
    char res[96];
    if (isnan(v) || isinf(v)) {
        tmpl_fmt_g(v, 4, res, sizeof res);
        return str_out(x, res, out);
    }
    double ns = v * 1e9;
    if (ns > 9223372036854775807.0 || ns < -9223372036854775808.0) {
        char g[40];
        rw_fmt_float_g(v, g);
        return ferr(x, "humanizeTimestamp",
                    "%s cannot be represented as a nanoseconds timestamp since it overflows int64", g);
    }
    int64_t ms = go_int64(ns) / 1000000;
    fmt_utc(ms, res, sizeof res);
    return str_out(x, res, out);
}

/* ---- builtins ---- */

static rw_rc f_unreachable(texec *x, const tv *a, size_t n, tv *out)
{
    return tmpl_fail(x, RW_INTERNAL, "unreachable");
}

static rw_rc f_not(texec *x, const tv *a, size_t n, tv *out)
{
    set_bool(out, !tmpl_truth(&a[0]));
    return RW_OK;
}

static rw_rc f_len(texec *x, const tv *a, size_t n, tv *out)
{
    int64_t l;
    switch (a[0].k) {
    case TV_STRING:
    case TV_HTML:
        l = (int64_t)a[0].u.s.n;
        break;
    case TV_LABELS:
        l = a[0].u.lm ? (int64_t)a[0].u.lm->n : 0;
        break;
    case TV_VECTOR:
        l = a[0].u.vec ? (int64_t)a[0].u.vec->n : 0;
        break;
    case TV_ARGS:
        l = a[0].u.args ? (int64_t)a[0].u.args->n : 0;
        break;
    case TV_INVALID:
        return ferr(x, "len", "reflect: call of reflect.Value.Type on zero Value");
    case TV_SAMPLE:
        if (!a[0].u.sm)
            return ferr(x, "len", "len of nil pointer");
        return ferr(x, "len", "len of type template.sample");
    default:
        return ferr(x, "len", "len of type %s", tmpl_type_name(&a[0]));
    }
    out->k = TV_INT;
    out->u.i = l;
    return RW_OK;
}

static rw_rc index_arg(texec *x, const char *fn, const tv *idx, int64_t cap, int64_t *out)
{
    if (idx->k == TV_INVALID)
        return ferr(x, fn, "cannot index slice/array with nil");
    if (idx->k != TV_INT)
        return ferr(x, fn, "cannot index slice/array with type %s", tmpl_type_name(idx));
    if (idx->u.i < 0 || idx->u.i > cap)
        return ferr(x, fn, "index out of range: %lld", (long long)idx->u.i);
    *out = idx->u.i;
    return RW_OK;
}

static rw_rc f_index(texec *x, const tv *a, size_t n, tv *out)
{
    tv item = a[0];
    if (item.k == TV_INVALID)
        return ferr(x, "index", "index of untyped nil");
    for (size_t i = 1; i < n; i++) {
        const tv *idx = &a[i];
        int64_t k;
        rw_rc rc;
        switch (item.k) {
        case TV_STRING:
        case TV_HTML:
            if ((rc = index_arg(x, "index", idx, (int64_t)item.u.s.n, &k)) != RW_OK)
                return rc;
            if ((size_t)k == item.u.s.n)
                return ferr(x, "index", "reflect: string index out of range");
            item.k = TV_INT;
            item.u.i = (unsigned char)item.u.s.p[k];
            break;
        case TV_VECTOR: {
            size_t len = item.u.vec ? item.u.vec->n : 0;
            if ((rc = index_arg(x, "index", idx, (int64_t)len, &k)) != RW_OK)
                return rc;
            if ((size_t)k == len)
                return ferr(x, "index", "reflect: slice index out of range");
            item.k = TV_SAMPLE;
            item.u.sm = item.u.vec->v[k];
            break;
        }
        case TV_LABELS:
        case TV_ARGS: {
            if (idx->k == TV_INVALID)
                return ferr(x, "index", "value is nil; should be of type string");
            if (idx->k != TV_STRING)
                return ferr(x, "index", "value has type %s; should be string", tmpl_type_name(idx));
            if (item.k == TV_LABELS) {
                const char *v = NULL;
                for (size_t j = 0; item.u.lm && j < item.u.lm->n; j++)
                    if (strlen(item.u.lm->v[j].name) == idx->u.s.n &&
                        memcmp(item.u.lm->v[j].name, idx->u.s.p, idx->u.s.n) == 0)
                        v = item.u.lm->v[j].value;
                set_str(&item, v ? v : "", v ? strlen(v) : 0);
            } else {
                const targs *m = item.u.args;
                tv v = {TV_INVALID, {0}};
                if (idx->u.s.n > 3 && !memcmp(idx->u.s.p, "arg", 3)) {
                    size_t ai = 0, j = 3;
                    int ok = idx->u.s.p[3] != '0' || idx->u.s.n == 4;
                    for (; j < idx->u.s.n && ok; j++) {
                        char c = idx->u.s.p[j];
                        if (c < '0' || c > '9' || ai > 100000000)
                            ok = 0;
                        else
                            ai = ai * 10 + (size_t)(c - '0');
                    }
                    if (ok && m && ai < m->n)
                        v = m->v[ai];
                }
                item = v;
            }
            break;
        }
        case TV_SAMPLE:
            if (!item.u.sm)
                return ferr(x, "index", "index of nil pointer");
            return ferr(x, "index", "can't index item of type template.sample");
        case TV_INVALID:
            return ferr(x, "index", "index of untyped nil");
        default:
            return ferr(x, "index", "can't index item of type %s", tmpl_type_name(&item));
        }
    }
    *out = item;
    return RW_OK;
}

static rw_rc f_slice(texec *x, const tv *a, size_t n, tv *out)
{
    tv item = a[0];
    size_t nidx = n - 1;
    if (item.k == TV_INVALID)
        return ferr(x, "slice", "slice of untyped nil");
    if (nidx > 3)
        return ferr(x, "slice", "too many slice indexes: %zu", nidx);
    int64_t cap;
    if (item.k == TV_STRING || item.k == TV_HTML) {
        if (nidx == 3)
            return ferr(x, "slice", "cannot 3-index slice a string");
        cap = (int64_t)item.u.s.n;
    } else if (item.k == TV_VECTOR) {
        cap = item.u.vec ? (int64_t)item.u.vec->n : 0;
    } else {
        return ferr(x, "slice", "can't slice item of type %s", tmpl_type_name(&item));
    }
    int64_t idx[3] = {0, cap, cap};
    for (size_t i = 0; i < nidx; i++) {
        rw_rc rc = index_arg(x, "slice", &a[1 + i], cap, &idx[i]);
        if (rc != RW_OK)
            return rc;
    }
    if (idx[0] > idx[1])
        return ferr(x, "slice", "invalid slice index: %lld > %lld", (long long)idx[0],
                    (long long)idx[1]);
    if (nidx == 3 && idx[1] > idx[2])
        return ferr(x, "slice", "invalid slice index: %lld > %lld", (long long)idx[1],
                    (long long)idx[2]);
    if (item.k == TV_VECTOR) {
        tvector *v = rw_arena_alloc(x->a, sizeof *v);
        if (!v)
            return tmpl_fail(x, RW_NOMEM, "out of memory");
        v->v = item.u.vec ? item.u.vec->v + idx[0] : NULL;
        v->n = (size_t)(idx[1] - idx[0]);
        out->k = TV_VECTOR;
        out->u.vec = v;
        return RW_OK;
    }
    *out = item;
    out->u.s.p += idx[0];
    out->u.s.n = (size_t)(idx[1] - idx[0]);
    return RW_OK;
}

static rw_rc f_print(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = tmpl_sprint(x, &b, a, n, 0);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_println(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = tmpl_sprint(x, &b, a, n, 1);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_printf(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = tmpl_sprintf(x, &b, a[0].u.s.p, a[0].u.s.n, a + 1, n - 1);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

/* text/template's evalArgs: one string as is, else fmt.Sprint. */
static rw_rc eval_args(texec *x, const tv *a, size_t n, rw_buf *b)
{
    if (n == 1 && a[0].k == TV_STRING)
        return rw_buf_append(b, a[0].u.s.p, a[0].u.s.n) == RW_OK ? RW_OK : RW_LIMIT;
    return tmpl_sprint(x, b, a, n, 0);
}

static rw_rc f_html(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf s, b;
    rw_buf_init(&s, RW_TMPL_MAX_WORK);
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = eval_args(x, a, n, &s);
    for (size_t i = 0; rc == RW_OK && i < s.len; i++) {
        switch (s.p[i]) {
        case 0: rw_buf_puts(&b, "\xef\xbf\xbd"); break;
        case '"': rw_buf_puts(&b, "&#34;"); break;
        case '\'': rw_buf_puts(&b, "&#39;"); break;
        case '&': rw_buf_puts(&b, "&amp;"); break;
        case '<': rw_buf_puts(&b, "&lt;"); break;
        case '>': rw_buf_puts(&b, "&gt;"); break;
        default: rw_buf_putc(&b, s.p[i]);
        }
    }
    rw_buf_free(&s);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_js(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf s, b;
    rw_buf_init(&s, RW_TMPL_MAX_WORK);
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = eval_args(x, a, n, &s);
    for (size_t i = 0; rc == RW_OK && i < s.len;) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x80) {
            switch (c) {
            case '\\': rw_buf_puts(&b, "\\\\"); break;
            case '\'': rw_buf_puts(&b, "\\'"); break;
            case '"': rw_buf_puts(&b, "\\\""); break;
            case '<': rw_buf_puts(&b, "\\u003C"); break;
            case '>': rw_buf_puts(&b, "\\u003E"); break;
            case '&': rw_buf_puts(&b, "\\u0026"); break;
            case '=': rw_buf_puts(&b, "\\u003D"); break;
            default:
                if (c < ' ')
                    rw_buf_printf(&b, "\\u00%02X", c);
                else
                    rw_buf_putc(&b, (char)c);
            }
            i++;
            continue;
        }
        size_t w;
        int32_t r = dec(s.p + i, s.len - i, &w);
        if (r < 0 || r == 0xfffd || (r >= 0x80 && r < 0xa0) || r == 0xad || r == 0x2028 ||
            r == 0x2029 || r == 0xfeff)
            rw_buf_printf(&b, "\\u%04X", r < 0 ? 0xfffd : (unsigned)r);
        else
            rw_buf_append(&b, s.p + i, w);
        i += w;
    }
    rw_buf_free(&s);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

/* url.QueryEscape */
static void query_escape(rw_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~')
            rw_buf_putc(b, (char)c);
        else if (c == ' ')
            rw_buf_putc(b, '+');
        else
            rw_buf_printf(b, "%%%02X", c);
    }
}

static rw_rc f_urlquery(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf s, b;
    rw_buf_init(&s, RW_TMPL_MAX_WORK);
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_rc rc = eval_args(x, a, n, &s);
    if (rc == RW_OK)
        query_escape(&b, s.p ? s.p : "", s.len);
    rw_buf_free(&s);
    if (rc != RW_OK) {
        rw_buf_free(&b);
        return rc;
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_url_query_escape(texec *x, const tv *a, size_t n, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    query_escape(&b, a[0].u.s.p, a[0].u.s.n);
    return tmpl_buf_str(x, &b, out);
}

/* ---- comparisons (Go's funcs.go) ---- */

enum { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING };

static int basic_kind(const tv *v)
{
    switch (v->k) {
    case TV_BOOL:
        return K_BOOL;
    case TV_INT:
        return K_INT;
    case TV_FLOAT:
        return K_FLOAT;
    case TV_STRING:
    case TV_HTML:
        return K_STRING;
    default:
        return K_INVALID;
    }
}

static int str_cmp(const tv *a, const tv *b)
{
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int c = memcmp(a->u.s.p, b->u.s.p, n);
    if (c)
        return c;
    return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
}

static int is_nil(const tv *v)
{
    return v->k == TV_INVALID || (v->k == TV_SAMPLE && !v->u.sm) || (v->k == TV_VECTOR && !v->u.vec);
}

/* eq a b: 1 / 0, or -1 with the error set. */
static int eq2(texec *x, const char *fn, const tv *a, const tv *b)
{
    int k1 = basic_kind(a), k2 = basic_kind(b);
    if (k1 != k2) {
        if (a->k != TV_INVALID && b->k != TV_INVALID) {
            if (k1 == K_INVALID && k2 == K_INVALID && a->k == b->k)
                goto nonbasic;
            ferr(x, fn, "incompatible types for comparison");
            return -1;
        }
        return 0;
    }
    switch (k1) {
    case K_BOOL:
        return a->u.b == b->u.b;
    case K_INT:
        return a->u.i == b->u.i;
    case K_FLOAT:
        return a->u.f == b->u.f;
    case K_STRING:
        return str_cmp(a, b) == 0;
    }
nonbasic:
    if (is_nil(a) || is_nil(b))
        return is_nil(a) == is_nil(b);
    if (a->k == TV_SAMPLE && b->k == TV_SAMPLE)
        return a->u.sm == b->u.sm;
    ferr(x, fn, "non-comparable type %s", tmpl_type_name(b));
    return -1;
}

static rw_rc f_eq(texec *x, const tv *a, size_t n, tv *out)
{
    if (n < 2)
        return ferr(x, "eq", "missing argument for comparison");
    for (size_t i = 1; i < n; i++) {
        int r = eq2(x, "eq", &a[0], &a[i]);
        if (r < 0)
            return RW_EXEC;
        if (r) {
            set_bool(out, 1);
            return RW_OK;
        }
    }
    set_bool(out, 0);
    return RW_OK;
}

static rw_rc f_ne(texec *x, const tv *a, size_t n, tv *out)
{
    int r = eq2(x, "ne", &a[0], &a[1]);
    if (r < 0)
        return RW_EXEC;
    set_bool(out, !r);
    return RW_OK;
}

/* lt a b: 1 / 0, or -1 with the error set. */
static int lt2(texec *x, const char *fn, const tv *a, const tv *b)
{
    int k1 = basic_kind(a), k2 = basic_kind(b);
    if (k1 == K_INVALID || k2 == K_INVALID) {
        ferr(x, fn, "invalid type for comparison");
        return -1;
    }
    if (k1 != k2) {
        ferr(x, fn, "incompatible types for comparison");
        return -1;
    }
    switch (k1) {
    case K_BOOL:
        ferr(x, fn, "invalid type for comparison");
        return -1;
    case K_INT:
        return a->u.i < b->u.i;
    case K_FLOAT:
        return a->u.f < b->u.f;
    default:
        return str_cmp(a, b) < 0;
    }
}

static rw_rc cmp_result(texec *x, const char *fn, const tv *a, tv *out)
{
    int lt = lt2(x, fn, &a[0], &a[1]);
    if (lt < 0)
        return RW_EXEC;
    int r;
    if (!strcmp(fn, "lt"))
        r = lt;
    else if (!strcmp(fn, "ge"))
        r = !lt;
    else {
        int le = lt;
        if (!lt) {
            int e = eq2(x, fn, &a[0], &a[1]);
            if (e < 0)
                return RW_EXEC;
            le = e;
        }
        r = !strcmp(fn, "le") ? le : !le;
    }
    set_bool(out, r);
    return RW_OK;
}

static rw_rc f_lt(texec *x, const tv *a, size_t n, tv *out) { return cmp_result(x, "lt", a, out); }
static rw_rc f_le(texec *x, const tv *a, size_t n, tv *out) { return cmp_result(x, "le", a, out); }
static rw_rc f_gt(texec *x, const tv *a, size_t n, tv *out) { return cmp_result(x, "gt", a, out); }
static rw_rc f_ge(texec *x, const tv *a, size_t n, tv *out) { return cmp_result(x, "ge", a, out); }

/* ---- queries and samples ---- */

static rw_rc f_query(texec *x, const tv *a, size_t n, tv *out)
{
    if (!x->d->query)
        return ferr(x, "query", "queries are not available here");
    if (++x->queries > RW_TMPL_MAX_QUERIES)
        return tmpl_fail(x, RW_LIMIT, "template ran more than %d queries", RW_TMPL_MAX_QUERIES);
    char *expr = rw_arena_strndup(x->a, a[0].u.s.p, a[0].u.s.n);
    if (!expr)
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    rw_result res;
    memset(&res, 0, sizeof res);
    rw_err qe;
    rw_err_init(&qe);
    rw_rc rc = x->d->query(x->d->query_ctx, expr, x->a, &res, &qe);
    if (rc != RW_OK) {
        ferr(x, "query", "%s", qe.msg);
        if (x->err)
            x->err->code = rc;
        return rc;
    }
    tvector *v = rw_arena_alloc(x->a, sizeof *v);
    if (!v)
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    v->n = 0;
    v->v = NULL;
    if (res.type == RW_VAL_SCALAR) {
        v->v = rw_arena_alloc(x->a, sizeof *v->v);
        tsample *s = rw_arena_calloc(x->a, 1, sizeof *s);
        if (!v->v || !s)
            return tmpl_fail(x, RW_NOMEM, "out of memory");
        s->value = res.scalar;
        v->v[0] = s;
        v->n = 1;
    } else if (res.type == RW_VAL_VECTOR) {
        if (res.nseries) {
            v->v = rw_arena_alloc(x->a, res.nseries * sizeof *v->v);
            tsample *s = rw_arena_calloc(x->a, res.nseries, sizeof *s);
            if (!v->v || !s)
                return tmpl_fail(x, RW_NOMEM, "out of memory");
            for (size_t i = 0; i < res.nseries; i++) {
                s[i].labels = res.series[i].labels;
                s[i].nlabels = res.series[i].nlabels;
                s[i].value = res.series[i].npoints ? res.series[i].points[0].v : 0;
                v->v[i] = &s[i];
            }
            v->n = res.nseries;
        }
    } else {
        return ferr(x, "query", "rule result is not a vector or scalar");
    }
    out->k = TV_VECTOR;
    out->u.vec = v;
    return RW_OK;
}

static rw_rc f_first(texec *x, const tv *a, size_t n, tv *out)
{
    if (!a[0].u.vec || a[0].u.vec->n == 0)
        return ferr(x, "first", "first() called on vector with no elements");
    out->k = TV_SAMPLE;
    out->u.sm = a[0].u.vec->v[0];
    return RW_OK;
}

static const char *sample_label(const tsample *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strlen(s->labels[i].name) == len && memcmp(s->labels[i].name, name, len) == 0)
            return s->labels[i].value;
    return NULL;
}

#define NILDEREF "runtime error: invalid memory address or nil pointer dereference"

static rw_rc f_label(texec *x, const tv *a, size_t n, tv *out)
{
    if (!a[1].u.sm)
        return ferr(x, "label", NILDEREF);
    const char *v = sample_label(a[1].u.sm, a[0].u.s.p, a[0].u.s.n);
    set_str(out, v ? v : "", v ? strlen(v) : 0);
    return RW_OK;
}

static rw_rc f_value(texec *x, const tv *a, size_t n, tv *out)
{
    if (!a[0].u.sm)
        return ferr(x, "value", NILDEREF);
    out->k = TV_FLOAT;
    out->u.f = a[0].u.sm->value;
    return RW_OK;
}

static rw_rc f_strvalue(texec *x, const tv *a, size_t n, tv *out)
{
    if (!a[0].u.sm)
        return ferr(x, "strvalue", NILDEREF);
    const char *v = sample_label(a[0].u.sm, "__value__", 9);
    set_str(out, v ? v : "", v ? strlen(v) : 0);
    return RW_OK;
}

static rw_rc f_args(texec *x, const tv *a, size_t n, tv *out)
{
    targs *m = rw_arena_alloc(x->a, sizeof *m);
    tv *v = n ? rw_arena_alloc(x->a, n * sizeof *v) : NULL;
    if (!m || (n && !v))
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    if (n)
        memcpy(v, a, n * sizeof *v);
    m->v = v;
    m->n = n;
    out->k = TV_ARGS;
    out->u.args = m;
    return RW_OK;
}

static rw_rc f_sort_by_label(texec *x, const tv *a, size_t n, tv *out)
{
    tvector *v = a[1].u.vec;
    /* stable insertion sort by the label's value ("" when absent), in
     * place: Go sorts the slice the caller holds */
    for (size_t i = 1; v && i < v->n; i++) {
        for (size_t j = i; j > 0; j--) {
            const char *l1 = sample_label(v->v[j - 1], a[0].u.s.p, a[0].u.s.n);
            const char *l2 = sample_label(v->v[j], a[0].u.s.p, a[0].u.s.n);
            if (strcmp(l1 ? l1 : "", l2 ? l2 : "") <= 0)
                break;
            tsample *t = v->v[j];
            v->v[j] = v->v[j - 1];
            v->v[j - 1] = t;
        }
    }
    *out = a[1];
    return RW_OK;
}

/* ---- strings ---- */

static rw_rc f_safe_html(texec *x, const tv *a, size_t n, tv *out)
{
    *out = a[0];
    out->k = TV_HTML;
    return RW_OK;
}

/* net.SplitHostPort; 0 on success. */
static int split_host_port(const char *s, size_t n, size_t *hs, size_t *hl, size_t *ps)
{
    const char *i = NULL;
    for (size_t k = n; k-- > 0;)
        if (s[k] == ':') {
            i = s + k;
            break;
        }
    if (!i)
        return -1;
    size_t ci = (size_t)(i - s), j = 0, k = 0;
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (!end)
            return -1;
        size_t e = (size_t)(end - s);
        if (e + 1 != ci)
            return -1;
        *hs = 1;
        *hl = e - 1;
        j = 1;
        k = e + 1;
    } else {
        if (memchr(s, ':', ci))
            return -1;
        *hs = 0;
        *hl = ci;
    }
    if (memchr(s + j, '[', n - j) || memchr(s + k, ']', n - k))
        return -1;
    *ps = ci + 1;
    return 0;
}

static rw_rc f_strip_port(texec *x, const tv *a, size_t n, tv *out)
{
    size_t hs, hl, ps;
    *out = a[0];
    if (split_host_port(a[0].u.s.p, a[0].u.s.n, &hs, &hl, &ps) == 0) {
        out->u.s.p += hs;
        out->u.s.n = hl;
    }
    return RW_OK;
}

static int is_ip(const char *s, size_t n)
{
    char buf[64];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

static rw_rc f_strip_domain(texec *x, const tv *a, size_t n, tv *out)
{
    const char *s = a[0].u.s.p;
    size_t len = a[0].u.s.n, hs = 0, hl = len, ps = len;
    int has_port = split_host_port(s, len, &hs, &hl, &ps) == 0;
    if (!has_port) {
        hs = 0;
        hl = len;
    }
    if (is_ip(s + hs, hl)) {
        *out = a[0];
        return RW_OK;
    }
    const char *dot = memchr(s + hs, '.', hl);
    size_t first = dot ? (size_t)(dot - (s + hs)) : hl;
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    if (has_port && ps < len) {
        int colon = memchr(s + hs, ':', first) != NULL;
        if (colon)
            rw_buf_putc(&b, '[');
        rw_buf_append(&b, s + hs, first);
        if (colon)
            rw_buf_putc(&b, ']');
        rw_buf_putc(&b, ':');
        rw_buf_append(&b, s + ps, len - ps);
    } else {
        rw_buf_append(&b, s + hs, first);
    }
    return tmpl_buf_str(x, &b, out);
}

static rw_rc link_for(texec *x, const tv *a, const char *tab, tv *out)
{
    rw_buf b;
    rw_buf_init(&b, RW_TMPL_MAX_WORK);
    rw_buf_puts(&b, "/graph?g0.expr=");
    query_escape(&b, a[0].u.s.p, a[0].u.s.n);
    rw_buf_puts(&b, "&g0.tab=");
    rw_buf_puts(&b, tab);
    return tmpl_buf_str(x, &b, out);
}

static rw_rc f_graph_link(texec *x, const tv *a, size_t n, tv *out) { return link_for(x, a, "0", out); }
static rw_rc f_table_link(texec *x, const tv *a, size_t n, tv *out) { return link_for(x, a, "1", out); }

static rw_rc f_external_url(texec *x, const tv *a, size_t n, tv *out)
{
    const char *u = x->d->external_url ? x->d->external_url : "";
    set_str(out, u, strlen(u));
    return RW_OK;
}

/* url.URL.Path of the external URL. */
static rw_rc f_path_prefix(texec *x, const tv *a, size_t n, tv *out)
{
    const char *u = x->d->external_url ? x->d->external_url : "";
    const char *p = strstr(u, "://");
    p = p ? strchr(p + 3, '/') : (u[0] == '/' ? u : NULL);
    if (!p) {
        set_str(out, "", 0);
        return RW_OK;
    }
    size_t len = strcspn(p, "?#");
    set_str(out, p, len);
    return RW_OK;
}

static rw_rc f_parse_duration(texec *x, const tv *a, size_t n, tv *out)
{
    const char *s = a[0].u.s.p;
    size_t len = a[0].u.s.n;
    int neg = len > 0 && s[0] == '-';
    int64_t ms = 0;
    rw_err e;
    rw_err_init(&e);
    if (len - (size_t)neg == 1 && s[neg] == '0') {
        ms = 0;
    } else if (len == (size_t)neg || rw_parse_duration(s + neg, len - (size_t)neg, &ms, &e) != RW_OK) {
        return ferr(x, "parseDuration", "not a valid duration string: \"%.*s\"", (int)len, s);
    }
    out->k = TV_FLOAT;
    out->u.f = (neg ? -(double)ms : (double)ms) / 1000.0;
    return RW_OK;
}

/* ---- the table ---- */

#define FN(name, fn, np, var, ...) {name, fn, np, var, {__VA_ARGS__}, NULL}
#define NOTSUP(name, why) {name, NULL, 0, 0, {P_ANY}, why}

const tfunc tmpl_funcs[] = {
    /* text/template built-ins */
    FN("and", f_unreachable, 1, 1, P_ANY),
    FN("or", f_unreachable, 1, 1, P_ANY),
    FN("not", f_not, 1, 0, P_ANY),
    FN("len", f_len, 1, 0, P_ANY),
    FN("index", f_index, 1, 1, P_ANY),
    FN("slice", f_slice, 1, 1, P_ANY),
    FN("print", f_print, 0, 1, P_ANY),
    FN("printf", f_printf, 1, 1, P_STRING),
    FN("println", f_println, 0, 1, P_ANY),
    FN("html", f_html, 0, 1, P_ANY),
    FN("js", f_js, 0, 1, P_ANY),
    FN("urlquery", f_urlquery, 0, 1, P_ANY),
    FN("eq", f_eq, 1, 1, P_ANY),
    FN("ne", f_ne, 2, 0, P_ANY, P_ANY),
    FN("lt", f_lt, 2, 0, P_ANY, P_ANY),
    FN("le", f_le, 2, 0, P_ANY, P_ANY),
    FN("gt", f_gt, 2, 0, P_ANY, P_ANY),
    FN("ge", f_ge, 2, 0, P_ANY, P_ANY),
    NOTSUP("call", "templates get no function values to call"),
    /* Prometheus */
    FN("query", f_query, 1, 0, P_STRING),
    FN("first", f_first, 1, 0, P_VECTOR),
    FN("label", f_label, 2, 0, P_STRING, P_SAMPLE),
    FN("value", f_value, 1, 0, P_SAMPLE),
    FN("strvalue", f_strvalue, 1, 0, P_SAMPLE),
    FN("args", f_args, 0, 1, P_ANY),
    FN("reReplaceAll", tmpl_f_re_replace_all, 3, 0, P_STRING, P_STRING, P_STRING),
    FN("safeHtml", f_safe_html, 1, 0, P_STRING),
    FN("match", tmpl_f_match, 2, 0, P_STRING, P_STRING),
    FN("title", f_title, 1, 0, P_STRING),
    FN("toUpper", f_toupper, 1, 0, P_STRING),
    FN("toLower", f_tolower, 1, 0, P_STRING),
    FN("graphLink", f_graph_link, 1, 0, P_STRING),
    FN("tableLink", f_table_link, 1, 0, P_STRING),
    FN("sortByLabel", f_sort_by_label, 2, 0, P_STRING, P_VECTOR),
    FN("stripPort", f_strip_port, 1, 0, P_STRING),
    FN("stripDomain", f_strip_domain, 1, 0, P_STRING),
    FN("humanize", f_humanize, 1, 0, P_ANY),
    FN("humanize1024", f_humanize1024, 1, 0, P_ANY),
    FN("humanizeDuration", f_humanize_duration, 1, 0, P_ANY),
    FN("humanizePercentage", f_humanize_percentage, 1, 0, P_ANY),
    FN("humanizeTimestamp", f_humanize_timestamp, 1, 0, P_ANY),
    NOTSUP("toTime", "it returns a Go time.Time; use humanizeTimestamp"),
    NOTSUP("toDuration", "it returns a Go time.Duration; use humanizeDuration"),
    NOTSUP("now", "the evaluation time is not passed to templates; use query \"time()\""),
    FN("pathPrefix", f_path_prefix, 0, 0, P_ANY),
    FN("externalURL", f_external_url, 0, 0, P_ANY),
    FN("parseDuration", f_parse_duration, 1, 0, P_STRING),
    FN("urlQueryEscape", f_url_query_escape, 1, 0, P_STRING),
};

const size_t tmpl_nfuncs = sizeof tmpl_funcs / sizeof tmpl_funcs[0];

int tmpl_func_find(const char *name, size_t len)
{
    for (size_t i = 0; i < tmpl_nfuncs; i++)
        if (strlen(tmpl_funcs[i].name) == len && memcmp(tmpl_funcs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int tmpl_func_is(int fn, const char *name)
{
    return fn >= 0 && (size_t)fn < tmpl_nfuncs && strcmp(tmpl_funcs[fn].name, name) == 0;
}
