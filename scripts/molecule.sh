#!/usr/bin/env bash
# Molecule scenario NAME (default or fleet) against the offline Alpine mirror,
# served on 127.0.0.1 for the duration of the run. A second argument runs one
# Molecule step instead of the whole test (converge, verify, destroy, ...);
# the rest go to that step: scripts/molecule.sh fleet converge -- --limit fleet-v1
source "$(dirname "$0")/common.sh"
scenario=${1:-default}
action=${2:-test}
require_root "molecule-$scenario"
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

# The scenario reads where the mirror is from the environment. VMs reach the
# host's loopback as 10.0.2.2 through QEMU.
serve_test_mirror
export HANDMADE_TEST_MIRROR=$MIRROR_URL HANDMADE_TEST_MIRROR_PORT=$MIRROR_PORT
export HANDMADE_TEST_GPG_KEY=$MIRROR_KEY_FILE HANDMADE_TEST_GPG_FINGERPRINT=$MIRROR_FINGERPRINT

cd "$ROOT"
molecule "$action" -s "$scenario" "${@:3}"
