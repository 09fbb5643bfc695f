# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks on the real kernel: run by the supervisor inside the container, as Docker runs them.

Each test starts a detached container with a ``healthcheck`` and reads
what the supervisor recorded (status.json, container_info) while the
checks run for real: processes entering the container's namespaces and
cgroup, with its seccomp filter and capabilities, killed at their timeout.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal
import sys
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container import supervise  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (  # noqa: E402
    STATE_ROOT,
    StateDir,
)

# How long anything may take to happen (the fleet VMs emulate their CPU:
# each check starts an interpreter, 30 times slower there).
PATIENCE = 180.0


@pytest.fixture
def name(run_module):
    container = "test-health-%s" % uuid.uuid4().hex[:8]
    yield container
    result = run_module("ns_exec", {"name": container, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, container))
    assert supervise.find_supervisors(StateDir(container)) == []


def start(run_module, name, rootfs, healthcheck, command=("/bin/sleep", "1000"), **extra):
    result = run_module("ns_exec", dict({"name": name, "rootfs": rootfs, "state": "started",
                                         "command": list(command), "healthcheck": healthcheck}, **extra))
    assert not result["failed"], result
    return result


def health(name):
    return supervise.read_status(StateDir(name)).get("health") or {}


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


def container_pids(name):
    return sorted(open_cgroup(StateDir(name).read().cgroup).pids())


def test_wait_healthy_returns_once_the_check_passes(run_module, rootfs, name):
    began = time.monotonic()
    result = start(run_module, name, rootfs, {"test": "test -e /tmp/ready", "interval": "100ms",
                                              "start_period": "5m"},
                   command=["/bin/sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"], wait_healthy=True)
    assert time.monotonic() - began >= 1.0
    assert result["changed"] and result["health"]["status"] == "healthy", result
    assert result["health"]["log"][-1]["exit_code"] == 0
    facts = info(run_module, name)
    assert facts["health"]["status"] == "healthy" and facts["health"]["failing_streak"] == 0, facts
    entries = facts["health"]["log"]
    assert 1 <= len(entries) <= 5
    assert all(entry["start"].endswith("Z") and entry["end"] >= entry["start"] for entry in entries), entries
    # Failures before the first success fell within start_period: they never counted.
    assert all(entry["exit_code"] in (0, 1) for entry in entries), entries

    # The same task again: nothing to do, and it is healthy at once.
    again = start(run_module, name, rootfs, {"test": "test -e /tmp/ready", "interval": 0.1, "start_period": 300},
                  command=["/bin/sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"], wait_healthy=True)
    assert not again["changed"] and again["health"]["status"] == "healthy", again


def test_a_failing_check_turns_unhealthy_after_retries_and_keeps_the_last_five(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": "echo broken >&2; exit 3", "interval": "300ms", "retries": 3})
    seen = []

    def unhealthy():
        found = health(name)
        seen.append((found.get("status"), found.get("failing_streak")))
        return found.get("status") == "unhealthy"
    assert wait_for(unhealthy), seen
    # starting while the streak was below retries, unhealthy from the third failure on.
    assert all(status == "starting" for status, streak in seen if streak is not None and streak < 3), seen
    assert all(streak >= 3 for status, streak in seen if status == "unhealthy"), seen
    last = health(name)["log"][-1]
    assert last["exit_code"] == 3 and last["output"] == "broken\n", last
    assert wait_for(lambda: health(name).get("failing_streak", 0) >= 7)
    facts = info(run_module, name)
    assert facts["state"] == "running" and facts["health"]["status"] == "unhealthy"
    assert len(facts["health"]["log"]) == 5, facts["health"]


def test_wait_healthy_fails_at_its_deadline_with_the_checks_output_and_leaves_it_running(run_module, rootfs, name):
    result = run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started", "command": ["/bin/sleep", "1000"],
                                    "healthcheck": {"test": ["CMD", "/bin/sh", "-c", "echo port 80 closed; exit 1"],
                                                    "interval": "100ms", "retries": 2},
                                    "wait_healthy": True, "wait_healthy_timeout": 3})
    assert result["failed"], result
    assert "is not healthy after 3 s" in result["msg"] and "port 80 closed" in result["msg"], result["msg"]
    assert "exited 1" in result["msg"], result["msg"]
    assert StateDir(name).read().is_running()
    assert supervise.find_supervisors(StateDir(name))


def test_wait_healthy_fails_when_the_container_exits_for_good(run_module, rootfs, name):
    began = time.monotonic()
    result = run_module("ns_exec", {"name": name, "rootfs": rootfs, "state": "started",
                                    "command": ["/bin/sh", "-c", "sleep 0.5; exit 4"],
                                    "healthcheck": {"test": "exit 1", "interval": "100ms"},
                                    "wait_healthy": True, "wait_healthy_timeout": 300})
    assert result["failed"] and "exited (exit code 4) before it was healthy" in result["msg"], result
    assert time.monotonic() - began < 200


def test_a_check_past_its_timeout_is_killed_and_counts_as_a_failure(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": ["sleep", "100"], "interval": "100ms", "timeout": "500ms",
                                     "retries": 1})
    assert wait_for(lambda: health(name).get("status") == "unhealthy"), health(name)
    last = health(name)["log"][-1]
    assert last["exit_code"] == -1 and last["output"] == "Health check exceeded timeout (0.5s)", last
    # Every check's sleep was killed with it: a check that hangs piles nothing up.
    pid1 = StateDir(name).read().pid
    assert wait_for(lambda: len([pid for pid in container_pids(name) if pid != pid1]) <= 1), container_pids(name)


def test_failures_within_start_period_do_not_count(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": "exit 1", "interval": "200ms", "retries": 1, "start_period": "3s"})
    started = time.monotonic()
    assert wait_for(lambda: len(health(name).get("log") or []) >= 2)
    if time.monotonic() - started < 2.5:
        assert health(name)["status"] == "starting" and health(name)["failing_streak"] == 0, health(name)
    assert wait_for(lambda: health(name).get("status") == "unhealthy"), health(name)
    assert time.monotonic() - started >= 2.5


def test_a_check_runs_inside_with_the_containers_restrictions(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": "hostname; grep -E '^(CapEff|Seccomp|NoNewPrivs)' /proc/self/status; "
                                             "cat /proc/self/oom_score_adj; cat /proc/self/cgroup; ls /proc",
                                     "interval": "200ms"}, hostname="probed", capabilities=["CHOWN"])
    assert wait_for(lambda: health(name).get("status") == "healthy"), health(name)
    output = health(name)["log"][-1]["output"]
    lines = output.splitlines()
    assert lines[0] == "probed", output
    assert "CapEff:\t0000000000000001" in lines, output  # CAP_CHOWN alone
    assert "Seccomp:\t2" in lines, output
    # Not the supervisor's immunity from the OOM killer.
    assert "0" in lines[lines.index("Seccomp:\t2") + 1:], output
    assert "-1000" not in lines, output
    # Its own cgroup namespace, and only the container's processes in its /proc.
    assert any(line.endswith(":/") for line in lines), output
    numeric = [line for line in lines if line.isdigit() and line != "0"]
    assert "1" in numeric and len(numeric) <= 5, output
    pid1 = StateDir(name).read().pid
    with open("/proc/%d/oom_score_adj" % pid1) as handle:
        assert handle.read().strip() == "0"


def test_a_restarted_container_checks_again_from_starting_and_pid_1_is_oom_killable(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": "true", "interval": "100ms"}, restart_policy="always")
    assert wait_for(lambda: health(name).get("status") == "healthy"), health(name)
    first = StateDir(name).read().pid
    os.kill(first, signal.SIGKILL)

    def restarted():
        found = StateDir(name).read()
        return found is not None and found.pid != first and found.is_running()
    assert wait_for(restarted), supervise.read_status(StateDir(name))
    assert wait_for(lambda: supervise.read_status(StateDir(name)).get("restart_count") == 1)
    assert wait_for(lambda: health(name).get("status") == "healthy")
    # The log starts again with the new run's checks.
    assert all(entry["exit_code"] == 0 for entry in health(name)["log"])
    # The restart launcher is the supervisor's child: the new PID 1 must
    # not inherit the supervisor's -1000, or the OOM killer spares it.
    with open("/proc/%d/oom_score_adj" % StateDir(name).read().pid) as handle:
        assert handle.read().strip() == "0"


def test_output_is_capped_and_a_background_child_of_a_check_is_killed(run_module, rootfs, name):
    start(run_module, name, rootfs, {"test": "sleep 1000 & yes 0123456789 | head -c 100000",
                                     "interval": "200ms", "retries": 1})
    assert wait_for(lambda: health(name).get("status") == "healthy"), health(name)
    assert len(health(name)["log"][-1]["output"]) == 4096
    pid1 = StateDir(name).read().pid
    assert wait_for(lambda: len([pid for pid in container_pids(name) if pid != pid1]) <= 2), container_pids(name)


def test_a_repaired_supervisor_goes_on_with_the_health_it_had(run_module, rootfs, name):
    command = ["/bin/sleep", "1000"]
    check = {"test": "true", "interval": "100ms"}
    start(run_module, name, rootfs, check, command=command)
    assert wait_for(lambda: len(health(name).get("log") or []) >= 2)
    supervisor = supervise.find_supervisors(StateDir(name))[0][0]
    os.kill(supervisor, signal.SIGKILL)
    assert wait_for(lambda: not supervise.find_supervisors(StateDir(name)))
    repaired = start(run_module, name, rootfs, check, command=command)
    assert repaired["changed"] and repaired["repaired"], repaired
    assert health(name)["status"] == "healthy"
    count = len(health(name)["log"])
    stamp = health(name)["log"][-1]["end"]
    assert wait_for(lambda: health(name)["log"][-1]["end"] > stamp), health(name)
    assert len(health(name)["log"]) >= count


def test_the_same_check_spelled_otherwise_is_the_same_container_and_another_recreates(run_module, rootfs, name):
    first = start(run_module, name, rootfs, {"test": "true", "interval": "1m30s", "timeout": "30s"})
    same = start(run_module, name, rootfs, {"test": ["CMD-SHELL", "true"], "interval": 90, "retries": 3})
    assert not same["changed"] and same["pid"] == first["pid"], same
    other = start(run_module, name, rootfs, {"test": "exit 0", "interval": "100ms"}, wait_healthy=True)
    assert other["changed"] and other["recreated"] and "healthcheck" in other["changed_settings"], other
    # Waited for on the new run's checks, not mistaken for the old run's exit.
    assert other["health"]["status"] == "healthy", other
    for _round in range(3):
        stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
        assert stopped["changed"], stopped
        again = start(run_module, name, rootfs, {"test": "exit 0", "interval": "100ms"}, wait_healthy=True)
        assert again["changed"] and again["health"]["status"] == "healthy", again


@pytest.mark.parametrize("extra, fragment", [
    ({"healthcheck": {"test": "true", "interval": 0}}, "healthcheck.interval must be at least 1ms"),
    ({"healthcheck": {"test": "true", "timeout": "0s"}}, "healthcheck.timeout must be at least 1ms"),
    ({"healthcheck": {"test": "true", "retries": -1}}, "healthcheck.retries -1 must be a whole number"),
    ({"healthcheck": {"test": "true", "interval": "5 minutes"}}, "is not a duration"),
    ({"healthcheck": {"test": ""}}, "healthcheck.test is empty"),
    ({"healthcheck": {"test": ["NONE"]}}, "leave healthcheck out"),
    ({"wait_healthy": True}, "wait_healthy needs a healthcheck"),
    ({"healthcheck": {"test": "true"}, "wait_healthy": True, "wait_healthy_timeout": -1},
     "wait_healthy_timeout -1"),
])
def test_bad_health_settings_are_refused_and_leave_nothing(run_module, rootfs, name, extra, fragment):
    params = dict({"name": name, "rootfs": rootfs, "state": "started", "command": ["/bin/sleep", "1000"]}, **extra)
    result = run_module("ns_exec", params)
    assert result["failed"] and fragment in result["msg"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, name))
    assert not open_cgroup("handmade/containers/%s" % name).exists()


def test_a_check_is_refused_for_run(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "state": "run", "command": ["true"],
                                    "healthcheck": {"test": "true"}})
    assert result["failed"] and "healthcheck is for state=started" in result["msg"], result


def test_the_container_module_through_ansible_waits_for_health_too(ansible_module, rootfs, name):
    """Through Ansible: the probe runs from the runtime that AnsiballZ's payload installs."""
    params = {"name": name, "rootfs": rootfs, "state": "started", "command": ["/bin/sleep", "1000"],
              "healthcheck": {"test": ["CMD", "true"], "interval": "100ms"}, "wait_healthy": True,
              "wait_healthy_timeout": 60}
    result = ansible_module("container", params)
    assert not result["failed"] and result["changed"], result
    assert result["health"]["status"] == "healthy" and result["health"]["log"][-1]["end"].endswith("Z"), result
    assert result["info"]["health"]["status"] == "healthy" and result["info"]["state"] == "running", result
    again = ansible_module("container", params)
    assert not again["failed"] and not again["changed"] and again["health"]["status"] == "healthy", again
    checked = ansible_module("container", params, check_mode=True)
    assert not checked["failed"] and not checked["changed"] and "health" not in checked, checked
    assert checked["info"]["pid"] == result["pid"], checked
