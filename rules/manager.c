/* manager.c - the running rule engine (rules.h): loading the configured rule
 * files, one scheduler thread per group, reload, and the per-group
 * self-metrics.
 *
 * Scheduling follows Prometheus: a group evaluates at slots
 * `k * interval + offset`, where offset is a stable hash of the group's file
 * and name, so groups spread over their interval and keep their phase across
 * restarts. The first evaluation is at the first slot after start. A group
 * that falls behind (an evaluation longer than its interval) evaluates the
 * latest slot and counts the skipped ones as missed instead of queueing.
 * After the first start, groups evaluate twice, then restore `for` state from
 * ALERTS_FOR_STATE (the recording rules alerts depend on have had a chance to
 * run).
 *
 * Reload: every file is loaded first, all or nothing. An unchanged group
 * (same file, name, interval, limit, offset and rules) keeps running
 * untouched; a changed group is stopped and its replacement inherits the
 * state of rules that still exist (alerts with their activeAt, the series
 * written last, counters); a removed group keeps running for two intervals
 * without evaluating, then marks its series stale (unless rwgate stops
 * first), which leaves time for a renamed rule elsewhere to take over.
 *
 * Locks: reload_mu serialises reconfigure and close; list_lock guards the
 * group list for readers (API, /metrics), held for writing only while the
 * list pointer is swapped, so readers never wait on a reload's joins. */
#include "rules_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "core/timeutil.h"

#define STOP_NOW 1
#define STOP_RETIRE 2

struct rw_rules {
    rules_ctx ctx;
    rw_metrics *metrics;
    pthread_mutex_t reload_mu;
    pthread_rwlock_t list_lock;
    rw_group **groups; /* sorted by file, then name */
    size_t ngroups;
    rw_group **retiring; /* removed groups waiting to mark their series stale */
    size_t nretiring;
    int loaded_once;   /* groups created after the first load do not restore */
    int64_t default_interval_ms;

    /* at most `slots` groups evaluate at once (rules.max_concurrent_groups):
       evaluation competes with ingestion for the CPUs, and a burst of groups
       due together must not take them all */
    pthread_mutex_t slot_mu;
    pthread_cond_t slot_cv;
    int slots_free;

    /* the syncer: makes rule results durable after group evaluations */
    pthread_t syncer;
    int syncer_started;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    int sync_wanted, sync_stop; /* guarded by sync_mu */
    rw_counter *sync_failures;
};

/* ---- durability of rule results ---- */

static void request_sync(void *ctx)
{
    rw_rules *r = ctx;
    pthread_mutex_lock(&r->sync_mu);
    r->sync_wanted = 1;
    pthread_cond_signal(&r->sync_cv);
    pthread_mutex_unlock(&r->sync_mu);
}

/* One thread for all groups: requests that arrive while a commit runs are
 * covered by the next one, so a burst of group evaluations costs one or two
 * commits, and no group waits for the disk. */
static void *syncer_main(void *arg)
{
    rw_rules *r = arg;
    pthread_mutex_lock(&r->sync_mu);
    for (;;) {
        while (!r->sync_wanted && !r->sync_stop)
            pthread_cond_wait(&r->sync_cv, &r->sync_mu);
        if (!r->sync_wanted && r->sync_stop)
            break;
        r->sync_wanted = 0;
        pthread_mutex_unlock(&r->sync_mu);
        rw_err err;
        rw_err_init(&err);
        const rw_appender *ap = &r->ctx.appender;
        if (ap->ops->sync(ap->ctx, &err) != RW_OK) {
            /* the store keeps the data pending and retries; say so */
            rw_counter_add(r->sync_failures, 1);
            rw_warn("rules: results not yet durable: %s", err.msg);
        }
        pthread_mutex_lock(&r->sync_mu);
    }
    pthread_mutex_unlock(&r->sync_mu);
    return NULL;
}

/* ---- scheduler thread ---- */

/* Sleeps until wall-clock time t; 0 when asked to stop (any mode). */
static int wait_until(rw_group *g, int64_t t)
{
    pthread_mutex_lock(&g->run_mu);
    for (;;) {
        if (g->stop)
            break;
        int64_t now = rw_now_ms();
        if (now >= t)
            break;
        struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (long)(t % 1000) * 1000000L};
        pthread_cond_timedwait(&g->run_cond, &g->run_mu, &ts);
    }
    int stop = g->stop;
    pthread_mutex_unlock(&g->run_mu);
    return !stop;
}

/* The latest slot that is due, counting the ones skipped since prev. */
static int64_t next_slot(rw_group *g, int64_t prev)
{
    int64_t now = rw_now_ms();
    int64_t missed = (now - prev) / g->interval_ms - 1;
    if (missed > 0) {
        atomic_fetch_add(&g->missed, (uint64_t)missed);
        atomic_fetch_add(&g->iterations, (uint64_t)missed);
    } else {
        missed = 0;
    }
    return prev + (missed + 1) * g->interval_ms;
}

static void retire(rw_group *g)
{
    /* wait two intervals so a renamed rule writes its series first */
    int64_t until = rw_now_ms() + 2 * g->interval_ms;
    int64_t stopped_at = rw_now_ms();
    pthread_mutex_lock(&g->run_mu);
    while (g->stop != STOP_NOW && rw_now_ms() < until) {
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (long)(until % 1000) * 1000000L};
        pthread_cond_timedwait(&g->run_cond, &g->run_mu, &ts);
    }
    int now_stop = g->stop == STOP_NOW;
    pthread_mutex_unlock(&g->run_mu);
    if (!now_stop)
        rules_group_mark_all_stale(g, stopped_at);
}

/* A group's evaluation under the concurrency bound. Its timestamp is its
 * slot whatever the wait (data is read at slot - offset), and the wait is
 * not part of its evaluation time. */
static void eval_bounded(rw_group *g, int64_t slot)
{
    rw_rules *r = g->manager;
    pthread_mutex_lock(&r->slot_mu);
    while (r->slots_free <= 0)
        pthread_cond_wait(&r->slot_cv, &r->slot_mu);
    r->slots_free--;
    pthread_mutex_unlock(&r->slot_mu);
    rules_group_eval(g, slot);
    pthread_mutex_lock(&r->slot_mu);
    r->slots_free++;
    pthread_cond_signal(&r->slot_cv);
    pthread_mutex_unlock(&r->slot_mu);
}

static void *group_thread(void *arg)
{
    rw_group *g = arg;
    int64_t slot = rules_group_slot(g, rw_now_ms()) + g->interval_ms;
    if (!wait_until(g, slot))
        goto out;
    eval_bounded(g, slot);
    if (g->should_restore) {
        if (!wait_until(g, slot + g->interval_ms))
            goto out;
        slot = next_slot(g, slot);
        eval_bounded(g, slot);
        rules_group_restore(g, rw_now_ms());
    }
    while (wait_until(g, slot + g->interval_ms)) {
        slot = next_slot(g, slot);
        eval_bounded(g, slot);
    }
out:
    pthread_mutex_lock(&g->run_mu);
    int mode = g->stop;
    pthread_mutex_unlock(&g->run_mu);
    if (mode == STOP_RETIRE)
        retire(g);
    atomic_store(&g->finished, 1);
    return NULL;
}

static int start_group(rw_group *g)
{
    if (pthread_create(&g->thread, NULL, group_thread, g) != 0)
        return -1;
    g->thread_started = 1;
    return 0;
}

static void signal_stop(rw_group *g, int mode)
{
    pthread_mutex_lock(&g->run_mu);
    if (g->stop != STOP_NOW)
        g->stop = mode;
    pthread_cond_broadcast(&g->run_cond);
    pthread_mutex_unlock(&g->run_mu);
}

static void join_group(rw_group *g)
{
    if (g->thread_started) {
        pthread_join(g->thread, NULL);
        g->thread_started = 0;
    }
}

/* ---- loading ---- */

static int cmp_group(const void *a, const void *b)
{
    const rw_group *x = *(rw_group *const *)a, *y = *(rw_group *const *)b;
    int c = strcmp(x->def->file, y->def->file);
    return c ? c : strcmp(x->def->name, y->def->name);
}

static void free_group_list(rw_group **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rules_group_free(v[i]);
    free(v);
}

/* Loads every file the globs name into new (not started) groups. */
static rw_rc load_groups(rw_rules *r, const rw_rules_opts *o, rw_group ***out, size_t *nout,
                         rw_err *err)
{
    char **files = NULL;
    size_t nfiles = 0;
    rw_rc rc = rules_glob(o->rule_files, o->nrule_files, o->base_dir, &files, &nfiles, err);
    if (rc != RW_OK)
        return rc;
    rules_diag diag = {0};
    rw_rule_file **loaded = calloc(nfiles + 1, sizeof *loaded);
    if (!loaded) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nfiles; i++)
        rules_file_load(files[i], &diag, &loaded[i]);
    if (diag.nerrors) {
        rw_buf b;
        rw_buf_init(&b, RW_ERR_MSG - 1);
        size_t shown = 0;
        for (size_t i = 0; i < diag.n; i++) {
            if (diag.is_warning[i])
                continue;
            rw_error("rules: %s", diag.msg[i]);
            if (shown++)
                rw_buf_puts(&b, "; ");
            rw_buf_puts(&b, diag.msg[i]);
        }
        rc = rw_err_set(err, RW_BADREQ, "invalid rule files (%zu errors): %s", diag.nerrors,
                        b.p ? b.p : "");
        rw_buf_free(&b);
        goto done;
    }
    for (size_t i = 0; i < diag.n; i++)
        rw_warn("rules: %s", diag.msg[i]);
    size_t total = 0;
    for (size_t i = 0; i < nfiles; i++)
        total += loaded[i]->ngroups;
    rw_group **gs = calloc(total + 1, sizeof *gs);
    if (!gs) {
        rc = rw_err_set(err, RW_NOMEM, "out of memory");
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < nfiles && rc == RW_OK; i++) {
        rw_rule_file *f = loaded[i];
        for (size_t k = 0; k < f->ngroups; k++) {
            rw_group_def *def = malloc(sizeof *def);
            if (!def) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
            *def = f->groups[k];
            memset(&f->groups[k], 0, sizeof f->groups[k]);
            rw_group *g = rules_group_new(def, o->evaluation_interval_ms, &r->ctx);
            if (!g) {
                rules_group_def_free(def);
                free(def);
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
            g->manager = r;
            gs[n++] = g;
        }
    }
    if (rc != RW_OK) {
        free_group_list(gs, n);
        goto done;
    }
    qsort(gs, n, sizeof *gs, cmp_group);
    *out = gs;
    *nout = n;
done:
    for (size_t i = 0; i < nfiles; i++) {
        if (loaded)
            rules_file_free(loaded[i]);
        free(files[i]);
    }
    free(loaded);
    free(files);
    rules_diag_free(&diag);
    return rc;
}

static rules_env *env_from_opts(const rw_rules_opts *o)
{
    return rules_env_new(o->external_labels, o->nexternal, o->external_url, o->query_offset_ms);
}

/* ---- metrics ---- */

static void label_escaped(rw_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            rw_buf_putc(b, '\\');
        if (*s == '\n') {
            rw_buf_puts(b, "\\n");
            continue;
        }
        rw_buf_putc(b, *s);
    }
}

enum { MV_EVALS, MV_FAILS, MV_ITER, MV_MISSED, MV_INTERVAL, MV_DURATION, MV_LASTEVAL,
       MV_SAMPLES, MV_RULES, MV__N };

static const struct {
    const char *name, *type, *help;
} metric_defs[MV__N] = {
    {"rwgate_rule_evaluations_total", "counter", "The total number of rule evaluations."},
    {"rwgate_rule_evaluation_failures_total", "counter",
     "The total number of rule evaluation failures."},
    {"rwgate_rule_group_iterations_total", "counter",
     "The total number of scheduled rule group evaluations, whether executed or missed."},
    {"rwgate_rule_group_iterations_missed_total", "counter",
     "The total number of rule group evaluations missed due to slow rule group evaluation."},
    {"rwgate_rule_group_interval_seconds", "gauge", "The interval of a rule group."},
    {"rwgate_rule_group_last_duration_seconds", "gauge",
     "The duration of the last rule group evaluation."},
    {"rwgate_rule_group_last_evaluation_timestamp_seconds", "gauge",
     "The timestamp of the last rule group evaluation in seconds."},
    {"rwgate_rule_group_last_evaluation_samples", "gauge",
     "The number of samples returned during the last rule group evaluation."},
    {"rwgate_rule_group_rules", "gauge", "The number of rules."},
};

static void collect(void *ctx, rw_buf *out)
{
    rw_rules *r = ctx;
    pthread_rwlock_rdlock(&r->list_lock);
    for (int m = 0; m < MV__N; m++) {
        rw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", metric_defs[m].name,
                      metric_defs[m].help, metric_defs[m].name, metric_defs[m].type);
        for (size_t i = 0; i < r->ngroups; i++) {
            rw_group *g = r->groups[i];
            double v = 0;
            pthread_mutex_lock(&g->mu);
            switch (m) {
            case MV_EVALS: v = (double)atomic_load(&g->evaluations); break;
            case MV_FAILS: v = (double)atomic_load(&g->failures); break;
            case MV_ITER: v = (double)atomic_load(&g->iterations); break;
            case MV_MISSED: v = (double)atomic_load(&g->missed); break;
            case MV_INTERVAL: v = (double)g->interval_ms / 1000.0; break;
            case MV_DURATION: v = g->last_duration_s; break;
            case MV_LASTEVAL:
                v = g->last_eval_wall_ms == RW_TIME_UNSET ? 0 : (double)g->last_eval_wall_ms / 1e3;
                break;
            case MV_SAMPLES: v = (double)g->last_samples; break;
            case MV_RULES: v = (double)g->nrules; break;
            }
            pthread_mutex_unlock(&g->mu);
            rw_buf_printf(out, "%s{rule_group=\"", metric_defs[m].name);
            label_escaped(out, g->key);
            rw_buf_printf(out, "\"} %.17g\n", v);
        }
    }
    pthread_rwlock_unlock(&r->list_lock);
}

/* ---- public ---- */

rw_rules *rw_rules_open(const rw_rules_opts *o, rw_err *err)
{
    if (!o->engine || !o->appender.ops || !o->querier.ops) {
        rw_err_set(err, RW_INTERNAL, "rules: engine, appender and querier are required");
        return NULL;
    }
    rw_rules *r = calloc(1, sizeof *r);
    if (!r) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    r->ctx.engine = o->engine;
    r->ctx.appender = o->appender;
    r->ctx.querier = o->querier;
    r->ctx.timeout_ms = o->timeout_ms;
    r->ctx.max_samples = o->max_samples;
    r->ctx.outage_tolerance_ms = o->outage_tolerance_ms > 0 ? o->outage_tolerance_ms : 3600000;
    r->ctx.for_grace_period_ms = o->for_grace_period_ms > 0 ? o->for_grace_period_ms : 600000;
    r->ctx.resend_delay_ms = o->resend_delay_ms > 0 ? o->resend_delay_ms : 60000;
    r->ctx.notify = o->notify;
    r->ctx.notify_ctx = o->notify_ctx;
    pthread_mutex_init(&r->ctx.env_mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    pthread_rwlock_init(&r->list_lock, NULL);
    pthread_mutex_init(&r->sync_mu, NULL);
    pthread_cond_init(&r->sync_cv, NULL);
    pthread_mutex_init(&r->slot_mu, NULL);
    pthread_cond_init(&r->slot_cv, NULL);
    r->slots_free = o->max_concurrent_groups > 0 ? o->max_concurrent_groups : 1;
    r->metrics = o->metrics;
    r->sync_failures = rw_metrics_counter(r->metrics, "rwgate_rule_results_sync_failures_total",
                                          NULL, "Times rule results could not be made durable "
                                                "after an evaluation (the store retries).");
    if (o->appender.ops->append_nowait && o->appender.ops->sync &&
        pthread_create(&r->syncer, NULL, syncer_main, r) == 0) {
        r->syncer_started = 1;
        r->ctx.request_sync = request_sync;
        r->ctx.sync_ctx = r;
    }
    r->ctx.env = env_from_opts(o);
    if (!r->ctx.env) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        rw_rules_close(r);
        return NULL;
    }
    if (rw_rules_reconfigure(r, o, err) != RW_OK) {
        rw_rules_close(r);
        return NULL;
    }
    rw_metrics_add_collector(r->metrics, collect, r);
    return r;
}

static void reap_retired(rw_rules *r, int all)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nretiring; i++) {
        rw_group *g = r->retiring[i];
        if (all || atomic_load(&g->finished)) {
            signal_stop(g, STOP_NOW);
            join_group(g);
            rules_group_free(g);
        } else {
            r->retiring[k++] = g; /* still waiting to mark its series stale */
        }
    }
    r->nretiring = k;
}

rw_rc rw_rules_reconfigure(rw_rules *r, const rw_rules_opts *o, rw_err *err)
{
    pthread_mutex_lock(&r->reload_mu);
    rw_group **ng = NULL;
    size_t nn = 0;
    rw_rc rc = load_groups(r, o, &ng, &nn, err);
    if (rc != RW_OK) {
        pthread_mutex_unlock(&r->reload_mu);
        return rc;
    }
    rules_env *env = env_from_opts(o);
    /* read by group threads between evaluations; plain int64 stores */
    if (o->outage_tolerance_ms > 0)
        r->ctx.outage_tolerance_ms = o->outage_tolerance_ms;
    if (o->for_grace_period_ms > 0)
        r->ctx.for_grace_period_ms = o->for_grace_period_ms;
    if (o->resend_delay_ms > 0)
        r->ctx.resend_delay_ms = o->resend_delay_ms;
    rw_group **removed = calloc(r->ngroups + 1, sizeof *removed);
    rw_group **replaced = calloc(r->ngroups + 1, sizeof *replaced);
    if (!env || !removed || !replaced) {
        rules_env_unref(env);
        free(removed);
        free(replaced);
        free_group_list(ng, nn);
        pthread_mutex_unlock(&r->reload_mu);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    /* the environment first, so kept groups pick it up at their next run */
    pthread_mutex_lock(&r->ctx.env_mu);
    rules_env *oldenv = r->ctx.env;
    r->ctx.env = env;
    pthread_mutex_unlock(&r->ctx.env_mu);
    rules_env_unref(oldenv);

    size_t nreplaced = 0, kept = 0, changed = 0, added = 0;
    rw_group **old = r->groups;
    size_t nold = r->ngroups;
    unsigned char *old_used = calloc(nold + 1, 1);
    for (size_t i = 0; i < nn; i++) {
        rw_group *g = ng[i], *og = NULL;
        size_t oi = 0;
        for (size_t k = 0; k < nold; k++)
            if (strcmp(old[k]->key, g->key) == 0) {
                og = old[k];
                oi = k;
                break;
            }
        if (og && old_used)
            old_used[oi] = 1;
        if (og && og->interval_ms == g->interval_ms && rules_group_def_equal(og->def, g->def)) {
            rules_group_free(g);
            ng[i] = og;
            kept++;
            continue;
        }
        g->should_restore = !r->loaded_once;
        for (size_t k = 0; k < g->nrules; k++)
            g->rules[k].restored = !g->should_restore;
        if (og) {
            signal_stop(og, STOP_NOW);
            join_group(og);
            rules_group_copy_state(g, og);
            replaced[nreplaced++] = og;
            changed++;
        } else {
            added++;
        }
        if (start_group(g) != 0)
            rw_error("rules: cannot start a thread for group \"%s\"", g->def->name);
    }
    size_t nremoved = 0;
    for (size_t k = 0; k < nold; k++)
        if (!old_used || !old_used[k])
            removed[nremoved++] = old[k];
    free(old_used);

    pthread_rwlock_wrlock(&r->list_lock);
    r->groups = ng;
    r->ngroups = nn;
    pthread_rwlock_unlock(&r->list_lock);
    free(old);

    for (size_t i = 0; i < nreplaced; i++)
        rules_group_free(replaced[i]);
    free(replaced);
    if (nremoved) {
        rw_group **nr = realloc(r->retiring, (r->nretiring + nremoved) * sizeof *nr);
        for (size_t i = 0; i < nremoved; i++) {
            signal_stop(removed[i], STOP_RETIRE);
            if (nr)
                nr[r->nretiring++] = removed[i];
        }
        if (nr)
            r->retiring = nr;
    }
    free(removed);
    reap_retired(r, 0);
    r->default_interval_ms = o->evaluation_interval_ms;
    if (r->loaded_once || nn)
        rw_info("rules: %zu groups loaded (%zu unchanged, %zu changed, %zu new, %zu removed)",
                nn, kept, changed, added, nremoved);
    r->loaded_once = 1;
    pthread_mutex_unlock(&r->reload_mu);
    return RW_OK;
}

void rw_rules_counts(rw_rules *r, size_t *ngroups, size_t *nrules)
{
    pthread_rwlock_rdlock(&r->list_lock);
    size_t n = 0;
    for (size_t i = 0; i < r->ngroups; i++)
        n += r->groups[i]->nrules;
    if (ngroups)
        *ngroups = r->ngroups;
    if (nrules)
        *nrules = n;
    pthread_rwlock_unlock(&r->list_lock);
}

void rw_rules_close(rw_rules *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->reload_mu);
    for (size_t i = 0; i < r->ngroups; i++)
        signal_stop(r->groups[i], STOP_NOW);
    for (size_t i = 0; i < r->nretiring; i++)
        signal_stop(r->retiring[i], STOP_NOW);
    for (size_t i = 0; i < r->ngroups; i++)
        join_group(r->groups[i]);
    reap_retired(r, 1);
    pthread_mutex_unlock(&r->reload_mu);
    if (r->syncer_started) {
        /* a last commit for the last evaluations, then stop */
        pthread_mutex_lock(&r->sync_mu);
        r->sync_stop = 1;
        pthread_cond_signal(&r->sync_cv);
        pthread_mutex_unlock(&r->sync_mu);
        pthread_join(r->syncer, NULL);
    }
    pthread_mutex_destroy(&r->sync_mu);
    pthread_cond_destroy(&r->sync_cv);
    pthread_mutex_destroy(&r->slot_mu);
    pthread_cond_destroy(&r->slot_cv);
    free_group_list(r->groups, r->ngroups);
    free(r->retiring);
    rules_env_unref(r->ctx.env);
    pthread_mutex_destroy(&r->ctx.env_mu);
    pthread_mutex_destroy(&r->reload_mu);
    pthread_rwlock_destroy(&r->list_lock);
    free(r);
}

/* ---- access for the API (api.c) ---- */

void rules_manager_read_lock(rw_rules *r, rw_group ***groups, size_t *n)
{
    pthread_rwlock_rdlock(&r->list_lock);
    *groups = r->groups;
    *n = r->ngroups;
}

void rules_manager_read_unlock(rw_rules *r) { pthread_rwlock_unlock(&r->list_lock); }
