/* ingest_config.c - the `ingest:` section of the configuration: the rows that
 * describe rw_ingest_config (ingest.h), with every default of the write
 * path. All of them apply on reload: rw_ingest_reconfigure swaps a settings
 * snapshot that requests take a reference to. */
#include <stddef.h>
#include "core/cfg.h"
#include "ingest.h"

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
     "decoded bytes of write requests being processed at once; 503 + Retry-After above", NULL,
     NULL},
    {"max_series_per_request", RW_CFG_INT, OFF(max_series_per_request), "100000", 1, BIG, R,
     "series per write request", NULL, NULL},
    {"max_labels_per_series", RW_CFG_INT, OFF(max_labels_per_series), "128", 1, RW_LABELS_MAX, R,
     "labels per series", NULL, NULL},
    {"max_label_name_length", RW_CFG_INT, OFF(max_label_name_len), "1024", 1, 1 << 20, R,
     "bytes per label name", NULL, NULL},
    {"max_label_value_length", RW_CFG_INT, OFF(max_label_value_len), "4096", 1, 1 << 24, R,
     "bytes per label value", NULL, NULL},
};

const rw_cfg_table rw_ingest_config_table =
    RW_CFG_TABLE("ingest", rw_ingest_config, keys, NULL, NULL);
