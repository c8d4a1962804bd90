# wallet: ledger, holds, settlement, deposits, withdrawals (docs/wallet.md),
# and wallet-signer, the only process with key material.
WALLET_LIB := $(sort $(filter-out services/wallet/main.c,$(wildcard services/wallet/*.c services/wallet/handlers/*.c)))
$(eval $(call c_program,wallet,services/wallet/main.c $(WALLET_LIB)))

SIGNER_LIB := $(sort $(filter-out services/wallet/signer/main.c,$(wildcard services/wallet/signer/*.c)))
$(eval $(call c_program,wallet-signer,services/wallet/signer/main.c $(SIGNER_LIB)))

$(eval $(call unit_test,wallet_test_domain,services/wallet/tests/test_domain.c services/wallet/domain.c))
$(eval $(call unit_test,wallet_test_signer_proto,services/wallet/tests/test_signer_proto.c $(SIGNER_LIB)))

# Integration test: wallet + wallet-signer against the fixture's PostgreSQL,
# Redis and devkafka (HTTP helpers shared with the shop's tests).
$(eval $(call integration_test,wallet_itest,services/wallet/tests/itest_wallet.c $(TEST_HARNESS_SRCS)))

# Load generator of bench/wallet.sh.
$(eval $(call bench_program,wallet_bench,bench/wallet/wallet_bench.c))
