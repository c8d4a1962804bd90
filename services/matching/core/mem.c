#include "mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/banned.h"

#define HUGE_PAGE (2u * 1024u * 1024u)

void *me_big_alloc(size_t n)
{
    void *p = NULL;
    if (n >= HUGE_PAGE) {
        size_t rounded = (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, rounded))
            return NULL;
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint; fine if refused */
        n = rounded;
    } else if (posix_memalign(&p, 64, n ? n : 1)) { /* cache-line aligned */
        return NULL;
    }
    memset(p, 0, n);
    return p;
}
