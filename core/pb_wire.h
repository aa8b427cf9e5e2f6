/* pb_wire.h - the protobuf wire format as rwgate's hand-written decoders
 * read it (the remote-write decoders in ingest/, the remote-read request
 * scan in query/): varints and one field at a time, every length checked
 * against what remains before it is used. Header-only: these are inlined
 * into decode loops. */
#ifndef RW_PB_WIRE_H
#define RW_PB_WIRE_H

#include <stdint.h>
#include <string.h>

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static inline __attribute__((always_inline)) int rd_varint(pb *b, uint64_t *out)
{
    if (b->p < b->end && !(*b->p & 0x80)) { /* tags and lengths: nearly always one byte */
        *out = *b->p++;
        return 0;
    }
    if (b->end - b->p >= 2 && !(b->p[1] & 0x80)) { /* a message's length: often two */
        *out = (uint64_t)(b->p[0] & 0x7f) | (uint64_t)b->p[1] << 7;
        b->p += 2;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads one field's key and, for length-delimited fields, its body (sub);
 * other wire types leave their value in *val. Groups (3, 4) are invalid. */
static inline __attribute__((always_inline)) int rd_field(pb *b, uint32_t *num, int *wt,
                                                          pb *sub, uint64_t *val)
{
    uint64_t key;
    if (rd_varint(b, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return rd_varint(b, val);
    case 1:
        if (b->end - b->p < 8)
            return -1;
        memcpy(val, b->p, 8);
        b->p += 8;
        return 0;
    case 2: {
        uint64_t len;
        if (rd_varint(b, &len) < 0 || len > (uint64_t)(b->end - b->p))
            return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    }
    case 5:
        if (b->end - b->p < 4)
            return -1;
        *val = 0;
        memcpy(val, b->p, 4);
        b->p += 4;
        return 0;
    default:
        return -1;
    }
}

/* Whether a message body is well-formed at the wire level (every field
 * parses); its content is not looked at. */
static inline int pb_well_formed(pb b)
{
    while (b.p < b.end) {
        uint32_t num;
        int wt;
        pb sub;
        uint64_t v;
        if (rd_field(&b, &num, &wt, &sub, &v) < 0)
            return 0;
    }
    return 1;
}

/* Number of varints in a packed repeated field's body, or -1. */
static inline int64_t pb_packed_count(pb b)
{
    int64_t n = 0;
    for (const uint8_t *q = b.p; q < b.end; q++)
        n += !(*q & 0x80);
    if (b.p < b.end && (b.end[-1] & 0x80))
        return -1; /* a truncated last varint */
    return n;
}

#define PB_ALIGN16(n) (((size_t)(n) + 15) & ~(size_t)15)

#endif
