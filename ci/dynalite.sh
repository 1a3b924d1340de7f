#!/usr/bin/env bash
# A local DynamoDB-API server (dynalite, in memory) for the table client's
# tests, example and benchmark.
#
#   ci/dynalite.sh start   install dynalite if needed, start it on a free
#                          port of 127.0.0.1, print the endpoint
#                          (export HSM_KEYRING_DYNAMODB_ENDPOINT=$(ci/dynalite.sh start))
#   ci/dynalite.sh stop    stop the server started by `start`
#
# dynalite is installed with npm into ~/.cache/hsm-keyring/dynalite (never
# into the repository).
set -euo pipefail

VERSION=3.2.2
DIR="${HSM_KEYRING_DYNALITE_DIR:-$HOME/.cache/hsm-keyring/dynalite}"
PIDFILE="${HSM_KEYRING_DYNALITE_PIDFILE:-$DIR/server.pid}"

install() {
    if [ ! -f "$DIR/node_modules/dynalite/cli.js" ] ||
        ! grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/dynalite/package.json"; then
        mkdir -p "$DIR"
        (cd "$DIR" && npm install --no-audit --no-fund --silent "dynalite@$VERSION" >&2)
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
start)
    install
    port=$(free_port)
    node "$DIR/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$port" >"$DIR/server.log" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 50); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
            echo "http://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.1
    done
    echo "dynalite did not start; see $DIR/server.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$PIDFILE" ]; then
        kill "$(cat "$PIDFILE")" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
