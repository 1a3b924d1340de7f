#!/usr/bin/env bash
# Items written by the legacy DynamoDB Encryption Client (Python package
# dynamodb-encryption-sdk, pinned), read back by this crate.
#
#   bash ci/legacy-items-peer.sh            write target/legacy-items/items.jsonl and run the Rust test on it
#   bash ci/legacy-items-peer.sh write OUT  only write the items to OUT
#
# The virtual environment lives in ~/.cache/hsm-keyring/legacy-items-venv.
# With CI=true a peer that cannot be installed is a failure; otherwise the
# step is skipped with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."

PEER_VERSION=3.3.0
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/hsm-keyring/legacy-items-venv"

skip_or_fail() {
  if [ "${CI:-false}" = "true" ]; then
    echo "legacy-items peer: $1" >&2
    exit 1
  fi
  echo "legacy-items peer: $1; skipped (set CI=true to make this a failure)" >&2
  exit 0
}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import dynamodb_encryption_sdk" 2>/dev/null; then
  command -v python3 >/dev/null || skip_or_fail "python3 is not installed"
  python3 -m venv "$VENV" || skip_or_fail "cannot create a virtual environment in $VENV"
  "$VENV/bin/pip" install --quiet "dynamodb-encryption-sdk==$PEER_VERSION" ||
    skip_or_fail "cannot install dynamodb-encryption-sdk $PEER_VERSION"
fi

write() {
  "$VENV/bin/python" interop/legacy-items/write_items.py tests/data/interop-rsa-2048-private.pem >"$1"
}

if [ "${1:-}" = "write" ]; then
  write "${2:?usage: legacy-items-peer.sh write OUT}"
  exit 0
fi

mkdir -p target/legacy-items
write target/legacy-items/items.jsonl
echo "legacy-items peer: $(wc -l <target/legacy-items/items.jsonl) items written by dynamodb-encryption-sdk $PEER_VERSION"
HSM_KEYRING_LEGACY_PEER_ITEMS="$PWD/target/legacy-items/items.jsonl" CI=true \
  cargo test --test legacy_items_peer
