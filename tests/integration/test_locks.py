# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-container locks and races on the real kernel: containers converge side by side, one never twice.

Runs are module processes, as Ansible's forks (or two operators) start
them, or threads of this process where the time is measured (a flock is
taken per open file, so threads meet on it as processes do). The slow step
of a converge is a stop that waits out ``stop_timeout`` (a shell as PID 1
ignores SIGTERM): runs for different containers must wait for it side by
side, not one after another.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import signal
import sys
import threading
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, processes_with

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._container import launch, spec  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.compose import ensure_container  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (  # noqa: E402
    STATE_ROOT,
    process_start_time,
)

STOP_TIMEOUT = 4


@pytest.fixture
def names(run_module):
    made = []

    def new(count):
        made.extend("test-locks-%s" % uuid.uuid4().hex[:8] for _each in range(count))
        return made[-count:]
    yield new
    for name in made:
        assert not run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})["failed"]
        assert not os.path.exists(os.path.join(STATE_ROOT, name))


def in_threads(calls):
    """Call every function at once, each in a thread of its own; (results, seconds)."""
    results = [None] * len(calls)

    def one(index):
        results[index] = calls[index]()
    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(calls))]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - begun


def at_once(run_module, calls):
    """Run every (module, args) in a module process of its own, all at once; (results, seconds)."""
    return in_threads([lambda call=call: run_module(*call) for call in calls])


def test_eight_containers_stop_in_about_one_stop_timeout(run_module, rootfs, names):
    containers = names(8)
    for name in containers:
        # A shell as PID 1, which ignores SIGTERM: each stop waits STOP_TIMEOUT.
        result = run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started", "command": ["/bin/sh"],
                                        "stop_timeout": STOP_TIMEOUT})
        assert result["changed"], result
    # In this process, one thread per container: what is timed is the
    # locking, not eight interpreters starting (slow on an emulated host).
    results, seconds = in_threads([lambda name=name: ensure_state({"name": name, "state": "absent"})
                                   for name in containers])
    assert all(result["changed"] for result in results), results
    # One after another would take 8 x STOP_TIMEOUT; side by side, about one.
    assert seconds < 2 * STOP_TIMEOUT, seconds


def test_one_container_is_never_started_twice(run_module, rootfs, names):
    name, = names(1)
    marker = "locks-%s" % uuid.uuid4().hex[:8]
    # The marker in the shell's command line, which stays PID 1 (sleep runs as its child).
    args = {"name": name, "rootfs": rootfs, "state": "started",
            "command": ["/bin/sh", "-c", "sleep 1000; : %s" % marker]}
    results, _seconds = at_once(run_module, [("ns_exec", args)] * 4)
    assert all(not result["failed"] for result in results), results
    assert sorted(result["changed"] for result in results) == [False, False, False, True], results
    assert len(set(result["pid"] for result in results)) == 1, results
    assert len(processes_with(": %s" % marker)) == 1


def test_a_container_module_run_waits_for_a_slow_stop_of_the_same_container_only(run_module, rootfs, names):
    slow, other = names(2)
    for name in (slow, other):
        assert run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started", "command": ["/bin/sh"],
                                      "stop_timeout": STOP_TIMEOUT})["changed"]
    stopping = threading.Thread(target=ensure_container, args=({"name": slow, "state": "stopped"},))
    stopping.start()
    time.sleep(0.5)
    begun = time.monotonic()
    # The other container's converge does not queue behind the slow stop.
    other_result = ensure_container({"name": other, "rootfs": rootfs, "command": ["/bin/sh"],
                                     "stop_timeout": STOP_TIMEOUT})
    elapsed = time.monotonic() - begun
    stopping.join()
    assert not other_result["changed"], other_result
    assert elapsed < STOP_TIMEOUT / 2, elapsed
    # The same container's does: it sees the stop done.
    assert ensure_container({"name": slow, "state": "stopped"})["changed"] is False


def test_the_lock_files_live_in_a_directory_of_roots_and_are_not_followed(run_module, rootfs, names):
    name, = names(1)
    assert run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started",
                                  "command": ["/bin/sleep", "1000"]})["changed"]
    locks = os.path.join(STATE_ROOT, ".locks")
    info = os.lstat(locks)
    assert info.st_uid == 0 and info.st_mode & 0o777 == 0o700
    lock = os.path.join(locks, name)
    assert os.path.isfile(lock) and not os.path.islink(lock)
    # A symlink planted at the lock's name is refused, never followed.
    os.unlink(lock)
    target = os.path.join(str(rootfs), "planted-target")
    os.symlink(target, lock)
    try:
        result = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
        assert result["failed"] and "lock of container %s" % name in result["msg"] and "symlink" in result["msg"]
        assert not os.path.exists(target)
    finally:
        os.unlink(lock)


def test_an_exec_that_races_the_containers_exit_fails_clearly(run_module, rootfs, names, monkeypatch):
    # PID 1 exits between the check that it runs and the reading of its root
    # (/proc/<pid>/root): the exec says so instead of crashing.
    name, = names(1)
    pid = run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started",
                                 "command": ["/bin/sleep", "1000"]})["pid"]
    build_spec = spec.build_spec

    def exit_first(*args, **kwargs):
        os.kill(pid, signal.SIGKILL)
        while process_start_time(pid) is not None:
            time.sleep(0.01)
        return build_spec(*args, **kwargs)
    monkeypatch.setattr(spec, "build_spec", exit_first)
    with pytest.raises(ContainerError, match="container %s exited while exec started" % name):
        ensure_state({"name": name, "state": "exec", "command": ["/bin/true"]})


def state_root_lock_is_held():
    fd = os.open(STATE_ROOT, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_run_launches_under_the_state_root_lock_and_runs_without_it(rootfs, monkeypatch):
    # The lock a tree swap takes: a run must not launch on a tree being
    # swapped, and must not hold every other launch up while it runs.
    seen = []
    original = launch.launch

    def probing(*args, **kwargs):
        seen.append(("launching", state_root_lock_is_held()))
        return original(*args, **kwargs)
    monkeypatch.setattr(launch, "launch", probing)
    result = {}
    running = threading.Thread(target=lambda: result.update(ensure_state(
        {"rootfs": rootfs, "command": ["/bin/sleep", "2"]})))
    running.start()
    time.sleep(1)
    seen.append(("running", state_root_lock_is_held()))
    running.join()
    assert result["rc"] == 0 and seen == [("launching", True), ("running", False)], (seen, result)
