/* clean_stages.c - the ingest-time cleaning stages of the write pipeline
 * (pipeline.c runs them in its table's order):
 *
 *   relabel    the global write_relabel_configs, then the tenant's
 *   inventory  standard labels of the series' cluster (inventory.c)
 *   ha_dedup   one replica per (tenant, cluster) (ha.c); the replica label
 *              goes, and the store skips what it already holds newer
 *   kubelet    node tables learned from KSM series, then the owner rule for
 *              kubelet series (kubelet.c)
 *   rate       the tenant's token bucket over what is left (limits.c)
 *
 * plus the sink's share (active-series admission) and the per-request
 * accounting of sources (sources.c). Every stage is one pass over the batch;
 * none allocates per sample: labels that change are rebuilt in the request
 * arena, and per-request scratch (relabel state, regex match data) comes
 * from a pool. Cluster lookups are remembered from one series to the next,
 * since the series of a request mostly share their cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "ingest_int.h"

/* ---- scratch pool ---- */

#define POOL_MAX 64

ig_scratch *ig_scratch_get(rw_ingest *ig)
{
    pthread_mutex_lock(&ig->pool_mu);
    ig_scratch *s = ig->pool;
    if (s)
        ig->pool = s->next;
    pthread_mutex_unlock(&ig->pool_mu);
    if (s) {
        rw_relabel_state_begin(s->rs); /* a new request: a new memo generation */
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rs = rw_relabel_state_new();
    s->md = rw_regex_md_new(16);
    if (!s->rs || !s->md) {
        rw_relabel_state_free(s->rs);
        rw_regex_md_free(s->md);
        free(s);
        return NULL;
    }
    rw_relabel_state_begin(s->rs);
    return s;
}

void ig_scratch_put(rw_ingest *ig, ig_scratch *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&ig->pool_mu);
    size_t n = 0;
    for (ig_scratch *x = ig->pool; x; x = x->next)
        n++;
    if (n < POOL_MAX) {
        s->next = ig->pool;
        ig->pool = s;
        s = NULL;
    }
    pthread_mutex_unlock(&ig->pool_mu);
    if (s) {
        rw_relabel_state_free(s->rs);
        rw_regex_md_free(s->md);
        free(s);
    }
}

/* ---- tenant settings ---- */

const rw_ingest_tenant_limits *rw_in_tenant_limits(const rw_ingest_config *cfg, const char *tenant)
{
    const rw_cfg_map *m = &cfg->tenant_limits;
    const rw_ingest_tenant_limits *v = m->v, *def = NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->keys[i], tenant))
            return &v[i];
        if (!strcmp(m->keys[i], "default"))
            def = &v[i];
    }
    return def;
}

rw_in_label_limits rw_in_label_limits_for(const rw_ingest_config *cfg,
                                          const rw_ingest_tenant_limits *tl)
{
    rw_in_label_limits l = {cfg->max_labels_per_series, cfg->max_label_name_len,
                            cfg->max_label_value_len};
    if (tl) {
        if (tl->max_labels_per_series)
            l.max_labels = tl->max_labels_per_series;
        if (tl->max_label_name_length)
            l.max_name = tl->max_label_name_length;
        if (tl->max_label_value_length)
            l.max_value = tl->max_label_value_length;
    }
    return l;
}

/* ---- sources ---- */

static ig_src *src_find(rw_in_ctx *c, const char *cluster)
{
    if (c->last_src > 0) { /* the same string (cached series share one) or equal */
        const char *last = c->srcs[c->last_src - 1].cluster;
        if (last == cluster || !strcmp(last, cluster))
            return &c->srcs[c->last_src - 1];
    }
    for (size_t i = 0; i < c->nsrcs; i++)
        if (!strcmp(c->srcs[i].cluster, cluster)) {
            c->last_src = (int32_t)i + 1;
            return &c->srcs[i];
        }
    if (c->nsrcs == c->capsrcs) {
        size_t nc = c->capsrcs ? c->capsrcs * 2 : 8;
        ig_src *n = rw_arena_realloc(c->a, c->srcs, c->capsrcs * sizeof *n, nc * sizeof *n);
        if (!n)
            return NULL;
        c->srcs = n;
        c->capsrcs = nc;
    }
    ig_src *s = &c->srcs[c->nsrcs++];
    memset(s, 0, sizeof *s);
    s->cluster = cluster; /* lives in the request (labels) or the config */
    s->d.newest_ms = INT64_MIN;
    s->d.unlisted = -1;
    s->d.versions = 1u << (c->version == RW_PROTO_V2 ? 2 : 1);
    c->last_src = (int32_t)c->nsrcs;
    return s;
}

ig_src *rw_in_src_labels(rw_in_ctx *c, const rw_label *l, size_t n)
{
    const char *cl = rw_labels_get(l, n, c->cfg->cluster_label);
    return src_find(c, cl ? cl : "");
}

ig_src *rw_in_src(rw_in_ctx *c, rw_in_series *s)
{
    if (s->src > 0) /* found by the inventory stage, labels unchanged since */
        return &c->srcs[s->src - 1];
    if (s->cached) { /* its cluster label as sent is the one it is stored with */
        ig_src *src = src_find(c, s->raw_cluster ? s->raw_cluster : "");
        if (src)
            s->src = (int32_t)(src - c->srcs) + 1;
        return src;
    }
    return rw_in_src_labels(c, s->labels, s->nlabels);
}

void rw_in_src_note(rw_in_ctx *c, rw_in_series *s, rw_src_reason r, uint64_t n)
{
    ig_src *x = rw_in_src(c, s);
    if (x)
        x->d.reasons[r] += n;
}

void rw_in_clean_finish(rw_in_ctx *c)
{
    rw_ingest *ig = c->ig;
    for (size_t i = 0; i < c->nsrcs; i++)
        rw_sources_add(ig->sources, c->tenant, c->srcs[i].cluster, &c->srcs[i].d, c->now_ms);
}

/* ---- relabel ---- */

rw_rc rw_in_stage_relabel(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const rw_cfg_list *g = &c->cfg->write_relabel_configs;
    const rw_cfg_list *t = c->tl ? &c->tl->write_relabel_configs : NULL;
    if (!g->n && (!t || !t->n))
        return RW_OK;
    rw_ingest *ig = c->ig;
    uint64_t dropped = 0, invalid = 0, failed = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (!s->nsamples || s->cached)
            continue;
        rw_labels out = {s->labels, s->nlabels};
        const uint32_t *lens = s->lens;
        rw_relabel_result r = RW_RELABEL_KEPT;
        rw_err rerr;
        rerr.msg[0] = '\0';
        for (int pass = 0; pass < 2 && r == RW_RELABEL_KEPT; pass++) {
            const rw_cfg_list *l = pass ? t : g;
            if (!l || !l->n)
                continue;
            r = rw_relabel_apply_lens(c->scr->rs, l->v, l->n, RW_RELABEL_REQUIRE_NAME, c->a, out.v,
                                      lens, out.n, &out, &lens, &rerr);
        }
        if (r == RW_RELABEL_KEPT) {
            if (out.v != s->labels) {
                s->labels = out.v;
                s->nlabels = out.n;
                s->lens = (uint32_t *)lens; /* lengths came along: no strlen later */
            }
            continue;
        }
        rw_src_reason why = r == RW_RELABEL_DROPPED ? RW_SRC_RELABEL_DROP : RW_SRC_RELABEL_INVALID;
        rw_in_src_note(c, s, why, s->nsamples);
        c->st->samples_dropped += s->nsamples;
        if (r == RW_RELABEL_DROPPED)
            dropped += s->nsamples;
        else if (r == RW_RELABEL_INVALID)
            invalid += s->nsamples;
        else
            failed += s->nsamples;
        if (r == RW_RELABEL_FAILED && failed == s->nsamples)
            rw_warn("ingest: relabeling failed, series dropped: %s", rerr.msg);
        s->nsamples = 0;
    }
    rw_counter_add(ig->relabel_dropped, dropped);
    rw_counter_add(ig->relabel_invalid, invalid);
    rw_counter_add(ig->relabel_failed, failed);
    (void)err;
    return RW_OK;
}

/* ---- inventory ---- */

rw_rc rw_in_stage_inventory(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const rw_inventory *inv = c->cfg->inventory;
    if (!inv)
        return RW_OK;
    const char *label = c->cfg->cluster_label;
    const char *last = NULL;
    const rw_inventory_entry *last_e = NULL;
    uint64_t unlisted = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (!s->nsamples || (s->cached && s->inv == RW_IN_INV_NONE))
            continue;
        const char *cl = s->cached ? s->raw_cluster : rw_labels_get(s->labels, s->nlabels, label);
        if (!cl)
            continue; /* not a cluster's series */
        if (s->cached) { /* the verdict it had; its labels are in the store */
            ig_src *src = src_find(c, cl);
            if (src) {
                src->d.unlisted = s->inv == RW_IN_INV_UNLISTED;
                s->src = (int32_t)(src - c->srcs) + 1;
            }
            if (s->inv == RW_IN_INV_UNLISTED)
                unlisted += s->nsamples;
            continue;
        }
        const rw_inventory_entry *e;
        if (last && !strcmp(last, cl)) {
            e = last_e;
        } else {
            e = rw_inventory_find(inv, cl, strlen(cl));
            last = cl;
            last_e = e;
        }
        ig_src *src = src_find(c, cl);
        if (src) {
            src->d.unlisted = e ? 0 : 1;
            s->src = (int32_t)(src - c->srcs) + 1;
        }
        if (!e)
            unlisted += s->nsamples;
        s->inv = e ? RW_IN_INV_LISTED : RW_IN_INV_UNLISTED;
        rw_labels out;
        const uint32_t *lens;
        if (rw_inventory_apply_lens(e, c->a, s->labels, s->lens, s->nlabels, &out, &lens) != RW_OK)
            return rw_err_set(err, RW_LIMIT, "request too complex");
        if (out.v != s->labels) {
            s->labels = out.v;
            s->nlabels = out.n;
            s->lens = (uint32_t *)lens;
        }
    }
    rw_counter_add(c->ig->inventory_unlisted, unlisted);
    return RW_OK;
}

/* ---- HA dedup ---- */

static void remove_label(rw_in_series *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i].name, name)) {
            memmove(s->labels + i, s->labels + i + 1, (s->nlabels - i - 1) * sizeof *s->labels);
            if (s->lens)
                memmove(s->lens + 2 * i, s->lens + 2 * i + 2,
                        (s->nlabels - i - 1) * 2 * sizeof *s->lens);
            s->nlabels--;
            return;
        }
}

/* A failover's backlog: the new replica's buffered samples become series
 * of their own in front of the batch, so they are appended before the
 * request's own (newer) samples of the same series. */
static rw_rc add_backlog(rw_in_ctx *c, rw_in_batch *b, size_t *front, const rw_ha_backlog *bl)
{
    size_t n = b->nseries + bl->n;
    /* room for the copies and for what the later stages allocate per
       series: the request's reservation was sized for its own series */
    size_t need = n * sizeof(rw_in_series) + 64, nl = 0;
    for (size_t i = 0; i < bl->n; i++) {
        const rw_ha_backlog_series *x = &bl->series[i];
        need += (x->nlabels + 1) * sizeof(rw_label) + x->nsamples * sizeof(rw_sample) + 32;
        for (size_t k = 0; k < x->nlabels; k++)
            need += strlen(x->labels[k].name) + strlen(x->labels[k].value) + 34;
        nl += x->nlabels;
    }
    need += rw_in_stage_bytes(bl->n, nl);
    if (c->mem && c->mem->budget) {
        rw_err gerr;
        rw_err_init(&gerr);
        if (rw_in_mem_grow(c->mem, need, &gerr) != RW_OK)
            /* never lose a backlog for want of budget: its bytes are
               already bounded by ha_dedup.standby_buffer, which they leave
               as they come here */
            rw_arena_set_cap(c->a, c->mem->held + need + c->mem->block);
    }
    rw_in_series *ns = rw_arena_calloc(c->a, n, sizeof *ns);
    if (!ns)
        return RW_LIMIT;
    memcpy(ns, b->series, *front * sizeof *ns);
    for (size_t i = 0; i < bl->n; i++) {
        const rw_ha_backlog_series *x = &bl->series[i];
        rw_in_series *s = &ns[*front + i];
        s->labels = rw_arena_alloc(c->a, (x->nlabels ? x->nlabels : 1) * sizeof *s->labels);
        s->samples = rw_arena_alloc(c->a, x->nsamples * sizeof *s->samples);
        if (!s->labels || !s->samples)
            return RW_LIMIT;
        for (size_t k = 0; k < x->nlabels; k++) {
            s->labels[k].name = rw_arena_strdup(c->a, x->labels[k].name);
            s->labels[k].value = rw_arena_strdup(c->a, x->labels[k].value);
            if (!s->labels[k].name || !s->labels[k].value)
                return RW_LIMIT;
        }
        memcpy(s->samples, x->samples, x->nsamples * sizeof *s->samples);
        s->nlabels = x->nlabels;
        s->nsamples = x->nsamples;
        s->skip_old = 1;
    }
    memcpy(ns + *front + bl->n, b->series + *front, (b->nseries - *front) * sizeof *ns);
    b->series = ns;
    b->nseries = n;
    *front += bl->n;
    return RW_OK;
}

rw_rc rw_in_stage_ha(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const rw_ingest_ha_config *h = &c->cfg->ha_dedup;
    if (!h->enabled)
        return RW_OK;
    uint64_t deduped = 0;
    rw_ha_session hs;
    int in_session = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (!s->nsamples || s->skip_old || s->cached)
            continue;
        const char *replica = rw_labels_get(s->labels, s->nlabels, h->replica_label);
        if (!replica)
            continue;
        const char *cluster = rw_labels_get(s->labels, s->nlabels, h->cluster_label);
        if (!cluster)
            continue; /* both labels or no HA pair: stored as sent */
        /* the stored series has no replica label: drop it first, the
           standby buffer keeps the labels as they will be stored */
        remove_label(s, h->replica_label);
        s->skip_old = 1;
        s->nocache = 1; /* the election decides, request by request */
        rw_ha_verdict v;
        if (!in_session) {
            rw_ha_begin(c->ig->ha, &hs, c->tenant);
            in_session = 1;
        }
        rw_ha_judge_in(&hs, cluster, replica, s->labels, s->lens, s->nlabels, s->samples,
                       s->nsamples, &v);
        if (v.dropped) {
            rw_in_src_note(c, s, RW_SRC_HA_DEDUP, v.dropped);
            deduped += v.dropped;
        }
        s->nsamples = v.kept;
        if (v.backlog) {
            /* the series judged so far stay in front; the backlog goes right
               after them, before this series (its newer samples) */
            size_t front = i;
            rw_rc rc = add_backlog(c, b, &front, v.backlog);
            rw_ha_backlog_free(v.backlog);
            if (rc != RW_OK) {
                rw_ha_end(&hs);
                return rw_err_set(err, RW_LIMIT, "request too complex");
            }
            i = front; /* this series, moved behind the backlog */
        }
    }
    if (in_session)
        rw_ha_end(&hs);
    c->st->samples_deduplicated += deduped;
    rw_counter_add(c->ig->ha_deduplicated, deduped);
    return RW_OK;
}

/* ---- kubelet-endpoint dedup ---- */

rw_rc rw_in_stage_kubelet(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const rw_ingest_kubelet_config *k = &c->cfg->kubelet_dedup;
    const rw_in_selector *sel = k->compiled_selector;
    if (!k->enabled || !sel)
        return RW_OK;
    rw_kubelet *kt = c->ig->kubelet;
    const char *cl_label = c->cfg->cluster_label;
    /* learn first: node information in this very request applies to it */
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (s->nsamples && !s->cached && rw_kubelet_is_source(s->labels, s->nlabels)) {
            s->nocache = 1; /* node tables learn from each of its samples */
            const char *cl = rw_labels_get(s->labels, s->nlabels, cl_label);
            rw_kubelet_observe(kt, c->tenant, cl ? cl : "", s->labels, s->nlabels, s->samples,
                               s->nsamples);
        }
    }
    if (sel->ngroups > rw_regex_md_groups(c->scr->md)) {
        rw_regex_md *md = rw_regex_md_new(sel->ngroups);
        if (!md)
            return rw_err_set(err, RW_AGAIN, "out of memory");
        rw_regex_md_free(c->scr->md);
        c->scr->md = md;
    }
    uint64_t dropped[2] = {0, 0};
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        const char *node, *inst, *cl;
        if (!s->nsamples)
            continue;
        if (s->cached) { /* picked before: judged now, by its labels as sent */
            if (!s->kube)
                continue;
            node = s->raw_node;
            inst = s->raw_inst;
            cl = s->raw_cluster;
        } else {
            if (!rw_in_selector_matches(sel, c->scr->md, s->labels, s->nlabels))
                continue;
            node = rw_labels_get(s->labels, s->nlabels, k->node_label);
            inst = rw_labels_get(s->labels, s->nlabels, k->instance_label);
            if (!node || !inst)
                continue;
            s->kube_sel = 1; /* kept or dropped by the nodes' state now */
            cl = rw_labels_get(s->labels, s->nlabels, cl_label);
        }
        rw_kubelet_decision d = rw_kubelet_decide(kt, c->tenant, cl ? cl : "", inst, node,
                                                  s->nsamples);
        if (d == RW_KUBELET_KEEP)
            continue;
        rw_in_src_note(c, s, RW_SRC_KUBELET, s->nsamples);
        dropped[d == RW_KUBELET_DROP_NOT_READY] += s->nsamples;
        c->st->samples_dropped += s->nsamples;
        s->nsamples = 0;
    }
    rw_counter_add(c->ig->kubelet_dropped[0], dropped[0]);
    rw_counter_add(c->ig->kubelet_dropped[1], dropped[1]);
    return RW_OK;
}

/* ---- ingestion rate ---- */

rw_rc rw_in_stage_rate(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const rw_ingest_tenant_limits *tl = c->tl;
    if (!tl || tl->ingestion_rate <= 0)
        return RW_OK;
    uint64_t n = 0;
    for (size_t i = 0; i < b->nseries; i++)
        n += b->series[i].nsamples;
    if (!n)
        return RW_OK;
    rw_limits_tenant *lt = rw_limits_tenant_get(c->ig->limits, c->tenant);
    int wait = lt ? rw_limits_take(lt, tl->ingestion_rate, tl->ingestion_burst, n, c->now_ms) : 0;
    if (!wait)
        return RW_OK;
    for (size_t i = 0; i < b->nseries; i++)
        if (b->series[i].nsamples)
            rw_in_src_note(c, &b->series[i], RW_SRC_RATE_LIMITED, b->series[i].nsamples);
    rw_counter_add(c->ig->rate_limited, n);
    c->st->retry_after_s = wait;
    return rw_err_set(err, RW_AGAIN,
                      "tenant \"%.64s\": ingestion rate limit of %g samples/s (burst %lld) "
                      "exceeded by %llu samples; retry in %d s",
                      c->tenant, tl->ingestion_rate,
                      (long long)(tl->ingestion_burst ? tl->ingestion_burst
                                                      : (int64_t)tl->ingestion_rate),
                      (unsigned long long)n, wait);
}

/* ---- sink: active series ---- */

void rw_in_series_limit_begin(rw_in_ctx *c)
{
    c->lt = NULL;
    if (!c->tl || c->tl->max_series <= 0)
        return;
    c->lt = rw_limits_tenant_get(c->ig->limits, c->tenant);
    if (c->lt)
        rw_limits_series_lock(c->lt, c->now_ms, c->cfg->active_series_window_ms);
}

int rw_in_series_limit_admit(rw_in_ctx *c, rw_in_series *s, uint64_t hash)
{
    if (!c->lt || rw_limits_series_admit(c->lt, hash, c->tl->max_series))
        return 1;
    char lbl[200];
    if (rw_in_decode_v1_labels(s, c->a) < 0) /* cached: decoded for the message */
        snprintf(lbl, sizeof lbl, "(malformed labels)");
    else
        rw_labels_format(s->labels, s->nlabels < 16 ? s->nlabels : 16, lbl, sizeof lbl);
    rw_in_reason(c, "series %s: tenant \"%.64s\" is at its limit max_series = %lld active "
                    "series; new series are rejected", lbl, c->tenant,
                 (long long)c->tl->max_series);
    rw_in_src_note(c, s, RW_SRC_MAX_SERIES, s->nsamples);
    rw_counter_add(c->ig->max_series_rejected, s->nsamples);
    c->st->series_rejected++;
    c->st->samples_rejected += s->nsamples;
    return 0;
}

void rw_in_series_limit_end(rw_in_ctx *c)
{
    if (c->lt)
        rw_limits_series_unlock(c->lt);
    c->lt = NULL;
}
