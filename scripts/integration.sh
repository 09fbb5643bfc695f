#!/usr/bin/env bash
# Integration tests on the real kernel: real namespaces, cgroups, mounts and
# downloads over loopback HTTP. pytest, as root. Extra arguments go to pytest.
#
# The suite runs once per managed-host Python: the modules (run directly, or
# through ansible with it as ansible_python_interpreter) and the helpers that
# stand in for them run on the system Python and then on the oldest Python
# the collection claims for managed hosts, 3.8 from pyenv.
# HANDMADE_INTEGRATION_HOST_PYTHONS="/usr/bin/python3 3.8" names others (a
# path, or X.Y for pyenv's). Without arguments, the passes after the first
# leave out the files whose modules run on the controller's Python whatever
# HOST_PYTHON says: they would only repeat the first pass.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/ansible_core.sh"
require_root integration
# gcc and libc6-dev (a static libc) build the chroot-escape program of
# test_ns_exec.py, which skips where there is no gcc: here there always is.
# keyutils (keyctl): test_demo.py runs the demo, which puts a key in the host's keyring.
apt_install busybox-static gnupg runc bubblewrap cgroup-tools util-linux gcc libc6-dev keyutils
ensure_venv
ensure_collection_path
cd "$ROOT"

# The demo's implicit localhost runs modules with ansible-playbook's own
# Python; test_exec_sealed runs them with a copy of pytest's.
same_on_every_host_python=(tests/integration/test_demo.py tests/integration/test_exec_sealed.py)

read -ra host_pythons <<<"${HANDMADE_INTEGRATION_HOST_PYTHONS:-$HOST_PYTHON 3.8}"
passes=()
for host_python in "${host_pythons[@]}"; do
    [[ $host_python == */* ]] || host_python=$(pyenv_python "$host_python")
    "$host_python" -c '' 2>/dev/null || die "the managed-host Python $host_python does not run"
    version=$("$host_python" -c 'import platform; print(platform.python_version())')
    left_out=()
    if [ ${#passes[@]} -gt 0 ] && [ $# -eq 0 ]; then
        for test_file in "${same_on_every_host_python[@]}"; do left_out+=("--ignore=$test_file"); done
    fi
    log "integration tests, modules on Python $version ($host_python)${left_out[*]:+, without ${same_on_every_host_python[*]}}"
    started=$SECONDS
    # -rfEs: every failure, error and skip with its reason in the summary, so a
    # skip is seen and judged rather than counted.
    HOST_PYTHON=$host_python ANSIBLE_PYTHON_INTERPRETER=$host_python \
        python -m pytest -p no:cacheprovider -rfEs tests/integration "${left_out[@]}" "$@"
    passes+=("$(printf 'modules on Python %-7s %4ds' "$version" $((SECONDS - started)))")
done
log "integration tests passed:"
printf '  %s\n' "${passes[@]}" >&2
