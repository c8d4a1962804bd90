/* The order-id hash map against a brute-force model: random puts, gets and
 * deletes with many collisions (backward-shift deletion must keep every
 * remaining key reachable), growth included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../core/id_map.h"
#include "../core/order_pool.h"

#include "common/banned.h"

#define KEYS 3000

static void test_against_model(void **state)
{
    (void)state;
    static void *model[KEYS + 1];
    struct me_idmap m;
    assert_int_equal(me_idmap_init(&m, 4), 0);
    uint64_t s = 12345;
    size_t live = 0;
    for (int step = 0; step < 200000; step++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t key = (s >> 33) % KEYS + 1;
        void *val = (void *)(uintptr_t)(key * 8 + 8);
        if ((s >> 20) % 3) {
            if (!model[key]) {
                assert_int_equal(me_idmap_reserve(&m), 0);
                me_idmap_put(&m, key, val);
                model[key] = val;
                live++;
            }
        } else {
            assert_ptr_equal(me_idmap_del(&m, key), model[key]);
            if (model[key])
                live--;
            model[key] = NULL;
        }
        assert_int_equal(m.count, live);
        if (step % 997 == 0)
            for (uint64_t k = 1; k <= KEYS; k++)
                assert_ptr_equal(me_idmap_get(&m, k), model[k]);
    }
    assert_null(me_idmap_get(&m, 0));
    assert_null(me_idmap_del(&m, 0));
    assert_true(m.count * 2 <= m.mask + 1); /* load factor kept <= 1/2 */
    me_idmap_release(&m);
}

static void test_pool_recycles(void **state)
{
    (void)state;
    struct me_pool p;
    assert_int_equal(me_pool_init(&p, 40, 1), 0);
    void *objs[200];
    for (int i = 0; i < 200; i++) {
        assert_int_equal(me_pool_reserve(&p, 1), 0);
        objs[i] = me_pool_get(&p);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(objs[i], objs[j]);
    }
    assert_int_equal(p.live, 200);
    assert_true(p.nslabs >= 4); /* 64 per slab */
    size_t slabs = p.nslabs;
    for (int i = 0; i < 200; i++)
        me_pool_put(&p, objs[i]);
    assert_int_equal(p.live, 0);
    for (int i = 0; i < 200; i++) { /* reuse: no new slabs */
        assert_int_equal(me_pool_reserve(&p, 1), 0);
        objs[i] = me_pool_get(&p);
    }
    assert_int_equal(p.nslabs, slabs);
    me_pool_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_pool_recycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
