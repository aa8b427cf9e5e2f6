/* unittest.c - `rwgate test rules FILE...`: promtool's rule unit tests,
 * run in-process against a temporary store.
 *
 * The file format is promtool's (rule_files, evaluation_interval,
 * group_eval_order, tests: [interval, input_series, alert_rule_test,
 * promql_expr_test, external_labels, external_url, name, start_timestamp],
 * fuzzy_compare), read strictly: unknown fields are errors. Each test group
 * gets a fresh store in a temporary directory (on /dev/shm when there is
 * one: durability costs nothing there), loads its input series lazily up
 * to each evaluation time, and evaluates the rule groups with the same code
 * the server runs (group.c, alert.c) every evaluation_interval from the
 * start to the last eval_time. Alerts are compared at the evaluation at or
 * before each alert test's eval_time (firing alerts only), PromQL tests
 * after the last evaluation. Failures are reported in promtool's words
 * with the expected and the actual values; the exit code is 1 when any
 * test fails. */
#include "rules_int.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/log.h"
#include "core/matcher.h"
#include "core/timeutil.h"

#define MAX_INPUT_SAMPLES 50000000

/* ---- the file ---- */

typedef struct ut_series {
    char *series, *values;
} ut_series;

typedef struct ut_exp_alert {
    rw_label *labels, *ann;
    size_t nlabels, nann;
} ut_exp_alert;

typedef struct ut_alert_test {
    int64_t eval_time;
    char *alertname;
    ut_exp_alert *exp;
    size_t nexp;
} ut_alert_test;

typedef struct ut_sample {
    char *labels;
    double value;
    char *histogram;
} ut_sample;

typedef struct ut_promql_test {
    char *expr;
    int64_t eval_time;
    ut_sample *exp;
    size_t nexp;
} ut_promql_test;

typedef struct ut_group {
    int64_t interval;
    ut_series *in;
    size_t nin;
    ut_alert_test *at;
    size_t nat;
    ut_promql_test *pt;
    size_t npt;
    rw_label *ext;
    size_t next;
    char *external_url;
    char *name;
    char *start;
} ut_group;

typedef struct ut_file {
    char **rule_files;
    size_t nrule_files;
    int64_t eval_interval;
    char **order;
    size_t norder;
    ut_group *tests;
    size_t ntests;
    int fuzzy;
} ut_file;

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void ut_file_free(ut_file *f)
{
    free_strs(f->rule_files, f->nrule_files);
    free_strs(f->order, f->norder);
    for (size_t i = 0; i < f->ntests; i++) {
        ut_group *g = &f->tests[i];
        for (size_t k = 0; k < g->nin; k++) {
            free(g->in[k].series);
            free(g->in[k].values);
        }
        free(g->in);
        for (size_t k = 0; k < g->nat; k++) {
            free(g->at[k].alertname);
            for (size_t j = 0; j < g->at[k].nexp; j++) {
                rules_free_labels(g->at[k].exp[j].labels, g->at[k].exp[j].nlabels);
                rules_free_labels(g->at[k].exp[j].ann, g->at[k].exp[j].nann);
            }
            free(g->at[k].exp);
        }
        free(g->at);
        for (size_t k = 0; k < g->npt; k++) {
            free(g->pt[k].expr);
            for (size_t j = 0; j < g->pt[k].nexp; j++) {
                free(g->pt[k].exp[j].labels);
                free(g->pt[k].exp[j].histogram);
            }
            free(g->pt[k].exp);
        }
        free(g->pt);
        rules_free_labels(g->ext, g->next);
        free(g->external_url);
        free(g->name);
        free(g->start);
    }
    free(f->tests);
}

/* A YAML list of mappings, each walked with fn into elements of `size`. */
static void *read_list(ywalk *c, yaml_node_t *v, const char *what, const char *const *known,
                       yw_field_fn fn, size_t size, size_t *n)
{
    *n = 0;
    if (ydoc_is_null(v))
        return NULL;
    if (v->type != YAML_SEQUENCE_NODE) {
        yw_error(c, v, "%s: cannot unmarshal %s into a list", what, ydoc_kind(v));
        return NULL;
    }
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char *arr = calloc(cnt + 1, size);
    if (!arr)
        return NULL;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = ydoc_get(c->d, v->data.sequence.items.start[i]);
        *n = i + 1;
        if (ydoc_is_null(e))
            continue;
        if (e->type != YAML_MAPPING_NODE) {
            yw_error(c, e, "%s: cannot unmarshal %s into a mapping", what, ydoc_kind(e));
            continue;
        }
        yw_map(c, e, what, known, fn, arr + i * size);
    }
    return arr;
}

static void series_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_series *s = obj;
    char **dst = strcmp(key, "series") == 0 ? &s->series : &s->values;
    free(*dst);
    *dst = yw_string(c, v, key);
}

static void exp_alert_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_exp_alert *e = obj;
    if (strcmp(key, "exp_labels") == 0)
        yw_labels(c, v, key, &e->labels, &e->nlabels);
    else
        yw_labels(c, v, key, &e->ann, &e->nann);
}

static void alert_test_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_alert_test *t = obj;
    static const char *const exp_fields[] = {"exp_labels", "exp_annotations", NULL};
    if (strcmp(key, "eval_time") == 0)
        yw_duration(c, v, key, &t->eval_time, NULL);
    else if (strcmp(key, "alertname") == 0) {
        free(t->alertname);
        t->alertname = yw_string(c, v, key);
    } else
        t->exp = read_list(c, v, "exp_alerts", exp_fields, exp_alert_field, sizeof *t->exp,
                           &t->nexp);
}

static void sample_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_sample *s = obj;
    if (strcmp(key, "labels") == 0) {
        free(s->labels);
        s->labels = yw_string(c, v, key);
    } else if (strcmp(key, "value") == 0)
        yw_float(c, v, key, &s->value);
    else {
        free(s->histogram);
        s->histogram = yw_string(c, v, key);
    }
}

static void promql_test_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_promql_test *t = obj;
    static const char *const sample_fields[] = {"labels", "value", "histogram", NULL};
    if (strcmp(key, "eval_time") == 0)
        yw_duration(c, v, key, &t->eval_time, NULL);
    else if (strcmp(key, "expr") == 0) {
        free(t->expr);
        t->expr = yw_string(c, v, key);
    } else
        t->exp = read_list(c, v, "exp_samples", sample_fields, sample_field, sizeof *t->exp,
                           &t->nexp);
}

static void group_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_group *g = obj;
    static const char *const series_fields[] = {"series", "values", NULL};
    static const char *const alert_fields[] = {"eval_time", "alertname", "exp_alerts", NULL};
    static const char *const promql_fields[] = {"expr", "eval_time", "exp_samples", NULL};
    if (strcmp(key, "interval") == 0)
        yw_duration(c, v, key, &g->interval, NULL);
    else if (strcmp(key, "input_series") == 0)
        g->in = read_list(c, v, key, series_fields, series_field, sizeof *g->in, &g->nin);
    else if (strcmp(key, "alert_rule_test") == 0)
        g->at = read_list(c, v, key, alert_fields, alert_test_field, sizeof *g->at, &g->nat);
    else if (strcmp(key, "promql_expr_test") == 0)
        g->pt = read_list(c, v, key, promql_fields, promql_test_field, sizeof *g->pt, &g->npt);
    else if (strcmp(key, "external_labels") == 0)
        yw_labels(c, v, key, &g->ext, &g->next);
    else {
        char **dst = strcmp(key, "external_url") == 0 ? &g->external_url
                     : strcmp(key, "name") == 0       ? &g->name
                                                      : &g->start;
        free(*dst);
        *dst = yw_string(c, v, key);
    }
}

static void file_field(ywalk *c, void *obj, const char *key, yaml_node_t *v)
{
    ut_file *f = obj;
    static const char *const group_fields[] = {"interval", "input_series", "alert_rule_test",
                                               "promql_expr_test", "external_labels",
                                               "external_url", "name", "start_timestamp", NULL};
    if (strcmp(key, "rule_files") == 0)
        yw_strings(c, v, key, &f->rule_files, &f->nrule_files);
    else if (strcmp(key, "evaluation_interval") == 0)
        yw_duration(c, v, key, &f->eval_interval, NULL);
    else if (strcmp(key, "group_eval_order") == 0)
        yw_strings(c, v, key, &f->order, &f->norder);
    else if (strcmp(key, "fuzzy_compare") == 0)
        yw_bool(c, v, key, &f->fuzzy);
    else
        f->tests = read_list(c, v, "tests", group_fields, group_field, sizeof *f->tests,
                             &f->ntests);
}

static rw_rc read_test_file(const char *path, ut_file *f, rules_diag *diag)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rules_diag_add(diag, 0, "open %s: %s", path, strerror(errno));
        return RW_IO;
    }
    rw_buf b;
    rw_buf_init(&b, 256u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (rw_buf_append(&b, chunk, n) != RW_OK)
            break;
    fclose(fp);
    if (b.failed) {
        rw_buf_free(&b);
        rules_diag_add(diag, 0, "%s: file too large", path);
        return RW_LIMIT;
    }
    ydoc d;
    rw_err e;
    rw_err_init(&e);
    if (ydoc_load(&d, b.p ? b.p : "", b.len, NULL, &e) != RW_OK) {
        rw_buf_free(&b);
        rules_diag_add(diag, 0, "%s: %s", path, e.msg);
        return RW_BADREQ;
    }
    rw_buf_free(&b);
    ywalk c = {.path = path, .d = &d, .diag = diag};
    static const char *const fields[] = {"rule_files", "evaluation_interval", "group_eval_order",
                                         "tests", "fuzzy_compare", NULL};
    yaml_node_t *root = ydoc_root(&d);
    if (root && !ydoc_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            yw_error(&c, root, "cannot unmarshal %s into a unit test file", ydoc_kind(root));
        else
            yw_map(&c, root, "unit test file", fields, file_field, f);
    }
    ydoc_free(&d);
    return c.errors ? RW_BADREQ : RW_OK;
}

/* ---- Go-style text for messages ---- */

static void go_quote(rw_buf *b, const char *s)
{
    rw_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': rw_buf_puts(b, "\\\""); break;
        case '\\': rw_buf_puts(b, "\\\\"); break;
        case '\n': rw_buf_puts(b, "\\n"); break;
        case '\t': rw_buf_puts(b, "\\t"); break;
        case '\r': rw_buf_puts(b, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                rw_buf_printf(b, "\\x%02x", *p);
            else
                rw_buf_putc(b, (char)*p);
        }
    }
    rw_buf_putc(b, '"');
}

/* labels.Labels.String(): {a="b", c="d"} */
static void labels_str(rw_buf *b, const rw_label *l, size_t n)
{
    rw_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_puts(b, ", ");
        rw_buf_puts(b, l[i].name);
        rw_buf_putc(b, '=');
        go_quote(b, l[i].value);
    }
    rw_buf_putc(b, '}');
}

static void dur_str(int64_t ms, char *out, size_t cap) { rw_format_duration(ms, out, cap); }

/* Go's time.Duration.String(): "5m0s", "1h0m0s", "1.5s", "0s" */
static void go_dur_str(int64_t ms, char *out, size_t cap)
{
    const char *sign = ms < 0 ? "-" : "";
    uint64_t u = ms < 0 ? (uint64_t)(-(ms + 1)) + 1 : (uint64_t)ms;
    if (u == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (u < 1000) {
        snprintf(out, cap, "%s%llums", sign, (unsigned long long)u);
        return;
    }
    uint64_t h = u / 3600000, m = u / 60000 % 60, s = u / 1000 % 60, f = u % 1000;
    char sec[32];
    if (f) {
        snprintf(sec, sizeof sec, "%llu.%03llu", (unsigned long long)s, (unsigned long long)f);
        size_t n = strlen(sec);
        while (sec[n - 1] == '0')
            sec[--n] = '\0';
    } else {
        snprintf(sec, sizeof sec, "%llu", (unsigned long long)s);
    }
    if (h)
        snprintf(out, cap, "%s%lluh%llum%ss", sign, (unsigned long long)h, (unsigned long long)m, sec);
    else if (m)
        snprintf(out, cap, "%s%llum%ss", sign, (unsigned long long)m, sec);
    else
        snprintf(out, cap, "%s%ss", sign, sec);
}

/* strconv.FormatFloat(v, 'E', -1, 64) */
static void float_E(double v, char *out, size_t cap)
{
    rules_fmt_float_e(v, out, cap);
    for (char *p = out; *p; p++)
        if (*p == 'e')
            *p = 'E';
}

/* ---- comparing ---- */

typedef struct la {
    const rw_label *l, *a;
    size_t nl, na;
} la;

static int la_cmp(const void *x, const void *y)
{
    const la *p = x, *q = y;
    int c = rw_labels_cmp(p->l, p->nl, q->l, q->nl);
    return c ? c : rw_labels_cmp(p->a, p->na, q->a, q->na);
}

static void la_list_str(rw_buf *b, const la *v, size_t n, const char *indent)
{
    if (!n) {
        rw_buf_puts(b, "[]");
        return;
    }
    rw_buf_puts(b, "[\n");
    for (size_t i = 0; i < n; i++) {
        rw_buf_printf(b, "%s%zu:\n%s  Labels:", indent, i, indent);
        labels_str(b, v[i].l, v[i].nl);
        rw_buf_printf(b, "\n%s  Annotations:", indent);
        labels_str(b, v[i].a, v[i].na);
        rw_buf_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    rw_buf_printf(b, "%s]", indent);
}

static int float_eq(double a, double b, int fuzzy)
{
    if (a == b)
        return 1;
    return fuzzy && (nextafter(a, -INFINITY) == b || nextafter(a, INFINITY) == b);
}

typedef struct ps {
    rw_label *l;
    size_t n;
    double v;
} ps;

static int ps_cmp(const void *x, const void *y)
{
    const ps *a = x, *b = y;
    return rw_labels_cmp(a->l, a->n, b->l, b->n);
}

static void ps_list_str(rw_buf *b, const ps *v, size_t n)
{
    if (!n) {
        rw_buf_puts(b, "nil");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char f[40];
        float_E(v[i].v, f, sizeof f);
        if (i)
            rw_buf_puts(b, ", ");
        labels_str(b, v[i].l, v[i].n);
        rw_buf_printf(b, " %s", f);
    }
}

/* ---- running one test group ---- */

typedef struct input {
    rw_label *labels;
    size_t nlabels;
    rw_sample *s;
    size_t n, next;
} input;

typedef struct run {
    const char *file;
    ut_file *f;
    ut_group *tg;
    const char *testname;
    rules_diag *errs;
    rw_store *store;
    rw_engine *engine;
    rules_ctx ctx;
    rw_group **groups;
    size_t ngroups;
    input *in;
    size_t nin;
} run;

static char *temp_dir(void)
{
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!bases[i] || access(bases[i], W_OK) != 0)
            continue;
        char *p = malloc(strlen(bases[i]) + 32);
        if (!p)
            return NULL;
        sprintf(p, "%s/rwgate-test-XXXXXX", bases[i]);
        if (mkdtemp(p))
            return p;
        free(p);
    }
    return NULL;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *c = malloc(strlen(path) + strlen(e->d_name) + 2);
            if (!c)
                continue;
            sprintf(c, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(c, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(c);
            else
                unlink(c);
            free(c);
        }
        closedir(d);
    }
    rmdir(path);
}

static int load_inputs(run *r, int64_t start)
{
    ut_group *tg = r->tg;
    r->in = calloc(tg->nin + 1, sizeof *r->in);
    if (!r->in)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < tg->nin; i++) {
        rw_err e;
        rw_err_init(&e);
        rw_label *l;
        size_t n;
        const char *series = tg->in[i].series ? tg->in[i].series : "";
        if (rules_parse_metric(series, NULL, &l, &n, &e) != RW_OK) {
            rules_diag_add(r->errs, 0, "%s", e.msg);
            return -1;
        }
        rules_seq q;
        /* columns as promtool counts them, in "SERIES VALUES" */
        if (rules_parse_values(tg->in[i].values ? tg->in[i].values : "", (int)strlen(series) + 1,
                               MAX_INPUT_SAMPLES - total, &q, &e) != RW_OK) {
            rules_free_labels(l, n);
            rules_diag_add(r->errs, 0, "%s", e.msg);
            return -1;
        }
        total += q.n;
        /* a series given twice: the later definition wins */
        input *in = NULL;
        for (size_t k = 0; k < r->nin; k++)
            if (rw_labels_equal(r->in[k].labels, r->in[k].nlabels, l, n))
                in = &r->in[k];
        if (in) {
            rules_free_labels(in->labels, in->nlabels);
            free(in->s);
        } else {
            in = &r->in[r->nin++];
        }
        memset(in, 0, sizeof *in);
        in->labels = l;
        in->nlabels = n;
        in->s = malloc((q.n ? q.n : 1) * sizeof *in->s);
        if (!in->s) {
            free(q.v);
            return -1;
        }
        for (size_t k = 0; k < q.n; k++)
            if (q.v[k].kind != RULES_SEQ_NONE)
                in->s[in->n++] = (rw_sample){start + (int64_t)k * tg->interval, q.v[k].v};
        free(q.v);
    }
    return 0;
}

/* Appends every input sample at or before t not appended yet. */
static int append_till(run *r, int64_t t)
{
    rw_append_series *b = calloc(r->nin + 1, sizeof *b);
    if (!b)
        return -1;
    size_t nb = 0;
    for (size_t i = 0; i < r->nin; i++) {
        input *in = &r->in[i];
        size_t k = in->next;
        while (k < in->n && in->s[k].t <= t)
            k++;
        if (k == in->next)
            continue;
        b[nb++] = (rw_append_series){in->labels, in->nlabels, rw_labels_hash(in->labels, in->nlabels),
                                     in->s + in->next, k - in->next};
        in->next = k;
    }
    int rc = 0;
    if (nb) {
        rw_append_result res;
        memset(&res, 0, sizeof res);
        rw_err e;
        rw_err_init(&e);
        if (rw_store_append(r->store, b, nb, &res, &e) != RW_OK) {
            rules_diag_add(r->errs, 0, "loading input series: %s", e.msg);
            rc = -1;
        }
    }
    free(b);
    return rc;
}

static int order_of(const ut_file *f, const char *name)
{
    for (size_t i = 0; i < f->norder; i++)
        if (strcmp(f->order[i], name) == 0)
            return (int)i;
    return 0;
}

static int load_rules(run *r, char **files, size_t nfiles)
{
    rules_diag d = {0};
    int rc = 0;
    for (size_t i = 0; i < nfiles && !rc; i++) {
        rw_rule_file *rf = NULL;
        if (rules_file_load(files[i], &d, &rf) != RW_OK) {
            for (size_t k = 0; k < d.n; k++)
                if (!d.is_warning[k])
                    rules_diag_add(r->errs, 0, "%s", d.msg[k]);
            rc = -1;
            break;
        }
        rw_group **ng = realloc(r->groups, (r->ngroups + rf->ngroups + 1) * sizeof *ng);
        if (!ng) {
            rules_file_free(rf);
            rc = -1;
            break;
        }
        r->groups = ng;
        for (size_t k = 0; k < rf->ngroups; k++) {
            rw_group_def *def = malloc(sizeof *def);
            if (!def)
                break;
            *def = rf->groups[k];
            memset(&rf->groups[k], 0, sizeof rf->groups[k]);
            rw_group *g = rules_group_new(def, r->tg->interval, &r->ctx);
            if (!g) {
                rules_group_def_free(def);
                free(def);
                break;
            }
            for (size_t j = 0; j < g->nrules; j++)
                g->rules[j].restored = 1;
            r->groups[r->ngroups++] = g;
        }
        rules_file_free(rf);
    }
    rules_diag_free(&d);
    /* stable sort by group_eval_order (groups not listed count as first) */
    for (size_t i = 1; i < r->ngroups; i++) {
        rw_group *g = r->groups[i];
        int o = order_of(r->f, g->def->name);
        size_t j = i;
        while (j > 0 && order_of(r->f, r->groups[j - 1]->def->name) > o) {
            r->groups[j] = r->groups[j - 1];
            j--;
        }
        r->groups[j] = g;
    }
    return rc;
}

static int64_t cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i64_int(const void *a, const void *b) { return (int)cmp_i64(a, b); }

static void check_alerts(run *r, int64_t t, rw_arena *a)
{
    ut_group *tg = r->tg;
    for (size_t i = 0; i < tg->nat; i++) {
        ut_alert_test *at = &tg->at[i];
        if (at->eval_time != t)
            continue;
        /* firing alerts of every rule with this name, in every group */
        la *got = NULL;
        size_t ngot = 0, capgot = 0;
        for (size_t gi = 0; gi < r->ngroups; gi++) {
            rw_group *g = r->groups[gi];
            for (size_t k = 0; k < g->nrules; k++) {
                rule_state *rs = &g->rules[k];
                if (rs->def->kind != RULE_ALERT || strcmp(rs->def->name, at->alertname) != 0)
                    continue;
                for (size_t j = 0; j < rs->nalerts; j++) {
                    rw_alert *al = rs->alerts[j];
                    if (al->state != ALERT_FIRING)
                        continue;
                    if (ngot == capgot) {
                        size_t nc = capgot ? 2 * capgot : 8;
                        la *ng = rw_arena_realloc(a, got, capgot * sizeof *got, nc * sizeof *got);
                        if (!ng)
                            return;
                        got = ng;
                        capgot = nc;
                    }
                    got[ngot++] = (la){al->labels, al->annotations, al->nlabels, al->nannotations};
                }
            }
        }
        la *exp = rw_arena_calloc(a, at->nexp + 1, sizeof *exp);
        if (!exp)
            return;
        for (size_t j = 0; j < at->nexp; j++) {
            ut_exp_alert *e = &at->exp[j];
            lbuild b;
            if (lb_init(&b, a, e->labels, e->nlabels, 1) != 0)
                return;
            /* the rule adds alertname; the test does not write it */
            int found = 0;
            for (size_t k = 0; k < b.n; k++)
                if (strcmp(b.l[k].name, "alertname") == 0) {
                    b.l[k].value = at->alertname;
                    found = 1;
                }
            if (!found) {
                b.l[b.n].name = "alertname";
                b.l[b.n].value = at->alertname;
                b.n++;
            }
            lb_sort(&b);
            exp[j] = (la){b.l, e->ann, b.n, e->nann};
        }
        if (ngot)
            qsort(got, ngot, sizeof *got, la_cmp);
        if (at->nexp)
            qsort(exp, at->nexp, sizeof *exp, la_cmp);
        int same = ngot == at->nexp;
        for (size_t j = 0; same && j < ngot; j++)
            same = la_cmp(&got[j], &exp[j]) == 0;
        if (same)
            continue;
        rw_buf m;
        rw_buf_init(&m, 0);
        char d[64];
        dur_str(at->eval_time, d, sizeof d);
        if (tg->name && *tg->name)
            rw_buf_printf(&m, "    name: %s,\n", tg->name);
        rw_buf_printf(&m, "    alertname: %s, time: %s, \n        exp:", at->alertname, d);
        la_list_str(&m, exp, at->nexp, "            ");
        rw_buf_puts(&m, ", \n        got:");
        la_list_str(&m, got, ngot, "            ");
        rules_diag_add(r->errs, 0, "%s", m.p);
        rw_buf_free(&m);
    }
}

static void check_promql(run *r, int64_t mint, rw_arena *a)
{
    ut_group *tg = r->tg;
    for (size_t i = 0; i < tg->npt; i++) {
        ut_promql_test *pt = &tg->pt[i];
        char d[64];
        dur_str(pt->eval_time, d, sizeof d);
        rw_buf q;
        rw_buf_init(&q, 0);
        go_quote(&q, pt->expr ? pt->expr : "");
        rw_err e;
        rw_err_init(&e);
        rw_result res;
        memset(&res, 0, sizeof res);
        rw_promql_expr *x = rw_promql_prepare(pt->expr ? pt->expr : "", &e);
        rw_rc rc = x ? rw_engine_eval_instant(r->engine, x, mint + pt->eval_time, NULL, a, &res, &e)
                     : RW_BADREQ;
        if (x)
            rw_promql_expr_free(x);
        if (rc == RW_OK && res.type != RW_VAL_VECTOR && res.type != RW_VAL_SCALAR) {
            rc = RW_EXEC;
            snprintf(e.msg, sizeof e.msg, "rule result is not a vector or scalar");
        }
        if (rc != RW_OK) {
            rules_diag_add(r->errs, 0, "    expr: %s, time: %s, err: %s", q.p, d, e.msg);
            rw_buf_free(&q);
            continue;
        }
        size_t ngot = rules_result_len(&res);
        ps *got = rw_arena_calloc(a, ngot + 1, sizeof *got);
        ps *exp = rw_arena_calloc(a, pt->nexp + 1, sizeof *exp);
        if (!got || !exp) {
            rw_buf_free(&q);
            return;
        }
        for (size_t k = 0; k < ngot; k++) {
            const rw_label *l;
            rules_result_sample(&res, k, &l, &got[k].n, &got[k].v);
            got[k].l = (rw_label *)l;
        }
        int bad = 0;
        for (size_t k = 0; k < pt->nexp && !bad; k++) {
            ut_sample *s = &pt->exp[k];
            rw_label *l;
            size_t n;
            rw_err le;
            rw_err_init(&le);
            const char *lt = s->labels ? s->labels : "", *end = NULL;
            if (rules_parse_metric(lt, &end, &l, &n, &le) == RW_OK && *end) {
                rules_free_labels(l, n);
                rw_err_set(&le, RW_BADREQ, "parse error: unexpected text after the metric");
            } else if (le.code == RW_OK && s->histogram && *s->histogram) {
                rules_free_labels(l, n);
                rw_err_set(&le, RW_UNSUPPORTED, "native histograms are not supported");
            }
            if (le.code != RW_OK) {
                rw_buf lq;
                rw_buf_init(&lq, 0);
                go_quote(&lq, lt);
                rules_diag_add(r->errs, 0, "    expr: %s, time: %s, err: labels %s: %s", q.p, d,
                               lq.p, le.msg);
                rw_buf_free(&lq);
                bad = 1;
                break;
            }
            /* copy into the arena so freeing is one call */
            rw_label *al = rw_arena_alloc(a, (n ? n : 1) * sizeof *al);
            for (size_t j = 0; al && j < n; j++) {
                al[j].name = rw_arena_strdup(a, l[j].name);
                al[j].value = rw_arena_strdup(a, l[j].value);
            }
            rules_free_labels(l, n);
            exp[k] = (ps){al, n, s->value};
        }
        if (bad) {
            rw_buf_free(&q);
            continue;
        }
        qsort(got, ngot, sizeof *got, ps_cmp);
        qsort(exp, pt->nexp, sizeof *exp, ps_cmp);
        int same = ngot == pt->nexp;
        for (size_t k = 0; same && k < ngot; k++)
            same = rw_labels_equal(got[k].l, got[k].n, exp[k].l, exp[k].n) &&
                   float_eq(exp[k].v, got[k].v, r->f->fuzzy);
        if (!same) {
            rw_buf m;
            rw_buf_init(&m, 0);
            rw_buf_printf(&m, "    expr: %s, time: %s,\n        exp: ", q.p, d);
            ps_list_str(&m, exp, pt->nexp);
            rw_buf_puts(&m, "\n        got: ");
            ps_list_str(&m, got, ngot);
            rules_diag_add(r->errs, 0, "%s", m.p);
            rw_buf_free(&m);
        }
        rw_buf_free(&q);
    }
}

static void run_group(const char *file, ut_file *f, ut_group *tg, char **rule_files,
                      size_t nrule_files, rules_diag *errs)
{
    run r = {.file = file, .f = f, .tg = tg, .errs = errs};
    int64_t eval_iv = f->eval_interval;
    if (tg->interval <= 0)
        tg->interval = eval_iv;
    for (size_t i = 0; i < tg->nat; i++)
        if (!tg->at[i].alertname || !*tg->at[i].alertname) {
            char d[64];
            dur_str(tg->at[i].eval_time, d, sizeof d);
            rules_diag_add(errs, 0,
                           "an item under alert_rule_test misses required attribute alertname at "
                           "eval_time %s%s%s%s",
                           d, tg->name && *tg->name ? " (in TestGroup " : "",
                           tg->name && *tg->name ? tg->name : "", tg->name && *tg->name ? ")" : "");
            return;
        }
    int64_t mint = 0;
    if (tg->start && *tg->start) {
        rw_err e;
        rw_err_init(&e);
        if (rw_parse_api_time(tg->start, &mint, &e) != RW_OK) {
            rules_diag_add(errs, 0, "start_timestamp: %s", e.msg);
            return;
        }
    }
    char *dir = temp_dir();
    if (!dir) {
        rules_diag_add(errs, 0, "cannot create a temporary directory: %s", strerror(errno));
        return;
    }
    rw_arena *a = NULL;
    rw_store_opts so = {.dir = dir, .nshards = 1, .retention_ms = 0,
                        .checkpoint_interval_ms = 24LL * 3600 * 1000};
    rw_err e;
    rw_err_init(&e);
    r.store = rw_store_open(&so, &e);
    if (!r.store) {
        rules_diag_add(errs, 0, "opening a temporary store: %s", e.msg);
        goto out;
    }
    rw_querier sq = rw_store_querier(r.store);
    rw_engine_opts eo = {.lookback_ms = 5 * 60 * 1000, .default_subquery_step_ms = eval_iv};
    r.engine = rw_engine_new(&sq, &eo);
    if (!r.engine)
        goto out;
    r.ctx.engine = r.engine;
    r.ctx.appender = rw_store_appender(r.store);
    r.ctx.querier = sq;
    r.ctx.outage_tolerance_ms = 3600000;
    r.ctx.for_grace_period_ms = 600000;
    r.ctx.resend_delay_ms = 60000;
    r.ctx.quiet = 1;
    pthread_mutex_init(&r.ctx.env_mu, NULL);
    r.ctx.env = rules_env_new(tg->ext, tg->next, tg->external_url ? tg->external_url : "", 0);
    if (!r.ctx.env)
        goto out;
    if (load_inputs(&r, mint) != 0 || load_rules(&r, rule_files, nrule_files) != 0)
        goto out;

    int64_t maxd = 0;
    int64_t *times = calloc(tg->nat + 1, sizeof *times);
    size_t ntimes = 0;
    for (size_t i = 0; i < tg->nat; i++) {
        if (tg->at[i].eval_time > maxd)
            maxd = tg->at[i].eval_time;
        if (times)
            times[ntimes++] = tg->at[i].eval_time;
    }
    for (size_t i = 0; i < tg->npt; i++)
        if (tg->pt[i].eval_time > maxd)
            maxd = tg->pt[i].eval_time;
    if (ntimes)
        qsort(times, ntimes, sizeof *times, cmp_i64_int);
    a = rw_arena_new(0, 0);
    size_t curr = 0;
    for (int64_t ts = mint; ts <= mint + maxd && a; ts += eval_iv) {
        if (append_till(&r, ts) != 0)
            break;
        size_t before = errs->nerrors;
        for (size_t gi = 0; gi < r.ngroups; gi++) {
            rw_group *g = r.groups[gi];
            rules_group_eval(g, ts);
            for (size_t k = 0; k < g->nrules; k++)
                if (g->rules[k].health == HEALTH_ERR) {
                    char d[64];
                    go_dur_str(ts, d, sizeof d);
                    rules_diag_add(errs, 0, "    rule: %s, time: %s, err: %s", g->rules[k].def->name,
                                   d, g->rules[k].last_error ? g->rules[k].last_error : "");
                }
        }
        if (errs->nerrors > before)
            break;
        while (curr < ntimes && ts - mint <= times[curr] && times[curr] < ts + eval_iv - mint) {
            int64_t t = times[curr];
            check_alerts(&r, t, a);
            while (curr < ntimes && times[curr] == t)
                curr++;
        }
        rw_arena_reset(a);
    }
    free(times);
    if (a && errs->nerrors == 0)
        check_promql(&r, mint, a);
    else if (a) {
        /* promtool stops at evaluation errors only; test failures go on */
        int eval_err = 0;
        for (size_t i = 0; i < errs->n; i++)
            if (strncmp(errs->msg[i], "    rule: ", 10) == 0)
                eval_err = 1;
        if (!eval_err)
            check_promql(&r, mint, a);
    }
out:
    rw_arena_free(a);
    for (size_t i = 0; i < r.ngroups; i++)
        rules_group_free(r.groups[i]);
    free(r.groups);
    for (size_t i = 0; i < r.nin; i++) {
        rules_free_labels(r.in[i].labels, r.in[i].nlabels);
        free(r.in[i].s);
    }
    free(r.in);
    if (r.ctx.env) {
        rules_env_unref(r.ctx.env);
        pthread_mutex_destroy(&r.ctx.env_mu);
    }
    rw_engine_free(r.engine);
    if (r.store)
        rw_store_close(r.store);
    rm_tree(dir);
    free(dir);
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    return strndup(path, s == path ? 1 : (size_t)(s - path));
}

/* 0 passed, 1 failed */
static int test_file(const char *path, const rw_matcher *run_re)
{
    printf("Unit Testing:  %s\n", path);
    fflush(stdout);
    rules_diag errs = {0};
    ut_file f;
    f.eval_interval = 0;
    if (read_test_file(path, &f, &errs) == RW_OK) {
        if (f.eval_interval <= 0)
            f.eval_interval = 60000;
        char *dir = dir_of(path);
        char **files = NULL;
        size_t nfiles = 0;
        rw_err e;
        rw_err_init(&e);
        /* each pattern separately, to warn about the ones that match nothing */
        for (size_t i = 0; i < f.nrule_files; i++) {
            char **m = NULL;
            size_t nm = 0;
            const char *p = f.rule_files[i];
            if (rules_glob(&p, 1, dir, &m, &nm, &e) != RW_OK) {
                rules_diag_add(&errs, 0, "%s", e.msg);
                break;
            }
            if (!nm)
                fprintf(stderr, "  WARNING: no file match pattern %s\n", p);
            char **nf = realloc(files, (nfiles + nm + 1) * sizeof *nf);
            if (nf) {
                files = nf;
                for (size_t k = 0; k < nm; k++)
                    files[nfiles++] = m[k];
            }
            free(m);
        }
        free(dir);
        for (size_t i = 0; i < f.norder && !errs.nerrors; i++)
            for (size_t k = 0; k < i; k++)
                if (strcmp(f.order[i], f.order[k]) == 0) {
                    rules_diag_add(&errs, 0, "group name repeated in evaluation order: %s",
                                   f.order[i]);
                    break;
                }
        for (size_t i = 0; i < f.ntests && !errs.nerrors; i++) {
            ut_group *tg = &f.tests[i];
            if (run_re && !rw_matcher_matches(run_re, tg->name ? tg->name : ""))
                continue;
            rules_diag ge = {0};
            run_group(path, &f, tg, files, nfiles, &ge);
            for (size_t k = 0; k < ge.n; k++)
                rules_diag_add(&errs, ge.is_warning[k], "%s", ge.msg[k]);
            rules_diag_free(&ge);
        }
        for (size_t i = 0; i < nfiles; i++)
            free(files[i]);
        free(files);
    }
    ut_file_free(&f);
    int failed = errs.nerrors > 0;
    if (failed) {
        fprintf(stderr, "  FAILED:\n");
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msg[i]);
            fflush(stderr);
            printf("\n");
            fflush(stdout);
        }
    } else {
        printf("  SUCCESS\n");
    }
    printf("\n");
    fflush(stdout);
    rules_diag_free(&errs);
    return failed;
}

int rw_rules_test_main(int argc, char **argv)
{
    rw_buf re;
    rw_buf_init(&re, 0);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t nfiles = 0;
    if (!files)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strncmp(a, "--run=", 6) == 0)
            v = a + 6;
        else if (strcmp(a, "--run") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "rwgate test rules: unknown flag %s\n", a);
            free(files);
            rw_buf_free(&re);
            return 2;
        }
        if (v) {
            rw_buf_puts(&re, re.len ? "|" : "");
            rw_buf_puts(&re, v);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    rw_matcher run_re;
    int have_re = 0;
    if (re.len) {
        rw_buf pat;
        rw_buf_init(&pat, 0);
        rw_buf_printf(&pat, ".*(?:%s).*", re.p);
        rw_err e;
        rw_err_init(&e);
        if (rw_matcher_init(&run_re, RW_MATCH_RE, "name", pat.p, &e) != RW_OK) {
            fprintf(stderr, "rwgate test rules: --run: %s\n", e.msg);
            rw_buf_free(&pat);
            rw_buf_free(&re);
            free(files);
            return 2;
        }
        rw_buf_free(&pat);
        have_re = 1;
    }
    int failed = 0;
    for (size_t i = 0; i < nfiles; i++)
        failed |= test_file(files[i], have_re ? &run_re : NULL);
    if (have_re)
        rw_matcher_free(&run_re);
    rw_buf_free(&re);
    free(files);
    return failed ? 1 : 0;
}
