/* api_meta.c - the Prometheus HTTP API's metadata endpoints: /api/v1/series,
 * /api/v1/labels, /api/v1/label/NAME/values, /api/v1/metadata,
 * /api/v1/status/buildinfo and /api/v1/status/tsdb. Each one parses its
 * parameters like Prometheus (defaults: all time, no limit), asks the store
 * (store/store.h) once per match[] selector, merges the sorted answers and
 * writes them in Prometheus' JSON shape, including the "results truncated
 * due to limit" warning. /api/v1/status/tsdb also takes VictoriaMetrics'
 * match[] and focusLabel, counting over the selected series. */
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

/* The union of the series that the match[] selectors select in
 * [mint, maxt], labels only, sorted; 0 after answering with an error. */
static int select_union(rw_query_api *api, rw_http_resp *resp, const qapi_msets *ms, int64_t mint,
                        int64_t maxt, rw_arena *a, rw_series_data **out, size_t *nout)
{
    rw_series_data *all = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ms->n; i++) {
        rw_series_data *s;
        size_t ns;
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = rw_query_select(&api->querier, ms->sets[i], ms->lens[i], mint, maxt,
                                   RW_SELECT_LABELS_ONLY, 0, a, &s, &ns, &e);
        if (rc != RW_OK) {
            rw_qapi_error_rc(resp, rc, e.msg);
            return 0;
        }
        if (ms->n == 1) {
            all = s;
            n = ns;
            break;
        }
        rw_series_data *grown = rw_arena_realloc(a, all, n * sizeof *all, (n + ns) * sizeof *all);
        if (!grown && n + ns) {
            rw_qapi_error(resp, 503, "unavailable", "out of memory");
            return 0;
        }
        all = grown;
        memcpy(all + n, s, ns * sizeof *s);
        n += ns;
    }
    if (ms->n > 1 && n > 1) {
        /* union: each answer is sorted, their concatenation is not */
        qsort(all, n, sizeof *all, cmp_series);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (!rw_labels_equal(all[i].labels, all[i].nlabels, all[k - 1].labels,
                                 all[k - 1].nlabels))
                all[k++] = all[i];
        n = k;
    }
    *out = all;
    *nout = n;
    return 1;
}

void rw_qapi_series(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    rw_arena *a = rw_http_arena(req);
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
        !rw_qapi_parse_matches(req, resp, &ms))
        goto out;
    rw_series_data *all;
    size_t n;
    if (select_union(api, resp, &ms, mint, maxt, a, &all, &n))
        list_answer(resp, all, n, limit, put_series);
out:
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
    rw_arena *a = rw_http_arena(req);
    qapi_msets ms = {0};
    size_t limit;
    int64_t mint, maxt;
    if (!rw_qapi_limit_param(req, resp, &limit) ||
        !rw_qapi_time_param(req, resp, "start", INT64_MIN, &mint) ||
        !rw_qapi_time_param(req, resp, "end", INT64_MAX, &maxt) ||
        !rw_qapi_parse_matches(req, resp, &ms))
        return;
    size_t nsets = ms.n ? ms.n : 1;
    char ***lists = rw_arena_calloc(a, nsets, sizeof *lists);
    size_t *lens = rw_arena_calloc(a, nsets, sizeof *lens);
    if (!lists || !lens) {
        rw_qapi_error(resp, 503, "unavailable", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nsets; i++) {
        const rw_matcher *m = ms.n ? ms.sets[i] : NULL;
        size_t nm = ms.n ? ms.lens[i] : 0;
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = name ? api->querier.ops->label_values(api->querier.ctx, name, m, nm, mint, maxt, a,
                                                &lists[i], &lens[i], &e)
                        : api->querier.ops->label_names(api->querier.ctx, m, nm, mint, maxt, a, &lists[i],
                                               &lens[i], &e);
        if (rc != RW_OK) {
            rw_qapi_error_rc(resp, rc, e.msg);
            goto out;
        }
    }
    char **v;
    size_t n = rw_qapi_merge_strings(a, lists, lens, nsets, &v);
    list_answer(resp, v, n, limit, put_string);
out:
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

/* Prometheus' keys (headStats, seriesCountByMetricName,
 * labelValueCountByLabelName, memoryInBytesByLabelName,
 * seriesCountByLabelValuePair) plus VictoriaMetrics' (totalSeries,
 * totalLabelValuePairs, seriesCountByLabelName and, with focusLabel,
 * seriesCountByFocusLabelValue). With match[], every count is over the
 * series the selectors select (VictoriaMetrics' semantics); without it, over
 * the whole store. */

typedef struct tsdb_lists {
    rw_stat_entry *v[6];
    size_t n[6];
} tsdb_lists;

enum { L_METRIC, L_VALUES, L_MEMORY, L_PAIR, L_BY_LABEL, L_FOCUS };

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

static int stat_desc(const void *x, const void *y)
{
    const rw_stat_entry *a = x, *b = y;
    if (a->value != b->value)
        return a->value < b->value ? 1 : -1;
    return strcmp(a->name, b->name);
}

typedef struct pair_ref {
    const char *name, *value;
} pair_ref;

static int cmp_pair(const void *x, const void *y)
{
    const pair_ref *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->value, b->value);
}

/* Appends to a list growing in the arena; 0 when out of memory. */
static int push(rw_arena *a, tsdb_lists *l, size_t cap[6], int k, char *name, uint64_t v)
{
    if (l->n[k] == cap[k]) {
        size_t nc = cap[k] ? cap[k] * 2 : 64;
        rw_stat_entry *g = rw_arena_realloc(a, l->v[k], cap[k] * sizeof *g, nc * sizeof *g);
        if (!g)
            return 0;
        l->v[k] = g;
        cap[k] = nc;
    }
    l->v[k][l->n[k]].name = name;
    l->v[k][l->n[k]].value = v;
    l->n[k]++;
    return 1;
}

/* Counts over selected series: every (name, value) pair sorted, then runs. */
static int count_series(rw_arena *a, const rw_series_data *s, size_t n, const char *focus,
                        tsdb_lists *l, uint64_t *npairs)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += s[i].nlabels;
    pair_ref *p = malloc((total ? total : 1) * sizeof *p);
    if (!p)
        return 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < s[i].nlabels; j++)
            p[k++] = (pair_ref){s[i].labels[j].name, s[i].labels[j].value};
    qsort(p, total, sizeof *p, cmp_pair);
    size_t cap[6] = {0};
    int ok = 1;
    *npairs = 0;
    for (size_t i = 0; i < total && ok;) {
        /* one label name: its values and their series counts */
        size_t j = i;
        uint64_t values = 0, series = 0, bytes = 0;
        while (j < total && strcmp(p[j].name, p[i].name) == 0) {
            size_t r = j;
            while (r < total && strcmp(p[r].name, p[i].name) == 0 &&
                   strcmp(p[r].value, p[j].value) == 0)
                r++;
            uint64_t cnt = r - j;
            values++;
            series += cnt;
            bytes += strlen(p[j].value);
            char *pair = rw_arena_sprintf(a, "%s=%s", p[j].name, p[j].value);
            ok = ok && pair && push(a, l, cap, L_PAIR, pair, cnt);
            if (ok && strcmp(p[j].name, RW_METRIC_NAME) == 0)
                ok = push(a, l, cap, L_METRIC, (char *)p[j].value, cnt);
            if (ok && focus && strcmp(p[j].name, focus) == 0)
                ok = push(a, l, cap, L_FOCUS, (char *)p[j].value, cnt);
            j = r;
        }
        *npairs += values;
        char *name = (char *)p[i].name;
        ok = ok && push(a, l, cap, L_VALUES, name, values) &&
             push(a, l, cap, L_MEMORY, name, bytes) && push(a, l, cap, L_BY_LABEL, name, series);
        i = j;
    }
    free(p);
    return ok;
}

static int cmp_entry_name(const void *x, const void *y)
{
    return strcmp(((const rw_stat_entry *)x)->name, ((const rw_stat_entry *)y)->name);
}

/* The same lists from the store's counts over all series: pairs come as
 * "name=value" (a label name has no '='), so in name order the pairs of one
 * label name are one run. */
static int count_store(rw_arena *a, const rw_store_cardinality *c, const char *focus,
                       tsdb_lists *l, uint64_t *npairs)
{
    size_t cap[6] = {0};
    l->v[L_METRIC] = c->by_metric;
    l->n[L_METRIC] = c->n_by_metric;
    l->v[L_VALUES] = c->label_values;
    l->n[L_VALUES] = c->n_label_values;
    l->v[L_MEMORY] = c->memory_by_label;
    l->n[L_MEMORY] = c->n_memory_by_label;
    l->v[L_PAIR] = c->by_label_pair;
    l->n[L_PAIR] = c->n_by_label_pair;
    *npairs = c->n_by_label_pair;
    size_t n = c->n_by_label_pair;
    rw_stat_entry *byname = rw_arena_alloc(a, (n ? n : 1) * sizeof *byname);
    if (!byname)
        return 0;
    memcpy(byname, c->by_label_pair, n * sizeof *byname);
    qsort(byname, n, sizeof *byname, cmp_entry_name);
    size_t fl = focus ? strlen(focus) : 0;
    for (size_t i = 0; i < n;) {
        const char *pair = byname[i].name, *eq = strchr(pair, '=');
        size_t nl = eq ? (size_t)(eq - pair) : strlen(pair);
        uint64_t series = 0;
        size_t j = i;
        for (; j < n && strncmp(byname[j].name, pair, nl) == 0 && byname[j].name[nl] == '='; j++) {
            series += byname[j].value;
            if (focus && nl == fl && strncmp(pair, focus, fl) == 0 &&
                !push(a, l, cap, L_FOCUS, byname[j].name + nl + 1, byname[j].value))
                return 0;
        }
        if (j == i) /* not a name=value pair: skip it */
            j = i + 1;
        char *name = rw_arena_strndup(a, pair, nl);
        if (!name || !push(a, l, cap, L_BY_LABEL, name, series))
            return 0;
        i = j;
    }
    return 1;
}

void rw_qapi_tsdb(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    rw_arena *a = rw_http_arena(req);
    qapi_msets ms = {0};
    long long limit = 10;
    const char *v = param(req, "limit");
    if (!v)
        v = param(req, "topN"); /* VictoriaMetrics' name */
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
    const char *focus = param(req, "focusLabel");
    const char **mv;
    int matched = rw_http_params(req, "match[]", &mv) > 0;
    if (matched && !rw_qapi_parse_matches(req, resp, &ms))
        goto out;
    rw_store_stats st;
    memset(&st, 0, sizeof st);
    rw_store_get_stats(api->store, &st);
    tsdb_lists l;
    memset(&l, 0, sizeof l);
    uint64_t nseries = st.series, npairs, head_pairs;
    /* the store's counts over every series: headStats describes the whole
       store, with or without match[] (the store builds the full counts for
       any limit; the lists are cut to `limit` below) */
    rw_store_cardinality card;
    memset(&card, 0, sizeof card);
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_store_cardinality_top(api->store, 0, a, &card, &e);
    if (rc != RW_OK) {
        rw_qapi_error_rc(resp, rc, e.msg);
        goto out;
    }
    head_pairs = card.n_by_label_pair;
    int ok;
    if (matched) {
        rw_series_data *s;
        size_t n;
        if (!select_union(api, resp, &ms, INT64_MIN, INT64_MAX, a, &s, &n))
            goto out;
        nseries = n;
        ok = count_series(a, s, n, focus, &l, &npairs);
    } else {
        ok = count_store(a, &card, focus, &l, &npairs);
    }
    if (!ok) {
        rw_qapi_error(resp, 503, "unavailable", "out of memory counting series");
        goto out;
    }
    for (int k = 0; k < 6; k++) {
        if (l.n[k] > 1)
            qsort(l.v[k], l.n[k], sizeof *l.v[k], stat_desc);
        if (l.n[k] > (size_t)limit)
            l.n[k] = (size_t)limit;
    }
    rw_qapi_begin(resp);
    rw_buf *b = &resp->body;
    rw_buf_printf(b,
                  "{\"headStats\":{\"numSeries\":%llu,\"numLabelPairs\":%llu,"
                  "\"chunkCount\":%llu,\"minTime\":%lld,\"maxTime\":%lld}",
                  (unsigned long long)st.series, (unsigned long long)head_pairs,
                  (unsigned long long)st.head_chunks, (long long)st.min_time,
                  (long long)st.max_time);
    rw_buf_printf(b, ",\"totalSeries\":%llu,\"totalLabelValuePairs\":%llu",
                  (unsigned long long)nseries, (unsigned long long)npairs);
    stat_array(b, "seriesCountByMetricName", l.v[L_METRIC], l.n[L_METRIC]);
    stat_array(b, "labelValueCountByLabelName", l.v[L_VALUES], l.n[L_VALUES]);
    stat_array(b, "memoryInBytesByLabelName", l.v[L_MEMORY], l.n[L_MEMORY]);
    stat_array(b, "seriesCountByLabelValuePair", l.v[L_PAIR], l.n[L_PAIR]);
    stat_array(b, "seriesCountByLabelName", l.v[L_BY_LABEL], l.n[L_BY_LABEL]);
    if (focus)
        stat_array(b, "seriesCountByFocusLabelValue", l.v[L_FOCUS], l.n[L_FOCUS]);
    rw_buf_putc(b, '}');
    rw_qapi_end(resp, NULL, 0, NULL, 0);
out:
    rw_qapi_msets_free(&ms);
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
