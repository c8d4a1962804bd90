# trading-api: orders, outbox relay, read model, market data (docs/trading.md).
TRADING_LIB := $(sort $(filter-out services/trading-api/main.c,$(wildcard services/trading-api/*.c services/trading-api/handlers/*.c)))
$(eval $(call c_program,trading-api,services/trading-api/main.c $(TRADING_LIB)))

# Pure rules (validation, holds, candles): no servers needed.
$(eval $(call unit_test,trading_test_rules,services/trading-api/tests/test_rules.c services/trading-api/rules.c))
