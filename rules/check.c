/* check.c - `rwgate check rules FILE...`: promtool's `check rules`.
 *
 * Each file is loaded exactly as the server loads it (load.c), so a file
 * this command accepts is a file rwgate evaluates. The report and exit
 * codes are promtool's: "Checking FILE", then "  SUCCESS: N rules found" or
 * "  FAILED:" and every error; duplicate rules (same name and labels within
 * a file) are reported as a lint finding that does not fail the check. No
 * file argument reads standard input. */
#include "rules_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rkey {
    const char *metric;
    const rw_label *labels;
    size_t nlabels;
} rkey;

static int rkey_cmp(const void *x, const void *y)
{
    const rkey *a = x, *b = y;
    int c = strcmp(a->metric, b->metric);
    return c ? c : rw_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

/* promtool's checkDuplicates: rules sharing name and labels in one file */
static void check_duplicates(const rw_rule_file *f, rw_buf *msg, size_t *ndup)
{
    size_t n = 0;
    for (size_t g = 0; g < f->ngroups; g++)
        n += f->groups[g].nrules;
    *ndup = 0;
    if (n < 2)
        return;
    rkey *k = calloc(n, sizeof *k);
    rkey *dups = calloc(n, sizeof *dups);
    if (!k || !dups) {
        free(k);
        free(dups);
        return;
    }
    size_t i = 0;
    for (size_t g = 0; g < f->ngroups; g++)
        for (size_t r = 0; r < f->groups[g].nrules; r++) {
            const rw_rule_def *d = &f->groups[g].rules[r];
            k[i++] = (rkey){d->name, d->labels, d->nlabels};
        }
    qsort(k, n, sizeof *k, rkey_cmp);
    for (i = 1; i < n; i++)
        if (rkey_cmp(&k[i - 1], &k[i]) == 0 &&
            (*ndup == 0 || rkey_cmp(&dups[*ndup - 1], &k[i]) != 0))
            dups[(*ndup)++] = k[i];
    if (*ndup) {
        rw_buf_printf(msg, "%zu duplicate rule(s) found.\n", *ndup);
        for (i = 0; i < *ndup; i++) {
            rw_buf_printf(msg, "Metric: %s\nLabel(s):\n", dups[i].metric);
            for (size_t l = 0; l < dups[i].nlabels; l++)
                rw_buf_printf(msg, "\t%s: %s\n", dups[i].labels[l].name, dups[i].labels[l].value);
        }
        rw_buf_puts(msg, "Might cause inconsistency while recording expressions");
    }
    free(k);
    free(dups);
}

/* 1 when the file has errors, 0 otherwise (lint findings included) */
static int check_one(const char *name, const char *data, size_t len, int from_file)
{
    printf("Checking %s\n", name);
    fflush(stdout);
    rules_diag diag = {0};
    rw_rule_file *f = NULL;
    rw_rc rc = from_file ? rules_file_load(name, &diag, &f)
                         : rules_file_parse(name, data, len, &diag, &f);
    int bad = 0;
    for (size_t i = 0; i < diag.n; i++)
        if (diag.is_warning[i])
            fprintf(stderr, "  WARNING: %s\n", diag.msg[i]);
    if (rc != RW_OK) {
        fprintf(stderr, "  FAILED:\n");
        for (size_t i = 0; i < diag.n; i++)
            if (!diag.is_warning[i])
                fprintf(stderr, "%s\n", diag.msg[i]);
        bad = 1;
    } else {
        rw_buf msg;
        rw_buf_init(&msg, 0);
        size_t ndup = 0;
        check_duplicates(f, &msg, &ndup);
        if (ndup) {
            fprintf(stderr, "  FAILED:\nlint error %s\n", msg.p);
        } else {
            size_t n = 0;
            for (size_t g = 0; g < f->ngroups; g++)
                n += f->groups[g].nrules;
            printf("  SUCCESS: %zu rules found\n", n);
        }
        rw_buf_free(&msg);
    }
    printf("\n");
    fflush(stdout);
    fflush(stderr);
    rules_file_free(f);
    rules_diag_free(&diag);
    return bad;
}

int rw_rules_check_main(int nfiles, char **files)
{
    int bad = 0;
    if (nfiles == 0) {
        rw_buf b;
        rw_buf_init(&b, 64u << 20);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
            if (rw_buf_append(&b, chunk, n) != RW_OK)
                break;
        if (b.failed) {
            printf("Checking standard input\n");
            fprintf(stderr, "  FAILED:\ninput larger than 64 MiB\n");
            rw_buf_free(&b);
            return 1;
        }
        bad = check_one("standard input", b.p ? b.p : "", b.len, 0);
        rw_buf_free(&b);
    }
    for (int i = 0; i < nfiles; i++)
        bad |= check_one(files[i], NULL, 0, 1);
    return bad ? 1 : 0;
}

rw_rc rw_rules_check_config(const rw_rules_config *c, const char *base_dir, rw_buf *report)
{
    char **files = NULL;
    size_t n = 0;
    rw_err err;
    rw_err_init(&err);
    if (rules_glob((const char *const *)c->rule_files.v, c->rule_files.n, base_dir, &files, &n,
                   &err) != RW_OK) {
        rw_buf_printf(report, "  FAILED: %s\n", err.msg);
        return RW_BADREQ;
    }
    rw_rc rc = RW_OK;
    for (size_t i = 0; i < n; i++) {
        rules_diag d = {0};
        rw_rule_file *f = NULL;
        rw_buf_printf(report, "Checking %s\n", files[i]);
        if (rules_file_load(files[i], &d, &f) != RW_OK) {
            rw_buf_puts(report, "  FAILED:\n");
            for (size_t k = 0; k < d.n; k++)
                if (!d.is_warning[k])
                    rw_buf_printf(report, "%s\n", d.msg[k]);
            rc = RW_BADREQ;
        } else {
            size_t nr = 0;
            for (size_t g = 0; g < f->ngroups; g++)
                nr += f->groups[g].nrules;
            rw_buf_printf(report, "  SUCCESS: %zu rules found\n", nr);
        }
        rules_file_free(f);
        rules_diag_free(&d);
        free(files[i]);
    }
    free(files);
    return rc;
}
