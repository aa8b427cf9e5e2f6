/* fuzz_rules.c - libFuzzer target for rule-file loading (rules/load.c), the
 * path `rwgate check rules` and every reload take: the YAML node tree
 * (rules/yaml.c), the shape pass (unknown fields, types, duplicate keys),
 * the group and rule validation, PromQL preparation of every expr and the
 * template parsing of alert labels and annotations, all from a buffer
 * (rules_file_parse), so nothing touches the file system. Any input gets a
 * loaded file or a list of errors, each naming the file, never a crash or a
 * leak. A loaded file is then compared with itself as a reload does
 * (rules_group_def_equal prints every expression back) and freed.
 *   cmake --build build-san --target fuzz_rules
 *   build-san/fuzz_rules -max_total_time=60 NEWDIR tests/fuzz/corpus/fuzz_rules */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rules/rules_int.h"

#define PATH "fuzz.yml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_diag diag = {0};
    rw_rule_file *f = NULL;
    rw_rc rc = rules_file_parse(PATH, (const char *)data, size, &diag, &f);
    /* the result and the diagnostics agree: a file only without errors, and
       every message says which file it is about */
    if ((rc == RW_OK) != (f != NULL) || (rc == RW_OK) != (diag.nerrors == 0))
        abort();
    for (size_t i = 0; i < diag.n; i++)
        if (strncmp(diag.msg[i], PATH ":", strlen(PATH) + 1) != 0)
            abort();
    if (f) {
        for (size_t g = 0; g < f->ngroups; g++) {
            const rw_group_def *gd = &f->groups[g];
            if (!rules_group_def_equal(gd, gd))
                abort();
            for (size_t r = 0; r < gd->nrules; r++) {
                const rw_rule_def *rd = &gd->rules[r];
                /* a loaded rule is complete: a name, a prepared expression,
                   templates only on alerting rules */
                if (!rd->name || !rd->expr || !rw_promql_expr_string(rd->expr))
                    abort();
                if (rd->kind == RULE_RECORD && (rd->label_tmpl || rd->ann_tmpl))
                    abort();
            }
        }
        rules_file_free(f);
    }
    rules_diag_free(&diag);
    return 0;
}
