# Matching engine: the order-book core (pure C, no I/O; core/*.c) and the
# `matching` service around it (Kafka in/out, snapshots in PostgreSQL,
# read-only HTTP). docs/matching.md.
MATCHING_CORE_SRCS := $(sort $(wildcard services/matching/core/*.c))
# Pure service modules (no I/O), unit tested without servers.
MATCHING_PURE_SRCS := services/matching/command.c services/matching/render.c services/matching/config.c
MATCHING_LIB := $(sort $(filter-out services/matching/main.c,$(wildcard services/matching/*.c services/matching/handlers/*.c)))

$(eval $(call c_program,matching,services/matching/main.c $(MATCHING_LIB) $(MATCHING_CORE_SRCS)))

$(foreach t,$(wildcard services/matching/tests/test_*.c),\
  $(eval $(call unit_test,matching_$(basename $(notdir $(t))),$(t) services/matching/tests/support.c $(MATCHING_CORE_SRCS))))

$(eval $(call unit_test,matching_svc_test_command,services/matching/tests/svc_test_command.c $(MATCHING_PURE_SRCS) $(MATCHING_CORE_SRCS)))

# The real binary against the fixture's PostgreSQL and devkafka.
$(eval $(call integration_test,matching_itest,services/matching/tests/itest_matching.c services/matching/tests/mt_client.c $(MATCHING_PURE_SRCS) $(MATCHING_CORE_SRCS) $(TEST_HARNESS_SRCS)))

# Run by bench/matching.sh (make bench-matching), never by the tests.
$(eval $(call bench_program,matching_core_bench,bench/matching/core_bench.c $(MATCHING_CORE_SRCS)))
$(eval $(call bench_program,matching_service_bench,bench/matching/service_bench.c services/matching/tests/mt_client.c $(MATCHING_CORE_SRCS)))
