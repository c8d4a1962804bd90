#!/usr/bin/env bash
# Demo accounts for the local lab (docs/gateway.md, "Demo users"):
#   id 1  alice@example.com  password alice-lab-password  roles user
#   id 2  bob@example.com    password bob-lab-password    roles user
#   id 3  admin@example.com  password admin-lab-password  roles admin,user
# wallet seeds balances for user ids "1" and "2". These passwords are
# lab-only fixtures printed in the docs, never production secrets.
# Idempotent (fixed ids, ON CONFLICT DO NOTHING); the lab runs it after the
# gateway is ready (its migrations have run). Hashes come from the gateway
# binary itself (`gateway hash-password`, Argon2id), so SQL never sees a
# password.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${LAB_BIN_DIR:-$ROOT/build/bin}/gateway
[ -x "$BIN" ] || { echo "seed: $BIN not built" >&2; exit 1; }

hash() { printf '%s\n' "$1" | "$BIN" hash-password; }
alice=$(hash alice-lab-password)
bob=$(hash bob-lab-password)
admin=$(hash admin-lab-password)

psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -o /dev/null \
    -v alice="$alice" -v bob="$bob" -v admin="$admin" <<'SQL'
INSERT INTO users (id, email, password_hash, roles) VALUES
    (1, 'alice@example.com', :'alice', ARRAY['user']),
    (2, 'bob@example.com',   :'bob',   ARRAY['user']),
    (3, 'admin@example.com', :'admin', ARRAY['admin', 'user'])
ON CONFLICT DO NOTHING;
SQL
echo "gateway seed: demo users alice (1), bob (2), admin (3)"
