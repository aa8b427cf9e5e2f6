/* federate.c - GET /federate: the newest sample of every series matching
 * one or more match[] selectors, in the Prometheus text exposition format
 * 0.0.4, for an upper-level Prometheus to scrape (honor_labels: true).
 *
 * As Prometheus' federation handler: the window is the lookback delta ending
 * now; a series whose newest sample in the window is a stale marker is left
 * out (the format cannot carry one); series are grouped into families by
 * metric name with one `# TYPE` line each; the server's external labels are
 * appended after a series' own labels when the series does not carry them,
 * and so is instance="" (the scraper must not attach its own instance label
 * to series that had none). Empty label values are never written.
 *
 * The family type comes from stored metadata when it is "counter" or
 * "gauge"; everything else is "untyped" like Prometheus writes. Histogram and
 * summary metadata name the family ("http_duration_seconds") while the series
 * carry suffixed names (_bucket, _sum, _count): typing them would make
 * parsers reject the output.
 *
 * One pass per selector over the store's answer keeps only the newest sample
 * per series; the output is written once into the response buffer, which the
 * HTTP layer gzips when the client accepts it. */
#include "api_int.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/timeutil.h"

typedef struct fed_series {
    const char *name; /* __name__, never NULL */
    rw_label *labels;
    size_t nlabels;
    int64_t t;
    double v;
} fed_series;

static int cmp_fed(const void *a, const void *b)
{
    const fed_series *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return rw_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int cmp_md(const void *a, const void *b)
{
    return strcmp(((const rw_metadata *)a)->metric, ((const rw_metadata *)b)->metric);
}

static const char *family_type(const rw_metadata *md, size_t n, const char *name)
{
    rw_metadata key = {.metric = name};
    const rw_metadata *m = n ? bsearch(&key, md, n, sizeof *md, cmp_md) : NULL;
    if (m && m->type && (strcmp(m->type, "counter") == 0 || strcmp(m->type, "gauge") == 0))
        return m->type;
    return "untyped";
}

static int legacy_rune(unsigned char c, int i, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (i > 0 && c >= '0' && c <= '9');
}

/* A name in the 0.0.4 format: legacy names as they are, UTF-8 names with
 * every other byte replaced by '_' (the "underscores" escaping Prometheus
 * applies when the scraper did not negotiate UTF-8). */
static void put_name(rw_buf *b, const char *s, int colon)
{
    size_t n = strlen(s), i;
    for (i = 0; i < n && legacy_rune((unsigned char)s[i], (int)i, colon); i++)
        ;
    if (i == n) {
        rw_buf_append(b, s, n);
        return;
    }
    for (i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        rw_buf_putc(b, legacy_rune(c, (int)i, colon) ? (char)c : '_');
        /* one '_' per code point, not per byte */
        i++;
        if (c >= 0x80)
            while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
                i++;
    }
}

static void put_value(rw_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        rw_buf_append(b, run, (size_t)(s - run));
        rw_buf_append(b, esc, 2);
        run = s + 1;
    }
    rw_buf_append(b, run, (size_t)(s - run));
}

static void put_label(rw_buf *b, int *first, const char *name, const char *value)
{
    rw_buf_putc(b, *first ? '{' : ',');
    *first = 0;
    put_name(b, name, 0);
    rw_buf_puts(b, "=\"");
    put_value(b, value);
    rw_buf_putc(b, '"');
}

static void write_series(rw_buf *b, const fed_series *s, const rw_label *ext, size_t next)
{
    put_name(b, s->name, 1);
    int first = 1;
    /* own labels in order, then the external ones the series lacks (ext is
       sorted and includes instance) */
    for (size_t i = 0; i < s->nlabels; i++) {
        const rw_label *l = &s->labels[i];
        if (!*l->value || strcmp(l->name, RW_METRIC_NAME) == 0)
            continue;
        put_label(b, &first, l->name, l->value);
    }
    for (size_t i = 0; i < next; i++) {
        const char *own = rw_labels_get(s->labels, s->nlabels, ext[i].name);
        if (own && *own)
            continue;
        put_label(b, &first, ext[i].name, ext[i].value);
    }
    if (!first)
        rw_buf_putc(b, '}');
    char num[40];
    int n = rw_fmt_float_g(s->v, num);
    rw_buf_putc(b, ' ');
    rw_buf_append(b, num, (size_t)n);
    rw_buf_printf(b, " %lld\n", (long long)s->t);
}

/* A /federate answer being sent: owns the request's context (arena with
 * the selection, read slot) until the last byte or the client's going. */
typedef struct fed_stream {
    rw_query_api *api;
    qapi_req r;
    fed_series *fs;
    size_t n, i;
    rw_metadata *md;
    size_t nmd;
    rw_label *ext;
    size_t next_ext;
    const char *family;
    rw_buf pending; /* formatted, not yet handed out: [off, len) */
    size_t off, sent, cap;
} fed_stream;

static long fed_read(void *ctx, char *buf, size_t max)
{
    fed_stream *f = ctx;
    rw_buf *b = &f->pending;
    if (f->off && f->off == b->len) {
        rw_buf_reset(b);
        f->off = 0;
    }
    while (b->len - f->off < max && f->i < f->n) {
        const fed_series *fs = &f->fs[f->i++];
        if (!f->family || strcmp(f->family, fs->name) != 0) {
            f->family = fs->name;
            rw_buf_puts(b, "# TYPE ");
            put_name(b, f->family, 1);
            rw_buf_putc(b, ' ');
            rw_buf_puts(b, family_type(f->md, f->nmd, f->family));
            rw_buf_putc(b, '\n');
        }
        write_series(b, fs, f->ext, f->next_ext);
        if (b->failed)
            return -1;
    }
    size_t k = b->len - f->off;
    if (k > max)
        k = max;
    if (f->sent + k > f->cap) {
        rw_warn("federate: response cut at %zu bytes (query.max_response_bytes)", f->sent);
        return -1;
    }
    if (k) /* an empty buffer has no storage yet */
        memcpy(buf, b->p + f->off, k);
    f->off += k;
    f->sent += k;
    return (long)k;
}

static void fed_free(void *ctx)
{
    fed_stream *f = ctx;
    rw_buf_free(&f->pending);
    rw_qapi_req_end(f->api, &f->r);
    free(f);
}

void rw_qapi_federate(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_query_api *api = ctx;
    int64_t start_ns = rw_mono_ns();
    qapi_req r = {0};
    rw_arena *a = rw_http_arena(req);
    qapi_msets ms = {0};
    const char **vals;
    size_t nvals = rw_http_params(req, "match[]", &vals);
    if (nvals == 0) {
        rw_http_resp_text(resp, 400, "no match[] parameter provided");
        goto out;
    }
    for (size_t i = 0; i < nvals; i++) {
        rw_matcher *m = NULL;
        size_t nm = 0;
        rw_err e;
        rw_err_init(&e);
        if (rw_promql_parse_selector(vals[i], &m, &nm, &e) != RW_OK) {
            rw_http_resp_text(resp, 400, "%s", e.msg);
            goto out;
        }
        rw_matcher **sets = realloc(ms.sets, (ms.n + 1) * sizeof *sets);
        size_t *lens = sets ? realloc(ms.lens, (ms.n + 1) * sizeof *lens) : NULL;
        if (sets)
            ms.sets = sets;
        if (lens)
            ms.lens = lens;
        if (!sets || !lens) {
            for (size_t j = 0; j < nm; j++)
                rw_matcher_free(&m[j]);
            free(m);
            rw_http_resp_text(resp, 503, "out of memory");
            goto out;
        }
        ms.sets[ms.n] = m;
        ms.lens[ms.n++] = nm;
    }

    if (!rw_qapi_req_begin(api, req, resp, api->default_timeout_ms, 1, &r))
        goto out;
    a = r.a;
    int64_t maxt = rw_now_ms(), mint = maxt - api->lookback_ms;
    fed_series *fs = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < ms.n; i++) {
        rw_series_data *sd;
        size_t nsd;
        rw_err e;
        rw_err_init(&e);
        rw_rc rc = rw_query_select(&r.q, ms.sets[i], ms.lens[i], mint, maxt, RW_SELECT_LAST, 0, a,
                                   &sd, &nsd, &e);
        if (rc != RW_OK) {
            if (rw_arena_over_cap(a))
                rw_http_resp_text(resp, 400,
                                  "federation would use more than %zu bytes of memory "
                                  "(query.max_memory_bytes)",
                                  api->max_memory_bytes);
            else
                rw_http_resp_text(resp, rc == RW_BADREQ ? 400 : rw_rc_http_status(rc), "%s",
                                  e.msg);
            goto out;
        }
        if (n + nsd > cap) {
            size_t ncap = cap ? cap : 64;
            while (ncap < n + nsd)
                ncap *= 2;
            fed_series *g = rw_arena_realloc(a, fs, cap * sizeof *fs, ncap * sizeof *fs);
            if (!g) {
                rw_http_resp_text(resp, 503, "out of memory");
                goto out;
            }
            fs = g;
            cap = ncap;
        }
        for (size_t j = 0; j < nsd; j++) {
            const rw_series_data *s = &sd[j];
            if (!s->n || rw_is_stale_nan(s->v[s->n - 1]))
                continue;
            const char *name = rw_labels_get(s->labels, s->nlabels, RW_METRIC_NAME);
            if (!name || !*name)
                continue; /* nameless: cannot be exposed */
            fs[n++] = (fed_series){name, s->labels, s->nlabels, s->t[s->n - 1], s->v[s->n - 1]};
        }
    }
    /* by name, then labels; with several selectors a series may come twice */
    if (n > 1)
        qsort(fs, n, sizeof *fs, cmp_fed);
    if (ms.n > 1 && n > 1) {
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (!rw_labels_equal(fs[i].labels, fs[i].nlabels, fs[k - 1].labels,
                                 fs[k - 1].nlabels))
                fs[k++] = fs[i];
        n = k;
    }

    rw_metadata *md = NULL;
    size_t nmd = 0;
    if (n) {
        rw_err e;
        rw_err_init(&e);
        if (rw_store_get_metadata(api->store, NULL, 0, a, &md, &nmd, &e) != RW_OK)
            nmd = 0; /* types are a nicety: untyped is always correct */
        else if (nmd > 1)
            qsort(md, nmd, sizeof *md, cmp_md);
    }

    /* external labels plus instance="" unless instance is one of them */
    rw_label *ext0;
    size_t next0 = rw_qapi_ext_labels(api, a, &ext0);
    rw_label *ext = rw_arena_alloc(a, (next0 + 1) * sizeof *ext);
    if (!ext) {
        rw_http_resp_text(resp, 503, "out of memory");
        goto out;
    }
    size_t next = next0;
    if (next0)
        memcpy(ext, ext0, next0 * sizeof *ext);
    if (!rw_labels_get(ext, next, "instance")) {
        ext[next++] = (rw_label){"instance", ""};
        rw_labels_sort(ext, next);
    }

    /* the text is produced while it is sent, as Prometheus streams it: the
       selection is held (in the request's capped arena), its exposition
       never is; the request keeps its read slot until the last byte */
    fed_stream *f = calloc(1, sizeof *f);
    if (!f) {
        rw_http_resp_text(resp, 503, "out of memory");
        goto out;
    }
    f->api = api;
    f->r = r;
    memset(&r, 0, sizeof r); /* the stream ends the request */
    f->fs = fs;
    f->n = n;
    f->md = md;
    f->nmd = nmd;
    f->ext = ext;
    f->next_ext = next;
    f->cap = api->max_response_bytes;
    rw_buf_init(&f->pending, 0);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->gzip_ok = 1;
    resp->stream = fed_read;
    resp->stream_free = fed_free;
    resp->stream_ctx = f;
out:
    rw_qapi_req_end(api, &r);
    rw_qapi_msets_free(&ms);
    rw_qapi_observe(api, QAPI_EP_FEDERATE, start_ns);
}
