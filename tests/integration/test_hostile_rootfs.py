"""ns_exec against a rootfs that fights back: swapped paths, hostile layouts, a start that fails.

Real kernel, as root. A container sharing the rootfs swaps a directory for
a symlink to the host in a tight loop while ns_exec starts other containers
there: nothing may ever be made outside the rootfs. Images whose /proc,
/dev, /sys or /dev/shm are symlinks or files are refused with the path
named, and a failed start leaves no mount point, mount, state dir, cgroup
or process behind.
"""

import os
import resource
import shutil
import sys
import tempfile
import uuid

import pytest

from conftest import host_mounts, private_rootfs_copy

PROBES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes")
if PROBES_DIR not in sys.path:
    sys.path.insert(0, PROBES_DIR)

import build_probes  # noqa: E402 (needs the path above)

sys.path.insert(0, os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build", "collections")))

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state
from ansible_collections.handmade.containers.plugins.module_utils._container.placement import OWN_CGROUP_PARENT
from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT

ATTEMPTS = 300


def tree(root):
    """Every path below ``root`` with its kind, for before/after comparisons."""
    found = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found.append((os.path.relpath(path, root), os.path.islink(path), os.path.isdir(path)))
    return sorted(found)


def own_cgroups(name):
    return [path for path in ("/sys/fs/cgroup/%s/%s/%s" % (hierarchy, OWN_CGROUP_PARENT, name)
                              for hierarchy in os.listdir("/sys/fs/cgroup")) if os.path.exists(path)]


@pytest.fixture
def rootfs(busybox_rootfs):
    """A private copy of the fixture rootfs, changed by each test."""
    with private_rootfs_copy(busybox_rootfs, "test-hostile-rootfs-") as copy:
        yield copy


@pytest.fixture
def host_dir():
    """A host directory a hostile container aims at; it must stay empty."""
    path = tempfile.mkdtemp(prefix="test-hostile-target-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def name(run_module):
    name = "test-hostile-%s" % uuid.uuid4().hex[:8]
    yield name
    result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result


def test_a_container_swapping_a_dir_for_a_host_symlink_never_gets_anything_made_outside(
        run_module, rootfs, host_dir, name):
    os.makedirs(os.path.join(rootfs, "shared"))
    # The same path inside the rootfs: there the symlink leads somewhere, so
    # starts go on while it is a symlink (and a host-side walk would follow it out).
    os.makedirs(os.path.join(rootfs, host_dir.lstrip("/")))
    swapper = ("while :; do rm -rf /shared/race; mkdir -p /shared/race/sub; rm -rf /shared/race; "
               "ln -s %s /shared/race; done" % host_dir)
    result = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                    "command": ["/bin/sh", "-c", swapper]})
    assert not result["failed"], result
    outcomes = {"started": 0, "refused": 0}
    for attempt in range(ATTEMPTS):
        try:
            ensure_state({"state": "run", "rootfs": rootfs, "command": ["/bin/true"], "seccomp": "unconfined",
                          "mounts": [{"dest": "/shared/race/sub/v%d/deeper" % attempt, "type": "tmpfs"},
                                     {"dest": "/shared/race/f%d" % attempt, "src": "/etc/hostname"}]})
            outcomes["started"] += 1
        except ContainerError:
            outcomes["refused"] += 1  # the rootfs changed under the launch: refused, fine
        assert os.listdir(host_dir) == [], "ns_exec made %s outside the rootfs (attempt %d)" % (
            os.listdir(host_dir), attempt)
    assert outcomes["started"] + outcomes["refused"] == ATTEMPTS, outcomes
    # The swapper ran all along: the same container, still running.
    again = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                   "command": ["/bin/sh", "-c", swapper]})
    assert not again["failed"] and not again["changed"] and again["pid"] == result["pid"], again


HOSTILE_LAYOUTS = {
    "proc -> /etc": ("proc", "symlink", "/etc"),
    "dev -> /root": ("dev", "symlink", "/root"),
    "sys -> /": ("sys", "symlink", "/"),
    "proc is a file": ("proc", "file", None),
    "dev/shm -> /tmp": ("dev/shm", "symlink", "/tmp"),
    "proc -> a directory of the image": ("proc", "symlink", "/var/proc-elsewhere"),
}


@pytest.mark.parametrize("layout", sorted(HOSTILE_LAYOUTS))
@pytest.mark.parametrize("state", ["run", "started"])
def test_a_hostile_layout_is_refused_with_the_path_named_and_leaves_nothing(run_module, rootfs, name, layout, state):
    path, kind, target = HOSTILE_LAYOUTS[layout]
    full = os.path.join(rootfs, path)
    if os.path.isdir(full) and not os.path.islink(full):
        shutil.rmtree(full)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "var", "proc-elsewhere"), exist_ok=True)
    if kind == "symlink":
        os.symlink(target, full)
    else:
        with open(full, "w") as handle:
            handle.write("not a directory")
    before_tree, before_mounts = tree(rootfs), host_mounts()
    result = run_module("ns_exec", {"name": name, "state": state, "rootfs": rootfs, "command": ["/bin/true"],
                                    "mounts": [{"dest": "/new-volume", "type": "tmpfs"}]})
    assert result["failed"], result
    assert "/%s " % path in result["msg"] and "in the image" in result["msg"], result["msg"]
    assert ("symlink" if kind == "symlink" else "not a directory") in result["msg"], result["msg"]
    assert tree(rootfs) == before_tree
    assert host_mounts() == before_mounts
    assert not os.path.exists(os.path.join(STATE_ROOT, name))
    assert own_cgroups(name) == []


def test_a_symlink_swapped_in_after_the_checks_is_refused_not_followed(rootfs):
    """/proc swapped for a symlink after build_spec's check: the launch refuses it, naming it, and mounts nothing."""
    from ansible_collections.handmade.containers.plugins.module_utils._container import launch, spec as spec_
    from ansible_collections.handmade.containers.plugins.module_utils._container import options
    spec = spec_.build_spec(options.settings({"state": "run", "rootfs": rootfs, "command": ["/bin/true"]}))
    os.rmdir(os.path.join(rootfs, "proc"))
    os.symlink("/etc", os.path.join(rootfs, "proc"))
    before_mounts = host_mounts()
    with pytest.raises(ContainerError) as caught:
        launch.run_container(spec)
    assert "/proc" in str(caught.value) and "symlink" in str(caught.value), str(caught.value)
    assert host_mounts() == before_mounts


def test_a_bad_tmpfs_option_names_the_volume_and_leaves_no_mount_point(run_module, rootfs, name):
    before_tree, before_mounts = tree(rootfs), host_mounts()
    for state in ("run", "started"):
        result = run_module("ns_exec", {"name": name, "state": state, "rootfs": rootfs, "command": ["/bin/true"],
                                        "mounts": [{"dest": "/data/new/cache", "type": "tmpfs",
                                                    "options": "size=lots"}]})
        assert result["failed"], result
        assert "/data/new/cache" in result["msg"] and "size=lots" in result["msg"], result["msg"]
        assert "e.g. size=64m" in result["msg"], result["msg"]
        assert tree(rootfs) == before_tree
        assert host_mounts() == before_mounts
        assert not os.path.exists(os.path.join(STATE_ROOT, name))
        assert own_cgroups(name) == []


# A user only the host's file names: if an exec ever runs as it, the module
# read a host file as the container's /etc/passwd.
def _address_space():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


HOST_ONLY_USER = "hostonlyuser:x:31337:31337::/:/bin/sh\n"
SWAP_ATTEMPTS = 60


@pytest.mark.parametrize("target", ["host-file", "/dev/zero"])
def test_exec_never_reads_a_host_file_through_a_passwd_the_container_swaps(rootfs, name, host_dir, target):
    # The container swaps its /etc/passwd with a symlink to a host path (or
    # to /dev/zero) as fast as it can, while exec looks the user up there.
    # Before: about one exec in 15 ran as uid 31337 from the host's file,
    # and with /dev/zero the module read it line by line until it ran out
    # of memory; the lookup followed host paths.
    try:
        program = build_probes.probe_program("swap_exchange")
    except build_probes.ProbeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    host_file = os.path.join(host_dir, "passwd")
    with open(host_file, "w") as handle:
        handle.write(HOST_ONLY_USER)
    shutil.copy(program, rootfs + "/swap_exchange")
    os.chmod(rootfs + "/swap_exchange", 0o755)
    os.symlink(host_file if target == "host-file" else target, rootfs + "/etc/.swap")
    ensure_state({"name": name, "state": "started", "rootfs": rootfs,
                  "command": ["/swap_exchange", "/etc/.swap", "/etc/passwd"]})
    ran_as_host_user = refused = 0
    # A runtime that reads /dev/zero as a passwd file must hit a MemoryError
    # here, not take the machine's memory: this process gets 1 GiB more at most.
    limits = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + (1 << 30), limits[1]))
    try:
        for _attempt in range(SWAP_ATTEMPTS):
            try:
                result = ensure_state({"name": name, "state": "exec", "user": "hostonlyuser",
                                       "command": ["/bin/id", "-u"]})
            except ContainerError as exc:
                refused += "hostonlyuser is not in the rootfs' /etc/passwd" in str(exc)
                continue
            ran_as_host_user += result["stdout"].strip() == "31337"
    finally:
        resource.setrlimit(resource.RLIMIT_AS, limits)
    assert ran_as_host_user == 0
    # Each lookup saw the container's own file, or a link that leads nowhere inside.
    assert refused == SWAP_ATTEMPTS
    with open(host_file) as handle:
        assert handle.read() == HOST_ONLY_USER
