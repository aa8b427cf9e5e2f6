/* arena.h - a bump allocator: everything one request (a remote-write body, a
 * query evaluation) needs comes from one arena, freed in one call. An optional
 * byte cap makes allocations fail (return NULL) instead of growing without
 * bound. Not thread-safe: one arena belongs to one thread at a time. */
#ifndef RW_ARENA_H
#define RW_ARENA_H

#include <stddef.h>

typedef struct rw_arena rw_arena;

/* block: size of each block (0 = 64 KiB); cap: total bytes allowed (0 = none). */
rw_arena *rw_arena_new(size_t block, size_t cap);
void rw_arena_free(rw_arena *a);
/* Frees every block but the first, keeps the arena usable. */
void rw_arena_reset(rw_arena *a);

/* 16-byte aligned; NULL when out of memory or over the cap. */
void *rw_arena_alloc(rw_arena *a, size_t n);
void *rw_arena_calloc(rw_arena *a, size_t n, size_t size);
/* Grows the most recent allocation in place when possible, else copies. */
void *rw_arena_realloc(rw_arena *a, void *p, size_t old, size_t n);
char *rw_arena_strndup(rw_arena *a, const char *s, size_t n);
char *rw_arena_strdup(rw_arena *a, const char *s);
char *rw_arena_sprintf(rw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes taken from malloc (whole blocks): what the arena really holds. */
size_t rw_arena_used(const rw_arena *a);
/* Makes sure the next n bytes of allocations (each rounded up to 16) come
 * from the current block without waste: starts a new block of at least n
 * bytes (at least the block size) when the current one has less room.
 * -1 when that would pass the cap or memory is out. */
int rw_arena_reserve(rw_arena *a, size_t n);
/* Whether an allocation has failed because of the cap (sticky): tells a
 * limit apart from the system being out of memory. */
int rw_arena_over_cap(const rw_arena *a);
/* Changes the cap (0 = none); allocations already made stay. */
void rw_arena_set_cap(rw_arena *a, size_t cap);

#endif
