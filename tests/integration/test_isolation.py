# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker's isolation defaults on the real kernel, attack by attack.

Each test is something a hostile root process inside a container would try,
made through the real module (``run_module``): a disk opened through a node
it makes, a user namespace that hands it CAP_SYS_ADMIN back, its own memory
limit raised, the host's keys searched, a 32-bit syscall past the filter.
Each comment says what the attack did before the container got Docker's
defaults (a cgroup of its own with the device allowlist, the seccomp
profile, a session keyring of its own, a read-only /sys/fs/cgroup of its own
subtree); where the seccomp filter is what refuses, the same attack runs
with ``seccomp: unconfined`` beside it as the control, so the test shows
both halves on this kernel.

The calls busybox cannot make come from a static probe program
(probes/isolation_probe.c, see probes/build_probes.py): built with gcc here,
or taken prebuilt from ``HANDMADE_TEST_PROBE_DIR`` where there is no gcc.

Cleanup does not trust the code under test: loop devices are detached,
containers removed, cgroups and keys the tests made deleted, and stray
directories an attack might have made in any cgroup are looked for in every
cgroup mount, also when a test fails.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, host_mounts, private_rootfs_copy, processes_with

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)
PROBES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes")
if PROBES_DIR not in sys.path:
    sys.path.insert(0, PROBES_DIR)

import build_probes  # noqa: E402 (needs the path above)
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (  # noqa: E402
    DEFAULT_CAPABILITIES,
    capability_mask,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import manager as cgroups  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container import record, supervise  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_syscalls import (  # noqa: E402
    table as syscall_table,
)

CGROUP_ROOT = "/sys/fs/cgroup"
OWN_CGROUP_PARENT = "handmade/containers"
PROBE_IN_ROOTFS = "/isolation_probe"
# Docker's 14 capabilities, as /proc/self/status prints them.
DOCKER_CAPABILITIES = 0xa80425fb
# What Docker writes into a container's own network namespace.
PING_GROUP_RANGE = "0\t2147483647"
# Own network namespace (fresh sysfs, own cgroup view) and the host's (the
# host's /sys bound in, read-only, its cgroup mounts replaced by the view).
NETWORKS = {
    "own-network": ["pid", "mount", "uts", "ipc", "net", "cgroup"],
    "host-network": ["pid", "mount", "uts", "ipc", "cgroup"],
}
EPERM_TEXT = "Operation not permitted"
# busybox mount's words for mount(2) failing with EPERM.
MOUNT_EPERM_TEXT = "permission denied (are you root?)"

# keyutils' numbers (include/uapi/linux/keyctl.h).
KEY_SPEC_SESSION_KEYRING = -3
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_INVALIDATE = 21


# --------------------------------------------------------------------------
# Helpers that read the kernel directly, never through the code under test
# --------------------------------------------------------------------------

def host_mountinfo():
    with open("/proc/self/mountinfo") as handle:
        return handle.read()


def host_cgroup_mounts():
    """Mount points of the host's cgroup hierarchies under /sys/fs/cgroup, from its mountinfo."""
    points = []
    for line in host_mountinfo().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2") and (fields[4] + "/").startswith(CGROUP_ROOT + "/"):
            if fields[4] not in points:
                points.append(fields[4])
    return points


def own_cgroup_directories(name):
    """The directory of cgroup ``name`` in every hierarchy the host has."""
    return [os.path.join(point, name) for point in host_cgroup_mounts()]


def containers_cgroups():
    """Every cgroup below handmade/containers, in every hierarchy: {(mount, entry)}."""
    found = set()
    for point in host_cgroup_mounts():
        parent = os.path.join(point, OWN_CGROUP_PARENT)
        if os.path.isdir(parent):
            found.update((point, entry) for entry in os.listdir(parent))
    return found


def cgroup_procs(directory):
    with open(os.path.join(directory, "cgroup.procs")) as handle:
        return set(int(line) for line in handle.read().split())


def process_cgroups(pid):
    """{hierarchy line prefix ("4:memory"): path} of /proc/PID/cgroup, as the host sees it."""
    with open("/proc/%d/cgroup" % pid) as handle:
        return dict(line.rsplit(":", 1) for line in handle.read().splitlines())


def processes_running(argv):
    """Host pids whose command line is exactly ``argv``."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    if handle.read() == wanted:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def kill_processes_with(marker):
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def remove_directories_named(marker):
    """rmdir every directory called ``marker`` under /sys/fs/cgroup (an attack got through); returns them.

    The whole tree: every cgroup mount, and the tmpfs that holds them on a
    v1 or hybrid host (writable for the host's root).
    """
    removed = []
    for current, subdirs, _files in os.walk(CGROUP_ROOT):
        if marker in subdirs:
            path = os.path.join(current, marker)
            try:
                os.rmdir(path)
            except OSError:
                pass
            removed.append(path)
    return removed


def read_cgroup_limits(name):
    """The limits of cgroup ``name`` as the kernel holds them, and its v1 device list where there is one."""
    cgroup = cgroups.open_existing(name)
    snapshot = {"limits": cgroup.read_limits()}
    devices = cgroup.paths.get("devices")
    if devices and os.path.exists(os.path.join(devices, "devices.list")):
        with open(os.path.join(devices, "devices.list")) as handle:
            snapshot["devices.list"] = handle.read()
    return snapshot


def status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in /proc/self/status:\n%s" % (field, text))


def wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.02)


# -- the probe program ------------------------------------------------------

def probe_results(stdout):
    """The probe's lines -> {name: "ok" or the errno's name}, and {name: value} for the successes."""
    outcomes, values = {}, {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("ok", "err"):
            if parts[1] == "ok":
                outcomes[parts[0]], values[parts[0]] = "ok", int(parts[2])
            else:
                outcomes[parts[0]] = errno.errorcode.get(int(parts[2]), parts[2])
    return outcomes, values


def run_probe_on_host(program, *probes):
    """The probe outside any container: the kernel's own answer, the control of every probe test."""
    proc = subprocess.run([program] + list(probes), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, check=False)
    return proc, probe_results(proc.stdout.decode())


# -- busybox shell attempts ---------------------------------------------------

# `attempt NAME COMMAND...` prints "@@ NAME ok" or "@@ NAME failed <its
# output on one line>", so one container run reports every attempt.
ATTEMPT = r"""
attempt() {
    name=$1; shift
    if out=$("$@" 2>&1); then echo "@@ $name ok"; else echo "@@ $name failed" $out; fi
}
"""


def attempts(result):
    """{name: (succeeded, message)} of the ATTEMPT lines of a run's stdout."""
    found = {}
    for line in result["stdout"].splitlines():
        if line.startswith("@@ "):
            parts = line[3:].split(" ", 2)
            found[parts[0]] = (parts[1] == "ok", parts[2] if len(parts) > 2 else "")
    return found


def assert_refused(found, name, text=EPERM_TEXT):
    assert name in found, "attempt %s did not run: %s" % (name, found)
    succeeded, message = found[name]
    assert not succeeded, "%s got through: %s" % (name, message)
    assert text in message, "%s failed, but not with %r: %s" % (name, text, message)


def assert_succeeded(found, name):
    assert name in found, "attempt %s did not run: %s" % (name, found)
    assert found[name][0], "%s failed: %s" % (name, found[name][1])


# -- session keys of the test process -----------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)


def _keys_syscall(name, *args):
    number = syscall_table(os.uname().machine)[name]
    converted = [arg if isinstance(arg, bytes) else ctypes.c_long(arg) for arg in args]
    result = _LIBC.syscall(ctypes.c_long(number), *converted)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, "%s: %s" % (name, os.strerror(code)))
    return result


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def probe_program():
    """The static probe program for this source: built with gcc, or prebuilt from HANDMADE_TEST_PROBE_DIR."""
    try:
        return build_probes.probe_program("isolation_probe")
    except build_probes.ProbeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def rootfs(busybox_rootfs, probe_program):
    """A private copy of the fixture rootfs, with the probe at /isolation_probe."""
    with private_rootfs_copy(busybox_rootfs, "test-isolation-rootfs-", [(probe_program, PROBE_IN_ROOTFS)]) as copy:
        yield copy


class LoopDevice:
    def __init__(self, path, backing):
        self.path = path
        self.backing = backing
        rdev = os.stat(path).st_rdev
        self.major, self.minor = os.major(rdev), os.minor(rdev)

    def read_head(self, size=512):
        """The device's first bytes, read through the device (its page cache is the container's)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.read(fd, size)
        finally:
            os.close(fd)


@pytest.fixture
def make_loop_device():
    """``make_loop_device() -> LoopDevice`` on a 1 MiB file of zeros; every one is detached afterwards."""
    scratch = tempfile.mkdtemp(prefix="test-isolation-loop-")
    made = []

    def make():
        backing = os.path.join(scratch, "disk-%d.img" % len(made))
        with open(backing, "wb") as handle:
            handle.truncate(1 << 20)
        proc = subprocess.run(["losetup", "-f", "--show", backing], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False)
        device = proc.stdout.decode().strip()
        if proc.returncode != 0 or not device:
            pytest.fail("losetup -f --show %s could not make a loop device (rc=%d): %s; these tests need one (is "
                        "the loop module loaded, is /dev/loop-control there?)"
                        % (backing, proc.returncode, proc.stderr.decode(errors="replace").strip()))
        made.append(device)
        loop = LoopDevice(device, backing)
        # The control: root outside any container reads and writes it, so a
        # refusal inside is the container's doing.
        fd = os.open(device, os.O_RDWR)
        os.close(fd)
        return loop

    try:
        yield make
    finally:
        for device in made:
            subprocess.run(["losetup", "-d", device], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def make_container(run_module):
    """``make_container() -> name``: unique names; each container is removed (absent) afterwards."""
    names = []

    def make():
        names.append("test-isolation-%s" % uuid.uuid4().hex[:8])
        return names[-1]

    yield make
    problems = []
    for name in names:
        result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
        if result["failed"]:
            problems.append(result["msg"])
        if os.path.exists(os.path.join(STATE_ROOT, name)):
            problems.append("%s still has its state directory" % name)
        left = [directory for directory in own_cgroup_directories(OWN_CGROUP_PARENT + "/" + name)
                if os.path.isdir(directory)]
        if left:
            problems.append("%s left its cgroup in %s" % (name, left))
    assert not problems, problems


@pytest.fixture
def limited_cgroup():
    """A cgroup made by the test through the cgroup manager: memory 64M (no swap on top), pids_max 64."""
    name = "handmade/test-isolation-%s" % uuid.uuid4().hex[:8]
    try:
        # memory_swap equal to memory: the 200 MB below cannot go to swap instead.
        cgroups.ensure_present(name, {"memory": "64M", "memory_swap": "64M", "pids_max": 64})
        yield name
    finally:
        cgroups.ensure_absent(name, kill=True)


@pytest.fixture
def session_key():
    """A user key in the test process's own session keyring (the one every child inherits): (description, id)."""
    description = "handmade-test-isolation-%s" % uuid.uuid4().hex[:8]
    key = _keys_syscall("add_key", b"user", description.encode(), b"host secret", len(b"host secret"),
                        KEY_SPEC_SESSION_KEYRING)
    try:
        yield description, key
    finally:
        _keys_syscall("keyctl", KEYCTL_INVALIDATE, key)


def _run(run_module, rootfs, script, *args, **options):
    """``sh -c SCRIPT`` in a container (state run); the module must not fail."""
    params = dict({"rootfs": rootfs, "command": ["/bin/sh", "-c", script, "attack"] + list(args)}, **options)
    result = run_module("ns_exec", params)
    assert not result["failed"], result
    return result


def _start(run_module, name, rootfs, **options):
    result = run_module("ns_exec", dict({"name": name, "state": "started", "rootfs": rootfs,
                                         "command": ["/bin/sh"]}, **options))
    assert not result["failed"], result
    return result


def _exec(run_module, name, script, *args):
    result = run_module("ns_exec", {"name": name, "state": "exec",
                                    "command": ["/bin/sh", "-c", script, "attack"] + list(args)})
    assert not result["failed"], result
    return result


# --------------------------------------------------------------------------
# 1. Devices: only Docker's harmless ones, and exactly those passed through
# --------------------------------------------------------------------------

# Before: a container's processes ran in the module's own cgroup with no
# device rule at all, so root inside made a node of the host's disk (mknod
# is allowed) or found one planted in the rootfs and read and wrote the
# whole disk through it, and wrote to the kernel log through /dev/kmsg.
DEVICE_ATTACK = ATTEMPT + r"""
major=$1 minor=$2
attempt mknod mknod /tmp/disk b "$major" "$minor"
attempt read-made dd if=/tmp/disk of=/dev/null bs=512 count=1
attempt write-made dd if=/dev/zero of=/tmp/disk bs=512 count=1 conv=notrunc
attempt read-planted dd if=/planted-disk of=/dev/null bs=512 count=1
attempt write-planted sh -c 'echo attack | dd of=/planted-disk conv=notrunc'
attempt mknod-kmsg mknod /tmp/kmsg c 1 11
attempt write-kmsg sh -c 'echo handmade-attack > /tmp/kmsg'
attempt null sh -c 'echo x > /dev/null'
attempt zero sh -c '[ $(head -c 4 /dev/zero | wc -c) -eq 4 ]'
attempt urandom sh -c '[ $(head -c 16 /dev/urandom | wc -c) -eq 16 ]'
attempt pipe sh -c '[ "$(echo through | cat | cat)" = through ]'
rm -f /tmp/disk /tmp/kmsg
"""


def test_a_disk_opens_neither_through_a_node_made_inside_nor_one_planted_in_the_rootfs(
        run_module, rootfs, make_loop_device):
    loop = make_loop_device()
    planted = os.path.join(rootfs, "planted-disk")
    os.mknod(planted, stat.S_IFBLK | 0o600, os.makedev(loop.major, loop.minor))
    try:
        # The control: the planted node is on a filesystem that allows devices.
        os.close(os.open(planted, os.O_RDWR))
        result = _run(run_module, rootfs, DEVICE_ATTACK, str(loop.major), str(loop.minor))
    finally:
        os.unlink(planted)
    found = attempts(result)
    # Making nodes is allowed, as in Docker: opening them is what is refused.
    assert_succeeded(found, "mknod")
    assert_succeeded(found, "mknod-kmsg")
    for name in ("read-made", "write-made", "read-planted", "write-planted", "write-kmsg"):
        assert_refused(found, name)
    for name in ("null", "zero", "urandom", "pipe"):
        assert_succeeded(found, name)
    assert loop.read_head() == b"\0" * 512, "the disk was written from inside"


# Before: `devices` did not exist; a container either reached every device
# (see above) or none.
PASSED_DEVICE = ATTEMPT + r"""
device=$1 other_major=$2 other_minor=$3
attempt read dd if="$device" of=/dev/null bs=512 count=1
attempt write sh -c "printf handmade-was-here | dd of=$device conv=notrunc"
mknod /tmp/other b "$other_major" "$other_minor"
attempt read-other dd if=/tmp/other of=/dev/null bs=512 count=1
rm -f /tmp/other
"""


def test_devices_passes_exactly_the_given_device_with_the_given_access(run_module, rootfs, make_loop_device):
    passed, other = make_loop_device(), make_loop_device()
    args = (passed.path, str(other.major), str(other.minor))

    read_write = _run(run_module, rootfs, PASSED_DEVICE, *args, devices=[passed.path + ":rw"])
    found = attempts(read_write)
    assert_succeeded(found, "read")
    assert_succeeded(found, "write")
    assert passed.read_head(17) == b"handmade-was-here", "the write inside did not reach the device"
    assert_refused(found, "read-other")

    read_only = _run(run_module, rootfs, PASSED_DEVICE, *args, devices=[passed.path + ":r"])
    found = attempts(read_only)
    assert_succeeded(found, "read")
    assert_refused(found, "write")
    assert_refused(found, "read-other")
    assert other.read_head() == b"\0" * 512


# --------------------------------------------------------------------------
# 2. Namespaces: no user namespace to regain CAP_SYS_ADMIN in
# --------------------------------------------------------------------------

# Before: no seccomp filter. `unshare -U -r` needs no capability, and inside
# the new user namespace root has all of them again: a new mount namespace,
# mounts, and every kernel surface reachable from there (many kernel
# exploits of recent years, through overlayfs or nf_tables, start so). `unshare -m`
# alone was already refused by the capability drop; the filter now refuses
# it too.
NAMESPACE_ATTACK = ATTEMPT + r"""
attempt user unshare -U -r true
attempt mount-ns unshare -m true
attempt user-then-mount unshare -U -r -m sh -c 'mount -t tmpfs handmade-attack /mnt'
"""


def _kernel_allows_user_namespaces():
    # The control needs the kernel to make user namespaces for a process
    # without CAP_SYS_ADMIN (Debian's unprivileged_userns_clone, the count limit).
    for path, refusing in (("/proc/sys/user/max_user_namespaces", "0"),
                           ("/proc/sys/kernel/unprivileged_userns_clone", "0")):
        try:
            with open(path) as handle:
                if handle.read().strip() == refusing:
                    return False
        except OSError:
            pass
    return True


def test_user_and_mount_namespaces_cannot_be_made_inside(run_module, rootfs):
    found = attempts(_run(run_module, rootfs, NAMESPACE_ATTACK))
    for name in ("user", "mount-ns", "user-then-mount"):
        assert_refused(found, name)

    if _kernel_allows_user_namespaces():
        # The control: without the filter the attack works on this kernel.
        control = attempts(_run(run_module, rootfs, NAMESPACE_ATTACK, seccomp="unconfined"))
        assert_succeeded(control, "user")
        assert_succeeded(control, "user-then-mount")
        assert_refused(control, "mount-ns")  # the capability drop alone


# --------------------------------------------------------------------------
# 3 and 4. Cgroups: a cgroup of its own everywhere, read-only, nothing else visible
# --------------------------------------------------------------------------

# The container's view of /sys/fs/cgroup and one attempt at each way out:
# open every file for writing (without writing), mkdir in every directory,
# raise its own memory and pids limits and open up all devices (v1 and v2
# spellings), mount a hierarchy of its own.
CGROUP_ATTACK = ATTEMPT + r"""
marker=$1
cat /proc/self/cgroup | sed 's/^/@cgroup /'
find /sys/fs/cgroup -type d | sed 's/^/@dir /'
awk '$5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1 { print "@mount", $5, $6 }' /proc/self/mountinfo
for f in $(find /sys/fs/cgroup -type f); do (: >> "$f") 2>/dev/null && echo "@writable $f"; done
for d in $(find /sys/fs/cgroup -type d); do mkdir "$d/$marker" 2>/dev/null && echo "@made $d"; done
tried=0
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max \
         memory.max memory.swap.max pids.max unified/memory.max unified/pids.max; do
    [ -e "/sys/fs/cgroup/$f" ] || continue
    tried=$((tried + 1))
    value=max; case $f in *limit_in_bytes) value=-1;; esac
    attempt "raise:$f" sh -c "echo $value > /sys/fs/cgroup/$f"
done
[ -e /sys/fs/cgroup/devices/devices.allow ] && attempt allow-devices sh -c 'echo a > /sys/fs/cgroup/devices/devices.allow'
attempt mount-hierarchy mount -t cgroup -o memory handmade-attack /mnt
attempt remount-rw mount -o remount,rw /sys/fs/cgroup
echo "@tried $tried"
"""


def _cgroup_view(result):
    view = {"cgroup": [], "dir": [], "mount": {}, "writable": [], "made": [], "tried": 0}
    for line in result["stdout"].splitlines():
        if not line.startswith("@") or line.startswith("@@"):
            continue
        kind, _space, rest = line[1:].partition(" ")
        if kind == "mount":
            point, options = rest.split(" ", 1)
            view["mount"][point] = options.split(",")
        elif kind == "tried":
            view["tried"] = int(rest)
        else:
            view[kind].append(rest)
    return view


def _assert_only_its_own_subtree_read_only(result, found):
    """What CGROUP_ATTACK saw and did: its own cgroup alone, nothing writable, every attempt refused."""
    view = _cgroup_view(result)
    assert view["cgroup"], result
    # Its own cgroup is the root of every hierarchy it sees.
    for line in view["cgroup"]:
        assert line.rsplit(":", 1)[1] == "/", view["cgroup"]
    # One mount per host hierarchy, all read-only, and no directory below any
    # of them: no handmade/, no system.slice, no other container.
    # (The container's /sys/fs/cgroup/<h> has the path of the host's.)
    mounts = view["mount"]
    assert set(host_cgroup_mounts()) <= set(mounts), (host_cgroup_mounts(), sorted(mounts))
    assert all("ro" in options for options in mounts.values()), mounts
    assert sorted(set(view["dir"]) - set(mounts)) == [], "directories of other cgroups are visible"
    for point in host_cgroup_mounts():
        for entry in os.listdir(point):
            if os.path.isdir(os.path.join(point, entry)):
                assert os.path.join(point, entry) not in view["dir"], "the host's cgroup %s/%s is visible inside" % (
                    point, entry)
    assert view["writable"] == [], "cgroup files open for writing inside: %s" % view["writable"]
    assert view["made"] == [], "cgroups made inside: %s" % view["made"]
    # It did try: this host has memory and pids files to raise.
    assert view["tried"] >= 2, result["stdout"]
    for name, (succeeded, message) in found.items():
        assert not succeeded, "%s got through: %s" % (name, message)


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_the_container_can_neither_raise_its_limits_nor_write_any_cgroup(run_module, rootfs, limited_cgroup,
                                                                         network):
    # Before: with its own network the container saw an empty
    # /sys/fs/cgroup; sharing the host's network it saw the host's whole
    # cgroup tree through the host's /sys, writable: this attack made its
    # directory in 56 cgroups of this host, and root could as well have
    # written its pid into a root cgroup.procs, out of every limit.
    #
    # The first container in the cgroup writes Docker's device allowlist
    # into it: what the kernel holds then is what no attack may change.
    _run(run_module, rootfs, "true", cgroup=limited_cgroup, namespaces=NETWORKS[network])
    before = read_cgroup_limits(limited_cgroup)
    marker = "handmade-attack-%s" % uuid.uuid4().hex[:8]
    try:
        result = _run(run_module, rootfs, CGROUP_ATTACK, marker, cgroup=limited_cgroup,
                      namespaces=NETWORKS[network])
    finally:
        leaked = remove_directories_named(marker)
    assert leaked == [], "the container made directories under /sys/fs/cgroup: %s" % leaked
    found = attempts(result)
    _assert_only_its_own_subtree_read_only(result, found)
    for name in found:
        if name.startswith("raise:") or name == "allow-devices":
            assert_refused(found, name, "Read-only file system")
    assert_refused(found, "mount-hierarchy", MOUNT_EPERM_TEXT)
    assert_refused(found, "remount-rw", MOUNT_EPERM_TEXT)
    assert read_cgroup_limits(limited_cgroup) == before

    # And the limits still hold: 200 MB against 64M (dd's 200M buffer is
    # really touched: read() fills it from /dev/zero) ...
    hog = run_module("ns_exec", {"rootfs": rootfs, "cgroup": limited_cgroup, "namespaces": NETWORKS[network],
                                 "command": ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]})
    assert hog["rc"] != 0, hog
    assert hog["oom_killed"] or "memory" in hog["stderr"], hog
    # ... and at most 64 processes, however many it starts.
    # (The subshell stops at its first refused fork; the count is a glob
    # and builtins, which need no fork of their own.)
    forks = _run(run_module, rootfs, '( for i in $(seq 100); do sleep 30 & done ) 2>/dev/null; '
                 'set -- /proc/[0-9]*; echo "@procs $#"', cgroup=limited_cgroup, namespaces=NETWORKS[network])
    procs = [int(line.split()[1]) for line in forks["stdout"].splitlines() if line.startswith("@procs ")]
    assert procs and 32 < procs[0] <= 64, forks


def test_a_started_container_has_a_cgroup_of_its_own_in_every_hierarchy_until_absent(
        run_module, rootfs, make_container):
    # Before: without a `cgroup` option the container stayed in the module's
    # own cgroup (the Ansible task's): no device rules, no limit of its own,
    # and its cgroup namespace rooted where Ansible happened to run.
    name = make_container()
    pid = _start(run_module, name, rootfs)["pid"]
    cgroup_name = OWN_CGROUP_PARENT + "/" + name
    directories = own_cgroup_directories(cgroup_name)
    assert directories, "this host has no cgroup mounts under %s" % CGROUP_ROOT
    for directory in directories:
        assert pid in cgroup_procs(directory), directory
    assert set(process_cgroups(pid).values()) == {"/" + cgroup_name}, process_cgroups(pid)
    assert len(process_cgroups(pid)) == len(directories)

    removed = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert removed["changed"], removed
    assert [directory for directory in directories if os.path.exists(directory)] == []


def test_a_run_gets_a_unique_cgroup_of_its_own_removed_when_it_ends(run_module, rootfs):
    marker = "30.%d" % (uuid.uuid4().int % 100000)
    results = []
    runner = threading.Thread(target=lambda: results.append(run_module("ns_exec", {
        "rootfs": rootfs, "timeout": 120,
        "command": ["/bin/sh", "-c", "sleep %s; echo finished" % marker]})))
    runner.start()
    directories = []
    try:
        # The sleep itself, not the shell (PID 1) whose command line names it too.
        pid = wait_for(lambda: processes_running(["sleep", marker]), "the container's sleep")[0]
        paths = set(process_cgroups(pid).values())
        assert len(paths) == 1, process_cgroups(pid)
        cgroup_name = paths.pop().lstrip("/")
        assert os.path.dirname(cgroup_name) == OWN_CGROUP_PARENT, cgroup_name
        assert os.path.basename(cgroup_name).startswith("run-"), cgroup_name
        directories = own_cgroup_directories(cgroup_name)
        for directory in directories:
            assert pid in cgroup_procs(directory), directory
        assert len(process_cgroups(pid)) == len(directories)
        os.kill(pid, signal.SIGKILL)
    finally:
        runner.join(180)
        if runner.is_alive():
            kill_processes_with("sleep " + marker)
            runner.join(60)
    assert results and results[0]["rc"] == 0 and results[0]["stdout"] == "finished\n", results
    assert [directory for directory in directories if os.path.exists(directory)] == []


def test_a_second_container_can_neither_see_nor_write_the_firsts_cgroup(run_module, rootfs, make_container):
    # Before: containers had no cgroup of their own, and one sharing the
    # host's network saw every cgroup of the host through its /sys,
    # writable: whatever cgroup another container ran in, it could write its
    # limits or move processes into it.
    first, second = make_container(), make_container()
    first_pid = _start(run_module, first, rootfs)["pid"]
    first_cgroup = OWN_CGROUP_PARENT + "/" + first
    before = read_cgroup_limits(first_cgroup)
    _start(run_module, second, rootfs, namespaces=NETWORKS["host-network"])
    marker = "handmade-attack-%s" % uuid.uuid4().hex[:8]
    try:
        result = _exec(run_module, second, CGROUP_ATTACK + "find /sys/fs/cgroup | grep -c \"$2\" || true",
                       marker, first)
    finally:
        leaked = remove_directories_named(marker)
    assert leaked == [], "the second container made directories under /sys/fs/cgroup: %s" % leaked
    found = attempts(result)
    _assert_only_its_own_subtree_read_only(result, found)
    assert result["stdout"].split()[-1] == "0", "the first container's cgroup is visible: %s" % result["stdout"]
    assert first not in result["stdout"]
    assert read_cgroup_limits(first_cgroup) == before
    # Its PID 1 alone (its supervisor runs outside it), nothing of the second container.
    # (Found once it has exec'd its program: a moment after the task, seconds on a slow VM.)
    deadline = time.monotonic() + 120
    while not supervise.find_supervisors(record.StateDir(first)) and time.monotonic() < deadline:
        time.sleep(0.05)
    supervisors = set(pid for pid, _start_time in supervise.find_supervisors(record.StateDir(first)))
    assert len(supervisors) == 1, supervisors
    for directory in own_cgroup_directories(first_cgroup):
        assert cgroup_procs(directory) == {first_pid}, directory


# --------------------------------------------------------------------------
# 5. Keys: the host's session keyring is out of reach
# --------------------------------------------------------------------------

def test_the_hosts_session_keys_are_invisible_inside(run_module, rootfs, probe_program, session_key):
    # Before: the container inherited the session keyring of the process
    # that started it (Ansible's, here the test's): root inside searched it
    # and read the keys (credentials, kerberos tickets, fscrypt keys).
    description, key = session_key
    host_keyring = _keys_syscall("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    # The control: a process the test starts finds the key.
    _proc, (outcomes, values) = run_probe_on_host(probe_program, "keysearch:" + description)
    assert (outcomes, values) == ({"keysearch": "ok"}, {"keysearch": key}), (outcomes, values)

    # Without the filter, keyctl is allowed: the session keyring is a new, empty one.
    unconfined = _run(run_module, rootfs, '"$@"', PROBE_IN_ROOTFS, "keysearch:" + description, "keyring",
                      seccomp="unconfined")
    outcomes, values = probe_results(unconfined["stdout"])
    assert outcomes == {"keysearch": "ENOKEY", "keyring": "ok"}, unconfined
    assert values["keyring"] != host_keyring

    # With Docker's profile, the key calls themselves are refused.
    confined = _run(run_module, rootfs, '"$@"', PROBE_IN_ROOTFS, "keysearch:" + description, "keyring", "add_key")
    outcomes, _values = probe_results(confined["stdout"])
    assert outcomes == {"keysearch": "EPERM", "keyring": "EPERM", "add_key": "EPERM"}, confined


# --------------------------------------------------------------------------
# 6. The seccomp filter: refused calls, a killed 32-bit call, a working shell
# --------------------------------------------------------------------------

def test_vsock_and_userfaultfd_are_refused_inside(run_module, rootfs):
    # Before: AF_VSOCK reached the hypervisor and whatever it offers its
    # guests (it did here: the unconfined control below gets a socket), and
    # userfaultfd is the classic tool to win kernel races.
    confined = _run(run_module, rootfs, '"$@"', PROBE_IN_ROOTFS, "vsock", "userfaultfd")
    assert probe_results(confined["stdout"])[0] == {"vsock": "EPERM", "userfaultfd": "EPERM"}, confined
    # The control: without the filter the kernel gives them (or, for a
    # kernel without vsock, refuses them some other way than EPERM).
    unconfined = _run(run_module, rootfs, '"$@"', PROBE_IN_ROOTFS, "vsock", "userfaultfd", seccomp="unconfined")
    outcomes = probe_results(unconfined["stdout"])[0]
    assert set(outcomes) == {"vsock", "userfaultfd"} and "EPERM" not in outcomes.values(), unconfined


def test_a_32_bit_syscall_kills_the_process(run_module, rootfs, probe_program):
    # Before: no filter, so nothing to bypass; a filter that checked only
    # x86_64 numbers would have let `int $0x80` through with i386 numbers.
    if os.uname().machine != "x86_64":
        pytest.skip("int $0x80 is an x86_64 thing; this machine is %s" % os.uname().machine)
    proc, (outcomes, _values) = run_probe_on_host(probe_program, "int80")
    if proc.returncode == -signal.SIGSEGV or outcomes.get("int80") == "ENOSYS":
        # Decided by the kernel itself: without IA32 emulation it never reaches seccomp.
        pytest.skip("this kernel has no IA32 emulation (int $0x80 gave %s)" % (outcomes or proc.returncode))
    assert outcomes == {"int80": "ok"}, (proc.returncode, proc.stderr)

    killed = _run(run_module, rootfs, '"$@"; echo "rc=$?"', PROBE_IN_ROOTFS, "int80")
    assert killed["stdout"].split() == ["rc=%d" % (128 + signal.SIGSYS)], killed
    control = _run(run_module, rootfs, '"$@"; echo "rc=$?"', PROBE_IN_ROOTFS, "int80", seccomp="unconfined")
    assert control["stdout"].split()[-1] == "rc=0" and "int80 ok" in control["stdout"], control


def test_a_shell_with_pipes_and_background_jobs_works_under_the_filter(run_module, rootfs):
    # What the filter must not break: fork, pipes, wait, the clone3 fallback.
    result = run_module("ns_exec", {"rootfs": rootfs, "command": [
        "/bin/sh", "-c", "echo a | cat; sleep 0.1 & wait; echo done; grep ^Seccomp: /proc/self/status"]})
    assert result["rc"] == 0 and result["stderr"] == "", result
    assert result["stdout"].split("\n")[:2] == ["a", "done"], result
    assert result["stdout"].split()[-1] == "2", result


EXEC_PROBE = ATTEMPT + r"""
grep ^Seccomp /proc/self/status
mknod /tmp/disk b "$1" "$2"
attempt read-disk dd if=/tmp/disk of=/dev/null bs=512 count=1
rm -f /tmp/disk
/isolation_probe keyring vsock
"""


def test_exec_processes_carry_the_same_filter_device_rules_and_a_keyring_of_their_own(
        run_module, rootfs, make_container, make_loop_device, session_key):
    # Before: an exec'd process (`docker exec`) got no filter, no device
    # rules and the session keyring of the task that ran exec.
    loop = make_loop_device()
    description, _key = session_key
    host_keyring = _keys_syscall("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)

    confined = make_container()
    _start(run_module, confined, rootfs)
    result = _exec(run_module, confined, EXEC_PROBE, str(loop.major), str(loop.minor))
    lines = result["stdout"].splitlines()
    assert status_field(result["stdout"], "Seccomp") == "2", result
    assert status_field(result["stdout"], "Seccomp_filters") == "1", result  # one filter, not one per step
    assert_refused(attempts(result), "read-disk")
    assert probe_results(result["stdout"])[0] == {"keyring": "EPERM", "vsock": "EPERM"}, lines

    # In a container without the filter, exec can read its keyring: a new one.
    unconfined = make_container()
    _start(run_module, unconfined, rootfs, seccomp="unconfined")
    result = _exec(run_module, unconfined, EXEC_PROBE + "/isolation_probe keysearch:$3", str(loop.major),
                   str(loop.minor), description)
    assert status_field(result["stdout"], "Seccomp") == "0", result
    assert_refused(attempts(result), "read-disk")  # the device rules are the cgroup's, not the filter's
    outcomes, values = probe_results(result["stdout"])
    assert outcomes["keyring"] == "ok" and values["keyring"] != host_keyring, result
    assert outcomes["keysearch"] == "ENOKEY", result


def test_exec_in_a_container_with_a_device_reaches_that_device_only(
        run_module, rootfs, make_container, make_loop_device):
    # An exec'd process joins the container's cgroup and so its device
    # rules: the passed device opens, another does not. (Until exec stopped
    # re-reading the recorded `devices`, which the record holds as kernel
    # rules such as "b 7:0 rw", exec of such a container failed: "devices:
    # access '0 rw' of 'b 7:0 rw' must be made of the letters r, w and m".)
    passed, other = make_loop_device(), make_loop_device()
    name = make_container()
    _start(run_module, name, rootfs, devices=[passed.path + ":rw"])
    found = attempts(_exec(run_module, name, PASSED_DEVICE, passed.path, str(other.major), str(other.minor)))
    assert_succeeded(found, "read")
    assert_succeeded(found, "write")
    assert_refused(found, "read-other")


# --------------------------------------------------------------------------
# 7. The rest of Docker's default spec, seen from inside
# --------------------------------------------------------------------------

SPEC_PROBE = r"""
cat /proc/self/mountinfo | sed 's/^/@mount /'
grep ^Cap /proc/self/status
id
echo "@interrupts $(wc -c < /proc/interrupts)"
echo "@ping $(cat /proc/sys/net/ipv4/ping_group_range)"
echo "@port $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"
"""


def test_the_rest_of_dockers_default_spec_holds_inside(run_module, rootfs):
    # Before: no /dev/mqueue, no cgroup view, CapInh as inherited, no
    # supplementary groups, /proc/interrupts readable (it tells an attacker
    # which CPU serves which device), ping_group_range "1 0" and
    # ip_unprivileged_port_start 1024 (a fresh network namespace's).
    result = _run(run_module, rootfs, SPEC_PROBE)
    mounts = []
    for line in result["stdout"].splitlines():
        if line.startswith("@mount "):
            fields = line.split()[1:]
            mounts.append((fields[4], fields[5].split(",")))
    points = [point for point, _options in mounts]
    order = ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert all(point in points for point in order), points
    assert sorted(order, key=points.index) == order, points
    mqueue = dict(mounts)["/dev/mqueue"]
    assert {"nosuid", "nodev", "noexec"} <= set(mqueue), mqueue

    assert int(status_field(result["stdout"], "CapInh"), 16) == 0
    assert DOCKER_CAPABILITIES == capability_mask(DEFAULT_CAPABILITIES)
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert int(status_field(result["stdout"], field), 16) == DOCKER_CAPABILITIES, field
    identity = [line for line in result["stdout"].splitlines() if line.startswith("uid=")]
    assert identity and identity[0].startswith("uid=0(root) gid=0(root) groups="), result["stdout"]
    assert "0(root)" in identity[0].split("groups=")[1].split(","), identity

    with open("/proc/interrupts") as handle:
        assert handle.read(), "the control: the host's /proc/interrupts is not empty"
    assert "/proc/interrupts" in points
    sizes = [line.split()[1] for line in result["stdout"].splitlines() if line.startswith("@interrupts ")]
    assert sizes == ["0"], result["stdout"]
    assert "@ping %s" % PING_GROUP_RANGE in result["stdout"].splitlines(), result["stdout"]
    assert "@port 0" in result["stdout"].splitlines(), result["stdout"]


# --------------------------------------------------------------------------
# 8. Bad input: a clear message naming the option and the fix, nothing left
# --------------------------------------------------------------------------

BAD_PROFILES = {
    "bad-json": '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [',
    "unknown-action": json.dumps({"defaultAction": "SCMP_ACT_ERRNO",
                                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_PERHAPS"}]}),
}

BAD_INPUT = [
    ("seccomp-missing", {"seccomp": "/nonexistent.json"},
     ["seccomp", "/nonexistent.json", "cannot read", "give the path of a Docker-format seccomp profile"]),
    ("seccomp-bad-json", {"seccomp": "@bad-json"},
     ["seccomp", "not valid JSON", "fix the file"]),
    ("seccomp-unknown-action", {"seccomp": "@unknown-action"},
     ["seccomp", "SCMP_ACT_PERHAPS", "unknown action", "use one of", "SCMP_ACT_ERRNO"]),
    ("devices-missing", {"devices": ["/dev/nonexistent"]},
     ["devices", "/dev/nonexistent", "does not exist", "give a device node that exists"]),
    ("devices-bad-access", {"devices": ["/dev/null:rwx"]},
     ["devices", "'rwx'", "r (read), w (write) and m (mknod)"]),
]


@pytest.mark.parametrize("state", ["run", "started"])
@pytest.mark.parametrize("case, options, expected", BAD_INPUT, ids=[case[0] for case in BAD_INPUT])
def test_bad_isolation_input_fails_clearly_and_leaves_nothing(run_module, rootfs, tmp_path, state, case,
                                                              options, expected):
    options = dict(options)
    if options.get("seccomp", "").startswith("@"):
        profile = tmp_path / (options["seccomp"][1:] + ".json")
        profile.write_text(BAD_PROFILES[options["seccomp"][1:]])
        options["seccomp"] = str(profile)
        expected = expected + [str(profile)]
    name = "test-isolation-%s" % uuid.uuid4().hex[:8]
    marker = "40.%d" % (uuid.uuid4().int % 100000)
    mounts_before, cgroups_before = host_mounts(), containers_cgroups()
    params = dict({"rootfs": rootfs, "command": ["/bin/sleep", marker], "state": state}, **options)
    if state == "started":
        params["name"] = name
    try:
        result = run_module("ns_exec", params)
        assert result["failed"], result
        for text in expected:
            assert text in result["msg"], (text, result["msg"])
        assert not os.path.exists(os.path.join(STATE_ROOT, name))
        assert containers_cgroups() == cgroups_before
        assert [directory for directory in own_cgroup_directories(OWN_CGROUP_PARENT + "/" + name)
                if os.path.exists(directory)] == []
        assert processes_with("sleep " + marker) == []
        assert host_mounts() == mounts_before
    finally:
        if state == "started":
            run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
        kill_processes_with("sleep " + marker)
