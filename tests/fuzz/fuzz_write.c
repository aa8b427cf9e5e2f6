/* fuzz_write.c - libFuzzer target for the remote-write decoder: the first
 * byte picks 1.0 or 2.0, the rest is the snappy body. Decoding and per-series
 * validation must never crash or touch memory they do not own.
 *   cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DRWGATE_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_write && build-fuzz/fuzz_write -max_total_time=60 */
#include <stdint.h>
#include <string.h>
#include "core/cfg.h"
#include "ingest/ingest_int.h"

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
    if (rw_in_decode(ig, (data[0] & 1) ? RW_PROTO_V2 : RW_PROTO_V1, data + 1, size - 1, a, &b,
                     &e) == RW_OK) {
        for (size_t i = 0; i < b.nseries; i++) {
            rw_err_init(&e);
            if (rw_in_validate_series(ig, &b.series[i], &e) == RW_OK)
                (void)rw_labels_hash(b.series[i].labels, b.series[i].nlabels);
        }
    }
    rw_arena_free(a);
    return 0;
}
