/* config.h - rwgate's configuration: one struct, one typed table of keys
 * (config.c) that gives each key's type, field, default, bounds and whether a
 * reload may change it. The YAML file is nested maps; a key's name is its
 * dotted path ("ingest.tenant_header"). Unknown keys, wrong types and values
 * out of bounds are errors naming the key and line. Strings become enums,
 * numbers and durations when the file loads, never at run time. */
#ifndef RW_CONFIG_H
#define RW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "buf.h"
#include "labels.h"

#define RW_DEFAULT_LISTEN "127.0.0.1:9201"
#define RW_DEFAULT_DATA "./data"

typedef struct rw_config {
    char *listen;
    char *data_dir;
    int64_t shards;            /* 0 = number of CPUs */
    int64_t retention_ms;
    rw_label *external_labels; /* sorted; owned */
    size_t nexternal;

    /* ingest */
    char *tenant_header;
    char *tenant_label;
    char *default_tenant;
    int64_t max_body_bytes;
    int64_t max_decoded_bytes;
    int64_t max_series_per_request;
    int64_t max_labels_per_series;
    int64_t max_label_name_len;
    int64_t max_label_value_len;
    int64_t max_future_ms;     /* 0 = no limit */
    int64_t max_inflight_bytes;

    /* query */
    int64_t lookback_ms;
    int64_t query_timeout_ms;
    int64_t query_max_samples;
    int64_t subquery_step_ms;
    int64_t remote_read_max_samples;

    /* store */
    int64_t max_series;        /* 0 = unlimited */
    int64_t checkpoint_interval_ms;
    int64_t busy_timeout_ms;
    int64_t max_pending_bytes;
    int64_t checkpoint_bytes;
    int64_t wal_segment_bytes;
    int64_t ooo_window_ms;     /* 0 = out-of-order samples are rejected */

    /* http */
    int64_t max_connections;
} rw_config;

/* Fills every field with its default. */
void rw_config_defaults(rw_config *c);
/* Loads a YAML file on top of the defaults. */
rw_rc rw_config_load_file(rw_config *c, const char *path, rw_err *err);
/* Sets one key from a string, as a flag would ("retention", "15d"). */
rw_rc rw_config_set(rw_config *c, const char *key, const char *value, rw_err *err);
void rw_config_free(rw_config *c);
/* Keys whose value differs between a and b and may not change on reload:
 * returns the first such key, or NULL. */
const char *rw_config_unreloadable_change(const rw_config *a, const rw_config *b);
/* Writes the effective configuration as YAML (for logs and `check config`). */
void rw_config_dump(const rw_config *c, rw_buf *out);

#endif
