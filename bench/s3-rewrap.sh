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

proxy_pid=
on_exit() { if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi; }
. bench/s3-setup.sh
s3_setup s3-rewrap rewrap-bench old-key new-key
old=$(key_spec old-key)
new=$(key_spec new-key)
s3() { "$bin" --quiet --insecure-pin-in-uri s3 "$@"; }

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/in.bin"
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
