/* buf.h - a growable byte buffer with a cap (curl's dynbuf idea): appends fail
 * with RW_LIMIT instead of growing past `cap`. Always NUL-terminated. */
#ifndef RW_BUF_H
#define RW_BUF_H

#include <stddef.h>
#include "err.h"

typedef struct rw_buf {
    char *p;
    size_t len, alloc, cap; /* cap 0 = no cap */
    int failed;             /* sticky: an append failed: 1 no memory, 2 over the cap */
} rw_buf;

void rw_buf_init(rw_buf *b, size_t cap);
void rw_buf_free(rw_buf *b);
void rw_buf_reset(rw_buf *b);
rw_rc rw_buf_reserve(rw_buf *b, size_t extra);
rw_rc rw_buf_append(rw_buf *b, const void *p, size_t n);
rw_rc rw_buf_puts(rw_buf *b, const char *s);
rw_rc rw_buf_putc(rw_buf *b, char c);
rw_rc rw_buf_printf(rw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes ownership of the bytes: returns p (malloc'd), leaves b empty. */
char *rw_buf_detach(rw_buf *b, size_t *len);

#endif
