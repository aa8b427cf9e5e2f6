/* series_desc.c - the series notation of Prometheus test files, for
 * `rwgate test rules`: a metric (`name{label="value", ...}`, as
 * parser.ParseMetric reads it) and the expanding value notation of
 * input_series (`1+2x3` = 1 3 5 7, `-2-1x2`, `5x2` = 5 5 5, `_` and `_x3`
 * for missing samples, `stale` for a staleness marker). Step accumulation is
 * by repeated addition, as Prometheus does, so float results match. */
#include "rules_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int name_start(char c) { return isalpha((unsigned char)c) || c == '_' || c == ':'; }
static int name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == ':'; }

static int put_utf8(rw_buf *b, unsigned long cp)
{
    char u[4];
    int n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else if (cp <= 0x10FFFF) {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    } else {
        return -1;
    }
    return rw_buf_append(b, u, (size_t)n) == RW_OK ? 0 : -1;
}

/* A Go/PromQL string literal: "..." or '...' with escapes, or `raw`.
 * Returns a malloc'd string and sets *end, or NULL. */
static char *unquote(const char *p, const char **end)
{
    char q = *p;
    if (q != '"' && q != '\'' && q != '`')
        return NULL;
    rw_buf b;
    rw_buf_init(&b, 1 << 20);
    p++;
    while (*p && *p != q) {
        if (q == '`' || *p != '\\') {
            if (q != '`' && *p == '\n')
                goto fail;
            rw_buf_putc(&b, *p++);
            continue;
        }
        p++;
        switch (*p) {
        case 'a': rw_buf_putc(&b, '\a'); p++; break;
        case 'b': rw_buf_putc(&b, '\b'); p++; break;
        case 'f': rw_buf_putc(&b, '\f'); p++; break;
        case 'n': rw_buf_putc(&b, '\n'); p++; break;
        case 'r': rw_buf_putc(&b, '\r'); p++; break;
        case 't': rw_buf_putc(&b, '\t'); p++; break;
        case 'v': rw_buf_putc(&b, '\v'); p++; break;
        case '\\': rw_buf_putc(&b, '\\'); p++; break;
        case '"': rw_buf_putc(&b, '"'); p++; break;
        case '\'': rw_buf_putc(&b, '\''); p++; break;
        case 'x': case 'u': case 'U': {
            int nd = *p == 'x' ? 2 : *p == 'u' ? 4 : 8;
            unsigned long cp = 0;
            p++;
            for (int i = 0; i < nd; i++, p++) {
                if (!isxdigit((unsigned char)*p))
                    goto fail;
                cp = cp * 16 + (unsigned long)(isdigit((unsigned char)*p) ? *p - '0'
                                                                            : (tolower(*p) - 'a' + 10));
            }
            if (nd == 2)
                rw_buf_putc(&b, (char)cp);
            else if (put_utf8(&b, cp) != 0)
                goto fail;
            break;
        }
        default:
            if (*p >= '0' && *p <= '7') {
                unsigned v = 0;
                for (int i = 0; i < 3; i++, p++) {
                    if (*p < '0' || *p > '7')
                        goto fail;
                    v = v * 8 + (unsigned)(*p - '0');
                }
                if (v > 255)
                    goto fail;
                rw_buf_putc(&b, (char)v);
                break;
            }
            goto fail;
        }
    }
    if (*p != q || b.failed)
        goto fail;
    *end = p + 1;
    {
        char *s = b.p ? b.p : strdup("");
        if (!b.p)
            return s;
        size_t n;
        return rw_buf_detach(&b, &n);
    }
fail:
    rw_buf_free(&b);
    return NULL;
}

void rules_free_labels(rw_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].name);
        free((char *)l[i].value);
    }
    free(l);
}

static int add_label(rw_label **l, size_t *n, char *name, char *value)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*l)[i].name, name) == 0) {
            free(name);
            free(value);
            return -1;
        }
    rw_label *nl = realloc(*l, (*n + 1) * sizeof *nl);
    if (!nl) {
        free(name);
        free(value);
        return -1;
    }
    *l = nl;
    nl[*n].name = name;
    nl[*n].value = value;
    (*n)++;
    return 0;
}

rw_rc rules_parse_metric(const char *s, const char **end, rw_label **out, size_t *nout,
                         rw_err *err)
{
    rw_label *l = NULL;
    size_t n = 0;
    const char *p = skip_ws(s);
    if (name_start(*p)) {
        const char *q = p;
        while (name_char(*q))
            q++;
        if (add_label(&l, &n, strdup(RW_METRIC_NAME), strndup(p, (size_t)(q - p))) != 0)
            goto fail;
        p = q;
    }
    if (*p == '{') {
        p = skip_ws(p + 1);
        while (*p != '}') {
            char *name = NULL;
            if (*p == '"' || *p == '\'' || *p == '`') {
                name = unquote(p, &p);
            } else if (name_start(*p) && *p != ':') {
                const char *q = p;
                while (name_char(*q) && *q != ':')
                    q++;
                name = strndup(p, (size_t)(q - p));
                p = q;
            }
            if (!name) {
                rw_err_set(err, RW_BADREQ, "1:%d: parse error: unexpected character in label set",
                           (int)(p - s) + 1);
                goto fail;
            }
            p = skip_ws(p);
            if (*p == ',' || *p == '}') {
                /* {"utf8 name"}: a quoted metric name */
                if (n) {
                    free(name);
                    rw_err_set(err, RW_BADREQ, "1:%d: parse error: metric name given twice",
                               (int)(p - s) + 1);
                    goto fail;
                }
                if (add_label(&l, &n, strdup(RW_METRIC_NAME), name) != 0)
                    goto fail;
            } else {
                if (*p != '=') {
                    free(name);
                    rw_err_set(err, RW_BADREQ,
                               "1:%d: parse error: expected \"=\" after label name (only = "
                               "matchers describe a series)",
                               (int)(p - s) + 1);
                    goto fail;
                }
                p = skip_ws(p + 1);
                char *value = unquote(p, &p);
                if (!value) {
                    free(name);
                    rw_err_set(err, RW_BADREQ, "1:%d: parse error: expected a quoted label value",
                               (int)(p - s) + 1);
                    goto fail;
                }
                if (add_label(&l, &n, name, value) != 0) {
                    rw_err_set(err, RW_BADREQ, "1:%d: parse error: label given twice",
                               (int)(p - s) + 1);
                    goto fail;
                }
            }
            p = skip_ws(p);
            if (*p == ',')
                p = skip_ws(p + 1);
            else if (*p != '}') {
                rw_err_set(err, RW_BADREQ, "1:%d: parse error: expected \",\" or \"}\"",
                           (int)(p - s) + 1);
                goto fail;
            }
        }
        p++;
    } else if (!n) {
        rw_err_set(err, RW_BADREQ, "1:%d: parse error: expected a metric name or label set",
                   (int)(p - s) + 1);
        goto fail;
    }
    /* Prometheus' labels drop empty values */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!*l[i].value) {
            free((char *)l[i].name);
            free((char *)l[i].value);
            continue;
        }
        l[k++] = l[i];
    }
    n = k;
    rw_labels_sort(l, n);
    *out = l;
    *nout = n;
    if (end)
        *end = p;
    return RW_OK;
fail:
    rules_free_labels(l, n);
    if (err && err->code == RW_OK)
        rw_err_set(err, RW_NOMEM, "out of memory");
    return RW_BADREQ;
}

static int push(rules_seq *q, int kind, double v, size_t max)
{
    if (q->n >= max)
        return -1;
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 32;
        rules_seq_val *nv = realloc(q->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        q->v = nv;
        q->cap = nc;
    }
    q->v[q->n].kind = kind;
    q->v[q->n].v = v;
    q->n++;
    return 0;
}

/* a number as the series-description lexer reads it: decimal with optional
 * fraction, exponent and underscores (no hex: "1+0x6" is 1, +0, six times),
 * Inf and NaN, with a sign */
static int number(const char *p, const char **end, double *v)
{
    const char *q = p;
    int neg = 0;
    if (*q == '+' || *q == '-')
        neg = *q++ == '-';
    if (strncasecmp(q, "inf", 3) == 0 && !isalnum((unsigned char)q[3])) {
        *v = neg ? -INFINITY : INFINITY;
        *end = q + 3;
        return 0;
    }
    if (strncasecmp(q, "nan", 3) == 0 && !isalnum((unsigned char)q[3])) {
        *v = NAN;
        *end = q + 3;
        return 0;
    }
    char buf[64];
    size_t n = 0;
    int dot = 0, exp = 0;
    const char *r = q;
    for (; *r; r++) {
        char c = *r;
        if (isdigit((unsigned char)c)) {
        } else if (c == '.' && !dot && !exp) {
            dot = 1;
        } else if ((c == 'e' || c == 'E') && !exp && n) {
            exp = 1;
            if (n + 1 < sizeof buf)
                buf[n++] = c;
            if (r[1] == '+' || r[1] == '-')
                c = *++r;
            else
                continue;
        } else if (c == '_' && n && isdigit((unsigned char)r[1])) {
            continue;
        } else {
            break;
        }
        if (n + 1 >= sizeof buf)
            return -1;
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (!n || !(isdigit((unsigned char)buf[0]) || (buf[0] == '.' && isdigit((unsigned char)buf[1]))))
        return -1;
    /* the next thing is the end, 'x', or a sign */
    if (*r && *r != 'x' && *r != '+' && *r != '-')
        return -1;
    char *e;
    double x = strtod(buf, &e);
    if (*e)
        return -1;
    *v = neg ? -x : x;
    *end = r;
    return 0;
}

static int times(const char *p, const char **end, uint64_t *n)
{
    if (*p != 'x' || !isdigit((unsigned char)p[1]))
        return -1;
    char *e;
    errno = 0;
    unsigned long long x = strtoull(p + 1, &e, 10);
    if (errno)
        return -1;
    *n = x;
    *end = e;
    return 0;
}

rw_rc rules_parse_values(const char *s, int col0, size_t max, rules_seq *out, rw_err *err)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_ws(s);
    while (*p) {
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r')
            e++;
        size_t tl = (size_t)(e - p);
        char item[128];
        if (tl >= sizeof item)
            goto bad;
        memcpy(item, p, tl);
        item[tl] = '\0';
        const char *q = item, *r;
        uint64_t n;
        double a, b;
        if (item[0] == '_') {
            if (tl == 1) {
                if (push(out, RULES_SEQ_NONE, 0, max) != 0)
                    goto limit;
            } else if (times(item + 1, &r, &n) == 0 && !*r) {
                for (uint64_t i = 0; i < n; i++)
                    if (push(out, RULES_SEQ_NONE, 0, max) != 0)
                        goto limit;
            } else {
                goto bad;
            }
        } else if (strcmp(item, "stale") == 0) {
            if (push(out, RULES_SEQ_STALE, rw_stale_nan(), max) != 0)
                goto limit;
        } else if (item[0] == '{' && item[1] == '{') {
            rw_err_set(err, RW_UNSUPPORTED, "native histogram values are not supported: %s", item);
            goto fail;
        } else if (number(q, &r, &a) == 0) {
            if (!*r) {
                if (push(out, RULES_SEQ_FLOAT, a, max) != 0)
                    goto limit;
            } else if (*r == 'x') {
                if (times(r, &r, &n) != 0 || *r)
                    goto bad;
                for (uint64_t i = 0; i <= n; i++)
                    if (push(out, RULES_SEQ_FLOAT, a, max) != 0)
                        goto limit;
            } else if (*r == '+' || *r == '-') {
                if (number(r, &r, &b) != 0 || times(r, &r, &n) != 0 || *r)
                    goto bad;
                for (uint64_t i = 0; i <= n; i++) {
                    if (push(out, RULES_SEQ_FLOAT, a, max) != 0)
                        goto limit;
                    a += b;
                }
            } else {
                goto bad;
            }
        } else {
            goto bad;
        }
        p = skip_ws(e);
        continue;
    bad:
        rw_err_set(err, RW_BADREQ,
                   "1:%d: parse error: unexpected \"%.*s\" in series values, expected number or "
                   "\"stale\"",
                   col0 + (int)(p - s) + 1, (int)(tl > 60 ? 60 : tl), p);
        goto fail;
    limit:
        rw_err_set(err, RW_LIMIT, "series values expand to more than %zu samples", max);
        goto fail;
    }
    return RW_OK;
fail:
    free(out->v);
    memset(out, 0, sizeof *out);
    return err ? err->code : RW_BADREQ;
}
