# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device allowlist on the real kernel: v1 devices lists and the v2 BPF program.

A loop device the test makes stands for a disk (root may open it outside
the cgroup; this machine refuses even root its real disk). A probe process
is moved into a fresh cgroup ``handmade/test-devices-<random>`` with the
rules applied, and reports what opening and mknod give it there. Each
enforcement the host has is tested: the v1 devices controller on legacy and
hybrid hosts, the BPF program on a cgroup2 directory on unified and hybrid
hosts (under /sys/fs/cgroup/unified, where the kernel runs it too).

Cleanup does not trust the code under test: it kills its own processes,
rmdirs the test's cgroup in every cgroup mount it finds in mountinfo,
detaches the loop device and removes its files, also when a test fails.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, HOST_PYTHON

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.devices import (  # noqa: E402
    attached_device_programs,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._devices import (  # noqa: E402
    allowed_rules,
    parse_devices,
)

CGROUP_ROOT = "/sys/fs/cgroup"

# Runs each JSON line of operations it reads and prints their results as one
# JSON line: "ok" or the errno's name. It waits for the first line, so the
# test places it in the cgroup before it opens anything.
PROBE = r"""
import errno, json, os, stat, sys
def run(operation):
    kind, path = operation[0], operation[1]
    try:
        if kind == "mknod":
            os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(operation[2], operation[3]))
            os.unlink(path)
        else:
            flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[operation[2]]
            fd = os.open(path, flags | os.O_CLOEXEC)
            try:
                if operation[2] != "r" and path == "/dev/null":
                    os.write(fd, b"x")
            finally:
                os.close(fd)
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
for line in sys.stdin:
    print(json.dumps([run(operation) for operation in json.loads(line)]), flush=True)
"""


def cgroup_layout():
    """``unified``, ``hybrid`` or ``legacy``, from mountinfo (not from the code under test)."""
    fstypes = dict((mount_point, fstype) for mount_point, fstype in cgroup_mounts())
    if fstypes.get(CGROUP_ROOT) == "cgroup2":
        return "unified"
    return "hybrid" if fstypes.get(CGROUP_ROOT + "/unified") == "cgroup2" else "legacy"


def cgroup_mounts():
    """(mount point, fstype) of every cgroup and cgroup2 mount under /sys/fs/cgroup."""
    mounts = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2") and (fields[4] + "/").startswith(CGROUP_ROOT + "/"):
                mounts.append((fields[4], fstype))
    return mounts


def has_v1_devices():
    with open("/proc/self/mountinfo") as handle:
        return any(" - cgroup " in line and "devices" in line.split(" - ")[1].split()[2].split(",")
                   for line in handle)


LAYOUT = cgroup_layout()
# The enforcements this host has: every one of them is tested, none skipped.
ENFORCEMENTS = ([] if not has_v1_devices() else ["v1"]) + ([] if LAYOUT == "legacy" else ["bpf"])


def remove_cgroup_everywhere(name):
    """rmdir ``name`` (and anything below it) in every cgroup mount; the processes must be gone."""
    leftovers = []
    for mount_point, _fstype in cgroup_mounts():
        top = os.path.join(mount_point, name)
        if not os.path.isdir(top):
            continue
        for current, _subdirs, _files in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(current)
                    break
                except OSError as exc:
                    # A killed process leaves its cgroup a moment after it dies.
                    if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.02)
                        continue
                    if exc.errno != errno.ENOENT:
                        leftovers.append("%s: %s" % (current, exc.strerror))
                    break
    return leftovers


class Probe:
    """A process that opens and makes nodes on request; see PROBE."""

    def __init__(self):
        self.process = subprocess.Popen([HOST_PYTHON, "-I", "-S", "-c", PROBE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.process.pid

    def run(self, *operations):
        self.process.stdin.write((json.dumps(operations) + "\n").encode())
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the probe died: %s" % self.process.stderr.read().decode(errors="replace"))
        return json.loads(line)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def scratch():
    directory = tempfile.mkdtemp(prefix="handmade-test-devices-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def loop_device(scratch):
    """A loop device on a 1 MiB file: (device path, major, minor, a node of it in the scratch directory)."""
    backing = os.path.join(scratch, "backing.img")
    with open(backing, "wb") as handle:
        handle.truncate(1 << 20)
    made = subprocess.run(["losetup", "-f", "--show", backing], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False)
    device = made.stdout.decode().strip()
    if made.returncode != 0 or not device:
        pytest.fail("losetup -f --show %s could not make a loop device (rc=%d): %s; the device tests need one "
                    "(is the loop module loaded, is /dev/loop-control there?)"
                    % (backing, made.returncode, made.stderr.decode(errors="replace").strip()))
    try:
        rdev = os.stat(device).st_rdev
        node = os.path.join(scratch, "disk")
        os.mknod(node, stat.S_IFBLK | 0o600, rdev)
        # The control: outside the cgroup root opens it, so a refusal inside is the rules' doing.
        try:
            os.close(os.open(node, os.O_RDWR))
        except OSError as exc:
            pytest.fail("root cannot open %s (a node of %s) even outside the test's cgroup: %s; the scratch "
                        "directory %s may be on a nodev mount (set TMPDIR elsewhere)"
                        % (node, device, exc.strerror, scratch))
        yield device, os.major(rdev), os.minor(rdev), node
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture(params=ENFORCEMENTS)
def confined(request):
    """(driver, probe) for one enforcement: a fresh cgroup with a probe inside it.

    v1: the cgroup driver (every v1 hierarchy, devices included). bpf: the
    v2 driver, on a hybrid host under /sys/fs/cgroup/unified.
    """
    name = "handmade/test-devices-%s" % uuid.uuid4().hex[:12]
    probe = None
    try:
        cgroup = open_cgroup(name, version="v1" if request.param == "v1" else "v2")
        cgroup.create()
        probe = Probe()
        cgroup.attach(probe.pid)
        yield request.param, cgroup, probe
    finally:
        if probe is not None:
            probe.stop()
        leftovers = remove_cgroup_everywhere(name)
        assert not leftovers, "cgroups left behind: %s" % leftovers


def control_open(path, flags):
    try:
        os.close(os.open(path, flags))
    except OSError as exc:
        pytest.fail("%s does not open even outside the test's cgroup: %s" % (path, exc.strerror))


def test_the_defaults_refuse_the_disk_and_kmsg_but_not_dev_null_or_mknod(confined, loop_device, scratch):
    enforcement, cgroup, probe = confined
    _device, major, minor, node = loop_device
    control_open("/dev/kmsg", os.O_WRONLY)
    assert probe.run(["open", node, "r"]) == ["ok"]  # no rules yet: the probe's own open works

    cgroup.set_device_rules(allowed_rules())
    results = probe.run(["open", node, "r"], ["open", node, "rw"], ["open", "/dev/null", "rw"],
                        ["open", "/dev/zero", "r"], ["open", "/dev/kmsg", "w"],
                        ["mknod", os.path.join(scratch, "made-inside"), major, minor])
    assert results == ["EPERM", "EPERM", "ok", "ok", "EPERM", "ok"], enforcement


def test_a_device_passed_through_opens_and_fewer_rules_take_it_away(confined, loop_device):
    _enforcement, cgroup, probe = confined
    device, _major, _minor, node = loop_device
    extra, nodes = parse_devices([device + ":rw"])
    assert [(created.type, created.path) for created in nodes] == [("b", device)]

    cgroup.set_device_rules(allowed_rules(extra))
    assert probe.run(["open", node, "rw"], ["open", "/dev/null", "w"], ["open", "/dev/kmsg", "w"]) == [
        "ok", "ok", "EPERM"]

    cgroup.set_device_rules(allowed_rules())  # again, without it: the earlier rules are replaced
    assert probe.run(["open", node, "r"], ["open", "/dev/null", "w"]) == ["EPERM", "ok"]


def test_read_only_access_refuses_writing(confined, loop_device):
    _enforcement, cgroup, probe = confined
    device, _major, _minor, node = loop_device
    extra, _nodes = parse_devices([{"path": device, "access": "r"}])
    cgroup.set_device_rules(allowed_rules(extra))
    assert probe.run(["open", node, "r"], ["open", node, "w"], ["open", node, "rw"]) == ["ok", "EPERM", "EPERM"]


def test_what_the_kernel_holds_after_the_rules(confined):
    enforcement, cgroup, _probe = confined
    cgroup.set_device_rules(allowed_rules())
    cgroup.set_device_rules(allowed_rules())
    if enforcement == "v1":
        with open(os.path.join(cgroup.paths["devices"], "devices.list")) as handle:
            listed = handle.read().split("\n")
        assert sorted(filter(None, listed)) == sorted(rule.line() for rule in allowed_rules())
    else:
        # One program however often the rules are set: each call replaces the last one's.
        assert len(attached_device_programs(cgroup.paths["unified"])) == 1


def test_removing_the_cgroup_removes_it_everywhere(confined):
    enforcement, cgroup, probe = confined
    cgroup.set_device_rules(allowed_rules())
    directories = sorted(set(cgroup.paths.values()))
    if enforcement == "v1":
        assert os.path.join(CGROUP_ROOT, "devices", cgroup.name) in directories
    probe.stop()
    assert cgroup.remove(kill=True)
    assert [directory for directory in directories if os.path.exists(directory)] == []


def test_every_enforcement_this_host_has_is_tested():
    expected = {"hybrid": ["v1", "bpf"], "legacy": ["v1"], "unified": ["bpf"]}[LAYOUT]
    assert ENFORCEMENTS == expected, "this %s host lacks the v1 devices controller" % LAYOUT
