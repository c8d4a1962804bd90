-- Hold placement answers in one round trip: the result word and, when the
-- hold exists, its JSON (the rendering GET /internal/holds/{id} uses).
CREATE FUNCTION wallet_hold_json(p_hold text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('hold_id', hold_id, 'user_id', user_id, 'asset', asset,
               'amount', wallet_fmt(amount, asset), 'remaining', wallet_fmt(remaining, asset),
               'status', CASE status WHEN 'released' THEN 'released' ELSE 'active' END,
               'purpose', purpose, 'ref_id', ref_id, 'created_at', wallet_ts(created_at))::text
      FROM holds WHERE hold_id = p_hold
$$;

-- '<word>' or '<word> <hold json>' for 'created' and 'exists'.
CREATE FUNCTION wallet_place_hold_json(p_hold text, p_user text, p_asset text, p_amount bigint,
                                       p_purpose text, p_ref text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text := wallet_place_hold(p_hold, p_user, p_asset, p_amount, p_purpose, p_ref);
BEGIN
    IF r IN ('created', 'exists') THEN
        RETURN r || ' ' || wallet_hold_json(p_hold);
    END IF;
    RETURN r;
END $$;
