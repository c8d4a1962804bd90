#include "common/service.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/db.h"
#include "common/faults.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/process_metrics.h"
#include "common/redis.h"
#include "common/trace.h"
#include "common/banned.h"

int cm_service_init(const char *name, const char *version)
{
    enum cm_log_level level = CM_LOG_INFO;
    const char *lv = getenv("LOG_LEVEL");
    if (lv && *lv && cm_log_parse_level(lv, &level) < 0) {
        fprintf(stderr,
                "%s: config: LOG_LEVEL must be one of debug, info, warn, error, got \"%.20s\"\n",
                name, lv);
        return -1;
    }
    cm_log_init(name, level);
    cm_process_metrics_register(name, version);
    cm_redis_set_drop_hook(cm_faults_dependency_dropped);
    cm_db_set_drop_hook(cm_faults_dependency_dropped);
    cm_kafka_set_pause_hook(cm_faults_kafka_paused);
    /* OTLP span export when OTEL_EXPORTER_OTLP_ENDPOINT is set; queued spans
     * are flushed (bounded) when main() returns. */
    if (cm_trace_init(name) < 0)
        return -1;
    atexit(cm_trace_shutdown);
    return 0;
}
