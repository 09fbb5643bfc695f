#!/usr/bin/env bash
# Molecule scenario NAME (default or fleet) against the offline Alpine mirror,
# served on 127.0.0.1 for the duration of the run. A second argument runs one
# Molecule step instead of the whole test (converge, verify, destroy, ...);
# the rest go to that step: scripts/molecule.sh fleet converge -- --limit fleet-v1
source "$(dirname "$0")/common.sh"
scenario=${1:-default}
action=${2:-test}
require_root "molecule-$scenario"
apt_install busybox-static gnupg
case $scenario in
    fleet)
        # Skip, saying why, only where QEMU cannot run at all.
        if ! (apt_install qemu-system-x86 debootstrap cpio openssh-client kmod) ||
            ! qemu_problem=$("$ROOT/tests/vm/vm.sh" usable); then
            log "skipping the fleet scenario: ${qemu_problem:-QEMU could not be installed}"
            exit 0
        fi ;;
esac
ensure_venv
ensure_collection_path

# Build (cached) and serve the mirror; the scenario reads where from the
# environment. VMs reach the host's loopback as 10.0.2.2 through QEMU.
mirror_info=$(python "$ROOT/tests/fixtures/alpine_mirror.py" build --cache "$CACHE/mirror")
mirror_field() { python -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$mirror_info"; }
mkdir -p "$BUILD"
port_file=$BUILD/mirror-$scenario.port
rm -f "$port_file"
python "$ROOT/tests/fixtures/alpine_mirror.py" serve --root "$(mirror_field root)" --port-file "$port_file" &
mirror_pid=$!
trap 'kill "$mirror_pid" 2>/dev/null; wait "$mirror_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
[ -s "$port_file" ] || die "the test mirror did not start"
HANDMADE_TEST_MIRROR_PORT=$(cat "$port_file")
HANDMADE_TEST_MIRROR=http://127.0.0.1:$HANDMADE_TEST_MIRROR_PORT
HANDMADE_TEST_GPG_KEY=$(mirror_field key_file)
HANDMADE_TEST_GPG_FINGERPRINT=$(mirror_field fingerprint)
export HANDMADE_TEST_MIRROR HANDMADE_TEST_MIRROR_PORT HANDMADE_TEST_GPG_KEY HANDMADE_TEST_GPG_FINGERPRINT

cd "$ROOT"
molecule "$action" -s "$scenario" "${@:3}"
