/* tmpdir.c - creates and removes the temporary data directories the store
 * tests work in (see tmpdir.h); part of the rw_test_support library linked
 * into every unit test. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/support/tmpdir.h"

char *test_mkdtemp(const char *prefix)
{
    char *d;
    if (asprintf(&d, "/tmp/%s-XXXXXX", prefix) < 0)
        return NULL;
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

void test_rmtree(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(dir);
}
