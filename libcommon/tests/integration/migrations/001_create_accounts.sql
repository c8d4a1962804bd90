-- Test migration: a table with a constraint, as services have.
CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0)
);
