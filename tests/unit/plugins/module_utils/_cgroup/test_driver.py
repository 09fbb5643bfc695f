# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Both drivers implement the one interface of _cgroup.driver; where v2 places a cgroup."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.driver import CgroupDriver
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import LIMITS, STATS
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import DRIVERS
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v1 import V1Cgroup
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v2 import V2Cgroup

HOOKS = ("_make", "available", "directory_of", "cpuset_bounds", "_kill_at_once", "_freezer")


@pytest.mark.parametrize("driver", [V1Cgroup, V2Cgroup])
def test_each_driver_provides_every_version_specific_hook(driver):
    for hook in HOOKS:
        assert getattr(driver, hook) is not getattr(CgroupDriver, hook), "%s lacks %s" % (driver.__name__, hook)


def test_drivers_are_chosen_by_version():
    assert DRIVERS == {"v1": V1Cgroup, "v2": V2Cgroup}
    assert [DRIVERS[version].version for version in ("v1", "v2")] == ["v1", "v2"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_row_has_files_for_each_driver_version(version):
    for row in LIMITS + STATS:
        files = row.kernel_files(version)
        assert files.controller and files.names, row


def test_v2_cgroup_lives_in_the_cgroup2_mount_of_the_layout():
    assert V2Cgroup("handmade/web1", "/sys/fs/cgroup", "unified").paths == {
        "unified": "/sys/fs/cgroup/handmade/web1"}
    hybrid = V2Cgroup("handmade/web1", "/sys/fs/cgroup", "hybrid")
    assert hybrid.paths == {"unified": "/sys/fs/cgroup/unified/handmade/web1"}
    assert hybrid.directory_of("memory") == hybrid.directory_of("cpu") == "/sys/fs/cgroup/unified/handmade/web1"


def test_a_driver_refuses_a_name_outside_the_project():
    with pytest.raises(CgroupError, match="outside the project's parent"):
        V2Cgroup("system.slice/web1", "/sys/fs/cgroup", "unified")


def test_the_interface_names_the_device_rules_hook():
    # A driver without a device allowlist says so instead of ignoring the rules.
    with pytest.raises(NotImplementedError, match="device rules"):
        CgroupDriver.set_device_rules(V2Cgroup("handmade/web1", "/sys/fs/cgroup", "unified"), [])
