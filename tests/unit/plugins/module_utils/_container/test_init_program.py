# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""init_program.py: each built-in init is the program it claims to be, and behaves as an init.

The programs are run for real: the host's own machine natively, the other
under qemu-user (scripts/units.sh installs qemu-user-static). The command
they start is the host's /bin/sh either way (qemu-user hands an execve of a
native program to the kernel), so what is tested is the init's own code:
argument handling, the exit status, signal forwarding, orphan reaping.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import signal
import struct
import subprocess
import time

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import init_program

ELF_MACHINES = {"x86_64": 62, "aarch64": 183}
PT_LOAD, PT_INTERP, PF_W, PF_X = 1, 3, 2, 1


def program_headers(data):
    """(type, flags) of each program header of a 64-bit little-endian ELF."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit little-endian ELF"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return [struct.unpack_from("<II", data, phoff + index * phentsize) for index in range(phnum)]


@pytest.mark.parametrize("machine", sorted(ELF_MACHINES))
def test_each_program_is_a_static_elf_for_its_machine_without_a_writable_code_segment(machine):
    data = init_program.program_for(machine)
    assert struct.unpack_from("<H", data, 0x12)[0] == ELF_MACHINES[machine]
    headers = program_headers(data)
    assert all(kind != PT_INTERP for kind, _flags in headers), "needs a loader: not static"
    loads = [flags for kind, flags in headers if kind == PT_LOAD]
    assert loads and not any(flags & PF_W and flags & PF_X for flags in loads), headers
    assert len(data) < 4096


def test_a_machine_without_a_program_has_none():
    assert init_program.program_for("riscv64") is None


def test_a_damaged_program_is_refused(monkeypatch):
    monkeypatch.setitem(init_program.SHA256, "x86_64", "0" * 64)
    with pytest.raises(ValueError, match="does not match its digest"):
        init_program.program_for("x86_64")


@pytest.fixture(params=sorted(ELF_MACHINES))
def init(request, tmp_path):
    """The argv prefix that runs the init for one machine on this host."""
    machine = request.param
    path = tmp_path / ("init-" + machine)
    path.write_bytes(init_program.program_for(machine))
    path.chmod(0o755)
    if machine == os.uname()[4]:
        return [str(path)]
    emulator = shutil.which("qemu-%s-static" % machine)
    assert emulator, "qemu-%s-static is missing: apt-get install qemu-user-static (scripts/units.sh does)" % machine
    return [emulator, str(path)]


@pytest.fixture(autouse=True)
def default_signals():
    """Every signal at its default while a test runs, as a container's PID 1 gets them (init.finalize resets
    them): one this test process ignores (a test runner may ignore SIGINT, SIGHUP or SIGQUIT) would stay
    ignored through fork and exec, and a shell cannot trap a signal that was ignored when it started."""
    saved = {}
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            saved[number] = signal.signal(number, signal.SIG_DFL)
        except (OSError, RuntimeError, ValueError):
            pass  # the C library's own (32, 33)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def run(init, *command, **kwargs):
    return subprocess.run(init + list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          check=False, **kwargs)


def test_it_exits_with_the_commands_status(init):
    result = run(init, "/bin/sh", "sh", "-c", "echo $0 $1; exit 3", "zero", "one")
    assert result.returncode == 3 and result.stdout == b"zero one\n", result


def test_a_command_killed_by_a_signal_gives_128_plus_its_number(init):
    result = run(init, "/bin/sh", "sh", "-c", "kill -USR1 $$")
    assert result.returncode == 128 + signal.SIGUSR1, result


def test_a_missing_command_or_no_command_is_said_and_gives_127(init):
    missing = run(init, "/nonexistent/program", "program")
    assert missing.returncode == 127 and b"cannot exec /nonexistent/program: errno 2" in missing.stderr, missing
    usage = run(init, "/bin/sh")
    assert usage.returncode == 127 and b"usage: init EXECUTABLE ARGV0" in usage.stderr, usage


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                                  signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2])
def test_signals_are_forwarded_to_the_command(init, sent):
    name = str(int(sent))  # the shell's trap takes numbers, realtime ones included
    script = 'trap "echo got-%s; exit 9" %s; echo ready; while :; do sleep 0.05; done' % (name, name)
    proc = subprocess.Popen(init + ["/bin/sh", "sh", "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        os.kill(proc.pid, sent)
        assert proc.wait(timeout=30) == 9
        assert proc.stdout.read() == b"got-%s\n" % name.encode()
    finally:
        proc.kill()
        proc.wait()


def test_signals_it_does_not_forward_are_taken_not_left_queued(tmp_path):
    # Realtime signal 32 is the C library's own: never forwarded, and each
    # one sent would stay queued on the init (counting against root's
    # pending-signal limit) were it not taken. The host's own machine only:
    # under qemu-user, 32 is the emulator's signal, and what the guest has
    # pending does not show in /proc.
    path = tmp_path / "init"
    path.write_bytes(init_program.program_for(os.uname()[4]))
    path.chmod(0o755)
    proc = subprocess.Popen([str(path), "/bin/sh", "sh", "-c", "echo ready; exec sleep 30"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        for _each in range(200):
            os.kill(proc.pid, 32)
        deadline = time.monotonic() + 10
        while pending(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pending(proc.pid)
        assert proc.poll() is None, "the init died of a signal it should have dropped"
    finally:
        proc.kill()
        proc.wait()


def pending(pid):
    """The signals queued on the whole process ``pid`` (ShdPnd of /proc/PID/status), as a number."""
    with open("/proc/%d/status" % pid) as status:
        return int([line for line in status if line.startswith("ShdPnd:")][0].split()[1], 16)


def test_orphans_are_reaped(init):
    # Each ( ... &) leaves an orphan that the kernel hands to the init (a
    # subreaper); the command then stays, so only the init can reap them.
    script = "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 &); done; echo ready; exec sleep 30"
    proc = subprocess.Popen(init + ["/bin/sh", "sh", "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            zombies = [pid for pid in children_of(proc.pid) if process_state(pid) == "Z"]
            sleepers = [pid for pid in children_of(proc.pid) if b"0.05" in cmdline(pid)]
            if not zombies and not sleepers:
                break
            time.sleep(0.1)
        assert not zombies and not sleepers, (zombies, sleepers)
    finally:
        proc.kill()
        proc.wait()


def children_of(pid):
    """Every pid whose parent is ``pid`` (from /proc/PID/stat: field 4)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read()
    except OSError:
        return b""
