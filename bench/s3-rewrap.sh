#!/usr/bin/env bash
# Bytes that `hsm-keyring s3 rewrap` moves between the client and the S3-API
# server, counted by a TCP proxy (bench/count_proxy.py) in front of the local
# server of ci/s3-server.sh, for one object of SIZE_MIB (default 256) with its
# metadata in the object (rewrapped by a server-side CopyObject) and with an
# instruction file; `s3 get` of the same object through the same proxy shows
# what moving the body costs. Keys: two AES keys in a SoftHSM token. Checks
# that the rewrapped objects open with the new key and not with the old one.
#
#   bench/s3-rewrap.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}

cargo build --quiet --release --features cli,s3 --bin hsm-keyring
bin=$PWD/target/release/hsm-keyring

started_server=false
if [ -z "${HSM_KEYRING_S3_ENDPOINT:-}" ]; then
  eval "$(bash ci/s3-server.sh start)"
  started_server=true
fi
work=$(mktemp -d -t hsm-keyring-s3-rewrap-bench.XXXXXX)
proxy_pid=
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if $started_server; then bash ci/s3-server.sh stop; fi
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label s3-rewrap --pin 1234 --so-pin 5678 >/dev/null
module=/usr/lib/softhsm/libsofthsm2.so
token="pkcs11:token=s3-rewrap?module-path=$module&pin-value=1234"
key() { echo "type=pkcs11,uri=\"pkcs11:token=s3-rewrap;object=$1;type=secret-key?module-path=$module&pin-value=1234\""; }
for k in old-key new-key; do
  "$bin" --quiet --insecure-pin-in-uri keys generate --type aes-256 --label "$k" --token "$token" >/dev/null
done
old=$(key old-key)
new=$(key new-key)
s3() { "$bin" --quiet --insecure-pin-in-uri s3 "$@"; }

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/in.bin"
python3 - "$HSM_KEYRING_S3_ENDPOINT" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/rewrap-bench", method="PUT"))
PY
s3 put "$work/in.bin" s3://rewrap-bench/meta -w "$old" --endpoint-url "$HSM_KEYRING_S3_ENDPOINT"
s3 put "$work/in.bin" s3://rewrap-bench/instr -w "$old" --instruction-file --endpoint-url "$HSM_KEYRING_S3_ENDPOINT"

# counted NAME ARGS...: `hsm-keyring s3 ARGS` with the proxy as its endpoint
# (the word ENDPOINT in ARGS); "<bytes up> <bytes down> <seconds>" into $work/NAME.
upstream_port=${HSM_KEYRING_S3_ENDPOINT##*:}
counted() {
  local name=$1; shift
  rm -f "$work/port"
  python3 bench/count_proxy.py "$upstream_port" "$work/port" "$work/$name.bytes" &
  proxy_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  local args=() a
  for a in "$@"; do
    if [ "$a" = ENDPOINT ]; then args+=("http://127.0.0.1:$(cat "$work/port")"); else args+=("$a"); fi
  done
  local t0 t1
  t0=$(date +%s.%N)
  s3 "${args[@]}"
  t1=$(date +%s.%N)
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=
  echo "$(cat "$work/$name.bytes") $(echo "$t1 - $t0" | bc)" >"$work/$name"
}

counted rewrap-meta rewrap s3://rewrap-bench/meta --from "$old" -w "$new" --endpoint-url ENDPOINT
counted rewrap-instr rewrap s3://rewrap-bench/instr --from "$old" -w "$new" --endpoint-url ENDPOINT
counted get get s3://rewrap-bench/meta "$work/out.bin" -w "$new" --endpoint-url ENDPOINT
cmp "$work/in.bin" "$work/out.bin"
rm -f "$work/out.bin"
s3 get s3://rewrap-bench/instr "$work/out.bin" -w "$new" --endpoint-url "$HSM_KEYRING_S3_ENDPOINT"
cmp "$work/in.bin" "$work/out.bin"
for obj in meta instr; do
  if s3 get "s3://rewrap-bench/$obj" "$work/old.bin" -w "$old" --endpoint-url "$HSM_KEYRING_S3_ENDPOINT" 2>/dev/null; then
    echo "s3-rewrap bench: the old key still opens the rewrapped object $obj" >&2
    exit 1
  fi
done

echo
echo "S3 object of ${size_mib} MiB, server $HSM_KEYRING_S3_ENDPOINT, bytes counted by a proxy in front of it"
echo
echo "| operation | bytes client to server | bytes server to client | seconds | bytes moved / object size |"
echo "|---|---:|---:|---:|---:|"
for row in "rewrap-meta:s3 rewrap, metadata (CopyObject onto itself)" "rewrap-instr:s3 rewrap, instruction file" "get:s3 get of the same object"; do
  name=${row%%:*}
  read -r up down secs <"$work/$name"
  printf '| %s | %d | %d | %.2f | %.6f |\n' "${row#*:}" "$up" "$down" "$secs" \
    "$(echo "($up + $down) / ($size_mib * 1048576)" | bc -l)"
done
