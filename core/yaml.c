/* yaml.c - YAML text to an rw_ynode tree (see yaml.h), from libyaml's event
 * stream. Only the first document of a stream is read; a second one is an
 * error, as it would silently be ignored otherwise. */
#include "yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_NODES 2000000
#define MAX_FILE (64u << 20)

typedef struct anchor {
    const char *name;
    rw_ynode *node;
} anchor;

typedef struct yp {
    yaml_parser_t p;
    rw_arena *a;
    rw_err *err;
    const char *name;
    size_t nodes;
    anchor *anchors;
    size_t nanchors, capanchors;
} yp;

static rw_rc next(yp *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return rw_err_set(y->err, RW_BADREQ, "%s:%zu:%zu: YAML error: %s%s%s", y->name,
                          (size_t)y->p.problem_mark.line + 1, (size_t)y->p.problem_mark.column + 1,
                          y->p.problem ? y->p.problem : "invalid document",
                          y->p.context ? " " : "", y->p.context ? y->p.context : "");
    return RW_OK;
}

static rw_ynode *new_node(yp *y, rw_ynode_kind kind, const yaml_event_t *ev)
{
    if (++y->nodes > MAX_NODES) {
        rw_err_set(y->err, RW_LIMIT, "%s: document too large (over %d nodes)", y->name, MAX_NODES);
        return NULL;
    }
    rw_ynode *n = rw_arena_calloc(y->a, 1, sizeof *n);
    if (!n) {
        rw_err_set(y->err, RW_NOMEM, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static rw_rc remember(yp *y, const yaml_char_t *name, rw_ynode *n)
{
    if (!name)
        return RW_OK;
    if (y->nanchors == y->capanchors) {
        size_t cap = y->capanchors ? y->capanchors * 2 : 8;
        anchor *na = rw_arena_realloc(y->a, y->anchors, y->capanchors * sizeof *na,
                                      cap * sizeof *na);
        if (!na)
            return rw_err_set(y->err, RW_NOMEM, "out of memory");
        y->anchors = na;
        y->capanchors = cap;
    }
    y->anchors[y->nanchors].name = rw_arena_strdup(y->a, (const char *)name);
    y->anchors[y->nanchors++].node = n;
    return RW_OK;
}

static rw_rc push(yp *y, rw_ynode *parent, rw_ynode *key, rw_ynode *val, size_t *cap)
{
    if (parent->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        if (parent->kind == RW_Y_MAP) {
            rw_ynode **nk = rw_arena_realloc(y->a, parent->keys, *cap * sizeof *nk, nc * sizeof *nk);
            if (!nk)
                return rw_err_set(y->err, RW_NOMEM, "out of memory");
            parent->keys = nk;
        }
        rw_ynode **nv = rw_arena_realloc(y->a, parent->vals, *cap * sizeof *nv, nc * sizeof *nv);
        if (!nv)
            return rw_err_set(y->err, RW_NOMEM, "out of memory");
        parent->vals = nv;
        *cap = nc;
    }
    if (parent->kind == RW_Y_MAP)
        parent->keys[parent->n] = key;
    parent->vals[parent->n++] = val;
    return RW_OK;
}

/* Parses the node whose first event is ev (already read). */
static rw_rc parse_node(yp *y, yaml_event_t *ev, int depth, rw_ynode **out)
{
    rw_rc rc;
    if (depth > MAX_DEPTH)
        return rw_err_set(y->err, RW_LIMIT, "%s:%zu: nesting deeper than %d levels", y->name,
                          (size_t)ev->start_mark.line + 1, MAX_DEPTH);
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        for (size_t i = y->nanchors; i-- > 0;)
            if (strcmp(y->anchors[i].name, (const char *)ev->data.alias.anchor) == 0) {
                *out = y->anchors[i].node;
                return RW_OK;
            }
        return rw_err_set(y->err, RW_BADREQ, "%s:%zu: unknown alias *%s", y->name,
                          (size_t)ev->start_mark.line + 1, (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        rw_ynode *n = new_node(y, RW_Y_SCALAR, ev);
        if (!n)
            return y->err ? y->err->code : RW_NOMEM;
        n->len = ev->data.scalar.length;
        n->s = rw_arena_strndup(y->a, (const char *)ev->data.scalar.value, n->len);
        if (!n->s)
            return rw_err_set(y->err, RW_NOMEM, "out of memory");
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (!n->quoted && rw_yaml_is_null(n))
            n->kind = RW_Y_NULL;
        *out = n;
        return remember(y, ev->data.scalar.anchor, n);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int map = ev->type == YAML_MAPPING_START_EVENT;
        rw_ynode *n = new_node(y, map ? RW_Y_MAP : RW_Y_SEQ, ev);
        if (!n)
            return y->err ? y->err->code : RW_NOMEM;
        if ((rc = remember(y, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
                           n)) != RW_OK)
            return rc;
        size_t cap = 0;
        for (;;) {
            yaml_event_t e;
            if ((rc = next(y, &e)) != RW_OK)
                return rc;
            if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            rw_ynode *key = NULL, *val = NULL;
            if (map) {
                if (e.type != YAML_SCALAR_EVENT) {
                    size_t line = e.start_mark.line + 1;
                    yaml_event_delete(&e);
                    return rw_err_set(y->err, RW_BADREQ, "%s:%zu: map keys must be plain values",
                                      y->name, line);
                }
                rc = parse_node(y, &e, depth + 1, &key);
                yaml_event_delete(&e);
                if (rc != RW_OK)
                    return rc;
                for (size_t i = 0; i < n->n; i++)
                    if (strcmp(n->keys[i]->s, key->s) == 0)
                        return rw_err_set(y->err, RW_BADREQ,
                                          "%s:%d: key \"%s\" already set in this map (line %d)",
                                          y->name, key->line, key->s, n->keys[i]->line);
                if ((rc = next(y, &e)) != RW_OK)
                    return rc;
            }
            rc = parse_node(y, &e, depth + 1, &val);
            yaml_event_delete(&e);
            if (rc != RW_OK)
                return rc;
            if ((rc = push(y, n, key, val, &cap)) != RW_OK)
                return rc;
        }
        *out = n;
        return RW_OK;
    }
    default:
        return rw_err_set(y->err, RW_BADREQ, "%s:%zu: unexpected YAML event", y->name,
                          (size_t)ev->start_mark.line + 1);
    }
}

rw_rc rw_yaml_parse(const char *text, size_t len, const char *name, rw_arena *a, rw_ynode **root,
                    rw_err *err)
{
    yp y = {.a = a, .err = err, .name = name ? name : "<yaml>"};
    static const yaml_event_t null_ev; /* start mark of an empty document */
    rw_rc rc = RW_OK;
    *root = NULL;
    yaml_parser_initialize(&y.p);
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    int in_doc = 0, docs = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next(&y, &ev)) != RW_OK)
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (++docs > 1) {
                rc = rw_err_set(err, RW_BADREQ, "%s:%zu: only one YAML document is allowed",
                                y.name, (size_t)ev.start_mark.line + 1);
                yaml_event_delete(&ev);
                break;
            }
            in_doc = 1;
        } else if (t == YAML_DOCUMENT_END_EVENT) {
            in_doc = 0;
        } else if (in_doc && t != YAML_STREAM_START_EVENT) {
            rc = parse_node(&y, &ev, 0, root);
        }
        yaml_event_delete(&ev);
        if (rc != RW_OK)
            break;
    }
    yaml_parser_delete(&y.p);
    if (rc == RW_OK && !*root) {
        *root = new_node(&y, RW_Y_NULL, &null_ev);
        if (!*root)
            rc = err ? err->code : RW_NOMEM;
    }
    return rc;
}

rw_rc rw_yaml_parse_file(const char *path, rw_arena *a, rw_ynode **root, rw_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rw_err_set(err, RW_BADREQ, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    rw_rc rc = RW_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > MAX_FILE + 1) {
                rc = rw_err_set(err, RW_LIMIT, "%s: larger than %u bytes", path, MAX_FILE);
                break;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = rw_err_set(err, RW_NOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = rw_err_set(err, RW_BADREQ, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == RW_OK)
        rc = rw_yaml_parse(buf ? buf : "", len, path, a, root, err);
    free(buf);
    return rc;
}

const rw_ynode *rw_yaml_get(const rw_ynode *map, const char *key)
{
    if (!map || map->kind != RW_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->s, key) == 0)
            return map->vals[i];
    return NULL;
}

int rw_yaml_is_null(const rw_ynode *n)
{
    if (!n || n->kind == RW_Y_NULL)
        return 1;
    if (n->kind != RW_Y_SCALAR || n->quoted)
        return 0;
    return n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
           strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0;
}
