/* metrics.h - rwgate's own metrics (served on GET /metrics in the Prometheus
 * text format). Modules register counters, gauges and histograms once at
 * start-up and update them lock-free on hot paths; values that are cheaper to
 * compute at scrape time (series per shard, database bytes) come from
 * collector callbacks. All update functions accept NULL (no registry, as in
 * unit tests) and do nothing. */
#ifndef RW_METRICS_H
#define RW_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"

typedef struct rw_metrics rw_metrics;
typedef struct rw_metric rw_counter;
typedef struct rw_metric rw_gauge;
typedef struct rw_metric rw_histogram;

rw_metrics *rw_metrics_new(void);
void rw_metrics_free(rw_metrics *m);

/* name: metric name; labels: the inside of {} (e.g. `reason="ooo"`) or NULL.
 * Series of one name share its help text (the first registration's).
 * Registering the same name and labels again returns the same series. */
rw_counter *rw_metrics_counter(rw_metrics *m, const char *name, const char *labels,
                               const char *help);
rw_gauge *rw_metrics_gauge(rw_metrics *m, const char *name, const char *labels,
                           const char *help);
/* bounds: upper bounds ascending, without +Inf */
rw_histogram *rw_metrics_histogram(rw_metrics *m, const char *name, const char *labels,
                                   const char *help, const double *bounds, size_t nbounds);

void rw_counter_add(rw_counter *c, uint64_t n);
uint64_t rw_counter_get(const rw_counter *c);
void rw_gauge_set(rw_gauge *g, double v);
void rw_gauge_add(rw_gauge *g, double v);
void rw_histogram_observe(rw_histogram *h, double v);

/* Writes complete exposition lines (with # HELP / # TYPE) into out. */
typedef void (*rw_metrics_collect_fn)(void *ctx, rw_buf *out);
void rw_metrics_add_collector(rw_metrics *m, rw_metrics_collect_fn fn, void *ctx);

void rw_metrics_render(rw_metrics *m, rw_buf *out);

/* Default latency buckets in seconds (0.5 ms ... 10 s). */
extern const double rw_latency_buckets[];
extern const size_t rw_latency_nbuckets;

#endif
