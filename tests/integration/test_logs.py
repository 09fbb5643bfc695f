"""Detached containers' logs on the real kernel: the supervisor's copy and its rotation (logs.py).

A detached container's stdout and stderr are a pipe to its supervisor
(supervisor.py), which writes container.log in the state directory and
rotates it at log_max_size, keeping log_max_files files. Each test checks a
claim of docs/ns_exec.md from the host: the log stays bounded whatever the
container prints, no line is lost at a rotation, the supervisor holds
nothing of Ansible's and nothing of the container's namespaces or cgroup,
and it is gone once the container is.
"""

import os
import signal
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build", "collections")))

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import manager as cgroups
from ansible_collections.handmade.containers.plugins.module_utils._container import logs, supervise
from ansible_collections.handmade.containers.plugins.module_utils._container.supervise import find_supervisors
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    process_start_time,
)

MIB = 1024 * 1024


@pytest.fixture
def container(run_module):
    """A unique name; the container, its supervisor and its state are gone afterwards."""
    name = "test-logs-%s" % uuid.uuid4().hex[:8]
    yield name
    result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, name))
    assert find_supervisors(StateDir(name)) == []


def status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in status" % field)


def _started(run_module, name, rootfs, **extra):
    args = dict({"name": name, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"]}, **extra)
    result = run_module("ns_exec", args)
    assert not result["failed"], result
    return result


def _supervisor(name, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        supervisors = find_supervisors(StateDir(name))
        if supervisors or time.monotonic() > deadline:
            assert len(supervisors) == 1, supervisors
            return supervisors[0][0]
        time.sleep(0.02)


def _wait_gone(pid, start_time=None, timeout=120):
    start_time = start_time if start_time is not None else process_start_time(pid)
    deadline = time.monotonic() + timeout
    while process_start_time(pid) is not None and process_start_time(pid) == start_time:
        assert time.monotonic() < deadline, "process %d still runs" % pid
        time.sleep(0.05)


def _log_files(name):
    """The log files, oldest first, as (name, bytes)."""
    directory = os.path.join(STATE_ROOT, name)
    names = [entry for entry in os.listdir(directory) if entry.startswith(logs.LOG_NAME)]
    names.sort(key=lambda entry: -int(entry.rsplit(".", 1)[1]) if entry != logs.LOG_NAME else 1)
    found = []
    for entry in names:
        with open(os.path.join(directory, entry), "rb") as handle:
            found.append((entry, handle.read()))
    return found


def _assert_consecutive_tail(files, last):
    """The files, oldest first, hold whole lines counting up to ``last`` with none missing."""
    numbers = []
    for entry, data in files:
        assert data.endswith(b"\n"), "%s ends inside a line" % entry
        numbers.extend(int(line) for line in data.split(b"\n")[:-1])
    assert numbers[-1] == last
    assert numbers == list(range(numbers[0], last + 1)), "a line is missing between files"
    return numbers


def test_100_mb_of_output_is_rotated_and_bounded_by_default(run_module, rootfs, container):
    # 1 .. 13 million, one a line: about 106 MB, more than /run should ever hold for one log.
    last = 13000000
    result = _started(run_module, container, rootfs, command=["/usr/bin/seq", "1", str(last)])
    supervisor = _supervisor(container)
    # The container exits once it has printed everything; its supervisor follows
    # as soon as the pipe has no writer left.
    _wait_gone(result["pid"], timeout=300)
    _wait_gone(supervisor, timeout=60)
    files = _log_files(container)
    sizes = [len(data) for _entry, data in files]
    assert [entry for entry, _data in files] == ["container.log.3", "container.log.2", "container.log.1",
                                                 "container.log"]
    # A file may pass the size only by the rest of the line under way (at most 9 bytes here).
    assert all(size <= 5 * MIB + 9 for size in sizes), sizes
    assert sum(sizes) <= 20 * MIB + 4 * 9, sizes
    numbers = _assert_consecutive_tail(files, last)
    # Only the newest lines are kept, and at least three full files of them.
    assert len(numbers) < last and sum(sizes[:-1]) > 3 * 5 * MIB - 4096


def test_sizes_as_given_and_a_line_never_lost_between_files(run_module, rootfs, container):
    last = 400000
    result = _started(run_module, container, rootfs, command=["/usr/bin/seq", "1", str(last)],
                      log_max_size="256k", log_max_files=3)
    supervisor = _supervisor(container)
    _wait_gone(result["pid"])
    _wait_gone(supervisor, timeout=60)
    files = _log_files(container)
    assert len(files) == 3 and all(len(data) <= 256 * 1024 + 7 for _entry, data in files)
    _assert_consecutive_tail(files, last)


def test_the_supervisor_holds_nothing_of_ansible_nor_of_the_container(run_module, rootfs, container):
    result = _started(run_module, container, rootfs, command=["/bin/sleep", "600"])
    supervisor = _supervisor(container)
    # Its interpreter has set up (its wake-up pipe made) once it wrote its status: seconds on a slow VM.
    deadline = time.monotonic() + 120
    while supervise.read_status(StateDir(container)).get("supervisor_pid") != supervisor:
        assert time.monotonic() < deadline, "the supervisor never wrote its status"
        time.sleep(0.05)
    directory = os.path.join(STATE_ROOT, container)
    targets = sorted(os.readlink("/proc/%d/fd/%s" % (supervisor, fd)) for fd in os.listdir("/proc/%d/fd" % supervisor))
    pipe = os.readlink("/proc/%d/fd/1" % result["pid"])
    assert pipe.startswith("pipe:") and os.readlink("/proc/%d/fd/2" % result["pid"]) == pipe
    # Its stdio on /dev/null, the state directory, the log, the read end of the
    # container's output, and the two ends of its own signal wake-up pipe.
    own = [target for target in targets if target.startswith("pipe:") and target != pipe]
    assert len(own) == 2 and own[0] == own[1], targets
    assert sorted(set(targets) - set(own)) == sorted({"/dev/null", directory, os.path.join(directory, "container.log"),
                                                      pipe}), targets
    assert targets.count(pipe) == 1 and targets.count("/dev/null") == 3, targets
    with open("/proc/%d/stat" % supervisor) as handle:
        session = int(handle.read().rsplit(")", 1)[1].split()[3])
    # A session of its own, whose leader (the fork between) is gone: it can
    # never get a controlling terminal, and no logout reaches it.
    assert session != os.getsid(0) and not os.path.exists("/proc/%d" % session)
    with open("/proc/%d/stat" % result["pid"]) as handle:
        assert int(handle.read().rsplit(")", 1)[1].split()[1]) == supervisor  # PID 1's parent
    with open("/proc/%d/status" % supervisor) as handle:
        status = dict(line.split(":", 1) for line in handle.read().splitlines())
    assert int(status["SigIgn"].strip(), 16) & (1 << (signal.SIGHUP - 1))
    # Outside every namespace of the container, and outside its cgroup.
    for namespace in ("pid", "mnt", "net", "ipc", "uts", "cgroup"):
        assert os.readlink("/proc/%d/ns/%s" % (supervisor, namespace)) == os.readlink("/proc/self/ns/" + namespace)
    assert supervisor not in cgroups.open_existing(result["cgroup"]).pids()
    assert supervisor in cgroups.open_existing(supervise.SUPERVISORS_CGROUP).pids()
    # Never the OOM killer's pick, where the host lets root lower a score
    # (CAP_SYS_RESOURCE; this sandbox withholds it).
    with open("/proc/self/status") as handle:
        may_lower = int(status_field(handle.read(), "CapEff"), 16) & (1 << 24)
    wanted = "-1000" if may_lower else "0"
    # The supervisor lowers its score once its interpreter runs: a moment
    # after the task returns (seconds on a slow VM).
    deadline = time.monotonic() + 60
    while True:
        with open("/proc/%d/oom_score_adj" % supervisor) as handle:
            score = handle.read().strip()
        if score == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert score == wanted
    # Started twice: no change, the same supervisor.
    again = _started(run_module, container, rootfs, command=["/bin/sleep", "600"])
    assert not again["changed"] and _supervisor(container) == supervisor


def test_no_supervisor_stays_after_stopped_or_absent(run_module, rootfs, container):
    _started(run_module, container, rootfs, command=["/bin/sh", "-c", "echo last words; exec sleep 600"])
    supervisor = _supervisor(container)
    start_time = process_start_time(supervisor)
    stopped = run_module("ns_exec", {"name": container, "state": "stopped", "stop_timeout": 0})
    assert stopped["changed"] and not stopped["failed"], stopped
    assert process_start_time(supervisor) != start_time and find_supervisors(StateDir(container)) == []
    with open(os.path.join(STATE_ROOT, container, "container.log")) as handle:
        assert handle.read() == "last words\n"
    _started(run_module, container, rootfs, command=["/bin/sleep", "600"])
    supervisor = _supervisor(container)
    start_time = process_start_time(supervisor)
    absent = run_module("ns_exec", {"name": container, "state": "absent", "stop_timeout": 0})
    assert absent["changed"] and not absent["failed"], absent
    assert process_start_time(supervisor) != start_time and find_supervisors(StateDir(container)) == []


def test_the_supervisor_outlives_the_task_that_started_it(ansible_module, rootfs, container):
    # Through Ansible, whose module files are deleted when the task ends:
    # the container prints only after that, and the log is still rotated.
    result = ansible_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs,
                                        "command": ["/bin/sh", "-c", "sleep 2; seq 1 200000"],
                                        "log_max_size": "128k", "log_max_files": 2})
    assert not result["failed"], result
    supervisor = _supervisor(container)
    _wait_gone(result["pid"])
    _wait_gone(supervisor, timeout=60)
    files = _log_files(container)
    assert [entry for entry, _data in files] == ["container.log.1", "container.log"]
    _assert_consecutive_tail(files, 200000)


def test_a_change_of_log_options_recreates_the_container(run_module, rootfs, container):
    first = _started(run_module, container, rootfs, command=["/bin/sleep", "600"])
    same = _started(run_module, container, rootfs, command=["/bin/sleep", "600"], log_max_size="5M")
    assert not same["changed"]  # 5M is the default 5m
    changed = _started(run_module, container, rootfs, command=["/bin/sleep", "600"], log_max_files=2)
    assert changed["changed"] and changed["recreated"] and changed["pid"] != first["pid"]


@pytest.mark.parametrize("extra, expected", [
    ({"log_max_size": "ten megs"}, "log_max_size: 'ten megs' is not a size"),
    ({"log_max_size": "0"}, "log_max_size 0 is less than 1024 bytes"),
    ({"log_max_size": "max"}, "log_max_size max: the log of a detached container is always rotated"),
    ({"log_max_files": 0}, "log_max_files 0 is out of range: give 1 to 1000"),
])
def test_bad_log_options_fail_clearly_and_leave_nothing(run_module, rootfs, container, extra, expected):
    result = run_module("ns_exec", dict({"name": container, "state": "started", "rootfs": rootfs,
                                         "command": ["/bin/sleep", "600"]}, **extra))
    assert result["failed"] and expected in result["msg"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, container))
