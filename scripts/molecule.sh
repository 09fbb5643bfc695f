#!/usr/bin/env bash
# Molecule scenario NAME (default or fleet) against the offline Alpine mirror,
# served on 127.0.0.1 for the duration of the run. A second argument runs one
# Molecule step instead of the whole test (converge, verify, destroy, ...);
# the rest go to that step: scripts/molecule.sh fleet converge -- --limit fleet-v1
source "$(dirname "$0")/common.sh"
scenario=${1:-default}
action=${2:-test}
require_root "molecule-$scenario"

# The fleet scenario is the only proof on pure cgroup v1 and pure cgroup v2
# kernels: a machine that cannot boot its VMs fails it, saying why, rather
# than passing without them.
require_qemu_for_the_fleet() {
    local problem
    if ! (apt_install qemu-system-x86 debootstrap cpio openssh-client kmod); then
        die "the fleet layer needs QEMU, and qemu-system-x86 debootstrap cpio openssh-client kmod could not be installed (apt-get above): install them, or run make test on a machine that can boot VMs"
    fi
    if ! problem=$("$ROOT/tests/vm/vm.sh" usable); then
        die "the fleet layer needs QEMU: $problem; fix that, or run make test on a machine that can boot VMs"
    fi
}
case $scenario in
    fleet) require_qemu_for_the_fleet ;;
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
