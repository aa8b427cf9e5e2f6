/* http.c - the HTTP server wrapper over libmicrohttpd (see http.h).
 *
 * Every request goes through access_cb: the first call picks the route from
 * the table and enforces the method and the declared body size; later calls
 * append body bytes (still capped); the final call runs the handler and
 * queues its response (gzip-compressed when the handler allows it and the
 * client accepts it). One thread per connection, so handlers may block. The
 * per-request state (arena, body, parsed form) is freed in completed_cb. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "text.h"
#include "timeutil.h"

#define DEFAULT_MAX_BODY (1u << 20)

typedef struct route_state {
    rw_http_route r;
    rw_histogram *duration;
    rw_counter *by_class[6]; /* 1xx..5xx */
} route_state;

struct rw_http_server {
    struct MHD_Daemon *d;
    route_state *routes;
    size_t nroutes;
    int port;
    rw_counter *not_found;
    rw_http_auth_fn auth;
    void *auth_ctx;
};

/* ---- the route registry ---- */

struct rw_routes {
    rw_http_route *v;
    size_t n, cap;
};

rw_routes *rw_routes_new(void)
{
    return calloc(1, sizeof(rw_routes));
}

void rw_routes_free(rw_routes *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

rw_rc rw_routes_add(rw_routes *r, const rw_http_route *row, rw_err *err)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].path, row->path))
            return rw_err_set(err, RW_BADREQ, "route %s is registered twice", row->path);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        rw_http_route *nv = realloc(r->v, cap * sizeof *nv);
        if (!nv)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n++] = *row;
    return RW_OK;
}

size_t rw_routes_count(const rw_routes *r)
{
    return r->n;
}

const rw_http_route *rw_routes_get(const rw_routes *r, size_t i)
{
    return i < r->n ? &r->v[i] : NULL;
}

const char *rw_perm_name(rw_perm p)
{
    switch (p) {
    case RW_PERM_OPEN: return "open";
    case RW_PERM_READ: return "read";
    case RW_PERM_WRITE: return "write";
    case RW_PERM_ADMIN: return "admin";
    }
    return "?";
}

typedef struct kv {
    const char *k, *v;
} kv;

struct rw_http_req {
    struct MHD_Connection *conn;
    const route_state *route;
    const char *method, *path;
    rw_arena *arena;
    rw_buf body;
    size_t max_body;
    int too_large;
    int64_t start_ns;
    kv *form; /* parsed x-www-form-urlencoded body, lazily */
    size_t nform;
    int form_parsed;
};

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return RW_HTTP_GET;
    if (strcmp(m, "POST") == 0)
        return RW_HTTP_POST;
    if (strcmp(m, "PUT") == 0)
        return RW_HTTP_PUT;
    if (strcmp(m, "DELETE") == 0)
        return RW_HTTP_DELETE;
    return 0;
}

static const route_state *find_route(const rw_http_server *s, const char *path, int *path_found)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        const char *p = s->routes[i].r.path;
        size_t n = strlen(p);
        if (n && p[n - 1] == '*') {
            if (strncmp(path, p, n - 1) == 0)
                return &s->routes[i];
        } else if (strcmp(path, p) == 0) {
            return &s->routes[i];
        }
    }
    *path_found = 0;
    return NULL;
}

static enum MHD_Result send_simple(struct MHD_Connection *c, int status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static int accepts_gzip(rw_http_req *req)
{
    const char *ae = rw_http_header(req, "Accept-Encoding");
    return ae && strstr(ae, "gzip") != NULL;
}

static int gzip_buf(const char *in, size_t n, rw_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t bound = deflateBound(&z, n) + 32;
    if (rw_buf_reserve(out, bound) != RW_OK) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->p;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

static enum MHD_Result respond(rw_http_req *req, rw_http_resp *resp)
{
    rw_buf *body = &resp->body;
    rw_buf gz;
    rw_buf_init(&gz, 0);
    int gzipped = 0;
    if (resp->gzip_ok && body->len > 512 && accepts_gzip(req) &&
        gzip_buf(body->p ? body->p : "", body->len, &gz) == 0) {
        body = &gz;
        gzipped = 1;
    }
    size_t len;
    char *p = rw_buf_detach(body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(p);
        rw_buf_free(&gz);
        return MHD_NO;
    }
    if (resp->content_type)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (gzipped)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->hname[i], resp->hvalue[i]);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    rw_buf_free(&gz);
    rw_buf_free(&resp->body);
    return ret;
}

static void observe(rw_http_req *req, int status)
{
    const route_state *rs = req->route;
    if (!rs)
        return;
    rw_histogram_observe(rs->duration, (double)(rw_mono_ns() - req->start_ns) / 1e9);
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        rw_counter_add(rs->by_class[cls], 1);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    rw_http_server *s = cls;
    rw_http_req *req = *con_cls;
    if (!req) {
        int path_found = 1;
        const route_state *rs = find_route(s, url, &path_found);
        if (!rs) {
            rw_counter_add(s->not_found, 1);
            return send_simple(conn, 404, "404 page not found\n");
        }
        if (!(method_bit(method) & rs->r.methods))
            return send_simple(conn, 405, "method not allowed\n");
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->arena = rw_arena_new(0, 0);
        if (!req->arena) {
            free(req);
            return MHD_NO;
        }
        req->conn = conn;
        req->route = rs;
        req->method = method;
        req->path = url;
        req->max_body = rs->r.body_limit ? rs->r.body_limit(rs->r.ctx)
                        : rs->r.max_body ? rs->r.max_body
                                         : DEFAULT_MAX_BODY;
        req->start_ns = rw_mono_ns();
        rw_buf_init(&req->body, req->max_body);
        *con_cls = req;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > req->max_body) {
            /* refuse before reading a byte of it */
            req->too_large = 1;
            observe(req, 413);
            char msg[128];
            snprintf(msg, sizeof msg, "request body too large: %s bytes, limit %zu\n", cl,
                     req->max_body);
            return send_simple(conn, 413, msg);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!req->too_large && rw_buf_append(&req->body, upload_data, *upload_size) != RW_OK)
            req->too_large = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->too_large) {
        observe(req, 413);
        char msg[128];
        snprintf(msg, sizeof msg, "request body too large: limit %zu bytes\n", req->max_body);
        return send_simple(conn, 413, msg);
    }
    rw_http_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    resp.content_type = "application/json";
    rw_buf_init(&resp.body, 0);
    if (!s->auth || req->route->r.perm == RW_PERM_OPEN ||
        s->auth(s->auth_ctx, req, req->route->r.perm, &resp))
        req->route->r.fn(req->route->r.ctx, req, &resp);
    observe(req, resp.status);
    return respond(req, &resp);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rw_http_req *req = *con_cls;
    if (!req)
        return;
    rw_buf_free(&req->body);
    rw_arena_free(req->arena);
    free(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    rw_log(RW_LOG_DEBUG, "http: %s", msg);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, rw_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return rw_err_set(err, RW_BADREQ, "listen address \"%s\": want HOST:PORT", listen);
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return rw_err_set(err, RW_BADREQ, "listen address \"%s\": host too long", listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *h = host;
    if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return rw_err_set(err, RW_BADREQ, "listen address \"%s\": bad port", listen);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%ld", port);
    int gai = getaddrinfo(*h ? h : NULL, ps, &hints, &res);
    if (gai != 0 || !res)
        return rw_err_set(err, RW_BADREQ, "listen address \"%s\": %s", listen, gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return RW_OK;
}

rw_http_server *rw_http_start(const rw_http_opts *opts, const rw_routes *routes, rw_err *err)
{
    rw_http_config defaults;
    const rw_http_config *cfg = opts->cfg;
    if (!cfg) {
        rw_cfg_defaults(&rw_http_config_table, &defaults);
        cfg = &defaults;
    }
    const char *listen = opts->listen ? opts->listen : cfg->listen;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    rw_http_server *s = NULL;
    if (parse_listen(listen, &ss, err) != RW_OK)
        goto fail;
    s = calloc(1, sizeof *s);
    size_t nroutes = routes ? routes->n : 0;
    if (!s || !(s->routes = calloc(nroutes ? nroutes : 1, sizeof *s->routes))) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    s->nroutes = nroutes;
    s->auth = opts->auth;
    s->auth_ctx = opts->auth_ctx;
    rw_metrics *m = opts->metrics;
    for (size_t i = 0; i < nroutes; i++) {
        s->routes[i].r = routes->v[i];
        char lbl[256];
        snprintf(lbl, sizeof lbl, "handler=\"%s\"", routes->v[i].path);
        s->routes[i].duration =
            rw_metrics_histogram(m, "rwgate_http_request_duration_seconds", lbl,
                                 "Duration of HTTP requests by handler.", rw_latency_buckets,
                                 rw_latency_nbuckets);
        for (int c = 2; c <= 5; c++) {
            snprintf(lbl, sizeof lbl, "handler=\"%s\",code=\"%dxx\"", routes->v[i].path, c);
            s->routes[i].by_class[c] = rw_metrics_counter(
                m, "rwgate_http_requests_total", lbl, "HTTP requests by handler and status class.");
        }
    }
    s->not_found = rw_metrics_counter(m, "rwgate_http_requests_total",
                                      "handler=\"other\",code=\"4xx\"",
                                      "HTTP requests by handler and status class.");
    unsigned maxc = (unsigned)cfg->max_connections;
    unsigned tmo = (unsigned)((cfg->idle_timeout_ms + 999) / 1000);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* MHD's default SO_REUSEADDR only, never SO_REUSEPORT: a second process on
     * the same port must fail to start, not silently share the connections */
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, maxc,
                            MHD_OPTION_CONNECTION_TIMEOUT, tmo, MHD_OPTION_NOTIFY_COMPLETED,
                            completed_cb, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_END);
    if (!s->d) {
        rw_err_set(err, RW_IO, "cannot listen on %s (address in use or not available)", listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (cfg == &defaults)
        rw_cfg_free(&rw_http_config_table, &defaults);
    return s;
fail:
    if (s)
        free(s->routes);
    free(s);
    if (cfg == &defaults)
        rw_cfg_free(&rw_http_config_table, &defaults);
    return NULL;
}

int rw_http_port(const rw_http_server *s)
{
    return s->port;
}

void rw_http_stop(rw_http_server *s)
{
    if (!s)
        return;
    /* stop accepting first; MHD_stop_daemon then lets running handlers
       finish and joins the connection threads */
    MHD_quiesce_daemon(s->d);
    MHD_stop_daemon(s->d);
    free(s->routes);
    free(s);
}

const char *rw_http_method(const rw_http_req *r) { return r->method; }
const char *rw_http_path(const rw_http_req *r) { return r->path; }
rw_arena *rw_http_arena(rw_http_req *r) { return r->arena; }

const char *rw_http_body(const rw_http_req *r, size_t *len)
{
    *len = r->body.len;
    return r->body.p ? r->body.p : "";
}

const char *rw_http_header(const rw_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static char *urldecode(rw_arena *a, const char *s, size_t n)
{
    char *o = rw_arena_alloc(a, n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && rw_hex_digit(s[i + 1]) >= 0 &&
                   rw_hex_digit(s[i + 2]) >= 0) {
            o[j++] = (char)(rw_hex_digit(s[i + 1]) * 16 + rw_hex_digit(s[i + 2]));
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

static void parse_form(rw_http_req *r)
{
    r->form_parsed = 1;
    if (strcmp(r->method, "POST") != 0 || r->body.len == 0)
        return;
    const char *ct = rw_http_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return;
    size_t cap = 1;
    for (size_t i = 0; i < r->body.len; i++)
        if (r->body.p[i] == '&')
            cap++;
    r->form = rw_arena_calloc(r->arena, cap, sizeof *r->form);
    if (!r->form)
        return;
    const char *p = r->body.p, *end = r->body.p + r->body.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (stop > p) {
            const char *kend = eq ? eq : stop;
            kv *e = &r->form[r->nform++];
            e->k = urldecode(r->arena, p, (size_t)(kend - p));
            e->v = eq ? urldecode(r->arena, eq + 1, (size_t)(stop - eq - 1)) : "";
        }
        p = stop + 1;
    }
}

typedef struct collect {
    const char *name;
    const char **vals;
    size_t n, cap;
    rw_arena *a;
} collect;

static void collect_add(collect *c, const char *v)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        const char **nv = rw_arena_realloc(c->a, c->vals, c->cap * sizeof *nv, ncap * sizeof *nv);
        if (!nv)
            return;
        c->vals = nv;
        c->cap = ncap;
    }
    c->vals[c->n++] = v;
}

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    collect *c = cls;
    if (key && strcmp(key, c->name) == 0)
        collect_add(c, value ? value : "");
    return MHD_YES;
}

size_t rw_http_params(rw_http_req *r, const char *name, const char ***out)
{
    collect c = {name, NULL, 0, 0, r->arena};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &c);
    if (!r->form_parsed)
        parse_form(r);
    for (size_t i = 0; i < r->nform; i++)
        if (r->form[i].k && strcmp(r->form[i].k, name) == 0)
            collect_add(&c, r->form[i].v ? r->form[i].v : "");
    *out = c.vals;
    return c.n;
}

/* As Go's Request.FormValue, which Prometheus uses: a form-encoded POST body
 * takes precedence over the query string. */
const char *rw_http_param(rw_http_req *r, const char *name)
{
    if (!r->form_parsed)
        parse_form(r);
    for (size_t i = 0; i < r->nform; i++)
        if (r->form[i].k && strcmp(r->form[i].k, name) == 0)
            return r->form[i].v;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void rw_http_resp_header(rw_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders < RW_HTTP_MAX_RESP_HEADERS) {
        resp->hname[resp->nheaders] = name;
        resp->hvalue[resp->nheaders] = value;
        resp->nheaders++;
    }
}

void rw_http_resp_text(rw_http_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    rw_buf_reset(&resp->body);
    rw_buf_puts(&resp->body, msg);
    rw_buf_putc(&resp->body, '\n');
}
