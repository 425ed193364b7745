-- A change to a lookup table is announced, so `redpg serve` republishes the
-- Redis snapshot within seconds instead of waiting for someone to run
-- `redpg init-cache`.
--
-- One NOTIFY per statement, not per row, on the channel redpg_lookups with
-- the payload "<schema>.<table>": one channel serves every schema (tenants,
-- tests) and listeners keep their own schema's notices. NOTIFY is delivered
-- at commit, so a listener that republishes on it reads the committed rows.
CREATE FUNCTION redpg_lookup_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('redpg_lookups', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER product_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON product_catalog
    FOR EACH STATEMENT EXECUTE FUNCTION redpg_lookup_changed();
CREATE TRIGGER currency_rates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON currency_rates
    FOR EACH STATEMENT EXECUTE FUNCTION redpg_lookup_changed();
CREATE TRIGGER zip_code_zones_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON zip_code_zones
    FOR EACH STATEMENT EXECUTE FUNCTION redpg_lookup_changed();
