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
 * found again through a strmap (index.c). Sorting ranks the few distinct names
 * and then compares integers. */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>
#include "store_int.h"

void porder_init(porder *o)
{
    memset(o, 0, sizeof *o);
}

void porder_free(porder *o)
{
    for (size_t i = 0; i < o->nnames; i++)
        free(o->names[i]);
    free(o->names);
    strmap_free(&o->byname);
    free(o->k);
    memset(o, 0, sizeof *o);
}

/* The number + 1 of name nm, added when new; 0 out of memory. */
static uint32_t name_no(porder *o, const char *nm)
{
    uint64_t h = str_hash(nm);
    void *no = strmap_get(&o->byname, nm, h);
    if (no)
        return (uint32_t)(uintptr_t)no;
    if (o->nnames == o->capnames) {
        size_t nc = o->capnames ? o->capnames * 2 : 64;
        char **n = realloc(o->names, nc * sizeof *n);
        if (!n)
            return 0;
        o->names = n;
        o->capnames = nc;
    }
    char *copy = strdup(nm);
    if (!copy || o->nnames >= UINT32_MAX - 1 ||
        strmap_put(&o->byname, copy, h, (void *)(uintptr_t)(o->nnames + 1)) < 0) {
        free(copy);
        return 0;
    }
    o->names[o->nnames++] = copy;
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
    char *const *names = arg;
    return strcmp(names[*(const uint32_t *)a], names[*(const uint32_t *)b]);
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
        qsort_r(byname, o->nnames, sizeof *byname, name_cmp, o->names);
        for (uint32_t r = 0; r < o->nnames; r++)
            rank[byname[r]] = r;
    }
    for (size_t i = 0; i < o->n; i++)
        o->k[i].name = !o->k[i].name ? UINT32_MAX : rank && byname ? rank[o->k[i].name - 1] : 0;
    free(byname);
    free(rank);
    qsort(o->k, o->n, sizeof *o->k, key_cmp);
}
