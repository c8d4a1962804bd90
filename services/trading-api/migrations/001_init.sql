-- trading-api schema: markets (rules), reservations of client_order_ids,
-- orders (read model), outbox to matching, applied seqs, trades.
-- Money is bigint minor units at the market's scales (docs/money.md).

CREATE TABLE markets (
    symbol text PRIMARY KEY,
    base text NOT NULL,
    quote text NOT NULL,
    base_scale int NOT NULL CHECK (base_scale BETWEEN 0 AND 18),
    quote_scale int NOT NULL CHECK (quote_scale BETWEEN 0 AND 18),
    tick bigint NOT NULL CHECK (tick > 0),
    lot bigint NOT NULL CHECK (lot > 0),
    min_qty bigint NOT NULL CHECK (min_qty > 0),
    max_qty bigint NOT NULL CHECK (max_qty >= min_qty),
    min_price bigint NOT NULL CHECK (min_price > 0),
    max_price bigint NOT NULL CHECK (max_price >= min_price),
    band_bps int NOT NULL CHECK (band_bps >= 0),
    status text NOT NULL DEFAULT 'trading' CHECK (status IN ('trading', 'halted'))
);

CREATE SEQUENCE order_id_seq START 1001;

-- One row per (user, client_order_id): the idempotency key. order_id is
-- taken from the sequence when the key is first seen; concurrent identical
-- requests all find the same id (the unique key decides), so the wallet
-- hold (idempotent by order id) and the order row happen once.
CREATE TABLE order_requests (
    user_id text NOT NULL,
    client_order_id text NOT NULL,
    order_id bigint NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    abandoned boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_order_id)
);

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id text NOT NULL,
    client_order_id text NOT NULL,
    market text NOT NULL REFERENCES markets (symbol),
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    type text NOT NULL CHECK (type IN ('limit', 'market')),
    time_in_force text NOT NULL CHECK (time_in_force IN ('GTC', 'IOC', 'FOK')),
    post_only boolean NOT NULL DEFAULT false,
    stp text,
    price bigint,
    quantity bigint,
    quote_amount bigint,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'open', 'partially_filled', 'filled', 'cancelled', 'expired', 'rejected')),
    filled_quantity bigint NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0),
    filled_quote bigint NOT NULL DEFAULT 0 CHECK (filled_quote >= 0),
    reject_reason text,
    end_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, client_order_id)
);
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);
CREATE INDEX orders_user_market_idx ON orders (user_id, market, id DESC);

-- Commands to matching, published in id order by the relay.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    market text NOT NULL,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;

-- Last matching seq applied per market and stream ('events' / 'trades'):
-- each topic is in seq order per market, but the two interleave freely.
CREATE TABLE applied_seq (
    market text NOT NULL,
    stream text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (market, stream)
);

CREATE TABLE trades (
    market text NOT NULL,
    seq bigint NOT NULL,
    id text NOT NULL,
    ts text NOT NULL,
    ts_us bigint NOT NULL,
    price bigint NOT NULL,
    quantity bigint NOT NULL,
    quote_amount bigint NOT NULL,
    taker_side text NOT NULL,
    taker_order_id bigint NOT NULL,
    maker_order_id bigint NOT NULL,
    PRIMARY KEY (market, seq)
);
CREATE INDEX trades_time_idx ON trades (market, ts_us);
