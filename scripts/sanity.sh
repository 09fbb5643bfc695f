#!/usr/bin/env bash
# ansible-test sanity over the whole collection, as Galaxy and the Ansible
# community run it: compile and import checks on every Python version pyenv
# provides (3.8+ for modules, 3.11+ for controller code), plus pylint, pep8,
# validate-modules, ansible-doc, yamllint, shebang, ... on the controller's.
# Each test runs in its own virtualenv, cached between runs. Extra arguments
# go to ansible-test (e.g. --test pylint, or --python 3.8).
source "$(dirname "$0")/common.sh"
require_root sanity
apt_install git shellcheck
ensure_venv
link_pyenv_pythons
stage_collection_for_ansible_test

log "ansible-test sanity on Python $(ansible_test_python_versions)"
run_ansible_test sanity --venv --color no "$@"
