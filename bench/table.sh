#!/usr/bin/env bash
# put_item / get_item through the encrypted table client against the plain
# client, on dynalite, with an AES key on a fresh SoftHSM token.
#   bash bench/table.sh            (ROUNDS=9, KEYS=50 items per round by default; SUITE=0x6700|0x6701, default 0x6701;
#                                 SHARED_KEYS=1: the clients take turns on the same primary keys;
#                                 CONCURRENCY=N requests in flight for the items/s part, default 16, 0 skips it;
#                                 THROUGHPUT_ROUNDS=N rounds of it, default ROUNDS)
# The example runs on the aws-lc backend, as the command does. BENCH_WRAP="perf record -g --"
# runs it under a profiler (or any other command prefix).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d -t hsm-keyring-table-bench.XXXXXX)
trap 'bash ci/dynalite.sh stop; rm -rf "$DIR"' EXIT
export HSM_KEYRING_DYNALITE_PIDFILE="$DIR/dynalite.pid"
HSM_KEYRING_DYNAMODB_ENDPOINT=$(bash ci/dynalite.sh start)
export HSM_KEYRING_DYNAMODB_ENDPOINT
mkdir -p "$DIR/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$DIR" >"$DIR/softhsm2.conf"
export SOFTHSM2_CONF="$DIR/softhsm2.conf"
softhsm2-util --init-token --free --label bench --so-pin 5678 --pin 1234 >/dev/null
printf 1234 >"$DIR/pin"
export HSM_KEYRING_TOKEN_URI="pkcs11:token=bench?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$DIR/pin"
${BENCH_WRAP:-} cargo run --quiet --release --features dynamodb-client,aws-lc --example table_bench
