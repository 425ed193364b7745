-- Pre-computed aggregations for dashboards. Each has a unique index so it
-- can be refreshed CONCURRENTLY, without blocking readers.

CREATE MATERIALIZED VIEW sales_hourly AS
SELECT date_trunc('hour', order_timestamp) AS hour,
       category,
       count(*)                            AS order_count,
       sum(quantity)                       AS units_sold,
       sum(total_amount_usd)               AS total_revenue_usd,
       round(avg(total_amount_usd), 2)     AS avg_order_value_usd,
       count(DISTINCT customer_id)         AS unique_customers
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX sales_hourly_key ON sales_hourly (hour, category);

CREATE MATERIALIZED VIEW product_performance_daily AS
SELECT date_trunc('day', order_timestamp) AS day,
       product_id,
       min(product_name)                  AS product_name,
       min(category)                      AS category,
       count(*)                           AS order_count,
       sum(quantity)                      AS units_sold,
       sum(total_amount_usd)              AS total_revenue_usd,
       round(avg(total_amount_usd), 2)    AS avg_order_value_usd,
       count(DISTINCT customer_id)        AS unique_customers
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX product_performance_daily_key ON product_performance_daily (day, product_id);

CREATE MATERIALIZED VIEW shipping_zone_stats AS
SELECT shipping_zone,
       country,
       count(*)                         AS order_count,
       sum(total_amount_usd)            AS total_revenue_usd,
       round(avg(total_amount_usd), 2)  AS avg_order_value_usd,
       count(DISTINCT zip_code)         AS zip_codes,
       count(DISTINCT customer_id)      AS unique_customers
FROM orders
GROUP BY 1, 2;
CREATE UNIQUE INDEX shipping_zone_stats_key ON shipping_zone_stats (shipping_zone, country);
