#!/usr/bin/env bash
# Background load for wallet scenarios: place and release holds like trading-api, ~3 per second.
source "$(dirname "$0")/common.sh"
lab_init_env
for _ in 1 2 3 4 5 6 7 8 9 10; do hold_cycle >/dev/null; sleep 0.3; done
