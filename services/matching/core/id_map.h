#ifndef MATCHING_ID_MAP_H
#define MATCHING_ID_MAP_H
/*
 * Open-addressing hash map uint64 order id -> pointer, for O(1) cancel.
 * Linear probing over a power-of-two table kept at most half full; deletes
 * shift the following cluster back (no tombstones), so probe lengths stay
 * short however many orders come and go. Key 0 marks an empty slot, which
 * is why order id 0 is invalid. Growth (rehash) happens only inside
 * me_idmap_reserve, which the engine calls before committing to a command.
 */
#include <stddef.h>
#include <stdint.h>

struct me_idmap_slot {
    uint64_t key;
    void *val;
};

struct me_idmap {
    struct me_idmap_slot *slots; /* owned */
    size_t mask;                 /* capacity - 1 */
    size_t count;
};

int me_idmap_init(struct me_idmap *m, size_t expected);
void me_idmap_release(struct me_idmap *m);
/* Makes room for one more insert without growing later; 0 or -1. */
int me_idmap_reserve(struct me_idmap *m);
/* key must be non-zero and absent; room must have been reserved. */
void me_idmap_put(struct me_idmap *m, uint64_t key, void *val);
void *me_idmap_get(const struct me_idmap *m, uint64_t key);
/* Returns the removed value or NULL. */
void *me_idmap_del(struct me_idmap *m, uint64_t key);

#endif
