/* auth.c - credentials and permissions (see auth.h): the `auth:` rows and
 * their check functions (hex token hashes and PBKDF2 encodings parsed once
 * at load), reload-safe settings snapshots, and rw_auth_http, the one place
 * that decides whether a request may use a route. It sits in front of every
 * handler (core/http.c calls it before the handler runs) and attaches the
 * caller as an rw_principal that the write path (tenant) and the read side
 * (scoped querier) use.
 *
 * Hashing is OpenSSL's: SHA-256 (EVP) for tokens, PKCS5_PBKDF2_HMAC with
 * SHA-256 for passwords, RAND_bytes for salts, CRYPTO_memcmp for every
 * comparison of secrets. PBKDF2 is slow on purpose; at most two
 * verifications run at once (a flood of wrong passwords gets 503, it cannot
 * take every core), and a verified (user, password) pair is remembered per
 * snapshot by its SHA-256. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "labels.h"
#include "log.h"
#include "metrics.h"

#define DEFAULT_ITERATIONS 600000u
#define MAX_ITERATIONS 100000000u
#define MAX_VERIFYING 2
#define CACHE_SIZE 64

/* ---- helpers ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly n bytes of hex (2n digits, then the end or '$'). */
static int unhex(const char *s, size_t digits, uint8_t *out)
{
    if (digits % 2)
        return -1;
    for (size_t i = 0; i < digits / 2; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static int pbkdf2(const char *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
                  uint32_t iter, uint8_t out[32])
{
    return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)saltlen, (int)iter, EVP_sha256(), 32,
                             out) == 1
               ? 0
               : -1;
}

/* "pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX" */
static int parse_pbkdf2(const char *enc, uint32_t *iter, uint8_t *salt, size_t *saltlen,
                        uint8_t hash[32])
{
    static const char prefix[] = "pbkdf2-sha256$";
    if (strncmp(enc, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *p = enc + sizeof prefix - 1;
    char *end;
    unsigned long long it = strtoull(p, &end, 10);
    if (end == p || *end != '$' || it < 1000 || it > MAX_ITERATIONS)
        return -1;
    p = end + 1;
    const char *d = strchr(p, '$');
    if (!d)
        return -1;
    size_t sd = (size_t)(d - p);
    if (sd < 16 || sd > 128 || unhex(p, sd, salt) < 0)
        return -1;
    p = d + 1;
    if (strlen(p) != 64 || unhex(p, 64, hash) < 0)
        return -1;
    *iter = (uint32_t)it;
    *saltlen = sd / 2;
    return 0;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (padding optional); -1 on bad input. */
static long b64decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)n;
}

/* ---- configuration ---- */

static const char *const perm_names[] = {"read", "write", "admin"};
static const rw_perm perm_values[] = {RW_PERM_READ, RW_PERM_WRITE, RW_PERM_ADMIN};

#define R RW_CFG_RELOAD

#define BA(f) offsetof(rw_auth_basic, f)
static const rw_cfg_key basic_keys[] = {
    {"username", RW_CFG_STRING, BA(username), NULL, 0, 0, R, "basic-auth user name", NULL, NULL},
    {"password_pbkdf2", RW_CFG_STRING, BA(password_pbkdf2), NULL, 0, 0, R | RW_CFG_SECRET,
     "the password hashed by `rwgate hash-password`: pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX", NULL,
     NULL},
};
static const rw_cfg_table basic_table = RW_CFG_TABLE("basic_auth", rw_auth_basic, basic_keys, NULL, NULL);

static rw_rc check_tenant(void *obj, rw_err *err)
{
    rw_auth_tenant *t = obj;
    size_t nl = strlen(t->name);
    if (!nl || nl > 1024 || !rw_utf8_valid(t->name, nl))
        return rw_err_set(err, RW_BADREQ, "name: a tenant name is 1 to 1024 bytes of UTF-8");
    int has_basic = t->basic_auth.username[0] || t->basic_auth.password_pbkdf2[0];
    t->has_token = t->bearer_token_sha256[0] != '\0';
    if (t->has_token == has_basic)
        return rw_err_set(err, RW_BADREQ,
                          "tenant %s: exactly one of bearer_token_sha256 and basic_auth is needed",
                          t->name);
    if (t->has_token && (strlen(t->bearer_token_sha256) != 64 ||
                         unhex(t->bearer_token_sha256, 64, t->token) < 0))
        return rw_err_set(err, RW_BADREQ,
                          "tenant %s: bearer_token_sha256 must be 64 hex digits (the SHA-256 of "
                          "the token, e.g. printf %%s \"$TOKEN\" | sha256sum)",
                          t->name);
    if (has_basic) {
        if (!t->basic_auth.username[0] || strchr(t->basic_auth.username, ':'))
            return rw_err_set(err, RW_BADREQ,
                              "tenant %s: basic_auth.username must be set and contain no ':'",
                              t->name);
        if (parse_pbkdf2(t->basic_auth.password_pbkdf2, &t->iterations, t->salt, &t->salt_len,
                         t->hash) < 0)
            return rw_err_set(err, RW_BADREQ,
                              "tenant %s: basic_auth.password_pbkdf2 is not of the form "
                              "pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX (make one with "
                              "`rwgate hash-password`)",
                              t->name);
    }
    t->perms = 0;
    if (!t->permissions.n)
        return rw_err_set(err, RW_BADREQ, "tenant %s: permissions must list read, write or admin",
                          t->name);
    for (size_t i = 0; i < t->permissions.n; i++) {
        size_t k = 0;
        while (k < 3 && strcmp(t->permissions.v[i], perm_names[k]) != 0)
            k++;
        if (k == 3)
            return rw_err_set(err, RW_BADREQ,
                              "tenant %s: unknown permission \"%s\" (read, write, admin)", t->name,
                              t->permissions.v[i]);
        t->perms |= 1u << perm_values[k];
    }
    t->read_all = 0;
    if (t->read_tenants.n > 63)
        return rw_err_set(err, RW_BADREQ, "tenant %s: at most 63 read_tenants", t->name);
    for (size_t i = 0; i < t->read_tenants.n; i++) {
        if (!strcmp(t->read_tenants.v[i], "*"))
            t->read_all = 1;
        else if (!t->read_tenants.v[i][0])
            return rw_err_set(err, RW_BADREQ, "tenant %s: read_tenants has an empty name", t->name);
    }
    return RW_OK;
}

#define TN(f) offsetof(rw_auth_tenant, f)
static const rw_cfg_key tenant_keys[] = {
    {"name", RW_CFG_STRING, TN(name), NULL, 0, 0, R | RW_CFG_REQUIRED,
     "the tenant: the tenant label value its writes carry and its reads are scoped to", NULL,
     NULL},
    {"bearer_token_sha256", RW_CFG_STRING, TN(bearer_token_sha256), NULL, 0, 0,
     R | RW_CFG_SECRET, "hex SHA-256 of a bearer token (Authorization: Bearer TOKEN)", NULL,
     NULL},
    {"basic_auth", RW_CFG_SECTION, TN(basic_auth), NULL, 0, 0, R, "a basic-auth user",
     &basic_table, NULL},
    {"permissions", RW_CFG_STRINGS, TN(permissions), NULL, 0, 0, R,
     "read (queries, series, federate, remote-read, metrics), write (remote-write), admin "
     "(reload and anything that changes state)",
     NULL, NULL},
    {"read_tenants", RW_CFG_STRINGS, TN(read_tenants), NULL, 0, 0, R,
     "more tenants whose series it may read; \"*\" = every tenant", NULL, NULL},
};
static const rw_cfg_table tenant_table =
    RW_CFG_TABLE("tenant", rw_auth_tenant, tenant_keys, check_tenant, NULL);

static rw_rc check_auth(void *obj, rw_err *err)
{
    rw_auth_config *c = obj;
    for (size_t i = 0; i < c->open_paths.n; i++)
        if (c->open_paths.v[i][0] != '/')
            return rw_err_set(err, RW_BADREQ, "open_paths: \"%s\" does not start with /",
                              c->open_paths.v[i]);
    rw_auth_tenant *t = c->tenants.v;
    for (size_t i = 0; i < c->tenants.n; i++)
        for (size_t j = 0; j < i; j++) {
            if (t[i].has_token && t[j].has_token && !memcmp(t[i].token, t[j].token, 32))
                return rw_err_set(err, RW_BADREQ, "tenants %s and %s have the same bearer token",
                                  t[j].name, t[i].name);
            if (!t[i].has_token && !t[j].has_token &&
                !strcmp(t[i].basic_auth.username, t[j].basic_auth.username))
                return rw_err_set(err, RW_BADREQ, "basic_auth user %s is configured twice",
                                  t[i].basic_auth.username);
        }
    return RW_OK;
}

#define AC(f) offsetof(rw_auth_config, f)
static const rw_cfg_key auth_keys[] = {
    {"open_paths", RW_CFG_STRINGS, AC(open_paths), "/-/healthy,/-/ready", 0, 0, R,
     "paths served without a credential (exact; a trailing * matches a prefix), e.g. "
     "/metrics for a scraper",
     NULL, NULL},
    {"tenants", RW_CFG_LIST, AC(tenants), NULL, 0, 0, R,
     "credentials, one per entry (several entries may share a tenant name); none = "
     "authentication off, every endpoint open",
     &tenant_table, NULL},
    {"realm", RW_CFG_STRING, AC(realm), "rwgate", 0, 0, R, "realm named in WWW-Authenticate",
     NULL, NULL},
};
const rw_cfg_table rw_auth_config_table =
    RW_CFG_TABLE("auth", rw_auth_config, auth_keys, check_auth, NULL);

/* ---- snapshots ---- */

typedef struct cache_ent {
    uint8_t key[32]; /* sha256(username \0 password) */
    int tenant;      /* index, -1 = empty */
} cache_ent;

typedef struct snap {
    rw_auth_config cfg; /* owned deep copy */
    char *tenant_label;
    int refs;           /* rw_auth.mu */
    pthread_mutex_t cmu;
    cache_ent cache[CACHE_SIZE];
    unsigned next;      /* round-robin replacement (cmu) */
} snap;

struct rw_auth {
    pthread_mutex_t mu; /* guards cur and every snapshot's refs */
    snap *cur;
    _Atomic int verifying; /* PBKDF2 runs in progress */
    rw_gauge *enabled;
    rw_counter *ok, *unauthorized, *forbidden, *busy;
};

static void snap_free(snap *s)
{
    if (!s)
        return;
    rw_cfg_free(&rw_auth_config_table, &s->cfg);
    free(s->tenant_label);
    pthread_mutex_destroy(&s->cmu);
    free(s);
}

static snap *snap_new(const rw_auth_config *cfg, const char *tenant_label, rw_err *err)
{
    snap *s = calloc(1, sizeof *s);
    if (!s) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->cmu, NULL);
    for (size_t i = 0; i < CACHE_SIZE; i++)
        s->cache[i].tenant = -1;
    rw_rc rc;
    if (cfg) {
        rc = rw_cfg_copy(&rw_auth_config_table, &s->cfg, cfg, err);
    } else {
        rw_cfg_defaults(&rw_auth_config_table, &s->cfg);
        rc = rw_cfg_check(&rw_auth_config_table, &s->cfg, err);
    }
    if (rc != RW_OK || !(s->tenant_label = strdup(tenant_label ? tenant_label : ""))) {
        if (rc == RW_OK)
            rw_err_set(err, RW_NOMEM, "out of memory");
        snap_free(s);
        return NULL;
    }
    if (s->cfg.tenants.n && !s->tenant_label[0]) {
        rw_err_set(err, RW_BADREQ,
                   "auth: tenants need ingest.tenant_label (the label that scopes reads)");
        snap_free(s);
        return NULL;
    }
    s->refs = 1;
    return s;
}

static snap *snap_get(rw_auth *a)
{
    pthread_mutex_lock(&a->mu);
    snap *s = a->cur;
    s->refs++;
    pthread_mutex_unlock(&a->mu);
    return s;
}

static void snap_put(rw_auth *a, snap *s)
{
    pthread_mutex_lock(&a->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&a->mu);
    if (last)
        snap_free(s);
}

static void announce(const snap *s)
{
    if (!s->cfg.tenants.n) {
        rw_warn("authentication is off: every endpoint is open to anyone who can connect "
                "(configure auth.tenants to require credentials)");
        return;
    }
    char paths[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < s->cfg.open_paths.n && len < sizeof paths; i++)
        len += (size_t)snprintf(paths + len, sizeof paths - len, "%s%s", i ? ", " : "",
                                s->cfg.open_paths.v[i]);
    rw_info("authentication is on: %zu credentials, reads scoped by label %s, open paths: %s",
            s->cfg.tenants.n, s->tenant_label, len ? paths : "none");
}

rw_auth *rw_auth_new(const rw_auth_config *cfg, const char *tenant_label,
                     struct rw_metrics *metrics, rw_err *err)
{
    rw_auth *a = calloc(1, sizeof *a);
    if (!a) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    if (!(a->cur = snap_new(cfg, tenant_label, err))) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->enabled = rw_metrics_gauge(metrics, "rwgate_auth_enabled", NULL,
                                  "1 when credentials are required (auth.tenants), 0 when every "
                                  "endpoint is open.");
    const char *h = "Requests by the outcome of authentication.";
    a->ok = rw_metrics_counter(metrics, "rwgate_auth_requests_total", "result=\"ok\"", h);
    a->unauthorized =
        rw_metrics_counter(metrics, "rwgate_auth_requests_total", "result=\"unauthorized\"", h);
    a->forbidden =
        rw_metrics_counter(metrics, "rwgate_auth_requests_total", "result=\"forbidden\"", h);
    a->busy = rw_metrics_counter(metrics, "rwgate_auth_requests_total", "result=\"busy\"", h);
    rw_gauge_set(a->enabled, a->cur->cfg.tenants.n > 0);
    announce(a->cur);
    return a;
}

void rw_auth_free(rw_auth *a)
{
    if (!a)
        return;
    snap_put(a, a->cur);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

rw_rc rw_auth_reconfigure(rw_auth *a, const rw_auth_config *cfg, const char *tenant_label,
                          rw_err *err)
{
    snap *s = snap_new(cfg, tenant_label, err);
    if (!s)
        return err ? err->code : RW_NOMEM;
    pthread_mutex_lock(&a->mu);
    snap *old = a->cur;
    int was = old->cfg.tenants.n > 0, now = s->cfg.tenants.n > 0;
    a->cur = s;
    pthread_mutex_unlock(&a->mu);
    rw_gauge_set(a->enabled, now);
    if (was != now)
        announce(s);
    snap_put(a, old);
    return RW_OK;
}

int rw_auth_enabled(rw_auth *a)
{
    snap *s = snap_get(a);
    int on = s->cfg.tenants.n > 0;
    snap_put(a, s);
    return on;
}

/* ---- passwords ---- */

rw_rc rw_auth_hash_password(const char *password, uint32_t iterations, char *out, size_t cap,
                            rw_err *err)
{
    if (!iterations)
        iterations = DEFAULT_ITERATIONS;
    if (iterations < 1000 || iterations > MAX_ITERATIONS)
        return rw_err_set(err, RW_BADREQ, "iterations must be 1000 to %u", MAX_ITERATIONS);
    uint8_t salt[16], hash[32];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return rw_err_set(err, RW_INTERNAL, "no random bytes for a salt");
    if (pbkdf2(password, strlen(password), salt, sizeof salt, iterations, hash) < 0)
        return rw_err_set(err, RW_INTERNAL, "PBKDF2 failed");
    char sh[33], hh[65];
    tohex(salt, sizeof salt, sh);
    tohex(hash, sizeof hash, hh);
    if ((size_t)snprintf(out, cap, "pbkdf2-sha256$%u$%s$%s", iterations, sh, hh) >= cap)
        return rw_err_set(err, RW_LIMIT, "output buffer too small");
    return RW_OK;
}

int rw_auth_check_password(const char *encoded, const char *password)
{
    uint32_t iter;
    uint8_t salt[64], want[32], got[32];
    size_t sl;
    if (parse_pbkdf2(encoded, &iter, salt, &sl, want) < 0)
        return -1;
    if (pbkdf2(password, strlen(password), salt, sl, iter, got) < 0)
        return -1;
    return CRYPTO_memcmp(got, want, 32) == 0;
}

/* ---- per request ---- */

static int path_open(const snap *s, const char *path)
{
    for (size_t i = 0; i < s->cfg.open_paths.n; i++) {
        const char *p = s->cfg.open_paths.v[i];
        size_t n = strlen(p);
        if (n && p[n - 1] == '*' ? strncmp(path, p, n - 1) == 0 : strcmp(path, p) == 0)
            return 1;
    }
    return 0;
}

static int deny(rw_auth *a, const snap *s, rw_http_req *req, rw_http_resp *resp, int status,
                const char *msg)
{
    rw_counter_add(status == 401 ? a->unauthorized : status == 403 ? a->forbidden : a->busy, 1);
    rw_http_resp_text(resp, status, "%s", msg);
    if (status == 401) {
        rw_arena *ar = rw_http_arena(req);
        rw_http_resp_header(resp, "WWW-Authenticate",
                            rw_arena_sprintf(ar, "Basic realm=\"%s\"", s->cfg.realm));
        rw_http_resp_header(resp, "WWW-Authenticate",
                            rw_arena_sprintf(ar, "Bearer realm=\"%s\"", s->cfg.realm));
    } else if (status == 503) {
        rw_http_resp_header(resp, "Retry-After", "1");
    }
    return 0;
}

/* The tenant entry a bearer token belongs to, or -1. Every entry is
 * compared, in constant time each. */
static int find_token(const snap *s, const char *token)
{
    uint8_t h[32];
    if (sha256(token, strlen(token), h) < 0)
        return -1;
    int found = -1;
    const rw_auth_tenant *t = s->cfg.tenants.v;
    for (size_t i = 0; i < s->cfg.tenants.n; i++)
        if (t[i].has_token && CRYPTO_memcmp(h, t[i].token, 32) == 0)
            found = (int)i;
    return found;
}

/* The tenant entry of a basic-auth user and password: -1 unknown or wrong,
 * -2 too many verifications running. */
static int find_user(rw_auth *a, snap *s, const char *user, const char *pw)
{
    const rw_auth_tenant *t = s->cfg.tenants.v;
    int idx = -1;
    for (size_t i = 0; i < s->cfg.tenants.n && idx < 0; i++)
        if (!t[i].has_token && strcmp(t[i].basic_auth.username, user) == 0)
            idx = (int)i;
    if (idx < 0)
        return -1;
    /* remembered? */
    size_t ul = strlen(user), pl = strlen(pw);
    char *kb = malloc(ul + pl + 2);
    uint8_t key[32];
    if (!kb)
        return -1;
    memcpy(kb, user, ul + 1);
    memcpy(kb + ul + 1, pw, pl + 1);
    int hk = sha256(kb, ul + pl + 2, key);
    OPENSSL_cleanse(kb, ul + pl + 2);
    free(kb);
    if (hk < 0)
        return -1;
    int hit = 0;
    pthread_mutex_lock(&s->cmu);
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (s->cache[i].tenant == idx && CRYPTO_memcmp(s->cache[i].key, key, 32) == 0)
            hit = 1;
    pthread_mutex_unlock(&s->cmu);
    if (hit)
        return idx;
    if (atomic_fetch_add(&a->verifying, 1) >= MAX_VERIFYING) {
        atomic_fetch_sub(&a->verifying, 1);
        return -2;
    }
    uint8_t got[32];
    int ok = pbkdf2(pw, pl, t[idx].salt, t[idx].salt_len, t[idx].iterations, got) == 0 &&
             CRYPTO_memcmp(got, t[idx].hash, 32) == 0;
    atomic_fetch_sub(&a->verifying, 1);
    if (!ok)
        return -1;
    pthread_mutex_lock(&s->cmu);
    cache_ent *e = &s->cache[s->next++ % CACHE_SIZE];
    memcpy(e->key, key, 32);
    e->tenant = idx;
    pthread_mutex_unlock(&s->cmu);
    return idx;
}

int rw_auth_http(void *ctx, rw_http_req *req, rw_perm perm, rw_http_resp *resp)
{
    rw_auth *a = ctx;
    snap *s = snap_get(a);
    int allowed = 0;
    if (!s->cfg.tenants.n || path_open(s, rw_http_path(req))) {
        allowed = 1;
        goto out;
    }
    const char *h = rw_http_header(req, "Authorization");
    int idx = -1;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        idx = find_token(s, tok);
    } else if (h && strncasecmp(h, "Basic ", 6) == 0) {
        uint8_t dec[1024];
        long n = b64decode(h + 6, dec, sizeof dec - 1);
        if (n > 0) {
            dec[n] = '\0';
            char *colon = memchr(dec, ':', (size_t)n);
            if (colon && !memchr(dec, '\0', (size_t)n)) {
                *colon = '\0';
                idx = find_user(a, s, (const char *)dec, colon + 1);
            }
        }
        OPENSSL_cleanse(dec, sizeof dec);
        if (idx == -2) {
            deny(a, s, req, resp, 503, "too many password checks at once; retry later");
            goto out;
        }
    }
    if (idx < 0) {
        deny(a, s, req, resp, 401, h ? "invalid credentials" : "authentication required");
        goto out;
    }
    const rw_auth_tenant *t = &((const rw_auth_tenant *)s->cfg.tenants.v)[idx];
    if (!(t->perms & (1u << perm))) {
        char msg[256];
        snprintf(msg, sizeof msg, "credential of tenant %.100s lacks the %s permission",
                 t->name, rw_perm_name(perm));
        deny(a, s, req, resp, 403, msg);
        goto out;
    }
    /* the caller, for the write path (tenant) and the read side (scope) */
    const char *rt[64];
    size_t nrt = 0;
    rt[nrt++] = t->name;
    for (size_t i = 0; i < t->read_tenants.n && nrt < 64; i++)
        if (strcmp(t->read_tenants.v[i], "*") != 0)
            rt[nrt++] = t->read_tenants.v[i];
    rw_principal p = {
        .name = t->name,
        .tenant = t->name,
        .tenant_label = s->tenant_label,
        .read_tenants = rt,
        .nread_tenants = nrt,
        .read_all = t->read_all,
        .perms = t->perms,
    };
    if (rw_http_set_principal(req, &p) != RW_OK) {
        deny(a, s, req, resp, 503, "out of memory");
        goto out;
    }
    rw_counter_add(a->ok, 1);
    allowed = 1;
out:
    snap_put(a, s);
    return allowed;
}
