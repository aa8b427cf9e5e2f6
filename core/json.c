/* json.c - JSON string escaping and Prometheus-compatible float formatting
 * (see json.h). The shortest round-trip representation is found by trying
 * increasing precisions with %.*e and parsing back; then the digits are laid
 * out in fixed or exponent notation the way Go's strconv does. */
#include "json.h"
#include "labels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* digits (no dot) and decimal exponent such that v = 0.d1d2d3... * 10^dp.
 * Slow, general path: the smallest %.*e precision that reads back to v. */
static int shortest_slow(double v, char *digits, int *dp)
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

/* Writes the decimal digits of c to out (no terminator), two at a time
 * from the end; returns how many. */
static int put_u64(char *out, uint64_t c)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    while (c >= 100) {
        unsigned r = (unsigned)(c % 100);
        c /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (c >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * c, 2);
    } else {
        *--p = (char)('0' + c);
    }
    int n = (int)(e - p);
    memcpy(out, p, (size_t)n);
    return n;
}

/* Writes the decimal digits of c > 0 without trailing zeros; returns the
 * number of digits written and in *tz the zeros dropped. */
static int u64_digits(uint64_t c, char *digits, int *tz)
{
    int z = 0;
    while (c % 100 == 0) {
        c /= 100;
        z += 2;
    }
    if (c % 10 == 0) {
        c /= 10;
        z++;
    }
    int n = put_u64(digits, c);
    digits[n] = '\0';
    *tz = z;
    return n;
}

typedef unsigned __int128 u128;

/* 10^0 .. 10^38 */
static const u128 pow10_128[39] = {
    0x1ULL,
    0xaULL,
    0x64ULL,
    0x3e8ULL,
    0x2710ULL,
    0x186a0ULL,
    0xf4240ULL,
    0x989680ULL,
    0x5f5e100ULL,
    0x3b9aca00ULL,
    0x2540be400ULL,
    0x174876e800ULL,
    0xe8d4a51000ULL,
    0x9184e72a000ULL,
    0x5af3107a4000ULL,
    0x38d7ea4c68000ULL,
    0x2386f26fc10000ULL,
    0x16345785d8a0000ULL,
    0xde0b6b3a7640000ULL,
    0x8ac7230489e80000ULL,
    ((u128)0x5ULL << 64) | 0x6bc75e2d63100000ULL,
    ((u128)0x36ULL << 64) | 0x35c9adc5dea00000ULL,
    ((u128)0x21eULL << 64) | 0x19e0c9bab2400000ULL,
    ((u128)0x152dULL << 64) | 0x2c7e14af6800000ULL,
    ((u128)0xd3c2ULL << 64) | 0x1bcecceda1000000ULL,
    ((u128)0x84595ULL << 64) | 0x161401484a000000ULL,
    ((u128)0x52b7d2ULL << 64) | 0xdcc80cd2e4000000ULL,
    ((u128)0x33b2e3cULL << 64) | 0x9fd0803ce8000000ULL,
    ((u128)0x204fce5eULL << 64) | 0x3e25026110000000ULL,
    ((u128)0x1431e0faeULL << 64) | 0x6d7217caa0000000ULL,
    ((u128)0xc9f2c9cd0ULL << 64) | 0x4674edea40000000ULL,
    ((u128)0x7e37be2022ULL << 64) | 0xc0914b2680000000ULL,
    ((u128)0x4ee2d6d415bULL << 64) | 0x85acef8100000000ULL,
    ((u128)0x314dc6448d93ULL << 64) | 0x38c15b0a00000000ULL,
    ((u128)0x1ed09bead87c0ULL << 64) | 0x378d8e6400000000ULL,
    ((u128)0x13426172c74d82ULL << 64) | 0x2b878fe800000000ULL,
    ((u128)0xc097ce7bc90715ULL << 64) | 0xb34b9f1000000000ULL,
    ((u128)0x785ee10d5da46d9ULL << 64) | 0xf436a000000000ULL,
    ((u128)0x4b3b4ca85a86c47aULL << 64) | 0x98a224000000000ULL,
};

/* The same digits as shortest_slow, computed exactly in 128-bit integers for
 * the values queries mostly produce: integers below 2^53 and non-integers in
 * about [1e-5, 2^52). Returns 0 when v is outside that domain.
 *
 * Why this equals shortest_slow: %.*e rounds correctly, and strtod reads
 * back v exactly when the decimal lies within half an ulp of v (inclusive
 * when v's mantissa is even: ties go to even). So shortest_slow picks the
 * coarsest decimal grid 10^j whose nearest point R_j to v lies within that
 * interval. A finer grid contains the coarser one, so its nearest point is
 * at least as close: with a symmetric interval (any mantissa but 2^52,
 * which is left to the slow path) validity is monotonic in j and a binary
 * search finds the coarsest valid grid. Everything is scaled by 10^21 * 2^(k+1)
 * (v = M * 2^-k) so the comparisons are exact integer ones. */
static int shortest_fast(double v, char *digits, int *dp)
{
    double a = fabs(v);
    if (a < 9007199254740992.0 && a == (double)(int64_t)a) {
        /* an integer below 2^53: its digits (ulp <= 1, so nothing shorter
           that differs from it reads back to it) */
        int tz, nd = u64_digits((uint64_t)a, digits, &tz);
        *dp = nd + tz;
        return nd;
    }
    if (!(a >= 1e-5 && a < 4503599627370496.0))
        return 0;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int bexp = (int)((bits >> 52) & 0x7ff);
    uint64_t m = (bits & ((1ULL << 52) - 1));
    if (bexp == 0 || m == 0)
        return 0; /* subnormal (not in range anyway) or a power of two */
    m |= 1ULL << 52;
    int k = 1075 - bexp; /* a = m * 2^-k, k >= 1 here */
    if (k + 1 > 120)
        return 0;
    /* units: 10^-21 / 2^(k+1); v = 2m*10^21, half ulp = 10^21 */
    static const uint64_t p10_19 = 10000000000000000000ULL;
    const u128 p21 = (u128)p10_19 * 100;
    const int sh = k + 1;
    u128 V = (u128)(2 * m) * p21; /* < 2^54 * 2^70 */
    u128 H = p21;
    int incl = (m & 1) == 0;
    u128 vint = V >> sh; /* integer part of v * 10^21 */
    const u128 *pw = pow10_128;
    /* D: the number of digits of vint, from its bit length (10^(D-1) <=
       vint < 10^D): floor(bits * log10(2)) is D or D - 1 */
    uint64_t vhi = (uint64_t)(vint >> 64);
    int nbits = vhi ? 128 - __builtin_clzll(vhi) : vint ? 64 - __builtin_clzll((uint64_t)vint) : 0;
    int D = nbits * 1233 >> 12; /* 1233 / 4096, just under log10(2) */
    if (D < 1)
        D = 1;
    while (D < 39 && vint >= pw[D])
        D++;
    /* R_j: v rounded to a multiple of 10^j (ties to even), valid if
       |R_j * 2^sh - V| <= H (< H when !incl). 17 significant digits
       always read back, so the coarsest valid grid is at least D - 17. */
    int lo = D > 17 ? D - 17 : 0, hi = D - 1, best = -1;
    u128 bestR = 0;
    while (lo <= hi) {
        int j = (lo + hi) / 2;
        u128 q = vint / pw[j];
        u128 r = vint - q * pw[j];
        u128 unit = pw[j] << sh;        /* 10^j in scaled units */
        u128 rem = (r << sh) + (V & (((u128)1 << sh) - 1)); /* v - q*10^j, scaled */
        u128 half = unit >> 1;
        int up;
        if (rem > half)
            up = 1;
        else if (rem < half)
            up = 0;
        else
            up = (int)(q & 1);
        u128 R = up ? q + 1 : q;
        u128 diff = up ? unit - rem : rem;
        int ok = diff < H || (diff == H && incl);
        if (ok && R != 0) {
            best = j;
            bestR = R;
            lo = j + 1;
        } else {
            hi = j - 1;
        }
    }
    if (best < 0)
        return 0;
    if (bestR > (u128)UINT64_MAX)
        return 0;
    int tz, nd = u64_digits((uint64_t)bestR, digits, &tz);
    *dp = nd + tz + best - 21;
    return nd;
}

static int shortest(double v, char *digits, int *dp)
{
    int nd = shortest_fast(v, digits, dp);
    return nd ? nd : shortest_slow(v, digits, dp);
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

/* Length of the valid UTF-8 sequence at s[0..n) (n > 0, s[0] >= 0x80), or
 * 0 when it is not one: a stray continuation byte, a truncated sequence,
 * an overlong form, a surrogate or a code point past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Invalid UTF-8 (stored by an older version, echoed from a request, built
 * by a function from a \xNN escape) is written as U+FFFD per bad byte, as
 * Go's encoding/json does: the document stays valid UTF-8 JSON whatever a
 * string holds. */
rw_rc rw_json_strn(rw_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    rw_buf_reserve(b, n + 2);
    rw_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)s + i, n - i);
            if (k) {
                i += k - 1;
                continue;
            }
            rw_buf_append(b, s + run, i - run);
            run = i + 1;
            rw_buf_append(b, "\\ufffd", 6);
            continue;
        }
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
    char num[64];
    int n = 0;
    /* seconds with up to 3 decimals, trailing zeros dropped (Go: 1.5, 2) */
    num[n++] = '[';
    if (t_ms < 0)
        num[n++] = '-';
    uint64_t a = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
    uint64_t sec = a / 1000;
    unsigned frac = (unsigned)(a % 1000);
    n += put_u64(num + n, sec);
    if (frac) {
        num[n++] = '.';
        num[n++] = (char)('0' + frac / 100);
        if (frac % 100) {
            num[n++] = (char)('0' + frac / 10 % 10);
            if (frac % 10)
                num[n++] = (char)('0' + frac % 10);
        }
    }
    num[n++] = ',';
    num[n++] = '"';
    n += rw_fmt_float_json(v, num + n);
    num[n++] = '"';
    num[n++] = ']';
    return rw_buf_append(b, num, (size_t)n);
}

rw_rc rw_json_labels(rw_buf *b, const rw_label *l, size_t n)
{
    rw_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(b, ',');
        rw_json_str(b, l[i].name);
        rw_buf_putc(b, ':');
        rw_json_str(b, l[i].value);
    }
    return rw_buf_putc(b, '}');
}
