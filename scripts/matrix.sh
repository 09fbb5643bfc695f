#!/usr/bin/env bash
# The role at both ends of the ansible-core range the collection claims, run
# as a user runs it: ansible-playbook playbooks/site.yml on this machine
# against the offline Alpine mirror, site.yml again, then
# playbooks/teardown.yml, each checked from the host.
#
#   oldest  the series meta/runtime.yml's requires_ansible names, on its
#           oldest controller Python, managing the host through the oldest
#           Python the collection claims for managed hosts (3.8, from pyenv)
#   newest  the newest ansible-core on the package index, on the newest
#           Python from pyenv it installs on, managing the host through the
#           system Python (/usr/bin/python3)
#
# (scripts/ansible_core.sh says how each is chosen and cached.) Checked: the
# first run changes something and fails nothing, the second changes nothing,
# the container's PID 1 runs from its rootfs in the role's cgroup in new
# namespaces, and after teardown its state, cgroups, rootfs and process are
# gone. Arguments name the ends to run (default: oldest newest).
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/ansible_core.sh"
require_root matrix
apt_install busybox-static gnupg python3
ensure_collection_path

# The oldest managed-host Python the collection claims (README, docs/support.md).
OLDEST_HOST_PYTHON=${HANDMADE_OLDEST_HOST_PYTHON:-3.8}
NAME=test-matrix
# Short: gpg's agent socket must fit in 108 bytes below the download cache.
SCRATCH=/var/tmp/handmade-matrix
STATE_DIR=/run/handmade-containers/$NAME
LOGS=$BUILD/matrix

ends=("$@")
[ ${#ends[@]} -gt 0 ] || ends=(oldest newest)
for end in "${ends[@]}"; do
    case $end in oldest | newest) ;; *) die "unknown end '$end': use oldest and/or newest" ;; esac
done

# check_host running|removed EXPECTED_RELEASE: the container as the host
# sees it, from /run, /proc and the cgroup mounts, not from the role's report.
check_host() {
    "$HOST_PYTHON" - "$1" "$NAME" "$STATE_DIR" "$SCRATCH/rootfs/$NAME" "${2:-}" "$LOGS/pid" <<'PY'
import json, os, sys

want, name, state_dir, rootfs, release, pid_file = sys.argv[1:]
cgroup = "handmade/" + name


def cgroup_dirs():
    """Every directory of the container's cgroup, in every cgroup hierarchy mounted."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2") and os.path.isdir(os.path.join(fields[4], cgroup)):
                found.append(os.path.join(fields[4], cgroup))
    return found


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


problems = []
if want == "running":
    with open(os.path.join(state_dir, "state.json")) as handle:
        pid = int(json.load(handle)["pid"])
    with open(pid_file, "w") as handle:
        handle.write("%d\n" % pid)
    if process_state(pid) in (None, "Z"):
        problems.append("PID 1 (host pid %d) is not running" % pid)
    else:
        with open("/proc/%d/root/etc/alpine-release" % pid) as handle:
            inside = handle.read().strip()
        if not inside.startswith(release + "."):
            problems.append("PID 1 runs on Alpine %s, not on the %s branch" % (inside, release))
        inside_root, host_dir = os.stat("/proc/%d/root/" % pid), os.stat(rootfs)
        if (inside_root.st_dev, inside_root.st_ino) != (host_dir.st_dev, host_dir.st_ino):
            problems.append("PID 1's root is not the directory %s" % rootfs)
        for namespace in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
            if os.readlink("/proc/%d/ns/%s" % (pid, namespace)) == os.readlink("/proc/self/ns/" + namespace):
                problems.append("PID 1 shares the host's %s namespace" % namespace)
        with open("/proc/%d/cgroup" % pid) as handle:
            if cgroup not in handle.read():
                problems.append("PID 1 is not in the cgroup %s" % cgroup)
    if not cgroup_dirs():
        problems.append("no cgroup %s in any hierarchy" % cgroup)
    print("running: host pid %d, %s" % (pid, ", ".join(cgroup_dirs())))
else:
    with open(pid_file) as handle:
        pid = int(handle.read())
    # A PID 1 that exited may stay a zombie of the host's init for a while.
    if process_state(pid) not in (None, "Z"):
        problems.append("PID 1 (host pid %d) still runs" % pid)
    for path in [state_dir, rootfs] + cgroup_dirs():
        if os.path.lexists(path):
            problems.append("%s is left behind" % path)
    print("removed: host pid %d gone, no state, rootfs or cgroup left" % pid)
if problems:
    sys.exit("the container %s is not %s: %s" % (name, want, "; ".join(problems)))
PY
}

# recap_count LOG FIELD: FIELD (ok, changed, failed, ...) of localhost's PLAY RECAP line.
recap_count() {
    sed -n "s/^localhost *:.* $2=\([0-9]*\).*/\1/p" "$1" | tail -n1
}

# playbook NAME PLAYBOOK: run it with the end's ansible-core, the log kept
# in $LOGS/<end>-NAME.log; the run must succeed, fail no task and print no
# deprecation warning.
playbook() {
    local log=$LOGS/$end-$1.log status=0 failed
    log "$end: ansible-playbook $2 (ansible-core $ANSIBLE_CORE_VERSION, Python $ANSIBLE_CORE_PYTHON)"
    (cd "$ROOT" && ANSIBLE_LOCALHOST_WARNING=false "$ANSIBLE_CORE_VENV/bin/ansible-playbook" "$2" \
        -e "@$LOGS/extra-vars.json" "${managed_python_args[@]}") 2>&1 | tee "$log" || status=$?
    failed=$(recap_count "$log" failed)
    if [ "$status" -ne 0 ] || [ "$failed" != 0 ]; then
        die "$end: $2 with ansible-core $ANSIBLE_CORE_VERSION failed (exit $status, failed=${failed:-?}; log $log)"
    fi
    # What works today and is announced to break: fixed now, not at the release that removes it.
    if grep -q 'DEPRECATION WARNING' "$log"; then
        die "$end: $2 with ansible-core $ANSIBLE_CORE_VERSION printed deprecation warnings (log $log): $(grep -m3 'DEPRECATION WARNING' "$log")"
    fi
}

# What a run left behind (an interrupted one) goes first, with the same
# playbook; a failing end tears its container down before the script stops.
teardown_leftovers() {
    if [ -e "$STATE_DIR" ] || [ -e "$SCRATCH/rootfs/$NAME" ]; then
        log "$end: removing what an earlier run left (playbooks/teardown.yml)"
        (cd "$ROOT" && ANSIBLE_LOCALHOST_WARNING=false "$ANSIBLE_CORE_VENV/bin/ansible-playbook" playbooks/teardown.yml \
            -e "@$LOGS/extra-vars.json" "${managed_python_args[@]}") >"$LOGS/$end-leftovers.log" 2>&1 ||
            log "$end: teardown of the leftovers failed too (log $LOGS/$end-leftovers.log)"
    fi
}
on_exit() {
    local status=$?
    [ "$status" -eq 0 ] || [ -z "${ANSIBLE_CORE_VENV:-}" ] || teardown_leftovers
    rm -rf "$SCRATCH"
    stop_test_mirror
}

managed_python_args=()
mkdir -p "$LOGS"
serve_test_mirror
trap on_exit EXIT
newest_branch=${MIRROR_VERSIONS##* }
newest_branch=${newest_branch%.*}
# The role's variables as a user sets them for this mirror, typed (JSON).
"$HOST_PYTHON" - "$LOGS/extra-vars.json" <<PY
import json, sys
json.dump({
    "container_name": "$NAME",
    "container_alpine_mirror": "$MIRROR_URL",
    "container_alpine_version": "$newest_branch",
    "container_verify_signature": True,
    "container_gpg_key": "$MIRROR_KEY_FILE",
    "container_gpg_fingerprint": "$MIRROR_FINGERPRINT",
    "container_rootfs_root": "$SCRATCH/rootfs",
    "container_download_cache": "$SCRATCH/cache",
}, open(sys.argv[1], "w"), indent=1)
PY

summary=()
for end in "${ends[@]}"; do
    started=$SECONDS
    ANSIBLE_CORE_VENV=
    ensure_"$end"_ansible_core_venv
    # Named, as a user names it for localhost: implicit localhost would run
    # the modules with the controller's own Python.
    if [ "$end" = oldest ]; then
        managed_python=$(pyenv_python "$OLDEST_HOST_PYTHON")
    else
        managed_python=/usr/bin/python3
    fi
    managed_python_args=(-e "ansible_python_interpreter=$managed_python")
    managed_python_version=$("$managed_python" -c 'import platform; print(platform.python_version())')
    teardown_leftovers
    rm -rf "$SCRATCH"

    playbook site playbooks/site.yml
    [ "$(recap_count "$LOGS/$end-site.log" changed)" -gt 0 ] ||
        die "$end: the first run of site.yml changed nothing, yet there was no container"
    check_host running "$newest_branch"
    playbook site-again playbooks/site.yml
    changed=$(recap_count "$LOGS/$end-site-again.log" changed)
    [ "$changed" = 0 ] ||
        die "$end: the second run of site.yml with ansible-core $ANSIBLE_CORE_VERSION changed $changed tasks: it must change nothing (log $LOGS/$end-site-again.log)"
    check_host running "$newest_branch"
    playbook teardown playbooks/teardown.yml
    check_host removed
    summary+=("$(printf '%-6s ansible-core %-8s controller Python %-5s managed-host Python %-7s %4ds' \
        "$end" "$ANSIBLE_CORE_VERSION" "$ANSIBLE_CORE_PYTHON" "$managed_python_version" $((SECONDS - started)))")
done
log "the role ran, was idempotent and was removed with:"
printf '  %s\n' "${summary[@]}" >&2
