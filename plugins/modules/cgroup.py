#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: cgroup
short_description: A cgroup with memory, CPU, pids, cpuset and I/O limits on cgroup v1, hybrid and v2 hosts
version_added: 0.1.0
description:
  - Creates, updates or removes a control group below the project's parent cgroup C(handmade), with the same
    limits on every kind of host. The module tells the three layouts apart with statfs(2) on C(/sys/fs/cgroup)
    (C(cgroup2) there means unified v2; a tmpfs with C(cgroup2) on C(/sys/fs/cgroup/unified) means hybrid; a tmpfs
    alone means legacy v1) and on hybrid hosts uses the v1 controllers, which are the ones that limit there.
  - On v1 the cgroup is made in every controller hierarchy the host mounts (memory, cpu, cpuacct, cpuset, pids,
    blkio, freezer), so a limit added later never has to move the processes inside; cpuset's cpus and mems are
    copied from the parent, without which v1 refuses processes. On v2 the controllers are enabled in the
    C(cgroup.subtree_control) of every ancestor from the root down (systemd enables only memory and pids).
  - Limits are compared with what the kernel's files hold, after the kernel's own normalisation (memory rounded
    down to whole pages, V(-1) and V(max) alike, the default CPU period), so an unchanged limit reports
    C(changed=false) and a changed one is written in place, without touching the processes inside.
  - A limit left out is left as it is. A failure while creating a new cgroup removes what that run made; a limit
    the kernel refuses puts back the limits that run had already changed.
  - With O(state=absent) the processes inside are killed (C(cgroup.kill) on v2 with Linux 5.14 or later, else
    frozen, killed with SIGKILL and thawed), then child cgroups are removed bottom-up and the cgroup itself.
  - Each limit maps to its files as the notes list; the same table drives the code.
author:
  - handmade.containers maintainers (@handmade)
options:
  name:
    description:
      - Path of the cgroup relative to the cgroup root, below the project's parent C(handmade), for example
        V(handmade/web1).
      - Components of letters, digits, V(_), V(.) and V(-) joined by V(/); no leading V(/), no V(.) or V(..).
    type: str
    required: true
  state:
    description:
      - V(present) makes the cgroup exist with the given limits; V(absent) removes it and its children.
    type: str
    choices: [present, absent]
    default: present
  version:
    description:
      - Which cgroup version to use. V(auto) uses v2 on unified hosts and v1 on legacy and hybrid ones.
      - V(v1) or V(v2) insists, and fails on a host without it. On a hybrid host V(v2) has the v2 hierarchy but
        usually no controllers in it, so limits fail there with a message saying so.
    type: str
    choices: [auto, v1, v2]
    default: auto
  kill:
    description:
      - With O(state=absent), kill the processes still inside first. With V(false) a cgroup that still holds
        processes is left alone and the task fails.
    type: bool
    default: true
extends_documentation_fragment:
  - handmade.containers.cgroup_limits
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    membership:
      - handmade.containers.containers
  check_mode:
    support: full
    details:
      - Reads the cgroup's files and reports what would change, for O(state=present) and O(state=absent) alike,
        writing nothing. RV(limits) holds the values the run would set.
  diff_mode:
    support: full
    details: Before and after of each limit given, and of the cgroup's existence.
  platform:
    platforms: linux
    details: Linux with cgroups (v1, hybrid or v2) mounted under C(/sys/fs/cgroup); runs as root.
notes:
  - Requires root on the managed host, and Python 3.8 or later (standard library only).
  - Everything is created below C(handmade); nothing else on the host is written, except that on v2 the
    controllers are enabled in the root's C(cgroup.subtree_control), which systemd does not do for cpu.
  - "O(memory): v1 C(memory.limit_in_bytes) (memory hierarchy); v2 C(memory.max). Hard memory limit; the OOM
    killer acts beyond it."
  - "O(memory_swap): v1 C(memory.memsw.limit_in_bytes) (memory hierarchy); v2 C(memory.swap.max). Memory plus
    swap, as docker's --memory-swap; v2 holds memory_swap - memory."
  - "O(memory_reservation): v1 C(memory.soft_limit_in_bytes) (memory hierarchy); v2 C(memory.low). Soft limit:
    v1 reclaims down to it under pressure, v2 protects up to it."
  - "O(cpus), O(cpu_quota), O(cpu_period): v1 C(cpu.cfs_period_us) and C(cpu.cfs_quota_us) (cpu hierarchy); v2
    C(cpu.max). CPU time per period: quota = cpus x period."
  - "O(cpu_weight): v1 C(cpu.shares) (cpu hierarchy); v2 C(cpu.weight). Relative CPU share; v1 cpu.shares
    converted as runc does (100 <-> 1024)."
  - "O(pids_max): v1 C(pids.max) (pids hierarchy); v2 C(pids.max). Most processes and threads; fork fails beyond
    it."
  - "O(cpuset_cpus): v1 C(cpuset.cpus) (cpuset hierarchy); v2 C(cpuset.cpus). CPUs the processes may run on."
  - "O(cpuset_mems): v1 C(cpuset.mems) (cpuset hierarchy); v2 C(cpuset.mems). Memory nodes the processes may
    allocate from."
  - "O(io_weight): v1 C(blkio.weight) or C(blkio.bfq.weight) (blkio hierarchy); v2 C(io.weight). Relative block
    I/O share; v1 blkio weight 10..1000 converted as runc does."
seealso:
  - name: Control Group v2
    description: The kernel's documentation of cgroup v2 and its interface files.
    link: https://docs.kernel.org/admin-guide/cgroup-v2.html
  - name: Control Groups version 1
    description: The kernel's documentation of the v1 controllers.
    link: https://docs.kernel.org/admin-guide/cgroup-v1/index.html
  - module: handmade.containers.ns_exec
"""

EXAMPLES = r"""
- name: Half a core, 256 MiB and at most 64 processes for web1
  handmade.containers.cgroup:
    name: handmade/web1
    memory: 256M
    cpus: 0.5
    pids_max: 64

- name: The walkthrough's raw values (512 MiB, 50000 us of every 100000 us)
  handmade.containers.cgroup:
    name: handmade/mycontainer
    memory: 536870912
    cpu_quota: 50000
    cpu_period: 100000

- name: Pin to CPU 0, no swap, lower CPU weight
  handmade.containers.cgroup:
    name: handmade/batch
    memory: 1G
    memory_swap: 1G
    cpuset_cpus: "0"
    cpu_weight: 50

- name: Remove it, killing whatever still runs inside
  handmade.containers.cgroup:
    name: handmade/web1
    state: absent
"""

RETURN = r"""
name:
  description: The cgroup's name, as given.
  returned: always
  type: str
  sample: handmade/web1
version:
  description: The cgroup version used, V(v1) or V(v2).
  returned: always
  type: str
  sample: v1
layout:
  description: The host's layout, V(legacy), V(hybrid) or V(unified).
  returned: always
  type: str
  sample: hybrid
paths:
  description:
    - Directory of the cgroup per controller hierarchy on v1 (co-mounted controllers share one), or the one
      directory under the key C(unified) on v2. Given also where it does not exist (yet).
  returned: always
  type: dict
  sample: {"memory": "/sys/fs/cgroup/memory/handmade/web1", "cpu": "/sys/fs/cgroup/cpu/handmade/web1"}
limits:
  description:
    - Every limit as the kernel holds it, normalised, with the same keys as the options; V(max) for no limit,
      null where the host has no file for it. Sizes in bytes, O(cpus) as a number.
    - In check mode, the values the run would set.
  returned: when O(state=present)
  type: dict
  sample: {"memory": 268435456, "memory_swap": "max", "memory_reservation": "max", "cpus": 0.5,
           "cpu_quota": 50000, "cpu_period": 100000, "cpu_weight": 100, "pids_max": 64,
           "cpuset_cpus": "0-1", "cpuset_mems": "0", "io_weight": 100}
stats:
  description:
    - Usage counters read from the kernel; null where the host lacks the file.
    - On v1, C(oom) is C(memory.failcnt) plus C(memory.memsw.failcnt) (times the memory or memory+swap limit
      was hit; recent kernels may leave these at 0, so rely on C(oom_kill) there); on v2 it is the C(oom) count of
      C(memory.events).
  returned: when O(state=present) and the cgroup exists
  type: dict
  contains:
    memory_current:
      description: Memory in use, in bytes.
      type: int
    memory_peak:
      description: Highest memory use seen, in bytes (v2 needs Linux 5.19 or later).
      type: int
    oom:
      description: Times the memory limit was reached.
      type: int
    oom_kill:
      description: Processes killed by the OOM killer in this cgroup.
      type: int
    cpu_usage_usec:
      description: CPU time used, in microseconds.
      type: int
    nr_periods:
      description: CFS periods that have elapsed with processes runnable.
      type: int
    nr_throttled:
      description: Periods in which the cgroup was throttled.
      type: int
    throttled_usec:
      description: Time spent throttled, in microseconds.
      type: int
    pids_current:
      description: Processes and threads in the cgroup.
      type: int
    procs:
      description: PIDs of the processes in the cgroup and its children.
      type: list
      elements: int
  sample: {"memory_current": 1232896, "memory_peak": 268435456, "oom": 3, "oom_kill": 1, "cpu_usage_usec": 1520000,
           "nr_periods": 31, "nr_throttled": 29, "throttled_usec": 1420000, "pids_current": 1, "procs": [4242]}
killed:
  description: PIDs that were inside when O(state=absent) removed the cgroup (and were killed).
  returned: when O(state=absent)
  type: list
  elements: int
  sample: [4242, 4243]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import limits
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import (
    CgroupError,
    ensure_absent,
    ensure_present,
)


def argument_spec():
    """The module's options: its own four, and one per limit option of the LIMITS table."""
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        version=dict(type="str", default="auto", choices=["auto", "v1", "v2"]),
        kill=dict(type="bool", default=True),
    )
    spec.update(limits.argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=limits.mutually_exclusive(),
        required_by=limits.required_by(),
        supports_check_mode=True,
    )
    name = module.params["name"]
    try:
        if module.params["state"] == "present":
            requested = dict((option, module.params[option]) for option in limits.LIMIT_OPTIONS)
            result = ensure_present(name, requested, version=module.params["version"], check_mode=module.check_mode)
        else:
            result = ensure_absent(name, kill=module.params["kill"], version=module.params["version"],
                                   check_mode=module.check_mode)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), name=name)
    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
