#include "order_pool.h"

#include "mem.h"

#include <stdlib.h>

#include "common/banned.h"

static int grow(struct me_pool *p)
{
    void **slabs = realloc(p->slabs, (p->nslabs + 1) * sizeof(*slabs));
    if (!slabs)
        return -1;
    p->slabs = slabs;
    char *slab = me_big_alloc(p->slab_objs * p->obj_size);
    if (!slab)
        return -1;
    slabs[p->nslabs++] = slab;
    /* Thread the slab backwards so objects are handed out in address
     * order: consecutive orders then sit next to each other in memory. */
    for (size_t i = p->slab_objs; i-- > 0;)
        me_pool_put(p, slab + i * p->obj_size), p->live++;
    return 0;
}

int me_pool_init(struct me_pool *p, size_t obj_size, size_t prealloc)
{
    p->free_list = NULL;
    p->slabs = NULL;
    p->nslabs = 0;
    p->live = 0;
    p->obj_size = obj_size < sizeof(void *) ? sizeof(void *) : obj_size;
    p->slab_objs = prealloc < 64 ? 64 : prealloc;
    return grow(p);
}

void me_pool_release(struct me_pool *p)
{
    for (size_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    p->slabs = NULL;
    p->nslabs = 0;
    p->free_list = NULL;
}

int me_pool_reserve(struct me_pool *p, size_t n)
{
    size_t have = 0;
    for (void *o = p->free_list; o && have < n; o = *(void **)o)
        have++;
    while (have < n) {
        if (grow(p) < 0)
            return -1;
        have += p->slab_objs;
    }
    return 0;
}
