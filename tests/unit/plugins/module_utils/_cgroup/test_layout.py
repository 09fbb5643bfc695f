# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layouts, mounts and names: _cgroup.layout."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import (
    detect_layout,
    filesystem_type,
    parse_mountinfo,
    other_hierarchies,
    resolve_version,
    unified_mount,
    v1_hierarchies,
    validate_name,
)

DEBIAN_V1_MOUNTINFO = """\
22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
34 25 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,net_cls,net_prio
35 25 0:33 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset
36 28 0:34 / /mnt/odd\\040dir rw,relatime - cgroup cgroup rw,freezer
"""

UNIFIED_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_parse_mountinfo_fields_and_escapes():
    mounts = parse_mountinfo(DEBIAN_V1_MOUNTINFO)
    assert mounts[4] == {"root": "/", "mount_point": "/sys/fs/cgroup/cpu,cpuacct", "fstype": "cgroup",
                         "super_options": {"rw", "cpu", "cpuacct"}}
    assert mounts[-1]["mount_point"] == "/mnt/odd dir"


def test_v1_hierarchies_share_comounted_directory_and_ignore_mounts_elsewhere():
    hierarchies = v1_hierarchies(parse_mountinfo(DEBIAN_V1_MOUNTINFO))
    assert hierarchies == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "pids": "/sys/fs/cgroup/pids",
        "cpuset": "/sys/fs/cgroup/cpuset",
    }


def test_every_other_hierarchy_is_keyed_as_proc_cgroup_names_it():
    assert other_hierarchies(parse_mountinfo(DEBIAN_V1_MOUNTINFO)) == {
        "unified": "/sys/fs/cgroup/unified",
        "name=systemd": "/sys/fs/cgroup/systemd",
        "net_cls": "/sys/fs/cgroup/net_cls,net_prio",
        "net_prio": "/sys/fs/cgroup/net_cls,net_prio",
    }
    assert other_hierarchies(parse_mountinfo(UNIFIED_MOUNTINFO)) == {}


def test_v1_hierarchies_none_on_unified_host():
    assert v1_hierarchies(parse_mountinfo(UNIFIED_MOUNTINFO)) == {}


@pytest.mark.parametrize("name", ["handmade/web1", "handmade/a/b", "handmade/x.y_z-1"])
def test_validate_name_accepts(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "handmade", "web1", "/handmade/web1", "handmade/../etc", "../../etc", "handmade//web1",
    "handmade/web 1", "handmade/web1/", "handmade/./web1", "system.slice/web1", "handmade/" + "x" * 256, None,
])
def test_validate_name_refuses(name):
    with pytest.raises(CgroupError) as caught:
        validate_name(name)
    assert "handmade/" in str(caught.value)


@pytest.mark.parametrize("layout, expected", [("unified", "v2"), ("hybrid", "v1"), ("legacy", "v1")])
def test_auto_version_per_layout(layout, expected):
    assert resolve_version("auto", layout) == expected


def test_hybrid_host_has_both_versions():
    assert resolve_version("v1", "hybrid") == "v1"
    assert resolve_version("v2", "hybrid") == "v2"


@pytest.mark.parametrize("version, layout, message", [
    ("v1", "unified", "version: v1 was asked, but this host has only cgroup v2"),
    ("v2", "legacy", "version: v2 was asked, but this host has only cgroup v1"),
    ("v3", "hybrid", "version must be auto, v1 or v2, not 'v3'"),
])
def test_version_the_layout_lacks_is_refused(version, layout, message):
    with pytest.raises(CgroupError, match=message):
        resolve_version(version, layout)


def test_unified_mount_per_layout():
    assert unified_mount("unified", "/sys/fs/cgroup") == "/sys/fs/cgroup"
    assert unified_mount("hybrid", "/sys/fs/cgroup") == "/sys/fs/cgroup/unified"


def test_statfs_failure_names_the_path_and_the_fix():
    with pytest.raises(CgroupError) as caught:
        filesystem_type("/nonexistent/cgroup")
    assert str(caught.value) == ("cannot statfs /nonexistent/cgroup: No such file or directory: "
                                 "is /sys/fs/cgroup mounted?")


def test_a_root_that_is_no_cgroup_filesystem_is_refused():
    with pytest.raises(CgroupError, match="/proc is neither a cgroup2 mount nor a tmpfs"):
        detect_layout("/proc")
