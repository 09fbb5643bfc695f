#!/usr/bin/env bash
# ansible-test sanity over the whole collection, as Galaxy and the Ansible
# community run it, with two ansible-cores: the one the development venv
# pins (requirements.txt), then the newest the package index has, on the
# Python it needs from pyenv (scripts/ansible_core.sh). Each checks compile
# and import on every Python version it supports (the pinned one: 3.8+ for
# modules, 3.11+ for controller code; one that pyenv does not provide fails
# the layer, except, for the newest, versions newer than any pyenv has here,
# which are named), plus pylint, pep8, validate-modules, ansible-doc,
# yamllint, shebang, ... on its controller's. Each test runs in its own
# virtualenv, cached between runs. Extra arguments go to ansible-test (e.g.
# --test pylint, or --python 3.8); HANDMADE_SANITY_CORES="pinned" or
# "newest" runs one of the two.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/ansible_core.sh"
require_root sanity
apt_install git shellcheck
ensure_venv
link_pyenv_pythons
stage_collection_for_ansible_test

read -ra cores <<<"${HANDMADE_SANITY_CORES:-pinned newest}"
for core in "${cores[@]}"; do
    case $core in pinned | newest) ;; *) die "HANDMADE_SANITY_CORES names '$core': use pinned and/or newest" ;; esac
done

# Unless the caller names the versions to check, all of them must exist.
requested_pythons=()
previous=
for argument in "$@"; do
    case $argument in
        --python=*) requested_pythons+=("${argument#--python=}") ;;
        *) [ "$previous" != --python ] || requested_pythons+=("$argument") ;;
    esac
    previous=$argument
done

ansible_core_version() {
    python -c 'from ansible.release import __version__; print(__version__)'
}

for core in "${cores[@]}"; do
    if [ "$core" = pinned ]; then
        [ ${#requested_pythons[@]} -gt 0 ] || require_every_supported_python sanity
        log "ansible-test sanity, ansible-core $(ansible_core_version) (pinned), on Python $(ansible_test_python_versions)"
        run_ansible_test sanity --venv --color no "$@"
        continue
    fi
    (
        ensure_newest_ansible_core_venv
        export PATH=$ANSIBLE_CORE_VENV/bin:$PATH
        supported=$(ansible_test_supported_python_versions)
        if [ ${#requested_pythons[@]} -gt 0 ]; then
            for version in "${requested_pythons[@]}"; do
                if [[ " $supported " != *" $version "* ]]; then
                    log "ansible-core $ANSIBLE_CORE_VERSION (newest) checks Python $supported, not $version: its sanity run is left out"
                    exit 0
                fi
            done
        else
            # A supported version newer than any pyenv has here cannot be
            # installed from the package registries: named, not hidden. An
            # older one missing fails, as for the pinned ansible-core.
            available=$(ansible_test_python_versions)
            newest_here=$(pyenv_python_versions)
            newest_here=${newest_here%% *}
            not_here=()
            for version in $supported; do
                [[ " $available " == *" $version "* ]] && continue
                [ "$(printf '%s\n' "$version" "$newest_here" | sort -V | tail -n1)" != "$newest_here" ] ||
                    die "sanity with ansible-core $ANSIBLE_CORE_VERSION checks Python $supported, and $version cannot be found here: install it with pyenv (pyenv install $version)"
                not_here+=("$version")
            done
            [ ${#not_here[@]} -eq 0 ] ||
                log "ansible-core $ANSIBLE_CORE_VERSION supports Python ${not_here[*]} too, newer than any pyenv has here ($newest_here): not checked"
        fi
        log "ansible-test sanity, ansible-core $ANSIBLE_CORE_VERSION (newest on the package index), on Python $(ansible_test_python_versions)"
        run_ansible_test sanity --venv --color no "$@"
    )
done
