# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The limit options of plugins/module_utils/_cgroup/limits.py LIMITS, as
    # every module that writes cgroup limits documents them (the cgroup and
    # container modules). tests/unit/plugins/module_utils/_cgroup/test_limits.py
    # checks each module's argument_spec against them.
    DOCUMENTATION = r"""
options:
  memory:
    description:
      - Hard memory limit. Bytes, or a number with K, M, G or T (1024-based, as docker reads them), or V(max) or
        V(-1) for no limit. At least one page.
      - The kernel rounds it down to whole pages; the O(memory) key of RV(limits) shows the value it holds.
    type: raw
  memory_swap:
    description:
      - Memory plus swap, as docker's C(--memory-swap); needs O(memory) in the same task. Equal to O(memory) means
        no swap; V(max) means unlimited swap.
      - v1 holds the total in C(memory.memsw.limit_in_bytes) (needs swap accounting); v2 holds only the swap part
        in C(memory.swap.max), so the module writes O(memory_swap) minus O(memory) there.
    type: raw
  memory_reservation:
    description:
      - Soft memory limit, in the same units as O(memory). v1 reclaims the cgroup down to it when memory is short
        (C(memory.soft_limit_in_bytes)); v2 protects this much from reclaim (C(memory.low)), as runc maps it.
    type: raw
  cpus:
    description:
      - CPU time as a number of CPUs, for example V(0.5) for half a core or V(2) for two; V(max) for no limit.
      - Sets the quota to O(cpus) times O(cpu_period) microseconds per period. Mutually exclusive with O(cpu_quota).
      - More CPUs than the host has is accepted with a warning; such a limit cannot bind.
    type: raw
  cpu_quota:
    description:
      - The raw CFS quota in microseconds per period (at least V(1000)), or V(-1) or V(max) for no limit, as the
        walkthrough writes C(cpu.cfs_quota_us).
    type: raw
  cpu_period:
    description:
      - The CFS period in microseconds, V(1000) to V(1000000); the kernel's default is V(100000), used when this
        is left out. Needs O(cpus) or O(cpu_quota).
    type: int
  cpu_weight:
    description:
      - Relative share of CPU time under contention, V(1) to V(10000); V(100) is the kernel's default.
      - On v1 it is written to C(cpu.shares) converted as runc converts (V(100) is V(1024) shares); reading it back
        converts the other way, exactly.
    type: int
  pids_max:
    description:
      - Most processes and threads in the cgroup, at least V(1); V(max) or V(-1) for no limit. C(fork) fails
        beyond it.
    type: raw
  cpuset_cpus:
    description:
      - CPUs the processes may run on, in the kernel's list format, for example V(0-3,6). Each must exist on the
        host.
    type: raw
  cpuset_mems:
    description:
      - Memory nodes the processes may allocate from, in the kernel's list format, for example V(0).
    type: raw
  io_weight:
    description:
      - Relative share of block I/O, V(1) to V(10000), on disks whose I/O scheduler honours weights (BFQ on v1,
        iocost on v2).
      - On v1 it is converted to the coarser C(blkio.weight) scale of 10 to 1000 as runc does, so
        the O(io_weight) key of RV(limits) may differ slightly from the value asked (V(500) reads back as V(506)).
    type: int
"""
