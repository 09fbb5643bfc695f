#!/usr/bin/env bash
# Build (cached) and serve the offline Alpine-shaped mirror on 127.0.0.1 in the
# foreground until Ctrl-C, and print how to point a playbook or the demo at it.
# HANDMADE_MIRROR_PORT picks the port (default: a free one).
source "$(dirname "$0")/common.sh"
apt_install busybox-static gnupg python3
mkdir -p "$BUILD"

mirror_info=$("$HOST_PYTHON" "$ROOT/tests/fixtures/alpine_mirror.py" build --cache "$CACHE/mirror")
mirror_field() {
    "$HOST_PYTHON" -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(" ".join(v) if isinstance(v, list) else v)' "$1" <<<"$mirror_info"
}
port_file=$BUILD/mirror.port
rm -f "$port_file"
"$HOST_PYTHON" "$ROOT/tests/fixtures/alpine_mirror.py" serve --root "$(mirror_field root)" \
    --port-file "$port_file" --port "${HANDMADE_MIRROR_PORT:-0}" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -f "$port_file"' EXIT
trap 'exit 0' INT TERM
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
[ -s "$port_file" ] || die "the mirror server did not start"
url=http://127.0.0.1:$(cat "$port_file")
key_file=$(mirror_field key_file)
fingerprint=$(mirror_field fingerprint)

cat <<INFO
Alpine-shaped test mirror (offline fixture, busybox-static inside, throwaway signing key)
  url:          $url
  root:         $(mirror_field root)
  versions:     $(mirror_field versions)
  arches:       $(mirror_field arches)
  key file:     $key_file
  fingerprint:  $fingerprint

Point a playbook at it (handmade.containers.rootfs_fetch options):
  mirror: $url
  verify_signature: true
  gpg_key: $key_file
  gpg_fingerprint: $fingerprint

or the environment the tests and Molecule read:
  export HANDMADE_TEST_MIRROR=$url
  export HANDMADE_TEST_GPG_KEY=$key_file
  export HANDMADE_TEST_GPG_FINGERPRINT=$fingerprint

Serving until Ctrl-C.
INFO
wait "$server_pid"
