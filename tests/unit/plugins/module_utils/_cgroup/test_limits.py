# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LIMITS and STATS tables of _cgroup.limits: value rules, file formats, conversions, documentation.

Behaviour on a real kernel (creating, limiting, killing) is proven by
tests/integration/test_cgroup.py; these tests need no cgroup at all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import limits
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import (
    LIMITS,
    STATS,
    HostFacts,
    blkio_weight_to_io_weight,
    cpu_shares_to_weight,
    io_weight_to_blkio_weight,
    mapping_notes,
    mapping_table,
    weight_to_cpu_shares,
)

PAGE = 4096
HOST = HostFacts(page_size=PAGE, cpus=(0, 1), mems=(0,))
LIMIT = dict((limit.key, limit) for limit in LIMITS)
V1_UNLIMITED_TEXT = "9223372036854771712"  # PAGE_COUNTER_MAX pages of 4K, as v1 prints "no limit"
MIB = 1 << 20


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


def normalise(key, value, version, **inputs):
    return LIMIT[key].normalise(value, version, PAGE, inputs)


def test_memory_is_rounded_down_to_pages_like_the_kernel():
    assert desired("memory", memory="256M")[0] == 256 << 20
    assert desired("memory", memory=268435457)[0] == 268435456
    assert normalise("memory", 4097, "v1") == 4096
    assert normalise("memory", 4097, "v2") == 4096


@pytest.mark.parametrize("version, text", [("v1", V1_UNLIMITED_TEXT), ("v1", "-1"), ("v2", "max")])
def test_memory_unlimited_spellings_decode_alike(version, text):
    assert LIMIT["memory"].decode((text,), version) is None


def test_memory_unlimited_encodes_per_version():
    assert LIMIT["memory"].encode(None, "v1", PAGE) == ("-1",)
    assert LIMIT["memory"].encode(None, "v2", PAGE) == ("max",)


@pytest.mark.parametrize("value", ["12XB", "-5M", "100"])
def test_memory_refuses_non_sizes_and_less_than_a_page(value):
    with pytest.raises(CgroupError) as caught:
        desired("memory", memory=value)
    assert str(caught.value).startswith("memory: ")


def test_memory_swap_is_the_total_on_v1_and_the_swap_part_on_v2():
    swap = LIMIT["memory_swap"]
    memory = {"memory": 256 * MIB}
    assert swap.encode(512 * MIB, "v1", PAGE) == (str(512 * MIB),)
    assert swap.encode(512 * MIB, "v2", PAGE, memory) == (str(256 * MIB),)
    assert swap.encode(None, "v2", PAGE, memory) == ("max",)


def test_memory_swap_on_v2_reads_memory_max_beside_swap_max():
    swap = LIMIT["memory_swap"]
    assert swap.v2.names == ("memory.swap.max",) and swap.v2.also_reads == ("memory.max",)
    assert swap.v1.also_reads == ()
    # Texts: the written file first, then the file only read.
    assert swap.decode((str(256 * MIB), str(256 * MIB)), "v2") == 512 * MIB
    assert swap.decode(("0", str(128 * MIB)), "v2") == 128 * MIB
    assert swap.decode(("max", str(256 * MIB)), "v2") is None
    assert swap.decode((str(256 * MIB), "max"), "v2") is None
    assert swap.decode((str(512 * MIB),), "v1") == 512 * MIB


def test_memory_swap_needs_the_memory_being_set_only_on_v2():
    swap = LIMIT["memory_swap"]
    assert swap.inputs("v1") == ()
    assert swap.inputs("v2") == ("memory",)
    assert normalise("memory_swap", 512 * MIB, "v2", memory=256 * MIB) == 512 * MIB
    assert normalise("memory_swap", 512 * MIB + 1, "v2", memory=256 * MIB) == 512 * MIB
    assert normalise("memory_swap", 512 * MIB + 1, "v1") == 512 * MIB
    assert normalise("memory_swap", None, "v2", memory=256 * MIB) is None


def test_memory_swap_needs_memory_and_at_least_memory():
    with pytest.raises(CgroupError, match="needs memory"):
        desired("memory_swap", memory_swap="1G")
    with pytest.raises(CgroupError, match="less than memory"):
        desired("memory_swap", memory_swap="128M", memory="256M")
    assert desired("memory_swap", memory_swap="256M", memory="256M")[0] == 256 << 20


@pytest.mark.parametrize("old, new, position", [
    (256 * MIB, 1 << 30, -1),   # raising: memory+swap before memory
    (1 << 30, 64 * MIB, 1),     # lowering: after memory
    (64 * MIB, None, -1),       # to unlimited is raising
    (None, 64 * MIB, 1),        # from unlimited (or a new cgroup) is lowering
    (64 * MIB, 64 * MIB, -1),
])
def test_memory_swap_write_position_on_v1(old, new, position):
    assert LIMIT["memory_swap"].write_position("v1", old, new) == position
    assert LIMIT["memory_swap"].write_position("v2", old, new) == 0


def test_every_input_is_an_option_the_same_task_must_give():
    # A row encodes from the desired values of its inputs, so each input
    # must be required alongside the row's own option.
    for limit in LIMITS:
        for version in ("v1", "v2"):
            assert set(limit.inputs(version)) <= set(limit.requires), limit.key


def test_files_a_row_only_reads_are_written_by_the_row_of_its_input():
    for limit in LIMITS:
        for version in ("v1", "v2"):
            written_by_inputs = set(name for key in limit.inputs(version)
                                    for name in LIMIT[key].kernel_files(version).names)
            assert set(limit.kernel_files(version).also_reads) <= written_by_inputs, limit.key


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
    assert cpu.v1.names == ("cpu.cfs_period_us", "cpu.cfs_quota_us")
    assert cpu.encode((50000, 100000), "v1", PAGE) == ("100000", "50000")
    assert cpu.encode((None, 100000), "v1", PAGE) == ("100000", "-1")
    assert cpu.encode((50000, 100000), "v2", PAGE) == ("50000 100000",)
    assert cpu.encode((None, 100000), "v2", PAGE) == ("max 100000",)
    assert cpu.decode(("100000", "-1"), "v1") == (None, 100000)
    assert cpu.decode(("max 100000",), "v2") == (None, 100000)
    assert cpu.decode(("25000 50000",), "v2") == (25000, 50000)
    assert cpu.report((50000, 100000)) == {"cpus": 0.5, "cpu_quota": 50000, "cpu_period": 100000}
    assert cpu.report((None, 100000)) == {"cpus": "max", "cpu_quota": "max", "cpu_period": 100000}


def test_cpu_weight_is_stored_as_shares_on_v1():
    weight = LIMIT["cpu_weight"]
    assert weight.encode(100, "v1", PAGE) == ("1024",)
    assert weight.encode(100, "v2", PAGE) == ("100",)
    assert weight.decode(("1024",), "v1") == 100
    assert normalise("cpu_weight", 37, "v1") == 37


@pytest.mark.parametrize("value", [0, 10001, -1, "100", True])
def test_weights_refuse_outside_range(value):
    with pytest.raises(CgroupError, match="1..10000"):
        desired("cpu_weight", cpu_weight=value)


def test_io_weight_file_formats_and_coarser_v1_scale():
    io = LIMIT["io_weight"]
    assert io.v1.alternatives and io.v1.names == ("blkio.weight", "blkio.bfq.weight")
    assert io.decode(("default 200\n8:0 50",), "v2") == 200
    assert io.decode(("300",), "v2") == 300
    assert io.decode(("100",), "v1") == blkio_weight_to_io_weight(100)
    assert normalise("io_weight", 500, "v1") == 506
    assert normalise("io_weight", 500, "v2") == 500


def test_pids_max():
    assert desired("pids_max", pids_max=64)[0] == 64
    assert desired("pids_max", pids_max="max")[0] is None
    assert LIMIT["pids_max"].encode(None, "v2", PAGE) == ("max",)
    assert LIMIT["pids_max"].decode(("max",), "v1") is None
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
    assert LIMIT["cpuset_cpus"].decode(("0-1",), "v1") == (0, 1)
    assert LIMIT["cpuset_cpus"].report((0, 1, 3)) == {"cpuset_cpus": "0-1,3"}


def test_messages_for_a_missing_file_name_the_fix():
    assert LIMIT["memory_swap"].v1.missing_hint == (
        ": swap accounting is off; boot with swapaccount=1, or leave memory_swap out")
    assert LIMIT["memory"].v1.missing_hint == ": leave the option out on this host"


def test_stats_table_names_are_the_documented_ones():
    assert [stat.name for stat in STATS] == [
        "memory_current", "memory_peak", "oom", "oom_kill", "cpu_usage_usec",
        "nr_periods", "nr_throttled", "throttled_usec", "pids_current"]


# -- the module's options follow the table --------------------------------------

def test_argument_spec_has_every_limit_option_once():
    spec = limits.argument_spec()
    assert sorted(spec) == sorted(limits.LIMIT_OPTIONS)
    assert len(limits.LIMIT_OPTIONS) == len(set(limits.LIMIT_OPTIONS))
    assert spec["memory"] == {"type": "raw"}
    assert spec["cpu_period"] == {"type": "int"}
    assert spec["io_weight"] == {"type": "int"}


def test_option_rules_between_options():
    assert limits.mutually_exclusive() == [("cpus", "cpu_quota")]
    assert limits.required_by() == {"memory_swap": ["memory"]}


# -- the documentation follows the table --------------------------------------

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *([os.pardir] * 5)))


def _module():
    from ansible_collections.handmade.containers.plugins.modules import cgroup as module
    return module


def test_module_documentation_lists_the_table_rows_verbatim():
    documentation = yaml.safe_load(_module().DOCUMENTATION)
    mapping = [note for note in documentation["notes"] if note.startswith("O(")]
    assert mapping == mapping_notes()


def _limit_fragment_options():
    from ansible_collections.handmade.containers.plugins.doc_fragments.cgroup_limits import ModuleDocFragment
    return yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]


def test_the_limits_fragment_documents_every_limit_option_with_its_type():
    documented = _limit_fragment_options()
    assert sorted(documented) == sorted(limits.argument_spec())
    for option, rules in limits.argument_spec().items():
        assert documented[option]["type"] == rules["type"], option


def test_module_documentation_has_the_argument_spec_options_with_their_types():
    module = _module()
    documentation = yaml.safe_load(module.DOCUMENTATION)
    assert "handmade.containers.cgroup_limits" in documentation["extends_documentation_fragment"]
    documented = dict(_limit_fragment_options(), **documentation["options"])
    spec = module.argument_spec()
    assert sorted(documented) == sorted(spec)
    for option, rules in spec.items():
        assert documented[option]["type"] == rules["type"], option
        for rule in ("default", "choices", "required"):
            if rule in rules:
                assert documented[option][rule] == rules[rule], (option, rule)


def test_docs_page_lists_the_table_rows():
    with open(os.path.join(ROOT, "docs", "cgroup.md")) as handle:
        page = handle.read()
    for row in mapping_table():
        line = "| %s | %s: %s | %s: %s |" % (
            ", ".join("`%s`" % option for option in row["options"]),
            row["v1_controller"], row["v1_joiner"].join("`%s`" % name for name in row["v1_files"]),
            row["v2_controller"], row["v2_joiner"].join("`%s`" % name for name in row["v2_files"]))
        assert line in page
