/* test_ingest_kubelet.c - the kubelet-endpoint node tables (ingest/kubelet.c)
 * fed with kube-state-metrics and kubelet series as a cluster's Prometheus
 * sends them: the IP-reuse case of prometheus-operator#6548 (the NotReady
 * node's claim loses), Ready=false against unknown, a node with an unknown
 * condition but a unique IP kept, strict mode, node information arriving
 * after the kubelet series, the kubelet_node_name and recency tie-breaks,
 * nodes expiring by sample time, API-listed nodes, the endpoints report and
 * the config selector. */
#include <stdarg.h>
#include <stdlib.h>
#include "ingest/clean.h"
#include "test.h"

#define MIN (60 * 1000)

static rw_kubelet *new_k(rw_kubelet_mode mode)
{
    rw_kubelet_opts o = {.mode = mode};
    rw_err e;
    rw_err_init(&e);
    rw_kubelet *k = rw_kubelet_new(&o, &e);
    CHECK(k != NULL);
    return k;
}

/* feeds one series given as "name=value" pairs (NULL-terminated) with one
 * sample */
static void feed(rw_kubelet *k, const char *cluster, int64_t t, double v, ...)
{
    rw_label l[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, v);
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        const char *eq = strchr(kv, '=');
        l[n].name = strndup(kv, (size_t)(eq - kv));
        l[n].value = eq + 1;
        n++;
    }
    va_end(ap);
    rw_labels_sort(l, n);
    CHECK(rw_kubelet_is_source(l, n));
    rw_sample s = {t, v};
    rw_kubelet_observe(k, "t", cluster, l, n, &s, 1);
    for (size_t i = 0; i < n; i++)
        free((char *)l[i].name);
}

/* the three Ready series KSM exports for a node: the matching status is 1 */
static void ready(rw_kubelet *k, const char *cluster, int64_t t, const char *node, const char *st)
{
    static const char *const all[] = {"true", "false", "unknown"};
    char nl[64];
    snprintf(nl, sizeof nl, "node=%s", node);
    for (int i = 0; i < 3; i++) {
        char sl[32];
        snprintf(sl, sizeof sl, "status=%s", all[i]);
        feed(k, cluster, t, strcmp(all[i], st) ? 0.0 : 1.0, "__name__=kube_node_status_condition",
             "condition=Ready", "job=kube-state-metrics", nl, sl, NULL);
    }
    /* another condition must not be read as Ready */
    feed(k, cluster, t, 1.0, "__name__=kube_node_status_condition", "condition=DiskPressure",
         nl, "status=true", NULL);
}

static void info(rw_kubelet *k, const char *cluster, int64_t t, const char *node, const char *ip)
{
    char nl[64], il[64];
    snprintf(nl, sizeof nl, "node=%s", node);
    snprintf(il, sizeof il, "internal_ip=%s", ip);
    feed(k, cluster, t, 1.0, "__name__=kube_node_info", "job=kube-state-metrics", nl, il,
         "kubelet_version=v1.29.3", NULL);
}

static rw_kubelet_decision dec(rw_kubelet *k, const char *cluster, const char *instance,
                               const char *node)
{
    return rw_kubelet_decide(k, "t", cluster, instance, node, 1);
}

static void test_ip_reuse(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_IP_REUSE);
    /* no node information: nothing is dropped */
    CHECK_INT(dec(k, "c1", "10.0.0.5:10250", "node-old"), RW_KUBELET_KEEP);
    /* node-old went NotReady (kubelet gone: Ready unknown), its IP was given
       to node-new, which is Ready; both Node objects exist */
    ready(k, "c1", 1000, "node-old", "unknown");
    info(k, "c1", 1000, "node-old", "10.0.0.5");
    ready(k, "c1", 1000, "node-new", "true");
    info(k, "c1", 1000, "node-new", "10.0.0.5");
    ready(k, "c1", 1000, "node-b", "true");
    info(k, "c1", 1000, "node-b", "10.0.0.6");
    CHECK_INT(dec(k, "c1", "10.0.0.5:10250", "node-old"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "c1", "10.0.0.5:10250", "node-new"), RW_KUBELET_KEEP);
    CHECK_INT(dec(k, "c1", "10.0.0.6:10250", "node-b"), RW_KUBELET_KEEP);
    /* a node label no claimant has, a missing node label: no opinion */
    CHECK_INT(dec(k, "c1", "10.0.0.5:10250", "node-x"), RW_KUBELET_KEEP);
    CHECK_INT(dec(k, "c1", "10.0.0.5:10250", NULL), RW_KUBELET_KEEP);
    /* another cluster (or tenant) with the same names is another table */
    CHECK_INT(dec(k, "c2", "10.0.0.5:10250", "node-old"), RW_KUBELET_KEEP);
    CHECK_INT(rw_kubelet_decide(k, "other", "c1", "10.0.0.5:10250", "node-old", 1),
              RW_KUBELET_KEEP);
    /* the unknown node with a unique IP keeps its series */
    ready(k, "c1", 2000, "node-lost", "unknown");
    info(k, "c1", 2000, "node-lost", "10.0.0.9");
    CHECK_INT(dec(k, "c1", "10.0.0.9:10250", "node-lost"), RW_KUBELET_KEEP);
    CHECK_INT(rw_kubelet_dropped(k, "t", "c1"), 1);

    rw_buf b;
    rw_buf_init(&b, 0);
    rw_kubelet_endpoints_json(k, NULL, "c1", NULL, &b);
    CHECK_MSG(strstr(b.p, "\"ip\":\"10.0.0.5\",\"node\":\"node-new\",\"ready\":\"true\"") &&
                  strstr(b.p, "\"excluded\":[{\"node\":\"node-old\",\"ready\":\"unknown\","
                              "\"reason\":\"its Ready condition is unknown while node-new's is "
                              "known (true)") &&
                  strstr(b.p, "\"ip_reuse\":1") && !strstr(b.p, "\"cluster\":\"c2\""),
              "%s", b.p);
    rw_buf_free(&b);
    rw_kubelet_free(k);
}

static void test_false_vs_unknown_and_missing(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_IP_REUSE);
    /* the new node is not Ready yet (Ready=false: its kubelet reports) */
    ready(k, "c", 1000, "old", "unknown");
    info(k, "c", 1000, "old", "10.1.0.1");
    ready(k, "c", 1000, "new", "false");
    info(k, "c", 1000, "new", "10.1.0.1");
    CHECK_INT(dec(k, "c", "10.1.0.1:10250", "old"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "c", "10.1.0.1:10250", "new"), RW_KUBELET_KEEP);
    /* a node with no Ready condition at all counts as unknown */
    info(k, "c", 1000, "nocond", "10.1.0.2");
    ready(k, "c", 1000, "withcond", "true");
    feed(k, "c", 1000, 1.0, "__name__=kube_node_status_addresses", "node=withcond",
         "type=InternalIP", "address=10.1.0.2", NULL);
    CHECK_INT(dec(k, "c", "10.1.0.2:10250", "nocond"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "c", "10.1.0.2:10250", "withcond"), RW_KUBELET_KEEP);
    rw_kubelet_free(k);
}

static void test_tie_breaks(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_IP_REUSE);
    /* both unknown: the kubelet at the IP says who it is */
    ready(k, "c", 1000, "n1", "unknown");
    info(k, "c", 1000, "n1", "10.2.0.1");
    ready(k, "c", 1000, "n2", "unknown");
    info(k, "c", 1000, "n2", "10.2.0.1");
    /* both targets scrape the same kubelet, which exposes node="n2"
       (honorLabels: the exposed label wins) */
    feed(k, "c", 1000, 1.0, "__name__=kubelet_node_name", "instance=10.2.0.1:10250",
         "job=kubelet", "node=n2", "metrics_path=/metrics", NULL);
    CHECK_INT(dec(k, "c", "10.2.0.1:10250", "n1"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "c", "10.2.0.1:10250", "n2"), RW_KUBELET_KEEP);
    /* both known (true and false): kubelet_node_name again decides */
    ready(k, "c", 2000, "n1", "true");
    ready(k, "c", 2000, "n2", "false");
    CHECK_INT(dec(k, "c", "10.2.0.1:10250", "n1"), RW_KUBELET_DROP_IP_REUSE);
    /* no kubelet_node_name: the most recently created node */
    ready(k, "c", 1000, "a1", "unknown");
    info(k, "c", 1000, "a1", "10.2.0.9");
    ready(k, "c", 1000, "a2", "unknown");
    info(k, "c", 1000, "a2", "10.2.0.9");
    feed(k, "c", 1000, 1700000000.0, "__name__=kube_node_created", "node=a1", NULL);
    feed(k, "c", 1000, 1700500000.0, "__name__=kube_node_created", "node=a2", NULL);
    CHECK_INT(dec(k, "c", "10.2.0.9:10250", "a1"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "c", "10.2.0.9:10250", "a2"), RW_KUBELET_KEEP);
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_kubelet_endpoints_json(k, "t", "c", NULL, &b);
    CHECK_MSG(strstr(b.p, "the kubelet at 10.2.0.1 reports node n2 (kubelet_node_name)") &&
                  strstr(b.p, "a2 was created or heartbeat more recently"),
              "%s", b.p);
    rw_buf_free(&b);
    rw_kubelet_free(k);
}

static void test_strict(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_STRICT);
    ready(k, "c", 1000, "ok", "true");
    info(k, "c", 1000, "ok", "10.3.0.1");
    ready(k, "c", 1000, "down", "false");
    info(k, "c", 1000, "down", "10.3.0.2");
    ready(k, "c", 1000, "lost", "unknown");
    info(k, "c", 1000, "lost", "10.3.0.3");
    info(k, "c", 1000, "nocond", "10.3.0.4");
    CHECK_INT(dec(k, "c", "10.3.0.1:10250", "ok"), RW_KUBELET_KEEP);
    CHECK_INT(dec(k, "c", "10.3.0.2:10250", "down"), RW_KUBELET_DROP_NOT_READY);
    CHECK_INT(dec(k, "c", "10.3.0.3:10250", "lost"), RW_KUBELET_DROP_NOT_READY);
    CHECK_INT(dec(k, "c", "10.3.0.4:10250", "nocond"), RW_KUBELET_KEEP);
    CHECK_INT(dec(k, "c", "10.3.0.9:10250", "unheard-of"), RW_KUBELET_KEEP);
    /* the node recovers: its series are kept again */
    ready(k, "c", 2000, "down", "true");
    CHECK_INT(dec(k, "c", "10.3.0.2:10250", "down"), RW_KUBELET_KEEP);
    /* an older sample does not overwrite a newer state */
    ready(k, "c", 1500, "down", "false");
    CHECK_INT(dec(k, "c", "10.3.0.2:10250", "down"), RW_KUBELET_KEEP);
    /* reconfigured to ip-reuse: a NotReady node with a unique IP is kept */
    rw_kubelet_opts o = {.mode = RW_KUBELET_IP_REUSE};
    rw_kubelet_reconfigure(k, &o);
    CHECK_INT(dec(k, "c", "10.3.0.3:10250", "lost"), RW_KUBELET_KEEP);
    rw_kubelet_free(k);
}

static void test_late_info_and_expiry(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_IP_REUSE);
    /* kubelet series first: kept while nothing is known */
    CHECK_INT(dec(k, "c", "10.4.0.1:10250", "old"), RW_KUBELET_KEEP);
    CHECK_INT(dec(k, "c", "10.4.0.1:10250", "new"), RW_KUBELET_KEEP);
    /* node information arrives: it applies from now on */
    ready(k, "c", 1000, "old", "unknown");
    info(k, "c", 1000, "old", "10.4.0.1");
    CHECK_INT(dec(k, "c", "10.4.0.1:10250", "old"), RW_KUBELET_KEEP); /* one claimant */
    ready(k, "c", 1000, "new", "true");
    info(k, "c", 1000, "new", "10.4.0.1");
    CHECK_INT(dec(k, "c", "10.4.0.1:10250", "old"), RW_KUBELET_DROP_IP_REUSE);
    /* node-old is deleted: KSM stops exporting it; once the cluster's KSM
       data is a node TTL newer, it no longer claims the IP */
    for (int64_t t = 1000 + MIN; t <= 1000 + 12 * MIN; t += MIN) {
        ready(k, "c", t, "new", "true");
        info(k, "c", t, "new", "10.4.0.1");
    }
    CHECK_INT(dec(k, "c", "10.4.0.1:10250", "old"), RW_KUBELET_KEEP);
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_kubelet_endpoints_json(k, NULL, NULL, NULL, &b);
    CHECK_MSG(strstr(b.p, "\"nodes\":1") != NULL, "%s", b.p);
    rw_buf_free(&b);
    rw_kubelet_free(k);
}

static void test_api_nodes(void)
{
    rw_kubelet *k = new_k(RW_KUBELET_IP_REUSE);
    rw_kubelet_api_node nodes[] = {
        {.name = "a", .ready = RW_NODE_READY_UNKNOWN, .internal_ip = "fd00::5"},
        {.name = "b", .ready = RW_NODE_READY_TRUE, .internal_ip = "fd00::5",
         .heartbeat_ms = 5000},
    };
    rw_kubelet_set_api_nodes(k, "t", "api", nodes, 2);
    CHECK_INT(dec(k, "api", "[fd00::5]:10250", "a"), RW_KUBELET_DROP_IP_REUSE);
    CHECK_INT(dec(k, "api", "[fd00::5]:10250", "b"), RW_KUBELET_KEEP);
    /* the next listing no longer has "a": it stops claiming */
    rw_kubelet_set_api_nodes(k, "t", "api", nodes + 1, 1);
    CHECK_INT(dec(k, "api", "[fd00::5]:10250", "a"), RW_KUBELET_KEEP);
    rw_kubelet_free(k);
}

static void test_selector(void)
{
    rw_in_selector s;
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_in_selector_parse("{job=\"kubelet\"}", &s, &e) == RW_OK);
    rw_regex_md *md = rw_regex_md_new(4);
    rw_label kub[] = {{"__name__", "x"}, {"job", "kubelet"}};
    rw_label other[] = {{"__name__", "x"}, {"job", "ksm"}};
    CHECK(rw_in_selector_matches(&s, md, kub, 2));
    CHECK(!rw_in_selector_matches(&s, md, other, 2));
    rw_in_selector_free(&s);
    CHECK(rw_in_selector_parse("up{job=~'kube.*', metrics_path!=\"/metrics/probes\", "
                               "x!~`a|b`}", &s, &e) == RW_OK);
    CHECK_INT(s.n, 4);
    rw_label up[] = {{"__name__", "up"}, {"job", "kubelet"}, {"metrics_path", "/metrics"}};
    CHECK(rw_in_selector_matches(&s, md, up, 3));
    up[2].value = "/metrics/probes";
    CHECK(!rw_in_selector_matches(&s, md, up, 3));
    rw_in_selector_free(&s);
    const char *bad[] = {"{job=kubelet}", "{job=\"x\"", "{=\"x\"}", "{job=~\"(\"}", "job{", "{a==\"b\"}",
                         "{a=\"\\q\"}", "{a=\"b\"} x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rw_err_init(&e);
        CHECK_MSG(rw_in_selector_parse(bad[i], &s, &e) != RW_OK, "accepted %s", bad[i]);
    }
    rw_regex_md_free(md);
}

int main(void)
{
    RUN(test_ip_reuse);
    RUN(test_false_vs_unknown_and_missing);
    RUN(test_tie_breaks);
    RUN(test_strict);
    RUN(test_late_info_and_expiry);
    RUN(test_api_nodes);
    RUN(test_selector);
    TEST_DONE();
}
