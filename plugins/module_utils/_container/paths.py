# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths inside a root filesystem, resolved the way the container will see them.

The host walks the rootfs before the container exists (to find the
command, the workdir, a volume's destination), so a symlink in the rootfs
must lead where it will lead inside: an absolute target starts again at the
rootfs, never at the host's /.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

_SYMLINK_LIMIT = 40


def resolve_in_root(root, path, what="path"):
    """Return ``(host_path, exists)`` for ``path`` inside ``root``.

    Symlinks are followed as the container will follow them (an absolute
    target starts again at the rootfs, not at the host's /). A ``..`` that
    climbs above the rootfs is refused rather than clamped: a volume whose
    destination tries that is a mistake or an attack, never what a user meant.
    Missing trailing components are returned joined on, with ``exists``
    False, for the caller to create.
    """
    pending = [part for part in path.split("/") if part not in ("", ".")]
    pending.reverse()
    resolved = []
    via_link = None
    links_followed = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if not resolved:
                how = " through the symlink %s" % via_link if via_link else ""
                raise ContainerError("%s %s escapes the rootfs %s%s: use a path inside the rootfs"
                                     % (what, path, root, how))
            resolved.pop()
            continue
        candidate = os.path.join(root, *(resolved + [part]))
        try:
            info = os.lstat(candidate)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ContainerError("cannot look up %s %s in rootfs %s: %s" % (what, path, root, exc))
            rest = list(reversed(pending))
            if ".." in rest:
                raise ContainerError("%s %s climbs through the missing directory %s in rootfs %s: "
                                     "write it without '..'" % (what, path, candidate, root))
            return os.path.join(root, *(resolved + [part] + rest)), False
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        links_followed += 1
        if links_followed > _SYMLINK_LIMIT:
            raise ContainerError("%s %s in rootfs %s loops through symlinks" % (what, path, root))
        try:
            target = os.readlink(candidate)
        except OSError as exc:  # swapped between the lstat and now: the rootfs is changing under us
            raise ContainerError("cannot look up %s %s in rootfs %s: %s changed while it was read (%s): run "
                                 "again once the rootfs holds still" % (what, path, root, candidate, exc.strerror))
        via_link = "/%s -> %s" % ("/".join(resolved + [part]), target)
        if target.startswith("/"):
            resolved = []
        for piece in reversed([p for p in target.split("/") if p not in ("", ".")]):
            pending.append(piece)
    return os.path.join(root, *resolved) if resolved else root, True


def find_executable(root, command, env_path, workdir):
    """The path to exec (as the container sees it) for ``command``, checked."""
    if "/" in command:
        candidates = [command if command.startswith("/") else os.path.join(workdir, command)]
    else:
        candidates = [os.path.join(directory or ".", command) for directory in env_path.split(":")]
    for candidate in candidates:
        host_path, exists = resolve_in_root(root, candidate, "command")
        if not exists:
            continue
        info = os.stat(host_path)
        if stat.S_ISDIR(info.st_mode):
            raise ContainerError("command %s in rootfs %s is a directory, not a program" % (candidate, root))
        if not info.st_mode & 0o111:
            raise ContainerError("command %s in rootfs %s is not executable (mode %o): chmod +x it "
                                 "or run it through its interpreter" % (candidate, root, info.st_mode & 0o7777))
        if os.statvfs(host_path).f_flag & os.ST_NOEXEC:
            mount_point = _mount_point(host_path)
            raise ContainerError("command %s in rootfs %s is on a filesystem mounted noexec (at %s), where "
                                 "nothing can run: remount it exec (mount -o remount,exec %s) or keep the rootfs "
                                 "on another filesystem" % (candidate, root, mount_point, mount_point))
        return candidate
    if "/" in command:
        raise ContainerError("rootfs %s has no %s: check the command or the rootfs" % (root, candidates[0]))
    raise ContainerError("rootfs %s has no %s in PATH %s: check the command or give its full path"
                         % (root, command, env_path))


def _mount_point(path):
    """The mount point of the filesystem ``path`` is on: the top directory with its st_dev."""
    path = os.path.realpath(path)
    device = os.stat(path).st_dev
    while path != "/":
        parent = os.path.dirname(path)
        if os.stat(parent).st_dev != device:
            break
        path = parent
    return path
