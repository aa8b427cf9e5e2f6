/* api.c - the Prometheus HTTP API's query endpoints (/api/v1/query and
 * /api/v1/query_range) and what every endpoint of the read side shares: the
 * module handle and its route rows, the {"status":...} JSON envelope with
 * Prometheus' error types and statuses, and the parsing of time, limit and
 * match[] parameters with Prometheus' error messages. Requests arrive from
 * core/http.c; queries go to the PromQL engine (query/promql.h), whose
 * rw_result is written out exactly as Prometheus' JSON encoder writes it so
 * that Grafana and promtool see the same bytes. */
#include "api_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/cfg.h"
#include "core/json.h"
#include "core/timeutil.h"

#define QUERY_MAX_BODY (8u << 20)      /* long PromQL / many match[] in a form */
#define READ_MAX_BODY (4u << 20)       /* compressed remote-read request (a few matchers) */
#define MAX_POINTS_PER_SERIES 11000

/* Prometheus' printable forms of its minimum and maximum API times, which
 * clients echo back as start/end. */
#define PROM_MIN_TIME "-292273086-05-16T16:47:06Z"
#define PROM_MAX_TIME "292277025-08-18T07:12:54.999999999Z"

static const char *const endpoint_names[QAPI_EP__COUNT] = {
    "query", "query_range", "series", "labels", "label_values",
    "metadata", "buildinfo", "tsdb", "federate", "read", "query_exemplars",
};

/* ---- handle ---- */

/* One malloc'd block: the sorted array followed by the strings. */
static rw_label *copy_labels(const rw_label *l, size_t n)
{
    size_t bytes = n * sizeof(rw_label);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    rw_label *out = malloc(bytes ? bytes : 1);
    if (!out)
        return NULL;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(p, l[i].name, a);
        out[i].name = p;
        p += a;
        memcpy(p, l[i].value, b);
        out[i].value = p;
        p += b;
    }
    rw_labels_sort(out, n);
    return out;
}

rw_query_api *rw_query_api_new(const rw_query_api_opts *opts)
{
    rw_query_api *api = calloc(1, sizeof *api);
    if (!api)
        return NULL;
    api->store = opts->store;
    api->querier = opts->querier ? *opts->querier : rw_store_querier(opts->store);
    api->engine = opts->engine;
    rw_query_config d;
    rw_cfg_defaults(&rw_query_config_table, &d);
    api->lookback_ms = opts->cfg.lookback_ms > 0 ? opts->cfg.lookback_ms : d.lookback_ms;
    api->default_timeout_ms = opts->cfg.timeout_ms > 0 ? opts->cfg.timeout_ms : d.timeout_ms;
    api->max_remote_read_samples = (size_t)(opts->cfg.remote_read_max_samples > 0
                                                ? opts->cfg.remote_read_max_samples
                                                : d.remote_read_max_samples);
#define DEF(f) (opts->cfg.f > 0 ? opts->cfg.f : d.f)
    api->max_memory_bytes = (size_t)DEF(max_memory_bytes);
    api->max_response_bytes = (size_t)DEF(max_response_bytes);
    api->max_concurrent = (size_t)DEF(max_concurrent);
    api->max_queued = (size_t)(opts->cfg.max_concurrent > 0 ? opts->cfg.max_queued : d.max_queued);
    api->queue_timeout_ms = DEF(queue_timeout_ms);
    api->rr_max_queries = (size_t)DEF(remote_read_max_queries);
    api->rr_max_matchers = (size_t)DEF(remote_read_max_matchers);
#undef DEF
    pthread_mutex_init(&api->qmu, NULL);
    pthread_cond_init(&api->qcv, NULL);
    api->queue_rejected = rw_metrics_counter(
        opts->metrics, "rwgate_query_rejected_total", "reason=\"queue\"",
        "Read requests refused with 503 because no slot freed up in time.");
    api->g_running = rw_metrics_gauge(opts->metrics, "rwgate_query_running", NULL,
                                      "Read requests holding one of query.max_concurrent slots.");
    api->g_waiting = rw_metrics_gauge(opts->metrics, "rwgate_query_queued", NULL,
                                      "Read requests waiting for a slot (at most query.max_queued).");
    api->version = strdup(opts->version ? opts->version : "unknown");
    api->revision = strdup(opts->revision ? opts->revision : "unknown");
    pthread_mutex_init(&api->ext_mu, NULL);
    if (!api->version || !api->revision ||
        rw_query_api_set_external_labels(api, opts->external_labels, opts->nexternal) != RW_OK) {
        rw_query_api_free(api);
        return NULL;
    }
    for (int i = 0; i < QAPI_EP__COUNT; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "endpoint=\"%s\"", endpoint_names[i]);
        api->duration[i] = rw_metrics_histogram(
            opts->metrics, "rwgate_query_duration_seconds", lbl,
            "Time spent answering read-side API requests, by endpoint.", rw_latency_buckets,
            rw_latency_nbuckets);
    }
    return api;
}

void rw_query_api_free(rw_query_api *api)
{
    if (!api)
        return;
    pthread_mutex_destroy(&api->ext_mu);
    pthread_mutex_destroy(&api->qmu);
    pthread_cond_destroy(&api->qcv);
    free(api->ext);
    free(api->version);
    free(api->revision);
    free(api);
}

rw_rc rw_query_api_set_external_labels(rw_query_api *api, const rw_label *labels, size_t n)
{
    rw_label *copy = NULL;
    if (n) {
        copy = copy_labels(labels, n);
        if (!copy)
            return RW_NOMEM;
    }
    pthread_mutex_lock(&api->ext_mu);
    rw_label *old = api->ext;
    api->ext = copy;
    api->next = n;
    pthread_mutex_unlock(&api->ext_mu);
    free(old);
    return RW_OK;
}

size_t rw_qapi_ext_labels(rw_query_api *api, rw_arena *a, rw_label **out)
{
    *out = NULL;
    pthread_mutex_lock(&api->ext_mu);
    size_t n = api->next;
    rw_label *l = n ? rw_arena_alloc(a, n * sizeof *l) : NULL;
    if (l) {
        for (size_t i = 0; i < n; i++) {
            l[i].name = rw_arena_strdup(a, api->ext[i].name);
            l[i].value = rw_arena_strdup(a, api->ext[i].value);
            if (!l[i].name || !l[i].value) {
                l = NULL;
                break;
            }
        }
    }
    pthread_mutex_unlock(&api->ext_mu);
    if (!l)
        return 0;
    *out = l;
    return n;
}

rw_rc rw_query_api_routes(rw_query_api *api, rw_routes *routes, rw_err *err)
{
    const unsigned GP = RW_HTTP_GET | RW_HTTP_POST;
    const struct {
        const char *path;
        unsigned methods;
        size_t max_body;
        rw_http_handler_fn fn;
    } rows[] = {
        {"/api/v1/query", GP, QUERY_MAX_BODY, rw_qapi_query},
        {"/api/v1/query_range", GP, QUERY_MAX_BODY, rw_qapi_query_range},
        {"/api/v1/series", GP, QUERY_MAX_BODY, rw_qapi_series},
        {"/api/v1/labels", GP, QUERY_MAX_BODY, rw_qapi_labels},
        {"/api/v1/label/*", RW_HTTP_GET, 0, rw_qapi_label_values},
        {"/api/v1/metadata", RW_HTTP_GET, 0, rw_qapi_metadata},
        {"/api/v1/status/buildinfo", RW_HTTP_GET, 0, rw_qapi_buildinfo},
        {"/api/v1/status/tsdb", RW_HTTP_GET, 0, rw_qapi_tsdb},
        {"/federate", RW_HTTP_GET, 0, rw_qapi_federate},
        {"/api/v1/read", RW_HTTP_POST, READ_MAX_BODY, rw_qapi_remote_read},
        {"/api/v1/query_exemplars", GP, QUERY_MAX_BODY, rw_qapi_exemplars},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rw_http_route r = {.path = rows[i].path, .methods = rows[i].methods,
                           .perm = RW_PERM_READ, .max_body = rows[i].max_body,
                           .fn = rows[i].fn, .ctx = api};
        rw_rc rc = rw_routes_add(routes, &r, err);
        if (rc != RW_OK)
            return rc;
    }
    return RW_OK;
}

/* ---- per-request context ---- */

/* qmu held */
static void slots_publish(rw_query_api *api)
{
    rw_gauge_set(api->g_running, (double)api->running);
    rw_gauge_set(api->g_waiting, (double)api->waiting);
}

static int slot_acquire(rw_query_api *api)
{
    pthread_mutex_lock(&api->qmu);
    if (api->running < api->max_concurrent) {
        api->running++;
        slots_publish(api);
        pthread_mutex_unlock(&api->qmu);
        return 1;
    }
    if (api->waiting >= api->max_queued) {
        pthread_mutex_unlock(&api->qmu);
        return 0;
    }
    api->waiting++;
    slots_publish(api);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += api->queue_timeout_ms / 1000;
    ts.tv_nsec += (api->queue_timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int ok = 0;
    for (;;) {
        if (api->running < api->max_concurrent) {
            api->running++;
            ok = 1;
            break;
        }
        if (pthread_cond_timedwait(&api->qcv, &api->qmu, &ts) != 0 &&
            api->running >= api->max_concurrent)
            break;
    }
    api->waiting--;
    slots_publish(api);
    pthread_mutex_unlock(&api->qmu);
    return ok;
}

static void slot_release(rw_query_api *api)
{
    pthread_mutex_lock(&api->qmu);
    api->running--;
    slots_publish(api);
    pthread_cond_signal(&api->qcv);
    pthread_mutex_unlock(&api->qmu);
}

int rw_qapi_req_begin(rw_query_api *api, rw_http_req *req, rw_http_resp *resp,
                      int64_t timeout_ms, int text, qapi_req *r)
{
    memset(r, 0, sizeof *r);
    if (!slot_acquire(api)) {
        rw_counter_add(api->queue_rejected, 1);
        const char *fmt = "too many concurrent read requests (query.max_concurrent %zu, "
                          "query.max_queued %zu); retry later";
        if (text)
            rw_http_resp_text(resp, 503, fmt, api->max_concurrent, api->max_queued);
        else
            rw_qapi_error(resp, 503, "unavailable", fmt, api->max_concurrent, api->max_queued);
        rw_http_resp_header(resp, "Retry-After", "5");
        return 0;
    }
    r->slot = 1;
    rw_err e;
    rw_err_init(&e);
    if (!(r->a = rw_arena_new(0, api->max_memory_bytes)) ||
        rw_query_scope_matcher(rw_http_principal(req), &r->scope, &r->has_scope, &e) != RW_OK) {
        if (text)
            rw_http_resp_text(resp, 503, "%s", r->a ? e.msg : "out of memory");
        else
            rw_qapi_error(resp, 503, "unavailable", "%s", r->a ? e.msg : "out of memory");
        rw_qapi_req_end(api, r);
        return 0;
    }
    r->q = api->querier;
    if (r->has_scope)
        r->q = rw_query_scoped(&api->querier, &r->scope, r->a);
    if (timeout_ms > 0) {
        r->deadline_ns = rw_mono_ns() + timeout_ms * 1000000;
        r->q = rw_querier_with_deadline(&r->q, r->deadline_ns, r->a);
    }
    resp->body.cap = api->max_response_bytes;
    return 1;
}

void rw_qapi_req_end(rw_query_api *api, qapi_req *r)
{
    if (r->has_scope)
        rw_matcher_free(&r->scope);
    r->has_scope = 0;
    rw_arena_free(r->a);
    r->a = NULL;
    if (r->slot)
        slot_release(api);
    r->slot = 0;
}

void rw_qapi_req_error(rw_query_api *api, qapi_req *r, rw_http_resp *resp, rw_rc rc,
                       const char *msg)
{
    if (r->a && rw_arena_over_cap(r->a))
        rw_qapi_error(resp, 422, QAPI_EXEC,
                      "the request would use more than %zu bytes of memory "
                      "(query.max_memory_bytes)",
                      api->max_memory_bytes);
    else
        rw_qapi_error_rc(resp, rc, msg);
}

void rw_qapi_observe(rw_query_api *api, qapi_endpoint ep, int64_t start_ns)
{
    rw_histogram_observe(api->duration[ep], (double)(rw_mono_ns() - start_ns) / 1e9);
}

/* ---- envelope ---- */

void rw_qapi_error(rw_http_resp *resp, int status, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "application/json";
    rw_buf_reset(&resp->body);
    rw_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
    rw_json_str(&resp->body, type);
    rw_buf_puts(&resp->body, ",\"error\":");
    rw_json_str(&resp->body, msg);
    rw_buf_putc(&resp->body, '}');
}

void rw_qapi_error_rc(rw_http_resp *resp, rw_rc rc, const char *msg)
{
    const char *type;
    int status;
    switch (rc) {
    case RW_BADREQ:
    case RW_TOOLARGE:
    case RW_UNSUPPORTED:
        type = QAPI_BAD_DATA;
        status = rw_rc_http_status(rc);
        break;
    case RW_EXEC:
    case RW_LIMIT: /* e.g. the engine's max samples: Prometheus says "execution" */
        type = QAPI_EXEC;
        status = 422;
        break;
    case RW_TIMEOUT: type = "timeout"; status = 503; break;
    case RW_CANCELED: type = "canceled"; status = 503; break;
    case RW_NOTFOUND: type = "not_found"; status = 404; break;
    case RW_AGAIN:
    case RW_NOMEM:
    case RW_IO:
        type = "unavailable";
        status = 503;
        break;
    default:
        type = QAPI_INTERNAL;
        status = 500;
        break;
    }
    rw_qapi_error(resp, status, type, "%s", msg);
}

void rw_qapi_bad_param(rw_http_resp *resp, const char *param, const char *msg)
{
    rw_qapi_error(resp, 400, QAPI_BAD_DATA, "invalid parameter \"%s\": %s", param, msg);
}

void rw_qapi_begin(rw_http_resp *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    resp->gzip_ok = 1;
    rw_buf_reset(&resp->body);
    rw_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
}

/* At most 10 of each kind, then "N more ... annotations omitted", as
 * Prometheus' response writer does. */
#define MAX_ANNOTATIONS 10

static void str_array(rw_buf *b, const char *key, const char *kind, const char *const *s,
                      size_t n)
{
    if (!n)
        return;
    rw_buf_printf(b, ",\"%s\":[", key);
    size_t shown = n > MAX_ANNOTATIONS ? MAX_ANNOTATIONS : n;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            rw_buf_putc(b, ',');
        rw_json_str(b, s[i] ? s[i] : "");
    }
    if (n > shown)
        rw_buf_printf(b, ",\"%zu more %s annotations omitted\"", n - shown, kind);
    rw_buf_putc(b, ']');
}

void rw_qapi_end(rw_http_resp *resp, const char *const *warnings, size_t nwarnings,
                 const char *const *infos, size_t ninfos)
{
    str_array(&resp->body, "warnings", "warning", warnings, nwarnings);
    str_array(&resp->body, "infos", "info", infos, ninfos);
    rw_buf_putc(&resp->body, '}');
    if (resp->body.failed == 2)
        rw_qapi_error(resp, 422, QAPI_EXEC,
                      "the response would be larger than %zu bytes (query.max_response_bytes); "
                      "narrow the selection or set limit",
                      resp->body.cap);
    else if (resp->body.failed)
        rw_qapi_error(resp, 503, "unavailable", "out of memory writing the response");
}

void rw_qapi_labels_json(rw_buf *b, const rw_label *l, size_t n)
{
    rw_json_labels(b, l, n);
}

/* ---- parameters ---- */

/* Prometheus reads an empty parameter as an absent one (r.FormValue). */
static const char *param(rw_http_req *req, const char *name)
{
    const char *v = rw_http_param(req, name);
    return v && *v ? v : NULL;
}

static rw_rc parse_time(const char *s, int64_t *ms, rw_err *err)
{
    if (strcmp(s, PROM_MIN_TIME) == 0) {
        *ms = INT64_MIN;
        return RW_OK;
    }
    if (strcmp(s, PROM_MAX_TIME) == 0) {
        *ms = INT64_MAX;
        return RW_OK;
    }
    return rw_parse_api_time(s, ms, err);
}

int rw_qapi_time_param(rw_http_req *req, rw_http_resp *resp, const char *name, int64_t def,
                       int64_t *ms)
{
    const char *v = param(req, name);
    if (!v) {
        *ms = def;
        return 1;
    }
    rw_err e;
    rw_err_init(&e);
    if (parse_time(v, ms, &e) != RW_OK) {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA,
                      "invalid parameter \"%s\": invalid time value for '%s': %s", name, name,
                      e.msg);
        return 0;
    }
    return 1;
}

int rw_qapi_limit_param(rw_http_req *req, rw_http_resp *resp, size_t *limit)
{
    *limit = 0;
    const char *v = param(req, "limit");
    if (!v)
        return 1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    char msg[256];
    if (*end || end == v || v[0] == ' ') {
        snprintf(msg, sizeof msg, "strconv.Atoi: parsing \"%.64s\": invalid syntax", v);
        rw_qapi_bad_param(resp, "limit", msg);
        return 0;
    }
    if (errno == ERANGE) {
        snprintf(msg, sizeof msg, "strconv.Atoi: parsing \"%.64s\": value out of range", v);
        rw_qapi_bad_param(resp, "limit", msg);
        return 0;
    }
    if (n < 0) {
        rw_qapi_bad_param(resp, "limit", "limit must be non-negative");
        return 0;
    }
    *limit = (size_t)n;
    return 1;
}

void rw_qapi_msets_free(qapi_msets *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->lens[i]; j++)
            rw_matcher_free(&m->sets[i][j]);
        free(m->sets[i]);
    }
    free(m->sets);
    free(m->lens);
    memset(m, 0, sizeof *m);
}

int rw_qapi_parse_matches(rw_http_req *req, rw_http_resp *resp, qapi_msets *out)
{
    memset(out, 0, sizeof *out);
    const char **vals;
    size_t n = rw_http_params(req, "match[]", &vals);
    if (!n)
        return 1;
    out->sets = calloc(n, sizeof *out->sets);
    out->lens = calloc(n, sizeof *out->lens);
    if (!out->sets || !out->lens) {
        rw_qapi_msets_free(out);
        rw_qapi_error(resp, 503, "unavailable", "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        rw_err e;
        rw_err_init(&e);
        rw_matcher *ms = NULL;
        size_t nms = 0;
        if (rw_promql_parse_selector(vals[i], &ms, &nms, &e) != RW_OK) {
            rw_qapi_msets_free(out);
            rw_qapi_bad_param(resp, "match[]", e.msg);
            return 0;
        }
        out->sets[i] = ms;
        out->lens[i] = nms;
        out->n = i + 1;
        int nonempty = 0;
        for (size_t j = 0; j < nms && !nonempty; j++)
            nonempty = !rw_matcher_matches_empty(&ms[j]);
        if (!nonempty) {
            rw_qapi_msets_free(out);
            rw_qapi_bad_param(resp, "match[]",
                              "match[] must contain at least one non-empty matcher");
            return 0;
        }
    }
    return 1;
}

size_t rw_qapi_merge_strings(rw_arena *a, char ***lists, const size_t *lens, size_t nlists,
                             char ***out)
{
    if (nlists == 1) {
        *out = lists[0];
        return lens[0];
    }
    size_t total = 0;
    for (size_t i = 0; i < nlists; i++)
        total += lens[i];
    char **res = rw_arena_alloc(a, (total ? total : 1) * sizeof *res);
    size_t *pos = rw_arena_calloc(a, nlists ? nlists : 1, sizeof *pos);
    size_t n = 0;
    if (!res || !pos) {
        *out = NULL;
        return 0;
    }
    /* k-way merge: k is the number of match[] parameters, small */
    for (;;) {
        const char *min = NULL;
        for (size_t i = 0; i < nlists; i++)
            if (pos[i] < lens[i] && (!min || strcmp(lists[i][pos[i]], min) < 0))
                min = lists[i][pos[i]];
        if (!min)
            break;
        res[n++] = (char *)min;
        for (size_t i = 0; i < nlists; i++)
            while (pos[i] < lens[i] && strcmp(lists[i][pos[i]], min) == 0)
                pos[i]++;
    }
    *out = res;
    return n;
}

/* ---- query and query_range ---- */

static void write_time(rw_buf *b, int64_t t_ms)
{
    /* the same seconds notation rw_json_point uses */
    const char *sign = t_ms < 0 ? "-" : "";
    uint64_t a = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
    unsigned long long sec = a / 1000, frac = a % 1000;
    if (!frac) {
        rw_buf_printf(b, "%s%llu", sign, sec);
        return;
    }
    char f[8];
    snprintf(f, sizeof f, "%03llu", frac);
    int k = 3;
    while (k > 0 && f[k - 1] == '0')
        f[--k] = '\0';
    rw_buf_printf(b, "%s%llu.%s", sign, sec, f);
}

/* data of a query answer; *truncated set when limit cut series off */
static void write_result(rw_buf *b, const rw_result *r, size_t limit, int *truncated)
{
    *truncated = 0;
    rw_buf_puts(b, "{\"resultType\":");
    rw_json_str(b, rw_val_type_name(r->type));
    rw_buf_puts(b, ",\"result\":");
    switch (r->type) {
    case RW_VAL_SCALAR:
        rw_json_point(b, r->t, r->scalar);
        break;
    case RW_VAL_STRING:
        rw_buf_putc(b, '[');
        write_time(b, r->t);
        rw_buf_putc(b, ',');
        rw_json_str(b, r->string ? r->string : "");
        rw_buf_putc(b, ']');
        break;
    case RW_VAL_VECTOR:
    case RW_VAL_MATRIX: {
        size_t n = r->nseries;
        if (limit && n > limit) {
            n = limit;
            *truncated = 1;
        }
        int vec = r->type == RW_VAL_VECTOR;
        rw_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            const rw_result_series *s = &r->series[i];
            if (i)
                rw_buf_putc(b, ',');
            rw_buf_puts(b, "{\"metric\":");
            rw_qapi_labels_json(b, s->labels, s->nlabels);
            if (vec) {
                rw_buf_puts(b, ",\"value\":");
                if (s->npoints)
                    rw_json_point(b, s->points[0].t, s->points[0].v);
                else
                    rw_buf_puts(b, "null");
            } else {
                rw_buf_puts(b, ",\"values\":[");
                for (size_t j = 0; j < s->npoints; j++) {
                    if (j)
                        rw_buf_putc(b, ',');
                    rw_json_point(b, s->points[j].t, s->points[j].v);
                }
                rw_buf_putc(b, ']');
            }
            rw_buf_putc(b, '}');
        }
        rw_buf_putc(b, ']');
        break;
    }
    default:
        rw_buf_puts(b, "null");
        break;
    }
    rw_buf_putc(b, '}');
}

/* Answers with the result or the engine's error. */
static void answer(rw_http_req *req, rw_http_resp *resp, rw_rc rc, const rw_result *res,
                   const rw_err *e, size_t limit)
{
    if (rc != RW_OK) {
        if (rc == RW_BADREQ) /* the engine's parse errors */
            rw_qapi_bad_param(resp, "query", e->msg);
        else
            rw_qapi_error_rc(resp, rc, e->msg);
        return;
    }
    rw_qapi_begin(resp);
    int truncated;
    write_result(&resp->body, res, limit, &truncated);
    const char *const *w = res->warnings;
    size_t nw = res->nwarnings;
    if (truncated) {
        const char **w2 = rw_arena_alloc(rw_http_arena(req), (nw + 1) * sizeof *w2);
        if (w2) {
            if (nw)
                memcpy(w2, w, nw * sizeof *w2);
            w2[nw++] = "results truncated due to limit";
            w = w2;
        }
    }
    rw_qapi_end(resp, w, nw, res->infos, res->ninfos);
}

/* An optional duration parameter: 1 with *ms set, 0 when absent, -1 when
 * malformed (the 400 answer written). */
static int duration_param(rw_http_req *req, rw_http_resp *resp, const char *name, int64_t *ms)
{
    const char *v = param(req, name);
    if (!v)
        return 0;
    rw_err e;
    rw_err_init(&e);
    if (rw_parse_api_duration(v, ms, &e) != RW_OK) {
        rw_qapi_bad_param(resp, name, e.msg);
        return -1;
    }
    return 1;
}

/* `timeout`: the smaller of the parameter and the configured default. */
static int timeout_param(rw_query_api *api, rw_http_req *req, rw_http_resp *resp, int64_t *ms)
{
    *ms = api->default_timeout_ms;
    int64_t t;
    int r = duration_param(req, resp, "timeout", &t);
    if (r <= 0)
        return r == 0;
    if (t < 1)
        t = 1; /* an already expired deadline: the query times out */
    if (t < *ms)
        *ms = t;
    return 1;
}

/* `lookback_delta` is validated like Prometheus does; the engine applies
 * its configured lookback (a per-query lookback is not in its contract). */
static int lookback_param(rw_http_req *req, rw_http_resp *resp)
{
    int64_t t;
    return duration_param(req, resp, "lookback_delta", &t) >= 0;
}

static int engine_ready(rw_query_api *api, rw_http_resp *resp)
{
    if (api->engine)
        return 1;
    rw_qapi_error(resp, 503, "unavailable", "query engine not available");
    return 0;
}

/* Evaluates x under one query request (its arena, querier, timeout and
 * memory bound) and answers: at start when step is 0 (/query), else from
 * start to end by step (/query_range, where step > 0). */
static void eval_answer(rw_query_api *api, rw_http_req *req, rw_http_resp *resp,
                        const rw_promql_expr *x, int64_t start, int64_t end, int64_t step,
                        int64_t timeout, size_t limit)
{
    qapi_req r;
    if (!rw_qapi_req_begin(api, req, resp, timeout, 0, &r))
        return;
    rw_result res;
    memset(&res, 0, sizeof res);
    rw_err e;
    rw_err_init(&e);
    rw_eval_opts eo = {.querier = &r.q, .timeout_ms = timeout,
                       .max_memory_bytes = api->max_memory_bytes};
    rw_rc rc = step ? rw_engine_eval_range(api->engine, x, start, end, step, &eo, r.a, &res, &e)
                    : rw_engine_eval_instant(api->engine, x, start, &eo, r.a, &res, &e);
    answer(req, resp, rc, &res, &e, limit);
    if (rc != RW_OK && rw_arena_over_cap(r.a))
        rw_qapi_req_error(api, &r, resp, rc, e.msg);
    rw_qapi_req_end(api, &r);
}

void rw_qapi_query(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    size_t limit;
    int64_t t, timeout;
    if (!rw_qapi_limit_param(req, resp, &limit) ||
        !rw_qapi_time_param(req, resp, "time", rw_now_ms(), &t) ||
        !timeout_param(api, req, resp, &timeout) || !lookback_param(req, resp) ||
        !engine_ready(api, resp))
        goto out;
    const char *q = rw_http_param(req, "query");
    rw_err e;
    rw_err_init(&e);
    rw_promql_expr *x = rw_promql_prepare(q ? q : "", &e);
    if (!x) {
        answer(req, resp, e.code, NULL, &e, limit);
        goto out;
    }
    eval_answer(api, req, resp, x, t, t, 0, timeout, limit);
    rw_promql_expr_free(x);
out:
    rw_qapi_observe(api, QAPI_EP_QUERY, start_ns);
}

void rw_qapi_query_range(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    size_t limit;
    int64_t start, end, step, timeout;
    rw_err e;
    rw_err_init(&e);
    if (!rw_qapi_limit_param(req, resp, &limit))
        goto out;
    const char *v = rw_http_param(req, "start");
    if (parse_time(v ? v : "", &start, &e) != RW_OK) {
        rw_qapi_bad_param(resp, "start", e.msg);
        goto out;
    }
    v = rw_http_param(req, "end");
    if (parse_time(v ? v : "", &end, &e) != RW_OK) {
        rw_qapi_bad_param(resp, "end", e.msg);
        goto out;
    }
    if (end < start) {
        rw_qapi_bad_param(resp, "end", "end timestamp must not be before start time");
        goto out;
    }
    v = rw_http_param(req, "step");
    if (rw_parse_api_duration(v ? v : "", &step, &e) != RW_OK) {
        rw_qapi_bad_param(resp, "step", e.msg);
        goto out;
    }
    if (step <= 0) {
        rw_qapi_bad_param(resp, "step",
                          "zero or negative query resolution step widths are not accepted. "
                          "Try a positive integer");
        goto out;
    }
    /* for safety, as Prometheus: at most 11,000 points per series; computed
       in unsigned arithmetic since end - start may not fit int64 */
    if (((uint64_t)end - (uint64_t)start) / (uint64_t)step > MAX_POINTS_PER_SERIES) {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA,
                      "exceeded maximum resolution of 11,000 points per timeseries. "
                      "Try decreasing the query resolution (?step=XX)");
        goto out;
    }
    if (!timeout_param(api, req, resp, &timeout) || !lookback_param(req, resp) ||
        !engine_ready(api, resp))
        goto out;
    const char *q = rw_http_param(req, "query");
    rw_promql_expr *x = rw_promql_prepare(q ? q : "", &e);
    if (!x) {
        answer(req, resp, e.code, NULL, &e, limit);
        goto out;
    }
    eval_answer(api, req, resp, x, start, end, step, timeout, limit);
    rw_promql_expr_free(x);
out:
    rw_qapi_observe(api, QAPI_EP_QUERY_RANGE, start_ns);
}
