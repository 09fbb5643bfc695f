# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's cgroup: in every hierarchy the host has, with its device allowlist.

Every container runs in a cgroup of its own, as with runc: the one the
``cgroup`` option names (made by the cgroup module), or, without it, one
made here below ``cgroup_parent`` (``handmade/containers/`` by default)
and removed with the container.
The cgroup exists in every hierarchy (each v1 controller, ``name=systemd``,
a hybrid host's cgroup2 tree), so the container's cgroup namespace, rooted
where it is placed, shows nothing outside its own subtree anywhere; its
device allowlist (_devices.py) is written there before the container runs
anything.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup, open_existing

# Where containers without a `cgroup` option get one of their own.
OWN_CGROUP_PARENT = "handmade/containers"


class Placement:
    """A container's cgroup, and whether it was made for this container alone (then removed with it)."""

    def __init__(self, cgroup, owned):
        self.cgroup = cgroup
        self.owned = owned

    @property
    def name(self):
        return self.cgroup.name

    def remove(self, timeout=10.0):
        """Kill what is left in a cgroup of the container's own and remove it; a given cgroup stays."""
        if self.owned:
            self.cgroup.remove(kill=True, timeout=timeout)


def own_cgroup_name(container_name, parent=None):
    """The cgroup of a container without a ``cgroup`` option; a ``run`` without a name gets a unique one."""
    parent = parent or OWN_CGROUP_PARENT
    if container_name:
        return "%s/%s" % (parent, container_name)
    return "%s/run-%d-%d" % (parent, os.getpid(), int.from_bytes(os.urandom(4), "big"))


def prepare(spec):
    """The container's Placement, made complete in every hierarchy, its device rules written."""
    if spec.cgroup:
        cgroup = open_existing(spec.cgroup)
        owned = False
    else:
        cgroup = open_cgroup(own_cgroup_name(spec.name, spec.cgroup_parent))
        owned = True
    # A given cgroup was made by the cgroup module, but perhaps before it
    # made cgroups in every hierarchy: fill in what is missing.
    created = cgroup.create()
    placement = Placement(cgroup, owned)
    try:
        cgroup.set_device_rules(spec.device_rules)
    except BaseException:
        if owned:
            cgroup.remove(kill=True)
        else:
            _remove_made(created)
        raise
    return placement


def reopen(name, owned):
    """The Placement of a running container, from what its record says."""
    return Placement(open_existing(name), owned) if name else None


def _remove_made(directories):
    for directory in reversed(directories):
        try:
            os.rmdir(directory)
        except OSError:
            pass
