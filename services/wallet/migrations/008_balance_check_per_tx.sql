-- The commit-time balance check once per transaction, set-based, instead
-- of a PL/pgSQL trigger call per journal entry. Settlement writes
-- thousands of entries per transaction (one per trade); the per-entry
-- deferred trigger was about a quarter of its database time. The rules
-- are those of 001/004, still enforced by the database for every writer:
--   every entry has at least two postings summing to zero per asset
--   (checked at COMMIT, 23514);
--   every posting is on an existing account of the posting's asset
--   (checked when the postings are inserted, 23514: postings are
--   append-only and an account's asset cannot change, so this holds at
--   COMMIT as well).
--
-- How: a statement trigger on journal_entries marks the transaction in
-- journal_tx_checks (one row per transaction, whatever the number of
-- entries); a deferred constraint trigger on that row checks, at COMMIT,
-- every entry whose created_xid is the transaction's, then removes the
-- mark (entries written after an early SET CONSTRAINTS ... IMMEDIATE mark
-- the transaction again). created_xid must be the writer's own
-- transaction (checked here); postings_same_tx (001) relies on it too.

CREATE INDEX journal_entries_xid ON journal_entries (created_xid);

-- Transient: a row lives only inside its transaction (never committed).
CREATE UNLOGGED TABLE journal_tx_checks (xid bigint PRIMARY KEY);

CREATE FUNCTION journal_tx_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE created_xid IS DISTINCT FROM txid_current()) THEN
        RAISE EXCEPTION 'journal entries must carry their own transaction id'
            USING ERRCODE = '23514';
    END IF;
    INSERT INTO journal_tx_checks (xid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- One index probe of postings per entry (LATERAL: the plan cannot turn
-- into a scan of the whole journal as it grows).
CREATE FUNCTION journal_tx_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
    example bigint;
BEGIN
    DELETE FROM journal_tx_checks WHERE xid = NEW.xid;
    SELECT count(*), min(id) INTO bad, example
      FROM (SELECT e.id
              FROM journal_entries e
              LEFT JOIN LATERAL (SELECT count(*) AS c, sum(p.amount) AS s
                                   FROM postings p WHERE p.entry_id = e.id
                                  GROUP BY p.asset) x ON true
             WHERE e.created_xid = NEW.xid
             GROUP BY e.id
            HAVING coalesce(sum(x.c), 0) < 2 OR bool_or(x.s <> 0)) y;
    IF bad > 0 THEN
        RAISE EXCEPTION '% journal entries (e.g. %) are unbalanced or have fewer than two postings',
            bad, example USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER journal_entries_balanced ON journal_entries;
DROP FUNCTION journal_entry_balanced();

CREATE TRIGGER journal_entries_mark AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journal_tx_mark();
CREATE CONSTRAINT TRIGGER journal_tx_balanced
    AFTER INSERT ON journal_tx_checks DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_tx_balanced();

-- Postings, per statement: each distinct entry is one of this
-- transaction (a trade has six postings on one entry), each distinct
-- (account, asset) an existing account of that asset.
CREATE OR REPLACE FUNCTION postings_same_tx() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT entry_id FROM new_rows) n
                 LEFT JOIN journal_entries e ON e.id = n.entry_id
                WHERE e.id IS NULL OR e.created_xid <> txid_current()) THEN
        RAISE EXCEPTION 'postings must be written with their journal entry' USING ERRCODE = '23514';
    END IF;
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT account_id, asset FROM new_rows) n
                 LEFT JOIN accounts a ON a.id = n.account_id
                WHERE a.asset IS DISTINCT FROM n.asset) THEN
        RAISE EXCEPTION 'a posting must be on an existing account of its asset'
            USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;

-- An account keeps its asset and is never removed (postings refer to it).
CREATE FUNCTION accounts_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an account''s asset never changes and an account is never removed'
        USING ERRCODE = '23514';
END $$;
CREATE TRIGGER accounts_asset_fixed BEFORE UPDATE OF asset ON accounts
    FOR EACH ROW WHEN (OLD.asset IS DISTINCT FROM NEW.asset) EXECUTE FUNCTION accounts_fixed();
CREATE TRIGGER accounts_never_removed BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_fixed();
