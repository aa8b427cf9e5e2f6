/* notify.h - SHIM (rules branch only; the "notify" helper's real
 * rules/notify.h, with the notifier and its `alerting:` configuration,
 * replaces this file on merge, take theirs).
 *
 * Only the message type the rule engine hands to the notifier is declared
 * here; the engine calls the notifier through a callback (rw_rules_opts), so
 * it builds and is tested without the notifier. */
#ifndef RW_RULES_NOTIFY_H
#define RW_RULES_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "core/labels.h"

typedef struct rw_alert_msg {
    const rw_label *labels;
    size_t nlabels;
    const rw_label *annotations;
    size_t nannotations;
    int64_t starts_at_ms, ends_at_ms;
    const char *generator_url;
} rw_alert_msg;

#endif
