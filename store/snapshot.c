/* snapshot.c - the head snapshot: a shard's head (every series' head chunks,
 * open chunk with its encoder state, out-of-order samples, newest sample,
 * and the labels of series that have no row in `series` yet) written to one
 * file, `head-<k>.snap` (FORMAT.md "Head snapshot").
 *
 * A checkpoint rotates the WAL to a new segment S, then every shard writes
 * its snapshot (a temporary file, synced, renamed over the old one, the
 * directory synced) slice by slice under its lock: each series' state then
 * holds everything applied before S was started. Once every shard's snapshot
 * is durable the segments before S are deleted. The next start loads the
 * snapshot instead of replaying those samples - copying compressed chunks,
 * where replay decodes and encodes every sample again - and replays only the
 * segments from S on.
 *
 * What a flush wrote into a block after the snapshot was taken is skipped at
 * load: a head chunk whose samples are all at or before the series' newest
 * persisted sample is in a block (in-order head samples are always newer
 * than what was in blocks when they were appended, and flushes write a
 * series' chunks oldest first), and one older than retention is dropped.
 * Out-of-order samples go through the replay rules (applied unless present),
 * like WAL replay. So a snapshot is never wrong, only more or less useful;
 * a completed full flush deletes it since it has nothing left to add. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "core/log.h"
#include "core/timeutil.h"
#include "store_int.h"

#define SNAP_MAGIC "RWHEAD4\0"
#define SNAP_VERSION 1
#define SNAP_HDR 40
#define SLICE 2048               /* series per lock hold */
#define FRAME_BYTES (1u << 20)   /* a frame is written once it passes this (a slice
                                    ends there) */
#define FRAME_MAX (256u << 20)   /* a frame longer than this is corrupt */

static void snap_path(const rw_shard *sh, char *p, size_t n, int tmp)
{
    snprintf(p, n, "%s/head-%d.snap%s", sh->store->opts.dir, sh->idx, tmp ? ".tmp" : "");
}

/* ---- writing ---- */

static uint8_t *put_bits(uint8_t *o, uint64_t v)
{
    put_u64le(o, v);
    return o + 8;
}

/* One series' record (mu held): its bytes bounded first (varints at most
 * 10 bytes), reserved once and written in place - a checkpoint writes a
 * record for each of a million series. */
static void put_series(rw_buf *b, const series *s)
{
    const chunk_enc *e = &s->head;
    uint32_t no = s->ooo ? s->ooo->n : 0;
    size_t need = 5 * 10 + 8 + (size_t)s->nchunks * 50 + (size_t)no * 18;
    for (uint32_t i = 0; i < s->nchunks; i++)
        need += s->chunks[i].len;
    if (e->n)
        need += 6 * 10 + 3 + 8 + chunk_enc_len(e);
    uint8_t head[20], *h = put_uv(head, s->id);
    h = put_uv(h, (uint64_t)(!s->in_db) | (uint64_t)(s->has_data ? 2 : 0));
    rw_buf_append(b, head, (size_t)(h - head));
    if (!s->in_db) /* rare: the labels of a series not yet in `series` */
        labels_encode(b, series_labels(s), s->nlabels);
    if (rw_buf_reserve(b, need) != RW_OK)
        return; /* b->failed: the caller gives up */
    uint8_t *o = (uint8_t *)b->p + b->len;
    if (s->has_data) {
        o = put_uv(o, zigzag(s->newest_t));
        o = put_bits(o, s->newest_v);
    }
    o = put_uv(o, s->nchunks);
    for (uint32_t i = 0; i < s->nchunks; i++) {
        const hchunk *c = &s->chunks[i];
        o = put_uv(o, zigzag(c->mint));
        o = put_uv(o, (uint64_t)(c->maxt - c->mint));
        o = put_uv(o, c->n);
        o = put_uv(o, c->seek);
        o = put_uv(o, c->len);
        memcpy(o, c->data, c->len);
        o += c->len;
    }
    o = put_uv(o, e->n);
    if (e->n) {
        o = put_uv(o, e->nbits);
        *o++ = e->leading;
        *o++ = e->trailing;
        *o++ = e->intmode;
        o = put_uv(o, e->seek);
        o = put_uv(o, zigzag(e->t0));
        o = put_uv(o, (uint64_t)(e->t - e->t0));
        o = put_uv(o, e->tdelta);
        o = put_bits(o, e->v);
        o = put_uv(o, e->vdelta);
        memcpy(o, e->b, chunk_enc_len(e));
        o += chunk_enc_len(e);
    }
    o = put_uv(o, no);
    int64_t prev = 0;
    for (uint32_t i = 0; i < no; i++) {
        o = put_uv(o, zigzag(s->ooo->t[i] - prev));
        prev = s->ooo->t[i];
        o = put_bits(o, s->ooo->v[i]);
    }
    b->len = (size_t)(o - (uint8_t *)b->p);
    b->p[b->len] = '\0';
}

/* One frame at *off: u32 body length | u32 CRC-32 of body | body, the body
 * being uvarint nser then the records in f. */
static int write_frame(int fd, uint64_t *off, const rw_buf *f, uint64_t nser)
{
    uint8_t h[8 + 10];
    size_t n = uvarint_encode(h + 8, nser);
    size_t body = n + f->len;
    if (body > FRAME_MAX) {
        errno = EFBIG;
        return -1;
    }
    uint32_t crc = (uint32_t)crc32(crc32(0L, h + 8, (uInt)n), (const Bytef *)f->p, (uInt)f->len);
    put_u32le(h, (uint32_t)body);
    put_u32le(h + 4, crc);
    if (pwrite_all(fd, h, 8 + n, *off) < 0 ||
        pwrite_all(fd, (const uint8_t *)f->p, f->len, *off + 8 + n) < 0)
        return -1;
    *off += 8 + body;
    return 0;
}

rw_rc shard_snapshot_write(rw_shard *sh, uint64_t seq, int64_t deadline_ns, rw_err *err)
{
    int64_t t0 = rw_mono_ns();
    {
        /* the new series' rows first: the snapshot names them by id (when
         * that fails, their labels go into the snapshot) */
        rw_err e;
        rw_err_init(&e);
        if (shard_write_new_series(sh, &e) != RW_OK)
            rw_warn("shard %d: cannot write the new series before the head snapshot (their "
                    "labels go into it): %s",
                    sh->idx, e.msg);
    }
    char tmp[4096], dst[4096];
    snap_path(sh, tmp, sizeof tmp, 1);
    snap_path(sh, dst, sizeof dst, 0);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return rw_err_set(err, RW_IO, "cannot create %s: %s", tmp, strerror(errno));
    uint8_t h[SNAP_HDR];
    memset(h, 0, sizeof h);
    memcpy(h, SNAP_MAGIC, 8);
    put_u32le(h + 8, SNAP_VERSION);
    put_u32le(h + 12, (uint32_t)sh->idx);
    put_u32le(h + 16, (uint32_t)sh->store->nshards);
    put_u64le(h + 20, seq);
    pthread_mutex_lock(&sh->mu);
    put_u32le(h + 28, sh->next_id);
    pthread_mutex_unlock(&sh->mu);
    put_u32le(h + 36, (uint32_t)crc32(0L, h, 36));
    rw_rc rc = pwrite_all(fd, h, sizeof h, 0) < 0
                   ? rw_err_set(err, RW_IO, "cannot write %s: %s", tmp, strerror(errno))
                   : RW_OK;
    rw_buf f;
    rw_buf_init(&f, 0);
    uint64_t nser = 0, total = 0, bytes = sizeof h;
    for (uint32_t from = 0; rc == RW_OK;) {
        if (deadline_ns ? rw_mono_ns() > deadline_ns : store_stopping(sh->store)) {
            rc = rw_err_set(err, RW_AGAIN, "stopped before the snapshot was complete");
            break;
        }
        pthread_mutex_lock(&sh->mu);
        uint32_t cap = sh->cap_id, to = from + SLICE < cap ? from + SLICE : cap;
        for (uint32_t i = from; i < to; i++) {
            const series *s = sh->by_id[i];
            /* a series in `series` with nothing in memory is all on disk */
            if (!s || (s->in_db && !s->head.n && !s->nchunks && !s->ooo))
                continue;
            put_series(&f, s);
            nser++;
            if (f.len >= FRAME_BYTES) { /* a frame's worth: the slice ends here */
                to = i + 1;
                break;
            }
        }
        pthread_mutex_unlock(&sh->mu);
        if (f.failed) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory writing the head snapshot");
            break;
        }
        int last = to >= cap;
        if ((f.len >= FRAME_BYTES || last) && nser) {
            if (write_frame(fd, &bytes, &f, nser) < 0) {
                rc = rw_err_set(err, RW_IO, "cannot write %s: %s", tmp, strerror(errno));
                break;
            }
            total += nser;
            nser = 0;
            rw_buf_reset(&f);
        }
        if (last)
            break;
        from = to;
    }
    rw_buf_free(&f);
    if (rc == RW_OK) {
        /* the end: an empty frame, then the number of records */
        uint8_t end[16];
        put_u32le(end, 0);
        put_u32le(end + 4, 0);
        put_u64le(end + 8, total);
        if (pwrite_all(fd, end, sizeof end, bytes) < 0 || fdatasync(fd) < 0)
            rc = rw_err_set(err, RW_IO, "cannot write %s: %s", tmp, strerror(errno));
        bytes += sizeof end;
    }
    if (close(fd) < 0 && rc == RW_OK)
        rc = rw_err_set(err, RW_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == RW_OK && rename(tmp, dst) < 0)
        rc = rw_err_set(err, RW_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc != RW_OK) {
        unlink(tmp);
        return rc;
    }
    if (store_sync_dir(sh->store->opts.dir) < 0)
        return rw_err_set(err, RW_IO, "cannot sync %s: %s", sh->store->opts.dir,
                          strerror(errno));
    sh->snap_bytes = bytes;
    rw_log(RW_LOG_INFO, "shard %d: head snapshot written: %llu series, %llu bytes in %.3fs",
           sh->idx, (unsigned long long)total, (unsigned long long)bytes,
           (double)(rw_mono_ns() - t0) / 1e9);
    return RW_OK;
}

void shard_snapshot_remove(rw_shard *sh)
{
    char p[4096];
    snap_path(sh, p, sizeof p, 0);
    if (unlink(p) < 0 && errno != ENOENT)
        rw_warn("shard %d: cannot delete %s: %s", sh->idx, p, strerror(errno));
}

/* ---- loading ---- */

/* A chunk of a series record, read before any is applied. */
typedef struct snap_chunk {
    int64_t mint, maxt;
    uint64_t n, seek, len;
    const uint8_t *data;
    int need;
} snap_chunk;

typedef struct loader {
    rw_shard *sh;
    snap_chunk *d;           /* scratch: one record's chunks */
    size_t capd;
    int64_t cutoff;          /* retention: samples before it are dropped */
    snapshot_stats *stats;
    uint32_t next_id;        /* the header's: every id in the file is below */
    int nomem;
} loader;

typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd;

static uint64_t rd_uv(rd *r)
{
    uint64_t v = 0;
    if (r->bad || get_uvarint(&r->p, r->end, &v) < 0)
        r->bad = 1;
    return r->bad ? 0 : v;
}
static uint64_t rd_u64(rd *r)
{
    if (r->bad || r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = get_u64le(r->p);
    r->p += 8;
    return v;
}
static const uint8_t *rd_bytes(rd *r, uint64_t n)
{
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

/* Appends the samples of an encoded chunk through the replay rules (for a
 * chunk that is partly in a block already, or that follows one). */
static void replay_chunk(loader *L, series *s, const uint8_t *b, size_t len)
{
    chunk_it it;
    if (chunk_it_init(&it, b, len) < 0) {
        L->stats->bad_chunks++;
        return;
    }
    int64_t t;
    double v;
    int k;
    while ((k = chunk_it_next(&it, &t, &v)) == 1) {
        uint64_t bits;
        memcpy(&bits, &v, 8);
        int nomem = 0;
        series_append_sample(L->sh, s, t, bits, 1, &nomem);
        if (nomem) {
            L->nomem = 1;
            return;
        }
    }
    if (k < 0)
        L->stats->bad_chunks++;
}

/* Whether a head chunk [mint, maxt] is still needed: not in a block, not
 * older than retention. */
static int chunk_needed(const loader *L, const series *s, int64_t mint, int64_t maxt,
                        int *partly)
{
    *partly = 0;
    if (maxt < L->cutoff)
        return 0;
    if (s->pmint <= s->pmaxt && mint <= s->pmaxt) {
        if (maxt <= s->pmaxt)
            return 0;
        *partly = 1;
    }
    return 1;
}

/* One series record. Returns 0, or -1 when the record is malformed (the
 * rest of its frame is not read). */
static int load_series_rec(loader *L, rd *r)
{
    rw_shard *sh = L->sh;
    uint64_t id = rd_uv(r), flags = rd_uv(r);
    rw_label *l = NULL;
    size_t nl = 0;
    if (r->bad || id == 0 || id >= L->next_id)
        return -1;
    if ((flags & 1) && labels_decode(&r->p, r->end, &l, &nl) < 0)
        return -1;
    series *s = id < sh->cap_id ? sh->by_id[id] : NULL;
    if (!s && l && rw_labels_validate(l, nl, NULL) != RW_OK) {
        L->stats->bad_series++;
        free(l);
        l = NULL;
    }
    if (!s && l) {
        /* created after the last flush: its labels are here only */
        s = shard_series_create(sh, (uint32_t)id, rw_labels_hash(l, nl), l, nl, NULL);
        if (s && shard_note_new_series(sh, (uint32_t)id) < 0) {
            shard_series_delete(sh, s);
            s = NULL;
        }
        if (!s)
            L->stats->bad_series++;
        else if (id >= sh->next_id)
            sh->next_id = (uint32_t)id + 1;
    }
    free(l);
    if (!s)
        L->stats->gone_series++; /* deleted by retention since (or unusable) */
    else
        L->stats->series++;
    int64_t nt = 0;
    uint64_t nv = 0;
    if (flags & 2) {
        nt = unzigzag(rd_uv(r));
        nv = rd_u64(r);
    }
    /* the chunks' descriptors first: whether they can be taken as they are
     * is decided for the series as a whole */
    uint64_t nc = rd_uv(r);
    if (r->bad || nc > (uint64_t)(r->end - r->p))
        return -1;
    if (nc + 1 > L->capd) {
        snap_chunk *nd = realloc(L->d, (nc + 1) * sizeof *nd);
        if (!nd) {
            L->nomem = 1;
            return 0;
        }
        L->d = nd;
        L->capd = nc + 1;
    }
    for (uint64_t i = 0; i < nc; i++) {
        snap_chunk *c = &L->d[i];
        c->mint = unzigzag(rd_uv(r));
        uint64_t span = rd_uv(r);
        c->maxt = (int64_t)((uint64_t)c->mint + span);
        c->n = rd_uv(r);
        c->seek = rd_uv(r);
        c->len = rd_uv(r);
        c->data = rd_bytes(r, c->len);
        /* the count beside the chunk is the one in it (reads and flushes
         * size their buffers by it) */
        if (r->bad || !c->n || c->n > RW_CHUNK_MAX_SAMPLES || c->len > UINT32_MAX ||
            c->seek > c->len || c->maxt < c->mint || span > INT64_MAX ||
            c->len < RW_CHUNK_HDR || c->data[0] != c->n)
            return -1;
    }
    chunk_enc e;
    chunk_enc_init(&e);
    uint64_t hn = rd_uv(r);
    if (hn) {
        e.n = (uint16_t)hn;
        uint64_t nbits = rd_uv(r);
        const uint8_t *st = rd_bytes(r, 3);
        e.seek = (uint16_t)rd_uv(r);
        e.t0 = unzigzag(rd_uv(r));
        uint64_t span = rd_uv(r);
        e.t = (int64_t)((uint64_t)e.t0 + span);
        e.tdelta = rd_uv(r);
        e.v = rd_u64(r);
        e.vdelta = rd_uv(r);
        snap_chunk *c = &L->d[nc];
        /* a chunk of 240 samples takes a few KiB: anything near this bound
         * is not one */
        if (nbits > (1u << 20))
            return -1;
        e.nbits = (uint32_t)nbits;
        c->len = (nbits + 7) / 8;
        c->data = rd_bytes(r, c->len);
        if (r->bad || hn > RW_CHUNK_MAX_SAMPLES || e.nbits < 8 * RW_CHUNK_HDR ||
            c->data[0] != hn || e.seek > c->len || span > INT64_MAX || st[2] > 1)
            return -1;
        e.leading = st[0];
        e.trailing = st[1];
        e.intmode = st[2];
        c->mint = e.t0;
        c->maxt = e.t;
        c->n = hn;
        c->seek = e.seek;
    }
    /* taken as they are unless the series has head data already or one of
     * them is partly in a block: then every needed one goes through the
     * replay rules, which keep the head in time order */
    uint64_t nall = nc + (hn ? 1 : 0);
    int direct = s && !s->head.n && !s->nchunks;
    for (uint64_t i = 0; i < nall && s; i++) {
        int partly;
        L->d[i].need = chunk_needed(L, s, L->d[i].mint, L->d[i].maxt, &partly);
        if (partly)
            direct = 0;
    }
    for (uint64_t i = 0; i < nall && s && !L->nomem; i++) {
        snap_chunk *c = &L->d[i];
        if (!c->need)
            continue;
        L->stats->chunks++;
        if (!direct) {
            replay_chunk(L, s, c->data, c->len);
        } else if (i == nc) {
            /* the open chunk, with the encoder's slack: zeroes past the
             * bits and 8 bytes for its word writer */
            e.cap = (uint32_t)((c->len + 8 + 15) & ~(size_t)15);
            if (!(e.b = calloc(e.cap, 1))) {
                L->nomem = 1;
                break;
            }
            memcpy(e.b, c->data, c->len);
            chunk_enc_free(&s->head);
            s->head = e;
            sh->nheads++;
            sh->head_samples += hn;
        } else {
            if (s->nchunks == s->capchunks) {
                uint32_t ncap = s->capchunks ? s->capchunks * 2 : 2;
                while (ncap < nc)
                    ncap *= 2;
                hchunk *nchk = realloc(s->chunks, ncap * sizeof *nchk);
                if (!nchk) {
                    L->nomem = 1;
                    break;
                }
                s->chunks = nchk;
                s->capchunks = ncap;
            }
            uint8_t *copy = malloc(c->len ? c->len : 1);
            if (!copy) {
                L->nomem = 1;
                break;
            }
            memcpy(copy, c->data, c->len);
            s->chunks[s->nchunks++] = (hchunk){.mint = c->mint, .maxt = c->maxt, .data = copy,
                                               .len = (uint32_t)c->len, .n = (uint16_t)c->n,
                                               .seek = (uint16_t)c->seek};
            sh->head_chunks++;
            sh->head_samples += c->n;
        }
    }
    if (L->nomem)
        return 0;
    /* the newest moves after the in-order chunks (the replay rules skip
     * samples at or before it) and before the out-of-order samples (which
     * are older than it) */
    if (s && (flags & 2) && !r->bad && nt >= L->cutoff && (!s->has_data || nt > s->newest_t)) {
        s->has_data = 1;
        s->newest_t = nt;
        s->newest_v = nv;
    }
    uint64_t no = rd_uv(r);
    int64_t t = 0;
    for (uint64_t i = 0; i < no && !r->bad; i++) {
        t = (int64_t)((uint64_t)t + (uint64_t)unzigzag(rd_uv(r)));
        uint64_t v = rd_u64(r);
        if (!s || r->bad || t < L->cutoff)
            continue;
        int nomem = 0;
        series_append_sample(sh, s, t, v, 2, &nomem);
        if (nomem) {
            L->nomem = 1;
            return 0;
        }
    }
    if (s && s->has_data && s->newest_t <= sh->newest_bound)
        store_note_newest(sh->store, s->newest_t);
    return r->bad ? -1 : 0;
}

static int read_all(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    while (n) {
        ssize_t k = read(fd, q, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        q += k;
        n -= (size_t)k;
    }
    return 0;
}

rw_rc shard_snapshot_load(rw_shard *sh, uint64_t *seq, snapshot_stats *stats, rw_err *err)
{
    memset(stats, 0, sizeof *stats);
    *seq = 0;
    char p[4096];
    snap_path(sh, p, sizeof p, 0);
    {
        char tmp[4096];
        snap_path(sh, tmp, sizeof tmp, 1);
        unlink(tmp); /* an interrupted write's */
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return RW_OK;
        return rw_err_set(err, RW_IO, "cannot open %s: %s", p, strerror(errno));
    }
    uint8_t h[SNAP_HDR];
    if (read_all(fd, h, sizeof h) < 0 || memcmp(h, SNAP_MAGIC, 8) != 0 ||
        get_u32le(h + 36) != (uint32_t)crc32(0L, h, 36)) {
        close(fd);
        return rw_err_set(err, RW_IO,
                          "%s is not a head snapshot or its header is damaged; move it away to "
                          "start without it (the samples only it holds are then lost)",
                          p);
    }
    if (get_u32le(h + 8) != SNAP_VERSION || get_u32le(h + 12) != (uint32_t)sh->idx ||
        get_u32le(h + 16) != (uint32_t)sh->store->nshards) {
        close(fd);
        return rw_err_set(err, RW_BADREQ,
                          "%s: version %u of shard %u of %u, this rwgate reads version %d of "
                          "shard %d of %d",
                          p, get_u32le(h + 8), get_u32le(h + 12), get_u32le(h + 16), SNAP_VERSION,
                          sh->idx, sh->store->nshards);
    }
    *seq = get_u64le(h + 20);
    uint32_t next_id = get_u32le(h + 28);
    /* the series it names beyond the database's each take a record */
    struct stat sb;
    if (fstat(fd, &sb) < 0 || next_id == UINT32_MAX ||
        (uint64_t)next_id > (uint64_t)sh->next_id + (uint64_t)sb.st_size) {
        close(fd);
        return rw_err_set(err, RW_IO,
                          "%s: series id %u in the header is out of range; move it away to "
                          "start without it (the samples only it holds are then lost)",
                          p, next_id);
    }
    if (next_id > sh->next_id)
        sh->next_id = next_id;
    int64_t ret = sh->store->opts.retention_ms;
    int64_t newest = atomic_load(&sh->store->newest);
    loader L = {.sh = sh, .stats = stats, .next_id = next_id,
                .cutoff = ret > 0 && newest != INT64_MIN ? newest - ret : INT64_MIN};
    uint8_t *buf = NULL;
    size_t cap = 0;
    int ended = 0;
    rw_rc rc = RW_OK;
    for (;;) {
        uint8_t fh[8];
        if (read_all(fd, fh, 8) < 0)
            break;
        uint32_t len = get_u32le(fh), crc = get_u32le(fh + 4);
        if (len == 0) {
            uint8_t t[8];
            /* the record count checks the frames all came through */
            if (read_all(fd, t, 8) == 0 && (stats->bad_frames || get_u64le(t) == stats->records))
                ended = 1;
            break;
        }
        if (len > FRAME_MAX)
            break;
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory loading %s", p);
                break;
            }
            buf = nb;
            cap = len;
        }
        if (read_all(fd, buf, len) < 0)
            break;
        if ((uint32_t)crc32(0L, buf, len) != crc) {
            /* the frame's extent is known: the next ones are still read */
            stats->bad_frames++;
            continue;
        }
        rd r = {.p = buf, .end = buf + len};
        uint64_t n = rd_uv(&r);
        for (uint64_t i = 0; i < n && !r.bad && !L.nomem; i++) {
            if (load_series_rec(&L, &r) < 0) {
                stats->bad_frames++;
                break;
            }
            stats->records++;
        }
        if (L.nomem) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory loading %s", p);
            break;
        }
    }
    free(buf);
    free(L.d);
    close(fd);
    if (rc == RW_OK && (!ended || stats->bad_frames || stats->bad_chunks))
        rw_error("shard %d: the head snapshot %s is damaged (%s%llu unreadable frames, %llu "
                 "unreadable chunks): the samples of the series in them that were not in a "
                 "block are lost",
                 sh->idx, p, ended ? "" : "cut short, ", (unsigned long long)stats->bad_frames,
                 (unsigned long long)stats->bad_chunks);
    return rc;
}
