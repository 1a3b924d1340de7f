#!/usr/bin/env bash
# Item encryption speed against the AWS Database Encryption SDK for Rust, run
# by hand (never by ci/test.sh): builds the benchmark in release mode with
# hsm-keyring on aws-lc and prints markdown tables (see
# src/bin/items-bench/main.rs; ITEMS_BENCH_ROUNDS and ITEMS_BENCH_MS tune it).
#
# When SoftHSM is installed it also measures a token AES key behind the
# caching CMM, through the fault-injecting module (ci/faults.sh) adding
# ITEMS_BENCH_LATENCY (default 1ms) to every PKCS#11 call; ITEMS_BENCH_SOFTHSM=0
# leaves that part out.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SOFTHSM=${PKCS11_FAULTS_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

# From the crate's folder, so that its .cargo/config.toml (the shared target directory) applies.
cd "$HERE"
cargo build --release --locked --features aws-lc --bin items-bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/items-bench"

if [ "${ITEMS_BENCH_SOFTHSM:-1}" != 0 ] && [ -f "$SOFTHSM" ] && command -v softhsm2-util >/dev/null; then
  FAULTS=$("$ROOT/ci/faults.sh")
  DIR=$(mktemp -d)
  trap 'rm -rf "$DIR"' EXIT
  mkdir "$DIR/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$DIR/tokens" >"$DIR/softhsm2.conf"
  export SOFTHSM2_CONF="$DIR/softhsm2.conf"
  softhsm2-util --init-token --free --label items-bench --pin items-bench-pin --so-pin items-bench-so-pin >/dev/null
  PKCS11_FAULTS_MODULE="$SOFTHSM" PKCS11_FAULTS="*=latency:${ITEMS_BENCH_LATENCY:-1ms}" \
    ITEMS_BENCH_MODULE="$FAULTS" ITEMS_BENCH_TOKEN=items-bench ITEMS_BENCH_PIN=items-bench-pin "$BIN"
else
  "$BIN"
fi
