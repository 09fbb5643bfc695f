#!/usr/bin/env bash
# Integration tests on the real kernel: real namespaces, cgroups, mounts and
# downloads over loopback HTTP. pytest, as root. Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
require_root integration
# gcc and libc6-dev (a static libc) build the chroot-escape program of
# test_ns_exec.py, which skips where there is no gcc: here there always is.
apt_install busybox-static gnupg runc bubblewrap cgroup-tools util-linux gcc libc6-dev
ensure_venv
ensure_collection_path
cd "$ROOT"
# -rfEs: every failure, error and skip with its reason in the summary, so a
# skip is seen and judged rather than counted.
exec python -m pytest -p no:cacheprovider -rfEs tests/integration "$@"
