/* ui.c - serves the web UI compiled into the binary (see ui.h; the files
 * come from ui/embed.c's generated table, assets.h).
 *
 *   /ui/a/<build hash>/<file>  the assets: immutable, cached forever (a new
 *                              build changes the hash, so the URL)
 *   /ui/, /ui/fleet, /ui/scenario, /ui/cluster/NAME[/troubleshoot],
 *   /ui/query, /ui/alerts, /ui/rules, /ui/sources, /ui/cardinality
 *                              the HTML shell (index.html): revalidated on
 *                              every load (ETag, 304); the ES modules it
 *                              loads render the page named by the URL
 *   /ui  /                     redirect to /ui/
 *   /favicon.ico               the favicon (an SVG)
 *
 * Every file is stored gzip-compressed and sent as it is when the client
 * accepts gzip, inflated otherwise. Every answer carries a Content-Security-
 * Policy that allows only this origin (the UI has no inline script or
 * style) and X-Content-Type-Options: nosniff. */
#include "ui.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include "core/arena.h"

#if RWGATE_UI
#include "ui/assets.h"
#endif

#define CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

struct rw_ui {
    int unused; /* the assets are constant; the handle keeps the module's shape */
};

int rw_ui_built(void)
{
    return RWGATE_UI;
}

rw_ui *rw_ui_new(rw_err *err)
{
    rw_ui *ui = calloc(1, sizeof *ui);
    if (!ui)
        rw_err_set(err, RW_NOMEM, "out of memory");
    return ui;
}

void rw_ui_free(rw_ui *ui)
{
    free(ui);
}

static void security_headers(rw_http_resp *resp)
{
    rw_http_resp_header(resp, "Content-Security-Policy", CSP);
    rw_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    rw_http_resp_header(resp, "Referrer-Policy", "same-origin");
}

static void not_found(rw_http_resp *resp, const char *what)
{
    rw_http_resp_text(resp, 404, "%s", what);
    security_headers(resp);
}

#if RWGATE_UI

static const rw_ui_asset *find_asset(const char *path)
{
    size_t lo = 0, hi = rw_ui_nassets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rw_ui_assets[mid].path, path);
        if (c == 0)
            return &rw_ui_assets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether Accept-Encoding allows gzip: a "gzip", "x-gzip" or "*" coding
 * whose q-value is not 0. */
static int accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tl = (size_t)(p - tok);
        int named = (tl == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                    (tl == 6 && strncasecmp(tok, "x-gzip", 6) == 0) || (tl == 1 && *tok == '*');
        double q = 1;
        while (*p && *p != ',') {
            if (*p == ';') {
                p++;
                while (*p == ' ')
                    p++;
                if ((*p == 'q' || *p == 'Q') && p[1] == '=')
                    q = strtod(p + 2, NULL);
            } else {
                p++;
            }
        }
        if (named && q > 0)
            return 1;
    }
    return 0;
}

/* Whether an If-None-Match list names etag (weak comparison, as RFC 9110
 * asks for If-None-Match). */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

static int inflate_into(const rw_ui_asset *a, rw_buf *out)
{
    if (rw_buf_reserve(out, a->nraw + 1) != RW_OK)
        return -1;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -1;
    z.next_in = (Bytef *)a->gz;
    z.avail_in = (uInt)a->ngz;
    z.next_out = (Bytef *)out->p;
    z.avail_out = (uInt)(a->nraw + 1);
    int rc = inflate(&z, Z_FINISH);
    out->len = z.total_out;
    out->p[out->len] = '\0';
    inflateEnd(&z);
    return rc == Z_STREAM_END && out->len == a->nraw ? 0 : -1;
}

static void serve(rw_http_req *req, rw_http_resp *resp, const rw_ui_asset *a,
                  const char *cache_control)
{
    int gz = accepts_gzip(rw_http_header(req, "Accept-Encoding"));
    /* one strong ETag per representation, as the bytes differ */
    const char *etag = rw_arena_sprintf(rw_http_arena(req), "\"%s%s\"", a->hash, gz ? "-gz" : "");
    security_headers(resp);
    rw_http_resp_header(resp, "Cache-Control", cache_control);
    rw_http_resp_header(resp, "Vary", "Accept-Encoding");
    if (etag)
        rw_http_resp_header(resp, "ETag", etag);
    resp->content_type = a->content_type;
    resp->gzip_ok = 0; /* the bytes are compressed already */
    if (etag && etag_matches(rw_http_header(req, "If-None-Match"), etag)) {
        resp->status = 304;
        return;
    }
    if (gz) {
        rw_http_resp_header(resp, "Content-Encoding", "gzip");
        if (rw_buf_append(&resp->body, a->gz, a->ngz) != RW_OK)
            rw_http_resp_text(resp, 503, "out of memory");
    } else if (inflate_into(a, &resp->body) != 0) {
        rw_http_resp_text(resp, 500, "cannot decompress %s", a->path);
    }
}

/* The page paths the shell renders (app.js has the same list). */
static int is_page(const char *rest)
{
    static const char *const pages[] = {"", "fleet", "scenario", "query", "alerts",
                                        "rules", "sources", "cardinality"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strcmp(rest, pages[i]) == 0)
            return 1;
    if (strncmp(rest, "cluster/", 8) == 0 && rest[8] && rest[8] != '/') {
        const char *slash = strchr(rest + 8, '/');
        return !slash || strcmp(slash, "/troubleshoot") == 0;
    }
    return 0;
}

static void h_ui(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    const char *rest = rw_http_path(req) + 4; /* after "/ui/" */
    if (strncmp(rest, "a/", 2) == 0) {
        const char *h = rest + 2, *slash = strchr(h, '/');
        const rw_ui_asset *a = NULL;
        if (slash && (size_t)(slash - h) == strlen(rw_ui_build_hash) &&
            strncmp(h, rw_ui_build_hash, (size_t)(slash - h)) == 0)
            a = find_asset(slash + 1);
        if (!a || strcmp(a->path, "index.html") == 0) {
            not_found(resp, "no such UI file in this build (after an upgrade, reload the page)");
            return;
        }
        serve(req, resp, a, "public, max-age=31536000, immutable");
        return;
    }
    if (is_page(rest)) {
        serve(req, resp, find_asset("index.html"), "no-cache");
        return;
    }
    not_found(resp, "no such page: the UI has /ui/fleet, /ui/scenario, /ui/cluster/NAME, "
                    "/ui/cluster/NAME/troubleshoot, /ui/query, /ui/alerts, /ui/rules, "
                    "/ui/sources and /ui/cardinality");
}

static void h_redirect(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_http_resp_text(resp, 302, "see /ui/");
    rw_http_resp_header(resp, "Location", "/ui/");
}

static void h_favicon(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    serve(req, resp, find_asset("favicon.svg"), "public, max-age=86400");
}

rw_rc rw_ui_routes(rw_ui *ui, rw_routes *r, rw_err *err)
{
    const rw_http_route rows[] = {
        {.path = "/ui/*", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_ui, .ctx = ui},
        {.path = "/ui", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_redirect,
         .ctx = ui},
        {.path = "/", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_redirect, .ctx = ui},
        {.path = "/favicon.ico", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_favicon,
         .ctx = ui},
    };
    rw_rc rc;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if ((rc = rw_routes_add(r, &rows[i], err)) != RW_OK)
            return rc;
    return RW_OK;
}

#else /* built with -DRWGATE_UI=OFF */

static void h_off(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    not_found(resp, "the web UI is not part of this build (rwgate was built with -DRWGATE_UI=OFF)");
}

rw_rc rw_ui_routes(rw_ui *ui, rw_routes *r, rw_err *err)
{
    const rw_http_route rows[] = {
        {.path = "/ui/*", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_off, .ctx = ui},
        {.path = "/ui", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = h_off, .ctx = ui},
    };
    rw_rc rc;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if ((rc = rw_routes_add(r, &rows[i], err)) != RW_OK)
            return rc;
    return RW_OK;
}

#endif
