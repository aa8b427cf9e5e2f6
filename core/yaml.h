/* yaml.h - a YAML document as a small tree of scalars, maps and sequences
 * with line and column numbers, built with libyaml's event parser. The
 * configuration loader (cfg.c) binds such a tree to typed tables; other
 * readers of YAML with a free shape use the tree directly.
 *
 * Anchors and aliases are resolved (an alias shares the anchored node).
 * Duplicate keys in one map are an error, as in Go's yaml.v2 which
 * Prometheus uses. Limits on nesting depth and node count keep hostile input
 * bounded. The whole tree lives in one arena. */
#ifndef RW_YAML_H
#define RW_YAML_H

#include <stddef.h>
#include "arena.h"
#include "err.h"

typedef enum { RW_Y_NULL, RW_Y_SCALAR, RW_Y_MAP, RW_Y_SEQ } rw_ynode_kind;

typedef struct rw_ynode rw_ynode;
struct rw_ynode {
    rw_ynode_kind kind;
    int line, col;        /* 1-based */
    /* RW_Y_SCALAR (and the key strings of a map): NUL-terminated */
    const char *s;
    size_t len;
    int quoted;           /* written in quotes: never null/bool by plain-scalar rules */
    /* RW_Y_MAP: n pairs keys[i] -> vals[i] in document order;
       RW_Y_SEQ: n items vals[i] */
    rw_ynode **keys;
    rw_ynode **vals;
    size_t n;
};

/* Parses one document (an empty document gives a RW_Y_NULL root). name is
 * used in error messages ("name:line:col: ..."). */
rw_rc rw_yaml_parse(const char *text, size_t len, const char *name, rw_arena *a, rw_ynode **root,
                    rw_err *err);
rw_rc rw_yaml_parse_file(const char *path, rw_arena *a, rw_ynode **root, rw_err *err);

/* The value of key in a map node, or NULL. */
const rw_ynode *rw_yaml_get(const rw_ynode *map, const char *key);
/* A plain scalar that YAML reads as null ("", "~", "null"), or a null node. */
int rw_yaml_is_null(const rw_ynode *n);

#endif
