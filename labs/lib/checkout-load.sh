#!/usr/bin/env bash
# Background load for checkout scenarios: a lab customer checks out (and cancels) every ~2 s.
source "$(dirname "$0")/common.sh"
lab_init_env
PROBE_IP=127.0.0.1
export LAB_SHOP_TOKEN; LAB_SHOP_TOKEN=$(mint_jwt "$LAB_SHOP_USER")
for _ in 1 2 3 4 5 6 7 8 9 10; do checkout_cycle >/dev/null; sleep 2; done
