/* inventory.c - the cluster inventory behind the write path's standard-
 * labels stage (see clean.h): platform teams list their clusters with
 * region, product, scenario, size and any other labels, and every series
 * of a listed cluster is stored with them, so alert rules select on
 * `region="gz"` instead of regexes over cluster names.
 *
 * The file is described by a cfg table (a map of cluster name to entry,
 * with a catch-all for extra labels), so errors name the file, line and
 * cluster. After loading, each entry becomes one sorted label array and
 * the names go into an open-addressing hash table (xxHash); the table is
 * immutable and shared by every request until a reload swaps in a new one.
 * Applying an entry is one merge of two sorted arrays. */
#include "clean.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "core/cfg.h"

/* ---- the file's shape ---- */

typedef struct inv_entry_cfg {
    char *region, *product, *scenario, *size;
    int override;
    rw_cfg_labels extra;
} inv_entry_cfg;

typedef struct inv_file {
    rw_cfg_map clusters;
} inv_file;

static rw_rc check_entry(void *obj, rw_err *err)
{
    inv_entry_cfg *e = obj;
    if (*e->size && strcmp(e->size, "small") && strcmp(e->size, "default") &&
        strcmp(e->size, "large"))
        return rw_err_set(err, RW_BADREQ, "size \"%.40s\" is not one of: small, default, large",
                          e->size);
    for (size_t i = 0; i < e->extra.n; i++)
        if (!rw_utf8_valid(e->extra.v[i].name, strlen(e->extra.v[i].name)) ||
            !strcmp(e->extra.v[i].name, RW_METRIC_NAME))
            return rw_err_set(err, RW_BADREQ, "\"%.64s\" cannot be an inventory label",
                              e->extra.v[i].name);
    return RW_OK;
}

#define EF(f) offsetof(inv_entry_cfg, f)
static const rw_cfg_key entry_keys[] = {
    {"region", RW_CFG_STRING, EF(region), NULL, 0, 0, RW_CFG_RELOAD, "Region label.", NULL, NULL},
    {"product", RW_CFG_STRING, EF(product), NULL, 0, 0, RW_CFG_RELOAD, "Product label.", NULL,
     NULL},
    {"scenario", RW_CFG_STRING, EF(scenario), NULL, 0, 0, RW_CFG_RELOAD,
     "Scenario label (business, internal, ...).", NULL, NULL},
    {"size", RW_CFG_STRING, EF(size), NULL, 0, 0, RW_CFG_RELOAD,
     "Size class: small, default or large.", NULL, NULL},
    {"override", RW_CFG_BOOL, EF(override), "false", 0, 0, RW_CFG_RELOAD,
     "The inventory's labels win over labels the sender set.", NULL, NULL},
    {"labels", RW_CFG_REST, EF(extra), NULL, 0, 0, RW_CFG_RELOAD,
     "Any other key: a label with that name.", NULL, NULL},
};
static const rw_cfg_table entry_table =
    RW_CFG_TABLE("inventory cluster", inv_entry_cfg, entry_keys, check_entry, NULL);

static const rw_cfg_key file_keys[] = {
    {"clusters", RW_CFG_MAP, offsetof(inv_file, clusters), NULL, 0, 0, RW_CFG_RELOAD,
     "Cluster name -> its labels.", &entry_table, NULL},
};
static const rw_cfg_table file_table = RW_CFG_TABLE("inventory", inv_file, file_keys, NULL, NULL);

/* ---- the lookup table ---- */

struct rw_inventory_entry {
    char *cluster;
    rw_label *labels; /* sorted; strings owned by the inventory's block */
    uint32_t lens[2 * 64]; /* name and value lengths of the first 64 labels */
    size_t nlabels;
    int override;
};

struct rw_inventory {
    char *path;
    rw_inventory_entry *entries;
    size_t n;
    rw_label *labels; /* every entry's labels, one array */
    uint32_t *slots;  /* open addressing: entry index + 1, 0 = empty */
    size_t nslots;    /* power of two, >= 2n */
    char *strings;    /* every name and value, one block */
};

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const rw_label *)a)->name, ((const rw_label *)b)->name);
}

static size_t slot_of(const rw_inventory *inv, const char *s, size_t len)
{
    return (size_t)XXH3_64bits(s, len) & (inv->nslots - 1);
}

static rw_inventory *build(inv_file *f, const char *path, rw_err *err)
{
    rw_inventory *inv = calloc(1, sizeof *inv);
    if (!inv)
        goto nomem;
    inv->path = strdup(path ? path : "");
    size_t n = f->clusters.n, bytes = 0, nlab = 0;
    inv_entry_cfg *ec = f->clusters.v;
    for (size_t i = 0; i < n; i++) {
        bytes += strlen(f->clusters.keys[i]) + 1;
        const char *fixed[4] = {ec[i].region, ec[i].product, ec[i].scenario, ec[i].size};
        for (int k = 0; k < 4; k++)
            bytes += strlen(fixed[k]) + 1;
        for (size_t j = 0; j < ec[i].extra.n; j++)
            bytes += strlen(ec[i].extra.v[j].name) + strlen(ec[i].extra.v[j].value) + 2;
        nlab += 4 + ec[i].extra.n;
    }
    inv->strings = malloc(bytes + 1);
    inv->entries = calloc(n ? n : 1, sizeof *inv->entries);
    rw_label *labels = inv->labels = calloc(nlab ? nlab : 1, sizeof *labels);
    inv->nslots = 16;
    while (inv->nslots < 2 * n)
        inv->nslots *= 2;
    inv->slots = calloc(inv->nslots, sizeof *inv->slots);
    if (!inv->path || !inv->strings || !inv->entries || !labels || !inv->slots)
        goto nomem;
    char *sp = inv->strings;
#define COPY(dst, s)                      \
    do {                                  \
        size_t l_ = strlen(s) + 1;        \
        memcpy(sp, (s), l_);              \
        (dst) = sp;                       \
        sp += l_;                         \
    } while (0)
    rw_label *lp = labels;
    for (size_t i = 0; i < n; i++) {
        rw_inventory_entry *e = &inv->entries[i];
        COPY(e->cluster, f->clusters.keys[i]);
        e->labels = lp;
        e->override = ec[i].override;
        static const char *const names[4] = {"region", "product", "scenario", "size"};
        const char *fixed[4] = {ec[i].region, ec[i].product, ec[i].scenario, ec[i].size};
        for (int k = 0; k < 4; k++) {
            if (!*fixed[k])
                continue;
            lp->name = names[k];
            COPY(lp->value, fixed[k]);
            lp++;
        }
        for (size_t j = 0; j < ec[i].extra.n; j++) {
            const rw_label *x = &ec[i].extra.v[j];
            if (!*x->value)
                continue; /* "" means no label, as everywhere in Prometheus */
            int dup = 0;
            for (rw_label *q = e->labels; q < lp; q++)
                dup |= !strcmp(q->name, x->name);
            if (dup)
                continue;
            COPY(lp->name, x->name);
            COPY(lp->value, x->value);
            lp++;
        }
        e->nlabels = (size_t)(lp - e->labels);
        qsort(e->labels, e->nlabels, sizeof *e->labels, cmp_label);
        for (size_t j = 0; j < e->nlabels && j < 64; j++) {
            e->lens[2 * j] = (uint32_t)strlen(e->labels[j].name);
            e->lens[2 * j + 1] = (uint32_t)strlen(e->labels[j].value);
        }
        size_t len = strlen(e->cluster);
        size_t s = slot_of(inv, e->cluster, len);
        while (inv->slots[s])
            s = (s + 1) & (inv->nslots - 1);
        inv->slots[s] = (uint32_t)i + 1;
    }
#undef COPY
    inv->n = n;
    return inv;
nomem:
    rw_inventory_free(inv);
    rw_err_set(err, RW_NOMEM, "out of memory loading the inventory");
    return NULL;
}

static rw_inventory *finish(inv_file *f, rw_rc rc, const char *path, rw_err *err)
{
    rw_inventory *inv = rc == RW_OK ? build(f, path, err) : NULL;
    rw_cfg_free(&file_table, f);
    return inv;
}

rw_inventory *rw_inventory_load(const char *path, rw_err *err)
{
    inv_file f;
    rw_cfg_defaults(&file_table, &f);
    rw_rc rc = rw_cfg_load_file(&file_table, &f, path, err);
    return finish(&f, rc, path, err);
}

rw_inventory *rw_inventory_parse(const char *yaml, size_t len, const char *name, rw_err *err)
{
    inv_file f;
    rw_cfg_defaults(&file_table, &f);
    rw_rc rc = rw_cfg_load_string(&file_table, &f, yaml, len, name, err);
    return finish(&f, rc, name, err);
}

void rw_inventory_free(rw_inventory *inv)
{
    if (!inv)
        return;
    free(inv->labels);
    free(inv->entries);
    free(inv->slots);
    free(inv->strings);
    free(inv->path);
    free(inv);
}

size_t rw_inventory_size(const rw_inventory *inv) { return inv->n; }
const char *rw_inventory_path(const rw_inventory *inv) { return inv->path; }

const rw_inventory_entry *rw_inventory_find(const rw_inventory *inv, const char *cluster,
                                            size_t len)
{
    size_t s = slot_of(inv, cluster, len);
    while (inv->slots[s]) {
        const rw_inventory_entry *e = &inv->entries[inv->slots[s] - 1];
        if (strncmp(e->cluster, cluster, len) == 0 && e->cluster[len] == '\0')
            return e;
        s = (s + 1) & (inv->nslots - 1);
    }
    return NULL;
}

const rw_label *rw_inventory_entry_labels(const rw_inventory_entry *e, size_t *n, int *override)
{
    *n = e->nlabels;
    if (override)
        *override = e->override;
    return e->labels;
}

static const rw_label unknown_label[] = {{"scenario", "unknown"}};

static inline int ncmp(const char *a, const char *b)
{
    if (a[0] != b[0])
        return (unsigned char)a[0] - (unsigned char)b[0];
    return strcmp(a, b);
}

static const uint32_t unknown_lens[] = {8, 7};

rw_rc rw_inventory_apply_lens(const rw_inventory_entry *e, rw_arena *a, const rw_label *in,
                              const uint32_t *in_lens, size_t nin, rw_labels *out,
                              const uint32_t **out_lens)
{
    const rw_label *add = e ? e->labels : unknown_label;
    const uint32_t *alens = e ? (e->nlabels <= 64 ? e->lens : NULL) : unknown_lens;
    size_t nadd = e ? e->nlabels : 1;
    int override = e ? e->override : 0;
    out->v = (rw_label *)in;
    out->n = nin;
    if (out_lens)
        *out_lens = in_lens;
    /* one merge into a new array; when nothing changed (every label there
       with the same value, or the sender's winning) the input is kept */
    rw_label *v = rw_arena_alloc(a, (nin + nadd) * sizeof *v);
    uint32_t *vl = NULL;
    if (!v || (out_lens && in_lens && alens &&
               !(vl = rw_arena_alloc(a, 2 * (nin + nadd) * sizeof *vl))))
        return RW_NOMEM;
    size_t i = 0, j = 0, k = 0;
    int changed = 0;
#define FROM_IN()                                                                  \
    do {                                                                           \
        if (vl) {                                                                  \
            vl[2 * k] = in_lens[2 * i];                                            \
            vl[2 * k + 1] = in_lens[2 * i + 1];                                    \
        }                                                                          \
        v[k++] = in[i];                                                            \
    } while (0)
#define FROM_ADD()                                                                 \
    do {                                                                           \
        if (vl) {                                                                  \
            vl[2 * k] = alens[2 * j];                                              \
            vl[2 * k + 1] = alens[2 * j + 1];                                      \
        }                                                                          \
        v[k++] = add[j];                                                           \
    } while (0)
    while (i < nin || j < nadd) {
        int c = i >= nin ? 1 : j >= nadd ? -1 : ncmp(in[i].name, add[j].name);
        if (c < 0) {
            FROM_IN();
            i++;
        } else if (c > 0) {
            FROM_ADD();
            j++;
            changed = 1;
        } else {
            if (override && strcmp(in[i].value, add[j].value)) {
                FROM_ADD();
                changed = 1;
            } else {
                FROM_IN();
            }
            i++;
            j++;
        }
    }
#undef FROM_IN
#undef FROM_ADD
    if (changed) {
        out->v = v;
        out->n = k;
        if (out_lens)
            *out_lens = vl; /* NULL when lengths were not known: strlen later */
    }
    return RW_OK;
}

rw_rc rw_inventory_apply(const rw_inventory_entry *e, rw_arena *a, const rw_label *in,
                         size_t nin, rw_labels *out)
{
    return rw_inventory_apply_lens(e, a, in, NULL, nin, out, NULL);
}
