/* fuzz_template.c - libFuzzer target for alert templates (rules/template.h):
 * any text either parses or gets an error with a position, and a parsed
 * template executes to an output or an error within its limits: never a
 * crash, a leak, unbounded recursion or unbounded memory.
 *   cmake -S . -B build-fuzz -DRWGATE_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *   cmake --build build-fuzz --target fuzz_template
 *   build-fuzz/fuzz_template -max_total_time=60 -dict=tests/fuzz/template.dict */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rules/template.h"

static rw_label up1[] = {{"__name__", "up"}, {"instance", "b:9100"}, {"job", "node"}};
static rw_label up2[] = {{"__name__", "up"}, {"instance", "a:9100"}};

/* Every query answers: a two-series vector, a scalar for "1", an error for
 * "err", nothing for the rest. */
static rw_rc query(void *ctx, const char *expr, rw_arena *a, rw_result *out, rw_err *err)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    if (!strcmp(expr, "err"))
        return rw_err_set(err, RW_EXEC, "query failed");
    if (!strcmp(expr, "1")) {
        out->type = RW_VAL_SCALAR;
        out->scalar = 1;
        return RW_OK;
    }
    out->type = RW_VAL_VECTOR;
    if (expr[0] == 0)
        return RW_OK;
    out->series = rw_arena_calloc(a, 2, sizeof *out->series);
    rw_point *p = rw_arena_calloc(a, 2, sizeof *p);
    if (!out->series || !p)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    p[0].v = 1.5;
    p[1].v = -0.25;
    out->series[0] = (rw_result_series){up1, 3, &p[0], 1};
    out->series[1] = (rw_result_series){up2, 2, &p[1], 1};
    out->nseries = 2;
    return RW_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    rw_err e;
    rw_err_init(&e);
    rw_tmpl *t = rw_tmpl_parse("__alert_fuzz", text, &e);
    if (t) {
        rw_label labels[] = {{"__name__", "m"}, {"instance", "host-1:9100"}, {"job", "node"}};
        rw_label ext[] = {{"cluster", "c1"}};
        rw_tmpl_data d = {labels, 3, 1234.5678, ext, 1, "http://x:9090/p", query, NULL};
        rw_arena *a = rw_arena_new(0, 256u << 20);
        char *out;
        rw_tmpl_exec(t, &d, a, &out, &e);
        rw_arena_free(a);
        rw_tmpl_free(t);
    } else if (e.pos < 0 || (size_t)e.pos > size) {
        abort(); /* a parse error always points into the text */
    }
    free(text);
    return 0;
}
