#!/usr/bin/env bash
# S3 put and get of one object (1 GiB by default) through a local S3-API
# server (ci/s3-server.sh), three clients side by side in the same rounds:
#   plain   the AWS SDK client, configuration and part size of `hsm-keyring s3`
#           without encryption (examples/s3_plain.rs), the reference;
#   ours    `hsm-keyring s3` with an AES-256 key in a SoftHSM token;
#   python  the Python S3 Encryption Client (amazon-s3-encryption-client-python,
#           interop/s3/peer.py put|get, venv from ci/s3-peer.sh) with a raw
#           AES-256 key: its upload_file in parts of the same size, and its
#           get_object, which holds the whole object in memory.
# Each run is timed (wall) under /usr/bin/time -v (peak RSS). Rounds run the
# clients in a rotating order so load falls on all alike; the table gives the
# median of the rounds, our MB/s over the Python client's, our overhead over
# plain, and checks the goals (>= 3x Python, <= 10 % over plain, < 64 MiB).
#
#   [ROUNDS=N] bench/s3.sh [SIZE_MIB] [PART_BYTES]     (defaults 3, 1024, 8388608)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
part=${2:-8388608}
rounds=${ROUNDS:-3}

cargo build --quiet --release --features cli,s3 --bin hsm-keyring --example s3_plain
bin=target/release/hsm-keyring
plain=target/release/examples/s3_plain
python=${HSM_KEYRING_S3_PEER_PYTHON:-$(bash ci/s3-peer.sh)}

. bench/s3-setup.sh
s3_setup s3-bench bench s3-bench-aes
spec=$(key_spec s3-bench-aes)
py_key="aes:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/in.bin"

# run NAME CMD...: wall seconds and max RSS (KiB) into $work/NAME.
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.$name" "$@"
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$work/time.$name")" >"$work/$name"
}

# put|get CLIENT ROUND: one client's put or get of the object, timed by run.
put() {
  case $1 in
    plain) run "plain-put.$2" "$plain" put "$work/in.bin" bench plain "$HSM_KEYRING_S3_ENDPOINT" "$part" ;;
    ours) run "ours-put.$2" "$bin" --quiet --insecure-pin-in-uri s3 put "$work/in.bin" s3://bench/ours -w "$spec" \
      --part-size "$part" --endpoint-url "$HSM_KEYRING_S3_ENDPOINT" ;;
    python) run "python-put.$2" "$python" interop/s3/peer.py put --key "$py_key" \
      --endpoint "$HSM_KEYRING_S3_ENDPOINT" --bucket bench --object python --in "$work/in.bin" --part-size "$part" ;;
  esac
}
get() {
  rm -f "$work/out.bin"
  case $1 in
    plain) run "plain-get.$2" "$plain" get "$work/out.bin" bench plain "$HSM_KEYRING_S3_ENDPOINT" "$part" ;;
    ours) run "ours-get.$2" "$bin" --quiet --insecure-pin-in-uri s3 get s3://bench/ours "$work/out.bin" -w "$spec" \
      --endpoint-url "$HSM_KEYRING_S3_ENDPOINT" ;;
    python) run "python-get.$2" "$python" interop/s3/peer.py get --key "$py_key" \
      --endpoint "$HSM_KEYRING_S3_ENDPOINT" --bucket bench --object python --out "$work/out.bin" ;;
  esac
  cmp "$work/in.bin" "$work/out.bin"
  rm -f "$work/out.bin"
}

clients=(plain ours python)
for r in $(seq 1 "$rounds"); do
  # Round r starts with client r mod 3: each client goes first, second and last alike.
  k=$(((r - 1) % 3))
  order=("${clients[@]:k}" "${clients[@]:0:k}")
  for c in "${order[@]}"; do put "$c" "$r"; done
  for c in "${order[@]}"; do get "$c" "$r"; done
done

# median NAME FIELD: field 1 (seconds) or 2 (max RSS KiB), median over the
# rounds (the lower middle one for an even count).
median() { cut -d' ' -f"$2" "$work"/$1.* | sort -n | sed -n "$(((rounds + 1) / 2))p"; }
mb=$(echo "$size_mib * 1.048576" | bc -l)
rate() { echo "$mb / $1" | bc -l; }
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo "NOT met"; fi; }

echo
echo "S3 ${size_mib} MiB, part ${part} B, median of $rounds rounds, server $HSM_KEYRING_S3_ENDPOINT"
echo
echo "| operation | plain s (MB/s) | hsm-keyring, token AES key s (MB/s) | Python S3EC, raw AES key s (MB/s) | ours / Python | overhead over plain | plain max RSS | ours max RSS | Python max RSS |"
echo "|---|---|---|---|---|---|---|---|---|"
goals=""
for op in put get; do
  ps=$(median "plain-$op" 1); os=$(median "ours-$op" 1); ys=$(median "python-$op" 1)
  prss=$(median "plain-$op" 2); orss=$(median "ours-$op" 2); yrss=$(median "python-$op" 2)
  ratio=$(echo "$ys / $os" | bc -l); overhead=$(echo "($os / $ps - 1) * 100" | bc -l)
  printf '| %s | %.2f (%.0f) | %.2f (%.0f) | %.2f (%.0f) | %.2fx | %+.1f %% | %d MiB | %d MiB | %d MiB |\n' "$op" \
    "$ps" "$(rate "$ps")" "$os" "$(rate "$os")" "$ys" "$(rate "$ys")" "$ratio" "$overhead" \
    $((prss / 1024)) $((orss / 1024)) $((yrss / 1024))
  goals+="$op: ours/Python $(printf %.2f "$ratio")x (goal >= 3x: $(verdict "$ratio >= 3")); "
  goals+="overhead over plain $(printf %+.1f "$overhead") % (goal <= 10 %: $(verdict "$overhead <= 10")); "
  goals+="ours peak RSS $((orss / 1024)) MiB (goal < 64 MiB: $(verdict "$orss < 65536"))"$'\n'
done
echo
printf '%s' "$goals"
