/* sources.c - per-source ingest health for GET /api/v1/status/sources:
 * what an operator of a fleet looks at first when a dashboard goes blank.
 * A source is a (tenant, cluster) pair; the write path accumulates one
 * request's counts per source (clean_stages.c) and adds them here once per
 * request, so the table's lock is taken a few times per request, not per
 * series.
 *
 * Samples/s over the last minute come from six 10-second buckets of
 * accepted samples keyed by wall-clock time. The table holds at most
 * max_sources entries; requests for further sources are counted as
 * overflow, so a flood of made-up cluster names cannot grow memory. */
#include "clean.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 6
#define BUCKET_MS 10000

typedef struct source {
    char *tenant, *cluster;
    uint64_t hash;
    struct source *next;
    int64_t newest_ms, first_ms, last_ms;
    uint64_t accepted;
    uint64_t reasons[RW_SRC__COUNT];
    uint64_t bucket[NBUCKETS];
    int64_t bucket_id[NBUCKETS];    /* wall-clock 10 s slot each bucket counts */
    unsigned versions;
    int unlisted;
} source;

struct rw_sources {
    pthread_mutex_t mu;
    source **buckets;
    size_t nbuckets, n, max;
    uint64_t overflow;
};

static const char *const reason_names[RW_SRC__COUNT] = {
    [RW_SRC_INVALID] = "invalid_series",
    [RW_SRC_FUTURE] = "too_far_in_future",
    [RW_SRC_OUT_OF_ORDER] = "out_of_order",
    [RW_SRC_DUPLICATE] = "duplicate_timestamp",
    [RW_SRC_TOO_OLD] = "too_old",
    [RW_SRC_STORE_SERIES_LIMIT] = "store_series_limit",
    [RW_SRC_MAX_SERIES] = "max_series",
    [RW_SRC_RATE_LIMITED] = "rate_limited",
    [RW_SRC_HA_DEDUP] = "ha_deduplicated",
    [RW_SRC_RELABEL_DROP] = "relabel_dropped",
    [RW_SRC_RELABEL_INVALID] = "relabel_invalid",
    [RW_SRC_KUBELET] = "kubelet_endpoint_dedup",
};

const char *rw_src_reason_str(rw_src_reason r)
{
    return r < RW_SRC__COUNT ? reason_names[r] : "?";
}

rw_sources *rw_sources_new(size_t max_sources)
{
    rw_sources *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nbuckets = 64;
    if (!(s->buckets = calloc(s->nbuckets, sizeof *s->buckets))) {
        free(s);
        return NULL;
    }
    s->max = max_sources ? max_sources : 10000;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void rw_sources_free(rw_sources *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (source *x = s->buckets[i], *next; x; x = next) {
            next = x->next;
            free(x->tenant);
            free(x->cluster);
            free(x);
        }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void rw_sources_reconfigure(rw_sources *s, size_t max_sources)
{
    pthread_mutex_lock(&s->mu);
    s->max = max_sources ? max_sources : 10000;
    pthread_mutex_unlock(&s->mu);
}

static source *get(rw_sources *s, const char *tenant, const char *cluster)
{
    uint64_t h = rw_in_pair_hash(tenant, cluster);
    for (source *x = s->buckets[h & (s->nbuckets - 1)]; x; x = x->next)
        if (x->hash == h && !strcmp(x->cluster, cluster) && !strcmp(x->tenant, tenant))
            return x;
    if (s->n >= s->max)
        return NULL;
    if (s->n + 1 > s->nbuckets) {
        size_t nb = s->nbuckets * 2;
        source **b = calloc(nb, sizeof *b);
        if (b) {
            for (size_t i = 0; i < s->nbuckets; i++)
                for (source *x = s->buckets[i], *next; x; x = next) {
                    next = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
            free(s->buckets);
            s->buckets = b;
            s->nbuckets = nb;
        }
    }
    source *x = calloc(1, sizeof *x);
    if (!x || !(x->tenant = strdup(tenant)) || !(x->cluster = strdup(cluster))) {
        if (x) {
            free(x->tenant);
            free(x);
        }
        return NULL;
    }
    x->hash = h;
    x->newest_ms = INT64_MIN;
    x->unlisted = -1;
    for (int i = 0; i < NBUCKETS; i++)
        x->bucket_id[i] = -1;
    x->next = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = x;
    s->n++;
    return x;
}

void rw_sources_add(rw_sources *s, const char *tenant, const char *cluster,
                    const rw_source_delta *d, int64_t now_ms)
{
    pthread_mutex_lock(&s->mu);
    source *x = get(s, tenant ? tenant : "", cluster ? cluster : "");
    if (!x) {
        s->overflow++;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (!x->first_ms)
        x->first_ms = now_ms;
    x->last_ms = now_ms;
    if (d->newest_ms > x->newest_ms)
        x->newest_ms = d->newest_ms;
    x->accepted += d->accepted;
    for (int r = 0; r < RW_SRC__COUNT; r++)
        x->reasons[r] += d->reasons[r];
    x->versions |= d->versions;
    if (d->unlisted >= 0)
        x->unlisted = d->unlisted;
    int64_t id = now_ms / BUCKET_MS;
    int b = (int)(id % NBUCKETS);
    if (x->bucket_id[b] != id) {
        x->bucket_id[b] = id;
        x->bucket[b] = 0;
    }
    x->bucket[b] += d->accepted;
    pthread_mutex_unlock(&s->mu);
}

static int cmp_src(const void *a, const void *b)
{
    const source *x = *(source *const *)a, *y = *(source *const *)b;
    int r = strcmp(x->tenant, y->tenant);
    return r ? r : strcmp(x->cluster, y->cluster);
}

void rw_sources_each(rw_sources *s, const char *tenant, const char *cluster, int64_t now_ms,
                     void (*fn)(void *ctx, const rw_source_info *in), void *ctx)
{
    pthread_mutex_lock(&s->mu);
    source **all = malloc((s->n ? s->n : 1) * sizeof *all);
    size_t n = 0;
    for (size_t i = 0; all && i < s->nbuckets; i++)
        for (source *x = s->buckets[i]; x; x = x->next)
            if ((!tenant || !strcmp(tenant, x->tenant)) && (!cluster || !strcmp(cluster, x->cluster)))
                all[n++] = x;
    if (all)
        qsort(all, n, sizeof *all, cmp_src);
    int64_t id = now_ms / BUCKET_MS;
    for (size_t i = 0; i < n; i++) {
        source *x = all[i];
        /* the complete buckets of the last minute plus the current one,
           scaled by the time they cover */
        uint64_t sum = 0;
        for (int b = 0; b < NBUCKETS; b++)
            if (x->bucket_id[b] > id - NBUCKETS && x->bucket_id[b] <= id)
                sum += x->bucket[b];
        double span = (double)((NBUCKETS - 1) * BUCKET_MS + now_ms % BUCKET_MS) / 1000.0;
        if (x->first_ms && now_ms - x->first_ms < span * 1000)
            span = (double)(now_ms - x->first_ms) / 1000.0;
        if (span < 1)
            span = 1;
        rw_source_info in = {x->tenant, x->cluster, x->newest_ms, x->first_ms, x->last_ms,
                             (double)sum / span, x->accepted, x->reasons, x->versions,
                             x->unlisted};
        fn(ctx, &in);
    }
    free(all);
    pthread_mutex_unlock(&s->mu);
}

uint64_t rw_sources_overflow(rw_sources *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t o = s->overflow;
    pthread_mutex_unlock(&s->mu);
    return o;
}

size_t rw_sources_count(rw_sources *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}
