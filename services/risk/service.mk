# risk: real-time risk on the Kafka stream, pre-trade decisions, alerts and
# blocks (docs/risk.md). The engine (engine.c, rules.c) is pure and unit
# tested on its own; the rest is I/O around it.
RISK_ENGINE := services/risk/engine.c services/risk/rules.c
RISK_LIB := $(sort $(filter-out services/risk/main.c,$(wildcard services/risk/*.c services/risk/handlers/*.c)))
$(eval $(call c_program,risk,services/risk/main.c $(RISK_LIB)))

$(eval $(call unit_test,risk_test_engine,services/risk/tests/test_engine.c $(RISK_ENGINE)))

# Integration test: the real binary against the fixture's Redis and devkafka
# (HTTP/process helpers shared with the shop's tests).
$(eval $(call integration_test,risk_itest,services/risk/tests/itest_risk.c $(TEST_HARNESS_SRCS)))

