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
    plan = [Step("mount_point", name) for name in ("proc", "dev", "sys")]
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


class _Context:
    """What the steps share: the rootfs bind mount, opened once."""

    def __init__(self):
        self._rootfs_fd = None

    def rootfs_fd(self):
        if self._rootfs_fd is None:
            # The cwd is the rootfs bind mount: resolve below it, not below
            # the rootfs directory underneath the bind.
            self._rootfs_fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._rootfs_fd

    def close(self):
        if self._rootfs_fd is not None:
            os.close(self._rootfs_fd)


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
        os.mkdir(step.target, 0o755)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _directory(step, context):
    os.mkdir(step.target, step.arguments["mode"])
    os.chmod(step.target, step.arguments["mode"])  # mkdir's mode goes through the umask


def _proc(step, context):
    sys_.mount("proc", step.target, "proc", _PROC_FLAGS)


def _tmpfs(step, context):
    sys_.mount("tmpfs", step.target, "tmpfs", step.arguments["flags"], step.arguments["data"])


def _device(step, context):
    os.mknod(step.target, stat.S_IFCHR | 0o666, os.makedev(step.arguments["major"], step.arguments["minor"]))
    os.chmod(step.target, 0o666)  # mknod's mode goes through the umask


def _devpts(step, context):
    # newinstance: the container's ptys are its own, numbered from 0, and it
    # cannot open the host's through /dev/pts.
    sys_.mount("devpts", step.target, "devpts", sys_.MS_NOSUID | sys_.MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620,gid=5")


def _symlink(step, context):
    os.symlink(step.arguments["link_to"], step.target)


def _cgroup(step, context):
    sys_.mount(step.arguments["fstype"], step.target, step.arguments["fstype"], _PROC_FLAGS, step.arguments["data"])


def _mqueue(step, context):
    sys_.mount("mqueue", step.target, "mqueue", _PROC_FLAGS)


def _device_node(step, context):
    # A node passed through with `devices`: the device cgroup allows it.
    node = step.arguments["node"]
    parent = os.path.dirname(step.target)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    if os.path.lexists(step.target):
        os.unlink(step.target)
    os.mknod(step.target, node.file_type | node.mode, os.makedev(node.major, node.minor))
    os.chmod(step.target, node.mode)  # mknod's mode goes through the umask
    os.chown(step.target, node.uid, node.gid)


def _sysfs(step, context):
    sys_.mount("sysfs", step.target, "sysfs", _SYSFS_FLAGS)


def _bind(step, context):
    sys_.mount(step.arguments["source"], step.target, None, sys_.MS_BIND | sys_.MS_REC)


def _readonly(step, context):
    make_readonly(step.target)


def _mask(step, context):
    try:
        info = os.lstat(step.target)
    except OSError:
        return  # absent on this kernel: nothing to hide
    if stat.S_ISDIR(info.st_mode):
        # An empty read-only tmpfs hides a directory, as runc does.
        sys_.mount("tmpfs", step.target, "tmpfs", sys_.MS_RDONLY, "size=0")
    else:
        sys_.mount("dev/null", step.target, None, sys_.MS_BIND)


def _readonly_path(step, context):
    try:
        os.lstat(step.target)
    except OSError:
        return
    # Bound onto itself first, so that only this subtree turns read-only
    # (the bind keeps proc's own nosuid, nodev and noexec).
    sys_.mount(step.target, step.target, None, sys_.MS_BIND | sys_.MS_REC)
    make_readonly(step.target)


def _open_volume_target(context, volume):
    """The path to mount ``volume`` on, resolved again at mount time.

    build_spec checked the destination, but the rootfs may change between
    that check and the mount (another container sharing it could plant a
    symlink). openat2(RESOLVE_IN_ROOT) resolves the path again under the
    kernel's rules, where no symlink or ``..`` leads out of the rootfs, and
    the mount goes onto the opened file through /proc/self/fd, as runc does.
    Returns (path, fd or None); kernels before 5.6 have no openat2 and get
    the path build_spec checked.
    """
    try:
        fd = sys_.openat2(context.rootfs_fd(), volume.dest, os.O_PATH | os.O_CLOEXEC,
                          sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        return volume.target, None
    return "/proc/self/fd/%d" % fd, fd


def _volume(step, context):
    volume = step.arguments["volume"]
    target, fd = _open_volume_target(context, volume)
    try:
        if volume.type == "tmpfs":
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | (sys_.MS_RDONLY if volume.readonly else 0)
            sys_.mount("tmpfs", target, "tmpfs", flags, volume.options)
        else:
            sys_.mount(volume.src, target, None, sys_.MS_BIND | sys_.MS_REC)
    finally:
        if fd is not None:
            os.close(fd)


def _readonly_volume(step, context):
    # Opened again, so that the change hits the new mount, not the
    # directory it now covers.
    target, fd = _open_volume_target(context, step.arguments["volume"])
    try:
        make_readonly(target)
    finally:
        if fd is not None:
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
    "bind": _bind,
    "mask": _mask,
    "readonly_path": _readonly_path,
    "volume": _volume,
    "readonly_volume": _readonly_volume,
}
