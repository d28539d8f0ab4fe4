#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases (run by the temporal-schema service with
# the temporalio/admin-tools image, before the server starts). Safe to run on every `up`: an
# existing database and schema are kept, and update-schema applies only the versions still missing.
set -eu
HOST="${POSTGRES_SEEDS:-temporal-db}"
# The admin-tools image keeps the schema files here; the cluster tests point it at the module's copy.
SCHEMA="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}"
tool() { temporal-sql-tool --plugin postgres12 --ep "$HOST" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"; }  # password: SQL_PASSWORD
echo "waiting for PostgreSQL at $HOST..."
if command -v nc >/dev/null 2>&1; then
  until nc -z "$HOST" "${DB_PORT:-5432}"; do sleep 1; done
fi
for db in temporal temporal_visibility; do
  tool --db "$db" create || echo "database $db exists"
  tool --db "$db" setup-schema -v 0.0 || echo "schema of $db already set up"
done
tool --db temporal update-schema -d "$SCHEMA"/postgresql/v12/temporal/versioned
tool --db temporal_visibility update-schema -d "$SCHEMA"/postgresql/v12/visibility/versioned
echo "Temporal schema is up to date"
