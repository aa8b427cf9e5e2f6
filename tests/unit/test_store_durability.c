/* test_store_durability.c - what survives what: a child process appends
 * while flushes run and is killed with SIGKILL at a random moment, then
 * every acknowledged sample must be there after reopening; a torn and a
 * corrupted last WAL record end replay without losing earlier data; an
 * intact but unreadable record is reported and replay goes on; reused WAL
 * files and format 1 segments replay right; concurrent
 * appenders share group commits and all their data survives a crash;
 * retention drops old data and empty series; a data directory refuses to
 * open with a different shard count, or while another store has it. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <dirent.h>
#include <sqlite3.h>
#include <zlib.h>
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
    rw_store_opts o = {.dir = (char *)dir, .nshards = nshards, .retention_ms = retention,
                       .checkpoint_interval_ms = ckpt_ms, .metrics = m};
    rw_err_init(e);
    rw_store *s = rw_store_open(&o, e);
    if (!s)
        fprintf(stderr, "open: %s\n", e->msg);
    return s;
}

/* series i of a synthetic fleet: {__name__="m", inst="<i>"} */
typedef struct fleet {
    char inst[64][32];
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

/* A store whose WAL turns over fast: checkpoints (head snapshots) every 48
 * KiB of WAL and 16 KiB segments, so checkpoints, rotations and WAL
 * deletions or reuses interleave with the appends. */
static rw_store *open_busy_wal(const char *dir, int nshards)
{
    rw_store_opts o = {.dir = (char *)dir, .nshards = nshards, .checkpoint_bytes = 48 << 10,
                       .wal_segment_bytes = 16 << 10};
    rw_err e;
    rw_err_init(&e);
    return rw_store_open(&o, &e);
}

/* Forks a child that writes to the store in dir (open_busy_wal, nshards) and
 * reports to the parent through a pipe: in the child, *st is the store and
 * *wfd the pipe's write end; in the parent, *rfd its read end. -1 on failure
 * (the child exits 2 when the store does not open). */
static pid_t fork_writer(const char *dir, int nshards, rw_store **st, int *rfd, int *wfd)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        *wfd = pfd[1];
        if (!(*st = open_busy_wal(dir, nshards)))
            _exit(2);
        return 0;
    }
    close(pfd[1]);
    *rfd = pfd[0];
    return pid;
}

static void test_kill9(void)
{
    for (int round = 0; round < 3; round++) {
        char *dir = test_mkdtemp("rwstore-test");
        rw_store *st;
        int rfd, wfd;
        pid_t pid = fork_writer(dir, 2, &st, &rfd, &wfd);
        if (pid < 0)
            return;
        if (pid == 0) {
            fleet f;
            fleet_init(&f, 40, "i");
            for (int b = 0;; b++) {
                if (append_batch(st, &f, 40, b) != RW_OK)
                    _exit(3);
                if (write(wfd, &b, sizeof b) != sizeof b)
                    _exit(4);
            }
        }
        int b, last = -1;
        /* wait for the first acknowledgement (the machine may be slow) */
        if (read(rfd, &b, sizeof b) == sizeof b)
            last = b;
        struct timespec ts = {0, (100 + round * 150) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        while (read(rfd, &b, sizeof b) == sizeof b)
            last = b;
        close(rfd);
        printf("kill -9 round %d: %d batches acknowledged before the kill\n", round, last + 1);
        CHECK(last >= 0);
        rw_err e;
        st = open_opts(dir, 2, 0, 0, NULL, &e);
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

/* ---- reading and damaging WAL segment files (FORMAT.md "WAL") ---- */

/* The newest segment file of dir/wal. */
static int last_segment(const char *dir, char *out, size_t cap)
{
    char wd[400];
    snprintf(wd, sizeof wd, "%s/wal", dir);
    DIR *d = opendir(wd);
    if (!d)
        return -1;
    struct dirent *de;
    char best[17] = "";
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 16 && strcmp(de->d_name, best) > 0)
            memcpy(best, de->d_name, 17);
    closedir(d);
    if (!best[0])
        return -1;
    if ((size_t)snprintf(out, cap, "%s/%.16s", wd, best) >= cap)
        return -1;
    return 0;
}

/* format 2: header = magic(8) | u32 version | u32 CRC | u64 segment number;
 * record = u32 magic | u32 body length | u32 CRC | u64 segment number | body */
#define SEG_HDR 24
#define REC_HDR 20
#define REC_MAGIC 0x34525752u

static uint32_t rd32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64le(const unsigned char *p)
{
    return (uint64_t)rd32le(p) | (uint64_t)rd32le(p + 4) << 32;
}

static void wr32le(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* Reads a segment; fills the offsets of its records (up to max). */
static unsigned char *read_segment(const char *path, size_t *len, long *offs, int max, int *nrec)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    if (fread(b, 1, *len, f) != *len) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *nrec = 0;
    size_t o = SEG_HDR;
    uint64_t seq = *len >= SEG_HDR ? rd64le(b + 16) : 0;
    while (o + REC_HDR <= *len && rd32le(b + o) == REC_MAGIC && rd64le(b + o + 12) == seq &&
           *nrec < max) {
        offs[(*nrec)++] = (long)o;
        o += REC_HDR + rd32le(b + o + 4);
    }
    return b;
}

/* Where the records of a segment read by read_segment end. */
static size_t records_end(const unsigned char *b, const long *offs, int n)
{
    return n ? (size_t)offs[n - 1] + REC_HDR + rd32le(b + offs[n - 1] + 4) : SEG_HDR;
}

static void write_file(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, len, f) == len);
    if (f)
        fclose(f);
}

/* mode 0: cut the last record short; 1: flip a byte inside it; 2: garbage */
static int damage_last_record(const char *dir, int mode)
{
    char p[512];
    if (last_segment(dir, p, sizeof p) < 0)
        return -1;
    size_t len;
    long offs[64];
    int n;
    unsigned char *b = read_segment(p, &len, offs, 64, &n);
    if (!b || n == 0) {
        free(b);
        return -1;
    }
    long o = offs[n - 1];
    uint32_t blen = rd32le(b + o + 4);
    if (mode == 0)
        len = (size_t)o + REC_HDR + blen / 2;
    else if (mode == 1)
        b[o + REC_HDR + blen / 2] ^= 0x10;
    else
        memset(b + o, 0xa5, REC_HDR + blen);
    write_file(p, b, len);
    free(b);
    return n;
}

static void test_torn_wal(void)
{
    for (int mode = 0; mode < 3; mode++) {
        char *dir = test_mkdtemp("rwstore-test");
        crash_after(dir, 10);
        CHECK_INT(damage_last_record(dir, mode), 10); /* one record per batch */
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
            /* appending continues (in a new segment, after the torn tail) */
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

/* Timestamps of series `inst` (all of them). */
static size_t series_times(rw_store *st, const char *inst, int64_t *t, size_t cap)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", inst, &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0, k = 0;
    if (rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK && n == 1)
        for (k = 0; k < out[0].n && k < cap; k++)
            t[k] = out[0].t[k];
    rw_matcher_free(&m);
    rw_arena_free(a);
    return k;
}

/* A record whose checksum holds but whose content cannot be read is never
 * a reason to drop the records after it: recovery reports it and goes on.
 * The series it named cannot have their next values decoded (they are
 * coded against it) until the next record that stands alone (every 256th);
 * a series created after it is not affected at all. */
static void test_unreadable_record(void)
{
    enum { NB = 300, BAD = 5 };
    char *dir = test_mkdtemp("rwstore-test");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rw_err e;
        rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
        fleet f, u;
        fleet_init(&f, 5, "t");
        fleet_init(&u, 1, "u");
        for (int b = 0; b < NB; b++)
            if (append_batch(st, &f, 5, b) != RW_OK)
                _exit(3);
        if (append_batch(st, &u, 1, 0) != RW_OK)
            _exit(3);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char p[512];
    CHECK(last_segment(dir, p, sizeof p) == 0);
    size_t len;
    long offs[512];
    int n = 0;
    unsigned char *b = read_segment(p, &len, offs, 512, &n);
    CHECK_INT(n, NB + 1);
    if (b && n > BAD) {
        /* garble the section of record BAD and fix its checksum: intact,
         * unreadable */
        long o = offs[BAD];
        uint32_t blen = rd32le(b + o + 4);
        unsigned char *body = b + o + REC_HDR;
        /* body: uvarint nsec (1), uvarint shard, uvarint rawlen, uvarint
         * clen, bytes: garble the last half of the bytes */
        for (uint32_t i = blen / 2; i < blen; i++)
            body[i] ^= 0x5a;
        wr32le(b + o + 8, (uint32_t)crc32(crc32(0L, b + o + 12, 8), body, blen));
        write_file(p, b, len);
    }
    free(b);
    rw_err e;
    rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
    CHECK(st != NULL);
    if (st) {
        fleet f;
        fleet_init(&f, 5, "t");
        static int64_t t[3 * NB];
        int ok = 1;
        for (int i = 0; i < 5; i++) {
            size_t k = series_times(st, f.inst[i], t, 3 * NB);
            /* batches 0..BAD-1, then from the record that stands alone on */
            size_t want = 3 * BAD + 3 * (NB - 256);
            ok &= k == want;
            for (size_t j = 0; j < k && ok; j++) {
                int64_t batch = t[j] / 3000;
                ok &= batch < BAD || batch >= 256;
            }
            if (!ok)
                fprintf(stderr, "series %s: %zu samples, want %zu\n", f.inst[i], k, want);
        }
        CHECK(ok);
        CHECK_INT(series_times(st, "u0", t, 3), 3); /* after the bad record, unaffected */
        rw_store_close(st);
    }
    test_rmtree(dir);
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
            char pre[16];
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
            char pre[16];
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
    CHECK_INT(after.samples_in_head, 0); /* the rest went into a block */
    CHECK(after.persisted_chunks >= 1);
    int64_t cutoff = 10 * H - 15000 - H;
    /* whole head chunks (1 h) or whole blocks (2 h windows) go */
    CHECK_MSG(after.min_time > cutoff - 2 * H && after.min_time <= cutoff,
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

/* A data directory written by the format-2 store (SQLite rows for chunks,
 * heads and the WAL) is refused with a message naming the format, and left
 * untouched. */
static void test_old_format(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    char p[512];
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                       "INSERT INTO meta VALUES('format',2),('nshards',1),('shard',0);"
                       "CREATE TABLE chunks(id INTEGER PRIMARY KEY, sid INTEGER, span INTEGER, data BLOB);"
                       "CREATE TABLE wal(seq INTEGER PRIMARY KEY, data BLOB);"
                       "INSERT INTO wal(data) VALUES(x'00');",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    rw_err e;
    rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
    CHECK(st == NULL);
    CHECK_MSG(strstr(e.msg, "format 2") && strstr(e.msg, "format 4"), "message: %s", e.msg);
    /* untouched: the old rows are still there */
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    sqlite3_stmt *q;
    CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM wal", -1, &q, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1);
    sqlite3_finalize(q);
    sqlite3_close(db);
    test_rmtree(dir);
}

/* Whether the store in dir (1 shard), opened again, holds exactly batches
 * [0, nb) of the 5 series crash_after() writes. */
static int reopened_holds(const char *dir, int nb)
{
    rw_err e;
    rw_store *st = open_opts(dir, 1, 0, 0, NULL, &e);
    if (!st)
        return 0;
    fleet f;
    fleet_init(&f, 5, "t");
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= check_series(st, f.inst[i], i, nb, 0);
    rw_store_close(st);
    return ok;
}

/* Covered WAL segments are kept as spare files and become later segments
 * (FORMAT.md "WAL"): a reused file keeps its older records behind the new
 * ones. After a crash, replay stops where the new records end: every
 * acknowledged sample is back exactly once, and appending goes on; a clean
 * stop deletes the spares. */
/* Segment files in dir/wal that hold more than their records (reused
 * spares, their older records behind the new ones); *segs: how many
 * segments there are. */
static int reused_segments(const char *dir, int *segs)
{
    char wd[512];
    snprintf(wd, sizeof wd, "%s/wal", dir);
    DIR *d = opendir(wd);
    struct dirent *de;
    int reused = 0;
    *segs = 0;
    while (d && (de = readdir(d))) {
        if (strlen(de->d_name) != 16)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", wd, de->d_name);
        size_t len;
        long offs[512];
        int n;
        unsigned char *b = read_segment(p, &len, offs, 512, &n);
        (*segs)++;
        reused += b && len > records_end(b, offs, n) + 4096; /* past any padding */
        free(b);
    }
    if (d)
        closedir(d);
    return reused;
}

static void test_wal_reuse(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    rw_store *st;
    int rfd, wfd;
    pid_t pid = fork_writer(dir, 1, &st, &rfd, &wfd);
    if (pid < 0)
        return;
    if (pid == 0) {
        /* appends until a reused file holds a live segment (checkpoints
           run in the background: when is not fixed), then dies */
        fleet f;
        fleet_init(&f, 5, "t");
        int segs;
        for (int b = 0; b < 50000; b++) {
            if (append_batch(st, &f, 5, b) != RW_OK)
                _exit(3);
            if (b >= 300 && b % 20 == 0 && reused_segments(dir, &segs) > 0) {
                int nb = b + 1;
                _exit(write(wfd, &nb, sizeof nb) == sizeof nb ? 0 : 4); /* no close */
            }
        }
        _exit(5);
    }
    int nb = 0, status;
    if (read(rfd, &nb, sizeof nb) != sizeof nb)
        nb = 0;
    close(rfd);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int segs, reused = reused_segments(dir, &segs);
    printf("after %d batches: %d segments left, %d of them in reused files\n", nb, segs, reused);
    CHECK(nb > 0 && reused >= 1);
    char wd[512];
    snprintf(wd, sizeof wd, "%s/wal", dir);
    DIR *d;
    struct dirent *de;
    for (int round = 0; round < 2; round++) {
        rw_err e;
        st = open_opts(dir, 1, 0, 0, NULL, &e);
        CHECK(st != NULL);
        if (!st)
            break;
        fleet f;
        fleet_init(&f, 5, "t");
        int ok = 1;
        for (int i = 0; i < 5; i++)
            ok &= check_series(st, f.inst[i], i, nb + round, 0);
        CHECK(ok);
        if (round == 0)
            CHECK_INT(append_batch(st, &f, 5, nb), RW_OK);
        rw_store_close(st);
    }
    /* a clean stop leaves no spares behind */
    d = opendir(wd);
    int spares = 0;
    while (d && (de = readdir(d)))
        spares += strncmp(de->d_name, "spare-", 6) == 0;
    if (d)
        closedir(d);
    CHECK_INT(spares, 0);
    test_rmtree(dir);
}

/* A record of another segment right after the last record of this one (a
 * reused file whose new records end where an older record began) is the
 * end of the segment, not a record to replay: the test puts there a record
 * that another store wrote for the same series with later samples,
 * renumbered to another segment, and those samples must not appear. */
static void test_wal_stale_record(void)
{
    char *dir = test_mkdtemp("rwstore-test"), *other = test_mkdtemp("rwstore-test");
    crash_after(dir, 4);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        rw_err e;
        rw_store *st = open_opts(other, 1, 0, 0, NULL, &e);
        fleet f;
        fleet_init(&f, 5, "t");
        _exit(st && append_batch(st, &f, 5, 10) == RW_OK ? 0 : 3);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char p[512], q[512];
    CHECK(last_segment(dir, p, sizeof p) == 0 && last_segment(other, q, sizeof q) == 0);
    size_t len, zlen;
    long offs[64], zoffs[64];
    int n = 0, zn = 0;
    unsigned char *b = read_segment(p, &len, offs, 64, &n);
    unsigned char *zb = read_segment(q, &zlen, zoffs, 64, &zn);
    CHECK_INT(n, 4);
    CHECK_INT(zn, 1);
    if (b && zb && n == 4 && zn == 1) {
        size_t end = records_end(b, offs, n), zrec = records_end(zb, zoffs, zn) - SEG_HDR;
        unsigned char *c = calloc(1, end + zrec);
        memcpy(c, b, end);
        memcpy(c + end, zb + SEG_HDR, zrec);
        /* renumbered to a segment before this one, its checksum made good */
        uint64_t old = rd64le(b + 16) + 1000;
        wr32le(c + end + 12, (uint32_t)old);
        wr32le(c + end + 16, (uint32_t)(old >> 32));
        wr32le(c + end + 8, (uint32_t)crc32(crc32(0L, c + end + 12, 8), c + end + REC_HDR,
                                            rd32le(c + end + 4)));
        write_file(p, c, end + zrec);
        free(c);
    }
    free(b);
    free(zb);
    CHECK(reopened_holds(dir, 4));
    test_rmtree(dir);
    test_rmtree(other);
}

/* New segments are numbered past every spare file's number, even when no
 * segment is left to number from (a stop that died after the WAL's last
 * segment was dropped and before the spares were deleted): a number is
 * never used twice. */
static void test_wal_numbering(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    crash_after(dir, 2);
    char p[512], sp[600];
    CHECK(last_segment(dir, p, sizeof p) == 0);
    snprintf(sp, sizeof sp, "%s/wal/spare-00000000000000ff", dir);
    CHECK(rename(p, sp) == 0);
    crash_after(dir, 1);
    CHECK(last_segment(dir, p, sizeof p) == 0);
    const char *name = strrchr(p, '/') + 1;
    CHECK_MSG(strcmp(name, "0000000000000100") >= 0, "new segment %s", name);
    test_rmtree(dir);
}

/* A segment written in format 1 (before records named their segment) is
 * replayed like one in format 2. The test rewrites one into format 1:
 * header = magic(8) | u32 version 1 | u32 CRC of the 12 bytes before;
 * record = u32 magic "RWR3" | u32 body length | u32 CRC of body | body. */
static void test_wal_format1(void)
{
    char *dir = test_mkdtemp("rwstore-test");
    crash_after(dir, 10);
    char p[512];
    CHECK(last_segment(dir, p, sizeof p) == 0);
    size_t len;
    long offs[64];
    int n = 0;
    unsigned char *b = read_segment(p, &len, offs, 64, &n);
    CHECK_INT(n, 10);
    unsigned char *v1 = calloc(1, len + 16);
    if (b && v1 && n == 10) {
        memcpy(v1, b, 8);
        wr32le(v1 + 8, 1);
        wr32le(v1 + 12, (uint32_t)crc32(0L, v1, 12));
        size_t o = 16;
        for (int i = 0; i < n; i++) {
            const unsigned char *r = b + offs[i];
            uint32_t blen = rd32le(r + 4);
            wr32le(v1 + o, 0x33525752u);
            wr32le(v1 + o + 4, blen);
            wr32le(v1 + o + 8, (uint32_t)crc32(0L, r + REC_HDR, blen));
            memcpy(v1 + o + 12, r + REC_HDR, blen);
            o += 12 + blen;
        }
        write_file(p, v1, o);
    }
    free(v1);
    free(b);
    CHECK(reopened_holds(dir, 10));
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_old_format);
    RUN(test_dir_lock);
    RUN(test_nshards);
    RUN(test_torn_wal);
    RUN(test_unreadable_record);
    RUN(test_wal_reuse);
    RUN(test_wal_stale_record);
    RUN(test_wal_numbering);
    RUN(test_wal_format1);
    RUN(test_kill9);
    RUN(test_concurrent);
    RUN(test_retention);
    TEST_DONE();
}
