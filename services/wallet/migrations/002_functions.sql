-- The wallet's state changes as functions: each runs as one statement
-- (one round trip, atomic), so the HTTP handlers and workers stay thin and
-- every change writes its postings and its wallet.events outbox row in the
-- same transaction. Results are short words the C code maps to HTTP.

-- Exactly `scale` decimals ("0.01000000"), as docs/money.md asks.
CREATE FUNCTION wallet_fmt(v bigint, p_asset text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.scale = 0 THEN v::text
                ELSE to_char(v::numeric / (10::numeric ^ a.scale),
                             'FM9999999999999999990.' || repeat('0', a.scale)) END
      FROM assets a WHERE a.code = p_asset
$$;

CREATE FUNCTION wallet_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- One wallet.events row in the outbox (key = user id).
CREATE FUNCTION wallet_emit(p_type text, p_user text, p_fields jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    oid bigint := nextval('outbox_id_seq');
BEGIN
    INSERT INTO outbox (id, topic, key, payload)
    VALUES (oid, 'wallet.events', p_user,
            (jsonb_build_object('type', p_type, 'version', 1, 'id', 'wal-' || oid,
                                'ts', wallet_ts(clock_timestamp()), 'user_id', p_user)
             || p_fields)::text);
END $$;

-- The user's account for an asset, created empty on first use.
CREATE FUNCTION wallet_account(p_owner text, p_asset text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    aid bigint;
BEGIN
    SELECT id INTO aid FROM accounts WHERE owner = p_owner AND asset = p_asset;
    IF NOT FOUND THEN
        INSERT INTO accounts (owner, asset) VALUES (p_owner, p_asset)
        ON CONFLICT (owner, asset) DO NOTHING;
        SELECT id INTO aid FROM accounts WHERE owner = p_owner AND asset = p_asset;
    END IF;
    RETURN aid;
END $$;

-- Holds ---------------------------------------------------------------

-- 'created', 'exists' (same content), 'conflict' (same id, other content),
-- 'insufficient'. A concurrent duplicate fails on the primary key (23505)
-- and the whole statement rolls back; the caller retries and sees 'exists'.
CREATE FUNCTION wallet_place_hold(p_hold text, p_user text, p_asset text, p_amount bigint,
                                  p_purpose text, p_ref text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    h holds%ROWTYPE;
    aid bigint;
    eid bigint;
BEGIN
    SELECT * INTO h FROM holds WHERE hold_id = p_hold;
    IF FOUND THEN
        IF h.user_id = p_user AND h.asset = p_asset AND h.amount = p_amount
           AND h.purpose = p_purpose AND h.ref_id = p_ref THEN
            RETURN 'exists';
        END IF;
        RETURN 'conflict';
    END IF;
    UPDATE accounts SET available = available - p_amount, held = held + p_amount,
                        updated_at = now()
     WHERE owner = p_user AND asset = p_asset AND kind = 'user' AND available >= p_amount
    RETURNING id INTO aid;
    IF NOT FOUND THEN
        RETURN 'insufficient';
    END IF;
    INSERT INTO holds (hold_id, user_id, asset, amount, remaining, status, purpose, ref_id)
    VALUES (p_hold, p_user, p_asset, p_amount, p_amount, 'active', p_purpose, p_ref);
    INSERT INTO journal_entries (kind, ref_id) VALUES ('hold', p_hold) RETURNING id INTO eid;
    INSERT INTO postings (entry_id, account_id, asset, bucket, amount)
    VALUES (eid, aid, p_asset, 'available', -p_amount), (eid, aid, p_asset, 'held', p_amount);
    PERFORM wallet_emit('hold.placed', p_user,
        jsonb_build_object('hold_id', p_hold, 'asset', p_asset,
                           'amount', wallet_fmt(p_amount, p_asset),
                           'purpose', p_purpose, 'ref_id', p_ref));
    RETURN 'created';
END $$;

-- Releases what is left of a hold: 'released', 'already', 'not_found'.
CREATE FUNCTION wallet_release_hold(p_hold text, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    h holds%ROWTYPE;
    aid bigint;
    eid bigint;
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
         WHERE owner = h.user_id AND asset = h.asset
        RETURNING id INTO aid;
        INSERT INTO journal_entries (kind, ref_id) VALUES ('release', p_hold) RETURNING id INTO eid;
        INSERT INTO postings (entry_id, account_id, asset, bucket, amount)
        VALUES (eid, aid, h.asset, 'held', -h.remaining), (eid, aid, h.asset, 'available', h.remaining);
    END IF;
    UPDATE holds SET remaining = 0, status = 'released', end_reason = p_reason, updated_at = now()
     WHERE hold_id = p_hold;
    PERFORM wallet_emit('hold.released', h.user_id,
        jsonb_build_object('hold_id', p_hold, 'asset', h.asset,
                           'amount', wallet_fmt(h.remaining, h.asset), 'reason', p_reason));
    RETURN 'released';
END $$;

-- Order events --------------------------------------------------------

-- Applies one exchange.orders.events event: 'applied' or 'duplicate'.
-- accepted / partially_filled mark the hold as seen (reconciliation leaves
-- it alone); an end event (filled, cancelled, expired, rejected place)
-- records how much the order consumed and releases the rest as soon as
-- the trades have been settled up to that amount.
CREATE FUNCTION wallet_order_event(p_event text, p_type text, p_order text, p_expected bigint,
                                   p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO processed_events (event_id, kind) VALUES (p_event, p_type)
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    IF p_reason IS NULL THEN
        UPDATE holds SET seen = true WHERE hold_id = p_order AND NOT seen;
        RETURN 'applied';
    END IF;
    UPDATE holds SET seen = true, status = 'closing', expected = p_expected,
                     end_reason = p_reason, updated_at = now()
     WHERE hold_id = p_order AND status = 'active';
    PERFORM wallet_release_hold(hold_id, end_reason)
       FROM holds WHERE hold_id = p_order AND status = 'closing' AND consumed >= expected;
    RETURN 'applied';
END $$;

-- Releases closing holds whose trades have all been settled.
CREATE FUNCTION wallet_release_closed(p_holds text[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int := 0;
    r record;
BEGIN
    FOR r IN SELECT hold_id, end_reason FROM holds
              WHERE hold_id = ANY (p_holds) AND status = 'closing' AND consumed >= expected
              ORDER BY hold_id LOOP
        PERFORM wallet_release_hold(r.hold_id, r.end_reason);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Deposits ------------------------------------------------------------

-- 'created:<id>', 'exists:<id>', 'conflict'.
CREATE FUNCTION wallet_create_deposit(p_user text, p_key text, p_asset text, p_amount bigint,
                                      p_tx text, p_required int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d deposits%ROWTYPE;
    s bigint;
    tx text;
BEGIN
    IF p_key IS NOT NULL THEN
        SELECT * INTO d FROM deposits WHERE user_id = p_user AND idempotency_key = p_key;
        IF FOUND THEN
            IF d.asset = p_asset AND d.amount = p_amount AND (p_tx IS NULL OR d.tx_hash = p_tx) THEN
                RETURN 'exists:' || d.id;
            END IF;
            RETURN 'conflict';
        END IF;
    END IF;
    IF p_tx IS NOT NULL THEN
        SELECT * INTO d FROM deposits WHERE tx_hash = p_tx;
        IF FOUND THEN
            IF p_key IS NULL AND d.user_id = p_user AND d.asset = p_asset
               AND d.amount = p_amount THEN
                RETURN 'exists:' || d.id;
            END IF;
            RETURN 'conflict';
        END IF;
    END IF;
    s := nextval('deposit_seq');
    -- The chain mock makes up a transaction hash when none was given.
    tx := coalesce(p_tx, '0x' || md5(random()::text || clock_timestamp()::text)
                              || md5(s::text || random()::text));
    INSERT INTO deposits (id, seq, user_id, asset, amount, tx_hash, idempotency_key, status,
                          required_confirmations)
    VALUES ('dep_' || s, s, p_user, p_asset, p_amount, tx, p_key, 'pending', p_required);
    PERFORM wallet_emit('deposit.pending', p_user,
        jsonb_build_object('deposit_id', 'dep_' || s, 'asset', p_asset,
                           'amount', wallet_fmt(p_amount, p_asset), 'tx_hash', tx,
                           'confirmations', 0, 'required_confirmations', p_required));
    RETURN 'created:dep_' || s;
END $$;

-- Credits a deposit now (ticker or admin): 'credited', 'already', 'not_found'.
CREATE FUNCTION wallet_credit_deposit(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d deposits%ROWTYPE;
    uid bigint;
    cid bigint;
    eid bigint;
BEGIN
    SELECT * INTO d FROM deposits WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF d.status = 'credited' THEN
        RETURN 'already';
    END IF;
    IF d.status = 'pending' THEN
        PERFORM wallet_emit('deposit.confirmed', d.user_id,
            jsonb_build_object('deposit_id', d.id, 'asset', d.asset,
                               'amount', wallet_fmt(d.amount, d.asset), 'tx_hash', d.tx_hash,
                               'confirmations', d.confirmations,
                               'required_confirmations', d.required_confirmations));
    END IF;
    uid := wallet_account(d.user_id, d.asset);
    UPDATE accounts SET available = available + d.amount, updated_at = now() WHERE id = uid;
    UPDATE accounts SET available = available - d.amount, updated_at = now()
     WHERE owner = 'sys:deposits' AND asset = d.asset RETURNING id INTO cid;
    INSERT INTO journal_entries (kind, ref_id) VALUES ('deposit', d.id) RETURNING id INTO eid;
    INSERT INTO postings (entry_id, account_id, asset, bucket, amount)
    VALUES (eid, cid, d.asset, 'available', -d.amount), (eid, uid, d.asset, 'available', d.amount);
    UPDATE deposits SET status = 'credited', credited_at = now(), entry_id = eid WHERE id = d.id;
    PERFORM wallet_emit('deposit.credited', d.user_id,
        jsonb_build_object('deposit_id', d.id, 'asset', d.asset,
                           'amount', wallet_fmt(d.amount, d.asset), 'tx_hash', d.tx_hash,
                           'entry_id', 'je_' || eid));
    RETURN 'credited';
END $$;

-- One tick of the chain mock: every open deposit gains a confirmation;
-- those reaching their requirement are confirmed and credited. Returns the
-- number credited.
CREATE FUNCTION wallet_tick_deposits(p_max int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT id FROM deposits WHERE status <> 'credited' ORDER BY seq LIMIT p_max
             FOR UPDATE SKIP LOCKED LOOP
        UPDATE deposits SET confirmations = confirmations + 1 WHERE id = r.id
        RETURNING * INTO STRICT r;
    END LOOP;
    FOR r IN SELECT * FROM deposits WHERE status = 'pending'
              AND confirmations >= required_confirmations ORDER BY seq LIMIT p_max
             FOR UPDATE SKIP LOCKED LOOP
        UPDATE deposits SET status = 'confirmed' WHERE id = r.id;
        PERFORM wallet_emit('deposit.confirmed', r.user_id,
            jsonb_build_object('deposit_id', r.id, 'asset', r.asset,
                               'amount', wallet_fmt(r.amount, r.asset), 'tx_hash', r.tx_hash,
                               'confirmations', r.confirmations,
                               'required_confirmations', r.required_confirmations));
    END LOOP;
    FOR r IN SELECT id FROM deposits WHERE status = 'confirmed' ORDER BY seq LIMIT p_max LOOP
        IF wallet_credit_deposit(r.id) = 'credited' THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Withdrawals -----------------------------------------------------------

CREATE FUNCTION wallet_withdrawal_fields(w withdrawals) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('withdrawal_id', w.id, 'asset', w.asset,
                              'amount', wallet_fmt(w.amount, w.asset))
$$;

-- 'created:<id>', 'exists:<id>', 'conflict', 'address_not_allowed',
-- 'daily_limit', 'insufficient'. Nothing changes unless 'created'.
CREATE FUNCTION wallet_request_withdrawal(p_user text, p_key text, p_asset text, p_amount bigint,
                                          p_fee bigint, p_address text, p_daily_limit bigint,
                                          p_approval_threshold bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
    used bigint;
    s bigint;
    wid text;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE user_id = p_user AND idempotency_key = p_key;
    IF FOUND THEN
        IF w.asset = p_asset AND w.amount = p_amount AND w.address = p_address THEN
            RETURN 'exists:' || w.id;
        END IF;
        RETURN 'conflict';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM withdrawal_addresses
                    WHERE user_id = p_user AND asset = p_asset AND address = p_address) THEN
        RETURN 'address_not_allowed';
    END IF;
    -- The account row lock serializes one user's requests, so two at once
    -- cannot both pass the daily limit.
    PERFORM 1 FROM accounts WHERE owner = p_user AND asset = p_asset FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'insufficient';
    END IF;
    SELECT coalesce(sum(amount), 0) INTO used FROM withdrawals
     WHERE user_id = p_user AND asset = p_asset AND status <> 'failed'
       AND created_at > now() - interval '24 hours';
    IF used + p_amount > p_daily_limit THEN
        RETURN 'daily_limit';
    END IF;
    s := nextval('withdrawal_seq');
    wid := 'wd_' || s;
    IF wallet_place_hold(wid, p_user, p_asset, p_amount + p_fee, 'withdrawal', wid) <> 'created' THEN
        RETURN 'insufficient';
    END IF;
    UPDATE holds SET seen = true WHERE hold_id = wid;
    INSERT INTO withdrawals (id, user_id, asset, amount, fee, address, idempotency_key, status,
                             requires_approval)
    VALUES (wid, p_user, p_asset, p_amount, p_fee, p_address, p_key,
            CASE WHEN p_amount > p_approval_threshold THEN 'pending_approval' ELSE 'requested' END,
            p_amount > p_approval_threshold)
    RETURNING * INTO w;
    PERFORM wallet_emit('withdrawal.requested', p_user,
        wallet_withdrawal_fields(w) || jsonb_build_object(
            'fee', wallet_fmt(p_fee, p_asset), 'address', p_address,
            'requires_approval', w.requires_approval, 'idempotency_key', p_key));
    RETURN 'created:' || wid;
END $$;

-- 'approved', 'not_found', 'conflict' (not waiting for approval).
CREATE FUNCTION wallet_approve_withdrawal(p_id text, p_by text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF w.status <> 'pending_approval' THEN
        RETURN CASE WHEN w.status IN ('approved', 'queued', 'signed', 'broadcast', 'completed')
                    THEN 'already' ELSE 'conflict' END;
    END IF;
    UPDATE withdrawals SET status = 'approved', updated_at = clock_timestamp() WHERE id = p_id;
    PERFORM wallet_emit('withdrawal.approved', w.user_id,
        wallet_withdrawal_fields(w) || jsonb_build_object('approved_by', p_by));
    RETURN 'approved';
END $$;

-- Worker steps; each is a no-op ('skip') unless the withdrawal is in a
-- state the step follows, so a redelivered queue entry or two workers on
-- one withdrawal change nothing twice.
CREATE FUNCTION wallet_withdrawal_queued(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    UPDATE withdrawals SET status = 'queued', queued_at = clock_timestamp(),
                           updated_at = clock_timestamp()
     WHERE id = p_id AND status IN ('requested', 'approved') RETURNING * INTO w;
    IF NOT FOUND THEN
        RETURN 'skip';
    END IF;
    PERFORM wallet_emit('withdrawal.queued', w.user_id, wallet_withdrawal_fields(w));
    RETURN 'queued';
END $$;

CREATE FUNCTION wallet_withdrawal_signed(p_id text, p_signature text, p_key_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    UPDATE withdrawals SET status = 'signed', signature = p_signature, key_id = p_key_id,
                           updated_at = clock_timestamp()
     WHERE id = p_id AND status IN ('requested', 'approved', 'queued') RETURNING * INTO w;
    IF NOT FOUND THEN
        RETURN 'skip';
    END IF;
    PERFORM wallet_emit('withdrawal.signed', w.user_id,
        wallet_withdrawal_fields(w) || jsonb_build_object('key_id', p_key_id));
    RETURN 'signed';
END $$;

-- Broadcast to the chain mock; returns 'broadcast:<seconds since request>'.
CREATE FUNCTION wallet_withdrawal_broadcast(p_id text, p_tx text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE id = p_id AND status = 'signed' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'skip';
    END IF;
    INSERT INTO chain_txs (tx_hash, withdrawal_id, asset, address, amount, signature)
    VALUES (p_tx, w.id, w.asset, w.address, w.amount, w.signature)
    ON CONFLICT DO NOTHING;
    UPDATE withdrawals SET status = 'broadcast', tx_hash = p_tx, broadcast_at = clock_timestamp(),
                           updated_at = clock_timestamp()
     WHERE id = p_id RETURNING * INTO w;
    PERFORM wallet_emit('withdrawal.broadcast', w.user_id,
        wallet_withdrawal_fields(w) || jsonb_build_object('tx_hash', p_tx));
    RETURN 'broadcast:' || extract(epoch FROM w.broadcast_at - w.created_at)::text;
END $$;

-- The funds leave: held amount + fee go to the withdrawals clearing and
-- fee accounts.
CREATE FUNCTION wallet_withdrawal_complete(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
    uid bigint;
    cid bigint;
    fid bigint;
    eid bigint;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE id = p_id AND status = 'broadcast' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'skip';
    END IF;
    UPDATE holds SET remaining = remaining - (w.amount + w.fee), consumed = consumed + w.amount + w.fee,
                     status = 'released', end_reason = 'withdrawal_completed', updated_at = now()
     WHERE hold_id = w.id;
    UPDATE accounts SET held = held - (w.amount + w.fee), updated_at = now()
     WHERE owner = w.user_id AND asset = w.asset RETURNING id INTO uid;
    UPDATE accounts SET available = available + w.amount, updated_at = now()
     WHERE owner = 'sys:withdrawals' AND asset = w.asset RETURNING id INTO cid;
    INSERT INTO journal_entries (kind, ref_id) VALUES ('withdrawal', w.id) RETURNING id INTO eid;
    INSERT INTO postings (entry_id, account_id, asset, bucket, amount)
    VALUES (eid, uid, w.asset, 'held', -(w.amount + w.fee)), (eid, cid, w.asset, 'available', w.amount);
    IF w.fee > 0 THEN
        UPDATE accounts SET available = available + w.fee, updated_at = now()
         WHERE owner = 'sys:fees' AND asset = w.asset RETURNING id INTO fid;
        INSERT INTO postings (entry_id, account_id, asset, bucket, amount)
        VALUES (eid, fid, w.asset, 'available', w.fee);
    END IF;
    UPDATE withdrawals SET status = 'completed', updated_at = clock_timestamp() WHERE id = p_id;
    PERFORM wallet_emit('withdrawal.completed', w.user_id,
        wallet_withdrawal_fields(w) || jsonb_build_object(
            'fee', wallet_fmt(w.fee, w.asset), 'tx_hash', w.tx_hash));
    RETURN 'completed';
END $$;

CREATE FUNCTION wallet_withdrawal_fail(p_id text, p_reason text, p_message text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR w.status IN ('completed', 'failed', 'broadcast') THEN
        RETURN 'skip';
    END IF;
    PERFORM wallet_release_hold(w.id, 'withdrawal_failed');
    UPDATE withdrawals SET status = 'failed', failure_reason = p_reason,
                           updated_at = clock_timestamp() WHERE id = p_id;
    PERFORM wallet_emit('withdrawal.failed', w.user_id,
        wallet_withdrawal_fields(w) || jsonb_build_object('reason', p_reason,
                                                          'message', left(p_message, 512)));
    RETURN 'failed';
END $$;
