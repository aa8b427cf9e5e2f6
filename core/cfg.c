/* cfg.c - binds YAML documents (yaml.h trees) to typed configuration tables
 * (see cfg.h): defaults, loading, --set overrides, check functions, deep
 * free, comparison (what a reload may change) and dumping. The tables are
 * the only place that knows a key's type, default and bounds; this file
 * knows nothing about any particular key. */
#define _GNU_SOURCE
#include "cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "regex.h"
#include "timeutil.h"
#include "yaml.h"

#define FIELD(obj, k) ((void *)((char *)(obj) + (k)->off))
#define CFIELD(obj, k) ((const void *)((const char *)(obj) + (k)->off))
#define MAX_TABLES 8 /* tables sharing one section name */

/* What the loader needs to know while binding. */
typedef struct bctx {
    const char *file;  /* for messages */
    const char *dir;   /* directory of the file, for relative paths; NULL = cwd */
    rw_err *err;
} bctx;

/* ---- scalars ---- */

rw_rc rw_cfg_parse_bytes(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v))
        return RW_BADREQ;
    while (*end == ' ')
        end++;
    static const struct {
        const char *u;
        double m;
    } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
        {"K", 1024.0}, {"M", 1048576.0}, {"G", 1073741824.0},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].u) == 0) {
            double r = v * units[i].m;
            if (r < 0 || r > 9.2e18)
                return RW_BADREQ;
            *out = (int64_t)r;
            return RW_OK;
        }
    return RW_BADREQ;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!strcmp(s, yes[i]))
            return *out = 1, 1;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcmp(s, no[i]))
            return *out = 0, 1;
    return 0;
}

static int bounded(const rw_cfg_key *k)
{
    return k->min != 0 || k->max != 0;
}

static rw_rc out_of_range(const rw_cfg_key *k, const char *v, rw_err *err)
{
    return rw_err_set(err, RW_BADREQ, "%s is out of range [%.15g, %.15g]", v, k->min, k->max);
}

static void free_strings(rw_cfg_strings *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void free_labels(rw_cfg_labels *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].name);
        free((char *)l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static rw_rc push_string(rw_cfg_strings *s, const char *v, size_t len, rw_err *err)
{
    char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    s->v = nv;
    if (!(nv[s->n] = strndup(v, len)))
        return rw_err_set(err, RW_NOMEM, "out of memory");
    s->n++;
    return RW_OK;
}

static rw_rc push_label(rw_cfg_labels *l, const char *name, const char *value, rw_err *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name)) {
            char *v = strdup(value);
            if (!v)
                return rw_err_set(err, RW_NOMEM, "out of memory");
            free((char *)l->v[i].value);
            l->v[i].value = v;
            return RW_OK;
        }
    rw_label *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    l->v = nv;
    nv[l->n].name = strdup(name);
    nv[l->n].value = strdup(value);
    if (!nv[l->n].name || !nv[l->n].value) {
        free((char *)nv[l->n].name);
        free((char *)nv[l->n].value);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    l->n++;
    rw_labels_sort(l->v, l->n);
    return RW_OK;
}

static char *join_path(const char *dir, const char *p)
{
    if (!dir || !*dir || p[0] == '/' || !*p)
        return strdup(p);
    char *out = NULL;
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

/* Sets a scalar-typed field from text. dir resolves relative paths. */
static rw_rc set_scalar(const rw_cfg_key *k, void *field, const char *v, const char *dir,
                        rw_err *err)
{
    switch (k->type) {
    case RW_CFG_STRING:
    case RW_CFG_PATH: {
        char *d = k->type == RW_CFG_PATH ? join_path(dir, v) : strdup(v);
        if (!d)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = d;
        return RW_OK;
    }
    case RW_CFG_BOOL:
        if (!parse_bool(v, (int *)field))
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not a boolean (true or false)", v);
        return RW_OK;
    case RW_CFG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not an integer", v);
        if (bounded(k) && ((double)x < k->min || (double)x > k->max))
            return out_of_range(k, v, err);
        *(int64_t *)field = x;
        return RW_OK;
    }
    case RW_CFG_FLOAT: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || isnan(x))
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not a number", v);
        if (bounded(k) && (x < k->min || x > k->max))
            return out_of_range(k, v, err);
        *(double *)field = x;
        return RW_OK;
    }
    case RW_CFG_BYTES: {
        int64_t x;
        if (rw_cfg_parse_bytes(v, &x) != RW_OK)
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not a size (e.g. 32MiB)", v);
        if (bounded(k) && ((double)x < k->min || (double)x > k->max))
            return out_of_range(k, v, err);
        *(int64_t *)field = x;
        return RW_OK;
    }
    case RW_CFG_DURATION: {
        int64_t x = 0;
        if (strcmp(v, "0") != 0 && rw_parse_duration(v, strlen(v), &x, NULL) != RW_OK)
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not a duration (e.g. 15d, 5m, 30s)", v);
        if (bounded(k) && ((double)x < k->min || (double)x > k->max)) {
            char lo[32], hi[32];
            rw_format_duration((int64_t)k->min, lo, sizeof lo);
            rw_format_duration((int64_t)k->max, hi, sizeof hi);
            return rw_err_set(err, RW_BADREQ, "%s is out of range [%s, %s]", v, lo, hi);
        }
        *(int64_t *)field = x;
        return RW_OK;
    }
    case RW_CFG_ENUM:
        for (int i = 0; k->enums && k->enums[i]; i++)
            if (!strcmp(k->enums[i], v)) {
                *(int *)field = i;
                return RW_OK;
            }
        {
            char list[256] = "";
            for (int i = 0; k->enums && k->enums[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         k->enums[i]);
            return rw_err_set(err, RW_BADREQ, "\"%s\" is not one of: %s", v, list);
        }
    case RW_CFG_REGEX: {
        rw_cfg_regex *r = field;
        rw_regex *re = rw_regex_compile(v, err);
        if (!re)
            return err ? err->code : RW_BADREQ;
        char *src = strdup(v);
        if (!src) {
            rw_regex_free(re);
            return rw_err_set(err, RW_NOMEM, "out of memory");
        }
        rw_regex_free(r->re);
        free(r->src);
        r->re = re;
        r->src = src;
        return RW_OK;
    }
    case RW_CFG_STRINGS: { /* from a flag or a default: a comma-separated list */
        rw_cfg_strings *s = field;
        free_strings(s);
        const char *p = v;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            rw_rc rc = push_string(s, p, len, err);
            if (rc != RW_OK)
                return rc;
            p += len + (c ? 1 : 0);
        }
        return RW_OK;
    }
    case RW_CFG_LABELS: { /* from a flag: name=value,name=value */
        rw_cfg_labels nl = {0};
        const char *p = v;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            char *pair = strndup(p, len), *eq = pair ? strchr(pair, '=') : NULL;
            if (!pair || !eq || eq == pair || !rw_label_name_legacy(pair, (size_t)(eq - pair))) {
                free(pair);
                free_labels(&nl);
                return rw_err_set(err, RW_BADREQ, "\"%.*s\" is not name=value", (int)len, p);
            }
            *eq = '\0';
            rw_rc rc = push_label(&nl, pair, eq + 1, err);
            free(pair);
            if (rc != RW_OK) {
                free_labels(&nl);
                return rc;
            }
            p += len + (c ? 1 : 0);
        }
        free_labels(field);
        *(rw_cfg_labels *)field = nl;
        return RW_OK;
    }
    default:
        return rw_err_set(err, RW_BADREQ, "expected a map or a list, not a single value");
    }
}

/* ---- defaults and free ---- */

void rw_cfg_defaults(const rw_cfg_table *t, void *obj)
{
    memset(obj, 0, t->size);
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        void *f = FIELD(obj, k);
        switch (k->type) {
        case RW_CFG_SECTION:
            rw_cfg_defaults(k->sub, f);
            break;
        case RW_CFG_STRING:
        case RW_CFG_PATH:
            set_scalar(k, f, k->def ? k->def : "", NULL, NULL);
            break;
        case RW_CFG_LIST:
        case RW_CFG_MAP:
        case RW_CFG_LABELS:
        case RW_CFG_REST:
            break;
        default:
            if (k->def)
                set_scalar(k, f, k->def, NULL, NULL);
            break;
        }
    }
}

static void free_elems(const rw_cfg_table *sub, void *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rw_cfg_free(sub, (char *)v + i * sub->size);
    free(v);
}

void rw_cfg_free(const rw_cfg_table *t, void *obj)
{
    if (!obj)
        return;
    if (t->release)
        t->release(obj);
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        void *f = FIELD(obj, k);
        switch (k->type) {
        case RW_CFG_STRING:
        case RW_CFG_PATH:
            free(*(char **)f);
            *(char **)f = NULL;
            break;
        case RW_CFG_REGEX: {
            rw_cfg_regex *r = f;
            rw_regex_free(r->re);
            free(r->src);
            r->re = NULL;
            r->src = NULL;
            break;
        }
        case RW_CFG_STRINGS:
            free_strings(f);
            break;
        case RW_CFG_LABELS:
        case RW_CFG_REST:
            free_labels(f);
            break;
        case RW_CFG_SECTION:
            rw_cfg_free(k->sub, f);
            break;
        case RW_CFG_LIST: {
            rw_cfg_list *l = f;
            free_elems(k->sub, l->v, l->n);
            free(l->lines);
            memset(l, 0, sizeof *l);
            break;
        }
        case RW_CFG_MAP: {
            rw_cfg_map *m = f;
            free_elems(k->sub, m->v, m->n);
            for (size_t j = 0; j < m->n; j++)
                free(m->keys[j]);
            free(m->keys);
            free(m->lines);
            memset(m, 0, sizeof *m);
            break;
        }
        default:
            break;
        }
    }
}

/* ---- binding a YAML tree ---- */

static rw_rc bind_map(bctx *c, const rw_cfg_table **tabs, void **objs, size_t ntabs,
                      const rw_ynode *map, const char *path);

static rw_rc fail_at(bctx *c, const rw_ynode *n, const char *path)
{
    rw_err_prefix(c->err, "%s:%d: %s", c->file, n ? n->line : 0, path);
    return c->err ? c->err->code : RW_BADREQ;
}

static const char *kind_name(const rw_ynode *n)
{
    switch (n->kind) {
    case RW_Y_MAP: return "a map";
    case RW_Y_SEQ: return "a list";
    case RW_Y_NULL: return "nothing";
    default: return "a single value";
    }
}

static rw_rc expect(bctx *c, const rw_ynode *n, rw_ynode_kind kind, const char *path,
                    const char *what)
{
    if (n->kind == kind)
        return RW_OK;
    return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s: expected %s, got %s", c->file, n->line, path,
                      what, kind_name(n));
}

static rw_rc bind_elems(bctx *c, const rw_cfg_key *k, const rw_ynode *n, const char *path,
                        void **v, int **lines, char ***keys, size_t *count)
{
    int is_map = k->type == RW_CFG_MAP;
    size_t sz = k->sub->size;
    void *arr = calloc(n->n ? n->n : 1, sz);
    int *ln = calloc(n->n ? n->n : 1, sizeof *ln);
    char **ks = is_map ? calloc(n->n ? n->n : 1, sizeof *ks) : NULL;
    if (!arr || !ln || (is_map && !ks)) {
        free(arr);
        free(ln);
        free(ks);
        return rw_err_set(c->err, RW_NOMEM, "out of memory");
    }
    /* free what this field held (defaults are empty, but a second load or
       a repeated key must not leak) */
    size_t done = 0;
    rw_rc rc = RW_OK;
    for (size_t i = 0; i < n->n; i++) {
        void *e = (char *)arr + i * sz;
        const rw_ynode *item = n->vals[i];
        char sub[512];
        if (is_map) {
            snprintf(sub, sizeof sub, "%s.%s", path, n->keys[i]->s);
            if (!(ks[i] = strdup(n->keys[i]->s))) {
                rc = rw_err_set(c->err, RW_NOMEM, "out of memory");
                break;
            }
        } else {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        }
        ln[i] = item->line;
        rw_cfg_defaults(k->sub, e);
        done = i + 1;
        if (rw_yaml_is_null(item))
            continue; /* "- " or "name:" with nothing: all defaults */
        if ((rc = expect(c, item, RW_Y_MAP, sub, "a map")) != RW_OK)
            break;
        const rw_cfg_table *tabs[1] = {k->sub};
        void *objs[1] = {e};
        if ((rc = bind_map(c, tabs, objs, 1, item, sub)) != RW_OK)
            break;
    }
    if (rc != RW_OK) {
        free_elems(k->sub, arr, done);
        free(ln);
        if (ks)
            for (size_t i = 0; i < n->n; i++)
                free(ks[i]);
        free(ks);
        return rc;
    }
    *v = arr;
    *lines = ln;
    if (keys)
        *keys = ks;
    *count = n->n;
    return RW_OK;
}

static rw_rc bind_value(bctx *c, const rw_cfg_key *k, void *f, const rw_ynode *n,
                        const char *path)
{
    rw_rc rc;
    if (rw_yaml_is_null(n) && k->type != RW_CFG_STRING)
        return RW_OK; /* "key:" with nothing keeps the default */
    switch (k->type) {
    case RW_CFG_SECTION: {
        if ((rc = expect(c, n, RW_Y_MAP, path, "a map")) != RW_OK)
            return rc;
        const rw_cfg_table *tabs[1] = {k->sub};
        void *objs[1] = {f};
        return bind_map(c, tabs, objs, 1, n, path);
    }
    case RW_CFG_LIST: {
        if ((rc = expect(c, n, RW_Y_SEQ, path, "a list")) != RW_OK)
            return rc;
        rw_cfg_list *l = f, nl = {0};
        if ((rc = bind_elems(c, k, n, path, &nl.v, &nl.lines, NULL, &nl.n)) != RW_OK)
            return rc;
        free_elems(k->sub, l->v, l->n);
        free(l->lines);
        *l = nl;
        return RW_OK;
    }
    case RW_CFG_MAP: {
        if ((rc = expect(c, n, RW_Y_MAP, path, "a map")) != RW_OK)
            return rc;
        rw_cfg_map *m = f, nm = {0};
        if ((rc = bind_elems(c, k, n, path, &nm.v, &nm.lines, &nm.keys, &nm.n)) != RW_OK)
            return rc;
        free_elems(k->sub, m->v, m->n);
        for (size_t j = 0; j < m->n; j++)
            free(m->keys[j]);
        free(m->keys);
        free(m->lines);
        *m = nm;
        return RW_OK;
    }
    case RW_CFG_STRINGS: {
        if ((rc = expect(c, n, RW_Y_SEQ, path, "a list of values")) != RW_OK)
            return rc;
        rw_cfg_strings ns = {0};
        for (size_t i = 0; i < n->n; i++) {
            const rw_ynode *it = n->vals[i];
            if (it->kind != RW_Y_SCALAR && it->kind != RW_Y_NULL) {
                free_strings(&ns);
                return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s[%zu]: expected a value, got %s",
                                  c->file, it->line, path, i, kind_name(it));
            }
            const char *s = it->kind == RW_Y_SCALAR ? it->s : "";
            if ((rc = push_string(&ns, s, strlen(s), c->err)) != RW_OK) {
                free_strings(&ns);
                return rc;
            }
        }
        free_strings(f);
        *(rw_cfg_strings *)f = ns;
        return RW_OK;
    }
    case RW_CFG_LABELS: {
        if ((rc = expect(c, n, RW_Y_MAP, path, "a map of label names to values")) != RW_OK)
            return rc;
        rw_cfg_labels nl = {0};
        for (size_t i = 0; i < n->n; i++) {
            const rw_ynode *kn = n->keys[i], *vn = n->vals[i];
            if (!rw_label_name_legacy(kn->s, strlen(kn->s))) {
                free_labels(&nl);
                return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s: invalid label name \"%s\"",
                                  c->file, kn->line, path, kn->s);
            }
            if (vn->kind == RW_Y_MAP || vn->kind == RW_Y_SEQ) {
                free_labels(&nl);
                return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s.%s: expected a value, got %s",
                                  c->file, vn->line, path, kn->s, kind_name(vn));
            }
            if ((rc = push_label(&nl, kn->s, vn->kind == RW_Y_SCALAR ? vn->s : "", c->err)) !=
                RW_OK) {
                free_labels(&nl);
                return rc;
            }
        }
        free_labels(f);
        *(rw_cfg_labels *)f = nl;
        return RW_OK;
    }
    default:
        if (n->kind != RW_Y_SCALAR && !(n->kind == RW_Y_NULL && k->type == RW_CFG_STRING))
            return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s: expected a single value, got %s",
                              c->file, n->line, path, kind_name(n));
        if ((rc = set_scalar(k, f, n->kind == RW_Y_SCALAR ? n->s : "", c->dir, c->err)) != RW_OK)
            return fail_at(c, n, path);
        return RW_OK;
    }
}

static rw_rc bind_map(bctx *c, const rw_cfg_table **tabs, void **objs, size_t ntabs,
                      const rw_ynode *map, const char *path)
{
    rw_rc rc;
    for (size_t i = 0; i < map->n; i++) {
        const rw_ynode *kn = map->keys[i], *vn = map->vals[i];
        const char *key = kn->s;
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        /* rows of this name in every table sharing the map */
        const rw_cfg_key *rows[MAX_TABLES];
        void *fields[MAX_TABLES];
        size_t nrows = 0;
        for (size_t t = 0; t < ntabs; t++)
            for (size_t j = 0; j < tabs[t]->nkeys; j++)
                if (!strcmp(tabs[t]->keys[j].name, key) && nrows < MAX_TABLES) {
                    rows[nrows] = &tabs[t]->keys[j];
                    fields[nrows++] = FIELD(objs[t], &tabs[t]->keys[j]);
                }
        if (nrows == 0) {
            /* a catch-all row takes unknown scalar keys as labels */
            const rw_cfg_key *rest = NULL;
            void *rf = NULL;
            for (size_t t = 0; t < ntabs && !rest; t++)
                for (size_t j = 0; j < tabs[t]->nkeys; j++)
                    if (tabs[t]->keys[j].type == RW_CFG_REST) {
                        rest = &tabs[t]->keys[j];
                        rf = FIELD(objs[t], rest);
                        break;
                    }
            if (rest && vn->kind != RW_Y_MAP && vn->kind != RW_Y_SEQ) {
                if (!rw_label_name_legacy(key, strlen(key)))
                    return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s: invalid label name \"%s\"",
                                      c->file, kn->line, path, key);
                if ((rc = push_label(rf, key, vn->kind == RW_Y_SCALAR ? vn->s : "", c->err)) !=
                    RW_OK)
                    return rc;
                continue;
            }
            return rw_err_set(c->err, RW_BADREQ, "%s:%d: unknown configuration key \"%s\"",
                              c->file, kn->line, sub);
        }
        if (nrows > 1) {
            /* several layers' sections under one name: bind them together */
            const rw_cfg_table *subt[MAX_TABLES];
            for (size_t r = 0; r < nrows; r++) {
                if (rows[r]->type != RW_CFG_SECTION)
                    return rw_err_set(c->err, RW_INTERNAL, "%s: configuration table conflict",
                                      sub);
                subt[r] = rows[r]->sub;
            }
            if (rw_yaml_is_null(vn))
                continue;
            if ((rc = expect(c, vn, RW_Y_MAP, sub, "a map")) != RW_OK)
                return rc;
            if ((rc = bind_map(c, subt, fields, nrows, vn, sub)) != RW_OK)
                return rc;
            continue;
        }
        if ((rc = bind_value(c, rows[0], fields[0], vn, sub)) != RW_OK)
            return rc;
    }
    /* required keys */
    for (size_t t = 0; t < ntabs; t++)
        for (size_t j = 0; j < tabs[t]->nkeys; j++) {
            const rw_cfg_key *k = &tabs[t]->keys[j];
            if (!(k->flags & RW_CFG_REQUIRED))
                continue;
            const rw_ynode *v = rw_yaml_get(map, k->name);
            if (!v || rw_yaml_is_null(v))
                return rw_err_set(c->err, RW_BADREQ, "%s:%d: %s%s%s: missing required key", c->file,
                                  map->line, path, *path ? "." : "", k->name);
        }
    return RW_OK;
}

/* ---- deep copy ---- */

static rw_rc copy_fields(const rw_cfg_table *t, void *dst, const void *src, rw_err *err);

static rw_rc copy_elems(const rw_cfg_table *sub, void **dv, const void *sv, size_t n, rw_err *err)
{
    *dv = calloc(n ? n : 1, sub->size);
    if (!*dv)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        rw_rc rc = copy_fields(sub, (char *)*dv + i * sub->size,
                               (const char *)sv + i * sub->size, err);
        if (rc != RW_OK)
            return rc; /* the caller frees what was copied so far */
    }
    return RW_OK;
}

static int *copy_lines(const int *lines, size_t n)
{
    int *l = calloc(n ? n : 1, sizeof *l);
    if (l && lines)
        memcpy(l, lines, n * sizeof *l);
    return l;
}

static rw_rc copy_fields(const rw_cfg_table *t, void *dst, const void *src, rw_err *err)
{
    /* Only the fields the rows describe are copied; everything else
       (compiled forms a check function built, pointers the caller sets) is
       zero in the copy, so nothing is shared with src and the copy's own
       check builds its compiled forms. A failure half-way leaves dst
       freeable: every pointer is either copied or NULL. */
    memset(dst, 0, t->size);
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        void *d = FIELD(dst, k);
        const void *s = CFIELD(src, k);
        rw_rc rc = RW_OK;
        switch (k->type) {
        case RW_CFG_STRING:
        case RW_CFG_PATH:
            if (*(char *const *)s && !(*(char **)d = strdup(*(char *const *)s)))
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        case RW_CFG_REGEX: {
            const rw_cfg_regex *sr = s;
            if (sr->src)
                rc = set_scalar(k, d, sr->src, NULL, err);
            break;
        }
        case RW_CFG_STRINGS: {
            const rw_cfg_strings *ss = s;
            for (size_t j = 0; j < ss->n && rc == RW_OK; j++)
                rc = push_string(d, ss->v[j], strlen(ss->v[j]), err);
            break;
        }
        case RW_CFG_LABELS:
        case RW_CFG_REST: {
            const rw_cfg_labels *sl = s;
            for (size_t j = 0; j < sl->n && rc == RW_OK; j++)
                rc = push_label(d, sl->v[j].name, sl->v[j].value, err);
            break;
        }
        case RW_CFG_SECTION:
            rc = copy_fields(k->sub, d, s, err);
            break;
        case RW_CFG_LIST: {
            const rw_cfg_list *sl = s;
            rw_cfg_list *dl = d;
            if (!sl->n)
                break;
            rc = copy_elems(k->sub, &dl->v, sl->v, sl->n, err);
            dl->n = sl->n; /* freeable: uncopied elements are zero */
            if (rc == RW_OK && !(dl->lines = copy_lines(sl->lines, sl->n)))
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        }
        case RW_CFG_MAP: {
            const rw_cfg_map *sm = s;
            rw_cfg_map *dm = d;
            if (!sm->n)
                break;
            rc = copy_elems(k->sub, &dm->v, sm->v, sm->n, err);
            dm->n = sm->n;
            if (rc == RW_OK && !(dm->lines = copy_lines(sm->lines, sm->n)))
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            if (rc == RW_OK && !(dm->keys = calloc(sm->n, sizeof *dm->keys)))
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
            for (size_t j = 0; rc == RW_OK && j < sm->n; j++)
                if (!(dm->keys[j] = strdup(sm->keys[j])))
                    rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        }
        case RW_CFG_BOOL:
        case RW_CFG_ENUM:
            *(int *)d = *(const int *)s;
            break;
        case RW_CFG_FLOAT:
            *(double *)d = *(const double *)s;
            break;
        case RW_CFG_INT:
        case RW_CFG_BYTES:
        case RW_CFG_DURATION:
            *(int64_t *)d = *(const int64_t *)s;
            break;
        }
        if (rc != RW_OK)
            return rc;
    }
    return RW_OK;
}

/* ---- checks, post-order ---- */

static rw_rc check_tree(const rw_cfg_table *t, void *obj, const char *file, const char *path,
                        int line, rw_err *err)
{
    rw_rc rc;
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        void *f = FIELD(obj, k);
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k->name);
        if (k->type == RW_CFG_SECTION) {
            if ((rc = check_tree(k->sub, f, file, sub, 0, err)) != RW_OK)
                return rc;
        } else if (k->type == RW_CFG_LIST || k->type == RW_CFG_MAP) {
            rw_cfg_list *l = f;
            rw_cfg_map *m = f;
            size_t n = k->type == RW_CFG_LIST ? l->n : m->n;
            void *v = k->type == RW_CFG_LIST ? l->v : m->v;
            int *lines = k->type == RW_CFG_LIST ? l->lines : m->lines;
            for (size_t j = 0; j < n; j++) {
                char el[600];
                if (k->type == RW_CFG_LIST)
                    snprintf(el, sizeof el, "%s[%zu]", sub, j);
                else
                    snprintf(el, sizeof el, "%s.%s", sub, m->keys[j]);
                if ((rc = check_tree(k->sub, (char *)v + j * k->sub->size, file, el,
                                     lines ? lines[j] : 0, err)) != RW_OK)
                    return rc;
            }
        }
    }
    if (t->check && (rc = t->check(obj, err)) != RW_OK) {
        if (line)
            rw_err_prefix(err, "%s:%d: %s", file ? file : "config", line, *path ? path : t->name);
        else if (file)
            rw_err_prefix(err, "%s: %s", file, *path ? path : t->name);
        else
            rw_err_prefix(err, "%s", *path ? path : t->name);
        return rc;
    }
    return RW_OK;
}

rw_rc rw_cfg_check(const rw_cfg_table *t, void *obj, rw_err *err)
{
    return check_tree(t, obj, NULL, "", 0, err);
}

rw_rc rw_cfg_copy(const rw_cfg_table *t, void *dst, const void *src, rw_err *err)
{
    rw_rc rc = copy_fields(t, dst, src, err);
    if (rc == RW_OK)
        rc = check_tree(t, dst, NULL, "", 0, err);
    if (rc != RW_OK)
        rw_cfg_free(t, dst);
    return rc;
}

/* ---- loading ---- */

static rw_rc load_tree(const rw_cfg_table *t, void *obj, const rw_ynode *root, const char *name,
                       const char *dir, rw_err *err)
{
    bctx c = {.file = name, .dir = dir, .err = err};
    if (rw_yaml_is_null(root))
        return check_tree(t, obj, name, "", 0, err);
    if (root->kind != RW_Y_MAP)
        return rw_err_set(err, RW_BADREQ, "%s:%d: the top level must be a map of keys", name,
                          root->line);
    const rw_cfg_table *tabs[1] = {t};
    void *objs[1] = {obj};
    rw_rc rc = bind_map(&c, tabs, objs, 1, root, "");
    if (rc != RW_OK)
        return rc;
    return check_tree(t, obj, name, "", 0, err);
}

rw_rc rw_cfg_load_string(const rw_cfg_table *t, void *obj, const char *yaml, size_t len,
                         const char *name, rw_err *err)
{
    rw_arena *a = rw_arena_new(0, 0);
    if (!a)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    rw_ynode *root;
    const char *nm = name ? name : "<config>";
    rw_rc rc = rw_yaml_parse(yaml, len, nm, a, &root, err);
    if (rc == RW_OK)
        rc = load_tree(t, obj, root, nm, NULL, err);
    rw_arena_free(a);
    return rc;
}

rw_rc rw_cfg_load_file(const rw_cfg_table *t, void *obj, const char *path, rw_err *err)
{
    rw_arena *a = rw_arena_new(0, 0);
    if (!a)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    rw_ynode *root;
    rw_rc rc = rw_yaml_parse_file(path, a, &root, err);
    if (rc == RW_OK) {
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
            *slash = '\0';
        rc = load_tree(t, obj, root, path, slash ? dir : NULL, err);
        free(dir);
    }
    rw_arena_free(a);
    return rc;
}

/* ---- dotted lookup and --set ---- */

static const rw_cfg_key *find_in(const rw_cfg_table *t, const void *obj, const char *key,
                                 const void **field)
{
    const char *dot = strchr(key, '.');
    size_t len = dot ? (size_t)(dot - key) : strlen(key);
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        if (strlen(k->name) != len || strncmp(k->name, key, len) != 0)
            continue;
        const void *f = obj ? CFIELD(obj, k) : NULL;
        if (!dot) {
            if (field)
                *field = f;
            return k;
        }
        if (k->type == RW_CFG_SECTION) {
            /* sections of one name may be several: try each */
            const rw_cfg_key *r = find_in(k->sub, f, dot + 1, field);
            if (r)
                return r;
        }
    }
    return NULL;
}

const rw_cfg_key *rw_cfg_find(const rw_cfg_table *t, const char *key)
{
    return find_in(t, NULL, key, NULL);
}

rw_rc rw_cfg_set(const rw_cfg_table *t, void *obj, const char *key, const char *value,
                 rw_err *err)
{
    const void *f = NULL;
    const rw_cfg_key *k = find_in(t, obj, key, &f);
    if (!k)
        return rw_err_set(err, RW_BADREQ, "unknown configuration key \"%s\"", key);
    rw_rc rc = set_scalar(k, (void *)f, value, NULL, err);
    if (rc != RW_OK)
        rw_err_prefix(err, "%s", key);
    return rc;
}

/* ---- comparison ---- */

static int diff(char *path, size_t cap, const char *prefix, const char *name)
{
    if (path && cap)
        snprintf(path, cap, "%s%s%s", prefix, *prefix ? "." : "", name);
    return 0;
}

static int equal_tree(const rw_cfg_table *t, const void *a, const void *b, int only_fixed,
                      const char *prefix, char *path, size_t cap)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        if (only_fixed && (k->flags & RW_CFG_RELOAD))
            continue;
        const void *fa = CFIELD(a, k), *fb = CFIELD(b, k);
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", prefix, *prefix ? "." : "", k->name);
        switch (k->type) {
        case RW_CFG_STRING:
        case RW_CFG_PATH: {
            const char *x = *(char *const *)fa, *y = *(char *const *)fb;
            if (strcmp(x ? x : "", y ? y : ""))
                return diff(path, cap, prefix, k->name);
            break;
        }
        case RW_CFG_BOOL:
        case RW_CFG_ENUM:
            if (*(const int *)fa != *(const int *)fb)
                return diff(path, cap, prefix, k->name);
            break;
        case RW_CFG_INT:
        case RW_CFG_BYTES:
        case RW_CFG_DURATION:
            if (*(const int64_t *)fa != *(const int64_t *)fb)
                return diff(path, cap, prefix, k->name);
            break;
        case RW_CFG_FLOAT:
            if (*(const double *)fa != *(const double *)fb)
                return diff(path, cap, prefix, k->name);
            break;
        case RW_CFG_REGEX: {
            const rw_cfg_regex *x = fa, *y = fb;
            if (strcmp(x->src ? x->src : "", y->src ? y->src : ""))
                return diff(path, cap, prefix, k->name);
            break;
        }
        case RW_CFG_STRINGS: {
            const rw_cfg_strings *x = fa, *y = fb;
            if (x->n != y->n)
                return diff(path, cap, prefix, k->name);
            for (size_t j = 0; j < x->n; j++)
                if (strcmp(x->v[j], y->v[j]))
                    return diff(path, cap, prefix, k->name);
            break;
        }
        case RW_CFG_LABELS:
        case RW_CFG_REST: {
            const rw_cfg_labels *x = fa, *y = fb;
            if (!rw_labels_equal(x->v, x->n, y->v, y->n))
                return diff(path, cap, prefix, k->name);
            break;
        }
        case RW_CFG_SECTION:
            if (!equal_tree(k->sub, fa, fb, only_fixed, sub, path, cap))
                return 0;
            break;
        case RW_CFG_LIST:
        case RW_CFG_MAP: {
            const rw_cfg_list *la = fa, *lb = fb;
            const rw_cfg_map *ma = fa, *mb = fb;
            size_t na = k->type == RW_CFG_LIST ? la->n : ma->n;
            size_t nb = k->type == RW_CFG_LIST ? lb->n : mb->n;
            if (na != nb)
                return diff(path, cap, prefix, k->name);
            const char *va = k->type == RW_CFG_LIST ? la->v : ma->v;
            const char *vb = k->type == RW_CFG_LIST ? lb->v : mb->v;
            for (size_t j = 0; j < na; j++) {
                if (k->type == RW_CFG_MAP && strcmp(ma->keys[j], mb->keys[j]))
                    return diff(path, cap, prefix, k->name);
                if (!equal_tree(k->sub, va + j * k->sub->size, vb + j * k->sub->size,
                                only_fixed, sub, path, cap))
                    return 0;
            }
            break;
        }
        }
    }
    return 1;
}

int rw_cfg_equal(const rw_cfg_table *t, const void *a, const void *b, int only_fixed,
                 char *path, size_t cap)
{
    return equal_tree(t, a, b, only_fixed, "", path, cap);
}

/* ---- dump ---- */

static void dump_str(rw_buf *out, const char *s)
{
    rw_buf_putc(out, '"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            rw_buf_putc(out, '\\');
        if (*s == '\n') {
            rw_buf_puts(out, "\\n");
            continue;
        }
        rw_buf_putc(out, *s);
    }
    rw_buf_putc(out, '"');
}

static void dump_tree(const rw_cfg_table *t, const void *obj, rw_buf *out, int indent,
                      int first_indent);

static void dump_value(const rw_cfg_key *k, const void *f, rw_buf *out, int indent)
{
    if (k->flags & RW_CFG_SECRET) {
        const char *s = (k->type == RW_CFG_STRING || k->type == RW_CFG_PATH) ? *(char *const *)f
                                                                              : NULL;
        rw_buf_puts(out, s && *s ? " <secret>\n" : " \"\"\n");
        return;
    }
    char tmp[64];
    switch (k->type) {
    case RW_CFG_STRING:
    case RW_CFG_PATH:
        rw_buf_putc(out, ' ');
        dump_str(out, *(char *const *)f);
        rw_buf_putc(out, '\n');
        break;
    case RW_CFG_BOOL:
        rw_buf_printf(out, " %s\n", *(const int *)f ? "true" : "false");
        break;
    case RW_CFG_INT:
    case RW_CFG_BYTES:
        rw_buf_printf(out, " %lld\n", (long long)*(const int64_t *)f);
        break;
    case RW_CFG_FLOAT:
        rw_buf_printf(out, " %.17g\n", *(const double *)f);
        break;
    case RW_CFG_DURATION:
        rw_format_duration(*(const int64_t *)f, tmp, sizeof tmp);
        rw_buf_printf(out, " %s\n", tmp);
        break;
    case RW_CFG_ENUM:
        rw_buf_printf(out, " %s\n", k->enums[*(const int *)f]);
        break;
    case RW_CFG_REGEX:
        rw_buf_putc(out, ' ');
        dump_str(out, ((const rw_cfg_regex *)f)->src);
        rw_buf_putc(out, '\n');
        break;
    case RW_CFG_STRINGS: {
        const rw_cfg_strings *s = f;
        rw_buf_puts(out, " [");
        for (size_t i = 0; i < s->n; i++) {
            if (i)
                rw_buf_puts(out, ", ");
            dump_str(out, s->v[i]);
        }
        rw_buf_puts(out, "]\n");
        break;
    }
    case RW_CFG_LABELS:
    case RW_CFG_REST: {
        const rw_cfg_labels *l = f;
        if (!l->n) {
            rw_buf_puts(out, " {}\n");
            break;
        }
        rw_buf_putc(out, '\n');
        for (size_t i = 0; i < l->n; i++) {
            rw_buf_printf(out, "%*s%s: ", indent + 2, "", l->v[i].name);
            dump_str(out, l->v[i].value);
            rw_buf_putc(out, '\n');
        }
        break;
    }
    case RW_CFG_SECTION:
        rw_buf_putc(out, '\n');
        dump_tree(k->sub, f, out, indent + 2, indent + 2);
        break;
    case RW_CFG_LIST: {
        const rw_cfg_list *l = f;
        if (!l->n) {
            rw_buf_puts(out, " []\n");
            break;
        }
        rw_buf_putc(out, '\n');
        for (size_t i = 0; i < l->n; i++) {
            rw_buf_printf(out, "%*s-", indent + 2, "");
            dump_tree(k->sub, (const char *)l->v + i * k->sub->size, out, indent + 4, 1);
        }
        break;
    }
    case RW_CFG_MAP: {
        const rw_cfg_map *m = f;
        if (!m->n) {
            rw_buf_puts(out, " {}\n");
            break;
        }
        rw_buf_putc(out, '\n');
        for (size_t i = 0; i < m->n; i++) {
            rw_buf_printf(out, "%*s", indent + 2, "");
            dump_str(out, m->keys[i]);
            rw_buf_puts(out, ":\n");
            dump_tree(k->sub, (const char *)m->v + i * k->sub->size, out, indent + 4, indent + 4);
        }
        break;
    }
    }
}

/* first_indent: spaces before the first key (1 after a list dash). */
static void dump_tree(const rw_cfg_table *t, const void *obj, rw_buf *out, int indent,
                      int first_indent)
{
    int first = 1;
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        if (k->type == RW_CFG_REST) {
            const rw_cfg_labels *l = CFIELD(obj, k);
            for (size_t j = 0; j < l->n; j++) {
                rw_buf_printf(out, "%*s%s: ", first ? first_indent : indent, "", l->v[j].name);
                dump_str(out, l->v[j].value);
                rw_buf_putc(out, '\n');
                first = 0;
            }
            continue;
        }
        if (k->type == RW_CFG_SECTION) {
            /* sections that share a name are written as one */
            int seen = 0;
            for (size_t j = 0; j < i; j++)
                seen |= t->keys[j].type == RW_CFG_SECTION && !strcmp(t->keys[j].name, k->name);
            if (seen)
                continue;
            rw_buf_printf(out, "%*s%s:\n", first ? first_indent : indent, "", k->name);
            for (size_t j = i; j < t->nkeys; j++)
                if (t->keys[j].type == RW_CFG_SECTION && !strcmp(t->keys[j].name, k->name))
                    dump_tree(t->keys[j].sub, CFIELD(obj, &t->keys[j]), out, indent + 2,
                              indent + 2);
            first = 0;
            continue;
        }
        rw_buf_printf(out, "%*s%s:", first ? first_indent : indent, "", k->name);
        dump_value(k, CFIELD(obj, k), out, indent);
        first = 0;
    }
    if (first)
        rw_buf_puts(out, " {}\n");
}

void rw_cfg_dump(const rw_cfg_table *t, const void *obj, rw_buf *out)
{
    dump_tree(t, obj, out, 0, 0);
}

static const char *type_name(rw_cfg_type t)
{
    static const char *const names[] = {"string", "path", "bool", "int", "float", "size",
                                        "duration", "enum", "regex", "list", "labels",
                                        "section", "list", "map", "labels"};
    return (size_t)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void describe(const rw_cfg_table *t, const char *prefix, int reload, rw_buf *out)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const rw_cfg_key *k = &t->keys[i];
        int r = reload || (k->flags & RW_CFG_RELOAD);
        char path[512];
        if (k->type == RW_CFG_REST)
            snprintf(path, sizeof path, "%s%s<label>", prefix, *prefix ? "." : "");
        else
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k->name);
        if (k->type == RW_CFG_SECTION) {
            describe(k->sub, path, r, out);
            continue;
        }
        if (k->type == RW_CFG_LIST || k->type == RW_CFG_MAP) {
            char sub[520];
            snprintf(sub, sizeof sub, "%s%s", path, k->type == RW_CFG_LIST ? "[]" : ".NAME");
            rw_buf_printf(out, "%s\t%s\t\t%s\t%s\n", path, type_name(k->type),
                          r ? "reload" : "restart", k->help ? k->help : "");
            describe(k->sub, sub, r, out);
            continue;
        }
        rw_buf_printf(out, "%s\t%s", path, type_name(k->type));
        if (k->type == RW_CFG_ENUM && k->enums) {
            rw_buf_putc(out, '(');
            for (int j = 0; k->enums[j]; j++)
                rw_buf_printf(out, "%s%s", j ? "|" : "", k->enums[j]);
            rw_buf_putc(out, ')');
        }
        rw_buf_printf(out, "\t%s\t%s\t%s\n", k->def ? k->def : "", r ? "reload" : "restart",
                      k->help ? k->help : "");
    }
}

void rw_cfg_describe(const rw_cfg_table *t, rw_buf *out)
{
    describe(t, "", 0, out);
}
