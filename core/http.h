/* http.h - the HTTP server wrapper (libmicrohttpd underneath).
 *
 * Routes come from one registry of rows {path, methods, permission,
 * max_body, handler, ctx} that every module adds to; the dispatcher enforces
 * the method (405), the permission (through the auth function), the body
 * size limit (413, checked against Content-Length before reading and while
 * reading), and collects the body; handlers only do their own work. Each request has an arena that lives
 * until its response is sent. Connections are served one thread each, so a
 * handler may block (e.g. waiting for a group commit). */
#ifndef RW_HTTP_H
#define RW_HTTP_H

#include <stddef.h>
#include <stdint.h>
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

/* What a route needs the caller to be allowed to do. The dispatcher asks the
 * server's auth function (rw_http_opts.auth) once per request, before the
 * handler runs; without one every route is open. */
typedef enum {
    RW_PERM_OPEN = 0, /* health and readiness: never needs a credential */
    RW_PERM_READ,     /* queries, metadata, status, /metrics */
    RW_PERM_WRITE,    /* remote-write */
    RW_PERM_ADMIN     /* reload and anything else that changes state */
} rw_perm;

const char *rw_perm_name(rw_perm p);

/* The current body limit of a route whose limit follows reloadable settings. */
typedef size_t (*rw_http_limit_fn)(void *ctx);

typedef struct rw_http_route {
    const char *path;      /* exact, or a prefix when it ends with '*' */
    unsigned methods;      /* RW_HTTP_GET | RW_HTTP_POST ... */
    rw_perm perm;
    size_t max_body;       /* bytes accepted; 0 = the server default (1 MiB) */
    rw_http_limit_fn body_limit; /* when set, asked per request (ctx as the handler's);
                                    overrides max_body */
    rw_http_handler_fn fn;
    void *ctx;
} rw_http_route;

/* The route registry: every module adds its rows before the server starts
 * (rw_<module>_routes(handle, routes)). Growable; a path may be routed once. */
typedef struct rw_routes rw_routes;
rw_routes *rw_routes_new(void);
void rw_routes_free(rw_routes *r);
/* Copies the row; RW_BADREQ when the path is routed already. */
rw_rc rw_routes_add(rw_routes *r, const rw_http_route *row, rw_err *err);
size_t rw_routes_count(const rw_routes *r);
const rw_http_route *rw_routes_get(const rw_routes *r, size_t i);

/* Decides whether a request may use a route needing `perm`: returns 1 to let
 * the handler run, or 0 after filling resp (401 with WWW-Authenticate, 403). */
typedef int (*rw_http_auth_fn)(void *ctx, rw_http_req *req, rw_perm perm, rw_http_resp *resp);

/* The `http:` section of the configuration (rows in http_config.c). */
typedef struct rw_http_config {
    char *listen;              /* HOST:PORT; port 0 = any free port (rw_http_port) */
    int64_t max_connections;
    int64_t idle_timeout_ms;   /* an idle connection is closed after this */
} rw_http_config;

struct rw_cfg_table;
extern const struct rw_cfg_table rw_http_config_table;

typedef struct rw_http_opts {
    const rw_http_config *cfg;  /* NULL = defaults (listen must then be set) */
    const char *listen;         /* overrides cfg->listen when not NULL */
    struct rw_metrics *metrics; /* request counts and durations per route; may be NULL */
    rw_http_auth_fn auth;       /* NULL: every route is open */
    void *auth_ctx;
} rw_http_opts;

typedef struct rw_http_server rw_http_server;

/* Starts serving the registry's routes (copied). */
rw_http_server *rw_http_start(const rw_http_opts *opts, const rw_routes *routes, rw_err *err);
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
