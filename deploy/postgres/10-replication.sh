#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory
# (/docker-entrypoint-initdb.d): lets the replica service stream WAL as the
# POSTGRES_USER. The image's own pg_hba.conf lines cover databases, not the
# replication pseudo-database.
set -e
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
