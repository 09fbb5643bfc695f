#!/usr/bin/env bash
# Checks of the test harness itself, in seconds, before the layers that take
# an hour: a layer that cannot run must fail and say why, a skip requested
# with HANDMADE_TEST_SKIP must be reported as such and refused in CI, the
# integration tests must refuse to run without root, and plain pytest must
# import the collection from this checkout. No VM is booted and no layer
# really runs: each check stops its command where the rule applies.
source "$(dirname "$0")/common.sh"
require_root harness
ensure_venv

# The checks below start scripts/test.sh and .ci/run, whose first layer is
# this script: a nested harness refuses to start, so that a rule broken in
# test.sh can never turn into a recursive run of the whole suite.
[ -z "${HANDMADE_HARNESS_RUNNING:-}" ] || die "the harness checks do not run inside their own checks"
export HANDMADE_HARNESS_RUNNING=1
# Every layer, so that a nested test.sh or .ci/run that does not refuse what
# it should runs no layer at all and simply exits 0 (and the check fails).
ALL_LAYERS=$(sed -n 's/^LAYERS=(\(.*\))$/\1/p' "$ROOT/scripts/test.sh")
[[ $ALL_LAYERS == *harness* ]] || die "cannot read the LAYERS=(...) line of scripts/test.sh"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/handmade-harness.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
checks_failed=()

# expect_failure NAME PATTERN COMMAND...: COMMAND must exit non-zero and
# print PATTERN (an extended regular expression), stdout and stderr together.
expect_failure() {
    local name=$1 pattern=$2 status=0
    shift 2
    timeout 300 "$@" >"$scratch/$name.log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
        report_broken_rule "$name" "exited 0"
    elif ! grep -Eq -- "$pattern" "$scratch/$name.log"; then
        report_broken_rule "$name" "exited $status without saying /$pattern/"
    else
        echo "ok: $name (exit $status: $(grep -Em1 -- "$pattern" "$scratch/$name.log" | cut -c1-160))"
    fi
}

report_broken_rule() {
    echo "FAILED: $1: $2; its output:" >&2
    tail -n 20 "$scratch/$1.log" >&2
    checks_failed+=("$1")
}

fleet_layer_fails_when_qemu_lacks_the_accelerator() {
    expect_failure "${FUNCNAME[0]}" 'the fleet layer needs QEMU: .*no-such-accelerator' \
        env HANDMADE_VM_ACCEL=no-such-accelerator "$ROOT/scripts/molecule.sh" fleet
}

fleet_layer_fails_when_qemu_does_not_run() {
    mkdir -p "$scratch/broken-qemu"
    printf '#!/bin/sh\necho "qemu-system-x86_64: stand-in that cannot run" >&2\nexit 1\n' \
        >"$scratch/broken-qemu/qemu-system-x86_64"
    chmod +x "$scratch/broken-qemu/qemu-system-x86_64"
    expect_failure "${FUNCNAME[0]}" 'the fleet layer needs QEMU: .*does not run' \
        env PATH="$scratch/broken-qemu:$PATH" "$ROOT/scripts/molecule.sh" fleet
}

ci_refuses_skipping_a_layer() {
    expect_failure "${FUNCNAME[0]}" 'refused in CI' \
        env CI=true HANDMADE_TEST_SKIP="$ALL_LAYERS" "$ROOT/scripts/test.sh"
    expect_failure "${FUNCNAME[0]}_in_ci_run" 'refused in CI' \
        env HANDMADE_TEST_SKIP="$ALL_LAYERS" "$ROOT/.ci/run"
}

skip_of_an_unknown_layer_is_refused() {
    expect_failure "${FUNCNAME[0]}" "'no-such-layer', which is not a layer" \
        env -u CI HANDMADE_TEST_SKIP="$ALL_LAYERS no-such-layer" "$ROOT/scripts/test.sh"
}

# Every layer skipped by request: nothing runs, each is listed as SKIPPED,
# none as passed, and the run says it is not a full one.
requested_skips_are_reported_as_skipped_never_passed() {
    local name=${FUNCNAME[0]} layers=$ALL_LAYERS status=0
    env -u CI HANDMADE_TEST_SKIP="$layers" timeout 60 "$ROOT/scripts/test.sh" >"$scratch/$name.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        report_broken_rule "$name" "exited $status"
    elif grep -Eq '^  [a-z-]+ .* passed$' "$scratch/$name.log"; then
        report_broken_rule "$name" "a skipped layer is listed as passed"
    elif [ "$(grep -c 'SKIPPED by request (HANDMADE_TEST_SKIP), not run' "$scratch/$name.log")" -ne "$(wc -w <<<"$layers")" ]; then
        report_broken_rule "$name" "not every layer ($layers) is listed as SKIPPED by request"
    elif ! grep -q 'NOT A FULL RUN' "$scratch/$name.log"; then
        report_broken_rule "$name" "the run does not say it is not a full one"
    else
        echo "ok: $name"
    fi
}

# The root check of tests/integration/conftest.py, seen by a process whose
# effective uid looks like a user's; pytest stops before collecting a test.
integration_tests_fail_without_root() {
    expect_failure "${FUNCNAME[0]}" 'need root.*sudo make integration' \
        python -c 'import os, sys; os.geteuid = lambda: 1000; import pytest; sys.exit(pytest.main(sys.argv[1:]))' \
        -p no:cacheprovider -q "$ROOT/tests/integration"
}

# tests/unit/conftest.py on its own, outside ansible-test and with no
# collections path set: afterwards the collection's modules must import from
# this checkout (whatever the unit tests themselves then find there).
unit_test_plumbing_resolves_the_checkout() {
    local name=${FUNCNAME[0]} status=0 found
    found=$(cd / && env -u ANSIBLE_COLLECTIONS_PATH -u PYTHONPATH python - "$ROOT/tests/unit/conftest.py" 2>"$scratch/$name.log" <<'PY'
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("unit_conftest", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
utils = importlib.util.find_spec("ansible_collections.handmade.containers.plugins.module_utils")
print(os.path.realpath(list(utils.submodule_search_locations)[0]))
PY
    ) || status=$?
    if [ "$status" -ne 0 ] || [ "$found" != "$(realpath "$ROOT/plugins/module_utils")" ]; then
        report_broken_rule "$name" "after tests/unit/conftest.py, module_utils import from '$found' (exit $status), not $ROOT/plugins/module_utils"
    else
        echo "ok: $name ($found)"
    fi
}

log "checks of the test harness"
fleet_layer_fails_when_qemu_lacks_the_accelerator
fleet_layer_fails_when_qemu_does_not_run
ci_refuses_skipping_a_layer
skip_of_an_unknown_layer_is_refused
requested_skips_are_reported_as_skipped_never_passed
integration_tests_fail_without_root
unit_test_plumbing_resolves_the_checkout
[ ${#checks_failed[@]} -eq 0 ] || die "the test harness breaks its own rules: ${checks_failed[*]}"
log "harness: every rule holds"
