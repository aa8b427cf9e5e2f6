/* store_int.h - internal structures of the store (the public contract is
 * store.h). Layout of the module:
 *
 *   store.c         open/close, the maintenance thread, metadata, stats,
 *                   cardinality, self-metrics
 *   index.c         string maps, label interning, series hash map, postings
 *   chunk.c         the head chunk codec (interval-deviation timestamps, XOR
 *                   or integer delta-of-delta values)
 *   wal.c           the write-ahead log: append-only segment files, group
 *                   commit I/O (O_DIRECT where the file system has it)
 *   walrec.c        WAL record encoding (columnar, zstd) and decoding
 *   db.c            SQLite connections, schema, prepared statements
 *   vfs.c           the reader connections' VFS: read-around of cold pages
 *   shard_append.c  rw_store_append, the sample rules, pending entries,
 *                   group commit
 *   shard_read.c    select, read_samples, label names/values
 *   merge.c         decoding and merging a series' samples from head chunks,
 *                   the out-of-order buffer and persisted parts
 *   block.c         persisted parts: value and timestamp columns, the block
 *                   index, the block index cache
 *   flush.c         writing head data into blocks; WAL truncation
 *   partorder.c     the order of a block's parts (metric name, series id)
 *   compact.c       merging runs of small blocks into one
 *   retention.c     dropping old blocks and empty series, vacuum, in steps
 *   snapshot.c      the head snapshot: a shard's head in one file, written
 *                   at checkpoints, loaded at open before the WAL replay
 *   recover.c       loading a shard at open and replaying the WAL
 *
 * Data flow: an append changes the series' head (in memory) and adds a
 * pending entry to its shard; the group-commit leader encodes every shard's
 * pending entries into ONE record of the store-wide WAL and syncs it; only
 * then are the appends acknowledged. The maintenance thread flushes head
 * data into blocks (SQLite rows) when its time window closes, writes a head
 * snapshot of every shard when the WAL grows past a size (a checkpoint), and
 * deletes WAL segments whose every sample is in a block or a snapshot.
 *
 * Locking:
 *   shard mu    guards the shard's in-memory state (series, index, heads,
 *               pending entries, block list). Held for short stretches only:
 *               never across file or SQLite I/O; long passes (flush,
 *               retention, stats) take it per slice of series.
 *   shard db_owner (a flag under mu) - whoever set it owns the write
 *               connection `wdb` (flush, retention, metadata) until it
 *               clears it and broadcasts db_cv.
 *   shard rd_mu guards the read connection `rdb`.
 *   wal mu      guards the WAL's segment list and a failed commit's details;
 *               the leader (an atomic flag, waited for on a futex) owns the
 *               file and the encoder state
 *               without holding it.
 * Lock order: wal mu is never held while taking a shard mu (the leader takes
 * shard mus one at a time with wal mu released); shard mu, then rd_mu or
 * the block cache mutex. */
#ifndef RW_STORE_INT_H
#define RW_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include "chunk.h"
#include "core/buf.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "store.h"

#define FORMAT_VERSION 4
/* Head data is cut and flushed in aligned windows of this length: a head
 * chunk never spans two windows, and a window's data is written once its end
 * is past (the newest sample - the grace). */
#define BLOCK_WINDOW_MS (2LL * 3600 * 1000)
#define FLUSH_GRACE_MS (5LL * 60 * 1000)
/* At close, the snapshot of what the closing flush left has this long past
 * the flush's deadline. */
#define CLOSE_SNAPSHOT_NS (1500LL * 1000 * 1000)
/* Late samples (rw_shard.late_samples) that make a window flush due. */
#define LATE_FLUSH_SAMPLES (1u << 21)
/* A checkpoint is due when the WAL passes store.checkpoint_size and also
 * 1/CKPT_WAL_SHARE of the last snapshots' size: the snapshots written stay
 * within that many bytes per byte of WAL however large the head grows (a
 * million series hold hundreds of MB), at the price of a longer replay. */
#define CKPT_WAL_SHARE 4
/* A failed checkpoint is tried again after this long. */
#define CKPT_RETRY_NS (10LL * 1000 * 1000 * 1000)
/* The effective WAL segment size and full-flush threshold now: the
 * configured store.wal_segment_size and store.checkpoint_size, grown with
 * the series count, since every segment starts each series' value coding
 * afresh. */
void wal_limits(const struct rw_store *st, uint64_t *seg, uint64_t *ckpt);
/* Writes len bytes at off, all of them (retrying short writes): 0 / -1. */
int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off);
/* fsyncs a directory (a new or renamed entry in it must survive a crash):
 * 0 / -1. */
int store_sync_dir(const char *dir);

/* ---- index.c: maps ---- */

/* Open-addressing map from a NUL-terminated string key to a pointer. Keys
 * are not copied: the caller keeps them alive (they are interned strings). */
typedef struct strmap_slot {
    const char *key; /* NULL = empty */
    void *val;
    uint64_t hash;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap, n; /* cap is 0 or a power of two */
} strmap;

uint64_t str_hash(const char *s);
void *strmap_get(const strmap *m, const char *key, uint64_t h);
strmap_slot *strmap_find(const strmap *m, const char *key, uint64_t h);
int strmap_put(strmap *m, const char *key, uint64_t h, void *val); /* 0 / -1 nomem */
void strmap_del(strmap *m, const char *key, uint64_t h);
void strmap_free(strmap *m);
#define STRMAP_EACH(m, s) \
    for (strmap_slot *s = (m)->slots; s && s < (m)->slots + (m)->cap; s++) if (s->key)

/* Label string interning (the postings keys and the shard's symbol table):
 * one copy of each distinct string per shard, reference counted, each with
 * a symbol id (table `symbols`) stored in the 4 bytes before the string and
 * its length in the 4 before those.
 * intern_get returns NULL when out of memory; id 0 = allocate a new id (and
 * queue its row for the next flush), else the id the string has on disk
 * (used when loading). */
struct rw_shard;
const char *intern_get(struct rw_shard *sh, const char *s, uint32_t id);
void intern_put(struct rw_shard *sh, const char *s);
static inline uint32_t intern_id(const char *interned)
{
    uint32_t id;
    __builtin_memcpy(&id, interned - 4, 4);
    return id;
}
static inline uint32_t intern_len(const char *interned)
{
    uint32_t len;
    __builtin_memcpy(&len, interned - 8, 4);
    return len;
}
/* Queues a symbol row for the next flush (after a failed one). */
int shard_note_new_symbol(struct rw_shard *sh, uint32_t id);
/* The symbol id of a string of some series' label set (it is interned: the
 * id sits in front of it). */
uint32_t symbol_id(const struct rw_shard *sh, const char *s);

/* Sorted list of series ids holding one label pair. */
typedef struct plist {
    uint32_t *ids;
    uint32_t n, cap;
} plist;

/* label name -> (value -> plist*) */
typedef struct lname {
    const char *name; /* interned */
    strmap values;    /* interned value -> plist* */
} lname;

/* ---- series ---- */

/* A completed head chunk: in memory until a flush writes it into a block. */
typedef struct hchunk {
    int64_t mint, maxt;
    uint8_t *data;   /* owned */
    uint32_t len;
    uint16_t n;
    uint16_t seek;   /* byte offset of its restart (chunk.h), 0 = none */
} hchunk;

/* Samples accepted out of order (store.out_of_order_window), sorted by
 * timestamp, one per timestamp; merged with the chunks by every read and
 * written by the flush of their window. */
typedef struct ooo_buf {
    int64_t *t;
    uint64_t *v;     /* value bits */
    uint32_t n, cap;
} ooo_buf;

/* One series. Everything guarded by its shard's mu. The struct, its label
 * array and the first SERIES_HEAD_BYTES of its open head chunk are ONE
 * allocation (the labels right after the struct: series_labels(); then
 * the chunk's bytes: series_head_home()): a sample's append touches one
 * place in memory instead of two - on a virtual machine each page walk
 * costs about as much as the rest of the append. A chunk that outgrows
 * them moves to malloc'd memory until the next cut. The label strings are
 * the shard's interned ones (intern_put on delete). 136 bytes before the
 * labels: a million active series carry every word of it. */
typedef struct series {
    uint32_t id;         /* shard-local, also series.id in SQLite */
    uint32_t nlabels;
    uint64_t hash;       /* rw_labels_hash of labels */
    chunk_enc head;      /* open head chunk; head.n == 0: none */
    hchunk *chunks;      /* completed head chunks not yet in a block, by time */
    uint32_t nchunks : 30;
    uint32_t has_data : 1;
    uint32_t in_db : 1;  /* row in table series */
    uint32_t capchunks;
    ooo_buf *ooo;        /* NULL: none */
    int64_t newest_t;    /* newest in-order sample ever accepted (valid if has_data) */
    uint64_t newest_v;   /* its value bits */
    int64_t pmint, pmaxt;/* time range of its samples in blocks; pmint > pmaxt: none */
} series;
_Static_assert(sizeof(series) == 136, "series grew: a million of them carry every byte");

/* Its labels: the array right after the struct (series_labels). */
static inline rw_label *series_labels(const series *s)
{
    return (rw_label *)(uintptr_t)(s + 1);
}

/* Room for ~70 samples at the 1-2 bytes a sample of a scraped series:
 * a 15 s series' first 15-20 minutes of each chunk. */
#define SERIES_HEAD_BYTES 128u

static inline uint8_t *series_head_home(const series *s)
{
    return (uint8_t *)(series_labels(s) + s->nlabels);
}

/* Forgets the open head chunk's samples; its bytes go back home. */
static inline void series_head_reset(series *s)
{
    chunk_enc_reset_in(&s->head, series_head_home(s), SERIES_HEAD_BYTES);
}

/* Oldest / newest sample of a series anywhere (INT64_MAX / INT64_MIN when
 * none). */
int64_t series_mint(const series *s);
int64_t series_maxt(const series *s);

/* ---- pending WAL entries (shard_append.c) ---- */

/* Entries appended to a shard and not yet in a WAL record, as a chain of
 * buffers: taking them for a commit detaches the chain and putting them back
 * after a failed commit relinks it in front, so neither can fail for lack of
 * memory (the space is reserved before an append changes anything). */
typedef struct pbuf {
    struct pbuf *next;
    size_t len, cap;
    uint8_t data[];
} pbuf;

typedef struct pchain {
    pbuf *head, *tail;
    size_t bytes;        /* sum of len */
} pchain;

/* Raw entry layout in a pbuf (host order, never leaves the process):
 *   PE_SERIES  u8 type | u32 id | u32 len | label blob
 *   PE_SAMPLES u8 type | u32 id | u32 n   | n x (i64 t, u64 value bits)
 *   PE_OOO     as PE_SAMPLES, for samples accepted out of order */
enum { PE_SERIES = 1, PE_SAMPLES = 2, PE_OOO = 3 };

/* ---- blocks (block.c, flush.c) ---- */

/* One entry of a block's index: where a series' part is. */
typedef struct bidx_ent {
    uint32_t sid;
    uint32_t n;          /* samples */
    int64_t rowid;       /* parts.id */
    int64_t mint, maxt;
    uint64_t lastv;      /* value bits of the sample at maxt */
} bidx_ent;

/* A block's decoded index (shared, reference counted; block.c). */
typedef struct bidx {
    _Atomic int refs;
    size_t n;
    bidx_ent e[];        /* sorted by sid */
} bidx;

/* A block: the parts one flush of one shard wrote (a part = one series'
 * samples). Descriptors live in the shard's list (mu); the index is loaded
 * on demand into the shard's cache. Blocks may overlap in time. */
typedef struct blockd {
    int64_t id;          /* blocks.id */
    int64_t mint, maxt;
    uint64_t nparts, nsamples;
    int64_t parts_lo, parts_hi; /* rowid range of its parts */
    int64_t ts_lo, ts_hi;       /* rowid range of its timestamp columns */
    uint64_t bytes;      /* size of parts + index, for stats */
    _Atomic int refs;    /* the list's reference + readers' */
    uint8_t dead;        /* removed from the list (retention) */
} blockd;

/* Decoded timestamp column (cached per block). */
typedef struct tscol {
    _Atomic int refs;
    int64_t id;
    size_t n;
    int64_t t[];
} tscol;

/* ---- WAL (wal.c, walrec.c) ---- */

typedef struct wal_seg {
    uint64_t seq;        /* file name */
    uint64_t bytes;
    int64_t maxt;        /* newest sample timestamp in it (not counting ones
                            ahead of the clock) */
    uint8_t future;      /* holds a sample ahead of the clock + max_future */
} wal_seg;

/* Per-shard state the WAL value codec keeps per series (by id): the value
 * last logged for it in the current segment. Owned by the commit leader (or
 * by the replaying thread). */
typedef struct wsent {
    uint64_t v;          /* the value last logged */
    uint32_t seg;        /* low 32 bits of the segment number v is from */
    uint32_t bad;        /* segment in which the base became unknown (replay) */
} wsent;

typedef struct walstate {
    wsent *e;            /* by series id: one cache line touch per run */
    uint32_t cap;
    uint32_t all_bad;    /* segment in which every base became unknown */
} walstate;

/* Every this many records of a segment, one whose values stand alone. */
#define WALREC_RESET_EVERY 256

typedef struct rw_wal {
    struct rw_store *store;
    char *dir;                 /* <data>/wal */
    pthread_mutex_t mu;
    /* ---- commit state (atomics; a failure's details under mu) ---- */
    _Atomic int leader;        /* a thread owns the file (commit, rotate) */
    _Atomic uint64_t ticket;   /* bumped by every append that added entries */
    _Atomic uint64_t durable;  /* tickets up to it are on disk */
    _Atomic uint32_t wake;     /* futex word: bumped when a leader lets go */
    _Atomic uint64_t fail_gen;
    uint64_t fail_ticket;
    rw_rc fail_rc;
    char fail_msg[256];
    wal_seg *segs;             /* live segments, ascending; the last is open */
    size_t nsegs, capsegs;
    uint64_t min_seq;          /* a new segment's number is at least this: the
                                  head snapshots name segments that may all be
                                  gone, and replay skips those before theirs */
    uint64_t total_bytes;      /* of live segments */
    uint64_t *spares;          /* covered segments kept for reuse, by their
                                  old numbers (files spare-<16 hex>) */
    size_t nspares;
    /* ---- file (owned by the leader) ---- */
    int fd;                    /* -1: none open (open one before writing) */
    int direct;                /* O_DIRECT: writes are whole aligned blocks */
    size_t align;              /* 512 or 4096 with O_DIRECT, else 1 */
    uint64_t seq;              /* current segment */
    uint64_t off;              /* logical end of the current segment */
    uint64_t nrec;             /* records written into it */
    uint8_t *wbuf;             /* aligned staging buffer: [tail block][record] */
    size_t wcap;
    size_t tail;               /* bytes of the partial last block, at wbuf[0] */
    int broken;                /* a write failed: start a new segment first */
    /* encoder scratch (leader) */
    rw_buf raw, comp, rec;
    walstate *ws;              /* per shard */
    pchain *taken;             /* per shard: what the running commit took */
    void *zc;                  /* ZSTD_CCtx */
} rw_wal;

/* ---- shard ---- */

/* A slot of the series hash table: the series id and the high half of its
 * hash, so probing touches only the table until the tags match; 8 bytes (a
 * million series' table is 16 MB, not 32). id 0: empty (no series has it). */
typedef struct sslot {
    uint32_t id;
    uint32_t tag;        /* hash >> 32 */
} sslot;

typedef struct rw_shard {
    struct rw_store *store;
    int idx;
    char *path;

    pthread_mutex_t mu;
    pthread_cond_t db_cv;  /* signalled when db_owner clears */

    /* ---- in-memory state (mu) ---- */
    series **by_id;        /* index = series id; NULL = free */
    uint32_t cap_id, next_id;
    sslot *slots;          /* open addressing by series hash (index.c) */
    size_t nslots, nseries;
    unsigned slot_shift;   /* 64 - log2(nslots) */
    char **syms;           /* symbol id -> interned string; NULL = free */
    uint32_t cap_sym, next_sym;
    uint32_t *newsym;      /* symbol ids created since the last flush */
    size_t nnewsym, capnewsym;
    uint32_t *deadsym;     /* symbol ids freed since the last retention txn */
    size_t ndeadsym, capdeadsym;
    uint32_t *newser;      /* series created since the last flush (rows to write) */
    size_t nnewser, capnewser;
    strmap strings;        /* interned label strings -> refcount */
    strmap postings;       /* name -> lname* */
    uint64_t nheads;       /* series with an open head chunk */
    uint64_t head_samples; /* samples in head chunks (open and completed) */
    uint64_t head_chunks;  /* completed head chunks */
    uint64_t ooo_samples;
    int64_t newest_bound;  /* wall clock + max_future when the current append
                              or replay began: samples after it do not move
                              the store's `newest` */
    blockd **blocks;       /* persisted blocks, by id */
    size_t nblocks, capblocks;
    uint64_t block_bytes, block_samples, block_parts;

    /* ---- durability (mu) ---- */
    pchain pend;           /* entries not yet in a WAL record */

    /* ---- flush progress (maintenance thread) ---- */
    uint64_t ckpt_seq;         /* the segments before it are covered: by a full
                                  flush or a head snapshot begun there */
    uint64_t flush_win_seq;    /* last window flush started at this segment */
    int64_t flush_win_end;     /* ... and wrote everything before this time */
    int64_t flushed_win_end;   /* windows before it have been flushed */
    /* (mu) in-order samples appended since the last window flush into a
       window it had already flushed (data that came late, or a sender far
       behind the others): past LATE_FLUSH_SAMPLES a window flush writes them
       without waiting for the next window to close */
    int64_t late_bound;
    uint64_t late_samples;
    uint64_t snap_bytes;       /* size of its last head snapshot (ckpt_mu) */
    int64_t compact_skip;      /* (ckpt_mu) blocks up to this id are not merged
                                  (a later block overlaps them) */

    /* ---- write connection (owned by the db_owner) ---- */
    int db_owner;
    sqlite3 *wdb;
    sqlite3_stmt *st_part_ins, *st_ts_ins, *st_block_ins, *st_series_put, *st_series_del,
        *st_meta_put, *st_sym_put, *st_sym_del;

    /* ---- read connection (rd_mu) ---- */
    pthread_mutex_t rd_mu;
    sqlite3 *rdb;
    int rdb_fd;            /* read-only descriptor of the file for rdb's read-around
                              (vfs.c): closed after both connections, -1 if none */
    sqlite3_stmt *st_part_get, *st_ts_get, *st_idx_get, *st_part_scan;
    void *zd;              /* ZSTD_DCtx for reads (rd_mu) */
    /* rdb's page cache since the open (db_read_stats, at the end of each
       read; read by the metrics without rd_mu, which a query holds) */
    _Atomic uint64_t rcache_hits, rcache_misses, rcache_bytes;

    /* ---- block index / timestamp column cache (cache_mu) ---- */
    pthread_mutex_t cache_mu;
    struct cache_ent *cache;   /* block.c */
    size_t ncache, capcache;
    size_t cache_bytes;
    uint64_t cache_tick;
} rw_shard;

typedef struct md_entry {
    char *metric, *type, *help, *unit;
} md_entry;

struct rw_store {
    rw_store_opts opts;    /* copy; dir owned */
    int lock_fd;           /* holds the flock on <dir>/lock for the store's life */
    int nshards;
    rw_shard *shards;
    rw_wal wal;
    int wal_opened;
    _Atomic int64_t newest; /* newest sample in the store not ahead of the wall
                               clock + max_future (when it was stored); the
                               reference of retention and flushes; INT64_MIN = none */
    _Atomic uint64_t nseries; /* all shards' series (a size hint for the WAL) */
    _Atomic unsigned read_turn; /* the shard the next read starts at (shard_read.c) */
    _Atomic int read_only; /* writes refused (a failed recovery left data we
                              must not overwrite) */
    /* the reader connections' VFS (vfs.c), registered while the store is open */
    sqlite3_vfs read_vfs;
    char read_vfs_name[40];
    int read_vfs_on;

    /* metadata (md_mu); persisted in shard 0. Entries in arrival order,
       indexed by metric name (md_index: metric -> position + 1); sorted
       only when read */
    pthread_mutex_t md_mu;
    md_entry *md;
    size_t nmd, capmd;
    strmap md_index;

    /* flushes, checkpoints, compaction and retention run one at a time
       (maintenance thread, rw_store_maintain, rw_store_checkpoint, close):
       a flush reads the head chunks it collected again later, and only
       these remove chunks */
    pthread_mutex_t ckpt_mu;
    int64_t ckpt_retry_ns;  /* ckpt_mu: no checkpoint before (after a failed one) */

    /* maintenance thread */
    pthread_t maint;
    int maint_started;
    pthread_mutex_t maint_mu;
    pthread_cond_t maint_cv;
    atomic_int stopping;   /* set by rw_store_close: the maintenance thread ends, a
                              background flush or retention pass stops early */
    int kicked;            /* maint_mu: work may be due now */

    /* self-metrics (NULL without a registry) */
    rw_histogram *m_commit_dur, *m_flush_dur, *m_rec_bytes;
    rw_gauge *m_flush_running, *m_retention_running;
    rw_counter *m_commits, *m_commit_fail, *m_appended, *m_rejected[RW_REJ__COUNT],
        *m_series_created, *m_retention_blocks, *m_retention_series, *m_flushes,
        *m_flush_fail, *m_wal_bytes, *m_ooo, *m_maint, *m_compactions;
};

/* ---- index.c ---- */
series *shard_series_lookup(rw_shard *sh, uint64_t hash, const rw_label *l, const uint32_t *lens,
                            size_t n);
/* The series of that hash with that id (a ref from an earlier append), or
 * NULL: ids are never reused within a shard, so a deleted series' ref finds
 * nothing. */
series *shard_series_lookup_ref(rw_shard *sh, uint64_t hash, uint32_t id);
/* Creates (interns labels, indexes). id 0 = allocate the next id; symids
 * (2n: name, value, ...) are the labels' symbol ids on disk, or NULL. */
series *shard_series_create(rw_shard *sh, uint32_t id, uint64_t hash, const rw_label *l,
                            size_t n, const uint32_t *symids);
void shard_series_delete(rw_shard *sh, series *s);
/* Sizes the id array and the hash slots for max_id and nseries at once (a
 * shard loading a million series would otherwise grow them step by step,
 * each step remapping memory under the other shards' threads). -1 nomem. */
int shard_index_reserve(rw_shard *sh, uint32_t max_id, size_t nseries);
/* Prefetch the slot of a series (its by_id entry when id, a ref, is not
 * 0, else its hash slot), then (a few lookups later) the series: the
 * lookups of one request touch thousands of series in random order. */
void shard_series_prefetch_slot(const rw_shard *sh, uint64_t hash, uint32_t id);
void shard_series_prefetch(const rw_shard *sh, uint64_t hash, uint32_t id);
void shard_index_free(rw_shard *sh);
const plist *postings_get(const rw_shard *sh, const char *name, const char *value);
const lname *postings_name(const rw_shard *sh, const char *name);
void series_free_data(rw_shard *sh, series *s);

/* ---- varints and label blobs (walrec.c) ---- */
/* Writes v as a uvarint at p (room for 10 bytes); returns its length. */
size_t uvarint_encode(uint8_t *p, uint64_t v);
void put_uvarint(rw_buf *b, uint64_t v);
/* Writes v as a uvarint at p (room for 10 bytes); returns the byte after. */
static inline uint8_t *put_uv(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
int get_uvarint_long(const uint8_t **p, const uint8_t *end, uint64_t *v);
/* One varint; -1 when it runs past end. The one-byte case is inline: the
 * column decoders read one varint per sample, and nearly all are one byte. */
static inline int get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    if (*p < end && **p < 0x80) {
        *v = *(*p)++;
        return 0;
    }
    return get_uvarint_long(p, end, v);
}
/* Little-endian fixed-width integers of the file headers (WAL segments and
 * records, head snapshots). */
static inline void put_u32le(uint8_t *d, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        d[k] = (uint8_t)(v >> (8 * k));
}
static inline void put_u64le(uint8_t *d, uint64_t v)
{
    put_u32le(d, (uint32_t)v);
    put_u32le(d + 4, (uint32_t)(v >> 32));
}
static inline uint32_t get_u32le(const uint8_t *d)
{
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}
static inline uint64_t get_u64le(const uint8_t *d)
{
    return (uint64_t)get_u32le(d) | (uint64_t)get_u32le(d + 4) << 32;
}
static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t z) { return (int64_t)((z >> 1) ^ (~(z & 1) + 1)); }
static inline size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
void labels_encode(rw_buf *b, const rw_label *l, size_t n);
/* Writes the labels' blob at o (room for labels_encoded_len); returns the
 * byte after. */
uint8_t *labels_put(uint8_t *o, const rw_label *l, size_t n);
size_t labels_encoded_len(const rw_label *l, size_t n);
/* Decodes into malloc'd labels (one block for array + strings). */
int labels_decode(const uint8_t **p, const uint8_t *end, rw_label **out, size_t *n);
int value_as_int(uint64_t bits, int64_t *out);

/* ---- walrec.c: records ---- */
/* Encodes the pending entries of one shard into a section (raw, before
 * compression), updating the value state; *maxt and *future track the sample
 * times (bound: samples after it count as future). */
int walrec_encode(const pchain *pc, walstate *ws, uint64_t seg, int reset, int64_t bound,
                  rw_buf *out, int64_t *maxt, int *future);
/* The sample runs of one section, decoded (so the replay can prefetch the
 * series ahead of applying them). */
typedef struct walbatch {
    uint32_t *id, *n;       /* per run */
    uint8_t *ooo;
    int64_t *t;             /* per sample, the runs back to back */
    uint64_t *v;
    size_t nrun, nsmp, caprun, capsmp;
} walbatch;
void walbatch_free(walbatch *b);

typedef struct wal_visitor {
    void *ctx;
    int (*series_fn)(void *ctx, uint32_t ref, rw_label *l, size_t n); /* takes l */
    int (*batch_fn)(void *ctx, const walbatch *b);
    walbatch batch;         /* scratch the decoder fills */
} wal_visitor;
/* Decodes one section; -1 with *msg when something in it could not be
 * applied (what could was; the series whose value bases it leaves unknown
 * are poisoned until a record that stands alone). Samples skipped for a
 * poisoned series are counted in *unapplied. */
int walrec_decode(const uint8_t *b, size_t len, walstate *ws, uint64_t seg, wal_visitor *v,
                  uint64_t *unapplied, const char **msg);
void walstate_poison_all(walstate *ws, uint64_t seg);
int walstate_reserve(walstate *ws, uint32_t id);
void walstate_free(walstate *ws);

/* ---- wal.c ---- */
rw_rc wal_open(struct rw_store *st, rw_err *err);     /* lists segments (no I/O on them) */
void wal_close(rw_wal *w);
/* Starts a new segment for writing (after recovery). */
rw_rc wal_start(rw_wal *w, rw_err *err);
/* Group commit: waits until everything up to `ticket` is on disk, leading
 * commits itself when nobody else is. */
rw_rc wal_wait(rw_wal *w, uint64_t ticket, rw_err *err);
/* A new ticket for an append that added entries (call with the shard's mu
 * held, after adding them), or the current one (nothing added: the reply
 * still implies that earlier entries are durable). */
uint64_t wal_ticket(rw_wal *w, int added);
/* Rotates to a new segment now (a full flush or checkpoint starts); returns
 * its number. */
rw_rc wal_rotate(rw_wal *w, uint64_t *seq, rw_err *err);
/* The current segment number. */
uint64_t wal_current_seq(rw_wal *w);
/* Deletes the segments every shard's flushes cover (or keeps them as spare
 * files); returns how many. The store's ckpt_mu held: one caller at a time. */
size_t wal_truncate(rw_wal *w);
uint64_t wal_bytes(rw_wal *w);
/* At close, after a full flush: deletes the open segment when nothing was
 * written into it. */
void wal_drop_empty_tail(rw_wal *w);
/* Reads segment `seq` whole (malloc'd); its records are walked with
 * wal_next_record. */
int wal_read_segment(const rw_wal *w, uint64_t seq, uint8_t **buf, size_t *len, rw_err *err);
/* Finds the section of `shard` in the record at *off of buf (advancing *off
 * past the record): 1 found (sec/seclen, decompressed into scratch when it
 * was compressed), 0 the record has none, -1 end of the valid records (*why
 * NULL: a clean end; else why the rest is torn or corrupt), -2 the record is
 * intact (its checksum holds) but its sections cannot be read (*why): skip
 * it and go on. */
int wal_next_record(const uint8_t *buf, size_t len, uint64_t seq, size_t *off, int shard,
                    rw_buf *scratch, const uint8_t **sec, size_t *seclen, const char **why);
/* Notes the max sample time of a replayed segment and where its valid
 * records end (recovery). */
void wal_note_segment(rw_wal *w, uint64_t seq, uint64_t end, int64_t maxt, int future);

/* ---- db.c ---- */
rw_rc db_open_shard(rw_shard *sh, rw_err *err);
void db_close_shard(rw_shard *sh);
/* Records rdb's page cache counters for the metrics (rd_mu held). */
void db_read_stats(rw_shard *sh);

/* ---- vfs.c ---- */
/* registers the store's read-around VFS for its reader connections (none
   when the unix VFS is missing: the readers then use the default) */
void db_vfs_register(rw_store *st);
/* the descriptor the read-around hints of db's main file use (the caller
   keeps it open until db is closed); no effect on other VFSes' files */
void db_vfs_set_fd(sqlite3 *db, int fd);
void db_vfs_unregister(rw_store *st); /* after every connection is closed */
rw_rc db_exec(sqlite3 *db, const char *sql, rw_err *err);
rw_rc db_rc(sqlite3 *db, int rc, const char *what, rw_err *err);
rw_rc db_begin(rw_shard *sh, rw_err *err);
rw_rc db_commit(rw_shard *sh, rw_err *err);
void db_rollback(rw_shard *sh);
rw_rc db_end(rw_shard *sh, rw_rc rc, rw_err *err);
uint64_t db_file_bytes(const rw_shard *sh);
rw_rc db_step_done(rw_shard *sh, sqlite3_stmt *st, const char *what, rw_err *err);
int db_meta_get(sqlite3 *db, const char *key, int64_t *v);

/* ---- shard_append.c ---- */
void shard_db_acquire(rw_shard *sh);  /* mu held; may wait */
void shard_db_release(rw_shard *sh);  /* mu held */
/* The sample-level append rules shared by appends and WAL replay. Returns
 * -1 accepted in order, -3 accepted out of order, -2 identical resend /
 * nothing to do, or a rw_reject_reason; *nomem set on allocation failure.
 * mu held. */
int series_append_sample(rw_shard *sh, series *s, int64_t t, uint64_t bits, int replay,
                         int *nomem);
void store_note_newest(rw_store *st, int64_t t);
/* Wall clock + max_future: the newest sample time that counts. */
int64_t store_newest_bound(const rw_store *st);
/* Moves the open head chunk of s to the completed head chunks (mu held). */
int series_cut_head(rw_shard *sh, series *s);
int shard_note_new_series(rw_shard *sh, uint32_t id);
/* Pending chains (mu held). take detaches, restore puts back in front. */
void pchain_take(pchain *from, pchain *to);
void pchain_restore(pchain *pc, pchain *taken);
void pchain_free(pchain *pc);
/* Reserves `need` contiguous bytes at the end of the chain; NULL when out of
 * memory (nothing changed). */
uint8_t *pchain_reserve(pchain *pc, size_t need);
void pchain_commit(pchain *pc, size_t used);
/* Writes s's series entry at p (9 bytes and its label blob, in space reserved
 * by pchain_reserve); returns the byte after. */
uint8_t *pe_put_series(uint8_t *p, const series *s);

/* ---- shard_read.c ---- */
/* rw_store_select / label names (name NULL) and values with a deadline
 * (rw_mono_ns; 0 = none): past it they fail with RW_TIMEOUT. */
rw_rc store_select(rw_store *st, const rw_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                   int flags, size_t max_samples, int64_t deadline_ns, rw_arena *a,
                   rw_series_data **out, size_t *nout, rw_err *err);
rw_rc store_label_query(rw_store *st, const char *name, const rw_matcher *ms, size_t nms,
                        int64_t mint, int64_t maxt, int64_t deadline_ns, rw_arena *a,
                        char ***out, size_t *nout, rw_err *err);

/* ---- merge.c ---- */
/* A sorted run of samples from one source. */
typedef struct srun {
    const int64_t *t;
    const double *v;
    size_t n;
} srun;
/* Merges runs into ot/ov (room for the sum of their n): ascending, on
 * equal timestamps the later run's sample. Returns the count; *nomem set
 * when it could not. */
size_t runs_merge(const srun *r, size_t nr, int64_t *ot, double *ov, int *nomem);
/* Narrows each run to its samples in [mint, maxt] (before runs_merge, for
 * a range); returns how many are left in all. */
size_t runs_trim(srun *r, size_t nr, int64_t mint, int64_t maxt);
/* Inserts (t, v) into s's out-of-order buffer: 1 added, 0 an identical one
 * is there, -2 a different value is there (duplicate), -1 no memory. */
int ooo_insert(series *s, int64_t t, uint64_t v);
void ooo_free(series *s);
/* Whether t is held in memory (head chunks or out-of-order buffer) with
 * value bits *v: 1 yes, 0 no. */
int series_head_find(const series *s, int64_t t, uint64_t *v);

/* ---- block.c ---- */
/* zc, zd: a ZSTD_CCtx, ZSTD_DCtx the caller owns (zd may be NULL). */
/* Value column of a part: encodes v[0..n) into out (mode byte first, zstd'd
 * when that is smaller). */
int part_encode_values(const uint64_t *v, size_t n, rw_buf *out, rw_buf *scratch, void *zc);
int part_decode_values(const uint8_t *b, size_t len, size_t n, uint64_t *v, rw_buf *scratch,
                       void *zd);
int ts_encode(const int64_t *t, size_t n, rw_buf *out, rw_buf *scratch, void *zc);
/* Decodes a timestamp column into a malloc'd, reference-counted tscol. */
tscol *ts_decode(int64_t id, const uint8_t *b, size_t len, rw_buf *scratch, void *zd);
int bidx_encode(const bidx_ent *e, size_t n, int64_t base_mint, int64_t base_rowid, rw_buf *out,
                rw_buf *scratch, void *zc);
bidx *bidx_decode(const uint8_t *b, size_t len, int64_t base_mint, int64_t base_rowid,
                  rw_buf *scratch, void *zd);
/* The index of block b through the shard's cache (takes rd_mu when it has
 * to read: do not hold it); NULL on error (err set). Release with bidx_put. */
bidx *block_index(rw_shard *sh, blockd *b, rw_err *err);
void bidx_put(bidx *x);
const bidx_ent *bidx_find(const bidx *x, uint32_t sid);
void tscol_put(tscol *c);
void cache_drop_block(rw_shard *sh, const blockd *b);
void cache_free(rw_shard *sh);
/* Bytes the cache holds (indexes and timestamp columns). */
size_t cache_bytes(rw_shard *sh);
/* Loads the indexes and timestamp columns of the shard's newest blocks into
 * the cache while they take less than half of it (maintenance thread, once
 * after the open): the first query after a start would otherwise read and
 * decode every index and timestamp column of its range (on the days preset
 * 18 MB of the 43 MB a cold 3-day WAL-fsync p99 read). Stops early when the
 * store stops. */
void shard_warm_cache(rw_shard *sh);
void blockd_put(blockd *b);
/* Reads the part e of block b (rd_mu held): values into v (e->n entries),
 * timestamps as *ts (a reference to release with tscol_put). RW_NOTFOUND
 * (err untouched) when retention deleted it meanwhile. */
rw_rc part_read(rw_shard *sh, const blockd *b, const bidx_ent *e, tscol **ts, uint64_t *v,
                rw_buf *scratch, rw_err *err);
/* Reads the parts e[0..n) of block b (ascending rowids) in one range scan
 * (rd_mu held): part i's values into v[i], its timestamps as *ts[i] (a
 * reference to release with tscol_put); res[i] is RW_OK or RW_NOTFOUND
 * (deleted meanwhile). Returns an error other than those. */
rw_rc parts_scan(rw_shard *sh, const blockd *b, const bidx_ent *const *e, size_t n,
                 tscol **ts, uint64_t *const *v, rw_rc *res, rw_buf *scratch, rw_err *err);

/* ---- flush.c ---- */
/* Adds a block to the shard's list (mu held); -1 out of memory. */
int shard_blocks_push(rw_shard *sh, blockd *b);

/* The writer of one new block (flushes and compaction): parts go in
 * transactions of bounded size that commit without a sync; the block row,
 * written last in a synced transaction, makes them visible to the next open
 * (rows no block names are deleted at open). */
/* Distinct timestamp columns of the block being written. */
typedef struct tsent {
    uint64_t hash;
    int64_t id;
    int64_t *t;
    size_t n;
} tsent;

typedef struct flusher {
    rw_shard *sh;
    void *zc;
    rw_buf vals, scratch, tsbuf, rows;
    bidx_ent *ents;
    size_t nents, capents;
    tsent *ts;
    size_t tscap, tsn;
    int64_t parts_lo, parts_hi, ts_lo, ts_hi;
    int64_t mint, maxt;
    uint64_t nsamples, bytes;
    size_t txn_parts, txn_bytes;
    int in_txn;
    int unsynced;          /* the open transaction commits without a sync */
    int64_t *t;            /* scratch for one series */
    double *v;
    uint64_t *vb;
    size_t cap;
} flusher;


/* ---- partorder.c ---- */
/* The order parts are written in: by metric name, then series id (the
 * series of one metric together in the file). 12 bytes per series: each
 * distinct name is copied once and the keys refer to it by number. */
typedef struct pkey {
    uint32_t name;         /* 1 + the name's number, 0: series gone; after
                              porder_sort its rank (gone: UINT32_MAX) */
    uint32_t sid;
    uint32_t at;           /* the caller's position of the series */
} pkey;
typedef struct porder {
    strmap byname;         /* name -> its number + 1 */
    char **names;          /* number -> the name (a copy) */
    size_t nnames, capnames;
    pkey *k;
    size_t n, cap;
} porder;
void porder_init(porder *o);
void porder_free(porder *o);
/* Adds series sid (s: the series, NULL when gone; its shard's mu held) with
 * the caller's position `at`; -1 out of memory. */
int porder_add(porder *o, const series *s, uint32_t sid, uint32_t at);
/* Sorts the keys into the write order (nothing is added after). */
void porder_sort(porder *o);

int flusher_init(flusher *f, rw_shard *sh); /* -1 out of memory */
void flusher_free(flusher *f);
/* Room for n samples in f->t / f->v; -1 out of memory. */
int flusher_reserve(flusher *f, size_t n);
/* Writes f->t/f->v[0..n) (ascending timestamps) as series sid's part,
 * opening an unsynced transaction when none is open. */
rw_rc flusher_part(flusher *f, uint32_t sid, size_t n, rw_err *err);
/* Encodes the block index of the parts written into f->vals. */
rw_rc flusher_index(flusher *f, rw_err *err);
/* Inserts the block row (index from flusher_index) in the open transaction. */
rw_rc flusher_block_row(flusher *f, int64_t *id, rw_err *err);
/* A descriptor of the block written (one reference); NULL out of memory. */
blockd *flusher_blockd(const flusher *f, int64_t id);
rw_rc flusher_txn_begin_sync(flusher *f, int sync, rw_err *err);
/* Commits (rc RW_OK) or rolls back the open transaction; returns its rc. */
rw_rc flusher_txn_end(flusher *f, rw_rc rc, rw_err *err);
/* Deletes the parts and timestamp columns the writer committed (after a
 * failure; best effort). */
void flusher_undo(flusher *f);
/* Writes head data into a block: with `full`, everything in memory; else
 * every window that ended before `win_end`. Past deadline_ns (CLOCK_MONOTONIC
 * ns, 0 = none) it stops collecting: what it has is written, the rest stays
 * in memory and the WAL (a partial flush covers no WAL segment). */
rw_rc shard_flush(rw_shard *sh, int full, int64_t win_end, uint64_t start_seq,
                  int64_t deadline_ns, rw_err *err);
/* Writes the rows of the series and symbols created since the last flush,
 * and meta.next_sid, in one synced transaction (a checkpoint, before the
 * snapshot, which then names them by id). On failure they stay queued. */
rw_rc shard_write_new_series(rw_shard *sh, rw_err *err);
/* Decides and runs the flushes that are due, all shards in parallel
 * (maintenance thread, rw_store_maintain, close). */
rw_rc store_flush_due(rw_store *st, int force_full, int64_t deadline_ns, rw_err *err);

/* Lowers the calling thread's scheduling priority (flush and maintenance
 * threads). */
void store_background_thread(void);
/* Wakes the maintenance thread (work may be due). */
void store_kick(rw_store *st);
/* rw_store_close has begun: background flushes and retention stop early */
static inline int store_stopping(rw_store *st) { return atomic_load(&st->stopping); }

/* ---- retention.c ---- */
rw_rc shard_retention(rw_shard *sh, rw_err *err);
/* Deletes the rows [lo, hi] of `table` (parts, tscols), in transactions of
 * a bounded number of rows each (lo <= 0: nothing). */
rw_rc shard_delete_rows(rw_shard *sh, const char *table, int64_t lo, int64_t hi, rw_err *err);

/* ---- compact.c ---- */
/* Merges one run of small blocks of the shard into one block, if one is
 * due; returns whether it did (a failure is logged). */
int shard_compact(rw_shard *sh);

/* ---- recover.c ---- */
rw_rc shard_recover(rw_shard *sh, rw_err *err);

/* ---- snapshot.c ---- */
/* Writes the shard's head snapshot, covering the WAL before segment `seq`
 * (the WAL was rotated to it just before). Past deadline_ns (0 = none: then
 * when the store begins closing) it stops, leaving the previous snapshot.
 * Maintenance thread or close only (one writer per shard). */
rw_rc shard_snapshot_write(rw_shard *sh, uint64_t seq, int64_t deadline_ns, rw_err *err);
/* Deletes the shard's snapshot (a full flush covered everything in it). */
void shard_snapshot_remove(rw_shard *sh);
typedef struct snapshot_stats {
    uint64_t records, series, gone_series, bad_series, chunks, bad_frames, bad_chunks;
} snapshot_stats;
/* Loads the shard's snapshot, if any (at open, mu held, after the blocks);
 * *seq = the first WAL segment to replay (0 = no snapshot: all). A damaged
 * frame is logged and skipped; an unreadable header is an error. */
rw_rc shard_snapshot_load(rw_shard *sh, uint64_t *seq, snapshot_stats *stats, rw_err *err);

#endif
