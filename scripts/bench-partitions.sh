#!/usr/bin/env bash
# Partitioned vs unpartitioned `orders` at ROWS rows (default 10,000,000), end to
# end, as docs/SCALING.md reports: two schemas in a scratch database
# (redpg_bench_partitions), each preloaded with ROWS orders over 395 days, one
# converted with `redpg partition`, then three alternating rounds of
# generate 50,000 + process. Needs bin/redpg (make build), psql and bc; drops
# the scratch database at the end. Takes about 10 minutes at 10 M rows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000000}
B=bin/redpg
DB=redpg_bench_partitions
export DATABASE_URL=postgres://root@127.0.0.1:5432/$DB REDIS_URL=redis://127.0.0.1:6379/12
psql -h 127.0.0.1 -U root postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -h 127.0.0.1 -U root postgres -qc "DROP DATABASE IF EXISTS $DB"; redis-cli -n 12 flushdb >/dev/null' EXIT
log(){ echo "[$(date +%T)] $*"; }
for s in unp par; do
  POSTGRES_SCHEMA=$s REDPG_KEY_PREFIX=$s: $B migrate >/dev/null
  log "preload $s"
  psql -q -h 127.0.0.1 -U root $DB -c "SET synchronous_commit=off; INSERT INTO $s.orders (order_id, customer_id, product_id, product_name, category, quantity, unit_price, currency, total_amount, total_amount_usd, zip_code, city, state, country, shipping_zone, order_timestamp, raw_data)
SELECT 'PRE-'||lpad(g::text,9,'0'), 'C-'||(g%100000), 'PROD-001','Laptop Pro 15\"','Electronics',1,10,'USD',10,10,'10001','New York','NY','US',1, now() - ((g % (395*86400)) * interval '1 second') - interval '2 hours', '{}'::jsonb FROM generate_series(1,$ROWS) g; ANALYZE $s.orders;"
  # The preload is recorded in the ledger so that reconcile balances.
  psql -q -h 127.0.0.1 -U root $DB -c "INSERT INTO $s.pipeline_batches (batch_id,status,worker,received,promoted) VALUES ('preload','replay','preload',0,$ROWS)"
done
log "partition par"
time POSTGRES_SCHEMA=par REDPG_KEY_PREFIX=par: $B partition >/dev/null
for r in 1 2 3; do
  for s in unp par; do
    POSTGRES_SCHEMA=$s REDPG_KEY_PREFIX=$s: $B generate --count 50000 --duplicates 0.05 >/dev/null 2>&1
    t0=$(date +%s.%N)
    POSTGRES_SCHEMA=$s REDPG_KEY_PREFIX=$s: $B process --workers 4 --until-empty 2>/dev/null | tail -1
    t1=$(date +%s.%N)
    log "round $r $s: $(echo "50000 / ($t1 - $t0)" | bc -l | cut -c1-8) msgs/s"
  done
done
for s in unp par; do POSTGRES_SCHEMA=$s REDPG_KEY_PREFIX=$s: $B reconcile | tail -2; done
psql -q -h 127.0.0.1 -U root $DB -c "SELECT n.nspname, pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname IN ('unp','par') GROUP BY 1"
