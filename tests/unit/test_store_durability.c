/* test_store_durability.c - what survives what: a child process appends
 * while checkpoints run and is killed with SIGKILL at a random moment, then
 * every acknowledged sample must be there after reopening; a torn and a
 * corrupted last WAL record are truncated on open without losing earlier
 * data; concurrent appenders to one shard share group commits and all their
 * data survives a crash; retention drops old chunks and empty series; a data
 * directory refuses to open with a different shard count. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/labels.h"
#include "core/metrics.h"
#include "store/chunk.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

static rw_store *open_opts(const char *dir, int nshards, int64_t retention, int64_t ckpt_ms,
                           rw_metrics *m, rw_err *e)
{
    rw_store_opts o = {.dir = dir, .nshards = nshards, .retention_ms = retention,
                       .checkpoint_interval_ms = ckpt_ms, .metrics = m};
    rw_err_init(e);
    rw_store *s = rw_store_open(&o, e);
    if (!s)
        fprintf(stderr, "open: %s\n", e->msg);
    return s;
}

/* series i of a synthetic fleet: {__name__="m", inst="<i>"} */
typedef struct fleet {
    char inst[64][16];
    rw_label l[64][2];
    uint64_t hash[64];
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

/* batch b: every series gets 3 samples at t = b*3000 + {0,1000,2000},
 * value = t * 0.5 + series */
static rw_rc append_batch(rw_store *st, fleet *f, int nser, int b)
{
    rw_append_series as[64];
    rw_sample smp[64][3];
    for (int i = 0; i < nser; i++) {
        for (int k = 0; k < 3; k++) {
            int64_t t = (int64_t)b * 3000 + k * 1000;
            smp[i][k] = (rw_sample){t, (double)t * 0.5 + i};
        }
        as[i] = (rw_append_series){.labels = f->l[i], .nlabels = 2, .hash = f->hash[i],
                                   .samples = smp[i], .nsamples = 3};
    }
    rw_append_result r = {0};
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_store_append(st, as, (size_t)nser, &r, &e);
    if (rc != RW_OK)
        fprintf(stderr, "append batch %d: %s\n", b, e.msg);
    return rc;
}

/* Checks that series i has exactly batches [0, nb) (or nb+1 when extra_ok). */
static int check_series(rw_store *st, const char *inst, int i, int nb, int extra_ok)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", inst, &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0;
    int ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK;
    rw_matcher_free(&m);
    size_t want = (size_t)nb * 3;
    if (nb == 0 && !extra_ok) {
        ok = ok && n == 0;
    } else if (ok && n == 1) {
        size_t got = out[0].n;
        if (!(got == want || (extra_ok && got == want + 3))) {
            fprintf(stderr, "series %s: %zu samples, want %zu\n", inst, got, want);
            ok = 0;
        }
        for (size_t k = 0; ok && k < got; k++) {
            int64_t t = (int64_t)(k / 3) * 3000 + (int64_t)(k % 3) * 1000;
            if (out[0].t[k] != t || out[0].v[k] != (double)t * 0.5 + i) {
                fprintf(stderr, "series %s sample %zu wrong\n", inst, k);
                ok = 0;
            }
        }
    } else if (!(extra_ok && nb == 0 && n == 0)) {
        fprintf(stderr, "series %s: %zu series returned\n", inst, n);
        ok = 0;
    }
    rw_arena_free(a);
    return ok;
}

static void test_kill9(void)
{
    for (int round = 0; round < 3; round++) {
        char *dir = test_mkdtemp("rwstore-test");
        int pfd[2];
        if (pipe(pfd) != 0)
            return;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            rw_err e;
            /* checkpoints every 20 ms interleave with the appends */
            rw_store *st = open_opts(dir, 2, 0, 20, NULL, &e);
            fleet f;
            fleet_init(&f, 40, "i");
            for (int b = 0;; b++) {
                if (append_batch(st, &f, 40, b) != RW_OK)
                    _exit(3);
                if (write(pfd[1], &b, sizeof b) != sizeof b)
                    _exit(4);
            }
        }
        close(pfd[1]);
        int b, last = -1;
        /* wait for the first acknowledgement (the machine may be slow) */
        if (read(pfd[0], &b, sizeof b) == sizeof b)
            last = b;
        struct timespec ts = {0, (100 + round * 150) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        while (read(pfd[0], &b, sizeof b) == sizeof b)
            last = b;
        close(pfd[0]);
        printf("kill -9 round %d: %d batches acknowledged before the kill\n", round, last + 1);
        CHECK(last >= 0);
        rw_err e;
        rw_store *st = open_opts(dir, 2, 0, 0, NULL, &e);
        CHECK(st != NULL);
        if (st) {
            fleet f;
            fleet_init(&f, 40, "i");
            int ok = 1;
            for (int i = 0; i < 40; i++)
                ok &= check_series(st, f.inst[i], i, last + 1, 1);
            CHECK(ok);
            rw_store_close(st);
        }
        test_rmtree(dir);
    }
}

/* child: appends nb batches (one commit = one WAL row each) and dies */
static void crash_after(const char *dir, int nb)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rw_err e;
        rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
        fleet f;
        fleet_init(&f, 5, "t");
        for (int b = 0; b < nb; b++)
            if (append_batch(st, &f, 5, b) != RW_OK)
                _exit(3);
        _exit(0); /* no close, no checkpoint */
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int wal_rows(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    sqlite3 *db;
    int n = -1;
    if (sqlite3_open(p, &db) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM wal", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return n;
}

/* mode 0: cut the last row short; 1: flip a byte inside it; 2: garbage */
static void damage_last_wal_row(const char *dir, int mode)
{
    char p[512];
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db, "SELECT seq, data FROM wal ORDER BY seq DESC LIMIT 1", -1, &st,
                             NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    int64_t seq = sqlite3_column_int64(st, 0);
    int len = sqlite3_column_bytes(st, 1);
    unsigned char *b = malloc((size_t)len);
    memcpy(b, sqlite3_column_blob(st, 1), (size_t)len);
    sqlite3_finalize(st);
    if (mode == 0)
        len -= 7;
    else if (mode == 1)
        b[len / 2] ^= 0x10;
    else
        memset(b, 0xa5, (size_t)len);
    CHECK(sqlite3_prepare_v2(db, "UPDATE wal SET data=? WHERE seq=?", -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, b, len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(b);
}

static void test_torn_wal(void)
{
    for (int mode = 0; mode < 3; mode++) {
        char *dir = test_mkdtemp("rwstore-test");
        crash_after(dir, 10);
        CHECK_INT(wal_rows(dir), 10);
        damage_last_wal_row(dir, mode);
        rw_err e;
        rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
        CHECK(st != NULL);
        if (st) {
            fleet f;
            fleet_init(&f, 5, "t");
            int ok = 1;
            for (int i = 0; i < 5; i++)
                ok &= check_series(st, f.inst[i], i, 9, 0);
            CHECK(ok);
            /* appending continues after the truncated tail */
            CHECK_INT(append_batch(st, &f, 5, 9), RW_OK);
            rw_store_close(st);
            st = open_opts(dir, 1, 0, 0, NULL, &e);
            ok = 1;
            for (int i = 0; i < 5; i++)
                ok &= check_series(st, f.inst[i], i, 10, 0);
            CHECK(ok);
            rw_store_close(st);
        }
        test_rmtree(dir);
    }
}

typedef struct worker {
    rw_store *st;
    fleet f;
    int nb;
    int fails;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int b = 0; b < w->nb; b++)
        if (append_batch(w->st, &w->f, 4, b) != RW_OK)
            w->fails++;
    return NULL;
}

typedef struct reader {
    rw_store *st;
    _Atomic int stop;
    int selects, bad;
} reader;

/* selects while the writers append: a batch of one series is applied under
 * one lock hold, so a reader sees whole batches (multiples of 3 samples) */
static void *reader_main(void *arg)
{
    reader *r = arg;
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_RE, "inst", "w.*", &e);
    rw_arena *a = rw_arena_new(0, 0);
    while (!r->stop) {
        rw_series_data *out;
        size_t n;
        if (rw_store_select(r->st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) != RW_OK)
            r->bad++;
        for (size_t i = 0; i < n; i++)
            if (out[i].n % 3 != 0)
                r->bad++;
        r->selects++;
        rw_arena_reset(a);
    }
    rw_matcher_free(&m);
    rw_arena_free(a);
    return NULL;
}

static void test_concurrent(void)
{
    enum { NT = 8, NB = 150 };
    char *dir = test_mkdtemp("rwstore-test");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rw_metrics *m = rw_metrics_new();
        rw_err e;
        rw_store *st = open_opts(dir, 1, 0, 0, m, &e);
        worker w[NT];
        pthread_t th[NT];
        for (int t = 0; t < NT; t++) {
            char pre[8];
            snprintf(pre, sizeof pre, "w%d-", t);
            w[t] = (worker){.st = st, .nb = NB};
            fleet_init(&w[t].f, 4, pre);
            pthread_create(&th[t], NULL, worker_main, &w[t]);
        }
        reader rd = {.st = st};
        pthread_t rth;
        pthread_create(&rth, NULL, reader_main, &rd);
        int fails = 0;
        for (int t = 0; t < NT; t++) {
            pthread_join(th[t], NULL);
            fails += w[t].fails;
        }
        rd.stop = 1;
        pthread_join(rth, NULL);
        printf("concurrent: %d selects beside the writers, %d bad\n", rd.selects, rd.bad);
        fails += rd.bad;
        rw_buf b;
        rw_buf_init(&b, 0);
        rw_metrics_render(m, &b);
        const char *c = strstr(b.p, "\nrwgate_store_commits_total ");
        long commits = c ? atol(c + strlen("\nrwgate_store_commits_total ")) : -1;
        printf("concurrent: %d appends from %d threads in %ld group commits\n", NT * NB, NT,
               commits);
        if (commits <= 0 || commits > NT * NB)
            fails++;
        fflush(stdout);
        _exit(fails ? 5 : 0); /* crash: no close */
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rw_err e;
    rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
    CHECK(st != NULL);
    if (st) {
        int ok = 1;
        for (int t = 0; t < NT; t++) {
            char pre[8];
            snprintf(pre, sizeof pre, "w%d-", t);
            fleet f;
            fleet_init(&f, 4, pre);
            for (int i = 0; i < 4; i++)
                ok &= check_series(st, f.inst[i], i, NB, 0);
        }
        CHECK(ok);
        rw_store_close(st);
    }
    test_rmtree(dir);
}

static void test_retention(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_err e;
    const int64_t H = 3600 * 1000;
    rw_store *st = open_opts(dir, 2, H, 0, NULL, &e);
    fleet f;
    fleet_init(&f, 2, "r");
    /* r0: 10 hours of 15s samples; r1: only the first hour */
    for (int s = 0; s < 2; s++) {
        int64_t end = s == 0 ? 10 * H : H;
        rw_sample smp[256];
        size_t n = 0;
        for (int64_t t = 0; t < end; t += 15000) {
            smp[n++] = (rw_sample){t, (double)t};
            if (n == 256 || t + 15000 >= end) {
                rw_append_series a = {.labels = f.l[s], .nlabels = 2, .hash = f.hash[s],
                                      .samples = smp, .nsamples = n};
                rw_append_result r = {0};
                CHECK_INT(rw_store_append(st, &a, 1, &r, &e), RW_OK);
                n = 0;
            }
        }
    }
    rw_store_stats before, after;
    rw_store_get_stats(st, &before);
    CHECK_INT(before.series, 2);
    CHECK_INT(rw_store_maintain(st, &e), RW_OK);
    rw_store_get_stats(st, &after);
    CHECK_INT(after.series, 1);
    CHECK(after.persisted_chunks < before.persisted_chunks);
    int64_t cutoff = 10 * H - 15000 - H;
    CHECK_MSG(after.min_time > cutoff - RW_CHUNK_MAX_SAMPLES * 15000 && after.min_time <= cutoff,
              "min_time %lld, cutoff %lld", (long long)after.min_time, (long long)cutoff);
    rw_store_close(st);
    st = open_opts(dir, 2, H, 0, NULL, &e);
    rw_store_stats re;
    rw_store_get_stats(st, &re);
    CHECK_INT(re.series, 1);
    CHECK_INT(re.min_time, after.min_time);
    CHECK_INT(re.max_time, 10 * H - 15000);
    rw_matcher m;
    rw_matcher_init(&m, RW_MATCH_EQ, "__name__", "m", &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n;
    CHECK_INT(rw_store_select(st, &m, 1, 0, INT64_MAX, 0, 0, a, &out, &n, &e), RW_OK);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(out[0].labels[1].value, "r0");
        CHECK_INT(out[0].t[0], after.min_time);
        CHECK_INT(out[0].t[out[0].n - 1], 10 * H - 15000);
    }
    /* a series that was dropped comes back fresh */
    rw_sample one = {10 * H, 1};
    rw_append_series as = {.labels = f.l[1], .nlabels = 2, .hash = f.hash[1], .samples = &one, .nsamples = 1};
    rw_append_result r = {0};
    CHECK_INT(rw_store_append(st, &as, 1, &r, &e), RW_OK);
    CHECK_INT(r.series_created, 1);
    rw_matcher_free(&m);
    rw_arena_free(a);
    rw_store_close(st);
    test_rmtree(dir);
}

/* Another connection holds the database's write lock: commits fail after
 * the busy timeout with RW_AGAIN and nothing is lost; with the pending cap
 * reached, appends are refused before anything is applied; once the lock is
 * gone the sender's resend is accepted and durable. Runs in a child that
 * "crashes" (no close) at the end; the parent reopens and checks. */
static void test_commit_failure(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fails = 0;
#define EXPECT(c) do { if (!(c)) { fprintf(stderr, "child: %s failed\n", #c); fails++; } } while (0)
        rw_store_opts o = {.dir = dir, .nshards = 1, .busy_timeout_ms = 30,
                           .max_pending_bytes = 300};
        rw_err e;
        rw_err_init(&e);
        rw_store *st = rw_store_open(&o, &e);
        if (!st)
            _exit(9);
        fleet f;
        fleet_init(&f, 5, "b");
        EXPECT(append_batch(st, &f, 5, 0) == RW_OK);
        char p[512];
        snprintf(p, sizeof p, "%s/shard-0.db", dir);
        sqlite3 *db;
        EXPECT(sqlite3_open(p, &db) == SQLITE_OK);
        EXPECT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
        EXPECT(append_batch(st, &f, 5, 1) == RW_AGAIN);
        EXPECT(append_batch(st, &f, 5, 2) == RW_AGAIN); /* pending grows past 300 */
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
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        /* the sender retries: identical resends, accepted and now durable */
        EXPECT(append_batch(st, &f, 5, 1) == RW_OK);
        EXPECT(append_batch(st, &f, 5, 2) == RW_OK);
        _exit(fails ? 1 : 0); /* crash: no close */
#undef EXPECT
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rw_err e;
    rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
    CHECK(st != NULL);
    if (st) {
        fleet f;
        fleet_init(&f, 5, "b");
        int ok = 1;
        for (int i = 0; i < 5; i++)
            ok &= check_series(st, f.inst[i], i, 3, 0);
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

static void test_nshards(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_err e;
    rw_store *st = open_opts(dir, 4, 0, 0, NULL, &e);
    CHECK(st != NULL);
    rw_store_close(st);
    st = open_opts(dir, 2, 0, 0, NULL, &e);
    CHECK(st == NULL);
    CHECK_INT(e.code, RW_BADREQ);
    CHECK_MSG(strstr(e.msg, "4") && strstr(e.msg, "shard"), "message: %s", e.msg);
    st = open_opts(dir, 8, 0, 0, NULL, &e);
    CHECK(st == NULL);
    CHECK_MSG(strstr(e.msg, "created with 4 shards") != NULL, "message: %s", e.msg);
    st = open_opts(dir, 4, 0, 0, NULL, &e);
    CHECK(st != NULL);
    rw_store_close(st);
    test_rmtree(dir);
}

/* One data directory, one store: a second open is refused (naming the
 * holder's pid) until the first closes. */
static void test_dir_lock(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_err e;
    rw_store *st = open_opts(dir, 2, 0, 0, NULL, &e);
    CHECK(st != NULL);
    rw_store *st2 = open_opts(dir, 2, 0, 0, NULL, &e);
    CHECK(st2 == NULL);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK_MSG(strstr(e.msg, pid) && strstr(e.msg, "in use"), "message: %s", e.msg);
    rw_store_close(st);
    st2 = open_opts(dir, 2, 0, 0, NULL, &e);
    CHECK(st2 != NULL);
    rw_store_close(st2);
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_dir_lock);
    RUN(test_nshards);
    RUN(test_torn_wal);
    RUN(test_commit_failure);
    RUN(test_kill9);
    RUN(test_concurrent);
    RUN(test_retention);
    TEST_DONE();
}
