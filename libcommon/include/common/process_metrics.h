#ifndef COMMON_PROCESS_METRICS_H
#define COMMON_PROCESS_METRICS_H
/*
 * Standard process metrics, refreshed from /proc/self on every render:
 *   process_start_time_seconds      gauge, unix time the process started
 *   process_resident_memory_bytes   gauge
 *   process_cpu_seconds_total       counter, user + system
 *   process_open_fds                gauge
 *   service_info{service,version}   gauge, always 1
 *
 * Call once from main() (idempotent; a second call with another service
 * or version adds another service_info series). Strings are copied into
 * the registry. Thread-safe like the registry itself. 0, or -1 when a
 * family could not be registered (name clash).
 */
int cm_process_metrics_register(const char *service, const char *version);

/* Reads the values once into the gauges (what the collector does); exposed
 * for tests. */
void cm_process_metrics_collect(void *ctx);

#endif
