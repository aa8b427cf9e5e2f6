/* arena.c - bump allocator over a list of malloc'd blocks (see arena.h).
 * Requests larger than a block get a block of their own. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} block;

struct rw_arena {
    block *head;       /* current block; older ones follow */
    size_t block_size;
    size_t cap, total; /* bytes allocated from malloc, and the cap on it */
    void *last;        /* most recent allocation, for in-place realloc */
    size_t last_size;
    int over_cap;      /* an allocation failed because of the cap */
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

static block *block_new(rw_arena *a, size_t min)
{
    size_t sz = min > a->block_size ? min : a->block_size;
    if (a->cap && a->total + sz > a->cap) {
        a->over_cap = 1;
        return NULL;
    }
    block *b = malloc(sizeof(block) + sz);
    if (!b)
        return NULL;
    b->size = sz;
    b->used = 0;
    a->total += sz;
    return b;
}

rw_arena *rw_arena_new(size_t block_size, size_t cap)
{
    rw_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->cap = cap;
    a->head = block_new(a, a->block_size);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->head->next = NULL;
    return a;
}

void rw_arena_free(rw_arena *a)
{
    if (!a)
        return;
    for (block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

void rw_arena_reset(rw_arena *a)
{
    block *b = a->head, *first = NULL;
    while (b) {
        block *n = b->next;
        if (!n) {
            first = b;
            break;
        }
        a->total -= b->size;
        free(b);
        b = n;
    }
    a->head = first;
    first->used = 0;
    first->next = NULL;
    a->last = NULL;
    a->last_size = 0;
}

void *rw_arena_alloc(rw_arena *a, size_t n)
{
    size_t need = ALIGN16(n ? n : 1);
    block *b = a->head;
    if (need < n)
        return NULL; /* overflow */
    if (b->size - b->used < need) {
        block *nb = block_new(a, need);
        if (!nb)
            return NULL;
        if (need > a->block_size / 2) {
            /* a big one-off allocation: keep the current block current */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            a->last = NULL;
            return nb->data;
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->last = p;
    a->last_size = need;
    return p;
}

void *rw_arena_calloc(rw_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = rw_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *rw_arena_realloc(rw_arena *a, void *p, size_t old, size_t n)
{
    if (!p)
        return rw_arena_alloc(a, n);
    if (p == a->last) {
        block *b = a->head;
        size_t need = ALIGN16(n);
        size_t start = (size_t)((unsigned char *)p - b->data);
        if (need >= n && start + need <= b->size) {
            b->used = start + need;
            a->last_size = need;
            return p;
        }
    }
    void *q = rw_arena_alloc(a, n);
    if (q)
        memcpy(q, p, old < n ? old : n);
    return q;
}

char *rw_arena_strndup(rw_arena *a, const char *s, size_t n)
{
    char *p = rw_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rw_arena_strdup(rw_arena *a, const char *s)
{
    return rw_arena_strndup(a, s, strlen(s));
}

char *rw_arena_sprintf(rw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = rw_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t rw_arena_used(const rw_arena *a)
{
    return a->total;
}

void rw_arena_set_cap(rw_arena *a, size_t cap)
{
    a->cap = cap;
}

int rw_arena_reserve(rw_arena *a, size_t n)
{
    block *b = a->head;
    if (b->size - b->used >= n)
        return 0;
    block *nb = block_new(a, n);
    if (!nb)
        return -1;
    nb->next = b;
    a->head = nb;
    a->last = NULL;
    return 0;
}

int rw_arena_over_cap(const rw_arena *a)
{
    return a->over_cap;
}
