#!/bin/sh
# Registers the namespace the workers use (the server image does not create one). Idempotent.
set -eu
NS="${TEMPORAL_NAMESPACE:-default}"
ADDR="${TEMPORAL_ADDRESS:-temporal:7233}"
until temporal operator cluster health --address "$ADDR" >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --namespace "$NS" --address "$ADDR" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NS" --retention 30d --address "$ADDR"
echo "namespace $NS is ready"
