#!/usr/bin/env bash
# Background load for exchange scenarios: one crossing pair every ~3 s (keeps
# the users far from risk's open-order and order-rate limits even if nothing fills).
source "$(dirname "$0")/common.sh"
lab_init_env
export LAB_T1 LAB_T2; LAB_T1=$(mint_jwt 1); LAB_T2=$(mint_jwt 2)
for _ in 1 2 3 4 5 6 7 8 9 10; do trade_pair >/dev/null; sleep 3; done
