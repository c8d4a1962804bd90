#ifndef COMMON_FAULTS_H
#define COMMON_FAULTS_H
/*
 * Fault injection for labs and chaos tests; process-wide, thread-safe.
 *
 * Driven over HTTP by the built-in admin routes (ADMIN_TOKEN required):
 *   GET    /admin/faults          {"faults":[{"id":1,"type":"latency",...}]}
 *   POST   /admin/faults          add one, 201 with it; 400 invalid_request on
 *                                 any unknown or out-of-range field
 *   DELETE /admin/faults          clear all, {"cleared":N}
 *   DELETE /admin/faults/{type}   clear one type
 *   GET    /admin/loglevel        {"level":"info"}
 *   PUT    /admin/loglevel        {"level":"debug"} (cm_log_set_level)
 *
 * Fault specs (JSON objects; "route" is a route pattern, a raw path or
 * "*" for every non-admin route, default "*"):
 *   {"type":"latency","route":"/v1/orders","ms":200}
 *   {"type":"latency","route":"*","min_ms":50,"max_ms":400}  0..60000
 *   {"type":"error","route":"*","rate":0.3,"status":503}     rate (0,1], 400..599
 *   {"type":"cpu_burn","millicores":500,"duration_s":60}     1..4000, 1..3600
 *   {"type":"memory_growth","mb_per_s":8,"max_mb":256}       1..1024, 1..4096
 *   {"type":"kafka_pause"}
 *   {"type":"readiness_fail"}
 *   {"type":"drop_dependency","name":"redis"}                [a-z0-9_-]{1,32}
 * Latency and error faults are applied by the HTTP server before the
 * handler of a matching route; cpu_burn and memory_growth run on a
 * background thread until their bound or until cleared; the rest are
 * flags that other modules poll with the functions below. Active faults
 * are visible as fault_injection_active{fault="<type>"} (count per type).
 */
#include <stddef.h>

#include <cjson/cJSON.h>

/* Validates and adds a fault from its JSON spec (borrowed). The new id, or
 * -1 with a reason in err (NUL-terminated, at most errlen). */
int cm_faults_add(const cJSON *spec, char *err, size_t errlen);
/* Clears every fault (stops and joins background threads); the count. */
int cm_faults_clear(void);
/* Clears faults of one type; the count, or -1 for an unknown type. */
int cm_faults_clear_type(const char *type);
/* The active faults as a JSON array; caller owns. */
cJSON *cm_faults_list(void);

/* Cheap queries for other modules (one atomic load when nothing is set). */
int cm_faults_kafka_paused(void);
int cm_faults_readiness_failed(void);
int cm_faults_dependency_dropped(const char *name);

#endif
