/* store_int.h - internal structures of the store (the public contract is
 * store.h). Layout of the module:
 *
 *   store.c         open/close, the maintenance thread, metadata, stats,
 *                   cardinality, self-metrics
 *   index.c         string maps, label interning, series hash map, postings
 *   chunk.c         the chunk codec (interval-deviation timestamps, XOR or
 *                   integer delta-of-delta values)
 *   wal.c           WAL record encoding and parsing, varints, label blobs
 *   db.c            SQLite connections, schema, prepared statements
 *   shard_append.c  rw_store_append and group commit
 *   shard_read.c    select, label names/values
 *   checkpoint.c    head snapshots + WAL trimming
 *   retention.c     dropping old chunks and empty series
 *   recover.c       loading a shard at open and replaying its WAL
 *
 * Locking, per shard:
 *   mu       guards all in-memory state (series, index, heads, pending WAL
 *            bytes, pending chunks, seq counters, flags). Held for short
 *            stretches only; never across SQLite calls on the write path.
 *   db_owner (a flag under mu, not a mutex) - the thread that set it owns the
 *            write connection `wdb` and its statements until it clears it and
 *            broadcasts commit_cv. Group-commit leaders, checkpoints,
 *            retention and metadata writes all take it the same way, so they
 *            are serialised without a second lock.
 *   rd_mu    guards the read connection `rdb` (selects).
 * Lock order: mu, then rd_mu (rd_mu is never held while taking mu).
 * The store-wide `newest` is atomic. */
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
 * a symbol id (table `symbols`) stored in the 4 bytes before the string.
 * intern_get returns NULL when out of memory; id 0 = allocate a new id (and
 * queue its row for the next transaction), else the id the string has on
 * disk (used when loading). */
struct rw_shard;
const char *intern_get(struct rw_shard *sh, const char *s, uint32_t id);
void intern_put(struct rw_shard *sh, const char *s);
static inline uint32_t intern_id(const char *interned)
{
    uint32_t id;
    __builtin_memcpy(&id, interned - 4, 4);
    return id;
}
/* Queues a symbol row for the next transaction (after a failed one). */
int shard_note_new_symbol(struct rw_shard *sh, uint32_t id);
/* The symbol id of a string of some series' label set (it is interned). */
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

/* A persisted (rowid != 0) or completed-but-not-yet-committed (data != NULL)
 * chunk of a series. */
typedef struct chunk_meta {
    int64_t mint, maxt;
    int64_t rowid;   /* chunks.id; 0 until committed */
    uint8_t *data;   /* owned until committed, then freed */
    uint32_t len;
    uint16_t n;
} chunk_meta;

/* One series. Everything guarded by its shard's mu. The struct, its label
 * array and the label strings are ONE allocation (labels points right after
 * the struct, the strings after the array), so the lookup compares label
 * sets in contiguous memory; each string is also held once in the shard's
 * interning table for the postings (intern_put on delete). */
typedef struct series {
    uint32_t id;         /* shard-local, also series.id in SQLite */
    uint32_t nlabels;
    uint64_t hash;       /* rw_labels_hash of labels */
    rw_label *labels;    /* inside this allocation */
    chunk_enc head;      /* open head chunk; head.n == 0: none */
    chunk_meta *chunks;  /* completed chunks, ascending mint */
    uint32_t nchunks, capchunks;
    int64_t newest_t;    /* newest sample ever accepted (valid if has_data) */
    uint64_t newest_v;   /* its value bits */
    uint8_t has_data;
    uint8_t in_db;       /* row in table series */
    uint8_t head_dirty;  /* head changed since the last checkpoint */
} series;

static inline int64_t series_mint(const series *s)
{
    if (s->nchunks)
        return s->chunks[0].mint;
    return s->head.n ? s->head.t0 : INT64_MAX;
}
static inline int64_t series_maxt(const series *s)
{
    return (s->nchunks || s->head.n) ? s->newest_t : INT64_MIN;
}

/* A completed chunk waiting for the next commit. */
typedef struct pend_chunk {
    uint32_t sid;
    int64_t mint, maxt;
    const uint8_t *data; /* owned by the chunk_meta */
    uint32_t len;
    int64_t rowid;       /* set by the commit */
} pend_chunk;

/* The WAL record header reserved at the start of the pending buffer. */
#define WAL_HDR 12
#define WAL_MAGIC 0x4c415752u /* "RWAL" little endian */

enum { WAL_SERIES = 1, WAL_SAMPLES = 2 };

/* A slot of the series hash table: the hash inline, so probing touches
 * only the table until the hashes match. s == NULL: empty. */
typedef struct sslot {
    uint64_t hash;
    struct series *s;
} sslot;

typedef struct rw_shard {
    struct rw_store *store;
    int idx;
    char *path;

    pthread_mutex_t mu;
    pthread_cond_t commit_cv; /* signalled when db_owner clears or seqs move */

    /* ---- in-memory state (mu) ---- */
    series **by_id;        /* index = series id; NULL = free */
    uint32_t cap_id, next_id;
    sslot *slots;          /* open addressing by series hash (index.c) */
    size_t nslots, nseries;
    unsigned slot_shift;   /* 64 - log2(nslots) */
    char **syms;           /* symbol id -> interned string; NULL = free */
    uint32_t cap_sym, next_sym;
    uint32_t *newsym;      /* symbol ids created since the last commit */
    size_t nnewsym, capnewsym;
    uint32_t *deadsym;     /* symbol ids freed since the last retention txn */
    size_t ndeadsym, capdeadsym;
    strmap strings;        /* interned label strings -> refcount */
    strmap postings;       /* name -> lname* */
    uint64_t nchunks;      /* completed chunks held (persisted or not) */
    uint64_t nheads;       /* series with an open head chunk */
    uint64_t head_samples;

    /* ---- durability (mu) ---- */
    rw_buf pending;        /* WAL_HDR placeholder + entries not yet committed */
    uint64_t pending_seq;  /* bumped by every append that added bytes */
    uint64_t committed_seq;/* everything up to it is durable */
    pend_chunk *pchunks;   /* completed chunks not yet committed */
    size_t npchunks, cappchunks;
    uint32_t *newser;      /* ids of series created since the last commit:
                              their rows go into the next transaction, so a
                              committed chunk never names an unknown series */
    size_t nnewser, capnewser;
    int db_owner;          /* a thread owns wdb (see header comment) */
    uint64_t fail_gen;     /* bumped on every failed commit */
    uint64_t fail_seq;     /* seq the last failed commit covered */
    rw_rc fail_rc;
    char fail_msg[256];
    int64_t last_checkpoint_ms;
    int64_t newest_bound;  /* wall clock + max_future when the current append
                              or replay began: samples after it do not move
                              the store's `newest` */

    /* ---- write connection (owned by the db_owner) ---- */
    sqlite3 *wdb;
    sqlite3_stmt *st_wal_ins, *st_chunk_ins, *st_head_del, *st_head_put, *st_series_put,
        *st_series_del, *st_chunk_del, *st_wal_clear, *st_meta_put, *st_sym_put, *st_sym_del;

    /* ---- read connection (rd_mu) ---- */
    pthread_mutex_t rd_mu;
    sqlite3 *rdb;
    sqlite3_stmt *st_chunk_get;
} rw_shard;

typedef struct md_entry {
    char *metric, *type, *help, *unit;
} md_entry;

struct rw_store {
    rw_store_opts opts;    /* copy; dir owned */
    int lock_fd;           /* holds the flock on <dir>/lock for the store's life */
    int nshards;
    rw_shard *shards;
    _Atomic int64_t newest; /* newest sample in the store not ahead of the wall
                               clock + max_future (when it was stored); the
                               reference of retention; INT64_MIN = none */

    /* metadata (md_mu); persisted in shard 0 */
    pthread_mutex_t md_mu;
    md_entry *md;
    size_t nmd, capmd;

    /* maintenance thread */
    pthread_t maint;
    int maint_started;
    pthread_mutex_t maint_mu;
    pthread_cond_t maint_cv;
    int stopping;          /* maint_mu */

    /* self-metrics (NULL without a registry) */
    rw_histogram *m_commit_dur, *m_ckpt_dur, *m_txn_bytes;
    rw_counter *m_commits, *m_commit_fail, *m_appended, *m_rejected[RW_REJ__COUNT],
        *m_series_created, *m_retention_chunks, *m_retention_series;
};

/* ---- index.c ---- */
series *shard_series_lookup(rw_shard *sh, uint64_t hash, const rw_label *l, size_t n);
/* Creates (interns labels, indexes). id 0 = allocate the next id; symids
 * (2n: name, value, ...) are the labels' symbol ids on disk, or NULL. */
series *shard_series_create(rw_shard *sh, uint32_t id, uint64_t hash, const rw_label *l,
                            size_t n, const uint32_t *symids);
void shard_series_delete(rw_shard *sh, series *s);
void shard_index_free(rw_shard *sh);
const plist *postings_get(const rw_shard *sh, const char *name, const char *value);
const lname *postings_name(const rw_shard *sh, const char *name);

/* ---- wal.c ---- */
void put_uvarint(rw_buf *b, uint64_t v);
int get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v);
static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t z) { return (int64_t)((z >> 1) ^ (~(z & 1) + 1)); }
void labels_encode(rw_buf *b, const rw_label *l, size_t n);
/* Decodes into malloc'd labels (one block for array + strings). */
int labels_decode(const uint8_t **p, const uint8_t *end, rw_label **out, size_t *n);
void wal_put_series(rw_buf *b, const series *s);
void wal_put_samples(rw_buf *b, uint32_t ref, const rw_sample *smp, size_t n);
void wal_buf_init(rw_buf *b);
static inline size_t wal_payload_len(const rw_buf *b) { return b->len - WAL_HDR; }
/* Fills the header (length, CRC) in place. */
void wal_seal(rw_buf *b);
typedef struct wal_visitor {
    void *ctx;
    int (*series_fn)(void *ctx, uint32_t ref, rw_label *l, size_t n); /* takes l */
    int (*sample_fn)(void *ctx, uint32_t ref, int64_t t, double v);
} wal_visitor;
/* Checks a whole record (magic, length, CRC) then visits its entries.
 * Returns 0, or -1 when the record is torn/corrupt (msg says why). */
int wal_record_check(const uint8_t *b, size_t len, const char **msg);
int wal_record_visit(const uint8_t *b, size_t len, const wal_visitor *v, const char **msg);

/* ---- db.c ---- */
rw_rc db_open_shard(rw_shard *sh, rw_err *err);
void db_close_shard(rw_shard *sh);
rw_rc db_exec(sqlite3 *db, const char *sql, rw_err *err);
rw_rc db_rc(sqlite3 *db, int rc, const char *what, rw_err *err);
rw_rc db_begin(rw_shard *sh, rw_err *err);
rw_rc db_commit(rw_shard *sh, rw_err *err);
void db_rollback(rw_shard *sh);
/* Ends a transaction: COMMIT when rc is RW_OK, else ROLLBACK; returns the
 * outcome. */
rw_rc db_end(rw_shard *sh, rw_rc rc, rw_err *err);
uint64_t db_file_bytes(const rw_shard *sh);
/* Inserts a chunk row; *rowid set. */
rw_rc db_chunk_insert(rw_shard *sh, uint32_t sid, int64_t mint, int64_t maxt,
                      const uint8_t *data, size_t len, int64_t *rowid, rw_err *err);
rw_rc db_step_done(rw_shard *sh, sqlite3_stmt *st, const char *what, rw_err *err);

/* ---- shard_append.c ---- */
/* Take / give back the write connection (call with mu held; may wait). */
void shard_db_acquire(rw_shard *sh);
void shard_db_release(rw_shard *sh);
/* The sample-level append rules shared by appends and WAL replay. Returns
 * -1 accepted, -2 identical resend, or a rw_reject_reason; *nomem set on
 * allocation failure. mu held. */
int series_append_sample(rw_shard *sh, series *s, int64_t t, double v, int replay, int *nomem);
void store_note_newest(rw_store *st, int64_t t);
/* Wall clock + max_future: the newest sample time that counts for retention. */
int64_t store_newest_bound(const rw_store *st);
/* Commits pending data now (mu held, not the db owner). */
rw_rc shard_commit_locked(rw_shard *sh, rw_err *err);
/* Moves the open head chunk of s to the completed chunks (mu held). */
int series_cut_head(rw_shard *sh, series *s);
/* Writes the completed chunks a transaction took and deletes their saved
 * head rows (db owner, inside the transaction); *bytes, when given, grows by
 * what was written. */
rw_rc db_put_pending_chunks(rw_shard *sh, pend_chunk *pc, size_t npc, uint64_t *bytes,
                            rw_err *err);
/* After a successful commit or checkpoint (mu held): everything up to
 * target is durable, the chunks written are persisted (rowid set, bytes
 * freed); pc and taken are freed. */
void shard_txn_committed(rw_shard *sh, uint64_t target, pend_chunk *pc, size_t npc,
                         rw_buf *taken);
/* Takes what the next transaction writes: the pending WAL bytes and the
 * completed chunks (mu held); shard_restore_pending puts them back. */
void shard_take_pending(rw_shard *sh, rw_buf *taken, pend_chunk **pc, size_t *npc);
/* Puts back what a failed commit took (mu held). */
void shard_restore_pending(rw_shard *sh, rw_buf *taken, pend_chunk *pc, size_t npc);
void shard_note_failure(rw_shard *sh, uint64_t target, rw_rc rc, const rw_err *err);
/* Series rows for the next transaction: shard_take_new_series (mu held)
 * encodes the rows of series created since the last commit into out
 * ([u32 id][u32 len][label blob]...); db_put_series_rows writes them (db
 * owner); shard_restore_new_series (mu held) re-queues them after a failed
 * transaction. */
int shard_note_new_series(rw_shard *sh, uint32_t id);
void shard_take_new_series(rw_shard *sh, rw_buf *out);
rw_rc db_put_series_rows(rw_shard *sh, const rw_buf *rows, size_t *n, rw_err *err);
void shard_restore_new_series(rw_shard *sh, const rw_buf *rows);

/* ---- checkpoint.c ---- */
rw_rc shard_checkpoint(rw_shard *sh, int final, rw_err *err);

/* ---- retention.c ---- */
rw_rc shard_retention(rw_shard *sh, rw_err *err);

/* ---- recover.c ---- */
rw_rc shard_recover(rw_shard *sh, rw_err *err);

#endif
