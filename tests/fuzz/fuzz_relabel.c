/* fuzz_relabel.c - libFuzzer target for relabel rules and the RE2-syntax
 * regex translator: the input is split at newlines into rules of seven
 * fields separated by '\t' (action, source labels joined by ',', separator,
 * regex, target_label, replacement, modulus); every rule that validates is
 * applied, all together, to a fixed series and to one built from the input.
 * Any input must give a compiled rule or an error, and applying rules must
 * give a sorted, duplicate-free result or a reported drop/invalid/failure,
 * never a crash, a leak or an out-of-bounds access.
 *   cmake --build build-fuzz --target fuzz_relabel && build-fuzz/fuzz_relabel -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/labels.h"
#include "core/regex.h"
#include "core/relabel.h"

#define MAX_RULES 8

static char *field(char **p, char sep)
{
    char *s = *p;
    if (!s)
        return NULL;
    char *e = strchr(s, sep);
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = NULL;
    }
    return s;
}

static void free_rule(rw_relabel_config *c)
{
    for (size_t i = 0; i < c->source_labels.n; i++)
        free(c->source_labels.v[i]);
    free(c->source_labels.v);
    free(c->separator);
    free(c->regex.src);
    rw_regex_free(c->regex.re);
    free(c->target_label);
    free(c->replacement);
    memset(c, 0, sizeof *c);
}

static int parse_rule(char *line, rw_relabel_config *c)
{
    memset(c, 0, sizeof *c);
    char *p = line;
    char *act = field(&p, '\t'), *src = field(&p, '\t'), *sep = field(&p, '\t');
    char *re = field(&p, '\t'), *tl = field(&p, '\t'), *repl = field(&p, '\t');
    char *mod = field(&p, '\t');
    if (!act)
        return 0;
    c->action = (unsigned char)act[0] % 11;
    if (src && *src) {
        size_t n = 1;
        for (char *q = src; *q; q++)
            n += *q == ',';
        c->source_labels.v = calloc(n, sizeof(char *));
        char *q = src;
        while (q && c->source_labels.n < n)
            c->source_labels.v[c->source_labels.n++] = strdup(field(&q, ','));
    }
    c->separator = strdup(sep ? sep : ";");
    c->regex.src = strdup(re ? re : "(.*)");
    rw_err e;
    rw_err_init(&e);
    c->regex.re = rw_regex_compile(c->regex.src, &e);
    c->target_label = strdup(tl ? tl : "");
    c->replacement = strdup(repl ? repl : "$1");
    c->modulus = mod ? strtoll(mod, NULL, 10) : 0;
    if (!c->regex.re || rw_relabel_config_validate(c, &e) != RW_OK) {
        free_rule(c);
        return 0;
    }
    return 1;
}

static void check_result(const rw_labels *out)
{
    for (size_t i = 1; i < out->n; i++)
        if (strcmp(out->v[i - 1].name, out->v[i].name) >= 0)
            abort(); /* unsorted or duplicate */
    for (size_t i = 0; i < out->n; i++)
        if (!out->v[i].value[0])
            abort(); /* an empty value must have removed the label */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    rw_relabel_config rules[MAX_RULES];
    size_t n = 0;
    char *p = text;
    char *first = NULL;
    while (p && n < MAX_RULES) {
        char *line = field(&p, '\n');
        if (!first)
            first = strdup(line);
        if (parse_rule(line, &rules[n]))
            n++;
    }
    rw_arena *a = rw_arena_new(0, 16u << 20);
    rw_relabel_state *st = rw_relabel_state_new();
    rw_label fixed[] = {
        {"__name__", "kubelet_running_pods"}, {"cluster", "gz-prod-0001"},
        {"instance", "10.0.0.1:10250"},       {"job", "kubelet"},
        {"node", "node-a"},                   {"tmp_x", "Straße-ÄÖ"},
    };
    rw_labels out;
    rw_err e;
    rw_err_init(&e);
    if (rw_relabel_apply(st, rules, n, RW_RELABEL_REQUIRE_NAME, a, fixed,
                         sizeof fixed / sizeof fixed[0], &out, &e) == RW_RELABEL_KEPT)
        check_result(&out);
    /* a series named by the input's first line (valid UTF-8 only, as on the
       write path) */
    if (first && *first && rw_utf8_valid(first, strlen(first))) {
        rw_label own[] = {{"__name__", "m"}, {"a", first}, {"b", first}};
        if (rw_relabel_apply(st, rules, n, 0, a, own, 3, &out, &e) == RW_RELABEL_KEPT)
            check_result(&out);
    }
    rw_relabel_state_free(st);
    rw_arena_free(a);
    for (size_t i = 0; i < n; i++)
        free_rule(&rules[i]);
    free(first);
    free(text);
    return 0;
}
