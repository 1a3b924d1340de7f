#!/usr/bin/env bash
# Create a throw-away SoftHSM token and provision hsm-keyring test keys in it.
#
#   softhsm/setup.sh [DIR]
#
# DIR (default: a new `mktemp -d` directory) receives the token directory and
# softhsm2.conf; it must not be inside the repository. The script prints the
# `export SOFTHSM2_CONF=...` line to use the token, and the key URIs.
#
# Environment: TOKEN_LABEL (default hsm-keyring-dev), USER_PIN (default
# 1234-dev-pin), SO_PIN (default 5678-dev-so-pin), PKCS11_MODULE (default
# /usr/lib/softhsm/libsofthsm2.so).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dir="${1:-$(mktemp -d -t hsm-keyring-softhsm-XXXXXX)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
case "$dir/" in
  "$repo"/*) echo "refusing to create a token inside the repository: $dir" >&2; exit 1 ;;
esac

label="${TOKEN_LABEL:-hsm-keyring-dev}"
pin="${USER_PIN:-1234-dev-pin}"
so_pin="${SO_PIN:-5678-dev-so-pin}"
module="${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"

command -v softhsm2-util >/dev/null || { echo "softhsm2-util not found (apt-get install softhsm2)" >&2; exit 1; }
[ -e "$module" ] || { echo "PKCS#11 module not found: $module" >&2; exit 1; }

mkdir -p "$dir/tokens"
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.template" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"

softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null

# Keys are made through the crate's own key management API.
printf '%s' "$pin" > "$dir/user-pin"
chmod 600 "$dir/user-pin"
(cd "$repo" && cargo run --quiet --example provision -- \
  "pkcs11:token=$label?module-path=$module&pin-source=file:$dir/user-pin")

echo "export SOFTHSM2_CONF=$SOFTHSM2_CONF"
