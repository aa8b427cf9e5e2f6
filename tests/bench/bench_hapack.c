/* bench_hapack.c - turns a shared-benchmark pack (../shared/bench, pack.h
 * layout) into the same traffic sent by HA pairs: every request is sent
 * twice, by replica "a" and by replica "b" of the cluster's Prometheus pair,
 * each series carrying the external label __replica__, b scraping 2.5 s
 * after a (its timestamps shifted, its values the same: both scrape the same
 * targets). Requests stay in their partitions, a's then b's for each round,
 * so a partition's requests remain in time order per replica. The JSON
 * summary next to it gets the doubled sample and series counts.
 *
 * tests/bench/run_clean.sh uses it to measure ingest-time cleaning (HA
 * dedup with inventory and relabel rules) against the same traffic with
 * cleaning off.
 *   bench_hapack IN.pack OUT.pack */
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/remote.pb-c.h"

typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t npartitions;
    uint64_t nrequests;
    uint64_t index_off;
    uint64_t nsamples;
    uint64_t nseries;
    int64_t tmin, tmax;
    uint64_t raw_bytes;
    uint64_t comp_bytes;
    uint32_t interval_ms;
    uint32_t clusters;
    uint32_t members;
    uint32_t batch;
    uint64_t seed;
    uint8_t pad[128 - 8 - 4 * 2 - 8 * 8 - 4 * 4 - 8];
} pack_header;

typedef struct {
    uint64_t off;
    uint32_t len, raw_len, nsamples, partition;
    int64_t tmin, tmax;
} pack_index;

_Static_assert(sizeof(pack_header) == 128, "header size");
_Static_assert(sizeof(pack_index) == 40, "index size");

#define SHIFT_MS 2500

static int die(const char *m)
{
    fprintf(stderr, "bench_hapack: %s\n", m);
    return 1;
}

/* One replica's copy of a request: labels + __replica__ (sorted in), times
 * shifted. Returns the snappy body (malloc'd). */
static char *replica_body(const Prometheus__WriteRequest *wr, const char *replica, int64_t shift,
                          size_t *clen, size_t *rlen)
{
    size_t n = wr->n_timeseries;
    Prometheus__TimeSeries *ts = calloc(n, sizeof *ts);
    Prometheus__TimeSeries **tsp = calloc(n, sizeof *tsp);
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        nl += wr->timeseries[i]->n_labels + 1;
        ns += wr->timeseries[i]->n_samples;
    }
    Prometheus__Label *lab = calloc(nl, sizeof *lab);
    Prometheus__Label **labp = calloc(nl, sizeof *labp);
    Prometheus__Sample *smp = calloc(ns ? ns : 1, sizeof *smp);
    Prometheus__Sample **smpp = calloc(ns ? ns : 1, sizeof *smpp);
    size_t li = 0, si = 0;
    for (size_t i = 0; i < n; i++) {
        const Prometheus__TimeSeries *in = wr->timeseries[i];
        prometheus__time_series__init(&ts[i]);
        ts[i].labels = &labp[li];
        int put = 0;
        for (size_t k = 0; k <= in->n_labels; k++) {
            /* "__replica__" sorts after "__name__" and before the rest */
            if (!put && (k == in->n_labels || strcmp(in->labels[k]->name, "__replica__") > 0)) {
                prometheus__label__init(&lab[li]);
                lab[li].name = "__replica__";
                lab[li].value = (char *)replica;
                labp[li] = &lab[li];
                li++;
                put = 1;
            }
            if (k < in->n_labels) {
                lab[li] = *in->labels[k];
                labp[li] = &lab[li];
                li++;
            }
        }
        ts[i].n_labels = in->n_labels + 1;
        ts[i].samples = &smpp[si];
        for (size_t k = 0; k < in->n_samples; k++) {
            smp[si] = *in->samples[k];
            smp[si].timestamp += shift;
            smpp[si] = &smp[si];
            si++;
        }
        ts[i].n_samples = in->n_samples;
        tsp[i] = &ts[i];
    }
    Prometheus__WriteRequest out = PROMETHEUS__WRITE_REQUEST__INIT;
    out.n_timeseries = n;
    out.timeseries = tsp;
    *rlen = prometheus__write_request__get_packed_size(&out);
    uint8_t *raw = malloc(*rlen);
    prometheus__write_request__pack(&out, raw);
    *clen = snappy_max_compressed_length(*rlen);
    char *body = malloc(*clen);
    snappy_compress((const char *)raw, *rlen, body, clen);
    free(raw);
    free(ts);
    free(tsp);
    free(lab);
    free(labp);
    free(smp);
    free(smpp);
    return body;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return die("usage: bench_hapack IN.pack OUT.pack");
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out)
        return die("cannot open the packs");
    pack_header h;
    if (fread(&h, sizeof h, 1, in) != 1 || memcmp(h.magic, "RWPACK01", 8))
        return die("not a pack");
    pack_index *idx = malloc(h.nrequests * sizeof *idx);
    pack_index *nidx = malloc(2 * h.nrequests * sizeof *nidx);
    fseek(in, (long)h.index_off, SEEK_SET);
    if (fread(idx, sizeof *idx, h.nrequests, in) != h.nrequests)
        return die("short index");
    pack_header nh = h;
    fwrite(&nh, sizeof nh, 1, out);
    uint64_t off = sizeof nh, raw_total = 0, comp_total = 0;
    size_t ni = 0;
    for (uint64_t r = 0; r < h.nrequests; r++) {
        char *body = malloc(idx[r].len);
        fseek(in, (long)idx[r].off, SEEK_SET);
        if (fread(body, 1, idx[r].len, in) != idx[r].len)
            return die("short body");
        size_t rl = 0;
        snappy_uncompressed_length(body, idx[r].len, &rl);
        char *raw = malloc(rl ? rl : 1);
        if (snappy_uncompress(body, idx[r].len, raw, &rl) != SNAPPY_OK)
            return die("bad snappy");
        Prometheus__WriteRequest *wr =
            prometheus__write_request__unpack(NULL, rl, (const uint8_t *)raw);
        if (!wr)
            return die("bad protobuf");
        for (int rep = 0; rep < 2; rep++) {
            size_t clen, rlen;
            char *b = replica_body(wr, rep ? "b" : "a", rep ? SHIFT_MS : 0, &clen, &rlen);
            fwrite(b, 1, clen, out);
            nidx[ni] = idx[r];
            nidx[ni].off = off;
            nidx[ni].len = (uint32_t)clen;
            nidx[ni].raw_len = (uint32_t)rlen;
            if (rep) {
                nidx[ni].tmin += SHIFT_MS;
                nidx[ni].tmax += SHIFT_MS;
            }
            ni++;
            off += clen;
            raw_total += rlen;
            comp_total += clen;
            free(b);
        }
        prometheus__write_request__free_unpacked(wr, NULL);
        free(raw);
        free(body);
    }
    fwrite(nidx, sizeof *nidx, ni, out);
    nh.nrequests = ni;
    nh.index_off = off;
    nh.nsamples = 2 * h.nsamples;
    nh.nseries = 2 * h.nseries;
    nh.tmax += SHIFT_MS;
    nh.raw_bytes = raw_total;
    nh.comp_bytes = comp_total;
    fseek(out, 0, SEEK_SET);
    fwrite(&nh, sizeof nh, 1, out);
    fclose(out);
    fclose(in);
    /* the summary: the input's with the pair's counts */
    char jin[4096], jout[4096];
    snprintf(jin, sizeof jin, "%s.json", argv[1]);
    snprintf(jout, sizeof jout, "%s.json", argv[2]);
    FILE *fi = fopen(jin, "r"), *fo = fopen(jout, "w");
    if (fi && fo) {
        char line[4096];
        while (fgets(line, sizeof line, fi)) {
            unsigned long long v;
            char key[64];
            if (sscanf(line, " \"%63[^\"]\": %llu", key, &v) == 2 &&
                (!strcmp(key, "samples") || !strcmp(key, "series") || !strcmp(key, "requests") ||
                 !strcmp(key, "constant_series"))) {
                const char *comma = strchr(line, ',') ? "," : "";
                fprintf(fo, "  \"%s\": %llu%s\n", key, 2 * v, comma);
            } else {
                fputs(line, fo);
            }
        }
    }
    if (fi)
        fclose(fi);
    if (fo)
        fclose(fo);
    fprintf(stderr, "bench_hapack: %llu requests -> %zu (replicas a and b), %llu samples\n",
            (unsigned long long)h.nrequests, ni, (unsigned long long)nh.nsamples);
    free(idx);
    free(nidx);
    return 0;
}
