/* labels.c - hashing, ordering, lookup and validation of label sets (see
 * labels.h). The hash runs on every series of every write request, so it
 * builds the key in a stack buffer and hashes it in one XXH3 call. */
#include "labels.h"

#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "text.h"

#define SEP '\xff'

/* n bytes from src to dst without a call: label strings are short, and a
 * memcpy call per string cost more than the copy (no byte outside either
 * range is touched) */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8)
            __builtin_memcpy(dst + i, src + i, 8);
        __builtin_memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        __builtin_memcpy(dst, src, 4);
        __builtin_memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* The key is name \xff value \xff ... of the selected labels. lens, when
 * given, holds (name length, value length) per label, so the hot ingest path
 * does not scan its strings again. */
static uint64_t hash_labels(const rw_label *l, const uint32_t *lens, size_t n,
                            const char *const *names, size_t nnames, int only)
{
    char stack[2048];
    size_t len = 0;
    XXH3_state_t *st = NULL;
    XXH3_state_t state;
    for (size_t i = 0; i < n; i++) {
        if (names) {
            int found = 0;
            for (size_t j = 0; j < nnames; j++)
                if (strcmp(l[i].name, names[j]) == 0) {
                    found = 1;
                    break;
                }
            if (found != only)
                continue;
        }
        size_t nl = lens ? lens[2 * i] : strlen(l[i].name);
        size_t vl = lens ? lens[2 * i + 1] : strlen(l[i].value);
        if (!st && len + nl + vl + 2 <= sizeof stack) {
            copy_short(stack + len, l[i].name, nl);
            len += nl;
            stack[len++] = SEP;
            copy_short(stack + len, l[i].value, vl);
            len += vl;
            stack[len++] = SEP;
            continue;
        }
        if (!st) {
            st = &state;
            XXH3_64bits_reset(st);
            XXH3_64bits_update(st, stack, len);
        }
        char sep = SEP;
        XXH3_64bits_update(st, l[i].name, nl);
        XXH3_64bits_update(st, &sep, 1);
        XXH3_64bits_update(st, l[i].value, vl);
        XXH3_64bits_update(st, &sep, 1);
    }
    if (st)
        return XXH3_64bits_digest(st);
    return XXH3_64bits(stack, len);
}

uint64_t rw_labels_hash_subset(const rw_label *l, size_t n, const char *const *names,
                               size_t nnames, int only)
{
    return hash_labels(l, NULL, n, names, nnames, only);
}

uint64_t rw_labels_hash(const rw_label *l, size_t n)
{
    return hash_labels(l, NULL, n, NULL, 0, 0);
}

uint64_t rw_labels_hash_lens(const rw_label *l, const uint32_t *lens, size_t n)
{
    return hash_labels(l, lens, n, NULL, 0, 0);
}

int rw_labels_cmp(const rw_label *a, size_t na, const rw_label *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c)
            return c;
        c = strcmp(a[i].value, b[i].value);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

int rw_labels_equal(const rw_label *a, size_t na, const rw_label *b, size_t nb)
{
    return na == nb && rw_labels_cmp(a, na, b, nb) == 0;
}

const char *rw_labels_get(const rw_label *l, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        /* names mostly differ in their first byte: no call for those */
        const char *a = l[mid].name;
        int c = a[0] != name[0] ? (unsigned char)a[0] - (unsigned char)name[0] : strcmp(a, name);
        if (c == 0)
            return l[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void rw_labels_sort(rw_label *l, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rw_label x = l[i];
        size_t j = i;
        while (j > 0 && strcmp(l[j - 1].name, x.name) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
}

int rw_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* label data is nearly always ASCII: 8 bytes at a time while no byte
           has its high bit set */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (colon && c == ':')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int legacy(const char *s, size_t n, int colon)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0, colon))
            return 0;
    return 1;
}

int rw_label_name_legacy(const char *s, size_t n) { return legacy(s, n, 0); }
int rw_metric_name_legacy(const char *s, size_t n) { return legacy(s, n, 1); }

/* Valid UTF-8 without NUL bytes. Every label of every sample passes here:
 * only a string with a NUL or a non-ASCII byte takes the careful way. */
static int text_ok(const char *s, size_t n)
{
    return rw_ascii_nonul(s, n) || (memchr(s, '\0', n) == NULL && rw_utf8_valid(s, n));
}

/* strcmp of two label names whose lengths are known */
static int name_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    if (la && lb && a[0] != b[0]) /* names mostly differ in their first byte */
        return (unsigned char)a[0] - (unsigned char)b[0];
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

static rw_rc validate(const rw_label *l, const uint32_t *lens, size_t n, int text, rw_err *err)
{
    int has_name = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = lens ? lens[2 * i] : strlen(l[i].name);
        size_t vl = lens ? lens[2 * i + 1] : strlen(l[i].value);
        if (nl == 0)
            return rw_err_set(err, RW_BADREQ, "empty label name (value \"%.64s\")", l[i].value);
        if (text && !text_ok(l[i].name, nl))
            return rw_err_set(err, RW_BADREQ, "label name is not valid UTF-8 or contains a NUL byte");
        if (text && !text_ok(l[i].value, vl))
            return rw_err_set(err, RW_BADREQ,
                              "label %.64s: value is not valid UTF-8 or contains a NUL byte",
                              l[i].name);
        if (vl == 0)
            return rw_err_set(err, RW_BADREQ, "label %.64s: empty value", l[i].name);
        if (i > 0) {
            int c = lens ? name_cmp(l[i - 1].name, lens[2 * i - 2], l[i].name, nl)
                         : strcmp(l[i - 1].name, l[i].name);
            if (c == 0)
                return rw_err_set(err, RW_BADREQ, "duplicate label name %.64s", l[i].name);
            if (c > 0)
                return rw_err_set(err, RW_BADREQ, "labels not sorted: %.64s after %.64s",
                                  l[i].name, l[i - 1].name);
        }
        if (nl == 8 && memcmp(l[i].name, RW_METRIC_NAME, 8) == 0)
            has_name = 1;
    }
    if (!has_name)
        return rw_err_set(err, RW_BADREQ, "series has no metric name (__name__ label)");
    return RW_OK;
}

rw_rc rw_labels_validate_lens(const rw_label *l, const uint32_t *lens, size_t n, rw_err *err)
{
    return validate(l, lens, n, 1, err);
}

rw_rc rw_labels_validate_shape(const rw_label *l, const uint32_t *lens, size_t n, rw_err *err)
{
    return validate(l, lens, n, 0, err);
}

rw_rc rw_labels_validate(const rw_label *l, size_t n, rw_err *err)
{
    return validate(l, NULL, n, 1, err);
}

size_t rw_labels_format(const rw_label *l, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    const char *metric = rw_labels_get(l, n, RW_METRIC_NAME);
#define PUT(...)                                                                   \
    do {                                                                           \
        int k = snprintf(len < cap ? out + len : NULL, len < cap ? cap - len : 0, \
                         __VA_ARGS__);                                             \
        if (k > 0)                                                                 \
            len += (size_t)k;                                                      \
    } while (0)
    if (metric)
        PUT("%s", metric);
    PUT("{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, RW_METRIC_NAME) == 0)
            continue;
        PUT("%s%s=\"%s\"", first ? "" : ", ", l[i].name, l[i].value);
        first = 0;
    }
    PUT("}");
#undef PUT
    if (cap)
        out[len < cap ? len : cap - 1] = '\0';
    return len;
}
