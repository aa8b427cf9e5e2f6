/* chunk.c - the chunk codec: every accepted sample passes through
 * chunk_enc_append() into its series' open head chunk (shard_append.c), and
 * every read decodes chunks with chunk_it (shard_read.c, recover.c).
 *
 * Written by hand because it is the hottest code on the write path (and a
 * hot one on the read path) and the format is ours (FORMAT.md "Chunk
 * encoding"):
 *   header: u8 sample count, u8 flags, then zigzag varint t0 (byte aligned);
 *   then a big-endian bit stream: value 0, and for every further sample a
 *   timestamp and a value.
 * Timestamps are coded as the deviation r = delta - D from an expected
 * interval D (not as delta-of-delta): scrape timestamps sit on a grid plus a
 * few ms of jitter j, so r = j_i - j_{i-1} spans +-2j where a delta-of-delta
 * spans +-4j. D starts at 0; whenever r does not fit the 4-bit bucket, D
 * becomes the new delta, rounded to a whole second when it is within 50 ms
 * of one (scrape intervals are whole seconds in practice; the rounding keeps
 * D off the jitter). +-3 ms scrape data then costs ~4.5 bits per timestamp,
 * exact intervals 1 bit.
 * Values: a chunk whose first value is integral (|v| <= 2^53, not -0) is in
 * int mode: delta-of-delta of the integers, which is what counters and
 * histogram buckets compress best with. The first non-integral value
 * re-encodes the chunk in XOR mode (Gorilla XOR on the raw IEEE bits), which
 * every other chunk uses. Raw bits everywhere, so NaN payloads (the stale
 * marker), -0 and +-Inf round-trip exactly; timestamp arithmetic is modulo
 * 2^64 so any int64 sequence does too.
 * The bit writer and reader work a 64-bit word at a time: the buffer keeps
 * 8 zero bytes of slack past the last bit, so a write is load | bits, store. */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static inline void store_be64(uint8_t *p, uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    memcpy(p, &w, sizeof w);
}

/* The expected interval after a timestamp delta that did not fit. */
static inline uint64_t snap_delta(uint64_t d)
{
    if (d >= 1000 && d < ((uint64_t)1 << 62)) {
        uint64_t m = (d + 500) / 1000 * 1000;
        if ((m >= d ? m - d : d - m) <= 50)
            return m;
    }
    return d;
}

/* Integral value that int mode can hold exactly. */
static inline int value_as_int(uint64_t bits, int64_t *out)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0)) /* also NaN */
        return 0;
    int64_t i = (int64_t)x;
    if ((double)i != x || (i == 0 && bits != 0)) /* fraction, or -0 */
        return 0;
    *out = i;
    return 1;
}

void chunk_enc_init(chunk_enc *e)
{
    memset(e, 0, sizeof *e);
    e->leading = 0xff;
}

void chunk_enc_init_in(chunk_enc *e, uint8_t *buf, uint32_t cap)
{
    chunk_enc_init(e);
    e->b = buf;
    e->cap = cap;
    e->lent = 1;
}

void chunk_enc_free(chunk_enc *e)
{
    if (!e->lent)
        free(e->b);
    chunk_enc_init(e);
}

void chunk_enc_reset_in(chunk_enc *e, uint8_t *buf, uint32_t cap)
{
    if (e->b != buf) {
        chunk_enc_free(e);
        memset(buf, 0, cap);
        chunk_enc_init_in(e, buf, cap);
        return;
    }
    chunk_enc_reset(e);
}

void chunk_enc_reset(chunk_enc *e)
{
    if (e->b)
        memset(e->b, 0, e->cap);
    uint8_t *b = e->b;
    uint32_t cap = e->cap;
    uint8_t lent = e->lent;
    chunk_enc_init(e);
    e->b = b;
    e->cap = cap;
    e->lent = lent;
}

/* Makes room for `bits` more bits plus the 8 bytes of slack the word writer
 * touches. */
static int reserve(chunk_enc *e, uint32_t bits)
{
    uint32_t need = (e->nbits + bits + 7) / 8 + 8;
    if (need <= e->cap)
        return 0;
    /* grow by half (16-byte steps): a million open chunks of a few dozen
     * samples each should not all carry a doubling's slack */
    uint32_t n = e->cap ? e->cap : 32;
    while (n < need)
        n = (n + n / 2 + 15) & ~15u;
    uint8_t *p = e->lent ? malloc(n) : realloc(e->b, n);
    if (!p)
        return -1;
    if (e->lent)
        memcpy(p, e->b, e->cap);
    memset(p + e->cap, 0, n - e->cap);
    e->b = p;
    e->cap = n;
    e->lent = 0;
    return 0;
}

/* Writes the low n bits of v (1..56), most significant first. */
static inline void put_small(chunk_enc *e, uint64_t v, unsigned n)
{
    v &= ~(uint64_t)0 >> (64 - n);
    uint8_t *p = e->b + (e->nbits >> 3);
    unsigned off = e->nbits & 7;
    store_be64(p, load_be64(p) | (v << (64 - off - n)));
    e->nbits += n;
}

/* Writes the low n bits of v (1..64). */
static inline void put_bits(chunk_enc *e, uint64_t v, unsigned n)
{
    if (n > 56) {
        put_small(e, v >> 32, n - 32);
        v &= 0xffffffffu;
        n = 32;
    }
    put_small(e, v, n);
}

static int clz64(uint64_t x) { return x ? __builtin_clzll(x) : 64; }
static int ctz64(uint64_t x) { return x ? __builtin_ctzll(x) : 64; }

/* XOR value coding (the Gorilla scheme):
 *   '0'                      same value as the previous one
 *   '10' <bits>              meaningful bits fit the previous window
 *   '11' <5: leading> <6: length, 64 as 0> <bits>   new window */
static void put_xor(chunk_enc *e, uint64_t bits)
{
    uint64_t x = bits ^ e->v;
    if (x == 0) {
        put_small(e, 0, 1);
    } else {
        int lead = clz64(x), trail = ctz64(x);
        if (lead > 31)
            lead = 31;
        if (e->leading != 0xff && lead >= e->leading && trail >= e->trailing) {
            unsigned sig = 64u - e->leading - e->trailing;
            put_small(e, 2, 2);
            put_bits(e, x >> e->trailing, sig);
        } else {
            unsigned sig = 64u - (unsigned)lead - (unsigned)trail;
            /* '11', 5 bits leading, 6 bits length in one write */
            put_small(e, (3u << 11) | ((unsigned)lead << 6) | (sig & 63), 13);
            put_bits(e, x >> trail, sig);
            e->leading = (uint8_t)lead;
            e->trailing = (uint8_t)trail;
        }
    }
    e->v = bits;
}

/* Integer delta-of-delta buckets: prefix, prefix length, payload bits. */
static const struct { uint8_t prefix, plen, bits; } int_bucket[] = {
    {0x2, 2, 4},   /* '10'     [-8, 7]     */
    {0x6, 3, 8},   /* '110'    [-128, 127] */
    {0xe, 4, 16},  /* '1110'   [-2^15, 2^15) */
    {0x1e, 5, 32}, /* '11110'  [-2^31, 2^31) */
};

static void put_int(chunk_enc *e, int64_t iv)
{
    uint64_t d = (uint64_t)iv - e->v;
    int64_t dd = (int64_t)(d - e->vdelta);
    if (dd == 0) {
        put_small(e, 0, 1);
    } else {
        size_t i = 0;
        for (; i < sizeof int_bucket / sizeof int_bucket[0]; i++) {
            int64_t lim = (int64_t)1 << (int_bucket[i].bits - 1);
            if (dd >= -lim && dd < lim) {
                put_small(e, ((uint64_t)int_bucket[i].prefix << int_bucket[i].bits) |
                                 ((uint64_t)dd & ((1ull << int_bucket[i].bits) - 1)),
                          int_bucket[i].plen + int_bucket[i].bits);
                break;
            }
        }
        if (i == sizeof int_bucket / sizeof int_bucket[0]) {
            put_small(e, 0x1f, 5); /* '11111' raw 64 bits */
            put_bits(e, (uint64_t)dd, 64);
        }
    }
    e->vdelta = e->n ? d : 0; /* the first value has no delta */
    e->v = (uint64_t)iv;
}

/* Timestamp deviation from the expected delta:
 *   '0'                 r == 0
 *   '1' <4 bits>        r in [-8, 7], r != 0 (two's complement)
 *   '1' '0000' then '0' <14> | '10' <20> | '110' <32> | '111' <64>,
 *                       and the expected delta becomes snap(delta) */
static void put_ts(chunk_enc *e, uint64_t delta)
{
    int64_t r = (int64_t)(delta - e->tdelta);
    if (r == 0) {
        put_small(e, 0, 1);
    } else if (r >= -8 && r <= 7) {
        put_small(e, 0x10 | ((uint64_t)r & 0xf), 5);
    } else {
        if (r >= -8192 && r < 8192)
            put_small(e, (0x10ull << 15) | ((uint64_t)r & 0x3fff), 20);
        else if (r >= -(1 << 19) && r < (1 << 19))
            put_small(e, (0x42ull << 20) | ((uint64_t)r & 0xfffff), 27);
        else if (r >= INT32_MIN && r <= INT32_MAX)
            put_small(e, (0x86ull << 32) | ((uint64_t)r & 0xffffffffu), 40);
        else {
            put_small(e, 0x87, 8);
            put_bits(e, (uint64_t)r, 64);
        }
        e->tdelta = snap_delta(delta);
    }
}

static int enc_append(chunk_enc *e, int64_t t, uint64_t bits, int allow_int)
{
    int64_t iv = 0;
    int isint = value_as_int(bits, &iv);
    /* worst case: 8+64 timestamp bits, 13+64 value bits, or the header */
    if (reserve(e, 200) < 0)
        return -1;
    if (e->n == 0) {
        memset(e->b, 0, e->cap);
        e->intmode = (uint8_t)(allow_int && isint);
        e->b[1] = e->intmode ? RW_CHUNK_F_INT : 0;
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
        e->seek = 0;
        e->tdelta = 0;
        e->v = 0;
        e->vdelta = 0;
        e->leading = 0xff;
        e->trailing = 0;
    } else if (e->n == RW_CHUNK_SEEK_AT) {
        /* the restart: byte-aligned, time from t0, state as at a start */
        e->nbits = (e->nbits + 7) & ~7u;
        e->seek = (uint16_t)(e->nbits >> 3); /* < 240 * 150 bits */
        uint64_t z = (uint64_t)t - (uint64_t)e->t0;
        do {
            uint8_t byte = z & 0x7f;
            z >>= 7;
            if (z)
                byte |= 0x80;
            e->b[e->nbits >> 3] = byte;
            e->nbits += 8;
        } while (z);
        e->b[1] |= RW_CHUNK_F_SEEK;
        e->t = t;
        e->tdelta = 0;
        e->v = 0;
        e->vdelta = 0;
        e->leading = 0xff;
        e->trailing = 0;
    } else {
        uint64_t delta = (uint64_t)t - (uint64_t)e->t;
        put_ts(e, delta);
        e->t = t;
    }
    if (e->intmode)
        put_int(e, iv);
    else
        put_xor(e, bits);
    if (e->n == RW_CHUNK_SEEK_AT)
        e->vdelta = 0; /* a restarted value has no delta, as the first */
    e->n++;
    e->b[0] = (uint8_t)e->n;
    return 0;
}

/* Re-encodes an int-mode chunk in XOR mode and appends (t, bits); e is
 * unchanged on failure. */
static int transcode_append(chunk_enc *e, int64_t t, uint64_t bits)
{
    chunk_enc x;
    chunk_enc_init(&x);
    chunk_it it;
    int64_t ts;
    double v;
    int r = chunk_it_init(&it, e->b, chunk_enc_len(e)) < 0 ? -1 : 0;
    while (r == 0 && (r = chunk_it_next(&it, &ts, &v)) == 1) {
        uint64_t vb;
        memcpy(&vb, &v, sizeof vb);
        r = enc_append(&x, ts, vb, 0) < 0 ? -1 : 0;
    }
    if (r < 0 || enc_append(&x, t, bits, 0) < 0) {
        free(x.b);
        return -1;
    }
    chunk_enc_free(e);
    *e = x;
    return 0;
}

int chunk_enc_append(chunk_enc *e, int64_t t, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (e->n && e->intmode) {
        int64_t iv;
        if (!value_as_int(bits, &iv))
            return transcode_append(e, t, bits);
    }
    return enc_append(e, t, bits, 1);
}

/* ---- decoding ---- */

unsigned chunk_count(const uint8_t *b, size_t len)
{
    if (len < RW_CHUNK_HDR || (b[1] & ~(RW_CHUNK_F_INT | RW_CHUNK_F_SEEK)))
        return 0;
    return b[0];
}

int chunk_t0(const uint8_t *b, size_t len, int64_t *t0)
{
    uint64_t z = 0;
    for (size_t i = RW_CHUNK_HDR, shift = 0; i < len && shift < 64; i++, shift += 7) {
        z |= (uint64_t)(b[i] & 0x7f) << shift;
        if (!(b[i] & 0x80)) {
            *t0 = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
            return 0;
        }
    }
    return -1;
}

int chunk_it_init(chunk_it *it, const uint8_t *b, size_t len)
{
    memset(it, 0, sizeof *it);
    if (len < RW_CHUNK_HDR || (b[1] & ~(RW_CHUNK_F_INT | RW_CHUNK_F_SEEK)))
        return -1;
    it->b = b;
    it->len = len;
    it->nbits_total = len * 8;
    it->n = b[0];
    it->intmode = (b[1] & RW_CHUNK_F_INT) != 0;
    it->seekable = (b[1] & RW_CHUNK_F_SEEK) != 0 && it->n > RW_CHUNK_SEEK_AT;
    it->pos = RW_CHUNK_HDR * 8;
    it->leading = 0xff;
    return it->n;
}

/* Reading bits. it_peek() returns the bits from pos on, left-aligned, with
 * at least 57 of them valid (zeros past the end of the buffer); the decoders
 * below take their prefixes and short fields from one peek, so a typical
 * sample costs two or three unaligned loads instead of a bounds-checked read
 * per field and per prefix bit. Reading past the end is not checked field by
 * field: pos only grows by the bits taken, so a sample ran past the end
 * exactly when pos > nbits_total afterwards, which it_step() checks (the
 * values decoded from the zero padding are then discarded). */
#define RW_INLINE static inline __attribute__((always_inline))

RW_INLINE uint64_t it_peek(const chunk_it *it)
{
    size_t byte = it->pos >> 3;
    uint64_t w;
    if (__builtin_expect(byte + 8 <= it->len, 1)) {
        w = load_be64(it->b + byte);
    } else {
        w = 0;
        for (size_t i = 0; i < 8; i++)
            w = (w << 8) | (byte + i < it->len ? it->b[byte + i] : 0);
    }
    return w << (it->pos & 7);
}

/* Takes n bits (1..64). */
RW_INLINE uint64_t it_take(chunk_it *it, unsigned n)
{
    if (n <= 57) {
        uint64_t w = it_peek(it) >> (64 - n);
        it->pos += n;
        return w;
    }
    uint64_t hi = it_peek(it) >> (64 - (n - 32));
    it->pos += n - 32;
    uint64_t lo = it_peek(it) >> 32;
    it->pos += 32;
    return (hi << 32) | lo;
}

/* Sign-extends the low `bits` bits of v (1..64). */
RW_INLINE uint64_t sign_extend(uint64_t v, unsigned bits)
{
    unsigned s = 64 - bits;
    return (uint64_t)((int64_t)(v << s) >> s);
}

/* Leading one bits of w, at most max. */
RW_INLINE unsigned lead_ones(uint64_t w, unsigned max)
{
    unsigned k = (unsigned)clz64(~w);
    return k < max ? k : max;
}

RW_INLINE int get_xor(chunk_it *it)
{
    uint64_t w = it_peek(it);
    if (!(w >> 63)) {
        it->pos += 1;
        return 0;
    }
    if (w >> 62 & 1) {
        uint64_t lead = w >> 57 & 31, sig = w >> 51 & 63; /* '11' <5> <6> */
        it->pos += 13;
        if (sig == 0)
            sig = 64;
        if (lead + sig > 64)
            return -1;
        it->leading = (uint8_t)lead;
        it->trailing = (uint8_t)(64 - lead - sig);
        it->v ^= it_take(it, (unsigned)sig) << it->trailing;
        return 0;
    }
    if (it->leading == 0xff)
        return -1; /* reuse of a window that was never set */
    unsigned sig = 64u - it->leading - it->trailing;
    if (sig <= 55) { /* '10' and the bits from the same peek */
        it->v ^= (w << 2) >> (64 - sig) << it->trailing;
        it->pos += 2 + sig;
        return 0;
    }
    it->pos += 2;
    it->v ^= it_take(it, sig) << it->trailing;
    return 0;
}

/* The integer delta-of-delta of the next value (int mode). */
RW_INLINE uint64_t get_dd(chunk_it *it)
{
    uint64_t w = it_peek(it);
    unsigned ones = lead_ones(w, 5);
    if (__builtin_expect(ones == 0, 0)) {
        it->pos += 1;
        return 0;
    }
    if (ones < 5) {
        /* prefix and payload: at most 5 + 32 bits, all inside the peek;
         * the payload widths are 4, 8, 16, 32 (int_bucket) */
        unsigned nb = 2u << ones;
        it->pos += ones + 1 + nb;
        return sign_extend((w << (ones + 1)) >> (64 - nb), nb);
    }
    it->pos += 5;
    return it_take(it, 64);
}

RW_INLINE void get_ts(chunk_it *it)
{
    uint64_t w = it_peek(it);
    if (!(w >> 63)) {
        it->pos += 1;
        it->t = (int64_t)((uint64_t)it->t + it->tdelta);
        return;
    }
    uint64_t r = w >> 59 & 0xf;
    if (__builtin_expect(r != 0, 1)) {
        it->pos += 5;
        it->t = (int64_t)((uint64_t)it->t + it->tdelta + sign_extend(r, 4));
        return;
    }
    static const unsigned nb[4] = {14, 20, 32, 64};
    unsigned k = lead_ones(w << 5, 3);
    it->pos += 5 + (k < 3 ? k + 1 : 3);
    r = sign_extend(it_take(it, nb[k]), nb[k]);
    uint64_t delta = it->tdelta + r;
    it->t = (int64_t)((uint64_t)it->t + delta);
    it->tdelta = snap_delta(delta);
}

/* Reads a uvarint at the byte-aligned pos. */
static int it_uvarint(chunk_it *it, uint64_t *out)
{
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
    *out = z;
    return 0;
}

/* The first sample (zigzag varint timestamp), or the restart at
 * RW_CHUNK_SEEK_AT (byte-aligned uvarint time from t0): the value is coded
 * against 0, with no window and no delta. */
static int it_first(chunk_it *it)
{
    uint64_t z;
    if (it->i == 0) {
        if (it_uvarint(it, &z) < 0)
            return -1;
        it->t0 = it->t = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
    } else {
        it->pos = (it->pos + 7) & ~(size_t)7;
        if (it_uvarint(it, &z) < 0)
            return -1;
        it->t = (int64_t)((uint64_t)it->t0 + z);
        it->tdelta = 0;
        it->leading = 0xff;
        it->trailing = 0;
    }
    it->v = 0;
    it->vdelta = 0;
    if (it->intmode)
        it->v = get_dd(it);
    else if (get_xor(it) < 0)
        return -1;
    if (it->pos > it->nbits_total)
        return -1;
    it->i++;
    return 0;
}

void chunk_it_seek(chunk_it *it, uint16_t seek, int64_t mint)
{
    if (!it->seekable || it->i != 0 || !seek || (size_t)seek >= it->len)
        return;
    chunk_it r = *it;
    uint64_t z;
    if (it_uvarint(&r, &z) < 0)
        return;
    int64_t t0 = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
    r.pos = (size_t)seek * 8;
    if (it_uvarint(&r, &z) < 0 || (int64_t)((uint64_t)t0 + z) > mint)
        return;
    /* it_first() reads the restart again, from here */
    it->t0 = t0;
    it->pos = (size_t)seek * 8;
    it->i = RW_CHUNK_SEEK_AT;
}

/* Decodes the next sample after the first or the restart into it->t /
 * it->v: 0, or -1 when the data is corrupt. */
RW_INLINE int it_step_plain(chunk_it *it)
{
    get_ts(it);
    if (it->intmode) {
        it->vdelta += get_dd(it);
        it->v += it->vdelta;
    } else if (get_xor(it) < 0) {
        return -1;
    }
    if (__builtin_expect(it->pos > it->nbits_total, 0))
        return -1;
    it->i++;
    return 0;
}

/* The index of the next sample that starts a stream (the first, or the
 * restart), or n. */
RW_INLINE uint16_t it_next_start(const chunk_it *it)
{
    if (it->i == 0)
        return 0;
    return it->seekable && it->i <= RW_CHUNK_SEEK_AT ? RW_CHUNK_SEEK_AT : it->n;
}

/* Decodes the next sample (the caller checked i < n): 0, or -1. */
RW_INLINE int it_step(chunk_it *it)
{
    if (__builtin_expect(it->i == it_next_start(it), 0))
        return it_first(it);
    return it_step_plain(it);
}

RW_INLINE double it_value(const chunk_it *it)
{
    double v;
    if (it->intmode)
        return (double)(int64_t)it->v;
    memcpy(&v, &it->v, sizeof v);
    return v;
}

int chunk_it_next(chunk_it *it, int64_t *t, double *v)
{
    if (it->i >= it->n)
        return 0;
    if (it_step(it) < 0)
        return -1;
    *t = it->t;
    *v = it_value(it);
    return 1;
}

long chunk_it_range(chunk_it *it, int64_t mint, int64_t maxt, int64_t *t, double *v)
{
    chunk_it c = *it; /* a local copy: the state stays in registers */
    long n = 0;
    while (c.i < c.n) {
        /* one sample (a start: the first or the restart, or a plain one),
           then the plain samples up to the next start without testing
           each for being one */
        if (c.i == it_next_start(&c) ? it_first(&c) < 0 : it_step_plain(&c) < 0)
            return -1;
        uint16_t end = c.seekable && c.i <= RW_CHUNK_SEEK_AT ? RW_CHUNK_SEEK_AT : c.n;
        for (;;) {
            if (c.t > maxt)
                goto out;
            if (c.t >= mint) {
                t[n] = c.t;
                v[n] = it_value(&c);
                n++;
            }
            if (c.i >= end)
                break;
            if (it_step_plain(&c) < 0)
                return -1;
        }
    }
out:
    *it = c;
    return n;
}
