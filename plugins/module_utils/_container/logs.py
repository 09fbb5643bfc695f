# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A detached container's log: a writer that rotates at a size, and the relay that feeds it.

A detached container's stdout and stderr are one pipe. Its reader is the
log relay, one process per container: it copies the pipe into
``container.log`` in the state directory and rotates it as Docker's
json-file driver does with ``max-size`` and ``max-file``: when the next
bytes would make the file longer than ``log_max_size``, it is renamed to
``container.log.1`` (``.1`` to ``.2`` and so on, the oldest dropped) and a
new one is started. A file is cut after the last whole line that fits, or,
when the container had printed only part of a line, after the end of that
line if it comes within one chunk (64 KiB): so each file holds at most
``log_max_size`` plus the rest of one line, no line is split between files
unless it is longer than a chunk, and none is ever lost.

Every name is opened and renamed relative to the state directory's fd,
never through a path, with ``O_NOFOLLOW``: a symlink planted in the state
directory is refused, never written through.

This file is also the relay's program. ``start_relay`` forks, and the child
execs ``python3 -I -S`` with this file's own source (read from a pipe), so
the relay needs nothing on disk once it runs (Ansible deletes the module's
files after the task) and costs a bare interpreter, not a copy of the
module's. Hence: nothing is imported here but the standard library, and
what only the module needs is imported where it is used.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import signal
import stat
import sys

LOG_NAME = "container.log"
# What the relay reads at once: the most it holds in memory, whatever the
# container prints, and the pipe's default capacity.
CHUNK = 65536
# Limits of the log_max_size and log_max_files options.
MIN_SIZE = 1024
MAX_FILES = 1000
# The relay's argv[1]: how a relay is told from other processes (record.find_relays).
RELAY_MARK = "handmade-containers-log-relay"
# The relay's descriptors: 0 the container's pipe, 1 and 2 /dev/null, then these.
SOURCE_FD = 3
DIR_FD = 4
LOG_FD = 5
# Run by the exec'd interpreter: read this file's source from SOURCE_FD and run it as __main__.
BOOTSTRAP = ("f = open(%d, 'rb'); source = f.read(); f.close(); "
             "exec(compile(source, %r, 'exec'))" % (SOURCE_FD, RELAY_MARK))


class StateFileError(Exception):
    """A name in the state directory that is not what it should be (a symlink, another kind of file)."""


def open_in_dir(dir_fd, name, flags, kind, mode=0o600):
    """Open ``name`` in the directory ``dir_fd`` without following a symlink; check what it is.

    ``kind`` is ``"file"`` (a regular file with one link) or ``"fifo"``.
    O_NONBLOCK keeps a fifo planted where a file belongs from blocking the
    open; it is cleared again on what is returned.
    """
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateFileError("%s is a symlink, refused: remove it" % name)
        raise
    try:
        info = os.fstat(fd)
        if kind == "fifo" and not stat.S_ISFIFO(info.st_mode):
            raise StateFileError("%s is not a fifo, refused: remove it" % name)
        if kind == "file" and not stat.S_ISREG(info.st_mode):
            raise StateFileError("%s is not a regular file, refused: remove it" % name)
        if kind == "file" and info.st_nlink != 1:
            # A hard link planted in the state dir would be written through like a symlink.
            raise StateFileError("%s has %d hard links, refused: remove it" % (name, info.st_nlink))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_log(dir_fd, name=LOG_NAME, fresh=False):
    """The log file ``name`` in ``dir_fd``, for appending; ``fresh`` insists on creating it."""
    # Read-write: the writer reads the last byte back to know whether a line is open.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | (os.O_EXCL if fresh else 0)
    return open_in_dir(dir_fd, name, flags, "file", 0o640)


class RotatingWriter:
    """``name`` in ``dir_fd`` and its rotated copies ``name.1`` .. ``name.<max_files - 1>``.

    ``fd`` is the log already opened (by the module, which checked it);
    without it the writer opens ``name`` itself. A write never fails: what
    cannot be written (a full /run) is dropped and counted in ``dropped``,
    so the container never blocks on its own output.
    """

    def __init__(self, dir_fd, max_size, max_files, name=LOG_NAME, fd=None):
        if max_size < 1 or max_files < 1:
            raise ValueError("a log needs max_size >= 1 and max_files >= 1")
        self.dir_fd = dir_fd
        self.max_size = max_size
        self.max_files = max_files
        self.name = name
        self.dropped = 0
        self.fd = open_log(dir_fd, name) if fd is None else fd
        self.size = os.fstat(self.fd).st_size
        # Whether the file ends inside a line (a container started again appends to its old log).
        self._line_open = bool(self.size) and os.pread(self.fd, 1, self.size - 1) != b"\n"
        self._remove_beyond()

    def _rotated(self, index):
        return "%s.%d" % (self.name, index)

    def _remove_beyond(self):
        """Drop rotated copies a larger log_max_files left (the container was started with more)."""
        prefix = self.name + "."
        for entry in os.listdir(self.dir_fd):
            suffix = entry[len(prefix):] if entry.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) >= self.max_files:
                self._unlink(entry)

    def _unlink(self, name):
        try:
            os.unlink(name, dir_fd=self.dir_fd)  # unlink never follows a symlink
        except OSError:
            pass

    def write(self, data):
        """Append ``data``, rotating first whenever it would not fit."""
        view = memoryview(data)
        while len(view):
            room = self.max_size - self.size
            if len(view) <= room:
                self._write_all(view)
                return
            # Cut after the last whole line that fits, so a file ends at a line's end.
            cut = bytes(view[:room]).rfind(b"\n") + 1 if room > 0 else 0
            if not cut and self._line_open:
                # The file ends inside a line (the container had printed part
                # of it): finish that line here, up to one chunk past the size,
                # so no line is split between two files.
                cut = bytes(view[:CHUNK]).find(b"\n") + 1
                if not cut:
                    self.rotate()  # a line longer than a chunk: split it, lose nothing
                    continue
            if not cut:
                if self.size:
                    self.rotate()  # the line starts the next file
                    continue
                cut = room  # a line longer than a whole file: split it, lose nothing
            self._write_all(view[:cut])
            self.rotate()
            view = view[cut:]

    def _write_all(self, view):
        while len(view):
            if self.fd is None:
                self.dropped += len(view)
                return
            try:
                written = os.write(self.fd, view)
            except OSError:  # ENOSPC, EIO: drop rather than block the container
                self.dropped += len(view)
                return
            self.size += written
            self._line_open = view[written - 1:written] != b"\n"
            view = view[written:]

    def rotate(self):
        """``name`` -> ``name.1`` -> ... -> ``name.<max_files - 1>`` (the oldest goes); start a new ``name``."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.max_files == 1:
            self._unlink(self.name)
        for index in range(self.max_files - 1, 0, -1):
            source = self.name if index == 1 else self._rotated(index - 1)
            try:
                # rename works on names: a symlink planted at either one is moved or replaced, never followed.
                os.rename(source, self._rotated(index), src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            except OSError:
                pass
        self.size = 0
        self._line_open = False
        for _attempt in range(2):
            try:
                self.fd = open_log(self.dir_fd, self.name, fresh=True)
                return
            except (OSError, StateFileError):
                # Something appeared under the name between the rename and the
                # create: it is not ours, so it goes (unlinked, not followed).
                self._unlink(self.name)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------
# The relay: the process that copies the container's pipe into the log.
# ---------------------------------------------------------------------------

def relay(source_fd, writer):
    """Copy ``source_fd`` into ``writer`` until every writer of the pipe is gone."""
    while True:
        try:
            chunk = os.read(source_fd, CHUNK)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            break
        if not chunk:
            break  # EOF: every process of the container closed its stdout and stderr
        writer.write(chunk)
    writer.close()


def _harden():
    """Nothing of the relay is readable through /proc by a process without CAP_SYS_PTRACE; never OOM-killed."""
    try:
        import ctypes  # only here: the relay's one system call without an os function
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except (ImportError, OSError, AttributeError):
        pass
    try:
        # In the container's memory cgroup, the container's own processes are
        # the ones to kill when it is over its limit, not its log.
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("-1000")
    except OSError:
        pass


def relay_main(argv):
    """The relay process: ``RELAY_MARK max_size max_files``, descriptors as start_relay sets them."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _harden()
    max_size, max_files = int(argv[1]), int(argv[2])
    relay(0, RotatingWriter(DIR_FD, max_size, max_files, fd=LOG_FD))
    os._exit(0)


def _own_source():
    """This file's source, from wherever the module's files are (a zip under AnsiballZ, or a checkout)."""
    loader = globals().get("__loader__")
    source = None
    if loader is not None and hasattr(loader, "get_source"):
        try:
            source = loader.get_source(__name__)
        except ImportError:
            source = None
    if source is None:
        with open(__file__.replace(".pyc", ".py")) as handle:
            source = handle.read()
    return source.encode("utf-8")


def start_relay(dir_fd, log_fd, max_size, max_files, attach=None):
    """Start the relay for a detached container; return (relay pid, the pipe's write end).

    The write end becomes the container's stdout and stderr; the caller
    closes its copy once the container holds it. The relay gets its own
    session, ignores SIGHUP and holds only the pipe's read end, the state
    directory and the log (and /dev/null as stdout and stderr): nothing of
    Ansible's. ``attach(pid)`` runs before the relay may exec (moving it
    into the container's cgroup, so everything it allocates is counted
    there). The relay exits when the container's last process closes the
    pipe.
    """
    import fcntl  # the module's side only: the relay never runs this function
    from ansible_collections.handmade.containers.plugins.module_utils._container.launch import kill_and_reap

    source = _own_source()
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    source_r, source_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    argv = [sys.executable, "-I", "-S", "-c", BOOTSTRAP, RELAY_MARK, str(max_size), str(max_files)]
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an ignored signal stays ignored across exec
                if os.read(go_r, 1) != b"g":
                    os._exit(1)  # the parent gave up: exec nothing
                wanted = (read_fd, devnull, devnull, source_r, dir_fd, log_fd)
                # Copies above the targets first, so no dup2 overwrites a descriptor still to be placed.
                high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in wanted]
                for target, fd in enumerate(high):
                    os.dup2(fd, target)
                os.closerange(len(wanted), 65536)
                os.execv(sys.executable, argv)
            finally:
                os._exit(127)
    finally:
        for fd in (read_fd, source_r, go_r, devnull):
            os.close(fd)
    try:
        try:
            if attach is not None:
                attach(pid)
            os.write(go_w, b"g")
        finally:
            os.close(go_w)
        view = memoryview(source)
        while len(view):
            view = view[os.write(source_w, view):]
    except BaseException:
        os.close(write_fd)
        kill_and_reap(pid)
        raise
    finally:
        os.close(source_w)
    return pid, write_fd


def check_limits(max_size, max_files):
    """``log_max_size`` and ``log_max_files`` -> (bytes, count), or ValueError naming the option and the fix."""
    from ansible_collections.handmade.containers.plugins.module_utils._units import UnitError, parse_size

    try:
        size = parse_size(max_size)
    except UnitError as exc:
        raise ValueError("log_max_size: %s" % exc)
    if size is None:
        raise ValueError("log_max_size %s: the log of a detached container is always rotated (it lives in "
                         "/run, in memory): give a size such as 100m" % (max_size,))
    if size < MIN_SIZE:
        raise ValueError("log_max_size %s is less than %d bytes: give at least 1k, e.g. 5m"
                         % (max_size, MIN_SIZE))
    if isinstance(max_files, bool) or not isinstance(max_files, int):
        try:
            max_files = int(str(max_files).strip())
        except ValueError:
            raise ValueError("log_max_files %r is not a whole number: give e.g. 4" % (max_files,))
    if not 1 <= max_files <= MAX_FILES:
        raise ValueError("log_max_files %d is out of range: give 1 to %d (the current file included)"
                         % (max_files, MAX_FILES))
    return size, max_files


if __name__ == "__main__":
    relay_main(sys.argv[1:])
