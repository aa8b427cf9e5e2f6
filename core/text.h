/* text.h - byte-level text helpers shared by the HTTP layer (URL decoding,
 * core/http.c), the PromQL lexer (string escapes, query/lex.c) and the query
 * API (Prometheus' U__ name escapes, query/api_meta.c). Header-only: they run
 * per input byte, so they are inline. */
#ifndef RW_TEXT_H
#define RW_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether all n bytes are ASCII and none is NUL: 8 bytes at a time (one
 * test for both: a zero byte or a high bit), the last word overlapping the
 * one before rather than a loop over the tail. Label data is nearly always
 * ASCII, so validating it and the decoder's check of a whole series' label
 * fields (ingest/decode_v1.c) go through here first. */
static inline int rw_ascii_nonul(const void *p, size_t n)
{
    const unsigned char *s = p;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            if (s[i] == 0 || s[i] >= 0x80)
                return 0;
        return 1;
    }
    uint64_t bad = 0;
    for (size_t i = 0;; i += 8) {
        if (i + 8 > n)
            i = n - 8;
        uint64_t w;
        memcpy(&w, s + i, 8);
        bad |= ((w - 0x0101010101010101ULL) & ~w) | w;
        if (i + 8 == n)
            break;
    }
    return !(bad & 0x8080808080808080ULL);
}

/* Whether the n bytes at a and b are equal, without a call: label strings
 * are short and compared by the million per second (the store's series
 * lookup), so 8 bytes at a time with the last word overlapping, as above.
 * Reads exactly n bytes of each. */
static inline int rw_bytes_eq(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    if (n < 8) {
        if (n >= 4) {
            uint32_t u, v, u2, v2;
            memcpy(&u, x, 4);
            memcpy(&v, y, 4);
            memcpy(&u2, x + n - 4, 4);
            memcpy(&v2, y + n - 4, 4);
            return ((u ^ v) | (u2 ^ v2)) == 0;
        }
        for (size_t i = 0; i < n; i++)
            if (x[i] != y[i])
                return 0;
        return 1;
    }
    for (size_t i = 0;; i += 8) {
        if (i + 8 > n)
            i = n - 8;
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        if (u != v)
            return 0;
        if (i + 8 == n)
            return 1;
    }
}

/* Value of a hexadecimal digit, or -1. */
static inline int rw_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes the UTF-8 encoding of code point cp (<= 0x10ffff; the caller
 * rejects surrogates where it must) to o, which has room for 4 bytes;
 * returns the number of bytes written. */
static inline size_t rw_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the UTF-8 sequence at s (n bytes available, input already
 * validated); stores the code point in *cp and returns its length. A
 * truncated sequence yields U+FFFD and length 1. */
static inline size_t rw_utf8_get(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if ((u[0] & 0xe0) == 0xc0 && n >= 2) {
        *cp = ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
        return 2;
    }
    if ((u[0] & 0xf0) == 0xe0 && n >= 3) {
        *cp = ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
        return 3;
    }
    if ((u[0] & 0xf8) == 0xf0 && n >= 4) {
        *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
              ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
        return 4;
    }
    *cp = 0xfffd;
    return 1;
}

#endif
