/* test_query_api.c - the read-side HTTP API over real sockets: a real store
 * in a temporary directory, the module's routes on a real server on
 * 127.0.0.1:0, requests with the minimal client of http_client.h. Asserts the
 * exact bytes Prometheus would answer: JSON of series / labels / label
 * values / metadata / queries, the /federate text (TYPE lines, order,
 * escaping, stale and out-of-window series left out, external labels), a
 * remote-read round trip through protobuf-c and snappy, and the error
 * answers (missing match[], bad times, bad steps, bad snappy, bad protobuf). */
#include <math.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/http.h"
#include "core/timeutil.h"
#include "http_client.h"
#include "proto/remote.pb-c.h"
#include "query/api.h"
#include "query/promql.h"
#include "store/store.h"
#include "test.h"

static char tmpdir[64];
static rw_store *store;
static rw_engine *engine;
static int64_t now; /* whole seconds, ms */

/* ---- fixtures ---- */

static void add(const char *const *kv, size_t nkv, const int64_t *t, const double *v, size_t n)
{
    rw_label l[16];
    size_t nl = nkv / 2;
    for (size_t i = 0; i < nl; i++)
        l[i] = (rw_label){kv[2 * i], kv[2 * i + 1]};
    rw_labels_sort(l, nl);
    rw_sample s[16];
    for (size_t i = 0; i < n; i++)
        s[i] = (rw_sample){t[i], v[i]};
    rw_append_series as = {l, nl, rw_labels_hash(l, nl), s, n};
    rw_append_result res;
    memset(&res, 0, sizeof res);
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_store_append(store, &as, 1, &res, &e);
    CHECK_MSG(rc == RW_OK, "append: %s", e.msg);
    CHECK_INT(res.samples_written, n);
}

#define KV(...) ((const char *const[]){__VA_ARGS__}), sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)
#define TS(...) ((const int64_t[]){__VA_ARGS__})
#define VS(...) ((const double[]){__VA_ARGS__}), sizeof((const double[]){__VA_ARGS__}) / sizeof(double)

static void load(void)
{
    add(KV("__name__", "up", "job", "api", "instance", "a:1"), TS(now - 60000, now - 30000),
        VS(1, 1));
    add(KV("__name__", "up", "job", "api", "instance", "b:1"), TS(now - 30000), VS(0));
    add(KV("__name__", "http_requests_total", "job", "api", "code", "200", "path",
           "/x\"y\\z\nw"),
        TS(now - 30000), VS(1234567));
    add(KV("__name__", "gone", "job", "api"), TS(now - 60000, now - 30000),
        VS(5, rw_stale_nan()));
    add(KV("__name__", "old_metric", "job", "db"), TS(now - 3600000), VS(7));
    add(KV("__name__", "no_inst", "zone", "z1"), TS(now - 10000), VS(0.5));
    add(KV("__name__", "ext_has", "cluster", "own", "job", "api", "instance", "x"),
        TS(now - 10000), VS(2));
    add(KV("__name__", "caps", "Zeta", "1"), TS(now - 10000), VS(3));

    rw_metadata md[] = {
        {"http_requests_total", "counter", "Total requests.", ""},
        {"up", "gauge", "Up.", ""},
    };
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_store_put_metadata(store, md, 2, &e) == RW_OK);
}

typedef struct server {
    rw_query_api *api;
    rw_routes *routes;
    rw_http_server *http;
    int port;
} server;

static int start(server *s, size_t max_read_samples)
{
    rw_label ext[] = {{"cluster", "eu1"}};
    rw_query_api_opts o = {
        .store = store,
        .engine = engine,
        .external_labels = ext,
        .nexternal = 1,
        .cfg = {.remote_read_max_samples = (int64_t)max_read_samples},
        .version = "1.2.3",
        .revision = "abc",
    };
    s->api = rw_query_api_new(&o);
    CHECK(s->api != NULL);
    rw_err e;
    rw_err_init(&e);
    s->routes = rw_routes_new();
    CHECK(rw_query_api_routes(s->api, s->routes, &e) == RW_OK);
    rw_http_opts ho = {.listen = "127.0.0.1:0"};
    s->http = rw_http_start(&ho, s->routes, &e);
    CHECK_MSG(s->http != NULL, "%s", e.msg);
    if (!s->http)
        return 0;
    s->port = rw_http_port(s->http);
    return 1;
}

static void stop(server *s)
{
    rw_http_stop(s->http);
    rw_routes_free(s->routes);
    rw_query_api_free(s->api);
}

static server srv;

/* GET path; checks status and exact body. */
static void get_exact(const char *path, int status, const char *want)
{
    test_http_resp r;
    CHECK_MSG(test_http(srv.port, "GET", path, NULL, NULL, 0, &r) == 0, "GET %s", path);
    CHECK_MSG(r.status == status, "GET %s: status %d, want %d; body %s", path, r.status, status,
              r.body);
    CHECK_MSG(strcmp(r.body ? r.body : "", want) == 0, "GET %s:\n got  %s\n want %s", path,
              r.body, want);
    test_http_free(&r);
}

static void post_form_exact(const char *path, const char *form, int status, const char *want)
{
    test_http_resp r;
    CHECK(test_http(srv.port, "POST", path, "Content-Type: application/x-www-form-urlencoded\r\n",
                    form, strlen(form), &r) == 0);
    CHECK_MSG(r.status == status, "POST %s: status %d, want %d", path, r.status, status);
    CHECK_MSG(strcmp(r.body ? r.body : "", want) == 0, "POST %s %s:\n got  %s\n want %s", path,
              form, r.body, want);
    test_http_free(&r);
}

/* ---- series, labels, values, metadata, status ---- */

#define OK(data) "{\"status\":\"success\",\"data\":" data "}"
#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"
#define UP_A "{\"__name__\":\"up\",\"instance\":\"a:1\",\"job\":\"api\"}"
#define UP_B "{\"__name__\":\"up\",\"instance\":\"b:1\",\"job\":\"api\"}"
#define NO_INST "{\"__name__\":\"no_inst\",\"zone\":\"z1\"}"
#define TRUNC ",\"warnings\":[\"results truncated due to limit\"]}"

static void test_series(void)
{
    get_exact("/api/v1/series?match[]=up", 200, OK("[" UP_A "," UP_B "]"));
    /* union of selectors, sorted, no duplicates */
    get_exact("/api/v1/series?match[]=up&match[]=no_inst&match[]=%7Binstance%3D%22a:1%22%7D", 200,
              OK("[" NO_INST "," UP_A "," UP_B "]"));
    get_exact("/api/v1/series?match[]=up&match[]=no_inst&limit=1", 200,
              "{\"status\":\"success\",\"data\":[" NO_INST "]" TRUNC);
    /* exactly at the limit: no warning */
    get_exact("/api/v1/series?match[]=up&limit=2", 200, OK("[" UP_A "," UP_B "]"));
    post_form_exact("/api/v1/series", "match%5B%5D=up&match%5B%5D=no_inst", 200,
                    OK("[" NO_INST "," UP_A "," UP_B "]"));
    /* time range */
    char path[256];
    snprintf(path, sizeof path, "/api/v1/series?match[]=%%7Bjob%%3D%%22db%%22%%7D&end=%lld",
             (long long)(now / 1000 - 1800));
    get_exact(path, 200, OK("[{\"__name__\":\"old_metric\",\"job\":\"db\"}]"));
    snprintf(path, sizeof path, "/api/v1/series?match[]=%%7Bjob%%3D%%22db%%22%%7D&start=%lld",
             (long long)(now / 1000 - 1800));
    get_exact(path, 200, OK("[]"));
    /* JSON escaping of values */
    get_exact("/api/v1/series?match[]=http_requests_total", 200,
              OK("[{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"api\","
                 "\"path\":\"/x\\\"y\\\\z\\nw\"}]"));

    get_exact("/api/v1/series", 400, BAD("no match[] parameter provided"));
    get_exact("/api/v1/series?match[]=up&start=abc", 400,
              BAD("invalid parameter \\\"start\\\": invalid time value for 'start': cannot parse "
                  "\\\"abc\\\" to a valid timestamp"));
    get_exact("/api/v1/series?match[]=up&limit=x", 400,
              BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": invalid "
                  "syntax"));
    get_exact("/api/v1/series?match[]=up&limit=-1", 400,
              BAD("invalid parameter \\\"limit\\\": limit must be non-negative"));
    test_http_resp r;
    CHECK(test_http(srv.port, "GET", "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D", NULL, NULL,
                    0, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK_MSG(strstr(r.body, "\"error\":\"invalid parameter \\\"match[]\\\": ") &&
                  strstr(r.body, "at least one non-empty matcher"),
              "%s", r.body);
    test_http_free(&r);
    CHECK(test_http(srv.port, "GET", "/api/v1/series?match[]=up%7B", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
                         "\\\"match[]\\\": ") != NULL);
    test_http_free(&r);
}

static void test_labels(void)
{
    get_exact("/api/v1/labels", 200,
              OK("[\"Zeta\",\"__name__\",\"cluster\",\"code\",\"instance\",\"job\",\"path\","
                 "\"zone\"]"));
    get_exact("/api/v1/labels?match[]=up&match[]=no_inst", 200,
              OK("[\"__name__\",\"instance\",\"job\",\"zone\"]"));
    get_exact("/api/v1/labels?match[]=up&limit=2", 200,
              "{\"status\":\"success\",\"data\":[\"__name__\",\"instance\"]" TRUNC);
    post_form_exact("/api/v1/labels", "match[]=no_inst", 200, OK("[\"__name__\",\"zone\"]"));
    get_exact("/api/v1/label/job/values", 200, OK("[\"api\",\"db\"]"));
    get_exact("/api/v1/label/job/values?match[]=up", 200, OK("[\"api\"]"));
    get_exact("/api/v1/label/job/values?match[]=up&match[]=old_metric", 200,
              OK("[\"api\",\"db\"]"));
    get_exact("/api/v1/label/__name__/values?limit=1", 200,
              "{\"status\":\"success\",\"data\":[\"caps\"]" TRUNC);
    get_exact("/api/v1/label/nosuch/values", 200, OK("[]"));
    /* U__ escaping (Prometheus 3): U__job is "job", U__a_2e_b is "a.b" */
    get_exact("/api/v1/label/U__job/values?match[]=no_inst", 200, OK("[]"));
    get_exact("/api/v1/label/U__j_6f_b/values?match[]=up", 200, OK("[\"api\"]"));
    get_exact("/api/v1/label/job/values?start=x", 400,
              BAD("invalid parameter \\\"start\\\": invalid time value for 'start': cannot "
                  "parse \\\"x\\\" to a valid timestamp"));
    get_exact("/api/v1/label//values", 400, BAD("invalid label name: \\\"\\\""));
    test_http_resp r;
    CHECK(test_http(srv.port, "GET", "/api/v1/label/job", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 404);
    test_http_free(&r);
}

static void test_metadata_status(void)
{
    get_exact("/api/v1/metadata", 200,
              OK("{\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"Total requests.\","
                 "\"unit\":\"\"}],\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"}]}"));
    get_exact("/api/v1/metadata?metric=up", 200,
              OK("{\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"}]}"));
    get_exact("/api/v1/metadata?limit=1", 200,
              OK("{\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"Total "
                 "requests.\",\"unit\":\"\"}]}"));
    get_exact("/api/v1/metadata?limit=0", 200, OK("{}"));
    get_exact("/api/v1/metadata?metric=nosuch", 200, OK("{}"));
    get_exact("/api/v1/metadata?limit=a", 400, BAD("limit must be a number"));
    get_exact("/api/v1/metadata?limit_per_metric=a", 400, BAD("limit_per_metric must be a number"));

    test_http_resp r;
    CHECK(test_http(srv.port, "GET", "/api/v1/status/buildinfo", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    const char *bi = "{\"status\":\"success\",\"data\":{\"version\":\"1.2.3\",\"revision\":\"abc\","
                     "\"branch\":\"n/a\",\"buildUser\":\"n/a\",\"buildDate\":\"n/a\",\"goVersion\":\"";
    CHECK_MSG(strncmp(r.body, bi, strlen(bi)) == 0, "%s", r.body);
    test_http_free(&r);

    CHECK(test_http(srv.port, "GET", "/api/v1/status/tsdb?limit=1", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    char want[512];
    snprintf(want, sizeof want,
             "{\"status\":\"success\",\"data\":{\"headStats\":{\"numSeries\":8,"
             "\"numLabelPairs\":17,");
    CHECK_MSG(strncmp(r.body, want, strlen(want)) == 0, "%s", r.body);
    snprintf(want, sizeof want, "\"minTime\":%lld,\"maxTime\":%lld}", (long long)(now - 3600000),
             (long long)(now - 10000));
    CHECK_MSG(strstr(r.body, want) != NULL, "%s", r.body);
    CHECK_MSG(strstr(r.body, "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2}],"
                             "\"labelValueCountByLabelName\":[{\"name\":\"__name__\",\"value\":"
                             "7}],\"memoryInBytesByLabelName\":[{\"name\":") != NULL,
              "%s", r.body);
    CHECK_MSG(strstr(r.body, "\"seriesCountByLabelValuePair\":[{\"name\":\"job=api\",\"value\":5}],"
                             "\"seriesCountByLabelName\":[{\"name\":\"__name__\",\"value\":8}]}}") !=
                  NULL,
              "%s", r.body);
    test_http_free(&r);

    /* VictoriaMetrics' match[] and focusLabel: counts over the selected
       series only (job="api": up x2, http_requests_total, gone, ext_has) */
    CHECK(test_http(srv.port, "GET",
                    "/api/v1/status/tsdb?limit=2&focusLabel=instance&match[]=%7Bjob%3D%22api%22%7D",
                    NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MSG(strstr(r.body, "\"totalSeries\":5,\"totalLabelValuePairs\":11,"
                             "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2},"
                             "{\"name\":\"ext_has\",\"value\":1}],"
                             "\"labelValueCountByLabelName\":[{\"name\":\"__name__\",\"value\":4},"
                             "{\"name\":\"instance\",\"value\":3}]") != NULL,
              "%s", r.body);
    CHECK_MSG(strstr(r.body, "\"seriesCountByLabelValuePair\":[{\"name\":\"job=api\",\"value\":5},"
                             "{\"name\":\"__name__=up\",\"value\":2}],"
                             "\"seriesCountByLabelName\":[{\"name\":\"__name__\",\"value\":5},"
                             "{\"name\":\"job\",\"value\":5}],"
                             "\"seriesCountByFocusLabelValue\":[{\"name\":\"a:1\",\"value\":1},"
                             "{\"name\":\"b:1\",\"value\":1}]}}") != NULL,
              "%s", r.body);
    test_http_free(&r);
    /* without match[], focusLabel reads the store's pair counts */
    CHECK(test_http(srv.port, "GET", "/api/v1/status/tsdb?limit=1&focusLabel=job", NULL, NULL, 0,
                    &r) == 0);
    CHECK_MSG(strstr(r.body, "\"seriesCountByFocusLabelValue\":[{\"name\":\"api\",\"value\":5}]}}") !=
                  NULL,
              "%s", r.body);
    test_http_free(&r);
    get_exact("/api/v1/status/tsdb?match[]=up%7B", 400,
              BAD("invalid parameter \\\"match[]\\\": 1:4: parse error: unexpected end of input inside braces"));
    get_exact("/api/v1/query_exemplars?query=up", 200, OK("[]"));
    get_exact("/api/v1/query_exemplars?query=up&start=10&end=5", 400,
              BAD("end timestamp must not be before start timestamp"));
    get_exact("/api/v1/status/tsdb?limit=0", 400, BAD("limit must be a positive number"));
    get_exact("/api/v1/status/tsdb?limit=10001", 400, BAD("limit must not exceed 10000"));
}

/* ---- /federate ---- */

static void test_federate(void)
{
    char want[2048];
    long long t1 = now - 10000, t3 = now - 30000;
    snprintf(want, sizeof want,
             "# TYPE caps untyped\n"
             "caps{Zeta=\"1\",cluster=\"eu1\",instance=\"\"} 3 %lld\n"
             "# TYPE ext_has untyped\n"
             "ext_has{cluster=\"own\",instance=\"x\",job=\"api\"} 2 %lld\n"
             "# TYPE http_requests_total counter\n"
             "http_requests_total{code=\"200\",job=\"api\",path=\"/x\\\"y\\\\z\\nw\","
             "cluster=\"eu1\",instance=\"\"} 1.234567e+06 %lld\n"
             "# TYPE no_inst untyped\n"
             "no_inst{zone=\"z1\",cluster=\"eu1\",instance=\"\"} 0.5 %lld\n"
             "# TYPE up gauge\n"
             "up{instance=\"a:1\",job=\"api\",cluster=\"eu1\"} 1 %lld\n"
             "up{instance=\"b:1\",job=\"api\",cluster=\"eu1\"} 0 %lld\n",
             t1, t1, t3, t1, t3, t3);
    const char *path = "/federate?match[]=%7Bjob%3D~%22.%2B%22%7D"
                       "&match[]=%7B__name__%3D~%22no_inst%7Ccaps%7Cup%22%7D";
    test_http_resp r;
    CHECK(test_http(srv.port, "GET", path, NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK_MSG(strcmp(r.body, want) == 0, "\n got:\n%s\n want:\n%s", r.body, want);
    char h[128];
    CHECK(test_http_header(&r, "Content-Type", h, sizeof h) &&
          strcmp(h, "text/plain; version=0.0.4; charset=utf-8") == 0);
    test_http_free(&r);

    /* gzip when asked for (the output is over the HTTP layer's threshold) */
    CHECK(test_http(srv.port, "GET", path, "Accept-Encoding: gzip\r\n", NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(test_http_header(&r, "Content-Encoding", h, sizeof h) && strcmp(h, "gzip") == 0);
    test_http_free(&r);

    /* a selector of nothing recent: empty, but 200 */
    get_exact("/federate?match[]=old_metric", 200, "");
    get_exact("/federate?match[]=gone", 200, "");
    get_exact("/federate", 400, "no match[] parameter provided\n");
    CHECK(test_http(srv.port, "GET", "/federate?match[]=up%7B", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 400);
    test_http_free(&r);

    /* external labels swapped on reload: instance among them replaces "" */
    rw_label ext2[] = {{"instance", "fed"}, {"dc", "x"}};
    CHECK(rw_query_api_set_external_labels(srv.api, ext2, 2) == RW_OK);
    snprintf(want, sizeof want,
             "# TYPE no_inst untyped\nno_inst{zone=\"z1\",dc=\"x\",instance=\"fed\"} 0.5 %lld\n",
             t1);
    get_exact("/federate?match[]=no_inst", 200, want);
    rw_label ext1[] = {{"cluster", "eu1"}};
    CHECK(rw_query_api_set_external_labels(srv.api, ext1, 1) == RW_OK);
}

/* ---- /api/v1/read ---- */

static int post_read(int port, const Prometheus__ReadRequest *rq, test_http_resp *r)
{
    size_t n = prometheus__read_request__get_packed_size(rq);
    uint8_t *raw = malloc(n + 1);
    prometheus__read_request__pack(rq, raw);
    size_t clen = snappy_max_compressed_length(n);
    char *c = malloc(clen);
    snappy_compress((char *)raw, n, c, &clen);
    int rc = test_http(port, "POST", "/api/v1/read",
                       "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                       "X-Prometheus-Remote-Read-Version: 0.1.0\r\n",
                       c, clen, r);
    free(raw);
    free(c);
    return rc;
}

static Prometheus__ReadResponse *decode_read(test_http_resp *r)
{
    size_t ulen;
    if (snappy_uncompressed_length(r->body, r->body_len, &ulen) != SNAPPY_OK)
        return NULL;
    char *u = malloc(ulen + 1);
    if (snappy_uncompress(r->body, r->body_len, u, &ulen) != SNAPPY_OK) {
        free(u);
        return NULL;
    }
    Prometheus__ReadResponse *rr =
        prometheus__read_response__unpack(NULL, ulen, (uint8_t *)u);
    free(u);
    return rr;
}

static void labels_str(const Prometheus__TimeSeries *ts, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ts->n_labels && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "," : "",
                                ts->labels[i]->name, ts->labels[i]->value);
}

static void test_remote_read(void)
{
    Prometheus__LabelMatcher m1 = PROMETHEUS__LABEL_MATCHER__INIT, m2 = m1, m3 = m1, m4 = m1;
    m1.type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ;
    m1.name = "__name__";
    m1.value = "up";
    m2.type = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ;
    m2.name = "instance";
    m2.value = "zzz";
    m3.type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
    m3.name = "__name__";
    m3.value = "gone|ext_has";
    m4.type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ; /* on the external label: "absent" */
    m4.name = "cluster";
    m4.value = "eu1";
    Prometheus__LabelMatcher *q1m[] = {&m1, &m2}, *q2m[] = {&m3, &m4};
    Prometheus__Query q1 = PROMETHEUS__QUERY__INIT, q2 = PROMETHEUS__QUERY__INIT,
                      q3 = PROMETHEUS__QUERY__INIT;
    q1.start_timestamp_ms = now - 45000;
    q1.end_timestamp_ms = now;
    q1.n_matchers = 2;
    q1.matchers = q1m;
    q2.start_timestamp_ms = 0;
    q2.end_timestamp_ms = now;
    q2.n_matchers = 2;
    q2.matchers = q2m;
    q3.start_timestamp_ms = now - 1000; /* nothing in range */
    q3.end_timestamp_ms = now;
    q3.n_matchers = 1;
    q3.matchers = q1m;
    Prometheus__Query *qs[] = {&q1, &q2, &q3};
    Prometheus__ReadRequest rq = PROMETHEUS__READ_REQUEST__INIT;
    rq.n_queries = 3;
    rq.queries = qs;
    /* Prometheus 3 lists both, streamed first: we answer samples */
    Prometheus__ReadRequest__ResponseType both[] = {
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS,
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES};
    rq.n_accepted_response_types = 2;
    rq.accepted_response_types = both;

    test_http_resp r;
    CHECK(post_read(srv.port, &rq, &r) == 0);
    CHECK_MSG(r.status == 200, "status %d: %s", r.status, r.body);
    char h[128];
    CHECK(test_http_header(&r, "Content-Type", h, sizeof h) &&
          strcmp(h, "application/x-protobuf") == 0);
    CHECK(test_http_header(&r, "Content-Encoding", h, sizeof h) && strcmp(h, "snappy") == 0);
    Prometheus__ReadResponse *rr = decode_read(&r);
    CHECK(rr != NULL);
    if (rr) {
        CHECK_INT(rr->n_results, 3);
        char ls[256];
        if (rr->n_results == 3) {
            Prometheus__QueryResult *a = rr->results[0], *b = rr->results[1], *c = rr->results[2];
            CHECK_INT(a->n_timeseries, 2);
            if (a->n_timeseries == 2) {
                labels_str(a->timeseries[0], ls, sizeof ls);
                CHECK_STR(ls, "__name__=up,cluster=eu1,instance=a:1,job=api");
                CHECK_INT(a->timeseries[0]->n_samples, 1);
                CHECK_INT(a->timeseries[0]->samples[0]->timestamp, now - 30000);
                CHECK(a->timeseries[0]->samples[0]->value == 1);
                labels_str(a->timeseries[1], ls, sizeof ls);
                CHECK_STR(ls, "__name__=up,cluster=eu1,instance=b:1,job=api");
                CHECK_INT(a->timeseries[1]->n_samples, 1);
                CHECK(a->timeseries[1]->samples[0]->value == 0);
            }
            /* ext_has carries cluster="own": the cluster="eu1" matcher (an
               external label) selects series without a cluster label */
            CHECK_INT(b->n_timeseries, 1);
            if (b->n_timeseries == 1) {
                labels_str(b->timeseries[0], ls, sizeof ls);
                CHECK_STR(ls, "__name__=gone,cluster=eu1,job=api");
                CHECK_INT(b->timeseries[0]->n_samples, 2);
                if (b->timeseries[0]->n_samples == 2) {
                    CHECK_INT(b->timeseries[0]->samples[0]->timestamp, now - 60000);
                    CHECK(b->timeseries[0]->samples[0]->value == 5);
                    CHECK(rw_is_stale_nan(b->timeseries[0]->samples[1]->value));
                }
            }
            CHECK_INT(c->n_timeseries, 0);
        }
        prometheus__read_response__free_unpacked(rr, NULL);
    }
    test_http_free(&r);

    /* only streamed chunks: 400 */
    Prometheus__ReadRequest__ResponseType streamed[] = {
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS};
    rq.n_accepted_response_types = 1;
    rq.accepted_response_types = streamed;
    CHECK(post_read(srv.port, &rq, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK_MSG(strstr(r.body, "STREAMED_XOR_CHUNKS") != NULL, "%s", r.body);
    test_http_free(&r);
    rq.n_accepted_response_types = 0;

    /* a selector matching the empty string only */
    Prometheus__LabelMatcher me = PROMETHEUS__LABEL_MATCHER__INIT;
    me.type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
    me.name = "job";
    me.value = ".*";
    Prometheus__LabelMatcher *qem[] = {&me};
    q3.n_matchers = 1;
    q3.matchers = qem;
    Prometheus__Query *qs3[] = {&q3};
    rq.n_queries = 1;
    rq.queries = qs3;
    CHECK(post_read(srv.port, &rq, &r) == 0);
    CHECK_INT(r.status, 400);
    test_http_free(&r);

    /* bad regex */
    me.value = "(";
    me.name = "__name__";
    CHECK(post_read(srv.port, &rq, &r) == 0);
    CHECK_INT(r.status, 400);
    test_http_free(&r);

    /* not snappy; snappy of not-protobuf; a huge declared length */
    CHECK(test_http(srv.port, "POST", "/api/v1/read", NULL, "\xff\xff\xff\xff\xff", 5, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK_STR(r.body, "snappy: corrupt input\n");
    test_http_free(&r);
    const char junk[] = "\x0a\xff\xff\xff\xff\x0f garbage";
    char c[64];
    size_t clen = sizeof c;
    snappy_compress(junk, sizeof junk - 1, c, &clen);
    CHECK(test_http(srv.port, "POST", "/api/v1/read", NULL, c, clen, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK_MSG(strstr(r.body, "protobuf") != NULL, "%s", r.body);
    test_http_free(&r);
    const char huge[] = "\xff\xff\xff\xff\x0f\x00";
    CHECK(test_http(srv.port, "POST", "/api/v1/read", NULL, huge, sizeof huge - 1, &r) == 0);
    CHECK_INT(r.status, 413);
    test_http_free(&r);
    CHECK(test_http(srv.port, "GET", "/api/v1/read", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 405);
    test_http_free(&r);
}

static void test_remote_read_limit(void)
{
    server s2;
    if (!start(&s2, 3))
        return;
    Prometheus__LabelMatcher m = PROMETHEUS__LABEL_MATCHER__INIT;
    m.type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
    m.name = "__name__";
    m.value = ".+";
    Prometheus__LabelMatcher *ms[] = {&m};
    Prometheus__Query q = PROMETHEUS__QUERY__INIT;
    q.start_timestamp_ms = 0;
    q.end_timestamp_ms = now;
    q.n_matchers = 1;
    q.matchers = ms;
    Prometheus__Query *qs[] = {&q};
    Prometheus__ReadRequest rq = PROMETHEUS__READ_REQUEST__INIT;
    rq.n_queries = 1;
    rq.queries = qs;
    test_http_resp r;
    CHECK(post_read(s2.port, &rq, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK_STR(r.body, "exceeded sample limit (3)\n");
    test_http_free(&r);
    /* 3 samples exactly: up has 3 in all time */
    m.type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ;
    m.value = "up";
    CHECK(post_read(s2.port, &rq, &r) == 0);
    CHECK_INT(r.status, 200);
    test_http_free(&r);
    stop(&s2);
}

/* ---- /api/v1/query and query_range ---- */

static void test_query_params(void)
{
    get_exact("/api/v1/query?query=up&time=abc", 400,
              BAD("invalid parameter \\\"time\\\": invalid time value for 'time': cannot parse "
                  "\\\"abc\\\" to a valid timestamp"));
    get_exact("/api/v1/query?query=up&timeout=zz", 400,
              BAD("invalid parameter \\\"timeout\\\": cannot parse \\\"zz\\\" to a valid "
                  "duration"));
    get_exact("/api/v1/query?query=up&limit=no", 400,
              BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"no\\\": invalid "
                  "syntax"));
    get_exact("/api/v1/query_range?query=up&end=10&step=1", 400,
              BAD("invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid "
                  "timestamp"));
    get_exact("/api/v1/query_range?query=up&start=10&end=x&step=1", 400,
              BAD("invalid parameter \\\"end\\\": cannot parse \\\"x\\\" to a valid timestamp"));
    get_exact("/api/v1/query_range?query=up&start=10&end=5&step=1", 400,
              BAD("invalid parameter \\\"end\\\": end timestamp must not be before start time"));
    get_exact("/api/v1/query_range?query=up&start=10&end=20&step=x", 400,
              BAD("invalid parameter \\\"step\\\": cannot parse \\\"x\\\" to a valid duration"));
    get_exact("/api/v1/query_range?query=up&start=10&end=20&step=0", 400,
              BAD("invalid parameter \\\"step\\\": zero or negative query resolution step widths are not accepted. Try a "
                  "positive integer"));
    get_exact("/api/v1/query_range?query=up&start=10&end=20&step=-1s", 400,
              BAD("invalid parameter \\\"step\\\": cannot parse \\\"-1s\\\" to a valid "
                  "duration"));
    get_exact("/api/v1/query_range?query=up&start=0&end=11001&step=1", 400,
              BAD("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                  "the query resolution (?step=XX)"));
}

static void test_query(void)
{
    char path[512], want[1024];
    long long ts = now / 1000 - 20;
    snprintf(path, sizeof path, "/api/v1/query?query=up&time=%lld", ts);
    snprintf(want, sizeof want,
             OK("{\"resultType\":\"vector\",\"result\":[{\"metric\":" UP_A
                ",\"value\":[%lld,\"1\"]},{\"metric\":" UP_B ",\"value\":[%lld,\"0\"]}]}"),
             ts, ts);
    get_exact(path, 200, want);
    /* POST form, fractional time, limit */
    char form[256];
    snprintf(form, sizeof form, "query=up&time=%lld.5&limit=1", ts);
    snprintf(want, sizeof want,
             "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
             "\"metric\":" UP_A ",\"value\":[%lld.5,\"1\"]}]}" TRUNC,
             ts);
    post_form_exact("/api/v1/query", form, 200, want);

    snprintf(path, sizeof path, "/api/v1/query?query=1%%2B1&time=%lld.25", ts);
    snprintf(want, sizeof want, OK("{\"resultType\":\"scalar\",\"result\":[%lld.25,\"2\"]}"), ts);
    get_exact(path, 200, want);
    snprintf(path, sizeof path, "/api/v1/query?query=%%22a%%5C%%22b%%22&time=%lld", ts);
    snprintf(want, sizeof want, OK("{\"resultType\":\"string\",\"result\":[%lld,\"a\\\"b\"]}"),
             ts);
    get_exact(path, 200, want);
    snprintf(path, sizeof path, "/api/v1/query?query=nosuch&time=%lld", ts);
    get_exact(path, 200, OK("{\"resultType\":\"vector\",\"result\":[]}"));

    long long s0 = now / 1000 - 60;
    snprintf(path, sizeof path,
             "/api/v1/query_range?query=up%%7Binstance%%3D%%22a:1%%22%%7D&start=%lld&end=%lld&"
             "step=15s",
             s0, s0 + 30);
    snprintf(want, sizeof want,
             OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":" UP_A
                ",\"values\":[[%lld,\"1\"],[%lld,\"1\"],[%lld,\"1\"]]}]}"),
             s0, s0 + 15, s0 + 30);
    get_exact(path, 200, want);

    /* annotations: at most 10 of a kind, then a count of the others (the
       engine remarks once per metric name that rate() sees not named like
       a counter) */
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%02d", i);
        add(KV("__name__", name, "job", name), TS(now - 60000, now - 30000), VS(1, 2));
    }
    snprintf(path, sizeof path,
             "/api/v1/query?query=rate(%%7B__name__%%3D~%%22w.*%%22%%7D%%5B5m%%5D)&time=%lld",
             ts);
    test_http_resp r;
    CHECK(test_http(srv.port, "GET", path, NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    const char *infos = strstr(r.body, ",\"infos\":[");
    CHECK_MSG(infos != NULL, "%s", r.body);
    if (infos) {
        int n = 0;
        for (const char *p = infos; (p = strstr(p, "PromQL info")) != NULL; p++)
            n++;
        CHECK_INT(n, 10);
        CHECK_MSG(strstr(infos, ",\"2 more info annotations omitted\"]}") != NULL, "%s", infos);
    }
    test_http_free(&r);

    CHECK(test_http(srv.port, "GET", "/api/v1/query?query=up%7B", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 400);
    const char *perr = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid "
                       "parameter \\\"query\\\": 1:4: parse error: ";
    CHECK_MSG(strncmp(r.body, perr, strlen(perr)) == 0, "%s", r.body);
    test_http_free(&r);
    CHECK(test_http(srv.port, "GET", "/api/v1/query", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 400);
    test_http_free(&r);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwq-api-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    now = rw_now_ms() / 1000 * 1000;
    rw_store_opts so = {.dir = tmpdir, .nshards = 2};
    rw_err e;
    rw_err_init(&e);
    store = rw_store_open(&so, &e);
    CHECK_MSG(store != NULL, "%s", e.msg);
    if (!store)
        TEST_DONE();
    rw_engine_opts eo = {0};
    rw_querier sq = rw_store_querier(store);
    engine = rw_engine_new(&sq, &eo);
    load();
    if (start(&srv, 0)) {
        RUN(test_series);
        RUN(test_labels);
        RUN(test_metadata_status);
        RUN(test_federate);
        RUN(test_remote_read);
        RUN(test_remote_read_limit);
        RUN(test_query_params);
        RUN(test_query);
        stop(&srv);
    }
    rw_engine_free(engine);
    rw_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    TEST_DONE();
}
