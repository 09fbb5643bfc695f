# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths below a directory file descriptor: opened, made and removed without ever leaving it.

A rootfs may be changed while ns_exec works on it (a running container
that shares it can swap a directory for a symlink to the host at any
moment), so a path inside it is never walked again from the host's ``/``.
Every lookup starts at a file descriptor of the root and goes through
``openat2(2)`` with ``RESOLVE_IN_ROOT`` (symlinks followed as the container
sees them: an absolute target or a ``..`` stops at the root) or
``RESOLVE_BENEATH`` (anything leading above the root is an error); every
directory or file is made with ``mkdirat``/``openat`` on the parent opened
that way, and mounted through ``/proc/self/fd/N``.

Kernels before 5.6 have no openat2 (ENOSYS, remembered after the first
call): ``open_beneath`` then walks one component at a time from the root
with ``O_PATH|O_NOFOLLOW``, reading each symlink and resolving it by hand
relative to the root (at most 40 links), with the same rules and errors.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_

# As the kernel's own limit on nested symlinks (MAXSYMLINKS).
SYMLINK_LIMIT = 40
# openat2 fails a lookup through ``..`` with EAGAIN when any rename or
# mount anywhere on the host raced it (openat2(2): "the caller should
# retry"); on a busy host that is not rare. After this many tries in a
# row the hand walk, which holds every directory open and needs no
# retry, answers instead.
OPENAT2_TRIES = 16
# The resolve flags the hand walk knows; openat2 would take others, but
# nothing here asks for them.
WALK_RESOLVE = (sys_.RESOLVE_NO_XDEV | sys_.RESOLVE_NO_MAGICLINKS | sys_.RESOLVE_NO_SYMLINKS
                | sys_.RESOLVE_BENEATH | sys_.RESOLVE_IN_ROOT)


class _Openat2:
    """Whether to call openat2: False once the kernel said ENOSYS (the hand walk from then on)."""

    available = True


def components(path):
    """The names of ``path``, without empty ones and ``.``: ``"/a//b/./c"`` -> ``["a", "b", "c"]``."""
    return [part for part in path.split("/") if part not in ("", ".")]


def open_beneath(root_fd, path, flags, resolve):
    """An fd of ``path`` resolved below ``root_fd`` under ``resolve`` (openat2's RESOLVE_* flags).

    ``flags`` are open(2) flags (O_CLOEXEC is always added); ``path`` is
    relative to the root whether or not it starts with ``/``. Raises
    OSError as openat2 would: ENOENT, ENOTDIR, ELOOP for a symlink where
    RESOLVE_NO_SYMLINKS or O_NOFOLLOW forbids one, EXDEV for a way out
    under RESOLVE_BENEATH.
    """
    flags |= os.O_CLOEXEC
    relative = "/".join(components(path)) or "."
    for _try in range(OPENAT2_TRIES if _Openat2.available else 0):
        try:
            return sys_.openat2(root_fd, relative, flags, resolve)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                continue
            if exc.errno != errno.ENOSYS:
                raise
            _Openat2.available = False
            break
    return walk(root_fd, relative, flags, resolve)


def walk(root_fd, path, flags, resolve):
    """``open_beneath`` without openat2: one component at a time, every symlink resolved by hand.

    Each directory of the way is held open (``..`` pops one, never asks
    the filesystem), so a directory moved away meanwhile cannot lead above
    the root. A symlink's target is read from the link itself and walked
    from the root (absolute) or from where the link is (relative).
    RESOLVE_NO_XDEV is approximated by the device number: the walk stays
    on the root's filesystem.
    """
    if resolve & ~WALK_RESOLVE:
        raise OSError(errno.EINVAL, "resolve flags 0x%x are not handled without openat2" % resolve)
    beneath = resolve & sys_.RESOLVE_BENEATH
    device = os.fstat(root_fd).st_dev if resolve & sys_.RESOLVE_NO_XDEV else None
    pending = components(path)
    pending.reverse()
    stack = []  # fds of the directories between the root and where the walk is
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if stack:
                    os.close(stack.pop())
                elif beneath:
                    raise OSError(errno.EXDEV, "%s climbs above the root with '..'" % path)
                continue
            here = stack[-1] if stack else root_fd
            fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here)
            info = os.fstat(fd)
            last = not pending
            if device is not None and info.st_dev != device:
                os.close(fd)
                raise OSError(errno.EXDEV, "%s: %s is on another filesystem" % (path, part))
            if not stat.S_ISLNK(info.st_mode):
                if not last and not stat.S_ISDIR(info.st_mode):
                    os.close(fd)
                    raise OSError(errno.ENOTDIR, "%s: %s is not a directory" % (path, part))
                stack.append(fd)
                continue
            if last and flags & os.O_NOFOLLOW:
                if not flags & os.O_PATH:
                    os.close(fd)
                    raise OSError(errno.ELOOP, "%s is a symlink" % path)
                stack.append(fd)  # O_PATH|O_NOFOLLOW opens the link itself, as open(2) does
                continue
            try:
                target = os.readlink("", dir_fd=fd)
            finally:
                os.close(fd)
            links += 1
            if resolve & sys_.RESOLVE_NO_SYMLINKS or links > SYMLINK_LIMIT:
                raise OSError(errno.ELOOP, "%s: too many symlinks or a symlink where none may be" % path)
            if target.startswith("/"):
                if beneath:
                    raise OSError(errno.EXDEV, "%s: the symlink %s leads to an absolute path" % (path, part))
                while stack:
                    os.close(stack.pop())
            pending.extend(reversed(components(target)))
        return _reopen(stack[-1] if stack else root_fd, flags)
    finally:
        for fd in stack:
            os.close(fd)


def _reopen(fd, flags):
    """The walk's O_PATH fd opened again with the caller's flags (a new fd; ``fd`` stays the caller's)."""
    if flags & os.O_DIRECTORY and not stat.S_ISDIR(os.fstat(fd).st_mode):
        raise OSError(errno.ENOTDIR, "not a directory")
    if flags & os.O_PATH:
        return os.dup(fd)
    # Through the magic link of the fd, not a name: nothing can be swapped
    # in between. O_NOFOLLOW would refuse the magic link itself.
    return os.open("/proc/self/fd/%d" % fd, flags & ~(os.O_NOFOLLOW | os.O_CREAT | os.O_EXCL))


def fd_path(fd):
    """The path that names what ``fd`` holds, for mount(2) and friends: /proc/self/fd/N."""
    return "/proc/self/fd/%d" % fd


class Made:
    """What ``make_path`` created below a root, oldest first, so that it can be removed again.

    Each entry is the path of its parent (below the root), its name and its
    (st_dev, st_ino): ``remove`` deletes an entry only if the name, looked
    up without following it, still holds a file with that inode (a
    directory only if empty, as rmdir does), so a symlink or another file
    swapped in meanwhile is left alone.
    """

    def __init__(self):
        self.entries = []

    def add(self, parent, name, info):
        self.entries.append((parent, name, (info.st_dev, info.st_ino), stat.S_ISDIR(info.st_mode)))

    def extend(self, other):
        self.entries.extend(other.entries)

    def remove(self, root_fd):
        """Delete every entry, newest first; what is no longer there (or not empty) is left alone."""
        for parent, name, identity, is_dir in reversed(self.entries):
            try:
                parent_fd = open_beneath(root_fd, parent, os.O_PATH | os.O_DIRECTORY, sys_.RESOLVE_IN_ROOT)
            except OSError:
                continue
            try:
                info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
                if (info.st_dev, info.st_ino) == identity:
                    if is_dir:
                        os.rmdir(name, dir_fd=parent_fd)
                    else:
                        os.unlink(name, dir_fd=parent_fd)
            except OSError:
                pass  # gone already, or something was put in it: not ours to delete
            finally:
                os.close(parent_fd)
        self.entries = []


def make_path(root_fd, path, directory=True, mode=0o755, resolve=sys_.RESOLVE_IN_ROOT, made=None):
    """Open ``path`` below ``root_fd`` (O_PATH), making what is missing: directories, then a file if not ``directory``.

    ``mode`` is the final entry's (exactly: not trimmed by the umask);
    directories made on the way get 0755.

    Each missing component is made with mkdirat (or an exclusive openat
    for the file) on its parent, itself opened under ``resolve``; the new
    entry is opened again with O_NOFOLLOW, so a symlink swapped in at that
    moment is refused, never followed. What was made is added to ``made``
    (a ``Made``). An existing final component of the wrong kind is
    ENOTDIR (a directory wanted) or EISDIR (a file wanted).
    """
    names = components(path)
    parent_fd = os.dup(root_fd)
    try:
        for index, name in enumerate(names):
            last = index == len(names) - 1
            below = "/".join(names[:index + 1])
            try:
                fd = open_beneath(root_fd, below, os.O_PATH, resolve)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                is_dir = directory or not last
                fd = _make_entry(parent_fd, name, is_dir, mode if last else 0o755)
                if made is not None:
                    made.add("/".join(names[:index]), name, os.fstat(fd))
            os.close(parent_fd)
            parent_fd = fd
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            if (not last or directory) and not is_dir:
                raise OSError(errno.ENOTDIR, "%s is not a directory" % "/".join(names[:index + 1]))
            if last and not directory and is_dir:
                raise OSError(errno.EISDIR, "%s is a directory" % path)
        result, parent_fd = parent_fd, None
        return result
    finally:
        if parent_fd is not None:
            os.close(parent_fd)


def _make_entry(parent_fd, name, directory, mode):
    """Make ``name`` in ``parent_fd`` and return an O_PATH fd of the new entry itself."""
    if directory:
        os.mkdir(name, mode, dir_fd=parent_fd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    else:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                     dir_fd=parent_fd)
    try:
        os.fchmod(fd, mode)  # the umask trimmed what mkdir and open set
        return os.open(fd_path(fd), os.O_PATH | os.O_CLOEXEC)
    finally:
        os.close(fd)
