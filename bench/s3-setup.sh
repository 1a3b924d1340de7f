# Shared set-up of bench/s3.sh and bench/s3-rewrap.sh; sourced from the
# repository's root, with $bin the release build of the command:
#
#   s3_setup TOKEN BUCKET KEY_LABEL...
#
# starts the S3-API server of ci/s3-server.sh unless HSM_KEYRING_S3_ENDPOINT
# is set (and stops it at exit), makes the work directory $work (removed at
# exit, after the caller's `on_exit` if it defines one), exports the server's
# dummy credentials, makes a SoftHSM token TOKEN with an AES-256 key per
# KEY_LABEL (`key_spec LABEL` gives its -w spec), and the bucket BUCKET
# unless BUCKET_EXISTS=1 (servers that refuse an unsigned CreateBucket, e.g.
# s3s-fs with keys, where a bucket is a directory made beforehand).

started_server=false
work=
s3_cleanup() {
  if declare -F on_exit >/dev/null; then on_exit; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
  if $started_server; then bash ci/s3-server.sh stop; fi
}

s3_setup() {
  local token_label=$1 bucket=$2
  shift 2
  if [ -z "${HSM_KEYRING_S3_ENDPOINT:-}" ]; then
    eval "$(bash ci/s3-server.sh start)"
    started_server=true
  fi
  work=$(mktemp -d -t "hsm-keyring-$token_label.XXXXXX")
  trap s3_cleanup EXIT
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  mkdir -p "$work/tokens"
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" >"$work/softhsm2.conf"
  export SOFTHSM2_CONF="$work/softhsm2.conf"
  softhsm2-util --init-token --free --label "$token_label" --pin 1234 --so-pin 5678 >/dev/null
  s3_module=/usr/lib/softhsm/libsofthsm2.so
  s3_token=$token_label
  local label
  for label in "$@"; do
    "$bin" --quiet --insecure-pin-in-uri keys generate --type aes-256 --label "$label" \
      --token "pkcs11:token=$token_label?module-path=$s3_module&pin-value=1234" >/dev/null
  done
  if [ "${BUCKET_EXISTS:-0}" != 1 ]; then
    python3 - "$HSM_KEYRING_S3_ENDPOINT" "$bucket" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/" + sys.argv[2], method="PUT"))
PY
  fi
}

# key_spec LABEL: the -w / --from spec of the token key LABEL.
key_spec() {
  echo "type=pkcs11,uri=\"pkcs11:token=$s3_token;object=$1;type=secret-key?module-path=$s3_module&pin-value=1234\""
}
