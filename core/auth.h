/* auth.h - who may call rwgate: per-tenant bearer tokens and basic-auth
 * users from the `auth:` section of the configuration, checked once per
 * request by the HTTP dispatcher (rw_http_opts.auth = rw_auth_http).
 *
 *   auth:
 *     open_paths: [/-/healthy, /-/ready]   # no credential needed (default)
 *     tenants:
 *       - name: team-a                      # the tenant its writes belong to
 *         bearer_token_sha256: "<hex of sha256(token)>"
 *         permissions: [write, read]
 *       - name: dashboards
 *         basic_auth: {username: grafana, password_pbkdf2: "<rwgate hash-password>"}
 *         permissions: [read]
 *         read_tenants: ["*"]               # may read every tenant
 *
 * Secrets are stored as hashes only: a token as the hex SHA-256 of its bytes
 * (`printf %s "$TOKEN" | sha256sum`), a password as PBKDF2-HMAC-SHA256 in the
 * form "pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX" (`rwgate hash-password`).
 * Comparisons are constant-time (CRYPTO_memcmp); a verified password is
 * remembered (as a SHA-256 of user and password) so that a dashboard's
 * every request does not pay the slow hash again.
 *
 * A request without a credential gets 401 with WWW-Authenticate; a known
 * credential without the route's permission gets 403. A credential maps to
 * its tenant (rw_principal): its writes are labelled with that tenant
 * whatever tenant header the client sends (another tenant's header is 403),
 * and its reads are scoped to its tenant plus read_tenants. Without
 * credentials configured rwgate is open, as before, and says so at start
 * and in rwgate_auth_enabled. The section reloads (SIGHUP, /-/reload). */
#ifndef RW_AUTH_H
#define RW_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "cfg.h"
#include "err.h"
#include "http.h"

struct rw_metrics;

typedef struct rw_auth_basic {
    char *username;
    char *password_pbkdf2; /* "pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX" */
} rw_auth_basic;

typedef struct rw_auth_tenant {
    char *name;                 /* tenant: the label value its writes carry */
    char *bearer_token_sha256;  /* 64 hex digits */
    rw_auth_basic basic_auth;
    rw_cfg_strings permissions; /* read, write, admin */
    rw_cfg_strings read_tenants; /* more tenants it may read; "*" = all */
    /* built by the check function */
    unsigned perms;             /* 1u << rw_perm */
    int has_token, read_all;
    uint8_t token[32];
    uint32_t iterations;
    uint8_t salt[64], hash[32];
    size_t salt_len;
} rw_auth_tenant;

typedef struct rw_auth_config {
    rw_cfg_strings open_paths;  /* paths served without a credential */
    rw_cfg_list tenants;        /* of rw_auth_tenant; empty = authentication off */
    char *realm;                /* in WWW-Authenticate */
} rw_auth_config;

extern const rw_cfg_table rw_auth_config_table;

typedef struct rw_auth rw_auth;

/* tenant_label: the label stored series carry their tenant in (ingest's);
 * reads are scoped with it. */
rw_auth *rw_auth_new(const rw_auth_config *cfg, const char *tenant_label,
                     struct rw_metrics *metrics, rw_err *err);
void rw_auth_free(rw_auth *a);
/* New credentials; requests in flight keep the ones they started with. */
rw_rc rw_auth_reconfigure(rw_auth *a, const rw_auth_config *cfg, const char *tenant_label,
                          rw_err *err);
int rw_auth_enabled(rw_auth *a);

/* The dispatcher's auth function (rw_http_auth_fn, ctx = rw_auth *). */
int rw_auth_http(void *ctx, rw_http_req *req, rw_perm perm, rw_http_resp *resp);

/* The encoded PBKDF2-HMAC-SHA256 hash of a password with a random salt and
 * `iterations` (0 = the default, 600,000). */
rw_rc rw_auth_hash_password(const char *password, uint32_t iterations, char *out, size_t cap,
                            rw_err *err);
/* Whether password matches an encoded hash (constant-time compare); -1 when
 * the encoding is invalid. */
int rw_auth_check_password(const char *encoded, const char *password);

#endif
