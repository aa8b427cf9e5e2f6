/* api.c - GET|POST /api/v1/rules and /api/v1/alerts in Prometheus' JSON
 * shape, so Grafana's alerting views and Prometheus tooling read rwgate's
 * rules and alerts unchanged.
 *
 * /api/v1/rules takes Prometheus' filters: type=alert|record,
 * rule_name[], rule_group[], file[], match[] (selectors on rule labels) and
 * exclude_alerts; a group whose rules are all filtered out is left out.
 * Groups come sorted by file and name, rules in file order. State is read
 * under each group's lock, so a response never shows half an evaluation. */
#include "rules_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
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

/* the rule's state: the highest of its alerts' */
static int rule_alert_state(const rule_state *rs)
{
    int st = ALERT_INACTIVE;
    for (size_t i = 0; i < rs->nalerts; i++)
        if (rs->alerts[i]->state > st)
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

/* matcher sets are ORed, matchers within a set ANDed */
static int rule_matches(const mset *sets, size_t nsets, const rw_rule_def *r)
{
    if (!nsets)
        return 1;
    for (size_t s = 0; s < nsets; s++) {
        int ok = 1;
        for (size_t k = 0; k < sets[s].n && ok; k++) {
            const char *v = rw_labels_get(r->labels, r->nlabels, sets[s].m[k].name);
            ok = rw_matcher_matches(&sets[s].m[k], v ? v : "");
        }
        if (ok)
            return 1;
    }
    return 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void h_rules(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_rules *r = ctx;
    rw_arena *a = rw_http_arena(req);
    const char **rn, **rg, **fs, **mt;
    size_t nrn = rw_http_params(req, "rule_name[]", &rn);
    size_t nrg = rw_http_params(req, "rule_group[]", &rg);
    size_t nfs = rw_http_params(req, "file[]", &fs);
    size_t nmt = rw_http_params(req, "match[]", &mt);
    const char *typ = rw_http_param(req, "type");
    int want_alert = 1, want_record = 1;
    if (typ && *typ) {
        char *t = rw_arena_strdup(a, typ);
        if (t)
            lower(t);
        if (t && strcmp(t, "alert") == 0)
            want_record = 0;
        else if (t && strcmp(t, "record") == 0)
            want_alert = 0;
        else {
            char msg[300];
            snprintf(msg, sizeof msg, "not supported value \"%.200s\"", typ);
            bad_param(resp, "type", msg);
            return;
        }
    }
    int exclude_alerts = 0;
    const char *ex = rw_http_param(req, "exclude_alerts");
    if (ex && *ex) {
        if (!strcasecmp(ex, "true") || !strcmp(ex, "1") || !strcasecmp(ex, "t"))
            exclude_alerts = 1;
        else if (strcasecmp(ex, "false") && strcmp(ex, "0") && strcasecmp(ex, "f")) {
            bad_param(resp, "exclude_alerts", "error converting exclude_alerts: invalid syntax");
            return;
        }
    }
    mset *sets = nmt ? rw_arena_calloc(a, nmt, sizeof *sets) : NULL;
    size_t nsets = 0;
    for (size_t i = 0; i < nmt; i++) {
        rw_err e;
        rw_err_init(&e);
        if (!sets || rw_promql_parse_selector(mt[i], &sets[i].m, &sets[i].n, &e) != RW_OK) {
            for (size_t k = 0; k < nsets; k++) {
                for (size_t j = 0; j < sets[k].n; j++)
                    rw_matcher_free(&sets[k].m[j]);
                free(sets[k].m);
            }
            bad_param(resp, "match[]", e.msg);
            return;
        }
        nsets++;
    }

    rw_group **groups;
    size_t ng;
    rules_manager_read_lock(r, &groups, &ng);
    rw_buf *b = &resp->body;
    begin(resp);
    rw_buf_puts(b, "{\"groups\":[");
    int first_group = 1;
    for (size_t gi = 0; gi < ng; gi++) {
        rw_group *g = groups[gi];
        if (nrg && !in_set(rg, nrg, g->def->name))
            continue;
        if (nfs && !in_set(fs, nfs, g->def->file))
            continue;
        pthread_mutex_lock(&g->mu);
        size_t mark = b->len;
        int any = 0;
        rw_buf_puts(b, first_group ? "{\"name\":" : ",{\"name\":");
        rw_json_str(b, g->def->name);
        rw_buf_puts(b, ",\"file\":");
        rw_json_str(b, g->def->file);
        rw_buf_puts(b, ",\"rules\":[");
        for (size_t i = 0; i < g->nrules; i++) {
            rule_state *rs = &g->rules[i];
            const rw_rule_def *d = rs->def;
            if (nrn && !in_set(rn, nrn, d->name))
                continue;
            if (!rule_matches(sets, nsets, d))
                continue;
            if (d->kind == RULE_ALERT ? !want_alert : !want_record)
                continue;
            if (any++)
                rw_buf_putc(b, ',');
            if (d->kind == RULE_ALERT) {
                /* "inactive" before the first evaluation too, as Prometheus 2 */
                int st = rule_alert_state(rs);
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
                        if (rs->alerts[k]->resolved_at != RW_TIME_UNSET)
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
        rw_buf_puts(b, "],\"interval\":");
        json_num(b, (double)g->interval_ms / 1000.0);
        rw_buf_printf(b, ",\"limit\":%lld,\"evaluationTime\":", (long long)g->def->limit);
        json_num(b, g->last_duration_s);
        rw_buf_puts(b, ",\"lastEvaluation\":");
        json_time(b, g->last_eval_wall_ms);
        rw_buf_putc(b, '}');
        pthread_mutex_unlock(&g->mu);
        if (!any) {
            b->len = mark; /* every rule filtered out: leave the group out */
            if (b->p)
                b->p[mark] = '\0';
        } else {
            first_group = 0;
        }
    }
    rules_manager_read_unlock(r);
    rw_buf_puts(b, "]}}");
    for (size_t k = 0; k < nsets; k++) {
        for (size_t j = 0; j < sets[k].n; j++)
            rw_matcher_free(&sets[k].m[j]);
        free(sets[k].m);
    }
}

static void h_alerts(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_rules *r = ctx;
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
                if (rs->alerts[k]->resolved_at != RW_TIME_UNSET)
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
