/* http.h - the HTTP server wrapper (libmicrohttpd underneath).
 *
 * Routes come from one table {path, methods, max_body, handler, ctx}; the
 * dispatcher enforces the method (405), the body size limit (413, checked
 * against Content-Length before reading and while reading), and collects the
 * body; handlers only do their own work. Each request has an arena that lives
 * until its response is sent. Connections are served one thread each, so a
 * handler may block (e.g. waiting for a group commit). */
#ifndef RW_HTTP_H
#define RW_HTTP_H

#include <stddef.h>
#include "arena.h"
#include "buf.h"
#include "err.h"

enum { RW_HTTP_GET = 1, RW_HTTP_POST = 2, RW_HTTP_PUT = 4, RW_HTTP_DELETE = 8 };

typedef struct rw_http_req rw_http_req;

#define RW_HTTP_MAX_RESP_HEADERS 8

typedef struct rw_http_resp {
    int status;                /* default 200 */
    const char *content_type;  /* default "application/json" */
    rw_buf body;
    int gzip_ok;               /* handler allows gzip when the client accepts it */
    size_t nheaders;
    const char *hname[RW_HTTP_MAX_RESP_HEADERS];
    const char *hvalue[RW_HTTP_MAX_RESP_HEADERS]; /* strings must live as long as the request arena */
} rw_http_resp;

typedef void (*rw_http_handler_fn)(void *ctx, rw_http_req *req, rw_http_resp *resp);

typedef struct rw_http_route {
    const char *path;      /* exact, or a prefix when it ends with '*' */
    unsigned methods;      /* RW_HTTP_GET | RW_HTTP_POST ... */
    size_t max_body;       /* bytes accepted; 0 = the server default (1 MiB) */
    rw_http_handler_fn fn;
    void *ctx;
} rw_http_route;

typedef struct rw_http_opts {
    unsigned max_connections;   /* default 1024 */
    unsigned timeout_s;         /* idle connection timeout, default 120 */
    struct rw_metrics *metrics; /* request counts and durations per route; may be NULL */
} rw_http_opts;

typedef struct rw_http_server rw_http_server;

/* listen: "HOST:PORT" (port 0 = any free port; see rw_http_port). The route
 * table is copied. */
rw_http_server *rw_http_start(const char *listen, const rw_http_route *routes, size_t nroutes,
                              const rw_http_opts *opts, rw_err *err);
int rw_http_port(const rw_http_server *s);
/* Stops accepting, waits for in-flight requests to finish, frees. */
void rw_http_stop(rw_http_server *s);

/* ---- request accessors (valid during the handler) ---- */
const char *rw_http_method(const rw_http_req *r);
const char *rw_http_path(const rw_http_req *r);
/* Case-insensitive; NULL when absent. */
const char *rw_http_header(const rw_http_req *r, const char *name);
/* First value of a parameter from an application/x-www-form-urlencoded POST
 * body, else from the query string (Go's FormValue order); NULL when absent. */
const char *rw_http_param(rw_http_req *r, const char *name);
/* All values of a repeated parameter (e.g. "match[]"), query string and form
 * body together, in order. The array lives in the request arena. */
size_t rw_http_params(rw_http_req *r, const char *name, const char ***out);
const char *rw_http_body(const rw_http_req *r, size_t *len);
rw_arena *rw_http_arena(rw_http_req *r);

/* ---- response helpers ---- */
void rw_http_resp_header(rw_http_resp *resp, const char *name, const char *value);
/* Sets status and a plain-text body (with a trailing newline). */
void rw_http_resp_text(rw_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
