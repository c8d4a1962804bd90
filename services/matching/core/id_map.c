#include "id_map.h"

#include "mem.h"

#include <stdlib.h>

#include "common/banned.h"

/* splitmix64 finaliser: ids are often sequential, this spreads them. */
static inline size_t slot_of(uint64_t k, size_t mask)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    k ^= k >> 31;
    return (size_t)k & mask;
}

static int alloc_table(struct me_idmap *m, size_t cap)
{
    m->slots = me_big_alloc(cap * sizeof(*m->slots));
    if (!m->slots)
        return -1;
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

int me_idmap_init(struct me_idmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap <<= 1;
    return alloc_table(m, cap);
}

void me_idmap_release(struct me_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

int me_idmap_reserve(struct me_idmap *m)
{
    if ((m->count + 1) * 2 <= m->mask + 1)
        return 0;
    struct me_idmap old = *m;
    if (alloc_table(m, (old.mask + 1) * 2) < 0) {
        *m = old;
        return -1;
    }
    for (size_t i = 0; i <= old.mask; i++)
        if (old.slots[i].key)
            me_idmap_put(m, old.slots[i].key, old.slots[i].val);
    free(old.slots);
    return 0;
}

void me_idmap_put(struct me_idmap *m, uint64_t key, void *val)
{
    size_t i = slot_of(key, m->mask);
    while (m->slots[i].key)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->count++;
}

void *me_idmap_get(const struct me_idmap *m, uint64_t key)
{
    if (!key)
        return NULL;
    for (size_t i = slot_of(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return m->slots[i].val;
        if (!m->slots[i].key)
            return NULL;
    }
}

void *me_idmap_del(struct me_idmap *m, uint64_t key)
{
    if (!key)
        return NULL;
    size_t i = slot_of(key, m->mask);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key)
            return NULL;
        i = (i + 1) & m->mask;
    }
    void *val = m->slots[i].val;
    /* Backward-shift deletion: move later members of the cluster into the
     * hole when the hole lies between their home slot and where they sit. */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->slots[j].key; j = (j + 1) & m->mask) {
        size_t home = slot_of(m->slots[j].key, m->mask);
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].val = NULL;
    m->count--;
    return val;
}
