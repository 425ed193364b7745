-- The reference's names, so that its users' queries and dashboards keep
-- working: product_catalog.base_price and created_at,
-- currency_rates.rate_to_usd, zip_code_zones.timezone, an integer
-- shipping_zone (in zip_code_zones and orders), and the views' reference
-- columns (total_units, total_units_sold). On a database adopted from the
-- reference (005) the tables already have these names and only the views
-- are created; on one redpg created, the renamed columns keep their data.

-- The views read orders.shipping_zone, whose type changes below. No
-- CASCADE: a view someone built on top of these stops the migration with
-- an error naming it, rather than being dropped silently.
DROP MATERIALIZED VIEW IF EXISTS sales_hourly, product_performance_daily, shipping_zone_stats;

DO $names$
DECLARE
    bad text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'product_catalog'::regclass
               AND attname = 'base_price_usd' AND NOT attisdropped) THEN
        ALTER TABLE product_catalog RENAME COLUMN base_price_usd TO base_price;
        IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'product_catalog'::regclass
                   AND conname = 'product_catalog_base_price_usd_check') THEN
            ALTER TABLE product_catalog RENAME CONSTRAINT product_catalog_base_price_usd_check TO product_catalog_base_price_check;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'product_catalog'::regclass
                   AND attname = 'created_at' AND NOT attisdropped) THEN
        ALTER TABLE product_catalog ADD COLUMN created_at timestamptz DEFAULT now();
        UPDATE product_catalog SET created_at = updated_at;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'currency_rates'::regclass
               AND attname = 'units_per_usd' AND NOT attisdropped) THEN
        ALTER TABLE currency_rates RENAME COLUMN units_per_usd TO rate_to_usd;
        IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'currency_rates'::regclass
                   AND conname = 'currency_rates_units_per_usd_check') THEN
            ALTER TABLE currency_rates RENAME CONSTRAINT currency_rates_units_per_usd_check TO currency_rates_rate_to_usd_check;
        END IF;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'zip_code_zones'::regclass
                   AND attname = 'timezone' AND NOT attisdropped) THEN
        ALTER TABLE zip_code_zones ADD COLUMN timezone text;
        -- 001's cities; a zip added by hand gets UTC, to be corrected by its owner.
        UPDATE zip_code_zones z SET timezone = coalesce(
            (SELECT k.tz FROM (VALUES
                ('New York', 'NY', 'America/New_York'), ('Boston', 'MA', 'America/New_York'),
                ('Chicago', 'IL', 'America/Chicago'), ('Dallas', 'TX', 'America/Chicago'),
                ('Atlanta', 'GA', 'America/New_York'), ('Denver', 'CO', 'America/Denver'),
                ('Seattle', 'WA', 'America/Los_Angeles'), ('San Francisco', 'CA', 'America/Los_Angeles'),
                ('Los Angeles', 'CA', 'America/Los_Angeles'), ('Miami', 'FL', 'America/New_York')
             ) AS k (city, state, tz) WHERE k.city = z.city AND k.state = z.state), 'UTC');
        ALTER TABLE zip_code_zones ALTER COLUMN timezone SET NOT NULL;
    END IF;

    -- redpg's zones were text ('Zone-4'); the reference's are integers. The
    -- zone number is kept: 'Zone-4' becomes 4.
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'zip_code_zones'::regclass
        AND attname = 'shipping_zone' AND NOT attisdropped) <> 'integer'::regtype THEN
        SELECT shipping_zone INTO bad FROM zip_code_zones WHERE shipping_zone::text !~ '^\D*\d{1,9}\D*$' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'zip_code_zones.shipping_zone % holds no zone number', quote_literal(bad)
                USING HINT = 'Shipping zones are integers now (''Zone-4'' becomes 4): set it to a number and migrate again.';
        END IF;
        ALTER TABLE zip_code_zones ALTER COLUMN shipping_zone TYPE integer
            USING substring(shipping_zone::text FROM '\d+')::integer;
    END IF;
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'orders'::regclass
        AND attname = 'shipping_zone' AND NOT attisdropped) <> 'integer'::regtype THEN
        SELECT shipping_zone INTO bad FROM orders WHERE shipping_zone::text !~ '^\D*\d{1,9}\D*$' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'orders.shipping_zone % holds no zone number', quote_literal(bad)
                USING HINT = 'Shipping zones are integers now (''Zone-4'' becomes 4): update those orders and migrate again.';
        END IF;
        ALTER TABLE orders ALTER COLUMN shipping_zone TYPE integer
            USING substring(shipping_zone::text FROM '\d+')::integer;
    END IF;
END
$names$;

COMMENT ON COLUMN currency_rates.rate_to_usd IS
    'Units of this currency that one US dollar buys (JPY 149.5), despite the name, which is the Python reference''s. '
    'redpg converts an amount to USD by DIVIDING by it: 1000 JPY / 149.5 = 6.69 USD. '
    'The reference multiplied (1000 JPY became 149500 USD).';
COMMENT ON COLUMN product_catalog.base_price IS 'List price in US dollars; the generator draws unit prices around it.';
COMMENT ON COLUMN zip_code_zones.timezone IS 'IANA zone of the zip code, as in the reference; redpg does not read it.';
COMMENT ON COLUMN zip_code_zones.shipping_zone IS 'Shipping zone number, copied into orders.shipping_zone.';
COMMENT ON COLUMN orders.total_amount_usd IS 'unit_price × quantity ÷ currency_rates.rate_to_usd, rounded to the cent.';

-- The views: the reference's columns first, in its order and with its
-- meaning, then the columns redpg added (units_sold is redpg's earlier
-- name for total_units / total_units_sold). Each has a unique index so it
-- can be refreshed CONCURRENTLY, without blocking readers. hour and day are
-- timestamptz truncated in the refreshing session's TimeZone (the server's
-- default unless a client sets another).

CREATE MATERIALIZED VIEW sales_hourly AS
SELECT date_trunc('hour', order_timestamp) AS hour,
       category,
       count(*)                            AS order_count,
       sum(quantity)                       AS total_units,
       sum(total_amount_usd)               AS total_revenue_usd,
       avg(total_amount_usd)               AS avg_order_value_usd,
       count(DISTINCT customer_id)         AS unique_customers,
       sum(quantity)                       AS units_sold
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX sales_hourly_key ON sales_hourly (hour, category);

-- One row per product and day even if the product was renamed that day
-- (the reference grouped by name too, and its unique index then failed).
CREATE MATERIALIZED VIEW product_performance_daily AS
SELECT date_trunc('day', order_timestamp) AS day,
       product_id,
       min(product_name)                  AS product_name,
       min(category)                      AS category,
       count(*)                           AS order_count,
       sum(quantity)                      AS total_units_sold,
       sum(total_amount_usd)              AS total_revenue_usd,
       sum(quantity)                      AS units_sold,
       avg(total_amount_usd)              AS avg_order_value_usd,
       count(DISTINCT customer_id)        AS unique_customers
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX product_performance_daily_key ON product_performance_daily (day, product_id);

CREATE MATERIALIZED VIEW shipping_zone_stats AS
SELECT shipping_zone,
       country,
       count(*)                         AS order_count,
       sum(total_amount_usd)            AS total_revenue_usd,
       avg(total_amount_usd)            AS avg_order_value_usd,
       count(DISTINCT customer_id)      AS unique_customers,
       count(DISTINCT zip_code)         AS zip_codes
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX shipping_zone_stats_key ON shipping_zone_stats (shipping_zone, country);
