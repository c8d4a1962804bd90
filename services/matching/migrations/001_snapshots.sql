-- Matching snapshots: per commands-topic partition the offset of the next
-- command to apply, and per market its whole book (core/book.h snapshot
-- bytes, checksummed) as of that offset. Both are written in one
-- transaction, so a partition's offset and its markets' books always agree.
CREATE TABLE matching_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

CREATE TABLE matching_books (
    topic      text        NOT NULL,
    market     text        NOT NULL,
    partition  integer     NOT NULL CHECK (partition >= 0),
    seq        bigint      NOT NULL CHECK (seq >= 0),
    snapshot   bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, market)
);
