/* yaml.c - YAML documents for rule files and rule test files: libyaml's
 * loader gives a node tree with line and column of every node, and these
 * readers map it onto C structs the way Go's strict YAML decoding maps it
 * onto Go structs (what Prometheus and promtool use): unknown fields,
 * duplicate keys and wrong types are errors with their position, null is
 * the zero value, any scalar reads as a string. */
#include "rules_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/timeutil.h"

void yw_error(ywalk *c, const yaml_node_t *n, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    rules_diag_add(c->diag, 0, "%s:%d:%d: %s", c->path, ydoc_line(n), ydoc_col(n), m);
    c->errors++;
}

/* ---- documents ---- */

#define YDOC_MAX_VISITS 2000000

rw_rc ydoc_load(ydoc *d, const char *buf, size_t len, int *more, rw_err *err)
{
    memset(d, 0, sizeof *d);
    if (more)
        *more = 0;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return rw_err_set(err, RW_NOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &d->doc)) {
        rw_rc rc = rw_err_set(err, RW_BADREQ, "yaml: line %d: %s%s%s",
                              (int)p.problem_mark.line + 1, p.problem ? p.problem : "error",
                              p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        return rc;
    }
    d->loaded = 1;
    if (more && yaml_document_get_root_node(&d->doc)) {
        yaml_document_t second;
        if (yaml_parser_load(&p, &second)) {
            if (yaml_document_get_root_node(&second))
                *more = 1;
            yaml_document_delete(&second);
        } else {
            *more = 1; /* a broken second document: ignored, but worth a warning */
        }
    }
    yaml_parser_delete(&p);
    return RW_OK;
}

void ydoc_free(ydoc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = 0;
}

yaml_node_t *ydoc_root(ydoc *d) { return yaml_document_get_root_node(&d->doc); }
yaml_node_t *ydoc_get(ydoc *d, int idx) { return yaml_document_get_node(&d->doc, idx); }
int ydoc_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
int ydoc_col(const yaml_node_t *n) { return n ? (int)n->start_mark.column + 1 : 0; }

int ydoc_visit(ydoc *d) { return ++d->visits <= YDOC_MAX_VISITS; }

int ydoc_is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

const char *ydoc_scalar(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

const char *ydoc_kind(const yaml_node_t *n)
{
    if (!n)
        return "!!null";
    switch (n->type) {
    case YAML_MAPPING_NODE: return "!!map";
    case YAML_SEQUENCE_NODE: return "!!seq";
    default: return ydoc_is_null(n) ? "!!null" : "!!str";
    }
}

/* ---- typed readers ---- */

/* A mapping's pairs with duplicate-key and unknown-field checks: calls fn for
 * each known key. known: NULL-terminated list. */
typedef void (*field_fn)(ywalk *c, void *obj, const char *key, yaml_node_t *val);

void yw_map(ywalk *c, yaml_node_t *m, const char *what, const char *const *known,
                     yw_field_fn fn, void *obj)
{
    yaml_node_pair_t *p;
    for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        if (!ydoc_visit(c->d)) {
            yw_error(c, m, "document too large or too deeply aliased");
            return;
        }
        yaml_node_t *k = ydoc_get(c->d, p->key), *v = ydoc_get(c->d, p->value);
        const char *ks = ydoc_scalar(k);
        if (!ks) {
            yw_error(c, k, "%s: a key must be a string, got %s", what, ydoc_kind(k));
            continue;
        }
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
            const char *qs = ydoc_scalar(ydoc_get(c->d, q->key));
            if (qs && strcmp(qs, ks) == 0) {
                yw_error(c, k, "mapping key \"%s\" already defined at line %d", ks,
                          ydoc_line(ydoc_get(c->d, q->key)));
                goto next;
            }
        }
        int found = 0;
        for (size_t i = 0; known[i]; i++)
            if (strcmp(known[i], ks) == 0)
                found = 1;
        if (!found) {
            yw_error(c, k, "field %s not found in %s", ks, what);
            continue;
        }
        fn(c, obj, ks, v);
    next:;
    }
}

char *yw_string(ywalk *c, yaml_node_t *v, const char *field)
{
    if (ydoc_is_null(v))
        return strdup("");
    const char *s = ydoc_scalar(v);
    if (!s) {
        yw_error(c, v, "%s: cannot unmarshal %s into a string", field, ydoc_kind(v));
        return NULL;
    }
    return strdup(s);
}

int rules_parse_duration(const char *s, int64_t *ms, rw_err *err)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    return rw_parse_duration(s, strlen(s), ms, err) == RW_OK ? 0 : -1;
}

void yw_duration(ywalk *c, yaml_node_t *v, const char *field, int64_t *ms, int *set)
{
    if (ydoc_is_null(v))
        return;
    const char *s = ydoc_scalar(v);
    if (!s) {
        yw_error(c, v, "%s: cannot unmarshal %s into a duration", field, ydoc_kind(v));
        return;
    }
    rw_err e;
    rw_err_init(&e);
    if (rules_parse_duration(s, ms, &e) != 0) {
        yw_error(c, v, "%s: %s", field, e.msg);
        return;
    }
    if (set)
        *set = 1;
}

void yw_int(ywalk *c, yaml_node_t *v, const char *field, int64_t *out)
{
    if (ydoc_is_null(v))
        return;
    const char *s = ydoc_scalar(v);
    if (!s || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        yw_error(c, v, "%s: cannot unmarshal %s%s%s into an integer", field, ydoc_kind(v),
                  s ? " " : "", s ? s : "");
        return;
    }
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 0);
    if (!*s || *end || errno) {
        yw_error(c, v, "%s: cannot unmarshal %s into an integer", field, s);
        return;
    }
    *out = x;
}

/* map[string]string; *l sorted afterwards */
void yw_labels(ywalk *c, yaml_node_t *v, const char *field, rw_label **l, size_t *n)
{
    if (ydoc_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        yw_error(c, v, "%s: cannot unmarshal %s into a map of strings", field, ydoc_kind(v));
        return;
    }
    size_t cap = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    rw_label *out = calloc(cap ? cap : 1, sizeof *out);
    if (!out)
        return;
    size_t k = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_get(c->d, p->key), *vn = ydoc_get(c->d, p->value);
        const char *ks = ydoc_scalar(kn);
        if (!ks) {
            yw_error(c, kn, "%s: a key must be a string, got %s", field, ydoc_kind(kn));
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < k; i++)
            if (strcmp(out[i].name, ks) == 0)
                dup = 1;
        if (dup) {
            yw_error(c, kn, "%s: mapping key \"%s\" already defined", field, ks);
            continue;
        }
        const char *vs = ydoc_is_null(vn) ? "" : ydoc_scalar(vn);
        if (!vs) {
            yw_error(c, vn, "%s.%s: cannot unmarshal %s into a string", field, ks,
                      ydoc_kind(vn));
            continue;
        }
        out[k].name = strdup(ks);
        out[k].value = strdup(vs);
        k++;
    }
    rw_labels_sort(out, k);
    *l = out;
    *n = k;
}


void yw_float(ywalk *c, yaml_node_t *v, const char *field, double *out)
{
    if (ydoc_is_null(v))
        return;
    const char *s = ydoc_scalar(v);
    if (!s || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        yw_error(c, v, "%s: cannot unmarshal %s%s%s into a float", field, ydoc_kind(v),
                 s ? " " : "", s ? s : "");
        return;
    }
    /* YAML's spellings of the specials, then decimal and hex numbers */
    static const struct {
        const char *s;
        double v;
    } special[] = {{".inf", INFINITY}, {".Inf", INFINITY},   {".INF", INFINITY},
                   {"+.inf", INFINITY}, {"+.Inf", INFINITY}, {"+.INF", INFINITY},
                   {"-.inf", -INFINITY}, {"-.Inf", -INFINITY}, {"-.INF", -INFINITY},
                   {".nan", NAN},       {".NaN", NAN},       {".NAN", NAN}};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (strcmp(s, special[i].s) == 0) {
            *out = special[i].v;
            return;
        }
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    int alpha_special = (s[0] == 'i' || s[0] == 'I' || s[0] == 'n' || s[0] == 'N' ||
                         ((s[0] == '-' || s[0] == '+') && (s[1] == 'i' || s[1] == 'I' ||
                                                           s[1] == 'n' || s[1] == 'N')));
    if (!*s || *end || alpha_special || (errno && x != 0)) {
        yw_error(c, v, "%s: cannot unmarshal !!str `%s` into a float", field, s);
        return;
    }
    *out = x;
}

void yw_bool(ywalk *c, yaml_node_t *v, const char *field, int *out)
{
    if (ydoc_is_null(v))
        return;
    const char *s = ydoc_scalar(v);
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"};
    if (s && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcmp(s, t[i]) == 0) {
                *out = 1;
                return;
            }
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (strcmp(s, f[i]) == 0) {
                *out = 0;
                return;
            }
    }
    yw_error(c, v, "%s: cannot unmarshal %s into a bool", field, s ? s : ydoc_kind(v));
}

void yw_strings(ywalk *c, yaml_node_t *v, const char *field, char ***out, size_t *n)
{
    if (ydoc_is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        yw_error(c, v, "%s: cannot unmarshal %s into a list of strings", field, ydoc_kind(v));
        return;
    }
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char **s = calloc(cnt + 1, sizeof *s);
    if (!s)
        return;
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        char *x = yw_string(c, ydoc_get(c->d, v->data.sequence.items.start[i]), field);
        if (x)
            s[k++] = x;
    }
    *out = s;
    *n = k;
}
