#!/usr/bin/env bash
# Demo data for trading-api: the markets come from migrations/002_markets.sql
# (the rows of services/trading-api/markets.json), so there is nothing to
# insert; this checks that every market of markets.json is in the table and
# says what is there. Idempotent; the lab runs it after every `make up`.
# Demo users and their balances belong to the gateway and the wallet.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"
cd "$(dirname "$0")/../.."
want=$(python3 -c 'import json; print(" ".join(m["symbol"] for m in json.load(open("services/trading-api/markets.json"))["markets"]))')
have=$(psql "$DATABASE_URL" -At -c "SELECT string_agg(symbol, ' ' ORDER BY symbol) FROM markets")
for m in $want; do
    case " $have " in
    *" $m "*) ;;
    *) echo "trading-api seed: market $m of markets.json is missing from the markets table (add a migration)" >&2; exit 1 ;;
    esac
done
echo "trading-api seed: markets $have"
