/* config.c - the rules layer's configuration rows (core/cfg.h): top-level
 * `rule_files` and the rules' keys of the shared `global:` section, with
 * Prometheus' names. Everything here may change on reload. */
#include "rules.h"

#include <stddef.h>

static const rw_cfg_key global_keys[] = {
    {"evaluation_interval", RW_CFG_DURATION,
     offsetof(rw_rules_global_config, evaluation_interval_ms), "1m", 1000, 366.0 * 86400 * 1000, RW_CFG_RELOAD,
     "how often rule groups without their own interval are evaluated", NULL, NULL},
    {"rule_query_offset", RW_CFG_DURATION, offsetof(rw_rules_global_config, rule_query_offset_ms),
     "1m", 0, 0, RW_CFG_RELOAD,
     "rules evaluate at now minus this offset (groups may set query_offset), so late "
     "remote-write data is in before a rule reads it",
     NULL, NULL},
    {"external_url", RW_CFG_STRING, offsetof(rw_rules_global_config, external_url), "",
     0, 0, RW_CFG_RELOAD,
     "URL rwgate is reached at, for alert generator links and $externalURL in templates "
     "(empty: http://<listen address>)",
     NULL, NULL},
};

const rw_cfg_table rw_rules_global_table =
    RW_CFG_TABLE("global", rw_rules_global_config, global_keys, NULL, NULL);
