/* kube_api.c - the optional Kubernetes API node source of the kubelet-
 * endpoint dedup (ingest.kubelet_dedup.kubernetes_api): a background thread
 * that lists the cluster's nodes (GET /api/v1/nodes, paged with limit and
 * continue) with a bearer token over TLS through libcurl every refresh
 * interval, and hands the list to the node table (rw_kubelet_set_api_nodes)
 * for the configured cluster and tenant.
 *
 * A failed fetch (connection, TLS, HTTP status, malformed JSON) leaves the
 * last good list in force, is logged once per change of error and counted,
 * and shows in /api/v1/status/sources. The token file is read before every
 * fetch, so a rotated service-account token is picked up. The JSON goes
 * through the YAML tree reader (JSON is YAML's flow style) one page at a
 * time, so a large cluster's full list is never held as a parse tree.
 *
 * Reload: rw_in_kube_api_apply compares the new settings with the running
 * poller's and restarts it only when they differ. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/yaml.h"
#include "ingest_int.h"

#define PAGE_LIMIT 200
#define MAX_PAGE_BYTES (64u << 20)
#define MAX_NODES_LISTED 100000

typedef struct kstr {
    char *url, *token_file, *ca, *cert, *key, *server_name, *cluster, *tenant;
    int insecure;
    int64_t interval_ms, timeout_ms;
} kstr;

struct rw_kube_api {
    kstr s;
    rw_kubelet *k;
    pthread_t thr;
    pthread_mutex_t mu;          /* guards stop and the status */
    pthread_cond_t cv;
    int stop;
    rw_in_kube_api_status st;
};

static char *dup0(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

static void kstr_free(kstr *s)
{
    free(s->url);
    free(s->token_file);
    free(s->ca);
    free(s->cert);
    free(s->key);
    free(s->server_name);
    free(s->cluster);
    free(s->tenant);
    memset(s, 0, sizeof *s);
}

static int kstr_equal(const kstr *s, const rw_ingest_kube_api_config *c)
{
    return same(s->url, c->url) && same(s->token_file, c->bearer_token_file) &&
           same(s->ca, c->tls_config.ca_file) && same(s->cert, c->tls_config.cert_file) &&
           same(s->key, c->tls_config.key_file) &&
           same(s->server_name, c->tls_config.server_name) && same(s->cluster, c->cluster) &&
           same(s->tenant, c->tenant) && s->insecure == c->tls_config.insecure_skip_verify &&
           s->interval_ms == c->refresh_interval_ms && s->timeout_ms == c->timeout_ms;
}

/* ---- one fetch ---- */

typedef struct body {
    char *p;
    size_t len, cap;
    int over;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > MAX_PAGE_BYTES) {
        b->over = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p)
            return 0;
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static char *read_token(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "bearer_token_file %s: cannot read", path);
        return NULL;
    }
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return strdup(buf);
}

static const char *scalar(const rw_ynode *map, const char *key)
{
    const rw_ynode *v = map && map->kind == RW_Y_MAP ? rw_yaml_get(map, key) : NULL;
    return v && v->kind == RW_Y_SCALAR ? v->s : NULL;
}

static int64_t rfc3339_ms(const char *s)
{
    int64_t ms;
    return s && rw_parse_api_time(s, &ms, NULL) == RW_OK ? ms : 0;
}

/* Appends the nodes of one NodeList page; returns the continue token (in the
 * tree's arena) or NULL. */
static const char *parse_page(const rw_ynode *root, rw_arena *keep, rw_kubelet_api_node **nodes,
                              size_t *n, size_t *cap, char *err, size_t ecap)
{
    const char *kind = scalar(root, "kind");
    const rw_ynode *items = root && root->kind == RW_Y_MAP ? rw_yaml_get(root, "items") : NULL;
    if (!kind || strcmp(kind, "NodeList") || !items ||
        (items->kind != RW_Y_SEQ && items->kind != RW_Y_NULL)) {
        snprintf(err, ecap, "the answer is not a NodeList");
        return NULL;
    }
    for (size_t i = 0; items->kind == RW_Y_SEQ && i < items->n; i++) {
        const rw_ynode *it = items->vals[i];
        const rw_ynode *md = it->kind == RW_Y_MAP ? rw_yaml_get(it, "metadata") : NULL;
        const rw_ynode *st = it->kind == RW_Y_MAP ? rw_yaml_get(it, "status") : NULL;
        const char *name = scalar(md, "name");
        if (!name || !*name)
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            if (nc > MAX_NODES_LISTED)
                break;
            rw_kubelet_api_node *nn = realloc(*nodes, nc * sizeof *nn);
            if (!nn)
                break;
            *nodes = nn;
            *cap = nc;
        }
        rw_kubelet_api_node *x = &(*nodes)[(*n)++];
        memset(x, 0, sizeof *x);
        x->name = rw_arena_strdup(keep, name);
        x->created_ms = rfc3339_ms(scalar(md, "creationTimestamp"));
        x->ready = RW_NODE_READY_MISSING;
        const rw_ynode *conds = st && st->kind == RW_Y_MAP ? rw_yaml_get(st, "conditions") : NULL;
        for (size_t j = 0; conds && conds->kind == RW_Y_SEQ && j < conds->n; j++) {
            const char *type = scalar(conds->vals[j], "type");
            if (!type || strcmp(type, "Ready"))
                continue;
            const char *status = scalar(conds->vals[j], "status");
            x->ready = !status                     ? RW_NODE_READY_MISSING
                       : !strcmp(status, "True")    ? RW_NODE_READY_TRUE
                       : !strcmp(status, "False")   ? RW_NODE_READY_FALSE
                                                    : RW_NODE_READY_UNKNOWN;
            x->heartbeat_ms = rfc3339_ms(scalar(conds->vals[j], "lastHeartbeatTime"));
        }
        const rw_ynode *addrs = st && st->kind == RW_Y_MAP ? rw_yaml_get(st, "addresses") : NULL;
        for (size_t j = 0; addrs && addrs->kind == RW_Y_SEQ && j < addrs->n; j++) {
            const char *type = scalar(addrs->vals[j], "type");
            const char *a = scalar(addrs->vals[j], "address");
            if (!type || !a)
                continue;
            if (!strcmp(type, "InternalIP") && !x->internal_ip)
                x->internal_ip = rw_arena_strdup(keep, a);
            else if (!strcmp(type, "ExternalIP") && !x->external_ip)
                x->external_ip = rw_arena_strdup(keep, a);
        }
    }
    const rw_ynode *lm = root->kind == RW_Y_MAP ? rw_yaml_get(root, "metadata") : NULL;
    const char *cont = scalar(lm, "continue");
    return cont && *cont ? rw_arena_strdup(keep, cont) : NULL;
}

/* Lists every node; 0 with the list handed over, -1 with err filled. */
static int fetch(struct rw_kube_api *ka, char *err, size_t ecap, size_t *count)
{
    const kstr *s = &ka->s;
    char *token = NULL;
    if (s->token_file && !(token = read_token(s->token_file, err, ecap)))
        return -1;
    CURL *h = curl_easy_init();
    if (!h) {
        free(token);
        snprintf(err, ecap, "cannot create a curl handle");
        return -1;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    if (token) {
        size_t n = strlen(token) + 32;
        char *a = malloc(n);
        if (a) {
            snprintf(a, n, "Authorization: Bearer %s", token);
            hdr = curl_slist_append(hdr, a);
            free(a);
        }
    }
    rw_arena *keep = rw_arena_new(0, 256u << 20);
    rw_kubelet_api_node *nodes = NULL;
    size_t n = 0, cap = 0;
    char *cont = NULL;
    int rc = -1, pages = 0;
    char url[4096];
    for (;;) {
        char *ec = cont ? curl_easy_escape(h, cont, 0) : NULL;
        snprintf(url, sizeof url, "%s/api/v1/nodes?limit=%d%s%s", s->url, PAGE_LIMIT,
                 ec ? "&continue=" : "", ec ? ec : "");
        curl_free(ec);
        body b = {0};
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        if (s->ca)
            curl_easy_setopt(h, CURLOPT_CAINFO, s->ca);
        if (s->cert)
            curl_easy_setopt(h, CURLOPT_SSLCERT, s->cert);
        if (s->key)
            curl_easy_setopt(h, CURLOPT_SSLKEY, s->key);
        if (s->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        struct curl_slist *connect_to = NULL;
        if (s->server_name) {
            /* verify the certificate against server_name while connecting to
               the URL's host: ask for server_name, connect elsewhere */
            CURLU *u = curl_url();
            char *host = NULL, *port = NULL;
            if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
                curl_url_set(u, CURLUPART_HOST, s->server_name, 0) == CURLUE_OK) {
                char *nu = NULL;
                if (curl_url_get(u, CURLUPART_URL, &nu, 0) == CURLUE_OK) {
                    char ct[600];
                    snprintf(ct, sizeof ct, "%s:%s:%s:%s", s->server_name, port, host, port);
                    connect_to = curl_slist_append(NULL, ct);
                    curl_easy_setopt(h, CURLOPT_URL, nu);
                    curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
                    curl_free(nu);
                }
            }
            curl_free(host);
            curl_free(port);
            curl_url_cleanup(u);
        }
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(connect_to);
        if (cc != CURLE_OK) {
            snprintf(err, ecap, "GET %.120s: %s", url,
                     b.over ? "answer too large" : curl_easy_strerror(cc));
            free(b.p);
            break;
        }
        if (status != 200) {
            snprintf(err, ecap, "GET %.120s: HTTP %ld: %.160s", url, status, b.p ? b.p : "");
            free(b.p);
            break;
        }
        rw_arena *ta = rw_arena_new(0, 512u << 20);
        rw_ynode *root = NULL;
        rw_err pe;
        rw_err_init(&pe);
        if (!ta || rw_yaml_parse(b.p ? b.p : "", b.len, "NodeList", ta, &root, &pe) != RW_OK) {
            snprintf(err, ecap, "GET %.120s: cannot parse the answer: %.100s", url, pe.msg);
            free(b.p);
            rw_arena_free(ta);
            break;
        }
        err[0] = '\0';
        const char *next = parse_page(root, keep, &nodes, &n, &cap, err, ecap);
        free(b.p);
        rw_arena_free(ta);
        if (err[0])
            break;
        free(cont);
        cont = next ? strdup(next) : NULL;
        if (!cont || ++pages > MAX_NODES_LISTED / PAGE_LIMIT) {
            rw_kubelet_set_api_nodes(ka->k, s->tenant ? s->tenant : "", s->cluster, nodes, n);
            *count = n;
            rc = 0;
            break;
        }
    }
    free(cont);
    free(nodes);
    rw_arena_free(keep);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(token);
    return rc;
}

static void *poll_loop(void *arg)
{
    struct rw_kube_api *ka = arg;
    char last_err[256] = "";
    for (;;) {
        char err[256] = "";
        size_t count = 0;
        int64_t t = rw_now_ms();
        int r = fetch(ka, err, sizeof err, &count);
        pthread_mutex_lock(&ka->mu);
        ka->st.last_try_ms = t;
        if (r == 0) {
            ka->st.last_ok_ms = t;
            ka->st.nodes = count;
            ka->st.last_error[0] = '\0';
        } else {
            snprintf(ka->st.last_error, sizeof ka->st.last_error, "%s", err);
        }
        pthread_mutex_unlock(&ka->mu);
        if (r == 0 && last_err[0]) {
            rw_info("kubernetes_api: %s: listing nodes works again (%zu nodes)", ka->s.url, count);
            last_err[0] = '\0';
        } else if (r != 0 && strcmp(err, last_err)) {
            rw_warn("kubernetes_api: listing nodes failed, keeping the last node list: %s", err);
            snprintf(last_err, sizeof last_err, "%s", err);
        }
        pthread_mutex_lock(&ka->mu);
        if (!ka->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (ka->s.interval_ms % 1000) * 1000000;
            ts.tv_sec += ka->s.interval_ms / 1000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            while (!ka->stop && pthread_cond_timedwait(&ka->cv, &ka->mu, &ts) == 0)
                ;
        }
        int stop = ka->stop;
        pthread_mutex_unlock(&ka->mu);
        if (stop)
            break;
    }
    return NULL;
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void stop_locked(rw_ingest *ig)
{
    struct rw_kube_api *ka = ig->kapi;
    if (!ka)
        return;
    pthread_mutex_lock(&ka->mu);
    ka->stop = 1;
    pthread_cond_signal(&ka->cv);
    pthread_mutex_unlock(&ka->mu);
    pthread_join(ka->thr, NULL);
    pthread_mutex_destroy(&ka->mu);
    pthread_cond_destroy(&ka->cv);
    kstr_free(&ka->s);
    free(ka);
    ig->kapi = NULL;
}

void rw_in_kube_api_stop(rw_ingest *ig)
{
    pthread_mutex_lock(&ig->kapi_mu);
    stop_locked(ig);
    pthread_mutex_unlock(&ig->kapi_mu);
}

rw_rc rw_in_kube_api_apply(rw_ingest *ig, const rw_ingest_kube_api_config *c, rw_err *err)
{
    pthread_mutex_lock(&ig->kapi_mu);
    if (ig->kapi && kstr_equal(&ig->kapi->s, c)) {
        pthread_mutex_unlock(&ig->kapi_mu);
        return RW_OK;
    }
    stop_locked(ig);
    if (!c->url[0]) {
        pthread_mutex_unlock(&ig->kapi_mu);
        return RW_OK;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct rw_kube_api *ka = calloc(1, sizeof *ka);
    if (!ka) {
        pthread_mutex_unlock(&ig->kapi_mu);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    ka->s.url = dup0(c->url);
    size_t ul = ka->s.url ? strlen(ka->s.url) : 0;
    while (ul > 8 && ka->s.url[ul - 1] == '/') /* base URL without the trailing slash */
        ka->s.url[--ul] = '\0';
    ka->s.token_file = dup0(c->bearer_token_file);
    ka->s.ca = dup0(c->tls_config.ca_file);
    ka->s.cert = dup0(c->tls_config.cert_file);
    ka->s.key = dup0(c->tls_config.key_file);
    ka->s.server_name = dup0(c->tls_config.server_name);
    ka->s.cluster = strdup(c->cluster);
    ka->s.tenant = dup0(c->tenant);
    ka->s.insecure = c->tls_config.insecure_skip_verify;
    ka->s.interval_ms = c->refresh_interval_ms;
    ka->s.timeout_ms = c->timeout_ms;
    ka->k = ig->kubelet;
    pthread_mutex_init(&ka->mu, NULL);
    pthread_cond_init(&ka->cv, NULL);
    if (!ka->s.url || !ka->s.cluster || pthread_create(&ka->thr, NULL, poll_loop, ka) != 0) {
        kstr_free(&ka->s);
        pthread_mutex_destroy(&ka->mu);
        pthread_cond_destroy(&ka->cv);
        free(ka);
        pthread_mutex_unlock(&ig->kapi_mu);
        return rw_err_set(err, RW_NOMEM, "cannot start the Kubernetes API poller");
    }
    ig->kapi = ka;
    rw_info("kubernetes_api: listing the nodes of cluster \"%s\" from %s every %lld s",
            c->cluster, c->url, (long long)(c->refresh_interval_ms / 1000));
    pthread_mutex_unlock(&ig->kapi_mu);
    return RW_OK;
}

static void jstr(rw_buf *b, const char *k, const char *v)
{
    rw_buf_printf(b, ",\"%s\":", k);
    if (v)
        rw_json_str(b, v);
    else
        rw_buf_puts(b, "null");
}

void rw_in_kube_api_settings_json(rw_ingest *ig, rw_buf *b)
{
    pthread_mutex_lock(&ig->kapi_mu);
    struct rw_kube_api *ka = ig->kapi;
    if (!ka) {
        rw_buf_puts(b, "null");
        pthread_mutex_unlock(&ig->kapi_mu);
        return;
    }
    const kstr *s = &ka->s;
    rw_buf_printf(b, "{\"refresh_interval_seconds\":%lld,\"timeout_seconds\":%lld",
                  (long long)(s->interval_ms / 1000), (long long)(s->timeout_ms / 1000));
    jstr(b, "url", s->url);
    jstr(b, "cluster", s->cluster);
    jstr(b, "tenant", s->tenant);
    jstr(b, "bearer_token_file", s->token_file);
    jstr(b, "ca_file", s->ca);
    jstr(b, "cert_file", s->cert);
    jstr(b, "key_file", s->key);
    jstr(b, "server_name", s->server_name);
    rw_buf_printf(b, ",\"insecure_skip_verify\":%s}", s->insecure ? "true" : "false");
    pthread_mutex_unlock(&ig->kapi_mu);
}

int rw_in_kube_api_status_get(rw_ingest *ig, rw_in_kube_api_status *out)
{
    pthread_mutex_lock(&ig->kapi_mu);
    struct rw_kube_api *ka = ig->kapi;
    if (ka) {
        pthread_mutex_lock(&ka->mu);
        *out = ka->st;
        pthread_mutex_unlock(&ka->mu);
    }
    pthread_mutex_unlock(&ig->kapi_mu);
    return ka != NULL;
}
