#!/usr/bin/env bash
# Starts one lab service like `scripts/lab.sh exec NAME` does, then applies
# the learner-editable overrides in $LAB_DIR/overrides/NAME.env (KEY=VALUE
# lines; $LAB_DIR is expanded) on top. labctl points the lab's supervisord
# program at this script when a scenario needs a configuration override;
# `labctl reset` points it back.
set -euo pipefail
name=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${LAB_DIR:?}"
bin=${LAB_BIN_DIR:-$root/build/bin}/$name
# The Kafka address is only known once devkafka is up.
for _ in $(seq 1 150); do [ -s "$LAB_DIR/kafka.bootstrap" ] && break; sleep 0.2; done
quote() { sed 's/^\([A-Z_][A-Z0-9_]*\)=\(.*\)$/\1='"'"'\2'"'"'/'; }
set -a
eval "$(bash scripts/lab.sh env "$name" | grep -E '^[A-Z_][A-Z0-9_]*=' | quote)"
ov=$LAB_DIR/overrides/$name.env
if [ -f "$ov" ]; then
    eval "$(LAB_DIR=$LAB_DIR envsubst '$LAB_DIR' <"$ov" | grep -E '^[A-Z_][A-Z0-9_]*=' | quote)"
fi
set +a
exec "$bin"
