/* fuzz_write.c - libFuzzer target for the remote-write decoder: the first
 * byte picks 1.0 or 2.0, the rest is the snappy body. Decoding and per-series
 * validation must never crash or touch memory they do not own. A 1.0 body
 * that both the hand-written decoder and protobuf-c's generated one accept
 * must give both the same series, labels (byte for byte) and samples: the
 * hand-written decoder's fast paths must not change what a body means; nor
 * may the series cache's path, for either version (compare_cached).
 *   cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DRWGATE_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_write && build-fuzz/fuzz_write -max_total_time=60 */
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/cfg.h"
#include "ingest/ingest_int.h"
#include "proto/remote.pb-c.h"

static int same_str(const char *ours, uint32_t len, const char *theirs)
{
    return memcmp(ours, theirs, len) == 0 && theirs[len] == '\0';
}

/* The decoded batch against protobuf-c's reading of the same body (when
 * protobuf-c accepts it; the two differ in what they refuse, not in what
 * an accepted body means). */
static void compare_v1(const uint8_t *body, size_t len, const rw_in_batch *b)
{
    size_t rawlen;
    if (snappy_uncompressed_length((const char *)body, len, &rawlen) != SNAPPY_OK ||
        rawlen > (4u << 20))
        return;
    char *raw = malloc(rawlen ? rawlen : 1);
    if (!raw || snappy_uncompress((const char *)body, len, raw, &rawlen) != SNAPPY_OK) {
        free(raw);
        return;
    }
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, rawlen, (uint8_t *)raw);
    free(raw);
    if (!wr)
        return;
    if (wr->n_timeseries != b->nseries)
        abort();
    for (size_t i = 0; i < b->nseries; i++) {
        const rw_in_series *s = &b->series[i];
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        if (s->labels_over)
            continue; /* over the label limit: counted, not decoded */
        if (ts->n_labels != s->nlabels || ts->n_samples != s->nsamples)
            abort();
        for (size_t j = 0; j < s->nlabels; j++)
            if (!same_str(s->labels[j].name, s->lens[2 * j], ts->labels[j]->name) ||
                !same_str(s->labels[j].value, s->lens[2 * j + 1], ts->labels[j]->value))
                abort();
        for (size_t k = 0; k < s->nsamples; k++)
            if (s->samples[k].t != ts->samples[k]->timestamp ||
                memcmp(&s->samples[k].v, &ts->samples[k]->value, sizeof(double)) != 0)
                abort();
    }
    prometheus__write_request__free_unpacked(wr, NULL);
}

/* The same body decoded as the series cache sees it: once to key and
 * remember every series (with its cluster label's place, as the pipeline
 * does), once more finding them all - the cached series' samples and
 * cluster, and their labels decoded later from the bytes as sent, must be
 * those of the plain decode. */
static void compare_cached(const rw_ingest_config *cfg, rw_proto_version ver, const uint8_t *body,
                           size_t len, const rw_in_batch *plain)
{
    rw_in_cache *cache = rw_in_cache_new(1 << 14);
    rw_arena *a = rw_arena_new(0, 256u << 20);
    if (!cache || !a)
        abort();
    rw_in_batch b;
    rw_err e;
    rw_err_init(&e);
    rw_in_mem m = {.a = a, .block = 64u << 10, .cache = cache, .cache_seed = 42};
    if (rw_in_decode_mem(cfg, ver, body, len, &m, &b, &e) != RW_OK)
        abort(); /* the plain decode accepted it */
    for (size_t i = 0; i < b.nseries; i++) {
        const rw_in_series *s = &b.series[i];
        if (s->cached)
            abort(); /* an empty cache */
        if (!s->keyed)
            continue;
        /* the places of the cluster, node and instance labels, + 1 */
        const char *want[3] = {cfg->cluster_label, cfg->kubelet_dedup.node_label,
                               cfg->kubelet_dedup.instance_label};
        uint32_t idx[3] = {0, 0, 0};
        for (int w = 0; w < 3; w++) {
            const char *val = rw_labels_get(s->labels, s->nlabels, want[w]);
            for (size_t k = 0; val && k < s->nlabels; k++)
                if (s->labels[k].value == val)
                    idx[w] = (uint32_t)k + 1;
        }
        if (idx[0] > RW_IN_CF_CL_MAX)
            continue;
        rw_in_cache_val v = {.hash = i, .ref = (uint32_t)i + 1,
                             .flags = (uint16_t)(idx[0] << RW_IN_CF_CL_SHIFT)};
        if (idx[1] && idx[2] && idx[1] <= 255 && idx[2] <= 255) {
            v.flags |= RW_IN_CF_KUBE;
            v.aux = (uint16_t)(idx[1] | idx[2] << 8);
        }
        rw_in_cache_put(cache, s->key, 1, &v);
    }
    rw_arena_free(a);
    a = rw_arena_new(0, 256u << 20);
    m = (rw_in_mem){.a = a, .block = 64u << 10, .cache = cache, .cache_seed = 42};
    if (!a || rw_in_decode_mem(cfg, ver, body, len, &m, &b, &e) != RW_OK ||
        b.nseries != plain->nseries)
        abort();
    for (size_t i = 0; i < b.nseries; i++) {
        rw_in_series *s = &b.series[i];
        const rw_in_series *p = &plain->series[i];
        if (!s->cached)
            continue;
        /* a series with the same label bytes earlier in the body shares
           the entry: its own labels are the same, its samples its own */
        if (s->nsamples != p->nsamples ||
            (s->nsamples && memcmp(s->samples, p->samples, s->nsamples * sizeof *s->samples)))
            abort();
        const char *pcl = rw_labels_get(p->labels, p->nlabels, cfg->cluster_label);
        if ((s->raw_cl_idx != 0) != (pcl != NULL) || (pcl && strcmp(pcl, s->raw_cluster)))
            abort();
        if (s->kube) {
            const char *pn = rw_labels_get(p->labels, p->nlabels, cfg->kubelet_dedup.node_label);
            const char *pi =
                rw_labels_get(p->labels, p->nlabels, cfg->kubelet_dedup.instance_label);
            if (!pn || !pi || strcmp(pn, s->raw_node) || strcmp(pi, s->raw_inst))
                abort();
        }
        if (rw_in_decode_v1_labels(s, a) < 0 || s->nlabels != p->nlabels)
            abort();
        for (size_t k = 0; k < s->nlabels; k++)
            if (s->lens[2 * k] != p->lens[2 * k] || s->lens[2 * k + 1] != p->lens[2 * k + 1] ||
                strcmp(s->labels[k].name, p->labels[k].name) ||
                strcmp(s->labels[k].value, p->labels[k].value))
                abort();
    }
    rw_arena_free(a);
    rw_in_cache_free(cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rw_ingest_config cfg, *ig; /* fuzzer harness state, not product code */
    if (!ig) {
        rw_cfg_defaults(&rw_ingest_config_table, &cfg);
        cfg.max_decoded_bytes = 4u << 20;
        ig = &cfg;
    }
    if (size < 1)
        return 0;
    rw_arena *a = rw_arena_new(0, 256u << 20);
    rw_in_batch b;
    rw_err e;
    rw_err_init(&e);
    int v2 = data[0] & 1;
    if (rw_in_decode(ig, v2 ? RW_PROTO_V2 : RW_PROTO_V1, data + 1, size - 1, a, &b, &e) == RW_OK) {
        if (!v2)
            compare_v1(data + 1, size - 1, &b);
        compare_cached(ig, v2 ? RW_PROTO_V2 : RW_PROTO_V1, data + 1, size - 1, &b);
        for (size_t i = 0; i < b.nseries; i++) {
            rw_err_init(&e);
            if (rw_in_validate_series(ig, &b.series[i], &e) == RW_OK)
                (void)rw_labels_hash(b.series[i].labels, b.series[i].nlabels);
        }
    }
    rw_arena_free(a);
    return 0;
}
