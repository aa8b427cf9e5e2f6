/* cfg.h - typed configuration tables and the YAML loader that binds a file
 * to them.
 *
 * Every layer owns its configuration: a C struct plus one table of rows
 * {name, type, offsetof(field), default, bounds, flags, help} that says how
 * each YAML key maps onto the struct (nginx's ngx_command_t, Redis'
 * standardConfig). The integrator (cmd/) composes the layers' tables into a
 * root table of sections. Tables nest: a row may be a section (a struct
 * inside the struct), a list of sections or a map from names to sections, so
 * Prometheus-shaped documents (rule files, alerting, relabel configs, a
 * cluster inventory) load through the same code.
 *
 * Loading a document: every field gets its default, the YAML overlays it,
 * `--set key=value` overrides scalars by dotted path, then each table's check
 * function validates and compiles (regexes, enums, cross-field rules) from the
 * leaves up. Strings become enums, numbers, durations and compiled regexes
 * here, never at run time. Errors name the file, line, and dotted key path
 * ("rwgate.yml:12: ingest.write_relabel_configs[1].regex: ..."); an unknown
 * key is an error with its line number.
 *
 * Several section rows of one table may carry the same name: their sub-tables
 * share that YAML section, each owning its own keys (the `global:` section of
 * a Prometheus config holds keys of several layers).
 *
 * Ownership: a loaded struct owns every string, array and compiled object in
 * it; rw_cfg_free releases them all, recursively. Loaded configuration is
 * immutable: a reload loads a new struct and swaps it in. */
#ifndef RW_CFG_H
#define RW_CFG_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "err.h"
#include "labels.h"

typedef enum {
    RW_CFG_STRING,   /* char *, never NULL after defaults ("" when unset) */
    RW_CFG_PATH,     /* char *, a file path: relative paths are resolved
                        against the directory of the file that names them */
    RW_CFG_BOOL,     /* int: true/false */
    RW_CFG_INT,      /* int64_t */
    RW_CFG_FLOAT,    /* double */
    RW_CFG_BYTES,    /* int64_t: 512, 64KiB, 32MiB, 1GB ... */
    RW_CFG_DURATION, /* int64_t milliseconds: Prometheus durations 1h30m, 15s, 0 */
    RW_CFG_ENUM,     /* int: index into key->enums */
    RW_CFG_REGEX,    /* rw_cfg_regex: fully anchored, compiled at load */
    RW_CFG_STRINGS,  /* rw_cfg_strings: a YAML list of scalars (--set: comma list) */
    RW_CFG_LABELS,   /* rw_cfg_labels: a map of label name -> string, sorted */
    RW_CFG_SECTION,  /* a struct described by key->sub, embedded at off */
    RW_CFG_LIST,     /* rw_cfg_list of key->sub structs */
    RW_CFG_MAP,      /* rw_cfg_map: name -> key->sub struct, in file order */
    RW_CFG_REST      /* rw_cfg_labels: every scalar key of this map that no
                        other row names (inventory entries: any label) */
} rw_cfg_type;

enum {
    RW_CFG_RELOAD = 1,   /* may change on reload (a section/list/map row
                            covers everything inside it) */
    RW_CFG_REQUIRED = 2, /* must be given in the document */
    RW_CFG_SECRET = 4,   /* never printed by rw_cfg_dump */
};

typedef struct rw_cfg_strings {
    char **v;
    size_t n;
} rw_cfg_strings;

typedef struct rw_cfg_labels {
    rw_label *v; /* sorted by name; names and values owned */
    size_t n;
} rw_cfg_labels;

typedef struct rw_cfg_list {
    void *v;     /* n elements of sub->size bytes */
    size_t n;
    int *lines;  /* line of each element in its file (0 when not from a file) */
} rw_cfg_list;

typedef struct rw_cfg_map {
    char **keys;
    void *v;     /* n elements of sub->size bytes, keys[i] names element i */
    size_t n;
    int *lines;
} rw_cfg_map;

struct rw_regex;
typedef struct rw_cfg_regex {
    char *src;            /* as written */
    struct rw_regex *re;  /* compiled, anchored ^(?:src)$ (core/regex.h) */
} rw_cfg_regex;

typedef struct rw_cfg_table rw_cfg_table;

typedef struct rw_cfg_key {
    const char *name;
    rw_cfg_type type;
    size_t off;               /* offsetof(struct, field) */
    const char *def;          /* default as YAML text; NULL = zero / empty */
    double min, max;          /* bounds for INT/FLOAT/BYTES/DURATION;
                                 min == max == 0: unbounded */
    unsigned flags;           /* RW_CFG_RELOAD | RW_CFG_REQUIRED | RW_CFG_SECRET */
    const char *help;
    const rw_cfg_table *sub;  /* SECTION / LIST / MAP */
    const char *const *enums; /* ENUM: names, NULL-terminated */
} rw_cfg_key;

/* Validates and compiles one loaded struct after its fields are set (and its
 * children checked). Fill err with a message about the struct's own keys;
 * the loader prefixes file, line and path. */
typedef rw_rc (*rw_cfg_check_fn)(void *obj, rw_err *err);
/* Frees what check built (compiled forms kept beside the fields). */
typedef void (*rw_cfg_release_fn)(void *obj);

struct rw_cfg_table {
    const char *name;          /* for messages and dumps */
    const rw_cfg_key *keys;
    size_t nkeys;
    size_t size;               /* sizeof the struct (list / map elements) */
    rw_cfg_check_fn check;     /* may be NULL */
    rw_cfg_release_fn release; /* may be NULL */
};

#define RW_CFG_TABLE(name, type, keys, check, release) \
    {name, keys, sizeof keys / sizeof keys[0], sizeof(type), check, release}

/* Sets every field of obj (and nested sections) to its default; obj's
 * previous contents are overwritten, not freed. Lists and maps start empty. */
void rw_cfg_defaults(const rw_cfg_table *t, void *obj);

/* Loads a YAML document on top of obj's current values (normally the
 * defaults), then runs the check functions. name is used in messages (a file
 * path; relative RW_CFG_PATH values are resolved against its directory when
 * from_file). */
rw_rc rw_cfg_load_file(const rw_cfg_table *t, void *obj, const char *path, rw_err *err);
rw_rc rw_cfg_load_string(const rw_cfg_table *t, void *obj, const char *yaml, size_t len,
                         const char *name, rw_err *err);

/* Sets one scalar key by dotted path ("ingest.max_body_bytes") from text, as
 * a flag would; STRINGS take a comma-separated list. Run rw_cfg_check after
 * the last set. */
rw_rc rw_cfg_set(const rw_cfg_table *t, void *obj, const char *key, const char *value,
                 rw_err *err);
/* Runs the check functions over the whole tree (rw_cfg_load_* do this
 * themselves; call it after rw_cfg_set). */
rw_rc rw_cfg_check(const rw_cfg_table *t, void *obj, rw_err *err);

/* Deep copy of a loaded struct into dst (overwritten, not freed), then the
 * check functions run on the copy, so compiled forms are its own. A layer
 * that keeps its settings across reloads copies the section it owns. */
rw_rc rw_cfg_copy(const rw_cfg_table *t, void *dst, const void *src, rw_err *err);

/* Frees everything obj owns (not obj itself) and zeroes it. */
void rw_cfg_free(const rw_cfg_table *t, void *obj);

/* Deep equality of two loaded structs (all keys, or only the keys not marked
 * RW_CFG_RELOAD when only_fixed). When they differ and path is not NULL, the
 * dotted path of the first difference is written there. */
int rw_cfg_equal(const rw_cfg_table *t, const void *a, const void *b, int only_fixed,
                 char *path, size_t cap);

/* Writes obj as YAML (secrets as <secret>), for `check config` and logs. */
void rw_cfg_dump(const rw_cfg_table *t, const void *obj, rw_buf *out);

/* One line per key, depth first: "path<TAB>type<TAB>default<TAB>reload|restart
 * <TAB>help" (lists and maps as "path[]" and "path.NAME"), for
 * `rwgate help config` and the tests that check every reloadable key. */
void rw_cfg_describe(const rw_cfg_table *t, rw_buf *out);

/* Row lookup by dotted path (NULL when unknown); for flags and help. */
const rw_cfg_key *rw_cfg_find(const rw_cfg_table *t, const char *key);

/* Parses a size with a unit (B, KB, KiB, MB, MiB, GB, GiB, K, M, G). */
rw_rc rw_cfg_parse_bytes(const char *s, int64_t *out);

#endif
