#!/usr/bin/env bash
# The Python peer of the S3 interop tests: a virtual environment under
# target/s3-peer-venv (never committed) with the pinned
# amazon-s3-encryption-client-python. Prints the interpreter's path, which
# tests/s3_peer.rs takes from HSM_KEYRING_S3_PEER_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

version="4.0.0"
venv="${HSM_KEYRING_S3_PEER_VENV:-$PWD/target/s3-peer-venv}"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('amazon-s3-encryption-client-python') != '$version')" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "amazon-s3-encryption-client-python==$version" >&2
fi
echo "$venv/bin/python"
