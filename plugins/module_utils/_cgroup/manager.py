# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cgroup module and the container runtime ask of cgroups.

``open_cgroup`` picks the driver for the host's layout (v1.py or v2.py,
both behind driver.CgroupDriver); ``open_existing`` does the same for a
cgroup that must exist already. ``ensure_present`` and ``ensure_absent`` are
the cgroup module's two states. Nothing here knows which version is in use:
the per-version knowledge lives in the drivers and in the LIMITS rows.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.driver import remove_directories
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import read_or_none
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import (
    DEFAULT_ROOT,
    detect_layout,
    resolve_version,
    validate_name,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import LIMITS, HostFacts
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v1 import V1Cgroup
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v2 import V2Cgroup
from ansible_collections.handmade.containers.plugins.module_utils._units import parse_cpu_list

__all__ = ["CgroupError", "open_cgroup", "open_existing", "ensure_present", "ensure_absent", "read_host_facts",
           "report_limits"]

# version -> driver class. A driver that manages cgroups another way (for
# example through systemd's delegation) gets its own key here and a rule in
# open_cgroup for when to use it.
DRIVERS = {"v1": V1Cgroup, "v2": V2Cgroup}


def open_cgroup(name, root=DEFAULT_ROOT, version="auto"):
    """The driver for cgroup ``name`` on this host, whether the cgroup exists or not.

    ``version`` is the module's option: ``auto`` (v2 on unified hosts, v1 on
    legacy and hybrid ones), ``v1`` or ``v2``.
    """
    validate_name(name)  # before the layout: a bad name is the user's to fix, whatever the host
    layout = detect_layout(root)
    return DRIVERS[resolve_version(version, layout, root)](name, root, layout)


def open_existing(name, root=DEFAULT_ROOT, version="auto"):
    """The driver for cgroup ``name``; raises CgroupError when it does not exist."""
    cgroup = open_cgroup(name, root=root, version=version)
    if not cgroup.exists():
        raise CgroupError("cgroup %r does not exist on this host: create it first with "
                          "handmade.containers.cgroup" % name)
    return cgroup


def read_host_facts(cgroup):
    """Page size, and the CPUs and memory nodes the project's cgroups may use."""
    cpus, mems = cgroup.cpuset_bounds()
    cpus = cpus or read_or_none("/sys/devices/system/cpu/online") or "0-%d" % ((os.cpu_count() or 1) - 1)
    mems = mems or read_or_none("/sys/devices/system/node/online") or "0"
    return HostFacts(os.sysconf("SC_PAGE_SIZE"), parse_cpu_list(cpus), parse_cpu_list(mems))


# --------------------------------------------------------------------------
# state: present
# --------------------------------------------------------------------------

def ensure_present(name, params, version="auto", root=DEFAULT_ROOT, check_mode=False):
    """Make cgroup ``name`` exist with the limits in ``params`` (option -> value, None = leave alone).

    Returns changed, version, layout, paths, limits (every option, as the
    kernel holds it), stats, diff (before/after of the asked limits) and
    warnings. Limits are compared after the kernel's normalisation, read
    back from the files; only those that differ are written, in place.
    """
    cgroup = open_cgroup(name, root=root, version=version)
    host = read_host_facts(cgroup)
    warnings = []
    requested = [limit for limit in LIMITS if limit.requested(params)]
    for limit in requested:
        why = cgroup.available(limit)
        if why:
            raise CgroupError("%s: %s" % (limit.key, why))
    desired = dict((limit.key, limit.desired(params, host, warnings)) for limit in requested)

    existed = cgroup.complete()
    was_there = cgroup.exists()
    before = cgroup.read_limits() if was_there else {}
    target = dict((limit.key, cgroup.normalise(limit, desired[limit.key], _inputs(cgroup, limit, desired)))
                  for limit in requested)
    changing = [limit for limit in requested if _needs_writing(cgroup, limit, before, target)]

    if not check_mode and (changing or not existed):
        controllers = set(limit.kernel_files(cgroup.version).controller for limit in requested)
        created = cgroup.create(required_controllers=controllers)
        try:
            _write_limits(cgroup, write_order(cgroup.version, changing, before, target), before, desired)
        except BaseException:
            remove_directories(created)
            raise
    after = cgroup.read_limits() if cgroup.exists() else {}
    if check_mode:
        after = dict(after, **target)

    def shown(values):
        view = {}
        for limit in requested:
            if limit.key in values:
                view.update(limit.report(values[limit.key]))
        return view

    return {
        "changed": bool(changing) or not existed,
        "name": name,
        "version": cgroup.version,
        "layout": cgroup.layout,
        "paths": cgroup.paths,
        "limits": report_limits(after),
        "stats": cgroup.stats() if cgroup.exists() else None,
        "diff": {
            "before": dict(shown(before), state="present") if was_there else {"state": "absent"},
            "after": dict(shown(dict(before, **target)), state="present"),
        },
        "warnings": warnings,
    }


def report_limits(values):
    """Canonical values -> the options' spelling, every option present (None: not readable here)."""
    report = {}
    for limit in LIMITS:
        if limit.key in values:
            report.update(limit.report(values[limit.key]))
        else:
            report.update((option, None) for option in limit.options)
    return report


def _inputs(cgroup, limit, values):
    """The values of the other limits ``limit`` needs to be written on this cgroup's version."""
    return dict((key, values.get(key)) for key in limit.inputs(cgroup.version))


def _needs_writing(cgroup, limit, before, target):
    """True when the files of ``limit`` will hold something else after this run.

    That is when its own value changes, or when a value it is written
    relative to changes (v2 memory.swap.max holds memory_swap minus memory,
    so a new memory with the same memory_swap rewrites it).
    """
    keys = (limit.key,) + tuple(limit.inputs(cgroup.version))
    return any(key not in before or before[key] != target.get(key) for key in keys)


def write_order(version, changing, before, target):
    """The changing limits in the order the kernel accepts them (see Limit.write_position).

    v1 keeps memory <= memory+swap at every moment: raise memsw before
    memory, lower it after. Limits without a rule keep their order.
    """
    def position(limit):
        return limit.write_position(version, before.get(limit.key), target[limit.key])
    return sorted(changing, key=position)


def _write_limits(cgroup, limits, before, desired):
    """Write the limits in order; if one is refused, put back the ones already written."""
    written = []
    try:
        for limit in limits:
            cgroup.write_limit(limit, desired[limit.key], _inputs(cgroup, limit, desired))
            written.append(limit)
    except CgroupError:
        for limit in reversed(written):
            if limit.key in before:
                try:
                    cgroup.write_limit(limit, before[limit.key], _inputs(cgroup, limit, before))
                except CgroupError:
                    pass  # the first error is the one to report
        raise


# --------------------------------------------------------------------------
# state: absent
# --------------------------------------------------------------------------

def ensure_absent(name, kill=True, version="auto", root=DEFAULT_ROOT, check_mode=False, timeout=10.0):
    """Remove cgroup ``name`` and its children, killing what runs inside first when ``kill``."""
    cgroup = open_cgroup(name, root=root, version=version)
    result = {"changed": False, "name": name, "version": cgroup.version, "layout": cgroup.layout,
              "paths": cgroup.paths, "killed": [], "warnings": [],
              "diff": {"before": {"state": "absent"}, "after": {"state": "absent"}}}
    if not cgroup.exists():
        return result
    result["changed"] = True
    result["diff"]["before"] = {"state": "present"}
    result["killed"] = sorted(cgroup.pids()) if kill else []
    if not check_mode:
        cgroup.remove(kill=kill, timeout=timeout)
    return result
