#!/bin/sh
# The command at copy speed: `cp`, `hsm-keyring encrypt` and `hsm-keyring
# decrypt` on the same file, side by side in one run, with a raw AES-256 key.
#
#   bench/cli.sh [SIZE_MIB] [ROUNDS]      (defaults: 256 MiB, 5 rounds)
#
# Every round runs each row once, one after the other, so load on a shared
# machine falls on all of them alike; the median of the rounds is printed,
# with its ratio to the median of `cp`. Rows:
#
#   cp                    cp IN OUT (page cache only, nothing made durable)
#   cp + sync             cp IN OUT && sync OUT (the copy made durable)
#   encrypt -o FILE       temporary file, fsync, rename (what the command does)
#   encrypt > FILE        stdout into a file: no fsync, no rename
#   decrypt -o FILE / > FILE   the same for decryption
#
# for suite 0x0478 (committing, unsigned) and the default 0x0578 (committing,
# signed with ECDSA P-384, which hashes the whole message with SHA-384).
# The "-o FILE" minus "> FILE" difference is what the fsync and the rename
# cost. With BENCH_ESDK=1 it also runs the bench crate's aws-esdk reference
# (in process, one-shot, on a plaintext of the same size) and prints how
# many times faster the command is. With BASELINE=PATH (another build of
# hsm-keyring, e.g. an older one) its encrypt/decrypt -o rows are measured in
# the same rounds, as base_*.
set -eu
cd "$(dirname "$0")/.."
size_mib=${1:-256}
rounds=${2:-5}
cargo build --release --features cli --bin hsm-keyring >&2
repo=$PWD
bin=$repo/target/release/hsm-keyring
work=$(mktemp -d "${TMPDIR:-/tmp}/hsm-keyring-cli-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
head -c 32 /dev/urandom > key.bin
head -c $((size_mib * 1024 * 1024)) /dev/urandom > in.bin
spec="type=aes,path=key.bin,namespace=bench,name=aes-256"
for suite in 0x0478 0x0578; do
    "$bin" encrypt -q -w "$spec" --suite "$suite" -i in.bin -o "in.$suite.enc"
done

# Seconds taken by the command given as arguments.
elapsed() {
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

rows="cp|cp_sync"
for suite in 0x0478 0x0578; do
    rows="$rows|enc_o_$suite|enc_stdout_$suite|dec_o_$suite|dec_stdout_$suite"
    [ -z "${BASELINE:-}" ] || rows="$rows|base_enc_o_$suite|base_dec_o_$suite"
done

run_row() {
    case $1 in
        cp) cp in.bin out ;;
        cp_sync) cp in.bin out && sync out ;;
        enc_o_*) "$bin" encrypt -q -w "$spec" --suite "${1#enc_o_}" -i in.bin -o out ;;
        enc_stdout_*) "$bin" encrypt -q -w "$spec" --suite "${1#enc_stdout_}" -i in.bin > out ;;
        dec_o_*) "$bin" decrypt -q -w "$spec" -i "in.${1#dec_o_}.enc" -o out ;;
        dec_stdout_*) "$bin" decrypt -q -w "$spec" --no-buffer -i "in.${1#dec_stdout_}.enc" > out ;;
        base_enc_o_*) "$BASELINE" encrypt -q -w "$spec" --suite "${1#base_enc_o_}" -i in.bin -o out ;;
        base_dec_o_*) "$BASELINE" decrypt -q -w "$spec" -i "in.${1#base_dec_o_}.enc" -o out ;;
    esac
}

i=0
while [ "$i" -lt "$rounds" ]; do
    for row in $(echo "$rows" | tr '|' ' '); do
        rm -f out
        t=$(elapsed run_row "$row")
        echo "$t" >> "t.$row"
    done
    i=$((i + 1))
done
cmp in.bin out 2>/dev/null || true

median() {
    sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cp_median=$(median t.cp)
echo "$size_mib MiB, $rounds rounds, median seconds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| row | median s | MB/s | x cp |"
echo "|---|---|---|---|"
for row in $(echo "$rows" | tr '|' ' '); do
    m=$(median "t.$row")
    echo "$row $m $cp_median $size_mib" | awk '{ printf "| %s | %.3f | %.0f | %.2fx |\n", $1, $2, $4 * 1.048576 / $2, $2 / $3 }'
done

if [ "${BENCH_ESDK:-0}" = 1 ]; then
    bench=$repo/target/release/bench
    [ -x "$bench" ] || cargo build --release -p bench --features aws-lc >&2
    echo
    echo "| aws-esdk in process (one-shot) | encrypt MB/s | decrypt MB/s |"
    echo "|---|---|---|"
    for suite in 1144 1400; do
        json="{\"subject\":\"Esdk\",\"suite\":$suite,\"size\":$((size_mib * 1048576)),\"threads\":1,\"latency_ms\":0,\"mode\":\"Large\",\"round_secs\":0.3}"
        # aws-esdk's one-shot calls overflow the default 8 MiB stack at 256 MiB.
        (ulimit -s unlimited 2>/dev/null || true; "$bench" --case "$json") | sed 's/.*"encrypt":{"per_sec":\([0-9.e+-]*\).*"decrypt":{"per_sec":\([0-9.e+-]*\).*/\1 \2/' |
            awk -v s="$suite" -v mib="$size_mib" '{ printf "| 0x%04X | %.0f | %.0f |\n", s, $1 * mib * 1.048576, $2 * mib * 1.048576 }'
    done
fi
