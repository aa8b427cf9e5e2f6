/* test_core.c - unit tests of core/: float formatting as Prometheus writes it,
 * durations, API times, labels (hash, validation, ordering), matchers, the
 * arena and the capped buffer, the inline byte helpers of core/text.h. */
#include <float.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/labels.h"
#include "core/matcher.h"
#include "core/text.h"
#include "core/timeutil.h"
#include "test.h"
#include <xxhash.h>

static void test_float_format(void)
{
    char b[64];
    struct { double v; const char *json, *g; } cases[] = {
        {0, "0", "0"},
        {1, "1", "1"},
        {-2.5, "-2.5", "-2.5"},
        {0.1, "0.1", "0.1"},
        {1e6, "1000000", "1e+06"},
        {123456789, "123456789", "1.23456789e+08"},
        {1e-7, "1e-07", "1e-07"},
        {0.0001, "0.0001", "0.0001"},
        {0.00001, "0.00001", "1e-05"},
        {1e21, "1e+21", "1e+21"},
        {1.7976931348623157e308, "1.7976931348623157e+308", "1.7976931348623157e+308"},
        {3.0e20, "300000000000000000000", "3e+20"},
        {1.0 / 3, "0.3333333333333333", "0.3333333333333333"},
        {NAN, "NaN", "NaN"},
        {INFINITY, "+Inf", "+Inf"},
        {-INFINITY, "-Inf", "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rw_fmt_float_json(cases[i].v, b);
        CHECK_STR(b, cases[i].json);
        rw_fmt_float_g(cases[i].v, b);
        CHECK_STR(b, cases[i].g);
    }
}

/* Significant digits of a formatted number ("-0.00125" -> 3, "1.5e+07" -> 2,
 * "1200" -> 2: trailing zeros of an integer part are not significant) */
static int sig_digits(const char *s)
{
    int n = 0, lead = 1, zeros = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (lead && *s == '0')
            continue;
        lead = 0;
        if (*s == '0') {
            zeros++;
        } else {
            n += zeros + 1;
            zeros = 0;
        }
    }
    return n;
}

/* The JSON float format against an independent reference, libc: for
 * random doubles of every magnitude the output reads back to the same
 * double and has exactly as many significant digits as the smallest %.*e
 * precision that reads back (the shortest representation, as Go's
 * strconv 'f' -1 that Prometheus uses). */
static void test_float_shortest(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char out[64], ref[64];
    size_t bad = 0;
    for (int i = 0; i < 40000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        switch (i % 4) {
        case 0: { /* any finite double */
            uint64_t b = x & ~(0x7ffULL << 52);
            b |= (uint64_t)(1 + (x >> 52) % 2046) << 52;
            memcpy(&v, &b, 8);
            break;
        }
        case 1: v = (double)(x % 100000000) / 1000.0; break;       /* decimals */
        case 2: v = ldexp((double)(x >> 11), -(int)(x % 90)); break; /* rates, ratios */
        default: v = (double)(x >> 20) * 1e-9; break;
        }
        rw_fmt_float_json(v, out);
        int prec = 0;
        for (; prec < 17; prec++) {
            snprintf(ref, sizeof ref, "%.*e", prec, v);
            if (strtod(ref, NULL) == v)
                break;
        }
        if (strtod(out, NULL) != v || sig_digits(out) != sig_digits(ref)) {
            if (bad++ < 5)
                fprintf(stderr, "float %a: got %s, shortest %s\n", v, out, ref);
        }
    }
    CHECK_INT(bad, 0);
}

static void test_json_point(void)
{
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_json_point(&b, 1500, 2);
    rw_json_point(&b, -1500, 0.5);
    rw_json_point(&b, 3000, 1e-9);
    CHECK_STR(b.p, "[1.5,\"2\"][-1.5,\"0.5\"][3,\"1e-09\"]");
    rw_buf_reset(&b);
    rw_json_str(&b, "a\"b\\c\n<");
    CHECK_STR(b.p, "\"a\\\"b\\\\c\\n\\u003c\"");
    /* valid UTF-8 passes through; every invalid byte becomes U+FFFD */
    rw_buf_reset(&b);
    rw_json_str(&b, "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!");
    CHECK_STR(b.p, "\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!\"");
    rw_buf_reset(&b);
    rw_json_str(&b, "\xff\xfe|\xc3|\xed\xa0\x80|\xc0\xaf|\xf4\x90\x80\x80|\xe2\x82");
    CHECK_STR(b.p, "\"\\ufffd\\ufffd|\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|"
                   "\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"");
    rw_buf_free(&b);
}

static void test_durations(void)
{
    int64_t ms;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_parse_duration("1h30m", 5, &ms, &e) == RW_OK && ms == 5400000);
    CHECK(rw_parse_duration("5m", 2, &ms, &e) == RW_OK && ms == 300000);
    CHECK(rw_parse_duration("100ms", 5, &ms, &e) == RW_OK && ms == 100);
    CHECK(rw_parse_duration("1y2w3d", 6, &ms, &e) == RW_OK &&
          ms == (365LL + 14 + 3) * 86400000);
    CHECK(rw_parse_duration("1m1h", 4, &ms, &e) == RW_BADREQ);
    /* the largest count of milliseconds, and one more (found by fuzz_rules:
       the digit overflowed before the range check) */
    CHECK(rw_parse_duration("9223372036854775807ms", 21, &ms, &e) == RW_OK && ms == INT64_MAX);
    CHECK(rw_parse_duration("9223372036854775808ms", 21, &ms, &e) == RW_BADREQ &&
          strstr(e.msg, "out of range"));
    CHECK(rw_parse_duration("9223372036854775809ms", 21, &ms, &e) == RW_BADREQ);
    CHECK(rw_parse_duration("5", 1, &ms, &e) == RW_BADREQ);
    CHECK(rw_parse_duration("", 0, &ms, &e) == RW_BADREQ);
    CHECK(rw_parse_duration("1.5h", 4, &ms, &e) == RW_BADREQ);
    char b[32];
    rw_format_duration(5400000, b, sizeof b);
    CHECK_STR(b, "1h30m");
    rw_format_duration(0, b, sizeof b);
    CHECK_STR(b, "0s");
    CHECK(rw_parse_api_time("1.5", &ms, &e) == RW_OK && ms == 1500);
    CHECK(rw_parse_api_time("2015-07-01T20:10:51.781Z", &ms, &e) == RW_OK &&
          ms == 1435781451781LL);
    CHECK(rw_parse_api_time("2015-07-01T22:10:51+02:00", &ms, &e) == RW_OK &&
          ms == 1435781451000LL);
    CHECK(rw_parse_api_time("yesterday", &ms, &e) == RW_BADREQ);
    CHECK(rw_parse_api_duration("15s", &ms, &e) == RW_OK && ms == 15000);
    CHECK(rw_parse_api_duration("0.5", &ms, &e) == RW_OK && ms == 500);
    CHECK(rw_parse_api_duration("x", &ms, &e) == RW_BADREQ);
}

static void test_labels(void)
{
    rw_label a[] = {{"__name__", "up"}, {"instance", "x:1"}, {"job", "etcd"}};
    rw_label b[] = {{"__name__", "up"}, {"instance", "x:1"}, {"job", "etcd2"}};
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_labels_hash(a, 3) != rw_labels_hash(b, 3));
    CHECK(rw_labels_hash(a, 3) == rw_labels_hash(a, 3));
    uint32_t lens[] = {8, 2, 8, 3, 3, 4};
    CHECK(rw_labels_hash_lens(a, lens, 3) == rw_labels_hash(a, 3));
    /* the hash places series in shards and must not change: XXH3-64 of
       name \xff value \xff ..., for strings of every length up to 40 */
    {
        static const char src[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
        for (size_t len = 1; len <= 40; len++) {
            char name[48], value[48], key[200];
            memcpy(name, src, len);
            name[len] = '\0';
            memcpy(value, src + 40 - len, len);
            value[len] = '\0';
            rw_label l[] = {{"__name__", value}, {name, "v"}}; /* "a..." sorts after */
            size_t k = 0;
            k += (size_t)sprintf(key + k, "__name__\xff%s\xff%s\xffv\xff", value, name);
            uint32_t ll[] = {8, (uint32_t)len, (uint32_t)len, 1};
            CHECK_MSG(rw_labels_hash(l, 2) == XXH3_64bits(key, k) &&
                      rw_labels_hash_lens(l, ll, 2) == XXH3_64bits(key, k), "length %zu", len);
        }
    }
    CHECK(rw_labels_validate_lens(a, lens, 3, NULL) == RW_OK);
    rw_label nul[] = {{"__name__", "up"}, {"job", "a\0b"}};
    uint32_t nul_lens[] = {8, 2, 3, 3};
    CHECK(rw_labels_validate_lens(nul, nul_lens, 2, &e) == RW_BADREQ && strstr(e.msg, "NUL"));
    CHECK(rw_utf8_valid("0123456789abcdef\xc3\xa9xyz", 21));
    CHECK(!rw_utf8_valid("0123456789abcdef\xc3", 17));
    CHECK(rw_labels_cmp(a, 3, b, 3) < 0);
    CHECK(rw_labels_cmp(a, 2, a, 3) < 0);
    CHECK_STR(rw_labels_get(a, 3, "job"), "etcd");
    CHECK(rw_labels_get(a, 3, "nope") == NULL);
    CHECK(rw_labels_validate(a, 3, &e) == RW_OK);
    rw_label unsorted[] = {{"__name__", "up"}, {"job", "a"}, {"instance", "b"}};
    CHECK(rw_labels_validate(unsorted, 3, &e) == RW_BADREQ && strstr(e.msg, "sorted"));
    rw_label dup[] = {{"__name__", "up"}, {"job", "a"}, {"job", "b"}};
    CHECK(rw_labels_validate(dup, 3, &e) == RW_BADREQ && strstr(e.msg, "duplicate"));
    rw_label noname[] = {{"job", "a"}};
    CHECK(rw_labels_validate(noname, 1, &e) == RW_BADREQ && strstr(e.msg, "__name__"));
    rw_label empty[] = {{"__name__", "up"}, {"job", ""}};
    CHECK(rw_labels_validate(empty, 2, &e) == RW_BADREQ && strstr(e.msg, "empty value"));
    rw_label badutf[] = {{"__name__", "up"}, {"job", "\xc3\x28"}};
    CHECK(rw_labels_validate(badutf, 2, &e) == RW_BADREQ && strstr(e.msg, "UTF-8"));
    /* the checks past the 8-byte words: in the word loop, in the tail, at the edge */
    rw_label longer[] = {{"__name__", "up"}, {"job", "abcdefghij\xc3\xa9"}};
    CHECK(rw_labels_validate(longer, 2, &e) == RW_OK);
    rw_label nul9[] = {{"__name__", "up"}, {"job", "abcdefghi\0kl"}};
    uint32_t nul9_lens[] = {8, 2, 3, 12};
    CHECK(rw_labels_validate_lens(nul9, nul9_lens, 2, &e) == RW_BADREQ && strstr(e.msg, "NUL"));
    rw_label nul7[] = {{"__name__", "up"}, {"job", "abcdefg\0"}};
    uint32_t nul7_lens[] = {8, 2, 3, 8};
    CHECK(rw_labels_validate_lens(nul7, nul7_lens, 2, &e) == RW_BADREQ && strstr(e.msg, "NUL"));
    rw_label bad_tail[] = {{"__name__", "up"}, {"job", "abcdefghij\xc3"}};
    CHECK(rw_labels_validate(bad_tail, 2, &e) == RW_BADREQ && strstr(e.msg, "UTF-8"));
    rw_label bad_word[] = {{"__name__", "up"}, {"job", "abc\xff" "defghijkl"}};
    CHECK(rw_labels_validate(bad_word, 2, &e) == RW_BADREQ && strstr(e.msg, "UTF-8"));
    CHECK(rw_utf8_valid("h\xc3\xa9llo", 6));
    CHECK(!rw_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    CHECK(!rw_utf8_valid("\xc0\xaf", 2));     /* overlong */
    rw_label sub[] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
    const char *only_b[] = {"b"};
    rw_label just_b[] = {{"b", "2"}};
    CHECK(rw_labels_hash_subset(sub, 3, only_b, 1, 1) == rw_labels_hash(just_b, 1));
    rw_label ac[] = {{"a", "1"}, {"c", "3"}};
    CHECK(rw_labels_hash_subset(sub, 3, only_b, 1, 0) == rw_labels_hash(ac, 2));
    char out[128];
    rw_labels_format(a, 3, out, sizeof out);
    CHECK_STR(out, "up{instance=\"x:1\", job=\"etcd\"}");
}

static void test_matchers(void)
{
    rw_matcher m;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "job", "etcd|kube.*", &e) == RW_OK);
    CHECK(rw_matcher_matches(&m, "etcd"));
    CHECK(rw_matcher_matches(&m, "kubelet"));
    CHECK(!rw_matcher_matches(&m, "xetcd"));   /* anchored at start */
    CHECK(!rw_matcher_matches(&m, "etcdx"));   /* anchored at end */
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "a", "foo|bar", &e) == RW_OK);
    CHECK(rw_matcher_matches(&m, "bar") && !rw_matcher_matches(&m, "foobar"));
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_NRE, "a", ".+", &e) == RW_OK);
    CHECK(rw_matcher_matches_empty(&m) && !rw_matcher_matches(&m, "x"));
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "a", "a.b", &e) == RW_OK);
    CHECK(rw_matcher_matches(&m, "a\nb")); /* (?s) as in Prometheus */
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_NEQ, "a", "x", &e) == RW_OK);
    CHECK(rw_matcher_matches(&m, NULL) && !rw_matcher_matches(&m, "x"));
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "a", "(unclosed", &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "invalid regular expression") != NULL);
    /* a regex that cannot decide (match limit) is an error, not "no match" */
    char s[64];
    memset(s, 'a', 40);
    strcpy(s + 40, "b");
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "a", "(a|aa)+", &e) == RW_OK);
    CHECK(rw_matcher_is_regex(&m));
    CHECK(rw_matcher_match(&m, "aaaa", &e) == 1);
    rw_err_init(&e);
    CHECK(rw_matcher_match(&m, s, &e) == -1 && e.code == RW_LIMIT && strstr(e.msg, "limit"));
    CHECK(!rw_matcher_matches(&m, s));
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_NRE, "a", "(a|aa)+", &e) == RW_OK);
    CHECK(rw_matcher_match(&m, s, &e) == -1); /* negation does not turn it into a match */
    CHECK(rw_matcher_match(&m, "x", &e) == 1);
    rw_matcher_free(&m);
    CHECK(rw_matcher_init(&m, RW_MATCH_RE, "a", "etcd|kube", &e) == RW_OK);
    CHECK(!rw_matcher_is_regex(&m)); /* literal alternation: no PCRE2 */
    rw_matcher_free(&m);
}

static void test_arena_buf(void)
{
    rw_arena *a = rw_arena_new(1024, 8192);
    char *s = rw_arena_strdup(a, "hello");
    CHECK_STR(s, "hello");
    void *big = rw_arena_alloc(a, 4000);
    CHECK(big != NULL);
    CHECK(rw_arena_alloc(a, 100000) == NULL); /* over the cap */
    char *p = rw_arena_alloc(a, 10);
    char *q = rw_arena_realloc(a, p, 10, 20);
    CHECK(p == q); /* grown in place */
    rw_arena_reset(a);
    CHECK(rw_arena_alloc(a, 100) != NULL);
    rw_arena_free(a);

    rw_buf b;
    rw_buf_init(&b, 8);
    CHECK(rw_buf_puts(&b, "12345678") == RW_OK);
    CHECK(rw_buf_puts(&b, "9") == RW_LIMIT);
    CHECK(b.failed);
    rw_buf_free(&b);
}

/* rw_bytes_eq and rw_ascii_nonul read words that overlap at the tail: every
 * length up to 40, with one differing (or bad) byte at every position, each
 * range ending at the end of its allocation (ASan sees any read past it). */
static void test_text_bytes(void)
{
    for (size_t n = 0; n <= 40; n++) {
        char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = (char)('a' + i % 26);
        CHECK(rw_bytes_eq(a, b, n));
        CHECK(rw_ascii_nonul(a, n));
        for (size_t i = 0; i < n; i++) {
            b[i] = 'Z';
            CHECK(!rw_bytes_eq(a, b, n));
            CHECK(rw_bytes_eq(a, b, i)); /* the prefix before it */
            b[i] = a[i];
            a[i] = '\0';
            CHECK(!rw_ascii_nonul(a, n));
            a[i] = (char)0xc3;
            CHECK(!rw_ascii_nonul(a, n));
            a[i] = b[i];
        }
        free(a);
        free(b);
    }
}

int main(void)
{
    RUN(test_float_format);
    RUN(test_float_shortest);
    RUN(test_json_point);
    RUN(test_durations);
    RUN(test_labels);
    RUN(test_matchers);
    RUN(test_arena_buf);
    RUN(test_text_bytes);
    TEST_DONE();
}
