#!/usr/bin/env bash
# Reference fix: point the wallet back at the trades topic (override file), restart it, let the backlog settle.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
sed -i 's/^WALLET_TRADES_TOPIC=.*/WALLET_TRADES_TOPIC=exchange.trades/' "$LAB_DIR/overrides/wallet.env"
supervisorctl -c "$SUPERVISOR_CONF" restart wallet
for _ in $(seq 1 60); do curl -fsS "$WALLET_URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
# The consumer group re-joins (a few seconds on devkafka), then the backlog settles.
for _ in $(seq 1 60); do
    curl -s "$WALLET_URL/metrics" | awk '/^kafka_consumer_lag\{topic="exchange.trades"/ { n++; s += $2 } END { exit !(n > 0 && s == 0) }' && break
    sleep 0.5
done
