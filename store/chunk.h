/* chunk.h - internal: the compressed chunk codec (timestamps as deviations
 * from an expected interval, values as XOR floats or delta-of-delta
 * integers). See chunk.c and FORMAT.md for the bit layout. */
#ifndef RW_STORE_CHUNK_H
#define RW_STORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define RW_CHUNK_MAX_SAMPLES 240 /* must fit the u8 count */
#define RW_CHUNK_MAX_SPAN_MS (2LL * 3600 * 1000)
#define RW_CHUNK_HDR 2 /* u8 sample count, u8 flags */
#define RW_CHUNK_F_INT 0x01 /* values coded as integers (all integral, |v| <= 2^53) */
/* Sample RW_CHUNK_SEEK_AT restarts the stream byte-aligned (its time as a
 * uvarint from t0, then coded like a first sample), so a read whose range
 * starts past it decodes only the second half of the chunk. The byte offset
 * of the restart is kept beside the chunk (chunk_enc.seek, hchunk.seek). */
#define RW_CHUNK_F_SEEK 0x02
#define RW_CHUNK_SEEK_AT 120

/* An open chunk being appended to. Owned by its series; guarded by the
 * shard lock. n == 0 means "no open chunk" (b may still hold capacity). */
typedef struct chunk_enc {
    uint8_t *b;        /* its bytes, zero past nbits: malloc'd, or lent */
    uint32_t cap;      /* bytes allocated */
    uint32_t nbits;    /* bits used from the start of b (header included) */
    uint16_t n;        /* samples */
    uint8_t leading;   /* XOR window of the last written window; 0xff = none */
    uint8_t trailing;
    uint8_t intmode;   /* RW_CHUNK_F_INT set in the header */
    uint8_t lent;      /* b is the owner's bytes (chunk_enc_init_in), not malloc'd */
    uint16_t seek;     /* byte offset of the restart (RW_CHUNK_F_SEEK); 0 = none */
    int64_t t0;        /* first timestamp */
    int64_t t;         /* last timestamp */
    uint64_t tdelta;   /* expected timestamp delta (mod 2^64) */
    uint64_t v;        /* last value: IEEE bits, or the integer in int mode */
    uint64_t vdelta;   /* int mode: last value delta */
} chunk_enc;

void chunk_enc_init(chunk_enc *e);
/* Starts in the caller's zeroed bytes buf[cap] (beside the owner's other
 * fields, so an append touches one place in memory, not two); a chunk that
 * outgrows them moves to malloc'd memory. */
void chunk_enc_init_in(chunk_enc *e, uint8_t *buf, uint32_t cap);
void chunk_enc_free(chunk_enc *e);
/* Forgets the samples but keeps the buffer. */
void chunk_enc_reset(chunk_enc *e);
/* Forgets the samples and goes back to buf[cap] (chunk_enc_init_in). */
void chunk_enc_reset_in(chunk_enc *e, uint8_t *buf, uint32_t cap);
/* Appends one sample; the caller ensures t is newer than e->t (except for the
 * first sample). A chunk started with an integral value is in int mode; the
 * first non-integral value re-encodes it in XOR mode. Returns 0, or -1 when
 * out of memory (chunk unchanged). */
int chunk_enc_append(chunk_enc *e, int64_t t, double v);
static inline size_t chunk_enc_len(const chunk_enc *e) { return (e->nbits + 7) / 8; }

/* Iterates the samples of an encoded chunk. Never reads past len. */
typedef struct chunk_it {
    const uint8_t *b;
    size_t len;
    size_t nbits_total;
    size_t pos;        /* bit position */
    uint16_t n, i;
    uint8_t leading, trailing, intmode, seekable;
    int64_t t0;
    int64_t t;
    uint64_t tdelta;
    uint64_t v, vdelta;
} chunk_it;

/* Returns the number of samples, or -1 when the header is malformed. */
int chunk_it_init(chunk_it *it, const uint8_t *b, size_t len);
/* Right after chunk_it_init: when the chunk's restart (at byte offset seek,
 * 0 = none) is at or before mint, continues from there - every sample
 * before it is older than mint. */
void chunk_it_seek(chunk_it *it, uint16_t seek, int64_t mint);
/* 1 = a sample, 0 = end, -1 = corrupt data. */
int chunk_it_next(chunk_it *it, int64_t *t, double *v);
/* Decodes the remaining samples and keeps those in [mint, maxt] in t/v
 * (room for every remaining sample needed), stopping after the first sample
 * past maxt (a chunk is strictly ascending). Returns how many were kept, or
 * -1 when the data is corrupt. */
long chunk_it_range(chunk_it *it, int64_t mint, int64_t maxt, int64_t *t, double *v);

/* Number of samples in an encoded chunk (0 when malformed). */
unsigned chunk_count(const uint8_t *b, size_t len);
/* The first timestamp of an encoded chunk (from its header); -1 when
 * malformed. */
int chunk_t0(const uint8_t *b, size_t len, int64_t *t0);

#endif
