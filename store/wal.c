/* wal.c - the write-ahead record format. Appends (shard_append.c) encode new
 * series and accepted samples into the shard's pending buffer; the group
 * commit leader seals the buffer (length + CRC32 header) and stores it as one
 * row of table `wal`; recovery (recover.c) checks and replays those rows.
 * Also the varint and label-set blob helpers shared with db rows.
 * Layout (FORMAT.md "WAL records"):
 *   header  u32 magic "RWAL" | u32 payload length | u32 CRC32(payload), LE
 *   payload entries, each starting with a type byte:
 *     1 series:  uvarint ref, label blob
 *     2 samples: uvarint ref, uvarint n, zigzag t0, then n-1 zigzag deltas,
 *                then n values as 8-byte little-endian IEEE-754 bit patterns */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "store_int.h"

void put_uvarint(rw_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if (v)
            byte |= 0x80;
        tmp[n++] = byte;
    } while (v);
    rw_buf_append(b, tmp, n);
}

int get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    int shift = 0;
    const uint8_t *q = *p;
    while (q < end && shift < 64) {
        uint8_t byte = *q++;
        x |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *p = q;
            *v = x;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

void labels_encode(rw_buf *b, const rw_label *l, size_t n)
{
    put_uvarint(b, n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        put_uvarint(b, nl);
        rw_buf_append(b, l[i].name, nl);
        put_uvarint(b, vl);
        rw_buf_append(b, l[i].value, vl);
    }
}

int labels_decode(const uint8_t **p, const uint8_t *end, rw_label **out, size_t *nout)
{
    uint64_t n;
    const uint8_t *q = *p;
    if (get_uvarint(&q, end, &n) < 0 || n > RW_LABELS_MAX || n > (uint64_t)(end - q))
        return -1;
    /* first pass: sizes */
    size_t strbytes = 0;
    const uint8_t *r = q;
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint64_t len;
        if (get_uvarint(&r, end, &len) < 0 || len > (uint64_t)(end - r))
            return -1;
        r += len;
        strbytes += len + 1;
    }
    rw_label *l = malloc(n * sizeof *l + strbytes + 1);
    if (!l)
        return -1;
    char *sp = (char *)(l + n);
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint64_t len = 0; /* validated by the first pass */
        get_uvarint(&q, end, &len);
        memcpy(sp, q, len);
        sp[len] = '\0';
        if (memchr(sp, '\0', len)) {
            free(l);
            return -1;
        }
        if (i % 2 == 0)
            l[i / 2].name = sp;
        else
            l[i / 2].value = sp;
        sp += len + 1;
        q += len;
    }
    *p = q;
    *out = l;
    *nout = n;
    return 0;
}

void wal_buf_init(rw_buf *b)
{
    static const uint8_t zero[WAL_HDR];
    rw_buf_init(b, 0);
    rw_buf_append(b, zero, WAL_HDR);
}

void wal_put_series(rw_buf *b, const series *s)
{
    rw_buf_putc(b, WAL_SERIES);
    put_uvarint(b, s->id);
    labels_encode(b, s->labels, s->nlabels);
}

void wal_put_samples(rw_buf *b, uint32_t ref, const rw_sample *smp, size_t n)
{
    if (!n)
        return;
    rw_buf_putc(b, WAL_SAMPLES);
    put_uvarint(b, ref);
    put_uvarint(b, n);
    put_uvarint(b, zigzag(smp[0].t));
    for (size_t i = 1; i < n; i++)
        put_uvarint(b, zigzag((int64_t)((uint64_t)smp[i].t - (uint64_t)smp[i - 1].t)));
    if (rw_buf_reserve(b, 8 * n) != RW_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &smp[i].v, 8);
        uint8_t *d = (uint8_t *)b->p + b->len;
        for (int k = 0; k < 8; k++)
            d[k] = (uint8_t)(u >> (8 * k));
        b->len += 8;
    }
    b->p[b->len] = '\0';
}

static void put_u32le(uint8_t *d, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        d[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t get_u32le(const uint8_t *d)
{
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

void wal_seal(rw_buf *b)
{
    uint8_t *d = (uint8_t *)b->p;
    size_t plen = b->len - WAL_HDR;
    put_u32le(d, WAL_MAGIC);
    put_u32le(d + 4, (uint32_t)plen);
    put_u32le(d + 8, (uint32_t)crc32(0L, d + WAL_HDR, (uInt)plen));
}

int wal_record_check(const uint8_t *b, size_t len, const char **msg)
{
    if (len < WAL_HDR) {
        *msg = "record shorter than its header";
        return -1;
    }
    if (get_u32le(b) != WAL_MAGIC) {
        *msg = "bad magic";
        return -1;
    }
    if (get_u32le(b + 4) != len - WAL_HDR) {
        *msg = "length mismatch (torn record)";
        return -1;
    }
    if (get_u32le(b + 8) != (uint32_t)crc32(0L, b + WAL_HDR, (uInt)(len - WAL_HDR))) {
        *msg = "CRC mismatch";
        return -1;
    }
    return 0;
}

int wal_record_visit(const uint8_t *b, size_t len, const wal_visitor *v, const char **msg)
{
    if (wal_record_check(b, len, msg) < 0)
        return -1;
    const uint8_t *p = b + WAL_HDR, *end = b + len;
    while (p < end) {
        uint8_t type = *p++;
        uint64_t ref, n;
        if (get_uvarint(&p, end, &ref) < 0 || ref >= UINT32_MAX) {
            *msg = "bad series ref";
            return -1;
        }
        if (type == WAL_SERIES) {
            rw_label *l;
            size_t nl;
            if (labels_decode(&p, end, &l, &nl) < 0) {
                *msg = "bad label set";
                return -1;
            }
            if (v->series_fn(v->ctx, (uint32_t)ref, l, nl) < 0) {
                *msg = "series record rejected";
                return -1;
            }
        } else if (type == WAL_SAMPLES) {
            if (get_uvarint(&p, end, &n) < 0 || n == 0 || n > (uint64_t)(end - p)) {
                *msg = "bad sample count";
                return -1;
            }
            /* timestamps first, then values: decode into a small window */
            const uint8_t *tp = p;
            const uint8_t *vp;
            {
                const uint8_t *q = p;
                for (uint64_t i = 0; i < n; i++) {
                    uint64_t z;
                    if (get_uvarint(&q, end, &z) < 0) {
                        *msg = "bad timestamp";
                        return -1;
                    }
                }
                vp = q;
                if ((uint64_t)(end - vp) < 8 * n) {
                    *msg = "truncated values";
                    return -1;
                }
            }
            int64_t t = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t z = 0; /* validated by the first pass */
                get_uvarint(&tp, end, &z);
                t = i == 0 ? unzigzag(z) : (int64_t)((uint64_t)t + (uint64_t)unzigzag(z));
                uint64_t u = 0;
                for (int k = 0; k < 8; k++)
                    u |= (uint64_t)vp[8 * i + k] << (8 * k);
                double d;
                memcpy(&d, &u, 8);
                if (v->sample_fn(v->ctx, (uint32_t)ref, t, d) < 0) {
                    *msg = "out of memory";
                    return -1;
                }
            }
            p = vp + 8 * n;
        } else {
            *msg = "unknown entry type";
            return -1;
        }
    }
    return 0;
}
