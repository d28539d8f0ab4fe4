#!/usr/bin/env bash
# Builds scripts/compose-check (the Compose Specification's own Go loader,
# github.com/compose-spec/compose-go/v2, pinned in its go.mod) into .tools/compose-check, where
# test/integration/compose-spec.test.ts looks for it. No Docker engine needed. A few seconds
# of CPU after the first module download; idempotent (rebuilt when its sources change).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/compose-check
src=scripts/compose-check
sum=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-16)
if [ -x "$dest/compose-check" ] && [ -f "$dest/.built-$sum" ]; then
  exit 0
fi
go=$(command -v go || true)
if [ -z "$go" ]; then
  echo "setup-compose-check: Go not found; install Go (the compose test builds the Compose Specification's loader with it)" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
(cd "$src" && "$go" build -trimpath -o "../../$dest/compose-check" .)
touch "$dest/.built-$sum"
