/* test_core_config.c - the configuration table and its YAML loader:
 * defaults, nested keys, sizes and durations, external labels, errors that
 * name the key and line (unknown keys, bad types, out of range), flags via
 * rw_config_set, and the reload rule for keys that need a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/config.h"
#include "test.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/rwgate-cfg-%d.yml", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void)
{
    rw_config c;
    rw_config_defaults(&c);
    CHECK_STR(c.listen, RW_DEFAULT_LISTEN);
    CHECK_STR(c.data_dir, RW_DEFAULT_DATA);
    CHECK(c.retention_ms == 15LL * 86400000);
    CHECK(c.lookback_ms == 300000);
    CHECK(c.max_body_bytes == 32LL << 20);
    CHECK_STR(c.tenant_header, "X-Scope-OrgID");
    CHECK_STR(c.tenant_label, "tenant_id");
    CHECK_STR(c.default_tenant, "");
    CHECK(c.max_future_ms == 600000);
    CHECK_INT(c.nexternal, 0);
    rw_config_free(&c);
}

static void test_load(void)
{
    rw_config c;
    rw_err e;
    rw_err_init(&e);
    rw_config_defaults(&c);
    const char *p = write_tmp("listen: 0.0.0.0:1234\n"
                              "retention: 30d\n"
                              "external_labels:\n  region: eu\n  central: one\n"
                              "ingest:\n  max_body_bytes: 1MiB\n  tenant_label: \"\"\n"
                              "query:\n  lookback_delta: 1m30s\n");
    CHECK_MSG(rw_config_load_file(&c, p, &e) == RW_OK, "%s", e.msg);
    CHECK_STR(c.listen, "0.0.0.0:1234");
    CHECK(c.retention_ms == 30LL * 86400000);
    CHECK(c.max_body_bytes == 1 << 20);
    CHECK_STR(c.tenant_label, "");
    CHECK(c.lookback_ms == 90000);
    CHECK_INT(c.nexternal, 2);
    CHECK_STR(c.external_labels[0].name, "central"); /* sorted */
    CHECK_STR(c.external_labels[1].value, "eu");
    CHECK(rw_config_set(&c, "retention", "1h", &e) == RW_OK && c.retention_ms == 3600000);
    CHECK(rw_config_set(&c, "shards", "4", &e) == RW_OK && c.shards == 4);
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_config_dump(&c, &b);
    CHECK(strstr(b.p, "lookback_delta: 1m30s") != NULL);
    CHECK(strstr(b.p, "region: \"eu\"") != NULL);
    rw_buf_free(&b);
    rw_config_free(&c);
    unlink(p);
}

static void expect_error(const char *yaml, const char *needle)
{
    rw_config c;
    rw_err e;
    rw_err_init(&e);
    rw_config_defaults(&c);
    const char *p = write_tmp(yaml);
    rw_rc rc = rw_config_load_file(&c, p, &e);
    CHECK_MSG(rc != RW_OK && strstr(e.msg, needle), "yaml %s: rc %d msg \"%s\" want \"%s\"", yaml,
              rc, e.msg, needle);
    rw_config_free(&c);
    unlink(p);
}

static void test_errors(void)
{
    expect_error("listne: x\n", "unknown configuration key \"listne\"");
    expect_error("ingest:\n  max_bdy: 1\n", ":2: unknown configuration key \"ingest.max_bdy\"");
    expect_error("retention: forever\n", "retention: \"forever\" is not a duration");
    expect_error("shards: -1\n", "out of range");
    expect_error("shards: two\n", "not an integer");
    expect_error("ingest:\n  max_body_bytes: lots\n", "not a size");
    expect_error("external_labels: [a, b]\n", "expected a map");
    expect_error("external_labels:\n  bad-name: x\n", "invalid label");
    expect_error("listen: 'unterminated\n", "YAML error");
    expect_error("listen: [1, 2]\n", "expected a single value");
    expect_error("- a\n- b\n", "top level must be a map");
    expect_error("bogus:\n  x: 1\n", "unknown configuration section");
    rw_config c;
    rw_err e;
    rw_config_defaults(&c);
    CHECK(rw_config_load_file(&c, "/nonexistent/rwgate.yml", &e) == RW_BADREQ);
    CHECK(strstr(e.msg, "cannot open") != NULL);
    CHECK(rw_config_set(&c, "nope", "1", &e) == RW_BADREQ);
    rw_config_free(&c);
}

static void test_reload_rules(void)
{
    rw_config a, b;
    rw_err e;
    rw_config_defaults(&a);
    rw_config_defaults(&b);
    CHECK(rw_config_unreloadable_change(&a, &b) == NULL);
    rw_config_set(&b, "ingest.max_body_bytes", "1MiB", &e);
    rw_config_set(&b, "ingest.tenant_label", "team", &e);
    CHECK(rw_config_unreloadable_change(&a, &b) == NULL); /* reloadable */
    rw_config_set(&b, "query.lookback_delta", "1m", &e);
    const char *k = rw_config_unreloadable_change(&a, &b);
    CHECK(k && strcmp(k, "query.lookback_delta") == 0);
    rw_config_free(&a);
    rw_config_free(&b);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_load);
    RUN(test_errors);
    RUN(test_reload_rules);
    TEST_DONE();
}
