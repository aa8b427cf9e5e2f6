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
 * lock per shard, one group commit) and stores the request's metadata. */
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

static void series_name(const rw_in_series *s, char *out, size_t cap)
{
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
        if (rw_in_validate_series(c->cfg, s, &verr) != RW_OK) {
            char lbl[200];
            series_name(s, lbl, sizeof lbl);
            rw_in_reason(c, "series %s: %s", lbl, verr.msg);
            c->st->series_rejected++;
            c->st->samples_rejected += s->nsamples;
            s->nsamples = 0;
            continue;
        }
        size_t keep = 0;
        for (size_t k = 0; k < s->nsamples; k++) {
            if (s->samples[k].t > future_limit) {
                if (!future) {
                    char lbl[200];
                    series_name(s, lbl, sizeof lbl);
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
        if (s->nsamples && rw_in_set_label(c->a, s, label, c->tenant) != RW_OK)
            return rw_err_set(err, RW_LIMIT, "request too complex");
    }
    return RW_OK;
}

static const rw_in_stage stages[] = {
    {"validate", stage_validate},
    {"tenant", stage_tenant},
};

/* ---- sink ---- */

/* Called by the store under its shard lock for every rejected sample: only
 * the first few reasons are formatted, the rest cost a comparison. */
static void on_reject(void *ctx, const rw_append_series *s, size_t i, rw_reject_reason r)
{
    rw_in_ctx *c = ctx;
    if (c->nreasons >= MAX_REASONS)
        return;
    char lbl[256];
    rw_labels_format(s->labels, s->nlabels, lbl, sizeof lbl);
    rw_in_reason(c, "%s: sample at %lld: %s", lbl, (long long)s->samples[i].t,
                 rw_reject_reason_str(r));
}

static rw_rc append(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    rw_ingest *ig = c->ig;
    rw_write_stats *st = c->st;
    rw_append_series *as = rw_arena_alloc(c->a, (b->nseries ? b->nseries : 1) * sizeof *as);
    if (!as)
        return rw_err_set(err, RW_LIMIT, "request too complex");
    size_t nas = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rw_in_series *s = &b->series[i];
        if (!s->nsamples)
            continue;
        as[nas].labels = s->labels;
        as[nas].nlabels = s->nlabels;
        as[nas].hash = s->lens ? rw_labels_hash_lens(s->labels, s->lens, s->nlabels)
                               : rw_labels_hash(s->labels, s->nlabels);
        as[nas].samples = s->samples;
        as[nas].nsamples = s->nsamples;
        nas++;
    }
    rw_append_result res;
    memset(&res, 0, sizeof res);
    res.on_reject = on_reject;
    res.on_reject_ctx = c;
    if (nas) {
        rw_rc rc = rw_append(&ig->appender, as, nas, &res, err);
        if (rc != RW_OK)
            return rc;
    }
    if (b->nmetadata) {
        /* not stored = not acknowledged: 503, the sender retries (the store
         * keeps what it held before) */
        rw_rc rc = ig->appender.ops->put_metadata(ig->appender.ctx, b->metadata, b->nmetadata, err);
        if (rc != RW_OK) {
            rw_warn("ingest: storing %zu metadata entries failed: %s", b->nmetadata, err->msg);
            return rc;
        }
        st->metadata_written = b->nmetadata;
    }
    st->samples_written = res.samples_written;
    for (int r = 0; r < RW_REJ__COUNT; r++) {
        st->samples_rejected += res.rejected[r];
        rw_counter_add(ig->samples_rejected[r], res.rejected[r]);
    }
    rw_counter_add(ig->samples_written, st->samples_written);
    rw_counter_add(ig->series_invalid, st->series_rejected);
    rw_counter_add(ig->histograms_rejected, st->histograms_rejected);
    rw_counter_add(ig->exemplars_dropped, st->exemplars_dropped);
    rw_counter_add(ig->metadata_written, st->metadata_written);
    return RW_OK;
}

rw_rc rw_in_run_pipeline(rw_in_ctx *c, rw_in_batch *b, rw_err *err)
{
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        rw_rc rc = stages[i].fn(c, b, err);
        if (rc != RW_OK)
            return rc;
    }
    return append(c, b, err);
}
