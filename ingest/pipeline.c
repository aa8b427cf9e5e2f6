/* pipeline.c - the stages a decoded remote-write batch flows through, in
 * order, and the sink that appends what is left.
 *
 *   validate -> tenant -> (relabel, HA dedup, kubelet dedup ...) -> append
 *
 * The stage table is the one place that says what runs and in which order;
 * a stage works on the whole batch (one pass over its series) and may
 * rewrite labels or drop series and samples, counting why. Labels are
 * hashed once, in the sink, after the last stage that may change them. The
 * sink appends every remaining series in one call through the appender (one
 * lock per shard, one group commit) and stores the request's metadata.
 *
 * The series cache (series_cache.c) short-cuts all of it for a series seen
 * before: the decoder marks it cached, every stage skips it but for its
 * per-sample checks and accounting, and the sink appends it by the stored
 * series' id. A series first stored here is remembered after the append
 * when its verdict followed from its labels and the settings alone. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "ingest_int.h"

#define MAX_REASONS 5

void rw_in_reason(rw_in_ctx *c, const char *fmt, ...)
{
    if (c->nreasons >= MAX_REASONS)
        return;
    rw_write_stats *st = c->st;
    size_t len = strlen(st->reasons);
    if (len + 8 >= sizeof st->reasons)
        return;
    if (len)
        len += (size_t)snprintf(st->reasons + len, sizeof st->reasons - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reasons + len, sizeof st->reasons - len, fmt, ap);
    va_end(ap);
    c->nreasons++;
}

/* For a message: a cached series' labels are decoded first. */
static void series_name(rw_in_ctx *c, rw_in_series *s, char *out, size_t cap)
{
    if (rw_in_decode_v1_labels(s, c->a) < 0) {
        snprintf(out, cap, "(malformed labels)");
        return;
    }
    rw_labels_format(s->labels, s->nlabels < 16 ? s->nlabels : 16, out, cap);
}

/* ---- stages ---- */

/* Counts what this version does not store (native histograms, exemplars),
 * rejects series that break the label rules or a limit, and drops samples
 * too far ahead of the clock (one bad clock must not move retention). */
static rw_rc stage_validate(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    int64_t future_limit = c->cfg->max_future_ms > 0 ? c->now_ms + c->cfg->max_future_ms
                                                      : INT64_MAX;
    /* the tenant's label limits where it has its own */
    rw_in_label_limits lim = rw_in_label_limits_for(c->cfg, c->tl);
    uint64_t future = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        c->st->histograms_rejected += s->nhistograms;
        c->st->exemplars_dropped += s->nexemplars;
        if (s->nhistograms)
            rw_in_reason(c, "series %zu: %llu native histogram samples not supported", i,
                         (unsigned long long)s->nhistograms);
        if (s->nsamples == 0)
            continue;
        rw_err verr;
        rw_err_init(&verr);
        /* a cached series' labels passed before, byte for byte */
        if (!s->cached && rw_in_validate_series_lim(&lim, s, &verr) != RW_OK) {
            char lbl[200];
            series_name(c, s, lbl, sizeof lbl);
            rw_in_reason(c, "series %s: %s", lbl, verr.msg);
            c->st->series_rejected++;
            c->st->samples_rejected += s->nsamples;
            rw_in_src_note(c, s, RW_SRC_INVALID, s->nsamples);
            s->nsamples = 0;
            continue;
        }
        size_t keep = 0;
        for (size_t k = 0; k < s->nsamples; k++) {
            if (s->samples[k].t > future_limit) {
                rw_in_src_note(c, s, RW_SRC_FUTURE, 1);
                if (!future) {
                    char lbl[200];
                    series_name(c, s, lbl, sizeof lbl);
                    rw_in_reason(c, "%s: sample at %lld: too far in the future", lbl,
                                 (long long)s->samples[k].t);
                }
                future++;
                continue;
            }
            s->samples[keep++] = s->samples[k];
        }
        s->nsamples = keep;
    }
    c->st->samples_rejected += future;
    rw_counter_add(c->ig->samples_future, future);
    (void)err;
    return RW_OK;
}

/* The tenant (from the header, or the default) becomes a label. */
static rw_rc stage_tenant(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    const char *label = c->cfg->tenant_label;
    if (!label[0] || !c->tenant[0])
        return RW_OK;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (s->nsamples && !s->cached && rw_in_set_label(c->a, s, label, c->tenant) != RW_OK)
            return rw_err_set(err, RW_LIMIT, "request too complex");
    }
    return RW_OK;
}

/* HA dedup -> relabel -> inventory -> kubelet dedup -> rate limit: the
 * cleaning stages (clean_stages.c). HA dedup first, as Mimir's distributor
 * does: it reads the senders' own external labels (cluster, replica), and
 * the standby's half of an HA pair's traffic then costs nothing further -
 * no relabeling, no inventory lookup. Relabeling next, so rules see and may
 * normalise what the inventory and the kubelet dedup read; the rate limit
 * last, so it counts what would be stored (an HA pair does not pay twice). */
static const rw_in_stage stages[] = {
    {"validate", stage_validate},
    {"tenant", stage_tenant},
    {"ha_dedup", rw_in_stage_ha},
    {"relabel", rw_in_stage_relabel},
    {"inventory", rw_in_stage_inventory},
    {"kubelet_dedup", rw_in_stage_kubelet},
    {"rate_limit", rw_in_stage_rate},
};

/* ---- sink ---- */

/* Called by the store under its shard lock for every rejected sample: only
 * the first few reasons are formatted, the rest cost a comparison. */
static rw_src_reason src_reason(rw_reject_reason r)
{
    switch (r) {
    case RW_REJ_OUT_OF_ORDER: return RW_SRC_OUT_OF_ORDER;
    case RW_REJ_DUPLICATE: return RW_SRC_DUPLICATE;
    case RW_REJ_TOO_OLD: return RW_SRC_TOO_OLD;
    default: return RW_SRC_STORE_SERIES_LIMIT;
    }
}

static void on_reject(void *ctx, const rw_append_series *s, size_t i, rw_reject_reason r)
{
    rw_in_ctx *c = ctx;
    /* the batch's series it was made from (its labels may be undecoded) */
    rw_in_series *from = &c->sink_batch->series[c->sink_from[s - c->sink_as]];
    ig_src *src = rw_in_src(c, from);
    if (src) {
        src->d.accepted--;
        src->d.reasons[src_reason(r)]++;
    }
    if (c->nreasons >= MAX_REASONS)
        return;
    char lbl[256];
    series_name(c, from, lbl, sizeof lbl);
    rw_in_reason(c, "%s: sample at %lld: %s", lbl, (long long)s->samples[i].t,
                 rw_reject_reason_str(r));
}

/* A sample of an HA series the store already holds newer (the other
 * replica's): deduplicated, not rejected. */
static void on_skip(void *ctx, const rw_append_series *s, size_t i, rw_reject_reason r)
{
    rw_in_ctx *c = ctx;
    ig_src *src = rw_in_src_labels(c, s->labels, s->nlabels);
    if (src) {
        src->d.accepted--;
        src->d.reasons[RW_SRC_HA_DEDUP]++;
    }
    (void)i;
    (void)r;
}

/* Keeps the metadata entries that are valid UTF-8 within the limits (in
 * place), rejecting the others with a reason: whatever is stored is later
 * written out verbatim by /api/v1/metadata and /federate. */
static size_t valid_metadata(rw_in_ctx *c, rw_in_batch *b)
{
    size_t keep = 0;
    size_t max_v = (size_t)c->cfg->max_label_value_len, max_h = (size_t)c->cfg->max_help_len;
    for (size_t i = 0; i < b->nmetadata; i++) {
        const rw_metadata *m = &b->metadata[i];
        size_t ml = strlen(m->metric), hl = strlen(m->help), ul = strlen(m->unit);
        const char *why = NULL;
        if (!ml)
            continue; /* nothing to attach it to: ignored, as before */
        if (ml > max_v || ul > max_v)
            why = "metric name or unit longer than ingest.max_label_value_length";
        else if (hl > max_h)
            why = "help longer than ingest.max_help_length";
        else if (!rw_utf8_valid(m->metric, ml) || !rw_utf8_valid(m->help, hl) ||
                 !rw_utf8_valid(m->unit, ul))
            why = "not valid UTF-8";
        if (why) {
            char name[80];
            snprintf(name, sizeof name, "%.64s", m->metric);
            for (char *p = name; *p; p++)
                if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                    *p = '?'; /* the reason is text: no invalid bytes in it */
            rw_in_reason(c, "metadata for %s rejected: %s", name, why);
            c->st->metadata_rejected++;
            continue;
        }
        b->metadata[keep++] = *m;
    }
    return keep;
}

/* ---- the series cache ---- */

/* Where value (a label's, or NULL) is among s's labels, + 1; 0 when not
 * there or beyond max. */
static uint32_t index_of(const rw_in_series *s, const char *value, size_t max)
{
    for (size_t k = 0; value && k < s->nlabels && k < max; k++)
        if (s->labels[k].value == value)
            return (uint32_t)k + 1;
    return 0;
}

/* The sender's cluster, node and instance labels of a series not yet
 * through the stages (which decide whether it may be cached, and what its
 * entry holds). */
static void note_cluster(rw_in_ctx *c, rw_in_series *s)
{
    const rw_ingest_kubelet_config *k = &c->cfg->kubelet_dedup;
    s->raw_cluster = rw_labels_get(s->labels, s->nlabels, c->cfg->cluster_label);
    s->raw_cl_idx = (uint8_t)index_of(s, s->raw_cluster, RW_IN_CF_CL_MAX);
    s->raw_node = rw_labels_get(s->labels, s->nlabels, k->node_label);
    s->raw_inst = rw_labels_get(s->labels, s->nlabels, k->instance_label);
    s->raw_node_idx = (uint8_t)index_of(s, s->raw_node, 255);
    s->raw_inst_idx = (uint8_t)index_of(s, s->raw_inst, 255);
}

static int same_value(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || !strcmp(a, b));
}

/* Before the stages: the decoder marked the series the cache knows (the
 * stages skip them, the sink appends them by their stored series' id);
 * the others note their cluster as sent, which decides whether they may be
 * cached. */
static void cache_lookup(rw_in_ctx *c, rw_in_batch *b)
{
    if (!c->ig->cache || c->retry)
        return;
    uint64_t hits = 0, misses = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (s->cached) {
            hits++;
        } else if (s->keyed) {
            note_cluster(c, s);
            misses++;
        }
    }
    rw_counter_add(c->ig->cache_hits, hits);
    rw_counter_add(c->ig->cache_misses, misses);
}

/* After the append: a series stored for the first time is cached when its
 * verdict followed from its labels and the settings alone - no stage
 * depending on more marked it, and its cluster (by which its samples are
 * accounted, from its labels as sent when cached) is the one it was sent
 * with; a series the kubelet dedup judges, when its node and instance are
 * too (the judgement is made again for every request, from those). */
static void cache_put(rw_in_ctx *c, const rw_in_series *s, uint64_t hash, uint32_t ref)
{
    if (!c->ig->cache || !s->keyed || s->cached || s->nocache || !ref)
        return;
    const char *cl = rw_labels_get(s->labels, s->nlabels, c->cfg->cluster_label);
    if (!same_value(cl, s->raw_cluster) || (cl && !s->raw_cl_idx))
        return;
    rw_in_cache_val v = {.hash = hash, .ref = ref,
                         .flags = (uint16_t)(s->inv | s->raw_cl_idx << RW_IN_CF_CL_SHIFT)};
    if (s->kube_sel) {
        const rw_ingest_kubelet_config *k = &c->cfg->kubelet_dedup;
        if (!s->raw_node_idx || !s->raw_inst_idx ||
            !same_value(rw_labels_get(s->labels, s->nlabels, k->node_label), s->raw_node) ||
            !same_value(rw_labels_get(s->labels, s->nlabels, k->instance_label), s->raw_inst))
            return;
        v.flags |= RW_IN_CF_KUBE;
        v.aux = (uint16_t)(s->raw_node_idx | s->raw_inst_idx << 8);
    }
    rw_in_cache_put(c->ig->cache, s->key, (uint16_t)c->gen, &v);
}

static rw_rc run(rw_in_ctx *c, rw_in_batch *b, rw_err *err);

/* The series whose cached ref the store no longer has (deleted by
 * retention while their sender was silent): through the stages again, with
 * their own labels, as series not seen before. */
static rw_rc retry_gone(rw_in_ctx *c, rw_in_batch *b, const uint8_t *gone, const size_t *from,
                        size_t nas, rw_err *err)
{
    size_t n = 0;
    for (size_t k = 0; k < nas; k++)
        n += gone[k] != 0;
    rw_in_batch rb = {rw_arena_calloc(c->a, n, sizeof(rw_in_series)), 0, NULL, 0};
    if (!rb.series)
        return rw_err_set(err, RW_LIMIT, "request too complex");
    for (size_t k = 0; k < nas; k++) {
        if (!gone[k])
            continue;
        rw_in_series *s = &rb.series[rb.nseries++];
        *s = b->series[from[k]];
        if (rw_in_decode_v1_labels(s, c->a) < 0)
            return rw_err_set(err, RW_BADREQ, "malformed labels of series %zu", from[k]);
        s->cached = 0;
        s->nhistograms = s->nexemplars = 0; /* counted by the first pass */
        s->src = 0;
        note_cluster(c, s);
    }
    c->retry = 1;
    rw_rc rc = run(c, &rb, err);
    c->retry = 0;
    return rc;
}

/* ---- sink ---- */

static rw_rc append(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    rw_ingest *ig = c->ig;
    rw_write_stats *st = c->st;
    size_t cap = b->nseries ? b->nseries : 1;
    rw_append_series *as = rw_arena_alloc(c->a, cap * sizeof *as);
    size_t *from = rw_arena_alloc(c->a, cap * sizeof *from);
    uint32_t *refs = ig->cache ? rw_arena_calloc(c->a, cap, sizeof *refs) : NULL;
    uint8_t *gone = ig->cache ? rw_arena_calloc(c->a, cap, 1) : NULL;
    if (!as || !from || (ig->cache && (!refs || !gone)))
        return rw_err_set(err, RW_LIMIT, "request too complex");
    uint8_t *skip = NULL;
    size_t nas = 0;
    rw_in_series_limit_begin(c);
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (!s->nsamples)
            continue;
        /* the one hash of the series, after the last stage that may change
           its labels (cached: of the labels it had then) */
        uint64_t h = s->cached ? s->hash
                     : s->lens ? rw_labels_hash_lens(s->labels, s->lens, s->nlabels)
                               : rw_labels_hash(s->labels, s->nlabels);
        if (!rw_in_series_limit_admit(c, s, h))
            continue;
        if (s->skip_old && !skip && !(skip = rw_arena_calloc(c->a, b->nseries, 1))) {
            rw_in_series_limit_end(c);
            return rw_err_set(err, RW_LIMIT, "request too complex");
        }
        if (skip)
            skip[nas] = s->skip_old;
        ig_src *src = rw_in_src(c, s);
        if (src) {
            src->d.accepted += s->nsamples;
            if (s->samples[s->nsamples - 1].t > src->d.newest_ms)
                src->d.newest_ms = s->samples[s->nsamples - 1].t;
        }
        as[nas].labels = s->labels;
        as[nas].nlabels = s->nlabels;
        as[nas].hash = h;
        as[nas].samples = s->samples;
        as[nas].nsamples = s->nsamples;
        as[nas].lens = s->lens;
        as[nas].ref = s->cached ? s->ref : 0;
        as[nas].ref_only = s->cached;
        from[nas] = i;
        nas++;
    }
    rw_in_series_limit_end(c);
    rw_append_result res;
    memset(&res, 0, sizeof res);
    res.on_reject = on_reject;
    res.on_reject_ctx = c;
    res.skip_old = skip;
    res.on_skip = on_skip;
    res.refs = refs;
    res.gone = gone;
    c->sink_batch = b;
    c->sink_as = as;
    c->sink_from = from;
    if (nas) {
        rw_rc rc = rw_append(&ig->appender, as, nas, &res, err);
        c->sink_batch = NULL;
        if (rc != RW_OK)
            return rc;
    }
    c->sink_batch = NULL;
    for (size_t k = 0; refs && k < nas; k++)
        cache_put(c, &b->series[from[k]], as[k].hash, refs[k]);
    if (res.ngone) {
        for (size_t k = 0; k < nas; k++) {
            if (!gone[k])
                continue;
            ig_src *src = rw_in_src(c, &b->series[from[k]]);
            if (src) /* counted again by the retry */
                src->d.accepted -= b->series[from[k]].nsamples;
        }
        rw_rc rc = retry_gone(c, b, gone, from, nas, err);
        if (rc != RW_OK)
            return rc;
    }
    st->samples_written += res.samples_written;
    st->samples_deduplicated += res.skipped;
    rw_counter_add(ig->ha_skipped, res.skipped);
    rw_counter_add(ig->samples_written, res.samples_written);
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        st->samples_rejected += res.rejected[r];
        rw_counter_add(ig->samples_rejected[r], res.rejected[r]);
    }
    if (c->retry)
        return RW_OK; /* the rest is the request's, counted once by its first pass */
    size_t nmd = valid_metadata(c, b);
    if (nmd) {
        rw_err merr;
        rw_err_init(&merr);
        rw_rc mrc = ig->appender.ops->put_metadata(ig->appender.ctx, b->metadata, nmd, &merr);
        if (mrc == RW_OK) {
            st->metadata_written = nmd;
        } else if (mrc == RW_LIMIT) {
            st->metadata_rejected += nmd; /* an upper bound: the store says how many */
            rw_in_reason(c, "%s", merr.msg);
        } else {
            /* not stored = not acknowledged: 503, the sender retries (the
             * store keeps what it held before) */
            rw_warn("ingest: storing %zu metadata entries failed: %s", nmd, merr.msg);
            return rw_err_set(err, mrc, "%s", merr.msg);
        }
    }
    rw_counter_add(ig->series_invalid, st->series_rejected);
    rw_counter_add(ig->histograms_rejected, st->histograms_rejected);
    rw_counter_add(ig->exemplars_dropped, st->exemplars_dropped);
    rw_counter_add(ig->metadata_written, st->metadata_written);
    return RW_OK;
}

static rw_rc run(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    cache_lookup(c, b);
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        /* a retry's samples were counted against the rate by the first pass */
        if (c->retry && stages[i].fn == rw_in_stage_rate)
            continue;
        rw_rc rc = stages[i].fn(c, b, err);
        if (rc != RW_OK)
            return rc;
    }
    return append(c, b, err);
}

rw_rc rw_in_run_pipeline(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    return run(c, b, err);
}
