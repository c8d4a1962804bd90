-- Wallet ledger: accounts, a double-entry journal, holds, processed events
-- and the outbox. The database itself refuses negative user balances and
-- unbalanced journal entries (docs/wallet.md, "Invariants").

-- Assets and their scales (minor units per whole unit = 10^scale).
-- Must stay in sync with the table in services/wallet/assets.c.
CREATE TABLE assets (
    code  text PRIMARY KEY CHECK (code ~ '^[A-Z0-9]{2,12}$'),
    scale int  NOT NULL CHECK (scale BETWEEN 0 AND 18)
);
INSERT INTO assets (code, scale) VALUES ('BTC', 8), ('ETH', 8), ('USDT', 6);

-- One account per (owner, asset). Users own 'user' accounts (owner = the
-- user id); the system owns the fee account and the two clearing accounts
-- (owner 'sys:fees', 'sys:deposits', 'sys:withdrawals'). The deposits
-- clearing account is the only one that goes negative: it mirrors the
-- funds that entered from the chain.
CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    owner      text   NOT NULL,
    asset      text   NOT NULL REFERENCES assets (code),
    kind       text   NOT NULL DEFAULT 'user'
               CHECK (kind IN ('user', 'fees', 'deposits_clearing', 'withdrawals_clearing')),
    available  bigint NOT NULL DEFAULT 0,
    held       bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, asset),
    CONSTRAINT accounts_non_negative
        CHECK (kind = 'deposits_clearing' OR (available >= 0 AND held >= 0)),
    CONSTRAINT accounts_system_hold_nothing CHECK (kind = 'user' OR held = 0)
);
INSERT INTO accounts (owner, asset, kind)
SELECT o.owner, a.code, o.kind
  FROM assets a,
       (VALUES ('sys:fees', 'fees'), ('sys:deposits', 'deposits_clearing'),
               ('sys:withdrawals', 'withdrawals_clearing')) AS o (owner, kind);

-- The journal. Every movement is an entry; its postings change one bucket
-- (available or held) of one account each and sum to zero per asset.
CREATE TABLE journal_entries (
    id         bigserial PRIMARY KEY,
    kind       text   NOT NULL
               CHECK (kind IN ('deposit', 'withdrawal', 'trade', 'hold', 'release', 'adjustment')),
    ref_id     text   NOT NULL,
    created_xid bigint NOT NULL DEFAULT txid_current(),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE postings (
    id         bigserial PRIMARY KEY,
    entry_id   bigint NOT NULL,
    account_id bigint NOT NULL,
    asset      text   NOT NULL,
    bucket     text   NOT NULL CHECK (bucket IN ('available', 'held')),
    amount     bigint NOT NULL CHECK (amount <> 0)
);
CREATE INDEX postings_entry ON postings (entry_id);
CREATE INDEX postings_account ON postings (account_id, entry_id);

-- Checked at COMMIT (deferred), once per entry: at least two postings,
-- each on an existing account of the posting's asset, summing to zero per
-- asset. Deferred so an entry and its postings can be written in any
-- order inside the transaction; one check per entry (not per posting)
-- keeps batched settlement fast.
CREATE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n int;
    r record;
BEGIN
    SELECT count(*) INTO n FROM postings WHERE entry_id = NEW.id;
    IF n < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings', NEW.id, n USING ERRCODE = '23514';
    END IF;
    FOR r IN SELECT p.asset, sum(p.amount) AS total,
                    bool_and(a.asset IS NOT DISTINCT FROM p.asset) AS same_asset
               FROM postings p LEFT JOIN accounts a ON a.id = p.account_id
              WHERE p.entry_id = NEW.id
              GROUP BY p.asset LOOP
        IF r.total <> 0 OR NOT r.same_asset THEN
            RAISE EXCEPTION 'journal entry % is unbalanced in % (sum %, accounts match %)',
                NEW.id, r.asset, r.total, r.same_asset USING ERRCODE = '23514';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON journal_entries DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced();

-- Postings join only entries created by the same transaction, so the
-- commit-time check above sees every posting an entry will ever have.
CREATE FUNCTION postings_same_tx() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN journal_entries e ON e.id = n.entry_id
                WHERE e.id IS NULL OR e.created_xid <> txid_current()) THEN
        RAISE EXCEPTION 'postings must be written with their journal entry' USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_same_tx AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION postings_same_tx();

-- The journal is append-only.
CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23514';
END $$;
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();

-- Holds: funds moved from available to held for an order (hold_id = the
-- order id) or a withdrawal (hold_id = the withdrawal id). consumed is
-- what trades (or the withdrawal) took; remaining is still held.
-- expected is the consumption an order's end event reports: the rest is
-- released once consumed reaches it (trades and order events travel on
-- two topics, so they may arrive in either order).
CREATE TABLE holds (
    hold_id    text   PRIMARY KEY,
    user_id    text   NOT NULL,
    asset      text   NOT NULL REFERENCES assets (code),
    amount     bigint NOT NULL CHECK (amount > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0),
    consumed   bigint NOT NULL DEFAULT 0 CHECK (consumed >= 0),
    expected   bigint,
    status     text   NOT NULL CHECK (status IN ('active', 'closing', 'released')),
    purpose    text   NOT NULL CHECK (purpose IN ('order', 'withdrawal')),
    ref_id     text   NOT NULL,
    end_reason text,
    seen       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (consumed + remaining <= amount)
);
CREATE INDEX holds_unseen ON holds (created_at) WHERE status = 'active' AND NOT seen;
CREATE INDEX holds_closing ON holds (hold_id) WHERE status = 'closing';

-- Kafka events applied (trades and order events, by event id
-- "<market>:<seq>"): written in the same transaction as their postings,
-- so a redelivered event finds its row and changes nothing.
CREATE TABLE processed_events (
    event_id   text PRIMARY KEY,
    kind       text NOT NULL,
    outcome    text NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'rejected')),
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox for wallet.events.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Deposits (chain mock) and withdrawals.
CREATE SEQUENCE deposit_seq;
CREATE TABLE deposits (
    id           text   PRIMARY KEY,
    seq          bigint NOT NULL UNIQUE,
    user_id      text   NOT NULL,
    asset        text   NOT NULL REFERENCES assets (code),
    amount       bigint NOT NULL CHECK (amount > 0),
    tx_hash      text   NOT NULL UNIQUE,
    idempotency_key text,
    status       text   NOT NULL CHECK (status IN ('pending', 'confirmed', 'credited')),
    confirmations int   NOT NULL DEFAULT 0,
    required_confirmations int NOT NULL CHECK (required_confirmations >= 1),
    entry_id     bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    credited_at  timestamptz,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX deposits_open ON deposits (seq) WHERE status <> 'credited';
CREATE INDEX deposits_user ON deposits (user_id, seq);

CREATE TABLE withdrawal_addresses (
    user_id    text NOT NULL,
    asset      text NOT NULL REFERENCES assets (code),
    address    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, asset, address)
);

CREATE SEQUENCE withdrawal_seq;
CREATE TABLE withdrawals (
    id           text   PRIMARY KEY,
    user_id      text   NOT NULL,
    asset        text   NOT NULL REFERENCES assets (code),
    amount       bigint NOT NULL CHECK (amount > 0),
    fee          bigint NOT NULL CHECK (fee >= 0),
    address      text   NOT NULL,
    idempotency_key text NOT NULL,
    status       text   NOT NULL CHECK (status IN ('requested', 'pending_approval', 'approved',
                        'queued', 'signed', 'broadcast', 'completed', 'failed')),
    requires_approval boolean NOT NULL,
    failure_reason text,
    signature    text,
    key_id       text,
    tx_hash      text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    queued_at    timestamptz,
    broadcast_at timestamptz,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX withdrawals_user_day ON withdrawals (user_id, asset, created_at);
CREATE INDEX withdrawals_open ON withdrawals (created_at)
    WHERE status IN ('requested', 'approved', 'queued', 'signed', 'broadcast');

-- The chain mock: transactions "broadcast" by withdrawals.
CREATE TABLE chain_txs (
    tx_hash       text PRIMARY KEY,
    withdrawal_id text NOT NULL UNIQUE,
    asset         text NOT NULL,
    address       text NOT NULL,
    amount        bigint NOT NULL,
    signature     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
