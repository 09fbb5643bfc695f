#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: container
short_description: One container in one task, its root filesystem, cgroup limits and process together
version_added: 0.2.0
description:
  - Converges one named container on the managed host in one module run, as
    C(community.docker.docker_container) does. Its root filesystem (fetched
    and verified as M(handmade.containers.rootfs_fetch) does, when O(fetch)
    is given), the limits of its cgroup (as M(handmade.containers.cgroup)
    writes them) and its process in fresh namespaces (as
    M(handmade.containers.ns_exec) starts it) are converged together. The three step modules remain
    for a walkthrough one step at a time; this one is the fast path, one
    task per container.
  - O(state=started) makes the container run with these settings. A second
    run with the same settings changes nothing. A change of a setting that
    defines the container (command, env, mounts, ...) recreates it; a change
    of a limit is written into its cgroup while it runs, as C(docker update)
    does; a new release of its root filesystem stops it, replaces the tree
    and starts it again on the new one.
  - O(state=stopped) stops it and keeps its record, cgroup and root
    filesystem. O(state=absent) removes it and its own cgroup, and the root
    filesystem too with O(remove_rootfs).
  - Check mode and diff say what a real run would do, step by step
    (RV(actions)), including why a container would be recreated
    (RV(changed_settings)).
  - Runs on the managed host as root. Python 3.8+ standard library only.
author:
  - handmade.containers maintainers (@handmade)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - handmade.containers.container_options
  - handmade.containers.cgroup_limits
options:
  name:
    description:
      - Container name, V([A-Za-z0-9][A-Za-z0-9_.-]*), at most 63 characters. Also the default O(hostname),
        the last part of its own cgroup (C(<cgroup_parent>/<name>)) and, with O(fetch) and no O(rootfs), of its
        root filesystem's directory.
    type: str
    required: true
  state:
    description:
      - V(started) runs the container with these settings (started again if it died or the host rebooted;
        recreated if a defining setting or its root filesystem changed).
      - V(stopped) sends SIGTERM to PID 1 and, after O(stop_timeout), SIGKILL to every process of the container.
        The record, the cgroup and the root filesystem stay.
      - V(absent) stops it and removes its state and its own cgroup (a O(cgroup) made by
        M(handmade.containers.cgroup) stays), and with O(remove_rootfs) its root filesystem.
    type: str
    choices: [started, stopped, absent]
    default: started
  fetch:
    description:
      - Where the root filesystem comes from. When given, the tree at O(rootfs) (default
        C(/var/lib/handmade-containers/rootfs/<name>)) is fetched, verified and extracted as
        M(handmade.containers.rootfs_fetch) does, and replaced when another release is asked for.
      - Without it, O(rootfs) must already hold a root filesystem.
      - Each key is the M(handmade.containers.rootfs_fetch) option of the same name; see that module for the
        details.
    type: dict
    suboptions:
      version:
        description: The Alpine release (V(3.19.1)), branch (V(3.19)) or V(latest-stable); a label with O(fetch.url) or O(fetch.src).
        type: str
      arch:
        description: Alpine architecture name; default the host's.
        type: str
      mirror:
        description: Base URL of an Alpine mirror with the CDN's layout; default V(https://dl-cdn.alpinelinux.org/alpine).
        type: str
      url:
        description: Any root filesystem tarball instead of an Alpine release; needs O(fetch.checksum).
        type: str
      src:
        description: A tarball already on the managed host.
        type: path
      checksum:
        description: V(sha256:<hex>), V(sha512:<hex>), V(sha256:<URL of a checksum file>) or V(skip).
        type: str
      verify_signature:
        description: Check the tarball's detached GPG signature against O(fetch.gpg_key) and O(fetch.gpg_fingerprint).
        type: bool
        default: false
      gpg_key:
        description: Path or URL of the armored key that signs the release; default Alpine's, shipped with the collection.
        type: str
      gpg_fingerprint:
        description: Fingerprint of the only key whose signature is accepted; default Alpine's release key.
        type: str
      cache_dir:
        description: Where downloads are kept, named by checksum.
        type: path
        default: /var/cache/handmade-containers
      allow_devices:
        description: Create the device nodes the tarball holds.
        type: bool
        default: false
      validate_certs:
        description: Verify TLS certificates of HTTPS downloads.
        type: bool
        default: true
      timeout:
        description: Seconds to wait for each network operation, at least V(1).
        type: int
        default: 30
  remove_rootfs:
    description:
      - With O(state=absent), remove the root filesystem too - O(rootfs), else the one the container was started
        with, else the default of O(fetch) - after the container. Only a tree that
        M(handmade.containers.rootfs_fetch) or this module installed is removed, and only when no process runs
        from it. The download cache stays.
    type: bool
    default: false
attributes:
  action_group:
    membership:
      - handmade.containers.containers
  check_mode:
    support: partial
    details:
      - Reads the container's record, its cgroup's files, the root filesystem's stamp and (for a branch or a
        changed release) the mirror's index and checksum files, never the tarball, and says in RV(actions) what
        a real run would do, writing nothing.
      - When the root filesystem is still to be fetched or replaced, the settings that are checked against the
        tree (O(command), O(user), O(workdir), O(mounts)) are checked only by the real run.
  diff_mode:
    support: full
    details: The root filesystem's stamp, the limits given, and the container's state and settings, before and after.
  platform:
    platforms: linux
    details: Linux with namespaces and cgroups (v1, hybrid or v2); runs as root.
notes:
  - Limits the task leaves out are left as the cgroup holds them; a container's own cgroup starts with none.
  - The container's stdout and stderr go to RV(log_path), written by its supervisor (see M(handmade.containers.ns_exec)).
  - To run a command inside it, use M(handmade.containers.ns_exec) with O(handmade.containers.ns_exec#module:state=exec).
seealso:
  - module: handmade.containers.rootfs_fetch
  - module: handmade.containers.cgroup
  - module: handmade.containers.ns_exec
  - name: docker_container
    description: The community.docker module whose one-task-per-container model this follows.
    link: https://docs.ansible.com/ansible/latest/collections/community/docker/docker_container_module.html
"""

EXAMPLES = r"""
- name: A logging loop in a verified Alpine minirootfs, at most 256 MiB and half a core
  handmade.containers.container:
    name: ticker
    fetch:
      version: "3.23"
      verify_signature: true
    memory: 256M
    cpus: 0.5
    pids_max: 512
    command: [/bin/sh, -c, "while sleep 60; do date; done"]
    mounts:
      - type: tmpfs
        dest: /scratch
        options: size=16m

- name: Several containers, one task each, on one release
  handmade.containers.container:
    name: "{{ item }}"
    fetch:
      version: "3.23"
    memory: 128M
    command: [/bin/sleep, "86400"]
  loop: [worker1, worker2]

- name: Stop it, keeping its tree, cgroup and record
  handmade.containers.container:
    name: ticker
    state: stopped

- name: Remove it, its cgroup and its root filesystem
  handmade.containers.container:
    name: ticker
    state: absent
    remove_rootfs: true
"""

RETURN = r"""
state:
  description: The state the container is in now (in check mode, would be in), V(started), V(stopped) or V(absent).
  returned: always
  type: str
  sample: started
name:
  description: The container's name.
  returned: always
  type: str
  sample: web
actions:
  description:
    - What the task did, one sentence per step, in order; in check mode what it would do. Empty when nothing
      changed.
  returned: always
  type: list
  elements: str
  sample:
    - replace the root filesystem /var/lib/handmade-containers/rootfs/web with 3.19.1
    - stop web to replace its root filesystem
    - set memory 512M in the cgroup handmade/containers/web (was memory 256M)
    - start web again on the new root filesystem
recreated:
  description: True when a running container with other settings was (or in check mode would be) replaced.
  returned: state is started and changed
  type: bool
info:
  description:
    - The container as M(handmade.containers.container_info) describes it after the task (in check mode, as it
      is now), with RV(handmade.containers.container_info#module:containers[].state), C(exit_code),
      C(restart_count), C(health), C(stats) and the rest, so that one task tells what the container is.
    - Null when it has no record (absent, or never started).
  returned: always
  type: dict
  sample: {"name": "web", "state": "running", "pid": 4242, "exit_code": null, "restart_count": 0,
           "restart_policy": "always", "health": {"status": "healthy", "failing_streak": 0, "log": []}}
health:
  description:
    - The container's health once it is V(healthy), as M(handmade.containers.container_info) returns it
      (RV(handmade.containers.container_info#module:containers[].health) has the fields).
  returned: state is started, with O(wait_healthy=true), not in check mode
  type: dict
  sample: {"status": "healthy", "failing_streak": 0, "log": [{"start": "2026-12-01T22:14:33.540Z",
           "end": "2026-12-01T22:14:33.702Z", "exit_code": 0, "output": ""}]}
changed_settings:
  description: The defining settings whose change recreates (or would recreate) the running container.
  returned: state is started and changed
  type: list
  elements: str
  sample: [command, env]
pid:
  description: Host pid of the container's PID 1; null when not running.
  returned: always
  type: int
  sample: 41237
namespaces:
  description: Namespace ids of PID 1, as C(readlink /proc/<pid>/ns/*) shows them.
  returned: always
  type: dict
  sample: {"mnt": "mnt:[4026532178]", "net": "net:[4026532182]", "pid": "pid:[4026532177]"}
cgroup:
  description: The cgroup the container runs in.
  returned: always
  type: str
  sample: handmade/containers/web
hostname:
  description: Hostname inside the container.
  returned: always
  type: str
  sample: web
enter_command:
  description:
    - An C(nsenter) line that opens an interactive shell inside the running container. Run it as root on the
      managed host.
  returned: when the container runs
  type: str
  sample: nsenter --target 41237 --mount --uts --ipc --net --pid --cgroup --root --wd -- /bin/sh
log_path:
  description: File receiving the container's stdout and stderr.
  returned: always
  type: str
  sample: /run/handmade-containers/web/container.log
rootfs:
  description: The root filesystem's path.
  returned: always
  type: str
  sample: /var/lib/handmade-containers/rootfs/web
rootfs_fetch:
  description:
    - With O(fetch), what M(handmade.containers.rootfs_fetch) returns about the tree (C(dest), C(version),
      C(url), C(checksum), C(checksum_verified), C(signature_verified), C(size), C(cached), C(files),
      C(elapsed)). Null without O(fetch).
  returned: always
  type: dict
  sample: {"dest": "/var/lib/handmade-containers/rootfs/web", "version": "3.19.1", "checksum_verified": true}
limits:
  description:
    - When the task gives limits, every limit option as the container's cgroup holds it (null where the host
      cannot tell), as M(handmade.containers.cgroup) returns them. Null when the task gives none.
  returned: always
  type: dict
  sample: {"memory": "256M", "cpus": 0.5, "pids_max": 512}
cgroup_paths:
  description: When the task gives limits, the directories of the container's cgroup, by hierarchy.
  returned: always
  type: dict
  sample: {"memory": "/sys/fs/cgroup/memory/handmade/containers/web"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.handmade.containers.plugins.module_utils import _rootfs
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import limits
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._container import compose, options
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError


def argument_spec():
    """The container options of the option table, the limits of the LIMITS table, and this module's own."""
    spec = options.argument_spec()
    spec["name"] = dict(spec["name"], required=True)
    spec.update(limits.argument_spec())
    spec.update(
        state=dict(type="str", default="started", choices=list(compose.STATES)),
        # rootfs_fetch's options but dest (the rootfs) and force (a tree
        # extracted again on every run is no convergence).
        fetch=dict(type="dict", options=_rootfs.source_options()),
        remove_rootfs=dict(type="bool", default=False),
    )
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=limits.mutually_exclusive() + [("cgroup", "cgroup_parent")],
        required_by=limits.required_by(),
        supports_check_mode=True,
    )
    # A returned "rootfs" path would get stat() fields added (size, mode, ...).
    module.add_path_info = lambda result: result
    try:
        result = compose.ensure_container(module.params, check_mode=module.check_mode)
    except (ContainerError, CgroupError) as exc:
        module.fail_json(msg=str(exc), name=module.params["name"])
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
