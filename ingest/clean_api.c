/* clean_api.c - the HTTP face of ingest-time cleaning, in the JSON shape of
 * the rest of the API ({"status":"success","data":...}):
 *
 *   GET  /api/v1/kubelet/endpoints  per cluster, the endpoint IPs, owning
 *                                   node and readiness, excluded claimants
 *                                   with the reason (kubelet.c)
 *   GET  /api/v1/status/sources     per tenant and cluster: newest sample,
 *                                   rate, rejections by reason, active
 *                                   series against the limit, versions,
 *                                   elected replica, kubelet drops,
 *                                   inventory membership (sources.c)
 *   POST /api/v1/relabel/test       a dry run: a label set in, what the
 *                                   configured stages make of it out, with
 *                                   no state changed
 *
 * Filters: ?tenant= and ?cluster= on the two GETs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/timeutil.h"
#include "core/yaml.h"
#include "ingest_int.h"

static void ok_json(rw_http_resp *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    resp->gzip_ok = 1;
}

static void error_json(rw_http_resp *resp, int status, const char *type, const char *msg)
{
    rw_buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    rw_buf_printf(&resp->body, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", type);
    rw_json_str(&resp->body, msg);
    rw_buf_putc(&resp->body, '}');
}

static void rfc3339(rw_buf *b, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char t[64];
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    rw_buf_printf(b, "\"%s.%03dZ\"", t, (int)(ms % 1000 + 1000) % 1000);
}

/* ---- /api/v1/kubelet/endpoints ---- */

static void h_endpoints(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_ingest *ig = ctx;
    ok_json(resp);
    rw_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
    rw_kubelet_endpoints_json(ig->kubelet, rw_http_param(req, "tenant"),
                              rw_http_param(req, "cluster"), rw_http_principal(req), &resp->body);
    rw_buf_putc(&resp->body, '}');
}

/* ---- /api/v1/status/sources ---- */

typedef struct src_ctx {
    rw_ingest *ig;
    const rw_ingest_config *cfg;
    rw_buf *out;
    int n;
    int64_t now;
    const rw_principal *reader; /* only the tenants it may read are listed */
} src_ctx;

static void source_json(void *vctx, const rw_source_info *in)
{
    src_ctx *c = vctx;
    rw_buf *b = c->out;
    if (!rw_principal_reads(c->reader, in->tenant))
        return;
    rw_buf_puts(b, c->n++ ? ",{\"tenant\":" : "{\"tenant\":");
    rw_json_str(b, in->tenant);
    rw_buf_puts(b, ",\"cluster\":");
    rw_json_str(b, in->cluster);
    rw_buf_puts(b, ",\"newest_sample\":");
    if (in->newest_ms == INT64_MIN) {
        rw_buf_puts(b, "null,\"newest_sample_age_seconds\":null");
    } else {
        rfc3339(b, in->newest_ms);
        rw_buf_printf(b, ",\"newest_sample_age_seconds\":%.3f",
                      (double)(c->now - in->newest_ms) / 1000.0);
    }
    rw_buf_printf(b, ",\"samples_per_second_1m\":%.3f,\"samples_accepted\":%llu", in->rate_1m,
                  (unsigned long long)in->accepted);
    for (int part = 0; part < 2; part++) {
        rw_buf_puts(b, part ? ",\"dropped\":{" : ",\"rejected\":{");
        int k = 0;
        for (int r = part ? RW_SRC__REJECTED : 0; r < (part ? RW_SRC__COUNT : RW_SRC__REJECTED);
             r++)
            if (in->reasons[r])
                rw_buf_printf(b, "%s\"%s\":%llu", k++ ? "," : "", rw_src_reason_str(r),
                              (unsigned long long)in->reasons[r]);
        rw_buf_putc(b, '}');
    }
    const rw_ingest_tenant_limits *tl = rw_in_tenant_limits(c->cfg, in->tenant);
    if (tl && tl->max_series > 0)
        rw_buf_printf(b, ",\"active_series\":%llu,\"max_series\":%lld",
                      (unsigned long long)rw_limits_active(c->ig->limits, in->tenant),
                      (long long)tl->max_series);
    else
        rw_buf_puts(b, ",\"active_series\":null,\"max_series\":null");
    rw_buf_printf(b, ",\"remote_write_versions\":[%s%s%s]",
                  in->versions & 2 ? "\"1.0\"" : "", (in->versions & 6) == 6 ? "," : "",
                  in->versions & 4 ? "\"2.0\"" : "");
    char rep[256];
    rw_buf_puts(b, ",\"ha_elected_replica\":");
    if (rw_ha_elected(c->ig->ha, in->tenant, in->cluster, rep, sizeof rep))
        rw_json_str(b, rep);
    else
        rw_buf_puts(b, "null");
    rw_buf_printf(b, ",\"kubelet_endpoints_dropped\":%llu,\"missing_from_inventory\":%s",
                  (unsigned long long)rw_kubelet_dropped(c->ig->kubelet, in->tenant, in->cluster),
                  in->unlisted < 0 ? "null" : in->unlisted ? "true" : "false");
    rw_buf_puts(b, ",\"first_request\":");
    rfc3339(b, in->first_ms);
    rw_buf_puts(b, ",\"last_request\":");
    rfc3339(b, in->last_ms);
    rw_buf_putc(b, '}');
}

static void h_sources(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_ingest *ig = ctx;
    ig_settings *s = ig_settings_get(ig);
    ok_json(resp);
    rw_buf *b = &resp->body;
    rw_buf_puts(b, "{\"status\":\"success\",\"data\":{\"sources\":[");
    src_ctx c = {ig, &s->cfg, b, 0, rw_now_ms(), rw_http_principal(req)};
    rw_sources_each(ig->sources, rw_http_param(req, "tenant"), rw_http_param(req, "cluster"),
                    c.now, source_json, &c);
    rw_buf_printf(b, "],\"tracked\":%zu,\"max_sources\":%lld,\"overflow_requests\":%llu",
                  rw_sources_count(ig->sources), (long long)s->cfg.max_sources,
                  (unsigned long long)rw_sources_overflow(ig->sources));
    rw_buf_printf(b, ",\"inventory\":{\"file\":");
    rw_json_str(b, s->cfg.inventory_file);
    rw_buf_printf(b, ",\"clusters\":%zu}",
                  s->cfg.inventory ? rw_inventory_size(s->cfg.inventory) : (size_t)0);
    rw_in_kube_api_status ks;
    if (rw_in_kube_api_status_get(ig, &ks)) {
        rw_buf_puts(b, ",\"kubernetes_api\":{\"url\":");
        rw_json_str(b, s->cfg.kubelet_dedup.kubernetes_api.url);
        rw_buf_puts(b, ",\"last_success\":");
        if (ks.last_ok_ms)
            rfc3339(b, ks.last_ok_ms);
        else
            rw_buf_puts(b, "null");
        rw_buf_printf(b, ",\"nodes\":%zu,\"last_error\":", ks.nodes);
        if (ks.last_error[0])
            rw_json_str(b, ks.last_error);
        else
            rw_buf_puts(b, "null");
        rw_buf_puts(b, ",\"settings\":");
        rw_in_kube_api_settings_json(ig, b);
        rw_buf_putc(b, '}');
    }
    /* the settings in force, so a reload can be verified from outside */
    const rw_ingest_config *cf = &s->cfg;
    char win[32];
    rw_format_duration(cf->active_series_window_ms, win, sizeof win);
    rw_buf_puts(b, ",\"settings\":{\"cluster_label\":");
    rw_json_str(b, cf->cluster_label);
    rw_buf_printf(b, ",\"active_series_window\":\"%s\",\"ha_dedup\":{\"enabled\":%s,"
                     "\"cluster_label\":", win, cf->ha_dedup.enabled ? "true" : "false");
    rw_json_str(b, cf->ha_dedup.cluster_label);
    rw_buf_puts(b, ",\"replica_label\":");
    rw_json_str(b, cf->ha_dedup.replica_label);
    rw_format_duration(cf->ha_dedup.failover_timeout_ms, win, sizeof win);
    rw_buf_printf(b, ",\"failover_timeout\":\"%s\",\"max_clusters\":%lld,"
                     "\"standby_buffer_bytes\":%lld},\"kubelet_dedup\":{\"enabled\":%s,"
                     "\"mode\":\"%s\",\"selector\":",
                  win, (long long)cf->ha_dedup.max_clusters,
                  (long long)cf->ha_dedup.standby_buffer_bytes,
                  cf->kubelet_dedup.enabled ? "true" : "false",
                  cf->kubelet_dedup.mode ? "strict" : "ip-reuse");
    rw_json_str(b, cf->kubelet_dedup.selector);
    rw_format_duration(cf->kubelet_dedup.node_ttl_ms, win, sizeof win);
    rw_buf_printf(b, ",\"node_ttl\":\"%s\",\"max_nodes\":%lld}}", win,
                  (long long)cf->kubelet_dedup.max_nodes);
    rw_buf_puts(b, "}}");
    ig_settings_put(ig, s);
}

/* ---- /api/v1/relabel/test ---- */

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const rw_label *)a)->name, ((const rw_label *)b)->name);
}

/* The label set from the request: a JSON body {"labels": {...}, "tenant":
 * "..."} (or just the label object), or the parameter series=up{job="x"}. */
static int read_input(rw_http_req *req, rw_arena *a, rw_label **out, size_t *n,
                      const char **tenant, char *msg, size_t cap)
{
    const char *series = rw_http_param(req, "series");
    *tenant = rw_http_param(req, "tenant");
    if (series) {
        rw_in_selector sel;
        rw_err e;
        rw_err_init(&e);
        if (rw_in_selector_parse(series, &sel, &e) != RW_OK) {
            snprintf(msg, cap, "series: %.300s", e.msg);
            return -1;
        }
        *out = rw_arena_alloc(a, (sel.n ? sel.n : 1) * sizeof **out);
        *n = 0;
        for (size_t i = 0; *out && i < sel.n; i++) {
            if (sel.m[i].op != RW_MATCH_EQ) {
                snprintf(msg, cap, "series: only name=\"value\" pairs describe a series");
                rw_in_selector_free(&sel);
                return -1;
            }
            if (!sel.m[i].value[0])
                continue;
            (*out)[*n].name = rw_arena_strdup(a, sel.m[i].name);
            (*out)[(*n)++].value = rw_arena_strdup(a, sel.m[i].value);
        }
        rw_in_selector_free(&sel);
        return 0;
    }
    size_t len;
    const char *body = rw_http_body(req, &len);
    rw_ynode *root = NULL;
    rw_err e;
    rw_err_init(&e);
    if (!body || !len || rw_yaml_parse(body, len, "body", a, &root, &e) != RW_OK ||
        !root || root->kind != RW_Y_MAP) {
        snprintf(msg, cap, "expected a JSON object {\"labels\": {\"__name__\": \"...\", ...}} "
                           "or the parameter series=metric{label=\"value\"}%s%.200s",
                 e.msg[0] ? ": " : "", e.msg);
        return -1;
    }
    const rw_ynode *lm = rw_yaml_get(root, "labels");
    const rw_ynode *t = rw_yaml_get(root, "tenant");
    if (t && t->kind == RW_Y_SCALAR)
        *tenant = t->s;
    if (!lm)
        lm = root;
    if (lm->kind != RW_Y_MAP) {
        snprintf(msg, cap, "labels must be an object of names to values");
        return -1;
    }
    *out = rw_arena_alloc(a, (lm->n ? lm->n : 1) * sizeof **out);
    *n = 0;
    for (size_t i = 0; *out && i < lm->n; i++) {
        if (lm == root && (!strcmp(lm->keys[i]->s, "tenant")))
            continue;
        if (lm->vals[i]->kind != RW_Y_SCALAR) {
            snprintf(msg, cap, "label %.64s: the value must be a string", lm->keys[i]->s);
            return -1;
        }
        if (!lm->vals[i]->s[0])
            continue;
        (*out)[*n].name = lm->keys[i]->s;
        (*out)[(*n)++].value = lm->vals[i]->s;
    }
    return 0;
}

static void h_relabel_test(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_ingest *ig = ctx;
    rw_arena *a = rw_http_arena(req);
    char msg[512];
    rw_label *in = NULL;
    size_t nin = 0;
    const char *tenant = NULL;
    if (read_input(req, a, &in, &nin, &tenant, msg, sizeof msg) != 0) {
        error_json(resp, 400, "bad_data", msg);
        return;
    }
    qsort(in, nin, sizeof *in, cmp_label);
    rw_err e;
    rw_err_init(&e);
    if (rw_labels_validate(in, nin, &e) != RW_OK) {
        error_json(resp, 400, "bad_data", e.msg);
        return;
    }
    ig_settings *s = ig_settings_get(ig);
    const rw_ingest_config *cfg = &s->cfg;
    if (!tenant)
        tenant = cfg->default_tenant;
    rw_buf *b = &resp->body;
    ok_json(resp);
    rw_buf_puts(b, "{\"status\":\"success\",\"data\":{\"input\":");
    rw_json_labels(b, in, nin);
    rw_buf_puts(b, ",\"tenant\":");
    rw_json_str(b, tenant);
    rw_buf_puts(b, ",\"stages\":[");
    rw_in_series ser = {.labels = in, .nlabels = nin};
    const char *result = "stored";
    char why[512] = "";
    /* tenant label */
    if (cfg->tenant_label[0] && tenant[0]) {
        rw_in_set_label(a, &ser, cfg->tenant_label, tenant);
        rw_buf_puts(b, "{\"stage\":\"tenant\",\"labels\":");
        rw_json_labels(b, ser.labels, ser.nlabels);
        rw_buf_puts(b, "},");
    }
    const rw_ingest_ha_config *h = &cfg->ha_dedup;
    const char *rep = rw_labels_get(ser.labels, ser.nlabels, h->replica_label);
    const char *hcl = rw_labels_get(ser.labels, ser.nlabels, h->cluster_label);
    /* the order of the write path's stages: HA dedup, relabel, inventory,
       kubelet dedup */
    if (!strcmp(result, "stored") && h->enabled && rep && hcl) {
        char el[256];
        int has = rw_ha_elected(ig->ha, tenant, hcl, el, sizeof el);
        rw_buf_puts(b, "{\"stage\":\"ha_dedup\",\"replica\":");
        rw_json_str(b, rep);
        rw_buf_puts(b, ",\"elected\":");
        if (has)
            rw_json_str(b, el);
        else
            rw_buf_puts(b, "null");
        int mine = !has || !strcmp(el, rep);
        rw_buf_printf(b, ",\"samples\":\"%s\"",
                      mine ? "accepted" : "dropped unless newer than the elected replica's "
                                          "newest sample by the failover timeout");
        rw_in_series tmp = ser;
        rw_label *cp = rw_arena_alloc(a, (ser.nlabels ? ser.nlabels : 1) * sizeof *cp);
        if (cp) {
            size_t k = 0;
            for (size_t i = 0; i < ser.nlabels; i++)
                if (strcmp(ser.labels[i].name, h->replica_label))
                    cp[k++] = ser.labels[i];
            tmp.labels = cp;
            tmp.nlabels = k;
        }
        ser = tmp;
        rw_buf_puts(b, ",\"labels\":");
        rw_json_labels(b, ser.labels, ser.nlabels);
        rw_buf_puts(b, "},");
        if (!mine) {
            result = "deduplicated";
            snprintf(why, sizeof why, "replica \"%.100s\" is not the elected one (\"%.100s\")",
                     rep, el);
        }
    }
    /* relabel: global, then the tenant's */
    const rw_ingest_tenant_limits *tl = rw_in_tenant_limits(cfg, tenant);
    ig_scratch *scr = ig_scratch_get(ig);
    for (int pass = 0; pass < 2 && scr; pass++) {
        const rw_cfg_list *l = pass ? (tl ? &tl->write_relabel_configs : NULL)
                                    : &cfg->write_relabel_configs;
        if (!l || !l->n)
            continue;
        rw_labels out;
        rw_err_init(&e);
        rw_relabel_result r = rw_relabel_apply(scr->rs, l->v, l->n, RW_RELABEL_REQUIRE_NAME, a,
                                               ser.labels, ser.nlabels, &out, &e);
        rw_buf_printf(b, "{\"stage\":\"%s\",\"rules\":%zu,\"result\":\"%s\"",
                      pass ? "tenant_relabel" : "relabel", l->n,
                      r == RW_RELABEL_KEPT      ? "kept"
                      : r == RW_RELABEL_DROPPED ? "dropped"
                      : r == RW_RELABEL_INVALID ? "invalid"
                                                : "failed");
        if (r == RW_RELABEL_DROPPED || r == RW_RELABEL_FAILED) {
            int ri = rw_relabel_state_rule(scr->rs);
            const rw_relabel_config *rc = (const rw_relabel_config *)l->v + ri;
            rw_buf_printf(b, ",\"rule\":%d,\"action\":\"%s\"", ri,
                          rw_relabel_action_names[rc->action]);
            snprintf(why, sizeof why, "%s rule %d (%s) %.300s", pass ? "tenant relabel" : "relabel",
                     ri, rw_relabel_action_names[rc->action],
                     r == RW_RELABEL_DROPPED ? "drops it" : e.msg);
        }
        if (r == RW_RELABEL_INVALID || r == RW_RELABEL_FAILED) {
            rw_buf_puts(b, ",\"error\":");
            rw_json_str(b, e.msg);
            if (!why[0])
                snprintf(why, sizeof why, "%s", e.msg);
        }
        if (r == RW_RELABEL_KEPT || r == RW_RELABEL_INVALID) {
            rw_buf_puts(b, ",\"labels\":");
            rw_json_labels(b, out.v, out.n);
        }
        rw_buf_puts(b, "},");
        if (r != RW_RELABEL_KEPT) {
            result = r == RW_RELABEL_DROPPED ? "dropped" : "invalid";
            break;
        }
        ser.labels = out.v;
        ser.nlabels = out.n;
    }
    ig_scratch_put(ig, scr);
    const char *cl = rw_labels_get(ser.labels, ser.nlabels, cfg->cluster_label);
    if (!strcmp(result, "stored") && cfg->inventory && cl) {
        const rw_inventory_entry *ie = rw_inventory_find(cfg->inventory, cl, strlen(cl));
        rw_labels out;
        if (rw_inventory_apply(ie, a, ser.labels, ser.nlabels, &out) == RW_OK) {
            ser.labels = out.v;
            ser.nlabels = out.n;
        }
        rw_buf_printf(b, "{\"stage\":\"inventory\",\"cluster\":");
        rw_json_str(b, cl);
        rw_buf_printf(b, ",\"listed\":%s,\"labels\":", ie ? "true" : "false");
        rw_json_labels(b, ser.labels, ser.nlabels);
        rw_buf_puts(b, "},");
    }
    const rw_ingest_kubelet_config *k = &cfg->kubelet_dedup;
    if (!strcmp(result, "stored") && k->enabled && k->compiled_selector) {
        rw_regex_md *md = rw_regex_md_new(((rw_in_selector *)k->compiled_selector)->ngroups);
        int is_kubelet = md && rw_in_selector_matches(k->compiled_selector, md, ser.labels,
                                                      ser.nlabels);
        rw_regex_md_free(md);
        if (is_kubelet) {
            const char *node = rw_labels_get(ser.labels, ser.nlabels, k->node_label);
            const char *inst = rw_labels_get(ser.labels, ser.nlabels, k->instance_label);
            rw_kubelet_decision d = rw_kubelet_decide(ig->kubelet, tenant, cl ? cl : "", inst,
                                                      node, 0);
            rw_buf_printf(b, "{\"stage\":\"kubelet_dedup\",\"kubelet_series\":true,"
                             "\"decision\":\"%s\"},",
                          d == RW_KUBELET_KEEP            ? "keep"
                          : d == RW_KUBELET_DROP_IP_REUSE ? "drop: another node owns the IP"
                                                          : "drop: the node is not Ready");
            if (d != RW_KUBELET_KEEP) {
                result = "dropped";
                snprintf(why, sizeof why, "kubelet dedup: %s",
                         d == RW_KUBELET_DROP_IP_REUSE
                             ? "another node owns the instance's IP (see /api/v1/kubelet/endpoints)"
                             : "strict mode: the node's Ready condition is not true");
            }
        }
    }
    if (b->len && b->p[b->len - 1] == ',')
        b->len--, b->p[b->len] = '\0';
    rw_buf_printf(b, "],\"result\":\"%s\"", result);
    if (why[0]) {
        rw_buf_puts(b, ",\"reason\":");
        rw_json_str(b, why);
    }
    rw_buf_puts(b, ",\"output\":");
    if (!strcmp(result, "stored"))
        rw_json_labels(b, ser.labels, ser.nlabels);
    else
        rw_buf_puts(b, "null");
    rw_buf_puts(b, "}}");
    ig_settings_put(ig, s);
}

rw_rc rw_ingest_routes(rw_ingest *ig, rw_routes *r, rw_err *err)
{
    const rw_http_route rows[] = {
        {.path = "/api/v1/kubelet/endpoints", .methods = RW_HTTP_GET, .perm = RW_PERM_READ,
         .fn = h_endpoints, .ctx = ig},
        {.path = "/api/v1/status/sources", .methods = RW_HTTP_GET, .perm = RW_PERM_READ,
         .fn = h_sources, .ctx = ig},
        {.path = "/api/v1/relabel/test", .methods = RW_HTTP_POST | RW_HTTP_GET,
         .perm = RW_PERM_READ, .max_body = 1u << 20, .fn = h_relabel_test, .ctx = ig},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rw_rc rc = rw_routes_add(r, &rows[i], err);
        if (rc != RW_OK)
            return rc;
    }
    return RW_OK;
}
