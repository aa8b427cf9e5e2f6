/* template.h - SHIM (rules branch only; the "notify" helper's real
 * rules/template.h replaces this file on merge, take theirs).
 *
 * Prometheus-style templates for alert labels and annotations: parsed once
 * at rule load (syntax errors with position), executed per alert. */
#ifndef RW_RULES_TEMPLATE_H
#define RW_RULES_TEMPLATE_H

#include <stddef.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/labels.h"
#include "query/promql.h"

typedef struct rw_tmpl rw_tmpl;

typedef struct rw_tmpl_data {
    const rw_label *labels;
    size_t nlabels;
    double value;
    const rw_label *external_labels;
    size_t nexternal;
    const char *external_url;
    rw_rc (*query)(void *ctx, const char *expr, rw_arena *a, rw_result *out, rw_err *err);
    void *query_ctx;
} rw_tmpl_data;

/* NULL + err with position on unsupported syntax */
rw_tmpl *rw_tmpl_parse(const char *name, const char *text, rw_err *err);
rw_rc rw_tmpl_exec(const rw_tmpl *t, const rw_tmpl_data *d, rw_arena *a, char **out, rw_err *err);
void rw_tmpl_free(rw_tmpl *t);

#endif
