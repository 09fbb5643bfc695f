#!/usr/bin/env bash
# Runs the collection's kernel integration tests inside running fleet VMs, so
# that the cgroup and namespace code is proven on a pure cgroup v1 kernel and
# a pure cgroup v2 kernel, not only on the hybrid host.
#
#   tests/vm/run-integration.sh NAME... [-- PYTEST-ARGS...]
#
# Copies the working tree (tracked and new files, not ignored ones) and the
# controller's ansible package (the modules import ansible.module_utils) into
# each VM, then runs pytest there as root, all VMs at once. Without
# PYTEST-ARGS it runs every kernel-facing integration test file listed below
# (each must exist): all but rootfs_fetch's, which needs no second kernel. Each
# VM's output goes to $RUNTIME_DIR/NAME/integration.log and its exit status
# to integration.rc; this script fails when any VM's run failed.
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"

RUNTIME_DIR=${HANDMADE_VM_RUNTIME_DIR:-$BUILD/vm}
# Inside the VM: a collections path that holds the checkout under its FQCN.
VM_TREE=/opt/handmade-containers
VM_CHECKOUT=$VM_TREE/ansible_collections/handmade/containers
VM_PYTHONPATH=$VM_TREE/lib

names=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    names+=("$1")
    shift
done
[ "${1:-}" = -- ] && shift
pytest_args=("$@")
if [ ${#pytest_args[@]} -eq 0 ]; then
    # Every kernel suite, always: one that went missing (a rename, a move)
    # fails the run here instead of leaving a VM with less to prove.
    pytest_args=(tests/integration/test_cgroup.py tests/integration/test_ns_exec.py
        tests/integration/test_devices.py tests/integration/test_seccomp.py tests/integration/test_isolation.py
        tests/integration/test_exec_sealed.py tests/integration/test_hostile_rootfs.py
        tests/integration/test_state_files.py tests/integration/test_output.py tests/integration/test_logs.py
        tests/integration/test_bad_input.py)
    for test_file in "${pytest_args[@]}"; do
        [ -f "$ROOT/$test_file" ] || die "$test_file is missing: the fleet runs the kernel-facing integration tests (cgroup, ns_exec, devices, seccomp, isolation, exec_sealed, hostile_rootfs, state_files, output, logs, bad_input) in each VM"
    done
fi
[ ${#names[@]} -gt 0 ] || die "usage: $0 NAME... [-- PYTEST-ARGS...]"

site_packages=$(python3 -c 'import ansible, os; print(os.path.dirname(os.path.dirname(ansible.__file__)))' 2>/dev/null) ||
    die "the controller's ansible package is not importable: run inside the development venv (scripts/common.sh ensure_venv)"
# ansible-core and what its command line needs, with their metadata (ansible
# checks its requirements' versions); cryptography only serves vault, which
# the tests do not use.
ansible_packages=(ansible jinja2 markupsafe yaml _yaml packaging resolvelib)

# One tar stream for both parts: the checkout under the collection's path and
# ansible-core on the VM's PYTHONPATH. The byte-compiled files come along
# (the VM has the same Python minor version), which saves the VM's slow CPU
# from compiling ansible again.
payload() {
    (cd "$ROOT" && git ls-files -z -co --exclude-standard |
        tar --null --ignore-failed-read -T - -c --transform "s,^,${VM_CHECKOUT#/}/," -f -)
    (cd "$site_packages" && shopt -s nocaseglob &&
        tar -c --transform "s,^,${VM_PYTHONPATH#/}/," -f - "${ansible_packages[@]}" ansible_core-*.dist-info \
            jinja2-*.dist-info markupsafe-*.dist-info pyyaml-*.dist-info packaging-*.dist-info resolvelib-*.dist-info)
}

# The tests call the ansible command line too (real ad-hoc and playbook runs on the VM).
launcher() {
    printf '#!/usr/bin/python3\nimport sys\nfrom ansible.cli.%s import main\nsys.exit(main())\n' "$1"
}

run_in_vm() {
    local name=$1 log=$2 remote status=0
    # shellcheck disable=SC2016 # expanded in the VM
    remote=$(printf 'set -e; rm -rf %q; mkdir -p %q; cd / && tar -xif -; cd %q; ' "$VM_TREE" "$VM_TREE" "$VM_CHECKOUT")
    remote+=$(printf 'mkdir -p %q/bin; ' "$VM_TREE")
    for command in ansible:adhoc ansible-playbook:playbook; do
        remote+=$(printf 'printf %%s %q >%q/bin/%q; chmod 755 %q/bin/%q; ' "$(launcher "${command#*:}")" \
            "$VM_TREE" "${command%%:*}" "$VM_TREE" "${command%%:*}")
    done
    # HANDMADE_RESTART_DEADLINE: an emulated CPU starts an interpreter about 30 times slower (test_supervisor.py,
    # run by hand: tests/vm/run-integration.sh NAME -- tests/integration/test_supervisor.py).
    # shellcheck disable=SC2016 # $PATH is the VM's
    remote+=$(printf 'export PATH=%q/bin:$PATH PYTHONPATH=%q ANSIBLE_COLLECTIONS_PATH=%q HOST_PYTHON=/usr/bin/python3 HANDMADE_RESTART_DEADLINE=30; ' \
        "$VM_TREE" "$VM_PYTHONPATH" "$VM_TREE")
    remote+="exec python3 -m pytest -p no:cacheprovider -o addopts= -rfEs $(printf '%q ' "${pytest_args[@]}")"
    payload | "$ROOT/tests/vm/vm.sh" ssh "$name" "$remote" >"$log" 2>&1 || status=$?
    echo "$status" >"$RUNTIME_DIR/$name/integration.rc"
    return "$status"
}

declare -A pids
for name in "${names[@]}"; do
    [ -f "$RUNTIME_DIR/$name/port" ] || die "VM $name is not running (tests/vm/vm.sh start $name v1|v2)"
    rm -f "$RUNTIME_DIR/$name/integration.rc"
    log "integration tests in $name: ${pytest_args[*]}"
    run_in_vm "$name" "$RUNTIME_DIR/$name/integration.log" &
    pids[$name]=$!
done

failed=()
for name in "${names[@]}"; do
    if wait "${pids[$name]}"; then
        log "$name ($(cat "$RUNTIME_DIR/$name/layout")): $(tail -n 1 "$RUNTIME_DIR/$name/integration.log")"
    else
        failed+=("$name")
        log "$name ($(cat "$RUNTIME_DIR/$name/layout")) FAILED, last lines of $RUNTIME_DIR/$name/integration.log:"
        tail -n 40 "$RUNTIME_DIR/$name/integration.log" >&2
    fi
done
[ ${#failed[@]} -eq 0 ] || die "integration tests failed in: ${failed[*]}"
