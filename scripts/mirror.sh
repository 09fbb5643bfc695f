#!/usr/bin/env bash
# Build (cached) and serve the offline Alpine-shaped mirror on 127.0.0.1 in the
# foreground until Ctrl-C, and print how to point a playbook or the demo at it.
# HANDMADE_MIRROR_PORT picks the port (default: a free one).
source "$(dirname "$0")/common.sh"
serve_test_mirror "${HANDMADE_MIRROR_PORT:-0}"
trap 'exit 0' INT TERM

cat <<INFO
Alpine-shaped test mirror (offline fixture, busybox-static inside, throwaway signing key)
  url:          $MIRROR_URL
  root:         $MIRROR_ROOT
  versions:     $MIRROR_VERSIONS
  arches:       $MIRROR_ARCHES
  key file:     $MIRROR_KEY_FILE
  fingerprint:  $MIRROR_FINGERPRINT

Point a playbook at it (handmade.containers.rootfs_fetch options):
  mirror: $MIRROR_URL
  verify_signature: true
  gpg_key: $MIRROR_KEY_FILE
  gpg_fingerprint: $MIRROR_FINGERPRINT

or the environment the tests and Molecule read:
  export HANDMADE_TEST_MIRROR=$MIRROR_URL
  export HANDMADE_TEST_GPG_KEY=$MIRROR_KEY_FILE
  export HANDMADE_TEST_GPG_FINGERPRINT=$MIRROR_FINGERPRINT

Serving until Ctrl-C.
INFO
wait "$MIRROR_PID"
