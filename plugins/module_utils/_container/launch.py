# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parent side of a launch: fork, the parent's steps, and the child's answer.

``launch`` starts a container's PID 1 (init.start_child) and speaks the
launch protocol of sync.py with it: after the fork it moves the child into
its cgroup and records it (``go``), runs the parent-side steps that need
the child's new namespaces (``namespaces`` -> ``configured``), then waits
for ``exec`` or ``error``. ``run_container`` and ``start_detached`` are
``docker run --rm`` and ``docker run -d`` on top of it;
``exec_in_container`` is ``docker exec`` (init.exec_child).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import select
import time

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import init, mounts, sync
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
    parent, child = sync.channel_pair()
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
        _kill_and_reap(pid)
        raise
    if error is not None:
        _kill_and_reap(pid)
        raise ContainerError(error)
    return Launched(pid, namespaces)


def _kill_and_reap(pid):
    try:
        os.kill(pid, sys_.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def _exited(pid):
    """True once ``pid`` has exited, without reaping it (its pid stays ours)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _collect(pid, stdin_data, pipes, timeout, kill):
    """Feed stdin, gather stdout/stderr, wait for ``pid``; enforce ``timeout``.

    ``pipes`` is (stdin_w or None, stdout_r, stderr_r). ``kill()`` ends the
    whole container; it is called while ``pid`` is still unreaped, so it can
    never hit a process that reused the pid. Returns
    (wait_status, stdout, stderr, timed_out).
    """
    stdin_w, stdout_r, stderr_r = pipes
    output = {stdout_r: [], stderr_r: []}
    pending = memoryview(stdin_data or b"")
    deadline = None if not timeout else time.monotonic() + timeout
    poller = select.poll()
    for fd in output:
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
    streams_open = len(output)
    exited = timed_out = False
    try:
        while streams_open or not exited:
            wait_ms = tick_ms
            if deadline is not None and not timed_out:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                wait_ms = left_ms if wait_ms is None else min(wait_ms, left_ms)
            events = poller.poll(wait_ms)
            for fd, _event in events:
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
                chunk = os.read(fd, 65536)
                if chunk:
                    output[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    streams_open -= 1
            if not exited and _exited(pid):
                exited = True
                if pidfd is not None:
                    poller.unregister(pidfd)
                # PID 1 is gone; whatever still holds the pipes (possible
                # only without a PID namespace) goes with it.
                kill()
            if deadline is not None and not timed_out and time.monotonic() >= deadline and not exited:
                timed_out = True
                kill()
    finally:
        _close_all([stdin_w, pidfd])
    status = os.waitpid(pid, 0)[1]
    return status, b"".join(output[stdout_r]), b"".join(output[stderr_r]), timed_out


def _open_stdio(with_stdin):
    """Pipes for a run: (child's fds, parent's fds)."""
    if with_stdin:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
    stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
    return (stdin_r, stdout_w, stderr_w), (stdin_w, stdout_r, stderr_r)


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


def _decode(data):
    return data.decode("utf-8", "replace")


def _encode_stdin(stdin_data):
    return stdin_data.encode("utf-8") if isinstance(stdin_data, str) else stdin_data


def run_container(spec, stdin_data=None, timeout=None, cgroup=None):
    """Run ``spec`` to completion, like ``docker run --rm``; return its results.

    The container's PID 1 is killed with the caller (PR_SET_PDEATHSIG), at
    ``timeout``, and when it exits every process of its PID namespace goes
    with it, so nothing is left behind.
    """
    started = time.monotonic()
    child_fds, parent_fds = _open_stdio(stdin_data is not None)
    oom_before = _oom_kills(cgroup)
    try:
        launched = launch(spec, child_fds, cgroup=cgroup, die_with_parent=True)
    except BaseException:
        _close_all(parent_fds)
        raise
    finally:
        _close_all(child_fds)
    pid = launched.pid

    def kill_container():
        # PID 1 dying takes its whole PID namespace with it; without one, its
        # process group (it called setsid) is the container.
        for sender in (os.kill, os.killpg):
            try:
                sender(pid, sys_.SIGKILL)
            except OSError:
                pass

    status, stdout, stderr, timed_out = _collect(pid, _encode_stdin(stdin_data), parent_fds, timeout,
                                                 kill_container)
    return {
        "rc": exit_code(status), "stdout": _decode(stdout), "stderr": _decode(stderr),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out,
        "elapsed": round(time.monotonic() - started, 6),
        "pid": pid, "namespaces": launched.namespaces,
    }


def start_detached(spec, stdin_fd, log_fd, cgroup=None, before_start=None):
    """Start ``spec`` in the background (``docker run -d``); return Launched.

    Its stdin is ``stdin_fd`` (the state dir's fifo), stdout and stderr go
    to ``log_fd``; it holds no other descriptor of ours and has its own
    session, so Ansible's pipes reach EOF and an SSH logout does not touch
    it. Our process exits with the module; the kernel then hands PID 1's
    parenthood to init (or the nearest subreaper): no helper stays beside it.
    """
    return launch(spec, (stdin_fd, log_fd, log_fd), cgroup=cgroup,
                  die_with_parent=False, before_start=before_start)


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


def exec_in_container(pid, spec, stdin_data=None, timeout=None, cgroup=None, is_same_process=None):
    """Run ``spec``'s command inside the running container whose PID 1 is ``pid``.

    ``is_same_process()`` is checked after the namespace fds are open, so a
    pid reused by another process is never entered.
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
        _kill_and_reap(helper)
        raise
    if error is not None:
        _close_all(parent_fds)
        _kill_and_reap(helper)
        raise ContainerError(error)

    def kill_exec():
        try:
            os.killpg(helper, sys_.SIGKILL)
        except OSError:
            pass

    status, stdout, stderr, timed_out = _collect(helper, _encode_stdin(stdin_data), parent_fds, timeout, kill_exec)
    return {
        "rc": exit_code(status), "stdout": _decode(stdout), "stderr": _decode(stderr),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out, "elapsed": round(time.monotonic() - started, 6),
    }


def enter_command(pid, namespaces, shell="/bin/sh"):
    """The nsenter line that opens an interactive shell inside the container."""
    options = ["--%s" % name for name in ("mount", "uts", "ipc", "net", "pid", "cgroup") if name in namespaces]
    return "nsenter --target %d %s --root --wd -- %s" % (pid, " ".join(options), shell)
