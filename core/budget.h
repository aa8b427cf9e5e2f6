/* budget.h - a byte budget shared by concurrent requests: what the bodies
 * being uploaded, the decoded remote-write bodies and their decoding arenas
 * hold at once stays under a limit, so memory stays bounded however many
 * clients push at the same time. A request takes bytes before it allocates
 * them and gives them back when it ends; a take that would pass the limit
 * fails, and the caller answers 503 + Retry-After (or 400 when the request
 * could not fit even alone). Lock-free; the limit may change at any time
 * (reload): bytes taken under the old limit stay taken. */
#ifndef RW_BUDGET_H
#define RW_BUDGET_H

#include <stddef.h>

typedef struct rw_budget rw_budget;

rw_budget *rw_budget_new(size_t limit);
void rw_budget_free(rw_budget *b);
void rw_budget_set_limit(rw_budget *b, size_t limit);
size_t rw_budget_limit(const rw_budget *b);
size_t rw_budget_used(const rw_budget *b);
/* Takes n bytes: 1 when granted, 0 when used + n would pass the limit
 * (nothing is taken then). */
int rw_budget_take(rw_budget *b, size_t n);
void rw_budget_give(rw_budget *b, size_t n);

#endif
