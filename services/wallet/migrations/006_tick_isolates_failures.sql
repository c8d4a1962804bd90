-- One deposit that cannot be credited (e.g. an overflow) must not stop the
-- ticker from crediting the others: each credit runs in its own
-- subtransaction and a failure is reported as a warning and skipped.
CREATE OR REPLACE FUNCTION wallet_tick_deposits(p_max int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT id FROM deposits WHERE status <> 'credited' ORDER BY seq LIMIT p_max
             FOR UPDATE SKIP LOCKED LOOP
        UPDATE deposits SET confirmations = confirmations + 1 WHERE id = r.id;
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
        BEGIN
            IF wallet_credit_deposit(r.id) = 'credited' THEN
                n := n + 1;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'deposit % not credited: %', r.id, SQLERRM;
        END;
    END LOOP;
    RETURN n;
END $$;
