#!/usr/bin/env bash
# S3 put and get of one object (1 GiB by default) through a local S3-API
# server (ci/s3-server.sh): `hsm-keyring s3` with an AES key in a SoftHSM
# token, against the same AWS SDK client, configuration and part size without
# encryption (examples/s3_plain.rs), measured side by side in this run, each
# under /usr/bin/time -v for its peak memory. Prints a markdown table.
#
#   bench/s3.sh [SIZE_MIB] [PART_BYTES]     (defaults 1024 and 8388608)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
part=${2:-8388608}
rounds=${ROUNDS:-2}

cargo build --quiet --release --features cli,s3 --bin hsm-keyring --example s3_plain
bin=target/release/hsm-keyring
plain=target/release/examples/s3_plain

started_server=false
if [ -z "${HSM_KEYRING_S3_ENDPOINT:-}" ]; then
  eval "$(bash ci/s3-server.sh start)"
  started_server=true
fi
work=$(mktemp -d -t hsm-keyring-s3-bench.XXXXXX)
cleanup() { rm -rf "$work"; if $started_server; then bash ci/s3-server.sh stop; fi; }
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label s3-bench --pin 1234 --so-pin 5678 >/dev/null
module=/usr/lib/softhsm/libsofthsm2.so
token="pkcs11:token=s3-bench?module-path=$module&pin-value=1234"
"$bin" --quiet --insecure-pin-in-uri keys generate --type aes-256 --label s3-bench-aes --token "$token" >/dev/null
spec="type=pkcs11,uri=\"pkcs11:token=s3-bench;object=s3-bench-aes;type=secret-key?module-path=$module&pin-value=1234\""

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/in.bin"
python3 - "$HSM_KEYRING_S3_ENDPOINT" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/bench", method="PUT"))
PY

# run NAME CMD...: wall seconds and max RSS (KiB) into $work/NAME.
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.$name" "$@"
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.$name")" >"$work/$name"
}

best() { sort -n "$work"/$1.* | head -1; }
for r in $(seq 1 "$rounds"); do
  run plain-put.$r "$plain" put "$work/in.bin" bench plain "$HSM_KEYRING_S3_ENDPOINT" "$part"
  run enc-put.$r "$bin" --quiet --insecure-pin-in-uri s3 put "$work/in.bin" s3://bench/enc -w "$spec" \
    --part-size "$part" --endpoint-url "$HSM_KEYRING_S3_ENDPOINT"
  rm -f "$work/out.bin"
  run plain-get.$r "$plain" get "$work/out.bin" bench plain "$HSM_KEYRING_S3_ENDPOINT" "$part"
  cmp "$work/in.bin" "$work/out.bin"
  rm -f "$work/out.bin"
  run enc-get.$r "$bin" --quiet --insecure-pin-in-uri s3 get s3://bench/enc "$work/out.bin" -w "$spec" \
    --endpoint-url "$HSM_KEYRING_S3_ENDPOINT"
  cmp "$work/in.bin" "$work/out.bin"
  rm -f "$work/out.bin"
done

echo
echo "S3 ${size_mib} MiB, part ${part} B, best of $rounds, server $HSM_KEYRING_S3_ENDPOINT"
echo
echo "| operation | plain s (MB/s) | encrypted, token AES key s (MB/s) | overhead | plain max RSS | encrypted max RSS |"
echo "|---|---|---|---|---|---|"
for op in put get; do
  read -r ps prss < <(best plain-$op)
  read -r es erss < <(best enc-$op)
  mb=$(echo "$size_mib * 1.048576" | bc -l)
  printf '| %s | %.2f (%.0f) | %.2f (%.0f) | %+.1f %% | %d MiB | %d MiB |\n' "$op" "$ps" "$(echo "$mb / $ps" | bc -l)" \
    "$es" "$(echo "$mb / $es" | bc -l)" "$(echo "($es / $ps - 1) * 100" | bc -l)" $((prss / 1024)) $((erss / 1024))
done
