-- Staging, production, dead letters and the batch ledger.

-- UNLOGGED: no WAL for rows that live only until their batch is promoted in
-- the same transaction. Crash recovery empties it, which loses nothing
-- because a batch is acknowledged in Redis only after promotion commits.
CREATE UNLOGGED TABLE orders_staging (
    batch_id          text NOT NULL,
    order_id          text NOT NULL,
    customer_id       text NOT NULL,
    product_id        text NOT NULL,
    product_name      text,
    category          text,
    quantity          integer NOT NULL,
    unit_price        numeric(14,2) NOT NULL,
    currency          text NOT NULL,
    total_amount      numeric(16,2),
    total_amount_usd  numeric(16,2),
    zip_code          text NOT NULL,
    city              text,
    state             text,
    country           text,
    shipping_zone     text,
    order_timestamp   timestamptz NOT NULL,
    raw_data          jsonb NOT NULL
);
CREATE INDEX orders_staging_batch_idx ON orders_staging (batch_id);

-- Production. Column names are the seed's: dashboards and BI tools query them.
CREATE TABLE orders (
    order_id          text PRIMARY KEY,
    customer_id       text NOT NULL,
    product_id        text NOT NULL REFERENCES product_catalog (product_id),
    product_name      text NOT NULL,
    category          text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price        numeric(14,2) NOT NULL CHECK (unit_price > 0),
    currency          char(3) NOT NULL,
    total_amount      numeric(16,2) NOT NULL,
    total_amount_usd  numeric(16,2) NOT NULL,
    zip_code          text NOT NULL,
    city              text NOT NULL,
    state             text NOT NULL,
    country           text NOT NULL,
    shipping_zone     text NOT NULL,
    order_timestamp   timestamptz NOT NULL,
    raw_data          jsonb NOT NULL,
    processed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_order_timestamp_idx ON orders (order_timestamp);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

-- Dead letters: every order that could not be promoted, with why and its
-- payload (bytea, since a payload may not even be UTF-8): the exact bytes
-- received when decoding failed, the normalised message when promotion's
-- set-wise validation rejected it.
CREATE TABLE orders_rejected (
    id           bigserial PRIMARY KEY,
    order_id     text,
    reason       text NOT NULL,
    detail       text,
    raw_payload  bytea NOT NULL,
    batch_id     text,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_rejected_reason_idx ON orders_rejected (reason);

-- One row per batch whose fate is decided. A worker inserts its batch's row
-- inside the promoting transaction; a reaper reclaiming a dead worker's batch
-- inserts it as 'abandoned' first. The primary key makes the two mutually
-- exclusive, so a batch is promoted at most once however often it is
-- delivered, and counts summed here reconcile exactly.
CREATE TABLE pipeline_batches (
    batch_id     text PRIMARY KEY,
    status       text NOT NULL CHECK (status IN ('committed', 'abandoned', 'replay')),
    worker       text,
    received     integer NOT NULL DEFAULT 0,
    promoted     integer NOT NULL DEFAULT 0,
    duplicates   integer NOT NULL DEFAULT 0,
    rejected     integer NOT NULL DEFAULT 0,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
