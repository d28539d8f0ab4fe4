#!/usr/bin/env bash
# Builds the production Temporal server (`temporal-server`) and its SQL schema tool
# (`temporal-sql-tool`) from the Go module proxy into .tools/temporal-server/bin, with the
# module's PostgreSQL schemas beside them (.tools/temporal-server/schema), where the cluster tests
# and `npm run chaos -- --cluster` look for them (testkit/temporal-cluster.ts). The version is the
# one docker-compose.yml runs (test/unit/compose.test.ts checks they agree): what users start is
# what was tested. Plain `go install` of the released module, no replace directives.
# Takes a few minutes of CPU once; idempotent afterwards. Needs Go >= the module's go line (1.26.2).
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.31.0}"
dest=.tools/temporal-server
stamp="$dest/.built-$TEMPORAL_SERVER_VERSION"
if [ -f "$stamp" ] && [ -x "$dest/bin/temporal-server" ] && [ -x "$dest/bin/temporal-sql-tool" ] && [ -d "$dest/schema/postgresql/v12" ]; then
  exit 0
fi
go=$(command -v go || true)
if [ -z "$go" ]; then
  echo "setup-temporal-server: Go not found; install Go (the cluster tests build the Temporal server with it), or set TEMPORAL_SERVER_DIR to a directory with bin/temporal-server, bin/temporal-sql-tool and schema/" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest/bin"
echo "setup-temporal-server: building go.temporal.io/server $TEMPORAL_SERVER_VERSION (server and SQL tool) with $("$go" version | cut -d' ' -f3)"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
GOBIN="$build" "$go" install \
  "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
  "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
mv "$build/server" "$dest/bin/temporal-server"
mv "$build/sql" "$dest/bin/temporal-sql-tool"
# The schemas ship in the module (read-only in the module cache): copied, writable.
module=$("$go" env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION
cp -R "$module/schema" "$dest/schema"
chmod -R u+w "$dest/schema"
"$dest/bin/temporal-server" --version
touch "$stamp"
