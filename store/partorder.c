/* partorder.c - the order a block's parts are written in (flushes and
 * compaction): by metric name, then series id. Series ids follow creation,
 * so a fleet's series of one metric are spread over the whole id range (one
 * cluster after another); written in id order, a query of one metric over
 * a block read a page per series from all over the block's rows, cold a
 * disk wait each. In name order they lie together and a query reads a few
 * neighbouring pages per block. The block index stays sorted by series id
 * and readers sort what they want by rowid, so blocks of either order read
 * the same (store/FORMAT.md "Tables").
 *
 * Memory follows the series, 12 bytes each, whatever the names: a flush of
 * a million series keeps a key per series and each distinct metric name
 * once (copied under the shard lock: a series may go once it is released),
 * found again by a hash of its bytes. Sorting ranks the few distinct names
 * and then compares integers. */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "store_int.h"

void porder_init(porder *o)
{
    memset(o, 0, sizeof *o);
    rw_buf_init(&o->names, 0);
}

void porder_free(porder *o)
{
    rw_buf_free(&o->names);
    free(o->off);
    free(o->slot);
    free(o->hash);
    free(o->k);
    memset(o, 0, sizeof *o);
}

static int slots_grow(porder *o)
{
    size_t ns = o->nslots ? o->nslots * 2 : 64;
    uint32_t *t = calloc(ns, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < o->nnames; i++) {
        size_t j = o->hash[i] & (ns - 1);
        while (t[j])
            j = (j + 1) & (ns - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(o->slot);
    o->slot = t;
    o->nslots = ns;
    return 0;
}

/* The number + 1 of name nm, added when new; 0 out of memory. */
static uint32_t name_no(porder *o, const char *nm)
{
    size_t len = strlen(nm);
    uint64_t h = XXH3_64bits(nm, len);
    if ((o->nnames + 1) * 2 > o->nslots && slots_grow(o) < 0)
        return 0;
    size_t j = h & (o->nslots - 1);
    for (; o->slot[j]; j = (j + 1) & (o->nslots - 1)) {
        uint32_t i = o->slot[j] - 1;
        if (o->hash[i] == h && strcmp(o->names.p + o->off[i], nm) == 0)
            return i + 1;
    }
    if (o->nnames == o->capnames) {
        size_t nc = o->capnames ? o->capnames * 2 : 64;
        uint32_t *off = realloc(o->off, nc * sizeof *off);
        if (off)
            o->off = off;
        uint64_t *hs = off ? realloc(o->hash, nc * sizeof *hs) : NULL;
        if (!hs)
            return 0;
        o->hash = hs;
        o->capnames = nc;
    }
    size_t at = o->names.len;
    if (at > UINT32_MAX - len - 1 || rw_buf_append(&o->names, nm, len + 1) != RW_OK)
        return 0;
    o->off[o->nnames] = (uint32_t)at;
    o->hash[o->nnames] = h;
    o->slot[j] = (uint32_t)++o->nnames;
    return (uint32_t)o->nnames;
}

int porder_add(porder *o, const series *s, uint32_t sid, uint32_t at)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 1024;
        pkey *k = realloc(o->k, nc * sizeof *k);
        if (!k)
            return -1;
        o->k = k;
        o->cap = nc;
    }
    const char *nm = s ? rw_labels_get(series_labels(s), s->nlabels, "__name__") : NULL;
    uint32_t name = 0;
    if (nm && !(name = name_no(o, nm)))
        return -1;
    o->k[o->n++] = (pkey){.name = name, .sid = sid, .at = at};
    return 0;
}

static int name_cmp(const void *a, const void *b, void *arg)
{
    const porder *o = arg;
    return strcmp(o->names.p + o->off[*(const uint32_t *)a],
                  o->names.p + o->off[*(const uint32_t *)b]);
}

static int key_cmp(const void *a, const void *b)
{
    const pkey *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

void porder_sort(porder *o)
{
    if (o->n < 2)
        return;
    /* the names' ranks, then every key's name replaced by its rank (gone:
       last); without the memory for the ranks, series id order (still
       right, only less together) */
    uint32_t *byname = malloc((o->nnames ? o->nnames : 1) * sizeof *byname);
    uint32_t *rank = malloc((o->nnames ? o->nnames : 1) * sizeof *rank);
    if (byname && rank) {
        for (uint32_t i = 0; i < o->nnames; i++)
            byname[i] = i;
        qsort_r(byname, o->nnames, sizeof *byname, name_cmp, o);
        for (uint32_t r = 0; r < o->nnames; r++)
            rank[byname[r]] = r;
    }
    for (size_t i = 0; i < o->n; i++)
        o->k[i].name = !o->k[i].name ? UINT32_MAX : rank && byname ? rank[o->k[i].name - 1] : 0;
    free(byname);
    free(rank);
    qsort(o->k, o->n, sizeof *o->k, key_cmp);
}
