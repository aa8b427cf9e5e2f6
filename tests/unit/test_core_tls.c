/* test_core_tls.c - TLS both ways over real sockets: rwgate's HTTP server
 * with a certificate from a test CA (made with the openssl command), and
 * libcurl configured by rw_tls_client_setup against it - verification
 * against the CA, failure against the system CAs, server_name overriding
 * the name checked while connecting to the URL's address, a wrong
 * server_name refused, insecure_skip_verify, a client limited to TLS 1.2
 * refused by a server that requires TLS 1.3, a certificate/key pair
 * reloaded in place (new connections see the new certificate), a
 * mismatched pair refused; and the tls_config rows' checks. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/cfg.h"
#include "core/http.h"
#include "core/tls_client.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

static char *dir;

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int sh(const char *fmt, const char *a)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, a, a, a, a, a, a, a);
    return system(cmd);
}

static void ok(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    resp->content_type = "text/plain";
    rw_buf_puts(&resp->body, "hello");
}

/* 0 when curl fetched /hello with status 200; else curl's error code. */
static long fetch(int port, const rw_tls_client_config *c, long max_version, char *subject,
                  size_t cap)
{
    CURL *e = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hello", port);
    rw_tls_conn tc;
    rw_err err;
    rw_err_init(&err);
    if (rw_tls_client_setup(e, c, url, &tc, &err) != RW_OK) {
        curl_easy_cleanup(e);
        return -1;
    }
    if (max_version)
        curl_easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2 | max_version);
    curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (subject) {
        subject[0] = '\0';
        struct curl_certinfo *ci = NULL;
        if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci && ci->num_of_certs)
            for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
                if (!strncmp(l->data, "Subject:", 8))
                    snprintf(subject, cap, "%s", l->data);
    }
    fclose(sink);
    curl_easy_cleanup(e);
    rw_tls_conn_free(&tc);
    if (rc != CURLE_OK)
        return (long)rc;
    return status == 200 ? 0 : 1000 + status;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir = test_mkdtemp("rwtls");
    if (!dir)
        return 1;
    /* a CA, and two server certificates for 127.0.0.1 and rwgate.test */
    CHECK(sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt "
             "-days 2 -subj '/CN=test CA' >/dev/null 2>&1 && "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:rwgate.test\\n' > ext.cnf && "
             "for n in one two; do openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr "
             "-subj /CN=$n >/dev/null 2>&1 && openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -out $n.crt -days 2 -extfile ext.cnf >/dev/null 2>&1; done",
             dir) == 0);
    char ca[512], c1[512], k1[512], c2[512], k2[512];
    path(ca, sizeof ca, "ca.crt");
    path(c1, sizeof c1, "one.crt");
    path(k1, sizeof k1, "one.key");
    path(c2, sizeof c2, "two.crt");
    path(k2, sizeof k2, "two.key");

    rw_http_route row = {.path = "/hello", .methods = RW_HTTP_GET, .fn = ok};
    rw_routes *routes = rw_routes_new();
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_routes_add(routes, &row, &e) == RW_OK);
    rw_http_config hc;
    rw_cfg_defaults(&rw_http_config_table, &hc);
    free(hc.tls.cert_file);
    free(hc.tls.key_file);
    hc.tls.cert_file = strdup(c1);
    hc.tls.key_file = strdup(k1);
    rw_http_opts ho = {.cfg = &hc, .listen = "127.0.0.1:0"};
    rw_http_server *s = rw_http_start(&ho, routes, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (!s)
        TEST_DONE();
    int port = rw_http_port(s);
    CHECK(rw_http_tls_enabled(s));

    char subj[256];
    rw_tls_client_config cc;
    rw_cfg_defaults(&rw_tls_client_config_table, &cc);
    /* the system CAs do not know the test CA */
    CHECK(fetch(port, &cc, 0, NULL, 0) == CURLE_PEER_FAILED_VERIFICATION);
    free(cc.ca_file);
    cc.ca_file = strdup(ca);
    CHECK(fetch(port, &cc, 0, subj, sizeof subj) == 0);
    CHECK_MSG(strstr(subj, "CN = one") || strstr(subj, "CN=one"), "%s", subj);
    /* server_name: connect to 127.0.0.1, verify rwgate.test */
    free(cc.server_name);
    cc.server_name = strdup("rwgate.test");
    CHECK(fetch(port, &cc, 0, NULL, 0) == 0);
    free(cc.server_name);
    cc.server_name = strdup("other.test");
    CHECK(fetch(port, &cc, 0, NULL, 0) == CURLE_PEER_FAILED_VERIFICATION);
    free(cc.server_name);
    cc.server_name = strdup("");
    /* insecure_skip_verify without the CA */
    rw_tls_client_config in;
    rw_cfg_defaults(&rw_tls_client_config_table, &in);
    in.insecure_skip_verify = 1;
    CHECK(fetch(port, &in, 0, NULL, 0) == 0);
    rw_cfg_free(&rw_tls_client_config_table, &in);

    /* reload: a new pair is served to new connections */
    free(hc.tls.cert_file);
    free(hc.tls.key_file);
    hc.tls.cert_file = strdup(c2);
    hc.tls.key_file = strdup(k2);
    CHECK_MSG(rw_http_reload_tls(s, &hc, &e) == RW_OK, "%s", e.msg);
    CHECK(fetch(port, &cc, 0, subj, sizeof subj) == 0);
    CHECK_MSG(strstr(subj, "CN = two") || strstr(subj, "CN=two"), "%s", subj);
    /* a mismatched pair is refused, the served one stays */
    free(hc.tls.key_file);
    hc.tls.key_file = strdup(k1);
    CHECK(rw_http_reload_tls(s, &hc, &e) == RW_BADREQ);
    CHECK(fetch(port, &cc, 0, subj, sizeof subj) == 0 && strstr(subj, "two"));
    rw_http_stop(s);

    /* a server requiring TLS 1.3 refuses a client limited to 1.2 */
    free(hc.tls.key_file);
    hc.tls.key_file = strdup(k2);
    hc.tls.min_version = RW_TLS13;
    s = rw_http_start(&ho, routes, &e);
    CHECK_MSG(s != NULL, "%s", e.msg);
    if (s) {
        port = rw_http_port(s);
        CHECK(fetch(port, &cc, CURL_SSLVERSION_MAX_TLSv1_2, NULL, 0) != 0);
        CHECK(fetch(port, &cc, 0, NULL, 0) == 0);
        rw_http_stop(s);
    }

    /* rows: cert without key, unreadable CA */
    rw_tls_client_config t;
    rw_cfg_defaults(&rw_tls_client_config_table, &t);
    char yaml[1200];
    snprintf(yaml, sizeof yaml, "cert_file: %s\n", c1);
    CHECK(rw_cfg_load_string(&rw_tls_client_config_table, &t, yaml, strlen(yaml), "t", &e) !=
              RW_OK &&
          strstr(e.msg, "without client key"));
    rw_cfg_free(&rw_tls_client_config_table, &t);
    rw_cfg_defaults(&rw_tls_client_config_table, &t);
    const char *bad = "ca_file: /nonexistent/ca.crt\n";
    CHECK(rw_cfg_load_string(&rw_tls_client_config_table, &t, bad, strlen(bad), "t", &e) != RW_OK &&
          strstr(e.msg, "unable to read"));
    rw_cfg_free(&rw_tls_client_config_table, &t);

    rw_cfg_free(&rw_tls_client_config_table, &cc);
    rw_cfg_free(&rw_http_config_table, &hc);
    rw_routes_free(routes);
    test_rmtree(dir);
    curl_global_cleanup();
    TEST_DONE();
}
