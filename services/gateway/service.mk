# gateway: the public entry point (docs/gateway.md).
GATEWAY_LIB := $(sort $(filter-out services/gateway/main.c,$(wildcard services/gateway/*.c services/gateway/handlers/*.c)))
$(eval $(call c_program,gateway,services/gateway/main.c $(GATEWAY_LIB)))
# A tiny upstream for the integration test and the bench: echoes what it got.
$(eval $(call c_program,gateway-echo,services/gateway/tests/echo_upstream.c))

$(eval $(call unit_test,gateway_test_upstreams,services/gateway/tests/test_upstreams.c services/gateway/upstreams.c))
$(eval $(call unit_test,gateway_test_headers,services/gateway/tests/test_headers.c services/gateway/headers.c))
$(eval $(call unit_test,gateway_test_ratelimit,services/gateway/tests/test_ratelimit.c services/gateway/ratelimit.c))
$(eval $(call unit_test,gateway_test_validate,services/gateway/tests/test_validate.c services/gateway/validate.c))
$(eval $(call integration_test,gateway_itest,services/gateway/tests/itest_gateway.c $(TEST_HARNESS_SRCS)))
