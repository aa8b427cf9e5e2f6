/* tls_client.h - TLS for rwgate's outgoing HTTPS connections (the
 * Alertmanager notifier, the Kubernetes API client, peers), through
 * libcurl with OpenSSL: one `tls_config` block as Prometheus writes it,
 * applied to a curl handle in one call, so every client verifies the same
 * way.
 *
 *   tls_config:
 *     ca_file: /etc/rwgate/ca.crt      # the CA the server's certificate chains to
 *     cert_file: /etc/rwgate/client.crt # client certificate (mutual TLS)
 *     key_file: /etc/rwgate/client.key
 *     server_name: am.example          # SNI and the name the certificate must carry
 *     insecure_skip_verify: false
 *     min_version: TLS12               # or TLS13
 *
 * The server's certificate is always verified (chain and name) unless
 * insecure_skip_verify is set. With server_name, the connection still goes
 * to the URL's host and port, but TLS speaks to server_name: curl is asked
 * to connect server_name:port to host:port (CURLOPT_CONNECT_TO) and the URL
 * names server_name. */
#ifndef RW_TLS_CLIENT_H
#define RW_TLS_CLIENT_H

#include "cfg.h"
#include "err.h"

typedef struct rw_tls_client_config {
    char *ca_file, *cert_file, *key_file;
    char *server_name;
    int insecure_skip_verify;
    int min_version; /* RW_TLS12 / RW_TLS13 (core/http.h) */
} rw_tls_client_config;

/* The rows of a tls_config block (reloadable), for a layer's table:
 *   {"tls_config", RW_CFG_SECTION, offsetof(x, tls), NULL, 0, 0, RW_CFG_RELOAD, "...",
 *    &rw_tls_client_config_table, NULL} */
extern const rw_cfg_table rw_tls_client_config_table;

/* What a request needs beyond the handle: the URL actually requested and
 * the connect-to mapping; valid until rw_tls_conn_free. */
typedef struct rw_tls_conn {
    char *url;
    struct curl_slist *connect_to;
} rw_tls_conn;

/* Sets curl's URL and TLS options for a request to url with c (NULL = the
 * defaults: verify against the system CAs). curl is a CURL *. */
rw_rc rw_tls_client_setup(void *curl, const rw_tls_client_config *c, const char *url,
                          rw_tls_conn *out, rw_err *err);
void rw_tls_conn_free(rw_tls_conn *t);

#endif
