# order: shop orders (docs/shop.md).
ORDER_LIB := $(sort $(filter-out services/order/main.c,$(wildcard services/order/*.c services/order/handlers/*.c)))
$(eval $(call c_program,order,services/order/main.c $(ORDER_LIB)))

$(eval $(call unit_test,order_test_domain,services/order/tests/test_domain.c services/order/domain.c))

# Integration test: order and catalog binaries against the fixture's
# PostgreSQL, Redis and devkafka (support shared with the catalog's test).
$(eval $(call integration_test,order_itest,services/order/tests/itest_order.c $(TEST_HARNESS_SRCS)))
