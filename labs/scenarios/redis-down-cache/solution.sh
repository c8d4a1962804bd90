#!/usr/bin/env bash
# Reference fix: bring Redis back under the supervisor and wait for it.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
supervisorctl -c "$SUPERVISOR_CONF" start redis
port=${REDIS_URL##*:}
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
sleep 1   # the services reconnect on their next command
