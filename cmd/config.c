/* config.c - the root configuration table: where each layer's section sits
 * in the file. The rows of every section live with their layer. */
#include "config.h"

#include <stddef.h>

static const rw_cfg_key global_keys[] = {
    {"external_labels", RW_CFG_LABELS, offsetof(rw_global_config, external_labels), NULL, 0, 0,
     RW_CFG_RELOAD, "labels added to /federate and remote-read output, e.g. {central: eu-1}",
     NULL, NULL},
};

static rw_rc check_global(void *obj, rw_err *err)
{
    const rw_global_config *g = obj;
    for (size_t i = 0; i < g->external_labels.n; i++)
        if (!g->external_labels.v[i].value[0])
            return rw_err_set(err, RW_BADREQ, "external_labels: %s has an empty value",
                              g->external_labels.v[i].name);
    return RW_OK;
}

static const rw_cfg_table global_table =
    RW_CFG_TABLE("global", rw_global_config, global_keys, check_global, NULL);

#define OFF(f) offsetof(rw_config, f)

static const rw_cfg_key keys[] = {
    {"global", RW_CFG_SECTION, OFF(global), NULL, 0, 0, 0, "", &global_table, NULL},
    {"http", RW_CFG_SECTION, OFF(http), NULL, 0, 0, 0, "", &rw_http_config_table, NULL},
    {"store", RW_CFG_SECTION, OFF(store), NULL, 0, 0, 0, "", &rw_store_config_table, NULL},
    {"ingest", RW_CFG_SECTION, OFF(ingest), NULL, 0, 0, 0, "", &rw_ingest_config_table, NULL},
    {"query", RW_CFG_SECTION, OFF(query), NULL, 0, 0, 0, "", &rw_query_config_table, NULL},
};

const rw_cfg_table rw_config_table = RW_CFG_TABLE("config", rw_config, keys, NULL, NULL);
