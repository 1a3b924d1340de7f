#!/bin/sh
# `item encrypt` and `item decrypt` on one thread and on several: COUNT
# DynamoDB items of 10 string attributes (the partition key `id`, signed, and
# nine of 32 characters, encrypted), a raw AES-256 key file, suite 0x6700.
# Each of `--jobs 1` and `--jobs J` for J in JOBS runs ROUNDS times, rounds
# interleaved; prints every wall time (`/usr/bin/time -f %e`), the medians
# and the ratio of each median to the `--jobs 1` one.
#
#   bench/item-jobs.sh [COUNT] [ROUNDS] [JOBS]   (defaults: 20000, 3, 2)
set -eu
cd "$(dirname "$0")/.."
count=${1:-20000}
rounds=${2:-3}
jobs=${3:-2}
cargo build --release --features cli --bin hsm-keyring >&2
bin=$PWD/target/release/hsm-keyring
work=$(mktemp -d "${TMPDIR:-/tmp}/hsm-keyring-item-jobs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
head -c 32 /dev/urandom > aes.key
awk -v n="$count" 'BEGIN {
    v = "abcdefghijklmnopqrstuvwxyz012345"
    for (i = 0; i < n; i++) {
        line = "{\"id\":{\"S\":\"item-" i "\"}"
        for (a = 1; a <= 9; a++) line = line ",\"a" a "\":{\"S\":\"" v "\"}"
        print line "}"
    }
}' > items.jsonl
table="--table bench --partition-key id --suite 0x6700 -w type=aes,path=aes.key,namespace=bench,name=k"
# One untimed encryption gives decrypt its input (and warms the page cache).
# shellcheck disable=SC2086
"$bin" -q item encrypt $table -i items.jsonl -o enc.jsonl
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for verb in encrypt decrypt; do
    input=items.jsonl
    [ "$verb" = decrypt ] && input=enc.jsonl
    : > "times-$verb-1"
    for j in $jobs; do : > "times-$verb-$j"; done
    r=0
    while [ "$r" -lt "$rounds" ]; do
        for j in 1 $jobs; do
            # shellcheck disable=SC2086
            /usr/bin/time -f %e -a -o "times-$verb-$j" \
                "$bin" -q item "$verb" $table --jobs "$j" -i "$input" -o out.jsonl
        done
        r=$((r + 1))
    done
    one=$(median < "times-$verb-1")
    echo "item $verb, $count items, --jobs 1: $(tr '\n' ' ' < "times-$verb-1")s; median ${one}s"
    for j in $jobs; do
        m=$(median < "times-$verb-$j")
        echo "item $verb, $count items, --jobs $j: $(tr '\n' ' ' < "times-$verb-$j")s; median ${m}s; jobs $j / jobs 1 = $(echo "scale=2; $m / $one" | bc)"
    done
done
