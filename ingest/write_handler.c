/* write_handler.c - POST /api/v1/write: the HTTP face of the write path.
 *
 * Negotiates the protocol from Content-Type / Content-Encoding (415 for what
 * we do not speak), takes the tenant from the caller's credential when
 * authentication is on (a tenant header naming another tenant is 403) or
 * else from the tenant header, runs rw_ingest_write and maps
 * the outcome to the statuses senders act on: 204 when everything was
 * stored; 400 (do not retry) with counts and the first reasons when anything
 * was rejected - the valid rest is stored regardless; 400/413 for bad or
 * oversized requests; 503 with Retry-After for overload and storage trouble,
 * never 429 (Prometheus does not retry 429 by default, so a 429 loses data).
 * Remote-write 2.0 replies always carry the *-Written headers. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "ingest_int.h"

static int ct_is(const char *ct, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(ct, want, n) == 0;
}

rw_rc rw_ingest_negotiate(const char *content_type, const char *content_encoding,
                          rw_proto_version *v, rw_err *err)
{
    *v = RW_PROTO_V1;
    if (content_encoding && *content_encoding && strcasecmp(content_encoding, "snappy") != 0)
        return rw_err_set(err, RW_UNSUPPORTED,
                          "unsupported Content-Encoding \"%.64s\": only snappy is accepted",
                          content_encoding);
    if (!content_type || !*content_type)
        return RW_OK; /* senders older than the spec: assume 1.0 */
    const char *semi = strchr(content_type, ';');
    size_t n = semi ? (size_t)(semi - content_type) : strlen(content_type);
    while (n && content_type[n - 1] == ' ')
        n--;
    if (!ct_is(content_type, n, "application/x-protobuf"))
        return rw_err_set(err, RW_UNSUPPORTED,
                          "unsupported Content-Type \"%.100s\": expected application/x-protobuf",
                          content_type);
    if (!semi)
        return RW_OK;
    const char *p = semi + 1;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "proto=", 6) != 0)
        return rw_err_set(err, RW_UNSUPPORTED, "unsupported Content-Type parameter in \"%.100s\"",
                          content_type);
    p += 6;
    size_t pl = strcspn(p, " ;");
    if (strncmp(p, "prometheus.WriteRequest", pl) == 0 && pl == strlen("prometheus.WriteRequest"))
        return RW_OK;
    if (strncmp(p, "io.prometheus.write.v2.Request", pl) == 0 &&
        pl == strlen("io.prometheus.write.v2.Request")) {
        *v = RW_PROTO_V2;
        return RW_OK;
    }
    return rw_err_set(err, RW_UNSUPPORTED,
                      "unsupported remote-write protobuf message \"%.*s\": accepted are "
                      "prometheus.WriteRequest and io.prometheus.write.v2.Request",
                      (int)(pl > 100 ? 100 : pl), p);
}

static void written_headers(rw_http_req *req, rw_http_resp *resp, const rw_write_stats *st)
{
    rw_arena *a = rw_http_arena(req);
    rw_http_resp_header(resp, "X-Prometheus-Remote-Write-Samples-Written",
                        rw_arena_sprintf(a, "%llu", (unsigned long long)st->samples_written));
    rw_http_resp_header(resp, "X-Prometheus-Remote-Write-Histograms-Written", "0");
    rw_http_resp_header(resp, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
}

void rw_ingest_http_write(void *ctx, rw_http_req *req, rw_http_resp *resp)
{
    rw_ingest *ig = ctx;
    rw_err err;
    rw_err_init(&err);
    rw_proto_version v;
    if (rw_ingest_negotiate(rw_http_header(req, "Content-Type"),
                            rw_http_header(req, "Content-Encoding"), &v, &err) != RW_OK) {
        rw_http_resp_text(resp, 415, "%s", err.msg);
        return;
    }
    ig_settings *s = ig_settings_get(ig);
    const char *tenant = rw_http_header(req, s->cfg.tenant_header);
    if (!tenant)
        tenant = rw_http_header(req, "THANOS-TENANT");
    const rw_principal *who = rw_http_principal(req);
    if (who) {
        /* an authenticated sender writes as its credential's tenant; a
           header naming another tenant is refused, never obeyed */
        if (tenant && *tenant && strcmp(tenant, who->tenant) != 0) {
            rw_http_resp_text(resp, 403,
                              "credential of tenant %.100s may not write to tenant %.100s",
                              who->tenant, tenant);
            ig_settings_put(ig, s);
            return;
        }
        tenant = who->tenant;
    }
    if (tenant && (strlen(tenant) > (size_t)s->cfg.max_label_value_len ||
                   !rw_utf8_valid(tenant, strlen(tenant)))) {
        rw_http_resp_text(resp, 400, "invalid tenant in header %s", s->cfg.tenant_header);
        ig_settings_put(ig, s);
        return;
    }
    size_t len;
    const char *body = rw_http_body(req, &len);
    rw_write_stats st;
    rw_rc rc = ig_write(ig, s, v, tenant, body, len, len, &st, &err);
    ig_settings_put(ig, s);
    if (v == RW_PROTO_V2)
        written_headers(req, resp, &st);
    if (rc != RW_OK) {
        int status = rw_rc_http_status(rc);
        rw_http_resp_text(resp, status, "%s", err.msg);
        if (status == 503)
            rw_http_resp_header(resp, "Retry-After",
                                st.retry_after_s > 0
                                    ? rw_arena_sprintf(rw_http_arena(req), "%d", st.retry_after_s)
                                    : "5");
        return;
    }
    uint64_t rejected = st.samples_rejected + st.histograms_rejected;
    if (rejected || st.series_rejected || st.metadata_rejected) {
        rw_http_resp_text(resp, 400,
                          "partial write: %llu samples written, %llu samples rejected "
                          "(%llu series invalid, %llu native histogram samples not supported), "
                          "%llu metadata entries rejected; first reasons: %s",
                          (unsigned long long)st.samples_written,
                          (unsigned long long)st.samples_rejected,
                          (unsigned long long)st.series_rejected,
                          (unsigned long long)st.histograms_rejected,
                          (unsigned long long)st.metadata_rejected, st.reasons);
        return;
    }
    /* samples of a replica that is not elected were dropped on purpose: 202,
       as the Cortex/Mimir HA tracker answers (the sender must not retry) */
    resp->status = st.samples_deduplicated && !st.samples_written ? 202 : 204;
    resp->content_type = NULL;
}
