/* http.h - the HTTP server wrapper (libmicrohttpd underneath).
 *
 * Routes come from one registry of rows {path, methods, permission,
 * max_body, handler, ctx} that every module adds to; the dispatcher enforces
 * the method (405), the permission (through the auth function), the body
 * size limit (413, checked against Content-Length before reading and while
 * reading), and collects the body; handlers only do their own work. Each
 * request has an arena that lives until its response is sent. Connections
 * are served one thread each, so a handler may block (e.g. waiting for a
 * group commit).
 *
 * What a client can hold is bounded: body bytes are charged to a byte
 * budget as they arrive (the route's, e.g. the write path's in-flight
 * budget, or the server's), and a request that does not fit gets 503 with
 * Retry-After at once instead of being read to its end; a client address
 * holds at most http.max_connections_per_client connections; request
 * headers must arrive within http.read_header_timeout and a body within
 * http.read_timeout (a watchdog closes connections past them, however
 * slowly they trickle). Routes without a body (health, readiness, metrics)
 * never wait on a budget. */
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

/* A body produced while it is sent (answers too big to build first:
 * /federate): fills buf with up to max bytes and returns how many, 0 at
 * the end, -1 on an error (the status has gone out already: the
 * connection is closed, the client sees a truncated body). */
typedef long (*rw_http_stream_fn)(void *ctx, char *buf, size_t max);
/* Called once when the streamed response is done or abandoned. */
typedef void (*rw_http_stream_free_fn)(void *ctx);

typedef struct rw_http_resp {
    int status;                /* default 200 */
    const char *content_type;  /* default "application/json" */
    rw_buf body;
    int gzip_ok;               /* handler allows gzip when the client accepts it */
    size_t nheaders;
    const char *hname[RW_HTTP_MAX_RESP_HEADERS];
    const char *hvalue[RW_HTTP_MAX_RESP_HEADERS]; /* strings must live as long as the request arena */
    rw_http_stream_fn stream;  /* when set, the body comes from it (body is ignored);
                                  gzip applies as for a buffer */
    rw_http_stream_free_fn stream_free;
    void *stream_ctx;          /* must not use the request arena: it outlives the handler */
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
    struct rw_budget *budget;    /* body bytes are charged to it as they arrive; NULL:
                                    the server's (http.max_inflight_body_bytes) */
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

/* Who made a request, as the auth function established it; NULL when
 * authentication is off or the path is open. Lives in the request arena. */
typedef struct rw_principal {
    const char *name;          /* the credential's entry (tenant name), for logs */
    const char *tenant;        /* the tenant its writes belong to */
    const char *tenant_label;  /* the label stored series carry their tenant in */
    const char *const *read_tenants; /* tenants it may read, its own first */
    size_t nread_tenants;
    int read_all;              /* may read every tenant's series */
    unsigned perms;            /* bit (1u << rw_perm) per permission held */
} rw_principal;

/* For the auth function: attaches the caller (copied into the request
 * arena). */
rw_rc rw_http_set_principal(rw_http_req *r, const rw_principal *p);
const rw_principal *rw_http_principal(const rw_http_req *r);
/* 1 when p may read the series of `tenant` (p NULL: authentication off or
 * an open path, everything is readable). For the status reports that list
 * per-tenant state outside the querier's scoping. */
int rw_principal_reads(const rw_principal *p, const char *tenant);

/* Decides whether a request may use a route needing `perm`: returns 1 to let
 * the handler run, or 0 after filling resp (401 with WWW-Authenticate, 403). */
typedef int (*rw_http_auth_fn)(void *ctx, rw_http_req *req, rw_perm perm, rw_http_resp *resp);

/* TLS for the server (http.tls). Certificate and key are PEM files, read at
 * start and again at every reload (SIGHUP, /-/reload): a renewed
 * certificate takes effect without a restart and without refusing a
 * connection. Turning TLS on or off needs a restart. */
enum { RW_TLS12, RW_TLS13 };
typedef struct rw_http_tls {
    char *cert_file;   /* "" = plain HTTP */
    char *key_file;
    int min_version;   /* RW_TLS12 / RW_TLS13 */
} rw_http_tls;

/* The `http:` section of the configuration (rows in http_config.c). */
typedef struct rw_http_config {
    char *listen;              /* HOST:PORT; port 0 = any free port (rw_http_port) */
    int64_t max_connections;
    int64_t max_connections_per_client; /* per client address; 0 = no limit */
    int64_t idle_timeout_ms;   /* an idle connection is closed after this */
    int64_t read_header_timeout_ms; /* request headers must be complete within this */
    int64_t read_timeout_ms;   /* a request body must be complete within this */
    int64_t max_inflight_body_bytes; /* bodies being received at once on routes
                                        without a budget of their own */
    rw_http_tls tls;
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
/* Re-reads the TLS certificate and key (cfg->tls) and serves new
 * connections with them; connections in flight finish with the old ones.
 * Nothing changes when the files are unchanged. An unreadable or
 * mismatched pair fails with a message and the old pair stays. */
rw_rc rw_http_reload_tls(rw_http_server *s, const rw_http_config *cfg, rw_err *err);
/* Whether the server speaks TLS. */
int rw_http_tls_enabled(const rw_http_server *s);
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
