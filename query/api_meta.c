/* api_meta.c - the Prometheus HTTP API's metadata endpoints: /api/v1/series,
 * /api/v1/labels, /api/v1/label/NAME/values, /api/v1/metadata,
 * /api/v1/status/buildinfo and /api/v1/status/tsdb. Each one parses its
 * parameters like Prometheus (defaults: all time, no limit), asks the store
 * (store/store.h) once per match[] selector, merges the sorted answers and
 * writes them in Prometheus' JSON shape, including the "results truncated
 * due to limit" warning. */
#include "api_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/text.h"
#include "core/timeutil.h"

#define TRUNCATED "results truncated due to limit"
#define TSDB_MAX_LIMIT 10000

static const char *const truncated_warning[] = {TRUNCATED};

static const char *param(rw_http_req *req, const char *name)
{
    const char *v = rw_http_param(req, name);
    return v && *v ? v : NULL;
}

/* The answer of the list endpoints: a JSON array of the first `limit` (0: no
 * limit) of the n elements of v, each written by put, and the truncation
 * warning when some were cut. */
static void list_answer(rw_http_resp *resp, const void *v, size_t n, size_t limit,
                        void (*put)(rw_buf *b, const void *v, size_t i))
{
    int truncated = 0;
    if (limit && n > limit) {
        n = limit;
        truncated = 1;
    }
    rw_qapi_begin(resp);
    rw_buf *b = &resp->body;
    rw_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(b, ',');
        put(b, v, i);
    }
    rw_buf_putc(b, ']');
    rw_qapi_end(resp, truncated_warning, truncated, NULL, 0);
}

/* ---- /api/v1/series ---- */

static int cmp_series(const void *a, const void *b)
{
    const rw_series_data *x = a, *y = b;
    return rw_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static void put_series(rw_buf *b, const void *v, size_t i)
{
    const rw_series_data *s = (const rw_series_data *)v + i;
    rw_qapi_labels_json(b, s->labels, s->nlabels);
}

void rw_qapi_series(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    qapi_req r = {0};
    rw_arena *a = NULL;
    qapi_msets ms = {0};
    const char **vals;
    size_t limit;
    int64_t mint, maxt;
    if (rw_http_params(req, "match[]", &vals) == 0) {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA, "no match[] parameter provided");
        goto out;
    }
    if (!rw_qapi_limit_param(req, resp, &limit) ||
        !rw_qapi_time_param(req, resp, "start", INT64_MIN, &mint) ||
        !rw_qapi_time_param(req, resp, "end", INT64_MAX, &maxt) ||
        !rw_qapi_parse_matches(req, resp, &ms) ||
        !rw_qapi_req_begin(api, req, resp, api->default_timeout_ms, 0, &r))
        goto out;
    a = r.a;

    rw_series_data *all = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ms.n; i++) {
        rw_series_data *s;
        size_t ns;
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = rw_query_select(&r.q, ms.sets[i], ms.lens[i], mint, maxt,
                                   RW_SELECT_LABELS_ONLY, 0, a, &s, &ns, &e);
        if (rc != RW_OK) {
            rw_qapi_req_error(api, &r, resp, rc, e.msg);
            goto out;
        }
        if (ms.n == 1) {
            all = s;
            n = ns;
            break;
        }
        rw_series_data *grown = rw_arena_realloc(a, all, n * sizeof *all, (n + ns) * sizeof *all);
        if (!grown && n + ns) {
            rw_qapi_req_error(api, &r, resp, RW_NOMEM, "out of memory");
            goto out;
        }
        all = grown;
        memcpy(all + n, s, ns * sizeof *s);
        n += ns;
    }
    if (ms.n > 1 && n > 1) {
        /* union: each answer is sorted, their concatenation is not */
        qsort(all, n, sizeof *all, cmp_series);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (!rw_labels_equal(all[i].labels, all[i].nlabels, all[k - 1].labels,
                                 all[k - 1].nlabels))
                all[k++] = all[i];
        n = k;
    }
    list_answer(resp, all, n, limit, put_series);
out:
    rw_qapi_req_end(api, &r);
    rw_qapi_msets_free(&ms);
    rw_qapi_observe(api, QAPI_EP_SERIES, start_ns);
}

/* ---- /api/v1/labels and /api/v1/label/NAME/values ---- */

static void put_string(rw_buf *b, const void *v, size_t i)
{
    rw_json_str(b, ((char *const *)v)[i]);
}

/* Label names (name == NULL) or values of `name`, over the union of the
 * match[] selectors (all series when there are none). */
static void names_or_values(rw_query_api *api, rw_http_req *req, rw_http_resp *resp,
                            const char *name)
{
    qapi_req r = {0};
    rw_arena *a;
    qapi_msets ms = {0};
    size_t limit;
    int64_t mint, maxt;
    if (!rw_qapi_limit_param(req, resp, &limit) ||
        !rw_qapi_time_param(req, resp, "start", INT64_MIN, &mint) ||
        !rw_qapi_time_param(req, resp, "end", INT64_MAX, &maxt) ||
        !rw_qapi_parse_matches(req, resp, &ms) ||
        !rw_qapi_req_begin(api, req, resp, api->default_timeout_ms, 0, &r))
        goto out;
    a = r.a;
    size_t nsets = ms.n ? ms.n : 1;
    char ***lists = rw_arena_calloc(a, nsets, sizeof *lists);
    size_t *lens = rw_arena_calloc(a, nsets, sizeof *lens);
    if (!lists || !lens) {
        rw_qapi_req_error(api, &r, resp, RW_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nsets; i++) {
        const rw_matcher *m = ms.n ? ms.sets[i] : NULL;
        size_t nm = ms.n ? ms.lens[i] : 0;
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = name ? r.q.ops->label_values(r.q.ctx, name, m, nm, mint, maxt, a, &lists[i],
                                                &lens[i], &e)
                        : r.q.ops->label_names(r.q.ctx, m, nm, mint, maxt, a, &lists[i], &lens[i],
                                               &e);
        if (rc != RW_OK) {
            rw_qapi_req_error(api, &r, resp, rc, e.msg);
            goto out;
        }
    }
    char **v;
    size_t n = rw_qapi_merge_strings(a, lists, lens, nsets, &v);
    list_answer(resp, v, n, limit, put_string);
out:
    rw_qapi_req_end(api, &r);
    rw_qapi_msets_free(&ms);
}

void rw_qapi_labels(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    names_or_values(api, req, resp, NULL);
    rw_qapi_observe(api, QAPI_EP_LABELS, start_ns);
}

static int legacy_rune(unsigned char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Prometheus 3's "U__" value-encoding escape of a UTF-8 name: "__" stands for
 * "_", "_HEX_" for the code point HEX, other bytes are legacy name runes.
 * Anything malformed leaves the name as it was (as Prometheus does). */
static const char *unescape_name(rw_arena *a, const char *s)
{
    if (strncmp(s, "U__", 3) != 0)
        return s;
    size_t n = strlen(s);
    char *out = rw_arena_alloc(a, n + 1), *o = out;
    if (!out)
        return s;
    for (size_t i = 3; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '_') {
            if (i + 1 < n && s[i + 1] == '_') {
                *o++ = '_';
                i += 2;
                continue;
            }
            unsigned long cp = 0;
            size_t j = i + 1, digits = 0;
            for (; j < n && s[j] != '_'; j++, digits++) {
                int d = rw_hex_digit((unsigned char)s[j]);
                if (d < 0 || digits >= 8)
                    return s;
                cp = cp * 16 + (unsigned long)d;
            }
            if (j >= n || digits == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return s;
            o += rw_utf8_put(o, (uint32_t)cp);
            i = j + 1;
        } else if (legacy_rune(c, 0)) {
            *o++ = (char)c;
            i++;
        } else {
            return s;
        }
    }
    *o = '\0';
    return out;
}

void rw_qapi_label_values(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    rw_arena *a = rw_http_arena(req);
    /* the path arrives percent-decoded: /api/v1/label/NAME/values, and NAME
       may itself contain '/' */
    static const char prefix[] = "/api/v1/label/", suffix[] = "/values";
    const char *path = rw_http_path(req);
    size_t pl = strlen(path), np = sizeof prefix - 1, ns = sizeof suffix - 1;
    if (pl < np + ns || strncmp(path, prefix, np) != 0 || strcmp(path + pl - ns, suffix) != 0) {
        rw_http_resp_text(resp, 404, "404 page not found");
        goto out;
    }
    const char *name = rw_arena_strndup(a, path + np, pl - np - ns);
    if (!name) {
        rw_qapi_error(resp, 503, "unavailable", "out of memory");
        goto out;
    }
    name = unescape_name(a, name);
    if (!*name || !rw_utf8_valid(name, strlen(name))) {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA, "invalid label name: \"%s\"", name);
        goto out;
    }
    names_or_values(api, req, resp, name);
out:
    rw_qapi_observe(api, QAPI_EP_LABEL_VALUES, start_ns);
}

/* ---- /api/v1/metadata ---- */

/* Prometheus: a number (negative allowed), or `errmsg`. */
static int int_param(rw_http_req *req, rw_http_resp *resp, const char *name, long long def,
                     const char *errmsg, long long *out)
{
    *out = def;
    const char *v = param(req, name);
    if (!v)
        return 1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v || errno == ERANGE || v[0] == ' ') {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA, "%s", errmsg);
        return 0;
    }
    *out = n;
    return 1;
}

void rw_qapi_metadata(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    long long limit, per_metric;
    if (!int_param(req, resp, "limit", -1, "limit must be a number", &limit) ||
        !int_param(req, resp, "limit_per_metric", -1, "limit_per_metric must be a number",
                   &per_metric))
        goto out;
    const char *metric = param(req, "metric");
    rw_metadata *md = NULL;
    size_t n = 0;
    if (limit != 0) { /* Prometheus answers {} for limit=0 */
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = rw_store_get_metadata(api->store, metric, limit > 0 ? (size_t)limit : 0,
                                         rw_http_arena(req), &md, &n, &e);
        if (rc != RW_OK) {
            rw_qapi_error_rc(resp, rc, e.msg);
            goto out;
        }
    }
    rw_qapi_begin(resp);
    rw_buf *b = &resp->body;
    rw_buf_putc(b, '{');
    /* sorted by metric; the store keeps one entry per metric (last write
       wins), so consecutive equal names are grouped all the same */
    size_t emitted = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(md[j].metric, md[i].metric) == 0)
            j++;
        if (limit > 0 && emitted >= (size_t)limit)
            break;
        if (emitted++)
            rw_buf_putc(b, ',');
        rw_json_str(b, md[i].metric);
        rw_buf_puts(b, ":[");
        for (size_t k = i; k < j; k++) {
            if (per_metric > 0 && k - i >= (size_t)per_metric)
                break;
            if (k > i)
                rw_buf_putc(b, ',');
            rw_buf_puts(b, "{\"type\":");
            rw_json_str(b, md[k].type ? md[k].type : "unknown");
            rw_buf_puts(b, ",\"help\":");
            rw_json_str(b, md[k].help ? md[k].help : "");
            rw_buf_puts(b, ",\"unit\":");
            rw_json_str(b, md[k].unit ? md[k].unit : "");
            rw_buf_putc(b, '}');
        }
        rw_buf_putc(b, ']');
        i = j;
    }
    rw_buf_putc(b, '}');
    rw_qapi_end(resp, NULL, 0, NULL, 0);
out:
    rw_qapi_observe(api, QAPI_EP_METADATA, start_ns);
}

/* ---- /api/v1/status/buildinfo ---- */

#ifdef __clang__
#define CC_VERSION "clang " __clang_version__
#elif defined(__GNUC__)
#define CC_VERSION "gcc " __VERSION__
#else
#define CC_VERSION "n/a"
#endif

void rw_qapi_buildinfo(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    rw_qapi_begin(resp);
    rw_buf *b = &resp->body;
    rw_buf_puts(b, "{\"version\":");
    rw_json_str(b, api->version);
    rw_buf_puts(b, ",\"revision\":");
    rw_json_str(b, api->revision);
    /* Go's build details have no C counterpart but clients expect the keys */
    rw_buf_puts(b, ",\"branch\":\"n/a\",\"buildUser\":\"n/a\",\"buildDate\":\"n/a\","
                   "\"goVersion\":");
    rw_json_str(b, CC_VERSION);
    rw_buf_putc(b, '}');
    rw_qapi_end(resp, NULL, 0, NULL, 0);
    rw_qapi_observe(api, QAPI_EP_BUILDINFO, start_ns);
}

/* ---- /api/v1/status/tsdb ---- */

static void stat_array(rw_buf *b, const char *key, const rw_stat_entry *e, size_t n)
{
    rw_buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(b, ',');
        rw_buf_puts(b, "{\"name\":");
        rw_json_str(b, e[i].name ? e[i].name : "");
        rw_buf_printf(b, ",\"value\":%llu}", (unsigned long long)e[i].value);
    }
    rw_buf_putc(b, ']');
}

void rw_qapi_tsdb(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    {
        /* cardinality spans every tenant's series */
        const rw_principal *p = rw_http_principal(req);
        if (p && !p->read_all) {
            rw_qapi_error(resp, 403, "forbidden",
                          "TSDB status covers every tenant; credential %s may read only its own",
                          p->name);
            return;
        }
    }
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    long long limit = 10;
    const char *v = param(req, "limit");
    if (v) {
        char *end;
        errno = 0;
        limit = strtoll(v, &end, 10);
        if (*end || end == v || errno == ERANGE || limit < 1) {
            rw_qapi_error(resp, 400, QAPI_BAD_DATA, "limit must be a positive number");
            goto out;
        }
        if (limit > TSDB_MAX_LIMIT) {
            rw_qapi_error(resp, 400, QAPI_BAD_DATA, "limit must not exceed %d", TSDB_MAX_LIMIT);
            goto out;
        }
    }
    rw_store_stats st;
    memset(&st, 0, sizeof st);
    rw_store_get_stats(api->store, &st);
    rw_store_cardinality card;
    memset(&card, 0, sizeof card);
    rw_err e;
    rw_err_init(&e);
    /* all entries: numLabelPairs is the sum of values over every label name
       (the store builds the full counts for any limit, so this costs only
       the arrays); the lists are cut to `limit` here */
    rw_rc rc = rw_store_cardinality_top(api->store, 0, rw_http_arena(req), &card, &e);
    if (rc != RW_OK) {
        rw_qapi_error_rc(resp, rc, e.msg);
        goto out;
    }
    unsigned long long pairs = 0;
    for (size_t i = 0; i < card.n_label_values; i++)
        pairs += card.label_values[i].value;
    size_t lim = (size_t)limit;
    if (card.n_by_metric > lim)
        card.n_by_metric = lim;
    if (card.n_label_values > lim)
        card.n_label_values = lim;
    if (card.n_memory_by_label > lim)
        card.n_memory_by_label = lim;
    if (card.n_by_label_pair > lim)
        card.n_by_label_pair = lim;
    rw_qapi_begin(resp);
    rw_buf *b = &resp->body;
    rw_buf_printf(b,
                  "{\"headStats\":{\"numSeries\":%llu,\"numLabelPairs\":%llu,"
                  "\"chunkCount\":%llu,\"minTime\":%lld,\"maxTime\":%lld}",
                  (unsigned long long)st.series, pairs, (unsigned long long)st.head_chunks,
                  (long long)st.min_time, (long long)st.max_time);
    stat_array(b, "seriesCountByMetricName", card.by_metric, card.n_by_metric);
    stat_array(b, "labelValueCountByLabelName", card.label_values, card.n_label_values);
    stat_array(b, "memoryInBytesByLabelName", card.memory_by_label, card.n_memory_by_label);
    stat_array(b, "seriesCountByLabelValuePair", card.by_label_pair, card.n_by_label_pair);
    rw_buf_putc(b, '}');
    rw_qapi_end(resp, NULL, 0, NULL, 0);
out:
    rw_qapi_observe(api, QAPI_EP_TSDB, start_ns);
}

/* ---- /api/v1/query_exemplars ---- */

/* rwgate stores no exemplars; Grafana asks for them when a panel enables
 * them, and an empty answer is what Prometheus gives for a time range
 * without any. The time range is still checked like Prometheus does. */
void rw_qapi_exemplars(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    int64_t mint, maxt;
    if (!rw_qapi_time_param(req, resp, "start", INT64_MIN, &mint) ||
        !rw_qapi_time_param(req, resp, "end", INT64_MAX, &maxt))
        goto out;
    if (maxt < mint) {
        rw_qapi_error(resp, 400, QAPI_BAD_DATA, "end timestamp must not be before start timestamp");
        goto out;
    }
    rw_qapi_begin(resp);
    rw_buf_puts(&resp->body, "[]");
    rw_qapi_end(resp, NULL, 0, NULL, 0);
out:
    rw_qapi_observe(api, QAPI_EP_EXEMPLARS, start_ns);
}
