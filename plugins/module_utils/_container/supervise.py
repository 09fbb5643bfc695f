# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A detached container under its supervisor (supervisor.py): started, found, handed off, repaired.

``start`` is ``docker run -d``. The module forks twice (the supervisor is
nobody's child but init's, or the nearest subreaper's), and the grandchild
S, in a session of its own with ``/dev/null`` as stdio, joins the cgroup
``handmade/_supervisors``, becomes a child subreaper and launches the
container itself (launch.py), so the container's PID 1 is its child. It
reports the pid, or the error, on a pipe the module reads, and then execs
the supervisor program from the runtime directory (runtime.py): what
stays is a bare interpreter holding the state directory, the log and the
read end of the container's output, nothing of Ansible's.

A converge that stops the container first ``hand_off``s its supervisor
(SIGUSR1: record the exit, restart nothing) and waits for it to go once
the container is gone. ``repair`` gives a running container whose
supervisor was killed a new one, which adopts PID 1 and reopens its
output pipe through ``/proc/<pid>/fd/1``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import json
import os
import signal
import stat
import time

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup
from ansible_collections.handmade.containers.plugins.module_utils._container import health, launch, options, runtime
from ansible_collections.handmade.containers.plugins.module_utils._container import placement as placement_
from ansible_collections.handmade.containers.plugins.module_utils._container import supervisor as program
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.logs import open_log
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    RECORD_FORMAT,
    ContainerRecord,
    StateDir,
    config_digest,
    kill_strays,
    process_start_time,
    wait_process_gone,
)

# One cgroup for every supervisor, beside the containers' (a container
# name cannot start with "_", so no container's cgroup is ever this one).
SUPERVISORS_CGROUP = "handmade/_supervisors"
# How long a supervisor may take to record an exit and finish the log once its container is gone.
SUPERVISOR_GRACE = 5.0
# Signals a supervisor must not take before its handlers are in place (blocked across its exec).
HELD_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


def error_message(exc):
    if isinstance(exc, (ContainerError, CgroupError)):
        return str(exc)
    return "%s: %s" % (type(exc).__name__, exc)


def record_launch(spec, state_dir, stdio, placement):
    """Launch ``spec`` detached, its record written before it may run anything; returns (Launched, start time)."""
    recorded = {}

    def record_before_start(pid):
        # Recorded before the child may run anything: if this process dies
        # now, the child reads EOF instead of "go" and exits untouched.
        recorded["start_time"] = process_start_time(pid)
        try:
            state_dir.write(ContainerRecord(
                format=RECORD_FORMAT, name=spec.name, pid=pid, start_time=recorded["start_time"],
                config_digest=config_digest(spec.digest_input()), config=spec.settings,
                launch_settings=spec.launch_settings, log_path=state_dir.log_path, created=time.time(),
                cgroup=placement.name, cgroup_owned=placement.owned))
        except OSError as exc:
            raise ContainerError("cannot record container %s in %s: %s (is /run full or read-only?)"
                                 % (spec.name, state_dir.record_path, exc))

    launched = launch.launch(spec, stdio, cgroup=placement.cgroup, die_with_parent=False,
                             before_start=record_before_start)
    return launched, recorded["start_time"]


def oom_kills(files):
    """The OOM kill count that the [path, key] pairs of ``counter_files`` add up to."""
    return program.Supervisor.count_oom_kills(files)


def _supervisors_cgroup():
    cgroup = open_cgroup(SUPERVISORS_CGROUP)
    cgroup.create()
    return cgroup


# What a record written before a setting existed ran with (log_max_size as the bytes of "5m").
RECORDED_DEFAULTS = {"stop_timeout": options.DEFAULT_STOP_TIMEOUT, "log_max_size": 5 * 1024 * 1024,
                     "log_max_files": 4, "restart_policy": "no", "restart_retries": 0, "healthcheck": None}


def _config(name, state_root, settings, placement, runtime_dir):
    """What the supervisor program is given (supervisor.Supervisor), from a container's resolved settings."""
    def setting(key):
        value = settings.get(key)
        return RECORDED_DEFAULTS[key] if value is None else value
    # A record's settings are resolved already; checked again, they come out the same.
    healthcheck = health.check(setting("healthcheck"))
    return {
        "name": name, "state_root": state_root, "stop_timeout": setting("stop_timeout"),
        "log_max_size": setting("log_max_size"), "log_max_files": setting("log_max_files"),
        "restart_policy": setting("restart_policy"), "restart_retries": setting("restart_retries"),
        "oom_files": placement.cgroup.counter_files("oom_kill") if placement is not None else [],
        "relaunch_argv": runtime.command(runtime_dir, "_container.relaunch"), "runtime_dir": runtime_dir,
        "healthcheck": healthcheck, "probe_argv": runtime.command(runtime_dir, "_container.probe"),
    }


def start(spec, state_dir):
    """Start ``spec`` detached under a new supervisor; returns launch.Launched.

    A start that fails leaves nothing: no state directory, no cgroup of
    the container's own, no process.
    """
    runtime_dir = runtime.install()
    supervisors = _supervisors_cgroup()
    dir_fd, stdin_fd, log_fd = state_dir.prepare()
    placement = None
    try:
        placement = placement_.prepare(spec)
        config = _config(spec.name, state_dir.root, spec.settings, placement, runtime_dir)

        def launch_and_report(report):
            config["oom_before"] = oom_kills(config["oom_files"])
            output_r, output_w = os.pipe2(os.O_CLOEXEC)
            launched, start_time = record_launch(spec, state_dir, (stdin_fd, output_w, output_w), placement)
            config.update(pid=launched.pid, start_time=start_time, started_at=time.time())
            report({"pid": launched.pid, "namespaces": launched.namespaces})
            return (dir_fd, log_fd, output_r)

        report = _spawn(config, supervisors, launch_and_report)
        if "error" in report:
            raise ContainerError(report["error"])
        if "pid" not in report:
            raise ContainerError("the supervisor of container %s died before the container ran: see the "
                                 "host's kernel log (OOM?)" % spec.name)
        return launch.Launched(report["pid"], report["namespaces"])
    except BaseException:
        # A container that never ran leaves no state behind.
        kill_strays(state_dir)
        if placement is not None:
            placement.remove()
        state_dir.remove()
        raise
    finally:
        for fd in (stdin_fd, dir_fd, log_fd):
            os.close(fd)


def _spawn(config, supervisors, prepare):
    """Fork the supervisor's process; in it, ``prepare(report)`` -> its fds, then exec the program.

    Returns what the process reported ({} when it died without a word).
    """
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        middle = os.fork()
        if middle == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    _become_supervisor(config, supervisors, prepare, report_w)
            finally:
                os._exit(0)
    finally:
        os.close(report_w)
    try:
        os.waitpid(middle, 0)
        chunks = []
        while True:
            chunk = os.read(report_r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(report_r)
    try:
        report = json.loads(b"".join(chunks).decode("utf-8") or "{}")
    except ValueError:
        return {}
    if "error" not in report and report.get("supervisor"):
        _wait_until_found(report["supervisor"], StateDir(config["name"], config["state_root"]))
    return report


def _become_supervisor(config, supervisors, prepare, report_w):
    """The supervisor's process before its exec: never returns."""
    def report(message):
        data = json.dumps(dict(message, supervisor=os.getpid())).encode("utf-8")
        while data:
            data = data[os.write(report_w, data):]

    try:
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        for target in (0, 1, 2):
            os.dup2(devnull, target)  # nothing of Ansible's pipes stays open here
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        sys_.prctl(program.PR_SET_CHILD_SUBREAPER, 1)
        supervisors.attach(os.getpid())
        fds = prepare(report)
        wanted = (devnull, devnull, devnull) + tuple(fds)
        # Copies above the targets first, so no dup2 overwrites a descriptor still to be placed.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in wanted]
        argv = runtime.command(config["runtime_dir"], "_container.supervisor")
        argv.extend([program.MARK, json.dumps(config)])
        for target, fd in enumerate(high):
            os.dup2(fd, target)  # dup2 clears close-on-exec on the target
        os.closerange(len(wanted), 65536)
        os.execv(argv[0], argv)
    except BaseException as exc:
        try:
            report({"error": error_message(exc)})
        except BaseException:
            pass
    finally:
        os._exit(127)


def find_supervisors(state_dir, proc="/proc"):
    """Supervisors of this name's state directory, as (pid, start time).

    Told by argv[1] and found by the kernel, like a stray: the directory a
    supervisor holds (fd 3) is this name's state directory, with
    " (deleted)" once that is gone.
    """
    found = []
    for entry in os.listdir(proc):
        if entry.isdigit() and _supervises(int(entry), state_dir, proc):
            start_time = process_start_time(int(entry), proc)
            if start_time is not None:
                found.append((int(entry), start_time))
    return found


def _supervises(pid, state_dir, proc="/proc"):
    """Whether process ``pid`` is a supervisor (its exec done) holding this name's state directory."""
    mark = ("\0%s\0" % program.MARK).encode()
    try:
        with open("%s/%d/cmdline" % (proc, pid), "rb") as handle:
            if mark not in handle.read():
                return False
        held = os.readlink("%s/%d/fd/%d" % (proc, pid, program.DIR_FD))
    except OSError:
        return False
    return held in (state_dir.path, state_dir.path + " (deleted)")


# How long a start waits for its supervisor's exec to show (the report pipe closes a moment before).
EXEC_WAIT = 30.0


def _wait_until_found(pid, state_dir):
    """Return once ``find_supervisors`` finds supervisor ``pid`` (or it is gone).

    The report pipe closes when the supervisor's process closes its other
    descriptors, a moment before its execve gives it its argv: a converge
    right after this start must find it, or it would "repair" a container
    that has its supervisor.
    """
    deadline = time.monotonic() + EXEC_WAIT
    while not _supervises(pid, state_dir) and process_start_time(pid) is not None:
        if time.monotonic() >= deadline:
            return
        time.sleep(0.001)


def hand_off(supervisors):
    """Tell each supervisor that a converge stops its container: record the exit, restart nothing."""
    for pid, start_time in supervisors:
        if process_start_time(pid) == start_time:
            try:
                os.kill(pid, signal.SIGUSR1)
            except OSError:
                pass


def wait_gone(supervisors, grace=SUPERVISOR_GRACE):
    """Let each supervisor finish (its container is gone), then SIGKILL what is left."""
    for pid, start_time in supervisors:
        if not wait_process_gone(pid, start_time, grace):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            wait_process_gone(pid, start_time, 10.0)


def read_status(state_dir):
    """What the supervisor last recorded (``status.json``), or {}."""
    dir_fd = state_dir.open()
    if dir_fd is None:
        return {}
    try:
        return program.read_status(dir_fd)
    finally:
        os.close(dir_fd)


# How often wait_healthy reads status.json.
HEALTH_POLL = 0.05


def wait_healthy(state_dir, timeout):
    """Wait until the supervisor records the running container ``healthy``; returns its health.

    Raises ContainerError, the container left running, once ``timeout``
    seconds pass first or the container exits for good (not running, and
    its supervisor gone: no restart to come). A status of an earlier run
    (the supervisor of a new start has not written its own yet) is never
    taken for this one's: it must name the running PID 1.
    """
    deadline = time.monotonic() + timeout
    while True:
        record = state_dir.read()
        status = read_status(state_dir)
        found = status.get("health") or {}
        running = record is not None and record.is_running()
        if running and status.get("pid") == record.pid and found.get("status") == health.HEALTHY:
            return found
        if not running and not find_supervisors(state_dir):
            # Read again: the supervisor may have recorded the exit and left since the read above.
            status = read_status(state_dir)
            found = status.get("health") or {}
            raise ContainerError("container %s exited (exit code %s) before it was healthy%s: see its log "
                                 "(container_info with logs_tail)" % (state_dir.name, status.get("exit_code"),
                                                                      _last_check(found)))
        if time.monotonic() >= deadline:
            raise ContainerError("container %s is not healthy after %g s (wait_healthy_timeout), it is %s%s; it is "
                                 "left running: fix the service or the check, or wait longer"
                                 % (state_dir.name, timeout, found.get("status") or "not checked yet",
                                    _last_check(found)))
        time.sleep(HEALTH_POLL)


def _last_check(found):
    log = found.get("log") or []
    if not log:
        return " (no check has finished yet)"
    last = log[-1]
    return " (%d failures in a row); the last check exited %s: %s" % (
        found.get("failing_streak", 0), last.get("exit_code"), (last.get("output") or "").strip() or "(no output)")


def repair(record, state_dir):
    """A new supervisor for running container ``record`` whose own is gone (killed); returns its pid or None."""
    runtime_dir = runtime.install()
    supervisors = _supervisors_cgroup()
    settings = record.config or {}
    previous = read_status(state_dir)
    placement = placement_.reopen(record.cgroup or settings.get("cgroup"), bool(record.cgroup_owned))
    config = _config(state_dir.name, state_dir.root, settings, placement, runtime_dir)
    config.update(pid=record.pid, start_time=record.start_time, adopted=True,
                  restart_count=previous.get("restart_count", 0), started_at=previous.get("started_at"),
                  health=previous.get("health"))
    dir_fd = state_dir.open()
    if dir_fd is None:
        return None
    opened = [dir_fd]
    try:
        opened.append(open_log(dir_fd))
        output = _open_output(record.pid)
        if output is None:
            config["output"] = False
            output = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        opened.append(output)

        def adopt(report):
            report({"pid": record.pid})
            return tuple(opened)

        report = _spawn(config, supervisors, adopt)
    finally:
        for fd in opened:
            os.close(fd)
    if "error" in report:
        raise ContainerError("cannot give container %s a new supervisor: %s" % (state_dir.name, report["error"]))
    return report.get("pid")


def _open_output(pid):
    """A new read end of the pipe that is PID 1's stdout, or None when its stdout is no pipe."""
    path = "/proc/%d/fd/1" % pid
    try:
        if not os.readlink(path).startswith("pipe:"):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd
