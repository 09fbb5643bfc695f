# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a ``run`` or ``exec`` prints: kept in bounded memory, and whole in a file when asked.

A container may print without end, and this module runs as root outside
its cgroup, so the container's output must never set how much memory the
module takes. Each stream (stdout, stderr) goes through a ``StreamCapture``:

* the task result gets at most ``output_limit`` bytes of it: when the
  stream is longer, its first half (``head``: how it began, which command,
  which version) and its last half (``tail``: how it ended, the error that
  stopped it), with one marker line between them saying how much was cut,
  as CI logs show a long job;
* with ``keep_output``, every byte also goes to a file of its own in
  ``output_dir`` (created 0600, ``O_EXCL | O_NOFOLLOW``, in a directory
  that only root can write), and the result says where.

Without ``keep_output`` nothing touches the disk: the bounded head and
tail in memory are all the result needs, and a file nobody reads would
only cost I/O (1 GB printed would be 1 GB written).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat
import time

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

# 1 MiB of each stream: about 10,000 lines of log, more than anyone reads
# in a task result. The result travels to the controller as JSON, which
# adds stdout_lines (a second copy) and keeps every host's result in
# memory, so with 50 hosts 1 MiB per stream is already ~200 MB there.
# Raise it per task (output_limit), or keep the whole output in a file.
DEFAULT_OUTPUT_LIMIT = 1024 * 1024

# On disk, not RAM (/run and often /tmp are tmpfs), root's own tree, next
# to the root filesystems, as Docker keeps its logs under /var/lib/docker.
DEFAULT_OUTPUT_DIR = "/var/lib/handmade-containers/output"

STREAMS = ("stdout", "stderr")

# How many lines and characters of stderr a failure message quotes.
MESSAGE_LINES = 5
MESSAGE_CHARS = 1000


class OutputSettings:
    """How much of each stream the result carries, and whether (and where) the whole is kept."""

    def __init__(self, limit=None, keep=False, directory=None, label="run"):
        self.limit = DEFAULT_OUTPUT_LIMIT if limit is None else limit
        self.keep = bool(keep)
        self.directory = directory or DEFAULT_OUTPUT_DIR
        self.label = label

    @classmethod
    def from_params(cls, params, label):
        """Validated settings from a task's ``output_limit``, ``keep_output`` and ``output_dir``."""
        limit = params.get("output_limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ContainerError("output_limit must be a number of bytes >= 0 (got %r): for example 1048576 "
                                     "or '4M'; 0 returns no output, keep_output: true keeps all of it" % (limit,))
        directory = params.get("output_dir")
        if directory is not None and not os.path.isabs(directory):
            raise ContainerError("output_dir must be an absolute path (got %r): for example %s"
                                 % (directory, DEFAULT_OUTPUT_DIR))
        return cls(limit=limit, keep=params.get("keep_output"), directory=directory, label=label)


class StreamCapture:
    """One stream: its bounded head and tail in memory, and every byte in ``fd`` when kept."""

    def __init__(self, name, limit, fd=None, path=None):
        self.name = name
        self.limit = limit
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.fd = fd
        self.path = path
        self.write_error = None

    def feed(self, chunk):
        """Take the next bytes of the stream."""
        self.total += len(chunk)
        if self.fd is not None:
            self._write(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_limit:
            self.tail += chunk
            # Trimmed once it holds twice the tail: each byte is moved at
            # most once or twice, and memory stays below 2 x the limit.
            if len(self.tail) > 2 * self.tail_limit:
                del self.tail[:len(self.tail) - self.tail_limit]

    def _write(self, chunk):
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            # A full disk must not cost the command's result: the file
            # stops here and the result says so.
            self.write_error = "%s stopped at %d bytes: %s" % (self.path, self.total - len(view), exc.strerror)
            self.close()

    @property
    def truncated(self):
        return self.total > self.limit

    def data(self):
        """The bytes the result carries: all of them, or head + marker + tail."""
        if not self.truncated:
            return bytes(self.head + self.tail)
        tail = self.tail[len(self.tail) - self.tail_limit:] if self.tail_limit else b""
        where = ("the whole %s is in %s" % (self.name, self.path) if self.path and self.write_error is None
                 else "keep_output: true keeps all of it")
        marker = ("\n[... %d bytes of %s cut here: output_limit is %d bytes; %s ...]\n"
                  % (self.total - len(self.head) - len(tail), self.name, self.limit, where))
        return bytes(self.head) + marker.encode("ascii", "replace") + bytes(tail)

    def text(self):
        # The container's output is untrusted bytes: never fail on them.
        return self.data().decode("utf-8", "replace")

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class Capture:
    """stdout and stderr of one run or exec, per OutputSettings."""

    def __init__(self, settings):
        self.settings = settings
        self.streams = {}
        paths = _open_kept_files(settings) if settings.keep else {}
        for name in STREAMS:
            fd, path = paths.get(name, (None, None))
            self.streams[name] = StreamCapture(name, settings.limit, fd=fd, path=path)

    def __getitem__(self, name):
        return self.streams[name]

    def close(self):
        for stream in self.streams.values():
            stream.close()

    def results(self):
        """The result's stdout, stderr, *_truncated, *_path (kept files only) and warnings."""
        self.close()
        found = {}
        warnings = []
        for name, stream in self.streams.items():
            found[name] = stream.text()
            found[name + "_truncated"] = stream.truncated
            if self.settings.keep:
                found[name + "_path"] = stream.path
            if stream.write_error:
                warnings.append("the whole %s could not be kept: %s" % (name, stream.write_error))
        if warnings:
            found["warnings"] = warnings
        return found


def _open_output_dir(directory):
    """An fd of ``directory``, made 0700 if missing, refused unless only root (we) can write it."""
    try:
        os.makedirs(directory, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise ContainerError("cannot create output_dir %s: %s: give a directory on a writable disk"
                                 % (directory, exc.strerror))
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ContainerError("cannot open output_dir %s: %s: it must be a real directory, not a symlink"
                             % (directory, exc.strerror))
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise ContainerError("output_dir %s is owned by uid %d with mode %o: another user could replace the "
                             "files kept there; give a directory owned by root that only root can write "
                             "(the default %s is one)"
                             % (directory, info.st_uid, stat.S_IMODE(info.st_mode), DEFAULT_OUTPUT_DIR))
    return fd


def _open_kept_files(settings):
    """{stream: (fd, path)}: a new private file per stream, named after the container and the time."""
    dir_fd = _open_output_dir(settings.directory)
    opened = {}
    try:
        stem = "%s-%s-%d-%s" % (settings.label, time.strftime("%Y%m%dT%H%M%S"), os.getpid(), os.urandom(4).hex())
        for name in STREAMS:
            filename = "%s.%s" % (stem, name)
            try:
                fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=dir_fd)
            except OSError as exc:
                raise ContainerError("cannot create %s in output_dir %s: %s"
                                     % (filename, settings.directory, exc.strerror))
            opened[name] = (fd, os.path.join(settings.directory, filename))
    except BaseException:
        for fd, _path in opened.values():
            os.close(fd)
        raise
    finally:
        os.close(dir_fd)
    return opened


def last_lines(text, lines=MESSAGE_LINES, chars=MESSAGE_CHARS):
    """The end of ``text`` for a one-line message: its last non-empty lines, at most ``chars`` characters."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    if len(joined) > chars:
        joined = "..." + joined[len(joined) - chars:]
    return joined
