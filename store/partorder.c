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
 * The names are copied under the shard lock (a series may go once it is
 * released), consecutive equal names once. */
#include <stdlib.h>
#include <string.h>
#include "store_int.h"

void porder_init(porder *o)
{
    memset(o, 0, sizeof *o);
    rw_buf_init(&o->names, 0);
}

void porder_free(porder *o)
{
    rw_buf_free(&o->names);
    free(o->k);
    memset(o, 0, sizeof *o);
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
    const char *nm = s ? rw_labels_get(s->labels, s->nlabels, "__name__") : NULL;
    size_t name = 0;
    if (nm && o->last && strcmp(o->names.p + o->last - 1, nm) == 0) {
        name = o->last;
    } else if (nm) {
        name = o->names.len + 1;
        if (rw_buf_append(&o->names, nm, strlen(nm) + 1) != RW_OK)
            return -1;
        o->last = name;
    }
    o->k[o->n++] = (pkey){.name = name, .sid = sid, .at = at};
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const pkey *x = a, *y = b;
    if (x->name != y->name) {
        if (!x->name || !y->name) /* series gone: last */
            return x->name ? -1 : 1;
        int c = strcmp(x->s, y->s);
        if (c)
            return c;
    }
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

void porder_sort(porder *o)
{
    for (size_t i = 0; i < o->n; i++)
        o->k[i].s = o->k[i].name ? o->names.p + o->k[i].name - 1 : NULL;
    if (o->n > 1)
        qsort(o->k, o->n, sizeof *o->k, key_cmp);
}
