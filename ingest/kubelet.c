/* kubelet.c - the node tables of the write path's kubelet-endpoint dedup
 * stage (see clean.h for the rule). The stage feeds every kube-state-metrics
 * node series and every kubelet_node_name series of a request into
 * rw_kubelet_observe, then asks rw_kubelet_decide about each kubelet series.
 *
 * Per (tenant, cluster) a kcluster holds its nodes (hash-indexed by name)
 * and what each kubelet says its node name is, per instance IP. Decisions
 * read a derived table - per endpoint IP, its claimants and the owner with
 * the reason the others lost - rebuilt only when the node table changed
 * since the last decision (a version counter), so a kubelet series costs a
 * binary search. Observations take the write lock, decisions the read lock;
 * the rebuild takes the write lock once per change.
 *
 * Time is sample time: a node missing from the cluster's KSM data for
 * node_ttl (against the newest KSM sample of the cluster) is forgotten, so
 * a deleted Node stops claiming its IP; nodes listed by the Kubernetes API
 * (kube_api.c) live as long as the API lists them. */
#include "clean.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"

typedef struct knode {
    char *name;
    /* from kube-state-metrics on the write path */
    rw_node_ready ksm_ready;
    int64_t ready_t;          /* sample time of ksm_ready */
    char *info_ip;            /* kube_node_info{internal_ip} */
    char *addr_int, *addr_ext;/* kube_node_status_addresses */
    int64_t created_ms;       /* kube_node_created */
    int64_t seen_t;           /* newest KSM sample about the node */
    /* from the Kubernetes API */
    int in_api;
    rw_node_ready api_ready;
    char *api_int, *api_ext;
    int64_t heartbeat_ms;
} knode;

typedef struct kname {        /* kubelet_node_name: the kubelet at ip says it is node */
    char *ip, *node;
    int64_t t;
} kname;

typedef struct kip {          /* derived: one endpoint IP */
    const char *ip;           /* points into a node */
    uint32_t *claim;          /* node indexes; claim[0] is the owner */
    uint32_t nclaim;
    uint8_t rule;             /* how the owner won (R_*) */
} kip;

enum { R_ONLY, R_READY_KNOWN, R_KUBELET_NAME, R_RECENT };

typedef struct kcluster {
    char *tenant, *cluster;
    uint64_t hash;
    struct kcluster *next;
    knode *nodes;
    size_t nnodes, capnodes;
    uint32_t *idx;            /* open addressing over node names: index + 1 */
    size_t nidx;
    kname *names;
    size_t nnames, capnames;
    int64_t newest_t;         /* newest KSM sample of the cluster */
    int64_t expire_t;         /* newest_t when expiry was last forced */
    int has_api;
    uint64_t version, derived_version;
    kip *ips;                 /* sorted by ip */
    size_t nips;
    uint32_t *claims;         /* storage of every kip's claim list */
    uint64_t dropped_reuse, dropped_strict, samples_dropped;
} kcluster;

struct rw_kubelet {
    pthread_rwlock_t lock;
    kcluster **buckets;
    size_t nbuckets, nclusters, total_nodes, total_names;
    rw_kubelet_mode mode;
    int64_t ttl_ms;
    size_t max_nodes;
    uint64_t untracked;       /* node observations ignored: max_nodes reached */
};

/* ---- small helpers ---- */

static int set_str(char **dst, const char *s)
{
    if ((*dst == NULL && s == NULL) || (*dst && s && !strcmp(*dst, s)))
        return 0;
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        return 0;
    free(*dst);
    *dst = d;
    return 1; /* changed */
}

/* "10.0.0.1:10250" -> "10.0.0.1", "[fd00::1]:10250" -> "fd00::1" */
static size_t host_of(const char *instance, const char **start)
{
    const char *s = instance;
    if (*s == '[') {
        const char *e = strchr(s, ']');
        *start = s + 1;
        return e ? (size_t)(e - s - 1) : strlen(s + 1);
    }
    *start = s;
    const char *c = strchr(s, ':');
    if (c && !strchr(c + 1, ':'))
        return (size_t)(c - s);
    return strlen(s); /* no port, or a bare IPv6 address */
}

static void node_clear(knode *n)
{
    free(n->name);
    free(n->info_ip);
    free(n->addr_int);
    free(n->addr_ext);
    free(n->api_int);
    free(n->api_ext);
}

static void cluster_free(kcluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        node_clear(&c->nodes[i]);
    for (size_t i = 0; i < c->nnames; i++) {
        free(c->names[i].ip);
        free(c->names[i].node);
    }
    free(c->nodes);
    free(c->idx);
    free(c->names);
    free(c->ips);
    free(c->claims);
    free(c->tenant);
    free(c->cluster);
    free(c);
}

static kcluster *cluster_find(rw_kubelet *k, const char *tenant, const char *cluster, int create)
{
    uint64_t h = rw_in_pair_hash(tenant, cluster);
    for (kcluster *c = k->buckets[h & (k->nbuckets - 1)]; c; c = c->next)
        if (c->hash == h && !strcmp(c->cluster, cluster) && !strcmp(c->tenant, tenant))
            return c;
    if (!create)
        return NULL;
    if (k->nclusters + 1 > k->nbuckets) {
        size_t nb = k->nbuckets * 2;
        kcluster **b = calloc(nb, sizeof *b);
        if (!b)
            return NULL;
        for (size_t i = 0; i < k->nbuckets; i++)
            for (kcluster *c = k->buckets[i], *next; c; c = next) {
                next = c->next;
                c->next = b[c->hash & (nb - 1)];
                b[c->hash & (nb - 1)] = c;
            }
        free(k->buckets);
        k->buckets = b;
        k->nbuckets = nb;
    }
    kcluster *c = calloc(1, sizeof *c);
    if (!c || !(c->tenant = strdup(tenant)) || !(c->cluster = strdup(cluster))) {
        if (c)
            cluster_free(c);
        return NULL;
    }
    c->hash = h;
    c->newest_t = c->expire_t = INT64_MIN;
    c->version = 1;
    c->next = k->buckets[h & (k->nbuckets - 1)];
    k->buckets[h & (k->nbuckets - 1)] = c;
    k->nclusters++;
    return c;
}

static uint64_t str_hash(const char *s)
{
    return rw_in_pair_hash(s, "");
}

static void reindex(kcluster *c)
{
    size_t want = 16;
    while (want < 2 * c->nnodes + 2)
        want *= 2;
    if (want != c->nidx) {
        uint32_t *ni = calloc(want, sizeof *ni);
        if (!ni)
            return; /* keep the old (still correct, only fuller) index */
        free(c->idx);
        c->idx = ni;
        c->nidx = want;
    } else {
        memset(c->idx, 0, c->nidx * sizeof *c->idx);
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        size_t s = str_hash(c->nodes[i].name) & (c->nidx - 1);
        while (c->idx[s])
            s = (s + 1) & (c->nidx - 1);
        c->idx[s] = (uint32_t)i + 1;
    }
}

static long node_find(const kcluster *c, const char *name)
{
    if (!c->nidx)
        return -1;
    size_t s = str_hash(name) & (c->nidx - 1);
    while (c->idx[s]) {
        if (!strcmp(c->nodes[c->idx[s] - 1].name, name))
            return (long)c->idx[s] - 1;
        s = (s + 1) & (c->nidx - 1);
    }
    return -1;
}

static knode *node_get(rw_kubelet *k, kcluster *c, const char *name)
{
    long i = node_find(c, name);
    if (i >= 0)
        return &c->nodes[i];
    if (k->total_nodes >= k->max_nodes) {
        k->untracked++;
        return NULL;
    }
    if (c->nnodes == c->capnodes) {
        size_t nc = c->capnodes ? c->capnodes * 2 : 16;
        knode *nn = realloc(c->nodes, nc * sizeof *nn);
        if (!nn)
            return NULL;
        c->nodes = nn;
        c->capnodes = nc;
    }
    knode *n = &c->nodes[c->nnodes];
    memset(n, 0, sizeof *n);
    if (!(n->name = strdup(name)))
        return NULL;
    n->ready_t = n->seen_t = INT64_MIN;
    c->nnodes++;
    k->total_nodes++;
    if (2 * c->nnodes + 2 > c->nidx)
        reindex(c);
    else {
        size_t s = str_hash(name) & (c->nidx - 1);
        while (c->idx[s])
            s = (s + 1) & (c->nidx - 1);
        c->idx[s] = (uint32_t)c->nnodes;
    }
    c->version++;
    return n;
}

/* ---- effective node properties ---- */

static rw_node_ready node_ready(const knode *n)
{
    return n->in_api ? n->api_ready : n->ksm_ready;
}

static const char *node_ip(const knode *n)
{
    if (n->in_api && (n->api_int || n->api_ext))
        return n->api_int ? n->api_int : n->api_ext;
    if (n->info_ip)
        return n->info_ip;
    return n->addr_int ? n->addr_int : n->addr_ext;
}

static int64_t node_updated(const knode *n)
{
    return n->heartbeat_ms > n->created_ms ? n->heartbeat_ms : n->created_ms;
}

static const char *ready_str(rw_node_ready r)
{
    switch (r) {
    case RW_NODE_READY_TRUE: return "true";
    case RW_NODE_READY_FALSE: return "false";
    case RW_NODE_READY_UNKNOWN: return "unknown";
    default: return "missing";
    }
}

static int ready_known(rw_node_ready r)
{
    return r == RW_NODE_READY_TRUE || r == RW_NODE_READY_FALSE;
}

/* ---- learning ---- */

int rw_kubelet_is_source(const rw_label *l, size_t n)
{
    const char *m = rw_labels_get(l, n, RW_METRIC_NAME);
    if (!m)
        return 0;
    if (m[0] == 'k' && m[1] == 'u' && m[2] == 'b' && m[3] == 'e')
        return !strcmp(m, "kube_node_status_condition") || !strcmp(m, "kube_node_info") ||
               !strcmp(m, "kube_node_status_addresses") || !strcmp(m, "kube_node_created") ||
               !strcmp(m, "kubelet_node_name");
    return 0;
}

/* the newest sample with value 1 (not a stale marker), or NULL */
static const rw_sample *newest_one(const rw_sample *s, size_t ns)
{
    for (size_t i = ns; i-- > 0;)
        if (s[i].v == 1.0)
            return &s[i];
    return NULL;
}

static const rw_sample *newest_real(const rw_sample *s, size_t ns)
{
    for (size_t i = ns; i-- > 0;)
        if (!rw_is_stale_nan(s[i].v))
            return &s[i];
    return NULL;
}

static void observe_locked(rw_kubelet *k, kcluster *c, const rw_label *l, size_t n,
                           const rw_sample *s, size_t ns)
{
    const char *m = rw_labels_get(l, n, RW_METRIC_NAME);
    const char *node = rw_labels_get(l, n, "node");
    const rw_sample *last = newest_real(s, ns);
    if (!m || !node || !*node || !last)
        return;
    if (!strcmp(m, "kubelet_node_name")) {
        const char *inst = rw_labels_get(l, n, "instance"), *h;
        if (!inst)
            return;
        size_t hl = host_of(inst, &h);
        for (size_t i = 0; i < c->nnames; i++)
            if (strlen(c->names[i].ip) == hl && !memcmp(c->names[i].ip, h, hl)) {
                if (last->t >= c->names[i].t) {
                    c->names[i].t = last->t;
                    if (set_str(&c->names[i].node, node))
                        c->version++;
                }
                return;
            }
        if (k->total_names >= 2 * k->max_nodes) {
            k->untracked++;
            return;
        }
        if (c->nnames == c->capnames) {
            size_t nc = c->capnames ? c->capnames * 2 : 16;
            kname *nn = realloc(c->names, nc * sizeof *nn);
            if (!nn)
                return;
            c->names = nn;
            c->capnames = nc;
        }
        kname *kn = &c->names[c->nnames];
        kn->ip = strndup(h, hl);
        kn->node = strdup(node);
        kn->t = last->t;
        if (!kn->ip || !kn->node) {
            free(kn->ip);
            free(kn->node);
            return;
        }
        c->nnames++;
        k->total_names++;
        c->version++;
        return;
    }
    knode *nd = node_get(k, c, node);
    if (!nd)
        return;
    if (last->t > c->newest_t) {
        c->newest_t = last->t;
        /* time moved on: let the next decision re-derive, expiring nodes
           that stopped being reported */
        if (c->expire_t == INT64_MIN || c->newest_t - c->expire_t > k->ttl_ms / 4) {
            c->expire_t = c->newest_t;
            c->version++;
        }
    }
    if (last->t > nd->seen_t)
        nd->seen_t = last->t;
    if (!strcmp(m, "kube_node_status_condition")) {
        const char *cond = rw_labels_get(l, n, "condition");
        const char *st = rw_labels_get(l, n, "status");
        const rw_sample *one = newest_one(s, ns);
        if (!cond || strcmp(cond, "Ready") || !st || !one || one->t < nd->ready_t)
            return;
        rw_node_ready r = !strcmp(st, "true")    ? RW_NODE_READY_TRUE
                          : !strcmp(st, "false") ? RW_NODE_READY_FALSE
                          : !strcmp(st, "unknown") ? RW_NODE_READY_UNKNOWN
                                                   : RW_NODE_READY_MISSING;
        if (r == RW_NODE_READY_MISSING)
            return;
        nd->ready_t = one->t;
        if (nd->ksm_ready != r) {
            nd->ksm_ready = r;
            c->version++;
        }
    } else if (!strcmp(m, "kube_node_info")) {
        const char *ip = rw_labels_get(l, n, "internal_ip");
        if (set_str(&nd->info_ip, ip && *ip ? ip : NULL))
            c->version++;
    } else if (!strcmp(m, "kube_node_status_addresses")) {
        const char *type = rw_labels_get(l, n, "type");
        const char *addr = rw_labels_get(l, n, "address");
        if (!type || !addr || !newest_one(s, ns))
            return;
        if (!strcmp(type, "InternalIP") && set_str(&nd->addr_int, addr))
            c->version++;
        else if (!strcmp(type, "ExternalIP") && set_str(&nd->addr_ext, addr))
            c->version++;
    } else if (!strcmp(m, "kube_node_created")) {
        int64_t ms = (int64_t)(last->v * 1000.0);
        if (ms != nd->created_ms) {
            nd->created_ms = ms;
            c->version++;
        }
    }
}

void rw_kubelet_observe(rw_kubelet *k, const char *tenant, const char *cluster, const rw_label *l,
                        size_t n, const rw_sample *s, size_t ns)
{
    pthread_rwlock_wrlock(&k->lock);
    kcluster *c = cluster_find(k, tenant ? tenant : "", cluster ? cluster : "", 1);
    if (c)
        observe_locked(k, c, l, n, s, ns);
    pthread_rwlock_unlock(&k->lock);
}

void rw_kubelet_set_api_nodes(rw_kubelet *k, const char *tenant, const char *cluster,
                              const rw_kubelet_api_node *nodes, size_t n)
{
    pthread_rwlock_wrlock(&k->lock);
    kcluster *c = cluster_find(k, tenant ? tenant : "", cluster ? cluster : "", 1);
    if (!c) {
        pthread_rwlock_unlock(&k->lock);
        return;
    }
    c->has_api = 1;
    for (size_t i = 0; i < c->nnodes; i++)
        c->nodes[i].in_api = 0;
    for (size_t i = 0; i < n; i++) {
        knode *nd = node_get(k, c, nodes[i].name);
        if (!nd)
            continue;
        nd->in_api = 1;
        nd->api_ready = nodes[i].ready;
        set_str(&nd->api_int, nodes[i].internal_ip && *nodes[i].internal_ip ? nodes[i].internal_ip
                                                                            : NULL);
        set_str(&nd->api_ext, nodes[i].external_ip && *nodes[i].external_ip ? nodes[i].external_ip
                                                                            : NULL);
        nd->heartbeat_ms = nodes[i].heartbeat_ms;
        if (nodes[i].created_ms)
            nd->created_ms = nodes[i].created_ms;
    }
    c->version++;
    pthread_rwlock_unlock(&k->lock);
}

/* ---- the derived endpoint table ---- */

static int cmp_kip(const void *a, const void *b)
{
    return strcmp(((const kip *)a)->ip, ((const kip *)b)->ip);
}

static const char *kubelet_name_at(const kcluster *c, const char *ip)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (!strcmp(c->names[i].ip, ip))
            return c->names[i].node;
    return NULL;
}

/* Orders ip's claimants so that the owner comes first; sets the rule. */
static void choose_owner(const kcluster *c, kip *e)
{
    e->rule = R_ONLY;
    if (e->nclaim < 2)
        return;
    /* 1. a known Ready condition (true or false) beats unknown / missing */
    uint32_t nk = 0;
    for (uint32_t i = 0; i < e->nclaim; i++)
        if (ready_known(node_ready(&c->nodes[e->claim[i]]))) {
            uint32_t t = e->claim[nk];
            e->claim[nk++] = e->claim[i];
            e->claim[i] = t;
        }
    uint32_t ncand = nk ? nk : e->nclaim;
    if (nk == 1) {
        e->rule = R_READY_KNOWN;
        return;
    }
    /* 2. the node the kubelet at this IP says it is */
    const char *kn = kubelet_name_at(c, e->ip);
    for (uint32_t i = 0; kn && i < ncand; i++)
        if (!strcmp(c->nodes[e->claim[i]].name, kn)) {
            uint32_t t = e->claim[0];
            e->claim[0] = e->claim[i];
            e->claim[i] = t;
            e->rule = R_KUBELET_NAME;
            return;
        }
    /* 3. the most recently created / heartbeating; the name breaks ties so
       the choice is stable */
    uint32_t best = 0;
    for (uint32_t i = 1; i < ncand; i++) {
        const knode *a = &c->nodes[e->claim[i]], *b = &c->nodes[e->claim[best]];
        int64_t ua = node_updated(a), ub = node_updated(b);
        if (ua > ub || (ua == ub && strcmp(a->name, b->name) < 0))
            best = i;
    }
    uint32_t t = e->claim[0];
    e->claim[0] = e->claim[best];
    e->claim[best] = t;
    e->rule = R_RECENT;
}

static void expire(rw_kubelet *k, kcluster *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->nnodes; i++) {
        knode *n = &c->nodes[i];
        int stale = !n->in_api && (c->has_api ? 1 : 0) && n->seen_t == INT64_MIN;
        if (!n->in_api && n->seen_t != INT64_MIN && c->newest_t != INT64_MIN &&
            c->newest_t - n->seen_t > k->ttl_ms)
            stale = 1;
        if (stale) {
            node_clear(n);
            k->total_nodes--;
            continue;
        }
        c->nodes[j++] = *n;
    }
    if (j != c->nnodes) {
        c->nnodes = j;
        reindex(c);
    }
    /* what a kubelet said about itself ages the same way */
    j = 0;
    for (size_t i = 0; i < c->nnames; i++) {
        kname *x = &c->names[i];
        if (c->newest_t != INT64_MIN && c->newest_t - x->t > k->ttl_ms) {
            free(x->ip);
            free(x->node);
            k->total_names--;
            continue;
        }
        c->names[j++] = *x;
    }
    c->nnames = j;
}

static void derive(rw_kubelet *k, kcluster *c)
{
    expire(k, c);
    free(c->ips);
    free(c->claims);
    c->ips = NULL;
    c->claims = NULL;
    c->nips = 0;
    size_t n = c->nnodes;
    kip *ips = calloc(n ? n : 1, sizeof *ips);
    uint32_t *claims = calloc(n ? n : 1, sizeof *claims);
    if (!ips || !claims) {
        free(ips);
        free(claims);
        c->derived_version = c->version;
        return;
    }
    /* group node indexes by IP: sort (ip, index) pairs */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (node_ip(&c->nodes[i]))
            ips[m++] = (kip){.ip = node_ip(&c->nodes[i]), .claim = NULL, .nclaim = (uint32_t)i};
    qsort(ips, m, sizeof *ips, cmp_kip);
    size_t nips = 0, pos = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        kip e = {.ip = ips[i].ip, .claim = claims + pos};
        while (j < m && !strcmp(ips[j].ip, e.ip))
            claims[pos + e.nclaim++] = ips[j++].nclaim;
        pos += e.nclaim;
        choose_owner(c, &e);
        ips[nips++] = e;
        i = j;
    }
    c->ips = ips;
    c->nips = nips;
    c->claims = claims;
    c->derived_version = c->version;
}

static const kip *ip_find(const kcluster *c, const char *ip, size_t len)
{
    size_t lo = 0, hi = c->nips;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strncmp(c->ips[mid].ip, ip, len);
        if (r == 0 && c->ips[mid].ip[len] != '\0')
            r = 1;
        if (r == 0)
            return &c->ips[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Takes the read lock with c's derived table current (rebuilding it under
 * the write lock first when the node table changed). */
static kcluster *read_current(rw_kubelet *k, const char *tenant, const char *cluster)
{
    pthread_rwlock_rdlock(&k->lock);
    kcluster *c = cluster_find(k, tenant, cluster, 0);
    if (!c || c->derived_version == c->version)
        return c;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    c = cluster_find(k, tenant, cluster, 0);
    if (c && c->derived_version != c->version)
        derive(k, c);
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_rdlock(&k->lock);
    return cluster_find(k, tenant, cluster, 0);
}

rw_kubelet_decision rw_kubelet_decide(rw_kubelet *k, const char *tenant, const char *cluster,
                                      const char *instance, const char *node, size_t nsamples)
{
    if (!instance || !node || !*node)
        return RW_KUBELET_KEEP;
    kcluster *c = read_current(k, tenant ? tenant : "", cluster ? cluster : "");
    rw_kubelet_decision d = RW_KUBELET_KEEP;
    if (c) {
        const char *h;
        size_t hl = host_of(instance, &h);
        const kip *e = ip_find(c, h, hl);
        if (e && e->nclaim > 1 && strcmp(c->nodes[e->claim[0]].name, node)) {
            for (uint32_t i = 1; i < e->nclaim; i++)
                if (!strcmp(c->nodes[e->claim[i]].name, node)) {
                    d = RW_KUBELET_DROP_IP_REUSE;
                    break;
                }
        }
        if (d == RW_KUBELET_KEEP && k->mode == RW_KUBELET_STRICT) {
            /* a node whose Ready condition is false or unknown; one we know
               nothing about, or only its addresses, keeps its series */
            long i = node_find(c, node);
            if (i >= 0 && (node_ready(&c->nodes[i]) == RW_NODE_READY_FALSE ||
                           node_ready(&c->nodes[i]) == RW_NODE_READY_UNKNOWN))
                d = RW_KUBELET_DROP_NOT_READY;
        }
        if (d != RW_KUBELET_KEEP && nsamples) { /* 0: a dry run, nothing counted */
            /* counters are only read for reports: relaxed races are fine, but
               keep them exact with atomics */
            __atomic_fetch_add(d == RW_KUBELET_DROP_IP_REUSE ? &c->dropped_reuse
                                                             : &c->dropped_strict,
                               1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&c->samples_dropped, nsamples, __ATOMIC_RELAXED);
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return d;
}

uint64_t rw_kubelet_dropped(rw_kubelet *k, const char *tenant, const char *cluster)
{
    pthread_rwlock_rdlock(&k->lock);
    kcluster *c = cluster_find(k, tenant ? tenant : "", cluster ? cluster : "", 0);
    uint64_t r = c ? __atomic_load_n(&c->dropped_reuse, __ATOMIC_RELAXED) +
                         __atomic_load_n(&c->dropped_strict, __ATOMIC_RELAXED)
                   : 0;
    pthread_rwlock_unlock(&k->lock);
    return r;
}

/* ---- the endpoints API ---- */

static void reason(rw_buf *out, const kcluster *c, const kip *e, const knode *loser)
{
    const knode *own = &c->nodes[e->claim[0]];
    rw_node_ready lr = node_ready(loser), orr = node_ready(own);
    if (!ready_known(lr) && ready_known(orr))
        rw_buf_printf(out, "its Ready condition is %s while %s's is known (%s): the node whose "
                           "kubelet reports status keeps the IP", ready_str(lr), own->name,
                      ready_str(orr));
    else if (e->rule == R_KUBELET_NAME)
        rw_buf_printf(out, "the kubelet at %s reports node %s (kubelet_node_name)", e->ip,
                      own->name);
    else
        rw_buf_printf(out, "%s was created or heartbeat more recently", own->name);
}

static void node_json(rw_buf *out, const knode *n)
{
    rw_buf_puts(out, "{\"node\":");
    rw_json_str(out, n->name);
    rw_buf_printf(out, ",\"ready\":\"%s\"", ready_str(node_ready(n)));
}

static void cluster_json(rw_kubelet *k, kcluster *c, rw_buf *out)
{
    if (c->derived_version != c->version)
        derive(k, c);
    rw_buf_puts(out, "{\"tenant\":");
    rw_json_str(out, c->tenant);
    rw_buf_puts(out, ",\"cluster\":");
    rw_json_str(out, c->cluster);
    rw_buf_printf(out, ",\"mode\":\"%s\",\"sources\":[\"kube-state-metrics\"%s],\"nodes\":%zu,"
                       "\"endpoints\":[",
                  k->mode == RW_KUBELET_STRICT ? "strict" : "ip-reuse",
                  c->has_api ? ",\"kubernetes-api\"" : "", c->nnodes);
    for (size_t i = 0; i < c->nips; i++) {
        const kip *e = &c->ips[i];
        const knode *own = &c->nodes[e->claim[0]];
        rw_buf_puts(out, i ? ",{\"ip\":" : "{\"ip\":");
        rw_json_str(out, e->ip);
        rw_buf_puts(out, ",\"node\":");
        rw_json_str(out, own->name);
        rw_buf_printf(out, ",\"ready\":\"%s\"", ready_str(node_ready(own)));
        const char *kn = kubelet_name_at(c, e->ip);
        if (kn) {
            rw_buf_puts(out, ",\"kubelet_node_name\":");
            rw_json_str(out, kn);
        }
        int strict_out = k->mode == RW_KUBELET_STRICT && (node_ready(own) == RW_NODE_READY_FALSE ||
                                                          node_ready(own) == RW_NODE_READY_UNKNOWN);
        rw_buf_printf(out, ",\"series\":\"%s\"", strict_out ? "dropped" : "kept");
        if (strict_out)
            rw_buf_printf(out, ",\"reason\":\"strict mode: its Ready condition is %s\"",
                          ready_str(node_ready(own)));
        rw_buf_puts(out, ",\"excluded\":[");
        for (uint32_t j = 1; j < e->nclaim; j++) {
            const knode *l = &c->nodes[e->claim[j]];
            if (j > 1)
                rw_buf_putc(out, ',');
            node_json(out, l);
            rw_buf_puts(out, ",\"reason\":");
            rw_buf r;
            rw_buf_init(&r, 0);
            reason(&r, c, e, l);
            rw_json_str(out, r.p ? r.p : "");
            rw_buf_free(&r);
            rw_buf_putc(out, '}');
        }
        rw_buf_puts(out, "]}");
    }
    rw_buf_printf(out, "],\"dropped_series\":{\"ip_reuse\":%llu,\"not_ready\":%llu},"
                       "\"dropped_samples\":%llu}",
                  (unsigned long long)__atomic_load_n(&c->dropped_reuse, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&c->dropped_strict, __ATOMIC_RELAXED),
                  (unsigned long long)__atomic_load_n(&c->samples_dropped, __ATOMIC_RELAXED));
}

void rw_kubelet_endpoints_json(rw_kubelet *k, const char *tenant, const char *cluster,
                               const rw_principal *reader, rw_buf *out)
{
    /* the write lock: the report may rebuild derived tables */
    pthread_rwlock_wrlock(&k->lock);
    /* clusters in a stable order: by tenant, then cluster */
    kcluster **all = calloc(k->nclusters ? k->nclusters : 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; all && i < k->nbuckets; i++)
        for (kcluster *c = k->buckets[i]; c; c = c->next)
            if ((!tenant || !strcmp(tenant, c->tenant)) &&
                (!cluster || !strcmp(cluster, c->cluster)) && rw_principal_reads(reader, c->tenant))
                all[n++] = c;
    for (size_t i = 1; i < n; i++) /* insertion sort: reports are rare */
        for (size_t j = i; j > 0; j--) {
            int r = strcmp(all[j - 1]->tenant, all[j]->tenant);
            if (r == 0)
                r = strcmp(all[j - 1]->cluster, all[j]->cluster);
            if (r <= 0)
                break;
            kcluster *t = all[j];
            all[j] = all[j - 1];
            all[j - 1] = t;
        }
    rw_buf_printf(out, "{\"mode\":\"%s\",\"clusters\":[",
                  k->mode == RW_KUBELET_STRICT ? "strict" : "ip-reuse");
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_putc(out, ',');
        cluster_json(k, all[i], out);
    }
    rw_buf_printf(out, "],\"untracked_nodes\":%llu}", (unsigned long long)k->untracked);
    free(all);
    pthread_rwlock_unlock(&k->lock);
}

/* ---- lifecycle ---- */

static void collect(void *ctx, rw_buf *out)
{
    rw_kubelet *k = ctx;
    pthread_rwlock_rdlock(&k->lock);
    rw_buf_puts(out, "# HELP rwgate_kubelet_series_dropped_total Kubelet series dropped by the "
                     "kubelet-endpoint dedup, per tenant, cluster and reason.\n"
                     "# TYPE rwgate_kubelet_series_dropped_total counter\n");
    for (size_t i = 0; i < k->nbuckets; i++)
        for (kcluster *c = k->buckets[i]; c; c = c->next)
            for (int r = 0; r < 2; r++) {
                rw_buf_puts(out, "rwgate_kubelet_series_dropped_total{tenant=");
                rw_metrics_quote(out, c->tenant);
                rw_buf_puts(out, ",cluster=");
                rw_metrics_quote(out, c->cluster);
                rw_buf_printf(out, ",reason=\"%s\"} %llu\n", r ? "not_ready" : "ip_reuse",
                              (unsigned long long)__atomic_load_n(
                                  r ? &c->dropped_strict : &c->dropped_reuse, __ATOMIC_RELAXED));
            }
    rw_buf_printf(out, "# HELP rwgate_kubelet_nodes Nodes known to the kubelet-endpoint dedup.\n"
                       "# TYPE rwgate_kubelet_nodes gauge\nrwgate_kubelet_nodes %zu\n"
                       "# HELP rwgate_kubelet_untracked_total Node observations ignored because "
                       "the node table is full.\n# TYPE rwgate_kubelet_untracked_total counter\n"
                       "rwgate_kubelet_untracked_total %llu\n",
                  k->total_nodes, (unsigned long long)k->untracked);
    pthread_rwlock_unlock(&k->lock);
}

void rw_kubelet_reconfigure(rw_kubelet *k, const rw_kubelet_opts *o)
{
    pthread_rwlock_wrlock(&k->lock);
    k->mode = o->mode;
    k->ttl_ms = o->node_ttl_ms > 0 ? o->node_ttl_ms : RW_KUBELET_DEFAULT_TTL_MS;
    k->max_nodes = o->max_nodes ? o->max_nodes : RW_KUBELET_DEFAULT_MAX_NODES;
    pthread_rwlock_unlock(&k->lock);
}

rw_kubelet *rw_kubelet_new(const rw_kubelet_opts *o, rw_err *err)
{
    rw_kubelet *k = calloc(1, sizeof *k);
    if (!k || !(k->buckets = calloc(16, sizeof *k->buckets))) {
        free(k);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    k->nbuckets = 16;
    pthread_rwlock_init(&k->lock, NULL);
    rw_kubelet_reconfigure(k, o);
    if (o->metrics)
        rw_metrics_add_collector(o->metrics, collect, k);
    return k;
}

void rw_kubelet_free(rw_kubelet *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->nbuckets; i++)
        for (kcluster *c = k->buckets[i], *next; c; c = next) {
            next = c->next;
            cluster_free(c);
        }
    free(k->buckets);
    pthread_rwlock_destroy(&k->lock);
    free(k);
}
