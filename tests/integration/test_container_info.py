# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_info on the real kernel: what it says of running, stopped, OOM-killed and absent containers.

Each fact is checked against the kernel read here (the pid's namespaces,
its start), the log against what the container printed, and the bounds
against a container that floods its log. Nothing it reads may be followed
through a symlink.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH

import sys

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._container import inspect  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (  # noqa: E402
    STATE_ROOT,
    StateDir,
)

HUNDRED_LINES = "for i in $(seq 100); do echo line$i; done; exec sleep 1000"


@pytest.fixture
def names(run_module):
    """A factory of unique container names; every container made is removed afterwards."""
    made = []

    def new():
        made.append("test-info-%s" % uuid.uuid4().hex[:8])
        return made[-1]
    yield new
    for name in made:
        result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
        assert not result["failed"], result
        assert not os.path.exists(os.path.join(STATE_ROOT, name))


def start(run_module, name, rootfs, command, **extra):
    result = run_module("ns_exec", dict({"name": name, "rootfs": rootfs, "state": "started", "command": command},
                                        **extra))
    assert result["changed"] and not result["failed"], result
    return result


def info(run_module, **args):
    result = run_module("container_info", args)
    assert not result["failed"] and result["changed"] is False, result
    return result


def wait_for_log(path, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return
        time.sleep(0.05)
    raise AssertionError("%s never held %r" % (path, text))


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def test_a_running_container_as_the_kernel_sees_it(run_module, rootfs, names):
    name = names()
    started = start(run_module, name, rootfs, ["/bin/sh", "-c", HUNDRED_LINES])
    result = info(run_module, name=name)
    assert result["exists"] is True and len(result["containers"]) == 1, result
    facts = result["containers"][0]
    assert facts["name"] == name and facts["state"] == "running" and facts["running"] is True
    assert facts["pid"] == started["pid"]
    for kind in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        assert facts["namespaces"][kind] == os.readlink("/proc/%d/ns/%s" % (facts["pid"], kind))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - parse_iso(facts["started_at"])).total_seconds()) < 30, facts
    assert abs((parse_iso(facts["created_at"]) - parse_iso(facts["started_at"])).total_seconds()) < 2, facts
    assert facts["config"]["command"] == ["/bin/sh", "-c", HUNDRED_LINES]
    assert facts["config"]["init"] is False and facts["config"]["rootfs"] == rootfs
    assert facts["cgroup"] == "handmade/containers/%s" % name and facts["cgroup_owned"] is True
    assert facts["stats"]["memory_current"] > 0 and facts["stats"]["pids_current"] >= 1, facts["stats"]
    assert facts["stats"]["cpu_usage_usec"] is not None and facts["oom_killed"] is False, facts
    assert "logs" not in facts


def test_check_mode_through_the_task_executor_says_the_same(ansible_module, run_module, rootfs, names):
    name = names()
    start(run_module, name, rootfs, ["/bin/sleep", "1000"])
    checked = ansible_module("container_info", {"name": name}, check_mode=True)
    assert not checked["failed"] and checked["changed"] is False, checked
    assert checked["containers"][0]["pid"] == info(run_module, name=name)["containers"][0]["pid"]


def test_logs_tail_returns_the_last_lines_oldest_first(run_module, rootfs, names):
    name = names()
    log_path = start(run_module, name, rootfs, ["/bin/sh", "-c", HUNDRED_LINES])["log_path"]
    wait_for_log(log_path, "line100\n")
    assert info(run_module, name=name, logs_tail=3)["containers"][0]["logs"] == ["line98", "line99", "line100"]
    assert info(run_module, name=name, logs_tail=1000)["containers"][0]["logs"] == [
        "line%d" % number for number in range(1, 101)]


def test_logs_tail_reads_on_into_the_rotated_copies(run_module, rootfs, names):
    name = names()
    command = ["/bin/sh", "-c", "for i in $(seq 1000 1499); do echo line$i; done; exec sleep 1000"]
    log_path = start(run_module, name, rootfs, command, log_max_size="1k", log_max_files=4)["log_path"]
    wait_for_log(log_path, "line1499\n")
    assert os.path.exists(log_path + ".3") and not os.path.exists(log_path + ".4")
    logs = info(run_module, name=name, logs_tail=300)["containers"][0]["logs"]
    # Four files of 1k hold about 450 of these 500 lines: the 300 asked for
    # span them, in order, ending with the last.
    assert logs == ["line%d" % number for number in range(1200, 1500)], logs


def test_a_container_that_floods_its_log_cannot_swell_the_result(run_module, rootfs, names):
    name = names()
    # Eight megabytes in one line, never ended.
    command = ["/bin/sh", "-c", "head -c 8000000 /dev/zero | tr '\\0' x; exec sleep 1000"]
    log_path = start(run_module, name, rootfs, command, log_max_size="20m")["log_path"]
    deadline = time.monotonic() + 30
    while os.path.getsize(log_path) < 8000000 and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = info(run_module, name=name, logs_tail=10)["containers"][0]["logs"]
    assert len(logs) == 1 and logs[0].startswith("[cut] xxx") and len(logs[0]) <= 16 * 1024, len(logs[0])


def test_a_log_replaced_by_a_symlink_is_refused_not_followed(run_module, rootfs, names):
    name = names()
    log_path = start(run_module, name, rootfs, ["/bin/sleep", "1000"])["log_path"]
    os.unlink(log_path)
    os.symlink("/etc/shadow", log_path)
    result = run_module("container_info", {"name": name, "logs_tail": 5})
    assert result["failed"] and "container.log is a symlink, refused" in result["msg"], result
    assert "root:" not in str(result)
    os.unlink(log_path)


def test_a_stopped_container_is_exited_with_no_pid_and_its_usage_kept(run_module, rootfs, names):
    name = names()
    start(run_module, name, rootfs, ["/bin/sleep", "1000"])
    assert run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})["changed"]
    facts = info(run_module, name=name)["containers"][0]
    assert facts["state"] == "exited" and facts["running"] is False, facts
    assert facts["pid"] is None and facts["namespaces"] == {}
    # Stopped with stop_timeout 0: SIGKILL after SIGTERM, which a sleep as PID 1 never sees.
    assert facts["exit_code"] == 137 and facts["restart_count"] == 0 and facts["restart_policy"] == "no", facts
    started = datetime.datetime.strptime(facts["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    finished = datetime.datetime.strptime(facts["finished_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert started <= finished, facts
    # (Its processes' zombies count in pids_current until the host's init reaps them.)
    assert facts["stats"]["cpu_usage_usec"] is not None and facts["stats"]["pids_current"] is not None, facts


def test_an_oom_killed_container_says_so(run_module, rootfs, names):
    name = names()
    result = run_module("container", {"name": name, "rootfs": rootfs, "memory": "64M", "memory_swap": "64M",
                                      "command": ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=400M", "count=1"]})
    assert not result["failed"], result
    deadline = time.monotonic() + 20
    while info(run_module, name=name)["containers"][0]["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    facts = info(run_module, name=name)["containers"][0]
    assert facts["state"] == "exited" and facts["oom_killed"] is True and facts["exit_code"] == 137, facts
    assert facts["stats"]["oom_kill"] >= 1


def test_a_shared_cgroup_leaves_oom_killed_unknown(run_module, rootfs, names):
    name = names()
    cgroup = "handmade/test-info-shared-%s" % uuid.uuid4().hex[:6]
    assert not run_module("cgroup", {"name": cgroup})["failed"]
    try:
        start(run_module, name, rootfs, ["/bin/sleep", "1000"], cgroup=cgroup)
        facts = info(run_module, name=name)["containers"][0]
        assert facts["cgroup"] == cgroup and facts["cgroup_owned"] is False and facts["oom_killed"] is None, facts
    finally:
        run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
        assert not run_module("cgroup", {"name": cgroup, "state": "absent"})["failed"]


def test_without_a_name_every_container_and_an_unknown_name_none(run_module, rootfs, names):
    first, second = names(), names()
    for name in (first, second):
        start(run_module, name, rootfs, ["/bin/sleep", "1000"])
    listed = [facts["name"] for facts in info(run_module)["containers"]]
    assert first in listed and second in listed and listed == sorted(listed), listed
    unknown = info(run_module, name="test-info-never-made")
    assert unknown["exists"] is False and unknown["containers"] == []


@pytest.mark.parametrize("args, expected", [
    ({"logs_tail": 0}, "logs_tail must be a number of lines from 1 to 10000, not 0"),
    ({"logs_tail": 10001}, "logs_tail must be a number of lines from 1 to 10000"),
    ({"name": "bad/name"}, "invalid container name 'bad/name'"),
])
def test_bad_input_is_refused_with_the_fix(run_module, args, expected):
    result = run_module("container_info", args)
    assert result["failed"] and expected in result["msg"], result


def test_a_container_that_rotates_its_log_all_the_time_is_read_in_order(rootfs, names, run_module):
    # A rotation can happen between any two steps of a read: no file may
    # then be read twice (renamed to its next name) or refused (unlinked).
    name = names()
    command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); printf '%08d\\n' $i; done"]
    start(run_module, name, rootfs, command, log_max_size="1k", log_max_files=4)
    state_dir = StateDir(name)
    deadline = time.monotonic() + 5
    reads = 0
    while time.monotonic() < deadline:
        lines = [line for line in inspect.tail_log(state_dir, 300) if len(line) == 8]
        numbers = [int(line) for line in lines]
        assert numbers == sorted(set(numbers)), "repeated or out of order: %s" % lines
        reads += 1
    assert reads > 10


def test_one_unreadable_container_does_not_hide_the_others(run_module, rootfs, names):
    broken, fine = names(), names()
    for name in (broken, fine):
        start(run_module, name, rootfs, ["/bin/sleep", "1000"])
    log_path = os.path.join(STATE_ROOT, broken, "container.log")
    os.unlink(log_path)
    os.symlink("/etc/shadow", log_path)
    try:
        listed = dict((facts["name"], facts) for facts in info(run_module, logs_tail=5)["containers"])
        assert listed[fine]["state"] == "running", listed[fine]
        assert listed[broken]["state"] == "unknown" and "symlink, refused" in listed[broken]["error"], listed[broken]
        assert "root:" not in str(listed)
    finally:
        os.unlink(log_path)
