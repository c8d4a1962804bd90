# catalog: products, categories, stock (docs/shop.md).
CATALOG_LIB := $(sort $(filter-out services/catalog/main.c,$(wildcard services/catalog/*.c services/catalog/handlers/*.c)))
$(eval $(call c_program,catalog,services/catalog/main.c $(CATALOG_LIB)))

$(eval $(call unit_test,catalog_test_validate,services/catalog/tests/test_validate.c services/catalog/validate.c))
# Integration test: the real binary against the fixture's PostgreSQL and Redis.
$(eval $(call integration_test,catalog_itest,services/catalog/tests/itest_catalog.c $(TEST_HARNESS_SRCS)))
