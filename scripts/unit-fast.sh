#!/usr/bin/env bash
# The inner loop: the unit tests under tests/unit (pure parsing and mapping,
# no kernel state) with plain pytest on the development virtualenv's Python,
# as any user, in seconds. tests/unit/conftest.py makes
# ansible_collections.handmade.containers resolve to this checkout. One
# Python only: scripts/units.sh is the layer make test runs (ansible-test on
# the oldest, the controller's and the newest Python). Extra arguments go to
# pytest: scripts/unit-fast.sh -k mountinfo -x
source "$(dirname "$0")/common.sh"
ensure_venv
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider tests/unit "$@"
