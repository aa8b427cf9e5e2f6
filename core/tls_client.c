/* tls_client.c - one tls_config block applied to a libcurl handle (see
 * tls_client.h): the config rows with their checks (files readable, cert
 * and key together), and rw_tls_client_setup, which sets the URL (with
 * server_name as its host when one is given, and the matching
 * CURLOPT_CONNECT_TO), the CA, the client certificate, verification and
 * the oldest TLS version. Used by every outgoing HTTPS client. */
#include "tls_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "http.h"

static const char *const tls_versions[] = {"TLS12", "TLS13", NULL};

static rw_rc check_tls(void *obj, rw_err *err)
{
    const rw_tls_client_config *t = obj;
    if (t->cert_file[0] && !t->key_file[0])
        return rw_err_set(err, RW_BADREQ, "client cert file \"%s\" specified without client key file",
                          t->cert_file);
    if (t->key_file[0] && !t->cert_file[0])
        return rw_err_set(err, RW_BADREQ, "client key file \"%s\" specified without client cert file",
                          t->key_file);
    const char *files[] = {t->ca_file, t->cert_file, t->key_file};
    for (size_t i = 0; i < 3; i++)
        if (files[i][0] && access(files[i], R_OK) != 0)
            return rw_err_set(err, RW_BADREQ, "unable to read %s", files[i]);
    return RW_OK;
}

#define R RW_CFG_RELOAD
#define OFF(f) offsetof(rw_tls_client_config, f)
static const rw_cfg_key keys[] = {
    {"ca_file", RW_CFG_PATH, OFF(ca_file), NULL, 0, 0, R,
     "CA certificates the server's certificate must chain to (default: the system's)", NULL,
     NULL},
    {"cert_file", RW_CFG_PATH, OFF(cert_file), NULL, 0, 0, R, "client certificate", NULL, NULL},
    {"key_file", RW_CFG_PATH, OFF(key_file), NULL, 0, 0, R, "client certificate's key", NULL,
     NULL},
    {"server_name", RW_CFG_STRING, OFF(server_name), NULL, 0, 0, R,
     "name sent as SNI and verified in the server's certificate (default: the URL's host)",
     NULL, NULL},
    {"insecure_skip_verify", RW_CFG_BOOL, OFF(insecure_skip_verify), "false", 0, 0, R,
     "do not verify the server's certificate", NULL, NULL},
    {"min_version", RW_CFG_ENUM, OFF(min_version), "TLS12", 0, 0, R,
     "oldest TLS version used: TLS12 or TLS13", NULL, tls_versions},
};

const rw_cfg_table rw_tls_client_config_table =
    RW_CFG_TABLE("tls_config", rw_tls_client_config, keys, check_tls, NULL);

void rw_tls_conn_free(rw_tls_conn *t)
{
    if (!t)
        return;
    free(t->url);
    curl_slist_free_all(t->connect_to);
    t->url = NULL;
    t->connect_to = NULL;
}

/* url with its host replaced by server_name, and "server_name:port:host:port". */
static rw_rc rewrite(const char *url, const char *server_name, rw_tls_conn *out, rw_err *err)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *nu = NULL;
    rw_rc rc = RW_OK;
    if (!u)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = rw_err_set(err, RW_BADREQ, "invalid URL \"%.200s\"", url);
        goto out;
    }
    if (curl_url_set(u, CURLUPART_HOST, server_name, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PORT, port, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &nu, 0) != CURLUE_OK) {
        rc = rw_err_set(err, RW_BADREQ, "tls_config.server_name \"%.100s\" is not a host name",
                        server_name);
        goto out;
    }
    size_t n = strlen(server_name) + strlen(host) + 2 * strlen(port) + 4;
    char *entry = malloc(n);
    if (!entry || !(out->url = strdup(nu))) {
        free(entry);
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto out;
    }
    snprintf(entry, n, "%s:%s:%s:%s", server_name, port, host, port);
    out->connect_to = curl_slist_append(NULL, entry);
    free(entry);
    if (!out->connect_to)
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
out:
    curl_free(host);
    curl_free(port);
    curl_free(nu);
    curl_url_cleanup(u);
    return rc;
}

rw_rc rw_tls_client_setup(void *curl, const rw_tls_client_config *c, const char *url,
                          rw_tls_conn *out, rw_err *err)
{
    CURL *e = curl;
    memset(out, 0, sizeof *out);
    int https = strncasecmp(url, "https://", 8) == 0;
    rw_rc rc;
    if (c && https && c->server_name && c->server_name[0])
        rc = rewrite(url, c->server_name, out, err);
    else
        rc = (out->url = strdup(url)) ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");
    if (rc != RW_OK) {
        rw_tls_conn_free(out);
        return rc;
    }
    curl_easy_setopt(e, CURLOPT_URL, out->url);
    if (out->connect_to)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, out->connect_to);
    long ver = (c && c->min_version == RW_TLS13) ? CURL_SSLVERSION_TLSv1_3
                                                  : CURL_SSLVERSION_TLSv1_2;
    curl_easy_setopt(e, CURLOPT_SSLVERSION, ver);
    /* verification is curl's default; restated so a reused handle cannot
       keep an earlier request's insecure setting */
    int insecure = c && c->insecure_skip_verify;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    if (c && c->ca_file && c->ca_file[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c && c->cert_file && c->cert_file[0]) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    }
    return RW_OK;
}
