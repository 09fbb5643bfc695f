#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: ns_exec
short_description: Run a process in fresh namespaces, pivot_root'ed into a root filesystem, inside a cgroup
version_added: 0.1.0
description:
  - Starts O(command) as PID 1 of a new container built straight from kernel
    features, with no container engine. It gets new PID, mount, UTS, IPC, network and
    cgroup namespaces, the root filesystem O(rootfs) made the root with
    C(pivot_root) (not C(chroot), which root can escape), a fresh C(/proc), a
    tmpfs C(/dev) with only harmless devices, read-only C(/sys),
    C(/sys/fs/cgroup) and C(/proc/sys), host-revealing kernel files masked as
    Docker masks them, a session keyring of its own, the capabilities cut
    down to O(capabilities), C(no_new_privs) set and Docker's default seccomp
    filter (O(seccomp)).
  - The container joins O(cgroup) (made by M(handmade.containers.cgroup)), or
    without it a cgroup of its own below C(handmade/containers/), before it
    runs anything, so its limits apply from the first instruction. That cgroup
    exists in every hierarchy the host has and denies every device but
    Docker's harmless set and O(devices).
  - O(state=run) runs the command to completion like C(docker run --rm);
    O(state=started) keeps a named container running in the background like
    C(docker run -d); O(state=exec) runs a command inside it like
    C(docker exec); O(state=stopped) and O(state=absent) stop and remove it.
  - Detached containers are tracked in C(/run/handmade-containers/<name>/)
    (pid and its start time, config digest, log, stdin fifo). Whether one
    runs is read from C(/proc) on every call, so a dead PID 1, a reused pid,
    a reboot, a removed state directory or an interrupted start all converge
    on the next run.
  - Runs on the managed host as root. Python 3.8+ standard library only.
author:
  - handmade.containers maintainers (@handmade)
extends_documentation_fragment:
  - handmade.containers.container_options
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
options:
  state:
    description:
      - V(run) runs O(command) in a fresh container to completion and returns
        its C(rc), C(stdout), C(stderr); nothing is left behind. Always changed.
      - V(started) makes sure the named container runs with these settings.
        Already running with the same settings is C(changed=false); running
        with other settings is stopped and started again (recreated).
        Its stdin is the fifo C(/run/handmade-containers/<name>/stdin), kept
        open so a shell never reads EOF; write commands into it to drive it.
        stdout and stderr go to RV(log_path).
      - V(stopped) sends SIGTERM to PID 1 and, after O(stop_timeout), SIGKILL
        to every process of the container. The record stays.
      - V(absent) stops it and removes its state directory.
      - V(exec) runs O(command) inside the running container O(name), in all
        its namespaces, its cgroup and its root, with its capabilities.
    type: str
    choices: [run, started, stopped, absent, exec]
    default: run
  timeout:
    description:
      - For V(run) and V(exec), seconds after which the whole container (or
        the exec'd process and every process it started that still holds its
        stdout or stderr) is killed; RV(timed_out) is then true, RV(rc) is
        V(137) and the task fails with a C(msg) saying it timed out.
      - V(0) or unset waits forever. Negative, NaN and infinite values are refused.
      - For V(run) every process of the container is killed at the deadline,
        also without a V(pid) namespace and whichever session a process moved
        to (its cgroup is killed), so the task always returns.
    type: float
  stdin:
    description: Text fed to the command's stdin for V(run) and V(exec) (otherwise stdin is empty).
    type: str
  output_limit:
    description:
      - For V(run) and V(exec), the most bytes of each of stdout and stderr the
        result carries. A longer stream returns its head and its tail, half of
        this size each, with one line between them saying how many bytes were cut,
        and RV(stdout_truncated) or RV(stderr_truncated) is true.
      - The module's own memory stays bounded by this, whatever the container prints.
      - A number of bytes or a size such as V(4M). V(0) returns none of the output,
        only the line saying how many bytes were cut (the flags and, with O(keep_output), the files
        still say what there was).
      - The default, 1 MiB, is about 10,000 lines, more than anyone reads in a
        task result, while the controller keeps each host's result in memory and
        adds C(stdout_lines), a second copy.
    type: bytes
    default: 1M
  keep_output:
    description:
      - For V(run) and V(exec), also write the whole stdout and stderr, every
        byte, to two new files in O(output_dir) and return their paths as
        RV(stdout_path) and RV(stderr_path). They are not removed; delete them
        when done.
      - Without it nothing of the output is written to disk.
    type: bool
    default: false
  output_dir:
    description:
      - Where O(keep_output) writes its files (mode 0600, never through a
        symlink, never over an existing file). It is created (0700) if missing
        and must be owned by root and writable by no one else.
      - The default is on disk rather than in RAM (C(/run) and often C(/tmp)
        are tmpfs) and readable by root only, as Docker keeps container logs
        under C(/var/lib/docker).
    type: path
    default: /var/lib/handmade-containers/output
attributes:
  action_group:
    membership:
      - handmade.containers.containers
  check_mode:
    support: partial
    details:
      - V(started), V(stopped) and V(absent) read the container's record and C(/proc) and report what would
        change, starting and stopping nothing.
      - V(run) and V(exec) run nothing and report a change; they cannot tell the command's RV(rc), RV(stdout)
        or RV(stderr), which are not returned.
  diff_mode:
    support: partial
    details:
      - V(started), V(stopped) and V(absent) show the container's state and settings before and after.
      - V(run) and V(exec) return no diff.
  platform:
    platforms: linux
    details: Linux only (namespaces, C(pivot_root), cgroups, seccomp), as root.
notes:
  - "For V(run) and V(exec), a command that exits with a non-zero RV(rc) fails
    the task, as M(ansible.builtin.command) and C(community.docker.docker_container)
    (with C(detach=false)) do; C(msg) says the rc and the last lines of stderr,
    for example C(command exited with rc 2: grep: /etc/foo: No such file or directory).
    A timeout fails it too. RV(rc), RV(stdout) and RV(stderr) are returned either way.
    Use C(failed_when) when a non-zero rc is an answer, not an error, for example
    C(failed_when: result.rc not in [0, 1]) for C(grep), or C(failed_when: false)."
  - The detached container's parent is this module's process, which exits at
    the end of the task; the kernel then hands PID 1 to init. No helper
    process stays beside the container.
  - PID 1 ignores signals it has no handler for, as every PID 1 does, so a plain
    C(/bin/sh) or C(sleep) needs the SIGKILL that follows O(stop_timeout).
seealso:
  - module: handmade.containers.cgroup
  - module: handmade.containers.rootfs_fetch
  - name: pivot_root(2)
    description: Why the root is pivoted rather than chrooted.
    link: https://man7.org/linux/man-pages/man2/pivot_root.2.html
"""

EXAMPLES = r"""
- name: Run a command in a fresh container, like docker run --rm
  handmade.containers.ns_exec:
    rootfs: /var/lib/handmade-containers/rootfs/alpine
    command: [/bin/sh, -c, "hostname; ps"]
    hostname: demo
  register: result

- name: Keep a named container running in the background, limited by a cgroup
  handmade.containers.ns_exec:
    name: web
    state: started
    rootfs: /var/lib/handmade-containers/rootfs/alpine
    command: [/bin/httpd, -f, -p, "8080"]
    cgroup: handmade/web
    namespaces: [pid, mount, uts, ipc, cgroup]
    mounts:
      - src: /srv/www
        dest: /www
        readonly: true

- name: Run a command inside it, like docker exec
  handmade.containers.ns_exec:
    name: web
    state: exec
    command: [ps]

- name: A non-zero rc fails the task unless failed_when says otherwise (grep finds nothing = rc 1)
  handmade.containers.ns_exec:
    name: web
    state: exec
    command: [grep, -q, error, /var/log/httpd.log]
  register: found
  failed_when: found.rc not in [0, 1]

- name: Keep the whole output of a chatty command on disk, return 64 KiB of each stream
  handmade.containers.ns_exec:
    rootfs: /var/lib/handmade-containers/rootfs/alpine
    command: [/bin/sh, -c, "find / -xdev"]
    output_limit: 64K
    keep_output: true
  register: listing             # listing.stdout_path holds every line

- name: Remove it
  handmade.containers.ns_exec:
    name: web
    state: absent
    stop_timeout: 5
"""

RETURN = r"""
state:
  description: What was done or found, one of V(run), V(started), V(stopped), V(absent) or V(exec).
  returned: always
  type: str
  sample: started
pid:
  description: Host pid of the container's PID 1 (for V(run), while it ran); null when not running.
  returned: always
  type: int
  sample: 41237
namespaces:
  description: Namespace ids of PID 1, as C(readlink /proc/<pid>/ns/*) shows them.
  returned: always
  type: dict
  sample: {"mnt": "mnt:[4026532178]", "net": "net:[4026532182]", "pid": "pid:[4026532177]"}
cgroup:
  description: The cgroup the container runs in, if any.
  returned: always
  type: str
  sample: handmade/web
hostname:
  description: Hostname inside the container.
  returned: always
  type: str
  sample: web
enter_command:
  description:
    - An C(nsenter) line that opens an interactive shell inside the running
      container (its namespaces, root and working directory). Run it as root
      on the managed host. Note that nsenter keeps the caller's capabilities.
  returned: when the container runs
  type: str
  sample: nsenter --target 41237 --mount --uts --ipc --net --pid --cgroup --root --wd -- /bin/sh
log_path:
  description: File receiving the detached container's stdout and stderr.
  returned: for named containers
  type: str
  sample: /run/handmade-containers/web/container.log
rc:
  description: Exit code of the command; 128 + signal number when a signal killed it (137 for SIGKILL).
  returned: state is run or exec, except in check mode (nothing runs)
  type: int
  sample: 0
stdout:
  description:
    - What the command wrote to stdout, at most O(output_limit) bytes of it
      (its head and its tail, with a line saying what was cut between them),
      decoded as UTF-8 with invalid bytes replaced.
  returned: state is run or exec, except in check mode (nothing runs)
  type: str
stderr:
  description: What the command wrote to stderr, bounded and decoded as RV(stdout) is.
  returned: state is run or exec, except in check mode (nothing runs)
  type: str
stdout_truncated:
  description: True when stdout was longer than O(output_limit) and RV(stdout) holds only its head and tail.
  returned: state is run or exec, except in check mode (nothing runs)
  type: bool
  sample: false
stderr_truncated:
  description: True when stderr was longer than O(output_limit) and RV(stderr) holds only its head and tail.
  returned: state is run or exec, except in check mode (nothing runs)
  type: bool
  sample: false
stdout_path:
  description: The file holding the whole of stdout.
  returned: state is run or exec, and O(keep_output) is true, except in check mode
  type: str
  sample: /var/lib/handmade-containers/output/web-20240101T120000-4242-1a2b3c4d.stdout
stderr_path:
  description: The file holding the whole of stderr.
  returned: state is run or exec, and O(keep_output) is true, except in check mode
  type: str
  sample: /var/lib/handmade-containers/output/web-20240101T120000-4242-1a2b3c4d.stderr
msg:
  description: Why the task failed, for example C(command exited with rc 3) and the last lines of stderr.
  returned: failure
  type: str
  sample: "command exited with rc 3: cat: can't open '/nonexistent': No such file or directory"
oom_killed:
  description:
    - True when the cgroup's OOM killer killed a process in it while the command ran.
    - For V(exec), any process of the container's cgroup counts, not only the exec'd one.
  returned: state is run or exec, except in check mode (nothing runs)
  type: bool
  sample: false
timed_out:
  description: True when O(timeout) ran out and the container was killed.
  returned: state is run or exec, except in check mode (nothing runs)
  type: bool
elapsed:
  description: Seconds from the start of the launch to the end of the command.
  returned: state is run or exec, except in check mode (nothing runs)
  type: float
  sample: 0.0123
recreated:
  description: True when a running container with other settings was (in check mode, would be) replaced.
  returned: state is started and changed
  type: bool
repaired:
  description:
    - True when the container ran with its settings but without its supervisor (killed), and a new supervisor
      now adopts it (in check mode, would); the container itself was not touched.
  returned: state is started and the container was running with the same settings
  type: bool
health:
  description:
    - The container's health once it is V(healthy), as M(handmade.containers.container_info) returns it
      (RV(handmade.containers.container_info#module:containers[].health) has the fields).
  returned: state is started, with O(wait_healthy=true), not in check mode
  type: dict
  sample: {"status": "healthy", "failing_streak": 0, "log": [{"start": "2026-12-01T22:14:33.540Z",
           "end": "2026-12-01T22:14:33.702Z", "exit_code": 0, "output": ""}]}
changed_settings:
  description: The settings that define the container whose change recreates (or would recreate) it.
  returned: state is started and changed
  type: list
  elements: str
  sample: [command, env]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._container import launch, options, output
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state

STATES = ["run", "started", "stopped", "absent", "exec"]


def argument_spec():
    """The container options of the option table, and this module's own."""
    spec = options.argument_spec()
    spec.update(
        state=dict(type="str", default="run", choices=STATES),
        timeout=dict(type="float"),
        stdin=dict(type="str"),
        output_limit=dict(type="bytes", default="1M"),
        keep_output=dict(type="bool", default=False),
        output_dir=dict(type="path", default=output.DEFAULT_OUTPUT_DIR),
    )
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ("state", "run", ("rootfs",)),
            ("state", "started", ("name", "rootfs")),
            ("state", "stopped", ("name",)),
            ("state", "absent", ("name",)),
            ("state", "exec", ("name",)),
        ],
        supports_check_mode=True,
    )
    try:
        result = ensure_state(module.params, check_mode=module.check_mode)
    except (ContainerError, CgroupError) as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff", None)
    failure = launch.failure_message(result, module.params["timeout"]) if result["state"] in ("run", "exec") else None
    if failure:
        # A non-zero rc is a failure (failed_when can say otherwise); the
        # results go with it, so a handler or a rescue can read them.
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
