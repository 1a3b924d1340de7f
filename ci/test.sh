#!/usr/bin/env bash
# Every check and every test, the SoftHSM ones included.
# Installs what it needs (softhsm2, bc, python3-venv) on Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

ensure_packages softhsm2 bc python3-venv
export CARGO_TERM_COLOR=never
export CI="${CI:-false}"

# A fresh SoftHSM configuration for this run; the test harness creates its own
# token directories below it, never inside the repository.
SOFTHSM_RUN_DIR=$(mktemp -d -t hsm-keyring-ci.XXXXXX)
trap 'bash ci/s3-server.sh stop; bash ci/dynalite.sh stop; rm -rf "$SOFTHSM_RUN_DIR"' EXIT
mkdir -p "$SOFTHSM_RUN_DIR/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$SOFTHSM_RUN_DIR" \
  >"$SOFTHSM_RUN_DIR/softhsm2.conf"
export SOFTHSM2_CONF="$SOFTHSM_RUN_DIR/softhsm2.conf"
export HSM_KEYRING_TEST_DIR="$SOFTHSM_RUN_DIR"

total_start=$(date +%s)

# The second software token (Kryoptic) and the fault-injecting module in
# front of a real one; the tests that use them fail under CI=true without them.
step "PKCS#11 modules for tests (Kryoptic, fault injection)"
HSM_KEYRING_KRYOPTIC_MODULE=$(bash ci/kryoptic.sh module)
HSM_KEYRING_FAULT_MODULE=$(bash ci/faults.sh)
export HSM_KEYRING_KRYOPTIC_MODULE HSM_KEYRING_FAULT_MODULE
echo "    kryoptic: $HSM_KEYRING_KRYOPTIC_MODULE"
echo "    faults:   $HSM_KEYRING_FAULT_MODULE"
step_done

# The Python S3 Encryption Client for tests/s3_peer.rs (a venv under target/).
step "S3 interop peer (amazon-s3-encryption-client-python, ci/s3-peer.sh)"
HSM_KEYRING_S3_PEER_PYTHON=$(bash ci/s3-peer.sh)
export HSM_KEYRING_S3_PEER_PYTHON
echo "    python:   $HSM_KEYRING_S3_PEER_PYTHON"
step_done

# A DynamoDB-API server (dynalite) for the encrypted table client's tests;
# under CI=true a server that does not start fails the run.
step "DynamoDB-API server for tests (dynalite)"
if HSM_KEYRING_DYNAMODB_ENDPOINT=$(bash ci/dynalite.sh start); then
  export HSM_KEYRING_DYNAMODB_ENDPOINT
  echo "    dynalite: $HSM_KEYRING_DYNAMODB_ENDPOINT"
elif [ "$CI" = true ]; then
  exit 1
else
  echo "    dynalite did not start: the table client's tests are skipped"
fi
step_done

# The S3-API server for the `s3` tests (stopped on exit); under CI=true a
# server that does not start fails the run, elsewhere those tests skip.
step "S3-API server for tests (ci/s3-server.sh)"
if s3_env=$(bash ci/s3-server.sh start); then eval "$s3_env"; echo "    $HSM_KEYRING_S3_ENDPOINT"
elif [ "$CI" = true ]; then exit 1; else echo "    not started: the S3 tests will skip"; fi
step_done

step "format"
cargo fmt --all -- --check
step_done

step "clippy (all targets, all features)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
step_done

step "tests (all features: aws-lc backend, aws-esdk adapter, interop)"
cargo test --workspace --all-features
step_done

step "tests (default pure-Rust backend)"
cargo test
step_done

step "item compatibility with aws-db-esdk (interop/items, its own lock)"
cargo fmt --manifest-path interop/items/Cargo.toml -- --check
cargo test --manifest-path interop/items/Cargo.toml
step_done

step "legacy items written by the DynamoDB Encryption Client (Python package, pinned)"
bash ci/legacy-items-peer.sh
step_done

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
step_done

step "fuzz smoke (each target for ${FUZZ_SECONDS:-60} s on fuzz/seeds)"
bash ci/fuzz.sh
step_done

if [ -n "${HSM_KEYRING_DYNAMODB_ENDPOINT:-}" ]; then
  step "example: encrypted_table against dynalite, with a SoftHSM token"
  mkdir -p "$SOFTHSM_RUN_DIR/example-tokens"
  printf 'directories.tokendir = %s/example-tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$SOFTHSM_RUN_DIR" \
    >"$SOFTHSM_RUN_DIR/example.conf"
  SOFTHSM2_CONF="$SOFTHSM_RUN_DIR/example.conf" softhsm2-util --init-token --free --label example \
    --so-pin 5678 --pin 1234 >/dev/null
  printf 1234 >"$SOFTHSM_RUN_DIR/example.pin"
  SOFTHSM2_CONF="$SOFTHSM_RUN_DIR/example.conf" \
    HSM_KEYRING_TOKEN_URI="pkcs11:token=example?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$SOFTHSM_RUN_DIR/example.pin" \
    cargo run --quiet --features dynamodb-client --example encrypted_table
  step_done
fi

step "demo (ci/demo.sh)"
bash ci/demo.sh
step_done

echo
echo "ci/test.sh: all checks passed in $(( $(date +%s) - total_start )) s"
