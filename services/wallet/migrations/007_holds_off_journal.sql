-- Holds leave the journal. A hold moves money between two buckets of one
-- account (available -> held) without changing what anyone owns, so it is
-- not a journal entry: the holds table is the sub-ledger of the held
-- bucket. This halves the cost of a hold (measured: about 2x the holds/s
-- in PostgreSQL), which trading-api pays on every order.
--
-- Invariants after this migration (checked by SQL in the wallet's tests):
--   per entry and asset: sum(postings) = 0 (unchanged, enforced at COMMIT);
--   per account: available + held = sum(its postings);
--   per account: held = sum(remaining) of its unreleased holds.
-- Entries of kind 'hold'/'release' written before stay valid history.

-- The event row without a jsonb round trip (hot path of holds): the fields
-- come as json text and are spliced after the envelope.
CREATE FUNCTION wallet_emit_json(p_type text, p_user text, p_fields json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    oid bigint := nextval('outbox_id_seq');
BEGIN
    INSERT INTO outbox (id, topic, key, payload)
    VALUES (oid, 'wallet.events', p_user,
            '{"type":' || to_json(p_type)::text || ',"version":1,"id":"wal-' || oid
            || '","ts":"'
            || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            || '","user_id":'
            || to_json(p_user)::text || ',' || substr(p_fields::text, 2));
END $$;

-- The hold path of POST /internal/holds: the caller passes the amount
-- already formatted at the asset's scale (no lookup per hold) and gets
-- back what it needs to answer without a second query:
--   'created|<created_at>', 'exists|<remaining>|<status>|<created_at>',
--   'conflict', 'insufficient'.
CREATE FUNCTION wallet_hold_place(p_hold text, p_user text, p_asset text, p_amount bigint,
                                  p_amount_text text, p_purpose text, p_ref text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    h holds%ROWTYPE;
BEGIN
    SELECT * INTO h FROM holds WHERE hold_id = p_hold;
    IF FOUND THEN
        IF h.user_id = p_user AND h.asset = p_asset AND h.amount = p_amount
           AND h.purpose = p_purpose AND h.ref_id = p_ref THEN
            RETURN 'exists|' || h.remaining || '|' || h.status || '|'
                   || to_char(h.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
        END IF;
        RETURN 'conflict';
    END IF;
    UPDATE accounts SET available = available - p_amount, held = held + p_amount,
                        updated_at = now()
     WHERE owner = p_user AND asset = p_asset AND kind = 'user' AND available >= p_amount;
    IF NOT FOUND THEN
        RETURN 'insufficient';
    END IF;
    INSERT INTO holds (hold_id, user_id, asset, amount, remaining, status, purpose, ref_id)
    VALUES (p_hold, p_user, p_asset, p_amount, p_amount, 'active', p_purpose, p_ref);
    PERFORM wallet_emit_json('hold.placed', p_user,
        json_build_object('hold_id', p_hold, 'asset', p_asset, 'amount', p_amount_text,
                          'purpose', p_purpose, 'ref_id', p_ref));
    RETURN 'created|' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
END $$;

-- Withdrawals place their hold through the same path.
CREATE OR REPLACE FUNCTION wallet_place_hold(p_hold text, p_user text, p_asset text,
                                             p_amount bigint, p_purpose text, p_ref text)
RETURNS text LANGUAGE sql AS $$
    SELECT split_part(wallet_hold_place(p_hold, p_user, p_asset, p_amount,
                                        wallet_fmt(p_amount, p_asset), p_purpose, p_ref), '|', 1)
$$;

CREATE OR REPLACE FUNCTION wallet_release_hold(p_hold text, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    h holds%ROWTYPE;
BEGIN
    SELECT * INTO h FROM holds WHERE hold_id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF h.status = 'released' THEN
        RETURN 'already';
    END IF;
    IF h.remaining > 0 THEN
        UPDATE accounts SET available = available + h.remaining, held = held - h.remaining,
                            updated_at = now()
         WHERE owner = h.user_id AND asset = h.asset;
    END IF;
    UPDATE holds SET remaining = 0, status = 'released', end_reason = p_reason, updated_at = now()
     WHERE hold_id = p_hold;
    PERFORM wallet_emit_json('hold.released', h.user_id,
        json_build_object('hold_id', p_hold, 'asset', h.asset,
                          'amount', wallet_fmt(h.remaining, h.asset), 'reason', p_reason));
    RETURN 'released';
END $$;
