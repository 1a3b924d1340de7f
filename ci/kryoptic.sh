#!/usr/bin/env bash
# Kryoptic, a second software PKCS#11 token (written in Rust, on OpenSSL 3).
#
#   ci/kryoptic.sh module
#       Builds the module once (cached in target/kryoptic; later runs are a
#       no-op cargo check of the cache) and prints the path of the .so.
#   ci/kryoptic.sh token DIR LABEL SO_PIN USER_PIN
#       Writes DIR/kryoptic.conf (one sqlite slot, DIR/token.sql), initializes
#       its token (C_InitToken, C_InitPIN) and prints the configuration path,
#       to export as KRYOPTIC_CONF. DIR must not hold a token already. PINs are
#       at least 8 characters (the minimum Kryoptic advertises).
#
# The build cache is target/kryoptic, or HSM_KEYRING_KRYOPTIC_TARGET_DIR (for
# a CI cache kept apart from the project's target directory).
# Installs what the build needs (Debian, as root or through sudo) when missing.
# Progress goes to standard error, the path alone to standard output.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/ci/lib.sh"

TARGET_DIR="${HSM_KEYRING_KRYOPTIC_TARGET_DIR:-$ROOT/target/kryoptic}"
MODULE="$TARGET_DIR/release/libkryoptic_pkcs11.so"
TOKEN_TOOL="$TARGET_DIR/release/kryoptic-token"

usage() {
  sed -n '2,15p' "$0" >&2
  exit 2
}

build() {
  # libssl-dev: OpenSSL 3 to link against; libclang-dev: bindgen;
  # libsqlite3-dev: the token store; pkg-config: finding them.
  ensure_packages libssl-dev libclang-dev libsqlite3-dev pkg-config bc >&2
  local start end
  start=$(date +%s.%N)
  cargo build --release --locked --quiet \
    --manifest-path "$ROOT/ci/kryoptic/Cargo.toml" --target-dir "$TARGET_DIR" >&2
  end=$(date +%s.%N)
  printf 'kryoptic: module ready in %.1f s\n' "$(echo "$end - $start" | bc)" >&2
  [ -f "$MODULE" ] || { echo "kryoptic: $MODULE was not built" >&2; exit 1; }
}

token() {
  [ $# -eq 4 ] || usage
  local dir=$1 label=$2 so_pin=$3 user_pin=$4
  if [ ${#so_pin} -lt 8 ] || [ ${#user_pin} -lt 8 ]; then
    echo "kryoptic: PINs must be at least 8 characters" >&2
    exit 2
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -e "$dir/token.sql" ]; then
    echo "kryoptic: $dir/token.sql exists already" >&2
    exit 1
  fi
  build
  printf '[[slots]]\nslot = 1\ndbtype = "sqlite"\ndbargs = "%s/token.sql"\n' "$dir" >"$dir/kryoptic.conf"
  # PINs through the environment, not the command line.
  KRYOPTIC_CONF="$dir/kryoptic.conf" KRYOPTIC_SO_PIN="$so_pin" KRYOPTIC_USER_PIN="$user_pin" \
    "$TOKEN_TOOL" "$MODULE" "$label" >/dev/null
  echo "$dir/kryoptic.conf"
}

case "${1:-}" in
  module)
    [ $# -eq 1 ] || usage
    build
    echo "$MODULE"
    ;;
  token)
    shift
    token "$@"
    ;;
  *) usage ;;
esac
