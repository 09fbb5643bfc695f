#!/usr/bin/env bash
# The whole suite, in the order the layers depend on each other. Stops at
# the first failing layer and exits non-zero; prints how long each layer took.
source "$(dirname "$0")/common.sh"
require_root test

timings=()
run_layer() {
    local started=$SECONDS status=0 outcome
    log "test layer: $*"
    "$ROOT/scripts/$1.sh" "${@:2}" || status=$?
    outcome=$([ "$status" -eq 0 ] && echo passed || echo "FAILED (exit $status)")
    timings+=("$(printf '%-18s %5ds  %s' "$*" $((SECONDS - started)) "$outcome")")
    [ "$status" -eq 0 ] || exit "$status"
}
print_timings() {
    [ ${#timings[@]} -eq 0 ] || printf '  %s\n' "${timings[@]}" >&2
}
trap print_timings EXIT

run_layer sanity
run_layer units
run_layer lint
run_layer galaxy
run_layer integration
run_layer molecule default
run_layer molecule fleet
log "all test layers passed"
