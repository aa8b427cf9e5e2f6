/* notify.c - the Alertmanager client (notify.h). Alerting rules hand their
 * firing and resolved alerts to rw_notifier_send(); this file queues them
 * and one sender thread POSTs them to every Alertmanager's /api/v2/alerts.
 *
 * The queue is one ring of encoded alerts with a sequence number each and,
 * per Alertmanager, a cursor: the sequence number of the next alert that
 * Alertmanager has not received. Each Alertmanager advances through the
 * ring on its own (batches of up to 64 from its cursor), so a dead one
 * never holds back a live one; the ring's head is the slowest cursor, and
 * an alert is freed once every Alertmanager has it. When the ring is full
 * the oldest alert is evicted, counted as dropped if some Alertmanager had
 * not received it, and the cursors behind it move forward.
 *
 * The sender thread drives every request through one libcurl multi handle:
 * requests to different Alertmanagers run concurrently, each with its own
 * timeout; a failed request is retried after an exponential backoff; the
 * thread sleeps in curl_multi_poll() until a request completes, a backoff
 * expires, or rw_notifier_send() wakes it (curl_multi_wakeup). Callers only
 * ever take the mutex to push copies, so sending never waits on the
 * network.
 *
 * Locking: n->mu guards the ring, the cursors, the target list, the
 * configuration pointer and the external labels. The curl handles belong to
 * the sender thread alone. */
#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/log.h"
#include "core/relabel.h"
#include "core/timeutil.h"
#include "core/tls_client.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define USER_AGENT "rwgate-notifier"

typedef struct qalert {
    char *json; /* one encoded alert object */
    size_t len;
} qalert;

/* One Alertmanager: where and how to send, and its place in the queue. */
typedef struct am_target {
    char *url;          /* POST here (tls server_name applies per request) */
    char *name;         /* scheme://host:port/prefix: the metrics label */
    /* what the request needs from the config, copied: the config may be
     * swapped (and freed) while a request is in flight */
    int64_t timeout_ms;
    char *auth_type, *credentials, *credentials_file;
    char *username, *password, *password_file;
    rw_tls_client_config tls; /* deep copy of the tls_config block */
    int has_tls;              /* tls holds a copy to free */
    int has_basic;

    uint64_t cursor;    /* next sequence number to send */
    int64_t next_try_ns; /* monotonic; 0 = now */
    int64_t backoff_ms;
    uint64_t sent;      /* alerts delivered */
    int retired;        /* removed by a reconfigure; freed when idle */

    /* the request in flight (sender thread only) */
    CURL *easy;
    int inflight;
    uint64_t batch_first;
    size_t batch_n;
    rw_buf payload;
    struct curl_slist *hdrs;
    rw_tls_conn conn;   /* the URL and CURLOPT_CONNECT_TO curl uses */
    int64_t start_ns;
    char errbuf[CURL_ERROR_SIZE];

    rw_counter *m_sent, *m_errors;
    rw_histogram *m_latency;
} am_target;

struct rw_notifier {
    pthread_mutex_t mu;
    qalert *ring;
    size_t cap;
    uint64_t head, tail; /* sequence numbers; ring[seq % cap] */
    am_target **ams;
    size_t nams;
    am_target **retired;
    size_t nretired;
    const rw_alerting_config *cfg;
    rw_relabel_state *relabel; /* used under mu by rw_notifier_send */
    rw_arena *relabel_arena;   /* reset per send */
    rw_label *ext;
    size_t next;
    char *ext_buf;
    uint64_t dropped;
    int stop;
    int64_t stop_deadline_ns;

    CURLM *multi;
    pthread_t thread;
    int thread_started;

    rw_metrics *metrics;
    rw_counter *m_dropped;
    rw_gauge *m_qlen, *m_qcap, *m_discovered;
};

/* ---- encoding ---- */

/* Go's strfmt.DateTime: RFC 3339 with milliseconds, UTC. */
static void fmt_time(int64_t ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const rw_label *)a)->name, ((const rw_label *)b)->name);
}

static void json_map(rw_buf *out, const rw_label *l, size_t n)
{
    rw_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(out, ',');
        rw_json_str(out, l[i].name);
        rw_buf_putc(out, ':');
        rw_json_str(out, l[i].value);
    }
    rw_buf_putc(out, '}');
}

/* The alert's labels (non-empty values, first of duplicates) plus the
 * external labels it does not carry, sorted: Prometheus attaches external
 * labels that way before relabeling. Returns a malloc'd array. */
static rw_label *merge_labels(const rw_alert_msg *a, const rw_label *ext, size_t next, size_t *n)
{
    rw_label *l = malloc((a->nlabels + next + 1) * sizeof *l);
    if (!l)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (a->labels[i].name && a->labels[i].name[0] && a->labels[i].value &&
            a->labels[i].value[0])
            l[k++] = a->labels[i];
    qsort(l, k, sizeof *l, label_cmp);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || strcmp(l[w - 1].name, l[i].name) != 0)
            l[w++] = l[i];
    k = w;
    for (size_t i = 0; i < next; i++) {
        int have = 0;
        for (size_t j = 0; j < w; j++)
            if (strcmp(l[j].name, ext[i].name) == 0)
                have = 1;
        if (!have && ext[i].value[0])
            l[k++] = ext[i];
    }
    qsort(l, k, sizeof *l, label_cmp);
    *n = k;
    return l;
}

static rw_rc encode_labels(const rw_alert_msg *a, const rw_label *l, size_t nl, rw_buf *out)
{
    rw_buf_puts(out, "{\"labels\":");
    json_map(out, l, nl);
    rw_buf_puts(out, ",\"annotations\":");
    rw_label *ann = a->nannotations ? malloc(a->nannotations * sizeof *ann) : NULL;
    size_t na = 0;
    for (size_t i = 0; ann && i < a->nannotations; i++)
        if (a->annotations[i].name && a->annotations[i].value)
            ann[na++] = a->annotations[i];
    if (na)
        qsort(ann, na, sizeof *ann, label_cmp);
    json_map(out, ann, na);
    free(ann);
    char t[96];
    if (a->starts_at_ms) {
        fmt_time(a->starts_at_ms, t, sizeof t);
        rw_buf_printf(out, ",\"startsAt\":\"%s\"", t);
    }
    if (a->ends_at_ms) {
        fmt_time(a->ends_at_ms, t, sizeof t);
        rw_buf_printf(out, ",\"endsAt\":\"%s\"", t);
    }
    if (a->generator_url && a->generator_url[0]) {
        rw_buf_puts(out, ",\"generatorURL\":");
        rw_json_str(out, a->generator_url);
    }
    rw_buf_putc(out, '}');
    return out->failed ? RW_NOMEM : RW_OK;
}

rw_rc rw_notifier_encode(const rw_alert_msg *a, const rw_label *external, size_t nexternal,
                         rw_buf *out)
{
    size_t nl;
    rw_label *l = merge_labels(a, external, nexternal, &nl);
    if (!l)
        return RW_NOMEM;
    rw_rc rc = encode_labels(a, l, nl, out);
    free(l);
    return rc;
}

/* ---- targets ---- */

static char *xstrdup(const char *s) { return strdup(s ? s : ""); }

/* Metric label values are quoted strings in the exposition format. */
static void metric_labels(const char *name, char *out, size_t cap)
{
    static const char pre[] = "alertmanager=\"";
    size_t k = sizeof pre - 1;
    memcpy(out, pre, k);
    for (const char *p = name; *p && k + 4 < cap; p++) {
        if (*p == '"' || *p == '\\' || *p == '\n')
            out[k++] = '\\';
        out[k++] = *p == '\n' ? 'n' : *p;
    }
    out[k++] = '"';
    out[k] = 0;
}

static void target_free(am_target *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    rw_tls_conn_free(&t->conn);
    rw_buf_free(&t->payload);
    free(t->url);
    free(t->name);
    free(t->auth_type);
    free(t->credentials);
    free(t->credentials_file);
    free(t->username);
    free(t->password);
    free(t->password_file);
    if (t->has_tls)
        rw_cfg_free(&rw_tls_client_config_table, &t->tls);
    free(t);
}

static am_target *target_new(rw_notifier *n, const rw_am_config *c, const char *addr,
                             rw_err *err)
{
    am_target *t = calloc(1, sizeof *t);
    if (!t) {
        rw_err_set(err, RW_NOMEM, "alerting: out of memory");
        return NULL;
    }
    const char *scheme = c->scheme == RW_AM_HTTPS ? "https" : "http";
    /* path.Join("/", path_prefix, "/api/v2/alerts") */
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "%s", c->path_prefix);
    size_t pl = strlen(prefix);
    while (pl > 0 && prefix[pl - 1] == '/')
        prefix[--pl] = 0;
    size_t ul = strlen(scheme) + strlen(addr) + pl + 32;
    t->url = malloc(ul);
    t->name = malloc(ul);
    if (t->url)
        snprintf(t->url, ul, "%s://%s%s%s/api/v2/alerts", scheme, addr,
                 prefix[0] && prefix[0] != '/' ? "/" : "", prefix);
    if (t->name)
        snprintf(t->name, ul, "%s://%s%s%s", scheme, addr, prefix[0] && prefix[0] != '/' ? "/" : "",
                 prefix);
    t->timeout_ms = c->timeout_ms;
    t->auth_type = xstrdup(c->authorization.type);
    t->credentials = xstrdup(c->authorization.credentials);
    t->credentials_file = xstrdup(c->authorization.credentials_file);
    t->username = xstrdup(c->basic_auth.username);
    t->password = xstrdup(c->basic_auth.password);
    t->password_file = xstrdup(c->basic_auth.password_file);
    t->has_basic = c->basic_auth.username[0] || c->basic_auth.password[0] ||
                   c->basic_auth.password_file[0];
    rw_buf_init(&t->payload, 0);
    if (!t->url || !t->name || !t->auth_type || !t->credentials || !t->credentials_file ||
        !t->username || !t->password || !t->password_file) {
        target_free(t);
        rw_err_set(err, RW_NOMEM, "alerting: out of memory");
        return NULL;
    }
    rw_err e;
    rw_err_init(&e);
    if (rw_cfg_copy(&rw_tls_client_config_table, &t->tls, &c->tls_config, &e) != RW_OK) {
        rw_err_set(err, e.code, "alerting: alertmanager %s: tls_config: %s", t->name, e.msg);
        target_free(t);
        return NULL;
    }
    t->has_tls = 1;
    char lbl[1100];
    metric_labels(t->name, lbl, sizeof lbl);
    t->m_sent = rw_metrics_counter(n->metrics, "rwgate_notifications_sent_total", lbl,
                                   "Alerts delivered to an Alertmanager.");
    t->m_errors = rw_metrics_counter(n->metrics, "rwgate_notifications_errors_total", lbl,
                                     "Failed requests to an Alertmanager.");
    t->m_latency = rw_metrics_histogram(n->metrics, "rwgate_notifications_latency_seconds", lbl,
                                        "Duration of requests to an Alertmanager.",
                                        rw_latency_buckets, rw_latency_nbuckets);
    return t;
}

/* The server_name a request to t speaks TLS to ("" = the URL's host). */
static const char *tls_name(const am_target *t)
{
    return strncmp(t->url, "https://", 8) == 0 && t->tls.server_name ? t->tls.server_name : "";
}

/* Same destination (address, path and TLS server name): the target keeps
 * its cursor across a reconfigure. */
static int target_same(const am_target *a, const am_target *b)
{
    return strcmp(a->url, b->url) == 0 && strcmp(tls_name(a), tls_name(b)) == 0;
}

/* Builds the targets of cfg. */
static rw_rc build_targets(rw_notifier *n, const rw_alerting_config *cfg, am_target ***out,
                           size_t *nout, rw_err *err)
{
    size_t total = 0;
    for (size_t i = 0; cfg && i < cfg->alertmanagers.n; i++) {
        const rw_am_config *c = (const rw_am_config *)cfg->alertmanagers.v + i;
        for (size_t j = 0; j < c->static_configs.n; j++)
            total += ((const rw_am_static_config *)c->static_configs.v)[j].targets.n;
    }
    am_target **v = total ? calloc(total, sizeof *v) : NULL;
    if (total && !v)
        return rw_err_set(err, RW_NOMEM, "alerting: out of memory");
    size_t k = 0;
    for (size_t i = 0; cfg && i < cfg->alertmanagers.n; i++) {
        const rw_am_config *c = (const rw_am_config *)cfg->alertmanagers.v + i;
        for (size_t j = 0; j < c->static_configs.n; j++) {
            const rw_am_static_config *sc = (const rw_am_static_config *)c->static_configs.v + j;
            for (size_t t = 0; t < sc->targets.n; t++) {
                am_target *a = target_new(n, c, sc->targets.v[t], err);
                if (!a) {
                    for (size_t q = 0; q < k; q++)
                        target_free(v[q]);
                    free(v);
                    return err ? err->code : RW_NOMEM;
                }
                int dup = 0;
                for (size_t q = 0; q < k; q++)
                    if (target_same(v[q], a))
                        dup = 1;
                if (dup)
                    target_free(a); /* Prometheus deduplicates targets too */
                else
                    v[k++] = a;
            }
        }
    }
    *out = v;
    *nout = k;
    return RW_OK;
}

static rw_rc copy_external(const rw_label *ext, size_t n, rw_label **out, char **buf)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(ext[i].name) + strlen(ext[i].value) + 2;
    rw_label *l = n ? malloc(n * sizeof *l) : NULL;
    char *b = bytes ? malloc(bytes) : NULL;
    if ((n && !l) || (bytes && !b)) {
        free(l);
        free(b);
        return RW_NOMEM;
    }
    char *p = b;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(ext[i].name) + 1, vl = strlen(ext[i].value) + 1;
        memcpy(p, ext[i].name, nl);
        l[i].name = p;
        p += nl;
        memcpy(p, ext[i].value, vl);
        l[i].value = p;
        p += vl;
    }
    *out = l;
    *buf = b;
    return RW_OK;
}

/* ---- the ring (n->mu held) ---- */

static uint64_t min_cursor(const rw_notifier *n)
{
    uint64_t m = n->tail;
    for (size_t i = 0; i < n->nams; i++)
        if (n->ams[i]->cursor < m)
            m = n->ams[i]->cursor;
    return m;
}

static void update_gauges(rw_notifier *n)
{
    rw_gauge_set(n->m_qlen, (double)(n->tail - n->head));
    rw_gauge_set(n->m_qcap, (double)n->cap);
    rw_gauge_set(n->m_discovered, (double)n->nams);
}

/* Frees the alerts every Alertmanager has. */
static void trim(rw_notifier *n)
{
    uint64_t m = min_cursor(n);
    while (n->head < m) {
        qalert *q = &n->ring[n->head % n->cap];
        free(q->json);
        q->json = NULL;
        n->head++;
    }
}

static void push(rw_notifier *n, char *json, size_t len)
{
    if (n->tail - n->head == n->cap) {
        /* full: the oldest goes; it is lost for whoever had not got it */
        qalert *q = &n->ring[n->head % n->cap];
        free(q->json);
        q->json = NULL;
        if (min_cursor(n) <= n->head) {
            n->dropped++;
            rw_counter_add(n->m_dropped, 1);
        }
        n->head++;
        for (size_t i = 0; i < n->nams; i++)
            if (n->ams[i]->cursor < n->head)
                n->ams[i]->cursor = n->head;
    }
    qalert *q = &n->ring[n->tail % n->cap];
    q->json = json;
    q->len = len;
    n->tail++;
}

/* Moves the ring to a new capacity, keeping the newest alerts. */
static rw_rc resize(rw_notifier *n, size_t cap)
{
    if (cap == n->cap)
        return RW_OK;
    qalert *r = calloc(cap, sizeof *r);
    if (!r)
        return RW_NOMEM;
    uint64_t keep_from = n->tail - n->head > cap ? n->tail - cap : n->head;
    for (uint64_t s = n->head; s < n->tail; s++) {
        qalert *q = &n->ring[s % n->cap];
        if (s < keep_from) {
            free(q->json);
            if (min_cursor(n) <= s) {
                n->dropped++;
                rw_counter_add(n->m_dropped, 1);
            }
        } else {
            r[s % cap] = *q;
        }
    }
    free(n->ring);
    n->ring = r;
    n->cap = cap;
    n->head = keep_from;
    for (size_t i = 0; i < n->nams; i++)
        if (n->ams[i]->cursor < n->head)
            n->ams[i]->cursor = n->head;
    return RW_OK;
}

/* ---- requests (sender thread) ---- */

/* Reads a secret file, trimmed of surrounding white space (Prometheus does
 * the same). NULL when unreadable. */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\n' || s[l - 1] == '\r'))
        s[--l] = 0;
    return strdup(s);
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

/* Sets up t's request for the alerts [t->cursor, +batch) (n->mu held). */
static int start_request(rw_notifier *n, am_target *t)
{
    uint64_t first = t->cursor;
    size_t cnt = n->tail - first;
    if (cnt > RW_NOTIFY_MAX_BATCH)
        cnt = RW_NOTIFY_MAX_BATCH;
    rw_buf_reset(&t->payload);
    rw_buf_putc(&t->payload, '[');
    for (size_t i = 0; i < cnt; i++) {
        const qalert *q = &n->ring[(first + i) % n->cap];
        if (i)
            rw_buf_putc(&t->payload, ',');
        rw_buf_append(&t->payload, q->json, q->len);
    }
    rw_buf_putc(&t->payload, ']');
    if (t->payload.failed)
        return -1;
    if (!t->easy && !(t->easy = curl_easy_init()))
        return -1;
    CURL *e = t->easy;
    curl_easy_reset(e);
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    t->hdrs = curl_slist_append(t->hdrs, "Content-Type: application/json");
    t->hdrs = curl_slist_append(t->hdrs, "Expect:");
    char *secret = NULL;
    if (t->credentials[0] || t->credentials_file[0]) {
        secret = t->credentials_file[0] ? read_secret(t->credentials_file) : strdup(t->credentials);
        if (!secret) {
            rw_warn("alertmanager %s: cannot read credentials_file %s", t->name,
                    t->credentials_file);
            return -1;
        }
        size_t hl = strlen(t->auth_type) + strlen(secret) + 32;
        char *h = malloc(hl);
        if (h) {
            snprintf(h, hl, "Authorization: %s %s", t->auth_type, secret);
            t->hdrs = curl_slist_append(t->hdrs, h);
            memset(h, 0, hl);
            free(h);
        }
        free(secret);
        secret = NULL;
    }
    /* URL (server_name's rewrite), CA, client certificate, verification,
       oldest TLS version */
    rw_tls_conn_free(&t->conn);
    rw_err terr;
    rw_err_init(&terr);
    if (rw_tls_client_setup(e, &t->tls, t->url, &t->conn, &terr) != RW_OK) {
        rw_warn("alertmanager %s: %s", t->name, terr.msg);
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->payload.p);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->payload.len);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    t->errbuf[0] = 0;
    if (t->has_basic) {
        const char *pw = t->password;
        if (t->password_file[0]) {
            secret = read_secret(t->password_file);
            if (!secret) {
                rw_warn("alertmanager %s: cannot read password_file %s", t->name,
                        t->password_file);
                return -1;
            }
            pw = secret;
        }
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, t->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, pw); /* curl copies it */
        free(secret);
    }
    t->batch_first = first;
    t->batch_n = cnt;
    t->start_ns = rw_mono_ns();
    t->inflight = 1;
    if (curl_multi_add_handle(n->multi, e) != CURLM_OK) {
        t->inflight = 0;
        rw_tls_conn_free(&t->conn);
        return -1;
    }
    return 0;
}

static void fail_backoff(am_target *t)
{
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (t->backoff_ms > BACKOFF_MAX_MS)
        t->backoff_ms = BACKOFF_MAX_MS;
    t->next_try_ns = rw_mono_ns() + t->backoff_ms * 1000000;
}

/* A request ended (n->mu held). */
static void finish_request(rw_notifier *n, am_target *t, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(n->multi, t->easy);
    t->inflight = 0;
    rw_tls_conn_free(&t->conn);
    rw_histogram_observe(t->m_latency, (double)(rw_mono_ns() - t->start_ns) / 1e9);
    if (t->retired)
        return;
    uint64_t end = t->batch_first + t->batch_n;
    if (res == CURLE_OK && code >= 200 && code < 300) {
        if (t->cursor < end)
            t->cursor = end;
        t->sent += t->batch_n;
        rw_counter_add(t->m_sent, t->batch_n);
        if (t->backoff_ms)
            rw_info("alertmanager %s: delivering again", t->name);
        t->backoff_ms = 0;
        t->next_try_ns = 0;
    } else if (res == CURLE_OK && code >= 400 && code < 500 && code != 429) {
        /* the Alertmanager refuses these alerts: retrying cannot help */
        rw_counter_add(t->m_errors, 1);
        rw_warn("alertmanager %s refused %zu alerts with HTTP %ld; dropped", t->name,
                t->batch_n, code);
        if (t->cursor < end)
            t->cursor = end;
        n->dropped += t->batch_n;
        rw_counter_add(n->m_dropped, t->batch_n);
    } else {
        rw_counter_add(t->m_errors, 1);
        fail_backoff(t);
        if (res != CURLE_OK)
            rw_warn("alertmanager %s: sending %zu alerts failed: %s; retry in %lldms",
                    t->name, t->batch_n, t->errbuf[0] ? t->errbuf : curl_easy_strerror(res),
                    (long long)t->backoff_ms);
        else
            rw_warn("alertmanager %s: sending %zu alerts failed: HTTP %ld; retry in %lldms",
                    t->name, t->batch_n, code, (long long)t->backoff_ms);
    }
    if (t->cursor < n->head)
        t->cursor = n->head;
    trim(n);
    update_gauges(n);
}

static int pending(const rw_notifier *n)
{
    for (size_t i = 0; i < n->nams; i++)
        if (n->ams[i]->inflight || n->ams[i]->cursor < n->tail)
            return 1;
    for (size_t i = 0; i < n->nretired; i++)
        if (n->retired[i]->inflight)
            return 1;
    return 0;
}

/* Frees retired targets whose request has ended (n->mu held). */
static void reap_retired(rw_notifier *n)
{
    size_t w = 0;
    for (size_t i = 0; i < n->nretired; i++) {
        if (n->retired[i]->inflight)
            n->retired[w++] = n->retired[i];
        else
            target_free(n->retired[i]);
    }
    n->nretired = w;
}

static void *sender(void *arg)
{
    rw_notifier *n = arg;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        int64_t now = rw_mono_ns();
        if (n->stop && (!pending(n) || now >= n->stop_deadline_ns)) {
            pthread_mutex_unlock(&n->mu);
            break;
        }
        reap_retired(n);
        int64_t wait_ms = 1000;
        for (size_t i = 0; i < n->nams; i++) {
            am_target *t = n->ams[i];
            if (t->inflight || t->cursor >= n->tail)
                continue;
            if (t->cursor < n->head)
                t->cursor = n->head;
            if (t->next_try_ns && now < t->next_try_ns) {
                int64_t w = (t->next_try_ns - now) / 1000000 + 1;
                if (w < wait_ms)
                    wait_ms = w;
                continue;
            }
            if (start_request(n, t) != 0) {
                rw_counter_add(t->m_errors, 1);
                fail_backoff(t);
            }
        }
        if (n->stop) {
            int64_t left = (n->stop_deadline_ns - now) / 1000000 + 1;
            if (left < wait_ms)
                wait_ms = left > 0 ? left : 0;
        }
        pthread_mutex_unlock(&n->mu);

        int running = 0, done = 0;
        curl_multi_perform(n->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(n->multi, &left))) {
            done = 1;
            if (msg->msg != CURLMSG_DONE)
                continue;
            am_target *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode res = msg->data.result;
            pthread_mutex_lock(&n->mu);
            if (t)
                finish_request(n, t, res);
            pthread_mutex_unlock(&n->mu);
        }
        if (!done) /* after a completion, the next batch goes out at once */
            curl_multi_poll(n->multi, NULL, 0, (int)wait_ms, NULL);
    }
    /* abandon what is still in flight at the deadline */
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->nams; i++)
        if (n->ams[i]->inflight) {
            curl_multi_remove_handle(n->multi, n->ams[i]->easy);
            n->ams[i]->inflight = 0;
            rw_tls_conn_free(&n->ams[i]->conn);
        }
    for (size_t i = 0; i < n->nretired; i++)
        if (n->retired[i]->inflight) {
            curl_multi_remove_handle(n->multi, n->retired[i]->easy);
            n->retired[i]->inflight = 0;
            rw_tls_conn_free(&n->retired[i]->conn);
        }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- public ---- */

rw_notifier *rw_notifier_new(const rw_alerting_config *cfg, const rw_label *external_labels,
                             size_t nexternal, rw_metrics *m, rw_err *err)
{
    rw_notifier *n = calloc(1, sizeof *n);
    if (!n) {
        rw_err_set(err, RW_NOMEM, "notifier: out of memory");
        return NULL;
    }
    /* reference-counted by libcurl, thread-safe since 7.84 */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&n->mu, NULL);
    n->metrics = m;
    n->m_dropped = rw_metrics_counter(m, "rwgate_notifications_dropped_total", NULL,
                                      "Alerts dropped before every Alertmanager received them "
                                      "(queue full or refused).");
    n->m_qlen = rw_metrics_gauge(m, "rwgate_notifications_queue_length", NULL,
                                 "Alerts waiting for the slowest Alertmanager.");
    n->m_qcap = rw_metrics_gauge(m, "rwgate_notifications_queue_capacity", NULL,
                                 "Capacity of the alert queue.");
    n->m_discovered = rw_metrics_gauge(m, "rwgate_notifications_alertmanagers_discovered", NULL,
                                       "Alertmanagers alerts are sent to.");
    n->cap = cfg && cfg->queue_capacity > 0 ? (size_t)cfg->queue_capacity : 10000;
    n->ring = calloc(n->cap, sizeof *n->ring);
    n->multi = curl_multi_init();
    n->relabel = rw_relabel_state_new();
    n->relabel_arena = rw_arena_new(0, 0);
    if (!n->ring || !n->multi || !n->relabel || !n->relabel_arena ||
        copy_external(external_labels, nexternal, &n->ext, &n->ext_buf) != RW_OK ||
        build_targets(n, cfg, &n->ams, &n->nams, err) != RW_OK) {
        if (err && err->code == RW_OK)
            rw_err_set(err, RW_NOMEM, "notifier: out of memory");
        rw_notifier_free(n);
        return NULL;
    }
    n->next = nexternal;
    n->cfg = cfg;
    update_gauges(n);
    if (pthread_create(&n->thread, NULL, sender, n) != 0) {
        rw_err_set(err, RW_INTERNAL, "notifier: cannot start the sender thread");
        rw_notifier_free(n);
        return NULL;
    }
    n->thread_started = 1;
    return n;
}

rw_rc rw_notifier_reconfigure(rw_notifier *n, const rw_alerting_config *cfg,
                              const rw_label *external_labels, size_t nexternal, rw_err *err)
{
    am_target **nt = NULL;
    size_t nn = 0;
    rw_rc rc = build_targets(n, cfg, &nt, &nn, err);
    if (rc != RW_OK)
        return rc;
    rw_label *ext;
    char *ext_buf;
    if (copy_external(external_labels, nexternal, &ext, &ext_buf) != RW_OK) {
        for (size_t i = 0; i < nn; i++)
            target_free(nt[i]);
        free(nt);
        return rw_err_set(err, RW_NOMEM, "notifier: out of memory");
    }
    pthread_mutex_lock(&n->mu);
    size_t cap = cfg && cfg->queue_capacity > 0 ? (size_t)cfg->queue_capacity : 10000;
    /* targets that stay keep their cursor, backoff and counts */
    for (size_t i = 0; i < nn; i++) {
        nt[i]->cursor = n->head; /* a new target gets everything queued */
        for (size_t j = 0; j < n->nams; j++) {
            am_target *o = n->ams[j];
            if (o && target_same(o, nt[i])) {
                nt[i]->cursor = o->cursor;
                nt[i]->next_try_ns = o->next_try_ns;
                nt[i]->backoff_ms = o->backoff_ms;
                nt[i]->sent = o->sent;
            }
        }
    }
    am_target **keep = realloc(n->retired, (n->nretired + n->nams + 1) * sizeof *keep);
    if (!keep) {
        pthread_mutex_unlock(&n->mu);
        for (size_t i = 0; i < nn; i++)
            target_free(nt[i]);
        free(nt);
        free(ext);
        free(ext_buf);
        return rw_err_set(err, RW_NOMEM, "notifier: out of memory");
    }
    n->retired = keep;
    for (size_t j = 0; j < n->nams; j++) {
        /* the old objects finish their request (if any) and are freed by
         * the sender thread */
        n->ams[j]->retired = 1;
        n->retired[n->nretired++] = n->ams[j];
    }
    free(n->ams);
    n->ams = nt;
    n->nams = nn;
    free(n->ext);
    free(n->ext_buf);
    n->ext = ext;
    n->ext_buf = ext_buf;
    n->next = nexternal;
    n->cfg = cfg;
    if (resize(n, cap) != RW_OK)
        rw_warn("notifier: cannot resize the queue to %zu; keeping %zu", cap, n->cap);
    trim(n);
    update_gauges(n);
    pthread_mutex_unlock(&n->mu);
    curl_multi_wakeup(n->multi);
    return RW_OK;
}

void rw_notifier_send(rw_notifier *n, const rw_alert_msg *alerts, size_t n_alerts)
{
    if (!n || !n_alerts)
        return;
    char **json = calloc(n_alerts, sizeof *json);
    size_t *lens = calloc(n_alerts, sizeof *lens);
    if (!json || !lens) {
        free(json);
        free(lens);
        return;
    }
    pthread_mutex_lock(&n->mu);
    int none = n->nams == 0;
    /* encode under the lock: external labels and relabel rules may be
     * swapped by a reload */
    const rw_relabel_config *rules = n->cfg ? n->cfg->alert_relabel_configs.v : NULL;
    size_t nrules = n->cfg ? n->cfg->alert_relabel_configs.n : 0;
    for (size_t i = 0; i < n_alerts && !none; i++) {
        size_t nl;
        rw_label *l = merge_labels(&alerts[i], n->ext, n->next, &nl);
        if (!l)
            continue;
        const rw_label *fl = l;
        size_t fn = nl;
        if (nrules && nl) {
            rw_labels out = {NULL, 0};
            rw_err e;
            rw_err_init(&e);
            rw_relabel_result r = rw_relabel_apply(n->relabel, rules, nrules, 0, n->relabel_arena,
                                                   l, nl, &out, &e);
            if (r == RW_RELABEL_KEPT) {
                fl = out.v;
                fn = out.n;
            } else {
                if (r != RW_RELABEL_DROPPED)
                    rw_warn("notifier: alert_relabel_configs failed on an alert: %s", e.msg);
                fn = 0;
            }
        }
        if (fn > 0) {
            rw_buf b;
            rw_buf_init(&b, 0);
            if (encode_labels(&alerts[i], fl, fn, &b) == RW_OK)
                json[i] = rw_buf_detach(&b, &lens[i]);
            rw_buf_free(&b);
        }
        free(l);
    }
    rw_arena_reset(n->relabel_arena);
    for (size_t i = 0; i < n_alerts; i++)
        if (json[i])
            push(n, json[i], lens[i]);
    update_gauges(n);
    pthread_mutex_unlock(&n->mu);
    free(json);
    free(lens);
    if (!none)
        curl_multi_wakeup(n->multi);
}

void rw_notifier_free(rw_notifier *n)
{
    if (!n)
        return;
    if (n->thread_started) {
        pthread_mutex_lock(&n->mu);
        n->stop = 1;
        n->stop_deadline_ns = rw_mono_ns() + (int64_t)RW_NOTIFY_FLUSH_MS * 1000000;
        /* a backoff longer than the flush bound is cut short: one last try */
        for (size_t i = 0; i < n->nams; i++)
            n->ams[i]->next_try_ns = 0;
        pthread_mutex_unlock(&n->mu);
        curl_multi_wakeup(n->multi);
        pthread_join(n->thread, NULL);
    }
    for (size_t i = 0; i < n->nams; i++)
        target_free(n->ams[i]);
    free(n->ams);
    for (size_t i = 0; i < n->nretired; i++)
        target_free(n->retired[i]);
    free(n->retired);
    if (n->ring)
        for (uint64_t s = n->head; s < n->tail; s++)
            free(n->ring[s % n->cap].json);
    free(n->ring);
    if (n->multi)
        curl_multi_cleanup(n->multi);
    free(n->ext);
    free(n->ext_buf);
    rw_relabel_state_free(n->relabel);
    rw_arena_free(n->relabel_arena);
    pthread_mutex_destroy(&n->mu);
    free(n);
    curl_global_cleanup();
}

size_t rw_notifier_queue_length(rw_notifier *n)
{
    pthread_mutex_lock(&n->mu);
    size_t l = (size_t)(n->tail - n->head);
    pthread_mutex_unlock(&n->mu);
    return l;
}

uint64_t rw_notifier_dropped(rw_notifier *n)
{
    pthread_mutex_lock(&n->mu);
    uint64_t d = n->dropped;
    pthread_mutex_unlock(&n->mu);
    return d;
}

uint64_t rw_notifier_sent(rw_notifier *n, size_t am)
{
    pthread_mutex_lock(&n->mu);
    uint64_t s = am < n->nams ? n->ams[am]->sent : 0;
    pthread_mutex_unlock(&n->mu);
    return s;
}

size_t rw_notifier_alertmanagers(rw_notifier *n)
{
    pthread_mutex_lock(&n->mu);
    size_t k = n->nams;
    pthread_mutex_unlock(&n->mu);
    return k;
}
