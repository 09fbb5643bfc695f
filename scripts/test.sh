#!/usr/bin/env bash
# The whole suite, in the order the layers depend on each other. Stops at
# the first failing layer and exits non-zero.
source "$(dirname "$0")/common.sh"
require_root test

run_layer() {
    log "test layer: $*"
    "$ROOT/scripts/$1.sh" "${@:2}"
}

run_layer sanity
run_layer units
run_layer lint
run_layer galaxy
run_layer integration
run_layer molecule default
run_layer molecule fleet
log "all test layers passed"
