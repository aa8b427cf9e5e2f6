/* test_store_metadata.c - metric metadata in the store: entries arriving in
 * any order (40,000 in reverse) are read back sorted by metric, a lookup by
 * name finds one, an update replaces in place, store.max_metadata refuses
 * new families with RW_LIMIT while known ones still update, and everything
 * survives a reopen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define N 40000

int main(void)
{
    char *dir = test_mkdtemp("rwmd");
    rw_store_opts o = {.dir = dir, .nshards = 1, .max_metadata = N + 10};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK_MSG(st != NULL, "%s", e.msg);
    if (!st)
        TEST_DONE();
    rw_metadata *md = calloc(N, sizeof *md);
    char (*names)[32] = calloc(N, 32);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 32, "m_%06d", N - 1 - i); /* reverse order */
        md[i] = (rw_metadata){names[i], "counter", "help", ""};
    }
    CHECK(rw_store_put_metadata(st, md, N, &e) == RW_OK);
    rw_arena *a = rw_arena_new(0, 0);
    rw_metadata *out;
    size_t n;
    CHECK(rw_store_get_metadata(st, NULL, 0, a, &out, &n, &e) == RW_OK && n == N);
    int sorted = 1;
    for (size_t i = 1; i < n; i++)
        sorted &= strcmp(out[i - 1].metric, out[i].metric) < 0;
    CHECK(sorted);
    CHECK(rw_store_get_metadata(st, NULL, 5, a, &out, &n, &e) == RW_OK && n == 5 &&
          !strcmp(out[0].metric, "m_000000") && !strcmp(out[4].metric, "m_000004"));
    CHECK(rw_store_get_metadata(st, "m_012345", 0, a, &out, &n, &e) == RW_OK && n == 1 &&
          !strcmp(out[0].help, "help"));
    CHECK(rw_store_get_metadata(st, "nope", 0, a, &out, &n, &e) == RW_OK && n == 0);
    /* update in place */
    rw_metadata up = {"m_012345", "gauge", "new", "bytes"};
    CHECK(rw_store_put_metadata(st, &up, 1, &e) == RW_OK);
    CHECK(rw_store_get_metadata(st, "m_012345", 0, a, &out, &n, &e) == RW_OK && n == 1 &&
          !strcmp(out[0].type, "gauge") && !strcmp(out[0].unit, "bytes"));
    /* the cap: 10 more families fit, then new ones are refused */
    rw_metadata more[20];
    char mn[20][32];
    for (int i = 0; i < 20; i++) {
        snprintf(mn[i], 32, "z_%02d", i);
        more[i] = (rw_metadata){mn[i], "gauge", "h", ""};
    }
    rw_err_init(&e);
    CHECK(rw_store_put_metadata(st, more, 20, &e) == RW_LIMIT && strstr(e.msg, "10 new metric families"));
    CHECK(rw_store_get_metadata(st, NULL, 0, a, &out, &n, &e) == RW_OK && n == N + 10);
    rw_metadata up2 = {"z_03", "counter", "still updates", ""};
    CHECK(rw_store_put_metadata(st, &up2, 1, &e) == RW_OK);
    rw_store_close(st);
    st = rw_store_open(&o, &e);
    CHECK_MSG(st != NULL, "%s", e.msg);
    if (st) {
        CHECK(rw_store_get_metadata(st, NULL, 0, a, &out, &n, &e) == RW_OK && n == N + 10);
        CHECK(rw_store_get_metadata(st, "z_03", 0, a, &out, &n, &e) == RW_OK && n == 1 &&
              !strcmp(out[0].help, "still updates"));
        rw_store_close(st);
    }
    rw_arena_free(a);
    free(md);
    free(names);
    test_rmtree(dir);
    TEST_DONE();
}
