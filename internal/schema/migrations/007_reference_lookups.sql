-- The reference's lookup rows instead of the ones 001 invented, so that
-- orders from the reference's producers find their products and zip codes
-- (half of them, every Canadian one, used to be dead-lettered unknown_zip)
-- and demo numbers, categories and zones match the reference's.
--
-- Only rows 001 seeded and nobody changed since are touched; a row is
-- recognised as 001's by all its values. Products and currencies are
-- updated in place: their ids do not change, so the orders' foreign key
-- holds, and orders keep the names, categories and amounts they were
-- promoted with. 001's five zip codes the reference does not have are
-- deleted unless an order has that zip code, in which case they stay (with
-- their zone number), so replaying such an order still finds it. Reference
-- rows missing afterwards are added.
--
-- A database adopted from the reference (005) has the reference's rows
-- already and never had 001's: it is left as it is. 001 ran in a schema
-- exactly when redpg_migrations records it under its own name; the runner
-- records it differently for an adopted schema.
DO $seed$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM redpg_migrations WHERE version = 1 AND name = 'lookups') THEN
        RETURN;
    END IF;

    UPDATE product_catalog p
    SET product_name = c.new_name, category = c.new_category, base_price = c.new_price, updated_at = now()
    FROM (VALUES
        ('PROD-001', 'Wireless Mouse',              'Electronics',    24.99, 'Laptop Pro 15"',      'Electronics', 1299.99),
        ('PROD-002', 'Mechanical Keyboard',         'Electronics',    89.99, 'Wireless Mouse',      'Electronics',   29.99),
        ('PROD-003', 'USB-C Hub',                   'Electronics',    39.99, 'USB-C Hub',           'Electronics',   49.99),
        ('PROD-004', '27" Monitor',                 'Electronics',   249.99, 'Mechanical Keyboard', 'Electronics',  149.99),
        ('PROD-005', 'Noise-Cancelling Headphones', 'Electronics',   199.99, 'Office Chair',        'Furniture',    299.99),
        ('PROD-006', 'Running Shoes',               'Apparel',        79.99, 'Standing Desk',       'Furniture',    599.99),
        ('PROD-007', 'Rain Jacket',                 'Apparel',        59.99, 'Monitor 27"',         'Electronics',  399.99),
        ('PROD-008', 'Cotton T-Shirt',              'Apparel',        14.99, 'Webcam HD',           'Electronics',   79.99),
        ('PROD-009', 'Coffee Maker',                'Home & Kitchen', 49.99, 'Desk Lamp',           'Furniture',     39.99),
        ('PROD-010', 'Chef''s Knife',               'Home & Kitchen', 34.99, 'Cable Organizer',     'Accessories',   19.99),
        ('PROD-011', 'Cast Iron Skillet',           'Home & Kitchen', 29.99, 'Headphones',          'Electronics',  199.99),
        ('PROD-012', 'Yoga Mat',                    'Sports',         19.99, 'Notebook Set',        'Stationery',    24.99),
        ('PROD-013', 'Adjustable Dumbbells',        'Sports',        149.99, 'Pen Pack',            'Stationery',     9.99),
        ('PROD-014', 'Data Engineering Book',       'Books',          44.99, 'Water Bottle',        'Accessories',   14.99),
        ('PROD-015', 'Science Fiction Novel',       'Books',          12.99, 'Backpack',            'Accessories',   79.99)
    ) AS c (product_id, old_name, old_category, old_price, new_name, new_category, new_price)
    WHERE p.product_id = c.product_id
      AND (p.product_name, p.category, p.base_price) = (c.old_name, c.old_category, c.old_price);

    UPDATE currency_rates r
    SET rate_to_usd = c.new_rate, updated_at = now()
    FROM (VALUES ('CAD', 1.36, 1.35), ('AUD', 1.53, 1.52)) AS c (currency_code, old_rate, new_rate)
    WHERE r.currency_code = c.currency_code AND r.rate_to_usd = c.old_rate;

    -- 006 turned 001's 'Zone-N' into N and gave each city its zone.
    UPDATE zip_code_zones z
    SET city = c.new_city, state = c.new_state, country = c.new_country, timezone = c.new_tz, shipping_zone = c.new_zone
    FROM (VALUES
        ('10001', 'New York', 'NY', 'US', 1, 'New York', 'NY', 'US', 'America/New_York', 1),
        ('60601', 'Chicago',  'IL', 'US', 2, 'Chicago',  'IL', 'US', 'America/Chicago',  1),
        ('98101', 'Seattle',  'WA', 'US', 4, 'Seattle',  'WA', 'US', 'America/Los_Angeles', 2),
        ('33101', 'Miami',    'FL', 'US', 3, 'Miami',    'FL', 'US', 'America/New_York', 3),
        ('75201', 'Dallas',   'TX', 'US', 2, 'Dallas',   'TX', 'US', 'America/Chicago',  3)
    ) AS c (zip_code, old_city, old_state, old_country, old_zone, new_city, new_state, new_country, new_tz, new_zone)
    WHERE z.zip_code = c.zip_code
      AND (z.city, z.state, z.country, z.shipping_zone) = (c.old_city, c.old_state, c.old_country, c.old_zone);

    DELETE FROM zip_code_zones z
    USING (VALUES
        ('02108', 'Boston',        'MA', 'US', 1),
        ('30301', 'Atlanta',       'GA', 'US', 2),
        ('80202', 'Denver',        'CO', 'US', 3),
        ('94105', 'San Francisco', 'CA', 'US', 4),
        ('90001', 'Los Angeles',   'CA', 'US', 4)
    ) AS c (zip_code, city, state, country, shipping_zone)
    WHERE z.zip_code = c.zip_code
      AND (z.city, z.state, z.country, z.shipping_zone) = (c.city, c.state, c.country, c.shipping_zone)
      AND z.zip_code NOT IN (SELECT DISTINCT o.zip_code FROM orders o
                             WHERE o.zip_code IN ('02108', '30301', '80202', '94105', '90001'));

    INSERT INTO product_catalog (product_id, product_name, category, base_price) VALUES
        ('PROD-001', 'Laptop Pro 15"', 'Electronics', 1299.99),
        ('PROD-002', 'Wireless Mouse', 'Electronics', 29.99),
        ('PROD-003', 'USB-C Hub', 'Electronics', 49.99),
        ('PROD-004', 'Mechanical Keyboard', 'Electronics', 149.99),
        ('PROD-005', 'Office Chair', 'Furniture', 299.99),
        ('PROD-006', 'Standing Desk', 'Furniture', 599.99),
        ('PROD-007', 'Monitor 27"', 'Electronics', 399.99),
        ('PROD-008', 'Webcam HD', 'Electronics', 79.99),
        ('PROD-009', 'Desk Lamp', 'Furniture', 39.99),
        ('PROD-010', 'Cable Organizer', 'Accessories', 19.99),
        ('PROD-011', 'Headphones', 'Electronics', 199.99),
        ('PROD-012', 'Notebook Set', 'Stationery', 24.99),
        ('PROD-013', 'Pen Pack', 'Stationery', 9.99),
        ('PROD-014', 'Water Bottle', 'Accessories', 14.99),
        ('PROD-015', 'Backpack', 'Accessories', 79.99)
    ON CONFLICT (product_id) DO NOTHING;

    INSERT INTO currency_rates (currency_code, rate_to_usd) VALUES
        ('USD', 1.000000),
        ('EUR', 0.920000),
        ('GBP', 0.790000),
        ('CAD', 1.350000),
        ('AUD', 1.520000),
        ('JPY', 149.500000),
        ('INR', 83.200000)
    ON CONFLICT (currency_code) DO NOTHING;

    INSERT INTO zip_code_zones (zip_code, city, state, country, timezone, shipping_zone) VALUES
        ('10001', 'New York', 'NY', 'US', 'America/New_York', 1),
        ('94102', 'San Francisco', 'CA', 'US', 'America/Los_Angeles', 2),
        ('60601', 'Chicago', 'IL', 'US', 'America/Chicago', 1),
        ('02101', 'Boston', 'MA', 'US', 'America/New_York', 1),
        ('98101', 'Seattle', 'WA', 'US', 'America/Los_Angeles', 2),
        ('33101', 'Miami', 'FL', 'US', 'America/New_York', 3),
        ('75201', 'Dallas', 'TX', 'US', 'America/Chicago', 3),
        ('80201', 'Denver', 'CO', 'US', 'America/Denver', 2),
        ('M5H2N2', 'Toronto', 'ON', 'CA', 'America/Toronto', 1),
        ('V6B1A1', 'Vancouver', 'BC', 'CA', 'America/Vancouver', 2)
    ON CONFLICT (zip_code) DO NOTHING;
END
$seed$;

-- Fresh statistics for the changed rows (see 004).
ANALYZE product_catalog;
ANALYZE currency_rates;
ANALYZE zip_code_zones;
