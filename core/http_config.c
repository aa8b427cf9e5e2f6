/* http_config.c - the `http:` section of the configuration: the rows that
 * describe rw_http_config (http.h), with the HTTP server's defaults: the
 * listening address, connection limits, read deadlines and the body byte
 * budget of routes without one of their own, TLS. Only the TLS files
 * reload (rw_http_reload_tls); the rest shapes the listening socket and its
 * threads. */
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "cfg.h"
#include "http.h"

static const char *const tls_versions[] = {"TLS12", "TLS13", NULL};

static rw_rc check_tls(void *obj, rw_err *err)
{
    const rw_http_tls *t = obj;
    if (!t->cert_file[0] != !t->key_file[0])
        return rw_err_set(err, RW_BADREQ, "cert_file and key_file go together");
    const char *files[] = {t->cert_file, t->key_file};
    for (size_t i = 0; i < 2; i++)
        if (files[i][0] && access(files[i], R_OK) != 0)
            return rw_err_set(err, RW_BADREQ, "cannot read %s", files[i]);
    return RW_OK;
}

#define TOFF(f) offsetof(rw_http_tls, f)
static const rw_cfg_key tls_keys[] = {
    {"cert_file", RW_CFG_PATH, TOFF(cert_file), NULL, 0, 0, 0,
     "PEM certificate (chain) of the server; its content is re-read at every reload (a "
     "renewed certificate needs no restart, another path does); empty = plain HTTP",
     NULL, NULL},
    {"key_file", RW_CFG_PATH, TOFF(key_file), NULL, 0, 0, 0,
     "PEM private key of cert_file; re-read at every reload", NULL, NULL},
    {"min_version", RW_CFG_ENUM, TOFF(min_version), "TLS12", 0, 0, 0,
     "oldest TLS version accepted: TLS12 or TLS13", NULL, tls_versions},
};
static const rw_cfg_table tls_table = RW_CFG_TABLE("tls", rw_http_tls, tls_keys, check_tls, NULL);

#define OFF(f) offsetof(rw_http_config, f)

static const rw_cfg_key keys[] = {
    {"listen", RW_CFG_STRING, OFF(listen), "127.0.0.1:9201", 0, 0, 0,
     "HOST:PORT to serve HTTP on; 0.0.0.0:9201 serves other hosts (--listen)", NULL, NULL},
    {"max_connections", RW_CFG_INT, OFF(max_connections), "1024", 1, 1 << 20, 0,
     "concurrent HTTP connections", NULL, NULL},
    {"max_connections_per_client", RW_CFG_INT, OFF(max_connections_per_client), "0", 0,
     1 << 20, 0,
     "concurrent connections from one client address (0 = no limit). Set it when clients "
     "connect directly (a Prometheus remote-write queue uses up to max_shards connections); "
     "behind a load balancer or NAT every client shares a few addresses",
     NULL, NULL},
    {"idle_timeout", RW_CFG_DURATION, OFF(idle_timeout_ms), "2m", 1000, 86400000, 0,
     "an idle keep-alive connection is closed after this", NULL, NULL},
    {"read_header_timeout", RW_CFG_DURATION, OFF(read_header_timeout_ms), "30s", 100,
     86400000, 0,
     "request headers must be complete within this (after an idle keep-alive wait: "
     "idle_timeout plus this); slower connections are closed",
     NULL, NULL},
    {"read_timeout", RW_CFG_DURATION, OFF(read_timeout_ms), "2m", 100, 86400000, 0,
     "a request body must be complete within this; slower uploads are closed", NULL, NULL},
    {"max_inflight_body_bytes", RW_CFG_BYTES, OFF(max_inflight_body_bytes), "256MiB",
     64 * 1024, 9.2e18, 0,
     "request bodies being received at once on read routes (queries, remote-read); past "
     "it 503 (writes count against ingest.max_inflight_bytes instead)",
     NULL, NULL},
    {"tls", RW_CFG_SECTION, OFF(tls), NULL, 0, 0, 0, "TLS for the server", &tls_table, NULL},
};

const rw_cfg_table rw_http_config_table = RW_CFG_TABLE("http", rw_http_config, keys, NULL, NULL);
