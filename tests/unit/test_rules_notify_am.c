/* test_rules_notify_am.c - the Alertmanager client (rules/notify.h) against
 * a real Alertmanager (Debian prometheus-alertmanager) on a free loopback
 * port, checked through its own API (GET /api/v2/alerts):
 *  - labels (with external labels), annotations, startsAt and endsAt arrive
 *    as sent, and an alert resolved by rwgate disappears there;
 *  - alerts sent while the Alertmanager is down arrive once it is back;
 *  - over TLS (certificates made with openssl here) with a CA file, a
 *    server_name that differs from the address, and basic auth set up in
 *    the Alertmanager's --web.config.file; without the CA nothing is
 *    delivered, with insecure_skip_verify it is; a wrong password is a 401
 *    and the batch is dropped; an Alertmanager that requires client
 *    certificates gets alerts with cert_file/key_file and none without.
 * Waits poll with a generous deadline. */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/cfg.h"
#include "core/timeutil.h"
#include "rules/notify.h"
#include "support/tmpdir.h"
#include "test.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"
/* bcrypt of "am-pass" (Alertmanager's web config wants a hash) */
#define AM_PASS_HASH "$2b$12$LGsxxVcuyoTiXthwb3GyvO6t1iMMmji7mjSWdHeQXv9QASwO/H9Vu"

static char *dir;

/* a port for Alertmanager from below the kernel's ephemeral range
   (32768-60999 by default): a port from bind(0) is free only until an
   outgoing connection of a test running beside this one takes it */
static int free_port(void)
{
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int i = 0; i < 1000; i++) {
        int p = 12000 + (int)(rand_r(&seed) % 20000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return p;
    }
    return 0;
}

static size_t collect(char *p, size_t size, size_t nmemb, void *ud)
{
    rw_buf *b = ud;
    rw_buf_append(b, p, size * nmemb);
    return size * nmemb;
}

/* GET https?://127.0.0.1:port/path; returns the status, body in out. */
static long get(int tls, int port, const char *path, rw_buf *out)
{
    char url[256];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", tls ? "https" : "http", port, path);
    CURL *c = curl_easy_init();
    rw_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (tls) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_USERPWD, "alice:am-pass");
    }
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (!out->p)
        rw_buf_putc(out, 0);
    return code;
}

#define WAIT_FOR(cond)                                                   \
    do {                                                                 \
        int64_t until_ = rw_mono_ns() + 30000000000LL;                   \
        while (!(cond) && rw_mono_ns() < until_)                         \
            usleep(50000);                                               \
    } while (0)

/* Starts an Alertmanager on port; web_config may be NULL. */
static pid_t am_start(int port, const char *web_config, int tls)
{
    char cfg[512], data[512], log[512], listen[64], webarg[600];
    snprintf(cfg, sizeof cfg, "%s/am.yml", dir);
    snprintf(data, sizeof data, "%s/am-data", dir);
    snprintf(log, sizeof log, "%s/am.log", dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", port);
    FILE *f = fopen(cfg, "w");
    fputs("route:\n  receiver: blackhole\nreceivers:\n- name: blackhole\n", f);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(log, "a", stderr);
        (void)lf;
        char cfgarg[600], dataarg[600];
        snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
        snprintf(dataarg, sizeof dataarg, "--storage.path=%s", data);
        if (web_config) {
            snprintf(webarg, sizeof webarg, "--web.config.file=%s", web_config);
            execl(AM_BIN, AM_BIN, cfgarg, dataarg, listen, "--cluster.listen-address=", webarg,
                  (char *)NULL);
        }
        execl(AM_BIN, AM_BIN, cfgarg, dataarg, listen, "--cluster.listen-address=", (char *)NULL);
        _exit(127);
    }
    rw_buf b;
    rw_buf_init(&b, 0);
    WAIT_FOR(get(tls, port, "/-/ready", &b) == 200);
    CHECK_MSG(get(tls, port, "/-/ready", &b) == 200, "alertmanager on %d is not ready (see %s)", port,
              log);
    rw_buf_free(&b);
    return pid;
}

/* An Alertmanager that requires client certificates: readiness is probed
 * with the client certificate made for it. */
static pid_t am_client_cert_start(int port, const char *web_config)
{
    char cfg[512], data[512], log[512], listen[64], webarg[600], cfgarg[600], dataarg[600];
    snprintf(cfg, sizeof cfg, "%s/am.yml", dir);
    snprintf(data, sizeof data, "%s/am-data2", dir);
    snprintf(log, sizeof log, "%s/am2.log", dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", port);
    snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
    snprintf(dataarg, sizeof dataarg, "--storage.path=%s", data);
    snprintf(webarg, sizeof webarg, "--web.config.file=%s", web_config);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(log, "a", stderr);
        (void)lf;
        execl(AM_BIN, AM_BIN, cfgarg, dataarg, listen, "--cluster.listen-address=", webarg,
              (char *)NULL);
        _exit(127);
    }
    char url[128], cert[600], key[600];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/-/ready", port);
    snprintf(cert, sizeof cert, "%s/cli.crt", dir);
    snprintf(key, sizeof key, "%s/cli.key", dir);
    long code = 0;
    int64_t until = rw_mono_ns() + 30000000000LL;
    while (code != 200 && rw_mono_ns() < until) {
        CURL *c = curl_easy_init();
        rw_buf b;
        rw_buf_init(&b, 0);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        rw_buf_free(&b);
        if (code != 200)
            usleep(50000);
    }
    CHECK_MSG(code == 200, "alertmanager with client auth on %d is not ready (see %s)", port, log);
    return pid;
}

static void am_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static rw_alerting_config *load(const char *yaml)
{
    rw_alerting_config *c = calloc(1, sizeof *c);
    rw_cfg_defaults(&rw_alerting_config_table, c);
    rw_err e;
    rw_err_init(&e);
    if (rw_cfg_load_string(&rw_alerting_config_table, c, yaml, strlen(yaml), "t.yml", &e) != RW_OK) {
        fprintf(stderr, "config: %s\n", e.msg);
        CHECK(0);
        rw_cfg_free(&rw_alerting_config_table, c);
        free(c);
        return NULL;
    }
    return c;
}

static void release(rw_alerting_config *c)
{
    if (c) {
        rw_cfg_free(&rw_alerting_config_table, c);
        free(c);
    }
}

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int has(int tls, int port, const char *needle)
{
    rw_buf b;
    rw_buf_init(&b, 0);
    get(tls, port, "/api/v2/alerts", &b);
    int r = b.p && strstr(b.p, needle) != NULL;
    rw_buf_free(&b);
    return r;
}

static void send_alert(rw_notifier *n, const char *name, int64_t starts, int64_t ends)
{
    rw_label l[] = {{"alertname", name}, {"severity", "critical"}, {"instance", "etcd-1:2379"}};
    rw_label ann[] = {{"summary", "etcd-1 has no leader"}, {"description", "for 5m \"quoted\""}};
    rw_alert_msg a = {l, 3, ann, 2, starts, ends, "http://rwgate:9090/graph?g0.expr=up"};
    rw_notifier_send(n, &a, 1);
}

static void test_plain(void)
{
    int port = free_port();
    pid_t am = am_start(port, NULL, 0);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "alertmanagers:\n- static_configs: [{targets: ['127.0.0.1:%d']}]\n  api_version: v2\n",
             port);
    rw_alerting_config *c = load(yaml);
    rw_label ext[] = {{"cluster", "central-1"}};
    rw_err e;
    rw_notifier *n = rw_notifier_new(c, ext, 1, NULL, &e);
    CHECK(n != NULL);
    int64_t now = rw_now_ms();
    int64_t starts = now - 120000 + 123, ends = now + 3600000;
    send_alert(n, "RwgateNoLeader", starts, ends);
    WAIT_FOR(has(0, port, "\"alertname\":\"RwgateNoLeader\""));
    rw_buf b;
    rw_buf_init(&b, 0);
    get(0, port, "/api/v2/alerts", &b);
    char ts[64], want[128];
    CHECK_MSG(strstr(b.p, "\"alertname\":\"RwgateNoLeader\"") != NULL, "%s", b.p);
    CHECK(strstr(b.p, "\"cluster\":\"central-1\"") != NULL);
    CHECK(strstr(b.p, "\"severity\":\"critical\"") != NULL);
    CHECK(strstr(b.p, "\"summary\":\"etcd-1 has no leader\"") != NULL);
    CHECK(strstr(b.p, "\"description\":\"for 5m \\\"quoted\\\"\"") != NULL);
    CHECK(strstr(b.p, "\"generatorURL\":\"http://rwgate:9090/graph?g0.expr=up\"") != NULL);
    fmt_time(starts, ts, sizeof ts);
    snprintf(want, sizeof want, "\"startsAt\":\"%s\"", ts);
    CHECK_MSG(strstr(b.p, want) != NULL, "want %s in %s", want, b.p);
    fmt_time(ends, ts, sizeof ts);
    snprintf(want, sizeof want, "\"endsAt\":\"%s\"", ts);
    CHECK_MSG(strstr(b.p, want) != NULL, "want %s in %s", want, b.p);
    CHECK(strstr(b.p, "\"state\":\"active\"") != NULL);

    /* resolved by rwgate: endsAt in the past, and it is gone there */
    send_alert(n, "RwgateNoLeader", starts, now - 1000);
    WAIT_FOR(!has(0, port, "\"alertname\":\"RwgateNoLeader\""));
    CHECK(!has(0, port, "\"alertname\":\"RwgateNoLeader\""));

    /* the Alertmanager goes away; alerts sent meanwhile arrive when it is
     * back on the same address */
    am_stop(am);
    send_alert(n, "RwgateWhileDown", now, now + 3600000);
    usleep(1500000); /* let a few attempts fail */
    CHECK(rw_notifier_queue_length(n) == 1);
    am = am_start(port, NULL, 0);
    WAIT_FOR(has(0, port, "\"alertname\":\"RwgateWhileDown\""));
    CHECK(has(0, port, "\"alertname\":\"RwgateWhileDown\""));
    CHECK(rw_notifier_dropped(n) == 0);
    rw_buf_free(&b);
    rw_notifier_free(n);
    release(c);
    am_stop(am);
}

static int sh(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "cd '%s' && (%s) >>openssl.log 2>&1", dir, cmd);
    return system(full);
}

static void test_tls_and_basic_auth(void)
{
    /* a CA and a server certificate for am.test, made here */
    int rc = sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
                "-subj /CN=rwgate-test-ca")
             | sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=am.test")
             | sh("printf 'subjectAltName=DNS:am.test\\n' > ext.cnf && openssl x509 -req -in srv.csr "
                  "-CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf");
    CHECK_MSG(rc == 0, "openssl failed (see %s/openssl.log)", dir);
    char web[512];
    snprintf(web, sizeof web, "%s/web.yml", dir);
    FILE *f = fopen(web, "w");
    fprintf(f,
            "tls_server_config:\n  cert_file: %s/srv.crt\n  key_file: %s/srv.key\n"
            "basic_auth_users:\n  alice: '%s'\n",
            dir, dir, AM_PASS_HASH);
    fclose(f);
    int port = free_port();
    pid_t am = am_start(port, web, 1);

    static const struct {
        const char *tls, *auth, *name;
        int delivered;
    } cases[] = {
        /* the certificate names am.test, not 127.0.0.1: server_name makes it verify */
        {"{ca_file: %s/ca.crt, server_name: am.test}", "{username: alice, password: am-pass}",
         "RwgateTls", 1},
        /* without the CA the certificate is not trusted: nothing arrives */
        {"{server_name: am.test}", "{username: alice, password: am-pass}", "RwgateUntrusted", 0},
        {"{insecure_skip_verify: true}", "{username: alice, password: am-pass}", "RwgateInsecure", 1},
        /* a wrong password: 401, dropped */
        {"{ca_file: %s/ca.crt, server_name: am.test}", "{username: alice, password: wrong}",
         "RwgateWrongPassword", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tls[600], yaml[1500];
        snprintf(tls, sizeof tls, cases[i].tls, dir);
        snprintf(yaml, sizeof yaml,
                 "alertmanagers:\n- static_configs: [{targets: ['127.0.0.1:%d']}]\n"
                 "  scheme: https\n  timeout: 5s\n  tls_config: %s\n  basic_auth: %s\n",
                 port, tls, cases[i].auth);
        rw_alerting_config *c = load(yaml);
        rw_err e;
        rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
        CHECK(n != NULL);
        int64_t now = rw_now_ms();
        send_alert(n, cases[i].name, now, now + 3600000);
        char needle[128];
        snprintf(needle, sizeof needle, "\"alertname\":\"%s\"", cases[i].name);
        if (cases[i].delivered) {
            WAIT_FOR(has(1, port, needle));
            CHECK_MSG(has(1, port, needle), "case %zu not delivered", i);
            CHECK(rw_notifier_sent(n, 0) == 1);
        } else if (strstr(cases[i].auth, "wrong")) {
            WAIT_FOR(rw_notifier_dropped(n) == 1);
            CHECK_MSG(rw_notifier_dropped(n) == 1, "case %zu: 401 not dropped", i);
            CHECK(!has(1, port, needle));
        } else {
            usleep(1500000);
            CHECK_MSG(!has(1, port, needle), "case %zu delivered without trust", i);
            CHECK(rw_notifier_sent(n, 0) == 0 && rw_notifier_queue_length(n) == 1);
        }
        rw_notifier_free(n);
        release(c);
    }
    am_stop(am);

    /* client certificates: an Alertmanager that requires one signed by the CA */
    rc = sh("openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=rwgate "
            "&& openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
            "-out cli.crt -days 2");
    CHECK_MSG(rc == 0, "openssl failed (see %s/openssl.log)", dir);
    f = fopen(web, "w");
    fprintf(f,
            "tls_server_config:\n  cert_file: %s/srv.crt\n  key_file: %s/srv.key\n"
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s/ca.crt\n",
            dir, dir, dir);
    fclose(f);
    port = free_port();
    am = am_client_cert_start(port, web);
    for (int with_cert = 0; with_cert < 2; with_cert++) {
        char yaml[1500];
        snprintf(yaml, sizeof yaml,
                 "alertmanagers:\n- static_configs: [{targets: ['127.0.0.1:%d']}]\n"
                 "  scheme: https\n  timeout: 5s\n"
                 "  tls_config: {ca_file: %s/ca.crt, server_name: am.test%s%s%s%s%s}\n",
                 port, dir, with_cert ? ", cert_file: " : "", with_cert ? dir : "",
                 with_cert ? "/cli.crt, key_file: " : "", with_cert ? dir : "",
                 with_cert ? "/cli.key" : "");
        rw_alerting_config *c = load(yaml);
        rw_err e;
        rw_notifier *n = rw_notifier_new(c, NULL, 0, NULL, &e);
        int64_t now = rw_now_ms();
        send_alert(n, with_cert ? "RwgateClientCert" : "RwgateNoClientCert", now, now + 3600000);
        if (with_cert) {
            WAIT_FOR(rw_notifier_sent(n, 0) == 1);
            CHECK_MSG(rw_notifier_sent(n, 0) == 1, "not delivered with a client certificate");
        } else {
            usleep(1500000);
            CHECK_MSG(rw_notifier_sent(n, 0) == 0, "delivered without a client certificate");
        }
        rw_notifier_free(n);
        release(c);
    }
    am_stop(am);
}

int main(void)
{
    if (access(AM_BIN, X_OK) != 0) {
        fprintf(stderr, "%s is not installed (deploy/install-deps.sh installs it)\n", AM_BIN);
        CHECK(0);
        TEST_DONE();
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir = test_mkdtemp("rw-notify-am");
    CHECK(dir != NULL);
    RUN(test_plain);
    RUN(test_tls_and_basic_auth);
    test_rmtree(dir);
    curl_global_cleanup();
    TEST_DONE();
}
