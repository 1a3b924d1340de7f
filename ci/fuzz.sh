#!/usr/bin/env bash
# Runs every fuzz target for a short smoke time (FUZZ_SECONDS, default 60)
# on the seed corpus kept in fuzz/seeds/<target>/. The corpus the run grows
# lives in a temporary directory; crashes land in fuzz/artifacts/ (ignored
# by git) and fail the run. The targets are every bin of fuzz/Cargo.toml:
# parse_header and decrypt (messages), decrypt_item (DynamoDB items).
#
# cargo fuzz needs a nightly toolchain. Where none is installed (it cannot
# be downloaded here), one line says so and the targets are only built with
# the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz smoke not run: no nightly Rust toolchain on this machine (cargo fuzz needs one); building the targets with stable only"
  cargo build --manifest-path fuzz/Cargo.toml --bins
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz
fi

work=$(mktemp -d -t hsm-keyring-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

targets=$(cargo +nightly fuzz list --fuzz-dir fuzz)
for target in $targets; do
  seeds="fuzz/seeds/$target"
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "fuzz target $target has no seed corpus in $seeds" >&2
    exit 1
  fi
  mkdir -p "$work/$target"
  echo "--> $target: ${seconds} s from $(ls "$seeds" | wc -l) seeds"
  # The first corpus directory receives new inputs; the seeds are only read.
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$work/$target" "$seeds" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>"$work/$target.log" || {
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  }
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target.log" | sed 's/^/    /'
done
