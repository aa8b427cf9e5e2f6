/* test_ingest_inventory.c - the cluster inventory (ingest/inventory.c):
 * loading the YAML shape (fixed keys, any extra label, override), errors
 * that name file, line and cluster, lookups, applying an entry (the
 * sender's label wins unless override), unlisted clusters getting
 * scenario="unknown", and the shipped example loading. */
#include <stdlib.h>
#include "ingest/clean.h"
#include "test.h"

static const char *fmt(rw_arena *a, const rw_labels *l)
{
    char *b = rw_arena_alloc(a, 1024);
    size_t o = 0;
    b[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        o += (size_t)snprintf(b + o, 1024 - o, "%s%s=%s", i ? "," : "", l->v[i].name,
                              l->v[i].value);
    return b;
}

static rw_inventory *parse(const char *y, rw_err *e)
{
    rw_err_init(e);
    return rw_inventory_parse(y, strlen(y), "clusters.yml", e);
}

static void test_load_and_apply(void)
{
    rw_err e;
    rw_inventory *inv = parse("clusters:\n"
                              "  gz-prod-0001: {region: gz, product: tke, scenario: business, "
                              "size: large}\n"
                              "  sh-test-0042: {region: sh, product: tke, scenario: internal, "
                              "size: small, team: storage, empty: ''}\n"
                              "  bj-1: {region: bj, override: true, team: edge}\n",
                              &e);
    CHECK_MSG(inv != NULL, "%s", e.msg);
    CHECK_INT(rw_inventory_size(inv), 3);
    CHECK(rw_inventory_find(inv, "nope", 4) == NULL);
    CHECK(rw_inventory_find(inv, "gz-prod-000", 11) == NULL);
    const rw_inventory_entry *sh = rw_inventory_find(inv, "sh-test-0042", 12);
    CHECK(sh != NULL);
    size_t n;
    int ov;
    const rw_label *l = rw_inventory_entry_labels(sh, &n, &ov);
    CHECK_INT(n, 5); /* product region scenario size team; the empty one is no label */
    CHECK_INT(ov, 0);
    CHECK_STR(l[0].name, "product");
    CHECK_STR(l[4].name, "team");

    rw_arena *a = rw_arena_new(0, 0);
    rw_labels out;
    /* the sender's region wins; the rest is added, sorted */
    rw_label in1[] = {{"__name__", "up"}, {"cluster", "sh-test-0042"}, {"region", "mine"}};
    CHECK(rw_inventory_apply(sh, a, in1, 3, &out) == RW_OK);
    CHECK_STR(fmt(a, &out), "__name__=up,cluster=sh-test-0042,product=tke,region=mine,"
                            "scenario=internal,size=small,team=storage");
    /* override: the inventory wins */
    const rw_inventory_entry *bj = rw_inventory_find(inv, "bj-1", 4);
    rw_label in2[] = {{"__name__", "up"}, {"cluster", "bj-1"}, {"team", "x"}};
    CHECK(rw_inventory_apply(bj, a, in2, 3, &out) == RW_OK);
    CHECK_STR(fmt(a, &out), "__name__=up,cluster=bj-1,region=bj,team=edge");
    /* nothing to change: the input array itself */
    rw_label in3[] = {{"__name__", "up"}, {"cluster", "bj-1"}, {"region", "bj"}, {"team", "edge"}};
    CHECK(rw_inventory_apply(bj, a, in3, 4, &out) == RW_OK);
    CHECK(out.v == in3 && out.n == 4);
    /* unlisted: scenario="unknown", unless the sender says otherwise */
    rw_label in4[] = {{"__name__", "up"}, {"cluster", "zz"}};
    CHECK(rw_inventory_apply(NULL, a, in4, 2, &out) == RW_OK);
    CHECK_STR(fmt(a, &out), "__name__=up,cluster=zz,scenario=unknown");
    rw_label in5[] = {{"__name__", "up"}, {"cluster", "zz"}, {"scenario", "lab"}};
    CHECK(rw_inventory_apply(NULL, a, in5, 3, &out) == RW_OK);
    CHECK(out.v == in5);
    rw_arena_free(a);
    rw_inventory_free(inv);
}

static void test_errors(void)
{
    rw_err e;
    CHECK(parse("clusters:\n  a: {region: gz}\n  b: {size: huge}\n", &e) == NULL);
    CHECK_MSG(strstr(e.msg, "clusters.yml:3") && strstr(e.msg, "clusters.b") &&
                  strstr(e.msg, "huge"),
              "%s", e.msg);
    CHECK(parse("clusters:\n  a: {region: [x]}\n", &e) == NULL);
    CHECK(parse("clusters:\n  a: {__name__: x}\n", &e) == NULL);
    CHECK(parse("clusterz: {}\n", &e) == NULL);
    CHECK_MSG(strstr(e.msg, "clusterz") != NULL, "%s", e.msg);
    CHECK(parse("clusters:\n  a: {override: maybe}\n", &e) == NULL);
    /* an empty file is an empty inventory */
    rw_inventory *inv = parse("", &e);
    CHECK(inv != NULL && rw_inventory_size(inv) == 0);
    CHECK(rw_inventory_find(inv, "a", 1) == NULL);
    rw_inventory_free(inv);
    rw_err_init(&e);
    CHECK(rw_inventory_load("/nonexistent/clusters.yml", &e) == NULL);
    CHECK(e.code != RW_OK);
}

static void test_example(void)
{
    rw_err e;
    rw_err_init(&e);
    rw_inventory *inv = rw_inventory_load("deploy/clusters.example.yml", &e);
    CHECK_MSG(inv != NULL, "%s", e.msg);
    if (!inv)
        return;
    CHECK_INT(rw_inventory_size(inv), 4);
    const rw_inventory_entry *x = rw_inventory_find(inv, "bj-edge-0007", 12);
    size_t n;
    int ov;
    CHECK(x && rw_inventory_entry_labels(x, &n, &ov) && ov == 1 && n == 5);
    rw_inventory_free(inv);
}

static void test_many(void)
{
    /* a fleet-sized inventory: every cluster found, none confused */
    size_t n = 5000;
    char *y = malloc(n * 64 + 32);
    size_t o = (size_t)sprintf(y, "clusters:\n");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(y + o, "  c-%05zu: {region: r%zu}\n", i, i % 7);
    rw_err e;
    rw_inventory *inv = parse(y, &e);
    CHECK_MSG(inv != NULL, "%s", e.msg);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char name[16], want[8];
        snprintf(name, sizeof name, "c-%05zu", i);
        snprintf(want, sizeof want, "r%zu", i % 7);
        const rw_inventory_entry *x = rw_inventory_find(inv, name, strlen(name));
        size_t nl;
        const rw_label *l = x ? rw_inventory_entry_labels(x, &nl, NULL) : NULL;
        bad += !l || nl != 1 || strcmp(l[0].value, want);
    }
    CHECK_INT(bad, 0);
    CHECK(rw_inventory_find(inv, "c-99999", 7) == NULL);
    rw_inventory_free(inv);
    free(y);
}

int main(void)
{
    RUN(test_load_and_apply);
    RUN(test_errors);
    RUN(test_example);
    RUN(test_many);
    TEST_DONE();
}
