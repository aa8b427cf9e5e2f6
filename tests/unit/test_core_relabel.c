/* test_core_relabel.c - unit tests of core/relabel.c: every action with the
 * behaviour Prometheus documents for relabel_config (defaults, anchoring,
 * group expansion, removal by empty value, hashmod's MD5, labelmap's order),
 * per-action validation, and the invalid results the write path drops. */
#include <stdarg.h>
#include <stdlib.h>
#include "core/arena.h"
#include "core/regex.h"
#include "core/relabel.h"
#include "test.h"

/* A rule written as in YAML; NULL fields take Prometheus' defaults. */
typedef struct spec {
    const char *action;
    const char *src[4];
    const char *sep, *regex, *target, *repl;
    int64_t modulus;
} spec;

static int action_of(const char *name)
{
    for (int i = 0; rw_relabel_action_names[i]; i++)
        if (!strcmp(rw_relabel_action_names[i], name))
            return i;
    return -1;
}

/* Builds and validates a rule; returns RW_OK or the error in err. */
static rw_rc mk(rw_relabel_config *c, const spec *s, rw_err *err)
{
    memset(c, 0, sizeof *c);
    size_t n = 0;
    while (n < 4 && s->src[n])
        n++;
    c->source_labels.v = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c->source_labels.v[i] = strdup(s->src[i]);
    c->source_labels.n = n;
    c->separator = strdup(s->sep ? s->sep : ";");
    c->regex.src = strdup(s->regex ? s->regex : "(.*)");
    c->regex.re = rw_regex_compile(c->regex.src, err);
    if (!c->regex.re)
        return RW_BADREQ;
    c->modulus = s->modulus;
    c->target_label = strdup(s->target ? s->target : "");
    c->replacement = strdup(s->repl ? s->repl : "$1");
    c->action = action_of(s->action ? s->action : "replace");
    return rw_relabel_config_validate(c, err);
}

static void rule_free(rw_relabel_config *c)
{
    for (size_t i = 0; i < c->source_labels.n; i++)
        free(c->source_labels.v[i]);
    free(c->source_labels.v);
    free(c->separator);
    free(c->regex.src);
    rw_regex_free(c->regex.re);
    free(c->target_label);
    free(c->replacement);
}

/* "a=1,b=2" -> sorted labels in the arena */
static size_t parse_labels(rw_arena *a, const char *text, rw_label *out)
{
    size_t n = 0;
    char *dup = rw_arena_strdup(a, text);
    for (char *tok = strtok(dup, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        out[n].name = tok;
        out[n].value = eq + 1;
        n++;
    }
    rw_labels_sort(out, n);
    return n;
}

static const char *fmt(rw_arena *a, const rw_labels *l)
{
    char *b = rw_arena_alloc(a, 4096);
    size_t o = 0;
    b[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        o += (size_t)snprintf(b + o, 4096 - o, "%s%s=%s", i ? "," : "", l->v[i].name, l->v[i].value);
    return b;
}

/* Runs rules over `in`; returns the result and writes the labels as text. */
static rw_relabel_result run(const spec *specs, size_t n, unsigned flags, const char *in,
                             const char **out_text)
{
    static rw_arena *a;
    if (!a)
        a = rw_arena_new(0, 0);
    rw_relabel_config rules[8];
    rw_err err;
    rw_err_init(&err);
    for (size_t i = 0; i < n; i++) {
        rw_rc rc = mk(&rules[i], &specs[i], &err);
        CHECK_MSG(rc == RW_OK, "rule %zu: %s", i, err.msg);
    }
    rw_label lin[32];
    size_t nin = parse_labels(a, in, lin);
    rw_relabel_state *st = rw_relabel_state_new();
    rw_labels out;
    rw_relabel_result r = rw_relabel_apply(st, rules, n, flags, a, lin, nin, &out, &err);
    *out_text = fmt(a, &out);
    rw_relabel_state_free(st);
    for (size_t i = 0; i < n; i++)
        rule_free(&rules[i]);
    return r;
}

#define EXPECT(specs, in, want)                                                    \
    do {                                                                           \
        const char *got;                                                           \
        rw_relabel_result r = run(specs, sizeof specs / sizeof specs[0], 0, in, &got); \
        CHECK_INT(r, RW_RELABEL_KEPT);                                             \
        CHECK_STR(got, want);                                                      \
    } while (0)

#define EXPECT_DROP(specs, in)                                                     \
    do {                                                                           \
        const char *got;                                                           \
        CHECK_INT(run(specs, sizeof specs / sizeof specs[0], 0, in, &got), RW_RELABEL_DROPPED); \
    } while (0)

static void test_replace(void)
{
    spec groups[] = {{.src = {"cluster"}, .regex = "([a-z]+)-(.*)", .target = "region"}};
    EXPECT(groups, "cluster=gz-prod-0001", "cluster=gz-prod-0001,region=gz");
    spec tmpl[] = {{.src = {"cluster"}, .regex = "([a-z]+)-(?P<env>[a-z]+)-.*",
                    .target = "where", .repl = "${1}/$env/${1}x$$"}};
    EXPECT(tmpl, "cluster=gz-prod-0001", "cluster=gz-prod-0001,where=gz/prod/gzx$");
    /* several sources joined with the separator; an absent one is empty */
    spec join[] = {{.src = {"a", "missing", "b"}, .regex = "(.*);;(.*)", .target = "c",
                    .repl = "$2-$1"}};
    EXPECT(join, "a=x,b=y", "a=x,b=y,c=y-x");
    spec sep[] = {{.src = {"a", "b"}, .sep = "", .target = "c"}};
    EXPECT(sep, "a=x,b=y", "a=x,b=y,c=xy");
    /* anchored: a partial match is no match, and no replacement happens */
    spec nomatch[] = {{.src = {"a"}, .regex = "oo", .target = "b", .repl = "bar"}};
    EXPECT(nomatch, "a=foo", "a=foo");
    /* an empty result removes the target */
    spec empty[] = {{.src = {"a"}, .regex = "foo(.*)", .target = "a"}};
    EXPECT(empty, "a=foo,z=1", "z=1");
    /* the rule `{target_label: foo}`: "" matches (.*), $1 is "", foo goes */
    spec del[] = {{.target = "foo"}};
    EXPECT(del, "foo=bar,z=1", "z=1");
    /* a constant: added whatever the (absent) source says */
    spec konst[] = {{.target = "env", .repl = "prod"}};
    EXPECT(konst, "z=1", "env=prod,z=1");
    /* target names from groups; an empty expanded name is skipped */
    spec dyn[] = {{.src = {"a"}, .regex = "([^-]+)-(.*)", .target = "${1}", .repl = "$2"}};
    EXPECT(dyn, "a=name-value", "a=name-value,name=value");
    spec dyn_bad[] = {{.src = {"a"}, .regex = "([^-]*)-(.*)", .target = "${1}", .repl = "$2"}};
    EXPECT(dyn_bad, "a=-value", "a=-value");
    /* a later rule sees what an earlier one set; chained rewrites */
    spec chain[] = {
        {.src = {"a", "b"}, .regex = "f(.*);(.*)r", .target = "a", .repl = "b${1}${2}m"},
        {.src = {"c", "a"}, .regex = "(b).*b(.*)ba(.*)", .target = "d", .repl = "$1$2$2$3"},
    };
    EXPECT(chain, "a=foo,b=bar,c=baz", "a=boobam,b=bar,c=baz,d=boooom");
    /* dot matches newlines (?s) */
    spec nl[] = {{.src = {"a"}, .regex = "x.y", .target = "b", .repl = "ok"}};
    EXPECT(nl, "a=x\ny", "a=x\ny,b=ok");
    /* a label removed by one rule and set again by the next, then kept */
    spec readd[] = {
        {.action = "labeldrop", .regex = "port_name"},
        {.src = {"ann_port"}, .regex = "(.+)", .target = "port_name", .repl = "metrics"},
        {.action = "keep", .src = {"port_name"}, .regex = "metrics"},
    };
    EXPECT(readd, "ann_port=9091,port_name=foo", "ann_port=9091,port_name=metrics");
}

static void test_keep_drop(void)
{
    spec drop[] = {{.action = "drop", .src = {"a"}, .regex = ".*o.*"}};
    EXPECT_DROP(drop, "a=foo,b=bar");
    spec drop_partial[] = {{.action = "drop", .src = {"a"}, .regex = "f|o"}};
    EXPECT(drop_partial, "a=foo", "a=foo");
    spec keep_no[] = {{.action = "keep", .src = {"a"}, .regex = "no-match"}};
    EXPECT_DROP(keep_no, "a=foo");
    spec keep_yes[] = {{.action = "keep", .src = {"a"}, .regex = "f.*"}};
    EXPECT(keep_yes, "a=foo", "a=foo");
    /* keep on an absent label: matched as "" */
    spec keep_absent[] = {{.action = "keep", .src = {"zz"}, .regex = ".+"}};
    EXPECT_DROP(keep_absent, "a=foo");
    /* the first dropping rule ends processing, the index is reported */
    spec seq[] = {
        {.src = {"a"}, .regex = "f(.*)", .target = "d", .repl = "x"},
        {.action = "drop", .src = {"d"}, .regex = "x"},
        {.target = "never", .repl = "y"},
    };
    rw_arena *a = rw_arena_new(0, 0);
    rw_relabel_config rules[3];
    rw_err err;
    rw_err_init(&err);
    for (int i = 0; i < 3; i++)
        CHECK(mk(&rules[i], &seq[i], &err) == RW_OK);
    rw_label in[1] = {{"a", "foo"}};
    rw_labels out;
    rw_relabel_state *st = rw_relabel_state_new();
    CHECK_INT(rw_relabel_apply(st, rules, 3, 0, a, in, 1, &out, &err), RW_RELABEL_DROPPED);
    CHECK_INT(rw_relabel_state_rule(st), 1);
    /* untouched series: the input array itself comes back */
    spec none_s = {.action = "keep", .src = {"a"}, .regex = "foo"};
    rw_relabel_config none;
    CHECK(mk(&none, &none_s, &err) == RW_OK);
    CHECK_INT(rw_relabel_apply(st, &none, 1, 0, a, in, 1, &out, &err), RW_RELABEL_KEPT);
    CHECK(out.v == in && out.n == 1);
    CHECK_INT(rw_relabel_state_rule(st), -1);
    rule_free(&none);
    for (int i = 0; i < 3; i++)
        rule_free(&rules[i]);
    rw_relabel_state_free(st);
    rw_arena_free(a);
}

static void test_equal(void)
{
    spec keq[] = {{.action = "keepequal", .src = {"tmp_port"}, .target = "port1"}};
    EXPECT(keq, "port1=1234,port2=5678,tmp_port=1234", "port1=1234,port2=5678,tmp_port=1234");
    spec keq2[] = {{.action = "keepequal", .src = {"tmp_port"}, .target = "port2"}};
    EXPECT_DROP(keq2, "port1=1234,port2=5678,tmp_port=1234");
    spec deq[] = {{.action = "dropequal", .src = {"tmp_port"}, .target = "port1"}};
    EXPECT_DROP(deq, "port1=1234,port2=5678,tmp_port=1234");
    spec deq2[] = {{.action = "dropequal", .src = {"tmp_port"}, .target = "port2"}};
    EXPECT(deq2, "port1=1234,port2=5678,tmp_port=1234", "port1=1234,port2=5678,tmp_port=1234");
    /* two absent labels are equal ("" == "") */
    spec deq3[] = {{.action = "dropequal", .src = {"x"}, .target = "y"}};
    EXPECT_DROP(deq3, "a=1");
}

static void test_hashmod(void)
{
    /* MD5, last 8 bytes big-endian, mod the modulus (values from Python's
       hashlib, the same digest Go's crypto/md5 computes) */
    spec h[] = {{.action = "hashmod", .src = {"c"}, .target = "d", .modulus = 1000}};
    EXPECT(h, "a=foo,c=baz", "a=foo,c=baz,d=976");
    EXPECT(h, "c=foo\nbar", "c=foo\nbar,d=734");
    EXPECT(h, "a=1", "a=1,d=958"); /* md5("") */
    spec h2[] = {{.action = "hashmod", .src = {"cluster", "instance"}, .target = "shard",
                  .modulus = 7}};
    EXPECT(h2, "cluster=gz-prod-0001,instance=10.0.0.1:9100",
           "cluster=gz-prod-0001,instance=10.0.0.1:9100,shard=5");
    spec h3[] = {{.action = "hashmod", .src = {"v"}, .target = "d",
                  .modulus = 9223372036854775807LL}};
    EXPECT(h3, "v=é", "d=8573598707969935216,v=é");
}

static void test_labelmap(void)
{
    spec m1[] = {{.action = "labelmap", .regex = "(b.*)", .repl = "bar_${1}"}};
    EXPECT(m1, "a=foo,b1=bar,b2=baz", "a=foo,b1=bar,b2=baz,bar_b1=bar,bar_b2=baz");
    spec m2[] = {{.action = "labelmap", .regex = "__meta_(my.*)"}};
    EXPECT(m2, "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo",
           "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo,my_bar=aaa,my_baz=bbb");
    /* two labels onto one name: the later in Range order (sorted base) wins */
    spec m3[] = {{.action = "labelmap", .regex = "[ab]_(1)", .repl = "z$1"}};
    EXPECT(m3, "a_1=A,b_1=B", "a_1=A,b_1=B,z1=B");
    /* an existing label is overwritten */
    spec m4[] = {{.action = "labelmap", .regex = "tmp_(.*)"}};
    EXPECT(m4, "job=old,tmp_job=new", "job=new,tmp_job=new");
}

/* Set again after a removal, a label moves to the end of Range's order (as
 * Builder.Del then Builder.Set): with y_1 set before x_1 the later, x_1,
 * wins the labelmap onto z1. `pad` extra labels are set first so that the
 * same holds past the size where the added labels get a hash index. */
static void check_readd_order(size_t pad)
{
    spec s[16 + 6];
    char names[16][8];
    size_t n = 0;
    for (size_t i = 0; i < pad && i < 16; i++, n++) {
        snprintf(names[i], sizeof names[i], "p%02zu", i);
        s[n] = (spec){.action = "replace", .target = names[i], .repl = "pad"};
    }
    s[n++] = (spec){.action = "replace", .target = "x_1", .repl = "X"};
    s[n++] = (spec){.action = "replace", .target = "y_1", .repl = "Y"};
    s[n++] = (spec){.action = "labeldrop", .regex = "x_1"};
    s[n++] = (spec){.action = "replace", .target = "x_1", .repl = "X2"};
    s[n++] = (spec){.action = "labelmap", .regex = "[xy]_(1)", .repl = "z$1"};
    s[n++] = (spec){.action = "labeldrop", .regex = "p.*"};
    rw_relabel_config rules[sizeof s / sizeof s[0]];
    rw_err err;
    rw_err_init(&err);
    for (size_t i = 0; i < n; i++)
        CHECK(mk(&rules[i], &s[i], &err) == RW_OK);
    rw_arena *a = rw_arena_new(0, 0);
    rw_label lin[1];
    size_t nin = parse_labels(a, "a=b", lin);
    rw_relabel_state *st = rw_relabel_state_new();
    rw_labels out;
    CHECK_INT(rw_relabel_apply(st, rules, n, 0, a, lin, nin, &out, &err), RW_RELABEL_KEPT);
    CHECK_MSG(!strcmp(fmt(a, &out), "a=b,x_1=X2,y_1=Y,z1=X2"), "pad %zu: %s", pad, fmt(a, &out));
    rw_relabel_state_free(st);
    rw_arena_free(a);
    for (size_t i = 0; i < n; i++)
        rule_free(&rules[i]);
}

/* A labelmap over a wide series adds thousands of labels (the limit per
 * series can be raised to 65535): every one is found, overwritten, removed
 * and set again by name, and the result is sorted - checked against the
 * labels computed here. */
static void test_many_added(void)
{
    check_readd_order(0);
    check_readd_order(12);
    enum { N = 3000 };
    rw_arena *a = rw_arena_new(0, 0);
    rw_label *lin = calloc(2 * N, sizeof *lin);
    for (size_t i = 0; i < N; i++) { /* a_0000..: sorted, then b_0000.. */
        lin[i].name = rw_arena_sprintf(a, "a_%04zu", i);
        lin[i].value = rw_arena_sprintf(a, "A%zu", i);
        lin[N + i].name = rw_arena_sprintf(a, "b_%04zu", i);
        lin[N + i].value = rw_arena_sprintf(a, "B%zu", i);
    }
    spec s[] = {
        /* a_i and b_i both onto m_i: b_i, later in Range order, wins */
        {.action = "labelmap", .regex = "[ab]_(.*)", .repl = "m_$1"},
        {.action = "labeldrop", .regex = "[ab]_.*"},
        /* removes a tenth of the added labels, then sets one of them again */
        {.action = "labeldrop", .regex = "m_...0"},
        {.action = "replace", .target = "m_1230", .repl = "again"},
        /* overwrites an added label in place */
        {.action = "replace", .target = "m_2999", .repl = "last"},
    };
    size_t n = sizeof s / sizeof s[0];
    rw_relabel_config rules[sizeof s / sizeof s[0]];
    rw_err err;
    rw_err_init(&err);
    for (size_t i = 0; i < n; i++)
        CHECK(mk(&rules[i], &s[i], &err) == RW_OK);
    rw_relabel_state *st = rw_relabel_state_new();
    for (int round = 0; round < 2; round++) { /* the state's scratch is reused */
        rw_labels out;
        CHECK_INT(rw_relabel_apply(st, rules, n, 0, a, lin, 2 * N, &out, &err), RW_RELABEL_KEPT);
        size_t k = 0, bad = 0;
        for (size_t i = 0; i < N; i++) {
            const char *want = i == 1230 ? "again" : i == 2999 ? "last" : i % 10 == 0 ? NULL
                             : rw_arena_sprintf(a, "B%zu", i);
            if (!want)
                continue;
            char name[16];
            snprintf(name, sizeof name, "m_%04zu", i);
            if (k >= out.n || strcmp(out.v[k].name, name) || strcmp(out.v[k].value, want))
                bad++;
            k++;
        }
        CHECK_INT(bad, 0);
        CHECK_INT(out.n, k);
    }
    rw_relabel_state_free(st);
    for (size_t i = 0; i < n; i++)
        rule_free(&rules[i]);
    free(lin);
    rw_arena_free(a);
}

static void test_labeldrop_keep(void)
{
    spec kp[] = {{.action = "labelkeep", .regex = "(b.*)"}};
    EXPECT(kp, "a=foo,b1=bar,b2=baz", "b1=bar,b2=baz");
    spec dr[] = {{.action = "labeldrop", .regex = "(b.*)"}};
    EXPECT(dr, "a=foo,b1=bar,b2=baz", "a=foo");
    /* names are matched whole */
    spec dr2[] = {{.action = "labeldrop", .regex = "b"}};
    EXPECT(dr2, "a=foo,b1=bar,b=baz", "a=foo,b1=bar");
    spec dr3[] = {{.action = "labeldrop", .regex = "pod|service|endpoint|namespace"}};
    EXPECT(dr3, "__name__=up,endpoint=http,job=ksm,namespace=kube-system,pod=x,service=ksm",
           "__name__=up,job=ksm");
}

static void test_case(void)
{
    spec c[] = {
        {.action = "uppercase", .src = {"foo"}, .target = "foo_uppercase"},
        {.action = "lowercase", .src = {"foo"}, .target = "foo_lowercase"},
    };
    EXPECT(c, "foo=bAr123Foo", "foo=bAr123Foo,foo_lowercase=bar123foo,foo_uppercase=BAR123FOO");
    EXPECT(c, "foo=ÄöÜ-straße", "foo=ÄöÜ-straße,foo_lowercase=äöü-straße,foo_uppercase=ÄÖÜ-STRAßE");
    /* an empty value removes the target */
    spec c2[] = {{.action = "lowercase", .src = {"missing"}, .target = "foo"}};
    EXPECT(c2, "foo=X,z=1", "z=1");
}

static void test_invalid_results(void)
{
    const char *got;
    spec keep_name[] = {{.action = "labelkeep", .regex = "job"}};
    CHECK_INT(run(keep_name, 1, RW_RELABEL_REQUIRE_NAME, "__name__=up,job=x", &got),
              RW_RELABEL_INVALID);
    CHECK_STR(got, "job=x");
    CHECK_INT(run(keep_name, 1, 0, "__name__=up,job=x", &got), RW_RELABEL_KEPT);
    /* labelmap onto an empty name: reported, never passed on as valid */
    spec empty_name[] = {{.action = "labelmap", .regex = "(a)(b?)", .repl = "$2"}};
    CHECK_INT(run(empty_name, 1, 0, "__name__=up,a=1", &got), RW_RELABEL_INVALID);
    spec name_gone[] = {{.src = {"x"}, .target = "__name__"}};
    CHECK_INT(run(name_gone, 1, RW_RELABEL_REQUIRE_NAME, "__name__=up,a=1", &got),
              RW_RELABEL_INVALID);
}

static void expect_invalid(const spec *s, const char *want)
{
    rw_relabel_config c;
    rw_err err;
    rw_err_init(&err);
    rw_rc rc = mk(&c, s, &err);
    CHECK_MSG(rc != RW_OK && strstr(err.msg, want), "want error containing \"%s\", got \"%s\"",
              want, rc == RW_OK ? "(ok)" : err.msg);
    rule_free(&c);
}

static void test_validate(void)
{
    expect_invalid(&(spec){.action = "replace"}, "requires 'target_label' value");
    expect_invalid(&(spec){.action = "lowercase"}, "requires 'target_label' value");
    expect_invalid(&(spec){.action = "hashmod", .target = "x"}, "requires non-zero modulus");
    expect_invalid(&(spec){.action = "hashmod", .modulus = 3}, "requires 'target_label'");
    expect_invalid(&(spec){.action = "keepequal", .src = {"a"}}, "requires 'target_label'");
    expect_invalid(&(spec){.action = "uppercase", .target = "x", .repl = "y"},
                   "'replacement' can not be set for uppercase action");
    expect_invalid(&(spec){.action = "dropequal", .src = {"a"}, .target = "b", .regex = "x"},
                   "dropequal action requires only 'source_labels' and `target_label`");
    expect_invalid(&(spec){.action = "keepequal", .src = {"a"}, .target = "b", .sep = ","},
                   "requires only 'source_labels'");
    expect_invalid(&(spec){.action = "labeldrop", .src = {"a"}, .regex = "x"},
                   "labeldrop action requires only 'regex', and no other fields");
    expect_invalid(&(spec){.action = "labelkeep", .regex = "x", .target = "y"},
                   "requires only 'regex'");
    expect_invalid(&(spec){.action = "labelmap", .regex = "x", .repl = ""},
                   "is invalid 'replacement' for labelmap action");
    expect_invalid(&(spec){.target = "bad\xff"}, "is invalid 'target_label' for replace action");
    expect_invalid(&(spec){.src = {""}, .target = "x"}, "source_labels");
    expect_invalid(&(spec){.regex = "a(?=b)", .target = "x"}, "invalid regular expression");
    /* valid: with UTF-8 names, any non-empty target, with or without $ */
    rw_relabel_config c;
    rw_err err;
    rw_err_init(&err);
    CHECK(mk(&c, &(spec){.target = "${1}_x", .src = {"a"}}, &err) == RW_OK);
    rule_free(&c);
    CHECK(mk(&c, &(spec){.action = "hashmod", .target = "s", .modulus = 2, .src = {"a"}}, &err) ==
          RW_OK);
    rule_free(&c);
}

/* Rules as a YAML list through the cfg table, the way the ingest and rules
 * layers embed them. */
typedef struct holder {
    rw_cfg_list rules;
} holder;
static const rw_cfg_key holder_keys[] = {
    {"write_relabel_configs", RW_CFG_LIST, offsetof(holder, rules), NULL, 0, 0, RW_CFG_RELOAD, "",
     &rw_relabel_config_table, NULL},
};
static const rw_cfg_table holder_table = RW_CFG_TABLE("test", holder, holder_keys, NULL, NULL);

static rw_rc load(holder *h, const char *yaml, rw_err *err)
{
    rw_cfg_defaults(&holder_table, h);
    return rw_cfg_load_string(&holder_table, h, yaml, strlen(yaml), "t.yml", err);
}

static void test_yaml(void)
{
    holder h;
    rw_err err;
    rw_err_init(&err);
    const char *y = "write_relabel_configs:\n"
                    "  - {source_labels: [cluster], regex: 'gz-.*', target_label: region, "
                    "replacement: gz}\n"
                    "  - action: labeldrop\n"
                    "    regex: tmp_.*\n"
                    "  - source_labels: [__name__]\n"
                    "    regex: go_.*\n"
                    "    action: drop\n";
    CHECK_MSG(load(&h, y, &err) == RW_OK, "%s", err.msg);
    CHECK_INT(h.rules.n, 3);
    rw_relabel_config *r = h.rules.v;
    CHECK_INT(r[0].action, RW_RELABEL_REPLACE);
    CHECK_STR(r[0].separator, ";");
    CHECK_STR(r[1].replacement, "$1");
    CHECK_STR(r[1].regex.src, "tmp_.*");
    rw_arena *a = rw_arena_new(0, 0);
    rw_relabel_state *st = rw_relabel_state_new();
    rw_label in[] = {{"__name__", "up"}, {"cluster", "gz-prod-0001"}, {"tmp_x", "1"}};
    rw_labels out;
    CHECK_INT(rw_relabel_apply(st, r, h.rules.n, RW_RELABEL_REQUIRE_NAME, a, in, 3, &out, &err),
              RW_RELABEL_KEPT);
    CHECK_STR(fmt(a, &out), "__name__=up,cluster=gz-prod-0001,region=gz");
    rw_label go[] = {{"__name__", "go_goroutines"}};
    CHECK_INT(rw_relabel_apply(st, r, h.rules.n, 0, a, go, 1, &out, &err), RW_RELABEL_DROPPED);
    CHECK_INT(rw_relabel_state_rule(st), 2);
    rw_relabel_state_free(st);
    rw_arena_free(a);
    rw_cfg_free(&holder_table, &h);

    /* errors name the file, line and rule */
    rw_err_init(&err);
    CHECK(load(&h, "write_relabel_configs:\n  - {target_label: a}\n  - {action: hashmod, "
                   "target_label: s}\n", &err) != RW_OK);
    CHECK_MSG(strstr(err.msg, "write_relabel_configs[1]") &&
                  strstr(err.msg, "requires non-zero modulus") && strstr(err.msg, "t.yml:3"),
              "%s", err.msg);
    rw_cfg_free(&holder_table, &h);
    rw_err_init(&err);
    CHECK(load(&h, "write_relabel_configs:\n  - {action: repalce, target_label: a}\n", &err) !=
          RW_OK);
    CHECK_MSG(strstr(err.msg, "repalce") != NULL, "%s", err.msg);
    rw_cfg_free(&holder_table, &h);
    rw_err_init(&err);
    CHECK(load(&h, "write_relabel_configs:\n  - {regex: 'a(?<=b)', target_label: a}\n", &err) !=
          RW_OK);
    CHECK_MSG(strstr(err.msg, "write_relabel_configs[0].regex") != NULL, "%s", err.msg);
    rw_cfg_free(&holder_table, &h);
    rw_err_init(&err);
    CHECK(load(&h, "write_relabel_configs:\n  - {target_label: a, sourcelabels: [x]}\n", &err) !=
          RW_OK);
    CHECK_MSG(strstr(err.msg, "sourcelabels") != NULL, "%s", err.msg);
    rw_cfg_free(&holder_table, &h);
}

/* The per-request memo and the fast paths give exactly what the plain
 * path gives: the same rules over many series that repeat names and values,
 * once with a memo (rw_relabel_state_begin) and once without; the lengths
 * rw_relabel_apply_lens hands back are the strings' lengths. */
static void test_memo_equivalence(void)
{
    holder h;
    rw_err err;
    rw_err_init(&err);
    const char *y =
        "write_relabel_configs:\n"
        "  - {source_labels: [__name__], regex: 'go_memstats_.*_bucket|etcd_debugging_.*', action: drop}\n"
        "  - {source_labels: [cluster], regex: 'rke2-(prod|test)-.*', target_label: env, replacement: '$1'}\n"
        "  - {source_labels: [instance], regex: '([^:]+):.*', target_label: host, replacement: '$1'}\n"
        "  - {action: labeldrop, regex: 'pod|controller_revision_hash'}\n"
        "  - {source_labels: [job], regex: etcd, target_label: component, replacement: control-plane}\n"
        "  - {source_labels: [__name__], regex: '.+', action: keep}\n"
        "  - {source_labels: [team], regex: '', target_label: team, replacement: platform}\n"
        "  - {action: labelmap, regex: 'tmp_(.+)'}\n"
        "  - {source_labels: [cluster, job], separator: '/', target_label: scope}\n"
        "  - {source_labels: [code], regex: 'Unknown|Internal', target_label: err, replacement: 'true'}\n"
        "  - {source_labels: [code], target_label: code_lc, action: lowercase}\n"
        "  - {source_labels: [instance], target_label: shard, action: hashmod, modulus: 7}\n"
        "  - {source_labels: [host], regex: '(10)\\.(.*)', target_label: '${1}_net', replacement: '$2'}\n";
    CHECK_MSG(load(&h, y, &err) == RW_OK, "%s", err.msg);
    rw_relabel_config *r = h.rules.v;
    rw_arena *a = rw_arena_new(0, 0);
    rw_relabel_state *memo = rw_relabel_state_new(), *plain = rw_relabel_state_new();
    rw_relabel_state_begin(memo);
    const char *names[] = {"etcd_server_proposals_committed_total", "go_memstats_x_bucket",
                           "grpc_server_handled_total", "etcd_debugging_y", "up"};
    const char *codes[] = {"OK", "Unknown", "Internal", "NotFound"};
    int diffs = 0, kept = 0;
    for (int i = 0; i < 3000; i++) {
        char cl[32], inst[32], pod[16], tmp[16];
        snprintf(cl, sizeof cl, "rke2-%s-%04d", i % 3 ? "prod" : "test", i % 7);
        snprintf(inst, sizeof inst, "10.0.%d.%d:2381", i % 5, i % 3);
        snprintf(pod, sizeof pod, "p%d", i % 11);
        snprintf(tmp, sizeof tmp, "t%d", i % 13);
        /* the memo's contract: inputs live as long as the generation (one
           request arena) */
        rw_label in[9] = {{"__name__", names[i % 5]}, {"cluster", rw_arena_strdup(a, cl)},
                          {"code", codes[i % 4]}, {"instance", rw_arena_strdup(a, inst)},
                          {"job", i % 4 ? "etcd" : "node"}, {"pod", rw_arena_strdup(a, pod)},
                          {"team", i % 6 ? "" : "storage"}, {"tmp_x", rw_arena_strdup(a, tmp)},
                          {"zz", "1"}};
        size_t n = 9;
        /* an empty value means absent: drop it from the input */
        if (!in[6].value[0]) {
            memmove(in + 6, in + 7, 2 * sizeof *in);
            n = 8;
        }
        uint32_t lens[18];
        for (size_t k = 0; k < n; k++) {
            lens[2 * k] = (uint32_t)strlen(in[k].name);
            lens[2 * k + 1] = (uint32_t)strlen(in[k].value);
        }
        rw_labels o1, o2;
        const uint32_t *ol;
        rw_relabel_result r1 = rw_relabel_apply_lens(memo, r, h.rules.n, RW_RELABEL_REQUIRE_NAME,
                                                     a, in, lens, n, &o1, &ol, &err);
        rw_relabel_result r2 = rw_relabel_apply(plain, r, h.rules.n, RW_RELABEL_REQUIRE_NAME, a,
                                                in, n, &o2, &err);
        if (r1 != r2) {
            diffs++;
            continue;
        }
        if (r1 != RW_RELABEL_KEPT)
            continue;
        kept++;
        if (strcmp(fmt(a, &o1), fmt(a, &o2)))
            diffs++;
        for (size_t k = 0; k < o1.n; k++)
            if (!ol || ol[2 * k] != strlen(o1.v[k].name) || ol[2 * k + 1] != strlen(o1.v[k].value))
                diffs++;
    }
    CHECK_INT(diffs, 0);
    CHECK(kept > 1000);
    /* one series in detail */
    rw_label one[] = {{"__name__", "up"}, {"cluster", "rke2-prod-0001"}, {"code", "Unknown"},
                      {"instance", "10.1.2.3:2381"}, {"job", "etcd"}, {"tmp_a", "v"}};
    rw_labels o;
    CHECK_INT(rw_relabel_apply(memo, r, h.rules.n, 0, a, one, 6, &o, &err), RW_RELABEL_KEPT);
    CHECK_STR(fmt(a, &o), "10_net=1.2.3,__name__=up,a=v,cluster=rke2-prod-0001,code=Unknown,"
                          "code_lc=unknown,component=control-plane,env=prod,err=true,"
                          "host=10.1.2.3,instance=10.1.2.3:2381,job=etcd,scope=rke2-prod-0001/etcd,"
                          "shard=2,team=platform,tmp_a=v"); /* md5 per Python hashlib */
    rw_relabel_state_free(memo);
    rw_relabel_state_free(plain);
    rw_arena_free(a);
    rw_cfg_free(&holder_table, &h);
}

int main(void)
{
    RUN(test_yaml);
    RUN(test_memo_equivalence);
    RUN(test_replace);
    RUN(test_keep_drop);
    RUN(test_equal);
    RUN(test_hashmod);
    RUN(test_labelmap);
    RUN(test_many_added);
    RUN(test_labeldrop_keep);
    RUN(test_case);
    RUN(test_invalid_results);
    RUN(test_validate);
    TEST_DONE();
}
