/* bench_clean.c - in-process micro-benchmark of ingest-time cleaning: replays
 * the requests of a shared-benchmark pack (typically the HA-pair pack made
 * by bench_hapack) through rw_ingest_write into a fresh store, with the
 * `ingest:` section of a config file, and reports CPU ns per sample of the
 * calling thread. Compare configs (cleaning on / off) under
 *   valgrind --tool=callgrind build/bench_clean PACK CONFIG [MAXREQ]
 * when the machine is busy: instruction counts do not depend on the load.
 * usage: bench_clean PACK CONFIG.yml [MAXREQ] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/cfg.h"
#include "ingest/ingest.h"
#include "store/store.h"
#include "../unit/support/tmpdir.h"

typedef struct {
    char magic[8];
    uint32_t version, npartitions;
    uint64_t nrequests, index_off, nsamples, nseries;
    int64_t tmin, tmax;
    uint64_t raw_bytes, comp_bytes;
    uint32_t interval_ms, clusters, members, batch;
    uint64_t seed;
    uint8_t pad[128 - 8 - 4 * 2 - 8 * 8 - 4 * 4 - 8];
} pack_header;

typedef struct {
    uint64_t off;
    uint32_t len, raw_len, nsamples, partition;
    int64_t tmin, tmax;
} pack_index;

/* The config's `ingest:` section (the file may hold other sections too:
 * only the ingest keys are read). */
typedef struct top {
    rw_ingest_config ingest;
} top;
static const rw_cfg_key top_keys[] = {
    {"ingest", RW_CFG_SECTION, offsetof(top, ingest), NULL, 0, 0, 0, "", &rw_ingest_config_table,
     NULL},
};
static const rw_cfg_table top_table = RW_CFG_TABLE("bench", top, top_keys, NULL, NULL);

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_clean PACK CONFIG.yml [MAXREQ]\n");
        return 2;
    }
    size_t maxreq = argc > 3 ? (size_t)atol(argv[3]) : (size_t)-1;
    FILE *f = fopen(argv[1], "rb");
    pack_header h;
    if (!f || fread(&h, sizeof h, 1, f) != 1) {
        fprintf(stderr, "bench_clean: cannot read %s\n", argv[1]);
        return 1;
    }
    pack_index *idx = malloc(h.nrequests * sizeof *idx);
    fseek(f, (long)h.index_off, SEEK_SET);
    if (fread(idx, sizeof *idx, h.nrequests, f) != h.nrequests)
        return 1;
    size_t n = h.nrequests < maxreq ? h.nrequests : maxreq;
    char **bodies = calloc(n, sizeof *bodies);
    uint64_t samples = 0;
    for (size_t i = 0; i < n; i++) {
        bodies[i] = malloc(idx[i].len);
        fseek(f, (long)idx[i].off, SEEK_SET);
        if (fread(bodies[i], 1, idx[i].len, f) != idx[i].len)
            return 1;
        samples += idx[i].nsamples;
    }
    fclose(f);
    top cfg;
    rw_err e;
    rw_err_init(&e);
    rw_cfg_defaults(&top_table, &cfg);
    if (rw_cfg_load_file(&top_table, &cfg, argv[2], &e) != RW_OK) {
        fprintf(stderr, "bench_clean: %s\n", e.msg);
        return 1;
    }
    char *dir = test_mkdtemp("rwgate-bench-clean");
    rw_store_opts so = {.dir = dir, .nshards = 2};
    rw_store *st = rw_store_open(&so, &e);
    rw_appender ap = rw_store_appender(st);
    rw_ingest_opts io = {.appender = &ap, .cfg = &cfg.ingest, .data_dir = dir};
    rw_ingest *ig = rw_ingest_new(&io, &e);
    if (!st || !ig) {
        fprintf(stderr, "bench_clean: %s\n", e.msg);
        return 1;
    }
    uint64_t written = 0, dedup = 0, rejected = 0;
    double t0 = cpu_s();
    for (size_t i = 0; i < n; i++) {
        rw_write_stats ws;
        if (rw_ingest_write(ig, RW_PROTO_V1, "", bodies[i], idx[i].len, &ws, &e) != RW_OK) {
            fprintf(stderr, "bench_clean: request %zu: %s\n", i, e.msg);
            return 1;
        }
        written += ws.samples_written;
        dedup += ws.samples_deduplicated;
        rejected += ws.samples_rejected;
    }
    double t1 = cpu_s();
    printf("%s: %zu requests, %llu samples: %.1f ns CPU/sample (this thread; group commits "
           "run on it too), written %llu, deduplicated %llu, rejected %llu\n",
           argv[2], n, (unsigned long long)samples, (t1 - t0) * 1e9 / (double)samples,
           (unsigned long long)written, (unsigned long long)dedup, (unsigned long long)rejected);
    /* how many series the store holds: a check that the run stored what it
       should (one copy of an HA pair's series) */
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_RE, "__name__", ".+", &e);
    rw_arena *qa = rw_arena_new(0, 0);
    rw_series_data *sd;
    size_t ns = 0;
    if (rw_store_select(st, &m, 1, INT64_MIN / 2, INT64_MAX / 2, RW_SELECT_LABELS_ONLY, 0, qa, &sd,
                        &ns, &e) == RW_OK)
        printf("series stored: %zu\n", ns);
    rw_arena_free(qa);
    rw_matcher_free(&m);
    rw_ingest_free(ig);
    rw_store_close(st);
    rw_cfg_free(&top_table, &cfg);
    test_rmtree(dir);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(idx);
    return 0;
}
