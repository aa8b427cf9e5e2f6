/* config.h - rwgate's whole configuration: one struct with a section per
 * layer, and the root table (config.c) that composes the layers' own tables
 * (http, store, ingest, query, ...). Each layer owns its rows and defaults;
 * this file only says where each section sits. The file format follows
 * Prometheus where Prometheus has the key (global.external_labels, ...). */
#ifndef RW_CMD_CONFIG_H
#define RW_CMD_CONFIG_H

#include "core/cfg.h"
#include "core/http.h"
#include "ingest/ingest.h"
#include "query/api.h"
#include "store/store.h"

/* `global:` keys that several layers read; owned by the process. */
typedef struct rw_global_config {
    rw_cfg_labels external_labels; /* added to /federate, remote-read and alerts */
} rw_global_config;

typedef struct rw_config {
    rw_global_config global;
    rw_http_config http;
    rw_store_opts store;
    rw_ingest_config ingest;
    rw_query_config query;
} rw_config;

extern const rw_cfg_table rw_config_table;

#endif
