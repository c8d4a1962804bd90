# trading-api: orders, outbox relay, read model, market data (docs/trading.md).
TRADING_LIB := $(sort $(filter-out services/trading-api/main.c,$(wildcard services/trading-api/*.c services/trading-api/handlers/*.c)))
$(eval $(call c_program,trading-api,services/trading-api/main.c $(TRADING_LIB)))

# Pure rules (validation, holds, candles): no servers needed.
$(eval $(call unit_test,trading_test_rules,services/trading-api/tests/test_rules.c services/trading-api/rules.c))

# Stand-ins for risk, wallet and matching (integration tests and bench/trading.sh).
$(eval $(call bench_program,trading_standin,bench/trading/standin.c))

# Integration test: the real binary against the fixture's PostgreSQL, Redis
# and devkafka, with trading_standin as risk, wallet and matching.
$(eval $(call integration_test,trading_itest,services/trading-api/tests/itest_trading.c $(TEST_HARNESS_SRCS) services/trading-api/rules.c))
$(BUILD)/tests/integration/trading_itest: $(BUILD)/bench/trading_standin $(BUILD)/bin/trading-api
# Open-loop POST /v1/orders load at a fixed rate (bench/trading.sh).
$(eval $(call bench_program,trading_load,bench/trading/load.c))
