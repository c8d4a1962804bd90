-- Broadcast and completion in one round trip: the chain mock confirms at
-- once, so a worker finishes a signed withdrawal with one call.
-- 'broadcast:<seconds since request> <completed|skip>', or 'skip'.
CREATE FUNCTION wallet_withdrawal_finish(p_id text, p_tx text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b text := wallet_withdrawal_broadcast(p_id, p_tx);
BEGIN
    IF b = 'skip' THEN
        RETURN 'skip';
    END IF;
    RETURN b || ' ' || wallet_withdrawal_complete(p_id);
END $$;
