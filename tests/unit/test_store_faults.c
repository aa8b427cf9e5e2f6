/* test_store_faults.c - the store under injected faults. This test is linked
 * with -Wl,--wrap for pwrite, malloc, realloc and posix_memalign (see
 * CMakeLists.txt), so it can make the WAL write fail (ENOSPC), hold a group
 * commit inside its write, and make allocations fail at chosen moments:
 *
 *  - commits that fail answer RW_IO (503) and keep the data pending; past
 *    max_pending_bytes appends are refused before anything is applied; once
 *    the storage works again the sender's identical resends are accepted
 *    and durable;
 *  - a commit that fails while allocations fail too never loses the entries
 *    that arrived meanwhile, and no append that depends on them is
 *    acknowledged before they are on disk (the old design could drop them
 *    when putting a failed commit's data back needed memory).
 * Each scenario runs in a child that "crashes" (no close) at the end; the
 * parent reopens the directory and checks every acknowledged sample. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/labels.h"
#include "core/metrics.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

/* ---- fault injection ---- */

static _Atomic int fail_pwrite, fail_alloc, hold_pwrite, held;

ssize_t __real_pwrite(int fd, const void *b, size_t n, off_t off);
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

ssize_t __wrap_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (atomic_load(&hold_pwrite)) {
        atomic_store(&held, 1);
        while (atomic_load(&hold_pwrite)) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (atomic_load(&fail_pwrite)) {
        errno = ENOSPC;
        return -1;
    }
    return __real_pwrite(fd, b, n, off);
}

void *__wrap_malloc(size_t n)
{
    return atomic_load(&fail_alloc) ? NULL : __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return atomic_load(&fail_alloc) ? NULL : __real_realloc(p, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    return atomic_load(&fail_alloc) ? ENOMEM : __real_posix_memalign(p, align, n);
}

/* ---- helpers ---- */

typedef struct fleet {
    char inst[8][16];
    rw_label l[8][2];
    uint64_t hash[8];
} fleet;

static void fleet_init(fleet *f, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        snprintf(f->inst[i], sizeof f->inst[i], "%s%d", prefix, i);
        f->l[i][0] = (rw_label){"__name__", "m"};
        f->l[i][1] = (rw_label){"inst", f->inst[i]};
        f->hash[i] = rw_labels_hash(f->l[i], 2);
    }
}

/* batch b: 3 samples per series at b*3000 + {0,1000,2000} */
static rw_rc append_batch(rw_store *st, fleet *f, int nser, int b, rw_err *e)
{
    rw_append_series as[8];
    rw_sample smp[8][3];
    for (int i = 0; i < nser; i++) {
        for (int k = 0; k < 3; k++) {
            int64_t t = (int64_t)b * 3000 + k * 1000;
            smp[i][k] = (rw_sample){t, (double)t * 0.5 + i};
        }
        as[i] = (rw_append_series){.labels = f->l[i], .nlabels = 2, .hash = f->hash[i],
                                   .samples = smp[i], .nsamples = 3};
    }
    rw_append_result r = {0};
    rw_err_init(e);
    return rw_store_append(st, as, (size_t)nser, &r, e);
}

/* Checks that series inst has exactly the batches [0, nb). */
static int has_batches(rw_store *st, const char *inst, int i, int nb)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", inst, &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0;
    int ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK &&
             n == 1 && out[0].n == (size_t)(3 * nb);
    for (size_t k = 0; ok && k < out[0].n; k++)
        ok = out[0].t[k] == (int64_t)(k / 3) * 3000 + (int64_t)(k % 3) * 1000 &&
             out[0].v[k] == (double)out[0].t[k] * 0.5 + i;
    if (!ok)
        fprintf(stderr, "series %s: %zu series, %zu samples, want %d\n", inst, n,
                n ? out[0].n : 0, 3 * nb);
    rw_matcher_free(&m);
    rw_arena_free(a);
    return ok;
}

static int child_done(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

#define EXPECT(c)                                                 \
    do {                                                          \
        if (!(c)) {                                               \
            fprintf(stderr, "child:%d: %s failed\n", __LINE__, #c); \
            fails++;                                              \
        }                                                         \
    } while (0)

/* ---- scenarios ---- */

static void test_commit_failure(void)
{
    char *dir = test_mkdtemp("rwstore-faults");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fails = 0;
        rw_store_opts o = {.dir = dir, .nshards = 1, .max_pending_bytes = 300};
        rw_err e;
        rw_err_init(&e);
        rw_store *st = rw_store_open(&o, &e);
        if (!st)
            _exit(9);
        fleet f;
        fleet_init(&f, 5, "b");
        EXPECT(append_batch(st, &f, 5, 0, &e) == RW_OK);
        atomic_store(&fail_pwrite, 1); /* the disk is full */
        EXPECT(append_batch(st, &f, 5, 1, &e) == RW_IO);
        EXPECT(strstr(e.msg, "wal") != NULL);
        EXPECT(append_batch(st, &f, 5, 2, &e) == RW_IO); /* pending grows past 300 */
        /* over the cap: refused up front, nothing applied */
        rw_label l[2] = {{"__name__", "m"}, {"inst", "brand-new"}};
        rw_sample one = {999999, 1};
        rw_append_series as = {.labels = l, .nlabels = 2, .hash = rw_labels_hash(l, 2),
                               .samples = &one, .nsamples = 1};
        rw_append_result r = {0};
        rw_err_init(&e);
        EXPECT(rw_store_append(st, &as, 1, &r, &e) == RW_AGAIN);
        EXPECT(strstr(e.msg, "not yet durable") != NULL);
        EXPECT(r.series_created == 0 && r.samples_written == 0);
        atomic_store(&fail_pwrite, 0); /* space is back */
        /* the sender retries: identical resends, accepted once durable */
        EXPECT(append_batch(st, &f, 5, 1, &e) == RW_OK);
        EXPECT(append_batch(st, &f, 5, 2, &e) == RW_OK);
        _exit(fails ? 1 : 0); /* crash: no close */
    }
    CHECK_INT(child_done(pid), 0);
    rw_err e;
    rw_store_opts o = {.dir = dir, .nshards = 1};
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK(st != NULL);
    if (st) {
        fleet f;
        fleet_init(&f, 5, "b");
        int ok = 1;
        for (int i = 0; i < 5; i++)
            ok &= has_batches(st, f.inst[i], i, 3);
        CHECK(ok);
        rw_matcher m;
        rw_matcher_init(&m, RW_MATCH_EQ, "inst", "brand-new", &e);
        rw_arena *a = rw_arena_new(0, 0);
        rw_series_data *out;
        size_t n;
        CHECK_INT(rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e), RW_OK);
        CHECK_INT(n, 0);
        rw_matcher_free(&m);
        rw_arena_free(a);
        rw_store_close(st);
    }
    test_rmtree(dir);
}

typedef struct job {
    rw_store *st;
    fleet *f;
    int b;
    rw_rc rc;
    _Atomic int done;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    rw_err e;
    j->rc = append_batch(j->st, j->f, 2, j->b, &e);
    atomic_store(&j->done, 1);
    return NULL;
}

static uint64_t pending_bytes(rw_metrics *m)
{
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_metrics_render(m, &b);
    const char *k = "rwgate_store_pending_wal_bytes{shard=\"0\"} ";
    const char *p = b.p ? strstr(b.p, k) : NULL;
    uint64_t v = p ? strtoull(p + strlen(k), NULL, 10) : 0;
    rw_buf_free(&b);
    return v;
}

/* A's commit is held inside its write; B appends meanwhile and waits for
 * it; then A's write fails while every allocation fails too. Neither may be
 * acknowledged before its data is on disk, and B's entries must survive the
 * failed commit and be written with the next one. */
static void test_failed_commit_without_memory(void)
{
    char *dir = test_mkdtemp("rwstore-faults");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fails = 0;
        rw_metrics *m = rw_metrics_new();
        rw_store_opts o = {.dir = dir, .nshards = 1, .metrics = m};
        rw_err e;
        rw_err_init(&e);
        rw_store *st = rw_store_open(&o, &e);
        if (!st)
            _exit(9);
        fleet fa, fb;
        fleet_init(&fa, 2, "a");
        fleet_init(&fb, 2, "b");
        EXPECT(append_batch(st, &fa, 2, 0, &e) == RW_OK);
        EXPECT(append_batch(st, &fb, 2, 0, &e) == RW_OK);
        atomic_store(&hold_pwrite, 1);
        job ja = {.st = st, .f = &fa, .b = 1}, jb = {.st = st, .f = &fb, .b = 1};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, job_main, &ja);
        while (!atomic_load(&held))
            usleep(1000); /* A leads a commit and is inside its write */
        pthread_create(&tb, NULL, job_main, &jb);
        for (int i = 0; i < 5000 && pending_bytes(m) == 0; i++)
            usleep(1000); /* B's entries are pending behind A's commit */
        EXPECT(pending_bytes(m) > 0);
        EXPECT(!atomic_load(&ja.done) && !atomic_load(&jb.done));
        atomic_store(&fail_alloc, 1);
        atomic_store(&fail_pwrite, 1);
        atomic_store(&hold_pwrite, 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        atomic_store(&fail_alloc, 0);
        atomic_store(&fail_pwrite, 0);
        EXPECT(ja.rc != RW_OK); /* not acknowledged: not on disk */
        EXPECT(jb.rc != RW_OK);
        EXPECT(pending_bytes(m) > 0); /* nothing dropped */
        /* the senders retry: both become durable */
        EXPECT(append_batch(st, &fb, 2, 1, &e) == RW_OK);
        EXPECT(append_batch(st, &fa, 2, 1, &e) == RW_OK);
        EXPECT(pending_bytes(m) == 0);
        _exit(fails ? 1 : 0); /* crash: no close */
    }
    CHECK_INT(child_done(pid), 0);
    rw_err e;
    rw_store_opts o = {.dir = dir, .nshards = 1};
    rw_err_init(&e);
    rw_store *st = rw_store_open(&o, &e);
    CHECK(st != NULL);
    if (st) {
        fleet fa, fb;
        fleet_init(&fa, 2, "a");
        fleet_init(&fb, 2, "b");
        int ok = 1;
        for (int i = 0; i < 2; i++) {
            ok &= has_batches(st, fa.inst[i], i, 2);
            ok &= has_batches(st, fb.inst[i], i, 2);
        }
        CHECK(ok);
        rw_store_close(st);
    }
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_commit_failure);
    RUN(test_failed_commit_without_memory);
    TEST_DONE();
}
