# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing and mapping of _cgroupfs: the table, the file formats, the conversions.

Behaviour on a real kernel (creating, limiting, killing) is proven by
tests/integration/test_cgroup.py; these tests need no cgroup at all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.handmade.containers.plugins.module_utils import _cgroupfs
from ansible_collections.handmade.containers.plugins.module_utils._cgroupfs import (
    LIMITS,
    CgroupError,
    HostFacts,
    blkio_weight_to_io_weight,
    cpu_shares_to_weight,
    io_weight_to_blkio_weight,
    mapping_notes,
    mapping_table,
    parse_mountinfo,
    parse_proc_cgroup,
    report_limits,
    v1_hierarchies,
    validate_name,
    weight_to_cpu_shares,
)

HOST = HostFacts(page_size=4096, cpus=(0, 1), mems=(0,))
LIMIT = dict((limit.key, limit) for limit in LIMITS)
V1_UNLIMITED_TEXT = "9223372036854771712"  # PAGE_COUNTER_MAX pages of 4K, as v1 prints "no limit"

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


def test_v1_hierarchies_none_on_unified_host():
    assert v1_hierarchies(parse_mountinfo(UNIFIED_MOUNTINFO)) == {}


def test_parse_proc_cgroup_hybrid():
    text = "9:name=systemd:/\n4:memory:/handmade/web1\n2:cpu,cpuacct:/handmade/web1\n0::/\n"
    assert parse_proc_cgroup(text) == {"name=systemd": "/", "memory": "/handmade/web1",
                                       "cpu": "/handmade/web1", "cpuacct": "/handmade/web1", "unified": "/"}


def test_parse_proc_cgroup_unified_path_may_hold_colons():
    assert parse_proc_cgroup("0::/handmade/a:b\n") == {"unified": "/handmade/a:b"}


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


# -- conversions between the v1 and v2 scales ------------------------------

def test_cpu_shares_to_weight_keeps_ends_and_defaults():
    assert cpu_shares_to_weight(2) == 1
    assert cpu_shares_to_weight(1024) == 100
    assert cpu_shares_to_weight(262144) == 10000


def test_cpu_weight_round_trips_exactly_through_shares():
    for weight in range(1, 10001):
        shares = weight_to_cpu_shares(weight)
        assert 2 <= shares <= 262144
        assert cpu_shares_to_weight(shares) == weight
    assert weight_to_cpu_shares(100) == 1024


def test_cpu_shares_to_weight_is_monotonic():
    weights = [cpu_shares_to_weight(shares) for shares in range(2, 262145)]
    assert weights == sorted(weights)


def test_blkio_weight_maps_as_runc_and_every_v1_value_round_trips():
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(1000) == 10000
    assert blkio_weight_to_io_weight(500) == 4950
    for blkio_weight in range(10, 1001):
        assert io_weight_to_blkio_weight(blkio_weight_to_io_weight(blkio_weight)) == blkio_weight
    assert all(10 <= io_weight_to_blkio_weight(weight) <= 1000 for weight in range(1, 10001))


# -- each row: desired values, file formats and normalisation -----------------

def desired(key, **params):
    warnings = []
    return LIMIT[key].desired(params, HOST, warnings), warnings


def normalise(key, value, version, **context):
    return LIMIT[key].normalise(value, version, dict(context, page_size=4096))


def test_memory_is_rounded_down_to_pages_like_the_kernel():
    assert desired("memory", memory="256M")[0] == 256 << 20
    assert desired("memory", memory=268435457)[0] == 268435456
    assert normalise("memory", 4097, "v1") == 4096
    assert normalise("memory", 4097, "v2") == 4096


@pytest.mark.parametrize("version, text", [("v1", V1_UNLIMITED_TEXT), ("v1", "-1"), ("v2", "max")])
def test_memory_unlimited_spellings_decode_alike(version, text):
    memory = LIMIT["memory"]
    assert memory.decode({memory.files(version)[0]: text}, version, {}) is None


def test_memory_unlimited_encodes_per_version():
    assert LIMIT["memory"].encode(None, "v1", {"page_size": 4096}) == ("-1",)
    assert LIMIT["memory"].encode(None, "v2", {"page_size": 4096}) == ("max",)


@pytest.mark.parametrize("value", ["12XB", "-5M", "100"])
def test_memory_refuses_non_sizes_and_less_than_a_page(value):
    with pytest.raises(CgroupError) as caught:
        desired("memory", memory=value)
    assert str(caught.value).startswith("memory: ")


def test_memory_swap_is_the_total_on_v1_and_the_swap_part_on_v2():
    swap = LIMIT["memory_swap"]
    context = {"page_size": 4096, "memory": 256 << 20}
    assert swap.encode(512 << 20, "v1", context) == (str(512 << 20),)
    assert swap.encode(512 << 20, "v2", context) == (str(256 << 20),)
    assert swap.decode({"memory.swap.max": str(256 << 20)}, "v2", context) == 512 << 20
    assert swap.decode({"memory.swap.max": "max"}, "v2", context) is None
    assert swap.encode(None, "v2", context) == ("max",)


def test_memory_swap_needs_memory_and_at_least_memory():
    with pytest.raises(CgroupError, match="needs memory"):
        desired("memory_swap", memory_swap="1G")
    with pytest.raises(CgroupError, match="less than memory"):
        desired("memory_swap", memory_swap="128M", memory="256M")
    assert desired("memory_swap", memory_swap="256M", memory="256M")[0] == 256 << 20


def test_memory_reservation_may_be_zero():
    assert desired("memory_reservation", memory_reservation=0)[0] == 0


def test_cpus_sets_quota_at_the_default_period():
    assert desired("cpus", cpus=0.5) == ((50000, 100000), [])
    assert desired("cpus", cpus="1.5", cpu_period=50000) == ((75000, 50000), [])
    assert desired("cpus", cpu_quota=50000, cpu_period=100000) == ((50000, 100000), [])
    assert desired("cpus", cpu_quota="max") == ((None, 100000), [])
    assert desired("cpus", cpu_quota=-1) == ((None, 100000), [])


def test_cpus_above_the_host_warns_but_is_accepted():
    value, warnings = desired("cpus", cpus=4)
    assert value == (400000, 100000)
    assert len(warnings) == 1 and "2" in warnings[0] and "cannot bind" in warnings[0]


@pytest.mark.parametrize("params, message", [
    ({"cpus": 0}, "above 0"),
    ({"cpus": "-1"}, "above 0"),
    ({"cpus": 0.005}, "minimum of 1000"),
    ({"cpu_quota": 500}, "minimum of 1000"),
    ({"cpu_quota": 0}, "minimum of 1000"),
    ({"cpus": 0.5, "cpu_period": 500}, "1000..1000000"),
    ({"cpus": 0.5, "cpu_period": 2000000}, "1000..1000000"),
    ({"cpu_period": 50000}, "alone sets nothing"),
    ({"cpus": 1, "cpu_quota": 1000}, "not both"),
])
def test_cpu_bandwidth_refuses(params, message):
    with pytest.raises(CgroupError, match=message):
        desired("cpus", **params)


def test_cpu_bandwidth_file_formats():
    cpu = LIMIT["cpus"]
    assert cpu.encode((50000, 100000), "v1", {}) == ("100000", "50000")
    assert cpu.encode((None, 100000), "v1", {}) == ("100000", "-1")
    assert cpu.encode((50000, 100000), "v2", {}) == ("50000 100000",)
    assert cpu.encode((None, 100000), "v2", {}) == ("max 100000",)
    assert cpu.decode({"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}, "v1", {}) == (None, 100000)
    assert cpu.decode({"cpu.max": "max 100000"}, "v2", {}) == (None, 100000)
    assert cpu.decode({"cpu.max": "25000 50000"}, "v2", {}) == (25000, 50000)
    assert cpu.report((50000, 100000)) == {"cpus": 0.5, "cpu_quota": 50000, "cpu_period": 100000}
    assert cpu.report((None, 100000)) == {"cpus": "max", "cpu_quota": "max", "cpu_period": 100000}


def test_cpu_weight_is_stored_as_shares_on_v1():
    weight = LIMIT["cpu_weight"]
    assert weight.encode(100, "v1", {}) == ("1024",)
    assert weight.encode(100, "v2", {}) == ("100",)
    assert weight.decode({"cpu.shares": "1024"}, "v1", {}) == 100
    assert normalise("cpu_weight", 37, "v1") == 37


@pytest.mark.parametrize("value", [0, 10001, -1, "100", True])
def test_weights_refuse_outside_range(value):
    with pytest.raises(CgroupError, match="1..10000"):
        desired("cpu_weight", cpu_weight=value)


def test_io_weight_file_formats_and_coarser_v1_scale():
    io = LIMIT["io_weight"]
    assert io.decode({"io.weight": "default 200\n8:0 50"}, "v2", {}) == 200
    assert io.decode({"io.weight": "300"}, "v2", {}) == 300
    assert io.decode({"blkio.bfq.weight": "100"}, "v1", {}) == blkio_weight_to_io_weight(100)
    assert normalise("io_weight", 500, "v1") == 506
    assert normalise("io_weight", 500, "v2") == 500


def test_pids_max():
    assert desired("pids_max", pids_max=64)[0] == 64
    assert desired("pids_max", pids_max="max")[0] is None
    assert LIMIT["pids_max"].encode(None, "v2", {}) == ("max",)
    assert LIMIT["pids_max"].decode({"pids.max": "max"}, "v1", {}) is None
    with pytest.raises(CgroupError, match="at least 1"):
        desired("pids_max", pids_max=0)
    with pytest.raises(CgroupError, match="negative"):
        desired("pids_max", pids_max=-3)


def test_cpuset_must_name_host_cpus():
    assert desired("cpuset_cpus", cpuset_cpus="0-1")[0] == (0, 1)
    assert desired("cpuset_cpus", cpuset_cpus=1)[0] == (1,)
    with pytest.raises(CgroupError, match="CPUs 2-3 not on this host, which has CPUs 0-1"):
        desired("cpuset_cpus", cpuset_cpus="0-3")
    with pytest.raises(CgroupError, match="memory node 1 not on this host"):
        desired("cpuset_mems", cpuset_mems="1")
    with pytest.raises(CgroupError, match="empty"):
        desired("cpuset_cpus", cpuset_cpus="")
    assert LIMIT["cpuset_cpus"].decode({"cpuset.cpus": "0-1"}, "v1", {}) == (0, 1)
    assert LIMIT["cpuset_cpus"].report((0, 1, 3)) == {"cpuset_cpus": "0-1,3"}


def test_report_limits_has_every_option_and_none_for_unreadable():
    report = report_limits({"memory": None, "cpus": (50000, 100000)})
    assert set(report) == set(_cgroupfs.LIMIT_OPTIONS)
    assert report["memory"] == "max"
    assert report["cpus"] == 0.5
    assert report["pids_max"] is None


def test_flat_keyed_files():
    assert _cgroupfs._flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == {
        "oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}
    assert _cgroupfs._flat_keyed("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n")["oom_kill"] == 1


def test_stats_table_names_are_the_documented_ones():
    assert [name for name, _v1, _v2 in _cgroupfs.STATS] == [
        "memory_current", "memory_peak", "oom", "oom_kill", "cpu_usage_usec",
        "nr_periods", "nr_throttled", "throttled_usec", "pids_current"]


# -- the documentation follows the table --------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_module_documentation_lists_the_table_rows_verbatim():
    from ansible_collections.handmade.containers.plugins.modules import cgroup as module
    documentation = yaml.safe_load(module.DOCUMENTATION)
    mapping = [note for note in documentation["notes"] if note.startswith("O(")]
    assert mapping == mapping_notes()
    assert set(documentation["options"]) >= set(_cgroupfs.LIMIT_OPTIONS)


def test_docs_page_lists_the_table_rows():
    with open(os.path.join(ROOT, "docs", "cgroup.md")) as handle:
        page = handle.read()
    for row in mapping_table():
        line = "| %s | %s: %s | %s: %s |" % (
            ", ".join("`%s`" % option for option in row["options"]),
            row["v1_controller"], row["joiner"].join("`%s`" % name for name in row["v1_files"]),
            row["v2_controller"], row["joiner"].join("`%s`" % name for name in row["v2_files"]))
        assert line in page


def test_v1_writes_memory_swap_first_when_raising_and_last_when_lowering():
    memory, swap, cpus = LIMIT["memory"], LIMIT["memory_swap"], LIMIT["cpus"]
    changing = [memory, swap, cpus]
    write_order = _cgroupfs._write_order
    assert write_order("v1", changing, {"memory_swap": 256 << 20}, {"memory_swap": 1 << 30}) == [swap, memory, cpus]
    assert write_order("v1", changing, {"memory_swap": 1 << 30}, {"memory_swap": 64 << 20}) == [memory, cpus, swap]
    assert write_order("v1", changing, {"memory_swap": 64 << 20}, {"memory_swap": None}) == [swap, memory, cpus]
    assert write_order("v1", changing, {"memory_swap": None}, {"memory_swap": 64 << 20}) == [memory, cpus, swap]
    assert write_order("v2", changing, {"memory_swap": 1 << 30}, {"memory_swap": 64 << 20}) == changing
