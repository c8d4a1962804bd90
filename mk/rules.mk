# Build rules and the macros service.mk / tool.mk fragments use.
#
# Fragments describe their binaries with these macros, so the top Makefile
# never needs editing when a service or tool is added:
#   $(eval $(call c_program,NAME,SRCS))        -> $(BUILD)/bin/NAME
#   $(eval $(call unit_test,NAME,SRCS))        -> $(BUILD)/tests/unit/NAME
#   $(eval $(call integration_test,NAME,SRCS)) -> $(BUILD)/tests/integration/NAME
#   $(eval $(call bench_program,NAME,SRCS))    -> $(BUILD)/bench/NAME
# SRCS are .c paths relative to the repository root; every program links
# libcommon and the full library set from mk/flags.mk.

objs_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

define link_program
$(BUILD)/$(2)/$(1): $(call objs_of,$(3)) $(LIBCOMMON_A)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBCOMMON_A) $$(LDLIBS) $(4)
ALL_OBJS += $(call objs_of,$(3))
endef

define c_program
$(call link_program,$(1),bin,$(2),$(3))
PROGRAMS += $(BUILD)/bin/$(1)
endef

define unit_test
$(call link_program,$(1),tests/unit,$(2),-lcmocka $(3))
UNIT_TESTS += $(BUILD)/tests/unit/$(1)
endef

define integration_test
$(call link_program,$(1),tests/integration,$(2),-lcmocka $(3))
INTEGRATION_TESTS += $(BUILD)/tests/integration/$(1)
endef

define bench_program
$(call link_program,$(1),bench,$(2),$(3))
BENCH_PROGRAMS += $(BUILD)/bench/$(1)
endef

# Shared helpers for services' integration tests (tests/support/harness.h):
# start real binaries, HTTP calls, metrics, polling with deadlines. Add
# $(TEST_HARNESS_SRCS) to an integration test's sources to use them.
TEST_HARNESS_SRCS := tests/support/harness.c
CPPFLAGS += -Itests/support
