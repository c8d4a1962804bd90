#!/usr/bin/env bash
# Reference fix: end the session that holds a lock inside an abandoned transaction, and guard the database against the next one.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
psql "$PG_URL/postgres" -qAtX -c "ALTER DATABASE shop_order SET idle_in_transaction_session_timeout = '60s'"
psql "$PG_URL/shop_order" -qAtX -c "
  select pid, application_name, pg_terminate_backend(pid)
    from pg_stat_activity
   where datname = current_database()
     and state like 'idle in transaction%'
     and pid in (select unnest(pg_blocking_pids(w.pid)) from pg_stat_activity w where w.wait_event_type = 'Lock')"
# The pool drains as the waiting statements complete.
for _ in $(seq 1 40); do
    curl -fsS -m 2 -H 'X-User-Id: 1' -H 'X-User-Roles: user' "$ORDER_URL/orders/user/1?limit=1" >/dev/null 2>&1 && break
    sleep 0.5
done
sleep 2
