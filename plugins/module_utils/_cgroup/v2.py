# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup v2 driver: one directory in the cgroup2 tree.

A controller's files appear in a v2 cgroup only when every ancestor lists
the controller in its cgroup.subtree_control, so creating enables the
project's controllers from the root down. That root's subtree_control is the
one file outside ``handmade`` the project writes (systemd enables only
memory and pids there). Killing uses cgroup.kill, or cgroup.freeze on
kernels before 5.14.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.devices import attach_device_filter
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.driver import CgroupDriver, Freezer
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import (
    parse_flat_keyed,
    read_or_none,
    write_text,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import unified_mount

# The v2 controllers enabled for the project's cgroups when the host has them.
V2_CONTROLLERS = ("memory", "cpu", "cpuset", "pids", "io")


class V2Cgroup(CgroupDriver):
    """A cgroup in the cgroup2 hierarchy: at ``root`` on unified hosts, ``root``/unified on hybrid ones."""

    version = "v2"

    def __init__(self, name, root, layout):
        CgroupDriver.__init__(self, name, root, layout, {"unified": unified_mount(layout, root)})

    @property
    def directory(self):
        """The cgroup's one directory."""
        return self.paths["unified"]

    def directory_of(self, controller):
        return self.directory

    def available(self, limit):
        controller = limit.kernel_files(self.version).controller
        top = self.hierarchies["unified"]
        controllers = (read_or_none(os.path.join(top, "cgroup.controllers")) or "").split()
        if controller in controllers:
            return None
        why = "the %s controller is not available in cgroup v2 on this host (%s/cgroup.controllers lists: %s)" % (
            controller, top, " ".join(controllers) or "nothing")
        if self.layout == "hybrid":
            why += "; on this hybrid host the v1 hierarchies hold the controllers, so use version: auto or v1"
        return why

    def cpuset_bounds(self):
        top = self.hierarchies["unified"]
        return (read_or_none(os.path.join(top, "cpuset.cpus.effective")),
                read_or_none(os.path.join(top, "cpuset.mems.effective")))

    # -- create -------------------------------------------------------------

    def _make(self, required_controllers, created):
        parent = self.hierarchies["unified"]
        for component in self.name.split("/"):
            # Each level passes the controllers down to the next; the
            # leaf's own subtree_control stays empty, it holds processes.
            self._enable_controllers(parent, required_controllers)
            parent = os.path.join(parent, component)
            self._make_directory(parent, created)

    def _enable_controllers(self, directory, required):
        """Enable the project's controllers for the children of ``directory``.

        Required ones (a limit needs them) fail loudly; the others are
        enabled when the kernel allows it, for the statistics.
        """
        available = (read_or_none(os.path.join(directory, "cgroup.controllers")) or "").split()
        enabled = (read_or_none(os.path.join(directory, "cgroup.subtree_control")) or "").split()
        for controller in V2_CONTROLLERS:
            if controller in enabled:
                continue
            if controller not in available:
                if controller in required:
                    raise CgroupError("the %s controller is not available in %s (cgroup.controllers: %s): the "
                                      "cgroup above does not pass it down; enable it there first"
                                      % (controller, directory, " ".join(available) or "nothing"))
                continue
            try:
                write_text(os.path.join(directory, "cgroup.subtree_control"), "+" + controller)
            except (IOError, OSError) as exc:
                if controller in required:
                    raise _enabling_refused(controller, directory, exc)

    # -- kill ---------------------------------------------------------------

    def _kill_at_once(self):
        # cgroup.kill (Linux 5.14+) kills the cgroup and its descendants
        # atomically, forks in flight included.
        control = os.path.join(self.directory, "cgroup.kill")
        if not os.path.exists(control):
            return False
        write_text(control, "1")
        return True

    def _freezer(self):
        control = os.path.join(self.directory, "cgroup.freeze")
        if not os.path.exists(control):
            return None
        events = os.path.join(self.directory, "cgroup.events")
        return Freezer(control, "1", "0", lambda: parse_flat_keyed(read_or_none(events)).get("frozen") == 1)

    # -- devices ------------------------------------------------------------

    def set_device_rules(self, rules):
        """A BPF_PROG_TYPE_CGROUP_DEVICE program for ``rules``, attached to the cgroup's directory.

        It replaces the program an earlier call attached. The program lives
        as long as the cgroup: removing the cgroup frees it.
        """
        if not os.path.isdir(self.directory):
            raise CgroupError("cgroup %r does not exist on this host: create it first with "
                              "handmade.containers.cgroup" % self.name)
        attach_device_filter(self.directory, rules)


def _enabling_refused(controller, directory, exc):
    """The CgroupError for a refused ``+controller`` write to ``directory``/cgroup.subtree_control."""
    if exc.errno == errno.EBUSY:
        return CgroupError(
            "cannot enable the %s controller below %s: that cgroup holds processes itself, and v2 "
            "lets only cgroups without processes pass controllers down (no internal processes "
            "rule); move those processes into a child cgroup" % (controller, directory))
    realtime = ("; the cpu controller cannot be enabled while realtime processes run outside the root cgroup"
                if controller == "cpu" and exc.errno == errno.EINVAL else "")
    return CgroupError("cannot enable the %s controller below %s: %s%s"
                       % (controller, directory, exc.strerror, realtime))
