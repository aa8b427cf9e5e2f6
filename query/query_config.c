/* query_config.c - the `query:` section of the configuration: the rows that
 * describe rw_query_config (api.h) and hold every default of the read side
 * (lookback, timeout, sample limits). The engine and the API take a zero
 * field's default from here. None reloads yet: the engine is immutable and
 * shared by every request thread. */
#include <stddef.h>
#include "core/cfg.h"
#include "query/api.h"

#define OFF(f) offsetof(rw_query_config, f)
#define BIG 9.2e18

static const rw_cfg_key keys[] = {
    {"lookback_delta", RW_CFG_DURATION, OFF(lookback_ms), "5m", 1, BIG, 0,
     "how far back an instant vector selector looks", NULL, NULL},
    {"timeout", RW_CFG_DURATION, OFF(timeout_ms), "2m", 1, BIG, 0, "query timeout", NULL, NULL},
    {"max_samples", RW_CFG_INT, OFF(max_samples), "50000000", 1, BIG, 0,
     "samples a query may load at once", NULL, NULL},
    {"default_subquery_step", RW_CFG_DURATION, OFF(default_subquery_step_ms), "1m", 1, BIG, 0,
     "step of subqueries written without one", NULL, NULL},
    {"remote_read_max_samples", RW_CFG_INT, OFF(remote_read_max_samples), "50000000", 1, BIG, 0,
     "samples one remote-read request may return", NULL, NULL},
};

const rw_cfg_table rw_query_config_table =
    RW_CFG_TABLE("query", rw_query_config, keys, NULL, NULL);

rw_engine_opts rw_query_engine_opts(const rw_query_config *c)
{
    rw_engine_opts o = {
        .lookback_ms = c->lookback_ms,
        .default_subquery_step_ms = c->default_subquery_step_ms,
        .max_samples = (size_t)c->max_samples,
        .timeout_ms = c->timeout_ms,
    };
    return o;
}
