/* chunk.h - internal: the compressed chunk codec (delta-of-delta timestamps,
 * XOR floats). See chunk.c and FORMAT.md for the bit layout. */
#ifndef RW_STORE_CHUNK_H
#define RW_STORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define RW_CHUNK_MAX_SAMPLES 120
#define RW_CHUNK_MAX_SPAN_MS (2LL * 3600 * 1000)
#define RW_CHUNK_HDR 2 /* u16 LE sample count */

/* An open chunk being appended to. Owned by its series; guarded by the
 * shard lock. n == 0 means "no open chunk" (b may still hold capacity). */
typedef struct chunk_enc {
    uint8_t *b;        /* malloc'd bytes, zero past nbits */
    uint32_t cap;      /* bytes allocated */
    uint32_t nbits;    /* bits used from the start of b (header included) */
    uint16_t n;        /* samples */
    uint8_t leading;   /* XOR window of the last written window; 0xff = none */
    uint8_t trailing;
    int64_t t0;        /* first timestamp */
    int64_t t;         /* last timestamp */
    uint64_t delta;    /* last timestamp delta (mod 2^64) */
    uint64_t v;        /* last value bits */
} chunk_enc;

void chunk_enc_init(chunk_enc *e);
void chunk_enc_free(chunk_enc *e);
/* Forgets the samples but keeps the buffer. */
void chunk_enc_reset(chunk_enc *e);
/* Appends one sample; the caller ensures t is newer than e->t (except for the
 * first sample). Returns 0, or -1 when out of memory (chunk unchanged). */
int chunk_enc_append(chunk_enc *e, int64_t t, double v);
static inline size_t chunk_enc_len(const chunk_enc *e) { return (e->nbits + 7) / 8; }

/* Iterates the samples of an encoded chunk. Never reads past len. */
typedef struct chunk_it {
    const uint8_t *b;
    size_t nbits_total;
    size_t pos;        /* bit position */
    uint16_t n, i;
    uint8_t leading, trailing;
    int64_t t;
    uint64_t delta;
    uint64_t v;
} chunk_it;

/* Returns the number of samples, or -1 when the header is malformed. */
int chunk_it_init(chunk_it *it, const uint8_t *b, size_t len);
/* 1 = a sample, 0 = end, -1 = corrupt data. */
int chunk_it_next(chunk_it *it, int64_t *t, double *v);

/* Number of samples in an encoded chunk (0 when malformed). */
unsigned chunk_count(const uint8_t *b, size_t len);

#endif
