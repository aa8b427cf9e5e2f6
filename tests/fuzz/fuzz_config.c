/* fuzz_config.c - libFuzzer target for configuration loading: the YAML
 * reader (core/yaml.c) and the typed tables (core/cfg.c) over rwgate's root
 * table (cmd/config.c: every layer's section, auth, TLS, alerting), with
 * their check functions, then a dump and a copy of what loaded. Any input
 * gets a configuration or an error naming its line, never a crash or a leak.
 *   cmake --build build-fuzz --target fuzz_config && build-fuzz/fuzz_config -max_total_time=60 */
#include <stdint.h>
#include <string.h>
#include "cmd/config.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rw_config c;
    rw_err e;
    rw_err_init(&e);
    rw_cfg_defaults(&rw_config_table, &c);
    if (rw_cfg_load_string(&rw_config_table, &c, (const char *)data, size, "fuzz", &e) == RW_OK) {
        rw_buf b;
        rw_buf_init(&b, 0);
        rw_cfg_dump(&rw_config_table, &c, &b);
        rw_buf_free(&b);
        rw_config copy;
        if (rw_cfg_copy(&rw_config_table, &copy, &c, &e) == RW_OK) {
            (void)rw_cfg_equal(&rw_config_table, &c, &copy, 1, NULL, 0);
            rw_cfg_free(&rw_config_table, &copy);
        }
    }
    rw_cfg_free(&rw_config_table, &c);
    return 0;
}
