# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount plan: what the container's root holds, as a list of steps run by one loop.

``build_plan(spec)`` turns a spec into ``Step``s in the order the kernel
needs: mount points made while the rootfs is still writable, the rootfs
made read-only (if asked) before anything is mounted on it, then Docker's
order (``/proc``, ``/dev``, ``/dev/pts``, ``/sys``, ``/sys/fs/cgroup``,
``/dev/mqueue``, ``/dev/shm``), the masks over host-revealing kernel
files, the read-only kernel paths and the volumes. ``run_plan`` runs them
in the child, in its own mount namespace, with the rootfs bind mount as the
working directory; every target is relative to it. A new kind of mount is
one entry in ``RUNNERS`` plus the line of ``build_plan`` that asks for it.

No target is ever walked by name from the host's ``/`` (a container
sharing the rootfs may swap a directory for a symlink at any moment):
``make_mount_points`` makes the missing mount points before the fork
through file descriptors of the rootfs (beneath.py), and in the child every
step opens its target below the rootfs or below a mount the plan made
(``_Context``), with no symlink followed for ns_exec's own paths and the
container's own rules (``RESOLVE_IN_ROOT``) for volumes, then mounts on
``/proc/self/fd/N``. ``/proc``, ``/dev`` and ``/sys`` must be real
directories; each mount is checked to be the filesystem just mounted, and
the masks are applied inside that procfs and sysfs only.

Read-only is always recursive (``make_readonly``): a read-only bind of a
tree with mounts below it (the host's ``/sys`` with its cgroup mounts, a
volume whose source has a submount) is read-only all the way down.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import beneath
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._devices import DEVICES

_PROC_FLAGS = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
_SYSFS_FLAGS = sys_.MS_RDONLY | sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC

DEV_LINKS = (
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
# Docker's default masked and read-only paths: kernel interfaces that leak
# host information (kcore, keys, timer_list, interrupts) or let root
# reconfigure the host (sysrq-trigger, /proc/sys). Only those that exist are
# covered; a "*" stands for the CPU numbers (cpu0, cpu1, ...).
MASKED_PATHS = (
    "proc/acpi", "proc/asound", "proc/interrupts", "proc/kcore", "proc/keys", "proc/latency_stats",
    "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
    "sys/firmware", "sys/devices/virtual/powercap", "sys/devices/system/cpu/cpu*/thermal_throttle",
)
READONLY_PATHS = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")
# The mount points of the plan that are the image's own directories, made
# if missing; and those a fresh /dev covers, refused in an image all the
# same when they are symlinks or not directories: an image laid out so is a
# mistake or an attack, and is told so before anything is mounted.
ROOTFS_MOUNT_POINTS = ("proc", "dev", "sys")
IMAGE_MOUNT_POINTS = ROOTFS_MOUNT_POINTS + ("dev/pts", "dev/mqueue", "dev/shm")
# What each of them must hold once mounted (statfs f_type), and the
# filesystems the masks may cover.
MOUNTED_TYPES = {"proc": sys_.PROC_SUPER_MAGIC, "dev": sys_.TMPFS_MAGIC, "sys": sys_.SYSFS_MAGIC}
# ns_exec's own paths: below the base, never through a symlink.
_OWN = sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS
# A volume's dest: as the container will resolve it, never above the rootfs.
_IN_ROOT = sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS


class Step:
    """One operation of the plan: a ``kind`` (a key of RUNNERS), its target, its arguments."""

    def __init__(self, kind, target, **arguments):
        self.kind = kind
        self.target = target
        self.arguments = arguments

    def describe(self):
        return "%s /%s" % (self.kind.replace("_", " "), self.target.lstrip("./"))

    def __repr__(self):
        return "Step(%r, %r, %r)" % (self.kind, self.target, self.arguments)


def build_plan(spec, host_cgroups=None):
    """The steps that build the container's root for ``spec``, in order.

    ``host_cgroups`` is what ``host_cgroup_mounts()`` reads (the default):
    the hierarchies the container's ``/sys/fs/cgroup`` shows.
    """
    # Checked again here (build_spec checked them, make_mount_points made
    # the missing ones): a container sharing the rootfs may have swapped one.
    plan = [Step("mount_point", name) for name in ROOTFS_MOUNT_POINTS]
    if spec.readonly_rootfs:
        # Before anything is mounted on it, so /proc, /dev and the volumes
        # keep their own flags while the rootfs and every mount below it on
        # the host turn read-only.
        plan.append(Step("readonly", "."))
    # The walkthrough's `mount -t proc proc /proc`, done before pivot_root:
    # this proc belongs to the new PID namespace, so `ps` sees only the
    # container. (Without a new PID namespace it shows the host's processes.)
    plan.append(Step("proc", "proc"))
    # A fresh tmpfs rather than the host's /dev: the container gets the few
    # harmless character devices and nothing that reaches host hardware.
    plan.append(Step("tmpfs", "dev", flags=sys_.MS_NOSUID | sys_.MS_STRICTATIME, data="mode=755,size=65536k"))
    plan.extend(Step("device", "dev/" + name, major=major, minor=minor) for name, major, minor in DEVICES)
    plan.append(Step("directory", "dev/pts", mode=0o755))
    plan.append(Step("devpts", "dev/pts"))
    # A fresh sysfs, read-only, whether or not the container has a network
    # namespace of its own: it shows the network devices of the mounter's
    # namespace (the host's, when the container shares it), and none of the
    # host's mounts below /sys (its cgroup hierarchies) come with it.
    plan.append(Step("sysfs", "sys"))
    if "cgroup" in spec.namespaces:
        plan.extend(_cgroup_view(host_cgroup_mounts() if host_cgroups is None else host_cgroups))
    # Without a cgroup namespace of its own a fresh cgroup mount would show
    # the host's whole tree (and a cgroup2 mount from the host's cgroup
    # namespace resets the host's cgroup2 mount options): /sys/fs/cgroup
    # then stays sysfs's empty, read-only directory.
    plan.append(Step("directory", "dev/mqueue", mode=0o1777))
    plan.append(Step("mqueue", "dev/mqueue"))
    plan.append(Step("directory", "dev/shm", mode=0o1777))
    plan.append(Step("tmpfs", "dev/shm", flags=_PROC_FLAGS, data="mode=1777,size=65536k"))
    plan.extend(Step("symlink", "dev/" + name, link_to=target) for name, target in DEV_LINKS)
    for node in getattr(spec, "device_nodes", ()):
        plan.append(Step("device_node", "dev/" + node.path[len("/dev/"):] if node.path.startswith("/dev/")
                         else node.path.lstrip("/"), node=node))
    plan.extend(Step("mask", path) for path in _expand(MASKED_PATHS))
    plan.extend(Step("readonly_path", path) for path in READONLY_PATHS)
    for volume in spec.volumes:
        plan.append(Step("volume", volume.dest, volume=volume))
        if volume.readonly and volume.type == "bind":
            plan.append(Step("readonly_volume", volume.dest, volume=volume))
    return plan


def _expand(paths):
    """Masked paths with their ``cpu*`` pattern expanded, as this host names its CPUs."""
    expanded = []
    for path in paths:
        if "*" not in path:
            expanded.append(path)
            continue
        parent, _star, rest = path.partition("cpu*")
        try:
            names = os.listdir("/" + parent)
        except OSError:
            continue
        expanded.extend(parent + name + rest for name in sorted(names)
                        if name.startswith("cpu") and name[3:].isdigit())
    return expanded


CGROUP_ROOT = "/sys/fs/cgroup"


def host_cgroup_mounts(mountinfo="/proc/self/mountinfo", root=CGROUP_ROOT):
    """The host's cgroup hierarchies below ``root``: (name below root or "", fstype, mount data), and its links.

    ``""`` is a cgroup2 mount at ``root`` itself (a unified host). The
    data is each hierarchy's own options (``memory``, ``cpu,cpuacct``,
    ``name=systemd``): a v1 hierarchy mounts again only with exactly the
    controllers it has. Read by hand rather than through _cgroup.layout,
    which needs ``re``: this runs on every launch.
    """
    found, prefix = [], root.rstrip("/") + "/"
    with open(mountinfo) as handle:
        lines = handle.read().splitlines()
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        point, fstype = _unescape(fields[4]), fields[separator + 1]
        if fstype not in ("cgroup", "cgroup2") or not (point == root or point.startswith(prefix)):
            continue
        name = point[len(prefix):] if point != root else ""
        options = fields[separator + 3].split(",") if len(fields) > separator + 3 else []
        # cgroup2's options (nsdelegate, memory_recursiveprot) are the
        # hierarchy's own too: passed again unchanged, whatever the namespace.
        data = ",".join(option for option in options if option not in ("rw", "ro"))
        found.append((name, fstype, data or None))
    links = []
    if found and found[0][0] != "":
        for entry in sorted(os.listdir(root)):
            if os.path.islink(os.path.join(root, entry)):
                links.append((entry, os.readlink(os.path.join(root, entry))))
    return {"hierarchies": found, "links": links}


def _cgroup_view(host_cgroups):
    """``/sys/fs/cgroup`` inside: the container's own cgroup in every hierarchy, read-only, as runc mounts it.

    Mounted after the cgroup namespace was unshared, each hierarchy's root
    is the container's own cgroup: nothing outside its subtree is there.
    """
    hierarchies = host_cgroups["hierarchies"]
    if not hierarchies:
        return []
    target = "sys/fs/cgroup"
    if hierarchies[0][0] == "":
        return [Step("cgroup", target, fstype="cgroup2", data=None), Step("readonly", target)]
    steps = [Step("tmpfs", target, flags=_PROC_FLAGS, data="mode=755,size=64k")]
    for name, fstype, data in hierarchies:
        steps.append(Step("directory", "%s/%s" % (target, name), mode=0o555))
        steps.append(Step("cgroup", "%s/%s" % (target, name), fstype=fstype, data=data))
    steps.extend(Step("symlink", "%s/%s" % (target, name), link_to=link_to)
                 for name, link_to in host_cgroups["links"])
    steps.append(Step("readonly", target))
    return steps


def make_mount_points(spec):
    """Before the fork: make the missing mount points in the rootfs, through its file descriptor.

    ``/proc``, ``/dev`` and ``/sys`` are made as directories (never through
    a symlink), each volume's dest as the container will resolve it (a
    file for a file src). Returns a ``MadeMountPoints`` whose ``remove()``
    takes back exactly what was made, for a start that fails. A spec built
    with ``create_mount_points=False`` makes nothing: a missing mount point
    then fails the start.
    """
    made = MadeMountPoints(spec.rootfs)
    if not getattr(spec, "create_mount_points", True):
        return made
    try:
        for name in ROOTFS_MOUNT_POINTS:
            _make(made, name, directory=True, mode=0o755, resolve=_OWN, what="/" + name)
        for volume in spec.volumes:
            directory = volume.type != "bind" or os.path.isdir(volume.src)
            _make(made, volume.dest, directory, 0o755 if directory else 0o644, _IN_ROOT,
                  "the mount point of volume %s" % volume.dest)
    except BaseException:
        made.remove()
        raise
    return made


def _make(made, path, directory, mode, resolve, what):
    try:
        os.close(beneath.make_path(made.root_fd, path, directory, mode, resolve, made.made))
    except OSError as exc:
        raise ContainerError("cannot make %s in rootfs %s (%s): %s" % (
            what, made.rootfs, os.strerror(exc.errno) if exc.errno else exc, _FIXES.get(exc.errno, "check the rootfs")))


_FIXES = {
    errno.ELOOP: "it is a symlink, which ns_exec does not follow there; make it a directory in the image",
    errno.ENOTDIR: "it (or a directory on its way) is not a directory; fix the image or choose another dest",
    errno.EISDIR: "a file src needs a file there, not a directory; choose another dest",
    errno.EROFS: "the rootfs is read-only on the host; create the mount point in the image",
    errno.EEXIST: "a symlink leads nowhere there; remove it or choose another dest",
}


class MadeMountPoints:
    """The mount points ``make_mount_points`` made, with the rootfs fd they are relative to."""

    def __init__(self, rootfs):
        self.rootfs = rootfs
        self.root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.made = beneath.Made()

    def remove(self):
        """Delete what was made, newest first (the container never ran, or failed to start)."""
        if self.root_fd is not None:
            self.made.remove(self.root_fd)
            self.close()

    def close(self):
        """Keep what was made (the container started), and let the rootfs fd go."""
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None


class _Context:
    """What the steps share: the rootfs bind mount and the root of each mount the plan made, open.

    ``open_own(target)`` opens one of ns_exec's own targets below the
    deepest mount the plan made over it (else below the rootfs), with no
    symlink followed on the way; ``mounted(target)`` opens the mount just
    made there and checks it is one.
    """

    def __init__(self):
        self._rootfs_fd = None
        self._mounts = {}  # target -> fd of the root of the mount the plan made there

    def rootfs_fd(self):
        if self._rootfs_fd is None:
            # The cwd is the rootfs bind mount: resolve below it, not below
            # the rootfs directory underneath the bind.
            self._rootfs_fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._rootfs_fd

    def base(self, target):
        """(fd, rest): the deepest mount of the plan at or above ``target``, and the path below it."""
        parts = beneath.components(target)
        for cut in range(len(parts), 0, -1):
            fd = self._mounts.get("/".join(parts[:cut]))
            if fd is not None:
                return fd, "/".join(parts[cut:])
        return self.rootfs_fd(), "/".join(parts)

    def open_own(self, target, flags=os.O_PATH, resolve=0):
        base, rest = self.base(target)
        return beneath.open_beneath(base, rest, flags | os.O_NOFOLLOW, _OWN | resolve)

    def parent(self, target):
        """(fd of the parent directory, name) of ``target``; the fd is the caller's to close."""
        parent, _slash, name = target.rstrip("/").rpartition("/")
        return self.open_own(parent, os.O_PATH | os.O_DIRECTORY), name

    def mounted(self, target, covered, magic=None):
        """Open the root of the mount just made on ``target`` (``covered``: fstat of what it covers).

        Opened by its name in its parent, and checked to be a new mount
        (another device than the directory it covers) of the filesystem
        asked for: a directory swapped in meanwhile is refused, not used.
        """
        parent_fd, name = self.parent(target)
        try:
            fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
        fstype = sys_.statfs_type(beneath.fd_path(fd))
        if os.fstat(fd).st_dev == covered.st_dev or (magic is not None and fstype != magic):
            os.close(fd)
            raise OSError(errno.EXDEV, "/%s is not the mount just made there (filesystem 0x%x): the rootfs "
                                       "changed under the launch; start it again" % (target, fstype))
        old = self._mounts.pop(target, None)
        if old is not None:
            os.close(old)
        self._mounts[target] = fd
        return fd

    def close(self):
        for fd in self._mounts.values():
            os.close(fd)
        self._mounts = {}
        if self._rootfs_fd is not None:
            os.close(self._rootfs_fd)
            self._rootfs_fd = None


def run_plan(plan, on_step=None):
    """Run every step in order; ``on_step(step)`` is told each one first (for error messages)."""
    context = _Context()
    try:
        for step in plan:
            if on_step is not None:
                on_step(step)
            RUNNERS[step.kind](step, context)
    finally:
        context.close()


# ---------------------------------------------------------------------------
# Read-only, all the way down.
# ---------------------------------------------------------------------------

def make_readonly(path):
    """Make the mount at ``path`` and every mount below it read-only.

    One mount_setattr(AT_RECURSIVE) call where the kernel has it (5.12+);
    otherwise each mount at or below ``path`` is remounted read-only on its
    own, as a remount of the top mount alone leaves the ones below writable.
    """
    try:
        sys_.mount_setattr(sys_.AT_FDCWD, path, sys_.AT_RECURSIVE, sys_.MOUNT_ATTR_RDONLY)
        return
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
    remount_each_readonly(path)


def remount_each_readonly(path):
    """The fallback of make_readonly: a read-only bind remount of every mount at or below ``path``."""
    for mount_point in mounts_below(os.path.realpath(path)):
        # A bind remount sets the per-mount flags anew: keep nosuid, nodev
        # and noexec where the mount had them.
        kept = os.statvfs(mount_point).f_flag
        flags = sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY
        for st_flag, ms_flag in ((sys_.ST_NOSUID, sys_.MS_NOSUID), (sys_.ST_NODEV, sys_.MS_NODEV),
                                 (sys_.ST_NOEXEC, sys_.MS_NOEXEC)):
            if kept & st_flag:
                flags |= ms_flag
        sys_.mount(None, mount_point, None, flags)


def mounts_below(top, mountinfo="/proc/self/mountinfo"):
    """Mount points at or below ``top`` in this mount namespace, parents before children."""
    with open(mountinfo) as handle:
        lines = handle.read().splitlines()
    prefix = top.rstrip("/") + "/"
    found = []
    for line in lines:
        point = _unescape(line.split()[4])
        if (point == top or point.startswith(prefix)) and point not in found:
            found.append(point)
    return sorted(found, key=lambda point: point.count("/"))


def _unescape(path):
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    if "\\" not in path:
        return path
    out, index = [], 0
    while index < len(path):
        if path[index] == "\\" and path[index + 1:index + 4].isdigit():
            out.append(chr(int(path[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(path[index])
            index += 1
    return "".join(out)


# ---------------------------------------------------------------------------
# The runners: one function per kind of step.
# ---------------------------------------------------------------------------

def _mount_point(step, context):
    try:
        os.close(context.open_own(step.target, os.O_PATH | os.O_DIRECTORY))
    except OSError as exc:
        raise OSError(exc.errno, "/%s in the rootfs %s: ns_exec mounts only on a real directory there; "
                                 "make it one in the image" % (step.target, _WHAT_IT_IS.get(exc.errno, exc.strerror)))


_WHAT_IT_IS = {errno.ELOOP: "is a symlink", errno.ENOTDIR: "is not a directory", errno.ENOENT: "is missing"}


def _mount_on(step, context, source, fstype, flags, data=None, magic=None):
    """Mount on ``step.target`` through its fd; then hold the new mount's root for the steps below it."""
    fd = context.open_own(step.target, os.O_PATH | os.O_DIRECTORY)
    try:
        covered = os.fstat(fd)
        sys_.mount(source, beneath.fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)
    return context.mounted(step.target, covered, magic)


def _directory(step, context):
    parent_fd, name = context.parent(step.target)
    try:
        os.mkdir(name, step.arguments["mode"], dir_fd=parent_fd)
        os.chmod(name, step.arguments["mode"], dir_fd=parent_fd)  # mkdir's mode goes through the umask
    finally:
        os.close(parent_fd)


def _proc(step, context):
    _mount_on(step, context, "proc", "proc", _PROC_FLAGS, magic=sys_.PROC_SUPER_MAGIC)


def _tmpfs(step, context):
    _mount_on(step, context, "tmpfs", "tmpfs", step.arguments["flags"], step.arguments["data"],
              magic=sys_.TMPFS_MAGIC)


def _device(step, context):
    parent_fd, name = context.parent(step.target)
    try:
        os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(step.arguments["major"], step.arguments["minor"]),
                 dir_fd=parent_fd)
        os.chmod(name, 0o666, dir_fd=parent_fd)  # mknod's mode goes through the umask
    finally:
        os.close(parent_fd)


def _devpts(step, context):
    # newinstance: the container's ptys are its own, numbered from 0, and it
    # cannot open the host's through /dev/pts.
    _mount_on(step, context, "devpts", "devpts", sys_.MS_NOSUID | sys_.MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5")


def _symlink(step, context):
    parent_fd, name = context.parent(step.target)
    try:
        os.symlink(step.arguments["link_to"], name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _cgroup(step, context):
    _mount_on(step, context, step.arguments["fstype"], step.arguments["fstype"], _PROC_FLAGS,
              step.arguments["data"])


def _mqueue(step, context):
    _mount_on(step, context, "mqueue", "mqueue", _PROC_FLAGS)


def _device_node(step, context):
    # A node passed through with `devices`: the device cgroup allows it.
    node = step.arguments["node"]
    parent, _slash, name = step.target.rpartition("/")
    base, rest = context.base(parent)
    parent_fd = beneath.make_path(base, rest, resolve=_OWN)
    try:
        try:
            os.unlink(name, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        os.mknod(name, node.file_type | node.mode, os.makedev(node.major, node.minor), dir_fd=parent_fd)
        os.chmod(name, node.mode, dir_fd=parent_fd)  # mknod's mode goes through the umask
        os.chown(name, node.uid, node.gid, dir_fd=parent_fd, follow_symlinks=False)
    finally:
        os.close(parent_fd)


def _sysfs(step, context):
    _mount_on(step, context, "sysfs", "sysfs", _SYSFS_FLAGS, magic=sys_.SYSFS_MAGIC)


def _readonly(step, context):
    if step.target == ".":
        make_readonly(".")
        return
    fd = context.open_own(step.target, os.O_PATH | os.O_DIRECTORY)
    try:
        make_readonly(beneath.fd_path(fd))
    finally:
        os.close(fd)


def _open_kernel_path(step, context):
    """The fd of a mask or read-only path, inside the procfs or sysfs the plan mounted, or None if absent.

    Resolved below that mount's root without leaving it (no symlink, no
    other mount): what gets covered is the kernel file of this container's
    own procfs or sysfs, never a path the rootfs leads elsewhere.
    """
    top = beneath.components(step.target)[0]
    try:
        fd = context.open_own(step.target, resolve=sys_.RESOLVE_NO_XDEV)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None  # absent on this kernel: nothing to hide
        raise
    if sys_.statfs_type(beneath.fd_path(fd)) != MOUNTED_TYPES[top]:
        os.close(fd)
        raise OSError(errno.EXDEV, "/%s is not in the %s the plan mounted" % (step.target, "/" + top))
    return fd


def _mask(step, context):
    fd = _open_kernel_path(step, context)
    if fd is None:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            # An empty read-only tmpfs hides a directory, as runc does.
            sys_.mount("tmpfs", beneath.fd_path(fd), "tmpfs", sys_.MS_RDONLY, "size=0")
        else:
            null_fd = context.open_own("dev/null")
            try:
                sys_.mount(beneath.fd_path(null_fd), beneath.fd_path(fd), None, sys_.MS_BIND)
            finally:
                os.close(null_fd)
    finally:
        os.close(fd)


def _readonly_path(step, context):
    fd = _open_kernel_path(step, context)
    if fd is None:
        return
    try:
        # Bound onto itself first, so that only this subtree turns read-only
        # (the bind keeps proc's own nosuid, nodev and noexec).
        sys_.mount(beneath.fd_path(fd), beneath.fd_path(fd), None, sys_.MS_BIND | sys_.MS_REC)
    finally:
        os.close(fd)
    # The bind is reached through the path's name in the procfs (which
    # nothing but this process can change yet), not through the old fd,
    # which holds the covered file.
    parent_fd, name = context.parent(step.target)
    try:
        top = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
    try:
        make_readonly(beneath.fd_path(top))
    finally:
        os.close(top)


def _open_volume_target(context, volume):
    """An fd of the dest of ``volume``, resolved again at mount time.

    build_spec checked the destination, but the rootfs may change between
    that check and the mount (another container sharing it could plant a
    symlink). openat2(RESOLVE_IN_ROOT) resolves the path again under the
    kernel's rules, where no symlink or ``..`` leads out of the rootfs (the
    hand walk of beneath.py where the kernel lacks openat2), and the mount
    goes onto the opened file through /proc/self/fd, as runc does.
    """
    try:
        return beneath.open_beneath(context.rootfs_fd(), volume.dest, os.O_PATH, _IN_ROOT)
    except OSError as exc:
        raise OSError(exc.errno, "the mount point of volume %s in the rootfs: %s (changed after the checks?)"
                      % (volume.dest, exc.strerror))


def _volume(step, context):
    volume = step.arguments["volume"]
    fd = _open_volume_target(context, volume)
    try:
        if volume.type == "tmpfs":
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | (sys_.MS_RDONLY if volume.readonly else 0)
            try:
                sys_.mount("tmpfs", beneath.fd_path(fd), "tmpfs", flags, volume.options)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                raise OSError(exc.errno, "the kernel refused the tmpfs options %r of volume %s (%s): give "
                                         "options as mount -t tmpfs -o takes them, e.g. size=64m,mode=1777"
                                         % (volume.options, volume.dest, exc.strerror))
        else:
            sys_.mount(volume.src, beneath.fd_path(fd), None, sys_.MS_BIND | sys_.MS_REC)
    finally:
        os.close(fd)


def _readonly_volume(step, context):
    # Opened again, so that the change hits the new mount, not the
    # directory it now covers.
    fd = _open_volume_target(context, step.arguments["volume"])
    try:
        make_readonly(beneath.fd_path(fd))
    finally:
        os.close(fd)


RUNNERS = {
    "mount_point": _mount_point,
    "directory": _directory,
    "readonly": _readonly,
    "proc": _proc,
    "tmpfs": _tmpfs,
    "device": _device,
    "devpts": _devpts,
    "symlink": _symlink,
    "sysfs": _sysfs,
    "cgroup": _cgroup,
    "mqueue": _mqueue,
    "device_node": _device_node,
    "mask": _mask,
    "readonly_path": _readonly_path,
    "volume": _volume,
    "readonly_volume": _readonly_volume,
}
