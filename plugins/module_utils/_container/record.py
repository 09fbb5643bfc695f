# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the host remembers of a named container, and how far to believe it.

A detached container is tracked in ``/run/handmade-containers/<name>/``:
``state.json`` (the record: its format version, host pid of PID 1, its
start time from /proc/<pid>/stat, the settings it was started with and
their digest), ``stdin`` (a fifo) and ``container.log``. A record is
believed only while the kernel agrees: the pid must exist with the same
start time, so a reused pid is never taken for the container. Processes
whose stdin is the name's fifo are that container even when the record is
lost (``find_strays``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import errno
import fcntl
import hashlib
import json
import os
import signal
import stat
import time

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.logs import (
    LOG_NAME,
    StateFileError,
    open_in_dir,
    open_log,
)

STATE_ROOT = "/run/handmade-containers"
RECORD_FILE = "state.json"
FIFO_NAME = "stdin"
# The format of state.json. 1 had no "format" key; 2 adds it and records
# every setting (stop_timeout included) beside the digest of those that
# define the container. A reader takes formats up to its own and refuses
# newer ones rather than misread them.
RECORD_FORMAT = 2


def process_start_time(pid, proc="/proc"):
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A zombie counts as gone: it runs nothing and its pid is about to be freed.
    """
    try:
        with open("%s/%d/stat" % (proc, pid), "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return parse_start_time(text)


def parse_start_time(stat_text):
    """The starttime field (22nd) of a /proc/<pid>/stat line; None for zombies."""
    # The command name (field 2) may hold spaces and parentheses: split
    # after the last ')' instead of on spaces from the start.
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def config_digest(config):
    """A stable digest of a container's settings (sorted JSON, sha256)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ContainerRecord:
    """What state.json holds about one detached container.

    ``config`` is every setting of the option table as the container was
    started with it; ``config_digest`` covers those that define it.
    ``cgroup`` is the cgroup it runs in, ``cgroup_owned`` whether that one
    was made for it alone (and goes with it). ``launch_settings`` are the
    settings as the task gave them, what a restart starts it again from.
    """

    FIELDS = ("format", "name", "pid", "start_time", "config_digest", "config", "namespaces", "log_path",
              "created", "cgroup", "cgroup_owned", "launch_settings")

    def __init__(self, **fields):
        for field in self.FIELDS:
            setattr(self, field, fields.get(field))
        if self.format is None:
            self.format = RECORD_FORMAT

    def to_dict(self):
        return dict((field, getattr(self, field)) for field in self.FIELDS)

    def is_running(self, proc="/proc"):
        """True while the recorded pid is alive and still the same process."""
        if not self.pid or self.start_time is None:
            return False
        return process_start_time(self.pid, proc) == self.start_time


def _refuse(path, problem, fix):
    raise ContainerError("%s %s, refused: %s" % (path, problem, fix))


def _check_dir(fd, path):
    """A state directory must be a directory of ours (root's) that nobody else can write."""
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode):
        _refuse(path, "is not a directory", "remove it (rm %s)" % path)
    if info.st_uid != os.geteuid():
        _refuse(path, "is owned by uid %d, not by %d (root)" % (info.st_uid, os.geteuid()),
                "remove it (rm -r %s); ns_exec makes it again" % path)
    if info.st_mode & 0o022:
        _refuse(path, "is writable by group or others (mode %04o)" % stat.S_IMODE(info.st_mode),
                "remove it (rm -r %s) or chmod go-w it" % path)


def open_state_dir(path, dir_fd=None, name=None, create=False, mode=0o700):
    """Open a state directory (``name`` in ``dir_fd``, else ``path``) without following a symlink, and check it.

    Returns the fd, or None when it does not exist and ``create`` is false.
    """
    target = name if name is not None else path
    for _attempt in range(2):
        try:
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            break
        except OSError as exc:
            if exc.errno == errno.ENOENT and create:
                try:
                    os.mkdir(target, mode, dir_fd=dir_fd)
                except OSError as mkdir_exc:
                    if mkdir_exc.errno != errno.EEXIST:
                        raise ContainerError("cannot create the state directory %s: %s (is /run writable by "
                                             "root?)" % (path, mkdir_exc.strerror))
                continue
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                if os.path.islink(path):
                    _refuse(path, "is a symlink (to %s)" % os.readlink(path), "remove it (rm %s)" % path)
                _refuse(path, "is not a directory", "remove it (rm %s)" % path)
            raise ContainerError("cannot open the state directory %s: %s" % (path, exc.strerror))
    else:
        raise ContainerError("cannot open the state directory %s: it keeps disappearing" % path)
    try:
        _check_dir(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_tree(dir_fd):
    """Empty the directory ``dir_fd`` without following any symlink in it."""
    for entry in os.listdir(dir_fd):
        try:
            child = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            child = None  # not a directory (a symlink included): unlink the name itself
        if child is None:
            os.unlink(entry, dir_fd=dir_fd)
            continue
        try:
            _remove_tree(child)
        finally:
            os.close(child)
        os.rmdir(entry, dir_fd=dir_fd)


class StateDir:
    """The directory ``<root>/<name>`` of one named container.

    Every file in it is reached through the directory's fd, opened with
    ``O_NOFOLLOW`` and checked for what it should be (the record and the
    log regular files, ``stdin`` a fifo, the directory and the root
    directories of root's that nobody else can write): a symlink planted
    anywhere here is refused with the path and the fix, never followed.
    """

    def __init__(self, name, root=STATE_ROOT):
        self.name = name
        self.root = root
        self.path = os.path.join(root, name)
        self.record_path = os.path.join(self.path, RECORD_FILE)
        self.fifo_path = os.path.join(self.path, FIFO_NAME)
        self.log_path = os.path.join(self.path, LOG_NAME)

    def open(self, create=False):
        """The state directory's fd (the caller closes it), or None when there is none."""
        root_fd = open_state_dir(self.root, create=create, mode=0o755)
        if root_fd is None:
            return None
        try:
            return open_state_dir(self.path, root_fd, self.name, create=create)
        finally:
            os.close(root_fd)

    def exists(self):
        fd = self.open()
        if fd is None:
            return False
        os.close(fd)
        return True

    def _open_file(self, dir_fd, name, flags, kind, mode=0o600):
        try:
            return open_in_dir(dir_fd, name, flags, kind, mode)
        except StateFileError as exc:
            path = os.path.join(self.path, name)
            raise ContainerError("%s: %s (rm %s)" % (self.path, exc, path))

    def read(self):
        """The record, or None when there is none or it is unreadable."""
        dir_fd = self.open()
        if dir_fd is None:
            return None
        try:
            try:
                fd = self._open_file(dir_fd, RECORD_FILE, os.O_RDONLY, "file")
            except OSError:
                return None
        finally:
            os.close(dir_fd)
        try:
            with os.fdopen(fd) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        record_format = data.get("format", 1)
        if not isinstance(record_format, int) or record_format > RECORD_FORMAT:
            raise ContainerError("%s has record format %r, newer than this collection reads (%d): upgrade "
                                 "handmade.containers on the controller, or remove the container with the "
                                 "version that started it" % (self.record_path, record_format, RECORD_FORMAT))
        fields = dict((key, data.get(key)) for key in ContainerRecord.FIELDS)
        fields["format"] = record_format
        return ContainerRecord(**fields)

    def write(self, record):
        # A fresh temporary name, created (O_EXCL, never through a symlink)
        # in the directory's fd, then renamed over state.json: a crash leaves
        # the old record or the new one, never half of one, and a name planted
        # beside it is neither followed nor reused.
        dir_fd = self.open(create=True)
        try:
            temporary = ".%s.%s.tmp" % (RECORD_FILE, binascii.hexlify(os.urandom(6)).decode())
            fd = self._open_file(dir_fd, temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "file")
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(record.to_dict(), handle, sort_keys=True)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(temporary, RECORD_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                try:
                    os.unlink(temporary, dir_fd=dir_fd)
                except OSError:
                    pass
                raise
        finally:
            os.close(dir_fd)

    def prepare(self):
        """Create the directory, a fresh stdin fifo and the log; return (dir_fd, stdin_fd, log_fd)."""
        dir_fd = self.open(create=True)
        opened = [dir_fd]
        try:
            try:
                os.unlink(FIFO_NAME, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            os.mkfifo(FIFO_NAME, 0o600, dir_fd=dir_fd)
            # Read-write, so the container's stdin always has a writer and a
            # shell reading it blocks instead of seeing EOF and exiting.
            opened.append(self._open_file(dir_fd, FIFO_NAME, os.O_RDWR, "fifo"))
            try:
                opened.append(open_log(dir_fd, LOG_NAME))
            except StateFileError as exc:
                raise ContainerError("%s: %s (rm %s)" % (self.path, exc, self.log_path))
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            raise ContainerError("cannot prepare the state directory %s: %s (is /run writable by root?)"
                                 % (self.path, exc))
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        return tuple(opened)

    def open_stdin(self, dir_fd):
        """The stdin fifo of a container started before (a restart), read-write, made again if it went."""
        try:
            return self._open_file(dir_fd, FIFO_NAME, os.O_RDWR, "fifo")
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise ContainerError("cannot open %s: %s" % (self.fifo_path, exc))
        os.mkfifo(FIFO_NAME, 0o600, dir_fd=dir_fd)
        return self._open_file(dir_fd, FIFO_NAME, os.O_RDWR, "fifo")

    def remove(self):
        """Remove the directory and everything in it, following no symlink; a symlink itself is refused."""
        root_fd = open_state_dir(self.root)
        if root_fd is None:
            return
        try:
            dir_fd = open_state_dir(self.path, root_fd, self.name)
            if dir_fd is None:
                return
            try:
                _remove_tree(dir_fd)
            finally:
                os.close(dir_fd)
            os.rmdir(self.name, dir_fd=root_fd)
        except OSError as exc:
            raise ContainerError("cannot remove the state directory %s: %s" % (self.path, exc))
        finally:
            os.close(root_fd)


# The per-container locks, one empty file per name ever converged, in a
# directory of root's (a name starting with "." is no container's).
LOCKS_DIR = ".locks"


def lock_state_root(root=STATE_ROOT):
    """An exclusive lock over what containers share; returns the fd to close.

    Held for the steps that must not meet another container's: a launch
    (from the cgroup's preparation to the exec, for ``run`` too), which must
    not see its root filesystem swapped under it, and a swap of a tree (the
    check that nothing runs from it, the download, the exchange), which must
    not happen while a container launches on it. Never held while waiting
    for a container to stop, never held while taking a container's own lock
    (lock_container), so the two cannot deadlock. It locks the state
    root itself (opened without following a symlink and checked like a
    state directory), so it leaves no lock file to plant a symlink at.
    """
    fd = _open_state_root(root)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def lock_container(name, root=STATE_ROOT, blocking=True):
    """An exclusive lock over container ``name``; returns the fd to close.

    With ``blocking=False``, None when another process holds it now (the
    supervisor's restarts ask again rather than stop reading the log).

    Held while one run converges that container, so two runs never start
    the same name twice, while runs for other containers go on at once:
    eight containers stop in one stop_timeout, not eight. The lock file
    lives in ``<root>/.locks`` (root's, 0700), opened through the
    directory's fd without following a symlink; it stays when the
    container goes, so that a run waiting on it never locks a file another
    run has already replaced.
    """
    root_fd = _open_state_root(root)
    try:
        locks_fd = open_state_dir(os.path.join(root, LOCKS_DIR), root_fd, LOCKS_DIR, create=True)
    finally:
        os.close(root_fd)
    try:
        try:
            fd = open_in_dir(locks_fd, name, os.O_RDWR | os.O_CREAT, "file")
        except (OSError, StateFileError) as exc:
            raise ContainerError("cannot open the lock of container %s in %s: %s" % (
                name, os.path.join(root, LOCKS_DIR), exc))
    finally:
        os.close(locks_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _open_state_root(root):
    parent = os.path.dirname(root.rstrip("/")) or "/"
    try:
        os.makedirs(parent, 0o755, exist_ok=True)
    except OSError as exc:
        raise ContainerError("cannot create %s: %s (is /run writable by root?)" % (parent, exc))
    return open_state_dir(root, create=True, mode=0o755)


def find_strays(state_dir, proc="/proc"):
    """Processes whose stdin is this name's fifo but that no record knows.

    Every detached container reads its stdin from its state dir's fifo, so
    even with the record lost (the directory removed by hand, the module
    killed between launch and record) the kernel still tells which
    processes are that container: /proc/<pid>/fd/0 names the fifo, with
    " (deleted)" once the directory is gone.
    """
    wanted = (state_dir.fifo_path, state_dir.fifo_path + " (deleted)")
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            if os.readlink("%s/%s/fd/0" % (proc, entry)) in wanted:
                found.append(int(entry))
        except OSError:
            continue
    return found


def wait_process_gone(pid, start_time, timeout):
    """Whether process ``pid`` (the one with ``start_time``) is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process_start_time(pid) != start_time:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def stop_process_tree(pid, start_time, stop_timeout):
    """SIGTERM PID 1, then SIGKILL after ``stop_timeout`` seconds.

    SIGKILL of a PID namespace's init takes every process of the namespace
    with it, and the kernel reaps them before init is gone. Without a PID
    namespace, the container's process group gets the same signals.
    """
    for signum, wait in ((signal.SIGTERM, stop_timeout), (signal.SIGKILL, 10.0)):
        if process_start_time(pid) != start_time:
            return
        _signal(pid, signum)
        try:
            os.killpg(pid, signum)
        except OSError:
            pass
        if wait_process_gone(pid, start_time, wait):
            return
    raise ContainerError("container process %d survived SIGKILL for 10 s: it is stuck in the kernel "
                         "(D state); check `cat /proc/%d/stack`" % (pid, pid))


def kill_strays(state_dir):
    """Stop every process that find_strays says is this name's container; returns their pids."""
    strays = find_strays(state_dir)
    for pid in strays:
        start_time = process_start_time(pid)
        if start_time is not None:
            stop_process_tree(pid, start_time, 0)
    return strays
