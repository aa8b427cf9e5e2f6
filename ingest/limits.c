/* limits.c - per-tenant ingestion limits on the write path (see clean.h):
 * a token bucket per tenant for the ingestion rate, and the set of the
 * tenant's active series for max_series. Both are state kept across
 * reloads; the settings (rate, burst, limit, window) come with every call
 * from the request's settings snapshot, so a reload applies at once.
 *
 * Active series are tracked as 64-bit label-set hashes (the hash the sink
 * computes anyway) with the minute they were last written, in an open-
 * addressing table per tenant: 12 bytes a series. Entries older than the
 * window are swept out when the table is rebuilt, at most once a minute
 * per tenant or when it fills up. A hash collision between two series can
 * only let one extra series through; it never rejects a known one. */
#include "clean.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint64_t hash; /* 0 = empty (hashes are stored with the low bit set) */
    uint32_t minute;
} __attribute__((packed)) slot;

struct rw_limits_tenant {
    char *name;
    struct rw_limits_tenant *next;
    pthread_mutex_t mu;          /* guards everything below */
    double tokens;
    int64_t refill_ms;
    slot *slots;
    size_t cap, n;               /* power-of-two capacity; entries in use */
    uint32_t now_min, window_min, swept_min;
};

struct rw_limits {
    pthread_mutex_t mu;          /* guards the tenant table */
    rw_limits_tenant **buckets;
    size_t nbuckets, n;
    rw_limits_tenant *overflow;  /* shared by tenants beyond RW_LIMITS_MAX_TENANTS */
};

static rw_limits_tenant *tenant_new(const char *name)
{
    rw_limits_tenant *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->tokens = -1; /* full on first use */
    return t;
}

static void tenant_free(rw_limits_tenant *t)
{
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t->name);
    free(t);
}

rw_limits *rw_limits_new(rw_metrics *m)
{
    (void)m;
    rw_limits *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->nbuckets = 64;
    l->buckets = calloc(l->nbuckets, sizeof *l->buckets);
    l->overflow = tenant_new("(overflow)");
    if (!l->buckets || !l->overflow) {
        rw_limits_free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void rw_limits_free(rw_limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; l->buckets && i < l->nbuckets; i++)
        for (rw_limits_tenant *t = l->buckets[i], *next; t; t = next) {
            next = t->next;
            tenant_free(t);
        }
    if (l->overflow)
        tenant_free(l->overflow);
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static rw_limits_tenant *find(rw_limits *l, const char *tenant, uint64_t h)
{
    for (rw_limits_tenant *t = l->buckets[h & (l->nbuckets - 1)]; t; t = t->next)
        if (!strcmp(t->name, tenant))
            return t;
    return NULL;
}

rw_limits_tenant *rw_limits_tenant_get(rw_limits *l, const char *tenant)
{
    if (!tenant)
        tenant = "";
    uint64_t h = rw_in_pair_hash(tenant, "");
    pthread_mutex_lock(&l->mu);
    rw_limits_tenant *t = find(l, tenant, h);
    if (!t && l->n < RW_LIMITS_MAX_TENANTS) {
        if (l->n + 1 > l->nbuckets) {
            size_t nb = l->nbuckets * 2;
            rw_limits_tenant **b = calloc(nb, sizeof *b);
            if (b) {
                for (size_t i = 0; i < l->nbuckets; i++)
                    for (rw_limits_tenant *x = l->buckets[i], *next; x; x = next) {
                        next = x->next;
                        uint64_t xh = rw_in_pair_hash(x->name, "") & (nb - 1);
                        x->next = b[xh];
                        b[xh] = x;
                    }
                free(l->buckets);
                l->buckets = b;
                l->nbuckets = nb;
            }
        }
        if ((t = tenant_new(tenant))) {
            t->next = l->buckets[h & (l->nbuckets - 1)];
            l->buckets[h & (l->nbuckets - 1)] = t;
            l->n++;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return t ? t : l->overflow;
}

int rw_limits_take(rw_limits_tenant *t, double rate, int64_t burst, uint64_t n, int64_t now_ms)
{
    if (rate <= 0)
        return 0;
    double cap = burst > 0 ? (double)burst : rate;
    pthread_mutex_lock(&t->mu);
    if (t->tokens < 0 && t->refill_ms == 0) {
        t->tokens = cap;
    } else if (now_ms > t->refill_ms) {
        t->tokens += rate * (double)(now_ms - t->refill_ms) / 1000.0;
        if (t->tokens > cap)
            t->tokens = cap;
    }
    t->refill_ms = now_ms;
    /* a request larger than the bucket passes when the bucket is full and
       leaves it in debt, so big requests are slowed, never starved */
    double need = (double)n < cap ? (double)n : cap;
    int wait = 0;
    if (t->tokens >= need) {
        t->tokens -= (double)n;
    } else {
        double s = (need - t->tokens) / rate;
        wait = s < 1 ? 1 : (int)ceil(s);
        if (wait > 3600)
            wait = 3600;
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

/* ---- active series ---- */

static int rebuild(rw_limits_tenant *t, size_t cap)
{
    slot *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    size_t n = 0;
    uint32_t oldest = t->now_min >= t->window_min ? t->now_min - t->window_min : 0;
    for (size_t i = 0; i < t->cap; i++) {
        slot *s = &t->slots[i];
        if (!s->hash || s->minute < oldest)
            continue;
        size_t j = (size_t)(s->hash >> 7) & (cap - 1);
        while (ns[j].hash)
            j = (j + 1) & (cap - 1);
        ns[j] = *s;
        n++;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = cap;
    t->n = n;
    t->swept_min = t->now_min;
    return 0;
}

void rw_limits_series_lock(rw_limits_tenant *t, int64_t now_ms, int64_t window_ms)
{
    pthread_mutex_lock(&t->mu);
    t->now_min = (uint32_t)(now_ms / 60000);
    t->window_min = (uint32_t)((window_ms + 59999) / 60000);
    if (t->cap && t->now_min != t->swept_min)
        rebuild(t, t->cap); /* drop what went idle; once a minute at most */
}

void rw_limits_series_unlock(rw_limits_tenant *t)
{
    pthread_mutex_unlock(&t->mu);
}

int rw_limits_series_admit(rw_limits_tenant *t, uint64_t hash, int64_t max_series)
{
    hash |= 1;
    if (t->cap) {
        size_t j = (size_t)(hash >> 7) & (t->cap - 1);
        while (t->slots[j].hash) {
            if (t->slots[j].hash == hash) {
                t->slots[j].minute = t->now_min;
                return 1;
            }
            j = (j + 1) & (t->cap - 1);
        }
    }
    if (max_series > 0 && t->n >= (uint64_t)max_series)
        return 0;
    if ((t->n + 1) * 4 > t->cap * 3) { /* keep the load under 3/4 */
        size_t nc = t->cap ? t->cap : 1024;
        if ((t->n + 1) * 2 > nc)
            nc *= 2;
        if (rebuild(t, nc) < 0)
            return 1; /* no memory: admit untracked rather than reject */
    }
    size_t j = (size_t)(hash >> 7) & (t->cap - 1);
    while (t->slots[j].hash)
        j = (j + 1) & (t->cap - 1);
    t->slots[j].hash = hash;
    t->slots[j].minute = t->now_min;
    t->n++;
    return 1;
}

uint64_t rw_limits_active(rw_limits *l, const char *tenant)
{
    if (!tenant)
        tenant = "";
    pthread_mutex_lock(&l->mu);
    rw_limits_tenant *t = find(l, tenant, rw_in_pair_hash(tenant, ""));
    pthread_mutex_unlock(&l->mu);
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    uint64_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
