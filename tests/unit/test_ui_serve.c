/* test_ui_serve.c - the ui module over real sockets: every embedded file
 * under its hashed URL, gzip-compressed when the client accepts gzip
 * (Accept-Encoding with q-values, x-gzip, "*") and identical once inflated
 * to the identity answer, ETag and If-None-Match (lists, weak tags, "*"),
 * caching and security headers, the page paths that get the HTML shell and
 * the ones that do not, the budget; or, built with -DRWGATE_UI=OFF, the 404
 * saying so. */
#include <zlib.h>
#include "core/http.h"
#include "http_client.h"
#include "test.h"
#include "ui/ui.h"

#if RWGATE_UI_TEST_ASSETS
#include "ui/assets.h"
#endif

static int port;

static void get(const char *path, const char *headers, test_http_resp *r)
{
    CHECK(test_http(port, "GET", path, headers, NULL, 0, r) == 0);
}

static void header_is(const test_http_resp *r, const char *name, const char *want)
{
    char v[512];
    int has = test_http_header(r, name, v, sizeof v);
    CHECK_MSG(want ? has && strcmp(v, want) == 0 : !has, "%s: got %s, want %s", name,
              has ? v : "(none)", want ? want : "(none)");
}

static void test_off(void)
{
    test_http_resp r;
    get("/ui/fleet", NULL, &r);
    CHECK_INT(r.status, 404);
    CHECK_MSG(strstr(r.body, "-DRWGATE_UI=OFF") != NULL, "%s", r.body);
    test_http_free(&r);
}

#if RWGATE_UI_TEST_ASSETS
static size_t inflate_gz(const char *in, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return (size_t)-1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    size_t len = z.total_out;
    inflateEnd(&z);
    return rc == Z_STREAM_END ? len : (size_t)-1;
}

static void test_assets(void)
{
    size_t total = 0;
    char path[512], hdr[256], etag[64];
    for (size_t i = 0; i < rw_ui_nassets; i++) {
        const rw_ui_asset *a = &rw_ui_assets[i];
        total += a->ngz;
        snprintf(path, sizeof path, "/ui/a/%s/%s", rw_ui_build_hash, a->path);
        test_http_resp gz, id;
        get(path, "Accept-Encoding: gzip, deflate, br\r\n", &gz);
        if (strcmp(a->path, "index.html") == 0) {
            CHECK_INT(gz.status, 404); /* the shell only under page paths */
            test_http_free(&gz);
            continue;
        }
        CHECK_MSG(gz.status == 200, "%s: %d", path, gz.status);
        header_is(&gz, "Content-Encoding", "gzip");
        header_is(&gz, "Content-Type", a->content_type);
        header_is(&gz, "Cache-Control", "public, max-age=31536000, immutable");
        header_is(&gz, "X-Content-Type-Options", "nosniff");
        snprintf(etag, sizeof etag, "\"%s-gz\"", a->hash);
        header_is(&gz, "ETag", etag);
        CHECK_INT(gz.body_len, a->ngz);
        CHECK(memcmp(gz.body, a->gz, a->ngz) == 0);
        get(path, NULL, &id);
        CHECK_INT(id.status, 200);
        header_is(&id, "Content-Encoding", NULL);
        snprintf(etag, sizeof etag, "\"%s\"", a->hash);
        header_is(&id, "ETag", etag);
        CHECK_INT(id.body_len, a->nraw);
        char *plain = malloc(a->nraw + 1);
        CHECK(inflate_gz(gz.body, gz.body_len, plain, a->nraw + 1) == a->nraw);
        CHECK(memcmp(plain, id.body, a->nraw) == 0);
        free(plain);
        test_http_free(&id);
        /* revalidation: the tag of the representation asked for */
        snprintf(hdr, sizeof hdr, "Accept-Encoding: gzip\r\nIf-None-Match: \"x\", W/\"%s-gz\"\r\n",
                 a->hash);
        get(path, hdr, &id);
        CHECK_INT(id.status, 304);
        CHECK_INT(id.body_len, 0);
        test_http_free(&id);
        snprintf(hdr, sizeof hdr, "If-None-Match: \"%s-gz\"\r\n", a->hash);
        get(path, hdr, &id); /* identity asked: the gzip tag does not match */
        CHECK_INT(id.status, 200);
        test_http_free(&id);
        test_http_free(&gz);
    }
    CHECK_MSG(total <= 150 * 1024, "%zu bytes gzipped", total);
    CHECK(rw_ui_nassets >= 10);
}

static void test_encodings(void)
{
    static const struct {
        const char *ae;
        int gz;
    } cases[] = {
        {"gzip", 1}, {"GZIP", 1}, {"x-gzip", 1}, {"*", 1}, {"br;q=1, gzip;q=0.5", 1},
        {"gzip;q=0", 0}, {"gzip; q=0.0", 0}, {"identity", 0}, {"deflate, br", 0}, {"", 0},
    };
    char path[256], hdr[128], ce[32];
    snprintf(path, sizeof path, "/ui/a/%s/css/app.css", rw_ui_build_hash);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_http_resp r;
        snprintf(hdr, sizeof hdr, "Accept-Encoding: %s\r\n", cases[i].ae);
        get(path, hdr, &r);
        CHECK_INT(r.status, 200);
        int is_gz = test_http_header(&r, "Content-Encoding", ce, sizeof ce) && !strcmp(ce, "gzip");
        CHECK_MSG(is_gz == cases[i].gz, "Accept-Encoding: %s -> gzip %d", cases[i].ae, is_gz);
        test_http_free(&r);
    }
    test_http_resp r;
    get(path, "If-None-Match: *\r\n", &r);
    CHECK_INT(r.status, 304);
    test_http_free(&r);
}
#endif

static void test_pages(void)
{
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/ui/", 200}, {"/ui/fleet", 200}, {"/ui/scenario", 200}, {"/ui/query", 200},
        {"/ui/alerts", 200}, {"/ui/rules", 200}, {"/ui/sources", 200}, {"/ui/cardinality", 200},
        {"/ui/cluster/etcd-a", 200}, {"/ui/cluster/etcd-a/troubleshoot", 200},
        {"/ui/cluster/", 404}, {"/ui/cluster//x", 404}, {"/ui/cluster/etcd-a/other", 404},
        {"/ui/fleet/x", 404}, {"/ui/nosuch", 404}, {"/ui/a/0123456789abcdef/js/app.js", 404},
        {"/ui/a/", 404}, {"/ui/a/x", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_http_resp r;
        get(cases[i].path, NULL, &r);
        CHECK_MSG(r.status == cases[i].status, "%s: %d, want %d", cases[i].path, r.status,
                  cases[i].status);
        char csp[256];
        CHECK_MSG(test_http_header(&r, "Content-Security-Policy", csp, sizeof csp) &&
                      strncmp(csp, "default-src 'self'", 18) == 0,
                  "%s: no CSP", cases[i].path);
        if (r.status == 200) {
            header_is(&r, "Content-Type", "text/html; charset=utf-8");
            header_is(&r, "Cache-Control", "no-cache");
            CHECK(strstr(r.body, "<script type=\"module\" src=\"/ui/a/") != NULL);
            CHECK(strstr(r.body, "@ASSETS@") == NULL);
        }
        test_http_free(&r);
    }
    test_http_resp r;
    get("/ui", NULL, &r);
    CHECK_INT(r.status, 302);
    header_is(&r, "Location", "/ui/");
    test_http_free(&r);
    get("/favicon.ico", NULL, &r);
    CHECK_INT(r.status, 200);
    header_is(&r, "Content-Type", "image/svg+xml");
    test_http_free(&r);
    CHECK(test_http(port, "HEAD", "/ui/fleet", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body_len, 0);
    test_http_free(&r);
}

int main(void)
{
    rw_err e;
    rw_err_init(&e);
    rw_ui *ui = rw_ui_new(&e);
    rw_routes *routes = rw_routes_new();
    CHECK(ui && routes);
    CHECK(rw_ui_routes(ui, routes, &e) == RW_OK);
    rw_http_opts o = {.listen = "127.0.0.1:0"};
    rw_http_server *s = rw_http_start(&o, routes, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    port = rw_http_port(s);
    if (!rw_ui_built()) {
        RUN(test_off);
    } else {
#if RWGATE_UI_TEST_ASSETS
        RUN(test_assets);
        RUN(test_encodings);
#endif
        RUN(test_pages);
    }
    rw_http_stop(s);
    rw_routes_free(routes);
    rw_ui_free(ui);
    TEST_DONE();
}
