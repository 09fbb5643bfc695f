# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor on the real kernel: exit codes, restart policies, back-off, kill -9 of everything around it.

A detached container's supervisor (supervisor.py) is the parent of its PID
1. Each test kills or ends something for real (PID 1 with SIGKILL, the
supervisor itself, the ansible-playbook process that started it) and
reads what the kernel and status.json say afterwards, with no Ansible run
in between unless the test is about the next converge.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, HOST_PYTHON

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._container import (  # noqa: E402
    boot,
    placement,
    runtime,
    supervise,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (  # noqa: E402
    STATE_ROOT,
    StateDir,
    process_start_time,
)

# How soon a killed `always` container must run again. The fleet VMs
# emulate their CPU (an interpreter starts 30 times slower there), and
# tests/vm/run-integration.sh gives them their own figure.
RESTART_DEADLINE = float(os.environ.get("HANDMADE_RESTART_DEADLINE", "2"))
# How long anything else may take to happen.
PATIENCE = 120.0


@pytest.fixture
def name(run_module):
    container = "test-supervisor-%s" % uuid.uuid4().hex[:8]
    yield container
    result = run_module("ns_exec", {"name": container, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, container))
    assert supervise.find_supervisors(StateDir(container)) == []


def start(run_module, name, rootfs, command, **extra):
    result = run_module("ns_exec", dict({"name": name, "rootfs": rootfs, "state": "started", "command": command},
                                        **extra))
    assert result["changed"] and not result["failed"], result
    return result


def status(name):
    return supervise.read_status(StateDir(name))


def record(name):
    return StateDir(name).read()


def wait_for(predicate, timeout=PATIENCE, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def info(run_module, name):
    result = run_module("container_info", {"name": name})
    assert not result["failed"] and not result["changed"], result
    return result["containers"][0]


def supervisor_of(name):
    found = wait_for(lambda: supervise.find_supervisors(StateDir(name)))
    assert len(found) == 1, found
    return found[0][0]


def gone(name):
    return not supervise.find_supervisors(StateDir(name))


def test_always_runs_again_within_the_deadline_after_kill_9_of_pid_1(run_module, rootfs, name):
    first = start(run_module, name, rootfs, ["/bin/sleep", "1000"], restart_policy="always")["pid"]
    supervisor_of(name)
    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)

    def running_again():
        current = record(name)
        return current is not None and current.pid != first and current.is_running()
    assert wait_for(running_again, timeout=RESTART_DEADLINE + 1), status(name)
    took = time.monotonic() - killed_at
    assert took < RESTART_DEADLINE, "restarted after %.2f s" % took
    wait_for(lambda: status(name).get("restart_count") == 1)
    facts = info(run_module, name)
    assert facts["state"] == "running" and facts["restart_count"] == 1 and facts["restart_policy"] == "always"
    assert facts["pid"] == record(name).pid and facts["finished_at"] is not None, facts
    # The same supervisor, parent of the new PID 1 too (a subreaper).
    with open("/proc/%d/stat" % facts["pid"]) as handle:
        assert int(handle.read().rsplit(")", 1)[1].split()[1]) == supervisor_of(name)
    # The next converge sees it as started: nothing to do.
    again = run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started",
                                   "command": ["/bin/sleep", "1000"], "restart_policy": "always"})
    assert not again["changed"], again


def test_no_stays_exited_with_its_exit_code_and_finished_at(run_module, rootfs, name):
    start(run_module, name, rootfs, ["/bin/sh", "-c", "exit 7"])
    assert wait_for(lambda: gone(name) and status(name).get("state") == "exited"), status(name)
    facts = info(run_module, name)
    assert facts["state"] == "exited" and facts["exit_code"] == 7 and facts["restart_count"] == 0, facts
    assert facts["finished_at"].endswith("Z") and facts["oom_killed"] is False, facts


def test_on_failure_leaves_an_exit_0_exited(run_module, rootfs, name):
    start(run_module, name, rootfs, ["/bin/sh", "-c", "exit 0"], restart_policy="on-failure")
    assert wait_for(lambda: gone(name)), status(name)
    assert status(name)["exit_code"] == 0 and status(name)["restart_count"] == 0, status(name)


def test_on_failure_restarts_a_failure_at_most_restart_retries_times(run_module, rootfs, name):
    start(run_module, name, rootfs, ["/bin/sh", "-c", "exit 3"], restart_policy="on-failure", restart_retries=2)
    assert wait_for(lambda: gone(name)), status(name)
    final = status(name)
    assert final["state"] == "exited" and final["exit_code"] == 3 and final["restart_count"] == 2, final


def test_restarts_back_off_doubling_and_a_stop_ends_them(run_module, rootfs, name):
    # Without the back-off a command that fails at once would be started
    # again as fast as the launcher can (dozens of times in these 3 s).
    start(run_module, name, rootfs, ["/bin/sh", "-c", "exit 1"], restart_policy="always")
    assert wait_for(lambda: status(name).get("restart_count", 0) >= 1), status(name)
    time.sleep(3.0)
    count = status(name)["restart_count"]
    # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of back-off: at most 5 restarts in the
    # first 3.1 s after the first, however fast the host.
    assert 1 <= count <= 6, status(name)
    assert info(run_module, name)["state"] in ("restarting", "running")
    stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
    assert stopped["changed"] and not stopped["failed"], stopped
    assert gone(name)
    count = status(name)["restart_count"]
    time.sleep(1.0)
    assert status(name)["restart_count"] == count and not record(name).is_running()
    assert info(run_module, name)["state"] == "exited"


def test_a_container_stopped_by_a_task_stays_stopped(run_module, rootfs, name):
    first = start(run_module, name, rootfs, ["/bin/sleep", "1000"], restart_policy="always")["pid"]
    supervisor = supervisor_of(name)
    stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
    assert stopped["changed"] and not stopped["failed"], stopped
    assert process_start_time(first) is None and process_start_time(supervisor) is None
    time.sleep(0.5)
    assert not record(name).is_running()
    final = status(name)
    assert final["state"] == "exited" and final["stopped_by_hand"] is True and final["exit_code"] == 137, final


def test_kill_9_of_the_supervisor_is_repaired_by_the_next_converge(run_module, rootfs, name):
    # PID 1 prints a line on SIGUSR1: the log must reach container.log
    # through the new supervisor, which reads the same pipe.
    command = ["/bin/sh", "-c", "trap 'echo got-usr1' USR1; while :; do sleep 1 & wait; done"]
    args = {"name": name, "rootfs": rootfs, "state": "started", "command": command, "restart_policy": "always"}
    first = start(run_module, name, rootfs, command, restart_policy="always")["pid"]
    old = supervisor_of(name)
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: process_start_time(old) is None)
    assert record(name).is_running() and record(name).pid == first  # the container was not lost
    repaired = run_module("ns_exec", args)
    assert repaired["changed"] and repaired["repaired"] and repaired["pid"] == first, repaired
    new = supervisor_of(name)
    assert new != old
    assert not run_module("ns_exec", args)["changed"]
    os.kill(first, signal.SIGUSR1)
    log = os.path.join(STATE_ROOT, name, "container.log")
    assert wait_for(lambda: "got-usr1" in open(log).read(), timeout=PATIENCE), open(log).read()
    # The adopted container is still restarted by its policy, and its next PID 1 is the new supervisor's child.
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: record(name).pid != first and record(name).is_running()), status(name)
    assert wait_for(lambda: status(name).get("restart_count") == 1), status(name)
    with open("/proc/%d/stat" % record(name).pid) as handle:
        assert int(handle.read().rsplit(")", 1)[1].split()[1]) == new


PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      tasks:
        - handmade.containers.ns_exec:
            name: {name}
            rootfs: {rootfs}
            state: started
            command: [/bin/sleep, "1000"]
            restart_policy: always
        - ansible.builtin.command: touch {marker}
        - ansible.builtin.pause:
            seconds: 600
""")


def test_the_supervisor_survives_kill_9_of_the_ansible_run_that_started_it(tmp_path, rootfs, name):
    marker = tmp_path / "started"
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK.format(name=name, rootfs=rootfs, marker=marker))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_PYTHON_INTERPRETER=HOST_PYTHON,
               ANSIBLE_NOCOLOR="1")
    output = tmp_path / "output"
    with open(str(output), "wb") as sink:
        run = subprocess.Popen(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)],
                               stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    try:
        assert wait_for(lambda: marker.exists() or run.poll() is not None, timeout=PATIENCE) and marker.exists(), \
            "the playbook did not get to its pause:\n" + output.read_text()
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    supervisor = supervisor_of(name)
    first = record(name).pid
    assert record(name).is_running()
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: record(name).pid != first and record(name).is_running()), status(name)
    assert wait_for(lambda: status(name).get("restart_count") == 1), status(name)
    assert supervisor_of(name) == supervisor


@pytest.mark.parametrize("args, message", [
    ({"restart_policy": "sometimes"}, "restart_policy"),
    ({"restart_policy": "on-failure", "restart_retries": -1}, "restart_retries -1 is out of range"),
    ({"restart_policy": "always", "restart_retries": 3}, "restart_retries is for restart_policy=on-failure only"),
])
def test_bad_restart_settings_fail_clearly_and_leave_nothing(run_module, rootfs, name, args, message):
    result = run_module("ns_exec", dict({"name": name, "rootfs": rootfs, "state": "started",
                                         "command": ["/bin/sleep", "1000"]}, **args))
    assert result["failed"] and message in result["msg"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, name))
    assert gone(name)


def test_a_restart_policy_with_state_run_is_refused(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "state": "run", "command": ["/bin/true"],
                                    "restart_policy": "always"})
    assert result["failed"] and "restart_policy always is for state=started" in result["msg"], result


def test_status_json_is_the_supervisors_alone(run_module, rootfs, name):
    start(run_module, name, rootfs, ["/bin/sleep", "1000"])
    supervisor = supervisor_of(name)
    wait_for(lambda: status(name).get("supervisor_pid") == supervisor)
    path = os.path.join(STATE_ROOT, name, "status.json")
    info_ = os.lstat(path)
    assert info_.st_uid == 0 and info_.st_mode & 0o077 == 0, oct(info_.st_mode)
    with open(path) as handle:
        assert json.load(handle)["state"] == "running"


def _power_off(name):
    """What a reboot does to a container: every process gone, /run empty, its cgroup gone."""
    for pid, _start_time in supervise.find_supervisors(StateDir(name)):
        os.kill(pid, signal.SIGKILL)
    current = record(name)
    if current is not None and current.is_running():
        os.kill(current.pid, signal.SIGKILL)
        assert wait_for(lambda: not current.is_running())
    assert wait_for(lambda: gone(name))
    shutil.rmtree(os.path.join(STATE_ROOT, name))
    placement.reopen(current.cgroup, True).remove()


def test_a_boot_starts_always_and_unless_stopped_ones_and_leaves_the_rest(run_module, rootfs, request):
    # label: (restart policy, stopped by a task before the reboot)
    cases = {"always": ("always", False), "unless-stopped": ("unless-stopped", False), "no": ("no", False),
             "always-stopped": ("always", True), "unless-stopped-stopped": ("unless-stopped", True)}
    names = dict((label, "test-supervisor-boot-%s" % uuid.uuid4().hex[:8]) for label in cases)

    def remove_all():
        for each in names.values():
            run_module("ns_exec", {"name": each, "state": "absent", "stop_timeout": 0})
            assert boot.read(each) is None
    request.addfinalizer(remove_all)
    for label, (policy, stopped) in cases.items():
        start(run_module, names[label], rootfs, ["/bin/sleep", "1000"], restart_policy=policy)
        if stopped:
            assert run_module("ns_exec", {"name": names[label], "state": "stopped", "stop_timeout": 0})["changed"]
    assert boot.read(names["no"]) is None
    assert boot.read(names["unless-stopped-stopped"])["stopped_by_hand"] is True
    for each in names.values():
        _power_off(each)
    # What the unit's ExecStart runs, from the runtime directory.
    argv = runtime.command(runtime.install(), "_container.boot", python=HOST_PYTHON) + ["start"]
    booted = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600, check=False)
    assert booted.returncode == 0, booted.stderr.decode()
    for label, each in names.items():
        current = record(each)
        expected = label in ("always", "unless-stopped", "always-stopped")
        assert (current is not None and current.is_running()) is expected, (label, booted.stdout)
        if expected:
            assert supervisor_of(each) and wait_for(lambda: status(each).get("restart_count") == 0)
