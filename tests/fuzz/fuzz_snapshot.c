/* fuzz_snapshot.c - libFuzzer target for the head snapshot loader
 * (store/snapshot.c, FORMAT.md "Head snapshot"). The input is the body of
 * one frame (a record count, then series records); the target wraps it in a
 * valid header, frame CRC and trailer, so that the parser sees the bytes and
 * not only the checksum. The data directory it lands in holds the database
 * of a store that wrote 4 series (so that records naming them by id find
 * them) and no WAL. The store is opened on it, every series is read back,
 * gets one more sample (a loaded open chunk is appended to) and the store is
 * closed (the closing flush writes the loaded chunks into a block). Any input
 * is loaded, skipped or refused with a message - never a crash or a leak.
 *
 * Seeds (tests/fuzz/corpus/fuzz_snapshot): the frame bodies of the snapshot
 * that template store wrote, made by running the target with
 * RWGATE_FUZZ_SNAPSHOT_SEED=<file> (it writes the body there and exits).
 *   cmake --build build-fuzz --target fuzz_snapshot && build-fuzz/fuzz_snapshot -max_total_time=60 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "core/labels.h"
#include "core/log.h"
#include "store/store.h"

#define NSER 4
#define STEP 15000

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static blob db, dbwal, hdr;    /* the template's database and snapshot header */
static char root[64];

static blob slurp(const char *path)
{
    blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(n > 0 ? (size_t)n : 1);
    if (b.p && n > 0 && fread(b.p, 1, (size_t)n, f) == (size_t)n)
        b.n = (size_t)n;
    fclose(f);
    return b;
}

static void spill(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    if (n)
        fwrite(p, 1, n, f);
    fclose(f);
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rmtree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void rm_root(void)
{
    rmtree(root);
}

static rw_store *open_dir(const char *dir)
{
    rw_store_opts o = {.dir = (char *)dir, .nshards = 1, .ooo_window_ms = 10 * 60 * 1000};
    rw_err e;
    rw_err_init(&e);
    return rw_store_open(&o, &e);
}

/* The template: 4 series, 300 samples each (a completed chunk and an open
 * one), out-of-order samples, a checkpoint. Its database files (before the
 * closing flush puts the samples into blocks) and its snapshot are kept. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("RWGATE_LOG_LEVEL", "error", 0);
    snprintf(root, sizeof root, "/tmp/fuzz-snapshot-XXXXXX");
    if (!mkdtemp(root))
        abort();
    atexit(rm_root);
    char dir[128], p[256];
    snprintf(dir, sizeof dir, "%s/t", root);
    rw_store *st = open_dir(dir);
    if (!st)
        abort();
    char inst[NSER][8];
    rw_label l[NSER][2];
    for (int i = 0; i < NSER; i++) {
        snprintf(inst[i], sizeof inst[i], "s%d", i);
        l[i][0] = (rw_label){"__name__", "m"};
        l[i][1] = (rw_label){"i", inst[i]};
    }
    for (int b = 0; b < 300; b++) {
        for (int i = 0; i < NSER; i++) {
            rw_sample s[2] = {{(int64_t)b * STEP, i % 2 ? b * 0.25 : (double)(b * 3)},
                              {(int64_t)b * STEP - STEP / 2, -1.5}};
            /* every 50th batch: an out-of-order sample too */
            size_t n = b % 50 == 49 ? 2 : 1;
            rw_append_series as = {.labels = l[i], .nlabels = 2,
                                   .hash = rw_labels_hash(l[i], 2), .samples = s,
                                   .nsamples = 1};
            rw_append_result r = {0};
            rw_err e;
            rw_err_init(&e);
            rw_store_append(st, &as, 1, &r, &e);
            if (n == 2) {
                as.samples = &s[1];
                rw_store_append(st, &as, 1, &r, &e);
            }
        }
    }
    rw_err e;
    rw_err_init(&e);
    if (rw_store_checkpoint(st, &e) != RW_OK)
        abort();
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    db = slurp(p);
    snprintf(p, sizeof p, "%s/shard-0.db-wal", dir);
    dbwal = slurp(p);
    snprintf(p, sizeof p, "%s/head-0.snap", dir);
    blob snap = slurp(p);
    rw_store_close(st);
    rmtree(dir);
    /* header (40 bytes), then one frame: u32 length, u32 CRC, body */
    if (!db.n || snap.n < 40 + 8 + 16)
        abort();
    hdr.p = malloc(40);
    memcpy(hdr.p, snap.p, 40);
    hdr.n = 40;
    const char *seed = getenv("RWGATE_FUZZ_SNAPSHOT_SEED");
    if (seed) {
        uint32_t len = (uint32_t)snap.p[40] | (uint32_t)snap.p[41] << 8 |
                       (uint32_t)snap.p[42] << 16 | (uint32_t)snap.p[43] << 24;
        if (48 + (size_t)len <= snap.n)
            spill(seed, snap.p + 48, len);
        exit(0);
    }
    free(snap.p);
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1u << 20))
        return 0;
    char dir[128], p[256];
    snprintf(dir, sizeof dir, "%s/d", root);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/shard-0.db", dir);
    spill(p, db.p, db.n);
    snprintf(p, sizeof p, "%s/shard-0.db-wal", dir);
    spill(p, dbwal.p, dbwal.n);
    uint8_t *f = malloc(hdr.n + 8 + size + 16);
    memcpy(f, hdr.p, hdr.n);
    put_u32(f + hdr.n, (uint32_t)size);
    put_u32(f + hdr.n + 4, (uint32_t)crc32(0L, data, (uInt)size));
    memcpy(f + hdr.n + 8, data, size);
    memset(f + hdr.n + 8 + size, 0, 16); /* the end: an empty frame, record count 0 */
    snprintf(p, sizeof p, "%s/head-0.snap", dir);
    spill(p, f, hdr.n + 8 + size + 16);
    free(f);

    rw_store *st = open_dir(dir);
    if (st) {
        rw_matcher m;
        rw_err e;
        rw_err_init(&e);
        rw_matcher_init(&m, RW_MATCH_RE, "__name__", ".+", &e);
        rw_arena *a = rw_arena_new(0, 64u << 20);
        rw_series_data *out = NULL;
        size_t n = 0;
        if (rw_store_select(st, &m, 1, INT64_MIN, INT64_MAX, 0, 0, a, &out, &n, &e) == RW_OK) {
            for (size_t i = 0; i < n; i++) {
                int64_t t = out[i].n ? out[i].t[out[i].n - 1] + STEP : 0;
                rw_sample s = {t, 1.0};
                rw_append_series as = {.labels = out[i].labels, .nlabels = out[i].nlabels,
                                       .hash = rw_labels_hash(out[i].labels, out[i].nlabels),
                                       .samples = &s, .nsamples = 1};
                rw_append_result r = {0};
                rw_err_init(&e);
                rw_store_append(st, &as, 1, &r, &e);
            }
        }
        rw_matcher_free(&m);
        rw_arena_free(a);
        rw_store_close(st);
    }
    rmtree(dir);
    return 0;
}
