#ifndef MATCHING_ORDER_POOL_H
#define MATCHING_ORDER_POOL_H
/*
 * Fixed-size object pool: objects are carved from slabs allocated up front
 * and recycled through an intrusive free list (the first pointer-sized
 * bytes of a free object hold the next free one). Alloc and free are O(1)
 * and never call malloc unless the pool is empty; the engine calls
 * me_pool_reserve before it commits to a command so running out of memory
 * can never leave a command half applied. Objects never move.
 */
#include <stddef.h>

struct me_pool {
    void *free_list;
    void **slabs; /* owned */
    size_t nslabs;
    size_t slab_objs;
    size_t obj_size;
    size_t live; /* objects handed out */
};

/* prealloc objects are allocated now; later slabs hold as many. */
int me_pool_init(struct me_pool *p, size_t obj_size, size_t prealloc);
void me_pool_release(struct me_pool *p);
/* Makes sure at least n allocs will succeed; 0 or -1 (out of memory). */
int me_pool_reserve(struct me_pool *p, size_t n);

/* me_pool_reserve(p, 1) with the common case inlined. */
static inline int me_pool_reserve1(struct me_pool *p)
{
    return p->free_list ? 0 : me_pool_reserve(p, 1);
}

/* Only after a successful reserve: never fails. Memory is not zeroed. */
static inline void *me_pool_get(struct me_pool *p)
{
    void *o = p->free_list;
    p->free_list = *(void **)o;
    p->live++;
    return o;
}

static inline void me_pool_put(struct me_pool *p, void *o)
{
    *(void **)o = p->free_list;
    p->free_list = o;
    p->live--;
}

#endif
