#include <stdlib.h>
#include <string.h>

#include "market_internal.h"

#include "common/banned.h"

/* How many slots to scan linearly back from the touch before falling back
 * to binary search: most lookups hit within the first few levels. */
#define NEAR_TOUCH 8

int me_side_init(struct me_book_side *s, uint32_t cap)
{
    s->n = 0;
    s->cap = cap < 64 ? 64 : cap;
    s->v = malloc(s->cap * sizeof(*s->v));
    return s->v ? 0 : -1;
}

void me_side_release(struct me_book_side *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int me_side_reserve(struct me_book_side *s)
{
    if (s->n < s->cap)
        return 0;
    if (s->cap > UINT32_MAX / 2)
        return -1;
    struct me_slot *v = realloc(s->v, (size_t)s->cap * 2 * sizeof(*v));
    if (!v)
        return -1;
    s->v = v;
    s->cap *= 2;
    return 0;
}

/* First index whose key >= key (n if none). */
static uint32_t lower_bound(const struct me_book_side *s, int64_t key)
{
    uint32_t n = s->n;
    uint32_t stop = n > NEAR_TOUCH ? n - NEAR_TOUCH : 0;
    uint32_t i = n;
    while (i > stop && s->v[i - 1].key >= key)
        i--;
    if (i > stop || i == 0)
        return i;
    uint32_t lo = 0, hi = i; /* answer in [lo, hi] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long me_side_find(const struct me_book_side *s, int64_t key)
{
    uint32_t i = lower_bound(s, key);
    return i < s->n && s->v[i].key == key ? (long)i : -1;
}

void me_side_insert(struct me_book_side *s, int64_t key, struct me_level *lv)
{
    uint32_t i = lower_bound(s, key);
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
    s->v[i].key = key;
    s->v[i].lv = lv;
    s->n++;
}

void me_side_remove(struct me_book_side *s, int64_t key)
{
    uint32_t i = lower_bound(s, key);
    if (i >= s->n || s->v[i].key != key)
        return;
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
    s->n--;
}
