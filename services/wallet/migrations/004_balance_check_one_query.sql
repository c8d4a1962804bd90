-- The commit-time balance check in one query instead of two (it runs once
-- per journal entry: a hold, a trade, a deposit). Same rules as 001.
CREATE OR REPLACE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    bad bigint;
BEGIN
    SELECT coalesce(sum(c), 0), count(*) FILTER (WHERE total <> 0 OR NOT same_asset)
      INTO n, bad
      FROM (SELECT count(*) AS c, sum(p.amount) AS total,
                   bool_and(a.asset IS NOT DISTINCT FROM p.asset) AS same_asset
              FROM postings p LEFT JOIN accounts a ON a.id = p.account_id
             WHERE p.entry_id = NEW.id
             GROUP BY p.asset) x;
    IF n < 2 OR bad > 0 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced or has fewer than two postings (%)',
            NEW.id, n USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
