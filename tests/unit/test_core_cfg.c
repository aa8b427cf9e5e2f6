/* test_core_cfg.c - the typed configuration tables (core/cfg.h) over a test
 * schema with every row type: defaults, nested sections, lists and maps of
 * sections, catch-all labels, regexes compiled at load, enums, bounds,
 * required keys, two tables sharing one section, errors that name the file,
 * line and key path, --set overrides, check functions, equality for
 * reloads, a dump that loads back to an equal struct, and YAML aliases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/cfg.h"
#include "core/regex.h"
#include "core/yaml.h"
#include "test.h"

typedef struct rule {
    rw_cfg_strings source_labels;
    char *target;
    rw_cfg_regex regex;
    int action;
    int64_t modulus;
    int checked; /* set by check: proves it ran once per element */
} rule;

typedef struct entry {
    char *region;
    int override;
    rw_cfg_labels extra;
} entry;

typedef struct part_a {
    rw_cfg_labels external;
} part_a;

typedef struct part_b {
    int64_t interval_ms;
} part_b;

typedef struct conf {
    char *listen;
    int64_t shards;
    int64_t retention_ms;
    int64_t body;
    double ratio;
    int on;
    char *file;
    rw_cfg_list rules;
    rw_cfg_map clusters;
    part_a ga;
    part_b gb;
    struct {
        int64_t timeout_ms;
        rw_cfg_strings paths;
    } nested;
} conf;

static const char *const actions[] = {"replace", "keep", "drop", "hashmod", NULL};

static rw_rc check_rule(void *obj, rw_err *err)
{
    rule *r = obj;
    r->checked++;
    if (r->action == 3 && r->modulus == 0)
        return rw_err_set(err, RW_BADREQ, "modulus must be set for hashmod");
    return RW_OK;
}

#define R(f) offsetof(rule, f)
static const rw_cfg_key rule_keys[] = {
    {"source_labels", RW_CFG_STRINGS, R(source_labels), NULL, 0, 0, 0, "", NULL, NULL},
    {"target_label", RW_CFG_STRING, R(target), NULL, 0, 0, 0, "", NULL, NULL},
    {"regex", RW_CFG_REGEX, R(regex), "(.*)", 0, 0, 0, "", NULL, NULL},
    {"action", RW_CFG_ENUM, R(action), "replace", 0, 0, 0, "", NULL, actions},
    {"modulus", RW_CFG_INT, R(modulus), "0", 0, 1000, 0, "", NULL, NULL},
};
static const rw_cfg_table rule_table = RW_CFG_TABLE("rule", rule, rule_keys, check_rule, NULL);

#define E(f) offsetof(entry, f)
static const rw_cfg_key entry_keys[] = {
    {"region", RW_CFG_STRING, E(region), NULL, 0, 0, RW_CFG_REQUIRED, "", NULL, NULL},
    {"override", RW_CFG_BOOL, E(override), "false", 0, 0, 0, "", NULL, NULL},
    {"labels", RW_CFG_REST, E(extra), NULL, 0, 0, 0, "", NULL, NULL},
};
static const rw_cfg_table entry_table = RW_CFG_TABLE("entry", entry, entry_keys, NULL, NULL);

static const rw_cfg_key a_keys[] = {
    {"external_labels", RW_CFG_LABELS, offsetof(part_a, external), NULL, 0, 0, RW_CFG_RELOAD, "",
     NULL, NULL},
};
static const rw_cfg_table a_table = RW_CFG_TABLE("a", part_a, a_keys, NULL, NULL);
static const rw_cfg_key b_keys[] = {
    {"evaluation_interval", RW_CFG_DURATION, offsetof(part_b, interval_ms), "1m", 1000, 86400000,
     0, "", NULL, NULL},
};
static const rw_cfg_table b_table = RW_CFG_TABLE("b", part_b, b_keys, NULL, NULL);

typedef struct nested_t {
    int64_t timeout_ms;
    rw_cfg_strings paths;
} nested_t;
static const rw_cfg_key nested_keys[] = {
    {"timeout", RW_CFG_DURATION, offsetof(nested_t, timeout_ms), "2m", 0, 0, RW_CFG_RELOAD, "",
     NULL, NULL},
    {"paths", RW_CFG_STRINGS, offsetof(nested_t, paths), "a,b", 0, 0, 0, "", NULL, NULL},
};
static const rw_cfg_table nested_table = RW_CFG_TABLE("nested", nested_t, nested_keys, NULL, NULL);

#define C(f) offsetof(conf, f)
static const rw_cfg_key conf_keys[] = {
    {"listen", RW_CFG_STRING, C(listen), "127.0.0.1:9201", 0, 0, 0, "", NULL, NULL},
    {"shards", RW_CFG_INT, C(shards), "0", 0, 1024, 0, "", NULL, NULL},
    {"retention", RW_CFG_DURATION, C(retention_ms), "15d", 0, 0, RW_CFG_RELOAD, "", NULL, NULL},
    {"body", RW_CFG_BYTES, C(body), "32MiB", 1024, 1e12, RW_CFG_RELOAD, "", NULL, NULL},
    {"ratio", RW_CFG_FLOAT, C(ratio), "0.5", 0, 1, RW_CFG_RELOAD, "", NULL, NULL},
    {"on", RW_CFG_BOOL, C(on), "true", 0, 0, RW_CFG_RELOAD, "", NULL, NULL},
    {"file", RW_CFG_PATH, C(file), NULL, 0, 0, RW_CFG_RELOAD | RW_CFG_SECRET, "", NULL, NULL},
    {"rules", RW_CFG_LIST, C(rules), NULL, 0, 0, RW_CFG_RELOAD, "", &rule_table, NULL},
    {"clusters", RW_CFG_MAP, C(clusters), NULL, 0, 0, RW_CFG_RELOAD, "", &entry_table, NULL},
    {"global", RW_CFG_SECTION, C(ga), NULL, 0, 0, 0, "", &a_table, NULL},
    {"global", RW_CFG_SECTION, C(gb), NULL, 0, 0, 0, "", &b_table, NULL},
    {"nested", RW_CFG_SECTION, C(nested), NULL, 0, 0, 0, "", &nested_table, NULL},
};
static const rw_cfg_table conf_table = RW_CFG_TABLE("conf", conf, conf_keys, NULL, NULL);

static rw_rc load(conf *c, const char *yaml, rw_err *e)
{
    rw_err_init(e);
    rw_cfg_defaults(&conf_table, c);
    return rw_cfg_load_string(&conf_table, c, yaml, strlen(yaml), "t.yml", e);
}

static void test_defaults(void)
{
    conf c;
    memset(&c, 0, sizeof c);
    rw_cfg_defaults(&conf_table, &c);
    CHECK_STR(c.listen, "127.0.0.1:9201");
    CHECK_INT(c.retention_ms, 15LL * 86400000);
    CHECK_INT(c.body, 32LL << 20);
    CHECK(c.ratio == 0.5 && c.on == 1);
    CHECK_STR(c.file, "");
    CHECK_INT(c.rules.n, 0);
    CHECK_INT(c.gb.interval_ms, 60000);
    CHECK_INT(c.nested.timeout_ms, 120000);
    CHECK_INT(c.nested.paths.n, 2);
    CHECK_STR(c.nested.paths.v[1], "b");
    rw_cfg_free(&conf_table, &c);
    CHECK(c.listen == NULL);
}

static void test_load_all_types(void)
{
    conf c;
    rw_err e;
    const char *y = "listen: 0.0.0.0:1\n"
                    "retention: 1h30m\n"
                    "body: 1MiB\n"
                    "ratio: 0.25\n"
                    "on: false\n"
                    "rules:\n"
                    "  - source_labels: [a, b]\n"
                    "    target_label: t\n"
                    "    regex: 'x(\\d+)'\n"
                    "  - action: hashmod\n"
                    "    modulus: 8\n"
                    "clusters:\n"
                    "  gz-1: {region: gz, team: storage, tier: '1'}\n"
                    "  sh-2:\n"
                    "    region: sh\n"
                    "    override: true\n"
                    "global:\n"
                    "  external_labels: {central: eu, a: b}\n"
                    "  evaluation_interval: 30s\n"
                    "nested:\n"
                    "  paths: [x]\n";
    CHECK_MSG(load(&c, y, &e) == RW_OK, "%s", e.msg);
    CHECK_STR(c.listen, "0.0.0.0:1");
    CHECK_INT(c.retention_ms, 5400000);
    CHECK_INT(c.body, 1 << 20);
    CHECK(c.ratio == 0.25 && c.on == 0);
    CHECK_INT(c.rules.n, 2);
    rule *r = c.rules.v;
    CHECK_INT(r[0].source_labels.n, 2);
    CHECK_STR(r[0].source_labels.v[1], "b");
    CHECK_STR(r[0].target, "t");
    CHECK_STR(r[0].regex.src, "x(\\d+)");
    CHECK_INT(r[0].action, 0);
    CHECK_INT(r[1].action, 3);
    CHECK_INT(r[1].modulus, 8);
    CHECK_STR(r[1].regex.src, "(.*)"); /* element defaults */
    CHECK_INT(r[0].checked, 1);
    CHECK_INT(r[1].checked, 1);
    CHECK_INT(c.rules.lines[1], 10);
    /* compiled regex is anchored: x12 matches, ax12 does not */
    rw_regex_md *md = rw_regex_md_new(rw_regex_ngroups(r[0].regex.re));
    CHECK(rw_regex_match(r[0].regex.re, md, "x12", 3, &e) == 1);
    size_t s0, e0;
    CHECK(rw_regex_group(md, 1, &s0, &e0) && s0 == 1 && e0 == 3);
    CHECK(rw_regex_match(r[0].regex.re, md, "ax12", 4, &e) == 0);
    rw_regex_md_free(md);
    CHECK_INT(c.clusters.n, 2);
    entry *en = c.clusters.v;
    CHECK_STR(c.clusters.keys[0], "gz-1");
    CHECK_STR(en[0].region, "gz");
    CHECK_INT(en[0].extra.n, 2);
    CHECK_STR(en[0].extra.v[0].name, "team"); /* sorted */
    CHECK_STR(en[0].extra.v[1].value, "1");
    CHECK_INT(en[1].override, 1);
    CHECK_INT(en[1].extra.n, 0);
    CHECK_INT(c.ga.external.n, 2);
    CHECK_STR(c.ga.external.v[0].name, "a");
    CHECK_INT(c.gb.interval_ms, 30000);
    CHECK_INT(c.nested.paths.n, 1);
    CHECK_INT(c.nested.timeout_ms, 120000);
    rw_cfg_free(&conf_table, &c);
}

static void expect_error(const char *yaml, const char *want)
{
    conf c;
    rw_err e;
    rw_rc rc = load(&c, yaml, &e);
    CHECK_MSG(rc != RW_OK && strstr(e.msg, want), "yaml %s: got rc %d \"%s\", want \"%s\"", yaml,
              rc, e.msg, want);
    rw_cfg_free(&conf_table, &c);
}

static void test_errors(void)
{
    expect_error("listen: a\nbogus: 1\n", "t.yml:2: unknown configuration key \"bogus\"");
    expect_error("nested:\n  timeout: 1m\n  nope: 2\n", "t.yml:3: unknown configuration key \"nested.nope\"");
    expect_error("global:\n  scrape_timeout: 1s\n", "unknown configuration key \"global.scrape_timeout\"");
    expect_error("shards: 2000\n", "t.yml:1: shards: 2000 is out of range");
    expect_error("shards: x\n", "is not an integer");
    expect_error("retention: 5 minutes\n", "is not a duration");
    expect_error("body: 10\n", "out of range");
    expect_error("ratio: 2\n", "out of range");
    expect_error("on: maybe\n", "not a boolean");
    expect_error("rules:\n  - action: explode\n", "rules[0].action: \"explode\" is not one of: replace, keep, drop, hashmod");
    expect_error("rules:\n  - regex: '(unclosed'\n", "t.yml:2: rules[0].regex: invalid regular expression");
    expect_error("rules:\n  - {}\n  - action: hashmod\n", "t.yml:3: rules[1]: modulus must be set for hashmod");
    expect_error("rules: {a: b}\n", "rules: expected a list, got a map");
    expect_error("clusters:\n  x: {team: a}\n", "clusters.x.region: missing required key");
    expect_error("clusters:\n  x: {region: a, nested: {deep: 1}}\n", "unknown configuration key \"clusters.x.nested\"");
    expect_error("global:\n  external_labels: {bad-name: x}\n", "invalid label name \"bad-name\"");
    expect_error("listen: [1, 2]\n", "listen: expected a single value, got a list");
    expect_error("listen: 'unterminated\n", "YAML error");
    expect_error("listen: a\nlisten: b\n", "key \"listen\" already set in this map (line 1)");
    expect_error("- a\n- b\n", "the top level must be a map");
    expect_error("a: 1\n---\nb: 2\n", "only one YAML document");
}

static void test_set_and_check(void)
{
    conf c;
    rw_err e;
    CHECK(load(&c, "", &e) == RW_OK);
    CHECK(rw_cfg_set(&conf_table, &c, "retention", "2h", &e) == RW_OK);
    CHECK_INT(c.retention_ms, 7200000);
    CHECK(rw_cfg_set(&conf_table, &c, "global.evaluation_interval", "15s", &e) == RW_OK);
    CHECK_INT(c.gb.interval_ms, 15000);
    CHECK(rw_cfg_set(&conf_table, &c, "global.external_labels", "x=1,y=2", &e) == RW_OK);
    CHECK_INT(c.ga.external.n, 2);
    CHECK(rw_cfg_set(&conf_table, &c, "nested.paths", "p,q,r", &e) == RW_OK);
    CHECK_INT(c.nested.paths.n, 3);
    CHECK(rw_cfg_set(&conf_table, &c, "nope", "1", &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "unknown configuration key \"nope\"") != NULL);
    CHECK(rw_cfg_set(&conf_table, &c, "shards", "-1", &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "shards") != NULL);
    CHECK(rw_cfg_check(&conf_table, &c, &e) == RW_OK);
    CHECK(rw_cfg_find(&conf_table, "nested.timeout") != NULL);
    CHECK(rw_cfg_find(&conf_table, "global.external_labels") != NULL);
    CHECK(rw_cfg_find(&conf_table, "nested.missing") == NULL);
    rw_cfg_free(&conf_table, &c);
}

static void test_equal_and_dump(void)
{
    conf a, b;
    rw_err e;
    const char *y = "rules:\n  - {source_labels: [a], target_label: t, regex: 'a\"b'}\n"
                    "clusters:\n  c1: {region: r, team: x}\n"
                    "file: /etc/secret\n"
                    "global: {external_labels: {k: v}}\n";
    CHECK(load(&a, y, &e) == RW_OK);
    CHECK(load(&b, y, &e) == RW_OK);
    char path[128];
    CHECK(rw_cfg_equal(&conf_table, &a, &b, 0, path, sizeof path));
    rw_cfg_set(&conf_table, &b, "retention", "1d", &e);
    CHECK(!rw_cfg_equal(&conf_table, &a, &b, 0, path, sizeof path));
    CHECK_STR(path, "retention");
    CHECK(rw_cfg_equal(&conf_table, &a, &b, 1, path, sizeof path)); /* retention reloads */
    rw_cfg_set(&conf_table, &b, "nested.paths", "z", &e);
    CHECK(!rw_cfg_equal(&conf_table, &a, &b, 1, path, sizeof path));
    CHECK_STR(path, "nested.paths");

    /* the dump loads back to an equal struct (secrets aside) */
    rw_buf out;
    rw_buf_init(&out, 0);
    rw_cfg_dump(&conf_table, &a, &out);
    CHECK(strstr(out.p, "<secret>") != NULL);
    CHECK(strstr(out.p, "/etc/secret") == NULL);
    conf c;
    rw_err_init(&e);
    rw_cfg_defaults(&conf_table, &c);
    rw_rc rc = rw_cfg_load_string(&conf_table, &c, out.p, out.len, "dump", &e);
    CHECK_MSG(rc == RW_OK, "%s\n%s", e.msg, out.p);
    rw_cfg_set(&conf_table, &c, "file", "/etc/secret", &e);
    CHECK_MSG(rw_cfg_equal(&conf_table, &a, &c, 0, path, sizeof path), "differs at %s:\n%s", path,
              out.p);
    rw_buf_free(&out);

    /* a deep copy is equal, shares nothing, and ran its own checks */
    conf d;
    CHECK(rw_cfg_copy(&conf_table, &d, &a, &e) == RW_OK);
    CHECK(rw_cfg_equal(&conf_table, &a, &d, 0, path, sizeof path));
    CHECK(d.listen != a.listen && ((rule *)d.rules.v)->regex.re != ((rule *)a.rules.v)->regex.re);
    CHECK_INT(((rule *)d.rules.v)->checked, 1);
    CHECK_STR(d.clusters.keys[0], "c1");
    rw_cfg_free(&conf_table, &d);
    rw_cfg_free(&conf_table, &a);
    rw_cfg_free(&conf_table, &b);
    rw_cfg_free(&conf_table, &c);
}

static void test_paths_and_files(void)
{
    char dir[] = "/tmp/rwgate-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[128];
    snprintf(p, sizeof p, "%s/c.yml", dir);
    FILE *f = fopen(p, "w");
    fputs("file: inv.yml\nlisten: x\n", f);
    fclose(f);
    conf c;
    rw_err e;
    rw_err_init(&e);
    rw_cfg_defaults(&conf_table, &c);
    CHECK_MSG(rw_cfg_load_file(&conf_table, &c, p, &e) == RW_OK, "%s", e.msg);
    char want[160];
    snprintf(want, sizeof want, "%s/inv.yml", dir);
    CHECK_STR(c.file, want);
    rw_cfg_free(&conf_table, &c);
    rw_cfg_defaults(&conf_table, &c);
    CHECK(rw_cfg_load_file(&conf_table, &c, "/nonexistent/x.yml", &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "cannot open /nonexistent/x.yml") != NULL);
    rw_cfg_free(&conf_table, &c);
    unlink(p);
    rmdir(dir);
}

static void test_yaml_tree(void)
{
    rw_arena *a = rw_arena_new(0, 0);
    rw_ynode *root;
    rw_err e;
    rw_err_init(&e);
    const char *y = "base: &b {x: 1}\ncopy: *b\nempty:\nq: 'null'\nlist: [1, ~]\n";
    CHECK_MSG(rw_yaml_parse(y, strlen(y), "y", a, &root, &e) == RW_OK, "%s", e.msg);
    const rw_ynode *copy = rw_yaml_get(root, "copy");
    CHECK(copy && copy->kind == RW_Y_MAP && rw_yaml_get(copy, "x") != NULL);
    CHECK(rw_yaml_is_null(rw_yaml_get(root, "empty")));
    CHECK(!rw_yaml_is_null(rw_yaml_get(root, "q")));
    const rw_ynode *l = rw_yaml_get(root, "list");
    CHECK(l && l->n == 2 && rw_yaml_is_null(l->vals[1]) && l->vals[0]->line == 5);
    /* hostile nesting is an error, not a stack overflow */
    char deep[400];
    memset(deep, '[', 300);
    deep[300] = '\0';
    CHECK(rw_yaml_parse(deep, 300, "deep", a, &root, &e) != RW_OK);
    rw_arena_free(a);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_load_all_types);
    RUN(test_errors);
    RUN(test_set_and_check);
    RUN(test_equal_and_dump);
    RUN(test_paths_and_files);
    RUN(test_yaml_tree);
    TEST_DONE();
}
