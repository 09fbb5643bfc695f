#!/usr/bin/env bash
# Integration tests on the real kernel: real namespaces, cgroups, mounts and
# downloads over loopback HTTP. pytest, as root. Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
require_root integration
apt_install busybox-static gnupg runc bubblewrap cgroup-tools util-linux
ensure_venv
ensure_collection_path
cd "$ROOT"
exec python -m pytest -p no:cacheprovider tests/integration "$@"
