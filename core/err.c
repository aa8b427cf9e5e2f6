/* err.c - the error context and the one mapping from return codes to HTTP
 * statuses (see err.h). */
#include "err.h"

#include <stdio.h>
#include <string.h>

void rw_err_init(rw_err *e)
{
    e->code = RW_OK;
    e->pos = -1;
    e->msg[0] = '\0';
}

rw_rc rw_err_setv(rw_err *e, rw_rc code, const char *fmt, va_list ap)
{
    if (!e)
        return code;
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return code;
}

rw_rc rw_err_set(rw_err *e, rw_rc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rw_err_setv(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void rw_err_prefix(rw_err *e, const char *fmt, ...)
{
    char pre[RW_ERR_MSG], old[RW_ERR_MSG];
    va_list ap;
    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(pre);
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, pre, n);
    memcpy(e->msg + n, ": ", 2);
    size_t rest = sizeof e->msg - n - 3;
    strncpy(e->msg + n + 2, old, rest);
    e->msg[sizeof e->msg - 1] = '\0';
}

int rw_rc_http_status(rw_rc rc)
{
    switch (rc) {
    case RW_OK: return 200;
    case RW_BADREQ: return 400;
    case RW_LIMIT: return 400;
    case RW_TOOLARGE: return 413;
    case RW_UNSUPPORTED: return 415;
    case RW_NOTFOUND: return 404;
    case RW_EXEC: return 422;
    case RW_TIMEOUT: return 503;
    case RW_CANCELED: return 503;
    case RW_AGAIN: return 503;
    case RW_NOMEM: return 503;
    case RW_IO: return 503;
    case RW_INTERNAL: return 500;
    }
    return 500;
}

const char *rw_rc_name(rw_rc rc)
{
    static const char *const names[] = {
        "ok", "bad_request", "too_large", "unsupported", "limit", "not_found",
        "execution", "timeout", "canceled", "again", "nomem", "io", "internal",
    };
    if ((unsigned)rc < sizeof names / sizeof names[0])
        return names[rc];
    return "unknown";
}
