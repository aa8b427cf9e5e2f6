/* config.c - the rules layer's configuration rows (core/cfg.h): top-level
 * `rule_files` and the rules' keys of the shared `global:` section, with
 * Prometheus' names. Everything here may change on reload. */
#include "rules.h"

#include <stddef.h>

#define DAY (86400.0 * 1000)

static const rw_cfg_key global_keys[] = {
    {"evaluation_interval", RW_CFG_DURATION,
     offsetof(rw_rules_global_config, evaluation_interval_ms), "1m", 1000, 366 * DAY, RW_CFG_RELOAD,
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

/* Prometheus' --rules.alert.* flags */
static const rw_cfg_key rules_keys[] = {
    {"for_outage_tolerance", RW_CFG_DURATION,
     offsetof(rw_rules_section_config, outage_tolerance_ms), "1h", 1000, 366 * DAY, 0,
     "longest outage after which `for` state is restored from ALERTS_FOR_STATE (read at "
     "start: the restore happens then)",
     NULL, NULL},
    {"for_grace_period", RW_CFG_DURATION, offsetof(rw_rules_section_config, for_grace_period_ms),
     "10m", 0, 366 * DAY, 0,
     "least time an alert waits after a restart before firing; alerts with a shorter `for` "
     "are not restored",
     NULL, NULL},
    {"max_concurrent_groups", RW_CFG_INT,
     offsetof(rw_rules_section_config, max_concurrent_groups), "0", 0, 4096, 0,
     "rule groups evaluating at the same time (0 = half the CPUs, at least one); the others "
     "wait their turn, so evaluation bursts leave CPU to ingestion",
     NULL, NULL},
    {"resend_delay", RW_CFG_DURATION, offsetof(rw_rules_section_config, resend_delay_ms), "1m",
     1, 366 * DAY, RW_CFG_RELOAD, "how often a firing or resolved alert is sent again",
     NULL, NULL},
};

const rw_cfg_table rw_rules_section_table =
    RW_CFG_TABLE("rules", rw_rules_section_config, rules_keys, NULL, NULL);
