/* json.c - JSON string escaping and Prometheus-compatible float formatting
 * (see json.h). The shortest round-trip representation is found by trying
 * increasing precisions with %.*e and parsing back; then the digits are laid
 * out in fixed or exponent notation the way Go's strconv does. */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* digits (no dot) and decimal exponent such that v = 0.d1d2d3... * 10^dp */
static int shortest(double v, char *digits, int *dp)
{
    char tmp[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp: d.ddddde[+-]XX */
    int nd = 0;
    char *p = tmp;
    if (*p == '-')
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    *dp = atoi(p + 1) + 1;
    return nd;
}

static int special(double v, char *out)
{
    if (isnan(v))
        return sprintf(out, "NaN");
    if (isinf(v))
        return sprintf(out, v > 0 ? "+Inf" : "-Inf");
    return -1;
}

static int fmt_e(int neg, const char *d, int nd, int dp, char *out)
{
    int len = 0;
    if (neg)
        out[len++] = '-';
    out[len++] = d[0];
    if (nd > 1) {
        out[len++] = '.';
        memcpy(out + len, d + 1, (size_t)nd - 1);
        len += nd - 1;
    }
    int e = dp - 1;
    len += sprintf(out + len, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return len;
}

static int fmt_f(int neg, const char *d, int nd, int dp, char *out)
{
    int len = 0;
    if (neg)
        out[len++] = '-';
    if (dp <= 0) {
        out[len++] = '0';
        out[len++] = '.';
        for (int i = 0; i < -dp; i++)
            out[len++] = '0';
        memcpy(out + len, d, (size_t)nd);
        len += nd;
    } else if (dp >= nd) {
        memcpy(out + len, d, (size_t)nd);
        len += nd;
        for (int i = nd; i < dp; i++)
            out[len++] = '0';
    } else {
        memcpy(out + len, d, (size_t)dp);
        len += dp;
        out[len++] = '.';
        memcpy(out + len, d + dp, (size_t)(nd - dp));
        len += nd - dp;
    }
    out[len] = '\0';
    return len;
}

int rw_fmt_float_json(double v, char *out)
{
    int n = special(v, out);
    if (n >= 0)
        return n;
    if (v == 0)
        return sprintf(out, signbit(v) ? "-0" : "0");
    char d[32];
    int dp, nd = shortest(v, d, &dp);
    double a = fabs(v);
    if (a < 1e-6 || a >= 1e21)
        return fmt_e(v < 0, d, nd, dp, out);
    return fmt_f(v < 0, d, nd, dp, out);
}

int rw_fmt_float_g(double v, char *out)
{
    int n = special(v, out);
    if (n >= 0)
        return n;
    if (v == 0)
        return sprintf(out, signbit(v) ? "-0" : "0");
    char d[32];
    int dp, nd = shortest(v, d, &dp);
    int exp = dp - 1;
    if (exp < -4 || exp >= 6) /* Go: shortest %g switches at 1e6 */
        return fmt_e(v < 0, d, nd, dp, out);
    return fmt_f(v < 0, d, nd, dp, out);
}

rw_rc rw_json_strn(rw_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    rw_buf_reserve(b, n + 2);
    rw_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&')
            continue;
        rw_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': rw_buf_append(b, "\\\"", 2); break;
        case '\\': rw_buf_append(b, "\\\\", 2); break;
        case '\n': rw_buf_append(b, "\\n", 2); break;
        case '\r': rw_buf_append(b, "\\r", 2); break;
        case '\t': rw_buf_append(b, "\\t", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rw_buf_append(b, e, 6);
        }
        }
    }
    rw_buf_append(b, s + run, n - run);
    return rw_buf_putc(b, '"');
}

rw_rc rw_json_str(rw_buf *b, const char *s)
{
    return rw_json_strn(b, s, strlen(s));
}

rw_rc rw_json_point(rw_buf *b, int64_t t_ms, double v)
{
    char num[48];
    int n;
    /* seconds with up to 3 decimals, trailing zeros dropped (Go: 1.5, 2) */
    const char *sign = t_ms < 0 ? "-" : "";
    uint64_t a = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
    unsigned long long sec = a / 1000, frac = a % 1000;
    if (frac == 0) {
        n = snprintf(num, sizeof num, "[%s%llu,\"", sign, sec);
    } else {
        char f[8];
        snprintf(f, sizeof f, "%03llu", frac);
        int k = 3;
        while (k > 0 && f[k - 1] == '0')
            f[--k] = '\0';
        n = snprintf(num, sizeof num, "[%s%llu.%s,\"", sign, sec, f);
    }
    rw_buf_append(b, num, (size_t)n);
    n = rw_fmt_float_json(v, num);
    rw_buf_append(b, num, (size_t)n);
    return rw_buf_append(b, "\"]", 2);
}
