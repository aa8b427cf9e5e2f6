/* api.c - GET|POST /api/v1/rules and /api/v1/alerts in Prometheus' JSON
 * shape, so Grafana's alerting views and Prometheus tooling read rwgate's
 * rules and alerts unchanged.
 *
 * /api/v1/rules takes Prometheus' filters: type=alert|record,
 * rule_name[], rule_group[], file[], match[] (selectors on rule labels) and
 * exclude_alerts; a group whose rules are all filtered out is left out.
 * Groups come sorted by file and name, rules in file order. Prometheus 3's
 * paging: group_limit groups per answer, groupNextToken naming the group the
 * next page starts at, passed back as group_next_token. /api/v1/alerts
 * answers as Prometheus does, and takes filters and paging of its own (see
 * the comment above h_alerts) for the web UI's alert list. State is read
 * under each group's lock, so a response never shows half an evaluation.
 *
 * With authentication on, a credential sees only the alerts of the tenants
 * it may read (the alert's tenant label, as the query paths scope series):
 * in /api/v1/alerts, in the alerts of /api/v1/rules and in a rule's state.
 * Rule and group definitions stay visible to every reader: they are the
 * fleet's configuration, the same for every tenant. */
#include "rules_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include "core/json.h"

static void json_labels(rw_buf *b, const rw_label *l, size_t n)
{
    rw_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(b, ',');
        rw_json_str(b, l[i].name);
        rw_buf_putc(b, ':');
        rw_json_str(b, l[i].value);
    }
    rw_buf_putc(b, '}');
}

/* encoding/json's float64: shortest, exponent form below 1e-6 and from 1e21 */
static void json_num(rw_buf *b, double v)
{
    char tmp[48];
    rules_fmt_float_json(v, tmp, sizeof tmp);
    rw_buf_puts(b, tmp);
}

static void json_time(rw_buf *b, int64_t ms)
{
    char tmp[64];
    rules_fmt_time(ms, tmp, sizeof tmp);
    rw_json_str(b, tmp);
}

static void json_alert(rw_buf *b, const rw_alert *a)
{
    char v[40];
    rules_fmt_float_e(a->value, v, sizeof v);
    rw_buf_puts(b, "{\"labels\":");
    json_labels(b, a->labels, a->nlabels);
    rw_buf_puts(b, ",\"annotations\":");
    json_labels(b, a->annotations, a->nannotations);
    rw_buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", rules_alert_state_str(a->state));
    json_time(b, a->active_at);
    if (a->keep_firing_since != RW_TIME_UNSET) {
        rw_buf_puts(b, ",\"keepFiringSince\":");
        json_time(b, a->keep_firing_since);
    }
    rw_buf_printf(b, ",\"value\":\"%s\"}", v);
}

static const char *health_str(rule_health h)
{
    return h == HEALTH_OK ? "ok" : h == HEALTH_ERR ? "err" : "unknown";
}

/* Whether the request's credential may see alert a: the tenant its tenant
 * label names is one the credential reads (no principal: authentication off
 * or an open path). An alert without the label belongs to no tenant and is
 * hidden from a scoped credential, as a series without it is from a scoped
 * query; so is every alert when no tenant label is configured. */
static int alert_visible(const rw_principal *p, const rw_alert *a)
{
    if (!p || p->read_all)
        return 1;
    if (!p->tenant_label || !p->tenant_label[0])
        return 0;
    const char *t = rw_labels_get(a->labels, a->nlabels, p->tenant_label);
    return t && *t && rw_principal_reads(p, t);
}

/* the rule's state: the highest of the alerts the reader sees */
static int rule_alert_state(const rule_state *rs, const rw_principal *p)
{
    int st = ALERT_INACTIVE;
    for (size_t i = 0; i < rs->nalerts; i++)
        if (rs->alerts[i]->state > st && alert_visible(p, rs->alerts[i]))
            st = rs->alerts[i]->state;
    return st;
}

static void begin(rw_http_resp *resp)
{
    resp->content_type = "application/json";
    rw_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
}

static void bad_param(rw_http_resp *resp, const char *name, const char *msg)
{
    resp->status = 400;
    resp->content_type = "application/json";
    rw_buf_reset(&resp->body);
    rw_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":");
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_buf_printf(&b, "invalid parameter \"%s\": %s", name, msg);
    rw_json_str(&resp->body, b.p ? b.p : "");
    rw_buf_free(&b);
    rw_buf_putc(&resp->body, '}');
}

/* Prometheus' message for an enum parameter's unknown value */
static void not_supported(rw_http_resp *resp, const char *name, const char *v, const char *hint)
{
    char msg[300];
    snprintf(msg, sizeof msg, "not supported value \"%.200s\"%s", v, hint);
    bad_param(resp, name, msg);
}

static int in_set(const char *const *set, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], s) == 0)
            return 1;
    return 0;
}

typedef struct mset {
    rw_matcher *m;
    size_t n;
} mset;

/* matcher sets are ORed, matchers within a set ANDed; no set: everything */
static int labels_match(const mset *sets, size_t nsets, const rw_label *l, size_t n)
{
    if (!nsets)
        return 1;
    for (size_t s = 0; s < nsets; s++) {
        int ok = 1;
        for (size_t k = 0; k < sets[s].n && ok; k++) {
            const char *v = rw_labels_get(l, n, sets[s].m[k].name);
            ok = rw_matcher_matches(&sets[s].m[k], v ? v : "");
        }
        if (ok)
            return 1;
    }
    return 0;
}

static void truncate_to(rw_buf *b, size_t len)
{
    b->len = len;
    if (b->p)
        b->p[len] = '\0';
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void json_error(rw_http_resp *resp, int status, const char *type, const char *msg)
{
    resp->status = status;
    resp->content_type = "application/json";
    rw_buf_reset(&resp->body);
    rw_buf_printf(&resp->body, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", type);
    rw_json_str(&resp->body, msg);
    rw_buf_putc(&resp->body, '}');
}

static void free_sets(mset *sets, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        for (size_t j = 0; j < sets[k].n; j++)
            rw_matcher_free(&sets[k].m[j]);
        free(sets[k].m);
    }
}

/* match[] into matcher sets (arena array, matchers malloc'd: free_sets);
 * -1 with the 400 written. */
static int parse_match(rw_http_req *req, rw_http_resp *resp, mset **out, size_t *nout)
{
    const char **mt;
    size_t nmt = rw_http_params(req, "match[]", &mt);
    mset *sets = nmt ? rw_arena_calloc(rw_http_arena(req), nmt, sizeof *sets) : NULL;
    *out = sets;
    *nout = 0;
    for (size_t i = 0; i < nmt; i++) {
        rw_err e;
        rw_err_init(&e);
        if (!sets) {
            json_error(resp, 500, "internal", "out of memory");
            return -1;
        }
        if (rw_promql_parse_selector(mt[i], &sets[i].m, &sets[i].n, &e) != RW_OK) {
            free_sets(sets, *nout);
            *nout = 0;
            bad_param(resp, "match[]", e.msg);
            return -1;
        }
        (*nout)++;
    }
    return 0;
}

/* A positive 32-bit count, as Prometheus parses group_limit
 * (strconv.ParseInt(s, 10, 32), then > 0). -1 with the 400 written. */
static int parse_count(rw_http_resp *resp, const char *name, const char *s, long *out)
{
    char msg[400];
    char *end = NULL;
    errno = 0;
    long long v = isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' ? strtoll(s, &end, 10) : 0;
    if (!end || *end || end == s) {
        snprintf(msg, sizeof msg,
                 "%s needs to be a valid number: strconv.ParseInt: parsing \"%.200s\": invalid syntax",
                 name, s);
        bad_param(resp, name, msg);
        return -1;
    }
    if (errno == ERANGE || v > INT32_MAX || v < INT32_MIN) {
        snprintf(msg, sizeof msg,
                 "%s needs to be a valid number: strconv.ParseInt: parsing \"%.200s\": value out of range",
                 name, s);
        bad_param(resp, name, msg);
        return -1;
    }
    if (v <= 0) {
        snprintf(msg, sizeof msg, "%s needs to be greater than 0", name);
        bad_param(resp, name, msg);
        return -1;
    }
    *out = (long)v;
    return 0;
}

/* The paging parameters of /api/v1/rules and /api/v1/alerts: the page
 * size (limit_name, parse_count's rules; 0 when absent) and the token of the
 * page to start at (token_name; NULL when absent), which is refused without
 * a page size as Prometheus refuses it. -1 with the 400 written. */
static int page_params(rw_http_req *req, rw_http_resp *resp, const char *limit_name,
                       const char *token_name, const char *what, long *limit,
                       const char **token)
{
    const char *lim = rw_http_param(req, limit_name);
    *token = rw_http_param(req, token_name);
    *limit = 0;
    if (*token && **token && !(lim && *lim)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s needs to be present in order to paginate over the %s",
                 limit_name, what);
        bad_param(resp, token_name, msg);
        return -1;
    }
    if (lim && *lim && parse_count(resp, limit_name, lim, limit) != 0)
        return -1;
    return 0;
}

static void to_hex(rw_buf *b, const unsigned char *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        rw_buf_putc(b, d[p[i] >> 4]);
        rw_buf_putc(b, d[p[i] & 15]);
    }
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- /api/v1/rules ---- */

typedef struct rule_filter {
    const char **names;
    size_t nnames;
    const mset *sets;
    size_t nsets;
    int want_alert, want_record, exclude_alerts;
    const rw_principal *reader; /* whose alerts are shown (NULL: all) */
} rule_filter;

static void rule_json(rw_buf *b, const rule_state *rs, int exclude_alerts,
                      const rw_principal *reader)
{
    const rw_rule_def *d = rs->def;
    if (d->kind == RULE_ALERT) {
        /* "inactive" before the first evaluation too, as Prometheus 2 */
        int st = rule_alert_state(rs, reader);
        rw_buf_printf(b, "{\"state\":\"%s\",\"name\":", rules_alert_state_str(st));
        rw_json_str(b, d->name);
        rw_buf_puts(b, ",\"query\":");
        rw_json_str(b, rw_promql_expr_string(d->expr));
        rw_buf_puts(b, ",\"duration\":");
        json_num(b, (double)d->for_ms / 1000.0);
        rw_buf_puts(b, ",\"keepFiringFor\":");
        json_num(b, (double)d->keep_firing_for_ms / 1000.0);
        rw_buf_puts(b, ",\"labels\":");
        json_labels(b, d->labels, d->nlabels);
        rw_buf_puts(b, ",\"annotations\":");
        json_labels(b, d->annotations, d->nannotations);
        if (exclude_alerts) {
            rw_buf_puts(b, ",\"alerts\":null");
        } else {
            rw_buf_puts(b, ",\"alerts\":[");
            int na = 0;
            for (size_t k = 0; k < rs->nalerts; k++) {
                if (rs->alerts[k]->resolved_at != RW_TIME_UNSET ||
                    !alert_visible(reader, rs->alerts[k]))
                    continue;
                if (na++)
                    rw_buf_putc(b, ',');
                json_alert(b, rs->alerts[k]);
            }
            rw_buf_putc(b, ']');
        }
    } else {
        rw_buf_puts(b, "{\"name\":");
        rw_json_str(b, d->name);
        rw_buf_puts(b, ",\"query\":");
        rw_json_str(b, rw_promql_expr_string(d->expr));
        if (d->nlabels) { /* omitted when empty, as Prometheus 2 */
            rw_buf_puts(b, ",\"labels\":");
            json_labels(b, d->labels, d->nlabels);
        }
    }
    rw_buf_printf(b, ",\"health\":\"%s\"", health_str(rs->health));
    if (rs->last_error) {
        rw_buf_puts(b, ",\"lastError\":");
        rw_json_str(b, rs->last_error);
    }
    rw_buf_puts(b, ",\"evaluationTime\":");
    json_num(b, rs->eval_seconds);
    rw_buf_puts(b, ",\"lastEvaluation\":");
    json_time(b, rs->last_eval_ms);
    rw_buf_printf(b, ",\"type\":\"%s\"}", d->kind == RULE_ALERT ? "alerting" : "recording");
}

/* Appends group g (under its lock) with the rules f lets through, preceded
 * by a comma unless first. Returns 0, with nothing appended, when f lets no
 * rule through: such a group is left out. */
static int group_json(rw_buf *b, rw_group *g, const rule_filter *f, int first)
{
    pthread_mutex_lock(&g->mu);
    size_t mark = b->len;
    int any = 0;
    rw_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
    rw_json_str(b, g->def->name);
    rw_buf_puts(b, ",\"file\":");
    rw_json_str(b, g->def->file);
    rw_buf_puts(b, ",\"rules\":[");
    for (size_t i = 0; i < g->nrules; i++) {
        const rw_rule_def *d = g->rules[i].def;
        if (f->nnames && !in_set(f->names, f->nnames, d->name))
            continue;
        if (!labels_match(f->sets, f->nsets, d->labels, d->nlabels))
            continue;
        if (d->kind == RULE_ALERT ? !f->want_alert : !f->want_record)
            continue;
        if (any++)
            rw_buf_putc(b, ',');
        rule_json(b, &g->rules[i], f->exclude_alerts, f->reader);
    }
    rw_buf_puts(b, "],\"interval\":");
    json_num(b, (double)g->interval_ms / 1000.0);
    rw_buf_printf(b, ",\"limit\":%lld,\"evaluationTime\":", (long long)g->def->limit);
    json_num(b, g->last_duration_s);
    rw_buf_puts(b, ",\"lastEvaluation\":");
    json_time(b, g->last_eval_wall_ms);
    rw_buf_putc(b, '}');
    pthread_mutex_unlock(&g->mu);
    if (!any)
        truncate_to(b, mark);
    return any;
}

/* A group's page token: hex SHA-256 of "file;name", as Prometheus names the
 * group a page starts at, so a token outlives reloads that keep the group. */
static void group_token(const rw_group *g, char out[65])
{
    unsigned char h[32];
    unsigned len = sizeof h;
    memset(h, 0, sizeof h);
    EVP_Digest(g->key, strlen(g->key), h, &len, EVP_sha256(), NULL);
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[64] = '\0';
}

static void h_rules(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_rules *r = ctx;
    rw_arena *a = rw_http_arena(req);
    const char **rg, **fs;
    rule_filter f = {.want_alert = 1, .want_record = 1, .reader = rw_http_principal(req)};
    f.nnames = rw_http_params(req, "rule_name[]", &f.names);
    size_t nrg = rw_http_params(req, "rule_group[]", &rg);
    size_t nfs = rw_http_params(req, "file[]", &fs);
    const char *typ = rw_http_param(req, "type");
    if (typ && *typ) {
        char *t = rw_arena_strdup(a, typ);
        if (t)
            lower(t);
        if (t && strcmp(t, "alert") == 0)
            f.want_record = 0;
        else if (t && strcmp(t, "record") == 0)
            f.want_alert = 0;
        else {
            not_supported(resp, "type", typ, "");
            return;
        }
    }
    const char *ex = rw_http_param(req, "exclude_alerts");
    if (ex && *ex) {
        if (!strcasecmp(ex, "true") || !strcmp(ex, "1") || !strcasecmp(ex, "t"))
            f.exclude_alerts = 1;
        else if (strcasecmp(ex, "false") && strcmp(ex, "0") && strcasecmp(ex, "f")) {
            bad_param(resp, "exclude_alerts", "error converting exclude_alerts: invalid syntax");
            return;
        }
    }
    /* paging: group_limit groups per answer; group_next_token names the
       group the next page starts at (Prometheus 3) */
    long limit;
    const char *token;
    if (page_params(req, resp, "group_limit", "group_next_token", "groups", &limit, &token) != 0)
        return;
    if (!limit || (token && !*token))
        token = NULL;
    mset *sets;
    if (parse_match(req, resp, &sets, &f.nsets) != 0)
        return;
    f.sets = sets;

    rw_group **groups;
    size_t ng;
    rules_manager_read_lock(r, &groups, &ng);
    rw_buf *b = &resp->body;
    begin(resp);
    rw_buf_puts(b, "{\"groups\":[");
    long shown = 0;
    int found = token == NULL;
    char next[65] = "", tok[65];
    for (size_t gi = 0; gi < ng; gi++) {
        rw_group *g = groups[gi];
        if (!found) {
            group_token(g, tok);
            if (strcmp(tok, token) != 0)
                continue;
            found = 1;
        }
        if (nrg && !in_set(rg, nrg, g->def->name))
            continue;
        if (nfs && !in_set(fs, nfs, g->def->file))
            continue;
        size_t mark = b->len;
        if (!group_json(b, g, &f, shown == 0))
            continue;
        if (limit && shown == limit) {
            /* a group beyond the page: the next page starts there */
            truncate_to(b, mark);
            group_token(g, next);
            break;
        }
        shown++;
    }
    rules_manager_read_unlock(r);
    free_sets(sets, f.nsets);
    if (!found) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid group_next_token '%.200s'. were rule groups changed?",
                 token);
        bad_param(resp, "group_next_token", msg);
        return;
    }
    rw_buf_putc(b, ']');
    if (next[0])
        rw_buf_printf(b, ",\"groupNextToken\":\"%s\"", next);
    rw_buf_puts(b, "}}");
}

/* ---- /api/v1/alerts ----
 *
 * Prometheus' answer lists every active alert, rule by rule. rwgate adds,
 * for pages such as /ui/alerts, filters (match[] on the alert's labels,
 * state=pending|firing) and paging (limit, next_token; the answer then
 * carries nextToken when more follow, and the total matching). A page is in
 * a stable order - by labels, then group and rule, a strict order because a
 * rule's alerts differ in labels - so pages neither skip nor repeat alerts
 * while alerts come and go: the token is the sort key of the first alert of
 * the next page, and the next page is the alerts from that key on. Only the
 * page's limit + 1 smallest keys are kept (a heap), so a page of 100 out of
 * ten thousand alerts never renders the other ones. */

typedef struct alert_filter {
    const mset *sets;
    size_t nsets;
    int state; /* 0: any */
    const rw_principal *reader; /* whose alerts are listed (NULL: all) */
} alert_filter;

/* Filters apply before paging, so the total and the pages count only the
 * alerts this reader sees. */
static int alert_wanted(const alert_filter *f, const rw_alert *al)
{
    if (al->resolved_at != RW_TIME_UNSET || !alert_visible(f->reader, al))
        return 0;
    if (f->state && al->state != f->state)
        return 0;
    return labels_match(f->sets, f->nsets, al->labels, al->nlabels);
}

/* The sort key: "name\0value\0" per label, then "\1", the group key, "\0"
 * and the rule's index in 10 digits. Label strings hold no NUL and names
 * start above \1, so comparing keys bytewise orders by labels as
 * Prometheus' labels.Compare does, then by group and rule. */
static void alert_key(rw_buf *k, const rw_alert *al, const rw_group *g, size_t rule)
{
    rw_buf_reset(k);
    for (size_t i = 0; i < al->nlabels; i++) {
        rw_buf_append(k, al->labels[i].name, strlen(al->labels[i].name) + 1);
        rw_buf_append(k, al->labels[i].value, strlen(al->labels[i].value) + 1);
    }
    rw_buf_putc(k, '\1');
    rw_buf_append(k, g->key, strlen(g->key) + 1);
    rw_buf_printf(k, "%010zu", rule);
}

/* next_token back into a key; NULL when it is not one */
static char *token_key(rw_arena *a, const char *t, size_t *len)
{
    size_t n = strlen(t);
    if (n < 2 * 12 || n % 2)
        return NULL;
    char *k = rw_arena_alloc(a, n / 2 + 1);
    if (!k)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(t[2 * i]), lo = hexval(t[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return NULL;
        k[i] = (char)(hi << 4 | lo);
    }
    n /= 2;
    k[n] = '\0';
    if (!memchr(k, '\1', n) || k[n - 11] != '\0')
        return NULL;
    for (size_t i = n - 10; i < n; i++)
        if (!isdigit((unsigned char)k[i]))
            return NULL;
    *len = n;
    return k;
}

static int key_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : na < nb ? -1 : na > nb;
}

/* one alert kept for the page: its key, then its JSON */
typedef struct page_ent {
    size_t klen, jlen;
    char data[];
} page_ent;

/* a max-heap by key of at most cap entries: the smallest keys seen */
typedef struct page_heap {
    page_ent **e;
    size_t n, alloc, cap;
} page_heap;

static int ent_cmp(const page_ent *x, const page_ent *y)
{
    return key_cmp(x->data, x->klen, y->data, y->klen);
}

static void heap_down(page_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && ent_cmp(h->e[l], h->e[m]) > 0)
            m = l;
        if (r < h->n && ent_cmp(h->e[r], h->e[m]) > 0)
            m = r;
        if (m == i)
            return;
        page_ent *t = h->e[i];
        h->e[i] = h->e[m];
        h->e[m] = t;
        i = m;
    }
}

/* Whether a key would enter the heap (it is smaller than the largest kept,
 * or there is room), so the alert's JSON is only rendered then. */
static int heap_wants(const page_heap *h, const rw_buf *k)
{
    return h->n < h->cap || key_cmp(k->p, k->len, h->e[0]->data, h->e[0]->klen) < 0;
}

/* Keeps key k with its JSON j; -1 out of memory. */
static int heap_add(page_heap *h, const rw_buf *k, const rw_buf *j)
{
    page_ent *e = malloc(sizeof *e + k->len + j->len);
    if (!e)
        return -1;
    e->klen = k->len;
    e->jlen = j->len;
    memcpy(e->data, k->p, k->len);
    memcpy(e->data + k->len, j->p, j->len);
    if (h->n == h->cap) { /* replace the largest */
        free(h->e[0]);
        h->e[0] = e;
        heap_down(h, 0);
        return 0;
    }
    if (h->n == h->alloc) {
        size_t na = h->alloc ? h->alloc * 2 : 64;
        if (na > h->cap)
            na = h->cap;
        page_ent **ne = realloc(h->e, na * sizeof *ne);
        if (!ne) {
            free(e);
            return -1;
        }
        h->e = ne;
        h->alloc = na;
    }
    size_t i = h->n++;
    h->e[i] = e;
    while (i && ent_cmp(h->e[(i - 1) / 2], h->e[i]) < 0) {
        page_ent *t = h->e[i];
        h->e[i] = h->e[(i - 1) / 2];
        h->e[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return 0;
}

static int ent_qsort_cmp(const void *x, const void *y)
{
    return ent_cmp(*(page_ent *const *)x, *(page_ent *const *)y);
}

static void heap_free(page_heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->e[i]);
    free(h->e);
}

/* The paged answer: alerts from key `from` on (NULL: from the start), at
 * most limit of them. */
static void alerts_page(rw_rules *r, const alert_filter *f, const char *from, size_t fromlen,
                        long limit, rw_http_resp *resp)
{
    page_heap h = {.cap = (size_t)limit + 1};
    rw_buf k, j;
    rw_buf_init(&k, 0);
    rw_buf_init(&j, 0);
    size_t total = 0;
    int oom = 0;
    rw_group **groups;
    size_t ng;
    rules_manager_read_lock(r, &groups, &ng);
    for (size_t gi = 0; gi < ng && !oom; gi++) {
        rw_group *g = groups[gi];
        pthread_mutex_lock(&g->mu);
        for (size_t i = 0; i < g->nrules && !oom; i++) {
            rule_state *rs = &g->rules[i];
            for (size_t n = 0; n < rs->nalerts && !oom; n++) {
                const rw_alert *al = rs->alerts[n];
                if (!alert_wanted(f, al))
                    continue;
                total++;
                alert_key(&k, al, g, i);
                if (from && key_cmp(k.p, k.len, from, fromlen) < 0)
                    continue;
                if (!heap_wants(&h, &k))
                    continue;
                rw_buf_reset(&j);
                json_alert(&j, al);
                oom = k.failed || j.failed || heap_add(&h, &k, &j) != 0;
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    rules_manager_read_unlock(r);
    if (oom) {
        json_error(resp, 500, "internal", "out of memory building the page of alerts");
    } else {
        if (h.n > 1) /* h.e is NULL when no alert matched: qsort(NULL, 0) is undefined */
            qsort(h.e, h.n, sizeof *h.e, ent_qsort_cmp);
        rw_buf *b = &resp->body;
        begin(resp);
        rw_buf_puts(b, "{\"alerts\":[");
        size_t shown = h.n < (size_t)limit ? h.n : (size_t)limit;
        for (size_t i = 0; i < shown; i++) {
            if (i)
                rw_buf_putc(b, ',');
            rw_buf_append(b, h.e[i]->data + h.e[i]->klen, h.e[i]->jlen);
        }
        rw_buf_putc(b, ']');
        if (h.n > shown) { /* the first alert of the next page names it */
            rw_buf_puts(b, ",\"nextToken\":\"");
            to_hex(b, (const unsigned char *)h.e[shown]->data, h.e[shown]->klen);
            rw_buf_putc(b, '"');
        }
        rw_buf_printf(b, ",\"total\":%zu}}", total);
    }
    heap_free(&h);
    rw_buf_free(&k);
    rw_buf_free(&j);
}

static void h_alerts(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_rules *r = ctx;
    alert_filter f = {.reader = rw_http_principal(req)};
    const char *st = rw_http_param(req, "state");
    if (st && *st) {
        if (!strcmp(st, "pending"))
            f.state = ALERT_PENDING;
        else if (!strcmp(st, "firing"))
            f.state = ALERT_FIRING;
        else {
            not_supported(resp, "state", st, " (pending or firing)");
            return;
        }
    }
    long limit;
    const char *token;
    if (page_params(req, resp, "limit", "next_token", "alerts", &limit, &token) != 0)
        return;
    const char *from = NULL;
    size_t fromlen = 0;
    if (limit && token && *token &&
        !(from = token_key(rw_http_arena(req), token, &fromlen))) {
        bad_param(resp, "next_token", "not a next_token of this server's /api/v1/alerts");
        return;
    }
    mset *sets;
    if (parse_match(req, resp, &sets, &f.nsets) != 0)
        return;
    f.sets = sets;
    if (limit) {
        alerts_page(r, &f, from, fromlen, limit, resp);
        free_sets(sets, f.nsets);
        return;
    }
    /* unpaged: Prometheus' answer (filtered when asked), rule by rule */
    rw_group **groups;
    size_t ng;
    rules_manager_read_lock(r, &groups, &ng);
    rw_buf *b = &resp->body;
    begin(resp);
    rw_buf_puts(b, "{\"alerts\":[");
    int n = 0;
    for (size_t gi = 0; gi < ng; gi++) {
        rw_group *g = groups[gi];
        pthread_mutex_lock(&g->mu);
        for (size_t i = 0; i < g->nrules; i++) {
            rule_state *rs = &g->rules[i];
            for (size_t k = 0; k < rs->nalerts; k++) {
                if (!alert_wanted(&f, rs->alerts[k]))
                    continue;
                if (n++)
                    rw_buf_putc(b, ',');
                json_alert(b, rs->alerts[k]);
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    rules_manager_read_unlock(r);
    rw_buf_puts(b, "]}}");
    free_sets(sets, f.nsets);
}

rw_rc rw_rules_routes(rw_rules *r, rw_routes *routes, rw_err *err)
{
    const rw_http_route rows[] = {
        {.path = "/api/v1/rules", .methods = RW_HTTP_GET | RW_HTTP_POST, .perm = RW_PERM_READ,
         .fn = h_rules, .ctx = r},
        {.path = "/api/v1/alerts", .methods = RW_HTTP_GET | RW_HTTP_POST, .perm = RW_PERM_READ,
         .fn = h_alerts, .ctx = r},
    };
    rw_rc rc;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if ((rc = rw_routes_add(routes, &rows[i], err)) != RW_OK)
            return rc;
    return RW_OK;
}
