/* test_core_regex.c - unit tests of core/regex.c: full anchoring as
 * Prometheus anchors ("^(?s:" src ")$"), RE2 syntax accepted and PCRE-only
 * syntax rejected, the escapes that mean something else in PCRE2, captures
 * and Go's Regexp.Expand template rules. */
#include <stdlib.h>
#include "core/regex.h"
#include "test.h"

static int m(const char *re_src, const char *s)
{
    rw_err e;
    rw_err_init(&e);
    rw_regex *re = rw_regex_compile(re_src, &e);
    if (!re) {
        fprintf(stderr, "compile %s: %s\n", re_src, e.msg);
        return -2;
    }
    rw_regex_md *md = rw_regex_md_new(rw_regex_ngroups(re));
    int r = rw_regex_match(re, md, s, strlen(s), &e);
    rw_regex_md_free(md);
    rw_regex_free(re);
    return r;
}

static int compiles(const char *src)
{
    rw_err e;
    rw_err_init(&e);
    rw_regex *re = rw_regex_compile(src, &e);
    rw_regex_free(re);
    return re != NULL;
}

static void test_anchoring(void)
{
    CHECK_INT(m("foo", "foo"), 1);
    CHECK_INT(m("foo", "foobar"), 0);
    CHECK_INT(m("foo", "xfoo"), 0);
    CHECK_INT(m("fo+", "fooo"), 1);
    CHECK_INT(m("a|ab", "ab"), 1);        /* the anchor applies to the whole alternation */
    CHECK_INT(m("a|b", "ab"), 0);
    CHECK_INT(m(".*", "anything\nat all"), 1);
    CHECK_INT(m("a.c", "a\nc"), 1);       /* (?s): '.' matches a newline */
    CHECK_INT(m("foo$", "foo\n"), 0);     /* RE2 '$' is end of text */
    CHECK_INT(m("(?m)foo$\\n", "foo\n"), 1);
    CHECK_INT(m("", ""), 1);
    CHECK_INT(m("", "x"), 0);
    CHECK_INT(m(".+", ""), 0);
    CHECK_INT(m("(.*)", ""), 1);
    CHECK_INT(m("(?i)FOO", "fOo"), 1);
    CHECK_INT(m("(?i)straße", "STRASSE"), 0); /* simple case folding only, as Go */
    CHECK_INT(m("(?i)ÄÖ", "äö"), 1);
    CHECK_INT(m("gz-.*", "gz-prod-0001"), 1);
    CHECK_INT(m("\\d+", "123"), 1);
    CHECK_INT(m("\\d+", "١٢٣"), 0);       /* \d is ASCII in RE2 */
    CHECK_INT(m("\\pL+", "héllo"), 1);
    CHECK_INT(m("\\p{Greek}+", "αβγ"), 1);
    CHECK_INT(m("[[:alpha:]]+", "abc"), 1);
    CHECK_INT(m("[]a]+", "]a]"), 1);
    CHECK_INT(m("[^]a]", "b"), 1);
    CHECK_INT(m("a{2,3}", "aaa"), 1);
    CHECK_INT(m("a{2,3}", "aaaa"), 0);
    CHECK_INT(m("a{", "a{"), 1);          /* not a repeat: literal */
    CHECK_INT(m("a{,3}", "a{,3}"), 1);
    CHECK_INT(m("x}", "x}"), 1);
    CHECK_INT(m("\\Qa.b\\E", "a.b"), 1);
    CHECK_INT(m("\\Qa.b\\E", "axb"), 0);
    CHECK_INT(m("\\Qa.b", "a.b"), 1);
    CHECK_INT(m("\\v", "\v"), 1);         /* RE2: a vertical tab, not a class */
    CHECK_INT(m("\\v", "\n"), 0);
    CHECK_INT(m("\\s", "\v"), 0);         /* RE2's \s has no vertical tab */
    CHECK_INT(m("\\s+", " \t\n\r\f"), 1);
    CHECK_INT(m("\\S", "\v"), 1);
    CHECK_INT(m("[\\s]", "\v"), 0);
    CHECK_INT(m("\\101", "A"), 1);        /* octal */
    CHECK_INT(m("\\0", "\0") , 0);        /* strlen stops at NUL: empty subject */
    CHECK_INT(m("\\x41\\x{42}", "AB"), 1);
    CHECK_INT(m("a*?b", "aab"), 1);
    CHECK_INT(m("a??", ""), 1);
    CHECK_INT(m("(?P<x>a)(?<y>b)", "ab"), 1);
    CHECK_INT(m("\\.", "."), 1);
    CHECK_INT(m("(?U)a+", "aaa"), 1);
    CHECK_INT(m("\\z", ""), 1);
}

static void test_rejects(void)
{
    const char *bad[] = {
        "(", ")(", "a)|(b", "(a", "[a", "a**", "a*+", "a++", "a?+", "a{2}{3}", "a{2}*", "*a", "|*",
        "a{1001}", "a{2,1}", "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(?>a)", "(a)\\1",
        "\\8", "(?P=x)", "(?P>x)", "(?R)", "(?1)", "(?#c)", "(?(1)a|b)", "(*ACCEPT)",
        "(?x)a b", "(?J)a", "\\K", "\\R", "\\X", "\\h", "\\H", "\\V", "\\N", "\\e", "\\G",
        "\\Z", "\\C", "\\E", "\\g1", "\\k<x>", "\\c", "[\\b]", "\\", "a???", "\\xg", "\\p",
        "(?<>a)", "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!compiles(bad[i]), "accepted %s", bad[i]);
    const char *good[] = {
        "a", "(a)(b)", "(?:a|b)*", "(?i:a)", "(?i-s:a.)", "a{0}", "a{1000}", "a{3,}", "[a-z0-9_]+",
        "[[:^digit:]]", "\\$", "\\-", "\\ ", "\\pN", "\\PL", "\\p{^Greek}", "^a", "a$", "\\bfoo\\b",
        "\\Aa\\z", "(?s).", "(?m)^a$", "[\\d\\w]", ".*", "(.*)", ".+", "",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(compiles(good[i]), "rejected %s", good[i]);
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_regex_compile("ab(?=c)", &e) == NULL);
    CHECK(e.code == RW_BADREQ);
    CHECK(strstr(e.msg, "ab(?=c)") != NULL);
    CHECK_INT(e.pos, 2);
}

static void test_groups_expand(void)
{
    rw_err e;
    rw_err_init(&e);
    rw_regex *re = rw_regex_compile("(?P<host>[^:]+):(\\d+)", &e);
    CHECK(re != NULL);
    CHECK_INT(rw_regex_ngroups(re), 2);
    CHECK_INT(rw_regex_group_number(re, "host", 4), 1);
    CHECK_INT(rw_regex_group_number(re, "nope", 4), -1);
    rw_regex_md *md = rw_regex_md_new(2);
    const char *s = "10.0.0.1:9100";
    CHECK_INT(rw_regex_match(re, md, s, strlen(s), &e), 1);
    size_t a, b;
    CHECK(rw_regex_group(md, 2, &a, &b) && a == 9 && b == 13);
    struct { const char *tmpl, *want; } cases[] = {
        {"$1", "10.0.0.1"},
        {"${1}", "10.0.0.1"},
        {"$host", "10.0.0.1"},
        {"${host}-$2", "10.0.0.1-9100"},
        {"$1x", ""},             /* the group named "1x": none */
        {"${1}x", "10.0.0.1x"},
        {"$$1", "$1"},
        {"$", "$"},
        {"a$", "a$"},
        {"${1", "${1"},          /* malformed: literal */
        {"$-1", "$-1"},
        {"$3", ""},              /* beyond the groups */
        {"$01", ""},             /* leading zero: a name, not a number */
        {"$0", "10.0.0.1:9100"},
        {"literal", "literal"},
        {"${host}é$2", "10.0.0.1é9100"},
        {"$hosté", ""},          /* é is a letter: part of the name */
    };
    rw_buf out;
    rw_buf_init(&out, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rw_buf_reset(&out);
        CHECK(rw_regex_expand(re, md, cases[i].tmpl, strlen(cases[i].tmpl), s, &out) == RW_OK);
        CHECK_STR(out.p ? out.p : "", cases[i].want);
    }
    /* an optional group that did not take part expands to nothing */
    rw_regex *re2 = rw_regex_compile("(a)|(b)", &e);
    CHECK_INT(rw_regex_match(re2, md, "b", 1, &e), 1);
    CHECK(!rw_regex_group(md, 1, &a, &b));
    rw_buf_reset(&out);
    rw_regex_expand(re2, md, "[$1][$2]", 8, "b", &out);
    CHECK_STR(out.p, "[][b]");
    /* the fast path for (.*) has its group */
    rw_regex *all = rw_regex_compile("(.*)", &e);
    CHECK(rw_regex_is_match_all(all));
    CHECK_INT(rw_regex_match(all, md, "xyz", 3, &e), 1);
    rw_buf_reset(&out);
    rw_regex_expand(all, md, "<$1>", 4, "xyz", &out);
    CHECK_STR(out.p, "<xyz>");
    rw_buf_free(&out);
    rw_regex_free(all);
    rw_regex_free(re2);
    rw_regex_free(re);
    rw_regex_md_free(md);
}

static void test_limits(void)
{
    /* catastrophic backtracking fails with an error, never a silent "no" */
    rw_err e;
    rw_err_init(&e);
    rw_regex *re = rw_regex_compile("(a|aa)*c", &e);
    CHECK(re != NULL);
    rw_regex_md *md = rw_regex_md_new(rw_regex_ngroups(re));
    char s[200];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    int r = rw_regex_match(re, md, s, strlen(s), &e);
    CHECK(r == -1 || r == 0);
    if (r == -1)
        CHECK(e.code == RW_LIMIT);
    /* invalid UTF-8 subject: an error */
    rw_regex *re2 = rw_regex_compile("a.b", &e);
    rw_err_init(&e);
    CHECK_INT(rw_regex_match(re2, md, "a\xffz", 3, &e), -1);
    rw_regex_free(re2);
    rw_regex_free(re);
    rw_regex_md_free(md);
}

int main(void)
{
    RUN(test_anchoring);
    RUN(test_rejects);
    RUN(test_groups_expand);
    RUN(test_limits);
    TEST_DONE();
}
