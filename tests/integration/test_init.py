# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``init: true`` on the real kernel: the built-in init as PID 1 of a container.

What ``docker run --init`` promises: the command runs as the child of a
small init that forwards signals, reaps orphans and exits with the
command's status. Each claim is checked against the same container without
the init where that shows the difference (a shell as PID 1 ignores
SIGTERM; a command that execs leaves its orphans as zombies).
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

from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT  # noqa: E402

SHELL_LOOP = 'trap "echo got-TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
# Twenty orphans (each "( ... &)" exits at once and leaves its sleep to PID 1),
# then the command execs: only an init reaps what is left. The sleeps end
# well after the exec, or the shell, still PID 1, would reap them itself.
ORPHANS = "for i in $(seq 20); do (sleep 5 &); done; exec sleep 1000"


@pytest.fixture
def container(run_module):
    """A unique container name; the container and its state are removed afterwards."""
    name = "test-init-%s" % uuid.uuid4().hex[:8]
    yield name
    result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, name))


def stat_fields(pid):
    """/proc/PID/stat after the command name: [state, ppid, ...], or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        fields = stat_fields(int(entry)) if entry.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def zombies_under(pid):
    return [child for child in children_of(pid) if (stat_fields(child) or ["?"])[0] == "Z"]


def eventually(condition, timeout=60):
    """Poll ``condition`` until it holds (a slow, emulated host takes its time); its last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = condition()
    return value


def started(run_module, name, rootfs, command, **extra):
    result = run_module("ns_exec", dict({"name": name, "rootfs": rootfs, "state": "started", "command": command},
                                        **extra))
    assert result["changed"] and not result.get("failed"), result
    return result


def test_pid_1_is_the_built_in_init_and_the_command_is_its_child(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "init": True, "command": [
        "/bin/sh", "-c", "ps -o pid,ppid,args; readlink /proc/1/exe"]})
    assert result["rc"] == 0, result
    lines = result["stdout"].splitlines()
    table = dict((line.split()[0], line.split(None, 2)[1:]) for line in lines[1:-1])
    assert table["1"][1].startswith("{memfd:init} handmade-init /bin/sh /bin/sh -c"), result["stdout"]
    assert table["2"][0] == "1" and table["2"][1].startswith("/bin/sh -c ps"), result["stdout"]
    # Neither a file of the image nor one of the host: a sealed memfd.
    assert lines[-1] == "/memfd:init (deleted)", result["stdout"]


def test_the_exit_status_is_the_commands_and_a_signal_gives_128_plus_its_number(run_module, rootfs):
    assert run_module("ns_exec", {"rootfs": rootfs, "init": True, "command": ["/bin/sh", "-c", "exit 3"]})["rc"] == 3
    killed = run_module("ns_exec", {"rootfs": rootfs, "init": True, "command": ["/bin/sh", "-c", "kill -USR1 $$"]})
    assert killed["rc"] == 128 + signal.SIGUSR1, killed
    # Without it the shell is PID 1, and the kernel drops a signal it has no
    # handler for: the same command survives its own kill.
    alone = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/sh", "-c", "kill -USR1 $$; echo survived"]})
    assert alone["rc"] == 0 and alone["stdout"] == "survived\n", alone


# Without the init the stops below wait this long before the SIGKILL; with
# it they take a module run (seconds even in an emulated VM).
LONG_STOP_TIMEOUT = 60


def test_stopped_is_prompt_and_the_command_sees_sigterm(run_module, rootfs, container):
    started(run_module, container, rootfs, ["/bin/sh", "-c", SHELL_LOOP], init=True, stop_timeout=LONG_STOP_TIMEOUT)
    begun = time.monotonic()
    result = run_module("ns_exec", {"name": container, "state": "stopped"})
    elapsed = time.monotonic() - begun
    assert result["changed"] and not result.get("failed"), result
    # Far below the stop_timeout a SIGKILL would have waited for.
    assert elapsed < LONG_STOP_TIMEOUT / 2, elapsed
    with open(result["log_path"]) as log:
        lines = log.read().splitlines()
    # (The shell may also say "Terminated" for its sleep, which the stop
    # signals as a member of the container's process group.)
    assert lines[0] == "ready" and lines[-1] == "got-TERM", lines


def test_a_plain_shell_stops_on_sigterm_with_init(run_module, rootfs, container):
    # The role's default command: a shell reading its stdin, which as PID 1
    # would ignore SIGTERM and wait out the whole stop_timeout.
    started(run_module, container, rootfs, ["/bin/sh"], init=True, stop_timeout=LONG_STOP_TIMEOUT)
    begun = time.monotonic()
    result = run_module("ns_exec", {"name": container, "state": "stopped"})
    assert not result.get("failed") and time.monotonic() - begun < LONG_STOP_TIMEOUT / 2, result


def test_orphans_are_reaped_by_the_init(run_module, rootfs, container):
    pid = started(run_module, container, rootfs, ["/bin/sh", "-c", ORPHANS], init=True)["pid"]

    def only_the_command_is_left():
        children = children_of(pid)
        return len(children) == 1 and open("/proc/%d/cmdline" % children[0], "rb").read() == b"sleep\x001000\x00"
    # Every orphan came and went, reaped: no zombie, no other child.
    assert eventually(only_the_command_is_left), [(child, stat_fields(child)) for child in children_of(pid)]
    assert zombies_under(pid) == []


def test_without_init_the_same_orphans_stay_zombies(run_module, rootfs, container):
    # What the test above would see without the init: proof that it can fail.
    pid = started(run_module, container, rootfs, ["/bin/sh", "-c", ORPHANS])["pid"]
    assert eventually(lambda: len(zombies_under(pid)) == 20), zombies_under(pid)


def test_a_root_process_inside_cannot_change_its_init(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "init": True, "command": ["/bin/sh", "-c", (
        "(echo x >> /proc/1/exe) 2>/dev/null && echo appended || echo refused; "
        "(: > /proc/1/exe) 2>/dev/null && echo truncated || echo refused; "
        "ls /proc/1/fd")]})
    assert result["rc"] == 0, result
    # The memfd is sealed (and busy while it runs); init keeps no fd of it or of ours.
    assert result["stdout"].split() == ["refused", "refused", "0", "1", "2"], result


def test_the_init_costs_a_few_kilobytes(run_module, rootfs, container):
    pid = started(run_module, container, rootfs, ["/bin/sh"], init=True)["pid"]
    with open("/proc/%d/status" % pid) as status:
        rss_kb = int([line for line in status if line.startswith("VmRSS:")][0].split()[1])
    assert rss_kb <= 64, rss_kb


def test_init_false_keeps_a_container_started_without_the_option_and_true_recreates_it(run_module, rootfs,
                                                                                       container):
    first = started(run_module, container, rootfs, ["/bin/sh"])
    same = run_module("ns_exec", {"name": container, "rootfs": rootfs, "state": "started", "command": ["/bin/sh"],
                                  "init": False})
    assert not same["changed"] and same["pid"] == first["pid"], same
    with_init = run_module("ns_exec", {"name": container, "rootfs": rootfs, "state": "started",
                                       "command": ["/bin/sh"], "init": True})
    assert with_init["changed"] and with_init["recreated"] and with_init["changed_settings"] == ["init"], with_init
    assert with_init["pid"] != first["pid"]


def test_init_with_a_missing_command_fails_clearly_and_leaves_nothing(run_module, rootfs, container):
    result = run_module("ns_exec", {"name": container, "rootfs": rootfs, "state": "started", "init": True,
                                    "command": ["/bin/no-such-program"]})
    assert result["failed"] and "has no /bin/no-such-program" in result["msg"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, container))


def test_a_sigterm_sent_the_moment_the_container_starts_is_not_lost(rootfs, container):
    # In this process, so that the signal follows the start by microseconds:
    # before the init has run a single instruction of its own, which is
    # when an unblocked signal to a namespace's init is dropped.
    for _attempt in range(5):
        pid = ensure_state({"name": container, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"],
                            "init": True, "stop_timeout": 30})["pid"]
        os.kill(pid, signal.SIGTERM)
        assert eventually(lambda: stat_fields(pid) is None or stat_fields(pid)[0] == "Z", timeout=30), \
            "PID 1 %d lost the SIGTERM" % pid
