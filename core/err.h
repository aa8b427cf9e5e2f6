/* err.h - one return-code enum for all of rwgate plus an error context that
 * carries a human-readable message. Functions return rw_rc and fill an rw_err
 * on failure; callers propagate with `if ((rc = f(..)) != RW_OK) return rc;`.
 * rw_rc_http_status() is the single place that maps codes to HTTP statuses:
 * 4xx means "do not retry", 5xx/503 means "retry later". */
#ifndef RW_ERR_H
#define RW_ERR_H

#include <stdarg.h>

typedef enum {
    RW_OK = 0,
    RW_BADREQ,      /* malformed input: 400, never retry */
    RW_TOOLARGE,    /* body over the size limit: 413 */
    RW_UNSUPPORTED, /* unsupported content type or encoding: 415 */
    RW_LIMIT,       /* a configured limit was hit by this request: 400 */
    RW_NOTFOUND,    /* 404 */
    RW_EXEC,        /* query execution error: 422 */
    RW_TIMEOUT,     /* query timeout: 503 */
    RW_CANCELED,    /* query canceled: 503 */
    RW_AGAIN,       /* overload, busy database: 503 + Retry-After */
    RW_NOMEM,       /* allocation failed: 503 */
    RW_IO,          /* storage failure (disk full, fsync): 503 */
    RW_INTERNAL     /* a bug: 500 */
} rw_rc;

#define RW_ERR_MSG 512

typedef struct rw_err {
    rw_rc code;
    int pos;        /* byte position in the input where it helps, else -1 */
    char msg[RW_ERR_MSG];
} rw_err;

void rw_err_init(rw_err *e);
/* Sets code and message (printf-style) and returns code, so one can write
 * `return rw_err_set(err, RW_BADREQ, "label %s: invalid name", n);`.
 * err may be NULL. */
rw_rc rw_err_set(rw_err *e, rw_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
rw_rc rw_err_setv(rw_err *e, rw_rc code, const char *fmt, va_list ap);
/* Prefixes the existing message: "ctx: old message". */
void rw_err_prefix(rw_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int rw_rc_http_status(rw_rc rc);
const char *rw_rc_name(rw_rc rc);

#endif
