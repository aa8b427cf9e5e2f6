/* http.c - the HTTP server wrapper over libmicrohttpd (see http.h).
 *
 * Every request goes through access_cb: the first call picks the route from
 * the table and enforces the method and the declared body size, and takes
 * the declared body from the route's byte budget (503 + Retry-After before
 * a byte is read when it does not fit); later calls append body bytes
 * (still capped; a body without Content-Length is charged as it arrives,
 * and the connection is closed when it no longer fits - libmicrohttpd
 * cannot answer in the middle of an upload); the final call runs the
 * handler and queues its response (gzip-compressed when the handler allows
 * it and the client accepts it). One thread per connection, so handlers
 * may block. The body and its budget bytes are released once the handler
 * has answered (or, for a streamed answer, with the rest of the per-request
 * state - arena, parsed form - in completed_cb).
 *
 * Read deadlines: every connection is tracked from accept to close
 * (notify_connection) with the phase it is in - reading headers, reading a
 * body, in the handler - and a deadline for the first two; a watchdog
 * thread shuts down the socket of a connection past its deadline, which
 * ends it in its own thread. An inactivity timeout alone would let a client
 * that sends a byte every few seconds hold a connection for ever. */
#include "http.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include "budget.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "text.h"
#include "timeutil.h"

#define DEFAULT_MAX_BODY (1u << 20)
#define CONN_BUFFER_BYTES (128u << 10) /* MHD_OPTION_CONNECTION_MEMORY_LIMIT */

typedef struct route_state {
    rw_http_route r;
    rw_histogram *duration;
    rw_counter *by_class[6]; /* 1xx..5xx */
} route_state;

/* Connection phases, for the read deadlines. */
enum { PH_HEADERS, PH_BODY, PH_HANDLER };

/* One connection, from accept to close (cmu). */
typedef struct conn_ent {
    struct conn_ent *prev, *next;
    int fd;
    int phase;
    int64_t deadline_ns; /* of PH_HEADERS / PH_BODY */
    int shut;            /* the watchdog shut it down */
} conn_ent;

struct rw_http_server {
    struct MHD_Daemon *d;
    route_state *routes;
    size_t nroutes;
    int port;
    rw_counter *not_found;
    rw_http_auth_fn auth;
    void *auth_ctx;
    rw_budget *body_budget;   /* routes without a budget of their own */
    rw_counter *overloaded, *timed_out_headers, *timed_out_body;
    int64_t header_ns, body_ns, idle_ns;

    /* connection tracking and the deadline watchdog */
    pthread_mutex_t cmu;
    pthread_cond_t ccv;       /* wakes the watchdog to stop */
    conn_ent conns;           /* list head (sentinel) */
    int stopping;             /* cmu */
    pthread_t wd;
    int wd_started;
    int inited;               /* cmu and ccv initialised */

    /* what a daemon is started with, kept to start another on a TLS reload */
    unsigned maxc, per_ip, tmo;
    struct sockaddr_storage ss;
    int tls;
    const char *priorities;
    char *cert_pem, *key_pem; /* the current daemon's pair (owned) */
    MHD_socket listen_fd;     /* owned by us once a reload swapped daemons */
    struct retired *retired;  /* daemons finishing their connections */
};

/* A daemon replaced by a TLS reload: stopped in its own thread (stopping
 * waits for its connections), joined when the server stops. */
typedef struct retired {
    struct MHD_Daemon *d;
    char *cert_pem, *key_pem;
    pthread_t th;
    rw_http_server *s;
    struct retired *next;
} retired;

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
    rw_budget *budget;   /* body bytes charged to it */
    size_t charged;      /* bytes of budget this request holds */
    int too_large;
    int64_t start_ns;
    kv *form; /* parsed x-www-form-urlencoded body, lazily */
    size_t nform;
    int form_parsed;
    rw_principal *principal;
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

/* ---- streamed bodies ---- */

typedef struct stream_st {
    rw_http_stream_fn fn;
    rw_http_stream_free_fn free_fn;
    void *ctx;
    int gzip, ended;
    z_stream z;
    char in[64 * 1024];
} stream_st;

/* libmicrohttpd asks for the next piece of a streamed body. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_st *st = cls;
    if (!st->gzip) {
        long n = st->fn(st->ctx, buf, max);
        return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR
               : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                        : (ssize_t)n;
    }
    /* gzip: feed the producer's bytes through deflate until some output */
    st->z.next_out = (Bytef *)buf;
    st->z.avail_out = (uInt)(max > UINT32_MAX ? UINT32_MAX : max);
    while (st->z.avail_out == max) {
        if (st->z.avail_in == 0 && !st->ended) {
            long n = st->fn(st->ctx, st->in, sizeof st->in);
            if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (n == 0)
                st->ended = 1;
            st->z.next_in = (Bytef *)st->in;
            st->z.avail_in = (uInt)n;
        }
        int rc = deflate(&st->z, st->ended ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (st->z.avail_out == max)
                return MHD_CONTENT_READER_END_OF_STREAM;
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return (ssize_t)(max - st->z.avail_out);
}

static void stream_free(void *cls)
{
    stream_st *st = cls;
    if (st->gzip)
        deflateEnd(&st->z);
    if (st->free_fn)
        st->free_fn(st->ctx);
    free(st);
}

static enum MHD_Result respond_stream(rw_http_req *req, rw_http_resp *resp)
{
    stream_st *st = calloc(1, sizeof *st);
    if (!st) {
        if (resp->stream_free)
            resp->stream_free(resp->stream_ctx);
        return MHD_NO;
    }
    st->fn = resp->stream;
    st->free_fn = resp->stream_free;
    st->ctx = resp->stream_ctx;
    if (resp->gzip_ok && accepts_gzip(req) &&
        deflateInit2(&st->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) == Z_OK)
        st->gzip = 1;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    if (resp->content_type)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (st->gzip)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->hname[i], resp->hvalue[i]);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    rw_buf_free(&resp->body);
    return ret;
}

static enum MHD_Result respond(rw_http_req *req, rw_http_resp *resp)
{
    if (resp->stream)
        return respond_stream(req, resp);
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

/* The body and the budget bytes charged for it (once only). */
static void release_body(rw_http_req *req)
{
    if (req->charged)
        rw_budget_give(req->budget, req->charged);
    req->charged = 0;
    rw_buf_free(&req->body);
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

/* ---- connection tracking and read deadlines ---- */

static conn_ent *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_phase(rw_http_server *s, struct MHD_Connection *c, int phase, int64_t in_ns)
{
    conn_ent *e = conn_of(c);
    if (!e)
        return;
    pthread_mutex_lock(&s->cmu);
    e->phase = phase;
    e->deadline_ns = in_ns ? rw_mono_ns() + in_ns : 0;
    pthread_mutex_unlock(&s->cmu);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    rw_http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_ent *e = calloc(1, sizeof *e);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!e || !ci) {
            free(e);
            *socket_context = NULL;
            return;
        }
        e->fd = ci->connect_fd;
        e->phase = PH_HEADERS;
        e->deadline_ns = rw_mono_ns() + s->header_ns;
        pthread_mutex_lock(&s->cmu);
        e->next = s->conns.next;
        e->prev = &s->conns;
        s->conns.next->prev = e;
        s->conns.next = e;
        pthread_mutex_unlock(&s->cmu);
        *socket_context = e;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* libmicrohttpd notifies before it closes the socket, so the
           watchdog (which holds cmu while it shuts one down) never touches
           a descriptor that was closed and reused */
        conn_ent *e = *socket_context;
        if (!e)
            return;
        pthread_mutex_lock(&s->cmu);
        e->prev->next = e->next;
        e->next->prev = e->prev;
        pthread_mutex_unlock(&s->cmu);
        free(e);
        *socket_context = NULL;
    }
}

static void *watchdog(void *arg)
{
    rw_http_server *s = arg;
    pthread_mutex_lock(&s->cmu);
    while (!s->stopping) {
        int64_t now = rw_mono_ns();
        for (conn_ent *e = s->conns.next; e != &s->conns; e = e->next) {
            if (e->shut || e->phase == PH_HANDLER || !e->deadline_ns || now < e->deadline_ns)
                continue;
            /* the connection's own thread sees end-of-file and closes it */
            shutdown(e->fd, SHUT_RDWR);
            e->shut = 1;
            rw_counter_add(e->phase == PH_BODY ? s->timed_out_body : s->timed_out_headers, 1);
            rw_log(RW_LOG_DEBUG, "http: closing a connection past its %s deadline",
                   e->phase == PH_BODY ? "body" : "header");
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->ccv, &s->cmu, &ts);
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

static enum MHD_Result overloaded(rw_http_server *s, rw_http_req *req, struct MHD_Connection *conn)
{
    rw_counter_add(s->overloaded, 1);
    observe(req, 503);
    char msg[192];
    snprintf(msg, sizeof msg,
             "overloaded: %zu bytes of request bodies in flight (limit %zu); retry later\n",
             rw_budget_used(req->budget), rw_budget_limit(req->budget));
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Retry-After", "5");
    enum MHD_Result ret = MHD_queue_response(conn, 503, r);
    MHD_destroy_response(r);
    return ret;
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
        req->budget = rs->r.budget ? rs->r.budget : s->body_budget;
        rw_buf_init(&req->body, req->max_body);
        *con_cls = req;
        set_phase(s, conn, PH_BODY, s->body_ns);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (cl && declared > req->max_body) {
            /* refuse before reading a byte of it */
            req->too_large = 1;
            observe(req, 413);
            char msg[128];
            snprintf(msg, sizeof msg, "request body too large: %s bytes, limit %zu\n", cl,
                     req->max_body);
            return send_simple(conn, 413, msg);
        }
        if (declared) {
            /* the whole declared body is taken now, while a 503 can still
               be sent, and held until the request ends; one that could
               never fit is refused for good (a retry would not help) */
            if (declared > rw_budget_limit(req->budget)) {
                req->too_large = 1;
                observe(req, 413);
                char msg[160];
                snprintf(msg, sizeof msg,
                         "request body of %llu bytes is larger than the in-flight budget of %zu "
                         "bytes\n",
                         declared, rw_budget_limit(req->budget));
                return send_simple(conn, 413, msg);
            }
            if (!rw_budget_take(req->budget, (size_t)declared))
                return overloaded(s, req, conn);
            req->charged = (size_t)declared;
            rw_buf_reserve(&req->body, (size_t)declared);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (req->too_large)
            return MHD_YES;
        if (req->body.len + n > req->charged) {
            /* a body longer than declared, or without a length: charged as
               it arrives; past the budget the connection is closed (no
               answer can be queued in the middle of an upload) */
            size_t more = req->body.len + n - req->charged;
            if (!rw_budget_take(req->budget, more)) {
                rw_counter_add(s->overloaded, 1);
                observe(req, 503);
                return MHD_NO;
            }
            req->charged += more;
        }
        if (rw_buf_append(&req->body, upload_data, n) != RW_OK)
            req->too_large = 1;
        return MHD_YES;
    }
    set_phase(s, conn, PH_HANDLER, 0);
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
    /* the body is done with: its bytes go back to the budget before the
       answer leaves, so a client that sends its next request as soon as it
       has the answer finds them free (a streamed answer may still use it) */
    if (!resp.stream)
        release_body(req);
    return respond(req, &resp);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rw_http_server *s = cls;
    /* the next request on a kept-alive connection may first wait idle */
    set_phase(s, conn, PH_HEADERS, s->idle_ns + s->header_ns);
    rw_http_req *req = *con_cls;
    if (!req)
        return;
    release_body(req);
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

/* ---- daemons and TLS ---- */

static struct MHD_Daemon *start_daemon(rw_http_server *s, MHD_socket fd, const char *cert,
                                       const char *key)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (s->ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem o[16];
    int n = 0;
    if (fd != MHD_INVALID_SOCKET)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, (intptr_t)fd, NULL};
    else
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &s->ss};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->maxc, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)s->per_ip,
                                     NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->tmo, NULL};
    /* a connection's buffer: MHD's default 32 KiB took a remote-write
       request's body (~45 KB for 2000 samples) in three reads and three
       selects; 128 KiB takes it in one (the pool is mapped, not touched
       until used: 1024 connections reserve 128 MiB of address space) */
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                     (intptr_t)CONN_BUFFER_BYTES, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_INCREMENT,
                                     (intptr_t)(16 * 1024), NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection,
                                     s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s};
    /* MHD's default SO_REUSEADDR only, never SO_REUSEPORT: a second process
       on the same port must fail to start, not silently share connections */
    if (s->tls) {
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)s->priorities};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_ARRAY, o,
                            MHD_OPTION_END);
}

static char *read_file(const char *path, rw_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rw_err_set(err, RW_IO, "cannot read %s", path);
        return NULL;
    }
    rw_buf b;
    rw_buf_init(&b, 1u << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (rw_buf_append(&b, chunk, n) != RW_OK)
            break;
    int bad = ferror(f) || b.failed;
    fclose(f);
    if (bad) {
        rw_buf_free(&b);
        rw_err_set(err, RW_IO, "cannot read %s (larger than 1 MiB?)", path);
        return NULL;
    }
    size_t len;
    char *p = rw_buf_detach(&b, &len);
    if (!p && (p = malloc(1)))
        p[0] = '\0';
    return p;
}

/* Reads a certificate and key and checks that GnuTLS takes them as a pair,
 * so a bad file is a clear error and never a daemon that fails to start. */
static rw_rc read_tls_pair(const rw_http_tls *t, char **cert, char **key, rw_err *err)
{
    *cert = *key = NULL;
    char *c = read_file(t->cert_file, err), *k = c ? read_file(t->key_file, err) : NULL;
    if (!c || !k) {
        free(c);
        free(k);
        return err ? err->code : RW_IO;
    }
    gnutls_certificate_credentials_t cred;
    int r = gnutls_certificate_allocate_credentials(&cred);
    if (r == GNUTLS_E_SUCCESS) {
        gnutls_datum_t cd = {(unsigned char *)c, (unsigned)strlen(c)};
        gnutls_datum_t kd = {(unsigned char *)k, (unsigned)strlen(k)};
        r = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
        gnutls_certificate_free_credentials(cred);
    }
    if (r < 0) {
        free(c);
        free(k);
        return rw_err_set(err, RW_BADREQ, "http.tls: %s / %s: %s", t->cert_file, t->key_file,
                          gnutls_strerror(r));
    }
    *cert = c;
    *key = k;
    return RW_OK;
}

/* Lets the connections a replaced daemon serves end on their own (keep-
 * alive clients go on with the old pair until they close or idle out),
 * then stops it; at once when the server stops. */
static void *retire_main(void *arg)
{
    retired *r = arg;
    rw_http_server *s = r->s;
    int64_t until = rw_mono_ns() + s->idle_ns + s->header_ns;
    for (;;) {
        /* libmicrohttpd is asked without cmu held: its threads take cmu
           (notify_connection) while holding locks of their own */
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if ((di && di->num_connections == 0) || rw_mono_ns() >= until)
            break;
        pthread_mutex_lock(&s->cmu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->cmu);
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->ccv, &s->cmu, &ts);
        pthread_mutex_unlock(&s->cmu);
    }
    MHD_stop_daemon(r->d); /* lets requests in flight finish */
    return NULL;
}

rw_rc rw_http_reload_tls(rw_http_server *s, const rw_http_config *cfg, rw_err *err)
{
    if (!s->tls && !cfg->tls.cert_file[0])
        return RW_OK;
    if (!s->tls || !cfg->tls.cert_file[0])
        return rw_err_set(err, RW_BADREQ, "http.tls cannot be turned on or off without a restart");
    char *cert, *key;
    rw_rc rc = read_tls_pair(&cfg->tls, &cert, &key, err);
    if (rc != RW_OK)
        return rc;
    if (!strcmp(cert, s->cert_pem) && !strcmp(key, s->key_pem)) {
        free(cert);
        free(key);
        return RW_OK;
    }
    retired *r = calloc(1, sizeof *r);
    if (!r) {
        free(cert);
        free(key);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    r->s = s;
    /* the listening socket moves to a daemon with the new pair: connections
       wait in the backlog meanwhile, none is refused; the old daemon ends
       the ones it serves with the old pair */
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd == MHD_INVALID_SOCKET) {
        free(r);
        free(cert);
        free(key);
        return rw_err_set(err, RW_INTERNAL, "http: cannot take over the listening socket");
    }
    s->listen_fd = fd;
    struct MHD_Daemon *nd = start_daemon(s, fd, cert, key);
    if (!nd) {
        /* cannot happen with a pair GnuTLS accepted; serve the old pair */
        free(cert);
        free(key);
        nd = start_daemon(s, fd, s->cert_pem, s->key_pem);
        if (!nd) {
            free(r);
            rw_error("http: no daemon could take over the listening socket");
            return rw_err_set(err, RW_INTERNAL, "http: cannot restart the server");
        }
        r->d = s->d;
        s->d = nd;
        r->cert_pem = NULL;
        r->key_pem = NULL;
        rc = rw_err_set(err, RW_INTERNAL, "http: the new TLS pair could not be served");
    } else {
        r->d = s->d;
        r->cert_pem = s->cert_pem;
        r->key_pem = s->key_pem;
        s->d = nd;
        s->cert_pem = cert;
        s->key_pem = key;
        rw_info("http: TLS certificate reloaded from %s", cfg->tls.cert_file);
    }
    if (pthread_create(&r->th, NULL, retire_main, r) != 0) {
        MHD_stop_daemon(r->d);
        r->th = pthread_self();
        r->d = NULL;
    }
    r->next = s->retired;
    s->retired = r;
    return rc;
}

int rw_http_tls_enabled(const rw_http_server *s)
{
    return s->tls;
}

static void server_free(rw_http_server *s)
{
    if (!s)
        return;
    if (s->inited) {
        pthread_mutex_lock(&s->cmu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->ccv); /* the watchdog and retiring daemons */
        pthread_mutex_unlock(&s->cmu);
    }
    if (s->wd_started)
        pthread_join(s->wd, NULL);
    if (s->inited) {
        pthread_mutex_destroy(&s->cmu);
        pthread_cond_destroy(&s->ccv);
    }
    for (retired *r = s->retired, *n; r; r = n) {
        n = r->next;
        if (r->d)
            pthread_join(r->th, NULL);
        free(r->cert_pem);
        free(r->key_pem);
        free(r);
    }
    if (s->listen_fd != MHD_INVALID_SOCKET)
        close(s->listen_fd);
    free(s->cert_pem);
    free(s->key_pem);
    rw_budget_free(s->body_budget);
    free(s->routes);
    free(s);
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
    if (s)
        s->listen_fd = MHD_INVALID_SOCKET;
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
    s->overloaded = rw_metrics_counter(
        m, "rwgate_http_requests_overloaded_total", NULL,
        "Requests refused (503, or closed mid-upload) because their bodies did not fit the "
        "in-flight byte budget.");
    const char *th = "Connections closed because a request did not arrive in time.";
    s->timed_out_headers = rw_metrics_counter(m, "rwgate_http_read_timeouts_total",
                                              "phase=\"headers\"", th);
    s->timed_out_body = rw_metrics_counter(m, "rwgate_http_read_timeouts_total",
                                           "phase=\"body\"", th);
    s->header_ns = cfg->read_header_timeout_ms * 1000000;
    s->body_ns = cfg->read_timeout_ms * 1000000;
    s->idle_ns = cfg->idle_timeout_ms * 1000000;
    if (!(s->body_budget = rw_budget_new((size_t)cfg->max_inflight_body_bytes))) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    s->conns.next = s->conns.prev = &s->conns;
    s->inited = 1;
    if (pthread_create(&s->wd, NULL, watchdog, s) != 0) {
        rw_err_set(err, RW_NOMEM, "cannot start the HTTP watchdog thread");
        goto fail;
    }
    s->wd_started = 1;
    s->maxc = (unsigned)cfg->max_connections;
    s->per_ip = (unsigned)cfg->max_connections_per_client;
    s->tmo = (unsigned)((cfg->idle_timeout_ms + 999) / 1000);
    s->ss = ss;
    s->listen_fd = MHD_INVALID_SOCKET;
    if (cfg->tls.cert_file[0]) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            rw_err_set(err, RW_UNSUPPORTED, "http.tls: this libmicrohttpd has no TLS support");
            goto fail;
        }
        s->tls = 1;
        s->priorities = cfg->tls.min_version == RW_TLS13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                                          : "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
                                                            "+VERS-TLS1.2";
        if (read_tls_pair(&cfg->tls, &s->cert_pem, &s->key_pem, err) != RW_OK)
            goto fail;
    }
    if (!(s->d = start_daemon(s, MHD_INVALID_SOCKET, s->cert_pem, s->key_pem))) {
        rw_err_set(err, RW_IO, "cannot listen on %s (address in use or not available)", listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (cfg == &defaults)
        rw_cfg_free(&rw_http_config_table, &defaults);
    return s;
fail:
    server_free(s);
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
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        s->listen_fd = fd; /* ours now: closed by server_free */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    server_free(s);
}

rw_rc rw_http_set_principal(rw_http_req *r, const rw_principal *p)
{
    rw_arena *a = r->arena;
    rw_principal *c = rw_arena_alloc(a, sizeof *c);
    const char **rt = rw_arena_alloc(a, (p->nread_tenants ? p->nread_tenants : 1) * sizeof *rt);
    if (!c || !rt)
        return RW_NOMEM;
    *c = *p;
    c->name = rw_arena_strdup(a, p->name ? p->name : "");
    c->tenant = rw_arena_strdup(a, p->tenant ? p->tenant : "");
    c->tenant_label = rw_arena_strdup(a, p->tenant_label ? p->tenant_label : "");
    if (!c->name || !c->tenant || !c->tenant_label)
        return RW_NOMEM;
    for (size_t i = 0; i < p->nread_tenants; i++)
        if (!(rt[i] = rw_arena_strdup(a, p->read_tenants[i])))
            return RW_NOMEM;
    c->read_tenants = rt;
    r->principal = c;
    return RW_OK;
}

const rw_principal *rw_http_principal(const rw_http_req *r)
{
    return r->principal;
}

int rw_principal_reads(const rw_principal *p, const char *tenant)
{
    if (!p || p->read_all)
        return 1;
    for (size_t i = 0; i < p->nread_tenants; i++)
        if (!strcmp(p->read_tenants[i], tenant ? tenant : ""))
            return 1;
    return 0;
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
