/* buf.c - growable, capped byte buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rw_buf_init(rw_buf *b, size_t cap)
{
    b->p = NULL;
    b->len = b->alloc = 0;
    b->cap = cap;
    b->failed = 0;
}

void rw_buf_free(rw_buf *b)
{
    free(b->p);
    rw_buf_init(b, b->cap);
}

void rw_buf_reset(rw_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->p)
        b->p[0] = '\0';
}

rw_rc rw_buf_reserve(rw_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need < b->len) {
        b->failed = 2;
        return RW_LIMIT;
    }
    if (b->cap && need > b->cap + 1) {
        b->failed = 2;
        return RW_LIMIT;
    }
    if (need <= b->alloc)
        return RW_OK;
    size_t n = b->alloc ? b->alloc : 256;
    while (n < need)
        n *= 2;
    if (b->cap && n > b->cap + 1)
        n = b->cap + 1; /* never more than the cap allows */
    char *p = realloc(b->p, n);
    if (!p) {
        b->failed = 1;
        return RW_NOMEM;
    }
    b->p = p;
    b->alloc = n;
    return RW_OK;
}

rw_rc rw_buf_append(rw_buf *b, const void *p, size_t n)
{
    rw_rc rc = rw_buf_reserve(b, n);
    if (rc != RW_OK)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return RW_OK;
}

rw_rc rw_buf_puts(rw_buf *b, const char *s)
{
    return rw_buf_append(b, s, strlen(s));
}

rw_rc rw_buf_putc(rw_buf *b, char c)
{
    return rw_buf_append(b, &c, 1);
}

rw_rc rw_buf_printf(rw_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RW_INTERNAL;
    if ((size_t)n < sizeof tmp)
        return rw_buf_append(b, tmp, (size_t)n);
    rw_rc rc = rw_buf_reserve(b, (size_t)n);
    if (rc != RW_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return RW_OK;
}

char *rw_buf_detach(rw_buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    if (!p)
        p = calloc(1, 1);
    rw_buf_init(b, b->cap);
    return p;
}
