-- A settlement batch's order events in one statement instead of one
-- wallet_order_event call each (plus wallet_release_closed): every order
-- emits order.accepted, so the per-event call was a round trip, a parse
-- and plan, and a processed_events row per order on the order path.
--
-- Same results as calling wallet_order_event for each event in batch
-- order, then wallet_release_closed(p_trade_holds):
--
-- * order.accepted / order.partially_filled only set holds.seen = true.
--   That is idempotent and monotonic (seen is never cleared), so a
--   redelivered one changes nothing by itself: they no longer record a
--   processed_events row (that row was one insert and one index entry per
--   order, kept forever, deduplicating an update that needs none).
-- * Terminal events (filled, cancelled, expired, a rejected place) still
--   dedupe through processed_events: a redelivered one, or a second copy
--   in the same batch, finds its id and does nothing.
-- * Per order, the first new terminal event of the batch (in batch order)
--   closes an active hold, as one by one: after it the hold is closing or
--   released, and later end events of that order find no active hold.
-- * Releases happen in the same order as before (so do their hold.released
--   outbox rows): first the holds closed by this batch's end events whose
--   trades are all settled, in the order of those events; then the closing
--   holds the batch's trades completed, by hold id.
--
-- Arrays are parallel, one element per event in batch order; p_reasons is
-- NULL for accepted/partially_filled. Returns the number of holds released
-- (the caller wakes the outbox relay only when it is not 0).
CREATE FUNCTION wallet_order_events(p_ids text[], p_types text[], p_orders text[],
                                    p_expected bigint[], p_reasons text[], p_trade_holds text[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int := 0;
    ended text[];
    r record;
BEGIN
    UPDATE holds h SET seen = true
      FROM unnest(p_orders, p_reasons) AS u(o, reason)
     WHERE u.reason IS NULL AND h.hold_id = u.o AND NOT h.seen;

    WITH ev AS (
        SELECT u.id, u.typ, u.o, u.exp, u.reason, u.pos
          FROM unnest(p_ids, p_types, p_orders, p_expected, p_reasons)
               WITH ORDINALITY AS u(id, typ, o, exp, reason, pos)
         WHERE u.reason IS NOT NULL),
    fresh AS (
        INSERT INTO processed_events (event_id, kind)
        SELECT DISTINCT ON (ev.id) ev.id, ev.typ FROM ev ORDER BY ev.id, ev.pos
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id),
    first_end AS (
        SELECT DISTINCT ON (ev.o) ev.o, ev.exp, ev.reason, ev.pos
          FROM ev JOIN fresh ON fresh.event_id = ev.id
         ORDER BY ev.o, ev.pos),
    closing AS ( -- runs to completion although nothing reads it
        UPDATE holds h SET seen = true, status = 'closing', expected = f.exp,
                           end_reason = f.reason, updated_at = now()
          FROM first_end f
         WHERE h.hold_id = f.o AND h.status = 'active')
    SELECT array_agg(f.o ORDER BY f.pos) INTO ended FROM first_end f;

    -- The holds those events ended whose trades are all settled (the
    -- UPDATE above is visible from here on), released in event order.
    IF ended IS NOT NULL THEN
        FOR r IN SELECT h.hold_id, h.end_reason
                   FROM unnest(ended) WITH ORDINALITY AS u(o, pos)
                   JOIN holds h ON h.hold_id = u.o
                  WHERE h.status = 'closing' AND h.consumed >= h.expected
                  ORDER BY u.pos LOOP
            PERFORM wallet_release_hold(r.hold_id, r.end_reason);
            n := n + 1;
        END LOOP;
    END IF;

    IF p_trade_holds IS NOT NULL THEN
        n := n + wallet_release_closed(p_trade_holds);
    END IF;
    RETURN n;
END $$;
