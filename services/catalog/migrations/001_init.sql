-- Catalog: a category tree, products with stock, and stock reservations
-- made by the order service (idempotent by order id).
CREATE TABLE categories (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    parent_id  bigint REFERENCES categories (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (parent_id, name)
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    category_id bigint REFERENCES categories (id),
    -- money: int64 minor units (cents, scale 2), never floating point
    price_cents bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    -- the last line of defence for "never below zero"
    stock       integer NOT NULL CHECK (stock >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category ON products (category_id, id);

-- One row per order that holds stock. items: [{product_id, quantity,
-- unit_price_cents}] as reserved, so a retry returns the same answer and a
-- release returns exactly what was taken.
CREATE TABLE stock_reservations (
    order_id    bigint PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('reserved', 'released')),
    items       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);
