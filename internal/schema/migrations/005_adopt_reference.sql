-- Adopting a database that the Python reference's init.sql created.
--
-- Teams that ran the reference keep its database when they switch to
-- redpg. The migration runner (schema.Migrate) recognises such a schema:
-- it has the lookup tables and orders but no redpg_migrations history, and
-- its orders_staging is keyed by order_id and has no batch_id. It records
-- 001-004 as adopted without running them (the reference already has what
-- they create, under the same names) and runs this migration and the ones
-- after it, which work on both layouts. On a schema redpg created itself
-- the DO block below does nothing.
--
-- What it changes in a reference schema, in one transaction:
--  * orders.order_timestamp, a naive TIMESTAMP, becomes timestamptz, read in
--    the zone named by the setting redpg.naive_timezone (the runner sets it
--    from schema.Options.NaiveTimeZone; default UTC). processed_at and the
--    lookup tables' created_at/updated_at are read in the session's
--    TimeZone, the zone in which their DEFAULT CURRENT_TIMESTAMP was written.
--    A column someone already made timestamptz is left as it is.
--  * orders gains total_amount (unit_price × quantity, exact, in the order's
--    currency) and raw_data (the normalised message, rebuilt from the row's
--    own columns). order_id and customer_id widen to text and the amounts
--    to redpg's precision, so no message redpg accepts can fail the COPY
--    into orders. The existing total_amount_usd values are kept as they are,
--    even those the reference computed by multiplying (see docs/MIGRATING.md).
--  * orders_staging is replaced by redpg's (004). Rows the reference staged
--    but never promoted become dead letters with reason reference_staging,
--    each with a message redpg decodes, so
--    `redpg dlq replay --reason reference_staging` promotes them.
--  * promote_staging_to_production() is replaced by a function that only
--    raises an error: its unconditional TRUNCATE would empty staging under
--    redpg's workers. refresh_all_materialized_views() is left as it is; it
--    refreshes the same three views, which 006 recreates.
--  * orders_rejected and pipeline_batches are created, and the orders and
--    staged rows found are recorded as one 'adopted' batch, so the ledger
--    agrees with orders and orders_rejected.
DO $adopt$
DECLARE
    tz text := coalesce(nullif(current_setting('redpg.naive_timezone', true), ''), 'UTC');
    n_orders bigint;
    n_staged bigint;
    naive text[]; -- table.column of every timestamp without time zone in the lookup tables and orders
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = 'orders_staging'::regclass AND attname = 'batch_id' AND NOT attisdropped) THEN
        RETURN; -- redpg's own staging: nothing to adopt
    END IF;
    PERFORM now() AT TIME ZONE tz; -- an unknown zone fails here, before anything changed
    -- A timestamp column someone already converted to timestamptz is left as it is.
    SELECT coalesce(array_agg(c.relname || '.' || a.attname), '{}') INTO naive
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.oid IN ('orders'::regclass, 'product_catalog'::regclass, 'currency_rates'::regclass)
      AND a.atttypid = 'timestamp'::regtype AND NOT a.attisdropped;

    -- 002's tables, which the reference does not have.
    CREATE TABLE IF NOT EXISTS orders_rejected (
        id           bigserial PRIMARY KEY,
        order_id     text,
        reason       text NOT NULL,
        detail       text,
        raw_payload  bytea NOT NULL,
        batch_id     text,
        rejected_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS orders_rejected_reason_idx ON orders_rejected (reason);
    CREATE TABLE IF NOT EXISTS pipeline_batches (
        batch_id     text PRIMARY KEY,
        status       text NOT NULL,
        worker       text,
        received     integer NOT NULL DEFAULT 0,
        promoted     integer NOT NULL DEFAULT 0,
        duplicates   integer NOT NULL DEFAULT 0,
        rejected     integer NOT NULL DEFAULT 0,
        decided_at   timestamptz NOT NULL DEFAULT now()
    );

    -- Staged but never promoted: keep them as replayable dead letters.
    EXECUTE format($sql$
        INSERT INTO orders_rejected (order_id, reason, detail, raw_payload, batch_id)
        SELECT order_id, 'reference_staging',
               'staged by the Python reference but never promoted; replay with `redpg dlq replay --reason reference_staging`',
               convert_to((jsonb_build_object(
                   'order_id', order_id, 'customer_id', customer_id, 'product_id', product_id,
                   'quantity', quantity, 'unit_price', unit_price::text, 'currency', currency,
                   'zip_code', zip_code,
                   'order_timestamp', to_char((order_timestamp AT TIME ZONE %1$L) AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                 || CASE WHEN jsonb_typeof(raw_data) = 'object' THEN jsonb_build_object('raw_data', raw_data)
                         ELSE '{}'::jsonb END)::text, 'UTF8'),
               'adopted-reference'
        FROM orders_staging
        ORDER BY ingested_at, order_id$sql$, tz);
    GET DIAGNOSTICS n_staged = ROW_COUNT;

    DROP TABLE orders_staging;
    CREATE UNLOGGED TABLE orders_staging (
        batch_id         text NOT NULL,
        row_no           integer NOT NULL,
        order_id         text NOT NULL,
        product_id       text NOT NULL,
        currency         text NOT NULL,
        zip_code         text NOT NULL,
        quantity         integer NOT NULL,
        unit_price       numeric(14,2) NOT NULL,
        order_timestamp  timestamptz NOT NULL,
        enriched         boolean NOT NULL
    );
    CREATE INDEX orders_staging_batch_idx ON orders_staging (batch_id);

    CREATE OR REPLACE FUNCTION promote_staging_to_production() RETURNS TABLE (inserted_count bigint)
    LANGUAGE plpgsql AS $fn$
    BEGIN
        RAISE EXCEPTION 'promote_staging_to_production() is retired: redpg promotes orders itself'
            USING HINT = 'Stop the Python reference consumer; see docs/MIGRATING.md in redpg.';
    END
    $fn$;

    -- The views read the columns changed below; 006 recreates them.
    DROP MATERIALIZED VIEW IF EXISTS sales_hourly, product_performance_daily, shipping_zone_stats;

    -- One ALTER, so orders is rewritten once.
    EXECUTE 'ALTER TABLE orders
            ALTER COLUMN order_id TYPE text,
            ALTER COLUMN customer_id TYPE text,
            ALTER COLUMN unit_price TYPE numeric(14,2),
            ALTER COLUMN total_amount_usd TYPE numeric(16,2),
            ALTER COLUMN processed_at SET DEFAULT now(),
            ADD COLUMN total_amount numeric(16,2),
            ADD COLUMN raw_data jsonb'
        || CASE WHEN 'orders.order_timestamp' = ANY (naive)
                THEN format(', ALTER COLUMN order_timestamp TYPE timestamptz USING order_timestamp AT TIME ZONE %L', tz)
                ELSE '' END
        || CASE WHEN 'orders.processed_at' = ANY (naive) THEN ', ALTER COLUMN processed_at TYPE timestamptz' ELSE '' END;
    UPDATE orders SET
        total_amount = unit_price * quantity,
        raw_data = jsonb_build_object(
            'order_id', order_id, 'customer_id', customer_id, 'product_id', product_id,
            'quantity', quantity, 'unit_price', unit_price::text, 'currency', currency, 'zip_code', zip_code,
            'order_timestamp', to_char(order_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        processed_at = coalesce(processed_at, order_timestamp);
    GET DIAGNOSTICS n_orders = ROW_COUNT;
    ALTER TABLE orders
        ALTER COLUMN total_amount SET NOT NULL,
        ALTER COLUMN raw_data SET NOT NULL,
        ALTER COLUMN processed_at SET NOT NULL;

    IF 'product_catalog.created_at' = ANY (naive) THEN
        ALTER TABLE product_catalog ALTER COLUMN created_at TYPE timestamptz, ALTER COLUMN created_at SET DEFAULT now();
    END IF;
    ALTER TABLE product_catalog ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
    IF 'currency_rates.updated_at' = ANY (naive) THEN
        ALTER TABLE currency_rates ALTER COLUMN updated_at TYPE timestamptz, ALTER COLUMN updated_at SET DEFAULT now();
    END IF;
    -- redpg divides by the rate: a zero would fail every batch that uses it.
    ALTER TABLE currency_rates ADD CONSTRAINT currency_rates_rate_to_usd_check CHECK (rate_to_usd > 0);

    INSERT INTO pipeline_batches (batch_id, status, worker, received, promoted, rejected)
    VALUES ('adopted-reference', 'adopted', 'reference', n_orders + n_staged, n_orders, n_staged);
END
$adopt$;

-- 'adopted': the orders (and dead letters) a database already held when
-- redpg adopted it. Reconcile counts them against the tables but not
-- against the messages produced through Redis.
ALTER TABLE pipeline_batches
    DROP CONSTRAINT IF EXISTS pipeline_batches_status_check,
    ADD CONSTRAINT pipeline_batches_status_check
        CHECK (status IN ('committed', 'abandoned', 'replay', 'adopted'));
