/* chunk.c - the chunk codec: every accepted sample passes through
 * chunk_enc_append() into its series' open head chunk (shard_append.c), and
 * every read decodes chunks with chunk_it (shard_read.c, recover.c).
 *
 * Written by hand because it is the hottest code on the write path and the
 * format is ours (FORMAT.md "Chunk encoding"). Gorilla-style:
 *   header: u16 LE sample count, then zigzag varint t0 (byte aligned);
 *   then a big-endian bit stream: value 0 XOR-coded against 0.0, and for
 *   every further sample a delta-of-delta timestamp and an XOR value.
 * The delta-of-delta buckets are tuned for scrape data whose timestamps
 * jitter by a few ms (a jitter of +-j gives delta-of-deltas within +-4j): a
 * 5-bit bucket keeps a +-3 ms jittered series at 7 bits per timestamp, so a
 * constant jittered series costs one byte per sample. All timestamp arithmetic is done modulo 2^64 so any int64
 * sequence (negative, huge, irregular) round-trips exactly; values are
 * handled as raw bits so NaN payloads (the stale marker), -0 and Inf do too. */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>

void chunk_enc_init(chunk_enc *e)
{
    memset(e, 0, sizeof *e);
    e->leading = 0xff;
}

void chunk_enc_free(chunk_enc *e)
{
    free(e->b);
    chunk_enc_init(e);
}

void chunk_enc_reset(chunk_enc *e)
{
    if (e->b)
        memset(e->b, 0, e->cap);
    uint8_t *b = e->b;
    uint32_t cap = e->cap;
    chunk_enc_init(e);
    e->b = b;
    e->cap = cap;
}

/* Makes room for `bits` more bits (plus slack for the byte-wise writer). */
static int reserve(chunk_enc *e, uint32_t bits)
{
    uint32_t need = (e->nbits + bits + 7) / 8 + 1;
    if (need <= e->cap)
        return 0;
    uint32_t n = e->cap ? e->cap : 32;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(e->b, n);
    if (!p)
        return -1;
    memset(p + e->cap, 0, n - e->cap);
    e->b = p;
    e->cap = n;
    return 0;
}

/* Writes the low `n` bits of v (1..64), most significant first. The buffer
 * past nbits is zero, so bits are OR-ed in. */
static void put_bits(chunk_enc *e, uint64_t v, int n)
{
    if (n < 64)
        v &= ((uint64_t)1 << n) - 1;
    while (n > 0) {
        uint32_t used = e->nbits & 7;
        int room = 8 - (int)used;
        int take = n < room ? n : room;
        uint8_t bits = (uint8_t)((v >> (n - take)) & ((1u << take) - 1));
        e->b[e->nbits >> 3] |= (uint8_t)(bits << (room - take));
        e->nbits += (uint32_t)take;
        n -= take;
    }
}

static int clz64(uint64_t x) { return x ? __builtin_clzll(x) : 64; }
static int ctz64(uint64_t x) { return x ? __builtin_ctzll(x) : 64; }

/* XOR value coding (the Gorilla scheme):
 *   '0'                      same value as the previous one
 *   '10' <bits>              meaningful bits fit the previous window
 *   '11' <5: leading> <6: length, 64 as 0> <bits>   new window */
static void put_value(chunk_enc *e, uint64_t bits)
{
    uint64_t x = bits ^ e->v;
    if (x == 0) {
        put_bits(e, 0, 1);
    } else {
        int lead = clz64(x), trail = ctz64(x);
        if (lead > 31)
            lead = 31;
        if (e->leading != 0xff && lead >= e->leading && trail >= e->trailing) {
            int sig = 64 - e->leading - e->trailing;
            put_bits(e, 2, 2);
            put_bits(e, x >> e->trailing, sig);
        } else {
            int sig = 64 - lead - trail;
            put_bits(e, 3, 2);
            put_bits(e, (uint64_t)lead, 5);
            put_bits(e, (uint64_t)(sig & 63), 6);
            put_bits(e, x >> trail, sig);
            e->leading = (uint8_t)lead;
            e->trailing = (uint8_t)trail;
        }
    }
    e->v = bits;
}

/* Delta-of-delta buckets: prefix, payload bits (two's complement). */
static const struct { uint8_t prefix, plen, bits; } dod_bucket[] = {
    {0x2, 2, 5},   /* '10'    [-16, 15]   */
    {0x6, 3, 14},  /* '110'   [-8192, 8191] */
    {0xe, 4, 20},  /* '1110'  [-2^19, 2^19) */
    {0x1e, 5, 32}, /* '11110' [-2^31, 2^31) */
};

static void put_dod(chunk_enc *e, uint64_t udod)
{
    int64_t dod = (int64_t)udod;
    if (dod == 0) {
        put_bits(e, 0, 1);
        return;
    }
    for (size_t i = 0; i < sizeof dod_bucket / sizeof dod_bucket[0]; i++) {
        int64_t lim = (int64_t)1 << (dod_bucket[i].bits - 1);
        if (dod >= -lim && dod < lim) {
            put_bits(e, dod_bucket[i].prefix, dod_bucket[i].plen);
            put_bits(e, (uint64_t)dod, dod_bucket[i].bits);
            return;
        }
    }
    put_bits(e, 0x1f, 5); /* '11111' raw 64 bits */
    put_bits(e, udod, 64);
}

int chunk_enc_append(chunk_enc *e, int64_t t, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    /* worst case: 5+64 timestamp bits, 2+5+6+64 value bits, or header */
    if (reserve(e, 160) < 0)
        return -1;
    if (e->n == 0) {
        memset(e->b, 0, e->cap);
        e->nbits = RW_CHUNK_HDR * 8;
        uint64_t z = ((uint64_t)t << 1) ^ (uint64_t)(t >> 63);
        do {
            uint8_t byte = z & 0x7f;
            z >>= 7;
            if (z)
                byte |= 0x80;
            e->b[e->nbits >> 3] = byte;
            e->nbits += 8;
        } while (z);
        e->t0 = e->t = t;
        e->delta = 0;
        e->v = 0;
        e->leading = 0xff;
        e->trailing = 0;
        put_value(e, bits);
    } else {
        uint64_t delta = (uint64_t)t - (uint64_t)e->t;
        put_dod(e, delta - e->delta);
        put_value(e, bits);
        e->delta = delta;
        e->t = t;
    }
    e->n++;
    e->b[0] = (uint8_t)(e->n & 0xff);
    e->b[1] = (uint8_t)(e->n >> 8);
    return 0;
}

/* ---- decoding ---- */

unsigned chunk_count(const uint8_t *b, size_t len)
{
    if (len < RW_CHUNK_HDR)
        return 0;
    return (unsigned)b[0] | ((unsigned)b[1] << 8);
}

int chunk_it_init(chunk_it *it, const uint8_t *b, size_t len)
{
    memset(it, 0, sizeof *it);
    if (len < RW_CHUNK_HDR)
        return -1;
    it->b = b;
    it->nbits_total = len * 8;
    it->n = (uint16_t)chunk_count(b, len);
    it->pos = RW_CHUNK_HDR * 8;
    it->leading = 0xff;
    return it->n;
}

/* Reads n bits (1..64); returns -1 past the end. Reads one big-endian
 * 64-bit word (plus a byte when n spans nine bytes) where the chunk has that
 * many bytes left, else byte by byte. */
static inline int get_bits(chunk_it *it, int n, uint64_t *out)
{
    if (it->pos + (size_t)n > it->nbits_total)
        return -1;
    size_t byte = it->pos >> 3;
    unsigned off = (unsigned)(it->pos & 7);
    if (byte + 8 <= it->nbits_total >> 3) {
        const uint8_t *p = it->b + byte;
        uint64_t w = ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
                     ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
                     ((uint64_t)p[6] << 8) | (uint64_t)p[7];
        uint64_t v = (w << off) >> (64 - n);
        if ((unsigned)n + off > 64) /* the rest is in p[8], inside the chunk */
            v |= (uint64_t)(p[8] >> (8 - ((unsigned)n + off - 64)));
        it->pos += (size_t)n;
        *out = v;
        return 0;
    }
    uint64_t v = 0;
    while (n > 0) {
        size_t used = it->pos & 7;
        int room = 8 - (int)used;
        int take = n < room ? n : room;
        uint8_t b = it->b[it->pos >> 3];
        uint64_t bits = (b >> (room - take)) & ((1u << take) - 1);
        v = (take == 64 ? 0 : v << take) | bits;
        it->pos += (size_t)take;
        n -= take;
    }
    *out = v;
    return 0;
}

static int get_value(chunk_it *it)
{
    uint64_t c, x;
    if (get_bits(it, 1, &c) < 0)
        return -1;
    if (c == 0)
        return 0;
    if (get_bits(it, 1, &c) < 0)
        return -1;
    if (c == 1) {
        uint64_t lead, sig;
        if (get_bits(it, 5, &lead) < 0 || get_bits(it, 6, &sig) < 0)
            return -1;
        if (sig == 0)
            sig = 64;
        if (lead + sig > 64)
            return -1;
        it->leading = (uint8_t)lead;
        it->trailing = (uint8_t)(64 - lead - sig);
    } else if (it->leading == 0xff) {
        return -1; /* reuse of a window that was never set */
    }
    int sig = 64 - it->leading - it->trailing;
    if (get_bits(it, sig, &x) < 0)
        return -1;
    it->v ^= x << it->trailing;
    return 0;
}

int chunk_it_next(chunk_it *it, int64_t *t, double *v)
{
    if (it->i >= it->n)
        return 0;
    if (it->i == 0) {
        uint64_t z = 0;
        int shift = 0;
        for (;;) {
            if (it->pos + 8 > it->nbits_total || shift > 63)
                return -1;
            uint8_t byte = it->b[it->pos >> 3];
            it->pos += 8;
            z |= (uint64_t)(byte & 0x7f) << shift;
            shift += 7;
            if (!(byte & 0x80))
                break;
        }
        it->t = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
        it->v = 0;
        if (get_value(it) < 0)
            return -1;
    } else {
        uint64_t c, dod = 0;
        int ones = 0;
        while (ones < 5) {
            if (get_bits(it, 1, &c) < 0)
                return -1;
            if (c == 0)
                break;
            ones++;
        }
        if (ones == 0) {
            dod = 0;
        } else if (ones == 5) {
            if (get_bits(it, 64, &dod) < 0)
                return -1;
        } else {
            int nb = dod_bucket[ones - 1].bits;
            if (get_bits(it, nb, &dod) < 0)
                return -1;
            if (dod >> (nb - 1)) /* sign-extend */
                dod |= ~(uint64_t)0 << nb;
        }
        it->delta += dod;
        it->t = (int64_t)((uint64_t)it->t + it->delta);
        if (get_value(it) < 0)
            return -1;
    }
    it->i++;
    *t = it->t;
    memcpy(v, &it->v, sizeof *v);
    return 1;
}
