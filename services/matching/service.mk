# Matching engine. Only the order-book core (pure C, no I/O) exists so far;
# the `matching` service binary (Kafka consumer/producer around the core,
# built on libcommon) joins later and should link $(MATCHING_CORE_SRCS):
#   $(eval $(call c_program,matching,services/matching/main.c ... $(MATCHING_CORE_SRCS)))
MATCHING_CORE_SRCS := $(sort $(wildcard services/matching/core/*.c))

$(foreach t,$(wildcard services/matching/tests/test_*.c),\
  $(eval $(call unit_test,matching_$(basename $(notdir $(t))),$(t) services/matching/tests/support.c $(MATCHING_CORE_SRCS))))

# Run by bench/matching.sh (make bench-matching), never by the tests.
$(eval $(call bench_program,matching_core_bench,bench/matching/core_bench.c $(MATCHING_CORE_SRCS)))
