/* test_store_size.c - bytes per sample on disk for realistic scrape data:
 * 2,000 series from 100 targets scraped every 15 s with +-3 ms jitter for
 * six hours, sent in remote-write sized batches, in two profiles:
 *   kube-state-metrics-like: 85% constant (status, info, spec gauges), 10%
 *     low-rate counters (mostly unchanged, sometimes +1..5), 5% busy
 *     counters (+1..40 every scrape);
 *   etcd-like: 60% constant (up, has_leader, idle histogram buckets), 20%
 *     low-rate counters, 10% busy counters, 5% byte gauges that move now and
 *     then, 5% noisy float gauges (full-entropy mantissas: the worst case for
 *     XOR coding, ~8.5 bytes/sample on their own).
 * The store is closed (final checkpoint + vacuum) and the files measured.
 * Prints the figures; asserts loose bounds and that the data reads back. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/labels.h"
#include "store/store.h"
#include "test.h"

enum { TARGETS = 100, PER_TARGET = 20, NSER = TARGETS * PER_TARGET, HOURS = 6, BATCH = 4 };

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t dir_bytes(const char *dir)
{
    uint64_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return n;
}

typedef struct ser {
    char name[48], inst[24];
    rw_label l[3];
    uint64_t hash;
    int kind; /* 0 constant, 1 busy counter, 2 byte gauge, 3 noisy gauge, 4 slow counter */
    double v;
} ser;

static void step(ser *s)
{
    switch (s->kind) {
    case 1: s->v += (double)(rnd() % 40); break;
    case 2: if (rnd() % 8 == 0) s->v += (double)((int64_t)(rnd() % 8192) - 4096) * 4096; break;
    case 3: s->v = (double)(rnd() % 100000) / 1000.0; break;
    case 4: if (rnd() % 10 < 3) s->v += (double)(1 + rnd() % 5); break;
    default: break;
    }
}

static double run_profile(const char *profile, const int *kinds)
{
    static const char *const names[] = {"up", "etcd_server_has_leader", "kube_pod_status_ready",
                                        "etcd_disk_wal_fsync_seconds_count", "rest_client_requests_total",
                                        "process_resident_memory_bytes", "etcd_network_peer_round_trip_seconds"};
    char *dir = strdup("/tmp/rwstore-size-XXXXXX");
    dir = mkdtemp(dir);
    rw_store_opts o = {.dir = dir, .nshards = 4};
    rw_err e;
    rw_store *st = rw_store_open(&o, &e);
    CHECK(st != NULL);
    if (!st)
        return 99;
    ser *ss = calloc(NSER, sizeof *ss);
    for (int i = 0; i < NSER; i++) {
        ser *s = &ss[i];
        int j = i % PER_TARGET;
        s->kind = kinds[j];
        snprintf(s->name, sizeof s->name, "%s_%d",
                 names[s->kind == 0 ? j % 3 : s->kind == 1 || s->kind == 4 ? 3 + j % 2 : s->kind == 2 ? 5 : 6], j);
        snprintf(s->inst, sizeof s->inst, "10.0.%d.%d:2379", i / PER_TARGET / 250, i / PER_TARGET % 250);
        s->l[0] = (rw_label){"__name__", s->name};
        s->l[1] = (rw_label){"instance", s->inst};
        s->l[2] = (rw_label){"job", "etcd"};
        s->hash = rw_labels_hash(s->l, 3);
        s->v = s->kind == 0 ? 1 : s->kind == 2 ? 2.5e8 : 0;
    }
    const int scrapes = HOURS * 3600 / 15;
    int64_t *tt = calloc(TARGETS, sizeof *tt);
    rw_append_series *as = calloc(NSER, sizeof *as);
    rw_sample *smp = calloc((size_t)NSER * BATCH, sizeof *smp);
    uint64_t total = 0;
    int ok = 1;
    for (int sc = 0; sc < scrapes; sc += BATCH) {
        int nb = scrapes - sc < BATCH ? scrapes - sc : BATCH;
        for (int i = 0; i < NSER; i++) {
            for (int b = 0; b < nb; b++) {
                int tg = i / PER_TARGET;
                /* all series of a target share the scrape timestamp */
                int64_t t = 1700000000000LL + (int64_t)(sc + b) * 15000 + tg * 97 +
                            (int64_t)((uint64_t)(tg * 7919 + sc + b) * 2654435761u % 7) - 3;
                (void)tt;
                step(&ss[i]);
                smp[(size_t)i * BATCH + b] = (rw_sample){t, ss[i].v};
            }
            as[i] = (rw_append_series){.labels = ss[i].l, .nlabels = 3, .hash = ss[i].hash,
                                       .samples = &smp[(size_t)i * BATCH], .nsamples = (size_t)nb};
        }
        rw_append_result r = {0};
        ok &= rw_store_append(st, as, NSER, &r, &e) == RW_OK;
        ok &= r.samples_written == (uint64_t)NSER * (uint64_t)nb;
        total += r.samples_written;
    }
    CHECK(ok);
    rw_store_stats s;
    rw_store_get_stats(st, &s);
    uint64_t live = s.db_bytes;
    rw_store_close(st);
    uint64_t bytes = dir_bytes(dir);
    double bps = (double)bytes / (double)total;
    printf("size, %s: %llu samples, %d series, %d h of 15s scrapes: %llu bytes on disk after close "
           "= %.3f bytes/sample (%llu bytes while open, before the final checkpoint)\n",
           profile, (unsigned long long)total, NSER, HOURS, (unsigned long long)bytes, bps,
           (unsigned long long)live);

    /* and it reads back */
    st = rw_store_open(&o, &e);
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_EQ, "job", "etcd", &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n;
    CHECK_INT(rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, NSER);
    uint64_t got = 0;
    for (size_t i = 0; i < n; i++)
        got += out[i].n;
    CHECK_INT(got, total);
    rw_matcher_free(&m);
    rw_arena_free(a);
    rw_store_close(st);
    free(ss);
    free(tt);
    free(as);
    free(smp);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (getenv("RW_KEEP")) /* keep the files for inspection */
        printf("kept %s\n", dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(dir);
    return bps;
}

/* kinds: 0 constant, 1 busy counter, 2 byte gauge, 3 noisy gauge, 4 slow counter */
static void test_size(void)
{
    static const int ksm[PER_TARGET] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 1};
    static const int etcd[PER_TARGET] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 2, 3};
    double a = run_profile("kube-state-metrics-like", ksm);
    CHECK_MSG(a < 1.6, "%.3f bytes/sample", a);
    double b = run_profile("etcd-like", etcd);
    CHECK_MSG(b < 2.5, "%.3f bytes/sample", b);
}

int main(void)
{
    RUN(test_size);
    TEST_DONE();
}
