# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The child side of a launch: everything here runs after fork.

The walkthrough builds its container as
``cgexec -g memory,cpu:/x unshare --pid --mount --uts --fork chroot rootfs /bin/sh``
and then ``mount -t proc proc /proc`` inside it. ``start_child`` does the
same, in the order the kernel needs and with the safer step wherever the
manual one leaks or can be escaped:

0. turn non-dumpable (``seal``): until execve this process is the host's
   python3, and /proc must not hand it to the container (CVE-2019-5736);
1. wait for ``go``: the parent has moved us into the cgroup (``cgexec``)
   before we unshare the cgroup namespace, so that cgroup is the root of
   our view and its limits apply from the first instruction; the PID
   namespace was unshared by the parent before the fork, so we are PID 1
   (``unshare --pid --fork``);
2. unshare mount, UTS, IPC, network and cgroup namespaces, say
   ``namespaces`` and wait for ``configured`` (the parent's steps);
3. make ``/`` recursively a slave mount, so nothing below leaks to the host;
4. bind the rootfs onto itself (pivot_root needs a mount point);
5. run the mount plan (mounts.py): ``/proc``, ``/dev``, ``/sys``, masks,
   read-only kernel paths, volumes;
6. ``pivot_root(".", ".")`` and detach the old root (``chroot`` replaced:
   chroot is escapable by root, pivot_root leaves nothing to escape to);
7. set the hostname (``hostname mycontainer``), bring ``lo`` up;
8. the final step, shared with exec (``finalize``): a session keyring of
   its own, drop the bounding set, switch user, keep only the kept
   capabilities, set ``no_new_privs``, change to the workdir, reset
   signals, install the seccomp filter, exec the command (with ``init``:
   exec the built-in init from a sealed memfd, which runs the command as
   its child: ``sealed_memfd``).

``exec_child`` joins a running container instead (``nsenter``) and ends in
the same ``finalize``, so whatever is installed right before exec holds for
both. The messages exchanged with the parent are sync.py's. This code
imports nothing and starts no thread; on failure it reports one sentence
(``error``) and exits, so a missing binary reads "rootfs /x has no
/bin/foo", never "exit 127".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import signal

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import mounts, seccomp, sync
from ansible_collections.handmade.containers.plugins.module_utils._container.spec import NAMESPACES


class _Progress:
    """The step under way, named for the error message if it fails."""

    def __init__(self):
        self.step = "start"

    def __call__(self, step):
        self.step = step if isinstance(step, str) else step.describe()


def _fail(channel, progress, exc):
    """Report ``exc`` as the sentence the user will read, and exit; never returns."""
    try:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if progress.step.startswith("exec") and isinstance(exc, OSError) and exc.errno == errno.ENOENT:
            detail += " (its interpreter or a shared library is missing from the rootfs)"
        channel.send(sync.ERROR, "%s: %s" % (progress.step, detail))
    finally:
        os._exit(127)


def redirect_stdio(stdio, keep):
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target)
    # The container must hold none of the caller's descriptors: Ansible
    # waits for EOF on the module's pipes, and a leaked fd is a leaked host
    # resource. The kept ones are close-on-exec.
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def namespace_ids(pid="self"):
    """``{"net": "net:[4026532...]", ...}`` as /proc/<pid>/ns/ shows them."""
    ids = {}
    for proc_name, _flag in sys_.NAMESPACE_FLAGS:
        try:
            ids[proc_name] = os.readlink("/proc/%s/ns/%s" % (pid, proc_name))
        except OSError:
            pass
    return ids


# ---------------------------------------------------------------------------
# The start path: PID 1 of a new container.
# ---------------------------------------------------------------------------

def _make_root_slave():
    # rslave rather than rprivate: unmounts on the host still propagate in
    # (so the container never pins a host filesystem busy), while nothing
    # mounted here propagates back out to the host's mount table.
    sys_.mount(None, "/", None, sys_.MS_REC | sys_.MS_SLAVE)


def _bind_rootfs(rootfs):
    # pivot_root needs the new root to be a mount point; binding the rootfs
    # onto itself makes it one without touching the host's mount table.
    sys_.mount(rootfs, rootfs, None, sys_.MS_BIND | sys_.MS_REC)
    os.chdir(rootfs)


def _pivot_root():
    # pivot_root(".", ".") stacks the old root on top of the new one; the
    # lazy unmount then drops it. Unlike chroot, no path leads back out:
    # the host's root is no longer in this mount namespace at all.
    sys_.pivot_root(".", ".")
    sys_.umount2(".", sys_.MNT_DETACH)
    os.chdir("/")


# What Docker sets in a container's own network namespace: ping without
# CAP_NET_RAW, and every port bindable without CAP_NET_BIND_SERVICE (both
# only within the container's own network).
NETWORK_SYSCTLS = (
    ("net/ipv4/ping_group_range", "0 2147483647"),
    ("net/ipv4/ip_unprivileged_port_start", "0"),
)


def _set_network_sysctls():
    # /proc/sys/net belongs to the network namespace of whoever opens it:
    # after the unshare, these are the container's own.
    for name, value in NETWORK_SYSCTLS:
        fd = os.open("/proc/sys/" + name, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)


def seal():
    """Make this process non-dumpable until it execs: the host's interpreter stays out of reach.

    Until ``execve``, a child of ours is the host's python3 inside the
    container's namespaces. Dumpable, it would hand a root process inside
    (with the same capabilities once ours are dropped) its executable through
    ``/proc/PID/exe``, to be overwritten once no python3 runs (the
    CVE-2019-5736 pattern), and its memory, fds and environment too.
    Non-dumpable, /proc gives them only to a holder of CAP_SYS_PTRACE, which
    Docker's defaults leave out. ``execve`` of the container's command makes
    it an ordinary, dumpable process again, as under runc; a child we fork
    inherits the flag.
    """
    sys_.prctl(sys_.PR_SET_DUMPABLE, 0)


def start_child(spec, plan, stdio, channel, die_with_parent):
    """PID 1 of the new container: set everything up, then exec."""
    progress = _Progress()
    try:
        progress("seal the process")
        seal()
        progress("redirect stdio")
        redirect_stdio(stdio, channel.fds())
        os.setsid()
        if die_with_parent:
            sys_.prctl(sys_.PR_SET_PDEATHSIG, sys_.SIGKILL)
        progress("wait for the cgroup")
        channel.expect(sync.GO)
        progress("unshare namespaces")
        flags = 0
        for namespace in spec.namespaces:
            if namespace != "pid":  # already unshared by the parent, for us
                flags |= NAMESPACES[namespace][1]
        sys_.unshare(flags)
        if "net" in spec.namespaces:
            progress("set the network sysctls Docker sets")
            _set_network_sysctls()
        progress("wait for the parent's steps in the new namespaces")
        channel.send(sync.NAMESPACES)
        channel.expect(sync.CONFIGURED)
        progress("make / a slave mount")
        _make_root_slave()
        progress("bind the rootfs %s onto itself" % spec.rootfs)
        _bind_rootfs(spec.rootfs)
        mounts.run_plan(plan, on_step=progress)
        progress("pivot_root into %s" % spec.rootfs)
        _pivot_root()
        if "uts" in spec.namespaces and spec.hostname:
            progress("set the hostname")
            sys_.sethostname(spec.hostname)
        if "net" in spec.namespaces:
            progress("bring lo up")
            sys_.set_loopback_up()
        # No cgroup step here, where cgexec would come: the parent moved us
        # into the cgroup before the unshare above, so the cgroup namespace
        # is rooted at it and the limits already hold.
        init_fd = None
        if spec.init_program is not None:
            progress("write the built-in init into a sealed memfd")
            init_fd = sealed_memfd("init", spec.init_program)
        finalize(spec, channel, progress, " ".join(sorted(namespace_ids().values())), init_fd=init_fd)
    except BaseException as exc:  # noqa: B902 - the child must never return into the caller's code
        _fail(channel, progress, exc)
    os._exit(127)


# ---------------------------------------------------------------------------
# The exec path: a new process inside a running container (``docker exec``).
# ---------------------------------------------------------------------------

def exec_child(spec, namespace_fds, root_fd, stdio, channel):
    """Join the container, fork into its PID namespace, finalize; relay the exit."""
    progress = _Progress()
    try:
        # Before anything of the container is joined: this process and the
        # one it forks inside stay out of reach of the container's processes.
        progress("seal the process")
        seal()
        redirect_stdio(stdio, channel.fds() + [root_fd] + [fd for fd, _flag in namespace_fds])
        os.setpgid(0, 0)  # one group, so a timeout kills this process and its child
        sys_.prctl(sys_.PR_SET_PDEATHSIG, sys_.SIGKILL)
        progress("wait for the cgroup")
        channel.expect(sync.GO)
        for fd, flag in namespace_fds:
            progress("join namespace 0x%x" % flag)
            sys_.setns(fd, flag)
            os.close(fd)
        progress("enter the container's root")
        # setns into a mount namespace leaves us at its original root; the
        # container pivoted away from that, so go to PID 1's root instead.
        os.fchdir(root_fd)
        os.chroot(".")
        os.close(root_fd)
        # Joining a PID namespace applies to children only: fork once more.
        child = os.fork()
        if child == 0:
            finalize(spec, channel, progress, "")
        channel.close()
        status = os.waitpid(child, 0)[1]
        os._exit(exit_code(status))
    except BaseException as exc:  # noqa: B902 - the child must never return into the caller's code
        _fail(channel, progress, exc)


def exit_code(wait_status):
    """A wait status -> the shell's convention: the code, or 128 + signal."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


# ---------------------------------------------------------------------------
# The one final step of start and exec.
# ---------------------------------------------------------------------------

def _drop_privileges(spec):
    kept = spec.capability_mask
    # The bounding set first, while CAP_SETPCAP is still held: afterwards
    # no setuid binary or file capability can grant what was dropped.
    for number in range(spec.last_capability + 1):
        if not kept & (1 << number):
            sys_.prctl(sys_.PR_CAPBSET_DROP, number)
    if spec.uid != 0:
        # Keep the permitted set across setuid so the kept set survives.
        sys_.prctl(sys_.PR_SET_KEEPCAPS, 1)
    sys_.setgroups(spec.groups)
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    # Inheritable empty, as Docker 23+ leaves it: a program exec'd later
    # with file capabilities gains nothing through it. A non-root user's
    # kept set travels as ambient capabilities, which need it inheritable.
    sys_.capset(kept, kept, kept if spec.uid != 0 else 0)
    if spec.uid != 0:
        # A non-root program gets capabilities across exec only as ambient
        # ones; without this, the kept set would be empty after exec.
        for number in range(spec.last_capability + 1):
            if kept & (1 << number):
                sys_.prctl(sys_.PR_CAP_AMBIENT, sys_.PR_CAP_AMBIENT_RAISE, number)
    if spec.no_new_privileges:
        # setuid binaries and file capabilities can no longer raise privileges.
        sys_.prctl(sys_.PR_SET_NO_NEW_PRIVS, 1)


def _install_seccomp(program):
    try:
        seccomp.install(program)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS):
            raise OSError(exc.errno, "this kernel cannot filter system calls (it lacks CONFIG_SECCOMP_FILTER): "
                                     "set seccomp: unconfined to run the container without a filter")
        raise


# fcntl(2)'s memfd seals (the fcntl module names them from Python 3.8 on some
# builds only).
F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
# What ps shows inside for PID 1 with init: "handmade-init /bin/sh sh".
INIT_ARGV0 = "handmade-init"


def sealed_memfd(name, data):
    """A close-on-exec memfd holding ``data``, sealed so that nothing can change it again.

    The built-in init runs from it (``init: true``): PID 1's /proc/1/exe is
    then this memfd, which a process of the container cannot write (the
    seals refuse it), never a file of the host or of the image.
    """
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    return fd


def finalize(spec, channel, progress, exec_payload, init_fd=None):
    """Keyring, user, capabilities, no_new_privs, workdir, signals, seccomp, exec: the tail start and exec share.

    With ``init_fd`` (the built-in init, started containers only), the
    program exec'd is the init, which execs the command as its child, under
    everything installed here: the init and the command share the
    restrictions.
    """
    # A session keyring of its own, as runc gives every container: the keys
    # of the session that started it are neither readable nor writable from
    # inside. First, while keyctl is still allowed.
    progress("join a session keyring of its own")
    sys_.join_new_session_keyring()
    seccomp_program = spec.seccomp_program
    if seccomp_program is not None and not spec.no_new_privileges:
        # Without no_new_privs the kernel takes a filter only from a holder
        # of CAP_SYS_ADMIN: install it before the capabilities go, as runc
        # does (the calls that follow are all in Docker's profile).
        progress("install the seccomp filter")
        _install_seccomp(seccomp_program)
        seccomp_program = None
    progress("drop privileges")
    _drop_privileges(spec)
    progress("change to workdir %s" % spec.workdir)
    os.chdir(spec.workdir)
    os.umask(0o022)
    channel.send(sync.EXEC, exec_payload)
    sys_.reset_signals()
    if seccomp_program is not None:
        # As late as possible: nothing of ours runs under the filter but execve.
        progress("install the seccomp filter")
        _install_seccomp(seccomp_program)
    if init_fd is not None:
        progress("exec the built-in init for %s in rootfs %s" % (spec.executable, spec.rootfs))
        # Every signal blocked across execve: the init takes them from its
        # queue, and a SIGTERM sent the moment the container starts is held
        # there, not dropped before the init could block it (a namespace's
        # init without a handler loses every unblocked signal).
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        os.execve(init_fd, [INIT_ARGV0, spec.executable] + list(spec.argv), spec.env)
    progress("exec %s in rootfs %s" % (spec.executable, spec.rootfs))
    os.execve(spec.executable, spec.argv, spec.env)
