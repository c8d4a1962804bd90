-- The outbox relay's poll, made cheap and kept exact.
--
-- Why: "SELECT ... FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT n"
-- walked the partial index outbox_unsent from its lowest id. Marking a
-- row sent leaves its entry there (dead) until VACUUM, and autovacuum
-- comes once a minute: under 1,000 orders/s every poll stepped over tens
-- of thousands of dead entries and their heap tuples (measured: 0.98 ms
-- per poll under the trading bench; EXPLAIN showed ~30,000 index entries
-- and ~1,100 heap pages visited for 0 rows after 30,000 rows were sent).
--
-- How: the relay scans from a low-water mark (id >= p_from) below which
-- every row that will ever be committed is known to be sent. A plain
-- "last id sent" cursor would be wrong: ids come from a sequence, drawn
-- before COMMIT, so a row whose id was drawn early may commit after rows
-- with higher ids were sent. The mark only moves past ids whose writers
-- are provably finished:
--
--   1. Every writer has its transaction id before it draws an outbox id
--      (wallet_emit / wallet_emit_json below take it first; every other
--      writer of outbox goes through them).
--   2. When the relay marks rows sent (wallet_outbox_mark), it first reads
--      L = the last id drawn so far, then takes its own transaction id R.
--      A transaction whose id is above R got it after L was read, so every
--      outbox id it draws is above L: ids <= L belong to transactions with
--      an id below R.
--   3. A later poll runs under a snapshot whose xmin (oldest transaction
--      still running) is above R: every transaction below R has ended, so
--      every row with id <= L that will ever commit is visible to that
--      poll. If the poll returns all unsent rows from the mark on (fewer
--      than its limit) and all of them are marked, nothing unsent is left
--      at or below L and the mark moves to L + 1 (store.c keeps the
--      (L, R) pairs and does this bookkeeping: store_outbox_relay).
--
-- The relay keeps the mark in memory only: a restarted relay, or one
-- taking over from another replica, starts at 0 (one full walk).
-- outbox_id_seq must keep CACHE 1 (the default): with a cache, a backend
-- could hand out an id below the last_value read in step 2.

-- 1. The writers: transaction id first, then the outbox id.
CREATE OR REPLACE FUNCTION wallet_emit(p_type text, p_user text, p_fields jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    oid bigint;
BEGIN
    PERFORM pg_current_xact_id(); -- before nextval: see migration 009
    oid := nextval('outbox_id_seq');
    INSERT INTO outbox (id, topic, key, payload)
    VALUES (oid, 'wallet.events', p_user,
            (jsonb_build_object('type', p_type, 'version', 1, 'id', 'wal-' || oid,
                                'ts', wallet_ts(clock_timestamp()), 'user_id', p_user)
             || p_fields)::text);
END $$;

CREATE OR REPLACE FUNCTION wallet_emit_json(p_type text, p_user text, p_fields json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    oid bigint;
BEGIN
    PERFORM pg_current_xact_id(); -- before nextval: see migration 009
    oid := nextval('outbox_id_seq');
    INSERT INTO outbox (id, topic, key, payload)
    VALUES (oid, 'wallet.events', p_user,
            '{"type":' || to_json(p_type)::text || ',"version":1,"id":"wal-' || oid
            || '","ts":"'
            || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            || '","user_id":'
            || to_json(p_user)::text || ',' || substr(p_fields::text, 2));
END $$;

-- 2. The poll: the relay's advisory lock (held until the relay's COMMIT,
-- so one relay publishes at a time across replicas) and the oldest unsent
-- rows from p_from on, in one round trip. No row: another relay holds the
-- lock. Otherwise the first row carries the xmin of the snapshot the rows
-- were read with (step 3 above), and id is NULL when nothing is unsent.
CREATE FUNCTION wallet_outbox_poll(p_from bigint, p_limit int)
RETURNS TABLE (horizon xid8, id bigint, topic text, key text, payload text)
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('wallet.outbox')) THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT s.h, o.id, o.topic, o.key, o.payload
          FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS h) s
          LEFT JOIN LATERAL (SELECT b.id, b.topic, b.key, b.payload FROM outbox b
                              WHERE b.sent_at IS NULL AND b.id >= p_from
                              ORDER BY b.id LIMIT p_limit) o ON true;
END $$;

-- Marks rows sent; returns how many, and the pair (L, R) of step 2 (both
-- NULL when the transaction already had an id: then R would not be later
-- than L).
CREATE FUNCTION wallet_outbox_mark(p_ids bigint[], OUT marked int, OUT last_id bigint,
                                   OUT relay_xid xid8)
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END
          INTO last_id FROM outbox_id_seq s;
        relay_xid := pg_current_xact_id();
    END IF;
    UPDATE outbox SET sent_at = now() WHERE outbox.id = ANY (p_ids);
    GET DIAGNOSTICS marked = ROW_COUNT;
END $$;
