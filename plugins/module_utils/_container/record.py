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

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import time

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

STATE_ROOT = "/run/handmade-containers"
RECORD_FILE = "state.json"
FIFO_NAME = "stdin"
LOG_NAME = "container.log"
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
    was made for it alone (and goes with it).
    """

    FIELDS = ("format", "name", "pid", "start_time", "config_digest", "config", "namespaces", "log_path",
              "created", "cgroup", "cgroup_owned")

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


class StateDir:
    """The directory ``<root>/<name>`` of one named container."""

    def __init__(self, name, root=STATE_ROOT):
        self.name = name
        self.path = os.path.join(root, name)
        self.record_path = os.path.join(self.path, RECORD_FILE)
        self.fifo_path = os.path.join(self.path, FIFO_NAME)
        self.log_path = os.path.join(self.path, LOG_NAME)

    def exists(self):
        return os.path.isdir(self.path)

    def read(self):
        """The record, or None when there is none or it is unreadable."""
        try:
            with open(self.record_path) as handle:
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
        # Write then rename: a crash leaves the old record or the new one,
        # never half of one.
        temporary = self.record_path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(record.to_dict(), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, self.record_path)

    def prepare(self):
        """Create the directory, a fresh stdin fifo and the log; return (stdin_fd, log_fd)."""
        try:
            os.makedirs(self.path, 0o700, exist_ok=True)
            try:
                os.unlink(self.fifo_path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            os.mkfifo(self.fifo_path, 0o600)
            # Read-write, so the container's stdin always has a writer and a
            # shell reading it blocks instead of seeing EOF and exiting.
            stdin_fd = os.open(self.fifo_path, os.O_RDWR | os.O_CLOEXEC)
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ContainerError("cannot prepare the state directory %s: %s (is /run writable by root?)"
                                 % (self.path, exc))
        return stdin_fd, log_fd

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def lock_state_root(root=STATE_ROOT):
    """An exclusive lock over all named containers; returns the fd to close.

    Held while one run converges a container, so two runs never start the
    same name twice. It locks the state root itself, so it leaves no file.
    """
    try:
        os.makedirs(root, 0o755, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ContainerError("cannot create the state root %s: %s (is /run writable by root?)" % (root, exc))
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


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


def _wait_gone(pid, start_time, timeout):
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
        if _wait_gone(pid, start_time, wait):
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
