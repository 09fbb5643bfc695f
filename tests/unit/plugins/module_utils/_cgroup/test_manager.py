# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What _cgroup.manager decides from values alone: which limits to write, in which order, how they are reported."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import manager
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import LIMIT_OPTIONS, LIMITS

LIMIT = dict((limit.key, limit) for limit in LIMITS)
MIB = 1 << 20


class VersionOnly:
    """Stands in for a driver where only its version matters."""

    def __init__(self, version):
        self.version = version


def test_report_limits_has_every_option_and_none_for_unreadable():
    report = manager.report_limits({"memory": None, "cpus": (50000, 100000)})
    assert set(report) == set(LIMIT_OPTIONS)
    assert report["memory"] == "max"
    assert report["cpus"] == 0.5
    assert report["pids_max"] is None


def test_v1_writes_memory_swap_first_when_raising_and_last_when_lowering():
    memory, swap, cpus = LIMIT["memory"], LIMIT["memory_swap"], LIMIT["cpus"]
    changing = [memory, swap, cpus]

    def order(version, old_swap, new_swap):
        before = {"memory": 128 * MIB, "memory_swap": old_swap, "cpus": (None, 100000)}
        target = {"memory": 64 * MIB, "memory_swap": new_swap, "cpus": (50000, 100000)}
        return manager.write_order(version, changing, before, target)
    assert order("v1", 256 * MIB, 1 << 30) == [swap, memory, cpus]
    assert order("v1", 1 << 30, 64 * MIB) == [memory, cpus, swap]
    assert order("v1", 64 * MIB, None) == [swap, memory, cpus]
    assert order("v1", None, 64 * MIB) == [memory, cpus, swap]
    assert order("v2", 1 << 30, 64 * MIB) == changing


def test_write_order_without_swap_keeps_the_table_order():
    changing = [LIMIT["memory"], LIMIT["cpus"], LIMIT["pids_max"]]
    assert manager.write_order("v1", changing, {}, {"memory": MIB, "cpus": (None, 100000), "pids_max": 1}) == changing


@pytest.mark.parametrize("version, rewritten", [("v1", False), ("v2", True)])
def test_a_new_memory_with_the_same_memory_swap_rewrites_swap_max_on_v2_only(version, rewritten):
    # v2 memory.swap.max holds memory_swap minus memory: it changes with memory.
    before = {"memory": 128 * MIB, "memory_swap": 256 * MIB}
    target = {"memory": 192 * MIB, "memory_swap": 256 * MIB}
    cgroup = VersionOnly(version)
    assert manager._needs_writing(cgroup, LIMIT["memory_swap"], before, target) is rewritten
    assert manager._needs_writing(cgroup, LIMIT["memory"], before, target) is True


def test_unchanged_limits_are_not_written():
    values = {"memory": 128 * MIB, "memory_swap": 256 * MIB}
    for version in ("v1", "v2"):
        assert not manager._needs_writing(VersionOnly(version), LIMIT["memory_swap"], values, dict(values))


def test_a_limit_the_files_did_not_hold_is_written():
    assert manager._needs_writing(VersionOnly("v1"), LIMIT["pids_max"], {}, {"pids_max": 64})
