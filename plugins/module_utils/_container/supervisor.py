# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor of a detached container: one process per container, outside it, as conmon is for podman.

It is the parent of the container's PID 1 (a child subreaper, so a PID 1
that a restart launcher starts becomes its child too), in the host's
namespaces and in the cgroup ``handmade/_supervisors``, outside the
container's cgroup: the container's memory or pids limit never kills it,
and it holds nothing of Ansible's. It

* copies the container's stdout and stderr (a pipe) into ``container.log``,
  rotated at ``log_max_size`` (logs.RotatingWriter);
* records each exit in ``status.json``: the exit code (128 + N for signal
  N), when, and whether the cgroup's OOM killer struck meanwhile;
* applies the restart policy (restarts.py): after the back-off it starts
  the container again through the launcher (relaunch.py, a process of
  its own with the whole launch code) under the container's lock, so a
  converge and a restart never meet;
* runs the health check (health.py) every interval through the probe
  (probe.py, a process of its own that joins the container as an exec
  does) and records the health in ``status.json``;
* exits once the container is over for good: exited and not restarted,
  and every writer of its output gone.

Signals: SIGUSR1 is the module's "hands off": the module stops the
container itself (with the task's stop_timeout), and the supervisor only
records the exit, never restarts, and exits. SIGTERM (a shutdown, or kill
by hand) makes the supervisor stop the container itself: SIGTERM to PID 1,
SIGKILL after stop_timeout; it is not recorded as stopped by hand, so
``always`` and ``unless-stopped`` containers come back at boot.

It runs as ``python3 -I -S`` from the runtime directory (runtime.py) and
imports only the standard library and the small modules beside it that do
the same (restarts, health, logs, record), so it costs little more than a
bare interpreter. What it starts (a launcher, a probe) gets the OOM score
of an ordinary process back: the supervisor's own -1000 must not pass to
the container.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import json
import os
import select
import signal
import time

from ansible_collections.handmade.containers.plugins.module_utils._container import health, restarts
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.logs import CHUNK, RotatingWriter
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    lock_container,
    process_start_time,
)

# argv[1] of every supervisor: how one is told from other processes (find_supervisors).
MARK = "handmade-containers-supervisor"
STATUS_FILE = "status.json"
# The supervisor's descriptors: 0-2 /dev/null, then these.
DIR_FD = 3
LOG_FD = 4
PIPE_FD = 5
# How a restart launcher is given what it needs: its fds (a probe gets the report pipe only).
LAUNCHER_REPORT_FD = 3
LAUNCHER_DIR_FD = 4
LAUNCHER_OUTPUT_FD = 5
# A probe kills its check at the check's timeout; one still there this much later is stuck and killed.
PROBE_GRACE = 30.0
# While a converge holds the container's lock, a restart asks again this often.
LOCK_RETRY = 0.05
# An adopted PID 1 (not our child) is looked at this often where pidfd_open is missing.
ADOPTED_POLL = 0.5
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4


def exit_code_of(status):
    """A wait status as Docker reports it: the exit status, or 128 + N when signal N ended it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def write_status(dir_fd, status):
    """``status.json`` in ``dir_fd``, replaced whole (a fresh temporary name, then rename)."""
    temporary = ".%s.%d.tmp" % (STATUS_FILE, os.getpid())
    try:
        os.unlink(temporary, dir_fd=dir_fd)
    except OSError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    with os.fdopen(fd, "w") as handle:
        json.dump(status, handle, sort_keys=True)
    os.rename(temporary, STATUS_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_status(dir_fd):
    """What ``status.json`` in ``dir_fd`` holds, or {} (none yet, unreadable, not a regular file)."""
    try:
        fd = os.open(STATUS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return {}
    try:
        if not (os.fstat(fd).st_mode & 0o170000 == 0o100000):
            return {}
        data = json.loads(os.read(fd, 1 << 20).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}


def _prctl(option, value):
    try:
        import ctypes  # the supervisor's only calls without an os function
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass


def _set_oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write(str(value))
    except OSError:
        pass


def _harden():
    """Not readable through /proc without CAP_SYS_PTRACE; never the OOM killer's pick; a subreaper."""
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _set_oom_score_adj(-1000)


def spawn_helper(argv, fds):
    """Fork and exec ``argv`` with 0-2 /dev/null and ``fds`` as 3, 4, ...; returns its pid.

    The helper is an ordinary process again: default signals, nothing
    blocked, OOM score 0 (raising it needs no privilege), so neither a
    restarted PID 1 nor a health check inherits the supervisor's immunity.
    """
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            _set_oom_score_adj(0)
            devnull = os.open(os.devnull, os.O_RDWR)
            wanted = (devnull, devnull, devnull) + tuple(fds)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in wanted]
            for target, fd in enumerate(high):
                os.dup2(fd, target)
            os.closerange(len(wanted), 65536)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


class Supervisor:
    """The state of one supervisor; ``run()`` is its loop, ``config`` what the module gave it.

    ``config``: name, state_root, stop_timeout, log_max_size, log_max_files,
    restart_policy, restart_retries, oom_files ([path, key] pairs whose sum
    is the cgroup's OOM kill count) and oom_before (that count before the
    container ran), relaunch_argv, healthcheck (health.check's settings, or
    None) and probe_argv, pid and start_time of PID 1, adopted (PID 1 is
    not our child: a supervisor started again after the first one was
    killed), restart_count, started_at and health to go on from.
    """

    def __init__(self, config):
        self.config = config
        self.writer = RotatingWriter(DIR_FD, config["log_max_size"], config["log_max_files"], fd=LOG_FD)
        self.pipes = [PIPE_FD] if config.get("output", True) else []
        self.pid = config["pid"]
        self.start_time = config["start_time"]
        self.adopted = bool(config.get("adopted"))
        self.pidfd = None
        self.ran_since = time.monotonic()
        self.streak = config.get("streak", 0)
        self.restart_at = None
        self.kill_at = None
        self.launcher = None  # (pid, report fd, lock fd, output write end)
        self.healthcheck = config.get("healthcheck")
        self.check_at = None
        self.probe = None  # (pid, report fd, started at (epoch), kill at (monotonic; None once killed))
        self.stopping = False
        self.stopped_by_hand = False
        self.status = {
            "state": "running", "pid": self.pid, "start_time": self.start_time,
            "started_at": config.get("started_at") or time.time(), "finished_at": None, "exit_code": None,
            "oom_killed": False, "restart_count": config.get("restart_count", 0),
            "restart_policy": config["restart_policy"], "stopped_by_hand": False, "error": None,
            "supervisor_pid": os.getpid(),
            "health": (config.get("health") or health.initial()) if self.healthcheck else None,
        }
        self._schedule_check()
        # Counted before the container ran (by whoever launched it): an OOM
        # kill in its first moments is its own too.
        self.oom_before = config["oom_before"] if config.get("oom_before") is not None else self._oom_kills()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.adopted:
            self._watch_adopted()
        self._save()

    # -- the loop -----------------------------------------------------------

    def run(self):
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_args: None)
        signal.signal(signal.SIGUSR1, self._hands_off)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # Blocked since before the exec (supervise.py), so that a hand-off sent
        # while the interpreter started is taken now, not lost or fatal.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGUSR1, signal.SIGTERM))
        self._reap()  # a PID 1 that exited before the handler was there
        while not self._over():
            readable = self._wait()
            for fd in readable:
                if fd == self.wake_r:
                    self._drain_wakeups()
                elif fd == self.pidfd:
                    self._adopted_exited()
                elif self.launcher is not None and fd == self.launcher[1]:
                    pass  # the launcher's report: read once it has exited
                elif self.probe is not None and fd == self.probe[1]:
                    pass  # the probe's report: read once it has exited
                else:
                    self._copy(fd)
            self._reap()
            self._check_adopted()
            self._timers()
        self.writer.close()
        os._exit(0)

    def _over(self):
        return (self.pid is None and self.restart_at is None and self.launcher is None
                and self.probe is None and not self.pipes)

    def _wait(self):
        now = time.monotonic()
        deadlines = [moment for moment in (self.restart_at, self.kill_at, self.check_at) if moment is not None]
        if self.probe is not None and self.probe[3] is not None:
            deadlines.append(self.probe[3])
        if self.adopted and self.pid is not None and self.pidfd is None:
            deadlines.append(now + ADOPTED_POLL)
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        watched = [self.wake_r] + self.pipes
        if self.pidfd is not None:
            watched.append(self.pidfd)
        if self.launcher is not None:
            watched.append(self.launcher[1])
        if self.probe is not None:
            watched.append(self.probe[1])
        try:
            return select.select(watched, [], [], timeout)[0]
        except InterruptedError:
            return []

    def _drain_wakeups(self):
        try:
            while os.read(self.wake_r, 256):
                pass
        except OSError:
            pass

    def _copy(self, fd):
        try:
            chunk = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN):
                return
            chunk = b""
        if chunk:
            self.writer.write(chunk)
            return
        # EOF: every process that held this pipe closed it.
        self.pipes.remove(fd)
        os.close(fd)

    # -- signals -------------------------------------------------------------

    def _hands_off(self, *_args):
        self.stopping = True
        self.stopped_by_hand = True
        self.restart_at = None
        self._end_checks()

    def _stop(self, *_args):
        self.stopping = True
        self.restart_at = None
        self._end_checks()
        if self.pid is not None and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = time.monotonic() + float(self.config["stop_timeout"])

    def _signal(self, signum):
        if self.pid is not None and process_start_time(self.pid) == self.start_time:
            try:
                os.kill(self.pid, signum)
            except OSError:
                pass

    def _timers(self):
        now = time.monotonic()
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self._signal(signal.SIGKILL)
        if self.restart_at is not None and now >= self.restart_at and self.launcher is None:
            self._restart()
        if self.check_at is not None and now >= self.check_at and self.probe is None:
            self._start_probe()
        if self.probe is not None and self.probe[3] is not None and now >= self.probe[3]:
            self._kill_probe()

    # -- exits ---------------------------------------------------------------

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and not self.adopted:
                self._exited(exit_code_of(status))
            elif self.launcher is not None and pid == self.launcher[0]:
                self._launcher_done(status)
            elif self.probe is not None and pid == self.probe[0]:
                self._probe_done(status)
            # Anything else is an orphan of the container handed to us as subreaper: reaped, no more.

    def _watch_adopted(self):
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self.pidfd = None  # Python < 3.9 or a kernel < 5.3: polled instead
        if process_start_time(self.pid) != self.start_time:
            self._adopted_exited()

    def _check_adopted(self):
        if self.adopted and self.pid is not None and self.pidfd is None and process_start_time(self.pid) != self.start_time:
            self._adopted_exited()

    def _adopted_exited(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        # Not our child: its exit status went to whoever was its parent.
        self._exited(None)

    def _exited(self, exit_code):
        ran = time.monotonic() - self.ran_since
        if ran >= restarts.RESET_AFTER:
            self.streak = 0
        self.pid = None
        self.adopted = False
        self.kill_at = None
        self._end_checks()
        self.status.update(state="exited", pid=None, start_time=None, exit_code=exit_code,
                           finished_at=time.time(), oom_killed=self._oom_kills() > self.oom_before,
                           stopped_by_hand=self.stopped_by_hand)
        if restarts.should_restart(self.config["restart_policy"], self.config["restart_retries"], exit_code,
                                   self.streak, self.stopping):
            self.restart_at = time.monotonic() + restarts.delay(self.streak)
            self.status["state"] = "restarting"
        self._save()

    def _oom_kills(self):
        return self.count_oom_kills(self.config.get("oom_files"))

    @staticmethod
    def count_oom_kills(files):
        total = 0
        for path, key in files or ():
            try:
                with open(path) as handle:
                    for line in handle:
                        parts = line.split()
                        if len(parts) == 2 and parts[0] == key:
                            total += int(parts[1])
            except (OSError, ValueError):
                continue
        return total

    # -- restarts --------------------------------------------------------------

    def _restart(self):
        lock_fd = self._try_lock()
        if lock_fd is None:
            self.restart_at = time.monotonic() + LOCK_RETRY
            return
        if self.stopping:
            os.close(lock_fd)
            self.restart_at = None
            return
        self.restart_at = None
        self.oom_before = self._oom_kills()
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        output_r, output_w = os.pipe2(os.O_CLOEXEC)
        self.pipes.append(output_r)
        argv = list(self.config["relaunch_argv"]) + [json.dumps({
            "name": self.config["name"], "state_root": self.config["state_root"]})]
        pid = spawn_helper(argv, (report_w, DIR_FD, output_w))
        os.close(report_w)
        self.launcher = (pid, report_r, lock_fd, output_w)

    def _try_lock(self):
        """The container's lock, if nobody holds it now; else None (asked again later)."""
        try:
            return lock_container(self.config["name"], self.config["state_root"], blocking=False)
        except ContainerError:
            return None  # the state root is being removed: the next try tells

    def _launcher_done(self, status):
        pid, report_r, lock_fd, output_w = self.launcher
        self.launcher = None
        os.close(output_w)  # the new PID 1 holds it now, or nobody does
        try:
            report = json.loads(os.read(report_r, 65536).decode("utf-8") or "{}")
        except (OSError, ValueError):
            report = {}
        os.close(report_r)
        os.close(lock_fd)
        if report.get("pid") and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self.pid, self.start_time = report["pid"], report["start_time"]
            self.ran_since = time.monotonic()
            self.streak += 1
            self.status.update(state="running", pid=self.pid, start_time=self.start_time, started_at=time.time(),
                               restart_count=self.status["restart_count"] + 1, error=None)
            if self.healthcheck:
                self.status["health"] = health.initial()  # as Docker: a new start is "starting" again
                self._schedule_check()
            self._save()
            self._reap()  # it may be gone already
            if self.stopping and self.pid is not None:
                self.stopping = False
                self._stop()
            return
        if report.get("gone"):
            # The container was removed or recreated meanwhile: nothing of ours to restart.
            self.stopping = True
            self.status.update(state="exited")
            self._save()
            return
        self.status["error"] = report.get("error") or "the restart launcher failed (status %d)" % status
        self.streak += 1
        if restarts.should_restart(self.config["restart_policy"], self.config["restart_retries"], -1,
                                   self.streak, self.stopping):
            self.restart_at = time.monotonic() + restarts.delay(self.streak)
            self.status["state"] = "restarting"
        else:
            self.status["state"] = "exited"
        self._save()

    # -- health checks -------------------------------------------------------

    def _schedule_check(self):
        """The next check one interval from now, while PID 1 runs and nobody is stopping it."""
        if self.healthcheck and self.pid is not None and not self.stopping:
            self.check_at = time.monotonic() + self.healthcheck["interval"]

    def _start_probe(self):
        self.check_at = None
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        argv = list(self.config["probe_argv"]) + [json.dumps({
            "name": self.config["name"], "state_root": self.config["state_root"], "pid": self.pid,
            "start_time": self.start_time, "healthcheck": self.healthcheck})]
        try:
            pid = spawn_helper(argv, (report_w,))
        except OSError as exc:
            os.close(report_r)
            self._checked(time.time(), {"exit_code": -1, "output": "the check could not start: %s" % exc})
            return
        finally:
            os.close(report_w)
        self.probe = (pid, report_r, time.time(), time.monotonic() + self.healthcheck["timeout"] + PROBE_GRACE)

    def _kill_probe(self):
        """A probe stuck past its check's timeout: killed, and its check a failure."""
        try:
            os.kill(self.probe[0], signal.SIGKILL)
        except OSError:
            pass
        self.probe = self.probe[:3] + (None,)  # reaped, and recorded, as it exits

    def _probe_done(self, status):
        _pid, report_r, started, kill_at = self.probe
        self.probe = None
        try:
            report = json.loads(os.read(report_r, 65536).decode("utf-8") or "{}")
        except (OSError, ValueError):
            report = {}
        os.close(report_r)
        if report.get("gone") or self.pid is None or self.stopping:
            return  # the container it checked is over: no result of the running one
        if "exit_code" not in report:
            if kill_at is None:  # killed by _kill_probe
                output = health.timed_out_output(self.healthcheck["timeout"])
            else:
                output = "the health check's process ended without a result (wait status %d)" % status
            report = {"exit_code": -1, "output": output}
        self._checked(started, report)

    def _checked(self, started, report):
        result = {"start": started, "end": time.time(), "exit_code": report["exit_code"],
                  "output": report.get("output") or ""}
        self.status["health"] = health.record(self.status["health"], self.healthcheck, result,
                                              self.status["started_at"])
        self._save()
        self._schedule_check()

    def _end_checks(self):
        """No more checks: the container is over or being stopped; a probe under way is killed."""
        self.check_at = None
        if self.probe is not None and self.probe[3] is not None:
            self._kill_probe()

    def _save(self):
        try:
            write_status(DIR_FD, self.status)
        except OSError:
            pass  # the state directory is being removed: nothing left to tell


def main(argv):
    """``MARK config-json``, descriptors as supervise.start sets them."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _harden()
    Supervisor(json.loads(argv[1])).run()
