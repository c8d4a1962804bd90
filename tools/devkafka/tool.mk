# devkafka: librdkafka's mock cluster as a standalone broker for the lab and
# the integration fixture (see docs/kafka.md).
$(eval $(call c_program,devkafka,tools/devkafka/devkafka.c))
