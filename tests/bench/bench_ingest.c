/* bench_ingest.c - in-process micro-benchmark of the write path: snappy +
 * decode + validation + hashing + rw_store_append (group commit included),
 * without HTTP. It builds etcd-like remote-write 1.0 requests as Prometheus
 * sends them (one sample per TimeSeries, full label sets, <= 2000 samples per
 * request, 15 s scrapes with millisecond jitter, ~60% constant series) and
 * reports samples/s and ns/sample. On a shared machine compare builds by
 * instruction counts instead:
 *   valgrind --tool=callgrind build/bench_ingest 2000 20
 * usage: bench_ingest [SERIES] [ROUNDS] */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/timeutil.h"
#include "core/cfg.h"
#include "ingest/ingest.h"
#include "proto/remote.pb-c.h"
#include "store/store.h"
#include "../unit/support/tmpdir.h"

#define PER_REQ 2000

typedef struct req {
    char *body;
    size_t len;
} req;

int main(int argc, char **argv)
{
    int nseries = argc > 1 ? atoi(argv[1]) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 40;
    char *vals = malloc((size_t)nseries * 3 * 32);
    const char *metric[] = {"etcd_server_proposals_committed_total", "etcd_mvcc_db_total_size_in_bytes",
                            "grpc_server_handled_total", "etcd_disk_wal_fsync_duration_seconds_bucket"};
    size_t nreq = ((size_t)nseries * (size_t)rounds + PER_REQ - 1) / PER_REQ;
    req *reqs = calloc(nreq, sizeof *reqs);
    Prometheus__TimeSeries *ts = calloc(PER_REQ, sizeof *ts);
    Prometheus__TimeSeries **tsp = calloc(PER_REQ, sizeof *tsp);
    Prometheus__Label *lab = calloc((size_t)PER_REQ * 5, sizeof *lab);
    Prometheus__Label **labp = calloc((size_t)PER_REQ * 5, sizeof *labp);
    Prometheus__Sample *smp = calloc(PER_REQ, sizeof *smp);
    Prometheus__Sample **smpp = calloc(PER_REQ, sizeof *smpp);
    int64_t t0 = rw_now_ms() - (int64_t)rounds * 15000;
    size_t r = 0, k = 0;
    uint32_t rng = 1;
    for (int round = 0; round < rounds; round++) {
        for (int s = 0; s < nseries; s++) {
            char *v = vals + (size_t)s * 96;
            snprintf(v, 32, "rke2-prod-%04d", s / 500);
            snprintf(v + 32, 32, "10.0.%d.%d:2381", (s / 500) % 250, (s / 170) % 3 + 1);
            snprintf(v + 64, 32, "%d", s % 170);
            const char *lv[5][2] = {{"__name__", metric[s % 4]}, {"cluster", v}, {"instance", v + 32},
                                    {"job", "etcd"}, {"series", v + 64}};
            for (int l = 0; l < 5; l++) {
                prometheus__label__init(&lab[k * 5 + l]);
                lab[k * 5 + l].name = (char *)lv[l][0];
                lab[k * 5 + l].value = (char *)lv[l][1];
                labp[k * 5 + l] = &lab[k * 5 + l];
            }
            rng = rng * 1103515245u + 12345u;
            prometheus__sample__init(&smp[k]);
            smp[k].timestamp = t0 + (int64_t)round * 15000 + (int64_t)((rng >> 16) % 7) - 3;
            smp[k].value = s % 10 < 6 ? 1.0 : (double)(round * (s % 97 + 1));
            smpp[k] = &smp[k];
            prometheus__time_series__init(&ts[k]);
            ts[k].n_labels = 5;
            ts[k].labels = &labp[k * 5];
            ts[k].n_samples = 1;
            ts[k].samples = &smpp[k];
            tsp[k] = &ts[k];
            if (++k == PER_REQ || (round == rounds - 1 && s == nseries - 1)) {
                Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
                wr.n_timeseries = k;
                wr.timeseries = tsp;
                size_t n = prometheus__write_request__get_packed_size(&wr);
                uint8_t *raw = malloc(n);
                prometheus__write_request__pack(&wr, raw);
                size_t cl = snappy_max_compressed_length(n);
                reqs[r].body = malloc(cl);
                snappy_compress((char *)raw, n, reqs[r].body, &cl);
                reqs[r].len = cl;
                free(raw);
                r++;
                k = 0;
            }
        }
    }
    char *dir = test_mkdtemp("rwgate-bench-ingest");
    rw_store_opts so = {.dir = dir, .nshards = 2};
    rw_err err;
    rw_err_init(&err);
    rw_store *st = rw_store_open(&so, &err);
    rw_appender ap = rw_store_appender(st);
    rw_ingest_config icfg;
    rw_cfg_defaults(&rw_ingest_config_table, &icfg);
    icfg.max_future_ms = 0; /* the generated samples may be ahead of the clock */
    rw_ingest_opts io = {.appender = &ap, .cfg = &icfg};
    rw_ingest *ig = rw_ingest_new(&io, &err);
    if (!st || !ig) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    uint64_t written = 0;
    int64_t start = rw_mono_ns();
    for (size_t i = 0; i < r; i++) {
        rw_write_stats ws;
        if (rw_ingest_write(ig, RW_PROTO_V1, NULL, reqs[i].body, reqs[i].len, &ws, &err) != RW_OK) {
            fprintf(stderr, "request %zu: %s\n", i, err.msg);
            return 1;
        }
        written += ws.samples_written;
    }
    double secs = (double)(rw_mono_ns() - start) / 1e9;
    printf("%d series x %d rounds: %zu requests, %llu samples in %.3f s: %.0f samples/s, %.0f ns/sample\n",
           nseries, rounds, r, (unsigned long long)written, secs, (double)written / secs,
           secs * 1e9 / (double)written);
    rw_ingest_free(ig);
    rw_store_close(st);
    test_rmtree(dir); /* frees dir */
    return written == (uint64_t)nseries * (uint64_t)rounds ? 0 : 1;
}
