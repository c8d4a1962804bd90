# Exchange Lab: the only entry point. `make help` lists the targets.
include mk/flags.mk
include mk/rules.mk

.DEFAULT_GOAL := build
SHELL := /bin/bash
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)

LIBCOMMON_SRCS := $(sort $(wildcard libcommon/src/*.c))
LIBCOMMON_A    := $(BUILD)/lib/libcommon.a
ALL_OBJS       += $(call objs_of,$(LIBCOMMON_SRCS))

$(LIBCOMMON_A): $(call objs_of,$(LIBCOMMON_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# libcommon's own tests: tests/test_<module>.c are unit tests (no servers),
# tests/integration/itest_<module>.c run against the harness's PostgreSQL,
# Redis and devkafka (see tests/lib/infra.sh).
$(foreach t,$(wildcard libcommon/tests/test_*.c),\
  $(eval $(call unit_test,libcommon_$(basename $(notdir $(t))),$(t) $(wildcard libcommon/tests/support/*.c))))
$(foreach t,$(wildcard libcommon/tests/integration/itest_*.c),\
  $(eval $(call integration_test,libcommon_$(basename $(notdir $(t))),$(t) $(wildcard libcommon/tests/support/*.c))))

# Services, tools and benchmarks describe themselves.
-include $(sort $(wildcard services/*/service.mk services/*/*/service.mk))
-include $(sort $(wildcard tools/*/tool.mk))
-include $(sort $(wildcard bench/*/bench.mk))

.PHONY: build deps test unit integration asan valgrind up down status lab bench \
        fuzz lint format validate clean help

build: deps-check $(LIBCOMMON_A) $(PROGRAMS) $(UNIT_TESTS) $(INTEGRATION_TESTS) $(BENCH_PROGRAMS)

deps:
	@bash scripts/deps.sh install

deps-check:
	@bash scripts/deps.sh check

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/asan SAN=1 build
	@bash tests/run.sh

unit: build
	@bash tests/run.sh unit

integration: build
	@bash tests/run.sh integration

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 build
	@bash tests/run.sh unit-asan

valgrind: build
	@bash tests/run.sh unit-valgrind

up: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@bash scripts/lab.sh up

down:
	@bash scripts/lab.sh down

status:
	@bash scripts/lab.sh status

# Learner labs: make lab ARGS="list" | ARGS="start redis-down-cache" ... (docs/labs.md)
lab:
	@bash labs/labctl $(ARGS)

bench: deps
	@$(MAKE) --no-print-directory build
	@for b in $(sort $(wildcard bench/*.sh)); do bash $$b || exit 1; done

bench-%: deps
	@$(MAKE) --no-print-directory build
	@bash bench/$*.sh

fuzz:
	@bash scripts/fuzz.sh

lint:
	@bash scripts/lint.sh

validate:
	@bash tests/run.sh infra

clean:
	rm -rf build

help:
	@echo "make up | down | status     run the local lab (scripts/lab.sh)"
	@echo "make lab ARGS='list'        learner scenarios (labs/labctl, docs/labs.md)"
	@echo "make test                   every suite; last line 'N passed, N failed'"
	@echo "make unit | integration | asan | valgrind | validate   one suite"
	@echo "make bench | bench-<area>   benchmarks (BENCH <name> <value> <unit>)"
	@echo "make build | deps | lint | fuzz | clean"

-include $(ALL_OBJS:.o=.d)
