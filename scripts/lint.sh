#!/usr/bin/env bash
# ansible-lint with the production profile (configuration in .ansible-lint):
# the roles, playbooks, Molecule scenarios and the collection's metadata.
# Offline, with no collection dependencies to fetch. Extra arguments go to
# ansible-lint (e.g. a path, or -t to list the rules).
source "$(dirname "$0")/common.sh"
require_root lint
ensure_venv
ensure_collection_path
cd "$ROOT"
log "ansible-lint --offline (production profile)"
ansible-lint --offline "$@"
