# gateway: the public entry point (docs/gateway.md).
GATEWAY_LIB := $(sort $(filter-out services/gateway/main.c,$(wildcard services/gateway/*.c services/gateway/handlers/*.c)))
$(eval $(call c_program,gateway,services/gateway/main.c $(GATEWAY_LIB)))
# A tiny upstream for the integration test and the bench: echoes what it got.
$(eval $(call c_program,gateway-echo,services/gateway/tests/echo_upstream.c services/gateway/reqwalk.c))

