#!/usr/bin/env bash
# ansible-test sanity over the whole collection, as Galaxy and the Ansible
# community run it: compile and import checks on every Python version
# ansible-core supports (3.8+ for modules, 3.11+ for controller code; one
# that pyenv does not provide fails the layer), plus pylint, pep8,
# validate-modules, ansible-doc, yamllint, shebang, ... on the controller's.
# Each test runs in its own virtualenv, cached between runs. Extra arguments
# go to ansible-test (e.g. --test pylint, or --python 3.8).
source "$(dirname "$0")/common.sh"
require_root sanity
apt_install git shellcheck
ensure_venv
link_pyenv_pythons
stage_collection_for_ansible_test
# Unless the caller names the versions to check, all of them must exist.
narrowed_to_some_pythons=false
for argument in "$@"; do
    case $argument in --python | --python=*) narrowed_to_some_pythons=true ;; esac
done
$narrowed_to_some_pythons || require_every_supported_python sanity

log "ansible-test sanity on Python $(ansible_test_python_versions)"
run_ansible_test sanity --venv --color no "$@"
