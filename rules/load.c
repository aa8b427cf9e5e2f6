/* load.c - rule files: YAML (libyaml's node tree, so every error has a line
 * and column) into validated rule-group definitions.
 *
 * Two passes, as Prometheus' rulefmt: first the document's shape (unknown
 * fields, wrong types and duplicate keys are errors, as promtool without
 * --ignore-unknown-fields); only a well-shaped file is then validated
 * (group names, record/alert/expr, names, durations on recording rules),
 * expressions are prepared once with rw_promql_prepare and alert label and
 * annotation templates parsed with rw_tmpl_parse. Every problem goes to the
 * diagnostics list with file, position, group and rule, so `check rules`
 * can print them all and the server can log them. */
#include "rules_int.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/timeutil.h"

#define MAX_RULE_FILE_BYTES (64u << 20)

typedef ywalk lctx;

#define SHAPE_ERR(c, node, ...) yw_error((c), (node), __VA_ARGS__)

/* ---- freeing ---- */

static void free_labels(rw_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].name);
        free((char *)l[i].value);
    }
    free(l);
}

void rules_rule_def_free(rw_rule_def *r)
{
    free(r->name);
    free(r->expr_text);
    if (r->expr)
        rw_promql_expr_free(r->expr);
    if (r->label_tmpl)
        for (size_t i = 0; i < r->nlabels; i++)
            rw_tmpl_free(r->label_tmpl[i]);
    if (r->ann_tmpl)
        for (size_t i = 0; i < r->nannotations; i++)
            rw_tmpl_free(r->ann_tmpl[i]);
    free(r->label_tmpl);
    free(r->ann_tmpl);
    free_labels(r->labels, r->nlabels);
    free_labels(r->annotations, r->nannotations);
    memset(r, 0, sizeof *r);
}

void rules_group_def_free(rw_group_def *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nrules; i++)
        rules_rule_def_free(&g->rules[i]);
    free(g->rules);
    free(g->file);
    free(g->name);
    free_labels(g->labels, g->nlabels);
    memset(g, 0, sizeof *g);
}

void rules_file_free(rw_rule_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ngroups; i++)
        rules_group_def_free(&f->groups[i]);
    free(f->groups);
    free(f->path);
    free(f);
}

/* ---- shape: typed field readers ---- */

/* ---- shape: rules and groups ---- */

typedef struct rule_nodes {
    rw_rule_def *r;
    yaml_node_t *node, *record, *alert, *expr;
    char *record_s, *alert_s;
    int has_for, has_kff;
} rule_nodes;

static void rule_field(lctx *c, void *obj, const char *key, yaml_node_t *v)
{
    rule_nodes *rn = obj;
    rw_rule_def *r = rn->r;
    if (strcmp(key, "record") == 0) {
        rn->record = v;
        free(rn->record_s);
        rn->record_s = yw_string(c, v, key);
    } else if (strcmp(key, "alert") == 0) {
        rn->alert = v;
        free(rn->alert_s);
        rn->alert_s = yw_string(c, v, key);
    } else if (strcmp(key, "expr") == 0) {
        rn->expr = v;
        free(r->expr_text);
        r->expr_text = yw_string(c, v, key);
    } else if (strcmp(key, "for") == 0) {
        yw_duration(c, v, key, &r->for_ms, &rn->has_for);
    } else if (strcmp(key, "keep_firing_for") == 0) {
        yw_duration(c, v, key, &r->keep_firing_for_ms, &rn->has_kff);
    } else if (strcmp(key, "labels") == 0) {
        yw_labels(c, v, key, &r->labels, &r->nlabels);
    } else if (strcmp(key, "annotations") == 0) {
        yw_labels(c, v, key, &r->annotations, &r->nannotations);
    }
}

typedef struct group_nodes {
    rw_group_def *g;
    yaml_node_t *node;
    rule_nodes *rules;
    size_t nrules;
} group_nodes;

static const char *const rule_fields[] = {"record", "alert", "expr", "for", "keep_firing_for",
                                          "labels", "annotations", NULL};

static void group_field(lctx *c, void *obj, const char *key, yaml_node_t *v)
{
    group_nodes *gn = obj;
    rw_group_def *g = gn->g;
    if (strcmp(key, "name") == 0) {
        free(g->name);
        g->name = yw_string(c, v, key);
    } else if (strcmp(key, "interval") == 0) {
        yw_duration(c, v, key, &g->interval_ms, NULL);
    } else if (strcmp(key, "query_offset") == 0) {
        yw_duration(c, v, key, &g->query_offset_ms, &g->has_query_offset);
    } else if (strcmp(key, "limit") == 0) {
        yw_int(c, v, key, &g->limit);
    } else if (strcmp(key, "labels") == 0) {
        yw_labels(c, v, key, &g->labels, &g->nlabels);
    } else if (strcmp(key, "rules") == 0) {
        if (ydoc_is_null(v))
            return;
        if (v->type != YAML_SEQUENCE_NODE) {
            SHAPE_ERR(c, v, "rules: cannot unmarshal %s into a list of rules", ydoc_kind(v));
            return;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        gn->rules = calloc(n ? n : 1, sizeof *gn->rules);
        g->rules = calloc(n ? n : 1, sizeof *g->rules);
        if (!gn->rules || !g->rules)
            return;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *rv = ydoc_get(c->d, v->data.sequence.items.start[i]);
            rule_nodes *rn = &gn->rules[i];
            rn->r = &g->rules[i];
            rn->node = rv;
            rn->r->line = ydoc_line(rv);
            g->nrules = gn->nrules = i + 1;
            if (ydoc_is_null(rv))
                continue; /* an empty rule: "one of record or alert must be set" later */
            if (rv->type != YAML_MAPPING_NODE) {
                SHAPE_ERR(c, rv, "cannot unmarshal %s into a rule", ydoc_kind(rv));
                continue;
            }
            yw_map(c, rv, "rule", rule_fields, rule_field, rn);
        }
    }
}

static const char *const group_fields[] = {"name", "interval", "query_offset", "limit",
                                           "rules", "labels", NULL};
static const char *const top_fields[] = {"groups", NULL};

typedef struct file_nodes {
    group_nodes *groups;
    size_t ngroups;
    rw_rule_file *f;
} file_nodes;

static void top_field(lctx *c, void *obj, const char *key, yaml_node_t *v)
{
    file_nodes *fn = obj;
    if (ydoc_is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        SHAPE_ERR(c, v, "groups: cannot unmarshal %s into a list of groups", ydoc_kind(v));
        return;
    }
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    fn->groups = calloc(n ? n : 1, sizeof *fn->groups);
    fn->f->groups = calloc(n ? n : 1, sizeof *fn->f->groups);
    if (!fn->groups || !fn->f->groups)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *gv = ydoc_get(c->d, v->data.sequence.items.start[i]);
        group_nodes *gn = &fn->groups[i];
        gn->g = &fn->f->groups[i];
        gn->node = gv;
        gn->g->line = ydoc_line(gv);
        fn->ngroups = fn->f->ngroups = i + 1;
        if (ydoc_is_null(gv))
            continue;
        if (gv->type != YAML_MAPPING_NODE) {
            SHAPE_ERR(c, gv, "cannot unmarshal %s into a rule group", ydoc_kind(gv));
            continue;
        }
        yw_map(c, gv, "rule group", group_fields, group_field, gn);
    }
}

/* ---- validation ---- */

static int has_template(const char *s) { return strstr(s, "{{") != NULL; }

#define RULE_ERR(c, g, i, rn_, node, ...)                                               \
    do {                                                                                  \
        char m_[1200];                                                                    \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                             \
        rules_diag_add((c)->diag, 0, "%s:%d:%d: group \"%s\", rule %zu, \"%s\": %s",      \
                       (c)->path, ydoc_line(node), ydoc_col(node), (g)->name, (i) + 1,    \
                       (rn_), m_);                                                        \
    } while (0)

static int valid_name(const char *s) { return s && *s && rw_utf8_valid(s, strlen(s)); }

/* Overlays rule labels on group labels (rule wins), both sorted. */
static int merge_labels(const rw_label *g, size_t ng, rw_label *r, size_t nr, rw_label **out,
                        size_t *nout, unsigned char **from_group)
{
    rw_label *m = calloc(ng + nr + 1, sizeof *m);
    unsigned char *fg = calloc(ng + nr + 1, 1);
    if (!m || !fg) {
        free(m);
        free(fg);
        return -1;
    }
    size_t n = 0, i = 0, j = 0;
    while (i < ng || j < nr) {
        int cmp = i >= ng ? 1 : j >= nr ? -1 : strcmp(g[i].name, r[j].name);
        const rw_label *src;
        if (cmp < 0) {
            src = &g[i++];
            fg[n] = 1;
        } else {
            if (cmp == 0)
                i++;
            src = &r[j++];
        }
        m[n].name = strdup(src->name);
        m[n].value = strdup(src->value);
        n++;
    }
    *out = m;
    *nout = n;
    *from_group = fg;
    return 0;
}

static void validate_rule(lctx *c, rw_group_def *g, size_t i, rule_nodes *rn)
{
    rw_rule_def *r = rn->r;
    const char *rec = rn->record_s ? rn->record_s : "";
    const char *al = rn->alert_s ? rn->alert_s : "";
    const char *rname = *al ? al : rec;
    yaml_node_t *pos = rn->record ? rn->record : rn->alert ? rn->alert : rn->node;
    size_t before = c->diag->nerrors;

    if (*rec && *al)
        RULE_ERR(c, g, i, rname, pos, "only one of 'record' and 'alert' must be set");
    if (!*rec && !*al)
        RULE_ERR(c, g, i, rname, pos, "one of 'record' or 'alert' must be set");
    r->kind = *al ? RULE_ALERT : RULE_RECORD;
    r->name = strdup(rname);

    if (!r->expr_text || !*r->expr_text) {
        RULE_ERR(c, g, i, rname, rn->expr ? rn->expr : rn->node,
                 "field 'expr' must be set in rule");
    } else {
        rw_err e;
        rw_err_init(&e);
        r->expr = rw_promql_prepare(r->expr_text, &e);
        if (!r->expr)
            RULE_ERR(c, g, i, rname, rn->expr, "could not parse expression: %s", e.msg);
    }
    if (*rec) {
        if (r->nannotations)
            RULE_ERR(c, g, i, rname, pos, "invalid field 'annotations' in recording rule");
        if (r->for_ms)
            RULE_ERR(c, g, i, rname, pos, "invalid field 'for' in recording rule");
        if (r->keep_firing_for_ms)
            RULE_ERR(c, g, i, rname, pos, "invalid field 'keep_firing_for' in recording rule");
        if (!valid_name(rec))
            RULE_ERR(c, g, i, rname, pos, "invalid recording rule name: %s", rec);
        if (strchr(rec, '{') || strchr(rec, '}'))
            RULE_ERR(c, g, i, rname, pos,
                     "braces present in the recording rule name; should it be in expr?: %s", rec);
    }
    for (size_t k = 0; k < r->nlabels; k++) {
        if (!valid_name(r->labels[k].name) || strcmp(r->labels[k].name, RW_METRIC_NAME) == 0)
            RULE_ERR(c, g, i, rname, rn->node, "invalid label name: %s", r->labels[k].name);
    }
    for (size_t k = 0; k < r->nannotations; k++)
        if (!valid_name(r->annotations[k].name))
            RULE_ERR(c, g, i, rname, rn->node, "invalid annotation name: %s",
                     r->annotations[k].name);

    /* group labels under the rule's own */
    rw_label *merged;
    size_t nmerged;
    unsigned char *from_group = NULL;
    if (merge_labels(g->labels, g->nlabels, r->labels, r->nlabels, &merged, &nmerged,
                     &from_group) == 0) {
        free_labels(r->labels, r->nlabels);
        r->labels = merged;
        r->nlabels = nmerged;
    }

    if (r->kind == RULE_ALERT && c->diag->nerrors == before) {
        char tname[600];
        snprintf(tname, sizeof tname, "__alert_%s", r->name);
        r->label_tmpl = calloc(r->nlabels + 1, sizeof *r->label_tmpl);
        r->ann_tmpl = calloc(r->nannotations + 1, sizeof *r->ann_tmpl);
        for (size_t k = 0; r->label_tmpl && k < r->nlabels; k++) {
            if (!has_template(r->labels[k].value))
                continue;
            rw_err e;
            rw_err_init(&e);
            r->label_tmpl[k] = rw_tmpl_parse(tname, r->labels[k].value, &e);
            if (r->label_tmpl[k])
                continue;
            if (from_group && from_group[k]) {
                /* Prometheus checks only the rule's own templates at load; a
                   broken group label expands to an error text at evaluation */
                char *t = malloc(strlen(e.msg) + 40);
                if (t) {
                    sprintf(t, "<error expanding template: %s>", e.msg);
                    free((char *)r->labels[k].value);
                    r->labels[k].value = t;
                }
                continue;
            }
            RULE_ERR(c, g, i, rname, rn->node, "label \"%s\": %s", r->labels[k].name, e.msg);
        }
        for (size_t k = 0; r->ann_tmpl && k < r->nannotations; k++) {
            if (!has_template(r->annotations[k].value))
                continue;
            rw_err e;
            rw_err_init(&e);
            r->ann_tmpl[k] = rw_tmpl_parse(tname, r->annotations[k].value, &e);
            if (!r->ann_tmpl[k])
                RULE_ERR(c, g, i, rname, rn->node, "annotation \"%s\": %s",
                         r->annotations[k].name, e.msg);
        }
    }
    free(from_group);
}

static void validate(lctx *c, file_nodes *fn)
{
    for (size_t j = 0; j < fn->ngroups; j++) {
        group_nodes *gn = &fn->groups[j];
        rw_group_def *g = gn->g;
        if (!g->name)
            g->name = strdup("");
        g->file = strdup(c->path);
        if (!*g->name)
            rules_diag_add(c->diag, 0, "%s:%d:%d: Groupname must not be empty", c->path,
                           ydoc_line(gn->node), ydoc_col(gn->node));
        for (size_t k = 0; k < j; k++)
            if (strcmp(fn->groups[k].g->name, g->name) == 0) {
                rules_diag_add(c->diag, 0, "%s:%d:%d: groupname: \"%s\" is repeated in the same file",
                               c->path, ydoc_line(gn->node), ydoc_col(gn->node), g->name);
                break;
            }
        for (size_t k = 0; k < g->nlabels; k++)
            if (!valid_name(g->labels[k].name) || strcmp(g->labels[k].name, RW_METRIC_NAME) == 0)
                rules_diag_add(c->diag, 0, "%s:%d:%d: group \"%s\": invalid label name: %s",
                               c->path, ydoc_line(gn->node), ydoc_col(gn->node), g->name,
                               g->labels[k].name);
        for (size_t i = 0; i < gn->nrules; i++)
            validate_rule(c, g, i, &gn->rules[i]);
    }
}

static void free_nodes(file_nodes *fn)
{
    for (size_t j = 0; j < fn->ngroups; j++) {
        for (size_t i = 0; i < fn->groups[j].nrules; i++) {
            free(fn->groups[j].rules[i].record_s);
            free(fn->groups[j].rules[i].alert_s);
        }
        free(fn->groups[j].rules);
    }
    free(fn->groups);
}

rw_rc rules_file_parse(const char *path, const char *data, size_t len, rules_diag *diag,
                       rw_rule_file **out)
{
    *out = NULL;
    size_t errors_before = diag->nerrors;
    ydoc d;
    rw_err e;
    rw_err_init(&e);
    int more = 0;
    if (ydoc_load(&d, data, len, &more, &e) != RW_OK) {
        rules_diag_add(diag, 0, "%s: %s", path, e.msg);
        return RW_BADREQ;
    }
    if (more)
        rules_diag_add(diag, 1,
                       "%s: multiple document yaml rules files are not supported, only the "
                       "first document is processed",
                       path);
    rw_rule_file *f = calloc(1, sizeof *f);
    file_nodes fn = {.f = f};
    lctx c = {.path = path, .d = &d, .diag = diag};
    if (!f || !(f->path = strdup(path))) {
        ydoc_free(&d);
        rules_file_free(f);
        rules_diag_add(diag, 0, "%s: out of memory", path);
        return RW_NOMEM;
    }
    yaml_node_t *root = ydoc_root(&d);
    if (root && !ydoc_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            SHAPE_ERR(&c, root, "cannot unmarshal %s into rule groups (want a mapping with "
                                "\"groups\")",
                      ydoc_kind(root));
        else
            yw_map(&c, root, "rule groups", top_fields, top_field, &fn);
    }
    if (!c.errors)
        validate(&c, &fn);
    free_nodes(&fn);
    ydoc_free(&d);
    if (diag->nerrors > errors_before) {
        rules_file_free(f);
        return RW_BADREQ;
    }
    *out = f;
    return RW_OK;
}

rw_rc rules_file_load(const char *path, rules_diag *diag, rw_rule_file **out)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rules_diag_add(diag, 0, "%s: %s", path, strerror(errno));
        return RW_IO;
    }
    rw_buf b;
    rw_buf_init(&b, MAX_RULE_FILE_BYTES);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (rw_buf_append(&b, chunk, n) != RW_OK)
            break;
    int rerr = ferror(fp);
    fclose(fp);
    if (b.failed || rerr) {
        rules_diag_add(diag, 0, "%s: %s", path,
                       rerr ? "read error" : "file larger than 64 MiB");
        rw_buf_free(&b);
        return RW_BADREQ;
    }
    rw_rc rc = rules_file_parse(path, b.p ? b.p : "", b.len, diag, out);
    rw_buf_free(&b);
    return rc;
}

/* ---- identity and equality (reload) ---- */

static int labels_eq(const rw_label *a, size_t na, const rw_label *b, size_t nb)
{
    return rw_labels_equal(a, na, b, nb);
}

int rules_rule_same_identity(const rw_rule_def *a, const rw_rule_def *b)
{
    return a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
           labels_eq(a->labels, a->nlabels, b->labels, b->nlabels);
}

static int rule_equal(const rw_rule_def *a, const rw_rule_def *b)
{
    return rules_rule_same_identity(a, b) &&
           strcmp(rw_promql_expr_string(a->expr), rw_promql_expr_string(b->expr)) == 0 &&
           a->for_ms == b->for_ms && a->keep_firing_for_ms == b->keep_firing_for_ms &&
           labels_eq(a->annotations, a->nannotations, b->annotations, b->nannotations);
}

int rules_group_def_equal(const rw_group_def *a, const rw_group_def *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->file, b->file) != 0 ||
        a->interval_ms != b->interval_ms || a->limit != b->limit ||
        a->has_query_offset != b->has_query_offset ||
        (a->has_query_offset && a->query_offset_ms != b->query_offset_ms) ||
        a->nrules != b->nrules)
        return 0;
    for (size_t i = 0; i < a->nrules; i++)
        if (!rule_equal(&a->rules[i], &b->rules[i]))
            return 0;
    return 1;
}

/* ---- rule_files globs ---- */

/* Go's filepath.Clean: "a/./b/../c" -> "a/c", no trailing or double slashes */
void rules_clean_path(char *p)
{
    int abs = p[0] == '/';
    char *out = p, *seg = p;
    size_t n = 0; /* length written */
    size_t keep = abs ? 1 : 0; /* ".." cannot go above this */
    if (abs)
        out[n++] = '/';
    while (*seg) {
        while (*seg == '/')
            seg++;
        if (!*seg)
            break;
        char *end = seg;
        while (*end && *end != '/')
            end++;
        size_t len = (size_t)(end - seg);
        if (len == 1 && seg[0] == '.') {
            /* skip */
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            /* back up over the last segment unless it is a ".." itself */
            size_t last = n;
            while (last > keep && out[last - 1] != '/')
                last--;
            int is_dotdot = n - last == 2 && out[last] == '.' && out[last + 1] == '.';
            if (n > keep && !is_dotdot) {
                n = last > keep ? last - 1 : keep;
            } else if (!abs) {
                if (n > 0)
                    out[n++] = '/';
                out[n++] = '.';
                out[n++] = '.';
                keep = n;
            }
        } else {
            if (n > (abs ? 1u : 0u))
                out[n++] = '/';
            memmove(out + n, seg, len);
            n += len;
        }
        seg = end;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

rw_rc rules_glob(const char *const *patterns, size_t n, const char *base_dir, char ***out,
                 size_t *nout, rw_err *err)
{
    char **v = NULL;
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = patterns[i];
        if (!*p)
            continue;
        char *full;
        if (p[0] != '/' && base_dir && *base_dir) {
            full = malloc(strlen(base_dir) + strlen(p) + 2);
            if (full)
                sprintf(full, "%s/%s", base_dir, p);
        } else {
            full = strdup(p);
        }
        if (!full)
            goto nomem;
        rules_clean_path(full);
        glob_t gl;
        int rc = glob(full, GLOB_NOSORT, NULL, &gl);
        if (rc == GLOB_NOMATCH) {
            /* Prometheus accepts a pattern matching nothing (rules may come later) */
            free(full);
            continue;
        }
        if (rc != 0) {
            free(full);
            globfree(&gl);
            for (size_t k = 0; k < nv; k++)
                free(v[k]);
            free(v);
            return rw_err_set(err, RW_BADREQ, "rule_files: invalid pattern \"%s\"", p);
        }
        free(full);
        char **nvp = realloc(v, (nv + gl.gl_pathc + 1) * sizeof *nvp);
        if (!nvp) {
            globfree(&gl);
            goto nomem;
        }
        v = nvp;
        for (size_t k = 0; k < gl.gl_pathc; k++)
            v[nv++] = strdup(gl.gl_pathv[k]);
        globfree(&gl);
    }
    if (nv)
        qsort(v, nv, sizeof *v, cmp_str);
    size_t u = 0;
    for (size_t k = 0; k < nv; k++) {
        if (!v[k] || (u && strcmp(v[u - 1], v[k]) == 0)) {
            free(v[k]);
            continue;
        }
        v[u++] = v[k];
    }
    *out = v;
    *nout = u;
    return RW_OK;
nomem:
    for (size_t k = 0; k < nv; k++)
        free(v[k]);
    free(v);
    return rw_err_set(err, RW_NOMEM, "out of memory");
}
