/* test_core_auth.c - credentials and permissions (core/auth.h) over real
 * sockets: PBKDF2 encodings round-trip and reject a wrong password or a
 * malformed encoding; the auth: rows refuse bad token hashes, unknown
 * permissions, a credential with both or neither kind, duplicate tokens
 * and users; through the HTTP server: no credential -> 401 with both
 * challenges, a wrong one -> 401, a known one without the permission ->
 * 403, open paths need none, a valid bearer token and a valid basic-auth
 * user reach the handler with their principal (tenant, read scope), and a
 * reload takes a credential away. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/auth.h"
#include "core/cfg.h"
#include "core/http.h"
#include "http_client.h"
#include "test.h"

static void who(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    const rw_principal *p = rw_http_principal(req);
    resp->content_type = "text/plain";
    if (!p) {
        rw_buf_puts(&resp->body, "anonymous");
        return;
    }
    rw_buf_printf(&resp->body, "%s all=%d reads=", p->tenant, p->read_all);
    for (size_t i = 0; i < p->nread_tenants; i++)
        rw_buf_printf(&resp->body, "%s%s", i ? "," : "", p->read_tenants[i]);
}

static const char *sha_hex(const char *s, char out[65])
{
    unsigned char h[32];
    unsigned n = 32;
    EVP_Digest(s, strlen(s), h, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
    return out;
}

static rw_rc load(rw_auth_config *c, const char *yaml, rw_err *e)
{
    rw_cfg_defaults(&rw_auth_config_table, c);
    return rw_cfg_load_string(&rw_auth_config_table, c, yaml, strlen(yaml), "auth", e);
}

int main(void)
{
    rw_err e;
    rw_err_init(&e);
    /* ---- passwords */
    char enc[256];
    CHECK(rw_auth_hash_password("s3cret", 1000, enc, sizeof enc, &e) == RW_OK);
    CHECK(strncmp(enc, "pbkdf2-sha256$1000$", 19) == 0);
    CHECK(rw_auth_check_password(enc, "s3cret") == 1);
    CHECK(rw_auth_check_password(enc, "s3cret!") == 0);
    CHECK(rw_auth_check_password("plain", "x") == -1);
    CHECK(rw_auth_check_password("pbkdf2-sha256$10$00$00", "x") == -1); /* too few iterations */
    char enc2[256];
    CHECK(rw_auth_hash_password("s3cret", 1000, enc2, sizeof enc2, &e) == RW_OK);
    CHECK(strcmp(enc, enc2) != 0); /* a random salt each time */
    CHECK(rw_auth_hash_password("x", 10, enc2, sizeof enc2, &e) == RW_BADREQ);

    /* ---- rows */
    char h1[65], h2[65], h3[65], y[2048];
    sha_hex("tok-a", h1);
    sha_hex("tok-ops", h2);
    sha_hex("tok-r", h3);
    rw_auth_config c;
    const struct {
        const char *yaml, *why;
    } bad[] = {
        {"tenants:\n- name: a\n  bearer_token_sha256: abc\n  permissions: [read]\n", "64 hex"},
        {"tenants:\n- name: a\n  bearer_token_sha256: %s\n  permissions: [root]\n", "unknown permission"},
        {"tenants:\n- name: a\n  bearer_token_sha256: %s\n", "permissions must"},
        {"tenants:\n- name: a\n  permissions: [read]\n", "exactly one"},
        {"tenants:\n- name: a\n  bearer_token_sha256: %s\n  basic_auth: {username: u, password_pbkdf2: x}\n"
         "  permissions: [read]\n", "exactly one"},
        {"tenants:\n- name: a\n  basic_auth: {username: u, password_pbkdf2: x}\n  permissions: [read]\n",
         "hash-password"},
        {"tenants:\n- name: a\n  bearer_token_sha256: %s\n  permissions: [read]\n- name: b\n"
         "  bearer_token_sha256: %s\n  permissions: [read]\n", "same bearer token"},
        {"open_paths: [metrics]\n", "does not start with /"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(y, sizeof y, bad[i].yaml, h1, h1);
        rw_err_init(&e);
        CHECK_MSG(load(&c, y, &e) != RW_OK && strstr(e.msg, bad[i].why), "case %zu: %s", i, e.msg);
        rw_cfg_free(&rw_auth_config_table, &c);
    }

    /* ---- through the HTTP server */
    snprintf(y, sizeof y,
             "open_paths: [/open]\n"
             "tenants:\n"
             "- name: team-a\n  bearer_token_sha256: %s\n  permissions: [write, read]\n"
             "- name: ops\n  bearer_token_sha256: %s\n  permissions: [admin]\n"
             "- name: team-a\n  bearer_token_sha256: %s\n  permissions: [read]\n"
             "  read_tenants: [team-b, team-c]\n"
             "- name: dash\n  basic_auth: {username: grafana, password_pbkdf2: '%s'}\n"
             "  permissions: [read]\n  read_tenants: ['*']\n",
             h1, h2, h3, enc);
    rw_err_init(&e);
    CHECK_MSG(load(&c, y, &e) == RW_OK, "%s", e.msg);
    rw_auth *auth = rw_auth_new(&c, "tenant_id", NULL, &e);
    CHECK_MSG(auth != NULL, "%s", e.msg);
    if (!auth)
        TEST_DONE();
    CHECK(rw_auth_enabled(auth));
    rw_http_route rows[] = {
        {.path = "/read", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = who},
        {.path = "/admin", .methods = RW_HTTP_GET, .perm = RW_PERM_ADMIN, .fn = who},
        {.path = "/open", .methods = RW_HTTP_GET, .perm = RW_PERM_READ, .fn = who},
    };
    rw_routes *routes = rw_routes_new();
    for (size_t i = 0; i < 3; i++)
        CHECK(rw_routes_add(routes, &rows[i], &e) == RW_OK);
    rw_http_opts ho = {.listen = "127.0.0.1:0", .auth = rw_auth_http, .auth_ctx = auth};
    rw_http_server *s = rw_http_start(&ho, routes, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (!s)
        TEST_DONE();
    int port = rw_http_port(s);
    test_http_resp r;
    char hv[128];
    CHECK(test_http(port, "GET", "/read", NULL, NULL, 0, &r) == 0 && r.status == 401);
    CHECK(test_http_header(&r, "WWW-Authenticate", hv, sizeof hv) && strstr(hv, "realm=\"rwgate\""));
    CHECK(strstr(r.raw, "Basic realm") && strstr(r.raw, "Bearer realm"));
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/read", "Authorization: Bearer nope\r\n", NULL, 0, &r) == 0 &&
          r.status == 401);
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/open", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
          !strcmp(r.body, "anonymous"));
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/read", "Authorization: Bearer tok-a\r\n", NULL, 0, &r) == 0 &&
          r.status == 200);
    CHECK_STR(r.body, "team-a all=0 reads=team-a");
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/read", "Authorization: Bearer tok-r\r\n", NULL, 0, &r) == 0 &&
          r.status == 200);
    CHECK_STR(r.body, "team-a all=0 reads=team-a,team-b,team-c");
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/admin", "Authorization: Bearer tok-a\r\n", NULL, 0, &r) == 0 &&
          r.status == 403 && strstr(r.body, "admin"));
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/admin", "Authorization: Bearer tok-ops\r\n", NULL, 0, &r) == 0 &&
          r.status == 200);
    test_http_free(&r);
    CHECK(test_http(port, "GET", "/read", "Authorization: Bearer tok-ops\r\n", NULL, 0, &r) == 0 &&
          r.status == 403);
    test_http_free(&r);
    /* grafana:s3cret, twice (the second from the verified-pair cache) */
    for (int i = 0; i < 2; i++) {
        CHECK(test_http(port, "GET", "/read", "Authorization: Basic Z3JhZmFuYTpzM2NyZXQ=\r\n", NULL,
                        0, &r) == 0 &&
              r.status == 200);
        CHECK_STR(r.body, "dash all=1 reads=dash");
        test_http_free(&r);
    }
    /* grafana:wrong */
    CHECK(test_http(port, "GET", "/read", "Authorization: Basic Z3JhZmFuYTp3cm9uZw==\r\n", NULL, 0,
                    &r) == 0 &&
          r.status == 401);
    test_http_free(&r);
    /* reload without team-a's first token */
    rw_auth_config c2;
    snprintf(y, sizeof y,
             "tenants:\n- name: ops\n  bearer_token_sha256: %s\n  permissions: [admin]\n", h2);
    CHECK(load(&c2, y, &e) == RW_OK);
    CHECK(rw_auth_reconfigure(auth, &c2, "tenant_id", &e) == RW_OK);
    CHECK(test_http(port, "GET", "/read", "Authorization: Bearer tok-a\r\n", NULL, 0, &r) == 0 &&
          r.status == 401);
    test_http_free(&r);
    /* an empty section turns authentication off */
    rw_auth_config off;
    CHECK(load(&off, "", &e) == RW_OK);
    CHECK(rw_auth_reconfigure(auth, &off, "tenant_id", &e) == RW_OK && !rw_auth_enabled(auth));
    CHECK(test_http(port, "GET", "/admin", NULL, NULL, 0, &r) == 0 && r.status == 200);
    test_http_free(&r);
    /* credentials without a tenant label are refused */
    CHECK(rw_auth_reconfigure(auth, &c2, "", &e) == RW_BADREQ && strstr(e.msg, "tenant_label"));
    rw_http_stop(s);
    rw_routes_free(routes);
    rw_auth_free(auth);
    rw_cfg_free(&rw_auth_config_table, &c);
    rw_cfg_free(&rw_auth_config_table, &c2);
    rw_cfg_free(&rw_auth_config_table, &off);
    TEST_DONE();
}
