#!/usr/bin/env bash
# ansible-test units: the pytest unit tests under tests/unit/ (parsing and
# mapping, with fakes), each in an ansible-test virtualenv per Python version:
# the oldest managed-host Python, the controller's, and the newest, so code
# that must run on 3.8 is proven there. HANDMADE_UNITS_PYTHONS="3.8 3.12"
# picks others. Extra arguments go to ansible-test (e.g. a test file path).
source "$(dirname "$0")/common.sh"
require_root units
apt_install git qemu-user-static
ensure_venv
link_pyenv_pythons
stage_collection_for_ansible_test

# A tests/unit without tests (a move that lost them, a wrong path) would
# prove nothing: that fails the layer.
if ! find "$ANSIBLE_TEST_STAGE/tests/unit" -name 'test_*.py' -print -quit 2>/dev/null | grep -q .; then
    die "no unit tests (test_*.py) under tests/unit: the units layer has nothing to prove"
fi

# By default the oldest managed-host Python and the newest controller Python
# ansible-core supports, not merely the oldest and newest found here: a
# missing interpreter fails the layer instead of shrinking what it proves.
available=$(ansible_test_python_versions)
controller=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
read -r oldest newest < <(supported_python_range)
requested=${HANDMADE_UNITS_PYTHONS:-$(printf '%s\n' "$oldest" "$controller" "$newest" | sort -uV | tr '\n' ' ')}

for version in $requested; do
    [[ " $available " == *" $version "* ]] || die "Python $version is not available for ansible-test units (found: $available); install it with pyenv (pyenv install $version) or choose others with HANDMADE_UNITS_PYTHONS"
    log "ansible-test units on Python $version"
    run_ansible_test units --venv --color no --python "$version" "$@"
done
