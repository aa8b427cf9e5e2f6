/* budget.c - the shared byte budget (see budget.h): an atomic counter
 * raised with compare-and-swap so that concurrent takes never pass the
 * limit together. Used by the HTTP server for request bodies as they
 * arrive and by the write path for decoded bodies and decoding arenas. */
#include "budget.h"

#include <stdatomic.h>
#include <stdlib.h>

struct rw_budget {
    _Atomic size_t used;
    _Atomic size_t limit;
};

rw_budget *rw_budget_new(size_t limit)
{
    rw_budget *b = calloc(1, sizeof *b);
    if (b)
        atomic_store(&b->limit, limit);
    return b;
}

void rw_budget_free(rw_budget *b)
{
    free(b);
}

void rw_budget_set_limit(rw_budget *b, size_t limit)
{
    atomic_store(&b->limit, limit);
}

size_t rw_budget_limit(const rw_budget *b)
{
    return atomic_load(&((rw_budget *)b)->limit);
}

size_t rw_budget_used(const rw_budget *b)
{
    return atomic_load(&((rw_budget *)b)->used);
}

int rw_budget_take(rw_budget *b, size_t n)
{
    size_t limit = atomic_load(&b->limit);
    size_t cur = atomic_load(&b->used);
    do {
        if (n > limit || cur > limit - n)
            return 0;
    } while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
    return 1;
}

void rw_budget_give(rw_budget *b, size_t n)
{
    atomic_fetch_sub(&b->used, n);
}
