#!/bin/sh
# Key rotation speed: `hsm-keyring rewrap` against `cp` and against decrypt
# plus encrypt, in one run, and a bulk rewrap of many small messages between
# two token keys behind 1 ms of simulated latency per PKCS#11 call.
#
#   bench/rewrap.sh [SIZE_MIB] [COUNT] [JOBS]   (defaults: 1024 MiB, 10000, 32)
#   BULK=0 bench/rewrap.sh                      (part 1 only)
#   ITEMS_ONLY=1 bench/rewrap.sh                (part 3 only)
#
# Part 1, one unsigned message (suite 0x0478) of SIZE_MIB, raw AES-256 keys:
#   cp                      cp IN OUT (page cache only, nothing made durable)
#   cp + sync               cp IN OUT && sync OUT
#   rewrap -o FILE          new header, body copied, fsync, rename
#   rewrap in place         rewrap -i F -o F: journal, header rewritten at
#                           offset 0, fdatasync (the body stays where it is)
#   decrypt + encrypt       decrypt -o FILE then encrypt -o FILE (what a
#                           rotation costs without envelope rewrapping)
# Part 2, COUNT copies of a message of 1 KiB under token key A of a fresh SoftHSM token,
# rewrapped in place to token key B with --jobs JOBS, every PKCS#11 call
# delayed by 1 ms by the fault module (`*=latency:1ms`): prints messages per
# minute. Needs SoftHSM and builds the fault module (ci/faults.sh).
# Part 3, ITEM_COUNT (default 10000) DynamoDB items of four attributes (suite
# 0x6700) under token key A, rewrapped to token key B by `item rewrap --jobs
# JOBS --checkpoint FILE` through the same fault module: prints items per minute.
set -eu
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
count=${2:-10000}
jobs=${3:-32}
cargo build --release --features cli --bin hsm-keyring >&2
repo=$PWD
bin=$repo/target/release/hsm-keyring
work=$(mktemp -d "${TMPDIR:-/tmp}/hsm-keyring-rewrap-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

if [ "${ITEMS_ONLY:-0}" != 1 ]; then
head -c 32 /dev/urandom > old.key
head -c 32 /dev/urandom > new.key
old="type=aes,path=old.key,namespace=bench,name=old"
new="type=aes,path=new.key,namespace=bench,name=new"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > in.bin
"$bin" encrypt -q -w "$old" --suite 0x0478 -i in.bin -o in.enc
rm in.bin
sync
t0=$(now); cp in.enc cp.out; t1=$(now)
cp_s=$(secs "$t0" "$t1"); rm cp.out
sync
t0=$(now); cp in.enc cp.out; sync cp.out; t1=$(now)
cps_s=$(secs "$t0" "$t1"); rm cp.out
t0=$(now); "$bin" rewrap -q --from "$old" -w "$new" -i in.enc -o rewrapped.enc; t1=$(now)
rw_s=$(secs "$t0" "$t1")
cp in.enc inplace.enc
sync
t0=$(now); "$bin" rewrap -q --from "$old" -w "$new" -i inplace.enc -o inplace.enc; t1=$(now)
ip_s=$(secs "$t0" "$t1")
"$bin" decrypt -q -w "$new" -i inplace.enc -o /dev/null
rm -f inplace.enc
t0=$(now)
"$bin" decrypt -q -w "$old" -i in.enc -o plain.bin
"$bin" encrypt -q -w "$new" --suite 0x0478 -i plain.bin -o reenc.enc
t1=$(now)
de_s=$(secs "$t0" "$t1")
rm -f plain.bin reenc.enc
"$bin" decrypt -q -w "$new" -i rewrapped.enc -o /dev/null
rm -f rewrapped.enc in.enc
echo "| ${size_mib} MiB message, suite 0x0478 | seconds | vs cp |"
echo "| --- | ---: | ---: |"
printf '| cp | %.2f | 1.00 |\n' "$cp_s"
printf '| cp + sync | %.2f | %.2f |\n' "$cps_s" "$(echo "$cps_s / $cp_s" | bc -l)"
printf '| rewrap -o FILE | %.2f | %.2f |\n' "$rw_s" "$(echo "$rw_s / $cp_s" | bc -l)"
printf '| rewrap in place (-i F -o F) | %.3f | %.3f |\n' "$ip_s" "$(echo "$ip_s / $cp_s" | bc -l)"
printf '| decrypt + encrypt | %.2f | %.2f |\n' "$de_s" "$(echo "$de_s / $cp_s" | bc -l)"
printf '\ndecrypt + encrypt / rewrap: %.1fx\n' "$(echo "$de_s / $rw_s" | bc -l)"
printf 'decrypt + encrypt / rewrap in place: %.0fx\n' "$(echo "$de_s / $ip_s" | bc -l)"
printf 'rewrap in place / cp: %.4f\n\n' "$(echo "$ip_s / $cp_s" | bc -l)"
fi

[ "${BULK:-1}" = 1 ] || exit 0
faults=$(cd "$repo" && ci/faults.sh)

# A token with two AES keys, for parts 2 and 3.
export HSM_KEYRING_DEV_DIR="$work/dev"
"$bin" dev-token init -q --dir "$work/dev" > /dev/null
"$bin" keys generate -q --type aes-256 --label rotated > /dev/null
keyA="type=pkcs11,uri=pkcs11:token=hsm-keyring-dev;object=dev-wrapping-key;type=secret-key"
keyB="type=pkcs11,uri=pkcs11:token=hsm-keyring-dev;object=rotated;type=secret-key"
# The same keys through the fault module, which forwards to SoftHSM.
q="?module-path=$faults&pin-source=file:$work/dev/user.pin"

if [ "${ITEMS_ONLY:-0}" != 1 ]; then
# Part 2: COUNT messages under key A.
mkdir tree
head -c 1024 /dev/urandom > small.bin
# One message copied COUNT times: each copy is still opened and wrapped on its own.
"$bin" encrypt -q -w "$keyA" --suite 0x0478 -i small.bin -o small.enc
i=0
while [ $i -lt "$count" ]; do
    cp small.enc "tree/m$i"
    i=$((i + 1))
done
t0=$(now)
SOFTHSM2_CONF=$work/dev/softhsm2.conf PKCS11_FAULTS_MODULE=/usr/lib/softhsm/libsofthsm2.so \
    PKCS11_FAULTS='*=latency:1ms' \
    "$bin" rewrap -q --dir tree --from "$keyA$q" -w "$keyB$q" --jobs "$jobs" --checkpoint ckpt
t1=$(now)
bulk_s=$(secs "$t0" "$t1")
done_n=$(grep -c '^rewrapped ' ckpt)
"$bin" decrypt -q -w "$keyB" -i tree/m0 -o /dev/null
printf '| bulk rewrap, %s messages of 1 KiB, --jobs %s, 1 ms per PKCS#11 call | %.2f s | %.0f per minute |\n' \
    "$done_n" "$jobs" "$bulk_s" "$(echo "$done_n * 60 / $bulk_s" | bc -l)"
fi

# Part 3: ITEM_COUNT items under key A, rewrapped to key B.
item_count=${ITEM_COUNT:-10000}
table="--table bench --partition-key pk --sort-key sk --action note=sign --suite 0x6700"
# Attributes in name order, as decrypt writes them, so that the result compares byte for byte.
awk -v n="$item_count" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"note\":{\"S\":\"n%d\"},\"pk\":{\"S\":\"user-%d\"},\"secret\":{\"S\":\"card %d\"},\"sk\":{\"N\":\"%d\"}}\n", i % 13, i, i, i }' \
    > items.jsonl
# shellcheck disable=SC2086
"$bin" item encrypt -q $table -w "$keyA" -i items.jsonl -o items.enc
t0=$(now)
# shellcheck disable=SC2086
SOFTHSM2_CONF=$work/dev/softhsm2.conf PKCS11_FAULTS_MODULE=/usr/lib/softhsm/libsofthsm2.so \
    PKCS11_FAULTS='*=latency:1ms' \
    "$bin" item rewrap -q $table --from "$keyA$q" -w "$keyB$q" -i items.enc -o items.new \
    --jobs "$jobs" --checkpoint items.ckpt
t1=$(now)
items_s=$(secs "$t0" "$t1")
items_n=$(wc -l < items.new)
[ ! -e items.ckpt ] && [ ! -e items.new.partial ]
# shellcheck disable=SC2086
"$bin" item decrypt -q $table -w "$keyB" -i items.new -o items.back
cmp -s items.back items.jsonl || { echo "item rewrap: the items do not decrypt to the originals" >&2; exit 1; }
printf '| item rewrap, %s items of 4 attributes, --jobs %s --checkpoint, 1 ms per PKCS#11 call | %.2f s | %.0f per minute |\n' \
    "$items_n" "$jobs" "$items_s" "$(echo "$items_n * 60 / $items_s" | bc -l)"
