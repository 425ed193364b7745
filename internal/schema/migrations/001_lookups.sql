-- Lookup tables: the source of truth that `redpg init-cache` snapshots into Redis.

CREATE TABLE product_catalog (
    product_id     text PRIMARY KEY,
    product_name   text NOT NULL,
    category       text NOT NULL,
    base_price_usd numeric(12,2) NOT NULL CHECK (base_price_usd > 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- units_per_usd is how many units of the currency one US dollar buys
-- (JPY 149.5). An amount in the currency is converted to USD by DIVIDING by
-- it: 1000 JPY / 149.5 = 6.69 USD. The seed called this rate_to_usd and
-- multiplied, turning 1000 JPY into 149,500 USD.
CREATE TABLE currency_rates (
    currency_code  char(3) PRIMARY KEY CHECK (currency_code ~ '^[A-Z]{3}$'),
    units_per_usd  numeric(18,6) NOT NULL CHECK (units_per_usd > 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE zip_code_zones (
    zip_code       text PRIMARY KEY,
    city           text NOT NULL,
    state          text NOT NULL,
    country        text NOT NULL,
    shipping_zone  text NOT NULL
);

INSERT INTO product_catalog (product_id, product_name, category, base_price_usd) VALUES
    ('PROD-001', 'Wireless Mouse',          'Electronics',   24.99),
    ('PROD-002', 'Mechanical Keyboard',     'Electronics',   89.99),
    ('PROD-003', 'USB-C Hub',               'Electronics',   39.99),
    ('PROD-004', '27" Monitor',             'Electronics',  249.99),
    ('PROD-005', 'Noise-Cancelling Headphones', 'Electronics', 199.99),
    ('PROD-006', 'Running Shoes',           'Apparel',       79.99),
    ('PROD-007', 'Rain Jacket',             'Apparel',       59.99),
    ('PROD-008', 'Cotton T-Shirt',          'Apparel',       14.99),
    ('PROD-009', 'Coffee Maker',            'Home & Kitchen', 49.99),
    ('PROD-010', 'Chef''s Knife',           'Home & Kitchen', 34.99),
    ('PROD-011', 'Cast Iron Skillet',       'Home & Kitchen', 29.99),
    ('PROD-012', 'Yoga Mat',                'Sports',        19.99),
    ('PROD-013', 'Adjustable Dumbbells',    'Sports',       149.99),
    ('PROD-014', 'Data Engineering Book',   'Books',         44.99),
    ('PROD-015', 'Science Fiction Novel',   'Books',         12.99);

INSERT INTO currency_rates (currency_code, units_per_usd) VALUES
    ('USD',   1.000000),
    ('EUR',   0.920000),
    ('GBP',   0.790000),
    ('JPY', 149.500000),
    ('CAD',   1.360000),
    ('AUD',   1.530000),
    ('INR',  83.200000);

INSERT INTO zip_code_zones (zip_code, city, state, country, shipping_zone) VALUES
    ('10001', 'New York',      'NY', 'US', 'Zone-1'),
    ('02108', 'Boston',        'MA', 'US', 'Zone-1'),
    ('60601', 'Chicago',       'IL', 'US', 'Zone-2'),
    ('75201', 'Dallas',        'TX', 'US', 'Zone-2'),
    ('30301', 'Atlanta',       'GA', 'US', 'Zone-2'),
    ('80202', 'Denver',        'CO', 'US', 'Zone-3'),
    ('98101', 'Seattle',       'WA', 'US', 'Zone-4'),
    ('94105', 'San Francisco', 'CA', 'US', 'Zone-4'),
    ('90001', 'Los Angeles',   'CA', 'US', 'Zone-4'),
    ('33101', 'Miami',         'FL', 'US', 'Zone-3');
