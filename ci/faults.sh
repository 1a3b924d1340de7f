#!/usr/bin/env bash
# Builds the fault-injecting PKCS#11 module (crate pkcs11-faults) and prints
# the path of its .so, for HSM_KEYRING_FAULT_MODULE. The rules it applies are
# described in pkcs11-faults/README.md. Progress goes to standard error, the
# path alone to standard output.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/ci/lib.sh"

ensure_packages bc >&2
start=$(date +%s.%N)
# The debug profile, as the tests use: the module is the same file they load.
cargo build --locked --quiet --manifest-path "$ROOT/Cargo.toml" -p pkcs11-faults >&2
end=$(date +%s.%N)
module="${CARGO_TARGET_DIR:-$ROOT/target}/debug/libpkcs11_faults.so"
[ -f "$module" ] || { echo "faults: $module was not built" >&2; exit 1; }
printf 'faults: module ready in %.1f s\n' "$(echo "$end - $start" | bc)" >&2
echo "$module"
