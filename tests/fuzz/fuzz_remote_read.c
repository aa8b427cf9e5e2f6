/* fuzz_remote_read.c - libFuzzer target for the remote-read request path up
 * to the store: snappy with its declared-length cap, protobuf-c decoding of
 * prometheus.ReadRequest from an arena, and the conversion of every Query's
 * matchers (types, regexes, the external-label rewrite). Any input gets a
 * request or an error, never a crash or a leak of compiled matchers.
 *   cmake --build build-fuzz --target fuzz_remote_read && build-fuzz/fuzz_remote_read -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include "proto/remote.pb-c.h"
#include "query/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rw_arena *a = rw_arena_new(0, 64u << 20);
    Prometheus__ReadRequest *rr = NULL;
    rw_err e;
    rw_err_init(&e);
    static const rw_label ext[] = {{"cluster", "eu1"}, {"replica", "a"}};
    if (rw_qapi_read_decode((const char *)data, size, 100, 100, a, &rr, &e) == RW_OK) {
        for (size_t i = 0; i < rr->n_queries; i++) {
            const Prometheus__Query *q = rr->queries[i];
            rw_matcher *ms = calloc(q->n_matchers ? q->n_matchers : 1, sizeof *ms);
            size_t n = 0;
            rw_err_init(&e);
            rw_qapi_read_matchers(q, ext, 2, ms, &n, &e);
            for (size_t j = 0; j < n; j++)
                rw_matcher_free(&ms[j]);
            free(ms);
        }
    }
    rw_arena_free(a);
    return 0;
}
