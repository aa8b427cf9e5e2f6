/* eval_select.c - where the evaluator meets the store: instant-vector
 * selectors (newest sample in (t - lookback, t], stale markers ending a
 * series), range-vector selectors (raw samples for all windows (t - range, t]
 * of the query, fetched once), and subqueries (the inner expression evaluated
 * at steps aligned to the subquery step, presented as a range vector). Every
 * selector reads the store for the union of the time spans its steps need,
 * whatever the number of steps. Where the caller reduces raw samples to
 * per-step values right away - a range function over a plain selector
 * (func_range.c), a vector selector over several steps - the read goes in
 * batches (rw_sel_iter): labels and series refs first, then the samples of
 * one batch of series at a time in a scratch arena, so a query holds its
 * output and one batch of samples, never every sample its selectors touch;
 * max_samples bounds that (output points plus one batch), not the total
 * read.
 * A matrix selector used any other way (absent_over_time(), the result of
 * an instant query for a range vector) is materialised whole. */
#include "eval_int.h"

#include <math.h>
#include <string.h>

/* Effective times of the steps after @ and offset; returns min and max. */
static void eff_span(const rw_eval_ctx *ctx, rw_at_kind at, int64_t at_ms, int64_t offset,
                     int64_t *mn, int64_t *mx)
{
    *mn = rw_eval_at_time(ctx, at, at_ms, 0) - offset;
    *mx = rw_eval_at_time(ctx, at, at_ms, ctx->nsteps - 1) - offset;
}

static rw_rc do_select(rw_eval_ctx *ctx, const rw_node *n, int64_t mint, int64_t maxt,
                       int flags, rw_series_data **data, size_t *nd)
{
    rw_eval_query *q = ctx->q;
    size_t budget = 0;
    if (q->opts->max_samples) {
        if (q->samples >= q->opts->max_samples)
            return rw_eval_account(ctx, 1);
        budget = q->opts->max_samples - q->samples;
    }
    rw_err serr;
    rw_err_init(&serr);
    rw_rc rc = rw_query_select(q->querier, n->u.sel.matchers, n->u.sel.nmatchers, mint, maxt, flags,
                               budget, q->a, data, nd, &serr);
    if (rc == RW_LIMIT)
        return rw_err_set(q->err, RW_EXEC,
                          "query processing would load too many samples into memory in query "
                          "execution");
    if (rc != RW_OK) {
        rw_err_set(q->err, rc, "expanding series: %s", serr.msg);
        return rc;
    }
    return RW_OK;
}

/* ---- batched reads ---- */

/* Samples per batch the iterator aims at: 16 B each decoded, so a batch
 * takes a few MiB of scratch whatever the number of series selected. */
#define RW_SEL_BATCH_SAMPLES 131072
/* The scratch arena starts small (an instant query of a rule reads a few
 * samples per series) and, when a batch overflows its block, continues with
 * one block of the size that batch took, at most SCRATCH_MAX, reused batch
 * after batch: a 4 MiB block for every selector cost an mmap, its page
 * faults and a munmap per rule expression. */
#define SCRATCH_MIN (64u << 10)
#define SCRATCH_MAX (4u << 20)

static rw_rc limit_error(rw_eval_query *q)
{
    return rw_err_set(q->err, RW_EXEC,
                      "query processing would load too many samples into memory in query "
                      "execution");
}

static rw_rc sel_iter_open(rw_eval_ctx *ctx, const rw_node *n, int64_t mint, int64_t maxt,
                           rw_sel_iter *it)
{
    rw_eval_query *q = ctx->q;
    memset(it, 0, sizeof *it);
    it->ctx = ctx;
    it->mint = mint;
    it->maxt = maxt;
    /* the same budget a whole select would get (do_select) */
    if (q->opts->max_samples) {
        if (q->samples >= q->opts->max_samples)
            return rw_eval_account(ctx, 1);
        it->budget = q->opts->max_samples - q->samples;
    }
    rw_rc rc = do_select(ctx, n, mint, maxt, RW_SELECT_LABELS_ONLY, &it->all, &it->nall);
    if (rc != RW_OK)
        return rc;
    it->batch = 16; /* grows after the first batch: see sel_iter_read */
    it->scratch_block = SCRATCH_MIN;
    if (it->nall && !(it->scratch = rw_arena_new(it->scratch_block, 0)))
        return rw_eval_nomem(ctx);
    return RW_OK;
}

/* Decodes the next batch: *d / *nd (nd 0 at the end), samples in scratch. */
static rw_rc sel_iter_read(rw_sel_iter *it, rw_series_data **d, size_t *nd)
{
    rw_eval_query *q = it->ctx->q;
    *d = NULL;
    *nd = 0;
    if (it->next >= it->nall)
        return RW_OK;
    rw_rc rc = rw_eval_check(it->ctx, "expression evaluation");
    if (rc != RW_OK)
        return rc;
    size_t used = rw_arena_used(it->scratch);
    if (used > it->scratch_block && it->scratch_block < SCRATCH_MAX) {
        size_t nb = used < SCRATCH_MAX ? used : SCRATCH_MAX;
        rw_arena *a = rw_arena_new(nb, 0);
        if (!a)
            return rw_eval_nomem(it->ctx);
        rw_arena_free(it->scratch);
        it->scratch = a;
        it->scratch_block = nb;
    } else {
        rw_arena_reset(it->scratch);
    }
    size_t n = it->nall - it->next;
    if (n > it->batch)
        n = it->batch;
    rw_series_data *b = &it->all[it->next];
    /* max_samples bounds what is held at once: one batch (the previous
     * batch's samples are gone, its per-step results were accounted) */
    size_t cap = it->budget, got = 0;
    rw_err serr;
    rw_err_init(&serr);
    rc = q->querier->ops->read_samples(q->querier->ctx, b, n, it->mint, it->maxt, 0, cap, it->scratch, &got,
                               &serr);
    if (rc == RW_LIMIT)
        return limit_error(q);
    if (rc != RW_OK)
        return rw_err_set(q->err, rc, "expanding series: %s", serr.msg);
    it->decoded += got;
    if (it->budget && got > it->budget)
        return limit_error(q);
    it->next += n;
    /* size the next batch after this one's samples per series */
    size_t per = got / n + 1;
    size_t next = RW_SEL_BATCH_SAMPLES / per;
    it->batch = next < 16 ? 16 : next > 8192 ? 8192 : next;
    *d = b;
    *nd = n;
    return RW_OK;
}

rw_rc rw_matrix_iter_open(rw_eval_ctx *ctx, const rw_node *n, rw_sel_iter *it, rw_eval_value *m)
{
    int64_t mn, mx, range = n->u.sel.range_ms;
    eff_span(ctx, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms, &mn, &mx);
    memset(m, 0, sizeof *m);
    m->type = RW_VAL_MATRIX;
    m->range_ms = range;
    m->offset_ms = n->u.sel.offset_ms;
    m->pinned = n->u.sel.at != RW_AT_NONE;
    m->pin_ms = rw_eval_at_time(ctx, n->u.sel.at, n->u.sel.at_ms, 0);
    return sel_iter_open(ctx, n, mn - range + 1, mx, it);
}

rw_rc rw_matrix_iter_next(rw_sel_iter *it, rw_eval_value *m, int *done)
{
    rw_series_data *data;
    size_t nd;
    m->ms = NULL;
    m->nms = 0;
    *done = 0;
    while (!m->nms) {
        rw_rc rc = sel_iter_read(it, &data, &nd);
        if (rc != RW_OK)
            return rc;
        if (!nd) {
            *done = 1;
            return RW_OK;
        }
        if (!(m->ms = rw_arena_alloc(it->scratch, nd * sizeof *m->ms)))
            return rw_eval_nomem(it->ctx);
        for (size_t s = 0; s < nd; s++) {
            rw_series_data *d = &data[s];
            size_t k = 0;
            /* drop stale markers in place: the arrays are ours */
            for (size_t j = 0; j < d->n; j++) {
                if (rw_is_stale_nan(d->v[j]))
                    continue;
                d->t[k] = d->t[j];
                d->v[k] = d->v[j];
                k++;
            }
            if (!k)
                continue;
            rw_eval_mseries *o = &m->ms[m->nms++];
            o->labels = d->labels;
            o->nlabels = d->nlabels;
            o->drop_name = 0;
            o->t = d->t;
            o->v = d->v;
            o->n = k;
            it->kept += k;
        }
    }
    return RW_OK;
}

rw_rc rw_sel_iter_end(rw_sel_iter *it, rw_rc rc)
{
    /* the raw samples are released with the scratch arena: what stays is
     * the caller's per-step output, which the caller accounts */
    rw_arena_free(it->scratch);
    it->scratch = NULL;
    return rc;
}

/* ---- selectors ---- */

/* Fills os with the per-step values of vector selector n over series d;
 * returns whether it has any, *points counts them. */
static int vector_series(rw_eval_ctx *ctx, const rw_node *n, const rw_series_data *d,
                         rw_eval_series *os, size_t *points)
{
    int64_t lookback = ctx->q->opts->lookback_ms;
    size_t j = 0; /* first sample with t > e */
    int any = 0;
    /* without @ the evaluation time is the step's (the common case, in a
       loop over steps x series: no call per step) */
    int at_step = n->u.sel.at == RW_AT_NONE;
    int64_t offset = n->u.sel.offset_ms;
    for (size_t i = 0; i < ctx->nsteps; i++) {
        int64_t e = (at_step ? ctx->ts[i] : rw_eval_at_time(ctx, n->u.sel.at, n->u.sel.at_ms, i)) -
                    offset;
        if (j > 0 && d->t[j - 1] > e)
            j = 0; /* times went back (cannot happen with ascending steps) */
        while (j < d->n && d->t[j] <= e)
            j++;
        if (j == 0)
            continue;
        int64_t st = d->t[j - 1];
        double v = d->v[j - 1];
        if (st <= e - lookback || rw_is_stale_nan(v))
            continue;
        os->ok[i] = 1;
        os->v[i] = v;
        if (os->t)
            os->t[i] = st;
        any = 1;
        (*points)++;
    }
    return any;
}

/* A vector selector into out (a vector), or with sk series by series into
 * sk: one series' arrays, reused (rw_eval_stream). */
static rw_rc vector_select(rw_eval_ctx *ctx, const rw_node *n, int want_ts, rw_eval_value *out,
                           rw_series_sink *sk)
{
    rw_eval_query *q = ctx->q;
    int64_t lookback = q->opts->lookback_ms;
    int64_t mn, mx;
    eff_span(ctx, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms, &mn, &mx);

    /* one evaluation time (an instant query, or @): only the newest sample
       at or before it matters, which the store finds without decoding
       whole chunks; several: read in batches, each series reduced to its
       per-step values before the next batch is decoded */
    int single = mn == mx;
    rw_series_data *data = NULL;
    size_t nd = 0, nall = 0;
    rw_sel_iter it;
    rw_rc rc;
    if (single) {
        rc = do_select(ctx, n, mn - lookback + 1, mx, RW_SELECT_LAST, &data, &nd);
        nall = nd;
    } else {
        rc = sel_iter_open(ctx, n, mn - lookback + 1, mx, &it);
        nall = it.nall;
    }
    if (rc != RW_OK)
        return single ? rc : rw_sel_iter_end(&it, rc);

    rw_eval_series one;
    if (sk) {
        if (!rw_series_new(ctx, &one, NULL, 0, 0))
            rc = rw_eval_nomem(ctx);
    } else {
        memset(out, 0, sizeof *out);
        out->type = RW_VAL_VECTOR;
        out->series = rw_arena_alloc(q->a, (nall ? nall : 1) * sizeof *out->series);
        if (!out->series)
            rc = rw_eval_nomem(ctx);
    }
    size_t points = 0, done = 0;
    while (rc == RW_OK) {
        if (!single && (rc = sel_iter_read(&it, &data, &nd)) != RW_OK)
            break;
        if (!nd)
            break;
        for (size_t s = 0; s < nd && rc == RW_OK; s++, done++) {
            if ((done & 255) == 255 && (rc = rw_eval_check(ctx, "expression evaluation")) != RW_OK)
                break;
            if (sk) {
                one.labels = data[s].labels;
                one.nlabels = data[s].nlabels;
                memset(one.ok, 0, ctx->nsteps);
                if (vector_series(ctx, n, &data[s], &one, &points))
                    rc = sk->put(sk, &one);
                continue;
            }
            rw_eval_series *os = &out->series[out->nseries];
            if (!rw_series_new(ctx, os, data[s].labels, data[s].nlabels, 0) ||
                (want_ts && !(os->t = rw_arena_alloc(q->a, ctx->nsteps * sizeof(int64_t))))) {
                rc = rw_eval_nomem(ctx);
                break;
            }
            if (vector_series(ctx, n, &data[s], os, &points))
                out->nseries++;
        }
        if (single)
            break;
    }
    if (!single) {
        /* account the points below, as for a single select */
        it.kept = 0;
        rc = rw_sel_iter_end(&it, rc);
    }
    if (rc != RW_OK || sk)
        return rc;
    return rw_eval_account(ctx, points);
}

rw_rc rw_eval_vector_selector(rw_eval_ctx *ctx, const rw_node *n, int want_ts, rw_eval_value *out)
{
    return vector_select(ctx, n, want_ts, out, NULL);
}

rw_rc rw_eval_vector_selector_to(rw_eval_ctx *ctx, const rw_node *n, rw_series_sink *sk)
{
    return vector_select(ctx, n, 0, NULL, sk);
}

rw_rc rw_eval_matrix_selector(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_eval_query *q = ctx->q;
    int64_t mn, mx, range = n->u.sel.range_ms;
    eff_span(ctx, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms, &mn, &mx);

    rw_series_data *data = NULL;
    size_t nd = 0;
    rw_rc rc = do_select(ctx, n, mn - range + 1, mx, 0, &data, &nd);
    if (rc != RW_OK)
        return rc;

    memset(out, 0, sizeof *out);
    out->type = RW_VAL_MATRIX;
    out->range_ms = range;
    out->offset_ms = n->u.sel.offset_ms;
    out->pinned = n->u.sel.at != RW_AT_NONE;
    out->pin_ms = rw_eval_at_time(ctx, n->u.sel.at, n->u.sel.at_ms, 0);
    out->ms = rw_arena_alloc(q->a, (nd ? nd : 1) * sizeof *out->ms);
    if (!out->ms)
        return rw_eval_nomem(ctx);
    size_t total = 0;
    for (size_t s = 0; s < nd; s++) {
        rw_series_data *d = &data[s];
        size_t m = 0;
        /* drop stale markers in place: the arrays are ours */
        for (size_t k = 0; k < d->n; k++) {
            if (rw_is_stale_nan(d->v[k]))
                continue;
            d->t[m] = d->t[k];
            d->v[m] = d->v[k];
            m++;
        }
        if (!m)
            continue;
        rw_eval_mseries *o = &out->ms[out->nms++];
        o->labels = d->labels;
        o->nlabels = d->nlabels;
        o->drop_name = 0;
        o->t = d->t;
        o->v = d->v;
        o->n = m;
        total += m;
    }
    return rw_eval_account(ctx, total);
}

void rw_matrix_window(const rw_eval_ctx *ctx, const rw_eval_value *m, const rw_eval_mseries *s,
                      size_t i, size_t *lo, size_t *hi, int64_t *wstart, int64_t *wend)
{
    int64_t e = (m->pinned ? m->pin_ms : ctx->ts[i]) - m->offset_ms;
    int64_t b = e - m->range_ms;
    /* first index with t > b */
    size_t l = 0, h = s->n;
    while (l < h) {
        size_t mid = (l + h) / 2;
        if (s->t[mid] > b)
            h = mid;
        else
            l = mid + 1;
    }
    *lo = l;
    h = s->n;
    while (l < h) {
        size_t mid = (l + h) / 2;
        if (s->t[mid] > e)
            h = mid;
        else
            l = mid + 1;
    }
    *hi = l;
    if (wstart)
        *wstart = b;
    if (wend)
        *wend = e;
}

rw_rc rw_eval_subquery(rw_eval_ctx *ctx, const rw_node *n, rw_eval_value *out)
{
    rw_eval_query *q = ctx->q;
    int64_t step = n->u.subq.step_ms ? n->u.subq.step_ms : q->opts->default_subquery_step_ms;
    int64_t range = n->u.subq.range_ms, offset = n->u.subq.offset_ms;
    int64_t mn, mx;
    if (step <= 0)
        return rw_eval_fail(ctx, RW_EXEC, "subquery step must be positive");
    eff_span(ctx, n->u.subq.at, n->u.subq.at_ms, offset, &mn, &mx);

    /* First inner step: the first multiple of step after (mn - range); C
     * division truncates toward zero like Go's, which this relies on. */
    int64_t x = mn - range;
    int64_t start = step * (x / step);
    if (start <= x)
        start += step;
    size_t nsteps = start > mx ? 0 : (size_t)((mx - start) / step) + 1;

    memset(out, 0, sizeof *out);
    out->type = RW_VAL_MATRIX;
    out->range_ms = range;
    out->offset_ms = offset;
    out->pinned = n->u.subq.at != RW_AT_NONE;
    out->pin_ms = rw_eval_at_time(ctx, n->u.subq.at, n->u.subq.at_ms, 0);
    if (!nsteps)
        return RW_OK;
    rw_rc rc = rw_eval_account(ctx, nsteps);
    if (rc != RW_OK)
        return rc;

    int64_t *ts = rw_arena_alloc(q->a, nsteps * sizeof *ts);
    if (!ts)
        return rw_eval_nomem(ctx);
    for (size_t i = 0; i < nsteps; i++)
        ts[i] = start + (int64_t)i * step;
    rw_eval_ctx sub = {.q = q, .ts = ts, .nsteps = nsteps, .interval = step};
    rw_eval_value inner;
    if ((rc = rw_eval(&sub, n->u.subq.expr, &inner)) != RW_OK)
        return rc;
    if (inner.type == RW_VAL_SCALAR) {
        /* a scalar inner expression becomes one series without labels */
        out->ms = rw_arena_alloc(q->a, sizeof *out->ms);
        if (!out->ms)
            return rw_eval_nomem(ctx);
        rw_eval_mseries *o = &out->ms[0];
        memset(o, 0, sizeof *o);
        o->t = ts;
        o->v = inner.scalar;
        o->n = nsteps;
        out->nms = 1;
        return RW_OK;
    }
    if (inner.type != RW_VAL_VECTOR)
        return rw_eval_fail(ctx, RW_EXEC, "subquery is only allowed on instant vector, got %s",
                            rw_val_type_name(inner.type));
    out->ms = rw_arena_alloc(q->a, (inner.nseries ? inner.nseries : 1) * sizeof *out->ms);
    if (!out->ms)
        return rw_eval_nomem(ctx);
    for (size_t s = 0; s < inner.nseries; s++) {
        rw_eval_series *is = &inner.series[s];
        size_t m = 0;
        for (size_t i = 0; i < nsteps; i++)
            m += is->ok[i];
        if (!m)
            continue;
        rw_eval_mseries *o = &out->ms[out->nms++];
        o->labels = is->labels;
        o->nlabels = is->nlabels;
        o->drop_name = is->drop_name;
        o->t = rw_arena_alloc(q->a, m * sizeof *o->t);
        o->v = rw_arena_alloc(q->a, m * sizeof *o->v);
        if (!o->t || !o->v)
            return rw_eval_nomem(ctx);
        o->n = 0;
        for (size_t i = 0; i < nsteps; i++)
            if (is->ok[i]) {
                o->t[o->n] = ts[i];
                o->v[o->n] = is->v[i];
                o->n++;
            }
    }
    return RW_OK;
}
