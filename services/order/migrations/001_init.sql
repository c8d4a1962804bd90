-- Shop orders, their items, the outbox of status-change events and the
-- stock releases still owed to the catalog.
CREATE SEQUENCE orders_id_seq;

CREATE TABLE orders (
    -- taken from orders_id_seq before the stock reservation, which is
    -- idempotent by this id
    id                  bigint PRIMARY KEY,
    user_id             text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 64),
    status              text NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    -- money: int64 cents (scale 2), never floating point
    total_cents         bigint NOT NULL CHECK (total_cents >= 0),
    shipping_address    jsonb NOT NULL,
    idempotency_key     text NOT NULL,
    request_fingerprint text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user ON orders (user_id, id DESC);

CREATE TABLE order_items (
    order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line             integer NOT NULL,
    product_id       bigint NOT NULL,
    name             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    line_total_cents bigint NOT NULL CHECK (line_total_cents >= 0),
    PRIMARY KEY (order_id, line)
);

-- Written in the same transaction as the status change; the relay thread
-- publishes rows in id order and sets sent_at after Kafka's delivery report.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Stock the catalog must get back (cancellations; reservations whose order
-- was never written). The relay retries until the catalog confirms.
CREATE TABLE stock_releases (
    order_id        bigint PRIMARY KEY,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);
CREATE INDEX stock_releases_due ON stock_releases (next_attempt_at) WHERE done_at IS NULL;
