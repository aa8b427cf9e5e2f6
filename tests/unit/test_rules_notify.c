/* test_rules_notify.c - unit tests of the Alertmanager client
 * (rules/notify.h): the `alerting:` configuration table and its refusals,
 * the JSON an alert becomes, and the sender against in-process HTTP
 * receivers that record what arrives: batches of at most 64, external
 * labels, alert_relabel_configs (drop, replace, labeldrop), basic auth / bearer / credential files as real request headers,
 * retries until a failing receiver recovers, 4xx drops, queue overflow
 * dropping the oldest, a dead Alertmanager not holding back a live one,
 * reconfiguration keeping the queue, and the bounded flush on free.
 * Waits poll for a condition with a generous deadline; nothing is timed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/cfg.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "rules/notify.h"
#include "support/tmpdir.h"
#include "test.h"

/* ---- a recording Alertmanager ---- */

typedef struct receiver {
    pthread_mutex_t mu;
    int status;          /* answer with this */
    int requests;
    int alerts;          /* alerts in 2xx-answered requests */
    int max_batch;
    char auth[256];      /* last Authorization header */
    char path[256];
    char route[128];     /* the route row refers to this string */
    rw_buf bodies;       /* every body, newline-separated */
    rw_http_server *srv;
    int port;
} receiver;

static size_t count_alerts(const char *body, size_t len)
{
    /* each alert object starts with {"labels": */
    size_t n = 0;
    for (size_t i = 0; i + 10 <= len; i++)
        if (memcmp(body + i, "{\"labels\":", 10) == 0)
            n++;
    return n;
}

static void on_alerts(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    receiver *r = ctx;
    size_t len;
    const char *body = rw_http_body(req, &len);
    const char *auth = rw_http_header(req, "Authorization");
    pthread_mutex_lock(&r->mu);
    r->requests++;
    snprintf(r->auth, sizeof r->auth, "%s", auth ? auth : "");
    snprintf(r->path, sizeof r->path, "%s", rw_http_path(req));
    int n = (int)count_alerts(body ? body : "", body ? len : 0);
    if (n > r->max_batch)
        r->max_batch = n;
    int status = r->status;
    if (status >= 200 && status < 300) {
        r->alerts += n;
        rw_buf_append(&r->bodies, body ? body : "", body ? len : 0);
        rw_buf_putc(&r->bodies, '\n');
    }
    pthread_mutex_unlock(&r->mu);
    resp->status = status;
}

static void receiver_start(receiver *r, const char *prefix)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->status = 200;
    rw_buf_init(&r->bodies, 0);
    rw_routes *routes = rw_routes_new();
    snprintf(r->route, sizeof r->route, "%s/api/v2/alerts", prefix);
    rw_http_route row = {r->route, RW_HTTP_POST, RW_PERM_OPEN, 16u << 20, NULL, on_alerts, r};
    rw_err e;
    rw_routes_add(routes, &row, &e);
    rw_http_opts ho = {.listen = "127.0.0.1:0"};
    r->srv = rw_http_start(&ho, routes, &e);
    rw_routes_free(routes);
    CHECK(r->srv != NULL);
    r->port = r->srv ? rw_http_port(r->srv) : 0;
}

static void receiver_stop(receiver *r)
{
    if (r->srv)
        rw_http_stop(r->srv);
    rw_buf_free(&r->bodies);
    pthread_mutex_destroy(&r->mu);
}

static int get_int(receiver *r, int *field)
{
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* Polls cond() for up to 20 s. */
#define WAIT_FOR(cond)                                                   \
    do {                                                                 \
        int64_t until_ = rw_mono_ns() + 20000000000LL;                   \
        while (!(cond) && rw_mono_ns() < until_)                         \
            usleep(10000);                                               \
    } while (0)

/* ---- configuration ---- */

static int load(const char *yaml, rw_alerting_config *c, rw_err *e)
{
    rw_cfg_defaults(&rw_alerting_config_table, c);
    rw_err_init(e);
    return rw_cfg_load_string(&rw_alerting_config_table, c, yaml, strlen(yaml), "t.yml", e) ==
                   RW_OK
               ? 0
               : -1;
}

static void test_config(void)
{
    rw_alerting_config c;
    rw_err e;
    CHECK(load("alertmanagers:\n"
               "- static_configs: [{targets: ['a:9093', 'b:9093']}]\n"
               "  scheme: https\n"
               "  path_prefix: /am\n"
               "  timeout: 3s\n"
               "  api_version: v2\n"
               "  basic_auth: {username: u, password: p}\n"
               "  tls_config: {insecure_skip_verify: true, server_name: am.example,"
               " min_version: TLS13}\n"
               "- static_configs: [{targets: ['c:9093']}]\n"
               "  authorization: {credentials: tok}\n"
               "notification_queue_capacity: 50\n",
               &c, &e) == 0);
    CHECK_MSG(e.code == RW_OK, "%s", e.msg);
    CHECK(c.alertmanagers.n == 2);
    CHECK(c.queue_capacity == 50);
    const rw_am_config *a = c.alertmanagers.v;
    CHECK(a[0].scheme == RW_AM_HTTPS && a[0].timeout_ms == 3000);
    CHECK_STR(a[0].path_prefix, "/am");
    CHECK_STR(a[0].basic_auth.username, "u");
    CHECK(a[0].tls_config.insecure_skip_verify == 1);
    CHECK_STR(a[0].tls_config.server_name, "am.example");
    CHECK(a[0].tls_config.min_version == RW_TLS13);
    CHECK(a[1].tls_config.min_version == RW_TLS12); /* the default */
    CHECK(a[1].scheme == RW_AM_HTTP && a[1].timeout_ms == 10000);
    CHECK_STR(a[1].authorization.type, "Bearer");
    CHECK_STR(a[1].authorization.credentials, "tok");
    rw_cfg_free(&rw_alerting_config_table, &c);

    CHECK(load("", &c, &e) == 0 && c.queue_capacity == 10000 && c.alertmanagers.n == 0);
    rw_cfg_free(&rw_alerting_config_table, &c);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"alertmanagers: [{api_version: v1, static_configs: [{targets: ['a:1']}]}]",
         "v1 is not supported"},
        {"alertmanagers: [{api_version: v3}]", "expected v2"},
        {"alertmanagers: [{basic_auth: {username: u}, authorization: {credentials: x}}]",
         "at most one of basic_auth"},
        {"alertmanagers: [{authorization: {type: Basic, credentials: x}}]",
         "use \"basic_auth\" instead"},
        {"alertmanagers: [{basic_auth: {password: a, password_file: /etc/hostname}}]",
         "password & password_file"},
        {"alertmanagers: [{tls_config: {cert_file: /etc/hostname}}]",
         "specified without client key file"},
        {"alertmanagers: [{tls_config: {ca_file: /nonexistent/ca.pem}}]", "unable to read"},
        {"alertmanagers: [{tls_config: {min_version: TLS11}}]", "min_version"},
        {"alertmanagers: [{static_configs: [{targets: ['http://a:9093']}]}]", "must be host:port"},
        {"alertmanagers: [{scheme: ftp}]", "scheme"},
        {"alertmanagers: [{path_prefix: am}]", "must start with /"},
        {"alertmanagers: [{timeout: 0s}]", "timeout"},
        {"alertmanagers: [{follow_redirect: true}]", "follow_redirect"},
        {"notification_queue_capacity: 0", "notification_queue_capacity"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = load(bad[i].yaml, &c, &e);
        CHECK_MSG(rc != 0, "accepted: %s", bad[i].yaml);
        CHECK_MSG(strstr(e.msg, bad[i].want) != NULL, "%s\n   got  %s\n   want %s", bad[i].yaml,
                  e.msg, bad[i].want);
        rw_cfg_free(&rw_alerting_config_table, &c);
    }
}

/* ---- encoding ---- */

static void test_encode(void)
{
    rw_label labels[] = {{"severity", "page"}, {"alertname", "Down"}, {"empty", ""},
                         {"cluster", "own"}};
    rw_label ann[] = {{"summary", "a \"quoted\" <b>"}, {"description", "line1\nline2"}};
    rw_label ext[] = {{"cluster", "ext"}, {"region", "eu"}};
    rw_alert_msg a = {labels, 4, ann, 2, 1700000000123, 1700000300000, "http://rw/graph?g0.expr=up"};
    rw_buf b;
    rw_buf_init(&b, 0);
    CHECK(rw_notifier_encode(&a, ext, 2, &b) == RW_OK);
    CHECK_STR(b.p, "{\"labels\":{\"alertname\":\"Down\",\"cluster\":\"own\",\"region\":\"eu\","
                   "\"severity\":\"page\"},\"annotations\":{\"description\":\"line1\\nline2\","
                   "\"summary\":\"a \\\"quoted\\\" \\u003cb\\u003e\"},"
                   "\"startsAt\":\"2023-11-14T22:13:20.123Z\",\"endsAt\":\"2023-11-14T22:18:20.000Z\","
                   "\"generatorURL\":\"http://rw/graph?g0.expr=up\"}");
    /* no times, no URL: those keys are left out */
    rw_buf_reset(&b);
    rw_alert_msg bare = {labels + 1, 1, NULL, 0, 0, 0, NULL};
    CHECK(rw_notifier_encode(&bare, NULL, 0, &b) == RW_OK);
    CHECK_STR(b.p, "{\"labels\":{\"alertname\":\"Down\"},\"annotations\":{}}");
    rw_buf_free(&b);
}

/* ---- sending ---- */

static rw_alerting_config *cfg_for(int *ports, size_t nports, const char *extra, rw_err *e)
{
    static char yaml[4096];
    size_t k = (size_t)snprintf(yaml, sizeof yaml, "alertmanagers:\n- static_configs:\n  - targets: [");
    for (size_t i = 0; i < nports; i++)
        k += (size_t)snprintf(yaml + k, sizeof yaml - k, "%s'127.0.0.1:%d'", i ? ", " : "", ports[i]);
    k += (size_t)snprintf(yaml + k, sizeof yaml - k, "]\n  timeout: 5s\n%s", extra ? extra : "");
    rw_alerting_config *c = calloc(1, sizeof *c);
    if (load(yaml, c, e) != 0) {
        fprintf(stderr, "config: %s\n%s\n", e->msg, yaml);
        rw_cfg_free(&rw_alerting_config_table, c);
        free(c);
        return NULL;
    }
    return c;
}

static void cfg_release(rw_alerting_config *c)
{
    if (c) {
        rw_cfg_free(&rw_alerting_config_table, c);
        free(c);
    }
}

static void send_n(rw_notifier *n, int count, const char *name)
{
    for (int i = 0; i < count; i++) {
        char id[32];
        snprintf(id, sizeof id, "%d", i);
        rw_label l[] = {{"alertname", name}, {"id", id}};
        rw_alert_msg a = {l, 2, NULL, 0, 1700000000000, 0, NULL};
        rw_notifier_send(n, &a, 1);
    }
}

static void test_batches_and_labels(void)
{
    receiver r;
    receiver_start(&r, "/pre");
    rw_err e;
    rw_alerting_config *c = cfg_for(&r.port, 1, "  path_prefix: /pre/\n", &e);
    CHECK(c != NULL);
    rw_label ext[] = {{"replica", "central"}};
    rw_metrics *m = rw_metrics_new();
    rw_notifier *n = rw_notifier_new(c, ext, 1, m, &e);
    CHECK(n != NULL);
    CHECK(rw_notifier_alertmanagers(n) == 1);
    /* one call with 150 alerts: batches of at most 64 */
    rw_alert_msg *many = calloc(150, sizeof *many);
    rw_label(*ls)[2] = calloc(150, sizeof *ls);
    char (*ids)[16] = calloc(150, sizeof *ids);
    for (int i = 0; i < 150; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i);
        ls[i][0] = (rw_label){"alertname", "Batch"};
        ls[i][1] = (rw_label){"id", ids[i]};
        many[i] = (rw_alert_msg){ls[i], 2, NULL, 0, 1700000000000, 0, NULL};
    }
    rw_notifier_send(n, many, 150);
    WAIT_FOR(get_int(&r, &r.alerts) >= 150);
    CHECK_INT(get_int(&r, &r.alerts), 150);
    CHECK(get_int(&r, &r.max_batch) <= RW_NOTIFY_MAX_BATCH);
    CHECK(get_int(&r, &r.requests) >= 3);
    CHECK_STR(r.path, "/pre/api/v2/alerts");
    pthread_mutex_lock(&r.mu);
    CHECK(strstr(r.bodies.p, "\"replica\":\"central\"") != NULL);
    CHECK(strstr(r.bodies.p, "\"id\":\"149\"") != NULL);
    pthread_mutex_unlock(&r.mu);
    WAIT_FOR(rw_notifier_sent(n, 0) == 150);
    CHECK(rw_notifier_sent(n, 0) == 150);
    WAIT_FOR(rw_notifier_queue_length(n) == 0);
    CHECK(rw_notifier_queue_length(n) == 0);
    rw_buf out;
    rw_buf_init(&out, 0);
    rw_metrics_render(m, &out);
    char want[128];
    snprintf(want, sizeof want,
             "rwgate_notifications_sent_total{alertmanager=\"http://127.0.0.1:%d/pre\"} 150", r.port);
    CHECK_MSG(strstr(out.p, want) != NULL, "%s", out.p);
    CHECK(strstr(out.p, "rwgate_notifications_queue_capacity 10000") != NULL);
    CHECK(strstr(out.p, "rwgate_notifications_alertmanagers_discovered 1") != NULL);
    CHECK(strstr(out.p, "rwgate_notifications_latency_seconds_count") != NULL);
    rw_buf_free(&out);
    rw_notifier_free(n);
    rw_metrics_free(m);
    cfg_release(c);
    free(many);
    free(ls);
    free(ids);
    receiver_stop(&r);
}

static void test_auth_headers(void)
{
    receiver r;
    receiver_start(&r, "");
    rw_err e;
    char *dir = test_mkdtemp("rw-notify");
    char pwfile[512], tokfile[512];
    snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
    snprintf(tokfile, sizeof tokfile, "%s/tok", dir);
    FILE *f = fopen(pwfile, "w");
    fputs("  s3cret\n", f);
    fclose(f);
    f = fopen(tokfile, "w");
    fputs("file-token\n", f);
    fclose(f);
    static const struct {
        const char *extra;
        const char *want;
    } cases[] = {
        /* base64("alice:pw") */
        {"  basic_auth: {username: alice, password: pw}\n", "Basic YWxpY2U6cHc="},
        /* base64("bob:s3cret"), the file trimmed */
        {"  basic_auth: {username: bob, password_file: %s}\n", "Basic Ym9iOnMzY3JldA=="},
        {"  authorization: {credentials: tok-123}\n", "Bearer tok-123"},
        {"  authorization: {type: Token, credentials_file: %s}\n", "Token file-token"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[1024];
        snprintf(extra, sizeof extra, cases[i].extra, i == 1 ? pwfile : tokfile);
        rw_alerting_config *c = cfg_for(&r.port, 1, extra, &e);
        CHECK(c != NULL);
        rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
        int before = get_int(&r, &r.alerts);
        send_n(n, 1, "Auth");
        WAIT_FOR(get_int(&r, &r.alerts) > before);
        pthread_mutex_lock(&r.mu);
        CHECK_MSG(strcmp(r.auth, cases[i].want) == 0, "case %zu: got \"%s\" want \"%s\"", i, r.auth,
                  cases[i].want);
        pthread_mutex_unlock(&r.mu);
        rw_notifier_free(n);
        cfg_release(c);
    }
    test_rmtree(dir);
    receiver_stop(&r);
}

static void test_retry_until_recovered(void)
{
    receiver r;
    receiver_start(&r, "");
    r.status = 503;
    rw_err e;
    rw_alerting_config *c = cfg_for(&r.port, 1, NULL, &e);
    rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
    send_n(n, 10, "Retry");
    WAIT_FOR(get_int(&r, &r.requests) >= 2); /* it retried */
    CHECK(get_int(&r, &r.requests) >= 2);
    CHECK(get_int(&r, &r.alerts) == 0);
    CHECK(rw_notifier_queue_length(n) == 10);
    pthread_mutex_lock(&r.mu);
    r.status = 200;
    pthread_mutex_unlock(&r.mu);
    WAIT_FOR(get_int(&r, &r.alerts) == 10);
    CHECK_INT(get_int(&r, &r.alerts), 10);
    CHECK(rw_notifier_dropped(n) == 0);
    rw_notifier_free(n);

    /* a 4xx other than 429 drops the batch */
    r.status = 400;
    n = rw_notifier_new(c, NULL, 0, NULL, &e);
    int before = get_int(&r, &r.requests);
    send_n(n, 3, "Refused");
    WAIT_FOR(rw_notifier_dropped(n) == 3);
    CHECK(rw_notifier_dropped(n) == 3);
    /* one request, or more when the sender took the first alert before the
       others were queued: never more than the alerts, and none retried */
    int sent = get_int(&r, &r.requests) - before;
    CHECK(sent >= 1 && sent <= 3);
    usleep(1500000); /* past the first retry backoffs (0.5 s, 1 s) */
    CHECK_INT(get_int(&r, &r.requests) - before, sent);
    CHECK(rw_notifier_queue_length(n) == 0);
    rw_notifier_free(n);
    cfg_release(c);
    receiver_stop(&r);
}

/* A port nothing listens on: bind one, note it, close it (connections are
 * refused at once). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int p = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        p = ntohs(a.sin_port);
    close(fd);
    return p;
}

static void test_overflow_and_reconfigure(void)
{
    rw_err e;
    int dead = dead_port();
    rw_alerting_config *c = cfg_for(&dead, 1, "notification_queue_capacity: 10\n", &e);
    CHECK(c != NULL);
    rw_metrics *m = rw_metrics_new();
    rw_notifier *n = rw_notifier_new(c, NULL, 0, m, &e);
    send_n(n, 25, "Overflow");
    CHECK(rw_notifier_queue_length(n) == 10);
    CHECK(rw_notifier_dropped(n) == 15);
    rw_buf out;
    rw_buf_init(&out, 0);
    rw_metrics_render(m, &out);
    CHECK(strstr(out.p, "rwgate_notifications_dropped_total 15") != NULL);
    CHECK(strstr(out.p, "rwgate_notifications_queue_length 10") != NULL);
    rw_buf_free(&out);

    /* the Alertmanager's address is fixed by a reload: the queued (newest)
     * ten arrive there */
    receiver r;
    receiver_start(&r, "");
    rw_alerting_config *c2 = cfg_for(&r.port, 1, "notification_queue_capacity: 10\n", &e);
    CHECK(rw_notifier_reconfigure(n, c2, NULL, 0, &e) == RW_OK);
    cfg_release(c);
    WAIT_FOR(get_int(&r, &r.alerts) == 10);
    CHECK_INT(get_int(&r, &r.alerts), 10);
    pthread_mutex_lock(&r.mu);
    CHECK(strstr(r.bodies.p, "\"id\":\"24\"") != NULL);  /* newest kept */
    CHECK(strstr(r.bodies.p, "\"id\":\"14\"") == NULL);  /* oldest dropped */
    pthread_mutex_unlock(&r.mu);
    /* a larger queue on reload keeps what is queued */
    rw_alerting_config *c3 = cfg_for(&r.port, 1, "notification_queue_capacity: 100\n", &e);
    CHECK(rw_notifier_reconfigure(n, c3, NULL, 0, &e) == RW_OK);
    cfg_release(c2);
    send_n(n, 5, "After");
    WAIT_FOR(get_int(&r, &r.alerts) == 15);
    CHECK_INT(get_int(&r, &r.alerts), 15);
    rw_notifier_free(n);
    cfg_release(c3);
    rw_metrics_free(m);
    receiver_stop(&r);
}

static void test_dead_does_not_block_live(void)
{
    receiver live;
    receiver_start(&live, "");
    int ports[2] = {dead_port(), live.port};
    rw_err e;
    rw_alerting_config *c = cfg_for(ports, 2, NULL, &e);
    rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
    CHECK(rw_notifier_alertmanagers(n) == 2);
    for (int round = 0; round < 5; round++) {
        send_n(n, 20, "Both");
        WAIT_FOR(get_int(&live, &live.alerts) == 20 * (round + 1));
    }
    CHECK_INT(get_int(&live, &live.alerts), 100);
    /* the dead one still waits for all of them */
    CHECK(rw_notifier_queue_length(n) == 100);
    CHECK(rw_notifier_sent(n, 0) == 0);
    int64_t t0 = rw_mono_ns();
    rw_notifier_free(n); /* bounded: gives up on the dead one */
    CHECK((rw_mono_ns() - t0) / 1000000 < RW_NOTIFY_FLUSH_MS + 2000);
    cfg_release(c);
    receiver_stop(&live);
}

static void test_relabel(void)
{
    receiver r;
    receiver_start(&r, "");
    rw_err e;
    /* external labels first, then the rules: drop info alerts, copy the
     * cluster into a new label, drop a noisy label */
    rw_alerting_config *c = cfg_for(&r.port, 1,
                                    "alert_relabel_configs:\n"
                                    "- {source_labels: [severity], regex: info, action: drop}\n"
                                    "- {source_labels: [cluster], target_label: origin, replacement: 'dc-$1'}\n"
                                    "- {regex: pod, action: labeldrop}\n",
                                    &e);
    CHECK(c != NULL);
    CHECK(c && c->alert_relabel_configs.n == 3);
    rw_label ext[] = {{"cluster", "c1"}};
    rw_notifier *n = rw_notifier_new(c, ext, 1, NULL, &e);
    rw_label info[] = {{"alertname", "Quiet"}, {"severity", "info"}};
    rw_label crit[] = {{"alertname", "Loud"}, {"severity", "critical"}, {"pod", "p-1"}};
    rw_alert_msg msgs[] = {{info, 2, NULL, 0, 0, 0, NULL}, {crit, 3, NULL, 0, 0, 0, NULL}};
    rw_notifier_send(n, msgs, 2);
    WAIT_FOR(get_int(&r, &r.alerts) == 1);
    rw_notifier_free(n); /* flushes: nothing else may arrive */
    CHECK_INT(get_int(&r, &r.alerts), 1);
    pthread_mutex_lock(&r.mu);
    CHECK_MSG(strstr(r.bodies.p, "{\"labels\":{\"alertname\":\"Loud\",\"cluster\":\"c1\","
                                 "\"origin\":\"dc-c1\",\"severity\":\"critical\"}") != NULL,
              "%s", r.bodies.p);
    CHECK(strstr(r.bodies.p, "Quiet") == NULL);
    CHECK(strstr(r.bodies.p, "pod") == NULL);
    pthread_mutex_unlock(&r.mu);
    cfg_release(c);

    /* a bad rule is refused with its path */
    rw_alerting_config bad;
    CHECK(load("alert_relabel_configs: [{action: hashmod, target_label: x}]\n", &bad, &e) != 0);
    CHECK_MSG(strstr(e.msg, "alert_relabel_configs[0]") != NULL, "%s", e.msg);
    rw_cfg_free(&rw_alerting_config_table, &bad);
    receiver_stop(&r);
}

static void test_flush_on_free_and_no_alertmanagers(void)
{
    receiver r;
    receiver_start(&r, "");
    rw_err e;
    rw_alerting_config *c = cfg_for(&r.port, 1, NULL, &e);
    rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
    send_n(n, 130, "Flush");
    rw_notifier_free(n); /* returns after delivering */
    CHECK_INT(get_int(&r, &r.alerts), 130);
    cfg_release(c);
    receiver_stop(&r);

    /* no alertmanagers: sending is a no-op */
    rw_alerting_config none;
    CHECK(load("", &none, &e) == 0);
    n = rw_notifier_new(&none, NULL, 0, NULL, &e);
    CHECK(n != NULL);
    send_n(n, 5, "Nowhere");
    CHECK(rw_notifier_queue_length(n) == 0);
    rw_notifier_free(n);
    rw_cfg_free(&rw_alerting_config_table, &none);
}

int main(void)
{
    RUN(test_config);
    RUN(test_encode);
    RUN(test_batches_and_labels);
    RUN(test_auth_headers);
    RUN(test_retry_until_recovered);
    RUN(test_overflow_and_reconfigure);
    RUN(test_dead_does_not_block_live);
    RUN(test_relabel);
    RUN(test_flush_on_free_and_no_alertmanagers);
    TEST_DONE();
}
