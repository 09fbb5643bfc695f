# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A detached container's log: a writer that rotates at a size.

A detached container's stdout and stderr are one pipe. Its reader is the
container's supervisor (supervisor.py): it copies the pipe into
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
directory is refused, never written through. Standard library only: the
supervisor imports it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

LOG_NAME = "container.log"
# What the supervisor reads at once: the most it holds in memory, whatever
# the container prints, and the pipe's default capacity.
CHUNK = 65536
# Limits of the log_max_size and log_max_files options.
MIN_SIZE = 1024
MAX_FILES = 1000


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
