#!/usr/bin/env bash
# An S3-API server for the tests: moto's server (pinned, from PyPI, in a venv
# under ~/.cache) on 127.0.0.1 and a free port.
#
#   ci/s3-server.sh start   install if needed, start, print `export HSM_KEYRING_S3_ENDPOINT=http://127.0.0.1:PORT`
#   ci/s3-server.sh stop    stop the server started by `start`
#
# Use: eval "$(ci/s3-server.sh start)"; ...; ci/s3-server.sh stop
# It keeps user metadata, and does multipart uploads and CopyObject.
set -euo pipefail

MOTO_VERSION=5.2.5
VENV=${HSM_KEYRING_S3_VENV:-$HOME/.cache/hsm-keyring/moto-$MOTO_VERSION}
STATE=${HSM_KEYRING_S3_STATE:-${TMPDIR:-/tmp}/hsm-keyring-s3-server-$(id -u)}

install() {
    if [ -x "$VENV/bin/moto_server" ]; then return; fi
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
}

start() {
    install
    mkdir -p "$STATE"
    if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
        echo "export HSM_KEYRING_S3_ENDPOINT=$(cat "$STATE/endpoint")"
        return
    fi
    local port
    port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$STATE/log" 2>&1 &
    echo $! >"$STATE/pid"
    local endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$endpoint/moto-api/')" 2>/dev/null; then
            echo "$endpoint" >"$STATE/endpoint"
            echo "export HSM_KEYRING_S3_ENDPOINT=$endpoint"
            return
        fi
        if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then break; fi
        sleep 0.2
    done
    echo "s3-server: moto did not start; its log:" >&2
    cat "$STATE/log" >&2
    stop
    exit 1
}

stop() {
    if [ -f "$STATE/pid" ]; then
        kill "$(cat "$STATE/pid")" 2>/dev/null || true
        rm -f "$STATE/pid" "$STATE/endpoint"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
