# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._container import mounts
from ansible_collections.handmade.containers.plugins.module_utils._container.spec import Volume


class FakeSpec:
    def __init__(self, namespaces=("mount", "net", "cgroup"), readonly_rootfs=False, volumes=()):
        self.namespaces = frozenset(namespaces)
        self.readonly_rootfs = readonly_rootfs
        self.volumes = list(volumes)


NO_CGROUPS = {"hierarchies": [], "links": []}


def kinds(plan):
    return [(step.kind, step.target) for step in plan]


def test_every_step_kind_has_a_runner():
    volume = Volume("/data", "/r/data", src="/srv", readonly=True)
    for spec in (FakeSpec(), FakeSpec(namespaces=("mount",), readonly_rootfs=True, volumes=[volume])):
        for step in mounts.build_plan(spec):
            assert step.kind in mounts.RUNNERS, step


def test_the_rootfs_turns_read_only_after_its_mount_points_and_before_any_mount():
    plan = kinds(mounts.build_plan(FakeSpec(readonly_rootfs=True)))
    readonly = plan.index(("readonly", "."))
    assert plan[:readonly] == [("mount_point", "proc"), ("mount_point", "dev"), ("mount_point", "sys")]
    assert plan[readonly + 1] == ("proc", "proc")
    assert ("readonly", ".") not in kinds(mounts.build_plan(FakeSpec()))


def test_sys_is_a_fresh_sysfs_with_or_without_a_network_namespace():
    for spec in (FakeSpec(), FakeSpec(namespaces=("mount",))):
        plan = kinds(mounts.build_plan(spec, host_cgroups=NO_CGROUPS))
        assert ("sysfs", "sys") in plan and ("bind", "sys") not in plan


def test_the_cgroup_view_is_each_hierarchy_read_only_after_sys():
    host = {"hierarchies": [("cpu,cpuacct", "cgroup", "cpu,cpuacct"), ("unified", "cgroup2", None)],
            "links": [("cpu", "cpu,cpuacct")]}
    plan = kinds(mounts.build_plan(FakeSpec(), host_cgroups=host))
    view = plan[plan.index(("tmpfs", "sys/fs/cgroup")):plan.index(("readonly", "sys/fs/cgroup")) + 1]
    assert view == [("tmpfs", "sys/fs/cgroup"),
                    ("directory", "sys/fs/cgroup/cpu,cpuacct"), ("cgroup", "sys/fs/cgroup/cpu,cpuacct"),
                    ("directory", "sys/fs/cgroup/unified"), ("cgroup", "sys/fs/cgroup/unified"),
                    ("symlink", "sys/fs/cgroup/cpu"), ("readonly", "sys/fs/cgroup")]
    assert plan.index(("sysfs", "sys")) < plan.index(("tmpfs", "sys/fs/cgroup")) < plan.index(("mqueue", "dev/mqueue"))
    unified = kinds(mounts.build_plan(FakeSpec(), host_cgroups={"hierarchies": [("", "cgroup2", None)], "links": []}))
    assert ("cgroup", "sys/fs/cgroup") in unified and ("tmpfs", "sys/fs/cgroup") not in unified


def test_without_a_cgroup_namespace_no_cgroup_is_mounted():
    host = {"hierarchies": [("", "cgroup2", "nsdelegate")], "links": []}
    plan = mounts.build_plan(FakeSpec(namespaces=("mount", "net")), host_cgroups=host)
    assert not [step for step in plan if step.kind == "cgroup" or step.target.startswith("sys/fs/cgroup")]


def test_dockers_mount_order():
    plan = [target for kind, target in kinds(mounts.build_plan(FakeSpec()))
            if kind in ("proc", "tmpfs", "devpts", "sysfs", "cgroup", "mqueue") and target.count("/") <= 2]
    order = [target for target in ("proc", "dev", "dev/pts", "sys", "sys/fs/cgroup", "dev/mqueue", "dev/shm")
             if target in plan]
    assert sorted(order, key=plan.index) == order


def test_masks_come_after_proc_and_sys_and_volumes_last():
    volume = Volume("/data", "/r/data", src="/srv", readonly=True)
    plan = kinds(mounts.build_plan(FakeSpec(volumes=[volume])))
    assert plan.index(("mask", "proc/kcore")) > plan.index(("sysfs", "sys")) > plan.index(("proc", "proc"))
    assert plan[-2:] == [("volume", "/data"), ("readonly_volume", "/data")]


def test_a_writable_or_tmpfs_volume_gets_no_read_only_step():
    plan = kinds(mounts.build_plan(FakeSpec(volumes=[
        Volume("/rw", "/r/rw", src="/srv"), Volume("/t", "/r/t", mount_type="tmpfs", readonly=True)])))
    assert ("readonly_volume", "/rw") not in plan and ("readonly_volume", "/t") not in plan


def test_mounts_below_lists_parents_first_and_unescapes(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "30 1 0:1 / /r/sys rw - sysfs sysfs rw\n"
        "31 30 0:2 / /r/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 30 0:3 / /r/sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "33 1 0:4 / /r/system rw - tmpfs tmpfs rw\n"
        "34 30 0:5 / /r/sys/a\\040b rw - tmpfs tmpfs rw\n")
    assert mounts.mounts_below("/r/sys", str(mountinfo)) == [
        "/r/sys", "/r/sys/a b", "/r/sys/fs/cgroup", "/r/sys/fs/cgroup/memory"]
