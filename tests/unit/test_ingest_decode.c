/* test_ingest_decode.c - the write path's decoding without HTTP or store:
 * content negotiation, remote-write 1.0 and 2.0 bodies built with protobuf-c,
 * hostile bodies (truncated, wrong and huge declared lengths, garbage, label
 * references out of range), the decode limits, per-series validation and the
 * tenant label. A deterministic mutation loop feeds thousands of corrupted
 * bodies through the decoder; under ASan (tests/run.sh) any memory error
 * fails the suite. */
#include <snappy-c.h>
#include <stdlib.h>
#include "core/cfg.h"
#include "ingest/ingest_int.h"
#include "proto/remote.pb-c.h"
#include "proto/write_v2.pb-c.h"
#include "test.h"

/* The write path's settings with small limits (decode and validation take
 * the settings, not a whole write path). */
static rw_ingest_config *new_ingest(size_t max_decoded)
{
    rw_ingest_config *c = malloc(sizeof *c);
    rw_cfg_defaults(&rw_ingest_config_table, c);
    if (max_decoded)
        c->max_decoded_bytes = (int64_t)max_decoded;
    c->max_labels_per_series = 4;
    c->max_label_value_len = 16;
    return c;
}

static void free_cfg(rw_ingest_config *c)
{
    rw_cfg_free(&rw_ingest_config_table, c);
    free(c);
}

static char *compress(const void *in, size_t n, size_t *out_len)
{
    size_t cap = snappy_max_compressed_length(n);
    char *out = malloc(cap);
    snappy_compress(in, n, out, &cap);
    *out_len = cap;
    return out;
}

/* a v1 WriteRequest with `ns` series of 2 labels and 2 samples each */
static uint8_t *make_v1(size_t ns, size_t *len)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *ts = calloc(ns, sizeof *ts);
    Prometheus__TimeSeries **tsp = calloc(ns, sizeof *tsp);
    Prometheus__Label l[2] = {PROMETHEUS__LABEL__INIT, PROMETHEUS__LABEL__INIT};
    Prometheus__Label *lp[2] = {&l[0], &l[1]};
    Prometheus__Sample s[2] = {PROMETHEUS__SAMPLE__INIT, PROMETHEUS__SAMPLE__INIT};
    Prometheus__Sample *sp[2] = {&s[0], &s[1]};
    l[0].name = "__name__";
    l[0].value = "up";
    l[1].name = "job";
    l[1].value = "etcd";
    s[0].timestamp = 1000;
    s[0].value = 1;
    s[1].timestamp = 2000;
    s[1].value = 2;
    for (size_t i = 0; i < ns; i++) {
        prometheus__time_series__init(&ts[i]);
        ts[i].n_labels = 2;
        ts[i].labels = lp;
        ts[i].n_samples = 2;
        ts[i].samples = sp;
        tsp[i] = &ts[i];
    }
    wr.n_timeseries = ns;
    wr.timeseries = tsp;
    Prometheus__MetricMetadata md = PROMETHEUS__METRIC_METADATA__INIT;
    Prometheus__MetricMetadata *mdp = &md;
    md.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    md.metric_family_name = "up";
    md.help = "help";
    md.unit = "";
    wr.n_metadata = 1;
    wr.metadata = &mdp;
    *len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *buf = malloc(*len);
    prometheus__write_request__pack(&wr, buf);
    free(ts);
    free(tsp);
    return buf;
}

static void test_negotiate(void)
{
    rw_proto_version v;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_ingest_negotiate("application/x-protobuf", "snappy", &v, &e) == RW_OK && v == RW_PROTO_V1);
    CHECK(rw_ingest_negotiate(NULL, NULL, &v, &e) == RW_OK && v == RW_PROTO_V1);
    CHECK(rw_ingest_negotiate("application/x-protobuf;proto=prometheus.WriteRequest", "snappy", &v,
                              &e) == RW_OK && v == RW_PROTO_V1);
    CHECK(rw_ingest_negotiate("application/x-protobuf; proto=io.prometheus.write.v2.Request",
                              "snappy", &v, &e) == RW_OK && v == RW_PROTO_V2);
    CHECK(rw_ingest_negotiate("application/x-protobuf;proto=io.prometheus.write.v2.RequestX",
                              "snappy", &v, &e) == RW_UNSUPPORTED);
    CHECK(rw_ingest_negotiate("application/json", "snappy", &v, &e) == RW_UNSUPPORTED);
    CHECK(rw_ingest_negotiate("application/x-protobuf", "zstd", &v, &e) == RW_UNSUPPORTED);
    CHECK(strstr(e.msg, "snappy") != NULL);
}

static void test_decode_v1(void)
{
    rw_ingest_config *ig = new_ingest(0);
    size_t raw_len, clen;
    uint8_t *raw = make_v1(3, &raw_len);
    char *body = compress(raw, raw_len, &clen);
    rw_arena *a = rw_arena_new(0, 0);
    rw_in_batch b;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_OK);
    CHECK_INT(b.nseries, 3);
    CHECK_INT(b.series[2].nsamples, 2);
    CHECK(b.series[1].samples[1].t == 2000 && b.series[1].samples[1].v == 2);
    CHECK_STR(b.series[0].labels[1].value, "etcd");
    CHECK_INT(b.nmetadata, 1);
    CHECK_STR(b.metadata[0].type, "counter");
    CHECK(rw_in_validate_series(ig, &b.series[0], &e) == RW_OK);
    /* tenant label keeps the set sorted */
    CHECK(rw_in_set_label(a, &b.series[0], "tenant_id", "t1") == RW_OK);
    CHECK_INT(b.series[0].nlabels, 3);
    CHECK_STR(b.series[0].labels[2].name, "tenant_id");
    CHECK(rw_in_set_label(a, &b.series[0], "a", "x") == RW_OK);
    CHECK_STR(b.series[0].labels[1].name, "a"); /* "__name__" < "a": '_' sorts before letters */
    CHECK(rw_in_validate_series(ig, &b.series[0], &e) == RW_OK);
    CHECK(rw_in_set_label(a, &b.series[0], "b", "x") == RW_OK); /* now 5 labels > limit 4 */
    CHECK(rw_in_validate_series(ig, &b.series[0], &e) == RW_LIMIT && strstr(e.msg, "limit"));
    rw_arena_free(a);
    free(raw);
    free(body);
    free_cfg(ig);
}

/* Packs rq, compresses it and decodes it as 2.0 into b. */
static rw_rc decode_v2(const rw_ingest_config *ig, const Io__Prometheus__Write__V2__Request *rq,
                       rw_arena *a, rw_in_batch *b, rw_err *e)
{
    uint8_t buf[512];
    size_t n = io__prometheus__write__v2__request__pack(rq, buf), clen;
    char *body = compress(buf, n, &clen);
    rw_err_init(e);
    rw_rc rc = rw_in_decode(ig, RW_PROTO_V2, body, clen, a, b, e);
    free(body);
    return rc;
}

static void test_decode_v2(void)
{
    rw_ingest_config *ig = new_ingest(0);
    Io__Prometheus__Write__V2__Request rq = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    char *syms[] = {"", "__name__", "etcd_up", "job", "etcd", "help!", "seconds"};
    rq.n_symbols = 7;
    rq.symbols = syms;
    Io__Prometheus__Write__V2__TimeSeries ts = IO__PROMETHEUS__WRITE__V2__TIME_SERIES__INIT;
    Io__Prometheus__Write__V2__TimeSeries *tsp = &ts;
    uint32_t refs[] = {1, 2, 3, 4};
    ts.n_labels_refs = 4;
    ts.labels_refs = refs;
    Io__Prometheus__Write__V2__Sample s = IO__PROMETHEUS__WRITE__V2__SAMPLE__INIT;
    Io__Prometheus__Write__V2__Sample *sp = &s;
    s.timestamp = 5;
    s.value = 0.5;
    ts.n_samples = 1;
    ts.samples = &sp;
    Io__Prometheus__Write__V2__Metadata md = IO__PROMETHEUS__WRITE__V2__METADATA__INIT;
    md.type = IO__PROMETHEUS__WRITE__V2__METADATA__METRIC_TYPE__METRIC_TYPE_GAUGE;
    md.help_ref = 5;
    md.unit_ref = 6;
    ts.metadata = &md;
    rq.n_timeseries = 1;
    rq.timeseries = &tsp;
    uint8_t buf[512];
    size_t n = io__prometheus__write__v2__request__pack(&rq, buf), clen;
    char *body = compress(buf, n, &clen);
    rw_arena *a = rw_arena_new(0, 0);
    rw_in_batch b;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V2, body, clen, a, &b, &e) == RW_OK);
    CHECK_INT(b.nseries, 1);
    CHECK_STR(b.series[0].labels[0].value, "etcd_up");
    CHECK_STR(b.series[0].labels[1].name, "job");
    CHECK(b.series[0].samples[0].v == 0.5);
    CHECK_INT(b.nmetadata, 1);
    CHECK_STR(b.metadata[0].help, "help!");
    CHECK_STR(b.metadata[0].unit, "seconds");
    CHECK_STR(b.metadata[0].type, "gauge");
    /* ASCII symbols: validation may skip the text checks */
    CHECK_INT(b.series[0].ascii, 1);
    rw_err_init(&e);
    CHECK_MSG(rw_in_validate_series(ig, &b.series[0], &e) == RW_OK, "%s", e.msg);
    free(body);
    /* a symbol that is not ASCII (valid UTF-8, then not): the careful way */
    const char *vals[] = {"\xc3\xa9tcd", "\xff\xfe"};
    for (int i = 0; i < 2; i++) {
        syms[4] = (char *)vals[i];
        CHECK(decode_v2(ig, &rq, a, &b, &e) == RW_OK);
        CHECK_INT(b.series[0].ascii, 0);
        rw_err_init(&e);
        CHECK_INT(rw_in_validate_series(ig, &b.series[0], &e), i == 0 ? RW_OK : RW_BADREQ);
    }
    /* a reference to symbols[0] is an empty value, rejected on the fast way */
    syms[4] = "etcd";
    refs[3] = 0;
    CHECK(decode_v2(ig, &rq, a, &b, &e) == RW_OK);
    CHECK_INT(b.series[0].ascii, 1);
    rw_err_init(&e);
    CHECK(rw_in_validate_series(ig, &b.series[0], &e) == RW_BADREQ && strstr(e.msg, "empty value"));
    refs[3] = 4;
    n = io__prometheus__write__v2__request__pack(&rq, buf);
    /* a v2 body decoded as v1 is an empty request (fields 1-3 reserved) */
    body = compress(buf, n, &clen);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_OK && b.nseries == 0);
    free(body);

    /* reference out of range */
    refs[3] = 99;
    CHECK(decode_v2(ig, &rq, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "out of range") != NULL);
    /* odd number of refs */
    refs[3] = 4;
    ts.n_labels_refs = 3;
    CHECK(decode_v2(ig, &rq, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "odd") != NULL);
    /* symbols[0] must be "" */
    ts.n_labels_refs = 4;
    syms[0] = "x";
    CHECK(decode_v2(ig, &rq, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "symbols[0]") != NULL);
    rw_arena_free(a);
    free_cfg(ig);
}

/* hand-built wire bytes for the zero-copy 1.0 decoder */
static size_t put_str(uint8_t *p, int field, const char *s, size_t n)
{
    p[0] = (uint8_t)(field << 3 | 2);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

static void test_decode_v1_wire(void)
{
    rw_ingest_config *ig = new_ingest(0);
    rw_arena *a = rw_arena_new(0, 0);
    rw_in_batch b;
    rw_err e;
    uint8_t lab1[64], lab2[64], smp[32], ts[256], req[512];
    size_t l1 = put_str(lab1, 1, "__name__", 8);
    l1 += put_str(lab1 + l1, 2, "up", 2);
    size_t l2 = put_str(lab2, 1, "job", 3);
    l2 += put_str(lab2 + l2, 2, "a\0b", 3); /* NUL inside a value */
    /* sample: value 2.5 (fixed64), timestamp -5 (10-byte varint), an unknown
       varint field 7 that must be skipped */
    size_t sl = 0;
    double v = 2.5;
    smp[sl++] = 1 << 3 | 1;
    memcpy(smp + sl, &v, 8);
    sl += 8;
    smp[sl++] = 2 << 3 | 0;
    for (int i = 0; i < 9; i++)
        smp[sl++] = i == 0 ? 0xfb : 0xff;
    smp[sl++] = 0x01;
    smp[sl++] = 7 << 3 | 0;
    smp[sl++] = 42;
    size_t tl = 0;
    ts[tl++] = 1 << 3 | 2;
    ts[tl++] = (uint8_t)l1;
    memcpy(ts + tl, lab1, l1);
    tl += l1;
    ts[tl++] = 1 << 3 | 2;
    ts[tl++] = (uint8_t)l2;
    memcpy(ts + tl, lab2, l2);
    tl += l2;
    ts[tl++] = 2 << 3 | 2;
    ts[tl++] = (uint8_t)sl;
    memcpy(ts + tl, smp, sl);
    tl += sl;
    ts[tl++] = 9 << 3 | 5; /* unknown 32-bit field */
    memset(ts + tl, 0, 4);
    tl += 4;
    size_t rl = 0;
    req[rl++] = 2 << 3 | 2; /* reserved field 2: skipped */
    req[rl++] = 0;
    req[rl++] = 1 << 3 | 2;
    req[rl++] = (uint8_t)tl;
    memcpy(req + rl, ts, tl);
    rl += tl;
    size_t clen;
    char *body = compress(req, rl, &clen);
    rw_err_init(&e);
    CHECK_MSG(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_OK, "%s", e.msg);
    CHECK_INT(b.nseries, 1);
    CHECK_INT(b.series[0].nlabels, 2);
    CHECK_STR(b.series[0].labels[0].name, "__name__");
    CHECK_STR(b.series[0].labels[0].value, "up");
    CHECK_INT(b.series[0].lens[3], 3);
    CHECK(b.series[0].samples[0].t == -5 && b.series[0].samples[0].v == 2.5);
    rw_err_init(&e);
    CHECK(rw_in_validate_series(ig, &b.series[0], &e) == RW_BADREQ && strstr(e.msg, "NUL"));
    free(body);

    /* the Sample layout every sender writes (value, then the timestamp
       ending the message) is read directly: a timestamp repeated after it
       still wins (the last value, as protobuf), and one whose varint never
       ends is malformed */
    for (int repeat = 0; repeat < 2; repeat++) {
        uint8_t one[64];
        size_t n = 0, at;
        one[n++] = 1 << 3 | 2;
        at = n++;
        one[n++] = 2 << 3 | 2;
        one[n++] = repeat ? 13 : 11;
        one[n++] = 1 << 3 | 1;
        memcpy(one + n, &v, 8);
        n += 8;
        one[n++] = 2 << 3 | 0;
        one[n++] = repeat ? 0x07 : 0x87; /* 7, or a varint cut short */
        if (repeat) {
            one[n++] = 2 << 3 | 0;
            one[n++] = 0x09;
        }
        one[at] = (uint8_t)(n - at - 1);
        body = compress(one, n, &clen);
        rw_err_init(&e);
        rw_rc rc = rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e);
        if (repeat) {
            CHECK_MSG(rc == RW_OK, "%s", e.msg);
            CHECK(b.nseries == 1 && b.series[0].nsamples == 1 && b.series[0].samples[0].t == 9 &&
                  b.series[0].samples[0].v == 2.5);
        } else {
            CHECK(rc == RW_BADREQ && strstr(e.msg, "malformed time series 0"));
        }
        free(body);
    }

    /* a label sent with the wrong wire type is malformed */
    uint8_t bad[] = {1 << 3 | 2, 4, 1 << 3 | 2, 2, 1 << 3 | 0, 5};
    body = compress(bad, sizeof bad, &clen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "malformed time series 0") != NULL);
    free(body);
    /* a group wire type is invalid */
    uint8_t grp[] = {1 << 3 | 3, 0};
    body = compress(grp, sizeof grp, &clen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_BADREQ);
    CHECK_MSG(strstr(e.msg, "malformed field at byte 1") != NULL, "%s", e.msg);
    free(body);
    /* a length running past the end */
    uint8_t past[] = {1 << 3 | 2, 100, 0};
    body = compress(past, sizeof past, &clen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_BADREQ);
    CHECK_MSG(strstr(e.msg, "malformed field at byte 2") != NULL, "%s", e.msg);
    free(body);
    /* metadata (field 3) that is not a message */
    uint8_t md[] = {3 << 3 | 0, 1};
    body = compress(md, sizeof md, &clen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_BADREQ);
    CHECK_MSG(strstr(e.msg, "malformed field at byte 2") != NULL, "%s", e.msg);
    free(body);
    rw_arena_free(a);
    free_cfg(ig);
}

/* Decodes one v1 series of the given labels (NULL name: the name field left
 * out), with a sample after them or, with sample_between, between the first
 * label and the rest; returns the decoder's ascii flag and the validation
 * result in *rc and e. */
static int decode_one(rw_ingest_config *ig, rw_arena *a, const char *const *kv, size_t n,
                      int sample_between, rw_rc *rc, rw_err *e)
{
    uint8_t ts[512], req[600], lab[128];
    const uint8_t smp[] = {1 << 3 | 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 2 << 3 | 0, 0xe8, 0x07};
    size_t tl = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == (sample_between ? 1 : n)) {
            ts[tl++] = 2 << 3 | 2;
            ts[tl++] = sizeof smp;
            memcpy(ts + tl, smp, sizeof smp);
            tl += sizeof smp;
        }
        if (i == n)
            break;
        size_t ll = 0;
        if (kv[2 * i])
            ll += put_str(lab, 1, kv[2 * i], strlen(kv[2 * i]));
        ll += put_str(lab + ll, 2, kv[2 * i + 1], strlen(kv[2 * i + 1]));
        ts[tl++] = 1 << 3 | 2;
        ts[tl++] = (uint8_t)ll;
        memcpy(ts + tl, lab, ll);
        tl += ll;
    }
    size_t rl = 0;
    req[rl++] = 1 << 3 | 2;
    req[rl++] = (uint8_t)tl;
    memcpy(req + rl, ts, tl);
    rl += tl;
    size_t clen;
    char *body = compress(req, rl, &clen);
    rw_in_batch b;
    rw_err_init(e);
    CHECK_MSG(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, e) == RW_OK, "%s", e->msg);
    free(body);
    CHECK_INT(b.nseries, 1);
    rw_err_init(e);
    *rc = rw_in_validate_series(ig, &b.series[0], e);
    return b.series[0].ascii;
}

/* The decoder's ASCII flag lets validation skip the UTF-8 and NUL checks of
 * a series whose label fields are plain ASCII; every other series still
 * gets them, and the checks the flag does not cover still reject. */
static void test_ascii_fast_path(void)
{
    rw_ingest_config *ig = new_ingest(0);
    rw_arena *a = rw_arena_new(0, 0);
    rw_rc rc;
    rw_err e;
    const char *plain[] = {"__name__", "up", "job", "etcd"};
    CHECK_INT(decode_one(ig, a, plain, 2, 0, &rc, &e), 1);
    CHECK_MSG(rc == RW_OK, "%s", e.msg);
    /* valid UTF-8: the careful way, still accepted */
    const char *utf8[] = {"__name__", "up", "job", "\xc3\xa9tcd"};
    CHECK_INT(decode_one(ig, a, utf8, 2, 0, &rc, &e), 0);
    CHECK_MSG(rc == RW_OK, "%s", e.msg);
    const char *bad[] = {"__name__", "up", "job", "\xff\xfe"};
    CHECK_INT(decode_one(ig, a, bad, 2, 0, &rc, &e), 0);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "UTF-8"));
    const char *badname[] = {"__name__", "up", ("j\x80" "b"), "x"};
    CHECK_INT(decode_one(ig, a, badname, 2, 0, &rc, &e), 0);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "UTF-8"));
    /* an empty value has a zero length byte */
    const char *empty[] = {"__name__", "up", "job", ""};
    CHECK_INT(decode_one(ig, a, empty, 2, 0, &rc, &e), 0);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "empty value"));
    /* a name left out is not a zero byte, but still an empty name */
    const char *noname[] = {"__name__", "up", NULL, "etcd"};
    CHECK_INT(decode_one(ig, a, noname, 2, 0, &rc, &e), 1);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "empty label name"));
    /* order, duplicates and the metric name are checked as before */
    const char *unsorted[] = {"job", "etcd", "__name__", "up"};
    CHECK_INT(decode_one(ig, a, unsorted, 2, 0, &rc, &e), 1);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "not sorted"));
    const char *dup[] = {"__name__", "up", "job", "a", "job", "b"};
    CHECK_INT(decode_one(ig, a, dup, 3, 0, &rc, &e), 1);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "duplicate"));
    const char *noname2[] = {"job", "etcd"};
    CHECK_INT(decode_one(ig, a, noname2, 1, 0, &rc, &e), 1);
    CHECK(rc == RW_BADREQ && strstr(e.msg, "metric name"));
    /* a sample between the labels (its double has high bytes and zeros)
       is inside the span: the careful way, still accepted */
    CHECK_INT(decode_one(ig, a, plain, 2, 1, &rc, &e), 0);
    CHECK_MSG(rc == RW_OK, "%s", e.msg);
    rw_arena_free(a);
    free_cfg(ig);
}

static void test_hostile(void)
{
    rw_ingest_config *ig = new_ingest(1 << 20);
    rw_arena *a = rw_arena_new(0, 0);
    rw_in_batch b;
    rw_err e;
    size_t raw_len, clen;
    uint8_t *raw = make_v1(50, &raw_len);
    char *body = compress(raw, raw_len, &clen);

    /* declared length of gigabytes: refused before allocation */
    unsigned char huge[16] = {0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0};
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, huge, sizeof huge, a, &b, &e) == RW_LIMIT);
    CHECK(strstr(e.msg, "exceeds the limit") != NULL);
    /* more series than max_series_per_request: refused, in both protocols */
    ig->max_series_per_request = 49;
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen, a, &b, &e) == RW_LIMIT);
    CHECK_MSG(strstr(e.msg, "request has 50 series, limit is 49 per request") != NULL, "%s",
              e.msg);
    ig->max_series_per_request = 1;
    const uint8_t two_v2[] = {5 << 3 | 2, 0, 5 << 3 | 2, 0};
    size_t tlen;
    char *tbody = compress(two_v2, sizeof two_v2, &tlen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V2, tbody, tlen, a, &b, &e) == RW_LIMIT);
    CHECK_MSG(strstr(e.msg, "request has 2 series, limit is 1 per request") != NULL, "%s", e.msg);
    free(tbody);
    /* a 2.0 series (field 5) that is not a message */
    const uint8_t v2_bad[] = {5 << 3 | 0, 1};
    tbody = compress(v2_bad, sizeof v2_bad, &tlen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V2, tbody, tlen, a, &b, &e) == RW_BADREQ);
    CHECK_MSG(strstr(e.msg, "io.prometheus.write.v2.Request") != NULL, "%s", e.msg);
    free(tbody);
    ig->max_series_per_request = 100000; /* the default */
    /* truncated */
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, body, clen / 2, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "snappy") != NULL);
    /* garbage */
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, "\xff\xff\xff\xff\xff\xff\xff", 7, a, &b, &e) == RW_BADREQ);
    /* empty */
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, "", 0, a, &b, &e) == RW_BADREQ);
    /* valid snappy around an invalid protobuf */
    const char bad_pb[] = "\x0a\x7f\x0a\x02";
    char *bbody = compress(bad_pb, 4, &clen);
    rw_err_init(&e);
    CHECK(rw_in_decode(ig, RW_PROTO_V1, bbody, clen, a, &b, &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "protobuf") != NULL);
    free(bbody);

    /* mutation loop: flip bytes of a valid compressed body and of the raw
       protobuf; every outcome is fine except a crash or a memory error */
    uint32_t x = 12345;
    size_t ok = 0, bad = 0;
    char *body2 = compress(raw, raw_len, &clen);
    for (int round = 0; round < 4000; round++) {
        char *m = malloc(clen);
        memcpy(m, body2, clen);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            x = x * 1103515245u + 12345u;
            m[(x >> 8) % clen] ^= (char)(1u << ((x >> 4) % 8));
        }
        size_t cut = round % 7 == 0 ? (x >> 3) % clen : clen;
        rw_arena *ra = rw_arena_new(0, 64u << 20);
        rw_err_init(&e);
        if (rw_in_decode(ig, (round & 1) ? RW_PROTO_V2 : RW_PROTO_V1, m, cut, ra, &b, &e) == RW_OK) {
            ok++;
            for (size_t i = 0; i < b.nseries; i++)
                rw_in_validate_series(ig, &b.series[i], &e);
        } else {
            bad++;
        }
        rw_arena_free(ra);
        free(m);
        /* the same on the raw protobuf (snappy-valid, protobuf-mutated) */
        uint8_t *rm = malloc(raw_len);
        memcpy(rm, raw, raw_len);
        x = x * 1103515245u + 12345u;
        rm[(x >> 8) % raw_len] = (uint8_t)(x >> 16);
        size_t mc;
        char *cm = compress(rm, raw_len - (round % 5 == 0 ? (x >> 2) % raw_len : 0), &mc);
        ra = rw_arena_new(0, 64u << 20);
        rw_err_init(&e);
        if (rw_in_decode(ig, (round & 2) ? RW_PROTO_V2 : RW_PROTO_V1, cm, mc, ra, &b, &e) == RW_OK)
            for (size_t i = 0; i < b.nseries; i++)
                rw_in_validate_series(ig, &b.series[i], &e);
        rw_arena_free(ra);
        free(cm);
        free(rm);
    }
    fprintf(stderr, "mutation loop: %zu decoded, %zu rejected\n", ok, bad);
    CHECK(ok + bad == 4000);
    CHECK(bad > 0);
    free(body2);
    free(raw);
    free(body);
    rw_arena_free(a);
    free_cfg(ig);
}

int main(void)
{
    RUN(test_negotiate);
    RUN(test_decode_v1);
    RUN(test_decode_v2);
    RUN(test_decode_v1_wire);
    RUN(test_ascii_fast_path);
    RUN(test_hostile);
    TEST_DONE();
}
