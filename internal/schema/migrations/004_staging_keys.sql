-- Staging holds what validation reads, not whole rows.
--
-- A batch used to be COPYed whole into staging and then copied again, row by
-- row, into orders by INSERT ... SELECT: every order was written twice,
-- raw_data parsed as JSONB on the way in, and the second write was a
-- speculative ON CONFLICT insert. Now a worker stages only the columns that
-- set-wise validation needs (the lookup keys, the checked values and where
-- the row sits in its batch); one statement checks them against the lookup
-- tables and orders and deletes them, and the rows that passed are COPYed
-- once into orders. Staging rows live only inside the transaction that
-- writes them, so the table is empty whenever this migration can take its
-- lock, and nothing is lost by recreating it.
DROP TABLE orders_staging;

CREATE UNLOGGED TABLE orders_staging (
    batch_id         text NOT NULL,
    row_no           integer NOT NULL,     -- position in the batch, so a repeated order id stays told apart
    order_id         text NOT NULL,
    product_id       text NOT NULL,
    currency         text NOT NULL,
    zip_code         text NOT NULL,
    quantity         integer NOT NULL,
    unit_price       numeric(14,2) NOT NULL,
    order_timestamp  timestamptz NOT NULL,
    enriched         boolean NOT NULL      -- false when the Redis snapshot lacked a lookup entry
);
-- Autovacuum may be off or behind: the index keeps finding one batch's rows
-- cheap however many dead rows earlier batches left.
CREATE INDEX orders_staging_batch_idx ON orders_staging (batch_id);

-- Statistics for the lookup tables, which autovacuum may not have gathered
-- yet: without them the planner takes each for thousands of rows and hashes
-- the batch instead of the few lookup rows.
ANALYZE product_catalog;
ANALYZE currency_rates;
ANALYZE zip_code_zones;
