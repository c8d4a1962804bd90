# Benchmark helper for bench/risk.sh: producer of synthetic events, the pure
# rules engine in process, fixed-rate pre-trade load.
$(eval $(call bench_program,risk_bench,bench/risk/risk_bench.c services/risk/engine.c services/risk/rules.c))
