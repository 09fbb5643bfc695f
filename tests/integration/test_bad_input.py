# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: a sentence that names the option, the value and the fix, and nothing left behind.

Each case runs through the real module (``run_module``), for ``run`` and for
``started``, and then checks from outside that the failure left nothing: no
state directory, no cgroup of the container's own in any hierarchy, no
mount, no new file in the rootfs, no process. Each comment says what the
module answered before.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import sys
import tempfile
import uuid

import pytest

from conftest import COLLECTIONS_PATH, host_mounts, processes_with

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT  # noqa: E402

CGROUP_ROOT = "/sys/fs/cgroup"


def _own_cgroups(name):
    """Directories of the container's own cgroup that exist, in every hierarchy."""
    found = []
    for hierarchy in sorted(os.listdir(CGROUP_ROOT)):
        for candidate in (os.path.join(CGROUP_ROOT, hierarchy, "handmade", "containers", name),
                          os.path.join(CGROUP_ROOT, "handmade", "containers", name)):
            if os.path.isdir(candidate):
                found.append(candidate)
    return sorted(set(found))


def _tree(root):
    return sorted(os.path.relpath(os.path.join(top, entry), root)
                  for top, dirs, files in os.walk(root) for entry in dirs + files)


@pytest.fixture
def noexec_rootfs(busybox_rootfs):
    """The fixture rootfs copied onto a tmpfs mounted noexec."""
    mount_point = tempfile.mkdtemp(prefix="test-bad-input-noexec-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=64m", "tmpfs", mount_point], check=True)
    try:
        copy = os.path.join(mount_point, "rootfs")
        subprocess.run(["cp", "-a", busybox_rootfs, copy], check=True)
        yield copy
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)
        os.rmdir(mount_point)


def _assert_fails_and_leaves_nothing(run_module, rootfs, state, args, expected):
    name = "test-bad-input-%s" % uuid.uuid4().hex[:8]
    marker = "bad-input-%s" % uuid.uuid4().hex[:8]
    params = dict({"rootfs": rootfs, "command": ["/bin/sleep", "60", marker], "state": state}, **args)
    if state != "run":
        params["name"] = name
    mounts, tree = host_mounts(), _tree(rootfs)
    try:
        result = run_module("ns_exec", params)
        assert result["failed"], result
        for text in expected:
            assert text in result["msg"], result["msg"]
        assert not os.path.lexists(os.path.join(STATE_ROOT, name))
        assert _own_cgroups(name) == []
        assert host_mounts() == mounts
        assert _tree(rootfs) == tree
        assert processes_with(marker) == []
    finally:
        if state != "run":
            run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})


BAD_INPUT = [
    # Before: "'dict' object has no attribute 'read'".
    ({"command": {"a": 1}}, ["command must be a list of strings or a string", "dict"]),
    ({"command": ["/bin/echo", {"a": 1}]}, ["command argument 1 is a dict"]),
    ({"command": ["/bin/echo", "a\0b"]}, ["command argument 1 holds a NUL byte"]),
    ({"command": "echo 'unterminated"}, ["cannot be split", "give it as a list"]),
    # Before: "gid is less than minimum", from the child after the fork.
    ({"user": "99999999999"}, ["user 99999999999", "uid 99999999999 is out of range", "4294967294"]),
    ({"user": "0:4294967295"}, ["gid 4294967295 is out of range"]),
    ({"env": {"A": {"nested": 1}}}, ["env A is a dict", "to_json"]),
    ({"env": {"A=B": "x"}}, ["env name 'A=B'", "no '='"]),
    ({"stop_timeout": -1}, ["stop_timeout -1", "0 or more"]),
    ({"stop_timeout": float("inf")}, ["stop_timeout inf", "finite"]),
    # Before: a state directory stayed behind for a started container.
    ({"cgroup": "handmade/test-bad-input-missing"}, ["does not exist", "handmade.containers.cgroup"]),
]


@pytest.mark.parametrize("state", ["run", "started"])
@pytest.mark.parametrize("args, expected", BAD_INPUT, ids=[str(args) for args, _expected in BAD_INPUT])
def test_bad_input_names_the_problem_and_leaves_nothing(run_module, rootfs, state, args, expected):
    _assert_fails_and_leaves_nothing(run_module, rootfs, state, args, expected)


@pytest.mark.parametrize("state", ["run", "started"])
def test_a_rootfs_on_a_noexec_mount_is_named_as_such(run_module, noexec_rootfs, state):
    # Before: "exec /bin/sleep in rootfs ...: Permission denied", from the child.
    mount_point = os.path.dirname(noexec_rootfs)
    _assert_fails_and_leaves_nothing(run_module, noexec_rootfs, state, {}, [
        "mounted noexec (at %s)" % mount_point, "mount -o remount,exec %s" % mount_point])
