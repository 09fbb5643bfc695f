#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: container_info
short_description: What the managed host runs, container by container, with usage and logs
version_added: 0.3.0
description:
  - Reports the named containers of the managed host (those that M(handmade.containers.ns_exec) and
    M(handmade.containers.container) started detached), as C(docker inspect) and C(docker stats) do, or as
    C(community.docker.docker_container_info) does for one.
  - With O(name), that container; without it, every container the host has a record of.
  - A container counts as running only while the kernel agrees (the recorded pid, with the same start time).
    Its usage comes from its cgroup's counters, its namespaces from C(/proc/<pid>/ns), its log from its state
    directory. Nothing is written, so the result is never C(changed).
  - Runs on the managed host as root. Python 3.8+ standard library only.
author:
  - handmade.containers maintainers (@handmade)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  name:
    description:
      - Name of one container. Without it, every container of the host.
    type: str
  logs_tail:
    description:
      - Return the last O(logs_tail) lines of each container's log in RV(containers[].logs), from
        C(container.log) and its rotated copies. 1 to 10000.
      - At most 4 MiB of log are read per container, and at most 4 MiB returned as JSON counts it (older lines
        beyond that are replaced by one line saying how many were left out); a line longer than 16 KiB is cut
        (what was left out is said at its end). A container that floods its log cannot swell the result.
    type: int
attributes:
  check_mode:
    support: full
    details: It only reads; check mode returns the same.
  diff_mode:
    support: none
  platform:
    platforms: linux
    details: Linux; runs as root (the state directories and cgroups are root's).
notes:
  - The exit status of a container whose process is gone is not known yet; its RV(containers[].state) is
    V(exited).
seealso:
  - module: handmade.containers.container
  - module: handmade.containers.ns_exec
"""

EXAMPLES = r"""
- name: Everything this host runs
  handmade.containers.container_info:
  register: host_containers

- name: The names of the running ones
  ansible.builtin.debug:
    msg: "{{ host_containers.containers | selectattr('running') | map(attribute='name') | list }}"

- name: One container, with the end of its log
  handmade.containers.container_info:
    name: web
    logs_tail: 20
  register: web

- name: Fail when the web container is not running
  ansible.builtin.assert:
    that: web.exists and web.containers[0].running
    fail_msg: "web is {{ web.containers[0].state | default('absent') }}: {{ web.containers[0].logs | default([]) | join('\n') }}"
"""

RETURN = r"""
exists:
  description: Whether the container O(name) has a record on the host.
  returned: when O(name) is given
  type: bool
  sample: true
containers:
  description: One entry per container, sorted by name; empty when there is none (or O(name) has none).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
      sample: web
    state:
      description:
        - V(running) while its PID 1 lives; V(restarting) while its supervisor waits out the back-off of its
          restart policy or starts it again; else V(exited).
        - V(unknown) when O(name) is not given and the container's state directory cannot be read (a symlink
          planted in it, say). RV(containers[].error) says why, and the other containers are listed as usual.
          With O(name), that is the task's failure instead.
      type: str
      sample: running
    error:
      description: Why the container's state could not be read.
      returned: when RV(containers[].state) is V(unknown)
      type: str
      sample: "/run/handmade-containers/web: container.log is a symlink, refused: remove it"
    running:
      description: Whether its PID 1 lives.
      type: bool
      sample: true
    pid:
      description: Host pid of its PID 1 while it runs, else null.
      type: int
      sample: 4242
    exit_code:
      description:
        - The exit status of its last run, as C(docker inspect) shows C(ExitCode) (128 + N when signal N ended
          it, 137 for SIGKILL); null while it runs.
        - Null too when the exit was not seen by the supervisor that started it (that supervisor had been killed,
          and the one that adopted the container could not wait for it).
      type: int
      sample: 0
    finished_at:
      description: When its last run ended, ISO 8601 in UTC; null if it never ended.
      type: str
      sample: "2026-12-01T22:15:40.002Z"
    restart_count:
      description: How often its supervisor started it again under its restart policy since a task started it.
      type: int
      sample: 0
    restart_policy:
      description: Its O(handmade.containers.ns_exec#module:restart_policy).
      type: str
      sample: "no"
    health:
      description:
        - What its O(handmade.containers.ns_exec#module:healthcheck) found, as C(docker inspect) shows
          C(State.Health); null for a container without a check.
        - C(status) is V(starting) until the first success or O(handmade.containers.ns_exec#module:healthcheck.retries)
          failures in a row, then V(healthy) or V(unhealthy); C(failing_streak) counts the failures in a row;
          C(log) holds the last 5 checks, oldest first, each with C(start) and C(end) (ISO 8601 in UTC),
          C(exit_code) (-1 when the check timed out or could not run) and C(output) (stdout then stderr, at most
          4096 bytes).
        - The status stays as it was last found after the container exits, and is V(starting) again after a
          restart.
      type: dict
      sample: {"status": "healthy", "failing_streak": 0, "log": [{"start": "2026-12-01T22:14:33.540Z",
               "end": "2026-12-01T22:14:33.702Z", "exit_code": 0, "output": ""}]}
    created_at:
      description: When it was last started by a module run, ISO 8601 in UTC.
      type: str
      sample: "2026-12-01T22:14:03.512Z"
    started_at:
      description: When its running PID 1 started (from the kernel), or when its last run started, ISO 8601 in UTC.
      type: str
      sample: "2026-12-01T22:14:03.530Z"
    config:
      description: Every container setting it was started with (the options of M(handmade.containers.ns_exec)).
      type: dict
      sample: {"command": ["/bin/sh"], "hostname": "web", "init": false}
    cgroup:
      description: The cgroup it runs in, as the cgroup module names it.
      type: str
      sample: handmade/web
    cgroup_owned:
      description: Whether that cgroup is its own (made for it and removed with it).
      type: bool
      sample: true
    stats:
      description:
        - Counters of its cgroup, as C(docker stats) shows them; null where the host's kernel has no such file
          (C(memory_peak) needs Linux 5.19 on cgroup v2) or the cgroup is gone.
        - C(memory_current) and C(memory_peak) in bytes, C(cpu_usage_usec) in microseconds, C(pids_current)
          the processes and threads in it, C(oom_kill) the processes the OOM killer ended in it.
      type: dict
      sample: {"memory_current": 1048576, "memory_peak": 2097152, "cpu_usage_usec": 5130, "pids_current": 1,
               "oom_kill": 0}
    oom_killed:
      description:
        - Whether the OOM killer ended a process of the container, as C(docker inspect) shows C(OOMKilled).
          After an exit, whether it struck during that run (the supervisor compares the cgroup's C(oom_kill)
          counter before and after); while it runs, whether its own cgroup's counter is above zero.
        - Null when the container shares its cgroup with others (the counter is theirs too) or the cgroup is gone.
      type: bool
      sample: false
    namespaces:
      description: Its namespaces as C(/proc/<pid>/ns) names them, while it runs; empty otherwise.
      type: dict
      sample: {"mnt": "mnt:[4026532181]", "pid": "pid:[4026532184]"}
    log_path:
      description: Its log on the host (see M(handmade.containers.ns_exec)).
      type: str
      sample: /run/handmade-containers/web/container.log
    logs:
      description: The last O(logs_tail) lines of its log, oldest first.
      returned: when O(logs_tail) is given
      type: list
      elements: str
      sample: ["listening on :80"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.inspect import inspect_containers


def main():
    module = AnsibleModule(
        argument_spec=dict(name=dict(type="str"), logs_tail=dict(type="int")),
        supports_check_mode=True,
    )
    name = module.params["name"]
    try:
        containers = inspect_containers(name=name, logs_tail=module.params["logs_tail"])
    except ContainerError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": False, "containers": containers}
    if name is not None:
        result["exists"] = bool(containers)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
