#!/usr/bin/env bash
# Prints what the fleet scenario costs, step by step, measured in one run:
# the VM image build (cached, and cold with --cold), booting both VMs to SSH,
# the role converging both hosts in one play, and each host alone on a fresh
# VM. A fleet run should cost about its slowest host, not the sum of them.
#
#   tests/vm/timings.sh [--cold]
#
# Uses the fleet scenario's own steps (scripts/molecule.sh fleet STEP), so the
# figures include Molecule's start-up of a few seconds per step. Leaves no VM
# running.
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"
require_root molecule-fleet

declare -a rows

# timed LABEL COMMAND...: run COMMAND quietly, record its wall time under LABEL.
timed() {
    local label=$1 started elapsed
    shift
    log "$label"
    started=$(date +%s.%N)
    "$@" >"$BUILD/fleet-timings.log" 2>&1 || { tail -n 40 "$BUILD/fleet-timings.log" >&2; die "$label failed (log above)"; }
    elapsed=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$started" "$(date +%s.%N)")
    rows+=("$(printf '%-48s %8s s' "$label" "$elapsed")")
}

molecule_step() {
    "$ROOT/scripts/molecule.sh" fleet "$@"
}

mkdir -p "$BUILD"

if [ "${1:-}" = --cold ]; then
    cold_cache=$(mktemp -d "$BUILD/vm-cold-cache.XXXXXX")
    timed "VM image build, cold (debootstrap, kernel, cpio)" env HANDMADE_DEV_CACHE="$cold_cache" "$ROOT/tests/vm/build-image.sh"
    rm -rf "$cold_cache"
fi
"$ROOT/tests/vm/build-image.sh" >/dev/null
timed "VM image build, cached" "$ROOT/tests/vm/build-image.sh"

# Boot alone, with the VM helpers and no Molecule around them.
boot_vms() {
    "$ROOT/tests/vm/vm.sh" start timing-v1 v1 && "$ROOT/tests/vm/vm.sh" start timing-v2 v2 &&
        "$ROOT/tests/vm/vm.sh" wait timing-v1 timing-v2
}
export HANDMADE_VM_RUNTIME_DIR=$BUILD/vm-timings
trap '"$ROOT/tests/vm/vm.sh" stop timing-v1 timing-v2; molecule_step destroy >/dev/null 2>&1 || true' EXIT
timed "boot both VMs until SSH answers" boot_vms
"$ROOT/tests/vm/vm.sh" stop timing-v1 timing-v2
unset HANDMADE_VM_RUNTIME_DIR

molecule_step destroy >/dev/null 2>&1
timed "create: the same inside Molecule" molecule_step create
timed "converge: both hosts in one play" molecule_step converge
timed "converge again: both hosts (idempotent)" molecule_step converge

molecule_step destroy >/dev/null 2>&1
molecule_step create >/dev/null 2>&1
timed "converge: fleet-v1 alone (cgroup v1)" molecule_step converge -- --limit fleet-v1
timed "converge: fleet-v2 alone (cgroup v2)" molecule_step converge -- --limit fleet-v2
timed "destroy: stop both VMs" molecule_step destroy

printf '\n%s\n' "fleet scenario timings ($(nproc) host cores, accelerator ${HANDMADE_VM_ACCEL:-tcg}):"
printf '  %s\n' "${rows[@]}"
