#!/usr/bin/env bash
# End to end on a throw-away SoftHSM dev token: create the token, generate keys,
# encrypt a few MiB with the HSM key plus a raw RSA escrow key, inspect, decrypt
# with each key, and show that one flipped byte is refused.
# Installs what is missing (softhsm2, openssl, bc) on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

ensure_packages softhsm2 openssl bc

step "build (release)"
cargo build --release --quiet --bin hsm-keyring --features cli
step_done
BIN="$PWD/target/release/hsm-keyring"

WORK=$(mktemp -d -t hsm-keyring-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# Every command below uses this dev token unless a URI names another module.
export HSM_KEYRING_DEV_DIR="$WORK/dev-token"
unset SOFTHSM2_CONF

step "dev-token init"
"$BIN" dev-token init
step_done

step "keys generate (AES-256 wrapping key, EC P-384 signing key)"
"$BIN" keys generate --type aes-256 --label demo-wrap
"$BIN" keys generate --type ec-p384 --label demo-sign
"$BIN" keys list
step_done

step "raw RSA-3072 escrow key (outside the token, held offline)"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out escrow.pem 2>/dev/null
openssl pkey -in escrow.pem -pubout -out escrow.pub.pem
step_done

HSM_KEY="type=pkcs11,uri=pkcs11:token=hsm-keyring-dev;object=demo-wrap;type=secret-key"
SIGNER="pkcs11:token=hsm-keyring-dev;object=demo-sign;type=private"
ESCROW_PUB="type=rsa,path=escrow.pub.pem,namespace=escrow,name=escrow-2026,padding=oaep-sha256"
ESCROW_PRIV="type=rsa,path=escrow.pem,namespace=escrow,name=escrow-2026,padding=oaep-sha256"

head -c $((6 * 1024 * 1024)) /dev/urandom >sample.bin

step "encrypt 6 MiB (HSM key + RSA escrow, token-held signer)"
"$BIN" encrypt -i sample.bin -o sample.enc -w "$HSM_KEY" -w "$ESCROW_PUB" \
  --context purpose=demo --context owner=platform --signer "$SIGNER"
ls -l sample.bin sample.enc | awk '{print "    " $5 "  " $9}'
step_done

step "inspect"
"$BIN" inspect -i sample.enc
step_done

step "decrypt with the HSM key"
"$BIN" decrypt -i sample.enc -o out-hsm.bin -w "$HSM_KEY" --context purpose=demo \
  --trusted-signer "$SIGNER"
cmp sample.bin out-hsm.bin && echo "    plaintext matches"
step_done

step "decrypt with the escrow key only"
"$BIN" decrypt -i sample.enc -o out-escrow.bin -w "$ESCROW_PRIV"
cmp sample.bin out-escrow.bin && echo "    plaintext matches"
step_done

step "tamper: flip one byte in the middle"
cp sample.enc tampered.enc
offset=$(( $(stat -c %s tampered.enc) / 2 ))
orig=$(dd if=tampered.enc bs=1 skip="$offset" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(( (orig ^ 1) & 255 )))" | dd of=tampered.enc bs=1 seek="$offset" conv=notrunc 2>/dev/null
set +e
"$BIN" decrypt -i tampered.enc -o out-tampered.bin -w "$HSM_KEY"
code=$?
set -e
if [ "$code" -ne 1 ]; then
  echo "expected exit code 1 for a tampered message, got $code" >&2
  exit 1
fi
if [ -e out-tampered.bin ]; then
  echo "a failed decrypt left an output file behind" >&2
  exit 1
fi
echo "    refused with exit code 1, no output file left"
step_done

echo
echo "demo: all steps passed"
