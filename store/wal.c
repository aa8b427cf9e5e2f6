/* wal.c - the store-wide write-ahead log: append-only segment files in
 * <data>/wal, written by group commit. An append (shard_append.c) changes the
 * in-memory head, leaves entries in its shards' pending chains and takes a
 * ticket; wal_wait() then returns once a record holding those entries is on
 * disk. Whoever finds no commit running becomes the leader: it takes every
 * shard's pending chain, encodes each into a section (walrec.c), compresses
 * it with zstd, appends ONE record and syncs it, then publishes the tickets
 * it covered. So however many shards a request touches, it costs one write
 * and one sync, shared with every request that arrived meanwhile.
 *
 * Where the file system supports it the segment is opened O_DIRECT: each
 * commit writes whole aligned blocks - the partial last block of the
 * previous commit (kept in memory) plus the new record, zero-padded - so a
 * commit costs its own bytes plus at most one block, instead of dirtying a
 * whole page-cache page that then has to be written back again (that made
 * the old design write ~50 bytes per sample). Elsewhere (tmpfs) plain
 * appends. Every write is followed by fdatasync before any ticket it covers
 * is published.
 *
 * A failed write (disk full, I/O error) puts the taken entries back in front
 * of the pending chains (no allocation), fails the waiters it covered (503)
 * and marks the segment broken: the next commit starts a new segment, so a
 * half-written record can only ever be a segment's last. Segments are
 * deleted by wal_truncate() once every shard has flushed their samples into
 * blocks (flush.c) - or, up to MAX_SPARES of them, kept as spare files that
 * later become new segments: overwriting a file's blocks in place makes a
 * commit's fdatasync one device flush, where growing a file also writes
 * its inode every commit. Every record names its segment, so the older
 * records a reused file still holds are never replayed as its own.
 * Layout: FORMAT.md "WAL". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define SEG_MAGIC "RWWAL3\0\0"
#define SEG_HDR1 16                /* format 1: magic, version, CRC */
#define SEG_HDR 24                 /* format 2: magic, version, CRC, number */
#define REC_MAGIC1 0x33525752u     /* "RWR3" little endian */
#define REC_HDR1 12
#define REC_MAGIC 0x34525752u      /* "RWR4": carries its segment's number */
#define REC_HDR 20
#define MAX_SPARES 4

static void spare_path(const rw_wal *w, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/spare-%016llx", w->dir, (unsigned long long)seq);
}

/* A format 2 segment header for segment seq. */
static void seg_header(uint8_t h[SEG_HDR], uint64_t seq)
{
    memcpy(h, SEG_MAGIC, 8);
    put_u32le(h + 8, 2);
    put_u64le(h + 16, seq);
    uLong c = crc32(0L, h, 12);
    put_u32le(h + 12, (uint32_t)crc32(c, h + 16, 8));
}

static void seg_path(const rw_wal *w, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016llx", w->dir, (unsigned long long)seq);
}

static int seg_cmp(const void *a, const void *b)
{
    const wal_seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int segs_push(rw_wal *w, uint64_t seq, uint64_t bytes)
{
    if (w->nsegs == w->capsegs) {
        size_t nc = w->capsegs ? w->capsegs * 2 : 16;
        wal_seg *n = realloc(w->segs, nc * sizeof *n);
        if (!n)
            return -1;
        w->segs = n;
        w->capsegs = nc;
    }
    w->segs[w->nsegs++] = (wal_seg){.seq = seq, .bytes = bytes, .maxt = INT64_MIN};
    w->total_bytes += bytes;
    return 0;
}

int store_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

rw_rc wal_open(rw_store *st, rw_err *err)
{
    rw_wal *w = &st->wal;
    w->store = st;
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    rw_buf_init(&w->raw, 0);
    rw_buf_init(&w->comp, 0);
    rw_buf_init(&w->rec, 0);
    size_t dl = strlen(st->opts.dir) + 8;
    w->dir = malloc(dl);
    w->ws = calloc((size_t)st->nshards, sizeof *w->ws);
    w->taken = calloc((size_t)st->nshards, sizeof *w->taken);
    w->zc = ZSTD_createCCtx();
    w->spares = calloc(MAX_SPARES, sizeof *w->spares);
    if (!w->dir || !w->ws || !w->taken || !w->zc || !w->spares)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    snprintf(w->dir, dl, "%s/wal", st->opts.dir);
    if (mkdir(w->dir, 0755) < 0 && errno != EEXIST)
        return rw_err_set(err, RW_IO, "store: cannot create %s: %s", w->dir, strerror(errno));
    DIR *d = opendir(w->dir);
    if (!d)
        return rw_err_set(err, RW_IO, "store: cannot read %s: %s", w->dir, strerror(errno));
    struct dirent *de;
    rw_rc rc = RW_OK;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strncmp(n, "spare-", 6) == 0 && strlen(n) == 22 &&
            strspn(n + 6, "0123456789abcdef") == 16) {
            uint64_t old = strtoull(n + 6, NULL, 16);
            /* new segments are numbered past every spare's: a number is
               never used twice, so no older record can pass as a newer
               segment's (a stop that died before deleting the spares may
               have left no segment to number from) */
            if (old >= w->min_seq)
                w->min_seq = old + 1;
            if (w->nspares < MAX_SPARES) {
                w->spares[w->nspares++] = old;
            } else {
                char p[4096];
                spare_path(w, old, p, sizeof p);
                unlink(p);
            }
            continue;
        }
        if (strlen(n) != 16 || strspn(n, "0123456789abcdef") != 16)
            continue;
        uint64_t seq = strtoull(n, NULL, 16);
        char p[4096];
        struct stat sb;
        seg_path(w, seq, p, sizeof p);
        if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        if (seq == 0 || segs_push(w, seq, (uint64_t)sb.st_size) < 0) {
            rc = seq ? rw_err_set(err, RW_NOMEM, "out of memory") : RW_OK;
            if (rc != RW_OK)
                break;
        }
    }
    closedir(d);
    if (rc == RW_OK && w->nsegs > 1)
        qsort(w->segs, w->nsegs, sizeof *w->segs, seg_cmp);
    return rc;
}

void wal_close(rw_wal *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    /* a stopped store keeps no spares: they are disk space only a running
       one saves syncs with (a crash leaves them for the next start) */
    for (size_t i = 0; w->spares && i < w->nspares; i++) {
        char p[4096];
        spare_path(w, w->spares[i], p, sizeof p);
        unlink(p);
    }
    w->nspares = 0;
    if (w->ws)
        for (int k = 0; k < w->store->nshards; k++)
            walstate_free(&w->ws[k]);
    free(w->ws);
    w->ws = NULL;
    free(w->taken);
    w->taken = NULL;
    ZSTD_freeCCtx(w->zc);
    w->zc = NULL;
    free(w->wbuf);
    w->wbuf = NULL;
    rw_buf_free(&w->raw);
    rw_buf_free(&w->comp);
    rw_buf_free(&w->rec);
    free(w->segs);
    w->segs = NULL;
    free(w->spares);
    w->spares = NULL;
    free(w->dir);
    w->dir = NULL;
    pthread_mutex_destroy(&w->mu);
}

/* Makes the staging buffer hold at least `need` bytes (aligned, zeroed
 * past what is kept). */
static int wbuf_reserve(rw_wal *w, size_t need)
{
    if (need <= w->wcap)
        return 0;
    size_t n = w->wcap ? w->wcap : 65536;
    while (n < need)
        n *= 2;
    void *p;
    if (posix_memalign(&p, 4096, n) != 0)
        return -1;
    memset(p, 0, n);
    if (w->wbuf)
        memcpy(p, w->wbuf, w->tail);
    free(w->wbuf);
    w->wbuf = p;
    w->wcap = n;
    return 0;
}

int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Writes the header block of a file opened O_DIRECT: 512-byte blocks,
 * else 4096-byte ones. The block size, or 0 (errno set; EINVAL: the file
 * system takes no O_DIRECT writes). */
static size_t write_header_block(rw_wal *w, int fd, const uint8_t hdr[SEG_HDR])
{
    static const size_t aligns[] = {512, 4096};
    for (size_t i = 0; i < 2; i++) {
        memset(w->wbuf, 0, aligns[i]);
        memcpy(w->wbuf, hdr, SEG_HDR);
        if (pwrite_all(fd, w->wbuf, aligns[i], 0) == 0)
            return aligns[i];
        if (errno != EINVAL)
            return 0;
    }
    return 0;
}

/* A spare (a covered segment's file kept by wal_truncate) made segment seq:
 * its header rewritten and synced while it still has its spare name, then
 * renamed. Its old records stay behind the new ones and are never read as
 * this segment's: every record names its segment. Overwriting blocks a file
 * already has changes no file metadata, so a commit's fdatasync is one
 * device flush - not also the inode's new size and allocation, as in a
 * growing file. -1: no spare (or none usable). Leader. */
static int take_spare(rw_wal *w, uint64_t seq, const uint8_t hdr[SEG_HDR], size_t *align)
{
    for (;;) {
        pthread_mutex_lock(&w->mu);
        uint64_t old = w->nspares ? w->spares[--w->nspares] : 0;
        pthread_mutex_unlock(&w->mu);
        if (!old)
            return -1;
        char sp[4096], p[4096];
        spare_path(w, old, sp, sizeof sp);
        seg_path(w, seq, p, sizeof p);
        int fd = open(sp, O_WRONLY | O_CLOEXEC | O_DIRECT);
        size_t a = fd >= 0 ? write_header_block(w, fd, hdr) : 0;
        if (a && fdatasync(fd) == 0 && rename(sp, p) == 0) {
            *align = a;
            return fd;
        }
        if (fd >= 0)
            close(fd);
        unlink(sp);
    }
}

/* Opens segment seq for writing and writes its header (leader): a spare
 * file when there is one, else a new file, O_DIRECT where the file system
 * takes it (512-byte then 4096-byte blocks), else buffered I/O. */
static rw_rc open_segment(rw_wal *w, uint64_t seq, rw_err *err)
{
    char p[4096];
    seg_path(w, seq, p, sizeof p);
    if (wbuf_reserve(w, 8192) < 0)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    uint8_t hdr[SEG_HDR];
    seg_header(hdr, seq);
    size_t align = 1;
    int fd = take_spare(w, seq, hdr, &align), direct = fd >= 0;
    if (fd < 0) {
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
        if (fd >= 0) {
            align = write_header_block(w, fd, hdr);
            if (align) {
                direct = 1;
            } else {
                int e = errno;
                close(fd);
                fd = -1;
                if (e != EINVAL) {
                    unlink(p);
                    return rw_err_set(err, RW_IO, "wal: cannot write %s: %s", p, strerror(e));
                }
                align = 1;
            }
        }
        if (fd < 0) { /* no O_DIRECT on this file system */
            fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0)
                return rw_err_set(err, RW_IO, "wal: cannot create %s: %s", p, strerror(errno));
            if (pwrite_all(fd, hdr, SEG_HDR, 0) < 0) {
                int e = errno;
                close(fd);
                unlink(p);
                return rw_err_set(err, RW_IO, "wal: cannot write %s: %s", p, strerror(e));
            }
        }
        if (fdatasync(fd) < 0) {
            int e = errno;
            close(fd);
            unlink(p);
            return rw_err_set(err, RW_IO, "wal: cannot sync %s: %s", p, strerror(e));
        }
    }
    store_sync_dir(w->dir); /* the new name must survive a crash before any record in it counts */
    pthread_mutex_lock(&w->mu);
    int pushed = segs_push(w, seq, SEG_HDR);
    pthread_mutex_unlock(&w->mu);
    if (pushed < 0) {
        close(fd);
        unlink(p);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->direct = direct;
    w->align = align;
    w->seq = seq;
    w->off = SEG_HDR;
    w->nrec = 0;
    if (direct) {
        memset(w->wbuf, 0, w->wcap);
        memcpy(w->wbuf, hdr, SEG_HDR);
        w->tail = SEG_HDR;
    } else {
        w->tail = 0;
    }
    w->broken = 0;
    return RW_OK;
}

void wal_limits(const rw_store *st, uint64_t *seg, uint64_t *ckpt)
{
    uint64_t nser = atomic_load(&st->nseries);
    uint64_t s = (uint64_t)st->opts.wal_segment_bytes;
    if (s < nser * 8)
        s = nser * 8;
    uint64_t c = (uint64_t)st->opts.checkpoint_bytes;
    if (c < s)
        c = s;
    *seg = s;
    *ckpt = c;
}

uint64_t wal_current_seq(rw_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t s = w->nsegs ? w->segs[w->nsegs - 1].seq : 0;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static uint64_t next_seq(rw_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t s = w->nsegs ? w->segs[w->nsegs - 1].seq + 1 : 1;
    if (s < w->min_seq)
        s = w->min_seq;
    pthread_mutex_unlock(&w->mu);
    return s;
}

rw_rc wal_start(rw_wal *w, rw_err *err)
{
    return open_segment(w, next_seq(w), err);
}

/* Removes an empty segment the leader just left (rotation after nothing was
 * written into it). mu not held. */
static void drop_if_empty(rw_wal *w, uint64_t seq)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i + 1 < w->nsegs; i++) {
        if (w->segs[i].seq == seq && w->segs[i].bytes <= SEG_HDR) {
            char p[4096];
            seg_path(w, seq, p, sizeof p);
            unlink(p);
            w->total_bytes -= w->segs[i].bytes;
            memmove(w->segs + i, w->segs + i + 1, (w->nsegs - i - 1) * sizeof *w->segs);
            w->nsegs--;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
}

/* Starts a new segment (leader). */
static rw_rc rotate(rw_wal *w, rw_err *err)
{
    uint64_t old = w->fd >= 0 ? w->seq : 0;
    int was_empty = w->fd >= 0 && w->off <= SEG_HDR && !w->broken;
    rw_rc rc = open_segment(w, next_seq(w), err);
    if (rc == RW_OK && was_empty)
        drop_if_empty(w, old);
    return rc;
}

/* Appends one record (leader): the bytes in w->rec. */
static rw_rc write_record(rw_wal *w, rw_err *err)
{
    const uint8_t *rec = (const uint8_t *)w->rec.p;
    size_t len = w->rec.len;
    if (w->direct) {
        size_t total = w->tail + len;
        size_t padded = (total + w->align - 1) / w->align * w->align;
        if (wbuf_reserve(w, padded) < 0)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        memcpy(w->wbuf + w->tail, rec, len);
        memset(w->wbuf + total, 0, padded - total);
        uint64_t at = w->off - w->tail;
        if (pwrite_all(w->fd, w->wbuf, padded, at) < 0 || fdatasync(w->fd) < 0)
            return rw_err_set(err, RW_IO, "wal: write %016llx: %s", (unsigned long long)w->seq,
                              strerror(errno));
        size_t keep = total % w->align;
        memmove(w->wbuf, w->wbuf + total - keep, keep);
        memset(w->wbuf + keep, 0, padded - keep);
        w->tail = keep;
    } else {
        if (pwrite_all(w->fd, rec, len, w->off) < 0 || fdatasync(w->fd) < 0)
            return rw_err_set(err, RW_IO, "wal: write %016llx: %s", (unsigned long long)w->seq,
                              strerror(errno));
    }
    w->off += len;
    w->nrec++;
    return RW_OK;
}

/* One commit (leader, mu not held): everything pending in every shard. */
static rw_rc do_commit(rw_wal *w, rw_err *err)
{
    rw_store *st = w->store;
    int ns = st->nshards;
    pchain *taken = w->taken;
    int any = 0;
    for (int k = 0; k < ns; k++) {
        rw_shard *sh = &st->shards[k];
        pthread_mutex_lock(&sh->mu);
        pchain_take(&sh->pend, &taken[k]);
        pthread_mutex_unlock(&sh->mu);
        any |= taken[k].head != NULL;
    }
    if (!any)
        return RW_OK;
    int64_t t0 = rw_mono_ns();
    rw_rc rc = RW_OK;
    uint64_t seg_limit, ckpt_limit;
    wal_limits(st, &seg_limit, &ckpt_limit);
    if (w->fd < 0 || w->broken || w->off >= seg_limit)
        rc = rotate(w, err);
    int64_t maxt = INT64_MIN;
    int future = 0;
    if (rc == RW_OK) {
        int64_t bound = store_newest_bound(st);
        rw_buf_reset(&w->rec);
        uint8_t hdr[REC_HDR] = {0};
        rw_buf_append(&w->rec, hdr, REC_HDR);
        int nsec = 0;
        for (int k = 0; k < ns; k++)
            nsec += taken[k].head != NULL;
        put_uvarint(&w->rec, (uint64_t)nsec);
        for (int k = 0; k < ns && rc == RW_OK; k++) {
            if (!taken[k].head)
                continue;
            rw_buf_reset(&w->raw);
            int reset = w->nrec % WALREC_RESET_EVERY == 0;
            if (walrec_encode(&taken[k], &w->ws[k], w->seq, reset, bound, &w->raw, &maxt,
                              &future) < 0) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory encoding the WAL");
                break;
            }
            size_t bound_c = ZSTD_compressBound(w->raw.len);
            rw_buf_reset(&w->comp);
            size_t clen = 0;
            if (rw_buf_reserve(&w->comp, bound_c) == RW_OK) {
                clen = ZSTD_compressCCtx(w->zc, w->comp.p, bound_c, w->raw.p, w->raw.len, 1);
                if (ZSTD_isError(clen))
                    clen = 0;
            }
            put_uvarint(&w->rec, (uint64_t)k);
            put_uvarint(&w->rec, w->raw.len);
            if (clen && clen < w->raw.len) {
                put_uvarint(&w->rec, clen);
                rw_buf_append(&w->rec, w->comp.p, clen);
            } else {
                put_uvarint(&w->rec, 0);
                rw_buf_append(&w->rec, w->raw.p, w->raw.len);
            }
        }
        if (rc == RW_OK && w->rec.failed)
            rc = rw_err_set(err, RW_NOMEM, "out of memory encoding the WAL");
        if (rc == RW_OK) {
            uint8_t *h = (uint8_t *)w->rec.p;
            size_t body = w->rec.len - REC_HDR;
            put_u32le(h, REC_MAGIC);
            put_u32le(h + 4, (uint32_t)body);
            put_u64le(h + 12, w->seq);
            uLong c = crc32(0L, h + 12, 8);
            put_u32le(h + 8, (uint32_t)crc32(c, h + REC_HDR, (uInt)body));
            rc = write_record(w, err);
        }
    }
    if (rc != RW_OK) {
        /* the value state may be ahead of what is on disk: a new segment
         * resets it; the entries go back in front, in order */
        w->broken = 1;
        for (int k = 0; k < ns; k++) {
            rw_shard *sh = &st->shards[k];
            pthread_mutex_lock(&sh->mu);
            pchain_restore(&sh->pend, &taken[k]);
            pthread_mutex_unlock(&sh->mu);
        }
        return rc;
    }
    for (int k = 0; k < ns; k++)
        pchain_free(&taken[k]);
    pthread_mutex_lock(&w->mu);
    wal_seg *sg = &w->segs[w->nsegs - 1];
    sg->bytes = w->off;
    if (maxt > sg->maxt)
        sg->maxt = maxt;
    sg->future |= (uint8_t)future;
    w->total_bytes += w->rec.len;
    int kick = w->total_bytes > ckpt_limit;
    pthread_mutex_unlock(&w->mu);
    if (kick)
        store_kick(st); /* a full flush is due: replay stays bounded */
    rw_histogram_observe(st->m_commit_dur, (double)(rw_mono_ns() - t0) / 1e9);
    rw_histogram_observe(st->m_rec_bytes, (double)w->rec.len);
    rw_counter_add(st->m_commits, 1);
    rw_counter_add(st->m_wal_bytes, w->rec.len);
    return RW_OK;
}

uint64_t wal_ticket(rw_wal *w, int added)
{
    if (added)
        return atomic_fetch_add(&w->ticket, 1) + 1;
    return atomic_load(&w->ticket);
}

/* Waiting for the leader: a futex on w->wake, bumped (and every waiter
 * woken) each time a leader lets go. A waiter reads the word before it
 * looks at what it waits for, so a change after that look makes its wait
 * return at once. Not a condition variable: with one, every waiter woken
 * by a commit then queued again for the mutex (a sixth of the write
 * path's context switches). */
static void wake_wait(rw_wal *w, uint32_t seen)
{
    syscall(SYS_futex, &w->wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void lead_end(rw_wal *w)
{
    atomic_store(&w->leader, 0);
    atomic_fetch_add(&w->wake, 1);
    syscall(SYS_futex, &w->wake, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Becomes the leader, waiting for the one there is. */
static void lead_begin(rw_wal *w)
{
    for (;;) {
        uint32_t seen = atomic_load(&w->wake);
        int no = 0;
        if (atomic_compare_exchange_strong(&w->leader, &no, 1))
            return;
        wake_wait(w, seen);
    }
}

rw_rc wal_wait(rw_wal *w, uint64_t ticket, rw_err *err)
{
    rw_store *st = w->store;
    uint64_t fails_seen = atomic_load(&w->fail_gen);
    for (;;) {
        uint32_t seen = atomic_load(&w->wake);
        if (atomic_load(&w->durable) >= ticket)
            return RW_OK;
        if (atomic_load(&w->fail_gen) != fails_seen) {
            pthread_mutex_lock(&w->mu);
            rw_rc rc = RW_OK;
            if (w->fail_ticket >= ticket)
                rc = rw_err_set(err, w->fail_rc, "%s", w->fail_msg);
            fails_seen = atomic_load(&w->fail_gen);
            pthread_mutex_unlock(&w->mu);
            if (rc != RW_OK)
                return rc;
        }
        int no = 0;
        if (!atomic_compare_exchange_strong(&w->leader, &no, 1)) {
            wake_wait(w, seen);
            continue;
        }
        uint64_t target = atomic_load(&w->ticket);
        rw_err lerr;
        rw_err_init(&lerr);
        rw_rc r = do_commit(w, &lerr);
        if (r == RW_OK) {
            uint64_t d = atomic_load(&w->durable);
            while (d < target && !atomic_compare_exchange_weak(&w->durable, &d, target))
                ;
        } else {
            pthread_mutex_lock(&w->mu);
            w->fail_ticket = target;
            w->fail_rc = r;
            snprintf(w->fail_msg, sizeof w->fail_msg, "%.240s", lerr.msg);
            fails_seen = atomic_fetch_add(&w->fail_gen, 1); /* our own failure covers us */
            pthread_mutex_unlock(&w->mu);
            rw_counter_add(st->m_commit_fail, 1);
            rw_warn("store: WAL commit failed, data kept pending: %s", lerr.msg);
        }
        lead_end(w);
    }
}

rw_rc wal_rotate(rw_wal *w, uint64_t *seq, rw_err *err)
{
    lead_begin(w);
    rw_rc rc = rotate(w, err);
    pthread_mutex_lock(&w->mu);
    *seq = w->nsegs ? w->segs[w->nsegs - 1].seq : 0;
    pthread_mutex_unlock(&w->mu);
    lead_end(w);
    return rc;
}

void wal_drop_empty_tail(rw_wal *w)
{
    pthread_mutex_lock(&w->mu);
    int drop = w->nsegs && w->fd >= 0 && w->off <= SEG_HDR &&
               w->segs[w->nsegs - 1].seq == w->seq;
    if (drop) {
        char p[4096];
        seg_path(w, w->seq, p, sizeof p);
        unlink(p);
        w->total_bytes -= w->segs[w->nsegs - 1].bytes;
        w->nsegs--;
        close(w->fd);
        w->fd = -1;
    }
    pthread_mutex_unlock(&w->mu);
}

uint64_t wal_bytes(rw_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t b = w->total_bytes;
    pthread_mutex_unlock(&w->mu);
    return b;
}

void wal_note_segment(rw_wal *w, uint64_t seq, uint64_t end, int64_t maxt, int future)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nsegs; i++) {
        if (w->segs[i].seq == seq) {
            if (end && end < w->segs[i].bytes) { /* a reused file: stale bytes after */
                w->total_bytes -= w->segs[i].bytes - end;
                w->segs[i].bytes = end;
            }
            if (maxt > w->segs[i].maxt)
                w->segs[i].maxt = maxt;
            w->segs[i].future |= (uint8_t)future;
        }
    }
    pthread_mutex_unlock(&w->mu);
}

/* Whether every shard's flushes cover segment g: it was closed before a full
 * flush began, or before a window flush began that wrote everything older
 * than a time after its newest sample. */
static int covered(const rw_store *st, const wal_seg *g)
{
    for (int k = 0; k < st->nshards; k++) {
        const rw_shard *sh = &st->shards[k];
        if (g->seq < sh->ckpt_seq)
            continue;
        if (g->seq < sh->flush_win_seq && !g->future && g->maxt < sh->flush_win_end)
            continue;
        return 0;
    }
    return 1;
}

size_t wal_truncate(rw_wal *w)
{
    rw_store *st = w->store;
    uint64_t *del = NULL;
    size_t ndel = 0;
    pthread_mutex_lock(&w->mu);
    if (w->nsegs > 1)
        del = malloc((w->nsegs - 1) * sizeof *del);
    if (del) {
        size_t keep = 0;
        for (size_t i = 0; i < w->nsegs; i++) {
            /* never the open segment (the last) */
            if (i + 1 < w->nsegs && covered(st, &w->segs[i])) {
                del[ndel++] = w->segs[i].seq;
                w->total_bytes -= w->segs[i].bytes;
            } else {
                w->segs[keep++] = w->segs[i];
            }
        }
        w->nsegs = keep;
    }
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < ndel; i++) {
        char p[4096], sp[4096];
        seg_path(w, del[i], p, sizeof p);
        spare_path(w, del[i], sp, sizeof sp);
        /* kept for a later segment while there is room for spares (a
           rename, so it never goes back to being this segment; done
           outside the mutex, which a commit takes). Only this function
           adds spares, under the store's ckpt_mu; commits only take them:
           the room seen before the rename is still there after it */
        pthread_mutex_lock(&w->mu);
        int room = w->nspares < MAX_SPARES;
        pthread_mutex_unlock(&w->mu);
        if (room && rename(p, sp) == 0) {
            pthread_mutex_lock(&w->mu);
            w->spares[w->nspares++] = del[i];
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (unlink(p) < 0 && errno != ENOENT)
            rw_warn("wal: cannot delete %s: %s", p, strerror(errno));
    }
    free(del);
    return ndel;
}

/* ---- reading (recovery) ---- */

int wal_read_segment(const rw_wal *w, uint64_t seq, uint8_t **buf, size_t *len, rw_err *err)
{
    char p[4096];
    seg_path(w, seq, p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rw_err_set(err, RW_IO, "wal: cannot open %s: %s", p, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        rw_err_set(err, RW_IO, "wal: cannot stat %s: %s", p, strerror(errno));
        return -1;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        rw_err_set(err, RW_NOMEM, "out of memory reading %s", p);
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            rw_err_set(err, RW_IO, "wal: cannot read %s: %s", p, strerror(e));
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

/* Whether the bytes at o, which are not a record of this segment, are its
 * clean end. Format 1: zeros (the padding after the last record) or the end
 * of the file. Format 2: zeros up to the next 512-byte boundary (the
 * padding of the last write; a file that was a spare has older bytes
 * after it), or a record of another segment (one such file had). */
static int clean_end(const uint8_t *buf, size_t len, size_t o, uint32_t ver)
{
    size_t to = ver == 1 ? o + 4096 : (o + 511) / 512 * 512;
    for (size_t i = o; i < len && i < to; i++)
        if (buf[i])
            return ver != 1 && len - o >= REC_HDR && get_u32le(buf + o) == REC_MAGIC;
    return 1;
}

int wal_next_record(const uint8_t *buf, size_t len, uint64_t seq, size_t *off, int shard,
                    rw_buf *scratch, const uint8_t **sec, size_t *seclen, const char **why)
{
    size_t o = *off;
    if (len < SEG_HDR1 || memcmp(buf, SEG_MAGIC, 8) != 0) {
        *why = len < SEG_HDR1 ? "segment shorter than its header" : "bad segment magic";
        return -1;
    }
    uint32_t ver = get_u32le(buf + 8);
    size_t rh = ver == 1 ? REC_HDR1 : REC_HDR;
    if (o == 0) {
        uLong c = crc32(0L, buf, 12);
        if (ver == 2 && len >= SEG_HDR)
            c = crc32(c, buf + 16, 8);
        if ((ver != 1 && ver != 2) || (ver == 2 && len < SEG_HDR) ||
            get_u32le(buf + 12) != (uint32_t)c) {
            *why = "bad segment header";
            return -1;
        }
        if (ver == 2 && get_u64le(buf + 16) != seq) {
            *why = "the segment header names another segment";
            return -1;
        }
        o = *off = ver == 1 ? SEG_HDR1 : SEG_HDR;
    }
    if (len - o < rh) {
        *why = NULL; /* clean end */
        return -1;
    }
    uint32_t magic = get_u32le(buf + o), blen = get_u32le(buf + o + 4);
    if (magic != (ver == 1 ? REC_MAGIC1 : REC_MAGIC) ||
        (ver == 2 && get_u64le(buf + o + 12) != seq)) {
        *why = clean_end(buf, len, o, ver) ? NULL : "bad record magic";
        return -1;
    }
    if (blen > len - o - rh) {
        *why = "record runs past the end of the segment (torn write)";
        return -1;
    }
    const uint8_t *body = buf + o + rh;
    uLong c = ver == 1 ? crc32(0L, NULL, 0) : crc32(0L, buf + o + 12, 8);
    if (get_u32le(buf + o + 8) != (uint32_t)crc32(c, body, blen)) {
        *why = "record checksum mismatch (torn or corrupt)";
        return -1;
    }
    *off = o + rh + blen;
    /* the record is intact: find our section */
    const uint8_t *p = body, *end = body + blen;
    uint64_t nsec;
    if (get_uvarint(&p, end, &nsec) < 0) {
        *why = "bad section count";
        return -2;
    }
    for (uint64_t i = 0; i < nsec; i++) {
        uint64_t k, rawlen, clen;
        if (get_uvarint(&p, end, &k) < 0 || get_uvarint(&p, end, &rawlen) < 0 ||
            get_uvarint(&p, end, &clen) < 0) {
            *why = "bad section header";
            return -2;
        }
        uint64_t stored = clen ? clen : rawlen;
        if (stored > (uint64_t)(end - p)) {
            *why = "section past the record";
            return -2;
        }
        if ((int)k == shard) {
            if (!clen) {
                *sec = p;
                *seclen = (size_t)rawlen;
                return 1;
            }
            rw_buf_reset(scratch);
            if (rawlen > (1ull << 31) || rw_buf_reserve(scratch, (size_t)rawlen) != RW_OK) {
                *why = "section too large to decompress";
                return -2;
            }
            size_t r = ZSTD_decompress(scratch->p, (size_t)rawlen, p, (size_t)clen);
            if (ZSTD_isError(r) || r != rawlen) {
                *why = "section does not decompress";
                return -2;
            }
            *sec = (const uint8_t *)scratch->p;
            *seclen = (size_t)rawlen;
            return 1;
        }
        p += stored;
    }
    return 0;
}
