#!/bin/sh
# Build the benchmark twice (hsm-keyring with the aws-lc backend plus the
# references, and hsm-keyring with the default RustCrypto backend alone) and
# run it; arguments are passed on (see `--help`). Prints one markdown table.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p bench --no-default-features --target-dir target/bench-rustcrypto
cargo build --release -p bench --features aws-lc
exec target/release/bench --worker target/bench-rustcrypto/release/bench "$@"
