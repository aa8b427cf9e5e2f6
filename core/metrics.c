/* metrics.c - registry of self-metrics (see metrics.h). Registration takes a
 * mutex; updates are C11 atomics (doubles as bit patterns with CAS). The
 * registry is a list in registration order; rendering groups series by name. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct rw_metric {
    struct rw_metric *next;
    int type;
    char *name, *labels, *help;
    _Atomic uint64_t u;    /* counter value, or gauge value as double bits */
    /* histogram */
    size_t nb;
    double *bounds;
    _Atomic uint64_t *counts; /* nb + 1 (last is +Inf) */
    _Atomic uint64_t sum_bits, count;
};

typedef struct collector {
    struct collector *next;
    rw_metrics_collect_fn fn;
    void *ctx;
} collector;

struct rw_metrics {
    pthread_mutex_t mu; /* guards the lists, not the values */
    struct rw_metric *head, *tail;
    collector *collectors, *collectors_tail;
};

const double rw_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t rw_latency_nbuckets = sizeof rw_latency_buckets / sizeof rw_latency_buckets[0];

rw_metrics *rw_metrics_new(void)
{
    rw_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void rw_metrics_free(rw_metrics *m)
{
    if (!m)
        return;
    for (struct rw_metric *x = m->head, *n; x; x = n) {
        n = x->next;
        free(x->name);
        free(x->labels);
        free(x->help);
        free(x->bounds);
        free((void *)x->counts);
        free(x);
    }
    for (collector *c = m->collectors, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Returns the series of this name and labels, registering it when new
 * (*created = 1). Idempotent: a module rebuilt or reconfigured on reload
 * gets its old series back and keeps counting where it was. */
static struct rw_metric *reg(rw_metrics *m, int type, const char *name, const char *labels,
                             const char *help, int *created)
{
    *created = 0;
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->mu);
    struct rw_metric *after = NULL;
    for (struct rw_metric *y = m->head; y; y = y->next) {
        if (strcmp(y->name, name) != 0)
            continue;
        if (y->type == type && !strcmp(y->labels ? y->labels : "", labels ? labels : "")) {
            pthread_mutex_unlock(&m->mu);
            return y;
        }
        after = y; /* keep series of one name adjacent: insert after the last */
    }
    struct rw_metric *x = calloc(1, sizeof *x);
    if (!x) {
        pthread_mutex_unlock(&m->mu);
        return NULL;
    }
    x->type = type;
    x->name = strdup(name);
    x->labels = labels && *labels ? strdup(labels) : NULL;
    x->help = strdup(help ? help : "");
    if (after) {
        x->next = after->next;
        after->next = x;
        if (m->tail == after)
            m->tail = x;
    } else if (m->tail) {
        m->tail->next = x;
        m->tail = x;
    } else {
        m->head = m->tail = x;
    }
    *created = 1;
    pthread_mutex_unlock(&m->mu);
    return x;
}

rw_counter *rw_metrics_counter(rw_metrics *m, const char *name, const char *labels,
                               const char *help)
{
    int created;
    return reg(m, M_COUNTER, name, labels, help, &created);
}

rw_gauge *rw_metrics_gauge(rw_metrics *m, const char *name, const char *labels,
                           const char *help)
{
    int created;
    return reg(m, M_GAUGE, name, labels, help, &created);
}

rw_histogram *rw_metrics_histogram(rw_metrics *m, const char *name, const char *labels,
                                   const char *help, const double *bounds, size_t nbounds)
{
    int created;
    struct rw_metric *x = reg(m, M_HISTOGRAM, name, labels, help, &created);
    if (!x || !created)
        return x;
    x->bounds = malloc(nbounds * sizeof *bounds);
    x->counts = calloc(nbounds + 1, sizeof *x->counts);
    if (x->bounds)
        memcpy(x->bounds, bounds, nbounds * sizeof *bounds);
    x->nb = x->bounds && x->counts ? nbounds : 0;
    return x;
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void atomic_fadd(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void rw_counter_add(rw_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->u, n, memory_order_relaxed);
}

uint64_t rw_counter_get(const rw_counter *c)
{
    return c ? atomic_load_explicit(&((rw_counter *)c)->u, memory_order_relaxed) : 0;
}

void rw_gauge_set(rw_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->u, dbits(v), memory_order_relaxed);
}

void rw_gauge_add(rw_gauge *g, double v)
{
    if (g)
        atomic_fadd(&g->u, v);
}

void rw_histogram_observe(rw_histogram *h, double v)
{
    if (!h || !h->counts)
        return;
    size_t i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fadd(&h->sum_bits, v);
}

void rw_metrics_add_collector(rw_metrics *m, rw_metrics_collect_fn fn, void *ctx)
{
    if (!m)
        return;
    collector *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_lock(&m->mu);
    if (m->collectors_tail)
        m->collectors_tail->next = c;
    else
        m->collectors = c;
    m->collectors_tail = c;
    pthread_mutex_unlock(&m->mu);
}

static void series(rw_buf *out, const char *name, const char *suffix, const char *labels,
                   const char *extra, double v)
{
    char num[48];
    rw_fmt_float_g(v, num);
    rw_buf_printf(out, "%s%s", name, suffix);
    if (labels || extra)
        rw_buf_printf(out, "{%s%s%s}", labels ? labels : "", labels && extra ? "," : "",
                      extra ? extra : "");
    rw_buf_printf(out, " %s\n", num);
}

void rw_metrics_render(rw_metrics *m, rw_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    const char *prev = NULL;
    for (struct rw_metric *x = m->head; x; x = x->next) {
        if (!prev || strcmp(prev, x->name) != 0) {
            rw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help, x->name,
                          types[x->type]);
            prev = x->name;
        }
        uint64_t u = atomic_load_explicit(&x->u, memory_order_relaxed);
        if (x->type == M_COUNTER) {
            series(out, x->name, "", x->labels, NULL, (double)u);
        } else if (x->type == M_GAUGE) {
            series(out, x->name, "", x->labels, NULL, bitsd(u));
        } else {
            uint64_t cum = 0;
            char le[64], num[48];
            for (size_t i = 0; i <= x->nb; i++) {
                cum += atomic_load_explicit(&x->counts[i], memory_order_relaxed);
                if (i < x->nb) {
                    rw_fmt_float_g(x->bounds[i], num);
                    snprintf(le, sizeof le, "le=\"%s\"", num);
                } else {
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                }
                series(out, x->name, "_bucket", x->labels, le, (double)cum);
            }
            series(out, x->name, "_sum", x->labels, NULL,
                   bitsd(atomic_load_explicit(&x->sum_bits, memory_order_relaxed)));
            series(out, x->name, "_count", x->labels, NULL,
                   (double)atomic_load_explicit(&x->count, memory_order_relaxed));
        }
    }
    collector *c = m->collectors;
    pthread_mutex_unlock(&m->mu);
    for (; c; c = c->next)
        c->fn(c->ctx, out);
}
