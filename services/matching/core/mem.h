#ifndef MATCHING_MEM_H
#define MATCHING_MEM_H
/*
 * Zeroed allocation for the core's big tables (pool slabs, id map). Every
 * page is touched here so the hot path never page-faults, and regions of
 * 2 MB or more are 2 MB aligned and marked MADV_HUGEPAGE: a 1M-order book
 * spans ~100 MB and random access to it is otherwise dominated by TLB
 * misses; smaller ones are 64-byte (cache line) aligned. Release with
 * free().
 */
#include <stddef.h>

void *me_big_alloc(size_t n);

#endif
