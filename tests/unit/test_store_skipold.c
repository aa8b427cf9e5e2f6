/* test_store_skipold.c - rw_append_result.skip_old, what the HA dedup stage
 * relies on: for a marked series, samples not newer than the series' newest
 * are skipped silently (counted, neither written nor rejected), newer ones
 * are written; unmarked series in the same batch keep the normal
 * out-of-order and duplicate rejections. */
#include <stdlib.h>
#include <string.h>
#include "core/labels.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

int main(void)
{
    char *dir = test_mkdtemp("rwgate-skipold");
    rw_store_opts o = {.dir = dir, .nshards = 2};
    rw_err e;
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK(st != NULL);
    rw_label a[] = {{"__name__", "up"}, {"cluster", "c1"}};
    rw_label b[] = {{"__name__", "up"}, {"cluster", "c2"}};
    rw_sample first[] = {{1000, 1}, {2000, 2}, {3000, 3}};
    rw_append_series s[2] = {
        {.labels = a, .nlabels = 2, .hash = rw_labels_hash(a, 2), .samples = first, .nsamples = 3},
        {.labels = b, .nlabels = 2, .hash = rw_labels_hash(b, 2), .samples = first, .nsamples = 3},
    };
    rw_append_result res;
    memset(&res, 0, sizeof res);
    CHECK(rw_store_append(st, s, 2, &res, &e) == RW_OK);
    CHECK_INT(res.samples_written, 6);

    /* the other replica's view: older, equal-time-different-value, newer */
    rw_sample second[] = {{1500, 9}, {3000, 7}, {4000, 4}};
    s[0].samples = s[1].samples = second;
    uint8_t skip[2] = {1, 0};
    memset(&res, 0, sizeof res);
    res.skip_old = skip;
    CHECK(rw_store_append(st, s, 2, &res, &e) == RW_OK);
    CHECK_INT(res.skipped, 2);                         /* a: 1500 and 3000 */
    CHECK_INT(res.rejected[RW_REJ_OUT_OF_ORDER], 1);   /* b: 1500 */
    CHECK_INT(res.rejected[RW_REJ_DUPLICATE], 1);      /* b: 3000 with another value */
    CHECK_INT(res.samples_written, 2);                 /* 4000 for both */

    /* what is stored for a: 1, 2, 3 from the first write and 4 */
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_EQ, "cluster", "c1", &e);
    rw_arena *ar = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0;
    CHECK(rw_store_select(st, &m, 1, 0, 10000, 0, 0, ar, &out, &n, &e) == RW_OK);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(out[0].n, 4);
        CHECK(out[0].v[2] == 3 && out[0].t[3] == 4000);
    }
    rw_matcher_free(&m);
    rw_arena_free(ar);
    rw_store_close(st);
    test_rmtree(dir);
    TEST_DONE();
}
