#ifndef COMMON_SERVICE_H
#define COMMON_SERVICE_H
/*
 * What every service's main() does before its own work, in one call, so
 * the services cannot drift apart:
 *   - logging initialised from LOG_LEVEL (default info) under the name;
 *   - service_info / process_* metrics registered;
 *   - the fault injector wired into the dependency modules: a
 *     drop_dependency fault for "redis" or "postgres" makes those clients
 *     fail as if the connection dropped, and kafka_pause pauses every
 *     consumer of the process (see faults.h);
 *   - span export to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT is
 *     set (trace.h), flushed at exit.
 * Returns 0, or -1 after printing one line for a malformed LOG_LEVEL or
 * OTEL_* setting, upon
 * which main() exits with code 2 (like any configuration error).
 */
int cm_service_init(const char *name, const char *version);

/* The lab's release, for services that do not version themselves apart. */
#define CM_LAB_VERSION "0.1.0"

#endif
