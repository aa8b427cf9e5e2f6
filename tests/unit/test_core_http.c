/* test_core_http.c - the HTTP wrapper over real sockets: routing, 404/405,
 * the body cap (declared and streamed), query and form parameters including
 * repeated ones, response headers, gzip. */
#include <zlib.h>
#include "core/http.h"
#include "http_client.h"
#include "test.h"

static void echo(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    const char **vals;
    size_t n = rw_http_params(req, "match[]", &vals);
    const char *q = rw_http_param(req, "q");
    size_t blen;
    rw_http_body(req, &blen);
    resp->content_type = "text/plain";
    rw_buf_printf(&resp->body, "path=%s q=%s n=%zu body=%zu", rw_http_path(req), q ? q : "-", n,
                  blen);
    for (size_t i = 0; i < n; i++)
        rw_buf_printf(&resp->body, " m=%s", vals[i]);
    rw_http_resp_header(resp, "X-Test", "yes");
}

static void big(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    for (int i = 0; i < 2000; i++)
        rw_buf_puts(&resp->body, "line of repetitive text\n");
    resp->gzip_ok = 1;
    resp->status = 201;
}

static void test_server(void)
{
    rw_http_route rows[] = {
        {.path = "/echo", .methods = RW_HTTP_GET | RW_HTTP_POST, .max_body = 100, .fn = echo},
        {.path = "/prefix/*", .methods = RW_HTTP_GET, .fn = echo},
        {.path = "/big", .methods = RW_HTTP_GET, .fn = big},
    };
    rw_err e;
    rw_err_init(&e);
    rw_routes *routes = rw_routes_new();
    for (size_t i = 0; i < 3; i++)
        CHECK(rw_routes_add(routes, &rows[i], &e) == RW_OK);
    /* a path is routed once: a second module claiming it is a wiring error */
    CHECK(rw_routes_add(routes, &rows[0], &e) == RW_BADREQ && strstr(e.msg, "/echo"));
    CHECK_INT(rw_routes_count(routes), 3);
    rw_http_opts ho = {.listen = "127.0.0.1:0"};
    rw_http_server *s = rw_http_start(&ho, routes, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (!s)
        return;
    int port = rw_http_port(s);
    CHECK(port > 0);
    test_http_resp r;

    CHECK(test_http(port, "GET", "/echo?q=a%20b&match[]=x&match[]=%7Bj%3D%22k%22%7D", NULL, NULL,
                    0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "path=/echo q=a b n=2 body=0 m=x m={j=\"k\"}");
    char h[64];
    CHECK(test_http_header(&r, "X-Test", h, sizeof h) && strcmp(h, "yes") == 0);
    test_http_free(&r);

    const char *form = "q=1%2B1&match[]=up&match[]=down+x";
    CHECK(test_http(port, "POST", "/echo?match[]=first&q=from_url",
                    "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form),
                    &r) == 0);
    /* the body's q wins over the URL's, as with Go's FormValue */
    CHECK_STR(r.body, "path=/echo q=1+1 n=3 body=33 m=first m=up m=down x");
    test_http_free(&r);

    CHECK(test_http(port, "GET", "/nope", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 404);
    test_http_free(&r);
    CHECK(test_http(port, "DELETE", "/echo", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 405);
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/prefix/abc/values", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "path=/prefix/abc/values") != NULL);
    test_http_free(&r);

    char body[200];
    memset(body, 'x', sizeof body);
    CHECK(test_http(port, "POST", "/echo", NULL, body, sizeof body, &r) == 0);
    CHECK_INT(r.status, 413);
    test_http_free(&r);
    CHECK(test_http(port, "POST", "/echo", NULL, body, 100, &r) == 0);
    CHECK_INT(r.status, 200);
    test_http_free(&r);

    CHECK(test_http(port, "GET", "/big", "Accept-Encoding: gzip\r\n", NULL, 0, &r) == 0);
    CHECK_INT(r.status, 201);
    CHECK(test_http_header(&r, "Content-Encoding", h, sizeof h) && strcmp(h, "gzip") == 0);
    char out[60000];
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 16);
    z.next_in = (Bytef *)r.body;
    z.avail_in = (uInt)r.body_len;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof out;
    CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
    CHECK_INT(z.total_out, 2000 * 24);
    inflateEnd(&z);
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/big", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.body_len, 2000 * 24);
    test_http_free(&r);

    rw_http_stop(s);
    rw_http_opts bo = {.listen = "nohostport"};
    rw_http_server *bad = rw_http_start(&bo, routes, &e);
    CHECK(bad == NULL && strstr(e.msg, "HOST:PORT"));
    rw_routes_free(routes);
}

int main(void)
{
    RUN(test_server);
    TEST_DONE();
}
