/* test_store_snapshot.c - checkpoints by head snapshot (store/FORMAT.md
 * "Head snapshot"): a checkpoint deletes the WAL before it and a crash after
 * it loses nothing - open chunks go on where they stopped, out-of-order
 * samples and series created before and after it come back; a snapshot
 * whose data a later flush wrote into blocks adds nothing twice; a damaged
 * snapshot is refused (header) or skipped (frame) with the store still
 * usable; a format-3 data directory is upgraded in place. */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/labels.h"
#include "store/store.h"
#include "tests/unit/support/tmpdir.h"
#include "test.h"

#define NSER 40
#define STEP 15000

typedef struct fleet {
    char inst[NSER][16];
    rw_label l[NSER][2];
    uint64_t hash[NSER];
} fleet;

static void fleet_init(fleet *f)
{
    for (int i = 0; i < NSER; i++) {
        snprintf(f->inst[i], sizeof f->inst[i], "s%d", i);
        f->l[i][0] = (rw_label){"__name__", "m"};
        f->l[i][1] = (rw_label){"inst", f->inst[i]};
        f->hash[i] = rw_labels_hash(f->l[i], 2);
    }
}

/* The value of series i at t: integers for even series (the chunks' integer
 * mode), fractions for odd ones (XOR mode). */
static double val(int i, int64_t t)
{
    return i % 2 ? (double)t / 7.0 + i : (double)(t / 1000) * 3 + i;
}

/* Series i holds batches [first(i), nb): series 30.. start at batch 150. */
static int first_batch(int i) { return i >= 30 ? 150 : 0; }

/* Batch b: one sample per series that has started, at t = b * STEP. */
static rw_rc append_batch(rw_store *st, fleet *f, int b)
{
    rw_append_series as[NSER];
    rw_sample smp[NSER];
    size_t n = 0;
    for (int i = 0; i < NSER; i++) {
        if (b < first_batch(i))
            continue;
        int64_t t = (int64_t)b * STEP;
        smp[n] = (rw_sample){t, val(i, t)};
        as[n] = (rw_append_series){.labels = f->l[i], .nlabels = 2, .hash = f->hash[i],
                                   .samples = &smp[n], .nsamples = 1};
        n++;
    }
    rw_append_result r = {0};
    rw_err e;
    rw_err_init(&e);
    rw_rc rc = rw_store_append(st, as, n, &r, &e);
    if (rc != RW_OK)
        fprintf(stderr, "append batch %d: %s\n", b, e.msg);
    return rc;
}

/* An out-of-order sample of series 0 halfway between batches b-1 and b. */
static int64_t ooo_t(int b) { return (int64_t)b * STEP - STEP / 2; }

static rw_rc append_ooo(rw_store *st, fleet *f, int b)
{
    rw_sample s = {ooo_t(b), val(0, ooo_t(b))};
    rw_append_series as = {.labels = f->l[0], .nlabels = 2, .hash = f->hash[0], .samples = &s,
                           .nsamples = 1};
    rw_append_result r = {0};
    rw_err e;
    rw_err_init(&e);
    return rw_store_append(st, &as, 1, &r, &e);
}

static rw_store *open_dir(const char *dir, int nshards, rw_err *e)
{
    rw_store_opts o = {.dir = (char *)dir, .nshards = nshards,
                       .ooo_window_ms = 10 * 60 * 1000};
    rw_err_init(e);
    rw_store *s = rw_store_open(&o, e);
    if (!s)
        fprintf(stderr, "open: %s\n", e->msg);
    return s;
}

/* Checks series i holds exactly batches [first, nb) and, for series 0, the
 * out-of-order samples of the batches in `ooo` (nooo of them). */
static int check_series(rw_store *st, fleet *f, int i, int nb, const int *ooo, int nooo)
{
    rw_matcher m;
    rw_err e;
    rw_matcher_init(&m, RW_MATCH_EQ, "inst", f->inst[i], &e);
    rw_arena *a = rw_arena_new(0, 0);
    rw_series_data *out;
    size_t n = 0;
    int ok = rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK &&
             n == 1;
    rw_matcher_free(&m);
    if (first_batch(i) >= nb) { /* not created yet */
        rw_arena_free(a);
        return n == 0;
    }
    if (!ok) {
        fprintf(stderr, "series %s: %zu series returned\n", f->inst[i], n);
        rw_arena_free(a);
        return 0;
    }
    /* the expected timestamps, ascending */
    int64_t want[1024];
    size_t nw = 0;
    for (int b = first_batch(i); b < nb; b++) {
        for (int k = 0; i == 0 && k < nooo; k++)
            if (ooo[k] == b)
                want[nw++] = ooo_t(b);
        want[nw++] = (int64_t)b * STEP;
    }
    if (out[0].n != nw) {
        fprintf(stderr, "series %s: %zu samples, want %zu\n", f->inst[i], out[0].n, nw);
        ok = 0;
    }
    for (size_t k = 0; ok && k < nw; k++) {
        if (out[0].t[k] != want[k] || out[0].v[k] != val(i, want[k])) {
            fprintf(stderr, "series %s sample %zu: %lld %g, want %lld %g\n", f->inst[i], k,
                    (long long)out[0].t[k], out[0].v[k], (long long)want[k], val(i, want[k]));
            ok = 0;
        }
    }
    rw_arena_free(a);
    return ok;
}

static int check_all(rw_store *st, fleet *f, int nb, const int *ooo, int nooo)
{
    int ok = 1;
    for (int i = 0; i < NSER; i++)
        ok &= check_series(st, f, i, nb, ooo, nooo);
    return ok;
}

/* Opens dir and checks that it holds exactly batches [0, nb) (with the
 * out-of-order samples of the batches in ooo); the store, for the caller to
 * close, or NULL. */
static rw_store *reopen_checked(const char *dir, int nshards, int nb, const int *ooo, int nooo)
{
    fleet f;
    fleet_init(&f);
    rw_err e;
    rw_store *st = open_dir(dir, nshards, &e);
    CHECK(st != NULL);
    if (st)
        CHECK(check_all(st, &f, nb, ooo, nooo));
    return st;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static int file_exists(const char *dir, const char *name)
{
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

static const int OOO[] = {40, 100, 170};

/* The child's part of a crash: batches [0, 100) with out-of-order samples,
 * a checkpoint (exit 11.. when it fails), batches [100, 200) - series 30..39
 * created only after the checkpoint, every open chunk appended to after it -
 * then _exit without a close. */
static void crash_child(const char *dir, int nshards)
{
    fleet f;
    fleet_init(&f);
    rw_err e;
    rw_store *st = open_dir(dir, nshards, &e);
    if (!st)
        _exit(2);
    for (int b = 0; b < 200; b++) {
        if (append_batch(st, &f, b) != RW_OK)
            _exit(3);
        for (size_t k = 0; k < sizeof OOO / sizeof *OOO; k++)
            if (OOO[k] == b - 1 && append_ooo(st, &f, b - 1) != RW_OK)
                _exit(4);
        if (b == 99) {
            char wal[512];
            snprintf(wal, sizeof wal, "%s/wal", dir);
            if (rw_store_checkpoint(st, &e) != RW_OK)
                _exit(11);
            /* only the segment started by the checkpoint is left */
            if (count_files(wal, "0") != 1)
                _exit(12);
            for (int k = 0; k < nshards; k++) {
                char name[32];
                snprintf(name, sizeof name, "head-%d.snap", k);
                if (!file_exists(dir, name))
                    _exit(13);
            }
        }
    }
    _exit(0);
}

static void test_checkpoint_crash(void)
{
    for (int nshards = 1; nshards <= 2; nshards++) {
        char *dir = test_mkdtemp("rwsnap-test");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            crash_child(dir, nshards);
        int status;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        fleet f;
        fleet_init(&f);
        rw_err e;
        rw_store *st = open_dir(dir, nshards, &e);
        CHECK(st != NULL);
        if (!st) {
            test_rmtree(dir);
            continue;
        }
        int nooo = (int)(sizeof OOO / sizeof *OOO);
        CHECK(check_all(st, &f, 200, OOO, nooo));
        rw_store_stats s;
        rw_store_get_stats(st, &s);
        CHECK_INT(s.series, NSER);
        /* the loaded open chunks take more samples, and a clean close
         * writes them into blocks with the rest */
        for (int b = 200; b < 230; b++)
            CHECK_INT(append_batch(st, &f, b), RW_OK);
        CHECK(check_all(st, &f, 230, OOO, nooo));
        rw_store_close(st);
        /* a completed closing flush leaves neither WAL nor snapshot */
        CHECK(!file_exists(dir, "head-0.snap"));
        st = reopen_checked(dir, nshards, 230, OOO, nooo);
        if (st) {
            rw_store_get_stats(st, &s);
            CHECK_INT(s.samples_in_head, 0);
            rw_store_close(st);
        }
        test_rmtree(dir);
    }
}

/* A child process fills dir (one shard): batches [from, nb), a checkpoint
 * (with ckpt); with `keep`, the snapshot is also linked there, a full flush
 * follows and 10 more batches; then it dies without a close. */
static void child_fill(const char *dir, int from, int nb, int ckpt, const char *keep)
{
    char snap[512];
    snprintf(snap, sizeof snap, "%s/head-0.snap", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fleet f;
        fleet_init(&f);
        rw_err e;
        rw_store *st = open_dir(dir, 1, &e);
        if (!st)
            _exit(2);
        for (int b = from; b < nb; b++)
            if (append_batch(st, &f, b) != RW_OK)
                _exit(3);
        if (ckpt && rw_store_checkpoint(st, &e) != RW_OK)
            _exit(4);
        if (keep) {
            if (link(snap, keep) != 0)
                _exit(5);
            if (rw_store_maintain(st, &e) != RW_OK) /* a full flush */
                _exit(6);
            for (int b = nb; b < nb + 10; b++)
                if (append_batch(st, &f, b) != RW_OK)
                    _exit(7);
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A snapshot that a later full flush made useless (as when the process died
 * between the flush's commit and the snapshot's deletion) adds nothing: its
 * chunks are all in blocks. */
static void test_stale_snapshot(void)
{
    char *dir = test_mkdtemp("rwsnap-test");
    char snap[512], keep[512];
    snprintf(snap, sizeof snap, "%s/head-0.snap", dir);
    snprintf(keep, sizeof keep, "%s/keep", dir);
    child_fill(dir, 0, 100, 1, keep);
    CHECK(access(snap, F_OK) != 0); /* the full flush deleted it */
    CHECK(rename(keep, snap) == 0);
    rw_store *st = reopen_checked(dir, 1, 110, NULL, 0);
    if (st) {
        rw_store_stats s;
        rw_store_get_stats(st, &s);
        /* in memory: only the 10 batches after the flush (from the WAL), of
         * the 30 series that exist before batch 150 */
        CHECK_INT(s.samples_in_head, 10 * 30);
        rw_store_close(st);
    }
    test_rmtree(dir);
}

/* The WAL a snapshot names can be all gone (a clean stop drops the WAL's
 * empty last segment): the segments written after it must still be
 * numbered past it, or the next crash's replay would skip them. */
static void test_snapshot_without_wal(void)
{
    char *dir = test_mkdtemp("rwsnap-test");
    child_fill(dir, 0, 100, 1, NULL);
    char wal[512];
    snprintf(wal, sizeof wal, "%s/wal", dir);
    DIR *d = opendir(wal);
    struct dirent *de;
    int removed = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", wal, de->d_name);
        removed += unlink(p) == 0;
    }
    if (d)
        closedir(d);
    CHECK(removed >= 1);
    child_fill(dir, 100, 150, 0, NULL);
    rw_store *st = reopen_checked(dir, 1, 150, NULL, 0);
    if (st)
        rw_store_close(st);
    test_rmtree(dir);
}

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static void flip_byte(const char *p, long off)
{
    FILE *fp = fopen(p, "r+b");
    if (!fp)
        return;
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ 0x5a, fp);
    fclose(fp);
}

/* Damage: an unreadable header refuses the open, naming the file; a damaged
 * frame or a file cut short is reported and skipped - the store opens, the
 * series (their rows were written by the checkpoint) take new samples. */
static void test_damaged_snapshot(void)
{
    for (int mode = 0; mode < 3; mode++) {
        char *dir = test_mkdtemp("rwsnap-test");
        char snap[512];
        snprintf(snap, sizeof snap, "%s/head-0.snap", dir);
        child_fill(dir, 0, 160, 1, NULL);
        long size = file_size(snap);
        CHECK(size > 100);
        if (mode == 0)
            flip_byte(snap, 20); /* the header's WAL segment number */
        else if (mode == 1)
            flip_byte(snap, size / 2);
        else
            CHECK(truncate(snap, size / 2) == 0);
        fleet f;
        fleet_init(&f);
        rw_err e;
        rw_store *st = open_dir(dir, 1, &e);
        if (mode == 0) {
            CHECK(st == NULL);
            CHECK_MSG(strstr(e.msg, "head-0.snap") && strstr(e.msg, "damaged"), "message: %s",
                      e.msg);
            /* moved away, the store opens without it */
            char aside[600];
            snprintf(aside, sizeof aside, "%s.bad", snap);
            CHECK(rename(snap, aside) == 0);
            st = open_dir(dir, 1, &e);
        }
        CHECK(st != NULL);
        if (st) {
            rw_store_stats s;
            rw_store_get_stats(st, &s);
            CHECK_INT(s.series, NSER);
            CHECK(s.samples_in_head < 160 * NSER);
            CHECK_INT(append_batch(st, &f, 1000), RW_OK);
            rw_store_close(st);
        }
        test_rmtree(dir);
    }
}

/* A format-3 data directory (before the head snapshot) opens and is
 * recorded as format 4, its data intact. */
static void test_format3_upgrade(void)
{
    char *dir = test_mkdtemp("rwsnap-test");
    fleet f;
    fleet_init(&f);
    rw_err e;
    rw_store *st = open_dir(dir, 2, &e);
    CHECK(st != NULL);
    if (!st)
        return;
    for (int b = 0; b < 50; b++)
        CHECK_INT(append_batch(st, &f, b), RW_OK);
    rw_store_close(st);
    for (int k = 0; k < 2; k++) {
        char p[512];
        snprintf(p, sizeof p, "%s/shard-%d.db", dir, k);
        sqlite3 *db;
        CHECK(sqlite3_open(p, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, "UPDATE meta SET value=3 WHERE key='format'", NULL, NULL, NULL) ==
              SQLITE_OK);
        sqlite3_close(db);
    }
    st = reopen_checked(dir, 2, 50, NULL, 0);
    if (st)
        rw_store_close(st);
    for (int k = 0; k < 2; k++) {
        char p[512];
        snprintf(p, sizeof p, "%s/shard-%d.db", dir, k);
        sqlite3 *db;
        sqlite3_stmt *q;
        CHECK(sqlite3_open(p, &db) == SQLITE_OK);
        CHECK(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='format'", -1, &q, NULL) ==
              SQLITE_OK);
        CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 4);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    test_rmtree(dir);
}

int main(void)
{
    RUN(test_checkpoint_crash);
    RUN(test_stale_snapshot);
    RUN(test_snapshot_without_wal);
    RUN(test_damaged_snapshot);
    RUN(test_format3_upgrade);
    TEST_DONE();
}
