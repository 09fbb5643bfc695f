# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's interpreter is never within reach of a container (the CVE-2019-5736 pattern).

Between joining a container and ``execve``, ns_exec's child is the host's
``python3``. A root process inside that watches /proc could take hold of
that executable through ``/proc/PID/exe`` and, once no python3 runs,
overwrite it: the next Ansible task would run the container's code as root
on the host. runc marks its init non-dumpable and re-executes from a sealed
copy; ns_exec's children are non-dumpable from the fork until ``execve``,
so /proc hands nothing of theirs to a process without CAP_SYS_PTRACE.

The watcher is probes/exe_watcher.c; the interpreter it hunts is a private
copy of the host's python3 that runs the module for these tests only, so
even a runtime without the protection never has the real one overwritten.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, MODULE_PACKAGE, _module_env, private_rootfs_copy

PROBES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes")
if PROBES_DIR not in sys.path:
    sys.path.insert(0, PROBES_DIR)
if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

import build_probes  # noqa: E402 (needs the path above)
from ansible_collections.handmade.containers.plugins.module_utils._container import lifecycle  # noqa: E402

WATCHER_IN_ROOTFS = "/exe_watcher"
# The watcher stops when this file appears (the rootfs is the host's
# directory), or after WATCH_SECONDS at most.
STOP_FILE = "/stop-watching"
WATCH_SECONDS = 600
# Exec calls made while it watches: through the module (a fresh interpreter
# each), and in-process (many more in the same time).
MODULE_EXECS = 12
IN_PROCESS_EXECS = 150


@pytest.fixture(scope="module")
def rootfs(busybox_rootfs):
    """A private copy of the fixture rootfs, with the watcher at /exe_watcher."""
    try:
        program = build_probes.probe_program("exe_watcher")
    except build_probes.ProbeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with private_rootfs_copy(busybox_rootfs, "test-exec-sealed-rootfs-", [(program, WATCHER_IN_ROOTFS)]) as copy:
        yield copy


@pytest.fixture
def private_interpreter():
    """A copy of the host's python3 under a unique name: (path, marker, sha256 of its bytes)."""
    marker = "python3-sealed-%s" % uuid.uuid4().hex[:8]
    parent = tempfile.mkdtemp(prefix="test-exec-sealed-python-")
    path = os.path.join(parent, marker)
    try:
        shutil.copy2(os.path.realpath(sys.executable), path)
        yield path, marker, _sha256(path)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def container_name():
    name = "test-exec-sealed-%s" % uuid.uuid4().hex[:8]
    yield name
    lifecycle.ensure_state({"name": name, "state": "absent", "stop_timeout": 0})


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _module_with(interpreter, args):
    """Run ns_exec once with ``interpreter``, as Ansible does with ansible_python_interpreter."""
    env = _module_env()
    # The copy is outside any virtualenv: give it this one's packages (ansible).
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], sysconfig.get_paths()["purelib"]])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        proc = subprocess.run([interpreter, "-m", MODULE_PACKAGE + ".ns_exec", handle.name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120,
                              check=False)
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(proc.stdout.decode())
    except ValueError:
        raise AssertionError("ns_exec printed no JSON (rc=%d): %s" % (proc.returncode, proc.stderr.decode()[-2000:]))
    assert not result.get("failed"), result
    return result


def _watch_report(name, rootfs, timeout=60):
    """Stop the watcher; its output once it has exited (its container's log)."""
    with open(rootfs + STOP_FILE, "w"):
        pass
    deadline = time.monotonic() + timeout
    while True:
        facts = lifecycle.ensure_state({"name": name, "state": "stopped"}, check_mode=True)
        if not facts["changed"]:  # nothing to stop: the watcher has exited
            break
        assert time.monotonic() < deadline, "the watcher did not finish in %d s" % timeout
        time.sleep(0.5)
    os.unlink(rootfs + STOP_FILE)
    with open(facts["log_path"]) as handle:
        return handle.read()


def _summary(report):
    last = report.strip().splitlines()[-1].split()
    assert last[0] == "scans", report
    return dict(zip(last[0::2], (int(value) for value in last[1::2])))


def test_a_watcher_inside_never_reaches_the_interpreter_of_exec_nor_overwrites_it(
        rootfs, private_interpreter, container_name):
    interpreter, marker, digest = private_interpreter
    # Docker's default capabilities: no CAP_SYS_PTRACE, but CAP_DAC_OVERRIDE,
    # which is what lets root inside write a host file it holds.
    _module_with(interpreter, {"name": container_name, "state": "started", "rootfs": rootfs,
                               "command": [WATCHER_IN_ROOTFS, str(WATCH_SECONDS), marker, STOP_FILE]})
    for _call in range(MODULE_EXECS):
        _module_with(interpreter, {"name": container_name, "state": "exec", "command": ["/bin/true"]})
    report = _watch_report(container_name, rootfs)
    summary = _summary(report)
    assert summary["scans"] > 1000, report[-2000:]
    # Before: "seen /tmp/.../python3-sealed-..." (readlink of the exec
    # child's exe worked between the capability drop and execve), then
    # "held" and, once the module had exited, "written": the copy of the
    # interpreter began with "attack".
    assert summary["seen"] == 0 and summary["held"] == 0, report[-2000:]
    assert _sha256(interpreter) == digest


def test_a_hundred_execs_and_more_show_the_watcher_no_process_of_the_host(rootfs, container_name):
    # The same from this test's own Python, calling the runtime in-process:
    # many more exec calls in the same time, each one a chance for the
    # watcher to catch the child before execve.
    lifecycle.ensure_state({"name": container_name, "state": "started", "rootfs": rootfs,
                            "command": [WATCHER_IN_ROOTFS, str(WATCH_SECONDS), "no-marker-here", STOP_FILE]})
    for _call in range(IN_PROCESS_EXECS):
        result = lifecycle.ensure_state({"name": container_name, "state": "exec", "command": ["/bin/true"]})
        assert result["rc"] == 0, result
    summary = _summary(_watch_report(container_name, rootfs))
    assert summary["seen"] == 0, summary


def test_the_containers_own_processes_stay_readable_to_it(rootfs, container_name):
    # Non-dumpable ends at execve: the container's PID 1 and exec'd
    # processes are ordinary processes inside, as under Docker.
    lifecycle.ensure_state({"name": container_name, "state": "started", "rootfs": rootfs,
                            "command": ["/bin/sleep", "60"]})
    result = lifecycle.ensure_state({"name": container_name, "state": "exec", "command": [
        "/bin/sh", "-c", "readlink /proc/1/exe && tr '\\0' ' ' < /proc/1/environ | grep -q PATH= && "
                         "readlink /proc/self/exe"]})
    assert result["rc"] == 0, result
    lines = result["stdout"].splitlines()
    assert lines[0] == "/bin/busybox" and lines[1] == "/bin/busybox", result
