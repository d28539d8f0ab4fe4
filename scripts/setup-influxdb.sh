#!/usr/bin/env bash
# Builds InfluxDB OSS 1.8.3 (`influxd`) from the Go module proxy into .tools/influxdb/bin, where
# the metrics tests look for it (testkit/influxdb.ts). 1.8 is the last InfluxDB that builds
# with `go install` alone, and with `flux-enabled = true` it takes the v2 client's writes
# (/api/v2/write) and answers Flux (/api/v2/query), which is all the tests need of an InfluxDB 2.
# Takes about 90 s of CPU once; idempotent afterwards. Needs Go (any recent toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
INFLUXDB_VERSION="${INFLUXDB_VERSION:-v1.8.3}"
dest=.tools/influxdb/bin
stamp=".tools/influxdb/.built-$INFLUXDB_VERSION"
if [ -f "$stamp" ] && [ -x "$dest/influxd" ]; then
  exit 0
fi
go=$(command -v go || true)
if [ -z "$go" ]; then
  echo "setup-influxdb: Go not found; install Go (the metrics tests build influxd with it), or set INFLUXD_PATH to an InfluxDB 1.8 influxd" >&2
  exit 1
fi
mkdir -p "$dest"
echo "setup-influxdb: building influxd $INFLUXDB_VERSION with $("$go" version | cut -d' ' -f3) (about 90 s of CPU)"
GOBIN="$(cd "$dest" && pwd)" "$go" install "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
touch "$stamp"
