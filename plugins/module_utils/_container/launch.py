# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parent side of a launch: fork, the parent's steps, and the child's answer.

``launch`` starts a container's PID 1 (init.start_child) and speaks the
launch protocol of sync.py with it: after the fork it moves the child into
its cgroup and records it (``go``), runs the parent-side steps that need
the child's new namespaces (``namespaces`` -> ``configured``), then waits
for ``exec`` or ``error``. ``run_container`` is ``docker run --rm`` on top of it
(``docker run -d`` is supervise.start's);
``exec_in_container`` is ``docker exec`` (init.exec_child).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import math
import os
import select
import time

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import init, mounts, output, sync
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

exit_code = init.exit_code
namespace_ids = init.namespace_ids


class Launched:
    """A started container: host pid of its PID 1 and its namespace ids."""

    def __init__(self, pid, namespaces):
        self.pid = pid
        self.namespaces = namespaces


class ParentSteps:
    """What the parent does for a new child, at each point of the protocol.

    ``after_fork(pid)`` runs before ``go`` (join the cgroup, record the pid);
    ``after_unshare(pid)`` runs between ``namespaces`` and ``configured``
    (the place for uid/gid maps, moving a veth in, a device filter).
    """

    def __init__(self, cgroup=None, before_start=None, after_unshare=()):
        self.cgroup = cgroup
        self.before_start = before_start
        self.after_unshare_steps = list(after_unshare)

    def after_fork(self, pid):
        if self.cgroup is not None:
            self.cgroup.attach(pid)
        if self.before_start is not None:
            self.before_start(pid)

    def after_unshare(self, pid):
        for step in self.after_unshare_steps:
            step(pid)


def _answer(channel, pid, steps):
    """Speak the parent's side of the protocol until the child execs or fails.

    Returns (namespace ids, error sentence or None).
    """
    namespaces, error, exec_seen = {}, None, False
    while True:
        name, payload = channel.receive()
        if name is sync.EOF:
            break
        if name == sync.NAMESPACES:
            steps.after_unshare(pid)
            channel.send(sync.CONFIGURED)
        elif name == sync.EXEC:
            exec_seen = True
            # "net:[4026532300] pid:[4026532301] ...", as readlink shows them.
            namespaces = dict((ns_id.split(":", 1)[0], ns_id) for ns_id in payload.split())
        elif name == sync.ERROR:
            error = payload
    if error is None and not exec_seen:
        error = "the container's process died during set-up, before it could say why"
    return namespaces, error


def launch(spec, stdio, cgroup=None, die_with_parent=True, before_start=None):
    """Start ``spec`` as a new container; return once its command is exec'd.

    ``stdio`` is three fds for the container's stdin, stdout and stderr.
    ``cgroup`` is a cgroup driver to join before anything runs.
    ``before_start(pid)`` runs after the fork and before the child may go
    on (the lifecycle records the pid there, so a crash leaves no stray).
    """
    steps = ParentSteps(cgroup=cgroup, before_start=before_start)
    plan = mounts.build_plan(spec)
    # Made through the rootfs' fd, before the fork; taken back if the start fails.
    made = mounts.make_mount_points(spec)
    try:
        parent, child = sync.channel_pair()
    except BaseException:
        made.remove()
        raise
    own_pid_ns = None
    try:
        if "pid" in spec.namespaces:
            # A PID namespace applies to the children of the caller, not to
            # the caller: unshare here, fork, and the child is PID 1.
            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            sys_.unshare(sys_.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            parent.close()
            init.start_child(spec, plan, stdio, child, die_with_parent)
    except OSError as exc:
        parent.close()
        child.close()
        made.remove()
        raise ContainerError("cannot start the container: %s" % exc)
    finally:
        if own_pid_ns is not None:
            # Back to our own PID namespace for any later child of ours.
            sys_.setns(own_pid_ns, sys_.CLONE_NEWPID)
            os.close(own_pid_ns)
    child.close()
    try:
        try:
            steps.after_fork(pid)
            parent.send(sync.GO)
            namespaces, error = _answer(parent, pid, steps)
        finally:
            parent.close()
    except BaseException:
        kill_and_reap(pid)
        made.remove()
        raise
    if error is not None:
        kill_and_reap(pid)
        made.remove()
        raise ContainerError(error)
    made.close()
    return Launched(pid, namespaces)


def kill_and_reap(pid):
    """SIGKILL a child of ours and reap it; nothing if it is already gone."""
    try:
        os.kill(pid, sys_.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


# How long the module still reads after it killed the container (or the
# exec'd command exited and was killed): a process the kills could not
# reach (one that left the container's mount namespace) must not keep the
# task from returning. Its pipe is closed then; it gets EPIPE.
DRAIN_GRACE = 5.0

# Output is read this much at a time, from pipes made this large.
READ_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # fcntl has the name from Python 3.10 on

# poll() takes an int of milliseconds: a timeout of years is waited for in
# one-minute steps.
MAX_POLL_MS = 60000


def check_timeout(value):
    """``timeout`` as seconds (a float > 0) or None for none; ContainerError for what cannot be a deadline."""
    if value is None:
        return None
    seconds = None
    if not isinstance(value, bool):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            pass
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ContainerError("timeout must be a finite number of seconds >= 0 (got %r): give the seconds after "
                             "which the command is killed, or 0 (or leave timeout out) to wait for it without "
                             "limit" % (value,))
    return seconds or None


def _exited(pid):
    """True once ``pid`` has exited, without reaping it (its pid stays ours)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _collect(pid, stdin_data, pipes, timeout, kill, capture):
    """Feed stdin, stream stdout/stderr into ``capture``, wait for ``pid``; enforce ``timeout``.

    ``pipes`` is (stdin_w or None, stdout_r, stderr_r). ``kill()`` ends the
    whole container (or exec); it is called while ``pid`` is still
    unreaped, so it can never hit a process that reused the pid: once
    ``pid`` exits, and at the deadline. After a kill the streams get
    DRAIN_GRACE seconds to reach EOF, then the module stops reading, so a
    task always returns. Returns (wait_status, timed_out).
    """
    stdin_w, stdout_r, stderr_r = pipes
    streams = {stdout_r: capture["stdout"], stderr_r: capture["stderr"]}
    pending = memoryview(stdin_data or b"")
    deadline = None if not timeout else time.monotonic() + timeout
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    if stdin_w is not None and not pending:
        os.close(stdin_w)
        stdin_w = None
    if stdin_w is not None:
        poller.register(stdin_w, select.POLLOUT)
    # A pidfd turns "PID 1 exited" into a poll event; kernels before 5.3
    # (or Python before 3.9) get a short tick instead.
    pidfd = None
    tick_ms = None
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        tick_ms = 50
    open_streams = set(streams)
    exited = timed_out = False
    give_up_at = None
    try:
        while open_streams or not exited:
            now = time.monotonic()
            if give_up_at is not None and now >= give_up_at:
                break
            wait_ms = tick_ms
            for limit in (deadline if not timed_out else None, give_up_at):
                if limit is not None:
                    left_ms = max(0, int((limit - now) * 1000) + 1)
                    wait_ms = left_ms if wait_ms is None else min(wait_ms, left_ms)
            wait_ms = MAX_POLL_MS if wait_ms is None else min(wait_ms, MAX_POLL_MS)
            for fd, _event in poller.poll(wait_ms):
                if fd == pidfd:
                    continue
                if fd == stdin_w:
                    try:
                        written = os.write(fd, pending[:65536])
                    except OSError:  # EPIPE: the command stopped reading
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        poller.unregister(fd)
                        os.close(fd)
                        stdin_w = None
                    continue
                chunk = os.read(fd, READ_SIZE)
                if chunk:
                    streams[fd].feed(chunk)
                else:
                    poller.unregister(fd)
                    open_streams.discard(fd)
            if not exited and _exited(pid):
                exited = True
                if pidfd is not None:
                    poller.unregister(pidfd)
                # PID 1 (or the exec'd command) is gone; whatever still
                # holds the pipes goes with it.
                kill()
                give_up_at = time.monotonic() + DRAIN_GRACE
            if deadline is not None and not timed_out and time.monotonic() >= deadline and not exited:
                timed_out = True
                kill()
                give_up_at = time.monotonic() + DRAIN_GRACE
        if not exited:
            # Killed, but not gone within the grace (stuck in the kernel):
            # waitpid below waits for it, as the kernel lets no one do otherwise.
            kill()
    finally:
        _close_all([stdin_w, pidfd, stdout_r, stderr_r])
    status = os.waitpid(pid, 0)[1]
    return status, timed_out


def _mount_namespace(pid):
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def kill_container_processes(cgroup, owned, mount_namespace, timeout=10.0):
    """SIGKILL every process of a container, whichever session or process group it is in.

    A cgroup of the container's own is killed whole (cgroup.kill or the
    freezer: nothing forks its way out). A cgroup the ``cgroup`` option
    gave may hold other processes too, so there only those in the
    container's mount namespace (``mnt:[inode]``, every container has one)
    are killed, until none is left.
    """
    if cgroup is None:
        return
    if owned:
        cgroup.kill(timeout=timeout)
        return
    if not mount_namespace:
        return
    deadline = time.monotonic() + timeout
    while True:
        ours = [pid for pid in cgroup.pids() if pid != os.getpid() and _mount_namespace(pid) == mount_namespace]
        if not ours:
            return
        if time.monotonic() > deadline:
            raise ContainerError("processes %s of the container survived SIGKILL for %.0f s (stuck in the kernel, "
                                 "e.g. on I/O): wait and run again" % (sorted(ours), timeout))
        for pid in ours:
            _signal(pid, sys_.SIGKILL)
        time.sleep(0.01)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _pipe_holders(fds):
    """Pids (not ours) that hold the pipe of any of ``fds``: the processes a command started that print to us."""
    wanted = set("pipe:[%d]" % os.fstat(fd).st_ino for fd in fds)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            links = os.listdir("/proc/%s/fd" % entry)
        except OSError:
            continue
        for link in links:
            try:
                if os.readlink("/proc/%s/fd/%s" % (entry, link)) in wanted:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return found


def _open_stdio(with_stdin):
    """Pipes for a run: (child's fds, parent's fds)."""
    if with_stdin:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
    stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
    for fd in (stdout_r, stderr_r):
        _enlarge_pipe(fd)
    return (stdin_r, stdout_w, stderr_w), (stdin_w, stdout_r, stderr_r)


def _enlarge_pipe(fd):
    # A pipe holds 64 KiB by default: one poll, one read and one wake-up of
    # the writer per 64 KiB. A larger pipe needs 16 times fewer; a host that
    # refuses (an older kernel, a lower pipe-max-size) keeps the default.
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, READ_SIZE)
    except (OSError, ValueError):
        pass


def _close_all(fds):
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _oom_kills(cgroup):
    # A host without the counter reports None: no OOM kill can be seen then.
    return (cgroup.stats(("oom_kill",)).get("oom_kill") or 0) if cgroup is not None else 0


def _encode_stdin(stdin_data):
    return stdin_data.encode("utf-8") if isinstance(stdin_data, str) else stdin_data


def run_container(spec, stdin_data=None, timeout=None, cgroup=None, cgroup_owned=False, output_settings=None,
                  after_launch=None):
    """Run ``spec`` to completion, like ``docker run --rm``; return its results.

    The container's PID 1 is killed with the caller (PR_SET_PDEATHSIG). At
    ``timeout``, and as soon as PID 1 exits, every process of the container
    is killed: its PID namespace goes with PID 1, and without one its cgroup
    is killed (kill_container_processes), so a process that left PID 1's
    session cannot keep the task waiting or outlive it. stdout and stderr
    are bounded by ``output_settings`` (output.py). ``after_launch`` is
    called once the command runs, or the launch failed (the caller's lock
    over the launch is released there).
    """
    started = time.monotonic()
    capture = output.Capture(output_settings or output.OutputSettings(label=spec.name or "run"))
    try:
        child_fds, parent_fds = _open_stdio(stdin_data is not None)
    except BaseException:
        capture.close()
        raise
    oom_before = _oom_kills(cgroup)
    try:
        launched = launch(spec, child_fds, cgroup=cgroup, die_with_parent=True)
    except BaseException:
        _close_all(parent_fds)
        capture.close()
        raise
    finally:
        _close_all(child_fds)
        if after_launch is not None:
            after_launch()
    pid = launched.pid
    mount_namespace = launched.namespaces.get("mnt")

    def kill_container():
        # PID 1 dying takes its whole PID namespace with it; without one, its
        # process group (it called setsid), then the container's cgroup.
        for sender in (os.kill, os.killpg):
            try:
                sender(pid, sys_.SIGKILL)
            except OSError:
                pass
        kill_container_processes(cgroup, cgroup_owned, mount_namespace)

    try:
        status, timed_out = _collect(pid, _encode_stdin(stdin_data), parent_fds, timeout, kill_container, capture)
    finally:
        capture.close()
    result = {
        "rc": exit_code(status),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out,
        "elapsed": round(time.monotonic() - started, 6),
        "pid": pid, "namespaces": launched.namespaces,
    }
    result.update(capture.results())
    return result


def _open_namespaces(pid):
    """fds of the namespaces of ``pid`` that differ from ours, in join order."""
    opened = []
    for proc_name, flag in sys_.NAMESPACE_FLAGS:
        theirs = "/proc/%d/ns/%s" % (pid, proc_name)
        try:
            if os.stat(theirs).st_ino == os.stat("/proc/self/ns/" + proc_name).st_ino:
                continue
            opened.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag))
        except OSError as exc:
            _close_all(fd for fd, _flag in opened)
            raise ContainerError("cannot open the namespaces of container process %d: %s" % (pid, exc))
    return opened


def exec_in_container(pid, spec, stdin_data=None, timeout=None, cgroup=None, is_same_process=None,
                      output_settings=None):
    """Run ``spec``'s command inside the running container whose PID 1 is ``pid``.

    ``is_same_process()`` is checked after the namespace fds are open, so a
    pid reused by another process is never entered. At ``timeout``, and
    when the command exits, its process group and every process that still
    holds its stdout or stderr (whichever session it moved to) are killed;
    the rest of the container runs on.
    """
    started = time.monotonic()
    namespace_fds = _open_namespaces(pid)
    try:
        root_fd = os.open("/proc/%d/root" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _close_all(fd for fd, _flag in namespace_fds)
        raise ContainerError("cannot open the root of container process %d: %s" % (pid, exc))
    held = [root_fd] + [fd for fd, _flag in namespace_fds]
    oom_before = _oom_kills(cgroup)
    if is_same_process is not None and not is_same_process():
        _close_all(held)
        raise ContainerError("container process %d exited while exec started: start the container again" % pid)
    try:
        capture = output.Capture(output_settings or output.OutputSettings(label=spec.name or "exec"))
    except BaseException:
        _close_all(held)
        raise
    child_fds, parent_fds = _open_stdio(stdin_data is not None)
    parent, child = sync.channel_pair()
    try:
        helper = os.fork()
        if helper == 0:
            parent.close()
            init.exec_child(spec, namespace_fds, root_fd, child_fds, child)
    finally:
        _close_all(held + list(child_fds))
        child.close()
    try:
        try:
            ParentSteps(cgroup=cgroup).after_fork(helper)
            parent.send(sync.GO)
            _namespaces, error = _answer(parent, helper, ParentSteps())
        finally:
            parent.close()
    except BaseException:
        _close_all(parent_fds)
        capture.close()
        kill_and_reap(helper)
        raise
    if error is not None:
        _close_all(parent_fds)
        capture.close()
        kill_and_reap(helper)
        raise ContainerError(error)
    output_fds = list(parent_fds[1:])

    def kill_exec():
        try:
            os.killpg(helper, sys_.SIGKILL)
        except OSError:
            pass
        # What left the process group but prints to us was started by this
        # exec: it goes too, or it would hold the task open.
        for _round in range(100):
            holders = _pipe_holders(output_fds)
            if not holders:
                return
            for holder in holders:
                _signal(holder, sys_.SIGKILL)
            time.sleep(0.01)

    try:
        status, timed_out = _collect(helper, _encode_stdin(stdin_data), parent_fds, timeout, kill_exec, capture)
    finally:
        capture.close()
    result = {
        "rc": exit_code(status),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out, "elapsed": round(time.monotonic() - started, 6),
    }
    result.update(capture.results())
    return result


def failure_message(result, timeout=None):
    """The task's ``msg`` for a run or exec that failed, or None when it succeeded.

    A non-zero rc is a failure, as for ansible.builtin.command and
    docker_container: the message says the rc and quotes the end of stderr.
    """
    if result.get("rc") in (None, 0) and not result.get("timed_out"):
        return None
    tail = output.last_lines(result.get("stderr") or "")
    if result.get("timed_out"):
        message = "command timed out after %s s and was killed (rc %d)" % (_seconds(timeout), result["rc"])
    elif result.get("oom_killed"):
        message = "command exited with rc %d: the cgroup's memory limit was hit and the OOM killer killed it" % (
            result["rc"])
    else:
        message = "command exited with rc %d" % result["rc"]
    return "%s: %s" % (message, tail) if tail else message + " (stderr is empty)"


def _seconds(value):
    return "%g" % value if value is not None else "?"


def enter_command(pid, namespaces, shell="/bin/sh"):
    """The nsenter line that opens an interactive shell inside the container."""
    options = ["--%s" % name for name in ("mount", "uts", "ipc", "net", "pid", "cgroup") if name in namespaces]
    return "nsenter --target %d %s --root --wd -- %s" % (pid, " ".join(options), shell)
