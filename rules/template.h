/* template.h - alert label and annotation templates: the part of Go's
 * text/template language, with Prometheus' template functions, that rule
 * files use in practice.
 *
 * Supported: text with {{ actions }}, trim markers {{- -}}, comments
 * (slash-star ... star-slash right inside the delimiters), pipelines `a | b`, parenthesised pipelines, variables
 * ($x := ..., $x = ...), fields on the data (.Labels.x, .Value,
 * .ExternalLabels.x, .ExternalURL) and on variables ($labels.x), the
 * predefined $labels, $value, $externalLabels, $externalURL (as Prometheus
 * prepends them), if / else if / else / end, range (with else, break,
 * continue, `$i, $e :=`), with (and else with), the built-ins and, or, not,
 * len, index, slice, print, printf, println, html, js, urlquery, eq, ne, lt,
 * le, gt, ge, and Prometheus' query, first, label, value, strvalue, args,
 * sortByLabel, humanize, humanize1024, humanizeDuration, humanizePercentage,
 * humanizeTimestamp, printf, title, toUpper, toLower, reReplaceAll, match,
 * safeHtml, stripPort, stripDomain, graphLink, tableLink, pathPrefix,
 * externalURL, parseDuration, urlQueryEscape. Output follows Go's fmt rules
 * (%s %d %f %.2f %v %q %x %e %g %t ...) and Prometheus' humanize* exactly.
 *
 * Not supported, and refused at parse time with a clear message and the
 * position: define / template / block, call, toTime, toDuration, now,
 * complex numbers. An unknown function or undefined variable is a parse
 * error, as in Go.
 *
 * Execution errors carry Go's message shape ("error executing template N:
 * template: N:1:115: executing \"N\" at <gt $value 10>: error calling gt:
 * incompatible types for comparison"), with columns on line 1 counted as
 * Prometheus counts them (after its 112 bytes of variable definitions), so
 * a caller that writes "<error expanding template: %s>" gets Prometheus'
 * annotation text. Execution is bounded: output size, range iterations,
 * queries and bytes built per execution are capped (see below).
 *
 * A parsed template is immutable; several threads may execute it at once. */
#ifndef RW_TEMPLATE_H
#define RW_TEMPLATE_H

#include <stddef.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/labels.h"
#include "query/promql.h"

/* Execution limits. */
#define RW_TMPL_MAX_OUTPUT (1u << 20)      /* bytes of output */
#define RW_TMPL_MAX_ITER 100000            /* range iterations in total */
#define RW_TMPL_MAX_QUERIES 100            /* query calls */
#define RW_TMPL_MAX_WORK (32u << 20)       /* bytes of strings built */

typedef struct rw_tmpl rw_tmpl;

typedef struct rw_tmpl_data {
    const rw_label *labels; /* $labels / .Labels: the alert's labels */
    size_t nlabels;
    double value;           /* $value / .Value */
    const rw_label *external_labels;
    size_t nexternal;
    const char *external_url; /* NULL: "" */
    /* `query` in templates: evaluates expr at the alert's evaluation time.
     * The result must be a vector or a scalar; NULL makes `query` fail. */
    rw_rc (*query)(void *ctx, const char *expr, rw_arena *a, rw_result *out, rw_err *err);
    void *query_ctx;
} rw_tmpl_data;

/* Parses text. NULL with err set (RW_BADREQ, err->pos = byte offset, message
 * "template: NAME:LINE:COL: ...") when the text is not a valid template or
 * uses something unsupported. name is used in messages (Prometheus uses
 * "__alert_" + the alert name). */
rw_tmpl *rw_tmpl_parse(const char *name, const char *text, rw_err *err);

/* Executes t over d. On RW_OK *out is the NUL-terminated output, allocated
 * in a. On failure err holds the message (RW_EXEC for template errors,
 * RW_LIMIT for a limit, the query's code for a failed query) and *out is
 * NULL. */
rw_rc rw_tmpl_exec(const rw_tmpl *t, const rw_tmpl_data *d, rw_arena *a, char **out,
                   rw_err *err);

/* The name given at parse; "" for NULL. */
const char *rw_tmpl_name(const rw_tmpl *t);

void rw_tmpl_free(rw_tmpl *t);

#endif
