/* fuzz_promql.c - libFuzzer target for the PromQL parser and the match[]
 * selector parser: any input gets an AST or an error with a position, never
 * a crash, a leak of compiled matchers, or unbounded recursion.
 *   cmake --build build-fuzz --target fuzz_promql && build-fuzz/fuzz_promql -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "query/ast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    memcpy(q, data, size);
    q[size] = '\0';
    rw_arena *a = rw_arena_new(0, 64u << 20);
    rw_node *n = NULL;
    rw_err e;
    rw_err_init(&e);
    if (rw_promql_parse(q, a, &n, &e) == RW_OK)
        rw_ast_free(n);
    rw_arena_free(a);
    rw_matcher *ms = NULL;
    size_t nm = 0;
    rw_err_init(&e);
    if (rw_promql_parse_selector(q, &ms, &nm, &e) == RW_OK) {
        for (size_t i = 0; i < nm; i++)
            rw_matcher_free(&ms[i]);
        free(ms);
    }
    free(q);
    return 0;
}
