# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which cgroup layout the host has, where its hierarchies are, and valid names.

Three layouts exist in the wild, told apart by the filesystem type of
/sys/fs/cgroup (statfs):

* unified (v2): cgroup2 is mounted at /sys/fs/cgroup itself.
* hybrid: a tmpfs there, v1 hierarchies beside a cgroup2 mount at
  /sys/fs/cgroup/unified. The v1 controllers do the limiting.
* legacy (v1): a tmpfs there with only v1 hierarchies.

Everything the project creates lives below the parent cgroup ``handmade``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._syscalls import statfs_type

DEFAULT_ROOT = "/sys/fs/cgroup"
PROJECT_PARENT = "handmade"

# statfs(2) f_type values (linux/magic.h).
CGROUP2_SUPER_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994

# The v1 hierarchies a cgroup is made in: every controller a limit, a
# statistic or kill needs. Making it in all of them at once means a limit
# added later never has to move the processes already inside.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer")

_NAME_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def filesystem_type(path):
    """statfs(2) f_type of ``path``: the magic number of the filesystem it is on."""
    try:
        return statfs_type(path)
    except OSError as exc:
        raise CgroupError("cannot statfs %s: %s: is /sys/fs/cgroup mounted?" % (path, os.strerror(exc.errno)))


def detect_layout(root=DEFAULT_ROOT):
    """``legacy``, ``hybrid`` or ``unified``, from the filesystem types under ``root``."""
    fs_type = filesystem_type(root)
    if fs_type == CGROUP2_SUPER_MAGIC:
        return "unified"
    if fs_type == TMPFS_MAGIC:
        unified = os.path.join(root, "unified")
        if os.path.isdir(unified) and filesystem_type(unified) == CGROUP2_SUPER_MAGIC:
            return "hybrid"
        return "legacy"
    raise CgroupError("%s is neither a cgroup2 mount nor a tmpfs holding cgroup hierarchies "
                      "(filesystem magic 0x%x): mount cgroups there as the distribution does" % (root, fs_type))


def resolve_version(version, layout, root=DEFAULT_ROOT):
    """The cgroup version (``v1`` or ``v2``) to use for the ``version`` option on a host of ``layout``.

    ``auto`` picks v1 on hybrid hosts: there the v1 hierarchies hold the
    controllers and the cgroup2 mount usually has none.
    """
    if version == "auto":
        return "v2" if layout == "unified" else "v1"
    if version == "v1" and layout == "unified":
        raise CgroupError("version: v1 was asked, but this host has only cgroup v2 (%s is cgroup2): use version: "
                          "auto or v2" % root)
    if version == "v2" and layout == "legacy":
        raise CgroupError("version: v2 was asked, but this host has only cgroup v1 (no cgroup2 under %s): use "
                          "version: auto or v1, or boot with systemd.unified_cgroup_hierarchy=1" % root)
    if version not in ("v1", "v2"):
        raise CgroupError("version must be auto, v1 or v2, not %r" % (version,))
    return version


def unified_mount(layout, root=DEFAULT_ROOT):
    """Where the cgroup2 hierarchy is mounted on a host of ``layout``."""
    return root if layout == "unified" else os.path.join(root, "unified")


# --------------------------------------------------------------------------
# v1 hierarchies, from the host's mounts
# --------------------------------------------------------------------------

def parse_mountinfo(text):
    """/proc/self/mountinfo -> list of dicts: mount_point, root, fstype, super_options (a set)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        separator = fields.index("-")
        mounts.append({
            "root": _unescape_mount_path(fields[3]),
            "mount_point": _unescape_mount_path(fields[4]),
            "fstype": fields[separator + 1],
            "super_options": set(fields[separator + 3].split(",")) if len(fields) > separator + 3 else set(),
        })
    return mounts


def _unescape_mount_path(path):
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), path)


def read_mountinfo():
    """The mounts this process sees, parsed."""
    with open("/proc/self/mountinfo") as handle:
        return parse_mountinfo(handle.read())


def v1_hierarchies(mounts, root=DEFAULT_ROOT):
    """controller -> mount point of its v1 hierarchy under ``root``, for the controllers the project uses.

    Co-mounted controllers (Debian's ``cpu,cpuacct``) share one directory.
    """
    hierarchies = {}
    prefix = root.rstrip("/") + "/"
    for mount in mounts:
        if mount["fstype"] != "cgroup" or not mount["mount_point"].startswith(prefix):
            continue
        for controller in V1_CONTROLLERS:
            if controller in mount["super_options"]:
                hierarchies.setdefault(controller, mount["mount_point"])
    return hierarchies


def other_hierarchies(mounts, root=DEFAULT_ROOT):
    """Every other cgroup hierarchy under ``root``, keyed as /proc/<pid>/cgroup names them.

    The controllers the project does not limit with (``perf_event``,
    ``net_cls``, ``hugetlb`` ...), named hierarchies (``name=systemd``) and a
    hybrid host's cgroup2 tree (``unified``). A container is placed in a
    cgroup of its own in these too: its cgroup namespace is rooted there, so
    no hierarchy shows it a cgroup outside its own subtree.
    """
    known = set(v1_hierarchies(mounts, root).values())
    hierarchies = {}
    prefix = root.rstrip("/") + "/"
    for mount in mounts:
        point = mount["mount_point"]
        if not point.startswith(prefix) or point in known:
            continue
        if mount["fstype"] == "cgroup2":
            hierarchies.setdefault("unified", point)
        elif mount["fstype"] == "cgroup":
            for option in sorted(mount["super_options"]):
                if option.startswith("name=") or option in _V1_SUBSYSTEMS:
                    hierarchies.setdefault(option, point)
    return hierarchies


# Every v1 controller the kernel has (kernel/cgroup/cgroup.c, cgroup_subsys.h):
# the other words in a cgroup mount's options are flags, not controllers.
_V1_SUBSYSTEMS = frozenset((
    "cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event",
    "net_prio", "hugetlb", "pids", "rdma", "misc", "debug",
))


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def validate_name(name):
    """A cgroup name below the project's parent, e.g. ``handmade/web1``; returns it."""
    if not isinstance(name, str) or not name:
        raise CgroupError("name is empty: give a cgroup below %s/, e.g. %s/web1" % (PROJECT_PARENT, PROJECT_PARENT))
    components = name.split("/")
    for component in components:
        if component in ("", ".", "..") or not _NAME_COMPONENT.match(component) or len(component) > 255:
            raise CgroupError(
                "name %r is not a cgroup path below %s/: use components of letters, digits, '_', '.' and '-' "
                "joined by '/', with no leading '/' and no '.' or '..', e.g. %s/web1"
                % (name, PROJECT_PARENT, PROJECT_PARENT))
    if components[0] != PROJECT_PARENT or len(components) < 2:
        raise CgroupError("name %r is outside the project's parent cgroup: cgroups made here live below %s/, "
                          "e.g. %s/%s" % (name, PROJECT_PARENT, PROJECT_PARENT, components[-1]))
    return name
