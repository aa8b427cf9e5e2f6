/* ingest_config.c - the `ingest:` section of the configuration: the rows that
 * describe rw_ingest_config (ingest.h), with every default of the write
 * path. All of them apply on reload: rw_ingest_reconfigure swaps a settings
 * snapshot that requests take a reference to. The cleaning keys
 * (inventory, relabeling, HA and kubelet dedup, tenant limits) are compiled
 * here by the tables' check functions: the inventory file is read, the
 * kubelet selector parsed, so a bad file fails the load or the reload. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "clean.h"
#include "core/cfg.h"
#include "core/relabel.h"
#include "ingest.h"

/* ---- ha_dedup ---- */

static rw_rc check_ha(void *obj, rw_err *err)
{
    rw_ingest_ha_config *h = obj;
    if (!h->cluster_label[0] || !h->replica_label[0])
        return rw_err_set(err, RW_BADREQ, "cluster_label and replica_label must not be empty");
    if (!strcmp(h->cluster_label, h->replica_label))
        return rw_err_set(err, RW_BADREQ, "cluster_label and replica_label must differ");
    return RW_OK;
}

#define HA(f) offsetof(rw_ingest_ha_config, f)
static const rw_cfg_key ha_keys[] = {
    {"enabled", RW_CFG_BOOL, HA(enabled), "true", 0, 0, RW_CFG_RELOAD,
     "deduplicate HA pairs (acts only on series with the replica label)", NULL, NULL},
    {"cluster_label", RW_CFG_STRING, HA(cluster_label), "cluster", 0, 0, RW_CFG_RELOAD,
     "label naming the cluster an HA pair scrapes", NULL, NULL},
    {"replica_label", RW_CFG_STRING, HA(replica_label), "__replica__", 0, 0, RW_CFG_RELOAD,
     "label naming the replica; removed before storage", NULL, NULL},
    {"failover_timeout", RW_CFG_DURATION, HA(failover_timeout_ms), "30s", 1000, 86400000.0,
     RW_CFG_RELOAD, "the elected replica loses the election when a standby's samples are this "
                    "much newer than its newest (sample time)", NULL, NULL},
    {"max_clusters", RW_CFG_INT, HA(max_clusters), "100000", 1, 1e9, RW_CFG_RELOAD,
     "(tenant, cluster) pairs tracked; beyond, series pass undeduplicated and are counted",
     NULL, NULL},
    {"standby_buffer", RW_CFG_BYTES, HA(standby_buffer_bytes), "64MiB", 0, 9.2e18, RW_CFG_RELOAD,
     "memory for standby samples the elected replica has not covered yet, stored when that "
     "standby takes over so a failover leaves no gap; 0 = none", NULL, NULL},
};
static const rw_cfg_table ha_table =
    RW_CFG_TABLE("ha_dedup", rw_ingest_ha_config, ha_keys, check_ha, NULL);

/* ---- kubelet_dedup ---- */

#define TLS(f) offsetof(rw_ingest_tls_config, f)
static const rw_cfg_key tls_keys[] = {
    {"ca_file", RW_CFG_PATH, TLS(ca_file), NULL, 0, 0, RW_CFG_RELOAD,
     "CA certificate(s) the API server's certificate is checked against", NULL, NULL},
    {"cert_file", RW_CFG_PATH, TLS(cert_file), NULL, 0, 0, RW_CFG_RELOAD,
     "client certificate", NULL, NULL},
    {"key_file", RW_CFG_PATH, TLS(key_file), NULL, 0, 0, RW_CFG_RELOAD | RW_CFG_SECRET,
     "client key", NULL, NULL},
    {"server_name", RW_CFG_STRING, TLS(server_name), NULL, 0, 0, RW_CFG_RELOAD,
     "name expected in the server's certificate (default: the URL's host)", NULL, NULL},
    {"insecure_skip_verify", RW_CFG_BOOL, TLS(insecure_skip_verify), "false", 0, 0,
     RW_CFG_RELOAD, "do not verify the server's certificate", NULL, NULL},
};
static const rw_cfg_table tls_table =
    RW_CFG_TABLE("tls_config", rw_ingest_tls_config, tls_keys, NULL, NULL);

static rw_rc check_kube_api(void *obj, rw_err *err)
{
    rw_ingest_kube_api_config *k = obj;
    if (!k->url[0])
        return RW_OK;
    if (strncmp(k->url, "https://", 8) && strncmp(k->url, "http://", 7))
        return rw_err_set(err, RW_BADREQ, "url \"%.100s\" must be http:// or https://", k->url);
    if (!k->cluster[0])
        return rw_err_set(err, RW_BADREQ, "cluster must name the cluster whose nodes the API "
                                          "server lists");
    return RW_OK;
}

#define KA(f) offsetof(rw_ingest_kube_api_config, f)
static const rw_cfg_key kube_api_keys[] = {
    {"url", RW_CFG_STRING, KA(url), "", 0, 0, RW_CFG_RELOAD,
     "Kubernetes API server (GET /api/v1/nodes); empty = learn nodes from KSM series only",
     NULL, NULL},
    {"bearer_token_file", RW_CFG_PATH, KA(bearer_token_file), NULL, 0, 0, RW_CFG_RELOAD,
     "file with the bearer token, re-read before every request", NULL, NULL},
    {"tls_config", RW_CFG_SECTION, KA(tls_config), NULL, 0, 0, RW_CFG_RELOAD, "", &tls_table,
     NULL},
    {"cluster", RW_CFG_STRING, KA(cluster), "", 0, 0, RW_CFG_RELOAD,
     "value of the cluster label of the series this API server's nodes serve", NULL, NULL},
    {"tenant", RW_CFG_STRING, KA(tenant), "", 0, 0, RW_CFG_RELOAD,
     "tenant of those series (empty: none)", NULL, NULL},
    {"refresh_interval", RW_CFG_DURATION, KA(refresh_interval_ms), "1m", 1000, 86400000.0,
     RW_CFG_RELOAD, "how often the node list is fetched", NULL, NULL},
    {"timeout", RW_CFG_DURATION, KA(timeout_ms), "30s", 1000, 600000, RW_CFG_RELOAD,
     "per request", NULL, NULL},
};
static const rw_cfg_table kube_api_table =
    RW_CFG_TABLE("kubernetes_api", rw_ingest_kube_api_config, kube_api_keys, check_kube_api, NULL);

static const char *const kubelet_modes[] = {"ip-reuse", "strict", NULL};

static rw_rc check_kubelet(void *obj, rw_err *err)
{
    rw_ingest_kubelet_config *k = obj;
    if (k->compiled_selector) {
        rw_in_selector_free(k->compiled_selector);
        free(k->compiled_selector);
        k->compiled_selector = NULL;
    }
    rw_in_selector *sel = calloc(1, sizeof *sel);
    if (!sel)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    rw_rc rc = rw_in_selector_parse(k->selector, sel, err);
    if (rc != RW_OK) {
        free(sel);
        return rc;
    }
    k->compiled_selector = sel;
    if (!k->node_label[0] || !k->instance_label[0])
        return rw_err_set(err, RW_BADREQ, "node_label and instance_label must not be empty");
    return RW_OK;
}

static void release_kubelet(void *obj)
{
    rw_ingest_kubelet_config *k = obj;
    if (k->compiled_selector) {
        rw_in_selector_free(k->compiled_selector);
        free(k->compiled_selector);
        k->compiled_selector = NULL;
    }
}

#define KU(f) offsetof(rw_ingest_kubelet_config, f)
static const rw_cfg_key kubelet_keys[] = {
    {"enabled", RW_CFG_BOOL, KU(enabled), "true", 0, 0, RW_CFG_RELOAD,
     "drop kubelet series of nodes that do not own their endpoint IP (acts only when node "
     "information exists)", NULL, NULL},
    {"selector", RW_CFG_STRING, KU(selector), "{job=\"kubelet\"}", 0, 0, RW_CFG_RELOAD,
     "which series are kubelet series", NULL, NULL},
    {"mode", RW_CFG_ENUM, KU(mode), "ip-reuse", 0, 0, RW_CFG_RELOAD,
     "ip-reuse: only the owner of a reused IP keeps its series; strict: also drop every "
     "kubelet series of a node whose Ready condition is false or unknown", NULL, kubelet_modes},
    {"node_label", RW_CFG_STRING, KU(node_label), "node", 0, 0, RW_CFG_RELOAD,
     "label of kubelet series naming the node", NULL, NULL},
    {"instance_label", RW_CFG_STRING, KU(instance_label), "instance", 0, 0, RW_CFG_RELOAD,
     "label of kubelet series with the endpoint (IP:port)", NULL, NULL},
    {"node_ttl", RW_CFG_DURATION, KU(node_ttl_ms), "10m", 60000, 86400000.0, RW_CFG_RELOAD,
     "a node absent from a cluster's kube-state-metrics data this long (sample time) is "
     "forgotten", NULL, NULL},
    {"max_nodes", RW_CFG_INT, KU(max_nodes), "200000", 1, 1e9, RW_CFG_RELOAD,
     "nodes tracked over all clusters", NULL, NULL},
    {"kubernetes_api", RW_CFG_SECTION, KU(kubernetes_api), NULL, 0, 0, RW_CFG_RELOAD, "",
     &kube_api_table, NULL},
};
static const rw_cfg_table kubelet_table = RW_CFG_TABLE(
    "kubelet_dedup", rw_ingest_kubelet_config, kubelet_keys, check_kubelet, release_kubelet);

/* ---- tenant_limits ---- */

#define TL(f) offsetof(rw_ingest_tenant_limits, f)
static const rw_cfg_key limit_keys[] = {
    {"ingestion_rate", RW_CFG_FLOAT, TL(ingestion_rate), "0", 0, 1e12, RW_CFG_RELOAD,
     "samples per second (token bucket); over it: 503 + Retry-After; 0 = unlimited", NULL,
     NULL},
    {"ingestion_burst", RW_CFG_INT, TL(ingestion_burst), "0", 0, 9.2e18, RW_CFG_RELOAD,
     "bucket size in samples; 0 = one second of ingestion_rate", NULL, NULL},
    {"max_series", RW_CFG_INT, TL(max_series), "0", 0, 9.2e18, RW_CFG_RELOAD,
     "active series (a sample within active_series_window); new series beyond: 400", NULL,
     NULL},
    {"max_labels_per_series", RW_CFG_INT, TL(max_labels_per_series), "0", 0, 65535,
     RW_CFG_RELOAD, "0 = ingest.max_labels_per_series", NULL, NULL},
    {"max_label_name_length", RW_CFG_INT, TL(max_label_name_length), "0", 0, 1 << 20,
     RW_CFG_RELOAD, "0 = ingest.max_label_name_length", NULL, NULL},
    {"max_label_value_length", RW_CFG_INT, TL(max_label_value_length), "0", 0, 1 << 24,
     RW_CFG_RELOAD, "0 = ingest.max_label_value_length", NULL, NULL},
    {"write_relabel_configs", RW_CFG_LIST, TL(write_relabel_configs), NULL, 0, 0, RW_CFG_RELOAD,
     "relabel rules for this tenant's series, after ingest.write_relabel_configs",
     &rw_relabel_config_table, NULL},
};
static const rw_cfg_table limits_table =
    RW_CFG_TABLE("tenant_limits", rw_ingest_tenant_limits, limit_keys, NULL, NULL);

#define OFF(f) offsetof(rw_ingest_config, f)
#define BIG 9.2e18
#define R RW_CFG_RELOAD

static const rw_cfg_key keys[] = {
    {"tenant_header", RW_CFG_STRING, OFF(tenant_header), "X-Scope-OrgID", 0, 0, R,
     "HTTP header naming the tenant (THANOS-TENANT is also read)", NULL, NULL},
    {"tenant_label", RW_CFG_STRING, OFF(tenant_label), "tenant_id", 0, 0, R,
     "label that carries the tenant; empty = no tenant label", NULL, NULL},
    {"default_tenant", RW_CFG_STRING, OFF(default_tenant), "", 0, 0, R,
     "tenant of requests without the header; empty = no tenant label for them", NULL, NULL},
    {"max_future", RW_CFG_DURATION, OFF(max_future_ms), "10m", 0, BIG, R,
     "samples further ahead of the clock are rejected (0 = no limit)", NULL, NULL},
    {"max_body_bytes", RW_CFG_BYTES, OFF(max_body_bytes), "32MiB", 1024, BIG, R,
     "largest compressed request body (413 above)", NULL, NULL},
    {"max_decoded_bytes", RW_CFG_BYTES, OFF(max_decoded_bytes), "128MiB", 1024, BIG, R,
     "largest decompressed request body", NULL, NULL},
    {"max_inflight_bytes", RW_CFG_BYTES, OFF(max_inflight_bytes), "512MiB", 64 * 1024, BIG, R,
     "bytes the write requests in flight hold at once (bodies as they arrive, decoded bodies, "
     "decoding memory); 503 + Retry-After above, 400 for a request that alone needs more",
     NULL, NULL},
    {"max_series_per_request", RW_CFG_INT, OFF(max_series_per_request), "100000", 1, BIG, R,
     "series per write request", NULL, NULL},
    {"max_labels_per_series", RW_CFG_INT, OFF(max_labels_per_series), "128", 1, RW_LABELS_MAX, R,
     "labels per series", NULL, NULL},
    {"max_label_name_length", RW_CFG_INT, OFF(max_label_name_len), "1024", 1, 1 << 20, R,
     "bytes per label name", NULL, NULL},
    {"max_label_value_length", RW_CFG_INT, OFF(max_label_value_len), "4096", 1, 1 << 24, R,
     "bytes per label value (also: values label_replace / label_join may build, metric "
     "names and units of metadata)",
     NULL, NULL},
    {"max_help_length", RW_CFG_INT, OFF(max_help_len), "8192", 1, 1 << 24, R,
     "bytes of a metadata help text; longer entries are rejected", NULL, NULL},
    {"cluster_label", RW_CFG_STRING, OFF(cluster_label), "cluster", 0, 0, R,
     "label naming a series' cluster (inventory, kubelet dedup, /api/v1/status/sources)", NULL,
     NULL},
    {"inventory_file", RW_CFG_PATH, OFF(inventory_file), "", 0, 0, R,
     "cluster inventory (YAML, see deploy/clusters.example.yml): standard labels per cluster; "
     "re-read on reload", NULL, NULL},
    {"write_relabel_configs", RW_CFG_LIST, OFF(write_relabel_configs), NULL, 0, 0, R,
     "Prometheus relabel_config rules applied to every series at ingest", &rw_relabel_config_table,
     NULL},
    {"ha_dedup", RW_CFG_SECTION, OFF(ha_dedup), NULL, 0, 0, R, "", &ha_table, NULL},
    {"kubelet_dedup", RW_CFG_SECTION, OFF(kubelet_dedup), NULL, 0, 0, R, "", &kubelet_table,
     NULL},
    {"tenant_limits", RW_CFG_MAP, OFF(tenant_limits), NULL, 0, 0, R,
     "per-tenant limits and relabel rules; the entry `default` applies to tenants without one",
     &limits_table, NULL},
    {"active_series_window", RW_CFG_DURATION, OFF(active_series_window_ms), "10m", 60000,
     86400000.0, R, "a series counts as active this long after its last sample", NULL, NULL},
    {"max_sources", RW_CFG_INT, OFF(max_sources), "10000", 1, 1e8, R,
     "(tenant, cluster) pairs tracked by /api/v1/status/sources; beyond, counted as overflow",
     NULL, NULL},
    {"series_cache_size", RW_CFG_INT, OFF(series_cache_size), "2097152", 0, 1e10, 0,
     "series whose labels, cleaning verdict and stored series the write path remembers by "
     "their bytes as sent (32 bytes each, allocated as they come; 0 = off): a series seen "
     "before skips validation, the cleaning stages and the label comparison", NULL, NULL},
};

static rw_rc check_ingest(void *obj, rw_err *err)
{
    rw_ingest_config *c = obj;
    if (!c->cluster_label[0])
        return rw_err_set(err, RW_BADREQ, "cluster_label must not be empty");
    rw_inventory_free(c->inventory);
    c->inventory = NULL;
    if (c->inventory_file[0]) {
        rw_err e;
        rw_err_init(&e);
        if (!(c->inventory = rw_inventory_load(c->inventory_file, &e)))
            return rw_err_set(err, e.code ? e.code : RW_BADREQ, "inventory_file: %s", e.msg);
    }
    return RW_OK;
}

static void release_ingest(void *obj)
{
    rw_ingest_config *c = obj;
    rw_inventory_free(c->inventory);
    c->inventory = NULL;
}

const rw_cfg_table rw_ingest_config_table =
    RW_CFG_TABLE("ingest", rw_ingest_config, keys, check_ingest, release_ingest);
