# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup v1 driver: one directory per controller hierarchy.

Used on legacy hosts and on hybrid ones, where the v1 hierarchies hold the
controllers. The cgroup is made in every hierarchy the host mounts: those of
the project's controllers (layout.V1_CONTROLLERS), so a limit added later
never has to move the processes inside, and every other one (devices,
perf_event, name=systemd, a hybrid host's cgroup2 tree), so a container has
a cgroup of its own everywhere. Co-mounted controllers (``cpu,cpuacct``)
share one directory.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.devices import (
    v1_devices_hierarchy,
    write_v1_rules,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.driver import CgroupDriver, Freezer, unique
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import (
    read_or_none,
    read_text,
    write_text,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import (
    other_hierarchies,
    read_mountinfo,
    v1_hierarchies,
)


class V1Cgroup(CgroupDriver):
    """A cgroup in the v1 hierarchies under ``root``."""

    version = "v1"

    def __init__(self, name, root, layout):
        mounts = read_mountinfo()
        hierarchies = v1_hierarchies(mounts, root)
        if not hierarchies:
            raise CgroupError("no cgroup v1 hierarchy is mounted under %s: mount the controllers, "
                              "or use version: v2 on a v2 host" % root)
        # The devices hierarchy holds the device allowlist (set_device_rules);
        # every other hierarchy (perf_event, name=systemd, a hybrid host's
        # cgroup2 tree ...) gets the cgroup too, so that a container's cgroup
        # namespace is rooted in a cgroup of its own everywhere. The cgroup is
        # made, joined and removed there like in the others.
        hierarchies.update(v1_devices_hierarchy(mounts, root))
        for key, mount in other_hierarchies(mounts, root).items():
            hierarchies.setdefault(key, mount)
        CgroupDriver.__init__(self, name, root, layout, hierarchies)

    def directory_of(self, controller):
        return self.paths.get(controller)

    def available(self, limit):
        controller = limit.kernel_files(self.version).controller
        if controller not in self.hierarchies:
            return ("the %s controller is not mounted on this host (no v1 hierarchy for it under %s)"
                    % (controller, self.root))
        return None

    def cpuset_bounds(self):
        base = self.hierarchies.get("cpuset")
        if base is None:
            return None, None
        return read_or_none(os.path.join(base, "cpuset.cpus")), read_or_none(os.path.join(base, "cpuset.mems"))

    # -- create -------------------------------------------------------------

    def _make(self, required_controllers, created):
        # Every controller is there once its hierarchy is mounted: nothing to
        # enable, so required_controllers needs no check here.
        cpuset_mount = self.hierarchies.get("cpuset")
        for mount in unique(self.hierarchies.values()):
            self._make_path(mount, created, copy_cpuset=mount == cpuset_mount)

    def _make_path(self, mount, created, copy_cpuset):
        parent = mount
        for component in self.name.split("/"):
            current = os.path.join(parent, component)
            self._make_directory(current, created)
            if copy_cpuset:
                _fill_empty_cpuset(parent, current)
            parent = current

    # -- kill ---------------------------------------------------------------

    def _kill_at_once(self):
        return False  # v1 has no cgroup.kill

    # -- devices ------------------------------------------------------------

    def set_device_rules(self, rules):
        """devices.deny "a", then one devices.allow write per rule, in the devices hierarchy.

        create() makes the cgroup there; a cgroup made before the devices
        hierarchy was one of its own gets the directory now, and its
        processes are moved in, so the rules hold for them too.
        """
        mount = self.hierarchies.get("devices")
        if mount is None:
            raise CgroupError("devices cannot be limited on this host: no cgroup v1 devices hierarchy is mounted "
                              "under %s (mount -t cgroup -o devices cgroup %s/devices)" % (self.root, self.root))
        if not self.exists():
            raise CgroupError("cgroup %r does not exist on this host: create it first with "
                              "handmade.containers.cgroup" % self.name)
        directory = self.directory_of("devices")
        created = []
        self._make_path(mount, created, copy_cpuset=False)
        if created:
            for pid in sorted(self.pids()):
                try:
                    write_text(os.path.join(directory, "cgroup.procs"), str(pid))
                except (IOError, OSError) as exc:
                    if exc.errno != errno.ESRCH:  # exited meanwhile: nothing left to confine
                        raise CgroupError("cannot move process %d into %s: %s" % (pid, directory, exc.strerror))
        write_v1_rules(directory, rules)

    def _freezer(self):
        directory = self.paths.get("freezer")
        if not directory or not os.path.isdir(directory):
            return None
        control = os.path.join(directory, "freezer.state")
        return Freezer(control, "FROZEN", "THAWED", lambda: read_or_none(control) == "FROZEN")


def _fill_empty_cpuset(parent, child):
    """Copy cpuset.cpus and cpuset.mems from ``parent`` into ``child`` where the child's are empty.

    v1 cpuset refuses processes until cpus and mems are set, and a child
    starts with both empty (unless clone_children). Every level below the
    root is the project's: one left empty by another tool (a bare mkdir) is
    filled in too.
    """
    for filename in ("cpuset.cpus", "cpuset.mems"):
        if not read_or_none(os.path.join(child, filename)):
            write_text(os.path.join(child, filename), read_text(os.path.join(parent, filename)))
